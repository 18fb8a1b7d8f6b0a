"""The list of samples and the API the rest of the library uses.

`SAMPLES` maps each name to its `SampleSpec`, in display order; `generate_pairs`, `generate_text`
and `sample_bytes` make a sample of a given size and seed (a pure function of the three), and
`parse_sample_reference` reads "sample:NAME" as written in a corpus field.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from typing import Callable

from textgen.core.errors import ConfigError, CorpusError
from textgen.data.samples.dates import date_pair
from textgen.data.samples.numbers import number_pair
from textgen.data.samples.reverse import reverse_pair
from textgen.data.samples.support import support_pair
from textgen.data.samples.tales import generate_tales

PAIRS_SIZE_RANGE = (1, 1_000_000)
TEXT_SIZE_RANGE = (1, 50_000)
SAMPLE_PREFIX = "sample:"
_DISTINCT_TRIES = 10


@dataclass(frozen=True)
class SampleSpec:
    name: str
    kind: str  # "pairs" | "text"
    description: str
    default_size: int
    example_source: str
    example_target: str  # "" for text samples


_PAIR_GENERATORS: dict[str, Callable[[random.Random], tuple[str, str]]] = {
    "reverse": reverse_pair,
    "dates": date_pair,
    "numbers": number_pair,
    "support": support_pair,
}
_TEXT_GENERATORS: dict[str, Callable[[int, int], str]] = {
    "tales": generate_tales,
}

# The first paragraph of the first story of seed 0, cut at a word: what a user sees in the app.
_TALES_EXAMPLE = generate_tales(1, 0).split("\n\n")[1][:160].rsplit(" ", 1)[0] + " ..."

SAMPLES: dict[str, SampleSpec] = {
    "dates": SampleSpec(
        "dates", "pairs",
        "Dates written in many forms (\"the third of March, 2021\", \"03.03.2021\") to ISO dates "
        "(\"2021-03-03\"); attention maps show the reordering.",
        3000, "Wednesday, March 3, 2021", "2021-03-03"),
    "numbers": SampleSpec(
        "numbers", "pairs",
        "Integers from 0 to 999,999 in digits to English words (\"1,234\" to \"one thousand two "
        "hundred thirty-four\").",
        3000, "1,234", "one thousand two hundred thirty-four"),
    "support": SampleSpec(
        "support", "pairs",
        "Customer-service questions to templated answers that must copy order numbers, emails, "
        "products and names from the question.",
        3000, "Please cancel order #A1234-56.",
        "I have cancelled order #A1234-56. Any payment will be returned to your original "
        "payment method."),
    "tales": SampleSpec(
        "tales", "text",
        "About 300 KB of short generated fables (title, three paragraphs, a moral) for training "
        "a language model to continue text.",
        400, _TALES_EXAMPLE, ""),
    "reverse": SampleSpec(
        "reverse", "pairs",
        "Short letter sequences to the same letters reversed (\"k d a q\" to \"q a d k\"); a "
        "sanity check that trains in seconds.",
        2000, "k d a q", "q a d k"),
}


def sample_names() -> list[str]:
    return list(SAMPLES)


def _names_list() -> str:
    return ", ".join(SAMPLES)


def _spec(name: str) -> SampleSpec:
    if not isinstance(name, str) or name not in SAMPLES:
        raise ConfigError(f"Unknown sample {name!r}; valid samples are: {_names_list()}.")
    return SAMPLES[name]


def _check_size(spec: SampleSpec, size: int | None) -> int:
    if size is None:
        return spec.default_size
    low, high = PAIRS_SIZE_RANGE if spec.kind == "pairs" else TEXT_SIZE_RANGE
    unit = "examples" if spec.kind == "pairs" else "stories"
    if isinstance(size, bool) or not isinstance(size, int) or not low <= size <= high:
        raise ConfigError(f"Sample size for {spec.name!r} must be a whole number of {unit} "
                          f"between {low:,} and {high:,}; got {size!r}.")
    return size


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"Sample seed must be a whole number of 0 or more; got {seed!r}.")
    return seed


def generate_pairs(name: str, size: int | None = None, seed: int = 0) -> list[tuple[str, str]]:
    """`size` (source, target) pairs of a pairs sample; a pure function of its arguments."""
    spec = _spec(name)
    if spec.kind != "pairs":
        pair_names = ", ".join(n for n, s in SAMPLES.items() if s.kind == "pairs")
        raise ConfigError(f"Sample {name!r} is plain text, not source/target pairs; pair samples "
                          f"are: {pair_names}.")
    size = _check_size(spec, size)
    rng = random.Random(_check_seed(seed))
    make = _PAIR_GENERATORS[name]
    seen: set[str] = set()
    pairs = []
    for _ in range(size):
        for _ in range(_DISTINCT_TRIES):
            source, target = make(rng)
            if source not in seen:
                break
        seen.add(source)
        pairs.append((unicodedata.normalize("NFC", source), unicodedata.normalize("NFC", target)))
    return pairs


def generate_text(name: str, size: int | None = None, seed: int = 0) -> str:
    """The text of a text sample (size = number of stories); a pure function of its arguments."""
    spec = _spec(name)
    if spec.kind != "text":
        text_names = ", ".join(n for n, s in SAMPLES.items() if s.kind == "text")
        raise ConfigError(f"Sample {name!r} is source/target pairs, not plain text; text samples "
                          f"are: {text_names}.")
    return unicodedata.normalize(
        "NFC", _TEXT_GENERATORS[name](_check_size(spec, size), _check_seed(seed)))


def sample_bytes(name: str, size: int | None = None, seed: int = 0) -> bytes:
    """The sample as a file: TSV "source<TAB>target<LF>" lines (no header) or UTF-8 text."""
    if _spec(name).kind == "pairs":
        return "".join(f"{s}\t{t}\n" for s, t in generate_pairs(name, size, seed)).encode("utf-8")
    return generate_text(name, size, seed).encode("utf-8")


def sample_file_suffix(name: str) -> str:
    return ".tsv" if _spec(name).kind == "pairs" else ".txt"


def parse_sample_reference(text: str) -> str | None:
    """"sample:dates" -> "dates"; None when `text` is not a sample reference.

    The prefix and the name are case-insensitive and may be surrounded by spaces. An unknown or
    missing name raises CorpusError listing the valid names.
    """
    if not isinstance(text, str):
        return None
    stripped = text.strip()
    if stripped[:len(SAMPLE_PREFIX)].lower() != SAMPLE_PREFIX:
        return None
    name = stripped[len(SAMPLE_PREFIX):].strip().lower()
    if name not in SAMPLES:
        raise CorpusError(f"Unknown sample {stripped[len(SAMPLE_PREFIX):].strip()!r} in "
                          f"{stripped!r}; valid samples are: {_names_list()} "
                          f"(write e.g. \"{SAMPLE_PREFIX}{next(iter(SAMPLES))}\").")
    return name
