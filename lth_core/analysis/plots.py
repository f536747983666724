"""Plot builders for accuracy, early stopping and learning curves: store tables in, Plotly figures out.

Inputs have the run store's columns (`lth_core.engine.results.ROUND_COLUMNS`, `CURVE_COLUMNS`); an optional
`run` column names the run of each row when several runs share one figure. Accuracies are fractions
in the data and percent on screen. Lines are the mean over trials. The bands of the plots against weights
remaining (and the error bars of the gap bars) are 95 % confidence intervals of that mean from 3 trials on and
the trials' own range (min–max) with 2 (`lth_core.analysis.statistics.round_bands`), named so in legend and
tooltip; one trial gives no interval, so no band is drawn (never one of width zero). The bands of learning
curves span the best and the worst trial at each iteration.
"""
from __future__ import annotations

from typing import Mapping, Union

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lth_core.analysis import statistics
from lth_core.engine import variants as registry
from lth_core.engine.variants import VARIANTS as REGISTRY
from lth_core.analysis.recommend import TOLERANCE_POINTS

from lth_core.analysis.statistics import percent_text

# the variants and their looks come from the registry (lth_core.engine.variants); "dense" is round 0's network.
# LABELS/SHORT are the names with reset init; `label_of`/`short_of` name the ticket for its run's reset mode
VARIANTS = tuple(REGISTRY)
DENSE_COLOR = "#555555"
COLORS = {**{v.name: v.color for v in REGISTRY.values()}, "dense": DENSE_COLOR}
LABELS = {**{v.name: v.label for v in REGISTRY.values()}, "dense": "dense network"}
SHORT = {**{v.name: v.short for v in REGISTRY.values()}, "dense": "dense"}
# several runs in one figure: colour = run, line style = variant (dotted is the dense network's)
RUN_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999999")
VARIANT_DASH = {**{v.name: v.dash for v in REGISTRY.values()}, "dense": "dot"}
VARIANT_SYMBOL = {v.name: v.symbol for v in REGISTRY.values()}
_LINE_WORDS = {"solid": "solid", "dash": "dashed", "dashdot": "dash-dot", "longdash": "long dashes", "dot": "dotted",
               "longdashdot": "long dash-dot"}
_MARKER_GLYPHS = {"circle": "●", "square": "■", "diamond": "◆", "triangle-up": "▲", "x": "✕"}
Reset = Union[str, Mapping[str, str]]  # a run's reset mode, or one per run label when several runs share a figure
METRICS = {  # column → (axis title, shown as percent)
    "test_accuracy": ("test accuracy (%)", True),
    "early_stop_test_accuracy": ("test accuracy at early stopping (%)", True),
    "val_accuracy": ("validation accuracy (%)", True),
    "early_stop_iteration": ("early-stopping iteration", False),
    "val_loss": ("validation loss", False),
    "train_loss": ("training loss", False),
}
HEIGHT = 400
FULL_WIDTH, NARROW_WIDTH = 900, 350  # about how wide a full-width and a half-width chart are drawn (pixels)
TICK_CHAR_PX, TICK_LINE_PX = 7.0, 16.0  # about how wide a tick label's character and how tall its line are


def shown(percent: float) -> float:
    """A percentage as the app prints it (one decimal, like statistics.pct), so that differences
    computed for display agree with the numbers the reader sees."""
    return float(f"{percent:.1f}")


def _hover_y(metric: str, axis: str = "y") -> str:
    """How a value of `metric` reads in a tooltip: percentages with one decimal as everywhere in the
    app, iterations as whole numbers, losses with four significant digits."""
    if METRICS.get(metric, ("", False))[1]:
        return f"%{{{axis}:.1f}} %"
    return f"%{{{axis}:.0f}}" if metric == "early_stop_iteration" else f"%{{{axis}:.4g}}"


def _runs(df: pd.DataFrame) -> pd.DataFrame:
    return df if "run" in df.columns else df.assign(run="")


def line_style_text(variant: str) -> str:
    """How `variant`'s line looks when several runs share a figure, in words: 'dashed ■'."""
    return f"{_LINE_WORDS.get(VARIANT_DASH[variant], VARIANT_DASH[variant])} {_MARKER_GLYPHS.get(VARIANT_SYMBOL[variant], '')}"


def _reset(reset: Reset, run: str = "") -> str:
    return reset if isinstance(reset, str) else reset.get(run, "init")


def label_of(variant: str, reset: Reset = "init", run: str = "") -> str:
    """The legend label of `variant` ("dense" too) in a run with `reset`: the ticket says what it is."""
    return LABELS[variant] if variant == "dense" else registry.label(variant, _reset(reset, run))


def short_of(variant: str, reset: Reset = "init", run: str = "") -> str:
    return SHORT[variant] if variant == "dense" else registry.short(variant, _reset(reset, run))


def _name(variant: str, run: str, many: bool, reset: Reset = "init") -> str:
    return f"{run} · {short_of(variant, reset, run)}" if many and run else label_of(variant, reset, run)


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _scale(metric: str) -> float:
    return 100.0 if METRICS.get(metric, ("", False))[1] else 1.0


def trial_stats(rounds: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean of `metric` over trials per run, variant and round and the band around it (lo, hi, band:
    `statistics.round_bands`, the 95 % CI or with 2 trials their range; NaN with one trial), accuracies and
    weights remaining in percent."""
    df = _runs(rounds)
    s = _scale(metric)
    parts = [statistics.round_bands(own.dropna(subset=[metric]), metric).assign(run=run)
             for run, own in df.groupby("run", sort=False)]
    columns = ["run", "variant", "round", "weights_remaining", "mean", "lo", "hi", "trials", "band"]
    if not parts:
        return pd.DataFrame(columns=columns)
    out = pd.concat(parts, ignore_index=True).rename(columns={"low": "lo", "high": "hi"})
    out = out.assign(weights_remaining=out.weights_remaining * 100, mean=out["mean"] * s, lo=out.lo * s, hi=out.hi * s)
    return out[columns].sort_values(["run", "variant", "round"], kind="stable").reset_index(drop=True)


def has_interval(lo, hi) -> np.ndarray:
    """Where an interval can be drawn: both bounds known and apart (never a band of width zero)."""
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    return ~np.isnan(lo) & ~np.isnan(hi) & (hi > lo)


def _ci_texts(lo: np.ndarray, hi: np.ndarray, metric: str, bands=None) -> list[str]:
    """The band of each point for its tooltip ('<br>95 % CI 91.8–92.6 %', '<br>range of 2 trials 91.8–92.6 %');
    empty where there is none. `bands` names each one (default: the 95 % CI)."""
    unit = " %" if METRICS.get(metric, ("", False))[1] else ""
    digits = 1 if unit or metric != "early_stop_iteration" else 0
    bands = ["95 % CI"] * len(lo) if bands is None else list(bands)
    return [f"<br>{what} {a:.{digits}f}–{b:.{digits}f}{unit}" if ok else ""
            for a, b, ok, what in zip(lo, hi, has_interval(lo, hi), bands)]


def band_words(stats: pd.DataFrame) -> str:
    """What the shaded bands of a figure drawn from `trial_stats` are: 'range of 2 trials', '95 % CI', or
    both joined ('range of 2 trials / 95 % CI') when rounds differ; '' when no band is drawn."""
    drawn = stats[has_interval(stats["lo"], stats["hi"])] if not stats.empty else stats
    return " / ".join(dict.fromkeys(b for b in drawn.get("band", []) if b))


def _band(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, color: str, group: str, label: str | None = None,
          what: str = "95 % CI") -> go.Scatter:
    """An interval (`what`) as a filled polygon (drawn under its line, not in the legend)."""
    return go.Scatter(x=np.concatenate([x, x[::-1]]), y=np.concatenate([hi, lo[::-1]]), fill="toself", mode="lines",
                      fillcolor=_rgba(color, 0.18), line=dict(width=0), hoverinfo="skip", showlegend=False,
                      legendgroup=group, name=f"{label or group} {what}")


def _style(fig: go.Figure, title: str, x_title: str, y_title: str) -> go.Figure:
    # The legend sits at the very bottom of the figure (yref "container"): Plotly then reserves its height
    # before it makes room for the x tick labels and the axis title (automargin), so rotated ticks in a
    # half-width column push the plot up instead of running into the legend.
    fig.update_layout(title=dict(text=title, x=0, xanchor="left"), template="plotly_white", height=HEIGHT,
                      margin=dict(l=60, r=20, t=50, b=10), hovermode="closest",
                      legend=dict(orientation="h", yref="container", y=0, yanchor="bottom", xanchor="left", x=0))
    fig.update_xaxes(title_text=x_title, automargin=True)
    fig.update_yaxes(title_text=y_title, automargin=True)
    return fig


def _legend_height(groups: list[str], entries: int, width: int = 900) -> int:
    """About how tall a horizontal legend of titled groups (one column each, `entries` lines at most) is
    in a `width`-pixel figure, so the figure can grow by that much instead of squeezing the plot."""
    per_row = max(1, width // (40 + 7 * max(len(g) for g in groups)))
    return -(-len(groups) // per_row) * (19 * (entries + 1) + 12)


def readable_ticks(xs: list[float], width: float = FULL_WIDTH, span: tuple[float, float] | None = None
                   ) -> tuple[list[float], int]:
    """Which of the weights `xs` (percent, one per measured round) a log axis `width` pixels wide labels, and
    at what angle, so that no two labels overlap: every one of them, level, where they fit side by side;
    every one turned 45° where they fit so (turned labels need only a line's height between them); else a
    subset turned 45° that keeps the first and the last. `span` is the axis range (percent, high to low;
    default: the values' own, with Plotly's margin)."""
    xs = sorted({x for x in xs if x > 0}, reverse=True)
    if len(xs) < 2:
        return xs, 0
    top, bottom = span or (xs[0], xs[-1])
    decades = max(np.log10(top) - np.log10(bottom), 1e-9) * (1.0 if span else 1.12)
    px = max(width - 90, 100) / decades  # pixels a decade takes (the y axis title and ticks take about 90)
    gaps = -np.diff(np.log10(xs)) * px
    if gaps.min() >= max(len(percent_text(x)) for x in xs) * TICK_CHAR_PX + 8:
        return xs, 0
    need = TICK_LINE_PX * np.sqrt(2)  # 45°: neighbours sit a line's height apart across their slant
    kept = [xs[0]]
    for x in xs[1:-1]:
        if (np.log10(kept[-1]) - np.log10(x)) * px >= need:
            kept.append(x)
    while len(kept) > 1 and (np.log10(kept[-1]) - np.log10(xs[-1])) * px < need:
        kept.pop()  # the last (sparsest) round is always labelled: its neighbour gives way
    return kept + [xs[-1]], -45


def _weights_axis(fig: go.Figure, xs: list[float], width: float = FULL_WIDTH,
                  planned: list[float] | None = None) -> None:
    """Log x axis of weights remaining in percent, decreasing to the right as the paper draws it, with the
    measured rounds' weights labelled (`readable_ticks`: all of them, or a subset with the first and last)."""
    # one tick per distinct printed value, placed at the value itself (a tiny share stays on the log axis)
    by_text = {percent_text(x): x for x in sorted((x for x in xs if x > 0), reverse=True)}
    span = (100.0 * 10 ** 0.03, max(min(planned) * 100, 1e-3) * 10 ** -0.05) if planned else None
    ticks, angle = readable_ticks(list(by_text.values()), width, span)
    fig.update_xaxes(type="log", autorange="reversed", tickvals=ticks, ticktext=[percent_text(x) for x in ticks],
                     tickangle=angle, title_text="weights remaining, log scale (pruned →)")


def accuracy_vs_weights(rounds: pd.DataFrame, metric: str = "test_accuracy", title: str | None = None,
                        planned: list[float] | None = None, variants: tuple[str, ...] | list[str] = VARIANTS,
                        narrow: bool = False, reset: Reset = "init") -> go.Figure:
    """`metric` against weights remaining: one line per run and variant (mean over trials, band = its
    95 % confidence interval where there is one) and the dense network of round 0 as a dotted level. `variants` chooses the lines drawn (the
    dense level is always there). One run: colours are the variants. Several runs: colours are the runs
    and line styles the variants, with one dense level per distinct dense network (runs that share their
    round 0 share one line). `planned` (fractions) fixes the x axis to the whole planned run, so a live
    run's plot grows without rescaling. `narrow`: drawn in a half-width column, where the legend wraps onto
    more rows; the figure grows so the plot keeps room for its axis titles. `reset`: the run's reset mode
    (or one per run label), which names the ticket."""
    stats = trial_stats(rounds, metric)
    runs = list(dict.fromkeys(_runs(rounds)["run"]))
    many = len(runs) > 1
    fig = go.Figure()
    ticks: list[float] = [100 * p for p in planned or []]
    shaded = band_words(stats[stats.variant.isin([*variants, "ticket"])])  # the ticket's round 0 is the dense band
    for i, run in enumerate(runs):
        for variant in (v for v in VARIANTS if v in variants):
            s = stats[(stats.run == run) & (stats.variant == variant)]
            if variant != registry.TICKET:
                s = s[s["round"] > 0]
            if s.empty:
                continue
            x, name = s.weights_remaining.to_numpy(), _name(variant, run, many, reset)
            color = RUN_COLORS[i % len(RUN_COLORS)] if many else COLORS[variant]
            group = dict(legendgroup=run, legendgrouptitle_text=run, name=short_of(variant, reset, run)) if many else \
                dict(legendgroup=name, name=name)
            ok = has_interval(s.lo, s.hi)
            if ok.any():
                # a round whose trials agree pinches the band to its line; left out, the polygon would join
                # its neighbours' bounds there and could pass beside the line
                known = ~np.isnan(s.lo.to_numpy(float)) & ~np.isnan(s.hi.to_numpy(float))
                band = _band(x[known], s.lo.to_numpy()[known], s.hi.to_numpy()[known], color, group["legendgroup"], name,
                             what=band_words(s))
                if not many:  # one legend entry says what every band is (a click hides them all)
                    first = not any(t.legendgroup == "bands" for t in fig.data)
                    band.update(legendgroup="bands", showlegend=first, name=f"shaded: {shaded}", legendrank=2000)
                fig.add_trace(band)
            fig.add_trace(go.Scatter(
                x=x, y=s["mean"], mode="lines+markers", **group,
                line=dict(color=color, dash=VARIANT_DASH[variant] if many else "solid", width=2.5),
                marker=dict(color=color, size=7, symbol=VARIANT_SYMBOL[variant] if many else "circle"),
                customdata=np.column_stack([s["round"], s["trials"], [percent_text(v) for v in x],
                                            _ci_texts(s.lo.to_numpy(), s.hi.to_numpy(), metric, s["band"])]),
                hovertemplate=f"{name}<br>round %{{customdata[0]}}: %{{customdata[2]}} of weights<br>"
                              f"{METRICS[metric][0]}: {_hover_y(metric)} (mean of %{{customdata[1]}})"
                              "%{customdata[3]}<extra></extra>"))
            ticks += list(x)
    _dense_levels(fig, stats, runs, metric, min(ticks or [100.0]))
    _style(fig, title or f"{METRICS[metric][0]} as weights are pruned", "", METRICS[metric][0])
    if many:  # one legend column per run (its variants under its name), all below the plot and in view
        groups = list(dict.fromkeys(t.legendgroup for t in fig.data if t.showlegend is not False))
        entries = max(sum(t.legendgroup == g and t.showlegend is not False for t in fig.data) for g in groups)
        fig.update_layout(height=HEIGHT + _legend_height(groups, entries, 450 if narrow else 900), legend_font_size=11,
                          legend_traceorder="grouped")
    elif narrow:
        fig.update_layout(height=HEIGHT + 80)
    _weights_axis(fig, ticks or [100.0], NARROW_WIDTH if narrow else FULL_WIDTH, planned)
    if metric == "early_stop_iteration":  # counts from the start of training, not a band around one value
        fig.update_yaxes(rangemode="tozero")
    if planned:
        lo = np.log10(max(min(planned) * 100, 1e-3))
        fig.update_xaxes(autorange=False, range=[2 + 0.03, lo - 0.05])  # reversed by listing high → low
    return fig


def _dense_levels(fig: go.Figure, stats: pd.DataFrame, runs: list[str], metric: str, lo_x: float) -> None:
    """The dense network (round 0) as a dotted level across the plot: one line per distinct dense result,
    so runs trained from the same dense network (same data, architecture and seed), or whose dense
    networks score the same, draw it once (its tooltip names them)."""
    dense = stats[stats["round"] == 0]
    levels: dict[float, list[str]] = {}
    for run in runs:
        level = dense[dense.run == run]["mean"]
        if not level.empty:
            levels.setdefault(round(float(level.iloc[0]), 6), []).append(run)
    many = len(runs) > 1
    for level, owners in levels.items():
        if not many:
            group = dict(name=LABELS["dense"], legendgroup=LABELS["dense"])
            color = COLORS["dense"]
        elif len(owners) == 1:
            group = dict(name=SHORT["dense"], legendgroup=owners[0], legendgrouptitle_text=owners[0])
            color = RUN_COLORS[runs.index(owners[0]) % len(RUN_COLORS)]
        else:
            group = dict(name=f"{len(owners)} runs, same level", legendgroup=LABELS["dense"],
                         legendgrouptitle_text=LABELS["dense"])
            color = COLORS["dense"]
        who = "<br>".join(owners) if many else ""
        fig.add_trace(go.Scatter(x=[100.0, lo_x], y=[level, level], mode="lines", **group,
                                 line=dict(color=color, dash=VARIANT_DASH["dense"], width=1.5),
                                 hovertemplate=f"{LABELS['dense']}: {_hover_y(metric)}<br>{who}<extra></extra>"))


def _curve_stats(curves: pd.DataFrame, metric: str) -> pd.DataFrame:
    g = curves.groupby("iteration", sort=True)[metric]
    s = _scale(metric)
    return pd.DataFrame({"mean": g.mean() * s, "lo": g.min() * s, "hi": g.max() * s}).reset_index()


def _curve_traces(fig: go.Figure, curves: pd.DataFrame, metric: str, name: str, color: str, dash: str = "solid",
                  row: int | None = None, col: int | None = None, legend: bool = True) -> None:
    s = _curve_stats(curves, metric)
    if s.empty:
        return
    if (s.hi - s.lo).max() > 0:
        fig.add_trace(_band(s.iteration.to_numpy(), s.lo.to_numpy(), s.hi.to_numpy(), color, name,
                            what="range over trials"), row=row, col=col)
    fig.add_trace(go.Scatter(x=s.iteration, y=s["mean"], mode="lines" if len(s) > 2 else "lines+markers", name=name, legendgroup=name, showlegend=legend,
                             line=dict(color=color, dash=dash, width=2), marker=dict(color=color),
                             hovertemplate=f"{name}<br>iteration %{{x}}: {_hover_y(metric)}<extra></extra>"),
                  row=row, col=col)


def curves_by_variant(curves: pd.DataFrame, round: int, metric: str = "test_accuracy",
                      title: str | None = None, reset: str = "init") -> go.Figure:
    """Learning curves of every variant trained in `round`, with the dense round 0 as a dotted reference."""
    fig = go.Figure()
    _variant_curves(fig, curves, round, metric, reset=reset)
    return _style(fig, title or f"{METRICS[metric][0]} during training, round {round}", "training iteration",
                  METRICS[metric][0])


def _variant_curves(fig: go.Figure, curves: pd.DataFrame, round: int, metric: str,
                    row: int | None = None, col: int | None = None, legend: bool = True, reset: str = "init") -> None:
    if round != 0:
        dense = curves[curves["round"] == 0]
        _curve_traces(fig, dense, metric, LABELS["dense"], COLORS["dense"], "dot", row, col, legend)
    this = curves[curves["round"] == round]
    for variant in VARIANTS:
        _curve_traces(fig, this[this.variant == variant], metric,
                      LABELS["dense"] if round == 0 else label_of(variant, reset),
                      COLORS["dense"] if round == 0 else COLORS[variant], "solid", row, col, legend)


def compare_curves(curves: pd.DataFrame, round: int, title: str | None = None, reset: str = "init") -> go.Figure:
    """Validation loss and test accuracy side by side for every variant of `round`, dense dotted."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=("validation loss (lower is better)", "test accuracy % (higher is better)"))
    _variant_curves(fig, curves, round, "val_loss", 1, 1, legend=True, reset=reset)
    _variant_curves(fig, curves, round, "test_accuracy", 1, 2, legend=False, reset=reset)
    _style(fig, title or f"Learning curves in round {round}", "", "")
    fig.update_xaxes(title_text="training iteration")
    fig.update_yaxes(title_text=METRICS["val_loss"][0], row=1, col=1)
    fig.update_yaxes(title_text=METRICS["test_accuracy"][0], row=1, col=2)
    fig.update_annotations(font_size=13)
    fig.update_layout(margin=dict(t=80))
    return fig


def curves_by_round(curves: pd.DataFrame, rounds: pd.DataFrame, variant: str = registry.TICKET,
                    metric: str = "test_accuracy", include: list[int] | None = None, reset: str = "init") -> go.Figure:
    """One learning curve per round for one variant, darker = sparser; legend names the weights left."""
    remaining = rounds.groupby("round")["weights_remaining"].mean()
    chosen = sorted(set(curves["round"]) if include is None else include)
    fig = go.Figure()
    steps = max(1, len(chosen) - 1)
    for k, rnd in enumerate(chosen):
        part = curves[(curves["round"] == rnd) & (curves.variant == (registry.TICKET if rnd == 0 else variant))]
        if rnd == 0:
            name, color = "round 0 · dense (100 %)", COLORS["dense"]
        else:
            name = f"round {rnd} · {percent_text(100 * float(remaining.get(rnd, np.nan)))}"
            color = _mix(COLORS[variant], 0.55 * (1 - k / steps))
        _curve_traces(fig, part, metric, name, color, "dot" if rnd == 0 else "solid")
    return _style(fig, f"{label_of(variant, reset)}: {METRICS[metric][0]} during training, round by round",
                  "training iteration", METRICS[metric][0])


def _mix(hex_color: str, white: float) -> str:
    """`hex_color` blended with `white` parts of white (0 = unchanged)."""
    rgb = [int(hex_color[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (255 - c) * white):02x}" for c in rgb)


def accuracy_gap_by_round(rounds: pd.DataFrame, metric: str = "test_accuracy",
                          tolerance: float = TOLERANCE_POINTS, reset: str = "init") -> go.Figure:
    """Per round, each variant's accuracy minus the dense network's, in percentage points (bars from 0 =
    as good as dense), over a shaded band of `tolerance` points below 0 (still matching dense); error bars
    are the 95 % confidence interval of the mean over trials (none with one trial); hover shows the accuracy."""
    stats = trial_stats(rounds, metric)
    dense = stats[stats["round"] == 0]["mean"]
    base = shown(float(dense.iloc[0])) if not dense.empty else np.nan
    pruned = stats[stats["round"] > 0]
    order = pruned.drop_duplicates("round").sort_values("round")
    labels = {r: f"round {r}<br>{percent_text(w)}" for r, w in zip(order["round"], order.weights_remaining)}
    fig = go.Figure()
    for variant in VARIANTS:
        s = pruned[pruned.variant == variant]
        if s.empty:
            continue
        gap = s["mean"].map(shown) - base  # as printed, so 78.1 % against 77.2 % reads +0.9
        fig.add_trace(go.Bar(
            x=[labels[r] for r in s["round"]], y=gap, name=label_of(variant, reset), marker_color=COLORS[variant],
            error_y=dict(type="data", symmetric=False, array=s.hi - s["mean"], arrayminus=s["mean"] - s.lo,
                         visible=bool(has_interval(s.lo, s.hi).any())),
            customdata=np.column_stack([s["mean"], s.trials, _ci_texts(s.lo.to_numpy(), s.hi.to_numpy(), metric,
                                                                       s["band"])]),
            hovertemplate=f"{label_of(variant, reset)}<br>%{{x}}<br>%{{customdata[0]:.1f}} % "
                          f"(%{{y:+.1f}} points vs dense)%{{customdata[2]}}<extra></extra>"))
    fig.add_hline(y=0, line=dict(color=COLORS["dense"], dash="dot"))
    # the tolerance within which a ticket still "matches" dense, so a small dip reads as a match; named in
    # the legend, not by a label inside the plot, which sat on the first round's bars
    fig.add_hrect(y0=-tolerance, y1=0, fillcolor=COLORS["dense"], opacity=0.12, line_width=0, layer="below",
                  showlegend=True, name=f"within {tolerance:g} pt of dense (tolerance)", legendrank=2000)
    fig.update_layout(barmode="group")
    _style(fig, "Accuracy compared with the dense network, round by round", "round · weights remaining",
           f"points above / below dense ({base:.1f} %)")
    return fig


def paired_gap_plot(gaps: pd.DataFrame, reset: str = "init") -> go.Figure:
    """`statistics.paired_gaps` drawn: ticket − each control (points) against weights remaining, with its
    interval as error bars (`statistics.interval`: the 95 % CI from 3 trials, the two trials' gaps with 2, none
    where fewer than 2 trials have both) and a zero line:
    above zero the ticket is better."""
    fig = go.Figure()
    xs: list[float] = []
    for control in pd.unique(gaps["control"]):
        g = gaps[(gaps["control"] == control) & (gaps["trials"] > 0)].sort_values("round")
        if g.empty:
            continue
        x = 100 * g["weights_remaining"].to_numpy(float)
        ok = has_interval(g["low"], g["high"])
        color = COLORS.get(control, DENSE_COLOR)
        name = f"{short_of(registry.TICKET, reset)} − {SHORT.get(control, control)}"
        fig.add_trace(go.Scatter(
            x=x, y=g["mean"], mode="lines+markers", name=name, line=dict(color=color, width=2),
            marker=dict(color=color, size=8),
            error_y=dict(type="data", symmetric=False, visible=bool(ok.any()),
                         array=np.where(ok, g["high"] - g["mean"], np.nan),
                         arrayminus=np.where(ok, g["mean"] - g["low"], np.nan)),
            customdata=np.column_stack([g["round"], [percent_text(v) for v in x], g["trials"], g["verdict"]]),
            hovertemplate=f"{name}<br>round %{{customdata[0]}}: %{{customdata[1]}} of weights<br>"
                          "%{y:+.1f} points (%{customdata[2]} trials): %{customdata[3]}<extra></extra>"))
        xs += list(x)
    fig.add_hline(y=0, line=dict(color=COLORS["dense"], dash="dot"), showlegend=True, name="0: no difference",
                  legendrank=2000)  # in the legend: a label in the plot sat on the first round's error bars
    who = short_of(registry.TICKET, reset)
    _style(fig, f"{who[0].upper()}{who[1:]} minus each control, paired within each trial", "", "test accuracy gap (points)")
    _weights_axis(fig, xs or [100.0])
    return fig
