"""Adam and SGD with momentum over the stacked parameters: torch.optim's documented functional API
(`torch.optim.adam.adam`, `torch.optim.sgd.sgd`) on its fused CPU kernels.

Why the functional form and not the `torch.optim.Adam` class: the class's first use imports
the dynamo compiler (about 1.4 s here, paid by every process that trains, the CLI included), and its step
wrapper (hooks, profiler scope) costs about 0.1 ms, a twentieth of a LeNet-300-100 training step on
2 cores. The functional form runs the same kernels, so the numbers equal `torch.optim.Adam(fused=True)`
and `torch.optim.SGD(fused=True)` bit for bit (tests/test_optim.py); this class only keeps the state.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.optim.adam import adam
from torch.optim.sgd import sgd


@dataclass
class FusedOptimizer:
    """`kind` is 'adam' (betas 0.9, 0.999, eps 1e-8) or 'sgd' (with `momentum`; 0 for plain SGD)."""

    params: list[torch.Tensor]
    kind: str
    lr: float
    weight_decay: float = 0.0
    momentum: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("adam", "sgd"):
            raise ValueError(f"unknown optimizer {self.kind!r}")
        if self.kind == "adam":
            self.exp_avgs = [torch.zeros_like(p) for p in self.params]
            self.exp_avg_sqs = [torch.zeros_like(p) for p in self.params]
            self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params]
        else:
            # None until the first step, which copies the gradient in (as torch.optim.SGD does)
            self.buffers: list[torch.Tensor | None] = [None] * len(self.params)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        grads = [p.grad for p in self.params]
        if self.kind == "adam":
            adam(self.params, grads, self.exp_avgs, self.exp_avg_sqs, [], self.steps, fused=True,
                 amsgrad=False, beta1=0.9, beta2=0.999, lr=self.lr, weight_decay=self.weight_decay, eps=1e-8,
                 maximize=False)
        else:
            sgd(self.params, grads, self.buffers, fused=True, weight_decay=self.weight_decay,
                momentum=self.momentum, lr=self.lr, dampening=0.0, nesterov=False, maximize=False)
