"""`python -m textgen ...`: the command line (see `textgen/cli.py`)."""

import sys

from textgen.cli import main

sys.exit(main())
