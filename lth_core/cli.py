"""The command line: `python -m lth_core run|sweep|sensitivity|at-init|datasets|archs|bench|runs|show|check|export|deploy|report|resume|cancel|delete ...`.

Bad input exits with status 2 and one line naming the field; never a traceback
(set LTH_DEBUG=1 to see one for an unexpected internal error).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable

from lth_core.engine.config import ExperimentConfig, override_settings as _override
from lth_core.engine.errors import ConfigError
from lth_core.engine.variants import TICKET, ordered, phrase, short
from lth_core.runs.store_schema import StoreError

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}
MAX_CONFIG_BYTES = 1_000_000   # a --config file is a few hundred bytes of settings


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
    from lth_core.engine.presets import PRESETS
    parser.add_argument("--preset", metavar="NAME", help="start from a preset (the New experiment form's buttons): "
                        + ", ".join(PRESETS) + "; --config and flags override it")
    for f in fields(ExperimentConfig):
        text = f.metadata.get("help", "")
        if "default" not in text:
            default = _DEFAULT_TEXT.get(f.name, f.default if f.default not in (None, ()) else "none")
            text += f" (default: {default})"
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, metavar=f.name.upper(), default=None, help=text)


# what an unset (None / empty) setting means, where "none" would not say it
_DEFAULT_TEXT = {"hidden": "300,100", "controls": "none, the ticket only", "target_remaining": "none, --rounds decides"}


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    data: dict[str, Any] = {}
    if getattr(args, "preset", None) is not None:
        from lth_core.engine.presets import PRESETS
        if args.preset not in PRESETS:
            raise ConfigError("preset", f"unknown preset {args.preset!r}; choose one of {', '.join(PRESETS)}")
        data = dict(PRESETS[args.preset].settings)
    if getattr(args, "config", None):
        path = Path(args.config)
        try:
            with open(path, "rb") as file:  # at most the cap: /dev/zero or a huge file must not fill the memory
                raw = file.read(MAX_CONFIG_BYTES + 1)
            if len(raw) > MAX_CONFIG_BYTES:
                raise ConfigError("config", f"{path} is larger than {MAX_CONFIG_BYTES // 1_000_000} MB; expected a "
                                            "small JSON file of settings")
            file_data = json.loads(raw.decode("utf-8"))
        except FileNotFoundError:
            raise ConfigError("config", f"file not found: {path}") from None
        except IsADirectoryError:
            raise ConfigError("config", f"{path} is a folder; expected a JSON file of settings") from None
        except OSError as exc:
            raise ConfigError("config", f"cannot read {path} ({exc.strerror or exc})") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError("config", f"{path} is not valid JSON ({exc})") from None
        except RecursionError:
            raise ConfigError("config", f"{path} is nested too deeply; expected a JSON object of settings") from None
        if not isinstance(file_data, dict):
            raise ConfigError("config", f"{path} must hold a JSON object of settings")
        data = _override(data, file_data)
    flags = {f.name: getattr(args, f.name) for f in fields(ExperimentConfig) if getattr(args, f.name, None) is not None}
    return ExperimentConfig.from_dict(_override(data, flags))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m lth_core", description="Lottery Ticket Explorer: find winning tickets "
                     "by iterative magnitude pruning, with reinit and random-mask controls.",
                     epilog="`python -m lth_core COMMAND --help` lists a command's options. Bad input exits with "
                     "status 2 and one line naming the setting.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run an experiment", description="Run an experiment here, in the foreground: "
                         "a progress bar, then a table of test accuracy per round and variant. Every setting of the "
                         "config is a flag (--prune-rate for prune_rate); --config reads them from a JSON file.")
    add_config_flags(run)
    run.add_argument("--out", metavar="DIR", help="write config.json, rounds.csv, layers.csv, curves.csv and masks/ into this new or empty folder")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--store", action="store_true", help="also record the run in the run store (see `runs`)")
    run.add_argument("--name", help="the run's name in the store (default: ARCH on DATASET)")
    add_store_flag(run)
    add_store_commands(sub)
    for name, text in (("datasets", "list the built-in datasets (shape, classes, split sizes), the uploaded ones and the file formats"),
                       ("archs", "list the architectures and their prunable weights")):
        sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
    text = "measure training speed against a plain DataLoader loop and time the README's reference run"
    bench = sub.add_parser("bench", help=text, description=text[0].upper() + text[1:] + " (about 40 s).")
    bench.add_argument("--quick", action="store_true", help="shorter measurement")
    from lth_core.example import add_example_command  # `example [--rebuild]`: the run shipped in examples/
    add_example_command(sub)
    from lth_core.sweep_cli import add_sweep_command  # `sweep ...`: a grid of runs, locally or on Ray
    add_sweep_command(sub)
    from lth_core.sensitivity_cli import add_sensitivity_command  # `sensitivity ...`: each layer pruned alone
    add_sensitivity_command(sub)
    from lth_core.at_init_cli import add_at_init_command  # `at-init ...`: pruning at init versus IMP
    add_at_init_command(sub)
    from lth_core.stability_cli import add_stability_command  # `stability ID`: linear mode connectivity
    add_stability_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except (ConfigError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `runs | head`: the reader has gone; stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # never a traceback for the user
        if os.environ.get("LTH_DEBUG"):
            raise
        print(f"error: internal: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        return 1


# ---- commands -------------------------------------------------------------------

@command("run")
def _run(args: argparse.Namespace) -> int:
    from lth_core.engine.lottery import run_experiment
    from lth_core.runs.progress import ProgressPrinter
    from lth_core.engine.results import RunResult, write_outputs
    from lth_core.engine.events import RunCancelled, RunFailed

    if args.name is not None and not (args.store or args.store_path):
        raise ConfigError("name", "is the run's name in the run store; add --store (or leave --name out)")
    config = config_from_args(args)
    if args.out is not None:
        check_out_folder(args.out)  # before training, not after
    result = RunResult()
    progress = ProgressPrinter(enabled=not args.quiet)
    status = 0
    stored: list[str] = []  # the run's id in the store, with --store

    def on_event(event) -> None:
        nonlocal status
        result.add(event)
        progress.update(event)
        if isinstance(event, RunFailed):
            print(f"error: run failed: {event.reason}", file=sys.stderr)
            status = 1
        elif isinstance(event, RunCancelled):
            status = 130
            kept = f"rounds 0-{event.round - 1} are kept" if event.round > 0 else "no round had finished"
            again = f"; continue with: python -m lth_core resume {stored[0]}" if stored and event.round > 0 else ""
            print(f"run cancelled in round {event.round}: {kept}{again}", file=sys.stderr)

    if args.store or args.store_path:
        ended = record_run(args, config, on_event, stored)
        if ended == "lost":
            status = 1
            print(f"error: run {stored[0]} was deleted from the store (or taken over by another process) while "
                  f"training; stopped after {_rounds_text(result.rounds_df())}", file=sys.stderr)
        elif ended not in ("finished", "cancelled", "interrupted") and status == 0:
            status = 1  # it failed outside the engine (the store's disk is full, say)
            print(f"error: run {ended}: {open_store(args).get_run(stored[0]).error}", file=sys.stderr)
    else:
        # Ctrl-C stops between two steps, and the finished rounds are still written and shown
        interrupted = threading.Event()
        main_thread = threading.current_thread() is threading.main_thread()  # only it may take signals
        previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set()) if main_thread else None
        try:
            for event in run_experiment(config, should_stop=interrupted.is_set):
                on_event(event)
        finally:
            if main_thread:
                signal.signal(signal.SIGINT, previous)
    progress.close()
    rounds = result.rounds_df()
    if args.out is not None:
        curves = result.curves_df()
        curves = curves[curves["round"].isin(rounds["round"])]  # not the points of a round cut short
        write_outputs(args.out, result.config, rounds, result.layers_df(), curves, result.masks, result.inits,
                      result.rewinds)
    print(summary_table(rounds, result.config.get("reset", "init")))
    if args.out is not None:
        print(f"wrote {args.out}/config.json, rounds.csv, layers.csv, curves.csv, masks/")
    return status


def check_out_folder(out: str) -> None:
    """Refuse an --out that is a file or a folder with something in it: files of an earlier run left
    beside the new ones (trial1_*.npz of a 2-trial run, say) would be read as part of it."""
    if not out.strip():
        raise ConfigError("out", "expected a folder; got an empty name")
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ConfigError("out", f"{out} is a file; give a new or empty folder")
    if path.is_dir() and any(path.iterdir()):
        raise ConfigError("out", f"{out} is not empty; give a new or empty folder (or remove {out} first)")
    try:  # made now, so that a folder that cannot be written is found before training, not after
        path.mkdir(parents=True, exist_ok=True)
        (path / ".write-test").touch()
        (path / ".write-test").unlink()
    except OSError as exc:
        raise ConfigError("out", f"cannot write to {out} ({exc.strerror or exc}); give a folder you can write to") from None


def summary_table(rounds, reset: str = "init") -> str:
    """Test accuracy per round and variant (mean over trials), as the paper reports it; the ticket's column
    is named for the run's `reset` (fine-tuned with none)."""
    if rounds.empty:
        return "(no rounds finished)"
    table = rounds.groupby(["round", "variant"]).agg(
        remaining=("weights_remaining", "mean"), test_acc=("test_accuracy", "mean"),
        es_iter=("early_stop_iteration", "mean"), es_test_acc=("early_stop_test_accuracy", "mean")).reset_index()
    wide = table.pivot(index="round", columns="variant", values="test_acc")
    variants = ordered(wide.columns)  # the registry's order, the ticket first, as in the app
    heads = {v: short(v, reset) if v == TICKET else v for v in variants}
    widths = {v: max(8, len(heads[v])) for v in variants}
    trials = rounds["trial"].nunique()
    lines = [f"test accuracy{f' (mean of {trials} trials)' if trials > 1 else ''}; "
             f"es_iter: {phrase(TICKET, reset)}'s early-stopping iteration",
             f"{'round':>5} {'remaining':>10} " + " ".join(f"{heads[v]:>{widths[v]}}" for v in variants) + f" {'es_iter':>8}"]
    for rnd, row in wide.iterrows():
        t = table[(table["round"] == rnd) & (table["variant"] == TICKET)].iloc[0]
        accs = " ".join(f"{'-':>{widths[v]}}" if row[v] != row[v] else f"{100 * row[v]:{widths[v] - 1}.2f}%"
                        for v in variants)
        lines.append(f"{rnd:>5} {100 * t.remaining:9.2f}% {accs} {t.es_iter:>8.0f}")
    return "\n".join(lines)


@command("datasets")
def _datasets(args: argparse.Namespace) -> int:
    from lth_core.engine.data import FILE_FORMATS, UPLOAD_FORMAT, list_datasets

    print(f"{'name':<15} {'kind':<9} {'shape':<11} {'classes':>7} {'train':>6} {'val':>5} {'test':>5}  description")
    for d in list_datasets():
        shape = "×".join(str(s) for s in d.input_shape)
        print(f"{d.name:<15} {d.kind:<9} {shape:<11} {d.num_classes:>7} {d.sizes['train']:>6} {d.sizes['val']:>5} "
              f"{d.sizes['test']:>5}  {d.description}")
    from lth_core.engine.uploads import datasets_dir, list_uploads
    uploaded = list_uploads()
    print(f"\nuploaded (in {datasets_dir()}; name them as shown):" if uploaded else "\nuploaded: none yet")
    for u in uploaded:
        shape = "×".join(str(s) for s in u.input_shape)
        print(f"  {u.name:<36} {u.kind:<9} {shape:<11} {u.num_classes:>3} classes  "
              f"{u.sizes['train']}/{u.sizes['val']}/{u.sizes['test']}  {u.description}")
    print("\nyour own files:")
    for prefix, text in [*FILE_FORMATS.items(), UPLOAD_FORMAT]:
        print(f"  {prefix:<14} {text}")
    return 0


@command("archs")
def _archs(args: argparse.Namespace) -> int:
    from lth_core.engine.models import ARCHITECTURES, build_network

    print(f"{'name':<15} {'weights on mnist-5k':>20}  description")
    for info in ARCHITECTURES.values():
        net = build_network(info.name, (1, 28, 28), 10)
        print(f"{info.name:<15} {net.num_weights():>20,}  {info.description}")
    return 0


@command("bench")
def _bench(args: argparse.Namespace) -> int:
    from lth_core.bench import run_benchmark

    started = time.perf_counter()
    run_benchmark(quick=args.quick)
    print(f"benchmark took {time.perf_counter() - started:.1f} s")
    return 0


# ---- the run store (see lth_core/runs/store.py and lth_core/runs/jobs.py) ------------------

def add_store_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store-path", metavar="FILE", help="the run store (default: $LTH_HOME/runs.sqlite; "
                        "LTH_HOME defaults to $XDG_DATA_HOME/lth-explorer, i.e. ~/.local/share/lth-explorer)")


def add_store_commands(sub) -> None:
    def add(name: str, help: str | None, *, run_id: bool = True,
            id_help: str = "run id (a unique prefix is enough)") -> argparse.ArgumentParser:
        parser = (sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".") if help
                  else sub.add_parser(name))  # no help: not listed
        if run_id:
            parser.add_argument("run_id", metavar="ID", help=id_help)
        add_store_flag(parser)
        return parser

    add("runs", "list the runs in the run store", run_id=False)
    add("show", "a run's config, progress and per-round results")
    export = add("export", "write a run's files, as `run --out` does")
    export.add_argument("--out", metavar="DIR", required=True, help="a new or empty folder for config.json, rounds.csv, "
                        "layers.csv, curves.csv and masks/")
    add_ticket_flags(export, "--ticket")
    add_deploy_command(add)
    add_report_command(add)
    resume = add("resume", "continue an interrupted, cancelled or failed run after its last finished round")
    resume.add_argument("--background", action="store_true", help="queue it for the background worker instead")
    resume.add_argument("--quiet", action="store_true", help="no progress bar")
    check = add("check", "rerun one finished round with the run's seed and check it repeats the stored numbers; "
                "then print the run's sanity checks")
    check.add_argument("--round", type=int, metavar="R", required=True, help="the finished round to train again")
    check.add_argument("--trial", type=int, default=0, metavar="T", help="the trial (default: 0)")
    add("cancel", "stop a queued or running run (its finished rounds stay), or a background task of a run "
        "(deploy bench, export, sensitivity, at-init, stability) by its id as `tasks` lists it",
        id_help="run id (a unique prefix is enough), or task id RUN/KIND/ROUND/TRIAL, e.g. 3fa2c1/deploy/2/0")
    listing = add("tasks", "list the background tasks of every run (or of run ID) with their ids and states",
                  run_id=False)
    listing.add_argument("run_id", metavar="ID", nargs="?", help="only this run's tasks (a unique prefix is enough)")
    add("delete", "remove a run and everything it recorded")
    worker = add("worker", None, run_id=False)  # the background scheduler, started by jobs.submit
    worker.add_argument("--run")
    worker.add_argument("--attempt")
    worker.add_argument("--lock-fd", type=int)


def open_store(args: argparse.Namespace):
    from lth_core.runs.store import RunStore

    return RunStore(args.store_path)


def resolve_run(store, text: str) -> str:
    """The run id, given the id or a unique prefix of it."""
    from lth_core.runs.store import resolve_prefix

    return resolve_prefix(store.list_runs()["id"].tolist(), text, "run", "python -m lth_core runs", store.path)


def _rounds_text(rounds) -> str:
    """'rounds 0-4', 'round 0' or 'no finished round', of a rounds table."""
    if rounds.empty:
        return "no finished round"
    last = int(rounds["round"].max())
    return f"rounds 0-{last}" if last else "round 0"


def record_run(args: argparse.Namespace, config: ExperimentConfig, on_event, ids: list[str]) -> str:
    """`run --store`: train here, in the foreground, recording into the store as the worker would.
    The run's id is appended to `ids`; returns the run's final status ('lost' if it was deleted)."""
    from lth_core.runs.recorder import claim, create_run
    from lth_core.runs.worker import execute

    store = open_store(args)
    run_id = create_run(store, config, args.name)
    ids.append(run_id)
    print(f"recording as run {run_id} in {store.path}", file=sys.stderr)
    return execute(store, run_id, claim(store, run_id, pid=os.getpid()), on_event=on_event, reraise=True)


@command("runs")
def _runs(args: argparse.Namespace) -> int:
    from lth_core.runs.store import UNREADABLE

    store = open_store(args)
    runs = store.list_runs()
    if runs.empty:
        print("(no runs yet: start one with `run --store` or from the app)")
        return 0

    import pandas as pd

    from lth_core.analysis.statistics import MATCH_COLUMN, critical_cell

    def known(value) -> bool:
        return value is not None and not pd.isna(value)

    # "last round": the last finished round (the one "ticket acc" is of); "training": the round in flight
    # MATCH_COLUMN: the last measured round the ticket's mean still matches dense (statistics.critical_sparsity)
    from lth_core.runs.checks import run_marks

    # "checks": the sanity checks (`show ID` says which failed, where and what it means)
    marks = run_marks(store, [r.id for r in runs.itertuples() if r.status != UNREADABLE])
    criticals = {r.id: "" if r.status == UNREADABLE else critical_cell(store.rounds(r.id)) for r in runs.itertuples()}
    wide = max(len(MATCH_COLUMN), *map(len, criticals.values()))  # the header is wider than any cell ("≤ 7.0 %")
    print(f"{'id':<8}  {'status':<11} {'last round':>10}  {'training':<20} {'ticket acc':>10}  {MATCH_COLUMN:>{wide}}  "
          f"{'checks':<14}  {'created (UTC)':<16}  name")
    for r in runs.itertuples():
        total = f"/{int(r.rounds_total)}" if known(r.rounds_total) else ""
        last = f"{int(r.rounds_done) - 1}{total}" if known(r.rounds_done) and r.rounds_done > 0 else "-"
        now = ""
        if r.status == "running" and known(r.round):
            now = f"round {int(r.round)}" + (f", it {int(r.iteration)}/{int(r.iterations)}"
                                             if known(r.iteration) and known(r.iterations) else "")
        acc = f"{100 * r.test_accuracy:.2f}%" if known(r.test_accuracy) else ""
        name = f"{r.name} ({r.error})" if r.status == UNREADABLE else r.name
        print(f"{r.id:<8}  {r.status:<11} {last:>10}  {now:<20} {acc:>10}  {criticals[r.id]:>{wide}}  "
              f"{marks.get(r.id, ''):<14}  {r.created_at[:16].replace('T', ' '):<16}  {name}")
    return 0


@command("show")
def _show(args: argparse.Namespace) -> int:
    store = open_store(args)
    info = store.get_run(resolve_run(store, args.run_id))
    defaults = ExperimentConfig()
    changed = {k: v for k, v in info.config.to_dict().items()
               if k in ("dataset", "arch") or v != getattr(defaults, k) and not (isinstance(v, list) and not v)}
    print(f"run {info.id}  {info.name!r}  {info.status}")
    print(f"created {info.created_at}" + (f", started {info.started_at}" if info.started_at else "")
          + (f", ended {info.finished_at}" if info.finished_at else ""))
    print("config: " + " ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in changed.items()))
    if info.active and info.round is not None:
        print(f"progress: round {info.round}/{info.rounds_total} ({info.variant}), iteration {info.iteration}/{info.iterations}")
    if info.error:
        print(f"error: {info.error}")
    rounds = store.rounds(info.id)
    print(summary_table(rounds, info.config.reset))
    for line in statistics_lines(rounds, info.config.reset):
        print(line)
    print()
    print_checklist(store, info.id)
    from lth_core.sensitivity_cli import print_stored
    print_stored(store, info.id)  # the per-layer sensitivity kept with the run, if measured
    return 0


def print_checklist(store, run_id: str) -> int:
    """The run's sanity checks, one line each (lth_core.analysis.checks); returns 1 if one failed."""
    from lth_core.analysis.checks import FAIL
    from lth_core.runs.checks import run_checklist

    lines = run_checklist(store, run_id)
    print("sanity checks:")
    for line in lines:
        print(f"  {line.text()}")
        for place in line.where[1:4]:
            print(f"      also {place}")
    return 1 if any(line.status == FAIL for line in lines) else 0


@command("check")
def _check(args: argparse.Namespace) -> int:
    from lth_core.runs.checks import rerun_check

    store = open_store(args)
    run_id = resolve_run(store, args.run_id)
    print(f"retraining round {args.round} of run {run_id} (trial {args.trial}) with its config and seed ...",
          file=sys.stderr)
    started = time.perf_counter()
    result = rerun_check(store, run_id, args.round, args.trial)
    print(f"{'same numbers' if result['ok'] else 'DIFFERENT numbers'}: {result['detail']} "
          f"({time.perf_counter() - started:.1f} s)")
    return print_checklist(store, run_id)


def statistics_lines(rounds, reset: str = "init") -> list[str]:
    """`show`: the critical sparsity of every variant and, per control, where the ticket beats it."""
    from lth_core.analysis.statistics import (controls_of, critical_sentence, critical_sparsity, gap_sentences, match_words,
                                              paired_gaps)

    if rounds.empty or rounds["round"].max() < 1:
        return []
    critical = critical_sparsity(rounds)
    lines = ["", f"how far each network can be pruned: {match_words(who='it')}, as % of the weights remaining"]
    lines += [f"  {critical_sentence(critical, v, reset=reset)}" for v in critical["variant"]]
    gaps = paired_gaps(rounds)
    for control in controls_of(rounds):
        lines += ["", f"{short(TICKET, reset)} − {control}, paired within each trial (test accuracy):"]
        lines += [f"  {line}" for line in gap_sentences(gaps, control, reset=reset)]
    return lines


@command("export")
def _export(args: argparse.Namespace) -> int:
    from lth_core.engine.lottery import make_plan, resolved_config
    from lth_core.engine.results import write_outputs
    from lth_core.runs.network import stored_network

    store = open_store(args)
    info = store.get_run(resolve_run(store, args.run_id))
    if not args.ticket and (args.round is not None or args.trial is not None):
        raise ConfigError("round" if args.round is not None else "trial", "chooses the ticket to export; add --ticket")
    if args.formats is not None and not args.ticket:
        raise ConfigError("formats", "chooses the ticket's files; add --ticket")
    formats = _ticket_formats(args.formats)
    ticket = _chosen_round(store, info.id, args) if args.ticket else None  # checked before anything is written
    check_out_folder(args.out)
    rounds, layers = store.rounds(info.id), store.layers(info.id)
    curves = store.curves(info.id)
    curves = curves[curves["round"] < info.rounds_done]   # committed rounds only, like rounds.csv
    models = rounds[["trial", "round", "variant"]].itertuples(index=False)
    masks = {(t, r, v): store.masks(info.id, t, r, v) for t, r, v in models}
    points = {t: store.starting_points(info.id, t) for t in sorted(rounds["trial"].unique())}
    inits = {t: init for t, (init, _) in points.items()}
    rewinds = {t: rewind for t, (_, rewind) in points.items() if rewind is not None}
    network, _ = stored_network(store, info.id)  # the resolved config kept with the run; else worked out (and kept)
    config = network.config if network else resolved_config(make_plan(info.config)).to_dict()  # else: its one-line error
    write_outputs(args.out, config, rounds, layers, curves, masks, inits, rewinds)
    print(f"wrote {args.out}/config.json, rounds.csv, layers.csv, curves.csv, masks/ of run {info.id} ({info.status}, "
          f"{_rounds_text(rounds)}" + (f" of 0-{info.rounds_total})" if info.rounds_total is not None else ")"))
    if ticket is not None:
        export_ticket_folder(store, info.id, *ticket, Path(args.out) / "ticket", formats)
    return 0


# ---- what a ticket buys (deploy_bench.py) and the ticket's export (exports.py) ---------------

def add_ticket_flags(parser: argparse.ArgumentParser, flag: str | None = None) -> None:
    if flag:
        from lth_core.analysis.exports import EXPORT_FORMATS

        parser.add_argument(flag, action="store_true", help="also write ticket/: the trained ticket in each format of "
                            "--formats, with ticket.json and a README.txt saying how to load each file (retrains the "
                            "round: the store keeps masks, not trained weights)")
        formats = "; ".join(f"{f.name} = {f.file}, {f.description}" for f in EXPORT_FORMATS.values()).replace("%", "%%")
        parser.add_argument("--formats", metavar="NAME,...", help=f"with --ticket, only these (default: all): {formats}")
    parser.add_argument("--round", type=int, metavar="R", help="the round (default: the recommended one, the sparsest "
                        "ticket within 1 point of the dense network's test accuracy)")
    parser.add_argument("--trial", type=int, metavar="T", help="the trial (default: 0)")


def add_deploy_command(add) -> None:
    deploy = add("deploy", "measure what a run's ticket buys on this machine: file sizes, latency and accuracy "
                 "against the dense network")
    add_ticket_flags(deploy)
    deploy.add_argument("--repeats", type=int, default=None, metavar="N", help="timed calls per variant and batch size "
                        "(default: 50)")
    deploy.add_argument("--threads", type=int, default=None, metavar="N", help="torch and ONNX Runtime threads "
                        "(default: torch's count here)")
    deploy.add_argument("--json", metavar="FILE", help="also write the measurements as JSON")
    deploy.add_argument("--keep-files", metavar="DIR", help="keep the measured files in DIR (default: a temporary folder)")
    deploy.add_argument("--background", action="store_true", help="queue the bench in the background worker and "
                        "return at once (the app's Deploy page shows its progress and result); either way the result "
                        "is kept with the run")


def _chosen_round(store, run_id: str, args: argparse.Namespace) -> tuple[int, int]:
    """(round, trial) of the ticket a command works on, checked against the run."""
    from lth_core.analysis.deploy_bench import choose_ticket

    return choose_ticket(store.rounds(run_id), args.round, args.trial, run_id)[:2]


def _ticket_formats(text: str | None) -> list[str] | None:
    """`--formats a,b` as names of exports.EXPORT_FORMATS (None: all of them)."""
    from lth_core.analysis.exports import EXPORT_FORMATS

    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    wrong = [n for n in names if n not in EXPORT_FORMATS]
    if wrong or not names:
        raise ConfigError("formats", f"must be one or more of {', '.join(EXPORT_FORMATS)}, separated by commas; "
                          f"got {text!r}")
    return list(dict.fromkeys(names))


def export_ticket_folder(store, run_id: str, rnd: int, trial: int, folder: Path,
                         formats: list[str] | None = None) -> None:
    from lth_core.analysis.exports import export_ticket
    from lth_core.engine.retrain import retrain

    print(f"retraining round {rnd} of trial {trial} (the store keeps masks, not trained weights)...", file=sys.stderr)
    model = retrain(store, run_id, rnd, trial)["ticket"]
    files = export_ticket(model, folder, formats=formats)
    print(f"wrote {folder}/: {', '.join(f.name for f in files)}; {model.source()}")


@command("deploy")
def _deploy(args: argparse.Namespace) -> int:
    from lth_core.analysis.deploy_bench import DEFAULT_REPEATS, format_bench, run_deploy_bench

    store = open_store(args)
    run_id = resolve_run(store, args.run_id)
    if args.json:
        check_writable_file(args.json, "json")
    rnd, trial = _chosen_round(store, run_id, args)
    if args.background:
        if args.json or args.keep_files:
            raise ConfigError("background", "writes no --json or --keep-files; the result is kept with the run")
        from lth_core.runs import jobs

        key = jobs.submit_deploy(run_id, rnd, trial, repeats=args.repeats, threads=args.threads, store_path=store.path)
        from lth_core.runs.tasks import task_id as display

        print(f"queued the deployment bench of run {run_id}, round {rnd}, trial {trial} ({display(run_id, key)}); its result is kept "
              f"with the run as deploy/{rnd}/{trial}: see the app's Deploy page")
        return 0
    bench = run_deploy_bench(store, run_id, rnd if args.round is not None else None, trial, threads=args.threads,
                             repeats=DEFAULT_REPEATS if args.repeats is None else args.repeats, files_dir=args.keep_files,
                             progress=lambda text: print(text + "...", file=sys.stderr))
    print(format_bench(bench))
    store.put_doc(run_id, f"deploy/{bench.round}/{bench.trial}", bench.to_dict())
    print(f"kept with run {run_id} as deploy/{bench.round}/{bench.trial} (the app's Deploy page shows it)")
    if args.json:
        Path(args.json).write_text(json.dumps(bench.to_dict(), indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


def add_report_command(add) -> None:
    report = add("report", "write one self-contained HTML report of a run, or of several compared, with a "
                 "recommendation (and a PDF of it)", run_id=False)
    report.add_argument("run_ids", nargs="+", metavar="ID", help="run ids (a unique prefix is enough); several are compared")
    report.add_argument("--out", required=True, metavar="FILE.html", help="the HTML file to write")
    report.add_argument("--pdf", action="store_true", help="also print FILE.pdf beside it with headless Chromium "
                        "(/usr/bin/chromium, via Playwright); skipped with a message when Chromium is missing")
    report.add_argument("--tolerance", type=float, default=None, metavar="P", help="percentage points of test accuracy "
                        "the recommended ticket may lose against the dense network (default: 1)")


@command("report")
def _report(args: argparse.Namespace) -> int:
    from lth_core.analysis.recommend import TOLERANCE_POINTS
    from lth_core.analysis.report import check_tolerance, write_report
    from lth_core.example import software

    tolerance = check_tolerance(TOLERANCE_POINTS if args.tolerance is None else args.tolerance)
    if Path(args.out).suffix.lower() not in (".html", ".htm"):
        raise ConfigError("out", f"must be an .html file (the PDF is written beside it); got {args.out}")
    check_writable_file(args.out, "out")
    store = open_store(args)
    run_ids = [resolve_run(store, text) for text in args.run_ids]
    from lth_core.runs.network import stored_network  # the counted savings of an unmeasured ticket need it
    report, html_path, pdf_path, skipped = write_report(
        store, run_ids, args.out, pdf=args.pdf, tolerance=tolerance, software={"lth_core": software()["lth_core"]},
        networks={run_id: stored_network(store, run_id)[0] for run_id in run_ids})
    print(f"wrote {html_path} ({html_path.stat().st_size / 1e6:.1f} MB, {report.figures} figures, "
          f"{len(report.runs)} run{'s' if len(report.runs) != 1 else ''})")
    if pdf_path is not None:
        print(f"wrote {pdf_path}")
    elif skipped:
        print(skipped, file=sys.stderr)
    return 0


def check_writable_file(path: str, field: str) -> None:
    p = Path(path)
    if p.is_dir() or not p.parent.exists():
        raise ConfigError(field, f"{path} is a folder or its folder does not exist; give a file path")


@command("resume")
def _resume(args: argparse.Namespace) -> int:
    from . import jobs
    from lth_core.runs.progress import ProgressPrinter
    from lth_core.runs.recorder import claim
    from lth_core.runs.store import RESUMABLE
    from lth_core.runs.worker import execute

    store = open_store(args)
    run_id = resolve_run(store, args.run_id)
    status = store.get_run(run_id).status
    if status not in RESUMABLE:  # the claim below checks again, atomically; this is for the message
        hint = {"running": "; cancel it first, or wait", "queued": "; the worker starts it when its turn comes"}
        raise StoreError(f"run {run_id} is {status}; only an interrupted, cancelled or failed run can be resumed"
                         + hint.get(status, ""))
    if args.background:
        jobs.resume(run_id, store.path)
        print(f"run {run_id} queued; the background worker continues it after round {store.get_run(run_id).rounds_done - 1}")
        return 0
    progress = ProgressPrinter(enabled=not args.quiet)
    status = execute(store, run_id, claim(store, run_id, allowed=RESUMABLE, pid=os.getpid()), on_event=progress.update)
    progress.close()
    if status == "lost":
        print(f"error: run {run_id} was deleted from the store (or taken over by another process) while training",
              file=sys.stderr)
        return 1
    info = store.get_run(run_id)
    print(summary_table(store.rounds(run_id), info.config.reset))
    if info.error:
        print(f"error: run {status}: {info.error}", file=sys.stderr)
    return {"finished": 0, "cancelled": 130, "interrupted": 130}.get(status, 1)


def task_id(task) -> str:
    """A task's id for the terminal: RUN/KIND/ROUND/TRIAL (its store key without "task/", after its run)."""
    from lth_core.runs.tasks import task_id as display

    return display(task.run_id, task.key)


def resolve_task(store, text: str):
    """The task of a task id RUN/KIND/ROUND/TRIAL (RUN: a unique prefix is enough); StoreError otherwise."""
    from lth_core.runs import tasks
    from lth_core.runs.store import StoreError

    run_text, _, rest = text.partition("/")
    run_id = resolve_run(store, run_text)
    task = tasks.get(store, run_id, tasks.PREFIX + rest)
    if task is None:
        known = ", ".join(task_id(t) for t in tasks.of_run(store, run_id)) or "it has none"
        raise StoreError(f"run {run_id} has no task {rest!r} (its tasks: {known}; see `python -m lth_core tasks`)")
    return task


@command("tasks")
def _tasks(args: argparse.Namespace) -> int:
    from lth_core.runs import tasks

    store = open_store(args)
    if args.run_id:
        found = tasks.of_run(store, resolve_run(store, args.run_id))
    else:
        tasks.recover(store)  # a task whose process is gone reads interrupted, never "running"
        found = tasks.all_tasks(store)
    if not found:
        print("no background tasks" + (f" of run {args.run_id}" if args.run_id else ""))
        return 0
    ids = [task_id(t) for t in found]
    width = max(len("task id"), *map(len, ids))
    print(f"{'task id':<{width}}  {'state':<11}  {'what':<28}  progress")
    for t, tid in zip(found, ids):
        title = tasks.TASK_KINDS[t.kind].title if t.kind in tasks.TASK_KINDS else t.kind
        state = t.state + ("*" if t.cancel_requested and t.active else "")
        print(f"{tid:<{width}}  {state:<11}  {title:<28}  {(t.error or t.progress or '').splitlines()[0] if (t.error or t.progress) else ''}")
    if any(t.cancel_requested and t.active for t in found):
        print("* cancel asked; it stops within about a second")
    return 0


CANCEL_WAIT_S = 10.0  # how long `cancel` waits for a running run or task to stop (at its next training step)


def _while_running(state: Any, read: Callable[[], Any], running: Callable[[Any], bool], deadline: float) -> Any:
    """`state`, read again (`read`) every 0.2 s while it is `running` and time.monotonic() is before `deadline`:
    how `cancel` waits for a run and for a task alike; returns the last state read."""
    while running(state) and time.monotonic() < deadline:
        time.sleep(0.2)
        state = read()
    return state


def _cancel_task(store, text: str) -> int:
    from lth_core.runs import tasks

    task = resolve_task(store, text)
    if not task.active:
        print(f"task {task_id(task)}: {task.state} (it had already ended; nothing to cancel)")
        return 0
    state = _while_running(tasks.cancel(store, task.run_id, task.key),  # its process stops it at its next step
                           lambda: (tasks.get(store, task.run_id, task.key) or task).state,
                           lambda s: s == tasks.RUNNING, time.monotonic() + CANCEL_WAIT_S)
    print(f"task {task_id(task)}: {state}" + (" (cancel asked; it stops at its next step)" if state == tasks.RUNNING
                                              else ""))
    return 0


@command("cancel")
def _cancel(args: argparse.Namespace) -> int:
    from . import jobs

    from lth_core.runs import at_init

    store = open_store(args)
    if "/" in args.run_id:  # RUN/KIND/ROUND/TRIAL: a background task, not a run
        return _cancel_task(store, args.run_id)
    run_id = resolve_run(store, args.run_id)
    if at_init.spec_of(store, run_id) is not None:  # an experiment: its at-init cells stop with its IMP run
        at_init.cancel(run_id, store.path)
        status = store.get_run(run_id).status
    else:
        status = jobs.cancel(run_id, store.path)
    deadline = time.monotonic() + CANCEL_WAIT_S
    status = _while_running(status, lambda: store.get_run(run_id).status,  # it stops at its next training step
                            lambda s: s == "running", deadline)
    print(f"run {run_id}: {status}")
    # the at-init task's own wait: its process sees the cancel at its watch's next look, after the run's stop
    task = _while_running(at_init.task_state(store, run_id), lambda: at_init.task_state(store, run_id),
                          lambda t: t is not None and t.state == "running", time.monotonic() + CANCEL_WAIT_S)
    if task is not None:
        print(f"at-init cells: {task.state}")
    return 0


@command("delete")
def _delete(args: argparse.Namespace) -> int:
    store = open_store(args)
    run_id = resolve_run(store, args.run_id)
    store.delete(run_id)
    print(f"deleted run {run_id}")
    return 0


@command("worker")
def _worker(args: argparse.Namespace) -> int:
    from lth_core.runs.store import default_store_path
    from lth_core.runs.worker import run_claimed, serve

    path = Path(args.store_path).expanduser().absolute() if args.store_path else default_store_path().absolute()
    if args.run:
        return run_claimed(path, args.run, args.attempt)
    return serve(path, lock_fd=args.lock_fd)
