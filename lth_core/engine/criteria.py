"""Pruning criteria: how each weight is scored for keeping. One registry entry per criterion.

A criterion only *scores* (higher = keep); `pruning.select` turns the scores into the next mask
under the round's counts, layer-wise or global, the same for every criterion. A criterion names
what it reads (`needs`), and the runner fills only those fields of the context.

Adding one: write its score function and add an entry to CRITERIA; for a need the runner does not
supply yet, add the field to CriterionContext and fill it in `lottery._criterion_context`.

The criteria that prune at initialisation (SNIP, GraSP, SynFlow, random) score the network at the
point the next round starts from (`start`: the original init, the rewind point, or with `reset none`
the trained weights), masked by the current mask; SNIP and GraSP also read a batch of training data.
SynFlow is data-free and prunes in many small steps (`iterations`): `pruning.prune` re-scores after each.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

Weights = dict[str, torch.Tensor]  # layer → its weight tensor (not the bias), one model, on the CPU


@dataclass(frozen=True)
class CriterionContext:
    """What a criterion may read. Fields a criterion does not need may be None."""

    mask: dict[str, torch.Tensor]     # the current mask (True = alive); dead weights are never revived
    trained: Weights | None = None    # w_T: the weights after this round's training
    init: Weights | None = None       # w₀: the original initial weights (also with reset rewind:K)
    start: Weights | None = None      # the weights the next round starts from (init, rewind point, or trained)
    probe: "Probe | None" = None      # the network as a function of its weights, with a batch of training data
    generator: torch.Generator | None = None  # for random scores: seeded by (seed, trial, round)


@dataclass(frozen=True)
class Probe:
    """One model of the network as a function of its prunable weights (the other parameters fixed at the
    round's starting point): a plain torch module, and a batch of training examples for data criteria."""

    module: nn.Module
    weight_of: dict[str, str]          # layer → the module's parameter name
    input_shape: tuple[int, ...]
    x: torch.Tensor | None = None      # (B, *input_shape)
    y: torch.Tensor | None = None      # (B,) class indices

    def logits(self, weights: Weights, x: torch.Tensor, absolute: bool = False) -> torch.Tensor:
        """The module's output with `weights` in place of its prunable weights; `absolute`: every other
        parameter replaced by its absolute value too (SynFlow's linearised network)."""
        params = {self.weight_of[l]: w for l, w in weights.items()}
        if absolute:
            params = {**{n: p.detach().abs() for n, p in self.module.named_parameters()}, **params}
        return functional_call(self.module, params, (x,))


@dataclass(frozen=True)
class Criterion:
    name: str
    explanation: str                  # one line: the form's help and `--help` read it
    needs: frozenset[str]             # context fields the score reads: "trained", "init", "start", "probe", "generator"
    score: Callable[[CriterionContext], Weights]
    iterations: int = 1               # prune in this many steps, re-scoring after each (exponential schedule)
    at_init: bool = False             # scores the starting point, not what training learned


def _magnitude(c: CriterionContext) -> Weights:
    return {l: w.abs() for l, w in c.trained.items()}


def _magnitude_at_init(c: CriterionContext) -> Weights:
    return {l: w.abs() for l, w in c.init.items()}


def _magnitude_increase(c: CriterionContext) -> Weights:
    return {l: c.trained[l].abs() - c.init[l].abs() for l in c.trained}


def _masked_start(c: CriterionContext, dtype: torch.dtype = torch.float32) -> Weights:
    """The starting weights with pruned ones zeroed, as leaves that gradients are taken against."""
    return {l: (c.start[l] * c.mask[l]).to(dtype).requires_grad_(True) for l in c.mask}


def _data_loss(c: CriterionContext, weights: Weights, temperature: float = 1.0) -> torch.Tensor:
    probe = c.probe
    return F.cross_entropy(probe.logits(weights, probe.x) / temperature, probe.y)


def _snip(c: CriterionContext) -> Weights:
    """SNIP (Lee et al. 2019): connection sensitivity |∂L/∂w ⊙ w| at the starting point."""
    w = _masked_start(c)
    grads = torch.autograd.grad(_data_loss(c, w), list(w.values()))
    return {l: (g * w[l]).abs().detach() for l, g in zip(w, grads)}


def _grasp(c: CriterionContext) -> Weights:
    """GraSP (Wang et al. 2020): S = −(Hg) ⊙ w, the change in gradient flow if w were removed. GraSP
    removes the weights of largest S, so the keep score (higher = keep) is (Hg) ⊙ w."""
    w = _masked_start(c)
    grads = torch.autograd.grad(_data_loss(c, w, GRASP_TEMPERATURE), list(w.values()), create_graph=True)
    flow = sum((g * g.detach()).sum() for g in grads)               # gᵀ stop_grad(g): its gradient is H g
    hg = torch.autograd.grad(flow, list(w.values()))
    return {l: (h * w[l]).detach() for l, h in zip(w, hg)}


def _synflow(c: CriterionContext) -> Weights:
    """SynFlow (Tanaka et al. 2020), data-free: with every parameter made positive and an all-ones input,
    R = Σ outputs; the score is ∂R/∂w ⊙ w. In float64: R is a product over layers and overflows float32."""
    module = c.probe.module
    before = next(module.parameters()).dtype, module.training
    module.double().eval()  # batch norm as its running statistics (fresh: an identity), not a batch's
    try:
        w = {l: v.abs() for l, v in _masked_start(c, torch.float64).items()}
        w = {l: v.detach().requires_grad_(True) for l, v in w.items()}
        ones = torch.ones((1, *c.probe.input_shape), dtype=torch.float64)
        total = c.probe.logits(w, ones, absolute=True).sum()
        grads = torch.autograd.grad(total, list(w.values()))
        return {l: (g * w[l]).detach().float() for l, g in zip(w, grads)}
    finally:
        module.to(before[0]).train(before[1])


def _random(c: CriterionContext) -> Weights:
    return {l: torch.rand(m.shape, generator=c.generator) for l, m in c.mask.items()}


CRITERIA: dict[str, Criterion] = {c.name: c for c in (
    Criterion("magnitude", "keep the weights largest after training, |w_T| (the paper's criterion)",
              frozenset({"trained"}), _magnitude),
    Criterion("magnitude-at-init", "keep the weights largest at the original init, |w₀| (also with rewind:K); "
              "training plays no part: the paper's negative control", frozenset({"init"}), _magnitude_at_init),
    Criterion("magnitude-increase", "keep the weights whose magnitude grew most in training, |w_T| − |w₀| "
              "(w₀ the original init, also with rewind:K; Zhou et al. 2019)", frozenset({"trained", "init"}),
              _magnitude_increase),
    Criterion("snip", "keep the weights whose removal would change the training loss most, |∂L/∂w ⊙ w| at "
              "the starting point, from a batch of training data (SNIP, Lee et al. 2019)",
              frozenset({"start", "probe"}), _snip, at_init=True),
    Criterion("grasp", "keep the weights that most help the gradient flow at the starting point, scored "
              "−(Hg) ⊙ w with a Hessian-vector product on a batch of training data (GraSP, Wang et al. 2020)",
              frozenset({"start", "probe"}), _grasp, at_init=True),
    Criterion("synflow", "keep the weights that carry most of a data-free 'synaptic flow' (all-ones input, "
              "positive weights), re-scored over 100 steps (SynFlow, Tanaka et al. 2020)",
              frozenset({"start", "probe"}), _synflow, iterations=100, at_init=True),
    Criterion("random", "keep weights at random, uniform scores: the baseline every criterion must beat",
              frozenset({"generator"}), _random, at_init=True),
)}
GRASP_TEMPERATURE = 200.0  # GraSP divides the logits by this before the loss, as its authors do: near-uniform
                           # softmax keeps g and Hg informative at init (without it, masks here started at loss 9)
SCORE_EXAMPLES = 256  # training examples SNIP and GraSP score on (one batch, as SNIP does)
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
