"""How a model is trained (`TrainConfig`). Saved with every run as JSON."""

from __future__ import annotations

import dataclasses

from textgen.core.config import ConfigMixin, setting
from textgen.models.config import MATMUL_PRECISIONS

OPTIMIZERS = ("adam", "adamw")


SCHEDULES = ("constant", "inverse_sqrt", "cosine")


EARLY_STOPPING_METRICS = ("valid_loss", "bleu")


STRATEGIES = ("default", "mirrored", "multi-worker")


@dataclasses.dataclass(frozen=True)
class TrainConfig(ConfigMixin):
    """How a model is trained. Saved with the run; `--set key=value` overrides any field."""

    epochs: int = setting(
        10, low=0, high=10_000,
        help="Passes over the training split (a time budget may end training sooner).")
    max_steps: int = setting(
        0, low=0, high=100_000_000,
        help=("Stop after this many optimizer steps in all if the epochs would run longer (0 = the "
              "epochs decide); the learning-rate schedule spans the planned steps (nanoGPT's "
              "max_iters)."))
    batch_size: int = setting(
        64, low=1, high=65_536,
        help=("Examples per batch (per replica count: the global batch under a distribution "
              "strategy)."))
    learning_rate: float = setting(
        1e-3, low=1e-8, high=10.0,
        help="Peak learning rate (after warm-up for the inverse_sqrt and cosine schedules).")
    optimizer: str = setting("adam", "adam, or adamw (decoupled weight decay, below).", choices=OPTIMIZERS)
    weight_decay: float = setting(
        0.01, low=0.0, high=1.0,
        help=("AdamW's decoupled weight decay, applied to matrices and embeddings only (biases and "
              "LayerNorm scales are not decayed, as in nanoGPT and BERT); ignored by adam."))
    beta_1: float = setting(
        0.9, low=0.0, high=0.9999,
        help="Adam's first-moment decay (beta_1), the Adam paper's and Keras' default.")
    beta_2: float = setting(
        0.999, low=0.0, high=0.99999,
        help=("Adam's second-moment decay (beta_2); nanoGPT lowers it to 0.99 when batches hold few "
              "tokens."))
    schedule: str = setting(
        "constant", choices=SCHEDULES,
        help=("constant; inverse_sqrt (linear warm-up then 1/sqrt(step), \"Attention is all you "
              "need\"); cosine (linear warm-up then cosine decay to 10% of the peak by the last "
              "planned step)."))
    warmup_steps: int = setting(
        200, low=0, high=10_000_000,
        help="Steps of linear warm-up for inverse_sqrt and cosine.")
    clip_norm: float = setting(
        1.0, low=0.0, high=1e6,
        help="Clip the global gradient norm to this (0 turns clipping off).")
    label_smoothing: float = setting(
        0.0, low=0.0, high=0.5,
        help="Label smoothing of the cross-entropy (0 = plain cross-entropy).")
    early_stopping_patience: int = setting(
        0, low=0, high=10_000,
        help="Stop after this many evaluations without improvement (0 = never stop early).")
    early_stopping_metric: str = setting(
        "valid_loss", choices=EARLY_STOPPING_METRICS,
        help="What \"best\" means for early stopping and the best checkpoint.")
    early_stopping_min_delta: float = setting(
        0.0, low=0.0, high=1e6,
        help=("An evaluation improves on the best only by more than this (loss units, or BLEU "
              "points)."))
    minutes: float = setting(
        0.0, low=0.0, high=60 * 24 * 30,
        help=("Time budget in minutes: stop cleanly when spent, keeping the best checkpoint (0 = "
              "none)."))
    eval_every_steps: int = setting(
        0, low=0, high=10_000_000,
        help="Evaluate every this many steps (0 = once per epoch).")
    eval_bleu_examples: int = setting(
        200, low=0, high=100_000,
        help=("Validation examples decoded (greedily) at each evaluation for BLEU and chrF (0 = skip "
              "scores)."))
    num_probe_samples: int = setting(
        8, low=0, high=100,
        help=("Fixed validation sources decoded at every evaluation and kept, to watch outputs "
              "evolve."))
    keep_checkpoints: int = setting(
        5, low=0, high=1000,
        help=("Earlier evaluation checkpoints kept besides best and last (the attention viewer's "
              "slider)."))
    log_every_seconds: float = setting(
        1.0, low=0.0, high=3600,
        help="Training loss is written to the store at most this often (seconds).")
    jit_compile: bool = setting(
        False,
        help=("Compile the training step with XLA (Transformer families only; batches are bucketed "
              "to few shapes)."))
    matmul_precision: str = setting(
        "float32", choices=MATMUL_PRECISIONS,
        help=("float32, or bfloat16: in the training and validation passes the projections (every "
              "Dense layer and the output projection) multiply inputs and weights rounded to bfloat16 "
              "(float32 accumulation, the result rounded to bfloat16); weights, optimizer, norms, "
              "softmax, attention scores and all decoding stay float32. Faster on CPUs with native "
              "bfloat16 (AVX512-BF16, AMX); others emulate it, with the same numbers, slower than "
              "float32. Checkpoints are the same either way."))
    intra_op_threads: int = setting(
        0, low=0, high=1024,
        help=("Threads TensorFlow may use inside one op. 0 = chosen per family and machine "
              "(`training.threads.thread_layout`): 1 for the Transformer families on up to 2 cores, "
              "where one thread per op with ops and batch slices side by side is faster; otherwise "
              "TensorFlow's default (all cores). To keep a core free for the app, "
              "set this and inter_op_threads to 1."))
    inter_op_threads: int = setting(
        0, low=0, high=1024,
        help=("Ops TensorFlow may run at once. 0 = the core count where intra_op_threads resolves to "
              "the sliced layout above; as many as intra_op_threads when that is set, up to 2; "
              "otherwise TensorFlow's default (all cores)."))
    batch_parts: int = setting(
        0, low=0, high=64,
        help=("Compute each batch as this many independent slices side by side (the same results): "
              "with one thread per op and inter_op_threads at the core count, every core stays busy "
              "on a small model. 0 = the core count in the sliced layout above, otherwise 1 (the whole "
              "batch at once). The recurrent families are no faster sliced."))
    strategy: str = setting(
        "default", choices=STRATEGIES,
        help=("default (one device), mirrored (all local GPUs/devices), or multi-worker (TF_CONFIG "
              "cluster)."))
    seed: int = setting(0, "Seed for weight initialisation, shuffling and dropout.", low=0, high=2**31 - 1)

    def planned_steps(self, steps_per_epoch: int) -> int:
        """Steps the run is planned for: the epochs', capped by max_steps when set."""
        steps = self.epochs * steps_per_epoch
        return min(steps, self.max_steps) if self.max_steps else steps