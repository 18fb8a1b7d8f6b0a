"""`read_corpus`: bytes and a `CorpusConfig` in, a validated `Corpus` out, or a `CorpusError` that
says what is wrong with the file and what to do (see the package docstring for the rules)."""

from __future__ import annotations

import hashlib
import os

from textgen.core.errors import CorpusError
from textgen.core.text import split_lines
from textgen.data.config import CorpusConfig
from textgen.data.corpus.encoding import check_not_binary, decode
from textgen.data.corpus.formats import detect_format
from textgen.data.corpus.parsing import Parsed, parse_csv, parse_jsonl, parse_text, parse_tsv
from textgen.data.corpus.records import (
    MIN_EXAMPLES,
    Corpus,
    Example,
    Rejection,
    check_config,
    plural_s,
    summarize_reasons,
)


def read_corpus_file(path: str | os.PathLike, config: CorpusConfig = CorpusConfig()) -> Corpus:
    """Read a corpus from disk. The size is checked with `os.stat` before the file is opened, so an
    oversized file costs nothing; at most max_bytes + 1 bytes are ever read (the file may grow)."""
    check_config(config)
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise CorpusError(f"no corpus file at {os.fspath(path)!r}; check the path.") from None
    except OSError as error:
        raise CorpusError(
            f"cannot read {os.fspath(path)!r}: {error.strerror}; check the path and permissions."
        ) from None
    _check_size(size, config.max_bytes)
    try:
        with open(path, "rb") as handle:
            data = handle.read(config.max_bytes + 1)
    except IsADirectoryError:
        raise CorpusError(f"{os.fspath(path)!r} is a folder; give the path of a text file.") from None
    except OSError as error:
        raise CorpusError(
            f"cannot read {os.fspath(path)!r}: {error.strerror}; check the path and permissions."
        ) from None
    return read_corpus(data, config)


def read_corpus(data: bytes, config: CorpusConfig = CorpusConfig()) -> Corpus:
    """Decode, detect the format, parse and validate an uploaded corpus.

    Raises CorpusError for a file that cannot be used at all; bad individual lines become
    `Corpus.rejected` entries instead, as long as at least MIN_EXAMPLES examples remain.
    """
    check_config(config)
    if isinstance(data, str):
        raise TypeError("read_corpus takes the file's bytes, not str; pass the raw upload (e.g. path.read_bytes()).")
    data = bytes(data)
    _check_size(len(data), config.max_bytes)
    if not data:
        raise CorpusError("the file is empty (0 bytes): no usable examples. Upload a file with one example per line.")
    sha256 = hashlib.sha256(data).hexdigest()
    check_not_binary(data)
    decoded, encoding = decode(data)
    if not decoded.strip():
        what = "only a byte-order mark" if not decoded else "only whitespace"
        raise CorpusError(
            f"the file contains {what}: no usable examples. Upload a file with one example per line."
        )

    lines = split_lines(decoded)
    del decoded
    notes: list[str] = []
    if encoding != "utf-8":
        notes.append(f"encoding {encoding}: the byte-order mark was removed")
    if config.format == "auto":
        fmt, why = detect_format(lines, config.max_line_chars)
        notes.append(f"format detected as {fmt}: {why}")
    else:
        fmt = config.format

    parser = {"text": parse_text, "tsv": parse_tsv, "csv": parse_csv, "jsonl": parse_jsonl}[fmt]
    parsed = parser(lines, config)
    notes.extend(parsed.notes)
    examples, rejected = parsed.examples, parsed.rejected
    if rejected:
        notes.append(
            f"{len(rejected):,} line{plural_s(len(rejected))} rejected ({summarize_reasons(rejected)})"
        )
    _check_enough(fmt, examples, rejected, parsed)
    return Corpus(
        format=fmt,
        examples=tuple(examples),
        rejected=tuple(rejected),
        encoding=encoding,
        source_field=parsed.source_field,
        target_field=parsed.target_field,
        sha256=sha256,
        num_bytes=len(data),
        text=parsed.text,
        notes=tuple(notes),
        num_lines=len(lines),
    )


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise CorpusError(
            f"the file is {_human_bytes(size)} ({size:,} bytes), over the {_human_bytes(max_bytes)} cap "
            f"(max_bytes={max_bytes:,}). Use a smaller sample of the data, or raise max_bytes."
        )


def _check_enough(fmt: str, examples: list[Example], rejected: list[Rejection], parsed: Parsed) -> None:
    if not examples:
        if rejected:
            raise CorpusError(
                f"no usable examples: all {len(rejected):,} non-blank line{plural_s(len(rejected))} "
                f"{'were' if len(rejected) != 1 else 'was'} rejected as {fmt} "
                f"(most common: {summarize_reasons(rejected)}). Fix those lines, or set format, "
                "source_field and target_field if the file was read the wrong way."
            )
        if parsed.header_line is not None:
            raise CorpusError(
                f"no usable examples: the file has a header (line {parsed.header_line}) but no data rows. "
                "Add rows below the header."
            )
        raise CorpusError("no usable examples: the file has no non-blank lines. Add examples, one per line.")
    if len(examples) < MIN_EXAMPLES:
        unit = "pairs" if fmt != "text" else "non-blank lines"
        extra = (f"; {len(rejected):,} line{plural_s(len(rejected))} rejected ({summarize_reasons(rejected)})"
                 if rejected else "")
        raise CorpusError(
            f"only {len(examples)} usable example{plural_s(len(examples))} ({unit}){extra}. At least "
            f"{MIN_EXAMPLES} (MIN_EXAMPLES) are needed to make train, validation and test splits; "
            "add more examples" + (" or fix the rejected lines." if rejected else ".")
        )


def _human_bytes(size: int) -> str:
    if size < 1024:
        return f"{size:,} bytes"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024:
            break
    return f"{value:.1f} {unit}"


