"""Checks of the ridge solvers' ``alphas`` and ``cv``, with messages naming them."""

import numpy as np
from sklearn.model_selection import check_cv

__all__ = ["check_alphas", "check_splits"]

_F32 = np.finfo(np.float32)


def check_alphas(alphas):
    """``alphas`` as a 1-D float64 array of positive values float32 can hold.

    The sweep and the alpha selection run in float32: an alpha beyond
    float32's range would become inf (or 0) there and win (or lose) every
    tie-break.
    """
    if np.iscomplexobj(alphas):  # casting would drop the imaginary part silently
        raise ValueError(f"alphas must be real, positive floats; got {alphas!r}.")
    try:
        arr = np.asarray(alphas, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"alphas must be an array of positive floats; got {alphas!r}.") from exc
    if arr.ndim > 1:
        raise ValueError(f"alphas must be a 1-D array of positive floats; got shape {arr.shape}.")
    arr = arr.reshape(-1)
    if arr.size == 0:
        raise ValueError("alphas is empty; give at least one positive value.")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"alphas must all be finite and > 0; got {alphas!r}.")
    if arr.max() > _F32.max or arr.min() < _F32.tiny:
        raise ValueError(
            f"alphas must lie within float32's range [{_F32.tiny:.3g}, {_F32.max:.3g}] "
            f"(the model computes in float32); got values in [{arr.min():.3g}, {arr.max():.3g}]."
        )
    return arr


def check_splits(cv, X):
    """The ``(train, test)`` index arrays of ``cv``, with messages about ``cv``.

    Boolean masks of length n_samples are turned into indices.
    """
    n_samples = X.shape[0]
    one_shot = iter(cv) is cv if hasattr(cv, "__iter__") and not hasattr(cv, "split") else False
    try:
        raw = list(check_cv(cv).split(X))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cv could not split {n_samples} samples: {exc}") from exc
    if not raw:
        hint = (" It is a one-shot iterator (e.g. KFold(3).split(X)) that an earlier fit "
                "consumed: pass the splitter itself (cv=KFold(3)) or a list of its splits."
                if one_shot else "")
        raise ValueError(f"cv produced no (train, test) splits.{hint}")
    splits = []
    for k, split in enumerate(raw):
        if len(split) != 2:
            raise ValueError(f"cv split {k} is not a (train, test) pair.")
        pair = []
        for part, idx in zip(("train", "test"), split):
            idx = np.asarray(idx)
            if idx.dtype == bool and idx.shape == (n_samples,):
                idx = np.flatnonzero(idx)
            if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
                raise ValueError(
                    f"cv split {k}: the {part} set must be a 1-D array of sample indices "
                    f"(or a boolean mask of length {n_samples}); got dtype {idx.dtype}, "
                    f"shape {idx.shape}."
                )
            if idx.size == 0:
                raise ValueError(
                    f"cv split {k} has an empty {part} set (n_samples={n_samples})."
                )
            if idx.min() < -n_samples or idx.max() >= n_samples:
                raise ValueError(
                    f"cv split {k}: {part} indices must be in [0, {n_samples}); got values "
                    f"in [{idx.min()}, {idx.max()}]."
                )
            pair.append(idx % n_samples)
        splits.append(tuple(pair))
    return splits
