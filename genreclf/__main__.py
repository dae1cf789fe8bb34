"""``python -m genreclf``: the ``genreclf`` command (see :mod:`genreclf.cli`)."""

import sys

from genreclf.cli import main

if __name__ == "__main__":
    sys.exit(main())
