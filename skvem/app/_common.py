"""What every ``skvem`` subcommand shares."""

from __future__ import annotations

import os

__all__ = ["CommandError", "none_or", "check_output_path"]


class CommandError(Exception):
    """An error the command reports as one line."""


def none_or(value):
    """``None`` for the string ``"none"`` (any case), else ``value``."""
    return None if value is not None and value.lower() == "none" else value


def _nearest_existing(path: str) -> str:
    """The deepest existing folder on the way to ``path`` (where it would be created)."""
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        up = os.path.dirname(parent)
        if up == parent:
            break
        parent = up
    return parent


def check_output_path(path, *, kind: str = "dir", option: str = "--out") -> str:
    """Check that ``path`` can be written as a ``kind`` before any work starts.

    A command that fails only after hours of fitting because its output path
    is a file, a folder, empty or read-only loses all of that work; so every
    subcommand calls this first, before it loads a model.

    Parameters
    ----------
    path : str or path-like
        The output folder (``kind="dir"``) or file (``kind="file"``).
    kind : {"dir", "file"}
        What the command will write at ``path``.
    option : str
        The command-line option named in the error message.

    Returns
    -------
    path : str
        ``path`` as a string, unchanged.

    Raises
    ------
    CommandError
        If ``path`` is empty, exists as the other kind, lies below a file, or
        its folder (or the nearest existing folder above it) is not writable.
    """
    if kind not in ("dir", "file"):
        raise ValueError(f"kind must be 'dir' or 'file', got {kind!r}")
    path = os.fspath(path) if path is not None else ""
    if not str(path).strip():
        raise CommandError(f"{option} must be a non-empty path")
    if kind == "dir":
        if os.path.exists(path) and not os.path.isdir(path):
            raise CommandError(f"{option} {path!r} is an existing file; expected a folder")
        target = path if os.path.isdir(path) else _nearest_existing(path)
    else:
        if os.path.isdir(path) or path.endswith(("/", os.sep)):
            raise CommandError(f"{option} {path!r} is a folder; expected a file name")
        if os.path.exists(path) and not os.access(path, os.W_OK):
            raise CommandError(f"{option} {path!r} exists and is not writable")
        target = _nearest_existing(path)
    if not os.path.isdir(target):
        raise CommandError(f"{option} {path!r} lies below {target!r}, which is a file, not a folder")
    if not os.access(target, os.W_OK | os.X_OK):
        raise CommandError(f"{option} {path!r}: folder {target!r} is not writable")
    return path
