"""TextGen Lab: train, compare and inspect text-generation models.

This package is the library behind the Streamlit app and the command line (`python -m textgen`).
It never imports streamlit. Heavy modules (TensorFlow) are imported lazily by the modules that
need them, so `import textgen` and the CLI's `--help` stay fast.
"""

__version__ = "0.1.0"
