"""textgen.analysis.comparison: token differences, per-example scores and deltas against a baseline, inputs
from the runs' shared test split, and a real side-by-side generation with three trained runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import copy_home


from textgen.analysis import comparison
from textgen.analysis.comparison import DiffSegment, RunOutput, build_table, render_diff, token_diff
from textgen.core.errors import ConfigError, StoreError
from textgen.scoring.metrics import score

PAIRS = [
    ("", ""),
    ("", "abc"),
    ("abc", ""),
    ("1987-09-03", "1987-09-03"),
    ("1987-09-03", "1978-09-30"),
    ("the cat sat", "the dog sat down"),
    ("a a a a b", "b a a a a"),
    ("<script>alert(1)</script>", "<b>x</b>"),
]


@pytest.mark.parametrize("old, new", PAIRS)
@pytest.mark.parametrize("char_level", [True, False])
def test_diff_segments_round_trip_to_both_texts(old: str, new: str, char_level: bool) -> None:
    a, b = comparison.diff_units(old, char_level), comparison.diff_units(new, char_level)
    segments = token_diff(a, b)
    assert [t for s in segments for t in s.baseline] == a
    assert [t for s in segments for t in s.other] == b
    for segment in segments:
        assert segment.tag in comparison.DIFF_TAGS
        if segment.tag == "equal":
            assert segment.baseline == segment.other
        elif segment.tag == "insert":
            assert not segment.baseline and segment.other
        elif segment.tag == "delete":
            assert segment.baseline and not segment.other
        else:
            assert segment.baseline and segment.other and segment.baseline != segment.other
    assert (comparison.changed_units(segments) == 0) == (a == b)


def test_diff_tags_and_plain_text_markup() -> None:
    segments = token_diff("the cat sat".split(), "the dog sat down".split())
    assert segments == [DiffSegment("equal", ("the",), ("the",)),
                        DiffSegment("replace", ("cat",), ("dog",)),
                        DiffSegment("equal", ("sat",), ("sat",)),
                        DiffSegment("insert", (), ("down",))]
    assert render_diff(segments) == "the [-cat-]{+dog+} sat {+down+}"
    dates = token_diff(list("1987-09-03"), list("1987-09-0"))
    assert render_diff(dates, "") == "1987-09-0[-3-]"
    assert comparison.changed_units(dates) == 1


def _output(text: str, char_level: bool = True) -> RunOutput:
    return RunOutput(output=text, tokens=list(text) + ["</s>"], finished=True, stop_reason="end",
                     char_level=char_level)


def test_scores_come_from_sacrebleu_and_deltas_are_against_the_pinned_baseline() -> None:
    sources = ["one", "two", "three"]
    references = ["2021-04-23", None, "1987-09-03"]
    outputs = {
        "r-a": [_output("2021-04-23"), _output("x"), _output("1987-09-30")],
        "r-b": [_output("2021-04-2"), _output("y"), _output("1987-09-03")],
        "r-c": [_output("1999-01-01"), _output("x"), _output("1987-09-03")],
    }
    table = build_table(["r-a", "r-b", "r-c"], sources, references, outputs, baseline="r-b")
    assert table.baseline == "r-b" and table.char_level and table.has_scores
    scored = [0, 2]
    for run_id, run_outputs in outputs.items():
        expected = score([run_outputs[i].output for i in scored],
                         [references[i] for i in scored], bootstrap_samples=0).sentence_scores
        for position, i in enumerate(scored):
            for metric in comparison.METRICS:
                assert table.rows[i].results[run_id].scores[metric] == pytest.approx(
                    expected[metric][position])
    for row in table.rows:
        base = row.results["r-b"]
        assert all(delta == 0 for delta in base.deltas.values())
        assert all(s.tag == "equal" for s in base.diff)
        for run_id in ("r-a", "r-c"):
            result = row.results[run_id]
            assert result.deltas == pytest.approx(
                {m: result.scores[m] - base.scores[m] for m in result.scores})
    # The example without a reference has no scores and no deltas.
    assert table.rows[1].results["r-a"].scores == {} and table.rows[1].results["r-a"].deltas == {}
    # A perfect output beats the baseline's near miss: a positive chrF delta.
    assert table.rows[0].results["r-a"].deltas["chrf"] > 0
    means = table.mean_scores("chrf")
    assert means["r-a"] == pytest.approx(np.mean([table.rows[i].results["r-a"].scores["chrf"] for i in scored]))
    assert table.mean_deltas("chrf")["r-b"] == 0
    assert table.mean_deltas("chrf")["r-c"] == pytest.approx(means["r-c"] - means["r-b"])


def test_rows_sort_by_delta_and_records_have_a_delta_column_per_other_run() -> None:
    references = ["aaaa", "aaaa", "aaaa", "aaaa"]
    outputs = {"base": [_output("aaaa")] * 4,
               "other": [_output("aaab"), _output("aaaa"), _output("bbbb"), _output("aabb")]}
    table = build_table(["base", "other"], ["s0", "s1", "s2", "s3"], references, outputs)
    assert table.baseline == "base"  # the first run by default
    ascending = [row.index for row in table.sorted_rows("other", "chrf")]
    deltas = [table.rows[i].results["other"].deltas["chrf"] for i in ascending]
    assert deltas == sorted(deltas) and ascending[0] == 2 and ascending[-1] == 1
    assert [row.index for row in table.sorted_rows("other", "chrf", descending=True)][0] == 1
    assert [row.index for row in table.sorted_rows()] == [0, 1, 2, 3]
    records = table.records("chrf", names={"base": "B", "other": "O"})
    assert list(records[0]) == ["#", "source", "reference", "B output", "B chrF",
                                "O output (vs baseline)", "O chrF", "Δ chrF O"]
    assert records[2]["O output (vs baseline)"] == "[-aaaa-]{+bbbb+}"
    assert records[2]["Δ chrF O"] == pytest.approx(table.rows[2].results["other"].deltas["chrf"])
    with pytest.raises(ValueError, match="metric must be one of"):
        table.records("accuracy")


def test_bad_comparisons_say_what_was_expected() -> None:
    outputs = {"a": [_output("x")]}
    with pytest.raises(ConfigError, match="baseline must be one of"):
        build_table(["a"], ["s"], None, outputs, baseline="b")
    with pytest.raises(ConfigError, match="at least one run"):
        build_table([], ["s"], None, outputs)
    with pytest.raises(ConfigError, match="no inputs"):
        comparison.check_inputs([], None)
    with pytest.raises(ConfigError, match="references for"):
        comparison.check_inputs(["a", "b"], ["x"])
    with pytest.raises(ConfigError, match="at most"):
        comparison.check_inputs(["x" * (comparison.MAX_INPUT_CHARS + 1)], None)
    with pytest.raises(ValueError, match="outputs for"):
        build_table(["a"], ["s", "t"], None, outputs)


@pytest.fixture(scope="module")
def demo_home(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_home(trained_home, tmp_path_factory.mktemp("comparison") / "home")


def _run_ids(home: Path) -> dict[str, str]:
    from textgen.store.database import RunStore

    with RunStore(home) as store:
        return {run.kind: run.id for run in store.list_runs()}


def test_inputs_come_from_the_shared_test_split(demo_home: Path) -> None:
    from textgen.data import registry
    from textgen.store.database import RunStore

    ids = _run_ids(demo_home)
    with RunStore(demo_home) as store:
        drawn = comparison.split_inputs(store, list(ids.values()), start=2, limit=3)
        corpus_id = store.get_run(ids["gru"]).corpus_id
        test = registry.run_examples(store, corpus_id)["test"]
    assert drawn.corpus_id == corpus_id and drawn.total == len(test)
    assert drawn.sources == [e.source for e in test[2:5]]
    assert drawn.references == [e.target for e in test[2:5]]


def test_runs_of_different_corpora_have_no_common_split(demo_home: Path, tmp_path: Path) -> None:
    from textgen.store.database import RunStore

    home = copy_home(demo_home, tmp_path / "home")
    ids = _run_ids(home)
    with RunStore(home) as store:
        config_path = store.run_dir(ids["gru"]) / "run.json"
        config = json.loads(config_path.read_text())
        config["corpus_id"] = "c-000000000000"
        config_path.write_text(json.dumps(config))
        with pytest.raises(StoreError, match="different corpora"):
            comparison.split_inputs(store, [ids["bahdanau"], ids["gru"]])


def test_three_runs_side_by_side_on_test_inputs(demo_home: Path) -> None:
    from textgen.decoding import DecodingConfig
    from textgen.store.database import RunStore

    ids = _run_ids(demo_home)
    run_ids = [ids["gru"], ids["bahdanau"], ids["transformer"]]
    with RunStore(demo_home) as store:
        drawn = comparison.split_inputs(store, run_ids, limit=3)
        table = comparison.compare_outputs(store, run_ids, drawn.sources, drawn.references,
                                           DecodingConfig(max_length=16), baseline=ids["bahdanau"])
        with pytest.raises(StoreError, match="no run"):
            comparison.compare_outputs(store, ["r-000000000000"], ["x"], None, DecodingConfig())
    assert table.run_ids == run_ids and table.baseline == ids["bahdanau"] and table.char_level
    assert [row.source for row in table.rows] == drawn.sources
    for row in table.rows:
        for run_id in run_ids:
            result = row.results[run_id]
            assert set(result.scores) == set(comparison.METRICS)
            assert len(result.output.tokens) <= 16
            units = comparison.diff_units(result.output.output, True)
            assert [t for s in result.diff for t in s.other] == units
        assert row.results[ids["gru"]].output.attention is None  # no attention in a plain GRU
        assert row.results[ids["bahdanau"]].output.attention.kinds == ["cross_attention"]
        assert row.results[ids["transformer"]].output.attention.kinds == ["cross_attention",
                                                                          "self_attention"]
        assert row.results[ids["bahdanau"]].deltas == {m: 0.0 for m in comparison.METRICS}
