"""The trained networks of a stored run, rebuilt by training their round again.

The run store keeps what rebuilds a ticket *before* training (its mask, the initial or rewind weights)
but not the trained weights of every round (a LeNet round would add 1 MB per model). The engine is
deterministic (same config and seed, same numbers on the CPU), so a round's trained networks come back
by training that round again, exactly as the run did: all its trials and variants side by side, from the
stored masks and starting points, with the run's config and seed. The rebuilt network's test accuracy is
compared with the stored one, so a mismatch never goes unnoticed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from lth_core.engine.cpu import fixed_threads
from lth_core.engine.errors import ConfigError
from lth_core.engine.models import Network, Params
from lth_core.engine.training import torch_threads


@dataclass
class TrainedModel:
    """One trained network of a stored run (one trial, round and variant), unstacked, on the CPU."""

    run_id: str
    trial: int
    round: int
    variant: str
    net: Network
    input_shape: tuple[int, ...]
    num_classes: int
    params: Params
    buffers: Params
    masks: dict[str, torch.Tensor]       # prunable weight name → bool mask
    stored_test_accuracy: float          # what the run recorded
    test_accuracy: float                 # of the rebuilt network, on the test split
    config: dict
    normalisation: dict | None = None    # how the engine scaled raw inputs (DatasetSplits' scale, mean, std)

    @property
    def weights_remaining(self) -> float:
        kept = sum(int(m.sum()) for m in self.masks.values())
        return kept / sum(m.numel() for m in self.masks.values())

    @property
    def matches_stored(self) -> bool:
        return math.isclose(self.test_accuracy, self.stored_test_accuracy, abs_tol=1e-9)

    def source(self) -> str:
        """How these weights were obtained, in words."""
        same = "the same as" if self.matches_stored else f"NOT the same as the stored {100 * self.stored_test_accuracy:.2f} % of"
        return (f"retrained round {self.round} (trial {self.trial}) from its stored mask and starting point with the "
                f"run's config and seed: test accuracy {100 * self.test_accuracy:.2f} %, {same} the run")


def engine_logits(model: TrainedModel, x: torch.Tensor) -> torch.Tensor:
    """The engine's own forward pass of one model on x (N, *input_shape) → (N, classes), in chunks."""
    params = {n: p.unsqueeze(0) for n, p in model.params.items()}
    buffers = {n: b.unsqueeze(0) for n, b in model.buffers.items()}
    out = []
    with torch.no_grad():
        for start in range(0, x.shape[0], model.net.eval_chunk):
            out.append(model.net.forward(params, buffers, x[start:start + model.net.eval_chunk].unsqueeze(0), False)[0])
    return torch.cat(out)


def retrain(store, run_id: str, round: int, trial: int = 0, variants: tuple[str, ...] = ("ticket",)
            ) -> dict[str, TrainedModel]:
    """Train round `round` of stored run `run_id` again; the trained models of `trial`, by variant."""
    from lth_core.engine.lottery import _run_round, _to_device_data, make_plan

    info = store.get_run(run_id)
    rounds = store.rounds(run_id)
    done = sorted(int(r) for r in rounds["round"].unique())
    if round not in done:
        raise ConfigError("round", f"run {run_id} has finished rounds {_ranges(done)}; got {round}")
    trials = sorted(int(t) for t in rounds["trial"].unique())
    if trial not in trials:
        raise ConfigError("trial", f"run {run_id} has trials {_ranges(trials)}; got {trial}")
    plan = make_plan(info.config.replace(device="cpu"))
    cfg, net = plan.config, plan.net
    weight_of = {s.layer: s.name for s in net.prunable}
    states: list[dict[str, Params]] = []
    for t in range(cfg.trials):
        init, rewind = store.starting_points(run_id, t)
        state = {"init": _tensors(init)}
        if rewind is not None:
            state["rewind"] = _tensors(rewind)
        if round > 0 and not cfg.keeps_trained:
            state["mask"] = {l: torch.from_numpy(m) for l, m in store.masks(run_id, t, round, "ticket").items()}
            if "inverted" in cfg.variants:  # its mask came from the scores of the round before: stored, not recomputed
                state["inverted"] = {l: torch.from_numpy(m) for l, m in store.masks(run_id, t, round, "inverted").items()}
        states.append(state)
    data = _to_device_data(plan.data, plan.device)
    out: dict[tuple[int, str], tuple[Params, Params]] = {}
    # fc nets give the same numbers at any thread count (MKL strict mode); conv nets train with fixed_threads()
    threads = fixed_threads() if net.image_like else torch.get_num_threads()
    # reset none / lr-rewind start from the previous round's trained weights: train every round up to `round`
    first = 0 if cfg.keeps_trained else round
    with torch_threads(threads):
        for rnd in range(first, round + 1):
            for _ in _run_round(plan, data, states, rnd, None, trained_out=out if rnd == round else None):
                pass
    x_test = data.x_test.cpu()
    y_test = data.y_test.cpu()
    models: dict[str, TrainedModel] = {}
    for variant in variants:
        if (trial, variant) not in out:
            raise ConfigError("variant", f"round {round} of run {run_id} trained {', '.join(sorted({v for _, v in out}))}; "
                              f"got {variant!r}")
        params, buffers = out[(trial, variant)]
        masks = {weight_of[l]: torch.from_numpy(m) for l, m in store.masks(run_id, trial, round, variant).items()}
        stored = rounds[(rounds["trial"] == trial) & (rounds["round"] == round) & (rounds["variant"] == variant)]
        model = TrainedModel(run_id, trial, round, variant, net, tuple(plan.data.input_shape), plan.data.num_classes,
                             params, buffers, masks, float(stored["test_accuracy"].iloc[0]), 0.0, cfg.to_dict())
        model.normalisation = dict(scale=plan.data.scale, mean=list(plan.data.mean), std=list(plan.data.std),
                                   shape=list(plan.data.stats_shape), kind=plan.data.kind)
        model.test_accuracy = float((engine_logits(model, x_test).argmax(1) == y_test).float().mean())
        models[variant] = model
    return models


def _tensors(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {n: torch.from_numpy(np.array(a)) for n, a in arrays.items()}


def _ranges(values: list[int]) -> str:
    if not values:
        return "none"
    return f"{values[0]}-{values[-1]}" if values == list(range(values[0], values[-1] + 1)) and len(values) > 1 else \
        ", ".join(map(str, values))

