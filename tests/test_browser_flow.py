"""The flow a user clicks through, in real headless Chromium against a real Streamlit server:
upload a TSV, see the report, save it, start a tiny training job, watch the curve grow, open the
compare and attention pages on the result, and check that a shared link restores the view and
that the browser console shows no errors. Screenshots go to a folder printed at the start."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import chromium_page, streamlit_server
from helpers import wait_for


from textgen.data.samples import catalog
from textgen.store.database import RunStore


def _points(page) -> int:
    """Points in the first trace of the first Plotly chart on the page (0 if none yet)."""
    return page.evaluate(
        "() => { const p = document.querySelector('.js-plotly-plot');"
        " return p && p.data && p.data.length ? p.data[0].x.length : 0; }")


def _wait(predicate, timeout: float, what: str):
    return wait_for(predicate, timeout, what, interval=0.5)


@pytest.mark.browser
def test_upload_train_watch_compare_attention_and_share(tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"screenshots: {shots}")
    home = tmp_path / "home"
    corpus_file = tmp_path / "my dates.tsv"
    corpus_file.write_bytes(catalog.sample_bytes("dates", size=300, seed=3))
    console_errors: list[str] = []

    with streamlit_server(home) as url, chromium_page() as page:
        page.on("console", lambda message: console_errors.append(f"{message.text} @ {message.location.get('url')}")
                if message.type == "error" else None)
        page.on("pageerror", lambda error: console_errors.append(str(error)))

        # 1. Upload, check, save.
        page.goto(f"{url}/Corpus")
        page.get_by_role("heading", name="Corpus").first.wait_for(timeout=60_000)
        page.locator("input[type=file]").set_input_files(str(corpus_file))
        page.get_by_text("my dates.tsv").first.wait_for(timeout=30_000)
        page.get_by_role("button", name="Check").click()
        page.get_by_text("300", exact=False).first.wait_for(timeout=60_000)
        page.get_by_role("button", name="Save corpus").click()
        page.get_by_text("Saved corpus").first.wait_for(timeout=60_000)
        page.screenshot(path=str(shots / "1-corpus.png"), full_page=True)
        with RunStore(home) as store:
            uploaded = [c for c in store.list_corpora() if c.origin == "upload"]
        assert len(uploaded) == 1 and uploaded[0].num_examples == 300

        # 2. Start a tiny attention model from the Train page (form prefilled by the link).
        page.goto(f"{url}/Train?corpus={uploaded[0].id}&model=bahdanau&preset=tiny"
                  "&epochs=40&minutes=0.5&batch_size=16&tokenizer=char&eval_every_steps=10")
        start = page.get_by_role("button", name="Start training")
        start.wait_for(timeout=60_000)
        _wait(lambda: start.is_enabled(), 60, "the plan to validate")
        start.click()
        page.get_by_text("Started run").first.wait_for(timeout=60_000)
        page.screenshot(path=str(shots / "2-train.png"), full_page=True)
        with RunStore(home) as store:
            run_id = store.list_runs()[0].id

        # 3. Watch the training loss curve grow while the job runs.
        page.goto(f"{url}/Runs?runs={run_id}")
        first = _wait(lambda: _points(page), 90, "the first points of the curve")
        grown = _wait(lambda: _points(page) > first and _points(page), 60, "the curve to grow")
        assert grown > first
        page.screenshot(path=str(shots / "3-runs.png"), full_page=True)
        with RunStore(home) as store:
            _wait(lambda: store.get_run(run_id).status in ("finished", "stopped", "failed", "crashed"),
                  120, "the run to finish")
            assert store.get_run(run_id).status == "finished", store.get_run(run_id).error

        # 4. Compare and attention on the result; the share link restores the attention view.
        page.goto(f"{url}/Compare?runs={run_id}")
        page.get_by_role("heading", name="Compare").first.wait_for(timeout=60_000)
        page.wait_for_timeout(3000)
        page.screenshot(path=str(shots / "4-compare.png"), full_page=True)
        assert page.locator("[data-testid='stException']").count() == 0

        page.goto(f"{url}/Attention?run={run_id}")
        _wait(lambda: page.locator(".js-plotly-plot").count() > 0, 90, "the attention heatmap")
        page.screenshot(path=str(shots / "5-attention.png"), full_page=True)
        shared = page.url
        assert f"run={run_id}" in shared

        heatmap = "() => JSON.stringify(document.querySelector('.js-plotly-plot').data[0].z)"
        other = page.context.browser.new_page()  # a teammate opening the link: a new session
        other.goto(shared)
        _wait(lambda: other.locator(".js-plotly-plot").count() > 0, 90, "the shared view")
        assert other.evaluate(heatmap) == page.evaluate(heatmap)  # the same map of the same run
        other.screenshot(path=str(shots / "6-shared.png"), full_page=True)

        for view in (page, other):
            assert view.locator("[data-testid='stException']").count() == 0
    # Opening a page by its URL, Streamlit's client first probes `<page>/_stcore/health` and
    # `host-config` for a base path, gets a 404, then uses the root: its own harmless noise.
    probes = ("/_stcore/health", "/_stcore/host-config")
    errors = [e for e in console_errors if not ("404" in e and e.endswith(probes))]
    assert errors == [], "\n".join(errors)
