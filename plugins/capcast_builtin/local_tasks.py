"""Built-in local tasks (filled by the evaluation room)."""
