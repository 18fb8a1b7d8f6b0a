"""How far a run is: steps, epochs, the progress bar's share, ETA and latest figures, from its
config and logged metrics."""

from __future__ import annotations

import dataclasses
import time

from textgen.core.formatting import format_duration
from textgen.store.database import ACTIVE_STATUSES, RunRecord, RunStore


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
