"""Shared fixtures. Every test session gets its own TEXTGEN_HOME, so tests never touch a user's runs."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

# Before anything imports TensorFlow: quiet its start-up lines, and keep tests off the user's store.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_SESSION_HOME = tempfile.mkdtemp(prefix="textgen-test-home-")
os.environ["TEXTGEN_HOME"] = _SESSION_HOME

import pytest  # noqa: E402
from helpers import ROOT, copy_home  # noqa: E402, F401  (copy_home: the trained_home fixture)

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove the session's TEXTGEN_HOME (a run of the suite used to leave one in /tmp)."""
    import shutil

    shutil.rmtree(_SESSION_HOME, ignore_errors=True)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty TEXTGEN_HOME for one test (also exported to subprocesses)."""
    folder = tmp_path / "home"
    monkeypatch.setenv("TEXTGEN_HOME", str(folder))
    return folder


@pytest.fixture
def store(home: Path):
    from textgen.store.database import RunStore

    with RunStore(home) as run_store:
        yield run_store


DEMO_KINDS = ("gru", "bahdanau", "transformer")


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TEXTGEN_HOME with three tiny finished runs on a small dates corpus (gru, bahdanau,
    transformer; 2 epochs, an evaluation each). Built once per test session: treat it as read-only,
    or copy it with `copy_home` before changing anything."""
    from textgen.analysis import evaluation
    from textgen.data.samples import catalog
    from textgen.decoding import DecodingConfig
    from textgen.store.database import RunStore
    from textgen.training import jobs, planning

    base = tmp_path_factory.mktemp("trained")
    home = base / "home"
    corpus = base / "dates.tsv"
    corpus.write_bytes(catalog.sample_bytes("dates", size=300, seed=11))
    with RunStore(home) as store:
        for kind in DEMO_KINDS:
            plan = planning.plan_run(
                store, str(corpus), kind, preset="tiny", label=f"{kind} demo",
                settings={"tokenizer": "char", "epochs": "2", "batch_size": "32", "eval_bleu_examples": "16"})
            run = jobs.run_job(store, jobs.submit(store, plan, background=False).id)
            assert run.status == "finished", run.error
            evaluation.evaluate_run(store, run.id, DecodingConfig(), bootstrap_samples=100)
    return home


@pytest.fixture
def demo_home(trained_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A writable copy of `trained_home`, set as TEXTGEN_HOME for the test."""
    home = copy_home(trained_home, tmp_path / "h")
    monkeypatch.setenv("TEXTGEN_HOME", str(home))
    return home


@pytest.fixture
def demo_runs(demo_home: Path) -> dict[str, str]:
    """Model kind -> run id of the runs in `demo_home`."""
    from textgen.store.database import RunStore

    with RunStore(demo_home) as store:
        return {run.kind: run.id for run in store.list_runs()}


@pytest.fixture(autouse=True, scope="module")
def settled_heap():
    """Streamlit runs a full garbage collection after every script run (`runner.postScriptGC`).
    In one pytest process the heap grows to millions of objects (TensorFlow, Keras, earlier
    modules' models), so each AppTest run would pay for collecting all of them (figures in
    bench/RESULTS.md). What is alive when a module starts is set aside from the collector for that
    module (`gc.freeze`, as the app does once TensorFlow is imported) and handed back at its end;
    the next module's collection frees what became garbage."""
    import gc

    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()
