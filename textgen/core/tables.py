"""Rows out as CSV and JSON files a spreadsheet opens safely: formula-like cells made inert, NaN as null."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import math
from typing import Any, Mapping

import numpy as np


# Spreadsheet formula triggers (OWASP "CSV injection"): = + - @, tab, CR and LF, and the
# full-width = + - @ (an IME types them; some spreadsheets read them as the ASCII ones). Such cells
# get a leading apostrophe, also when spaces come first (LibreOffice skips them before "=").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


_LEADING_SPACES = " \u00a0\u3000"


def neutralize_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, made inert with a leading "'".
    Numbers are left alone (we wrote them)."""
    if isinstance(value, str) and value.lstrip(_LEADING_SPACES).startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _rows_of(data: Any) -> list[dict[str, Any]]:
    """Table rows of `data`: what its `rows()` gives (an EvaluationResult's examples), one mapping,
    or an iterable of mappings or dataclasses."""
    if callable(getattr(data, "rows", None)):
        return data.rows()
    if isinstance(data, Mapping):
        return [dict(data)]
    rows = []
    for row in data:
        if dataclasses.is_dataclass(row):
            row = dataclasses.asdict(row)
        rows.append(dict(row))
    return rows


@contextlib.contextmanager
def _text_destination(destination):
    if hasattr(destination, "write"):
        yield destination
        return
    buffer = io.StringIO()
    yield buffer
    from textgen.core.fsutil import atomic_write_text

    atomic_write_text(destination, buffer.getvalue())


def export_csv(data: Any, destination) -> None:
    """Write an EvaluationResult's per-example rows (or any rows: dicts or dataclasses) as CSV
    to a path or a text buffer. Cells starting with = + - @ tab or CR are neutralised."""
    rows = _rows_of(data)
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    with _text_destination(destination) as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([neutralize_cell(str(c)) for c in columns])
        for row in rows:
            writer.writerow([neutralize_cell(_csv_value(row.get(c, ""))) for c in columns])


def _csv_value(value: Any) -> Any:
    if isinstance(value, (list, tuple, dict, np.ndarray)):
        return json.dumps(json_safe(value), ensure_ascii=False)
    if isinstance(value, np.generic):
        return value.item()
    return value


def json_safe(value: Any) -> Any:
    """Plain JSON types; NaN and infinities become null (JSON has no such numbers)."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        plain = value.to_dict() if hasattr(value, "to_dict") else dataclasses.asdict(value)
        return json_safe(plain)
    return value


def export_json(data: Any, destination) -> None:
    """Write an EvaluationResult (metrics, signature, examples) or any plain data as JSON to a
    path or a text buffer."""
    payload = data.to_dict() if hasattr(data, "to_dict") else data
    with _text_destination(destination) as out:
        json.dump(json_safe(payload), out, ensure_ascii=False, indent=2, allow_nan=False)
        out.write("\n")
