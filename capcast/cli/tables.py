"""CLI command for tables: ``capcast import`` (filled in by the readers work)."""


def import_command() -> None:
    """Make a scores table from external results."""
