"""The command line: everything the app does, scriptable.

Errors the user can fix (`TextgenError`) print one line on stderr and exit with status 2; a
traceback means a bug. Commands that produce data take `--json` and then print one JSON object
(on the last line of stdout for long-running commands). TensorFlow is imported only by the
commands that need it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from typing import Any, Sequence

from textgen.core.errors import TextgenError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: one line, exit 2
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, sort_keys=False))


def _parse_settings(pairs: Sequence[str]) -> dict[str, str]:
    settings: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise TextgenError(f"--set expects key=value, got {pair!r}.")
        settings[key.strip()] = value.strip()
    return settings


# -- corpus ---------------------------------------------------------------------------------


def _corpus_config(args: argparse.Namespace):
    from textgen.data.config import CorpusConfig

    overrides: dict[str, Any] = {"format": args.format}
    if args.source_field:
        overrides["source_field"] = args.source_field
    if args.target_field:
        overrides["target_field"] = args.target_field
    overrides.update(_parse_settings(args.set or []))
    return CorpusConfig().with_overrides(overrides, from_text=True)


def cmd_corpus_sample(args: argparse.Namespace) -> int:
    from textgen.data import registry, samples

    if args.name is None:
        if args.json:
            _print_json([
                {"name": s.name, "kind": s.kind, "description": s.description,
                 "default_size": s.default_size, "example_source": s.example_source,
                 "example_target": s.example_target}
                for s in samples.SAMPLES.values()
            ])
        else:
            width = max(len(name) for name in samples.SAMPLES)
            for spec in samples.SAMPLES.values():
                print(f"{spec.name:<{width}}  {spec.kind:<5}  {spec.description}")
            print("\nWrite one with: python -m textgen corpus sample NAME [--out PATH]; "
                  "use one anywhere a corpus is accepted as sample:NAME.")
        return 0
    if args.name not in samples.SAMPLES:
        raise TextgenError(
            f"unknown sample corpus {args.name!r}; choose one of: {', '.join(samples.sample_names())}."
        )
    if args.out == "-":
        sys.stdout.buffer.write(samples.sample_bytes(args.name, size=args.size, seed=args.seed))
        return 0
    out = args.out or f"{args.name}{samples.sample_file_suffix(args.name)}"
    if os.path.exists(out) and not args.force:
        raise TextgenError(f"{out} already exists; pass --force to overwrite it or choose --out.")
    path = registry.write_sample(args.name, out, size=args.size, seed=args.seed)
    print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_corpus_inspect(args: argparse.Namespace) -> int:
    from textgen.data import registry
    from textgen.data.config import TokenizerConfig

    loaded = registry.load_reference(args.path, _corpus_config(args))
    report = loaded.report.to_dict()
    report["tokenizer"] = registry.tokenizer_summary(
        loaded, TokenizerConfig(kind=args.tokenizer, vocab_size=args.vocab_size)
    )
    if args.json:
        _print_json(report)
    else:
        print(format_report(report, label=loaded.label))
    return 0


def cmd_corpus_add(args: argparse.Namespace) -> int:
    from textgen.data import registry
    from textgen.store.database import RunStore

    with RunStore() as store:
        record = registry.register_reference(store, args.path, _corpus_config(args), label=args.label)
    result = {"corpus_id": record.id, "label": record.label, "format": record.format,
              "num_examples": record.num_examples}
    if args.json:
        _print_json(result)
    else:
        print(f"registered {record.id} ({record.format}, {record.num_examples} examples)")
    return 0


def cmd_corpus_list(args: argparse.Namespace) -> int:
    from textgen.core.text import visible
    from textgen.store.database import RunStore

    with RunStore() as store:
        records = store.list_corpora()
    if args.json:
        _print_json([{"id": r.id, "label": r.label, "origin": r.origin, "format": r.format,
                      "num_examples": r.num_examples, "sha256": r.sha256} for r in records])
        return 0
    if not records:
        print("no corpora yet: python -m textgen corpus add PATH|sample:NAME")
    for r in records:
        print(f"{r.id}  {r.format:<5}  {r.num_examples:>8}  {visible(r.label, 60)}")
    return 0


def format_report(report: dict[str, Any], label: str = "") -> str:
    """The validation report as a few readable lines for a terminal (text shown escaped)."""
    from textgen.core.text import visible

    lines = [f"corpus {visible(label, 80)}: {report.get('format')} ({report.get('encoding')}), "
             f"{report.get('num_examples')} examples, {report.get('num_rejected')} rejected lines"]
    for side in ("source_length", "target_length"):
        stats = report.get(side)
        if isinstance(stats, dict):
            words = stats.get("words", stats)
            if isinstance(words, dict) and "mean" in words:
                lines.append(
                    f"  {side.replace('_', ' ')} (words): min {words.get('min')}, "
                    f"median {words.get('median')}, mean {words.get('mean'):.1f}, "
                    f"p95 {words.get('p95')}, max {words.get('max')}"
                )
    vocabulary = report.get("vocabulary_size")
    if vocabulary is not None:
        lines.append(f"  distinct words: {json.dumps(vocabulary)}")
    tokenizer = report.get("tokenizer")
    if isinstance(tokenizer, dict):
        for side in ("source", "target", "text"):
            if side in tokenizer:
                figures = tokenizer[side]
                lines.append(
                    f"  {tokenizer['kind']} tokenizer, {side}: {figures['vocabulary_size']} tokens "
                    f"(cap {tokenizer['vocab_size_cap']}), out of vocabulary: "
                    f"{figures['oov_rate_valid']:.2%} of validation, {figures['oov_rate_test']:.2%} of test tokens"
                )
    split = report.get("split")
    if isinstance(split, dict):
        lines.append(f"  split: {json.dumps({k: v for k, v in split.items() if not isinstance(v, (list, dict))})}")
    for rejection in report.get("rejected", [])[:20]:
        lines.append(f"  line {rejection['line']}: {visible(str(rejection['reason']), 200)}")
    if report.get("num_rejected", 0) > 20:
        lines.append(f"  ... and {report['num_rejected'] - 20} more rejected lines (--json lists them)")
    for warning in report.get("warnings", []):
        lines.append(f"  warning: {visible(str(warning), 300)}")
    return "\n".join(lines)


# -- training -------------------------------------------------------------------------------


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


def _run_summary(store, run) -> dict[str, Any]:
    return {"run_id": run.id, "id": run.id, "label": run.label, "kind": run.kind, "status": run.status,
            "pid": run.pid, "error": run.error, "corpus_id": run.corpus_id,
            "metrics": store.latest_metrics(run.id)}


def _print_plan(plan, summary_line: str, *, as_json: bool) -> int:
    """`train --plan`: what the run would be, and nothing started."""
    from textgen.core import hardware

    precision = plan.config.train.matmul_precision
    note = hardware.bfloat16_note()
    if as_json:
        _print_json({"label": plan.label, "kind": plan.config.model.kind, "parameters": plan.parameter_count,
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

    settings = _parse_settings(args.set or [])
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
                _print_json(_run_summary(store, run))
            else:
                print(f"started {run.id} in the background; follow it with: python -m textgen runs")
            return 0
        progress = None if args.json else _ProgressLine()
        run = jobs.run_job(store, run.id, on_progress=progress)
        if progress and progress.tty:
            print(file=sys.stderr)
        summary = _run_summary(store, run)
    if args.json:
        _print_json(summary)
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
    # then skips the interpreter's teardown, which waits on tf.data's background threads (20 s
    # measured on busy cores) while the process still holds its memory and looks alive.
    return code


def cmd_stop(args: argparse.Namespace) -> int:
    from textgen.store.database import RunStore
    from textgen.training import jobs

    with RunStore() as store:
        jobs.reconcile(store)
        run = jobs.request_stop(store, _existing_run(store, args.run))
        if args.wait:
            run = jobs.wait_until_inactive(store, args.run, args.wait)
    print(f"{run.id}: {run.status}" + (" (stop requested)" if run.status in ("running", "queued") else ""))
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from textgen.store.database import RunStore
    from textgen.training import jobs

    with RunStore() as store:
        run = jobs.resume(store, _existing_run(store, args.run), epochs=args.epochs, settings=_parse_settings(args.set or []),
                          background=not args.foreground)
        print(f"{run.id} {jobs.resume_summary(store, run.id)}", file=sys.stderr)
        if args.foreground:
            run = jobs.run_job(store, run.id)
        summary = _run_summary(store, run)
    if args.json:
        _print_json(summary)
    else:
        print(f"{run.id}: {run.status}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from textgen.store.database import RunStore
    from textgen.training import jobs

    with RunStore() as store:
        jobs.delete(store, _existing_run(store, args.run))
    print(f"deleted {args.run}")
    return 0


# -- decoding and evaluation ----------------------------------------------------------------


def _decoding_config(args: argparse.Namespace):
    from textgen.decoding import DecodingConfig

    overrides: dict[str, Any] = {"strategy": args.strategy}
    for name in ("beam_width", "temperature", "top_k", "top_p", "seed", "max_length"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    overrides.update(_parse_settings(args.set or []))
    return DecodingConfig().with_overrides(overrides, from_text=True)


class _ProgressBar:
    """A terminal progress bar on stderr while examples are decoded (silent when not a terminal)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        width = 30
        filled = int(width * done / total)
        print(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end="",
              file=sys.stderr, flush=True)
        if done >= total:
            print(file=sys.stderr)


def cmd_generate(args: argparse.Namespace) -> int:
    from textgen.core.text import visible
    from textgen.decoding import attention_matrix, generate
    from textgen.store.database import RunStore
    from textgen.training import artifacts

    config = _decoding_config(args)
    with RunStore() as store:
        trained = artifacts.load_trained(store.run_dir(_existing_run(store, args.run)), args.checkpoint)
    if trained.warning:
        print(f"warning: {trained.warning}", file=sys.stderr)
    generation = generate(trained.model, trained.source_tokenizer, trained.target_tokenizer, [args.input],
                          config, max_source_length=trained.config.model.max_source_length)[0]
    key = "self_attention" if trained.config.model.is_decoder_only else "cross_attention"
    matrix = attention_matrix(generation.attention, key)
    if args.json:
        _print_json({
            "output": generation.output,
            "tokens": generation.tokens,
            "source_tokens": generation.source_tokens if key == "cross_attention" else generation.decoder_input_tokens,
            "log_probs": [float(x) for x in generation.log_probs],
            "attention": matrix.tolist() if matrix is not None else None,
            "finished": generation.finished,
            "stop_reason": generation.stop_reason,
            "n_best": [{"output": h.text, "score": float(h.score)} for h in generation.n_best],
            "checkpoint": trained.checkpoint.name,
        })
    else:
        print(visible(generation.output))
        if not generation.finished:
            print(f"(stopped: {generation.stop_reason})", file=sys.stderr)
    return 0


def _existing_run(store, run_id: str) -> str:
    from textgen.store.database import check_id

    check_id(run_id, "run id")
    store.get_run(run_id)
    return run_id


def _metrics_json(result) -> dict[str, Any]:
    return {name: {"value": m.value, "low": m.low, "high": m.high} for name, m in result.metrics.items()}


def cmd_evaluate(args: argparse.Namespace) -> int:
    from textgen.analysis import evaluation
    from textgen.data import registry
    from textgen.store.database import RunStore
    from textgen.training import artifacts

    config = _decoding_config(args)
    progress = _ProgressBar("decoding")
    with RunStore() as store:
        run_id = _existing_run(store, args.run)
        if args.corpus:
            loaded = registry.load_reference(args.corpus)
            if not loaded.corpus.is_pairs:
                raise TextgenError("--corpus must hold source/target pairs (TSV, CSV or JSONL).")
            trained = artifacts.load_trained(store.run_dir(run_id), args.checkpoint)
            examples = loaded.corpus.examples[: args.max_examples]
            result, _ = evaluation.evaluate(
                trained.model, trained.source_tokenizer, trained.target_tokenizer,
                [e.source for e in examples], [e.target for e in examples], config,
                max_source_length=trained.config.model.max_source_length, progress=progress)
            split = f"corpus:{loaded.corpus.sha256[:12]}"
            evaluation.save_evaluation(store, run_id, split, config, result)
        else:
            result, _, _ = evaluation.evaluate_run(store, run_id, config, split=args.split,
                                                   checkpoint=args.checkpoint, max_examples=args.max_examples,
                                                   progress=progress)
            split = args.split
    if args.json:
        _print_json({"run_id": run_id, "split": split, **_metrics_json(result),
                     "num_examples": len(result.hypotheses), "signature": result.signature,
                     "decoding": config.to_dict()})
    else:
        for name, m in result.metrics.items():
            print(f"{name:<7} {m.value:6.2f}  (95% CI {m.low:.2f}-{m.high:.2f})")
        print(f"on {len(result.hypotheses)} examples; {result.signature}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from textgen.analysis import evaluation
    from textgen.scoring.metrics import paired_significance
    from textgen.store.database import RunStore

    if len(set(args.runs)) < 2:
        raise TextgenError("compare needs at least two different runs.")
    config = _decoding_config(args)
    results = {}
    with RunStore() as store:
        records = [store.get_run(_existing_run(store, run_id)) for run_id in args.runs]
        corpora_used = {r.corpus_id for r in records}
        if len(corpora_used) > 1:
            raise TextgenError("the runs were trained on different corpora, so their test splits differ; "
                               "compare runs of one corpus.")
        for record in records:
            result, _, _ = evaluation.evaluate_run(store, record.id, config, split=args.split,
                                                   max_examples=args.max_examples, save=False,
                                                   progress=_ProgressBar(f"decoding {record.id}"))
            results[record.id] = result
    baseline = args.runs[0]
    references = results[baseline].references
    significance = paired_significance(
        {run_id: result.hypotheses for run_id, result in results.items()}, references,
        baseline=baseline, method=args.method)
    rows = [{"run_id": r.id, "label": r.label, "kind": r.kind, "metrics": _metrics_json(results[r.id]),
             "p_value": {metric: v["p_value"] for metric, v in significance.get(r.id, {}).items()},
             "delta": {metric: v["delta"] for metric, v in significance.get(r.id, {}).items()}}
            for r in records]
    if args.json:
        _print_json({"baseline": baseline, "split": args.split, "method": args.method, "runs": rows,
                     "signature": results[baseline].signature})
    else:
        from textgen.core.text import visible

        for row in rows:
            bleu = row["metrics"]["bleu"]
            p = row["p_value"].get("bleu")
            against = "baseline" if p is None else f"p={p:.3f} vs {baseline}"
            print(f"{row['run_id']}  {visible(row['label'], 30):<30}  BLEU {bleu['value']:6.2f} "
                  f"({bleu['low']:.2f}-{bleu['high']:.2f})  {against}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from textgen.runs import bundle
    from textgen.store.database import RunStore

    with RunStore() as store:
        data = bundle.export_bundle(store, _existing_run(store, args.run), args.checkpoint)
    out = args.out or bundle.bundle_file_name(args.run)
    if os.path.exists(out) and not args.force:
        raise TextgenError(f"{out} already exists; pass --force to overwrite it or choose --out.")
    from textgen.core.fsutil import atomic_write_bytes

    atomic_write_bytes(out, data)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from textgen.runs import bundle
    from textgen.store.database import RunStore

    try:
        size = os.path.getsize(args.path)
        if size > bundle.BUNDLE_MAX_BYTES:
            raise TextgenError(f"{args.path} is {size:,} bytes, over the {bundle.BUNDLE_MAX_BYTES:,} a bundle may be.")
        with open(args.path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise TextgenError(f"cannot read {args.path}: {error.strerror}.") from None
    with RunStore() as store:
        run = bundle.import_bundle(store, data, label=args.label)
        summary = _run_summary(store, run)
    if args.json:
        _print_json(summary)
    else:
        print(f"imported {run.id} ({run.kind}); generate with: python -m textgen generate {run.id} --input TEXT")
    return 0


# -- runs -----------------------------------------------------------------------------------


def cmd_runs(args: argparse.Namespace) -> int:
    from textgen.core.text import visible
    from textgen.store.database import RunStore
    from textgen.training import jobs

    with RunStore() as store:
        jobs.reconcile(store)
        runs = store.list_runs()
        rows = [_run_summary(store, r) | {"created_at": r.created_at} for r in runs]
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print("no runs yet: python -m textgen train --corpus sample:dates --model gru")
    for row in rows:
        loss = row["metrics"].get("valid/loss", row["metrics"].get("train/loss"))
        loss_text = f"loss {loss:.3f}" if loss is not None else ""
        print(f"{row['id']}  {row['status']:<8}  {row['kind']:<14}  {visible(row['label'], 40):<40}  {loss_text}")
    return 0


# -- parser ---------------------------------------------------------------------------------


def _fields_help(config_class, leave_out: Sequence[str] = ()) -> str:
    """`name (valid values), ...` of a config's fields, from their declarations."""
    return ", ".join(f"{spec.name} ({spec.allowed})" if spec.allowed else spec.name
                     for spec in config_class.field_specs() if spec.name not in leave_out)


def _settings_groups() -> dict[str, list]:
    from textgen.data.config import CorpusConfig
    from textgen.decoding.config import DecodingConfig
    from textgen.training import planning

    return {"train --set (tokenizer, model, training)": [planning.setting_spec("tokenizer")] + [
                spec for cls in planning.SETTING_CONFIGS.values() for spec in cls.field_specs() if spec.name != "kind"],
            "generate / evaluate / compare --set (decoding)": DecodingConfig.field_specs(),
            "corpus inspect / add --set (reading and splitting)": CorpusConfig.field_specs()}


def cmd_settings(args: argparse.Namespace) -> int:
    groups = _settings_groups()
    if args.json:
        _print_json({title: [{"name": "tokenizer" if title.startswith("train") and spec.name == "kind" else spec.name,
                              "default": spec.default, "allowed": spec.allowed, "help": spec.help} for spec in specs]
                     for title, specs in groups.items()})
        return 0
    for title, specs in groups.items():
        print(title)
        for spec in specs:
            name = "tokenizer" if title.startswith("train") and spec.name == "kind" else spec.name
            print(f"  {name} = {spec.default!r}" + (f"  [{spec.allowed}]" if spec.allowed else ""))
            print(textwrap.fill(spec.help, width=100, initial_indent="      ", subsequent_indent="      "))
        print()
    return 0


def build_parser() -> argparse.ArgumentParser:
    from textgen.data.config import FORMATS, TOKENIZER_KINDS, CorpusConfig
    from textgen.decoding.config import STRATEGIES as DECODING_STRATEGIES
    from textgen.decoding.config import DecodingConfig
    from textgen.training import planning
    from textgen.training.config import TrainConfig

    parser = _Parser(
        prog="python -m textgen",
        description="TextGen Lab: train, compare and inspect text-generation models.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    corpus = commands.add_parser("corpus", help="built-in corpora, validation reports, registered corpora")
    corpus_commands = corpus.add_subparsers(dest="corpus_command", metavar="SUBCOMMAND", parser_class=_Parser)
    corpus_commands.required = True

    sample = corpus_commands.add_parser("sample", help="list the built-in corpora, or write one")
    sample.add_argument("name", nargs="?", help="a built-in corpus; omit to list them")
    sample.add_argument("--out", help="where to write it (default NAME.tsv or NAME.txt; - for stdout)")
    sample.add_argument("--size", type=int, help="number of examples (default: the corpus's own)")
    sample.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    sample.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    sample.add_argument("--json", action="store_true", help="list as JSON")
    sample.set_defaults(handler=cmd_corpus_sample)

    def reading_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("path", metavar="PATH", help="a corpus file, or sample:NAME")
        sub.add_argument("--format", default="auto", choices=list(FORMATS),
                         help="how to read it (default: detected from the content)")
        sub.add_argument("--source-field", help="CSV column / JSONL key holding the source")
        sub.add_argument("--target-field", help="CSV column / JSONL key holding the target")
        sub.add_argument("--set", action="append", metavar="KEY=VALUE",
                         help="other corpus settings: " + _fields_help(CorpusConfig, ("format", "source_field", "target_field")))
        sub.add_argument("--json", action="store_true", help="print one JSON object")

    inspect = corpus_commands.add_parser("inspect", help="the validation report of a corpus file")
    reading_options(inspect)
    inspect.add_argument("--tokenizer", default="word", choices=list(TOKENIZER_KINDS),
                         help="tokenizer for the vocabulary and out-of-vocabulary figures (default word)")
    inspect.add_argument("--vocab-size", type=int, default=8000, help="its vocabulary cap (default 8000)")
    inspect.set_defaults(handler=cmd_corpus_inspect)

    add = corpus_commands.add_parser("add", help="validate, split and register a corpus in the store")
    reading_options(add)
    add.add_argument("--label", help="a display name (default: the file name or sample name)")
    add.set_defaults(handler=cmd_corpus_add)

    listing = corpus_commands.add_parser("list", help="registered corpora")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_corpus_list)

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
                        help="training fields to change: " + _fields_help(TrainConfig))
    resume.add_argument("--foreground", action="store_true", help="train here instead of as a background job")
    resume.add_argument("--json", action="store_true")
    resume.set_defaults(handler=cmd_resume)

    delete = commands.add_parser("delete", help="delete a run (a running job is stopped first)")
    delete.add_argument("run")
    delete.set_defaults(handler=cmd_delete)

    def decoding_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--strategy", default="greedy", choices=list(DECODING_STRATEGIES))
        sub.add_argument("--beam-width", dest="beam_width", type=int, help="beam search width (default 4)")
        sub.add_argument("--temperature", type=float, help="sampling temperature (default 1.0)")
        sub.add_argument("--top-k", dest="top_k", type=int, help="sample among the k most likely tokens (0 = all)")
        sub.add_argument("--top-p", dest="top_p", type=float, help="nucleus sampling threshold (1.0 = off)")
        sub.add_argument("--seed", type=int, help="sampling seed")
        sub.add_argument("--max-length", dest="max_length", type=int, help="cap on generated tokens")
        sub.add_argument("--set", action="append", metavar="KEY=VALUE",
                         help="other decoding settings: " + _fields_help(
                             DecodingConfig, ("strategy", "beam_width", "temperature", "top_k", "top_p", "seed",
                                              "max_length")))
        sub.add_argument("--checkpoint", default="best", choices=["best", "last"])
        sub.add_argument("--json", action="store_true")

    generate = commands.add_parser("generate", help="generate from a trained run")
    generate.add_argument("run")
    generate.add_argument("--input", required=True, help="the source text (language models: the prompt)")
    decoding_options(generate)
    generate.set_defaults(handler=cmd_generate)

    evaluate = commands.add_parser("evaluate", help="BLEU, chrF, TER, ROUGE with 95%% confidence intervals")
    evaluate.add_argument("run")
    where = evaluate.add_mutually_exclusive_group()
    where.add_argument("--split", default="test", choices=["test", "valid", "train"])
    where.add_argument("--corpus", help="score an external file of source/target pairs instead")
    evaluate.add_argument("--max-examples", dest="max_examples", type=int, help="score only the first N")
    decoding_options(evaluate)
    evaluate.set_defaults(handler=cmd_evaluate)

    compare = commands.add_parser("compare", help="metrics of several runs and paired significance against the first")
    compare.add_argument("runs", nargs="+", metavar="RUN")
    compare.add_argument("--split", default="test", choices=["test", "valid"])
    compare.add_argument("--method", default="bs", choices=["bs", "ar"],
                         help="paired bootstrap (bs) or approximate randomisation (ar)")
    compare.add_argument("--max-examples", dest="max_examples", type=int)
    decoding_options(compare)
    compare.set_defaults(handler=cmd_compare)

    export = commands.add_parser("export", help="write a run's bundle: config, weights, tokenizers, metrics (.zip)")
    export.add_argument("run")
    export.add_argument("--out", help="where to write it (default RUN-bundle.zip)")
    export.add_argument("--checkpoint", default="best", choices=["best", "last"])
    export.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    export.set_defaults(handler=cmd_export)

    importing = commands.add_parser("import", help="add a run from a bundle (.zip) exported by TextGen")
    importing.add_argument("path", metavar="BUNDLE", help="the .zip file")
    importing.add_argument("--label", help="a display name (default: the bundle's)")
    importing.add_argument("--json", action="store_true")
    importing.set_defaults(handler=cmd_import)

    settings = commands.add_parser("settings", help="every setting --set takes: type, default, valid values, what it does")
    settings.add_argument("--json", action="store_true")
    settings.set_defaults(handler=cmd_settings)

    runs = commands.add_parser("runs", help="every run with its status and latest metrics")
    runs.add_argument("--json", action="store_true")
    runs.set_defaults(handler=cmd_runs)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except TextgenError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
