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
    assert err == "skvem demo: error: --folds must be at least 2, got 1"


def test_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "--n-images", "60", "--folds", "2", "--epochs", "1",
                 "--no-progress", "--out", str(out)])
    assert code == 0
    table = capsys.readouterr().out
    for row in ("frozen", "trained, no language", "LLM-aligned", "oracle", "noise ceiling"):
        assert row in table
    results = json.loads((out / "results.json").read_text())
    assert set(results["models"]) == {"frozen", "trained, no language", "LLM-aligned", "oracle"}
    for entry in results["models"].values():
        assert set(entry["scores"]) == {"early", "color", "category", "semantic", "all"}
        assert all(len(v) == 2 and np.all(np.isfinite(v)) for v in entry["scores"].values())
    # The oracle sees the generative latents: it must beat the frozen random CNN.
    oracle = np.mean(results["models"]["oracle"]["scores"]["all"])
    assert oracle > np.mean(results["models"]["frozen"]["scores"]["all"])
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
    report = capsys.readouterr().out
    assert "Validation on 6 held-out training images" in report
    lh = np.load(out / "subj02" / "lh_pred_test.npy")
    rh = np.load(out / "subj02" / "rh_pred_test.npy")
    assert lh.shape == (5, 7) and rh.shape == (5, 9) and lh.dtype == np.float32
    saved = json.loads((out / "subj02_report.json").read_text())
    assert saved["validation"][0]["roi"] == "all" and saved["n_train"] == 18


def test_algonauts_missing_root_is_one_line(tmp_path, capsys):
    assert main(["algonauts", "--root", str(tmp_path / "none"), "--subject", "1",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "subj01" in err
