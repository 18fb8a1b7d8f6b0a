"""The train / validation / test split (seeded, reproducible), language-model texts per split, and
deduplication."""

from __future__ import annotations

import math
import random

from textgen.core.errors import CorpusError
from textgen.core.text import split_lines
from textgen.data.config import CorpusConfig
from textgen.data.corpus.records import MIN_EXAMPLES, Corpus, Split, check_config, plural_s


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
    check_config(config)
    count = len(corpus.examples)
    if count < MIN_EXAMPLES:
        raise CorpusError(
            f"the corpus has {count} example{plural_s(count)}; at least {MIN_EXAMPLES} (MIN_EXAMPLES) are needed to "
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
        notes=corpus.notes + (f"deduplication removed {removed:,} repeated example{plural_s(removed)}",),
        num_lines=corpus.num_lines,
    )
