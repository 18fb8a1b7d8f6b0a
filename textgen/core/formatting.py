"""Figures as people read them: byte sizes, durations, large counts."""

from __future__ import annotations

import math


def format_bytes(value: float) -> str:
    """2_500_000 -> "2.4 MB" (binary units, as memory is counted)."""
    for scale, suffix in ((2**40, "TB"), (2**30, "GB"), (2**20, "MB"), (2**10, "KB")):
        if abs(value) >= scale:
            return f"{value / scale:.1f} {suffix}"
    return f"{int(value)} B"


def format_duration(seconds: float | None) -> str:
    """"45 s", "3 min 20 s", "2 h 05 min"; "unknown" for None or a non-finite value."""
    if seconds is None or not math.isfinite(seconds):
        return "unknown"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} d {hours % 24:02d} h"


def format_count(value: float) -> str:
    """1234 -> "1.23 k", 2.5e9 -> "2.50 G": parameter counts and FLOPs at a glance."""
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {suffix}"
    return f"{value:g}"
