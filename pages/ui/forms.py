"""Widgets shared by the Corpus and Train pages: config-field inputs.

The safe message helpers (`message`, `error`, `warning`, `success`) live in `pages.ui` and are
re-exported here for these pages.
"""

from __future__ import annotations

from typing import Any, Sequence

import streamlit as st


from pages.ui import error, message, success, warning  # noqa: F401  (re-exported)

__all__ = ["error", "message", "success", "warning", "setting_input", "parse_setting", "as_setting"]


def setting_input(name: str, value: Any, *, key: str, choices: Sequence[str] | None = None,
                  help: str | None = None, disabled: bool = False) -> Any:
    """One config field as a widget of its type, prefilled with `value`.

    Number inputs have no bounds on purpose: the config classes hold the valid ranges and say
    them in their error, so an out-of-range value (typed, or from a crafted link) is refused
    with that message before any job exists, and never crashes the widget.
    """
    label = name.replace("_", " ")
    if choices is not None:
        options = list(choices)
        index = options.index(value) if value in options else 0
        return st.selectbox(label, options, index=index, key=key, help=help, disabled=disabled)
    if isinstance(value, bool):
        return st.checkbox(label, value=value, key=key, help=help, disabled=disabled)
    if isinstance(value, int):
        return st.number_input(label, value=value, step=1, key=key, help=help, disabled=disabled)
    if isinstance(value, float):
        return st.number_input(label, value=value, format="%g", step=_float_step(value), key=key, help=help,
                               disabled=disabled)
    return st.text_input(label, value="" if value is None else str(value), key=key, help=help, disabled=disabled)


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


# Integers beyond this are not exact in the browser (JavaScript numbers); a widget refuses them.
_LARGEST_WIDGET_INT = 2**53 - 1


def parse_setting(name: str, text: str, default: Any, choices: Sequence[str] | None = None) -> Any:
    """A value from the URL for a field whose default is `default`, parsed to the same type.

    Raises ValueError saying what was expected when the text does not fit the type (or the
    choices). Range is NOT checked here: the config classes check it and say the valid range.
    """
    text = str(text).strip()
    if choices is not None:
        if text not in choices:
            raise ValueError(f"{name} must be one of {', '.join(choices)}; the link has {text!r}.")
        return text
    if isinstance(default, bool):
        lowered = text.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"{name} must be true or false; the link has {text!r}.")
    if isinstance(default, int):
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{name} must be a whole number; the link has {text!r}.") from None
        if abs(value) > _LARGEST_WIDGET_INT:
            raise ValueError(f"{name} is far out of range; the link has {text[:30]!r}.")
        return value
    if isinstance(default, float):
        import math

        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{name} must be a number; the link has {text!r}.") from None
        if not math.isfinite(value) or abs(value) > 1e15:
            raise ValueError(f"{name} must be a finite number; the link has {text[:30]!r}.")
        return value
    return text
