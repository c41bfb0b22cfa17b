"""A throw-away cgroup per sandboxed program: memory and process count for the WHOLE process tree.

Resource limits (``RLIMIT_AS``, ``RLIMIT_NPROC``) are per process or per user; only a cgroup
bounds the sum over every descendant. capcast makes one child cgroup under its own cgroup where
it may: cgroup v1 (``memory`` and ``pids`` hierarchies, writable as root on most Linux machines)
or cgroup v2 when the ``memory`` and ``pids`` controllers are already delegated to capcast's own
cgroup's children (``cgroup.subtree_control``). Where neither is writable, :func:`create` returns
``None`` and the sandbox falls back to per-process limits (see docs/sandbox.md).
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path


def _mounts() -> list[tuple[str, str, str, str]]:
    """(fstype, mount point, mount root, super options) of every cgroup mount."""
    out = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
            out.append((tail[0], fields[4], fields[3], tail[2]))
    return out


def _own_paths() -> dict[str, str]:
    """controller (or "" for v2) -> this process's cgroup path."""
    paths = {}
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _id, controllers, path = line.split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                paths[name] = path
    except (OSError, ValueError):
        pass
    return paths


def _join(mount_point: str, mount_root: str, path: str) -> Path:
    relative = path[len(mount_root):] if path.startswith(mount_root) else path
    return Path(mount_point) / relative.lstrip("/")


@dataclass
class Cgroup:
    """One cgroup per run: ``dirs`` are its folders (one per v1 hierarchy, or one for v2)."""

    version: int
    dirs: list[Path]

    def attach_bytes(self) -> list[tuple[str, bytes]]:
        """(cgroup.procs file, "0") pairs: a child writes them between fork and exec to join."""
        return [(str(d / "cgroup.procs"), b"0") for d in self.dirs]

    def pids(self) -> list[int]:
        found = set()
        for d in self.dirs:
            try:
                found.update(int(p) for p in (d / "cgroup.procs").read_text().split())
            except (OSError, ValueError):
                pass
        return sorted(found)

    def kill_all(self) -> None:
        """SIGKILL every process still in the cgroup (v2: cgroup.kill where the kernel has it)."""
        if self.version == 2 and (self.dirs[0] / "cgroup.kill").exists():
            try:
                (self.dirs[0] / "cgroup.kill").write_text("1")
            except OSError:
                pass
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer struck inside this cgroup."""
        events = "memory.oom_control" if self.version == 1 else "memory.events"
        for d in self.dirs:
            try:
                for line in (d / events).read_text().splitlines():
                    if line.startswith("oom_kill ") and int(line.split()[1]) > 0:
                        return True
            except (OSError, ValueError):
                pass
        return False

    def remove(self) -> None:
        """Kill what is left and delete the folders (a cgroup with members cannot be removed)."""
        deadline = time.monotonic() + 2.0
        for d in self.dirs:
            while True:
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    self.kill_all()
                    time.sleep(0.01)


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def create(memory_bytes: int, max_processes: int) -> Cgroup | None:
    """A fresh cgroup with these limits, or ``None`` where no cgroup is writable here."""
    mounts, own = _mounts(), _own_paths()
    name = f"capcast-sandbox-{uuid.uuid4().hex[:12]}"
    v1 = {}
    for fstype, point, root, options in mounts:
        if fstype == "cgroup":
            for controller in ("memory", "pids"):
                if controller in options.split(",") and controller in own:
                    v1[controller] = _join(point, root, own[controller])
    made: list[Path] = []
    try:
        if set(v1) == {"memory", "pids"}:
            memory, pids = v1["memory"] / name, v1["pids"] / name
            memory.mkdir()
            made.append(memory)
            pids.mkdir()
            made.append(pids)
            _write(memory / "memory.limit_in_bytes", str(memory_bytes))
            if (memory / "memory.memsw.limit_in_bytes").exists():  # no escape into swap
                _write(memory / "memory.memsw.limit_in_bytes", str(memory_bytes))
            _write(pids / "pids.max", str(max_processes))
            return Cgroup(1, made)
        for fstype, point, root, _options in mounts:
            if fstype == "cgroup2" and "" in own:
                parent = _join(point, root, own[""])
                delegated = (parent / "cgroup.subtree_control").read_text().split()
                if {"memory", "pids"} <= set(delegated):
                    child = parent / name
                    child.mkdir()
                    made.append(child)
                    _write(child / "memory.max", str(memory_bytes))
                    if (child / "memory.swap.max").exists():
                        _write(child / "memory.swap.max", "0")
                    _write(child / "pids.max", str(max_processes))
                    return Cgroup(2, made)
    except OSError:
        for d in reversed(made):
            try:
                d.rmdir()
            except OSError:
                pass
    return None
