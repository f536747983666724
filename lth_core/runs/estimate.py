"""How much work a config is, and how long it will take on this machine, from the click to the end.

The time models what a run started from the app really goes through, each part measured here:

- start-up, as the worker (`runs/worker.py`) really starts a run. With no scheduler serving the store,
  one starts (Python and the CLI's imports), then its forkserver (Python and RUN_PRELOAD: PyTorch and the
  engine), which forks the run's process. With a scheduler already running, its forkserver
  is warm: the run waits for the scheduler's next poll and a fork. Both are timed in a child process that
  does what a scheduler does (`startup_probe`, redone every few minutes); which one applies is decided
  by whether a scheduler is running (`worker_running`). Then the run process loads its dataset, timed here.
- every round: its training steps, timed by running the engine's own training loop (`training.train`) on
  the round's stacked models, with the thread count the run will use (conv nets keep 2 threads whatever
  the load); its evaluations (validation and test, in full, at every evaluation point); and its
  bookkeeping: everything else the run does for the round (each variant's start weights, a fresh init
  for reinit, the hashes of every start, the numpy copies of weights and masks, pruning the tickets, the
  sanity checks and the round's commit to the store). That is timed by running the engine's own round
  (`run_experiment`, one iteration per round, a dense and a pruned round with the run's trials, variants
  and criterion) through the run's `Recorder` into a throw-away store, less the time its training and
  evaluation took; the end of that run (closing it, giving back the checkpoints' pages) is timed with it.

Steps are averaged, not the fastest one kept: on a busy machine a few slow steps make up much of a
round, and the run meets the same machine. Nothing here can foresee load that starts later.
"""
from __future__ import annotations

import heapq
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from lth_core.engine.config import ExperimentConfig
from lth_core.engine.data import load_dataset
from lth_core.engine.cpu import CpuWatch, adaptive_threads, choose_threads, fixed_threads
from lth_core.engine.errors import Cancelled, ConfigError
from lth_core.engine.events import RoundCommitted, RoundFinished, RunFailed, RunFinished, RunStarted
from lth_core.runs import tasks
from lth_core.runs.jobs import scheduler_pid
from lth_core.runs.recorder import Recorder, claim, create_run
from lth_core.runs.store import CLAIMED_DOC, QUEUED, RUNNING, RunInfo, RunStore, default_store_path
from lth_core.runs.tasks import Task
from lth_core.runs.worker import PACKAGE_ROOT, POLL_S, worker_count
from lth_core.engine.lottery import Plan, _to_device_data, batch_order, generator, make_plan, run_experiment
from lth_core.engine.training import DeviceData, eval_iterations, evaluate, torch_threads, train

WARMUP_STEPS = 2           # first steps allocate and pick kernels: not timed
MIN_TIMED_STEPS = 3        # steps averaged per round shape: at least this many ...
STEP_TIMING_S = 0.3        # ... and for at least this long (a few ms of steps read a passing hiccup as the pace) ...
MAX_TIMED_STEPS = 300      # ... but no more than this many
EVAL_TIMING_S = 0.15       # evaluation points are repeated for this long (at least one, at most MAX_EVALS)
MAX_EVALS = 20
CLOCK_KEY = "estimate.{}"  # the store setting that keeps a run's RunClock


@dataclass(frozen=True)
class RunEstimate:
    rounds: int                  # pruning rounds after the dense round 0
    trainings: int               # networks trained in all (dense + every variant of every round, × trials)
    iterations_per_round: int
    weights: int                 # prunable weights of one network
    final_remaining: float       # planned fraction of weights left after the last round
    seconds: float               # wall time from pressing Run to the run's end: the sum of the parts below
    startup_seconds: float = 0.0  # process starts, imports and the dataset load
    train_seconds: float = 0.0    # training steps of all rounds
    eval_seconds: float = 0.0     # evaluations (validation + test at every evaluation point) of all rounds
    write_seconds: float = 0.0    # the bookkeeping of all rounds (start weights, pruning, checks, store commits) and the run's end
    round_seconds: tuple[float, ...] = ()  # each round (0 … rounds): training + evaluation + its bookkeeping (the last: + the end)
    worker_warm: bool = False     # a scheduler was running: the run is forked from its warm forkserver

    def describe(self) -> str:
        return (f"{self.trainings} trainings of {self.iterations_per_round} iterations "
                f"({self.rounds} pruning round{'' if self.rounds == 1 else 's'}, down to {100 * self.final_remaining:.1f} % of {self.weights:,} weights), "
                f"about {format_seconds(self.seconds)}")

    def breakdown(self) -> str:
        """Where the time goes, e.g. 'start-up 6 s, training 20 s, evaluation 9 s, pruning and saving 1 s'."""
        parts = [("start-up", self.startup_seconds), ("training", self.train_seconds),
                 ("evaluation", self.eval_seconds), ("pruning and saving", self.write_seconds)]
        return ", ".join(f"{name} {format_seconds(s)}" for name, s in parts if s >= 0.5)



@dataclass(frozen=True)
class RunClock:
    """A run's estimate as saved when it was submitted (or resumed), to tell on Live run how long it has
    been going and how long it has left. Kept in the store's settings under `estimate.<run id>`, so the
    store's schema is untouched."""

    estimate: RunEstimate
    submitted: float        # time.time() at submit (or resume)
    from_round: int = 0     # the first round this submission trains (a resumed run skips finished ones)
    ahead: int = 0          # runs training or queued before it when it was submitted (queue_ahead)
    ahead_tasks: int = 0    # background tasks training then (they held worker slots too)

    @property
    def seconds(self) -> float:
        """The estimate of this submission: start-up and the rounds still to train."""
        return self.estimate.startup_seconds + sum(self._rounds()[self.from_round:])

    def _rounds(self) -> list[float]:
        e = self.estimate
        return list(e.round_seconds) or [(e.seconds - e.startup_seconds) / (e.rounds + 1)] * (e.rounds + 1)

    def seconds_left(self, now: float, rounds_done: int, iteration_fraction: float,
                     training_since: float | None, started: float | None = None) -> float:
        """Time still to come. `training_since`: when the run got past its start-up (None: not yet); from then
        on the rounds left are scaled by how fast the rounds went so far against the estimate. `started`: when
        a worker took it from the queue (default: when it was submitted), where its start-up begins."""
        rounds = self._rounds()
        if training_since is None:
            began = self.submitted if started is None else started
            return sum(rounds[self.from_round:]) + max(0.0, self.estimate.startup_seconds - (now - began))
        current = rounds[rounds_done] * min(1.0, max(0.0, iteration_fraction)) if rounds_done < len(rounds) else 0.0
        done = sum(rounds[self.from_round:rounds_done]) + current
        left = max(0.0, sum(rounds[rounds_done:]) - current)
        spent = now - training_since
        if done > 1.0 and done > 0.1 * sum(rounds[self.from_round:]) and spent > 0:
            left *= min(10.0, max(0.2, spent / done))  # the pace so far: the machine's load tends to last
        return left

    def to_json(self) -> str:
        return json.dumps({"estimate": asdict(self.estimate), "submitted": self.submitted, "from_round": self.from_round,
                           "ahead": self.ahead, "ahead_tasks": self.ahead_tasks})

    @classmethod
    def from_json(cls, text: str) -> "RunClock":
        d = json.loads(text)
        e = dict(d["estimate"], round_seconds=tuple(d["estimate"].get("round_seconds", ())))
        fields = RunEstimate.__dataclass_fields__
        return cls(RunEstimate(**{k: v for k, v in e.items() if k in fields}), float(d["submitted"]),
                   int(d.get("from_round", 0)), int(d.get("ahead", 0)), int(d.get("ahead_tasks", 0)))

    @property
    def waited(self) -> bool:
        """Whether it had runs or tasks ahead of it when submitted (so it waited for a worker)."""
        return bool(self.ahead or self.ahead_tasks)


def save_clock(store: RunStore, run_id: str, estimate: RunEstimate, *, from_round: int = 0) -> RunClock:
    """Remember `estimate` for the run just submitted (or resumed at `from_round`), timed from now, with the
    number of runs and background tasks ahead of it."""
    ahead = queue_ahead(store, run_id)
    clock = RunClock(estimate, time.time(), from_round, ahead.runs, ahead.tasks)
    store.set_setting(CLOCK_KEY.format(run_id), clock.to_json())
    return clock


def saved_clock(store: RunStore, run_id: str) -> RunClock | None:
    """The clock saved for `run_id`, or None (a run started from the CLI or Python, or before this existed)."""
    text = store.setting(CLOCK_KEY.format(run_id))
    if not text:
        return None
    try:
        return RunClock.from_json(text)
    except (ValueError, KeyError, TypeError):
        return None


def claimed_at(store: RunStore, run: RunInfo, clock: RunClock) -> float | None:
    """When a worker took the run (as submitted or resumed with `clock`) from the queue; None while it waits, or
    for a run claimed before this was stamped."""
    at = store.doc(run.id, CLAIMED_DOC)
    return float(at) if isinstance(at, (int, float)) and at >= clock.submitted - 1 and run.status != QUEUED else None


def began_at(store: RunStore, run: RunInfo, clock: RunClock) -> float:
    """When the run's own time began: when a worker took it from the queue if it was submitted behind other runs or
    tasks (`clock.waited`), else when it was submitted (the time to its claim is then a cold scheduler's start,
    which its estimated start-up counts)."""
    claimed = claimed_at(store, run, clock) if clock.waited else None
    return clock.submitted if claimed is None else claimed


def time_left(store: RunStore, run: RunInfo, clock: RunClock, now: float) -> float:
    """Seconds until `run` (submitted or resumed with `clock`) ends, not counting any wait in the queue: all of
    its estimate while queued; then its start-up left (from `began_at`) and its rounds left, at the pace of the
    rounds so far."""
    if run.status == QUEUED:
        return clock.seconds
    began = began_at(store, run, clock)
    since = None  # when the run got past its start-up
    if run.round is not None:
        first = iso_epoch(run.started_at) if clock.from_round == 0 else None
        since = first if first and first >= began - 1 else began + clock.estimate.startup_seconds
    in_round = (run.iteration or 0) / run.iterations if run.round is not None and run.iterations else 0.0
    return clock.seconds_left(now, run.rounds_done, in_round, since, started=began)


@dataclass(frozen=True)
class QueueAhead:
    """What a run waits for: the runs and background tasks (runs/tasks.py) that hold the worker's `workers` slots
    and the runs queued before it. The scheduler (runs/worker.py) gives a free slot to the queued runs first, in
    the order they came, and to a queued task only when no run waits: a queued task is never ahead of a run."""

    runs: int          # runs ahead of it
    seconds: float     # until a worker is free for it, from the time left of what is ahead
    unclocked: int     # runs and tasks ahead whose time left is unknown (a run with no saved estimate, submitted
                       # from the CLI or Python; a task with neither an estimate nor a part done): not in `seconds`
    tasks: int = 0     # background tasks ahead of it (those training now)

    @property
    def count(self) -> int:
        """Runs and tasks ahead of it."""
        return self.runs + self.tasks


def task_time_left(task: Task, now: float) -> float | None:
    """Seconds until a running task ends: at the pace of its work so far, where it tells the part done
    (`Task.share_done`); else what is left of its estimate (`Task.estimate_s`); None where neither says it
    (or it has run past its estimate)."""
    began = iso_epoch(task.started_at)
    if began is None:
        return task.estimate_s
    spent = max(0.0, now - began)
    if task.share_done:
        return spent * (1 - task.share_done) / task.share_done
    if task.estimate_s is not None and spent < task.estimate_s:
        return task.estimate_s - spent
    return None


def queue_ahead(store: RunStore, run_id: str | None = None, now: float | None = None) -> QueueAhead:
    """What run `run_id` (queued) waits for, or a run submitted now (`run_id` None): the runs and tasks training
    (they hold worker slots) and the runs queued before it, as the scheduler orders them. A running run counts its
    time left, a running task its own (`task_time_left`), a queued run its whole estimate; each takes the worker
    slot that frees first."""
    now = time.time() if now is None else now
    queued = store.run_ids(QUEUED, local=True)
    if run_id is not None:
        if run_id not in queued:
            return QueueAhead(0, 0.0, 0)
        queued = queued[:queued.index(run_id)]
    slots = [0.0] * worker_count(store)  # when each worker is next free, from now
    running = store.run_ids(RUNNING, local=True)
    tasks.recover(store)  # a task whose process is gone holds no slot (the scheduler looks so too)
    busy = tasks.all_tasks(store, tasks.RUNNING)
    if len(running) + len(busy) + len(queued) < len(slots):
        return QueueAhead(0, 0.0, 0)  # a worker is free for it: it waits for nobody
    lefts: list[float | None] = [task_time_left(t, now) for t in busy]
    for rid in [*running, *queued]:
        clock = saved_clock(store, rid)
        lefts.append(None if clock is None else time_left(store, store.get_run(rid), clock, now))
    for left in lefts:
        heapq.heappush(slots, heapq.heappop(slots) + (left or 0.0))  # it takes the worker that frees first
    return QueueAhead(len(running) + len(queued), slots[0], sum(left is None for left in lefts), len(busy))


def ahead_words(runs: int, background: int) -> str:
    """'2 runs', '1 background task', '1 run and 2 background tasks'."""
    said = [f"{n} {word}{'' if n == 1 else 's'}" for n, word in ((runs, "run"), (background, "background task")) if n]
    return " and ".join(said)


def describe_wait(ahead: QueueAhead) -> str:
    """'1 run and 1 background task ahead of it: starts in about 8 min', '' when none."""
    count = ahead.count
    if not count:
        return ""
    what = f"{ahead_words(ahead.runs, ahead.tasks)} ahead of it"
    if ahead.unclocked == count:
        if not ahead.tasks:
            return f"{what} (started outside the app, with no estimate): it starts when {'it ends' if count == 1 else 'they end'}"
        return (f"{what}, with no estimate of {'its' if count == 1 else 'their'} time left: it starts when "
                f"{'that ends' if count == 1 else 'they end'}")
    unknown = f" ({ahead.unclocked} with no estimate: later if {'it runs' if ahead.unclocked == 1 else 'they run'} long)" if ahead.unclocked else ""
    return f"{what}: starts in about {format_seconds(ahead.seconds)}{unknown}"


def iso_epoch(iso: str | None) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp() if iso else None
    except ValueError:
        return None


def format_seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def format_elapsed(seconds: float) -> str:
    """A clock reading: '45 s', '1 min 05 s', '2 h 03 min'."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


# ---- start-up ---------------------------------------------------------------------------------------

# What a scheduler does before its first run trains, in a child process: the imports of
# `python -m lth_core worker`, then its forkserver (worker.run_processes, preloading RUN_PRELOAD) forks a run
# process, then a second one from the now warm forkserver. The stamps are CLOCK_MONOTONIC, shared by all
# processes, so the parent reads the child's start-up from them. They go out on a descriptor of their own:
# the forkserver inherits stdout and outlives the probe by a while (its PyTorch teardown), and the parent
# would wait for that.
_PROBE = """
import os, time
import lth_core.cli
from lth_core.runs import worker
stamps = [time.monotonic()]
out = os.dup(1)
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
context = worker.run_processes()
worker.warm_up()
for _ in range(2):
    process = context.Process(target=os.getpid)
    process.start()
    process.join()
    stamps.append(time.monotonic())
os.write(out, " ".join(map(str, stamps)).encode())
os._exit(0)  # the stamps are all that is needed: skip tearing down PyTorch (seconds on a busy machine)
"""


@dataclass(frozen=True)
class StartupProbe:
    scheduler: float   # a new scheduler process: Python and the imports of `python -m lth_core worker`
    forkserver: float  # its forkserver: Python and RUN_PRELOAD, until the first run process has run
    fork: float        # a run process forked from a forkserver already warm

    def seconds(self, warm: bool) -> float:
        """From submit until the run's process begins (its dataset load not included). Warm: the running
        scheduler notices the queued run at its next poll (half a poll on average) and forks it. Cold: the
        scheduler starts, finds the run at once, and waits for its new forkserver's preload."""
        return POLL_S / 2 + self.fork if warm else self.scheduler + self.forkserver


PROBE_KEEP_S = 300.0  # a probe is redone after this long: the machine's load changes
FALLBACK = StartupProbe(scheduler=2.5, forkserver=3.5, fork=0.05)  # a 2-core laptop, if the probe fails


class Remembered(dict):
    """Measurements of this machine by key, each kept for PROBE_KEEP_S: {key: (time.monotonic() of the measuring,
    what it measured)}. The start-up probe and the bookkeeping timings are both remembered so."""

    def fresh(self, key: object) -> Any | None:
        """What was measured for `key` less than PROBE_KEEP_S ago, else None."""
        at, value = self.get(key, (None, None))
        return value if at is not None and time.monotonic() - at < PROBE_KEEP_S else None

    def keep(self, key: object, value: Any) -> Any:
        """Remember `value` for `key` from now (and forget what is stale); returns it."""
        now = time.monotonic()
        self[key] = (now, value)
        for stale in [k for k, (at, _) in self.items() if now - at >= PROBE_KEEP_S]:
            del self[stale]
        return value


_probed = Remembered()  # "startup" → the probe


def startup_probe() -> StartupProbe:
    """How long a scheduler, its forkserver and a warm fork take here, measured in a child process (the
    parent's imports are done, so they cannot be timed here) and remembered for a few minutes."""
    if (known := _probed.fresh("startup")) is not None:
        return known
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_ROOT), *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]])
    started = time.monotonic()
    # in a session of its own, so that its forkserver, left behind, is killed with it: its PyTorch teardown
    # would keep a core busy for a second or two and slow the steps the next estimate times (seen: 8×)
    child = None
    try:
        child = subprocess.Popen([sys.executable, "-c", _PROBE], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        out, _ = child.communicate(timeout=120)
        if child.returncode:
            raise subprocess.CalledProcessError(child.returncode, "startup probe")
        imported, first, second = (float(x) for x in out.split()[-3:])
        probe = StartupProbe(imported - started, first - imported, second - first)
    except (subprocess.SubprocessError, OSError, ValueError):
        probe = FALLBACK
    finally:
        if child is not None:
            _kill_group(child)
    return _probed.keep("startup", probe)


def _kill_group(child: subprocess.Popen) -> None:
    """SIGKILL the process group of `child` (a session leader): it and whatever it left running."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    child.wait()


def worker_running(store_path: Path | str | None = None) -> bool:
    """Whether a scheduler serves the store now (so a run submitted now is forked from its warm forkserver)."""
    return scheduler_pid(store_path) is not None


def load_seconds(dataset: str, seed: int = 0, label_col: str | None = None) -> float:
    """Seconds to load and split `dataset`, timed here: a file is read again; a built-in set's parsed
    arrays come from the disk cache there, a small part of its load."""
    started = time.perf_counter()
    load_dataset(dataset, seed=seed, label_col=label_col)
    return time.perf_counter() - started


# ---- rounds ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RoundCost:
    per_step: float   # seconds of one training step of all the round's models
    per_eval: float   # seconds of one evaluation point (validation + test, all models)


def time_round(plan: Plan, data: DeviceData, models: int, groups: int) -> RoundCost:
    """Run the engine's training loop on `models` stacked models (in `groups` data orders) for a few
    tenths of a second, and a full evaluation point a few times, and time them (means)."""
    net, s = plan.net, plan.settings
    inits = [net.init_params(generator(0, m, "estimate")) for m in range(models)]
    params = {n: torch.stack([p[n] for p in inits]) for n in inits[0]}
    masks = {spec.name: torch.ones((models, *spec.shape), dtype=torch.bool) for spec in net.prunable}
    steps = WARMUP_STEPS + MAX_TIMED_STEPS
    orders = torch.stack([batch_order(data.x_train.shape[0], s.batch_size, steps + 1, generator(0, g, "estimate"))
                          for g in range(groups)])
    stamps: list[float] = []  # the clock after every step

    def after_step() -> bool:  # train() asks this after every step; True stops it (before step steps + 1)
        stamps.append(time.perf_counter())
        timed = len(stamps) - WARMUP_STEPS
        return timed >= MAX_TIMED_STEPS or (timed >= MIN_TIMED_STEPS and stamps[-1] - stamps[WARMUP_STEPS - 1] >= STEP_TIMING_S)

    # steps + 1 iterations, evaluation only at the end (never reached): evaluation is timed apart below
    settings = replace(s, iterations=steps + 1, eval_every=steps + 1)
    try:
        for _ in train(net, params, masks, data, orders, settings, should_stop=after_step):
            pass
    except Cancelled:
        pass
    timed = stamps[WARMUP_STEPS - 1:]
    per_step = (timed[-1] - timed[0]) / (len(timed) - 1)

    # one evaluation point exactly as train() makes it: validation and test in one pass, all models
    buffers = net.new_buffers(models, plan.device)
    eval_x, eval_y = torch.cat([data.x_val, data.x_test]), torch.cat([data.y_val, data.y_test])
    for rows in chunk_sizes(eval_x.shape[0], net.eval_chunk):
        # warm-up, once per chunk shape: a conv net's first call of a shape builds its kernels, which the run
        # does once, not at each of its evaluation points (timed in, it overestimated conv nets' evaluation)
        evaluate(net, params, buffers, eval_x[:rows], eval_y[:rows])
    splits = (data.x_val.shape[0], data.x_test.shape[0])
    started = now = time.perf_counter()
    evals = 0
    while evals < MAX_EVALS and (evals == 0 or now - started < EVAL_TIMING_S):
        evaluate(net, params, buffers, eval_x, eval_y, splits=splits)
        evals += 1
        now = time.perf_counter()
    return RoundCost(per_step, (now - started) / evals)


def chunk_sizes(rows: int, chunk: int) -> list[int]:
    """The distinct sizes of the chunks `training.evaluate` cuts `rows` examples into."""
    return sorted({min(chunk, rows - start) for start in range(0, rows, chunk)}, reverse=True)


@dataclass(frozen=True)
class Bookkeeping:
    """What a run spends besides training steps and evaluations, measured by `time_bookkeeping`."""

    dense_round: float   # round 0: its bookkeeping, plus the run's first steps (data to tensors, the inits)
    pruned_round: float  # a pruned round: every variant's start, the numpy copies, pruning, checks, the commit
    end: float           # closing the run in the store (and giving back its checkpoints' pages)


_booked = Remembered()  # probe config (JSON) → its Bookkeeping


def time_bookkeeping(config: ExperimentConfig, rounds: int, store_path: Path | str | None = None) -> Bookkeeping:
    """Run the engine's own rounds on `config`'s shapes, one iteration each (round 0 and, if the run has
    pruned rounds (`rounds`), one pruned round), through the run's Recorder into a throw-away store, and time
    each round less what its training and evaluation took (the RoundFinished events' seconds). Remembered
    for a few minutes by what it depends on: settings of training alone (epochs, learning rate, rounds)
    change nothing here, so the form does not redo it when they change. The throw-away store lies beside the
    store at `store_path` (default: the usual one), on the disk the run will write to."""
    # one iteration per round (a rewind point inside it); the same trials, variants, criterion, scope and reset
    reset = "rewind:1" if config.rewind_iteration else config.reset
    probe = config.replace(iterations=1, epochs=None, eval_every=1, warmup=0, reset=reset, rounds=min(rounds, 1),
                           target_remaining=None, lr=None, lr_schedule="constant")
    key = probe.to_json()
    if (known := _booked.fresh(key)) is not None:
        return known
    trained: dict[int, float] = {}
    stamps: dict[object, float] = {}
    beside = Path(store_path).expanduser().absolute().parent if store_path else default_store_path().parent
    beside.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lth-estimate-", dir=beside) as tmp, \
            RunStore(Path(tmp) / "runs.sqlite") as store:
        run_id = create_run(store, probe)
        recorder = Recorder(store, run_id, claim(store, run_id))
        for event in run_experiment(probe):
            recorder.add(event)
            now = time.perf_counter()
            if isinstance(event, RunStarted):
                stamps["start"] = now
            elif isinstance(event, RoundFinished):
                trained[event.round] = trained.get(event.round, 0.0) + event.train_seconds + event.eval_seconds
            elif isinstance(event, RoundCommitted):
                stamps[event.round] = now
            elif isinstance(event, RunFinished):
                stamps["end"] = now
            elif isinstance(event, RunFailed):
                raise ConfigError("config", f"the run cannot train: {event.reason}")
    last = max(trained)
    dense = stamps[0] - stamps["start"] - trained[0]
    pruned = stamps[1] - stamps[0] - trained[1] if last else dense
    return _booked.keep(key, Bookkeeping(max(0.0, dense), max(0.0, pruned), max(0.0, stamps["end"] - stamps[last])))


def estimate_run(config: ExperimentConfig, *, startup: bool = True, warm: bool | None = None,
                 store_path: Path | str | None = None, threads: int | None = None) -> RunEstimate:
    """Count the trainings and time the run's parts (see the module's note). Raises ConfigError like
    run_experiment. `startup=False` leaves out the process starts (a run trained in this process).
    `warm`: whether a scheduler serves the store, so the run is forked from its warm forkserver; None:
    look now, in the store at `store_path` (default: the usual one). `threads`: the thread count the steps
    are timed with, for work that does not choose it as run_experiment does (an at-init cell keeps 2)."""
    plan = make_plan(config)
    cfg, net, s = plan.config, plan.net, plan.settings
    pruned_models = cfg.trials * len(cfg.variants)
    trainings = cfg.trials + plan.rounds * pruned_models
    data = _to_device_data(plan.data, plan.device)
    evals = len(eval_iterations(s.iterations, s.eval_every))

    cpu = plan.device.type == "cpu"
    if threads is not None:
        pass
    elif not cpu:
        threads = torch.get_num_threads()
    elif not net.image_like and adaptive_threads():
        threads = choose_threads(CpuWatch().others_busy())  # as the run chooses before each round
    else:
        threads = fixed_threads()  # conv nets: fixed, whatever the load (their numbers depend on it)
    with torch_threads(threads):
        dense = time_round(plan, data, cfg.trials, cfg.trials)
        pruned = time_round(plan, data, pruned_models, cfg.trials) if plan.rounds else dense
    shapes = [(dense, cfg.trials)] + [(pruned, pruned_models)] * plan.rounds
    train_s = sum(c.per_step * s.iterations for c, _ in shapes)
    eval_s = sum(c.per_eval * evals for c, _ in shapes)
    book = time_bookkeeping(cfg, plan.rounds, store_path)
    books = [book.dense_round] + [book.pruned_round] * plan.rounds
    books[-1] += book.end
    write_s = sum(books)
    round_seconds = tuple(c.per_step * s.iterations + c.per_eval * evals + b for (c, _), b in zip(shapes, books))
    startup_s = 0.0
    if startup:
        warm = worker_running(store_path) if warm is None else warm
        startup_s = startup_probe().seconds(warm) + load_seconds(cfg.dataset, cfg.seed, cfg.label_col)
    total = startup_s + train_s + eval_s + write_s
    return RunEstimate(plan.rounds, trainings, s.iterations, net.num_weights(), plan.planned_remaining[-1], total,
                       startup_s, train_s, eval_s, write_s, round_seconds, worker_warm=bool(startup and warm))
