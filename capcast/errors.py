"""User-facing errors: the CLI turns these into one line and exit status 2, never a traceback."""


class CapcastError(Exception):
    """A mistake in the user's input (a spec, a table, an option) that they can mend."""

    exit_code = 2


def describe(exc: BaseException) -> str:
    """An exception as one line, ``TypeName: first line of the message`` (for status rows)."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def note(message: str) -> None:
    """A one-line note for the user (e.g. how an old table was read): logged on logger
    ``capcast``, which the CLI prints to stderr as ``note: ...``; silent in library use unless the
    caller configures logging."""
    import logging

    logging.getLogger("capcast").info(message)


# Control characters (C0 but newline and tab, DEL, C1) a name or message could smuggle into a
# terminal: ``\x1b[2J`` in a model name would clear the screen. They are shown escaped instead.
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)) if c not in (0x09, 0x0A)}


def escape_controls(text: str) -> str:
    """``text`` with every control character but newline and tab written as ``\\xNN``."""
    return str(text).translate(_CONTROL)


def os_error_line(exc: OSError) -> str:
    """An operating-system error (disk full, read-only folder, name too long, ...) as one line
    naming the path and how to mend it."""
    import errno

    where = f"{exc.filename}: " if exc.filename else ""
    what = exc.strerror or (str(exc).splitlines() or [type(exc).__name__])[0]
    mend = {
        errno.ENOSPC: "free some disk space (or use a folder on another disk) and run the command again; what was stored is kept",
        errno.EROFS: "the filesystem is read-only; choose a writable folder",
        errno.EACCES: "you may not write there; choose a writable folder or fix its permissions",
        errno.EPERM: "you may not write there; choose a writable folder or fix its permissions",
        errno.ENAMETOOLONG: "a name is too long for the filesystem (255 bytes per name); use shorter names",
        errno.ENOTDIR: "a part of the path is a file, not a folder; fix the path",
        errno.EISDIR: "that is a folder; give a file name",
        errno.ENOENT: "the path does not exist; create its folder or fix the path",
        errno.EEXIST: "something of that name is already there; choose another path",
    }.get(exc.errno, "check the path and try again")
    return f"{where}{what}; {mend}"
