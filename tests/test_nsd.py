"""load_nsd on a fake NSD in the real layout and conventions."""

import os
import shutil

import h5py
import numpy as np
import pytest
from skvem.testing.datasets import make_fake_nsd

from skvem.datasets import load_nsd
from skvem.images import ImageSet
from skvem.metrics import noise_ceiling


def _expected(truth, sessions, zscore=True):
    """Per-image averages and repeats computed independently of the loader."""
    per_image = {}
    for s in sessions:
        x = truth["values"][s]
        if zscore:
            std = x.std(axis=0)
            x = np.where(std > 0, (x - x.mean(axis=0)) / np.where(std > 0, std, 1), 0.0)
        for t, nsd_id in enumerate(truth["trial_ids"][s]):
            per_image.setdefault(int(nsd_id), []).append(x[t])
    ids = np.array(sorted(per_image))
    mean = np.stack([np.mean(per_image[i], axis=0) for i in ids])
    return ids, mean, per_image


@pytest.fixture(scope="module")
def volume(tmp_path_factory):
    root = tmp_path_factory.mktemp("nsd_volume")
    truth = make_fake_nsd(root, subject=3, n_sessions=2, captions=True)
    return root, truth


def test_volume_betas(volume):
    root, truth = volume
    data = load_nsd(root, subject=3)
    ids, mean, per_image = _expected(truth, [1, 2])
    np.testing.assert_array_equal(data.ids, ids)
    assert data.fmri.dtype == np.float32
    np.testing.assert_allclose(data.fmri, mean, atol=2e-5)
    assert data.fmri.shape[1] == truth["mask"].sum()
    np.testing.assert_array_equal(data.voxel_indices, np.stack(np.nonzero(truth["mask"]), axis=1))
    np.testing.assert_array_equal(data.roi_values, truth["roi_values"])
    np.testing.assert_array_equal(data.n_repeats, [len(per_image[i]) for i in ids])
    # Repeats in presentation order, NaN-padded.
    i = int(np.flatnonzero(data.n_repeats == 3)[0])
    np.testing.assert_allclose(data.fmri_repeats[i], np.stack(per_image[ids[i]]), atol=2e-5)
    j = int(np.flatnonzero(data.n_repeats == 2)[0]) if np.any(data.n_repeats == 2) else None
    if j is not None:
        assert np.all(np.isnan(data.fmri_repeats[j, 2]))
    np.testing.assert_allclose(data.noise_ceiling, noise_ceiling(data.fmri_repeats))
    assert data.sessions == [1, 2] and data.space == "func1pt8mm" and data.subject == 3
    assert data.affine.shape == (4, 4) and list(data.rois) == ["nsdgeneral"]
    np.testing.assert_array_equal(data.shared, np.isin(ids, truth["shared"]))
    assert data.trials["session"].shape == (1500,) and data.trials["trial"][750] == 1


def test_images_are_lazy_views_of_the_brick(volume):
    root, truth = volume
    data = load_nsd(root, subject=3, sessions=[1])
    assert isinstance(data.images, ImageSet) and "hdf5" in repr(data.images)
    for k in (0, len(data.ids) - 1):
        np.testing.assert_array_equal(data.images.get_array(k), truth["stimuli"][data.ids[k]])
    np.testing.assert_array_equal(data.images.ids.astype(int), data.ids)


def test_session_selection_and_raw_betas(volume):
    root, truth = volume
    data = load_nsd(root, subject="subj03", sessions=2, zscore=False)
    ids, mean, _ = _expected(truth, [2], zscore=False)
    np.testing.assert_array_equal(data.ids, ids)
    # int16 / 300 = percent signal change.
    np.testing.assert_allclose(data.fmri, mean, atol=1e-5)
    assert set(data.trials["session"]) == {2}


def test_min_repeats_and_no_repeats(volume):
    root, truth = volume
    full = load_nsd(root, subject=3)
    three = load_nsd(root, subject=3, min_repeats=3)
    assert np.all(three.n_repeats == 3) and len(three.ids) == np.sum(full.n_repeats >= 3)
    rows = np.searchsorted(full.ids, three.ids)
    np.testing.assert_allclose(three.fmri, full.fmri[rows], atol=1e-6)
    dropped = three.trials["image_index"] == -1
    assert np.all(~np.isin(three.trials["nsd_id"][dropped], three.ids))
    light = load_nsd(root, subject=3, keep_repeats=False)
    assert light.fmri_repeats is None and light.noise_ceiling is None
    np.testing.assert_allclose(light.fmri, full.fmri, atol=1e-6)


def test_captions_json_and_coco(volume):
    root, truth = volume
    data = load_nsd(root, subject=3, sessions=[1], captions=truth["caption_files"]["json"])
    for k in (0, 5):
        assert data.captions[k] == truth["captions"][int(data.ids[k])]
        assert data.images.captions[k] == truth["captions"][int(data.ids[k])][0]
    coco = load_nsd(root, subject=3, sessions=[1], captions=[truth["caption_files"]["coco"]])
    np.testing.assert_array_equal(coco.images.captions, data.images.captions)
    with pytest.raises(FileNotFoundError, match="nsd_stim_info_merged.csv"):
        load_nsd(
            root,
            subject=3,
            sessions=[1],
            captions=truth["caption_files"]["coco"],
            stim_info=os.path.join(root, "nowhere.csv"),
        )


@pytest.mark.parametrize("layout, dtype", [("python", "int16"), ("nsd", "float32")])
def test_other_hdf5_layouts(tmp_path, layout, dtype):
    truth = make_fake_nsd(
        tmp_path,
        subject=1,
        n_sessions=1,
        hdf5_layout=layout,
        beta_dtype=dtype,
        volume_shape=(5, 4, 3),
    )
    data = load_nsd(tmp_path, subject=1)
    ids, mean, _ = _expected(truth, [1])
    np.testing.assert_allclose(data.fmri, mean, atol=2e-5)


def test_fsaverage(tmp_path):
    truth = make_fake_nsd(tmp_path, subject=1, n_sessions=2, space="fsaverage", n_vertices=(30, 40))
    data = load_nsd(tmp_path, subject=1, space="fsaverage", verbose=True)
    ids, mean, _ = _expected(truth, [1, 2])
    np.testing.assert_array_equal(data.ids, ids)
    np.testing.assert_allclose(data.fmri, mean, atol=2e-5)
    n_lh = truth["mask"]["lh"].sum()
    assert data.hemisphere_slices == {"lh": slice(0, n_lh), "rh": slice(n_lh, data.fmri.shape[1])}
    np.testing.assert_array_equal(data.vertices["rh"], np.flatnonzero(truth["mask"]["rh"]))
    np.testing.assert_array_equal(data.roi_values, truth["roi_values"])


def test_missing_files(volume, tmp_path):
    root, truth = volume
    with pytest.raises(FileNotFoundError, match="betas_session03.hdf5") as err:
        load_nsd(root, subject=3, sessions=[1, 3])
    assert "Expected NSD layout" in str(err.value)
    with pytest.raises(FileNotFoundError, match="subj01"):
        load_nsd(root, subject=1)
    with pytest.raises(FileNotFoundError, match="prf-visualrois.nii.gz"):
        load_nsd(root, subject=3, roi="prf-visualrois")
    with pytest.raises(FileNotFoundError, match="nsd_expdesign.mat"):
        load_nsd(tmp_path, subject=3)


def test_mismatched_files(tmp_path):
    make_fake_nsd(tmp_path, subject=1, n_sessions=1, volume_shape=(5, 4, 3))
    with pytest.raises(ValueError, match="does not match the ROI volume \\(4, 4, 4\\)"):
        load_nsd(tmp_path, subject=1, roi=np.ones((4, 4, 4)))
    # A second session's betas, but the design lists only 750 trials.
    path = os.path.join(
        tmp_path,
        "nsddata_betas",
        "ppdata",
        "subj01",
        "func1pt8mm",
        "betas_fithrf_GLMdenoise_RR",
        "betas_session01.hdf5",
    )
    shutil.copy(path, path.replace("session01", "session02"))
    with pytest.raises(ValueError, match="needs trials 751-1500"):
        load_nsd(tmp_path, subject=1, sessions=[1, 2])
    with h5py.File(path, "w") as f:
        f.create_dataset("betas", data=np.zeros((700, 3, 4, 5), dtype=np.int16))
    with pytest.raises(ValueError, match="750 trials"):
        load_nsd(tmp_path, subject=1, sessions=[1])
    with pytest.raises(ValueError, match="space"):
        load_nsd(tmp_path, subject=1, space="mni")


def test_nan_betas_count_as_missing(tmp_path):
    make_fake_nsd(tmp_path, subject=1, n_sessions=1, beta_dtype="float32", volume_shape=(5, 4, 3))
    path = os.path.join(
        tmp_path,
        "nsddata_betas",
        "ppdata",
        "subj01",
        "func1pt8mm",
        "betas_fithrf_GLMdenoise_RR",
        "betas_session01.hdf5",
    )
    clean = load_nsd(tmp_path, subject=1, min_repeats=2)
    trial = int(np.flatnonzero(clean.trials["image_index"] >= 0)[0])  # a trial that is kept
    with h5py.File(path, "r+") as f:
        z, y, x = (int(v) for v in clean.voxel_indices[0][::-1])
        f["betas"][trial, z, y, x] = np.nan
    with pytest.warns(UserWarning, match="1 single-trial betas are NaN"):
        data = load_nsd(tmp_path, subject=1, min_repeats=2)
    assert np.all(np.isfinite(data.fmri))
    np.testing.assert_allclose(data.fmri, np.nanmean(data.fmri_repeats, axis=1), atol=1e-6)
    assert np.isnan(data.fmri_repeats).sum() == np.isnan(clean.fmri_repeats).sum() + 1


def test_bad_roi_argument(volume):
    root, _ = volume
    with pytest.raises(ValueError, match="roi"):
        load_nsd(root, subject=3, roi={"lh": np.ones(3)})
    with pytest.raises(ValueError, match="roi"):
        load_nsd(root, subject=3, space="fsaverage", roi=np.ones(3))
    with pytest.raises(ValueError, match="selects no voxel"):
        load_nsd(root, subject=3, roi=np.zeros((6, 5, 4)))


# Issue 13, item 11: every wrong file or parameter is named


@pytest.mark.parametrize("sessions", [1.5, "1", [1.5], [], [0], [True], object()])
def test_bad_sessions_name_the_parameter(volume, sessions):
    root, _ = volume
    with pytest.raises(ValueError, match=r"sessions must be None, a 1-based session number"):
        load_nsd(root, subject=3, sessions=sessions)


@pytest.mark.parametrize("content, match", [
    (b"{not json", "is not valid JSON"),
    (b"\xff\xfe\x00garbage", "is not UTF-8 text"),
    (b"[1, 2, 3]", "holds a JSON list"),
    (b'{"12": 5}', "must be a string or a list of strings"),
    (b'{"annotations": [{"id": 1}]}', "annotation 0 needs an integer 'image_id'"),
    (b'{"annotations": 3}', "'annotations' must be a list"),
])
def test_invalid_captions_json_names_the_file(volume, tmp_path, content, match):
    root, _ = volume
    path = tmp_path / "captions.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"captions file .*captions\.json.*{match}"):
        load_nsd(root, subject=3, sessions=[1], captions=str(path))
    with pytest.raises(TypeError, match="captions must be a path"):
        load_nsd(root, subject=3, sessions=[1], captions=3)


def _copy(volume, tmp_path):
    root, _ = volume
    shutil.copytree(root, tmp_path / "nsd")
    return tmp_path / "nsd"


@pytest.mark.parametrize("target, match", [
    ("nsddata_betas/ppdata/subj03/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_session01.hdf5",
     r"betas_session01\.hdf5.*not a readable HDF5 file of betas"),
    ("nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5", r"nsd_stimuli\.hdf5.*as an HDF5 file"),
    ("nsddata/experiments/nsd/nsd_expdesign.mat", r"nsd_expdesign\.mat.*not a readable MATLAB"),
    ("nsddata/ppdata/subj03/func1pt8mm/roi/nsdgeneral.nii.gz", r"nsdgeneral\.nii\.gz.*ROI volume"),
])
def test_garbage_files_are_named(volume, tmp_path, target, match):
    root = _copy(volume, tmp_path)
    (root / target).write_bytes(np.random.RandomState(0).bytes(2048))
    with pytest.raises((ValueError, OSError), match=match) as err:
        load_nsd(root, subject=3, sessions=[1])
    assert isinstance(err.value, ValueError) or type(err.value).__name__ == "ImageLoadError"
