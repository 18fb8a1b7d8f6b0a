"""`generate`, `evaluate` and `compare`: decoding with a trained run, scoring it on a split or an
external corpus, and scoring several runs with paired significance against the first. The three
share the decoding options.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from textgen.cli.common import existing_run, fields_help, parse_settings, print_json
from textgen.core.errors import TextgenError


def _decoding_config(args: argparse.Namespace):
    from textgen.decoding import DecodingConfig

    overrides: dict[str, Any] = {"strategy": args.strategy}
    for name in ("beam_width", "temperature", "top_k", "top_p", "seed", "max_length"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    overrides.update(parse_settings(args.set or []))
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
        trained = artifacts.load_trained(store.run_dir(existing_run(store, args.run)), args.checkpoint)
    if trained.warning:
        print(f"warning: {trained.warning}", file=sys.stderr)
    generation = generate(trained.model, trained.source_tokenizer, trained.target_tokenizer, [args.input],
                          config, max_source_length=trained.config.model.max_source_length)[0]
    key = "self_attention" if trained.config.model.is_decoder_only else "cross_attention"
    matrix = attention_matrix(generation.attention, key)
    if args.json:
        print_json({
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
        run_id = existing_run(store, args.run)
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
        print_json({"run_id": run_id, "split": split, **_metrics_json(result),
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
        records = [store.get_run(existing_run(store, run_id)) for run_id in args.runs]
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
        print_json({"baseline": baseline, "split": args.split, "method": args.method, "runs": rows,
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


def _decoding_options(sub: argparse.ArgumentParser) -> None:
    from textgen.decoding.config import STRATEGIES as DECODING_STRATEGIES
    from textgen.decoding.config import DecodingConfig

    sub.add_argument("--strategy", default="greedy", choices=list(DECODING_STRATEGIES))
    sub.add_argument("--beam-width", dest="beam_width", type=int, help="beam search width (default 4)")
    sub.add_argument("--temperature", type=float, help="sampling temperature (default 1.0)")
    sub.add_argument("--top-k", dest="top_k", type=int, help="sample among the k most likely tokens (0 = all)")
    sub.add_argument("--top-p", dest="top_p", type=float, help="nucleus sampling threshold (1.0 = off)")
    sub.add_argument("--seed", type=int, help="sampling seed")
    sub.add_argument("--max-length", dest="max_length", type=int, help="cap on generated tokens")
    sub.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="other decoding settings: " + fields_help(
                         DecodingConfig, ("strategy", "beam_width", "temperature", "top_k", "top_p", "seed",
                                          "max_length")))
    sub.add_argument("--checkpoint", default="best", choices=["best", "last"])
    sub.add_argument("--json", action="store_true")


def register(commands) -> None:
    """`generate`, `evaluate` and `compare`, on the top parser's `commands`."""
    generate = commands.add_parser("generate", help="generate from a trained run")
    generate.add_argument("run")
    generate.add_argument("--input", required=True, help="the source text (language models: the prompt)")
    _decoding_options(generate)
    generate.set_defaults(handler=cmd_generate)

    evaluate = commands.add_parser("evaluate", help="BLEU, chrF, TER, ROUGE with 95%% confidence intervals")
    evaluate.add_argument("run")
    where = evaluate.add_mutually_exclusive_group()
    where.add_argument("--split", default="test", choices=["test", "valid", "train"])
    where.add_argument("--corpus", help="score an external file of source/target pairs instead")
    evaluate.add_argument("--max-examples", dest="max_examples", type=int, help="score only the first N")
    _decoding_options(evaluate)
    evaluate.set_defaults(handler=cmd_evaluate)

    compare = commands.add_parser("compare", help="metrics of several runs and paired significance against the first")
    compare.add_argument("runs", nargs="+", metavar="RUN")
    compare.add_argument("--split", default="test", choices=["test", "valid"])
    compare.add_argument("--method", default="bs", choices=["bs", "ar"],
                         help="paired bootstrap (bs) or approximate randomisation (ar)")
    compare.add_argument("--max-examples", dest="max_examples", type=int)
    _decoding_options(compare)
    compare.set_defaults(handler=cmd_compare)
