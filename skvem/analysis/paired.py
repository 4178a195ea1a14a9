"""Model A versus model B on the same test images, per ROI, with bootstrap CIs."""

import numpy as np
from sklearn.utils import check_random_state

from skvem._utils.validation import check_fmri, check_int, check_n_samples
from skvem.analysis._rois import check_rois
from skvem.metrics import check_noise_ceiling, noise_normalised_r2, pearson_r

__all__ = ["paired_difference"]

# Float64 elements of one (bootstrap samples x voxels) work array (~32 MB).
_BLOCK_ELEMENTS = 1 << 22


def _resampled_pearson_r(W, y, pred):
    """Pearson r of every bootstrap sample at once, ``(n_boot, n_voxels)``.

    Resampling rows with replacement is weighting them by their counts ``W``
    (n_boot, n_samples), so the moments of all samples are matrix products
    instead of ``n_boot`` separate correlations. Columns are centred first
    (r does not depend on a shift) to keep the weighted sums accurate.
    """
    n = W.sum(1, keepdims=True)
    y = y - y.mean(0)
    pred = pred - pred.mean(0)
    my, mp = (W @ y) / n, (W @ pred) / n
    cov = (W @ (y * pred)) / n - my * mp
    var_y = (W @ (y * y)) / n - my * my
    var_p = (W @ (pred * pred)) / n - mp * mp
    den = np.sqrt(np.clip(var_y, 0, None) * np.clip(var_p, 0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(den > 0, cov / den, 0.0)
    return np.clip(r, -1.0, 1.0)


def paired_difference(y_true, pred_a, pred_b, *, rois, noise_ceiling=None, n_boot=1000,
                      confidence=0.95, random_state=None):
    """Per-ROI mean difference of per-voxel scores, model A minus B, with a bootstrap CI.

    Each voxel is scored by the Pearson correlation between measured and
    predicted responses (or, with ``noise_ceiling``, by the noise-normalised
    Algonauts score, :func:`skvem.metrics.algonauts_score_voxels`); the
    statistic of an ROI is the mean over its voxels of ``score_a -
    score_b``. The confidence interval resamples the **test images** (rows)
    with replacement, recomputes every voxel's two scores on the resample
    and the ROI mean difference, and takes the percentile interval over
    ``n_boot`` resamples: it reflects the uncertainty due to the particular
    test images, which both models share (a paired comparison).

    Parameters
    ----------
    y_true : array-like of shape (n_samples, n_voxels)
        Measured test responses.
    pred_a, pred_b : array-like of shape (n_samples, n_voxels)
        Predictions of the two models for the same images.
    rois : dict of str to array-like
        Voxel indices (or boolean masks) per ROI, e.g. ``make_scenes().rois``.
    noise_ceiling : array-like of shape (n_voxels,) or None, default=None
        Noise ceiling in percent (0-100). None compares Pearson r; given,
        noise-normalised scores in percent (voxels with a zero ceiling are
        left out of the ROI means).
    n_boot : int, default=1000
        Number of bootstrap resamples.
    confidence : float, default=0.95
        Level of the percentile interval, in (0, 1).
    random_state : int, RandomState instance or None, default=None
        Seed of the resampling.

    Returns
    -------
    differences : dict of str to tuple of float
        ROI -> ``(mean, low, high)``: the mean difference on the original
        test set and the bounds of its bootstrap interval. A positive mean
        means model A scores higher.

    Raises
    ------
    ValueError
        If the arrays differ in shape or hold NaN, ``rois`` is invalid,
        ``noise_ceiling`` has the wrong length or is outside [0, 100], or
        ``n_boot`` / ``confidence`` are out of range.

    Examples
    --------
    >>> import numpy as np
    >>> from skvem.analysis import paired_difference
    >>> rng = np.random.default_rng(0)
    >>> y = rng.standard_normal((200, 6))
    >>> good, bad = y + rng.standard_normal((200, 6)), rng.standard_normal((200, 6))
    >>> diff = paired_difference(y, good, bad, rois={"v1": [0, 1, 2], "v2": [3, 4, 5]},
    ...                          n_boot=200, random_state=0)
    >>> mean, low, high = diff["v1"]
    >>> bool(0 < low < mean < high)
    True
    """
    y, _ = check_fmri(y_true, name="y_true")
    a, _ = check_fmri(pred_a, n_samples=y.shape[0], name="pred_a")
    b, _ = check_fmri(pred_b, n_samples=y.shape[0], name="pred_b")
    n_samples, n_voxels = y.shape
    for name, p in (("pred_a", a), ("pred_b", b)):
        check_n_samples(n_voxels, p.shape[1], name=f"{name} (voxels)", ref_name="y_true")
    n_boot = check_int(n_boot, name="n_boot")
    if not (isinstance(confidence, float) and 0 < confidence < 1):
        raise ValueError(f"confidence must be a float in (0, 1); got {confidence!r}.")
    rois = check_rois(rois, n_voxels)
    if noise_ceiling is not None:
        noise_ceiling = check_noise_ceiling(noise_ceiling, n_voxels, ref_name="y_true (voxels)")

    # Only the voxels of some ROI are resampled.
    used = np.unique(np.concatenate(list(rois.values())))
    position = np.full(n_voxels, -1)
    position[used] = np.arange(used.size)
    member = np.zeros((used.size, len(rois)))
    for j, idx in enumerate(rois.values()):
        member[position[idx], j] = 1.0
    nc = None if noise_ceiling is None else noise_ceiling[used]

    def score(r):
        return r if nc is None else noise_normalised_r2(r, nc)

    def roi_means(diff):  # (k, n_used) -> (k, n_rois), NaN voxels left out
        valid = ~np.isnan(diff)
        with np.errstate(invalid="ignore"):
            return (np.where(valid, diff, 0.0) @ member) / (valid @ member)

    y, a, b = (arr[:, used].astype(np.float64) for arr in (y, a, b))
    point = roi_means((score(pearson_r(y, a)) - score(pearson_r(y, b)))[None])[0]

    rng = check_random_state(random_state)
    W = rng.multinomial(n_samples, np.full(n_samples, 1.0 / n_samples), size=n_boot)
    W = W.astype(np.float64)
    boots = np.empty((n_boot, len(rois)))
    step = max(1, _BLOCK_ELEMENTS // max(used.size, 1))
    for start in range(0, n_boot, step):
        Wb = W[start:start + step]
        diff = score(_resampled_pearson_r(Wb, y, a)) - score(_resampled_pearson_r(Wb, y, b))
        boots[start:start + step] = roi_means(diff)
    tail = 100 * (1 - confidence) / 2
    low, high = np.nanpercentile(boots, [tail, 100 - tail], axis=0)
    return {roi: (float(point[j]), float(low[j]), float(high[j]))
            for j, roi in enumerate(rois)}
