"""CPU feature detection from /proc/cpuinfo text."""

from __future__ import annotations

from pathlib import Path

from textgen.core import hardware

FLAGS_LINE = "flags\t\t: fpu vme avx2 avx512f {extra} fma\n"


def write_cpuinfo(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / f"cpuinfo-{extra or 'none'}"
    path.write_text("processor\t: 0\nmodel name\t: Some CPU\n" + FLAGS_LINE.format(extra=extra)
                    + "\nprocessor\t: 1\n" + FLAGS_LINE.format(extra=""))
    return path


def test_native_bfloat16_is_read_from_the_first_processors_flags(tmp_path: Path) -> None:
    assert hardware.native_bfloat16(write_cpuinfo(tmp_path, "avx512_bf16")) == "avx512_bf16"
    assert hardware.native_bfloat16(write_cpuinfo(tmp_path, "amx_bf16 amx_tile")) == "amx_bf16"
    assert hardware.native_bfloat16(write_cpuinfo(tmp_path, "")) is None
    assert "avx2" in hardware.cpu_flags(write_cpuinfo(tmp_path, ""))


def test_a_missing_or_unreadable_cpuinfo_means_no_flags(tmp_path: Path) -> None:
    assert hardware.cpu_flags(tmp_path / "absent") == frozenset()
    assert hardware.native_bfloat16(tmp_path / "absent") is None
    (tmp_path / "garbage").write_bytes(b"\xff\xfe not a cpuinfo")
    assert hardware.native_bfloat16(tmp_path / "garbage") is None


def test_the_bfloat16_note_says_faster_where_native_and_emulated_and_slower_where_not() -> None:
    native = hardware.bfloat16_note("avx512_bf16")
    assert "in hardware (avx512_bf16)" in native and "faster than float32" in native
    emulated = hardware.bfloat16_note("")
    assert "no native bfloat16 (no avx512_bf16 or amx_bf16 flag)" in emulated
    assert "emulated" in emulated and "slower than float32" in emulated and "float32 accumulation" in emulated
    assert hardware.bfloat16_note() == hardware.bfloat16_note(hardware.native_bfloat16() or "")
