"""The command line as a user runs it: `python -m textgen ...` in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_cli


from textgen.data.samples import catalog


def test_help_lists_the_commands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    listed = result.stdout.decode()
    for group in {command.split()[0] for command in COMMANDS} - {"worker"}:  # the job process's own command
        assert f"    {group} " in listed, group


def test_sample_without_name_lists_every_builtin_corpus() -> None:
    result = run_cli("corpus", "sample", "--json")
    assert result.returncode == 0
    listed = json.loads(result.stdout)
    assert [entry["name"] for entry in listed] == catalog.sample_names()


def test_sample_writes_tsv_for_pairs_and_txt_for_text(tmp_path: Path) -> None:
    pairs = tmp_path / "dates.tsv"
    assert run_cli("corpus", "sample", "dates", "--out", str(pairs), "--size", "40", "--seed", "3").returncode == 0
    assert pairs.read_bytes() == catalog.sample_bytes("dates", size=40, seed=3)
    assert len(pairs.read_text().splitlines()) == 40
    text = tmp_path / "tales.txt"
    assert run_cli("corpus", "sample", "tales", "--out", str(text), "--size", "3").returncode == 0
    assert text.read_bytes() == catalog.sample_bytes("tales", size=3)


def test_sample_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    out = tmp_path / "x.tsv"
    out.write_text("precious")
    result = run_cli("corpus", "sample", "numbers", "--out", str(out))
    assert result.returncode == 2 and b"--force" in result.stderr
    assert out.read_text() == "precious"
    assert run_cli("corpus", "sample", "numbers", "--out", str(out), "--force", "--size", "5").returncode == 0
    assert len(out.read_text().splitlines()) == 5


def test_inspect_json_has_the_documented_keys(tmp_path: Path) -> None:
    corpus = tmp_path / "c.tsv"
    good = "".join(f"source {i}\ttarget {i}\n" for i in range(30))
    corpus.write_text(good + "no tab here\n" + "a\tb\tc\n" + "source 0\ttarget 0\n")
    result = run_cli("corpus", "inspect", str(corpus), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for key in ("format", "num_examples", "num_rejected", "rejected", "num_duplicates",
                "source_length", "target_length", "vocabulary_size", "tokenizer"):
        assert key in report
    assert report["format"] == "tsv"
    assert report["num_examples"] == 31 and report["num_duplicates"] == 1
    assert [r["line"] for r in report["rejected"]] == [31, 32]
    assert report["tokenizer"]["source"]["oov_rate_valid"] >= 0


def test_inspect_human_report_mentions_rejections_and_warnings(tmp_path: Path) -> None:
    corpus = tmp_path / "c.tsv"
    corpus.write_text("".join("same\tsame\n" for _ in range(3)) + "".join(f"s{i}\tt{i}\n" for i in range(20)) + "bad\n")
    result = run_cli("corpus", "inspect", str(corpus))
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert "line 24:" in out and "warning:" in out


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", b"empty"),
        (b"   \n\t\n", b"no usable examples"),
        (b"caf\xe9\tx\n" * 20, b"byte offset 3"),
        (b"\x89PNG\r\n\x1a\n" + bytes(200), b"binary"),
        (b"\x1f\x8b\x08\x00" + bytes(100), b"compressed"),
        (b"one\ttwo\n" * 3, b"10"),  # fewer than MIN_EXAMPLES: the minimum is stated
    ],
)
def test_unusable_corpus_exits_2_with_one_line_and_no_traceback(tmp_path: Path, content: bytes, message: bytes) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(content)
    result = run_cli("corpus", "inspect", str(corpus))
    assert result.returncode == 2
    assert result.stdout == b""
    assert b"Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr


def test_missing_file_and_unknown_sample_exit_2(tmp_path: Path) -> None:
    for reference in (str(tmp_path / "nope.tsv"), "sample:nonexistent"):
        result = run_cli("corpus", "inspect", reference)
        assert result.returncode == 2 and b"Traceback" not in result.stderr
        assert b"dates" in result.stderr  # says which built-in corpora exist


def test_bad_setting_is_refused_with_the_valid_range(tmp_path: Path) -> None:
    result = run_cli("corpus", "inspect", "sample:reverse", "--set", "valid_fraction=0.9")
    assert result.returncode == 2 and b"between 0.0 and 0.5" in result.stderr
    result = run_cli("corpus", "inspect", "sample:reverse", "--set", "no_such_key=1")
    assert result.returncode == 2 and b"Valid keys" in result.stderr


def test_add_registers_once_and_lists(home: Path) -> None:
    first = run_cli("corpus", "add", "sample:reverse", "--json", home=home)
    assert first.returncode == 0, first.stderr
    again = run_cli("corpus", "add", "sample:reverse", "--json", home=home)
    assert json.loads(first.stdout)["corpus_id"] == json.loads(again.stdout)["corpus_id"]
    listed = json.loads(run_cli("corpus", "list", "--json", home=home).stdout)
    assert [c["origin"] for c in listed] == ["sample:reverse"]
    assert (home / "corpora" / listed[0]["id"] / "original.bin").read_bytes() == catalog.sample_bytes("reverse")


def test_runs_on_an_empty_store(home: Path) -> None:
    result = run_cli("runs", "--json", home=home)
    assert result.returncode == 0 and json.loads(result.stdout) == []


def test_train_plan_says_what_bfloat16_does_on_this_cpu_and_starts_nothing(home: Path) -> None:
    from textgen.core import hardware
    from textgen.store.database import RunStore

    result = run_cli("train", "--corpus", "sample:reverse", "--model", "gru", "--preset", "tiny", "--plan",
                     "--set", "matmul_precision=bfloat16", home=home)
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert "parameters" in out and "steps per epoch" in out
    assert f"matmul_precision: bfloat16. {hardware.bfloat16_note()}" in out
    assert ("faster than float32" if hardware.native_bfloat16() else "emulated") in out
    as_json = json.loads(run_cli("train", "--corpus", "sample:reverse", "--model", "gru", "--preset", "tiny",
                                 "--plan", "--json", home=home).stdout)
    assert as_json["matmul_precision"] == "float32" and as_json["parameters"] > 0
    assert as_json["matmul_precision_note"] == hardware.bfloat16_note()
    with RunStore(home) as store:
        assert store.list_runs() == []


COMMANDS = ("corpus sample", "corpus inspect", "corpus add", "corpus list", "train", "worker", "stop", "resume",
            "delete", "generate", "evaluate", "compare", "export", "import", "settings", "runs")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_and_is_listed(command: str, capsys) -> None:
    from textgen.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main([*command.split(), "--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: python -m textgen {command}")
