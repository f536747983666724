"""Pruning criteria: how each weight is scored for keeping. One registry entry per criterion.

A criterion only *scores* (higher = keep); `pruning.select` turns the scores into the next mask
under the round's counts, layer-wise or global, the same for every criterion. A criterion names
what it reads (`needs`), and the runner fills only those fields of the context.

Adding one (say SNIP, which needs the network and batches of training data): write its score
function, add an entry to CRITERIA, and, for a need the runner does not supply yet ("data",
"grads"), add the field to CriterionContext and fill it in `lottery._criterion_context`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

Weights = dict[str, torch.Tensor]  # layer → its weight tensor (not the bias), one model, on the CPU


@dataclass(frozen=True)
class CriterionContext:
    """What a criterion may read. Fields a criterion does not need may be None."""

    mask: dict[str, torch.Tensor]     # the current mask (True = alive); dead weights are never revived
    trained: Weights | None = None    # w_T: the weights after this round's training
    init: Weights | None = None       # w₀: the original initial weights (also with reset rewind:K)


@dataclass(frozen=True)
class Criterion:
    name: str
    explanation: str                  # one line: the form's help and `--help` read it
    needs: frozenset[str]             # context fields the score reads: "trained", "init"
    score: Callable[[CriterionContext], Weights]


def _magnitude(c: CriterionContext) -> Weights:
    return {l: w.abs() for l, w in c.trained.items()}


def _magnitude_at_init(c: CriterionContext) -> Weights:
    return {l: w.abs() for l, w in c.init.items()}


def _magnitude_increase(c: CriterionContext) -> Weights:
    return {l: c.trained[l].abs() - c.init[l].abs() for l in c.trained}


CRITERIA: dict[str, Criterion] = {c.name: c for c in (
    Criterion("magnitude", "keep the weights largest after training, |w_T| (the paper's criterion)",
              frozenset({"trained"}), _magnitude),
    Criterion("magnitude-at-init", "keep the weights largest at the original init, |w₀| (also with rewind:K); "
              "training plays no part: the paper's negative control", frozenset({"init"}), _magnitude_at_init),
    Criterion("magnitude-increase", "keep the weights whose magnitude grew most in training, |w_T| − |w₀| "
              "(w₀ the original init, also with rewind:K; Zhou et al. 2019)", frozenset({"trained", "init"}),
              _magnitude_increase),
)}
DEFAULT_CRITERION = "magnitude"


def scores(name: str, context: CriterionContext) -> Weights:
    """Score every weight of every layer in `context.mask` with criterion `name`."""
    criterion = CRITERIA[name]
    missing = sorted(n for n in criterion.needs if getattr(context, n, None) is None)
    if missing:  # a runner bug, not bad input: the runner fills what `needs` names
        raise ValueError(f"criterion {name} needs {', '.join(missing)}, which the runner did not supply")
    out = criterion.score(context)
    return {layer: out[layer] for layer in context.mask}


def help_text() -> str:
    """The criteria and their explanations, for the config field's help."""
    return "; ".join(f"{c.name}: {c.explanation}" for c in CRITERIA.values())
