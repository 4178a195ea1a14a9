"""Tiny fake copies of real data sets, in their exact on-disk layouts.

Tests and examples build these in a temporary folder and read them back with
the public loaders, so the loaders are exercised on the same file formats,
names and conventions as the real data (1-based NSD design files, int16
betas scaled by 300 in MATLAB's axis order, pickled ROI mappings, ...).

Every builder returns a dict with the ground truth it wrote, so a test can
check what a loader returns against what is on disk.

Builders
--------
make_fake_algonauts(root, subject=1, n_train=12, n_test=4, n_voxels=(10, 12), ...)
    ``root/subjXX/{training_split,test_split,roi_masks}`` as distributed for
    the Algonauts 2023 challenge.
make_fake_nsd(root, subject=1, n_sessions=2, space="func1pt8mm", ...)
    ``root/nsddata``, ``root/nsddata_betas``, ``root/nsddata_stimuli`` as on
    the NSD data server, for one subject.
write_evil_mapping(path)
    A ``mapping_*.npy`` whose unpickling would run ``os.system``.
"""

from __future__ import annotations

import json
import os

import numpy as np

# The real Algonauts 2023 ROI names, per ROI file.
ALGONAUTS_ROI_NAMES = {
    "prf-visualrois": ["V1v", "V1d", "V2v", "V2d", "V3v", "V3d", "hV4"],
    "floc-bodies": ["EBA", "FBA-1", "FBA-2", "mTL-bodies"],
    "floc-faces": ["OFA", "FFA-1", "FFA-2", "mTL-faces", "aTL-faces"],
    "floc-places": ["OPA", "PPA", "RSC"],
    "floc-words": ["OWFA", "VWFA-1", "VWFA-2", "mfs-words", "mTL-words"],
    "streams": [
        "early",
        "midventral",
        "midlateral",
        "midparietal",
        "ventral",
        "lateral",
        "parietal",
    ],
}

TRIALS_PER_SESSION = 750


def _save_png(path, rng, size):
    from PIL import Image

    Image.fromarray(rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)).save(path)


def make_fake_algonauts(
    root,
    subject=1,
    n_train=12,
    n_test=4,
    n_voxels=(10, 12),
    *,
    rois=True,
    noise_ceiling=True,
    test_fmri=False,
    fsaverage=True,
    fsaverage_size=None,
    image_size=8,
    seed=0,
):
    """Write a fake Algonauts 2023 subject under ``root``.

    Parameters
    ----------
    root : path-like
        Folder that will hold ``subjXX``.
    subject : int
    n_train, n_test : int
        Number of training / test images (random RGB PNGs).
    n_voxels : (int, int)
        Vertices of the left and right hemispheres.
    rois : bool
        Write the six ``{lh,rh}.<roi-file>_challenge_space.npy`` label files
        and their ``mapping_<roi-file>.npy`` (``np.save``-d dicts, as in the
        real data).
    noise_ceiling : bool
        Write ``test_split/noise_ceiling/{lh,rh}_noise_ceiling.npy``
        (fractions, as in the real data).
    test_fmri : bool
        Write ``test_split/test_fmri/{lh,rh}_test_fmri.npy``.
    fsaverage : bool
        Write ``roi_masks/{lh,rh}.all-vertices_fsaverage_space.npy``
        (boolean masks over a fake 50-vertex fsaverage per hemisphere).
    fsaverage_size : int, optional
        Length of those masks instead, e.g. 163842 (fsaverage, as in the real
        data) or 10242 (fsaverage5); the vertices are drawn among them.
    image_size : int
    seed : int

    Returns
    -------
    truth : dict
        ``subject_dir``, ``lh``/``rh`` (training fMRI, float32),
        ``train_ids``/``test_ids`` (NSD ids in the file names), ``labels``
        (roi file -> {"lh": labels, "rh": labels}), ``mappings`` (roi file ->
        dict), ``noise_ceiling`` ({"lh", "rh"} fractions), ``test_lh``/``test_rh``
        and ``fsaverage`` ({"lh", "rh"} vertex ids) where written.
    """
    rng = np.random.default_rng(seed)
    n_lh, n_rh = n_voxels
    sdir = os.path.join(os.fspath(root), f"subj{subject:02d}")
    train_img = os.path.join(sdir, "training_split", "training_images")
    train_fmri = os.path.join(sdir, "training_split", "training_fmri")
    test_img = os.path.join(sdir, "test_split", "test_images")
    for d in (train_img, train_fmri, test_img):
        os.makedirs(d, exist_ok=True)
    ids = rng.choice(73000, size=n_train + n_test, replace=False)
    train_ids, test_ids = np.sort(ids[:n_train]), np.sort(ids[n_train:])
    for i, nsd in enumerate(train_ids, start=1):
        _save_png(os.path.join(train_img, f"train-{i:04d}_nsd-{nsd:05d}.png"), rng, image_size)
    for i, nsd in enumerate(test_ids, start=1):
        _save_png(os.path.join(test_img, f"test-{i:04d}_nsd-{nsd:05d}.png"), rng, image_size)
    truth = {"subject_dir": sdir, "train_ids": train_ids, "test_ids": test_ids}
    for hemi, n in (("lh", n_lh), ("rh", n_rh)):
        arr = rng.standard_normal((n_train, n)).astype(np.float32)
        np.save(os.path.join(train_fmri, f"{hemi}_training_fmri.npy"), arr)
        truth[hemi] = arr
    if test_fmri:
        folder = os.path.join(sdir, "test_split", "test_fmri")
        os.makedirs(folder, exist_ok=True)
        for hemi, n in (("lh", n_lh), ("rh", n_rh)):
            arr = rng.standard_normal((n_test, n)).astype(np.float32)
            np.save(os.path.join(folder, f"{hemi}_test_fmri.npy"), arr)
            truth[f"test_{hemi}"] = arr
    if noise_ceiling:
        folder = os.path.join(sdir, "test_split", "noise_ceiling")
        os.makedirs(folder, exist_ok=True)
        truth["noise_ceiling"] = {}
        for hemi, n in (("lh", n_lh), ("rh", n_rh)):
            arr = rng.uniform(0.0, 0.9, size=n).astype(np.float32)
            np.save(os.path.join(folder, f"{hemi}_noise_ceiling.npy"), arr)
            truth["noise_ceiling"][hemi] = arr
    roi_dir = os.path.join(sdir, "roi_masks")
    os.makedirs(roi_dir, exist_ok=True)
    if rois:
        truth["labels"], truth["mappings"] = {}, {}
        for roi_file, names in ALGONAUTS_ROI_NAMES.items():
            mapping = {0: "Unknown", **{k + 1: name for k, name in enumerate(names)}}
            np.save(os.path.join(roi_dir, f"mapping_{roi_file}.npy"), mapping)
            truth["mappings"][roi_file] = mapping
            truth["labels"][roi_file] = {}
            for hemi, n in (("lh", n_lh), ("rh", n_rh)):
                labels = rng.integers(0, len(names) + 1, size=n).astype(np.int32)
                np.save(os.path.join(roi_dir, f"{hemi}.{roi_file}_challenge_space.npy"), labels)
                truth["labels"][roi_file][hemi] = labels
    if fsaverage:
        truth["fsaverage"] = {}
        for hemi, n in (("lh", n_lh), ("rh", n_rh)):
            mask = np.zeros(fsaverage_size or max(50, n + 5), dtype=np.float64)
            chosen = np.sort(rng.choice(mask.size, size=n, replace=False))
            mask[chosen] = 1.0
            np.save(os.path.join(roi_dir, f"{hemi}.all-vertices_fsaverage_space.npy"), mask)
            truth["fsaverage"][hemi] = chosen
    return truth


class _RunsCode:
    """Unpickling this calls ``os.system(command)``."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def write_evil_mapping(path, command):
    """Write an ``np.save``-d 'mapping' that runs ``command`` when unpickled."""
    payload = np.empty((), dtype=object)
    payload[()] = {0: "Unknown", 1: _RunsCode(command)}
    np.save(os.fspath(path), payload, allow_pickle=True)


def make_fake_nsd(
    root,
    subject=1,
    n_sessions=2,
    *,
    space="func1pt8mm",
    volume_shape=(6, 5, 4),
    n_vertices=(30, 40),
    n_subject_images=500,
    n_stimuli=1200,
    stimulus_size=8,
    hdf5_layout="nsd",
    beta_dtype="int16",
    captions=False,
    seed=0,
):
    """Write a fake NSD (one subject, a few sessions) under ``root``.

    The design follows NSD's conventions: ``masterordering`` (1, 750 *
    n_sessions) holds 1-based indices into the subject's images,
    ``subjectim`` (8, n_subject_images) 1-based 73k ids, ``sharedix`` (1,
    n_shared) 1-based 73k ids. The first sessions' trials show each image up
    to three times.

    Parameters
    ----------
    root : path-like
    subject : int
    n_sessions : int
        Sessions ``01`` ... written (750 trials each).
    space : {"func1pt8mm", "fsaverage"}
    volume_shape : (int, int, int)
        (X, Y, Z) of the volume, as NIfTI / nibabel see it.
    n_vertices : (int, int)
        fsaverage vertices per hemisphere (the real fsaverage has 163842).
    n_subject_images : int
        Distinct images the subject sees (NSD: 10,000); at least
        ``250 * n_sessions`` so that no image is shown more than 3 times.
    n_stimuli : int
        Images in ``nsd_stimuli.hdf5`` (NSD: 73,000).
    stimulus_size : int
    hdf5_layout : {"nsd", "python"}
        ``"nsd"`` writes betas as h5py reads NSD's MATLAB files,
        ``(750, Z, Y, X)``; ``"python"`` writes ``(750, X, Y, Z)``.
    beta_dtype : {"int16", "float32"}
        int16 betas are ``round(300 * value)`` as NSD stores them.
    captions : bool
        Also write ``captions.json`` ({0-based 73k id: [two captions]}),
        a COCO-style ``captions_coco.json`` and ``nsd_stim_info_merged.csv``.
    seed : int

    Returns
    -------
    truth : dict
        ``values`` (session -> (750, n_voxels) float64 betas in percent
        signal change, voxels in C order of the ROI mask / lh-then-rh
        vertices, already rounded like the files), ``trial_ids`` (session ->
        0-based 73k ids of its trials), ``mask`` (volume bool mask or
        {"lh", "rh"} bool masks), ``roi_values``, ``stimuli`` (the image
        brick), ``shared`` (0-based ids), ``captions`` (id -> list) and
        ``caption_files`` where written.
    """
    import h5py
    import nibabel as nib
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    root = os.fspath(root)
    n_trials = TRIALS_PER_SESSION * n_sessions

    # Design: 1-based everywhere, as in nsd_expdesign.mat.
    subjectim = np.zeros((8, n_subject_images), dtype=np.int64)
    for s in range(8):
        subjectim[s] = np.sort(rng.choice(n_stimuli, size=n_subject_images, replace=False)) + 1
    if n_trials > 3 * n_subject_images:
        raise ValueError("NSD shows an image at most 3 times: raise n_subject_images")
    order = np.concatenate([rng.permutation(n_subject_images) for _ in range(3)])
    master = order[:n_trials] + 1
    shared = np.sort(
        rng.choice(subjectim[subject - 1], size=min(20, n_subject_images), replace=False)
    )
    exp_dir = os.path.join(root, "nsddata", "experiments", "nsd")
    os.makedirs(exp_dir, exist_ok=True)
    savemat(
        os.path.join(exp_dir, "nsd_expdesign.mat"),
        {
            "masterordering": master[None, :].astype(np.float64),
            "subjectim": subjectim.astype(np.float64),
            "sharedix": shared[None, :].astype(np.float64),
        },
    )

    stim_dir = os.path.join(root, "nsddata_stimuli", "stimuli", "nsd")
    os.makedirs(stim_dir, exist_ok=True)
    stimuli = rng.integers(
        0, 256, size=(n_stimuli, stimulus_size, stimulus_size, 3), dtype=np.uint8
    )
    with h5py.File(os.path.join(stim_dir, "nsd_stimuli.hdf5"), "w") as f:
        f.create_dataset("imgBrick", data=stimuli)

    subj = f"subj{subject:02d}"
    beta_dir = os.path.join(
        root, "nsddata_betas", "ppdata", subj, space, "betas_fithrf_GLMdenoise_RR"
    )
    os.makedirs(beta_dir, exist_ok=True)
    truth = {"values": {}, "trial_ids": {}, "stimuli": stimuli, "shared": shared - 1}

    def quantise(x):
        return (
            np.round(x * 300.0) / 300.0
            if beta_dtype == "int16"
            else x.astype(np.float32).astype(np.float64)
        )

    def encode(x):
        return (
            np.round(x * 300.0).astype(np.int16) if beta_dtype == "int16" else x.astype(np.float32)
        )

    if space == "fsaverage":
        label_dir = os.path.join(root, "nsddata", "freesurfer", "fsaverage", "label")
        os.makedirs(label_dir, exist_ok=True)
        masks, roi_values = {}, []
        for hemi, n in zip(("lh", "rh"), n_vertices):
            vals = rng.choice([-1, 0, 1, 2], size=n).astype(np.float32)
            vals[0] = 1  # at least one vertex
            nib.save(
                nib.MGHImage(vals.reshape(n, 1, 1), np.eye(4)),
                os.path.join(label_dir, f"{hemi}.nsdgeneral.mgz"),
            )
            masks[hemi] = vals > 0
            roi_values.append(vals[vals > 0])
        truth["mask"] = masks
        truth["roi_values"] = np.concatenate(roi_values)
    else:
        roi_dir = os.path.join(root, "nsddata", "ppdata", subj, space, "roi")
        os.makedirs(roi_dir, exist_ok=True)
        vals = rng.choice([-1, 0, 1], size=volume_shape, p=[0.2, 0.4, 0.4]).astype(np.int16)
        vals.flat[0] = 1
        nib.save(
            nib.Nifti1Image(vals, np.diag([1.8, 1.8, 1.8, 1.0])),
            os.path.join(roi_dir, "nsdgeneral.nii.gz"),
        )
        truth["mask"] = vals > 0
        truth["roi_values"] = vals[vals > 0]

    for s in range(1, n_sessions + 1):
        tenk = master[(s - 1) * TRIALS_PER_SESSION : s * TRIALS_PER_SESSION] - 1
        truth["trial_ids"][s] = subjectim[subject - 1, tenk] - 1
        if space == "fsaverage":
            parts = []
            for hemi, n in zip(("lh", "rh"), n_vertices):
                data = rng.normal(1.0, 2.0, size=(n, TRIALS_PER_SESSION))
                data = quantise(data)
                img = nib.MGHImage(encode(data).reshape(n, 1, 1, TRIALS_PER_SESSION), np.eye(4))
                nib.save(img, os.path.join(beta_dir, f"{hemi}.betas_session{s:02d}.mgh"))
                parts.append(data[truth["mask"][hemi]].T)
            truth["values"][s] = np.concatenate(parts, axis=1)
        else:
            vol = quantise(rng.normal(1.0, 2.0, size=volume_shape + (TRIALS_PER_SESSION,)))
            vol[~truth["mask"]] = 0.0  # NSD zeroes voxels outside its brain mask
            if hdf5_layout == "nsd":
                stored = np.transpose(vol, (3, 2, 1, 0))  # (750, Z, Y, X)
            elif hdf5_layout == "python":
                stored = np.transpose(vol, (3, 0, 1, 2))  # (750, X, Y, Z)
            else:
                raise ValueError(hdf5_layout)
            with h5py.File(os.path.join(beta_dir, f"betas_session{s:02d}.hdf5"), "w") as f:
                f.create_dataset("betas", data=encode(stored))
            truth["values"][s] = vol[truth["mask"]].T

    if captions:
        ids = np.unique(subjectim[subject - 1] - 1)
        table = {int(i): [f"picture number {i}", f"another view of {i}"] for i in ids}
        path = os.path.join(root, "captions.json")
        with open(path, "w") as f:
            json.dump({str(k): v for k, v in table.items()}, f)
        coco_ids = rng.choice(10**6, size=n_stimuli, replace=False)
        with open(os.path.join(exp_dir, "nsd_stim_info_merged.csv"), "w") as f:
            f.write(",cocoId,cocoSplit,nsdId\n")
            for nsd_id, coco in enumerate(coco_ids):
                f.write(f"{nsd_id},{coco},train2017,{nsd_id}\n")
        coco_path = os.path.join(root, "captions_coco.json")
        annotations = [
            {"image_id": int(coco_ids[i]), "id": k, "caption": text}
            for k, (i, texts) in enumerate(table.items())
            for text in texts[:1]
        ]
        with open(coco_path, "w") as f:
            json.dump({"images": [], "annotations": annotations}, f)
        truth["captions"] = table
        truth["caption_files"] = {"json": path, "coco": coco_path}
    return truth
