"""Hostile input: each test (or parametrized group) proves the behaviour stated in its docstring the way it reaches a user: through the registry the app's
"Save corpus" and the CLI's `corpus add` call, the CLI in a subprocess, or the page in AppTest.

"Rejected" always means: a CorpusError/ConfigError whose message says what was wrong and what to
do, and nothing left behind (no corpus row, no corpus folder, no run). The browser half (no
element injected, hostile upload names, marks and scripts as they render) is
tests/test_hostile_browser.py.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import lzma
import re
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from helpers import ROOT, copy_home, plain, run_cli
from textgen.core.errors import ConfigError, CorpusError
from textgen.data import registry
from textgen.data.config import CorpusConfig
from textgen.data.corpus.reading import read_corpus
from textgen.data.corpus.records import MIN_EXAMPLES
from textgen.data.corpus.report import build_report
from textgen.data.samples import catalog

CORPUS_PAGE = str(ROOT / "pages" / "1_Corpus.py")
TRAIN_PAGE = str(ROOT / "pages" / "2_Train.py")
HOSTILE = ("<script>window.__pwned=1</script>", "<img src=x onerror=window.__pwned=2>",
           "[x](javascript:window.__pwned=3)")
FORMULAS = ("=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", " =1+1", "\t=1", "＝1+1")


# -- helpers ----------------------------------------------------------------------------------


def tsv(count: int, start: int = 0, *, sep: str = "\n") -> str:
    return "".join(f"source sentence {i}\ttarget sentence {i}{sep}" for i in range(start, start + count))


def corpus_state(home: Path) -> tuple[list[str], list[str]]:
    """Registered corpus ids and the folders under corpora/ (both sorted)."""
    from textgen.store.database import RunStore

    with RunStore(home) as store:
        ids = sorted(c.id for c in store.list_corpora())
    folder = home / "corpora"
    return ids, sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def run_state(home: Path) -> tuple[list[str], list[str]]:
    from textgen.store.database import RunStore

    with RunStore(home) as store:
        ids = sorted(r.id for r in store.list_runs())
    folder = home / "runs"
    return ids, sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def assert_rejected(home: Path, data: bytes, *words: str, config: CorpusConfig = CorpusConfig()) -> str:
    """Register `data` as the app's Save and the CLI's `corpus add` do; it must raise CorpusError
    naming every one of `words`, and leave the store as it was. Returns the message."""
    from textgen.store.database import RunStore

    before = corpus_state(home)
    with RunStore(home) as store, pytest.raises(CorpusError) as caught:
        registry.register(store, data, config, origin="upload", label="upload.tsv")
    message = str(caught.value)
    for word in words:
        assert word in message, message
    assert corpus_state(home) == before, "a rejected corpus must leave nothing behind"
    return message


def assert_cli_refuses(result, *words: str) -> str:
    """Exit status 2, nothing on stdout, one line on stderr naming `words`, no traceback."""
    err = result.stderr.decode()
    assert result.returncode == 2, (result.returncode, err)
    assert result.stdout == b""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


def open_corpus_page():
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(CORPUS_PAGE, default_timeout=120).run()
    assert not app.exception, app.exception
    return app


def upload(app, name: str, data: bytes):
    app.file_uploader(key="corpus-upload").upload(name, data, "text/plain")
    app.run()
    assert not app.exception, app.exception
    return app


def click(app, key: str):
    app.button(key=key).click().run()
    assert not app.exception, app.exception
    return app


# -- 1-8: what a file holds --------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"   \n\t\n\r\n  ", b"\xef\xbb\xbf", b"source\ttarget\n",
                                  b"source,target\n\n\n", b"\xef\xbb\xbfinput\toutput\r\n"],
                         ids=["empty", "whitespace", "bom-only", "tsv-header", "csv-header", "bom-header"])
def test_empty_whitespace_or_header_only_is_rejected(home: Path, data: bytes) -> None:
    """Empty file, whitespace only, header only: rejected with "no usable examples" and what to
    upload instead; nothing is registered."""
    message = assert_rejected(home, data, "no usable examples")
    assert re.search(r"[Uu]pload|[Aa]dd|one example per line", message), message  # says what to do


def test_cli_refuses_an_empty_file_in_one_line(home: Path, tmp_path: Path) -> None:
    """The CLI's `corpus add` on an empty file: exit 2, one line "no usable examples", no corpus."""
    empty = tmp_path / "empty.tsv"
    empty.write_bytes(b"")
    assert_cli_refuses(run_cli("corpus", "add", str(empty), home=home), "no usable examples")
    assert corpus_state(home) == ([], [])


@pytest.mark.parametrize(("data", "kind"), [
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "PNG image"),
    (b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4, "ELF executable"),
    (tsv(20).encode()[:200] + b"\x00\x00\x00" + tsv(20).encode(), "NUL bytes"),
], ids=["png", "elf", "nul"])
def test_binary_content_under_a_text_name_is_rejected_by_content(home: Path, data: bytes, kind: str) -> None:
    """PNG, ELF or NUL bytes in a file named like text: rejected as binary by its content (the
    name is never looked at), not misreported as an encoding problem; nothing registered."""
    message = assert_rejected(home, data, "binary", kind)
    assert "iconv" not in message and "not valid UTF-8" not in message  # not an encoding error


def test_latin1_bytes_are_refused_with_offset_and_hint(home: Path) -> None:
    """Windows-1252 / Latin-1 bytes: refused with the byte offset, line, column, the byte and an
    iconv hint; never decoded with replacement characters."""
    good = tsv(12).encode()
    data = good + "café\tcoffee\n".encode("cp1252")
    message = assert_rejected(home, data, f"byte offset {len(good) + 3}", "line 13", "0xE9", "iconv")
    assert "\ufffd" not in message
    latin1_only = "".join(f"naïve {i}\tgarçon {i}\n" for i in range(20)).encode("latin-1")
    assert_rejected(home, latin1_only, "byte offset 2", "line 1, column 3", "0xEF", "Latin-1")


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16-le", "utf-16-be"])
def test_bom_files_are_accepted_without_the_bom_in_token_or_header(home: Path, encoding: str) -> None:
    """UTF-8 with BOM and UTF-16 LE/BE with BOM: accepted; the BOM is not in the first token of a
    TSV nor in the CSV header (the source column is still found by its name)."""
    from textgen.store.database import RunStore

    bom = {"utf-8-sig": b"", "utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}[encoding]
    with RunStore(home) as store:
        for text in (tsv(12), "source,target\n" + "".join(f"s{i},t{i}\n" for i in range(12))):
            record = registry.register(store, bom + text.encode(encoding), CorpusConfig(), origin="upload", label="b")
            loaded = registry.load_registered(store, record.id)
            first = loaded.corpus.examples[0]
            assert loaded.corpus.encoding == encoding
            assert first.source in ("source sentence 0", "s0") and "\ufeff" not in first.source
            if loaded.corpus.format == "csv":
                assert loaded.corpus.source_field == "source"


def test_one_line_rule_for_crlf_lf_cr_and_unicode_separators() -> None:
    """Mixed CRLF/LF/CR, no final newline, U+2028 and U+0085 inside lines: one splitting rule
    (CR LF, CR, LF); U+2028/U+0085 are spaces, not breaks; line numbers, num_lines, the report
    and the text corpus all count the same lines."""
    rows = [f"left\u2028side {i}\tright\u0085side {i}" for i in range(12)]
    endings = ["\r\n", "\n", "\r"]
    content = "".join(row + endings[i % 3] for i, row in enumerate(rows[:-1])) + rows[-1]  # no final newline
    pairs = read_corpus(content.encode())
    assert pairs.format == "tsv" and pairs.num_lines == 12
    assert [e.line for e in pairs.examples] == list(range(1, 13))
    assert pairs.examples[4].source == "left side 4" and pairs.examples[4].target == "right side 4"
    assert build_report(pairs).num_lines == 12
    text = read_corpus(content.encode(), CorpusConfig(format="text"))
    assert text.num_lines == 12 and len(text.examples) == 12
    assert text.text is not None and "\r" not in text.text and "\u2028" not in text.text
    assert text.text.count("\n") == 12


def test_tsv_bad_rows_are_reported_by_their_own_line_never_shifted() -> None:
    """TSV with a missing target column, ragged rows and extra tabs: each bad line reported with
    its physical line number and what to fix; good rows keep their own line numbers."""
    lines = tsv(12).splitlines()
    lines.insert(1, "only a source")            # line 2: missing target
    lines.insert(4, "a\tb\tc")                  # line 5: extra tab
    lines.insert(7, "x\t")                      # line 8: ragged, empty target
    lines.insert(9, "p\tq\tr\ts")               # line 10: extra tabs
    corpus = read_corpus(("\n".join(lines) + "\n").encode())
    reasons = {r.line: r.reason for r in corpus.rejected}
    assert sorted(reasons) == [2, 5, 8, 10]
    assert reasons[2].startswith("missing target") and reasons[5].startswith("extra tabs")
    assert reasons[8].startswith("empty target") and "4 tab-separated fields" in reasons[10]
    for example in corpus.examples:  # never shifted: each example is the row on its own line
        assert lines[example.line - 1].split("\t")[0] == example.source
    report = build_report(corpus).to_dict()
    assert any("4 lines rejected" in w and "see the rejected list" in w for w in report["warnings"])


def test_an_unmatched_csv_quote_rejects_its_line_only() -> None:
    """An unmatched quote in CSV: that line is reported; the rest of the file still loads (the
    quote does not swallow later rows)."""
    rows = ["source,target"] + [f"s{i},t{i}" for i in range(5)] + ['"never closed,t5']
    rows += [f"s{i},t{i}" for i in range(6, 40)]
    corpus = read_corpus(("\n".join(rows) + "\n").encode())
    assert corpus.format == "csv"
    assert [(r.line, r.category) for r in corpus.rejected] == [(7, "unmatched quote")]
    assert len(corpus.examples) == 39 and corpus.examples[-1].line == 41
    assert corpus.examples[5] == corpus.examples[5].__class__("s6", "t6", 8)


def test_jsonl_bad_lines_get_per_line_errors_and_a_summary() -> None:
    """JSONL with a bad line, wrong keys, nested or non-string values: one error per line with
    its number and a summary of the kinds in the report's warnings."""
    good = [json.dumps({"source": f"s{i}", "target": f"t{i}"}) for i in range(12)]
    bad = ['{"source": "s", "target": ', json.dumps({"src": "s", "tgt": "t"}),
           json.dumps({"source": {"nested": 1}, "target": "t"}), json.dumps({"source": "s", "target": [1]}),
           json.dumps({"source": "s", "target": None})]
    corpus = read_corpus("\n".join(good[:2] + bad + good[2:]).encode())
    got = {r.line: r.category for r in corpus.rejected}
    assert got == {3: "invalid JSON", 4: "missing key", 5: "non-string value", 6: "non-string value",
                   7: "non-string value"}
    warning = next(w for w in build_report(corpus).warnings if "rejected" in w)
    assert "5 lines rejected" in warning and "non-string value ×3 (first at line 5)" in warning
    assert "invalid JSON ×1 (first at line 3)" in warning


# -- 9-12: size, archives, names -----------------------------------------------------------------


def test_a_one_megabyte_line_is_capped_with_a_count_and_the_page_stays_fast(home: Path) -> None:
    """A single 1 MB line: rejected as "line too long" with its length and the limit (never
    quoted); as the whole file, "no usable examples"; displayed text is capped with a count of
    what was cut; the Corpus page checks such a file quickly and renders small tables."""
    from pages.ui import label

    huge = "x" * 1_000_000
    assert_rejected(home, huge.encode(), "no usable examples", "line too long")
    corpus = read_corpus((tsv(12) + huge + "\ty\n").encode())
    (rejection,) = corpus.rejected
    assert rejection.line == 13 and "1,000,002 characters" in rejection.reason
    assert "2,000-character limit" in rejection.reason and len(rejection.reason) < 300
    shown = label(huge, 200)
    assert len(shown) < 230 and shown.endswith("… (+999,800 chars)")

    app = upload(open_corpus_page(), "huge.tsv", (tsv(40) + huge + "\ty\n").encode())
    started = time.perf_counter()
    click(app, "corpus-check")
    assert time.perf_counter() - started < 30
    rejected, preview = app.dataframe[0].value, app.dataframe[-2].value
    assert list(rejected["line"]) == [41] and "1,000,002 characters" in rejected["reason"][0]
    cells = [str(v) for frame in (rejected, preview) for column in frame for v in frame[column]]
    assert max(len(c) for c in cells) < 300
    assert not any("xxxxxxxxxx" in t.value for t in app.text)


def test_an_upload_over_the_cap_is_refused_before_it_is_read(home: Path, tmp_path: Path) -> None:
    """An upload over the cap: Streamlit's server.maxUploadSize (50 MB, = CorpusConfig.max_bytes)
    refuses it in the server before the page runs; our own check compares the size first and
    never reads the bytes (no report, Save disabled); the CLI refuses a file over the cap from
    its size alone (a sparse 1 GB file costs no memory and no time)."""
    import tomllib

    from streamlit import config as st_config

    settings = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert settings["server"]["maxUploadSize"] == CorpusConfig().max_bytes // 2**20 == 50

    previous = st_config.get_option("server.maxUploadSize")
    st_config.set_option("server.maxUploadSize", 1)
    try:
        app = upload(open_corpus_page(), "big.tsv", b"a b c\td e f\n" * 100_000)  # 1.2 MB
    finally:
        st_config.set_option("server.maxUploadSize", previous)
    assert any("over the 1 MB cap" in plain(e.value) for e in app.error)
    assert app.button(key="corpus-save").disabled and app.button(key="corpus-check").disabled
    assert not [s for s in app.subheader if s.value == "Report"]
    ids, folders = corpus_state(home)
    assert ids == folders and len(ids) == 1  # the built-in default only

    sparse = tmp_path / "huge.tsv"
    with open(sparse, "wb") as handle:
        handle.truncate(2**30)
    started = time.perf_counter()
    err = assert_cli_refuses(run_cli("corpus", "add", str(sparse), home=home), "over the 50 MB cap")
    assert "1024.0 MB" in err and time.perf_counter() - started < 30


@pytest.mark.parametrize(("name", "data"), [
    ("gzip", gzip.compress(tsv(50).encode())),
    ("bzip2", bz2.compress(tsv(50).encode())),
    ("xz", lzma.compress(tsv(50).encode())),
    ("zip", None),
    ("tar", None),
])
def test_compressed_and_archive_files_are_rejected(home: Path, name: str, data: bytes | None) -> None:
    """gzip, bzip2, xz, zip and tar content (whatever the file is called): rejected as a
    compressed or archive file with "decompress it" as the fix; never unpacked, nothing saved."""
    if name == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("data.tsv", tsv(50))  # a zip bomb would be refused just the same
        data = buffer.getvalue()
    elif name == "tar":
        buffer, payload = io.BytesIO(), tsv(50).encode()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            info = tarfile.TarInfo("data.tsv")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
        data = buffer.getvalue()
    assert_rejected(home, data, f"{name} compressed or archive file", "decompress")


HOSTILE_NAMES = ["../../x.tsv", "CON", "n" * 300 + ".tsv", "two\nlines.tsv", "evil\u202egpj.tsv",
                 "/etc/passwd", "..\\..\\win.tsv"]


def test_hostile_upload_names_are_escaped_labels_never_paths(home: Path, tmp_path: Path) -> None:
    """Upload names like ../../x, CON, 300 characters, a newline or U+202E: saved as a shortened,
    escaped label (marks for newline and bidi, a count for what was cut); every folder is named by
    the corpus id; nothing is written outside TEXTGEN_HOME. The CLI's --label is a label too."""
    from pages.ui import label

    outside_before = sorted(p for p in tmp_path.rglob("*") if home not in p.parents and p != home)
    app = open_corpus_page()
    for seed, name in enumerate(HOSTILE_NAMES):
        app = upload(app, name, catalog.sample_bytes("reverse", size=20, seed=seed))
        shown = [t.value for t in app.text if t.value.startswith("File: ")]
        assert len(shown) == 1 and shown[0].startswith(f"File: {label(name)} (")
        assert "\n" not in shown[0] and "\u202e" not in shown[0]
        click(app, "corpus-save")
        assert app.success, [e.value for e in app.error]
    from textgen.store.database import RunStore

    with RunStore(home) as store:
        uploads = [c for c in store.list_corpora() if c.origin == "upload"]
    assert sorted(c.label for c in uploads) == sorted(label(n) for n in HOSTILE_NAMES)
    assert any(c.label.endswith("… (+224 chars)") for c in uploads)
    assert {"two⟨LF⟩lines.tsv", "evil⟨U+202E⟩gpj.tsv"} <= {c.label for c in uploads}
    ids, folders = corpus_state(home)
    assert ids == folders and all(re.fullmatch(r"c-[0-9a-f]{12}", f) for f in folders)
    every = [p.name for p in home.rglob("*")]
    assert not [n for n in every if n in ("x.tsv", "CON", "passwd") or "lines" in n or "gpj" in n]
    outside_after = sorted(p for p in tmp_path.rglob("*") if home not in p.parents and p != home)
    assert outside_after == outside_before

    corpus = tmp_path / "ok.tsv"
    corpus.write_bytes(catalog.sample_bytes("reverse", size=20, seed=99))
    result = run_cli("corpus", "add", str(corpus), "--label", "../../etc/x\u202e\x1b[31m", "--json", home=home)
    assert result.returncode == 0, result.stderr
    listed = run_cli("corpus", "list", home=home).stdout.decode()
    assert "../../etc/x⟨U+202E⟩⟨U+001B⟩[31m" in listed and "\x1b" not in listed and "\u202e" not in listed
    assert not (home.parent.parent / "etc").exists() and corpus_state(home)[0] == corpus_state(home)[1]


# -- 13-17: small, repetitive and odd text ----------------------------------------------------------


def test_one_pair_is_refused_with_the_minimum_stated(home: Path, tmp_path: Path) -> None:
    """One pair only: refused at upload and by `train` with the minimum stated; no corpus and no
    run are created."""
    one = tmp_path / "one.tsv"
    one.write_text("hello\tworld\n", encoding="utf-8")
    assert_rejected(home, one.read_bytes(), "only 1 usable example", f"At least {MIN_EXAMPLES}")
    err = assert_cli_refuses(run_cli("train", "--corpus", str(one), "--model", "gru", "--preset", "tiny",
                                     home=home), f"At least {MIN_EXAMPLES}")
    assert "only 1 usable example" in err
    assert corpus_state(home) == ([], []) and run_state(home) == ([], [])


def test_duplicates_copies_and_constant_targets_are_warned_with_a_dedupe_option(
        home: Path, tmp_path: Path) -> None:
    """Duplicates, source equal to target, all targets identical: each warned (with the
    deduplicate option named); `--set deduplicate=true` registers the corpus without repeats."""
    path = tmp_path / "dupes.tsv"
    rows = [f"question {i}\tyes" for i in range(20)] + ["question 0\tyes"] * 5 + ["yes\tyes"]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = run_cli("corpus", "inspect", str(path), "--json", home=home)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    warnings = " ".join(report["warnings"])
    assert report["num_duplicates"] == 5 and report["num_source_equals_target"] == 1
    assert "repeat an earlier one" in warnings and "deduplicate" in warnings
    assert "identical to the source" in warnings and "targets are the same text ('yes')" in warnings
    added = run_cli("corpus", "add", str(path), "--set", "deduplicate=true", "--json", home=home)
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["num_examples"] == 21


def test_composed_decomposed_and_full_width_are_normalised_the_same_everywhere() -> None:
    """Composed vs decomposed accents are one string (NFC) in the corpus, the tokenizer and the
    scores; full-width forms are kept as written (NFC, not NFKC) the same way in all three."""
    from textgen.data.config import TokenizerConfig
    from textgen.data.tokenizers import train_tokenizer
    from textgen.scoring.metrics import score

    composed, decomposed, wide = "café", "cafe\u0301", "ＡＢＣ１２"
    corpus = read_corpus("".join(f"{decomposed} {wide} {i}\t{composed} {i}\n" for i in range(12)).encode())
    example = corpus.examples[0]
    assert example.source.split()[0] == composed and example.source.split()[1] == wide
    for kind in ("char", "word", "bpe"):
        tokenizer = train_tokenizer([e.source for e in corpus.examples], TokenizerConfig(kind=kind, vocab_size=300))
        assert tokenizer.encode(decomposed) == tokenizer.encode(composed)
        assert tokenizer.decode(tokenizer.encode(f"{decomposed} {wide}")).replace(" ", "") == f"{composed}{wide}"
    decomposed_hyp = score([f"{decomposed} {wide}"], [f"{composed} {wide}"], bootstrap_samples=1)
    composed_hyp = score([f"{composed} {wide}"], [f"{composed} {wide}"], bootstrap_samples=1)
    assert decomposed_hyp.hypotheses == composed_hyp.hypotheses == [f"{composed} {wide}"]
    assert decomposed_hyp.metrics["chrf"].value == composed_hyp.metrics["chrf"].value == pytest.approx(100.0)
    assert decomposed_hyp.metrics["ter"].value == composed_hyp.metrics["ter"].value == 0.0
    assert score([wide], ["ABC12"], bootstrap_samples=1).metrics["chrf"].value < 50  # not folded to ASCII


SPOOFS = {"zero-width": "gru\u200b demo", "bidi override": "\u202eomed urg", "ANSI": "\x1b[2J\x1b[31mred"}


def test_invisible_bidi_and_ansi_are_marked_in_previews_logs_and_labels(demo_home: Path) -> None:
    """Zero-width and bidi-override characters and ANSI escapes: counted in the corpus report's
    warnings, marked ⟨U+XXXX⟩ in the Corpus page's preview, in the CLI's output (logs) and in run
    labels everywhere, so a label cannot pose as another run's and ESC never reaches a terminal."""
    from textgen.runs import manage
    from textgen.store.database import RunStore

    content = "".join(f"{SPOOFS[k]} {i}\tplain {i}\n" for i, k in enumerate(list(SPOOFS) * 5))
    app = upload(open_corpus_page(), "spoof.tsv", content.encode())
    click(app, "corpus-check")
    warnings = " ".join(plain(w.value) for w in app.warning)
    assert "zero-width" in warnings and "bidi control" in warnings and "ANSI escape" in warnings
    sources = list(app.dataframe[-2].value["source"])
    assert sources[:3] == ["gru⟨U+200B⟩ demo 0", "⟨U+202E⟩omed urg 1", "⟨U+001B⟩[2J⟨U+001B⟩[31mred 2"]
    assert not any(ch in "".join(sources) for ch in "\u200b\u202e\x1b")

    with RunStore(demo_home) as store:
        runs = store.list_runs()
        for run, text in zip(runs, SPOOFS.values()):
            manage.rename_run(store, run.id, text)
    listed = run_cli("runs", home=demo_home).stdout.decode()
    assert "gru⟨U+200B⟩ demo" in listed and "⟨U+202E⟩omed urg" in listed and "⟨U+001B⟩[2J" in listed
    assert not any(ch in listed for ch in "\u200b\u202e\x1b")
    from streamlit.testing.v1 import AppTest

    runs_page = AppTest.from_file(str(ROOT / "pages" / "3_Runs.py"), default_timeout=120)
    runs_page.query_params["runs"] = ",".join(r.id for r in runs)
    runs_page.run()
    assert not runs_page.exception, runs_page.exception
    options = " ".join(runs_page.multiselect[0].options) + " ".join(t.value for t in runs_page.text)
    assert "gru⟨U+200B⟩ demo" in options and "⟨U+202E⟩omed urg" in options
    assert not any(ch in options for ch in "\u200b\u202e\x1b")


def test_emoji_cjk_rtl_and_combining_marks_run_and_label_attention() -> None:
    """Emoji, CJK, right-to-left and combining marks: read, tokenised, decoded and shown as
    attention-map labels without a crash; labels keep the characters (numeric references only)."""
    import keras

    from pages.ui import heatmaps
    from textgen.analysis.attention_views import from_generation
    from textgen.data.config import TokenizerConfig
    from textgen.data.tokenizers import train_tokenizer
    from textgen.decoding import DecodingConfig, generate
    from textgen.models import build_model, preset_config

    lines = ["😀 👍🏽 family 👨‍👩‍👧", "中文 日本語 한국어", "שלום עולם", "مرحبا بالعالم", "e\u0301 n\u0303 a\u0308\u0332"]
    corpus = read_corpus("".join(f"{lines[i % 5]} {i}\t{lines[(i + 2) % 5]} {i}\n" for i in range(15)).encode())
    assert len(corpus.examples) == 15 and not corpus.rejected
    build_report(corpus)
    source = train_tokenizer([e.source for e in corpus.examples], TokenizerConfig(kind="char", vocab_size=200))
    target = train_tokenizer([e.target for e in corpus.examples], TokenizerConfig(kind="char", vocab_size=200))
    keras.utils.set_random_seed(3)
    model = build_model(preset_config("transformer", "tiny", source.vocab_size, target.vocab_size,
                                      max_source_length=40, max_target_length=12))
    generations = generate(model, source, target, lines, DecodingConfig(max_length=8))
    for text, generation in zip(lines, generations):
        assert generation.source_tokens == source.token_labels(source.encode(text))
        assert "<unk>" not in generation.source_tokens and len(generation.tokens) >= 1
        views = from_generation(generation)
        figure = heatmaps.attention_heatmap(views.map("cross_attention", -1, None))
        ticks = list(figure.data[0].x)
        assert len(ticks) == len(generation.source_tokens)
        assert not any("<" in t or ">" in t for t in ticks)
    cjk = heatmaps.axis_labels(generations[1].source_tokens)
    assert cjk[0].endswith("中") and any("&#128512;" in t for t in heatmaps.axis_labels(generations[0].source_tokens))
    assert any("ש" in t for t in heatmaps.axis_labels(generations[2].source_tokens))


# -- 18-21: markup, spreadsheets, vocabulary, length ----------------------------------------------


def test_markup_in_corpus_and_generated_text_is_only_ever_text(home: Path) -> None:
    """<script>, <img onerror=...> and [x](javascript:...) in a corpus: kept verbatim as data,
    shown through text-only elements (preview dataframe, st.text), Markdown messages with every
    punctuation escaped, and chart labels with markup as numeric references; token diffs mark
    changes with [-…-]{+…+} as plain text. tests/test_hostile_browser.py proves the DOM."""
    from pages.ui import chart_label, message
    from textgen.analysis.comparison import render_diff, token_diff

    content = "".join(f"{HOSTILE[i % 3]} {i}\t{HOSTILE[(i + 1) % 3]} {i}\n" for i in range(30))
    app = upload(open_corpus_page(), "<img src=x onerror=alert(1)>.tsv", content.encode())
    click(app, "corpus-check")
    preview = app.dataframe[-2].value
    assert preview["source"][0] == f"{HOSTILE[0]} 0" and preview["target"][0] == f"{HOSTILE[1]} 0"
    assert not app.markdown or not any("<img" in m.value or "<script" in m.value for m in app.markdown)
    assert [t.value for t in app.text if t.value.startswith("File: ")][0].startswith("File: <img src=x")

    for hostile in HOSTILE:
        charted = chart_label(hostile, None)
        assert not any(c in charted for c in "<>()[]=\"'") and ("&#60;" in charted or "&#91;" in charted)
        escaped = message(hostile)
        assert plain(escaped) == hostile and all(f"\\{c}" in escaped for c in "<>[]()" if c in hostile)
    diff = render_diff(token_diff(HOSTILE[0].split(), HOSTILE[2].split()))
    assert diff == f"[-{HOSTILE[0]}-]{{+{HOSTILE[2]}+}}"


def test_exported_csv_cells_that_look_like_formulas_are_neutralised(demo_home: Path) -> None:
    """Every CSV export (Evaluate's leaderboard and per-sentence downloads, the Runs page's
    metrics CSV, tables.export_csv) prefixes cells starting with = + - @ (also after spaces,
    tab, and full-width forms) with an apostrophe; numbers stay numbers."""
    from textgen.analysis import leaderboard
    from textgen.core import tables
    from textgen.runs import manage
    from textgen.scoring.metrics import score
    from textgen.store.database import RunStore

    def cells(text: str) -> list[str]:
        return [cell for row in csv.reader(io.StringIO(text)) for cell in row]

    def assert_inert(text: str, expected: set[str]) -> None:
        found = cells(text)
        for formula in expected:
            assert "'" + formula in found, (formula, found[:40])
            assert formula not in found
        dangerous = [c for c in found if c.lstrip(" \u00a0\u3000")[:1] in ("=", "+", "@", "\t", "＝", "＋", "＠")
                     or (c.startswith("-") and not re.fullmatch(r"-[0-9.e+-]+", c))]
        assert not dangerous, dangerous

    with RunStore(demo_home) as store:
        runs = store.list_runs()
        for run, formula in zip(runs, FORMULAS):
            manage.rename_run(store, run.id, formula)
        runs = store.list_runs()
        board = leaderboard.to_csv(leaderboard.leaderboard_rows(store, runs))
        assert_inert(board, {r.label for r in runs})
        store.log_metrics(runs[0].id, 999, {"=cmd|' /C calc'!A0": 1.0, "loss": -1.5}, split="train")
        metrics = manage.metrics_csv(store, [runs[0].id])
        assert_inert(metrics, {"=cmd|' /C calc'!A0"})
        assert "-1.5" in cells(metrics)  # a number, not neutralised
        examples = {r.id: leaderboard.load_examples(store, leaderboard.latest_per_run(store, [r.id], "test")[r.id])
                    for r in runs}
        sentences = leaderboard.to_csv(leaderboard.example_rows(examples))
        assert_inert(sentences, set())
    result = score(list(FORMULAS), list(FORMULAS), sources=list(FORMULAS), bootstrap_samples=1)
    buffer = io.StringIO()
    tables.export_csv(result, buffer)
    assert_inert(buffer.getvalue(), set(FORMULAS))


def _hex_corpus(path: Path, pairs: int = 3000) -> Path:
    import random

    rng = random.Random(5)
    row = lambda: " ".join(f"{rng.getrandbits(48):012x}" for _ in range(10))  # noqa: E731
    path.write_text("".join(f"{row()}\t{row()}\n" for _ in range(pairs)), encoding="utf-8")
    return path


def test_a_vocabulary_explosion_is_capped_estimated_and_refused_over_budget(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Random hex tokens: the report warns of a vocabulary explosion; the tokenizer is capped at
    vocab_size; the plan's training memory is estimated (and shown on the Train page); a
    vocabulary that puts a run over the memory budget is refused by `train`, the API and the
    Train page before any run exists, saying what to lower."""
    from streamlit.testing.v1 import AppTest

    from textgen.store.database import RunStore
    from textgen.training import estimates, planning

    monkeypatch.setenv(estimates.MEMORY_BUDGET_ENV, "1536")
    path = _hex_corpus(tmp_path / "hex.tsv")
    with RunStore(home) as store:
        record = registry.register_reference(store, str(path))
        report = registry.saved_report(store, record.id)
        assert any(w.startswith("vocabulary explosion: 60,000 distinct words") for w in report["warnings"])
        plan = planning.plan_run(store, record.id, "gru", preset="tiny")
        assert plan.source_tokenizer.vocab_size == plan.target_tokenizer.vocab_size == 8000  # the cap
        estimate = estimates.estimate_memory(plan.config.model, plan.config.train)
        assert estimate.logits_bytes == 3 * 4 * 64 * 128 * 8000 and not estimate.over_budget
        with pytest.raises(ConfigError, match=r"over the 1\.5 GB budget.*output logits.*Lower vocab_size"):
            planning.plan_run(store, record.id, "gru", preset="tiny", settings={"vocab_size": "1000000"})
    assert run_state(home) == ([], [])

    err = assert_cli_refuses(run_cli("train", "--corpus", record.id, "--model", "gru", "--preset", "tiny",
                                     "--set", "vocab_size=1000000", home=home), "budget", "vocab_size")
    assert "24,004" in err and run_state(home) == ([], [])

    page = AppTest.from_file(TRAIN_PAGE, default_timeout=120)
    for key, value in {"corpus": record.id, "model": "gru", "preset": "tiny"}.items():
        page.query_params[key] = value
    page.run()
    assert not page.exception, page.exception
    assert any(c.value.startswith("Estimated training memory ") and "budget is 1.5 GB" in c.value
               for c in page.caption)
    page.number_input(key="train-tokenizer-vocab_size").set_value(1_000_000).run()
    assert any("over the 1.5 GB budget" in plain(e.value) for e in page.error)
    assert page.button(key="train-start").disabled and run_state(home) == ([], [])


def test_long_sequences_are_truncated_with_a_count_and_decoding_ends(
        trained_home: Path, tmp_path: Path) -> None:
    """Sequences over the maximum length are truncated with a count (before training, the plan
    counts them exactly as the data pipeline cuts them; at generation, the input tokens dropped);
    a model that never emits </s> stops at the length cap, and at the time limit when the cap
    is far away, within that limit."""
    import dataclasses

    import keras
    import numpy as np

    from textgen.analysis import comparison
    from textgen.data import pipeline
    from textgen.decoding import DecodingConfig, generate
    from textgen.models import build_model
    from textgen.store.database import RunStore
    from textgen.training import artifacts, estimates, planning

    home = copy_home(trained_home, tmp_path / "home")
    rows = [(f"s{i} " + "long " * (i % 4 * 5), f"t{i} " + "word " * (i % 3 * 6)) for i in range(60)]
    (tmp_path / "long.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in rows), encoding="utf-8")
    with RunStore(home) as store:
        plan = planning.plan_run(store, str(tmp_path / "long.tsv"), "gru", preset="tiny",
                                 settings={"max_source_length": "8", "max_target_length": "8"})
        overflow = estimates.length_overflow(store, plan)
        train = registry.run_examples(store, plan.config.corpus_id)["train"]
        encoded = pipeline.encode_pairs([e.source for e in train], [e.target for e in train], plan.source_tokenizer,
                                    plan.target_tokenizer, max_source_length=8, max_target_length=8)
        assert (overflow.sources_truncated, overflow.targets_truncated) == (
            encoded.num_source_truncated, encoded.num_target_truncated)
        assert 0 < overflow.sources_truncated < len(train) and 0 < overflow.targets_truncated < len(train)
        assert f"{overflow.sources_truncated:,} of {len(train):,} training sources" in overflow.summary
        assert "will be truncated" in overflow.summary
        run = next(r for r in store.list_runs() if r.kind == "gru")
        trained = artifacts.load_trained(store.run_dir(run.id))

    model = trained.model
    vocab = trained.config.model.target_vocab_size
    (bias,) = [w for w in model.weights if "output_projection" in w.path and tuple(w.shape) == (vocab,)]
    bias.assign(np.where(np.arange(vocab) == 3, -1e9, bias.numpy()).astype("float32"))  # </s> never wins

    long_input = "the third of March, 2021 " * 12  # 300 characters, over max_source_length
    [capped] = comparison.generate_outputs(trained, [long_input], DecodingConfig(max_length=7))
    assert capped.stop_reason == "max_length" and not capped.finished and len(capped.tokens) == 7
    assert capped.source_truncated == len(long_input) - trained.config.model.max_source_length
    assert "stopped at the length cap after 7 tokens" in capped.note and "input truncated" in capped.note

    # The same never-ending output layer on a GRU whose cap is 100,000 tokens: the time limit ends it.
    keras.utils.set_random_seed(1)
    far = build_model(dataclasses.replace(trained.config.model, max_target_length=100_000))
    far.set_weights(model.get_weights())
    for strategy in ("greedy", "beam"):
        started = time.perf_counter()
        [slow] = generate(far, trained.source_tokenizer, trained.target_tokenizer, ["3 March 2021"],
                          DecodingConfig(strategy=strategy, beam_width=2, max_length=100_000, time_limit_seconds=1.5))
        elapsed = time.perf_counter() - started
        assert slow.stop_reason == "time_limit" and not slow.finished, slow.stop_reason
        assert 1.4 < elapsed < 6 and 0 < len(slow.tokens) < 100_000
