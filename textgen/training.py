"""Training a run: prepare data and tokenizers, build the model, `fit` with our callbacks.

Two halves, so bad settings are refused before a job exists:

- `plan_run` (fast, no TensorFlow): resolves the corpus, trains the tokenizers on its training
  split, builds and validates every config, and returns a `RunPlan` with the parameter count.
  `create_run` then writes the run (status "queued"), its run.json and tokenizers.
- `train_run` (in the job's own process): rebuilds data and model from what `create_run` wrote,
  resumes from the last checkpoint if there is one, and trains under the run's TrainConfig.

Resuming restores the weights AND the optimizer state (Adam moments and step count), so the
learning-rate schedule continues where it stopped. A new learning rate replaces the schedule's
peak; the moments are kept (they are scale-free estimates of the gradients, still valid).
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any, Callable

from textgen import artifacts, corpora
from textgen.config import CorpusConfig, TokenizerConfig, TrainConfig
from textgen.errors import ConfigError, CorpusError, StoreError, TextgenError
from textgen.models.config import PRESET_NAMES, ModelConfig, preset_config
from textgen.store import RunRecord, RunStore

# Fewest training examples worth training on; stated in the refusal.
MIN_TRAIN_EXAMPLES = 8
# Families whose training step compiles under XLA (jit_compile=true); see bench/jit_compile.py.
XLA_KINDS = ("transformer", "transformer-lm")
# Families that train faster with one thread per op and the batch in slices side by side, on
# machines with at most SLICED_LAYOUT_MAX_CORES cores (the layout `thread_layout` picks for the
# settings left at 0). Measured on 2 cores (bench/RESULTS.md): the small Transformer at batch 64
# on Multi30k about 10% faster; the LM recipe about 18%; GRU and Bahdanau no faster. Machines
# with more cores were not measured and keep TensorFlow's defaults.
SLICED_LAYOUT_KINDS = ("transformer", "transformer-lm")
SLICED_LAYOUT_MAX_CORES = 2


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """A validated run, not yet written: what the app shows before "Start"."""

    label: str
    config: artifacts.RunConfig
    source_tokenizer: Any  # None for decoder-only models
    target_tokenizer: Any
    parameter_count: int
    flops_per_token: int
    num_train_examples: int
    steps_per_epoch: int


def split_settings(settings: dict[str, str]) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Route `--set key=value` pairs to the tokenizer, model and training configs by field name.

    `tokenizer=char` names the tokenizer kind; a prefix (`model.dropout`, `train.seed`,
    `tokenizer.vocab_size`) picks the config explicitly.
    """
    configs = {"tokenizer": TokenizerConfig, "model": ModelConfig, "train": TrainConfig}
    routed: dict[str, dict[str, str]] = {name: {} for name in configs}
    for key, value in settings.items():
        if key == "tokenizer":
            routed["tokenizer"]["kind"] = value
            continue
        prefix, dot, field = key.partition(".")
        if dot and prefix in configs:
            routed[prefix][field] = value
            continue
        owners = [name for name, cls in configs.items() if key in cls.field_names() and key != "kind"]
        if not owners:
            valid = sorted({f for cls in configs.values() for f in cls.field_names()} - {"kind"})
            raise ConfigError(f"unknown setting {key!r}. Valid keys: tokenizer, {', '.join(valid)}.")
        routed[owners[0]][key] = value
    return routed["tokenizer"], routed["model"], routed["train"]


def plan_run(
    store: RunStore,
    corpus: str,
    kind: str,
    *,
    preset: str = "small",
    settings: dict[str, str] | None = None,
    label: str | None = None,
    corpus_config: CorpusConfig | None = None,
    valid: str | None = None,
    test: str | None = None,
) -> RunPlan:
    """Validate everything about a run before it exists. `corpus` (and the optional held-out
    `valid` and `test` corpora) is a corpus id, a path or sample:NAME."""
    from textgen.models.size import flops_per_token, parameter_count
    from textgen.tokenizers import train_tokenizer

    if preset not in PRESET_NAMES:
        raise ConfigError(f"preset must be one of {', '.join(PRESET_NAMES)}; got {preset!r}.")
    tokenizer_settings, model_settings, train_settings = split_settings(settings or {})
    tokenizer_config = TokenizerConfig().with_overrides(tokenizer_settings, from_text=True)
    train_config = TrainConfig().with_overrides(train_settings, from_text=True)
    record = resolve_corpus(store, corpus, corpus_config)
    loaded = corpora.load_registered(store, record.id)
    probe = preset_config(kind, preset, 8, 8)  # validates kind and preset before the slow part
    if probe.is_decoder_only and loaded.corpus.is_pairs:
        raise ConfigError(
            f"{kind} is a language model for plain text, but corpus {record.label!r} has source/target "
            "pairs; pick a seq2seq model (gru, lstm, bahdanau, luong, transformer) or a text corpus."
        )
    if not probe.is_decoder_only and not loaded.corpus.is_pairs:
        raise ConfigError(
            f"{kind} needs source/target pairs, but corpus {record.label!r} is plain text; "
            "pick transformer-lm or lstm-lm, or upload pairs (TSV, CSV or JSONL)."
        )
    if train_config.jit_compile and kind not in XLA_KINDS:
        raise ConfigError(
            f"jit_compile is available for {', '.join(XLA_KINDS)} only; {kind}'s recurrent step loop has "
            "shapes XLA cannot compile (bahdanau failed to compile here). Set jit_compile=false."
        )
    if len(loaded.split.train) < MIN_TRAIN_EXAMPLES:
        raise CorpusError(
            f"the training split has {len(loaded.split.train)} examples; training needs at least "
            f"{MIN_TRAIN_EXAMPLES}. Add examples or lower valid_fraction/test_fraction."
        )
    held_out = {}
    for name, reference in (("valid", valid), ("test", test)):
        if reference is not None:
            if probe.is_decoder_only:
                raise ConfigError(f"--{name} is for source/target pairs; language models use the text's own split.")
            held_out[name] = resolve_corpus(store, reference, corpus_config)
            if not corpora.load_registered(store, held_out[name].id).corpus.is_pairs:
                raise ConfigError(f"the --{name} corpus must hold source/target pairs like the training corpus.")
    parts = corpora.run_examples(store, record.id, valid_corpus_id=held_out.get("valid") and held_out["valid"].id,
                                 test_corpus_id=held_out.get("test") and held_out["test"].id, loaded=loaded)
    train_examples = parts["train"]
    if probe.is_decoder_only:
        source_tokenizer = None
        target_tokenizer = train_tokenizer([e.target for e in train_examples], tokenizer_config)
        source_vocab = 0
    else:
        source_tokenizer = train_tokenizer([e.source for e in train_examples], tokenizer_config)
        target_tokenizer = train_tokenizer([e.target for e in train_examples], tokenizer_config)
        source_vocab = source_tokenizer.vocab_size
    model_config = preset_config(kind, preset, source_vocab, target_tokenizer.vocab_size)
    model_config = model_config.with_overrides(model_settings, from_text=True)
    if model_config.source_vocab_size != source_vocab or model_config.target_vocab_size != target_tokenizer.vocab_size:
        raise ConfigError("source_vocab_size and target_vocab_size come from the tokenizers; set vocab_size instead.")
    from textgen.estimates import check_memory

    check_memory(model_config, train_config)  # a vocabulary explosion is refused here, before a run exists
    steps = steps_per_epoch(len(train_examples) if not probe.is_decoder_only else None, loaded, train_config,
                            model_config, target_tokenizer)
    config = artifacts.RunConfig(record.id, tokenizer_config, model_config, train_config,
                                 valid_corpus_id=held_out["valid"].id if "valid" in held_out else None,
                                 test_corpus_id=held_out["test"].id if "test" in held_out else None)
    return RunPlan(
        label=label or f"{kind} on {record.label}",
        config=config,
        source_tokenizer=source_tokenizer,
        target_tokenizer=target_tokenizer,
        parameter_count=parameter_count(model_config),
        flops_per_token=flops_per_token(model_config),
        num_train_examples=len(train_examples),
        steps_per_epoch=steps,
    )


def steps_per_epoch(num_pairs: int | None, loaded: Any, train: TrainConfig, model: ModelConfig,
                    target_tokenizer: Any) -> int:
    if num_pairs is not None:
        return max(1, math.ceil(num_pairs / train.batch_size))
    from textgen.corpus import texts_for_split

    text = texts_for_split(loaded.corpus, loaded.split)["train"]
    num_tokens = len(target_tokenizer.encode(text))
    return max(1, math.ceil(num_tokens / model.max_target_length / train.batch_size))


def resolve_corpus(store: RunStore, corpus: str, corpus_config: CorpusConfig | None = None):
    """A registered corpus by id, or register a path / sample:NAME (idempotent)."""
    from textgen.store import check_id

    if corpus.startswith("c-"):
        check_id(corpus, "corpus id")
        return store.get_corpus(corpus)
    return corpora.register_reference(store, corpus, corpus_config)


def create_run(store: RunStore, plan: RunPlan) -> RunRecord:
    """Write a planned run: a store row (queued), run.json and the tokenizers."""
    run = store.create_run(label=plan.label, kind=plan.config.model.kind, config=plan.config.to_dict(),
                           corpus_id=plan.config.corpus_id, status="queued")
    run_dir = store.run_dir(run.id)
    if plan.source_tokenizer is not None:
        plan.source_tokenizer.save(run_dir / artifacts.SOURCE_TOKENIZER_FILE)
    plan.target_tokenizer.save(run_dir / artifacts.TARGET_TOKENIZER_FILE)
    artifacts.save_run_config(run_dir, plan.config)
    return run


# -- the training process ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TrainingOutcome:
    status: str  # "finished", "stopped" or "failed"
    error: str | None
    step: int
    epoch: float
    metrics: dict[str, float]


# Validation runs forward only, so a small training batch is raised for it: fewer, larger steps
# (nanoGPT's recipe, 1,737 windows: 2.3-2.6 s per evaluation at 64 per batch, 3.7-5.1 s at 12,
# same loss). Raised only while a batch's logits stay under this many floats (256 MB).
EVAL_BATCH_SIZE = 64
EVAL_LOGITS_LIMIT = 64 * 1024 * 1024


def eval_batch_size(batch_size: int, length: int, vocab_size: int) -> int:
    """The validation batch: at least the training batch, up to EVAL_BATCH_SIZE while
    batch x length x vocabulary logits fit under EVAL_LOGITS_LIMIT."""
    fits = EVAL_LOGITS_LIMIT // max(1, length * vocab_size)
    return max(batch_size, min(EVAL_BATCH_SIZE, fits))


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS says, else the count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclasses.dataclass(frozen=True)
class ThreadLayout:
    """How a job runs its ops: 0 threads means TensorFlow's default (all cores)."""

    intra_op_threads: int
    inter_op_threads: int
    batch_parts: int

    def summary(self) -> str:
        def threads(n: int) -> str:
            return str(n) if n else "all cores"

        return (f"threads: {threads(self.intra_op_threads)} per op, {threads(self.inter_op_threads)} ops at once, "
                f"the batch in {self.batch_parts} slice{'s' if self.batch_parts > 1 else ''}")


def thread_layout(train: TrainConfig, kind: str, cores: int) -> ThreadLayout:
    """The settings left at 0 chosen for `kind` on `cores` cores; the others as set. The sliced
    layout (one thread per op, `cores` ops at once, `cores` batch slices) for SLICED_LAYOUT_KINDS
    on at most SLICED_LAYOUT_MAX_CORES cores when intra_op_threads is 0 or 1; otherwise
    TensorFlow's defaults, with inter_op_threads as many as intra_op_threads (up to 2) when
    that is set."""
    sliced = (kind in SLICED_LAYOUT_KINDS and cores <= SLICED_LAYOUT_MAX_CORES
              and train.intra_op_threads in (0, 1))
    intra = train.intra_op_threads or (1 if sliced else 0)
    if train.inter_op_threads:
        inter = train.inter_op_threads
    elif sliced:
        inter = cores
    else:
        inter = max(1, min(2, intra)) if intra else 0
    parts = train.batch_parts or (cores if sliced else 1)
    return ThreadLayout(intra, inter, parts)


def configure_threads(layout: ThreadLayout) -> None:
    """Apply the thread settings. They take effect only before TensorFlow executes its first op
    (a job process calls this first); in a process where TensorFlow already ran, a warning says
    they were not applied and training goes on with the threads it has."""
    import tensorflow as tf

    threads, inter = layout.intra_op_threads, layout.inter_op_threads
    try:
        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        if inter:
            tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:  # "cannot be modified after initialization"
        print(f"warning: intra_op_threads={threads} and inter_op_threads={inter} were not applied: "
              "TensorFlow had already run in this process; a job started with `python -m textgen` "
              "applies them", flush=True)


def make_strategy(name: str):
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def build_optimizer(train: TrainConfig, total_steps: int, variables: list) -> Any:
    """The configured Adam or AdamW over `variables`, built (slots created).

    AdamW decays only variables of two or more dimensions (kernels, embeddings); biases and
    LayerNorm scales are left alone, as nanoGPT and BERT do."""
    from textgen.optimizers import FusedAdam, FusedAdamW
    from textgen.schedules import make_schedule

    schedule = make_schedule(train, total_steps)
    options = {"learning_rate": schedule, "beta_1": train.beta_1, "beta_2": train.beta_2}
    if train.clip_norm > 0:
        options["global_clipnorm"] = train.clip_norm
    if train.optimizer == "adamw":
        optimizer = FusedAdamW(weight_decay=train.weight_decay, **options)
        optimizer.exclude_from_weight_decay(var_list=[v for v in variables if len(v.shape) < 2])
    else:
        optimizer = FusedAdam(**options)
    optimizer.build(variables)
    return optimizer


@dataclasses.dataclass
class _Data:
    train_dataset: Any
    valid_dataset: Any
    steps_per_epoch: int
    tokens_per_step: float
    probe_sources: list[str]
    probe_references: list[str]
    probe_indices: list[int]
    score_sources: list[str]
    score_references: list[str]


def _prepare_data(store: RunStore, run_dir: Path, config: artifacts.RunConfig, source_tokenizer: Any,
                  target_tokenizer: Any) -> _Data:
    import numpy as np

    from textgen import data
    from textgen.corpus import texts_for_split

    model, train = config.model, config.train
    if model.is_decoder_only:
        loaded = corpora.load_registered(store, config.corpus_id)
        examples = loaded.corpus.examples
        valid_indices = list(loaded.split.valid) or list(loaded.split.train[-max(1, len(loaded.split.train) // 10):])
        texts = texts_for_split(loaded.corpus, loaded.split)
        train_ids = np.asarray(target_tokenizer.encode(texts["train"]), np.int32)
        valid_text = texts["valid"] or texts["train"][-20_000:]
        valid_ids = np.asarray(target_tokenizer.encode(valid_text), np.int32)
        context = model.max_target_length
        train_ds = data.lm_dataset(train_ids, context_length=context, batch_size=train.batch_size,
                                   shuffle=True, seed=train.seed, repeat=True)
        valid_ds = data.lm_dataset(valid_ids, context_length=context,
                                   batch_size=eval_batch_size(train.batch_size, context, model.target_vocab_size),
                                   shuffle=False, seed=train.seed)
        steps = data.lm_num_batches(len(train_ids), context_length=context, batch_size=train.batch_size)
        tokens_per_step = len(train_ids) / max(1, steps)
        # Probes: the first words of validation lines as prompts; the rest of the line is the reference.
        lines = [examples[i].target for i in valid_indices if len(examples[i].target.split()) >= 4]
        prompts = [" ".join(line.split()[:4]) for line in lines]
        rests = [" ".join(line.split()[4:]) for line in lines]
        return _Data(train_ds, valid_ds, steps, tokens_per_step, prompts[: train.num_probe_samples],
                     rests[: train.num_probe_samples], list(range(min(len(prompts), train.num_probe_samples))), [], [])

    parts = corpora.run_examples(store, config.corpus_id, valid_corpus_id=config.valid_corpus_id,
                                 test_corpus_id=config.test_corpus_id)
    # No validation split (valid_fraction=0): a slice of training stands in, so curves still show.
    valid_examples = parts["valid"] or parts["train"][-max(1, len(parts["train"]) // 10):]

    def encode(examples):
        return data.encode_pairs(
            [e.source for e in examples], [e.target for e in examples], source_tokenizer, target_tokenizer,
            max_source_length=model.max_source_length, max_target_length=model.max_target_length,
        )

    encoded_train = encode(parts["train"])
    encoded_valid = encode(valid_examples)
    boundaries = data.bucket_boundaries_for(encoded_train)
    pad_to_bucket = train.jit_compile  # XLA compiles once per shape: keep shapes few
    train_ds = data.pair_dataset(encoded_train, batch_size=train.batch_size, shuffle=True, seed=train.seed,
                                 bucket_boundaries=boundaries, pad_to_bucket=pad_to_bucket, repeat=True)
    valid_ds = data.pair_dataset(encoded_valid, shuffle=False, seed=train.seed,
                                 batch_size=eval_batch_size(train.batch_size, model.max_target_length,
                                                            model.target_vocab_size),
                                 bucket_boundaries=boundaries, pad_to_bucket=pad_to_bucket)
    steps = data.pair_num_batches(encoded_train, batch_size=train.batch_size, bucket_boundaries=boundaries)
    target_tokens = sum(len(t) + 1 for t in encoded_train.target_ids)
    probe = valid_examples[: train.num_probe_samples]
    scored = valid_examples[: train.eval_bleu_examples]
    return _Data(
        train_ds, valid_ds, steps, target_tokens / max(1, steps),
        [e.source for e in probe], [e.target for e in probe], list(range(len(probe))),
        [e.source for e in scored], [e.target for e in scored],
    )


class TrainingError(TextgenError):
    """Training could not go on for a reason the user can act on (out of memory, disk full)."""


def train_run(
    store: RunStore,
    run_id: str,
    *,
    should_stop: Callable[[], bool] | None = None,
    on_progress: Callable[[dict[str, float]], None] | None = None,
) -> TrainingOutcome:
    """Train (or resume) a run in this process. The caller has marked it "running".

    Running out of memory or disk space raises TrainingError saying so and what to do; the
    checkpoints written before stay as they were.
    """
    run_dir = store.run_dir(run_id)
    config = artifacts.load_run_config(run_dir)
    try:
        return _train_run(store, run_id, run_dir, config, should_stop, on_progress)
    except BaseException as error:
        reason = resource_failure(error, config.train, run_dir)
        if reason is None:
            raise
        raise TrainingError(reason) from error


def out_of_memory(error: BaseException) -> bool:
    """MemoryError (Python), ResourceExhaustedError (TensorFlow's allocator), or a oneDNN kernel
    that could not get its scratch memory (its status 1 is dnnl_out_of_memory)."""
    if isinstance(error, MemoryError):
        return True
    name = type(error).__name__
    if name == "ResourceExhaustedError":
        return True
    return name in ("AbortedError", "InternalError") and "Status: 1," in str(error)


def resource_failure(error: BaseException, train: TrainConfig, run_dir: Path) -> str | None:
    """The message for an out-of-memory or disk-full failure, None for any other error."""
    import traceback

    from textgen.fsutil import is_disk_full

    try:
        kept = artifacts.Checkpoints(run_dir).get("last")
    except Exception:  # noqa: BLE001 - the message must not fail; the disk may be unreadable
        kept = None
    keeps = (f"The last checkpoint ({kept.name}, step {kept.step}) is kept; resume from it"
             if kept else "No checkpoint was written yet; start again")
    if out_of_memory(error):
        batch = train.batch_size
        suggested = max(1, batch // 4)
        return (f"out of memory at batch size {batch}; try batch_size={suggested} (or a smaller model or "
                f"max lengths). {keeps} with --set batch_size={suggested}.")
    if is_disk_full(error):
        frames = traceback.extract_tb(error.__traceback__)
        writing = ("metrics to the run store" if type(error).__name__ == "OperationalError" else
                   "a checkpoint" if any(f.name == "save" and f.filename.endswith("artifacts.py") for f in frames)
                   else "a file")
        detail = getattr(error, "strerror", None) or str(error)
        return (f"disk full while writing {writing} ({detail}). Free space under {run_dir.parent.parent}; "
                f"{keeps[0].lower()}{keeps[1:]}.")
    return None


def _train_run(store: RunStore, run_id: str, run_dir: Path, config: artifacts.RunConfig,
               should_stop: Callable[[], bool] | None,
               on_progress: Callable[[dict[str, float]], None] | None) -> TrainingOutcome:
    layout = thread_layout(config.train, config.model.kind, available_cores())
    configure_threads(layout)
    print(layout.summary(), flush=True)  # into job.log

    import keras

    from textgen import callbacks
    from textgen.decoding import DecodingConfig, generate
    from textgen.models.losses import MaskedCrossEntropy, MaskedTokenAccuracy
    from textgen.models.registry import build_model
    from textgen.tokenizers import Tokenizer

    source_path = run_dir / artifacts.SOURCE_TOKENIZER_FILE
    source_tokenizer = Tokenizer.load(source_path) if source_path.exists() else None
    target_tokenizer = Tokenizer.load(run_dir / artifacts.TARGET_TOKENIZER_FILE)
    data = _prepare_data(store, run_dir, config, source_tokenizer, target_tokenizer)
    train = config.train
    keras.utils.set_random_seed(train.seed)

    checkpoints = artifacts.Checkpoints(run_dir)
    checkpoints.remove_leftovers()  # this job is the run's only writer
    try:
        last = checkpoints.get("last")
    except StoreError:  # the index points at a damaged folder: the newest whole one
        listed = checkpoints.list()
        last = listed[-1] if listed else None
    try:
        best = checkpoints.get("best")
    except StoreError:
        best = last
    initial_step = last.step if last else 0
    total_steps = max(initial_step, train.planned_steps(data.steps_per_epoch))
    eval_interval = train.eval_every_steps or data.steps_per_epoch

    strategy = make_strategy(train.strategy)
    if strategy.num_replicas_in_sync > 1:
        from textgen.data import pad_batches_to_multiple

        data.train_dataset = pad_batches_to_multiple(data.train_dataset, strategy.num_replicas_in_sync)
        data.valid_dataset = pad_batches_to_multiple(data.valid_dataset, strategy.num_replicas_in_sync)
    with strategy.scope():
        if last is not None:
            model, loaded, warning = artifacts.load_checkpoint_model(checkpoints, last)
            if warning:
                print(f"warning: {warning}", flush=True)  # into job.log
            if loaded.name != last.name:
                last = loaded
                initial_step = last.step
                total_steps = max(initial_step, train.planned_steps(data.steps_per_epoch))
        else:
            model = build_model(config.model)
        # Built before fit: Keras otherwise traces the train step twice (measured 15.6 s -> 5.8 s to
        # the first step of a tiny Transformer).
        optimizer = build_optimizer(train, total_steps, model.trainable_variables)
        if last is not None:
            artifacts.restore_optimizer(optimizer, model.trainable_variables, last.path / artifacts.OPTIMIZER_FILE)
            optimizer.iterations.assign(initial_step)
        model.batch_parts = layout.batch_parts
        model.set_matmul_precision(train.matmul_precision)
        if train.matmul_precision == "bfloat16":
            from textgen.models.layers import native_bfloat16_matmul

            how = ("bfloat16 matmuls in hardware" if native_bfloat16_matmul() else
                   "emulated: operands rounded to bfloat16, multiplied in float32 (no native bfloat16 here)")
            print(f"matmul_precision: bfloat16, {how}", flush=True)  # into job.log
        model.compile(
            optimizer=optimizer,
            loss=MaskedCrossEntropy(label_smoothing=train.label_smoothing),
            metrics=[MaskedTokenAccuracy(name="accuracy")],
            jit_compile=train.jit_compile,
        )

    clock = callbacks.TrainingClock(initial_step=initial_step, total_steps=total_steps,
                                    steps_per_epoch=data.steps_per_epoch,
                                    tokens_per_step=data.tokens_per_step, minutes=train.minutes)
    control = callbacks.RunControl(clock, should_stop or (lambda: False))
    greedy = DecodingConfig(strategy="greedy", max_length=config.model.max_target_length,
                            batch_size=64, time_limit_seconds=120)

    def score_and_probe():
        scores: dict[str, float] = {}
        if data.score_sources:
            outputs = [g.output for g in generate(model, source_tokenizer, target_tokenizer, data.score_sources, greedy,
                                                  attention=False)]
            scores = validation_scores(outputs, data.score_references)
        probes = []
        if data.probe_sources:
            outputs = [g.output for g in generate(model, source_tokenizer, target_tokenizer, data.probe_sources, greedy,
                                                  attention=False)]
            probes = list(zip(data.probe_indices, data.probe_sources, data.probe_references, outputs))
        return scores, probes

    reporter = callbacks.StoreReporter(store, run_id, clock, control, train.log_every_seconds, on_progress)
    evaluator = callbacks.Evaluator(store, run_id, clock, control, score_and_probe, on_progress)
    best_value = None
    if best is not None:
        best_value = best.metrics.get("loss" if train.early_stopping_metric == "valid_loss" else "bleu")
    saver = callbacks.CheckpointSaver(checkpoints, evaluator, control, clock, train.early_stopping_metric,
                                      train.early_stopping_patience, best_value, train.keep_checkpoints,
                                      train.early_stopping_min_delta)
    tensorboard = keras.callbacks.TensorBoard(log_dir=str(run_dir / artifacts.TENSORBOARD_DIR), update_freq="epoch")

    remaining = total_steps - initial_step
    if remaining > 0:
        intervals_done = initial_step // eval_interval
        model.fit(
            data.train_dataset,
            steps_per_epoch=eval_interval,
            initial_epoch=intervals_done,
            epochs=intervals_done + math.ceil(remaining / eval_interval),
            validation_data=data.valid_dataset,
            callbacks=[control, reporter, evaluator, saver, tensorboard],
            shuffle=False,
            verbose=0,
        )
    if not control.failed and saver.saved_step != clock.step and clock.step > initial_step:
        # Stopped between evaluations: keep the work done (as "last", never as "best" unevaluated).
        saver.save(best=False)
    status = {"failed": "failed", "stopped": "stopped"}.get(control.outcome or "", "finished")
    return TrainingOutcome(status, control.error, clock.step, clock.epoch, dict(evaluator.last_metrics))


def validation_scores(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """Corpus BLEU and chrF without intervals: the cheap figures logged at each evaluation."""
    from textgen.evaluation import score

    metrics = score(hypotheses, references, bootstrap_samples=0).metrics
    return {"bleu": metrics["bleu"].value, "chrf": metrics["chrf"].value}
