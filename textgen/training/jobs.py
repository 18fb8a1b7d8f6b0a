"""Training jobs: one process per run, a queue with a concurrency limit, stop, resume, reconcile.

A job is `python -m textgen worker RUN_ID`, started with `subprocess.Popen(...,
start_new_session=True)`: its own process and session, so it survives the Streamlit server's
restart and the browser's closing, and nothing is forked after TensorFlow is loaded (fork froze the
child) nor re-run by `spawn` (which re-executes the page script). Whoever starts a job reaps it
with a waiting thread, so no zombie is left.

The queue lives in the store: a worker waits as "queued" until `RunStore.claim_slot` gives it one
of `TEXTGEN_MAX_JOBS` (default 1: two training processes on two cores slow each other down and
the app). Stop is a flag in the store the job polls about once a second (SIGTERM sets it too); the
job then evaluates, checkpoints and ends as "stopped". A job whose process died without finishing
(killed, out of memory, machine restart) is marked "crashed" by `reconcile`, which every listing
runs, and can be resumed from its last checkpoint.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from textgen.core.errors import StoreError, TextgenError
from textgen.store.database import ACTIVE_STATUSES, RunRecord, RunStore
from textgen.training import artifacts
from textgen.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
MAX_JOBS_ENV = "TEXTGEN_MAX_JOBS"
RESUMABLE = ("stopped", "finished", "failed", "crashed")
# A queued run with no process after this long was never started (its starter died).
UNSTARTED_GRACE_SECONDS = 60
# A deletion whose session went away (server killed mid-delete) is finished by reconcile once
# the run's job has ended and nothing has touched the run for this long.
ABANDONED_DELETE_SECONDS = 30
POLL_SECONDS = 1.0


MEMORY_LIMIT_ENV = "TEXTGEN_MEMORY_LIMIT_MB"


def apply_memory_limit() -> int | None:
    """Cap this process's address space at TEXTGEN_MEMORY_LIMIT_MB (unset or 0: no cap), so a job
    that asks for too much memory gets an allocation failure it reports ("out of memory at batch
    size N; try ...") instead of the kernel's OOM killer ending it, or the app, without a word.
    Called by the worker before TensorFlow loads; returns the limit in bytes."""
    import resource

    text = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if not text:
        return None
    try:
        megabytes = int(float(text))
    except ValueError:
        raise TextgenError(f"{MEMORY_LIMIT_ENV} must be a number of megabytes, got {text!r}.") from None
    if megabytes <= 0:
        return None
    if megabytes < 1024:
        raise TextgenError(f"{MEMORY_LIMIT_ENV}={megabytes} is too small: TensorFlow alone needs about "
                           "1.5 GB of address space. Use at least 1024, or unset it.")
    limit = megabytes * 2**20
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    return limit


JOB_NICENESS_ENV = "TEXTGEN_JOB_NICENESS"
# How much a background job lowers its own CPU priority (0-19): the Streamlit server sharing the
# cores gets them first when someone clicks, and the job uses them fully the rest of the time.
DEFAULT_JOB_NICENESS = 5


def lower_job_priority() -> int:
    """Raise this process's niceness by TEXTGEN_JOB_NICENESS (default 5). Called by the worker;
    returns the niceness reached."""
    text = os.environ.get(JOB_NICENESS_ENV, "").strip()
    try:
        increment = int(text) if text else DEFAULT_JOB_NICENESS
    except ValueError:
        raise TextgenError(f"{JOB_NICENESS_ENV} must be a whole number from 0 to 19, got {text!r}.") from None
    if not 0 <= increment <= 19:
        raise TextgenError(f"{JOB_NICENESS_ENV} must be a whole number from 0 to 19, got {increment}.")
    return os.nice(increment)


def max_jobs() -> int:
    try:
        return max(1, int(os.environ.get(MAX_JOBS_ENV, "1")))
    except ValueError:
        return 1


# -- processes -----------------------------------------------------------------------------------


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of a process (clock ticks since boot), to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return fields[19].decode()  # field 22 overall; fields[0] is field 3 (the state)
    except (OSError, IndexError):
        return None


def process_alive(pid: int | None, started: str | None) -> bool:
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        if fields[0] in (b"Z", b"X"):  # exited, waiting to be reaped
            return False
        return started is None or fields[19].decode() == started
    except FileNotFoundError:
        return False
    except OSError:
        try:  # no /proc (not Linux): existence only
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True


def reconcile(store: RunStore) -> list[str]:
    """Mark runs whose process is gone as crashed (returns their ids) and finish deletions left
    half-way by a session that went away. Cheap: call it often."""
    crashed = []
    now = time.time()
    for run in store.list_runs(statuses=ACTIVE_STATUSES, include_deleting=True):
        if run.pid is None:
            if run.status == "queued" and now - run.created_at > UNSTARTED_GRACE_SECONDS:
                reason = "the job was queued but its process never started"
            else:
                continue
        elif process_alive(run.pid, run.pid_started):
            continue
        else:
            reason = (f"process {run.pid} ended without finishing (killed, out of memory, or the "
                      "machine restarted); resume it to continue from the last checkpoint")
        if store.transition_run(run.id, [run.status], status="crashed", error=reason, pid=None,
                                finished_at=now):
            crashed.append(run.id)
    for run in store.runs_being_deleted():
        if run.status not in ACTIVE_STATUSES and now - run.updated_at > ABANDONED_DELETE_SECONDS:
            store.delete_run(run.id)
    return crashed


def spawn_worker(store: RunStore, run_id: str) -> subprocess.Popen:
    """Start the job process for a run, detached in its own session; reap it from a thread."""
    run_dir = store.run_dir(run_id)
    env = {**os.environ, "TEXTGEN_HOME": str(store.home), "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONUNBUFFERED": "1"}
    with open(run_dir / artifacts.LOG_FILE, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "textgen", "worker", run_id],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    # Record the pid at once so reconcile can tell a dead waiter; the worker re-records it.
    store.transition_run(run_id, ["queued"], pid=process.pid, pid_started=process_start_time(process.pid))
    threading.Thread(target=process.wait, name=f"reap-{run_id}", daemon=True).start()
    return process


# -- the worker (runs inside the job process) ----------------------------------------------------


class _StopFlag:
    """Stop requested through the store, or by SIGTERM/SIGINT to this process."""

    def __init__(self, store: RunStore, run_id: str) -> None:
        self.store, self.run_id = store, run_id
        self.signalled = False

    def handle_signal(self, signum, frame) -> None:
        if self.signalled and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: abort now
        self.signalled = True

    def __call__(self) -> bool:
        return self.signalled or self.store.get_run(self.run_id).stop_requested


def wait_for_slot(store: RunStore, run_id: str, stop: _StopFlag) -> bool:
    """Block while queued; True once this run holds a slot, False if it was stopped or deleted."""
    pid = os.getpid()
    while True:
        try:
            run = store.get_run(run_id)
        except StoreError:
            return False  # deleted while waiting
        if run.status != "queued":
            return False
        if stop():
            store.transition_run(run_id, ["queued"], status="stopped", pid=None, finished_at=time.time(),
                                 stop_requested=0)
            return False
        reconcile(store)  # a crashed job must not hold a slot forever
        if store.claim_slot(run_id, max_jobs(), pid=pid, pid_started=process_start_time(pid), error=None):
            return True
        time.sleep(POLL_SECONDS)


def run_job(store: RunStore, run_id: str, *, on_progress=None) -> RunRecord:
    """Queue, train and record the outcome of one run in this process (the worker's body, and
    `textgen train` in the foreground)."""
    from textgen.training.trainer import train_run

    stop = _StopFlag(store, run_id)
    previous = {sig: signal.signal(sig, stop.handle_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        if not wait_for_slot(store, run_id, stop):
            return store.get_run(run_id)
        try:
            outcome = train_run(store, run_id, should_stop=stop, on_progress=on_progress)
        except TextgenError as error:
            _record_end(store, run_id, "failed", str(error))
            raise
        except BaseException as error:  # the caller prints the traceback (the worker: to job.log)
            reason = "interrupted" if isinstance(error, KeyboardInterrupt) else (
                f"internal error: {type(error).__name__}: {error} (details in {artifacts.LOG_FILE})")
            _record_end(store, run_id, "failed" if not isinstance(error, KeyboardInterrupt) else "stopped", reason)
            raise
        return store.update_run(run_id, status=outcome.status, error=outcome.error, pid=None,
                                finished_at=time.time(), stop_requested=0)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _record_end(store: RunStore, run_id: str, status: str, reason: str) -> None:
    """Record how a job ended. If even that fails (the disk is full), the reason goes to job.log
    (stderr), and the run is marked crashed by the next reconcile."""
    try:
        store.update_run(run_id, status=status, error=reason, pid=None, finished_at=time.time())
    except Exception as error:  # noqa: BLE001 - the original failure is what matters
        print(f"{status}: {reason} (could not record it in the store: {error})", file=sys.stderr, flush=True)


# -- control -------------------------------------------------------------------------------------


def submit(store: RunStore, plan, *, background: bool = True):
    """Create a run from a validated plan and start its job."""
    from textgen.training.planning import create_run

    run = create_run(store, plan)
    if background:
        spawn_worker(store, run.id)
    return store.get_run(run.id)


def request_stop(store: RunStore, run_id: str) -> RunRecord:
    run = store.get_run(run_id)
    if run.status not in ACTIVE_STATUSES:
        raise TextgenError(f"run {run_id} is {run.status}, not running or queued; nothing to stop.")
    store.update_run(run_id, stop_requested=1)
    if run.pid and process_alive(run.pid, run.pid_started):
        try:
            os.kill(run.pid, signal.SIGTERM)
        except OSError:
            pass
    return store.get_run(run_id)


def wait_until_inactive(store: RunStore, run_id: str, timeout: float) -> RunRecord:
    deadline = time.monotonic() + timeout
    while True:
        reconcile(store)
        run = store.get_run(run_id)
        if run.status not in ACTIVE_STATUSES or time.monotonic() > deadline:
            return run
        time.sleep(0.2)


def resume(store: RunStore, run_id: str, *, epochs: int | None = None, settings: dict[str, str] | None = None,
           background: bool = True) -> RunRecord:
    """Continue a stopped, finished, failed or crashed run from its last checkpoint.

    `epochs` means that many more epochs after the one in progress (lifting a max_steps cap);
    `settings` may change training fields (learning_rate, minutes, ...), validated before
    anything changes.
    """
    reconcile(store)
    run = store.get_run(run_id)
    if run.deleting:
        raise TextgenError(f"run {run_id} is being deleted; it cannot be resumed.")
    if run.status not in RESUMABLE:
        raise TextgenError(f"run {run_id} is {run.status}; only {', '.join(RESUMABLE)} runs can be resumed.")
    run_dir = store.run_dir(run_id)
    config = artifacts.load_run_config(run_dir)
    train = config.train.with_overrides(settings or {}, from_text=True)  # validated before anything changes
    artifacts.remove_incomplete(run_dir)
    try:
        last = artifacts.Checkpoints(run_dir).get("last")
    except StoreError:
        listed = artifacts.Checkpoints(run_dir).list()
        last = listed[-1] if listed else None
    if epochs is not None:
        TrainConfig(epochs=epochs)  # validates the range
        done = math.ceil(last.epoch) if last else 0
        train = train.with_overrides({"epochs": done + epochs, "max_steps": 0})  # a step cap would cut them short
    config = artifacts.RunConfig(config.corpus_id, config.tokenizer, config.model, train)
    artifacts.save_run_config(run_dir, config)
    if not store.transition_run(run_id, list(RESUMABLE), status="queued", error=None, pid=None,
                                finished_at=None, stop_requested=0, config=config.to_dict()):
        raise TextgenError(f"run {run_id} changed state meanwhile; try again.")
    summary = resume_summary(store, run_id)
    try:
        with open(run_dir / artifacts.LOG_FILE, "a", encoding="utf-8") as log:
            log.write(f"resume: {summary}\n")
    except OSError:
        pass
    if background:
        spawn_worker(store, run_id)
    return store.get_run(run_id)


def resume_summary(store: RunStore, run_id: str) -> str:
    """What resuming a run starts from and what it trains again: the steps logged after the last
    checkpoint (lost when the job was killed between two checkpoints) are redone."""
    run_dir = store.run_dir(run_id)
    checkpoints = artifacts.Checkpoints(run_dir)
    try:
        last = checkpoints.get("last")
    except StoreError:
        listed = checkpoints.list()
        last = listed[-1] if listed else None
    trained = [m.step for m in store.get_metrics([run_id], names=["loss"]) if m.split == "train"]
    reached = max(trained, default=0)
    start = last.step if last else 0
    where = (f"resumes from checkpoint {last.name} (step {start}, epoch {last.epoch:.2f})" if last
             else "has no checkpoint, so it starts again from step 0")
    if reached > start:
        return f"{where}; steps {start + 1} to {reached}, trained after that checkpoint, are redone."
    return f"{where}; nothing is redone."


def delete(store: RunStore, run_id: str, timeout: float = 30) -> None:
    """Delete a run; a running or queued job is stopped first (killed if it does not stop in time).

    The run is marked as being deleted before anything else, so every listing (another session's
    page, `textgen runs`) drops it at once rather than showing it stopped for the moment the job
    takes to stop; a deletion interrupted half-way is finished by `reconcile`.
    """
    run = store.update_run(run_id, deleting=1)
    if run.status in ACTIVE_STATUSES:
        pid, pid_started = run.pid, run.pid_started
        request_stop(store, run_id)
        run = wait_until_inactive(store, run_id, timeout)
        if run.status in ACTIVE_STATUSES and run.pid and process_alive(run.pid, run.pid_started):
            try:
                os.killpg(run.pid, signal.SIGKILL)  # a job leads its own session and group
            except OSError:
                os.kill(run.pid, signal.SIGKILL)  # a foreground `textgen train` does not
            wait_until_inactive(store, run_id, 10)
        if pid and _leads_own_session(pid):  # a background job: let it finish writing and exit
            deadline = time.monotonic() + 10
            while process_alive(pid, pid_started) and time.monotonic() < deadline:
                time.sleep(0.1)
    store.delete_run(run_id)


def _leads_own_session(pid: int) -> bool:
    try:
        return os.getsid(pid) == pid
    except OSError:
        return False
