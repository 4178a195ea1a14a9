"""Malformed inputs at every public entry point fail cleanly (issue 13).

Each sweep feeds one entry point values drawn (with a fixed seed) from a
catalogue of malformed inputs: wrong types, empty and ragged arrays, NaN and
infinity, values beyond float32, masked arrays, generators, lone surrogates,
garbage files. A call may succeed (some odd inputs are legitimate); when it
fails, the failure must be a ValueError, TypeError, FileNotFoundError or a
named skvem error, and its message must name the offending parameter or
file. Cases that must fail say so.
"""

import os
import random

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from skvem._utils.cache import CacheError
from skvem._utils.hub import ModelNotFoundError
from skvem.app._common import CommandError
from skvem.datasets._safe_pickle import UnsafePickleError
from skvem.images import ImageLoadError

# Silently dropping an imaginary part is accepting a malformed value.
pytestmark = pytest.mark.filterwarnings("error::numpy.exceptions.ComplexWarning")

SEED = 13
CLEAN = (ValueError, TypeError, FileNotFoundError, ImageLoadError, CacheError, UnsafePickleError,
         ModelNotFoundError, CommandError, NotFittedError)


def _masked():
    return np.ma.masked_array(np.ones((6, 3)), mask=np.eye(6, 3, dtype=bool))


# The catalogue: (label, factory). Factories make a fresh value per call.
CATALOGUE = [
    ("None", lambda: None),
    ("empty str", lambda: ""),
    ("str", lambda: "abc"),
    ("bytes", lambda: b"\x00\xff"),
    ("negative", lambda: -1),
    ("zero", lambda: 0),
    ("fraction", lambda: 1.5),
    ("nan", lambda: float("nan")),
    ("inf", lambda: float("inf")),
    ("beyond float32", lambda: 1e39),
    ("bool", lambda: True),
    ("huge int", lambda: 10**30),
    ("empty list", lambda: []),
    ("nested empty", lambda: [[]]),
    ("ragged", lambda: [[1, 2], [3]]),
    ("dict", lambda: {"a": 1}),
    ("set", lambda: {1, 2}),
    ("object", lambda: object()),
    ("generator", lambda: (i for i in range(3))),
    ("function", lambda: (lambda x: x)),
    ("empty array", lambda: np.array([])),
    ("0 rows", lambda: np.zeros((0, 3))),
    ("NaN array", lambda: np.full((6, 3), np.nan)),
    ("inf array", lambda: np.full((6, 3), np.inf)),
    ("float32 overflow", lambda: np.full((6, 3), 1e39)),
    ("5-D array", lambda: np.zeros((2, 2, 2, 2, 2))),
    ("complex", lambda: np.ones((6, 3)) * 1j),
    ("str array", lambda: np.array([["a", "b", "c"]] * 6)),
    ("object array", lambda: np.array([None] * 6, dtype=object)),
    ("masked", _masked),
    ("surrogate", lambda: "\ud800"),
    ("surrogate list", lambda: ["fine", "\udfff broken"]),
]


def _stable(name):
    """A per-parameter seed that, unlike ``hash``, is the same in every process."""
    return SEED + sum(map(ord, name))


def _sample(k, seed):
    rng = random.Random(seed)
    return rng.sample(CATALOGUE, k) if k < len(CATALOGUE) else list(CATALOGUE)


def _clean_failure(call, names, *, must_fail=False, also=(), label=None):
    """Run ``call``; if it raises, the error must be clean and name one of ``names``."""
    label = label if label is not None else _current_label()
    try:
        call()
    except CLEAN + tuple(also) as exc:
        message = str(exc)
        assert any(n.lower() in message.lower() for n in names), (
            f"[{label}] {type(exc).__name__} does not name any of {names}: {message!r}"
        )
        return exc
    except Exception as exc:  # noqa: BLE001 - the point is to catch everything else
        pytest.fail(f"[{label}] unclean failure {type(exc).__name__}: {exc}")
    if must_fail:
        pytest.fail(f"[{label}] accepted a value that must be refused ({names})")
    return None


def _current_label():
    """The catalogue entry being tried, found in the caller's frames (for messages)."""
    import sys

    frame = sys._getframe(2)  # inspect.stack() reads source files: far too slow here
    for _ in range(4):
        if frame is None:
            break
        if "label" in frame.f_locals:
            return frame.f_locals["label"]
        frame = frame.f_back
    return "?"


# ---------------------------------------------------------------------------
# Images


@pytest.mark.parametrize("label, make", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_imageset_images(label, make):
    from skvem.images import ImageSet, as_imageset

    def build_and_read():
        images = as_imageset(make())
        for i in range(min(len(images), 2)):
            images.get_array(i)
        images.fingerprints()

    _clean_failure(build_and_read, ["image", "array", "shape", "dtype"],
                   must_fail=label not in ("empty list", "0 rows", "empty array"))
    del ImageSet


@pytest.mark.parametrize("column", ["ids", "captions"])
def test_imageset_columns(column):
    from skvem.images import ImageSet

    pixels = np.zeros((6, 4, 4, 3), np.uint8)
    for label, make in CATALOGUE:
        if label in ("None",):
            continue
        _clean_failure(lambda: ImageSet(pixels, **{column: make()}), [column])


def test_imageset_indexing():
    from skvem.images import ImageSet

    images = ImageSet(np.zeros((6, 4, 4, 3), np.uint8))
    for label, make in CATALOGUE:
        _clean_failure(lambda: images[make()], ["index", "mask", "axis", "images"],
                       also=(IndexError,))


# ---------------------------------------------------------------------------
# Ridge and metrics


@pytest.fixture(scope="module")
def regression():
    rng = np.random.RandomState(SEED)
    X = rng.randn(30, 4)
    return X, X @ rng.randn(4, 3) + 0.1 * rng.randn(30, 3)


@pytest.mark.parametrize("param", ["alphas", "cv", "backend", "solver", "n_targets_batch"])
def test_ridge_parameters(param, regression):
    from skvem import VoxelRidgeCV

    X, y = regression
    for label, make in _sample(16, _stable(param)):
        if param in ("alphas", "cv", "n_targets_batch") and label == "None":
            continue  # documented defaults
        _clean_failure(lambda: VoxelRidgeCV(**{param: make()}).fit(X, y), [param])


@pytest.mark.parametrize("which", ["X", "y"])
def test_ridge_data(which, regression):
    from skvem import VoxelRidgeCV

    X, y = regression
    for label, make in CATALOGUE:
        args = {"X": X, "y": y}
        args[which] = make()
        _clean_failure(lambda: VoxelRidgeCV().fit(args["X"], args["y"]),
                       [which, "sample", "sklearn", "array", "feature", "rows", "NaN", "finite",
                        "masked", "float32", "range", "complex", "target", "voxel"])


def test_ridge_predict_and_score(regression):
    from skvem import VoxelRidgeCV

    X, y = regression
    model = VoxelRidgeCV().fit(X, y)
    for label, make in CATALOGUE:
        _clean_failure(lambda: model.predict(make()),
                       ["X", "feature", "array", "NaN", "finite", "masked", "sample", "complex",
                        "range", "float32"])
        _clean_failure(lambda: model.score(X, make()),
                       ["y", "sample", "array", "NaN", "finite", "masked", "rows", "complex",
                        "target", "range", "float32", "voxel"])


@pytest.mark.parametrize("name", ["pearson_r", "noise_ceiling", "algonauts_score"])
def test_metrics(name):
    from skvem import metrics

    rng = np.random.RandomState(SEED)
    good = rng.randn(6, 3)
    repeats = rng.randn(6, 2, 3)
    for label, make in CATALOGUE:
        if name == "pearson_r":
            calls = [lambda: metrics.pearson_r(make(), good), lambda: metrics.pearson_r(good, make())]
        elif name == "noise_ceiling":
            calls = [lambda: metrics.noise_ceiling(make())]
        else:
            calls = [lambda: metrics.algonauts_score(good, good, make()),
                     lambda: metrics.algonauts_score(make(), good, np.full(3, 50.0))]
        for call in calls:
            _clean_failure(call, ["y_true", "y_pred", "repeats", "noise_ceiling", "shape",
                                  "NaN", "finite", "masked", "rows", "array", "voxel", "complex"])
    del repeats


# ---------------------------------------------------------------------------
# Captioning and text


def test_caption_transformer_with_a_callable():
    from skvem import CaptionTransformer

    images = np.zeros((3, 8, 8, 3), np.uint8)
    for label, make in CATALOGUE:
        def captioner(pil, make=make):
            return make()

        _clean_failure(
            lambda: CaptionTransformer(model=captioner, cache_dir=False, batch_size=3)
            .fit_transform(images),
            ["captioner"], must_fail=True,
        )


@pytest.mark.parametrize("param", ["max_new_tokens", "num_beams", "batch_size", "prompt",
                                   "generate_kwargs", "revision", "cache_dir", "model"])
def test_caption_transformer_parameters(param, tmp_path):
    from skvem import CaptionTransformer

    images = np.zeros((2, 8, 8, 3), np.uint8)

    def describe(pil):
        return ["x"] * len(pil)

    describe.cache_key = "fuzz/v1"
    for label, make in _sample(14, _stable(param)):
        if label == "None" and param in ("prompt", "generate_kwargs", "revision", "cache_dir"):
            continue
        value = make()
        if param == "cache_dir" and isinstance(value, str) and value:
            value = str(tmp_path / value)
        params = {"model": describe, "cache_dir": False, param: value}
        _clean_failure(lambda: CaptionTransformer(**params).fit_transform(images),
                       [param, "captioner", "not found"])


@pytest.fixture(scope="module")
def text_models(tmp_path_factory):
    from skvem.testing import language_models as tiny

    clip = tiny.make_tiny_open_clip(tmp_path_factory.mktemp("clip"), context_length=16)
    st = tiny.make_tiny_sentence_model(tmp_path_factory.mktemp("st"), max_seq_length=16)
    return {"clip": f"local-dir:{clip}", "st": str(st)}


@pytest.mark.parametrize("kind", ["clip", "st"])
def test_text_embedders(kind, text_models):
    from skvem import CLIPTextEmbedder, SentenceEmbedder

    if kind == "clip":
        make_model = lambda **kw: CLIPTextEmbedder(  # noqa: E731
            model=text_models["clip"], pretrained=None, device="cpu", **kw)
    else:
        make_model = lambda **kw: SentenceEmbedder(model=text_models["st"], device="cpu", **kw)  # noqa: E731
    fitted = make_model().fit(["a cat", "a dog"])
    for label, make in CATALOGUE:
        must = label in ("surrogate", "surrogate list", "dict", "set", "object", "function", "str",
                         "bytes", "empty str", "negative", "fraction", "nan")
        _clean_failure(lambda: fitted.transform(make()), ["caption", "captions", "str", "column"],
                       must_fail=must and label != "str")
    exc = _clean_failure(lambda: fitted.transform(["fine", "\ud800"]), ["caption 1"], must_fail=True)
    assert "lone surrogate" in str(exc)
    for param in ("batch_size", "normalize", "long_text"):
        for label, make in _sample(5, _stable(param)):
            _clean_failure(lambda: make_model(**{param: make()}).fit_transform(["a cat"]), [param])


# ---------------------------------------------------------------------------
# Image features


@pytest.mark.parametrize("param", ["batch_size", "layer", "pooling", "device", "image_size",
                                   "backbone"])
def test_image_featurizer_parameters(param):
    from skvem import ImageFeaturizer

    images = np.zeros((2, 16, 16, 3), np.uint8)
    for label, make in _sample(10, _stable(param)):
        if label == "None" and param in ("layer", "image_size"):
            continue
        params = {"backbone": "small-cnn", "random_state": 0, "cache_dir": False, param: make()}
        _clean_failure(lambda: ImageFeaturizer(**params).fit_transform(images),
                       [param, "backbone", "not found", "device"])


def test_image_featurizer_images():
    from skvem import ImageFeaturizer

    feat = ImageFeaturizer(backbone="small-cnn", random_state=0, cache_dir=False)
    for label, make in CATALOGUE:
        _clean_failure(lambda: feat.fit_transform(make()), ["image", "array", "shape", "dtype"])


# ---------------------------------------------------------------------------
# Data sets


def _garbage_tree(root, rng, names):
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.bytes(int(rng.randint(0, 300))))


ALGONAUTS_FILES = [
    "subj01/training_split/training_images/train-0001_nsd-00001.png",
    "subj01/training_split/training_images/train-0002_nsd-00002.png",
    "subj01/training_split/training_fmri/lh_training_fmri.npy",
    "subj01/training_split/training_fmri/rh_training_fmri.npy",
    "subj01/test_split/test_images/test-0001_nsd-00003.png",
    "subj01/roi_masks/mapping_prf-visualrois.npy",
    "subj01/roi_masks/lh.prf-visualrois_challenge_space.npy",
]
NSD_FILES = [
    "nsddata/experiments/nsd/nsd_expdesign.mat",
    "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5",
    "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_session01.hdf5",
    "nsddata/ppdata/subj01/func1pt8mm/roi/nsdgeneral.nii.gz",
]


@pytest.mark.parametrize("seed", range(3))
def test_dataset_loaders_on_garbage_folders(tmp_path, seed):
    from skvem.datasets import load_algonauts2023, load_nsd

    rng = np.random.RandomState(SEED + seed)
    # each file present or not, garbage when present
    _garbage_tree(tmp_path / "alg", rng, [f for f in ALGONAUTS_FILES if rng.rand() < 0.8])
    _garbage_tree(tmp_path / "nsd", rng, [f for f in NSD_FILES if rng.rand() < 0.8])
    exc = _clean_failure(lambda: load_algonauts2023(tmp_path / "alg", 1), [str(tmp_path / "alg")],
                         must_fail=True)
    assert "Traceback" not in str(exc)
    _clean_failure(lambda: load_nsd(tmp_path / "nsd", 1), [str(tmp_path / "nsd")], must_fail=True)


def test_dataset_loader_parameters(tmp_path):
    from skvem.datasets import load_algonauts2023, load_nsd, make_scenes

    for label, make in CATALOGUE:
        _clean_failure(lambda: load_algonauts2023(tmp_path, make()), ["subject"], must_fail=True)
        _clean_failure(lambda: load_nsd(tmp_path, 1, sessions=make()),
                       ["sessions", "nsd_expdesign"], must_fail=True)
    for param in ("n_images", "n_repeats", "image_size", "snr", "max_objects"):
        for label, make in _sample(6, _stable(param)):
            if label == "None" and param == "snr":
                continue
            _clean_failure(
                lambda: make_scenes(**{"n_images": 12, "n_reference": 50, "image_size": 32,
                                       param: make()}),
                [param],
            )


def test_write_algonauts_submission(tmp_path):
    from skvem.datasets import write_algonauts_submission

    good = np.zeros((3, 5))
    for label, make in CATALOGUE:
        _clean_failure(lambda: write_algonauts_submission(tmp_path, 1, make(), 2),
                       ["predictions", "hemisphere", "columns"], must_fail=True)
        _clean_failure(lambda: write_algonauts_submission(tmp_path, 1, good, make()),
                       ["hemisphere_slices", "n_lh"], must_fail=True)
        _clean_failure(lambda: write_algonauts_submission(tmp_path, make(), good, 2),
                       ["subject"], must_fail=True)
    assert not [p for p in tmp_path.rglob("*.tmp-*")]


# ---------------------------------------------------------------------------
# The command line


@pytest.mark.parametrize("argv", [
    ["demo", "--out", ""],
    ["demo", "--folds", "0"],
    ["demo", "--n-images", "-5"],
    ["caption", "nowhere.png", "--model", "m", "--out", "x.jsonl"],
    ["caption", "nowhere.h5", "--model", "m", "--out", "x.jsonl"],
    ["caption", ".", "--model", "m", "--out", "."],
    ["algonauts", "--root", "nowhere", "--subject", "1", "--out", "o"],
    ["algonauts", "--root", "nowhere", "--subject", "9", "--out", "o"],
])
def test_cli_errors_are_one_line(argv, tmp_path, capsys, monkeypatch):
    from skvem.app.cli import main

    monkeypatch.chdir(tmp_path)
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith(f"skvem {argv[0]}: error:"), err
    assert "Traceback" not in err
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".partial")]
