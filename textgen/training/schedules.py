"""Learning-rate schedules, as functions of the optimizer's step (so a resumed run continues them).

    constant       lr(t) = peak
    inverse_sqrt   lr(t) = peak * min(t / w, sqrt(w / t))            (Vaswani et al. 2017, peak at t = w)
    cosine         lr(t) = peak * t / w for t < w, then
                   peak * (m + (1 - m) * (1 + cos(pi * (t - w) / (T - w))) / 2),  m = 0.1, until T
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from textgen.training.config import TrainConfig

COSINE_FLOOR = 0.1  # cosine decays to 10% of the peak, not to zero: late steps still learn


@keras.saving.register_keras_serializable(package="textgen")
class InverseSquareRoot(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, peak: float, warmup_steps: int) -> None:
        self.peak = float(peak)
        self.warmup_steps = max(1, int(warmup_steps))

    def __call__(self, step):
        t = tf.maximum(tf.cast(step, tf.float32), 1.0)
        w = float(self.warmup_steps)
        return self.peak * tf.minimum(t / w, tf.sqrt(w / t))

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps}


@keras.saving.register_keras_serializable(package="textgen")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, peak: float, warmup_steps: int, total_steps: int) -> None:
        self.peak = float(peak)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = max(int(total_steps), self.warmup_steps + 1)

    def __call__(self, step):
        t = tf.cast(step, tf.float32)
        w = float(self.warmup_steps)
        warm = self.peak * tf.minimum(1.0, (t + 1.0) / max(w, 1.0))
        progress = tf.clip_by_value((t - w) / float(self.total_steps - self.warmup_steps), 0.0, 1.0)
        decayed = self.peak * (COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1.0 + tf.cos(math.pi * progress)))
        return tf.where(t < w, warm, decayed)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}


def make_schedule(train: TrainConfig, total_steps: int):
    if train.schedule == "inverse_sqrt":
        return InverseSquareRoot(train.learning_rate, train.warmup_steps)
    if train.schedule == "cosine":
        return WarmupCosine(train.learning_rate, train.warmup_steps, total_steps)
    return train.learning_rate
