"""Keras callbacks that connect `fit` to the run store: the trainer only fires events.

OpenNMT-style split: `StoreReporter` writes metrics, `RunControl` watches the stop request, the
time budget and non-finite losses, `Evaluator` scores validation BLEU/chrF and probe samples,
and `CheckpointSaver` keeps the best and last checkpoints. Each is small and testable alone.

Keras "epochs" here are evaluation intervals (`steps_per_epoch` = steps between evaluations over a
repeated dataset); the data epoch is derived from the global step.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import keras

from textgen.store.database import RunStore, SampleRow


class TrainingClock:
    """Shared step counting: global step, data epoch, throughput and ETA."""

    def __init__(self, *, initial_step: int, total_steps: int, steps_per_epoch: int,
                 tokens_per_step: float, minutes: float) -> None:
        self.step = initial_step
        self.initial_step = initial_step
        self.total_steps = total_steps
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.tokens_per_step = tokens_per_step
        self.deadline = time.monotonic() + minutes * 60 if minutes > 0 else None
        self.started = time.monotonic()

    @property
    def epoch(self) -> float:
        return self.step / self.steps_per_epoch

    def tokens_per_second(self) -> float:
        elapsed = time.monotonic() - self.started
        return (self.step - self.initial_step) * self.tokens_per_step / elapsed if elapsed > 0 else 0.0

    def eta_seconds(self) -> float:
        elapsed = time.monotonic() - self.started
        done = self.step - self.initial_step
        remaining = (self.total_steps - self.step) * elapsed / done if done > 0 else float("nan")
        if self.deadline is not None:
            remaining = min(remaining, max(0.0, self.deadline - time.monotonic())) if done > 0 else (
                self.deadline - time.monotonic())
        return remaining

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline


class RunControl(keras.callbacks.Callback):
    """Counts steps; stops on a stop request, the time budget, or a non-finite loss.

    `outcome` ends as None (ran to the end), "stopped", "time_budget", "early_stopping" or
    "failed" with `error` saying why ("non-finite loss at step N").
    """

    def __init__(self, clock: TrainingClock, should_stop: Callable[[], bool], poll_seconds: float = 1.0) -> None:
        super().__init__()
        self.clock = clock
        self.should_stop = should_stop
        self.poll_seconds = poll_seconds
        self.outcome: str | None = None
        self.error: str | None = None
        self._last_poll = 0.0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.clock.step += 1
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss):
            self.outcome, self.error = "failed", f"non-finite loss at step {self.clock.step}"
            self.model.stop_training = True
            return
        if self.clock.step >= self.clock.total_steps:
            self.model.stop_training = True
        now = time.monotonic()
        if now - self._last_poll >= self.poll_seconds:
            self._last_poll = now
            if self.should_stop():
                self.outcome = "stopped"
                self.model.stop_training = True
            elif self.clock.out_of_time():
                self.outcome = "time_budget"
                self.model.stop_training = True

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"


class StoreReporter(keras.callbacks.Callback):
    """Training loss (mean over the steps since the last write) about once a second, plus the
    learning rate, tokens per second and ETA; validation metrics at each evaluation."""

    def __init__(self, store: RunStore, run_id: str, clock: TrainingClock, control: RunControl,
                 every_seconds: float, on_progress: Callable[[dict[str, float]], None] | None = None) -> None:
        super().__init__()
        self.store, self.run_id, self.clock, self.control = store, run_id, clock, control
        self.every_seconds = every_seconds
        self.on_progress = on_progress
        self._last_write = 0.0
        self._written_sum = 0.0
        self._written_batches = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        # Keras resets its running means each (evaluation-interval) epoch.
        self._written_sum, self._written_batches = 0.0, 0

    def _learning_rate(self) -> float:
        # Keras evaluates a schedule at the current step here; under a distribution strategy the
        # value is a mirrored variable, hence the conversion.
        return float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        now = time.monotonic()
        if self.control.failed or now - self._last_write < self.every_seconds:
            return
        logs = logs or {}
        batches = batch + 1
        running_sum = float(logs.get("loss", 0.0)) * batches
        interval = batches - self._written_batches
        if interval <= 0:
            return
        loss = (running_sum - self._written_sum) / interval
        self._written_sum, self._written_batches = running_sum, batches
        self._last_write = now
        values = {
            "loss": loss,
            "learning_rate": self._learning_rate(),
            "tokens_per_second": self.clock.tokens_per_second(),
            "eta_seconds": self.clock.eta_seconds(),
        }
        if "accuracy" in logs:
            values["accuracy"] = float(logs["accuracy"])
        values = {k: v for k, v in values.items() if math.isfinite(v)}
        self.store.log_metrics(self.run_id, self.clock.step, values, split="train", epoch=self.clock.epoch)
        if self.on_progress:
            self.on_progress({"step": self.clock.step, "total_steps": self.clock.total_steps,
                              "epoch": self.clock.epoch, **values})


class Evaluator(keras.callbacks.Callback):
    """At each evaluation: validation loss/accuracy/perplexity (from Keras' validation pass),
    BLEU and chrF on a validation subset and the probe samples (decoded greedily), all stored.
    Sets `last_metrics` for the checkpoint saver and early stopping."""

    def __init__(self, store: RunStore, run_id: str, clock: TrainingClock, control: RunControl,
                 score_and_probe: Callable[[], tuple[dict[str, float], list[tuple[int, str, str, str]]]],
                 on_progress: Callable[[dict[str, float]], None] | None = None) -> None:
        super().__init__()
        self.store, self.run_id, self.clock, self.control = store, run_id, clock, control
        self.score_and_probe = score_and_probe
        self.on_progress = on_progress
        self.last_metrics: dict[str, float] = {}

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.control.failed:
            return
        logs = logs or {}
        metrics: dict[str, float] = {}
        if "val_loss" in logs:
            metrics["loss"] = float(logs["val_loss"])
            metrics["perplexity"] = math.exp(min(metrics["loss"], 50.0))
        if "val_accuracy" in logs:
            metrics["accuracy"] = float(logs["val_accuracy"])
        scores, probes = self.score_and_probe()
        metrics.update(scores)
        metrics = {k: v for k, v in metrics.items() if math.isfinite(v)}
        if metrics:
            self.store.log_metrics(self.run_id, self.clock.step, metrics, split="valid", epoch=self.clock.epoch)
        if probes:
            now = time.time()
            self.store.add_samples(self.run_id, [
                SampleRow(self.run_id, self.clock.step, self.clock.epoch, index, source, reference, output, now)
                for index, source, reference, output in probes
            ])
        self.last_metrics = metrics
        if self.on_progress:
            self.on_progress({"step": self.clock.step, "total_steps": self.clock.total_steps,
                              "epoch": self.clock.epoch, **{f"valid_{k}": v for k, v in metrics.items()}})


class CheckpointSaver(keras.callbacks.Callback):
    """After each evaluation: save "last", and "best" when the chosen metric improved.
    Also applies early stopping (patience counted in evaluations). Non-finite weights are never
    saved: a failed run keeps its last good checkpoint."""

    def __init__(self, checkpoints: Any, evaluator: Evaluator, control: RunControl, clock: TrainingClock,
                 metric: str, patience: int, best_value: float | None = None, keep_history: int = 0,
                 min_delta: float = 0.0) -> None:
        super().__init__()
        self.checkpoints, self.evaluator, self.control, self.clock = checkpoints, evaluator, control, clock
        self.metric = metric  # "valid_loss" (lower is better) or "bleu" (higher is better)
        self.patience = patience
        self.best_value = best_value
        self.keep_history = keep_history
        self.min_delta = min_delta
        self.evaluations_without_improvement = 0
        self.saved_step: int | None = None

    def _value(self) -> float | None:
        key = "loss" if self.metric == "valid_loss" else "bleu"
        return self.evaluator.last_metrics.get(key)

    def _improved(self, value: float | None) -> bool:
        if value is None or not math.isfinite(value):
            return False
        if self.best_value is None:
            return True
        if self.metric == "valid_loss":
            return value < self.best_value - self.min_delta
        return value > self.best_value + self.min_delta

    def save(self, best: bool) -> None:
        self.checkpoints.save(self.model, self.model.optimizer, step=self.clock.step, epoch=self.clock.epoch,
                              metrics=dict(self.evaluator.last_metrics), best=best,
                              keep_history=self.keep_history)
        self.saved_step = self.clock.step

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.control.failed:
            return
        value = self._value()
        improved = self._improved(value)
        if improved:
            self.best_value = value
            self.evaluations_without_improvement = 0
        else:
            self.evaluations_without_improvement += 1
        self.save(best=improved)
        if self.patience and self.evaluations_without_improvement >= self.patience:
            if self.control.outcome is None:
                self.control.outcome = "early_stopping"
            self.model.stop_training = True
