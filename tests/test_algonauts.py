"""load_algonauts2023 / write_algonauts_submission on fake data in the real layout."""

import os
import pickle
import shutil

import numpy as np
import pytest
from skvem.testing.datasets import ALGONAUTS_ROI_NAMES, make_fake_algonauts, write_evil_mapping

from skvem.datasets import load_algonauts2023, write_algonauts_submission
from skvem.datasets._safe_pickle import UnsafePickleError, load_npy_object, load_pickled_dict
from skvem.images import ImageSet


@pytest.fixture
def fake(tmp_path):
    truth = make_fake_algonauts(
        tmp_path, subject=2, n_train=12, n_test=4, n_voxels=(10, 12), test_fmri=True
    )
    return tmp_path, truth


def test_load_matches_files(fake):
    root, truth = fake
    data = load_algonauts2023(root, subject=2)
    assert data.subject == 2
    np.testing.assert_array_equal(data.fmri, np.concatenate([truth["lh"], truth["rh"]], axis=1))
    assert data.fmri.dtype == np.float32
    assert data.hemisphere_slices == {"lh": slice(0, 10), "rh": slice(10, 22)}
    assert isinstance(data.images, ImageSet) and len(data.images) == 12
    np.testing.assert_array_equal(data.images.ids.astype(int), truth["train_ids"])
    np.testing.assert_array_equal(data.test_images.ids.astype(int), truth["test_ids"])
    assert data.images.get_array(0).shape == (8, 8, 3)
    np.testing.assert_array_equal(
        data.test_fmri, np.concatenate([truth["test_lh"], truth["test_rh"]], axis=1)
    )
    nc = np.concatenate([truth["noise_ceiling"]["lh"], truth["noise_ceiling"]["rh"]])
    np.testing.assert_allclose(data.noise_ceiling, 100 * nc, rtol=1e-6)
    np.testing.assert_array_equal(data.fsaverage_vertices["lh"], truth["fsaverage"]["lh"])
    assert data.roi_groups["floc-faces"] == ALGONAUTS_ROI_NAMES["floc-faces"]


def test_rois_index_the_concatenated_columns(fake):
    root, truth = fake
    data = load_algonauts2023(root, subject="subj02")
    for roi_file, names in ALGONAUTS_ROI_NAMES.items():
        for k, name in enumerate(names, start=1):
            lh = np.flatnonzero(truth["labels"][roi_file]["lh"] == k)
            rh = np.flatnonzero(truth["labels"][roi_file]["rh"] == k) + 10
            np.testing.assert_array_equal(data.rois[name], np.concatenate([lh, rh]))
            np.testing.assert_array_equal(data.hemisphere_rois["lh"].get(name, lh), lh)
            np.testing.assert_array_equal(data.hemisphere_rois["rh"].get(name, rh), rh)
    assert "Unknown" not in data.rois


def test_root_may_be_the_subject_folder_and_rois_optional(fake):
    root, truth = fake
    data = load_algonauts2023(os.path.join(root, "subj02"), 2, rois=["prf-visualrois"])
    assert set(data.rois) <= set(ALGONAUTS_ROI_NAMES["prf-visualrois"])
    shutil.rmtree(os.path.join(root, "subj02", "roi_masks"))
    shutil.rmtree(os.path.join(root, "subj02", "test_split", "noise_ceiling"))
    data = load_algonauts2023(root, 2, rois=False)
    assert data.rois == {} and data.noise_ceiling is None and data.fsaverage_vertices is None
    with pytest.raises(FileNotFoundError, match="roi_masks"):
        load_algonauts2023(root, 2)


@pytest.mark.parametrize(
    "relpath",
    [
        "training_split/training_fmri/rh_training_fmri.npy",
        "roi_masks/mapping_floc-words.npy",
        "roi_masks/lh.streams_challenge_space.npy",
        "test_split/test_images",
    ],
)
def test_missing_file_names_path_and_layout(fake, relpath):
    root, _ = fake
    path = os.path.join(root, "subj02", relpath)
    shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    with pytest.raises(FileNotFoundError) as err:
        load_algonauts2023(root, 2)
    assert os.path.basename(relpath) in str(err.value)
    assert "Expected Algonauts 2023 layout" in str(err.value)


def test_missing_subject(fake):
    root, _ = fake
    with pytest.raises(FileNotFoundError, match="subj05"):
        load_algonauts2023(root, 5)
    with pytest.raises(ValueError, match="subject"):
        load_algonauts2023(root, 9)


def test_mismatched_shapes(fake):
    root, truth = fake
    fmri_dir = os.path.join(root, "subj02", "training_split", "training_fmri")
    np.save(os.path.join(fmri_dir, "rh_training_fmri.npy"), truth["rh"][:11])
    with pytest.raises(ValueError, match="rh training fMRI has 11 rows but there are 12 images"):
        load_algonauts2023(root, 2)
    np.save(os.path.join(fmri_dir, "rh_training_fmri.npy"), truth["rh"])
    mask = os.path.join(root, "subj02", "roi_masks", "rh.floc-faces_challenge_space.npy")
    np.save(mask, np.zeros(5, dtype=np.int32))
    with pytest.raises(ValueError, match="rh.floc-faces_challenge_space.npy.*12 vertices"):
        load_algonauts2023(root, 2)
    np.save(mask, np.full(12, 99, dtype=np.int32))
    with pytest.raises(ValueError, match="labels \\[99\\]"):
        load_algonauts2023(root, 2)
    np.save(mask, truth["labels"]["floc-faces"]["rh"])
    nc = os.path.join(root, "subj02", "test_split", "noise_ceiling", "lh_noise_ceiling.npy")
    np.save(nc, np.zeros(3))
    with pytest.raises(ValueError, match="lh_noise_ceiling.npy.*10 vertices"):
        load_algonauts2023(root, 2)


def test_badly_numbered_images(fake):
    root, _ = fake
    folder = os.path.join(root, "subj02", "training_split", "training_images")
    first = sorted(os.listdir(folder))[2]
    os.remove(os.path.join(folder, first))
    with pytest.raises(ValueError, match="train-0003 is missing"):
        load_algonauts2023(root, 2)
    shutil.copy(
        os.path.join(folder, sorted(os.listdir(folder))[0]), os.path.join(folder, "photo.png")
    )
    with pytest.raises(ValueError, match="photo.png"):
        load_algonauts2023(root, 2)


def test_noise_ceiling_in_percent_already_warns(fake):
    root, truth = fake
    folder = os.path.join(root, "subj02", "test_split", "noise_ceiling")
    for hemi in ("lh", "rh"):
        np.save(
            os.path.join(folder, f"{hemi}_noise_ceiling.npy"), 100 * truth["noise_ceiling"][hemi]
        )
    with pytest.warns(UserWarning, match="percent"):
        data = load_algonauts2023(root, 2)
    assert data.noise_ceiling.max() > 1


def test_mapping_that_runs_code_is_refused(fake, tmp_path):
    root, _ = fake
    marker = tmp_path / "pwned"
    evil = os.path.join(root, "subj02", "roi_masks", "mapping_floc-faces.npy")
    write_evil_mapping(evil, f"touch {marker}")
    # The file does run code when loaded the devkit's way ...
    if os.name == "posix":
        probe = tmp_path / "probe"
        write_evil_mapping(tmp_path / "probe.npy", f"touch {probe}")
        np.load(tmp_path / "probe.npy", allow_pickle=True)
        assert probe.exists()
    # ... but not through the loader.
    with pytest.raises(UnsafePickleError, match="system"):
        load_algonauts2023(root, 2)
    assert not marker.exists()
    assert issubclass(UnsafePickleError, pickle.UnpicklingError)


class _Eval:
    def __reduce__(self):
        return (eval, ("1 + 1",))


def test_safe_pickle_admits_plain_data_only(tmp_path):
    good = {
        0: "Unknown",
        1: "V1v",
        np.int64(2): "V1d",
        "a": np.arange(3),
        "f": np.float32(0.5),
        "t": (1, 2.0, None, True),
        "s": {1, 2},
    }
    np.save(tmp_path / "good.npy", good)
    assert load_pickled_dict(tmp_path / "good.npy")["s"] == {1, 2}
    with open(tmp_path / "bare.pkl", "wb") as f:
        pickle.dump(good, f, protocol=2)  # bytes go through _codecs.encode
    back = load_pickled_dict(tmp_path / "bare.pkl")
    np.testing.assert_array_equal(back["a"], np.arange(3))
    assert back[np.int64(2)] == "V1d" and back["t"] == (1, 2.0, None, True)
    np.save(tmp_path / "num.npy", np.arange(4.0))
    np.testing.assert_array_equal(load_npy_object(tmp_path / "num.npy"), np.arange(4.0))
    with open(tmp_path / "eval.pkl", "wb") as f:
        pickle.dump({"x": _Eval()}, f)
    with pytest.raises(UnsafePickleError, match="builtins.eval"):
        load_pickled_dict(tmp_path / "eval.pkl")
    np.save(tmp_path / "list.npy", np.array([1, "x"], dtype=object))
    with pytest.raises(ValueError, match="expected a pickled dict"):
        load_pickled_dict(tmp_path / "list.npy")


def test_write_submission(fake, tmp_path):
    root, _ = fake
    data = load_algonauts2023(root, 2)
    pred = np.random.default_rng(0).standard_normal((4, 22))
    lh_path, rh_path = write_algonauts_submission(tmp_path / "sub", 2, pred, data.hemisphere_slices)
    assert lh_path.endswith(os.path.join("subj02", "lh_pred_test.npy"))
    lh, rh = np.load(lh_path), np.load(rh_path)
    assert lh.dtype == np.float32 and rh.dtype == np.float32
    np.testing.assert_allclose(np.concatenate([lh, rh], axis=1), pred, rtol=1e-6)
    paths = write_algonauts_submission(tmp_path / "sub2", "subj02", pred, 10)
    np.testing.assert_array_equal(np.load(paths[1]), rh)


@pytest.mark.parametrize(
    "pred, split, match",
    [
        (np.zeros(22), 10, "2-D"),
        (np.full((4, 22), np.nan), 10, "NaN"),
        (np.zeros((4, 22)), 22, "n_lh=22"),
        (np.zeros((4, 22)), {"lh": slice(0, 10), "rh": slice(10, 20)}, "cover 10 \\+ 10 columns"),
        (np.zeros((4, 22)), {"lh": slice(0, 12), "rh": slice(10, 22)}, "disjoint"),
        (np.zeros((4, 22)), "lh", "hemisphere_slices"),
    ],
)
def test_write_submission_checks_shapes(tmp_path, pred, split, match):
    with pytest.raises(ValueError, match=match):
        write_algonauts_submission(tmp_path, 1, pred, split)
    assert not os.path.exists(tmp_path / "subj01")


def test_write_submission_strict_official_sizes(tmp_path):
    with pytest.raises(ValueError, match="159 test images x \\(19004 lh \\+ 20544 rh\\)"):
        write_algonauts_submission(tmp_path, 1, np.zeros((4, 22)), 10, strict=True)


# Issue 13, item 9: every .npy format version through public numpy API; garbage named


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
def test_mapping_files_of_every_npy_format(tmp_path, version):
    mapping = {0: "Unknown", 1: "V1v", 2: "FFA-1", 3: "lieu-été"}
    array = np.empty((), dtype=object)
    array[()] = mapping
    path = tmp_path / f"mapping_{version[0]}.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array(f, array, version=version, allow_pickle=True)
    with open(path, "rb") as f:
        assert np.lib.format.read_magic(f) == version
    assert load_pickled_dict(path) == mapping
    numeric = tmp_path / f"numeric_{version[0]}.npy"
    with open(numeric, "wb") as f:
        np.lib.format.write_array(f, np.arange(3.0), version=version)
    np.testing.assert_array_equal(load_npy_object(numeric), np.arange(3.0))


@pytest.mark.parametrize("content", [
    b"\x93NUMPY\x03\x00" + b"\xff" * 40,  # a 3.0 magic with a garbage header
    b"\x93NUMPY\x03\x00\x10\x00\x00\x00{'descr': 1}    ",  # a header without the fields
    b"\x93NUMPY\x09\x00" + b"\x00" * 40,  # an unknown version
    b"\x93NUMPY\x01\x00",  # cut after the magic
    bytes(range(256)) * 4,  # random bytes
    b"",  # empty
], ids=["garbage-3.0-header", "incomplete-header", "unknown-version", "cut", "random", "empty"])
def test_garbage_mapping_files_name_the_file(tmp_path, content):
    path = tmp_path / "mapping_prf-visualrois.npy"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"mapping_prf-visualrois\.npy"):
        load_pickled_dict(path)


def test_a_truncated_object_payload_names_the_file(tmp_path):
    path = tmp_path / "mapping.npy"
    np.save(path, {i: f"roi{i}" for i in range(50)})
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(ValueError, match=r"mapping\.npy: not a readable"):
        load_pickled_dict(path)


# Issue 13, item 7: a submission is both files or neither


def _previous_submission(tmp_path):
    write_algonauts_submission(tmp_path, 1, np.ones((3, 5)), 2)
    folder = tmp_path / "subj01"
    return folder, {p.name: np.load(p) for p in folder.iterdir()}


def test_a_failed_write_leaves_the_previous_submission(tmp_path, monkeypatch):
    from skvem.datasets import _algonauts_submission as sub

    folder, before = _previous_submission(tmp_path)
    original = sub._save

    def disk_full_on_rh(path, array):
        if os.path.basename(path).startswith("rh_"):
            raise OSError(28, "No space left on device")
        original(path, array)

    monkeypatch.setattr(sub, "_save", disk_full_on_rh)
    with pytest.raises(OSError, match="No space left"):
        write_algonauts_submission(tmp_path, 1, np.zeros((3, 5)), 2)
    assert sorted(p.name for p in folder.iterdir()) == sorted(before)  # no temporary left
    for name, array in before.items():
        np.testing.assert_array_equal(np.load(folder / name), array)


def test_a_failed_rename_puts_the_first_file_back(tmp_path, monkeypatch):
    from skvem.datasets import _algonauts_submission as sub

    folder, before = _previous_submission(tmp_path)
    real_replace = os.replace

    def failing_replace(src, dst):
        if os.path.basename(dst) == "rh_pred_test.npy" and ".tmp-" in os.path.basename(src):
            raise PermissionError(13, "Permission denied", dst)
        real_replace(src, dst)

    monkeypatch.setattr(sub.os, "replace", failing_replace)
    with pytest.raises(PermissionError):
        write_algonauts_submission(tmp_path, 1, np.zeros((3, 5)), 2)
    monkeypatch.undo()
    assert sorted(p.name for p in folder.iterdir()) == sorted(before)
    for name, array in before.items():
        np.testing.assert_array_equal(np.load(folder / name), array)
    # and a first submission that fails half-way leaves no file at all
    monkeypatch.setattr(sub.os, "replace", failing_replace)
    with pytest.raises(PermissionError):
        write_algonauts_submission(tmp_path / "new", 1, np.zeros((3, 5)), 2)
    assert list((tmp_path / "new" / "subj01").iterdir()) == []


# Issue 13, item 11: damaged or wrong files are named


def test_nan_roi_labels_name_the_file(fake):
    root, _ = fake
    path = os.path.join(root, "subj02", "roi_masks", "lh.floc-faces_challenge_space.npy")
    mask = np.load(path).astype(np.float64)
    mask[3] = np.nan
    np.save(path, mask)
    with pytest.raises(ValueError, match=r"lh\.floc-faces_challenge_space\.npy.*1 NaN.*vertex 3"):
        load_algonauts2023(root, 2)
    mask[3] = 1.5
    np.save(path, mask)
    with pytest.raises(ValueError, match=r"non-integer ROI label 1\.5 at vertex 3"):
        load_algonauts2023(root, 2)
    mask[3] = 1.0  # float labels that are integers are fine
    np.save(path, mask)
    load_algonauts2023(root, 2)


def test_garbage_fmri_file_names_the_file(fake):
    root, _ = fake
    path = os.path.join(root, "subj02", "training_split", "training_fmri", "rh_training_fmri.npy")
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY garbage")
    with pytest.raises(ValueError, match=r"rh_training_fmri\.npy.*rh training fMRI.*not a readable"):
        load_algonauts2023(root, 2)


def test_a_validation_fraction_too_small_fails_before_any_fit(fake, tmp_path, monkeypatch, capsys):
    # issue 13 item 11: `skvem algonauts --validation-fraction 0.01` on a small split
    import skvem.app.algonauts as job_module
    from skvem.app.cli import main

    root, _ = fake

    def no_model(*args, **kwargs):
        raise AssertionError("a model was built before the split was checked")

    monkeypatch.setattr(job_module, "build_llm_vem", no_model)
    code = main(["algonauts", "--root", str(root), "--subject", "2", "--out", str(tmp_path / "o"),
                 "--validation-fraction", "0.01", "--no-figures"])
    err = capsys.readouterr().err
    assert code == 2
    assert "validation_fraction=0.01 of 12 training images leaves 1 for validation" in err
