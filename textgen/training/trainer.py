"""Training a run: prepare data and tokenizers, build the model, `fit` with our callbacks.

Two halves, so bad settings are refused before a job exists:

- `plan_run` (fast, no TensorFlow): resolves the corpus, trains the tokenizers on its training
  split, builds and validates every config, and returns a `RunPlan` with the parameter count.
  `create_run` then writes the run (status "queued"), its run.json and tokenizers.
- `train_run` (in the job's own process): rebuilds data and model from what `create_run` wrote,
  resumes from the last checkpoint if there is one, and trains under the run's TrainConfig.

Resuming restores the weights AND the optimizer state (Adam moments and step count), so the
learning-rate schedule continues where it stopped. A new learning rate replaces the schedule's
peak; the moments are kept (they are scale-free estimates of the gradients, still valid)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Callable

from textgen.core.errors import StoreError, TextgenError
from textgen.data import registry
from textgen.scoring.metrics import validation_scores
from textgen.store.database import RunStore
from textgen.training import artifacts
from textgen.training.config import TrainConfig
from textgen.training.threads import available_cores, configure_threads, thread_layout


@dataclasses.dataclass(frozen=True)
class TrainingOutcome:
    status: str  # "finished", "stopped" or "failed"
    error: str | None
    step: int
    epoch: float
    metrics: dict[str, float]


# Validation runs forward only, so a small training batch is raised for it: fewer, larger steps,
# the same loss, faster (bench/RESULTS.md). Raised only while a batch's logits stay under this
# many floats (256 MB).
EVAL_BATCH_SIZE = 64


EVAL_LOGITS_LIMIT = 64 * 1024 * 1024


def eval_batch_size(batch_size: int, length: int, vocab_size: int) -> int:
    """The validation batch: at least the training batch, up to EVAL_BATCH_SIZE while
    batch x length x vocabulary logits fit under EVAL_LOGITS_LIMIT."""
    fits = EVAL_LOGITS_LIMIT // max(1, length * vocab_size)
    return max(batch_size, min(EVAL_BATCH_SIZE, fits))


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
    from textgen.training.optimizers import FusedAdam, FusedAdamW
    from textgen.training.schedules import make_schedule

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


def _prepare_data(store: RunStore, config: artifacts.RunConfig, source_tokenizer: Any,
                  target_tokenizer: Any) -> _Data:
    if config.model.is_decoder_only:
        return _language_model_data(store, config, target_tokenizer)
    return _pair_data(store, config, source_tokenizer, target_tokenizer)


def _language_model_data(store: RunStore, config: artifacts.RunConfig, tokenizer: Any) -> _Data:
    """Windows of the corpus's token stream; probes are the first words of validation lines."""
    import numpy as np

    from textgen.data import pipeline
    from textgen.data.corpus.split import texts_for_split

    model, train = config.model, config.train
    loaded = registry.load_registered(store, config.corpus_id)
    examples = loaded.corpus.examples
    valid_indices = list(loaded.split.valid) or list(loaded.split.train[-max(1, len(loaded.split.train) // 10):])
    texts = texts_for_split(loaded.corpus, loaded.split)
    train_ids = np.asarray(tokenizer.encode(texts["train"]), np.int32)
    valid_ids = np.asarray(tokenizer.encode(texts["valid"] or texts["train"][-20_000:]), np.int32)
    context = model.max_target_length
    train_ds = pipeline.lm_dataset(train_ids, context_length=context, batch_size=train.batch_size,
                                   shuffle=True, seed=train.seed, repeat=True)
    valid_ds = pipeline.lm_dataset(valid_ids, context_length=context,
                                   batch_size=eval_batch_size(train.batch_size, context, model.target_vocab_size),
                                   shuffle=False, seed=train.seed)
    steps = pipeline.lm_num_batches(len(train_ids), context_length=context, batch_size=train.batch_size)
    # Probes: the first words of validation lines as prompts; the rest of the line is the reference.
    lines = [examples[i].target for i in valid_indices if len(examples[i].target.split()) >= 4]
    prompts = [" ".join(line.split()[:4]) for line in lines][: train.num_probe_samples]
    rests = [" ".join(line.split()[4:]) for line in lines][: train.num_probe_samples]
    return _Data(train_ds, valid_ds, steps, len(train_ids) / max(1, steps), prompts, rests,
                 list(range(len(prompts))), [], [])


def _pair_data(store: RunStore, config: artifacts.RunConfig, source_tokenizer: Any, target_tokenizer: Any) -> _Data:
    """Teacher-forced pairs bucketed by length; probes and BLEU from the validation split."""
    from textgen.data import pipeline

    model, train = config.model, config.train
    parts = registry.run_examples(store, config.corpus_id, valid_corpus_id=config.valid_corpus_id,
                                  test_corpus_id=config.test_corpus_id)
    # No validation split (valid_fraction=0): a slice of training stands in, so curves still show.
    valid_examples = parts["valid"] or parts["train"][-max(1, len(parts["train"]) // 10):]

    def encode(examples):
        return pipeline.encode_pairs(
            [e.source for e in examples], [e.target for e in examples], source_tokenizer, target_tokenizer,
            max_source_length=model.max_source_length, max_target_length=model.max_target_length,
        )

    encoded_train = encode(parts["train"])
    encoded_valid = encode(valid_examples)
    boundaries = pipeline.bucket_boundaries_for(encoded_train)
    pad_to_bucket = train.jit_compile  # XLA compiles once per shape: keep shapes few
    train_ds = pipeline.pair_dataset(encoded_train, batch_size=train.batch_size, shuffle=True, seed=train.seed,
                                     bucket_boundaries=boundaries, pad_to_bucket=pad_to_bucket, repeat=True)
    valid_ds = pipeline.pair_dataset(encoded_valid, shuffle=False, seed=train.seed,
                                     batch_size=eval_batch_size(train.batch_size, model.max_target_length,
                                                                model.target_vocab_size),
                                     bucket_boundaries=boundaries, pad_to_bucket=pad_to_bucket)
    steps = pipeline.pair_num_batches(encoded_train, batch_size=train.batch_size, bucket_boundaries=boundaries)
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

    from textgen.core.fsutil import is_disk_full

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


@dataclasses.dataclass
class _Start:
    """Where a run starts: its model (new, or the last checkpoint's), its best checkpoint so far
    and the steps planned."""

    model: Any
    best: Any  # CheckpointInfo or None
    initial_step: int
    total_steps: int


def _train_run(store: RunStore, run_id: str, run_dir: Path, config: artifacts.RunConfig,
               should_stop: Callable[[], bool] | None,
               on_progress: Callable[[dict[str, float]], None] | None) -> TrainingOutcome:
    layout = thread_layout(config.train, config.model.kind, available_cores())
    configure_threads(layout)
    print(layout.summary(), flush=True)  # into job.log

    import keras

    from textgen.data.tokenizers import Tokenizer
    from textgen.training import callbacks

    source_path = run_dir / artifacts.SOURCE_TOKENIZER_FILE
    source_tokenizer = Tokenizer.load(source_path) if source_path.exists() else None
    target_tokenizer = Tokenizer.load(run_dir / artifacts.TARGET_TOKENIZER_FILE)
    data = _prepare_data(store, config, source_tokenizer, target_tokenizer)
    train = config.train
    keras.utils.set_random_seed(train.seed)
    checkpoints = artifacts.Checkpoints(run_dir)
    checkpoints.remove_leftovers()  # this job is the run's only writer
    start = _start(config, checkpoints, data, layout)
    model = start.model

    clock = callbacks.TrainingClock(initial_step=start.initial_step, total_steps=start.total_steps,
                                    steps_per_epoch=data.steps_per_epoch,
                                    tokens_per_step=data.tokens_per_step, minutes=train.minutes)
    control = callbacks.RunControl(clock, should_stop or (lambda: False))
    reporter = callbacks.StoreReporter(store, run_id, clock, control, train.log_every_seconds, on_progress)
    evaluator = callbacks.Evaluator(store, run_id, clock, control,
                                    _score_and_probe(model, config, data, source_tokenizer, target_tokenizer),
                                    on_progress)
    best_value = None
    if start.best is not None:
        best_value = start.best.metrics.get("loss" if train.early_stopping_metric == "valid_loss" else "bleu")
    saver = callbacks.CheckpointSaver(checkpoints, evaluator, control, clock, train.early_stopping_metric,
                                      train.early_stopping_patience, best_value, train.keep_checkpoints,
                                      train.early_stopping_min_delta)
    tensorboard = keras.callbacks.TensorBoard(log_dir=str(run_dir / artifacts.TENSORBOARD_DIR), update_freq="epoch")
    _fit(model, data, train, start, [control, reporter, evaluator, saver, tensorboard])
    if not control.failed and saver.saved_step != clock.step and clock.step > start.initial_step:
        # Stopped between evaluations: keep the work done (as "last", never as "best" unevaluated).
        saver.save(best=False)
    status = {"failed": "failed", "stopped": "stopped"}.get(control.outcome or "", "finished")
    return TrainingOutcome(status, control.error, clock.step, clock.epoch, dict(evaluator.last_metrics))


def _start(config: artifacts.RunConfig, checkpoints: artifacts.Checkpoints, data: _Data, layout) -> _Start:
    """The model to train, built fresh or loaded from the last checkpoint (with its optimizer
    state), compiled under the run's distribution strategy."""
    from textgen.models.losses import MaskedCrossEntropy, MaskedTokenAccuracy
    from textgen.models.registry import build_model

    train = config.train
    last, best = _resume_points(checkpoints)
    strategy = make_strategy(train.strategy)
    if strategy.num_replicas_in_sync > 1:
        from textgen.data.pipeline import pad_batches_to_multiple

        data.train_dataset = pad_batches_to_multiple(data.train_dataset, strategy.num_replicas_in_sync)
        data.valid_dataset = pad_batches_to_multiple(data.valid_dataset, strategy.num_replicas_in_sync)
    with strategy.scope():
        if last is not None:
            model, loaded, warning = artifacts.load_checkpoint_model(checkpoints, last)
            if warning:
                print(f"warning: {warning}", flush=True)  # into job.log
            last = loaded
        else:
            model = build_model(config.model)
        initial_step = last.step if last else 0
        total_steps = max(initial_step, train.planned_steps(data.steps_per_epoch))
        # Built before fit: Keras otherwise traces the train step twice.
        optimizer = build_optimizer(train, total_steps, model.trainable_variables)
        if last is not None:
            artifacts.restore_optimizer(optimizer, model.trainable_variables, last.path / artifacts.OPTIMIZER_FILE)
            optimizer.iterations.assign(initial_step)
        model.batch_parts = layout.batch_parts
        _set_matmul_precision(model, train.matmul_precision)
        model.compile(optimizer=optimizer, loss=MaskedCrossEntropy(label_smoothing=train.label_smoothing),
                      metrics=[MaskedTokenAccuracy(name="accuracy")], jit_compile=train.jit_compile)
    return _Start(model, best, initial_step, total_steps)


def _resume_points(checkpoints: artifacts.Checkpoints) -> tuple[Any, Any]:
    """The last and best checkpoints (None, None for a new run). An index that points at a damaged
    folder gives the newest whole one as last, and last as best."""
    try:
        last = checkpoints.get("last")
    except StoreError:
        listed = checkpoints.list()
        last = listed[-1] if listed else None
    try:
        best = checkpoints.get("best")
    except StoreError:
        best = last
    return last, best


def _set_matmul_precision(model: Any, precision: str) -> None:
    model.set_matmul_precision(precision)
    if precision == "bfloat16":
        from textgen.models.layers import native_bfloat16_matmul

        how = ("bfloat16 matmuls in hardware" if native_bfloat16_matmul() else
               "emulated: operands rounded to bfloat16, multiplied in float32 (no native bfloat16 here)")
        print(f"matmul_precision: bfloat16, {how}", flush=True)  # into job.log


def _score_and_probe(model: Any, config: artifacts.RunConfig, data: _Data, source_tokenizer: Any,
                     target_tokenizer: Any) -> Callable[[], tuple[dict[str, float], list]]:
    """What the evaluator runs at each evaluation: greedy BLEU and chrF on the scored validation
    examples, and the probes' outputs."""
    from textgen.decoding import DecodingConfig, generate

    greedy = DecodingConfig(strategy="greedy", max_length=config.model.max_target_length,
                            batch_size=64, time_limit_seconds=120)

    def outputs(sources: list[str]) -> list[str]:
        return [g.output for g in generate(model, source_tokenizer, target_tokenizer, sources, greedy,
                                           attention=False)]

    def score_and_probe():
        scores = validation_scores(outputs(data.score_sources), data.score_references) if data.score_sources else {}
        probes = []
        if data.probe_sources:
            probes = list(zip(data.probe_indices, data.probe_sources, data.probe_references,
                              outputs(data.probe_sources)))
        return scores, probes

    return score_and_probe


def _fit(model: Any, data: _Data, train: TrainConfig, start: _Start, callbacks: list) -> None:
    """`fit` over the steps left, one Keras epoch per evaluation interval."""
    eval_interval = train.eval_every_steps or data.steps_per_epoch
    remaining = start.total_steps - start.initial_step
    if remaining <= 0:
        return
    intervals_done = start.initial_step // eval_interval
    model.fit(
        data.train_dataset,
        steps_per_epoch=eval_interval,
        initial_epoch=intervals_done,
        epochs=intervals_done + math.ceil(remaining / eval_interval),
        validation_data=data.valid_dataset,
        callbacks=callbacks,
        shuffle=False,
        verbose=0,
    )
