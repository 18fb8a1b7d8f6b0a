"""Which format a text is (text, TSV, CSV, JSONL), detected from its content, and the CSV dialect."""

from __future__ import annotations

import csv
import json
import re
from typing import Any, Iterable, Sequence

from textgen.data.corpus.records import CSV_MAX_RECORD_LINES, too_long_reason

_DETECTION_SAMPLE_LINES = 2000


def detect_format(lines: Sequence[str], max_line_chars: int) -> tuple[str, str]:
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


def loads(line: str) -> Any:
    """json.loads as this module reads JSONL: numbers (and NaN/Infinity) kept as their literal text,
    control characters inside strings tolerated (they are reported as suspicious instead)."""
    return json.loads(line, parse_int=str, parse_float=str, parse_constant=str, strict=False)


def _is_json_object(line: str) -> bool:
    stripped = line.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return False  # cheap pre-check: prose never gets to json.loads
    try:
        return isinstance(loads(stripped), dict)
    except (ValueError, RecursionError):
        return False


# A column name: starts with a letter or "_", then letters, digits, spaces and ()/#- (no sentence
# punctuation), at most 3 words. Prose lines with commas rarely pass.
_HEADER_NAME = re.compile(r"[^\W\d][\w ()/#-]{0,63}")


SEP_LINE = re.compile(r"sep=(.)")


def _sniff_csv(sample: Sequence[str]) -> str | None:
    """A reason string if the sample looks like CSV with a header, else None."""
    start = 1 if SEP_LINE.fullmatch(sample[0].strip()) else 0
    if start >= len(sample):
        return None
    header = sample[start]
    delimiter = choose_delimiter(sample[0], header)
    names = _csv_fields(header, delimiter)
    if names is None or len(names) < 2:
        return None
    names = [n.strip() for n in names]
    if not all(_HEADER_NAME.fullmatch(n) and len(n.split()) <= 3 for n in names):
        return None
    if len({n.lower() for n in names}) != len(names):
        return None
    records = list(csv_records(sample, start + 1, delimiter, len(names), max_line_chars=None))
    if not records:
        return f"the first line is a CSV header ({', '.join(names)}) with no rows below it"
    matching = sum(1 for _, fields, _ in records if fields is not None and len(fields) == len(names))
    if matching >= 0.8 * len(records):
        return (f"the first line is a header of {len(names)} names and {matching:,} of {len(records):,} "
                f"sampled records have {len(names)} {delimiter_name(delimiter)}-separated fields")
    return None


def choose_delimiter(first_line: str, header: str) -> str:
    match = SEP_LINE.fullmatch(first_line.strip())
    if match:
        return match.group(1)
    commas = _csv_fields(header, ",") or []
    semicolons = _csv_fields(header, ";") or []
    return ";" if len(semicolons) > len(commas) else ","


def delimiter_name(delimiter: str) -> str:
    return {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}.get(delimiter, repr(delimiter))


def _csv_fields(line: str, delimiter: str) -> list[str] | None:
    """Fields of a one-line CSV record; None if its quoting is broken."""
    fields, _problem = parse_csv_record([line], delimiter)
    return fields


def parse_csv_record(lines: Sequence[str], delimiter: str) -> tuple[list[str] | None, str | None]:
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


def csv_records(
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
            yield index, None, too_long_reason(len(line), max_line_chars)
            index += 1
            continue
        end = index + 1
        fields, problem = parse_csv_record([line], delimiter)
        while problem == "open" and end < total and end - index < CSV_MAX_RECORD_LINES:
            if max_line_chars is not None and len(lines[end]) > max_line_chars:
                break
            end += 1
            fields, problem = parse_csv_record(lines[index:end], delimiter)
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
