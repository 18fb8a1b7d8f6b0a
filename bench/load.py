"""Issue 8, case 37: ten concurrent browser sessions while a job trains.

    .venv/bin/python bench/load.py [--sessions 10] [--rounds 1] [--settle 15] [--max-minutes 20]

Too slow for CI, so a benchmark. In a scratch TEXTGEN_HOME it trains three tiny runs for real
(GRU, Bahdanau, Transformer on the dates sample, evaluated), starts a real background training job
(`python -m textgen train ... --background`, a tiny Transformer on 3,000 dates pairs with far more
epochs than the test lasts), starts a real Streamlit server, and drives one headless Chromium
(Debian's /usr/bin/chromium through Playwright's async API) with N browser contexts at once, each
its own Streamlit session. Every session visits every page, `--rounds` times:

    home, Corpus, Train, Runs (the training job's live curves and a finished run),
    Compare (the three runs generating on the same typed inputs, different for each session and
    round, so each visit really decodes), Attention (a typed input, generated and mapped),
    Evaluate (the three runs' leaderboard), Report (the three runs)

A page's render time is the browser's wall time from starting the navigation until the page's
title is shown and the script has finished (Streamlit's "running" state is off:
`[data-testid=stApp][data-test-script-state=notRunning]`; on the Runs page, whose live fragment
reruns every second, and on the Train page, whose job list always does, until the last part of
the page is shown: the one-run tabs, the job list with the training job). After each page the session checks
that it shows no exception element and no error message; every context records its console
errors (Streamlit's own base-path probe 404s excepted). The Streamlit server process's resident
memory (VmRSS from /proc) is read at start, at a baseline (after one session has warmed every page
up and closed: modules imported, models loaded), every 0.25 s during the sessions (peak), and
`--settle` seconds after they closed. The training job is checked to be running throughout and
stopped at the end (textgen.training.jobs.request_stop).

Where the CPU went is read from /proc during the sessions: the server, the job and every Chromium
process. The test's browsers run on the same two cores as the server, so it also prints the CPU
per page load of each and the floor they set: sessions x (browser + server CPU per page) / cores
is the least time in which every session can have its page drawn, however fast the server is.

Prints `BENCH load_page_p95_seconds <s> s target=<3`, `BENCH load_server_rss_after_mb` and
`BENCH load_server_rss_ratio` (after / baseline, target <1.5), then a summary, and exits 1 when a page
failed, was not reached within --max-minutes, or the console had errors. A line per session and
round, and a heartbeat a minute, show progress. Takes about 1 minute to build the store, 1-2 for the
warm-up, then the sessions: minutes on a quiet machine, up to --max-minutes on a busy one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import common
from common import Timer, info, percentile, report

PAGE_TARGET_S = 3.0
RSS_RATIO_TARGET = 1.5
PAGE_TIMEOUT_MS = 180_000
# The page is shown and its script finished (fragments that poll may start again right after).
READY = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    return !!app && app.getAttribute('data-test-script-state') === 'notRunning'
        && !!document.querySelector('[data-testid="stMain"] h1');
}"""
# Pages with a fragment that reruns every second (Train's job list always; Runs while a selected
# run trains) keep the script "running" whenever a rerun takes about a second, as under this load:
# there the page counts as shown once the last part of its first run is on screen (Train: the job
# list with the training job; Runs: the one-run tabs).
READY_LIVE = {
    "train": """() => !!document.querySelector('[data-testid="stMain"] h1')
        && (document.querySelector('[data-testid="stMain"]').innerText || '').includes('load-test job')""",
    "runs": """() => !!document.querySelector('[data-testid="stMain"] h1')
        && [...document.querySelectorAll('[role="tab"]')].some(t => t.textContent.includes('Rename, delete, export'))""",
}
PROBLEMS = "[data-testid='stException'], [data-testid='stAlertContentError']"


def start_job(home: Path) -> str:
    """A real background training job that outlasts the test; returns its run id."""
    from browser import corpus_file

    corpus = corpus_file(home, size=3000, seed=5)
    completed = subprocess.run(
        [sys.executable, "-m", "textgen", "train", "--corpus", str(corpus), "--model", "transformer",
         "--preset", "tiny", "--epochs", "1000", "--label", "load-test job", "--background", "--json",
         "--set", "tokenizer=char", "--set", "batch_size=32"],
        cwd=common.ROOT, env={**os.environ, "TEXTGEN_HOME": str(home)}, capture_output=True, timeout=300)
    if completed.returncode != 0:
        raise SystemExit(f"could not start the training job: {completed.stderr.decode()[-2000:]}")
    return json.loads(completed.stdout)["id"]


def job_state(home: Path, run_id: str) -> tuple[str, int]:
    """(status, latest training step logged)."""
    from textgen.store.database import RunStore
    from textgen.training import jobs

    with RunStore(home) as store:
        jobs.reconcile(store)
        rows = store.get_metrics([run_id], names=["loss"])
        return store.get_run(run_id).status, max((row.step for row in rows), default=0)


def inputs_for(session: int, round_: int, count: int = 3) -> tuple[list[str], list[str]]:
    """Typed inputs (with references) unique to a session and round: dates the runs learned."""
    from textgen.data.samples import catalog

    pairs = catalog.generate_pairs("dates", size=count, seed=1000 + 100 * round_ + session)
    return [source for source, _ in pairs], [target for _, target in pairs]


def page_plan(session: int, round_: int, job: str, runs: list[str]) -> list[tuple[str, str]]:
    """(page name, path with query) in the order a session visits them."""
    three = ",".join(runs[:3])
    sources, references = inputs_for(session, round_)
    compare = urllib.parse.urlencode({"runs": three, "inputs": "typed", "input": "\n".join(sources),
                                      "reference": "\n".join(references)})
    attention = urllib.parse.urlencode({"run": runs[1], "input": sources[0]})
    return [
        ("home", "/"), ("corpus", "/Corpus"), ("train", "/Train"),
        ("runs", f"/Runs?runs={job},{runs[0]}"), ("compare", f"/Compare?{compare}"),
        ("attention", f"/Attention?{attention}"), ("evaluate", f"/Evaluate?runs={three}"),
        ("report", f"/Report?runs={three}"),
    ]


class Results:
    def __init__(self, deadline: float = float("inf")) -> None:
        self.deadline = deadline  # time.monotonic() after which no new page is opened
        self.times: list[tuple[str, float, int, int]] = []  # page, seconds, session, round
        self.problems: list[str] = []
        self.console: list[str] = []


async def browse(browser, url: str, session: int, rounds: int, job: str, runs: list[str],
                 results: Results) -> None:
    from browser import real_console_error

    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    page.on("console", lambda m: results.console.append(f"session {session}: {m.text} @ {m.location.get('url')}")
            if m.type == "error" and real_console_error(f"{m.text} @ {m.location.get('url')}") else None)
    page.on("pageerror", lambda error: results.console.append(f"session {session}: {error}"))
    loop = asyncio.get_running_loop()
    try:
        for round_ in range(rounds):
            round_started = loop.time()
            for name, path in page_plan(session, round_, job, runs):
                if time.monotonic() > results.deadline:
                    results.problems.append(f"session {session} round {round_} {name}: not visited, the "
                                            "time limit (--max-minutes) was reached")
                    continue
                started = loop.time()
                try:
                    await page.goto(url + path, wait_until="commit", timeout=PAGE_TIMEOUT_MS)
                    await page.wait_for_function(READY_LIVE.get(name, READY),
                                                 timeout=PAGE_TIMEOUT_MS, polling=50)
                except Exception as error:  # a timeout: the page never finished
                    results.problems.append(f"session {session} round {round_} {name}: {type(error).__name__}: "
                                            f"{str(error).splitlines()[0]}")
                    continue
                results.times.append((name, loop.time() - started, session, round_))
                shown = await page.locator(PROBLEMS).all_inner_texts()
                if shown:
                    results.problems.append(f"session {session} round {round_} {name}: "
                                            + " | ".join(text[:200] for text in shown))
                if name == "compare":  # the outputs table (a lazily loaded component)
                    try:
                        await page.locator("[data-testid='stDataFrameResizable']").first.wait_for(timeout=90_000)
                    except Exception:
                        shown = await page.locator("[data-testid='stMain']").inner_text()
                        results.problems.append(f"session {session} round {round_} compare: no output table "
                                                f"90 s after the script finished; the page showed: {shown[-300:]!r}")
            mine = [seconds for _, seconds, who, when in results.times if who == session and when == round_]
            info(f"session {session} round {round_}: {len(mine)} pages in {loop.time() - round_started:.0f} s"
                 + (f", slowest {max(mine):.1f} s" if mine else ""))
    finally:
        await context.close()


async def run_sessions(url: str, sessions: int, rounds: int, job: str, runs: list[str],
                       results: Results) -> float:
    from browser import CHROMIUM, CHROMIUM_ARGS
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            started = time.monotonic()
            await asyncio.gather(*(browse(browser, url, index, rounds, job, runs, results)
                                   for index in range(sessions)))
            return time.monotonic() - started
        finally:
            await browser.close()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a process so far (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def chromium_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as handle:
                    if handle.read().strip().startswith(("chromium", "chrome")):
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


class RssSampler(threading.Thread):
    """Samples a process's VmRSS every `interval` seconds (`.peak` in MiB), and where the CPU goes:
    CPU seconds used during the sessions by the server, the training job and Chromium (every
    browser process, read each second; a process that exits keeps its last reading)."""

    def __init__(self, pid: int, job_pid: int | None, results: Results, interval: float = 0.25,
                 every: float = 60) -> None:
        super().__init__(daemon=True)
        self.pid, self.job_pid, self.results, self.interval, self.every = pid, job_pid, results, interval, every
        self.peak = 0.0
        self.done = threading.Event()
        self.start_cpu = {"server": cpu_seconds(pid), "job": cpu_seconds(job_pid) if job_pid else 0.0}
        self.cpu = dict(self.start_cpu)
        self.chromium: dict[int, float] = {}  # pid -> CPU seconds at the last reading
        self.chromium_start = {p: cpu_seconds(p) for p in chromium_pids()}  # none expected

    def _read_cpu(self) -> None:
        self.cpu["server"] = cpu_seconds(self.pid) or self.cpu["server"]
        if self.job_pid:
            self.cpu["job"] = cpu_seconds(self.job_pid) or self.cpu["job"]
        for pid in chromium_pids():
            self.chromium[pid] = max(self.chromium.get(pid, 0.0), cpu_seconds(pid))

    def cpu_used(self) -> dict[str, float]:
        """CPU seconds used since the sampler was made, per part."""
        used = {name: self.cpu[name] - self.start_cpu[name] for name in self.cpu}
        used["chromium"] = sum(seconds - self.chromium_start.get(pid, 0.0) for pid, seconds in self.chromium.items())
        return used

    def run(self) -> None:
        from browser import rss_mb

        started = next_line = next_cpu = time.monotonic()
        while not self.done.is_set():
            rss = rss_mb(self.pid)
            self.peak = max(self.peak, rss)
            if time.monotonic() >= next_cpu:
                self._read_cpu()
                next_cpu += 1.0
            if time.monotonic() >= next_line:  # a heartbeat: progress and memory
                info(f"{time.monotonic() - started:.0f} s: {len(self.results.times)} page loads done, "
                     f"server RSS {rss:.0f} MiB")
                next_line += self.every
            self.done.wait(self.interval)
        self._read_cpu()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10, help="concurrent browser sessions (default 10)")
    parser.add_argument("--rounds", type=int, default=1, help="times each session visits every page (default 1)")
    parser.add_argument("--max-minutes", type=float, default=20,
                        help="open no new page after this many minutes of sessions (default 20); "
                             "pages not visited are reported as problems")
    parser.add_argument("--settle", type=float, default=15,
                        help="seconds after the sessions close before the last memory reading (default 15)")
    args = parser.parse_args(argv)
    os.environ.pop("TEXTGEN_PASSWORD", None)

    started = time.perf_counter()
    lines: list[str] = []
    results = Results()
    failures: list[str] = []
    with common.scratch_home("textgen-bench-load-") as home:
        from browser import build_store, rss_mb, streamlit_server

        from textgen.store.database import RunStore
        from textgen.training import jobs

        with Timer() as build:
            runs, _ = build_store(home, 3, 3, epochs=1)
        info(f"store: 3 tiny runs trained for real (gru, bahdanau, transformer) and evaluated in {build.seconds:.0f} s")
        job = start_job(home)
        try:
            with streamlit_server(home) as server:
                rss_start = rss_mb(server.pid)
                warm = Results()
                with Timer() as warm_up:
                    asyncio.run(run_sessions(server.url, 1, 1, job, runs, warm))
                failures += [f"warm-up: {problem}" for problem in warm.problems + warm.console]
                time.sleep(args.settle)
                rss_baseline = rss_mb(server.pid)
                status, step = job_state(home, job)
                info(f"server: {rss_start:.0f} MiB at start, {rss_baseline:.0f} MiB after a warm-up session "
                     f"visited every page ({warm_up.seconds:.0f} s) and closed; job {job} {status}, step {step}")
                if status != "running":
                    failures.append(f"the training job is {status} before the sessions started")

                with RunStore(home) as store:
                    job_pid = store.get_run(job).pid
                sampler = RssSampler(server.pid, job_pid, results)
                sampler.start()
                results.deadline = time.monotonic() + 60 * args.max_minutes
                try:
                    wall = asyncio.run(run_sessions(server.url, args.sessions, args.rounds, job, runs, results))
                except KeyboardInterrupt:  # report what was measured
                    wall = float("nan")
                    results.problems.append("interrupted (Ctrl-C) during the sessions")
                finally:
                    sampler.done.set()
                    sampler.join()
                status_after, step_after = job_state(home, job)
                info(f"{args.sessions} sessions x {args.rounds} rounds x 8 pages: {len(results.times)} page "
                     f"loads in {wall:.0f} s; the job {status_after} throughout, steps {step} -> {step_after}")
                used = sampler.cpu_used()
                info("CPU seconds during the sessions: " + ", ".join(f"{name} {seconds:.0f}" for name, seconds in used.items())
                     + f" (of {os.cpu_count() * wall:.0f} core-seconds on {os.cpu_count()} cores)")
                loads = max(len(results.times), 1)
                # What one round of page loads costs the machine: with every session loading a page
                # at once, no page can show sooner than sessions x (browser + server CPU per page)
                # / cores, however the app is written.
                per_page = {name: used[name] / loads for name in ("chromium", "server")}
                floor = args.sessions * (per_page["chromium"] + per_page["server"]) / (os.cpu_count() or 1)
                lines.append(report("load_chromium_cpu_per_page_s", per_page["chromium"], "s", "none", None,
                                    "the test's own browsers, on the same cores"))
                lines.append(report("load_server_cpu_per_page_s", per_page["server"], "s", "none", None,
                                    "the Streamlit server: script runs, generation, messages"))
                lines.append(report("load_page_floor_seconds", floor, "s", "none", None,
                                    f"{args.sessions} sessions x (browser + server CPU per page) / {os.cpu_count()} cores"))
                if status_after != "running":
                    failures.append(f"the training job is {status_after} after the sessions (expected running)")
                time.sleep(args.settle)
                rss_after = rss_mb(server.pid)
        finally:
            with RunStore(home) as store:
                if store.get_run(job).status in ("running", "queued"):
                    jobs.request_stop(store, job)
                stopped = jobs.wait_until_inactive(store, job, timeout=120)
            info(f"training job {job} stopped: {stopped.status}")

        by_page: dict[str, list[float]] = {}
        for name, seconds, _, _ in results.times:
            by_page.setdefault(name, []).append(seconds)
        for name, times in by_page.items():
            info(f"{name}: {len(times)} loads, median {statistics.median(times):.2f} s, "
                 f"p95 {percentile(times, 95):.2f} s, max {max(times):.2f} s")
        if results.times:
            p95 = percentile([seconds for _, seconds, _, _ in results.times], 95)
            lines.append(report("load_page_p95_seconds", p95, "s", f"<{PAGE_TARGET_S:g}", p95 < PAGE_TARGET_S,
                                f"{args.sessions} sessions, {len(results.times)} page loads, a job training"))
        info(f"server RSS: start {rss_start:.0f} MiB, baseline {rss_baseline:.0f} MiB, peak {sampler.peak:.0f} MiB, "
             f"{args.settle:g} s after the sessions closed {rss_after:.0f} MiB")
        lines.append(report("load_server_rss_peak_mb", sampler.peak, "MiB", "none", None))
        lines.append(report("load_server_rss_after_mb", rss_after, "MiB", "none", None,
                            f"baseline {rss_baseline:.0f} MiB"))
        ratio = rss_after / rss_baseline
        lines.append(report("load_server_rss_ratio", ratio, "x", f"<{RSS_RATIO_TARGET:g}", ratio < RSS_RATIO_TARGET,
                            "after / baseline"))
    failures += results.problems + results.console
    expected = args.sessions * args.rounds * 8
    if len(results.times) != expected:
        failures.append(f"{len(results.times)} of {expected} page loads finished")
    print(f"load: {len(lines)} figures in {time.perf_counter() - started:.0f} s; "
          f"{len(failures)} problem(s)")
    for line in lines:
        print(line)
    for failure in failures:
        print(f"  PROBLEM {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
