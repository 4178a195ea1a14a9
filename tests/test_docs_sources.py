"""Cheap checks of the documentation sources that the Sphinx build would fail on.

The docs build (``make -C docs html``, warnings are errors) takes a minute and
is not part of ``make test``; a section underline one character short in an
example is the mistake that broke it most often.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "examples").glob("*.py")) + sorted((ROOT / "docs").glob("**/*.rst"))
SOURCES = [path for path in SOURCES if not {"_build", "generated", "auto_examples"} & set(path.parts)]
UNDERLINE = re.compile(r"([=\-~^#*+])\1{2,}")  # not quotes: a docstring ends in """


def _short_underlines(lines):
    for i in range(1, len(lines)):
        title, line = lines[i - 1].rstrip(), lines[i].rstrip()
        if UNDERLINE.fullmatch(line) and title.strip() and not UNDERLINE.fullmatch(title):
            if len(line) < len(title):
                yield i + 1, title


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_section_underlines_are_long_enough(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    if path.suffix == ".py":
        # sphinx-gallery text blocks: the module docstring and "# " comment lines.
        lines = [line[2:] if line.startswith("# ") else line for line in lines]
    short = list(_short_underlines(lines))
    assert not short, f"{path.name}: underline shorter than its title at lines {short}"


def test_the_check_finds_a_short_underline():
    assert list(_short_underlines(["Title", "===="])) == [(2, "Title")]
    assert not list(_short_underlines(["Title", "=====", "", "Next", "----", "text"]))


def test_cli_page_shows_the_help_of_every_subcommand():
    from skvem.app.cli import COMMANDS

    text = (ROOT / "docs" / "user_guide" / "cli.rst").read_text(encoding="utf-8")
    shown = set(re.findall(r"^\.\. skvem-help:: (\S+)$", text, flags=re.MULTILINE))
    assert set(COMMANDS) <= shown, f"docs/user_guide/cli.rst lacks {sorted(set(COMMANDS) - shown)}"
