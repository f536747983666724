"""Submitting, cancelling and resuming runs that train in the background.

    from lth_core import jobs
    run_id = jobs.submit(ExperimentConfig(rounds=5))   # returns at once; the run is 'queued'
    jobs.cancel(run_id)                                # stops within about a second; its rounds stay
    jobs.resume(run_id)                                # continues after its last finished round
    jobs.submit_deploy(run_id)                         # the deployment bench of its recommended ticket, queued

The run trains in a worker process (lth_core.runs.worker) that outlives the caller: a Streamlit rerun,
a reload or a closed browser tab do not stop it. Progress and results are read from the RunStore.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from lth_core.engine.config import ExperimentConfig
from lth_core.engine.errors import ConfigError
from lth_core.runs import tasks
from lth_core.runs.recorder import create_run, requeue
from lth_core.runs.procs import process_token
from lth_core.runs.store import RunStore, StoreError, default_store_path
from lth_core.runs.worker import SchedulerLock, log_path, spawn, worker_count

__all__ = ["submit", "cancel", "resume", "submit_deploy", "submit_export", "submit_sensitivity", "ensure_worker", "scheduler_pid", "workers",
           "set_workers"]


def _path(store_path: Path | str | None) -> Path:
    return Path(store_path).expanduser().absolute() if store_path else default_store_path().absolute()


def submit(config: ExperimentConfig | dict[str, Any], name: str | None = None,
           store_path: Path | str | None = None) -> str:
    """Queue a run of `config` and make sure a worker will start it; returns the run id at once.
    Raises ConfigError for a bad config (problems that need the data show up as a 'failed' run)."""
    config = config if isinstance(config, ExperimentConfig) else ExperimentConfig.from_dict(config)
    config = _absolute_dataset(config.validated())
    with RunStore(store_path) as store:
        run_id = create_run(store, config, name)
    ensure_worker(store_path)
    return run_id


def cancel(run_id: str, store_path: Path | str | None = None) -> str:
    """Cancel a run: a queued (or interrupted) one at once, a running one at its next training step
    (within about a second); its finished rounds stay. Returns the status now in the store."""
    with RunStore(store_path) as store:
        return store.cancel(run_id)


def resume(run_id: str, store_path: Path | str | None = None) -> str:
    """Queue an interrupted, cancelled or failed run to continue after its last finished round; the
    result equals that of a run never stopped. Returns the run id."""
    with RunStore(store_path) as store:
        requeue(store, run_id)
    ensure_worker(store_path)
    return run_id


def submit_task(kind: str, run_id: str, round: int | None = None, trial: int | None = None,
                args: dict[str, Any] | None = None, store_path: Path | str | None = None) -> str:
    """Queue work of `kind` (tasks.TASK_KINDS) on the ticket of (`round`, default: the recommended one;
    `trial`, default 0) of a run, and make sure a worker will do it; returns the task's key at once.
    ConfigError naming `round` or `trial` when the run has no such finished ticket."""
    from lth_core.analysis.deploy_bench import choose_ticket

    with RunStore(store_path) as store:
        store.get_run(run_id)  # StoreError when there is no such run
        rnd, trial, _ = choose_ticket(store.rounds(run_id), round, trial, run_id)
        key = tasks.submit(store, run_id, kind, rnd, trial, args)
    ensure_worker(store_path)
    return key


def submit_deploy(run_id: str, round: int | None = None, trial: int | None = None, *, repeats: int | None = None,
                  threads: int | None = None, store_path: Path | str | None = None) -> str:
    """Queue the deployment bench of a run's ticket; its result is kept as the run's document
    "deploy/<round>/<trial>" (DeployBench.to_dict()). Returns the task's key ("task/deploy/<round>/<trial>")."""
    for name, value in (("repeats", repeats), ("threads", threads)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000):
            raise ConfigError(name, f"must be a whole number from 1 to 10000; got {value!r}")
    return submit_task("deploy", run_id, round, trial, {"repeats": repeats, "threads": threads}, store_path)


def submit_export(run_id: str, round: int | None = None, trial: int | None = None,
                  store_path: Path | str | None = None) -> str:
    """Queue the export of a run's ticket (exports.export_ticket, into tasks.export_folder); the files are
    listed in the run's document "export/<round>/<trial>". Returns the task's key."""
    return submit_task("export", run_id, round, trial, None, store_path)


def submit_sensitivity(run_id: str, trial: int = 0, sparsities: tuple[float, ...] | None = None,
                       finetune_steps: int | None = None, store_path: Path | str | None = None) -> str:
    """Queue the per-layer sensitivity of a run's dense network (trial `trial`); it is kept as the run's document
    "sensitivity/0/<trial>", layer by layer, and a stopped one resumes where it stopped. Returns the task's key.
    ConfigError naming the field for bad settings, or a run whose round 0 has not finished."""
    from lth_core.engine.sensitivity import SensitivityConfig
    from lth_core.runs.sensitivity import check_source

    config = SensitivityConfig(**{k: v for k, v in (("sparsities", sparsities), ("finetune_steps", finetune_steps))
                                  if v is not None}).validated()
    with RunStore(store_path) as store:
        store.get_run(run_id)  # StoreError when there is no such run
        check_source(store, run_id, trial)
        key = tasks.submit(store, run_id, "sensitivity", 0, trial, config.to_dict())
    ensure_worker(store_path)
    return key


def ensure_worker(store_path: Path | str | None = None) -> bool:
    """Start the store's scheduler, detached, unless one is running. True if one was started.
    The app may call this on start-up, so runs queued while no scheduler ran get going."""
    path = _path(store_path)
    lock = SchedulerLock(path)
    if not lock.acquire():
        holder = lock.recorded_pid()
        if holder is not None and process_token(holder) is not None:
            return False  # a live scheduler serves the store (or one is being started)
        # the holder is dead but not yet gone: a killed process keeps its files until its last thread exits
        if not lock.acquire(wait_s=3.0):
            return False
    try:  # the new scheduler inherits the lock itself: no window in which a second one could start
        proc = spawn(["--store-path", str(path), "--lock-fd", str(lock.fd)], log=log_path(path), detach=True,
                     pass_fds=(lock.fd,))
        lock.write_pid(proc.pid)
    finally:
        lock.release()
    # reap it when it exits, so a long-lived caller (the Streamlit server) collects no zombies
    threading.Thread(target=proc.wait, name="lth-scheduler-reaper", daemon=True).start()
    return True


def scheduler_pid(store_path: Path | str | None = None) -> int | None:
    """The pid of the scheduler serving the store, or None when none is running."""
    return SchedulerLock(_path(store_path)).holder()


def workers(store_path: Path | str | None = None) -> int:
    """How many runs train at once (LTH_WORKERS, else the store's setting, else 1)."""
    with RunStore(store_path) as store:
        return worker_count(store)


def set_workers(count: int, store_path: Path | str | None = None) -> None:
    """Store how many runs may train at once (LTH_WORKERS, when set, still wins). Takes effect at once."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 64:
        raise StoreError(f"workers must be a whole number from 1 to 64; got {count!r}")
    with RunStore(store_path) as store:
        store.set_setting("workers", str(count))


def _absolute_dataset(config: ExperimentConfig) -> ExperimentConfig:
    """A dataset file given relative to the caller's folder, made absolute: the worker runs elsewhere."""
    from lth_core.engine.data import FILE_FORMATS

    prefix, sep, rest = config.dataset.partition(":")
    formats = {key.split(":")[0] for key in FILE_FORMATS}
    if not sep or prefix.strip().lower() not in formats or not rest.strip():
        return config
    path = Path(rest.strip()).expanduser()
    return config if path.is_absolute() else config.replace(dataset=f"{prefix}:{path.absolute()}")
