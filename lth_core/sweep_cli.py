"""`python -m lth_core sweep ...`: start a sweep, and `sweep status|cancel|resume SWEEP` (registered by cli.build_parser).

    sweep --config base.json --grid prune_rate=0.1,0.2,0.4 --grid reset=init,rewind:100 --trials 3
    sweep status [SWEEP] [--at 0.05]     sweep cancel SWEEP     sweep resume SWEEP [--executor ray]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from lth_core.engine.errors import ConfigError
from lth_core.runs.store import ACTIVE, FINISHED
from lth_core.runs.sweep import EXECUTORS, MAX_CELLS, SWEEPABLE

WATCH_EVERY_S = 1.0


def add_sweep_command(sub: Any) -> None:
    from lth_core.cli import COMMANDS, add_config_flags, add_store_flag

    text = ("run a grid of settings: every cell an ordinary run in the store, tagged with the sweep; "
            "`sweep status|cancel|resume SWEEP` follow one up")
    parser = sub.add_parser("sweep", help=text, description=text[0].upper() + text[1:] + ". Every setting of `run` "
                            "is the base of the grid, as a flag or through --config.")
    parser.add_argument("action", nargs="?", choices=("status", "cancel", "resume"), help="follow up a sweep")
    parser.add_argument("sweep", nargs="?", metavar="SWEEP", help="sweep id (a unique prefix is enough)")
    parser.add_argument("--grid", action="append", metavar="FIELD=V1,V2", help="a field and its values (repeat for "
                        "more axes; a list field as 300/100, or the values as a JSON list; 'default' for the "
                        f"engine's default). Fields: {', '.join(SWEEPABLE)}")
    parser.add_argument("--cells", metavar="FILE.json", help="an explicit list of cells instead of a grid: a JSON list "
                        "of objects of changes, e.g. [{\"prune_rate\": 0.1}, {\"prune_rate\": 0.4, \"reset\": \"rewind:100\"}]")
    parser.add_argument("--executor", choices=EXECUTORS, help="local: the background worker (default); ray: one Ray "
                        "task per run (pip install -r requirements-ray.txt)")
    parser.add_argument("--ray-address", metavar="ADDRESS", help="with --executor ray: auto (the cluster `ray start` "
                        "started on this machine), HOST:PORT or ray://HOST:PORT (default: a private Ray instance here)")
    parser.add_argument("--yes", action="store_true", help=f"allow more than {MAX_CELLS} cells")
    parser.add_argument("--name", help="the sweep's name (its cells are named NAME · FIELD=VALUE ...)")
    parser.add_argument("--background", action="store_true", help="local executor: return once the cells are queued")
    parser.add_argument("--at", type=float, metavar="FRACTION", help="summarise each cell by the ticket's test accuracy "
                        "at this fraction of weights remaining (default: the fewest weights at which it still matches dense)")
    add_config_flags(parser)
    add_store_flag(parser)
    COMMANDS["sweep"] = _sweep


def _sweep(args: argparse.Namespace) -> int:
    if args.at is not None and not 0 < args.at <= 1:
        raise ConfigError("at", f"must be a fraction of weights remaining in (0, 1]; got {args.at}")
    if args.action is None:
        if args.sweep is not None:
            raise ConfigError("sweep", f"unknown action {args.sweep!r}; use status, cancel or resume")
        return _start(args)
    return {"status": _status, "cancel": _cancel, "resume": _resume}[args.action](args)


def _start(args: argparse.Namespace) -> int:
    from lth_core.cli import config_from_args, open_store
    from lth_core.runs.sweep import add_sweep, parse_grid, plan_cells

    executor = args.executor or "local"
    if args.ray_address and executor != "ray":
        raise ConfigError("ray_address", "applies to --executor ray only")
    if args.background and executor == "ray":
        raise ConfigError("background", "a Ray sweep is driven from this process: it records every cell's events "
                                        "into the store; leave --background out")
    base = config_from_args(args)
    grid = args.grid
    if not grid and not args.cells and args.preset:  # a preset with a grid is a sweep of its own (presets.py)
        from lth_core.engine.presets import PRESETS
        grid = PRESETS[args.preset].grid_args()
    axes = [parse_grid(g) for g in grid or []]
    cells = _read_cells(args.cells) if args.cells else None
    if not axes and cells is None:
        raise ConfigError("grid", "give at least one --grid FIELD=VALUES, e.g. --grid prune_rate=0.1,0.2 "
                                  "(or --cells FILE.json)")
    planned = plan_cells(base, axes, cells, yes=args.yes)
    if executor == "ray":
        from lth_core.runs.ray_executor import connect
        connect(args.ray_address)  # an unreachable cluster fails here, before any cell is added
    store = open_store(args)
    sweep_id = add_sweep(store, planned, executor=executor, name=args.name)
    shape = " × ".join(f"{len(a.values)} {a.field}" for a in axes) if axes else "listed"
    trials = planned[0].config.trials
    print(f"sweep {sweep_id}: {len(planned)} cells ({shape}), {trials} trial{'s' if trials > 1 else ''} each, "
          f"on {executor}; in {store.path}")
    return _train(store, sweep_id, executor, args)


def _read_cells(path: str) -> list[dict]:
    from lth_core.cli import MAX_CONFIG_BYTES

    try:
        raw = Path(path).read_bytes()[:MAX_CONFIG_BYTES + 1]
        data = json.loads(raw.decode("utf-8"))
    except OSError as exc:
        raise ConfigError("cells", f"cannot read {path} ({exc.strerror or exc})") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError("cells", f"{path} is not valid JSON ({exc})") from None
    if not isinstance(data, list) or not all(isinstance(c, dict) for c in data):
        raise ConfigError("cells", f"{path} must hold a JSON list of objects, one per cell")
    return data


def _train(store, sweep_id: str, executor: str, args: argparse.Namespace, run_ids: list[str] | None = None) -> int:
    """Train the sweep's queued (or the given) cells on `executor`, print each as it ends, then the summary."""
    from lth_core.runs.sweep import sweep_cells

    cells = sweep_cells(store, sweep_id)
    labels = dict(zip(cells["id"], cells["label"]))
    ids = run_ids if run_ids is not None else [r.id for r in cells.itertuples() if r.status == "queued"]

    def ended(run_id: str, status: str) -> None:
        print(f"  {run_id}  {status:<11} {labels.get(run_id, '')}", flush=True)

    if executor == "ray":
        from lth_core.runs.ray_executor import run_cells
        try:
            run_cells(store, ids, address=args.ray_address, on_end=ended)
        except KeyboardInterrupt:
            print(f"stopped: the running cells are interrupted, the rest stay queued; continue with: "
                  f"python -m lth_core sweep resume {sweep_id} --executor ray", file=sys.stderr)
            return 130
    else:
        from lth_core.runs import jobs
        jobs.ensure_worker(store.path)
        if args.background:
            print(f"queued for the background worker; follow it with: python -m lth_core sweep status {sweep_id}")
            return 0
        try:
            _watch(store, sweep_id, set(ids), ended)
        except KeyboardInterrupt:
            print(f"stopped watching; the cells go on training in the background: python -m lth_core sweep status "
                  f"{sweep_id} (or sweep cancel {sweep_id})", file=sys.stderr)
            return 130
    return _print_summary(store, sweep_id, args.at)


def _watch(store, sweep_id: str, ids: set[str], ended) -> None:
    from lth_core.runs.sweep import sweep_cells

    pending = set(ids)
    while pending:
        cells = sweep_cells(store, sweep_id)
        for r in cells.itertuples():
            if r.id in pending and r.status not in ACTIVE:
                pending.discard(r.id)
                ended(r.id, r.status)
        pending &= set(cells["id"])  # a cell deleted meanwhile
        if pending:
            time.sleep(WATCH_EVERY_S)


def _print_summary(store, sweep_id: str, at: float | None) -> int:
    from lth_core.analysis.statistics import pct, spread_words
    from lth_core.analysis.sweep_summary import FEWEST, best_cell_sentence
    from lth_core.runs.sweep import sweep_summary

    table = sweep_summary(store, sweep_id, at)
    metric = table["metric"].iloc[0] if not table.empty else FEWEST
    how = ("the last measured round of the mean over trials still within; in brackets each trial's own: "
           if metric == FEWEST else "mean over trials; in brackets ")
    print(f"sweep {sweep_id} ({table.attrs.get('name', sweep_id)}): {len(table)} cells; the ticket's {metric} "
          f"({how}the two trials with 2, the 95 % CI from 3)")
    print(f"{'id':<8}  {'status':<11} {'rounds':>6}  {metric:>24}  cell")
    for r in table.itertuples():
        value = "" if r.value != r.value else ("≤ " if r.upper_bound else "") + pct(r.value)
        if value and r.low == r.low:
            value += f" ({spread_words(r.low, r.high, int(r.trials))})"
        print(f"{r.run_id:<8}  {r.status:<11} {r.rounds_done:>6}  {value:>24}  {r.label}")
    print(best_cell_sentence(table))
    bad = table[~table["status"].isin([FINISHED, *ACTIVE])]
    if len(bad):
        print(f"{len(bad)} cell{'s' if len(bad) > 1 else ''} did not finish; continue with: python -m lth_core "
              f"sweep resume {sweep_id}")
        return 1
    return 0


def _status(args: argparse.Namespace) -> int:
    from lth_core.cli import open_store
    from lth_core.runs.sweep import resolve_sweep

    store = open_store(args)
    if args.sweep is None:
        sweeps = store.sweeps()
        if sweeps.empty:
            print("(no sweeps yet: start one with `sweep --grid FIELD=VALUES ...`)")
            return 0
        print(f"{'sweep':<8}  {'cells':>5}  {'finished':>8}  {'active':>6}  {'stopped':>7}  created (UTC)")
        for r in sweeps.itertuples():
            active = int(r.queued or 0) + int(r.running or 0)
            stopped = int(r.cells) - active - int(r.finished or 0)
            print(f"{r.sweep:<8}  {r.cells:>5}  {int(r.finished or 0):>8}  {active:>6}  {stopped:>7}  "
                  f"{r.created_at[:16].replace('T', ' ')}")
        return 0
    _print_summary(store, resolve_sweep(store, args.sweep), args.at)
    return 0


def _cancel(args: argparse.Namespace) -> int:
    from lth_core.cli import open_store
    from lth_core.runs.sweep import cancel_sweep, resolve_sweep, sweep_cells

    store = open_store(args)
    sweep_id = resolve_sweep(store, _need_id(args))
    asked = cancel_sweep(store, sweep_id)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # a running cell stops at its next training step
        now = sweep_cells(store, sweep_id)
        if not now[now["id"].isin(list(asked))]["status"].isin(["running"]).any():
            break
        time.sleep(0.2)
    now = sweep_cells(store, sweep_id)
    counts = now[now["id"].isin(list(asked))]["status"].value_counts().to_dict()
    print(f"sweep {sweep_id}: {len(asked)} queued or running cell{'s' if len(asked) != 1 else ''} cancelled"
          + (f" ({', '.join(f'{n} {s}' for s, n in counts.items())})" if counts else "")
          + "; finished cells and finished rounds stay")
    return 0


def _resume(args: argparse.Namespace) -> int:
    from lth_core.cli import open_store
    from lth_core.runs.sweep import resolve_sweep, resume_cells, sweep_cells

    store = open_store(args)
    sweep_id = resolve_sweep(store, _need_id(args))
    cells = sweep_cells(store, sweep_id)
    executor = args.executor or (cells["executor"].iloc[0] if len(cells) else "local")
    if executor == "ray":
        from lth_core.runs.ray_executor import connect
        connect(args.ray_address)
    stopped, queued = resume_cells(store, sweep_id, executor)
    todo = [r for r in cells["id"] if r in set(stopped) | set(queued)]  # grid order
    if not todo:
        print(f"sweep {sweep_id}: nothing to resume (every cell is finished or running)")
        return _print_summary(store, sweep_id, args.at)
    print(f"sweep {sweep_id}: resuming {len(todo)} cell{'s' if len(todo) > 1 else ''} on {executor} "
          f"({len(stopped)} stopped, {len(queued)} queued); {len(cells) - len(todo)} left as they are")
    return _train(store, sweep_id, executor, args, todo)


def _need_id(args: argparse.Namespace) -> str:
    if not args.sweep:
        raise ConfigError("sweep", f"`sweep {args.action}` needs a sweep id (see `python -m lth_core sweep status`)")
    return args.sweep


__all__ = ["add_sweep_command"]
