"""The pure training function behind AlignedImageFeaturizer: targets, schedule, stages, early stopping."""

from dataclasses import FrozenInstanceError, replace

import numpy as np
import pytest
import torch

from skvem.images import ImageSet
from skvem.vision import _trainer
from skvem.vision._trainer import lr_factor, split_batches
from skvem.vision.backbones import resolve_backbone
from skvem.vision.training import (
    FMRITargets,
    TrainingConfig,
    split_train_val,
    train_aligned,
)


def config(**kw):
    base = dict(n_components=3, epochs=3, frozen_epochs=0, batch_size=8, lr=1e-3, backbone_lr_scale=1.0,
                weight_decay=0.01, warmup_fraction=0.1, validation_fraction=None, patience=None,
                alignment_weight=0.1, seed=0)
    return TrainingConfig(**{**base, **kw})


def data(n=20, n_voxels=12, seed=0):
    rng = np.random.default_rng(seed)
    images = ImageSet(rng.integers(0, 255, (n, 24, 24, 3), dtype=np.uint8))
    fmri = rng.normal(size=(n, n_voxels)).astype(np.float32)
    text = rng.normal(size=(n, 5)).astype(np.float32)
    return images, fmri, text


def train(cfg, text=None, n=20, **kw):
    images, fmri, texts = data(n)
    return train_aligned(images, fmri, texts if text is True else text, backbone="small-cnn",
                         image_size=16, config=cfg, **kw)


def test_config_is_frozen_and_typed():
    cfg = config()
    with pytest.raises(FrozenInstanceError):
        cfg.epochs = 5
    assert replace(cfg, epochs=5).epochs == 5


def test_fmri_targets_are_scaled_pcs_that_reconstruct_the_zscored_fmri():
    _, fmri, _ = data(n=30, n_voxels=8)
    full = FMRITargets.fit(fmri, 8, 0)
    t = full.targets(fmri)
    assert t.shape == (30, 8) and t.dtype == np.float32
    # One common scale: predicting zero costs a mean squared error of 1 (PCA's variances use n - 1).
    assert np.mean(t**2) == pytest.approx(29 / 30, rel=1e-4)
    np.testing.assert_allclose(full.reconstruct(t), full.zscore(fmri), atol=1e-4)
    # Fewer components keep their relative variances.
    var = np.var(FMRITargets.fit(fmri, 3, 0).targets(fmri), axis=0)
    assert np.all(np.diff(var) <= 1e-6)
    # A constant voxel is not a division by zero.
    fmri[:, 0] = 1.0
    assert np.isfinite(FMRITargets.fit(fmri, 3, 0).targets(fmri)).all()


def test_schedule_warms_up_linearly_then_decays_by_cosine():
    assert lr_factor(0.0, 0.1) == pytest.approx(0.0, abs=1e-6)
    assert lr_factor(0.05, 0.1) == pytest.approx(0.5)
    assert lr_factor(0.1, 0.1) == pytest.approx(1.0)
    assert lr_factor(0.55, 0.1) == pytest.approx(0.5)  # half-way through the decay
    assert lr_factor(1.0, 0.1) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(0.0, 0.0) == pytest.approx(1.0)
    values = [lr_factor(f, 0.2) for f in np.linspace(0.2, 1.0, 50)]
    assert np.all(np.diff(values) <= 0)


def test_batches_are_near_equal_and_never_of_one_image():
    assert [len(b) for b in split_batches(np.arange(20), 8)] == [7, 7, 6]
    assert [len(b) for b in split_batches(np.arange(5), 2)] == [3, 2]
    assert [len(b) for b in split_batches(np.arange(3), 1)] == [3]
    for n in range(2, 40):
        for b in range(2, 10):
            sizes = [len(x) for x in split_batches(np.arange(n), b)]
            assert sum(sizes) == n and min(sizes) >= 2


def test_split_is_reproducible_disjoint_and_checked():
    train_idx, val_idx = split_train_val(20, 0.2, seed=3)
    assert len(val_idx) == 4 and len(train_idx) == 16
    assert set(train_idx).isdisjoint(val_idx) and np.all(np.diff(train_idx) > 0)
    np.testing.assert_array_equal(split_train_val(20, 0.2, seed=3)[1], val_idx)
    assert not np.array_equal(split_train_val(20, 0.2, seed=4)[1], val_idx)
    assert len(split_train_val(20, None, seed=3)[1]) == 0
    with pytest.raises(ValueError, match="validation_fraction=0.05 leaves 19 training and 1 validation"):
        split_train_val(20, 0.05, seed=0)
    with pytest.raises(ValueError, match="at least 2 training images; got 1"):
        split_train_val(1, None, seed=0)


def test_result_is_typed_and_the_caller_rng_untouched():
    before = torch.random.get_rng_state()
    result = train(config(), text=True)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert result.n_features == 256 and result.text_dim == 5
    assert result.targets.pca.n_components_ == 3
    assert len(result.history) == 3 and result.best_epoch == 3
    assert not result.model.training
    assert all(not p.requires_grad for p in result.model.parameters())
    assert result.backbone.name == "small-cnn" and result.batch_size == 8


def test_reproducible_with_a_seed():
    x = torch.as_tensor(np.zeros((2, 3, 16, 16), dtype=np.float32))

    def run(seed):
        res = train(config(seed=seed, validation_fraction=0.2), text=True)
        with torch.inference_mode():
            return res.model.features(x).numpy(), [h["train_voxel_loss"] for h in res.history]

    a, b, c = run(0), run(0), run(1)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]
    assert not np.allclose(a[0], c[0])


def test_two_stages_heads_first_on_a_frozen_backbone():
    result = train(config(epochs=4, frozen_epochs=2), text=True)
    assert [h["stage"] for h in result.history] == ["heads", "heads", "finetune", "finetune"]
    only_heads = train(config(epochs=2, frozen_epochs=2), text=True)
    initial = resolve_backbone("small-cnn", None, image_size=16, seed=0).module.state_dict()
    for name, value in only_heads.model.backbone.state_dict().items():
        torch.testing.assert_close(value, initial[name], rtol=0, atol=0)
    assert not torch.equal(result.model.backbone.blocks[0][0].weight, initial["blocks.0.0.weight"])
    # "auto": no frozen stage for a random initialisation.
    auto = train(config(epochs=2, frozen_epochs="auto"))
    assert [h["stage"] for h in auto.history] == ["finetune", "finetune"]


def test_early_stopping_restores_the_best_epoch(monkeypatch):
    scripted = iter([1.0, 0.5, 0.7, 0.8, 0.9, 0.95])
    snapshots = {}
    validate, record = _trainer.Trainer._validate, _trainer.Trainer._record

    def fake_validate(self, stage):
        return {**validate(self, stage), "val_voxel_loss": next(scripted)}

    def spy_record(self, stage, epoch, stats, seconds):
        out = record(self, stage, epoch, stats, seconds)
        snapshots[epoch] = self.net.voxel_head.weight.detach().clone()
        return out

    monkeypatch.setattr(_trainer.Trainer, "_validate", fake_validate)
    monkeypatch.setattr(_trainer.Trainer, "_record", spy_record)
    result = train(config(epochs=6, validation_fraction=0.2, patience=2))
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]  # two epochs without improvement
    assert result.best_epoch == 2
    torch.testing.assert_close(result.model.voxel_head.weight, snapshots[2], rtol=0, atol=0)
    assert not torch.equal(snapshots[4], snapshots[2])


def test_text_is_computed_once_after_the_size_checks():
    calls = []
    _, _, texts = data()

    def text(images):
        calls.append(len(images))
        return texts

    with pytest.raises(ValueError, match="n_components=50 needs at least as many training images"):
        train(config(n_components=50), text=text)
    assert calls == []
    train(config(epochs=1), text=text)
    assert calls == [20]
    with pytest.raises(ValueError, match=r"text targets must have shape \(n_images=20"):
        train(config(epochs=1), text=lambda images: texts[:5])
    # Without alignment weight, text is never called.
    train(config(epochs=1, alignment_weight=0.0), text=text)
    assert calls == [20]
