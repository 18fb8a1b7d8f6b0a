"""What a corpus or a run will be before it is saved or started, and how far a running job is.

The app's Corpus and Train pages show these figures; the functions take and return plain data
(dicts, lists, dataclasses of numbers and strings) so the pages stay thin and the figures can be
tested and used from Python.

Training time is estimated from the model's FLOPs per target token (`textgen.models.size`):

    seconds ≈ START_UP_SECONDS + epochs × tokens per epoch × TRAINING_FLOPS_FACTOR × FLOPs/token
                                 ÷ (FLOP/s actually reached)

The achieved FLOP rate comes, when possible, from finished runs of the same model family in the
store (their logged tokens per second times their own FLOPs per token: the rate this machine
really reached, evaluations included); otherwise from `REFERENCE_CPU_FLOPS`, measured on the
2-core reference machine. Small models reach a small share of a CPU's peak (per-step overhead
dominates), so the reference figure is pessimistic for large models; a measured run of the same
family is much closer.
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
import time
from typing import Any

from textgen.core.errors import ConfigError
from textgen.data import registry
from textgen.data.config import CorpusConfig, TokenizerConfig
from textgen.models.config import ModelConfig
from textgen.store.database import ACTIVE_STATUSES, RunRecord, RunStore
from textgen.training.config import TrainConfig

# A training step costs about 3 forward passes (forward + backward, whose cost is about twice the
# forward's); the model's FLOPs per token count one forward pass.
TRAINING_FLOPS_FACTOR = 3
# Effective training FLOP/s (TRAINING_FLOPS_FACTOR x forward FLOPs/token x tokens/s) measured on the
# 2-core reference machine with the tiny presets on sample:dates (character tokens, batch 64),
# evaluations included: gru 3.1e9, bahdanau 3.1e9, transformer 5.2e9. The lower figure is used.
REFERENCE_CPU_FLOPS = 3.0e9
# Process start, TensorFlow import, data preparation and the first trace of the training step,
# measured at 10-20 s per run on the reference machine.
START_UP_SECONDS = 15.0
# Examples whose tokens are counted to estimate the tokens of an epoch (the rest is extrapolated).
TOKEN_SAMPLE_EXAMPLES = 2000
# Finished runs of the same family whose throughput is used (the most recent ones).
MEASURED_RUNS = 5
# Examples shown in a corpus check's preview table.
PREVIEW_ROWS = 50
# Bytes per float32 value (weights, activations).
FLOAT_BYTES = 4
# Training keeps 4 copies of every weight: the weight, its gradient and Adam's two moments.
WEIGHT_COPIES = 4
# Tensors of batch x length x vocabulary kept for the backward pass (logits, softmax, gradient).
LOGIT_COPIES = 3
# Tensors of batch x length x width kept per layer for the backward pass: a rough figure (inputs
# of each projection, gates or feed-forward hidden units, norms, dropout masks), not a measurement.
# The logits term above is exact, and it is the one a vocabulary explosion blows up.
ACTIVATION_COPIES = 8
# Share of the machine's physical memory a training job may plan to use; a plan whose estimate is
# over it is refused before the run exists. TEXTGEN_MEMORY_BUDGET_MB overrides it with a figure.
MEMORY_BUDGET_SHARE = 0.5
MEMORY_BUDGET_ENV = "TEXTGEN_MEMORY_BUDGET_MB"
# Used when the physical memory cannot be read (not Linux/macOS).
FALLBACK_MEMORY_BYTES = 8 * 2**30


# -- corpus check ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CorpusCheck:
    """A corpus read, validated and split in memory, nothing saved: what "Check" shows."""

    report: dict[str, Any]  # CorpusReport.to_dict()
    tokenizer: dict[str, Any]  # registry.tokenizer_summary(...)
    preview: list[dict[str, Any]]  # the first PREVIEW_ROWS examples: line, source, target (raw text)
    is_pairs: bool


def check_corpus(data: bytes, config: CorpusConfig, tokenizer: TokenizerConfig | None = None, *,
                 preview_rows: int = PREVIEW_ROWS) -> CorpusCheck:
    """Read `data` as `registry.register` would, without registering it.

    Raises CorpusError (unusable file) or ConfigError (bad reading settings) with what to do.
    The preview holds the raw text: escape it for display (it is untrusted).
    """
    loaded = registry.load_bytes(data, config, origin="upload", label="")
    summary = registry.tokenizer_summary(loaded, tokenizer or TokenizerConfig())
    preview = [{"line": e.line, "source": e.source, "target": e.target}
               for e in loaded.corpus.examples[:preview_rows]]
    return CorpusCheck(loaded.report.to_dict(), summary, preview, loaded.corpus.is_pairs)


def histogram_bins(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """A report length summary's histogram as rows {"bin": "3-4", "low": 3, "high": 4, "count": n}.

    The report's bin k counts integer lengths in [edges[k], edges[k+1]); `high` is inclusive, so
    a bin of width 1 reads "7" rather than "7-8".
    """
    histogram = summary.get("histogram") or {}
    edges, counts = list(histogram.get("edges", [])), list(histogram.get("counts", []))
    if len(edges) != len(counts) + 1:
        raise ValueError(f"a histogram needs one more edge than counts, got {len(edges)} edges "
                         f"and {len(counts)} counts.")
    rows = []
    for low, high, count in zip(edges, edges[1:], counts):
        last = high - 1
        rows.append({"bin": str(low) if last <= low else f"{low}-{last}", "low": low, "high": last,
                     "count": int(count)})
    return rows


# -- memory ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    """Peak memory of training a model, estimated from its config alone (float32 throughout)."""

    weights_bytes: int  # weights, gradients and Adam moments (WEIGHT_COPIES per weight)
    logits_bytes: int  # batch x target length x target vocabulary, LOGIT_COPIES times
    activations_bytes: int  # everything else the backward pass keeps
    budget_bytes: int  # what a job may use here (`memory_budget_bytes`)

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.logits_bytes + self.activations_bytes

    @property
    def over_budget(self) -> bool:
        return self.total_bytes > self.budget_bytes

    @property
    def summary(self) -> str:
        """One line for the UI: the total, what it is made of, and the budget."""
        return (f"Estimated training memory {format_bytes(self.total_bytes)} (weights and optimizer "
                f"{format_bytes(self.weights_bytes)}, output logits {format_bytes(self.logits_bytes)}, "
                f"other activations {format_bytes(self.activations_bytes)}); the budget is "
                f"{format_bytes(self.budget_bytes)}.")


def format_bytes(value: float) -> str:
    """2_500_000 -> "2.4 MB" (binary units, as memory is counted)."""
    for scale, suffix in ((2**40, "TB"), (2**30, "GB"), (2**20, "MB"), (2**10, "KB")):
        if abs(value) >= scale:
            return f"{value / scale:.1f} {suffix}"
    return f"{int(value)} B"


def memory_budget_bytes() -> int:
    """Memory one training job may plan to use: TEXTGEN_MEMORY_BUDGET_MB when set, otherwise
    MEMORY_BUDGET_SHARE of the physical memory."""
    configured = os.environ.get(MEMORY_BUDGET_ENV, "").strip()
    if configured:
        try:
            megabytes = float(configured)
        except ValueError:
            raise ConfigError(f"{MEMORY_BUDGET_ENV} must be a number of megabytes, got {configured!r}.") from None
        if not math.isfinite(megabytes) or megabytes <= 0:
            raise ConfigError(f"{MEMORY_BUDGET_ENV} must be a positive number of megabytes, got {configured!r}.")
        return int(megabytes * 2**20)
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        physical = FALLBACK_MEMORY_BYTES
    return int(MEMORY_BUDGET_SHARE * physical)


def estimate_memory(model: ModelConfig, train: TrainConfig, *, budget_bytes: int | None = None) -> MemoryEstimate:
    """Training memory of `model` at `train.batch_size`: the weights with their gradients and
    Adam moments, the output logits (batch x max_target_length x target_vocab_size: what a
    vocabulary explosion blows up), and the other activations of every layer."""
    from textgen.models.size import parameter_count

    batch = train.batch_size
    target_length = model.max_target_length
    source_length = 0 if model.is_decoder_only else model.max_source_length
    transformer = model.kind in ("transformer", "transformer-lm")
    width = max(model.model_dim, model.feed_forward_dim // 4) if transformer else model.hidden_units
    layers = model.num_layers * (1 if model.is_decoder_only else 2)
    activations = ACTIVATION_COPIES * batch * (source_length + target_length) * width * layers
    if transformer:  # attention weights: batch x heads x length x length per attention block
        attention = target_length * target_length + (0 if model.is_decoder_only else
                                                     2 * target_length * source_length + source_length ** 2)
        activations += 2 * batch * model.num_heads * attention * model.num_layers  # scores, softmax
    return MemoryEstimate(
        weights_bytes=WEIGHT_COPIES * FLOAT_BYTES * parameter_count(model),
        logits_bytes=LOGIT_COPIES * FLOAT_BYTES * batch * target_length * model.target_vocab_size,
        activations_bytes=FLOAT_BYTES * activations,
        budget_bytes=memory_budget_bytes() if budget_bytes is None else budget_bytes,
    )


def check_memory(model: ModelConfig, train: TrainConfig, *, budget_bytes: int | None = None) -> MemoryEstimate:
    """The estimate, or ConfigError when it is over the budget: refused before a run exists,
    saying which part is large and what to lower."""
    estimate = estimate_memory(model, train, budget_bytes=budget_bytes)
    if estimate.over_budget:
        parts = {"the output logits (batch_size x max_target_length x target vocabulary of "
                 f"{model.target_vocab_size:,} tokens)": estimate.logits_bytes,
                 "the weights and optimizer state": estimate.weights_bytes,
                 "the activations (batch_size x lengths x width x layers)": estimate.activations_bytes}
        largest = max(parts, key=parts.__getitem__)
        raise ConfigError(
            f"this run needs about {format_bytes(estimate.total_bytes)} of memory to train, over the "
            f"{format_bytes(estimate.budget_bytes)} budget (set by {MEMORY_BUDGET_ENV} or half the machine's "
            f"memory); most of it is {largest}. Lower vocab_size (or use the bpe or char tokenizer for a "
            "corpus with many distinct words), batch_size, max_target_length or the model size."
        )
    return estimate


@dataclasses.dataclass(frozen=True)
class LengthOverflow:
    """Training examples longer than the model's maximum lengths: they are truncated."""

    num_examples: int
    sources_truncated: int
    targets_truncated: int  # targets over max_target_length - 1 tokens (room for <s> / </s>)
    max_source_length: int | None
    max_target_length: int

    @property
    def summary(self) -> str:
        """One line for the UI ("" when nothing is truncated)."""
        if not (self.sources_truncated or self.targets_truncated):
            return ""
        parts = []
        if self.sources_truncated:
            parts.append(f"{self.sources_truncated:,} of {self.num_examples:,} training sources are longer than "
                         f"max_source_length ({self.max_source_length} tokens)")
        if self.targets_truncated:
            parts.append(f"{self.targets_truncated:,} of {self.num_examples:,} training targets are longer than "
                         f"max_target_length - 1 ({self.max_target_length - 1} tokens)")
        return "; ".join(parts) + " and will be truncated. Raise the maximum lengths to keep them whole."


def length_overflow(store: RunStore, plan: Any) -> LengthOverflow:
    """How many training examples of a seq2seq RunPlan are cut to the model's maximum lengths
    (counted exactly, with the plan's tokenizers, as `data.encode_pairs` will cut them).
    Language models read windows of a token stream: nothing is cut."""
    model: ModelConfig = plan.config.model
    if model.is_decoder_only:
        return LengthOverflow(plan.num_train_examples, 0, 0, None, model.max_target_length)
    config = plan.config
    train = registry.run_examples(store, config.corpus_id, valid_corpus_id=config.valid_corpus_id,
                                 test_corpus_id=config.test_corpus_id)["train"]
    sources = plan.source_tokenizer.encode_batch([e.source for e in train])
    targets = plan.target_tokenizer.encode_batch([e.target for e in train])
    return LengthOverflow(
        num_examples=len(train),
        sources_truncated=sum(len(ids) > model.max_source_length for ids in sources),
        targets_truncated=sum(len(ids) > model.max_target_length - 1 for ids in targets),
        max_source_length=model.max_source_length,
        max_target_length=model.max_target_length,
    )


# -- training time --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TimeEstimate:
    """How long a planned run should train, and what the figure rests on."""

    tokens_per_epoch: int
    steps_per_epoch: int
    total_steps: int
    training_flops: float  # all epochs, TRAINING_FLOPS_FACTOR included
    flops_per_second: float  # the rate assumed
    tokens_per_second: float
    seconds: float  # start-up included; capped by the time budget
    source: str  # "measured" or "reference"
    measured_runs: tuple[str, ...]  # the runs the rate comes from (source "measured")
    limited_by_budget: bool  # the time budget (minutes) ends training before the last epoch

    @property
    def basis(self) -> str:
        """One sentence saying where the figure comes from, for the UI."""
        if self.source == "measured":
            count = len(self.measured_runs)
            return (f"From {count} finished run{'s' if count != 1 else ''} of this family in the store "
                    f"({self.flops_per_second / 1e9:.1f} GFLOP/s reached, scaled by this model's FLOPs per token).")
        return (f"From the reference CPU figure ({REFERENCE_CPU_FLOPS / 1e9:.0f} GFLOP/s, measured on a 2-core "
                "machine); no finished run of this family to measure from yet. Pessimistic for large models.")


def tokens_per_epoch(store: RunStore, plan: Any, *, sample: int = TOKEN_SAMPLE_EXAMPLES) -> int:
    """Target tokens the model predicts in one pass over the training split of a RunPlan.

    Seq2seq: each target's tokens (up to max_target_length - 1) plus </s>, counted on up to
    `sample` evenly spaced examples and extrapolated. Language models: every token of the
    training text.
    """
    config = plan.config
    model: ModelConfig = config.model
    tokenizer = plan.target_tokenizer
    if model.is_decoder_only:
        from textgen.data.corpus.split import texts_for_split

        loaded = registry.load_registered(store, config.corpus_id)
        return len(tokenizer.encode(texts_for_split(loaded.corpus, loaded.split)["train"]))
    train = registry.run_examples(store, config.corpus_id, valid_corpus_id=config.valid_corpus_id,
                                 test_corpus_id=config.test_corpus_id)["train"]
    if not train:
        return 0
    stride = max(1, len(train) // sample)
    picked = train[::stride][:sample]
    cap = model.max_target_length - 1
    counted = sum(min(len(ids), cap) + 1 for ids in tokenizer.encode_batch([e.target for e in picked]))
    return round(counted * len(train) / len(picked))


def measured_flops_rate(store: RunStore, kind: str, *, limit: int = MEASURED_RUNS) -> tuple[float, list[str]] | None:
    """Median training FLOP/s reached by the most recent finished runs of `kind`, and their ids.

    None when no finished run of that family logged its throughput.
    """
    rates, ids = [], []
    for run in store.list_runs(statuses=("finished",)):
        if run.kind != kind:
            continue
        speed = store.latest_metrics(run.id).get("train/tokens_per_second")
        model = (run.config or {}).get("model")
        if not speed or speed <= 0 or not isinstance(model, dict):
            continue
        try:
            from textgen.models.size import flops_per_token

            flops = flops_per_token(ModelConfig.from_dict(model))
        except (ValueError, TypeError):
            continue  # a config from another version: skip it
        rates.append(TRAINING_FLOPS_FACTOR * flops * speed)
        ids.append(run.id)
        if len(rates) >= limit:
            break
    if not rates:
        return None
    return statistics.median(rates), ids


def estimate_training_time(plan: Any, tokens: int, measured: tuple[float, list[str]] | None) -> TimeEstimate:
    """The training time of a RunPlan whose epoch has `tokens` target tokens.

    `measured` is `measured_flops_rate(...)` for the plan's family, or None for the reference rate.
    """
    train = plan.config.train
    rate, runs = measured if measured else (REFERENCE_CPU_FLOPS, [])
    total_steps = train.planned_steps(plan.steps_per_epoch)
    epochs = total_steps / plan.steps_per_epoch if plan.steps_per_epoch else train.epochs  # max_steps may cut the last
    training_flops = float(TRAINING_FLOPS_FACTOR) * plan.flops_per_token * tokens * epochs
    speed = rate / (TRAINING_FLOPS_FACTOR * max(1, plan.flops_per_token))
    seconds = training_flops / rate
    limited = bool(train.minutes) and seconds > train.minutes * 60
    if limited:
        seconds = train.minutes * 60
    return TimeEstimate(
        tokens_per_epoch=tokens,
        steps_per_epoch=plan.steps_per_epoch,
        total_steps=total_steps,
        training_flops=training_flops,
        flops_per_second=rate,
        tokens_per_second=speed,
        seconds=START_UP_SECONDS + seconds,
        source="measured" if measured else "reference",
        measured_runs=tuple(runs),
        limited_by_budget=limited,
    )


def format_duration(seconds: float | None) -> str:
    """"45 s", "3 min 20 s", "2 h 05 min"; "unknown" for None or a non-finite value."""
    if seconds is None or not math.isfinite(seconds):
        return "unknown"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} d {hours % 24:02d} h"


def format_count(value: float) -> str:
    """1234 -> "1.23 k", 2.5e9 -> "2.50 G": parameter counts and FLOPs at a glance."""
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {suffix}"
    return f"{value:g}"


# -- job progress ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RunProgress:
    """Where a run stands: for the job list's progress bar and figures."""

    step: int
    epoch: float
    planned_epochs: int
    planned_steps: int | None  # None until the first logged step tells the steps per epoch
    fraction: float  # 0..1, for the progress bar
    eta_seconds: float | None  # only while active
    tokens_per_second: float | None
    train_loss: float | None
    valid_loss: float | None
    valid_bleu: float | None
    time_budget_minutes: float

    @property
    def summary(self) -> str:
        """One line of figures ("epoch 2.0 of 10 · step 80 of 400 · 3,200 tok/s · ETA 1 min 05 s")."""
        parts = [f"epoch {self.epoch:.1f} of {self.planned_epochs}"]
        parts.append(f"step {self.step:,} of {self.planned_steps:,}" if self.planned_steps else f"step {self.step:,}")
        if self.tokens_per_second:
            parts.append(f"{self.tokens_per_second:,.0f} tok/s")
        if self.eta_seconds is not None:
            parts.append(f"ETA {format_duration(self.eta_seconds)}")
        if self.time_budget_minutes:
            parts.append(f"budget {self.time_budget_minutes:g} min")
        return " · ".join(parts)


def run_progress(store: RunStore, run: RunRecord, *, now: float | None = None) -> RunProgress:
    """Progress of a run from its config and its logged metrics (steps, ETA, tokens/s).

    The bar is the share of planned epochs done; with a time budget, the share of the budget
    spent if larger (the budget ends training first). A finished run is full: it ended by
    design (last epoch, early stopping or the time budget).
    """
    now = time.time() if now is None else now
    train = (run.config or {}).get("train") or {}
    planned_epochs = int(train.get("epochs", 0) or 0)
    minutes = float(train.get("minutes", 0.0) or 0.0)
    rows = store.get_metrics([run.id], names=["loss"])
    step = rows[-1].step if rows else 0
    epoch = float(rows[-1].epoch or 0.0) if rows else 0.0
    max_steps = int(train.get("max_steps", 0) or 0)
    planned_steps = round(planned_epochs * step / epoch) if epoch > 0 else None
    if max_steps:
        planned_steps = min(planned_steps, max_steps) if planned_steps else max_steps
    latest = store.latest_metrics(run.id)
    active = run.status in ACTIVE_STATUSES
    fraction = min(1.0, epoch / planned_epochs) if planned_epochs else 0.0
    if max_steps:
        fraction = max(fraction, min(1.0, step / max_steps))
    if active and minutes and run.status == "running" and run.started_at:
        fraction = max(fraction, min(1.0, (now - run.started_at) / (minutes * 60)))
    if run.status == "finished":
        fraction = 1.0
    eta = latest.get("train/eta_seconds") if run.status == "running" else None
    return RunProgress(
        step=step, epoch=epoch, planned_epochs=planned_epochs, planned_steps=planned_steps,
        fraction=max(0.0, fraction), eta_seconds=eta,
        tokens_per_second=latest.get("train/tokens_per_second"),
        train_loss=latest.get("train/loss"), valid_loss=latest.get("valid/loss"),
        valid_bleu=latest.get("valid/bleu"), time_budget_minutes=minutes,
    )
