"""What a run will cost before it is started: its training time and memory.

The app's Train page shows these figures; the functions take and return plain data
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
from typing import Any

from textgen.core.errors import ConfigError
from textgen.core.formatting import format_bytes
from textgen.data import registry
from textgen.models.config import ModelConfig
from textgen.store.database import RunStore
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
