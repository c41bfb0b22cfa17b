"""The sandbox against real escape attempts. Each test is bounded in time and touches only
127.0.0.1 (a listener the test starts) and temporary folders; every attempt must end as a failed
sample, never as an exception in capcast."""

from __future__ import annotations

import os
import socket
import sys
import time
import uuid
from pathlib import Path

import pytest

from capcast.errors import CapcastError
from capcast.tasks import sandbox

ISOLATION = sandbox.isolation()
pytestmark = pytest.mark.skipif(
    not ISOLATION.available, reason=f"no isolation on this machine ({ISOLATION.problem}); .ci/run installs bubblewrap"
)

DOC = {
    "prompt": "def add(a, b):\n",
    "test": "def check(f):\n    assert f(2, 3) == 5\n    assert f(-1, 1) == 0\n",
    "entry_point": "add",
}


@pytest.fixture
def listener():
    """A TCP server on 127.0.0.1 that must never see a connection from the sandbox."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(0.2)
    yield server.getsockname()[1]
    try:
        with pytest.raises(OSError):  # nothing ever connected
            server.accept()
    finally:
        server.close()


def _no_process_with(marker: str) -> bool:
    for pid in os.listdir("/proc"):
        try:
            if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                return False
        except OSError:
            continue
    return True


def test_correct_and_wrong_programs():
    check = sandbox.code_checker(timeout_s=10)
    assert check("    return a + b\n", DOC) is True
    assert check("    return a - b\n", DOC) is False
    assert check("    return (\n", DOC) is False  # syntax error


def test_python_socket_to_a_local_listener_fails(listener):
    result = sandbox.run_python(f"import socket\nsocket.create_connection(('127.0.0.1', {listener}), timeout=2)\n", timeout_s=5)
    assert not result.passed and result.isolated
    assert "ConnectionRefusedError" in result.stderr or "unreachable" in result.stderr


def test_child_process_sockets_fail_too(listener):
    child = f"import socket; socket.create_connection(('127.0.0.1', {listener}), timeout=2)"
    code = f"import subprocess, sys\nsys.exit(subprocess.run([sys.executable, '-c', {child!r}]).returncode)\n"
    assert not sandbox.run_python(code, timeout_s=5).passed


def test_bash_dev_tcp_fails(listener):
    code = f"import subprocess, sys\nsys.exit(subprocess.run(['bash', '-c', 'echo leak > /dev/tcp/127.0.0.1/{listener}']).returncode)\n"
    result = sandbox.run_python(code, timeout_s=5)
    assert not result.passed and "onnection refused" in result.stderr


def test_ctypes_raw_socket_fails(listener):
    code = f"""
import ctypes, socket, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
addr = struct.pack("=HH4s8x", socket.AF_INET, socket.htons({listener}), socket.inet_aton("127.0.0.1"))
rc = libc.connect(fd, addr, len(addr))
print("connect", rc, ctypes.get_errno())
sys.exit(0 if rc == 0 else 1)
"""
    result = sandbox.run_python(code, timeout_s=5)
    assert not result.passed and result.stdout.startswith("connect -1")


def test_writes_outside_the_working_folder_fail(tmp_path):
    outside = tmp_path / f"escaped-{uuid.uuid4().hex}"
    code = f"""
import os
open("inside.txt", "w").write("fine")      # the working folder is writable
open("/tmp/scratch", "w").write("fine")    # so is the sandbox's own /tmp
failures = 0
for path in ({str(outside)!r}, "/usr/escaped", "/python/escaped", "/program/escaped", "/escaped"):
    try:
        open(path, "w").write("escaped")
    except OSError:
        failures += 1
print(failures)
"""
    result = sandbox.run_python(code, timeout_s=5)
    assert result.passed, result.stderr
    assert result.stdout.strip() == "5"
    assert not outside.exists()


def test_root_home_and_the_store_are_not_visible(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    (store / "secret.txt").write_text("store secret")
    code = f"""
import os
for path in ("/root", "/home", {str(store)!r}):
    print(path, os.path.exists(path))
print(open({str(store / 'secret.txt')!r}).read())
"""
    result = sandbox.run_python(code, timeout_s=5)
    assert not result.passed and "FileNotFoundError" in result.stderr
    assert "/root False" in result.stdout and f"{store} False" in result.stdout
    assert "store secret" not in result.stdout


def test_a_setsid_grandchild_does_not_outlive_the_timeout():
    marker = f"capcast-grandchild-{uuid.uuid4().hex}"
    grandchild = f"import os, time; os.setsid(); time.sleep(30)  # {marker}"
    code = f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', {grandchild!r}], start_new_session=True)\ntime.sleep(30)\n"
    started = time.monotonic()
    result = sandbox.run_python(code, timeout_s=1.0)
    assert result.timed_out and not result.passed
    assert time.monotonic() - started < 3.0
    assert _no_process_with(marker)


def test_a_daemon_left_behind_by_a_passing_program_is_ended():
    marker = f"capcast-daemon-{uuid.uuid4().hex}"
    daemon = f"import os, time; os.setsid(); time.sleep(30)  # {marker}"
    code = f"import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', {daemon!r}], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    started = time.monotonic()
    result = sandbox.run_python(code, timeout_s=5)
    assert result.passed and time.monotonic() - started < 3.0
    assert _no_process_with(marker)


def test_a_fork_bomb_is_bounded_and_cleaned_up():
    marker = f"capcast-bomb-{uuid.uuid4().hex}"
    code = f"import os, time\n# {marker}\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        time.sleep(0.01)\n"
    started = time.monotonic()
    result = sandbox.run_python(code, timeout_s=2.0, max_processes=16)
    assert not result.passed and result.timed_out
    assert time.monotonic() - started < 5.0
    assert _no_process_with(marker)


def test_one_large_allocation_fails():
    result = sandbox.run_python("x = bytearray(2 * 1024**3)\nprint(len(x))\n", timeout_s=10, memory_mb=256)
    assert not result.passed and "MemoryError" in result.stderr


@pytest.mark.skipif(not ISOLATION.tree_limits, reason="no writable cgroup: memory is capped per process only (docs/sandbox.md)")
def test_memory_spread_over_several_processes_is_capped_for_the_tree():
    code = """
import os, sys, time
children = []
for _ in range(6):
    pid = os.fork()
    if pid == 0:
        block = b"x" * (120 * 2**20)   # under the per-process limit, touched for real
        time.sleep(1.5)
        os._exit(0)
    children.append(pid)
sys.exit(max(os.waitpid(pid, 0)[1] for pid in children) != 0)
"""
    result = sandbox.run_python(code, timeout_s=8, memory_mb=256)
    assert not result.passed
    # the same program with room for all six passes: the cap, not the program, made it fail
    assert sandbox.run_python(code, timeout_s=8, memory_mb=1024).passed


def test_an_infinite_loop_is_stopped_by_the_wall_clock():
    started = time.monotonic()
    result = sandbox.run_python("while True:\n    pass\n", timeout_s=1.0)
    assert result.timed_out and result.reason == "timeout"
    assert time.monotonic() - started < 3.0


def test_huge_output_is_cut_and_stops_the_program():
    started = time.monotonic()
    result = sandbox.run_python("while True:\n    print('x' * 10000)\n", timeout_s=10, max_output=100_000)
    assert not result.passed and result.reason == "output limit"
    assert len(result.stdout) <= 100_000 and time.monotonic() - started < 5.0


def test_every_escape_is_a_failed_sample_through_the_checker():
    check = sandbox.code_checker(timeout_s=1.0)
    for body in ("    import os\n    while True: os.fork()\n", "    while True: pass\n", "    import os; os.abort()\n",
                 "    raise SystemExit(3)\n", "    print('x' * 10**7)\n"):
        assert check(body, DOC) is False
    assert check("    return a + b\n", DOC) is True


def test_without_isolation_it_refuses_in_one_line_unless_unsafe_is_explicit(monkeypatch):
    monkeypatch.setattr(sandbox, "isolation", lambda: sandbox.Isolation(None, "bubblewrap is not installed", False))
    monkeypatch.delenv(sandbox.UNSAFE_ENV, raising=False)
    with pytest.raises(CapcastError) as refused:
        sandbox.run_python("print(1)\n")
    assert "bubblewrap is not installed" in str(refused.value) and "\n" not in str(refused.value)
    unsafe = sandbox.run_python("print(1)\n", allow_unsafe=True)
    assert unsafe.passed and not unsafe.isolated and unsafe.stdout.strip() == "1"
    monkeypatch.setenv(sandbox.UNSAFE_ENV, "1")
    assert not sandbox.run_python("while True:\n    pass\n", timeout_s=0.5).passed


def test_the_interpreter_is_the_real_one_not_the_venv():
    result = sandbox.run_python("import sys\nprint(sys.version_info[:2])\n", timeout_s=5)
    assert result.stdout.strip() == str(sys.version_info[:2])
