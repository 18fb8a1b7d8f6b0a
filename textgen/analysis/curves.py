"""Training curves as plain data: metric rows from the run store -> one (x, y, smoothed) series
per run, for the Runs page's live charts (and anything else that plots a run).

- x axis: the global step, the data epoch (step / steps per epoch, as the trainer logs it) or the
  wall time in seconds since the run's first value among the rows given.
- A resumed run starts again from its last checkpoint, so its steps go back and rows after that
  checkpoint were logged twice. A series keeps the latest timeline: a row whose step is not past
  the previous row's step drops the earlier rows from that step on.
- Smoothing is a time-constant exponential moving average over the x axis (`smooth`): a point's
  weight halves every `half_life` units of x, whatever the number of points in between, so
  logging more often (or a faster machine) does not change the curve's shape. TensorBoard's
  per-point weight (`s = a s + (1 - a) y`) smooths 10x more points 10x more strongly in x.

Nothing here imports TensorFlow or streamlit.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterable, Sequence

import numpy as np

from textgen.store.database import MetricRow

X_AXES = ("step", "epoch", "time")
X_AXIS_TITLES = {"step": "step", "epoch": "epoch", "time": "time since start (s)"}
# Perplexity from a loss above this would overflow; the trainer caps it the same way.
_MAX_LOSS_FOR_PERPLEXITY = 50.0
# `smooth` sums exp(distance) over blocks of at most this many time constants (e^300 ~ 1e130).
_BLOCK_TAUS = 300.0


@dataclasses.dataclass(frozen=True)
class CurveMetric:
    """A curve the Runs page offers: `split/name` as stored, or derived from another one."""

    key: str  # "valid/loss": the split and stored name
    title: str
    split: str
    name: str
    # "exp": the stored value is a loss and the curve shows exp(loss) (training perplexity,
    # which the trainer does not log separately).
    derived: str | None = None
    higher_is_better: bool = False


CURVE_METRICS: dict[str, CurveMetric] = {
    metric.key: metric
    for metric in (
        CurveMetric("train/loss", "training loss", "train", "loss"),
        CurveMetric("valid/loss", "validation loss", "valid", "loss"),
        CurveMetric("train/perplexity", "training perplexity", "train", "loss", derived="exp"),
        CurveMetric("valid/perplexity", "validation perplexity", "valid", "perplexity"),
        CurveMetric("train/accuracy", "training token accuracy", "train", "accuracy", higher_is_better=True),
        CurveMetric("valid/accuracy", "validation token accuracy", "valid", "accuracy", higher_is_better=True),
        CurveMetric("valid/bleu", "validation BLEU", "valid", "bleu", higher_is_better=True),
        CurveMetric("valid/chrf", "validation chrF", "valid", "chrf", higher_is_better=True),
        CurveMetric("train/learning_rate", "learning rate", "train", "learning_rate"),
        CurveMetric("train/tokens_per_second", "tokens per second", "train", "tokens_per_second",
                    higher_is_better=True),
    )
}
DEFAULT_METRICS = ("train/loss", "valid/loss")


@dataclasses.dataclass(frozen=True)
class Series:
    """One run's curve of one metric: x ascending, y raw, `smoothed` the same length as y (or
    empty when smoothing is off)."""

    run_id: str
    metric: str
    x: list[float]
    y: list[float]
    smoothed: list[float]

    def __len__(self) -> int:
        return len(self.x)


def check_metric(key: str) -> CurveMetric:
    if key not in CURVE_METRICS:
        raise ValueError(f"metric must be one of {', '.join(CURVE_METRICS)}; got {key!r}.")
    return CURVE_METRICS[key]


def check_x_axis(x_axis: str) -> str:
    if x_axis not in X_AXES:
        raise ValueError(f"x_axis must be one of {', '.join(X_AXES)}; got {x_axis!r}.")
    return x_axis


def stored_names(metric_keys: Iterable[str]) -> list[str]:
    """The stored metric names to fetch (`RunStore.get_metrics(names=...)`) for these curves."""
    names: list[str] = []
    for key in metric_keys:
        name = check_metric(key).name
        if name not in names:
            names.append(name)
    return names


def start_times(rows: Iterable[MetricRow]) -> dict[str, float]:
    """The time of each run's first row: time zero of the "time" x axis."""
    starts: dict[str, float] = {}
    for row in rows:
        if row.run_id not in starts or row.time < starts[row.run_id]:
            starts[row.run_id] = row.time
    return starts


def latest_timeline(rows: Sequence[MetricRow]) -> list[MetricRow]:
    """Rows of one run and metric in insertion order, without those a resume rewound: when a
    row's step is not after the previous row's, rows from that step on are dropped."""
    kept: list[MetricRow] = []
    for row in rows:
        while kept and kept[-1].step >= row.step:
            kept.pop()
        kept.append(row)
    return kept


def _merge_equal_x(x: list[float], y: list[float]) -> tuple[list[float], list[float]]:
    """Consecutive points at the same x (two rows at one epoch value) become their mean."""
    merged_x: list[float] = []
    merged_y: list[float] = []
    counts: list[int] = []
    for xi, yi in zip(x, y):
        if merged_x and xi == merged_x[-1]:
            counts[-1] += 1
            merged_y[-1] += (yi - merged_y[-1]) / counts[-1]
        else:
            merged_x.append(xi)
            merged_y.append(yi)
            counts.append(1)
    return merged_x, merged_y


def series_points(rows: Iterable[MetricRow], metric_key: str, x_axis: str = "step",
                  *, starts: dict[str, float] | None = None) -> dict[str, tuple[list[float], list[float]]]:
    """{run_id: (x, y)} of one metric, runs in order of first appearance.

    rows: `RunStore.get_metrics` output (any runs and names; other metrics are ignored).
    starts: time zero per run for x_axis="time" (default: each run's first row among `rows`).
    Rows without an epoch are left out of epoch curves; non-finite values are left out.
    """
    metric = check_metric(metric_key)
    check_x_axis(x_axis)
    rows = list(rows)
    if starts is None:
        starts = start_times(rows)
    by_run: dict[str, list[MetricRow]] = {}
    for row in rows:
        if row.split == metric.split and row.name == metric.name:
            by_run.setdefault(row.run_id, []).append(row)
    points: dict[str, tuple[list[float], list[float]]] = {}
    for run_id, run_rows in by_run.items():
        x: list[float] = []
        y: list[float] = []
        for row in latest_timeline(run_rows):
            value = row.value
            if metric.derived == "exp":
                value = math.exp(min(value, _MAX_LOSS_FOR_PERPLEXITY))
            if x_axis == "step":
                position: float | None = float(row.step)
            elif x_axis == "epoch":
                position = None if row.epoch is None else float(row.epoch)
            else:
                position = row.time - starts.get(run_id, row.time)
            if position is None or not math.isfinite(value) or not math.isfinite(position):
                continue
            x.append(position)
            y.append(float(value))
        points[run_id] = _merge_equal_x(x, y)
    return points


def smooth(x: Sequence[float], y: Sequence[float], half_life: float) -> list[float]:
    """Exponential moving average of y over x with a half-life in x units, debiased.

    The smoothed value at x_i is the average of the piecewise-linear curve through the points
    on [x_0, x_i], weighted by 2 ** (-(x_i - u) / half_life). Each interval's integral is exact
    for the linear piece (weights on its two end points below), so the result depends on the
    underlying curve and the half-life, not on how densely it was sampled. Dividing by the
    total weight, 1 - exp(-(x_i - x_0) / tau), removes the bias towards the first value that
    an EMA started at zero has (Adam's bias correction, in continuous time). half_life <= 0
    returns y unchanged. x must be strictly increasing.
    """
    values = [float(v) for v in y]
    if half_life <= 0 or len(values) < 2:
        return values
    positions = np.asarray(x, dtype=np.float64)
    if len(positions) != len(values):
        raise ValueError(f"x and y must have the same length, got {len(positions)} and {len(values)}.")
    gaps = np.diff(positions)
    if np.any(gaps <= 0):
        raise ValueError("x must be strictly increasing (merge equal x values first).")
    tau = half_life / math.log(2.0)
    ratio = gaps / tau
    one_minus_decay = -np.expm1(-ratio)  # exact for tiny gaps
    # Integral over one gap of the linear piece times exp(-(x_i - u) / tau), divided by tau:
    # weight on the interval's right end (y_i) and on its left end (y_{i-1}).
    # weight_right = 1 - (1 - a) / r; its Taylor series where that difference would cancel.
    tiny = ratio < 1e-4
    safe_ratio = np.where(tiny, 1.0, ratio)
    weight_right = np.where(tiny, ratio / 2 - ratio**2 / 6 + ratio**3 / 24,
                            1.0 - one_minus_decay / safe_ratio)
    weight_left = one_minus_decay - weight_right
    # The recurrence num_i = a_i num_(i-1) + added_i sums to
    #   num_i = sum_k added_k exp(-(x_i - x_k) / tau),
    # computed with cumulative sums, in blocks short enough (in units of tau) that exp() stays
    # finite; the total weight telescopes to 1 - exp(-(x_i - x_0) / tau).
    added = weight_left * np.asarray(values[:-1]) + weight_right * np.asarray(values[1:])
    distance = (positions[1:] - positions[0]) / tau  # (n - 1,) in units of tau
    numerator = np.empty_like(added)
    carried, carried_at, start = 0.0, 0.0, 0
    while start < len(added):
        end = int(np.searchsorted(distance, distance[start] + _BLOCK_TAUS, side="right"))
        block = distance[start:end]
        growth = np.exp(block - block[0])
        numerator[start:end] = (np.cumsum(added[start:end] * growth) / growth
                                + carried * np.exp(-(block - carried_at)))
        carried, carried_at, start = numerator[end - 1], block[-1], end
    denominator = -np.expm1(-distance)
    return [values[0], *(numerator / denominator).tolist()]


def thin(series: Series, max_points: int) -> Series:
    """At most about `max_points` points of a series, for drawing: the x range is cut into
    max_points / 2 buckets of consecutive points and each keeps its lowest and highest raw
    value (so spikes survive), plus the first and last point. Smoothing is done before."""
    if max_points < 4:
        raise ValueError(f"max_points must be at least 4, got {max_points}.")
    if len(series) <= max_points:
        return series
    values = np.asarray(series.y)
    keep = {0, len(values) - 1}
    for bucket in np.array_split(np.arange(len(values)), max_points // 2 - 1):
        keep.update((int(bucket[np.argmin(values[bucket])]), int(bucket[np.argmax(values[bucket])])))
    order = sorted(keep)
    return Series(series.run_id, series.metric, [series.x[i] for i in order], [series.y[i] for i in order],
                  [series.smoothed[i] for i in order] if series.smoothed else [])


def build_curves(rows: Iterable[MetricRow], metric_key: str, x_axis: str = "step", *,
                 smoothing: float = 0.0, starts: dict[str, float] | None = None,
                 run_ids: Sequence[str] | None = None, max_points: int | None = None) -> list[Series]:
    """The curves of one metric for every run in `rows`, smoothed with a half-life of
    `smoothing` x (the x range shared by all runs), so overlaid runs are smoothed alike.

    smoothing: a fraction in [0, 1); 0 turns smoothing off (`Series.smoothed` is empty).
    run_ids: the runs to draw, in this order (default: all, in order of first appearance).
    Runs with no point of this metric get no series.
    max_points: thin each series to about this many points after smoothing (`thin`), so a
    long run's chart stays light to send and draw.
    """
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be a fraction in [0, 1), got {smoothing!r}.")
    points = series_points(rows, metric_key, x_axis, starts=starts)
    if run_ids is not None:
        points = {run_id: points[run_id] for run_id in run_ids if run_id in points}
    all_x = [value for x, _ in points.values() for value in x]
    span = (max(all_x) - min(all_x)) if all_x else 0.0
    half_life = smoothing * span
    built = [
        Series(run_id, metric_key, x, y, smooth(x, y, half_life) if half_life > 0 else [])
        for run_id, (x, y) in points.items()
        if x
    ]
    return [thin(c, max_points) for c in built] if max_points else built
