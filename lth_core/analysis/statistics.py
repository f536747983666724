"""Is the ticket effect real? Means and 95 % confidence intervals over trials, paired gaps to the controls,
the critical sparsity, and advice on how many trials would decide a gap.

Every function takes a rounds table in the store's format (`RunStore.rounds(run_id)`,
`RunResult.rounds_df()`: one row per trial, round and variant) and returns a DataFrame or a short
sentence a page or the CLI can print as it is.

The one rule for an interval over trials, wherever one is shown (`interval`, in words `spread_words`):
- 1 trial: none (NaN bounds; the note says to run SUGGESTED_TRIALS or more);
- 2 trials: the two trials themselves, lowest to highest ("trials: 91.8 % and 93.1 %"): a 95 % t-interval
  from two values takes t = 12.7 and spans most of the scale (7.8 %–100 %), which tells nobody anything;
- from 3 (recommend.RANGE_BELOW_TRIALS) a 95 % confidence interval from scipy: a t-interval below
  BOOTSTRAP_FROM_TRIALS trials, a seeded (so repeatable) BCa bootstrap of the mean from there on; clipped to
  what the metric can be (0–100 % for accuracies and shares of weights).

Units: `round_intervals` keeps the metric's own units (accuracies as fractions 0–1, as stored);
gaps are in percentage points for accuracies (ticket 92.4 % − reinit 89.2 % = +3.2) and in the
metric's units otherwise (iterations).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import stdtrit  # Student's t quantile: scipy.stats (1 s to import) only for the bootstrap

from lth_core.analysis.recommend import (RANGE_BELOW_TRIALS, SHOWN_DECIMALS, TOLERANCE_POINTS, gap_points, points_text,
                                         within_tolerance)
from lth_core.engine.variants import TICKET, VARIANTS, phrase, short

CONFIDENCE = 0.95
BOOTSTRAP_FROM_TRIALS = 5   # from this many trials on, a bootstrap interval; below it a t-interval
BOOTSTRAP_RESAMPLES = 9999  # scipy's default
BOOTSTRAP_SEED = 0          # the bootstrap is seeded, so the same table always gives the same interval
SUGGESTED_TRIALS = 3        # what a one-trial run is told to try
MAX_TRIALS_ESTIMATE = 1000  # beyond this, "trials needed" is reported as more than this
REFERENCE = TICKET          # gaps are ticket − control; every other variant in the table is a control
ONE_TRIAL_NOTE = f"one trial: no interval can be given; run {SUGGESTED_TRIALS} trials or more to get one"


@dataclass(frozen=True)
class Interval:
    """The mean of n values and its confidence interval (NaN bounds when n < 2)."""
    mean: float
    low: float
    high: float
    n: int
    method: str  # "range" (2 values: lowest to highest), "t", "bootstrap", "all equal" (every value the same:
                 # the interval is that point) or "none"

    @property
    def note(self) -> str:
        if self.n == 0:
            return "no data"
        return ONE_TRIAL_NOTE if self.n == 1 else ""


def interval(values, confidence: float = CONFIDENCE, seed: int = BOOTSTRAP_SEED) -> Interval:
    """Mean and interval of `values` (NaNs are dropped), by the module's one rule: the two values themselves
    with 2 (method "range"), scipy's t-interval for RANGE_BELOW_TRIALS to BOOTSTRAP_FROM_TRIALS − 1 values,
    scipy's seeded BCa bootstrap of the mean from BOOTSTRAP_FROM_TRIALS on."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, "none")
    mean = float(x.mean())
    if n == 1:
        return Interval(mean, math.nan, math.nan, 1, "none")
    if np.ptp(x) == 0:  # no spread: scipy's intervals are undefined (zero scale); every trial agreed exactly
        return Interval(mean, mean, mean, n, "all equal")
    if n < RANGE_BELOW_TRIALS:
        return Interval(mean, float(x.min()), float(x.max()), n, "range")
    if n < BOOTSTRAP_FROM_TRIALS:
        half = stdtrit(n - 1, 0.5 + confidence / 2) * float(x.std(ddof=1)) / math.sqrt(n)  # scipy.stats.t.interval
        return Interval(mean, float(mean - half), float(mean + half), n, "t")
    from scipy import stats  # here, not at the top: the app's first page after a server start paid its import

    with warnings.catch_warnings():  # BCa on a handful of values may warn of its own accuracy; the interval stands
        warnings.simplefilter("ignore")
        ci = stats.bootstrap((x,), np.mean, confidence_level=confidence, n_resamples=BOOTSTRAP_RESAMPLES,
                             rng=np.random.default_rng(seed)).confidence_interval
    return Interval(mean, float(ci.low), float(ci.high), n, "bootstrap")


def trials_to_decide(gaps, confidence: float = CONFIDENCE) -> int | None:
    """An estimate of how many trials would likely make the interval of a paired gap exclude zero: the
    smallest n at which the t-interval's half-width t(n−1)·sd/√n, with the observed sd, falls below the
    observed |mean gap|. None when it cannot be estimated (fewer than 2 trials, or a mean gap of zero);
    MAX_TRIALS_ESTIMATE + 1 when even that many would not do."""
    x = np.asarray(gaps, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) < 2:
        return None
    mean, sd = abs(float(x.mean())), float(x.std(ddof=1))
    if mean == 0:
        return None
    if sd == 0:
        return len(x)
    n = np.arange(2, MAX_TRIALS_ESTIMATE + 1)
    half = stdtrit(n - 1, 0.5 + confidence / 2) * sd / np.sqrt(n)
    enough = n[half < mean]
    if not len(enough):
        return MAX_TRIALS_ESTIMATE + 1
    return max(int(enough[0]), len(x) + 1)  # the trials at hand did not decide it (a bootstrap may be narrower)


def is_accuracy(metric: str) -> bool:
    return metric.endswith("accuracy")


def in_units(difference, metric: str):
    """A difference of `metric` values in the units gaps are given in: points for accuracies, rounded to
    1e-4 points because the store keeps accuracies as float32, whose last bits must neither make a gap out
    of two equal-looking differences nor decide whether a drop of exactly the tolerance is within it."""
    return np.round(100 * difference, 4) if is_accuracy(metric) else difference


def controls_of(rounds: pd.DataFrame) -> list[str]:
    """The variants other than the ticket in the pruned rounds, in the order the run produced them."""
    pruned = rounds[rounds["round"] > 0]
    return [v for v in pd.unique(pruned["variant"]) if v != REFERENCE]


def _weights_by_round(rounds: pd.DataFrame) -> pd.Series:
    return rounds.groupby("round")["weights_remaining"].mean()


def _interval_row(values, confidence: float, seed: int) -> dict:
    ci = interval(values, confidence, seed)
    return dict(trials=ci.n, mean=ci.mean, low=ci.low, high=ci.high, method=ci.method, note=ci.note)


def round_intervals(rounds: pd.DataFrame, metric: str = "test_accuracy", confidence: float = CONFIDENCE,
                    seed: int = BOOTSTRAP_SEED) -> pd.DataFrame:
    """One row per round and variant: round, weights_remaining, variant, trials, mean, low, high, method, note;
    the mean of `metric` over trials and its interval, in the metric's units (accuracies as fractions)."""
    weights = _weights_by_round(rounds)
    rows = [dict(round=int(r), weights_remaining=float(weights[r]), variant=v,
                 **_interval_row(g[metric], confidence, seed))
            for (r, v), g in rounds.groupby(["round", "variant"], sort=False)]
    columns = ["round", "weights_remaining", "variant", "trials", "mean", "low", "high", "method", "note"]
    table = pd.DataFrame(rows, columns=columns).sort_values(["round"], kind="stable").reset_index(drop=True)
    # a t-interval over 2 trials is wide (t = 12.7) and can pass what the metric can be: an accuracy stays
    # in 0–100 %, an iteration count at or above 0, so the bounds are cut there rather than shown as 108 %
    lo, hi = (0.0, 1.0) if is_accuracy(metric) else (0.0, None)
    table[["low", "high"]] = table[["low", "high"]].clip(lower=lo, upper=hi)
    return table


def band_label(trials: int, method: str) -> str:
    """What a plot's band around a mean over `trials` is, in words: 'range of 2 trials', '95 % CI', or ''."""
    if trials < 2 or method in ("none", "all equal"):
        return ""
    return f"range of {trials} trials" if method == "range" else f"{100 * CONFIDENCE:g} % CI"


def spread_words(low: float, high: float, trials: int, fmt=None) -> str:
    """An interval over trials in words, by the module's one rule: 'trials: 91.8 % and 93.1 %' (2 trials),
    '95 % CI 91.8 %–93.1 %, 3 trials', 'the same in all 3 trials', 'one trial', '' (none). `fmt` prints a
    bound (default `pct`)."""
    fmt = fmt or pct
    if trials < 2 or pd.isna(low) or pd.isna(high):
        return "one trial" if trials == 1 else ""
    if trials < RANGE_BELOW_TRIALS:
        return f"both trials: {fmt(low)}" if fmt(low) == fmt(high) else f"trials: {fmt(low)} and {fmt(high)}"
    if fmt(low) == fmt(high):
        return f"the same in all {trials} trials"
    return f"{100 * CONFIDENCE:g} % CI {fmt(low)}–{fmt(high)}, {trials} trials"


def round_bands(rounds: pd.DataFrame, metric: str = "test_accuracy", confidence: float = CONFIDENCE,
                seed: int = BOOTSTRAP_SEED) -> pd.DataFrame:
    """What the plots shade around each round's mean: `round_intervals`' table with `band` (its words, see
    `band_label`): the 95 % CI from RANGE_BELOW_TRIALS trials on, the two trials' range with 2 (`interval`)."""
    table = round_intervals(rounds, metric, confidence, seed)
    table["band"] = [band_label(n, m) for n, m in zip(table["trials"], table["method"])]
    return table


def paired_gaps(rounds: pd.DataFrame, metric: str = "test_accuracy", confidence: float = CONFIDENCE,
                seed: int = BOOTSTRAP_SEED) -> pd.DataFrame:
    """Ticket − control within each trial (same mask size, same data order), for every control in the
    table and every pruned round. One row per round and control: round, weights_remaining, control, metric,
    trials (the trials where both are present), mean, low, high, method, verdict, trials_needed, note.

    Gaps are in points for accuracies. `verdict`: "ticket better" (the interval lies above zero),
    "control better" (below zero), "undecided" (it contains zero), "no interval" (under 2 trials).
    `trials_needed`: for an undecided gap, the estimate of `trials_to_decide`."""
    weights = _weights_by_round(rounds)
    wide = rounds[rounds["round"] > 0].pivot_table(index=["round", "trial"], columns="variant", values=metric,
                                                   aggfunc="mean", dropna=False)
    rows = []
    for control in controls_of(rounds):
        for r, per_trial in wide.groupby(level="round"):
            if REFERENCE not in per_trial:
                gaps = pd.Series(dtype=float)
            else:
                gaps = in_units(per_trial[REFERENCE] - per_trial[control], metric).dropna()
            row = dict(round=int(r), weights_remaining=float(weights[r]), control=control, metric=metric,
                       **_interval_row(gaps, confidence, seed))
            if row["trials"] < 2:
                verdict = "no interval"
            elif row["low"] > 0:
                verdict = "ticket better"
            elif row["high"] < 0:
                verdict = "control better"
            else:
                verdict = "undecided"
            row["verdict"] = verdict
            row["trials_needed"] = trials_to_decide(gaps, confidence) if verdict == "undecided" else None
            rows.append(row)
    columns = ["round", "weights_remaining", "control", "metric", "trials", "mean", "low", "high", "method", "verdict",
               "trials_needed", "note"]
    out = pd.DataFrame(rows, columns=columns)
    out["trials_needed"] = out["trials_needed"].astype("Int64")
    return out


# ---- sentences -----------------------------------------------------------------------------------------

def pct(fraction: float, digits: int = SHOWN_DECIMALS) -> str:
    """A fraction as the app prints percentages everywhere (sentences, metrics, tables, ticks): 29.8 %. A share
    too small for `digits` decimals keeps two significant digits (0.044 %), so a heavily pruned network never
    reads as 0.0 %."""
    return percent_text(100 * fraction, digits)


def percent_text(value: float, digits: int = SHOWN_DECIMALS) -> str:
    """A value already in percent, printed as `pct` prints fractions (the plots hold percentages)."""
    if 0 < abs(value) < 0.5 * 10 ** -digits:
        return f"{value:.2g} %"
    return f"{value:.{digits}f} %"


def points(value: float) -> str:
    """A gap in points: one decimal (8.9), two below 0.1 (0.04), and '<0.01' for a bound closer to zero than
    that, so an interval above zero never reads as starting at zero (nor as 0.0028: accuracies on a few
    thousand test examples do not resolve thousandths of a point)."""
    if value == 0 or abs(value) >= 0.095:  # 0.095 prints as 0.1 at one decimal
        return f"{value:.1f}"
    if abs(value) >= 0.005:
        return f"{value:.2f}"
    return "<0.01" if value > 0 else ">−0.01"


def name(variant: str, reset: str = "init") -> str:
    """How `variant` reads in a sentence (the registry's phrase; the ticket's follows the run's reset mode)."""
    return phrase(variant, reset) if variant in VARIANTS else variant


def _trials_text(counts) -> str:
    low, high = int(min(counts)), int(max(counts))
    return f"{low} trials" if low == high else f"{low}–{high} trials"


def _runs_of(flags: list[bool]) -> list[tuple[int, int]]:
    """(first, last) positions of each stretch of consecutive True values."""
    out, start = [], None
    for i, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            out.append((start, i - 1))
            start = None
    return out


def _where(first: pd.Series, last: pd.Series) -> str:
    if first.name == last.name:
        return f"At {pct(first.weights_remaining)} of the weights"
    return f"From {pct(first.weights_remaining)} down to {pct(last.weights_remaining)} of the weights"


def gap_sentences(gaps: pd.DataFrame, control: str, confidence: float = CONFIDENCE, reset: str = "init") -> list[str]:
    """What `paired_gaps` says about one control, in words: where (a range of weights remaining) the
    ticket beats it with `confidence`, where it loses, where the interval is too wide to decide and about
    how many trials would decide it. E.g. 'From 21.1 % down to 4.5 % of the weights the ticket beats
    reinit by 2.1–4.4 points (95 % CI, 5 trials).' (the span of those rounds' intervals). `reset`, the
    run's reset mode, names the ticket."""
    ticket = name(REFERENCE, reset)
    g = gaps[gaps["control"] == control].sort_values("round").reset_index(drop=True)
    level = f"{100 * confidence:g} % CI"
    few = g["method"].isin(["range"]) | (g["trials"] < RANGE_BELOW_TRIALS)  # 2 trials: the gap's range, no CI
    measured = g[g["trials"] > 0]
    if measured.empty:
        return [f"No pruned round has both {ticket} and {name(control)} yet: nothing to compare."]
    if measured["trials"].max() < 2:
        return [f"One trial: no confidence interval can be given for the gap between {ticket} and {name(control)}. "
                f"Run {SUGGESTED_TRIALS} trials or more to get one."]
    out = []
    accuracy = is_accuracy(str(g["metric"].iloc[0]))
    for verdict in ("ticket better", "control better"):
        for a, b in _runs_of(list(g["verdict"] == verdict)):
            part = g.iloc[a:b + 1]
            # the span of these rounds' intervals, as a size: every one of them lies inside it
            low, high = (part["low"].min(), part["high"].max()) if verdict == "ticket better" else \
                (-part["high"].max(), -part["low"].min())
            if accuracy:
                winner, loser = (ticket, name(control)) if verdict == "ticket better" else (name(control), ticket)
                claim = (f"{winner} beats {loser} by {points(low)}–{points(high)} points" if low >= 0.005 else
                         f"{winner} beats {loser} by under 0.01 to {points(high)} points")
            else:
                side = "higher" if verdict == "ticket better" else "lower"
                claim = f"{ticket}'s {g['metric'].iloc[0]} is {low:.3g}–{high:.3g} {side} than {name(control)}'s"
            said = ("in each of the 2 trials" if few.iloc[a:b + 1].all()
                    else f"{level}, {_trials_text(part['trials'])}")
            out.append(f"{_where(g.iloc[a], g.iloc[b])} {claim} ({said}).")
    if not any(g["verdict"].isin(["ticket better", "control better"])):
        out.append(f"At no sparsity does {ticket} beat {name(control)}, or lose to it, in both trials." if few.all()
                   else f"At no sparsity does {ticket} differ from {name(control)} with {100 * confidence:g} % "
                   f"confidence ({_trials_text(measured['trials'])}).")
    undecided = g[g["verdict"] == "undecided"]
    if not undecided.empty:
        at = ", ".join(pct(w) for w in undecided["weights_remaining"])
        needed = undecided["trials_needed"].dropna()
        if needed.empty:
            advice = "the observed mean gap is zero, so more trials would likely not decide it either"
        else:
            lo, hi = int(needed.min()), int(needed.max())
            many = (f"more than {MAX_TRIALS_ESTIMATE}" if lo > MAX_TRIALS_ESTIMATE
                    else f"about {lo}" if lo == hi else f"about {lo}–{hi}" if hi <= MAX_TRIALS_ESTIMATE
                    else f"{lo} to more than {MAX_TRIALS_ESTIMATE}")
            advice = (f"{many} trials would likely decide it (an estimate from the observed mean gap and its "
                      "spread across trials)")
        why = ("the 2 trials disagree on which is better" if few[undecided.index].all() else
               f"the interval of {short(REFERENCE, reset)} − {control} contains zero: too wide to decide with "
               f"{_trials_text(undecided['trials'])}")
        out.append(f"At {at} of the weights {why}; {advice}.")
    for trials, words in ((1, "only one trial has both: no interval there"), (0, "no trial has both")):
        at = g[g["trials"] == trials]["weights_remaining"]
        if not at.empty:
            out.append(f"At {', '.join(pct(w) for w in at)} of the weights {words}.")
    return out


# ---- critical sparsity -----------------------------------------------------------------------------------
# How far a network can be pruned, in the words every page, the report and the CLI use (the literature's
# "critical sparsity", which mixes sparsity and weights remaining): always as a share of the weights remaining.
MATCH_COLUMN = "stops matching dense at"   # the runs table's column (app: ui.runs_list.CRITICAL_HEADER, and CLI)


def match_words(tolerance: float = TOLERANCE_POINTS, who: str = "the ticket") -> str:
    """'the fewest weights at which the ticket still matches dense (within 1 point)'."""
    return f"the fewest weights at which {who} still matches dense (within {points_text(tolerance)})"


def _held(weights: np.ndarray, gaps: np.ndarray, tolerance: float) -> tuple[float, bool]:
    """The one rule for how far a curve can be pruned and still match dense: going from dense down the measured
    rounds, the weights of the sparsest round before the gap (points) first falls below −tolerance (1.0 when the
    first pruned round already does), and whether it falls below at all (False: every round stays within, so the
    value is the sparsest round measured, an upper bound). Measured rounds only, never interpolated: what the
    bars of the figures show."""
    for i in range(1, len(weights)):
        if not within_tolerance(gaps[i], tolerance):
            return float(weights[i - 1]), True
    return float(weights[-1]), False


def _mean_curve(rounds: pd.DataFrame, variant: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Weights and gaps (points) of `variant`'s mean over trials against the mean dense network, round by
    round: the bars of the tour's and Compare's figures. `rounds` has a dense network and a pruned round of
    `variant` (`critical_sparsity` asks only for such variants)."""
    dense = rounds[rounds["round"] == 0][metric].dropna()
    curve = rounds[(rounds["round"] > 0) & (rounds["variant"] == variant)].dropna(subset=[metric])
    g = curve.groupby("round", sort=True)
    weights = np.concatenate([[1.0], g["weights_remaining"].mean().to_numpy(float)])
    return weights, _band_gaps(g[metric].mean().to_numpy(float), float(dense.mean()), metric)


def _band_gaps(values: np.ndarray, dense: float, metric: str) -> np.ndarray:
    """0 for the dense network, then the gap (points) of each of `values` to `dense`, an accuracy's as the pages
    print it and judge the bars against the band (`gap_points`): what `_held` reads, for the mean and each trial."""
    gaps = [gap_points(v, dense) for v in values] if is_accuracy(metric) else list(in_units(values - dense, metric))
    return np.concatenate([[0.0], gaps])


def critical_per_trial(rounds: pd.DataFrame, tolerance: float = TOLERANCE_POINTS,
                       metric: str = "test_accuracy") -> pd.DataFrame:
    """One row per trial and variant: trial, variant, fraction, reached. `fraction` is that trial's own last
    measured round within `tolerance` points of its dense network (round 0), by the one rule of `_held` on gaps
    as printed (`_band_gaps`, as for the mean);
    `reached` is False when the trial never left the tolerance (`fraction` is then its sparsest round, an
    upper bound). Rounds whose value is missing or NaN are skipped."""
    rows = []
    for trial, t in rounds.groupby("trial", sort=True):
        dense = t[t["round"] == 0][metric].dropna()
        if dense.empty:
            continue
        for variant in [REFERENCE, *controls_of(rounds)]:
            curve = t[(t["round"] > 0) & (t["variant"] == variant)].dropna(subset=[metric]).sort_values("round")
            if curve.empty:
                continue
            weights = np.concatenate([[1.0], curve["weights_remaining"].to_numpy(float)])
            gaps = _band_gaps(curve[metric].to_numpy(float), float(dense.iloc[0]), metric)
            fraction, reached = _held(weights, gaps, tolerance)
            rows.append(dict(trial=int(trial), variant=variant, fraction=fraction, reached=reached))
    return pd.DataFrame(rows, columns=["trial", "variant", "fraction", "reached"])


def critical_sparsity(rounds: pd.DataFrame, tolerance: float = TOLERANCE_POINTS, metric: str = "test_accuracy",
                      confidence: float = CONFIDENCE, seed: int = BOOTSTRAP_SEED) -> pd.DataFrame:
    """How far each variant can be pruned and still match dense, the one number every page, the runs list, the
    sweep summary, the report and the CLI show: `fraction`, the sparsest measured round of the mean over trials
    still within `tolerance` points of the mean dense network, before it first falls below (`_held` on the
    bars: never interpolated; 1.0 when the first pruned round already falls below); `upper_bound` when the mean
    never left the tolerance (the fraction is then the sparsest round measured: "≤"). Its spread over trials is
    each trial's own last round within (`critical_per_trial`): `low`, `high` by the one rule of `interval`, taken
    in log(weights) as the plots' axis (with 2 trials the two trials themselves), `held_trials` the values.

    Columns: variant, trials, fraction, low, high, method, not_reached (trials that never left the tolerance),
    note, upper_bound, first (the weights of the first pruned round), held_trials."""
    per_trial = critical_per_trial(rounds, tolerance, metric)
    rows = []
    for variant in pd.unique(per_trial["variant"]):
        mine = per_trial[per_trial["variant"] == variant]
        ci = interval(np.log(mine["fraction"].to_numpy(float)), confidence, seed)
        weights, gaps = _mean_curve(rounds, variant, metric)  # the variant has a trial with both (per_trial)
        held, left = _held(weights, gaps, tolerance)
        rows.append(dict(variant=variant, trials=ci.n, fraction=held, low=math.exp(ci.low),
                         # a network cannot keep more than all its weights: the interval is clipped to 100 %
                         high=min(math.exp(ci.high), 1.0), method=ci.method,
                         not_reached=int((~mine["reached"].astype(bool)).sum()), note=ci.note,
                         upper_bound=not left, first=float(weights[1]),
                         held_trials=[float(v) for v in mine["fraction"]]))
    return pd.DataFrame(rows, columns=["variant", "trials", "fraction", "low", "high", "method", "not_reached",
                                       "note", "upper_bound", "first", "held_trials"])


def critical_text(row) -> str:
    """A critical-sparsity row as a short cell, the value the sentences name: '53.4 %', '≤ 4.4 %' (the mean over
    trials never left the tolerance), '100.0 %' (it fell below already at the first pruned round: only the dense
    network matches)."""
    if row is None or pd.isna(row["fraction"]):
        return ""
    return ("≤ " if row["upper_bound"] else "") + pct(row["fraction"])


def critical_cell(rounds: pd.DataFrame, variant: str = REFERENCE, tolerance: float = TOLERANCE_POINTS) -> str:
    """A run's critical sparsity as one table cell (the `runs` column): '46.2 %', '≤ 7.0 %'; empty before
    `variant` has a pruned round."""
    if rounds.empty:
        return ""
    table = critical_sparsity(rounds, tolerance)
    row = table[table["variant"] == variant]
    return critical_text(row.iloc[0]) if not row.empty else ""


DISAGREE = 2.0  # two trials whose last round within the tolerance differ by more than this factor disagree


def _held_words(held: float, only: bool = False, plural: bool = False) -> str:
    """Where one trial (or several, `plural`) stops matching the dense network, in words a student reads alone."""
    if held >= 1.0:
        return f"fall{'' if plural else 's'} below dense already at the first pruned round"
    return f"match{'' if plural else 'es'} dense {'only ' if only else ''}down to {pct(held)}"


def held_trials_words(row, tolerance: float = TOLERANCE_POINTS) -> str:
    """Each trial's last round within the tolerance, in words: 'one trial matches dense down to 51.3 %, the other
    falls below dense already at the first pruned round', or, when two trials are far apart, 'the 2 trials
    disagree: one matches dense down to 7.0 %, the other only down to 89.5 %' — never a mean that neither trial
    shows."""
    values = sorted(row["held_trials"])
    n = len(values)
    if n == 2 and values[1] > DISAGREE * values[0]:
        return (f"the 2 trials disagree: one trial {_held_words(values[0])}, the other "
                f"{_held_words(values[1], only=True)}")
    if values[0] == values[-1]:
        return f"{'both' if n == 2 else f'all {n}'} trials {_held_words(values[0], plural=True)}"
    if n == 2:
        return f"one trial {_held_words(values[0])}, the other {_held_words(values[1])}"
    worst = "the first pruned round" if values[-1] >= 1.0 else pct(values[-1])
    spread = "; the trials disagree" if values[-1] > DISAGREE * values[0] else ""
    return f"the {n} trials match dense down to {pct(values[0])} at best and {worst} at worst{spread}"


def critical_sentence(table: pd.DataFrame, variant: str, tolerance: float = TOLERANCE_POINTS,
                      confidence: float = CONFIDENCE, reset: str = "init") -> str:
    """E.g. 'The ticket stays within 1 point of the dense network down to 8.7 % of the weights and falls below it
    in the next round on the mean of 2 trials (trials: 8.7 % and 10.8 %).' Said in measured rounds of the mean
    over trials against the mean dense network, the bars of the figures beside it, never interpolated: the
    value of `critical_sparsity` the runs list and the sweep summary show; each trial's own last round within
    follows (`held_trials_words`)."""
    row = table[table["variant"] == variant]
    if row.empty:
        return (f"How far {name(variant, reset)} can be pruned is not known yet: it has no pruned round with a dense "
                "network to compare.")
    row = row.iloc[0]
    who = name(variant, reset)
    head = f"{who[0].upper()}{who[1:]} stays within {points_text(tolerance)} of the dense network"
    n = int(row["trials"])
    if row["upper_bound"] and row["not_reached"] == n:
        where = f"at every round, down to {pct(row['fraction'])} of the weights, the sparsest measured"
        return (f"{head} {where}{f' ({n} of {n} trials)' if n > 1 else ''}, so how far it can be pruned "
                "and still match dense is not known yet: prune further to find out.")
    # said in measured rounds of the mean over trials, as the bars show it: never a value between rounds
    fell = (f"{who[0].upper()}{who[1:]} falls more than {points_text(tolerance)} below "
            f"the dense network already at its first pruned round, {pct(row['first'])} of the weights")
    if row["upper_bound"]:
        said = f"{head} at every round, down to {pct(row['fraction'])} of the weights, the sparsest measured"
    elif row["fraction"] >= 1.0:
        said = fell
    else:
        said = f"{head} down to {pct(row['fraction'])} of the weights and falls below it in the next round"
    if n == 1:
        return f"{said} (one trial: no interval can be given; run {SUGGESTED_TRIALS} trials or more to get one)."
    return f"{said} (mean of {n} trials; {held_trials_words(row, tolerance)})."
