"""Which round to recommend: the sparsest ticket that still matches the dense network.

"Matches" means a mean test accuracy at most TOLERANCE_POINTS percentage points below the dense
network's (round 0) and, with 2 or more trials, the lower end of its spread over trials within the same
tolerance too: the lowest trial with 2 trials (a t-interval over 2 trials is ±12.7 standard errors, wider
than any run's spread), the 95 % confidence interval's lower bound (`statistics.interval`) from 3 trials on.
So a round whose mean matches only because one lucky trial pulled it up is not recommended. The summary
sentences, the Compare page's colours, its deployment section, the deployment bench and the report all read
this one rule. Gaps are taken between accuracies rounded to 0.1 point, as the app prints them, so a gap shown
as "-1.0 pts" is within a 1-point tolerance and never judged otherwise off screen.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lth_core.engine.errors import ConfigError

TOLERANCE_POINTS = 1.0  # percentage points of test accuracy a ticket may lose and still "match" dense
TOLERANCE_RANGE = (0.1, 10.0)  # points the pages' tolerance setting (and its ?tol= link) allows
SHOWN_DECIMALS = 1      # accuracies are printed in percent with one decimal


def gap_points(accuracy: float, dense: float) -> float:
    """`accuracy` minus `dense` (fractions 0–1) in percentage points, between the two values as printed:
    78.1 % against 77.2 % is +0.9, not +0.95."""
    return round(round(100 * accuracy, SHOWN_DECIMALS) - round(100 * dense, SHOWN_DECIMALS), SHOWN_DECIMALS)


def points_text(tolerance: float) -> str:
    """A tolerance in words, as every sentence, page and the report say it: '1 point', '0.5 points'."""
    return f"{tolerance:g} point{'' if tolerance == 1 else 's'}"


def parse_tolerance(value: object) -> float:
    """A tolerance setting (a number or the text of a ?tol= link) checked against TOLERANCE_RANGE; ConfigError
    naming `tolerance` and the range otherwise."""
    low, high = TOLERANCE_RANGE
    try:
        points = float(str(value).strip())
    except ValueError:
        points = math.nan
    if not low <= points <= high:  # NaN fails this too
        raise ConfigError("tolerance", f"must be a number of percentage points from {low:g} to {high:g}; got {value!r}")
    return points


def within_tolerance(gap: float, tolerance: float = TOLERANCE_POINTS) -> bool:
    """A gap in points (negative = below dense) that still counts as matching the dense network."""
    return gap >= -tolerance


RANGE_BELOW_TRIALS = 3  # with fewer trials (2) the lower end of the spread is the lowest trial, from 3 on the CI's bound
VERDICT_COLUMNS = ["round", "weights_remaining", "trials", "mean", "lower", "lower_kind", "gap_mean", "gap_lower",
                   "within"]


def lower_end(values) -> tuple[float, str]:
    """The lower end of a round's spread over trials and what it is: ("lowest of 2 trials") with 2 values,
    the 95 % CI's lower bound from RANGE_BELOW_TRIALS on; (NaN, "") with one value (no spread to judge)."""
    from lth_core.analysis import statistics  # statistics reads this module's tolerance: imported late, no cycle

    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) < 2:
        return math.nan, ""
    if len(x) < RANGE_BELOW_TRIALS:
        return float(x.min()), f"lowest of {len(x)} trials"
    ci = statistics.interval(x)
    return ci.low, f"95 % CI lower bound, {len(x)} trials"


def round_verdicts(rounds: pd.DataFrame, tolerance: float = TOLERANCE_POINTS, variant: str = "ticket",
                   metric: str = "test_accuracy") -> pd.DataFrame:
    """Every pruned round of `variant` judged against the dense network (round 0, mean over trials): one row
    per round with VERDICT_COLUMNS: the mean over trials and the lower end of its spread (`lower_end`), their
    gaps to dense in points as printed, and `within`: the mean's gap and (with 2+ trials) the lower end's gap
    are both within `tolerance`. Empty when round 0 is missing."""
    dense = rounds[rounds["round"] == 0][metric].dropna()
    if dense.empty:
        return pd.DataFrame(columns=VERDICT_COLUMNS)
    base = float(dense.mean())
    rows = []
    mine = rounds[(rounds["round"] > 0) & (rounds["variant"] == variant)].dropna(subset=[metric])
    for rnd, g in mine.groupby("round", sort=True):
        mean = float(g[metric].mean())
        lower, kind = lower_end(g[metric])
        gap_mean = gap_points(mean, base)
        gap_lower = math.nan if math.isnan(lower) else gap_points(lower, base)
        ok = within_tolerance(gap_mean, tolerance) and (math.isnan(gap_lower) or within_tolerance(gap_lower, tolerance))
        rows.append(dict(round=int(rnd), weights_remaining=float(g["weights_remaining"].mean()), trials=len(g),
                         mean=mean, lower=lower, lower_kind=kind, gap_mean=gap_mean, gap_lower=gap_lower, within=ok))
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


@dataclass(frozen=True)
class Recommendation:
    """The recommended round of one run and how it was judged (`verdicts`: `round_verdicts`)."""
    round: int | None
    tolerance: float
    dense: float | None          # the dense network's mean `metric` (fraction), None without round 0
    verdicts: pd.DataFrame

    @property
    def row(self) -> pd.Series | None:
        """The recommended round's verdict row."""
        if self.round is None:
            return None
        return self.verdicts[self.verdicts["round"] == self.round].iloc[0]


def recommend(rounds: pd.DataFrame, tolerance: float = TOLERANCE_POINTS, variant: str = "ticket",
              metric: str = "test_accuracy") -> Recommendation:
    """The sparsest pruned round whose `variant` is within `tolerance` points of the dense network by
    `round_verdicts`, with the verdicts of every round. Every round is judged on its own: a later round that
    recovers after a dip is still recommended. Rounds equally sparse are told apart by the higher mean, then
    the earlier round."""
    verdicts = round_verdicts(rounds, tolerance, variant, metric)
    dense = rounds[rounds["round"] == 0][metric].dropna()
    base = float(dense.mean()) if not dense.empty else None
    ok = verdicts[verdicts["within"].astype(bool)]
    if ok.empty:
        return Recommendation(None, tolerance, base, verdicts)
    best = ok.sort_values(["weights_remaining", "mean", "round"], ascending=[True, False, True], kind="stable")
    return Recommendation(int(best["round"].iloc[0]), tolerance, base, verdicts)


def recommended_round(rounds: pd.DataFrame, tolerance: float = TOLERANCE_POINTS, variant: str = "ticket",
                      metric: str = "test_accuracy") -> int | None:
    """The round of `recommend`: the sparsest pruned round whose `variant` stays within `tolerance` points of
    the dense network (round 0) by its mean over trials and, with 2 or more trials, by the lower end of its
    spread; None when no pruned round does (or round 0 is missing).

    `rounds` has the store's round columns (round, variant, weights_remaining, `metric`, one row per trial)."""
    return recommend(rounds, tolerance, variant, metric).round
