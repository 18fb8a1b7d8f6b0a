"""The run store: schema, atomic files, concurrent writers and readers, path safety."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from pathlib import Path

import pytest

from textgen.core.errors import StoreError
from textgen.core.fsutil import atomic_path, atomic_write_text, safe_join
from textgen.store.database import SCHEMA_VERSION, RunStore, SampleRow, default_home


def test_store_uses_wal_and_records_schema_version(store: RunStore) -> None:
    connection = sqlite3.connect(store.home / "store.sqlite3")
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    connection.close()


def test_reopening_does_not_migrate_twice_and_keeps_data(home: Path) -> None:
    with RunStore(home) as first:
        run = first.create_run(label="a", kind="gru", config={"x": 1})
    with RunStore(home) as second:
        assert second.get_run(run.id).config == {"x": 1}
        assert second.schema_version == SCHEMA_VERSION


def test_newer_schema_is_refused_with_advice(home: Path) -> None:
    RunStore(home).close()
    connection = sqlite3.connect(home / "store.sqlite3")
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    connection.close()
    with pytest.raises(StoreError, match="newer than this version"):
        RunStore(home)


def test_default_home_follows_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TEXTGEN_HOME", str(tmp_path / "elsewhere"))
    assert default_home() == (tmp_path / "elsewhere").resolve()
    monkeypatch.delenv("TEXTGEN_HOME")
    checkout = Path(__file__).resolve().parent.parent
    assert default_home() == checkout / ".textgen"
    assert ".textgen/" in (checkout / ".gitignore").read_text()


def test_run_lifecycle_and_metrics(store: RunStore) -> None:
    run = store.create_run(label="my run", kind="transformer", config={"lr": 0.001})
    assert run.status == "queued" and store.run_dir(run.id).is_dir()
    assert store.transition_run(run.id, ["queued"], status="running", pid=123)
    assert not store.transition_run(run.id, ["queued"], status="running")  # lost the race
    store.log_metrics(run.id, 10, {"loss": 2.5, "accuracy": 0.1}, epoch=0.5)
    store.log_metrics(run.id, 20, {"loss": 1.5}, split="valid", epoch=1.0)
    rows = store.get_metrics([run.id])
    assert [(r.step, r.split, r.name) for r in rows] == [
        (10, "train", "loss"), (10, "train", "accuracy"), (20, "valid", "loss")
    ]
    newer = store.get_metrics([run.id], after_id=rows[1].id)
    assert [r.name for r in newer] == ["loss"] and newer[0].split == "valid"
    assert store.latest_metrics(run.id) == {"train/loss": 2.5, "train/accuracy": 0.1, "valid/loss": 1.5}
    store.add_samples(run.id, [SampleRow(run.id, 20, 1.0, 0, "src", "ref", "out", time.time())])
    assert store.get_samples(run.id)[0].output == "out"
    store.add_evaluation(run.id, split="test", decoding={"strategy": "greedy"}, metrics={"bleu": 1.0},
                         signature="BLEU|nrefs:1")
    assert store.get_evaluations(run.id)[0].metrics == {"bleu": 1.0}
    store.delete_run(run.id)
    assert not store.run_dir(run.id).exists()
    assert store.get_metrics([run.id]) == [] and store.get_samples(run.id) == []
    with pytest.raises(StoreError, match="no run"):
        store.get_run(run.id)


def test_labels_never_become_paths(store: RunStore) -> None:
    run = store.create_run(label="../../etc/passwd\n\u202eevil", kind="gru", config={})
    assert store.run_dir(run.id).parent == store.home / "runs"
    for bad in ["../x", "r-../../../../", "CON", "r-3f9a0c1b2d4e/..", ""]:
        with pytest.raises(StoreError):
            store.run_dir(bad)
    with pytest.raises(StoreError):
        safe_join(store.home, "..", "outside")


def test_atomic_write_replaces_whole_file_and_leaves_no_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "file.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_text("half of the new cont")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.json"]


def _writer(home: str, run_id: str, worker: int, count: int, errors) -> None:
    try:
        with RunStore(home) as store:
            for step in range(count):
                store.log_metrics(run_id, step, {f"loss_{worker}": float(step), "lr": 0.1})
    except Exception as error:  # reported to the parent, which asserts none happened
        errors.put(repr(error))


def _reader(home: str, run_id: str, stop, errors, reads) -> None:
    try:
        with RunStore(home) as store:
            last = 0
            seen = 0
            while not stop.is_set():
                rows = store.get_metrics([run_id], after_id=last)
                if rows:
                    assert rows[0].id > last and all(a.id < b.id for a, b in zip(rows, rows[1:]))
                    last = rows[-1].id
                    seen += len(rows)
                store.latest_metrics(run_id)
                store.list_runs()
            reads.put(seen)
    except Exception as error:
        errors.put(repr(error))


def test_two_writers_and_a_reader_never_see_database_is_locked(home: Path) -> None:
    with RunStore(home) as store:
        run_id = store.create_run(label="shared", kind="gru", config={}).id
    context = multiprocessing.get_context("spawn")  # TensorFlow is never imported here
    errors, reads, stop = context.Queue(), context.Queue(), context.Event()
    count = 1000
    writers = [context.Process(target=_writer, args=(str(home), run_id, w, count, errors)) for w in range(2)]
    reader = context.Process(target=_reader, args=(str(home), run_id, stop, errors, reads))
    reader.start()
    for process in writers:
        process.start()
    for process in writers:
        process.join(120)
    stop.set()
    reader.join(60)
    problems = []
    while not errors.empty():
        problems.append(errors.get())
    assert problems == []
    assert all(p.exitcode == 0 for p in [*writers, reader])
    with RunStore(home) as store:
        rows = store.get_metrics([run_id])
    assert len(rows) == 2 * count * 2
    assert reads.get(timeout=5) > 0


def test_a_run_being_deleted_is_left_out_of_listings_but_still_readable_by_id(store: RunStore) -> None:
    kept = store.create_run(label="kept", kind="gru", config={})
    going = store.create_run(label="going", kind="gru", config={})
    store.transition_run(going.id, ["queued"], status="running")
    store.update_run(going.id, deleting=1)
    assert [run.id for run in store.list_runs()] == [kept.id]
    assert [run.id for run in store.list_runs(statuses=["running"])] == []
    assert [run.id for run in store.list_runs(statuses=["running"], include_deleting=True)] == [going.id]
    assert [run.id for run in store.runs_being_deleted()] == [going.id]
    assert store.get_run(going.id).deleting is True  # its job still reads and ends it


def test_an_older_store_is_migrated_in_place_keeping_its_data(home: Path) -> None:
    from textgen.store.database import MIGRATIONS

    home.mkdir(parents=True)
    connection = sqlite3.connect(home / "store.sqlite3")
    connection.executescript(MIGRATIONS[0])
    connection.execute(
        "INSERT INTO runs (id, label, kind, config_json, status, created_at, updated_at)"
        " VALUES ('r-0123456789ab', 'old', 'gru', '{}', 'finished', 1, 1)"
    )
    connection.execute("PRAGMA user_version = 1")
    connection.commit()
    connection.close()
    with RunStore(home) as store:
        assert store.schema_version == SCHEMA_VERSION > 1
        run = store.get_run("r-0123456789ab")
        assert run.label == "old" and run.stop_requested is False and run.deleting is False
