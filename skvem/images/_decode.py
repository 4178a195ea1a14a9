"""Decoding one stored image (array, PIL image or file) to 8-bit RGB.

One rule for every path an image can come by: the pixels are turned into a
numpy array first (``np.asarray`` of a PIL image keeps its dtype: uint8 for
8-bit modes, uint16 for ``I;16``, int32 for ``I``, float32 for ``F``) and that
array goes through :func:`array_to_rgb`. A 32-bit float TIFF therefore reads
exactly as the same float array would: values in ``[0, 1]`` scale to 0-255,
anything else, NaN and infinity included, is refused with the value range.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

__all__ = ["ImageLoadError", "IMAGE_EXTENSIONS", "array_to_rgb", "decode"]

# File endings read as images when a folder is collected.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")

# PIL modes whose pixels do not fit 8 bits: read as arrays, by the array rule.
_WIDE_MODES = ("I;16", "I;16B", "I;16L", "I", "F")


class ImageLoadError(OSError):
    """An image could not be read or decoded.

    The message names the position of the image in its
    :class:`~skvem.images.ImageSet` and, for images read from disk, the file.
    """


def _pil_to_rgb(img: Image.Image) -> np.ndarray:
    """``(H, W, 3)`` uint8 from a PIL image of any mode."""
    if img.mode == "RGB":
        return np.asarray(img)
    if img.mode in _WIDE_MODES:
        # PIL's own conversion clips these to 0-255 (a 16-bit scan becomes a
        # white square, a [0, 1] float image black): use the array rule.
        return array_to_rgb(np.asarray(img))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Composite on white: converting RGBA straight to RGB exposes whatever
        # colour hides under transparent pixels (often black).
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(img.convert("RGB"))


def _uint16_to_uint8(arr: np.ndarray) -> np.ndarray:
    # By the 16-bit range, never per image, so that a stack of scans keeps
    # the intensities of its images comparable.
    return np.rint(arr.astype(np.float32) / 257.0).astype(np.uint8)


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        finite = np.isfinite(arr)
        if not finite.all():
            bad = int(arr.size - np.count_nonzero(finite))
            raise ValueError(
                f"float image has {bad} NaN or infinite pixel values; float images must lie "
                "in [0, 1]"
            )
        if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
            raise ValueError(
                "float images must be scaled to [0, 1]; got values in "
                f"[{float(arr.min()):.4g}, {float(arr.max()):.4g}]"
            )
        return np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if arr.dtype == np.uint16:
        return _uint16_to_uint8(arr)
    if np.issubdtype(arr.dtype, np.integer):
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ValueError(
                f"{arr.dtype} image values lie in [{arr.min()}, {arr.max()}]; integer images "
                "must be uint8, uint16, or lie in [0, 255]"
            )
        return arr.astype(np.uint8)
    raise TypeError(f"unsupported image dtype {arr.dtype}")


def array_to_rgb(arr) -> np.ndarray:
    """Return a ``(H, W, 3)`` uint8 array from one image array.

    uint8 is kept; uint16 is mapped by its full range (``value / 257``);
    other integers and bool must lie in ``[0, 255]`` (bool: 0 or 255); floats
    must be finite and lie in ``[0, 1]`` (scaled by 255). Grey images are
    repeated to three channels and RGBA is composited on white.
    """
    arr = _to_uint8(np.asarray(arr))
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
            "an image array must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); "
            f"got shape {arr.shape}"
        )
    return np.ascontiguousarray(arr)


def decode(item, where: str) -> np.ndarray:
    """Decode one stored item (array, PIL image or path) to ``(H, W, 3)`` uint8.

    Every failure is an :class:`ImageLoadError` whose message starts with
    ``where`` (the image's position and file).
    """
    try:
        if isinstance(item, Image.Image):
            return _pil_to_rgb(item)
        if isinstance(item, (str, os.PathLike)):
            path = os.fspath(item)
            try:
                with Image.open(path) as img:
                    img.load()
                    return _pil_to_rgb(img)
            except FileNotFoundError:
                raise ImageLoadError(f"{where}: file not found: {path!r}") from None
            except Exception as exc:  # PIL raises many types for a bad file
                raise ImageLoadError(f"{where}: cannot decode {path!r}: {exc}") from exc
        return array_to_rgb(item)
    except ImageLoadError:
        raise
    except (ValueError, TypeError) as exc:
        raise ImageLoadError(f"{where}: {exc}") from exc
