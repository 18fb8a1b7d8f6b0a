"""The ``reverse`` sample: "k d a q" -> "q a d k".

Space-separated lowercase letters, 3 to 8 of them, to the same letters in reverse order. Trains in
seconds; use it as a sanity check.
"""

from __future__ import annotations

import random

from textgen.data.samples.words import LETTERS


def reverse_pair(rng: random.Random) -> tuple[str, str]:
    letters = [rng.choice(LETTERS) for _ in range(rng.randrange(3, 9))]
    return " ".join(letters), " ".join(reversed(letters))
