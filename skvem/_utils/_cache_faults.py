"""What can go wrong with the cache file, and what to tell the user about it.

The cache is an optimisation: a broken, read-only or busy cache must never
cost the work it was meant to save. This module classifies sqlite's errors,
moves damaged files aside, finds who holds a lock, and warns once per file
and per kind of trouble (a job over 73,000 images must not print 9,000
identical warnings).
"""

from __future__ import annotations

import os
import sqlite3
import time
import warnings
from pathlib import Path

__all__ = [
    "CacheError",
    "CacheCorruptError",
    "CacheLockedError",
    "is_corruption",
    "is_lock",
    "is_read_only",
    "quarantine",
    "lock_holders",
    "warn_once",
    "writable",
]

# Sidecar files of a database in write-ahead-log mode.
SIDECARS = ("-wal", "-shm", "-journal")


class CacheError(OSError):
    """The cache file cannot be used; the message names it and says why."""


class CacheCorruptError(CacheError):
    """The cache file is damaged and could not be replaced by a fresh one."""


class CacheLockedError(CacheError):
    """Another process held the cache's write lock for longer than the timeout."""


def _code(exc) -> str:
    return getattr(exc, "sqlite_errorname", "") or ""


def is_corruption(exc) -> bool:
    """``True`` for "file is not a database" and "database disk image is malformed"."""
    text = str(exc).lower()
    return (
        _code(exc).startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))
        or "not a database" in text
        or "malformed" in text
    )


def is_lock(exc) -> bool:
    text = str(exc).lower()
    return _code(exc).startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text


def is_read_only(exc) -> bool:
    text = str(exc).lower()
    return (
        _code(exc).startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM"))
        or "readonly" in text
        or "read-only" in text
        or "unable to open database" in text
    )


def writable(directory: Path, path: Path) -> bool:
    """Whether the cache can be written: the folder (created if needed) and the file."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    if not os.access(directory, os.W_OK | os.X_OK):
        return False
    return not path.exists() or os.access(path, os.W_OK)


def quarantine(path: Path, exc, *, discard: bool = False) -> Path | None:
    """Move a damaged database (and its sidecars) to ``<name>.corrupt-<time>``; warn.

    With ``discard`` (clearing the cache anyway) the files are deleted instead.
    """
    if discard:
        for suffix in ("", *SIDECARS):
            try:
                os.remove(f"{path}{suffix}")
            except FileNotFoundError:
                pass
            except OSError as remove_error:
                raise CacheCorruptError(
                    f"the skvem cache {str(path)!r} is damaged ({exc}) and could not be "
                    f"deleted ({remove_error})"
                ) from exc
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    for suffix in ("", *SIDECARS):
        source = Path(f"{path}{suffix}")
        if source.exists():
            try:
                os.replace(source, f"{target}{suffix}")
            except OSError as move_error:
                raise CacheCorruptError(
                    f"the skvem cache {str(path)!r} is damaged ({exc}) and could not be moved "
                    f"aside ({move_error}); delete it, or pass another cache_dir"
                ) from exc
    warnings.warn(
        f"the skvem cache {str(path)!r} is damaged ({exc}); moved it to {str(target)!r} and "
        "started a fresh cache (earlier results will be computed again)",
        RuntimeWarning,
        stacklevel=4,
    )
    return target


def _inode_ids(paths) -> dict:
    ids = {}
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            continue
        ids[(os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)] = str(p)
    return ids


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            words = f.read().split(b"\0")
    except OSError:
        return ""
    return " ".join(w.decode(errors="replace") for w in words if w)[:120]


def lock_holders(path: Path) -> str:
    """Who holds a write lock on the database or its sidecars, as far as the OS says.

    Linux lists every POSIX lock in ``/proc/locks``; elsewhere (or for
    open-file-description locks) the holder stays unnamed.
    """
    files = _inode_ids([path, *(f"{path}{s}" for s in SIDECARS)])
    pids = set()
    try:
        with open("/proc/locks") as f:
            for line in f:
                fields = line.split()
                # "1: POSIX  ADVISORY  WRITE 1234 08:01:5678 0 EOF" ("->" marks waiters)
                if "->" in fields:
                    continue
                if len(fields) < 6 or fields[3] != "WRITE":
                    continue
                try:
                    major, minor, inode = fields[5].split(":")
                    key = (int(major, 16), int(minor, 16), int(inode))
                    pid = int(fields[4])
                except ValueError:
                    continue
                if key in files and pid > 0:
                    pids.add(pid)
    except OSError:
        pass
    if not pids:
        return "another process (its id is not visible here)"
    described = []
    for pid in sorted(pids):
        command = _command(pid)
        own = " (this process)" if pid == os.getpid() else ""
        described.append(f"pid {pid}{own}" + (f" `{command}`" if command else ""))
    return "held by " + ", ".join(described)


_WARNED: set = set()


def warn_once(path: Path, kind: str, message: str) -> None:
    """One warning per cache file and kind of trouble, per process."""
    key = (os.getpid(), str(path), kind)
    if key in _WARNED:
        return
    _WARNED.add(key)
    warnings.warn(message, RuntimeWarning, stacklevel=4)


def lock_message(path: Path, timeout: float) -> str:
    return (
        f"the skvem cache {str(path)!r} stayed locked for {timeout:g} s: its write lock is "
        f"{lock_holders(path)}. Wait for that process, raise the wait with the environment "
        "variable SKVEM_CACHE_TIMEOUT (seconds), or pass another cache_dir (False: no cache)"
    )


def connect_read_only(path: Path, timeout: float) -> sqlite3.Connection:
    """Open ``path`` without ever writing to it or creating files next to it.

    ``mode=ro`` first (it sees writes other processes make); a database in
    WAL mode in a folder we cannot write has no shared-memory file to read
    through, so fall back to ``immutable=1`` (safe for a frozen, shared cache).
    """
    from urllib.parse import quote

    uri = "file:" + quote(str(path.resolve()))
    last = None
    for query in ("mode=ro", "immutable=1"):
        conn = sqlite3.connect(f"{uri}?{query}", uri=True, timeout=timeout, isolation_level=None)
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError as exc:
            conn.close()
            last = exc
    raise last
