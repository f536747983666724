"""One number per cell of a sweep, with its interval over trials, and the best cell in words.

The number is the ticket's critical sparsity (`statistics.critical_sparsity`: the fewest weights down to
which it stays within the tolerance of its dense network; lower is better), or with `at` its test accuracy
at that fraction of weights remaining (interpolated between rounds in log(weights), per trial; higher is
better). Takes each cell's rounds table as the store gives it, so it runs on any set of runs.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
import pandas as pd

from lth_core.analysis.recommend import TOLERANCE_POINTS
from lth_core.analysis.statistics import REFERENCE, critical_sparsity, interval, pct

SUMMARY_COLUMNS = ["run_id", "label", "metric", "value", "low", "high", "trials", "upper_bound", "rounds_done"]


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
    """value, low, high (fractions 0–1), trials and upper_bound (critical sparsity never left the tolerance)
    of one cell; NaN value before the cell has a pruned round."""
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
                    trials=int(row["trials"]), upper_bound=bool(row["not_reached"]))
    ci = interval(accuracy_at(rounds, at))
    clip = (lambda v: v if math.isnan(v) else min(1.0, max(0.0, v)))  # an accuracy stays within 0–100 %
    return dict(value=ci.mean, low=clip(ci.low), high=clip(ci.high), trials=ci.n, upper_bound=False)


def summarize_cells(cells: Iterable[dict[str, Any]], at: float | None = None,
                    tolerance: float = TOLERANCE_POINTS) -> pd.DataFrame:
    """One row per cell (SUMMARY_COLUMNS plus each cell's axis values). Each item of `cells`: run_id, label,
    rounds (the run's rounds table) and axes (a dict axis → value as text)."""
    metric = "critical sparsity" if at is None else f"test accuracy at {pct(at)}"
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
    critical = known["metric"].iloc[0] == "critical sparsity"
    return known.loc[known["value"].idxmin() if critical else known["value"].idxmax()]


def best_cell_sentence(table: pd.DataFrame, tolerance: float = TOLERANCE_POINTS) -> str:
    """E.g. 'Best cell: prune_rate=0.4 reset=init (run abcd1234): the ticket stays within 1 point of dense
    down to 8.1 % of the weights (95 % CI 6.0–10.9 %, 3 trials); next best prune_rate=0.2 … at 10.7 %.'"""
    best = best_cell(table)
    if best is None:
        return "No cell has a pruned round yet: no best cell to name."
    critical = best["metric"] == "critical sparsity"
    spread = (f" (95 % CI {pct(best['low'])}–{pct(best['high'])}, {int(best['trials'])} trials)"
              if best["trials"] > 1 and not math.isnan(best["low"]) else
              " (one trial: no interval)" if best["trials"] == 1 else f" (all {int(best['trials'])} trials)")
    if critical:
        what = (f"the ticket stays within {tolerance:g} point{'s' if tolerance != 1 else ''} of its dense network "
                f"{'at every round, down to' if best['upper_bound'] else 'down to'} {pct(best['value'])} of the weights")
    else:
        what = f"the ticket reaches {pct(best['value'])} test accuracy at {best['metric'].rsplit(' at ', 1)[1]} of the weights"
    known = table.dropna(subset=["value"])
    others = known[known["run_id"] != best["run_id"]]
    if not others.empty:
        runner = (others.loc[others["value"].idxmin()] if critical else others.loc[others["value"].idxmax()])
        tail = f"; next best {runner['label']} at {pct(runner['value'])}"
    else:
        tail = ""
    return f"Best cell: {best['label']} (run {best['run_id']}): {what}{spread}{tail}."


def sweep_figure(table: pd.DataFrame, axes: list[str], title: str = ""):
    """The summary as a figure: a heatmap over two axes (each cell's value written in it), lines with error
    bars (the interval over trials) along one axis, a bar per cell otherwise. Pure Plotly, from the table."""
    import plotly.graph_objects as go

    critical = table["metric"].iloc[0] == "critical sparsity" if len(table) else True
    unit = "weights remaining at the critical sparsity (lower is better)" if critical else \
        f"ticket's {table['metric'].iloc[0]} (higher is better)"
    values = 100 * table["value"].astype(float)
    if len(axes) == 2:
        x, y = axes
        xs, ys = list(dict.fromkeys(table[x])), list(dict.fromkeys(table[y]))
        z = [[None] * len(xs) for _ in ys]
        text = [[""] * len(xs) for _ in ys]
        for r, v in zip(table.itertuples(), values):
            i, j = ys.index(getattr(r, y)), xs.index(getattr(r, x))
            z[i][j] = None if math.isnan(v) else v
            text[i][j] = "" if math.isnan(v) else f"{v:.1f} %"
        fig = go.Figure(go.Heatmap(x=xs, y=ys, z=z, text=text, texttemplate="%{text}", colorbar_title="%",
                                   colorscale="Viridis_r" if critical else "Viridis",
                                   hovertemplate=f"{x}=%{{x}}<br>{y}=%{{y}}<br>%{{z:.1f}} %<extra></extra>"))
        fig.update_layout(xaxis_title=x, yaxis_title=y, xaxis_type="category", yaxis_type="category")
    else:
        x = axes[0] if axes else "label"
        low, high = 100 * table["low"].astype(float), 100 * table["high"].astype(float)
        fig = go.Figure(go.Scatter(
            x=[str(v) for v in table[x]], y=values, mode="lines+markers" if len(axes) == 1 else "markers",
            error_y=dict(type="data", symmetric=False, array=(high - values).fillna(0), arrayminus=(values - low).fillna(0)),
            hovertemplate="%{x}: %{y:.1f} %<extra></extra>"))
        fig.update_layout(xaxis_title=x, yaxis_title="%", xaxis_type="category")
    fig.update_layout(title_text=title or unit, height=420, margin=dict(t=60, l=60, r=20, b=60))
    return fig
