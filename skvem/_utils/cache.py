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

When the cache breaks, the work goes on (one warning per file and kind of
trouble, naming the file; :mod:`skvem._utils._cache_faults`):

* a damaged file ("file is not a database", "malformed": random bytes, a
  damaged page, a truncated file) is moved aside to
  ``skvem-cache.sqlite3.corrupt-<time>`` and a fresh cache started;
* a read-only folder or file (a shared, pre-filled cache on a cluster) is
  opened read-only: hits are served, misses computed and not written;
* a write lock held by another process for more than ``SKVEM_CACHE_TIMEOUT``
  seconds (default 10) stops this process's writes to that file, with a
  warning naming the holder.

``DiskCache(directory, strict=True)`` raises :class:`CacheError` subclasses
instead of degrading (for commands whose point is to write the cache), and
:func:`clear_cache` always does.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path

from skvem._utils import _cache_faults as faults
from skvem._utils._cache_faults import CacheCorruptError, CacheError, CacheLockedError
from skvem._utils.validation import check_unicode

__all__ = [
    "DiskCache",
    "default_cache_dir",
    "resolve_cache",
    "clear_cache",
    "namespace_key",
    "lookup",
    "CacheError",
    "CacheCorruptError",
    "CacheLockedError",
]

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
_DEFAULT_TIMEOUT = 10.0
# (pid, database path) -> why this process no longer writes to it.
_NO_WRITE: dict = {}


def _lock_timeout() -> float:
    """Seconds to wait for another process's write lock: ``$SKVEM_CACHE_TIMEOUT``, else 10."""
    raw = os.environ.get("SKVEM_CACHE_TIMEOUT")
    if raw is None or not raw.strip():
        return _DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses NaN
        raise ValueError(f"SKVEM_CACHE_TIMEOUT must be a number of seconds >= 0; got {raw!r}")
    return value


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


def lookup(cache, namespace, fingerprints):
    """The cached values of ``fingerprints`` and the positions left to compute.

    Returns
    -------
    found : dict
        Fingerprint -> cached value.
    todo : list of int
        The first position of each distinct fingerprint not in the cache:
        identical images are computed once.
    """
    found = cache.get_many(namespace, list(fingerprints))
    todo, seen = [], set(found)
    for i, fp in enumerate(fingerprints):
        if fp not in seen:
            seen.add(fp)
            todo.append(i)
    return found, todo


class DiskCache:
    """A SQLite key-value store shared by processes, with atomic batch writes.

    Parameters
    ----------
    directory : str or path-like
        Folder holding the database file; created when missing (and
        writable).
    strict : bool, default=False
        Raise :class:`CacheError` when the cache cannot be written (read-only,
        locked) instead of warning once and going on without writing.

    Notes
    -----
    Connections are opened per thread and per process and are never pickled;
    a :class:`DiskCache` therefore travels to joblib workers by its path.
    See the module documentation for what happens when the file is damaged,
    read-only or locked.

    Examples
    --------
    >>> import tempfile
    >>> from skvem._utils.cache import DiskCache
    >>> cache = DiskCache(tempfile.mkdtemp())
    >>> cache.put_many("ns", {"a": "hello"})
    >>> cache.get_many("ns", ["a", "b"])
    {'a': 'hello'}
    """

    def __init__(self, directory, *, strict=False):
        self.directory = Path(directory).expanduser()
        self.path = self.directory / _DB_NAME
        self.strict = strict
        self._local = threading.local()

    def __getstate__(self):
        return {"directory": self.directory, "path": self.path, "strict": self.strict}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._local = threading.local()

    def __repr__(self):
        return f"DiskCache({str(self.directory)!r})"

    # -- connections ----------------------------------------------------------

    @property
    def read_only(self) -> bool:
        """Whether this process only reads the cache (see the module documentation)."""
        self._connect()
        return self._local.mode != "rw"

    def _close(self):
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            conn.close()
        self._local.conn = None
        self._local.pid = None

    def _connect(self):
        """This thread's connection (``None`` when there is no file to read)."""
        if getattr(self._local, "pid", None) == os.getpid():
            return self._local.conn
        timeout = _lock_timeout()
        key = (os.getpid(), str(self.path))
        stopped = key in _NO_WRITE and not self.strict
        if not stopped and faults.writable(self.directory, self.path):
            self._local.mode = "rw"
            conn = self._connect_rw(timeout)
        elif self.path.exists():
            self._local.mode = "ro"
            conn = faults.connect_read_only(self.path, timeout)
        else:
            self._local.mode, conn = "none", None
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _connect_rw(self, timeout):
        conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            # WAL: readers never block the writer, and a crash leaves the
            # last committed transaction intact.
            for attempt in range(20):
                try:
                    conn.execute("PRAGMA journal_mode = WAL")
                    conn.executescript(_SCHEMA)
                    break
                except sqlite3.OperationalError as exc:  # another process is creating it
                    if attempt == 19 or not faults.is_lock(exc):
                        raise
                    time.sleep(0.05 * (attempt + 1))
            conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _stop_writing(self, kind, message):
        """Go on read-only in this process, after one warning (or raise when strict)."""
        if self.strict:
            error = CacheLockedError if kind == "locked" else CacheError
            raise error(message)
        _NO_WRITE[(os.getpid(), str(self.path))] = kind
        self._close()
        faults.warn_once(self.path, kind, message + "; results are computed but not cached")

    def _call(self, op, *, write, default=None, discard_corrupt=False):
        """Run ``op(conn)``, turning sqlite's failures into the behaviour documented above."""
        for attempt in range(2):
            try:
                conn = self._connect()
                if conn is None or (write and self._local.mode != "rw"):
                    stopped = (os.getpid(), str(self.path)) in _NO_WRITE  # and warned
                    if write and (self.strict or not stopped):
                        self._stop_writing(
                            "read-only",
                            f"the skvem cache {str(self.path)!r} is read-only here "
                            f"(folder or file not writable)",
                        )
                    return default
                return op(conn)
            except sqlite3.DatabaseError as exc:
                mode = getattr(self._local, "mode", "rw")
                self._close()
                if faults.is_corruption(exc):
                    if mode != "rw" and not discard_corrupt:
                        faults.warn_once(
                            self.path, "corrupt",
                            f"the skvem cache {str(self.path)!r} is damaged ({exc}) and "
                            "read-only; it is not used",
                        )
                        self._local.conn, self._local.mode = None, "none"
                        self._local.pid = os.getpid()
                        return default
                    if attempt:
                        raise CacheCorruptError(
                            f"the skvem cache {str(self.path)!r} is still damaged after a "
                            f"fresh start ({exc})"
                        ) from exc
                    faults.quarantine(self.path, exc, discard=discard_corrupt)
                    continue
                if faults.is_lock(exc):
                    message = faults.lock_message(self.path, _lock_timeout())
                    if self.strict:
                        raise CacheLockedError(message) from exc
                    if write:
                        self._stop_writing("locked", message)
                    else:
                        faults.warn_once(self.path, "locked", message + "; computing without it")
                    return default
                if "no such table" in str(exc) and mode != "rw":
                    return default  # a read-only file that was never filled
                if faults.is_read_only(exc) and not self.strict:
                    self._stop_writing(
                        "read-only", f"the skvem cache {str(self.path)!r} cannot be written ({exc})"
                    )
                    if write:
                        return default
                    continue
                raise CacheError(f"the skvem cache {str(self.path)!r}: {exc}") from exc
        return default  # pragma: no cover - the loop returns or raises

    # -- the store ----------------------------------------------------------------

    def register(self, namespace: str, kind: str, description: dict) -> None:
        """Record what a namespace holds, for :meth:`namespaces` and humans."""
        row = (namespace, kind, json.dumps(description, sort_keys=True, default=str), time.time())
        self._call(
            lambda conn: conn.execute("INSERT OR IGNORE INTO namespaces VALUES (?, ?, ?, ?)", row),
            write=True,
        )

    def get_many(self, namespace: str, keys) -> dict:
        """Return ``{key: value}`` for the keys that are stored (others are absent)."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}

        def read(conn):
            out = {}
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT key, value FROM entries WHERE namespace = ? AND key IN ({marks})",
                    [namespace, *chunk],
                )
                out.update(rows.fetchall())
            return out

        return self._call(read, write=False, default={})

    def put_many(self, namespace: str, items: dict) -> None:
        """Store ``{key: value}`` (``str`` or ``bytes`` values) in one transaction."""
        if not items:
            return
        for k, v in items.items():  # sqlite cannot store a lone surrogate: say which entry
            if isinstance(v, str):
                check_unicode(v, f"the cache entry {k!r}")
        rows = [(namespace, k, v) for k, v in items.items()]
        self._call(
            lambda conn: self._transaction(
                conn, lambda: conn.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?)", rows)
            ),
            write=True,
        )

    @staticmethod
    def _transaction(conn, body):
        # BEGIN IMMEDIATE takes the write lock up front (waiting busy_timeout),
        # so a transaction never fails half-way for want of it.
        conn.execute("BEGIN IMMEDIATE")
        try:
            body()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def count(self, namespace: str | None = None) -> int:
        """Number of stored entries, in one namespace or in all."""
        if namespace is None:
            query, args = "SELECT COUNT(*) FROM entries", ()
        else:
            query, args = "SELECT COUNT(*) FROM entries WHERE namespace = ?", (namespace,)
        return self._call(lambda conn: conn.execute(query, args).fetchone()[0], write=False, default=0)

    def keys(self, namespace: str) -> list:
        """The keys stored in ``namespace``, sorted (for exporting it)."""
        query = "SELECT key FROM entries WHERE namespace = ? ORDER BY key"
        rows = self._call(lambda conn: conn.execute(query, (namespace,)).fetchall(), write=False,
                          default=[])
        return [key for (key,) in rows]

    def namespaces(self) -> list:
        """``(namespace, kind, description, n_entries)`` for every registered namespace."""
        rows = self._call(
            lambda conn: conn.execute(
                "SELECT n.namespace, n.kind, n.description, "
                "(SELECT COUNT(*) FROM entries e WHERE e.namespace = n.namespace) "
                "FROM namespaces n ORDER BY n.created"
            ).fetchall(),
            write=False,
            default=[],
        )
        return [(ns, kind, json.loads(desc), count) for ns, kind, desc, count in rows]

    def clear(self, namespace: str | None = None) -> None:
        """Delete one namespace, or everything (a damaged file is then deleted).

        Raises
        ------
        CacheError
            When the cache is read-only or locked by another process.
        """
        def delete(conn):
            if namespace is None:
                statements = ["DELETE FROM entries", "DELETE FROM namespaces"]
                args = ()
            else:
                statements = [
                    "DELETE FROM entries WHERE namespace = ?",
                    "DELETE FROM namespaces WHERE namespace = ?",
                ]
                args = (namespace,)
            self._transaction(conn, lambda: [conn.execute(q, args) for q in statements])

        strict, self.strict = self.strict, True
        try:
            self._call(delete, write=True, discard_corrupt=namespace is None)
        finally:
            self.strict = strict


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
        try:
            os.fsencode(cache_dir)
        except UnicodeEncodeError:
            raise ValueError(f"cache_dir {cache_dir!r} is not a valid file name here") from None
        return DiskCache(cache_dir)
    raise ValueError(f"cache_dir must be None, False or a folder path; got {cache_dir!r}")


def clear_cache(cache_dir=None) -> None:
    """Delete every cached caption and feature in ``cache_dir`` (default folder if None).

    A damaged cache file is deleted outright.

    Raises
    ------
    skvem._utils.cache.CacheError
        When the cache is read-only or another process holds its write lock;
        the message names the file.
    """
    cache = resolve_cache(cache_dir)
    if cache is not None and cache.path.exists():
        cache.clear()
