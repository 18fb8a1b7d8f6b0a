"""Attention charts for the Attention and Compare pages: plain data in, a Plotly figure out.

Tokens are untrusted text and Plotly interprets some HTML in labels, so every tick and hover
label goes through `ui.chart_label`. Category axes merge equal labels into one cell, and tokens
repeat, so labels carry their position first ("3 a") before they are escaped.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from pages.ui import chart_label
from textgen.analysis.attention_views import KIND_AXES, AttentionMap, unique_labels

COLOR_SCALE = "Blues"
# Pixels per row / column of a heatmap, bounded so long inputs still fit on a page.
_CELL = 18
_MIN_SIZE, _MAX_SIZE = 260, 900


def axis_labels(labels: Sequence[str]) -> list[str]:
    """Unique, escaped, shortened labels for one axis."""
    return [chart_label(text, 24) for text in unique_labels(labels)]


def _hover(rows_title: str, columns_title: str) -> str:
    # %{y} and %{x} are our escaped labels; the weight is a number.
    return f"{rows_title}: %{{y}}<br>{columns_title}: %{{x}}<br>weight: %{{z:.3f}}<extra></extra>"


def _upper(*arrays: np.ndarray) -> float:
    """The colour scale's top: the largest weight shown, so a diffuse map of an early checkpoint
    is still readable (hover gives the exact value)."""
    largest = max((float(np.max(a)) for a in arrays if np.size(a)), default=1.0)
    return largest if largest > 0 else 1.0


def _size(count: int) -> int:
    return int(min(max(count * _CELL + 140, _MIN_SIZE), _MAX_SIZE))


def attention_heatmap(attention_map: AttentionMap, title: str | None = None) -> go.Figure:
    """One map: rows (output tokens, top to bottom) by columns (attended tokens), the weight on
    hover; colours run from 0 to the map's largest weight."""
    rows_title, columns_title = KIND_AXES[attention_map.kind]
    figure = go.Figure(go.Heatmap(
        z=np.asarray(attention_map.values, np.float64),
        x=axis_labels(attention_map.column_labels),
        y=axis_labels(attention_map.row_labels),
        zmin=0.0, zmax=_upper(attention_map.values), colorscale=COLOR_SCALE,
        hovertemplate=_hover(rows_title, columns_title),
        colorbar={"title": {"text": "weight"}}))
    figure.update_layout(
        title={"text": chart_label(title or attention_map.title, 120)},
        height=_size(len(attention_map.row_labels)),
        margin={"l": 10, "r": 10, "t": 50, "b": 10})
    figure.update_xaxes(type="category", title_text=columns_title, tickangle=-60)
    figure.update_yaxes(type="category", title_text=rows_title, autorange="reversed")
    return figure


def head_grid(maps: Sequence[AttentionMap], columns: int = 4) -> go.Figure:
    """Several maps of the same input (e.g. every head of a layer and their mean) in a grid,
    sharing one colour scale (0 to the largest weight of any of them) so heads compare."""
    if not maps:
        raise ValueError("head_grid needs at least one map.")
    columns = max(1, min(columns, len(maps)))
    rows = math.ceil(len(maps) / columns)
    titles = [chart_label("mean of heads" if m.head is None else f"head {m.head}", 40) for m in maps]
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=titles,
                           horizontal_spacing=0.04, vertical_spacing=0.08 if rows > 1 else 0.1)
    rows_title, columns_title = KIND_AXES[maps[0].kind]
    top = _upper(*(m.values for m in maps))
    for position, attention_map in enumerate(maps):
        figure.add_trace(
            go.Heatmap(z=np.asarray(attention_map.values, np.float64),
                       x=axis_labels(attention_map.column_labels),
                       y=axis_labels(attention_map.row_labels),
                       zmin=0.0, zmax=top, colorscale=COLOR_SCALE, showscale=position == 0,
                       hovertemplate=_hover(rows_title, columns_title)),
            row=position // columns + 1, col=position % columns + 1)
    figure.update_xaxes(type="category", showticklabels=False)
    figure.update_yaxes(type="category", autorange="reversed", showticklabels=False)
    figure.update_layout(height=min(max(rows * 260, 300), 1400),
                         margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return figure
