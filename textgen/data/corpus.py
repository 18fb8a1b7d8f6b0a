"""Corpus ingestion: uploaded bytes in, validated examples, splits and a report out.

Everything a model sees goes through `read_corpus`, so this module is where bad input is caught and
explained. The rules, and why:

* Content decides, never the file name (this module never sees one). An upload called `data.csv`
  may be a TSV, a gzip or a PNG; magic numbers, NUL bytes and the share of control characters are
  checked on the raw bytes before any decoding, so a binary file gets "binary file", not a
  misleading encoding error.
* Decoding is strict. A UTF-8, UTF-16 or UTF-32 byte-order mark is detected and removed (it never
  ends up in the first token or a CSV header); anything else must be valid UTF-8. Undecodable bytes
  are an error with the byte offset, line, column and the byte in hex, never silently replaced:
  a replaced character is a corrupted training example nobody asked for.
* One line rule (`textgen.core.text`): CR LF, CR and LF break lines; U+2028, U+0085 and friends do not.
  Every `Example.line` and `Rejection.line` is the 1-based *physical* line number of that rule, so
  it matches what an editor shows; a bad line never shifts the numbers of later lines.
* Every field is NFC-normalised (`textgen.core.text.normalize`), so composed and decomposed accents are
  the same string for the tokenizer, the model and the metrics. In pair corpora (TSV, CSV, JSONL)
  a field is one line with no tabs: a tab or line break inside a CSV/JSONL value becomes a space,
  so any pair can be written back as one TSV row and shown in one table cell.
* A bad line is rejected (with its line number and a reason that says what to fix) and parsing
  goes on; a file fails as a whole only when it cannot be used at all: too big, empty, binary,
  undecodable, no usable examples, or fewer than `MIN_EXAMPLES` of them.
* Reasons have the shape "category: detail". The category ("missing target", "invalid JSON", ...)
  is what reports count and chart; the detail names the problem on that line. A reason never quotes
  the line itself, so a 1 MB line never ends up in a report or a JSON file.

Formats (detected from the content unless `CorpusConfig.format` says otherwise):

* jsonl: one JSON object per line. Values must be strings; JSON numbers are accepted as their
  literal text (`4` -> "4", `1e3` -> "1e3", never reformatted); null, true/false, lists and objects
  are rejected. Chosen when more than half of the sampled non-empty lines are JSON objects.
* tsv: `source<TAB>target`, fields taken literally (quotes are not special). A first line whose two
  fields are well-known column names ("source<TAB>target", "input<TAB>output"...) is a header and
  skipped. Chosen when more than half of the sampled non-empty lines have a tab after some text
  (leading tabs, as in indented code, do not count).
* csv: RFC 4180 with a header row; "," or ";" as the delimiter (an Excel "sep=;" first line is
  honoured). Quoted fields may span up to `CSV_MAX_RECORD_LINES` physical lines; a quote still open
  after that (or a multi-line record that does not parse) rejects only the line where it opened,
  and parsing resumes on the next line, so one stray quote never swallows the rest of the file.
  Chosen when the first line looks like a header of two or more names and at least 80% of the
  records have as many fields as the header (80%, not a bare majority, because prose has commas).
* text: anything else. Each non-blank line is an example with source "" and target the line as
  written (indentation kept, for poetry and code); blank lines are kept in `Corpus.text`, which is
  the whole normalised document a language model trains on.

Lines longer than `max_line_chars` are rejected in every format, text included (rejected rather
than truncated: a cut line is a sentence that stops mid-word, and the report says which lines to
split). They are also left out of `Corpus.text`.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import hashlib
import json
import math
import os
import random
import re
import statistics
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from textgen.core.errors import CorpusError
from textgen.core.text import normalize, split_lines
from textgen.data.config import CorpusConfig

__all__ = [
    "MIN_EXAMPLES",
    "MAX_REPORTED_REJECTIONS",
    "CSV_MAX_RECORD_LINES",
    "CORPUS_FORMATS",
    "Example",
    "Rejection",
    "Corpus",
    "Split",
    "CorpusReport",
    "read_corpus",
    "read_corpus_file",
    "split_corpus",
    "texts_for_split",
    "deduplicate",
    "build_report",
]

# Fewest usable examples (pairs, or non-blank lines of a text corpus) that still give a train,
# validation and test split with at least one example each and a few to train on.
MIN_EXAMPLES = 10
# The report lists at most this many rejected lines (num_rejected stays exact), so its JSON stays
# small even when every line of a big file is bad.
MAX_REPORTED_REJECTIONS = 1000
# A quoted CSV field may span at most this many physical lines before its opening quote is taken
# to be a stray one.
CSV_MAX_RECORD_LINES = 10
CORPUS_FORMATS = ("text", "tsv", "csv", "jsonl")

_DETECTION_SAMPLE_LINES = 2000
_BINARY_SAMPLE_BYTES = 64 * 1024
_MAX_CONTROL_SHARE = 0.10
_HEX_PREVIEW_BYTES = 4


# --------------------------------------------------------------------------------------------
# Data types


@dataclass(frozen=True, slots=True)
class Example:
    """One usable example. `line` is the 1-based physical line where it starts in the file.

    Text corpora have source "" and the line as target.
    """

    source: str
    target: str
    line: int


@dataclass(frozen=True, slots=True)
class Rejection:
    """A line that could not be used. `reason` reads "category: what is wrong and what to do"."""

    line: int
    reason: str

    @property
    def category(self) -> str:
        """The part of `reason` before the first colon, e.g. "missing target"."""
        return self.reason.split(":", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "reason": self.reason}


@dataclass(frozen=True)
class Corpus:
    """A decoded, normalised, validated corpus. Immutable, and cheap to pass around.

    `sha256` and `num_bytes` describe the original upload (before decoding), so a run can record
    exactly which file it was trained on. `num_lines` counts physical lines (0 when unknown, e.g. a
    Corpus built by hand).
    """

    format: str
    examples: tuple[Example, ...] = field(repr=False)
    rejected: tuple[Rejection, ...] = field(repr=False)
    encoding: str
    source_field: str | None
    target_field: str | None
    sha256: str
    num_bytes: int
    text: str | None = field(repr=False)
    notes: tuple[str, ...]
    num_lines: int = 0

    def __post_init__(self) -> None:
        if self.format not in CORPUS_FORMATS:
            raise ValueError(f"Corpus.format must be one of {', '.join(CORPUS_FORMATS)}, got {self.format!r}.")

    @property
    def is_pairs(self) -> bool:
        """True for source/target corpora (tsv, csv, jsonl); False for plain text (language modelling)."""
        return self.format != "text"

    @property
    def num_examples(self) -> int:
        return len(self.examples)


@dataclass(frozen=True)
class Split:
    """Indices into `Corpus.examples` for each part, sorted ascending, disjoint.

    Indices refer to one exact Corpus: after `deduplicate` (or a re-read with another config) make
    a new split.
    """

    train: tuple[int, ...]
    valid: tuple[int, ...]
    test: tuple[int, ...]
    seed: int

    @property
    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)}

    def to_dict(self) -> dict[str, Any]:
        return {"train": list(self.train), "valid": list(self.valid), "test": list(self.test), "seed": self.seed}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Split:
        """Rebuild a stored split, refusing anything malformed (it indexes training data)."""
        if not isinstance(data, Mapping):
            raise CorpusError(f"a stored split must be a JSON object, got {type(data).__name__}; re-create the split.")
        missing = [key for key in ("train", "valid", "test", "seed") if key not in data]
        if missing:
            raise CorpusError(f"the stored split lacks {', '.join(missing)}; re-create the split.")
        parts: dict[str, tuple[int, ...]] = {}
        for key in ("train", "valid", "test"):
            values = data[key]
            if not isinstance(values, (list, tuple)) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values
            ):
                raise CorpusError(
                    f"the stored split's {key!r} must be a list of non-negative integers; re-create the split."
                )
            parts[key] = tuple(sorted(values))
        seed = data["seed"]
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise CorpusError(f"the stored split's seed must be an integer, got {seed!r}; re-create the split.")
        total = sum(len(p) for p in parts.values())
        if len(set().union(*parts.values())) != total:
            raise CorpusError("the stored split puts some examples in two parts; re-create the split.")
        return cls(train=parts["train"], valid=parts["valid"], test=parts["test"], seed=seed)

    def check_fits(self, corpus: Corpus) -> None:
        """Raise CorpusError if an index is out of range for `corpus` (a split of another corpus)."""
        largest = max((max(p) for p in (self.train, self.valid, self.test) if p), default=-1)
        if largest >= len(corpus.examples):
            raise CorpusError(
                f"the split refers to example {largest} but the corpus has {len(corpus.examples)} examples; "
                "it was made for another version of the corpus. Re-create the split."
            )


@dataclass(frozen=True)
class CorpusReport:
    """What `build_report` found. `to_dict()` is JSON-ready (for the app, the CLI and the run store)."""

    format: str
    encoding: str
    sha256: str
    num_bytes: int
    num_lines: int
    num_examples: int
    num_rejected: int
    rejected: tuple[Rejection, ...]
    rejection_reasons: Mapping[str, int]
    source_field: str | None
    target_field: str | None
    num_duplicates: int
    num_source_equals_target: int
    num_distinct_sources: int
    num_distinct_targets: int
    source_length: Mapping[str, Any] | None
    target_length: Mapping[str, Any]
    length_ratio_outliers: Mapping[str, Any] | None
    vocabulary_size: Mapping[str, int]
    suspicious_characters: Mapping[str, Mapping[str, int]]
    split: Mapping[str, Any] | None
    num_characters: int | None
    num_words: int | None
    num_distinct_characters: int | None
    notes: tuple[str, ...]
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "encoding": self.encoding,
            "sha256": self.sha256,
            "num_bytes": self.num_bytes,
            "num_lines": self.num_lines,
            "num_examples": self.num_examples,
            "num_rejected": self.num_rejected,
            "rejected": [r.to_dict() for r in self.rejected],
            "rejection_reasons": dict(self.rejection_reasons),
            "source_field": self.source_field,
            "target_field": self.target_field,
            "num_duplicates": self.num_duplicates,
            "num_source_equals_target": self.num_source_equals_target,
            "num_distinct_sources": self.num_distinct_sources,
            "num_distinct_targets": self.num_distinct_targets,
            "source_length": _plain(self.source_length),
            "target_length": _plain(self.target_length),
            "length_ratio_outliers": _plain(self.length_ratio_outliers),
            "vocabulary_size": dict(self.vocabulary_size),
            "suspicious_characters": _plain(self.suspicious_characters),
            "split": _plain(self.split),
            "num_characters": self.num_characters,
            "num_words": self.num_words,
            "num_distinct_characters": self.num_distinct_characters,
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }


def _plain(value: Any) -> Any:
    """Mappings/tuples/numpy scalars -> dict/list/int/float, for json.dumps."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    raise TypeError(f"cannot make {type(value).__name__} JSON-ready")


# --------------------------------------------------------------------------------------------
# Reading


def read_corpus_file(path: str | os.PathLike, config: CorpusConfig = CorpusConfig()) -> Corpus:
    """Read a corpus from disk. The size is checked with `os.stat` before the file is opened, so an
    oversized file costs nothing; at most max_bytes + 1 bytes are ever read (the file may grow)."""
    _check_config(config)
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
    _check_config(config)
    if isinstance(data, str):
        raise TypeError("read_corpus takes the file's bytes, not str; pass the raw upload (e.g. path.read_bytes()).")
    data = bytes(data)
    _check_size(len(data), config.max_bytes)
    if not data:
        raise CorpusError("the file is empty (0 bytes): no usable examples. Upload a file with one example per line.")
    sha256 = hashlib.sha256(data).hexdigest()
    _check_not_binary(data)
    decoded, encoding = _decode(data)
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
        fmt, why = _detect_format(lines, config.max_line_chars)
        notes.append(f"format detected as {fmt}: {why}")
    else:
        fmt = config.format

    parser = {"text": _parse_text, "tsv": _parse_tsv, "csv": _parse_csv, "jsonl": _parse_jsonl}[fmt]
    parsed = parser(lines, config)
    notes.extend(parsed.notes)
    examples, rejected = parsed.examples, parsed.rejected
    if rejected:
        notes.append(
            f"{len(rejected):,} line{_s(len(rejected))} rejected ({_summarize_reasons(rejected)})"
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


def _check_config(config: Any) -> None:
    if not isinstance(config, CorpusConfig):
        raise TypeError(f"config must be a CorpusConfig, got {type(config).__name__}.")


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise CorpusError(
            f"the file is {_human_bytes(size)} ({size:,} bytes), over the {_human_bytes(max_bytes)} cap "
            f"(max_bytes={max_bytes:,}). Use a smaller sample of the data, or raise max_bytes."
        )


def _check_enough(fmt: str, examples: list[Example], rejected: list[Rejection], parsed: _Parsed) -> None:
    if not examples:
        if rejected:
            raise CorpusError(
                f"no usable examples: all {len(rejected):,} non-blank line{_s(len(rejected))} "
                f"{'were' if len(rejected) != 1 else 'was'} rejected as {fmt} "
                f"(most common: {_summarize_reasons(rejected)}). Fix those lines, or set format, "
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
        extra = (f"; {len(rejected):,} line{_s(len(rejected))} rejected ({_summarize_reasons(rejected)})"
                 if rejected else "")
        raise CorpusError(
            f"only {len(examples)} usable example{_s(len(examples))} ({unit}){extra}. At least "
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


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def _summarize_reasons(rejected: Sequence[Rejection], top: int = 3) -> str:
    """"missing target ×5 (first at line 3), extra tabs ×2 (first at line 9)"."""
    counts: collections.Counter[str] = collections.Counter()
    first: dict[str, int] = {}
    for rejection in rejected:
        category = rejection.category
        counts[category] += 1
        first.setdefault(category, rejection.line)
    parts = [f"{cat} ×{n:,} (first at line {first[cat]})" for cat, n in counts.most_common(top)]
    if len(counts) > top:
        parts.append(f"{len(counts) - top} other kind{_s(len(counts) - top)}")
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------
# Binary detection and decoding

# (offset, pattern, kind, name). kind "archive" gets the decompress hint.
_MAGIC: tuple[tuple[int, re.Pattern[bytes], str, str], ...] = tuple(
    (offset, re.compile(pattern, re.DOTALL), kind, name)
    for offset, pattern, kind, name in (
        (0, rb"\x1f\x8b", "archive", "gzip"),
        (0, rb"PK(\x03\x04|\x05\x06|\x07\x08)", "archive", "zip"),
        (0, rb"BZh[1-9](1AY&SY|\x17rE8P\x90)", "archive", "bzip2"),
        (0, rb"\xfd7zXZ\x00", "archive", "xz"),
        (0, rb"\x28\xb5\x2f\xfd", "archive", "zstd"),
        (0, rb"7z\xbc\xaf\x27\x1c", "archive", "7z"),
        (0, rb"Rar!\x1a\x07", "archive", "rar"),
        (257, rb"ustar", "archive", "tar"),
        (0, rb"\x04\x22\x4d\x18", "archive", "lz4"),
        (0, rb"\x1f\x9d", "archive", "compress (.Z)"),
        (0, rb"\x89PNG\r\n\x1a\n", "binary", "PNG image"),
        (0, rb"\xff\xd8\xff", "binary", "JPEG image"),
        (0, rb"GIF8[79]a", "binary", "GIF image"),
        (0, rb"II\x2a\x00|MM\x00\x2a", "binary", "TIFF image"),
        (0, rb"RIFF....(WEBP|WAVE|AVI )", "binary", "RIFF media file (WebP/WAV/AVI)"),
        (4, rb"ftyp", "binary", "MP4/MOV/HEIC media file"),
        (0, rb"ID3[\x02-\x04]\x00|OggS|fLaC|\x1a\x45\xdf\xa3", "binary", "audio or video file"),
        (0, rb"%PDF-", "binary", "PDF document"),
        (0, rb"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "binary", "legacy Microsoft Office document (.doc/.xls)"),
        (0, rb"\x7fELF", "binary", "ELF executable"),
        (0, rb"\xcf\xfa\xed\xfe|\xce\xfa\xed\xfe|\xfe\xed\xfa[\xce\xcf]|\xca\xfe\xba\xbe", "binary",
         "Mach-O executable or Java class file"),
        (0, rb"\x00asm", "binary", "WebAssembly module"),
        (0, rb"SQLite format 3\x00", "binary", "SQLite database"),
        (0, rb"\x89HDF\r\n\x1a\n", "binary", "HDF5 file (e.g. Keras .h5 weights)"),
        (0, rb"\x93NUMPY", "binary", "NumPy .npy array"),
        (0, rb"\x80[\x02-\x05]", "binary", "Python pickle"),
    )
)

_BOMS = (  # UTF-32 before UTF-16: the UTF-32 LE mark starts with the UTF-16 LE one.
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\r\x0b\x0c\x1b") + b"\x7f"
_CONTROL_CHARS = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")


def _check_not_binary(data: bytes) -> None:
    """Refuse archives and binary files by content, before decoding (which would give a misleading
    "not UTF-8" error for them)."""
    for offset, pattern, kind, name in _MAGIC:
        if pattern.match(data, offset):
            if kind == "archive":
                extra = (" (.xlsx, .docx, .odt and .epub files are zip archives too: export the sheet as CSV "
                         "or the document as plain text)") if name == "zip" else ""
                raise CorpusError(
                    f"this is a {name} compressed or archive file{extra}, not text; decompress it and "
                    "upload the text file."
                )
            raise CorpusError(
                f"this is a binary file ({name}), not text; upload a UTF-8 text, TSV, CSV or JSONL file."
            )
    if any(data.startswith(bom) for bom, name in _BOMS if name != "utf-8-sig"):
        return  # UTF-16/32 text is full of NUL bytes; checked after decoding instead.
    base = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    sample = data[base:base + _BINARY_SAMPLE_BYTES]
    nul = sample.find(b"\x00")
    if nul >= 0:
        nul += base
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        if even + odd > len(sample) // 4 and max(even, odd) > 0.9 * (even + odd):
            endian = "le" if odd > even else "be"
            raise CorpusError(
                f"this is not UTF-8 text: it contains NUL bytes (first at byte offset {nul}) and looks like "
                f"UTF-16 ({endian.upper()}) without a byte-order mark. Re-save it as UTF-8, e.g. "
                f"`iconv -f utf-16{endian} -t utf-8 IN > OUT`."
            )
        raise CorpusError(
            f"this is a binary file, not text: it contains NUL bytes (first at byte offset {nul}). "
            "Upload a UTF-8 text, TSV, CSV or JSONL file."
        )
    controls = sum(sample.count(b) for b in _CONTROL_BYTES)
    if controls > _MAX_CONTROL_SHARE * len(sample):
        raise CorpusError(
            f"this looks like a binary file, not text: {controls / len(sample):.0%} of the first "
            f"{len(sample):,} bytes are control characters. Upload a UTF-8 text, TSV, CSV or JSONL file."
        )


def _decode(data: bytes) -> tuple[str, str]:
    """Strictly decode; returns (text without BOM, encoding name)."""
    encoding, codec, bom_length = "utf-8", "utf-8", 0
    for bom, name in _BOMS:
        if data.startswith(bom):
            encoding, bom_length = name, len(bom)
            codec = "utf-8" if name == "utf-8-sig" else name
            break
    body = data[bom_length:]
    try:
        text = body.decode(codec)
    except UnicodeDecodeError as error:
        raise CorpusError(_decode_error_message(body, error, codec, bom_length)) from None
    if bom_length and codec != "utf-8":
        sample = text[:_BINARY_SAMPLE_BYTES]
        if "\x00" in sample or len(_CONTROL_CHARS.findall(sample)) > _MAX_CONTROL_SHARE * len(sample):
            raise CorpusError(
                f"this looks like a binary file: it starts with a {encoding} byte-order mark but the text is "
                "mostly control characters. Upload a UTF-8 text, TSV, CSV or JSONL file."
            )
    return text, encoding


def _decode_error_message(body: bytes, error: UnicodeDecodeError, codec: str, bom_length: int) -> str:
    start = error.start
    prefix = body[:start].decode(codec, errors="replace")
    line = len(re.findall(r"\r\n|\r|\n", prefix)) + 1
    column = len(prefix) - max(prefix.rfind("\n"), prefix.rfind("\r")) if prefix else 1
    offset = start + bom_length
    shown = " ".join(f"0x{b:02X}" for b in body[start:start + max(1, min(error.end - start, _HEX_PREVIEW_BYTES))])
    where = f"byte offset {offset:,} (line {line}, column {column}): byte {shown}"
    if codec != "utf-8":
        return (f"the file starts with a {codec} byte-order mark but is not valid {codec} at {where} "
                f"({error.reason}). Re-save it as UTF-8.")
    # Control bytes were ruled out before decoding, so this is text in a legacy encoding. Mostly
    # non-ASCII bytes suggest a non-Latin script (Windows-1251, Shift-JIS, GBK...); a few suggest
    # accented Latin letters (Windows-1252/Latin-1), by far the most common case.
    sample = body[:_BINARY_SAMPLE_BYTES]
    high = sum(1 for b in sample if b >= 0x80)
    try:
        as_cp1252 = body[start:start + 1].decode("cp1252")
        body.decode("cp1252")
        latin = high <= 0.3 * len(sample)
    except UnicodeDecodeError:
        latin = False
    if not latin:
        hint = ("it is in a legacy encoding (perhaps Windows-1251, Shift-JIS or GBK); re-save it as UTF-8, e.g. "
                "`iconv -f ENCODING -t utf-8 IN > OUT` with the file's real encoding.")
    else:
        hint = (f"the file looks like Latin-1/Windows-1252 (that byte is {as_cp1252!r} there); re-save it as "
                "UTF-8, e.g. `iconv -f cp1252 -t utf-8 IN > OUT`.")
    return f"the file is not valid UTF-8 at {where}. Nothing was replaced: {hint}"


# --------------------------------------------------------------------------------------------
# Format detection


def _detect_format(lines: Sequence[str], max_line_chars: int) -> tuple[str, str]:
    """Decide the format from a sample of non-blank lines; returns (format, reason for the notes)."""
    sample: list[str] = []
    for line in lines:
        if line.strip() and len(line) <= max_line_chars:
            sample.append(line)
            if len(sample) >= _DETECTION_SAMPLE_LINES:
                break
    if not sample:
        return "text", "no non-blank lines short enough to sample"
    total = len(sample)
    objects = sum(1 for line in sample if _is_json_object(line))
    if objects * 2 > total:
        return "jsonl", f"{objects:,} of {total:,} sampled non-blank lines are JSON objects"
    tabbed = sum(1 for line in sample if "\t" in line.lstrip(" \t"))
    if tabbed * 2 > total:
        return "tsv", f"{tabbed:,} of {total:,} sampled non-blank lines have a tab between fields"
    sniffed = _sniff_csv(sample)
    if sniffed is not None:
        return "csv", sniffed
    return "text", "not JSON Lines, tab-separated or a CSV with a header"


def _loads(line: str) -> Any:
    """json.loads as this module reads JSONL: numbers (and NaN/Infinity) kept as their literal text,
    control characters inside strings tolerated (they are reported as suspicious instead)."""
    return json.loads(line, parse_int=str, parse_float=str, parse_constant=str, strict=False)


def _is_json_object(line: str) -> bool:
    stripped = line.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return False  # cheap pre-check: prose never gets to json.loads
    try:
        return isinstance(_loads(stripped), dict)
    except (ValueError, RecursionError):
        return False


# A column name: starts with a letter or "_", then letters, digits, spaces and ()/#- (no sentence
# punctuation), at most 3 words. Prose lines with commas rarely pass.
_HEADER_NAME = re.compile(r"[^\W\d][\w ()/#-]{0,63}")
_SEP_LINE = re.compile(r"sep=(.)")


def _sniff_csv(sample: Sequence[str]) -> str | None:
    """A reason string if the sample looks like CSV with a header, else None."""
    start = 1 if _SEP_LINE.fullmatch(sample[0].strip()) else 0
    if start >= len(sample):
        return None
    header = sample[start]
    delimiter = _choose_delimiter(sample[0], header)
    names = _csv_fields(header, delimiter)
    if names is None or len(names) < 2:
        return None
    names = [n.strip() for n in names]
    if not all(_HEADER_NAME.fullmatch(n) and len(n.split()) <= 3 for n in names):
        return None
    if len({n.lower() for n in names}) != len(names):
        return None
    records = list(_csv_records(sample, start + 1, delimiter, len(names), max_line_chars=None))
    if not records:
        return f"the first line is a CSV header ({', '.join(names)}) with no rows below it"
    matching = sum(1 for _, fields, _ in records if fields is not None and len(fields) == len(names))
    if matching >= 0.8 * len(records):
        return (f"the first line is a header of {len(names)} names and {matching:,} of {len(records):,} "
                f"sampled records have {len(names)} {_delimiter_name(delimiter)}-separated fields")
    return None


def _choose_delimiter(first_line: str, header: str) -> str:
    match = _SEP_LINE.fullmatch(first_line.strip())
    if match:
        return match.group(1)
    commas = _csv_fields(header, ",") or []
    semicolons = _csv_fields(header, ";") or []
    return ";" if len(semicolons) > len(commas) else ","


def _delimiter_name(delimiter: str) -> str:
    return {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}.get(delimiter, repr(delimiter))


def _csv_fields(line: str, delimiter: str) -> list[str] | None:
    """Fields of a one-line CSV record; None if its quoting is broken."""
    fields, _problem = _parse_csv_record([line], delimiter)
    return fields


def _parse_csv_record(lines: Sequence[str], delimiter: str) -> tuple[list[str] | None, str | None]:
    """Parse physical lines as ONE record: (fields, None), or (None, problem) where problem is "open"
    (a quoted field is still open after the last line) or what is wrong with the quoting.

    Uses the C csv parser in strict mode (a closing quote must be followed by the delimiter), fed
    line by line with the line breaks back on, as when reading a file.
    """
    if len(lines) == 1 and '"' not in lines[0]:
        return lines[0].split(delimiter), None  # the common case, no csv machinery needed
    try:
        rows = list(csv.reader([line + "\n" for line in lines], delimiter=delimiter, strict=True,
                               skipinitialspace=True))
    except csv.Error as error:
        message = str(error)
        if "end of data" in message:
            return None, "open"
        if "field larger than field limit" in message:
            return None, f"a field is longer than the CSV reader's {csv.field_size_limit():,}-character limit"
        return None, message
    if len(rows) != 1:  # a line break outside quotes: these lines are not one record
        return None, "the lines do not form one record"
    return rows[0], None


def _csv_records(
    lines: Sequence[str], start: int, delimiter: str, num_columns: int, max_line_chars: int | None
) -> Iterable[tuple[int, list[str] | None, str | None]]:
    """Yield (first line index, fields, None) or (line index, None, rejection reason) per record.

    Blank lines between records are skipped. A quoted field may continue onto the following physical
    lines (up to CSV_MAX_RECORD_LINES in all). When it never closes, or the multi-line record does not
    parse into `num_columns` fields, the opening quote was a stray one: only its line is rejected
    and the next record starts on the very next line, so the rows after it still load.
    """
    index = start
    total = len(lines)
    while index < total:
        line = lines[index]
        if not line.strip():
            index += 1
            continue
        if max_line_chars is not None and len(line) > max_line_chars:
            yield index, None, _too_long_reason(len(line), max_line_chars)
            index += 1
            continue
        end = index + 1
        fields, problem = _parse_csv_record([line], delimiter)
        while problem == "open" and end < total and end - index < CSV_MAX_RECORD_LINES:
            if max_line_chars is not None and len(lines[end]) > max_line_chars:
                break
            end += 1
            fields, problem = _parse_csv_record(lines[index:end], delimiter)
        if problem is None and (end == index + 1 or len(fields or ()) == num_columns):
            yield index, fields, None
            index = end
            continue
        if problem == "open" and (end >= total or end - index >= CSV_MAX_RECORD_LINES):
            where = "by the end of the file" if end >= total else f"within {CSV_MAX_RECORD_LINES} lines"
            yield index, None, (f"unmatched quote: a quoted field opens on this line and is not closed {where}; "
                                'close it, or double the quote ("") to write a literal one')
        elif problem == "open" or end > index + 1:
            yield index, None, ("unmatched quote: a quoted field opens on this line and the lines after it do not "
                                'close it into a valid row; close it, or double the quote ("") to write a literal one')
        else:
            yield index, None, (f"malformed quoting: {problem}; a quoted field must end with a quote followed by "
                                "the delimiter or the end of the line")
        index += 1


# --------------------------------------------------------------------------------------------
# Parsing


@dataclass
class _Parsed:
    examples: list[Example]
    rejected: list[Rejection]
    notes: list[str]
    source_field: str | None = None
    target_field: str | None = None
    text: str | None = None
    header_line: int | None = None


def _too_long_reason(length: int, cap: int) -> str:
    return (f"line too long: {length:,} characters, over the {cap:,}-character limit (max_line_chars); "
            "split the line or raise max_line_chars")


_FIELD_BREAKS = re.compile(r"[\t\r\n]")


class _FieldCleaner:
    """normalize() a field; in pair corpora, tabs and line breaks inside a value become spaces."""

    def __init__(self) -> None:
        self.num_changed = 0

    def __call__(self, value: str) -> str:
        value = normalize(value)
        if "\t" in value or "\n" in value or "\r" in value:
            self.num_changed += 1
            value = _FIELD_BREAKS.sub(" ", value)
        return value.strip()

    def note(self) -> list[str]:
        if not self.num_changed:
            return []
        return [f"{self.num_changed:,} field{_s(self.num_changed)} contained tabs or line breaks; "
                "each became a space (pair fields are single lines)"]


def _parse_text(lines: Sequence[str], config: CorpusConfig) -> _Parsed:
    kept: list[str] = []
    examples: list[Example] = []
    rejected: list[Rejection] = []
    cap = config.max_line_chars
    for index, raw in enumerate(lines):
        if len(raw) > cap:
            rejected.append(Rejection(index + 1, _too_long_reason(len(raw), cap)))
            continue
        line = normalize(raw)
        kept.append(line)
        if line.strip():
            examples.append(Example("", line, index + 1))
    notes = []
    if rejected:
        notes.append(f"{len(rejected):,} line{_s(len(rejected))} over max_line_chars={cap:,} left out of the text")
    return _Parsed(examples, rejected, notes, text="\n".join(kept) + "\n" if kept else "")


def _parse_tsv(lines: Sequence[str], config: CorpusConfig) -> _Parsed:
    examples: list[Example] = []
    rejected: list[Rejection] = []
    notes: list[str] = []
    clean = _FieldCleaner()
    cap = config.max_line_chars
    header_line: int | None = None
    seen_data = False
    num_blank = 0
    for index, raw in enumerate(lines):
        number = index + 1
        if not raw.strip():
            num_blank += 1
            continue
        if len(raw) > cap:
            rejected.append(Rejection(number, _too_long_reason(len(raw), cap)))
            continue
        parts = raw.split("\t")
        if len(parts) == 1:
            rejected.append(Rejection(number, "missing target: no tab on this line; TSV rows are source<TAB>target"))
            continue
        if len(parts) > 2:
            rejected.append(Rejection(
                number,
                f"extra tabs: {len(parts)} tab-separated fields, expected 2 (source<TAB>target); remove the extra "
                "tabs, or use CSV or JSONL for text that contains tabs",
            ))
            continue
        source, target = clean(parts[0]), clean(parts[1])
        if not seen_data and _known_pair(source, target):
            header_line = number
            notes.append(f"line {number} read as a header ({source}, {target}) and skipped")
            seen_data = True
            continue
        seen_data = True
        if not source:
            rejected.append(Rejection(number, "empty source: nothing before the tab"))
        elif not target:
            rejected.append(Rejection(number, "empty target: nothing after the tab"))
        else:
            examples.append(Example(source, target, number))
    if num_blank:
        notes.append(f"{num_blank:,} blank line{_s(num_blank)} skipped")
    return _Parsed(examples, rejected, notes + clean.note(), header_line=header_line)


def _parse_csv(lines: Sequence[str], config: CorpusConfig) -> _Parsed:
    notes: list[str] = []
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:  # whitespace-only files are refused before parsing; keep this total anyway
        return _Parsed([], [], notes)
    header_index = first
    if _SEP_LINE.fullmatch(lines[first].strip()):
        header_index = next((i for i in range(first + 1, len(lines)) if lines[i].strip()), None)
        if header_index is None:
            raise CorpusError(
                'no usable examples: the CSV file has only a "sep=" line. Add a header row and data rows.'
            )
    header = lines[header_index]
    if len(header) > config.max_line_chars:
        raise CorpusError(
            f"the CSV header (line {header_index + 1}) is {len(header):,} characters long, over max_line_chars="
            f"{config.max_line_chars:,}; is this really a CSV file? Set format to text or tsv if not."
        )
    delimiter = _choose_delimiter(lines[first], header)
    fields, problem = _parse_csv_record([header], delimiter)
    if fields is None:
        raise CorpusError(
            f"the CSV header (line {header_index + 1}) has broken quoting "
            f"({'an unmatched quote' if problem == 'open' else problem}); fix the header row."
        )
    names = [normalize(name).strip() for name in fields]
    if len(names) < 2:
        raise CorpusError(
            f"the CSV header (line {header_index + 1}) has only one column ({names[0]!r}); a pairs corpus needs a "
            "source and a target column. Add the second column, or set format to text for plain text."
        )
    source_name, target_name, how = _choose_fields(names, config, "column")
    notes.append(f"line {header_index + 1} read as the CSV header ({_delimiter_name(delimiter)}-separated): {how}")
    source_index, target_index = names.index(source_name), names.index(target_name)

    examples: list[Example] = []
    rejected: list[Rejection] = []
    clean = _FieldCleaner()
    expected = len(names)
    for index, row, reason in _csv_records(lines, header_index + 1, delimiter, expected, config.max_line_chars):
        number = index + 1
        if row is None:
            rejected.append(Rejection(number, reason or "malformed record"))
            continue
        if len(row) != expected:
            rejected.append(Rejection(
                number,
                f"wrong field count: {len(row)} field{_s(len(row))}, expected {expected} (the header has {expected} "
                f"columns); quote fields that contain {_delimiter_name(delimiter)}s",
            ))
            continue
        source, target = clean(row[source_index]), clean(row[target_index])
        if not source:
            rejected.append(Rejection(number, f"empty source: column {source_name!r} is empty"))
        elif not target:
            rejected.append(Rejection(number, f"empty target: column {target_name!r} is empty"))
        else:
            examples.append(Example(source, target, number))
    return _Parsed(examples, rejected, notes + clean.note(), source_name, target_name,
                   header_line=header_index + 1)


def _parse_jsonl(lines: Sequence[str], config: CorpusConfig) -> _Parsed:
    cap = config.max_line_chars
    rejected: list[Rejection] = []
    objects: list[tuple[int, dict[str, Any]]] = []
    for index, raw in enumerate(lines):
        number = index + 1
        if not raw.strip():
            continue
        if len(raw) > cap:
            rejected.append(Rejection(number, _too_long_reason(len(raw), cap)))
            continue
        try:
            value = _loads(raw)
        except json.JSONDecodeError as error:
            rejected.append(Rejection(
                number, f"invalid JSON: {error.msg} at column {error.colno}; each line must be one JSON object"
            ))
            continue
        except (ValueError, RecursionError):
            rejected.append(Rejection(
                number, "invalid JSON: too deeply nested or malformed; each line must be one JSON object"
            ))
            continue
        if not isinstance(value, dict):
            rejected.append(Rejection(number, f"not a JSON object: the line is {_json_kind(value)}; write "
                                              '{"source": ..., "target": ...}'))
            continue
        objects.append((number, value))
    notes: list[str] = []
    if not objects:
        return _Parsed([], sorted(rejected, key=lambda r: r.line), notes)

    key_counts: dict[str, int] = {}
    for _, obj in objects:
        for key in obj:
            key_counts[key] = key_counts.get(key, 0) + 1
    common = [key for key, count in key_counts.items() if count * 2 >= len(objects)] or list(key_counts)
    source_key, target_key, how = _choose_fields(common, config, "key", all_names=list(key_counts))
    notes.append(f"JSON keys: {how}")

    examples: list[Example] = []
    clean = _FieldCleaner()
    for number, obj in objects:
        problem = None
        values = []
        for role, key in (("source", source_key), ("target", target_key)):
            if key not in obj:
                shown = ", ".join(repr(k) for k in list(obj)[:10]) or "none"
                problem = f"missing key: no {key!r} key (this line has {shown})"
                break
            value = obj[key]
            if not isinstance(value, str):
                problem = (f"non-string value: {key!r} is {_json_kind(value)}; {role} values must be strings "
                           "(numbers are read as their text; lists, objects, true/false and null are not)")
                break
            values.append(clean(value))
        if problem is None:
            if not values[0]:
                problem = f"empty source: {source_key!r} is empty"
            elif not values[1]:
                problem = f"empty target: {target_key!r} is empty"
        if problem is None:
            examples.append(Example(values[0], values[1], number))
        else:
            rejected.append(Rejection(number, problem))
    rejected.sort(key=lambda r: r.line)
    return _Parsed(examples, rejected, notes + clean.note(), source_key, target_key)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


# --------------------------------------------------------------------------------------------
# Choosing the source and target columns / keys

# Checked in order; the first pair present wins. instruction/... before input/output because
# instruction-tuning files (Alpaca) have an often-empty "input" next to "instruction".
_KNOWN_PAIRS = (
    ("source", "target"), ("src", "tgt"), ("src", "trg"), ("source_text", "target_text"),
    ("instruction", "output"), ("instruction", "response"),
    ("input", "output"), ("inputs", "targets"), ("input", "target"), ("inputs", "outputs"),
    ("question", "answer"), ("prompt", "completion"), ("prompt", "response"), ("query", "response"),
    ("context", "response"), ("text", "summary"), ("document", "summary"), ("article", "highlights"),
    ("article", "summary"), ("dialogue", "summary"), ("x", "y"),
)
_ISO_639_1 = frozenset(
    "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz "
    "ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia ie ig ii ik io "
    "is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn "
    "mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se "
    "sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo "
    "wa wo xh yi yo za zh zu".split()
)
_ISO_639_3_COMMON = frozenset(
    "eng fra fre deu ger spa ita por nld dut rus zho chi jpn kor ara hin tur pol swe dan nor fin ces cze ell gre "
    "heb hun ron rum ukr vie tha ind msa may fas per urd ben tam tel mar guj kan mal swa yor ibo hau zul xho amh "
    "som cat eus baq glg est lav lit slk slo slv hrv srp bul mkd bos sqi alb isl ice gle cym wel bre fil tgl khm "
    "lao mya bur sin nep pan".split()
)
_LANGUAGE_CODE = re.compile(r"([a-z]{2,3})([-_][a-z]{2,4})?")
_NOT_LANGUAGES = frozenset({"id", "no", "to", "is", "or", "key", "idx", "row", "num", "tag", "pos"})


def _known_pair(first: str, second: str) -> bool:
    return (first.lower(), second.lower()) in _KNOWN_PAIRS


def _is_language_code(name: str) -> bool:
    match = _LANGUAGE_CODE.fullmatch(name.lower())
    if not match or name.lower() in _NOT_LANGUAGES:
        return False
    return match.group(1) in _ISO_639_1 or match.group(1) in _ISO_639_3_COMMON


def _choose_fields(
    names: Sequence[str], config: CorpusConfig, kind: str, all_names: Sequence[str] | None = None
) -> tuple[str, str, str]:
    """(source name, target name, explanation). kind is "column" (CSV) or "key" (JSONL)."""
    all_names = list(all_names) if all_names is not None else list(names)
    listing = ", ".join(repr(n) for n in all_names[:30])
    if len(all_names) > 30:
        listing += f" and {len(all_names) - 30} more"

    def find(wanted: str, option: str) -> str:
        if wanted in all_names:
            return wanted
        folded = [n for n in all_names if n.casefold() == wanted.casefold()]
        if len(folded) == 1:
            return folded[0]
        raise CorpusError(f"{option}={wanted!r} is not a {kind} of this file; the {kind}s are {listing}. "
                          f"Set {option} to one of them.")

    source = find(config.source_field, "source_field") if config.source_field is not None else None
    target = find(config.target_field, "target_field") if config.target_field is not None else None
    if source is not None and target is not None:
        if source == target:
            raise CorpusError(f"source_field and target_field are both {source!r}; choose two different {kind}s.")
        return source, target, f"source={source!r}, target={target!r} (as configured)"

    lowered = {n.lower(): n for n in reversed(names)}  # first spelling wins
    for source_name, target_name in _KNOWN_PAIRS:
        src, tgt = lowered.get(source_name), lowered.get(target_name)
        if source is not None and source.lower() == source_name and tgt is not None:
            return source, tgt, f"source={source!r} (as configured), target={tgt!r} (its usual partner)"
        if target is not None and target.lower() == target_name and src is not None:
            return src, target, f"source={src!r} (usual partner), target={target!r} (as configured)"
        if source is None and target is None and src is not None and tgt is not None:
            return src, tgt, f"source={src!r}, target={tgt!r} (well-known names)"
    if source is None and target is None:
        languages = [n for n in names if _is_language_code(n)]
        if len(languages) == 2:
            return languages[0], languages[1], (f"source={languages[0]!r}, target={languages[1]!r} "
                                                "(the two language-code names, in file order)")
    if len(names) == 2:
        if source is None and target is None:
            return names[0], names[1], f"source={names[0]!r}, target={names[1]!r} (the only two {kind}s, in order)"
        if source is not None and source in names:
            other = names[1] if names[0] == source else names[0]
            return source, other, f"source={source!r} (as configured), target={other!r} (the other {kind})"
        if target is not None and target in names:
            other = names[1] if names[0] == target else names[0]
            return other, target, f"source={other!r} (the other {kind}), target={target!r} (as configured)"
    unnamed = [opt for opt, val in (("source_field", source), ("target_field", target)) if val is None]
    others = [n for n in all_names if n not in (source, target)]
    example = ", ".join(f"{opt}={name!r}" for opt, name in zip(unnamed, others))
    raise CorpusError(
        f"cannot tell which {kind}s hold the source and the target: the {kind}s are {listing}. "
        f"Name them with {' and '.join(unnamed)}" + (f" (e.g. {example})." if len(others) >= len(unnamed) else ".")
    )


# --------------------------------------------------------------------------------------------
# Splits and deduplication


def _part_sizes(count: int, config: CorpusConfig) -> tuple[int, int]:
    """(valid, test) sizes: rounded half up, at least 1 when the fraction is > 0, train keeps >= 1."""
    def size(fraction: float) -> int:
        return 0 if fraction <= 0 else max(1, math.floor(count * fraction + 0.5))

    valid, test = size(config.valid_fraction), size(config.test_fraction)
    while valid + test >= count and (valid > 1 or test > 1):  # only reachable for tiny hand-made corpora
        if valid >= test:
            valid -= 1
        else:
            test -= 1
    return valid, test


def split_corpus(corpus: Corpus, config: CorpusConfig = CorpusConfig()) -> Split:
    """Deterministic train/valid/test split (same corpus, fractions and seed -> same split).

    Pairs: examples are shuffled with `random.Random(config.split_seed)` (stable across Python and
    NumPy versions) in groups of identical sources, so one source never sits in both train and test
    (that leak makes test scores optimistic). Whole groups fill test, then valid, up to their target
    sizes; with many repeated sources a part can come out a little smaller than the fraction says.
    When grouping cannot fill a part at all (e.g. every source is the same), the split falls back to
    single examples and `build_report` reports the overlap.

    Text: contiguous blocks, train = first lines, valid = the next block, test = the last lines.
    Randomly chosen lines would leak context (a test line's neighbours would be in training), and
    a language model trains on running text.
    """
    _check_config(config)
    count = len(corpus.examples)
    if count < MIN_EXAMPLES:
        raise CorpusError(
            f"the corpus has {count} example{_s(count)}; at least {MIN_EXAMPLES} (MIN_EXAMPLES) are needed to "
            "make train, validation and test splits. Add more examples."
        )
    num_valid, num_test = _part_sizes(count, config)
    seed = config.split_seed
    if not corpus.is_pairs:
        num_train = count - num_valid - num_test
        return Split(
            train=tuple(range(num_train)),
            valid=tuple(range(num_train, num_train + num_valid)),
            test=tuple(range(num_train + num_valid, count)),
            seed=seed,
        )

    groups: dict[str, list[int]] = {}
    for index, example in enumerate(corpus.examples):
        groups.setdefault(example.source, []).append(index)
    ordered = list(groups.values())  # insertion order: file order, so the shuffle is reproducible
    random.Random(seed).shuffle(ordered)
    valid: list[int] = []
    test: list[int] = []
    train: list[int] = []
    for members in ordered:
        if len(test) + len(members) <= num_test:
            test.extend(members)
        elif len(valid) + len(members) <= num_valid:
            valid.extend(members)
        else:
            train.extend(members)
    if (num_test and not test) or (num_valid and not valid) or not train:
        order = list(range(count))
        random.Random(seed).shuffle(order)
        test, valid, train = order[:num_test], order[num_test:num_test + num_valid], order[num_test + num_valid:]
    return Split(train=tuple(sorted(train)), valid=tuple(sorted(valid)), test=tuple(sorted(test)), seed=seed)


def _text_lines(corpus: Corpus) -> tuple[list[str], list[int]] | None:
    """For a text corpus: the lines of `text`, and the index among them of each example's line.
    None when `text` does not match the examples (e.g. a Corpus built by hand)."""
    if corpus.text is None:
        return None
    lines = split_lines(corpus.text)
    starts = [i for i, line in enumerate(lines) if line.strip()]
    if len(starts) != len(corpus.examples) or any(lines[i] != ex.target for i, ex in zip(starts, corpus.examples)):
        return None
    return lines, starts


def texts_for_split(corpus: Corpus, split: Split) -> dict[str, str]:
    """For a text corpus, the running text of each part ("train", "valid", "test"), blank lines kept.

    This is what a language model trains and is scored on; the examples alone lose paragraph breaks.
    """
    if corpus.is_pairs:
        raise CorpusError("texts_for_split is for text corpora; for pairs use the split's indices into examples.")
    split.check_fits(corpus)
    found = _text_lines(corpus)
    result = {}
    for name, indices in (("train", split.train), ("valid", split.valid), ("test", split.test)):
        if found is None:
            parts = [corpus.examples[i].target for i in indices]
        else:
            # Each example owns its line and the blank lines after it; the first also owns any before it.
            lines, starts = found
            ends = starts[1:] + [len(lines)]
            parts = [line for i in indices for line in lines[(0 if i == 0 else starts[i]):ends[i]]]
        result[name] = "\n".join(parts) + "\n" if parts else ""
    return result


def deduplicate(corpus: Corpus) -> Corpus:
    """A copy keeping the first occurrence of each (source, target) pair, file order preserved.

    For text corpora the repeated lines also leave `text`. sha256/num_bytes still describe the
    original file (the upload did not change); a note records what was removed. Splits made before
    deduplicating no longer apply.
    """
    seen: set[tuple[str, str]] = set()
    keep: list[int] = []
    for index, example in enumerate(corpus.examples):
        key = (example.source, example.target)
        if key not in seen:
            seen.add(key)
            keep.append(index)
    removed = len(corpus.examples) - len(keep)
    if not removed:
        return corpus
    text = corpus.text
    if not corpus.is_pairs and text is not None:
        found = _text_lines(corpus)
        if found is None:
            text = "".join(corpus.examples[i].target + "\n" for i in keep)
        else:
            lines, starts = found
            kept = set(keep)
            dropped = {starts[i] for i in range(len(corpus.examples)) if i not in kept}
            remaining = [line for j, line in enumerate(lines) if j not in dropped]
            text = "\n".join(remaining) + "\n" if remaining else ""
    return Corpus(
        format=corpus.format,
        examples=tuple(corpus.examples[i] for i in keep),
        rejected=corpus.rejected,
        encoding=corpus.encoding,
        source_field=corpus.source_field,
        target_field=corpus.target_field,
        sha256=corpus.sha256,
        num_bytes=corpus.num_bytes,
        text=text,
        notes=corpus.notes + (f"deduplication removed {removed:,} repeated example{_s(removed)}",),
        num_lines=corpus.num_lines,
    )


# --------------------------------------------------------------------------------------------
# Report

_WORD = re.compile(r"\w+|[^\w\s]")
_SUSPICIOUS = {
    "zero-width": "[\u200b\u2060\ufeff\u180e]",  # ZWJ/ZWNJ left out: normal in emoji, Persian, Indic scripts
    "bidi control": "[\u202a-\u202e\u2066-\u2069]",
    "ANSI escape": "\x1b",
    "control character": "[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f-\x84\x86-\x9f]",
    "replacement character": "\ufffd",
}
_SUSPICIOUS_ANY = re.compile("|".join(_SUSPICIOUS.values()))
_SUSPICIOUS_EACH = {name: re.compile(pattern) for name, pattern in _SUSPICIOUS.items()}
_HISTOGRAM_BINS = 20
_RATIO_FACTOR = 3.0
_RATIO_MIN_WORDS = 5  # pairs where both sides are shorter than this are never length outliers
_MAX_LISTED_LINES = 10
# A corpus with at least this many distinct words, making up at least this share of all its words,
# looks like random ids, hashes or hex strings (a "vocabulary explosion"): no word vocabulary
# covers it, and a vocabulary sized to it makes the model's output layer huge.
_EXPLOSION_MIN_DISTINCT = 5000
_EXPLOSION_SHARE = 0.5


def build_report(corpus: Corpus, split: Split | None = None) -> CorpusReport:
    """Statistics and warnings for a corpus (and its split), for the app's validation page and the run
    record. Lengths are in whitespace-separated words and in characters; vocabulary counts split
    punctuation from words."""
    examples = corpus.examples
    if split is not None:
        split.check_fits(corpus)
    pairs = corpus.is_pairs
    sources = [e.source for e in examples]
    targets = [e.target for e in examples]

    counts: collections.Counter[tuple[str, str]] = collections.Counter(zip(sources, targets))
    num_duplicates = len(examples) - len(counts)
    num_same = sum(1 for s, t in zip(sources, targets) if s == t) if pairs else 0
    distinct_targets = len(set(targets))
    distinct_sources = len(set(sources)) if pairs else 0

    source_words = [len(s.split()) for s in sources]
    target_words = [len(t.split()) for t in targets]
    source_length = _length_stats(source_words, [len(s) for s in sources]) if pairs else None
    target_length = _length_stats(target_words, [len(t) for t in targets])
    outliers = _ratio_outliers(examples, source_words, target_words) if pairs else None

    source_vocabulary = _vocabulary(sources)
    target_vocabulary = _vocabulary(targets)
    vocabulary = {"source": len(source_vocabulary), "target": len(target_vocabulary),
                  "combined": len(source_vocabulary | target_vocabulary)}

    suspicious = _suspicious_characters(examples)
    reasons = collections.Counter(r.category for r in corpus.rejected)
    split_info = _split_overlap(corpus, split) if split is not None else None

    num_characters = num_words = num_distinct_characters = None
    if not pairs:
        text = corpus.text if corpus.text is not None else "".join(t + "\n" for t in targets)
        num_characters = len(text)
        num_words = sum(target_words)
        num_distinct_characters = len(set(text))

    num_lines = corpus.num_lines or max([e.line for e in examples] + [r.line for r in corpus.rejected] + [0])
    report = CorpusReport(
        format=corpus.format,
        encoding=corpus.encoding,
        sha256=corpus.sha256,
        num_bytes=corpus.num_bytes,
        num_lines=num_lines,
        num_examples=len(examples),
        num_rejected=len(corpus.rejected),
        rejected=corpus.rejected[:MAX_REPORTED_REJECTIONS],
        rejection_reasons=dict(reasons.most_common()),
        source_field=corpus.source_field,
        target_field=corpus.target_field,
        num_duplicates=num_duplicates,
        num_source_equals_target=num_same,
        num_distinct_sources=distinct_sources,
        num_distinct_targets=distinct_targets,
        source_length=source_length,
        target_length=target_length,
        length_ratio_outliers=outliers,
        vocabulary_size=vocabulary,
        suspicious_characters=suspicious,
        split=split_info,
        num_characters=num_characters,
        num_words=num_words,
        num_distinct_characters=num_distinct_characters,
        notes=corpus.notes,
        warnings=(),
    )
    return _with_warnings(report, corpus, targets, sum(source_words) + sum(target_words))


def _vocabulary(texts: Sequence[str]) -> set[str]:
    """Distinct words, punctuation split off ("don't." -> don, ', t, .). Regex tokens never cross
    whitespace, so only the distinct whitespace-separated chunks need the (slow) regex."""
    vocabulary: set[str] = set()
    for chunk in set(" ".join(texts).split()):
        vocabulary.update(_WORD.findall(chunk))
    return vocabulary


def _summary(values: Sequence[int]) -> dict[str, Any]:
    if not values:
        return {"min": 0, "max": 0, "mean": 0.0, "median": 0.0, "p95": 0.0,
                "histogram": {"edges": [0, 1], "counts": [0]}}
    array = np.asarray(values, dtype=np.int64)
    low, high = int(array.min()), int(array.max())
    num_bins = min(_HISTOGRAM_BINS, high - low + 1)
    width = math.ceil((high - low + 1) / num_bins)
    edges = [low + width * k for k in range(num_bins + 1)]
    histogram_counts, _ = np.histogram(array, bins=edges)
    return {
        "min": low,
        "max": high,
        "mean": round(float(array.mean()), 2),
        "median": float(statistics.median(values)),
        "p95": round(float(np.percentile(array, 95)), 2),
        # Bin k counts lengths in [edges[k], edges[k+1]) (integers, so a bar chart can label them).
        "histogram": {"edges": edges, "counts": [int(c) for c in histogram_counts]},
    }


def _length_stats(words: Sequence[int], characters: Sequence[int]) -> dict[str, Any]:
    return {"words": _summary(words), "characters": _summary(characters)}


def _ratio_outliers(
    examples: Sequence[Example], source_words: Sequence[int], target_words: Sequence[int]
) -> dict[str, Any]:
    """Pairs whose target/source word ratio is outside [median/3, median*3]; likely misaligned lines.

    Pairs where both sides have fewer than _RATIO_MIN_WORDS words are skipped: "Hi" -> "Hello there"
    is a ratio of 2 that means nothing."""
    ratios = [t / max(s, 1) for s, t in zip(source_words, target_words)]
    if not ratios:
        return {"count": 0, "median_ratio": None, "bounds": None, "lines": []}
    median = statistics.median(ratios)
    if median <= 0:
        return {"count": 0, "median_ratio": 0.0, "bounds": None, "lines": []}
    low, high = median / _RATIO_FACTOR, median * _RATIO_FACTOR
    lines = [
        e.line for e, r, s, t in zip(examples, ratios, source_words, target_words)
        if max(s, t) >= _RATIO_MIN_WORDS and not low <= r <= high
    ]
    return {"count": len(lines), "median_ratio": round(median, 3), "bounds": [round(low, 3), round(high, 3)],
            "lines": lines[:_MAX_LISTED_LINES]}


def _suspicious_characters(examples: Sequence[Example]) -> dict[str, dict[str, int]]:
    """{category: {"count": n, "first_line": line}} for invisible or control characters."""
    found: dict[str, dict[str, int]] = {}
    if not _SUSPICIOUS_ANY.search("\n".join([e.source for e in examples] + [e.target for e in examples])):
        return found
    for example in examples:
        for value in (example.source, example.target):
            if not _SUSPICIOUS_ANY.search(value):
                continue
            for name, pattern in _SUSPICIOUS_EACH.items():
                count = len(pattern.findall(value))
                if count:
                    entry = found.setdefault(name, {"count": 0, "first_line": example.line})
                    entry["count"] += count
    return found


def _split_overlap(corpus: Corpus, split: Split) -> dict[str, Any]:
    """Sizes, and how many valid/test examples have a source (a line, for text) also in train."""
    key = (lambda e: e.source) if corpus.is_pairs else (lambda e: e.target)
    train_keys = {key(corpus.examples[i]) for i in split.train}
    return {
        "seed": split.seed,
        "train": len(split.train),
        "valid": len(split.valid),
        "test": len(split.test),
        "valid_sources_in_train": sum(1 for i in split.valid if key(corpus.examples[i]) in train_keys),
        "test_sources_in_train": sum(1 for i in split.test if key(corpus.examples[i]) in train_keys),
    }


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _with_warnings(report: CorpusReport, corpus: Corpus, targets: Sequence[str], num_words: int) -> CorpusReport:
    warnings: list[str] = []
    count = report.num_examples
    pairs = corpus.is_pairs
    unit = "examples" if pairs else "lines"

    if report.num_rejected:
        warnings.append(
            f"{report.num_rejected:,} line{_s(report.num_rejected)} rejected and left out "
            f"({_summarize_reasons(corpus.rejected)}); see the rejected list for line numbers and reasons."
        )
    if report.num_duplicates and (pairs or report.num_duplicates >= 0.05 * count):
        warnings.append(
            f"{report.num_duplicates:,} of {count:,} {unit} ({report.num_duplicates / count:.1%}) repeat an earlier "
            f"one exactly; duplicates weigh some {unit} more in training and inflate scores when a copy lands in "
            "the test split. Remove them with the deduplicate option (the app's checkbox, or "
            "`--set deduplicate=true` on the command line)."
        )
    if pairs and report.num_source_equals_target:
        warnings.append(
            f"{report.num_source_equals_target:,} pair{_s(report.num_source_equals_target)} have the target identical "
            "to the source; a model can score well on them by copying. Check the source and target columns."
        )
    if pairs and count > 1 and report.num_distinct_targets == 1:
        warnings.append(
            f"all {count:,} targets are the same text ({_short(targets[0])!r}); a model will learn to output it "
            "whatever the input. Check that target_field names the right column."
        )
    outliers = report.length_ratio_outliers
    if outliers and outliers["count"]:
        low, high = outliers["bounds"]
        shown = ", ".join(str(line) for line in outliers["lines"])
        warnings.append(
            f"{outliers['count']:,} pair{_s(outliers['count'])} have a target/source length ratio outside "
            f"[{low:g}, {high:g}] (median {outliers['median_ratio']:g}); the lines may be misaligned "
            f"(e.g. line{_s(len(outliers['lines']))} {shown})."
        )
    split_info = report.split
    if split_info:
        for part in ("valid", "test"):
            overlap = split_info[f"{part}_sources_in_train"]
            # Repeated lines ("Chorus", "* * *") are normal in running text; warn only when many repeat.
            if overlap and (pairs or overlap >= 0.1 * split_info[part]):
                what = "sources" if pairs else "lines"
                warnings.append(
                    f"{overlap:,} of {split_info[part]:,} {part} {what} also appear in train; {part} scores will be "
                    "optimistic. Deduplicate, or split so identical sources stay together."
                )
    if report.suspicious_characters:
        parts = [f"{v['count']:,} {name}{'s' if v['count'] != 1 else ''} (first at line {v['first_line']})"
                 for name, v in report.suspicious_characters.items()]
        warnings.append(
            f"suspicious characters: {', '.join(parts)}. They are invisible or garble text and become odd tokens; "
            "clean them from the file unless they are intended."
        )
    distinct = report.vocabulary_size["combined"]
    if distinct >= _EXPLOSION_MIN_DISTINCT and distinct >= _EXPLOSION_SHARE * num_words:
        warnings.append(
            f"vocabulary explosion: {distinct:,} distinct words in {num_words:,} ({distinct / num_words:.0%}), as with "
            "random ids, hashes or hex strings. A word tokenizer keeps its vocab_size most frequent tokens and maps "
            "the rest to <unk>; raising vocab_size to cover them grows the model's output layer and its memory "
            "(a run over the memory budget is refused). Use the bpe or char tokenizer, or clean such tokens out."
        )
    if count < 100:
        warnings.append(
            f"only {count:,} {unit}: enough to try the pipeline, too few for a model that generalises "
            "(thousands are typical)."
        )
    return dataclasses.replace(report, warnings=tuple(warnings))
