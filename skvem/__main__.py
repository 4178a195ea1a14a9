"""``python -m skvem``: the same as the ``skvem`` command."""

import sys

from skvem.app.cli import main

if __name__ == "__main__":
    sys.exit(main())
