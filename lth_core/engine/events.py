"""The events a run emits. The CLI, the run store and the tests all consume this one stream."""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np


@dataclass(frozen=True)
class RunStarted:
    config: dict[str, Any]           # the fully resolved config (lottery.resolved_config(plan).to_dict())
    rounds: int                      # pruning rounds after the dense round 0
    planned_remaining: list[float]   # fraction of weights remaining at rounds 0..rounds
    variants: list[str]              # ticket first, then the controls
    layers: dict[str, int]           # prunable layer → number of weights
    iterations: int                  # training iterations per round
    device: str
    start_round: int = 0             # > 0 when resuming
    network: dict[str, Any] = field(default_factory=dict)  # network_shape.NetworkShape.to_dict(): kept with the run


@dataclass(frozen=True)
class RoundStarted:
    round: int
    weights_remaining: float
    models: list[tuple[int, str]]    # (trial, variant) trained together this round


@dataclass(frozen=True)
class EvalPointEvent:
    trial: int
    round: int
    variant: str
    iteration: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    test_accuracy: float


@dataclass(frozen=True)
class RoundFinished:
    trial: int
    round: int
    variant: str
    weights_remaining: float         # fraction 0–1 of prunable weights
    test_accuracy: float             # at the end of training
    val_accuracy: float
    early_stop_iteration: int        # evaluation point of minimum validation loss
    early_stop_test_accuracy: float
    early_stop_val_loss: float
    train_seconds: float             # time of the round's joint training steps, shared equally by its models
    eval_seconds: float              # time of its evaluations (validation and test), shared the same way
    layers: dict[str, tuple[int, int]]   # layer → (total, remaining)
    mask: dict[str, np.ndarray] = field(repr=False)  # layer → bool array
    # parameter name → this model's trained values (pruned weights are 0): what the playground draws
    params: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    # what the engine verified, for the run's sanity checks (lth_core.analysis.checks):
    # prunable layer → the largest |weight| at a pruned position over `zero_checks` checks (0.0: exactly zero)
    pruned_max: dict[str, float] = field(default_factory=dict, repr=False)
    zero_checks: int = 0
    # parameter name → SHA-256 of the values this model started training from
    start_hashes: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Checkpoint:
    """What is needed to continue after `round`: per trial, the initial weights, the rewind point,
    the ticket mask for the next round, and (for reset=none) the ticket's trained weights."""

    round: int
    trials: list[dict[str, dict[str, np.ndarray]]] = field(repr=False)

    def to_bytes(self) -> bytes:
        arrays = {f"{t}/{part}/{name}": a for t, state in enumerate(self.trials)
                  for part, group in state.items() for name, a in group.items()}
        buf = io.BytesIO()
        np.savez_compressed(buf, __round__=np.array(self.round), **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> "Checkpoint":
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            trials: dict[int, dict[str, dict[str, np.ndarray]]] = {}
            for key in z.files:
                if key == "__round__":
                    continue
                t, part, name = key.split("/", 2)
                trials.setdefault(int(t), {}).setdefault(part, {})[name] = z[key]
            return cls(int(z["__round__"]), [trials[t] for t in sorted(trials)])


@dataclass(frozen=True)
class RoundCommitted:
    """All models of `round` are finished; `checkpoint` lets a later process resume after it."""

    round: int
    checkpoint: Checkpoint = field(repr=False)


@dataclass(frozen=True)
class RunFinished:
    seconds: float


@dataclass(frozen=True)
class RunFailed:
    reason: str                      # one line


@dataclass(frozen=True)
class RunCancelled:
    round: int                       # the round in flight, which is discarded


Event = Union[RunStarted, RoundStarted, EvalPointEvent, RoundFinished, RoundCommitted,
              RunFinished, RunFailed, RunCancelled]
