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

import warnings

import numpy as np
from sklearn.metrics import make_scorer

from skvem._noise_ceiling import noise_ceiling
from skvem._utils.blocks import voxel_blocks
from skvem._utils.validation import check_finite, check_fmri, check_n_samples, check_unmasked

__all__ = [
    "pearson_r",
    "noise_ceiling",
    "algonauts_score",
    "algonauts_score_voxels",
    "correlation_scorer",
]

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
    for sl in voxel_blocks(n_samples, n_voxels):
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
        :func:`noise_ceiling`; a float is the ceiling of every voxel. The challenge's own ceiling files are
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
        If every ceiling is at most 1 (and one is above 0), whatever the
        number of voxels: this suggests fractions were given instead of
        percent.

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
    if np.iscomplexobj(noise_ceiling):  # casting would drop the imaginary part silently
        raise ValueError(f"{name} must be real numbers (percent); got complex values.")
    try:
        nc = np.asarray(check_unmasked(noise_ceiling, name=name), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number or an array of numbers (percent): {exc}") from None
    if nc.ndim == 0:  # one ceiling for every voxel
        nc = np.full(n_voxels, float(nc))
    nc = nc.reshape(-1)
    check_n_samples(n_voxels, nc.shape[0], name=name, ref_name=ref_name)
    check_finite(nc, name=name)
    if np.any(nc < 0) or np.any(nc > 100):
        raise ValueError(
            f"{name} must be in percent, between 0 and 100; got values in "
            f"[{nc.min():.3g}, {nc.max():.3g}]."
        )
    # Whatever the number of voxels: one voxel with a fraction scores 100 too.
    if 0.0 < nc.max() <= 1.0:
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
        Noise ceiling of each voxel in percent (0 to 100); a float is the
        ceiling of every voxel.
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
