"""What the app benchmarks (app_latency.py, load.py) share: a store of tiny trained runs, a real
Streamlit server whose memory can be read, and Debian's headless Chromium.

Adapted from tests/browser.py and tests/conftest.py (bench/ does not import tests/). Playwright's
own browser download does not work on these machines; we drive /usr/bin/chromium.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import common

ROOT = common.ROOT
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--disable-dev-shm-usage",
]
# Opening a page by its URL, Streamlit's client first probes `<page>/_stcore/health` and
# `host-config` for a base path, gets a 404, then uses the root: its own harmless noise.
_PROBE_404 = ("/_stcore/health", "/_stcore/host-config")
# The kinds trained for real, in this order (all seq2seq, so Compare and Attention apply).
KINDS = ("gru", "bahdanau", "transformer", "lstm", "luong")


def real_console_error(text: str) -> bool:
    """Whether a console error line (text @ url) is ours rather than the base-path probe noise."""
    return not ("404" in text and text.endswith(_PROBE_404))


# -- the store -----------------------------------------------------------------------------------


def scratch_files(home: Path) -> Path:
    """A folder inside the scratch store for the bench's own files (corpus, server log), so they
    go when the store goes."""
    folder = home / "bench-files"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def corpus_file(home: Path, size: int = 300, seed: int = 11) -> Path:
    """The dates sample as a TSV next to the store (like conftest's trained_home)."""
    from textgen.data.samples import catalog

    path = scratch_files(home) / f"dates-{size}.tsv"
    path.write_bytes(catalog.sample_bytes("dates", size=size, seed=seed))
    return path


def train_tiny_runs(home: Path, count: int, *, epochs: int = 2, evaluate: bool = True) -> list[str]:
    """Train `count` tiny runs for real through textgen (plan_run + run_job in this process, as
    tests/conftest.py's trained_home does), cycling over KINDS, and evaluate each on its test
    split. Returns the run ids in training order."""
    from textgen.analysis import evaluation
    from textgen.decoding import DecodingConfig
    from textgen.store.database import RunStore
    from textgen.training import jobs, planning

    corpus = corpus_file(home)
    ids = []
    with RunStore(home) as store:
        for index in range(count):
            kind = KINDS[index % len(KINDS)]
            with common.Timer() as timer:
                plan = planning.plan_run(
                    store, str(corpus), kind, preset="tiny", label=f"{kind} tiny {index + 1}",
                    settings={"tokenizer": "char", "epochs": str(epochs), "batch_size": "32",
                              "eval_bleu_examples": "16"})
                run = jobs.run_job(store, jobs.submit(store, plan, background=False).id)
                if run.status != "finished":
                    raise SystemExit(f"training run {run.id} ({kind}) ended {run.status}: {run.error}")
                if evaluate:
                    evaluation.evaluate_run(store, run.id, DecodingConfig(), bootstrap_samples=100)
            common.info(f"trained {kind} run {run.id} ({epochs} epochs{', evaluated' if evaluate else ''}) "
                        f"in {timer.seconds:.1f} s")
            ids.append(run.id)
    return ids


def clone_runs(home: Path, sources: list[str], count: int) -> list[str]:
    """`count` more runs made from the trained ones, without training: each is a real trained
    model imported through the bundle path (textgen.runs.bundle export_bundle -> import_bundle: config,
    best weights, tokenizers), with its source's metric rows, probe samples and stored
    evaluations copied to it, so every page treats it like a trained run (curves, leaderboard,
    generation). Returns the new ids."""
    from textgen.runs import bundle
    from textgen.store.database import RunStore

    ids = []
    with RunStore(home) as store:
        bundles = {run_id: bundle.export_bundle(store, run_id) for run_id in sources}
        for index in range(count):
            source = sources[index % len(sources)]
            original = store.get_run(source)
            run = bundle.import_bundle(store, bundles[source], label=f"{original.label} copy {index + 1}")
            steps: dict[tuple[int, str, float | None], dict[str, float]] = {}
            times: dict[tuple[int, str, float | None], float] = {}
            for row in store.get_metrics([source]):
                key = (row.step, row.split, row.epoch)
                steps.setdefault(key, {})[row.name] = row.value
                times[key] = row.time
            for (step, split, epoch), values in steps.items():
                store.log_metrics(run.id, step, values, split=split, epoch=epoch, time_=times[(step, split, epoch)])
            store.add_samples(run.id, [dataclasses.replace(sample, run_id=run.id)
                                       for sample in store.get_samples(source)])
            for record in store.get_evaluations(source):
                store.add_evaluation(run.id, split=record.split, decoding=record.decoding,
                                     metrics=record.metrics, signature=record.signature)
            ids.append(run.id)
    return ids


def build_store(home: Path, real: int, total: int, *, epochs: int = 2) -> tuple[list[str], list[str]]:
    """Train `real` runs and add `total - real` copies (train_tiny_runs, clone_runs) in a separate
    process, as the app's jobs do: the process that then renders pages or serves them never holds
    a training session's memory and threads. Returns (trained ids, copied ids)."""
    import json

    command = [sys.executable, str(Path(__file__).resolve()), "build-store", "--real", str(real),
               "--total", str(total), "--epochs", str(epochs)]
    env = {**os.environ, "TEXTGEN_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    last = ""
    for line in process.stdout:
        if line.startswith("{"):
            last = line
        else:
            print(line, end="", flush=True)
    errors = process.stderr.read()
    if process.wait() != 0 or not last:
        raise SystemExit(f"building the store failed:\n{errors[-3000:]}")
    ids = json.loads(last)
    return ids["trained"], ids["copies"]


def _main(argv: list[str]) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(description="build a bench store in $TEXTGEN_HOME")
    parser.add_argument("command", choices=["build-store"])
    parser.add_argument("--real", type=int, required=True)
    parser.add_argument("--total", type=int, required=True)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)
    home = Path(os.environ["TEXTGEN_HOME"])
    trained = train_tiny_runs(home, args.real, epochs=args.epochs)
    copies = clone_runs(home, trained, max(0, args.total - args.real))
    print(json.dumps({"trained": trained, "copies": copies}), flush=True)
    return 0


# -- a real Streamlit server ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclasses.dataclass
class Server:
    url: str
    pid: int
    log: Path


def rss_mb(pid: int) -> float:
    """Resident memory of one process in MiB (VmRSS from /proc; psutil is not installed)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@contextlib.contextmanager
def streamlit_server(home: Path, timeout: float = 120) -> Iterator[Server]:
    """`streamlit run app.py` on a free port with its own TEXTGEN_HOME, no shared password (a
    developer's TEXTGEN_PASSWORD or .streamlit/secrets.toml would gate every page), logging to a
    file inside the scratch store."""
    port = _free_port()
    env = {**os.environ, "TEXTGEN_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TEXTGEN_PASSWORD", None)
    log_path = scratch_files(home) / f"streamlit-{port}.log"
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true",
         "--browser.gatherUsageStats", "false",
         "--secrets.files", str(scratch_files(home) / "no-secrets.toml")],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise RuntimeError("streamlit did not start:\n" + log_path.read_text()[-3000:])
            time.sleep(0.3)
        yield Server(url=url, pid=process.pid, log=log_path)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
