"""The public collection: :class:`ImageSet` and :func:`as_imageset`."""

from __future__ import annotations

import hashlib
import os
from numbers import Integral

import numpy as np
from PIL import Image

from skvem._utils.validation import check_int, check_unicode
from skvem.images._decode import IMAGE_EXTENSIONS, ImageLoadError
from skvem.images._sources import _HDF5Source, make_source

__all__ = ["ImageSet", "as_imageset", "fingerprint_array"]


# ---------------------------------------------------------------------------
# The public collection
# ---------------------------------------------------------------------------


def _missing(value) -> bool:
    """``None``, NaN or pandas' NA: how tables mark an empty cell."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    try:
        return bool(value != value)
    except (TypeError, ValueError):  # arrays and other objects without a truth value
        return False


def _same(a, b) -> bool:
    if a is b or (_missing(a) and _missing(b)):
        return True
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _optional_column(values, n, name):
    """One entry per image, as an object array; ``None`` for no column.

    ``captions`` entries are ``str`` or missing (``None``, NaN, ``pd.NA``:
    stored as ``None``, an image without caption). ``ids`` may be any value
    but never missing: an id that is NaN identifies nothing.
    """
    if values is None:
        return None
    if isinstance(values, str):
        raise TypeError(f"{name} must be a sequence with one entry per image, not a single string")
    if not hasattr(values, "__len__") or isinstance(values, (set, frozenset, dict)):
        raise TypeError(
            f"{name} must be a sequence with one entry per image, in order (a list, tuple, "
            f"array or pandas Series); got a {type(values).__name__}"
        )
    arr = np.empty(len(values), dtype=object)
    arr[:] = list(values)
    if len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} entries but there are {n} images")
    missing = [i for i, v in enumerate(arr) if _missing(v)]
    if name == "captions":
        arr[missing] = None
        for i, v in enumerate(arr):
            if v is not None and not isinstance(v, str):
                raise TypeError(
                    f"captions[{i}] is a {type(v).__name__} ({v!r}); expected a str, or None "
                    "for an image without caption"
                )
            if v is not None:
                check_unicode(v, f"captions[{i}]")
    elif missing:
        shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        raise ValueError(
            f"{name} has {len(missing)} missing values (None or NaN) at positions {shown}; "
            "every image needs one"
        )
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
        self._source = make_source(images)
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
        if not all(_same(full[j], v) for j, v in zip(self._index, values)):
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
            try:
                key = np.asarray(key)
            except (ValueError, TypeError):
                key = np.asarray(None)  # ragged or odd: refused below as an object index
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
                raise IndexError(
                    f"cannot index an ImageSet with {key.dtype} values; use an int, a slice, an "
                    "integer index array or a boolean mask"
                )
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
        ValueError
            When the image has no pixels (0 wide or 0 high).
        """
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"image index {i} out of range for {n} images")
        j = int(self._index[i])
        try:
            arr = self._source.read(j)
        except ImageLoadError as exc:
            if j != i % n:
                raise ImageLoadError(f"{exc} [index {i % n} of this view]") from exc.__cause__
            raise
        if 0 in arr.shape[:2]:  # no resize or processor can take it; say which image it is
            view = f" [index {i % n} of this view]" if j != i % n else ""
            raise ValueError(f"image {j}{view} is {arr.shape[1]} x {arr.shape[0]} pixels (width x height); "
                             "every image needs at least one pixel in each direction")
        return arr

    def get_pil(self, i: int) -> Image.Image:
        """Decode image ``i`` to an RGB :class:`PIL.Image.Image`."""
        return Image.fromarray(self.get_array(i))

    def iter_batches(self, batch_size: int, *, as_pil: bool = True):
        """Yield ``(indices, images)`` in consecutive batches.

        ``images`` is a list of RGB PIL images (``as_pil=True``) or of
        ``(H, W, 3)`` uint8 arrays. At most one batch is decoded at a time.
        """
        check_int(batch_size, name="batch_size", min_val=1)
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
        by it. A fingerprint of an image file (or HDF5 file) is remembered
        while the file's size, modification time and inode stay the same;
        in-memory images (arrays, PIL images), which can change in place
        without a trace, are hashed anew on every call.

        Returns
        -------
        fingerprints : ndarray of str, shape (n_images,)
            32 hexadecimal characters each.
        """
        memo = self._source.__dict__.setdefault("_fingerprints", {})
        unique = list(dict.fromkeys(int(j) for j in self._index))
        now = {}
        for j, stamp in zip(unique, self._source.stamps(unique)):
            known = memo.get(j)
            if stamp is not None and known is not None and known[0] == stamp:
                now[j] = known[1]
                continue
            now[j] = fingerprint_array(self._source.read(j))
            if stamp is not None:
                memo[j] = (stamp, now[j])
        out = np.array([now[int(j)] for j in self._index], dtype="<U32")
        return out if len(out) else np.zeros(0, dtype="<U32")


def fingerprint_array(rgb: np.ndarray) -> str:
    """Hash one ``(H, W, 3)`` uint8 image (pixels and shape) to 32 hex digits."""
    h = hashlib.blake2b(digest_size=16)
    h.update(np.asarray(rgb.shape, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(rgb, dtype=np.uint8).tobytes())
    return h.hexdigest()


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
