"""Faults as a browser sees them, in headless Chromium against real Streamlit servers and one real
training job shared by the tests in order: the job is started once, survives a server restart
and a closed browser, and is deleted while another session views it."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from browser import chromium_page, streamlit_server
from helpers import wait_for


from textgen.data.samples import catalog
from textgen.store.database import RunStore
from textgen.training import jobs, planning

pytestmark = pytest.mark.browser


def _wait(predicate, timeout: float, what: str):
    return wait_for(predicate, timeout, what, interval=0.3)


def _step(home: Path, run_id: str) -> int:
    with RunStore(home) as store:
        steps = [m.step for m in store.get_metrics([run_id], names=["loss"]) if m.split == "train"]
    return max(steps, default=0)


def _points(page) -> int:
    """Points of the first line of the training-loss chart (-1 while it is not drawn)."""
    return page.evaluate(
        "() => { const plot = [...document.querySelectorAll('.js-plotly-plot')]"
        ".find(p => p.layout && p.layout.title && p.layout.title.text.includes('training loss'));"
        " return plot && plot.data.length ? plot.data[0].x.length : -1; }")


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A TEXTGEN_HOME with one real background training job (tiny GRU, long enough to outlive the
    tests); removed at the end if a test left it."""
    base = tmp_path_factory.mktemp("faults-browser")
    home = base / "home"
    corpus = base / "dates.tsv"
    corpus.write_bytes(catalog.sample_bytes("dates", size=300, seed=28))
    with RunStore(home) as store:
        plan = planning.plan_run(store, str(corpus), "gru", preset="tiny", label="long job",
                                 settings={"tokenizer": "char", "epochs": "400", "batch_size": "16",
                                           "eval_every_steps": "30", "eval_bleu_examples": "0",
                                           "num_probe_samples": "1", "log_every_seconds": "0.5"})
        run = jobs.submit(store, plan)
    yield home, run.id
    with RunStore(home) as store:
        if run.id in {r.id for r in store.list_runs()}:
            jobs.delete(store, run.id, timeout=3)


def test_a_restarted_server_shows_the_running_job_live_and_starts_no_duplicate(job) -> None:
    """The Streamlit server is stopped and started again while a job trains: the job's process
    goes on (same pid, its step keeps growing), the restarted app shows it live on the Runs page
    with a growing curve, and there is still exactly one run and one job process."""
    home, run_id = job
    with RunStore(home) as store:
        _wait(lambda: jobs.process_alive(store.get_run(run_id).pid, None) and _step(home, run_id) > 0, 90,
              "the job to train")
        pid = store.get_run(run_id).pid
    with streamlit_server(home) as url, chromium_page() as page:
        page.goto(f"{url}/Runs?runs={run_id}&run={run_id}")
        page.get_by_text("Live: updates every").wait_for(timeout=60_000)
    before = _step(home, run_id)  # the first server is gone now
    with streamlit_server(home) as url, chromium_page() as page:
        page.goto(f"{url}/Runs?runs={run_id}&run={run_id}")
        page.get_by_text("Live: updates every").wait_for(timeout=60_000)
        first = _wait(lambda: max(_points(page), 0), 60, "the curve")
        _wait(lambda: _points(page) > first, 30, "the curve to grow after the restart")
        assert page.get_by_text("long job · gru · running").count() > 0
        assert page.locator("[data-testid='stException']").count() == 0
    assert _step(home, run_id) > before
    with RunStore(home) as store:
        runs = store.list_runs()
        assert [r.id for r in runs] == [run_id] and runs[0].status == "running" and runs[0].pid == pid
    assert jobs.process_alive(pid, None)


def test_closing_the_browser_leaves_the_job_training_and_reopening_shows_its_progress(job) -> None:
    """A browser watching the job is closed mid-training: the job goes on (its step grows while no
    browser is open), and a new browser opening the Train page sees its progress and the Runs
    page its curve, including the steps trained while no one watched."""
    home, run_id = job
    with streamlit_server(home) as url:
        with chromium_page() as page:
            page.goto(f"{url}/Runs?runs={run_id}")
            _wait(lambda: _points(page) > 0, 60, "the curve")
        closed_at = _step(home, run_id)  # the browser is closed
        _wait(lambda: _step(home, run_id) > closed_at + 5, 60, "training to go on with no browser")
        with chromium_page() as page:
            page.goto(f"{url}/Train")
            page.get_by_text("long job · gru · running").first.wait_for(timeout=60_000)
            page.locator("[data-testid='stProgress']").first.wait_for(timeout=30_000)
            page.goto(f"{url}/Runs?runs={run_id}")
            _wait(lambda: _points(page) > 0, 60, "the curve")
            with RunStore(home) as store:
                logged = len([m for m in store.get_metrics([run_id], names=["loss"]) if m.split == "train"])
            _wait(lambda: _points(page) >= logged, 30, "every point logged, also while no browser was open")
            assert page.locator("[data-testid='stException']").count() == 0


def test_a_run_deleted_while_another_session_views_it_is_stopped_removed_and_shown_gone(job) -> None:
    """One session views the training run live on the Runs page while another deletes it: the
    job is stopped, the run and its folder are removed, and the viewer's page says the run no
    longer exists, with no traceback."""
    home, run_id = job
    with RunStore(home) as store:
        pid = store.get_run(run_id).pid
    with streamlit_server(home) as url, chromium_page() as viewer:
        viewer.goto(f"{url}/Runs?runs={run_id}&run={run_id}")
        viewer.get_by_text("Live: updates every").wait_for(timeout=60_000)
        with RunStore(home) as store:  # the other session (the Train page's Delete runs this call)
            jobs.delete(store, run_id, timeout=20)
            assert store.list_runs() == []
        assert not (home / "runs" / run_id).exists()
        _wait(lambda: not jobs.process_alive(pid, None), 30, "the job process to end")
        viewer.get_by_text(f"Run {run_id} no longer exists").first.wait_for(timeout=15_000)
        assert viewer.locator("[data-testid='stException']").count() == 0
        assert "Traceback" not in viewer.content()
