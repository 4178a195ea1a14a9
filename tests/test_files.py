"""skvem._utils.files: a file is replaced whole or left as it was."""

import os
import stat

import pytest

from skvem._utils.files import atomic_path, write_json_atomic, write_text_atomic


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "report.json"
    write_json_atomic(path, {"version": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            with open(tmp, "w") as f:
                f.write('{"version": 2, "trunc')
            raise RuntimeError("killed mid-write")
    assert path.read_text() == '{\n  "version": 1\n}\n'
    assert os.listdir(tmp_path) == ["report.json"]


def test_success_replaces_keeps_the_ending_and_the_umask(tmp_path):
    path = tmp_path / "sub" / "figure.png"
    with atomic_path(path) as tmp:
        assert tmp.endswith(".png") and os.path.dirname(tmp) == str(tmp_path / "sub")
        with open(tmp, "wb") as f:
            f.write(b"png")
    assert path.read_bytes() == b"png"
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "t.md", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "t.md").st_mode) == 0o644
