"""What a ticket would save in deployment: a table built from the store's per-layer counts, and the
words around it (the counts are not a measured speed-up, and the page says so beside them)."""
from __future__ import annotations

import pandas as pd

from lth_core.analysis.deployment import Savings, format_bytes, savings
from lth_core.engine.network_shape import NetworkShape


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


# Shown next to the numbers, not folded away: "fewer multiply-adds" is easily read as "faster".
CAVEAT = ("Counted, not measured: these are what a sparse format and sparse kernels *could* save. Ordinary dense "
          "kernels multiply the zeros too, so on them the ticket runs no faster; no speed-up has been measured here.")


def savings_sentence(s: Savings, round: int) -> str:
    """One sentence with the headline numbers of the round's ticket (Markdown)."""
    return (f"The round-{round} ticket keeps **{s.weights_remaining:,} of {s.weights_total:,}** prunable weights: "
            f"**{s.compression:.1f}× smaller** to store and **{s.mac_reduction:.1f}× fewer** multiply-adds per "
            "example, counted from its mask.")

