"""The example run shipped in the repository, so a first visit has something to explore before training.

`examples/lenet-mnist-5k/` holds one real run of the engine (the paper's LeNet-300-100 on mnist-5k) in
the export format of `run --out` (config.json, rounds.csv, layers.csv, curves.csv, masks/), plus
`provenance.json`: the recorded config, the seed, the software that ran it, when, and the command, and
`checks.json`: the run's sanity checks, recorded while it trained (the store's "checks" document).

    python -m lth_core example --rebuild     # retrain EXAMPLE_CONFIG and rewrite the folder (1.5-2 minutes)
    python -m lth_core example               # put the example into the run store (again)

The app calls `ensure_example` when it opens: a store that has never held a run gets the example once.
Which runs are examples is kept in the store's `meta` table (keys `example.*`), so the store's schema is
unchanged; a user who deletes the example does not get it back unless they ask for it.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lth_core.engine.config import ExperimentConfig
from lth_core.engine.errors import LTHError
from lth_core.engine.results import CURVE_COLUMNS, LAYER_COLUMNS, ROUND_COLUMNS, RunResult, write_outputs
from lth_core.runs.store import FINISHED, RunStore, new_run_id, now_iso

__all__ = ["EXAMPLE_CONFIG", "EXAMPLE_DIR", "EXAMPLE_NAME", "REBUILD_COMMAND", "rebuild", "read_provenance",
           "import_example", "ensure_example", "example_runs", "provenance_of"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DIR = ROOT / "examples" / "lenet-mnist-5k"
EXAMPLE_NAME = "Example: LeNet-300-100 on mnist-5k"
REBUILD_COMMAND = "python -m lth_core example --rebuild"
# the paper's finding at its smallest: 12 rounds at 20 % (the output layer at 10 %) leave 7.0 % of the
# weights; the same config as tests/test_science.py. On the CPU, so a fresh run on a CPU repeats its numbers.
EXAMPLE_CONFIG = ExperimentConfig(dataset="mnist-5k", arch="lenet-300-100", rounds=12, prune_rate=0.2, epochs=3,
                                  controls=("reinit", "random"), trials=2, seed=0, device="cpu")
PROVENANCE = "provenance.json"
CHECKS = "checks.json"            # the sanity checks recorded while the example trained (lth_core.analysis.checks)


class ExampleError(LTHError):
    """The shipped example cannot be read (missing, changed or damaged); one line naming the file."""


# ---- making the example -------------------------------------------------------------------------
def software() -> dict[str, str]:
    """The versions that made a run: this code's git commit, torch, numpy, Python and the machine."""
    import torch

    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty", "--abbrev=12"],
                                capture_output=True, text=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {"lth_core": f"git {commit}", "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
            "mkl_cbwr": os.environ.get("MKL_CBWR", "")}


def rebuild(folder: Path | str = EXAMPLE_DIR, config: ExperimentConfig = EXAMPLE_CONFIG, *,
            on_event: Any = None) -> dict[str, Any]:
    """Train `config` with the engine and (re)write `folder`: the export files and provenance.json.
    Returns the provenance. The folder's old files are replaced only once the new run has finished."""
    from lth_core.analysis import checks
    from lth_core.engine.events import RoundCommitted, RoundFinished, RunFailed, RunStarted
    from lth_core.engine.lottery import run_experiment
    from lth_core.engine.results import weights_hash

    folder = Path(folder)
    made_at = datetime.now(timezone.utc)
    started = time.perf_counter()
    result, run = RunResult(), {}
    doc, finished = checks.new_doc(), []   # the sanity checks, folded in round by round as the recorder does
    hashes = lambda arrays: None if arrays is None else {n: weights_hash(a) for n, a in arrays.items()}  # noqa: E731
    for event in run_experiment(config):
        result.add(event)
        if on_event is not None:
            on_event(event)
        if isinstance(event, RoundFinished):
            finished.append(event)
        elif isinstance(event, RoundCommitted):  # the trials' init (and rewind point) are known from here
            starts = {t: (hashes(init), hashes(result.rewinds.get(t))) for t, init in result.inits.items()}
            checks.add_round(doc, finished, checks.expected_starts(event.round, config.reset, config.keeps_trained,
                                                                   starts), config.reset)
            finished = []
        elif isinstance(event, RunStarted):
            run = dict(rounds=event.rounds, iterations=event.iterations, variants=event.variants,
                       planned_remaining=event.planned_remaining, layers=event.layers, device=event.device)
        elif isinstance(event, RunFailed):
            raise ExampleError(f"the example run failed: {event.reason}")
    seconds = time.perf_counter() - started
    staging = folder.with_name(folder.name + ".new")
    if staging.exists():
        shutil.rmtree(staging)
    write_outputs(staging, result.config, result.rounds_df(), result.layers_df(), result.curves_df(), result.masks,
                  result.inits, result.rewinds)
    for path in sorted((staging / "masks").glob("*.npz")):  # the masks compress to a third: a smaller repository
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        np.savez_compressed(path, **arrays)
    (staging / CHECKS).write_text(json.dumps(doc, indent=1) + "\n")
    provenance = {
        "name": EXAMPLE_NAME,
        "command": REBUILD_COMMAND,
        "made_at": made_at.isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "seed": config.seed,
        "config": config.validated().to_dict(),
        "config_id": config.config_id(),
        "software": software(),
        "run": run,
        "files": {p.relative_to(staging).as_posix(): _sha256(p) for p in sorted(staging.rglob("*")) if p.is_file()},
    }
    (staging / PROVENANCE).write_text(json.dumps(provenance, indent=2) + "\n")
    if folder.exists():
        shutil.rmtree(folder)
    staging.rename(folder)
    return provenance


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- reading it --------------------------------------------------------------------------------
def read_provenance(folder: Path | str = EXAMPLE_DIR) -> dict[str, Any]:
    path = Path(folder) / PROVENANCE
    try:
        provenance = json.loads(path.read_text())
    except FileNotFoundError:
        raise ExampleError(f"the example run is missing: {path} not found (make it with `{REBUILD_COMMAND}`)") from None
    except (OSError, ValueError) as exc:
        raise ExampleError(f"{path} cannot be read ({exc}); make it again with `{REBUILD_COMMAND}`") from None
    if not isinstance(provenance, dict) or not {"config", "run", "files", "made_at"} <= set(provenance):
        raise ExampleError(f"{path} is not an example's provenance; make it again with `{REBUILD_COMMAND}`")
    return provenance


def _read_files(folder: Path, provenance: dict[str, Any]) -> dict[str, bytes]:
    """Every file the provenance lists, checked against its recorded SHA-256."""
    files = {}
    for name, digest in provenance["files"].items():
        path = folder / name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ExampleError(f"the example file {path} cannot be read ({exc.strerror or exc})") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise ExampleError(f"the example file {path} differs from the one recorded in {PROVENANCE}; "
                               f"make the example again with `{REBUILD_COMMAND}`")
        files[name] = data
    return files


def _rows(files: dict[str, bytes], run_id: str) -> dict[str, list[tuple]]:
    """The store's rows of the example run, from its export files."""
    def table(name: str, columns: list[str]) -> list[tuple]:
        frame = pd.read_csv(io.BytesIO(files[name]))[columns]
        return [(run_id, *row) for row in frame.astype(object).where(frame.notna(), None).itertuples(index=False)]

    rows = {"rounds": table("rounds.csv", ROUND_COLUMNS), "layers": table("layers.csv", LAYER_COLUMNS),
            "curves": table("curves.csv", CURVE_COLUMNS), "masks": [], "inits": []}
    for name, data in sorted(files.items()):
        stem = Path(name).stem           # trial0_init, trial1_round3
        if not name.startswith("masks/") or not name.endswith(".npz"):
            continue
        trial_text, _, what = stem.partition("_")
        trial = int(trial_text.removeprefix("trial"))
        if what == "init":
            rows["inits"].append((run_id, trial, data))
        elif what.startswith("round"):
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                for key in z.files:
                    if key.endswith(".shape"):
                        continue
                    variant, layer = key.split("/", 1)
                    rows["masks"].append((run_id, trial, int(what.removeprefix("round")), variant, layer,
                                          json.dumps(z[key + ".shape"].tolist()), z[key].tobytes()))
        else:  # rewind weights: the example's config resets to init and has none
            raise ExampleError(f"the example file {name} is not supported by this version")
    return rows


# ---- the example in the run store -------------------------------------------------------------------
# Which runs are examples is kept as store settings (the meta table's "setting.*" keys that
# RunStore.setting reads), so the store's schema does not change for it.
_OFFERED = "example.offered"      # the example was put into this store once: it never comes back by itself
_RUN = "example.run."             # example.run.<id> = that run's provenance (JSON)
_SETTING = "setting."             # RunStore.setting's prefix in the meta table


def import_example(store: RunStore, folder: Path | str = EXAMPLE_DIR, *, only_if_new: bool = False) -> str | None:
    """Put the example run into `store`, finished, as it was recorded; returns its id. With `only_if_new`,
    only into a store that holds no run and never had the example (else None). One transaction: two
    sessions opening an empty store at once add it once."""
    folder = Path(folder)
    provenance = read_provenance(folder)
    files = _read_files(folder, provenance)
    config = ExperimentConfig.from_dict(provenance["config"]).validated()
    run, run_id = provenance["run"], new_run_id()
    rows = _rows(files, run_id)
    made = datetime.fromisoformat(provenance["made_at"])
    finished = made + timedelta(seconds=float(provenance.get("seconds", 0)))
    last = run["rounds"]
    shown = {k: v for k, v in provenance.items() if k != "files"}
    with store.transaction() as db:
        if only_if_new and (db.execute("SELECT 1 FROM meta WHERE key = ?", (_SETTING + _OFFERED,)).fetchone()
                            or db.execute("SELECT 1 FROM runs LIMIT 1").fetchone()):
            return None
        store.add_run(config, provenance.get("name", EXAMPLE_NAME), status=FINISHED, run_id=run_id, db=db,
                      created_at=_iso(made), started_at=_iso(made), finished_at=_iso(finished), round=last,
                      rounds_total=last, committed_round=last, variant="+".join(run["variants"]),
                      iteration=run["iterations"], iterations=run["iterations"], variants=json.dumps(run["variants"]),
                      planned_remaining=json.dumps(run["planned_remaining"]), layers=json.dumps(run["layers"]),
                      device=run["device"])
        for table, columns in (("rounds", ROUND_COLUMNS), ("layers", LAYER_COLUMNS), ("curves", CURVE_COLUMNS)):
            db.executemany(f"INSERT INTO {table} (run_id, {', '.join(columns)}) VALUES (?{', ?' * len(columns)})",
                           rows[table])
        db.executemany("INSERT INTO masks (run_id, trial, round, variant, layer, shape, bits) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       rows["masks"])
        db.executemany("INSERT INTO inits (run_id, trial, weights) VALUES (?, ?, ?)", rows["inits"])
        if CHECKS in files:  # the sanity checks it recorded, shown as its checklist
            from lth_core.analysis.checks import DOC_KEY

            store.put_doc(run_id, DOC_KEY, json.loads(files[CHECKS]), db=db)
        db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                       [(_SETTING + _OFFERED, now_iso()), (_SETTING + _RUN + run_id, json.dumps(shown, sort_keys=True))])
    return run_id


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def ensure_example(store: RunStore, folder: Path | str = EXAMPLE_DIR) -> str | None:
    """What the app does when it opens: the example, once, into a store that has never held a run.
    Returns the new run's id, or None when nothing was added (the common case: one cheap query)."""
    if store.setting(_OFFERED) is not None:
        return None
    if not store.list_runs().empty:  # a store that has held runs never gets it by itself, even once emptied
        store.set_setting(_OFFERED, "no: the store had runs")
        return None
    return import_example(store, folder, only_if_new=True)


def provenance_of(store: RunStore, run_id: str) -> dict[str, Any] | None:
    """The provenance of `run_id` if it is an example run, else None."""
    value = store.setting(_RUN + run_id)
    return json.loads(value) if value else None


def example_runs(store: RunStore) -> dict[str, dict[str, Any]]:
    """Run id → provenance, of the example runs in the store (one query: a page asks on every load)."""
    return {run_id: json.loads(value) for run_id, value in store.run_settings(_RUN).items() if value}


def describe(provenance: dict[str, Any]) -> str:
    """One line: what the example is and how it was made (plain text, no markup)."""
    c = provenance["config"]
    controls = " + ".join(c.get("controls") or []) or "no"
    return (f"{c['arch']} on {c['dataset']}, {c['rounds']} rounds at {100 * c['prune_rate']:.0f} %, "
            f"{c['epochs']:g} epochs a round, {controls} controls, {c['trials']} trials, seed {provenance['seed']}; "
            f"made by running `{provenance['command']}` on {provenance['made_at'][:10]} with lth_core "
            f"{provenance['software']['lth_core'].removeprefix('git ')}, torch {provenance['software']['torch']}")


# ---- the command line -------------------------------------------------------------------------------
def add_example_command(sub: Any) -> None:
    """`python -m lth_core example [--rebuild]`, registered by cli.build_parser."""
    from lth_core.cli import COMMANDS, add_store_flag

    text = "put the shipped example run into the run store (--rebuild: retrain it and rewrite examples/)"
    parser = sub.add_parser("example", help=text, description=text[0].upper() + text[1:] + ".")
    parser.add_argument("--rebuild", action="store_true",
                        help=f"retrain the example's recorded config with this engine and rewrite examples/{EXAMPLE_DIR.name}/ "
                             "(1.5-2 minutes on a busy 2-core machine)")
    add_store_flag(parser)
    COMMANDS["example"] = _cli_example


def _cli_example(args: argparse.Namespace) -> int:
    if args.rebuild:
        from lth_core.runs.progress import ProgressPrinter

        progress = ProgressPrinter()
        provenance = rebuild(EXAMPLE_DIR, EXAMPLE_CONFIG, on_event=progress.update)
        progress.close()
        size = sum((EXAMPLE_DIR / name).stat().st_size for name in provenance["files"]) + \
            (EXAMPLE_DIR / PROVENANCE).stat().st_size
        print(f"wrote {EXAMPLE_DIR} ({size / 1e6:.1f} MB) in {provenance['seconds']:.0f} s: {describe(provenance)}")
        return 0
    store = RunStore(args.store_path)
    present = example_runs(store)
    if present:
        print(f"the example is already in {store.path} as run {', '.join(present)}")
        return 0
    run_id = import_example(store)
    print(f"added the example as run {run_id} to {store.path}")
    return 0
