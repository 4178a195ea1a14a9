"""Decode overlap (num_workers) and the captioning engines of CaptionTransformer.

vLLM needs a CUDA GPU and is not installed in the test environment: the
``"vllm"`` engine runs here against a stand-in ``vllm`` module (injected into
``sys.modules``) that records every call and answers deterministically, so
prompt rendering, sampling settings, ordering and cache keys are tested for
real while generation is faked.
"""

import sys
import threading
import time
import types

import numpy as np
import pytest
from PIL import Image

from skvem._utils import hub as _hub
from skvem._utils.cache import DiskCache, namespace_key
from skvem.images import ImageLoadError, ImageSet
from skvem.language import _hf_captioner
from skvem.language._prefetch import parallel_fingerprints, prefetch_batches
from skvem.language.captioning import CaptionTransformer
from skvem.testing import language_models as tiny


@pytest.fixture(scope="module")
def smolvlm_dir(tmp_path_factory):
    return tiny.make_tiny_smolvlm(tmp_path_factory.mktemp("smolvlm"))


class _SlowImages(ImageSet):
    """An ImageSet whose decoding sleeps and records when and in which thread it ran."""

    def __init__(self, arrays, delay):
        super().__init__(arrays)
        self.delay, self.decodes = delay, []

    def get_pil(self, i):
        time.sleep(self.delay)
        self.decodes.append((time.perf_counter(), threading.current_thread().name))
        return super().get_pil(i)


@pytest.mark.parametrize("num_workers", [0, 1, 3])
def test_prefetch_keeps_order_and_overlaps(num_workers):
    images = _SlowImages(tiny.make_images(12, seed=1), delay=0.005)
    batches = [[0, 1, 2], [5, 4], [11], [3, 6, 7, 8, 9, 10]]
    seen, model_calls = [], []
    for batch, pil in prefetch_batches(images, batches, num_workers=num_workers):
        start = time.perf_counter()
        time.sleep(0.05)  # the "model"
        model_calls.append((start, time.perf_counter()))
        seen.append((batch, pil))
    assert [b for b, _ in seen] == batches
    for batch, pil in seen:
        assert all(np.array_equal(np.asarray(p), images.get_array(i)) for p, i in zip(pil, batch))
    decodes = images.decodes[:12]
    threads = {name for _, name in decodes}
    during_model = sum(any(a < t < b for a, b in model_calls) for t, _ in decodes)
    if num_workers == 0:
        assert threads == {threading.current_thread().name} and during_model == 0
    else:
        assert all(name.startswith("skvem-decode") for name in threads)
        assert during_model > 0  # decoding ran while the model worked


def test_prefetch_error_comes_at_its_batch_and_stops_the_pool(tmp_path):
    arrays = tiny.make_images(6, seed=2)
    paths = []
    for i, arr in enumerate(arrays):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(arr).save(paths[-1])
    with open(paths[4], "wb") as f:
        f.write(b"not a png")
    images = ImageSet(paths)
    got = []
    with pytest.raises(ImageLoadError, match="4.png"):
        for batch, _ in prefetch_batches(images, [[0, 1], [2, 3], [4, 5]], num_workers=2):
            got.append(batch)
    assert got == [[0, 1], [2, 3]]
    assert not [t for t in threading.enumerate() if t.name.startswith("skvem-decode")]


def test_parallel_fingerprints_match():
    arrays = tiny.make_images(150, seed=3)
    ref = ImageSet(arrays).fingerprints()
    assert list(parallel_fingerprints(ImageSet(arrays), num_workers=2, chunk=16)) == list(ref)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_captions_do_not_depend_on_num_workers(smolvlm_dir, num_workers):
    images = ImageSet(tiny.make_images(7, seed=4, shapes=[(40, 48), (30, 30)]))
    kw = dict(model=str(smolvlm_dir), max_new_tokens=5, batch_size=3, cache_dir=False)
    ref = CaptionTransformer(num_workers=0, **kw).fit_transform(images)
    out = CaptionTransformer(num_workers=num_workers, **kw).fit_transform(images)
    assert list(out) == list(ref)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(num_workers=-1), "num_workers"),
        (dict(num_workers=1.5), "num_workers"),
        (dict(engine="tgi"), "engine must be one of"),
        (dict(engine="vllm", num_beams=2), "num_beams must be 1"),
        (dict(engine="vllm", generate_kwargs={"no_repeat_ngram_size": 3}), "no vLLM equivalent"),
        (dict(engine_kwargs={"tensor_parallel_size": 2}), "options of engine='vllm'"),
        (dict(engine="vllm", engine_kwargs=[1]), "engine_kwargs must be a dict"),
        (dict(engine="vllm", model=tiny.LoggingCaptioner("x")), "runs a Hugging Face id"),
    ],
)
def test_bad_engine_params(params, match):
    with pytest.raises(ValueError, match=match):
        CaptionTransformer(**params).fit()


# --------------------------------------------------------------------------
# The vLLM engine, against a stand-in vllm module
# --------------------------------------------------------------------------


class _FakeVLLM:
    """Records ``LLM(...)`` and ``generate`` calls; answers with the image's mean."""

    def __init__(self, fail=None):
        self.module = types.ModuleType("vllm")
        self.module.__version__ = "0.0-fake"
        self.module.LLM = self._llm
        self.module.SamplingParams = lambda **kw: dict(kw)
        self.fail, self.inits, self.calls = fail, [], []

    def _llm(self, **kwargs):
        if self.fail:
            raise ValueError(self.fail)
        self.inits.append(kwargs)
        fake = self

        class LLM:
            def generate(self, requests, params, use_tqdm=True):
                fake.calls.append((requests, params))
                out = []
                for r in requests:
                    mean = np.asarray(r["multi_modal_data"]["image"]).mean()
                    text = types.SimpleNamespace(text=f"  mean {mean:.3f} \n")
                    out.append(types.SimpleNamespace(outputs=[text]))
                return out

        return LLM()


@pytest.fixture
def fake_vllm(monkeypatch):
    fake = _FakeVLLM()
    monkeypatch.setitem(sys.modules, "vllm", fake.module)
    _hub.release_models("captioner-vllm")
    yield fake
    _hub.release_models("captioner-vllm")


def test_vllm_engine_prompt_order_and_settings(fake_vllm, smolvlm_dir, tmp_path):
    arrays = tiny.make_images(5, seed=6)
    images = ImageSet([arrays[3], arrays[0], arrays[3], arrays[1], arrays[4], arrays[2]])
    cap = CaptionTransformer(
        model=str(smolvlm_dir),
        engine="vllm",
        engine_kwargs={"tensor_parallel_size": 2},
        prompt="Say what you see.",
        max_new_tokens=7,
        generate_kwargs={"repetition_penalty": 1.1},
        batch_size=2,
        cache_dir=tmp_path,
    )
    out = cap.fit_transform(images)
    assert list(out) == [f"mean {np.asarray(images[i]).mean():.3f}" for i in range(6)]
    (init,) = fake_vllm.inits
    assert init["model"] == str(smolvlm_dir) and init["tensor_parallel_size"] == 2
    assert init["limit_mm_per_prompt"] == {"image": 1}
    # The duplicate is captioned once; 5 distinct images in batches of 2.
    assert [len(req) for req, _ in fake_vllm.calls] == [2, 2, 1]
    processor = _hf_captioner.load_hf_captioner(
        _hub.resolve_pretrained(str(smolvlm_dir)), device="cpu"
    ).processor
    expected = _hf_captioner.render_chat_prompt(processor, "Say what you see.")
    for requests, params in fake_vllm.calls:
        assert {r["prompt"] for r in requests} == {expected}
        assert params == dict(n=1, temperature=0.0, max_tokens=7, repetition_penalty=1.1)
    assert "Say what you see." in expected and expected.endswith("Assistant:")


def test_vllm_captions_land_in_the_hf_cache_entries(fake_vllm, smolvlm_dir, tmp_path, monkeypatch):
    images = ImageSet(tiny.make_images(4, seed=7))
    vllm_cap = CaptionTransformer(
        model=str(smolvlm_dir), engine="vllm", max_new_tokens=6, cache_dir=tmp_path
    )
    out = vllm_cap.fit_transform(images)
    hf_cap = CaptionTransformer(model=str(smolvlm_dir), max_new_tokens=6, cache_dir=tmp_path)
    assert hf_cap.cache_settings() == vllm_cap.cache_settings()

    def no_loading(*args, **kwargs):
        raise AssertionError("the HF model was loaded although every caption is cached")

    monkeypatch.setattr(_hf_captioner, "load_hf_captioner", no_loading)
    assert list(hf_cap.fit_transform(images)) == list(out)
    ns = namespace_key("caption", hf_cap.cache_settings())
    assert DiskCache(tmp_path).count(ns) == 4


def test_vllm_missing_gives_one_clear_error(smolvlm_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    _hub.release_models("captioner-vllm")
    cap = CaptionTransformer(model=str(smolvlm_dir), engine="vllm", cache_dir=False).fit()
    with pytest.raises(ImportError, match=r"pip install skvem\[vllm\]"):
        cap.transform(tiny.make_images(1))


def test_vllm_unsupported_model_names_it(smolvlm_dir, monkeypatch):
    fake = _FakeVLLM(fail="Model architectures ['X'] are not supported for now")
    monkeypatch.setitem(sys.modules, "vllm", fake.module)
    _hub.release_models("captioner-vllm")
    cap = CaptionTransformer(model=str(smolvlm_dir), engine="vllm", cache_dir=False).fit()
    match = r"cannot run .*SmolVLMForConditionalGeneration.*engine='hf'"
    with pytest.raises(ValueError, match=match):
        cap.transform(tiny.make_images(1))
