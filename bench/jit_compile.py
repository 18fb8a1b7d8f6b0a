"""Does XLA (`jit_compile=True`) speed up training? Measured per family, in one process.

    .venv/bin/python bench/jit_compile.py [--kinds transformer,transformer-lm] [--seconds 90]

Only the Transformer families are offered XLA (training refuses jit_compile for the recurrent
ones: Bahdanau's tf.scan step loop does not compile).

For each family, trains the same "small" model on the same corpus twice, without and with XLA,
for a fixed time budget, and prints steady-state training throughput (target tokens per second,
ignoring the first evaluation interval, which includes tracing and XLA compilation) and the ratio
XLA / default. Each run uses what training does with that setting: by default batches are padded
to their own longest example; under XLA to their bucket's bound, so that it compiles few shapes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from textgen.store.database import RunStore  # noqa: E402
from textgen.training import jobs, planning  # noqa: E402


def steady_tokens_per_second(store: RunStore, run_id: str) -> float:
    rows = [m for m in store.get_metrics([run_id], names=["tokens_per_second"]) if m.split == "train"]
    first_eval = min((m.step for m in store.get_metrics([run_id], names=["loss"]) if m.split == "valid"), default=0)
    steady = [m.value for m in rows if m.step > first_eval]
    return steady[-1] if steady else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default="transformer", help="transformer (on sample:dates), transformer-lm (on sample:tales)")
    parser.add_argument("--seconds", type=float, default=90)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home, RunStore(home) as store:
        for kind in args.kinds.split(","):
            figures = {}
            for jit in (False, True):
                started = time.monotonic()
                corpus = "sample:tales" if kind.endswith("-lm") else "sample:dates"
                plan = planning.plan_run(store, corpus, kind, preset="small", settings={
                    "epochs": "100", "minutes": str(args.seconds / 60), "batch_size": "64",
                    "eval_every_steps": "20", "eval_bleu_examples": "0", "num_probe_samples": "0",
                    "jit_compile": str(jit).lower(), "tokenizer": "char"})
                run = jobs.run_job(store, jobs.submit(store, plan, background=False).id)
                figures[jit] = steady_tokens_per_second(store, run.id)
                steps = max((m.step for m in store.get_metrics([run.id])), default=0)
                print(f"BENCH jit_{kind}_{'xla' if jit else 'default'}_tokens_per_s {figures[jit]:.0f} tok/s "
                      f"(steps {steps}, status {run.status}, wall {time.monotonic() - started:.0f} s; "
                      "nan: no evaluation interval after compiling)", flush=True)
            print(f"BENCH jit_{kind}_ratio {figures[True] / figures[False]:.2f} x (XLA / default)", flush=True)


if __name__ == "__main__":
    main()
