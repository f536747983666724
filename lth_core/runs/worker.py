"""The background worker: a scheduler process that starts queued runs, each in its own process.

    python -m lth_core worker [--store-path P]          the scheduler (jobs.submit starts it, detached)
    python -m lth_core worker --run ID --attempt TOKEN   one run (the scheduler starts these)

One scheduler per store, held by an flock on `<store>.scheduler` (the kernel drops it when the
process dies, however it dies). It starts a queued run whenever fewer than `workers` runs are
running, notices a run process that died (killed, out of memory) and marks its run
'interrupted', and exits after LINGER_S seconds with nothing queued or running.
Training happens in a separate process per run, so killing one run never touches another. Run
processes are forked from a multiprocessing forkserver that the scheduler starts at once, with torch
and the engine already imported: a run starts training within a fraction of a second, instead of
paying some 2 s of imports first. Every process of a scheduler (it, its forkserver, its runs) carries
LTH_WORKER_STORE=<store path> in its environment.
"""
from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from lth_core.engine.errors import ConfigError
from lth_core.engine.events import Event
from lth_core.runs import tasks
from lth_core.runs.recorder import Recorder, claim
from lth_core.runs.store import CANCELLED, FAILED, QUEUED, RUNNING, Reason, RunLost, RunStore, StoreError, StoreFull, now_iso

POLL_S = 0.2
LINGER_S = 3.0
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds lth_core/, put on the path of processes started here
# what the forkserver imports before forking run processes: torch and the engine. Not scikit-learn's splitter
# (about 0.6 s of imports of its own, paid by every cold start): a dataset's split indices come from the
# dataset cache, so only a run on a dataset or seed never split before imports it
RUN_PRELOAD = ["lth_core.runs.worker", "lth_core.engine.lottery", "lth_core.cli"]
STORE_ENV = "LTH_WORKER_STORE"


def worker_count(store: RunStore) -> int:
    """How many runs may train at once: LTH_WORKERS, else the store's `workers` setting, else 1."""
    for value in (os.environ.get("LTH_WORKERS"), store.setting("workers")):
        if value:
            try:
                return max(1, int(value))
            except ValueError:
                continue
    return 1


# ---- one run ------------------------------------------------------------------------------------

def execute(store: RunStore, run_id: str, attempt: str, on_event: Callable[[Event], None] | None = None,
            *, reraise: bool = False) -> str:
    """Run (or continue after its last committed round) a claimed run, recording every event.
    Returns the run's final status. SIGTERM stops it as 'interrupted' (resumable); Ctrl-C as 'cancelled'.
    A config that does not fit its data makes the run 'failed'; with `reraise` the ConfigError propagates too."""
    from lth_core.engine.lottery import run_experiment

    rec = Recorder(store, run_id, attempt)
    try:
        info = store.get_run(run_id)
    except StoreError as exc:  # a row this version cannot read (an older store's config): it cannot train
        rec.end_quietly(FAILED, Reason.UNREADABLE, str(exc))
        state = store.run_state(run_id)
        return state[1] if state else "lost"
    resume = store.checkpoint(run_id) if info.rounds_done else None
    rec.start_watch()
    restore = _on_signal(signal.SIGTERM, lambda: rec.stop("signal"))
    try:
        for event in run_experiment(info.config, resume=resume, should_stop=rec.should_stop):
            rec.add(event)
            if on_event is not None:
                on_event(event)
    except RunLost:
        return "lost"
    except KeyboardInterrupt:
        rec.end_quietly(CANCELLED, Reason.CANCELLED_BY_USER)
        raise
    except ConfigError as exc:  # the config does not fit its data (raised before the first event)
        rec.end_quietly(FAILED, Reason.FAILED_CONFIG, str(exc))
        if reraise:
            raise
    except Exception as exc:  # noqa: BLE001 - a run always ends with a status and a one-line reason
        reason = Reason.DISK_FULL if isinstance(exc, StoreFull) else Reason.INTERNAL_ERROR
        rec.end_quietly(FAILED, reason, f"{type(exc).__name__}: {exc}")
    finally:
        rec.stop_watch()
        restore()
    state = store.run_state(run_id)
    return state[1] if state else "lost"



def _on_signal(signum: int, action: Callable[[], None]) -> Callable[[], None]:
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signum, lambda *_: action())
    return lambda: signal.signal(signum, previous)


def run_claimed(store_path: Path, run_id: str, attempt: str) -> int:
    """Entry point of a run process started by the scheduler."""
    gc.freeze()  # the forkserver's imports (PyTorch, the engine) live as long as the run: not for the collector to walk
    store = RunStore(store_path, recover=False)
    if not Recorder(store, run_id, attempt).adopt(os.getpid()):
        return 0  # cancelled or deleted before this process got going
    status = execute(store, run_id, attempt)
    print(f"{now_iso()} run {run_id}: {status}", flush=True)
    return 0


# ---- the scheduler --------------------------------------------------------------------------------

class SchedulerLock:
    """An exclusive flock on `<store>.scheduler`, which also records the holder's pid."""

    def __init__(self, store_path: Path) -> None:
        self.path = Path(f"{store_path}.scheduler")
        self.fd: int | None = None

    def acquire(self, wait_s: float = 0.0) -> bool:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.05)
        self.fd = fd
        self.write_pid(os.getpid())
        return True

    def adopt(self, fd: int) -> None:
        """Take over a lock acquired by the process that started this one (passed as an open descriptor)."""
        self.fd = fd
        self.write_pid(os.getpid())

    def write_pid(self, pid: int) -> None:
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{pid}\n".encode(), 0)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None

    def recorded_pid(self) -> int | None:
        """The pid written in the lock file (that of the scheduler, when one holds the lock)."""
        try:
            text = self.path.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def holder(self) -> int | None:
        """The pid of the running scheduler, or None when there is none."""
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return None  # nobody holds it
        except BlockingIOError:
            text = os.read(fd, 32).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        finally:
            os.close(fd)


def run_processes() -> multiprocessing.context.BaseContext:
    """The forkserver context that run processes start from; `warm_up` starts its server ahead of need."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(RUN_PRELOAD)
    return context


def warm_up() -> None:
    """Start the forkserver now (it imports RUN_PRELOAD in the background), so the first run starts warm."""
    from multiprocessing import forkserver

    run_processes()
    forkserver.ensure_running()


def start_run(store_path: Path, run_id: str, attempt: str) -> multiprocessing.Process:
    proc = run_processes().Process(target=run_claimed, args=(store_path, run_id, attempt), name=f"lth-run-{run_id}")
    proc.start()
    return proc


def start_task(store_path: Path, task: tasks.Task, attempt: str) -> multiprocessing.Process:
    proc = run_processes().Process(target=tasks.run_claimed, args=(store_path, task.run_id, task.key, attempt),
                                   name=f"lth-task-{task.run_id}")
    proc.start()
    return proc


def spawn(args: list[str], *, log: Path, detach: bool, pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """`python -m lth_core worker ARGS`, importable wherever this package lives, output to `log`."""
    env = dict(os.environ)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(PACKAGE_ROOT) not in paths:
        env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_ROOT), *paths])
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "lth_core", "worker", *args], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=detach,
                                pass_fds=pass_fds)


def log_path(store_path: Path) -> Path:
    return Path(f"{store_path}.worker.log")


def serve(store_path: Path, *, lock_fd: int | None = None, linger_s: float = LINGER_S) -> int:
    """The scheduler loop; returns at once if another scheduler serves this store. `lock_fd`: the lock,
    already taken by the process that started this one (so no second scheduler starts meanwhile)."""
    lock = SchedulerLock(store_path)
    if lock_fd is not None:
        lock.adopt(lock_fd)
    elif not lock.acquire(wait_s=0.5):
        return 0
    os.environ[STORE_ENV] = str(store_path)
    warm_up()
    store = RunStore(store_path)
    children: dict[str, tuple[multiprocessing.Process, str]] = {}
    task_children: dict[tuple[str, str], tuple[multiprocessing.Process, str]] = {}
    stopping: list[int] = []
    restore = [_on_signal(s, lambda: stopping.append(1)) for s in (signal.SIGTERM, signal.SIGINT)]
    print(f"{now_iso()} scheduler {os.getpid()} serving {store.path}", flush=True)
    idle_since: float | None = None
    try:
        while not stopping:
            _reap(store, children)
            store.recover()
            queued = store.run_ids(QUEUED, local=True)
            # tasks (tasks.py) share the worker slots with runs
            free = worker_count(store) - len(store.run_ids(RUNNING, local=True)) - len(tasks.all_tasks(store, tasks.RUNNING))
            for run_id in queued[:max(0, free)]:
                try:
                    attempt = claim(store, run_id)
                except StoreError:
                    continue  # cancelled or deleted meanwhile
                proc = start_run(store.path, run_id, attempt)
                Recorder(store, run_id, attempt).adopt(proc.pid)
                children[run_id] = (proc, attempt)
                print(f"{now_iso()} run {run_id}: started in process {proc.pid}", flush=True)
            # work attached to a run (tasks.py) shares the worker slots with runs: a bench measures timings
            # and should not compete with a run for the cores more than the user asked for
            _reap_tasks(store, task_children)
            tasks.recover(store)
            waiting = tasks.all_tasks(store, tasks.QUEUED)
            free = worker_count(store) - len(store.run_ids(RUNNING, local=True)) - len(tasks.all_tasks(store, tasks.RUNNING))
            for task in waiting[:max(0, free)]:
                attempt = tasks.claim(store, task)
                if attempt is None:
                    continue  # deleted meanwhile
                proc = start_task(store.path, task, attempt)
                tasks.adopt(store, task, attempt, proc.pid)
                task_children[(task.run_id, task.key)] = (proc, attempt)
                print(f"{now_iso()} task {task.key} of run {task.run_id}: started in process {proc.pid}", flush=True)
            if children or queued or task_children or waiting:
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > linger_s:
                # let go of the lock *then* look again: a run queued after this look finds no scheduler and
                # starts one, a run queued before it is seen here
                lock.release()
                if not (store.run_ids(QUEUED, local=True) or tasks.all_tasks(store, tasks.QUEUED)) or not lock.acquire():
                    break
                idle_since = None
            time.sleep(POLL_S)
    finally:
        for proc, _ in [*children.values(), *task_children.values()]:
            proc.terminate()  # each run stops at its next step as 'interrupted'; a task stops (interrupted)
        deadline = time.monotonic() + 10
        while (children or task_children) and time.monotonic() < deadline:
            _reap(store, children)
            _reap_tasks(store, task_children)
            time.sleep(POLL_S)
        for proc, _ in [*children.values(), *task_children.values()]:
            proc.kill()
        _reap(store, children, wait=True)
        _reap_tasks(store, task_children, wait=True)
        for r in restore:
            r()
        lock.release()
        store.close()
    return 0


def _reap(store: RunStore, children: dict[str, tuple[multiprocessing.Process, str]], wait: bool = False) -> None:
    """Forget finished run processes; a run whose process died without closing it becomes 'interrupted'."""
    for run_id, (proc, attempt) in list(children.items()):
        proc.join(None if wait else 0)
        code = proc.exitcode
        if code is None:
            continue
        del children[run_id]
        proc.close()
        how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        if code < 0 and -code in signal.valid_signals():
            how = f"killed by {signal.Signals(-code).name}"
        # the store's own check may have seen the dead process first (as 'interrupted', cause unknown):
        # only its parent learns how it ended, so that attempt's message is made precise here
        if store.mark_died(run_id, attempt, how):
            print(f"{now_iso()} run {run_id}: interrupted ({how})", flush=True)


def _reap_tasks(store: RunStore, children: dict[tuple[str, str], tuple[multiprocessing.Process, str]],
                wait: bool = False) -> None:
    """Forget finished task processes; a task whose process died before it ended becomes 'interrupted'."""
    for (run_id, key), (proc, attempt) in list(children.items()):
        proc.join(None if wait else 0)
        code = proc.exitcode
        if code is None:
            continue
        del children[(run_id, key)]
        proc.close()
        how = f"exit status {code}"
        if code < 0:
            how = f"killed by {signal.Signals(-code).name}" if -code in signal.valid_signals() else f"killed by signal {-code}"
        task = tasks.get(store, run_id, key)
        if task is not None and tasks.mark_died(store, task, attempt, how):
            print(f"{now_iso()} task {key} of run {run_id}: interrupted ({how})", flush=True)
