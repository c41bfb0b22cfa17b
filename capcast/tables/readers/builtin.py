"""The built-in readers (filled in by the readers work)."""

READERS = ()
