"""Estimate against actual: each config is estimated, then submitted through the real worker as the app
does it (a fresh scheduler, a run process), and timed from submit to the end.

    python -m lth_core.estimate_check              # the 8 reference configs
    python -m lth_core.estimate_check --only 0,4   # some of them

Runs go to a throw-away store; the dataset cache is the usual one. Each config waits for the previous
run's scheduler to exit, so every run starts as one started from an idle app does. The load average
before and after is printed: on a busy machine estimate and actual both move.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from . import jobs
from lth_core.engine.config import ExperimentConfig
from lth_core.runs.estimate import estimate_run
from lth_core.runs.store import ACTIVE, RunStore

APP_DEFAULTS = dict(dataset="mnist-5k", arch="lenet-300-100", epochs=2.0, rounds=5, controls=("reinit", "random"))
CONFIGS: list[tuple[str, dict]] = [
    ("lenet mnist-5k, app defaults", APP_DEFAULTS),
    ("lenet mnist-5k, 3 trials", {**APP_DEFAULTS, "trials": 3}),
    ("lenet mnist-5k, to 3 %, 2 trials", {**{k: v for k, v in APP_DEFAULTS.items() if k != "rounds"},
                                          "target_remaining": 0.03, "trials": 2}),
    ("mlp 64,32 breast-cancer, 20 ep, 3 trials", dict(dataset="breast-cancer", arch="mlp", hidden=(64, 32), epochs=20,
                                                      rounds=4, trials=3)),
    ("conv-2 digits, 1 trial", dict(dataset="digits", arch="conv-2", epochs=2.0, rounds=5, controls=("reinit", "random"))),
    ("conv-2 digits, 3 trials, 3 rounds", dict(dataset="digits", arch="conv-2", epochs=2.0, rounds=3, trials=3,
                                               controls=("reinit", "random"))),
    ("conv-4 mnist-5k, 1 ep, 2 rounds", dict(dataset="mnist-5k", arch="conv-4", epochs=1.0, rounds=2,
                                             controls=("reinit",))),
    ("resnet-8 digits, 3 rounds", dict(dataset="digits", arch="resnet-8", epochs=2.0, rounds=3, controls=("random",))),
]


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def no_scheduler(store_path: Path) -> None:
    """Wait for the previous run's scheduler to exit (it lingers a few seconds): the next run starts cold,
    and is estimated so."""
    while jobs.scheduler_pid(store_path) is not None:
        time.sleep(0.2)


def measure(config: ExperimentConfig, store_path: Path) -> tuple[float, float, str]:
    """(seconds from submit to the end, seconds from submit to the first evaluation point, final status)."""
    started = time.perf_counter()
    run_id = jobs.submit(config, store_path=store_path)
    first = None
    with RunStore(store_path) as store:
        while True:
            run = store.get_run(run_id)
            if first is None and run.iteration:
                first = time.perf_counter() - started
            if run.status not in ACTIVE:
                return time.perf_counter() - started, first or float("nan"), run.status
            time.sleep(0.5)  # about as often as Live run looks; a tighter loop would slow the run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated indices into the config list")
    args = parser.parse_args(argv)
    chosen = [CONFIGS[int(i)] for i in args.only.split(",")] if args.only else CONFIGS
    print(f"load average before: {load()}  ({os.cpu_count()} cores)", flush=True)
    print(f"{'config':42} {'estimate':>9} {'actual':>8} {'ratio':>6}  start-up est/actual  status", flush=True)
    misses = 0
    with tempfile.TemporaryDirectory(prefix="lth-estimate-check-") as tmp:
        store_path = Path(tmp) / "runs.sqlite"
        for label, settings in chosen:
            config = ExperimentConfig.from_dict(settings)
            no_scheduler(store_path)
            e = estimate_run(config, store_path=store_path)
            actual, first, status = measure(config, store_path)
            ratio = e.seconds / actual
            ok = 1 / 1.3 <= actual / e.seconds <= 1.3
            misses += not ok
            print(f"{label:42} {e.seconds:8.1f}s {actual:7.1f}s {ratio:6.2f}  {e.startup_seconds:5.1f}s / {first:5.1f}s"
                  f"  {status}{'' if ok else '  (outside ±30 %)'}   load {load()}", flush=True)
    print(f"load average after: {load()}; {len(chosen) - misses} of {len(chosen)} within ±30 %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
