"""The Compare page (AppTest): empty store, three runs on test-split inputs with deltas against
a pinned baseline, links that carry the view, sorting by delta, runs of different corpora and
untrusted typed inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import ROOT, copy_home, open_app

from streamlit.testing.v1 import AppTest

PAGE = str(ROOT / "pages" / "4_Compare.py")


def _page(**query: str) -> AppTest:
    return open_app(PAGE, **query)


def _selectbox(app: AppTest, label: str):
    return next(box for box in app.selectbox if box.label == label)


def _examples(app: AppTest):
    """The side-by-side table (the second dataframe; the first is the summary)."""
    return app.dataframe[1].value


@pytest.fixture(scope="module")
def demo_home(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_home(trained_home, tmp_path_factory.mktemp("compare-page") / "home")


@pytest.fixture
def runs(demo_home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    from textgen.store.database import RunStore

    monkeypatch.setenv("TEXTGEN_HOME", str(demo_home))
    with RunStore(demo_home) as store:
        return {run.kind: run.id for run in store.list_runs()}


def _test_split(home: Path, run_id: str) -> list:
    from textgen.data import registry
    from textgen.store.database import RunStore

    with RunStore(home) as store:
        return registry.run_examples(store, store.get_run(run_id).corpus_id)["test"]


def test_empty_store_says_what_to_do(home: Path) -> None:
    app = _page()
    assert not app.exception
    assert any("No trained runs yet" in info.value for info in app.info)
    assert not app.dataframe


def test_three_runs_on_test_inputs_with_deltas_against_the_baseline(runs: dict[str, str],
                                                                    demo_home: Path) -> None:
    app = _page(runs="bogus", n="3")  # a crafted run id is ignored: the first three are taken
    assert not app.exception, app.exception
    picked = app.multiselect[0].value
    assert sorted(picked) == sorted(runs.values())
    assert app.query_params["runs"] == ",".join(picked)
    baseline, others = picked[0], picked[1:]
    assert _selectbox(app, "Baseline (pinned)").value == baseline
    summary = app.dataframe[0].value
    assert len(summary) == 3 and list(summary["baseline"]) == [True, False, False]
    table = _examples(app)
    test = _test_split(demo_home, baseline)
    assert list(table["#"]) == [0, 1, 2]
    assert list(table["source"]) == [e.source for e in test[:3]]
    assert list(table["reference"]) == [e.target for e in test[:3]]
    deltas = [column for column in table.columns if column.startswith("Δ chrF")]
    assert len(deltas) == 2 and all(any(run_id in c for c in deltas) for run_id in others)
    base_scores = table[next(c for c in table.columns if c.startswith(baseline) and c.endswith("chrF"))]
    for run_id in others:
        scores = table[next(c for c in table.columns if c.startswith(run_id) and c.endswith("chrF"))]
        delta = table[next(c for c in deltas if run_id in c)]
        assert list(delta) == pytest.approx(list(scores - base_scores))
    # The example view: every run's output and the attention of the two models that have it.
    assert f"Input:     {test[0].source}" in [text.value for text in app.text]
    assert len(app.code) == 3
    assert len(app.get("plotly_chart")) == 2
    assert any("has no attention" in caption.value for caption in app.caption)


def test_the_link_carries_baseline_metric_and_example(runs: dict[str, str], demo_home: Path) -> None:
    chosen = f"{runs['gru']},{runs['bahdanau']}"
    app = _page(runs=chosen, baseline=runs["bahdanau"], metric="bleu", n="4", example="2")
    assert not app.exception
    assert app.multiselect[0].value == [runs["gru"], runs["bahdanau"]]
    assert _selectbox(app, "Baseline (pinned)").value == runs["bahdanau"]
    assert _selectbox(app, "Score").value == "bleu"
    table = _examples(app)
    assert [c for c in table.columns if c.startswith("Δ")] == [f"Δ BLEU {runs['gru']} (gru)"]
    assert _selectbox(app, "Example").value == 2
    source = _test_split(demo_home, runs["gru"])[2].source
    assert f"Input:     {source}" in [text.value for text in app.text]
    assert app.query_params["example"] == "2" and app.query_params["baseline"] == runs["bahdanau"]
    # Sorting by the delta, wins first: the delta column comes out in descending order.
    sort = _selectbox(app, "Sort by")
    sort.set_value(f"{runs['gru']}:desc").run()
    column = _examples(app)[f"Δ BLEU {runs['gru']} (gru)"]
    assert list(column) == sorted(column, reverse=True)
    # Crafted values fall back to defaults instead of failing.
    app = _page(runs=chosen, baseline="r-bogus", metric="<b>", n="-4", example="99")
    assert not app.exception
    assert _selectbox(app, "Baseline (pinned)").value == runs["gru"]
    assert _selectbox(app, "Score").value == "chrf"
    assert len(_examples(app)) == 1 and _selectbox(app, "Example").value == 0


def test_runs_of_different_corpora_are_explained(runs: dict[str, str], demo_home: Path,
                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = copy_home(demo_home, tmp_path / "home")
    config_path = home / "runs" / runs["gru"] / "run.json"
    config = json.loads(config_path.read_text())
    config["corpus_id"] = "c-000000000000"
    config_path.write_text(json.dumps(config))
    monkeypatch.setenv("TEXTGEN_HOME", str(home))
    app = _page(runs=f"{runs['gru']},{runs['bahdanau']}")
    assert not app.exception
    assert any("different corpora" in error.value for error in app.error)


def test_typed_inputs_are_shown_only_as_text(runs: dict[str, str]) -> None:
    app = _page(runs=f"{runs['bahdanau']},{runs['transformer']}")
    app.radio(key="cmp-inputs").set_value("typed").run()
    app.text_area(key="cmp-typed").input("<script>alert(1)</script>\n3 September 1987").run()
    assert not app.exception
    table = _examples(app)
    assert list(table["source"]) == ["<script>alert(1)</script>", "3 September 1987"]
    assert not [c for c in table.columns if c.startswith("Δ") and table[c].notna().any()]  # no references
    assert "Input:     <script>alert(1)</script>" in [text.value for text in app.text]
    assert not app.get("html")
    assert not any("<script" in markdown.value for markdown in app.markdown)
    assert app.query_params["input"] == "<script>alert(1)</script>\n3 September 1987"
    # With references, the typed inputs get scores and deltas.
    app.text_area(key="cmp-typed-refs").input("\n1987-09-03").run()
    table = _examples(app)
    delta = next(c for c in table.columns if c.startswith("Δ"))
    assert table[delta].isna().tolist() == [True, False]


def test_the_beam_stopping_rule_is_offered_for_beam_search_only(runs: dict[str, str]) -> None:
    app = _page(runs=f"{runs['bahdanau']},{runs['transformer']}")
    app.radio(key="cmp-inputs").set_value("typed").run()
    app.text_area(key="cmp-typed").input("3 September 1987").run()
    assert app.selectbox(key="cmp-beam-stopping").disabled  # greedy by default
    app.selectbox(key="cmp-strategy").set_value("beam").run()
    stopping = app.selectbox(key="cmp-beam-stopping")
    assert not stopping.disabled and stopping.value == "current_length"
    stopping.set_value("max_length").run()
    assert not app.exception
    assert list(_examples(app)["source"]) == ["3 September 1987"]
