"""How a corpus is read and split (`CorpusConfig`) and how its text becomes tokens (`TokenizerConfig`).
Saved with every corpus and run as JSON."""

from __future__ import annotations

import dataclasses

from textgen.core.config import ConfigMixin, setting
from textgen.core.errors import ConfigError

FORMATS = ("auto", "text", "tsv", "csv", "jsonl")


TOKENIZER_KINDS = ("char", "word", "bpe", "wordpiece")


@dataclasses.dataclass(frozen=True)
class CorpusConfig(ConfigMixin):
    """How a corpus file is read, checked and split."""

    format: str = setting(
        "auto", choices=FORMATS,
        help="Detected from the content when \"auto\"; the file name is never trusted.")
    source_field: str | None = setting(
        None,
        help=("CSV column / JSONL key holding the source; None picks an obvious one (source, input, "
              "question...)."))
    target_field: str | None = setting(
        None,
        help=("CSV column / JSONL key holding the target; None picks an obvious one (target, output, "
              "answer...)."))
    max_bytes: int = setting(
        50 * 1024 * 1024, low=1, high=2 * 1024**3,
        help="Files larger than this are refused before parsing (matches the app's upload cap).")
    max_line_chars: int = setting(
        2000, low=10, high=10_000_000,
        help="Lines longer than this many characters are rejected (reported with their line number).")
    valid_fraction: float = setting(
        0.1, low=0.0, high=0.5,
        help="Fraction of examples held out for validation (early stopping, probe samples).")
    test_fraction: float = setting(
        0.1, low=0.0, high=0.5,
        help="Fraction of examples held out for the final test score.")
    split_seed: int = setting(
        1234, low=0, high=2**31 - 1,
        help="Seed of the split; the same file, config and seed always give the same split.")
    deduplicate: bool = setting(
        False,
        help="Drop examples whose (source, target) repeats an earlier one, keeping the first.")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.valid_fraction + self.test_fraction >= 0.9:
            raise ConfigError(
                "valid_fraction + test_fraction must leave at least 10% for training, "
                f"got {self.valid_fraction} + {self.test_fraction}."
            )


@dataclasses.dataclass(frozen=True)
class TokenizerConfig(ConfigMixin):
    """How text becomes token ids (one tokenizer for the source side, one for the target side)."""

    kind: str = setting(
        "word", choices=TOKENIZER_KINDS,
        help=("char: one token per character; word: words with punctuation split off; bpe / "
              "wordpiece: subwords learned on the training split with HF `tokenizers`."))
    vocab_size: int = setting(
        8000, low=8, high=1_000_000,
        help="Upper bound on the vocabulary, special tokens included; rarer tokens map to <unk>.")
    min_frequency: int = setting(
        1, low=1, high=1_000_000,
        help="Tokens seen fewer times than this in training are left out of the vocabulary.")
    lowercase: bool = setting(
        False,
        help="Lower-case everything before tokenising (then generated text is lower-case too).")