"""Run generated code safely: a separate process, a wall-clock timeout, memory limits, no network.

Never ``exec`` model output inside capcast. :func:`run_python` starts a fresh interpreter
(``python -I``: no user site, no PYTHON* variables) in an empty temporary folder with:

* a wall-clock timeout, after which the whole process group is killed (a hang is a failure);
* ``RLIMIT_AS`` (address space), ``RLIMIT_CPU``, ``RLIMIT_FSIZE`` (16 MiB of files) and no
  core dumps, set in the child before it runs anything;
* no network: inside a fresh network namespace (``unshare -rn``: only a downed loopback) when
  the kernel allows unprivileged user namespaces, and in every case a guard that replaces the
  socket constructors before the program runs, so ``socket.socket(...)`` raises.

A crash, a timeout, an out-of-memory error or a non-zero exit all count as "did not pass"; the
caller keeps going. :func:`code_checker` turns this into a task checker for HumanEval-like tasks.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

# Runs before the program: sockets cannot even be created (the network namespace is the
# stronger wall; this guard is the fallback where namespaces are not allowed).
_GUARD = r"""
import socket as _socket, sys as _sys, runpy as _runpy
def _blocked(*args, **kwargs):
    raise PermissionError("network access is disabled in the capcast sandbox")
class _NoSocket(_socket.socket):
    def __init__(self, *args, **kwargs):
        _blocked()
_socket.socket = _NoSocket
for _name in ("create_connection", "create_server", "socketpair", "fromfd", "getaddrinfo", "gethostbyname"):
    setattr(_socket, _name, _blocked)
try:
    import _socket as _raw
    _raw.socket = _NoSocket
except Exception:
    pass
_sys.argv = [_sys.argv[1]]
_runpy.run_path(_sys.argv[0], run_name="__main__")
"""

FILE_LIMIT_BYTES = 16 * 2**20


@dataclass(frozen=True)
class SandboxResult:
    """How one program run ended. ``passed`` means it exited 0 within the limits."""

    passed: bool
    returncode: int | None
    timed_out: bool
    stdout: str
    stderr: str
    seconds: float
    network_namespace: bool


@functools.lru_cache(maxsize=1)
def network_namespace_available() -> bool:
    """Whether ``unshare -rn`` works here (unprivileged user + network namespaces)."""
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return False
    try:
        done = subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _limit_child(memory_bytes: int, cpu_seconds: int) -> None:
    """In the child, before exec: resource limits (inherited by the interpreter)."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT_BYTES, FILE_LIMIT_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_python(
    code: str, timeout_s: float = 10.0, memory_mb: int = 512, max_output: int = 10_000, network_namespace: bool | None = None
) -> SandboxResult:
    """Run ``code`` as a Python program in the sandbox; never raises for what the program does.

    ``network_namespace=None`` uses a network namespace where the kernel allows one; ``False``
    relies on the socket guard alone (what runs where namespaces are not allowed).
    """
    use_netns = network_namespace_available() if network_namespace is None else (network_namespace and network_namespace_available())
    with tempfile.TemporaryDirectory(prefix="capcast-sandbox-") as workdir:
        program, guard = Path(workdir) / "program.py", Path(workdir) / "guard.py"
        program.write_text(code)
        guard.write_text(_GUARD)
        command = [sys.executable, "-I", str(guard), str(program)]
        if use_netns:
            command = ["unshare", "-rn", *command]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": workdir, "TMPDIR": workdir}
        started = time.perf_counter()
        proc = subprocess.Popen(
            command,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: a timeout kills every child it made
            preexec_fn=functools.partial(_limit_child, memory_mb * 2**20, int(timeout_s) + 1),
        )
        timed_out = False
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            out, err = proc.communicate()
        seconds = time.perf_counter() - started
    return SandboxResult(
        passed=(not timed_out and proc.returncode == 0),
        returncode=None if timed_out else proc.returncode,
        timed_out=timed_out,
        stdout=out.decode("utf-8", "replace")[-max_output:],
        stderr=err.decode("utf-8", "replace")[-max_output:],
        seconds=seconds,
        network_namespace=use_netns,
    )


def humaneval_program(sample: str, doc: dict) -> str:
    """HumanEval layout: prompt + completion, then the tests, then ``check(entry_point)``."""
    return f"{doc['prompt']}{sample}\n\n{doc['test']}\n\ncheck({doc['entry_point']})\n"


def code_checker(
    build_program: Callable[[str, dict], str] = humaneval_program, timeout_s: float = 10.0, memory_mb: int = 512
) -> Callable[[str, dict], bool]:
    """A task checker that passes a sample when its program exits 0 in the sandbox."""

    def check(sample: str, doc: dict) -> bool:
        return run_python(build_program(sample, doc), timeout_s=timeout_s, memory_mb=memory_mb).passed

    return check
