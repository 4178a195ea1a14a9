"""Every command checks its output path before it loads a model (issue 13, item 6)."""

import os

import pytest

from skvem.app import _common
from skvem.app.cli import main


@pytest.fixture
def no_work(monkeypatch):
    """Make any model loading or fitting fail loudly: the check must come first."""
    def boom(*args, **kwargs):
        raise AssertionError("work started before the output path was checked")

    import skvem.app.algonauts as algonauts
    import skvem.app.demo as demo
    import skvem.language.captioning as captioning

    monkeypatch.setattr(demo, "run_demo", boom)
    monkeypatch.setattr(algonauts.AlgonautsJob, "run", boom)
    monkeypatch.setattr(captioning.CaptionTransformer, "fit", boom)


def _error(capsys):
    return capsys.readouterr().err.strip()


@pytest.mark.parametrize("command", [
    ["demo"], ["algonauts", "--root", "r", "--subject", "1"],
])
def test_folder_commands_refuse_an_existing_file(command, tmp_path, capsys, no_work):
    existing = tmp_path / "results.txt"
    existing.write_text("keep me")
    assert main([*command, "--out", str(existing)]) == 2
    err = _error(capsys)
    assert "--out" in err and "existing file" in err and str(existing) in err
    assert existing.read_text() == "keep me"


@pytest.mark.parametrize("command", [
    ["demo"], ["algonauts", "--root", "r", "--subject", "1"], ["caption", "x.png", "--model", "m"],
])
def test_empty_out_is_refused(command, tmp_path, capsys, no_work, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([*command, "--out", ""]) == 2
    assert "--out must be a non-empty path" in _error(capsys)
    assert os.listdir(tmp_path) == []


def test_caption_refuses_a_folder_without_leaving_partial(tmp_path, capsys, no_work):
    folder = tmp_path / "captions"
    folder.mkdir()
    assert main(["caption", str(tmp_path), "--model", "m", "--out", str(folder)]) == 2
    assert "is a folder; expected a file name" in _error(capsys)
    assert not (tmp_path / "captions.partial").exists()


def test_output_below_a_file_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(_common.CommandError, match="which is a file"):
        _common.check_output_path(blocker / "sub" / "out.jsonl", kind="file", option="--out")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions, not root")
def test_read_only_parent_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(_common.CommandError, match="not writable"):
            _common.check_output_path(ro / "new" / "deeper", kind="dir", option="--out")
    finally:
        ro.chmod(0o700)


def test_new_paths_pass_and_are_not_created(tmp_path):
    target = tmp_path / "a" / "b"
    assert _common.check_output_path(target, kind="dir") == str(target)
    assert _common.check_output_path(tmp_path / "c.jsonl", kind="file") == str(tmp_path / "c.jsonl")
    assert not (tmp_path / "a").exists()
    with pytest.raises(ValueError, match="kind"):
        _common.check_output_path(target, kind="folder")
