"""How a model is trained (`TrainConfig`). Saved with every run as JSON."""

from __future__ import annotations

import dataclasses

from textgen.core.config import ConfigMixin, check_choice, check_range
from textgen.models.config import MATMUL_PRECISIONS

OPTIMIZERS = ("adam", "adamw")


SCHEDULES = ("constant", "inverse_sqrt", "cosine")


EARLY_STOPPING_METRICS = ("valid_loss", "bleu")


STRATEGIES = ("default", "mirrored", "multi-worker")


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
    # (`training.threads.thread_layout`): 1 for the Transformer families on up to 2 cores, where one
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
