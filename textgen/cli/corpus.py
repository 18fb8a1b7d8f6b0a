"""`corpus sample|inspect|add|list`: the built-in corpora, a corpus file's validation report, and the
corpora registered in the store.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from textgen.cli.common import Parser, fields_help, parse_settings, print_json
from textgen.core.errors import TextgenError


def _corpus_config(args: argparse.Namespace):
    from textgen.data.config import CorpusConfig

    overrides: dict[str, Any] = {"format": args.format}
    if args.source_field:
        overrides["source_field"] = args.source_field
    if args.target_field:
        overrides["target_field"] = args.target_field
    overrides.update(parse_settings(args.set or []))
    return CorpusConfig().with_overrides(overrides, from_text=True)


def cmd_corpus_sample(args: argparse.Namespace) -> int:
    from textgen.data import registry
    from textgen.data.samples import catalog

    if args.name is None:
        if args.json:
            print_json([
                {"name": s.name, "kind": s.kind, "description": s.description,
                 "default_size": s.default_size, "example_source": s.example_source,
                 "example_target": s.example_target}
                for s in catalog.SAMPLES.values()
            ])
        else:
            width = max(len(name) for name in catalog.SAMPLES)
            for spec in catalog.SAMPLES.values():
                print(f"{spec.name:<{width}}  {spec.kind:<5}  {spec.description}")
            print("\nWrite one with: python -m textgen corpus sample NAME [--out PATH]; "
                  "use one anywhere a corpus is accepted as sample:NAME.")
        return 0
    if args.name not in catalog.SAMPLES:
        raise TextgenError(
            f"unknown sample corpus {args.name!r}; choose one of: {', '.join(catalog.sample_names())}."
        )
    if args.out == "-":
        sys.stdout.buffer.write(catalog.sample_bytes(args.name, size=args.size, seed=args.seed))
        return 0
    out = args.out or f"{args.name}{catalog.sample_file_suffix(args.name)}"
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
        print_json(report)
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
        print_json(result)
    else:
        print(f"registered {record.id} ({record.format}, {record.num_examples} examples)")
    return 0


def cmd_corpus_list(args: argparse.Namespace) -> int:
    from textgen.core.text import visible
    from textgen.store.database import RunStore

    with RunStore() as store:
        records = store.list_corpora()
    if args.json:
        print_json([{"id": r.id, "label": r.label, "origin": r.origin, "format": r.format,
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


def _reading_options(sub: argparse.ArgumentParser) -> None:
    from textgen.data.config import FORMATS, CorpusConfig

    sub.add_argument("path", metavar="PATH", help="a corpus file, or sample:NAME")
    sub.add_argument("--format", default="auto", choices=list(FORMATS),
                     help="how to read it (default: detected from the content)")
    sub.add_argument("--source-field", help="CSV column / JSONL key holding the source")
    sub.add_argument("--target-field", help="CSV column / JSONL key holding the target")
    sub.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="other corpus settings: " + fields_help(CorpusConfig, ("format", "source_field", "target_field")))
    sub.add_argument("--json", action="store_true", help="print one JSON object")


def register(commands) -> None:
    """`corpus` and its subcommands, on the top parser's `commands`."""
    from textgen.data.config import TOKENIZER_KINDS

    corpus = commands.add_parser("corpus", help="built-in corpora, validation reports, registered corpora")
    corpus_commands = corpus.add_subparsers(dest="corpus_command", metavar="SUBCOMMAND", parser_class=Parser)
    corpus_commands.required = True

    sample = corpus_commands.add_parser("sample", help="list the built-in corpora, or write one")
    sample.add_argument("name", nargs="?", help="a built-in corpus; omit to list them")
    sample.add_argument("--out", help="where to write it (default NAME.tsv or NAME.txt; - for stdout)")
    sample.add_argument("--size", type=int, help="number of examples (default: the corpus's own)")
    sample.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    sample.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    sample.add_argument("--json", action="store_true", help="list as JSON")
    sample.set_defaults(handler=cmd_corpus_sample)

    inspect = corpus_commands.add_parser("inspect", help="the validation report of a corpus file")
    _reading_options(inspect)
    inspect.add_argument("--tokenizer", default="word", choices=list(TOKENIZER_KINDS),
                         help="tokenizer for the vocabulary and out-of-vocabulary figures (default word)")
    inspect.add_argument("--vocab-size", type=int, default=8000, help="its vocabulary cap (default 8000)")
    inspect.set_defaults(handler=cmd_corpus_inspect)

    add = corpus_commands.add_parser("add", help="validate, split and register a corpus in the store")
    _reading_options(add)
    add.add_argument("--label", help="a display name (default: the file name or sample name)")
    add.set_defaults(handler=cmd_corpus_add)

    listing = corpus_commands.add_parser("list", help="registered corpora")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_corpus_list)
