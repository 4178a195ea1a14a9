"""A persistent per-image store for captions and features.

Captioning 73,000 NSD images takes GPU-hours, and cross-validation asks for
the same images once per fold. Results are therefore kept on disk in one
SQLite database, keyed by a *namespace* (a hash of everything that determines
the result: model identity, prompt, generation settings, ...) and the image
fingerprint (:meth:`skvem.images.ImageSet.fingerprints`).

SQLite gives what a crash-safe, multi-process cache needs for free: every
``put_many`` is one transaction (a run killed at any moment loses at most the
batch in flight and never leaves a half-written row), and WAL mode with a busy
timeout lets several processes (``cross_val_score(..., n_jobs=2)``) read and
write at once.

Where it lives: ``$SKVEM_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/skvem``,
else ``~/.cache/skvem``. Delete that folder, or call :func:`clear_cache`, to
clear it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path

__all__ = ["DiskCache", "default_cache_dir", "resolve_cache", "clear_cache", "namespace_key"]

_DB_NAME = "skvem-cache.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS namespaces (
    namespace TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    description TEXT NOT NULL,
    created REAL NOT NULL
);
"""
# SQLite limits the number of host parameters of one statement.
_CHUNK = 500


def default_cache_dir() -> Path:
    """The folder of the default cache: ``$SKVEM_CACHE_DIR``, else the user cache."""
    env = os.environ.get("SKVEM_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "skvem"


def namespace_key(kind: str, identity: dict) -> str:
    """Hash a JSON-serialisable description of what determines a result."""
    blob = json.dumps({"kind": kind, **identity}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class DiskCache:
    """A SQLite key-value store shared by processes, with atomic batch writes.

    Parameters
    ----------
    directory : str or path-like
        Folder holding the database file; created when missing.

    Notes
    -----
    Connections are opened per thread and per process and are never pickled;
    a :class:`DiskCache` therefore travels to joblib workers by its path.

    Examples
    --------
    >>> import tempfile
    >>> from skvem._utils.cache import DiskCache
    >>> cache = DiskCache(tempfile.mkdtemp())
    >>> cache.put_many("ns", {"a": "hello"})
    >>> cache.get_many("ns", ["a", "b"])
    {'a': 'hello'}
    """

    def __init__(self, directory):
        self.directory = Path(directory).expanduser()
        self.path = self.directory / _DB_NAME
        self._local = threading.local()

    def __getstate__(self):
        return {"directory": self.directory, "path": self.path}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._local = threading.local()

    def __repr__(self):
        return f"DiskCache({str(self.directory)!r})"

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        pid = getattr(self._local, "pid", None)
        if conn is not None and pid == os.getpid():
            return conn
        self.directory.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 60000")
        # WAL: readers never block the writer, and a crash leaves the last
        # committed transaction intact.
        for attempt in range(20):
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.executescript(_SCHEMA)
                break
            except sqlite3.OperationalError:  # another process is creating it
                if attempt == 19:
                    raise
                time.sleep(0.05 * (attempt + 1))
        conn.execute("PRAGMA synchronous = NORMAL")
        self._local.conn = conn
        self._local.pid = os.getpid()
        return conn

    def register(self, namespace: str, kind: str, description: dict) -> None:
        """Record what a namespace holds, for :meth:`namespaces` and humans."""
        conn = self._connect()
        conn.execute(
            "INSERT OR IGNORE INTO namespaces VALUES (?, ?, ?, ?)",
            (namespace, kind, json.dumps(description, sort_keys=True, default=str), time.time()),
        )

    def get_many(self, namespace: str, keys) -> dict:
        """Return ``{key: value}`` for the keys that are stored (others are absent)."""
        keys = list(dict.fromkeys(keys))
        out = {}
        if not keys:
            return out
        conn = self._connect()
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT key, value FROM entries WHERE namespace = ? AND key IN ({marks})",
                [namespace, *chunk],
            )
            out.update(rows.fetchall())
        return out

    def put_many(self, namespace: str, items: dict) -> None:
        """Store ``{key: value}`` (``str`` or ``bytes`` values) in one transaction."""
        if not items:
            return
        conn = self._connect()
        rows = [(namespace, k, v) for k, v in items.items()]
        for attempt in range(50):
            try:
                conn.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError:  # pragma: no cover - heavy contention
                if attempt == 49:
                    raise
                time.sleep(0.1)
        try:
            conn.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?)", rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def count(self, namespace: str | None = None) -> int:
        """Number of stored entries, in one namespace or in all."""
        conn = self._connect()
        if namespace is None:
            return conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
        return conn.execute(
            "SELECT COUNT(*) FROM entries WHERE namespace = ?", (namespace,)
        ).fetchone()[0]

    def namespaces(self) -> list:
        """``(namespace, kind, description, n_entries)`` for every registered namespace."""
        conn = self._connect()
        rows = conn.execute(
            "SELECT n.namespace, n.kind, n.description, "
            "(SELECT COUNT(*) FROM entries e WHERE e.namespace = n.namespace) "
            "FROM namespaces n ORDER BY n.created"
        ).fetchall()
        return [(ns, kind, json.loads(desc), count) for ns, kind, desc, count in rows]

    def clear(self, namespace: str | None = None) -> None:
        """Delete one namespace, or everything."""
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        if namespace is None:
            conn.execute("DELETE FROM entries")
            conn.execute("DELETE FROM namespaces")
        else:
            conn.execute("DELETE FROM entries WHERE namespace = ?", (namespace,))
            conn.execute("DELETE FROM namespaces WHERE namespace = ?", (namespace,))
        conn.execute("COMMIT")


def resolve_cache(cache_dir) -> DiskCache | None:
    """Map an estimator's ``cache_dir`` parameter to a store.

    ``None`` uses :func:`default_cache_dir`; ``False`` disables caching; a
    path uses that folder.
    """
    if cache_dir is False:
        return None
    if cache_dir is None or cache_dir is True:
        return DiskCache(default_cache_dir())
    if isinstance(cache_dir, (str, os.PathLike)):
        return DiskCache(cache_dir)
    raise ValueError(f"cache_dir must be None, False or a folder path; got {cache_dir!r}")


def clear_cache(cache_dir=None) -> None:
    """Delete every cached caption and feature in ``cache_dir`` (default folder if None)."""
    cache = resolve_cache(cache_dir)
    if cache is not None and cache.path.exists():
        cache.clear()
