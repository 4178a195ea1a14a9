"""Inputs the parameter checks accept but a model cannot take (issue 13, item 10), and duplicates."""

import numpy as np
import pytest

from skvem._utils.cache import DiskCache
from skvem.testing.backbones import random_images
from skvem.vision.featurizers import AlignedImageFeaturizer, ImageFeaturizer

from .test_featurizers import FAST, scenes


def test_batch_size_one_is_refused_and_an_odd_image_joins_a_batch():
    images, _, fmri = scenes(7)
    with pytest.raises(ValueError, match="batch_size must be >= 2 for AlignedImageFeaturizer"):
        AlignedImageFeaturizer(random_state=0, **{**FAST, "batch_size": 1}).fit(images, fmri)
    # Two per step and 7 images: no step of one image reaches the BatchNorm.
    est = AlignedImageFeaturizer(random_state=0, validation_fraction=None, **{**FAST, "batch_size": 2, "n_components": 2})
    assert est.fit(images, fmri).transform(images).shape == (7, 256)


def test_an_image_without_pixels_is_named():
    from PIL import Image

    good = Image.fromarray(random_images(1, 16)[0])
    images = [good, Image.new("RGB", (0, 12)), good]
    feat = ImageFeaturizer(backbone="small-cnn", random_state=0, cache_dir=False).fit(images)
    with pytest.raises(ValueError, match=r"image 1 is 0 x 12 pixels"):
        feat.transform(images)
    with pytest.raises(ValueError, match=r"image 0 is 8 x 0 pixels"):
        feat.transform(np.zeros((2, 0, 8, 3), dtype=np.uint8))
    # Inside fit the images are a view (training split): the message names the image given.
    with pytest.raises(ValueError, match=r"image [147] \[index \d of this view\] is 0 x 12 pixels"):
        AlignedImageFeaturizer(random_state=0, validation_fraction=0.4, **{**FAST, "n_components": 2}).fit(images * 3, np.random.default_rng(0).normal(size=(9, 3)))


def test_a_long_thin_image_keeps_its_centre_and_costs_little_memory():
    from PIL import Image

    from skvem._utils.image_bounds import limit_aspect_ratio
    from skvem.vision.backbones import resolve_backbone

    pre = resolve_backbone("small-cnn", seed=0).preprocess
    strip = Image.fromarray(np.random.default_rng(0).integers(0, 255, (1, 100_000, 3), dtype=np.uint8))
    # Without the bound, the 64 px short side would make it 64 x 6,400,000 pixels (1.2 GB).
    assert limit_aspect_ratio(strip).size == (10, 1)
    assert tuple(pre.to_uint8(strip).shape) == (3, 64, 64)
    # For a resize-then-centre-crop pipeline the kept centre is (nearly) what survives anyway.
    wide = Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 1600, 3), dtype=np.uint8))
    exact = np.asarray(pre.geometric(wide), dtype=float)
    bounded = np.asarray(pre.geometric(limit_aspect_ratio(wide)), dtype=float)
    assert limit_aspect_ratio(wide).size == (400, 40)
    assert np.abs(exact - bounded).mean() < 2.0
    square = Image.new("RGB", (30, 20))
    assert limit_aspect_ratio(square) is square


def test_identical_images_are_extracted_once(tmp_path, monkeypatch):
    import skvem.vision.backbones as backbones

    calls = []
    forward = backbones.SmallCNN.forward
    monkeypatch.setattr(backbones.SmallCNN, "forward", lambda self, x: calls.append(len(x)) or forward(self, x))
    images = random_images(3)[[0, 1, 0, 2, 1]]
    feat = ImageFeaturizer(backbone="small-cnn", random_state=0, cache_dir=tmp_path).fit(images)
    calls.clear()
    out = feat.transform(images)
    assert calls == [3] and DiskCache(tmp_path).count() == 3
    np.testing.assert_array_equal(out[0], out[2])
