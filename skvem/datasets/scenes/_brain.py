"""Simulated voxel responses to the synthetic scenes.

Four regions of interest, each with a response rule taken from what is known
of human visual cortex (the rules are documented in
:func:`skvem.datasets.make_scenes`):

* ``early``: compressive spatial summation of local contrast energy inside a
  Gaussian population receptive field (Kay et al., 2013), computed from the
  pixels;
* ``color``: a preferred hue (von Mises tuning) summed over a broad, roughly
  foveal field, from the pixels;
* ``category``: tuning to object categories with superordinate structure,
  tolerant to position, colour and (mostly) size, with the response to
  several objects the average of the responses to each (Zoccolan et al.,
  2005);
* ``semantic``: scene content a description states but pixels carry only
  non-linearly: number of objects, spatial relations, which kinds of object
  co-occur, whether objects share a colour or a category.

All functions are deterministic given their inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import fft as sp_fft

from skvem.datasets.scenes._draw import CATEGORY_GROUPS, GROUPS

ROI_NAMES = ("early", "color", "category", "semantic")
ENERGY_GRID = 16
ENERGY_RESOLUTION = 64
HUE_GRID = 8
N_HUE_BINS = 12


# ---------------------------------------------------------------------------
# Pixel features
# ---------------------------------------------------------------------------


def pool_grid(x: np.ndarray, grid: int) -> np.ndarray:
    """Average-pool axes 1 and 2 of ``x`` onto a ``grid x grid`` lattice."""
    h, w = x.shape[1], x.shape[2]
    ey = np.linspace(0, h, grid + 1).round().astype(int)
    ex = np.linspace(0, w, grid + 1).round().astype(int)
    out = np.add.reduceat(x, ey[:-1], axis=1)
    out = np.add.reduceat(out, ex[:-1], axis=2)
    counts = np.outer(np.diff(ey), np.diff(ex)).astype(np.float32)
    shape = (1, grid, grid) + (1,) * (x.ndim - 3)
    return out / counts.reshape(shape)


def _luminance(images: np.ndarray) -> np.ndarray:
    rgb = images.astype(np.float32) / 255.0
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _log_gabor_bank(size: int) -> np.ndarray:
    """One-sided log-Gabor filters: 2 spatial frequencies x 4 orientations.

    Frequencies are fixed in cycles per image (6 and 14), so the model sees
    the same scene the same way at any resolution. One-sided (analytic)
    filters give the quadrature pair at once: the squared modulus of the
    complex output is the contrast energy.
    """
    fy = np.fft.fftfreq(size)[:, None] * size
    fx = np.fft.fftfreq(size)[None, :] * size
    radius = np.hypot(fx, fy)
    radius[0, 0] = 1.0
    angle = np.arctan2(fy, fx)
    bank = []
    for f0 in (6.0, 14.0):
        radial = np.exp(-(np.log(radius / f0) ** 2) / (2 * np.log(0.6) ** 2))
        radial[0, 0] = 0.0
        for theta in np.arange(4) * np.pi / 4:
            d = np.angle(np.exp(1j * (angle - theta)))
            angular = np.exp(-(d**2) / (2 * (np.pi / 6) ** 2))
            bank.append(radial * angular)
    bank = np.stack(bank).astype(np.float32)
    # Equalise the filters' gains so no band dominates the summed energy.
    bank /= np.sqrt((bank**2).sum(axis=(1, 2), keepdims=True))
    return bank


def contrast_energy(images: np.ndarray, grid: int = ENERGY_GRID, chunk: int = 256) -> np.ndarray:
    """Local luminance contrast energy, pooled on a ``grid x grid`` lattice.

    Parameters
    ----------
    images : ndarray of uint8, shape (n, S, S, 3)

    Returns
    -------
    energy : ndarray of float32, shape (n, grid * grid)
    """
    n, size = images.shape[0], images.shape[1]
    # Both filter bands lie below 32 cycles/image, so larger images are
    # first averaged down to 64 px: same energy map, a fraction of the cost.
    work = min(size, ENERGY_RESOLUTION)
    bank = _log_gabor_bank(work)
    out = np.empty((n, grid * grid), dtype=np.float32)
    for start in range(0, n, chunk):
        lum = _luminance(images[start : start + chunk])
        if size > work:
            lum = pool_grid(lum, work)
        lum -= lum.mean(axis=(1, 2), keepdims=True)
        spec = sp_fft.fft2(lum, workers=-1)
        energy = np.zeros(lum.shape, dtype=np.float32)
        for filt in bank:
            resp = sp_fft.ifft2(spec * filt, workers=-1)
            energy += resp.real**2 + resp.imag**2
        out[start : start + chunk] = pool_grid(energy, grid).reshape(len(lum), -1) * work**2
    return out


def hue_histograms(
    images: np.ndarray, grid: int = HUE_GRID, n_bins: int = N_HUE_BINS
) -> np.ndarray:
    """Chroma-weighted hue histograms on a ``grid x grid`` lattice.

    Each pixel votes for its hue (HSV hue, linearly shared between the two
    nearest of ``n_bins`` bins; bin k stands for hue ``k * 360 / n_bins``)
    with its chroma (max - min of R, G, B), so grey pixels, whatever their
    luminance, cast no vote.

    Returns
    -------
    hist : ndarray of float32, shape (n, grid * grid, n_bins)
        Mean vote per pixel of every lattice cell.
    """
    n, h, w = images.shape[:3]
    r, g, b = images[..., 0], images[..., 1], images[..., 2]
    mx = np.maximum(np.maximum(r, g), b)
    mn = np.minimum(np.minimum(r, g), b)
    # Only chromatic pixels vote: on these scenes that is a small minority.
    img_i, y, x = np.nonzero(mx != mn)
    rr = r[img_i, y, x].astype(np.float32) / 255.0
    gg = g[img_i, y, x].astype(np.float32) / 255.0
    bb = b[img_i, y, x].astype(np.float32) / 255.0
    top = mx[img_i, y, x].astype(np.float32) / 255.0
    chroma = top - mn[img_i, y, x].astype(np.float32) / 255.0
    hue = np.where(
        top == rr,
        ((gg - bb) / chroma) % 6.0,
        np.where(top == gg, (bb - rr) / chroma + 2.0, (rr - gg) / chroma + 4.0),
    ) * (n_bins / 6.0)
    lower = np.floor(hue).astype(np.int64)
    frac = hue - lower
    lower %= n_bins
    upper = (lower + 1) % n_bins
    ey = np.linspace(0, h, grid + 1).round().astype(int)
    ex = np.linspace(0, w, grid + 1).round().astype(int)
    cell = (np.searchsorted(ey, y, side="right") - 1) * grid + (
        np.searchsorted(ex, x, side="right") - 1
    )
    base = (img_i * (grid * grid) + cell) * n_bins
    size = n * grid * grid * n_bins
    hist = np.bincount(base + lower, weights=chroma * (1.0 - frac), minlength=size)
    hist += np.bincount(base + upper, weights=chroma * frac, minlength=size)
    hist = hist.reshape(n, grid * grid, n_bins)
    area = np.outer(np.diff(ey), np.diff(ex)).reshape(1, grid * grid, 1)
    return (hist / area).astype(np.float32)


def grid_centers(grid: int) -> np.ndarray:
    """Centres of a ``grid x grid`` lattice in image units, ``(grid**2, 2)`` as (x, y)."""
    c = (np.arange(grid) + 0.5) / grid - 0.5
    xx, yy = np.meshgrid(c, c)
    return np.stack([xx.ravel(), yy.ravel()], axis=1)


# ---------------------------------------------------------------------------
# Scene-level (symbolic) features
# ---------------------------------------------------------------------------

SEMANTIC_FAMILIES = ("numerosity", "relation", "role", "conjunction", "sameness")
_FAMILY_PROB = {
    "numerosity": 0.2,
    "relation": 0.2,
    "role": 0.25,
    "conjunction": 0.25,
    "sameness": 0.1,
}


def semantic_factor_names(max_objects: int):
    names = [f"numerosity:{k}" for k in range(1, max_objects + 1)]
    names += ["relation:stacked", "relation:side_by_side", "relation:diagonal"]
    names += [f"role:{g}_{d}" for g in GROUPS for d in ("above", "below", "left_of", "right_of")]
    names += [f"conjunction:{a}+{b}" for i, a in enumerate(GROUPS) for b in GROUPS[i:]]
    names += ["sameness:color", "sameness:category", "sameness:size"]
    return names


def semantic_factors(scenes, max_objects: int) -> np.ndarray:
    """The scene properties the ``semantic`` ROI reads out.

    ``numerosity:k`` is a log-Gaussian tuning curve centred on ``k`` objects
    (sigma 0.35 in log units; Nieder & Miller, 2003; Harvey et al., 2013).
    ``relation:*`` counts object pairs sharing a column (stacked), a row (side
    by side) or neither (diagonal). ``role:G_D`` is 1 when an object of group
    G is above / below / left of / right of another object. ``conjunction:A+B``
    is 1 when objects of groups A and B appear together (two of them for A=B).
    ``sameness:*`` is 1 when there are at least two objects and all share a
    colour / category / size.

    Returns
    -------
    factors : ndarray of float32, shape (n_scenes, n_factors)
    """
    names = semantic_factor_names(max_objects)
    col = {name: i for i, name in enumerate(names)}
    out = np.zeros((len(scenes), len(names)), dtype=np.float32)
    ks = np.arange(1, max_objects + 1)
    for s, scene in enumerate(scenes):
        objs = scene["objects"]
        n = len(objs)
        out[s, : len(ks)] = np.exp(-((np.log(n) - np.log(ks)) ** 2) / (2 * 0.35**2))
        groups = [CATEGORY_GROUPS[o["category"]] for o in objs]
        for rel in scene["relations"]:
            a, b = objs[rel["subject"]], objs[rel["object"]]
            if a["col"] == b["col"]:
                out[s, col["relation:stacked"]] += 1
            elif a["row"] == b["row"]:
                out[s, col["relation:side_by_side"]] += 1
            else:
                out[s, col["relation:diagonal"]] += 1
        for i, a in enumerate(objs):
            for j, b in enumerate(objs):
                if i == j:
                    continue
                g = groups[i]
                if a["row"] < b["row"]:
                    out[s, col[f"role:{g}_above"]] = 1
                if a["row"] > b["row"]:
                    out[s, col[f"role:{g}_below"]] = 1
                if a["col"] < b["col"]:
                    out[s, col[f"role:{g}_left_of"]] = 1
                if a["col"] > b["col"]:
                    out[s, col[f"role:{g}_right_of"]] = 1
        for i, ga in enumerate(GROUPS):
            for gb in GROUPS[i:]:
                if ga == gb:
                    present = groups.count(ga) >= 2
                else:
                    present = ga in groups and gb in groups
                out[s, col[f"conjunction:{ga}+{gb}"]] = float(present)
        if n >= 2:
            out[s, col["sameness:color"]] = float(len({o["color"] for o in objs}) == 1)
            out[s, col["sameness:category"]] = float(len({o["category"] for o in objs}) == 1)
            out[s, col["sameness:size"]] = float(len({o["size"] for o in objs}) == 1)
    return out


def category_drive(scenes, categories, small_gain: float = 0.9) -> np.ndarray:
    """Per-scene average over objects of a category one-hot code.

    A small object counts ``small_gain`` (tolerance to size is high but not
    perfect in lateral occipital cortex); position and colour do not count.

    Returns
    -------
    drive : ndarray of float32, shape (n_scenes, n_categories)
    """
    index = {c: i for i, c in enumerate(categories)}
    out = np.zeros((len(scenes), len(categories)), dtype=np.float32)
    for s, scene in enumerate(scenes):
        objs = scene["objects"]
        for o in objs:
            out[s, index[o["category"]]] += (small_gain if o["size"] == "small" else 1.0) / len(
                objs
            )
    return out


# ---------------------------------------------------------------------------
# The simulated brain
# ---------------------------------------------------------------------------


@dataclass
class Brain:
    """Per-voxel parameters of the simulated subject."""

    roi: np.ndarray  # (V,) ROI name per voxel
    rois: dict  # name -> voxel indices
    snr: np.ndarray  # (V,) noise-ceiling SNR (signal sd / noise sd)
    gain: np.ndarray  # (V,)
    offset: np.ndarray  # (V,)
    early_center: np.ndarray = field(default=None)  # (n_early, 2) x, y in image units
    early_sigma: np.ndarray = field(default=None)
    early_exponent: np.ndarray = field(default=None)
    color_center: np.ndarray = field(default=None)
    color_sigma: np.ndarray = field(default=None)
    color_hue: np.ndarray = field(default=None)  # preferred hue, degrees
    color_kappa: np.ndarray = field(default=None)
    category_tuning: np.ndarray = field(default=None)  # (n_category, n_categories)
    semantic_weights: np.ndarray = field(default=None)  # (n_semantic, n_factors)
    noise_loadings: np.ndarray = field(default=None)  # (n_shared, V)
    ref_mean: np.ndarray = field(default=None)
    ref_std: np.ndarray = field(default=None)


def sample_brain(
    rng,
    n_voxels: dict,
    categories,
    snr_ranges: dict,
    semantic_ok: np.ndarray,
    max_objects: int,
    n_shared_noise: int = 3,
) -> Brain:
    """Draw every voxel's parameters (see :func:`make_scenes` for the rules)."""
    counts = [int(n_voxels[r]) for r in ROI_NAMES]
    total = sum(counts)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    rois = {r: np.arange(bounds[i], bounds[i + 1]) for i, r in enumerate(ROI_NAMES)}
    roi = np.empty(total, dtype=object)
    snr = np.empty(total)
    for r in ROI_NAMES:
        roi[rois[r]] = r
        lo, hi = snr_ranges[r]
        snr[rois[r]] = np.exp(rng.uniform(np.log(lo), np.log(hi), size=len(rois[r])))
    brain = Brain(
        roi=roi,
        rois=rois,
        snr=snr,
        gain=np.exp(rng.normal(0.0, 0.4, size=total)),
        offset=rng.normal(0.5, 0.3, size=total),
    )

    ne = counts[0]
    # Foveal over-representation: eccentricity uniform in [0, 0.6] makes the
    # areal density of pRF centres fall off as 1/eccentricity (cortical
    # magnification). pRF size grows linearly with eccentricity, with a
    # V1-to-V3 spread (Dumoulin & Wandell, 2008).
    ecc = rng.uniform(0.0, 0.6, size=ne)
    ang = rng.uniform(0.0, 2 * np.pi, size=ne)
    brain.early_center = np.stack([ecc * np.cos(ang), ecc * np.sin(ang)], axis=1)
    brain.early_sigma = (0.04 + 0.15 * ecc) * rng.uniform(1.0, 2.0, size=ne)
    brain.early_exponent = rng.uniform(0.25, 0.5, size=ne)

    nc = counts[1]
    ecc = rng.uniform(0.0, 0.25, size=nc)
    ang = rng.uniform(0.0, 2 * np.pi, size=nc)
    brain.color_center = np.stack([ecc * np.cos(ang), ecc * np.sin(ang)], axis=1)
    brain.color_sigma = rng.uniform(0.2, 0.4, size=nc)
    brain.color_hue = rng.uniform(0.0, 360.0, size=nc)
    brain.color_kappa = rng.uniform(0.8, 2.5, size=nc)

    nk = counts[2]
    group_of = np.array([GROUPS.index(CATEGORY_GROUPS[c]) for c in categories])
    g = rng.standard_normal((nk, len(GROUPS)))
    e = rng.standard_normal((nk, len(categories)))
    z = 0.6 * g[:, group_of] + 0.8 * e
    beta = rng.uniform(1.0, 2.5, size=(nk, 1))
    tuning = np.exp(beta * z)
    brain.category_tuning = tuning / tuning.max(axis=1, keepdims=True)

    ns = counts[3]
    names = np.array(semantic_factor_names(max_objects))
    n_factors = len(names)
    families = np.array([n.split(":")[0] for n in names])
    weights = np.zeros((ns, n_factors))
    avail_fam = [f for f in SEMANTIC_FAMILIES if np.any(semantic_ok & (families == f))]
    p = np.array([_FAMILY_PROB[f] for f in avail_fam])
    p /= p.sum()
    for v in range(ns):
        for _ in range(2):
            fam = avail_fam[int(rng.choice(len(avail_fam), p=p))]
            options = np.flatnonzero(semantic_ok & (families == fam))
            weights[v, options[int(rng.integers(len(options)))]] += rng.uniform(0.5, 1.0)
    brain.semantic_weights = weights

    if n_shared_noise:
        load = rng.standard_normal((n_shared_noise, total))
        brain.noise_loadings = load / np.sqrt((load**2).sum(axis=0, keepdims=True))
    return brain


def _gaussian_field(centers, sigmas, grid_xy):
    d2 = ((grid_xy[None, :, :] - centers[:, None, :]) ** 2).sum(axis=-1)
    f = np.exp(-d2 / (2 * sigmas[:, None] ** 2))
    return f / f.sum(axis=1, keepdims=True)


def raw_responses(brain: Brain, energy, hue_hist, cat_drive, sem_factors) -> np.ndarray:
    """Noise-free, un-normalised responses ``(n_scenes, n_voxels)``."""
    n = energy.shape[0]
    out = np.empty((n, len(brain.roi)), dtype=np.float64)

    rf = _gaussian_field(brain.early_center, brain.early_sigma, grid_centers(ENERGY_GRID))
    drive = energy.astype(np.float64) @ rf.T
    out[:, brain.rois["early"]] = np.maximum(drive, 0.0) ** brain.early_exponent[None, :]

    field_ = _gaussian_field(brain.color_center, brain.color_sigma, grid_centers(HUE_GRID))
    # The soft vote shares hue h between bins floor(h / 30 deg) and the next,
    # so bin k stands for hue k * 30 deg.
    bins = np.arange(N_HUE_BINS) * 360.0 / N_HUE_BINS
    d = np.deg2rad(bins[None, :] - brain.color_hue[:, None])
    tuning = np.exp(brain.color_kappa[:, None] * (np.cos(d) - 1.0))  # (nc, bins)
    per_space = np.einsum("nsb,vb->nvs", hue_hist.astype(np.float64), tuning)
    drive = np.einsum("nvs,vs->nv", per_space, field_)
    out[:, brain.rois["color"]] = np.sqrt(np.maximum(drive, 0.0))

    out[:, brain.rois["category"]] = cat_drive.astype(np.float64) @ brain.category_tuning.T
    out[:, brain.rois["semantic"]] = sem_factors.astype(np.float64) @ brain.semantic_weights.T
    return out
