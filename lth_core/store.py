"""The run store: one SQLite file (WAL mode) that holds every run, its progress and its results.

The worker writes, the app and the CLI read; all of them may do so at the same time.

    store = RunStore()                      # lth_home()/runs.sqlite
    store.list_runs()                       # a DataFrame, newest first
    store.rounds(run_id); store.curves(run_id, round=2); store.mask(run_id, 0, 2, "ticket", "fc1")

A finished round is written in one transaction (its results, layer counts, masks, remaining
curve points and the checkpoint to resume from), so it is in the store whole or not at all.
Every write made for a running run names the run's current `attempt`: a writer whose run was
deleted, cancelled from a dead state or resumed elsewhere matches nothing and stops (RunLost).
"""
from __future__ import annotations

import io
import json
import secrets
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from .config import ExperimentConfig
from .events import Checkpoint
from .paths import lth_home
from .procs import worker_alive
from .results import CURVE_COLUMNS, LAYER_COLUMNS, REWIND, ROUND_COLUMNS, unpack_mask
from .store_schema import DATA_TABLES, StoreError, connect

__all__ = ["RunStore", "RunInfo", "StoreError", "RunLost", "STATUSES", "default_store_path"]

STATUSES = ("queued", "running", "finished", "failed", "cancelled", "interrupted")
ACTIVE = ("queued", "running")
RESUMABLE = ("interrupted", "cancelled", "failed")
_ID_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"   # no 0/o, 1/l/i: ids are read aloud and typed
LIST_COLUMNS = ["id", "name", "status", "dataset", "arch", "created_at", "updated_at", "started_at", "finished_at",
                "round", "rounds_total", "rounds_done", "variant", "iteration", "iterations", "error", "config_id",
                "weights_remaining", "test_accuracy"]


class RunLost(StoreError):
    """The run this process was writing was deleted, or is now owned by another process."""


def default_store_path() -> Path:
    return lth_home() / "runs.sqlite"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def new_run_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


@dataclass(frozen=True)
class RunInfo:
    """One run as the store knows it. `round`/`variant`/`iteration` is the progress of the round in
    flight: all variants of a round train together, so `variant` reads e.g. 'ticket+reinit+random'."""

    id: str
    name: str
    status: str
    config: ExperimentConfig
    created_at: str
    started_at: str | None
    finished_at: str | None
    round: int | None
    rounds_total: int | None          # pruning rounds after the dense round 0 (rounds are 0..rounds_total)
    variant: str | None
    iteration: int | None
    iterations: int | None            # training iterations per round
    variants: list[str]
    planned_remaining: list[float]
    layers: dict[str, int]
    device: str | None
    error: str | None
    updated_at: str = ""
    rounds_done: int = 0              # committed rounds (round 0 included)
    cancel_requested: bool = False

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


class RunStore:
    """The run store at `path` (default: lth_home()/runs.sqlite). Safe to share between threads."""

    def __init__(self, path: Path | str | None = None, *, recover: bool = True) -> None:
        self.path = Path(path).expanduser().absolute() if path else default_store_path().absolute()
        self._db: sqlite3.Connection | None = connect(self.path)
        self._lock = threading.RLock()
        self._recovered_at = 0.0
        if recover:
            self.recover()

    # ---- plumbing -------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._db is None:
                self._db = connect(self.path)
            try:
                yield self._db
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"{self.path}: {exc}".splitlines()[0]) from None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (for lth_core's own writers); IMMEDIATE, so two writers queue, never deadlock."""
        with self._read() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _frame(self, sql: str, args: tuple, columns: list[str]) -> pd.DataFrame:
        with self._read() as db:
            rows = db.execute(sql, args).fetchall()
        return pd.DataFrame.from_records(rows, columns=columns)

    def _require(self, db: sqlite3.Connection, run_id: str) -> None:
        if db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            raise StoreError(f"no run with id {run_id!r} in {self.path}")

    # ---- reading (the app's API) --------------------------------------------------------
    def list_runs(self) -> pd.DataFrame:
        """One row per run, newest first (columns: LIST_COLUMNS)."""
        self._maybe_recover()
        ticket = ("(SELECT AVG({col}) FROM rounds x WHERE x.run_id = r.id AND x.round = r.committed_round "
                  "AND x.variant = 'ticket')")
        sql = (f"SELECT {', '.join(c for c in LIST_COLUMNS[:11])}, committed_round + 1, variant, iteration, iterations, "
               f"error, config_id, {ticket.format(col='weights_remaining')}, {ticket.format(col='test_accuracy')} "
               "FROM runs r ORDER BY created_at DESC, rowid DESC")
        frame = self._frame(sql, (), LIST_COLUMNS)
        ints = ["round", "rounds_total", "rounds_done", "iteration", "iterations"]
        frame[ints] = frame[ints].astype("Int64")  # nullable: a queued run has no progress yet
        return frame

    def get_run(self, run_id: str) -> RunInfo:
        self._maybe_recover()
        with self._read() as db:
            db.row_factory = sqlite3.Row
            try:
                row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            finally:
                db.row_factory = None
        if row is None:
            raise StoreError(f"no run with id {run_id!r} in {self.path}")
        config = ExperimentConfig.from_dict(json.loads(row["config"]))
        return RunInfo(
            id=row["id"], name=row["name"], status=row["status"], config=config, created_at=row["created_at"],
            started_at=row["started_at"], finished_at=row["finished_at"], round=row["round"],
            rounds_total=row["rounds_total"], variant=row["variant"], iteration=row["iteration"],
            iterations=row["iterations"],
            variants=json.loads(row["variants"]) if row["variants"] else list(config.variants),
            planned_remaining=json.loads(row["planned_remaining"] or "[]"), layers=json.loads(row["layers"] or "{}"),
            device=row["device"], error=row["error"], updated_at=row["updated_at"],
            rounds_done=row["committed_round"] + 1, cancel_requested=bool(row["cancel_requested"]))

    def rounds(self, run_id: str) -> pd.DataFrame:
        """ROUND_COLUMNS of every committed round, in the order the run produced them."""
        return self._table(run_id, "rounds", ROUND_COLUMNS, "ORDER BY round, rowid")

    def layers(self, run_id: str) -> pd.DataFrame:
        return self._table(run_id, "layers", LAYER_COLUMNS, "ORDER BY round, rowid")

    def curves(self, run_id: str, round: int | None = None) -> pd.DataFrame:
        """CURVE_COLUMNS, including the evaluation points of the round in flight; in the order the run
        produced them (as `run --out` writes them), which a resumed run reproduces."""
        where, args = ("AND round = ?", (int(round),)) if round is not None else ("", ())
        return self._table(run_id, "curves", CURVE_COLUMNS, f"{where} ORDER BY round, rowid", args)

    def _table(self, run_id: str, table: str, columns: list[str], tail: str, args: tuple = ()) -> pd.DataFrame:
        with self._read() as db:
            self._require(db, run_id)
        return self._frame(f"SELECT {', '.join(columns)} FROM {table} WHERE run_id = ? {tail}", (run_id, *args), columns)

    def masks(self, run_id: str, trial: int, round: int, variant: str) -> dict[str, np.ndarray]:
        """Layer → bool mask (the weight's shape) of one trained model."""
        with self._read() as db:
            rows = db.execute("SELECT layer, shape, bits FROM masks WHERE run_id = ? AND trial = ? AND round = ? "
                              "AND variant = ? ORDER BY rowid", (run_id, int(trial), int(round), str(variant))).fetchall()
            if not rows:
                self._require(db, run_id)
                raise StoreError(f"run {run_id} has no masks for trial {trial}, round {round}, variant {variant!r}")
        return {layer: unpack_mask(np.frombuffer(bits, np.uint8), json.loads(shape)) for layer, shape, bits in rows}

    def mask(self, run_id: str, trial: int, round: int, variant: str, layer: str) -> np.ndarray:
        with self._read() as db:
            row = db.execute("SELECT shape, bits FROM masks WHERE run_id = ? AND trial = ? AND round = ? AND variant = ? "
                             "AND layer = ?", (run_id, int(trial), int(round), str(variant), str(layer))).fetchone()
            if row is None:
                self._require(db, run_id)
                raise StoreError(f"run {run_id} has no mask for trial {trial}, round {round}, variant {variant!r}, "
                                 f"layer {layer!r}")
        return unpack_mask(np.frombuffer(row[1], np.uint8), json.loads(row[0]))

    def init_weights(self, run_id: str, trial: int) -> dict[str, np.ndarray]:
        """Parameter name → the trial's initial values (a ticket = mask × these)."""
        return self.starting_points(run_id, trial)[0]

    def starting_points(self, run_id: str, trial: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
        """(initial weights, rewind weights) of a trial: the second are its weights at iteration K of its
        dense run for reset rewind:K (the ticket = mask × these), None for the other resets."""
        arrays = self._starting_points(run_id, trial)
        rewind = {n[len(REWIND):]: a for n, a in arrays.items() if n.startswith(REWIND)}
        return {n: a for n, a in arrays.items() if not n.startswith(REWIND)}, rewind or None

    def _starting_points(self, run_id: str, trial: int) -> dict[str, np.ndarray]:
        with self._read() as db:
            row = db.execute("SELECT weights FROM inits WHERE run_id = ? AND trial = ?", (run_id, int(trial))).fetchone()
            if row is None:
                self._require(db, run_id)
                raise StoreError(f"run {run_id} has no initial weights for trial {trial} (no round finished yet)")
        with np.load(io.BytesIO(row[0]), allow_pickle=False) as z:
            return {name: z[name] for name in z.files}

    def checkpoint(self, run_id: str) -> Checkpoint | None:
        """What resuming `run_id` starts from: the checkpoint of its last committed round, if any.
        (The initial weights are stored once, in `inits`, and put back into it here.)"""
        with self._read() as db:
            row = db.execute("SELECT data FROM checkpoints WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        checkpoint = Checkpoint.from_bytes(row[0])
        for trial, state in enumerate(checkpoint.trials):
            if "init" not in state:
                state["init"] = self.init_weights(run_id, trial)
        return checkpoint

    def run_state(self, run_id: str) -> tuple[str | None, str, bool] | None:
        """(attempt, status, cancel requested) of a run, or None if it is gone: what a worker polls."""
        with self._read() as db:
            row = db.execute("SELECT attempt, status, cancel_requested FROM runs WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else (row[0], row[1], bool(row[2]))

    def run_ids(self, status: str) -> list[str]:
        """Ids of the runs with `status`, oldest first (the queue's order)."""
        with self._read() as db:
            return [r[0] for r in db.execute("SELECT id FROM runs WHERE status = ? ORDER BY created_at, rowid", (status,))]

    # ---- editing --------------------------------------------------------------------------
    def rename(self, run_id: str, name: str) -> None:
        name = " ".join(str(name).split())
        if not name:
            raise StoreError("a run's name cannot be empty")
        with self.transaction() as db:
            self._require(db, run_id)
            db.execute("UPDATE runs SET name = ?, updated_at = ? WHERE id = ?", (name[:200], now_iso(), run_id))

    def delete(self, run_id: str) -> None:
        """Remove every row of the run. A worker still running it notices and stops."""
        with self.transaction() as db:
            self._require(db, run_id)
            for table in DATA_TABLES:
                db.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        self.reclaim()

    def reclaim(self) -> None:
        """Give the pages of deleted rows back to the file system (the store uses incremental auto-vacuum)."""
        with self._read() as db:
            db.execute("PRAGMA incremental_vacuum").fetchall()  # each step frees one page: run it to the end

    def setting(self, key: str, default: str | None = None) -> str | None:
        with self._read() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (f"setting.{key}",)).fetchone()
        return row[0] if row else default

    def set_setting(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"setting.{key}", str(value)))

    # ---- dead workers -------------------------------------------------------------------------
    def _maybe_recover(self) -> None:
        if time.monotonic() - self._recovered_at > 1.0:
            self.recover()

    def recover(self) -> list[str]:
        """Mark 'running' runs whose worker is gone as 'interrupted'; returns their ids."""
        self._recovered_at = time.monotonic()
        with self._read() as db:
            rows = db.execute("SELECT id, pid, host, heartbeat, attempt, proc FROM runs WHERE status = 'running'").fetchall()
        lost = []
        for run_id, pid, host, heartbeat, attempt, proc in rows:
            if worker_alive(pid, host, proc, heartbeat):
                continue
            with self.transaction() as db:
                cur = db.execute("UPDATE runs SET status = 'interrupted', error = ?, pid = NULL, updated_at = ? "
                                 "WHERE id = ? AND attempt IS ? AND status = 'running'",
                                 (f"the worker process (pid {pid}) stopped before the run ended", now_iso(), run_id, attempt))
            if cur.rowcount:
                lost.append(run_id)
        return lost
