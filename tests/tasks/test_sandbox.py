"""The sandbox on real programs: passing, failing, hanging, memory-hungry and networking code."""

from __future__ import annotations

import socket
import time

import pytest

from capcast.tasks import sandbox

DOC = {
    "prompt": "def add(a, b):\n",
    "test": "def check(f):\n    assert f(2, 3) == 5\n    assert f(-1, 1) == 0\n",
    "entry_point": "add",
}


def test_correct_and_wrong_programs():
    check = sandbox.code_checker(timeout_s=10)
    assert check("    return a + b\n", DOC) is True
    assert check("    return a - b\n", DOC) is False
    assert check("    return (\n", DOC) is False  # syntax error


def test_hanging_program_is_killed_by_the_wall_clock():
    started = time.perf_counter()
    result = sandbox.run_python("import time\nwhile True:\n    time.sleep(0.01)\n", timeout_s=1.0)
    assert result.timed_out and not result.passed
    assert time.perf_counter() - started < 6


def test_memory_limit_stops_a_large_allocation():
    result = sandbox.run_python("x = bytearray(2 * 1024**3)\nprint(len(x))\n", timeout_s=10, memory_mb=256)
    assert not result.passed
    assert "MemoryError" in result.stderr


@pytest.mark.parametrize("namespace", [None, False], ids=["auto", "guard-only"])
def test_program_cannot_reach_the_network(namespace):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    code = (
        "import socket\n"
        f"s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        "s.sendall(b'leak')\n"
    )
    raw = f"import _socket\ns = _socket.socket()\ns.connect(('127.0.0.1', {port}))\n"
    try:
        for program in (code, raw):
            result = sandbox.run_python(program, timeout_s=10, network_namespace=namespace)
            assert not result.passed
            assert "PermissionError" in result.stderr or "unreachable" in result.stderr
            with pytest.raises(OSError):  # nothing ever connected to the parent's server
                server.accept()
    finally:
        server.close()


def test_crashes_count_as_failures_and_the_parent_goes_on():
    for code in ("import os\nos.abort()\n", "raise SystemExit(3)\n", "import sys\nsys.setrecursionlimit(10**6)\ndef f(): f()\nf()\n"):
        assert not sandbox.run_python(code, timeout_s=10).passed
    assert sandbox.run_python("print('still here')\n").stdout.strip() == "still here"
