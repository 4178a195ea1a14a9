"""ImageFeaturizer and AlignedImageFeaturizer: behaviour, scikit-learn integration, pickling."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skvem._utils.cache import DiskCache
from skvem.images import ImageSet
from skvem.testing.backbones import FlakyMemoryNet, TinyNet, random_images, tiny_hf_vit
from skvem.vision.featurizers import AlignedImageFeaturizer, ImageFeaturizer

try:  # the voxelwise ridge of skvem, when it is there
    from skvem.encoding.ridge import VoxelRidgeCV as _Ridge

    def make_ridge():
        return _Ridge(alphas=[1.0, 100.0], cv=3)
except ImportError:  # pragma: no cover
    from sklearn.linear_model import Ridge

    def make_ridge():
        return Ridge(alpha=10.0)


# ---------------------------------------------------------------------------
# Data: coloured shapes whose "text" embedding and "fMRI" depend on content
# ---------------------------------------------------------------------------


def scenes(n=48, size=32, seed=0, n_voxels=20):
    """Images with a coloured square (4 colours x position), text = colour one-hot, fMRI from both."""
    rng = np.random.default_rng(seed)
    colours = np.array([[230, 40, 40], [40, 200, 40], [40, 40, 230], [230, 230, 40]], dtype=np.uint8)
    labels = rng.integers(0, 4, n)
    pos = rng.integers(0, size // 2, (n, 2))
    images = np.full((n, size, size, 3), 128, dtype=np.uint8)
    for i in range(n):
        y, x = pos[i]
        images[i, y : y + size // 2, x : x + size // 2] = colours[labels[i]]
    text = np.eye(4, dtype=np.float32)[labels] + 0.05 * rng.normal(size=(n, 4)).astype(np.float32)
    latents = np.column_stack([np.eye(4)[labels], pos / size])
    fmri = latents @ rng.normal(size=(latents.shape[1], n_voxels)) + 0.3 * rng.normal(size=(n, n_voxels))
    return images, text, fmri.astype(np.float32)


class CountingText:
    """A ``text`` callable that counts its calls and returns fixed embeddings."""

    def __init__(self, embeddings):
        self.embeddings = embeddings
        self.calls = []

    def __call__(self, images):
        self.calls.append(len(images))
        return self.embeddings[: len(images)]


_COUNTS = []


def _counted_lookup(images):
    # Module-level so that FunctionTransformer (and the estimator) pickle.
    _COUNTS.append(len(images))
    return np.eye(4, dtype=np.float32)[np.arange(len(images)) % 4] + 0.01 * np.arange(len(images))[:, None]


def _messages(caught):
    return [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]


FAST = dict(backbone="small-cnn", image_size=32, batch_size=16, n_components=4, epochs=2, lr=3e-3)


# ---------------------------------------------------------------------------
# ImageFeaturizer
# ---------------------------------------------------------------------------


def test_image_featurizer_shapes_and_dtype():
    images = random_images(5)
    feat = ImageFeaturizer(backbone="small-cnn", random_state=0, cache_dir=False, batch_size=2)
    with pytest.raises(NotFittedError):
        feat.transform(images)
    out = feat.fit(images).transform(images)
    assert out.shape == (5, 256) and out.dtype == np.float32
    assert feat.n_features_out_ == 256
    assert list(feat.get_feature_names_out()[:2]) == ["imagefeaturizer0", "imagefeaturizer1"]
    # Batching does not change features (GroupNorm, inference mode).
    np.testing.assert_allclose(
        clone(feat).set_params(batch_size=5).fit(images).transform(images), out, rtol=1e-5, atol=1e-6
    )
    assert feat.transform(ImageSet(images)[:0]).shape == (0, 256)


def test_image_featurizer_random_state():
    images = random_images(4)
    a = ImageFeaturizer(backbone="small-cnn", random_state=3, cache_dir=False).fit_transform(images)
    b = ImageFeaturizer(backbone="small-cnn", random_state=3, cache_dir=False).fit_transform(images)
    c = ImageFeaturizer(backbone="small-cnn", random_state=4, cache_dir=False).fit_transform(images)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_feature_cache_hit_on_second_call(tmp_path, monkeypatch):
    import skvem.vision.backbones as backbones

    calls = []
    forward = backbones.SmallCNN.forward
    monkeypatch.setattr(backbones.SmallCNN, "forward", lambda self, x: calls.append(len(x)) or forward(self, x))
    images = random_images(6)
    feat = ImageFeaturizer(backbone="small-cnn", random_state=0, cache_dir=tmp_path, batch_size=4)
    first = feat.fit(images).transform(images)
    n_fit_calls = 1  # fit runs one forward pass to learn the output size
    assert sum(calls[n_fit_calls:]) == 6
    assert DiskCache(tmp_path).count() == 6
    calls.clear()
    # A clone (as in each cross-validation fold) reads the cache: no forward pass on images.
    second = clone(feat).fit(images).transform(ImageSet(images)[[4, 1, 5]])
    assert calls == [2]  # only fit's size probe
    np.testing.assert_array_equal(second, first[[4, 1, 5]])
    # Another layer is another cache entry.
    clone(feat).set_params(layer="blocks.2").fit(images).transform(images)
    assert DiskCache(tmp_path).count() == 12


def test_feature_cache_only_for_deterministic_weights(tmp_path):
    images = random_images(3)
    ImageFeaturizer(backbone="small-cnn", random_state=None, cache_dir=tmp_path).fit_transform(images)
    ImageFeaturizer(backbone=TinyNet(), cache_dir=tmp_path).fit_transform(images)
    assert DiskCache(tmp_path).count() == 0


def test_image_featurizer_layers():
    images = random_images(3)
    feat = ImageFeaturizer(backbone="small-cnn", layer="blocks.1", random_state=0, cache_dir=False)
    assert "blocks.1" in feat.available_layers()
    assert feat.fit_transform(images).shape == (3, 64)
    assert feat.set_params(pooling="flatten").fit_transform(images).shape == (3, 64 * 16 * 16)
    with pytest.raises(ValueError, match=r"(?s)layer 'block.1'.*did you mean.*Available layers"):
        feat.set_params(layer="block.1").fit(images)
    with pytest.raises(ValueError, match="pooling must be one of"):
        feat.set_params(layer=None, pooling="median").fit(images)


def test_image_featurizer_pretrained_hf_pickles_without_weights(tmp_path):
    spec = tiny_hf_vit(str(tmp_path / "vit"))
    images = random_images(4)
    feat = ImageFeaturizer(backbone=spec, layer="layers.1", pooling="cls", cache_dir=False)
    out = feat.fit_transform(images)
    assert out.shape == (4, 32)
    blob = pickle.dumps(feat)
    weights = sum(p.numel() * 4 for p in feat._backbone.module.parameters())
    assert len(blob) < weights / 2
    again = pickle.loads(blob)
    np.testing.assert_allclose(again.transform(images), out, rtol=1e-6, atol=1e-6)


def test_image_featurizer_oom_retry_with_smaller_batches():
    net = FlakyMemoryNet(max_batch=2)
    feat = ImageFeaturizer(backbone=net, batch_size=8, cache_dir=False, image_size=32)
    feat.fit(random_images(2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = feat.transform(random_images(7))
    assert _messages(caught) == [
        "ImageFeaturizer: out of cpu memory with batch_size=8; retrying with batch_size=4",
        "ImageFeaturizer: out of cpu memory with batch_size=4; retrying with batch_size=2",
    ]
    assert out.shape == (7, 8)


def test_image_featurizer_in_cross_val_score():
    images, _, fmri = scenes(24)
    pipe = make_pipeline(ImageFeaturizer(backbone="small-cnn", image_size=32, random_state=0), make_ridge())
    scores = cross_val_score(pipe, ImageSet(images), fmri, cv=KFold(2))
    assert scores.shape == (2,) and np.all(np.isfinite(scores))


# ---------------------------------------------------------------------------
# AlignedImageFeaturizer
# ---------------------------------------------------------------------------


def test_contrastive_loss_falls_on_aligned_pairs():
    images, text, fmri = scenes(64)
    feat = AlignedImageFeaturizer(
        text=CountingText(text), alignment_weight=1.0, validation_fraction=None, random_state=0,
        **{**FAST, "epochs": 6, "lr": 5e-3},
    ).fit(images, fmri)
    con = [h["train_contrastive_loss"] for h in feat.history_]
    assert con[-1] < 0.7 * con[0]
    assert all(h["temperature"] > 0 for h in feat.history_)
    assert feat.text_dim_ == 4


def test_text_is_computed_once_and_never_without_alignment():
    images, text, fmri = scenes(24)
    counting = CountingText(text)
    AlignedImageFeaturizer(text=counting, alignment_weight=0.5, random_state=0, **FAST).fit(images, fmri)
    assert counting.calls == [24]  # once, on every training image
    _COUNTS.clear()
    est = AlignedImageFeaturizer(text=FunctionTransformer(_counted_lookup), alignment_weight=0.0,
                                 random_state=0, **FAST).fit(images, fmri)
    assert _COUNTS == []
    assert est.text_dim_ is None
    assert all(h["train_contrastive_loss"] is None for h in est.history_)


def test_same_random_state_same_features():
    images, text, fmri = scenes(32)
    kw = dict(text=CountingText(text), random_state=7, **FAST)
    a = AlignedImageFeaturizer(**kw).fit(images, fmri)
    b = AlignedImageFeaturizer(**kw).fit(images, fmri)
    c = AlignedImageFeaturizer(**{**kw, "random_state": 8}).fit(images, fmri)
    np.testing.assert_array_equal(a.transform(images), b.transform(images))
    assert [h["train_voxel_loss"] for h in a.history_] == [h["train_voxel_loss"] for h in b.history_]
    assert not np.allclose(a.transform(images), c.transform(images))


def test_pickle_round_trip_keeps_trained_weights():
    images, _, fmri = scenes(24)
    _COUNTS.clear()
    est = AlignedImageFeaturizer(text=FunctionTransformer(_counted_lookup), random_state=0, **FAST).fit(images, fmri)
    out = est.transform(images)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.transform(images), out)
    s1, s2 = est.model_.state_dict(), again.model_.state_dict()
    assert s1.keys() == s2.keys() and all(torch.equal(s1[k], s2[k]) for k in s1)
    assert again.history_ == est.history_


def test_transform_returns_standardised_trained_features():
    images, _, fmri = scenes(32)
    est = AlignedImageFeaturizer(random_state=0, validation_fraction=None, **FAST).fit(images, fmri)
    out = est.transform(images)
    assert out.shape == (32, 256) and out.dtype == np.float32
    assert est.n_features_out_ == 256
    # Exactly standardised on the training images (constant features stay at 0).
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-3)
    std = out.std(0)
    assert np.all((np.abs(std - 1) < 1e-2) | (std < 1e-3))
    # Trained, so different from the random initialisation.
    frozen = ImageFeaturizer(backbone="small-cnn", image_size=32, random_state=est.random_state,
                             cache_dir=False).fit_transform(images)
    assert not np.allclose(np.corrcoef(out.T)[:5, :5], np.corrcoef(frozen.T)[:5, :5], atol=1e-2)


def test_two_stages_with_a_pretrained_backbone(tmp_path):
    spec = tiny_hf_vit(str(tmp_path / "vit"))
    images, text, fmri = scenes(24)
    est = AlignedImageFeaturizer(backbone=spec, text=CountingText(text), n_components=3, epochs=3,
                                 batch_size=8, patience=None, random_state=0).fit(images, fmri)
    assert [h["stage"] for h in est.history_] == ["heads", "finetune", "finetune"]
    assert est.weights_ == "pretrained"
    # Only the heads trained: frozen_epochs == epochs leaves the backbone as it was.
    heads_only = AlignedImageFeaturizer(backbone=spec, n_components=3, epochs=2, frozen_epochs=2,
                                        batch_size=8, random_state=0).fit(images, fmri)
    from skvem.vision.backbones import resolve_backbone

    original = resolve_backbone(spec).module.state_dict()
    trained = heads_only.model_.backbone.state_dict()
    assert all(torch.equal(original[k], trained[k]) for k in original)
    assert not all(torch.equal(original[k], est.model_.backbone.state_dict()[k]) for k in original)


def test_early_stopping_restores_the_best_epoch():
    images, _, fmri = scenes(40)
    noise = np.random.default_rng(1).normal(size=fmri.shape)  # nothing to learn: val loss rises
    est = AlignedImageFeaturizer(random_state=0, validation_fraction=0.25, patience=2,
                                 **{**FAST, "epochs": 12, "lr": 2e-2}).fit(images, noise)
    val = [h["val_voxel_loss"] for h in est.history_]
    assert len(val) < 12
    assert est.best_epoch_ == int(np.argmin(val)) + 1
    assert all(h["val_r"] is not None for h in est.history_)


def test_bad_inputs_are_clear_errors():
    images, _, fmri = scenes(24)
    est = AlignedImageFeaturizer(random_state=0, **FAST)
    bad = fmri.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN|infinite"):
        est.fit(images, bad)
    with pytest.raises(ValueError, match="23|24"):
        est.fit(images, fmri[:23])
    with pytest.raises(ValueError, match="needs the fMRI"):
        est.fit(images, None)
    with pytest.raises(ValueError, match=r"n_components=30 needs at least as many training images; got 21"):
        clone(est).set_params(n_components=30).fit(images, fmri)
    with pytest.raises(ValueError, match="validation_fraction"):
        clone(est).set_params(validation_fraction=0.5, n_components=2).fit(images[:3], fmri[:3])
    with pytest.raises(ValueError, match="at least 2 training images"):
        clone(est).set_params(validation_fraction=None, n_components=1).fit(images[:1], fmri[:1])
    for name, value in [("epochs", 0), ("batch_size", 0), ("lr", -1.0), ("alignment_weight", -0.1),
                        ("frozen_epochs", 5), ("validation_fraction", 1.0), ("patience", 0),
                        ("n_components", 1.5), ("backbone_lr_scale", "fast")]:
        with pytest.raises(ValueError, match=name):
            clone(est).set_params(**{name: value}).fit(images, fmri)


def test_bad_text_steps_are_named():
    images, text, fmri = scenes(24)
    short = FunctionTransformer(lambda X: np.array(["a caption"] * (len(X) - 1), dtype=object))
    embed = FunctionTransformer(lambda c: np.ones((len(c), 3)))
    est = AlignedImageFeaturizer(text=make_pipeline(short, embed), random_state=0, **FAST)
    with pytest.raises(ValueError, match=r"text step 'functiontransformer-1' \(FunctionTransformer\) returned 23 rows for 24 images"):
        est.fit(images, fmri)
    nan_text = text.copy()
    nan_text[5] = np.nan
    with pytest.raises(ValueError, match="CountingText returned NaN or infinite values for 1 of 24"):
        est.set_params(text=CountingText(nan_text)).fit(images, fmri)
    captions_only = FunctionTransformer(lambda X: np.array(["red square"] * len(X), dtype=object))
    with pytest.raises(ValueError, match="must return numeric vectors"):
        est.set_params(text=captions_only).fit(images, fmri)
    with pytest.raises(ValueError, match="text must be None"):
        est.set_params(text="clip").fit(images, fmri)


def test_out_of_memory_retries_with_a_smaller_batch():
    images, _, fmri = scenes(24)
    kw = dict(backbone=FlakyMemoryNet(max_batch=6), image_size=32, n_components=3, epochs=2,
              batch_size=20, validation_fraction=None, random_state=0)
    est = AlignedImageFeaturizer(frozen_epochs=0, **kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(images, fmri)
    assert _messages(caught) == [
        "AlignedImageFeaturizer: out of cpu memory with batch_size=20; retrying the epoch with batch_size=10",
        "AlignedImageFeaturizer: out of cpu memory with batch_size=10; retrying the epoch with batch_size=5",
    ]
    assert est.batch_size_ == 5
    # With a frozen stage, the extraction of frozen features finds the batch size first.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        staged = AlignedImageFeaturizer(frozen_epochs=1, **kw).fit(images, fmri)
    assert _messages(caught)[-1] == "AlignedImageFeaturizer: out of cpu memory with batch_size=10; retrying with batch_size=5"
    assert [h["batch_size"] for h in staged.history_] == [5, 5]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert est.transform(images).shape == (24, 8)


def test_one_voxel_and_batch_clipping():
    images, _, fmri = scenes(20)
    est = AlignedImageFeaturizer(random_state=0, validation_fraction=None, **{**FAST, "batch_size": 64})
    est.fit(images, fmri[:, 0])
    assert est.n_components_ == 1
    assert est.history_[0]["batch_size"] == 20


def test_streamed_pixels_train_like_preloaded_ones(monkeypatch):
    import skvem.vision._pixels as data

    images, text, fmri = scenes(24)
    kw = dict(text=CountingText(text), random_state=0, **{**FAST, "epochs": 1})
    preloaded = AlignedImageFeaturizer(**kw).fit(images, fmri).transform(images)
    monkeypatch.setattr(data, "PRELOAD_MAX_BYTES", 0)  # decode every epoch instead
    streamed = AlignedImageFeaturizer(**kw).fit(images, fmri).transform(images)
    np.testing.assert_array_equal(streamed, preloaded)


def test_workers_and_progress_bars(capsys):
    images, _, fmri = scenes(16)
    feat = ImageFeaturizer(backbone="small-cnn", image_size=32, random_state=0, cache_dir=False,
                           num_workers=1, batch_size=8, verbose=True)
    out = feat.fit_transform(ImageSet(images))
    np.testing.assert_array_equal(out, feat.set_params(num_workers=0, verbose=False).transform(images))
    AlignedImageFeaturizer(verbose=True, random_state=0, **{**FAST, "epochs": 1}).fit(images, fmri)
    err = capsys.readouterr().err
    assert "features (small-cnn)" in err and "AlignedImageFeaturizer" in err


def test_clone_and_params():
    text = make_pipeline(FunctionTransformer(_counted_lookup))
    est = AlignedImageFeaturizer(text=text, alignment_weight=0.3, epochs=3)
    params = est.get_params()
    assert params["alignment_weight"] == 0.3 and params["text__functiontransformer__func"] is _counted_lookup
    twin = clone(est)
    assert twin.get_params()["epochs"] == 3 and twin.text is not text
    est.set_params(text__functiontransformer__validate=True, epochs=5)
    assert est.epochs == 5
    assert est.__sklearn_tags__().target_tags.required


def test_pipeline_cross_val_and_grid_search():
    images, _, fmri = scenes(40)
    _COUNTS.clear()
    pipe = make_pipeline(
        AlignedImageFeaturizer(text=FunctionTransformer(_counted_lookup), random_state=0, **{**FAST, "epochs": 1}),
        make_ridge(),
    )
    scores = cross_val_score(pipe, ImageSet(images), fmri, cv=KFold(2))
    assert scores.shape == (2,) and np.all(np.isfinite(scores))
    _COUNTS.clear()
    search = GridSearchCV(pipe, {"alignedimagefeaturizer__alignment_weight": [0.0, 0.1]}, cv=KFold(2))
    search.fit(ImageSet(images), fmri)
    # Text targets are computed only by the fits that align: 2 folds + the refit if 0.1 won.
    assert len(_COUNTS) in (2, 3)
    assert search.predict(ImageSet(images[:3])).shape == (3, fmri.shape[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_bf16_training():  # pragma: no cover - GPU only
    images, text, fmri = scenes(48)
    est = AlignedImageFeaturizer(text=CountingText(text), device="cuda", random_state=0, **FAST).fit(images, fmri)
    out = est.transform(images)
    assert out.dtype == np.float32 and np.all(np.isfinite(out))
    again = pickle.loads(pickle.dumps(est))
    assert next(again.model_.parameters()).device.type == "cpu"


def test_contrastive_loss_is_float32_under_bf16_autocast():
    from skvem.vision.contrastive import SymmetricInfoNCE

    loss_fn = SymmetricInfoNCE()
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(1, 32, generator=gen)
    # Two distinct captions whose embeddings bf16 would round to cosine 1.
    text = torch.cat([base, base + 0.03 * torch.randn(1, 32, generator=gen),
                      torch.randn(6, 32, generator=gen)])
    image = torch.randn(8, 32, generator=gen)
    reference = loss_fn(image, text)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = loss_fn(image, text)
    assert under_autocast.dtype == torch.float32
    torch.testing.assert_close(under_autocast, reference)


def test_empty_text_pipeline_is_a_clear_error():
    from skvem.vision.featurizers import compute_text_targets

    with pytest.raises(ValueError, match="without steps"):
        compute_text_targets(make_pipeline("passthrough"), random_images(4, 16, seed=0))
