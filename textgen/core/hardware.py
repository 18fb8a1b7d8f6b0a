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


def bfloat16_note(flag: str | None = None) -> str:
    """What `matmul_precision=bfloat16` does on this machine, in a sentence for the Train page and
    `train --plan`. `flag`: `native_bfloat16()` (read here when not given)."""
    flag = native_bfloat16() if flag is None else flag
    if flag:
        return (f"This CPU multiplies bfloat16 in hardware ({flag}): matmul_precision = bfloat16 trains "
                "faster than float32 (about 1.2x on the small Transformer), with float32 accumulation.")
    return ("This CPU has no native bfloat16 (no " + " or ".join(BFLOAT16_FLAGS) + " flag): matmul_precision = "
            "bfloat16 is emulated, the same numbers as on a CPU with it (operands rounded to bfloat16, "
            "float32 accumulation) but slower than float32 (about 1.4x per step on the small Transformer). "
            "Keep float32 unless you need to match a bfloat16 run.")
