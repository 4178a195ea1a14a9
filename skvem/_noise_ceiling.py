"""The NSD noise ceiling, in percent of variance (public as :func:`skvem.metrics.noise_ceiling`)."""

import numbers

import numpy as np

from skvem._utils.blocks import voxel_blocks
from skvem._utils.validation import check_finite, check_unmasked

__all__ = ["noise_ceiling"]

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


def _noise_and_total_var(x, finite, *, first_voxel=0):
    """Noise variance (mean within-image variance, pooled over degrees of
    freedom) and total variance of the trials marked ``finite`` of ``x``
    (n_images, n_repeats, n_voxels), which is overwritten."""
    counts = finite.sum(axis=1)
    x[~finite] = 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        image_mean = x.sum(axis=1) / counts
        dev = np.where(finite, x - image_mean[:, None, :], 0.0)
    ss_within = np.einsum("irv,irv->v", dev, dev)
    df_within = np.clip(counts - 1, 0, None).sum(axis=0)
    if np.any(df_within == 0):
        bad = first_voxel + int(np.argmax(df_within == 0))
        raise ValueError(
            f"Voxel {bad} has no image with at least 2 non-NaN repeats; "
            "its noise variance cannot be estimated."
        )
    n_trials = counts.sum(axis=0)
    grand_mean = x.sum(axis=(0, 1)) / n_trials
    dev = np.where(finite, x - grand_mean, 0.0)
    ss_total = np.einsum("irv,irv->v", dev, dev)
    return ss_within / df_within, ss_total / (n_trials - 1)


_NC_METHODS = ("pooled", "nsd")


def noise_ceiling(repeats, n_repeats=None, *, method="pooled"):
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
    method : {"pooled", "nsd"}, default="pooled"
        Which trials estimate ``noise_var`` and ``total_var``. ``"pooled"``
        uses every image: the noise variance pools the across-repeat
        variance of every image with at least 2 repeats (weighted by its
        degrees of freedom), and the total variance all trials. ``"nsd"``
        reproduces the published recipe (Allen et al., 2022; GLMsingle's
        example 9): only the images that have *all* ``n_repeats`` repeats
        (no NaN) enter, the noise variance is the plain mean over them of
        the across-repeat variance, the total variance that of their
        trials. Both agree when every image has every repeat, and in
        expectation otherwise. Use ``"nsd"`` to compare with ceilings
        published for NSD (or computed with GLMsingle's recipe); use
        ``"pooled"`` when many images have fewer repeats (e.g. subjects who
        did not complete every session), where it uses more data and so
        has less variance.

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
        2 images, or if a voxel has no image with at least 2 non-NaN repeats
        (``"pooled"``) or no image with all repeats (``"nsd"``); if
        ``method`` is unknown.

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
    # Masked repeats are missing repeats, which NaN already means here.
    arr = np.asarray(check_unmasked(repeats, name="repeats", masked_as_nan=True))
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

    if method not in _NC_METHODS:
        raise ValueError(f"method must be one of {_NC_METHODS}; got {method!r}.")

    nc = np.empty(n_voxels, dtype=np.float64)
    for sl in voxel_blocks(n_images * max_repeats, n_voxels):
        x = arr[:, :, sl].astype(np.float64)
        finite = ~np.isnan(x)
        counts = finite.sum(axis=1)  # (n_images, n_block)
        if method == "nsd":
            # Only the images with every repeat enter, as in the published recipe.
            complete = counts == max_repeats
            finite &= complete[:, None, :]
            if not np.all(complete.any(axis=0)):
                bad = sl.start + int(np.argmin(complete.any(axis=0)))
                raise ValueError(
                    f"Voxel {bad} has no image with all {max_repeats} repeats (method='nsd' "
                    "uses those only); use method='pooled'."
                )
        noise_var, total_var = _noise_and_total_var(x, finite, first_voxel=sl.start)
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
