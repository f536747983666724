"""Adam and SGD with momentum over the stacked parameters, on torch's fused kernels called directly.

Why not `torch.optim`: its first optimizer in a process imports torch._dynamo (about 1.4 s here, paid
by every run process), and its step wrapper costs about 0.1 ms, a twentieth of a LeNet-300-100
training step on 2 cores. The kernels are the same ones `torch.optim.Adam(fused=True)` and
`torch.optim.SGD(fused=True)` call, so the numbers are identical (tests/test_optim.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


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
            self.buffers = [torch.empty_like(p) for p in self.params] if self.momentum else []
        self.step_count = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        grads = [p.grad for p in self.params]
        if self.kind == "adam":
            torch._foreach_add_(self.steps, 1)
            torch._fused_adam_(self.params, grads, self.exp_avgs, self.exp_avg_sqs, [], self.steps,
                               lr=self.lr, beta1=0.9, beta2=0.999, weight_decay=self.weight_decay, eps=1e-8,
                               amsgrad=False, maximize=False)
        else:
            # the first momentum step copies the gradient into the buffer instead of decaying it
            torch._fused_sgd_(self.params, grads, self.buffers, weight_decay=self.weight_decay,
                              momentum=self.momentum, lr=self.lr, dampening=0.0, nesterov=False, maximize=False,
                              is_first_step=self.step_count == 0)
        self.step_count += 1
