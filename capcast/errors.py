"""User-facing errors: the CLI turns these into one line and exit status 2, never a traceback."""


class CapcastError(Exception):
    """A mistake in the user's input (a spec, a table, an option) that they can mend."""

    exit_code = 2


def describe(exc: BaseException) -> str:
    """An exception as one line, ``TypeName: first line of the message`` (for status rows)."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0]
