"""Pruning at init versus IMP, read: the figure, the table and the plain-language summary, all computed from
the experiment's points (runs/at_init.points: method, target, round, trial, variant, weights_remaining,
test_accuracy ...). Pure functions of the table; no store here.

What the summary checks is the finding of Frankle et al. 2021 ("missing the mark"): the at-init methods
beat random pruning but lose to IMP, and shuffling or reinitialising their masks changes little (only their
per-layer densities matter), while the same controls ruin the IMP ticket. Every sentence says what *this*
run measured, whichever way it came out.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from lth_core.analysis.plots import FULL_WIDTH, _rgba, accuracy_vs_weights
from lth_core.analysis.summary import pct
from lth_core.engine.variants import TICKET, VARIANTS

IMP = "imp"
METHOD_NAMES = {IMP: "IMP", "snip": "SNIP", "grasp": "GraSP", "synflow": "SynFlow",
                "magnitude-at-init": "magnitude at init", "random": "random pruning"}
FIXED_COLORS = {"IMP": "#000000", "random pruning": "#999999"}  # by method name; the rest take the runs' colours
PRUNED_AT_INIT = "pruned at init"   # the legend's name of an at-init method's own line (IMP's is the ticket)
CLEARLY = 0.01   # a difference of a point of accuracy or more is called a difference; less is "about the same"


def method_name(method: str) -> str:
    return METHOD_NAMES.get(method, method)


def figure(points: pd.DataFrame, dense: pd.DataFrame | None = None, controls_of: set[str] | None = None,
           metric: str = "test_accuracy") -> go.Figure:
    """Accuracy against weights remaining (log x): one colour per method, its pruned network solid and its
    controls in the registry's line styles (dashed), bands as elsewhere (the trials' range with 2, the
    95 % CI from 3). `dense`: the IMP run's round 0 rows (a dotted level). `controls_of`: the methods whose
    controls are drawn (default: all)."""
    df = points.assign(run=points["method"].map(method_name))
    if controls_of is not None:
        df = df[(df["variant"] == TICKET) | df["method"].isin(controls_of)]
    if dense is not None and len(dense):
        df = pd.concat([dense.assign(run=method_name(IMP), method=IMP), df], ignore_index=True)
    fig = accuracy_vs_weights(df, metric, title="Pruning at init versus IMP: accuracy against weights remaining")
    ticket = VARIANTS[TICKET].short
    for trace in fig.data:
        color = FIXED_COLORS.get(trace.legendgroup)
        if color:  # IMP and random pruning, the two references, in colours no other method takes
            trace.line.color = color
            if trace.fill:
                trace.fillcolor = _rgba(color, 0.18)
            else:
                trace.marker.color = color  # a method pruned at init is no ticket: say what its own line is
        if trace.legendgroup not in (method_name(IMP), None) and trace.name == ticket:
            trace.name = PRUNED_AT_INIT
            trace.hovertemplate = (trace.hovertemplate or "").replace(f" · {ticket}<", f" · {PRUNED_AT_INIT}<")
        if trace.legendgroup not in (method_name(IMP), None) and trace.hovertemplate:
            trace.hovertemplate = trace.hovertemplate.replace("round %{customdata[0]}: ", "")  # no rounds at init
    _dodge(fig, [method_name(m) for m in dict.fromkeys(df["method"])])
    return fig


DODGE_PX = 9   # how far apart the methods' markers of one target are drawn, about (a marker is 7 px wide)


def _dodge(fig: go.Figure, methods: list[str]) -> None:
    """Every method of a target sits at the same fraction of weights, so their markers would cover each other:
    draw each method's points (line, controls and band) at its x times a constant factor, the methods spread
    evenly around the true x, about DODGE_PX apart on the log axis (where another method has a point too: IMP's
    dense round stays at 100 %). The ticks stay at the true fractions and
    the hover says the true value and that the point is drawn shifted. The dense level is not moved."""
    if len(methods) < 2:
        return
    xs = [x for t in fig.data if t.mode == "lines+markers" for x in t.x if x and x > 0]
    if not xs:
        return
    decades = max(math.log10(max(xs) / min(xs)), 0.5) + 0.2          # about the axis' span
    step = decades * DODGE_PX / FULL_WIDTH                             # in decades
    factor = {m: 10 ** (step * (i - (len(methods) - 1) / 2)) for i, m in enumerate(methods)}
    shared: dict[float, set[str]] = {}  # x → the methods with a point there; a point alone there stays put
    for t in fig.data:
        if t.mode == "lines+markers" and t.legendgroup in factor:
            for x in t.x:
                shared.setdefault(round(float(x), 6), set()).add(t.legendgroup)
    for trace in fig.data:
        f = factor.get(trace.legendgroup)
        if f is None or not (trace.mode == "lines+markers" or trace.fill):
            continue
        moved = [len(shared.get(round(float(x), 6), ())) > 1 for x in trace.x]
        trace.x = tuple(x * f if m else x for x, m in zip(trace.x, moved))
        if trace.hovertemplate and trace.customdata is not None:  # the note on the points moved only
            note = f"<br><i>drawn shifted ×{f:.3f} on x, so the methods' markers do not overlap</i>"
            rows = [list(r) for r in trace.customdata]
            slot = len(rows[0])
            trace.customdata = [r + [note if m else ""] for r, m in zip(rows, moved)]
            trace.hovertemplate = trace.hovertemplate.replace("<extra>", f"%{{customdata[{slot}]}}<extra>")


def table(points: pd.DataFrame, metric: str = "test_accuracy") -> pd.DataFrame:
    """One row per (target, method): weights remaining and the mean of `metric` over trials for the method
    and each control, with the trials' range when there are several ('92.1 % (91.8–92.4)')."""
    rows = []
    variants = [v for v in VARIANTS if v in set(points["variant"])]
    for (target, method), g in points.groupby(["target", "method"], sort=False):
        row = {"target": pct(target), "method": method_name(method), "weights remaining": pct(g["weights_remaining"].mean()),
               "trials": int(g["trial"].nunique())}
        for v in variants:
            vals = g.loc[g["variant"] == v, metric].dropna()
            row[VARIANTS[v].short if v != TICKET else "pruned net"] = _mean_range(vals)
        rows.append(row)
    return pd.DataFrame(rows)


def _mean_range(vals: pd.Series) -> str:
    if vals.empty:
        return ""
    if len(vals) == 1:
        return pct(vals.iloc[0])
    return f"{pct(vals.mean())} ({100 * vals.min():.1f}–{100 * vals.max():.1f})"


def _means(points: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean of `metric` over trials, indexed by (target, method), one column per variant."""
    return points.pivot_table(index=["target", "method"], columns="variant", values=metric, aggfunc="mean")


def summary(points: pd.DataFrame, metric: str = "test_accuracy") -> list[str]:
    """Plain sentences of what this experiment shows, from its numbers: IMP against the best at-init method
    and against random pruning at each target, the at-init methods against random pruning, and what the
    controls (shuffle, reinit, inverted) do to the at-init methods and to IMP."""
    if points.empty:
        return ["No results yet: the sentences appear as the cells finish."]
    m = _means(points, metric)
    targets = sorted(set(m.index.get_level_values(0)), reverse=True)
    at_init = [x for x in dict.fromkeys(points["method"]) if x != IMP]
    scored = [x for x in at_init if x != "random"]   # random pruning is the baseline, not a contender
    out: list[str] = []

    def mean(t, method, variant=TICKET) -> float:
        try:
            return float(m.loc[(t, method), variant])
        except KeyError:
            return math.nan

    # 1. IMP against the at-init methods, target by target
    beats, compared = 0, 0
    for t in targets:
        imp = mean(t, IMP)
        best = max(((mean(t, x), x) for x in at_init if not math.isnan(mean(t, x))), default=None)
        if math.isnan(imp) or best is None:
            continue
        compared += 1
        where = pct(float(points.loc[points["target"] == t, "weights_remaining"].mean()))
        gap = imp - best[0]
        beats += gap > 0
        verb = (f"{_points(gap)} above" if gap >= CLEARLY else f"{_points(-gap)} below" if gap <= -CLEARLY
                else "about level with")
        out.append(f"At {where} of weights, IMP reaches {pct(imp)}, {verb} the best method pruned at init, "
                   f"{method_name(best[1])} ({pct(best[0])}).")
    if compared:
        out.append(f"IMP beats every at-init method at {beats} of {compared} target{'s' if compared > 1 else ''}"
                   + (" — as Frankle et al. 2021 found." if beats == compared else
                      "; Frankle et al. 2021 found it ahead everywhere, so this run does not fully show that." if beats
                      else "; Frankle et al. 2021 found it ahead everywhere, and this run does not show that."))

    # 2. the at-init methods against random pruning
    if "random" in at_init and scored:
        pairs = [(x, t) for x in scored for t in targets if not math.isnan(mean(t, x)) and not math.isnan(mean(t, "random"))]
        ahead = [(x, t) for x, t in pairs if mean(t, x) - mean(t, "random") >= CLEARLY]
        behind = [(x, t) for x, t in pairs if mean(t, "random") - mean(t, x) >= CLEARLY]
        if pairs:
            out.append(f"Against random pruning at the same sparsity, the scored at-init methods are clearly ahead "
                       f"(by a point or more) in {len(ahead)} of {len(pairs)} comparisons and clearly behind in "
                       f"{len(behind)}" + (f" ({', '.join(sorted({method_name(x) for x, _ in behind}))})" if behind else "")
                       + ".")

    # 3. the controls: what shuffling and reinitialising do to the at-init methods and to IMP
    for control, words in (("random", "Shuffling the mask within each layer"), ("reinit", "Reinitialising the weights")):
        if control not in m.columns:
            continue
        init_drop = [mean(t, x) - mean(t, x, control) for x in scored for t in targets]
        init_drop = [d for d in init_drop if not math.isnan(d)]
        imp_drop = [d for d in (mean(t, IMP) - mean(t, IMP, control) for t in targets) if not math.isnan(d)]
        if not init_drop and not imp_drop:
            continue
        parts = []
        if init_drop:
            parts.append(f"costs the at-init methods {_signed(np.mean(init_drop))} on average "
                         f"(largest loss {_points(max(init_drop))})" if max(init_drop) > 0 else
                         f"costs the at-init methods {_signed(np.mean(init_drop))} on average")
        if imp_drop:
            parts.append(f"costs IMP {_signed(np.mean(imp_drop))}")
        line = f"{words} " + " and ".join(parts) + "."
        if init_drop and imp_drop:
            a, b = abs(float(np.mean(init_drop))), float(np.mean(imp_drop))
            if b >= CLEARLY and b > 2 * a:
                line += (" It hurts IMP far more than the at-init methods: their masks carry little beyond their "
                         "per-layer densities, while IMP's ticket does (the paper's finding).")
            elif b < CLEARLY:
                line += " Here it does not hurt IMP either, so this run does not separate the two (the paper finds IMP hurt)."
            else:
                line += " Here it hurts both about as much, unlike the paper, where only IMP is hurt."
        out.append(line)

    # 4. inverted scores
    if "inverted" in m.columns:
        drops = {x: [mean(t, x) - mean(t, x, "inverted") for t in targets] for x in (*scored, IMP) if x in m.index.get_level_values(1)}
        said = [f"{method_name(x)} {_signed(np.nanmean(d))}" for x, d in drops.items() if not all(math.isnan(v) for v in d)]
        if said:
            out.append("Inverting the scores (pruning the highest instead of the lowest) changes accuracy by, on "
                       "average: " + ", ".join(said) + " (a positive number is a loss: the scores pointed the right way).")
    trials = int(points["trial"].nunique())
    if trials < 3:
        out.append(f"With {trials} trial{'s' if trials > 1 else ''}, differences under about a point may be noise.")
    return out


def _points(diff: float) -> str:
    return f"{100 * diff:.1f} points"


def _signed(diff: float) -> str:
    """A loss as a positive number of points, a gain with a minus sign and said so."""
    d = 100 * float(diff)
    return f"{d:.1f} points" if d >= 0 else f"−{abs(d):.1f} points (a gain)"


__all__ = ["figure", "table", "summary", "method_name"]
