"""What every backbone family shares: the resolved :class:`Backbone`, its
:class:`Preprocess`, and the helpers that identify weights for cache keys.

Preprocessing is split in two: a geometric part applied to each PIL image
(resize and crop, exactly as the library of the backbone does it) giving a
compact ``uint8`` tensor, and a normalisation applied to whole batches on
the device. The ``uint8`` half is 4x smaller than float pixels, so training
can keep a whole stimulus set in memory, and the normalisation runs on the
accelerator.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from skvem._utils.image_bounds import limit_aspect_ratio

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Backbone", "Preprocess", "ResizeCenterCrop"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Preprocess:
    """The preprocessing of one backbone, split into per-image and per-batch halves.

    Parameters
    ----------
    geometric : callable
        ``PIL.Image -> PIL.Image`` or ``-> uint8 tensor (3, H, W)``: resize and
        crop to the input size of the network.
    mean, std : tuple of float
        Per-channel normalisation applied to ``pixels * scale``.
    scale : float
        Factor from 0-255 pixel values to the range ``mean``/``std`` refer to.
    description : str
        What the preprocessing does; part of cache keys.
    """

    geometric: Callable
    mean: tuple
    std: tuple
    description: str
    scale: float = 1.0 / 255.0

    def to_uint8(self, image):
        """Resize/crop one RGB PIL image to a ``(3, H, W)`` uint8 tensor.

        An image more than :data:`~skvem._utils.image_bounds.MAX_ASPECT_RATIO`
        times longer than wide (or the reverse) keeps its centre only, so
        that the resize of its short side cannot take gigabytes.
        """
        import torch

        out = self.geometric(limit_aspect_ratio(image))
        if isinstance(out, torch.Tensor):
            return out.to(torch.uint8).contiguous()
        arr = np.asarray(out.convert("RGB") if out.mode != "RGB" else out, dtype=np.uint8)
        return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()

    def normalize(self, pixels, dtype=None):
        """Turn a ``(B, 3, H, W)`` uint8 batch into normalised floats on its device."""
        import torch

        x = pixels.to(torch.float32) * self.scale
        mean = torch.tensor(self.mean, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
        x = (x - mean) / std
        return x if dtype is None else x.to(dtype)

    def identity(self) -> dict:
        return {
            "geometric": self.description,
            "mean": [round(float(m), 6) for m in self.mean],
            "std": [round(float(s), 6) for s in self.std],
            "scale": round(float(self.scale), 9),
        }


_PIL_FILTERS = {"nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3, "box": 4, "hamming": 5}


class ResizeCenterCrop:
    """Resize the shorter side to ``size`` then crop the centre to ``crop``, on a PIL image.

    The same arithmetic as torchvision's ``Resize(size)`` + ``CenterCrop(crop)``
    on PIL images (which call PIL's antialiased resize), without importing
    torchvision.
    """

    def __init__(self, size, interpolation="bilinear", crop=None):
        self.size = int(size[0] if isinstance(size, (list, tuple)) else size)
        crop = self.size if crop is None else crop
        crop = crop if isinstance(crop, (list, tuple)) else (crop, crop)
        self.crop = (int(crop[0]), int(crop[-1]))
        self.interpolation = str(interpolation)

    def __call__(self, image):
        w, h = image.size
        short, long = (w, h) if w <= h else (h, w)
        if short != self.size:
            new_long = int(self.size * long / short)
            new_w, new_h = (self.size, new_long) if w <= h else (new_long, self.size)
            image = image.resize((new_w, new_h), _PIL_FILTERS[self.interpolation])
        w, h = image.size
        th, tw = self.crop
        if (w, h) != (tw, th):
            top = int(round((h - th) / 2.0))
            left = int(round((w - tw) / 2.0))
            image = image.crop((left, top, left + tw, top + th))
        return image

    def __repr__(self):
        return f"ResizeCenterCrop(size={self.size}, crop={self.crop}, interpolation={self.interpolation})"


def _resize_crop(size, interpolation="bilinear", crop=None):
    return ResizeCenterCrop(size, interpolation, crop)


def _floats(values) -> tuple:
    return tuple(float(v) for v in np.asarray(
        values.tolist() if hasattr(values, "tolist") else values, dtype=float
    ).ravel())


def _split_compose(transform, what: str) -> Preprocess:
    """Split a torchvision ``Compose`` ending in ToTensor + Normalize."""
    from torchvision import transforms as T

    steps = list(getattr(transform, "transforms", []))
    names = [type(t).__name__ for t in steps]
    for i, name in enumerate(names):
        if name in ("ToTensor", "MaybeToTensor"):
            rest = steps[i + 1 :]
            if len(rest) == 1 and type(rest[0]).__name__ == "Normalize":
                geo = T.Compose(steps[:i])
                return Preprocess(
                    geometric=geo,
                    mean=_floats(rest[0].mean),
                    std=_floats(rest[0].std),
                    description=" ".join(repr(geo).split()),
                )
            break
    raise ValueError(  # pragma: no cover - guards against library changes
        f"cannot use the preprocessing of {what}: expected resize/crop steps followed by "
        f"ToTensor and Normalize, got {names}"
    )



@dataclass
class Backbone:
    """A resolved backbone.

    Attributes
    ----------
    module : torch.nn.Module
        Maps a normalised ``(B, 3, H, W)`` float batch to features.
    layer_root : torch.nn.Module
        The module whose ``named_modules()`` names the selectable layers.
    preprocess : Preprocess
    name : str
        What was asked for, for messages.
    weights : {"pretrained", "random", "module"}
        Where the weights come from: a checkpoint, a seeded random
        initialisation, or a user-supplied module.
    identity : dict or None
        Everything that determines the weights and the preprocessing, for
        cache keys; None when the weights cannot be identified (a module).
    """

    module: Any
    layer_root: Any
    preprocess: Preprocess
    name: str
    weights: str
    identity: dict | None = field(default=None)


def _seeded(seed, build):
    """Run ``build()`` under a private torch RNG seeded with ``seed``."""
    import torch

    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(int(seed))
        return build()


def _file_identity(path) -> dict:
    """Identify a weights file by content (sampled for large files), not by its path."""
    from skvem._utils.hub import _file_digest

    h = hashlib.blake2b(digest_size=16)
    size = os.path.getsize(path)
    _file_digest(Path(path), size, h)
    return {"file_digest": h.hexdigest(), "size": size}


def _dir_identity(path) -> dict:
    from skvem._utils.hub import folder_fingerprint

    return {"folder_digest": folder_fingerprint(path)}


def _not_found(owner, spec, looked_for, hint, exc):
    """The error for weights that are neither on disk nor downloadable (see skvem._utils.hub)."""
    from skvem._utils.hub import model_not_found

    return model_not_found(owner, "backbone", spec, looked_for, hint, cause=exc)

