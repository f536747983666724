"""A ticket made truly smaller: dead units and channels removed, the same function computed.

Pruning weights one by one leaves some units with no outgoing weight (their output is never read) and
some with no incoming weight (their output is the constant relu(bias)). Both can go:
- no outgoing weight: drop the unit (its row and bias here, nothing reads it);
- no incoming weight: its constant relu(b) times its outgoing weights is added to the next layer's bias,
  then the unit is dropped. Exact when the next layer is fully connected; before a convolution the
  zero padding at the borders would see the constant differently, so such a channel is dropped only
  when relu(b) = 0, else kept.
- input features (pixels) that no first-layer weight reads are dropped by an index gather (fc nets).
Repeated until nothing changes (dropping a unit can leave its inputs without outgoing weights).
Only the chain architectures (mlp, LeNet, conv-*) are reduced; residual nets are not (a skip connection
reads a channel even where the block's own weights do not).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lth_core.engine.models import Params

REDUCIBLE = ("lenet-300-100", "mlp", "conv-2", "conv-4", "conv-6")


@dataclass
class UnitCount:
    """Units of one layer before and after the reduction (input features for `input`)."""

    layer: str
    before: int
    after: int

    @property
    def removed(self) -> int:
        return self.before - self.after


def _chain(params: Params) -> list[str]:
    """The layers in order: conv1..convN, then fc1.., output."""
    names = {n[:-len(".weight")] for n in params if n.endswith(".weight")}
    convs = sorted((n for n in names if n.startswith("conv")), key=lambda n: int(n[4:]))
    fcs = sorted((n for n in names if n.startswith("fc")), key=lambda n: int(n[2:]))
    return convs + fcs + ["output"]


def reduce(arch: str, params: Params, masks: dict[str, torch.Tensor]) -> tuple[Params, list[UnitCount]] | None:
    """(the smaller network's params, units per layer) of a trained ticket; None for an architecture that
    is not a chain. `params`: one model's trained parameters (pruned weights are 0); `masks`: weight
    name → bool mask. The result loads into `torch_modules.build_plain(arch, its shapes, ...)`."""
    if arch not in REDUCIBLE:
        return None
    layers = _chain(params)
    w = {l: params[f"{l}.weight"].detach().clone().double() for l in layers}
    b = {l: params[f"{l}.bias"].detach().clone().double() for l in layers}
    m = {l: masks[f"{l}.weight"].bool().clone() for l in layers}
    before = {l: w[l].shape[0] for l in layers}
    is_conv = {l: w[l].dim() == 4 for l in layers}
    input_index = None
    if not is_conv[layers[0]]:
        input_index = torch.arange(w[layers[0]].shape[1])
    n_inputs = None if input_index is None else len(input_index)
    changed = True
    while changed:
        changed = False
        if input_index is not None:  # pixels no first-layer weight reads
            read = m[layers[0]].any(0)
            if not read.all():
                input_index = input_index[read]
                w[layers[0]], m[layers[0]] = w[layers[0]][:, read], m[layers[0]][:, read]
                changed = True
        for here, nxt in zip(layers[:-1], layers[1:]):
            units = w[here].shape[0]
            positions = w[nxt].shape[1] // units if not is_conv[nxt] else 1  # conv → fc: a flattened channel
            incoming = m[here].reshape(units, -1).any(1)
            out_mask = m[nxt].reshape(m[nxt].shape[0], units, positions, -1) if not is_conv[nxt] else m[nxt].transpose(0, 1)
            outgoing = out_mask.transpose(0, 1).reshape(units, -1).any(1) if not is_conv[nxt] else out_mask.reshape(units, -1).any(1)
            constant = F.relu(b[here])  # a unit's value when it has no incoming weight
            drop = ~outgoing | (~incoming & ((constant == 0) | ~torch.tensor(is_conv[nxt])))
            if not drop.any():
                continue
            fold = drop & ~incoming & outgoing & (constant != 0)  # only ever before an fc layer
            if fold.any():
                w_next = w[nxt].reshape(w[nxt].shape[0], units, positions)
                b[nxt] = b[nxt] + (w_next[:, fold, :] * constant[fold].view(1, -1, 1)).sum((1, 2))
            keep = ~drop
            w[here], b[here], m[here] = w[here][keep], b[here][keep], m[here][keep]
            cols = keep.repeat_interleave(positions) if not is_conv[nxt] else keep
            w[nxt], m[nxt] = w[nxt][:, cols], m[nxt][:, cols]
            changed = True
    out: Params = {}
    for l in layers:
        out[f"{l}.weight"] = (w[l] * m[l]).float()
        out[f"{l}.bias"] = b[l].float()
    counts = []
    if input_index is not None:
        if len(input_index) < n_inputs:  # else the gather would only cost time
            out["input_index"] = input_index
        counts.append(UnitCount("input", n_inputs, len(input_index)))
    counts += [UnitCount(l, before[l], w[l].shape[0]) for l in layers]
    return out, counts
