"""The run store's file: its schema, its migrations, and the checks made before anything is written.

A file is only ever written to after it has been recognised as this store (or found empty):
a foreign SQLite file, a corrupt file or one from a newer version raises StoreError and is left
byte-for-byte as it was (switching to WAL mode writes the header, so it comes after the checks).
"""
from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from lth_core.engine.errors import LTHError

APP_ID = "lth-explorer"
SCHEMA_VERSION = 4
BUSY_TIMEOUT_MS = 15_000

_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,            -- store.STATUSES: queued running finished failed cancelled interrupted
    config TEXT NOT NULL,            -- ExperimentConfig.to_dict() as JSON
    config_id TEXT NOT NULL,
    dataset TEXT NOT NULL,
    arch TEXT NOT NULL,
    created_at TEXT NOT NULL,        -- UTC ISO 8601
    updated_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    round INTEGER,                   -- progress: the round in flight (or the last one)
    rounds_total INTEGER,            -- pruning rounds after the dense round 0
    committed_round INTEGER NOT NULL DEFAULT -1,
    variant TEXT,                    -- the variants training together, e.g. ticket+reinit+random
    iteration INTEGER,
    iterations INTEGER,
    variants TEXT,                   -- JSON list
    planned_remaining TEXT,          -- JSON list
    layers TEXT,                     -- JSON object layer -> total weights
    device TEXT,
    error TEXT,
    pid INTEGER,                     -- the process running it, with its host and a heartbeat
    host TEXT,
    proc TEXT,                       -- 'boot id:start time' of that pid, so a reused pid is not taken for it
    heartbeat REAL,
    attempt TEXT,                    -- token of the current claim; a stale writer's updates match nothing
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_status ON runs (status);
CREATE TABLE rounds (
    run_id TEXT NOT NULL, trial INTEGER NOT NULL, round INTEGER NOT NULL, variant TEXT NOT NULL,
    weights_remaining REAL, test_accuracy REAL, val_accuracy REAL, early_stop_iteration INTEGER,
    early_stop_test_accuracy REAL, early_stop_val_loss REAL, train_seconds REAL,
    PRIMARY KEY (run_id, trial, round, variant)
);
CREATE TABLE layers (
    run_id TEXT NOT NULL, trial INTEGER NOT NULL, round INTEGER NOT NULL, variant TEXT NOT NULL,
    layer TEXT NOT NULL, total INTEGER, remaining INTEGER,
    PRIMARY KEY (run_id, trial, round, variant, layer)
);
CREATE TABLE curves (
    run_id TEXT NOT NULL, trial INTEGER NOT NULL, round INTEGER NOT NULL, variant TEXT NOT NULL,
    iteration INTEGER NOT NULL, train_loss REAL, val_loss REAL, val_accuracy REAL, test_accuracy REAL,
    PRIMARY KEY (run_id, trial, round, variant, iteration)
);
CREATE TABLE masks (
    run_id TEXT NOT NULL, trial INTEGER NOT NULL, round INTEGER NOT NULL, variant TEXT NOT NULL,
    layer TEXT NOT NULL, shape TEXT NOT NULL, bits BLOB NOT NULL,   -- numpy.packbits of the flat mask
    PRIMARY KEY (run_id, trial, round, variant, layer)
);
CREATE TABLE inits (               -- a trial's initial weights, as an .npz: ticket = mask * init
    run_id TEXT NOT NULL, trial INTEGER NOT NULL, weights BLOB NOT NULL,
    PRIMARY KEY (run_id, trial)
);
CREATE TABLE checkpoints (         -- the latest Checkpoint.to_bytes() of an unfinished run
    run_id TEXT PRIMARY KEY, round INTEGER NOT NULL, data BLOB NOT NULL
);
"""

# MIGRATIONS[v] turns a version-v store into version v+1; each runs in one transaction.
MIGRATIONS: dict[int, str] = {
    # 2: evaluation time apart from training time (older rounds keep NULL: their train_seconds include it)
    1: "ALTER TABLE rounds ADD COLUMN eval_seconds REAL;",
    # 3: why a run stopped, as a code (store.Reason) beside its text in `error`; older rows get the code
    # their text (as the versions before wrote it) says, once, here
    2: """ALTER TABLE runs ADD COLUMN reason TEXT;
UPDATE runs SET reason = CASE
    WHEN status = 'interrupted' AND error LIKE 'the worker process stopped unexpectedly (%' THEN 'worker-died'
    WHEN status = 'interrupted' AND error IS NULL THEN 'stopped-by-signal'
    WHEN status = 'interrupted' THEN 'worker-gone'
    WHEN status = 'cancelled' THEN 'cancelled-by-user'
    WHEN status = 'failed' AND error LIKE 'run % cannot be read (%' THEN 'unreadable'
    WHEN status = 'failed' AND (error LIKE 'StoreFull: %' OR error LIKE '%database or disk is full%') THEN 'disk-full'
    WHEN status = 'failed' AND (error LIKE 'the training loss %' OR error LIKE 'the pruning scores %'
                                OR error GLOB '[A-Z]*Error: *' OR error GLOB '[A-Z]*Exception: *') THEN 'failed-training'
    WHEN status = 'failed' THEN 'failed-config'
END;""",
    # 4: what a run keeps beside its rounds, one JSON document a key (the network's shape, deployment bench
    # results, checks ...), the kind of work a run is, and the sweep it belongs to
    3: """CREATE TABLE run_docs (
    run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, updated_at TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
ALTER TABLE runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'lottery';
ALTER TABLE runs ADD COLUMN sweep TEXT;
CREATE INDEX runs_by_sweep ON runs (sweep);""",
}
DATA_TABLES = ("rounds", "layers", "curves", "masks", "inits", "checkpoints", "run_docs")


class StoreError(LTHError):
    """The run store cannot be used; the message (one line) names the file and what is wrong."""


def check_folder(path: Path) -> None:
    """The store's folder must exist (it is created) and be writable: SQLite's WAL files live beside it."""
    folder = path.parent
    hint = "set LTH_HOME to choose another folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the run store's folder {folder} ({exc.strerror}); {hint}") from None
    if not folder.is_dir():
        raise StoreError(f"{folder} is not a folder; {hint}")
    if path.is_dir():
        raise StoreError(f"{path} is a folder, not a run store file; {hint}")
    if not _writable(folder) or (path.exists() and not _writable(path)):
        raise StoreError(f"the run store's folder {folder} is not writable; {hint}")


def _writable(p: Path) -> bool:
    # os.access answers yes for root even where the file system or the mode says no; a probe does not lie
    if not os.access(p, os.W_OK):
        return False
    if p.is_dir():
        probe = p / f".lth-write-probe-{os.getpid()}-{threading.get_ident()}"  # per thread: app sessions are threads
        try:
            probe.touch()
            probe.unlink()
        except OSError:
            return False
    return True


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating or migrating when needed) the store at `path`; raise StoreError if it is not one."""
    check_folder(path)
    # The file is only ever read through SQLite: closing any other descriptor of it would drop this
    # process's POSIX locks on it, and another process could then checkpoint the WAL under our feet.
    db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    try:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _prepare(db, path)
        db.execute("PRAGMA journal_mode = WAL")      # readers never wait for the worker's writes
        db.execute("PRAGMA synchronous = NORMAL")    # in WAL mode: durable across crashes of the process
        # a deleted row's pages are freed, not overwritten with zeros first (some builds default to that):
        # deleting a run then writes a tenth of its size, not all of it, which a full disk may not have room for
        db.execute("PRAGMA secure_delete = OFF")
    except sqlite3.DatabaseError as exc:
        db.close()
        if "not a database" in str(exc):
            raise StoreError(f"{path} is not a run store: it is not an SQLite database (corrupt, or another kind of "
                             "file); it was left as it is; move it away or set LTH_HOME") from None
        raise StoreError(f"{path} cannot be used as a run store: {exc}; it was left as it is") from None
    except BaseException:
        db.close()
        raise
    return db


def _version(db: sqlite3.Connection, path: Path) -> int | None:
    """The schema version of the file, or None when it holds no tables at all."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        return None
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall()) if "meta" in tables else {}
    if meta.get("app") != APP_ID:
        shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        raise StoreError(f"{path} is an SQLite database but not a Lottery Ticket Explorer run store "
                         f"(its tables: {shown}); it was left as it is; set LTH_HOME to use another folder")
    try:
        return int(meta["schema_version"])
    except (KeyError, ValueError):
        raise StoreError(f"{path} has no readable schema version; it was left as it is") from None


def _prepare(db: sqlite3.Connection, path: Path) -> None:
    version = _version(db, path)
    if version == SCHEMA_VERSION:
        return
    if version is not None and version > SCHEMA_VERSION:
        raise StoreError(f"{path} was written by a newer Lottery Ticket Explorer (store schema {version}; this "
                         f"version reads up to {SCHEMA_VERSION}); upgrade, or set LTH_HOME to use another folder")
    if version is None:
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only takes on a file without tables: deletes give space back
    db.execute("BEGIN IMMEDIATE")  # another process may be creating or migrating the same file right now
    try:
        version = _version(db, path)
        if version is None:
            for statement in _statements(_V1):
                db.execute(statement)
            db.executemany("INSERT INTO meta VALUES (?, ?)", [("app", APP_ID), ("schema_version", "1")])
            version = 1
        while version < SCHEMA_VERSION:
            for statement in _statements(MIGRATIONS[version]):
                db.execute(statement)
            version += 1
            db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _statements(script: str) -> list[str]:
    """Split an SQL script into statements (executescript would commit the open transaction)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return [s for s in statements if s.strip(" ;\n")]
