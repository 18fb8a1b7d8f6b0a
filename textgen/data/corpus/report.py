"""The validation report: counts, length and vocabulary figures, suspicious lines and warnings."""

from __future__ import annotations

import collections
import dataclasses
import math
import re
import statistics
from typing import Any, Sequence

import numpy as np

from textgen.data.corpus.records import (
    MAX_REPORTED_REJECTIONS,
    Corpus,
    CorpusReport,
    Example,
    Split,
    plural_s,
    summarize_reasons,
)

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
    source_words = [len(s.split()) for s in sources]
    target_words = [len(t.split()) for t in targets]
    reasons = collections.Counter(r.category for r in corpus.rejected)
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
        **_repetition(sources, targets, pairs),
        source_length=_length_stats(source_words, [len(s) for s in sources]) if pairs else None,
        target_length=_length_stats(target_words, [len(t) for t in targets]),
        length_ratio_outliers=_ratio_outliers(examples, source_words, target_words) if pairs else None,
        vocabulary_size=_vocabulary_sizes(sources, targets),
        suspicious_characters=_suspicious_characters(examples),
        split=_split_overlap(corpus, split) if split is not None else None,
        **_text_counts(corpus, targets, target_words),
        notes=corpus.notes,
        warnings=(),
    )
    return _with_warnings(report, corpus, targets, sum(source_words) + sum(target_words))


def _repetition(sources: list[str], targets: list[str], pairs: bool) -> dict[str, int]:
    """Repeated pairs, pairs whose source is their target, and distinct sources and targets."""
    counts: collections.Counter[tuple[str, str]] = collections.Counter(zip(sources, targets))
    return {"num_duplicates": len(sources) - len(counts),
            "num_source_equals_target": sum(1 for s, t in zip(sources, targets) if s == t) if pairs else 0,
            "num_distinct_sources": len(set(sources)) if pairs else 0,
            "num_distinct_targets": len(set(targets))}


def _vocabulary_sizes(sources: list[str], targets: list[str]) -> dict[str, int]:
    source_vocabulary = _vocabulary(sources)
    target_vocabulary = _vocabulary(targets)
    return {"source": len(source_vocabulary), "target": len(target_vocabulary),
            "combined": len(source_vocabulary | target_vocabulary)}


def _text_counts(corpus: Corpus, targets: list[str], target_words: list[int]) -> dict[str, int | None]:
    """A text corpus's characters, words and distinct characters (None for pairs)."""
    if corpus.is_pairs:
        return {"num_characters": None, "num_words": None, "num_distinct_characters": None}
    text = corpus.text if corpus.text is not None else "".join(t + "\n" for t in targets)
    return {"num_characters": len(text), "num_words": sum(target_words), "num_distinct_characters": len(set(text))}


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
    """The report with its warnings: what is wrong with the lines, their alignment and split, and
    their characters and size, in that order."""
    unit = "examples" if corpus.is_pairs else "lines"
    warnings = (_line_warnings(report, corpus, targets, unit) + _alignment_warnings(report, corpus.is_pairs)
                + _character_warnings(report, num_words, unit))
    return dataclasses.replace(report, warnings=tuple(warnings))


def _line_warnings(report: CorpusReport, corpus: Corpus, targets: Sequence[str], unit: str) -> list[str]:
    """Rejected lines, repeated examples, targets that copy their source or are all the same."""
    warnings: list[str] = []
    count = report.num_examples
    pairs = corpus.is_pairs
    if report.num_rejected:
        warnings.append(
            f"{report.num_rejected:,} line{plural_s(report.num_rejected)} rejected and left out "
            f"({summarize_reasons(corpus.rejected)}); see the rejected list for line numbers and reasons."
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
            f"{report.num_source_equals_target:,} pair{plural_s(report.num_source_equals_target)} have the target identical "
            "to the source; a model can score well on them by copying. Check the source and target columns."
        )
    if pairs and count > 1 and report.num_distinct_targets == 1:
        warnings.append(
            f"all {count:,} targets are the same text ({_short(targets[0])!r}); a model will learn to output it "
            "whatever the input. Check that target_field names the right column."
        )
    return warnings


def _alignment_warnings(report: CorpusReport, pairs: bool) -> list[str]:
    """Pairs whose length ratio suggests misaligned lines; held-out sources also in train."""
    warnings: list[str] = []
    outliers = report.length_ratio_outliers
    if outliers and outliers["count"]:
        low, high = outliers["bounds"]
        shown = ", ".join(str(line) for line in outliers["lines"])
        warnings.append(
            f"{outliers['count']:,} pair{plural_s(outliers['count'])} have a target/source length ratio outside "
            f"[{low:g}, {high:g}] (median {outliers['median_ratio']:g}); the lines may be misaligned "
            f"(e.g. line{plural_s(len(outliers['lines']))} {shown})."
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
    return warnings


def _character_warnings(report: CorpusReport, num_words: int, unit: str) -> list[str]:
    """Invisible or garbling characters, a vocabulary explosion, too few examples."""
    warnings: list[str] = []
    count = report.num_examples
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
    return warnings
