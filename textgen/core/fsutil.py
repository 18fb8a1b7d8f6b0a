"""Atomic file writes and paths that stay inside TEXTGEN_HOME.

A write goes to a temporary file in the destination folder, is flushed and fsynced, then
`os.replace`d over the destination, so a reader (or a job killed mid-write) sees the old file or
the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Iterator

from textgen.core.errors import StoreError


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


# A temporary file made by `atomic_path`: ".NAME.RANDOM.tmp" plus the kept suffix.
_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp(\.[A-Za-z0-9_.]+)?$")


def is_temporary(name: str) -> bool:
    """Whether a file name is one of `atomic_path`'s temporaries."""
    return bool(_TEMPORARY.match(name))


def remove_temporaries(directory: str | os.PathLike, *, older_than: float = 0.0) -> list[Path]:
    """Delete `atomic_path` temporaries left in `directory` by a process killed mid-write.

    Only the folder's writer may call this with `older_than=0` (a live writer's temporary would
    vanish under it); others pass a number of seconds. Returns what was removed.
    """
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        if entry.is_file(follow_symlinks=False) and is_temporary(entry.name):
            try:
                if older_than and now - entry.stat(follow_symlinks=False).st_mtime < older_than:
                    continue
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except OSError:
                pass
    return removed


def is_disk_full(error: BaseException) -> bool:
    """An OSError for a full disk or quota, or SQLite's "database or disk is full"."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return type(error).__name__ == "OperationalError" and "disk is full" in str(error)


def safe_join(root: str | os.PathLike, *parts: str) -> Path:
    """Join id-derived parts under root, refusing anything that would leave it."""
    root_path = Path(root).resolve()
    candidate = root_path.joinpath(*parts).resolve()
    if candidate != root_path and root_path not in candidate.parents:
        raise StoreError(f"refusing a path outside {root_path}: {'/'.join(parts)!r}")
    return candidate
