"""Work attached to a run that the background worker does, like a run: the deployment bench, the ticket's
export files, the per-layer sensitivity of its dense network, and whatever comes next, each one entry of TASK_KINDS.

A task is a store document of its run, "task/<kind>/<round>/<trial>", holding its state (queued, running,
done, failed, interrupted, cancelled), a line of progress, the process that runs it and the claim token (`attempt`)
its writes name. Its result goes in its own document (`TaskKind.result_key`, e.g. "deploy/<round>/<trial>"),
so a later failed attempt never hides an earlier result. The scheduler (worker.py) starts a queued task in
its own process when a worker slot is free; a task whose process dies is marked interrupted, by the
scheduler (which knows how it died) or by the next reader that finds its process gone (`recover`).

    key = tasks.submit(store, run_id, "deploy", round=11, trial=0)     # (jobs.submit_deploy starts the worker)
    tasks.get(store, run_id, key).state                                 # 'queued' ... 'done'
    tasks.cancel(store, run_id, key)                                    # queued: at once; running: within a second

Cancelling a running task works as a run's cancel does (RunStore.cancel, Recorder's watch): the request is a flag
in the task's document, and a thread of the task's process that watches it stops the work and marks it cancelled.
"""
from __future__ import annotations

import _thread
import secrets
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lth_core.runs.procs import HOST, process_token, worker_alive
from lth_core.runs.recorder import WATCH_EVERY_S
from lth_core.runs.store import RunStore, StoreError, now_iso

PREFIX = "task/"
QUEUED, RUNNING, DONE, FAILED, INTERRUPTED, CANCELLED = STATES = (
    "queued", "running", "done", "failed", "interrupted", "cancelled")
ACTIVE = (QUEUED, RUNNING)
CANCEL_SIGNAL = signal.SIGUSR1   # raised (simulated, never sent) in a task's main thread to stop it mid-step


class TaskCancelled(BaseException):
    """The task was cancelled while it ran (raised in its main thread by the cancel watch). A BaseException, as
    KeyboardInterrupt is, so that no `except Exception` in the work it interrupts swallows it."""

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TaskKind:
    """One kind of work on a run's ticket: `run(store, run_id, round, trial, args, progress)` does it and
    keeps its result with the run under `result_key(round, trial)`."""

    name: str
    title: str                                   # in words, for messages: "deployment bench"
    run: Callable[[RunStore, str, int, int, dict[str, Any], Progress], None]
    result_prefix: str                           # the result is the document f"{result_prefix}/{round}/{trial}"

    def result_key(self, round: int, trial: int) -> str:
        return f"{self.result_prefix}/{round}/{trial}"


@dataclass
class Task:
    run_id: str
    key: str
    kind: str
    round: int
    trial: int
    state: str
    args: dict[str, Any] = field(default_factory=dict)
    progress: str = ""
    error: str | None = None
    created_at: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    pid: int | None = None
    host: str | None = None
    proc: str | None = None
    attempt: str | None = None
    cancel_requested: bool = False
    share_done: float | None = None   # the part of this attempt's work done (0…1), where the work can tell (share)
    estimate_s: float | None = None   # its whole time from its start, where it was estimated when queued

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @classmethod
    def from_doc(cls, run_id: str, key: str, doc: dict[str, Any]) -> "Task":
        known = set(cls.__dataclass_fields__) - {"run_id", "key"}
        return cls(run_id=run_id, key=key, **{k: v for k, v in doc.items() if k in known})

    def to_doc(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("run_id", "key")}


# ---- the kinds of task ------------------------------------------------------------------------------

def _deploy(store: RunStore, run_id: str, round: int, trial: int, args: dict[str, Any], progress: Progress) -> None:
    from lth_core.analysis.deploy_bench import DEFAULT_REPEATS, run_deploy_bench

    bench = run_deploy_bench(store, run_id, round, trial, repeats=args.get("repeats") or DEFAULT_REPEATS,
                             threads=args.get("threads"), progress=progress)
    store.put_doc(run_id, TASK_KINDS["deploy"].result_key(round, trial), bench.to_dict())


def _export(store: RunStore, run_id: str, round: int, trial: int, args: dict[str, Any], progress: Progress) -> None:
    from lth_core.analysis.exports import export_ticket
    from lth_core.engine.retrain import retrain

    progress(f"retraining round {round} of trial {trial} (the store keeps masks, not trained weights)")
    model = retrain(store, run_id, round, trial)["ticket"]
    folder = export_folder(store, run_id, round, trial)
    progress("writing the files")
    files = export_ticket(model, folder)
    store.put_doc(run_id, TASK_KINDS["export"].result_key(round, trial),
                  {"folder": str(folder), "files": [f.name for f in files], "source": model.source(),
                   "created_at": now_iso()})


def _sensitivity(store: RunStore, run_id: str, round: int, trial: int, args: dict[str, Any], progress: Progress) -> None:
    from lth_core.runs.sensitivity import run_task

    run_task(store, run_id, round, trial, args, progress)  # writes "sensitivity/0/<trial>" after every layer


def _at_init(store: RunStore, run_id: str, round: int, trial: int, args: dict[str, Any], progress: Progress) -> None:
    from lth_core.runs.at_init import run_task

    run_task(store, run_id, round, trial, args, progress)


def _stability(store: RunStore, run_id: str, round: int, trial: int, args: dict[str, Any], progress: Progress) -> None:
    from lth_core.runs.stability import analyse

    # the result document is written after each k by analyse itself: an interrupted task started again
    # does only the k that are missing
    analyse(store, run_id, round, trial, tuple(args["ks"]), args.get("alphas"), progress=progress,
            should_stop=should_stop_of(progress))  # a cancel stops its training at the next step


TASK_KINDS: dict[str, TaskKind] = {k.name: k for k in (
    TaskKind("deploy", "deployment bench", _deploy, "deploy"),
    TaskKind("export", "ticket export", _export, "export"),
    TaskKind("sensitivity", "per-layer sensitivity", _sensitivity, "sensitivity"),  # round 0: the dense network
    TaskKind("at-init", "pruning at init (its cells)", _at_init, "at-init/cell"),  # runs/at_init.py
    TaskKind("stability", "instability analysis", _stability, "stability"),
)}


def export_folder(store: RunStore, run_id: str, round: int, trial: int) -> Path:
    """Where the export task writes a ticket's files: beside the store, by run, round and trial."""
    return store.exports_path / run_id / f"round-{round}-trial-{trial}" / "ticket"


def task_key(kind: str, round: int, trial: int) -> str:
    return f"{PREFIX}{kind}/{round}/{trial}"


def task_id(run_id: str, key: str) -> str:
    """A task's id for people: RUN/KIND/ROUND/TRIAL (its store key without "task/", after its run), the id the
    CLI's `tasks` lists and `cancel` takes."""
    return f"{run_id}/{key[len(PREFIX):] if key.startswith(PREFIX) else key}"


# ---- submitting and reading ---------------------------------------------------------------------------

def submit(store: RunStore, run_id: str, kind: str, round: int, trial: int, args: dict[str, Any] | None = None,
           estimate_s: float | None = None) -> str:
    """Queue a task of `kind` on the ticket (round, trial) of `run_id` (already checked by the caller);
    returns its key. A task of the same key already queued or running is left as it is. `estimate_s`: how long
    it should take from its start, where the caller estimated it (a run queued behind it is told its wait)."""
    if kind not in TASK_KINDS:
        raise ValueError(f"unknown task kind {kind!r}; known: {', '.join(TASK_KINDS)}")
    key = task_key(kind, round, trial)

    def queue(doc: dict | None) -> dict | None:
        if doc is not None and doc.get("state") in ACTIVE:
            return None
        return Task(run_id, key, kind, round, trial, QUEUED, dict(args or {}), "waiting for the worker",
                    created_at=now_iso(), estimate_s=estimate_s).to_doc()

    store.change_doc(run_id, key, queue)
    return key


def get(store: RunStore, run_id: str, key: str) -> Task | None:
    """The task `key` of the run (marked interrupted first if its process is gone), or None."""
    recover(store, run_id)
    doc = store.doc(run_id, key)
    return None if doc is None else Task.from_doc(run_id, key, doc)


def of_run(store: RunStore, run_id: str, kind: str | None = None) -> list[Task]:
    """The run's tasks (of `kind`), in key order."""
    recover(store, run_id)
    docs = store.docs(run_id, PREFIX + (f"{kind}/" if kind else ""))
    return [Task.from_doc(run_id, k, v) for k, v in docs.items()]


def all_tasks(store: RunStore, state: str | None = None) -> list[Task]:
    """Every run's tasks (in `state`), oldest change first."""
    found = [Task.from_doc(r, k, v) for r, k, v in store.docs_of_all_runs(PREFIX)]
    return [t for t in found if state is None or t.state == state]


def cancel(store: RunStore, run_id: str, key: str) -> str | None:
    """Cancel a task: a queued one at once, a running one at its next step (its process watches for the request,
    within about a second; it then marks itself cancelled). Returns the state now stored (None: no such task)."""
    def ask(doc: dict | None) -> dict | None:
        if doc is None:
            return None
        if doc.get("state") == QUEUED:
            return {**doc, "state": CANCELLED, "progress": "cancelled before it started", "finished_at": now_iso(),
                    "error": None}
        if doc.get("state") == RUNNING and not doc.get("cancel_requested"):
            return {**doc, "cancel_requested": True, "progress": "cancelling…"}
        return None

    try:
        store.change_doc(run_id, key, ask)
    except StoreError:
        return None  # the run was deleted meanwhile
    doc = store.doc(run_id, key)
    return None if doc is None else doc.get("state")


# ---- the worker's side ----------------------------------------------------------------------------------

def _change(store: RunStore, task: Task, when: Callable[[Task], bool], **values: Any) -> bool:
    """Write `values` into the task's document if `when(the stored task)`; True if written."""
    def change(doc: dict | None) -> dict | None:
        if doc is None:
            return None
        stored = Task.from_doc(task.run_id, task.key, doc)
        return {**doc, **values} if when(stored) else None

    try:
        return store.change_doc(task.run_id, task.key, change) is not None
    except StoreError:
        return False  # the run was deleted meanwhile


def claim(store: RunStore, task: Task, pid: int | None = None) -> str | None:
    """Mark a queued task running under a new attempt token (returned); None if it is no longer queued."""
    attempt = secrets.token_hex(8)
    ok = _change(store, task, lambda t: t.state == QUEUED, state=RUNNING, attempt=attempt, started_at=now_iso(),
                 finished_at=None, error=None, progress="starting", pid=pid, host=HOST, cancel_requested=False, share_done=None,
                 proc=process_token(pid) if pid else None)
    return attempt if ok else None


def adopt(store: RunStore, task: Task, attempt: str, pid: int) -> bool:
    """Record `pid` as the process that runs the claim `attempt`."""
    return _change(store, task, lambda t: t.attempt == attempt and t.state == RUNNING,
                   pid=pid, host=HOST, proc=process_token(pid))


def _mine(attempt: str) -> Callable[[Task], bool]:
    return lambda t: t.attempt == attempt and t.state == RUNNING


def mark_died(store: RunStore, task: Task, attempt: str, how: str) -> bool:
    """The task's process died, `how` (said by the scheduler, its parent): the task becomes interrupted."""
    return _change(store, task, lambda t: t.attempt == attempt and (t.state == RUNNING or (
        t.state == INTERRUPTED and t.error and t.error.startswith("its process is gone"))),
                   state=INTERRUPTED, error=f"its process stopped unexpectedly ({how}); start it again",
                   finished_at=now_iso(), pid=None)


def recover(store: RunStore, run_id: str | None = None) -> list[str]:
    """Mark running tasks whose process is gone as interrupted (of one run, or of all); returns their keys."""
    running = (all_tasks(store, RUNNING) if run_id is None else
               [Task.from_doc(run_id, k, v) for k, v in store.docs(run_id, PREFIX).items() if v.get("state") == RUNNING])
    lost = []
    for t in running:
        if t.pid is None and t.started_at is not None and _age_s(t.started_at) < 30:
            continue  # claimed, its process being started by the scheduler
        if t.pid is not None and worker_alive(t.pid, t.host, t.proc, None):
            continue
        if _change(store, t, _mine(t.attempt or ""), state=INTERRUPTED, finished_at=now_iso(), pid=None,
                   error=f"its process is gone (pid {t.pid}); start it again"):
            lost.append(t.key)
    return lost


def _age_s(iso: str) -> float:
    from datetime import datetime

    try:
        return time.time() - datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return float("inf")


class _CancelWatch:
    """While a task runs: a thread that reads the task's document every WATCH_EVERY_S and, once a cancel is asked
    for, sets `requested` and raises TaskCancelled in the main thread (by Python's signal machinery, simulated with
    _thread.interrupt_main: no signal is sent), so a long retraining or timing loop stops at its next Python step.
    Off the main thread no handler can be set: the task stops at its next progress line instead."""

    def __init__(self, store: RunStore, task: Task, attempt: str) -> None:
        self.store, self.task, self.attempt = store, task, attempt
        self.requested = False
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._main = threading.current_thread() is threading.main_thread()
        self._previous: Any = None
        self._thread = threading.Thread(target=self._watch, name=f"lth-task-watch-{task.run_id}", daemon=True)

    def _raise(self, *_: Any) -> None:
        if not self._done.is_set():
            raise TaskCancelled()

    def _watch(self) -> None:
        while not self._done.wait(WATCH_EVERY_S):
            try:
                doc = self.store.doc(self.task.run_id, self.task.key)
            except StoreError:
                continue  # a busy store: look again
            if doc is None or doc.get("attempt") != self.attempt or doc.get("state") != RUNNING:
                return
            if doc.get("cancel_requested"):
                with self._lock:
                    if not self._done.is_set():
                        self.requested = True
                        if self._main:
                            _thread.interrupt_main(CANCEL_SIGNAL)
                return

    def __enter__(self) -> "_CancelWatch":
        if self._main:
            self._previous = signal.signal(CANCEL_SIGNAL, self._raise)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        with self._lock:
            self._done.set()
        self._thread.join()
        if self._main:  # a raise already pending is dropped by _raise, now that _done is set
            signal.signal(CANCEL_SIGNAL, self._previous if self._previous is not None else signal.SIG_DFL)


class TaskProgress:
    """What a task's work is handed: call it with a line of progress (it raises TaskCancelled once a cancel is asked
    for), and pass its `should_stop` to the engine's loops (training raises Cancelled at its next step), so a
    cancel stops the work mid-step on any thread, not only where the watch can interrupt the main thread."""

    def __init__(self, write: Callable[[str, float | None], None], requested: Callable[[], bool]) -> None:
        self._write, self.should_stop = write, requested

    def __call__(self, text: str, done: float | None = None) -> None:
        """A line of progress; `done`: the part of this attempt's work done by now (0…1), where the work can tell
        (a run queued behind the task is told its wait from it: `estimate.queue_ahead`)."""
        if self.should_stop():
            raise TaskCancelled()
        self._write(text, done)


def say(progress: Progress, text: str, done: float) -> None:
    """A line of progress with the part of the work done, for work that a task does and a caller may do directly
    (whose `progress` takes a line only)."""
    if isinstance(progress, TaskProgress):
        progress(text, done)
    else:
        progress(text)


def should_stop_of(progress: Progress) -> Callable[[], bool] | None:
    """The engine's stop check of a task's progress (None for a plain callable, as a direct call passes)."""
    return progress.should_stop if isinstance(progress, TaskProgress) else None


def execute(store: RunStore, task: Task, attempt: str) -> str:
    """Do a claimed task in this process, writing its progress; returns its final state. A cancel asked for
    meanwhile (`cancel`) stops it as 'cancelled'."""
    kind = TASK_KINDS.get(task.kind)
    watch = _CancelWatch(store, task, attempt)
    finished = False
    def write(text: str, done: float | None) -> None:
        shared = {} if done is None else {"share_done": min(1.0, max(0.0, float(done)))}
        _change(store, task, _mine(attempt), progress=text[:300], **shared)

    progress = TaskProgress(write, lambda: watch.requested)

    try:
        if kind is None:
            raise ValueError(f"unknown task kind {task.kind!r}")
        with watch:
            kind.run(store, task.run_id, task.round, task.trial, task.args, progress)
            finished = True
    except TaskCancelled:
        if not finished:  # stopped mid-way: its result, if any, is an earlier attempt's
            _change(store, task, _mine(attempt), state=CANCELLED, progress="cancelled", error=None,
                    finished_at=now_iso(), pid=None)
            return CANCELLED
    except Exception as exc:  # noqa: BLE001 - a task always ends with a state and a one-line reason
        line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        _change(store, task, _mine(attempt), state=FAILED, error=f"{type(exc).__name__}: {line}",
                finished_at=now_iso(), pid=None)
        traceback.print_exc()
        return FAILED
    _change(store, task, _mine(attempt), state=DONE, progress="done", finished_at=now_iso(), pid=None)
    return DONE


def run_claimed(store_path: Path, run_id: str, key: str, attempt: str) -> int:
    """Entry point of a task process started by the scheduler."""
    import os

    store = RunStore(store_path, recover=False)
    task = get(store, run_id, key)
    if task is None or not adopt(store, task, attempt, os.getpid()):
        return 0  # deleted before this process got going
    state = execute(store, task, attempt)
    print(f"{now_iso()} task {key} of run {run_id}: {state}", flush=True)
    return 0
