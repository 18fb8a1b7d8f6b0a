"""Atomic file writes and paths that stay inside TEXTGEN_HOME.

A write goes to a temporary file in the destination folder, is flushed and fsynced, then
`os.replace`d over the destination, so a reader (or a job killed mid-write) sees the old file or
the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from textgen.errors import StoreError


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(destination: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `destination`; on success it replaces `destination`.

    For libraries that insist on writing a file by name (Keras `save_weights`, HF tokenizers).
    The suffix is kept because some writers check it (Keras wants `.weights.h5`).
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=f".tmp{suffix}", dir=destination.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, destination)
        _fsync_dir(destination.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(destination: str | os.PathLike, data: bytes) -> None:
    with atomic_path(destination) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)


def atomic_write_text(destination: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(destination, text.encode("utf-8"))


def safe_join(root: str | os.PathLike, *parts: str) -> Path:
    """Join id-derived parts under root, refusing anything that would leave it."""
    root_path = Path(root).resolve()
    candidate = root_path.joinpath(*parts).resolve()
    if candidate != root_path and root_path not in candidate.parents:
        raise StoreError(f"refusing a path outside {root_path}: {'/'.join(parts)!r}")
    return candidate
