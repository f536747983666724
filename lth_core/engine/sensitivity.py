"""Per-layer sensitivity: how much each layer alone can be pruned before the network notices.

Take a trained dense network; prune ONE layer at a time by magnitude to each of a series of sparsities, the
other layers left dense; measure validation and test accuracy with no retraining and after a short fine-tune
in which the mask is held (the pruned weights stay exactly zero). All sparsities of one layer train together
as one stacked model, from one data order seeded by (seed, trial, layer): a layer's numbers do not depend on
which other layers were measured before, so a measurement stopped after some layers resumes with the rest and
gives the numbers an unbroken one would.

From the validation accuracies only (never test) `suggest_rates` derives the per-round rates an experiment
config accepts (`rate_fc`, `rate_conv`, `rate_output`: the config's rates are per layer type), so that each
type reaches, after the experiment's rounds, the sparsity its most sensitive layer tolerates.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import torch

from lth_core.engine import pruning
from lth_core.engine.errors import ConfigError
from lth_core.engine.models import Network, Params
from lth_core.engine.training import DeviceData, TrainSettings, batch_order, evaluate, train
from lth_core.engine.variants import generator

DEFAULT_SPARSITIES = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98)
DEFAULT_FINETUNE_STEPS = 100      # iterations of fine-tuning per layer and sparsity (all sparsities together)
DEFAULT_TOLERANCE = 1.0           # points of validation accuracy a pruned layer may lose against dense
MAX_SPARSITIES = 12
MAX_FINETUNE_STEPS = 100_000
RATE_FIELDS = {"fc": "rate_fc", "conv": "rate_conv", "output": "rate_output"}  # ExperimentConfig's per-type rates


@dataclass(frozen=True)
class SensitivityConfig:
    """What a sensitivity measurement does: the sparsities each layer is pruned to, and the fine-tune budget."""

    sparsities: tuple[float, ...] = DEFAULT_SPARSITIES
    finetune_steps: int = DEFAULT_FINETUNE_STEPS   # 0: no fine-tune, the no-retraining numbers only

    def validated(self) -> "SensitivityConfig":
        values = self.sparsities
        if not isinstance(values, tuple) or not 1 <= len(values) <= MAX_SPARSITIES:
            raise ConfigError("sparsities", f"give 1 to {MAX_SPARSITIES} sparsities, e.g. 50,70,90 (percent); "
                                            f"got {len(values) if isinstance(values, tuple) else values!r}")
        for s in values:
            if isinstance(s, bool) or not isinstance(s, (int, float)) or math.isnan(s) or not 0 < s < 1:
                raise ConfigError("sparsities", f"each must be between 0 % and 100 % (both excluded); got "
                                                f"{_percent(s)}")
        if len(set(values)) != len(values):
            raise ConfigError("sparsities", f"each sparsity once; got {', '.join(_percent(s) for s in values)}")
        steps = self.finetune_steps
        if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= MAX_FINETUNE_STEPS:
            raise ConfigError("finetune_steps", f"must be a whole number of iterations from 0 (no fine-tune) to "
                                                f"{MAX_FINETUNE_STEPS}; got {steps!r}")
        return replace(self, sparsities=tuple(sorted(float(s) for s in values)))

    def to_dict(self) -> dict[str, Any]:
        return {"sparsities": list(self.sparsities), "finetune_steps": self.finetune_steps}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SensitivityConfig":
        return cls(tuple(data.get("sparsities", DEFAULT_SPARSITIES)),
                   data.get("finetune_steps", DEFAULT_FINETUNE_STEPS)).validated()


def parse_sparsities(text: str | None) -> tuple[float, ...] | None:
    """'50,70,90' (percent) → (0.5, 0.7, 0.9); ConfigError naming `sparsities` otherwise."""
    if text is None:
        return None
    try:
        values = tuple(float(part) / 100 for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError("sparsities", f"expected percentages separated by commas, e.g. 50,70,90; got {text!r}") from None
    if any(math.isnan(v) for v in values):
        raise ConfigError("sparsities", f"expected percentages separated by commas, e.g. 50,70,90; got {text!r}")
    return values


def _percent(value: Any) -> str:
    return f"{100 * value:g} %" if isinstance(value, (int, float)) and not isinstance(value, bool) else repr(value)


@dataclass(frozen=True)
class LayerPoint:
    """One layer pruned to one sparsity, the others dense: its counts and accuracies (fractions)."""

    layer: str
    kind: str                  # fc / conv / output
    sparsity: float            # asked for
    total: int
    kept: int                  # total - round(sparsity · total), at least 1
    val_pruned: float          # no retraining
    test_pruned: float
    val_finetuned: float | None    # after finetune_steps iterations with the mask held (None without fine-tune)
    test_finetuned: float | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class SensitivityResult:
    """A measurement: the dense network's accuracies and, per layer measured so far, its points."""

    config: SensitivityConfig
    dense_val: float
    dense_test: float
    kinds: dict[str, str]                    # every prunable layer, in the network's order → fc / conv / output
    points: dict[str, list[LayerPoint]] = field(default_factory=dict)   # measured layers
    # the dense network after the same fine-tune (no mask): what a fine-tuned layer is judged against, so the
    # extra training itself is not counted as a layer's tolerance (None without fine-tune)
    dense_val_finetuned: float | None = None
    dense_test_finetuned: float | None = None

    @property
    def reference_val(self) -> float:
        """The validation accuracy a pruned layer is compared with: dense, fine-tuned alike when there was a fine-tune."""
        return self.dense_val if self.dense_val_finetuned is None else self.dense_val_finetuned

    @property
    def complete(self) -> bool:
        return all(layer in self.points for layer in self.kinds)

    def rows(self) -> list[dict[str, Any]]:
        return [p.to_dict() for layer in self.kinds for p in self.points.get(layer, [])]

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "dense_val": self.dense_val, "dense_test": self.dense_test,
                "kinds": dict(self.kinds), "points": {l: [p.to_dict() for p in ps] for l, ps in self.points.items()},
                "dense_val_finetuned": self.dense_val_finetuned, "dense_test_finetuned": self.dense_test_finetuned,
                "complete": self.complete}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SensitivityResult":
        return cls(SensitivityConfig.from_dict(data["config"]), float(data["dense_val"]), float(data["dense_test"]),
                   dict(data["kinds"]), {l: [LayerPoint(**p) for p in ps] for l, ps in data.get("points", {}).items()},
                   data.get("dense_val_finetuned"), data.get("dense_test_finetuned"))


def kept_count(total: int, sparsity: float) -> int:
    """Weights a layer of `total` keeps at `sparsity`: the rest, rounded, pruned; never the whole layer."""
    return max(1, total - round(sparsity * total))


def prune_one_layer(params: Params, weight: str, sparsity: float) -> tuple[Params, torch.Tensor]:
    """`params` (one model) with only `weight` pruned by magnitude to `sparsity`: (new params, its bool mask).
    Every other tensor is the same object, untouched."""
    w = params[weight]
    keep = kept_count(w.numel(), sparsity)
    mask = pruning.select({weight: w.abs()}, {weight: torch.ones_like(w, dtype=torch.bool)}, {weight: keep})[weight]
    return {**params, weight: w * mask}, mask


def measure_layer(net: Network, params: Params, buffers: Params, data: DeviceData, settings: TrainSettings,
                  config: SensitivityConfig, layer: str, seed: int, trial: int = 0,
                  should_stop: Callable[[], bool] | None = None) -> list[LayerPoint]:
    """Every sparsity of `config` for one layer: no retraining, then (with finetune_steps) fine-tuned together
    as one stacked model at the run's final learning rate, the mask re-applied after every step."""
    spec = next(s for s in net.prunable if s.layer == layer)
    pruned = [prune_one_layer(params, spec.name, s) for s in config.sparsities]
    models = len(pruned)
    stacked = {n: torch.stack([p[n] for p, _ in pruned]) for n in params}
    stacked_buffers = {n: b.unsqueeze(0).expand(models, *b.shape).clone() for n, b in buffers.items()}
    x = torch.cat([data.x_val, data.x_test])
    y = torch.cat([data.y_val, data.y_test])
    _, acc = evaluate(net, stacked, stacked_buffers, x, y, splits=(data.x_val.shape[0], data.x_test.shape[0]))
    val_ft: list[float | None] = [None] * models
    test_ft: list[float | None] = [None] * models
    if config.finetune_steps:
        masks = {spec.name: torch.stack([m for _, m in pruned])}
        val_ft, test_ft = fine_tune(net, stacked, masks, data, settings, config.finetune_steps,
                                    generator(seed, trial, "sensitivity", layer), should_stop)
    total = math.prod(spec.shape)
    return [LayerPoint(layer, spec.kind, s, total, int(mask.sum()), float(acc[0][i]), float(acc[1][i]),
                       val_ft[i], test_ft[i])
            for i, (s, (_, mask)) in enumerate(zip(config.sparsities, pruned))]


def fine_tune(net: Network, stacked: Params, masks: dict[str, torch.Tensor], data: DeviceData,
              settings: TrainSettings, steps: int, order_generator: torch.Generator,
              should_stop: Callable[[], bool] | None = None) -> tuple[list[float], list[float]]:
    """Train the stacked models `steps` iterations at the run's final learning rate, on one data order, with
    `masks` re-applied after every step; their validation and test accuracy at the end."""
    tune = replace(settings, iterations=steps, eval_every=steps, warmup=0, fine_tune=True)
    order = batch_order(data.x_train.shape[0], settings.batch_size, steps, order_generator).unsqueeze(0)
    run = train(net, stacked, masks, data, order, tune, should_stop=should_stop)
    while True:  # a batch-norm net fine-tunes with fresh running statistics, as every round of a run does
        try:
            next(run)
        except StopIteration as stop:
            last = stop.value.history[-1]
            return [float(v) for v in last.val_accuracy], [float(v) for v in last.test_accuracy]


def layer_sensitivity(net: Network, params: Params, buffers: Params, data: DeviceData, settings: TrainSettings,
                      config: SensitivityConfig, *, seed: int, trial: int = 0,
                      done: SensitivityResult | None = None,
                      on_layer: Callable[[SensitivityResult, str], None] | None = None,
                      should_stop: Callable[[], bool] | None = None) -> SensitivityResult:
    """Measure every prunable layer of the trained dense network (`params`, `buffers`: one model, unstacked).
    Layers already in `done` (a stopped measurement of the same config) are kept, not measured again;
    `on_layer(result, layer)` is called after each new layer (to store it)."""
    config = config.validated()
    x = torch.cat([data.x_val, data.x_test])
    y = torch.cat([data.y_val, data.y_test])
    one = {n: p.unsqueeze(0) for n, p in params.items()}
    _, acc = evaluate(net, one, {n: b.unsqueeze(0) for n, b in buffers.items()}, x, y,
                      splits=(data.x_val.shape[0], data.x_test.shape[0]))
    result = SensitivityResult(config, float(acc[0][0]), float(acc[1][0]), net.layer_kinds())
    if config.finetune_steps:
        (val,), (test,) = fine_tune(net, one, {}, data, settings, config.finetune_steps,
                                    generator(seed, trial, "sensitivity", "dense"), should_stop)
        result.dense_val_finetuned, result.dense_test_finetuned = val, test
    if done is not None and done.config == config:
        result.points = {l: ps for l, ps in done.points.items() if l in result.kinds}
    for layer in result.kinds:
        if layer in result.points:
            continue
        result.points[layer] = measure_layer(net, params, buffers, data, settings, config, layer, seed, trial,
                                             should_stop)
        if on_layer is not None:
            on_layer(result, layer)
    return result


# ---- the suggested rates: from validation accuracy only ----------------------------------------------

@dataclass(frozen=True)
class RateSuggestion:
    """Per layer, the highest measured sparsity whose validation accuracy (fine-tuned when there was a fine-tune,
    against the dense network fine-tuned alike) stays within `tolerance` points of dense at it and at every lower sparsity; per layer type the per-round rate
    that reaches its most sensitive layer's sparsity after `rounds` rounds (0: leave the type unpruned)."""

    safe: dict[str, float]          # layer → sparsity it tolerates (0.0: not even the lowest measured)
    kinds: dict[str, str]
    rounds: int
    tolerance: float
    rates: dict[str, float]         # ExperimentConfig field (rate_fc, rate_conv, rate_output) → rate per round
    deciding: dict[str, str]        # the same field → the layer that decided it
    finetuned: bool = False         # judged after the fine-tune (else with no retraining)

    def settings(self) -> dict[str, Any]:
        """The ExperimentConfig settings that apply it (layer-wise: a global threshold ignores per-type rates)."""
        return {"scope": "layerwise", **self.rates}


def suggest_rates(result: SensitivityResult, rounds: int, tolerance: float = DEFAULT_TOLERANCE) -> RateSuggestion:
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= 60:
        raise ConfigError("rounds", f"must be a whole number from 1 to 60; got {rounds!r}")
    if not (isinstance(tolerance, (int, float)) and 0 <= tolerance <= 100):
        raise ConfigError("tolerance", f"must be between 0 and 100 points; got {tolerance!r}")
    floor = result.reference_val - tolerance / 100 - 1e-9
    safe: dict[str, float] = {}
    for layer, points in result.points.items():
        reached = 0.0
        for p in sorted(points, key=lambda p: p.sparsity):
            val = p.val_finetuned if p.val_finetuned is not None else p.val_pruned
            if val < floor:
                break
            reached = p.sparsity
        safe[layer] = reached
    rates: dict[str, float] = {}
    deciding: dict[str, str] = {}
    for kind, name in RATE_FIELDS.items():
        layers = [l for l, k in result.kinds.items() if k == kind and l in safe]
        if not layers:
            continue
        weakest = min(layers, key=lambda l: safe[l])
        # (1 - rate)^rounds = 1 - sparsity, rounded down to a whole percent so the type never passes its sparsity
        rate = math.floor(100 * (1 - (1 - safe[weakest]) ** (1 / rounds)) + 1e-9) / 100
        rates[name], deciding[name] = min(rate, 0.95), weakest
    return RateSuggestion(safe, {l: result.kinds[l] for l in safe}, rounds, float(tolerance), rates, deciding,
                          result.dense_val_finetuned is not None)
