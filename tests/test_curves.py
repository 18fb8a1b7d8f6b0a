"""textgen.analysis.curves: metric rows -> per-run series by step, epoch or time; smoothing that depends on
the x axis, not on how many points were logged."""

from __future__ import annotations

import math

import numpy as np
import pytest

from textgen.analysis import curves
from textgen.store.database import MetricRow


def underlying(x: np.ndarray) -> np.ndarray:
    """A loss-like curve: decay plus a wiggle (period ~125 steps) that smoothing should damp."""
    return 2.0 * np.exp(-x / 300.0) + 0.3 * np.sin(x / 20.0)


def per_point_ema(values: np.ndarray, weight: float = 0.9) -> np.ndarray:
    """TensorBoard's smoothing (a fixed weight per point), for contrast."""
    out, last = [], values[0]
    for value in values:
        last = weight * last + (1 - weight) * value
        out.append(last)
    return np.asarray(out)


def test_smoothing_does_not_depend_on_the_number_of_points() -> None:
    sparse_x = np.arange(0, 1000, 10.0)  # 100 points
    dense_x = np.arange(0, 1000, 1.0)  # 1000 points; every sparse x is among them
    sparse = np.asarray(curves.smooth(sparse_x, underlying(sparse_x), half_life=50))
    dense = np.asarray(curves.smooth(dense_x, underlying(dense_x), half_life=50))
    dense_at_sparse = dense[::10]
    assert np.max(np.abs(sparse - dense_at_sparse)) < 0.01
    # It does smooth: the wiggle (amplitude 0.3) mostly goes (smoothing is linear, so smooth it alone).
    wiggle = np.asarray(curves.smooth(dense_x, 0.3 * np.sin(dense_x / 20.0), half_life=50))
    assert np.max(np.abs(wiggle[dense_x > 300])) < 0.1
    # A per-point weight does not have the property: 10x the points, 10x the smoothing in x.
    naive_sparse = per_point_ema(underlying(sparse_x))
    naive_dense = per_point_ema(underlying(dense_x))[::10]
    assert np.max(np.abs(naive_sparse - naive_dense)) > 0.1


def test_smoothing_of_irregularly_spaced_points_matches_regular_ones() -> None:
    rng = np.random.default_rng(0)
    irregular_x = np.unique(np.concatenate([[0.0], np.sort(rng.uniform(0, 1000, 400)), [999.0]]))
    regular_x = np.arange(0, 1000, 1.0)
    irregular = curves.smooth(irregular_x, underlying(irregular_x), half_life=80)
    regular = curves.smooth(regular_x, underlying(regular_x), half_life=80)
    at_irregular = np.interp(irregular_x, regular_x, regular)
    assert np.max(np.abs(np.asarray(irregular) - at_irregular)[irregular_x > 100]) < 0.02


def test_smoothing_limits_and_debiasing() -> None:
    x = [0.0, 1.0, 2.5, 7.0, 10.0]
    # Debiased: a constant stays that constant from the first point on (no pull towards 0).
    assert curves.smooth(x, [3.0] * 5, half_life=2.0) == pytest.approx([3.0] * 5)
    assert curves.smooth(x, [1, 2, 3, 4, 5], half_life=0) == [1.0, 2.0, 3.0, 4.0, 5.0]
    # A tiny half-life follows the data; a huge one gives the mean of the piecewise-linear curve.
    assert curves.smooth(x, x, half_life=1e-9) == pytest.approx(x)
    assert curves.smooth(x, x, half_life=1e9)[-1] == pytest.approx(5.0, rel=1e-6)
    # Each smoothed value lies within the range of the values so far.
    values = [5.0, 1.0, 4.0, 0.5, 3.0]
    smoothed = curves.smooth(x, values, half_life=3.0)
    assert smoothed[0] == 5.0
    assert all(min(values[: i + 1]) <= s <= max(values[: i + 1]) for i, s in enumerate(smoothed))
    assert all(isinstance(s, float) for s in smoothed)
    with pytest.raises(ValueError, match="strictly increasing"):
        curves.smooth([0, 1, 1], [1, 2, 3], half_life=1.0)


def row(run_id: str, step: int, value: float, *, name: str = "loss", split: str = "train",
        epoch: float | None = None, time: float = 0.0, row_id: int = 0) -> MetricRow:
    return MetricRow(row_id, run_id, step, epoch if epoch is not None else step / 10, split, name, value, time)


def test_series_by_step_epoch_and_time() -> None:
    rows = [
        row("r-a", 5, 2.0, time=100.0), row("r-a", 10, 1.5, time=103.0),
        row("r-a", 10, 9.0, name="bleu", split="valid", time=104.0),
        row("r-b", 5, 3.0, time=500.0, epoch=0.25), row("r-b", 15, 2.5, time=530.0, epoch=0.75),
    ]
    by_step = curves.series_points(rows, "train/loss", "step")
    assert by_step == {"r-a": ([5.0, 10.0], [2.0, 1.5]), "r-b": ([5.0, 15.0], [3.0, 2.5])}
    assert curves.series_points(rows, "train/loss", "epoch")["r-b"] == ([0.25, 0.75], [3.0, 2.5])
    # Time counts from each run's own first row.
    by_time = curves.series_points(rows, "train/loss", "time")
    assert by_time["r-a"] == ([0.0, 3.0], [2.0, 1.5])
    assert by_time["r-b"] == ([0.0, 30.0], [3.0, 2.5])
    assert curves.series_points(rows, "valid/bleu", "time") == {"r-a": ([4.0], [9.0])}
    assert curves.series_points(rows, "valid/loss", "step") == {}


def test_training_perplexity_is_derived_from_the_loss() -> None:
    rows = [row("r-a", 1, 2.0), row("r-a", 2, 1000.0)]
    x, y = curves.series_points(rows, "train/perplexity", "step")["r-a"]
    assert y[0] == pytest.approx(math.exp(2.0))
    assert math.isfinite(y[1])  # capped like the trainer's validation perplexity


def test_a_resumed_run_keeps_its_latest_timeline() -> None:
    # Steps 1-3, then the job died and resumed from its checkpoint at step 1.
    rows = [row("r-a", 1, 5.0), row("r-a", 2, 4.0), row("r-a", 3, 3.0),
            row("r-a", 2, 4.5), row("r-a", 3, 3.5), row("r-a", 4, 2.5)]
    assert curves.series_points(rows, "train/loss", "step")["r-a"] == ([1.0, 2.0, 3.0, 4.0], [5.0, 4.5, 3.5, 2.5])


def test_build_curves_orders_runs_and_smooths_over_the_shared_range() -> None:
    rows = [row("r-a", step, float(step % 2), time=float(step)) for step in range(1, 101)]
    rows += [row("r-b", step, 1.0, time=float(step)) for step in range(1, 51)]
    plain = curves.build_curves(rows, "train/loss", "step", smoothing=0.0, run_ids=["r-b", "r-a", "r-gone"])
    assert [s.run_id for s in plain] == ["r-b", "r-a"]
    assert all(s.smoothed == [] for s in plain)
    smoothed = curves.build_curves(rows, "train/loss", "step", smoothing=0.1)
    by_run = {s.run_id: s for s in smoothed}
    assert len(by_run["r-a"].smoothed) == len(by_run["r-a"].y) == 100
    # The alternating 0/1 series smooths towards 0.5; half-life 0.1 x 99 steps.
    assert by_run["r-a"].smoothed[-1] == pytest.approx(0.5, abs=0.05)
    assert by_run["r-b"].smoothed == pytest.approx([1.0] * 50)
    with pytest.raises(ValueError, match="smoothing"):
        curves.build_curves(rows, "train/loss", smoothing=1.5)
    with pytest.raises(ValueError, match="metric must be one of"):
        curves.build_curves(rows, "train/nonsense")
    with pytest.raises(ValueError, match="x_axis must be one of"):
        curves.build_curves(rows, "train/loss", "wallclock")


def test_stored_names_fetches_each_name_once() -> None:
    assert curves.stored_names(["train/loss", "train/perplexity", "valid/loss", "valid/bleu"]) == ["loss", "bleu"]
    assert set(curves.DEFAULT_METRICS) <= set(curves.CURVE_METRICS)


def test_curves_from_the_store(store) -> None:
    run = store.create_run(label="demo", kind="gru", config={})
    for step in range(1, 6):
        store.log_metrics(run.id, step, {"loss": 3.0 - step * 0.1, "learning_rate": 1e-3},
                          epoch=step / 5, time_=1000.0 + step)
    store.log_metrics(run.id, 5, {"loss": 2.2, "bleu": 12.5}, split="valid", epoch=1.0, time_=1006.0)
    rows = store.get_metrics([run.id], names=curves.stored_names(["train/loss", "valid/bleu"]))
    (train,) = curves.build_curves(rows, "train/loss", "epoch")
    assert train.x == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert train.y == pytest.approx([2.9, 2.8, 2.7, 2.6, 2.5])
    (bleu,) = curves.build_curves(rows, "valid/bleu", "time", starts=curves.start_times(rows))
    assert (bleu.x, bleu.y) == ([5.0], [12.5])


def test_thinning_keeps_the_ends_and_the_spikes() -> None:
    x = list(range(10_000))
    y = [1.0] * 10_000
    y[4321], y[7000] = 50.0, -20.0
    rows = [row("r-a", step, value) for step, value in zip(x, y)]
    (full,) = curves.build_curves(rows, "train/loss", smoothing=0.01)
    (thinned,) = curves.build_curves(rows, "train/loss", smoothing=0.01, max_points=500)
    assert len(full) == 10_000 and len(thinned) <= 502
    assert thinned.x[0] == 0 and thinned.x[-1] == 9_999
    assert 50.0 in thinned.y and -20.0 in thinned.y
    assert thinned.x == sorted(thinned.x)
    # Smoothing was done on every point; thinning only picks some of them.
    smoothed_at = dict(zip(full.x, full.smoothed))
    assert thinned.smoothed == [smoothed_at[x] for x in thinned.x]
    short = curves.build_curves(rows[:100], "train/loss", max_points=500)[0]
    assert len(short) == 100
