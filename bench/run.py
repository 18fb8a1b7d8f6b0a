"""Run every benchmark and print one line per figure, then a summary.

    .venv/bin/python bench/run.py [--quick] [--only NAME,...] [--corpora DIR]

Each benchmark runs in its own process (bench/NAME.py), one after the other, so that thread
settings and memory do not leak between them and no two compete for the two cores. Lines look like

    BENCH <name> <value> <unit> target=<target> ok|short|recorded

--quick is a smoke check (a few minutes): shorter budgets and fewer repetitions, so its figures
are rougher; bench/RESULTS.md records full runs. The full run takes about an hour, most of it
the 30-minute translation_quality training.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
# name -> (script, extra arguments in full mode); in this order.
BENCHMARKS = {
    "decode_speedup": "decode_speed.py",
    "train_tokens_per_s": "throughput.py",
    "lm_time_to_loss": "lm_time_to_loss.py",
    "translation_quality": "quality.py",
    "beam_throughput": "beam.py",
    "app_latency": "app_latency.py",
}
QUICK_SKIPS = {"translation_quality"}  # a 30-minute training run is not a smoke check


def run_one(script: str, arguments: list[str]) -> tuple[list[str], int, float]:
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, str(BENCH_DIR / script), *arguments], cwd=BENCH_DIR.parent,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("BENCH ") or line.startswith("  "):
            print(line, end="", flush=True)
        lines.append(line)
    code = process.wait()
    if code != 0:
        print("".join(lines[-30:]), end="", flush=True)
    return [line.strip() for line in lines if line.startswith("BENCH ")], code, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    parser.add_argument("--corpora", default=None, help="the shared corpora folder (default ../shared/corpora)")
    args = parser.parse_args()
    chosen = [name for name in BENCHMARKS if not args.only or name in args.only.split(",")]
    unknown = set(filter(None, args.only.split(","))) - set(BENCHMARKS)
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {', '.join(sorted(unknown))}; pick from {', '.join(BENCHMARKS)}")
    common_args = (["--quick"] if args.quick else []) + (["--corpora", args.corpora] if args.corpora else [])
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} {'quick' if args.quick else 'full'} run: {', '.join(chosen)}",
          flush=True)
    # The run bench/quality.py trains is handed to bench/beam.py, and deleted at the end.
    handover = Path(tempfile.mkdtemp(prefix="textgen-bench-handover-"))
    try:
        run_all(args, chosen, common_args, handover / "quality-home")
    finally:
        shutil.rmtree(handover, ignore_errors=True)


def run_all(args: argparse.Namespace, chosen: list[str], common_args: list[str], quality_home: Path) -> None:
    results: list[str] = []
    failures: list[str] = []
    started = time.monotonic()
    for name in chosen:
        if args.quick and name in QUICK_SKIPS:
            print(f"# {name}: skipped in --quick (run without --quick)", flush=True)
            continue
        arguments = list(common_args)
        if name == "app_latency":
            arguments = ["--quick"] if args.quick else []
        if name == "translation_quality":
            arguments += ["--keep", str(quality_home)]
        if name == "beam_throughput" and (quality_home / "quality.json").exists():
            arguments += ["--home", str(quality_home),
                          "--run", json.loads((quality_home / "quality.json").read_text())["run_id"]]
        print(f"# {name} ({BENCHMARKS[name]} {' '.join(arguments)})", flush=True)
        lines, code, seconds = run_one(BENCHMARKS[name], arguments)
        results.extend(lines)
        print(f"# {name}: {seconds:.0f} s{'' if code == 0 else f', FAILED (exit {code})'}", flush=True)
        if code != 0:
            failures.append(name)
    print(f"\n# summary ({time.monotonic() - started:.0f} s)")
    for line in results:
        print(line)
    short = [line.split()[1] for line in results if line.split()[5] == "short"] if results else []
    ok = [line for line in results if line.split()[5] == "ok"]
    print(f"# {len(ok)} ok, {len(short)} short{': ' + ', '.join(short) if short else ''}"
          f"{'; failed: ' + ', '.join(failures) if failures else ''}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
