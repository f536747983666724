"""`python -m lth_core sensitivity (--run ID | config flags) [--sparsities 50,70,...] [--finetune-steps N]`.

Each layer of a dense network pruned alone (lth_core.engine.sensitivity). With --run it measures that run's dense
network (round 0); with config flags it first trains and stores a dense network of that config (a run of round 0
only), then measures it. Either way the result is kept with the run ("sensitivity/0/<trial>"), layer by layer, so
`show ID` and the app show it and a stopped measurement resumes where it stopped.
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import fields
from typing import Any

from lth_core.engine.config import ExperimentConfig
from lth_core.engine.errors import ConfigError
from lth_core.engine.sensitivity import (DEFAULT_FINETUNE_STEPS, DEFAULT_SPARSITIES, DEFAULT_TOLERANCE, SensitivityConfig,
                                         parse_sparsities)


def add_sensitivity_command(sub: Any) -> None:
    """Registered by cli.build_parser."""
    from lth_core.cli import COMMANDS, add_config_flags, add_store_flag

    text = "prune each layer of a dense network alone to a series of sparsities, with and without a short fine-tune"
    parser = sub.add_parser("sensitivity", help=text, description=text[0].upper() + text[1:] + ": --run ID measures "
                            "that run's dense network (round 0); config flags train one first and keep it as a run. "
                            "The result is kept with the run (`show ID` prints it; the app's Masks page draws it).")
    parser.add_argument("--run", metavar="ID", help="a stored run (a unique prefix is enough) whose dense network to "
                        "measure; instead of config flags")
    parser.add_argument("--trial", type=int, default=0, metavar="T", help="the trial's dense network (default: 0)")
    parser.add_argument("--sparsities", metavar="PCT,...", help="sparsities each layer is pruned to, in percent "
                        f"(default: {','.join(f'{100 * s:g}' for s in DEFAULT_SPARSITIES)})")
    parser.add_argument("--finetune-steps", type=int, default=None, metavar="N", help="fine-tune iterations after "
                        f"each prune, the mask held; 0 for none (default: {DEFAULT_FINETUNE_STEPS})")
    parser.add_argument("--tolerance", type=float, default=None, metavar="P", help="points of validation accuracy a "
                        f"layer may lose for the suggested rates (default: {DEFAULT_TOLERANCE:g})")
    parser.add_argument("--background", action="store_true", help="queue it in the background worker and return "
                        "at once (with --run)")
    parser.add_argument("--name", help="the stored dense run's name, with config flags")
    add_config_flags(parser)
    add_store_flag(parser)
    COMMANDS["sensitivity"] = _sensitivity


def _tolerance(value: float | None) -> float:
    if value is None:
        return DEFAULT_TOLERANCE
    if math.isnan(value) or not 0 <= value <= 100:
        raise ConfigError("tolerance", f"must be between 0 and 100 points; got {value:g}")
    return value


def _config_flags_given(args: argparse.Namespace) -> bool:
    return any(getattr(args, f.name, None) is not None for f in fields(ExperimentConfig)) or bool(args.config or args.preset)


def _sensitivity(args: argparse.Namespace) -> int:
    from lth_core.analysis.sensitivity_view import suggestion_rounds, table_text
    from lth_core.cli import config_from_args, open_store, record_run, resolve_run
    from lth_core.runs import sensitivity as S

    raw = {"sparsities": parse_sparsities(args.sparsities), "finetune_steps": args.finetune_steps}
    config = SensitivityConfig(**{k: v for k, v in raw.items() if v is not None}).validated()
    tolerance = _tolerance(args.tolerance)
    flags = _config_flags_given(args)
    if args.run is not None and flags:
        raise ConfigError("run", "give --run ID or config flags (a dense network to train first), not both")
    if args.run is None and not flags:
        raise ConfigError("run", "give --run ID, or config flags (e.g. --dataset mnist-5k --arch lenet-300-100) to "
                                 "train a dense network first")
    store = open_store(args)
    rounds = None
    if args.run is not None:
        if args.name is not None:
            raise ConfigError("name", "names the dense run trained from config flags; leave it out with --run")
        run_id = resolve_run(store, args.run)
        S.check_source(store, run_id, args.trial)
    else:
        experiment = config_from_args(args)
        rounds = experiment.num_rounds_requested
        dense = experiment.replace(rounds=0, target_remaining=None, controls=())
        if args.trial >= dense.trials:
            raise ConfigError("trial", f"must be from 0 to {dense.trials - 1} (trials {dense.trials}); got {args.trial}")
        if args.background:
            raise ConfigError("background", "queues a stored run's measurement; train the dense network first "
                                            "(without --background), or give --run ID")
        from lth_core.runs.progress import ProgressPrinter

        args.name = args.name or f"dense {dense.arch} on {dense.dataset} (for sensitivity)"
        progress = ProgressPrinter()
        ids: list[str] = []
        ended = record_run(args, dense, progress.update, ids)
        progress.close()
        run_id = ids[0]
        if ended != "finished":
            print(f"error: the dense network's run {run_id} {ended}: {store.get_run(run_id).error or ''}".rstrip(": "),
                  file=sys.stderr)
            return 1
    if args.background:
        from lth_core.runs import jobs

        key = jobs.submit_sensitivity(run_id, args.trial, config.sparsities, config.finetune_steps, store.path)
        from lth_core.runs.tasks import task_id

        print(f"queued the per-layer sensitivity of run {run_id}, trial {args.trial} ({task_id(run_id, key)}); it is kept with the run "
              f"as {S.doc_key(args.trial)}: see `show {run_id}` or the app's Masks page")
        return 0
    result = S.measure(store, run_id, args.trial, config, progress=lambda text: print(text + "...", file=sys.stderr))
    if rounds is None:
        rounds = store.get_run(run_id).config.num_rounds_requested
    print(table_text(result, suggestion_rounds({"rounds": rounds}), tolerance))
    print(f"kept with run {run_id} as {S.doc_key(args.trial)}")
    return 0


def print_stored(store, run_id: str) -> None:
    """`show ID`: every kept sensitivity measurement of the run, as a table."""
    from lth_core.analysis.sensitivity_view import suggestion_rounds, table_text
    from lth_core.runs import sensitivity as S

    config = store.get_run(run_id).config
    for key in store.docs(run_id, S.PREFIX + "/"):
        trial = int(key.rsplit("/", 1)[1])
        kept = S.stored(store, run_id, trial)
        if kept is None:
            continue
        print(f"\ntrial {trial}: " + table_text(kept[0], suggestion_rounds({"rounds": config.num_rounds_requested})))
