"""Instability analysis, or linear mode connectivity (Frankle et al. 2020, arXiv 1912.05671).

For each k of a list of iterations: train the dense network from its original init for k iterations (the
run's own data order, so w_k is exactly what `rewind:k` would rewind to), copy it, train the two copies for
a full round with two different data orders, and evaluate the test error along the straight line between
them, θ(α) = (1 − α)·θ_A + α·θ_B. The **instability** is the error barrier: the largest error on the path
minus the mean of its two ends. A network is *stable* at k when the barrier is under 2 % (the paper's
threshold): from there on, SGD noise no longer changes which basin training ends in.

The same is done for a sparse network: the mask of a stored run's round applied to w_k (the ticket), and the
run's controls started as the variant registry says (`variants.VARIANTS`: reinit is the mask on a fresh
init, random the layer-wise shuffled mask on w_k). Both copies keep the mask, so every point of the path
does too.

Batch norm: running statistics belong to one network, not to a mix of two, so for a net with batch norm the
statistics of every point on the path (its two ends included) are recomputed from the same BN_EXAMPLES
training examples before it is evaluated; a net without batch norm is evaluated as the engine always does.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Collection, Iterator

import numpy as np
import torch

from lth_core.engine import pruning
from lth_core.engine.config import ExperimentConfig
from lth_core.engine.cpu import fixed_threads
from lth_core.engine.errors import ConfigError
from lth_core.engine.models import BN_MOMENTUM, Network, Params
from lth_core.engine.training import DeviceData, batch_order, evaluate, torch_threads, train
from lth_core.engine.variants import TICKET, VARIANTS, StartContext, generator

DEFAULT_ALPHAS = 25        # points on the path, its two ends included (the paper: about 30)
STABLE_BELOW = 0.02        # a barrier (a fraction of the test set) under this is stable, as in the paper
BN_EXAMPLES = 500          # training examples that batch-norm statistics are recomputed from, at every point
MAX_KS = 20
DENSE = "dense"            # the variant name of the unpruned network in results


@dataclass(frozen=True)
class StabilityConfig:
    """What to analyse: the network, data and training budget of `config` (a run's), at iterations `ks`.
    `variants` (the ticket and controls, names of VARIANTS) need the mask of `round` of the run; empty:
    the dense network only."""

    config: ExperimentConfig
    ks: tuple[int, ...]
    alphas: int = DEFAULT_ALPHAS
    trial: int = 0
    round: int = 0
    variants: tuple[str, ...] = ()

    def checked(self, iterations: int) -> "StabilityConfig":
        """This config, with `ks` sorted; ConfigError naming the field for a bad value."""
        ks = self.ks
        if not ks:
            raise ConfigError("ks", "needs at least one iteration, e.g. 0,25,100")
        if any(isinstance(k, bool) or not isinstance(k, int) for k in ks):
            raise ConfigError("ks", f"must be whole numbers of iterations; got {list(ks)}")
        bad = [k for k in ks if not 0 <= k <= iterations]
        if bad:
            raise ConfigError("ks", f"must be from 0 to the {iterations} iterations of a round; got {bad[0]}")
        if len(set(ks)) != len(ks):
            raise ConfigError("ks", f"each iteration once; got {list(ks)}")
        if len(ks) > MAX_KS:
            raise ConfigError("ks", f"at most {MAX_KS} iterations; got {len(ks)}")
        if isinstance(self.alphas, bool) or not isinstance(self.alphas, int) or not 3 <= self.alphas <= 101:
            raise ConfigError("alphas", f"must be a whole number of points from 3 to 101; got {self.alphas!r}")
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown:
            raise ConfigError("variants", f"unknown variant {unknown[0]!r}; known: {', '.join(VARIANTS)}")
        return replace(self, ks=tuple(sorted(ks)))


@dataclass
class PathResult:
    """The path between the two trained copies of one network (`variant`: "dense" or a VARIANTS name)
    started at iteration `k`: test error (a fraction) at each α."""

    k: int
    variant: str
    alphas: list[float]
    errors: list[float]
    weights_remaining: float = 1.0
    seconds: float = 0.0

    @property
    def end_error(self) -> float:
        """The mean test error of the two trained copies (the path's ends)."""
        return (self.errors[0] + self.errors[-1]) / 2

    @property
    def barrier(self) -> float:
        """Instability: the largest error on the path minus the mean of its ends (never below 0)."""
        return max(self.errors) - self.end_error

    @property
    def stable(self) -> bool:
        return self.barrier < STABLE_BELOW

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "variant": self.variant, "alphas": self.alphas, "errors": self.errors,
                "weights_remaining": self.weights_remaining, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PathResult":
        return cls(int(d["k"]), str(d["variant"]), [float(a) for a in d["alphas"]], [float(e) for e in d["errors"]],
                   float(d.get("weights_remaining", 1.0)), float(d.get("seconds", 0.0)))


def stable_from(paths: list[PathResult], variant: str = DENSE) -> int | None:
    """k*: the first analysed k from which `variant` stays stable at every later k analysed; None if it is
    unstable at the last one."""
    mine = sorted((p for p in paths if p.variant == variant), key=lambda p: p.k)
    found = None
    for p in mine:
        if p.stable:
            found = p.k if found is None else found
        else:
            found = None
    return found


# ---- the path ------------------------------------------------------------------------------------------

def interpolate(a: Params, b: Params, alpha: float) -> Params:
    """(1 − α)·a + α·b, parameter by parameter (α = 0 gives a, α = 1 gives b, exactly)."""
    return {n: torch.lerp(a[n], b[n], alpha) if 0 < alpha < 1 else (a[n] if alpha == 0 else b[n]).clone() for n in a}


@torch.no_grad()
def bn_statistics(net: Network, params: Params, x: torch.Tensor) -> Params:
    """Batch-norm running statistics of the V stacked networks `params`, recomputed from the examples `x`:
    one training-mode pass from zeroed statistics moves them BN_MOMENTUM of the way to the batch's mean and
    (unbiased) variance, so dividing by it gives those exactly. Empty for a net without batch norm."""
    if not net.buffer_specs:
        return {}
    models = next(iter(params.values())).shape[0]
    buffers = {n: torch.zeros((models, *shape), device=x.device) for n, shape, _ in net.buffer_specs}
    net.forward(params, buffers, x.unsqueeze(0), train=True)
    return {n: b / BN_MOMENTUM for n, b in buffers.items()}


def network_errors(net: Network, params: Params, data: DeviceData, bn_x: torch.Tensor) -> list[float]:
    """Test error of each of the V stacked networks (batch-norm statistics recomputed from `bn_x`)."""
    _, accuracy = evaluate(net, params, bn_statistics(net, params, bn_x), data.x_test, data.y_test)
    return [1.0 - float(a) for a in accuracy]


def path_errors(net: Network, a: Params, b: Params, alphas: list[float], data: DeviceData,
                bn_x: torch.Tensor) -> list[list[float]]:
    """Test error along the line from a to b (each V stacked networks): [α index][network]."""
    return [network_errors(net, interpolate(a, b, alpha), data, bn_x) for alpha in alphas]


def alpha_grid(points: int) -> list[float]:
    return [i / (points - 1) for i in range(points)]


# ---- the analysis ------------------------------------------------------------------------------------

def run_stability(cfg: StabilityConfig, ticket_mask: dict[str, np.ndarray] | None = None, *,
                  done: Collection[int] = (), should_stop: Callable[[], bool] | None = None,
                  progress: Callable[[str], None] | None = None) -> Iterator[list[PathResult]]:
    """Yield, for each k of `cfg.ks` not in `done`, the paths of the dense network and of each variant (by
    the registry, from `ticket_mask`: layer → bool array, the run's round `cfg.round`). Raises ConfigError
    before any training for a bad config."""
    import time

    from lth_core.engine.lottery import _to_device_data, make_plan

    say = progress or (lambda text: None)
    plan = make_plan(cfg.config)
    c, net = plan.config, plan.net
    iterations = plan.settings.iterations
    cfg = cfg.checked(iterations)
    if cfg.variants and ticket_mask is None:
        raise ConfigError("round", "the ticket and its controls need the mask of a finished pruned round")
    shapes = {s.layer: s.shape for s in net.prunable}
    weight_of = {s.layer: s.name for s in net.prunable}
    mask = None
    if ticket_mask is not None:
        if set(ticket_mask) != set(shapes) or any(tuple(ticket_mask[l].shape) != shapes[l] for l in shapes):
            raise ConfigError("round", "the stored mask does not fit this network")
        mask = {l: torch.from_numpy(np.asarray(ticket_mask[l], dtype=bool)) for l in shapes}
    todo = [k for k in cfg.ks if k not in set(done)]
    if not todo:
        return
    threads = fixed_threads() if net.image_like else torch.get_num_threads()
    with torch_threads(threads):
        data = _to_device_data(plan.data, plan.device)
        n_train = data.x_train.shape[0]
        init = net.init_params(generator(c.seed, cfg.trial, "init"))
        pick = torch.randperm(n_train, generator=generator(c.seed, cfg.trial, "stability", "bn"))[:BN_EXAMPLES]
        bn_x = data.x_train[pick.to(data.x_train.device)]
        say(f"training the dense network to iteration {max(todo)}")
        # the run's own round-0 data order: w_k is the run's rewind point for rewind:k
        trunk_order = batch_order(n_train, c.batch_size, iterations, generator(c.seed, cfg.trial, 0, "order"))
        full = {weight_of[l]: m.unsqueeze(0) for l, m in pruning.full_mask(shapes).items()}
        trunk = train(net, {n: p.unsqueeze(0) for n, p in init.items()}, full, data, trunk_order.unsqueeze(0),
                      replace(plan.settings, eval_every=iterations), snapshots_at=tuple(todo), steps=max(todo),
                      should_stop=should_stop)
        snapshots = _finish(trunk).snapshots
        # the two copies' data orders, the same at every k: only the starting point changes
        orders = torch.stack([batch_order(n_train, c.batch_size, iterations, generator(c.seed, cfg.trial, "stability", copy))
                              for copy in ("a", "b")])
        alphas = alpha_grid(cfg.alphas)
        for number, k in enumerate(todo, 1):
            started = time.perf_counter()
            w_k = {n: p[0].detach().cpu() for n, p in snapshots[k].items()}
            names = [DENSE, *cfg.variants]
            masks = [pruning.full_mask(shapes)]
            starts = [w_k]
            for v in cfg.variants:
                m, start = VARIANTS[v].start(StartContext(mask, w_k, init, net.init_params, c.seed, cfg.trial, cfg.round))
                masks.append({l: t.bool() for l, t in m.items()})
                starts.append(start)
            say(f"k = {k} ({number} of {len(todo)}): training two copies of {', '.join(names)} with different data orders")
            copies = starts + starts  # copy A of every network, then copy B: one data order per half
            stacked = {n: torch.stack([s[n] for s in copies]) for n in copies[0]}
            stacked_masks = {weight_of[l]: torch.stack([m[l] for m in masks + masks]) for l in shapes}
            result = _finish(train(net, stacked, stacked_masks, data, orders, replace(plan.settings, eval_every=iterations),
                                   should_stop=should_stop))
            half = len(names)
            a = {n: p[:half] for n, p in result.params.items()}
            b = {n: p[half:] for n, p in result.params.items()}
            say(f"k = {k}: evaluating {len(alphas)} points on each path")
            errors = path_errors(net, a, b, alphas, data, bn_x)
            seconds = time.perf_counter() - started
            yield [PathResult(k, name, alphas, [row[i] for row in errors], pruning.fraction_remaining(masks[i]), seconds)
                   for i, name in enumerate(names)]


def _finish(run) -> Any:
    """Drive a `train` generator to its end; its TrainResult."""
    while True:
        try:
            next(run)
        except StopIteration as stop:
            return stop.value


__all__ = ["StabilityConfig", "PathResult", "run_stability", "stable_from", "interpolate", "bn_statistics",
           "path_errors", "network_errors", "alpha_grid", "DENSE", "STABLE_BELOW", "DEFAULT_ALPHAS", "TICKET"]
