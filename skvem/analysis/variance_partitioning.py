"""Variance partitioning: unique and shared explained variance of feature spaces.

For two feature spaces A and B (e.g. frozen and language-aligned image
features), the cross-validated explained variance of A, of B and of their
union A+B give, per voxel, the variance that only A explains, that only B
explains, and that both explain (a Venn diagram; Lescroart et al., 2015;
de Heer et al., 2017)::

    unique_A = R2(A+B) - R2(B)
    unique_B = R2(A+B) - R2(A)
    shared   = R2(A) + R2(B) - R2(A+B)

and for three spaces the seven regions of the three-set diagram, from the
seven unions. Every R2 is measured on held-out samples.
"""

from collections.abc import Mapping
from itertools import combinations

import numpy as np
from sklearn.metrics import r2_score
from sklearn.model_selection import check_cv
from sklearn.utils import Bunch

from skvem._utils.progress import progress
from skvem._utils.validation import check_features, check_fmri, check_n_samples
from skvem.analysis._rois import check_rois
from skvem.encoding.banded import BandedVoxelRidgeCV
from skvem.encoding.ridge import DEFAULT_ALPHAS, VoxelRidgeCV
from skvem.metrics import check_noise_ceiling

__all__ = ["variance_partitioning", "roi_summary"]

_MODELS = ("banded", "ridge")


def _check_spaces(spaces, n_samples):
    if not isinstance(spaces, Mapping):
        raise ValueError(
            f"spaces must be a dict mapping names to (n_samples, n_features) arrays; "
            f"got {type(spaces).__name__}."
        )
    if len(spaces) not in (2, 3):
        raise ValueError(
            f"spaces has {len(spaces)} feature space(s); variance partitioning needs 2 or 3 "
            "(one space has nothing to partition; more than 3 give too many regions to read)."
        )
    out = {}
    for name, X in spaces.items():
        if not isinstance(name, str):
            raise ValueError(f"spaces must be keyed by str names; got the key {name!r}.")
        X = check_features(X, name=f"spaces[{name!r}]", dtype=np.float32)
        check_n_samples(n_samples, X.shape[0], name=f"spaces[{name!r}]", ref_name="y")
        out[name] = X
    return out


def _union_estimator(n_spaces, model, alphas, n_iter, inner_cv, backend, random_state):
    if n_spaces == 1 or model == "ridge":
        return VoxelRidgeCV(alphas=alphas, cv=inner_cv, backend=backend)
    return BandedVoxelRidgeCV(alphas=alphas, n_iter=n_iter, cv=inner_cv, backend=backend,
                              random_state=random_state)


def _heldout_r2(blocks, Y, splits, estimator):
    """Mean over outer folds of the per-voxel held-out R^2 (fraction)."""
    total = np.zeros(Y.shape[1])
    for train, test in splits:
        if isinstance(estimator, BandedVoxelRidgeCV):
            est = estimator.fit([b[train] for b in blocks], Y[train])
            pred = est.predict([b[test] for b in blocks])
        else:
            X = np.concatenate(blocks, 1) if len(blocks) > 1 else blocks[0]
            pred = estimator.fit(X[train], Y[train]).predict(X[test])
        total += r2_score(Y[test], pred, multioutput="raw_values")
    return total / len(splits)


def _venn(unions, names):
    """Unique and shared parts from the explained variance of every union."""
    full = tuple(names)
    total = unions[full]
    unique = {n: total - unions[tuple(m for m in names if m != n)] for n in names}
    if len(names) == 2:
        a, b = names
        return unique, unions[(a,)] + unions[(b,)] - total
    a, b, c = names
    r = lambda *keys: unions[tuple(k for k in names if k in keys)]  # noqa: E731
    shared = {
        (a, b): r(a, c) + r(b, c) - r(c) - total,
        (a, c): r(a, b) + r(b, c) - r(b) - total,
        (b, c): r(a, b) + r(a, c) - r(a) - total,
        (a, b, c): r(a) + r(b) + r(c) - r(a, b) - r(a, c) - r(b, c) + total,
    }
    return unique, shared


def variance_partitioning(spaces, y, *, cv=5, noise_ceiling=None, model="banded",
                          alphas=DEFAULT_ALPHAS, n_iter=20, inner_cv=5, clip=False,
                          backend="auto", random_state=None, verbose=False):
    """Per-voxel unique and shared explained variance of 2 or 3 feature spaces.

    Every union of the spaces (3 for two spaces, 7 for three) is fitted and
    scored on held-out samples with the same outer folds; the Venn regions
    follow by inclusion-exclusion (see the module docstring).

    Parameters
    ----------
    spaces : dict of str to array-like of shape (n_samples, n_features_k)
        The feature spaces, e.g. ``{"frozen": F, "aligned": A}`` (2 or 3).
    y : array-like of shape (n_samples, n_voxels)
        Responses.
    cv : int, cross-validation generator or iterable, default=5
        Outer folds on which every union is scored (an int is ``KFold(cv)``
        without shuffling: neighbouring fMRI trials stay together).
    noise_ceiling : array-like of shape (n_voxels,) or None, default=None
        Noise ceiling in percent (0-100, as :func:`skvem.metrics.noise_ceiling`
        returns). Given, every value is in % of the explainable variance
        (``100 * R2 / (noise_ceiling / 100)``; NaN where the ceiling is 0);
        else in % of the variance.
    model : {"banded", "ridge"}, default="banded"
        How a union of spaces is fitted: banded ridge
        (:class:`~skvem.BandedVoxelRidgeCV`, one penalty per space and voxel,
        the recommended choice) or one ridge on the concatenated features
        (:class:`~skvem.VoxelRidgeCV`, the older practice). Single spaces
        always use :class:`~skvem.VoxelRidgeCV`.
    alphas : array-like, default=np.logspace(-2, 6, 9)
        Regularisation grid of every model.
    n_iter : int, default=20
        Feature-space weights tried by the banded models.
    inner_cv : int or cross-validation generator, default=5
        Folds, inside each outer training set, that choose the penalties.
    clip : bool, default=False
        Set negative values of every returned quantity to 0 (for display;
        see Notes). The default reports them.
    backend : str, default="auto"
        himalaya backend of the models.
    random_state : int or None, default=None
        Seed of the banded models' search.
    verbose : bool, default=False
        Progress bar over the (union, fold) fits.

    Returns
    -------
    result : Bunch
        ``names`` (tuple of the space names); ``unions``: dict mapping each
        union (a tuple of names, in the order of ``spaces``) to its held-out
        explained variance ``(n_voxels,)``; ``total`` (the union of all
        spaces), ``per_space`` (name -> ``(n_voxels,)``), ``unique`` (name ->
        ``(n_voxels,)``), ``shared`` (``(n_voxels,)`` for two spaces; for
        three, a dict keyed by ``(a, b)``, ``(a, c)``, ``(b, c)`` for the
        regions shared by exactly those two spaces and ``(a, b, c)`` for the
        region shared by all three); ``units`` (``"% of variance"`` or ``"%
        of explainable variance"``); ``model``; ``clipped``.

    Raises
    ------
    ValueError
        If ``spaces`` does not hold 2 or 3 arrays with the rows of ``y``,
        ``noise_ceiling`` has the wrong length or is not in percent, or
        ``model`` is unknown.

    Notes
    -----
    **Negative estimates.** With finite data the held-out R2 of a union can
    fall below that of one of its parts (the larger model overfits, or a
    concatenated ridge with one penalty serves both spaces badly), so some
    unique or shared estimates are negative. They are estimation noise
    around values that cannot be negative, and are returned as estimated:
    the ROI means then stay unbiased. Published analyses mostly report the
    raw estimates and set negative values to 0 only for display, or
    threshold voxels by the significance of the union model first
    (Lescroart et al., 2015; de Heer et al., 2017, who also discuss the
    problem of negative partitions). ``clip=True`` sets them to 0 *after*
    the partition; ROI means of clipped values are biased upwards, so clip
    for maps, not for statistics. Banded ridge for the unions (the default)
    makes negative unique variance rarer, because a useless space is
    penalised away rather than sharing one penalty (Nunez-Elizalde, Huth &
    Gallant, 2019; Dupre la Tour et al., 2022).

    **Cost.** ``2**m - 1`` models times the outer folds; each banded model
    costs about ``n_iter`` ridge fits.

    Examples
    --------
    >>> import numpy as np
    >>> from skvem.analysis import variance_partitioning
    >>> rng = np.random.default_rng(0)
    >>> A, B = rng.standard_normal((200, 5)), rng.standard_normal((200, 5))
    >>> y = A @ rng.standard_normal((5, 4)) + rng.standard_normal((200, 4))
    >>> vp = variance_partitioning({"A": A, "B": B}, y, n_iter=5, random_state=0,
    ...                            backend="numpy")
    >>> bool(np.all(vp.unique["A"] > 30)), bool(np.all(np.abs(vp.unique["B"]) < 5))
    (True, True)
    >>> vp.units
    '% of variance'
    """
    Y, _ = check_fmri(y, name="y", dtype=np.float32)
    blocks = _check_spaces(spaces, Y.shape[0])
    if model not in _MODELS:
        raise ValueError(f"model must be one of {_MODELS}; got {model!r}.")
    if noise_ceiling is not None:
        noise_ceiling = check_noise_ceiling(noise_ceiling, Y.shape[1])
    names = tuple(blocks)
    splits = list(check_cv(cv).split(Y))
    subsets = [s for k in range(1, len(names) + 1) for s in combinations(names, k)]

    unions = {}
    for subset in progress(subsets, verbose=verbose, desc="variance partitioning unions"):
        est = _union_estimator(len(subset), model, alphas, n_iter, inner_cv, backend,
                               random_state)
        unions[subset] = 100.0 * _heldout_r2([blocks[n] for n in subset], Y, splits, est)
    if noise_ceiling is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(noise_ceiling > 0, 100.0 / noise_ceiling, np.nan)
        unions = {k: v * scale for k, v in unions.items()}
    unique, shared = _venn(unions, names)
    if clip:
        pos = lambda a: np.clip(a, 0.0, None)  # noqa: E731 (NaN stays NaN)
        unions = {k: pos(v) for k, v in unions.items()}
        unique = {k: pos(v) for k, v in unique.items()}
        shared = pos(shared) if len(names) == 2 else {k: pos(v) for k, v in shared.items()}
    return Bunch(
        names=names,
        unions=unions,
        total=unions[names],
        per_space={n: unions[(n,)] for n in names},
        unique=unique,
        shared=shared,
        units="% of variance" if noise_ceiling is None else "% of explainable variance",
        model=model,
        clipped=bool(clip),
    )


def roi_summary(result, rois, *, roi_names=None):
    """Mean over the voxels of each ROI of every quantity of a partition.

    Parameters
    ----------
    result : Bunch
        What :func:`variance_partitioning` returns.
    rois : dict of str to array-like
        Voxel indices (or boolean masks) per ROI, e.g. ``make_scenes().rois``.
    roi_names : sequence of str or None, default=None
        ROIs to summarise, in this order; None: all of ``rois``.

    Returns
    -------
    summary : dict of str to Bunch
        For each ROI, a Bunch with ``total``, ``per_space``, ``unique`` and
        ``shared`` shaped like ``result``'s but holding floats: the mean over
        the ROI's voxels (NaN voxels, with a zero noise ceiling, left out),
        in ``result.units``.

    Raises
    ------
    ValueError
        On invalid ``rois`` or unknown ``roi_names`` (see
        :func:`skvem.analysis._rois.check_rois`).
    """
    if not isinstance(result, Bunch) or "unions" not in result:
        raise ValueError("result must be the Bunch returned by variance_partitioning.")
    n_voxels = result.total.shape[0]
    rois = check_rois(rois, n_voxels, roi_names=roi_names)

    def mean(a, idx):
        vals = a[idx]
        return float(np.nanmean(vals)) if np.any(~np.isnan(vals)) else float("nan")

    def summarise(value, idx):
        if isinstance(value, dict):
            return {k: mean(v, idx) for k, v in value.items()}
        return mean(value, idx)

    return {
        roi: Bunch(**{key: summarise(result[key], idx)
                      for key in ("total", "per_space", "unique", "shared")})
        for roi, idx in rois.items()
    }
