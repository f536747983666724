"""The masked training loop for V stacked models, and evaluation.

Speed notes (2 CPU cores): data sits in memory as tensors and a batch is an index gather,
not a DataLoader; all V models step together (batched matmuls, one fused optimizer step);
masks are re-applied in place after each step rather than through forward hooks.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Callable, Generator

import torch
import torch.nn.functional as F

from lth_core.engine.errors import Cancelled, TrainingFailed
from lth_core.engine.models import Network, Params
from lth_core.engine.optim import FusedOptimizer


@dataclass(frozen=True)
class TrainSettings:
    optimizer: str
    lr: float
    momentum: float
    weight_decay: float
    batch_size: int
    iterations: int
    eval_every: int
    lr_schedule: str = "constant"
    warmup: int = 0
    fine_tune: bool = False  # train at the schedule's final rate throughout (reset none after round 0)

    def lr_at(self, step: int) -> float:
        """The learning rate of training step `step` (1 = the first) of a round."""
        if self.fine_tune:
            return self.lr * _decay(self.lr_schedule, 1.0)
        rate = self.lr * _decay(self.lr_schedule, (step - 1) / max(1, self.iterations))
        return rate * step / self.warmup if step <= self.warmup else rate


COSINE_FLOOR = 0.01  # cosine decays to lr/100, not 0: fine-tuning at a schedule's final rate must still learn


def _decay(schedule: str, t: float) -> float:
    """The schedule's multiple of the base rate at fraction t of the round (t = 1: its final value)."""
    if schedule == "step":
        return 1.0 if t < 0.5 else 0.1 if t < 0.75 else 0.01
    if schedule == "cosine":
        return COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
    return 1.0


@dataclass
class DeviceData:
    """A dataset's three splits as tensors on the training device."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


@dataclass
class EvalPoint:
    """Metrics of all V models at one evaluation iteration (each tensor has shape (V,))."""

    iteration: int
    train_loss: torch.Tensor
    val_loss: torch.Tensor
    val_accuracy: torch.Tensor
    test_accuracy: torch.Tensor


@dataclass
class TrainResult:
    params: Params
    history: list[EvalPoint] = field(default_factory=list)
    snapshot: Params | None = None  # parameters after `snapshot_at` iterations, if asked
    snapshots: dict[int, Params] = field(default_factory=dict)  # parameters after each of `snapshots_at` iterations
    buffers: Params = field(default_factory=dict)  # batch-norm running statistics at the end
    # per prunable weight (masks' order), (V,): the largest |weight| at a pruned position seen at any check
    pruned_max: list[torch.Tensor] = field(default_factory=list)
    zero_checks: int = 0       # how many times that was checked: at every evaluation point, the last one included
    seconds: float = 0.0       # time spent in this function: training steps and evaluation
    eval_seconds: float = 0.0  # of which evaluating on the validation and test splits


@contextlib.contextmanager
def torch_threads(count: int):
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def apply_masks(weights: list[torch.Tensor], float_masks: list[torch.Tensor]) -> None:
    """Zero the pruned weights in place (after every optimizer step, so they stay exactly zero)."""
    for w, m in zip(weights, float_masks):
        w.mul_(m)


@torch.no_grad()
def pruned_magnitudes(weights: list[torch.Tensor], pruned: list[torch.Tensor]) -> list[torch.Tensor]:
    """Per weight, (V,): the largest |value| at a pruned position (`pruned`: 1.0 where pruned). 0.0 means
    every pruned weight is exactly zero. About 1 ms for six stacked LeNets, so it runs at each evaluation
    point rather than after each step (see `python -m lth_core bench`)."""
    return [(w * p).abs_().flatten(1).amax(1) for w, p in zip(weights, pruned)]


def eval_iterations(iterations: int, eval_every: int) -> list[int]:
    points = list(range(eval_every, iterations + 1, eval_every))
    if not points or points[-1] != iterations:
        points.append(iterations)
    return points


def make_optimizer(params: list[torch.Tensor], s: TrainSettings) -> FusedOptimizer:
    return FusedOptimizer(params, s.optimizer, s.lr, s.weight_decay, s.momentum if s.optimizer == "sgd" else 0.0)


@torch.no_grad()
def evaluate(net: Network, params: Params, buffers: Params, x: torch.Tensor, y: torch.Tensor,
             splits: tuple[int, ...] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss and accuracy of each of the V models on (x, y): two (V,) tensors, or, with
    `splits` (sizes of consecutive parts of x), two (parts, V) tensors."""
    models = next(iter(params.values())).shape[0]
    losses, hits = [], []
    for start in range(0, x.shape[0], net.eval_chunk):
        xb, yb = x[start:start + net.eval_chunk], y[start:start + net.eval_chunk]
        logits = net.forward(params, buffers, xb.unsqueeze(0), train=False)  # one batch shared by all models
        losses.append(F.cross_entropy(logits.transpose(1, 2), yb.unsqueeze(0).expand(models, -1), reduction="none"))
        hits.append((logits.argmax(-1) == yb).float())
    loss, hit = torch.cat(losses, 1), torch.cat(hits, 1)  # (V, N)
    if splits is None:
        return loss.mean(1), hit.mean(1)
    return (torch.stack([part.mean(1) for part in loss.split(list(splits), 1)]),
            torch.stack([part.mean(1) for part in hit.split(list(splits), 1)]))


def batch_order(n_train: int, batch_size: int, iterations: int, generator: torch.Generator) -> torch.Tensor:
    """Indices for `iterations` batches: a fresh permutation each epoch, last partial batch dropped."""
    per_epoch = max(1, n_train // batch_size)
    epochs = math.ceil(iterations / per_epoch)
    chunks = [torch.randperm(n_train, generator=generator)[:per_epoch * batch_size] for _ in range(epochs)]
    return torch.cat(chunks)[:iterations * batch_size].view(iterations, batch_size)


def train(net: Network, params: Params, masks: dict[str, torch.Tensor], data: DeviceData,
          orders: torch.Tensor, settings: TrainSettings, *, snapshot_at: int | None = None,
          snapshots_at: tuple[int, ...] = (), steps: int | None = None,
          should_stop: Callable[[], bool] | None = None) -> Generator[EvalPoint, None, TrainResult]:
    """Train V stacked models; yields an EvalPoint on the evaluation schedule, returns a TrainResult.

    params: name → (V, *shape) tensors (copied, not modified); masks: weight name → (V, *shape) bool;
    orders: (G, iterations, batch) long indices into the training split, one order per group of V/G
    consecutive models (a trial's variants see the same batches, which also makes them cheaper).
    `snapshots_at`: iterations whose parameters go to `result.snapshots` (0: the start); `steps`: stop after
    that many iterations of the schedule (the instability analysis's trunk), with no evaluation past it.
    """
    import time

    started = time.perf_counter()
    models = next(iter(params.values())).shape[0]
    device = data.x_train.device
    params = {n: p.detach().clone().to(device).requires_grad_(True) for n, p in params.items()}
    weight_names = list(masks)
    weights = [params[n] for n in weight_names]
    float_masks = [masks[n].to(device=device, dtype=params[n].dtype) for n in weight_names]
    with torch.no_grad():
        apply_masks(weights, float_masks)
    pruned = [1.0 - m for m in float_masks]
    buffers = net.new_buffers(models, device)
    optimizer = make_optimizer(list(params.values()), settings)
    orders = orders.to(device)
    result = TrainResult(params=params)
    evals = set(eval_iterations(settings.iterations, settings.eval_every))
    eval_x, eval_y = torch.cat([data.x_val, data.x_test]), torch.cat([data.y_val, data.y_test])
    n_val = data.x_val.shape[0]
    running = torch.zeros(models, device=device)
    steps_since = 0
    if snapshot_at == 0:
        result.snapshot = {n: p.detach().clone() for n, p in params.items()}
    if 0 in snapshots_at:
        result.snapshots[0] = {n: p.detach().clone() for n, p in params.items()}
    last = settings.iterations if steps is None else min(steps, settings.iterations)
    per_group = models // orders.shape[0]
    # every step's targets of every model at once, laid out as logits.flatten(0, 1): (iterations, V·B)
    targets = data.y_train[orders].unsqueeze(1).expand(-1, per_group, -1, -1).transpose(0, 2).transpose(1, 2)
    targets = targets.reshape(settings.iterations, -1)
    for it in range(1, last + 1):
        idx = orders[:, it - 1]                        # (G, B)
        xb = data.x_train.index_select(0, idx.flatten()).view(*idx.shape, *data.x_train.shape[1:])  # 4× x_train[idx]
        logits = net.forward(params, buffers, xb, train=True)  # (V, B, classes)
        per_model = F.cross_entropy(logits.flatten(0, 1), targets[it - 1], reduction="none").view(models, -1).mean(1)
        optimizer.zero_grad()
        per_model.sum().backward()  # the sum's gradient is each model's own mean-loss gradient
        optimizer.lr = settings.lr_at(it)
        optimizer.step()
        with torch.no_grad():
            apply_masks(weights, float_masks)
        running += per_model.detach()
        steps_since += 1
        if it == snapshot_at:
            result.snapshot = {n: p.detach().clone() for n, p in params.items()}
        if it in snapshots_at:
            result.snapshots[it] = {n: p.detach().clone() for n, p in params.items()}
        if it in evals:
            # pruned weights must be exactly zero here and at the end (the last point is the last iteration)
            leaks = pruned_magnitudes(weights, pruned)
            result.pruned_max = leaks if not result.pruned_max else \
                [torch.maximum(a, b) for a, b in zip(result.pruned_max, leaks)]
            result.zero_checks += 1
            train_loss = running / steps_since
            if not torch.isfinite(train_loss).all():
                raise TrainingFailed(f"the training loss became NaN or infinite by iteration {it}; "
                                     f"try a lower learning rate (lr={settings.lr:g})")
            # validation and test in one pass: fewer, larger matmuls
            eval_started = time.perf_counter()
            loss, acc = evaluate(net, params, buffers, eval_x, eval_y, splits=(n_val, eval_x.shape[0] - n_val))
            point = EvalPoint(it, train_loss.cpu(), loss[0].cpu(), acc[0].cpu(), acc[1].cpu())
            result.history.append(point)
            running.zero_()
            steps_since = 0
            paused = time.perf_counter()
            result.eval_seconds += paused - eval_started
            yield point
            started += time.perf_counter() - paused  # what the consumer did with the point is not training
        if should_stop is not None and should_stop():
            raise Cancelled("cancelled by the user")
    result.params = {n: p.detach() for n, p in params.items()}
    result.buffers = buffers
    result.seconds = time.perf_counter() - started
    return result
