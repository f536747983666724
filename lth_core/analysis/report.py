"""The report: one self-contained HTML file for one run or several compared, and a PDF printed from it.

It holds the question and the setup, the sparsity–accuracy plot with its bands (ticket against the
controls), the paired gaps, the weights remaining per layer, the deployment bench stored with the run
(`store.docs(run_id, "deploy/")`), caveats in plain words and the recommendation of `recommend.recommend`.
The HTML needs no server and no network: Plotly's JavaScript is inlined once, every figure is a Plotly div.
Every text a user controls (run names, dataset names from uploads, paths) is HTML-escaped.

The PDF is printed from that HTML by headless Chromium through Playwright's `page.pdf`, the browser the
tests use; without Chromium or Playwright `write_pdf` raises PdfUnavailable with one line saying why.

`build_report(store, run_ids)` reads the store given (duck-typed, as the deployment bench does: rounds,
layers, get_run, docs), so this module stays in the analysis layer.
"""
from __future__ import annotations

import html
import importlib.util
import math
import re
import platform
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from lth_core.analysis import plots, statistics
from lth_core.analysis.checks import CheckLine, stored_checklist
from lth_core.analysis.deployment import Savings, format_bytes, ticket_savings
from lth_core.analysis.deploy_bench import BATCHES, DeployBench, summary, variant_name
from lth_core.analysis.deploy_view import break_even_plot, break_even_sentence
from lth_core.analysis.mask_plots import layer_bars
from lth_core.analysis.recommend import TOLERANCE_POINTS, Recommendation, points_text, recommend
from lth_core.analysis.summary import pct, run_summary
from lth_core.engine.errors import ConfigError, LTHError
from lth_core.engine.network_shape import NetworkShape

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu"]
FIGURE_WIDTH = 680        # px: an A4 page's width inside the print margins, so the PDF shows figures unscaled
FIGURE_HEIGHT = 380
AXIS_TITLE_GAP_PX = 24   # between an axis title and its tick labels (the default printed 11 px apart)
MAX_TOLERANCE = 100.0     # points: a tolerance of the whole accuracy scale lets every round through
PDF_TIMEOUT_MS = 60_000
DEPLOY_PREFIX = "deploy/"
NETWORK_DOC = "network"    # the run's network shape (lth_core.runs.network), for the counted savings
SOFTWARE = ("torch", "numpy", "pandas", "scipy", "plotly", "onnxruntime", "streamlit")


class PdfUnavailable(LTHError):
    """The PDF cannot be printed here (no Chromium, no Playwright, or the print failed): one line why."""


# ---- what goes in -------------------------------------------------------------------------

@dataclass
class RunMaterial:
    """One run as the report shows it, read from the store."""
    id: str
    name: str
    info: Any                       # the store's RunInfo
    rounds: pd.DataFrame
    layers: pd.DataFrame
    recommendation: Recommendation
    benches: dict[str, DeployBench] = field(default_factory=dict)   # "deploy/<round>/<trial>" → bench
    unreadable: list[str] = field(default_factory=list)             # stored bench keys that could not be read
    network: NetworkShape | None = None                              # the run's network shape, if stored
    checks: list[CheckLine] = field(default_factory=list)            # the run's sanity checklist

    def counted_savings(self) -> tuple[int, Savings] | None:
        """(round, what its ticket saves, counted from its mask (trial 0)) of the recommended round, else the last
        pruned one; None without a stored network shape or a pruned round."""
        pruned = sorted(int(r) for r in self.layers["round"].unique() if r > 0) if not self.layers.empty else []
        if self.network is None or not pruned:
            return None
        rnd = self.recommendation.round if self.recommendation.round is not None else pruned[-1]
        try:
            return rnd, ticket_savings(self.network, self.layers, rnd)
        except (KeyError, ValueError):  # a layer the stored shape does not know: nothing counted
            return None

    def bench_for(self, round: int | None) -> DeployBench | None:
        """The bench of `round` (its lowest trial), else the newest stored one; None when none is stored."""
        if not self.benches:
            return None
        mine = sorted((b for b in self.benches.values() if b.round == round), key=lambda b: b.trial)
        return mine[0] if mine else max(self.benches.values(), key=lambda b: b.created_at)


def check_tolerance(tolerance: float) -> float:
    try:
        value = float(tolerance)
    except (TypeError, ValueError):
        raise ConfigError("tolerance", f"must be a number of percentage points from 0 to {MAX_TOLERANCE:g}; "
                                       f"got {tolerance!r}") from None
    if not (0 <= value <= MAX_TOLERANCE):  # NaN fails this too
        raise ConfigError("tolerance", f"must be from 0 to {MAX_TOLERANCE:g} percentage points; got {tolerance}")
    return value


def gather(store, run_ids: list[str], tolerance: float = TOLERANCE_POINTS,
           networks: dict[str, NetworkShape | None] | None = None) -> list[RunMaterial]:
    """The runs `run_ids` read from `store`; ConfigError for an empty list, the store's error for an unknown id.
    `networks`: each run's network shape where the caller has it (lth_core.runs.network.stored_network works it
    out for a run recorded before runs kept it); else the store's "network" document, if any."""
    if not run_ids:
        raise ConfigError("runs", "name at least one run")
    out = []
    for run_id in dict.fromkeys(run_ids):
        info = store.get_run(run_id)
        rounds = store.rounds(run_id)
        material = RunMaterial(run_id, info.name, info, rounds, store.layers(run_id), recommend(rounds, tolerance))
        if networks and networks.get(run_id) is not None:
            material.network = networks[run_id]
        else:
            try:
                shape = store.doc(run_id, NETWORK_DOC)
                material.network = NetworkShape.from_dict(shape) if shape else None
            except (TypeError, KeyError, ValueError):
                material.network = None
        material.checks = stored_checklist(store, run_id)
        for key, value in sorted(store.docs(run_id, DEPLOY_PREFIX).items()):
            try:
                material.benches[key] = DeployBench.from_dict(value)
            except (TypeError, KeyError, ValueError, AttributeError):
                material.unreadable.append(key)
        out.append(material)
    return out


# ---- small pieces of HTML ----------------------------------------------------------------

def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _plotly_text(value: Any) -> str:
    """Text for Plotly's own HTML-like labels (legends, titles), which read tags such as <b> and <a>."""
    return html.escape(" ".join(str(value).split()), quote=False)


def _table(header: list[str], rows: list[list[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _list(items: list[str]) -> str:
    """Items already escaped."""
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def _with_code(text: str) -> str:
    """Plain text escaped, with `commands` in backticks shown as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", esc(text))


def _figure(fig: go.Figure, caption: str) -> str:
    fig = go.Figure(fig)
    fig.update_layout(width=FIGURE_WIDTH, height=fig.layout.height or FIGURE_HEIGHT)  # a legend of many runs is taller
    # room between each axis title and its tick labels, which print close together otherwise (the margins grow)
    fig.update_xaxes(title_standoff=AXIS_TITLE_GAP_PX, automargin=True)
    fig.update_yaxes(title_standoff=AXIS_TITLE_GAP_PX, automargin=True)
    div = pio.to_html(fig, full_html=False, include_plotlyjs=False,
                      config={"displaylogo": False, "responsive": False, "staticPlot": False})
    return f'<figure class="plot">{div}<figcaption>{esc(caption)}</figcaption></figure>'


def _command(run_id: str, round: int | None) -> str:
    return f"python -m lth_core deploy {run_id}" + (f" --round {round}" if round is not None else "")


def _measure_how(run: RunMaterial, round: int | None) -> str:
    """Where to measure a ticket, the app and the command line (plain text, `command` in backticks)."""
    ticket = f", round {round}" if round is not None else ""
    return (f"Measure it on the app's Deploy page (run “{run.name}”{ticket}, button Measure) or with "
            f"`{_command(run.id, round)}`, and build the report again.")


def counted_html(run: RunMaterial) -> str:
    """What the ticket saves, counted from its mask, clearly marked as counted and not measured (HTML; empty when
    the run's network shape is not stored)."""
    counted = run.counted_savings()
    if counted is None:
        return ""
    rnd, s = counted
    fmt = "bitmask" if s.bitmask_bytes <= s.csr_bytes else "CSR"
    return (f"<p><b>Counted, not measured</b>: from its mask, the round-{rnd} ticket (trial 0) keeps "
            f"{s.weights_remaining:,} of {s.weights_total:,} prunable weights ({pct(s.weights_remaining / max(1, s.weights_total))}); "
            f"in a sparse format ({fmt}, float32 values) its weights take {format_bytes(s.best_sparse_bytes)} against "
            f"{format_bytes(s.dense_bytes)} dense ({s.compression:.1f}× smaller); it needs {s.sparse_macs:,} "
            f"multiply-adds per example against {s.dense_macs:,} ({s.mac_reduction:.1f}× fewer). These are what a "
            "sparse format and sparse kernels could save; ordinary dense kernels multiply the zeros too, so no "
            "speed-up follows from them.</p>")


# ---- the recommendation --------------------------------------------------------------------

def _spread_words(row: pd.Series) -> str:
    if int(row["trials"]) < 2:
        return "one trial: judged on that value alone, its spread unknown"
    kind = row["lower_kind"]
    return f"{kind.split(',')[0]} {pct(row['lower'])}" + ("" if kind.startswith("lowest") else f", {int(row['trials'])} trials")


def buys_sentence(bench: DeployBench) -> str:
    """What the measured ticket buys in size and latency, in one or two sentences (plain text)."""
    parts = []
    if (smallest := bench.smallest_ticket_file()) is not None:
        best, sparse_gz, dense_gz = smallest
        parts.append(f"its file is {dense_gz / sparse_gz:.1f}× smaller gzipped ({best}: "
                     f"{sparse_gz / 1000:,.1f} kB against the dense network's {dense_gz / 1000:,.1f} kB)")
    for batch in BATCHES:
        options = [t for t in bench.timings if t.network == "ticket" and t.batch == batch]
        dense = bench.timing("dense", "pytorch", batch)
        if options and dense is not None:
            fastest = min(options, key=bench.ms)
            ratio = bench.ms(dense) / bench.ms(fastest)
            words = (f"{ratio:.1f}× faster" if ratio >= 1.1 else f"{1 / ratio:.1f}× slower" if ratio <= 1 / 1.1
                     else "no faster")
            text = (f"at batch {batch} its fastest way to run ({variant_name(fastest.variant)}, {bench.ms(fastest):.3g} ms "
                    "a call) is "
                    f"{words} than the dense network in PyTorch ({bench.ms(dense):.3g} ms)")
            same = bench.timing("dense", fastest.variant, batch)
            if same is not None and bench.ms(same) / bench.ms(fastest) < 1.1:  # the runtime's gain, not the sparsity's
                text += f", but the dense network runs as fast that way ({bench.ms(same):.3g} ms)"
            parts.append(text)
    return "; ".join(parts)


def recommendation_html(run: RunMaterial, tolerance: float) -> str:
    rec, name = run.recommendation, esc(run.name)
    if rec.dense is None:
        return f"<p><b>{name}</b>: no dense network (round 0) has finished, so nothing can be recommended yet.</p>"
    if rec.verdicts.empty:
        return f"<p><b>{name}</b>: no pruned round has finished yet, so nothing can be recommended yet.</p>"
    if rec.round is None:
        closest = rec.verdicts.sort_values(["gap_mean", "round"], ascending=[False, True]).iloc[0]
        return (f'<p class="verdict none"><b>{name}: no ticket within {points_text(tolerance)}</b> of the dense network '
                f"({pct(rec.dense)}). The closest is round {int(closest['round'])} at "
                f"{pct(closest['weights_remaining'])} of the weights, {pct(closest['mean'])} "
                f"({closest['gap_mean']:+.1f} points by its mean"
                + ("" if math.isnan(closest["gap_lower"]) else f", {closest['gap_lower']:+.1f} by the lower end of its spread")
                + "). Keep the dense network, or allow a larger tolerance.</p>")
    row = rec.row
    judged = ("by its mean and by the lower end of its spread" if int(row["trials"]) >= 2 else "by its one trial")
    text = (f'<p class="verdict"><b>{name}: recommended ticket: round {rec.round}, '
            f"{pct(row['weights_remaining'])} of the weights.</b> Its test accuracy is {pct(row['mean'])} "
            f"(mean of {int(row['trials'])} trial{'s' if int(row['trials']) != 1 else ''}; {esc(_spread_words(row))}) "
            f"against the dense network's {pct(rec.dense)}: {row['gap_mean']:+.1f} points, within "
            f"{points_text(tolerance)} {judged}. It is the sparsest round that is.</p>")
    bench = run.bench_for(rec.round)
    if bench is not None and bench.round == rec.round:
        text += (f"<p>What it buys, measured on {esc(bench.machine.cpu)} ({esc(bench.created_at[:10])}): "
                 f"{esc(buys_sentence(bench))}.</p>")
    else:
        other = f" (the bench stored for this run measured round {bench.round})" if bench is not None else ""
        text += (f"<p>What it buys in file size and latency was <b>not measured</b>{esc(other)}. "
                 f"{_with_code(_measure_how(run, rec.round))}</p>" + counted_html(run))
    return text


def across_runs(runs: list[RunMaterial], tolerance: float) -> str:
    """With several runs: which one's recommended ticket is the sparsest (HTML, empty for one run)."""
    if len(runs) < 2:
        return ""
    picked = [(r.recommendation.row["weights_remaining"], r) for r in runs if r.recommendation.round is not None]
    if not picked:
        return f"<p><b>Across the {len(runs)} runs: no ticket within {points_text(tolerance)} of its dense network.</b></p>"
    weights, best = min(picked, key=lambda pair: pair[0])
    return (f"<p><b>Across the {len(runs)} runs</b>, the sparsest recommended ticket is {esc(best.name)}'s round "
            f"{best.recommendation.round}, at {pct(weights)} of the weights ({len(picked)} of {len(runs)} runs have "
            f"a ticket within {points_text(tolerance)}).</p>")


# ---- caveats -------------------------------------------------------------------------------

def caveats(run: RunMaterial, tolerance: float) -> list[str]:
    """Plain-text caveats of one run: what was not measured, how wide the spread over trials is."""
    out, info, rounds = [], run.info, run.rounds
    rec = run.recommendation
    if info.status != "finished":
        out.append(f"The run is {info.status}: {max(info.rounds_done - 1, 0)} of {info.rounds_total or '?'} pruning "
                   "rounds finished. Later rounds may change the recommendation.")
    trials = int(rounds["trial"].nunique()) if not rounds.empty else 0
    pruned = rounds[(rounds["round"] > 0) & (rounds["variant"] == "ticket")] if not rounds.empty else rounds
    ticket = statistics.round_intervals(pruned) if not pruned.empty else pd.DataFrame()
    if trials == 1:
        out.append(f"One trial: no confidence interval can be given and the spread over seeds is unknown; run "
                   f"{statistics.SUGGESTED_TRIALS} trials or more before relying on a single number.")
    elif trials >= 2 and not ticket.empty:
        spread = pruned.groupby("round")["test_accuracy"].agg(["min", "max"])
        widest = (spread["max"] - spread["min"]).idxmax()
        width = 100 * (spread.loc[widest, "max"] - spread.loc[widest, "min"])
        ci = ticket.assign(width=100 * (ticket["high"] - ticket["low"]))
        ci_row = ci.loc[ci["width"].idxmax()] if ci["width"].notna().any() else None
        text = (f"Spread over the {trials} trials: the pruned ticket's test accuracy differs by up to {width:.1f} "
                f"points between trials (round {int(widest)})")
        if ci_row is not None and trials >= statistics.RANGE_BELOW_TRIALS:  # with 2 the interval is that range
            text += (f"; its 95 % confidence interval is up to {ci_row['width']:.1f} points wide (round "
                     f"{int(ci_row['round'])})")
        out.append(text + (". With 2 trials no confidence interval is given, only the two trials' values; "
                           f"{statistics.SUGGESTED_TRIALS} trials or more give one." if trials == 2 else "."))
    if len(info.variants) == 1:
        out.append("No controls (reinit, random mask) were trained: this report cannot say whether the ticket's "
                   "original initialisation matters, only how far the network can be pruned.")
    if not run.benches:
        out.append("File sizes, latency and the accuracy of deployed formats were not measured for this run"
                   + (" (the report shows the savings counted from the mask instead)" if run.counted_savings() else "")
                   + f". {_measure_how(run, rec.round)}")
    else:
        for b in run.benches.values():
            out.append(f"Latency was measured once, on {b.machine.label()}; another machine, another load or another "
                       "thread count gives other numbers.")
            if b.load_words():
                out.append(f"The bench of round {b.round}: {b.load_words()}")
            elif b.busy:
                out.append(f"The machine was busy when the bench of round {b.round} ran (load "
                           f"{b.machine.load_average:.1f} on {b.machine.cores} cores).")
    for key in run.unreadable:
        out.append(f"A stored bench result ({key}) could not be read by this version and is left out.")
    out.append("The recommended round is chosen on the same test-split accuracies this report shows; a fresh hold-out "
               "set would judge it without that selection.")
    out.append(f"The machine the run trained on is not recorded; it trained on device {info.device or 'unknown'}.")
    return out


def checks_html(run: RunMaterial, named: bool) -> str:
    """The run's sanity checklist (lth_core.analysis.checks): ✓ passed, ⚠ warning, ✗ failed, – not run; one line each."""
    head = f"<h4>{esc(run.name)} ({esc(run.id)})</h4>" if named else ""
    items = [f'<span class="mark {esc(line.status.replace(" ", "-"))}">{esc(line.symbol)}</span> <b>{esc(line.title)}</b>: '
             f"{esc(line.line)}" for line in run.checks]
    return head + ('<ul class="checks">' + "".join(f"<li>{item}</li>" for item in items) + "</ul>" if items
                   else "<p>No check could be read.</p>")


# ---- the sections ----------------------------------------------------------------------------

def _config_rows(runs: list[RunMaterial]) -> list[list[str]]:
    configs = [asdict(r.info.config) for r in runs]
    rows = [["run", *[f"{r.name} ({r.id})" for r in runs]],
            ["status", *[f"{r.info.status}, {max(r.info.rounds_done - 1, 0)} of {r.info.rounds_total} pruning rounds"
                         for r in runs]],
            ["variants", *[", ".join(r.info.variants) for r in runs]],
            ["created", *[f"{r.info.created_at[:19]}" for r in runs]],
            ["finished", *[(r.info.finished_at or "-")[:19] for r in runs]],
            ["trained on device", *[r.info.device or "-" for r in runs]]]
    for key in configs[0]:
        values = [c[key] for c in configs]
        shown = [("default" if v is None or v == () else ", ".join(map(str, v)) if isinstance(v, (list, tuple))
                  else str(v)) for v in values]
        if key == "trials":  # the runs' own count, and how many have a finished round when not all
            done = [int(r.rounds["trial"].nunique()) if not r.rounds.empty else 0 for r in runs]
            shown = [v if d == int(v) else f"{v} ({d} with a finished round)" for v, d in zip(shown, done)]
        rows.append([key, *shown])
    return rows


def setup_table(runs: list[RunMaterial]) -> str:
    """The runs' settings: one column per run; one run's in two pairs of columns, so it fits a page."""
    rows = _config_rows(runs)
    if len(runs) > 1:
        return _table(["setting", *[r.id for r in runs]], rows, "setup")
    half = -(-len(rows) // 2)
    left, right = rows[:half], rows[half:] + [["", ""]] * (2 * half - len(rows))
    return _table(["setting", "value", "setting", "value"], [a + b for a, b in zip(left, right)], "setup")


def software_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in SOFTWARE:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine_text() -> str:
    from lth_core.analysis.deploy_bench import machine_info
    import torch

    m = machine_info(torch.get_num_threads())
    return f"{m.cpu}, {m.cores} cores; {m.platform}"


def question_html(runs: list[RunMaterial], tolerance: float) -> str:
    what = "; ".join(f"{esc(r.info.config.arch)} on {esc(r.info.config.dataset)}, run “{esc(r.name)}”" for r in runs)
    return (f"<p>Does the network ({what}) hold a <i>winning ticket</i>: a sparse subnetwork that, reset to its "
            "original initial weights and trained alone, reaches the dense network's accuracy? How far can it be "
            f"pruned by iterative magnitude pruning while its test accuracy stays within {points_text(tolerance)} of the "
            "dense network, and what does that buy in file size and speed? The controls (the same mask with a new "
            "random initialisation, and a random mask of the same size per layer) show whether the ticket is "
            "special or any sparse network would do.</p>")


def accuracy_section(runs: list[RunMaterial], tolerance: float = TOLERANCE_POINTS) -> tuple[str, int]:
    """The sparsity–accuracy figure(s) and the paired gaps; returns (html, figure count)."""
    parts, count = [], 0
    if len(runs) == 1:
        rounds = runs[0].rounds
        title = "Test accuracy as the network is pruned"
        reset = runs[0].info.config.reset  # the ticket is named for what it is (a winning ticket, fine-tuned ...)
    else:
        names = [_plotly_text(f"{r.name} ({r.id})") for r in runs]
        rounds = pd.concat([r.rounds.assign(run=n) for r, n in zip(runs, names)], ignore_index=True)
        title = "Test accuracy as the networks are pruned"
        reset = {n: r.info.config.reset for r, n in zip(runs, names)}
    if rounds.empty:
        return "<p>No round has finished yet.</p>", 0
    parts.append(_figure(plots.accuracy_vs_weights(rounds, "test_accuracy", title=title, narrow=len(runs) > 1,
                                                   reset=reset),
                         "Lines are the mean over trials, bands the range of the trials with 2 trials and the 95 % confidence interval of the mean from 3 (none with one trial); "
                         "the dotted line is the dense network (round 0). Pruned to the right, log scale."))
    count += 1
    for r in runs:
        parts.append(f"<h3>{esc(r.name)} ({esc(r.id)})</h3>" if len(runs) > 1 else "")
        parts.append(_list([esc(s) for s in run_summary(r.rounds, reset=r.info.config.reset, tolerance=tolerance)]))
        if r.rounds.empty or r.rounds["round"].max() == 0 or len(r.info.variants) == 1:
            continue
        gaps = statistics.paired_gaps(r.rounds)
        if gaps.empty:
            continue
        fig = plots.paired_gap_plot(gaps, reset=r.info.config.reset)
        if len(runs) > 1:
            fig.update_layout(title_text=f"{fig.layout.title.text}<br><sub>{_plotly_text(r.name)}</sub>")
        parts.append(_figure(fig, "Above zero the ticket is better; error bars are 95 % confidence intervals of the "
                                  "paired gap (none with one trial)."))
        count += 1
        sentences = [s for c in statistics.controls_of(r.rounds)
                     for s in statistics.gap_sentences(gaps, c, reset=r.info.config.reset)]
        parts.append(_list([esc(s) for s in sentences]))
    return "".join(parts), count


def layers_section(runs: list[RunMaterial]) -> tuple[str, int]:
    parts, count = [], 0
    for r in runs:
        if r.layers.empty:
            parts.append(f"<p>{esc(r.name)}: no layer counts stored yet.</p>")
            continue
        pruned = sorted(int(x) for x in r.layers["round"].unique() if x > 0)
        rnd = r.recommendation.round if r.recommendation.round is not None else (pruned[-1] if pruned else 0)
        why = "the recommended round" if r.recommendation.round is not None else "the last round (none is recommended)"
        fig = layer_bars(r.layers, rnd, "ticket")
        fig.update_layout(title_text=f"Weights remaining in each layer, round {rnd} ({why})"
                          + (f"<br><sub>{_plotly_text(r.name)}</sub>" if len(runs) > 1 else ""))
        parts.append(_figure(fig, "Each bar: the ticket's weights kept in that layer, mean over trials, with the counts."))
        count += 1
    return "".join(parts), count


def _kb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1000:,.1f} kB"


def bench_html(run: RunMaterial) -> tuple[str, int]:
    """The run's stored bench of its recommended ticket (or another): (html, figure count)."""
    rec = run.recommendation
    bench = run.bench_for(rec.round)
    head = f"<h3>{esc(run.name)} ({esc(run.id)})</h3>"
    if bench is None:
        return ((head + "<p><b>Not measured.</b> No deployment bench is stored with this run: file sizes, latency and "
                f"the accuracy of the deployed formats are unknown. {_with_code(_measure_how(run, rec.round))}</p>"
                + counted_html(run)), 0)
    why = ("the recommended round" if bench.round == rec.round else
           f"not the recommended round {rec.round}" if rec.round is not None else "no round is recommended")
    out = [head, f"<p>Ticket of round {bench.round}, trial {bench.trial}, {pct(bench.weights_remaining)} of the weights "
                 f"({esc(why)}), against the dense network of round 0. Measured {esc(bench.created_at)} on "
                 f"{esc(bench.machine.label())}; the bench took {bench.seconds:.0f} s.</p>",
           f'<p class="verdict">{esc(summary(bench))}</p>']
    formats = list(dict.fromkeys(f.format for f in bench.files))
    out.append("<h4>Files, bytes on disk</h4>" + _table(
        ["format", "dense", "ticket", "dense gzipped", "ticket gzipped"],
        [[fmt, _kb(bench.file_bytes("dense", fmt, False)), _kb(bench.file_bytes("ticket", fmt, False)),
          _kb(bench.file_bytes("dense", fmt, True)), _kb(bench.file_bytes("ticket", fmt, True))] for fmt in formats],
        "numbers"))
    basis = "CPU time (busy machine)" if bench.by_cpu_time else "wall-clock"
    rows = []
    for network, variant in dict.fromkeys((a.network, a.variant) for a in bench.accuracies):
        row = [network, variant_name(variant)]
        for batch in BATCHES:
            t, base = bench.timing(network, variant, batch), bench.timing("dense", "pytorch", batch)
            row.append("-" if t is None else f"{t.median_ms:.3f} [{t.q1_ms:.3f}–{t.q3_ms:.3f}]")
            row.append("-" if t is None or base is None else f"{bench.ms(base) / bench.ms(t):.2f}×")
        acc = next(a for a in bench.accuracies if (a.network, a.variant) == (network, variant))
        row += [f"{100 * acc.accuracy:.2f} %", f"{100 * acc.agreement:.1f} %"]
        rows.append(row)
    header = ["network", "variant"]
    for batch in BATCHES:
        header += [f"batch {batch}: ms, median [IQR]", f"× @{batch}"]
    header += ["accuracy", "agreement"]
    overload = bench.load_words()  # beside the figures it qualifies
    out.append("<h4>Latency and accuracy</h4>"
               + (f'<p class="verdict none load">{esc(overload)}</p>' if overload else "")
               + "<p class=\"small\">Median of "
               f"{bench.timings[0].repeats if bench.timings else 0} timed calls after a warm-up, with the interquartile "
               f"range; {bench.machine.threads} thread(s); speed-ups against the dense network in PyTorch by {basis}; "
               "accuracy on the test split, agreement = predictions equal to the engine's own network.</p>"
               + _table(header, rows, "numbers"))
    if bench.units:
        out.append("<p>Structured (dead units removed, the same function): "
                   + esc(", ".join(f"{u.layer} {u.before}→{u.after}" for u in bench.units)) + ".</p>")
    if bench.break_even:
        be_rows = []
        for layer, shape in dict.fromkeys((p.layer, tuple(p.shape)) for p in bench.break_even):
            for batch in BATCHES:
                if any(p.layer == layer and p.batch == batch for p in bench.break_even):
                    density = bench.break_even_density(layer, batch)
                    mine = bench.layer_density.get(layer)
                    be_rows.append([layer, f"{shape[0]}×{shape[1]}", batch,
                                    f"below {100 * density:g} %" if density else "at no density down to 1 %",
                                    "-" if mine is None else f"{100 * mine:.1f} %"])
        # the Deploy page's figure, drawn by the same builder, with its values in a table below for print
        out.append('<div class="keep"><h4>Where CSR starts paying off</h4>'
                   + ('<p class="small">Timed under the same heavy load as the latencies above: where CSR pays off '
                      "may be off as well.</p>" if overload else "")
                   + _figure(break_even_plot(bench), break_even_sentence(bench))
                   + "</div>"  # the heading stays on the figure's page (h4: break-after avoid; the figure: break-inside avoid)
                   + _table(["layer", "shape", "batch", "CSR beats dense", "this ticket's density"], be_rows, "numbers"))
    out += [f'<p class="small">Note: {esc(n)}</p>' for n in bench.notes]
    others = [b for k, b in run.benches.items() if b is not bench]
    if others:
        out.append("<p class=\"small\">Also stored: " + esc(", ".join(f"round {b.round}, trial {b.trial}" for b in others))
                   + f" (see <code>python -m lth_core deploy {esc(run.id)} --round R</code>).</p>")
    return "".join(out), 1 if bench.break_even else 0


CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 13px; color: #222; max-width: 720px;
       margin: 24px auto; line-height: 1.45; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; border-bottom: 1px solid #ccc; padding-bottom: 3px; }
h3 { font-size: 14px; margin: 14px 0 4px; } h4 { font-size: 13px; margin: 10px 0 4px; }
section { margin-top: 18px; }
figure.plot { margin: 8px 0 14px; break-inside: avoid; } figcaption { font-size: 11px; color: #555; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 11px; }
thead { display: table-header-group; } tr { break-inside: avoid; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: left; vertical-align: top; }
table.numbers td { font-variant-numeric: tabular-nums; } th { background: #f3f3f3; }
.verdict { background: #eef6fb; border-left: 4px solid #0072B2; padding: 6px 10px; }
.verdict.none { background: #fdf1e8; border-left-color: #D55E00; }
.small, .meta { font-size: 11px; color: #555; } code { font-size: 11px; background: #f3f3f3; padding: 0 3px; }
ul { padding-left: 20px; margin: 4px 0; } h2, h3, h4 { break-after: avoid; }
table.setup, table.software, table.numbers { font-size: 10px; } table.setup td, table.setup th, table.software td { padding: 0 4px; }
ul.checks { list-style: none; padding-left: 4px; } ul.checks li { margin: 2px 0; }
.mark { display: inline-block; width: 1.1em; font-weight: bold; } .mark.pass { color: #1a7f37; }
.mark.warn { color: #9a6700; } .mark.fail { color: #cf222e; } .mark.not-run { color: #777; }
@page { size: A4; margin: 14mm 12mm; }
"""


@dataclass
class Report:
    html: str
    figures: int          # Plotly figures in the HTML
    sections: list[str]   # the section titles, in order (in print they follow on; tables break between rows)
    runs: list[RunMaterial]


def build_report(store, run_ids: list[str], tolerance: float = TOLERANCE_POINTS,
                 software: dict[str, str] | None = None, machine: str | None = None,
                 networks: dict[str, NetworkShape | None] | None = None) -> Report:
    """The report of `run_ids` (one, or several compared) as a self-contained HTML page (`networks`: see gather)."""
    tolerance = check_tolerance(tolerance)
    runs = gather(store, run_ids, tolerance, networks)
    made = datetime.now(timezone.utc).isoformat(timespec="seconds")
    versions = {**software_versions(), **(software or {})}
    title = (f"Lottery ticket report: {runs[0].name}" if len(runs) == 1
             else f"Lottery ticket report: {len(runs)} runs compared")
    accuracy, n_acc = accuracy_section(runs, tolerance)
    layers, n_layers = layers_section(runs)
    benches = [bench_html(r) for r in runs]
    deployment, n_deploy = "".join(h for h, _ in benches), sum(n for _, n in benches)  # a break-even figure each
    sections = [
        ("Summary and recommendation",
         f"<h3>The question</h3>{question_html(runs, tolerance)}"
         "<h3>Recommendation</h3><p class=\"small\">The sparsest round whose ticket stays within the tolerance of the "
         "dense network, judged on its mean test accuracy over trials and, with 2 or more trials, on the lower end of "
         "its spread (the lowest trial with 2 trials, the 95 % confidence interval's lower bound from 3).</p>"
         + "".join(recommendation_html(r, tolerance) for r in runs) + across_runs(runs, tolerance)
         + "<h3>Caveats</h3>"
         + "".join((f"<h4>{esc(r.name)} ({esc(r.id)})</h4>" if len(runs) > 1 else "")
                   + _list([_with_code(c) for c in caveats(r, tolerance)]) for r in runs)
         + "<h3>Sanity checks</h3>" + "".join(checks_html(r, len(runs) > 1) for r in runs)),
        ("Setup", setup_table(runs)
         + "<h3>Software and machine (where this report was made)</h3>"
         + _table(["", ""], [[k, v] for k, v in versions.items()] + [["machine", machine or machine_text()]],
                  "software")),
        ("Sparsity and accuracy: the ticket against the controls", accuracy),
        ("Weights remaining per layer", layers),
        ("Deployment: what the ticket buys, measured", deployment),
    ]
    header = (f"<h1>{esc(title)}</h1><p class=\"meta\">Made {esc(made)} from the run store by Lottery Ticket "
              f"Explorer (<code>python -m lth_core report {esc(' '.join(r.id for r in runs))} --tolerance "
              f"{tolerance:g}</code>).</p>")
    body = header + "".join(f'<section class="{"first" if i == 0 else ""}"><h2>{esc(name)}</h2>{content}</section>'
                   for i, (name, content) in enumerate(sections))
    page = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{esc(title)}</title>"
            f"<style>{CSS}</style><script type=\"text/javascript\">{get_plotlyjs()}</script></head>"
            f"<body>{body}</body></html>")
    return Report(page, n_acc + n_layers + n_deploy, [name for name, _ in sections], runs)


# ---- the PDF ------------------------------------------------------------------------------------

def pdf_unavailable(chromium: Path | str | None = None) -> str | None:
    """Why no PDF can be printed here (one line), or None when it can."""
    chromium = chromium or CHROMIUM
    if not Path(chromium).exists():
        return f"no PDF: Chromium is not installed at {chromium} (apt-get install chromium); the HTML report is complete"
    if importlib.util.find_spec("playwright") is None:
        return "no PDF: Playwright for Python is not installed (pip install playwright); the HTML report is complete"
    return None


def html_to_pdf(html_path: Path | str, pdf_path: Path | str, figures: int,
                chromium: Path | str | None = None) -> None:
    """Print `html_path` to `pdf_path` with headless Chromium (Playwright's page.pdf, A4) once its `figures`
    Plotly figures have drawn. PdfUnavailable (one line) when that cannot be done."""
    chromium = chromium or CHROMIUM
    why = pdf_unavailable(chromium)
    if why:
        raise PdfUnavailable(why)
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 900, "height": 1200})
                page.goto(Path(html_path).absolute().as_uri(), wait_until="load", timeout=PDF_TIMEOUT_MS)
                page.wait_for_function(f"document.querySelectorAll('.plotly-graph-div .main-svg').length >= {figures}",
                                       timeout=PDF_TIMEOUT_MS)
                page.pdf(path=str(pdf_path), format="A4", print_background=True, prefer_css_page_size=True)
            finally:
                browser.close()
    except PlaywrightError as exc:
        raise PdfUnavailable(f"no PDF: Chromium could not print the report ({str(exc).splitlines()[0]})") from None


def write_report(store, run_ids: list[str], out: Path | str, *, pdf: bool = False,
                 tolerance: float = TOLERANCE_POINTS, software: dict[str, str] | None = None,
                 networks: dict[str, NetworkShape | None] | None = None
                 ) -> tuple[Report, Path, Path | None, str | None]:
    """Write the HTML report to `out` (and `out` with .pdf beside it when `pdf`). Returns (report, html path,
    pdf path or None, why the PDF was skipped or None)."""
    out = Path(out)
    report = build_report(store, run_ids, tolerance, software, networks=networks)
    try:
        out.write_text(report.html, encoding="utf-8")
    except OSError as exc:
        raise ConfigError("out", f"cannot write {out} ({exc.strerror or exc})") from None
    if not pdf:
        return report, out, None, None
    pdf_path = out.with_suffix(".pdf")
    try:
        html_to_pdf(out, pdf_path, report.figures)
    except PdfUnavailable as exc:
        return report, out, None, str(exc)
    return report, out, pdf_path, None
