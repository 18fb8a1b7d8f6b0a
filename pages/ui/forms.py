"""Widgets shared by the Corpus and Train pages: config-field inputs.

The safe message helpers (`message`, `error`, `warning`, `success`) live in `pages.ui` and are
re-exported here for these pages.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from pages.ui import error, message, success, warning  # noqa: F401  (re-exported)
from textgen.core.config import FieldSpec

__all__ = ["error", "message", "success", "warning", "setting_input", "as_setting"]


def setting_input(spec: FieldSpec, value: Any, *, key: str, label: str | None = None,
                  disabled: bool = False) -> Any:
    """One config field as a widget of its type, prefilled with `value`, with the field's declared
    choices, bounds and help (`textgen.core.config.setting`). `value` must be valid for the field
    (a default, or a link's value parsed by `planning.parse_setting`)."""
    label = label or spec.name.replace("_", " ")
    if spec.choices is not None:
        options = list(spec.choices)
        index = options.index(value) if value in options else 0
        return st.selectbox(label, options, index=index, key=key, help=spec.help, disabled=disabled)
    if isinstance(value, bool):
        return st.checkbox(label, value=value, key=key, help=spec.help, disabled=disabled)
    if isinstance(value, (int, float)):
        kind = type(value)
        bounds = {"min_value": None if spec.low is None else kind(spec.low),
                  "max_value": None if spec.high is None else kind(spec.high)}
        if kind is int:
            return st.number_input(label, value=value, step=1, key=key, help=spec.help, disabled=disabled, **bounds)
        return st.number_input(label, value=value, format="%g", step=_float_step(value), key=key, help=spec.help,
                               disabled=disabled, **bounds)
    return st.text_input(label, value="" if value is None else str(value), key=key, help=spec.help,
                         disabled=disabled)


def _float_step(value: float) -> float:
    """A step one decimal order below the value (1e-3 -> 1e-4), so +/- nudges it sensibly."""
    if value <= 0:
        return 0.1
    import math

    return 10.0 ** (math.floor(math.log10(value)) - 1) if value < 1 else 0.1


def as_setting(value: Any) -> str:
    """A widget value as the text `with_overrides(..., from_text=True)` parses."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return "" if value is None else str(value)
