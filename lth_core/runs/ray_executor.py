"""The Ray executor: a sweep's cells trained as Ray tasks, one task per run, recorded by the driver.

Each task runs the engine (`run_experiment`) on whatever machine Ray picks and streams its events back
as a Ray streaming generator; the driver (this process) writes them into the store through the same
Recorder the background worker uses. So the workers never need the store file, and a cluster without a
shared disk works; a cell run on Ray equals the same cell run here (same config, same seed: the engine's
numbers do not depend on the machine's load).

Ray is optional (requirements-ray.txt): nothing else in lth_core imports this module's `ray`, and
without it `--executor ray` is a ConfigError saying how to install it.

A cancelled cell (`sweep cancel`, `cancel ID`) has its task cancelled and ends 'cancelled'; a task whose
worker dies ends its cell 'interrupted' (its finished rounds stay); the other cells go on. Ctrl-C stops
the running cells as 'interrupted' and leaves the others queued: `sweep resume` continues.
"""
from __future__ import annotations

import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

from lth_core.engine.config import ExperimentConfig
from lth_core.engine.errors import ConfigError
from lth_core.engine.events import Checkpoint
from lth_core.runs.recorder import Recorder, claim
from lth_core.runs.store import ACTIVE, CANCELLED, FAILED, INTERRUPTED, QUEUED, Reason, RunLost, RunStore, StoreError

INSTALL_HINT = "pip install -r requirements-ray.txt (ray==2.60.0)"
WORKER_DOC = "ray/worker"       # where a cell's task runs: {"host", "pid"}, written when it starts
MAX_SLOTS = 256                 # cells in flight at once, at most (else one per CPU of the cluster)
PACKAGE = Path(__file__).resolve().parent.parent


def import_ray():
    """Ray, or a ConfigError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError("executor", f"ray is not installed in this Python; install it with: {INSTALL_HINT} "
                                      "(or use --executor local)") from None
    return ray


def connect(address: str | None = None, *, num_cpus: int | None = None):
    """Join the Ray cluster at `address` ('auto': the one started on this machine by `ray start`; HOST:PORT;
    ray://HOST:PORT), or with None / 'local' start a private one on loopback, dashboard off. Returns ray."""
    local = address in (None, "", "local")
    if not local:
        _use_cluster_token()  # before ray is imported: it reads the mode then
    ray = import_ray()
    if ray.is_initialized():
        return ray
    try:
        if local:
            # the workers are children of this process: they see this package where it sees it
            path = os.pathsep.join(p for p in (str(PACKAGE.parent), os.environ.get("PYTHONPATH", "")) if p)
            ray.init(address="local", include_dashboard=False, num_cpus=num_cpus, log_to_driver=False,
                     _node_ip_address="127.0.0.1", configure_logging=False,
                     runtime_env={"env_vars": {"PYTHONPATH": path}})
        else:
            # the cluster's machines get this package's code from here; they need its dependencies installed
            ray.init(address=address, log_to_driver=False, configure_logging=False,
                     runtime_env={"py_modules": [str(PACKAGE)], "excludes": ["__pycache__"]})
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise ConfigError("ray_address", f"cannot use the Ray cluster at {address!r} "
                                         f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                                         "start one with `ray start --head`, or leave --ray-address out for a "
                                         "local one") from None
    return ray


def _use_cluster_token() -> None:
    """Ray (2.60) sends its auth token to a cluster named by `auto`, but to HOST:PORT only with
    RAY_AUTH_MODE=token set when ray is imported: set it where a token is at hand and the user chose no mode."""
    token_file = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", "~/.ray/auth_token")).expanduser()
    if "RAY_AUTH_MODE" not in os.environ and (os.environ.get("RAY_AUTH_TOKEN") or token_file.is_file()):
        os.environ["RAY_AUTH_MODE"] = "token"


def upload_files(config: ExperimentConfig) -> dict[str, bytes] | None:
    """The folder of an uploaded dataset (`upload:NAME`: its files and meta.json), to ship with the task: a
    cluster's machines do not have this machine's uploads. None for any other dataset."""
    from lth_core.engine.uploads import datasets_dir

    prefix, sep, name = config.dataset.partition(":")
    folder = datasets_dir() / name.strip()
    if not sep or prefix.strip().lower() != "upload" or not (folder / "meta.json").is_file():
        return None
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")}


def _place_upload(dataset: str, files: dict[str, bytes]) -> None:
    """Put a shipped upload where `upload:NAME` is read, unless it is there; read_upload then checks its hash."""
    from lth_core.engine.uploads import datasets_dir

    name = dataset.partition(":")[2].strip()
    folder = datasets_dir() / name
    if (folder / "meta.json").is_file() or "/" in name or name in ("", ".", ".."):
        return
    staging = datasets_dir() / f".incoming-{name}-{os.getpid()}"
    staging.mkdir(parents=True, exist_ok=True)
    for file_name, data in files.items():
        (staging / Path(file_name).name).write_bytes(data)
    try:
        os.rename(staging, folder)  # whole or not at all; another task may have placed it meanwhile
    except OSError:
        for p in staging.iterdir():
            p.unlink()
        staging.rmdir()


def train_cell(config: dict[str, Any], resume: Checkpoint | None,
               files: dict[str, bytes] | None = None) -> Iterator[object]:
    """The Ray task: where it runs, then every event of the run (continued after `resume`'s round).
    `files`: the uploaded dataset's folder (upload_files), placed on this machine first if it lacks it."""
    from lth_core.engine.lottery import run_experiment  # lth_core's __init__ sets MKL's reproducible mode first

    yield {"host": socket.gethostname(), "pid": os.getpid()}
    if files:
        _place_upload(config["dataset"], files)
    yield from run_experiment(ExperimentConfig.from_dict(config), resume=resume)


def run_cells(store: RunStore, run_ids: list[str], *, address: str | None = None, num_cpus: int | None = None,
              on_end: Callable[[str, str], None] | None = None, stop: threading.Event | None = None) -> dict[str, str]:
    """Train the queued cells `run_ids` (a stopped one is requeued first, to continue) on Ray, as many at once as the
    cluster has CPUs; record each into `store`. `on_end(run_id, status)` is called as each one ends. Set
    `stop` (or press Ctrl-C) to stop: running cells end 'interrupted', the others stay as they are.
    Returns run id → final status."""
    ray = connect(address, num_cpus=num_cpus)
    task = ray.remote(num_cpus=1, max_retries=0)(train_cell)
    stop = stop or threading.Event()
    slots = max(1, min(MAX_SLOTS, len(run_ids), int(ray.cluster_resources().get("CPU", 1))))
    results: dict[str, str] = {}

    def one(run_id: str) -> None:
        if stop.is_set():
            return
        try:
            status = _drive(ray, task, store, run_id, stop)
        except StoreError as exc:  # cancelled or deleted before its turn came, or an unreadable row
            status = store.run_state(run_id)[1] if store.run_state(run_id) else "lost"
            if status == QUEUED and not isinstance(exc, RunLost):
                status = f"not started: {exc}"
        results[run_id] = status
        if on_end is not None:
            on_end(run_id, status)

    pool = ThreadPoolExecutor(slots, thread_name_prefix="lth-ray-cell")
    try:
        futures = [pool.submit(one, r) for r in run_ids]
        for f in futures:
            while not f.done():  # a wait with a timeout, so Ctrl-C reaches this thread
                try:
                    f.result(timeout=0.5)
                except TimeoutError:
                    pass
            f.result()
    except KeyboardInterrupt:
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return results


def _drive(ray, task, store: RunStore, run_id: str, stop: threading.Event) -> str:
    """Claim one cell, run its task, record its events; returns its final status."""
    attempt = claim(store, run_id, pid=os.getpid())  # queued only (a cancelled cell stays so); this process answers for it
    rec = Recorder(store, run_id, attempt)
    info = store.get_run(run_id)
    resume = store.checkpoint(run_id) if info.rounds_done else None
    rec.start_watch()
    stream = task.remote(info.config.to_dict(), resume, upload_files(info.config))
    done = threading.Event()

    def cancel_when_asked() -> None:  # a cancel request (seen by the Recorder's watch) or Ctrl-C stop the task
        while not done.wait(0.2):
            if rec.should_stop() or stop.is_set():
                if stop.is_set():
                    rec.stop("signal")
                ray.cancel(stream)
                return

    watcher = threading.Thread(target=cancel_when_asked, name=f"lth-ray-cancel-{run_id}", daemon=True)
    watcher.start()
    try:
        for ref in stream:
            item = ray.get(ref)
            if isinstance(item, dict):
                store.put_doc(run_id, WORKER_DOC, item)
            else:
                rec.add(item)
        state = store.run_state(run_id)
        if state is not None and state[1] in ACTIVE:
            # the stream ended without the run's last event: Ray may end a cancelled task's stream quietly
            if rec.stop_reason is None:
                rec.end_quietly(INTERRUPTED, Reason.WORKER_DIED, "the Ray task ended before its run did")
            elif _end_stopped(rec):
                return "lost"
    except RunLost:
        return "lost"
    except ray.exceptions.RayError as exc:
        if rec.stop_reason is not None or isinstance(exc, ray.exceptions.TaskCancelledError):
            # a stop was asked: however Ray ends the task then (cancelled, or its worker killed while a busy
            # machine let it finish its step), the cell ends as that stop
            if _end_stopped(rec):
                return "lost"
        elif isinstance(exc, ray.exceptions.RayTaskError):  # the task raised: a config that does not fit its data, say
            cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else exc
            if isinstance(cause, ConfigError):
                rec.end_quietly(FAILED, Reason.FAILED_CONFIG, str(cause))
            else:
                rec.end_quietly(FAILED, Reason.INTERNAL_ERROR, f"{type(cause).__name__}: {cause}")
        else:  # its worker or node died: resumable
            rec.end_quietly(INTERRUPTED, Reason.WORKER_DIED, f"the Ray worker stopped unexpectedly ({type(exc).__name__})")
    finally:
        done.set()
        watcher.join()
        rec.stop_watch()
    state = store.run_state(run_id)
    return state[1] if state else "lost"


def _end_stopped(rec: Recorder) -> bool:
    """End a cell whose stop was asked as that stop; True if it was lost (another process answers for it)."""
    if rec.stop_reason == "lost":
        return True
    rec.end_quietly(*((INTERRUPTED, Reason.STOPPED_BY_SIGNAL) if rec.stop_reason == "signal"
                      else (CANCELLED, Reason.CANCELLED_BY_USER)))
    return False



__all__ = ["INSTALL_HINT", "import_ray", "connect", "run_cells", "train_cell"]
