"""How much work a config is, and roughly how long it will take on this machine.

The time is measured, not guessed: a few real training steps of the round's stacked models
are timed, then scaled to the whole run (evaluation included).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from .config import ExperimentConfig
from .lottery import _to_device_data, generator, make_plan
from .cpu import CpuWatch, choose_threads
from .training import evaluate, make_optimizer, torch_threads

CALIBRATION_STEPS = 5


@dataclass(frozen=True)
class RunEstimate:
    rounds: int                  # pruning rounds after the dense round 0
    trainings: int               # networks trained in all (dense + every variant of every round, × trials)
    iterations_per_round: int
    weights: int                 # prunable weights of one network
    final_remaining: float       # planned fraction of weights left after the last round
    seconds: float               # rough wall time of the training

    def describe(self) -> str:
        return (f"{self.trainings} trainings of {self.iterations_per_round} iterations "
                f"({self.rounds} pruning round{'' if self.rounds == 1 else 's'}, down to {100 * self.final_remaining:.1f} % of {self.weights:,} weights), "
                f"about {format_seconds(self.seconds)}")


def format_seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def estimate_run(config: ExperimentConfig) -> RunEstimate:
    """Count the trainings and time a few real steps. Raises ConfigError like run_experiment."""
    plan = make_plan(config)
    cfg, net, s = plan.config, plan.net, plan.settings
    pruned_models = cfg.trials * len(cfg.variants)
    trainings = cfg.trials + plan.rounds * pruned_models
    data = _to_device_data(plan.data, plan.device)

    def seconds_per_round(models: int, groups: int) -> float:
        inits = [net.init_params(generator(0, m, "estimate")) for m in range(models)]
        params = {n: torch.stack([p[n] for p in inits]).to(plan.device).requires_grad_(True) for n in inits[0]}
        buffers = net.new_buffers(models, plan.device)
        optimizer = make_optimizer(list(params.values()), s)
        idx = torch.randint(0, data.x_train.shape[0], (groups, s.batch_size), generator=generator(0, "estimate"))
        idx = idx.to(plan.device)
        targets = data.y_train[idx].repeat_interleave(models // groups, dim=0)

        def step() -> None:
            logits = net.forward(params, buffers, data.x_train[idx], train=True)
            loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        step()  # warm-up: first calls allocate
        step()
        times = []
        for _ in range(CALIBRATION_STEPS):
            started = time.perf_counter()
            step()
            times.append(time.perf_counter() - started)
        per_step = min(times)  # the fastest step: other work on the machine only ever slows steps down
        eval_times = []
        for _ in range(2):
            started = time.perf_counter()
            evaluate(net, params, buffers, data.x_val[:net.eval_chunk], data.y_val[:net.eval_chunk])
            eval_times.append(time.perf_counter() - started)
        n_eval = data.x_val.shape[0] + data.x_test.shape[0]
        per_eval = min(eval_times) * n_eval / min(n_eval, data.x_val.shape[0], net.eval_chunk)
        evals = -(-s.iterations // s.eval_every)
        return per_step * s.iterations + per_eval * evals

    cpu = plan.device.type == "cpu"
    with torch_threads(choose_threads(CpuWatch().others_busy()) if cpu else torch.get_num_threads()):
        seconds = seconds_per_round(cfg.trials, cfg.trials)
        if plan.rounds:
            seconds += plan.rounds * seconds_per_round(pruned_models, cfg.trials)
    return RunEstimate(plan.rounds, trainings, s.iterations, net.num_weights(), plan.planned_remaining[-1], seconds)
