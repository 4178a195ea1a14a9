"""The transformers captioning engine: generation limits, out-of-memory back-off, bad images."""

import warnings

import pytest
from PIL import Image

from skvem import CaptionTransformer
from skvem.language import _hf_captioner
from skvem.testing.language_models import make_images, make_tiny_blip


@pytest.fixture(scope="module")
def blip64(tmp_path_factory):
    """A BLIP whose text decoder holds 64 positions (max_position_embeddings=64)."""
    return str(make_tiny_blip(tmp_path_factory.mktemp("blip64")))


def _captions(model, images, **kw):
    return list(CaptionTransformer(model=model, cache_dir=False, **kw).fit_transform(images))


def test_max_new_tokens_beyond_the_decoder_is_clamped_with_one_warning(blip64):
    images = make_images(3, seed=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clamped = _captions(blip64, images, batch_size=1)  # the default: 128 new tokens
    messages = [str(w.message) for w in caught if "max_new_tokens" in str(w.message)]
    assert len(messages) == 1, messages
    assert "max_new_tokens=128" in messages[0] and "64 positions" in messages[0]
    assert "at most 63 new tokens" in messages[0]
    assert clamped == _captions(blip64, images, max_new_tokens=63)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _captions(blip64, images, max_new_tokens=8)


def test_out_of_memory_retries_in_smaller_slices(blip64, monkeypatch):
    images = make_images(5, seed=1)
    reference = _captions(blip64, images, max_new_tokens=6, batch_size=4)
    generate = _hf_captioner.HFCaptioner._generate

    def flaky(self, batch, *args):
        if len(batch) > 1:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return generate(self, batch, *args)

    monkeypatch.setattr(_hf_captioner.HFCaptioner, "_generate", flaky)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = _captions(blip64, images, max_new_tokens=6, batch_size=4)
    assert again == reference
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == [
        "CaptionTransformer: out of cpu memory with batch_size=4; retrying with batch_size=2",
        "CaptionTransformer: out of cpu memory with batch_size=2; retrying with batch_size=1",
    ]


def test_an_image_without_pixels_is_named(blip64):
    images = [Image.fromarray(a) for a in make_images(2)]
    images.insert(1, Image.new("RGB", (7, 0)))
    with pytest.raises(ValueError, match=r"image 1 is 7 x 0 pixels"):
        _captions(blip64, images, max_new_tokens=4)


def test_a_long_thin_image_is_captioned(blip64):
    strip = Image.new("RGB", (20_000, 2), (200, 30, 30))
    assert len(_captions(blip64, [strip], max_new_tokens=4)) == 1
