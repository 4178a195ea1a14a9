"""Find pretrained models on disk or on the Hugging Face Hub, offline-first.

Every skvem estimator that loads pretrained weights names them with one
string: a Hugging Face id (``"org/name"``), a local folder, or a
library-specific spec (open_clip's ``"hf-hub:"`` / ``"local-dir:"``). The
helpers here turn such a string into something a loader can open *without
touching the network when it does not have to*, and turn every failure into
one :class:`ModelNotFoundError` that says what was looked for and how to point
skvem at a local copy.

Resolution order (:func:`resolve_pretrained`):

1. an existing local folder is used as is;
2. a string that looks like a path (absolute, ``./``, ``../``, ``~``) but is
   not a folder is an error: it was meant to be local;
3. otherwise it is a Hugging Face id. If the Hugging Face cache already holds
   it (``required_file`` of ``revision`` is there), the cached snapshot folder
   is returned, so loading never waits on the network; else, when downloads
   are allowed, the id itself is returned for the library to download; when
   ``HF_HUB_OFFLINE`` is set it is an error.

Loaded models are kept in memory by :func:`skvem._utils.model_memo.memoized`
(re-exported here), so the clones that cross-validation and grid search make
of an estimator share one copy of its frozen weights.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from skvem._utils.model_memo import memoized, release_models

__all__ = [
    "ModelNotFoundError",
    "ResolvedModel",
    "is_offline",
    "looks_like_path",
    "hf_cache_dir",
    "cached_snapshot",
    "resolve_pretrained",
    "model_not_found",
    "folder_fingerprint",
    "path_stamp",
    "memoized",
    "local_stamp",
    "release_models",
]


class ModelNotFoundError(FileNotFoundError):
    """Pretrained weights could not be found locally nor downloaded.

    The message says what was looked for and how to point skvem at a local
    copy. It is a :class:`FileNotFoundError` (hence an :class:`OSError`, which
    is what transformers raises for a missing model).
    """


@dataclass(frozen=True)
class ResolvedModel:
    """Where pretrained weights will be loaded from.

    Attributes
    ----------
    spec : str
        What the user wrote.
    kind : {"local", "hub"}
        ``"local"``: ``location`` is a folder on disk (a user folder or a
        snapshot of the Hugging Face cache). ``"hub"``: ``location`` is a
        Hugging Face id that the loader will download.
    location : str
        The folder, or the Hugging Face id.
    repo_id : str or None
        The Hugging Face id when ``spec`` named one, else None.
    revision : str or None
        The revision asked for (None is the default branch).
    """

    spec: str
    kind: str
    location: str
    repo_id: str | None = None
    revision: str | None = None


_TRUE = {"1", "true", "yes", "on"}
# Hugging Face ids: "name" or "org/name", letters, digits, "-", "_", ".".
_HF_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[A-Za-z0-9][\w.\-]*)?$")


def is_offline() -> bool:
    """Whether Hugging Face downloads are switched off (``HF_HUB_OFFLINE``)."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in _TRUE:
            return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        return False


def looks_like_path(spec: str) -> bool:
    """Whether ``spec`` was meant as a path rather than a Hugging Face id.

    Absolute paths, paths starting with ``./``, ``../`` or ``~``, Windows
    drive paths, paths with more than one ``/`` and anything that exists on
    disk count as paths; ``"org/name"`` does not.
    """
    s = os.fspath(spec)
    if os.path.exists(os.path.expanduser(s)):
        return True
    if s.startswith(("/", "./", "../", "~", ".\\", "..\\")) or re.match(r"^[A-Za-z]:[\\/]", s):
        return True
    return "\\" in s or s.count("/") > 1 or not _HF_ID.match(s)


def hf_cache_dir(cache_dir=None) -> str:
    """The Hugging Face hub cache folder in use (``cache_dir`` if given)."""
    if cache_dir is not None:
        return os.fspath(cache_dir)
    try:
        from huggingface_hub import constants

        return os.fspath(constants.HF_HUB_CACHE)
    except ImportError:  # pragma: no cover
        return os.path.join(os.path.expanduser("~"), ".cache", "huggingface", "hub")


def cached_snapshot(repo_id: str, *, revision=None, cache_dir=None, required_file="config.json"):
    """The snapshot folder of ``repo_id`` in the Hugging Face cache, or None.

    The snapshot counts as present when ``required_file`` of ``revision`` is
    cached. No network access.
    """
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover
        return None
    try:
        found = try_to_load_from_cache(
            repo_id, required_file, cache_dir=cache_dir, revision=revision
        )
    except Exception:  # an invalid id or revision is simply "not cached"
        return None
    if isinstance(found, str) and os.path.isfile(found):
        return str(Path(found).parent)
    return None


def model_not_found(owner, param, spec, looked_for, hint, *, cause=None) -> ModelNotFoundError:
    """Build the one error every loader raises for missing pretrained weights.

    Parameters
    ----------
    owner : str
        The estimator, e.g. ``"CaptionTransformer"``.
    param : str
        The parameter that named the model, e.g. ``"model"``.
    spec : str
        What the user passed.
    looked_for : list of str
        Each place that was searched, in words.
    hint : str
        How to point skvem at a local copy.
    cause : BaseException, optional
        The loader's own error, quoted on the last line.

    Returns
    -------
    ModelNotFoundError
        To be raised by the caller (``raise model_not_found(...) from exc``).
    """
    lines = [f"{owner}({param}={spec!r}): could not find these pretrained weights."]
    lines.append("Looked for:")
    lines += [f"  - {item}" for item in looked_for]
    lines.append(hint)
    if cause is not None:
        msg = str(cause).strip().splitlines()
        lines.append(f"(loader said: {type(cause).__name__}: {msg[0] if msg else ''})")
    return ModelNotFoundError("\n".join(lines))


def _hf_hint(param, repo_id, example_folder, extra=""):
    name = repo_id.rsplit("/", 1)[-1]
    return (
        "To use a local copy, download it once on a machine with internet access, e.g.\n"
        f"    hf download {repo_id} --local-dir {example_folder}/{name}\n"
        f"(or save it with .save_pretrained()), then pass {param}='{example_folder}/{name}'"
        f"{extra}; or point HF_HOME / HF_HUB_CACHE at a Hugging Face cache that already holds it."
    )


def resolve_pretrained(
    spec,
    *,
    revision=None,
    cache_dir=None,
    owner="skvem",
    param="model",
    required_file="config.json",
    hint=None,
) -> ResolvedModel:
    """Resolve a Hugging Face id or a local folder, offline-first.

    Parameters
    ----------
    spec : str or path-like
        A local folder, or a Hugging Face id such as ``"org/name"``.
    revision : str, optional
        Branch, tag or commit of the Hugging Face repository.
    cache_dir : str or path-like, optional
        The Hugging Face cache to search (default: the one
        ``huggingface_hub`` uses, set by ``HF_HOME`` / ``HF_HUB_CACHE``).
    owner, param : str
        Named in error messages (``owner(param=spec)``).
    required_file : str or tuple of str, default="config.json"
        A file (or alternatives) a complete model folder or snapshot must
        hold; ``()`` checks nothing.
    hint : str, optional
        Replaces the default "how to point skvem at a local copy" advice.

    Returns
    -------
    ResolvedModel

    Raises
    ------
    ModelNotFoundError
        ``spec`` looks like a path but no such folder exists, or it is a
        Hugging Face id that is not cached while downloads are disabled.

    Examples
    --------
    >>> import os, tempfile
    >>> from skvem._utils.hub import resolve_pretrained
    >>> folder = tempfile.mkdtemp()
    >>> open(os.path.join(folder, "config.json"), "w").close()
    >>> resolve_pretrained(folder).kind
    'local'
    """
    spec_s = os.fspath(spec)
    local = os.path.expanduser(spec_s)
    required = (required_file,) if isinstance(required_file, str) else tuple(required_file)
    if os.path.isdir(local):
        if required and not any(os.path.isfile(os.path.join(local, f)) for f in required):
            raise model_not_found(
                owner,
                param,
                spec_s,
                [
                    f"a local folder {os.path.abspath(local)!r} (it exists but holds no "
                    f"{' or '.join(required)})"
                ],
                hint
                or (
                    f"Pass {param}= the folder that holds the model's {required[0]} and weights "
                    "(as written by .save_pretrained() or `hf download ID --local-dir FOLDER`)."
                ),
            )
        return ResolvedModel(spec_s, "local", os.path.abspath(local), None, revision)
    if looks_like_path(spec_s):
        what = "a file, not a folder" if os.path.isfile(local) else "not found"
        raise model_not_found(
            owner,
            param,
            spec_s,
            [f"a local folder {os.path.abspath(local)!r} ({what})"],
            hint
            or (
                f"Pass {param}= the folder that holds the model's {required[0]} and weights "
                "(e.g. made by .save_pretrained() or `hf download ID --local-dir FOLDER`), "
                "or a Hugging Face id."
            ),
        )
    repo_id = spec_s
    snapshot = None
    for name in required or ("config.json",):
        snapshot = cached_snapshot(
            repo_id, revision=revision, cache_dir=cache_dir, required_file=name
        )
        if snapshot is not None:
            break
    if snapshot is not None:
        return ResolvedModel(spec_s, "local", snapshot, repo_id, revision)
    if is_offline():
        raise model_not_found(
            owner,
            param,
            spec_s,
            [
                f"a local folder {os.path.abspath(local)!r} (not found)",
                f"the Hugging Face cache {hf_cache_dir(cache_dir)!r} "
                f"(revision {revision or 'main'!r}: not cached)",
                "the Hugging Face Hub (downloads are disabled: HF_HUB_OFFLINE is set)",
            ],
            hint or _hf_hint(param, repo_id, "/path/to/models"),
        )
    return ResolvedModel(spec_s, "hub", repo_id, repo_id, revision)


def download_failed(resolved: ResolvedModel, exc, *, owner, param, cache_dir=None, hint=None):
    """The :class:`ModelNotFoundError` for a Hub download that failed."""
    return model_not_found(
        owner,
        param,
        resolved.spec,
        [
            f"a local folder {os.path.abspath(os.path.expanduser(resolved.spec))!r} (not found)",
            f"the Hugging Face cache {hf_cache_dir(cache_dir)!r} "
            f"(revision {resolved.revision or 'main'!r}: not cached)",
            "the Hugging Face Hub (the download failed: no network, a wrong id, or a gated model)",
        ],
        hint or _hf_hint(param, resolved.repo_id or resolved.spec, "/path/to/models"),
        cause=exc,
    )


# ---------------------------------------------------------------------------
# Content identity of a local model folder
# ---------------------------------------------------------------------------

# Files up to this size are hashed whole; larger ones (weights) by samples.
_WHOLE = 8 << 20
_SAMPLE = 1 << 20
_fingerprint_memo: dict = {}
_fingerprint_lock = threading.Lock()


def _file_digest(path: Path, size: int, h) -> None:
    with open(path, "rb") as f:
        if size <= _WHOLE:
            h.update(f.read())
            return
        # Three 1 MiB samples: the safetensors header (tensor names, shapes,
        # offsets) plus data from the start, middle and end. Any retraining or
        # fine-tuning changes them, and a 15 GB model is identified in
        # milliseconds instead of the minute a full read would take.
        for offset in (0, size // 2 - _SAMPLE // 2, size - _SAMPLE):
            f.seek(max(offset, 0))
            h.update(f.read(_SAMPLE))


def _files_below(root: Path) -> list:
    """``(relative path, path, size, mtime_ns)`` of every non-hidden file below ``root``, sorted."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            try:
                st = path.stat()
            except OSError:
                continue
            entries.append((path.relative_to(root).as_posix(), path, st.st_size, st.st_mtime_ns))
    return entries


def path_stamp(path) -> tuple:
    """Names, sizes and modification times of a file or of the files below a folder.

    A cheap in-process identity (no reading): models loaded from ``path``
    are reloaded when it changes.
    """
    p = Path(path).expanduser()
    if p.is_file():
        st = p.stat()
        return ((p.name, st.st_size, st.st_mtime_ns),)
    return tuple((rel, size, mtime) for rel, _, size, mtime in _files_below(p))


def local_stamp(*specs) -> tuple:
    """:func:`path_stamp` of every spec that names a local file or folder.

    ``specs`` are model strings as users write them (``"/ckpt.pt"``,
    ``"hf:/models/dino"``, ``"local-dir:/models/clip"``); family and
    ``local-dir:`` prefixes are stripped. A memo keyed by a path alone would
    keep serving a checkpoint overwritten at the same path; with this in the
    key it reloads.
    """
    stamps = []
    for spec in specs:
        if not isinstance(spec, (str, os.PathLike)):
            continue
        text = os.fspath(spec)
        for candidate in (text, text.split(":", 1)[-1], text.rsplit(":", 1)[-1]):
            path = Path(candidate).expanduser()
            if candidate and path.exists():
                stamps.append(path_stamp(path))
                break
        else:
            stamps.append(None)
    return tuple(stamps)


def folder_fingerprint(folder) -> str:
    """A content hash of a model folder, stable across copies and machines.

    Every regular file below ``folder`` (hidden files and folders excluded)
    contributes its relative path, its size and its bytes: whole for files
    up to 8 MiB (configs, tokenizers, small weights), three 1 MiB samples
    (start, middle, end) for larger ones. Modification times are ignored, so
    copying a folder (``cp``, ``rsync``, ``hf download``) keeps its identity.
    The result is remembered per process for unchanged files.

    Parameters
    ----------
    folder : str or path-like

    Returns
    -------
    str
        32 hexadecimal characters.
    """
    root = Path(folder).expanduser().resolve()
    entries = _files_below(root)
    state_key = (str(root), tuple((rel, size, mtime) for rel, _, size, mtime in entries))
    with _fingerprint_lock:
        memo = _fingerprint_memo.get(state_key)
    if memo is not None:
        return memo
    h = hashlib.blake2b(digest_size=16)
    for rel, path, size, _ in entries:
        h.update(rel.encode())
        h.update(size.to_bytes(8, "little"))
        _file_digest(path, size, h)
    digest = h.hexdigest()
    with _fingerprint_lock:
        _fingerprint_memo[state_key] = digest
    return digest
