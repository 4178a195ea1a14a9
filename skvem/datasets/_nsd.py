"""The Natural Scenes Dataset (Allen et al., 2022), read from its own files."""

from __future__ import annotations

import os
import re
import warnings
from numbers import Integral

import numpy as np
from sklearn.utils import Bunch

from skvem._utils.progress import progress
from skvem._utils.validation import check_int
from skvem.datasets._algonauts import _subject_number
from skvem.datasets._nsd_captions import read_captions
from skvem.datasets._nsd_io import (
    LAYOUT,
    TRIALS_PER_SESSION,
    missing,
    read_design,
    read_surface_session,
    read_volume_session,
    session_trials,
    surface_mask,
    volume_mask,
    zscore_session,
)
from skvem.images import ImageSet

__all__ = ["load_nsd"]


def _find_sessions(folder, pattern):
    if not os.path.isdir(folder):
        raise missing(folder, "betas folder")
    found = sorted({int(m.group(1)) for f in os.listdir(folder) if (m := re.fullmatch(pattern, f))})
    if not found:
        raise missing(
            os.path.join(folder, pattern.replace(r"(\d\d)", "NN").replace("\\", "")), "beta files"
        )
    return found


def load_nsd(
    root,
    subject,
    *,
    sessions=None,
    space="func1pt8mm",
    roi="nsdgeneral",
    betas="betas_fithrf_GLMdenoise_RR",
    zscore=True,
    min_repeats=1,
    keep_repeats=True,
    captions=None,
    stim_info=None,
    verbose=False,
):
    """Load one subject of the Natural Scenes Dataset from NSD's own files.

    Single-trial betas are read session by session, restricted to the ROI
    voxels as they are read (never a whole session volume in memory),
    z-scored per voxel within each session, and gathered per image: the
    repeats are kept for the noise ceiling and averaged for ``fmri``. Images
    stay in ``nsd_stimuli.hdf5`` and are decoded lazily.

    Parameters
    ----------
    root : str or path-like
        The NSD root, holding ``nsddata``, ``nsddata_betas`` and
        ``nsddata_stimuli`` as on the NSD server::

            nsddata/experiments/nsd/nsd_expdesign.mat
            nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5
            nsddata_betas/ppdata/subjXX/func1pt8mm/<betas>/betas_sessionNN.hdf5
            nsddata/ppdata/subjXX/func1pt8mm/roi/<roi>.nii.gz
            nsddata_betas/ppdata/subjXX/fsaverage/<betas>/{lh,rh}.betas_sessionNN.mgh
            nsddata/freesurfer/fsaverage/label/{lh,rh}.<roi>.mgz

    subject : int or str
        1 to 8, or ``"subj01"`` ... ``"subj08"``.
    sessions : int, list of int or None, default=None
        NSD sessions to read, 1-based as in the file names. ``None`` reads
        every session whose beta file is present.
    space : {"func1pt8mm", "func1mm", "fsaverage"}, default="func1pt8mm"
        Volume betas from ``betas_sessionNN.hdf5``, or fsaverage surface
        betas from ``{lh,rh}.betas_sessionNN.mgh`` (left then right
        hemisphere in the columns).
    roi : str, path, ndarray or dict, default="nsdgeneral"
        Voxels with a value > 0 are kept. A name reads NSD's ROI file of that
        name (``nsdgeneral``, ``prf-visualrois``, ``streams``, ...); for
        volume spaces a path to a NIfTI file or a 3-D array also works, for
        fsaverage a dict ``{"lh": values, "rh": values}``.
    betas : str, default="betas_fithrf_GLMdenoise_RR"
        Which GLM's betas (NSD's ``b3`` by default).
    zscore : bool, default=True
        Z-score every voxel over the 750 trials of each session (what
        Algonauts and most NSD papers do). Voxels constant within a session
        (outside the brain mask) become 0.
    min_repeats : int, default=1
        Keep only images shown at least this many times in the selected
        sessions.
    keep_repeats : bool, default=True
        Return the single trials (``fmri_repeats``) and the noise ceiling.
        ``False`` saves memory: only the averages are kept.
    captions : path or list of paths, optional
        JSON captions attached to ``images.captions`` (the first caption of
        each image; all of them in ``captions``): either an object mapping
        0-based NSD 73k ids (as strings) to a caption or a list of captions,
        or COCO caption annotation files (``captions_train2017.json``, ...)
        whose ``image_id`` is mapped to NSD through ``stim_info``.
    stim_info : path, optional
        ``nsd_stim_info_merged.csv`` (columns ``cocoId``, ``nsdId``), needed
        for COCO annotation files. Default:
        ``<root>/nsddata/experiments/nsd/nsd_stim_info_merged.csv``.
    verbose : bool or int, default=False
        Show a progress bar over sessions.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        images : ImageSet
            Lazy view of ``imgBrick`` at the subject's images, ``ids`` = the
            0-based 73k ids, ``captions`` when ``captions`` is given.
        ids : ndarray of int, shape (n_images,)
            0-based NSD 73k ids (row of ``nsd_stimuli.hdf5``), ascending.
            NSD's own files are 1-based: ``masterordering`` indexes the
            subject's 10,000 images from 1, ``subjectim``, ``sharedix`` and
            the ``nsd-XXXXX`` of NSD file names count 73k ids from 1, while
            ``nsdId`` in ``nsd_stim_info_merged.csv`` counts from 0. Add 1
            to compare with the former.
        fmri : ndarray of float32, shape (n_images, n_voxels)
            Responses averaged over the available repeats.
        fmri_repeats : ndarray of float32, shape (n_images, max_repeats, n_voxels) or None
            Single-trial responses in presentation order, NaN where an image
            has fewer repeats.
        n_repeats : ndarray of int, shape (n_images,)
            How many trials of each image were read.
        noise_ceiling : ndarray of float, shape (n_voxels,) or None
            :func:`skvem.metrics.noise_ceiling` of ``fmri_repeats`` in
            percent, for responses averaged over each image's repeats.
        shared : ndarray of bool, shape (n_images,)
            Whether the image is one of the 1,000 shown to every subject.
        rois : dict
            ``{roi_name: all voxel indices}`` (one entry, the ROI loaded).
        roi_values : ndarray, shape (n_voxels,)
            The ROI file's value at every voxel (e.g. the ``streams`` label).
        voxel_indices : ndarray of int, shape (n_voxels, 3)
            Volume spaces: (i, j, k) of every voxel in the ROI NIfTI's array.
        affine : ndarray of shape (4, 4) or None
            Volume spaces: the ROI NIfTI's affine.
        vertices : dict
            fsaverage: ``{"lh": vertex ids, "rh": vertex ids}``.
        hemisphere_slices : dict
            fsaverage: ``{"lh": slice, "rh": slice}`` of the columns.
        captions : list of list of str or None
            Every COCO caption of each image, when ``captions`` was given.
        trials : dict of ndarray
            One entry per trial read: ``session``, ``trial`` (1-based within
            session), ``nsd_id`` (0-based), ``image_index`` (row of ``fmri``,
            -1 if dropped by ``min_repeats``).
        subject, sessions, space, DESCR
            The arguments as resolved, and a description of the data.

    Raises
    ------
    FileNotFoundError
        When a file is missing; the message names it and shows the layout.
    ValueError
        When files disagree (betas vs. ROI shapes, trial counts, design).

    Examples
    --------
    >>> from skvem.datasets import load_nsd  # doctest: +SKIP
    >>> data = load_nsd("/data/nsd", subject=1, sessions=range(1, 11))  # doctest: +SKIP
    >>> data.fmri.shape  # doctest: +SKIP
    (5904, 15724)
    """
    root = os.fspath(root)
    subject = _subject_number(subject)
    if space not in ("func1pt8mm", "func1mm", "fsaverage"):
        raise ValueError(f"space must be 'func1pt8mm', 'func1mm' or 'fsaverage'; got {space!r}")
    if space == "fsaverage" and not isinstance(roi, (str, dict)):
        raise ValueError(
            "for space='fsaverage', roi must be a name or a dict {'lh': ..., 'rh': ...}; "
            f"got {type(roi).__name__}"
        )
    if space != "fsaverage" and not isinstance(roi, (str, os.PathLike, np.ndarray)):
        raise ValueError(
            "for a volume space, roi must be a name, a NIfTI path or a 3-D array; "
            f"got {type(roi).__name__}"
        )
    check_int(min_repeats, name="min_repeats", min_val=1)

    design_path, master, subjectim, shared_ids = read_design(root)
    stim_path = os.path.join(root, "nsddata_stimuli", "stimuli", "nsd", "nsd_stimuli.hdf5")
    if not os.path.isfile(stim_path):
        raise missing(stim_path, "NSD stimuli")

    beta_dir = os.path.join(root, "nsddata_betas", "ppdata", f"subj{subject:02d}", space, betas)
    if space == "fsaverage":
        pattern, name = r"lh\.betas_session(\d\d)\.mgh", "{hemi}.betas_session{s:02d}.mgh"
    else:
        pattern, name = r"betas_session(\d\d)\.hdf5", "betas_session{s:02d}.hdf5"
    if sessions is None:
        sessions = _find_sessions(beta_dir, pattern)
    else:
        given = sessions
        if isinstance(sessions, Integral):
            sessions = [sessions]
        elif isinstance(sessions, (str, bytes)) or not hasattr(sessions, "__iter__"):
            sessions = None
        else:
            sessions = list(sessions)
        bad = sessions is None or not sessions or [
            s for s in sessions if not isinstance(s, Integral) or isinstance(s, bool) or s < 1
        ]
        if bad:
            raise ValueError(
                "sessions must be None, a 1-based session number or a list of them (e.g. "
                f"range(1, 11)); got {given!r}"
            )
        sessions = sorted({int(s) for s in sessions})

    def files_of(s):
        if space == "fsaverage":
            out = {h: os.path.join(beta_dir, name.format(hemi=h, s=s)) for h in ("lh", "rh")}
        else:
            out = {"vol": os.path.join(beta_dir, name.format(s=s))}
        for p in out.values():
            if not os.path.isfile(p):
                raise missing(p, f"betas of session {s}")
        return out

    session_files = {s: files_of(s) for s in sessions}

    # Voxel selection.
    extra = {}
    if space == "fsaverage":
        vertices, values = {}, []
        for hemi in ("lh", "rh"):
            mask, vals = surface_mask(root, roi, hemi)
            vertices[hemi] = {"index": np.flatnonzero(mask), "n_total": mask.size}
            values.append(vals[mask])
            if not mask.any():
                raise ValueError(f"the {hemi} ROI selects no vertex (no value > 0)")
        n_lh = vertices["lh"]["index"].size
        n_vox = n_lh + vertices["rh"]["index"].size
        roi_values = np.concatenate(values)
        extra["vertices"] = {h: vertices[h]["index"] for h in ("lh", "rh")}
        extra["hemisphere_slices"] = {"lh": slice(0, n_lh), "rh": slice(n_lh, n_vox)}
        read = lambda s: read_surface_session(session_files[s], vertices)  # noqa: E731
    else:
        mask, roi_values, affine = volume_mask(root, subject, space, roi)
        ijk = np.stack(np.nonzero(mask), axis=1)
        coords = {"ijk": ijk, "mask_shape": mask.shape}
        n_vox = ijk.shape[0]
        extra["voxel_indices"] = ijk
        extra["affine"] = affine
        read = lambda s: read_volume_session(session_files[s]["vol"], coords)  # noqa: E731

    # Which image each trial shows, and its repeat number.
    trial_ids = np.concatenate(
        [session_trials(master, subjectim, subject, s, design_path) for s in sessions]
    )
    uniq, inverse, counts = np.unique(trial_ids, return_inverse=True, return_counts=True)
    keep = counts >= min_repeats
    if not keep.any():
        raise ValueError(f"no image has {min_repeats} repeats in sessions {sessions}")
    row_of = np.full(uniq.size, -1, dtype=np.int64)
    row_of[keep] = np.arange(keep.sum())
    image_index = row_of[inverse]
    slot = np.zeros(trial_ids.size, dtype=np.int64)
    seen = np.zeros(uniq.size, dtype=np.int64)
    for t, u in enumerate(inverse):
        slot[t] = seen[u]
        seen[u] += 1
    ids = uniq[keep]
    n_rep = counts[keep]
    n_images = ids.size

    brick = ImageSet.from_hdf5(stim_path, "imgBrick")
    if ids.max() >= len(brick):
        raise ValueError(
            f"the design refers to image {ids.max()} (0-based) but {stim_path!r} holds "
            f"{len(brick)} images"
        )

    if keep_repeats:
        repeats = np.full((n_images, int(n_rep.max()), n_vox), np.nan, dtype=np.float32)
    else:
        sums = np.zeros((n_images, n_vox), dtype=np.float32)
        finite = np.zeros((n_images, n_vox), dtype=np.uint8)
    n_nan = 0
    offset = 0
    for s in progress(
        sessions, verbose=verbose, desc=f"NSD subj{subject:02d} sessions", unit="session"
    ):
        x = read(s)
        n_nan += int(np.isnan(x).sum())
        if zscore:
            x = zscore_session(x)
        rows = image_index[offset : offset + TRIALS_PER_SESSION]
        ok = rows >= 0
        if keep_repeats:
            repeats[rows[ok], slot[offset : offset + TRIALS_PER_SESSION][ok]] = x[ok]
        else:
            np.add.at(sums, rows[ok], np.nan_to_num(x[ok]))
            np.add.at(finite, rows[ok], np.isfinite(x[ok]))
        offset += TRIALS_PER_SESSION

    if keep_repeats:
        # Slot by slot: no temporary as large as all the repeats.
        sums = np.zeros((n_images, n_vox), dtype=np.float32)
        finite = np.zeros((n_images, n_vox), dtype=np.uint8)
        for r in range(repeats.shape[1]):
            ok = np.isfinite(repeats[:, r])
            sums += np.where(ok, repeats[:, r], 0.0)
            finite += ok
            del ok
    else:
        repeats = None
    with np.errstate(invalid="ignore", divide="ignore"):
        sums /= finite
    fmri, sums = sums, None
    if n_nan:
        warnings.warn(
            f"{n_nan} single-trial betas are NaN in the files; they count as missing repeats"
            + ("" if np.all(np.isfinite(fmri)) else " and leave some responses NaN"),
            stacklevel=2,
        )

    noise_ceiling = None
    if keep_repeats and np.any(n_rep >= 2):
        from skvem.metrics import noise_ceiling as _noise_ceiling

        noise_ceiling = _noise_ceiling(repeats)

    caption_lists = None
    first = None
    if captions is not None:
        if stim_info is None:
            stim_info = os.path.join(
                root, "nsddata", "experiments", "nsd", "nsd_stim_info_merged.csv"
            )
        table = read_captions(captions, os.fspath(stim_info))
        caption_lists = [table.get(int(i), []) for i in ids]
        first = [c[0] if c else None for c in caption_lists]
    images = ImageSet(brick[ids], ids=ids, captions=first)

    session_of = np.repeat(np.asarray(sessions), TRIALS_PER_SESSION)
    roi_name = roi if isinstance(roi, str) else "roi"
    return Bunch(
        images=images,
        ids=ids,
        fmri=fmri,
        fmri_repeats=repeats,
        n_repeats=n_rep,
        noise_ceiling=noise_ceiling,
        shared=np.isin(ids, shared_ids - 1),
        rois={os.path.basename(roi_name).split(".nii")[0]: np.arange(n_vox)},
        roi_values=roi_values,
        captions=caption_lists,
        trials={
            "session": session_of,
            "trial": np.tile(np.arange(1, TRIALS_PER_SESSION + 1), len(sessions)),
            "nsd_id": trial_ids,
            "image_index": image_index,
        },
        subject=subject,
        sessions=list(sessions),
        space=space,
        DESCR=(
            f"NSD subject {subject}, {space} {betas}, sessions {list(sessions)}: "
            f"{n_images} images, "
            f"{n_vox} voxels (ROI {roi_name!r}), "
            + ("z-scored within session, " if zscore else "")
            + "averaged over repeats.\n"
            + LAYOUT
        ),
        **extra,
    )
