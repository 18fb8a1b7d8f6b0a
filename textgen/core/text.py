"""The one text-normalisation and line-splitting rule used everywhere.

Training, generation and scoring all pass text through `normalize`, so a composed "é" and a
decomposed "e + U+0301" are the same string to the tokenizer, the model and the metrics.

Line breaks are CR LF, CR and LF only. Other characters that Python's `str.splitlines` treats as
breaks (U+0085, U+2028, U+2029, VT, FF, and the file/group/record separators) are not line breaks
here: inside a line they become a plain space. One rule means line numbers in a validation report
match what `wc -l`, `csv` and `json` readers and most editors count.
"""

from __future__ import annotations

import re
import unicodedata

NORMALIZATION_FORM = "NFC"

# Characters str.splitlines() would break on but we treat as in-line whitespace.
_INLINE_SEPARATORS = re.compile("[\u0085\u2028\u2029\x0b\x0c\x1c\x1d\x1e]")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def normalize(text: str) -> str:
    """NFC-normalise and turn in-line separators into spaces. Idempotent."""
    text = _INLINE_SEPARATORS.sub(" ", text)
    return unicodedata.normalize(NORMALIZATION_FORM, text)


def split_lines(text: str) -> list[str]:
    """Split on CR LF, CR or LF. A final line break does not start an empty last line."""
    lines = _LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


# Characters that are invisible or reorder text: shown as ⟨U+XXXX⟩ wherever text is displayed as a
# label or in a log, so "abc\u202Efed" cannot pose as another string and ESC cannot drive a terminal.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064"
    "\u2066-\u206f\ufeff\ufff9-\ufffb]"
)


def visible(text: str, max_chars: int | None = None) -> str:
    """Text safe to show as a label or in a terminal: invisible and control characters marked.

    Tabs and newlines are shown as ⟨TAB⟩ / ⟨LF⟩ too: a label is one line. Optionally shortened.
    """
    if max_chars is not None and len(text) > max_chars:
        text = text[:max_chars] + f"… (+{len(text) - max_chars:,} chars)"

    def mark(match: re.Match[str]) -> str:
        char = match.group()
        return {"\t": "⟨TAB⟩", "\n": "⟨LF⟩", "\r": "⟨CR⟩"}.get(char, f"⟨U+{ord(char):04X}⟩")

    return _INVISIBLE.sub(mark, text.replace("\t", "⟨TAB⟩").replace("\n", "⟨LF⟩").replace("\r", "⟨CR⟩"))


_CHART_PUNCTUATION = frozenset(" _-.,:")


def chart_text(text: str, max_chars: int | None = None) -> str:
    """Untrusted text for a Plotly label (title, ticks, legend, hover): marked like `visible`,
    then every character but letters, digits, space and _-.,: as a numeric character reference.

    Plotly splits a label into its few tags first and decodes references only in the text
    between them, so "&#60;b&#62;" shows as "<b>" and never becomes a tag. Unlike html.escape's
    "&quot;" (which Plotly does not decode), numeric references all display right, and a
    figure's JSON holds no markup characters at all, only letters and references."""

    def safe(char: str) -> bool:
        return char.isalnum() if not char.isascii() else (char.isalnum() or char in _CHART_PUNCTUATION)

    return "".join(char if safe(char) else f"&#{ord(char)};" for char in visible(text, max_chars))
