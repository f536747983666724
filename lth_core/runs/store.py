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

import functools
import io
import os
import shutil
import json
import secrets
import sqlite3
import threading
import time
from contextlib import contextmanager
from enum import StrEnum
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import numpy as np
import pandas as pd

from lth_core.engine.config import ExperimentConfig
from lth_core.engine.events import Checkpoint
from lth_core.engine.paths import lth_home
from lth_core.runs.procs import HOST, process_token, worker_alive
from lth_core.engine.results import CURVE_COLUMNS, LAYER_COLUMNS, REWIND, ROUND_COLUMNS, unpack_mask
from lth_core.runs.store_schema import DATA_TABLES, StoreError, connect

__all__ = ["RunStore", "RunInfo", "RunQuery", "RUN_SORTS", "CRITICAL_DOC", "StoreError", "RunLost", "StoreFull", "STATUSES", "UNREADABLE", "Reason",
           "default_store_path"]

# A run's status: the only names the `runs` table's status column holds.
QUEUED, RUNNING, FINISHED, FAILED, CANCELLED, INTERRUPTED = \
    STATUSES = ("queued", "running", "finished", "failed", "cancelled", "interrupted")
UNREADABLE = "unreadable"   # list_runs' status of a row this version cannot read (it can be deleted)
ACTIVE = (QUEUED, RUNNING)
CLAIMED_DOC = "claimed_at"  # a run's document: time.time() when a worker last took it from the queue
RESUMABLE = (INTERRUPTED, CANCELLED, FAILED)


class Reason(StrEnum):
    """Why a run stopped: the code kept in the `reason` column beside the text in `error`. Code compares
    the code, never the wording of the text. (store_schema's migration to version 3 derives these from
    the text of older rows: keep the two in step.)"""

    WORKER_GONE = "worker-gone"              # its process was found gone; how it ended is unknown
    WORKER_DIED = "worker-died"              # its process died, and the scheduler saw how (a signal, an exit status)
    STOPPED_BY_SIGNAL = "stopped-by-signal"  # SIGTERM (the scheduler or the machine shutting down): resumable
    CANCELLED_BY_USER = "cancelled-by-user"
    FAILED_CONFIG = "failed-config"          # the config does not fit its data
    FAILED_TRAINING = "failed-training"      # the engine stopped it (a NaN loss, an error while training)
    DISK_FULL = "disk-full"                  # the store could not be written
    UNREADABLE = "unreadable"                # its stored row cannot be read by this version
    INTERNAL_ERROR = "internal-error"        # anything else that went wrong outside the engine


# the columns a running run's own process may write (RunStore.record_progress)
_PROGRESS_COLUMNS = frozenset({"rounds_total", "iterations", "variants", "planned_remaining", "layers", "device",
                               "round", "variant", "iteration", "heartbeat", "committed_round", "started_at"})
# the columns a new run may be created with, besides those add_run sets itself
_NEW_RUN_COLUMNS = frozenset({"created_at", "started_at", "finished_at", "round", "rounds_total", "committed_round",
                              "variant", "iteration", "iterations", "variants", "planned_remaining", "layers", "device",
                              "sweep"})
EXECUTOR_DOC = "executor"   # a run's document naming who trains it: "local" (the worker; also when absent) or "ray"
RECLAIM_STEP_PAGES = 64
RESERVE_BYTES = 4 << 20          # set aside on a nearly full disk, so runs can still be deleted (see keep_reserve)
RESERVE_STEP_BYTES = 256 << 10
LOW_DISK_BYTES = 1 << 30
_ID_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"   # no 0/o, 1/l/i: ids are read aloud and typed
LIST_COLUMNS = ["id", "name", "status", "dataset", "arch", "created_at", "updated_at", "started_at", "finished_at",
                "round", "rounds_total", "rounds_done", "variant", "iteration", "iterations", "error", "config_id",
                "weights_remaining", "test_accuracy", "reason", "sweep"]
_INT_COLUMNS = ["round", "rounds_total", "rounds_done", "iteration", "iterations"]
CRITICAL_DOC = "critical"   # {"round", "fraction", "text", "rule"}: the ticket's critical sparsity at that last round (runs.listing)
# the rule the document was computed by: a document without it (the interpolated rule before) counts as missing,
# so the list's refresh recomputes it by the measured-round rule (statistics.critical_sparsity)
CRITICAL_RULE = "measured rounds"
# the run's CRITICAL_DOC (alias c, run alias r) that is current: of its last finished round, by CRITICAL_RULE
_CURRENT_CRITICAL = (f"c.run_id = r.id AND c.key = '{CRITICAL_DOC}' AND json_extract(c.value, '$.round') = "
                     f"r.committed_round AND json_extract(c.value, '$.rule') = '{CRITICAL_RULE}'")
# how the runs list can be sorted (RunQuery.sort): newest first by default; runs without a value last
RUN_SORTS = {"newest": "r.created_at DESC, r.rowid DESC", "oldest": "r.created_at, r.rowid",
             "name": "r.name COLLATE NOCASE, r.created_at DESC", "status": "r.status, r.created_at DESC",
             "critical": "critical IS NULL, critical, r.created_at DESC"}


@dataclass(frozen=True)
class RunQuery:
    """What the runs list shows: `search` (part of the name, or the start of the id; case-insensitive), the
    datasets, architectures, statuses and sweeps to keep (empty: all), the sort (RUN_SORTS) and the page."""

    search: str = ""
    datasets: tuple[str, ...] = ()
    archs: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    sweeps: tuple[str, ...] = ()
    sort: str = "newest"
    limit: int = 25
    offset: int = 0

    def __post_init__(self) -> None:
        if self.sort not in RUN_SORTS:
            raise StoreError(f"sort must be one of {', '.join(RUN_SORTS)}; got {self.sort!r}")
        if not (1 <= int(self.limit) <= 1000) or int(self.offset) < 0:
            raise StoreError(f"a page of runs is 1–1000 rows from offset 0 on; got {self.limit} from {self.offset}")

    def where(self) -> tuple[str, tuple]:
        """The SQL WHERE clause (with a leading space, or empty) and its arguments."""
        terms, args = [], []
        text = " ".join(self.search.split())
        if text:
            like = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            terms.append("(r.name LIKE ? ESCAPE '\\' OR r.id LIKE ? ESCAPE '\\')")
            args += [f"%{like}%", f"{like}%"]
        for column, values in (("dataset", self.datasets), ("arch", self.archs), ("status", self.statuses),
                               ("sweep", self.sweeps)):
            if values:
                terms.append(f"r.{column} IN ({', '.join('?' * len(values))})")
                args += list(values)
        return (" WHERE " + " AND ".join(terms) if terms else ""), tuple(args)


T = TypeVar("T")


class StoreFull(StoreError):
    """A write failed because the disk (or the store's size limit) is full."""


class RunLost(StoreError):
    """The run this process was writing was deleted, or is now owned by another process."""


def resolve_prefix(ids: list[str], text: str, what: str, listing: str, where: Path) -> str:
    """The one of `ids` that is `text` or the only one starting with it; else a StoreError naming `what`
    (run, sweep) and the command that lists them."""
    if text in ids:
        return text
    matches = [i for i in ids if i.startswith(text)] if text else []
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise StoreError(f"{what} id {text!r} is ambiguous: it starts {', '.join(matches[:5])}")
    raise StoreError(f"no {what} with id {text!r} in {where} (see `{listing}`)")


def default_store_path() -> Path:
    return lth_home() / "runs.sqlite"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def new_run_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


def _one_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


@functools.lru_cache(maxsize=4096)
def _config_problem(text: object) -> str | None:
    """Why a stored config cannot be read back, or None. Cached: the list reads every run's config."""
    try:
        data = json.loads(text)  # type: ignore[arg-type]
        if not isinstance(data, dict):
            return "its config is not a JSON object"
        ExperimentConfig.from_dict(data)
    except (ValueError, TypeError, RecursionError) as exc:  # ConfigError and JSON errors are ValueErrors
        return f"its config: {_one_line(exc)}"
    return None


def _row_problem(row: dict, config: object) -> str | None:
    """Why a row of `runs` cannot be shown as a run, or None: the checks that make the list's types safe."""
    if row["status"] not in STATUSES:
        return f"unknown status {row['status']!r}"
    for column in _INT_COLUMNS:
        value = row[column]
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            return f"{column} is {value!r}, not a whole number"
    for column in ("id", "name", "dataset", "arch", "created_at"):
        if not isinstance(row[column], str):
            return f"{column} is {row[column]!r}, not text"
    return _config_problem(config)


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
    error: str | None                 # why it stopped, in words (see `reason` for the code)
    updated_at: str = ""
    rounds_done: int = 0              # committed rounds (round 0 included)
    cancel_requested: bool = False
    reason: str | None = None         # why it stopped: a Reason value (None while active, or finished)

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
        self._unwritten: dict[str, str] = {}   # run id -> why it is interrupted, where writing that failed
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
                full = getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
                raise (StoreFull if full else StoreError)(f"{self.path}: {exc}".splitlines()[0]) from None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (for lth_core's own writers); IMMEDIATE, so two writers queue, never deadlock."""
        with self._read() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")  # inside: a COMMIT that fails (a full disk) must not leave the transaction open
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def _frame(self, sql: str, args: tuple, columns: list[str]) -> pd.DataFrame:
        with self._read() as db:
            rows = db.execute(sql, args).fetchall()
        return pd.DataFrame.from_records(rows, columns=columns)

    def _require(self, db: sqlite3.Connection, run_id: str) -> None:
        if db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            raise StoreError(f"no run with id {run_id!r} in {self.path}")

    # ---- reading (the app's API) --------------------------------------------------------
    def list_runs(self, sweep: str | None = None) -> pd.DataFrame:
        """One row per run, newest first (columns: LIST_COLUMNS); with `sweep`, only that sweep's cells. A row
        this version cannot read (a config that no longer validates, a number that is not one) is listed with
        status 'unreadable', its id and the reason in `error`: it never hides the other runs, and it can be deleted."""
        self._maybe_recover()
        ticket = ("(SELECT AVG({col}) FROM rounds x WHERE x.run_id = r.id AND x.round = r.committed_round "
                  "AND x.variant = 'ticket')")
        sql = (f"SELECT {', '.join(c for c in LIST_COLUMNS[:11])}, committed_round + 1, variant, iteration, iterations, "
               f"error, config_id, {ticket.format(col='weights_remaining')}, {ticket.format(col='test_accuracy')}, "
               "reason, sweep, config FROM runs r" + (" WHERE sweep = ?" if sweep is not None else "")
               + " ORDER BY created_at DESC, rowid DESC")
        with self._read() as db:
            rows = db.execute(sql, (sweep,) if sweep is not None else ()).fetchall()
        records = [self._listed(dict(zip(LIST_COLUMNS, row[:-1])), row[-1]) for row in rows]
        frame = pd.DataFrame.from_records(records, columns=LIST_COLUMNS)
        frame[_INT_COLUMNS] = frame[_INT_COLUMNS].astype("Int64")  # nullable: a queued run has no progress yet
        return frame

    def query_runs(self, query: "RunQuery") -> tuple[pd.DataFrame, int]:
        """One page of the runs list: the runs matching `query` (search by name or id, filters by dataset,
        architecture, status and sweep; SQL WHERE, ORDER BY, LIMIT and OFFSET, so 500 runs cost one page),
        with LIST_COLUMNS plus `critical` (the ticket's critical sparsity, as RunStore keeps it in the CRITICAL_DOC
        of the run's last finished round; NULL where not known) and `critical_text`; and how many runs match."""
        self._maybe_recover()
        where, args = query.where()
        ticket = ("(SELECT AVG({col}) FROM rounds x WHERE x.run_id = r.id AND x.round = r.committed_round "
                  "AND x.variant = 'ticket')")
        # the critical sparsity of the run's current last round only (an older document is stale: NULL)
        critical = "(SELECT json_extract(c.value, '$.{field}') FROM run_docs c WHERE " + _CURRENT_CRITICAL + ")"
        sql = (f"SELECT {', '.join('r.' + c for c in LIST_COLUMNS[:11])}, r.committed_round + 1, r.variant, r.iteration, "
               f"r.iterations, r.error, r.config_id, {ticket.format(col='weights_remaining')}, "
               f"{ticket.format(col='test_accuracy')}, r.reason, r.sweep, {critical.format(field='fraction')} AS critical, "
               f"{critical.format(field='text')}, r.config FROM runs r{where} ORDER BY {RUN_SORTS[query.sort]} "
               "LIMIT ? OFFSET ?")
        with self._read() as db:
            total = db.execute(f"SELECT COUNT(*) FROM runs r{where}", args).fetchone()[0]
            rows = db.execute(sql, (*args, int(query.limit), int(query.offset))).fetchall()
        columns = [*LIST_COLUMNS, "critical", "critical_text"]
        records = [{**self._listed(dict(zip(LIST_COLUMNS, row[:-3])), row[-1]), "critical": row[-3],
                    "critical_text": row[-2] or ""} for row in rows]
        frame = pd.DataFrame.from_records(records, columns=columns)
        frame[_INT_COLUMNS] = frame[_INT_COLUMNS].astype("Int64")
        return frame, int(total)

    def run_facets(self) -> dict[str, list[str]]:
        """The values the runs list can be filtered by: datasets, archs, statuses and sweeps held by the store."""
        with self._read() as db:
            return {name: [r[0] for r in db.execute(
                f"SELECT DISTINCT {column} FROM runs WHERE {column} IS NOT NULL ORDER BY {column}")]
                for name, column in (("datasets", "dataset"), ("archs", "arch"), ("statuses", "status"),
                                     ("sweeps", "sweep"))}

    def change_token(self) -> tuple:
        """Changes whenever a run is added, deleted, renamed, progresses or gets a document: what the app keys
        its cached lists on (cheap: two indexed aggregates)."""
        with self._read() as db:
            return tuple(db.execute("SELECT (SELECT COUNT(*) FROM runs), (SELECT MAX(updated_at) FROM runs), "
                                    "(SELECT COUNT(*) FROM run_docs), (SELECT MAX(updated_at) FROM run_docs)").fetchone())

    def runs_missing_critical(self) -> list[tuple[str, int]]:
        """(id, last finished round) of the runs with a pruned round whose CRITICAL_DOC is missing, older, or
        computed by another rule than CRITICAL_RULE."""
        with self._read() as db:
            return [tuple(r) for r in db.execute(
                "SELECT id, committed_round FROM runs r WHERE committed_round >= 1 AND NOT EXISTS (SELECT 1 FROM "
                f"run_docs c WHERE {_CURRENT_CRITICAL})")]

    def copy_run(self, run_id: str, name: str, *, sweep: str | None = None, created_at: str | None = None) -> str:
        """A copy of the run (every row of it: results, masks, curves, documents) under a new id, `name` and
        `sweep`; returns the new id. The copy's numbers are the original's, so a test or a benchmark can
        fill a store with many real runs from a few trained ones."""
        new_id = new_run_id()
        with self.transaction() as db:
            self._require(db, run_id)
            while db.execute("SELECT 1 FROM runs WHERE id = ?", (new_id,)).fetchone():
                new_id = new_run_id()
            columns = [r[1] for r in db.execute("PRAGMA table_info(runs)")]
            replaced = {"id": "?", "name": "?", "sweep": "?", "created_at": "COALESCE(?, created_at)"}
            picks = ", ".join(replaced.get(c, c) for c in columns)
            db.execute(f"INSERT INTO runs ({', '.join(columns)}) SELECT {picks} FROM runs WHERE id = ?",
                       tuple({"id": new_id, "name": name, "sweep": sweep, "created_at": created_at}[c]
                             for c in columns if c in replaced) + (run_id,))
            for table in DATA_TABLES:
                cols = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
                picks = ", ".join("?" if c == "run_id" else c for c in cols)
                db.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {picks} FROM {table} WHERE run_id = ?",
                           (new_id, run_id))
        return new_id

    def _listed(self, row: dict, config: object) -> dict:
        """The list's row, with the recovery that could not be written applied, or marked unreadable."""
        problem = _row_problem(row, config)
        if problem is None:
            return self._as_recovered(row)
        return {**{c: None for c in LIST_COLUMNS}, "id": str(row["id"]), "status": UNREADABLE,
                "name": row["name"] if isinstance(row["name"], str) else f"unreadable run {row['id']}",
                **{c: str(row[c]) if row[c] is not None else "" for c in ("dataset", "arch", "created_at", "updated_at")},
                "sweep": row["sweep"] if isinstance(row["sweep"], str) else None,
                "rounds_done": 0, "error": f"this run cannot be read: {problem}", "reason": Reason.UNREADABLE.value}

    def get_run(self, run_id: str) -> RunInfo:
        """The run `run_id`; StoreError if there is none, or if its row cannot be read (see list_runs)."""
        self._maybe_recover()
        with self._read() as db:
            db.row_factory = sqlite3.Row
            try:
                row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            finally:
                db.row_factory = None
        if row is None:
            raise StoreError(f"no run with id {run_id!r} in {self.path}")
        row = self._as_recovered(dict(row))
        problem = _row_problem({**row, "rounds_done": row["committed_round"] + 1
                                if isinstance(row["committed_round"], int) else row["committed_round"]}, row["config"])
        try:
            if problem is not None:
                raise ValueError(problem)
            config = ExperimentConfig.from_dict(json.loads(row["config"]))
            return RunInfo(
                id=row["id"], name=row["name"], status=row["status"], config=config, created_at=row["created_at"],
                started_at=row["started_at"], finished_at=row["finished_at"], round=row["round"],
                rounds_total=row["rounds_total"], variant=row["variant"], iteration=row["iteration"],
                iterations=row["iterations"],
                variants=json.loads(row["variants"]) if row["variants"] else list(config.variants),
                planned_remaining=json.loads(row["planned_remaining"] or "[]"), layers=json.loads(row["layers"] or "{}"),
                device=row["device"], error=row["error"], updated_at=row["updated_at"],
                rounds_done=row["committed_round"] + 1, cancel_requested=bool(row["cancel_requested"]),
                reason=row["reason"])
        except (ValueError, TypeError, KeyError, RecursionError) as exc:  # ConfigError and JSON errors are ValueErrors
            raise StoreError(f"run {run_id} cannot be read ({_one_line(exc)}); it can only be deleted: "
                             f"python -m lth_core delete {run_id}") from None

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

    def run_ids(self, status: str, *, local: bool = False) -> list[str]:
        """Ids of the runs with `status`, oldest first (the queue's order). `local`: only those the background
        worker runs, not the cells of a sweep whose driver trains them elsewhere (a Ray cluster: EXECUTOR_DOC)."""
        other = (" AND NOT EXISTS (SELECT 1 FROM run_docs d WHERE d.run_id = runs.id AND d.key = ? AND d.value != ?)"
                 if local else "")
        args = (status, EXECUTOR_DOC, json.dumps("local")) if local else (status,)
        with self._read() as db:
            return [r[0] for r in db.execute(f"SELECT id FROM runs WHERE status = ?{other} ORDER BY created_at, rowid",
                                             args)]

    def sweeps(self) -> pd.DataFrame:
        """One row per sweep: sweep, cells, created_at, name (as its cells' "sweep" document names it; the id
        when none does) and how many cells are in each status (columns named by STATUSES), newest first."""
        counts = ", ".join(f"SUM(status = '{s}')" for s in STATUSES)
        named = "(SELECT json_extract(d.value, '$.name') FROM run_docs d WHERE d.run_id = runs.id AND d.key = 'sweep')"
        with self._read() as db:
            rows = db.execute(f"SELECT sweep, COUNT(*), MIN(created_at), COALESCE(MAX({named}), sweep), {counts} "
                              "FROM runs WHERE sweep IS NOT NULL GROUP BY sweep ORDER BY MIN(created_at) DESC").fetchall()
        return pd.DataFrame.from_records(rows, columns=["sweep", "cells", "created_at", "name", *STATUSES])

    # ---- a run's life: every change of its status is one of these --------------------------------
    @contextmanager
    def _writing(self, db: sqlite3.Connection | None) -> Iterator[sqlite3.Connection]:
        """The open transaction `db` (a caller writing more in the same one), else a new one."""
        if db is not None:
            yield db
        else:
            with self.transaction() as db:
                yield db

    def add_run(self, config: ExperimentConfig, name: str, *, status: str = QUEUED, run_id: str | None = None,
                db: sqlite3.Connection | None = None, **columns: object) -> str:
        """Add a run of `config` (validated by the caller) with `status`; returns its id (new, or `run_id`,
        which must be free). `columns`: more of its row (progress, times), for a run added already
        finished (the example), in the open transaction `db` that also writes its results."""
        unknown = set(columns) - _NEW_RUN_COLUMNS
        if unknown or status not in (QUEUED, FINISHED):
            raise ValueError(f"a new run cannot have status {status!r} or columns {sorted(unknown)}")
        now = now_iso()
        values = {"name": name, "status": status, "config": json.dumps(config.to_dict(), sort_keys=True),
                  "config_id": config.config_id(), "dataset": config.dataset, "arch": config.arch,
                  "created_at": now, "updated_at": now, **columns}
        with self._writing(db) as db:
            for _ in range(10):
                chosen = run_id or new_run_id()
                if db.execute("SELECT 1 FROM runs WHERE id = ?", (chosen,)).fetchone():
                    if run_id:
                        raise StoreError(f"there is a run with id {run_id!r} already in {self.path}")
                    continue
                db.execute(f"INSERT INTO runs (id, {', '.join(values)}) VALUES (?{', ?' * len(values)})",
                           (chosen, *values.values()))
                return chosen
        raise StoreError("could not find a free run id")  # 31^8 ids: practically unreachable

    def _check_status(self, db: sqlite3.Connection, run_id: str, allowed: tuple[str, ...], rule: str) -> None:
        row = db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"no run with id {run_id!r} in {self.path}")
        status = self._as_recovered({"id": run_id, "status": row[0]})["status"]  # its worker gone, not yet written
        if status not in allowed:
            raise StoreError(f"run {run_id} is {status}; {rule}")

    def claim(self, run_id: str, *, allowed: tuple[str, ...] = (QUEUED,), pid: int | None = None) -> str:
        """Mark the run 'running' under a new attempt token (returned), run by `pid`. The partial round a
        stopped run left behind (curve points after its last committed round) is deleted, so a resumed
        run does not repeat it."""
        attempt = secrets.token_hex(8)
        with self.transaction() as db:
            self._check_status(db, run_id, allowed, f"only a run that is {' or '.join(allowed)} can be started")
            db.execute("UPDATE runs SET status = ?, attempt = ?, pid = ?, host = ?, proc = ?, heartbeat = ?, "
                       "cancel_requested = 0, error = NULL, reason = NULL, finished_at = NULL, updated_at = ? "
                       "WHERE id = ?", (RUNNING, attempt, pid, HOST, process_token(pid) if pid else None, time.time(),
                                        now_iso(), run_id))
            db.execute("DELETE FROM curves WHERE run_id = ? AND round > (SELECT committed_round FROM runs WHERE id = ?)",
                       (run_id, run_id))
            self.put_doc(run_id, CLAIMED_DOC, time.time(), db)  # when it left the queue: Live run tells waiting from training
        self.keep_reserve()
        return attempt

    def adopt(self, run_id: str, attempt: str, pid: int) -> bool:
        """Record `pid` as the process running the claim `attempt`; False if that claim is no longer valid."""
        with self.transaction() as db:
            cur = db.execute("UPDATE runs SET pid = ?, host = ?, proc = ?, heartbeat = ? WHERE id = ? AND attempt = ? "
                             "AND status = ?", (pid, HOST, process_token(pid), time.time(), run_id, attempt, RUNNING))
        return cur.rowcount == 1

    def heartbeat(self, run_id: str, attempt: str) -> None:
        """The claim's process is alive (what recover() looks at, with its pid)."""
        with self.transaction() as db:
            db.execute("UPDATE runs SET heartbeat = ? WHERE id = ? AND attempt = ?", (time.time(), run_id, attempt))

    def record_progress(self, db: sqlite3.Connection | None, run_id: str, attempt: str, **columns: object) -> None:
        """Write a running run's progress (_PROGRESS_COLUMNS; `started_at` only if not set yet), as its claim
        `attempt`; RunLost if the run was deleted, stopped or taken over meanwhile."""
        unknown = set(columns) - _PROGRESS_COLUMNS
        if unknown:
            raise ValueError(f"not a progress column of a run: {sorted(unknown)}")
        sets = [f"{c} = COALESCE({c}, ?)" if c == "started_at" else f"{c} = ?" for c in columns]
        with self._writing(db) as db:
            self._update_running(db, run_id, attempt, ", ".join(sets), tuple(columns.values()))

    def end_run(self, db: sqlite3.Connection | None, run_id: str, attempt: str, status: str,
                reason: Reason | None = None, error: str | None = None) -> None:
        """Close a running run, as its claim `attempt`: finished (its checkpoint is dropped), failed,
        cancelled or interrupted, with `reason` and `error` (its one-line text); RunLost as record_progress."""
        if status not in (FINISHED, FAILED, CANCELLED, INTERRUPTED) or (reason is None) != (status == FINISHED):
            raise ValueError(f"a run cannot end as {status!r} with reason {reason!r}")
        error = None if error is None else (str(error).strip().splitlines() or [""])[0][:500]
        with self._writing(db) as db:
            self._update_running(db, run_id, attempt, "status = ?, reason = ?, error = ?, finished_at = ?, pid = NULL",
                                 (status, None if reason is None else Reason(reason).value, error, now_iso()))
            if status == FINISHED:
                db.execute("DELETE FROM checkpoints WHERE run_id = ?", (run_id,))

    def _update_running(self, db: sqlite3.Connection, run_id: str, attempt: str, sets: str, args: tuple) -> None:
        cur = db.execute(f"UPDATE runs SET {sets}, updated_at = ? WHERE id = ? AND attempt = ? AND status = ?",
                         (*args, now_iso(), run_id, attempt, RUNNING))
        if cur.rowcount != 1:
            raise RunLost(f"run {run_id} was deleted or taken over by another process")

    def requeue(self, run_id: str) -> None:
        """Put a stopped run (interrupted, cancelled or failed) back in the queue, to continue after its last round."""
        with self.transaction() as db:
            self._check_status(db, run_id, RESUMABLE, "only an interrupted, cancelled or failed run can be resumed")
            db.execute("UPDATE runs SET status = ?, error = NULL, reason = NULL, finished_at = NULL, "
                       "cancel_requested = 0, attempt = NULL, pid = NULL, updated_at = ? WHERE id = ?",
                       (QUEUED, now_iso(), run_id))

    def cancel(self, run_id: str) -> str:
        """Cancel a run: a queued or interrupted one at once; a running one is asked to stop (its process
        ends it as cancelled). Returns the status now in the store."""
        with self.transaction() as db:
            row = db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise StoreError(f"no run with id {run_id!r} in {self.path}")
            if row[0] in (QUEUED, INTERRUPTED):
                db.execute("UPDATE runs SET status = ?, reason = ?, error = NULL, attempt = NULL, finished_at = ?, "
                           "updated_at = ? WHERE id = ?",
                           (CANCELLED, Reason.CANCELLED_BY_USER.value, now_iso(), now_iso(), run_id))
                return CANCELLED
            if row[0] == RUNNING:
                db.execute("UPDATE runs SET cancel_requested = 1, updated_at = ? WHERE id = ?", (now_iso(), run_id))
            return row[0]

    def mark_died(self, run_id: str, attempt: str, how: str) -> bool:
        """The process of claim `attempt` has died, `how` (said by its parent, which alone knows): the run
        becomes interrupted (worker-died), also where recover() saw it first with the cause unknown.
        True if the run changed."""
        with self.transaction() as db:
            cur = db.execute("UPDATE runs SET status = ?, reason = ?, error = ?, pid = NULL, updated_at = ? "
                             "WHERE id = ? AND attempt = ? AND (status = ? OR (status = ? AND reason = ?))",
                             (INTERRUPTED, Reason.WORKER_DIED.value, f"the worker process stopped unexpectedly ({how})",
                              now_iso(), run_id, attempt, RUNNING, INTERRUPTED, Reason.WORKER_GONE.value))
        return cur.rowcount > 0

    # ---- editing --------------------------------------------------------------------------
    def rename(self, run_id: str, name: str) -> None:
        name = " ".join(str(name).split())
        if not name:
            raise StoreError("a run's name cannot be empty")
        with self.transaction() as db:
            self._require(db, run_id)
            db.execute("UPDATE runs SET name = ?, updated_at = ? WHERE id = ?", (name[:200], now_iso(), run_id))

    def delete(self, run_id: str) -> None:
        """Remove every row of the run. A worker still running it notices and stops. Works on a full
        disk: the reserve (keep_reserve) gives the deletion room, and the space freed goes back to the disk."""
        self.with_reserve(lambda: self._delete(run_id))
        shutil.rmtree(self.exports_path / run_id, ignore_errors=True)  # its ticket's exported files (tasks.py)
        try:
            self.with_reserve(self.reclaim)
        except StoreError:
            pass  # the run is gone; its pages stay free inside the file, for the next runs
        self.keep_reserve()

    def _delete(self, run_id: str) -> None:
        with self.transaction() as db:
            self._require(db, run_id)
            for table in DATA_TABLES:
                db.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    @property
    def exports_path(self) -> Path:
        """The folder beside the store where a run's exported files are kept, by run id (tasks.export_folder)."""
        return self.path.parent / "exports"

    # ---- a full disk ---------------------------------------------------------------------------
    @property
    def reserve_path(self) -> Path:
        return Path(f"{self.path}.reserve")

    def keep_reserve(self) -> None:
        """On a nearly full disk, hold RESERVE_BYTES in `<store>.reserve` (best effort; called as runs
        grow the store). When the disk is full, `with_reserve` gives it back bit by bit, so that a run can
        still be ended and runs deleted to make room."""
        try:
            if shutil.disk_usage(self.path.parent).free > LOW_DISK_BYTES:
                return
            if self.reserve_path.exists() and self.reserve_path.stat().st_size >= RESERVE_BYTES:
                return
            fd = os.open(self.reserve_path, os.O_WRONLY | os.O_CREAT, 0o644)
        except OSError:
            return
        try:
            os.posix_fallocate(fd, 0, RESERVE_BYTES)   # the blocks are taken now, not when written
        except OSError:
            pass  # no room for all of it: what it holds still helps
        finally:
            os.close(fd)

    def with_reserve(self, write: Callable[[], T]) -> T:
        """`write()`; if the disk is full, again after each RESERVE_STEP_BYTES given back from the reserve."""
        while True:
            try:
                return write()
            except StoreFull:
                if not self._shrink_reserve():
                    raise

    def _shrink_reserve(self) -> bool:
        try:
            size = self.reserve_path.stat().st_size
            if size <= RESERVE_STEP_BYTES:
                self.reserve_path.unlink()
            else:
                os.truncate(self.reserve_path, size - RESERVE_STEP_BYTES)
            return size > 0
        except OSError:
            return False

    def reclaim(self) -> None:
        """Give the pages of deleted rows back to the file system (the store uses incremental auto-vacuum).
        In steps, each followed by a checkpoint: the file shrinks and the log's space is reused as it goes,
        so this works on a full disk too."""
        with self._read() as db:
            free = db.execute("PRAGMA freelist_count").fetchone()[0]
            while free:
                # executescript steps the pragma to its end (execute would free a single page)
                db.executescript(f"PRAGMA incremental_vacuum({RECLAIM_STEP_PAGES});")
                db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                free, before = db.execute("PRAGMA freelist_count").fetchone()[0], free
                if free >= before:
                    break

    # ---- documents kept with a run ---------------------------------------------------------------
    def put_doc(self, run_id: str, key: str, value: object, db: sqlite3.Connection | None = None) -> None:
        """Keep a JSON-able `value` with the run under `key` (replacing what was there); deleted with the run.
        `db`: an open transaction to write it in (one that also adds the run, say)."""
        text = json.dumps(value, allow_nan=False)
        with self._writing(db) as db:
            self._require(db, run_id)
            db.execute("INSERT OR REPLACE INTO run_docs VALUES (?, ?, ?, ?)", (run_id, key, text, now_iso()))

    def doc(self, run_id: str, key: str, default: object = None) -> object:
        """The document kept with the run under `key`, or `default`."""
        with self._read() as db:
            row = db.execute("SELECT value FROM run_docs WHERE run_id = ? AND key = ?", (run_id, key)).fetchone()
        return json.loads(row[0]) if row else default

    def docs(self, run_id: str, prefix: str = "") -> dict[str, object]:
        """Every document of the run whose key starts with `prefix`, by key, in key order."""
        with self._read() as db:
            rows = db.execute("SELECT key, value FROM run_docs WHERE run_id = ? AND substr(key, 1, ?) = ? "
                              "ORDER BY key", (run_id, len(prefix), prefix)).fetchall()
        return {k: json.loads(v) for k, v in rows}

    def docs_of_all_runs(self, prefix: str) -> list[tuple[str, str, object]]:
        """(run id, key, value) of every run's documents whose key starts with `prefix`, oldest first."""
        with self._read() as db:
            rows = db.execute("SELECT run_id, key, value FROM run_docs WHERE substr(key, 1, ?) = ? "
                              "ORDER BY updated_at, rowid", (len(prefix), prefix)).fetchall()
        return [(r, k, json.loads(v)) for r, k, v in rows]

    def change_doc(self, run_id: str, key: str, change: Callable[[object], object]) -> object:
        """Replace the document `key` by `change(its value or None)` in one transaction (nothing is written
        when `change` returns None); returns what was written, or None. StoreError if the run is gone."""
        with self.transaction() as db:
            self._require(db, run_id)
            row = db.execute("SELECT value FROM run_docs WHERE run_id = ? AND key = ?", (run_id, key)).fetchone()
            value = change(json.loads(row[0]) if row else None)
            if value is not None:
                db.execute("INSERT OR REPLACE INTO run_docs VALUES (?, ?, ?, ?)",
                           (run_id, key, json.dumps(value, allow_nan=False), now_iso()))
        return value

    def setting(self, key: str, default: str | None = None) -> str | None:
        with self._read() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (f"setting.{key}",)).fetchone()
        return row[0] if row else default

    def run_settings(self, prefix: str) -> dict[str, str]:
        """Run id → the setting `<prefix><run id>`, for the runs in the store that have one, newest run first
        (as list_runs): one query, not one per run."""
        with self._read() as db:
            return dict(db.execute("SELECT r.id, m.value FROM runs r JOIN meta m ON m.key = 'setting.' || ? || r.id "
                                   "ORDER BY r.created_at DESC, r.rowid DESC", (prefix,)).fetchall())

    def set_setting(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"setting.{key}", str(value)))

    # ---- dead workers -------------------------------------------------------------------------
    def _maybe_recover(self) -> None:
        if time.monotonic() - self._recovered_at > 1.0:
            self.recover()

    def recover(self) -> list[str]:
        """Mark 'running' runs whose worker is gone as 'interrupted'; returns their ids. Reading never
        depends on this write: where it fails (a full disk) such a run still reads as interrupted, and
        the write is tried again at the next look."""
        self._recovered_at = time.monotonic()
        with self._read() as db:
            rows = db.execute("SELECT id, pid, host, heartbeat, attempt, proc FROM runs WHERE status = ?",
                              (RUNNING,)).fetchall()
        lost, unwritten = [], {}
        for run_id, pid, host, heartbeat, attempt, proc in rows:
            if worker_alive(pid, host, proc, heartbeat):
                continue
            error = f"the worker process (pid {pid}) stopped before the run ended"
            try:
                with self.transaction() as db:
                    cur = db.execute("UPDATE runs SET status = ?, reason = ?, error = ?, pid = NULL, updated_at = ? "
                                     "WHERE id = ? AND attempt IS ? AND status = ?",
                                     (INTERRUPTED, Reason.WORKER_GONE.value, error, now_iso(), run_id, attempt, RUNNING))
            except StoreError as exc:
                unwritten[run_id] = f"{error} (not yet recorded: {exc})"
                continue
            if cur.rowcount:
                lost.append(run_id)
        self._unwritten = unwritten
        return lost

    def _as_recovered(self, row: dict) -> dict:
        """A 'running' row whose worker is gone but whose recovery could not be written, as it will read."""
        error = self._unwritten.get(row["id"])
        if error is None or row["status"] != RUNNING:
            return row
        return {**row, "status": INTERRUPTED, "reason": Reason.WORKER_GONE.value, "error": error, "pid": None}
