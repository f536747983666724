"""The experiment "pruning at init versus IMP" in the store (engine/at_init.py does the science).

One experiment is one ordinary iterative lottery run (the IMP ticket and its controls, down to the lowest
target: every page works on it) that carries the experiment's spec as its document SPEC_DOC, and a task of
kind "at-init" on that run (tasks.py: the background worker does it, as a run) that trains the at-init
cells. Each finished cell is its own document CELL_PREFIX + "<target>/<criterion>", so a resumed
experiment trains only the cells still missing, and the run resumes after its last finished round.

    run_id = submit(ExperimentConfig(epochs=2, trials=2), AtInitSpec(targets=(0.2, 0.05)))
    points(store, run_id)     # one row per (method, target, trial, variant): the figure's and summary's input
    estimate(base, spec).seconds  # from Start to the last cell, as New experiment estimates a run
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lth_core.engine.at_init import (IMP, AtInitSpec, Cell, cell_config, cell_rows, cells, check_criteria_fit, imp_config,
                                    imp_rounds, run_cell)
from lth_core.engine.config import ExperimentConfig
from lth_core.engine.cpu import fixed_threads
from lth_core.engine.errors import Cancelled, ConfigError
from lth_core.engine.lottery import make_plan
from lth_core.runs import tasks
from lth_core.runs.estimate import (RunEstimate, estimate_run, format_seconds, load_seconds, save_clock, startup_probe,
                                    time_bookkeeping)
from lth_core.runs.store import ACTIVE, RESUMABLE, RunStore, StoreError

SPEC_DOC = "at-init"
CELL_PREFIX = "at-init/cell/"
TASK = "at-init"
POINT_COLUMNS = ["method", "target", "round", "trial", "variant", "weights_remaining", "test_accuracy",
                 "early_stop_test_accuracy"]


def submit(base: ExperimentConfig, spec: AtInitSpec, name: str | None = None,
           store_path: Path | str | None = None, estimated: "AtInitEstimate | None" = None) -> str:
    """Check everything (the spec, the config against its data, every criterion against the network), then
    queue the experiment: its IMP run and its at-init task. Returns the run id; ConfigError naming the field
    before anything is queued. `estimated` (`estimate(base, spec)`, as the page shows it) is kept with the run and
    the task, so that Live run times the IMP run and a run queued behind either is told its wait."""
    from lth_core.runs.jobs import _absolute_dataset, ensure_worker
    from lth_core.runs.recorder import create_run

    spec = spec.validated()
    imp = _absolute_dataset(imp_config(base.validated(), spec))
    plan = make_plan(imp)  # the config fits its data, and every target is reachable
    cells(plan, spec)
    check_criteria_fit(imp, spec)
    title = name or (f"at init vs IMP · {imp.arch} on {imp.dataset} · "
                     f"{', '.join(f'{t:.3g}' for t in sorted(spec.targets, reverse=True))}")
    with RunStore(store_path) as store:
        run_id = create_run(store, imp, title, docs={SPEC_DOC: spec.to_dict()})
        tasks.submit(store, run_id, TASK, 0, 0, estimate_s=estimated.cells_seconds if estimated else None)
        if estimated is not None:
            save_clock(store, run_id, estimated.imp)
    ensure_worker(store_path)
    return run_id


@dataclass(frozen=True)
class AtInitEstimate:
    """How long an experiment takes from Start to its last cell: the IMP run as New experiment estimates it
    (the worker's start included), then its task, which the worker starts once that run is done (one run or
    task at a time, by default), and which trains each cell once."""

    imp: RunEstimate
    cells: int
    trainings: int         # the IMP run's and the cells' (each cell: trials × the method and its controls)
    cells_seconds: float   # the task's start and every cell: its data load, training, evaluation and bookkeeping

    @property
    def seconds(self) -> float:
        return self.imp.seconds + self.cells_seconds

    def describe(self) -> str:
        return f"{self.trainings} trainings, about {format_seconds(self.seconds)}"

    def breakdown(self) -> str:
        """e.g. 'the IMP run 40 s (start-up 6 s, training 30 s, …); 4 at-init cells 25 s'."""
        imp = f"the IMP run {format_seconds(self.imp.seconds)}" + (f" ({self.imp.breakdown()})" if self.imp.breakdown() else "")
        return f"{imp}; {self.cells} at-init cell{'' if self.cells == 1 else 's'} {format_seconds(self.cells_seconds)}"


def estimate(base: ExperimentConfig, spec: AtInitSpec, *, warm: bool | None = None,
             store_path: Path | str | None = None) -> AtInitEstimate:
    """Estimate the experiment `submit(base, spec)` starts, from the same parts as a run's estimate
    (runs/estimate.py): the IMP run's `estimate_run`, and for each cell the pruned round of its one-shot
    config (its steps and evaluations timed once, as every cell trains the same models; its bookkeeping
    timed with the cell's criterion) and its data load. ConfigError as `submit` raises it."""
    spec = spec.validated()
    imp = imp_config(base.validated(), spec)
    run = estimate_run(imp, warm=warm, store_path=store_path)
    todo = cells(make_plan(imp), spec)
    first = cell_config(imp, spec, todo[0].criterion, todo[0].fraction)
    # round 1 is the cell: trials × variants trained once, with the fixed threads run_cell trains with
    one = estimate_run(first, startup=False, store_path=store_path, threads=fixed_threads())
    book = time_bookkeeping(first, one.rounds, store_path)  # remembered: the one `one` counted
    trains = one.round_seconds[-1] - book.pruned_round - book.end
    load = load_seconds(imp.dataset, imp.seed, imp.label_col)
    cells_s = startup_probe().seconds(warm=True) + load  # the task's process, forked by the running worker
    for cell in todo:
        one_cell = cell_config(imp, spec, cell.criterion, cell.fraction)
        cells_s += load + trains + time_bookkeeping(one_cell, 1, store_path).pruned_round
    models = imp.trials * len(first.variants)
    return AtInitEstimate(run, len(todo), run.trainings + len(todo) * models, cells_s)


def spec_of(store: RunStore, run_id: str) -> AtInitSpec | None:
    doc = store.doc(run_id, SPEC_DOC)
    return None if doc is None else AtInitSpec.from_dict(doc)


def require(store: RunStore, run_id: str) -> AtInitSpec:
    """The experiment's spec; StoreError if the run is not a pruning-at-init experiment."""
    spec = spec_of(store, run_id)
    if spec is None:
        raise StoreError(f"run {run_id} is not a pruning-at-init experiment")
    return spec


def experiments(store: RunStore) -> list[str]:
    """The ids of the runs that are at-init experiments, newest first."""
    ids = list(dict.fromkeys(r for r, k, _ in store.docs_of_all_runs(SPEC_DOC) if k == SPEC_DOC))
    return ids[::-1]


def planned_cells(store: RunStore, run_id: str) -> list[Cell]:
    return cells(make_plan(store.get_run(run_id).config), require(store, run_id))


def run_task(store: RunStore, run_id: str, round: int, trial: int, args: dict[str, Any], progress) -> None:
    """The task's work: train every cell not yet kept, keeping each as soon as it is done."""
    spec = spec_of(store, run_id)
    imp = store.get_run(run_id).config
    todo = [c for c in planned_cells(store, run_id) if store.doc(run_id, CELL_PREFIX + c.key) is None]
    total = len(spec.targets) * len(spec.criteria)
    should_stop = tasks.should_stop_of(progress)
    for i, cell in enumerate(todo):
        # the part done counts this attempt's cells only: its pace (a run queued behind it is told its wait from
        # it) is timed from this attempt's start
        tasks.say(progress, f"cell {total - len(todo) + i + 1} of {total}: {cell.criterion} pruned at init to "
                  f"{100 * cell.fraction:.3g} % of weights, training", i / len(todo))
        try:
            finished = run_cell(imp, spec, cell, should_stop)
        except Cancelled:  # the cell being trained is dropped; the cells kept before it stay
            raise tasks.TaskCancelled() from None
        store.put_doc(run_id, CELL_PREFIX + cell.key, {"cell": cell.__dict__, "rows": cell_rows(cell, finished)})


def cancel(run_id: str, store_path: Path | str | None = None) -> list[str]:
    """Stop the experiment: its IMP run and its at-init task, each at once if queued, else at its next training
    step (within about a second). Finished rounds and kept cells stay; `resume` trains only what is missing.
    Returns what was asked to stop, in words."""
    with RunStore(store_path) as store:
        require(store, run_id)
        task = task_state(store, run_id)
        stop = {"the IMP run": lambda: store.cancel(run_id) if store.get_run(run_id).status in ACTIVE else None,
                "the at-init cells": lambda: tasks.cancel(store, run_id, task.key) if task and task.active else None}
        return [what for what, ask in stop.items() if ask() is not None]


def resume(run_id: str, store_path: Path | str | None = None) -> list[str]:
    """Queue what is left of the experiment: the IMP run after its last finished round (if it stopped) and
    the cells not yet kept (if its task is not queued or running). Returns what was queued, in words."""
    from lth_core.runs.jobs import ensure_worker

    queued = []
    with RunStore(store_path) as store:
        require(store, run_id)
        if store.get_run(run_id).status in RESUMABLE:
            store.requeue(run_id)
            queued.append("the IMP run")
        task = tasks.get(store, run_id, tasks.task_key(TASK, 0, 0))
        planned = planned_cells(store, run_id)
        missing = [c for c in planned if store.doc(run_id, CELL_PREFIX + c.key) is None]
        if missing and (task is None or task.state not in ACTIVE):
            # the estimate made at Start, for the cells still missing: a run queued behind them is told its wait
            left = task.estimate_s * len(missing) / len(planned) if task and task.estimate_s else None
            tasks.submit(store, run_id, TASK, 0, 0, estimate_s=left)
            queued.append(f"{len(missing)} at-init cells")
    if queued:
        ensure_worker(store_path)
    return queued


def task_state(store: RunStore, run_id: str) -> tasks.Task | None:
    return tasks.get(store, run_id, tasks.task_key(TASK, 0, 0))


def points(store: RunStore, run_id: str) -> pd.DataFrame:
    """POINT_COLUMNS: the IMP run's rounds that meet the targets (method IMP) and every kept cell's rows,
    both with their controls; `round` is the IMP round a target maps to (the x every method shares)."""
    spec = require(store, run_id)
    run = store.get_run(run_id)
    rounds_of = imp_rounds(make_plan(run.config), spec.targets)
    frames = []
    rounds = store.rounds(run_id)
    for target, rnd in rounds_of.items():
        got = rounds[rounds["round"] == rnd]
        if len(got):
            frames.append(got.assign(method=IMP, target=target))
    rows = [row for doc in store.docs(run_id, CELL_PREFIX).values() for row in doc["rows"]]
    if rows:
        cell = pd.DataFrame(rows)
        cell["round"] = cell["target"].map(rounds_of)
        frames.append(cell)
    if not frames:
        return pd.DataFrame(columns=POINT_COLUMNS)
    table = pd.concat([f[POINT_COLUMNS] for f in frames], ignore_index=True)
    order = {m: i for i, m in enumerate((IMP, *spec.criteria))}
    return table.sort_values(["target", "method", "trial"], key=lambda s: s.map(order) if s.name == "method" else
                             (-s if s.name == "target" else s), kind="stable").reset_index(drop=True)


def dense_accuracy(store: RunStore, run_id: str) -> pd.Series:
    """The dense network's test accuracy per trial (the IMP run's round 0)."""
    rounds = store.rounds(run_id)
    return rounds[(rounds["round"] == 0) & (rounds["variant"] == "ticket")].set_index("trial")["test_accuracy"]


__all__ = ["SPEC_DOC", "CELL_PREFIX", "TASK", "submit", "estimate", "AtInitEstimate", "spec_of", "experiments",
           "planned_cells", "run_task", "cancel", "resume", "task_state", "points", "dense_accuracy", "ConfigError"]
