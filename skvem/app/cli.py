"""The ``skvem`` command: ``skvem demo``, ``skvem caption``, ``skvem algonauts``.

Every subcommand turns an error it can explain (bad input, a missing file or
model) into one line on stderr and exit status 2; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from skvem.app._common import CommandError

__all__ = ["main", "build_parser", "COMMANDS"]

# One module per subcommand, each with ``add_parser(sub)`` and ``run(args)``.
COMMANDS = ("demo", "caption", "cache", "algonauts", "pretrain-scenes")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``skvem`` command."""
    from skvem import __version__

    parser = argparse.ArgumentParser(
        prog="skvem",
        description=(
            "LLM-aligned fMRI visual encoding models (LLM-VEM) as scikit-learn estimators. "
            "Run `skvem demo` first."
        ),
    )
    parser.add_argument("--version", action="version", version=f"skvem {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show full tracebacks instead of one-line errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    for name in COMMANDS:
        importlib.import_module(f"skvem.app.cmd_{name.replace('-', '_')}").add_parser(sub)
    return parser


def main(argv=None) -> int:
    """Run the ``skvem`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("skvem: interrupted (cached captions and features are kept)", file=sys.stderr)
        return 130
    except (CommandError, ValueError, TypeError, OSError, KeyError, ImportError, RuntimeError) as exc:
        if args.debug:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"skvem {args.command}: error: {message}", file=sys.stderr)
        return 2
