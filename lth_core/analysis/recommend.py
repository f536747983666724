"""Which round to recommend: the sparsest ticket that still matches the dense network.

"Matches" means a mean test accuracy at most TOLERANCE_POINTS percentage points below the dense
network's (round 0). The summary sentences, the Compare page's colours and its deployment section all
read this one default. Gaps are taken between accuracies rounded to 0.1 point, as the app prints them,
so a gap shown as "-1.0 pts" is within a 1-point tolerance and never judged otherwise off screen.
"""
from __future__ import annotations

import pandas as pd

TOLERANCE_POINTS = 1.0  # percentage points of test accuracy a ticket may lose and still "match" dense
SHOWN_DECIMALS = 1      # accuracies are printed in percent with one decimal


def gap_points(accuracy: float, dense: float) -> float:
    """`accuracy` minus `dense` (fractions 0–1) in percentage points, between the two values as printed:
    78.1 % against 77.2 % is +0.9, not +0.95."""
    return round(round(100 * accuracy, SHOWN_DECIMALS) - round(100 * dense, SHOWN_DECIMALS), SHOWN_DECIMALS)


def within_tolerance(gap: float, tolerance: float = TOLERANCE_POINTS) -> bool:
    """A gap in points (negative = below dense) that still counts as matching the dense network."""
    return gap >= -tolerance


def recommended_round(rounds: pd.DataFrame, tolerance: float = TOLERANCE_POINTS, variant: str = "ticket",
                      metric: str = "test_accuracy") -> int | None:
    """The sparsest pruned round whose `variant` mean `metric` over trials stays within `tolerance` points
    of the dense network (round 0); None when no pruned round does (or round 0 is missing).

    `rounds` has the store's round columns (round, variant, weights_remaining, `metric`, one row per trial).
    Every round is judged on its own: a later round that recovers after a dip is still recommended. Rounds
    equally sparse are told apart by the higher accuracy, then the earlier round."""
    dense = rounds[rounds["round"] == 0][metric]
    if dense.empty:
        return None
    base = float(dense.mean())
    mine = rounds[(rounds["round"] > 0) & (rounds["variant"] == variant)]
    per_round = mine.groupby("round").agg(weights=("weights_remaining", "mean"), accuracy=(metric, "mean"))
    ok = per_round[[within_tolerance(gap_points(a, base), tolerance) for a in per_round["accuracy"]]]
    if ok.empty:
        return None
    best = ok.reset_index().sort_values(["weights", "accuracy", "round"], ascending=[True, False, True], kind="stable")
    return int(best["round"].iloc[0])
