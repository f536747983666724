"""Figures of the 2-D playground: decision boundaries side by side and the network drawn as its weights.
Arrays in (lth_core.engine.playground), Plotly figures out."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lth_core.analysis.plots import COLORS, LABELS

# class colours (Okabe-Ito, away from the variant colours): pale for the background, strong for the points
CLASS_COLORS = ("#CC79A7", "#56B4E9", "#F0E442", "#999999")
POSITIVE, NEGATIVE, PRUNED = "#E66100", "#1F4E9E", "#9A9A9A"
WIDTHS = (0.6, 1.5, 3.0, 5.0)  # line widths of kept edges, by quarter of the largest |weight|


def _rgb(hex_color: str) -> np.ndarray:
    return np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)


def boundary_image(probs: np.ndarray) -> np.ndarray:
    """(H, W, K) class probabilities → (H, W, 3) uint8: each class's pale colour, mixed by probability
    (a confident region has its class's colour, a contested one turns greyish)."""
    palette = np.stack([_rgb(c) for c in CLASS_COLORS[:probs.shape[-1]]])
    pale = 255 - 0.55 * (255 - palette)
    return np.clip(probs @ pale, 0, 255).astype(np.uint8)


def boundary_figure(panels: list[tuple[str, np.ndarray | None]], extent: tuple[float, float, float, float],
                    points: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...]) -> go.Figure:
    """One panel per (title, (H, W, K) probabilities), the same points (the test split) drawn over each;
    a panel whose probabilities are None is left empty with its title (a net not trained yet)."""
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[t for t, _ in panels],
                        horizontal_spacing=0.03)
    x0, x1, y0, y1 = extent
    for col, (_, probs) in enumerate(panels, start=1):
        if probs is None:
            fig.update_xaxes(visible=False, row=1, col=col)
            fig.update_yaxes(visible=False, row=1, col=col)
            continue
        h, w = probs.shape[:2]
        fig.add_trace(go.Image(z=boundary_image(probs), x0=x0 + (x1 - x0) / w / 2, dx=(x1 - x0) / w,
                               y0=y0 + (y1 - y0) / h / 2, dy=(y1 - y0) / h, hoverinfo="skip"), row=1, col=col)
        for k, name in enumerate(class_names):
            sel = labels == k
            fig.add_trace(go.Scatter(x=points[sel, 0], y=points[sel, 1], mode="markers", name=name,
                                     legendgroup=name, showlegend=col == 1,
                                     marker=dict(size=5, color=CLASS_COLORS[k], line=dict(width=0.8, color="#222")),
                                     hovertemplate=f"{name}<br>x1 %{{x:.2f}}, x2 %{{y:.2f}}<extra></extra>"),
                          row=1, col=col)
        # rows of the image go up with y (math orientation), and every panel is square
        fig.update_xaxes(range=[x0, x1], showticklabels=False, constrain="domain", row=1, col=col)
        fig.update_yaxes(range=[y0, y1], autorange=False, showticklabels=False, scaleanchor=f"x{col if col > 1 else ''}",
                         constrain="domain", row=1, col=col)
    fig.update_layout(height=330, margin=dict(l=10, r=10, t=50, b=10), legend_title_text="class (test points)",
                      legend=dict(orientation="h", y=-0.02, yanchor="top", x=0))
    return fig


def panel_title(variant: str, accuracy: float | None = None, remaining: float | None = None) -> str:
    """Name in the variant's colour; below it the share of weights and test accuracy (or when it comes)."""
    name = "dense network (round 0)" if variant == "dense" else LABELS[variant]
    detail = ("after the first pruned round" if accuracy is None or remaining is None
              else f"{remaining:.1%} of weights · test accuracy {accuracy:.1%}")
    return f"<span style='color:{COLORS[variant]}'><b>{name}</b></span><br><span style='font-size:12px'>{detail}</span>"


def _segments(nodes: pd.DataFrame, edges: pd.DataFrame) -> tuple[list, list]:
    """x and y of every edge as one polyline with None between edges (one trace per style is fast)."""
    pos = nodes.set_index(["column", "unit"])[["x", "y"]]
    src = pos.loc[list(zip(edges.column, edges.source))].to_numpy()
    dst = pos.loc[list(zip(edges.column + 1, edges.target))].to_numpy()
    xs = np.column_stack([src[:, 0], dst[:, 0], np.full(len(edges), np.nan)]).ravel()
    ys = np.column_stack([src[:, 1], dst[:, 1], np.full(len(edges), np.nan)]).ravel()
    return [None if v != v else v for v in xs], [None if v != v else v for v in ys]


def diagram_figure(nodes: pd.DataFrame, edges: pd.DataFrame, at_round: int) -> go.Figure:
    """The ticket at `at_round` as a diagram: an edge per weight, thickness |weight|, colour its sign;
    edges pruned in earlier rounds fade a little more each round."""
    fig = go.Figure()
    gone = edges[~edges.kept]
    for age in sorted(int(at_round - r) for r in gone.pruned_round.unique()):
        part = gone[gone.pruned_round == at_round - age]
        xs, ys = _segments(nodes, part)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", hoverinfo="skip", opacity=max(0.05, 0.45 * 0.55 ** age),
                                 line=dict(color=PRUNED, width=0.7, dash="dot" if age == 0 else "solid"),
                                 name="pruned this round" if age == 0 else "pruned earlier (fading)",
                                 legendgroup=f"pruned{age == 0}", showlegend=bool(age <= 1)))
    kept = edges[edges.kept]
    top = float(kept.weight.abs().max()) if len(kept) else 1.0
    bucket = np.minimum((kept.weight.abs() / max(top, 1e-12) * len(WIDTHS)).astype(int), len(WIDTHS) - 1)
    for sign, color, name in ((1, POSITIVE, "positive weight"), (-1, NEGATIVE, "negative weight")):
        named = False
        for b, width in enumerate(WIDTHS):
            part = kept[(np.sign(kept.weight) == sign) & (bucket == b)]
            if part.empty:
                continue
            xs, ys = _segments(nodes, part)
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", hoverinfo="skip", opacity=0.85,
                                     line=dict(color=color, width=width), name=name, legendgroup=name,
                                     showlegend=not named))
            named = True
    last = nodes.column.max()
    fig.add_trace(go.Scatter(x=nodes.x, y=nodes.y, mode="markers", name="unit", showlegend=False,
                             marker=dict(size=8, color="white", line=dict(width=1.2, color="#333")),
                             hovertemplate="%{text}<extra></extra>", text=nodes.label))
    ends = nodes[(nodes.column == 0) | (nodes.column == last)]
    fig.add_trace(go.Scatter(x=ends.x + np.where(ends.column == 0, -0.08, 0.08), y=ends.y, mode="text",
                             text=ends.label, showlegend=False, hoverinfo="skip",
                             textposition=["middle left" if c == 0 else "middle right" for c in ends.column]))
    sizes = nodes.groupby("column").size()
    columns = ["inputs"] + [f"hidden layer {c}<br>({sizes[c]} units)" for c in range(1, last)] + ["classes"]
    fig.update_xaxes(tickvals=list(range(len(columns))), ticktext=columns, range=[-0.6, last + 0.6],
                     showgrid=False, zeroline=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=30, b=10), plot_bgcolor="white",
                      legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0))
    return fig
