"""Scores for voxelwise encoding models.

* :func:`pearson_r` -- correlation between measured and predicted responses,
  one value per voxel;
* :func:`noise_ceiling` -- the NSD noise ceiling (percent of variance) from
  repeated presentations of the same images;
* :func:`algonauts_score` / :func:`algonauts_score_voxels` -- the Algonauts
  2023 challenge score, squared correlation as a percentage of the noise
  ceiling;
* :data:`correlation_scorer` -- a scikit-learn scorer (mean voxel
  correlation) for ``cross_val_score`` and ``GridSearchCV``.

All functions compute in float64, in blocks of voxels so that whole-brain
arrays (tens of thousands of voxels) never need a full float64 copy.
"""

import numbers
import warnings

import numpy as np
from sklearn.metrics import make_scorer

from skvem._utils.validation import check_finite, check_fmri, check_n_samples

__all__ = [
    "pearson_r",
    "noise_ceiling",
    "algonauts_score",
    "algonauts_score_voxels",
    "correlation_scorer",
]

# Float64 elements per temporary block (~32 MB each): bounds the memory of
# the block-wise computations whatever the number of voxels.
_BLOCK_ELEMENTS = 1 << 22


def _voxel_blocks(n_rows, n_voxels):
    step = max(1, _BLOCK_ELEMENTS // max(n_rows, 1))
    for start in range(0, n_voxels, step):
        yield slice(start, min(start + step, n_voxels))


# A column is constant when its range is at most this many float64 ulps of
# its largest magnitude: the mean of identical float64 values is not always
# that value, so centring leaves rounding residue that a ``den > 0`` test
# would score as r = +/-1 (issue 9). Genuine spreads this small carry no
# correlation a float64 computation could resolve anyway.
_CONSTANT_ULPS = 16.0


def _standardise(a):
    """Scale each column to max |a| = 1, centre it; flag constant columns.

    Scaling before centring keeps every later product in range, so data
    around 1e200 or 1e-200 neither overflows nor underflows.
    """
    scale = np.max(np.abs(a), axis=0)
    scale[scale == 0] = 1.0
    a /= scale
    spread = np.max(a, axis=0) - np.min(a, axis=0)
    constant = spread <= _CONSTANT_ULPS * np.finfo(np.float64).eps
    a -= a.mean(axis=0)
    return constant


def _pearson_r_2d(a, b):
    """Column-wise Pearson r of two validated 2-D arrays of equal shape.

    The one Pearson implementation of skvem: every per-voxel correlation
    (``pearson_r``, ``algonauts_score``, ``VoxelRidgeCV.score``) goes
    through it. A constant column scores 0.
    """
    n_samples, n_voxels = a.shape
    out = np.empty(n_voxels, dtype=np.float64)
    for sl in _voxel_blocks(n_samples, n_voxels):
        x = a[:, sl].astype(np.float64)  # always a copy: modified in place
        y = b[:, sl].astype(np.float64)
        constant = _standardise(x) | _standardise(y)
        num = np.einsum("ij,ij->j", x, y)
        den = np.sqrt(np.einsum("ij,ij->j", x, x) * np.einsum("ij,ij->j", y, y))
        r = np.divide(num, den, out=np.zeros_like(num), where=~constant)
        out[sl] = np.clip(r, -1.0, 1.0)  # rounding can step past +/-1
    return out


def _check_pair(y_true, y_pred):
    y_true2, was_1d = check_fmri(y_true, name="y_true")
    y_pred2, _ = check_fmri(y_pred, n_samples=y_true2.shape[0], name="y_pred")
    if y_pred2.shape[1] != y_true2.shape[1]:
        raise ValueError(
            f"y_true and y_pred must have the same number of voxels; got "
            f"{y_true2.shape[1]} and {y_pred2.shape[1]}."
        )
    if y_true2.shape[0] < 2:
        raise ValueError(
            "A correlation needs at least 2 samples; y_true has "
            f"n_samples={y_true2.shape[0]}."
        )
    return y_true2, y_pred2, was_1d


def pearson_r(y_true, y_pred):
    """Pearson correlation between measured and predicted responses, per voxel.

    Parameters
    ----------
    y_true : array-like of shape (n_samples, n_voxels) or (n_samples,)
        Measured responses.
    y_pred : array-like of the same shape as ``y_true``
        Predicted responses.

    Returns
    -------
    r : ndarray of shape (n_voxels,), or float if ``y_true`` is 1-D
        Correlation of each voxel, in [-1, 1]. A voxel whose measured or
        predicted column is constant (its range is within a few float64
        rounding errors of its magnitude) scores 0, as its correlation is
        undefined; no NaN and no warning is produced. Columns are scaled
        before they are multiplied, so any finite magnitude works.

    Raises
    ------
    ValueError
        If the shapes differ, there are fewer than 2 samples, or the inputs
        contain NaN or infinite values.

    Examples
    --------
    >>> import numpy as np
    >>> from skvem.metrics import pearson_r
    >>> y = np.array([[1.0, 2.0], [2.0, 2.0], [3.0, 2.0]])
    >>> pearson_r(y, 2 * y + 1)
    array([1., 0.])
    >>> float(pearson_r([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]))
    -1.0
    """
    y_true2, y_pred2, was_1d = _check_pair(y_true, y_pred)
    r = _pearson_r_2d(y_true2, y_pred2)
    return float(r[0]) if was_1d else r


def _inverse_repeats(n_repeats, counts):
    """Mean of 1 / n_i over the evaluated images (the NSD A/a + B/b + ... rule).

    ``counts`` (n_images, n_voxels) are the non-NaN repeats of each image,
    used when ``n_repeats`` is None.
    """
    if n_repeats is None:
        with np.errstate(divide="ignore"):
            inv = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
        # Images with no repeat at all are not part of the evaluated set.
        return inv.sum(axis=0) / np.count_nonzero(counts, axis=0)
    if isinstance(n_repeats, numbers.Number) and not isinstance(n_repeats, bool):
        if not float(n_repeats).is_integer() or n_repeats < 1:
            raise ValueError(f"n_repeats must be a positive integer; got {n_repeats!r}.")
        return 1.0 / float(n_repeats)
    n_rep = np.asarray(n_repeats)
    if n_rep.ndim != 1 or n_rep.size == 0 or n_rep.dtype.kind not in "iuf":
        raise ValueError(
            "n_repeats must be None, a positive integer, or a 1-D array with "
            f"the number of repeats averaged for each evaluated image; got {n_repeats!r}."
        )
    if not np.all(np.isfinite(n_rep)) or np.any(n_rep < 1) or np.any(n_rep % 1):
        raise ValueError("n_repeats must contain positive integers only.")
    return float(np.mean(1.0 / n_rep))


def noise_ceiling(repeats, n_repeats=None):
    """Noise ceiling of each voxel, in percent of variance (NSD's definition).

    The ceiling is the share of the variance of the trial-averaged responses
    that is stimulus-driven, i.e. the most variance any model can explain
    (Allen et al., 2022, *Nature Neuroscience*, the NSD data manual)::

        noise_var  = pooled variance across repeats of the same image (ddof=1)
        signal_var = max(total_var - noise_var, 0)
        ncsnr      = sqrt(signal_var) / sqrt(noise_var)
        NC         = 100 * ncsnr**2 / (ncsnr**2 + mean_i(1 / n_i))

    where ``total_var`` is the variance of all single-trial responses (pooled
    over images and repeats, ddof=1) and ``n_i`` is the number of repeats
    averaged into the response of evaluated image ``i``. When every image has
    ``n`` repeats, ``mean_i(1 / n_i) = 1 / n`` and the pooled noise variance
    is NSD's mean over images of the across-repeat variance. With ``A``
    images of 3 repeats, ``B`` of 2 and ``C`` of 1 it is NSD's
    ``(A/3 + B/2 + C/1) / (A + B + C)``.

    Parameters
    ----------
    repeats : array-like of shape (n_images, n_repeats, n_voxels) or \
(n_images, n_repeats)
        Single-trial responses, e.g. betas z-scored within session. Images
        with fewer repeats are padded with NaN; images with a single repeat
        count towards the total variance but not the noise variance. A 2-D
        array is a single voxel.
    n_repeats : None, int, or array-like of shape (n_eval_images,), default=None
        Number of repeats averaged into the responses the model will be
        scored on. ``None`` takes the non-NaN repeats of each image in
        ``repeats`` (the usual case: the evaluated responses are the average
        of these repeats). An int is the same count for every evaluated
        image; an array gives one count per evaluated image (it may describe
        another set of images than ``repeats``, e.g. a test set).

    Returns
    -------
    nc : ndarray of shape (n_voxels,), or float for 2-D ``repeats``
        Noise ceiling in percent (0 to 100). A voxel without noise
        (identical repeats) and with signal gets 100; a constant voxel
        gets 0.

    Raises
    ------
    ValueError
        If ``repeats`` is not 2-D/3-D, holds infinite values, has fewer than
        2 images, or if a voxel has no image with at least 2 non-NaN repeats.

    See Also
    --------
    algonauts_score : Squared correlation as a percentage of this ceiling.

    Examples
    --------
    >>> import numpy as np
    >>> from skvem.metrics import noise_ceiling
    >>> rng = np.random.default_rng(0)
    >>> signal = rng.standard_normal((2000, 1, 1))       # signal variance 1
    >>> trials = signal + rng.standard_normal((2000, 3, 1))  # noise variance 1
    >>> # expected: 100 * 1 / (1 + 1/3) = 75
    >>> bool(abs(noise_ceiling(trials)[0] - 75) < 2)
    True
    """
    if repeats is None:
        raise ValueError("repeats is None; an array (n_images, n_repeats, n_voxels) is required.")
    arr = np.asarray(repeats)
    if arr.ndim not in (2, 3):
        raise ValueError(
            "repeats must have shape (n_images, n_repeats, n_voxels) (or "
            f"(n_images, n_repeats) for one voxel); got shape {arr.shape}."
        )
    single_voxel = arr.ndim == 2
    if single_voxel:
        arr = arr[:, :, None]
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"repeats must hold numbers; got dtype {arr.dtype}.")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    n_images, max_repeats, n_voxels = arr.shape
    if n_voxels == 0:
        raise ValueError(f"repeats has 0 voxels (shape {arr.shape}).")
    if n_images < 2:
        raise ValueError(
            f"repeats needs at least 2 images to separate signal from noise; got {n_images}."
        )
    if max_repeats < 2:
        raise ValueError(
            "repeats needs at least 2 repeats of some images to estimate the "
            f"noise; got shape {arr.shape}."
        )
    check_finite(arr, name="repeats", allow_nan=True)

    nc = np.empty(n_voxels, dtype=np.float64)
    for sl in _voxel_blocks(n_images * max_repeats, n_voxels):
        x = arr[:, :, sl].astype(np.float64)
        finite = ~np.isnan(x)
        counts = finite.sum(axis=1)  # (n_images, n_block)
        x[~finite] = 0.0
        with np.errstate(invalid="ignore", divide="ignore"):
            image_mean = x.sum(axis=1) / counts
            dev = np.where(finite, x - image_mean[:, None, :], 0.0)
        ss_within = np.einsum("irv,irv->v", dev, dev)
        df_within = np.clip(counts - 1, 0, None).sum(axis=0)
        n_trials = counts.sum(axis=0)
        if np.any(df_within == 0):
            bad = sl.start + int(np.argmax(df_within == 0))
            raise ValueError(
                f"Voxel {bad} has no image with at least 2 non-NaN repeats; "
                "its noise variance cannot be estimated."
            )
        grand_mean = x.sum(axis=(0, 1)) / n_trials
        dev = np.where(finite, x - grand_mean, 0.0)
        ss_total = np.einsum("irv,irv->v", dev, dev)
        noise_var = ss_within / df_within
        total_var = ss_total / (n_trials - 1)
        signal_var = np.clip(total_var - noise_var, 0.0, None)
        inv_n = _inverse_repeats(n_repeats, counts)
        # ncsnr**2 = signal_var / noise_var, but written so that a voxel
        # without noise gets 100 and a constant voxel 0, without warnings.
        nc[sl] = 100.0 * np.divide(
            signal_var,
            signal_var + noise_var * inv_n,
            out=np.zeros_like(signal_var),
            where=signal_var > 0,
        )
    return float(nc[0]) if single_voxel else nc


_ZERO_CEILING = ("exclude", "devkit")


def algonauts_score_voxels(y_true, y_pred, noise_ceiling, *, zero_ceiling="exclude"):
    """Algonauts 2023 score of each voxel: r squared as a percentage of the ceiling.

    Each voxel scores ``min(100, 100 * max(r, 0)**2 / (noise_ceiling / 100))``
    where ``r`` is the Pearson correlation between measured and predicted
    responses (Gifford et al., 2023, the Algonauts 2023 challenge rule).

    Parameters
    ----------
    y_true : array-like of shape (n_samples, n_voxels) or (n_samples,)
        Measured responses (averaged over repeats).
    y_pred : array-like of the same shape as ``y_true``
        Predicted responses.
    noise_ceiling : array-like of shape (n_voxels,) or float
        Noise ceiling of each voxel **in percent** (0 to 100), as returned by
        :func:`noise_ceiling`. The challenge's own ceiling files are
        fractions (0 to 1): multiply them by 100.
    zero_ceiling : {"exclude", "devkit"}, default="exclude"
        What to do with voxels whose ceiling is 0 (no measurable signal,
        where the score is undefined). ``"exclude"`` gives them NaN, so that
        :func:`algonauts_score` leaves them out of the mean. ``"devkit"``
        follows the challenge's development kit, which replaces a zero
        ceiling by 1e-14: such a voxel scores 100 if ``r > 0``, else 0.

    Returns
    -------
    scores : ndarray of shape (n_voxels,)
        Scores in percent (0 to 100; NaN for excluded voxels).

    Raises
    ------
    ValueError
        If ``noise_ceiling`` is outside [0, 100], not finite, or does not
        have one value per voxel; or on the errors of :func:`pearson_r`.

    Warns
    -----
    UserWarning
        If every ceiling is at most 1, which suggests fractions were given
        instead of percent.

    Examples
    --------
    >>> import numpy as np
    >>> from skvem.metrics import algonauts_score_voxels
    >>> y = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]])
    >>> pred = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]])
    >>> algonauts_score_voxels(y, pred, noise_ceiling=[50.0, 0.0])
    array([100.,  nan])
    """
    y_true2, y_pred2, _ = _check_pair(y_true, y_pred)
    nc = check_noise_ceiling(noise_ceiling, y_true2.shape[1], ref_name="y_true (voxels)")
    if zero_ceiling not in _ZERO_CEILING:
        raise ValueError(f"zero_ceiling must be one of {_ZERO_CEILING}; got {zero_ceiling!r}.")
    return noise_normalised_r2(_pearson_r_2d(y_true2, y_pred2), nc, zero_ceiling=zero_ceiling)


def check_noise_ceiling(noise_ceiling, n_voxels, *, name="noise_ceiling", ref_name="y (voxels)"):
    """Validate a per-voxel noise ceiling in percent; return it as float64 ``(n_voxels,)``.

    Raises a ``ValueError`` naming ``name`` for a wrong length, non-finite
    values or values outside [0, 100]; warns when every value is at most 1
    (fractions given instead of percent). Shared by the scores here and
    :mod:`skvem.analysis`.
    """
    nc = np.asarray(noise_ceiling, dtype=np.float64).reshape(-1)
    check_n_samples(n_voxels, nc.shape[0], name=name, ref_name=ref_name)
    check_finite(nc, name=name)
    if np.any(nc < 0) or np.any(nc > 100):
        raise ValueError(
            f"{name} must be in percent, between 0 and 100; got values in "
            f"[{nc.min():.3g}, {nc.max():.3g}]."
        )
    if nc.max() <= 1.0 and np.count_nonzero(nc) > 1:
        warnings.warn(
            f"Every {name} value is at most 1: skvem expects percent "
            "(0-100). If these are fractions (as in the Algonauts 2023 files), "
            "multiply them by 100.",
            UserWarning,
            stacklevel=3,
        )
    return nc


def noise_normalised_r2(r, noise_ceiling, *, zero_ceiling="exclude"):
    """The Algonauts rule applied to correlations ``r`` (any shape ending in voxels).

    ``min(100, 100 * max(r, 0)**2 / (noise_ceiling / 100))``; a zero ceiling
    gives NaN (``"exclude"``) or the devkit's 1e-14 (``"devkit"``). The
    ceiling must be validated (:func:`check_noise_ceiling`).
    """
    r2 = np.square(np.clip(r, 0.0, None))
    fraction = np.asarray(noise_ceiling, dtype=np.float64) / 100.0
    if zero_ceiling == "devkit":
        fraction = np.where(fraction == 0, 1e-14, fraction)
        return np.minimum(100.0, 100.0 * r2 / fraction)
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = np.minimum(100.0, 100.0 * r2 / fraction)
    return np.where(fraction > 0, scores, np.nan)


def algonauts_score(y_true, y_pred, noise_ceiling, *, zero_ceiling="exclude"):
    """Algonauts 2023 challenge score: mean noise-normalised squared correlation.

    The mean over voxels of :func:`algonauts_score_voxels`, in percent.

    Parameters
    ----------
    y_true : array-like of shape (n_samples, n_voxels) or (n_samples,)
        Measured responses (averaged over repeats).
    y_pred : array-like of the same shape as ``y_true``
        Predicted responses.
    noise_ceiling : array-like of shape (n_voxels,) or float
        Noise ceiling of each voxel in percent (0 to 100).
    zero_ceiling : {"exclude", "devkit"}, default="exclude"
        Voxels with a zero ceiling are left out of the mean (``"exclude"``)
        or scored as the challenge's development kit does (``"devkit"``,
        100 if ``r > 0`` else 0); see :func:`algonauts_score_voxels`.

    Returns
    -------
    score : float
        Mean score over voxels, in percent (0 to 100).

    Raises
    ------
    ValueError
        If every voxel is excluded (all ceilings are 0), or on the errors of
        :func:`algonauts_score_voxels`.

    Examples
    --------
    >>> import numpy as np
    >>> from skvem.metrics import algonauts_score
    >>> rng = np.random.default_rng(0)
    >>> y = rng.standard_normal((100, 3))
    >>> algonauts_score(y, y, noise_ceiling=[80.0, 50.0, 20.0])
    100.0
    """
    scores = algonauts_score_voxels(y_true, y_pred, noise_ceiling, zero_ceiling=zero_ceiling)
    if np.all(np.isnan(scores)):
        raise ValueError(
            "Every voxel has a noise ceiling of 0, so no voxel can be scored; "
            "use zero_ceiling='devkit' to score them as the challenge did."
        )
    return float(np.nanmean(scores))


def _mean_pearson_r(y_true, y_pred):
    """Mean over voxels of :func:`pearson_r` (the score of ``correlation_scorer``)."""
    return float(np.mean(pearson_r(y_true, y_pred)))


#: scikit-learn scorer giving the mean Pearson r over voxels, for
#: ``cross_val_score(..., scoring=correlation_scorer)`` and ``GridSearchCV``.
#: Greater is better. :class:`skvem.encoding.ridge.VoxelRidgeCV` already scores this way,
#: so it needs no ``scoring=``; this scorer brings the same score to any other
#: multi-output regressor (e.g. :class:`sklearn.linear_model.RidgeCV`).
correlation_scorer = make_scorer(_mean_pearson_r, greater_is_better=True)
