"""Hostile text in real headless Chromium against a real Streamlit server: it reaches every page
(an upload with a hostile name and hostile lines, run labels, probe outputs, typed inputs for
generation and attention) and no element is injected; the hostile upload name is shown escaped
and never becomes a path; invisible/bidi characters show as marks and emoji, CJK and
right-to-left text render. Screenshots go to a folder printed
at the start."""

from __future__ import annotations

import time
import urllib.parse
from pathlib import Path

import pytest
from browser import chromium_page, streamlit_server
from helpers import copy_home, wait_for


pytestmark = pytest.mark.browser

SCRIPT = "<script>window.__pwned='script'</script>"
IMAGE = "<img src=x onerror=\"window.__pwned='img'\">"
LINK = "[x](javascript:window.__pwned='link')"
HOSTILE = (SCRIPT, IMAGE, LINK)
WORLD = "😀 中文 שלום e\u0301"
# A browser sends '"' in a file name as %22 (the HTML form rules), so the name's image uses ' only.
NAME_IMAGE = "<img src=x onerror=window.__pwned='name'>"
UPLOAD_NAME = f"../../{NAME_IMAGE}\u202e{WORLD}.tsv"

# What an injection would leave in the DOM, and the flag any executed payload sets.
PROBE = """() => ({
  images: document.querySelectorAll('img[src="x"]').length,
  scripts: [...document.scripts].filter(s => s.textContent.includes('__pwned')).length,
  javascript_links: document.querySelectorAll('a[href^="javascript" i]').length,
  handlers: [...document.querySelectorAll('*')].filter(e => [...e.attributes].some(
      a => a.name.startsWith('on') && a.value.includes('__pwned'))).length,
  flag: window.__pwned === undefined ? null : String(window.__pwned),
  exceptions: document.querySelectorAll("[data-testid='stException']").length,
})"""
CLEAN = {"images": 0, "scripts": 0, "javascript_links": 0, "handlers": 0, "flag": None, "exceptions": 0}


def _wait(predicate, timeout: float, what: str):
    return wait_for(predicate, timeout, what, interval=0.3)


def _hostile_home(trained_home: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """trained_home with hostile run labels and hostile probe outputs; kind -> run id."""
    from textgen.store.database import RunStore, SampleRow

    home = copy_home(trained_home, tmp_path / "home")
    with RunStore(home) as store:
        runs = {run.kind: run.id for run in store.list_runs()}
        for index, (kind, run_id) in enumerate(sorted(runs.items())):
            store.update_run(run_id, label=f"{HOSTILE[index]} \u202e{kind}\u200b")
            store.add_samples(run_id, [SampleRow(run_id, 10_000, 9.0, 0, HOSTILE[index], HOSTILE[index - 1],
                                                 f"{HOSTILE[index - 2]} {WORLD}", time.time())])
    return home, runs


def test_hostile_text_never_becomes_an_element_on_any_page(trained_home: Path, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"screenshots: {shots}")
    home, runs = _hostile_home(trained_home, tmp_path)
    lines = "".join(f"{HOSTILE[i % 3]} {WORLD} \u200b{i}\t{HOSTILE[(i + 1) % 3]} \u202e{i} \x1b[31m\n"
                    for i in range(30))
    typed = urllib.parse.quote(f"{SCRIPT} {IMAGE} {LINK} {WORLD}")
    ids = ",".join(runs.values())

    with streamlit_server(home) as url, chromium_page() as page:
        def check(where: str) -> str:
            page.screenshot(path=str(shots / f"{where}.png"), full_page=True)
            assert page.evaluate(PROBE) == CLEAN, where
            return page.evaluate("() => document.body.innerText")

        outside = sorted(p.name for p in tmp_path.iterdir())  # the server's log is there already
        # Corpus: an upload with a hostile name and hostile lines; the report and the preview.
        page.goto(f"{url}/Corpus")
        page.get_by_text("Saved corpora").wait_for(timeout=90_000)
        page.locator("input[type=file]").set_input_files(
            {"name": UPLOAD_NAME, "mimeType": "text/tab-separated-values", "buffer": lines.encode()})
        page.get_by_text("File: ../../").wait_for(timeout=60_000)
        page.get_by_role("button", name="Check").click()
        page.get_by_text("Preview", exact=False).first.wait_for(timeout=60_000)
        text = check("corpus")
        shown = [line for line in text.splitlines() if line.startswith("File: ")]
        assert len(shown) == 1 and shown[0].startswith(f"File: ../../{NAME_IMAGE}⟨U+202E⟩{WORLD}.tsv ("), shown
        assert "\u202e" not in text and "bidi control" in text and "zero-width" in text
        page.get_by_role("button", name="Save corpus").click()
        page.get_by_text("Saved corpus").first.wait_for(timeout=60_000)
        check("corpus-saved")
        assert sorted(p.name for p in tmp_path.iterdir()) == outside  # nothing named after the upload
        assert not [p for p in home.rglob("*") if "img" in p.name or "\u202e" in p.name]

        # Runs: hostile labels (text and chart legends) and probe outputs.
        page.goto(f"{url}/Runs?runs={ids}")
        _wait(lambda: page.locator(".js-plotly-plot").count() > 0, 60, "the curves")
        text = check("runs")
        assert "⟨U+202E⟩" in text and "\u202e" not in text and "\u200b" not in text
        assert SCRIPT in text or IMAGE in text  # shown, as text

        # Compare: typed hostile input decoded by every run, outputs and diffs side by side.
        page.goto(f"{url}/Compare?runs={ids}&inputs=typed&input={typed}")
        page.get_by_text("Summary", exact=True).wait_for(timeout=90_000)
        _wait(lambda: page.locator(".js-plotly-plot").count() > 0, 60, "the example's attention")
        text = check("compare")
        assert SCRIPT in text and WORLD.split()[0] in text

        # Attention: the same input on the Transformer; heatmap tick labels are text.
        page.goto(f"{url}/Attention?run={runs['transformer']}&input={typed}")
        _wait(lambda: page.locator(".js-plotly-plot").count() > 0, 60, "the heatmap")
        check("attention")
        ticks = page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot .xtick text')]"
                              ".map(t => t.textContent)")
        assert ticks and any("<unk>" in t or "script" in t for t in ticks), ticks

        # Evaluate: the leaderboard and charts carry the labels.
        page.goto(f"{url}/Evaluate?runs={ids}")
        _wait(lambda: page.locator(".js-plotly-plot").count() > 0, 60, "the evaluation charts")
        check("evaluate")
