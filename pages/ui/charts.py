"""Chart builders for the Runs and Evaluate pages: plain data in, a Plotly figure out.

Every run label or other untrusted text reaches Plotly through `ui.chart_label` (Plotly renders
a few HTML tags in names, ticks and hover text); numbers and our own titles go in as they are.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import plotly.graph_objects as go
from plotly.colors import qualitative

from pages.ui import chart_label
from textgen.analysis.curves import Series

PALETTE = qualitative.Plotly
# Below this many points a curve also shows its points (validation metrics: one per evaluation).
_MARKERS_BELOW = 40


def run_colors(run_ids: Sequence[str]) -> dict[str, str]:
    """One colour per run, stable for a given order (the picker's), shared by all charts."""
    return {run_id: PALETTE[i % len(PALETTE)] for i, run_id in enumerate(run_ids)}


def _with_alpha(color: str, alpha: float) -> str:
    """'#rrggbb' as 'rgba(r,g,b,alpha)', for the faint raw line under the smoothed one."""
    value = color.lstrip("#")
    r, g, b = (int(value[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def curve_figure(series: Sequence[Series], *, titles: Mapping[str, str], colors: Mapping[str, str],
                 metric_title: str, x_title: str, log_y: bool = False) -> go.Figure:
    """Runs overlaid: per run a faint raw line and, when smoothed, a solid smoothed line (one
    legend entry per run; clicking it hides both). titles: run id -> untrusted label."""
    figure = go.Figure()
    for item in series:
        name = chart_label(titles.get(item.run_id, item.run_id))
        color = colors.get(item.run_id, PALETTE[0])
        smoothed = bool(item.smoothed)
        mode = "lines+markers" if len(item) < _MARKERS_BELOW else "lines"
        figure.add_trace(go.Scatter(
            x=item.x, y=item.y, mode=mode, name=name, legendgroup=item.run_id,
            showlegend=not smoothed, meta="raw",
            line={"color": _with_alpha(color, 0.3) if smoothed else color, "width": 1.2},
            marker={"size": 5},
            hovertemplate="%{x:.4g}: %{y:.4g}<extra>%{fullData.name} (raw)</extra>"))
        if smoothed:
            figure.add_trace(go.Scatter(
                x=item.x, y=item.smoothed, mode="lines", name=name, legendgroup=item.run_id,
                meta="smoothed", line={"color": color, "width": 2.2},
                hovertemplate="%{x:.4g}: %{y:.4g}<extra>%{fullData.name} (smoothed)</extra>"))
    figure.update_layout(
        title={"text": metric_title}, height=340, margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 1, "xanchor": "right"},
        hovermode="x unified")
    figure.update_xaxes(title_text=x_title)
    figure.update_yaxes(title_text=metric_title, type="log" if log_y else "linear")
    return figure


def significance_heatmap(run_ids: Sequence[str], p_values: Sequence[Sequence[float | None]],
                         deltas: Sequence[Sequence[float | None]], *, titles: Mapping[str, str],
                         metric_title: str, alpha: float = 0.05) -> go.Figure:
    """p-values of paired tests, row run vs column run (darker = more significant); each cell
    also says Δ = column score - row score. titles: run id -> untrusted label; axis labels are
    "label · id", so two runs with one label stay apart."""
    labels = [f"{chart_label(titles.get(run_id, run_id), 32)} · {chart_label(run_id)}" for run_id in run_ids]
    text = [
        ["" if p is None else f"p={p:.3f}{' *' if p < alpha else ''}<br>Δ={d:+.2f}"
         for p, d in zip(p_row, d_row)]
        for p_row, d_row in zip(p_values, deltas)
    ]
    figure = go.Figure(go.Heatmap(
        z=[[None if p is None else p for p in row] for row in p_values], x=labels, y=labels,
        text=text, texttemplate="%{text}", zmin=0.0, zmax=1.0,
        colorscale="Blues", reversescale=True, colorbar={"title": {"text": "p-value"}},
        hovertemplate="row %{y}<br>column %{x}<br>%{text}<extra></extra>"))
    figure.update_layout(
        title={"text": f"Paired significance, {metric_title} (* p < {alpha:g})"},
        height=120 + 70 * len(run_ids), margin={"l": 10, "r": 10, "t": 50, "b": 10})
    figure.update_yaxes(autorange="reversed")
    return figure


def score_distribution_figure(scores: Mapping[str, Sequence[float]], *, titles: Mapping[str, str],
                              colors: Mapping[str, str], metric_title: str,
                              kind: str = "box") -> go.Figure:
    """Per-sentence scores of each run as box plots (kind="box") or overlaid histograms
    ("histogram"). scores: run id -> sentence scores; titles: run id -> untrusted label."""
    if kind not in ("box", "histogram"):
        raise ValueError(f"kind must be 'box' or 'histogram', got {kind!r}.")
    figure = go.Figure()
    for run_id, values in scores.items():
        name = chart_label(titles.get(run_id, run_id))
        color = colors.get(run_id, PALETTE[0])
        if kind == "box":
            figure.add_trace(go.Box(y=list(values), name=name, marker_color=color, boxmean=True,
                                    boxpoints="outliers"))
        else:
            figure.add_trace(go.Histogram(x=list(values), name=name, marker_color=color,
                                          opacity=0.6, xbins={"start": 0, "end": 100, "size": 5}))
    figure.update_layout(title={"text": f"Per-sentence {metric_title}"}, height=360,
                         margin={"l": 10, "r": 10, "t": 50, "b": 10}, barmode="overlay")
    if kind == "box":
        figure.update_yaxes(title_text=metric_title)
    else:
        figure.update_xaxes(title_text=metric_title)
        figure.update_yaxes(title_text="sentences")
    return figure
