"""The README's and the docs' benchmark figures are generated from results.json."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _render_docs():
    path = ROOT / "benchmarks" / "render_docs.py"
    spec = importlib.util.spec_from_file_location("_skvem_render_docs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_and_docs_table_match_results_json():
    # Drift guard: editing a figure by hand, or re-measuring without
    # re-rendering, fails here. Fix: python benchmarks/render_docs.py
    render_docs = _render_docs()
    for path, text in render_docs.expected_files().items():
        assert Path(path).read_text(encoding="utf-8") == text, (
            f"{path} is stale: run python benchmarks/render_docs.py")


def test_summary_rows_are_data_driven(tmp_path):
    render_docs = _render_docs()
    results = json.loads((ROOT / "benchmarks" / "results.json").read_text())
    rows = render_docs.collect_rows(results)
    assert rows and all(len(row) == 4 for row in rows)
    # An area is rendered only through its module's summary_rows: drop one
    # and its rows disappear, change a figure and the row changes.
    scenes = results["benchmarks"].pop("scenes")
    assert len(render_docs.collect_rows(results)) < len(rows)
    scenes["runs"][0]["seconds"] = 123.456
    results["benchmarks"]["scenes"] = scenes
    assert any("123.46 s" in row[1] for row in render_docs.collect_rows(results))


def test_replace_block_needs_the_markers():
    render_docs = _render_docs()
    text = "a\n<!-- bench:begin -->\nold\n<!-- bench:end -->\nb\n"
    assert render_docs.replace_block(text, "new") == (
        "a\n<!-- bench:begin -->\nnew\n<!-- bench:end -->\nb\n")
    with pytest.raises(ValueError, match="bench:begin"):
        render_docs.replace_block("no markers", "new")
