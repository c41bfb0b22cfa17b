"""Built-in readers of external results, registered through the same ``register_readers`` hook a
third-party plugin uses."""

from capcast import hookimpl


@hookimpl
def register_readers(register):
    from capcast.tables.readers.builtin import READERS

    for reader in READERS:
        register(reader)
