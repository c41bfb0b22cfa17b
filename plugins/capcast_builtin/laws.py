"""Built-in laws (filled by the forecast room)."""
