"""Where the pixels of an unsliced image collection live, and when they changed.

A source reads image ``i`` and says, through :meth:`_Source.stamps`, whether
it can have changed since it was last fingerprinted:

* files (paths, HDF5): their size, modification time (ns) and inode. A file
  rewritten in place or replaced gets a new stamp, so its fingerprint, and
  with it every cached caption and feature, is recomputed;
* in-memory items (numpy arrays, PIL images): no stamp. They can be edited
  in place without any trace, so they are fingerprinted anew on every call
  (hashing runs at memory speed, far below the cost of what the cache saves).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image

from skvem.images._decode import ImageLoadError, decode

__all__ = ["make_source"]


def _file_stamp(path):
    try:
        st = os.stat(path)
    except OSError:
        return None  # unreadable now: never reuse a fingerprint for it
    return (st.st_size, st.st_mtime_ns, st.st_ino)


class _Source:
    """The unsliced storage behind one or more :class:`ImageSet` views."""

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def raw(self, i: int):  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self, i: int) -> str:
        return f"image {i}"

    def read(self, i: int) -> np.ndarray:
        return decode(self.raw(i), self.describe(i))

    def stamps(self, indices) -> list:
        """A token per index that changes when the image can have changed; ``None``: unknown."""
        return [None] * len(indices)


class _SequenceSource(_Source):
    """A numpy array or a Python list of arrays, PIL images or paths."""

    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def raw(self, i):
        return self.items[i]

    def describe(self, i):
        item = self.items[i] if not isinstance(self.items, np.ndarray) else None
        if isinstance(item, (str, os.PathLike)):
            return f"image {i} ({os.fspath(item)!r})"
        return f"image {i}"

    def stamps(self, indices):
        if isinstance(self.items, np.ndarray):
            return [None] * len(indices)
        out = []
        for j in indices:
            item = self.items[j]
            out.append(_file_stamp(item) if isinstance(item, (str, os.PathLike)) else None)
        return out


class _HDF5Source(_Source):
    """One dataset of an HDF5 file, e.g. NSD's ``imgBrick``.

    The file handle is opened on first use in each process and is never
    pickled, so the source travels to joblib workers and survives pickling.
    It is reopened when the file changed on disk.
    """

    def __init__(self, path, key):
        import h5py

        self.path = os.fspath(path)
        self.key = key
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"HDF5 file not found: {self.path!r}")
        try:
            f = h5py.File(self.path, "r")
        except OSError as exc:
            raise ImageLoadError(
                f"cannot open {self.path!r} as an HDF5 file (expected e.g. NSD's "
                f"nsd_stimuli.hdf5): {exc}"
            ) from exc
        with f:
            if key not in f:
                raise ImageLoadError(
                    f"{self.path!r} has no dataset {key!r}; it holds {sorted(f.keys())}"
                )
            dset = f[key]
            if not hasattr(dset, "ndim") or dset.ndim not in (3, 4):
                shape = getattr(dset, "shape", "a group")
                raise ValueError(
                    f"dataset {key!r} of {self.path!r} must be (n, H, W) or (n, H, W, C); "
                    f"got {shape}"
                )
            self._len = int(dset.shape[0])
        self._file = None
        self._pid = None
        self._stamp = None

    def __len__(self):
        return self._len

    def _dataset(self):
        # An HDF5 handle opened before a fork (DataLoader workers) must not
        # be shared with the child, and one opened before the file was
        # rewritten reads the old file: reopen in both cases.
        stamp = _file_stamp(self.path)
        if self._file is None or self._pid != os.getpid() or self._stamp != stamp:
            import h5py

            if self._file is not None and self._pid == os.getpid():
                self._file.close()
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
            self._stamp = stamp
        return self._file[self.key]

    def raw(self, i):
        return self._dataset()[i]

    def describe(self, i):
        return f"image {i} ({self.path}:{self.key})"

    def stamps(self, indices):
        return [_file_stamp(self.path)] * len(indices)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.update(_file=None, _pid=None, _stamp=None)
        return state


def make_source(images) -> _Source:
    """The source behind ``ImageSet(images)``; reads no pixels."""
    if isinstance(images, _Source):
        return images
    try:
        import h5py

        if isinstance(images, h5py.Dataset):
            return _HDF5Source(images.file.filename, images.name)
    except ImportError:  # pragma: no cover - h5py is a dependency
        pass
    if isinstance(images, np.ndarray):
        if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3, 4)):
            raise ValueError(
                "an image array must be shaped (n, H, W) or (n, H, W, 3); "
                f"got shape {images.shape}"
            )
        if images.dtype == object:
            return _SequenceSource(list(images))
        return _SequenceSource(images)
    if isinstance(images, (str, os.PathLike, Image.Image)):
        raise TypeError(
            "images must be a collection of images; wrap a single image or path in a list"
        )
    if isinstance(images, Sequence) or hasattr(images, "__len__"):
        items = list(images)
        for i, item in enumerate(items):
            if not isinstance(item, (str, os.PathLike, Image.Image, np.ndarray)):
                raise TypeError(
                    f"image {i} is a {type(item).__name__}; expected a PIL image, a file path "
                    "or an array"
                )
        return _SequenceSource(items)
    raise TypeError(
        f"cannot make images out of a {type(images).__name__}; pass an ImageSet, an array "
        "(n, H, W[, 3]), a list of PIL images or a list of file paths"
    )
