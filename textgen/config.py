"""Frozen configuration dataclasses, saved with every corpus and run as JSON.

Each config validates itself in `__post_init__` and raises `ConfigError` naming the field, the
value received and the valid range, so a bad value from a form, the CLI (`--set key=value`) or a
crafted URL is refused before any job exists. Configs round-trip through `to_dict` / `from_dict`;
nothing is pickled.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, TypeVar

from textgen.errors import ConfigError

C = TypeVar("C")


def check_range(name: str, value: Any, low: float | None = None, high: float | None = None) -> None:
    """Raise ConfigError unless low <= value <= high (either bound may be None)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}.")
    if value != value:  # NaN
        raise ConfigError(f"{name} must be a number, got NaN.")
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"between {low} and {high}" if low is not None and high is not None else (
            f"at least {low}" if low is not None else f"at most {high}")
        raise ConfigError(f"{name} must be {span}, got {value!r}.")


def check_choice(name: str, value: Any, choices: typing.Iterable[str]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}.")


class ConfigMixin:
    """to_dict / from_dict / with_overrides for frozen dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[arg-type]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__} must be a JSON object, got {type(data).__name__}.")
        unknown = sorted(set(data) - set(cls.field_names()))  # type: ignore[attr-defined]
        if unknown:
            raise ConfigError(
                f"unknown {cls.__name__} key(s): {', '.join(unknown)}. "
                f"Valid keys: {', '.join(cls.field_names())}."  # type: ignore[attr-defined]
            )
        hints = typing.get_type_hints(cls)
        values = {k: _coerce(k, v, hints[k], from_text=False) for k, v in data.items()}
        return cls(**values)

    @classmethod
    def from_json(cls: type[C], text: str) -> C:
        return cls.from_dict(json.loads(text))  # type: ignore[attr-defined]

    def with_overrides(self: C, overrides: dict[str, Any], *, from_text: bool = False) -> C:
        """A copy with some fields replaced. With from_text, values are strings ("key=value" from
        the CLI or a URL) parsed according to the field's type."""
        cls = type(self)
        names = cls.field_names()  # type: ignore[attr-defined]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise ConfigError(
                f"unknown {cls.__name__} key(s): {', '.join(unknown)}. Valid keys: {', '.join(names)}."
            )
        hints = typing.get_type_hints(cls)
        values = {k: _coerce(k, v, hints[k], from_text=from_text) for k, v in overrides.items()}
        return dataclasses.replace(self, **values)  # type: ignore[type-var]


def _coerce(name: str, value: Any, hint: Any, *, from_text: bool) -> Any:
    """Convert JSON / text values to the field's declared type, refusing what does not fit."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        non_none = [a for a in args if a is not type(None)]
        if value is None or (from_text and str(value).lower() in ("none", "null", "")):
            if type(None) in args:
                return None
        return _coerce(name, value, non_none[0], from_text=from_text)
    if origin is tuple:
        if from_text and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list, got {value!r}.")
        item = args[0] if args else str
        return tuple(_coerce(name, v, item, from_text=from_text) for v in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if from_text and str(value).lower() in ("true", "1", "yes", "on"):
            return True
        if from_text and str(value).lower() in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {value!r}.")
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(f"{name} must be an integer, got {value!r}.")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if from_text and isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ConfigError(f"{name} must be an integer, got {value!r}.")
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(f"{name} must be a number, got {value!r}.")
        if isinstance(value, (int, float)):
            return float(value)
        if from_text and isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ConfigError(f"{name} must be a number, got {value!r}.")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{name} must be a string, got {value!r}.")
    return value


FORMATS = ("auto", "text", "tsv", "csv", "jsonl")
TOKENIZER_KINDS = ("char", "word", "bpe", "wordpiece")


@dataclasses.dataclass(frozen=True)
class CorpusConfig(ConfigMixin):
    """How a corpus file is read, checked and split."""

    # Detected from the content when "auto"; the file name is never trusted.
    format: str = "auto"
    # CSV column / JSONL key holding the source; None picks an obvious one (source, input, question...).
    source_field: str | None = None
    # CSV column / JSONL key holding the target; None picks an obvious one (target, output, answer...).
    target_field: str | None = None
    # Files larger than this are refused before parsing (matches the app's upload cap).
    max_bytes: int = 50 * 1024 * 1024
    # Lines longer than this many characters are rejected (reported with their line number).
    max_line_chars: int = 2000
    # Fraction of examples held out for validation (early stopping, probe samples).
    valid_fraction: float = 0.1
    # Fraction of examples held out for the final test score.
    test_fraction: float = 0.1
    # Seed of the split; the same file, config and seed always give the same split.
    split_seed: int = 1234
    # Drop examples whose (source, target) repeats an earlier one, keeping the first.
    deduplicate: bool = False

    def __post_init__(self) -> None:
        check_choice("format", self.format, FORMATS)
        check_range("max_bytes", self.max_bytes, 1, 2 * 1024**3)
        check_range("max_line_chars", self.max_line_chars, 10, 10_000_000)
        check_range("valid_fraction", self.valid_fraction, 0.0, 0.5)
        check_range("test_fraction", self.test_fraction, 0.0, 0.5)
        check_range("split_seed", self.split_seed, 0, 2**31 - 1)
        if self.valid_fraction + self.test_fraction >= 0.9:
            raise ConfigError(
                "valid_fraction + test_fraction must leave at least 10% for training, "
                f"got {self.valid_fraction} + {self.test_fraction}."
            )


@dataclasses.dataclass(frozen=True)
class TokenizerConfig(ConfigMixin):
    """How text becomes token ids (one tokenizer for the source side, one for the target side)."""

    # char: one token per character; word: words with punctuation split off; bpe / wordpiece:
    # subwords learned on the training split with HF `tokenizers`.
    kind: str = "word"
    # Upper bound on the vocabulary, special tokens included; rarer tokens map to <unk>.
    vocab_size: int = 8000
    # Tokens seen fewer times than this in training are left out of the vocabulary.
    min_frequency: int = 1
    # Lower-case everything before tokenising (then generated text is lower-case too).
    lowercase: bool = False

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, TOKENIZER_KINDS)
        check_range("vocab_size", self.vocab_size, 8, 1_000_000)
        check_range("min_frequency", self.min_frequency, 1, 1_000_000)


OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("constant", "inverse_sqrt", "cosine")
EARLY_STOPPING_METRICS = ("valid_loss", "bleu")
STRATEGIES = ("default", "mirrored", "multi-worker")
# What the matrix products of a training step read: float32, or float32 rounded to bfloat16
# (float32 accumulation and float32 everything else; see TrainConfig.matmul_precision).
MATMUL_PRECISIONS = ("float32", "bfloat16")


@dataclasses.dataclass(frozen=True)
class TrainConfig(ConfigMixin):
    """How a model is trained. Saved with the run; `--set key=value` overrides any field."""

    # Passes over the training split (a time budget may end training sooner).
    epochs: int = 10
    # Stop after this many optimizer steps in all if the epochs would run longer (0 = the epochs
    # decide); the learning-rate schedule spans the planned steps (nanoGPT's max_iters).
    max_steps: int = 0
    # Examples per batch (per replica count: the global batch under a distribution strategy).
    batch_size: int = 64
    # Peak learning rate (after warm-up for the inverse_sqrt and cosine schedules).
    learning_rate: float = 1e-3
    # adam, or adamw (decoupled weight decay, below).
    optimizer: str = "adam"
    # AdamW's decoupled weight decay, applied to matrices and embeddings only (biases and
    # LayerNorm scales are not decayed, as in nanoGPT and BERT); ignored by adam.
    weight_decay: float = 0.01
    # Adam's first-moment decay (beta_1), the Adam paper's and Keras' default.
    beta_1: float = 0.9
    # Adam's second-moment decay (beta_2); nanoGPT lowers it to 0.99 when batches hold few tokens.
    beta_2: float = 0.999
    # constant; inverse_sqrt (linear warm-up then 1/sqrt(step), "Attention is all you need"); cosine
    # (linear warm-up then cosine decay to 10% of the peak by the last planned step).
    schedule: str = "constant"
    # Steps of linear warm-up for inverse_sqrt and cosine.
    warmup_steps: int = 200
    # Clip the global gradient norm to this (0 turns clipping off).
    clip_norm: float = 1.0
    # Label smoothing of the cross-entropy (0 = plain cross-entropy).
    label_smoothing: float = 0.0
    # Stop after this many evaluations without improvement (0 = never stop early).
    early_stopping_patience: int = 0
    # What "best" means for early stopping and the best checkpoint.
    early_stopping_metric: str = "valid_loss"
    # An evaluation improves on the best only by more than this (loss units, or BLEU points).
    early_stopping_min_delta: float = 0.0
    # Time budget in minutes: stop cleanly when spent, keeping the best checkpoint (0 = none).
    minutes: float = 0.0
    # Evaluate every this many steps (0 = once per epoch).
    eval_every_steps: int = 0
    # Validation examples decoded (greedily) at each evaluation for BLEU and chrF (0 = skip scores).
    eval_bleu_examples: int = 200
    # Fixed validation sources decoded at every evaluation and kept, to watch outputs evolve.
    num_probe_samples: int = 8
    # Earlier evaluation checkpoints kept besides best and last (the attention viewer's slider).
    keep_checkpoints: int = 5
    # Training loss is written to the store at most this often (seconds).
    log_every_seconds: float = 1.0
    # Compile the training step with XLA (measured per family; batches are bucketed to few shapes).
    jit_compile: bool = False
    # float32, or bfloat16: in the training and validation passes the projections (every Dense
    # layer and the output projection) multiply inputs and weights rounded to bfloat16 (float32
    # accumulation, the result rounded to bfloat16); weights, optimizer, norms, softmax, attention
    # scores and all decoding stay float32. Faster on CPUs with native bfloat16 (AVX512-BF16,
    # AMX; bench/RESULTS.md); others emulate it. Checkpoints are the same either way.
    matmul_precision: str = "float32"
    # Threads TensorFlow may use inside one op. 0 = chosen per family and machine
    # (`training.thread_layout`): 1 for the Transformer families on up to 2 cores, where one
    # thread per op with ops and batch slices side by side measured about 10% faster; otherwise
    # TensorFlow's default (all cores). To keep a core free for the app, set this and
    # inter_op_threads to 1.
    intra_op_threads: int = 0
    # Ops TensorFlow may run at once. 0 = the core count where intra_op_threads resolves to the
    # sliced layout above; as many as intra_op_threads when that is set, up to 2; otherwise
    # TensorFlow's default (all cores).
    inter_op_threads: int = 0
    # Compute each batch as this many independent slices side by side (the same results): with
    # one thread per op and inter_op_threads at the core count, every core stays busy on a small
    # model (bench/RESULTS.md). 0 = the core count in the sliced layout above, otherwise 1 (the
    # whole batch at once). The recurrent families measured no faster sliced.
    batch_parts: int = 0
    # default (one device), mirrored (all local GPUs/devices), or multi-worker (TF_CONFIG cluster).
    strategy: str = "default"
    # Seed for weight initialisation, shuffling and dropout.
    seed: int = 0

    def __post_init__(self) -> None:
        check_range("epochs", self.epochs, 0, 10_000)
        check_range("max_steps", self.max_steps, 0, 100_000_000)
        check_range("batch_size", self.batch_size, 1, 65_536)
        check_range("learning_rate", self.learning_rate, 1e-8, 10.0)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_range("weight_decay", self.weight_decay, 0.0, 1.0)
        check_range("beta_1", self.beta_1, 0.0, 0.9999)
        check_range("beta_2", self.beta_2, 0.0, 0.99999)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_range("warmup_steps", self.warmup_steps, 0, 10_000_000)
        check_range("clip_norm", self.clip_norm, 0.0, 1e6)
        check_range("label_smoothing", self.label_smoothing, 0.0, 0.5)
        check_range("early_stopping_patience", self.early_stopping_patience, 0, 10_000)
        check_choice("early_stopping_metric", self.early_stopping_metric, EARLY_STOPPING_METRICS)
        check_range("early_stopping_min_delta", self.early_stopping_min_delta, 0.0, 1e6)
        check_range("minutes", self.minutes, 0.0, 60 * 24 * 30)
        check_range("eval_every_steps", self.eval_every_steps, 0, 10_000_000)
        check_range("eval_bleu_examples", self.eval_bleu_examples, 0, 100_000)
        check_range("num_probe_samples", self.num_probe_samples, 0, 100)
        check_range("keep_checkpoints", self.keep_checkpoints, 0, 1000)
        check_range("log_every_seconds", self.log_every_seconds, 0.0, 3600)
        check_choice("matmul_precision", self.matmul_precision, MATMUL_PRECISIONS)
        check_range("intra_op_threads", self.intra_op_threads, 0, 1024)
        check_range("inter_op_threads", self.inter_op_threads, 0, 1024)
        check_range("batch_parts", self.batch_parts, 0, 64)
        check_choice("strategy", self.strategy, STRATEGIES)
        check_range("seed", self.seed, 0, 2**31 - 1)

    def planned_steps(self, steps_per_epoch: int) -> int:
        """Steps the run is planned for: the epochs', capped by max_steps when set."""
        steps = self.epochs * steps_per_epoch
        return min(steps, self.max_steps) if self.max_steps else steps
