"""The command line, `python -m textgen ...`."""
