"""What many test files use: the repository root, running the CLI as a user does, waiting for a
condition, copying a store, opening a page in AppTest, and a message's plain text."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, home: Path | None = None, timeout: float = 300, input: bytes | None = None):
    """Run `python -m textgen ARGS` in a subprocess, the way a user does."""
    import subprocess

    env = dict(os.environ)
    if home is not None:
        env["TEXTGEN_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "textgen", *args],
        cwd=ROOT, env=env, capture_output=True, timeout=timeout, input=input,
    )


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    """predicate()'s first truthy value, polled every `interval` s; AssertionError after `timeout`."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def copy_home(source: Path, destination: Path) -> Path:
    """A private, writable copy of a TEXTGEN_HOME (the SQLite WAL is checkpointed by closing)."""
    import shutil

    shutil.copytree(source, destination)
    return destination


def open_app(page: str, **query: str):
    """Run a page script in AppTest with some URL query parameters."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(page, default_timeout=120)
    for key, value in query.items():
        app.query_params[key] = value
    return app.run()


def plain(markdown: str) -> str:
    """A message box's text without the Markdown escapes `pages.ui.message` adds."""
    return re.sub(r"\\(.)", r"\1", markdown)
