"""Per-layer sensitivity shown: the figure (accuracy against one layer's sparsity, a line per layer), the table
the CLI prints, and the suggested rates in words. Plain functions of a `SensitivityResult`, for the app and CLI."""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from lth_core.analysis.recommend import points_text
from lth_core.engine.sensitivity import DEFAULT_TOLERANCE, RateSuggestion, SensitivityResult, suggest_rates

if TYPE_CHECKING:  # Plotly is imported where a figure is drawn: `show` prints this module's table, no figure
    import plotly.graph_objects as go

# the layers' colours (Plotly's qualitative "D3"): a layer keeps its colour in both of its lines
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
KIND_WORDS = {"rate_fc": "fully connected layers", "rate_conv": "conv layers", "rate_output": "output layer"}
KEEP_WORDS = {"rate_fc": "the fully connected layers keep {} of their weights",
              "rate_conv": "the conv layers keep {} of their weights", "rate_output": "the output layer keeps {} of its weights"}


def suggestion_rounds(config: dict) -> int:
    """The rounds a suggested rate is spread over: the run's own pruning rounds, or the form's opening preset's
    when the run trained only its dense network."""
    from lth_core.engine.presets import FORM_START, PRESETS

    rounds = config.get("rounds") or 0
    return int(rounds) if rounds > 0 else int(PRESETS[FORM_START].settings["rounds"])


def frame(result: SensitivityResult) -> pd.DataFrame:
    """One row per layer and sparsity: layer, kind, sparsity, total, kept and the four accuracies (fractions)."""
    columns = ["layer", "kind", "sparsity", "total", "kept", "val_pruned", "test_pruned", "val_finetuned",
               "test_finetuned"]
    return pd.DataFrame(result.rows(), columns=columns)


def sensitivity_plot(result: SensitivityResult, title: str = "Each layer pruned alone") -> go.Figure:
    """Test accuracy against the pruned layer's sparsity, a colour per layer: solid after the short fine-tune,
    dotted with no retraining; the dense network's accuracy as a horizontal line."""
    import plotly.graph_objects as go

    fig = go.Figure()
    rows = frame(result)
    tuned = result.config.finetune_steps > 0
    for i, layer in enumerate(result.kinds):
        own = rows[rows.layer == layer]
        if own.empty:
            continue
        colour = COLOURS[i % len(COLOURS)]
        x = 100 * (1 - own.sparsity)  # the share the layer keeps, on a log axis: 90 % and 98 % sparsity lie apart
        fig.add_trace(go.Scatter(
            x=x, y=100 * own.test_pruned, mode="lines+markers", name=f"{layer}, no retraining", legendgroup=layer,
            line=dict(color=colour, dash="dot"), marker=dict(symbol="circle-open", size=7),
            customdata=100 * own.sparsity,
            hovertemplate=f"{layer} pruned to %{{customdata:g}} %%, no retraining: %{{y:.1f}} %%<extra></extra>"))
        if tuned:
            fig.add_trace(go.Scatter(
                x=x, y=100 * own.test_finetuned, mode="lines+markers", name=f"{layer}, fine-tuned", legendgroup=layer,
                line=dict(color=colour), marker=dict(size=7), customdata=100 * own.sparsity,
                hovertemplate=(f"{layer} pruned to %{{customdata:g}} %%, after {result.config.finetune_steps} fine-tune "
                               "iterations: %{y:.1f} %%<extra></extra>")))
    fig.add_hline(y=100 * result.dense_test, line=dict(color="black", dash="dash", width=1),
                  annotation_text=f"dense {100 * result.dense_test:.1f} %", annotation_position="bottom right")
    if result.dense_test_finetuned is not None:
        fig.add_hline(y=100 * result.dense_test_finetuned, line=dict(color="grey", dash="dot", width=1),
                      annotation_text=f"dense, fine-tuned alike {100 * result.dense_test_finetuned:.1f} %",
                      annotation_position="top left")
    fig.update_layout(title=dict(text=title, x=0, xanchor="left"), template="plotly_white", height=460,
                      margin=dict(l=60, r=20, t=50, b=10), hovermode="closest",
                      legend=dict(orientation="h", yref="container", y=0, yanchor="bottom", xanchor="left", x=0))
    sparsities = result.config.sparsities
    fig.update_xaxes(title_text="sparsity of the pruned layer (the other layers dense; log scale of the weights it keeps)",
                     type="log", autorange="reversed", automargin=True, tickvals=[100 * (1 - s) for s in sparsities],
                     ticktext=[f"{100 * s:g} %" for s in sparsities])
    fig.update_yaxes(title_text="test accuracy (%)", automargin=True)
    return fig


def suggestion_lines(s: RateSuggestion) -> list[str]:
    """The suggested rates in words (plain text): what each layer tolerates and the rate per round it leads to."""
    lines = []
    for layer, safe in s.safe.items():
        lines.append(f"{layer} stays within {points_text(s.tolerance)} of the dense network's validation accuracy"
                     + (" (both fine-tuned alike) " if s.finetuned else " ")
                     + (f"up to {100 * safe:g} % sparsity" if safe > 0 else "at none of the measured sparsities"))
    for name, rate in s.rates.items():
        layer = s.deciding[name]
        if rate > 0:
            kept = KEEP_WORDS[name].format(f"{100 * (1 - rate) ** s.rounds:.3g} %")
            lines.append(f"{name} = {100 * rate:g} % a round: after {s.rounds} rounds {kept} ({layer} decides: "
                         f"{100 * s.safe[layer]:g} % sparsity at most)")
        else:
            lines.append(f"{name} = 0 %: leave the {KIND_WORDS[name]} unpruned ({layer} loses more than "
                         f"{points_text(s.tolerance)} even at the lowest measured sparsity)")
    return lines


def table_text(result: SensitivityResult, rounds: int, tolerance: float = DEFAULT_TOLERANCE) -> str:
    """What `show` and `sensitivity` print: a row per layer and sparsity, then the suggested rates."""
    c = result.config
    head = ("per-layer sensitivity: each layer pruned alone by magnitude, the others dense; test accuracy with no "
            "retraining" + (f" and after {c.finetune_steps} fine-tune iterations" if c.finetune_steps else "")
            + f" (dense: test {100 * result.dense_test:.2f} %, validation {100 * result.dense_val:.2f} %"
            + ("" if result.dense_test_finetuned is None else f"; fine-tuned alike: test "
               f"{100 * result.dense_test_finetuned:.2f} %, validation {100 * result.dense_val_finetuned:.2f} %") + ")")
    lines = [head, f"{'layer':<10} {'kind':<6} {'sparsity':>8} {'kept':>18} {'no retrain':>10} {'fine-tuned':>10} "
                   f"{'val (ft)':>8}"]
    for r in frame(result).itertuples():
        tuned = "-" if pd.isna(r.test_finetuned) else f"{100 * r.test_finetuned:.2f}%"
        val = r.val_pruned if pd.isna(r.val_finetuned) else r.val_finetuned
        lines.append(f"{r.layer:<10} {r.kind:<6} {100 * r.sparsity:7g}% {f'{r.kept:,} of {r.total:,}':>18} "
                     f"{100 * r.test_pruned:9.2f}% {tuned:>10} {100 * val:7.2f}%")
    missing = [l for l in result.kinds if l not in result.points]
    if missing:
        lines.append(f"(not measured yet: {', '.join(missing)}; run it again to finish)")
        return "\n".join(lines)
    suggestion = suggest_rates(result, rounds, tolerance)
    lines += ["", f"suggested rates (from validation accuracy, over {rounds} rounds, tolerance {points_text(tolerance)}):"]
    lines += [f"  {line}" for line in suggestion_lines(suggestion)]
    lines.append("  as flags: --scope layerwise " + " ".join(f"--{k.replace('_', '-')} {v:g}"
                                                           for k, v in suggestion.rates.items()))
    return "\n".join(lines)
