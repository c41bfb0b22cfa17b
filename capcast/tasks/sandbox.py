"""Run generated code in isolation: bubblewrap namespaces, limits for the whole process tree.

Never ``exec`` model output inside capcast. :func:`run_python` runs a program in a fresh
interpreter under ``bwrap`` (Debian/Ubuntu package ``bubblewrap``), which needs unprivileged user
namespaces (or root). What the program gets (details and guarantees in docs/sandbox.md):

* its own network, PID, IPC, UTS, user and cgroup namespaces (``--unshare-all``): no network
  at all (only an isolated loopback), for the program and every child it starts;
* a filesystem of read-only ``/usr`` (plus the ``/bin``, ``/lib`` links), the Python install
  read-only at ``/python``, a couple of loader files from ``/etc``, and two small tmpfs folders,
  ``/sandbox`` (the working folder) and ``/tmp``: nothing of the host is writable, and ``/root``,
  ``/home``, the store and the rest of ``/etc`` do not exist in there;
* limits set inside the namespace with ``prlimit``: CPU seconds, address space, file size,
  process count and no core dumps; where a cgroup is writable (:mod:`.cgroups`), memory and
  process count are also capped for the whole tree;
* a wall-clock timeout and an output cap, after which bwrap is killed: bwrap's PID 1 dies with
  it (``--die-with-parent``) and the kernel ends every process of the PID namespace, setsid()
  or not, so nothing outlives the sample.

Where bwrap cannot isolate (not installed, user namespaces disabled, or running as root without
a writable cgroup, where the kernel ignores ``RLIMIT_NPROC``), :func:`run_python` refuses with
:class:`SandboxUnavailable` unless the caller passes ``allow_unsafe=True`` or the environment
sets ``CAPCAST_UNSAFE_NO_SANDBOX=1``; the unsafe mode keeps the limits and the process-group
kill but has no namespace at all. Whatever the program does is a failed sample, never an error.
"""

from __future__ import annotations

import functools
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from capcast.errors import CapcastError
from capcast.tasks import cgroups

UNSAFE_ENV = "CAPCAST_UNSAFE_NO_SANDBOX"
WORKDIR = "/sandbox"  # the working folder inside the sandbox


class SandboxUnavailable(CapcastError):
    """Generated code cannot be isolated here, and running it unisolated was not allowed."""


@dataclass(frozen=True)
class Limits:
    """What one program may use. ``memory_mb`` and ``max_processes`` hold for the whole tree
    where a cgroup is available; otherwise ``memory_mb`` is per process (see :attr:`Isolation.guarantee`)."""

    timeout_s: float = 10.0
    memory_mb: int = 512
    max_processes: int = 32
    file_mb: int = 16  # each file, and each tmpfs in all
    max_output: int = 1_000_000  # bytes of stdout + stderr before the program is killed

    @property
    def cpu_seconds(self) -> int:
        return int(self.timeout_s) + 1


@dataclass(frozen=True)
class SandboxResult:
    """How one program run ended. ``passed`` means it exited 0 within every limit."""

    passed: bool
    returncode: int | None
    timed_out: bool
    stdout: str
    stderr: str
    seconds: float
    isolated: bool  # ran under bwrap (False only in the explicit unsafe mode)
    reason: str = ""  # why it failed: "exit 1", "signal SIGKILL", "timeout", "output limit", "out of memory"


@dataclass(frozen=True)
class Isolation:
    """What this machine allows. ``problem`` is the one-line reason when isolation is missing."""

    bwrap: str | None
    problem: str | None
    tree_limits: bool  # a cgroup caps memory and processes for the whole tree

    @property
    def available(self) -> bool:
        return self.problem is None

    @property
    def guarantee(self) -> str:
        if not self.available:
            return f"no isolation: {self.problem}"
        if self.tree_limits:
            return "namespaces (no network, read-only host); memory and process count capped for the whole tree by a cgroup"
        return ("namespaces (no network, read-only host); memory capped per process (RLIMIT_AS), so the tree may use "
                "up to memory_mb x max_processes; process count capped by RLIMIT_NPROC inside the user namespace")


def _python() -> tuple[Path, Path]:
    """(installation prefix, interpreter path relative to it) of the real interpreter (not a venv)."""
    prefix = Path(sys.base_prefix).resolve()
    executable = Path(os.path.realpath(sys.executable))
    try:
        return prefix, executable.relative_to(prefix)
    except ValueError:
        return executable.parent.parent, Path("bin") / executable.name


def _filesystem() -> list[str]:
    """bwrap arguments of the read-only view: /usr, its links, the interpreter, loader files."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for path in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives"):
        args += ["--ro-bind-try", path, path]
    prefix, _ = _python()
    if not str(prefix).startswith("/usr/"):
        args += ["--ro-bind", str(prefix), "/python"]
    return args


def _interpreter() -> str:
    prefix, relative = _python()
    return str(prefix / relative) if str(prefix).startswith("/usr/") else str(Path("/python") / relative)


def _bwrap_command(bwrap: str, limits: Limits, program_dir: Path, argv: list[str]) -> list[str]:
    size = str(limits.file_mb * 2**20)
    prlimit = [
        "/usr/bin/prlimit",
        f"--as={limits.memory_mb * 2**20}",
        f"--cpu={limits.cpu_seconds}",
        f"--fsize={limits.file_mb * 2**20}",
        f"--nproc={limits.max_processes}",
        "--core=0",
        "--",
    ]
    return [
        bwrap, "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--disable-userns", "--hostname", "sandbox",
        *_filesystem(),
        "--proc", "/proc", "--dev", "/dev",
        "--size", size, "--tmpfs", "/tmp",
        "--size", size, "--tmpfs", WORKDIR,
        "--ro-bind", str(program_dir), "/program",
        "--remount-ro", "/",  # bwrap's own root tmpfs: nothing but the two tmpfs folders is writable
        "--chdir", WORKDIR,
        # prlimit runs inside the new user namespace, so RLIMIT_NPROC counts this sandbox's processes only.
        *prlimit, *argv,
    ]


@functools.lru_cache(maxsize=1)
def isolation() -> Isolation:
    """Probe once per process whether bwrap isolates here (about 0.1 s)."""
    bwrap = shutil.which("bwrap")
    if not sys.platform.startswith("linux"):
        return Isolation(None, "the sandbox needs Linux namespaces", False)
    if bwrap is None:
        return Isolation(None, "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)", False)
    if not os.path.exists("/usr/bin/prlimit"):
        return Isolation(bwrap, "prlimit is missing (Debian/Ubuntu: apt-get install util-linux)", False)
    with tempfile.TemporaryDirectory(prefix="capcast-probe-") as folder:
        command = _bwrap_command(bwrap, Limits(), Path(folder), [_interpreter(), "-I", "-c", "pass"])
        try:
            done = subprocess.run(command, capture_output=True, timeout=20, env=_environment())
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Isolation(bwrap, f"bwrap cannot start ({type(exc).__name__})", False)
    if done.returncode != 0:
        first = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["no message"])[0]
        return Isolation(bwrap, f"bwrap cannot create namespaces here ({first}); enable unprivileged user namespaces "
                                "(sysctl kernel.unprivileged_userns_clone=1) or run where they are allowed", False)
    probe = cgroups.create(64 * 2**20, 8)
    if probe is not None:
        probe.remove()
        return Isolation(bwrap, None, True)
    if os.geteuid() == 0:
        return Isolation(bwrap, "running as root without a writable cgroup: the kernel ignores RLIMIT_NPROC for root, "
                                "so a fork bomb could not be stopped; run as a normal user or give capcast a cgroup", False)
    return Isolation(bwrap, None, False)


def unsafe_allowed(allow_unsafe: bool | None = None) -> bool:
    return bool(allow_unsafe) if allow_unsafe is not None else os.environ.get(UNSAFE_ENV, "") == "1"


def require_isolation(allow_unsafe: bool | None = None) -> None:
    """Raise :class:`SandboxUnavailable` (one line) where generated code could not be isolated."""
    found = isolation()
    if not found.available and not unsafe_allowed(allow_unsafe):
        raise SandboxUnavailable(
            f"cannot run generated code safely: {found.problem}; or, at your own risk, "
            f"set {UNSAFE_ENV}=1 (or pass --unsafe-no-sandbox) to run it without isolation"
        )


def _environment() -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": WORKDIR, "TMPDIR": "/tmp"}
    if not str(_python()[0]).startswith("/usr/"):
        env["LD_LIBRARY_PATH"] = "/python/lib"  # a shared libpython next to a relocated interpreter
    return env


def _child_setup(join: list[tuple[str, bytes]]) -> None:
    """Between fork and exec: enter the run's cgroup, so bwrap and all it starts are counted."""
    for path, value in join:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, value)
        finally:
            os.close(fd)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _unsafe_limits(limits: Limits) -> None:
    memory = limits.memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb * 2**20,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _collect(proc: subprocess.Popen, limits: Limits, started: float) -> tuple[bytes, bytes, str]:
    """Read both pipes until they close, the wall clock runs out or the output cap is hit."""
    chunks: dict[int, list[bytes]] = {proc.stdout.fileno(): [], proc.stderr.fileno(): []}
    open_fds, total, stop = set(chunks), 0, ""
    while open_fds:
        left = limits.timeout_s - (time.monotonic() - started)
        if left <= 0:
            stop = "timeout"
            break
        ready, _, _ = select.select(list(open_fds), [], [], left)
        for fd in ready:
            data = os.read(fd, 65536)
            if not data:
                open_fds.discard(fd)
                continue
            chunks[fd].append(data)
            total += len(data)
        if total > limits.max_output:
            stop = "output limit"
            break
    return b"".join(chunks[proc.stdout.fileno()]), b"".join(chunks[proc.stderr.fileno()]), stop


def run_python(code: str, timeout_s: float = 10.0, memory_mb: int = 512, max_output: int = 1_000_000,
               max_processes: int = 32, allow_unsafe: bool | None = None) -> SandboxResult:
    """Run ``code`` as a Python program in the sandbox. Never raises for what the program does;
    raises :class:`SandboxUnavailable` where it could not be isolated (see module docstring)."""
    limits = Limits(timeout_s=timeout_s, memory_mb=memory_mb, max_processes=max_processes, max_output=max_output)
    require_isolation(allow_unsafe)
    found = isolation()
    with tempfile.TemporaryDirectory(prefix="capcast-sandbox-") as folder:
        (Path(folder) / "program.py").write_text(code)
        if found.available:
            return _run_isolated(found, limits, Path(folder))
        return _run_unsafe(limits, Path(folder))


def _finish(proc: subprocess.Popen, limits: Limits, started: float, isolated: bool, group: cgroups.Cgroup | None) -> SandboxResult:
    out, err, stop = _collect(proc, limits, started)
    if stop:
        try:  # killing bwrap ends its PID namespace, hence every descendant
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if group is not None and stop:
        group.kill_all()
    try:
        returncode = proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # cannot happen after SIGKILL unless the kernel is stuck
        proc.kill()
        returncode = proc.wait()
    for pipe in (proc.stdout, proc.stderr):
        pipe.close()
    seconds = time.monotonic() - started
    oom = group is not None and group.oom_killed()
    if group is not None:
        group.remove()
    if stop:
        reason = stop
    elif returncode == 0:
        reason = ""
    elif oom:
        reason = "out of memory"
    elif returncode < 0:
        reason = f"signal {signal.Signals(-returncode).name}"
    else:
        reason = f"exit {returncode}"
    cut = limits.max_output
    return SandboxResult(
        passed=not reason, returncode=None if stop else returncode, timed_out=stop == "timeout",
        stdout=out[:cut].decode("utf-8", "replace"), stderr=err[:cut].decode("utf-8", "replace"),
        seconds=seconds, isolated=isolated, reason=reason,
    )


def _run_isolated(found: Isolation, limits: Limits, folder: Path) -> SandboxResult:
    command = _bwrap_command(found.bwrap, limits, folder, [_interpreter(), "-I", "/program/program.py"])
    group = cgroups.create(limits.memory_mb * 2**20, limits.max_processes + 2) if found.tree_limits else None  # +2: bwrap's own
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            command, env=_environment(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, preexec_fn=functools.partial(_child_setup, group.attach_bytes() if group else []),
        )
    except BaseException:
        if group is not None:
            group.remove()
        raise
    return _finish(proc, limits, started, True, group)


def _run_unsafe(limits: Limits, folder: Path) -> SandboxResult:
    """No namespaces: limits, a process group and a wall clock only (the user chose this)."""
    work = folder / "work"
    work.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": str(work), "TMPDIR": str(work)}
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-I", str(folder / "program.py")], cwd=work, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        preexec_fn=functools.partial(_unsafe_limits, limits),
    )
    return _finish(proc, limits, started, False, None)


def humaneval_program(sample: str, doc: dict) -> str:
    """HumanEval layout: prompt + completion, then the tests, then ``check(entry_point)``."""
    return f"{doc['prompt']}{sample}\n\n{doc['test']}\n\ncheck({doc['entry_point']})\n"


class CodeChecker:
    """A task checker that passes a sample when its program exits 0 in the sandbox.

    ``requires_sandbox`` tells the evaluation runner to call :func:`require_isolation` before
    loading any model, so a machine without isolation fails at once, in one line.
    """

    requires_sandbox = True

    def __init__(self, build_program: Callable[[str, dict], str] = humaneval_program, timeout_s: float = 10.0,
                 memory_mb: int = 512, allow_unsafe: bool | None = None) -> None:
        self.build_program, self.timeout_s, self.memory_mb, self.allow_unsafe = build_program, timeout_s, memory_mb, allow_unsafe

    def __call__(self, sample: str, doc: dict) -> bool:
        program = self.build_program(sample, doc)
        return run_python(program, timeout_s=self.timeout_s, memory_mb=self.memory_mb, allow_unsafe=self.allow_unsafe).passed


def code_checker(build_program: Callable[[str, dict], str] = humaneval_program, timeout_s: float = 10.0,
                 memory_mb: int = 512, allow_unsafe: bool | None = None) -> CodeChecker:
    """A :class:`CodeChecker` for HumanEval-like tasks."""
    return CodeChecker(build_program, timeout_s, memory_mb, allow_unsafe)
