"""The confidence interval every skvem figure draws, and the input checks it needs."""

from __future__ import annotations

import importlib
from numbers import Real

import numpy as np

__all__ = ["mean_confidence_interval", "check_confidence", "check_nested_scores", "require"]


def require(module: str):
    """Import ``module`` or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        raise ImportError(
            f"skvem.plotting needs {package}, which is not installed; install the plotting "
            f"extra: pip install 'skvem[plotting]'"
        ) from exc


def check_confidence(confidence):
    if not isinstance(confidence, Real) or isinstance(confidence, bool) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a number in (0, 1), e.g. 0.95; got {confidence!r}")
    return float(confidence)


def mean_confidence_interval(values, confidence=0.95):
    """Mean of ``values`` and the half-width of its Student-t confidence interval.

    The interval is ``mean ± t[(1 + confidence) / 2, n - 1] * s / sqrt(n)``
    with ``s`` the sample standard deviation (``ddof=1``): the usual interval
    for the mean of ``n`` independent values (folds, seeds, subjects).
    Cross-validation folds share training images, so their interval is
    somewhat too narrow; treat it as descriptive.

    Parameters
    ----------
    values : array-like of shape (n,)
        Finite numbers, e.g. one score per fold or seed.
    confidence : float, default=0.95
        Coverage of the interval, in (0, 1).

    Returns
    -------
    mean : float
    half_width : float
        ``NaN`` when ``n < 2`` (no spread can be estimated from one value).

    Examples
    --------
    >>> from skvem.plotting import mean_confidence_interval
    >>> mean, half = mean_confidence_interval([1.0, 2.0, 3.0])
    >>> round(mean, 3), round(half, 3)
    (2.0, 2.484)
    """
    from scipy import stats

    confidence = check_confidence(confidence)
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    if a.size == 0:
        raise ValueError("values must hold at least one number; got none")
    if not np.all(np.isfinite(a)):
        raise ValueError("values contain NaN or infinite numbers")
    mean = float(a.mean())
    if a.size < 2:
        return mean, float("nan")
    t = stats.t.ppf((1 + confidence) / 2, df=a.size - 1)
    return mean, float(t * a.std(ddof=1) / np.sqrt(a.size))


def check_nested_scores(scores, *, name, inner):
    """Check ``{model: {key: values}}`` and return it as ``{str: {key: 1-D float array}}``.

    ``inner`` names what the inner keys are (``"ROI"``, ``"training size"``)
    for the error messages.
    """
    if not isinstance(scores, dict) or not scores:
        raise ValueError(
            f"{name} must be a non-empty dict {{model: {{{inner}: values}}}}; got "
            f"{type(scores).__name__}"
        )
    out = {}
    for model, per_key in scores.items():
        if not isinstance(per_key, dict) or not per_key:
            raise ValueError(
                f"{name}[{model!r}] must be a non-empty dict {{{inner}: values}}; got "
                f"{type(per_key).__name__}"
            )
        checked = {}
        for key, values in per_key.items():
            try:
                a = np.asarray(values, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"{name}[{model!r}][{key!r}] must be numbers (one per fold or seed)"
                ) from exc
            if np.isinf(a).any():
                raise ValueError(f"{name}[{model!r}][{key!r}] holds infinite values")
            # NaN marks a value left out (e.g. a voxel with a zero noise ceiling).
            a = a[~np.isnan(a)]
            if a.size == 0:
                raise ValueError(
                    f"{name}[{model!r}][{key!r}] must hold at least one value that is not NaN"
                )
            checked[key] = a
        out[str(model)] = checked
    return out


def summarise(scores, keys, confidence):
    """Means and CI half-widths, ``(n_models, n_keys)`` each; NaN where a model lacks a key."""
    means = np.full((len(scores), len(keys)), np.nan)
    halves = np.full_like(means, np.nan)
    for i, per_key in enumerate(scores.values()):
        for j, key in enumerate(keys):
            if key in per_key:
                means[i, j], halves[i, j] = mean_confidence_interval(per_key[key], confidence)
    return means, halves


def ordered_keys(scores):
    """Every inner key, in order of first appearance."""
    keys = []
    for per_key in scores.values():
        keys.extend(k for k in per_key if k not in keys)
    return keys
