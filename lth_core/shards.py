"""Training a round's models as two shards, side by side in two single-thread processes.

At the paper's small batch sizes one CPU thread is nearly as fast as two (most of a step is
per-operation overhead), so the second core is better used by a second process. The split is a
function of the run's shape only — never of the machine — and the shards are also used when
training serially, so a run gives identical numbers with or without the helper process.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch

from .errors import Cancelled, TrainingFailed
from .training import EvalPoint, TrainResult, TrainSettings, train


def shard_layout(models: list[tuple[int, str]], device: torch.device) -> list[list[int]]:
    """Model indices per shard: by trial when there are several trials, else the ticket and reinit
    (which share a batch) against the random mask. One shard on a GPU or for a single model."""
    if device.type != "cpu" or len(models) < 2:
        return [list(range(len(models)))]
    trials = sorted({t for t, _ in models})
    if len(trials) >= 2:
        halves = [[m for m, (t, _) in enumerate(models) if trials.index(t) % 2 == k] for k in (0, 1)]
    else:
        cut = (len(models) + 1) // 2
        halves = [list(range(cut)), list(range(cut, len(models)))]
    return [h for h in halves if h]


@dataclass
class ShardJob:
    params: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor]
    orders: torch.Tensor
    settings: TrainSettings
    snapshot_at: int | None


def _helper_main(conn: Any, config_dict: dict[str, Any]) -> None:
    """The helper process: build the same network and data once, then train jobs until told to stop."""
    torch.set_num_threads(1)
    from .config import ExperimentConfig
    from .lottery import _to_device_data, make_plan

    plan = make_plan(ExperimentConfig.from_dict(config_dict))
    data = _to_device_data(plan.data, plan.device)
    conn.send(("ready",))
    while True:
        job = conn.recv()
        if job is None:
            return
        if job == "stop":  # a stop that arrived after its shard had finished
            continue
        try:
            run = train(plan.net, job.params, job.masks, data, job.orders, job.settings,
                        snapshot_at=job.snapshot_at, should_stop=conn.poll)  # any message means stop
            while True:
                try:
                    conn.send(("eval", next(run)))
                except StopIteration as stop:
                    result: TrainResult = stop.value
                    conn.send(("done", result.params, result.snapshot, result.seconds))
                    break
        except Cancelled:
            conn.send(("cancelled",))
        except TrainingFailed as exc:
            conn.send(("failed", str(exc)))
        except Exception as exc:  # reported to the parent as one line
            conn.send(("error", f"{type(exc).__name__}: {exc}".splitlines()[0]))


class ShardHelper:
    """A second single-thread process that trains one shard while this process trains the other."""

    def __init__(self, config_dict: dict[str, Any]) -> None:
        ctx = mp.get_context("spawn")  # fork is unsafe once torch has started threads
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_helper_main, args=(child, config_dict), daemon=True)
        self.process.start()
        child.close()
        self.ready = False

    def wait_ready(self) -> None:
        if not self.ready:
            message = self.conn.recv()
            if message[0] != "ready":
                raise RuntimeError("shard helper failed to start")
            self.ready = True

    def close(self) -> None:
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.process.join(timeout=2)
        if self.process.is_alive():
            self.process.kill()


def helper_wanted(device: torch.device) -> bool:
    """LTH_PARALLEL=1 trains the second shard in a helper process. Off by default: it pays off only
    when both cores are otherwise idle, and costs a process start (about 3 s) per run."""
    return device.type == "cpu" and (os.cpu_count() or 1) >= 2 and os.environ.get("LTH_PARALLEL", "0") == "1"


def train_shards(jobs: list[ShardJob], train_local: Callable[[ShardJob], Iterator[EvalPoint]],
                 helper: ShardHelper | None, should_stop: Callable[[], bool] | None,
                 ) -> Iterator[tuple[int, EvalPoint | TrainResult]]:
    """Yield (shard, EvalPoint) as training goes and (shard, TrainResult) when a shard ends.
    With a helper the last shard trains there, concurrently; otherwise the shards run in turn."""
    remote = jobs[-1] if helper is not None and len(jobs) > 1 else None
    if remote is not None:
        helper.wait_ready()
        helper.conn.send(remote)
    local_jobs = jobs[:-1] if remote is not None else jobs
    remote_done = remote is None
    try:
        for k, job in enumerate(local_jobs):
            run = train_local(job)
            while True:
                try:
                    point = next(run)
                except StopIteration as stop:
                    yield k, stop.value
                    break
                yield k, point
                while not remote_done and helper.conn.poll():
                    remote_done, item = _receive(helper)
                    yield len(jobs) - 1, item
        while not remote_done:
            if should_stop is not None and should_stop():
                raise Cancelled("cancelled by the user")
            if helper.conn.poll(0.05):
                remote_done, item = _receive(helper)
                yield len(jobs) - 1, item
    except BaseException:
        if not remote_done:  # stop the helper's shard so it is ready for the next run of jobs
            helper.conn.send("stop")
            while helper.conn.recv()[0] not in ("done", "cancelled", "failed", "error"):
                pass
        raise


def _receive(helper: ShardHelper) -> tuple[bool, EvalPoint | TrainResult]:
    message = helper.conn.recv()
    kind = message[0]
    if kind == "eval":
        return False, message[1]
    if kind == "done":
        return True, TrainResult(params=message[1], snapshot=message[2], seconds=message[3])
    if kind == "cancelled":
        raise Cancelled("cancelled by the user")
    if kind == "failed":
        raise TrainingFailed(message[1])
    raise RuntimeError(message[1])
