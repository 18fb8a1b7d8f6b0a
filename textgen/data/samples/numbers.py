"""The ``numbers`` sample: an integer in digits -> English words.

An integer 0 .. 999,999 in digits (numbers of 1 to 6 digits are equally likely; numbers from 1,000
up sometimes carry comma thousands separators) -> English words, as `number_to_words` writes them:
American style, no "and", tens and units hyphenated ("one thousand two hundred thirty-four", "one
hundred one", "twenty thousand").
"""

from __future__ import annotations

import random

from textgen.data.samples.words import TENS, UNITS

NUMBER_MAX = 999_999


def _below_thousand(n: int) -> list[str]:
    words = []
    if n >= 100:
        words += [UNITS[n // 100], "hundred"]
        n %= 100
    if n >= 20:
        words.append(TENS[n // 10] + (f"-{UNITS[n % 10]}" if n % 10 else ""))
    elif n:
        words.append(UNITS[n])
    return words


def number_to_words(n: int) -> str:
    """0 .. 999,999 in English words: no "and", 21-99 hyphenated. 1234 -> "one thousand two
    hundred thirty-four"."""
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= NUMBER_MAX:
        raise ValueError(f"number must be an integer 0..{NUMBER_MAX}, got {n!r}")
    if n == 0:
        return "zero"
    thousands, rest = divmod(n, 1000)
    words = (_below_thousand(thousands) + ["thousand"]) if thousands else []
    return " ".join(words + _below_thousand(rest))


def number_pair(rng: random.Random) -> tuple[str, str]:
    digits = rng.randrange(1, 7)
    n = rng.randrange(0 if digits == 1 else 10 ** (digits - 1), 10 ** digits)
    source = f"{n:,}" if n >= 1000 and rng.random() < 0.35 else str(n)
    return source, number_to_words(n)
