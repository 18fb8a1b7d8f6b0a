"""The Runs page (AppTest) with an empty store and with the three demo runs, plus the run bundle
(textgen.runs.bundle) it offers for download."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import pytest
from helpers import ROOT, copy_home, open_app

from streamlit.testing.v1 import AppTest

from textgen.core.errors import ConfigError, StoreError
from textgen.core.text import chart_text
from textgen.runs import bundle, manage
from textgen.store.database import RunStore

PAGE = str(ROOT / "pages" / "3_Runs.py")


def open_page(**query: str) -> AppTest:
    return open_app(PAGE, **query)


def charts(app: AppTest) -> dict[str, dict]:
    """Plotly figures on the page by title."""
    figures = [json.loads(element.proto.spec) for element in app.get("plotly_chart")]
    return {figure["layout"]["title"]["text"]: figure for figure in figures}


def test_empty_store_shows_a_friendly_message(home: Path) -> None:
    app = open_page()
    assert not app.exception, app.exception
    assert any("No runs yet" in info.value for info in app.info)
    assert not app.get("plotly_chart")


def test_curves_overlay_every_run_raw_and_smoothed(demo_runs: dict[str, str]) -> None:
    app = open_page()
    assert not app.exception, app.exception
    figures = charts(app)
    assert set(figures) == {"training loss", "validation loss"}
    for figure in figures.values():
        traces = figure["data"]
        assert len(traces) == 2 * len(demo_runs)  # one raw and one smoothed line per run
        assert sorted(t["meta"] for t in traces) == ["raw"] * 3 + ["smoothed"] * 3
        assert {t["name"] for t in traces} == {"gru demo", "bahdanau demo", "transformer demo"}
    validation = figures["validation loss"]["data"]
    assert all(t["x"] == [11, 22] for t in validation)  # one point per evaluation, by step
    latest = app.dataframe[0].value
    assert sorted(latest["status"]) == ["finished"] * 3
    assert app.query_params["runs"] == ",".join(demo_runs[k] for k in ("transformer", "bahdanau", "gru"))
    assert {b.label.split(" ")[0] for b in app.get("download_button")} == {"Bundle", "Metrics"}


def test_the_link_restores_runs_metrics_and_axes(demo_runs: dict[str, str]) -> None:
    gru = demo_runs["gru"]
    app = open_page(runs=gru, metrics="valid/bleu,train/perplexity", x="epoch", log="1", smooth="0")
    assert not app.exception, app.exception
    assert app.multiselect(key="pick-runs").value == [gru]
    figures = charts(app)
    assert set(figures) == {"validation BLEU", "training perplexity"}
    bleu = figures["validation BLEU"]
    assert [t["name"] for t in bleu["data"]] == ["gru demo"]  # smoothing off: the raw line only
    assert bleu["data"][0]["x"] == [1.0, 2.0]  # epochs
    assert bleu["layout"]["xaxis"]["title"]["text"] == "epoch"
    assert bleu["layout"]["yaxis"]["type"] == "log"


def test_crafted_query_parameters_never_break_the_page(demo_runs: dict[str, str]) -> None:
    app = open_page(runs="../../etc/passwd,r-nope", metrics="<script>,train/loss", x="sideways",
                    log="maybe", smooth="-9999", run="x", example="1e9")
    assert not app.exception, app.exception
    assert len(app.multiselect(key="pick-runs").value) == 3  # unknown ids ignored: the default
    assert set(charts(app)) == {"training loss"}
    assert app.radio(key="curve-x").value == "step"
    assert app.slider(key="curve-smooth").value == 0  # clamped


def test_new_metrics_appear_on_the_next_run(demo_home: Path, demo_runs: dict[str, str]) -> None:
    """A training run's curves are a polling fragment that re-reads the store each tick (AppTest
    does not tick: run again)."""
    from textgen.training import jobs

    gru = demo_runs["gru"]
    with RunStore(demo_home) as store:  # "running" in this (live) process, so reconcile keeps it
        store.update_run(gru, status="running", pid=os.getpid(), pid_started=jobs.process_start_time(os.getpid()))
    app = open_page(runs=gru)
    assert any("Live" in caption.value for caption in app.caption)
    before = charts(app)["training loss"]["data"][0]["x"]
    with RunStore(demo_home) as store:
        store.log_metrics(gru, 500, {"loss": 0.5}, split="train", epoch=45.0)
    app.run()
    assert not app.exception, app.exception
    raw, smoothed = charts(app)["training loss"]["data"]
    assert raw["x"] == before + [500]
    assert raw["y"][-1] == 0.5 and len(smoothed["y"]) == len(before) + 1


def test_probe_samples_show_one_example_at_each_evaluation(demo_home: Path, demo_runs: dict[str, str]) -> None:
    bahdanau = demo_runs["bahdanau"]
    app = open_page(runs=bahdanau, example="3")
    assert not app.exception, app.exception
    assert app.selectbox(key=f"probe-{bahdanau}").value == 3
    with RunStore(demo_home) as store:
        expected = [s for s in store.get_samples(bahdanau) if s.example_index == 3]
    table = app.dataframe[1].value
    assert list(table["step"]) == [s.step for s in expected] == [11, 22]
    assert list(table["output"]) == [s.output for s in expected]
    assert any(expected[0].reference in text.value for text in app.text)
    assert app.query_params["example"] == "3"


def test_config_and_parameter_count(demo_runs: dict[str, str]) -> None:
    from textgen.models import ModelConfig, parameter_count

    transformer = demo_runs["transformer"]
    app = open_page(runs=transformer, run=transformer)
    assert not app.exception, app.exception
    with RunStore() as store:
        config = store.get_run(transformer).config
    assert app.metric[0].value == f"{parameter_count(ModelConfig.from_dict(config['model'])):,}"
    assert json.loads(app.json[0].proto.body) == config


def test_rename_changes_the_label_everywhere(demo_home: Path, demo_runs: dict[str, str]) -> None:
    gru = demo_runs["gru"]
    app = open_page(runs=gru, run=gru)
    app.text_input(key=f"rename-{gru}").input("  <b>best</b>\u202e\nmodel ")
    app.button(key=f"rename-button-{gru}").click().run()
    assert not app.exception, app.exception
    with RunStore(demo_home) as store:
        assert store.get_run(gru).label == "<b>best</b>\u202e model"
    # Shown as text: marked and, in Plotly, escaped.
    name = charts(app)["training loss"]["data"][0]["name"]
    assert name == chart_text("<b>best</b>\u202e model", 40) and "<" not in name and "\u202e" not in name
    assert "<b>best</b>⟨U+202E⟩ model" in app.dataframe[0].value["run"].iloc[0]
    # An empty label is refused with a message; the label stays.
    app.text_input(key=f"rename-{gru}").input("   ")
    app.button(key=f"rename-button-{gru}").click().run()
    assert any("cannot be empty" in error.value for error in app.error)
    with RunStore(demo_home) as store:
        assert store.get_run(gru).label == "<b>best</b>\u202e model"


def test_delete_needs_confirmation_and_removes_the_run(demo_home: Path, demo_runs: dict[str, str]) -> None:
    gru = demo_runs["gru"]
    app = open_page(runs=f"{gru},{demo_runs['bahdanau']}", run=gru)
    assert app.button(key=f"delete-{gru}").disabled
    app.checkbox(key=f"confirm-delete-{gru}").check().run()
    app.button(key=f"delete-{gru}").click().run()
    assert not app.exception, app.exception
    with RunStore(demo_home) as store:
        assert gru not in {run.id for run in store.list_runs()}
    assert not (demo_home / "runs" / gru).exists()
    assert any(gru in message.value.replace("\\", "") for message in app.success)  # Markdown-escaped
    assert gru not in app.multiselect(key="pick-runs").value
    assert gru not in app.query_params["runs"]


def test_bundle_unzips_into_a_loadable_run(demo_home: Path, demo_runs: dict[str, str], tmp_path: Path) -> None:
    from textgen.training import artifacts

    gru = demo_runs["gru"]
    with RunStore(demo_home) as store:
        data = bundle.export_bundle(store, gru)
        best = artifacts.Checkpoints(store.run_dir(gru)).get("best")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
        assert {f"{gru}/run.json", f"{gru}/run_record.json", f"{gru}/source_tokenizer.json",
                f"{gru}/target_tokenizer.json", f"{gru}/metrics.csv", f"{gru}/README.txt",
                f"{gru}/checkpoints/index.json", f"{gru}/checkpoints/{best.name}/model.weights.h5"} <= names
        assert not any("optimizer" in name for name in names)
        assert json.loads(archive.read(f"{gru}/run_record.json"))["label"] == "gru demo"
        archive.extractall(tmp_path / "unzipped")
    trained = artifacts.load_trained(tmp_path / "unzipped" / gru)
    assert trained.checkpoint.step == best.step
    assert trained.config.model.kind == "gru"


def test_bundle_and_label_errors(demo_home: Path) -> None:
    with RunStore(demo_home) as store:
        fresh = store.create_run(label="untrained", kind="gru", config={})
        with pytest.raises(StoreError, match="no checkpoint yet"):
            bundle.export_bundle(store, fresh.id)
        overview = manage.run_overview(store, fresh)
        assert overview.parameter_count is None and overview.checkpoints == []
        assert manage.metrics_csv(store, [fresh.id]) == "run_id,step,epoch,split,name,value,time\n"
    assert manage.clean_label("  a\tb\n c ") == "a b c"
    with pytest.raises(ConfigError, match="at most 100"):
        manage.clean_label("x" * 101)
    assert bundle.bundle_file_name("r-0123456789ab") == "r-0123456789ab-bundle.zip"


@pytest.mark.browser
def test_live_curve_updates_in_chromium_within_two_seconds(trained_home: Path, tmp_path: Path) -> None:
    import time

    from browser import chromium_page, streamlit_server

    from textgen.training import jobs

    home = copy_home(trained_home, tmp_path / "home")
    with RunStore(home) as store:
        gru = next(run.id for run in store.list_runs() if run.kind == "gru")
        # "running" in this test's own (live) process, so the server's reconcile keeps it running.
        store.update_run(gru, status="running", pid=os.getpid(), pid_started=jobs.process_start_time(os.getpid()))
    count_points = ("() => { const plot = [...document.querySelectorAll('.js-plotly-plot')]"
                    ".find(p => p.layout && p.layout.title && p.layout.title.text.includes('training loss'));"
                    " return plot ? plot.data[0].x.length : -1; }")
    with streamlit_server(home) as url, chromium_page() as page:
        page.goto(f"{url}/Runs?runs={gru}")
        page.get_by_text("Live: updates every").wait_for(timeout=60_000)
        page.wait_for_function(f"({count_points})() > 0", timeout=60_000)
        before = page.evaluate(count_points)
        with RunStore(home) as store:
            store.log_metrics(gru, 500, {"loss": 0.5}, split="train", epoch=45.0)
        logged = time.monotonic()
        page.wait_for_function(f"({count_points})() > {before}", timeout=10_000)
        elapsed = time.monotonic() - logged
        assert page.locator("[data-testid='stException']").count() == 0
        assert page.evaluate(count_points) == before + 1
        assert elapsed < 2.0, f"the new point took {elapsed:.2f} s to appear"


@pytest.mark.browser
def test_a_bundle_uploaded_in_chromium_becomes_a_run_and_a_bad_one_is_refused(trained_home: Path,
                                                                             tmp_path: Path) -> None:
    """The user's path: export from one store, upload on another's Runs page, click Import. The
    run appears with its kind and label; a zip that is not a bundle gets the error and adds
    nothing, and "Import a bundle" stays open for the next file (it used to close when the error
    message came or went); no traceback either way."""
    from browser import chromium_page, streamlit_server

    with RunStore(trained_home) as store:
        gru = next(run.id for run in store.list_runs() if run.kind == "gru")
        good = tmp_path / "exported-bundle.zip"
        good.write_bytes(bundle.export_bundle(store, gru))
    bad = tmp_path / "not-a-bundle.zip"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("model.keras", b"anything")
    home = tmp_path / "other-home"
    with streamlit_server(home) as url, chromium_page() as page:
        page.goto(f"{url}/Runs")
        page.get_by_text("Import a bundle").click()  # open the expander
        page.get_by_text("Bundle (.zip)").wait_for(timeout=30_000)
        assert page.get_by_role("button", name="Import", exact=True).is_disabled()  # nothing chosen yet
        page.locator("input[type=file]").set_input_files(str(bad))
        # The uploader shows the name while the file is still on its way; Import acts on what the
        # server has, which the size line confirms (clicking earlier raced the upload).
        page.get_by_text(f"{bad.stat().st_size:,} bytes received").wait_for(timeout=30_000)
        page.get_by_role("button", name="Import", exact=True).click()
        page.get_by_text("this bundle cannot be imported").wait_for(timeout=60_000)
        with RunStore(home) as store:
            assert store.list_runs() == []
        assert page.locator("details").first.get_attribute("open") is not None  # still open
        page.locator("input[type=file]").set_input_files(str(good))
        page.get_by_text(f"{good.stat().st_size:,} bytes received").wait_for(timeout=30_000)
        page.get_by_role("button", name="Import", exact=True).click()
        page.get_by_text("Imported run").wait_for(timeout=60_000)
        with RunStore(home) as store:
            (imported,) = store.list_runs()
        assert imported.kind == "gru" and imported.id != gru
        assert f"Imported run {imported.id} (gru)." in page.inner_text("body")
        page.get_by_text("gru demo").first.wait_for(timeout=30_000)
        assert page.locator("[data-testid='stException']").count() == 0
