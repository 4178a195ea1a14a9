"""Test-session settings: never touch the user's cache, never reach a hub."""

import os

import pytest

# Set before any test module imports transformers or huggingface_hub, which
# read these once at import time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Figures are drawn off-screen, whatever display the machine has.
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory):
    """Point skvem's default cache at a folder that lives for this session."""
    old = os.environ.get("SKVEM_CACHE_DIR")
    os.environ["SKVEM_CACHE_DIR"] = str(tmp_path_factory.mktemp("skvem-cache"))
    yield
    if old is None:
        os.environ.pop("SKVEM_CACHE_DIR", None)
    else:
        os.environ["SKVEM_CACHE_DIR"] = old

