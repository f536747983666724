"""A stored deployment bench (deploy_bench.DeployBench) as tables and a figure: pure functions, the bench in,
pandas DataFrames and a Plotly figure out. The Deploy page shows them, and the report can too.

Sizes are the bytes of files written and measured; latencies are medians of timed calls with their
quartiles; nothing here computes an estimate.
"""
from __future__ import annotations



import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lth_core.analysis.deploy_bench import BATCHES, DeployBench, variant_name
from lth_core.analysis.deployment import format_bytes

NETWORK_NAMES = {"dense": "dense (round 0)", "ticket": "ticket"}  # short: the tables fit a 1024 px window
DENSE_COLOR, CSR_COLOR, TICKET_COLOR = "#555555", "#0072B2", "#D55E00"


def size_text(n: int | None) -> str:
    return "–" if n is None else format_bytes(n)


FILES_CAPTION = ("Each file written to disk and its bytes counted, plain and gzipped (gz, level 9); × smaller: the "
                 "ticket's gzipped file against the dense network's fp32 .pt gzipped.")
ACCURACY_CAPTION = ("Accuracy on the test split; agrees: the share of test predictions equal to the engine's own "
                    "network's.")


def files_table(b: DeployBench) -> pd.DataFrame:
    """One row per file format: measured bytes of the dense network's and the ticket's file, plain and
    gzipped ("gz"), and how many times smaller the ticket's gzipped file is than the dense fp32 .pt gzipped.
    Short headers (FILES_CAPTION says them in full), so the table fits the page at 1024 px with the sidebar open."""
    base = b.file_bytes("dense", "fp32 .pt", True)
    rows = []
    for fmt in dict.fromkeys(f.format for f in b.files):
        ticket_gz = b.file_bytes("ticket", fmt, True)
        rows.append({"format": fmt,
                     "dense": size_text(b.file_bytes("dense", fmt, False)),
                     "dense gz": size_text(b.file_bytes("dense", fmt, True)),
                     "ticket": size_text(b.file_bytes("ticket", fmt, False)),
                     "ticket gz": size_text(ticket_gz),
                     "× smaller": f"{base / ticket_gz:.1f}×" if base and ticket_gz else "–"})
    return pd.DataFrame(rows)


def spread_percent(t) -> float:
    """Half the interquartile range of a timing's wall-clock calls, in percent of their median."""
    return 50 * (t.q3_ms - t.q1_ms) / t.median_ms if t.median_ms > 0 else 0.0


def latency_table(b: DeployBench, batch: int) -> pd.DataFrame:
    """At one batch size, one row per network and variant: the median ms per call by the measure the bench
    compares by (wall-clock; CPU time on a busy machine), ± the spread of the calls, and the speed-up against the dense
    network's dense PyTorch. One table per batch size, four columns, so it fits a page's width (the CPU times
    of an idle machine are in the stored bench and the CLI's table)."""
    base = b.timing("dense", "pytorch", batch)
    rows = []
    for network, variant in dict.fromkeys((t.network, t.variant) for t in b.timings):
        t = b.timing(network, variant, batch)
        if t is None:
            continue
        # the spread the report gives as quartiles, short enough for four columns at 1024 px: half the wall-clock
        # interquartile range as a share of the wall-clock median
        ms = f"{b.ms(t):.3g} ±{spread_percent(t):.0f} %"
        rows.append({"network": NETWORK_NAMES.get(network, network), "variant": variant_name(variant),
                     "ms per call": ms, "× dense": "–" if base is None else f"{b.ms(base) / b.ms(t):.2f}×"})
    return pd.DataFrame(rows, columns=["network", "variant", "ms per call", "× dense"])


def accuracy_table(b: DeployBench) -> pd.DataFrame:
    """Test accuracy of every variant of both networks, and its agreement with the engine's own network."""
    return pd.DataFrame([{"network": NETWORK_NAMES.get(a.network, a.network), "variant": variant_name(a.variant),
                          "accuracy": f"{100 * a.accuracy:.2f} %",
                          "agrees": f"{100 * a.agreement:.1f} %"} for a in b.accuracies])


def units_table(b: DeployBench) -> pd.DataFrame:
    """Units (inputs for `input`) of each layer before and after dead units are removed."""
    return pd.DataFrame([{"layer": u.layer, "units before": u.before, "units after": u.after, "removed": u.removed}
                         for u in b.units])


def latency_caption(b: DeployBench) -> str:
    repeats = b.timings[0].repeats if b.timings else 0
    threads = f"{b.machine.threads} thread{'s' if b.machine.threads != 1 else ''}"
    if b.by_cpu_time:
        measure = ("the median CPU time of the process per call, over {n} timed calls after a warm-up (the machine was "
                   "busy, so wall-clock time there is mostly waiting for a core)").format(n=repeats)
    else:
        measure = f"the median wall-clock time of {repeats} timed calls after a warm-up"
    measure += ("; ± is how widely the calls spread: half the interquartile range of their wall-clock times, as a "
                "share of its median (the report gives the quartiles)")
    return (f"Milliseconds per call: {measure}; {threads} for PyTorch and ONNX Runtime. “× dense” compares with the "
            "dense network in dense PyTorch at the same batch size: above 1 is faster.")


def break_even_plot(b: DeployBench) -> go.Figure:
    """For each linear layer shape (columns) and batch size (rows): the dense matmul's time and the CSR
    matmul's time over densities (50 % down to 1 %, log axis, sparser to the right), with a dotted line
    where CSR starts paying off on this machine and a solid one at this ticket's density of the layer.
    Their values are written in the subplot's title, in the lines' colours, not beside the lines: in a
    subplot a third of a page wide, a label beside a line ran into the curves or the other line."""
    layers = list(dict.fromkeys((p.layer, tuple(p.shape)) for p in b.break_even))
    batches = [bt for bt in BATCHES if any(p.batch == bt for p in b.break_even)]
    if not layers or not batches:
        fig = go.Figure()
        fig.update_layout(title=dict(text="Break-even: not measured (no linear layers)", x=0), template="plotly_white")
        return fig
    marks = {(layer, bt): (b.break_even_density(layer, bt), b.layer_density.get(layer)) for bt in batches
             for layer, _ in layers}

    def title(layer: str, shape: tuple[int, int], batch: int) -> str:
        be, mine = marks[(layer, batch)]
        values = ([f'<span style="color:{TICKET_COLOR}">this ticket: {100 * mine:.1f} %</span>'] if mine else []) + (
            [f'<span style="color:{CSR_COLOR}">CSR pays off ≤ {100 * be:g} %</span>'] if be else [])
        return "<br>".join([f"{layer} {shape[0]}×{shape[1]}, batch {batch}", *values])  # a line each: narrow columns

    fig = make_subplots(rows=len(batches), cols=len(layers), shared_xaxes=True, horizontal_spacing=0.06,
                        vertical_spacing=0.2,
                        subplot_titles=[title(layer, shape, bt) for bt in batches for layer, shape in layers])
    measure = "CPU ms" if b.by_cpu_time else "ms"
    for r, batch in enumerate(batches, start=1):
        for c, (layer, shape) in enumerate(layers, start=1):
            pts = sorted((p for p in b.break_even if p.layer == layer and p.batch == batch), key=lambda p: -p.density)
            xs = [100 * p.density for p in pts]
            first = r == 1 and c == 1
            fig.add_trace(go.Scatter(x=xs, y=[p.dense_ms for p in pts], mode="lines", name="dense matmul",
                                     line=dict(color=DENSE_COLOR, dash="dash"), legendgroup="dense", showlegend=first,
                                     hovertemplate="dense: %{y:.4f} " + measure + "<extra></extra>"), row=r, col=c)
            fig.add_trace(go.Scatter(x=xs, y=[p.csr_ms for p in pts], mode="lines+markers", name="CSR matmul",
                                     line=dict(color=CSR_COLOR), legendgroup="csr", showlegend=first,
                                     hovertemplate="CSR at %{x:g} %: %{y:.4f} " + measure + "<extra></extra>"),
                          row=r, col=c)
            be, mine = marks[(layer, batch)]
            for density, color, dash in ((be, CSR_COLOR, "dot"), (mine, TICKET_COLOR, "solid")):
                if density:  # on a log axis a shape takes the value itself
                    fig.add_vline(x=100 * density, line=dict(color=color, dash=dash, width=2), row=r, col=c)
            fig.update_xaxes(type="log", autorange="reversed", tickvals=[50, 20, 10, 5, 2, 1], ticktext=[
                "50 %", "20 %", "10 %", "5 %", "2 %", "1 %"], row=r, col=c,
                title_text="density of the layer (log) →" if r == len(batches) else None)
            fig.update_yaxes(rangemode="tozero", row=r, col=c, title_text=f"{measure} per call" if c == 1 else None)
    # the vertical lines in the legend: what each one marks (a legend entry, no data)
    for name, color, dash in (("this ticket's density of the layer", TICKET_COLOR, "solid"),
                              ("CSR pays off at and below", CSR_COLOR, "dot")):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=name, line=dict(color=color, dash=dash, width=2),
                                 hoverinfo="skip", showlegend=True), row=1, col=1)
    title = "Break-even: CSR against dense matmul of each layer's shape, on this machine"
    # the title at the top of the figure, the subplots' three-line titles below it (and a page's subtitle between)
    fig.update_layout(title=dict(text=title, x=0, xanchor="left", y=1, yref="container", yanchor="top", pad=dict(t=12)),
                      template="plotly_white", height=290 * len(batches) + 180, margin=dict(l=60, r=20, t=140, b=10),
                      hovermode="closest",
                      legend=dict(orientation="h", yref="container", y=0, yanchor="bottom", xanchor="left", x=0))
    fig.update_annotations(font_size=11, selector=dict(text=None))
    return fig


def break_even_sentence(b: DeployBench) -> str:
    """Where CSR starts paying off for each layer shape and batch size, against this ticket's density."""
    parts = []
    for layer, shape in dict.fromkeys((p.layer, tuple(p.shape)) for p in b.break_even):
        mine = b.layer_density.get(layer)
        for batch in BATCHES:
            if not any(p.layer == layer and p.batch == batch for p in b.break_even):
                continue
            be = b.break_even_density(layer, batch)
            where = f"below {100 * be:g} %" if be is not None else "at no density down to 1 %"
            pays = "" if mine is None or be is None else (" (this ticket's layer is sparse enough)" if mine <= be
                                                           else " (this ticket's layer is not sparse enough)")
            parts.append(f"{layer} {shape[0]}×{shape[1]} at batch {batch}: CSR pays off {where}{pays}")
    return "; ".join(parts) + "." if parts else ""
