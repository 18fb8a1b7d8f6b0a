"""Lines to examples, one parser per format: each bad line becomes a `Rejection` with its line
number and reason, and parsing goes on."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Sequence

from textgen.core.errors import CorpusError
from textgen.core.text import normalize
from textgen.data.config import CorpusConfig
from textgen.data.corpus.fields import choose_fields, known_pair
from textgen.data.corpus.formats import SEP_LINE, choose_delimiter, csv_records, delimiter_name, loads, parse_csv_record
from textgen.data.corpus.records import Example, Rejection, plural_s, too_long_reason


@dataclass
class Parsed:
    examples: list[Example]
    rejected: list[Rejection]
    notes: list[str]
    source_field: str | None = None
    target_field: str | None = None
    text: str | None = None
    header_line: int | None = None


_FIELD_BREAKS = re.compile(r"[\t\r\n]")


class _FieldCleaner:
    """normalize() a field; in pair corpora, tabs and line breaks inside a value become spaces."""

    def __init__(self) -> None:
        self.num_changed = 0

    def __call__(self, value: str) -> str:
        value = normalize(value)
        if "\t" in value or "\n" in value or "\r" in value:
            self.num_changed += 1
            value = _FIELD_BREAKS.sub(" ", value)
        return value.strip()

    def note(self) -> list[str]:
        if not self.num_changed:
            return []
        return [f"{self.num_changed:,} field{plural_s(self.num_changed)} contained tabs or line breaks; "
                "each became a space (pair fields are single lines)"]


def parse_text(lines: Sequence[str], config: CorpusConfig) -> Parsed:
    kept: list[str] = []
    examples: list[Example] = []
    rejected: list[Rejection] = []
    cap = config.max_line_chars
    for index, raw in enumerate(lines):
        if len(raw) > cap:
            rejected.append(Rejection(index + 1, too_long_reason(len(raw), cap)))
            continue
        line = normalize(raw)
        kept.append(line)
        if line.strip():
            examples.append(Example("", line, index + 1))
    notes = []
    if rejected:
        notes.append(f"{len(rejected):,} line{plural_s(len(rejected))} over max_line_chars={cap:,} left out of the text")
    return Parsed(examples, rejected, notes, text="\n".join(kept) + "\n" if kept else "")


def parse_tsv(lines: Sequence[str], config: CorpusConfig) -> Parsed:
    examples: list[Example] = []
    rejected: list[Rejection] = []
    notes: list[str] = []
    clean = _FieldCleaner()
    cap = config.max_line_chars
    header_line: int | None = None
    seen_data = False
    num_blank = 0
    for index, raw in enumerate(lines):
        number = index + 1
        if not raw.strip():
            num_blank += 1
            continue
        if len(raw) > cap:
            rejected.append(Rejection(number, too_long_reason(len(raw), cap)))
            continue
        parts = raw.split("\t")
        if len(parts) == 1:
            rejected.append(Rejection(number, "missing target: no tab on this line; TSV rows are source<TAB>target"))
            continue
        if len(parts) > 2:
            rejected.append(Rejection(
                number,
                f"extra tabs: {len(parts)} tab-separated fields, expected 2 (source<TAB>target); remove the extra "
                "tabs, or use CSV or JSONL for text that contains tabs",
            ))
            continue
        source, target = clean(parts[0]), clean(parts[1])
        if not seen_data and known_pair(source, target):
            header_line = number
            notes.append(f"line {number} read as a header ({source}, {target}) and skipped")
            seen_data = True
            continue
        seen_data = True
        if not source:
            rejected.append(Rejection(number, "empty source: nothing before the tab"))
        elif not target:
            rejected.append(Rejection(number, "empty target: nothing after the tab"))
        else:
            examples.append(Example(source, target, number))
    if num_blank:
        notes.append(f"{num_blank:,} blank line{plural_s(num_blank)} skipped")
    return Parsed(examples, rejected, notes + clean.note(), header_line=header_line)


def parse_csv(lines: Sequence[str], config: CorpusConfig) -> Parsed:
    notes: list[str] = []
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:  # whitespace-only files are refused before parsing; keep this total anyway
        return Parsed([], [], notes)
    header_index = first
    if SEP_LINE.fullmatch(lines[first].strip()):
        header_index = next((i for i in range(first + 1, len(lines)) if lines[i].strip()), None)
        if header_index is None:
            raise CorpusError(
                'no usable examples: the CSV file has only a "sep=" line. Add a header row and data rows.'
            )
    header = lines[header_index]
    if len(header) > config.max_line_chars:
        raise CorpusError(
            f"the CSV header (line {header_index + 1}) is {len(header):,} characters long, over max_line_chars="
            f"{config.max_line_chars:,}; is this really a CSV file? Set format to text or tsv if not."
        )
    delimiter = choose_delimiter(lines[first], header)
    fields, problem = parse_csv_record([header], delimiter)
    if fields is None:
        raise CorpusError(
            f"the CSV header (line {header_index + 1}) has broken quoting "
            f"({'an unmatched quote' if problem == 'open' else problem}); fix the header row."
        )
    names = [normalize(name).strip() for name in fields]
    if len(names) < 2:
        raise CorpusError(
            f"the CSV header (line {header_index + 1}) has only one column ({names[0]!r}); a pairs corpus needs a "
            "source and a target column. Add the second column, or set format to text for plain text."
        )
    source_name, target_name, how = choose_fields(names, config, "column")
    notes.append(f"line {header_index + 1} read as the CSV header ({delimiter_name(delimiter)}-separated): {how}")
    source_index, target_index = names.index(source_name), names.index(target_name)

    examples: list[Example] = []
    rejected: list[Rejection] = []
    clean = _FieldCleaner()
    expected = len(names)
    for index, row, reason in csv_records(lines, header_index + 1, delimiter, expected, config.max_line_chars):
        number = index + 1
        if row is None:
            rejected.append(Rejection(number, reason or "malformed record"))
            continue
        if len(row) != expected:
            rejected.append(Rejection(
                number,
                f"wrong field count: {len(row)} field{plural_s(len(row))}, expected {expected} (the header has {expected} "
                f"columns); quote fields that contain {delimiter_name(delimiter)}s",
            ))
            continue
        source, target = clean(row[source_index]), clean(row[target_index])
        if not source:
            rejected.append(Rejection(number, f"empty source: column {source_name!r} is empty"))
        elif not target:
            rejected.append(Rejection(number, f"empty target: column {target_name!r} is empty"))
        else:
            examples.append(Example(source, target, number))
    return Parsed(examples, rejected, notes + clean.note(), source_name, target_name,
                   header_line=header_index + 1)


def parse_jsonl(lines: Sequence[str], config: CorpusConfig) -> Parsed:
    """One JSON object a line; the source and target keys are chosen among the keys most objects
    have (`choose_fields`), and each object is read by them."""
    objects, rejected = _json_objects(lines, config.max_line_chars)
    if not objects:
        return Parsed([], sorted(rejected, key=lambda r: r.line), [])
    key_counts: dict[str, int] = {}
    for _, obj in objects:
        for key in obj:
            key_counts[key] = key_counts.get(key, 0) + 1
    common = [key for key, count in key_counts.items() if count * 2 >= len(objects)] or list(key_counts)
    source_key, target_key, how = choose_fields(common, config, "key", all_names=list(key_counts))
    examples: list[Example] = []
    clean = _FieldCleaner()
    for number, obj in objects:
        values, problem = _json_pair(obj, source_key, target_key, clean)
        if problem is None:
            examples.append(Example(values[0], values[1], number))
        else:
            rejected.append(Rejection(number, problem))
    rejected.sort(key=lambda r: r.line)
    return Parsed(examples, rejected, [f"JSON keys: {how}"] + clean.note(), source_key, target_key)


def _json_objects(lines: Sequence[str], cap: int) -> tuple[list[tuple[int, dict[str, Any]]], list[Rejection]]:
    """(line number, object) of each line that is one JSON object, and a rejection for each other
    non-blank line (too long, invalid JSON, not an object)."""
    rejected: list[Rejection] = []
    objects: list[tuple[int, dict[str, Any]]] = []
    for index, raw in enumerate(lines):
        number = index + 1
        if not raw.strip():
            continue
        if len(raw) > cap:
            rejected.append(Rejection(number, too_long_reason(len(raw), cap)))
            continue
        try:
            value = loads(raw)
        except json.JSONDecodeError as error:
            rejected.append(Rejection(
                number, f"invalid JSON: {error.msg} at column {error.colno}; each line must be one JSON object"
            ))
            continue
        except (ValueError, RecursionError):
            rejected.append(Rejection(
                number, "invalid JSON: too deeply nested or malformed; each line must be one JSON object"
            ))
            continue
        if not isinstance(value, dict):
            rejected.append(Rejection(number, f"not a JSON object: the line is {_json_kind(value)}; write "
                                              '{"source": ..., "target": ...}'))
            continue
        objects.append((number, value))
    return objects, rejected


def _json_pair(obj: dict[str, Any], source_key: str, target_key: str, clean) -> tuple[list[str], str | None]:
    """An object's cleaned (source, target) values, or the reason it cannot be an example."""
    values = []
    for role, key in (("source", source_key), ("target", target_key)):
        if key not in obj:
            shown = ", ".join(repr(k) for k in list(obj)[:10]) or "none"
            return values, f"missing key: no {key!r} key (this line has {shown})"
        value = obj[key]
        if not isinstance(value, str):
            return values, (f"non-string value: {key!r} is {_json_kind(value)}; {role} values must be strings "
                            "(numbers are read as their text; lists, objects, true/false and null are not)")
        values.append(clean(value))
    if not values[0]:
        return values, f"empty source: {source_key!r} is empty"
    if not values[1]:
        return values, f"empty target: {target_key!r} is empty"
    return values, None


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__
