"""`python -m lth_core bench`: the engine's training speed against a plain DataLoader loop, and the
wall time of the reference CLI run. A benchmark, never a test: numbers depend on the machine.

Targets on 2 CPU cores: engine ≥ 2× the DataLoader loop's samples/s at the same batch size (all
models trained counted); the reference run (10 rounds, ticket + reinit + random, 3 epochs) in ≤ 8 s of
training, and as a whole process (imports, data, evaluation, outputs) 2× as fast as the same work written
as a tutorial would (bench_tutorial.py), both evaluating every 50 steps (the reference run's own default
schedule, evaluated too, does 4× that evaluation); a submitted run's first round started within 0.5 s
when the background scheduler is already running.

Both loops are timed on training alone: the engine's loop ends with one evaluation (every round does),
and that evaluation's time is left out, as the DataLoader loop evaluates nothing. The reference run
reports its training steps and its evaluation apart.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pandas as pd
import torch

from lth_core.engine.cpu import CpuWatch, choose_threads
from lth_core.engine.training import torch_threads

if TYPE_CHECKING:
    from lth_core.engine.config import ExperimentConfig

REFERENCE_RUN = ["run", "--dataset", "mnist-5k", "--arch", "lenet-300-100", "--rounds", "10", "--prune-rate", "0.2",
                 "--epochs", "3", "--controls", "reinit,random", "--trials", "1", "--seed", "0", "--quiet"]
# bench_tutorial.py validates every 50 steps; the engine's default evaluates validation and test about 15
# times a round (every 12 steps here), 4× the points on 3× the examples. The whole-process comparison
# times the reference run both ways: at the tutorial's schedule (the same work, apart from the test split
# that the engine still evaluates at every point) and at its own.
TUTORIAL_SCHEDULE = ["--eval-every", "50"]


REPEATS = 5  # each figure is the best of this many timings: other work on the machine only slows a loop down
REFERENCE_REPEATS = 3

# (samples one call trains, the call): the call returns the seconds it spent training, which for the
# engine leaves out the one evaluation its loop always ends with (the DataLoader loop evaluates nothing)
Timed = tuple[int, Callable[[], float]]


def loop_rates(loops: dict[str, Timed]) -> dict[str, list[float]]:
    """Samples per second of each loop in REPEATS timings, fastest first. The loops take turns, so a
    slow spell of the machine falls on all of them alike, and each gets one untimed warm-up call first."""
    for _, timed in loops.values():
        timed()
    rates: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(REPEATS):
        for name, (samples, timed) in loops.items():
            rates[name].append(samples / timed())
    return {name: sorted(r, reverse=True) for name, r in rates.items()}


def dataloader_loop(x: torch.Tensor, y: torch.Tensor, batch: int, epochs: int) -> Timed:
    """The baseline: an nn.Module LeNet-300-100 fed by a shuffling DataLoader, plain Adam."""
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(x[0].numel(), 300), torch.nn.ReLU(),
                                torch.nn.Linear(300, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1.2e-3)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True, drop_last=True)

    def timed() -> float:
        started = time.perf_counter()
        for _ in range(epochs):
            for xb, yb in loader:
                loss = torch.nn.functional.cross_entropy(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
        return time.perf_counter() - started

    return epochs * len(loader) * batch, timed


def engine_loop(models: int, batch: int, epochs: int, trials: int = 1) -> Timed:
    """The engine's loop training `models` masked LeNet-300-100s at once (about half their weights
    pruned), in `trials` groups that each see their own batches, as a round of a run does."""
    from . import ExperimentConfig, make_plan
    from lth_core.engine.lottery import _to_device_data, generator
    from lth_core.engine.training import batch_order, train

    # one evaluation, at the end (a round always ends with one); its time is not counted as training
    plan = make_plan(ExperimentConfig(batch_size=batch, epochs=epochs, device="cpu", eval_every=10**6))
    net, data = plan.net, _to_device_data(plan.data, plan.device)
    inits = [net.init_params(generator(0, m, "init")) for m in range(models)]
    params = {n: torch.stack([p[n] for p in inits]) for n in inits[0]}
    masks = {s.name: torch.rand((models, *s.shape), generator=generator(0, s.name)) < 0.5 for s in net.prunable}
    iters = plan.settings.iterations
    orders = torch.stack([batch_order(data.x_train.shape[0], batch, iters, generator(0, t, "order"))
                          for t in range(trials)])

    def timed() -> float:
        started = time.perf_counter()
        run = train(net, params, masks, data, orders, plan.settings)
        while True:
            try:
                next(run)
            except StopIteration as stop:
                return time.perf_counter() - started - stop.value.eval_seconds

    return models * iters * batch, timed


@dataclass(frozen=True)
class ReferenceTiming:
    training: float    # seconds in training steps, all rounds
    evaluation: float  # seconds evaluating on the validation and test splits
    wall: float        # the whole CLI process, from start to exit

    @property
    def total(self) -> float:
        return self.training + self.evaluation


def reference_run(extra: tuple[str, ...] = ()) -> ReferenceTiming:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "lth_core", *REFERENCE_RUN, *extra, "--out", tmp], check=True,
                       stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        rounds = pd.read_csv(Path(tmp) / "rounds.csv")
    return ReferenceTiming(float(rounds["train_seconds"].sum()), float(rounds["eval_seconds"].sum()), wall)


START_REPEATS = 5


def first_round_seconds(store_path: Path, config: ExperimentConfig) -> float:
    """Seconds from `jobs.submit` to the run's first RoundStarted as the store records it (what the app's
    Live page sees); the run is then cancelled and waited for, so the next submit finds an idle scheduler."""
    import sqlite3

    from . import jobs

    started = time.perf_counter()
    run_id = jobs.submit(config, store_path=store_path)
    with sqlite3.connect(store_path) as db:
        while True:
            row = db.execute("SELECT variant, status, error FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row[0] is not None:
                took = time.perf_counter() - started
                break
            if row[1] not in ("queued", "running"):
                raise RuntimeError(f"the benchmark's run ended as {row[1]}: {row[2]}")
            time.sleep(0.002)
        jobs.cancel(run_id, store_path=store_path)
        while db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0] == "running":
            time.sleep(0.01)
    return took


def start_latency(repeats: int = START_REPEATS) -> tuple[float, list[float]]:
    """(cold, warm timings): submit → first RoundStarted of the reference run's config, in a store of its
    own; cold with no scheduler running, then `repeats` times with the scheduler already serving."""
    from . import ExperimentConfig, jobs

    config = ExperimentConfig(dataset="mnist-5k", arch="lenet-300-100", rounds=10, prune_rate=0.2, epochs=3,
                              controls=("reinit", "random"), trials=1, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "runs.sqlite"
        try:
            cold = first_round_seconds(path, config)
            warm = sorted(first_round_seconds(path, config) for _ in range(repeats))
        finally:
            pid = jobs.scheduler_pid(path)
            if pid:
                import os
                import signal

                os.kill(pid, signal.SIGTERM)
                while jobs.scheduler_pid(path):
                    time.sleep(0.05)
    return cold, warm


def tutorial_run() -> float:
    """Wall seconds of the tutorial-style script (bench_tutorial.py) doing the reference run's work, as a process."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        subprocess.run([sys.executable, str(Path(__file__).with_name("bench_tutorial.py")), tmp], check=True,
                       stdout=subprocess.DEVNULL)
        return time.perf_counter() - started


def load_average() -> str:
    """The 1-minute load average, printed beside every timing: on a shared machine each figure moves with it."""
    return f"load {os.getloadavg()[0]:.1f}"


def run_benchmark(quick: bool = False) -> dict[str, float]:
    from lth_core.engine.data import load_dataset

    data = load_dataset("mnist-5k")
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    epochs = 1 if quick else 3
    threads = choose_threads(CpuWatch().others_busy())  # the engine's own choice, used by both loops
    print(f"torch {torch.__version__}, {threads} threads, batch 60, mnist-5k train split ({len(x)} examples), "
          f"best of {REPEATS} timings (and their median) of {epochs} epoch{'s' if epochs > 1 else ''}; training "
          f"time only (the engine's end-of-round evaluation is timed apart and left out); {load_average()} "
          f"on {os.cpu_count()} cores")
    figures: dict[str, float] = {}
    lines = {"dataloader": "DataLoader loop, 1 model",
             "engine_1": "engine, 1 model (a dense round 0)",
             "engine_3": "engine, 3 models (ticket + reinit + random)",
             "engine_6": "engine, 6 models (2 trials × 3 variants)"}
    with torch_threads(threads):
        loops = {"dataloader": dataloader_loop(x, y, 60, epochs),
                 **{f"engine_{m}": engine_loop(m, 60, epochs, trials) for m, trials in ((1, 1), (3, 1), (6, 2))}}
        rates = loop_rates(loops)
    figures.update({name: r[0] for name, r in rates.items()})
    baseline = figures["dataloader"]
    for name, label in lines.items():
        ratio = "" if name == "dataloader" else f", {figures[name] / baseline:.2f}× the DataLoader loop"
        print(f"  {label + ':':<48}{figures[name]:>9,.0f} samples/s (median {rates[name][REPEATS // 2]:,.0f}){ratio}")
    print(f"  reference run (python -m lth_core {' '.join(REFERENCE_RUN[:-1])}), {REFERENCE_REPEATS} times, "
          f"taking turns with the same run at the tutorial's evaluation schedule ({' '.join(TUTORIAL_SCHEDULE)}) and "
          "bench_tutorial.py (the same work as a tutorial writes it: DataLoader, torch.optim.Adam, one model after "
          "another, validation every 50 steps, the test split at the end), each timed as a whole process, start to exit:")
    timings, matched, tutorial = [], [], []
    for _ in range(REFERENCE_REPEATS):
        t = reference_run()
        timings.append(t)
        matched.append(reference_run(tuple(TUTORIAL_SCHEDULE)))
        tutorial.append(tutorial_run())
        print(f"    {t.training:.1f} s training steps + {t.evaluation:.1f} s evaluation = {t.total:.1f} s; "
              f"{t.wall:.1f} s wall for the whole process; {matched[-1].wall:.1f} s at the tutorial's schedule "
              f"({matched[-1].evaluation:.1f} s evaluation); tutorial script {tutorial[-1]:.1f} s ({load_average()})")
    best = min(timings, key=lambda t: t.total)
    median = sorted(t.total for t in timings)[len(timings) // 2]
    wall, tutorial_wall = min(t.wall for t in timings), min(tutorial)
    figures.update(reference_training=best.training, reference_evaluation=best.evaluation,
                   reference_total=best.total, reference_median_total=median, reference_wall=wall,
                   tutorial_wall=tutorial_wall)
    print(f"    best: {best.training:.1f} s training steps + {best.evaluation:.1f} s evaluation = {best.total:.1f} s "
          f"(target: ≤ 8 s of training); median {median:.1f} s")
    walls, same = sorted(t.wall for t in timings), sorted(t.wall for t in matched)
    figures.update(reference_wall_tutorial_schedule=same[0])
    mid = lambda values: sorted(values)[len(values) // 2]  # noqa: E731
    print(f"    whole process, best (median) against the tutorial script's {tutorial_wall:.1f} s ({mid(tutorial):.1f} s): "
          f"at the tutorial's evaluation schedule {same[0]:.1f} s ({mid(same):.1f} s), {tutorial_wall / same[0]:.2f}× "
          f"as fast ({mid(tutorial) / mid(same):.2f}×; target: 2×); at the engine's own schedule {wall:.1f} s "
          f"({mid(walls):.1f} s), {tutorial_wall / wall:.2f}× ({mid(tutorial) / mid(walls):.2f}×)")
    cold, warm = start_latency(2 if quick else START_REPEATS)
    figures.update(start_cold=cold, start_warm=warm[0])
    print(f"  submit → first RoundStarted in the store (the reference run's config, a store of its own): "
          f"{warm[0]:.2f} s with the scheduler already running (best of {len(warm)}; median {warm[len(warm) // 2]:.2f} s; "
          f"target < 0.5 s), {cold:.1f} s with none running (it starts, with its forkserver); {load_average()}")
    return figures
