"""The Evaluate page (AppTest): leaderboard with intervals, paired significance, per-sentence
distributions, downloads, evaluating a run from the page, and the URL as shareable state."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import ROOT, open_app

from streamlit.testing.v1 import AppTest

from textgen.store.database import RunStore

PAGE = str(ROOT / "pages" / "6_Evaluate.py")


def open_page(**query: str) -> AppTest:
    return open_app(PAGE, **query)


def figures(app: AppTest) -> list[dict]:
    return [json.loads(element.proto.spec) for element in app.get("plotly_chart")]


def heatmap(app: AppTest) -> dict | None:
    return next((f["data"][0] for f in figures(app) if f["data"] and f["data"][0]["type"] == "heatmap"), None)


def test_empty_store_shows_a_friendly_message(home: Path) -> None:
    app = open_page()
    assert not app.exception, app.exception
    assert any("No runs yet" in info.value for info in app.info)
    assert not app.dataframe and not app.get("plotly_chart")


def test_leaderboard_significance_and_distributions(demo_home: Path, demo_runs: dict[str, str]) -> None:
    app = open_page()
    assert not app.exception, app.exception
    board = app.dataframe[0].value
    assert sorted(board["id"]) == sorted(demo_runs.values())
    for title in ("BLEU", "chrF", "TER", "ROUGE-1", "ROUGE-2", "ROUGE-L"):
        assert {title, f"{title} low", f"{title} high"} <= set(board.columns)
        assert (board[f"{title} low"] <= board[title]).all() and (board[title] <= board[f"{title} high"]).all()
    with RunStore(demo_home) as store:
        stored = {run_id: store.get_evaluations(run_id)[-1].metrics["chrf"] for run_id in demo_runs.values()}
    assert {row["id"]: row["chrF high"] for _, row in board.iterrows()} == {
        run_id: metric["high"] for run_id, metric in stored.items()}
    assert list(board["BLEU"]) == sorted(board["BLEU"], reverse=True)

    cells = heatmap(app)
    assert cells is not None and len(cells["z"]) == 3 and all(len(row) == 3 for row in cells["z"])
    assert [cells["z"][i][i] for i in range(3)] == [None] * 3
    assert all(cells["z"][i][j] == cells["z"][j][i] for i in range(3) for j in range(3))
    boxes = [f for f in figures(app) if f["data"] and f["data"][0]["type"] == "box"]
    assert len(boxes) == 1 and len(boxes[0]["data"]) == 3
    assert all(len(trace["y"]) == 30 for trace in boxes[0]["data"])
    assert [b.label for b in app.get("download_button")] == [
        "Leaderboard (.csv)", "Leaderboard (.json)", "Per-sentence scores (.csv)", "Per-sentence scores (.json)"]
    assert app.query_params["split"] == "test" and app.query_params["metric"] == "bleu"


def test_the_link_restores_runs_and_metric(demo_runs: dict[str, str]) -> None:
    pair = [demo_runs["gru"], demo_runs["transformer"]]
    app = open_page(runs=",".join(pair), metric="chrf")
    assert not app.exception, app.exception
    assert app.multiselect(key="pick-runs").value == pair
    assert app.selectbox(key="sig-metric").value == "chrf"
    cells = heatmap(app)
    assert len(cells["z"]) == 2
    assert cells["x"] == [f"gru demo · {pair[0]}", f"transformer demo · {pair[1]}"]
    # The transformer's chrF is clearly higher on these 30 sentences.
    assert cells["z"][0][1] < 0.05


def test_crafted_query_parameters_never_break_the_page(demo_runs: dict[str, str]) -> None:
    app = open_page(runs="<img src=x>", split="../../secret", metric="drop table")
    assert not app.exception, app.exception
    assert app.selectbox(key="board-split").value == "test"
    assert app.selectbox(key="sig-metric").value == "bleu"


def test_one_run_asks_for_another_to_compare(demo_runs: dict[str, str]) -> None:
    app = open_page(runs=demo_runs["gru"])
    assert not app.exception, app.exception
    assert heatmap(app) is None
    assert any("at least two runs" in info.value for info in app.info)
    assert len(app.get("plotly_chart")) == 1  # the distribution still shows


def test_evaluate_now_adds_a_row_and_explains_mismatched_test_sets(demo_home: Path,
                                                                  demo_runs: dict[str, str]) -> None:
    gru = demo_runs["gru"]
    app = open_page(runs=gru)
    app.selectbox(key="eval-strategy").select("beam")
    app.number_input(key="eval-beam").set_value(2)
    app.number_input(key="eval-max").set_value(8)
    app.number_input(key="eval-bootstrap").set_value(100)
    app.button[0].click().run()
    assert not app.exception, app.exception
    assert any("Evaluated 1 run" in message.value for message in app.success)
    with RunStore(demo_home) as store:
        evaluations = store.get_evaluations(gru)
    assert len(evaluations) == 2 and evaluations[-1].decoding["beam_width"] == 2
    board = app.dataframe[0].value
    assert sorted(board[board["id"] == gru]["decoding"]) == ["beam 2 (α 0.6)", "greedy"]
    # gru's latest test evaluation now holds 8 examples, the transformer's 30: no paired test.
    app.multiselect(key="pick-runs").set_value([gru, demo_runs["transformer"]]).run()
    assert not app.exception, app.exception
    assert heatmap(app) is None
    assert any("different examples (8 vs 30)" in warning.value.replace("\\", "") for warning in app.warning)


def test_hostile_labels_stay_text(demo_home: Path, demo_runs: dict[str, str]) -> None:
    hostile = "<img src=x>[a](http://e)\u202e"
    with RunStore(demo_home) as store:
        store.update_run(demo_runs["gru"], label=hostile)
    app = open_page()
    assert not app.exception, app.exception
    board = app.dataframe[0].value
    assert "<img src=x>[a](http://e)⟨U+202E⟩" in list(board["run"])
    for figure in figures(app):
        spec = json.dumps(figure)
        assert "<img" not in spec and "\u202e" not in spec and "](http" not in spec
    cells = heatmap(app)
    assert any(label.endswith(f" · {demo_runs['gru']}") and "&#60;img" in label for label in cells["x"])


def test_a_missing_per_example_file_leaves_the_other_runs(demo_home: Path, demo_runs: dict[str, str]) -> None:
    for path in (demo_home / "runs" / demo_runs["gru"] / "evaluations").glob("*.json"):
        path.unlink()
    app = open_page()
    assert not app.exception, app.exception
    assert any("no per-example file" in warning.value.replace("\\", "") for warning in app.warning)
    assert len(app.dataframe[0].value) == 3  # the leaderboard comes from the store
    assert len(heatmap(app)["z"]) == 2
