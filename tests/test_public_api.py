"""The public contract of /work/shared/DESIGN.md, checked against the package.

Whatever the internal layout becomes, the documented names import from their
documented modules, every estimator imports from ``skvem`` itself, ``import
skvem`` stays cheap, docs/api.rst lists every public name, the ``skvem``
command lists every subcommand and no module grows past 500 lines.
"""

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.base import BaseEstimator

import skvem

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "skvem"

# DESIGN.md, "Public names": name -> the module it is documented in.
DESIGN_NAMES = {
    "ImageSet": "skvem.images",
    "as_imageset": "skvem.images",
    "CaptionTransformer": "skvem.captioning",
    "CLIPTextEmbedder": "skvem.text",
    "SentenceEmbedder": "skvem.text",
    "ImageFeaturizer": "skvem.featurizers",
    "AlignedImageFeaturizer": "skvem.featurizers",
    "VoxelRidgeCV": "skvem.ridge",
    "BandedVoxelRidgeCV": "skvem.ridge",
    "FeatureSpaces": "skvem",
    "pearson_r": "skvem.metrics",
    "noise_ceiling": "skvem.metrics",
    "algonauts_score": "skvem.metrics",
    "correlation_scorer": "skvem.metrics",
    "make_scenes": "skvem.datasets",
    "load_algonauts2023": "skvem.datasets",
    "write_algonauts_submission": "skvem.datasets",
    "load_nsd": "skvem.datasets",
    "variance_partitioning": "skvem.analysis",
    "paired_difference": "skvem.analysis",
    "plot_roi_scores": "skvem.plotting",
    "plot_surface_scores": "skvem.plotting",
    "RidgeCV": "skvem.dropin",
    "KernelRidgeCV": "skvem.dropin",
}

DOCUMENTED_MODULES = (
    "skvem.ridge", "skvem.text", "skvem.captioning", "skvem.featurizers", "skvem.metrics",
    "skvem.images", "skvem.datasets", "skvem.analysis", "skvem.plotting", "skvem.dropin",
)

# Modules whose ``__all__`` is public API: api.rst must list all of it.
PUBLIC_MODULES = DOCUMENTED_MODULES + (
    "skvem", "skvem.encoding", "skvem.vision", "skvem.language", "skvem.vision.training",
    "skvem.scale",
)

# The drop-ins keep himalaya's names, so that ``from skvem import *`` would
# shadow scikit-learn's RidgeCV: they are exported from skvem.dropin only (a
# deliberate exception to "every estimator from skvem", see skvem/dropin).
NOT_AT_TOP_LEVEL = ("skvem.dropin",)

MAX_LINES = 500


def _public_objects():
    """``(module, name, object)`` for every name in a public module's ``__all__``."""
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            if name != "__version__":
                yield module_name, name, getattr(module, name)


@pytest.mark.parametrize("module_name", DOCUMENTED_MODULES)
def test_documented_module_paths_import(module_name):
    module = importlib.import_module(module_name)
    assert module.__all__, module_name


@pytest.mark.parametrize("name, module_name", sorted(DESIGN_NAMES.items()))
def test_design_name_imports_from_its_documented_module(name, module_name):
    module = importlib.import_module(module_name)
    assert name in module.__all__
    obj = getattr(module, name)
    assert getattr(obj, "__name__", name) == name
    if isinstance(obj, type) and issubclass(obj, BaseEstimator) and module_name not in NOT_AT_TOP_LEVEL:
        assert getattr(skvem, name) is obj


def test_every_estimator_class_imports_from_skvem():
    missing = sorted(
        f"{module_name}.{name}" for module_name, name, obj in _public_objects()
        if isinstance(obj, type) and issubclass(obj, BaseEstimator)
        and obj.__module__.startswith("skvem.") and module_name not in NOT_AT_TOP_LEVEL
        and getattr(skvem, name, None) is not obj
    )
    assert not missing, f"add these to skvem._EXPORTS: {missing}"


def test_every_top_level_export_resolves():
    for name in skvem.__all__:
        assert getattr(skvem, name) is not None, name
    assert set(skvem.__all__) <= set(dir(skvem))
    with pytest.raises(AttributeError, match="no_such_name"):
        skvem.no_such_name  # noqa: B018


def _imports_after(code):
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(sorted(m for m in sys.modules))"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout
    return set(out.strip().splitlines()[-1].strip("[]").replace("'", "").split(", "))


@pytest.mark.parametrize("code", [
    "import skvem; dir(skvem); skvem.__all__",
    "from skvem.app.cli import build_parser; build_parser().format_help()",
])
def test_import_skvem_and_the_command_line_help_do_not_load_torch(code):
    heavy = {"torch", "transformers", "open_clip", "himalaya", "sklearn"}
    assert not heavy & _imports_after(code)


def test_help_lists_every_subcommand():
    from skvem.app.cli import COMMANDS

    modules = {path.stem[len("cmd_"):] for path in (PACKAGE / "app").glob("cmd_*.py")}
    assert {name.replace("-", "_") for name in COMMANDS} == modules, (
        "every skvem/app/cmd_<name>.py is a subcommand listed in COMMANDS")
    out = subprocess.run(
        [sys.executable, "-m", "skvem", "--help"], capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout
    listed = set(re.findall(r"^ {4}(\S+)", out, flags=re.MULTILINE))
    assert set(COMMANDS) <= listed, out


def _api_rst():
    text = (ROOT / "docs" / "api.rst").read_text(encoding="utf-8")
    entries = set(re.findall(r"^ {3}(skvem[\w.]*)$", text, flags=re.MULTILINE))
    return text, entries


def _resolve(path):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_api_rst_entries_resolve():
    _, entries = _api_rst()
    assert entries
    for entry in entries:
        assert _resolve(entry) is not None, entry


def test_api_rst_lists_every_public_name():
    text, entries = _api_rst()
    documented = {id(_resolve(entry)) for entry in entries}
    missing = []
    for module_name, name, obj in _public_objects():
        ours = callable(obj) and getattr(obj, "__module__", "").startswith("skvem")
        if ours and id(obj) not in documented:
            missing.append(f"{module_name}.{name}")
        # A constant or a re-exported third-party name is at least named.
        if not ours and not re.search(rf"\b{re.escape(name)}\b", text):
            missing.append(f"{module_name}.{name}")
    assert not missing, f"docs/api.rst does not list {sorted(set(missing))}"


def test_no_module_over_500_lines():
    lines = {
        path.relative_to(PACKAGE).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    over = {rel: n for rel, n in lines.items() if n > MAX_LINES}
    assert not over, f"split these modules (lines per file under skvem/): {over}"


def test_version_matches_pyproject():
    # No tomllib: Python 3.10 is supported.
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^version = "([^"]+)"$', text, flags=re.MULTILINE).group(1) == skvem.__version__


@pytest.mark.parametrize("name, attribute", [
    ("CaptionTransformer", "_captioner_"), ("CLIPTextEmbedder", "_encoder_"),
    ("SentenceEmbedder", "_encoder_"), ("ImageFeaturizer", "_backbone"),
])
def test_pickling_leaves_the_loaded_model_of_the_live_estimator(name, attribute):
    # On Python >= 3.11 object.__getstate__ returns the live __dict__: popping
    # from it would unload the model of the estimator being pickled (joblib
    # does that for every parallel fold), not only leave it out of the copy.
    import pickle

    estimator = getattr(skvem, name)()
    loaded = object()
    setattr(estimator, attribute, loaded)
    copy = pickle.loads(pickle.dumps(estimator))
    assert getattr(estimator, attribute) is loaded
    assert not hasattr(copy, attribute)
