"""The steps of captioning that need no model: cache look-up, checks, duplicates.

:class:`CaptionPlan` is shared by :meth:`CaptionTransformer.transform
<skvem.language.captioning.CaptionTransformer.transform>` and the Ray job
(:mod:`skvem.language._ray`), so both read and write the same cache entries.
"""

from __future__ import annotations

import numpy as np

from skvem._utils.cache import lookup, namespace_key
from skvem._utils.validation import check_unicode
from skvem.images import ImageSet

__all__ = ["CaptionPlan", "check_captions", "precomputed_captions"]


class CaptionPlan:
    """The captions of ``n`` images: those found in the cache, and what is left to do.

    Parameters
    ----------
    n : int
        Number of images.
    cache : skvem._utils.cache.DiskCache, optional
        ``None``: nothing is cached, every image is captioned.
    kind : str
        Namespace kind (``"caption"``).
    settings : dict, optional
        What the namespace hashes (``CaptionTransformer.cache_settings()``).
    fingerprints : ndarray of str, shape (n,), optional
        Needed with a cache.

    Attributes
    ----------
    out : ndarray of object, shape (n,)
        Captions so far; ``None`` where not yet known.
    todo : list of int
        Positions to caption: one per distinct uncached fingerprint.
    """

    def __init__(self, n, cache=None, kind="caption", settings=None, fingerprints=None):
        self.out = np.empty(n, dtype=object)
        self.cache = cache
        self.fingerprints = fingerprints
        if cache is None:
            self.todo = list(range(n))
            return
        self.namespace = namespace_key(kind, settings)
        found, self.todo = lookup(cache, self.namespace, fingerprints.tolist())
        for i, fp in enumerate(fingerprints):
            self.out[i] = found.get(fp)
        if self.todo:
            # The description is what the namespace hashes, so an exported
            # namespace can be checked where it is imported.
            cache.register(self.namespace, kind, settings)

    def batches(self, batch_size):
        """``todo`` in consecutive lists of at most ``batch_size`` positions."""
        return (self.todo[s : s + batch_size] for s in range(0, len(self.todo), batch_size))

    def store(self, batch, captions):
        """Record the captions of the positions ``batch``, in the cache in one transaction."""
        for i, caption in zip(batch, captions):
            self.out[i] = caption
        if self.cache is not None:
            fps = self.fingerprints
            self.cache.put_many(self.namespace, {fps[i]: c for i, c in zip(batch, captions)})

    def finish(self):
        """``out`` with duplicates of images captioned in this call filled in."""
        out = self.out
        if self.fingerprints is not None and any(c is None for c in out):
            by_fp = {fp: c for fp, c in zip(self.fingerprints, out) if c is not None}
            for i, fp in enumerate(self.fingerprints):
                if out[i] is None:
                    out[i] = by_fp[fp]
        return out


def precomputed_captions(images):
    """The captions an :class:`ImageSet` carries, checked (``model="precomputed"``)."""
    captions = images.captions if isinstance(images, ImageSet) else None
    if captions is None:
        raise ValueError(
            "CaptionTransformer(model='precomputed') needs an ImageSet carrying captions: "
            "ImageSet(images, captions=[...])"
        )
    missing = [i for i, c in enumerate(captions) if c is None]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        raise ValueError(
            f"CaptionTransformer(model='precomputed'): {len(missing)} of {len(captions)} "
            f"images have no caption (indices {shown})"
        )
    for i, c in enumerate(captions):
        if not isinstance(c, str):
            raise TypeError(
                f"CaptionTransformer(model='precomputed'): caption {i} is a "
                f"{type(c).__name__}, not a str"
            )
    out = np.empty(len(captions), dtype=object)
    out[:] = [str(c) for c in captions]
    return out


def check_captions(captions, n, name):
    """``captions`` as a list of ``n`` str; ``TypeError``/``ValueError`` naming the captioner."""
    # Only ordered sequences: a set or dict would pair captions with images
    # in an arbitrary order.
    if not isinstance(captions, (list, tuple, np.ndarray)):
        raise TypeError(
            f"captioner {name!r} must return a list of str (one per image, in order), "
            f"got {type(captions).__name__}"
        )
    captions = list(captions)
    if len(captions) != n:
        raise ValueError(f"captioner {name!r} returned {len(captions)} captions for {n} images")
    for i, c in enumerate(captions):
        if not isinstance(c, str):
            raise TypeError(f"captioner {name!r} returned a {type(c).__name__}, not a str")
        check_unicode(c, f"captioner {name!r}: caption {i} of its batch")
    return [str(c) for c in captions]
