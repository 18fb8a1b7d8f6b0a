"""generate / evaluate / compare from the command line, on runs trained here in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli


from textgen.data.samples import catalog
from textgen.store.database import RunStore
from textgen.training import jobs, planning


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], Path]:
    """Two tiny runs on one corpus: an attention model and a plain GRU (1 epoch each)."""
    base = tmp_path_factory.mktemp("cli-models")
    home = base / "home"
    corpus = base / "reverse.tsv"
    corpus.write_bytes(catalog.sample_bytes("reverse", size=300, seed=5))
    run_ids = []
    with RunStore(home) as store:
        for kind in ("bahdanau", "gru"):
            plan = planning.plan_run(store, str(corpus), kind, preset="tiny",
                                     settings={"epochs": "2", "batch_size": "32", "eval_bleu_examples": "0"})
            run = jobs.run_job(store, jobs.submit(store, plan, background=False).id)
            assert run.status == "finished", run.error
            run_ids.append(run.id)
    return home, run_ids, corpus


def test_generate_json_returns_tokens_log_probs_and_attention(trained) -> None:
    home, (attention_run, _), _ = trained
    result = run_cli("generate", attention_run, "--input", "a b c d", "--json", home=home)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.decode().strip().splitlines()[-1])
    assert set(out) >= {"output", "tokens", "source_tokens", "log_probs", "attention"}
    assert len(out["log_probs"]) == len(out["tokens"]) and all(p <= 0 for p in out["log_probs"])
    attention = np.asarray(out["attention"])
    assert attention.shape == (len(out["tokens"]), len(out["source_tokens"]))
    np.testing.assert_allclose(attention.sum(axis=1), 1.0, atol=1e-5)


def test_generate_beam_returns_an_n_best_list(trained) -> None:
    home, (attention_run, _), _ = trained
    result = run_cli("generate", attention_run, "--input", "x y z", "--strategy", "beam", "--beam-width", "3",
                     "--json", home=home)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.decode().strip().splitlines()[-1])
    scores = [h["score"] for h in out["n_best"]]
    assert len(scores) == 3 and out["n_best"][0]["output"] == out["output"]


def test_generate_takes_the_beam_stopping_rule_and_names_the_choices_when_it_is_wrong(trained) -> None:
    home, (attention_run, _), _ = trained
    args = ["generate", attention_run, "--input", "x y z", "--strategy", "beam", "--json"]
    result = run_cli(*args, "--set", "beam_stopping=max_length", home=home)
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout.decode().strip().splitlines()[-1])["n_best"]) == 4
    wrong = run_cli(*args, "--set", "beam_stopping=never", home=home)
    assert wrong.returncode != 0 and b"Traceback" not in wrong.stderr
    assert b"beam_stopping" in wrong.stderr and b"current_length" in wrong.stderr


def test_evaluate_json_has_every_metric_with_an_interval_and_the_signature(trained, tmp_path: Path) -> None:
    home, (attention_run, _), _ = trained
    result = run_cli("evaluate", attention_run, "--json", home=home)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.decode().strip().splitlines()[-1])
    for metric in ("bleu", "chrf", "ter", "rouge1", "rouge2", "rougeL"):
        assert out[metric]["low"] <= out[metric]["value"] <= out[metric]["high"]
    assert "BLEU nrefs:1" in out["signature"] and out["split"] == "test"
    with RunStore(home) as store:
        assert store.get_evaluations(attention_run)[-1].metrics["bleu"]["value"] == pytest.approx(out["bleu"]["value"])

    external = tmp_path / "external.jsonl"
    external.write_text("".join(json.dumps({"source": s, "target": t}) + "\n"
                                for s, t in catalog.generate_pairs("reverse", size=20, seed=99)))
    result = run_cli("evaluate", attention_run, "--corpus", str(external), "--json", home=home)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.decode().strip().splitlines()[-1])["num_examples"] == 20


def test_compare_gives_p_values_against_the_first_run(trained) -> None:
    home, (first, second), _ = trained
    result = run_cli("compare", first, second, "--json", home=home)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.decode().strip().splitlines()[-1])
    assert out["baseline"] == first and [r["run_id"] for r in out["runs"]] == [first, second]
    assert out["runs"][0]["p_value"] == {}
    p_values = out["runs"][1]["p_value"]
    assert set(p_values) == {"bleu", "chrf", "ter", "rougeL"} and all(0 < p <= 1 for p in p_values.values())


def test_unknown_run_and_bad_decoding_settings_exit_2(trained) -> None:
    home, (run_id, _), _ = trained
    result = run_cli("generate", "r-000000000000", "--input", "a", home=home)
    assert result.returncode == 2 and b"no run with id" in result.stderr
    result = run_cli("generate", run_id, "--input", "a", "--strategy", "beam", "--beam-width", "0", home=home)
    assert result.returncode == 2 and b"beam_width must be between 1" in result.stderr
