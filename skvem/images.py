"""A lazy, sliceable collection of stimulus images.

Every image step of skvem takes an :class:`ImageSet`, or anything
:func:`as_imageset` turns into one. Slicing an :class:`ImageSet` only composes
integer indices: scikit-learn's cross-validation splits it without copying or
decoding a single pixel. Images are decoded one at a time, when a step asks
for them, and always come out as 8-bit RGB.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from numbers import Integral

import numpy as np
from PIL import Image

__all__ = ["ImageSet", "ImageLoadError", "as_imageset", "IMAGE_EXTENSIONS"]

# File endings read as images when a folder is collected.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")


class ImageLoadError(OSError):
    """An image could not be read or decoded.

    The message names the position of the image in its :class:`ImageSet` and,
    for images read from disk, the file.
    """


# ---------------------------------------------------------------------------
# Conversion of one decoded image to 8-bit RGB
# ---------------------------------------------------------------------------


def _pil_to_rgb(img: Image.Image) -> Image.Image:
    """Convert a PIL image of any mode to RGB.

    Modes with more than 8 bits per channel (``I;16``, ``I``, ``F``) are
    rescaled to their own range first: PIL's direct conversion clips them to
    0-255, which turns a 16-bit scan into a white square.
    """
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L"):
        # By the 16-bit range, never per image, so that a stack of scans
        # keeps the intensities of its images comparable.
        return Image.fromarray(_uint16_to_uint8(np.asarray(img))).convert("RGB")
    if img.mode in ("I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ValueError(
                f"a mode-{img.mode} image with values in [{arr.min():.4g}, {arr.max():.4g}] has no "
                "fixed intensity range; convert it to 8 or 16 bits first"
            )
        return Image.fromarray(np.rint(arr).astype(np.uint8)).convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Composite on white: converting RGBA straight to RGB exposes whatever
        # colour hides under transparent pixels (often black).
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _float_to_uint8(arr: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)


def _uint16_to_uint8(arr: np.ndarray) -> np.ndarray:
    return np.rint(arr.astype(np.float32) / 257.0).astype(np.uint8)


def _array_to_rgb(arr: np.ndarray) -> np.ndarray:
    """Return a ``(H, W, 3)`` uint8 array from one image array."""
    arr = np.asarray(arr)
    if arr.dtype == np.uint8:
        pass
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise ValueError("float image contains NaN or infinite values")
        if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
            raise ValueError(
                "float images must be scaled to [0, 1]; got values in "
                f"[{float(arr.min()):.3g}, {float(arr.max()):.3g}]"
            )
        arr = _float_to_uint8(arr)
    elif np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
        if arr.dtype == bool:
            arr = arr.astype(np.uint8) * 255
        elif arr.dtype == np.uint16:
            arr = _uint16_to_uint8(arr)
        elif arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ValueError(
                f"{arr.dtype} image values lie in [{arr.min()}, {arr.max()}]; integer images must "
                "be uint8, uint16, or lie in [0, 255]"
            )
        else:
            arr = arr.astype(np.uint8)
    else:
        raise TypeError(f"unsupported image dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        rgb = arr[:, :, :3].astype(np.float32)
        alpha = arr[:, :, 3:4].astype(np.float32) / 255.0
        arr = np.rint(rgb * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    elif not (arr.ndim == 3 and arr.shape[2] == 3):
        raise ValueError(
            f"an image array must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got shape {arr.shape}"
        )
    return np.ascontiguousarray(arr)


def _decode(item, where: str) -> np.ndarray:
    """Decode one stored item (array, PIL image or path) to ``(H, W, 3)`` uint8."""
    try:
        if isinstance(item, Image.Image):
            return np.asarray(_pil_to_rgb(item))
        if isinstance(item, (str, os.PathLike)):
            path = os.fspath(item)
            try:
                with Image.open(path) as img:
                    img.load()
                    return np.asarray(_pil_to_rgb(img))
            except FileNotFoundError:
                raise ImageLoadError(f"{where}: file not found: {path!r}") from None
            except Exception as exc:  # PIL raises many types for a bad file
                raise ImageLoadError(f"{where}: cannot decode {path!r}: {exc}") from exc
        return _array_to_rgb(np.asarray(item))
    except ImageLoadError:
        raise
    except (ValueError, TypeError) as exc:
        raise ImageLoadError(f"{where}: {exc}") from exc


# ---------------------------------------------------------------------------
# Sources: where the pixels of the full, unsliced collection live
# ---------------------------------------------------------------------------


class _Source:
    """The unsliced storage behind one or more :class:`ImageSet` views."""

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def raw(self, i: int):  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self, i: int) -> str:
        return f"image {i}"

    def read(self, i: int) -> np.ndarray:
        return _decode(self.raw(i), self.describe(i))


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


class _HDF5Source(_Source):
    """One dataset of an HDF5 file, e.g. NSD's ``imgBrick``.

    The file handle is opened on first use in each process and is never
    pickled, so the source travels to joblib workers and survives pickling.
    """

    def __init__(self, path, key):
        import h5py

        self.path = os.fspath(path)
        self.key = key
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"HDF5 file not found: {self.path!r}")
        with h5py.File(self.path, "r") as f:
            if key not in f:
                raise KeyError(f"{self.path!r} has no dataset {key!r}; it holds {sorted(f.keys())}")
            dset = f[key]
            if dset.ndim not in (3, 4):
                raise ValueError(
                    f"dataset {key!r} of {self.path!r} must be (n, H, W) or (n, H, W, C); "
                    f"got shape {dset.shape}"
                )
            self._len = int(dset.shape[0])
        self._file = None
        self._pid = None

    def __len__(self):
        return self._len

    def _dataset(self):
        # An HDF5 handle opened before a fork (DataLoader workers) must not
        # be shared with the child: reopen per process.
        if self._file is None or self._pid != os.getpid():
            import h5py

            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file[self.key]

    def raw(self, i):
        return self._dataset()[i]

    def describe(self, i):
        return f"image {i} ({self.path}:{self.key})"

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_file"] = None
        state["_pid"] = None
        return state


# ---------------------------------------------------------------------------
# The public collection
# ---------------------------------------------------------------------------


def _optional_column(values, n, name):
    if values is None:
        return None
    if isinstance(values, str):
        raise TypeError(f"{name} must be a sequence with one entry per image, not a single string")
    arr = np.empty(len(values), dtype=object)
    arr[:] = list(values)
    if len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} entries but there are {n} images")
    return arr


class ImageSet:
    """A lazy, sliceable collection of images, with optional ids and captions.

    Parameters
    ----------
    images : array-like, sequence, ImageSet
        One of: a uint8 array ``(n, H, W, 3)`` or ``(n, H, W)`` (float arrays
        must lie in ``[0, 1]``); an HDF5 dataset (e.g. an open ``h5py``
        dataset, read one image at a time); a list of ``PIL.Image`` of any
        mode; a list of file paths; or another :class:`ImageSet`.
    ids : sequence of length n, optional
        Identifiers carried along with the images (e.g. NSD image ids).
    captions : sequence of str of length n, optional
        Descriptions carried along with the images (e.g. COCO captions),
        used by ``CaptionTransformer(model="precomputed")``. ``None``
        entries mark images without a caption.

    Attributes
    ----------
    shape : tuple of int
        ``(n_images,)``. Present so that scikit-learn counts samples and
        slices the set like an array.
    ids : ndarray of object, shape (n_images,) or None
    captions : ndarray of object, shape (n_images,) or None

    Notes
    -----
    Indexing with an integer returns one decoded ``(H, W, 3)`` uint8 RGB
    :class:`PIL.Image.Image`; a slice, an integer index array or a boolean
    mask returns a new :class:`ImageSet` that shares the underlying storage.
    Every PIL mode (L, LA, P, RGBA, CMYK, I;16, ...) is converted to RGB;
    transparent pixels are composited on white and 16-bit images are mapped
    to 8 bits by their full range (``value / 257``), the same for every
    image of a stack.

    Examples
    --------
    >>> import numpy as np
    >>> from skvem.images import ImageSet
    >>> pixels = np.zeros((10, 32, 32, 3), dtype=np.uint8)
    >>> images = ImageSet(pixels, captions=[f"scene {i}" for i in range(10)])
    >>> train = images[np.arange(8)]
    >>> len(train), train.captions[-1]
    (8, 'scene 7')
    """

    def __init__(self, images, ids=None, captions=None):
        if isinstance(images, ImageSet):
            self._source = images._source
            self._index = images._index.copy()
            self._ids = images._ids
            self._captions = images._captions
            n_full = len(self._source)
            if ids is not None:
                self._ids = self._scatter(_optional_column(ids, len(self), "ids"), n_full)
            if captions is not None:
                self._captions = self._scatter(
                    _optional_column(captions, len(self), "captions"), n_full
                )
            return
        self._source = _make_source(images)
        n = len(self._source)
        self._index = np.arange(n, dtype=np.int64)
        self._ids = _optional_column(ids, n, "ids")
        self._captions = _optional_column(captions, n, "captions")

    def _scatter(self, values, n_full):
        # Columns are stored against the full source so that every view of
        # it indexes them the same way.
        full = np.full(n_full, None, dtype=object)
        full[self._index] = values
        # A view with repeated images (a bootstrap) can only carry one value
        # per image: refuse to silently keep the last of two different ones.
        if not all(full[j] == v for j, v in zip(self._index, values)):
            raise ValueError(
                "this view repeats images with different values; give one value per distinct image"
            )
        return full

    # -- constructors -----------------------------------------------------

    @classmethod
    def from_hdf5(cls, path, key="imgBrick", *, ids=None, captions=None):
        """Open one dataset of an HDF5 file lazily.

        Parameters
        ----------
        path : str or path-like
            The HDF5 file, e.g. NSD's ``nsd_stimuli.hdf5``.
        key : str, default="imgBrick"
            The dataset, shaped ``(n, H, W, 3)`` or ``(n, H, W)``.
        ids, captions : sequence, optional
            As in :class:`ImageSet`.

        Returns
        -------
        ImageSet
            No pixels are read until an image is asked for.
        """
        source = _HDF5Source(path, key)
        self = cls.__new__(cls)
        self._source = source
        n = len(source)
        self._index = np.arange(n, dtype=np.int64)
        self._ids = _optional_column(ids, n, "ids")
        self._captions = _optional_column(captions, n, "captions")
        return self

    @classmethod
    def from_folder(cls, folder, *, extensions=IMAGE_EXTENSIONS, captions=None):
        """Collect every image file of a folder, sorted by name.

        The file names without extension become the ``ids``.
        """
        folder = os.fspath(folder)
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"image folder not found: {folder!r}")
        names = sorted(f for f in os.listdir(folder) if f.lower().endswith(tuple(extensions)))
        paths = [os.path.join(folder, f) for f in names]
        return cls(paths, ids=[os.path.splitext(f)[0] for f in names], captions=captions)

    # -- sequence protocol --------------------------------------------------

    def __len__(self) -> int:
        return int(self._index.shape[0])

    @property
    def shape(self) -> tuple:
        return (len(self),)

    @property
    def ndim(self) -> int:
        return 1

    def __getitem__(self, key):
        # scikit-learn's _safe_indexing writes ``X[indices, ...]``.
        if isinstance(key, tuple):
            rest = [k for k in key[1:] if k is not Ellipsis]
            if len(key) == 0 or rest:
                raise IndexError("an ImageSet is indexed along its first axis only")
            key = key[0]
        if isinstance(key, Integral) and not isinstance(key, (bool, np.bool_)):
            return Image.fromarray(self.get_array(int(key)))
        if isinstance(key, slice):
            index = self._index[key]
        else:
            key = np.asarray(key)
            if key.dtype == bool:
                if key.shape != (len(self),):
                    raise IndexError(
                        f"boolean mask of shape {key.shape} does not match {len(self)} images"
                    )
                index = self._index[key]
            elif key.size == 0:
                index = self._index[:0]
            elif np.issubdtype(key.dtype, np.integer):
                if key.ndim != 1:
                    raise IndexError("index arrays must be one-dimensional")
                index = self._index[key]
            else:
                raise IndexError(f"cannot index an ImageSet with {key.dtype} values")
        view = ImageSet.__new__(ImageSet)
        view._source = self._source
        view._index = index
        view._ids = self._ids
        view._captions = self._captions
        return view

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        extra = []
        if self._ids is not None:
            extra.append("ids")
        if self._captions is not None:
            extra.append("captions")
        with_ = f" with {' and '.join(extra)}" if extra else ""
        return f"<ImageSet of {len(self)} images from {type(self._source).__name__[1:-6].lower()}{with_}>"

    # -- columns -----------------------------------------------------------

    @property
    def ids(self):
        return None if self._ids is None else self._ids[self._index]

    @property
    def captions(self):
        return None if self._captions is None else self._captions[self._index]

    def with_captions(self, captions):
        """Return a view of the same images carrying new ``captions``."""
        return ImageSet(self, captions=captions)

    # -- pixels --------------------------------------------------------------

    def get_array(self, i: int) -> np.ndarray:
        """Decode image ``i`` of this view to a ``(H, W, 3)`` uint8 array.

        Raises
        ------
        ImageLoadError
            When the image cannot be read; the message names the index in
            this view and the file.
        """
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"image index {i} out of range for {n} images")
        j = int(self._index[i])
        try:
            return self._source.read(j)
        except ImageLoadError as exc:
            if j != i % n:
                raise ImageLoadError(f"{exc} [index {i % n} of this view]") from exc.__cause__
            raise

    def get_pil(self, i: int) -> Image.Image:
        """Decode image ``i`` to an RGB :class:`PIL.Image.Image`."""
        return Image.fromarray(self.get_array(i))

    def iter_batches(self, batch_size: int, *, as_pil: bool = True):
        """Yield ``(indices, images)`` in consecutive batches.

        ``images`` is a list of RGB PIL images (``as_pil=True``) or of
        ``(H, W, 3)`` uint8 arrays. At most one batch is decoded at a time.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        for start in range(0, len(self), batch_size):
            idx = np.arange(start, min(start + batch_size, len(self)))
            arrays = [self.get_array(int(i)) for i in idx]
            yield idx, ([Image.fromarray(a) for a in arrays] if as_pil else arrays)

    def to_numpy(self, size=None) -> np.ndarray:
        """Decode every image into one ``(n, H, W, 3)`` uint8 array.

        Parameters
        ----------
        size : int or (int, int), optional
            Resize every image to ``size`` (height, width) first; required
            when the images differ in size.
        """
        if size is not None and isinstance(size, Integral):
            size = (int(size), int(size))
        out = []
        for i in range(len(self)):
            arr = self.get_array(i)
            if size is not None and arr.shape[:2] != tuple(size):
                arr = np.asarray(Image.fromarray(arr).resize((size[1], size[0]), Image.BICUBIC))
            out.append(arr)
        if not out:
            h, w = size if size is not None else (0, 0)
            return np.zeros((0, h, w, 3), dtype=np.uint8)
        shapes = {a.shape for a in out}
        if len(shapes) > 1:
            raise ValueError(f"images differ in size {sorted(shapes)[:3]}...; pass size=")
        return np.stack(out)

    # -- identity -----------------------------------------------------------------

    def fingerprints(self) -> np.ndarray:
        """A content hash of every image, stable across processes and runs.

        The hash covers the decoded RGB pixels and their shape, so the same
        picture has the same fingerprint whether it comes from a PNG file, an
        array or an HDF5 dataset. Caches of captions and features are keyed
        by it. Hashes are computed once per underlying image and remembered.

        Returns
        -------
        fingerprints : ndarray of str, shape (n_images,)
            32 hexadecimal characters each.
        """
        memo = self._source.__dict__.setdefault("_fingerprints", {})
        out = np.empty(len(self), dtype=object)
        for pos, j in enumerate(self._index):
            j = int(j)
            fp = memo.get(j)
            if fp is None:
                fp = fingerprint_array(self._source.read(j))
                memo[j] = fp
            out[pos] = fp
        return out.astype(str) if len(out) else np.zeros(0, dtype="<U32")


def fingerprint_array(rgb: np.ndarray) -> str:
    """Hash one ``(H, W, 3)`` uint8 image (pixels and shape) to 32 hex digits."""
    h = hashlib.blake2b(digest_size=16)
    h.update(np.asarray(rgb.shape, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(rgb, dtype=np.uint8).tobytes())
    return h.hexdigest()


def _make_source(images) -> _Source:
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


def as_imageset(X) -> ImageSet:
    """Turn any accepted image input into an :class:`ImageSet`.

    An :class:`ImageSet` is returned as is; arrays, lists of PIL images,
    lists of paths and HDF5 datasets are wrapped without reading pixels.

    Parameters
    ----------
    X : ImageSet, ndarray, h5py.Dataset, list of PIL.Image or list of paths

    Returns
    -------
    ImageSet

    Examples
    --------
    >>> import numpy as np
    >>> from skvem.images import as_imageset
    >>> as_imageset(np.zeros((3, 8, 8), dtype=np.uint8)).get_array(0).shape
    (8, 8, 3)
    """
    if isinstance(X, ImageSet):
        return X
    return ImageSet(X)
