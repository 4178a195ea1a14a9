"""Validation of regions of interest: name -> voxel indices."""

from collections.abc import Mapping

import numpy as np

__all__ = ["check_rois"]


def check_rois(rois, n_voxels, *, roi_names=None, name="rois"):
    """Return ``{roi: int index array}`` for ``rois``, validated against ``n_voxels``.

    Parameters
    ----------
    rois : mapping of str to array-like
        Voxel indices (ints) or boolean masks of length ``n_voxels`` per ROI,
        e.g. ``make_scenes(...).rois``. ROIs may overlap.
    n_voxels : int
        Number of voxels the indices refer to.
    roi_names : sequence of str or None, default=None
        ROIs to keep, in this order; None keeps all, in the order of ``rois``.
    name : str, default="rois"
        Name of the argument, used in error messages.

    Returns
    -------
    rois : dict of str to ndarray of int

    Raises
    ------
    ValueError
        If ``rois`` is not a non-empty mapping, an ROI is empty, out of range
        or a mask of the wrong length, or ``roi_names`` names an unknown ROI.
    """
    if not isinstance(rois, Mapping) or len(rois) == 0:
        raise ValueError(
            f"{name} must be a non-empty mapping of ROI name -> voxel indices; got {rois!r:.80}."
        )
    if roi_names is None:
        roi_names = list(rois)
    elif isinstance(roi_names, str):
        roi_names = [roi_names]
    unknown = [r for r in roi_names if r not in rois]
    if unknown:
        raise ValueError(
            f"roi_names has unknown ROI(s) {unknown}; {name} has {sorted(map(str, rois))}."
        )
    out = {}
    for roi in roi_names:
        idx = np.asarray(rois[roi])
        if idx.dtype == bool:
            if idx.shape != (n_voxels,):
                raise ValueError(
                    f"{name}[{roi!r}] is a boolean mask of shape {idx.shape}; "
                    f"it needs one value per voxel ({n_voxels},)."
                )
            idx = np.flatnonzero(idx)
        elif idx.dtype.kind not in "iu" or idx.ndim != 1:
            raise ValueError(
                f"{name}[{roi!r}] must be a 1-D array of voxel indices or a boolean mask; "
                f"got dtype {idx.dtype}, shape {idx.shape}."
            )
        if idx.size == 0:
            raise ValueError(f"{name}[{roi!r}] is empty: it selects no voxel.")
        if idx.min() < 0 or idx.max() >= n_voxels:
            raise ValueError(
                f"{name}[{roi!r}] has voxel indices outside [0, {n_voxels}) "
                f"(min {idx.min()}, max {idx.max()}); the data have {n_voxels} voxels."
            )
        out[roi] = idx.astype(np.intp)
    return out
