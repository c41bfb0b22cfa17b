"""CLI commands for sampling (see capcast/commands/__init__.py)."""
