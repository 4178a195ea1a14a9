"""Move cache entries between machines: export to a file, import from files.

The cache (:mod:`skvem._utils.cache`) is one SQLite file on a local disk;
SQLite over NFS is unsafe, so the jobs of a SLURM array or of a cluster each
write a cache of their own and their entries are carried to the machine that
needs them as *export files*. An export file is JSON Lines: per namespace, a
header line

``{"skvem_cache_export": 1, "kind": ..., "namespace": ..., "settings": {...}, "entries": n}``

followed by ``n`` lines ``{"key": fingerprint, "value": caption}`` (``"b64"``
instead of ``"value"`` for bytes). ``settings`` is what the namespace hashes
(:func:`skvem._utils.cache.namespace_key`), so an import recomputes the
namespace and refuses a file whose header does not match it, and, given the
expected settings (:meth:`CaptionTransformer.cache_settings
<skvem.language.captioning.CaptionTransformer.cache_settings>`), refuses a file
made with another captioner, prompt or generation settings, naming what
differs.
"""

from __future__ import annotations

import base64
import json
import os

from skvem._utils.cache import DiskCache, namespace_key, resolve_cache
from skvem._utils.files import atomic_path

__all__ = ["export_cache", "import_cache", "settings_differences", "CacheImportError"]

_FORMAT = 1


class CacheImportError(ValueError):
    """An export file that cannot be imported (its message names the file and why)."""


def _atomic_write_lines(path, lines):
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            for line in lines:
                f.write(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n")


def _store(cache_dir):
    if isinstance(cache_dir, DiskCache):
        return cache_dir
    if cache_dir is False:
        raise ValueError("cache_dir must be None, a folder path or a DiskCache; got False")
    # strict: failing to read or write is an error here, not a warning.
    return DiskCache(resolve_cache(cache_dir).directory, strict=True)


def export_cache(path, cache_dir=None, *, namespaces=None, kind=None, keys=None):
    """Write entries of a cache to the export file ``path`` (atomically).

    Parameters
    ----------
    path : str or path-like
        The file to write; replaced only once it is complete.
    cache_dir : str, path-like, DiskCache or None
        The cache; ``None`` is skvem's default cache folder.
    namespaces : list of str, optional
        Namespaces to export; default every registered namespace (of
        ``kind``, if given).
    kind : str, optional
        Only namespaces of this kind (``"caption"``).
    keys : iterable of str, optional
        Only these keys (e.g. the fingerprints of one shard's images).

    Returns
    -------
    n_entries : int
        Number of entries written.
    """
    cache = _store(cache_dir)
    wanted = None if namespaces is None else set(namespaces)
    selected = [
        (ns, k, desc)
        for ns, k, desc, _ in cache.namespaces()
        if (wanted is None or ns in wanted) and (kind is None or k == kind)
    ]
    keys = None if keys is None else list(dict.fromkeys(keys))
    lines, total = [], 0
    for ns, k, desc in selected:
        found = cache.get_many(ns, cache.keys(ns) if keys is None else keys)
        lines.append(
            {
                "skvem_cache_export": _FORMAT,
                "kind": k,
                "namespace": ns,
                "settings": desc,
                "entries": len(found),
            }
        )
        for key in sorted(found):
            value = found[key]
            if isinstance(value, bytes):
                lines.append({"key": key, "b64": base64.b64encode(value).decode("ascii")})
            else:
                lines.append({"key": key, "value": value})
        total += len(found)
    _atomic_write_lines(path, lines)
    return total


def settings_differences(expected, found):
    """``["prompt: file has 'a', expected 'b'", ...]`` for the settings that differ."""
    def canonical(value):
        return json.dumps(value, sort_keys=True, default=str)

    out = []
    for name in sorted(set(expected) | set(found)):
        a, b = found.get(name, "<missing>"), expected.get(name, "<missing>")
        if canonical(a) != canonical(b):
            out.append(f"{name}: file has {a!r}, expected {b!r}")
    return out


def _lines(where):
    try:
        with open(where, encoding="utf-8") as f:
            yield from enumerate(f, 1)
    except OSError as exc:
        raise CacheImportError(f"cannot read cache export file {where!r}: {exc}") from exc
    except UnicodeDecodeError:
        raise CacheImportError(f"{where}: not a text file (not a skvem cache export)") from None


def _read(path):
    """``[(kind, namespace, settings, {key: value})]`` of one export file, checked."""
    sections, current, where = [], None, os.fspath(path)
    for lineno, line in _lines(where):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CacheImportError(f"{where}:{lineno}: not JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise CacheImportError(f"{where}:{lineno}: expected a JSON object")
        if "skvem_cache_export" in record:
            if record["skvem_cache_export"] != _FORMAT:
                raise CacheImportError(
                    f"{where}:{lineno}: export format {record['skvem_cache_export']!r} "
                    f"is not {_FORMAT} (written by another skvem version)"
                )
            kind, ns = record.get("kind"), record.get("namespace")
            settings = record.get("settings")
            if not isinstance(kind, str) or not isinstance(settings, dict):
                raise CacheImportError(f"{where}:{lineno}: header without kind or settings")
            if namespace_key(kind, settings) != ns:
                raise CacheImportError(
                    f"{where}:{lineno}: namespace {ns!r} does not match its settings (edited "
                    "file, or written by another skvem version)"
                )
            current = (kind, ns, settings, {}, record.get("entries"), lineno)
            sections.append(current)
            continue
        if current is None:
            raise CacheImportError(
                f"{where}:{lineno}: not a skvem cache export file (no header line; "
                "write one with `skvem cache export` or `skvem caption --export`)"
            )
        key, value = record.get("key"), record.get("value")
        if "b64" in record:
            try:
                value = base64.b64decode(str(record["b64"]), validate=True)
            except ValueError:
                value = None
        if not isinstance(key, str) or not isinstance(value, (str, bytes)):
            raise CacheImportError(f"{where}:{lineno}: expected {{'key': str, 'value': str}}")
        current[3][key] = value
    for kind, ns, _, entries, declared, lineno in sections:
        if declared != len(entries):
            raise CacheImportError(
                f"{where}:{lineno}: header announces {declared} entries, the file holds "
                f"{len(entries)} (truncated copy?)"
            )
    return [(kind, ns, settings, entries) for kind, ns, settings, entries, _, _ in sections]


def import_cache(paths, cache_dir=None, *, expect=None, kind="caption"):
    """Load export files into a cache: checked first, then written.

    Every file is read and checked before anything is written, so a bad
    file leaves the cache as it was. Each namespace is then written in one
    transaction. Importing a file twice changes nothing; an entry already in
    the cache keeps its value.

    Parameters
    ----------
    paths : list of str or path-like
    cache_dir : str, path-like, DiskCache or None
        The cache; ``None`` is skvem's default cache folder.
    expect : dict, optional
        Settings every imported namespace of ``kind`` must have (e.g.
        ``CaptionTransformer(...).cache_settings()``).
    kind : str, default="caption"
        The kind ``expect`` applies to.

    Returns
    -------
    report : list of dict
        Per file and namespace: ``file``, ``namespace``, ``kind``, ``new``
        (entries added) and ``present`` (already in the cache).

    Raises
    ------
    CacheImportError
        For a file that is unreadable, truncated, edited, or made with
        other settings than ``expect`` (the message names the file and every
        setting that differs).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from skvem import CaptionTransformer, export_cache, import_cache
    >>> def describe(images):
    ...     return ["a black square" for _ in images]
    >>> describe.cache_key = "doc.describe/v1"
    >>> here, there = tempfile.mkdtemp(), tempfile.mkdtemp()
    >>> captioner = CaptionTransformer(model=describe, cache_dir=here)
    >>> _ = captioner.fit_transform(np.zeros((2, 8, 8, 3), dtype=np.uint8))
    >>> export_cache(os.path.join(here, "captions.jsonl"), here)
    1
    >>> report = import_cache([os.path.join(here, "captions.jsonl")], there,
    ...                       expect=captioner.cache_settings())
    >>> report[0]["new"]
    1
    """
    sections = []
    for path in paths:
        for k, ns, settings, entries in _read(path):
            if expect is not None and k == kind:
                diff = settings_differences(expect, settings)
                if diff:
                    raise CacheImportError(
                        f"{os.fspath(path)}: made with other settings, refused: " + "; ".join(diff)
                    )
            sections.append((os.fspath(path), k, ns, settings, entries))
    cache, report = _store(cache_dir), []
    for path, k, ns, settings, entries in sections:
        present = cache.get_many(ns, list(entries))
        new = {key: v for key, v in entries.items() if key not in present}
        cache.register(ns, k, settings)
        cache.put_many(ns, new)
        report.append(
            {"file": path, "namespace": ns, "kind": k, "new": len(new), "present": len(present)}
        )
    return report
