"""Atomic file writes: a crash never leaves a half-written result behind."""

from __future__ import annotations

import os
import tempfile

__all__ = ["atomic_write"]


def atomic_write(path, write, *, binary=False) -> str:
    """Call ``write(file)`` on a temporary file beside ``path``, then move it into place.

    Parameters
    ----------
    path : str or path-like
        The file to (re)write; its folder is created if needed.
    write : callable
        Receives the open temporary file.
    binary : bool, default=False
        Open the file in binary mode.

    Returns
    -------
    path : str
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path
