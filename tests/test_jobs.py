"""Background jobs as separate processes: queue, stop, SIGKILL and crash recovery, delete, mirrored."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from helpers import ROOT, run_cli, wait_for


from textgen.core.errors import TextgenError
from textgen.data.samples import catalog
from textgen.store.database import RunStore
from textgen.training import artifacts, jobs, planning


@pytest.fixture
def corpus(tmp_path: Path) -> str:
    path = tmp_path / "reverse.tsv"
    path.write_bytes(catalog.sample_bytes("reverse", size=400, seed=2))
    return str(path)


def _long_plan(store: RunStore, corpus: str, **settings: str):
    # Long enough to be caught running; frequent evaluations so checkpoints appear early.
    return planning.plan_run(store, corpus, "gru", preset="tiny",
                             settings={"epochs": "200", "batch_size": "16", "eval_every_steps": "5",
                                       "eval_bleu_examples": "0", "num_probe_samples": "1", **settings})


def _training_seconds(store: RunStore, run_id: str) -> float:
    """How long the job has been logging training rows, by its own clock."""
    times = [m.time for m in store.get_metrics([run_id], names=["loss"]) if m.split == "train"]
    return max(times) - min(times) if times else 0.0


def _status(store: RunStore, run_id: str) -> str:
    jobs.reconcile(store)
    return store.get_run(run_id).status


def test_second_job_waits_queued_until_the_first_stops(store: RunStore, corpus: str) -> None:
    first = jobs.submit(store, _long_plan(store, corpus))
    second = jobs.submit(store, _long_plan(store, corpus))
    wait_for(lambda: _status(store, first.id) == "running", 60, "the first job to run")
    wait_for(lambda: _training_seconds(store, first.id) >= 2, 90, "the first job to train for 2 s")
    assert _status(store, second.id) == "queued"
    assert store.get_run(second.id).pid  # its waiting process exists
    jobs.request_stop(store, first.id)
    wait_for(lambda: _status(store, first.id) == "stopped", 90, "the first job to stop")
    wait_for(lambda: _status(store, second.id) == "running", 60, "the second job to take the slot")
    stopped = jobs.wait_until_inactive(store, jobs.request_stop(store, second.id).id, 90)
    assert stopped.status == "stopped"
    for run_id in (first.id, second.id):
        assert artifacts.Checkpoints(store.run_dir(run_id)).get("last") is not None


def test_sigkill_gives_crashed_and_resume_continues_from_an_intact_checkpoint(store: RunStore, corpus: str) -> None:
    run = jobs.submit(store, _long_plan(store, corpus))
    run_dir = store.run_dir(run.id)
    checkpoints = artifacts.Checkpoints(run_dir)
    wait_for(lambda: checkpoints.get("last") and checkpoints.get("last").step >= 10, 90, "a checkpoint")
    pid = store.get_run(run.id).pid
    os.kill(pid, signal.SIGKILL)
    started = time.monotonic()
    wait_for(lambda: _status(store, run.id) == "crashed", 10, "the run to be marked crashed")
    assert time.monotonic() - started < 5
    crashed = store.get_run(run.id)
    assert "ended without finishing" in crashed.error and crashed.pid is None
    last = checkpoints.get("last")
    artifacts.load_trained(run_dir, "last")  # intact: loads
    resumed = jobs.resume(store, run.id, epochs=1, background=False)
    assert resumed.status == "queued"
    finished = jobs.run_job(store, run.id)
    assert finished.status == "finished"
    assert checkpoints.get("last").step > last.step
    first_new_step = min(m.step for m in store.get_metrics([run.id]) if m.time > crashed.updated_at)
    assert first_new_step > last.step


def test_stop_delete_and_runs_from_the_command_line(home: Path, corpus: str) -> None:
    with RunStore(home) as store:
        run = jobs.submit(store, _long_plan(store, corpus))
        wait_for(lambda: _status(store, run.id) == "running", 60, "the job to run")
    listed = run_cli("runs", "--json", home=home)
    assert listed.returncode == 0 and b'"status": "running"' in listed.stdout
    result = run_cli("stop", run.id, "--wait", "60", home=home)
    assert result.returncode == 0 and b"stopped" in result.stdout, result.stderr
    result = run_cli("delete", run.id, home=home)
    assert result.returncode == 0
    assert not (home / "runs" / run.id).exists()
    assert run_cli("stop", run.id, home=home).returncode == 2  # no such run: one clear line


def test_deleting_a_running_job_hides_it_at_once_stops_it_and_the_process_leaves_on_busy_cores(
        store: RunStore, corpus: str) -> None:
    """Every listing drops the run the moment it is deleted: another session polling the store
    never sees it "stopped" on its way out (a viewer's page would stop polling and keep showing
    it). The job still stops first, and its process is gone within seconds even while other
    processes keep both cores busy (its interpreter teardown used to wait 20 s on tf.data's
    threads there, holding the job's memory after the run was deleted)."""
    run = jobs.submit(store, _long_plan(store, corpus))
    wait_for(lambda: _status(store, run.id) == "running", 60, "the job to run")
    pid = store.get_run(run.id).pid
    seen: list[str] = []
    deleting = threading.Event()

    def watch() -> None:  # another session's page: its own connection, polling all the time
        with RunStore(store.home) as viewer:
            while deleting.is_set():
                seen.extend(listed.status for listed in viewer.list_runs() if listed.id == run.id)

    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(3)]
    try:
        # The slow teardown needed a job that had trained a while on busy cores.
        wait_for(lambda: _training_seconds(store, run.id) >= 20, 120, "the job to train for 20 s")
        deleting.set()
        watcher = threading.Thread(target=watch)
        watcher.start()
        jobs.delete(store, run.id)
        deleting.clear()
        watcher.join()
        assert store.list_runs() == [] and not store.run_dir(run.id).exists()
        assert set(seen) <= {"running"}, f"a viewer saw the deleted run as {sorted(set(seen))}"
        wait_for(lambda: not jobs.process_alive(pid, None), 5, "the job process to end")
    finally:
        for process in busy:
            process.kill()
            process.wait()


def test_reconcile_finishes_a_deletion_whose_session_went_away(store: RunStore, monkeypatch) -> None:
    """The server was killed between marking a run deleted and removing it: the run stays out of
    every listing, and once it has been left alone a while the next reconcile removes it."""
    run = store.create_run(label="half deleted", kind="gru", config={})
    store.transition_run(run.id, ["queued"], status="stopped")
    store.update_run(run.id, deleting=1)
    assert jobs.reconcile(store) == [] and store.get_run(run.id).deleting  # too recent: its deleter may be at work
    with pytest.raises(TextgenError, match="being deleted"):
        jobs.resume(store, run.id, epochs=1)
    monkeypatch.setattr(jobs, "ABANDONED_DELETE_SECONDS", 0)
    time.sleep(0.01)
    jobs.reconcile(store)
    assert store.runs_being_deleted() == [] and not store.run_dir(run.id).exists()


def test_background_train_command_returns_a_run_id_at_once(home: Path, corpus: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """...and the job leaves nothing in the temporary folder: AutoGraph, which would write a
    converted copy of each function it rewrites there (and a job skips the interpreter teardown
    that deletes them), is not used for tf.data functions or the decoding loop."""
    job_temp = tmp_path / "job-temp"
    job_temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(job_temp))
    started = time.monotonic()
    result = run_cli("train", "--corpus", corpus, "--model", "gru", "--preset", "tiny", "--background",
                     "--json", "--set", "epochs=1", "--set", "batch_size=64", home=home)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 30
    import json

    run_id = json.loads(result.stdout.decode().strip().splitlines()[-1])["run_id"]
    with RunStore(home) as store:
        final = wait_for(lambda: _status(store, run_id) in ("finished", "failed", "crashed") and store.get_run(run_id),
                          120, "the background run to finish")
        assert final.status == "finished", final.error
        assert store.get_samples(run_id), "the job decoded its probe samples"
    assert sorted(path.name for path in job_temp.iterdir()) == []


def test_bad_hyperparameters_from_the_cli_create_no_run(home: Path, corpus: str) -> None:
    result = run_cli("train", "--corpus", corpus, "--model", "gru", "--set", "batch_size=0", home=home)
    assert result.returncode == 2 and b"batch_size must be between 1" in result.stderr
    assert b"Traceback" not in result.stderr
    assert run_cli("runs", "--json", home=home).stdout.strip() == b"[]"


def test_mirrored_strategy_trains_on_two_logical_devices(home: Path, corpus: str) -> None:
    """Logical devices must be configured before TensorFlow runs any op: a fresh process."""
    script = textwrap.dedent(f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from textgen.store.database import RunStore
        from textgen.training import jobs, planning
        with RunStore() as store:
            plan = planning.plan_run(store, {corpus!r}, "gru", preset="tiny",
                                     settings={{"strategy": "mirrored", "epochs": "1", "batch_size": "32",
                                               "eval_bleu_examples": "8"}})
            run = jobs.run_job(store, jobs.submit(store, plan, background=False).id)
            print("replicas", tf.distribute.MirroredStrategy().num_replicas_in_sync)
            print("status", run.status, run.error)
    """)
    env = {**os.environ, "TEXTGEN_HOME": str(home)}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "replicas 2" in result.stdout
    assert "status finished None" in result.stdout


def test_a_background_job_runs_at_a_lower_cpu_priority_than_the_app(home: Path, corpus: str) -> None:
    """The worker raises its own niceness (TEXTGEN_JOB_NICENESS, default 5), so the Streamlit
    server sharing two cores is scheduled first."""
    import json

    result = run_cli("train", "--corpus", corpus, "--model", "gru", "--preset", "tiny", "--epochs", "50",
                     "--set", "tokenizer=char", "--background", "--json", home=home)
    assert result.returncode == 0, result.stderr.decode()
    run_id = json.loads(result.stdout.decode().strip().splitlines()[-1])["run_id"]
    with RunStore(home) as store:
        running = wait_for(lambda: (run := store.get_run(run_id)).status == "running" and run.pid and run, 60,
                            "the job to run")
        niceness = os.getpriority(os.PRIO_PROCESS, running.pid)
        assert niceness == os.nice(0) + jobs.DEFAULT_JOB_NICENESS
        jobs.delete(store, run_id)
