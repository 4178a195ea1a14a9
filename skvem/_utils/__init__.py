"""Private helpers every step shares: validation, model hub, cache, torch, progress bars."""
