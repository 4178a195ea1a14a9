"""Files that appear whole or not at all: write to a temporary name, then rename."""

from __future__ import annotations

import contextlib
import json
import os
import uuid

__all__ = ["atomic_path", "write_json_atomic", "write_text_atomic"]


@contextlib.contextmanager
def atomic_path(path, *, suffix=None):
    """Yield a temporary path next to ``path``; rename it to ``path`` if the block succeeds.

    A crash or an exception inside the block leaves ``path`` as it was (an
    earlier version, or nothing) and removes the temporary file. The temporary
    file lies in the same folder, so the final ``os.replace`` is atomic.
    ``suffix`` (default: ``path``'s own ending) keeps writers that look at the
    file ending, such as matplotlib's ``savefig``, happy.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if suffix is None:
        suffix = os.path.splitext(path)[1]
    # Not mkstemp: its 0600 mode would stick to the result; a fresh name keeps the umask's.
    tmp = os.path.join(
        folder, f".{os.path.basename(path)}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{suffix}"
    )
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text_atomic(path, text: str) -> str:
    """Write ``text`` (UTF-8) to ``path`` atomically; return ``path``."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    return os.fspath(path)


def write_json_atomic(path, obj) -> str:
    """Write ``obj`` as indented JSON to ``path`` atomically; return ``path``."""
    return write_text_atomic(path, json.dumps(obj, indent=2) + "\n")
