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


# the controls the summary reads, in its words: (what is done, the network it is done to, in words)
CONTROL_WORDS = {"random": ("Shuffling the mask within each layer", "shuffled", "with the mask as found"),
                 "reinit": ("Reinitialising the weights", "reinitialised", "with the original initial weights")}


def summary(points: pd.DataFrame, metric: str = "test_accuracy") -> list[str]:
    """Plain sentences of what this experiment shows, from its numbers, one function each: IMP against the best
    at-init method at each target, IMP's record over the targets, the at-init methods against random pruning,
    what each control (shuffle, reinit) and inverting the scores do, and a word on noise. Every difference is said
    as 'N points higher/lower' (or above/below): which is better and by how much, never a signed number."""
    if points.empty:
        return ["No results yet: the sentences appear as the cells finish."]
    m = _means(points, metric)
    targets = sorted(set(m.index.get_level_values(0)), reverse=True)
    at_init = [x for x in dict.fromkeys(points["method"]) if x != IMP]
    out = [imp_against_best_sentence(m, points, t, at_init) for t in targets]
    out += [imp_record_sentence(m, targets, at_init, points), random_baseline_sentence(m, targets, at_init, points)]
    out += [control_sentence(m, points, targets, at_init, c) for c in CONTROL_WORDS]
    out += [inverted_sentence(m, targets, at_init), noise_sentence(points)]
    return [line for line in out if line]


def _mean(m: pd.DataFrame, target: float, method: str, variant: str = TICKET) -> float:
    try:
        return float(m.loc[(target, method), variant])
    except KeyError:
        return math.nan


def _scored(at_init: list[str]) -> list[str]:
    return [x for x in at_init if x != "random"]   # random pruning is the baseline, not a contender


def _best_at_init(m: pd.DataFrame, target: float, at_init: list[str]) -> tuple[float, str] | None:
    return max(((_mean(m, target, x), x) for x in at_init if not math.isnan(_mean(m, target, x))), default=None)


def _best_names(m: pd.DataFrame, target: float, at_init: list[str]) -> tuple[list[str], str]:
    """The at-init methods with the best mean at `target` (more than one on a tie), as names and in words:
    'SNIP', 'SNIP and GraSP'."""
    best = _best_at_init(m, target, at_init)
    names = [method_name(x) for x in at_init if best is not None and _mean(m, target, x) == best[0]]
    return names, _and(names)


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _weights_at(points: pd.DataFrame, target: float) -> str:
    return pct(float(points.loc[points["target"] == target, "weights_remaining"].mean()))


def imp_against_best_sentence(m: pd.DataFrame, points: pd.DataFrame, target: float, at_init: list[str]) -> str:
    """'At 21.0 % of weights, IMP reaches 93.1 %, 3.0 points above the best method pruned at init, SNIP (90.1 %).'"""
    imp, best = _mean(m, target, IMP), _best_at_init(m, target, at_init)
    if math.isnan(imp) or best is None:
        return ""
    gap = imp - best[0]
    verb = (f"{_points(gap)} above" if gap >= CLEARLY else f"{_points(-gap)} below" if gap <= -CLEARLY
            else "about level with")
    names, said = _best_names(m, target, at_init)
    methods = "the best method pruned at init," if len(names) == 1 else "the best methods pruned at init (a tie),"
    return f"At {_weights_at(points, target)} of weights, IMP reaches {pct(imp)}, {verb} {methods} {said} ({pct(best[0])})."


def imp_record_sentence(m: pd.DataFrame, targets: list[float], at_init: list[str],
                        points: pd.DataFrame | None = None) -> str:
    """At which targets IMP scores above every at-init method, against the paper's finding; where it does not,
    which method scores above it (or the same). `points` name a target by its share of weights (else the target)."""
    compared = [t for t in targets if _best_at_init(m, t, at_init) is not None and not math.isnan(_mean(m, t, IMP))]
    if not compared:
        return ""
    where = {t: (_weights_at(points, t) if points is not None else pct(t)) for t in compared}
    misses = [t for t in compared if _mean(m, t, IMP) <= _best_at_init(m, t, at_init)[0]]
    beats, n = len(compared) - len(misses), len(compared)

    def beaten(t: float) -> tuple[str, str]:  # ('SNIP scores', 'above'), ('SNIP and GraSP score', 'the same as')
        names, said = _best_names(m, t, at_init)
        return f"{said} score{'' if len(names) > 1 else 's'}", "above" if _mean(m, t, IMP) < _best_at_init(m, t, at_init)[0] else "the same as"

    paper = "Frankle et al. 2021 found IMP ahead everywhere"
    if not misses:
        if n == 1:
            return f"At the one target ({where[compared[0]]} of weights), IMP scores above every at-init method — as Frankle et al. 2021 found."
        return f"IMP scores above every at-init method at {'both' if n == 2 else f'all {n}'} targets — as Frankle et al. 2021 found."
    if n == 1:
        who, how = beaten(compared[0])
        return f"At the one target ({where[compared[0]]} of weights), {who} {how} IMP; {paper}, and this run does not show that."
    grouped: dict[tuple[str, str], list[str]] = {}  # the same methods, the same way, at several targets: said once
    for t in misses:
        grouped.setdefault(beaten(t), []).append(where[t])
    at = "; ".join(f"{who} {how} it at {_and(shares)} of weights" for (who, how), shares in grouped.items())
    if not beats:
        return f"IMP is not above every at-init method at any of the {n} targets: {at}. {paper}; this run does not show that."
    return (f"IMP scores above every at-init method at {beats} of the {n} targets; {at}. {paper}, so this run does "
            "not fully show that.")


def random_baseline_sentence(m: pd.DataFrame, targets: list[float], at_init: list[str],
                             points: pd.DataFrame | None = None) -> str:
    """How often the scored at-init methods are clearly above or below random pruning at the same sparsity; with
    one comparison, by how much."""
    scored = _scored(at_init)
    if "random" not in at_init or not scored:
        return ""
    pairs = [(x, t) for x in scored for t in targets
             if not math.isnan(_mean(m, t, x)) and not math.isnan(_mean(m, t, "random"))]
    if not pairs:
        return ""
    if len(pairs) == 1:
        x, t = pairs[0]
        at = f" ({_weights_at(points, t) if points is not None else pct(t)} of weights)"
        diff = _mean(m, t, x) - _mean(m, t, "random")
        return f"{method_name(x)} scores {_higher_lower(diff)} {_than(diff)} random pruning at the same sparsity{at}."
    ahead = [(x, t) for x, t in pairs if _mean(m, t, x) - _mean(m, t, "random") >= CLEARLY]
    behind = [(x, t) for x, t in pairs if _mean(m, t, "random") - _mean(m, t, x) >= CLEARLY]
    level = len(pairs) - len(ahead) - len(behind)

    def share(k: int) -> str:
        return k == len(pairs) and ("both" if k == 2 else f"all {k}") or f"{k}"

    methods = sorted({method_name(x) for x, _ in pairs})
    named = f" ({', '.join(sorted({method_name(x) for x, _ in behind}))})" if len(methods) > 1 else ""
    parts = ([f"clearly ahead (by a point or more) in {share(len(ahead))}"] if ahead else []) + (
        [f"clearly behind in {share(len(behind))}{named}"] if behind else []) + (
        [f"within a point of it in {share(level)}"] if level else [])
    if len(methods) == 1:
        return f"Against random pruning at the same sparsity, at {len(pairs)} targets, {methods[0]} is {_and(parts)}."
    return (f"Against random pruning at the same sparsity, over {len(pairs)} comparisons (each scored method at each "
            f"target), the scored at-init methods are {_and(parts)}.")


def control_sentence(m: pd.DataFrame, points: pd.DataFrame, targets: list[float], at_init: list[str],
                     control: str) -> str:
    """What a control (CONTROL_WORDS) does to the at-init methods and to IMP, as 'N points higher/lower' than the
    network as pruned, with the worst case named; then how that compares with the paper's finding. E.g.
    'Shuffling the mask within each layer: the at-init methods score 0.1 points lower shuffled than with the mask
    as found, on average (at worst SNIP at 21.0 %: 0.1 points lower); IMP's ticket scores 6.0 points lower. It
    hurts IMP far more …'"""
    if control not in m.columns:
        return ""
    doing, done, reference = CONTROL_WORDS[control]
    # each change is the control's accuracy minus the pruned network's: positive when the control scores higher
    init_change = [(_mean(m, t, x, control) - _mean(m, t, x), x, t) for x in _scored(at_init) for t in targets]
    init_change = [c for c in init_change if not math.isnan(c[0])]
    imp_change = [d for d in (_mean(m, t, IMP, control) - _mean(m, t, IMP) for t in targets) if not math.isnan(d)]
    if not init_change and not imp_change:
        return ""
    parts = []
    if init_change:
        average = float(np.mean([c[0] for c in init_change]))
        part = f"the at-init methods score {_higher_lower(average)} {done} {_than(average)} {reference}, on average"
        worst = min(init_change)
        if len(init_change) > 1 and worst[0] < 0:
            part += f" (at worst {method_name(worst[1])} at {_weights_at(points, worst[2])}: {_higher_lower(worst[0])})"
        parts.append(part)
    if imp_change:
        imp_mean = float(np.mean(imp_change))
        parts.append(f"IMP's ticket scores {_higher_lower(imp_mean)}" if init_change else
                     f"IMP's ticket scores {_higher_lower(imp_mean)} {done} {_than(imp_mean)} {reference}")
    line = f"{doing}: " + "; ".join(parts) + "."
    if init_change and imp_change:
        a, b = abs(float(np.mean([c[0] for c in init_change]))), -float(np.mean(imp_change))  # b: IMP's loss
        if b >= CLEARLY and b > 2 * a:
            line += (" It hurts IMP far more than the at-init methods: their masks carry little beyond their "
                     "per-layer densities, while IMP's ticket does (the paper's finding).")
        elif b < CLEARLY:
            line += " Here it does not hurt IMP, so this run does not separate the two (the paper finds IMP hurt)."
        else:
            line += " Here it hurts both about as much, unlike the paper, where only IMP is hurt."
    return line


def inverted_sentence(m: pd.DataFrame, targets: list[float], at_init: list[str]) -> str:
    """What inverting the scores does to each method, as 'N points lower/higher' than its scores the right way up:
    lower means the scores pointed the right way."""
    if "inverted" not in m.columns:
        return ""
    methods = set(m.index.get_level_values(1))
    said = []
    for x in (*_scored(at_init), IMP):
        changes = [_mean(m, t, x, "inverted") - _mean(m, t, x) for t in targets] if x in methods else []
        changes = [c for c in changes if not math.isnan(c)]
        if changes:
            said.append(f"{method_name(x)} {_higher_lower(float(np.mean(changes)))}")
    if not said:
        return ""
    return ("Inverting the scores (pruning the highest-scored weights instead of the lowest), on average, against the "
            "scores the right way up: " + ", ".join(said) + "; lower means the scores pointed the right way.")


def noise_sentence(points: pd.DataFrame) -> str:
    trials = int(points["trial"].nunique())
    return f"With {trials} trial{'s' if trials > 1 else ''}, differences under about a point may be noise." \
        if trials < 3 else ""


def _points(diff: float) -> str:
    return f"{100 * diff:.1f} points"


def _than(diff: float) -> str:
    """'than' after '4.9 points higher', 'as' after 'about the same'."""
    return "as" if round(100 * abs(diff), 1) == 0 else "than"


def _higher_lower(diff: float) -> str:
    """'4.9 points higher', '5.6 points lower', or 'about the same (under 0.1 points apart)' for a fraction."""
    if round(100 * abs(diff), 1) == 0:
        return "about the same (under 0.1 points apart)"
    return f"{_points(abs(diff))} {'higher' if diff > 0 else 'lower'}"


__all__ = ["figure", "table", "summary", "method_name", "imp_against_best_sentence", "imp_record_sentence",
           "random_baseline_sentence", "control_sentence", "inverted_sentence", "noise_sentence"]
