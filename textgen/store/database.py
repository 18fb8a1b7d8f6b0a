"""The run store: SQLite (WAL) for runs, metrics, samples and evaluations, plus a folder per run.

Layout under TEXTGEN_HOME (default: `.textgen/` in the checkout, ignored by git)::

    store.sqlite3            runs, corpora, metrics, samples, evaluations (schema in MIGRATIONS)
    corpora/<corpus_id>/     original.bin (the uploaded bytes, unchanged), report.json
    runs/<run_id>/           checkpoints, tokenizers, TensorBoard events

Concurrency: every connection sets `busy_timeout`, writes run in short `BEGIN IMMEDIATE`
transactions (so two writers queue on the lock instead of failing half-way through a deferred
transaction), and readers never block writers in WAL mode. Training processes, the Streamlit
server and the CLI each open their own `RunStore`; a `RunStore` is cheap and must not be shared
across threads (sqlite3 connections are per thread).

Names are labels only. Folders are built from ids this module generates and checked to stay under
TEXTGEN_HOME, so no user-supplied string ever becomes a path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import secrets
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from textgen.core.errors import StoreError
from textgen.core.fsutil import safe_join

HOME_ENV = "TEXTGEN_HOME"
DATABASE_NAME = "store.sqlite3"
BUSY_TIMEOUT_MS = 30_000
RUN_STATUSES = ("queued", "running", "stopped", "finished", "failed", "crashed")
ACTIVE_STATUSES = ("queued", "running")

_ID_PATTERN = re.compile(r"^[a-z]-[0-9a-f]{12}$")

# Each entry upgrades the schema by one version; `PRAGMA user_version` records how many have run.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE corpora (
        id TEXT PRIMARY KEY,
        label TEXT NOT NULL,
        origin TEXT NOT NULL,            -- "upload", "file", or "sample:NAME"
        sha256 TEXT NOT NULL,            -- of the original bytes
        format TEXT NOT NULL,
        num_examples INTEGER NOT NULL,
        config_json TEXT NOT NULL,       -- CorpusConfig used to read and split it
        split_json TEXT NOT NULL,        -- {"train": [...], "valid": [...], "test": [...], "seed": n}
        created_at REAL NOT NULL
    );
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        label TEXT NOT NULL,
        kind TEXT NOT NULL,              -- model kind, e.g. "transformer"
        corpus_id TEXT REFERENCES corpora(id) ON DELETE SET NULL,
        config_json TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at REAL NOT NULL,
        started_at REAL,
        updated_at REAL NOT NULL,
        finished_at REAL,
        pid INTEGER,
        pid_started TEXT,                -- process start time, so a reused pid is not mistaken for ours
        error TEXT
    );
    CREATE INDEX runs_by_status ON runs(status);
    CREATE TABLE metrics (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        step INTEGER NOT NULL,
        epoch REAL,
        split TEXT NOT NULL,             -- "train", "valid", "test"
        name TEXT NOT NULL,              -- "loss", "perplexity", "bleu", ...
        value REAL NOT NULL,
        time REAL NOT NULL
    );
    CREATE INDEX metrics_by_run ON metrics(run_id, id);
    CREATE TABLE samples (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        step INTEGER NOT NULL,
        epoch REAL,
        example_index INTEGER NOT NULL,  -- index into the corpus's validation split
        source TEXT NOT NULL,
        reference TEXT NOT NULL,
        output TEXT NOT NULL,
        time REAL NOT NULL
    );
    CREATE INDEX samples_by_run ON samples(run_id, step);
    CREATE TABLE evaluations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        created_at REAL NOT NULL,
        split TEXT NOT NULL,
        decoding_json TEXT NOT NULL,
        metrics_json TEXT NOT NULL,
        signature TEXT NOT NULL
    );
    CREATE INDEX evaluations_by_run ON evaluations(run_id);
    """,
    # 2: a stop request the training process polls (set by `textgen stop`, the app, or delete).
    """
    ALTER TABLE runs ADD COLUMN stop_requested INTEGER NOT NULL DEFAULT 0;
    """,
    # 3: a run being deleted: hidden from listings at once, removed once its job has ended.
    """
    ALTER TABLE runs ADD COLUMN deleting INTEGER NOT NULL DEFAULT 0;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def default_home() -> Path:
    """TEXTGEN_HOME if set, else `.textgen/` in the checkout (git ignores it)."""
    configured = os.environ.get(HOME_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    return (Path(__file__).resolve().parents[2] / ".textgen").resolve()


def new_id(prefix: str) -> str:
    """An opaque id such as `r-3f9a0c1b2d4e`: never derived from a user-supplied name."""
    return f"{prefix}-{secrets.token_hex(6)}"


def check_id(value: str, what: str = "id") -> str:
    if not isinstance(value, str) or not _ID_PATTERN.match(value):
        raise StoreError(f"{what} {value!r} is not a valid id (expected e.g. r-3f9a0c1b2d4e).")
    return value


@dataclasses.dataclass(frozen=True)
class CorpusRecord:
    id: str
    label: str
    origin: str
    sha256: str
    format: str
    num_examples: int
    config: dict[str, Any]
    split: dict[str, Any]
    created_at: float


@dataclasses.dataclass(frozen=True)
class RunRecord:
    id: str
    label: str
    kind: str
    corpus_id: str | None
    config: dict[str, Any]
    status: str
    created_at: float
    started_at: float | None
    updated_at: float
    finished_at: float | None
    pid: int | None
    pid_started: str | None
    error: str | None
    stop_requested: bool = False
    deleting: bool = False  # being deleted: list_runs hides it; removed once its job has ended


@dataclasses.dataclass(frozen=True)
class MetricRow:
    id: int
    run_id: str
    step: int
    epoch: float | None
    split: str
    name: str
    value: float
    time: float


@dataclasses.dataclass(frozen=True)
class SampleRow:
    run_id: str
    step: int
    epoch: float | None
    example_index: int
    source: str
    reference: str
    output: str
    time: float


@dataclasses.dataclass(frozen=True)
class EvaluationRecord:
    id: int
    run_id: str
    created_at: float
    split: str
    decoding: dict[str, Any]
    metrics: dict[str, Any]
    signature: str


class RunStore:
    """One process's (one thread's) handle on the store. Open, use, `close()` (or `with`)."""

    def __init__(self, home: str | os.PathLike | None = None) -> None:
        self.home = Path(home).expanduser().resolve() if home is not None else default_home()
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            (self.home / "runs").mkdir(exist_ok=True)
            (self.home / "corpora").mkdir(exist_ok=True)
        except OSError as error:
            raise StoreError(
                f"cannot create the store folder {self.home}: {error.strerror}. "
                f"Set {HOME_ENV} to a writable folder."
            ) from error
        database = self.home / DATABASE_NAME
        try:
            self._connection = sqlite3.connect(database, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except sqlite3.Error as error:
            raise StoreError(f"cannot open the run store {database}: {error}. Check that the folder is "
                             f"writable, or set {HOME_ENV} to another folder.") from None
        self._connection.row_factory = sqlite3.Row
        try:
            self._connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._connection.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # reads the header
            mode = self._set_wal()
            if mode.lower() != "wal":
                raise StoreError(f"the store at {self.home} could not switch to WAL mode (got {mode}).")
            self._connection.execute("PRAGMA synchronous = NORMAL")
            self._connection.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.DatabaseError as error:
            self._connection.close()
            if isinstance(error, sqlite3.OperationalError) and "locked" in str(error):
                raise StoreError(f"the run store {database} stayed locked for {BUSY_TIMEOUT_MS // 1000} s; "
                                 "another process holds it. Try again.") from None
            raise StoreError(
                f"the run store {database} is damaged ({error}). Move it aside (for example to "
                f"{DATABASE_NAME}.damaged) to start an empty store; the run folders under runs/ are kept. "
                f"Or set {HOME_ENV} to another folder."
            ) from None

    def _set_wal(self) -> str:
        """Switch to WAL. On a new file, several processes opening the store at once race for the
        exclusive lock this needs, and SQLite answers "locked" without waiting: retry briefly."""
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                return self._connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    # -- plumbing ---------------------------------------------------------------------------

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction that takes the write lock up front (BEGIN IMMEDIATE)."""
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            yield self._connection
        except BaseException:
            if self._connection.in_transaction:  # SQLite rolls back by itself on SQLITE_FULL
                self._connection.execute("ROLLBACK")
            raise
        else:
            self._connection.execute("COMMIT")

    def _migrate(self) -> None:
        version = self._connection.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the store at {self.home} has schema version {version}, newer than this "
                f"version of textgen ({SCHEMA_VERSION}). Upgrade textgen or use another {HOME_ENV}."
            )
        with self._write() as db:
            # Re-read inside the lock: another process may have migrated meanwhile.
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for number in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @property
    def schema_version(self) -> int:
        return self._connection.execute("PRAGMA user_version").fetchone()[0]

    def run_dir(self, run_id: str) -> Path:
        return safe_join(self.home, "runs", check_id(run_id, "run id"))

    def corpus_dir(self, corpus_id: str) -> Path:
        return safe_join(self.home, "corpora", check_id(corpus_id, "corpus id"))

    # -- corpora ----------------------------------------------------------------------------

    def add_corpus(
        self,
        *,
        corpus_id: str,
        label: str,
        origin: str,
        sha256: str,
        format: str,
        num_examples: int,
        config: dict[str, Any],
        split: dict[str, Any],
    ) -> CorpusRecord:
        """Insert a corpus row (its folder's files are written by the caller beforehand)."""
        check_id(corpus_id, "corpus id")
        now = time.time()
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO corpora (id, label, origin, sha256, format, num_examples,"
                " config_json, split_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (corpus_id, label, origin, sha256, format, num_examples, json.dumps(config),
                 json.dumps(split), now),
            )
        return self.get_corpus(corpus_id)

    def get_corpus(self, corpus_id: str) -> CorpusRecord:
        row = self._connection.execute("SELECT * FROM corpora WHERE id = ?", (corpus_id,)).fetchone()
        if row is None:
            raise StoreError(f"no corpus with id {corpus_id!r}; `python -m textgen corpus list` shows them.")
        return _corpus_record(row)

    def list_corpora(self) -> list[CorpusRecord]:
        rows = self._connection.execute("SELECT * FROM corpora ORDER BY created_at DESC").fetchall()
        return [_corpus_record(row) for row in rows]

    def delete_corpus(self, corpus_id: str) -> None:
        folder = self.corpus_dir(corpus_id)
        with self._write() as db:
            db.execute("DELETE FROM corpora WHERE id = ?", (corpus_id,))
        shutil.rmtree(folder, ignore_errors=True)

    # -- runs -------------------------------------------------------------------------------

    def create_run(
        self,
        *,
        label: str,
        kind: str,
        config: dict[str, Any],
        corpus_id: str | None = None,
        status: str = "queued",
    ) -> RunRecord:
        if status not in RUN_STATUSES:
            raise ValueError(f"status must be one of {RUN_STATUSES}, got {status!r}")
        run_id = new_id("r")
        now = time.time()
        self.run_dir(run_id).mkdir(parents=True, exist_ok=False)
        with self._write() as db:
            db.execute(
                "INSERT INTO runs (id, label, kind, corpus_id, config_json, status, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, label, kind, corpus_id, json.dumps(config), status, now, now),
            )
        return self.get_run(run_id)

    def get_run(self, run_id: str) -> RunRecord:
        row = self._connection.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"no run with id {run_id!r}; `python -m textgen runs` lists them.")
        return _run_record(row)

    def list_runs(self, statuses: Sequence[str] | None = None, *,
                  include_deleting: bool = False) -> list[RunRecord]:
        """Runs newest first, optionally only those in `statuses`. A run being deleted is left
        out (for everyone it is gone from the moment Delete is pressed) unless include_deleting."""
        conditions, parameters = [], []
        if statuses:
            conditions.append(f"status IN ({','.join('?' * len(statuses))})")
            parameters.extend(statuses)
        if not include_deleting:
            conditions.append("deleting = 0")
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = self._connection.execute(
            f"SELECT * FROM runs{where} ORDER BY created_at DESC", tuple(parameters)).fetchall()
        return [_run_record(row) for row in rows]

    def runs_being_deleted(self) -> list[RunRecord]:
        rows = self._connection.execute("SELECT * FROM runs WHERE deleting = 1").fetchall()
        return [_run_record(row) for row in rows]

    def update_run(self, run_id: str, **fields: Any) -> RunRecord:
        """Set some of: label, status, started_at, finished_at, pid, pid_started, error, config,
        stop_requested, deleting."""
        allowed = {"label", "status", "started_at", "finished_at", "pid", "pid_started", "error",
                   "config", "stop_requested", "deleting"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"cannot update run field(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        if "status" in fields and fields["status"] not in RUN_STATUSES:
            raise ValueError(f"status must be one of {RUN_STATUSES}, got {fields['status']!r}")
        if "config" in fields:
            fields["config_json"] = json.dumps(fields.pop("config"))
        fields["updated_at"] = time.time()
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self._write() as db:
            cursor = db.execute(
                f"UPDATE runs SET {assignments} WHERE id = ?", (*fields.values(), run_id)
            )
            if cursor.rowcount == 0:
                raise StoreError(f"no run with id {run_id!r}")
        return self.get_run(run_id)

    def transition_run(self, run_id: str, from_statuses: Sequence[str], **fields: Any) -> bool:
        """Update a run only if its status is one of `from_statuses` (compare-and-set).

        Returns whether the update happened, so two processes racing to start or reconcile the
        same run cannot both win.
        """
        if "config" in fields:
            fields["config_json"] = json.dumps(fields.pop("config"))
        fields["updated_at"] = time.time()
        assignments = ", ".join(f"{name} = ?" for name in fields)
        marks = ",".join("?" * len(from_statuses))
        with self._write() as db:
            cursor = db.execute(
                f"UPDATE runs SET {assignments} WHERE id = ? AND status IN ({marks})",
                (*fields.values(), run_id, *from_statuses),
            )
            return cursor.rowcount == 1

    def claim_slot(self, run_id: str, limit: int, **fields: Any) -> bool:
        """Mark a queued run "running" if fewer than `limit` runs are running and it is the oldest
        queued run: the job queue, decided in one write transaction so two waiting jobs never
        both take the last slot."""
        now = time.time()
        with self._write() as db:
            running = db.execute("SELECT COUNT(*) FROM runs WHERE status = 'running'").fetchone()[0]
            oldest = db.execute(
                "SELECT id FROM runs WHERE status = 'queued' ORDER BY created_at, id LIMIT 1"
            ).fetchone()
            if running >= limit or oldest is None or oldest[0] != run_id:
                return False
            fields.update(status="running", started_at=now, updated_at=now)
            assignments = ", ".join(f"{name} = ?" for name in fields)
            db.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*fields.values(), run_id))
            return True

    def delete_run(self, run_id: str) -> None:
        folder = self.run_dir(run_id)
        with self._write() as db:
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        shutil.rmtree(folder, ignore_errors=True)

    # -- metrics, samples, evaluations ------------------------------------------------------

    def log_metrics(
        self,
        run_id: str,
        step: int,
        values: dict[str, float],
        *,
        split: str = "train",
        epoch: float | None = None,
        time_: float | None = None,
    ) -> None:
        """Record several named values for one step in one transaction."""
        now = time.time() if time_ is None else time_
        rows = [(run_id, int(step), epoch, split, name, float(value), now) for name, value in values.items()]
        with self._write() as db:
            db.executemany(
                "INSERT INTO metrics (run_id, step, epoch, split, name, value, time)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def get_metrics(
        self,
        run_ids: Iterable[str],
        *,
        names: Sequence[str] | None = None,
        after_id: int = 0,
    ) -> list[MetricRow]:
        """Metric rows of some runs in insertion order; `after_id` fetches only new rows (polling)."""
        run_ids = list(run_ids)
        if not run_ids:
            return []
        query = (
            f"SELECT * FROM metrics WHERE run_id IN ({','.join('?' * len(run_ids))}) AND id > ?"
        )
        parameters: list[Any] = [*run_ids, after_id]
        if names:
            query += f" AND name IN ({','.join('?' * len(names))})"
            parameters += list(names)
        rows = self._connection.execute(query + " ORDER BY id", parameters).fetchall()
        return [MetricRow(**dict(row)) for row in rows]

    def latest_metrics(self, run_id: str) -> dict[str, float]:
        """The last value of each (split, name), keyed "split/name"."""
        rows = self._connection.execute(
            "SELECT split, name, value FROM metrics WHERE id IN ("
            " SELECT MAX(id) FROM metrics WHERE run_id = ? GROUP BY split, name)",
            (run_id,),
        ).fetchall()
        return {f"{row['split']}/{row['name']}": row["value"] for row in rows}

    def add_samples(self, run_id: str, samples: Iterable[SampleRow]) -> None:
        rows = [
            (run_id, s.step, s.epoch, s.example_index, s.source, s.reference, s.output, s.time)
            for s in samples
        ]
        with self._write() as db:
            db.executemany(
                "INSERT INTO samples (run_id, step, epoch, example_index, source, reference,"
                " output, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def get_samples(self, run_id: str) -> list[SampleRow]:
        rows = self._connection.execute(
            "SELECT run_id, step, epoch, example_index, source, reference, output, time"
            " FROM samples WHERE run_id = ? ORDER BY step, example_index",
            (run_id,),
        ).fetchall()
        return [SampleRow(**dict(row)) for row in rows]

    def add_evaluation(
        self,
        run_id: str,
        *,
        split: str,
        decoding: dict[str, Any],
        metrics: dict[str, Any],
        signature: str,
    ) -> int:
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO evaluations (run_id, created_at, split, decoding_json, metrics_json,"
                " signature) VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, time.time(), split, json.dumps(decoding), json.dumps(metrics), signature),
            )
            return int(cursor.lastrowid)

    def get_evaluations(self, run_id: str) -> list[EvaluationRecord]:
        rows = self._connection.execute(
            "SELECT * FROM evaluations WHERE run_id = ? ORDER BY id", (run_id,)
        ).fetchall()
        return [
            EvaluationRecord(
                id=row["id"], run_id=row["run_id"], created_at=row["created_at"], split=row["split"],
                decoding=json.loads(row["decoding_json"]), metrics=json.loads(row["metrics_json"]),
                signature=row["signature"],
            )
            for row in rows
        ]


def _corpus_record(row: sqlite3.Row) -> CorpusRecord:
    return CorpusRecord(
        id=row["id"], label=row["label"], origin=row["origin"], sha256=row["sha256"],
        format=row["format"], num_examples=row["num_examples"],
        config=json.loads(row["config_json"]), split=json.loads(row["split_json"]),
        created_at=row["created_at"],
    )


def _run_record(row: sqlite3.Row) -> RunRecord:
    data = dict(row)
    data["config"] = json.loads(data.pop("config_json"))
    data["stop_requested"] = bool(data["stop_requested"])
    data["deleting"] = bool(data["deleting"])
    return RunRecord(**data)
