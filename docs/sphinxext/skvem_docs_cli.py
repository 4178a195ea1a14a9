"""``.. skvem-help:: SUBCOMMAND``: the ``--help`` text of the ``skvem`` command.

Rendered from :func:`skvem.app.cli.build_parser` at build time, so the options
listed in the documentation are always those of the installed command.
"""

import argparse
import os

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

# Wide enough for the option column, narrow enough for the page.
_WIDTH = "90"


def _subparser(parser, name):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            if name in action.choices:
                return action.choices[name]
    raise KeyError(name)


class SkvemHelp(SphinxDirective):
    """Insert ``skvem [SUBCOMMAND] --help`` as a literal block."""

    optional_arguments = 1
    has_content = False

    def run(self):
        from skvem.app.cli import build_parser

        previous = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = _WIDTH
        try:
            parser = build_parser()
            if self.arguments:
                try:
                    parser = _subparser(parser, self.arguments[0])
                except KeyError:
                    raise self.error(f"skvem has no subcommand {self.arguments[0]!r}") from None
            # Python >= 3.14 may colour help text; a page wants none.
            if hasattr(parser, "color"):
                parser.color = False
            text = parser.format_help()
        finally:
            if previous is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = previous
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


def setup(app):
    app.add_directive("skvem-help", SkvemHelp)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
