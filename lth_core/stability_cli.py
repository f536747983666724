"""`python -m lth_core stability ID ...`: the instability analysis of a stored run (registered by cli.build_parser).

    stability ID                          the dense network and the last round's ticket, at the default ks, here
    stability ID --round 0 --ks 0,10,50   the dense network alone, at iterations 0, 10 and 50
    stability ID --background             queued in the background worker (the app's Stability page shows it)
    stability ID --show                   print what is kept with the run, train nothing
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from lth_core.engine.errors import ConfigError


def add_stability_command(sub: Any) -> None:
    from lth_core.cli import COMMANDS, add_store_flag

    text = ("instability analysis (linear mode connectivity): copy the dense network at iteration k, train two copies "
            "with different data orders and measure the test error on the straight line between them; the same for "
            "a round's ticket and its controls")
    parser = sub.add_parser("stability", help=text, description=text[0].upper() + text[1:] + ". The result is kept "
                            "with the run (document stability/ROUND/TRIAL); run it again to finish an interrupted one: "
                            "the k already done are not redone.")
    parser.add_argument("run_id", metavar="ID", help="run id (a unique prefix is enough)")
    parser.add_argument("--round", type=int, metavar="R", help="a finished round: its ticket and the run's controls "
                        "are analysed beside the dense network (default: the last finished round; 0: the dense network only)")
    parser.add_argument("--trial", type=int, metavar="T", help="the trial (default: 0)")
    parser.add_argument("--ks", metavar="K,K,...", help="iterations of the dense network's training to copy it at "
                        "(default: 0 and 1, 2.5, 5, 10 and 25 %% of a round)")
    parser.add_argument("--alphas", type=int, metavar="N", help="points on each path, its ends included (3-101; default 25)")
    parser.add_argument("--background", action="store_true", help="queue it in the background worker and return at once")
    parser.add_argument("--show", action="store_true", help="print the analysis kept with the run; train nothing")
    add_store_flag(parser)
    COMMANDS["stability"] = _stability


def _stability(args: argparse.Namespace) -> int:
    from lth_core.cli import open_store, resolve_run
    from lth_core.runs.stability import analyse, check_request, parse_ks, stored_analysis, submit_stability

    store = open_store(args)
    run_id = resolve_run(store, args.run_id)
    ks = None if args.ks is None else parse_ks(args.ks)
    cfg = check_request(store, run_id, args.round, args.trial, ks, args.alphas)
    reset = store.get_run(run_id).config.reset
    if args.show:
        if args.background or args.ks or args.alphas:
            raise ConfigError("show", "prints what is kept; it takes no --ks, --alphas or --background")
        kept = stored_analysis(store, run_id, cfg.round, cfg.trial)
        if kept is None:
            raise ConfigError("round", f"run {run_id} keeps no instability analysis of round {cfg.round}, trial "
                              f"{cfg.trial}; start one without --show")
        _print(kept, reset)
        return 0
    if args.background:
        from lth_core.runs.tasks import task_id

        key = submit_stability(run_id, cfg.round, cfg.trial, cfg.ks, cfg.alphas, store_path=store.path)
        print(f"queued the instability analysis of run {run_id}, round {cfg.round}, trial {cfg.trial} at k = "
              f"{', '.join(map(str, cfg.ks))} ({task_id(run_id, key)}); it is kept with the run as stability/{cfg.round}/{cfg.trial}: "
              "see the app's Stability page")
        return 0
    done = analyse(store, run_id, cfg.round, cfg.trial, cfg.ks, cfg.alphas,
                   progress=lambda text: print(text + "...", file=sys.stderr, flush=True))
    _print(done, reset)
    print(f"kept with run {run_id} as stability/{cfg.round}/{cfg.trial} (the app's Stability page shows it)")
    return 0


def _print(kept: Any, reset: str) -> None:
    from lth_core.analysis.stability_view import format_table, sentences

    print(f"run {kept.run_id}, round {kept.round} ({100 * kept.weights_remaining:.1f} % of the weights), trial {kept.trial}: "
          f"{kept.alphas} points on each path, {kept.iterations} iterations a round")
    print(format_table(kept.paths, reset))
    for line in sentences(kept.paths, kept.iterations, reset):
        print(line)
    if kept.missing_ks:
        print(f"not done yet: k = {', '.join(map(str, kept.missing_ks))}")
