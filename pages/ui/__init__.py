"""Shared UI helpers: the only code besides the page scripts that imports streamlit.

Pages stay thin: widgets in, calls into `textgen`, figures out. What more than one page needs
(opening the store, showing an error, cached read-only lookups) lives here once.

Streamlit discovers pages from `pages/*.py` only, so this package (a folder) is never a page.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import streamlit as st

from textgen.errors import TextgenError
from textgen.store import RunStore

DEFAULT_SAMPLE = "dates"


@contextlib.contextmanager
def open_store() -> Iterator[RunStore]:
    """A store handle for this script run (cheap: one SQLite connection, closed at the end)."""
    store = RunStore()
    try:
        yield store
    finally:
        store.close()


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Show a TextgenError as a message box instead of a traceback; let bugs surface in logs."""
    try:
        yield
    except TextgenError as error:
        st.error(str(error), icon=":material/error:")


@st.cache_resource(show_spinner="Preparing the built-in sample corpus…")
def ensure_default_corpus() -> str:
    """Register the default sample corpus once per server process; returns its id (a str)."""
    from textgen import corpora

    with open_store() as store:
        return corpora.register_reference(store, f"sample:{DEFAULT_SAMPLE}").id
