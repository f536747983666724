"""Pruning at initialisation versus IMP (Frankle et al. 2021, "Pruning neural networks at initialization:
why are we missing the mark?").

At each target, each chosen at-init criterion (SNIP, GraSP, SynFlow, magnitude at init, random) prunes the
untrained network straight to the target, in as many scoring steps as the criterion prescribes (SynFlow's
100), and the network then trains once; beside it train its three controls (the variant registry's
`random`: the layer-wise shuffle of its mask; `reinit`; `inverted`: the highest scores pruned instead of
the lowest). One cell is one (target, criterion): its trials and controls train side by side in one batch.
A cell is exactly round 1 of a one-shot lottery run with that criterion and target: the same init, the same
batch of examples to score on, the same data order and the same controls' streams. The IMP points come from
an ordinary iterative lottery run with the same controls (runs/at_init.py keeps both together).

Each target is met by the first IMP round that reaches it; the at-init methods prune to that round's very
fraction of weights, so every point of a target shares its x.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from lth_core.engine import pruning
from lth_core.engine.config import SCOPES, ExperimentConfig
from lth_core.engine.criteria import CRITERIA
from lth_core.engine.errors import ConfigError
from lth_core.engine.events import RoundFinished
from lth_core.engine.lottery import Plan, _criterion_context, _run_round, _to_device_data, make_plan
from lth_core.engine.cpu import fixed_threads
from lth_core.engine.training import torch_threads
from lth_core.engine.variants import CONTROLS, TICKET, generator

IMP = "imp"                                  # the IMP ticket's method name among the criteria's
AT_INIT_CONTROLS = ("random", "reinit", "inverted")   # shuffle, reinit, inverted scores: Frankle et al. 2021
DEFAULT_CRITERIA = ("snip", "grasp", "synflow", "magnitude-at-init", "random")
DEFAULT_TARGETS = (0.5, 0.2, 0.07, 0.03)
MAX_TARGETS = 12


def at_init_criteria() -> tuple[str, ...]:
    """The criteria that can prune before any training: those that read no trained weights."""
    return tuple(n for n, c in CRITERIA.items() if "trained" not in c.needs)


@dataclass(frozen=True)
class AtInitSpec:
    """What the experiment compares: `targets` (fractions of weights remaining), the at-init `criteria`,
    the `controls` every method trains beside it, and how the at-init methods spread a target over the
    layers (`scope`: global, as the papers do, lets each criterion choose its per-layer densities)."""

    targets: tuple[float, ...] = DEFAULT_TARGETS
    criteria: tuple[str, ...] = DEFAULT_CRITERIA
    controls: tuple[str, ...] = AT_INIT_CONTROLS
    scope: str = "global"

    def validated(self) -> "AtInitSpec":
        if not self.targets:
            raise ConfigError("targets", "give at least one fraction of weights remaining, e.g. 0.2,0.07")
        if len(self.targets) > MAX_TARGETS:
            raise ConfigError("targets", f"at most {MAX_TARGETS} targets; got {len(self.targets)}")
        for t in self.targets:
            if isinstance(t, bool) or not isinstance(t, (int, float)) or math.isnan(t) or not 0 < t < 1:
                raise ConfigError("targets", f"each must be a fraction of weights remaining in (0, 1), e.g. 0.2; got {t!r}")
        if len(set(self.targets)) < len(self.targets):
            raise ConfigError("targets", "a target is given twice")
        if not self.criteria:
            raise ConfigError("criteria", f"give at least one of {', '.join(at_init_criteria())}")
        allowed = at_init_criteria()
        for c in self.criteria:
            if c in CRITERIA and c not in allowed:
                raise ConfigError("criteria", f"{c} scores the trained weights, so it cannot prune before training; "
                                              f"choose from {', '.join(allowed)}")
            if c not in allowed:
                raise ConfigError("criteria", f"must be among {', '.join(allowed)}; got {c!r}")
        if len(set(self.criteria)) < len(self.criteria):
            raise ConfigError("criteria", "a criterion is given twice")
        for c in self.controls:
            if c not in CONTROLS:
                raise ConfigError("controls", f"must be among {', '.join(CONTROLS)}; got {c!r}")
        if self.scope not in SCOPES:
            raise ConfigError("scope", f"must be one of {', '.join(SCOPES)}; got {self.scope!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"targets": list(self.targets), "criteria": list(self.criteria), "controls": list(self.controls),
                "scope": self.scope}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AtInitSpec":
        return cls(tuple(data["targets"]), tuple(data["criteria"]), tuple(data["controls"]), data["scope"]).validated()


def parse_targets(text: str) -> tuple[float, ...]:
    """'0.2,0.07' or '20%,7%' → (0.2, 0.07); ConfigError naming `targets` otherwise."""
    out = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        try:
            out.append(float(part[:-1]) / 100 if part.endswith("%") else float(part))
        except ValueError:
            raise ConfigError("targets", f"cannot read {part!r}; expected fractions in (0, 1) such as 0.2,0.07") from None
    return tuple(out)


def imp_config(base: ExperimentConfig, spec: AtInitSpec) -> ExperimentConfig:
    """The IMP run of the experiment: `base`'s training, iterative rounds down to the lowest target, the
    paper's criterion (magnitude after training), and the spec's controls."""
    return base.replace(schedule="iterative", rounds=None, target_remaining=min(spec.targets), criterion="magnitude",
                        controls=spec.controls)


def imp_rounds(plan: Plan, targets) -> dict[float, int]:
    """target → the first IMP round whose planned fraction of weights remaining is at or below it."""
    planned = plan.planned_remaining
    return {t: next(r for r, f in enumerate(planned) if f <= t) for t in targets}


def cell_config(imp: ExperimentConfig, spec: AtInitSpec, criterion: str, fraction: float) -> ExperimentConfig:
    """The one-shot config whose round 1 is the cell (criterion, fraction). Always reset to init: a method
    pruning at init trains from the init it scored (whatever reset the IMP run uses)."""
    return imp.replace(schedule="one-shot", rounds=None, target_remaining=fraction, criterion=criterion,
                       scope=spec.scope, controls=spec.controls, reset="init")


@dataclass(frozen=True)
class Cell:
    target: float        # the target as asked
    fraction: float      # the IMP round's planned fraction that the cell prunes to
    round: int           # that IMP round
    criterion: str

    @property
    def key(self) -> str:
        return f"{self.target:.6g}/{self.criterion}"


def cells(imp_plan: Plan, spec: AtInitSpec) -> list[Cell]:
    """Every (target, criterion) cell, the highest target first."""
    rounds = imp_rounds(imp_plan, spec.targets)
    return [Cell(t, imp_plan.planned_remaining[rounds[t]], rounds[t], c)
            for t in sorted(spec.targets, reverse=True) for c in spec.criteria]


def check_criteria_fit(imp: ExperimentConfig, spec: AtInitSpec) -> None:
    """Score the untrained network once with every chosen criterion, before anything trains: a criterion
    that fails on this architecture, or whose scores leave nothing to rank by (not finite, or all zero in a
    layer), is refused with the reason (ConfigError naming `criteria`)."""
    for criterion in spec.criteria:
        plan = make_plan(cell_config(imp, spec, criterion, min(spec.targets)).replace(trials=1))
        net = plan.net
        init = net.init_params(generator(plan.config.seed, 0, "init"))
        data = _to_device_data(plan.data, torch.device("cpu"))
        full = pruning.full_mask({s.layer: s.shape for s in net.prunable})
        context = _criterion_context(plan, data, full, None, init, init, (0, 0))
        reason = None
        try:
            got = CRITERIA[criterion].score(context)
        except Exception as exc:  # noqa: BLE001 - the reason is what the user reads
            reason = f"scoring failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        else:
            for layer, s in got.items():
                if not bool(torch.isfinite(s).all()):
                    reason = f"its scores of layer {layer} are not finite"
                elif not bool((s != 0).any()):
                    reason = f"it scores every weight of layer {layer} zero, so there is nothing to rank by"
                if reason:
                    break
        if reason:
            raise ConfigError("criteria", f"{criterion} does not fit {imp.arch} on {imp.dataset}: {reason}")


def run_cell(imp: ExperimentConfig, spec: AtInitSpec, cell: Cell,
             should_stop: Callable[[], bool] | None = None) -> list[RoundFinished]:
    """Prune every trial's untrained network with the cell's criterion (and its inverse, for the inverted
    control), then train it once beside its controls; returns one RoundFinished per (trial, variant)."""
    plan = make_plan(cell_config(imp, spec, cell.criterion, cell.fraction))
    cfg, net = plan.config, plan.net
    counts = pruning.one_shot_counts(net.layer_totals(), net.layer_kinds(), plan.rates, cfg.scope, cfg.prune_rate,
                                     plan.levels)
    with torch_threads(torch.get_num_threads()):  # as run_experiment: restored afterwards
        if plan.device.type == "cpu":
            torch.set_num_threads(fixed_threads())
        data = _to_device_data(plan.data, plan.device)
        states = []
        for trial in range(cfg.trials):
            init = net.init_params(generator(cfg.seed, trial, "init"))  # the same w₀ as the IMP run's trial
            full = pruning.full_mask({s.layer: s.shape for s in net.prunable})
            # as a one-shot run prunes after round 0 with reset init: scored at w₀, on round 0's batch
            context = _criterion_context(plan, data, full, None, init, init, (trial, 0))
            state = {"init": init, "mask": pruning.prune(cfg.criterion, context, counts)}
            if "inverted" in cfg.variants:
                state["inverted"] = pruning.prune(cfg.criterion, context, counts, invert=True)
            states.append(state)
        return [e for e in _run_round(plan, data, states, 1, should_stop, prune_next=False)
                if isinstance(e, RoundFinished)]


def cell_rows(cell: Cell, finished: list[RoundFinished]) -> list[dict[str, Any]]:
    """A cell's results as JSON-able rows: one per (trial, variant), with its per-layer counts."""
    return [{"method": cell.criterion, "target": cell.target, "trial": e.trial, "variant": e.variant,
             "weights_remaining": e.weights_remaining, "test_accuracy": e.test_accuracy,
             "early_stop_test_accuracy": e.early_stop_test_accuracy, "early_stop_iteration": e.early_stop_iteration,
             "layers": {l: list(v) for l, v in e.layers.items()}} for e in finished]


__all__ = ["IMP", "TICKET", "AT_INIT_CONTROLS", "DEFAULT_CRITERIA", "DEFAULT_TARGETS", "AtInitSpec", "Cell",
           "at_init_criteria", "parse_targets", "imp_config", "imp_rounds", "cell_config", "cells",
           "check_criteria_fit", "run_cell", "cell_rows"]
