"""The ``skvem`` command, end to end on tiny data and tiny local models."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from skvem.app.cli import build_parser, main

from skvem.testing import datasets as fake
from skvem.testing import language_models as tiny


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "caption", "algonauts"):
        assert command in out
    assert main([]) == 0  # no command: help, success


@pytest.mark.parametrize("command", ["demo", "caption", "algonauts"])
def test_every_option_is_explained(command):
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    for action in sub._actions:
        assert action.help, f"{command} {action.option_strings or action.dest} has no help"


def test_python_dash_m_runs(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "skvem", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("skvem ")


def test_bad_demo_settings_are_one_line(capsys):
    assert main(["demo", "--folds", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "skvem demo: error: --folds must be an integer >= 2; got 1."


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], "--epochs must be an integer >= 1"),
    (["--n-images", "20", "--folds", "2"], "--n-images=20 is too small for --folds=2"),
    (["--alignment-weight", "0"], "--alignment-weight must be a finite number > 0"),
    (["--seed", "-3"], "--seed must be an integer >= 0"),
])
def test_demo_checks_every_setting_before_any_model_runs(argv, message, capsys, monkeypatch, tmp_path):
    import skvem.datasets

    monkeypatch.setattr(skvem.datasets, "make_scenes", lambda *a, **k: pytest.fail("work started"))
    assert main(["demo", *argv, "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err


def test_demo_runs_the_from_scratch_pair_except_when_quick():
    from skvem.app.demo import DemoSettings

    assert DemoSettings().from_scratch and not DemoSettings.quick().from_scratch
    args = build_parser().parse_args(["demo", "--quick", "--from-scratch"])
    assert args.from_scratch is True
    assert build_parser().parse_args(["demo"]).from_scratch is None  # the settings decide


def test_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "--n-images", "46", "--folds", "2", "--epochs", "1", "--no-from-scratch",
                 "--no-progress", "--out", str(out)])
    assert code == 0
    table = capsys.readouterr().out
    models = ["frozen (pretrained)", "fine-tuned, no language", "fine-tuned + language",
              "shuffled descriptions", "oracle"]
    for row in models + ["noise ceiling", "alignment (language - no language)"]:
        assert row in table
    results = json.loads((out / "results.json").read_text())
    assert list(results["models"]) == models
    for entry in results["models"].values():
        assert set(entry["scores"]) == {"early", "color", "category", "semantic", "all"}
        assert all(len(v) == 2 and np.all(np.isfinite(v)) for v in entry["scores"].values())
    # The effects are the per-fold paired differences of the same folds.
    m = results["models"]
    for label, a, b in (("alignment (language - no language)", "fine-tuned + language", "fine-tuned, no language"),
                        ("pairing (language - shuffled)", "fine-tuned + language", "shuffled descriptions")):
        np.testing.assert_allclose(results["effects"][label]["category"],
                                   np.subtract(m[a]["scores"]["category"], m[b]["scores"]["category"]))
    assert "from scratch: language - no language" not in results["effects"]
    assert (out / "results.png").stat().st_size > 1000


@pytest.fixture(scope="module")
def tiny_blip(tmp_path_factory):
    return tiny.make_tiny_blip(tmp_path_factory.mktemp("blip"))


def test_caption_files_folders_and_hdf5(tmp_path, tiny_blip, capsys):
    import h5py

    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    with h5py.File(tmp_path / "stim.hdf5", "w") as f:
        f.create_dataset("imgBrick", data=rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8))
    out = tmp_path / "captions.jsonl"
    code = main(["caption", str(folder), str(tmp_path / "stim.hdf5"), "--model", str(tiny_blip),
                 "--max-new-tokens", "5", "--out", str(out), "--device", "cpu"])
    assert code == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["image"] for r in records] == [
        str(folder / "0.png"), str(folder / "1.png"), str(folder / "2.png"),
        f"{tmp_path / 'stim.hdf5'}:imgBrick[0]", f"{tmp_path / 'stim.hdf5'}:imgBrick[1]",
    ]
    assert all(isinstance(r["caption"], str) for r in records)
    assert not (tmp_path / "captions.jsonl.partial").exists()


def test_caption_errors_are_one_line(tmp_path, tiny_blip, capsys):
    assert main(["caption", str(tmp_path / "nope.png"), "--model", str(tiny_blip),
                 "--out", str(tmp_path / "c.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.png" in err
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    assert main(["caption", str(tmp_path / "a.png"), "--model", str(tmp_path / "no-model"),
                 "--out", str(tmp_path / "c.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no-model" in err


def test_algonauts_end_to_end(tmp_path, tiny_blip, capsys):
    root = tmp_path / "algonauts"
    fake.make_fake_algonauts(root, subject=2, n_train=24, n_test=5, n_voxels=(7, 9), image_size=32)
    clip = tiny.make_tiny_open_clip(tmp_path / "clip")
    out = tmp_path / "submission"
    code = main([
        "algonauts", "--root", str(root), "--subject", "2", "--out", str(out),
        "--backbone", "small-cnn", "--pretrained", "none", "--captioner", str(tiny_blip), "--max-new-tokens", "5",
        "--text-model", f"local-dir:{clip}", "--text-pretrained", "none",
        "--epochs", "1", "--batch-size", "8", "--n-components", "4", "--device", "cpu",
        "--validation-fraction", "0.25",
    ])
    assert code == 0, capsys.readouterr().err
    captured = capsys.readouterr()
    assert "Subject 2: validation on 6 held-out training images" in captured.out
    assert "Leaderboard (mean noise-normalised score (%)" in captured.out
    lh = np.load(out / "subj02" / "lh_pred_test.npy")
    rh = np.load(out / "subj02" / "rh_pred_test.npy")
    assert lh.shape == (5, 7) and rh.shape == (5, 9) and lh.dtype == np.float32
    saved = json.loads((out / "subj02_report.json").read_text())
    assert saved["validation"][0]["roi"] == "all" and saved["n_train"] == 18
    assert (out / "subj02_rois.png").stat().st_size > 1000
    # The default fake layout's fsaverage masks are 50 long: no surface map, said why.
    assert not (out / "subj02_surface.png").exists()
    assert any("no surface map" in note and "50 entries" in note for note in saved["notes"])


def test_algonauts_missing_root_is_one_line(tmp_path, capsys):
    assert main(["algonauts", "--root", str(tmp_path / "none"), "--subject", "1",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "subj01" in err


# All subjects, resuming, the zip and the leaderboard: language-free tiny models
# (no captioner or text model is loaded) on two tiny subjects.
FAST = ["--backbone", "small-cnn", "--pretrained", "none", "--alignment-weight", "0",
        "--epochs", "1", "--batch-size", "8", "--n-components", "3", "--device", "cpu",
        "--validation-fraction", "0.25"]


@pytest.fixture
def two_subjects(tmp_path):
    root = tmp_path / "algonauts"
    for subject in (1, 2):
        fake.make_fake_algonauts(root, subject=subject, n_train=16, n_test=3, n_voxels=(6, 8),
                                 image_size=32, fsaverage_size=10242, seed=subject)
    return root


@pytest.fixture
def fitted(monkeypatch):
    """Record the subjects fit_subject is called for; raise for those in ``fail``."""
    from skvem.app import algonauts

    calls, fail = [], set()
    real = algonauts.fit_subject

    def spy(job, subject, out):
        calls.append(subject)
        if subject in fail:
            raise RuntimeError("simulated crash")
        return real(job, subject, out)

    monkeypatch.setattr(algonauts, "fit_subject", spy)
    return calls, fail


def test_algonauts_all_subjects(tmp_path, two_subjects, capsys):
    import zipfile

    from joblib import parallel_config

    out = tmp_path / "out"
    with parallel_config(backend="threading"):
        code = main(["algonauts", "--root", str(two_subjects), "--subjects", "all",
                     "--n-jobs", "2", "--out", str(out), *FAST])
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    for subject in (1, 2):
        assert f"Subject {subject}: validation on 4 held-out" in printed
        assert np.load(out / f"subj0{subject}" / "lh_pred_test.npy").shape == (3, 6)
        assert np.load(out / f"subj0{subject}" / "rh_pred_test.npy").shape == (3, 8)
        for name in ("rois.png", "surface.png", "report.json", "validation.npz", "done.json"):
            assert (out / f"subj0{subject}_{name}").stat().st_size > 0
    with zipfile.ZipFile(out / "algonauts_2023_challenge_submission.zip") as archive:
        assert sorted(archive.namelist()) == [
            "subj01/lh_pred_test.npy", "subj01/rh_pred_test.npy",
            "subj02/lh_pred_test.npy", "subj02/rh_pred_test.npy"]
        with archive.open("subj02/rh_pred_test.npy") as f:
            np.testing.assert_array_equal(np.load(f), np.load(out / "subj02" / "rh_pred_test.npy"))
    # The leaderboard is the mean over vertices: per subject and hemisphere, then pooled.
    board = json.loads((out / "leaderboard.json").read_text())
    per_vertex = [np.load(out / f"subj0{s}_validation.npz")["algonauts_score"] for s in (1, 2)]
    assert [row["subject"] for row in board["subjects"]] == [1, 2]
    for row, scores in zip(board["subjects"], per_vertex):
        assert row["lh"]["algonauts_score"] == pytest.approx(np.nanmean(scores[:6]))
        assert row["rh"]["algonauts_score"] == pytest.approx(np.nanmean(scores[6:]))
    assert board["score"] == pytest.approx(np.nanmean(np.concatenate(per_vertex)))
    assert board["all subjects"]["lh"]["algonauts_score"] == pytest.approx(
        np.nanmean(np.concatenate([s[:6] for s in per_vertex])))
    assert f"{board['score']:.1f}" in printed.split("Leaderboard")[1]
    markdown = (out / "report.md").read_text()
    assert "| all subjects |" in markdown and "## Subject 2" in markdown
    assert (out / "rois.png").stat().st_size > 1000


def test_algonauts_resumes_after_a_failed_subject(tmp_path, two_subjects, fitted, capsys):
    calls, fail = fitted
    out = tmp_path / "out"
    command = ["algonauts", "--root", str(two_subjects), "--subjects", "1,2", "--out", str(out),
               "--no-figures", *FAST]
    fail.add(2)
    assert main(command) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "subject 2 failed (RuntimeError: simulated crash)" in err and "resume" in err
    assert calls == [1, 2]
    # Subject 1 is finished and kept; subject 2 has no marker and no zip was made.
    assert (out / "subj01_done.json").exists() and (out / "subj01" / "lh_pred_test.npy").exists()
    assert not (out / "subj02_done.json").exists()
    assert not (out / "algonauts_2023_challenge_submission.zip").exists()
    first = np.load(out / "subj01" / "lh_pred_test.npy")

    fail.clear()
    calls.clear()
    assert main(command) == 0, capsys.readouterr().err
    assert calls == [2]  # subject 1 is not fitted again
    np.testing.assert_array_equal(np.load(out / "subj01" / "lh_pred_test.npy"), first)
    assert (out / "subj02_done.json").exists()
    assert "Subject 1: validation" in capsys.readouterr().out

    # A run with other settings refits everything; a damaged marker refits its subject.
    calls.clear()
    (out / "subj02_done.json").write_text("{not json")
    assert main(command) == 0
    assert calls == [2]
    calls.clear()
    assert main([*command, "--seed", "1"]) == 0
    assert calls == [1, 2]


@pytest.mark.parametrize("subjects, message", [
    ("1,3", "subject 3: its folder"),
    ("1,1", "lists subject 1 twice"),
    ("1,9", "between 1 and 8; got 9"),
    ("one", "--subjects must be 'all' or numbers"),
])
def test_algonauts_bad_subjects_fail_before_fitting(tmp_path, two_subjects, fitted, capsys,
                                                    subjects, message):
    calls, _ = fitted
    assert main(["algonauts", "--root", str(two_subjects), "--subjects", subjects,
                 "--out", str(tmp_path / "out"), *FAST]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert calls == []


def test_algonauts_all_needs_a_subject_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["algonauts", "--root", str(tmp_path / "empty"), "--subjects", "all",
                 "--out", str(tmp_path / "out")]) == 2
    assert "no subject folder (subj01 ... subj08)" in capsys.readouterr().err


def test_algonauts_leaderboard_pools_vertices_and_works_without_ceilings():
    from skvem.app.algonauts_report import format_leaderboard, leaderboard

    def report(subject, lh, rh):
        parts = {"lh": lh, "rh": rh}
        parts["all"] = {"n_voxels": lh["n_voxels"] + rh["n_voxels"],
                        "mean_r": (lh["mean_r"] * lh["n_voxels"] + rh["mean_r"] * rh["n_voxels"])
                        / (lh["n_voxels"] + rh["n_voxels"])}
        return {"subject": subject, "hemispheres": parts}

    reports = [report(1, {"n_voxels": 10, "mean_r": 0.2}, {"n_voxels": 30, "mean_r": 0.4}),
               report(3, {"n_voxels": 30, "mean_r": 0.6}, {"n_voxels": 10, "mean_r": 0.0})]
    board = leaderboard(reports)
    assert board["score"] is None  # no noise ceilings: no noise-normalised score
    assert board["all subjects"]["lh"]["mean_r"] == pytest.approx((0.2 * 10 + 0.6 * 30) / 40)
    assert board["all subjects"]["all"]["mean_r"] == pytest.approx((2 + 12 + 18 + 0) / 80)
    table = format_leaderboard(board)
    assert "mean r (no noise ceiling)" in table
    assert table.splitlines()[-1].split() == ["all", "subjects", "0.500", "0.300", "0.400"]
    assert "subj03" in table
