"""CLI commands for evaluation (see capcast/commands/__init__.py)."""
