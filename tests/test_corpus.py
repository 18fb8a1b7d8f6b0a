"""Corpus ingestion: formats, encodings, binary refusal, per-line rejections, splits and the report.

Every test feeds bytes the way an upload arrives (there is no file name: detection is by content).
"""

from __future__ import annotations

import ast
import gzip
import io
import json
import tarfile
import unicodedata
import zipfile
from pathlib import Path

import pytest

from helpers import ROOT
from textgen.core.errors import CorpusError
from textgen.data.config import CorpusConfig
from textgen.data.corpus import reading
from textgen.data.corpus.reading import read_corpus, read_corpus_file
from textgen.data.corpus.records import MAX_REPORTED_REJECTIONS, MIN_EXAMPLES, Corpus, Example, Split
from textgen.data.corpus.report import build_report
from textgen.data.corpus.split import deduplicate, split_corpus, texts_for_split

# ---------------------------------------------------------------------------------------------
# helpers


def tsv_rows(count: int, start: int = 0) -> str:
    return "".join(f"source sentence {i}\ttarget sentence {i}\n" for i in range(start, start + count))


def read(text: str | bytes, **config: object) -> Corpus:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return read_corpus(data, CorpusConfig(**config))  # type: ignore[arg-type]


def rejected_lines(corpus: Corpus) -> dict[int, str]:
    return {r.line: r.reason for r in corpus.rejected}


def error_of(text: str | bytes, **config: object) -> str:
    with pytest.raises(CorpusError) as caught:
        read(text, **config)
    return str(caught.value)


# ---------------------------------------------------------------------------------------------
# formats


def test_text_corpus_keeps_blank_lines_in_text_but_not_as_examples() -> None:
    lines = [f"Line number {i} of the poem." for i in range(12)]
    document = "\n".join(lines[:3]) + "\n\n   \n" + "\n".join(lines[3:]) + "\n"
    corpus = read(document)
    assert corpus.format == "text" and not corpus.is_pairs
    assert [e.target for e in corpus.examples] == lines
    assert all(e.source == "" for e in corpus.examples)
    assert [e.line for e in corpus.examples[2:4]] == [3, 6]  # lines 4 and 5 are blank
    assert corpus.text == document
    assert corpus.rejected == ()
    assert corpus.num_lines == 14


def test_text_corpus_keeps_indentation() -> None:
    corpus = read("".join(f"    indented {i}\n" for i in range(12)))
    assert corpus.examples[0].target == "    indented 0"


def test_tsv_corpus_and_known_header_row() -> None:
    corpus = read("source\ttarget\n" + tsv_rows(12))
    assert corpus.format == "tsv" and corpus.is_pairs
    assert len(corpus.examples) == 12
    assert corpus.examples[0] == Example("source sentence 0", "target sentence 0", 2)
    assert any("header" in note for note in corpus.notes)
    assert corpus.text is None and corpus.source_field is None


def test_tsv_fields_are_stripped() -> None:
    corpus = read("".join(f"  hello {i} \t world {i}  \n" for i in range(12)))
    assert corpus.examples[0].source == "hello 0" and corpus.examples[0].target == "world 0"


def test_csv_with_obvious_column_names_among_others() -> None:
    rows = "".join(f'{i},"What is {i}, really?",It is {i}.,note\n' for i in range(12))
    corpus = read("id,question,answer,comment\n" + rows)
    assert corpus.format == "csv"
    assert (corpus.source_field, corpus.target_field) == ("question", "answer")
    assert corpus.examples[0] == Example("What is 0, really?", "It is 0.", 2)


def test_csv_two_unnamed_columns_are_source_then_target() -> None:
    corpus = read("en,fr\n" + "".join(f"hello {i},bonjour {i}\n" for i in range(12)))
    assert (corpus.source_field, corpus.target_field) == ("en", "fr")
    assert corpus.examples[3].target == "bonjour 3"


def test_csv_language_code_columns_next_to_an_id() -> None:
    corpus = read("id,de,en\n" + "".join(f"{i},hallo {i},hello {i}\n" for i in range(12)))
    assert (corpus.source_field, corpus.target_field) == ("de", "en")


def test_csv_named_columns_from_config() -> None:
    rows = "".join(f"{i},a{i},b{i},c{i}\n" for i in range(12))
    corpus = read("n,alpha,beta,gamma\n" + rows, source_field="gamma", target_field="alpha")
    assert (corpus.examples[0].source, corpus.examples[0].target) == ("c0", "a0")


def test_csv_semicolon_delimiter() -> None:
    corpus = read("source;target\n" + "".join(f"a {i}, still a;b {i}\n" for i in range(12)))
    assert corpus.format == "csv" and corpus.examples[0].source == "a 0, still a"


def test_csv_ambiguous_columns_say_how_to_name_them() -> None:
    message = error_of("alpha,beta,gamma\n" + "".join(f"a{i},b{i},c{i}\n" for i in range(12)))
    assert "'alpha', 'beta', 'gamma'" in message
    assert "source_field" in message and "target_field" in message


def test_csv_missing_configured_column_lists_the_columns() -> None:
    message = error_of("source,target\n" + "".join(f"a{i},b{i}\n" for i in range(12)), target_field="answer")
    assert "target_field='answer'" in message and "'source', 'target'" in message


def test_jsonl_with_default_keys_and_numbers_as_text() -> None:
    lines = [json.dumps({"prompt": f"count to {i}", "completion": i, "meta": {"x": 1}}) for i in range(12)]
    corpus = read("\n".join(lines))
    assert corpus.format == "jsonl"
    assert (corpus.source_field, corpus.target_field) == ("prompt", "completion")
    assert corpus.examples[5] == Example("count to 5", "5", 6)


def test_jsonl_with_named_keys() -> None:
    lines = [json.dumps({"a": f"x{i}", "b": f"y{i}", "c": f"z{i}"}) for i in range(12)]
    corpus = read("\n".join(lines), source_field="c", target_field="a")
    assert (corpus.examples[0].source, corpus.examples[0].target) == ("z0", "x0")
    message = error_of("\n".join(lines), source_field="question", target_field="a")
    assert "source_field='question'" in message and "'a', 'b', 'c'" in message


def test_jsonl_values_with_line_breaks_and_tabs_become_single_lines() -> None:
    lines = [json.dumps({"source": f"a\tb\nc {i}", "target": f"t{i}"}) for i in range(12)]
    corpus = read("\n".join(lines))
    assert corpus.examples[0].source == "a b c 0"
    assert any("tabs or line breaks" in note for note in corpus.notes)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (tsv_rows(12), "tsv"),
        ("src,tgt\n" + "".join(f"a{i},b{i}\n" for i in range(12)), "csv"),
        ("".join(json.dumps({"source": f"a{i}", "target": "b"}) + "\n" for i in range(12)), "jsonl"),
        # Prose with commas is not CSV; indented code with leading tabs is not TSV.
        ("".join(f"Well, this is line {i}, and it has commas, many.\n" for i in range(12)), "text"),
        ("".join(f"\tindented code line {i}\n" for i in range(12)), "text"),
        ("".join('{"not closed": \n' for _ in range(12)), "text"),
    ],
)
def test_format_is_detected_from_content(content: str, expected: str) -> None:
    assert read(content).format == expected


def test_configured_format_overrides_detection() -> None:
    content = "source,target\n" + "".join(f"a{i},b{i}\n" for i in range(12))
    corpus = read(content, format="text")
    assert corpus.format == "text" and corpus.examples[0].target == "source,target"


def test_forcing_tsv_on_a_text_file_reports_no_usable_examples() -> None:
    message = error_of("".join(f"just text {i}\n" for i in range(12)), format="tsv")
    assert "no usable examples" in message and "missing target ×12" in message and "line 1" in message


# ---------------------------------------------------------------------------------------------
# encodings and binary files


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_byte_order_marks_are_detected_and_removed(encoding: str) -> None:
    bom = {"utf-8-sig": b"", "utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff",
           "utf-32-le": b"\xff\xfe\x00\x00", "utf-32-be": b"\x00\x00\xfe\xff"}[encoding]
    for content, first_field in ((tsv_rows(12), "source sentence 0"),
                                 ("source,target\n" + "".join(f"s{i},t{i}\n" for i in range(12)), "s0")):
        corpus = read(bom + content.encode(encoding))
        assert corpus.encoding == encoding
        assert corpus.examples[0].source == first_field  # no U+FEFF glued to the first token
        assert not any("\ufeff" in e.source for e in corpus.examples)
        if corpus.format == "csv":
            assert corpus.source_field == "source"  # no BOM in the header either


def test_cp1252_bytes_are_refused_with_offset_line_and_hint() -> None:
    data = tsv_rows(12).encode() + b"caf\xe9\tcoffee\n"
    message = error_of(data)
    offset = len(tsv_rows(12).encode()) + 3
    assert f"byte offset {offset}" in message
    assert "line 13" in message and "column 4" in message
    assert "0xE9" in message and "Windows-1252" in message and "iconv" in message


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "PNG"),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 64, "ELF"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
        (b"hello\tworld\n\x00\x01\x02 more\n", "NUL bytes"),
        (gzip.compress(tsv_rows(20).encode()), "compressed or archive"),
        (b"\x01\x02\x03\x04\x05\x06hello\x07\x08\x0e\x0f\x10" * 20, "control characters"),
    ],
)
def test_binary_files_are_refused_by_content(data: bytes, words: str) -> None:
    message = error_of(data)
    assert words in message
    assert "iconv" not in message  # not misreported as an encoding problem


def test_zip_and_tar_archives_are_refused_with_a_decompress_hint() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data.tsv", tsv_rows(20))
    message = error_of(buffer.getvalue())
    assert "compressed or archive file" in message and "decompress" in message and "xlsx" in message

    buffer = io.BytesIO()
    payload = tsv_rows(20).encode()
    with tarfile.open(fileobj=buffer, mode="w") as archive:  # plain tar: only the "ustar" magic at 257
        info = tarfile.TarInfo("data.tsv")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    assert "tar compressed or archive file" in error_of(buffer.getvalue())


def test_utf16_without_bom_gets_a_specific_hint() -> None:
    message = error_of(tsv_rows(12).encode("utf-16-le"))
    assert "UTF-16" in message and "byte-order mark" in message


@pytest.mark.parametrize("data", [b"", b"   \n\t\n\r\n", b"\xef\xbb\xbf", "source,target\n".encode(),
                                  "source,target\n\n\n".encode()])
def test_empty_whitespace_and_header_only_files_have_no_usable_examples(data: bytes) -> None:
    assert "no usable examples" in error_of(data)


def test_fewer_than_min_examples_is_an_error_that_states_the_minimum() -> None:
    message = error_of(tsv_rows(MIN_EXAMPLES - 1) + "no tab here\n")
    assert f"only {MIN_EXAMPLES - 1} usable examples" in message
    assert f"At least {MIN_EXAMPLES}" in message
    assert "1 line rejected" in message
    assert len(read(tsv_rows(MIN_EXAMPLES)).examples) == MIN_EXAMPLES


def test_over_max_bytes_is_refused_with_size_and_cap() -> None:
    data = tsv_rows(100).encode()
    message = error_of(data, max_bytes=1000)
    assert f"{len(data):,} bytes" in message and "max_bytes=1,000" in message


def test_read_corpus_file_checks_the_size_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "huge.tsv"
    with open(path, "wb") as handle:
        handle.truncate(2 * 4096)  # sparse: no data written
    opened: list[object] = []
    monkeypatch.setattr(reading, "open", lambda *a, **k: opened.append(a) or 1 / 0, raising=False)
    with pytest.raises(CorpusError, match="max_bytes=4,096"):
        read_corpus_file(path, CorpusConfig(max_bytes=4096))
    assert opened == []
    monkeypatch.undo()

    good = tmp_path / "good.tsv"
    good.write_bytes(tsv_rows(12).encode())
    assert len(read_corpus_file(good).examples) == 12
    with pytest.raises(CorpusError, match="no corpus file"):
        read_corpus_file(tmp_path / "missing.tsv")


# ---------------------------------------------------------------------------------------------
# lines and normalisation


def test_mixed_line_endings_without_final_newline_give_physical_line_numbers() -> None:
    rows = [f"s{i}\tt{i}" for i in range(12)]
    endings = ["\r\n", "\n", "\r"]
    content = "".join(row + endings[i % 3] for i, row in enumerate(rows[:5]))
    content += "bad line\r\n" + "\r".join(rows[5:])  # no final newline
    corpus = read(content)
    assert [e.line for e in corpus.examples] == [1, 2, 3, 4, 5] + list(range(7, 14))
    assert rejected_lines(corpus).keys() == {6}
    assert corpus.examples[-1].target == "t11"
    text = read(content, format="text")
    assert text.num_lines == 13 and "\r" not in (text.text or "")


def test_unicode_line_separators_do_not_split_a_line() -> None:
    content = "".join(f"left\u2028side {i}\tright\u0085side {i}\n" for i in range(12))
    corpus = read(content)
    assert len(corpus.examples) == 12 and corpus.examples[1].line == 2
    assert corpus.examples[0] == Example("left side 0", "right side 0", 1)
    text = read("".join(f"one\u2028line {i}\n" for i in range(12)))
    assert text.examples[11] == Example("", "one line 11", 12)


def test_composed_and_decomposed_accents_become_the_same_string() -> None:
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    assert composed != decomposed
    corpus = read("".join(f"{composed} {i}\t{decomposed} {i}\n" for i in range(12)))
    example = corpus.examples[0]
    assert example.source.split()[0] == example.target.split()[0] == composed
    assert unicodedata.is_normalized("NFC", example.target)


# ---------------------------------------------------------------------------------------------
# per-line rejections


def test_tsv_rejections_report_physical_line_numbers_after_earlier_bad_lines() -> None:
    lines = tsv_rows(12).splitlines()
    lines.insert(2, "no tab at all")          # line 3
    lines.insert(3, "")                        # line 4, blank: skipped, not rejected
    lines.insert(5, "a\tb\tc")                 # line 6
    lines.insert(7, "\tempty source")          # line 8
    lines.insert(9, "empty target\t  ")        # line 10
    lines.insert(10, "x\ty\tz\tw")             # line 11
    corpus = read("\n".join(lines) + "\n")
    reasons = rejected_lines(corpus)
    assert sorted(reasons) == [3, 6, 8, 10, 11]
    assert reasons[3].startswith("missing target")
    assert reasons[6].startswith("extra tabs") and "3 tab-separated fields" in reasons[6]
    assert reasons[11].startswith("extra tabs") and "4 tab-separated fields" in reasons[11]
    assert reasons[8].startswith("empty source") and reasons[10].startswith("empty target")
    assert len(corpus.examples) == 12
    by_source = {e.source: e.line for e in corpus.examples}
    assert by_source["source sentence 11"] == 18  # 12 good rows, 5 bad lines and 1 blank line before it
    assert [lines[e.line - 1].split("\t")[0] for e in corpus.examples] == [e.source for e in corpus.examples]


def test_csv_unmatched_quote_rejects_its_line_and_later_rows_still_load() -> None:
    rows = ["source,target"] + [f"s{i},t{i}" for i in range(6)]
    rows.append('"unclosed quote,t6')                    # line 8
    rows += [f"s{i},t{i}" for i in range(7, 12)]        # lines 9-13
    rows.append('s12,"t12')                              # line 14: open until the end of the file
    rows.append("s13,t13")                               # line 15
    corpus = read("\n".join(rows) + "\n")
    reasons = rejected_lines(corpus)
    assert sorted(reasons) == [8, 14]
    assert all(reason.startswith("unmatched quote") for reason in reasons.values())
    assert [e.source for e in corpus.examples] == [f"s{i}" for i in range(12) if i != 6] + ["s13"]
    assert corpus.examples[-1].line == 15


def test_csv_quoted_fields_may_span_lines_and_contain_commas_and_quotes() -> None:
    rows = "source,target\n" + "".join(f"s{i},t{i}\n" for i in range(10))
    rows += '"multi\nline, source","say ""hi"""\n' + "last,row\n"
    corpus = read(rows)
    assert corpus.rejected == ()
    assert corpus.examples[10] == Example("multi line, source", 'say "hi"', 12)
    assert corpus.examples[11].line == 14


def test_csv_wrong_field_counts_and_malformed_quoting_are_rejected() -> None:
    rows = "source,target\n" + "".join(f"s{i},t{i}\n" for i in range(12))
    rows += "only one field\n" + "a,b,c\n" + '"closed"junk,x\n' + ",empty source\n"
    corpus = read(rows)
    reasons = rejected_lines(corpus)
    assert reasons[14].startswith("wrong field count: 1 field,")
    assert reasons[15].startswith("wrong field count: 3 fields")
    assert reasons[16].startswith("malformed quoting")
    assert reasons[17].startswith("empty source")
    assert len(corpus.examples) == 12


def test_jsonl_bad_lines_are_each_reported_with_a_reason() -> None:
    good = [json.dumps({"source": f"s{i}", "target": f"t{i}"}) for i in range(12)]
    bad = [
        '{"source": "s", "target": ',                     # invalid JSON
        '["source", "target"]',                           # not an object
        json.dumps({"source": "s", "answer": "t"}),        # missing key
        json.dumps({"source": ["s"], "target": "t"}),      # nested list
        json.dumps({"source": "s", "target": {"t": 1}}),   # nested object
        json.dumps({"source": "s", "target": None}),       # null
        json.dumps({"source": True, "target": "t"}),       # boolean
        json.dumps({"source": "  ", "target": "t"}),       # empty after stripping
    ]
    corpus = read("\n".join(good[:3] + bad + good[3:]))
    reasons = rejected_lines(corpus)
    assert sorted(reasons) == list(range(4, 12))
    categories = [reasons[line].split(":")[0] for line in range(4, 12)]
    assert categories == ["invalid JSON", "not a JSON object", "missing key", "non-string value",
                          "non-string value", "non-string value", "non-string value", "empty source"]
    assert "'target'" in reasons[6] and "a list" in reasons[7] and "null" in reasons[9]
    assert [e.line for e in corpus.examples] == [1, 2, 3] + list(range(12, 21))
    report = build_report(corpus).to_dict()
    assert report["num_rejected"] == 8 and report["rejection_reasons"]["non-string value"] == 4


def test_a_one_megabyte_line_is_rejected_and_kept_out_of_the_report() -> None:
    huge = "x" * 1_000_000
    cases = ((tsv_rows(6) + huge + "\tt\n" + tsv_rows(6, 6), 7, "1,000,002"),
             ("".join(f"line {i}\n" for i in range(12)) + huge, 13, "1,000,000"))
    for content, line, length in cases:
        corpus = read(content)
        (rejection,) = corpus.rejected
        assert rejection.line == line
        assert rejection.reason.startswith("line too long") and length in rejection.reason
        assert "2,000-character limit" in rejection.reason
        assert len(corpus.examples) == 12
        assert huge not in (corpus.text or "")
        dumped = json.dumps(build_report(corpus, split_corpus(corpus)).to_dict())
        assert len(dumped) < 20_000 and "xxxxxxxxxx" not in dumped
        assert len(repr(corpus)) < 2_000


def test_many_rejected_lines_are_not_fatal_and_the_report_list_is_capped() -> None:
    content = tsv_rows(20) + "no tab\n" * (MAX_REPORTED_REJECTIONS + 50)
    assert read(content).format == "text"  # mostly lines without tabs: not detected as TSV
    corpus = read(content, format="tsv")
    report = build_report(corpus).to_dict()
    assert report["num_examples"] == 20
    assert report["num_rejected"] == MAX_REPORTED_REJECTIONS + 50
    assert len(report["rejected"]) == MAX_REPORTED_REJECTIONS
    assert report["rejected"][0] == {"line": 21, "reason": corpus.rejected[0].reason}
    assert any("rejected" in warning for warning in report["warnings"])


# ---------------------------------------------------------------------------------------------
# duplicates, report, splits


def test_duplicates_same_pairs_and_identical_targets_give_warnings() -> None:
    content = "".join(f"question {i}\tyes\n" for i in range(12)) + "question 0\tyes\n" + "echo\techo\n"
    corpus = read(content)
    report = build_report(corpus).to_dict()
    assert report["num_duplicates"] == 1
    assert report["num_source_equals_target"] == 1
    assert report["num_distinct_targets"] == 2
    warnings = " ".join(report["warnings"])
    assert "repeat an earlier one" in warnings and "identical to the source" in warnings

    same = build_report(read("".join(f"q{i}\tsame answer\n" for i in range(12)))).to_dict()
    assert any("targets are the same text ('same answer')" in w for w in same["warnings"])

    unique = deduplicate(corpus)
    assert len(unique.examples) == len(corpus.examples) - 1
    assert [e.line for e in unique.examples] == list(range(1, 13)) + [14]  # the first copy is kept
    assert build_report(unique).to_dict()["num_duplicates"] == 0
    assert unique.sha256 == corpus.sha256 and deduplicate(unique) is unique


def test_deduplicate_removes_repeated_lines_from_a_text_corpus() -> None:
    document = "".join(f"verse {i}\nchorus\n\n" for i in range(6))
    corpus = read(document)
    unique = deduplicate(corpus)
    assert [e.target for e in unique.examples] == ["verse 0", "chorus"] + [f"verse {i}" for i in range(1, 6)]
    assert unique.text == "verse 0\nchorus\n\n" + "".join(f"verse {i}\n\n" for i in range(1, 6))


def test_report_to_dict_has_the_documented_keys_and_is_json() -> None:
    content = "".join(f"word{i} and more words here\tshort {i}\n" for i in range(30))
    content += "a b c d e f g h i j\tone\n" + "one\ta b c d e f g h i j k l m n o p\n"
    content += "zero\u200bwidth\tbidi\u202eoverride\n" + "ansi \x1b[31mred\tcontrol\x07bell\n"
    corpus = read(content)
    split = split_corpus(corpus, CorpusConfig())
    report = build_report(corpus, split).to_dict()
    text = json.dumps(report)
    assert json.loads(text) == report
    for key in ("format", "encoding", "sha256", "num_bytes", "num_lines", "num_examples", "num_rejected",
                "rejected", "rejection_reasons", "num_duplicates", "num_source_equals_target",
                "num_distinct_targets", "source_length", "target_length", "length_ratio_outliers",
                "vocabulary_size", "split", "warnings", "suspicious_characters"):
        assert key in report, key
    words = report["source_length"]["words"]
    assert words["min"] == 1 and words["max"] == 10
    assert sum(words["histogram"]["counts"]) == 34
    assert len(words["histogram"]["edges"]) == len(words["histogram"]["counts"]) + 1
    assert report["length_ratio_outliers"]["lines"] == [31, 32]
    assert set(report["vocabulary_size"]) == {"source", "target", "combined"}
    suspicious = report["suspicious_characters"]
    assert suspicious["zero-width"] == {"count": 1, "first_line": 33}
    assert suspicious["bidi control"]["count"] == 1 and suspicious["ANSI escape"]["count"] == 1
    assert suspicious["control character"]["count"] == 1
    assert any("suspicious characters" in w for w in report["warnings"])
    assert report["split"]["train"] + report["split"]["valid"] + report["split"]["test"] == 34
    assert report["sha256"] == corpus.sha256 and report["num_bytes"] == len(content.encode())


def test_text_report_counts_characters_words_and_lines() -> None:
    document = "".join(f"the cat {i}\n" for i in range(12)) + "\n"
    report = build_report(read(document)).to_dict()
    assert report["num_lines"] == 13
    assert report["num_characters"] == len(document)
    assert report["num_words"] == 36
    assert report["num_distinct_characters"] == len(set(document))
    assert report["source_length"] is None and report["length_ratio_outliers"] is None


def test_split_is_deterministic_disjoint_and_sized_from_the_fractions() -> None:
    corpus = read(tsv_rows(100))
    config = CorpusConfig(valid_fraction=0.1, test_fraction=0.2, split_seed=7)
    split = split_corpus(corpus, config)
    assert split == split_corpus(corpus, config)
    assert split.sizes == {"train": 70, "valid": 10, "test": 20}
    parts = [set(split.train), set(split.valid), set(split.test)]
    assert set().union(*parts) == set(range(100)) and sum(map(len, parts)) == 100
    assert split.train == tuple(sorted(split.train))
    assert split_corpus(corpus, CorpusConfig(split_seed=8)).test != split_corpus(corpus, CorpusConfig(split_seed=9)).test
    assert Split.from_dict(json.loads(json.dumps(split.to_dict()))) == split


def test_split_keeps_at_least_one_example_per_part_and_zero_when_asked() -> None:
    corpus = read(tsv_rows(MIN_EXAMPLES))
    split = split_corpus(corpus, CorpusConfig(valid_fraction=0.01, test_fraction=0.01))
    assert split.sizes == {"train": MIN_EXAMPLES - 2, "valid": 1, "test": 1}
    assert split_corpus(corpus, CorpusConfig(valid_fraction=0.0, test_fraction=0.1)).valid == ()


def test_split_keeps_identical_sources_in_one_part() -> None:
    content = "".join(f"source {i // 3}\ttarget {i}\n" for i in range(90))  # each source three times
    corpus = read(content)
    split = split_corpus(corpus, CorpusConfig(valid_fraction=0.1, test_fraction=0.1))
    report = build_report(corpus, split).to_dict()["split"]
    assert report["valid_sources_in_train"] == 0 and report["test_sources_in_train"] == 0
    assert split.sizes == {"train": 72, "valid": 9, "test": 9}


def test_leaky_stored_split_is_reported() -> None:
    corpus = read("".join(f"same source\ttarget {i}\n" for i in range(12)))
    split = Split(train=tuple(range(10)), valid=(10,), test=(11,), seed=0)
    report = build_report(corpus, split).to_dict()
    assert report["split"]["test_sources_in_train"] == 1
    assert any("test sources also appear in train" in w for w in report["warnings"])


def test_text_split_uses_contiguous_blocks() -> None:
    corpus = read("".join(f"line {i}\n\n" for i in range(20)))
    split = split_corpus(corpus, CorpusConfig(valid_fraction=0.1, test_fraction=0.2))
    assert split.train == tuple(range(14)) and split.valid == (14, 15) and split.test == (16, 17, 18, 19)
    texts = texts_for_split(corpus, split)
    assert texts["valid"] == "line 14\n\nline 15\n\n"
    assert texts["train"] + texts["valid"] + texts["test"] == corpus.text


def test_bad_stored_splits_are_refused() -> None:
    corpus = read(tsv_rows(12))
    with pytest.raises(CorpusError, match="two parts"):
        Split.from_dict({"train": [0, 1], "valid": [1], "test": [2], "seed": 0})
    with pytest.raises(CorpusError, match="lacks"):
        Split.from_dict({"train": [0]})
    with pytest.raises(CorpusError, match="another version"):
        build_report(corpus, Split(train=(0,), valid=(1,), test=(99,), seed=0))
    with pytest.raises(CorpusError, match=str(MIN_EXAMPLES)):
        split_corpus(Corpus("tsv", tuple(corpus.examples[:5]), (), "utf-8", None, None, "", 0, None, ()),
                     CorpusConfig())


def test_the_corpus_package_does_not_import_tensorflow_or_streamlit() -> None:
    package = ROOT / "textgen" / "data" / "corpus"
    for path in sorted(package.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module}
        assert not imported & {"tensorflow", "keras", "streamlit", "pandas"}, path.name


def test_split_falls_back_to_single_examples_when_one_source_dominates() -> None:
    corpus = read("".join(f"same source\ttarget {i}\n" for i in range(20)))
    split = split_corpus(corpus, CorpusConfig(valid_fraction=0.1, test_fraction=0.1))
    assert split.sizes == {"train": 16, "valid": 2, "test": 2}
    assert build_report(corpus, split).to_dict()["split"]["test_sources_in_train"] == 2
