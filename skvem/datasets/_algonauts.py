"""The Algonauts 2023 challenge data: loader and submission writer."""

from __future__ import annotations

import os
import re
import warnings
from numbers import Integral

import numpy as np
from sklearn.utils import Bunch

from skvem.images import ImageSet
from skvem.datasets._safe_pickle import load_pickled_dict

__all__ = ["load_algonauts2023"]

ROI_FILES = ("prf-visualrois", "floc-bodies", "floc-faces", "floc-places", "floc-words", "streams")

LAYOUT = """\
Expected Algonauts 2023 layout:
  <root>/subjXX/training_split/training_images/train-0001_nsd-00013.png ...
  <root>/subjXX/training_split/training_fmri/lh_training_fmri.npy, rh_training_fmri.npy
  <root>/subjXX/test_split/test_images/test-0001_nsd-00845.png ...
  <root>/subjXX/roi_masks/{lh,rh}.<roi-file>_challenge_space.npy and mapping_<roi-file>.npy
      (<roi-file>: prf-visualrois, floc-bodies, floc-faces, floc-places, floc-words, streams)
optional:
  <root>/subjXX/roi_masks/{lh,rh}.all-vertices_fsaverage_space.npy
  <root>/subjXX/test_split/test_fmri/{lh,rh}_test_fmri.npy
  <root>/subjXX/test_split/noise_ceiling/{lh,rh}_noise_ceiling.npy"""

_NAME_RE = re.compile(r"^(train|test)-(\d+)_nsd-(\d+)\.png$")


def _subject_number(subject) -> int:
    if isinstance(subject, str):
        m = re.fullmatch(r"(?:subj)?0*(\d+)", subject.strip())
        if m is None:
            raise ValueError(f"subject must be 1-8 or 'subj01'...'subj08'; got {subject!r}")
        subject = int(m.group(1))
    if not isinstance(subject, Integral) or isinstance(subject, bool) or not 1 <= subject <= 8:
        raise ValueError(f"subject must be an integer between 1 and 8; got {subject!r}")
    return int(subject)


def _missing(path, what):
    return FileNotFoundError(f"{what} not found: {path!r}\n{LAYOUT}")


def _subject_dir(root, subject):
    root = os.fspath(root)
    name = f"subj{subject:02d}"
    candidate = os.path.join(root, name)
    if os.path.isdir(candidate):
        return candidate
    # Also accept the subject folder itself as root.
    if os.path.basename(os.path.normpath(root)) == name and os.path.isdir(root):
        return root
    raise _missing(candidate, f"subject folder of subject {subject}")


def _image_list(folder, split):
    if not os.path.isdir(folder):
        raise _missing(folder, f"{split} image folder")
    names = sorted(f for f in os.listdir(folder) if f.lower().endswith(".png"))
    if not names:
        raise _missing(os.path.join(folder, f"{split}-0001_nsd-XXXXX.png"), f"{split} images")
    numbers, ids = [], []
    for f in names:
        m = _NAME_RE.match(f)
        if m is None or m.group(1) != split:
            raise ValueError(
                f"{os.path.join(folder, f)!r} is not named like '{split}-0001_nsd-00013.png'"
            )
        numbers.append(int(m.group(2)))
        ids.append(int(m.group(3)))
    numbers = np.asarray(numbers)
    if not np.array_equal(numbers, np.arange(1, len(numbers) + 1)):
        gap = int(np.flatnonzero(numbers != np.arange(1, len(numbers) + 1))[0]) + 1
        raise ValueError(
            f"{split} images in {folder!r} must be numbered {split}-0001 ... consecutively; "
            f"{split}-{gap:04d} is missing or duplicated"
        )
    return [os.path.join(folder, f) for f in names], np.asarray(ids, dtype=np.int64)


def _load_array(path, what):
    """``np.load`` of a numeric ``.npy`` file, failures naming the file and what it should be."""
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError, OSError, EOFError... for a damaged file
        raise ValueError(f"{path!r} ({what}) is not a readable numeric .npy file: {exc}") from exc
    if not isinstance(arr, np.ndarray) or not (
        np.issubdtype(arr.dtype, np.number) or arr.dtype == bool
    ):
        raise ValueError(f"{path!r} ({what}) must hold a numeric array; got {arr.dtype}")
    return arr


def _load_pair(directory, pattern, what):
    """Load ``lh`` and ``rh`` arrays named by ``pattern.format(hemi)``."""
    out = []
    for hemi in ("lh", "rh"):
        path = os.path.join(directory, pattern.format(hemi))
        if not os.path.isfile(path):
            raise _missing(path, f"{hemi} {what}")
        out.append(_load_array(path, f"{hemi} {what}"))
    return out


def _check_fmri_pair(lh, rh, n_images, what, lh_path_hint):
    for hemi, arr in (("lh", lh), ("rh", rh)):
        if arr.ndim != 2:
            raise ValueError(f"{hemi} {what} must be 2-D (images, vertices); got shape {arr.shape}")
        if arr.shape[0] != n_images:
            raise ValueError(
                f"{hemi} {what} has {arr.shape[0]} rows but there are {n_images} images in "
                f"{lh_path_hint!r}"
            )


def _integer_labels(mask, path):
    """ROI labels as int64; NaN or fractional labels are an error naming the file."""
    if np.issubdtype(mask.dtype, np.integer) or mask.dtype == bool:
        return mask.astype(np.int64)
    finite = np.isfinite(mask)
    if not finite.all():
        raise ValueError(
            f"{path!r} has {int((~finite).sum())} NaN or infinite ROI labels (first at vertex "
            f"{int(np.flatnonzero(~finite)[0])}); expected integer labels, 0 for no ROI"
        )
    if not np.array_equal(mask, np.round(mask)):
        bad = int(np.flatnonzero(mask != np.round(mask))[0])
        raise ValueError(
            f"{path!r} has the non-integer ROI label {float(mask[bad]):g} at vertex {bad}; expected "
            "integer labels, 0 for no ROI"
        )
    return mask.astype(np.int64)


def _load_rois(roi_dir, roi_files, n_lh, n_rh):
    rois, by_hemi, groups = {}, {"lh": {}, "rh": {}}, {}
    offsets = {"lh": 0, "rh": n_lh}
    sizes = {"lh": n_lh, "rh": n_rh}
    for roi_file in roi_files:
        mapping_path = os.path.join(roi_dir, f"mapping_{roi_file}.npy")
        if not os.path.isfile(mapping_path):
            raise _missing(mapping_path, f"ROI mapping file of {roi_file!r}")
        # The devkit reads this with np.load(allow_pickle=True).item(); we
        # read the same dict without letting the file run code.
        mapping = load_pickled_dict(mapping_path)
        labels = {}
        for key, name in mapping.items():
            if not isinstance(key, (Integral, np.integer)) or not isinstance(name, str):
                raise ValueError(
                    f"{mapping_path!r} must map integer labels to ROI names; "
                    f"found {key!r}: {name!r}"
                )
            labels[int(key)] = name
        groups[roi_file] = [labels[k] for k in sorted(labels) if k != 0]
        for hemi in ("lh", "rh"):
            mask_path = os.path.join(roi_dir, f"{hemi}.{roi_file}_challenge_space.npy")
            if not os.path.isfile(mask_path):
                raise _missing(mask_path, f"{hemi} ROI mask of {roi_file!r}")
            mask = _load_array(mask_path, f"{hemi} ROI mask of {roi_file!r}")
            if mask.shape != (sizes[hemi],):
                raise ValueError(
                    f"{mask_path!r} has shape {mask.shape} but the {hemi} fMRI has "
                    f"{sizes[hemi]} vertices"
                )
            mask = _integer_labels(mask, mask_path)
            unknown = set(np.unique(mask).tolist()) - set(labels)
            if unknown:
                raise ValueError(
                    f"{mask_path!r} has labels {sorted(unknown)} missing from {mapping_path!r}"
                )
            for label in sorted(labels):
                if label == 0:
                    continue
                idx = np.flatnonzero(mask == label) + offsets[hemi]
                name = labels[label]
                prev = by_hemi[hemi].get(name)
                by_hemi[hemi][name] = idx if prev is None else np.union1d(prev, idx)
    for hemi in ("lh", "rh"):
        for name, idx in by_hemi[hemi].items():
            prev = rois.get(name)
            rois[name] = idx if prev is None else np.union1d(prev, idx)
    return rois, by_hemi, groups


def _load_fsaverage_vertices(roi_dir, n_lh, n_rh):
    """``({hemi: vertex indices}, {hemi: mask length})``, or ``(None, None)`` without masks."""
    out, sizes = {}, {}
    for hemi, n in (("lh", n_lh), ("rh", n_rh)):
        path = os.path.join(roi_dir, f"{hemi}.all-vertices_fsaverage_space.npy")
        if not os.path.isfile(path):
            return None, None
        mask = _load_array(path, f"{hemi} fsaverage vertex mask")
        vertices = np.flatnonzero(mask)
        if vertices.size != n:
            raise ValueError(
                f"{path!r} selects {vertices.size} fsaverage vertices but the {hemi} fMRI has {n}"
            )
        out[hemi], sizes[hemi] = vertices, int(mask.size)
    return out, sizes


def _noise_ceiling_percent(lh, rh, n_lh, n_rh, folder):
    for hemi, arr, n in (("lh", lh, n_lh), ("rh", rh, n_rh)):
        if arr.reshape(-1).shape != (n,):
            raise ValueError(
                f"{hemi}_noise_ceiling.npy in {folder!r} has shape {arr.shape} but the {hemi} "
                f"fMRI has {n} vertices"
            )
    nc = np.concatenate([lh.reshape(-1), rh.reshape(-1)]).astype(np.float64)
    if np.nanmax(nc) <= 1.0 + 1e-6:
        return 100.0 * nc
    warnings.warn(
        f"noise ceiling files in {folder!r} hold values above 1; taking them as percent already",
        stacklevel=3,
    )
    return nc


def load_algonauts2023(root, subject, *, rois=True):
    """Load one subject of the Algonauts 2023 challenge data.

    Parameters
    ----------
    root : str or path-like
        The folder holding ``subj01`` ... ``subj08`` (or one subject folder
        itself), laid out as the challenge distributes it::

            subjXX/training_split/training_images/train-0001_nsd-00013.png ...
            subjXX/training_split/training_fmri/{lh,rh}_training_fmri.npy
            subjXX/test_split/test_images/test-0001_nsd-00845.png ...
            subjXX/roi_masks/{lh,rh}.<roi-file>_challenge_space.npy
            subjXX/roi_masks/mapping_<roi-file>.npy

        and optionally ``roi_masks/{lh,rh}.all-vertices_fsaverage_space.npy``,
        ``test_split/test_fmri/{lh,rh}_test_fmri.npy`` and
        ``test_split/noise_ceiling/{lh,rh}_noise_ceiling.npy`` (released after
        the challenge).
    subject : int or str
        1 to 8, or ``"subj01"`` ... ``"subj08"``.
    rois : bool or list of str, default=True
        Which ROI files to read: all six (``prf-visualrois``, ``floc-bodies``,
        ``floc-faces``, ``floc-places``, ``floc-words``, ``streams``), a list
        of them, or none (``False``).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        images : ImageSet
            The training images, read lazily from their PNG files, in file
            name order (the order of the fMRI rows). ``images.ids`` holds the
            NSD image id written in each file name (``nsd-00013`` -> 13), as
            is.
        fmri : ndarray of float32, shape (n_train, n_lh + n_rh)
            Left then right hemisphere responses (z-scored within NSD session
            and averaged over repeats by the organisers).
        hemisphere_slices : dict
            ``{"lh": slice(0, n_lh), "rh": slice(n_lh, n_lh + n_rh)}``.
        test_images : ImageSet
            The test images, ids as for ``images``.
        test_fmri : ndarray of float32 or None
            Test responses when ``test_split/test_fmri`` is present.
        rois : dict of str -> ndarray of int
            ROI name (``"V1v"``, ``"FFA-1"``, ``"early"`` ...) -> indices of
            its vertices in ``fmri``'s columns, both hemispheres.
        hemisphere_rois : dict
            ``{"lh": {name: indices}, "rh": {name: indices}}``, indices into
            the same concatenated columns.
        roi_groups : dict of str -> list of str
            ROI file -> the ROI names it defines.
        fsaverage_vertices : dict or None
            ``{"lh": ..., "rh": ...}``: the fsaverage vertex of every column of
            each hemisphere, when the ``all-vertices`` files are present.
        fsaverage_n_vertices : dict or None
            ``{"lh": 163842, "rh": 163842}``: the length of those masks (the
            vertices of the mesh they index), or ``None`` without them.
        noise_ceiling : ndarray of float or None
            Per-vertex noise ceiling of the *test* responses in percent (the
            files hold fractions; they are multiplied by 100), or ``None``
            when the files are absent.
        subject : int
            The subject number.
        DESCR : str
            A description of the data.

    Raises
    ------
    FileNotFoundError
        When a required file or folder is missing; the message names the path
        and shows the expected layout.
    ValueError
        When files disagree (rows of the fMRI vs. images, ROI masks vs.
        vertices, badly named images).

    Examples
    --------
    >>> from skvem.datasets import load_algonauts2023  # doctest: +SKIP
    >>> data = load_algonauts2023("/data/algonauts_2023", subject=1)  # doctest: +SKIP
    >>> data.fmri[:, data.rois["FFA-1"]].shape  # doctest: +SKIP
    (9841, 683)
    """
    subject = _subject_number(subject)
    if rois is True:
        roi_files = ROI_FILES
    elif rois is False or rois is None:
        roi_files = ()
    else:
        roi_files = tuple([rois] if isinstance(rois, str) else rois)
        unknown = [r for r in roi_files if r not in ROI_FILES]
        if unknown:
            raise ValueError(f"rois has unknown ROI files {unknown}; choose from {ROI_FILES}")

    sdir = _subject_dir(root, subject)
    train_dir = os.path.join(sdir, "training_split")
    test_dir = os.path.join(sdir, "test_split")
    roi_dir = os.path.join(sdir, "roi_masks")

    train_paths, train_ids = _image_list(os.path.join(train_dir, "training_images"), "train")
    test_paths, test_ids = _image_list(os.path.join(test_dir, "test_images"), "test")

    fmri_dir = os.path.join(train_dir, "training_fmri")
    lh, rh = _load_pair(fmri_dir, "{}_training_fmri.npy", "training fMRI")
    _check_fmri_pair(
        lh, rh, len(train_paths), "training fMRI", os.path.join(train_dir, "training_images")
    )
    n_lh, n_rh = lh.shape[1], rh.shape[1]
    fmri = np.concatenate([lh, rh], axis=1).astype(np.float32, copy=False)
    del lh, rh

    test_fmri = None
    test_fmri_dir = os.path.join(test_dir, "test_fmri")
    if os.path.isdir(test_fmri_dir):
        tlh, trh = _load_pair(test_fmri_dir, "{}_test_fmri.npy", "test fMRI")
        _check_fmri_pair(
            tlh, trh, len(test_paths), "test fMRI", os.path.join(test_dir, "test_images")
        )
        if (tlh.shape[1], trh.shape[1]) != (n_lh, n_rh):
            raise ValueError(
                f"test fMRI has {tlh.shape[1]} + {trh.shape[1]} vertices but training fMRI has "
                f"{n_lh} + {n_rh}"
            )
        test_fmri = np.concatenate([tlh, trh], axis=1).astype(np.float32, copy=False)

    noise_ceiling = None
    nc_dir = os.path.join(test_dir, "noise_ceiling")
    if os.path.isdir(nc_dir):
        nlh, nrh = _load_pair(nc_dir, "{}_noise_ceiling.npy", "noise ceiling")
        noise_ceiling = _noise_ceiling_percent(nlh, nrh, n_lh, n_rh, nc_dir)

    if roi_files and not os.path.isdir(roi_dir):
        raise _missing(roi_dir, "ROI mask folder")
    roi_idx, hemi_rois, groups = _load_rois(roi_dir, roi_files, n_lh, n_rh)
    fsaverage, fsaverage_sizes = (
        _load_fsaverage_vertices(roi_dir, n_lh, n_rh) if os.path.isdir(roi_dir) else (None, None)
    )

    return Bunch(
        images=ImageSet(train_paths, ids=train_ids),
        fmri=fmri,
        hemisphere_slices={"lh": slice(0, n_lh), "rh": slice(n_lh, n_lh + n_rh)},
        test_images=ImageSet(test_paths, ids=test_ids),
        test_fmri=test_fmri,
        rois=roi_idx,
        hemisphere_rois=hemi_rois,
        roi_groups=groups,
        fsaverage_vertices=fsaverage,
        fsaverage_n_vertices=fsaverage_sizes,
        noise_ceiling=noise_ceiling,
        subject=subject,
        DESCR=(
            f"Algonauts 2023 challenge data, subject {subject}: {len(train_paths)} training and "
            f"{len(test_paths)} test images, {n_lh} left + {n_rh} right hemisphere vertices "
            "(fsaverage, NSD betas z-scored within session and averaged over repeats).\n" + LAYOUT
        ),
    )
