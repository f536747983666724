"""The 2-D playground: a tiny MLP on a 2-D toy set, pruned one round at a time by the engine itself,
and the arrays its page draws (class probabilities over a grid, the network's nodes and edges).

A round is `lottery.run_experiment` resumed from the previous round's checkpoint and stopped after
that round is committed: the same stacked training of ticket, reinit and random mask as a full run,
with the trained weights of every variant taken from its RoundFinished events. No second training loop.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from lth_core.engine.config import ExperimentConfig
from lth_core.engine.data import DatasetSplits
from lth_core.engine.errors import ConfigError, TrainingFailed
from lth_core.engine.events import Checkpoint, RoundCommitted, RoundFinished, RunFailed
from lth_core.engine.lottery import make_plan, run_experiment
from lth_core.engine.models import Network

PLAYGROUND_DATASETS = ("spirals", "moons", "circles", "xor")
VARIANTS = ("ticket", "reinit", "random")


@dataclass(frozen=True)
class PlaygroundSettings:
    """What the playground trains. The defaults are where the moment shows: on spirals at 10 % of the
    weights (round 7) the ticket still draws the three arms (85 % test accuracy), while reinit (55 %) and
    the random mask (41 %) do not; the dense net has 99 %. Found by trying seeds 0-2 (all show it; seed 1
    most clearly) with 600 steps a round, which keeps a round under a second on a busy 2-core machine."""

    dataset: str = "spirals"
    hidden: tuple[int, ...] = (32, 32)
    prune_rate: float = 0.3
    rounds: int = 7            # down to 10 % of the weights; one more round and the ticket fails too (57 %)
    iterations: int = 600      # training steps per round (batch 60 of ~1,050 training points)
    lr: float = 0.01
    seed: int = 1

    def config(self) -> ExperimentConfig:
        if self.dataset not in PLAYGROUND_DATASETS:
            raise ConfigError("dataset", f"the playground draws 2-D sets only: {', '.join(PLAYGROUND_DATASETS)}; "
                                         f"got {self.dataset!r}")
        # one evaluation at the end of the round: the playground shows the final nets, not curves
        return ExperimentConfig(dataset=self.dataset, arch="mlp", hidden=self.hidden, prune_rate=self.prune_rate,
                                rounds=self.rounds, iterations=self.iterations, eval_every=self.iterations,
                                lr=self.lr, controls=("reinit", "random"), seed=self.seed, device="cpu")


@dataclass
class PlayedRound:
    """One finished round: every variant's trained parameters and mask (round 0 has the dense net only)."""

    round: int
    weights_remaining: float
    params: dict[str, dict[str, np.ndarray]]   # variant → parameter name → trained values (pruned = 0)
    masks: dict[str, dict[str, np.ndarray]]    # variant → layer → bool
    test_accuracy: dict[str, float]
    seconds: float                             # wall time of the round: stacked training, evaluation, pruning


@dataclass
class Playground:
    settings: PlaygroundSettings
    data: DatasetSplits
    net: Network
    rounds: list[PlayedRound] = field(default_factory=list)
    checkpoint: Checkpoint | None = None

    @property
    def finished(self) -> bool:
        return len(self.rounds) > self.settings.rounds


def new_playground(settings: PlaygroundSettings = PlaygroundSettings()) -> Playground:
    """A playground with no round trained yet; raises ConfigError naming a bad setting."""
    plan = make_plan(settings.config())
    return Playground(settings, plan.data, plan.net)


def play_round(pg: Playground) -> PlayedRound:
    """Train the next round (round 0 = the dense net) and append it to `pg.rounds`."""
    if pg.finished:
        raise ConfigError("rounds", f"all {pg.settings.rounds} pruned rounds are done; start again to play more")
    started = time.perf_counter()
    params: dict[str, dict[str, np.ndarray]] = {}
    masks: dict[str, dict[str, np.ndarray]] = {}
    accuracy: dict[str, float] = {}
    remaining = 1.0
    events = run_experiment(pg.settings.config(), resume=pg.checkpoint)
    try:
        for event in events:
            if isinstance(event, RoundFinished):
                params[event.variant], masks[event.variant] = event.params, event.mask
                accuracy[event.variant] = event.test_accuracy
                if event.variant == "ticket":
                    remaining = event.weights_remaining
            elif isinstance(event, RunFailed):
                raise TrainingFailed(event.reason)
            elif isinstance(event, RoundCommitted):
                pg.checkpoint = event.checkpoint
                break
    finally:
        events.close()  # stop the engine after this one round
    played = PlayedRound(len(pg.rounds), remaining, params, masks, accuracy, time.perf_counter() - started)
    pg.rounds.append(played)
    return played


# ---- decision boundaries -------------------------------------------------------------------------
def grid_extent(data: DatasetSplits, margin: float = 0.3) -> tuple[float, float, float, float]:
    """(x_min, x_max, y_min, y_max) around every point of every split (standardised inputs)."""
    x = np.concatenate([data.x_train, data.x_val, data.x_test])
    lo, hi = x.min(0) - margin, x.max(0) + margin
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def grid_points(extent: tuple[float, float, float, float], resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """The x and y coordinates of a resolution × resolution grid over `extent` (cell centres)."""
    x0, x1, y0, y1 = extent
    step_x, step_y = (x1 - x0) / resolution, (y1 - y0) / resolution
    return x0 + step_x * (np.arange(resolution) + 0.5), y0 + step_y * (np.arange(resolution) + 0.5)


@torch.no_grad()
def decision_grid(net: Network, params: list[dict[str, np.ndarray]], extent: tuple[float, float, float, float],
                  resolution: int = 80) -> np.ndarray:
    """Class probabilities of each model over the grid: (models, resolution rows (y), resolution cols (x), classes)."""
    xs, ys = grid_points(extent, resolution)
    gx, gy = np.meshgrid(xs, ys)  # row i is y = ys[i]
    points = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32))
    stacked = {n: torch.from_numpy(np.stack([p[n] for p in params])) for n in params[0]}
    logits = net.forward(stacked, net.new_buffers(len(params), torch.device("cpu")), points.unsqueeze(0), train=False)
    probs = torch.softmax(logits, -1).numpy()
    return probs.reshape(len(params), resolution, resolution, -1)


# ---- a panel that shows nothing -------------------------------------------------------------------
UNSURE_ABOVE_CHANCE = 0.25  # a net never more sure of a class than chance + this, anywhere on the plane, is guessing


def input_output_paths(net: Network, mask: dict[str, np.ndarray]) -> int:
    """How many chains of kept weights link an input to an output (input → unit → … → class): 0 when pruning
    has cut every one, and the net's answer cannot depend on the point at all (only its biases are left)."""
    reach = np.ones(net.prunable[0].shape[1])
    for spec in net.prunable:  # paths into each unit of the next column: kept weights times paths into their source
        reach = mask[spec.layer].astype(float) @ reach
    return int(reach.sum())


def blank_panel_note(net: Network, mask: dict[str, np.ndarray], probs: np.ndarray, class_names: tuple[str, ...],
                     name: str, ticket_paths: int | None = None) -> str | None:
    """Why a decision-boundary panel (`probs`: (H, W, K) from `decision_grid`) shows one flat colour, in plain
    words, or None when it draws a boundary: every path from input to output cut, one class predicted
    everywhere, or nowhere more sure of a class than chance + UNSURE_ABOVE_CHANCE (grey: guessing).
    `name` names the net ('The random mask'); `ticket_paths` the ticket's paths, for comparison."""
    paths = input_output_paths(net, mask)
    top = probs.argmax(-1)
    sure = float(probs.max(-1).max())
    chance = 1 / probs.shape[-1]
    if paths == 0:
        return (f"{name} has lost every chain of kept weights from the two inputs to the outputs: where a point "
                f"lies can no longer reach the answer, so it gives the same answer everywhere (from its biases alone).")
    compare = f" (the ticket keeps {ticket_paths:,})" if ticket_paths is not None else ""
    few = (f"Only {paths:,} chain{'s' if paths != 1 else ''} of kept weights still link{'s' if paths == 1 else ''} the "
           f"two inputs to the outputs{compare}, too few to carry the pattern.")
    if len(np.unique(top)) == 1:
        return f"{name} predicts “{class_names[int(top.flat[0])]}” everywhere, so its panel is one colour. {few}"
    if sure < chance + UNSURE_ABOVE_CHANCE:
        return (f"{name} is guessing, which is why its panel is grey: nowhere is it more than {sure:.0%} sure of a "
                f"class (guessing among {len(class_names)} gives {chance:.0%}). {few}")
    return None


# ---- the network diagram -------------------------------------------------------------------------
def network_nodes(net: Network, input_names: tuple[str, ...], class_names: tuple[str, ...]) -> pd.DataFrame:
    """One row per unit: column (0 = inputs), unit, x, y and a label. Units are 1 apart in the widest
    column; narrower columns (the 2 inputs, the classes) spread out over more of that height."""
    weights = [s for s in net.prunable]
    sizes = [weights[0].shape[1]] + [s.shape[0] for s in weights]
    widest = max(sizes)
    rows = []
    for col, size in enumerate(sizes):
        gap = min(widest / size, widest / 4)
        for unit in range(size):
            if col == 0:
                label = input_names[unit] if unit < len(input_names) else f"input {unit}"
            elif col == len(sizes) - 1:
                label = class_names[unit] if unit < len(class_names) else f"class {unit}"
            else:
                label = f"{weights[col - 1].layer} unit {unit}"
            rows.append((col, unit, float(col), gap * ((size - 1) / 2 - unit), label))
    return pd.DataFrame(rows, columns=["column", "unit", "x", "y", "label"])


def network_edges(net: Network, rounds: list[PlayedRound], at_round: int) -> pd.DataFrame:
    """One row per weight of the ticket at `at_round`: layer, column (of its source), source, target,
    weight (trained value; 0 when pruned), kept, and pruned_round (the round from which it is gone, or -1).
    Round 0 is the trained dense net."""
    played = rounds[at_round]
    params = played.params["ticket"]
    masks = [r.masks["ticket"] for r in rounds[:at_round + 1]]
    frames = []
    for col, spec in enumerate(net.prunable):
        out_units, in_units = spec.shape
        w = params[spec.name]
        kept = masks[-1][spec.layer]
        gone = np.full(spec.shape, -1)
        for r in range(len(masks) - 1, 0, -1):  # the earliest round whose mask no longer has the weight
            gone[~masks[r][spec.layer]] = r
        target, source = np.meshgrid(np.arange(out_units), np.arange(in_units), indexing="ij")
        frames.append(pd.DataFrame({"layer": spec.layer, "column": col, "source": source.ravel(),
                                    "target": target.ravel(), "weight": w.ravel().astype(float),
                                    "kept": kept.ravel().astype(bool), "pruned_round": gone.ravel()}))
    return pd.concat(frames, ignore_index=True)


def benchmark(settings: PlaygroundSettings = PlaygroundSettings()) -> None:
    """Print each round's training time (the stacked variants) and the time to compute what the page
    draws (boundary grids and edge list), with the load average: `python -m lth_core.engine.playground`."""
    import os

    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    pg = new_playground(settings)
    extent = grid_extent(pg.data)
    for _ in range(settings.rounds + 1):
        played = play_round(pg)
        started = time.perf_counter()
        decision_grid(pg.net, list(played.params.values()) + [pg.rounds[0].params["ticket"]], extent)
        network_edges(pg.net, pg.rounds, played.round)
        arrays = time.perf_counter() - started
        accuracy = ", ".join(f"{v} {a:.1%}" for v, a in played.test_accuracy.items())
        print(f"round {played.round}: {played.weights_remaining:6.1%} of weights, trained in {played.seconds:.2f} s, "
              f"grids + edges in {arrays:.2f} s ({accuracy})")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    benchmark()
