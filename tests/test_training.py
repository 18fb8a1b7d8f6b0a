"""Training in-process: metrics, probe samples, checkpoints, resume, NaN handling, validation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from textgen.core.errors import ConfigError, CorpusError
from textgen.data.samples import catalog
from textgen.store.database import RunStore
from textgen.training import artifacts, jobs, planning, threads, trainer


@pytest.fixture
def reverse_corpus(tmp_path: Path) -> str:
    path = tmp_path / "reverse.tsv"
    path.write_bytes(catalog.sample_bytes("reverse", size=240, seed=1))
    return str(path)


def _train(store: RunStore, corpus: str, kind: str = "gru", **settings: str):
    plan = planning.plan_run(store, corpus, kind, preset="tiny",
                             settings={"batch_size": "32", "epochs": "1", "eval_bleu_examples": "16", **settings})
    run = jobs.submit(store, plan, background=False)
    return jobs.run_job(store, run.id)


def test_one_epoch_writes_metrics_probe_samples_and_a_loadable_checkpoint(store: RunStore, reverse_corpus: str) -> None:
    run = _train(store, reverse_corpus, log_every_seconds="0")
    assert run.status == "finished" and run.error is None and run.pid is None
    metrics = store.get_metrics([run.id])
    train_names = {m.name for m in metrics if m.split == "train"}
    valid_names = {m.name for m in metrics if m.split == "valid"}
    assert {"loss", "learning_rate", "tokens_per_second", "eta_seconds"} <= train_names
    assert {"loss", "perplexity", "accuracy", "bleu", "chrf"} <= valid_names
    valid_loss = [m.value for m in metrics if m.split == "valid" and m.name == "loss"][-1]
    perplexity = [m.value for m in metrics if m.split == "valid" and m.name == "perplexity"][-1]
    assert perplexity == pytest.approx(math.exp(valid_loss), rel=1e-6)
    probes = store.get_samples(run.id)
    assert len(probes) == 8 and all(p.reference for p in probes)

    run_dir = store.run_dir(run.id)
    trained = artifacts.load_trained(run_dir, "best")
    assert trained.checkpoint.step == max(m.step for m in metrics)
    assert trained.model.config == trained.config.model
    assert (run_dir / "tensorboard").is_dir() and any((run_dir / "tensorboard").rglob("events.out.tfevents*"))
    # The reloaded model decodes the probe sources to exactly what the trainer recorded.
    from textgen.decoding import DecodingConfig, generate

    outputs = generate(trained.model, trained.source_tokenizer, trained.target_tokenizer,
                       [p.source for p in probes], DecodingConfig(max_length=trained.config.model.max_target_length))
    assert [g.output for g in outputs] == [p.output for p in probes]


def test_resume_continues_the_step_count_and_keeps_optimizer_state(store: RunStore, reverse_corpus: str) -> None:
    run = _train(store, reverse_corpus)
    run_dir = store.run_dir(run.id)
    first = artifacts.Checkpoints(run_dir).get("last")
    saved = np.load(first.path / artifacts.OPTIMIZER_FILE)
    assert int(saved[sorted(saved.files)[0]]) == first.step  # the optimizer's step counter
    resumed = jobs.resume(store, run.id, epochs=1, settings={"learning_rate": "0.0005"}, background=False)
    assert resumed.status == "queued"
    resumed = jobs.run_job(store, run.id)
    assert resumed.status == "finished"
    second = artifacts.Checkpoints(run_dir).get("last")
    assert second.step == 2 * first.step
    steps = [m.step for m in store.get_metrics([run.id]) if m.split == "train"]
    assert steps == sorted(steps) and max(steps) > first.step
    assert artifacts.load_run_config(run_dir).train.learning_rate == 0.0005
    rates = [m.value for m in store.get_metrics([run.id], names=["learning_rate"]) if m.step > first.step]
    assert rates and all(r == pytest.approx(0.0005) for r in rates)


def test_max_steps_ends_the_run_there_with_the_schedule_spanning_it_and_resume_lifts_it(
        store: RunStore, reverse_corpus: str) -> None:
    run = _train(store, reverse_corpus, epochs="5", max_steps="5", eval_every_steps="5", schedule="cosine",
                 warmup_steps="1", learning_rate="0.01", log_every_seconds="0", eval_bleu_examples="0")
    assert run.status == "finished"
    run_dir = store.run_dir(run.id)
    assert artifacts.Checkpoints(run_dir).get("last").step == 5
    rates = [m.value for m in store.get_metrics([run.id], names=["learning_rate"])]
    assert rates[-1] == pytest.approx(0.001, rel=0.05)  # the cosine reached its floor (10%) at step 5
    resumed = jobs.run_job(store, jobs.resume(store, run.id, epochs=1, background=False).id)
    assert resumed.status == "finished"
    assert artifacts.load_run_config(run_dir).train.max_steps == 0
    assert artifacts.Checkpoints(run_dir).get("last").step > 5


def test_validation_batches_are_raised_for_small_training_batches_within_a_logits_budget() -> None:
    assert trainer.eval_batch_size(12, 64, 65) == 64  # nanoGPT's recipe: 5x fewer evaluation steps
    assert trainer.eval_batch_size(128, 64, 8000) == 128  # never below the training batch
    assert trainer.eval_batch_size(4, 512, 32000) == 4  # 64 x 512 x 32,000 logits would be 4 GB
    assert trainer.eval_batch_size(8, 256, 8000) == 32  # as many as fit in the budget


# A non-finite loss failing the run at its step (keeping the last good checkpoint) is tested in
# test_faults.py.


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"batch_size": "0"}, "batch_size must be between 1"),
        ({"epochs": "-1"}, "epochs must be between 0"),
        ({"hidden_units": "100000"}, "hidden_units must be between 1 and 8192"),
        ({"no_such_field": "1"}, "unknown setting 'no_such_field'"),
        ({"learning_rate": "fast"}, "learning_rate must be a number"),
        ({"tokenizer": "sentencepiece"}, "kind must be one of"),
        ({"jit_compile": "true"}, "jit_compile is available for transformer, transformer-lm only"),
        ({"matmul_precision": "float16"}, "matmul_precision must be one of float32, bfloat16"),
    ],
)
def test_bad_hyperparameters_are_refused_before_a_run_exists(
    store: RunStore, reverse_corpus: str, settings: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        planning.plan_run(store, reverse_corpus, "gru", preset="tiny", settings=settings)
    assert store.list_runs() == []


def test_a_run_with_bfloat16_matmuls_trains_differently_from_float32_and_saves_the_setting(
        store: RunStore, reverse_corpus: str, capsys) -> None:
    """The setting reaches the model: the same seed gives other (close) losses, and the run keeps
    its setting; the job says how this CPU multiplies; the checkpoint loads and decodes like any
    other."""
    from textgen.models.layers import native_bfloat16_matmul

    runs = {precision: _train(store, reverse_corpus, "transformer", matmul_precision=precision,
                              log_every_seconds="0", eval_bleu_examples="0", num_probe_samples="2")
            for precision in ("float32", "bfloat16")}
    said = [line for line in capsys.readouterr().out.splitlines() if line.startswith("matmul_precision:")]
    assert said == ["matmul_precision: bfloat16, " + ("bfloat16 matmuls in hardware" if native_bfloat16_matmul()
                                                      else "emulated: operands rounded to bfloat16, multiplied in "
                                                           "float32 (no native bfloat16 here)")]
    losses = {}
    for precision, run in runs.items():
        assert run.status == "finished", run.error
        rows = sorted((m for m in store.get_metrics([run.id], names=["loss"]) if m.split == "valid"),
                      key=lambda m: m.step)
        losses[precision] = rows[-1].value
        saved = json.loads((store.run_dir(run.id) / "run.json").read_text())
        assert saved["train"]["matmul_precision"] == precision
    assert losses["bfloat16"] != losses["float32"]
    assert losses["bfloat16"] == pytest.approx(losses["float32"], rel=0.05)
    # Decoding is float32 in the job too: the reloaded checkpoint decodes the probes as recorded.
    from textgen.decoding import DecodingConfig, generate

    trained = artifacts.load_trained(store.run_dir(runs["bfloat16"].id), "best")
    probes = store.get_samples(runs["bfloat16"].id)
    outputs = generate(trained.model, trained.source_tokenizer, trained.target_tokenizer,
                       [p.source for p in probes], DecodingConfig(max_length=trained.config.model.max_target_length))
    assert probes and [g.output for g in outputs] == [p.output for p in probes]


def test_wrong_model_family_for_the_corpus_is_refused(store: RunStore, reverse_corpus: str) -> None:
    with pytest.raises(ConfigError, match="language model for plain text"):
        planning.plan_run(store, reverse_corpus, "transformer-lm", preset="tiny")
    assert store.list_runs() == []


def test_a_corpus_too_small_to_train_on_is_refused_with_the_minimum(store: RunStore, tmp_path: Path) -> None:
    path = tmp_path / "one.tsv"
    path.write_text("hello\tworld\n")
    with pytest.raises(CorpusError, match="At least 10"):
        planning.plan_run(store, str(path), "gru", preset="tiny")
    assert store.list_runs() == []


def test_settings_are_routed_to_their_config() -> None:
    tokenizer, model, train = planning.split_settings(
        {"tokenizer": "char", "vocab_size": "100", "dropout": "0.2", "learning_rate": "0.01",
         "model.max_target_length": "32"})
    assert tokenizer == {"kind": "char", "vocab_size": "100"}
    assert model == {"dropout": "0.2", "max_target_length": "32"}
    assert train == {"learning_rate": "0.01"}


def test_language_model_trains_on_a_text_corpus(store: RunStore, tmp_path: Path) -> None:
    path = tmp_path / "tales.txt"
    path.write_bytes(catalog.sample_bytes("tales", size=6))
    run = _train(store, str(path), "lstm-lm", tokenizer="char", max_target_length="32", batch_parts="3")
    assert run.status == "finished", run.error
    probes = store.get_samples(run.id)
    assert probes and all(p.source for p in probes)
    assert json.loads((store.run_dir(run.id) / "run.json").read_text())["model"]["kind"] == "lstm-lm"


def test_held_out_valid_and_test_files_replace_the_random_split(store: RunStore, reverse_corpus: str,
                                                                tmp_path: Path) -> None:
    from textgen.analysis import evaluation
    from textgen.decoding import DecodingConfig

    valid, test = tmp_path / "valid.tsv", tmp_path / "test.tsv"
    valid.write_bytes(catalog.sample_bytes("reverse", size=12, seed=70))
    test.write_bytes(catalog.sample_bytes("reverse", size=14, seed=71))
    plan = planning.plan_run(store, reverse_corpus, "gru", preset="tiny", valid=str(valid), test=str(test),
                             settings={"epochs": "1", "batch_size": "32", "eval_bleu_examples": "0"})
    assert plan.num_train_examples == 240  # the corpus's own valid and test parts train too
    run = jobs.run_job(store, jobs.submit(store, plan, background=False).id)
    assert run.status == "finished", run.error
    probes = store.get_samples(run.id)
    valid_sources = {s for s, _ in catalog.generate_pairs("reverse", size=12, seed=70)}
    assert probes and {p.source for p in probes} <= valid_sources
    result, generations, _ = evaluation.evaluate_run(store, run.id, DecodingConfig(), bootstrap_samples=0, save=False)
    assert [g.source for g in generations] == [s for s, _ in catalog.generate_pairs("reverse", size=14, seed=71)]


def test_time_budget_stops_cleanly_and_keeps_a_checkpoint(store: RunStore, reverse_corpus: str) -> None:
    import time

    started = time.monotonic()
    run = _train(store, reverse_corpus, epochs="500", minutes="0.1", batch_size="8", eval_every_steps="20",
                 eval_bleu_examples="0")
    elapsed = time.monotonic() - started
    assert run.status == "finished", run.error
    last = artifacts.Checkpoints(store.run_dir(run.id)).get("last")
    assert last is not None and last.step < 500 * 24  # far from the planned steps
    assert elapsed < 60


def test_early_stopping_ends_after_patience_evaluations_without_improvement(store: RunStore, reverse_corpus: str) -> None:
    # A learning rate far too small to improve the validation loss by min_delta.
    run = _train(store, reverse_corpus, epochs="100", learning_rate="1e-8", early_stopping_patience="2",
                 early_stopping_min_delta="0.01",
                 eval_every_steps="2", eval_bleu_examples="0", keep_checkpoints="3")
    assert run.status == "finished", run.error
    valid_losses = [m.value for m in store.get_metrics([run.id], names=["loss"]) if m.split == "valid"]
    assert 3 <= len(valid_losses) < 20
    checkpoints = artifacts.Checkpoints(store.run_dir(run.id))
    kept = checkpoints.list()
    assert len(kept) <= 4 and checkpoints.get("last").name in {c.name for c in kept}
    assert all(artifacts.load_trained(store.run_dir(run.id), checkpoint_name=c.name) for c in kept)


def test_thread_settings_reach_tensorflow_or_say_why_not() -> None:
    import subprocess
    import sys

    code = """
import tensorflow as tf
from textgen.training.config import TrainConfig
from textgen.training.threads import configure_threads, thread_layout
configure_threads(thread_layout(TrainConfig(intra_op_threads={}, inter_op_threads={}), "gru", 2))
print("threads", tf.config.threading.get_intra_op_parallelism_threads(),
      tf.config.threading.get_inter_op_parallelism_threads())
tf.constant(1.0) + 1.0  # TensorFlow has run: settings can no longer change
configure_threads(thread_layout(TrainConfig(intra_op_threads=2), "gru", 2))
print("still running")
"""
    for (intra, inter), expected in {(1, 2): ["1", "2"], (1, 0): ["1", "1"]}.items():
        result = subprocess.run([sys.executable, "-c", code.format(intra, inter)], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parents[1])
        assert result.returncode == 0, result.stderr[-2000:]
        lines = result.stdout.splitlines()
        assert next(line for line in lines if line.startswith("threads")).split()[1:] == expected
        assert any("intra_op_threads=2 and inter_op_threads=2 were not applied" in line for line in lines), lines
        assert lines[-1] == "still running"


@pytest.mark.parametrize("kind, cores, settings, expected", [
    ("transformer", 2, {}, (1, 2, 2)),  # the sliced layout
    ("transformer-lm", 2, {}, (1, 2, 2)),
    ("transformer", 1, {}, (1, 1, 1)),
    ("transformer", 8, {}, (0, 0, 1)),  # more cores than measured: TensorFlow's defaults
    ("gru", 2, {}, (0, 0, 1)),  # recurrent families measured no faster sliced
    ("bahdanau", 2, {"intra_op_threads": 1}, (1, 1, 1)),
    ("transformer", 2, {"intra_op_threads": 2}, (2, 2, 1)),  # many threads per op: not sliced
    ("transformer", 2, {"batch_parts": 3}, (1, 2, 3)),  # what is set stays as set
    ("transformer", 2, {"inter_op_threads": 1}, (1, 1, 2)),
    ("lstm", 4, {"intra_op_threads": 4, "inter_op_threads": 1, "batch_parts": 2}, (4, 1, 2)),
])
def test_the_thread_layout_fills_the_settings_left_at_zero_per_family_and_machine(kind, cores, settings,
                                                                                   expected) -> None:
    from textgen.training.config import TrainConfig

    layout = threads.thread_layout(TrainConfig(**settings), kind, cores)
    assert (layout.intra_op_threads, layout.inter_op_threads, layout.batch_parts) == expected


def test_a_job_says_the_thread_layout_it_runs_with(store: RunStore, reverse_corpus: str,
                                                                   capsys) -> None:
    from textgen.training.config import TrainConfig

    run = _train(store, reverse_corpus, "transformer", batch_parts="3", eval_bleu_examples="0")
    assert run.status == "finished", run.error
    expected = threads.thread_layout(TrainConfig(batch_parts=3), "transformer", threads.available_cores())
    assert expected.batch_parts == 3
    assert expected.summary() in capsys.readouterr().out.splitlines()
