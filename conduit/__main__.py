"""``python -m conduit``: the same as the ``conduit`` command."""

import sys

from conduit.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
