"""Metrics: the same figures as sacreBLEU's command line and rouge-score's scorer, bootstrap
intervals, paired significance, NFC normalisation, storage and CSV / JSON export."""

from __future__ import annotations

import csv
import io
import json
import random
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from rouge_score import rouge_scorer

from textgen.analysis.evaluation import save_evaluation
from textgen.core.tables import export_csv, export_json
from textgen.scoring.metrics import METRIC_NAMES, EvaluationResult, paired_significance, score

SACREBLEU = Path(sys.executable).with_name("sacrebleu")

HYPOTHESES = ["The cat sat on a mat.", "A dog runs in the park.", "it rains again",
              "Birds are singing at dawn, loudly!", "We will meet tomorrow at noon."]
REFERENCES = ["The cat sat on the mat.", "A dog ran in the park today.", "It is raining again",
              "Birds sing at dawn.", "We meet tomorrow at noon."]


def _sacrebleu_cli(tmp_path, hypotheses, references, *args):
    (tmp_path / "ref.txt").write_text("\n".join(references) + "\n", encoding="utf-8")
    (tmp_path / "hyp.txt").write_text("\n".join(hypotheses) + "\n", encoding="utf-8")
    completed = subprocess.run(
        [str(SACREBLEU), str(tmp_path / "ref.txt"), "-i", str(tmp_path / "hyp.txt"), "-w", "6",
         *args], capture_output=True, text=True, timeout=120, check=True)
    return completed.stdout


def _synthetic(n, seed=0, keep=0.7):
    rng = random.Random(seed)
    words = "the a cat dog sat on mat house big small red runs quickly slowly and but".split()
    refs = [" ".join(rng.choices(words, k=rng.randint(5, 15))) for _ in range(n)]
    hyps = [" ".join(w if rng.random() < keep else rng.choice(words) for w in r.split())
            for r in refs]
    return hyps, refs


def test_corpus_scores_equal_the_sacrebleu_command_line(tmp_path):
    result = score(HYPOTHESES, REFERENCES, bootstrap_samples=0)
    cli = json.loads(_sacrebleu_cli(tmp_path, HYPOTHESES, REFERENCES, "-m", "bleu", "chrf", "ter",
                                    "--format", "json"))
    by_name = {entry["name"]: entry for entry in cli}
    for ours, theirs in (("bleu", "BLEU"), ("chrf", "chrF2"), ("ter", "TER")):
        assert result.metrics[ours].value == pytest.approx(by_name[theirs]["score"], abs=1e-5)
        assert by_name[theirs]["signature"] in result.signature


@pytest.mark.parametrize("metric", ["bleu", "chrf"])
def test_sentence_scores_equal_the_sacrebleu_command_line(tmp_path, metric):
    result = score(HYPOTHESES, REFERENCES, bootstrap_samples=0)
    output = _sacrebleu_cli(tmp_path, HYPOTHESES, REFERENCES, "-m", metric, "--sentence-level")
    cli = [float(v) for v in re.findall(r"\|version:\S+ = ([0-9.]+)", output)]
    assert len(cli) == len(HYPOTHESES)
    np.testing.assert_allclose(result.sentence_scores[metric], cli, atol=1e-5)


def test_rouge_equals_rouge_scores_own_scorer():
    result = score(HYPOTHESES, REFERENCES, bootstrap_samples=0)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    scores = [scorer.score(ref, hyp) for hyp, ref in zip(HYPOTHESES, REFERENCES)]
    for name in ("rouge1", "rouge2", "rougeL"):
        expected = 100 * np.mean([s[name].fmeasure for s in scores])
        assert result.metrics[name].value == pytest.approx(expected, abs=1e-9)
    np.testing.assert_allclose(result.sentence_scores["rougeL"],
                               [100 * s["rougeL"].fmeasure for s in scores])


def test_unicode_rouge_tokenizer_scores_non_latin_text():
    hyps = ["кошка сидит на коврике"]  # Russian: "the cat sits on the rug"
    refs = ["кошка сидела на коврике"]
    assert score(hyps, refs, bootstrap_samples=0).metrics["rouge1"].value == 0.0  # [a-z0-9] only
    unicode = score(hyps, refs, bootstrap_samples=0, rouge_tokenizer="unicode")
    assert unicode.metrics["rouge1"].value == pytest.approx(75.0)
    assert "tok:unicode" in unicode.signature


def test_confidence_intervals_contain_the_estimate_and_shrink_with_more_data():
    small = score(*_synthetic(40), bootstrap_samples=500)
    large = score(*_synthetic(640), bootstrap_samples=500)
    for name in METRIC_NAMES:
        for result in (small, large):
            m = result.metrics[name]
            assert m.low <= m.value <= m.high, (name, m)
        assert (large.metrics[name].high - large.metrics[name].low
                < 0.6 * (small.metrics[name].high - small.metrics[name].low)), name
    again = score(*_synthetic(40), bootstrap_samples=500)
    assert again.metrics == small.metrics  # seeded
    assert "bs:500|rs:12345" in small.signature


def test_bootstrap_of_a_thousand_sentences_is_fast():
    import time

    started = time.perf_counter()
    score(*_synthetic(1000), bootstrap_samples=1000)
    assert time.perf_counter() - started < 15  # about 1.6 s on two shared cores


@pytest.mark.parametrize("method", ["bs", "ar"])
def test_paired_significance(method):
    hyps, refs = _synthetic(200, seed=1, keep=0.6)
    better, _ = _synthetic(200, seed=1, keep=0.9)
    result = paired_significance({"base": hyps, "same": list(hyps), "better": better}, refs,
                                 baseline="base", method=method, n_samples=300)
    assert set(result) == {"same", "better"}
    for metric in ("bleu", "chrf", "ter", "rougeL"):
        assert result["same"][metric]["p_value"] == pytest.approx(1.0)
        assert result["same"][metric]["delta"] == 0.0
        assert result["better"][metric]["p_value"] < 0.05
    assert result["better"]["bleu"]["delta"] > 0 and result["better"]["ter"]["delta"] < 0
    with pytest.raises(ValueError):
        paired_significance({"base": hyps}, refs, baseline="base")
    with pytest.raises(ValueError):
        paired_significance({"a": hyps, "b": hyps}, refs, baseline="c")


def test_composed_and_decomposed_text_score_identically():
    composed = ["Le café est très élégant.", "Ça va à Noël"]
    decomposed = [unicodedata.normalize("NFD", t) for t in composed]
    assert decomposed != composed
    hyps = ["Le café est élégant.", "Ça va bien à Noël"]
    a = score(hyps, composed, bootstrap_samples=50)
    b = score(hyps, decomposed, bootstrap_samples=50)
    assert a.metrics == b.metrics
    assert b.references == composed


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError):
        score(["a"], ["a", "b"])
    with pytest.raises(ValueError):
        score([], [])
    with pytest.raises(ValueError):
        score(["a"], ["a"], sources=["x", "y"])


def test_csv_export_neutralises_formula_cells(tmp_path):
    result = score(["=1+2", "+cmd", "-rm", "@SUM(A1)", "\tx", "safe"],
                   ["=1+2", "a", "b", "c", "d", "e"], sources=["=HYPERLINK()"] + ["s"] * 5,
                   bootstrap_samples=0)
    buffer = io.StringIO()
    export_csv(result, buffer)
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    expected = ["'=1+2", "'+cmd", "'-rm", "'@SUM(A1)", "'\tx", "safe"]
    assert [r["hypothesis"] for r in rows] == expected
    assert rows[0]["reference"] == "'=1+2" and rows[0]["source"] == "'=HYPERLINK()"
    assert float(rows[0]["bleu"]) == pytest.approx(result.sentence_scores["bleu"][0])
    export_csv([{"name": "-x", "value": -1.5}], tmp_path / "rows.csv")
    assert (tmp_path / "rows.csv").read_text().splitlines() == ["name,value", "'-x,-1.5"]


def test_json_export_round_trips(tmp_path):
    result = score(HYPOTHESES, REFERENCES, sources=["s"] * 5, bootstrap_samples=20)
    export_json(result, tmp_path / "result.json")
    data = json.loads((tmp_path / "result.json").read_text(encoding="utf-8"))
    assert set(data["metrics"]) == set(METRIC_NAMES)
    assert data["metrics"]["bleu"]["value"] == pytest.approx(result.metrics["bleu"].value)
    assert data["signature"] == result.signature
    assert [e["hypothesis"] for e in data["examples"]] == HYPOTHESES
    assert isinstance(result, EvaluationResult) and len(result) == 5


def test_save_evaluation_records_config_metrics_and_signature(store):
    from textgen.decoding import DecodingConfig

    run = store.create_run(label="t", kind="transformer", config={})
    result = score(HYPOTHESES, REFERENCES, bootstrap_samples=20)
    config = DecodingConfig(strategy="beam", beam_width=3)
    evaluation_id = save_evaluation(store, run.id, "test", config, result)
    [record] = store.get_evaluations(run.id)
    assert record.id == evaluation_id and record.split == "test"
    assert DecodingConfig.from_dict(record.decoding) == config
    assert record.metrics["bleu"]["value"] == pytest.approx(result.metrics["bleu"].value)
    assert record.signature == result.signature
    saved = json.loads((store.run_dir(run.id) / "evaluations"
                        / f"evaluation-{evaluation_id}.json").read_text(encoding="utf-8"))
    assert len(saved["examples"]) == 5 and saved["decoding"]["beam_width"] == 3


def test_evaluate_run_scores_its_test_split_and_stores_the_result(store, tmp_path):
    from textgen.analysis.evaluation import evaluate_run
    from textgen.data.samples import catalog
    from textgen.decoding import DecodingConfig
    from textgen.training import jobs, planning

    corpus = tmp_path / "reverse.tsv"
    corpus.write_bytes(catalog.sample_bytes("reverse", size=200, seed=1))
    plan = planning.plan_run(store, str(corpus), "gru", preset="tiny", settings={
        "batch_size": "32", "epochs": "1", "eval_bleu_examples": "0", "num_probe_samples": "0"})
    run = jobs.run_job(store, jobs.submit(store, plan, background=False).id)
    assert run.status == "finished", run.error
    config = DecodingConfig(strategy="beam", beam_width=2, max_length=12)
    result, generations, evaluation_id = evaluate_run(store, run.id, config, bootstrap_samples=50)
    assert len(result) == len(generations) > 0
    assert result.hypotheses == [g.output for g in generations]
    [record] = store.get_evaluations(run.id)
    assert record.id == evaluation_id and record.split == "test"
    assert record.decoding == config.to_dict() and record.signature == result.signature
