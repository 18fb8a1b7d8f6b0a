"""What every benchmark script shares: the output line, the corpora paths, a scratch store.

Each script under bench/ runs on its own (`.venv/bin/python bench/NAME.py [--quick]`) and prints
one line per figure:

    BENCH <name> <value> <unit> target=<target> ok|short

`bench/run.py` runs them all, each in its own process (so thread settings and memory do not leak
from one to the next), and prints a summary. A figure "compares against a baseline measured in the
same run" wherever the target is a ratio: both sides are timed in the same process, one after the
other, so a noisy machine moves both.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Real corpora are not part of the project (../shared/corpora, read its README); a user passes
# their own copies with --corpora.
DEFAULT_CORPORA = ROOT.parent / "shared" / "corpora"


def report(name: str, value: float, unit: str, target: str, ok: bool | None, note: str = "") -> str:
    """Print (and return) one BENCH line. `target` reads like "<120" or ">=3"; ok None: no target
    (a figure recorded for the record, e.g. BLEU), printed as "recorded"."""
    verdict = "recorded" if ok is None else ("ok" if ok else "short")
    shown = f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    line = f"BENCH {name} {shown} {unit} target={target} {verdict}"
    if note:
        line += f"  # {note}"
    print(line, flush=True)
    return line


def info(text: str) -> None:
    """A context line (not a figure): what was measured and how."""
    print(f"  {text}", flush=True)


@contextlib.contextmanager
def scratch_home(prefix: str = "textgen-bench-") -> Iterator[Path]:
    """A throwaway TEXTGEN_HOME (exported, so jobs and subprocesses use it too)."""
    previous = os.environ.get("TEXTGEN_HOME")
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        os.environ["TEXTGEN_HOME"] = folder
        try:
            yield Path(folder)
        finally:
            if previous is None:
                os.environ.pop("TEXTGEN_HOME", None)
            else:
                os.environ["TEXTGEN_HOME"] = previous


def corpora_dir(argument: str | None) -> Path:
    folder = Path(argument) if argument else DEFAULT_CORPORA
    if not folder.is_dir():
        raise SystemExit(f"corpora folder {folder} not found: pass --corpora PATH (see ../shared/corpora/README.md)")
    return folder


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


class Timer:
    def __enter__(self) -> "Timer":
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.started


def multi30k_files(corpora: Path, folder: Path) -> dict[str, Path]:
    """Multi30k En-Fr as three TSV files (train, valid, test2016) in `folder`, from the
    line-aligned .en/.fr files of the shared corpora."""
    source_dir = corpora / "multi30k-en-fr"
    names = {"train": "train", "valid": "val", "test": "test_2016_flickr"}
    paths = {}
    for split, stem in names.items():
        english = (source_dir / f"{stem}.en").read_text(encoding="utf-8").splitlines()
        french = (source_dir / f"{stem}.fr").read_text(encoding="utf-8").splitlines()
        if len(english) != len(french):
            raise SystemExit(f"{stem}.en has {len(english)} lines but {stem}.fr has {len(french)}")
        path = folder / f"multi30k-{split}.tsv"
        path.write_text("".join(f"{e.strip()}\t{f.strip()}\n" for e, f in zip(english, french)), encoding="utf-8")
        paths[split] = path
    return paths


def machine_gflops(seconds: float = 2.0) -> float:
    """This machine's float32 matmul speed right now (1024 x 1024, all threads), in GFLOP/s: the
    same-run baseline that says how loaded the machine was (two quiet cores here: 110-125).
    Measured in a child process, so this one's TensorFlow thread settings stay open to the run."""
    code = f"""
import time
import tensorflow as tf
a = tf.random.normal([1024, 1024])
matmul = tf.function(lambda x: tf.matmul(x, x))
matmul(a).numpy()
count, started = 0, time.perf_counter()
while time.perf_counter() - started < {seconds}:
    matmul(a).numpy()
    count += 1
print(2 * 1024 ** 3 * count / (time.perf_counter() - started) / 1e9)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(result.stdout.split()[-1])


def train_in_job_process(store, plan, timeout_seconds: float):
    """Train `plan` as the Train page does: a job in its own process. The job applies its run's
    thread layout (training.threads.thread_layout: one thread per op for the Transformers on two cores)
    in that process, so whatever a benchmark times here afterwards (a reference model, decoding)
    runs with TensorFlow's defaults, as the app and the CLI do. Returns the ended run."""
    from textgen.training import jobs

    run = jobs.submit(store, plan, background=True)
    return jobs.wait_until_inactive(store, run.id, timeout=timeout_seconds)
