"""Drawing of the synthetic scenes: object masks, colours, backgrounds.

Everything here is pure numpy / PIL and deterministic given the random
generators it is handed. The scene *content* (which objects, where, what
colour) is decided in :mod:`skvem.datasets.scenes`; this module only turns
that content into pixels.
"""

from __future__ import annotations

import colorsys
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

# ---------------------------------------------------------------------------
# Vocabulary of the generative model
# ---------------------------------------------------------------------------

SHAPES = ("circle", "square", "triangle", "star", "cross", "ring", "heart", "diamond")
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CATEGORIES = SHAPES + DIGITS

# Superordinate groups: a coarse category structure of the kind found in
# ventral temporal cortex (Kriegeskorte et al., 2008), used by the category
# and semantic ROIs. Curved vs. angular outlines is a real axis of ventral
# stream tuning (Yue et al., 2014); digits stand in for a "symbol" class
# (cf. the visual word form area).
CATEGORY_GROUPS = {
    "circle": "curved",
    "ring": "curved",
    "heart": "curved",
    "square": "angular",
    "triangle": "angular",
    "star": "angular",
    "cross": "angular",
    "diamond": "angular",
    **{d: "digit" for d in DIGITS},
}
GROUPS = ("curved", "angular", "digit")

# name -> (hue in degrees, saturation, value). Only chromatic colours, so that
# every object has a defined hue for the colour ROI.
COLORS = {
    "red": (0.0, 0.9, 0.9),
    "orange": (28.0, 0.95, 1.0),
    "yellow": (55.0, 0.9, 1.0),
    "green": (120.0, 0.8, 0.75),
    "cyan": (185.0, 0.8, 0.9),
    "blue": (225.0, 0.85, 0.95),
    "purple": (275.0, 0.7, 0.8),
    "pink": (320.0, 0.55, 1.0),
}

SIZES = ("small", "large")
# Object extent as a fraction of one grid cell (the image is a 3x3 grid).
SIZE_FRACTION = {"small": 0.55, "large": 0.9}
ROTATIONS = (-30, -20, -10, 0, 10, 20, 30)


# ---------------------------------------------------------------------------
# Object masks
# ---------------------------------------------------------------------------


def _star(n_points=5, inner=0.42):
    angles = np.pi / 2 + np.arange(2 * n_points) * np.pi / n_points
    radii = np.where(np.arange(2 * n_points) % 2 == 0, 1.0, inner)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _heart(n=64):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
    pts = np.stack([x, y + 2.5], axis=1) / 17.0
    return pts


# Outlines in unit coordinates, y pointing up, roughly filling [-1, 1]^2.
_POLYGONS = {
    "square": np.array([[-0.8, -0.8], [0.8, -0.8], [0.8, 0.8], [-0.8, 0.8]]),
    "triangle": np.array([[0.0, 1.0], [-0.95, -0.72], [0.95, -0.72]]),
    "star": _star(),
    "cross": np.array(
        [
            [-0.3, 1.0],
            [0.3, 1.0],
            [0.3, 0.3],
            [1.0, 0.3],
            [1.0, -0.3],
            [0.3, -0.3],
            [0.3, -1.0],
            [-0.3, -1.0],
            [-0.3, -0.3],
            [-1.0, -0.3],
            [-1.0, 0.3],
            [-0.3, 0.3],
        ]
    ),
    "heart": _heart(),
    "diamond": np.array([[0.0, 1.0], [0.68, 0.0], [0.0, -1.0], [-0.68, 0.0]]),
}

_SUPERSAMPLE = 4


@lru_cache(maxsize=512)
def shape_mask(category: str, size: int, rotation: int = 0) -> np.ndarray:
    """Anti-aliased coverage mask of one geometric shape.

    Parameters
    ----------
    category : str
        One of :data:`SHAPES`.
    size : int
        Side of the square mask in pixels.
    rotation : int
        Counter-clockwise rotation in degrees.

    Returns
    -------
    mask : ndarray of float32, shape (size, size)
        Coverage in ``[0, 1]``.
    """
    big = size * _SUPERSAMPLE
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    half = big / 2.0
    scale = half * 0.98
    if category in ("circle", "ring"):
        draw.ellipse([half - scale, half - scale, half + scale, half + scale], fill=255)
        if category == "ring":
            r = scale * 0.55
            draw.ellipse([half - r, half - r, half + r, half + r], fill=0)
    else:
        pts = _POLYGONS[category]
        theta = np.deg2rad(rotation)
        rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        pts = pts @ rot.T
        xy = [(half + scale * x, half - scale * y) for x, y in pts]
        draw.polygon(xy, fill=255)
    small = canvas.resize((size, size), Image.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


@lru_cache(maxsize=1)
def _digit_bank():
    """The 1,797 handwritten 8x8 digits bundled with scikit-learn (offline)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0
    by_class = [np.flatnonzero(digits.target == k) for k in range(10)]
    return images, by_class


def n_digit_exemplars(digit: int) -> int:
    return len(_digit_bank()[1][digit])


@lru_cache(maxsize=4096)
def digit_mask(digit: int, exemplar: int, size: int) -> np.ndarray:
    """Coverage mask of one handwritten digit exemplar, upsampled to ``size``."""
    images, by_class = _digit_bank()
    img = images[by_class[digit][exemplar]]
    pil = Image.fromarray(np.clip(img * 255.0, 0, 255).astype(np.uint8))
    up = np.asarray(pil.resize((size, size), Image.BICUBIC), dtype=np.float32) / 255.0
    # The 8x8 scans are faint and blurry; a gain makes strokes solid.
    return np.clip(up * 1.6 - 0.15, 0.0, 1.0)


def object_mask(category: str, size: int, rotation: int, exemplar: int) -> np.ndarray:
    if category in DIGITS:
        return digit_mask(DIGITS.index(category), exemplar, size)
    return shape_mask(category, size, rotation)


def object_rgb(hue_deg: float, saturation: float, value: float) -> np.ndarray:
    return np.asarray(
        colorsys.hsv_to_rgb((hue_deg % 360.0) / 360.0, saturation, value), dtype=np.float32
    )


# ---------------------------------------------------------------------------
# Backgrounds
# ---------------------------------------------------------------------------


def pink_noise_textures(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """``n`` textures with a 1/f amplitude spectrum, like natural images.

    Each texture has zero mean and unit standard deviation.

    Returns
    -------
    textures : ndarray of float32, shape (n, size, size)
    """
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    amplitude = (1.0 / f).astype(np.float32)
    amplitude[0, 0] = 0.0
    out = np.empty((n, size, size), dtype=np.float32)
    chunk = 512
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        white = rng.standard_normal((stop - start, size, size), dtype=np.float32)
        spec = np.fft.rfft2(white) * amplitude
        tex = np.fft.irfft2(spec, s=(size, size)).astype(np.float32)
        tex -= tex.mean(axis=(1, 2), keepdims=True)
        tex /= tex.std(axis=(1, 2), keepdims=True) + 1e-8
        out[start:stop] = tex
    return out


def compose(background: np.ndarray, objects, image_size: int) -> np.ndarray:
    """Paste objects onto a float RGB background, in order.

    Parameters
    ----------
    background : ndarray of float32, shape (H, W, 3), values in [0, 1]
    objects : list of dict
        Each with ``mask`` (ndarray (s, s)), ``rgb`` (3,), ``x0``, ``y0``
        (top-left pixel of the mask).

    Returns
    -------
    image : ndarray of uint8, shape (H, W, 3)
    """
    img = background
    for obj in objects:
        m = obj["mask"]
        s = m.shape[0]
        x0, y0 = obj["x0"], obj["y0"]
        # Clip to the canvas: jitter never pushes an object out, but be safe.
        xa, ya = max(x0, 0), max(y0, 0)
        xb, yb = min(x0 + s, image_size), min(y0 + s, image_size)
        mm = m[ya - y0 : yb - y0, xa - x0 : xb - x0, None]
        region = img[ya:yb, xa:xb]
        img[ya:yb, xa:xb] = region * (1.0 - mm) + obj["rgb"][None, None, :] * mm
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
