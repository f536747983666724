"""`python -m lth_core bench`: the engine's training speed against a plain DataLoader loop, and the
wall time of the reference CLI run. A benchmark, never a test: numbers depend on the machine.

Targets on 2 CPU cores: engine ≥ 2× the DataLoader loop's samples/s at the same batch size (all
models trained counted), and the reference run (10 rounds, ticket + reinit + random, 3 epochs)
in ≤ 8 s of training.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from .cpu import CpuWatch, choose_threads
from .training import torch_threads

REFERENCE_RUN = ["run", "--dataset", "mnist-5k", "--arch", "lenet-300-100", "--rounds", "10", "--prune-rate", "0.2",
                 "--epochs", "3", "--controls", "reinit,random", "--trials", "1", "--seed", "0", "--quiet"]


REPEATS = 3  # each figure is the best of this many timings: other work on the machine only slows a loop down
REFERENCE_REPEATS = 2


def best_rate(samples: int, timed: Callable[[], None]) -> float:
    """Samples per second of `timed`, after one untimed warm-up call (first calls allocate and load)."""
    timed()
    best = float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        timed()
        best = min(best, time.perf_counter() - started)
    return samples / best


def dataloader_samples_per_second(x: torch.Tensor, y: torch.Tensor, batch: int, epochs: int) -> float:
    """The baseline: an nn.Module LeNet-300-100 fed by a shuffling DataLoader, plain Adam."""
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(x[0].numel(), 300), torch.nn.ReLU(),
                                torch.nn.Linear(300, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1.2e-3)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True, drop_last=True)

    def timed() -> None:
        for _ in range(epochs):
            for xb, yb in loader:
                loss = torch.nn.functional.cross_entropy(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()

    return best_rate(epochs * len(loader) * batch, timed)


def engine_samples_per_second(models: int, batch: int, epochs: int, trials: int = 1) -> float:
    """The engine's loop training `models` masked LeNet-300-100s at once (about half their weights
    pruned), in `trials` groups that each see their own batches, as a round of a run does."""
    from . import ExperimentConfig, make_plan
    from .lottery import _to_device_data, generator
    from .training import batch_order, train

    # evaluation only at the end, as the DataLoader loop has none
    plan = make_plan(ExperimentConfig(batch_size=batch, epochs=epochs, device="cpu", eval_every=10**6))
    net, data = plan.net, _to_device_data(plan.data, plan.device)
    inits = [net.init_params(generator(0, m, "init")) for m in range(models)]
    params = {n: torch.stack([p[n] for p in inits]) for n in inits[0]}
    masks = {s.name: torch.rand((models, *s.shape), generator=generator(0, s.name)) < 0.5 for s in net.prunable}
    iters = plan.settings.iterations
    orders = torch.stack([batch_order(data.x_train.shape[0], batch, iters, generator(0, t, "order"))
                          for t in range(trials)])

    def timed() -> None:
        for _ in train(net, params, masks, data, orders, plan.settings):
            pass

    return best_rate(models * iters * batch, timed)


def reference_run_seconds() -> tuple[float, float]:
    """(wall seconds of the whole CLI process, seconds spent training) for the reference run."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "lth_core", *REFERENCE_RUN, "--out", tmp], check=True,
                       stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        training = pd.read_csv(Path(tmp) / "rounds.csv")["train_seconds"].sum()
    return wall, float(training)


def run_benchmark(quick: bool = False) -> dict[str, float]:
    from .data import load_dataset

    data = load_dataset("mnist-5k")
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    epochs = 1 if quick else 3
    threads = choose_threads(CpuWatch().others_busy())  # the engine's own choice, used by both loops
    print(f"torch {torch.__version__}, {threads} threads, batch 60, mnist-5k train split ({len(x)} examples), "
          f"best of {REPEATS} timings of {epochs} epoch{'s' if epochs > 1 else ''}")
    figures: dict[str, float] = {}
    with torch_threads(threads):
        baseline = figures["dataloader"] = dataloader_samples_per_second(x, y, 60, epochs)
        print(f"  {'DataLoader loop, 1 model:':<46}{baseline:>9,.0f} samples/s")
        for models, trials, what in ((1, 1, "1 model (a dense round 0)"),
                                     (3, 1, "3 models (ticket + reinit + random)"),
                                     (6, 2, "6 models (2 trials × 3 variants)")):
            rate = figures[f"engine_{models}"] = engine_samples_per_second(models, 60, epochs, trials)
            print(f"  engine, {what + ':':<38}{rate:>9,.0f} samples/s ({rate / baseline:.2f}× the DataLoader loop)")
    print(f"  reference run (python -m lth_core {' '.join(REFERENCE_RUN[:-1])}), {REFERENCE_REPEATS} times:")
    timings = []
    for _ in range(REFERENCE_REPEATS):
        wall, training = reference_run_seconds()
        timings.append((training, wall))
        print(f"    {training:.1f} s training, {wall:.1f} s wall for the whole process")
    training, wall = min(timings)
    figures.update(reference_wall=wall, reference_training=training)
    print(f"    best: {training:.1f} s training (target: ≤ 8 s), {wall:.1f} s wall")
    return figures
