"""The home page: AppTest for its logic, headless Chromium for what a user sees."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import chromium_page, streamlit_server
from streamlit.testing.v1 import AppTest
from helpers import ROOT



def test_home_page_registers_the_default_sample_and_lists_samples(home: Path) -> None:
    from textgen.data.samples import catalog
    from textgen.store.database import RunStore

    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert not app.exception, app.exception
    assert app.title[0].value == "TextGen Lab"
    sample_table = app.dataframe[0].value
    assert list(sample_table["name"]) == catalog.sample_names()
    assert any("No runs yet" in info.value for info in app.info)
    with RunStore(home) as store:
        corpora = store.list_corpora()
    assert [c.origin for c in corpora] == ["sample:dates"]
    corpus_table = app.dataframe[1].value
    assert list(corpus_table["id"]) == [corpora[0].id]


def test_home_page_lists_runs_with_labels_escaped(home: Path) -> None:
    from textgen.store.database import RunStore

    with RunStore(home) as store:
        store.create_run(label="evil\u202elabel\x1b[31m", kind="gru", config={})
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert not app.exception
    runs = app.dataframe[1].value
    assert list(runs["label"]) == ["evil⟨U+202E⟩label⟨U+001B⟩[31m"]
    assert list(runs["status"]) == ["queued"]


@pytest.mark.browser
def test_home_page_renders_in_chromium(tmp_path: Path) -> None:
    with streamlit_server(tmp_path / "home") as url, chromium_page() as page:
        page.goto(url)
        page.get_by_role("heading", name="TextGen Lab").wait_for(timeout=60_000)
        page.get_by_text("No runs yet").wait_for(timeout=60_000)
        assert page.locator("[data-testid='stException']").count() == 0
        assert page.get_by_text("Built-in sample corpora").is_visible()
