"""Plot builders for masks: arrays in, Plotly figures out.

A mask is a bool array of a layer's weight shape: (out, in) for fully connected layers,
(out, in, kh, kw) for conv layers. Big masks are block-averaged before drawing, so a 300×784
mask becomes at most MAX_CELLS × MAX_CELLS cells, each showing the fraction of weights kept.
"""
from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .plots import COLORS, FULL_WIDTH, LABELS, NARROW_WIDTH, TICK_CHAR_PX, TICK_LINE_PX, VARIANTS, _style
from lth_core.engine.variants import TICKET
from lth_core.analysis.statistics import percent_text

MAX_CELLS = 200
KEPT_SCALE = [[0.0, "#f7f7f7"], [1.0, COLORS[TICKET]]]


def as_matrix(mask: np.ndarray) -> np.ndarray:
    """Any weight mask as a 2-D (out, everything else) matrix."""
    return mask.reshape(mask.shape[0], -1) if mask.ndim != 2 else mask


def block_average(mask: np.ndarray, max_cells: int = MAX_CELLS) -> tuple[np.ndarray, tuple[int, int]]:
    """Fraction kept in blocks of (fy, fx) weights, so that neither side exceeds `max_cells`.
    Edge blocks that overhang the matrix average only the weights they cover."""
    m = as_matrix(mask).astype(np.float32)
    rows, cols = m.shape
    fy, fx = math.ceil(rows / max_cells), math.ceil(cols / max_cells)
    if fy == fx == 1:
        return m, (1, 1)
    ny, nx = math.ceil(rows / fy), math.ceil(cols / fx)
    padded = np.zeros((ny * fy, nx * fx), np.float32)
    counts = np.zeros_like(padded)
    padded[:rows, :cols], counts[:rows, :cols] = m, 1.0
    sums = padded.reshape(ny, fy, nx, fx).sum(axis=(1, 3))
    return sums / counts.reshape(ny, fy, nx, fx).sum(axis=(1, 3)), (fy, fx)


def mask_heatmap(mask: np.ndarray, layer: str, max_cells: int = MAX_CELLS,
                 feature_names: tuple[str, ...] | None = None) -> go.Figure:
    """A layer's mask: rows = units (outputs), columns = inputs; colour = fraction of weights kept.
    A table's first layer can name its columns by `feature_names` (when they fit, one per column)."""
    grid, (fy, fx) = block_average(mask, max_cells)
    rows, cols = as_matrix(mask).shape
    names = _names(feature_names, cols) if mask.ndim == 2 and fx == 1 else None
    ys, xs = np.arange(grid.shape[0]) * fy, (list(names) if names else np.arange(grid.shape[1]) * fx)
    fig = go.Figure(go.Heatmap(
        z=grid, x=xs, y=ys, zmin=0, zmax=1, colorscale=KEPT_SCALE,
        colorbar=dict(title="kept", tickformat=".0%", len=0.8),
        hovertemplate=("%{x}" if names else "inputs from %{x}") + ", units from %{y}: %{z:.0%} kept<extra></extra>"))
    block = "" if fy == fx == 1 else f" · each cell averages {fy}×{fx} weights"
    kept = float(mask.mean())
    _style(fig, f"{layer}: {rows}×{cols} weights, {percent_text(100 * kept)} kept{block}",
           "input column" if names else "input (column of the weight matrix)", "unit (row)")
    fig.update_yaxes(autorange="reversed")
    if names:
        _name_ticks(fig, names, FULL_WIDTH - 80)  # the colour bar takes about 80 pixels
    fig.update_layout(legend=None, hovermode="closest")
    return fig


def _name_ticks(fig: go.Figure, names: tuple[str, ...], width: float) -> None:
    """Column names on a categorical x axis about `width` pixels wide, never running together: level when
    they fit side by side, turned 45° when a slanted line's height fits between neighbours, upright when a
    line's height does, and else every k-th name upright (the tooltip names every column)."""
    room = max(width - 90, 100) / len(names)  # pixels per column; the y axis takes about 90
    if room >= max(len(n) for n in names) * TICK_CHAR_PX + 8:
        fig.update_xaxes(type="category", tickangle=0)
    elif room >= TICK_LINE_PX * math.sqrt(2):
        fig.update_xaxes(type="category", tickangle=-45)
    else:
        step = math.ceil(TICK_LINE_PX / room)
        shown = list(names)[::step]
        fig.update_xaxes(type="category", tickangle=-90, tickvals=shown, ticktext=shown)


def layer_bars(layers: pd.DataFrame, round: int, variant: str = TICKET) -> go.Figure:
    """Per layer, the percentage of weights still there after `round`, labelled with the counts."""
    df = layers[(layers["round"] == round) & (layers.variant == variant)]
    g = df.groupby("layer", sort=False)[["total", "remaining"]].mean().reset_index()
    pct = 100 * g.remaining / g.total
    fig = go.Figure(go.Bar(
        x=g.layer, y=pct, marker_color=COLORS[variant], name=LABELS[variant],
        text=[f"{percent_text(p)}<br>{r:,.0f} of {t:,.0f}" for p, r, t in zip(pct, g.remaining, g.total)],
        textposition="auto", hovertemplate="%{x}: %{text} kept<extra></extra>"))
    _style(fig, f"Weights remaining in each layer after round {round}", "layer", "weights remaining (%)")
    fig.update_yaxes(range=[0, 105])
    fig.update_layout(height=320, bargap=0.5)
    return fig


def input_survival(mask: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """For a first fully connected layer: how many units still connect to each input, shaped like
    one input without its channel axis ((H, W) for images, (L,) for sequences, (F,) for tables)."""
    per_input = as_matrix(mask).sum(axis=0)
    if len(input_shape) == 1:
        return per_input
    return per_input.reshape(input_shape).sum(axis=0)


RING_PX = 2  # the rings of `survival_by_distance` are this many pixels wide


def survival_by_ring(mask: np.ndarray, input_shape: tuple[int, ...], ring: int = RING_PX) -> pd.DataFrame:
    """For a first fully connected layer on images: the connections a pixel keeps into the layer, averaged
    over rings around the image centre. One row per ring: distance (its inner edge, in pixels from the
    centre), pixels, connections (mean per pixel)."""
    kept = input_survival(mask, input_shape)
    h, w = kept.shape
    rows, cols = np.mgrid[0:h, 0:w]
    ring_of = (np.hypot(rows - (h - 1) / 2, cols - (w - 1) / 2) // ring).astype(int)
    out = pd.DataFrame({"ring": ring_of.ravel(), "kept": kept.ravel()}).groupby("ring")["kept"].agg(["size", "mean"])
    return pd.DataFrame({"distance": out.index * ring, "pixels": out["size"].to_numpy(),
                         "connections": out["mean"].to_numpy(float)})


def survival_by_distance(masks: dict[str, np.ndarray], input_shape: tuple[int, ...], layer: str = "fc1",
                         ring: int = RING_PX) -> go.Figure:
    """The survival map averaged over rings around the image centre, a line per variant (`masks`: variant →
    its first-layer mask): whether pruning kept more of the middle than of the border, which a heat map
    hardly shows when the difference is a few connections per pixel. The y axis starts at zero."""
    fig = go.Figure()
    top = 0.0
    for variant, mask in masks.items():
        t = survival_by_ring(mask, input_shape, ring)
        top = max(top, float(t["connections"].max()))
        fig.add_trace(go.Scatter(x=t["distance"] + ring / 2, y=t["connections"], mode="lines+markers",
                                 name=LABELS.get(variant, variant), line=dict(color=COLORS.get(variant), width=2.5),
                                 marker=dict(color=COLORS.get(variant)), customdata=t["pixels"],
                                 hovertemplate="%{x:.0f} px from the centre: %{y:.1f} connections per pixel "
                                               "(%{customdata} pixels)<extra></extra>"))
    _style(fig, f"Connections per pixel into {layer}, by distance", "pixels from the image centre",
           "connections per pixel")
    fig.update_yaxes(range=[0, 1.1 * top if top else 1], rangemode="tozero")
    return fig


def survival_map(mask: np.ndarray, input_shape: tuple[int, ...], layer: str = "fc1",
                 feature_names: tuple[str, ...] | None = None, width: float = NARROW_WIDTH) -> go.Figure:
    """Connections each input keeps: an image for image data, a profile for sequences and tables
    (a table's bars named by its columns when `feature_names` gives one name per input; `width`: about how
    wide it is drawn, so the names never run together)."""
    kept = input_survival(mask, input_shape)
    units = mask.shape[0]
    if kept.ndim == 2:
        fig = go.Figure(go.Heatmap(z=kept, zmin=0, zmax=max(1, int(kept.max())), colorscale="Viridis",
                                   colorbar=dict(title="units<br>connected"),
                                   hovertemplate="pixel (row %{y}, col %{x}): %{z} of " + f"{units}<extra></extra>"))
        _style(fig, f"Connections each input pixel keeps into {layer} (of {units})", "pixel column", "pixel row")
        fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain")
        fig.update_xaxes(constrain="domain")
        return fig
    names = _names(feature_names, len(kept)) if len(input_shape) == 1 else None
    x = list(names) if names else np.arange(len(kept))
    fig = go.Figure(go.Bar(x=x, y=kept, marker_color=COLORS[TICKET],
                           hovertemplate=("%{x}" if names else "input %{x}") + ": %{y} of " + f"{units} units<extra></extra>"))
    where = "position in the sequence" if len(input_shape) == 2 else ("input column" if names else "input feature")
    _style(fig, f"Connections each input keeps into {layer} (of {units})", where, "units still connected")
    fig.update_yaxes(range=[0, units])
    if names:
        _name_ticks(fig, names, width)
    return fig


def _names(feature_names: tuple[str, ...] | None, count: int) -> tuple[str, ...] | None:
    """Column names to label a table's inputs with, if there is exactly one per input. Plotly reads
    a few HTML tags (<a href>, <b>, <br>) in labels: names from a user's file are escaped."""
    if feature_names is None or len(feature_names) != count:
        return None
    return tuple(html.escape(str(n), quote=False) for n in feature_names)


def receptive_fields(mask: np.ndarray, input_shape: tuple[int, ...], units: int = 16,
                     feature_names: tuple[str, ...] | None = None, width: float = NARROW_WIDTH) -> go.Figure:
    """The kept inputs of a few units. Images: a mosaic of the `units` units that keep the most
    connections, each drawn as an image. Sequences and tables: every unit as a row, sorted by the
    centre of its kept inputs, so local (neighbouring-input) patterns line up along the diagonal."""
    m = as_matrix(mask)
    if len(input_shape) == 3:
        h, w = input_shape[1:]
        order = np.argsort(-m.sum(axis=1), kind="stable")[:units]
        per_row = math.ceil(math.sqrt(len(order)))
        n_rows = math.ceil(len(order) / per_row)
        gap = 1 + max(h, w) // 14  # a visible gutter between the units' tiles
        tile = np.full((n_rows * (h + gap) - gap, per_row * (w + gap) - gap), np.nan, np.float32)
        for k, unit in enumerate(order):
            field = m[unit].reshape(input_shape).any(axis=0)
            r, c = divmod(k, per_row)
            tile[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = field
        fig = go.Figure(go.Heatmap(z=tile, zmin=0, zmax=1, colorscale=KEPT_SCALE, showscale=False,
                                   hovertemplate="%{z:.0f} (1 = kept)<extra></extra>"))
        _style(fig, f"What {len(order)} units still see (dark = kept)", "", "")
        fig.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False, constrain="domain", showgrid=False)
        fig.update_xaxes(showticklabels=False, constrain="domain", showgrid=False, zeroline=False)
        fig.update_layout(plot_bgcolor="#9a9a9a")  # the gutters between tiles
        return fig
    positions = np.arange(m.shape[1])
    counts = m.sum(axis=1)
    centre = np.where(counts > 0, (m * positions).sum(axis=1) / np.maximum(counts, 1), np.inf)
    order = np.argsort(centre, kind="stable")
    names = _names(feature_names, m.shape[1]) if len(input_shape) == 1 else None
    fig = go.Figure(go.Heatmap(z=m[order].astype(np.float32), x=list(names) if names else None, zmin=0, zmax=1,
                               colorscale=KEPT_SCALE, showscale=False,
                               customdata=np.broadcast_to(order[:, None], m.shape),
                               hovertemplate="unit %{customdata}, " + ("%{x}" if names else "input %{x}")
                                             + ": %{z:.0f} (1 = kept)<extra></extra>"))
    _style(fig, "Every unit's kept inputs (dark = kept)", "input column" if names else "input position",
           "units, sorted by centre")
    fig.update_yaxes(autorange="reversed", showticklabels=False)
    if names:
        _name_ticks(fig, names, width)
    return fig


def overlap_table(masks: dict[tuple[int, str], dict[str, np.ndarray]]) -> pd.DataFrame:
    """Between consecutive rounds, per variant: the share of weights kept in round r that were
    already kept in round r−1 (`overlap`), and what a mask drawn at random would share (`chance`
    = the fraction kept in round r−1). Keys of `masks` are (round, variant)."""
    rows = []
    for (rnd, variant), now in sorted(masks.items()):
        before = masks.get((rnd - 1, variant)) or (masks.get((rnd - 1, TICKET)) if rnd == 1 else None)
        if before is None:
            continue
        both = sum(int((now[l] & before[l]).sum()) for l in now)
        kept_now = sum(int(now[l].sum()) for l in now)
        kept_before = sum(int(before[l].sum()) for l in now)
        total = sum(now[l].size for l in now)
        rows.append(dict(round=rnd, variant=variant, kept_before=kept_before, kept_now=kept_now, kept_both=both,
                         overlap=both / max(kept_now, 1), chance=kept_before / total))
    return pd.DataFrame(rows, columns=["round", "variant", "kept_before", "kept_now", "kept_both", "overlap", "chance"])


def overlap_plot(table: pd.DataFrame) -> go.Figure:
    """Overlap of each round's mask with the previous round's, per variant, against chance."""
    fig = go.Figure()
    for variant in VARIANTS:
        s = table[table.variant == variant]
        if s.empty:
            continue
        fig.add_trace(go.Scatter(x=s["round"], y=100 * s.overlap, mode="lines+markers", name=LABELS[variant],
                                 line=dict(color=COLORS[variant], width=2.5), marker=dict(color=COLORS[variant]),
                                 hovertemplate="round %{x}: %{y:.1f} % of its kept weights were kept in the round before"
                                               "<extra></extra>"))
    chance = table.drop_duplicates("round")
    fig.add_trace(go.Scatter(x=chance["round"], y=100 * chance.chance, mode="lines", name="chance (a fresh random draw)",
                             line=dict(color=COLORS["dense"], dash="dot")))
    # two short lines: on one line the axis title was longer than the plot is tall and ran into the subtitle
    _style(fig, "How much of each round's mask was already kept in the round before", "round",
           "kept weights shared<br>with the round before (%)")
    fig.update_xaxes(dtick=1)
    fig.update_yaxes(range=[0, 105])
    return fig


def init_magnitude_histogram(init: np.ndarray, mask: np.ndarray, bins: int = 40) -> go.Figure:
    """Distributions of |initial weight| for the weights a mask keeps and the ones it pruned, each
    normalised to its own total so the two shapes compare even when one group is much larger."""
    mags = np.abs(np.asarray(init, dtype=np.float32)).ravel()
    keep = np.asarray(mask, bool).ravel()
    edges = np.linspace(0.0, float(mags.max()) if mags.size else 1.0, bins + 1)
    centres, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
    fig = go.Figure()
    for label, part, color in (("kept", mags[keep], COLORS[TICKET]), ("pruned", mags[~keep], "#999999")):
        if part.size == 0:
            continue
        counts, _ = np.histogram(part, edges)
        fig.add_trace(go.Bar(x=centres, y=100 * counts / part.size, width=width, name=f"{label} ({part.size:,})",
                             marker_color=color, opacity=0.6,
                             hovertemplate=f"{label}: %{{y:.1f}} % have |w| near %{{x:.3f}}<extra></extra>"))
    fig.update_layout(barmode="overlay")
    return _style(fig, "Initial magnitude of the weights kept and pruned", "|initial weight|", "share of the group (%)")
