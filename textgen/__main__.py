"""`python -m textgen ...`: the command line (see `textgen/cli.py`)."""

import os
import sys

# Before TensorFlow is imported anywhere: hide its C++ start-up chatter.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from textgen.cli import main  # noqa: E402

sys.exit(main())
