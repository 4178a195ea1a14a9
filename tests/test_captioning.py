"""Tests of skvem.language.captioning.CaptionTransformer.

Tiny random captioners (BLIP, SmolVLM, LLaVA) are saved to temporary folders
with ``save_pretrained`` and loaded back through the public path a user's
checkpoint takes. Random weights write gibberish: the tests check shapes,
determinism, batching, the answer-only contract and the cache, not meaning.
"""

import functools
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
from PIL import Image
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline

from skvem._utils import hub as _hub
from skvem.language import _hf_captioner as _captioning_hf
from skvem._utils.cache import DiskCache
from skvem._utils.hub import ModelNotFoundError
from skvem.language.captioning import DEFAULT_CAPTIONER, CaptionTransformer
from skvem.images import ImageLoadError, ImageSet
from skvem.language.text import CLIPTextEmbedder

from skvem.testing import language_models as tiny

# Different aspect ratios: SmolVLM splits them into different numbers of
# tiles, so a batch needs padding.
SHAPES = [(40, 48), (30, 30), (64, 20), (20, 64)]


@pytest.fixture(scope="module")
def blip_dir(tmp_path_factory):
    return tiny.make_tiny_blip(tmp_path_factory.mktemp("blip"))


@pytest.fixture(scope="module")
def smolvlm_dir(tmp_path_factory):
    return tiny.make_tiny_smolvlm(tmp_path_factory.mktemp("smolvlm"))


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory):
    return tiny.make_tiny_llava(tmp_path_factory.mktemp("llava"))


@pytest.fixture(scope="module")
def clip_spec(tmp_path_factory):
    folder = tiny.make_tiny_open_clip(tmp_path_factory.mktemp("clip"), context_length=32)
    return f"local-dir:{folder}"


@pytest.fixture
def images():
    return ImageSet(tiny.make_images(6, shapes=SHAPES))


def _reference_answers(folder, pil_images, prompt, max_new_tokens):
    """Caption one image at a time with plain transformers, keeping new tokens only."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    proc = AutoProcessor.from_pretrained(folder)
    model = AutoModelForImageTextToText.from_pretrained(folder).eval()
    out = []
    for im in pil_images:
        if getattr(proc, "chat_template", None):
            msgs = [
                {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}
            ]
            text = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
            inputs = proc(text=[text], images=[[im]], return_tensors="pt")
            n_prompt = inputs["input_ids"].shape[1]
        else:
            inputs = proc(images=[im], return_tensors="pt")
            n_prompt = 0
        with torch.no_grad():
            seq = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        out.append(proc.tokenizer.decode(seq[0, n_prompt:], skip_special_tokens=True).strip())
    return out


# ---------------------------------------------------------------------------
# Hugging Face captioners
# ---------------------------------------------------------------------------


def test_encoder_decoder_captioner(blip_dir, images):
    ct = CaptionTransformer(model=str(blip_dir), max_new_tokens=8, batch_size=4, cache_dir=False)
    caps = ct.fit_transform(images)
    assert caps.shape == (6,) and caps.dtype == object
    assert all(isinstance(c, str) for c in caps)
    assert ct.captioner_id_.startswith("folder:")
    assert ct._captioner_.family == "captioner"
    assert len(set(caps)) > 1  # the tiny model's captions depend on the image
    # answer only: what plain transformers decodes, without the [DEC] start token
    assert list(caps) == _reference_answers(blip_dir, list(images), None, 8)
    assert not any("[DEC]" in c or "[SEP]" in c for c in caps)
    # deterministic, and batching does not change captions
    again = CaptionTransformer(model=str(blip_dir), max_new_tokens=8, batch_size=1, cache_dir=False)
    np.testing.assert_array_equal(again.fit_transform(images), caps)


@pytest.mark.parametrize("which", ["smolvlm", "llava"])
def test_chat_vlm_answer_only_and_batching(which, smolvlm_dir, llava_dir, images):
    folder = {"smolvlm": smolvlm_dir, "llava": llava_dir}[which]
    prompt = "Describe this image in detail."
    batched = CaptionTransformer(
        model=str(folder), prompt=prompt, max_new_tokens=8, batch_size=4, cache_dir=False
    ).fit(images)
    caps = batched.transform(images)
    assert batched._captioner_.family == "chat"
    assert batched._captioner_.tokenizer.padding_side == "left"
    assert caps.shape == (6,) and all(isinstance(c, str) for c in caps)
    assert len(set(caps)) > 1
    one_by_one = CaptionTransformer(
        model=str(folder), prompt=prompt, max_new_tokens=8, batch_size=1, cache_dir=False
    ).fit_transform(images)
    np.testing.assert_array_equal(caps, one_by_one)
    # the answer only: the continuation of the prompt, no prompt, no special tokens
    assert list(caps) == _reference_answers(folder, list(images), prompt, 8)
    for c in caps:
        assert "describe this image in detail" not in c.lower()
        assert not c.lower().startswith(("user", "assistant:"))
        assert "<image>" not in c and "<end_of_utterance>" not in c and c == c.strip()


def test_prompt_changes_chat_captions_and_cache_key(smolvlm_dir, images, tmp_path):
    a = CaptionTransformer(model=str(smolvlm_dir), max_new_tokens=6, cache_dir=tmp_path).fit(images)
    b = clone(a).set_params(prompt="What is in this picture?").fit(images)
    ca, cb = a.transform(images), b.transform(images)
    assert list(ca) != list(cb)
    assert a.cache_settings() != b.cache_settings()
    assert DiskCache(tmp_path).count() == 12


def test_hf_cache_hits_skip_model_loading(blip_dir, images, tmp_path, monkeypatch):
    ct = CaptionTransformer(model=str(blip_dir), max_new_tokens=8, cache_dir=tmp_path)
    first = ct.fit_transform(images)
    _hub.release_models()

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded although every caption is cached")

    monkeypatch.setattr(_captioning_hf, "load_hf_captioner", no_loading)
    fresh = CaptionTransformer(model=str(blip_dir), max_new_tokens=8, cache_dir=tmp_path)
    np.testing.assert_array_equal(fresh.fit_transform(images), first)
    assert not hasattr(fresh, "_captioner_")
    # a new image needs the model
    more = ImageSet(list(images) + tiny.make_images(1, seed=9))
    with pytest.raises(AssertionError, match="was loaded"):
        fresh.transform(more)


def test_cached_captions_of_a_hub_id_need_no_download(images, tmp_path, monkeypatch):
    """Captions of a Hugging Face id are keyed by its name, so a cached run works offline."""
    calls = []

    def fake_loader(resolved, **kwargs):
        calls.append(resolved)
        return lambda pil, **kw: [f"caption {im.size}" for im in pil]

    monkeypatch.setattr(_captioning_hf, "load_hf_captioner", fake_loader)
    monkeypatch.setattr(_hub, "is_offline", lambda: False)  # pretend the first run is online
    ct = CaptionTransformer(model="someone/some-vlm", cache_dir=tmp_path)
    first = ct.fit_transform(images)
    assert ct.captioner_id_ == "hf:someone/some-vlm@main"
    assert len(calls) == 1 and calls[0].kind == "hub"
    monkeypatch.undo()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again = CaptionTransformer(model="someone/some-vlm", cache_dir=tmp_path).fit_transform(images)
    np.testing.assert_array_equal(again, first)
    # another revision is another captioner
    other = CaptionTransformer(model="someone/some-vlm", revision="v2", cache_dir=tmp_path).fit(
        images
    )
    with pytest.raises(ModelNotFoundError):
        other.transform(images)


def test_pickle_leaves_model_out(blip_dir, images):
    ct = CaptionTransformer(model=str(blip_dir), max_new_tokens=8, cache_dir=False).fit(images)
    caps = ct.transform(images)
    assert ct._captioner_ is not None
    blob = pickle.dumps(ct)
    weights = os.path.getsize(blip_dir / "model.safetensors")
    assert len(blob) < min(weights / 10, 5_000)
    loaded = pickle.loads(blob)
    assert not hasattr(loaded, "_captioner_")
    _hub.release_models()
    np.testing.assert_array_equal(loaded.transform(images), caps)


def test_set_params_switches_the_model(blip_dir, smolvlm_dir, images):
    ct = CaptionTransformer(model=str(blip_dir), max_new_tokens=4, cache_dir=False).fit(images)
    ct.transform(images[:1])
    assert ct._captioner_.family == "captioner"
    ct.set_params(model=str(smolvlm_dir))  # fit learns nothing: no refit needed
    ct.transform(images[:1])
    assert ct._captioner_.family == "chat"


# ---------------------------------------------------------------------------
# The cache, with a callable captioner
# ---------------------------------------------------------------------------


def test_callable_captioner(images, tmp_path):
    cap = tiny.LoggingCaptioner(tmp_path / "log")
    out = CaptionTransformer(model=cap, batch_size=4, cache_dir=False).fit_transform(images)
    assert out.shape == (6,) and out.dtype == object
    assert list(out) == [cap.caption_of(images.get_array(i)) for i in range(6)]
    assert cap.n_calls() == 6


def test_second_run_captions_nothing_and_duplicates_once(tmp_path):
    arrays = tiny.make_images(5)
    X = ImageSet(arrays + arrays[:2])  # two images twice
    cap = tiny.LoggingCaptioner(tmp_path / "log")
    ct = CaptionTransformer(model=cap, batch_size=2, cache_dir=tmp_path / "cache")
    first = ct.fit_transform(X)
    assert cap.n_calls() == 5
    assert first[5] == first[0] and first[6] == first[1]
    second = clone(ct).fit_transform(X)
    np.testing.assert_array_equal(first, second)
    assert cap.n_calls() == 5
    # a different setting is a different cache entry
    clone(ct).set_params(max_new_tokens=7).fit_transform(X)
    assert cap.n_calls() == 10


def test_five_fold_cv_captions_each_image_once(clip_spec, tmp_path):
    n = 20
    X = ImageSet(tiny.make_images(n, seed=3))
    y = np.random.RandomState(0).randn(n, 2)
    cap = tiny.LoggingCaptioner(tmp_path / "log")
    pipe = make_pipeline(
        CaptionTransformer(model=cap, batch_size=3, cache_dir=tmp_path / "cache"),
        CLIPTextEmbedder(model=clip_spec, pretrained=None),
        Ridge(),
    )
    scores = cross_val_score(pipe, X, y, cv=5)
    assert scores.shape == (5,)
    assert cap.n_calls() == n  # each image once across the 5 folds
    cross_val_score(pipe, X, y, cv=5)
    assert cap.n_calls() == n  # a second identical run captions nothing


def test_parallel_cv_shares_the_cache(tmp_path):
    from sklearn.preprocessing import FunctionTransformer

    n = 12
    X = ImageSet(tiny.make_images(n, seed=4))
    y = np.random.RandomState(1).randn(n, 2)
    cache = tmp_path / "cache"
    cap = tiny.LoggingCaptioner(tmp_path / "log", delay=0.05)
    # No torch in this pipeline, so the worker processes start quickly.
    pipe = make_pipeline(
        CaptionTransformer(model=cap, batch_size=2, cache_dir=cache),
        FunctionTransformer(tiny.caption_features),
        Ridge(),
    )
    parallel = cross_val_score(pipe, X, y, cv=3, n_jobs=2)
    pids = {line.split()[0] for line in open(cap.log_path)}
    assert len(pids) >= 1 and str(os.getpid()) not in pids  # captioned in the workers
    serial = cross_val_score(clone(pipe), X, y, cv=3)
    np.testing.assert_allclose(parallel, serial, rtol=1e-6)
    expected = [cap.caption_of(X.get_array(i)) for i in range(n)]
    ct = CaptionTransformer(model=cap, cache_dir=cache)
    calls = cap.n_calls()
    np.testing.assert_array_equal(ct.fit_transform(X), expected)
    assert cap.n_calls() == calls  # every image was cached by the workers
    assert DiskCache(cache).count() == n
    with sqlite3.connect(DiskCache(cache).path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_killed_run_resumes(tmp_path):
    """SIGKILL mid-run loses at most the batch in flight; the next run finishes the job."""
    n, batch = 20, 2
    cache = tmp_path / "cache"
    script = tmp_path / "caption.py"
    script.write_text(
        textwrap.dedent(f"""
        from skvem.testing.language_models import LoggingCaptioner, make_images
        from skvem.language.captioning import CaptionTransformer
        cap = LoggingCaptioner({str(tmp_path / "log1")!r}, delay=0.5)
        CaptionTransformer(model=cap, batch_size={batch}, cache_dir={str(cache)!r}).fit_transform(
            make_images({n}, seed=5))
        print("finished")
    """)
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    store = DiskCache(cache)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if store.path.exists() and store.count() >= 2 * batch:
                break
            if proc.poll() is not None:
                pytest.fail(
                    f"the captioning process ended early: {proc.stderr.read().decode()[-2000:]}"
                )
            time.sleep(0.05)
        else:
            pytest.fail("the captioning process never wrote to the cache")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    done = DiskCache(cache).count()
    assert 2 * batch <= done < n and done % batch == 0  # whole batches only
    with sqlite3.connect(DiskCache(cache).path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    resumed = tiny.LoggingCaptioner(tmp_path / "log2")  # same cache_key as the killed one
    X = ImageSet(tiny.make_images(n, seed=5))
    out = CaptionTransformer(model=resumed, batch_size=batch, cache_dir=cache).fit_transform(X)
    assert resumed.n_calls() == n - done
    assert list(out) == [resumed.caption_of(X.get_array(i)) for i in range(n)]


def test_unreadable_image_names_file_and_index_and_caches_nothing(tmp_path):
    paths = []
    for i, arr in enumerate(tiny.make_images(3)):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(arr).save(p)
        paths.append(str(p))
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png at all")
    X = paths[:2] + [str(bad)] + paths[2:]
    cache = tmp_path / "cache"
    cap = tiny.LoggingCaptioner(tmp_path / "log")
    ct = CaptionTransformer(model=cap, batch_size=1, cache_dir=cache)
    with pytest.raises(ImageLoadError) as err:
        ct.fit_transform(X)
    assert "broken.png" in str(err.value) and "image 2" in str(err.value)
    assert cap.n_calls() == 0
    assert not DiskCache(cache).path.exists() or DiskCache(cache).count() == 0
    # without a cache the error is the same, and the good images still work
    with pytest.raises(ImageLoadError, match=r"image 2.*broken\.png"):
        CaptionTransformer(model=cap, cache_dir=False).fit_transform(X)
    assert len(ct.transform(paths)) == 3


def test_lambda_without_cache_key_is_not_cached(images, tmp_path):
    ct = CaptionTransformer(model=lambda ims: ["x"] * len(ims), cache_dir=tmp_path)
    with pytest.warns(UserWarning, match="cache_key"):
        out = ct.fit_transform(images)
    assert list(out) == ["x"] * 6
    assert not DiskCache(tmp_path).path.exists() or DiskCache(tmp_path).count() == 0


def test_bad_callable_output(images):
    with pytest.raises(ValueError, match="returned 1 captions for 6 images"):
        CaptionTransformer(model=lambda ims: ["x"], cache_dir=False, batch_size=6).fit_transform(
            images
        )
    with pytest.raises(TypeError, match="not a str"):
        CaptionTransformer(model=lambda ims: [1] * len(ims), cache_dir=False).fit_transform(images)


# ---------------------------------------------------------------------------
# Precomputed captions, inputs, parameters, errors
# ---------------------------------------------------------------------------


def test_precomputed(images):
    texts = [f"scene {i}" for i in range(6)]
    X = images.with_captions(texts)
    out = CaptionTransformer(model="precomputed").fit_transform(X)
    assert list(out) == texts and out.dtype == object
    assert list(CaptionTransformer(model="precomputed").fit(X).transform(X[[4, 1]])) == [
        "scene 4",
        "scene 1",
    ]
    partial = images.with_captions(["a", None, "c", None, "e", "f"])
    with pytest.raises(ValueError, match=r"2 of 6 images have no caption \(indices 1, 3\)"):
        CaptionTransformer(model="precomputed").fit_transform(partial)
    with pytest.raises(ValueError, match="ImageSet carrying captions"):
        CaptionTransformer(model="precomputed").fit_transform(images)


def test_empty_input(blip_dir, monkeypatch):
    monkeypatch.setattr(_captioning_hf, "load_hf_captioner", None)  # must not be needed
    for X in (ImageSet(np.zeros((0, 8, 8, 3), np.uint8)), np.zeros((0, 8, 8, 3), np.uint8)):
        out = CaptionTransformer(model=str(blip_dir)).fit_transform(X)
        assert out.shape == (0,) and out.dtype == object


@pytest.mark.parametrize(
    "params, match",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"max_new_tokens": 1.5}, "max_new_tokens"),
        ({"num_beams": True}, "num_beams"),
        ({"model": 3}, "model must be"),
        ({"prompt": ["a"]}, "prompt"),
        ({"generate_kwargs": {"do_sample": True}}, "sampling is not supported"),
        ({"generate_kwargs": "greedy"}, "generate_kwargs"),
        ({"cache_dir": 3}, "cache_dir"),
    ],
)
def test_bad_params(params, match, images):
    with pytest.raises(ValueError, match=match):
        CaptionTransformer(**{"model": "precomputed", **params}).fit(images)


def test_missing_folder_gives_one_clear_error(tmp_path):
    missing = tmp_path / "models" / "my-vlm"
    with pytest.raises(ModelNotFoundError) as err:
        CaptionTransformer(model=str(missing)).fit(None)
    msg = str(err.value)
    assert str(missing) in msg and "not found" in msg and "save_pretrained" in msg
    assert isinstance(err.value, OSError)
    # a folder that is not a model
    with pytest.raises(ModelNotFoundError, match="holds no config.json"):
        CaptionTransformer(model=str(tmp_path)).fit(None).transform(tiny.make_images(1))


def test_unreachable_hub_id_gives_one_clear_error(images, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ct = CaptionTransformer(model="nobody/no-such-vlm", cache_dir=tmp_path).fit(images)
    with pytest.raises(ModelNotFoundError) as err:
        ct.transform(images)
    msg = str(err.value)
    for part in (
        "nobody/no-such-vlm",
        "Hugging Face cache",
        "HF_HUB_OFFLINE",
        "hf download nobody/no-such-vlm",
        "model='/path/to/models/no-such-vlm'",
    ):
        assert part in msg
    assert DEFAULT_CAPTIONER == CaptionTransformer().model


def test_clone_params_pipeline_and_grid_search(tmp_path, clip_spec):
    cap = tiny.LoggingCaptioner(tmp_path / "log")
    ct = CaptionTransformer(model=cap, prompt="Describe.", batch_size=3, cache_dir=tmp_path / "c")
    params = ct.get_params()
    assert params["prompt"] == "Describe." and params["batch_size"] == 3
    c = clone(ct)
    assert c.get_params()["prompt"] == "Describe." and not hasattr(c, "captioner_id_")
    c.set_params(max_new_tokens=16)
    assert c.max_new_tokens == 16 and ct.max_new_tokens == 128

    X = ImageSet(tiny.make_images(12, seed=6))
    y = np.random.RandomState(2).randn(12)
    pipe = make_pipeline(ct, CLIPTextEmbedder(model=clip_spec, pretrained=None), Ridge())
    grid = GridSearchCV(pipe, {"ridge__alpha": [0.1, 10.0]}, cv=3).fit(X, y)
    assert grid.predict(X[:4]).shape == (4,)
    assert cap.n_calls() == 12
    fitted = pickle.loads(pickle.dumps(grid.best_estimator_))
    np.testing.assert_allclose(fitted.predict(X), grid.predict(X), rtol=1e-5)


def test_no_warnings_in_normal_use(blip_dir, images):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CaptionTransformer(model=str(blip_dir), max_new_tokens=4, cache_dir=False).fit_transform(
            images
        )


def _prefixed(images, prefix):
    return [prefix] * len(images)


class _ConfiguredCaptioner:
    def __init__(self, word):
        self.word = word

    def __call__(self, images):
        return [self.word] * len(images)


@pytest.mark.parametrize(
    "make",
    [lambda w: functools.partial(_prefixed, prefix=w), _ConfiguredCaptioner,
     lambda w: _ConfiguredCaptioner(w).__call__],
    ids=["partial", "instance", "bound-method"],
)
def test_configured_callables_never_share_a_cache_entry(images, tmp_path, make):
    # Their name does not show their configuration: two differently
    # configured captioners must not serve each other's captions.
    with pytest.warns(UserWarning, match="cache_key"):
        first = CaptionTransformer(model=make("one"), cache_dir=tmp_path).fit_transform(images)
    with pytest.warns(UserWarning, match="cache_key"):
        second = CaptionTransformer(model=make("two"), cache_dir=tmp_path).fit_transform(images)
    assert set(first) == {"one"} and set(second) == {"two"}
