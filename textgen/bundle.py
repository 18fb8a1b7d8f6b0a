"""A run as something to read, rename or take away: its overview (config, parameter count,
checkpoints), a checked rename, the metrics CSV, and the export bundle.

The bundle is a zip built in memory with the run folder's own layout, so unzipping it gives a
folder that `textgen.artifacts.load_trained` loads like any run::

    <run_id>/run.json                       RunConfig
    <run_id>/run_record.json                id, label, kind, status, times (the store's row)
    <run_id>/source_tokenizer.json          (seq2seq models only)
    <run_id>/target_tokenizer.json
    <run_id>/checkpoints/index.json         {"best": NAME, "last": NAME}: the exported checkpoint
    <run_id>/checkpoints/NAME/              config.json, model.weights.h5, state.json
    <run_id>/metrics.csv                    every logged value
    <run_id>/README.txt                     how to load it

Member names are built from ids and fixed file names only (never from a label). The optimizer
state is left out: a bundle is for using a model, not for resuming its training.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import zipfile
from typing import Any, Sequence

from textgen import artifacts
from textgen.errors import ConfigError, StoreError
from textgen.store import RunRecord, RunStore

LABEL_MAX_CHARS = 100
METRIC_COLUMNS = ("run_id", "step", "epoch", "split", "name", "value", "time")
_CHECKPOINT_NAME = re.compile(r"^ckpt-[0-9]+$")
_CHECKPOINT_FILES = ("config.json", "model.weights.h5", artifacts.STATE_FILE)
_README = """TextGen Lab run {run_id} ({kind}), checkpoint {checkpoint} (step {step}).

Unzip, then in Python (with textgen installed):

    from pathlib import Path
    from textgen import artifacts
    from textgen.decoding import DecodingConfig, generate

    trained = artifacts.load_trained(Path("{run_id}"))
    outputs = generate(trained.model, trained.source_tokenizer, trained.target_tokenizer,
                       ["your input"], DecodingConfig())
    print(outputs[0].output)

run.json is the full configuration (corpus id, tokenizer, model, training); metrics.csv holds
every logged value (split, name, value by step).
"""


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
    through `evaluation.export_csv`, which makes formula-like text cells inert."""
    from textgen.evaluation import export_csv

    rows = [{column: getattr(row, column) for column in METRIC_COLUMNS}
            for row in store.get_metrics(run_ids)]
    buffer = io.StringIO()
    if rows:
        export_csv(rows, buffer)
    else:
        buffer.write(",".join(METRIC_COLUMNS) + "\n")
    return buffer.getvalue()


def bundle_file_name(run_id: str) -> str:
    """The download's file name: from the id only, never from the (untrusted) label."""
    return f"{run_id}-bundle.zip"


def export_bundle(store: RunStore, run_id: str, checkpoint: str = "best") -> bytes:
    """The run's zip bundle (layout in the module docstring) as bytes.

    checkpoint: "best" or "last". Raises StoreError when the run has no checkpoint yet.
    """
    run = store.get_run(run_id)
    run_dir = store.run_dir(run.id)
    info = artifacts.Checkpoints(run_dir).get(checkpoint)
    if info is None:
        raise StoreError(f"run {run.id} has no checkpoint yet; one is written at the first evaluation, "
                         "so there is nothing to export.")
    if not _CHECKPOINT_NAME.match(info.name):
        raise StoreError(f"run {run.id} has an unexpected checkpoint name {info.name!r}.")
    config_path = run_dir / artifacts.RUN_CONFIG_FILE
    if not config_path.exists():
        raise StoreError(f"run {run.id} has no {artifacts.RUN_CONFIG_FILE}; was it trained?")
    record = {"id": run.id, "label": run.label, "kind": run.kind, "status": run.status,
              "corpus_id": run.corpus_id, "created_at": run.created_at,
              "started_at": run.started_at, "finished_at": run.finished_at,
              "checkpoint": {"name": info.name, "step": info.step, "epoch": info.epoch,
                             "metrics": info.metrics}}
    root = run.id
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.write(config_path, f"{root}/{artifacts.RUN_CONFIG_FILE}")
        bundle.writestr(f"{root}/run_record.json", json.dumps(record, indent=2, ensure_ascii=False))
        for name in (artifacts.SOURCE_TOKENIZER_FILE, artifacts.TARGET_TOKENIZER_FILE):
            if (run_dir / name).exists():
                bundle.write(run_dir / name, f"{root}/{name}")
        folder = f"{root}/{artifacts.CHECKPOINTS_DIR}"
        bundle.writestr(f"{folder}/{artifacts.INDEX_FILE}",
                        json.dumps({"best": info.name, "last": info.name, "history": []}))
        for name in _CHECKPOINT_FILES:
            # Weights hardly compress; storing them saves time.
            compression = zipfile.ZIP_STORED if name.endswith(".h5") else zipfile.ZIP_DEFLATED
            bundle.write(info.path / name, f"{folder}/{info.name}/{name}", compress_type=compression)
        bundle.writestr(f"{root}/metrics.csv", metrics_csv(store, [run.id]))
        bundle.writestr(f"{root}/README.txt", _README.format(run_id=run.id, kind=run.kind,
                                                             checkpoint=info.name, step=info.step))
    return buffer.getvalue()
