"""Bounding the aspect ratio of an image before a model's resize.

Most image pipelines (torchvision's ``Resize(size)`` + ``CenterCrop``,
open_clip, timm, CLIP-style image processors) resize the *shorter* side to
the input size first, so a 1 x 100,000-pixel strip would become a
224 x 22,400,000 image (15 GB) before the crop keeps its centre. Cutting the
long side to :data:`MAX_ASPECT_RATIO` times the short side first keeps that
centre, and the memory bounded.
"""

from __future__ import annotations

__all__ = ["MAX_ASPECT_RATIO", "limit_aspect_ratio"]

#: Longest side / shortest side kept; longer images keep their centre.
MAX_ASPECT_RATIO = 10


def limit_aspect_ratio(image, max_ratio=MAX_ASPECT_RATIO):
    """Centre-crop a PIL image whose long side exceeds ``max_ratio`` times its short side.

    Images within the ratio are returned as they are (the same object).
    """
    w, h = image.size
    short, long = min(w, h), max(w, h)
    if short == 0 or long <= max_ratio * short:
        return image
    keep = max_ratio * short
    start = (long - keep) // 2
    box = (start, 0, start + keep, h) if w > h else (0, start, w, start + keep)
    return image.crop(box)
