"""CLI commands for forecasting (see capcast/commands/__init__.py)."""
