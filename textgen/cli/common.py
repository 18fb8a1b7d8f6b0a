"""What the command modules share: the one-line-error argument parser, the exit status of a usage
error, JSON output, `--set key=value` parsing, the run id check, a run's summary and the help text
listing a config's fields.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Sequence

from textgen.core.errors import TextgenError

EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: one line, exit 2
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, sort_keys=False))


def parse_settings(pairs: Sequence[str]) -> dict[str, str]:
    settings: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise TextgenError(f"--set expects key=value, got {pair!r}.")
        settings[key.strip()] = value.strip()
    return settings


def existing_run(store, run_id: str) -> str:
    from textgen.store.database import check_id

    check_id(run_id, "run id")
    store.get_run(run_id)
    return run_id


def run_summary(store, run) -> dict[str, Any]:
    return {"run_id": run.id, "id": run.id, "label": run.label, "kind": run.kind, "status": run.status,
            "pid": run.pid, "error": run.error, "corpus_id": run.corpus_id,
            "metrics": store.latest_metrics(run.id)}


def fields_help(config_class, leave_out: Sequence[str] = ()) -> str:
    """`name (valid values), ...` of a config's fields, from their declarations."""
    return ", ".join(f"{spec.name} ({spec.allowed})" if spec.allowed else spec.name
                     for spec in config_class.field_specs() if spec.name not in leave_out)
