"""`train` (and `train --plan`, which starts nothing), `stop`, `resume` and `delete` of a run, and
`worker`, the process of a background job (started by `train --background` and `resume`).
"""

from __future__ import annotations

import argparse
import sys

from textgen.cli.common import EXIT_USAGE, existing_run, fields_help, parse_settings, print_json, run_summary
from textgen.core.errors import TextgenError


class _ProgressLine:
    """One terminal line, rewritten in place, with the latest step, losses, speed and ETA."""

    def __init__(self) -> None:
        self.latest: dict[str, float] = {}
        self.tty = sys.stderr.isatty()

    def __call__(self, values: dict[str, float]) -> None:
        self.latest.update(values)
        v = self.latest
        parts = [f"step {int(v.get('step', 0))}/{int(v.get('total_steps', 0))}", f"epoch {v.get('epoch', 0):.2f}"]
        if "loss" in v:
            parts.append(f"loss {v['loss']:.4f}")
        if "valid_loss" in v:
            parts.append(f"valid loss {v['valid_loss']:.4f}")
        if "valid_bleu" in v:
            parts.append(f"BLEU {v['valid_bleu']:.1f}")
        if "tokens_per_second" in v:
            parts.append(f"{v['tokens_per_second']:.0f} tok/s")
        eta = v.get("eta_seconds")
        if eta is not None and eta == eta:
            parts.append(f"ETA {int(eta) // 60}m{int(eta) % 60:02d}s")
        line = "  ".join(parts)
        if self.tty:
            print("\r" + line.ljust(100), end="", file=sys.stderr, flush=True)
        elif "valid_loss" in values:  # not a terminal: one line per evaluation
            print(line, file=sys.stderr, flush=True)


def _print_plan(plan, summary_line: str, *, as_json: bool) -> int:
    """`train --plan`: what the run would be, and nothing started."""
    from textgen.core import hardware

    precision = plan.config.train.matmul_precision
    note = hardware.bfloat16_note()
    if as_json:
        print_json({"label": plan.label, "kind": plan.config.model.kind, "parameters": plan.parameter_count,
                     "flops_per_token": plan.flops_per_token, "train_examples": plan.num_train_examples,
                     "steps_per_epoch": plan.steps_per_epoch, "matmul_precision": precision,
                     "matmul_precision_note": note})
        return 0
    print(summary_line)
    print(f"matmul_precision: {precision}. {note}")
    print("Nothing was started (--plan); run the same command without --plan to train.")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from textgen.store.database import RunStore
    from textgen.training import jobs, planning

    settings = parse_settings(args.set or [])
    if args.epochs is not None:
        settings["epochs"] = str(args.epochs)
    if args.minutes is not None:
        settings["minutes"] = str(args.minutes)
    with RunStore() as store:
        plan = planning.plan_run(store, args.corpus, args.model, preset=args.preset, settings=settings,
                                 label=args.label, valid=args.valid, test=args.test)
        summary_line = (f"{plan.label}: {plan.parameter_count:,} parameters, {plan.flops_per_token:,} FLOPs per "
                        f"token, {plan.num_train_examples:,} training examples, {plan.steps_per_epoch} steps per epoch")
        if args.plan:
            return _print_plan(plan, summary_line, as_json=args.json)
        if not args.json:
            print(summary_line, file=sys.stderr)
        run = jobs.submit(store, plan, background=args.background)
        if args.background:
            if args.json:
                print_json(run_summary(store, run))
            else:
                print(f"started {run.id} in the background; follow it with: python -m textgen runs")
            return 0
        progress = None if args.json else _ProgressLine()
        run = jobs.run_job(store, run.id, on_progress=progress)
        if progress and progress.tty:
            print(file=sys.stderr)
        summary = run_summary(store, run)
    if args.json:
        print_json(summary)
    else:
        print(f"{run.id}: {run.status}" + (f" ({run.error})" if run.error else ""))
    return 0 if run.status in ("finished", "stopped") else 1


def cmd_worker(args: argparse.Namespace) -> int:
    from textgen.store.database import RunStore
    from textgen.training import jobs

    jobs.apply_memory_limit()  # before TensorFlow loads
    jobs.lower_job_priority()  # the app's server gets the cores first when it needs them
    try:
        with RunStore() as store:
            run = jobs.run_job(store, args.run)
        code = 0 if run.status in ("finished", "stopped") else 1
    except TextgenError as error:  # already recorded as the run's reason
        print(f"error: {error}", file=sys.stderr)
        code = EXIT_USAGE
    except BaseException:  # noqa: BLE001 - recorded as the run's reason; the details go to job.log
        import traceback

        traceback.print_exc()
        code = 1
    # The run's end is recorded and its files are synced; `python -m textgen` (textgen/__main__.py)
    # then skips the interpreter's teardown, which can wait many seconds on tf.data's background
    # threads on busy cores while the process still holds its memory and looks alive.
    return code


def cmd_stop(args: argparse.Namespace) -> int:
    from textgen.store.database import RunStore
    from textgen.training import jobs

    with RunStore() as store:
        jobs.reconcile(store)
        run = jobs.request_stop(store, existing_run(store, args.run))
        if args.wait:
            run = jobs.wait_until_inactive(store, args.run, args.wait)
    print(f"{run.id}: {run.status}" + (" (stop requested)" if run.status in ("running", "queued") else ""))
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from textgen.store.database import RunStore
    from textgen.training import jobs

    with RunStore() as store:
        run = jobs.resume(store, existing_run(store, args.run), epochs=args.epochs, settings=parse_settings(args.set or []),
                          background=not args.foreground)
        print(f"{run.id} {jobs.resume_summary(store, run.id)}", file=sys.stderr)
        if args.foreground:
            run = jobs.run_job(store, run.id)
        summary = run_summary(store, run)
    if args.json:
        print_json(summary)
    else:
        print(f"{run.id}: {run.status}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from textgen.store.database import RunStore
    from textgen.training import jobs

    with RunStore() as store:
        jobs.delete(store, existing_run(store, args.run))
    print(f"deleted {args.run}")
    return 0



def _register_train(commands) -> None:
    from textgen.training import planning

    train = commands.add_parser("train", help="train a model (in the foreground, or --background as a job)")
    train.add_argument("--corpus", required=True, help="a corpus file, sample:NAME, or a registered corpus id")
    train.add_argument("--model", required=True, metavar="KIND",
                       choices=["gru", "lstm", "bahdanau", "luong", "transformer", "transformer-lm", "lstm-lm"],
                       help="gru, lstm, bahdanau, luong, transformer, transformer-lm, lstm-lm")
    train.add_argument("--preset", default="small", choices=["tiny", "small", "base"], help="model size (default small)")
    train.add_argument("--epochs", type=int, help="passes over the training split (default 10)")
    train.add_argument("--minutes", type=float, help="time budget: stop cleanly after this many minutes")
    train.add_argument("--valid", help="held-out validation pairs (a file or sample:NAME) instead of the corpus's split")
    train.add_argument("--test", help="held-out test pairs instead of the corpus's split")
    train.add_argument("--label", help="a display name for the run")
    train.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="any tokenizer, model or training field by its own name (learning_rate=3e-4, "
                            "tokenizer=char, ...; `python -m textgen settings` explains each): "
                            + planning.settings_help())
    train.add_argument("--background", action="store_true", help="start a job and return at once")
    train.add_argument("--plan", action="store_true",
                       help="print what the run would be (size, data, what matmul_precision does on this CPU) and start nothing")
    train.add_argument("--json", action="store_true", help="last line of stdout: a JSON object with run_id")
    train.set_defaults(handler=cmd_train)


def register(commands) -> None:
    """`train`, `worker`, `stop`, `resume` and `delete`, on the top parser's `commands`."""
    from textgen.training.config import TrainConfig

    _register_train(commands)

    worker = commands.add_parser("worker")  # the job process; started by `train --background`
    worker.add_argument("run")
    worker.set_defaults(handler=cmd_worker)

    stop = commands.add_parser("stop", help="stop a run (it checkpoints, then ends as stopped)")
    stop.add_argument("run")
    stop.add_argument("--wait", type=float, default=0, metavar="SECONDS", help="wait for it to end")
    stop.set_defaults(handler=cmd_stop)

    resume = commands.add_parser("resume", help="continue a run from its last checkpoint")
    resume.add_argument("run")
    resume.add_argument("--epochs", type=int, help="this many more epochs")
    resume.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="training fields to change: " + fields_help(TrainConfig))
    resume.add_argument("--foreground", action="store_true", help="train here instead of as a background job")
    resume.add_argument("--json", action="store_true")
    resume.set_defaults(handler=cmd_resume)

    delete = commands.add_parser("delete", help="delete a run (a running job is stopped first)")
    delete.add_argument("run")
    delete.set_defaults(handler=cmd_delete)
