"""One writer at a time per store, and temporary folders that belong to their writer.

:class:`StoreLock` is an exclusive ``flock`` on ``store/lock``: a second ``capcast eval`` or
``capcast sample`` on the same store waits (saying for whom) instead of measuring the same runs
again, then finds them stored and skips them. The kernel drops the lock when its holder dies
(SIGKILL included), so a crash never leaves the store locked. Readers (``capcast scores``) take
no lock: they read only committed parts.

Temporary folders under ``tmp/`` are named ``w<pid>-<uuid>``: start-up cleaning removes only
folders whose writer is gone (:func:`owner_alive`), never another live writer's.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
from pathlib import Path
from typing import Callable

LOCK_FILE = "lock"
_OWNED = re.compile(r"^w(\d+)-")


def tmp_name(unique: str) -> str:
    """The name of a temporary folder owned by this process."""
    return f"w{os.getpid()}-{unique}"


def owner_pid(name: str) -> int | None:
    """The writer's pid in a temporary name (None for names of older capcast: owner unknown)."""
    match = _OWNED.match(name)
    return int(match.group(1)) if match else None


def owner_alive(name: str) -> bool:
    """Whether the temporary ``name`` belongs to another process that is still running."""
    pid = owner_pid(name)
    if pid is None or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


class StoreLock:
    """The exclusive writer lock of a store, held from construction until :meth:`release`."""

    def __init__(self, root: Path, purpose: str, on_wait: Callable[[str], None] | None = None):
        self.path = Path(root) / LOCK_FILE
        self.fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait(f"waiting for the store {Path(root)}: {self._holder()} is writing to it")
                fcntl.flock(self.fd, fcntl.LOCK_EX)
            os.ftruncate(self.fd, 0)
            me = {"pid": os.getpid(), "purpose": purpose, "since": dt.datetime.now().isoformat(timespec="seconds")}
            os.pwrite(self.fd, json.dumps(me).encode(), 0)
        except BaseException:
            os.close(self.fd)
            self.fd = None
            raise

    def _holder(self) -> str:
        try:
            info = json.loads(os.pread(self.fd, 4096, 0).decode() or "{}")
            return f"{info.get('purpose', 'another capcast')} (pid {info['pid']}, since {info.get('since', '?')})"
        except (OSError, ValueError, KeyError, TypeError):
            return "another capcast"

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None

    def __enter__(self) -> "StoreLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()

