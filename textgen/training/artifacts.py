"""What a run leaves on disk, and how a trained model is loaded back.

    runs/<run_id>/
        run.json                    RunConfig: corpus id + tokenizer, model and training configs
        source_tokenizer.json       (seq2seq only)
        target_tokenizer.json
        checkpoints/index.json      {"last": "ckpt-000120", "best": "ckpt-000100", "history": [...]}
        checkpoints/ckpt-000120/    config.json, model.weights.h5, optimizer.npz, state.json
        tensorboard/                event files (`tensorboard --logdir $TEXTGEN_HOME`)
        job.log                     the job's stdout/stderr

A checkpoint is complete before anything points at it: a new `ckpt-*` folder is written and
fsynced, then `index.json` is atomically replaced, and only then are folders nothing points at
removed. A job killed at any instant leaves the previous index pointing at complete folders; the
temporary files and unreferenced folders it left are removed by the next save (or resume). A
damaged index is rebuilt from the complete folders, and a damaged checkpoint falls back to the
newest earlier one that loads (`load_trained`), saying so in `TrainedModel.warning`. A failed
save (a full disk) removes what it had written, so the previous checkpoint stays the last.
Models are rebuilt from config.json with our own code (`textgen.models.load_model_dir`); nothing
is unpickled and `keras.models.load_model` is never used.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

from textgen.core.errors import ConfigError, StoreError
from textgen.core.fsutil import atomic_write_text, remove_temporaries
from textgen.data.config import TokenizerConfig
from textgen.models.config import ModelConfig
from textgen.training.config import TrainConfig

RUN_CONFIG_FILE = "run.json"
SOURCE_TOKENIZER_FILE = "source_tokenizer.json"
TARGET_TOKENIZER_FILE = "target_tokenizer.json"
CHECKPOINTS_DIR = "checkpoints"
INDEX_FILE = "index.json"
OPTIMIZER_FILE = "optimizer.npz"
STATE_FILE = "state.json"
TENSORBOARD_DIR = "tensorboard"
LOG_FILE = "job.log"
_CHECKPOINT_NAME = re.compile(r"^ckpt-[0-9]+$")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything needed to train (and retrain) a run, saved as run.json and in the store."""

    corpus_id: str
    tokenizer: TokenizerConfig
    model: ModelConfig
    train: TrainConfig
    # Held-out corpora given with --valid / --test instead of the corpus's own random split.
    valid_corpus_id: str | None = None
    test_corpus_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"corpus_id": self.corpus_id, "tokenizer": self.tokenizer.to_dict(),
                "model": self.model.to_dict(), "train": self.train.to_dict(),
                "valid_corpus_id": self.valid_corpus_id, "test_corpus_id": self.test_corpus_id}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        try:
            return cls(
                corpus_id=str(data["corpus_id"]),
                tokenizer=TokenizerConfig.from_dict(data["tokenizer"]),
                model=ModelConfig.from_dict(data["model"]),
                train=TrainConfig.from_dict(data["train"]),
                valid_corpus_id=data.get("valid_corpus_id"),
                test_corpus_id=data.get("test_corpus_id"),
            )
        except KeyError as missing:
            raise ConfigError(f"run config is missing {missing}; expected corpus_id, tokenizer, model, train.") from None


def save_run_config(run_dir: Path, config: RunConfig) -> None:
    atomic_write_text(run_dir / RUN_CONFIG_FILE, json.dumps(config.to_dict(), indent=2, sort_keys=True))


def load_run_config(run_dir: Path) -> RunConfig:
    path = run_dir / RUN_CONFIG_FILE
    if not path.exists():
        raise StoreError(f"run folder {run_dir.name} has no {RUN_CONFIG_FILE}; was it trained?")
    return RunConfig.from_dict(json.loads(path.read_text(encoding="utf-8")))


@dataclasses.dataclass(frozen=True)
class CheckpointInfo:
    name: str  # "ckpt-000120"
    path: Path
    step: int
    epoch: float
    metrics: dict[str, float]
    time: float


class Checkpoints:
    """The best and last checkpoints of one run, saved atomically through an index file."""

    def __init__(self, run_dir: Path) -> None:
        self.directory = run_dir / CHECKPOINTS_DIR
        self.directory.mkdir(parents=True, exist_ok=True)

    def _index(self) -> dict[str, Any]:
        path = self.directory / INDEX_FILE
        if not path.exists():
            return {}
        try:
            index = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(index, dict) or not all(
                isinstance(index.get(key), (str, type(None))) for key in ("best", "last")
            ) or not isinstance(index.get("history", []), list):
                raise ValueError("not a checkpoint index")
            return index
        except (ValueError, UnicodeDecodeError):  # damaged on disk: rebuild from the folders
            return self._recovered_index()

    def _recovered_index(self) -> dict[str, Any]:
        """An index from the complete checkpoint folders: the newest is "last", the lowest
        validation loss (or the newest) is "best"."""
        complete = []
        for entry in sorted(self.directory.glob("ckpt-*")):
            try:
                complete.append(self._info(entry.name))
            except StoreError:
                continue
        if not complete:
            return {}
        complete.sort(key=lambda info: info.step)
        with_loss = [info for info in complete if isinstance(info.metrics.get("loss"), (int, float))]
        best = min(with_loss, key=lambda info: info.metrics["loss"]) if with_loss else complete[-1]
        return {"last": complete[-1].name, "best": best.name, "history": [info.name for info in complete]}

    def get(self, which: str = "best") -> CheckpointInfo | None:
        """The "best" or "last" checkpoint, or None when the run has none yet."""
        if which not in ("best", "last"):
            raise ValueError(f"which must be 'best' or 'last', got {which!r}")
        name = self._index().get(which)
        return self._info(name) if name else None

    def _info(self, name: str) -> CheckpointInfo:
        """A checkpoint's state; StoreError when its folder is missing or damaged."""
        path = self.directory / name
        if not _CHECKPOINT_NAME.match(name) or not (path / STATE_FILE).is_file():
            raise StoreError(f"checkpoint {name!r} of run {self.directory.parent.name} is missing or incomplete.")
        try:
            state = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
            return CheckpointInfo(name, path, int(state["step"]), float(state["epoch"]),
                                  dict(state.get("metrics", {})), float(state["time"]))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
            raise StoreError(f"checkpoint {name} of run {self.directory.parent.name} is damaged "
                             f"({STATE_FILE}: {type(error).__name__}).") from None

    def list(self) -> list[CheckpointInfo]:
        """Every kept checkpoint (best, last and the recent history), oldest first."""
        infos = []
        for name in _referenced(self._index()):
            try:
                infos.append(self._info(name))
            except StoreError:
                continue  # damaged: not offered
        return sorted(infos, key=lambda info: info.step)

    def save(self, model: Any, optimizer: Any, *, step: int, epoch: float,
             metrics: dict[str, float], best: bool, keep_history: int = 0) -> CheckpointInfo:
        """Write a checkpoint for `step` as the new "last" (and "best" if `best`), keeping the
        `keep_history` most recent earlier ones too (the attention viewer's checkpoint slider)."""
        from textgen.models.persistence import save_model

        name = f"ckpt-{step:09d}"
        index = self._index()
        self.remove_leftovers(index)  # of a job killed mid-save
        path = self.directory / name
        if path.exists() and name not in _referenced(index):
            shutil.rmtree(path)
        rewriting = path.exists()
        try:
            path.mkdir(exist_ok=True)
            save_model(model, path)
            if optimizer is not None:
                save_optimizer(optimizer, path / OPTIMIZER_FILE)
            state = {"step": step, "epoch": epoch, "metrics": metrics, "time": time.time()}
            atomic_write_text(path / STATE_FILE, json.dumps(state))
            history = [n for n in index.get("history", []) if n != name] + [name]
            index["history"] = history[-keep_history:] if keep_history > 0 else []
            index["last"] = name
            if best or "best" not in index:
                index["best"] = name
            atomic_write_text(self.directory / INDEX_FILE, json.dumps(index))
        except BaseException:
            # A failed save (disk full, interrupted) leaves the previous checkpoints as they were and
            # frees what it wrote.
            if not rewriting and name not in _referenced(self._index()):
                shutil.rmtree(path, ignore_errors=True)
            raise
        self._remove_unreferenced(_referenced(index))
        return self.get("last")  # type: ignore[return-value]

    def remove_leftovers(self, index: dict[str, Any] | None = None) -> None:
        """Remove what a job killed mid-save left: temporary files, and checkpoint folders the
        index does not point at. Only the run's writer (its job, or resume) calls this."""
        index = self._index() if index is None else index
        remove_temporaries(self.directory)
        for name in _referenced(index):
            remove_temporaries(self.directory / name)
        self._remove_unreferenced(_referenced(index))

    def _remove_unreferenced(self, keep: set[str]) -> None:
        for entry in self.directory.iterdir():
            if entry.is_dir() and entry.name not in keep:
                shutil.rmtree(entry, ignore_errors=True)


def _referenced(index: dict[str, Any]) -> set[str]:
    return {name for name in (index.get("best"), index.get("last"), *index.get("history", [])) if name}


def save_optimizer(optimizer: Any, path: Path) -> None:
    """The optimizer's variables (step count, Adam moments) as an .npz, written atomically."""
    import numpy as np

    from textgen.core.fsutil import atomic_path

    arrays = {f"v{i:05d}": np.asarray(variable.numpy()) for i, variable in enumerate(optimizer.variables)}
    with atomic_path(path, suffix=".npz") as temporary:
        with open(temporary, "wb") as handle:
            np.savez(handle, **arrays)


def restore_optimizer(optimizer: Any, trainable_variables: list[Any], path: Path) -> bool:
    """Load what `save_optimizer` wrote into a freshly built optimizer; False if it does not fit."""
    import numpy as np

    if not path.exists():
        return False
    if not optimizer.built:
        optimizer.build(trainable_variables)
    with np.load(path) as saved:
        arrays = [saved[key] for key in sorted(saved.files)]
    if len(arrays) != len(optimizer.variables) or any(
        tuple(a.shape) != tuple(v.shape) for a, v in zip(arrays, optimizer.variables)
    ):
        return False
    for variable, value in zip(optimizer.variables, arrays):
        # The (constant) learning rate is an optimizer variable too; a resumed run may change it.
        if variable.name != "learning_rate":
            variable.assign(value)
    return True


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    """A model with its tokenizers and configs, loaded from a run's checkpoint."""

    run_id: str
    config: RunConfig
    model: Any  # textgen.models.Seq2SeqModel
    source_tokenizer: Any  # textgen.data.tokenizers.Tokenizer, None for decoder-only models
    target_tokenizer: Any
    checkpoint: CheckpointInfo
    # Set when the asked-for checkpoint was damaged and an earlier one was loaded instead.
    warning: str | None = None


def load_checkpoint_model(checkpoints: Checkpoints, info: CheckpointInfo) -> tuple[Any, CheckpointInfo, str | None]:
    """The model of checkpoint `info`; if that one is damaged, of the newest earlier checkpoint
    that loads, with a warning saying so. StoreError when none loads."""
    from textgen.models.persistence import load_model_dir

    candidates = [info] + sorted((c for c in checkpoints.list() if c.step < info.step),
                                 key=lambda c: c.step, reverse=True)
    problems = []
    for candidate in candidates:
        try:
            model = load_model_dir(candidate.path)
        except StoreError as error:
            problems.append(str(error))
            continue
        warning = None
        if candidate.name != info.name:
            warning = (f"checkpoint {info.name} is damaged ({problems[0]}); using the earlier checkpoint "
                       f"{candidate.name} (step {candidate.step}) instead.")
        return model, candidate, warning
    raise StoreError(f"no checkpoint of run {checkpoints.directory.parent.name} can be loaded: "
                     + " ".join(problems) + " Retrain the run, or resume it with a fresh start.")


def load_trained(run_dir: Path, which: str = "best", checkpoint_name: str | None = None) -> TrainedModel:
    """Rebuild a run's model from a checkpoint (best, last, or a named one) and its tokenizers.
    A damaged checkpoint falls back to the newest earlier one that loads (see `warning`)."""
    from textgen.data.tokenizers import Tokenizer

    config = load_run_config(run_dir)
    checkpoints = Checkpoints(run_dir)
    if checkpoint_name is not None:
        matches = [c for c in checkpoints.list() if c.name == checkpoint_name]
        info = matches[0] if matches else None
    else:
        try:
            info = checkpoints.get(which)
        except StoreError:  # the index points at a damaged folder: the newest one that is whole
            listed = checkpoints.list()
            info = listed[-1] if listed else None
    if info is None:
        raise StoreError(
            f"run {run_dir.name} has no {checkpoint_name or which} checkpoint yet; "
            "a checkpoint is written at the first evaluation."
        )
    model, info, warning = load_checkpoint_model(checkpoints, info)
    source = run_dir / SOURCE_TOKENIZER_FILE
    return TrainedModel(
        run_id=run_dir.name,
        config=config,
        model=model,
        source_tokenizer=Tokenizer.load(source) if source.exists() else None,
        target_tokenizer=Tokenizer.load(run_dir / TARGET_TOKENIZER_FILE),
        checkpoint=info,
        warning=warning,
    )


def remove_incomplete(run_dir: Path) -> None:
    """Remove checkpoint folders the index does not point at and temporary files (after a crash)."""
    remove_temporaries(run_dir)
    Checkpoints(run_dir).remove_leftovers()
