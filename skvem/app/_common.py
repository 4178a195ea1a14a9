"""What every ``skvem`` subcommand shares."""

from __future__ import annotations

__all__ = ["CommandError", "none_or"]


class CommandError(Exception):
    """An error the command reports as one line."""


def none_or(value):
    """``None`` for the string ``"none"`` (any case), else ``value``."""
    return None if value is not None and value.lower() == "none" else value
