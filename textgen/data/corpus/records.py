"""The plain data a corpus becomes: examples, rejected lines, the corpus, its split and its report."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from textgen.core.errors import CorpusError
from textgen.data.config import CorpusConfig

CORPUS_FORMATS = ("text", "tsv", "csv", "jsonl")
# A quoted CSV field may span at most this many physical lines before its opening quote is taken
# to be a stray one.
CSV_MAX_RECORD_LINES = 10
# Fewest usable examples (pairs, or non-blank lines of a text corpus) that still give a train,
# validation and test split with at least one example each and a few to train on.
MIN_EXAMPLES = 10
# The report lists at most this many rejected lines (num_rejected stays exact), so its JSON stays
# small even when every line of a big file is bad.
MAX_REPORTED_REJECTIONS = 1000

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


def plural_s(count: int) -> str:
    return "" if count == 1 else "s"


def summarize_reasons(rejected: Sequence[Rejection], top: int = 3) -> str:
    """"missing target ×5 (first at line 3), extra tabs ×2 (first at line 9)"."""
    counts: collections.Counter[str] = collections.Counter()
    first: dict[str, int] = {}
    for rejection in rejected:
        category = rejection.category
        counts[category] += 1
        first.setdefault(category, rejection.line)
    parts = [f"{cat} ×{n:,} (first at line {first[cat]})" for cat, n in counts.most_common(top)]
    if len(counts) > top:
        parts.append(f"{len(counts) - top} other kind{plural_s(len(counts) - top)}")
    return ", ".join(parts)


def too_long_reason(length: int, cap: int) -> str:
    return (f"line too long: {length:,} characters, over the {cap:,}-character limit (max_line_chars); "
            "split the line or raise max_line_chars")


def check_config(config: Any) -> None:
    if not isinstance(config, CorpusConfig):
        raise TypeError(f"config must be a CorpusConfig, got {type(config).__name__}.")
