"""Shared UI helpers: the only code besides the page scripts that imports streamlit.

Pages stay thin: widgets in, calls into `textgen`, figures out. What more than one page needs
lives here once: opening the store, turning user errors into messages, the URL query parameters
that make a view shareable, run pickers, the bounded cache of loaded models, and safe labels.

Streamlit discovers pages from `pages/*.py` only, so this package (a folder) is never a page.
Session state holds per-tab choices (ids, indices), never models or data; cached resources are
never mutated.
"""

from __future__ import annotations

import contextlib
import gc
import hmac
import re
import sys
import threading
import time
from typing import Iterator, Sequence

import streamlit as st

from textgen.core.errors import TextgenError
from textgen.core.text import chart_text, visible
from textgen.store.database import RunRecord, RunStore

DEFAULT_SAMPLE = "dates"
# How often pages that show live training poll the store (st.fragment(run_every=...)).
POLL_SECONDS = 1.0


@contextlib.contextmanager
def open_store() -> Iterator[RunStore]:
    """A store handle for this script run (cheap: one SQLite connection, closed at the end)."""
    store = RunStore()
    try:
        yield store
    finally:
        store.close()


_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def message(text: str, max_chars: int = 2000) -> str:
    """Untrusted text for a Markdown body (st.error, st.warning, st.info, st.success): literal.

    Those elements render Markdown, so a message quoting a corpus line, an upload's name or a run
    label could become a link or an image. Invisible characters are marked and every ASCII
    punctuation character is backslash-escaped (CommonMark's escapes), so the text shows as is.
    """
    lines = [visible(line) for line in str(text)[:max_chars].split("\n")]
    return "  \n".join(_MARKDOWN_PUNCTUATION.sub(r"\\\1", line) for line in lines)


def error(text: str) -> None:
    st.error(message(text), icon=":material/error:")


def warning(text: str) -> None:
    st.warning(message(text), icon=":material/warning:")


def success(text: str) -> None:
    st.success(message(text), icon=":material/check_circle:")


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Show a TextgenError (bad input, missing run, bad setting) as a message, not a traceback."""
    try:
        yield
    except TextgenError as problem:
        error(str(problem))


def ensure_default_corpus() -> str:
    """Register the default sample corpus in this TEXTGEN_HOME; returns its id (a str)."""
    from textgen.store.database import default_home

    return _ensure_default_corpus(str(default_home()))


@st.cache_resource(show_spinner="Preparing the built-in sample corpus…")
def _ensure_default_corpus(home: str) -> str:
    """Once per server process and store: registering is idempotent but builds a report."""
    from textgen.data import registry

    with RunStore(home) as store:
        return registry.register_reference(store, f"sample:{DEFAULT_SAMPLE}").id


def list_runs(store: RunStore) -> list[RunRecord]:
    """Every run, newest first, after marking runs whose process died as crashed."""
    from textgen.training import jobs

    jobs.reconcile(store)
    return store.list_runs()


def runs_with_checkpoint(store: RunStore) -> list[RunRecord]:
    """Runs that have written a checkpoint, i.e. that can generate."""
    from textgen.analysis import attention_views

    return [run for run in store.list_runs() if attention_views.has_checkpoint(store.run_dir(run.id))]


@contextlib.contextmanager
def page_runs(no_runs: str, *, icon: str = ":material/model_training:",
              trained_only: bool = False) -> Iterator[tuple[RunStore, list[RunRecord]]]:
    """Open the store and list the runs a page works on; with none, say so and yield no runs.

    Every run (`list_runs`: crashed ones marked first), or with trained_only those that can
    generate (`runs_with_checkpoint`). `no_runs` is the page's own message, written in its code
    (it is shown as Markdown, so never untrusted text). The page stops on an empty list:

        with ui.page_runs("No runs yet. ...") as (store, runs):
            if not runs:
                return
            ...  # the store stays open for the body; leave the block early to close it sooner
    """
    with open_store() as store:
        runs = runs_with_checkpoint(store) if trained_only else list_runs(store)
        if not runs:
            st.info(no_runs, icon=icon)
        yield store, runs


# -- safe labels -------------------------------------------------------------------------------


def label(text: str, max_chars: int | None = 80) -> str:
    """Untrusted text (run labels, corpus lines, tokens) for st.text/st.dataframe/widget options:
    invisible and bidi characters marked, shortened. Streamlit escapes it as text."""
    return visible(text, max_chars)


def chart_label(text: str, max_chars: int | None = 40) -> str:
    """Untrusted text for Plotly (axis ticks, legends, hover), which interprets some HTML tags:
    marked like `label`, then markup characters as numeric references (`textgen.core.text.chart_text`),
    so `<b>` or `<a href=...>` show as literal text."""
    return chart_text(text, max_chars)


def run_title(run: RunRecord) -> str:
    return f"{label(run.label, 50)} · {run.kind} · {run.status} · {run.id}"


# -- shareable state in the URL ----------------------------------------------------------------


def query_value(key: str, default: str | None = None) -> str | None:
    value = st.query_params.get(key)
    return value if value not in (None, "") else default


def query_list(key: str) -> list[str]:
    value = st.query_params.get(key)
    return [item for item in value.split(",") if item] if value else []


def query_int(key: str, default: int, low: int, high: int) -> int:
    """An integer from the URL, clamped to [low, high]; a crafted value never raises."""
    try:
        return min(max(int(st.query_params.get(key, default)), low), high)
    except (TypeError, ValueError):
        return default


def set_query(**values: str | int | Sequence[str] | None) -> None:
    """Write the view's state to the URL (None removes a key), so the link reproduces it."""
    for key, value in values.items():
        if value is None or value == "" or (isinstance(value, (list, tuple)) and not value):
            if key in st.query_params:
                del st.query_params[key]
            continue
        text = ",".join(value) if isinstance(value, (list, tuple)) else str(value)
        if st.query_params.get(key) != text:
            st.query_params[key] = text


def pick_runs(runs: Sequence[RunRecord], *, key: str = "runs", multiple: bool = True,
              default_count: int = 3, label_text: str = "Runs") -> list[str]:
    """A run picker whose selection lives in the URL (`?runs=r-...,r-...`).

    Ids in the URL that are not runs are ignored, so a stale or crafted link never fails.
    """
    ids = [run.id for run in runs]
    titles = {run.id: run_title(run) for run in runs}
    wanted = [run_id for run_id in query_list(key) if run_id in titles]
    if not wanted:
        wanted = ids[:default_count] if multiple else ids[:1]
    if multiple:
        chosen = st.multiselect(label_text, ids, default=wanted, format_func=titles.__getitem__,
                                key=f"pick-{key}")
    else:
        index = ids.index(wanted[0]) if wanted else 0
        chosen_one = st.selectbox(label_text, ids, index=index if ids else None,
                                  format_func=titles.__getitem__, key=f"pick-{key}")
        chosen = [chosen_one] if chosen_one else []
    set_query(**{key: chosen})
    return chosen


# -- models for generation ---------------------------------------------------------------------


@st.cache_resource(max_entries=4, show_spinner="Loading the model…")
def _load_trained(home: str, run_id: str, checkpoint_name: str):
    """At most 4 models in memory per server. The entry is never mutated; its lock serialises
    generation, so two sessions decoding with one model at once cannot interleave."""
    from pathlib import Path

    from textgen.core.fsutil import safe_join
    from textgen.training import artifacts

    trained = artifacts.load_trained(safe_join(Path(home), "runs", run_id), checkpoint_name=checkpoint_name)
    return trained, threading.Lock()


@contextlib.contextmanager
def trained_model(store: RunStore, run_id: str, checkpoint: str = "best"):
    """Yield a run's TrainedModel (checkpoint "best", "last" or a checkpoint name) under its lock.

    The cache is keyed by the checkpoint's folder name, so a newer best is loaded afresh.
    """
    from textgen.core.errors import StoreError
    from textgen.training import artifacts

    checkpoints = artifacts.Checkpoints(store.run_dir(run_id))
    info = checkpoints.get(checkpoint) if checkpoint in ("best", "last") else None
    name = info.name if info else checkpoint
    if name in ("best", "last"):
        raise StoreError(f"run {run_id} has no checkpoint yet; it is written at the first evaluation.")
    trained, lock = _load_trained(str(store.home), run_id, name)
    with lock:
        yield trained


# -- optional shared password ------------------------------------------------------------------

# `.streamlit/secrets.toml` (git-ignored):  [textgen]
#                                           password = "..."
# or the environment variable TEXTGEN_PASSWORD. Our own section, not Streamlit's `[auth]` (that
# one configures Streamlit's OpenID Connect login), and not a top-level key (Streamlit copies
# top-level secrets into the environment, where every training job would inherit it).
PASSWORD_SECTION = "textgen"
PASSWORD_ENV = "TEXTGEN_PASSWORD"
_PASSED_KEY = "textgen-password-passed"  # True once this session typed the right password
_FAILED_KEY = "textgen-password-failed"
_INPUT_KEY = "textgen-password-input"
# A wrong password costs this long (one session cannot try thousands a second).
WRONG_PASSWORD_DELAY_S = 0.5


class _PasswordMisconfigured(Exception):
    pass


def _configured_password() -> str | None:
    """The shared password, or None when none is configured (then nothing is gated).

    A secrets file that exists but cannot be read, or a `[textgen]` password that is not a
    non-empty string, raises: the gate then stays closed rather than silently open."""
    import os
    from pathlib import Path

    try:
        section = st.secrets[PASSWORD_SECTION] if PASSWORD_SECTION in st.secrets else None
    except FileNotFoundError:  # Streamlit's "no secrets found" or "cannot parse secrets"
        files = st.get_option("secrets.files") or []
        if any(Path(path).exists() for path in files):
            raise _PasswordMisconfigured(
                "The secrets file (.streamlit/secrets.toml) could not be read; fix its TOML syntax "
                "and restart the app.") from None
        section = None
    if section is not None and "password" in section:
        password = section["password"]
        if not isinstance(password, str) or not password:
            raise _PasswordMisconfigured(
                f"[{PASSWORD_SECTION}] password in .streamlit/secrets.toml must be a non-empty "
                "string; fix it and restart the app.")
        return password
    return os.environ.get(PASSWORD_ENV) or None


def _check_password() -> None:
    """Form callback: compare in constant time, keep only a flag, forget the typed text."""
    typed = st.session_state.get(_INPUT_KEY) or ""
    st.session_state[_INPUT_KEY] = ""
    try:
        expected = _configured_password()
    except _PasswordMisconfigured:
        expected = None
    if expected is not None and hmac.compare_digest(typed.encode("utf-8"), expected.encode("utf-8")):
        st.session_state[_PASSED_KEY] = True
        st.session_state.pop(_FAILED_KEY, None)
    else:
        time.sleep(WRONG_PASSWORD_DELAY_S)
        st.session_state[_FAILED_KEY] = True


_HEAP_FROZEN = threading.Event()  # process-wide and set once: not per-user state


def _freeze_imported_heap() -> None:
    """Once TensorFlow and Keras are imported, move everything alive into the garbage collector's
    permanent generation. After every script run Streamlit collects all generations and calls
    `keras.backend.clear_session()`, which collects again; with TensorFlow's module objects in the
    heap each page run paid 0.3-0.5 s for that (bench/app_latency.py: home page 560 -> 34 ms
    median with models loaded). Objects created later (models, pages' data) are collected as
    usual; what is frozen here is what lives as long as the process anyway."""
    if _HEAP_FROZEN.is_set() or "keras" not in sys.modules:
        return
    _HEAP_FROZEN.set()
    gc.collect()
    gc.freeze()


def require_password() -> None:
    """Gate the page behind the shared password when one is configured; call it right after
    st.set_page_config. Without a password this does nothing. With one, a session that has not
    typed it sees only the password form (the script stops there); the right password sets a
    flag in session state (the password itself is never stored or shown), so the other pages
    of the same browser tab open directly."""
    _freeze_imported_heap()  # every page calls this first: the one place to settle the heap
    try:
        expected = _configured_password()
    except _PasswordMisconfigured as problem:
        st.title("TextGen Lab")
        st.error(str(problem), icon="🔒")
        st.stop()
    if expected is None or st.session_state.get(_PASSED_KEY) is True:
        return
    st.title("TextGen Lab")
    st.caption("This app is protected by a shared password. Ask whoever runs it for the password.")
    with st.form("textgen-password-form"):
        st.text_input("Password", type="password", key=_INPUT_KEY, autocomplete="current-password")
        st.form_submit_button("Enter", type="primary", on_click=_check_password)
    if st.session_state.get(_FAILED_KEY):
        st.error("Wrong password. Check it and try again, or ask whoever runs this app for it.",
                 icon="🔒")
    st.stop()
