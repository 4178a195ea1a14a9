"""The language-pretrained small CNN: its reserved world, its training loop, its weights, its command."""

import ast
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from skvem.app.cli import main
from skvem.app.pretrain_scenes import (N_VALIDATION, PRETRAIN_SEED, PretrainSettings,
                                       pretrain_contrastive, run_pretraining)
from skvem.vision.backbones import resolve_backbone
from skvem.vision.backbones.small_cnn import SCENES_WEIGHTS

ROOT = Path(__file__).resolve().parents[1]


def _int_literals(path):
    return {node.value for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and type(node.value) is int}


def test_no_demo_test_example_or_benchmark_draws_the_pretraining_world():
    from skvem.app.demo import DemoSettings

    seeds = {DemoSettings().seed, DemoSettings.quick().seed}
    assert PRETRAIN_SEED not in seeds
    # No script of the repository may spell the reserved seed: any world it
    # draws with make_scenes is then another world than the pretraining one.
    files = [p for folder in ("tests", "examples", "benchmarks", "skvem") for p in (ROOT / folder).rglob("*.py")]
    spelled = [p for p in files if PRETRAIN_SEED in _int_literals(p)
               and p.name not in ("pretrain_scenes.py", "test_pretrain_scenes.py")]
    assert files and spelled == []


def test_study_worlds_differ_from_the_pretraining_world():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_alignment", ROOT / "benchmarks" / "bench_alignment.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    worlds = set(bench.WORLDS) | {bench.SELECT_WORLD}
    for cfg in (bench.FULL, bench.QUICK):
        worlds |= set(cfg["worlds"]) | set(cfg["sweep_worlds"]) | set(cfg["curve_worlds"])
    assert PRETRAIN_SEED not in worlds


def _tiny_pairs(n=16, seed=0):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    text = rng.normal(size=(n, 8)).astype(np.float32)
    return pixels, text


def _pretrain(seed, epochs=3):
    bb = resolve_backbone("small-cnn", None, seed=seed)
    pixels, text = _tiny_pairs()
    hist = pretrain_contrastive(bb.module, bb.preprocess, pixels, text, val_pixels=pixels[:8],
                                val_text=text[:8], epochs=epochs, batch_size=8, lr=3e-3, seed=seed)
    return bb.module, hist


def test_pretraining_is_deterministic_and_learns_the_pairs():
    a, hist = _pretrain(3)
    b, _ = _pretrain(3)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    # Fitting 16 random pairs: the training loss must fall.
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert 0.0 <= hist[-1]["val_top1"] <= 1.0 and np.isfinite(hist[-1]["val_loss"])
    c, _ = _pretrain(4, epochs=1)
    assert not torch.equal(next(iter(a.state_dict().values())), next(iter(c.state_dict().values())))


def test_a_pretraining_file_loads_as_a_backbone(tmp_path):
    from skvem import ImageFeaturizer

    pixels, text = _tiny_pairs(N_VALIDATION // 100 + 16)
    # The corpus is passed in, so no sentence model runs; the first
    # N_VALIDATION rows are the held-out scenes.
    pixels = np.concatenate([np.repeat(pixels[:1], N_VALIDATION, 0), pixels])
    text = np.concatenate([np.repeat(text[:1], N_VALIDATION, 0), text])
    out = tmp_path / "w.pt"
    settings = PretrainSettings(n_images=len(pixels) - N_VALIDATION, epochs=1, batch_size=8)
    hist = run_pretraining(settings, out=out, corpus=(pixels, text), verbose=False, log=lambda s: None)
    saved = torch.load(out, weights_only=True)
    assert saved["meta"]["settings"]["seed"] == PRETRAIN_SEED and len(saved["meta"]["history"]) == len(hist)
    images = pixels[-5:]
    loaded = ImageFeaturizer(backbone="small-cnn", pretrained=str(out)).fit(images).transform(images)
    random = ImageFeaturizer(backbone="small-cnn", pretrained=None, random_state=0).fit(images).transform(images)
    assert loaded.shape == random.shape == (5, 256)
    assert not np.allclose(loaded, random)
    assert resolve_backbone("small-cnn", str(out)).weights == "pretrained"


def test_the_shipped_weights_are_the_reserved_world_pretraining():
    assert SCENES_WEIGHTS.is_file() and SCENES_WEIGHTS.stat().st_size < 2_000_000
    meta = torch.load(SCENES_WEIGHTS, weights_only=True)["meta"]
    assert meta["settings"]["seed"] == PRETRAIN_SEED
    assert meta["settings"]["text_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    bb = resolve_backbone("small-cnn", "scenes")
    assert bb.weights == "pretrained" and bb.identity["weights"]["size"] > 0
    assert resolve_backbone("small-cnn", "auto", seed=0).weights == "random"


def test_bad_small_cnn_pretrained_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="'scenes'"):
        resolve_backbone("small-cnn", "imagenet")
    bad = tmp_path / "bad.pt"
    torch.save({"state_dict": {"x": torch.zeros(1)}}, bad)
    with pytest.raises(ValueError, match="not a SmallCNN weights file"):
        resolve_backbone("small-cnn", str(bad))


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], "--epochs must be an integer >= 1"),
    (["--n-images", "1"], "--n-images must be an integer >= 2"),
    (["--seed", "-1"], "--seed must be an integer >= 0"),
])
def test_pretrain_scenes_checks_its_options_first(argv, message, tmp_path, capsys, monkeypatch):
    import skvem.app.pretrain_scenes as job

    monkeypatch.setattr(job, "run_pretraining", lambda *a, **k: pytest.fail("work started"))
    assert main(["pretrain-scenes", *argv, "--out", str(tmp_path / "w.pt")]) == 2
    assert message in capsys.readouterr().err


def test_pretrain_scenes_refuses_a_folder_as_out(tmp_path, capsys):
    assert main(["pretrain-scenes", "--out", str(tmp_path)]) == 2
    assert "--out" in capsys.readouterr().err


def test_pretrain_scenes_writes_the_file(tmp_path, capsys, monkeypatch):
    import skvem.app.pretrain_scenes as job

    pixels, text = _tiny_pairs(N_VALIDATION + 8)
    monkeypatch.setattr(job, "scene_corpus", lambda n, **k: (pixels[: N_VALIDATION + n], text[: N_VALIDATION + n]))
    out = tmp_path / "sub" / "w.pt"
    assert main(["pretrain-scenes", "--n-images", "8", "--epochs", "1", "--batch-size", "4",
                 "--no-progress", "--out", str(out)]) == 0
    assert os.listdir(out.parent) == ["w.pt"]  # no temporary file left behind
    meta = torch.load(out, weights_only=True)["meta"]
    assert json.loads(json.dumps(meta))["settings"]["n_images"] == 8


def test_auto_fine_tunes_the_pretrained_small_cnn_at_full_rate():
    from skvem import AlignedImageFeaturizer

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, 64, 64, 3), dtype=np.uint8)
    fmri = rng.normal(size=(24, 6))

    def features(scale):
        est = AlignedImageFeaturizer(backbone="small-cnn", pretrained="scenes", n_components=3, epochs=2,
                                     batch_size=8, backbone_lr_scale=scale, validation_fraction=None,
                                     random_state=0)
        return est.fit(images, fmri).transform(images)

    auto = features("auto")
    np.testing.assert_array_equal(auto, features(1.0))  # the study's choice for this backbone
    assert not np.allclose(auto, features(0.01))


def test_every_pretrain_scenes_option_is_explained():
    from skvem.app.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices["pretrain-scenes"]
    for action in sub._actions:
        assert action.help, f"pretrain-scenes {action.option_strings or action.dest} has no help"
