"""`python -m lth_core at-init ...`: pruning at init versus IMP (registered by cli.build_parser).

    at-init --dataset mnist-5k --arch lenet-300-100 --targets 0.2,0.07 --criteria snip,synflow --trials 2
    at-init status ID        at-init resume ID

The experiment trains in the background worker (its IMP run, then its at-init cells); without --background
this command follows it until it ends and prints the table and the summary.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from lth_core.engine.at_init import AT_INIT_CONTROLS, DEFAULT_CRITERIA, DEFAULT_TARGETS, AtInitSpec, at_init_criteria, parse_targets
from lth_core.engine.config import SCOPES
from lth_core.engine.errors import ConfigError

WATCH_EVERY_S = 1.0


def add_at_init_command(sub: Any) -> None:
    from lth_core.cli import COMMANDS, add_config_flags, add_store_flag

    text = ("pruning at initialisation versus IMP (Frankle et al. 2021): at each target the at-init criteria prune "
            "the untrained network, which then trains once, beside the IMP ticket; each with its shuffle, reinit "
            "and inverted-scores controls")
    parser = sub.add_parser("at-init", help=text, description=text[0].upper() + text[1:] + ". Every setting of `run` "
                            "sets the training (and the IMP run), as a flag or through --config.")
    parser.add_argument("action", nargs="?", choices=("status", "resume", "cancel"), help="follow up an experiment")
    parser.add_argument("experiment", nargs="?", metavar="ID", help="the experiment's run id (a unique prefix is enough)")
    parser.add_argument("--targets", metavar="F1,F2", help="fractions of weights remaining, e.g. 0.2,0.07 or 20%%,7%% "
                        f"(default: {','.join(f'{t:g}' for t in DEFAULT_TARGETS)})")
    parser.add_argument("--criteria", metavar="C1,C2", help=f"at-init criteria, from {', '.join(at_init_criteria())} "
                        f"(default: {','.join(DEFAULT_CRITERIA)})")
    parser.add_argument("--at-init-scope", choices=SCOPES, help="how the at-init methods spread a target over the "
                        "layers (default: global, as the papers do; --scope sets IMP's)")
    parser.add_argument("--name", help="the experiment's name in the store")
    parser.add_argument("--background", action="store_true", help="return once it is queued")
    add_config_flags(parser)
    add_store_flag(parser)
    COMMANDS["at-init"] = _at_init


def _at_init(args: argparse.Namespace) -> int:
    if args.action is None:
        if args.experiment is not None:
            raise ConfigError("action", f"unknown action {args.experiment!r}; use status, resume or cancel")
        return _start(args)
    if args.experiment is None:
        raise ConfigError("experiment", f"`at-init {args.action}` needs the experiment's run id")
    return {"status": _status, "resume": _resume, "cancel": _cancel}[args.action](args)


def _spec(args: argparse.Namespace) -> AtInitSpec:
    targets = parse_targets(args.targets) if args.targets is not None else DEFAULT_TARGETS
    criteria = tuple(c.strip() for c in args.criteria.split(",") if c.strip()) if args.criteria is not None else DEFAULT_CRITERIA
    controls = AT_INIT_CONTROLS
    if args.controls is not None:
        controls = tuple(c.strip() for c in args.controls.split(",") if c.strip())
    return AtInitSpec(targets, criteria, controls, args.at_init_scope or "global").validated()


def _start(args: argparse.Namespace) -> int:
    from lth_core.cli import config_from_args, open_store
    from lth_core.runs.at_init import submit

    for field, instead in (("schedule", "--targets"), ("rounds", "--targets"), ("target_remaining", "--targets"),
                           ("criterion", "--criteria")):
        if getattr(args, field, None) is not None:  # the experiment decides these: a silent override would mislead
            raise ConfigError(field, f"the experiment sets it for each method; give {instead} instead")
    spec = _spec(args)
    base = config_from_args(args)
    with open_store(args) as store:
        path = store.path
    run_id = submit(base, spec, args.name, path)
    print(f"at-init experiment {run_id}: {len(spec.targets)} target{'s' if len(spec.targets) > 1 else ''} × {len(spec.criteria)} criteri{'a' if len(spec.criteria) > 1 else 'on'}, IMP and "
          f"{base.trials} trial{'s' if base.trials > 1 else ''} each; in {path}")
    if args.background:
        print(f"queued for the background worker; follow it with: python -m lth_core at-init status {run_id}")
        return 0
    return _follow(args, run_id)


def _follow(args: argparse.Namespace, run_id: str) -> int:
    from lth_core.cli import open_store
    from lth_core.runs.at_init import task_state
    from lth_core.runs.store import ACTIVE

    last = ""
    try:
        while True:
            with open_store(args) as store:
                run = store.get_run(run_id)
                task = task_state(store, run_id)
            line = f"  IMP run: {run.status}; at-init cells: {task.state if task else 'none'}" + (
                f" ({task.progress})" if task and task.progress else "")
            if line != last:
                print(line, flush=True)
                last = line
            if run.status not in ACTIVE and (task is None or not task.active):
                break
            time.sleep(WATCH_EVERY_S)
    except KeyboardInterrupt:
        print(f"stopped watching; the experiment goes on in the background: python -m lth_core at-init status {run_id}",
              file=sys.stderr)
        return 130
    return _print(args, run_id)


def _print(args: argparse.Namespace, run_id: str) -> int:
    from lth_core.analysis.at_init_view import summary, table
    from lth_core.cli import open_store
    from lth_core.runs.at_init import points, task_state

    with open_store(args) as store:
        run = store.get_run(run_id)
        task = task_state(store, run_id)
        got = points(store, run_id)
    print(f"at-init experiment {run_id} ({run.name}): IMP run {run.status}; at-init cells "
          f"{task.state if task else 'not queued'}" + (f" ({task.error})" if task and task.error else ""))
    if got.empty:
        print("no results yet")
    else:
        print(table(got).to_string(index=False))
        print()
        for line in summary(got):
            print(line)
    done = run.status == "finished" and task is not None and task.state == "done"
    if not done and not (run.status in ("queued", "running") or (task and task.active)):
        print(f"to continue: python -m lth_core at-init resume {run_id}")
    return 0 if done or run.status in ("queued", "running") or (task and task.active) else 1


def _status(args: argparse.Namespace) -> int:
    from lth_core.cli import open_store, resolve_run

    with open_store(args) as store:
        run_id = resolve_run(store, args.experiment)
    return _print(args, run_id)


def _resume(args: argparse.Namespace) -> int:
    from lth_core.cli import open_store, resolve_run
    from lth_core.runs.at_init import resume

    with open_store(args) as store:
        run_id = resolve_run(store, args.experiment)
        path = store.path
    queued = resume(run_id, path)
    print(f"queued {' and '.join(queued)}" if queued else "nothing left to train")
    if args.background or not queued:
        return _print(args, run_id) if not queued else 0
    return _follow(args, run_id)


def _cancel(args: argparse.Namespace) -> int:
    """`at-init cancel ID`: as `cancel ID` (the IMP run and the at-init cells stop; kept cells stay)."""
    from lth_core.cli import COMMANDS

    args.run_id = args.experiment
    return COMMANDS["cancel"](args)
