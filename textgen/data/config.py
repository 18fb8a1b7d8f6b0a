"""How a corpus is read and split (`CorpusConfig`) and how its text becomes tokens (`TokenizerConfig`).
Saved with every corpus and run as JSON."""

from __future__ import annotations

import dataclasses

from textgen.core.config import ConfigMixin, check_choice, check_range
from textgen.core.errors import ConfigError

FORMATS = ("auto", "text", "tsv", "csv", "jsonl")


TOKENIZER_KINDS = ("char", "word", "bpe", "wordpiece")


@dataclasses.dataclass(frozen=True)
class CorpusConfig(ConfigMixin):
    """How a corpus file is read, checked and split."""

    # Detected from the content when "auto"; the file name is never trusted.
    format: str = "auto"
    # CSV column / JSONL key holding the source; None picks an obvious one (source, input, question...).
    source_field: str | None = None
    # CSV column / JSONL key holding the target; None picks an obvious one (target, output, answer...).
    target_field: str | None = None
    # Files larger than this are refused before parsing (matches the app's upload cap).
    max_bytes: int = 50 * 1024 * 1024
    # Lines longer than this many characters are rejected (reported with their line number).
    max_line_chars: int = 2000
    # Fraction of examples held out for validation (early stopping, probe samples).
    valid_fraction: float = 0.1
    # Fraction of examples held out for the final test score.
    test_fraction: float = 0.1
    # Seed of the split; the same file, config and seed always give the same split.
    split_seed: int = 1234
    # Drop examples whose (source, target) repeats an earlier one, keeping the first.
    deduplicate: bool = False

    def __post_init__(self) -> None:
        check_choice("format", self.format, FORMATS)
        check_range("max_bytes", self.max_bytes, 1, 2 * 1024**3)
        check_range("max_line_chars", self.max_line_chars, 10, 10_000_000)
        check_range("valid_fraction", self.valid_fraction, 0.0, 0.5)
        check_range("test_fraction", self.test_fraction, 0.0, 0.5)
        check_range("split_seed", self.split_seed, 0, 2**31 - 1)
        if self.valid_fraction + self.test_fraction >= 0.9:
            raise ConfigError(
                "valid_fraction + test_fraction must leave at least 10% for training, "
                f"got {self.valid_fraction} + {self.test_fraction}."
            )


@dataclasses.dataclass(frozen=True)
class TokenizerConfig(ConfigMixin):
    """How text becomes token ids (one tokenizer for the source side, one for the target side)."""

    # char: one token per character; word: words with punctuation split off; bpe / wordpiece:
    # subwords learned on the training split with HF `tokenizers`.
    kind: str = "word"
    # Upper bound on the vocabulary, special tokens included; rarer tokens map to <unk>.
    vocab_size: int = 8000
    # Tokens seen fewer times than this in training are left out of the vocabulary.
    min_frequency: int = 1
    # Lower-case everything before tokenising (then generated text is lower-case too).
    lowercase: bool = False

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, TOKENIZER_KINDS)
        check_range("vocab_size", self.vocab_size, 8, 1_000_000)
        check_range("min_frequency", self.min_frequency, 1, 1_000_000)
