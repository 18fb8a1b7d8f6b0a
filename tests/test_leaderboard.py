"""textgen.analysis.leaderboard: leaderboard rows, significance matrices and per-sentence data from stored
evaluations (the three demo runs of `trained_home`), and exports that neutralise formulas."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

import pytest
from conftest import DEMO_KINDS
from helpers import copy_home


from textgen.analysis import leaderboard
from textgen.core.errors import StoreError
from textgen.scoring.metrics import METRIC_NAMES, SENTENCE_METRICS
from textgen.store.database import RunStore


@pytest.fixture(scope="module")
def demo_home(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy (tests here read it; one adds evaluations to its own further copy)."""
    return copy_home(trained_home, tmp_path_factory.mktemp("leaderboard") / "home")


@pytest.fixture(scope="module")
def demo_examples(demo_home: Path) -> dict[str, leaderboard.EvaluationExamples]:
    with RunStore(demo_home) as store:
        run_ids = [run.id for run in store.list_runs()]
        records = leaderboard.latest_per_run(store, run_ids, "test")
        return {run_id: leaderboard.load_examples(store, record) for run_id, record in records.items()}


def test_leaderboard_rows_have_every_metric_with_its_interval(demo_home: Path) -> None:
    with RunStore(demo_home) as store:
        runs = store.list_runs()
        rows = leaderboard.leaderboard_rows(store, runs)
        stored = {run.id: store.get_evaluations(run.id)[-1] for run in runs}
        assert leaderboard.leaderboard_rows(store, runs, split="valid") == []
    assert sorted(row["model"] for row in rows) == sorted(DEMO_KINDS)
    assert {row["label"] for row in rows} == {f"{kind} demo" for kind in DEMO_KINDS}
    for row in rows:
        assert row["split"] == "test" and row["decoding"] == "greedy"
        assert row["evaluation_id"] == stored[row["run_id"]].id
        for name in METRIC_NAMES:
            assert row[name] == stored[row["run_id"]].metrics[name]["value"]
            assert row[f"{name}_low"] <= row[name] <= row[f"{name}_high"]
    bleu = [row["bleu"] for row in rows]
    assert bleu == sorted(bleu, reverse=True)


def test_latest_evaluation_per_run_and_decoding(demo_home: Path, tmp_path: Path) -> None:
    home = copy_home(demo_home, tmp_path / "home")
    with RunStore(home) as store:
        run = store.list_runs()[0]
        old = store.get_evaluations(run.id)[-1]
        newer_metrics = {name: {**score, "value": 42.0} for name, score in old.metrics.items()}
        store.add_evaluation(run.id, split="test", decoding=old.decoding, metrics=newer_metrics, signature="x")
        beam = {**old.decoding, "strategy": "beam", "beam_width": 3}
        store.add_evaluation(run.id, split="test", decoding=beam, metrics=old.metrics, signature="x")
        rows = [r for r in leaderboard.leaderboard_rows(store, store.list_runs()) if r["run_id"] == run.id]
        assert sorted(r["decoding"] for r in rows) == ["beam 3 (α 0.6)", "greedy"]
        assert [r["bleu"] for r in rows if r["decoding"] == "greedy"] == [42.0]
        # The newest evaluation on the split (here the beam one) is the run's system for comparisons.
        latest = leaderboard.latest_per_run(store, [run.id], "test")[run.id]
        assert latest.decoding["strategy"] == "beam"
        assert leaderboard.splits_evaluated(store, [run.id]) == ["test"]
        # Its per-example file was never written: a clear error, not a traceback.
        with pytest.raises(StoreError, match="no per-example file"):
            leaderboard.load_examples(store, latest)


def test_examples_match_the_stored_file(demo_home: Path, demo_examples) -> None:
    assert len(demo_examples) == 3
    for run_id, data in demo_examples.items():
        payload = json.loads((demo_home / "runs" / run_id / "evaluations" /
                              f"evaluation-{data.evaluation_id}.json").read_text(encoding="utf-8"))
        assert data.hypotheses == [e["hypothesis"] for e in payload["examples"]]
        assert len(data) == len(data.references) == len(data.sources) == 30
        assert set(data.sentence_scores) == set(SENTENCE_METRICS)
        assert all(0.0 <= s <= 100.0 for scores in data.sentence_scores.values() for s in scores)


def test_significance_matrix_is_square_symmetric_and_matches_the_scores(demo_home: Path, demo_examples) -> None:
    matrices = leaderboard.significance_matrices(demo_examples, n_samples=200)
    assert set(matrices) == set(leaderboard.SIGNIFICANCE_METRICS)
    names = list(demo_examples)
    with RunStore(demo_home) as store:
        stored = {run_id: store.get_evaluations(run_id)[-1].metrics for run_id in names}
    for metric, matrix in matrices.items():
        n = len(matrix.systems)
        assert matrix.systems == names and n == 3
        assert len(matrix.p_values) == n and all(len(row) == n for row in matrix.p_values)
        for i in range(n):
            assert matrix.p_values[i][i] is None and matrix.deltas[i][i] is None
            assert matrix.scores[i] == pytest.approx(stored[names[i]][metric]["value"], abs=1e-6)
            for j in range(n):
                if i != j:
                    assert 0.0 < matrix.p_values[i][j] <= 1.0
                    assert matrix.p_values[i][j] == matrix.p_values[j][i]
                    assert matrix.deltas[i][j] == pytest.approx(-matrix.deltas[j][i])
                    assert matrix.deltas[i][j] == pytest.approx(matrix.scores[j] - matrix.scores[i], abs=1e-6)
    # One system, or too many, is refused.
    with pytest.raises(ValueError, match="2 to"):
        leaderboard.significance_matrices({names[0]: demo_examples[names[0]]})


def test_different_examples_are_refused_with_an_explanation(demo_examples) -> None:
    first, second = list(demo_examples)[:2]
    fewer = dataclasses.replace(demo_examples[second], hypotheses=demo_examples[second].hypotheses[:10],
                                references=demo_examples[second].references[:10],
                                sources=demo_examples[second].sources[:10])
    with pytest.raises(StoreError, match=f"{first} and {second}.*30 vs 10"):
        leaderboard.significance_matrices({first: demo_examples[first], second: fewer})
    other = dataclasses.replace(demo_examples[second],
                                references=list(reversed(demo_examples[second].references)))
    with pytest.raises(StoreError, match="other sources or references"):
        leaderboard.check_shared_examples({first: demo_examples[first], second: other})
    leaderboard.check_shared_examples(demo_examples)  # the demo runs share their test split


def test_example_rows_for_the_download(demo_examples) -> None:
    examples = leaderboard.example_rows(demo_examples)
    assert len(examples) == 90
    assert set(examples[0]) == {"run_id", "evaluation_id", "index", "source", "reference", "hypothesis",
                                *SENTENCE_METRICS}


def test_csv_export_neutralises_formulas_and_keeps_numbers() -> None:
    rows = [{"run_id": "r-000000000001", "label": "=HYPERLINK(\"http://x\")", "hypothesis": "+1+2",
             "source": "@SUM(A1)", "bleu": -3.5, "chrf": 12.0}]
    parsed = list(csv.DictReader(io.StringIO(leaderboard.to_csv(rows))))
    assert parsed[0]["label"] == "'=HYPERLINK(\"http://x\")"
    assert parsed[0]["hypothesis"] == "'+1+2"
    assert parsed[0]["source"] == "'@SUM(A1)"
    assert parsed[0]["bleu"] == "-3.5"  # our numbers stay numbers
    data = json.loads(leaderboard.to_json(rows + [{"bleu": float("nan")}]))
    assert data[0]["label"] == rows[0]["label"] and data[1]["bleu"] is None


def test_decoding_summary() -> None:
    assert leaderboard.decoding_summary({"strategy": "greedy"}) == "greedy"
    beam = {"strategy": "beam", "beam_width": 5, "length_penalty": 1.0, "beam_stopping": "current_length"}
    assert leaderboard.decoding_summary(beam) == "beam 5 (α 1.0)"
    exhaustive = "beam 5 (α 1.0, exhaustive)"
    assert leaderboard.decoding_summary({**beam, "beam_stopping": "max_length"}) == exhaustive
    # Saved before the setting existed: decoded with the exhaustive rule.
    assert leaderboard.decoding_summary({k: v for k, v in beam.items() if k != "beam_stopping"}) == exhaustive
    assert leaderboard.decoding_summary({"strategy": "sample", "temperature": 0.7, "top_k": 0, "top_p": 0.9,
                                         "seed": 3}).startswith("sample T 0.7")
