"""Managing finished runs: an overview (config, parameter count, checkpoints), a checked rename,
and every logged value as CSV."""

from __future__ import annotations

import dataclasses
import io
from typing import Any, Sequence

from textgen.core.errors import ConfigError
from textgen.store.database import RunRecord, RunStore
from textgen.training import artifacts

LABEL_MAX_CHARS = 100
METRIC_COLUMNS = ("run_id", "step", "epoch", "split", "name", "value", "time")


@dataclasses.dataclass(frozen=True)
class CheckpointSummary:
    name: str
    step: int
    epoch: float
    metrics: dict[str, float]
    is_best: bool
    is_last: bool


@dataclasses.dataclass(frozen=True)
class RunOverview:
    """What the Runs page shows about one run (plain data; the label is untrusted text)."""

    run_id: str
    label: str
    kind: str
    status: str
    corpus_id: str | None
    error: str | None
    config: dict[str, Any]
    parameter_count: int | None  # None when the stored config is not a model config we know
    checkpoints: list[CheckpointSummary]


def run_overview(store: RunStore, run: RunRecord) -> RunOverview:
    """Config, exact parameter count (from the config, no model is built) and checkpoints."""
    from textgen.models import ModelConfig, parameter_count

    try:
        count: int | None = parameter_count(ModelConfig.from_dict(dict(run.config["model"])))
    except (KeyError, TypeError, ValueError):  # ConfigError is a ValueError
        count = None
    checkpoints = artifacts.Checkpoints(store.run_dir(run.id))
    best, last = checkpoints.get("best"), checkpoints.get("last")
    summaries = [
        CheckpointSummary(info.name, info.step, info.epoch, dict(info.metrics),
                          is_best=best is not None and info.name == best.name,
                          is_last=last is not None and info.name == last.name)
        for info in checkpoints.list()
    ]
    return RunOverview(run.id, run.label, run.kind, run.status, run.corpus_id, run.error,
                       dict(run.config), count, summaries)


def clean_label(text: str, max_chars: int = LABEL_MAX_CHARS) -> str:
    """A new run label: surrounding whitespace stripped, inner runs of whitespace (line breaks,
    tabs) made one space, since a label is one line. Empty or too long raises ConfigError."""
    if not isinstance(text, str):
        raise ConfigError(f"a run label must be text, got {type(text).__name__}.")
    cleaned = " ".join(text.split())
    if not cleaned:
        raise ConfigError("a run label cannot be empty.")
    if len(cleaned) > max_chars:
        raise ConfigError(f"a run label must be at most {max_chars} characters, got {len(cleaned)}.")
    return cleaned


def rename_run(store: RunStore, run_id: str, text: str) -> RunRecord:
    """Give a run a new label (checked by `clean_label`); ids and folders never change."""
    return store.update_run(run_id, label=clean_label(text))


def metrics_csv(store: RunStore, run_ids: Sequence[str]) -> str:
    """Every logged value of some runs as CSV (run_id, step, epoch, split, name, value, time),
    through `core.tables.export_csv`, which makes formula-like text cells inert."""
    from textgen.core.tables import export_csv

    rows = [{column: getattr(row, column) for column in METRIC_COLUMNS}
            for row in store.get_metrics(run_ids)]
    buffer = io.StringIO()
    if rows:
        export_csv(rows, buffer)
    else:
        buffer.write(",".join(METRIC_COLUMNS) + "\n")
    return buffer.getvalue()
