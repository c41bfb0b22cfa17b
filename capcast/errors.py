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
