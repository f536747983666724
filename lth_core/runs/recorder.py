"""Writing one run into the store: creating it, claiming it, and turning its events into rows.

The worker process, `run --store` and a foreground `resume` all go through `Recorder`, so a run
looks the same in the store however it was started.
"""
from __future__ import annotations

import io
import json
import threading
import time
from typing import Any

import numpy as np

from lth_core.engine.config import ExperimentConfig
from lth_core.engine.events import (Checkpoint, EvalPointEvent, Event, RoundCommitted, RoundFinished, RoundStarted, RunCancelled, RunFailed,
                     RunFinished, RunStarted)
from lth_core.engine.results import CURVE_COLUMNS, REWIND, ROUND_COLUMNS, pack_mask
from lth_core.runs.checks import ChecksWriter
from lth_core.runs.listing import critical_doc
from lth_core.runs.network import NETWORK_DOC
from lth_core.runs.store import (CANCELLED, CRITICAL_DOC, FAILED, FINISHED, INTERRUPTED, QUEUED, RUNNING, Reason, RunLost, RunStore,
                    StoreError, StoreFull, now_iso)

PROGRESS_EVERY_S = 0.5    # progress and curve points reach the store at most twice a second
WATCH_EVERY_S = 0.25      # how often a running worker looks for a cancel request
HEARTBEAT_EVERY_S = 2.0


def create_run(store: RunStore, config: ExperimentConfig, name: str | None = None, *, sweep: str | None = None,
               docs: dict[str, Any] | None = None) -> str:
    """Add a 'queued' run for `config`, a cell of `sweep` if given, with its documents `docs` (in the same
    transaction: the worker never sees it without them); returns its id."""
    config = config.validated()
    rounds = config.num_rounds_requested
    if rounds is not None and config.schedule == "one-shot":
        rounds = min(rounds, 1)
    name = " ".join((name or f"{config.arch} on {config.dataset}").split())[:200]
    with store.transaction() as db:
        run_id = store.add_run(config, name, rounds_total=rounds, iterations=config.iterations,
                               variants=json.dumps(list(config.variants)), sweep=sweep, db=db)
        for key, value in (docs or {}).items():
            store.put_doc(run_id, key, value, db=db)
    return run_id


def claim(store: RunStore, run_id: str, *, allowed: tuple[str, ...] = (QUEUED,), pid: int | None = None) -> str:
    """Mark the run 'running' under a new attempt token (returned): RunStore.claim."""
    return store.claim(run_id, allowed=allowed, pid=pid)


def requeue(store: RunStore, run_id: str) -> None:
    """Put a stopped run (interrupted, cancelled or failed) back in the queue: RunStore.requeue."""
    store.requeue(run_id)


class Recorder:
    """Writes the events of one claimed run. Every write is conditional on the attempt token; when it
    matches nothing (the run was deleted or taken over) RunLost is raised and the run should stop."""

    def __init__(self, store: RunStore, run_id: str, attempt: str) -> None:
        self.store, self.run_id, self.attempt = store, run_id, attempt
        self.stop_reason: str | None = None        # 'cancel', 'signal' or 'lost' once the run should stop
        self._stop = threading.Event()
        self._watch: threading.Thread | None = None
        self._curves: list[tuple] = []
        self._finished: list[RoundFinished] = []
        self._progress: dict[str, Any] = {}
        self._flushed_at = 0.0
        self._inits_saved = False
        self._checks = ChecksWriter(store, run_id)   # the run's sanity checks, written at every commit

    # ---- ownership and stopping --------------------------------------------------------------
    def adopt(self, pid: int) -> bool:
        """Record `pid` as the process running the claim; False if the claim is no longer valid."""
        return self.store.adopt(self.run_id, self.attempt, pid)

    def should_stop(self) -> bool:
        """Called by the training loop after every step: a flag, set by the watch thread or a signal."""
        return self._stop.is_set()

    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stop.set()

    def start_watch(self) -> None:
        """A thread that keeps the heartbeat and notices a cancel request or a lost claim within WATCH_EVERY_S."""
        def watch() -> None:
            beat = 0.0
            while not self._done.is_set():
                try:
                    state = self.store.run_state(self.run_id)
                    if state is None or state[0] != self.attempt or state[1] != RUNNING:
                        self.stop("lost")
                    elif state[2]:
                        self.stop("cancel")
                    if time.monotonic() - beat > HEARTBEAT_EVERY_S and self.stop_reason != "lost":
                        self.store.heartbeat(self.run_id, self.attempt)
                        beat = time.monotonic()
                except StoreError:
                    pass  # a busy or briefly unreadable store: try again on the next tick
                self._done.wait(WATCH_EVERY_S)

        self._done = threading.Event()
        self._watch = threading.Thread(target=watch, name=f"lth-watch-{self.run_id}", daemon=True)
        self._watch.start()

    def stop_watch(self) -> None:
        if self._watch is not None:
            self._done.set()
            self._watch.join()
            self._watch = None

    # ---- events ---------------------------------------------------------------------------------
    def add(self, event: Event) -> None:
        if isinstance(event, EvalPointEvent):
            self._curves.append((self.run_id, *(getattr(event, c) for c in CURVE_COLUMNS)))
            self._progress["iteration"] = event.iteration
            self._flush()
        elif isinstance(event, RoundFinished):
            self._finished.append(event)
        elif isinstance(event, RoundCommitted):
            self._commit(event)
        elif isinstance(event, RoundStarted):
            variants = list(dict.fromkeys(v for _, v in event.models))
            self._progress = {"round": event.round, "variant": "+".join(variants), "iteration": 0}
            self._flush(force=True)
        elif isinstance(event, RunStarted):
            self._started(event)
        elif isinstance(event, RunFinished):
            self.end(FINISHED)
        elif isinstance(event, RunFailed):
            self.end(FAILED, Reason.FAILED_TRAINING, event.reason)
        elif isinstance(event, RunCancelled):
            if self.stop_reason == "signal":
                self.end(INTERRUPTED, Reason.STOPPED_BY_SIGNAL)
            else:
                self.end(CANCELLED, Reason.CANCELLED_BY_USER)

    def _owned(self, db, **columns: Any) -> None:
        """Write the run's progress as this claim; a run lost meanwhile stops (RunLost)."""
        try:
            self.store.record_progress(db, self.run_id, self.attempt, **columns)
        except RunLost:
            self.stop("lost")
            raise

    def _started(self, e: RunStarted) -> None:
        self._owned(None, rounds_total=e.rounds, iterations=e.iterations, variants=json.dumps(e.variants),
                    planned_remaining=json.dumps(e.planned_remaining), layers=json.dumps(e.layers), device=e.device,
                    round=e.start_round, iteration=0, started_at=now_iso())
        if e.network:  # what pages show of the run without loading its data (runs.network.stored_network)
            try:
                self.store.put_doc(self.run_id, NETWORK_DOC, e.network)
            except StoreFull:
                raise
            except StoreError:  # the run was deleted meanwhile
                self.stop("lost")
                raise RunLost(f"run {self.run_id} is gone") from None

    def _flush(self, force: bool = False, db=None) -> None:
        if not force and time.monotonic() - self._flushed_at < PROGRESS_EVERY_S:
            return
        if db is None:
            with self.store.transaction() as db:
                return self._flush(force, db)
        p = self._progress
        self._owned(db, round=p.get("round"), variant=p.get("variant"), iteration=p.get("iteration"),
                    heartbeat=time.time())
        db.executemany(f"INSERT INTO curves (run_id, {', '.join(CURVE_COLUMNS)}) VALUES (?{', ?' * len(CURVE_COLUMNS)})",
                        self._curves)
        self._curves = []
        self._flushed_at = time.monotonic()

    def _commit(self, event: RoundCommitted) -> None:
        """The round's results, layer counts, masks, last curve points and checkpoint: one transaction."""
        done = [e for e in self._finished if e.round == event.round]
        rounds = [(self.run_id, *(getattr(e, c) for c in ROUND_COLUMNS)) for e in done]
        layers = [(self.run_id, e.trial, e.round, e.variant, layer, total, remaining)
                  for e in done for layer, (total, remaining) in e.layers.items()]
        masks = []
        for e in done:
            for layer, m in e.mask.items():
                bits, shape = pack_mask(m)
                masks.append((self.run_id, e.trial, e.round, e.variant, layer, json.dumps(shape.tolist()), bits.tobytes()))
        trials = event.checkpoint.trials
        # a trial's starting points, kept once: its initial weights and (reset rewind:K) the rewind point
        inits = [] if self._inits_saved else [
            (self.run_id, t, _npz({**state["init"], **{REWIND + n: a for n, a in state.get("rewind", {}).items()}}))
            for t, state in enumerate(trials)]
        if all(len(state) > 1 for state in trials):  # the initial weights are in `inits` already: not twice
            trials = [{part: group for part, group in state.items() if part != "init"} for state in trials]
        checkpoint = Checkpoint(event.round, trials).to_bytes()
        self._checks.prepare()
        with self.store.transaction() as db:
            self._owned(db, committed_round=event.round)
            self._flush(force=True, db=db)
            db.executemany(f"INSERT INTO rounds (run_id, {', '.join(ROUND_COLUMNS)}) VALUES (?{', ?' * len(ROUND_COLUMNS)})",
                           rounds)
            db.executemany("INSERT INTO layers VALUES (?, ?, ?, ?, ?, ?, ?)", layers)
            db.executemany("INSERT INTO masks VALUES (?, ?, ?, ?, ?, ?, ?)", masks)
            db.executemany("INSERT OR IGNORE INTO inits VALUES (?, ?, ?)", inits)
            db.execute("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?)", (self.run_id, event.round, checkpoint))
            # the round's sanity checks, in the same commit (so they never describe rounds the store lacks)
            self._checks.add_round(db, event.round, done)
        self._inits_saved = True
        self._finished = [e for e in self._finished if e.round != event.round]
        self._write_critical(event.round)
        self.store.keep_reserve()

    def _write_critical(self, committed_round: int) -> None:
        """The ticket's critical sparsity at this round, kept with the run (CRITICAL_DOC), so the runs list
        sorts a run right however it was started (CLI, worker, Ray), without waiting for someone to view
        the list (runs.listing.refresh_critical still fills it in for runs stored before this)."""
        if committed_round < 1:
            return  # the dense round alone has no critical sparsity (runs_missing_critical skips it too)
        try:
            self.store.put_doc(self.run_id, CRITICAL_DOC, critical_doc(self.store, self.run_id, committed_round))
        except (StoreError, ValueError, KeyError):
            pass  # a derived number: the list's refresh writes it on the next look; the round itself is committed

    def end_quietly(self, status: str, reason: Reason, error: str | None = None) -> None:
        """`end`, where a run that is lost or a store that cannot be written is left for the scheduler (or
        the next open of the store) to mark interrupted, instead of raising."""
        try:
            self.end(status, reason, error)
        except StoreError:
            pass

    def end(self, status: str, reason: Reason | None = None, error: str | None = None) -> None:
        """Close the run as finished, failed, cancelled or interrupted, with why (RunStore.end_run)."""
        def ended(db) -> None:
            try:
                self.store.end_run(db, self.run_id, self.attempt, status, reason, error)
            except RunLost:
                self.stop("lost")
                raise

        try:
            with self.store.transaction() as db:
                self._flush(force=True, db=db)
                ended(db)
        except StoreFull:
            # a full disk: the status alone (not the last curve points, of a round that is not kept anyway),
            # with the store's reserve if need be: a stopped run must not stay 'running'
            self._curves = []
            self.store.with_reserve(lambda: ended(None))
        if status == FINISHED:
            try:
                self.store.reclaim()
            except StoreError:
                pass  # the run is finished all the same; its checkpoint's pages stay free inside the file


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()

