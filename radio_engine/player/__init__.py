"""player."""
