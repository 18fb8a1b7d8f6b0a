"""The Corpus page (AppTest): check without saving, save exactly one corpus, refuse bad uploads
with a message and nothing left behind, keep hostile file names as escaped labels."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from helpers import ROOT, plain

PAGE = str(ROOT / "pages" / "1_Corpus.py")


def open_page() -> AppTest:
    app = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not app.exception, app.exception
    return app


def saved_corpora(home: Path):
    from textgen.store.database import RunStore

    with RunStore(home) as store:
        return store.list_corpora()


def upload(app: AppTest, name: str, data: bytes, mime: str = "text/tab-separated-values") -> AppTest:
    app.file_uploader(key="corpus-upload").upload(name, data, mime)
    app.run()
    assert not app.exception, app.exception
    return app


def dates_tsv(size: int = 200) -> bytes:
    from textgen.data.samples import catalog

    return catalog.sample_bytes("dates", size=size, seed=3)


def test_check_shows_the_report_and_save_registers_exactly_one_corpus(home: Path) -> None:
    app = upload(open_page(), "dates.tsv", dates_tsv())
    before = saved_corpora(home)

    app.button(key="corpus-check").click().run()
    assert not app.exception, app.exception
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Format"] == "tsv"
    assert metrics["Examples"] == "200"
    assert metrics["Train"] == "160" and metrics["Validation"] == "20" and metrics["Test"] == "20"
    assert len(app.get("plotly_chart")) == 2  # source and target length histograms
    preview = app.dataframe[-2].value  # the preview; the saved-corpora list comes last
    assert len(preview) == 50 and list(preview.columns) == ["line", "source", "target"]
    assert not app.error
    assert saved_corpora(home) == before, "Check must not register anything"

    app.button(key="corpus-save").click().run()
    assert not app.exception, app.exception
    after = saved_corpora(home)
    added = [c for c in after if c.id not in {b.id for b in before}]
    assert len(added) == 1
    assert (added[0].origin, added[0].label, added[0].num_examples) == ("upload", "dates.tsv", 200)
    assert any(added[0].id in plain(s.value) for s in app.success)
    assert added[0].id in list(app.dataframe[-1].value["id"])

    app.button(key="corpus-save").click().run()  # saving again is idempotent
    assert len(saved_corpora(home)) == len(after)


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("latin.tsv", "café\tcoffee\n".encode("cp1252") * 20, "not valid UTF-8"),
        ("empty.tsv", b"", "empty"),
        ("image.tsv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, "binary file (PNG image)"),
    ],
)
def test_bad_upload_shows_the_error_and_registers_nothing(home: Path, name: str, data: bytes, expected: str) -> None:
    app = upload(open_page(), name, data)
    before = saved_corpora(home)
    app.button(key="corpus-save").click().run()
    assert not app.exception, app.exception
    errors = [plain(e.value) for e in app.error]
    assert any(expected in text for text in errors), errors
    assert saved_corpora(home) == before
    assert sorted(p.name for p in (home / "corpora").iterdir()) == [c.id for c in before]


def test_hostile_file_name_is_an_escaped_label_never_a_path(home: Path, tmp_path: Path) -> None:
    app = upload(open_page(), "../../x\u202e.tsv", dates_tsv(50))
    app.button(key="corpus-save").click().run()
    assert not app.exception, app.exception
    uploads = [c for c in saved_corpora(home) if c.origin == "upload"]
    assert [c.label for c in uploads] == ["../../x⟨U+202E⟩.tsv"]
    shown = [t.value for t in app.text]
    assert any("x⟨U+202E⟩.tsv" in text for text in shown)
    assert not any("\u202e" in text for text in shown)
    assert "../../x⟨U+202E⟩.tsv" in list(app.dataframe[-1].value["label"])
    # Nothing was written under the file's name, anywhere around the store.
    assert not [p for p in tmp_path.rglob("*") if "x\u202e" in p.name or p.name.startswith("x⟨")]
    assert sorted(p.name for p in (home / "corpora").iterdir()) == sorted(c.id for c in saved_corpora(home))


def test_reading_settings_out_of_range_are_refused(home: Path) -> None:
    app = upload(open_page(), "dates.tsv", dates_tsv())
    before = saved_corpora(home)
    app.number_input(key="corpus-valid").set_value(0.5)
    app.number_input(key="corpus-test").set_value(0.45)
    app.button(key="corpus-save").click().run()
    assert not app.exception, app.exception
    assert any("must leave at least 10% for training" in plain(e.value) for e in app.error)
    assert saved_corpora(home) == before


def test_upload_over_the_cap_is_refused_before_reading(home: Path) -> None:
    from streamlit import config

    previous = config.get_option("server.maxUploadSize")
    config.set_option("server.maxUploadSize", 1)
    try:
        app = upload(open_page(), "big.tsv", b"a b c\td e f\n" * 100_000)  # 1.2 MB
    finally:
        config.set_option("server.maxUploadSize", previous)
    assert any("over the 1 MB cap" in plain(e.value) for e in app.error)
    assert app.button(key="corpus-save").disabled and app.button(key="corpus-check").disabled
    assert not [c for c in saved_corpora(home) if c.origin == "upload"]


def test_csv_shows_column_inputs_and_uses_them(home: Path) -> None:
    app = open_page()
    app.selectbox(key="corpus-format").set_value("csv").run()
    data = "question,answer,note\n" + "".join(f"q{i},a{i},n{i}\n" for i in range(40))
    app = upload(app, "qa.csv", data.encode(), "text/csv")
    app.text_input(key="corpus-source-field").input("note")
    app.text_input(key="corpus-target-field").input("answer")
    app.button(key="corpus-check").click().run()
    assert not app.exception, app.exception
    preview = app.dataframe[-2].value
    assert list(preview["source"][:2]) == ["n0", "n1"] and list(preview["target"][:2]) == ["a0", "a1"]


def test_built_in_sample_with_size_and_seed_is_saved(home: Path) -> None:
    app = open_page()
    app.radio(key="corpus-source").set_value("Built-in sample").run()
    app.selectbox(key="corpus-sample").set_value("reverse").run()
    app.number_input(key="corpus-sample-size-reverse").set_value(120)
    app.number_input(key="corpus-sample-seed").set_value(7)
    app.button(key="corpus-save").click().run()
    assert not app.exception, app.exception
    reverse = [c for c in saved_corpora(home) if c.origin == "sample:reverse"]
    assert [(c.num_examples, c.label) for c in reverse] == [(120, "reverse (120 examples, seed 7)")]
    assert {m.label: m.value for m in app.metric}["Examples"] == "120"


@pytest.mark.browser
def test_corpus_page_checks_an_upload_in_chromium(tmp_path: Path) -> None:
    from browser import chromium_page, streamlit_server

    corpus = tmp_path / "dates.tsv"
    corpus.write_bytes(dates_tsv())
    with streamlit_server(tmp_path / "home") as url, chromium_page() as page:
        page.goto(f"{url}/Corpus")
        page.get_by_text("Saved corpora").wait_for(timeout=90_000)
        page.locator("input[type='file']").set_input_files(str(corpus))
        page.get_by_text("File: dates.tsv").wait_for(timeout=60_000)
        page.get_by_role("button", name="Check").click()
        page.get_by_text("Source length (words)").wait_for(timeout=60_000)
        assert page.locator("[data-testid='stException']").count() == 0
