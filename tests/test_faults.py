"""Bad hyperparameters and faults: each test proves the behaviour its docstring states with the
real code (real job processes, real SIGKILLs, a real allocation failure under an address-space
limit, real damaged files). What a browser sees of faults is in test_faults_browser.py.

Injected faults, where a real one cannot be produced cheaply and safely on a shared machine:
the disk-full test raises ENOSPC from `os.fsync` (the standard library call our atomic writes make) and
fills the SQLite database with SQLite's own `max_page_count` (the same "database or disk is
full" error a full disk gives).
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import signal
import threading
import time
import zipfile
from pathlib import Path

import pytest
from helpers import ROOT, copy_home, open_app, plain, run_cli, wait_for


from textgen.core.errors import ConfigError, StoreError
from textgen.data.samples import catalog
from textgen.runs import bundle
from textgen.store.database import ACTIVE_STATUSES, RunStore
from textgen.training import artifacts, jobs, planning

TINY = {"tokenizer": "char", "epochs": "1", "batch_size": "32", "eval_bleu_examples": "0",
        "num_probe_samples": "1"}


@pytest.fixture
def dates(tmp_path: Path) -> str:
    path = tmp_path / "dates.tsv"
    path.write_bytes(catalog.sample_bytes("dates", size=300, seed=22))
    return str(path)


def _wait_for(predicate, timeout: float, what: str):
    return wait_for(predicate, timeout, what, interval=0.1)


def _status(store: RunStore, run_id: str) -> str:
    jobs.reconcile(store)
    return store.get_run(run_id).status


def _leftovers(run_dir: Path) -> list[str]:
    """Temporary files anywhere under a run folder, and checkpoint folders nothing points at."""
    from textgen.core.fsutil import is_temporary

    found = [str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if is_temporary(p.name)]
    index_path = run_dir / "checkpoints" / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    referenced = {index.get("best"), index.get("last"), *index.get("history", [])}
    found += [p.name for p in (run_dir / "checkpoints").glob("ckpt-*") if p.name not in referenced]
    return found




def test_bad_hyperparameters_from_form_cli_or_url_are_refused_before_a_job_exists(
        home: Path, dates: str) -> None:
    """Bad hyperparameters from the Python API, the CLI, a crafted URL query or the Train form's
    widgets are refused with what was wrong and the valid range; no run, folder or job exists."""
    with RunStore(home) as store:
        for settings, message in [({"learning_rate": "0"}, "learning_rate must be between 1e-08 and 10"),
                                  ({"batch_size": "-3"}, "batch_size must be between 1"),
                                  ({"dropout": "2"}, "dropout must be between 0.0 and 0.9"),
                                  ({"learning_rate": "nan"}, "learning_rate must be a number")]:
            with pytest.raises(ConfigError, match=message):
                planning.plan_run(store, dates, "gru", preset="tiny", settings=settings)
        assert store.list_runs() == []
    result = run_cli("train", "--corpus", dates, "--model", "gru", "--preset", "tiny",
                     "--set", "learning_rate=1e9", "--background", home=home)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "learning_rate must be between 1e-08 and 10.0, got 1000000000.0" in lines[0]

    page = str(ROOT / "pages" / "2_Train.py")
    app = open_app(page, model="gru", preset="tiny", learning_rate="1e9")
    assert not app.exception, app.exception
    warnings = [plain(w.value) for w in app.warning]
    assert any("learning_rate must be between 1e-08 and 10.0, got 1000000000.0" in w and "ignored" in w
               for w in warnings), warnings
    assert app.number_input(key="train-train-learning_rate").value == pytest.approx(1e-3)  # the default
    app = open_app(page, model="gru", preset="tiny", batch_size="0")
    # The widgets take each field's declared range: the form cannot hold a value outside it.
    layers = app.number_input(key="train-model-gru-tiny-num_layers")
    assert (layers.min, layers.max) == (1, 48)
    batch_size = app.number_input(key="train-train-batch_size")
    assert (batch_size.min, batch_size.max) == (1, 65536)
    with RunStore(home) as store:
        assert store.list_runs() == []
    assert not any((home / "runs").iterdir())




def test_a_diverging_run_fails_with_non_finite_loss_at_step_n_keeping_the_last_good_checkpoint(
        store: RunStore, dates: str) -> None:
    """Honestly: with our Adam optimizer, learning rate 10 (the most the config allows) does not
    make the loss non-finite here (Adam's step is bounded by the learning rate and the loss is a
    stable log-softmax): measured here, tiny gru, lstm, bahdanau and transformer runs at 10 with
    clip_norm=0 all finished with finite losses. The guard itself is therefore driven by plain SGD whose rate jumps to 1e38 after the first
    evaluation, through the callbacks `train_run` wires (RunControl, Evaluator, CheckpointSaver):
    the outcome is "failed" with "non-finite loss at step N", nothing after N is logged, and the
    checkpoint of the last evaluation stays and loads with finite weights."""
    import keras
    import numpy as np
    import tensorflow as tf

    from textgen.models import ModelConfig, build_model
    from textgen.models.losses import MaskedCrossEntropy
    from textgen.models.persistence import load_model_dir
    from textgen.training import callbacks

    config = ModelConfig(kind="gru", source_vocab_size=12, target_vocab_size=12, embedding_dim=8,
                         hidden_units=8, num_layers=1, dropout=0.0, max_source_length=8, max_target_length=8)
    model = build_model(config)
    rng = np.random.default_rng(0)
    source = rng.integers(4, 12, size=(64, 6)).astype("int32")
    target = rng.integers(4, 12, size=(64, 6)).astype("int32")
    dataset = tf.data.Dataset.from_tensor_slices(
        ({"source_ids": source, "target_input_ids": target}, target)).batch(8).repeat()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1e-3), loss=MaskedCrossEntropy())
    clock = callbacks.TrainingClock(initial_step=0, total_steps=40, steps_per_epoch=8, tokens_per_step=48, minutes=0)
    control = callbacks.RunControl(clock, lambda: False)
    diverging = store.create_run(label="diverging", kind="gru", config={})
    evaluator = callbacks.Evaluator(store, diverging.id, clock, control, score_and_probe=lambda: ({}, []))
    checkpoints = artifacts.Checkpoints(store.run_dir(diverging.id))
    saver = callbacks.CheckpointSaver(checkpoints, evaluator, control, clock, "valid_loss", patience=0)

    class Diverge(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.optimizer.learning_rate = 1e38

    model.fit(dataset, steps_per_epoch=4, epochs=10, validation_data=dataset.take(2), shuffle=False,
              callbacks=[control, evaluator, saver, Diverge()], verbose=0)
    assert control.outcome == "failed"
    assert re.fullmatch(r"non-finite loss at step \d+", control.error)
    failed_step = int(control.error.rsplit(" ", 1)[1])
    assert 4 < failed_step <= 8
    last = checkpoints.get("last")
    assert last.step == 4  # the evaluation before the divergence; the diverged weights were not saved
    assert all(np.isfinite(w).all() for w in load_model_dir(last.path).get_weights())
    assert [m.step for m in store.get_metrics([diverging.id], names=["loss"])] == [4]




def test_out_of_memory_fails_the_run_with_a_suggested_batch_size_and_the_app_is_unaffected(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A job whose batch needs more memory than it may use (a 4 GB address-space cap set by
    TEXTGEN_MEMORY_LIMIT_MB, a batch of 800 sequences of 120 characters with 8192-wide
    embeddings: 3.9 GB in one tensor) gets a real allocation failure from TensorFlow. The run ends
    `failed` with "out of memory at batch size 1000; try batch_size=250", the job process exits,
    and the store, the CLI and the Runs page work on and show the reason."""
    import random

    rng = random.Random(24)
    corpus = tmp_path / "long.tsv"
    corpus.write_text("".join("".join(rng.choice("abcdefghij") for _ in range(120)) + "\t"
                              + "".join(rng.choice("abcdefghij") for _ in range(10)) + "\n" for _ in range(1000)))
    monkeypatch.setenv(jobs.MEMORY_LIMIT_ENV, "4000")
    with RunStore(home) as store:
        plan = planning.plan_run(store, str(corpus), "gru", preset="tiny",
                                 settings={**TINY, "batch_size": "1000", "embedding_dim": "8192"})
        run = jobs.submit(store, plan)
        pid = store.get_run(run.id).pid
        failed = _wait_for(lambda: _status(store, run.id) not in ACTIVE_STATUSES and store.get_run(run.id),
                           120, "the job to end")
        assert failed.status == "failed", (failed.status, failed.error)
        assert failed.error.startswith("out of memory at batch size 1000; try batch_size=250")
        assert "No checkpoint was written yet" in failed.error
        _wait_for(lambda: not jobs.process_alive(pid, None), 60, "the job process to exit")  # it runs at a lower priority
    listed = run_cli("runs", "--json", home=home)
    assert listed.returncode == 0 and json.loads(listed.stdout)[0]["status"] == "failed"
    app = open_app(str(ROOT / "pages" / "3_Runs.py"), run=run.id)
    assert not app.exception, app.exception
    assert any(t.value.startswith("Error: out of memory at batch size 1000") for t in app.text)




def test_sigkill_mid_epoch_is_crashed_within_seconds_and_resume_says_what_is_redone(
        store: RunStore, dates: str) -> None:
    """SIGKILL to a training job between two checkpoints: the next look at the runs (reconcile)
    marks it `crashed` within seconds; resuming starts from the intact last checkpoint, says
    which steps (logged after that checkpoint, lost with the process) are trained again, and
    finishes with more steps than the checkpoint had."""
    plan = planning.plan_run(store, dates, "gru", preset="tiny",
                             settings={**TINY, "epochs": "300", "batch_size": "16", "eval_every_steps": "15",
                                       "log_every_seconds": "0"})
    run = jobs.submit(store, plan)
    checkpoints = artifacts.Checkpoints(store.run_dir(run.id))

    def past_a_checkpoint() -> bool:
        last = checkpoints.get("last")
        steps = [m.step for m in store.get_metrics([run.id], names=["loss"]) if m.split == "train"]
        return last is not None and steps and 3 <= max(steps) - last.step <= 8  # well before the next one

    _wait_for(past_a_checkpoint, 120, "training past the first checkpoint")
    os.kill(store.get_run(run.id).pid, signal.SIGKILL)
    killed = time.monotonic()
    _wait_for(lambda: _status(store, run.id) == "crashed", 10, "crashed")
    assert time.monotonic() - killed < 5
    crashed = store.get_run(run.id)
    assert "ended without finishing" in crashed.error and "resume" in crashed.error
    last = checkpoints.get("last")
    reached = max(m.step for m in store.get_metrics([run.id], names=["loss"]) if m.split == "train")
    assert reached > last.step
    jobs.resume(store, run.id, epochs=1, background=False)
    summary = jobs.resume_summary(store, run.id)
    assert summary == (f"resumes from checkpoint {last.name} (step {last.step}, epoch {last.epoch:.2f}); "
                       f"steps {last.step + 1} to {reached}, trained after that checkpoint, are redone.")
    assert f"resume: {summary}" in (store.run_dir(run.id) / "job.log").read_text()
    finished = jobs.run_job(store, run.id)
    assert finished.status == "finished", finished.error
    assert checkpoints.get("last").step > last.step
    first_new = min(m.step for m in store.get_metrics([run.id]) if m.time > crashed.updated_at)
    assert first_new == last.step + 1  # continued from the checkpoint, not from zero



_SAVER = """
import sys
from pathlib import Path
from textgen.training import artifacts
from textgen.models import ModelConfig, build_model
config = ModelConfig(kind="gru", source_vocab_size=40, target_vocab_size=40, embedding_dim=256,
                     hidden_units=768, num_layers=1, dropout=0.0, max_source_length=16, max_target_length=16)
model = build_model(config)
checkpoints = artifacts.Checkpoints(Path(sys.argv[1]))
checkpoints.save(model, None, step=1, epoch=0.1, metrics={"loss": 3.0}, best=True, keep_history=2)
print("ready", flush=True)
step = 1
while True:
    step += 1
    checkpoints.save(model, None, step=step, epoch=step / 10, metrics={"loss": 3.0}, best=False, keep_history=2)
"""


def test_sigkill_during_a_checkpoint_write_keeps_the_previous_checkpoint_and_cleans_temporaries(
        tmp_path: Path) -> None:
    """A process saving checkpoints (a 25 MB model, over and over) is SIGKILLed the moment a
    checkpoint's temporary file appears, i.e. in the middle of a write. The index still points at
    a complete checkpoint that loads; the half-written temporary files and the unfinished folder
    it left are removed by the next save (or by resume), and saving works again."""
    import subprocess
    import sys

    from textgen.models.persistence import load_model_dir

    run_dir = tmp_path / "r-0123456789ab"
    process = subprocess.Popen([sys.executable, "-c", _SAVER, str(run_dir)], cwd=ROOT, stdout=subprocess.PIPE,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    try:
        assert process.stdout.readline().strip() == b"ready"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if _leftovers(run_dir):  # a temporary file or an unfinished folder: mid-save
                    break
            except (OSError, ValueError):  # a folder or the index replaced while we looked
                continue
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(10)
    found = _leftovers(run_dir)
    assert found, "the kill did not land inside a save"
    checkpoints = artifacts.Checkpoints(run_dir)
    last = checkpoints.get("last")
    model = load_model_dir(last.path)  # the previous, complete checkpoint
    assert last.step >= 1 and model.config.hidden_units == 768
    artifacts.remove_incomplete(run_dir)  # what resume (and the next save) does first
    assert _leftovers(run_dir) == []
    saved = checkpoints.save(model, None, step=last.step + 100, epoch=9.0, metrics={"loss": 2.0}, best=False)
    assert checkpoints.get("last").name == saved.name and _leftovers(run_dir) == []




def test_disk_full_during_a_checkpoint_or_metric_write_fails_the_run_and_keeps_the_checkpoint(
        store: RunStore, dates: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Disk full while writing the second checkpoint (ENOSPC from fsync, once the first exists):
    the run is `failed` with "disk full while writing a checkpoint (No space left on device)",
    the first checkpoint is still the last and loads, and the half-written one is gone.
    Disk full while writing metrics (SQLite's own "database or disk is full", after the first
    checkpoint): `failed` with that reason, the checkpoint intact."""
    from textgen.training.trainer import TrainingError

    real_fsync = os.fsync
    state = {"armed": False}

    def fsync(fd: int) -> None:
        if state["armed"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    settings = {**TINY, "epochs": "3", "batch_size": "16"}
    run = jobs.submit(store, planning.plan_run(store, dates, "gru", preset="tiny", settings=settings),
                      background=False)

    def arm(progress: dict) -> None:  # after the first evaluation; its checkpoint is saved right after
        if "valid_loss" in progress:
            state["armed"] = artifacts.Checkpoints(store.run_dir(run.id)).get("last") is not None

    with pytest.raises(TrainingError, match="disk full while writing a checkpoint"):
        jobs.run_job(store, run.id, on_progress=arm)
    state["armed"] = False
    failed = store.get_run(run.id)
    checkpoints = artifacts.Checkpoints(store.run_dir(run.id))
    last = checkpoints.get("last")
    assert failed.status == "failed" and failed.pid is None
    assert failed.error.startswith("disk full while writing a checkpoint (No space left on device)")
    assert f"The last checkpoint ({last.name}, step {last.step}) is kept".lower() in failed.error.lower()
    assert [c.name for c in checkpoints.list()] == [last.name]
    assert artifacts.load_trained(store.run_dir(run.id), "last").checkpoint.name == last.name
    assert _leftovers(store.run_dir(run.id)) == []

    run = jobs.submit(store, planning.plan_run(store, dates, "gru", preset="tiny",
                                               settings={**settings, "log_every_seconds": "0"}), background=False)

    def fill(progress: dict) -> None:
        if "valid_loss" in progress:  # no page beyond the current ones: the next new page fails
            pages = store._connection.execute("PRAGMA page_count").fetchone()[0]
            store._connection.execute(f"PRAGMA max_page_count = {pages}")

    with pytest.raises(TrainingError, match="disk full while writing metrics"):
        jobs.run_job(store, run.id, on_progress=fill)
    store._connection.execute("PRAGMA max_page_count = 1073741823")
    failed = store.get_run(run.id)
    assert failed.status == "failed"
    assert failed.error.startswith("disk full while writing metrics to the run store (database or disk is full)")
    kept = artifacts.Checkpoints(store.run_dir(run.id)).get("last")
    assert kept is not None and f"({kept.name}, step {kept.step}) is kept" in failed.error
    artifacts.load_trained(store.run_dir(run.id), "last")




def test_corrupted_checkpoints_and_database_are_detected_with_a_clear_error_and_fall_back(
        trained_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A damaged last checkpoint (garbage weights) falls back to the earlier checkpoint that
    loads, saying so (API and `generate`, which warns on stderr); a damaged index.json is rebuilt
    from the complete folders; when no checkpoint loads the error says so. A damaged database
    file is refused with a clear message (no traceback) by the API, the CLI and the Runs page."""
    home = copy_home(trained_home, tmp_path / "h")
    with RunStore(home) as store:
        gru = next(run.id for run in store.list_runs() if run.kind == "gru")
    run_dir = home / "runs" / gru
    checkpoints = artifacts.Checkpoints(run_dir)
    earlier, last = checkpoints.list()[-2:]
    (last.path / "model.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 50)
    trained = artifacts.load_trained(run_dir, "last")
    assert trained.checkpoint.name == earlier.name
    assert trained.warning.startswith(f"checkpoint {last.name} is damaged")
    assert f"using the earlier checkpoint {earlier.name}" in trained.warning
    result = run_cli("generate", gru, "--input", "3 March 2021", "--checkpoint", "last", home=home)
    assert result.returncode == 0, result.stderr
    assert f"warning: checkpoint {last.name} is damaged" in result.stderr.decode()

    (run_dir / "checkpoints" / "index.json").write_bytes(b'{"last": "ckpt-0000')  # torn
    assert checkpoints.get("last").name == last.name  # rebuilt from the folders
    assert artifacts.load_trained(run_dir, "best").checkpoint.name == earlier.name

    (earlier.path / "model.weights.h5").write_bytes(b"not hdf5")
    with pytest.raises(StoreError, match=f"no checkpoint of run {gru} can be loaded"):
        artifacts.load_trained(run_dir, "last")

    (home / "store.sqlite3").write_bytes(b"this is not a database" * 200)
    for suffix in ("-wal", "-shm"):
        (home / f"store.sqlite3{suffix}").unlink(missing_ok=True)
    with pytest.raises(StoreError, match="is damaged .*Move it aside"):
        RunStore(home)
    result = run_cli("runs", home=home)
    assert result.returncode == 2 and b"Traceback" not in result.stderr
    assert result.stderr.decode().count("\n") == 1 and "store.sqlite3 is damaged" in result.stderr.decode()
    monkeypatch.setenv("TEXTGEN_HOME", str(home))
    app = open_app(str(ROOT / "pages" / "3_Runs.py"))
    assert not app.exception, app.exception
    assert any("is damaged" in plain(e.value) for e in app.error)




def test_two_users_starting_jobs_at_once_are_queued_with_distinct_ids(
        home: Path, dates: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two sessions submit a job at the same instant (two threads, each with its own store
    handle) under TEXTGEN_MAX_JOBS=1: two runs with distinct ids and folders; exactly one runs
    while the other waits `queued`, never both running; deleting them stops both processes."""
    monkeypatch.setenv(jobs.MAX_JOBS_ENV, "1")
    with RunStore(home) as store:
        plan = planning.plan_run(store, dates, "gru", preset="tiny",
                                 settings={**TINY, "epochs": "300", "batch_size": "16", "eval_every_steps": "50"})
    barrier = threading.Barrier(2)
    started: list[str] = []

    def user() -> None:
        with RunStore(home) as own:
            barrier.wait()
            started.append(jobs.submit(own, plan).id)

    threads = [threading.Thread(target=user) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(started) == 2 and len(set(started)) == 2
    with RunStore(home) as store:
        try:
            _wait_for(lambda: "running" in [_status(store, r) for r in started], 90, "one job to run")
            for _ in range(15):  # 3 s: never two at once
                statuses = sorted(_status(store, r) for r in started)
                assert statuses == ["queued", "running"], statuses
                time.sleep(0.2)
            assert all(store.run_dir(r).is_dir() for r in started)
            pids = [store.get_run(r).pid for r in started]
            assert all(pids) and pids[0] != pids[1]  # the queued one waits in its own process
        finally:
            for run_id in started:
                jobs.delete(store, run_id, timeout=5)
        assert store.list_runs() == []
        _wait_for(lambda: not any(jobs.process_alive(p, None) for p in pids), 30, "both processes to end")




_STORE_WRITER = """
import sys, time
from textgen.store.database import RunStore, SampleRow
home, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with RunStore(home) as store:  # a brand-new store: the processes race to create it
    run = store.create_run(label=f"w{worker}", kind="gru", config={"worker": worker})
    for step in range(count):
        store.log_metrics(run.id, step, {"loss": 1.0 / (step + 1), "lr": 0.1})
        if step % 10 == 0:
            store.update_run(run.id, status="running" if step % 20 else "queued")
            store.add_samples(run.id, [SampleRow(run.id, step, 0.0, 0, "s", "r", "o", time.time())])
            store.claim_slot(run.id, 1)
            store.list_runs()
            store.latest_metrics(run.id)
"""


def test_several_processes_writing_the_store_at_once_never_see_database_is_locked(home: Path) -> None:
    """Six processes open a brand-new store at the same instant (racing to create the schema and
    switch it to WAL) and write runs, statuses, metrics, samples and job-slot claims as fast as
    they can: no "database is locked" or any other error, and every row is there."""
    import subprocess
    import sys

    count = 150
    processes = [subprocess.Popen([sys.executable, "-c", _STORE_WRITER, str(home), str(w), str(count)], cwd=ROOT,
                                  stderr=subprocess.PIPE) for w in range(6)]
    errors = [process.communicate(timeout=120)[1].decode() for process in processes]
    assert [p.returncode for p in processes] == [0] * 6, errors
    assert not any("locked" in e for e in errors)
    with RunStore(home) as store:
        runs = store.list_runs()
        assert len(runs) == 6
        assert len(store.get_metrics([r.id for r in runs])) == 6 * count * 2




def test_two_sessions_generating_at_once_with_one_cached_model_get_their_own_outputs(
        trained_home: Path) -> None:
    """Two sessions decode at the same time with the one model object the app caches (the
    Transformer demo run; greedy and seeded sampling), each from its
    own thread with its own inputs: every output equals what the same call gives when run alone."""
    from textgen.decoding import DecodingConfig, generate

    with RunStore(trained_home) as store:
        runs = {run.kind: run.id for run in store.list_runs()}
    inputs = [["3 March 2021", "the 5th of May, 1999", "12/01/2020"],
              ["July 4, 1776", "2001-09-11", "thursday, 1 jan 1970"]]
    for kind in ("transformer",):
        trained = artifacts.load_trained(trained_home / "runs" / runs[kind])
        configs = [DecodingConfig(), DecodingConfig(strategy="sample", seed=5, temperature=1.5)]

        def decode(texts, config):
            return [(g.output, g.tokens) for g in generate(trained.model, trained.source_tokenizer,
                                                           trained.target_tokenizer, texts, config)]

        alone = {(s, c): decode(inputs[s], configs[c]) for s in range(2) for c in range(2)}
        together: dict = {}
        barrier = threading.Barrier(2)

        def session(index: int) -> None:
            barrier.wait()
            for repeat in range(2):
                for c in range(2):
                    together[(index, c, repeat)] = decode(inputs[index], configs[c])

        threads = [threading.Thread(target=session, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert len(together) == 8
        for (index, c, _), outputs in together.items():
            assert outputs == alone[(index, c)], (kind, index, c)




def _rewrite(data: bytes, change) -> bytes:
    """A copy of a bundle zip with `change(name, bytes) -> [(name, bytes), ...]` applied per member."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            for name, content in change(info.filename, source.read(info)):
                target.writestr(name, content)
    return out.getvalue()


def _keras_file_with_a_lambda(path: Path) -> bytes:
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Lambda(lambda x: x * 2)])
    model.save(path / "evil.keras")
    return (path / "evil.keras").read_bytes()


def test_bundles_round_trip_and_every_tampered_bundle_is_refused(
        trained_home: Path, home: Path, tmp_path: Path) -> None:
    """Export then import (API and `python -m textgen import`) gives a run that generates exactly
    what the original does. A bundle with a `.keras` file holding a Lambda layer, a config naming
    a module and class, extra keys in run.json, a vocabulary that is a path, an absolute or `..`
    member, an unknown member, a zip bomb, weights that are not HDF5 or do not fit the model, or
    a second run folder is refused with the reason; nothing of it is left in the store."""
    from textgen.decoding import DecodingConfig, generate

    with RunStore(trained_home) as source:
        runs = {run.kind: run.id for run in source.list_runs()}
        gru, transformer = runs["gru"], runs["transformer"]
        data = bundle.export_bundle(source, gru)
        other = bundle.export_bundle(source, transformer)
    texts = ["3 March 2021", "the 5th of May, 1999"]

    def outputs(run_dir: Path) -> list[str]:
        trained = artifacts.load_trained(run_dir)
        return [g.output for g in generate(trained.model, trained.source_tokenizer, trained.target_tokenizer,
                                           texts, DecodingConfig())]

    with RunStore(home) as store:
        imported = bundle.import_bundle(store, data)
        assert imported.id != gru and imported.status == "finished" and imported.label == "gru demo"
        assert imported.corpus_id is None  # trained elsewhere
        assert outputs(store.run_dir(imported.id)) == outputs(trained_home / "runs" / gru)

    def weights_of(name: str) -> bytes:
        with zipfile.ZipFile(io.BytesIO(other)) as archive:
            return archive.read(next(n for n in archive.namelist() if n.endswith(name)))

    def tokenizer_with_path(content: bytes) -> bytes:
        tokenizer = json.loads(content)
        tokenizer["huggingface"]["model"]["vocab"] = "../../../etc/passwd"
        return json.dumps(tokenizer).encode()

    evil_keras = _keras_file_with_a_lambda(tmp_path)
    root = f"{gru}/"
    tamperings = {
        "a .keras file": (lambda n, c: [(n, c)] + ([(root + "model.keras", evil_keras)] if n.endswith("run.json") else []),
                          "a Keras .keras file"),
        "a module in config.json": (lambda n, c: [(n, json.dumps({"module": "os", "class_name": "system",
                                                                   "config": {"command": "id"}}).encode()
                                                   if n.endswith("/config.json") else c)],
                                    "unknown ModelConfig key(s): class_name, config, module"),
        "extra keys in run.json": (lambda n, c: [(n, json.dumps({**json.loads(c), "module": "builtins"}).encode()
                                                  if n.endswith("run.json") and "record" not in n else c)],
                                   "unexpected keys ['module']"),
        "a vocabulary path": (lambda n, c: [(n, tokenizer_with_path(c) if n.endswith("target_tokenizer.json") else c)],
                              "the vocabulary must be an inline map"),
        "a .. member": (lambda n, c: [(n, c)] + ([(f"{root}../../escape.txt", b"x")] if n.endswith("README.txt") else []),
                        "is a path outside the bundle"),
        "an absolute member": (lambda n, c: [(n, c)] + ([("/tmp/escape.txt", b"x")] if n.endswith("README.txt") else []),
                               "is a path outside the bundle"),
        "an unknown member": (lambda n, c: [(n, c)] + ([(root + "hook.py", b"import os")] if n.endswith("README.txt") else []),
                              "hook.py is code or a pickle"),
        "a zip bomb": (lambda n, c: [(n, b"\0" * 20_000_000 if n.endswith("README.txt") else c)],
                       "a zip bomb is refused"),
        "weights that are not HDF5": (lambda n, c: [(n, b"PK\x03\x04 pickle" if n.endswith(".h5") else c)],
                                      "not an HDF5 weights file"),
        "weights of another model": (lambda n, c: [(n, weights_of(".h5") if n.endswith(".h5") else c)],
                                     "damaged or do not fit the model"),
        "a second run folder": (lambda n, c: [(n, c)] + ([("r-000000000000/run.json", c)] if n.endswith("/run.json") else []),
                                "exactly one run folder"),
    }
    with RunStore(home) as store:
        for what, (change, message) in tamperings.items():
            tampered = _rewrite(data, change)
            with pytest.raises(bundle.BundleError) as refused:
                bundle.import_bundle(store, tampered)
            text = str(refused.value)
            assert message in text, (what, text)
            assert text.startswith("this bundle cannot be imported")
        assert [run.id for run in store.list_runs()] == [imported.id]
    assert sorted(p.name for p in (home / "runs").iterdir()) == [imported.id]

    good, bad = tmp_path / "good.zip", tmp_path / "bad.zip"
    good.write_bytes(data)
    bad.write_bytes(_rewrite(data, tamperings["a .keras file"][0]))
    result = run_cli("import", str(bad), home=home)
    assert result.returncode == 2 and b"Traceback" not in result.stderr
    last_line = result.stderr.decode().strip().splitlines()[-1]  # TensorFlow's start-up lines come first
    assert last_line.startswith("error: this bundle cannot be imported") and "model.keras is a Keras .keras file" in last_line
    result = run_cli("import", str(good), "--label", "from a teammate", "--json", home=home)
    assert result.returncode == 0, result.stderr
    cli_run = json.loads(result.stdout)["id"]
    with RunStore(home) as store:
        assert store.get_run(cli_run).label == "from a teammate"
        assert outputs(store.run_dir(cli_run)) == outputs(trained_home / "runs" / gru)




def test_path_traversal_in_labels_ids_and_export_names_is_refused_and_paths_stay_home(
        trained_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run labels are never paths (a `../` label still gets an id folder); ids from URL query
    parameters or the CLI that are not ids (`../..`, absolute, `CON`, NUL) are refused or
    ignored, never joined; export names come from checked ids; a folder that is a symlink out of
    TEXTGEN_HOME is refused; and pages given such query parameters show no traceback."""
    from textgen.core.fsutil import safe_join

    home = copy_home(trained_home, tmp_path / "h")
    outside = tmp_path / "outside"
    outside.mkdir()
    with RunStore(home) as store:
        run = store.create_run(label="../../../outside/evil\n/etc/passwd", kind="gru", config={})
        assert store.run_dir(run.id) == (home / "runs" / run.id).resolve() and not any(outside.iterdir())
        for bad in ["../../outside", "/etc/passwd", "r-../../../x", "CON", "r-0123456789ab/../..", "r-0123\x00", ""]:
            with pytest.raises(StoreError, match="is not a valid id"):
                store.run_dir(bad)
            with pytest.raises(StoreError):
                bundle.bundle_file_name(bad)
            with pytest.raises(StoreError):
                store.corpus_dir(bad)
        (home / "runs" / "r-aaaaaaaaaaaa").symlink_to(outside, target_is_directory=True)
        with pytest.raises(StoreError, match="refusing a path outside"):
            store.run_dir("r-aaaaaaaaaaaa")
        with pytest.raises(StoreError, match="refusing a path outside"):
            safe_join(home, "runs", "..", "..", "outside")
        assert bundle.bundle_file_name(run.id) == f"{run.id}-bundle.zip"
    for args in (["generate", "../../outside", "--input", "x"], ["delete", "../x"]):
        result = run_cli(*args, home=home)
        assert result.returncode == 2 and b"is not a valid id" in result.stderr and b"Traceback" not in result.stderr
    assert not any(outside.iterdir())
    monkeypatch.setenv("TEXTGEN_HOME", str(home))
    for page, query in [("3_Runs.py", {"runs": "../../outside,/etc/passwd", "run": "..%2F..%2Foutside"}),
                        ("4_Compare.py", {"runs": "../../outside", "baseline": "/etc/passwd"}),
                        ("5_Attention.py", {"run": "../../../outside", "checkpoint": "../../x"})]:
        app = open_app(str(ROOT / "pages" / page), **query)
        assert not app.exception, (page, app.exception)
    assert not any(outside.iterdir())
