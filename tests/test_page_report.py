"""Page 7 Report: pick runs, build the HTML report, download it under a name we choose."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import ROOT, copy_home

from streamlit.testing.v1 import AppTest

PAGE = str(ROOT / "pages" / "7_Report.py")


def _page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=120)


def test_report_page_with_no_runs_says_so(home: Path) -> None:
    app = _page().run()
    assert not app.exception, app.exception
    assert app.title[0].value == "Report"
    assert any("No runs yet" in info.value for info in app.info)
    assert len(app.button) == 0 and len(app.get("download_button")) == 0


@pytest.fixture
def report_home(trained_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = copy_home(trained_home, tmp_path / "h")
    monkeypatch.setenv("TEXTGEN_HOME", str(home))
    return home


def test_build_report_offers_a_download(report_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    from textgen.store.database import RunStore

    # Record what the download serves (streamlit's own storage, still doing its job).
    served: list[tuple[str | None, bytes, str]] = []
    original = MemoryMediaFileStorage.load_and_get_id

    def recording(self, path_or_data, mimetype, kind, filename=None):
        served.append((filename, path_or_data, mimetype))
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", recording)
    with RunStore(report_home) as store:
        runs = {run.kind: run for run in store.list_runs()}
    chosen = [runs["bahdanau"].id, runs["gru"].id]
    app = _page()
    app.query_params["runs"] = ",".join(chosen)
    app.query_params["examples"] = "2"
    app.run()
    assert not app.exception, app.exception
    assert app.multiselect(key="pick-runs").value == chosen
    assert app.number_input(key="report-examples").value == 2
    assert len(app.get("download_button")) == 0 and served == []  # nothing until "Build report"

    app.button(key="build-report").click().run()
    assert not app.exception, app.exception
    assert len(app.get("download_button")) == 1
    assert any("ready" in success.value for success in app.success)
    [(file_name, data, mimetype)] = served
    assert re.fullmatch(r"textgen-report-\d{4}-\d{2}-\d{2}-\d{4}\.html", file_name)
    assert mimetype == "text/html"
    document = data.decode("utf-8")
    assert '<meta http-equiv="Content-Security-Policy" content="default-src &#x27;none&#x27;;' in document
    assert document.count('class="leaderboard-row"') == 2
    assert "bahdanau demo" in document and "gru demo" in document and "transformer demo" not in document


def test_crafted_query_parameters_are_clamped_or_ignored(report_home: Path) -> None:
    app = _page()
    app.query_params["runs"] = "r-000000000000,<script>alert(1)</script>,../../etc"
    app.query_params["examples"] = "99999"
    app.run()
    assert not app.exception, app.exception
    from textgen.analysis.report import MAX_EXAMPLES

    assert app.number_input(key="report-examples").value == MAX_EXAMPLES
    # Unknown ids are dropped; the picker falls back to the newest runs.
    picked = app.multiselect(key="pick-runs").value
    assert picked and all(re.fullmatch(r"r-[0-9a-f]{12}", run_id) for run_id in picked)
