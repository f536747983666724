"""The instability analysis (engine/stability.py) as figures, a table and sentences, for the app and the CLI.

Paths in (`PathResult`s of one analysis: one per k and network), Plotly figures and plain text out. Errors are
fractions in the data and percent on screen.
"""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from lth_core.analysis.plots import COLORS, DENSE_COLOR, VARIANT_DASH, VARIANT_SYMBOL, _style, label_of, short_of
from lth_core.engine.stability import DENSE, STABLE_BELOW, PathResult, stable_from

K_COLORS = ("#440154", "#3b528b", "#21918c", "#5ec962", "#b5de2b", "#fde725")  # viridis: early k dark, late k light


def _label(variant: str, reset: str) -> str:
    return "dense network" if variant == DENSE else label_of(variant, reset)


def barrier_table(paths: list[PathResult], reset: str = "init") -> pd.DataFrame:
    """One row per (k, network): k, network, barrier, error at the ends (mean of the two copies), largest error
    on the path, whether stable (all in percent but `stable`)."""
    rows = [{"k": p.k, "network": _label(p.variant, reset), "variant": p.variant,
             "barrier": 100 * p.barrier, "end_error": 100 * p.end_error, "max_error": 100 * max(p.errors),
             "stable": p.stable} for p in paths]
    return pd.DataFrame(rows, columns=["k", "network", "variant", "barrier", "end_error", "max_error", "stable"])


def format_table(paths: list[PathResult], reset: str = "init") -> str:
    """The CLI's table: a row per k, per network its barrier and its copies' test error, ✓ where stable."""
    table = barrier_table(paths, reset)
    if table.empty:
        return "no k analysed yet"
    table["network"] = [short_of(v, reset) for v in table["variant"]]
    names = list(dict.fromkeys(table["network"]))
    head = f"{'k':>6}  " + "  ".join(f"{n[:24]:>24}" for n in names)
    lines = [head, f"{'':>6}  " + "  ".join(f"{'barrier · error of ends':>24}" for _ in names)]
    for k, rows in table.groupby("k", sort=True):
        cells = {r.network: f"{r.barrier:5.1f} %{' ✓' if r.stable else '  '} · {r.end_error:5.1f} %" for r in rows.itertuples()}
        lines.append(f"{k:>6}  " + "  ".join(f"{cells.get(n, ''):>24}" for n in names))
    lines.append(f"barrier: the largest test error on the straight line between the two copies minus the mean of its "
                 f"ends; ✓ stable (under {100 * STABLE_BELOW:.0f} %)")
    return "\n".join(lines)


def path_figure(paths: list[PathResult], variant: str = DENSE, title: str = "", reset: str = "init") -> go.Figure:
    """Test error along the path between the two trained copies, one line per k (dark: early, light: late)."""
    mine = sorted((p for p in paths if p.variant == variant), key=lambda p: p.k)
    fig = go.Figure()
    for i, p in enumerate(mine):
        color = K_COLORS[round(i * (len(K_COLORS) - 1) / max(1, len(mine) - 1))]
        fig.add_trace(go.Scatter(
            x=p.alphas, y=[100 * e for e in p.errors], mode="lines+markers", marker=dict(size=4),
            line=dict(color=color, width=2), name=f"k = {p.k}" + (" (stable)" if p.stable else ""),
            hovertemplate=f"k = {p.k}<br>α = %{{x:.2f}}<br>test error %{{y:.1f}} %<extra></extra>"))
    _style(fig, title or f"{_label(variant, reset).capitalize()}: test error between two copies trained from iteration k",
           "α: 0 = copy A, 1 = copy B (the straight line between their weights)", "test error (%)")
    fig.update_xaxes(range=[-0.02, 1.02])
    return fig


def instability_figure(paths: list[PathResult], title: str = "", reset: str = "init") -> go.Figure:
    """Instability (the error barrier) against k, one line per network (dense, ticket, controls), the 2 %
    line dashed, and a star where the dense network becomes stable (k*)."""
    fig = go.Figure()
    names = list(dict.fromkeys(p.variant for p in paths))
    for v in names:
        mine = sorted((p for p in paths if p.variant == v), key=lambda p: p.k)
        color = COLORS.get(v, DENSE_COLOR)
        fig.add_trace(go.Scatter(
            x=[p.k for p in mine], y=[100 * p.barrier for p in mine], mode="lines+markers",
            line=dict(color=color, width=2.5 if v in (DENSE, "ticket") else 1.8,
                      dash="solid" if v in (DENSE, "ticket") else VARIANT_DASH.get(v, "dash")),
            marker=dict(symbol=VARIANT_SYMBOL.get(v, "circle"), size=7), name=_label(v, reset),
            customdata=[[100 * p.end_error, 100 * p.weights_remaining] for p in mine],
            hovertemplate=f"{_label(v, reset)}<br>k = %{{x}}<br>barrier %{{y:.1f}} %<br>error of the trained copies "
                          f"%{{customdata[0]:.1f}} %<br>%{{customdata[1]:.1f}} % of weights<extra></extra>"))
    ks = sorted({p.k for p in paths})
    top = 1.08 * max([100 * p.barrier for p in paths] + [100 * STABLE_BELOW])
    k_star = stable_from(paths, DENSE)
    if k_star is not None:
        at = next(p for p in paths if p.variant == DENSE and p.k == k_star)
        fig.add_trace(go.Scatter(x=[k_star], y=[100 * at.barrier], mode="markers", name=f"stable from k* = {k_star}",
                                 marker=dict(symbol="star", size=16, color="#E69F00", line=dict(color="#333", width=1)),
                                 hovertemplate=f"the dense network is stable from k = {k_star} on<extra></extra>"))
        where = _clear_spot(fig, ks, top, ks.index(k_star), 100 * at.barrier, f"k* = {k_star}")
        if where is not None:  # else the legend alone names it; x: a category axis places by position
            fig.add_annotation(x=ks.index(k_star), y=100 * at.barrier, text=f"k* = {k_star}", ax=where[0], ay=where[1],
                               showarrow=True, arrowhead=0, arrowwidth=1, arrowcolor="#666", standoff=9,
                               font=dict(size=12, color="#333"), bgcolor="rgba(255,255,255,0.85)")
    fig.add_hline(y=100 * STABLE_BELOW, line=dict(color="#999", dash="dash", width=1),
                  annotation_text=f"stable below {100 * STABLE_BELOW:.0f} %", annotation_position="top right",
                  annotation_yshift=LABEL_GAP_PX)
    _style(fig, title or "Instability against the iteration k the copies were made at",
           "k: iteration of the dense network's training at which it was copied", "instability: error barrier (%)")
    # fixed ranges, so that _clear_spot's picture of the plot is the one drawn
    fig.update_yaxes(range=[0, top])
    _k_axis(fig, paths)
    fig.update_xaxes(range=[-0.4, len(ks) - 0.6])
    return fig


LABEL_GAP_PX = 5                      # the least room between a label and any line
PLOT_SIZES = ((480, 230), (760, 250), (1000, 250))   # about the plot area (px) at the widths the page draws it


def _clear_spot(fig: go.Figure, ks: list[int], top: float, i: int, y: float, text: str) -> tuple[int, int] | None:
    """Where to put a label of the point (category `i`, `y`) so that no line drawn so far, nor the 2 % line
    and its label, comes within LABEL_GAP_PX of it at any of PLOT_SIZES: the first clear offset (px, from the point
    to the label's centre) among a few above and beside it; None when none is clear."""
    half_w, half_h = 3.6 * len(text) + 4 + LABEL_GAP_PX, 9 + LABEL_GAP_PX
    lines = [(list(map(ks.index, t.x)), list(t.y)) for t in fig.data if t.mode and "lines" in t.mode]
    line_y = 100 * STABLE_BELOW
    for dx, dy in ((0, -40), (45, -40), (-45, -40), (0, -56), (60, -56), (-60, -56), (0, -72), (70, 0), (-70, 0)):
        clear = True
        for width, height in PLOT_SIZES:
            px = lambda c, v: ((c + 0.4) / (len(ks) - 0.2) * width, (1 - v / top) * height)  # noqa: E731
            cx, cy = px(i, y)
            cx, cy = cx + dx, cy + dy
            box = (cx - half_w, cy - half_h, cx + half_w, cy + half_h)
            hy = px(0, line_y)[1]
            hits_line = box[1] < hy < box[3]
            hits_label = box[2] > width - 130 and box[1] < hy and box[3] > hy - 22  # "stable below 2 %", top right
            outside = box[0] < 0 or box[2] > width or box[1] < 0 or box[3] > height
            if hits_line or hits_label or outside or any(_crosses(box, [px(c, v) for c, v in zip(xs, ys)])
                                                         for xs, ys in lines):
                clear = False
                break
        if clear:
            return dx, dy
    return None


def _crosses(box: tuple[float, float, float, float], points: list[tuple[float, float]]) -> bool:
    """Whether the polyline through `points` (px) enters `box` (left, top, right, bottom), sampled every px."""
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        n = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
        for j in range(n + 1):
            x, y = x0 + (x1 - x0) * j / n, y0 + (y1 - y0) * j / n
            if box[0] < x < box[2] and box[1] < y < box[3]:
                return True
    return False


def _k_axis(fig: go.Figure, paths: list[PathResult]) -> None:
    """The analysed ks equally spaced, labelled by value: they are usually crowded near 0 (0, 1, 3, 6, 12, 29)."""
    ks = sorted({p.k for p in paths})
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=ks)


def end_error_figure(paths: list[PathResult], title: str = "", reset: str = "init") -> go.Figure:
    """The trained copies' test error (mean of the two) against k, per network: where the ticket is stable
    it should match the dense network."""
    fig = go.Figure()
    for v in dict.fromkeys(p.variant for p in paths):
        mine = sorted((p for p in paths if p.variant == v), key=lambda p: p.k)
        fig.add_trace(go.Scatter(
            x=[p.k for p in mine], y=[100 * p.end_error for p in mine], mode="lines+markers", name=_label(v, reset),
            line=dict(color=COLORS.get(v, DENSE_COLOR), dash="solid" if v in (DENSE, "ticket") else VARIANT_DASH.get(v, "dash")),
            marker=dict(symbol=VARIANT_SYMBOL.get(v, "circle"), size=7),
            hovertemplate=f"{_label(v, reset)}<br>k = %{{x}}<br>test error %{{y:.1f}} %<extra></extra>"))
    _style(fig, title or "Test error of the trained copies against k", "k: iteration the copies started from",
           "test error after training (%)")
    _k_axis(fig, paths)
    return fig


def sentences(paths: list[PathResult], iterations: int, reset: str = "init") -> list[str]:
    """What the analysis shows, from its numbers: where the dense network became stable and what that means
    for rewinding; how the ticket and its controls compare."""
    out: list[str] = []
    dense = sorted((p for p in paths if p.variant == DENSE), key=lambda p: p.k)
    if not dense:
        return ["No k has been analysed yet."]
    first = dense[0]
    k_star = stable_from(paths, DENSE)
    share = lambda k: f"{100 * k / iterations:.1f} % of a round's {iterations} iterations"  # noqa: E731
    if k_star is None:
        last = dense[-1]
        out.append(f"The dense network is not stable at any k analysed: at k = {last.k} two copies still end "
                   f"{100 * last.barrier:.1f} % apart in test error (barrier; stable is under {100 * STABLE_BELOW:.0f} %). "
                   "Analyse later iterations.")
    elif k_star == first.k:
        out.append(f"The dense network is stable from k = {k_star} on (barrier {100 * first.barrier:.1f} % there): two "
                   "copies trained with different data orders end in the same linearly connected basin, so the data "
                   f"order does not decide the outcome. Resetting to iteration {k_star} is enough "
                   f"({'`reset init`' if k_star == 0 else f'`rewind:{k_star}`'}).")
    else:
        at = next(p for p in dense if p.k == k_star)
        out.append(f"The dense network is unstable at k = {first.k} (barrier {100 * first.barrier:.1f} %) and stable from "
                   f"k* = {k_star} on ({share(k_star)}; barrier {100 * at.barrier:.1f} %). Rewind to at least iteration "
                   f"{k_star}, where the network became stable: `rewind:{k_star}`.")
    sparse = [v for v in dict.fromkeys(p.variant for p in paths) if v != DENSE]
    if "ticket" in sparse:
        ticket = sorted((p for p in paths if p.variant == "ticket"), key=lambda p: p.k)
        t_star = stable_from(paths, "ticket")
        when = ("at no k analysed" if t_star is None else f"from k = {t_star} on")
        out.append(f"The ticket ({100 * ticket[0].weights_remaining:.1f} % of the weights) is stable {when}.")
        by_k = {p.k: p for p in dense}
        matched = [p for p in ticket if p.k in by_k and p.end_error - by_k[p.k].end_error <= 0.01]
        if matched:
            out.append(f"It matches the dense network (its test error at most 1 point above the dense network's) at k = "
                       f"{', '.join(str(p.k) for p in matched)}; at those k it is "
                       f"{'stable' if all(p.stable for p in matched) else 'not always stable'}.")
        for v in sparse:
            if v == "ticket":
                continue
            mine = [p for p in paths if p.variant == v]
            stable = [p.k for p in mine if p.stable]
            low, high = (f"{f(100 * p.barrier for p in mine):.1f}" for f in (min, max))
            out.append(f"The {_label(v, reset)} control is " + (f"stable at k = {', '.join(map(str, stable))}" if stable
                       else "unstable at every k analysed") + f" (barrier {low if low == high else f'{low}–{high}'} %).")
    return out
