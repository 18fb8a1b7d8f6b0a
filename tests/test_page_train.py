"""The Train page and the home page's demo button (AppTest), and the estimates behind them.

Two tests start real job processes (a tiny run, the three demo runs); they delete their runs
with `jobs.delete`, which stops the processes, so nothing is left running.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import DEMO_KINDS
from helpers import ROOT, copy_home, open_app, plain

from streamlit.testing.v1 import AppTest

PAGE = str(ROOT / "pages" / "2_Train.py")


def open_page(**query: str) -> AppTest:
    app = open_app(PAGE, **query)
    assert not app.exception, app.exception
    return app


def list_runs(home: Path):
    from textgen.store.database import RunStore

    with RunStore(home) as store:
        return store.list_runs()


def delete_runs(home: Path, run_ids) -> None:
    from textgen.store.database import ACTIVE_STATUSES, RunStore
    from textgen.training import jobs

    with RunStore(home) as store:
        for run_id in run_ids:
            jobs.delete(store, run_id, timeout=3)  # killed if it does not stop at once
        assert not store.list_runs(statuses=ACTIVE_STATUSES)


def test_empty_store_shows_the_plan_of_the_default_form(home: Path) -> None:
    app = open_page()
    metrics = {m.label: m.value for m in app.metric}
    assert set(metrics) >= {"Parameters", "FLOPs per token", "Steps per epoch", "Estimated time"}
    assert metrics["Steps per epoch"] == "38"  # 2,400 training dates at batch 64
    assert any("reference CPU figure" in c.value for c in app.caption)
    assert not app.error and not app.warning
    assert any("No runs yet" in i.value for i in app.info)
    assert app.selectbox(key="train-kind-pairs").options == ["gru", "lstm", "bahdanau", "luong", "transformer"]
    assert app.query_params["model"] == "gru" and app.query_params["preset"] == "tiny"


def test_link_prefills_the_form(home: Path) -> None:
    app = open_page(model="transformer", preset="small", batch_size="32", learning_rate="3e-4", tokenizer="char",
                    matmul_precision="bfloat16")
    assert app.selectbox(key="train-kind-pairs").value == "transformer"
    assert app.selectbox(key="train-train-matmul_precision").options == ["float32", "bfloat16"]
    assert app.selectbox(key="train-train-matmul_precision").value == "bfloat16"
    from textgen.core import hardware

    # What the setting does on this CPU: faster where native, emulated and slower where not.
    assert [c.value for c in app.caption if "matmul_precision = bfloat16" in c.value] == [hardware.bfloat16_note()]
    assert app.selectbox(key="train-preset").value == "small"
    assert app.number_input(key="train-model-transformer-small-model_dim").value == 128  # from the preset
    assert app.number_input(key="train-train-batch_size").value == 32
    assert app.number_input(key="train-train-learning_rate").value == pytest.approx(3e-4)
    assert app.selectbox(key="train-tokenizer-kind").value == "char"
    assert {m.label: m.value for m in app.metric}["Steps per epoch"] == "75"
    assert not app.error and not app.warning


def test_crafted_link_values_are_ignored_with_a_warning(home: Path) -> None:
    app = open_page(model="<b>evil</b>", preset="huge", optimizer="sgd", epochs="1e999", hidden_units="x",
                    nonsense="1", minutes="nan")
    warnings = [plain(w.value) for w in app.warning]
    assert any("'<b>evil</b>' is not a model family" in w for w in warnings)
    assert any("preset 'huge'" in w for w in warnings)
    assert any("optimizer must be one of adam, adamw" in w for w in warnings)
    assert any("epochs must be an integer, got '1e999'" in w for w in warnings)
    assert any("hidden_units must be an integer, got 'x'" in w for w in warnings)
    assert any("'nonsense' is not a field" in w for w in warnings)
    assert any("minutes must be a number, got NaN" in w for w in warnings)
    assert app.selectbox(key="train-kind-pairs").value == "gru"
    assert not app.error
    assert app.button(key="train-start").disabled is False


def test_text_corpus_offers_only_language_models(home: Path) -> None:
    from textgen.data import registry
    from textgen.store.database import RunStore

    with RunStore(home) as store:
        tales = registry.register_reference(store, "sample:tales")
    app = open_page(corpus=tales.id, model="transformer")
    assert app.selectbox(key="train-corpus").value == tales.id
    assert app.selectbox(key="train-kind-text").options == ["transformer-lm", "lstm-lm"]
    assert any("seq2seq model for pairs" in plain(w.value) for w in app.warning)
    assert not app.error


def test_an_out_of_range_link_value_is_ignored_and_widgets_take_the_fields_bounds_and_help(home: Path) -> None:
    """Each field's declared range and help (textgen.core.config.setting) reach the form: a link's
    value outside the range is refused with the field's message and the default shown, and the
    widget cannot go outside it."""
    from textgen.models.config import ModelConfig
    from textgen.training.config import TrainConfig

    app = open_page(model="transformer", preset="tiny", batch_size="0")
    assert any("batch_size must be between 1 and 65536, got 0." in plain(w.value) and "ignored" in plain(w.value)
               for w in app.warning)
    assert app.number_input(key="train-train-batch_size").value == TrainConfig().batch_size
    assert list_runs(home) == []

    app = open_page()
    batch_size = app.number_input(key="train-train-batch_size")
    assert (batch_size.min, batch_size.max) == (1, 65536)
    assert batch_size.help == TrainConfig.field_spec("batch_size").help
    num_layers = app.number_input(key="train-model-gru-tiny-num_layers")
    assert (num_layers.min, num_layers.max) == (1, 48)
    assert num_layers.help == ModelConfig.field_spec("num_layers").help
    learning_rate = app.number_input(key="train-train-learning_rate")
    assert (learning_rate.min, learning_rate.max) == (1e-8, 10.0)
    assert app.selectbox(key="train-train-optimizer").options == list(TrainConfig.field_spec("optimizer").choices)
    assert list_runs(home) == []


def test_start_creates_a_queued_job(home: Path) -> None:
    app = open_page(model="gru", preset="tiny", epochs="1", tokenizer="char")
    app.text_input(key="train-label").input("my <tiny> run")
    app.button(key="train-start").click().run()
    assert not app.exception, app.exception
    runs = list_runs(home)
    try:
        assert len(runs) == 1
        run = runs[0]
        assert run.status in ("queued", "running") and run.kind == "gru" and run.label == "my <tiny> run"
        assert run.config["train"]["epochs"] == 1 and run.config["tokenizer"]["kind"] == "char"
        assert any(run.id in plain(s.value) for s in app.success)
        app.run()  # the job list (a fragment) shows it with its status
        assert any(run.id in t.value and t.value.startswith("my <tiny> run") for t in app.text)
        assert app.button(key=f"train-stop-{run.id}").label == "Stop"
    finally:
        delete_runs(home, [r.id for r in runs])
    assert list_runs(home) == []


def test_job_list_shows_trained_runs_resume_errors_and_delete(trained_home: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    home = copy_home(trained_home, tmp_path / "h")
    monkeypatch.setenv("TEXTGEN_HOME", str(home))
    runs = {run.kind: run for run in list_runs(home)}
    app = open_page(model="gru")
    titles = [t.value for t in app.text]
    for kind in DEMO_KINDS:
        run = runs[kind]
        assert f"{kind} demo · {kind} · finished · {run.id}" in titles
    progress = app.get("progress")
    assert len(progress) == 3 and all(p.proto.value == 100 for p in progress)
    assert any("epoch 2.0 of 2" in p.proto.text for p in progress)
    assert any("valid BLEU" in c.value for c in app.caption)
    # The estimate now comes from the finished gru run.
    assert any("From 1 finished run of this family" in c.value for c in app.caption)

    # Resume with a bad learning rate: refused, the run stays finished, no job.
    gru = runs["gru"]
    app.text_input(key=f"train-resume-lr-{gru.id}").input("-1")
    app.button(key=f"train-resume-{gru.id}").click().run()
    assert not app.exception, app.exception
    assert any("learning_rate must be between" in plain(e.value) for e in app.error)
    assert {r.id: r.status for r in list_runs(home)}[gru.id] == "finished"

    # Delete asks first; Cancel keeps the run, Yes deletes it.
    app.button(key=f"train-delete-{gru.id}").click().run()
    assert any(f"Delete run {gru.id}" in w.value for w in app.warning)
    app.button(key=f"train-delete-no-{gru.id}").click().run()
    assert gru.id in {r.id for r in list_runs(home)}
    app.button(key=f"train-delete-{gru.id}").click().run()
    app.button(key=f"train-delete-yes-{gru.id}").click().run()
    assert not app.exception, app.exception
    assert gru.id not in {r.id for r in list_runs(home)}
    assert not (home / "runs" / gru.id).exists()
    app.run()
    assert not any(gru.id in t.value for t in app.text)


def test_demo_button_on_the_home_page_starts_three_runs(home: Path) -> None:
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert not app.exception, app.exception
    app.button(key="home-demo").click().run()
    assert not app.exception, app.exception
    runs = list_runs(home)
    try:
        assert sorted(r.kind for r in runs) == sorted(DEMO_KINDS)
        assert all(r.status in ("queued", "running") for r in runs)
        assert all(r.config["train"]["minutes"] > 0 for r in runs)  # the time budget bounds the demo
        assert any("Started 3 demo runs" in s.value for s in app.success)
        assert len(app.dataframe[1].value) == 3  # the runs table replaces the button
        app.run()
        assert not [b for b in app.button if b.key == "home-demo"]
    finally:
        delete_runs(home, [r.id for r in runs])


# -- the library behind the pages ----------------------------------------------------------------


def test_demo_plans_are_valid_and_bounded(store) -> None:
    from textgen.training import demo, estimates

    plans = demo.plan_demo(store)
    assert [p.config.model.kind for p in plans] == list(demo.DEMO_KINDS)
    assert store.list_runs() == []  # planning creates nothing
    total = 0.0
    for plan in plans:
        estimate = estimates.estimate_training_time(plan, estimates.tokens_per_epoch(store, plan), None)
        assert estimate.limited_by_budget  # the budget, not the epochs, ends each run
        total += estimate.seconds
    assert total <= 3 * 60 + 15  # about 3 minutes for the three


def test_estimate_scales_with_flops_and_says_its_basis(store) -> None:
    from textgen.training import estimates, planning

    small = planning.plan_run(store, "sample:dates", "transformer", preset="tiny", settings={"epochs": "4"})
    tokens = estimates.tokens_per_epoch(store, small)
    assert 2400 * 5 < tokens < 2400 * 12  # word tokens of an ISO date + </s>
    reference = estimates.estimate_training_time(small, tokens, None)
    measured = estimates.estimate_training_time(small, tokens, (2 * estimates.REFERENCE_CPU_FLOPS, ["r-1"]))
    start_up = estimates.START_UP_SECONDS
    assert reference.seconds - start_up == pytest.approx(2 * (measured.seconds - start_up))
    assert reference.source == "reference" and "reference CPU figure" in reference.basis
    assert measured.source == "measured" and "1 finished run" in measured.basis
    assert reference.total_steps == 4 * small.steps_per_epoch


def test_histogram_bins_and_durations() -> None:
    from textgen.core.formatting import format_duration
    from textgen.data import corpus_check

    bins = corpus_check.histogram_bins({"histogram": {"edges": [1, 2, 4, 6], "counts": [3, 0, 5]}})
    assert [(b["bin"], b["count"]) for b in bins] == [("1", 3), ("2-3", 0), ("4-5", 5)]
    with pytest.raises(ValueError, match="one more edge"):
        corpus_check.histogram_bins({"histogram": {"edges": [1, 2], "counts": [3, 4]}})
    assert format_duration(42) == "42 s"
    assert format_duration(200) == "3 min 20 s"
    assert format_duration(7500) == "2 h 05 min"
    assert format_duration(float("nan")) == "unknown"


@pytest.mark.browser
def test_train_page_renders_in_chromium(tmp_path: Path) -> None:
    from browser import chromium_page, streamlit_server

    with streamlit_server(tmp_path / "home") as url, chromium_page() as page:
        page.goto(f"{url}/Train?model=transformer&preset=tiny&batch_size=0")
        page.get_by_text("batch_size must be between 1 and 65536, got 0").wait_for(timeout=90_000)
        page.get_by_text("No runs yet. Start one above.").wait_for(timeout=60_000)
        assert page.locator("[data-testid='stException']").count() == 0
        page.goto(f"{url}/Train?model=transformer&preset=tiny")
        page.get_by_text("Estimated time").wait_for(timeout=90_000)
        assert page.get_by_role("button", name="Start training").is_enabled()
        assert page.locator("[data-testid='stException']").count() == 0


@pytest.mark.browser
def test_job_list_notices_a_job_started_elsewhere_and_then_follows_it_every_second(
        trained_home: Path, tmp_path: Path) -> None:
    """With no job active the list polls slowly (IDLE_POLL_SECONDS); a job started elsewhere
    (the CLI, another tab) shows up at the next slow poll, and from then on the list polls every
    POLL_SECONDS: over 8 s of metric writes, a 10 s pace would show at most one new loss."""
    import os
    import time

    from browser import chromium_page, streamlit_server

    from textgen.store.database import RunStore
    from textgen.training import jobs

    home = copy_home(trained_home, tmp_path / "h")
    run = list_runs(home)[0]
    with streamlit_server(home) as url, chromium_page() as page, RunStore(home) as store:
        page.goto(f"{url}/Train?model=gru")
        page.get_by_text(run.id).first.wait_for(timeout=90_000)
        assert page.get_by_role("button", name="Stop").count() == 0
        # "Started elsewhere": running, owned by this (live) process, so the server keeps it so.
        store.update_run(run.id, status="running", finished_at=None, pid=os.getpid(),
                         pid_started=jobs.process_start_time(os.getpid()))
        page.get_by_role("button", name="Stop").wait_for(timeout=60_000)
        seen: set[str] = set()
        started = time.monotonic()
        for index in range(80):  # 8 s: a write every 0.4 s, a look every 0.1 s
            if index % 4 == 0:
                # 7.7xx: a loss no real run on the page has (they are near or below ln(vocab)).
                store.log_metrics(run.id, 1_000_000 + index, {"loss": 7.7 + index / 1000},
                                  split="train", epoch=2.0)
            seen.update(re.findall(r"train loss (7\.7\d\d)", page.inner_text("body")))
            time.sleep(max(0.0, started + (index + 1) * 0.1 - time.monotonic()))
        assert len(seen) >= 3, sorted(seen)
        assert page.locator("[data-testid='stException']").count() == 0
