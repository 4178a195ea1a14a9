"""Reading NSD's own files: the design, ROI masks and the betas of one session.

Every reader names the file it failed on: a damaged or unexpected file is a
``ValueError`` saying which file and what was expected, never a bare error
from scipy, nibabel or h5py.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = [
    "TRIALS_PER_SESSION",
    "LAYOUT",
    "missing",
    "read_design",
    "session_trials",
    "volume_mask",
    "surface_mask",
    "read_volume_session",
    "read_surface_session",
    "zscore_session",
]

TRIALS_PER_SESSION = 750
# NSD stores most betas as int16 = round(300 * percent signal change).
BETA_SCALE = 300.0

LAYOUT = """\
Expected NSD layout (as on the NSD data server):
  <root>/nsddata/experiments/nsd/nsd_expdesign.mat
  <root>/nsddata/experiments/nsd/nsd_stim_info_merged.csv          (only for COCO captions)
  <root>/nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5              (dataset 'imgBrick')
  volume spaces (func1pt8mm, func1mm):
    <root>/nsddata_betas/ppdata/subjXX/<space>/<betas>/betas_sessionNN.hdf5   (dataset 'betas')
    <root>/nsddata/ppdata/subjXX/<space>/roi/<roi>.nii.gz
  fsaverage:
    <root>/nsddata_betas/ppdata/subjXX/fsaverage/<betas>/{lh,rh}.betas_sessionNN.mgh
    <root>/nsddata/freesurfer/fsaverage/label/{lh,rh}.<roi>.mgz"""


def missing(path, what):
    return FileNotFoundError(f"{what} not found: {path!r}\n{LAYOUT}")


# ---------------------------------------------------------------------------
# Experimental design
# ---------------------------------------------------------------------------


def read_design(root):
    from scipy.io import loadmat

    path = os.path.join(root, "nsddata", "experiments", "nsd", "nsd_expdesign.mat")
    if not os.path.isfile(path):
        raise missing(path, "NSD experimental design")
    try:
        mat = loadmat(path)
    except Exception as exc:  # scipy raises ValueError, TypeError, OSError... for a bad file
        raise ValueError(f"{path!r} is not a readable MATLAB file: {exc}") from exc
    absent = [k for k in ("masterordering", "subjectim", "sharedix") if k not in mat]
    if absent:
        raise ValueError(f"{path!r} lacks the variables {absent}")
    master = np.asarray(mat["masterordering"]).reshape(-1).astype(np.int64)
    subjectim = np.asarray(mat["subjectim"]).astype(np.int64)
    shared = np.asarray(mat["sharedix"]).reshape(-1).astype(np.int64)
    if subjectim.ndim != 2:
        raise ValueError(f"subjectim in {path!r} must be 2-D (8, 10000); got {subjectim.shape}")
    if master.size and (master.min() < 1 or master.max() > subjectim.shape[1]):
        raise ValueError(
            f"masterordering in {path!r} must hold 1-based indices into subjectim's "
            f"{subjectim.shape[1]} columns; found values in [{master.min()}, {master.max()}]"
        )
    return path, master, subjectim, shared


def session_trials(master, subjectim, subject, session, design_path):
    start = (session - 1) * TRIALS_PER_SESSION
    stop = start + TRIALS_PER_SESSION
    if stop > master.size:
        raise ValueError(
            f"session {session} needs trials {start + 1}-{stop} of masterordering, but "
            f"{design_path!r} lists {master.size} trials"
        )
    if subject > subjectim.shape[0]:
        raise ValueError(f"subjectim in {design_path!r} has no row for subject {subject}")
    # masterordering: 1-based index into the subject's 10,000 images;
    # subjectim: 1-based 73k ids. Returned ids are 0-based.
    return subjectim[subject - 1, master[start:stop] - 1] - 1


# ---------------------------------------------------------------------------
# Voxel selection
# ---------------------------------------------------------------------------


def _load_nifti_like(path, what):
    """``nibabel.load`` whose failures name the file."""
    import nibabel as nib

    try:
        return nib.load(path)
    except Exception as exc:  # nibabel's ImageFileError, EOFError, OSError...
        raise ValueError(f"{path!r} ({what}) is not a readable image file: {exc}") from exc


def volume_mask(root, subject, space, roi):
    affine = None
    if isinstance(roi, np.ndarray):
        values = roi
    else:
        if isinstance(roi, str) and not roi.endswith((".nii", ".nii.gz")):
            path = os.path.join(
                root, "nsddata", "ppdata", f"subj{subject:02d}", space, "roi", f"{roi}.nii.gz"
            )
        else:
            path = os.fspath(roi)
        if not os.path.isfile(path):
            raise missing(path, "ROI volume")
        img = _load_nifti_like(path, "ROI volume")
        values = np.asarray(img.dataobj)
        affine = img.affine
    values = np.asarray(values)
    if values.ndim != 3:
        raise ValueError(f"the ROI must be a 3-D volume; got shape {values.shape}")
    mask = values > 0
    if not mask.any():
        raise ValueError("the ROI selects no voxel (no value > 0)")
    return mask, values[mask], affine


def surface_mask(root, roi, hemi):
    if isinstance(roi, dict):
        values = np.asarray(roi[hemi]).reshape(-1)
    else:
        path = os.path.join(
            root, "nsddata", "freesurfer", "fsaverage", "label", f"{hemi}.{roi}.mgz"
        )
        if not os.path.isfile(path):
            raise missing(path, f"{hemi} fsaverage ROI")
        values = np.asarray(_load_nifti_like(path, f"{hemi} fsaverage ROI").dataobj).reshape(-1)
    return values > 0, values


# ---------------------------------------------------------------------------
# Reading one session
# ---------------------------------------------------------------------------


def _to_float(raw):
    out = raw.astype(np.float32)
    if np.issubdtype(raw.dtype, np.integer):
        out /= BETA_SCALE
    return out


def _volume_layout(shape, mask_shape, path):
    """Where the trial axis is and how the volume axes map onto the ROI's.

    NSD writes its HDF5 betas from MATLAB as X x Y x Z x 750; h5py, being
    row-major, shows them reversed as (750, Z, Y, X). A file written from
    Python as (750, X, Y, Z) or (X, Y, Z, 750) is read too.
    """
    if len(shape) != 4:
        raise ValueError(f"{path!r}: betas must be 4-D (trials x volume); got shape {shape}")
    mask_shape = tuple(mask_shape)
    if shape[0] == TRIALS_PER_SESSION:
        vol = tuple(shape[1:])
        if vol == mask_shape[::-1]:
            return 0, (2, 1, 0)
        if vol == mask_shape:
            return 0, (0, 1, 2)
    if shape[-1] == TRIALS_PER_SESSION and tuple(shape[:3]) == mask_shape:
        return 3, (0, 1, 2)
    if TRIALS_PER_SESSION not in (shape[0], shape[-1]):
        raise ValueError(
            f"{path!r}: betas have shape {shape}; an NSD session has {TRIALS_PER_SESSION} trials"
        )
    raise ValueError(
        f"{path!r}: betas volume {shape} does not match the ROI volume {mask_shape} "
        "(in either axis order)"
    )


def read_volume_session(path, coords):
    """Masked betas of one session, ``(750, n_voxels)`` float32 (percent signal change)."""
    import h5py

    mask_shape = coords["mask_shape"]
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path!r} is not a readable HDF5 file of betas: {exc}") from exc
    with f:
        if "betas" not in f:
            raise ValueError(f"{path!r} has no dataset 'betas'; it holds {sorted(f.keys())}")
        dset = f["betas"]
        trial_axis, perm = _volume_layout(dset.shape, mask_shape, path)
        c = [coords["ijk"][:, p] for p in perm]  # voxel coordinates along the file's volume axes
        out = np.empty((TRIALS_PER_SESSION, c[0].size), dtype=np.float32)
        # One plane at a time along the file's first volume axis, bounding
        # box only: memory stays at one plane of one session.
        for a in np.unique(c[0]):
            sel = np.flatnonzero(c[0] == a)
            b0, b1 = c[1][sel].min(), c[1][sel].max() + 1
            d0, d1 = c[2][sel].min(), c[2][sel].max() + 1
            if trial_axis == 0:
                block = dset[:, a, b0:b1, d0:d1]
                vals = block[:, c[1][sel] - b0, c[2][sel] - d0]
            else:
                block = dset[a, b0:b1, d0:d1, :]
                vals = block[c[1][sel] - b0, c[2][sel] - d0, :].T
            out[:, sel] = _to_float(vals)
    return out


def read_surface_session(paths, vertices):
    parts = []
    for hemi in ("lh", "rh"):
        img = _load_nifti_like(paths[hemi], f"{hemi} surface betas")
        shape = img.shape
        n_vert = shape[0]
        if shape[-1] != TRIALS_PER_SESSION or int(np.prod(shape[1:-1])) != 1:
            raise ValueError(
                f"{paths[hemi]!r}: expected (n_vertices, 1, 1, {TRIALS_PER_SESSION}); got {shape}"
            )
        if n_vert != vertices[hemi]["n_total"]:
            raise ValueError(
                f"{paths[hemi]!r} has {n_vert} vertices but the {hemi} ROI file has "
                f"{vertices[hemi]['n_total']}"
            )
        idx = vertices[hemi]["index"]
        lo, hi = int(idx.min()), int(idx.max()) + 1
        raw = np.asarray(img.dataobj[lo:hi]).reshape(hi - lo, TRIALS_PER_SESSION)
        parts.append(_to_float(raw[idx - lo]).T)
    return np.concatenate(parts, axis=1)


def zscore_session(x):
    """Z-score every voxel over the trials of one session; constant voxels -> 0."""
    mean = np.nanmean(x, axis=0, keepdims=True)
    std = np.nanstd(x, axis=0, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (x - mean) / std
    z[:, (std[0] == 0) | ~np.isfinite(std[0])] = 0.0
    return z
