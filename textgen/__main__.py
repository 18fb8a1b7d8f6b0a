"""`python -m textgen ...`: the command line (see `textgen/cli/main.py`)."""

import os
import sys

# Before TensorFlow is imported anywhere: hide its C++ start-up chatter.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from textgen.cli.main import main  # noqa: E402

code = main()
if "tensorflow" in sys.modules:
    # Everything is written and closed by now; skip the interpreter's teardown, which waits on
    # TensorFlow's and tf.data's thread pools (seconds after a training command, more on busy
    # cores) while the command looks hung; for a job's `worker`, while it still holds its memory.
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, OSError):
        pass
    os._exit(code)
sys.exit(code)
