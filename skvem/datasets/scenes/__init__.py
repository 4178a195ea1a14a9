"""A synthetic stimulus set with known ground truth: scenes, descriptions, voxels."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.utils import Bunch, check_random_state

from skvem._utils.validation import check_float, check_int
from skvem.images import ImageSet
from skvem.datasets.scenes import _brain as brain_mod
from skvem.datasets.scenes._draw import CATEGORIES, COLORS, DIGITS, SHAPES
from skvem.datasets.scenes._sample import draw_set, scene_features, scene_latents

__all__ = ["make_scenes"]

ROI_NAMES = brain_mod.ROI_NAMES
DEFAULT_N_VOXELS = {"early": 80, "color": 60, "category": 60, "semantic": 60}
# Ranges of the noise-ceiling SNR (signal sd / single-trial noise sd), drawn
# log-uniformly per voxel. NSD's nsdgeneral voxels have ncsnr mostly between
# ~0.05 and ~1.5, highest in early visual cortex (Allen et al., 2022); the
# lower ends put some voxels of every ROI near the noise floor.
DEFAULT_SNR = {
    "early": (0.1, 2.0),
    "color": (0.08, 1.5),
    "category": (0.08, 1.5),
    "semantic": (0.05, 1.0),
}

DESCR = """\
Synthetic scenes with simulated fMRI responses
==============================================

Stimuli
-------
Each scene is a square RGB image split into a 3x3 grid. The background has a
uniform random luminance (0.15-0.85) plus a 1/f ("pink") noise texture of
random contrast. On it sit 1 to ``max_objects`` objects, each in its own grid
cell (no two objects share a cell), with a small random jitter inside the
cell. Every object has

* a category: 8 geometric shapes (circle, square, triangle, star, cross, ring,
  heart, diamond; polygons rotated by up to +-30 degrees) and 10 handwritten
  digits (a random exemplar of scikit-learn's bundled 8x8 digits, upsampled);
* a colour: red, orange, yellow, green, cyan, blue, purple or pink (hue
  jittered by +-6 degrees, saturation and value by up to 10-15 %);
* a size: small (55 % of a cell) or large (90 % of a cell);
* a place: its grid cell (top left ... bottom right).

Descriptions
------------
Each image carries a description (``images.captions``) that names every
object's size, colour, category and place, the spatial relation between every
pair of objects ("above", "to the left of", "above and to the left of", ...),
the number of objects and the tone of the background (dark / gray / light),
in one of several phrasings drawn at random. Descriptions are true of the
scene by construction: an ideal captioner would write them.

Voxel responses
---------------
Four ROIs, each with a response rule in the spirit of human visual cortex.
Nothing in them is tuned to favour any model.

``early`` (V1-V3-like)
    Compressive spatial summation (Kay et al., 2013): local luminance contrast
    energy (quadrature log-Gabor filters at 6 and 14 cycles/image, 4
    orientations, computed from the pixels, averaged down to 64 px first when
    the images are larger) summed under a Gaussian population
    receptive field, raised to an exponent n in [0.25, 0.5]. pRF centres
    over-represent the fovea (uniform eccentricity in [0, 0.6] image widths)
    and pRF size grows linearly with eccentricity (Dumoulin & Wandell, 2008).
``color`` (V4-like)
    Chroma-weighted hue histograms computed from the pixels, read through a
    von Mises tuning curve around a preferred hue (concentration 0.8-2.5, i.e.
    broad) and a broad near-foveal Gaussian field (sigma 0.2-0.4 image widths);
    the square root compresses the sum. Grey pixels never drive it.
``category`` (LOC / ventral temporal-like)
    Each voxel has a tuning over categories with superordinate structure
    (curved shapes / angular shapes / digits share part of their preference;
    Kriegeskorte et al., 2008). The response is invariant to position and
    colour and nearly so to size (a small object counts 0.9); with several
    objects it is the average of the single-object responses (Zoccolan et
    al., 2005), so it does not count objects.
``semantic`` (higher-level)
    A sparse positive mixture (two draws) of scene properties a description
    states but the pixels carry only non-linearly: numerosity (log-Gaussian
    tuning to the number of objects), spatial relations (pairs stacked / side
    by side / diagonal), role-bound relations (an object of a given kind above
    / below / left of / right of another), co-occurrence of kinds of objects
    (curved+digit, two angular shapes, ...) and sameness (all objects share a
    colour / category / size).

Each voxel's noise-free response is standardised with the mean and standard
deviation of its responses to a fixed reference set of scenes drawn from the
same distribution, so the simulated subject is a fixed function of
``random_state`` whatever ``n_images`` is: the first k scenes (and their
responses) of ``make_scenes(n, random_state=s)`` are the same for every n >= k.
A voxel's measured response on repeat r is
``gain * (signal + noise_r / snr) + offset``, with a log-normal gain,
a per-voxel offset, and Gaussian noise of unit variance of which a fraction
``shared_noise`` is shared across voxels through 3 random spatial factors
(fMRI noise is spatially correlated). ``snr`` is drawn log-uniformly per voxel
from a range per ROI, so the noise ceilings spread from the noise floor to
~90 %.

References
----------
Allen et al. (2022) Nat. Neurosci. 25, 116-126. Dumoulin & Wandell (2008)
NeuroImage 39, 647-660. Harvey et al. (2013) Science 341, 1123-1126. Kay et
al. (2013) J. Neurophysiol. 110, 481-494. Kriegeskorte et al. (2008) Neuron
60, 1126-1141. Zoccolan, Cox & DiCarlo (2005) J. Neurosci. 25, 8150-8164.
"""


# ---------------------------------------------------------------------------
# Parameter checks
# ---------------------------------------------------------------------------


# A make_scenes call larger than this is a typo, not an experiment.
_MAX_BYTES = 256 * 2**30


def _check_categories(categories):
    if categories is None or (isinstance(categories, str) and categories == "all"):
        return CATEGORIES
    if isinstance(categories, str):
        if categories == "shapes":
            return SHAPES
        if categories == "digits":
            return DIGITS
        raise ValueError(
            f"categories must be 'all', 'shapes', 'digits' or a list of names from {CATEGORIES}; "
            f"got {categories!r}"
        )
    cats = tuple(dict.fromkeys(categories))
    unknown = [c for c in cats if c not in CATEGORIES]
    if unknown:
        raise ValueError(f"categories has unknown names {unknown}; choose from {CATEGORIES}")
    if len(cats) < 2:
        raise ValueError(f"categories needs at least 2 distinct categories; got {cats}")
    return cats


def _check_n_voxels(n_voxels):
    if n_voxels is None:
        return dict(DEFAULT_N_VOXELS)
    if isinstance(n_voxels, Integral) and not isinstance(n_voxels, bool):
        check_int(n_voxels, name="n_voxels", min_val=1)
        return {r: int(n_voxels) for r in ROI_NAMES}
    if isinstance(n_voxels, dict):
        unknown = set(n_voxels) - set(ROI_NAMES)
        if unknown:
            raise ValueError(f"n_voxels has unknown ROIs {sorted(unknown)}; ROIs are {ROI_NAMES}")
        out = dict(DEFAULT_N_VOXELS)
        for r, v in n_voxels.items():
            out[r] = check_int(v, name=f"n_voxels[{r!r}]", min_val=0)
        if sum(out.values()) == 0:
            raise ValueError("n_voxels gives every ROI 0 voxels")
        return out
    raise ValueError(f"n_voxels must be None, an int or a dict ROI -> int; got {n_voxels!r}")


def _check_range(value, name):
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a (low, high) pair of positive numbers; got {value!r}"
        ) from None
    if not (0 < lo <= hi and np.isfinite(hi)):
        raise ValueError(f"{name} must satisfy 0 < low <= high; got {value!r}")
    return lo, hi


def _check_snr(snr):
    if snr is None:
        return dict(DEFAULT_SNR)
    if isinstance(snr, dict):
        unknown = set(snr) - set(ROI_NAMES)
        if unknown:
            raise ValueError(f"snr has unknown ROIs {sorted(unknown)}; ROIs are {ROI_NAMES}")
        out = dict(DEFAULT_SNR)
        out.update({r: _check_range(v, f"snr[{r!r}]") for r, v in snr.items()})
        return out
    rng = _check_range(snr, "snr")
    return {r: rng for r in ROI_NAMES}


# ---------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------


def make_scenes(
    n_images=1000,
    *,
    n_repeats=3,
    image_size=64,
    n_voxels=None,
    categories=None,
    max_objects=3,
    snr=None,
    shared_noise=0.25,
    n_reference=500,
    random_state=None,
    verbose=False,
):
    """Synthetic scenes with descriptions and simulated fMRI responses.

    Procedurally drawn scenes of 1-3 coloured objects on a textured
    background, a natural-language description of each scene, and simulated
    voxel responses in four ROIs (``early``, ``color``, ``category``,
    ``semantic``) with repeated noisy measurements, so that noise ceilings and
    questions such as "does aligning image features with language help, and
    where?" can be studied on a laptop. The full generative model is in
    ``DESCR``.

    Parameters
    ----------
    n_images : int, default=1000
        Number of scenes.
    n_repeats : int, default=3
        Number of noisy measurements of every scene (NSD shows each image 3
        times). With 1 repeat the noise ceiling cannot be estimated and is
        ``None``.
    image_size : int, default=64
        Side of the square images in pixels (>= 32).
    n_voxels : int or dict, default=None
        Voxels per ROI: an int for every ROI, or a dict ROI name -> count
        (missing ROIs keep their default; 0 drops an ROI). Default:
        ``{"early": 80, "color": 60, "category": 60, "semantic": 60}``.
    categories : {"all", "shapes", "digits"} or list of str, default=None
        Object categories to draw from. ``None`` or ``"all"``: the 8 shapes
        and the 10 digits.
    max_objects : int, default=3
        Scenes have between 1 and ``max_objects`` (<= 4) objects, uniformly.
    snr : (float, float) or dict, default=None
        Range of the per-voxel noise-ceiling SNR (signal sd / single-trial
        noise sd), drawn log-uniformly; one pair for all ROIs or a dict ROI
        -> pair. Default: early (0.1, 2.0), color and category (0.08, 1.5),
        semantic (0.05, 1.0).
    shared_noise : float in [0, 1), default=0.25
        Fraction of the noise variance shared across voxels.
    n_reference : int, default=500
        Number of reference scenes whose responses fix every voxel's scale.
    random_state : int, RandomState instance or None, default=None
        Determines scenes, descriptions, the simulated subject and the noise.
    verbose : bool or int, default=False
        Show a progress bar while drawing.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        images : ImageSet of n_images
            RGB ``(image_size, image_size)`` images; ``images.captions`` are
            the descriptions and ``images.ids`` the scene numbers.
        descriptions : ndarray of str, shape (n_images,)
            The same descriptions as ``images.captions``.
        fmri : ndarray of float32, shape (n_images, n_voxels)
            Responses averaged over repeats.
        fmri_repeats : ndarray of float32, shape (n_images, n_repeats, n_voxels)
            Every noisy measurement, for noise ceilings.
        signal : ndarray of float32, shape (n_images, n_voxels)
            The noise-free response (``gain * signal + offset``).
        rois : dict of str -> ndarray of int
            Voxel indices of every ROI.
        noise_ceiling : ndarray of float, shape (n_voxels,) or None
            Estimated from ``fmri_repeats`` by
            :func:`skvem.metrics.noise_ceiling` (percent of variance).
        true_noise_ceiling : ndarray of float, shape (n_voxels,)
            ``100 * snr**2 / (snr**2 + 1 / n_repeats)`` from the true SNR.
        latents : ndarray of float32, shape (n_images, n_latents)
            Ground-truth generative features (object counts per category,
            colour, size and cell; background luminance; pooled square-root
            contrast energy on an 8x8 grid; the semantic factors), for an
            oracle encoding model.
        latent_names : ndarray of str, shape (n_latents,)
            The name of every column of ``latents``.
        scenes : list of dict
            Per-scene content: ``background`` (luminance, tone,
            texture_contrast), ``objects`` (category, group, color, size, row,
            col, place, hue, center in pixels, ...) and ``relations``
            (subject, object, vertical, horizontal).
        voxel_params : dict
            The simulated subject: ``roi`` and ``snr``, ``gain``, ``offset``
            per voxel, and each ROI's tuning parameters.
        categories, colors : tuple of str
            The object categories and colour names scenes draw from.
        DESCR : str
            The generative model, ROI by ROI.

    Notes
    -----
    Generation is deterministic given ``random_state`` and prefix-stable:
    the first k scenes of ``make_scenes(n)`` do not depend on ``n``.

    Examples
    --------
    >>> from skvem.datasets import make_scenes
    >>> data = make_scenes(20, n_voxels=10, random_state=0)
    >>> data.fmri.shape, data.fmri_repeats.shape
    ((20, 40), (20, 3, 40))
    >>> sorted(data.rois)
    ['category', 'color', 'early', 'semantic']
    >>> isinstance(data.images.captions[0], str)
    True
    """
    n_images = check_int(n_images, name="n_images", min_val=1)
    n_repeats = check_int(n_repeats, name="n_repeats", min_val=1)
    image_size = check_int(image_size, name="image_size", min_val=32)
    max_objects = check_int(max_objects, name="max_objects", min_val=1)
    if max_objects > 4:
        raise ValueError(f"max_objects must be between 1 and 4; got {max_objects}")
    n_reference = check_int(n_reference, name="n_reference", min_val=50)
    # Pixels and single trials are held in memory: refuse what cannot fit
    # before drawing anything, rather than failing deep inside numpy.
    needed = n_images * (image_size**2 * 3 + n_repeats * 4 * 1000)
    if needed > _MAX_BYTES:
        raise ValueError(
            f"n_images={n_images} at image_size={image_size} and n_repeats={n_repeats} needs "
            f"about {needed / 2**30:.3g} GiB in memory (at most {_MAX_BYTES / 2**30:.0f} GiB); "
            "draw fewer or smaller scenes"
        )
    categories = _check_categories(categories)
    counts = _check_n_voxels(n_voxels)
    snr_ranges = _check_snr(snr)
    check_float(shared_noise, name="shared_noise", min_val=0.0, max_val=1.0,
                include_boundaries="left")

    rs = check_random_state(random_state)
    seeds = rs.randint(0, 2**31 - 1, size=10)

    # 1. Reference scenes fix what the simulated subject responds to and
    # the scale of every voxel, independently of n_images.
    ref_scenes, ref_images, _ = draw_set(
        n_reference, seeds[0:3], categories, max_objects, image_size, verbose, "reference scenes"
    )
    ref_feats = scene_features(ref_scenes, ref_images, categories, max_objects)
    semantic_ok = ref_feats["semantic"].std(axis=0) > 1e-6
    brain = brain_mod.sample_brain(
        np.random.default_rng(seeds[3]),
        counts,
        categories,
        snr_ranges,
        semantic_ok,
        max_objects,
        n_shared_noise=3 if shared_noise > 0 else 0,
    )
    ref_raw = brain_mod.raw_responses(brain, **_feature_args(ref_feats))
    brain.ref_mean = ref_raw.mean(axis=0)
    brain.ref_std = ref_raw.std(axis=0)
    brain.ref_std[brain.ref_std < 1e-12] = 1.0

    # 2. The stimulus set itself.
    scenes, images, texts = draw_set(
        n_images, seeds[4:7], categories, max_objects, image_size, verbose, "scenes"
    )
    feats = scene_features(scenes, images, categories, max_objects)
    z = (brain_mod.raw_responses(brain, **_feature_args(feats)) - brain.ref_mean) / brain.ref_std

    # 3. Measurements: gain * (signal + noise / snr) + offset.
    n_vox = z.shape[1]
    noise = np.random.default_rng(seeds[7]).standard_normal(
        (n_images, n_repeats, n_vox), dtype=np.float32
    )
    if shared_noise > 0:
        factors = np.random.default_rng(seeds[8]).standard_normal(
            (n_images, n_repeats, brain.noise_loadings.shape[0]), dtype=np.float32
        )
        noise = np.sqrt(1.0 - shared_noise) * noise + np.sqrt(shared_noise) * (
            factors @ brain.noise_loadings.astype(np.float32)
        )
    gain = brain.gain.astype(np.float32)
    offset = brain.offset.astype(np.float32)
    signal = (gain * z + offset).astype(np.float32)
    repeats = signal[:, None, :] + (gain / brain.snr.astype(np.float32)) * noise
    repeats = repeats.astype(np.float32)
    fmri = repeats.mean(axis=1)

    noise_ceiling = None
    if n_repeats >= 2:
        from skvem.metrics import noise_ceiling as _noise_ceiling

        noise_ceiling = _noise_ceiling(repeats)
    true_nc = 100.0 * brain.snr**2 / (brain.snr**2 + 1.0 / n_repeats)

    latents, latent_names = scene_latents(scenes, feats, categories, max_objects)
    ids = np.arange(n_images)
    return Bunch(
        images=ImageSet(images, ids=ids, captions=texts),
        descriptions=np.array(texts, dtype=object),
        fmri=fmri,
        fmri_repeats=repeats,
        signal=signal,
        rois={r: idx.copy() for r, idx in brain.rois.items()},
        noise_ceiling=noise_ceiling,
        true_noise_ceiling=true_nc,
        latents=latents,
        latent_names=latent_names,
        scenes=scenes,
        voxel_params=_voxel_params(brain, categories, max_objects),
        categories=tuple(categories),
        colors=tuple(COLORS),
        DESCR=DESCR,
    )


def _feature_args(feats):
    return {
        "energy": feats["energy"],
        "hue_hist": feats["hue"],
        "cat_drive": feats["category"],
        "sem_factors": feats["semantic"],
    }


def _voxel_params(brain, categories, max_objects):
    return {
        "roi": brain.roi.copy(),
        "snr": brain.snr.copy(),
        "gain": brain.gain.copy(),
        "offset": brain.offset.copy(),
        "early": {
            "center": brain.early_center.copy(),
            "sigma": brain.early_sigma.copy(),
            "exponent": brain.early_exponent.copy(),
        },
        "color": {
            "center": brain.color_center.copy(),
            "sigma": brain.color_sigma.copy(),
            "preferred_hue": brain.color_hue.copy(),
            "kappa": brain.color_kappa.copy(),
        },
        "category": {"tuning": brain.category_tuning.copy(), "categories": tuple(categories)},
        "semantic": {
            "weights": brain.semantic_weights.copy(),
            "factor_names": tuple(brain_mod.semantic_factor_names(max_objects)),
        },
    }
