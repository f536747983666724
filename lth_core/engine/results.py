"""Results as tables, and the on-disk export format shared by `run --out` and `export`.

Files written to an output folder:
  config.json   the fully resolved config
  rounds.csv    trial, round, variant, weights_remaining, test_accuracy, val_accuracy,
                early_stop_iteration, early_stop_test_accuracy, early_stop_val_loss, train_seconds,
                eval_seconds
  layers.csv    trial, round, variant, layer, total, remaining
  curves.csv    trial, round, variant, iteration, train_loss, val_loss, val_accuracy, test_accuracy
  masks/        see MASKS_README below
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from lth_core.engine.events import EvalPointEvent, Event, RoundCommitted, RoundFinished, RunStarted

ROUND_COLUMNS = ["trial", "round", "variant", "weights_remaining", "test_accuracy", "val_accuracy",
                 "early_stop_iteration", "early_stop_test_accuracy", "early_stop_val_loss", "train_seconds",
                 "eval_seconds"]
LAYER_COLUMNS = ["trial", "round", "variant", "layer", "total", "remaining"]
REWIND = "rewind/"  # in the run store, a trial's rewind weights sit beside its initial ones under this prefix
TIMING_COLUMNS = ["train_seconds", "eval_seconds"]  # wall times: the only round columns a rerun does not repeat
CURVE_COLUMNS = ["trial", "round", "variant", "iteration", "train_loss", "val_loss", "val_accuracy", "test_accuracy"]

MASKS_README = """\
Masks of a Lottery Ticket Explorer run.

trial{T}_init.npz          the trial's initial weights: one float32 array per parameter name
                           (e.g. fc1.weight, fc1.bias). Ticket = mask * these values.
trial{T}_round{R}.npz      the masks of every variant trained in round R of trial T. For each
                           variant V (ticket, reinit, random) and prunable layer L:
                             "V/L"        uint8, the mask's bits packed with numpy.packbits
                             "V/L.shape"  int64, the weight's shape
                           Unpack with: np.unpackbits(z["V/L"], count=prod(shape)).reshape(shape).astype(bool)
trial{T}_rewind.npz        with reset "rewind:K" only: the weights at iteration K of the trial's
                           dense run (round 0), in the same layout as trial{T}_init.npz.
A winning ticket of round R = trial{T}_init.npz weights multiplied by the "ticket/L" masks (reset
"init", the default), or trial{T}_rewind.npz weights multiplied by them (reset "rewind:K"). With reset
"none" there is no ticket to rebuild: each round fine-tunes the previous round's trained weights.
"""


def weights_hash(values) -> str:
    """A short SHA-256 of an array's float32 values and shape (numpy or torch): the sanity checks compare what a
    model started from with the stored initial weights by these."""
    a = np.ascontiguousarray(values.detach().cpu().numpy() if hasattr(values, "detach") else values, dtype=np.float32)
    return hashlib.sha256(repr(a.shape).encode() + a.tobytes()).hexdigest()[:16]


def pack_mask(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.packbits(mask.astype(bool).ravel()), np.array(mask.shape, dtype=np.int64)


def unpack_mask(bits: np.ndarray, shape: np.ndarray | tuple[int, ...]) -> np.ndarray:
    shape = tuple(int(s) for s in shape)
    return np.unpackbits(bits, count=int(np.prod(shape))).reshape(shape).astype(bool)


@dataclass
class RunResult:
    """Everything a run produced, gathered from its event stream."""

    config: dict[str, Any] = field(default_factory=dict)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    layers: list[dict[str, Any]] = field(default_factory=list)
    curves: list[dict[str, Any]] = field(default_factory=list)
    masks: dict[tuple[int, int, str], dict[str, np.ndarray]] = field(default_factory=dict)
    inits: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    rewinds: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)  # reset rewind:K only

    def add(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.config = event.config
        elif isinstance(event, EvalPointEvent):
            self.curves.append({c: getattr(event, c) for c in CURVE_COLUMNS})
        elif isinstance(event, RoundFinished):
            self.rounds.append({c: getattr(event, c) for c in ROUND_COLUMNS})
            for layer, (total, remaining) in event.layers.items():
                self.layers.append(dict(trial=event.trial, round=event.round, variant=event.variant,
                                        layer=layer, total=total, remaining=remaining))
            self.masks[(event.trial, event.round, event.variant)] = event.mask
        elif isinstance(event, RoundCommitted):
            for t, state in enumerate(event.checkpoint.trials):
                self.inits.setdefault(t, state["init"])
                if "rewind" in state:
                    self.rewinds.setdefault(t, state["rewind"])

    def rounds_df(self) -> pd.DataFrame:
        return pd.DataFrame(self.rounds, columns=ROUND_COLUMNS)

    def layers_df(self) -> pd.DataFrame:
        return pd.DataFrame(self.layers, columns=LAYER_COLUMNS)

    def curves_df(self) -> pd.DataFrame:
        return pd.DataFrame(self.curves, columns=CURVE_COLUMNS)


def collect(events: Iterable[Event]) -> RunResult:
    result = RunResult()
    for event in events:
        result.add(event)
    return result


def write_outputs(out: Path | str, config: dict[str, Any], rounds: pd.DataFrame, layers: pd.DataFrame,
                  curves: pd.DataFrame, masks: dict[tuple[int, int, str], dict[str, np.ndarray]],
                  inits: dict[int, dict[str, np.ndarray]],
                  rewinds: dict[int, dict[str, np.ndarray]] | None = None) -> Path:
    """Write the export folder (see the module docstring). Returns the folder."""
    out = Path(out)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    rounds[ROUND_COLUMNS].to_csv(out / "rounds.csv", index=False)
    layers[LAYER_COLUMNS].to_csv(out / "layers.csv", index=False)
    curves[CURVE_COLUMNS].to_csv(out / "curves.csv", index=False)
    (out / "masks" / "README.txt").write_text(MASKS_README)
    for trial, init in inits.items():
        np.savez_compressed(out / "masks" / f"trial{trial}_init.npz", **init)
    for trial, rewind in (rewinds or {}).items():
        np.savez_compressed(out / "masks" / f"trial{trial}_rewind.npz", **rewind)
    by_round: dict[tuple[int, int], dict[str, np.ndarray]] = {}
    for (trial, rnd, variant), mask in masks.items():
        arrays = by_round.setdefault((trial, rnd), {})
        for layer, m in mask.items():
            arrays[f"{variant}/{layer}"], arrays[f"{variant}/{layer}.shape"] = pack_mask(m)
    for (trial, rnd), arrays in by_round.items():
        np.savez(out / "masks" / f"trial{trial}_round{rnd}.npz", **arrays)
    return out
