"""What a sparse ticket would save in deployment: storage and arithmetic, dense against sparse.

Counts are exact for the masks; they describe what a sparse format *could* save, not a
measured speed-up (dense hardware kernels gain nothing from zeros without sparse support).
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from lth_core.engine.network_shape import NetworkShape

FLOAT_BYTES = 4
INDEX_BYTES = 4


@dataclass(frozen=True)
class Savings:
    weights_total: int
    weights_remaining: int
    dense_bytes: int             # every prunable weight as float32
    csr_bytes: int               # values + int32 column indices + int32 row pointers
    bitmask_bytes: int           # values + one bit per original weight
    dense_macs: int              # multiply-adds per example in the prunable layers
    sparse_macs: int

    @property
    def best_sparse_bytes(self) -> int:
        return min(self.csr_bytes, self.bitmask_bytes)

    @property
    def compression(self) -> float:
        return self.dense_bytes / max(1, self.best_sparse_bytes)

    @property
    def mac_reduction(self) -> float:
        return self.dense_macs / max(1, self.sparse_macs)


def savings(layers: pd.DataFrame, rows: dict[str, int], positions: dict[str, int] | None = None) -> Savings:
    """`layers`: one model's rows of layers.csv (layer, total, remaining); `rows`: each layer's
    output count (rows of its weight matrix); `positions`: conv output positions (default 1)."""
    positions = positions or {}
    total = int(layers["total"].sum())
    kept = int(layers["remaining"].sum())
    csr = kept * (FLOAT_BYTES + INDEX_BYTES) + sum((rows[l] + 1) * INDEX_BYTES for l in layers["layer"])
    bitmask = kept * FLOAT_BYTES + sum(-(-int(t) // 8) for t in layers["total"])
    dense_macs = sum(int(t) * positions.get(l, 1) for l, t in zip(layers["layer"], layers["total"]))
    sparse_macs = sum(int(r) * positions.get(l, 1) for l, r in zip(layers["layer"], layers["remaining"]))
    return Savings(total, kept, total * FLOAT_BYTES, csr, bitmask, dense_macs, sparse_macs)


def format_bytes(n: float) -> str:
    """Decimal units (1 kB = 1,000 bytes), as storage is sold."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def ticket_savings(network: NetworkShape, layers: pd.DataFrame, round: int, trial: int = 0) -> Savings:
    """Savings of the ticket of `round` (one trial), counted on the run's own architecture as the store
    keeps it (its layers' outputs and output positions; nothing is loaded or built)."""
    mine = layers[(layers["round"] == round) & (layers["variant"] == "ticket") & (layers["trial"] == trial)]
    return savings(mine, network.layer_outputs(), network.layer_positions())


def savings_table(s: Savings) -> pd.DataFrame:
    """Dense against sparse, one row per measure, in words a stakeholder reads."""
    fmt = "bitmask" if s.bitmask_bytes <= s.csr_bytes else "CSR"
    return pd.DataFrame([
        ("weights", f"{s.weights_total:,}", f"{s.weights_remaining:,}",
         f"{s.weights_total / max(1, s.weights_remaining):.1f}× fewer"),
        ("storage (float32)", format_bytes(s.dense_bytes), format_bytes(s.best_sparse_bytes),
         f"{s.compression:.1f}× smaller ({fmt} format)"),
        ("multiply-adds per example", f"{s.dense_macs:,}", f"{s.sparse_macs:,}", f"{s.mac_reduction:.1f}× fewer"),
    ], columns=["measure", "dense network", "winning ticket", "saving"])
