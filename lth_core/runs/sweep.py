"""Sweeps: one base config and a grid (or a list) of changes to it. Every cell is an ordinary run in the
store, tagged with the sweep (the runs table's `sweep` column), so every page works on it.

    cells = plan_cells(base, [parse_grid("prune_rate=0.1,0.2"), parse_grid("reset=init,rewind:100")], trials=3)
    sweep_id = add_sweep(store, cells, executor="local")   # queued runs; jobs.ensure_worker() trains them

Everything is checked before anything is added: an unknown field, a field without values, a value out of
its range (ExperimentConfig's own checks), a combination that does not fit (hidden sizes on a conv net:
the engine's own plan, made for each distinct cell), and more than MAX_CELLS cells without `yes`.
Each cell keeps SWEEP_DOC ({"index", "cell", "axes", "name"}) and the store's EXECUTOR_DOC with it.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, fields
from typing import Any, Iterable

import pandas as pd

from lth_core.engine.config import ExperimentConfig, override_settings
from lth_core.engine.errors import ConfigError
from lth_core.runs.store import ACTIVE, EXECUTOR_DOC, RESUMABLE, RunStore, new_run_id, resolve_prefix

MAX_CELLS = 500
SWEEP_DOC = "sweep"
EXECUTORS = ("local", "ray")
# what a grid may vary: every setting but the ones the sweep itself decides (--trials) or that only say
# where to train (device)
SWEEPABLE = tuple(f.name for f in fields(ExperimentConfig) if f.name not in ("trials", "device"))
_LIST_FIELDS = ("hidden", "controls")   # a value of these is itself a list: 300/100 on the command line
DEFAULT_WORD = "default"                # a grid value meaning "the engine's default" (lr=default,0.01)


@dataclass(frozen=True)
class Axis:
    """One field of the grid and the values it takes (as typed; ExperimentConfig reads them)."""

    field: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Cell:
    """One cell: the changes to the base config, and the config they make."""

    changes: dict[str, Any]
    config: ExperimentConfig

    @property
    def label(self) -> str:
        return cell_label(self.changes)


def cell_label(changes: dict[str, Any]) -> str:
    """'prune_rate=0.1 reset=rewind:100', as the run's name and the CLI show a cell."""
    return " ".join(f"{k}={_text(v)}" for k, v in changes.items()) or "base config"


def _text(value: Any) -> str:
    if value is None:
        return DEFAULT_WORD
    if isinstance(value, (list, tuple)):
        return "/".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def parse_grid(text: str) -> Axis:
    """'FIELD=V1,V2,...' (a list field's value as 300/100, or the values as a JSON list: hidden=[[300,100],[100]])."""
    field, sep, rest = str(text).partition("=")
    field = field.strip().replace("-", "_")
    if not sep or not field:
        raise ConfigError("grid", f"expected FIELD=VALUE,VALUE,..., e.g. prune_rate=0.1,0.2,0.4; got {text!r}")
    if field not in SWEEPABLE:
        hint = " (the sweep's --trials sets it)" if field == "trials" else ""
        raise ConfigError("grid", f"unknown field {field!r}{hint}; a grid can vary {', '.join(SWEEPABLE)}")
    rest = rest.strip()
    if rest.startswith("["):
        try:
            values = json.loads(rest)
        except json.JSONDecodeError as exc:
            raise ConfigError(field, f"the grid's values are not a valid JSON list ({exc.msg})") from None
        if not isinstance(values, list):
            raise ConfigError(field, "the grid's values must be a JSON list")
    else:
        values = [v.strip() for v in rest.split(",") if v.strip()]
        if field in _LIST_FIELDS:
            values = [v.replace("/", ",") for v in values]
    return axis(field, values)


def axis(field: str, values: Iterable[Any]) -> Axis:
    """An Axis, its values checked for presence and repeats (their ranges are checked per cell)."""
    values = [None if isinstance(v, str) and v.strip().lower() == DEFAULT_WORD else v for v in values]
    if not values:
        raise ConfigError(field, f"the grid gives no values; e.g. {field}=A,B")
    seen: set[str] = set()
    for v in values:
        key = json.dumps(v, sort_keys=True, default=str)
        if key in seen:
            raise ConfigError(field, f"the grid gives the value {_text(v)} twice")
        seen.add(key)
    return Axis(field, tuple(values))


def plan_cells(base: ExperimentConfig, axes: Iterable[Axis] = (), cells: Iterable[dict[str, Any]] | None = None,
               *, trials: int | None = None, yes: bool = False, check_fit: bool = True) -> list[Cell]:
    """Every cell of the sweep, checked: the grid's product of `axes` (or the explicit list `cells`, each a
    dict of changes). Raises ConfigError naming the field (and the cell) at the first problem."""
    axes = list(axes)
    names = [a.field for a in axes]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(name, "appears twice in the grid; give all its values in one --grid")
    if cells is not None and axes:
        raise ConfigError("grid", "give a grid or a list of cells, not both")
    if cells is not None:
        changes = [dict(c) for c in cells]
        for c in changes:
            for field in c:
                if field not in SWEEPABLE:
                    raise ConfigError("cells", f"unknown field {field!r}; a cell can change {', '.join(SWEEPABLE)}")
    else:
        changes = [dict(zip(names, combo)) for combo in itertools.product(*(a.values for a in axes))]
    if not changes:
        raise ConfigError("cells", "the list of cells is empty")
    if len(changes) > MAX_CELLS and not yes:
        shape = " × ".join(str(len(a.values)) for a in axes) if axes else "listed"
        raise ConfigError("grid", f"{len(changes)} cells ({shape}) is more than {MAX_CELLS}; add --yes to run them all")
    base_settings = base.to_dict()
    if trials is not None:
        base_settings["trials"] = trials
    planned = []
    for change in changes:
        try:
            config = ExperimentConfig.from_dict(override_settings(base_settings, change))
        except ConfigError as exc:
            raise ConfigError(exc.field, f"{exc.message} (in the cell {cell_label(change)})") from None
        planned.append(Cell({k: getattr(config, k) for k in change}, config))  # as read: 0.2, not '0.2'

    if check_fit:
        check_cells_fit(planned)
    return planned


def check_cells_fit(cells: list[Cell]) -> None:
    """Plan each distinct cell as the engine will (its data, its network, its schedule): a combination that
    does not fit (hidden sizes on a conv net, a conv net on a table, a rewind point past a round) fails here,
    before anything runs, not as a failed cell later."""
    from lth_core.engine.lottery import make_plan

    seen: set[str] = set()
    for cell in cells:
        config = cell.config.replace(trials=1)  # trials do not change what fits
        key = config.config_id()
        if key in seen:
            continue
        seen.add(key)
        try:
            make_plan(config)
        except ConfigError as exc:
            raise ConfigError(exc.field, f"{exc.message} (in the cell {cell.label})") from None


# ---- sweeps in the store ----------------------------------------------------------------------------------

def add_sweep(store: RunStore, cells: list[Cell], *, executor: str = "local", name: str | None = None) -> str:
    """Add every cell as a queued run tagged with a new sweep id (returned). The cells of a 'ray' sweep are
    left alone by the background worker: the sweep's driver trains them (lth_core.runs.ray_executor)."""
    from lth_core.runs.recorder import create_run  # with the run checks' statistics: every CLI command reads this module

    if executor not in EXECUTORS:
        raise ConfigError("executor", f"must be one of {', '.join(EXECUTORS)}; got {executor!r}")
    sweep_id = "sw" + new_run_id()[:6]
    axes = list(dict.fromkeys(k for c in cells for k in c.changes))
    title = " ".join((name or f"sweep {sweep_id}").split())[:120]
    for index, cell in enumerate(cells):
        doc = {"index": index, "cell": _jsonable(cell.changes), "axes": axes, "name": title}
        create_run(store, _absolute_dataset(cell.config), f"{title} · {cell.label}", sweep=sweep_id,
                   docs={SWEEP_DOC: doc, EXECUTOR_DOC: executor})
    return sweep_id


def _absolute_dataset(config: ExperimentConfig) -> ExperimentConfig:
    from lth_core.runs.jobs import _absolute_dataset as absolute  # a file named relative to here, made absolute

    return absolute(config)


def _jsonable(changes: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()}


def resolve_sweep(store: RunStore, text: str) -> str:
    """The sweep id, given the id or a unique prefix of it."""
    return resolve_prefix(store.sweeps()["sweep"].tolist(), text, "sweep", "python -m lth_core sweep status",
                          store.path)


def sweep_cells(store: RunStore, sweep_id: str) -> pd.DataFrame:
    """The sweep's cells in grid order: list_runs' columns plus `index`, `cell` (its changes), `label`,
    `executor` and one column per axis."""
    runs = store.list_runs(sweep=sweep_id)
    docs = {r: store.doc(r, SWEEP_DOC, {}) or {} for r in runs["id"]}
    runs["index"] = [docs[r].get("index", i) for i, r in enumerate(runs["id"])]
    runs["cell"] = [docs[r].get("cell", {}) for r in runs["id"]]
    runs["label"] = runs["cell"].map(cell_label)
    runs["executor"] = [store.doc(r, EXECUTOR_DOC, "local") for r in runs["id"]]
    axes = list(dict.fromkeys(a for d in docs.values() for a in d.get("axes", [])))
    for a in axes:
        runs[a] = runs["cell"].map(lambda c, a=a: _text(c.get(a)) if a in c else "")
    runs.attrs["axes"] = axes
    runs.attrs["name"] = next((d.get("name") for d in docs.values() if d.get("name")), sweep_id)
    return runs.sort_values("index").reset_index(drop=True)


def sweep_summary(store: RunStore, sweep_id: str, at: float | None = None) -> pd.DataFrame:
    """analysis.sweep_summary.summarize_cells over the sweep's cells, in grid order: each cell's critical
    sparsity (or test accuracy at `at` weights remaining) with its interval over trials, its axis values
    and its status."""
    from lth_core.analysis.sweep_summary import summarize_cells

    cells = sweep_cells(store, sweep_id)
    table = summarize_cells(({"run_id": r["id"], "label": r["label"], "rounds": store.rounds(r["id"]),
                              "axes": {a: r[a] for a in cells.attrs["axes"]}} for _, r in cells.iterrows()), at)
    table["status"] = cells["status"].to_numpy()
    table["rounds_total"] = cells["rounds_total"].to_numpy()  # pruning rounds planned (round 0 not counted)
    table.attrs.update(cells.attrs)
    return table


def cancel_sweep(store: RunStore, sweep_id: str) -> dict[str, str]:
    """Cancel the sweep's queued and running cells (a running one stops at its next step); finished
    cells and every cell's finished rounds stay. Returns run id → status now."""
    cells = sweep_cells(store, sweep_id)
    return {r.id: store.cancel(r.id) for r in cells.itertuples() if r.status in ACTIVE}


def missing_cells(store: RunStore, sweep_id: str) -> list[str]:
    """The cells a resume trains: every one not finished and not already queued or running, oldest first."""
    cells = sweep_cells(store, sweep_id)
    return [r.id for r in cells.itertuples() if r.status in RESUMABLE]


def resume_cells(store: RunStore, sweep_id: str, executor: str) -> tuple[list[str], list[str]]:
    """Put the sweep's stopped cells back in the queue for `executor` (the cells already queued go to it too);
    finished and running cells are left as they are. Returns (requeued, already queued), in grid order;
    whoever trains them (the worker, or the Ray driver) is started by the caller."""
    cells = sweep_cells(store, sweep_id)
    stopped = set(missing_cells(store, sweep_id))
    queued = [r.id for r in cells.itertuples() if r.status == "queued"]
    requeued = [r for r in cells["id"] if r in stopped]
    set_executor(store, requeued + queued, executor)  # first: the local worker must not take a requeued Ray cell
    for run_id in requeued:
        store.requeue(run_id)
    return requeued, queued


def set_executor(store: RunStore, run_ids: Iterable[str], executor: str) -> None:
    """Who trains these cells from now on (a sweep started on Ray may be resumed here, and back)."""
    if executor not in EXECUTORS:
        raise ConfigError("executor", f"must be one of {', '.join(EXECUTORS)}; got {executor!r}")
    for run_id in run_ids:
        store.put_doc(run_id, EXECUTOR_DOC, executor)


__all__ = ["Axis", "Cell", "MAX_CELLS", "SWEEPABLE", "EXECUTORS", "parse_grid", "axis", "plan_cells", "add_sweep",
           "resolve_sweep", "sweep_cells", "sweep_summary", "cancel_sweep", "missing_cells", "resume_cells",
           "set_executor", "cell_label"]
