"""The command line: `python -m lth_core run|datasets|archs|bench ...`.

Bad input exits with status 2 and one line naming the field; never a traceback
(set LTH_DEBUG=1 to see one for an unexpected internal error).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable

from .config import ExperimentConfig
from .errors import ConfigError

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, status 2, no usage dump
        print(f"error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def command(name: str):
    def register(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = fn
        return fn
    return register


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per ExperimentConfig field, with the field's own help text."""
    parser.add_argument("--config", metavar="FILE.json", help="read settings from a JSON file; flags override it")
    for f in fields(ExperimentConfig):
        text = f.metadata.get("help", "")
        if "default" not in text:
            text += f" (default: {f.default})"
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, metavar=f.name.upper(), default=None, help=text)


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    data: dict[str, Any] = {}
    if getattr(args, "config", None):
        path = Path(args.config)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError("config", f"file not found: {path}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError("config", f"{path} is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError("config", f"{path} must hold a JSON object of settings")
    for f in fields(ExperimentConfig):
        value = getattr(args, f.name, None)
        if value is not None:
            data[f.name] = value
    return ExperimentConfig.from_dict(data)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m lth_core", description="Lottery Ticket Explorer: find winning tickets "
                     "by iterative magnitude pruning, with reinit and random-mask controls.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run an experiment")
    add_config_flags(run)
    run.add_argument("--out", metavar="DIR", help="write config.json, rounds.csv, layers.csv, curves.csv and masks/ here")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    sub.add_parser("datasets", help="list the built-in datasets")
    sub.add_parser("archs", help="list the architectures")
    bench = sub.add_parser("bench", help="measure training speed against a plain DataLoader loop")
    bench.add_argument("--quick", action="store_true", help="shorter measurement")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # never a traceback for the user
        if os.environ.get("LTH_DEBUG"):
            raise
        print(f"error: internal: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        return 1


# ---- commands -------------------------------------------------------------------

@command("run")
def _run(args: argparse.Namespace) -> int:
    from .lottery import run_experiment
    from .progress import ProgressPrinter
    from .results import RunResult, write_outputs
    from .events import RunCancelled, RunFailed

    config = config_from_args(args)
    result = RunResult()
    progress = ProgressPrinter(enabled=not args.quiet)
    status = 0
    for event in run_experiment(config):
        result.add(event)
        progress.update(event)
        if isinstance(event, RunFailed):
            print(f"error: run failed: {event.reason}", file=sys.stderr)
            status = 1
        elif isinstance(event, RunCancelled):
            status = 130
    progress.close()
    rounds = result.rounds_df()
    if args.out:
        write_outputs(args.out, result.config, rounds, result.layers_df(), result.curves_df(), result.masks, result.inits)
    print(summary_table(rounds))
    if args.out:
        print(f"wrote {args.out}/config.json, rounds.csv, layers.csv, curves.csv, masks/")
    return status


def summary_table(rounds) -> str:
    """Test accuracy per round and variant (mean over trials), as the paper reports it."""
    if rounds.empty:
        return "(no rounds finished)"
    table = rounds.groupby(["round", "variant"]).agg(
        remaining=("weights_remaining", "mean"), test_acc=("test_accuracy", "mean"),
        es_iter=("early_stop_iteration", "mean"), es_test_acc=("early_stop_test_accuracy", "mean")).reset_index()
    wide = table.pivot(index="round", columns="variant", values="test_acc")
    lines = [f"{'round':>5} {'remaining':>10} " + " ".join(f"{v:>8}" for v in wide.columns) + f" {'es_iter':>8}"]
    for rnd, row in wide.iterrows():
        t = table[(table["round"] == rnd) & (table["variant"] == "ticket")].iloc[0]
        accs = " ".join("       -" if row[v] != row[v] else f"{100 * row[v]:7.2f}%" for v in wide.columns)
        lines.append(f"{rnd:>5} {100 * t.remaining:9.2f}% {accs} {t.es_iter:>8.0f}")
    return "\n".join(lines)


@command("datasets")
def _datasets(args: argparse.Namespace) -> int:
    from .data import FILE_FORMATS, list_datasets

    print(f"{'name':<15} {'kind':<9} {'shape':<11} {'classes':>7} {'train':>6} {'val':>5} {'test':>5}  description")
    for d in list_datasets():
        shape = "×".join(str(s) for s in d.input_shape)
        print(f"{d.name:<15} {d.kind:<9} {shape:<11} {d.num_classes:>7} {d.sizes['train']:>6} {d.sizes['val']:>5} "
              f"{d.sizes['test']:>5}  {d.description}")
    print("\nyour own files:")
    for prefix, text in FILE_FORMATS.items():
        print(f"  {prefix:<14} {text}")
    return 0


@command("archs")
def _archs(args: argparse.Namespace) -> int:
    from .models import ARCHITECTURES, build_network

    print(f"{'name':<15} {'weights on mnist-5k':>20}  description")
    for info in ARCHITECTURES.values():
        net = build_network(info.name, (1, 28, 28), 10)
        print(f"{info.name:<15} {net.num_weights():>20,}  {info.description}")
    return 0


@command("bench")
def _bench(args: argparse.Namespace) -> int:
    from .bench import run_benchmark

    started = time.perf_counter()
    run_benchmark(quick=args.quick)
    print(f"benchmark took {time.perf_counter() - started:.1f} s")
    return 0
