"""Masks: selection by score (layer-wise or global; criteria.py makes the scores), random masks with
matched counts, and the arithmetic of how many weights each round keeps. Pure functions of tensors; no training here.

A mask is a dict layer → bool tensor of the layer's weight shape (one model, unstacked).
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import NoReturn

import torch

from . import criteria
from lth_core.engine.config import MAX_ROUNDS
from lth_core.engine.criteria import CriterionContext
from lth_core.engine.errors import ConfigError, TrainingFailed

Mask = dict[str, torch.Tensor]


def layer_rates(kinds: dict[str, str], rate_for: dict[str, float]) -> dict[str, float]:
    """Rate of each layer from its type (fc / conv / output)."""
    return {layer: rate_for[kind] for layer, kind in kinds.items()}


def _pooled(kinds: dict[str, str], rates: dict[str, float]) -> list[str]:
    """Layers that share one global threshold: hidden layers with a non-zero rate (output keeps its own)."""
    return [l for l, k in kinds.items() if k != "output" and rates[l] > 0]


def next_counts(alive: dict[str, int], kinds: dict[str, str], rates: dict[str, float],
                scope: str, global_rate: float) -> dict[str, int | None]:
    """How many weights survive one more iterative round.

    Layer-wise: each layer keeps alive - round(rate · alive). Global: the pooled layers keep
    that many *in total* (returned as None per layer; the split is decided by the scores).
    """
    out: dict[str, int | None] = {}
    pooled = _pooled(kinds, rates) if scope == "global" else []
    for layer, n in alive.items():
        out[layer] = None if layer in pooled else n - round(rates[layer] * n)
    if pooled:
        total = sum(alive[l] for l in pooled)
        out["__pool__"] = total - round(global_rate * total)
    return out


def one_shot_counts(totals: dict[str, int], kinds: dict[str, str], rates: dict[str, float],
                    scope: str, global_rate: float, levels: float) -> dict[str, int | None]:
    """Counts that `levels` iterative rounds would reach, applied in a single step (`levels` may be
    fractional: a one-shot prune to a target keeps the per-layer rates' proportions and hits it)."""
    out: dict[str, int | None] = {}
    pooled = _pooled(kinds, rates) if scope == "global" else []
    for layer, n in totals.items():
        out[layer] = None if layer in pooled else max(1, round(n * (1 - rates[layer]) ** levels))
    if pooled:
        out["__pool__"] = max(1, round(sum(totals[l] for l in pooled) * (1 - global_rate) ** levels))
    return out


def one_shot_fraction(levels: float, totals: dict[str, int], **rate_args) -> float:
    """Fraction of prunable weights a one-shot prune to `levels` keeps."""
    counts = one_shot_counts(totals, levels=levels, **rate_args)
    return sum(c for c in counts.values() if c is not None) / sum(totals.values())


def one_shot_level(target: float, **plan_args) -> float:
    """The smallest (fractional) level whose one-shot prune keeps at most `target` of the weights."""
    low, high = 0.0, float(MAX_ROUNDS)
    if one_shot_fraction(high, **plan_args) > target:
        _unreachable(target, one_shot_fraction(high, **plan_args))
    for _ in range(50):  # bisection: the fraction only falls as the level rises
        mid = (low + high) / 2
        low, high = (low, mid) if one_shot_fraction(mid, **plan_args) <= target else (mid, high)
    return high


def planned_remaining(totals: dict[str, int], kinds: dict[str, str], rates: dict[str, float],
                      scope: str, global_rate: float, rounds: int) -> list[float]:
    """Fraction of prunable weights remaining after iterative rounds 0..rounds (index 0 = dense = 1.0)."""
    grand = sum(totals.values())
    fractions = [1.0]
    alive = dict(totals)
    for _ in range(rounds):
        counts = next_counts(alive, kinds, rates, scope, global_rate)
        pool = counts.pop("__pool__", None)
        alive = {l: (c if c is not None else 0) for l, c in counts.items()}
        kept = sum(alive.values()) + (pool or 0)
        if pool is not None:  # keep a per-layer split for the next simulated round (proportional)
            pooled = [l for l, c in counts.items() if c is None]
            pool_total = sum(totals[l] for l in pooled)
            for l in pooled:
                alive[l] = round(pool * totals[l] / pool_total)
        fractions.append(kept / grand)
    return fractions


def rounds_for_target(target: float, **plan_args) -> int:
    """Fewest rounds whose planned fraction remaining is ≤ target (iterative schedule)."""
    fractions = planned_remaining(rounds=MAX_ROUNDS, **plan_args)
    for r, f in enumerate(fractions):
        if f <= target:
            return r
    _unreachable(target, fractions[-1])


def _unreachable(target: float, least: float) -> NoReturn:
    raise ConfigError("target_remaining", f"{target:g} is not reached within {MAX_ROUNDS} rounds at these rates "
                      f"({MAX_ROUNDS} rounds leave {least:.3g}); raise the rates or the target")


def _top_k_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    mask = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
    if k > 0:
        mask[torch.topk(scores.flatten(), k, sorted=False).indices] = True
    return mask.view_as(scores)


def select(scores: dict[str, torch.Tensor], mask: Mask, counts: dict[str, int | None]) -> Mask:
    """The next mask: keep the `counts[layer]` highest-scoring weights among those still alive;
    pooled layers (count None) share one threshold keeping `counts['__pool__']` in total. The same
    step for every criterion (criteria.py only scores); a pruned weight never comes back."""
    for layer, s in scores.items():
        if not bool(torch.isfinite(s[mask[layer]]).all()):
            raise TrainingFailed(f"the pruning scores of layer {layer} are NaN or infinite; nothing to rank by")

    def alive_scores(layer: str) -> torch.Tensor:  # dead weights rank below every alive one
        return torch.where(mask[layer], scores[layer], torch.full_like(scores[layer], -math.inf))

    new: Mask = {}
    pooled = [l for l, c in counts.items() if c is None]
    for layer, c in counts.items():
        if c is None or layer == "__pool__":
            continue
        new[layer] = _top_k_mask(alive_scores(layer), min(c, int(mask[layer].sum())))
    if pooled:
        flat = torch.cat([alive_scores(l).flatten() for l in pooled])
        keep = _top_k_mask(flat, min(int(counts["__pool__"]), int(sum(mask[l].sum() for l in pooled))))
        offset = 0
        for l in pooled:
            n = scores[l].numel()
            new[l] = keep[offset:offset + n].view_as(scores[l])
            offset += n
    return {layer: new[layer] for layer in mask}


def prune(criterion: str, context: CriterionContext, counts: dict[str, int | None], *, invert: bool = False) -> Mask:
    """Score the weights with `criterion`, then select the next mask under `counts`. A criterion of many
    `iterations` gets there in that many steps, each keeping the same share of what the last one kept
    (an exponential schedule), re-scored on the mask of the step before. `invert`: keep the lowest scores
    instead of the highest (the inverted-scores control of Frankle et al. 2021), at every step."""
    steps = criteria.CRITERIA[criterion].iterations
    sign = -1.0 if invert else 1.0

    def scored(ctx: CriterionContext) -> dict[str, torch.Tensor]:
        return {l: sign * s for l, s in criteria.scores(criterion, ctx).items()}

    if steps == 1:
        return select(scored(context), context.mask, counts)
    start = remaining_counts(context.mask)
    pooled = [l for l, c in counts.items() if c is None]
    start["__pool__"] = sum(start[l] for l in pooled)
    mask = context.mask
    for k in range(1, steps + 1):
        step = {l: None if c is None else _between(start[l], c, k / steps) for l, c in counts.items()}
        mask = select(scored(replace(context, mask=mask)), mask, step)
    return mask


def _between(alive: int, target: int, t: float) -> int:
    """The count a fraction t of the way from `alive` to `target` on a geometric path (exact at t = 1)."""
    if t >= 1 or alive <= 0 or target >= alive:
        return target
    return max(target, round(alive * (max(target, 1) / alive) ** t))


def random_mask_like(mask: Mask, generator: torch.Generator) -> Mask:
    """A uniformly random mask with exactly the same number of survivors in every layer."""
    out: Mask = {}
    for layer, m in mask.items():
        n, k = m.numel(), int(m.sum())
        keep = torch.zeros(n, dtype=torch.bool)
        keep[torch.randperm(n, generator=generator)[:k]] = True
        out[layer] = keep.view(m.shape).to(m.device)
    return out


def full_mask(shapes: dict[str, tuple[int, ...]], device: torch.device | str = "cpu") -> Mask:
    return {layer: torch.ones(shape, dtype=torch.bool, device=device) for layer, shape in shapes.items()}


def remaining_counts(mask: Mask) -> dict[str, int]:
    return {layer: int(m.sum()) for layer, m in mask.items()}


def fraction_remaining(mask: Mask) -> float:
    """Fraction of prunable weights still alive: `weights_remaining` in results."""
    total = sum(m.numel() for m in mask.values())
    return sum(int(m.sum()) for m in mask.values()) / total

