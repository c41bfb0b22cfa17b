"""CLI commands for reference (see capcast/commands/__init__.py)."""
