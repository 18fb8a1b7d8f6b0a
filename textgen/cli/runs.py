"""`runs`, `export`, `import` and `settings`: the runs in the store with their status and latest
metrics, a run's bundle written out or added back, and every setting `--set` takes.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap

from textgen.cli.common import existing_run, print_json, run_summary
from textgen.core.errors import TextgenError


def cmd_export(args: argparse.Namespace) -> int:
    from textgen.runs import bundle
    from textgen.store.database import RunStore

    with RunStore() as store:
        data = bundle.export_bundle(store, existing_run(store, args.run), args.checkpoint)
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
        summary = run_summary(store, run)
    if args.json:
        print_json(summary)
    else:
        print(f"imported {run.id} ({run.kind}); generate with: python -m textgen generate {run.id} --input TEXT")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from textgen.core.text import visible
    from textgen.store.database import RunStore
    from textgen.training import jobs

    with RunStore() as store:
        jobs.reconcile(store)
        runs = store.list_runs()
        rows = [run_summary(store, r) | {"created_at": r.created_at} for r in runs]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no runs yet: python -m textgen train --corpus sample:dates --model gru")
    for row in rows:
        loss = row["metrics"].get("valid/loss", row["metrics"].get("train/loss"))
        loss_text = f"loss {loss:.3f}" if loss is not None else ""
        print(f"{row['id']}  {row['status']:<8}  {row['kind']:<14}  {visible(row['label'], 40):<40}  {loss_text}")
    return 0


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
        print_json({title: [{"name": "tokenizer" if title.startswith("train") and spec.name == "kind" else spec.name,
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


def register(commands) -> None:
    """`export`, `import`, `settings` and `runs`, on the top parser's `commands`."""
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
