"""One number per cell of a sweep, with its interval over trials, and the best cell in words.

The number is the ticket's critical sparsity (`statistics.critical_sparsity`: the sparsest measured round of its
mean over trials still within the tolerance of the dense network, the value the runs list and the sentences show;
its interval from each trial's own last round within; lower is better), or with `at` its test accuracy
at that fraction of weights remaining (interpolated between rounds in log(weights), per trial; higher is
better). Takes each cell's rounds table as the store gives it, so it runs on any set of runs.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
import pandas as pd

from lth_core.analysis.recommend import RANGE_BELOW_TRIALS, TOLERANCE_POINTS, points_text
from lth_core.analysis.statistics import REFERENCE, critical_sparsity, interval, pct, percent_text, spread_words

SUMMARY_COLUMNS = ["run_id", "label", "metric", "value", "low", "high", "trials", "upper_bound", "rounds_done"]

# the cell's number without `at`: statistics.critical_sparsity, in the words every page uses (statistics.MATCH_COLUMN)
FEWEST = "fewest weights matching dense"
# the shares of weights remaining at which the summary can read each cell's test accuracy
ACCURACY_AT = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5)


def share_text(share: float) -> str:
    """'1 %': a share of weights as the Sweep page's choice, its link (?at=) and `offered_shares` write it."""
    return f"{100 * share:g} %"


def offered_shares(lowest: Iterable[float], live: bool = False,
                   shares: Iterable[float] = ACCURACY_AT) -> tuple[list[float], str]:
    """The `shares` some cell's ticket got down to (only there can a cell have a test accuracy to show), from each
    cell's fewest weights remaining so far (`lowest`; NaN or None before its first pruned round), and a sentence
    naming those not offered and why ('' when every share is offered). `live`: cells are still pruning."""
    known = [float(w) for w in lowest if w is not None and not pd.isna(w)]
    fewest = min(known, default=1.0)
    shares = list(shares)
    offered = [s for s in shares if s >= fewest - 1e-9]  # the tolerance of accuracy_at
    missing = [share_text(s) for s in shares if s not in offered]
    if not missing:
        return offered, ""
    if fewest >= 1:
        return offered, "Test accuracy at a share of the weights is offered once a cell has a pruned round."
    listed = ", ".join(missing[:-1]) + (" and " if len(missing) > 1 else "") + missing[-1]
    return offered, (f"Test accuracy at {listed} of the weights is not offered: no cell {'has got' if live else 'got'} "
                     f"below {pct(fewest)} of the weights{' yet' if live else ''}.")


def accuracy_at(rounds: pd.DataFrame, at: float, variant: str = REFERENCE) -> np.ndarray:
    """Each trial's test accuracy of `variant` at `at` weights remaining (0–1), interpolated in log(weights)
    between the two rounds around it (the dense round 0 counts); NaN for a trial whose rounds do not reach it."""
    values = []
    for _, t in rounds.groupby("trial", sort=True):
        curve = t[(t["variant"] == variant) | (t["round"] == 0)].dropna(subset=["test_accuracy"])
        curve = curve.drop_duplicates("round").sort_values("weights_remaining")
        w, acc = curve["weights_remaining"].to_numpy(float), curve["test_accuracy"].to_numpy(float)
        if len(w) == 0 or not (w[0] - 1e-9 <= at <= w[-1] + 1e-9):
            values.append(math.nan)
            continue
        values.append(float(np.interp(math.log(at), np.log(w), acc)))
    return np.asarray(values, dtype=float)


def cell_value(rounds: pd.DataFrame, at: float | None = None, tolerance: float = TOLERANCE_POINTS) -> dict[str, Any]:
    """value, low, high (fractions 0–1), trials and upper_bound (the ticket's mean over trials never left the
    tolerance: '≤ value') of one cell; NaN value before the cell has a pruned round."""
    empty = dict(value=math.nan, low=math.nan, high=math.nan, trials=0, upper_bound=False)
    if rounds.empty or rounds["round"].max() < 1:
        return empty
    if at is None:
        table = critical_sparsity(rounds, tolerance)
        row = table[table["variant"] == REFERENCE]
        if row.empty:
            return empty
        row = row.iloc[0]
        return dict(value=float(row["fraction"]), low=float(row["low"]), high=float(row["high"]),
                    trials=int(row["trials"]), upper_bound=bool(row["upper_bound"]))
    ci = interval(accuracy_at(rounds, at))
    clip = (lambda v: v if math.isnan(v) else min(1.0, max(0.0, v)))  # an accuracy stays within 0–100 %
    return dict(value=ci.mean, low=clip(ci.low), high=clip(ci.high), trials=ci.n, upper_bound=False)


def summarize_cells(cells: Iterable[dict[str, Any]], at: float | None = None,
                    tolerance: float = TOLERANCE_POINTS) -> pd.DataFrame:
    """One row per cell (SUMMARY_COLUMNS plus each cell's axis values). Each item of `cells`: run_id, label,
    rounds (the run's rounds table) and axes (a dict axis → value as text)."""
    metric = FEWEST if at is None else f"test accuracy at {pct(at)}"
    rows = []
    for cell in cells:
        rounds = cell["rounds"]
        rows.append(dict(run_id=cell["run_id"], label=cell["label"], metric=metric,
                         rounds_done=int(rounds["round"].nunique()) if not rounds.empty else 0,
                         **cell_value(rounds, at, tolerance), **cell.get("axes", {})))
    return pd.DataFrame(rows, columns=list(dict.fromkeys(
        SUMMARY_COLUMNS + [k for c in rows for k in c if k not in SUMMARY_COLUMNS])))


def best_cell(table: pd.DataFrame) -> pd.Series | None:
    """The best cell of summarize_cells' table: the lowest critical sparsity, or the highest accuracy."""
    known = table.dropna(subset=["value"])
    if known.empty:
        return None
    critical = known["metric"].iloc[0] == FEWEST
    return known.loc[known["value"].idxmin() if critical else known["value"].idxmax()]


def _span(row: pd.Series, critical: bool) -> tuple[float, float] | None:
    """The cell's interval over trials as (low, high), or None without one (a single trial). A critical
    sparsity that never left the tolerance ('≤ x') is only bounded above: its interval reaches down to 0."""
    if row["trials"] < 2 or math.isnan(row["low"]) or math.isnan(row["high"]):
        return None
    return (0.0 if critical and row["upper_bound"] else float(row["low"])), float(row["high"])


def _value_text(row: pd.Series, critical: bool) -> str:
    """'8.1 % (95 % CI 6.0 %–10.9 %, 3 trials)', '8.1 % (trials: 7.5 % and 8.8 %)', 'at most 7.0 % (95 % CI up
    to 9.0 %, 3 trials)', '8.1 % (one trial)': the interval in the words of `statistics.spread_words`."""
    value = ("at most " if critical and row["upper_bound"] else "") + pct(row["value"])
    span = _span(row, critical)
    if span is None:
        return f"{value} ({'one trial' if row['trials'] == 1 else 'no interval'})"
    if critical and row["upper_bound"]:
        reach = f"highest trial {pct(span[1])}" if row["trials"] < RANGE_BELOW_TRIALS else f"95 % CI up to {pct(span[1])}"
        return f"{value} ({reach}, {int(row['trials'])} trials)"
    return f"{value} ({spread_words(span[0], span[1], int(row['trials']))})"


def best_cell_sentence(table: pd.DataFrame, tolerance: float = TOLERANCE_POINTS) -> str:
    """The best cell in words, with its interval over trials, and whether it is clearly best: its interval
    clear of every other cell's. E.g. 'Best cell: prune_rate=0.4 (run abcd1234): the ticket stays within
    1 point of its dense network down to 8.1 % of the weights (95 % CI 6.0–10.9 %, 3 trials); its interval lies
    below every other cell's (next best prune_rate=0.2: 10.7 % (95 % CI 9.9–11.6 %, 3 trials)).' or 'Best cell:
    none clearly. prune_rate=0.4 (run …) has the lowest …, but its interval overlaps those of …'. A critical
    sparsity that never left the tolerance ('≤ x') is an upper bound: its interval reaches down to 0."""
    best = best_cell(table)
    if best is None:
        return "No cell has a pruned round yet: no best cell to name."
    critical = best["metric"] == FEWEST
    if critical and best["value"] >= 1.0 and not best["upper_bound"]:  # the best one already fell at its first round
        cells = len(table.dropna(subset=["value"]))
        every = "The only cell's ticket falls" if cells == 1 else f"In all {cells} cells the ticket falls"
        return (f"Best cell: none. {every} more than {points_text(tolerance)} below its dense network already at "
                "its first pruned round: no setting here keeps a ticket. Prune less per round, or train longer.")
    if critical:
        what = (f"the ticket stays within {points_text(tolerance)} of its dense network "
                f"{'at every round, down to' if best['upper_bound'] else 'down to'} {_value_text(best, critical)} "
                "of the weights")
    else:
        what = (f"the ticket reaches {_value_text(best, critical)} test accuracy at "
                f"{best['metric'].rsplit(' at ', 1)[1]} of the weights")
    known = table.dropna(subset=["value"])
    others = known[known["run_id"] != best["run_id"]]
    head = f"{best['label']} (run {best['run_id']})"
    if others.empty:
        only = "with a pruned round so far" if critical else "whose rounds reach that share of the weights"
        return f"Best cell: {head}, the only cell {only}: {what}."
    ranked = others.sort_values("value", ascending=critical)
    mine = _span(best, critical)
    overlap = [r for _, r in ranked.iterrows() if mine is None or (span := _span(r, critical)) is None
               or (span[0] <= mine[1] if critical else span[1] >= mine[0])]
    listed = lambda rows: "; ".join(f"{r['label']}: {_value_text(r, critical)}" for r in rows[:3]) + (  # noqa: E731
        f"; and {len(rows) - 3} more" if len(rows) > 3 else "")
    if not overlap:
        side = "below" if critical else "above"
        return (f"Best cell: {head}: {what}; its interval lies {side} every other cell's (next best "
                f"{listed([ranked.iloc[0]])}).")
    why = ("with one trial a cell there is no interval to tell it from" if mine is None or any(
        _span(r, critical) is None for r in overlap) else f"its interval overlaps {'that' if len(overlap) == 1 else 'those'} of")
    return (f"Best cell: none clearly. {head} has the {'lowest' if critical else 'highest'} mean: {what}; but "
            f"{why} {listed(overlap)}. More trials a cell would narrow the intervals.")


def blank_reason(row: Any, critical: bool) -> str:
    """Why a cell has no value: not yet a pruned round, or (accuracy at a size) its rounds never got that small."""
    if int(row.rounds_done) < 2:
        return "no pruned round yet"
    return "no value yet" if critical else f"not pruned to {row.metric.rsplit(' at ', 1)[-1]}"


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def sweep_figure(table: pd.DataFrame, axes: list[str], title: str = ""):
    """The summary as a figure: a heatmap over two axes (each cell's value written in it), lines with error
    bars (the interval over trials) along one axis, a bar per cell otherwise. Pure Plotly, from the table."""
    import plotly.graph_objects as go

    critical = table["metric"].iloc[0] == FEWEST if len(table) else True
    unit = "fewest weights (% remaining) at which the ticket still matches dense (lower is better)" if critical else \
        f"ticket's {table['metric'].iloc[0]} (higher is better)"
    values = 100 * table["value"].astype(float)
    if len(axes) == 2:
        x, y = axes
        xs, ys = list(dict.fromkeys(table[x])), list(dict.fromkeys(table[y]))
        z = [[None] * len(xs) for _ in ys]
        text = [[""] * len(xs) for _ in ys]
        hover = [["no cell"] * len(xs) for _ in ys]
        for r, v in zip(table.itertuples(), values):
            i, j = ys.index(getattr(r, y)), xs.index(getattr(r, x))
            z[i][j] = None if math.isnan(v) else v
            # as the table writes it: '≤ x' where the ticket never left the tolerance (an upper bound)
            bound = critical and not math.isnan(v) and bool(r.upper_bound)
            text[i][j] = blank_reason(r, critical) if math.isnan(v) else f"{'≤ ' if bound else ''}{percent_text(v)}"
            hover[i][j] = text[i][j] + (" (an upper bound: the ticket matched dense down to its last round)"
                                        if bound else "")
        fig = go.Figure(go.Heatmap(x=xs, y=ys, z=z, text=text, texttemplate="%{text}", customdata=hover,
                                   colorbar_title_text=("% of weights<br>(lower is better)" if critical
                                                        else "accuracy, %<br>(higher is better)"),
                                   colorscale="Viridis_r" if critical else "Viridis",
                                   hovertemplate=f"{x}=%{{x}}<br>{y}=%{{y}}<br>%{{customdata}}<extra></extra>"))
        fig.update_layout(xaxis_title=x, yaxis_title=y, xaxis_type="category", yaxis_type="category")
    else:
        x = axes[0] if axes else "label"
        low, high = 100 * table["low"].astype(float), 100 * table["high"].astype(float)
        # a line only joins values that have an order (prune rates, widths); resets or criteria stand apart
        ordered = len(axes) == 1 and all(_is_number(v) for v in table[x])
        # '≤ x': the ticket never left the tolerance, so the value is only an upper bound, drawn as ▼ with its sign
        bound = (table["upper_bound"].astype(bool) if critical else pd.Series(False, index=table.index)).to_numpy()
        fig = go.Figure(go.Scatter(
            x=[str(v) for v in table[x]], y=values, mode="lines+markers+text" if ordered else "markers+text",
            text=[f"≤ {percent_text(v)}" if b else "" for v, b in zip(values, bound)], textposition="middle right",
            marker=dict(size=9, symbol=["triangle-down" if b else "circle" for b in bound]),
            error_y=dict(type="data", symmetric=False, array=(high - values).fillna(0), arrayminus=(values - low).fillna(0)),
            hovertemplate="%{x}: %{y:.1f} %<extra></extra>"))
        fig.update_layout(xaxis_title=x, xaxis_type="category",
                          yaxis_title="% of weights remaining" if critical else "test accuracy (%)")
    fig.update_layout(title_text=title or unit, height=420, margin=dict(t=60, l=60, r=20, b=60))
    return fig
