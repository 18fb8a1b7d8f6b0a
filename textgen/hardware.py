"""What this machine's CPU can do, for settings whose speed depends on it (plain Python, no TF)."""

from __future__ import annotations

import functools
from pathlib import Path

# /proc/cpuinfo flags of CPUs that multiply bfloat16 in hardware (x86: AVX512-BF16, AMX).
BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The first processor's feature flags (Linux); empty where /proc/cpuinfo is missing."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


@functools.lru_cache(maxsize=8)
def native_bfloat16(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The flag that says this CPU multiplies bfloat16 in hardware (so that
    matmul_precision=bfloat16 is faster), or None."""
    flags = cpu_flags(cpuinfo)
    return next((flag for flag in BFLOAT16_FLAGS if flag in flags), None)
