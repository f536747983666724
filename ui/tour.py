"""The guided tour (issue 12): eight steps through the lottery ticket hypothesis. Each step is one short
paragraph, one figure from a real run in the store (drawn by the builders of lth_core/analysis/plots.py and
lth_core/analysis/mask_plots.py), a line of what this run shows, one question to think about, and a link to the page where
a student tries it on real data. The steps are data (`STEPS`); `show_step` draws one.

The tour shows the shipped example run by default. A store with no run to show gets a small real run
(`SMALL_RUN`, well under a minute) started by `start_small_run`, which the page shows filling in.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from lth_core import ExperimentConfig, jobs

from lth_core.analysis import statistics
from lth_core.engine.presets import FURTHER, PRESETS
from lth_core.engine.variants import ordered
from lth_core.example import example_runs
from lth_core.analysis.recommend import TOLERANCE_POINTS, gap_points, points_text, within_tolerance
from lth_core.runs.store import RunInfo, StoreError

from lth_core.analysis import mask_plots, plots
from lth_core.analysis.summary import dense_accuracy, means, pct, rounds_done_text, round_sentence
from .text import md
from .text import plotly
from .widgets import ICONS, PAGES, chart, listed_runs, run_context, run_network, store

# The run started when the tour opens with nothing to show: the paper's LeNet-300-100 on real MNIST digits,
# pruned 20 % a round with both controls, at 1 epoch a round (about 20 s on a 2-core laptop, most of it
# starting PyTorch; measured in the commit that added it).
SMALL_RUN = ExperimentConfig(dataset="mnist-5k", arch="lenet-300-100", rounds=5, prune_rate=0.2, epochs=1,
                             controls=("reinit", "random"), trials=1, seed=0)
SMALL_RUN_NAME = "Tour: a small LeNet-300-100 run on mnist-5k"
SMALL_RUN_SETTING = "tour.run"  # the store remembers the run the tour started, so a reload starts no second one


# ---- the run a tour shows --------------------------------------------------------------------------
@dataclass
class TourRun:
    """One run of the store, read once per drawing of a step: its info, rounds table and what the figures need."""

    info: RunInfo
    rounds: pd.DataFrame

    @classmethod
    def read(cls, run_id: str) -> "TourRun":
        return cls(store().get_run(run_id), store().rounds(run_id))

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def last(self) -> int:
        """The last finished round (0 while only the dense network is trained)."""
        return int(self.rounds["round"].max()) if not self.rounds.empty else -1

    @property
    def trial(self) -> int:
        return int(self.rounds.trial.min())

    @cached_property
    def layers(self) -> pd.DataFrame:
        return store().layers(self.id)

    def masks(self, round: int, variant: str = "ticket") -> dict[str, np.ndarray]:
        return store().masks(self.id, self.trial, round, variant)

    def part(self, round: int) -> str:
        """The round and trial a one-trial figure shows."""
        return f"round {round}, trial {self.trial}"

    def context(self, part: str | None = None, narrow: bool = False) -> str:
        """The line under a figure's title naming its run (a half-width figure names only the run's id)."""
        head = f"{plotly(self.info.config.dataset)} · run {self.id}" if narrow else run_context(self.info)
        return head + (f" · {part}" if part else "")


def default_run() -> str | None:
    """The run the tour opens on: the shipped example, else the run the tour started (when they have a round)."""
    runs = listed_runs()
    ready = set(runs[runs.rounds_done > 0].id)
    for run_id in [*example_runs(store()), store().setting(SMALL_RUN_SETTING)]:
        if run_id in ready:
            return run_id
    return None


def small_run() -> RunInfo | None:
    """The small run the tour started, if it is still in the store."""
    run_id = store().setting(SMALL_RUN_SETTING)
    if not run_id:
        return None
    try:
        return store().get_run(run_id)
    except StoreError:  # deleted since
        return None


def start_small_run() -> str:
    """Queue `SMALL_RUN` in the background worker and remember it; returns its id at once."""
    run_id = jobs.submit(SMALL_RUN, name=SMALL_RUN_NAME)
    store().set_setting(SMALL_RUN_SETTING, run_id)
    return run_id


def progress(info: RunInfo) -> None:
    """Where a run still training stands, for a tour that shows it filling in; rounds counted as Live run
    counts them (round 0 trains the dense network, then come the pruned rounds 1 … N)."""
    if info.round is None:
        st.progress(0.0, text="Starting the run: loading PyTorch and the digits…" if info.status == "running"
                    else "Queued for the background worker (it starts PyTorch first)…")
        return
    pruned = info.rounds_total
    in_round = (info.iteration or 0) / info.iterations if info.iterations else 0.0
    now = "the dense network (round 0)" if info.round == 0 else \
        f"pruned round {info.round}{f' of {pruned}' if pruned is not None else ''}"
    st.progress(min(1.0, (info.rounds_done + in_round) / ((pruned or 0) + 1)),
                text=f"Training {now} · {rounds_done_text(info.rounds_done, pruned)} · each step's figure fills in "
                     "as the rounds it needs finish")


# (figure, the topic of its "What am I looking at?" note in ui.notes, the part of the run it shows: None = all)
Figure = tuple[go.Figure, str | None, str | None]


# ---- the steps ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Link:
    """Where a student tries a step on real data: a page, opened on the tour's run (and a round: -1 = the last)."""

    page: str
    label: str
    round: int | None = None
    with_run: bool = True
    params: tuple[tuple[str, str], ...] = ()  # more of the link's query (?preset=…), or another run's ?run=
    note: str = ""  # a line under the link (Markdown-safe): what the student will see there


@dataclass(frozen=True)
class Step:
    title: str   # a few words, for the step picker
    text: str    # one short paragraph (Markdown): the idea, with the paper's numbers
    question: str  # to think about before going on
    figures: Callable[[TourRun], list[Figure]]
    finding: Callable[[TourRun], str]  # what this run shows, in numbers (Markdown-safe)
    links: tuple[Link, ...]
    needs_round: int = 1  # the figure needs this round finished (0: the dense network)
    needs: tuple[str, ...] = ()  # the controls the figure needs
    more: str = ""  # Markdown after the figure and its numbers
    further: Callable[["TourRun"], Link | None] | None = None  # where to go when this run cannot show the step's point


def _starting_weights(run: TourRun) -> list[Figure]:
    init = store().init_weights(run.id, run.trial)
    weights = np.concatenate([init[f"{layer}.weight"].ravel() for layer in run.info.layers if f"{layer}.weight" in init])
    fig = mask_plots.init_magnitude_histogram(weights, np.ones_like(weights, bool))
    fig.data[0].name = f"every weight ({weights.size:,})"
    fig.update_layout(title_text=f"The {weights.size:,} starting weights: random numbers near zero", showlegend=True)
    fig.update_xaxes(title_text="size of the starting weight, |w|")
    fig.update_yaxes(title_text="share of the weights (%)")
    return [(fig, None, run.part(0))]


def _dense_training(run: TourRun) -> list[Figure]:
    curves = store().curves(run.id, round=0)
    fig = plots.curves_by_variant(curves, 0, title="Round 0: the dense network learns")
    stop = run.rounds[run.rounds["round"] == 0]["early_stop_iteration"].mean()
    if np.isfinite(stop):  # the text names this iteration: show it on the curve
        fig.add_vline(x=float(stop), line_dash="dash", line_color="#777",
                      annotation_text="lowest validation loss (early stopping)", annotation_position="bottom left")
    return [(fig, None, "round 0")]


def _first_pruning(run: TourRun) -> list[Figure]:
    layers = run.layers[run.layers.trial == run.trial]
    return [(mask_plots.layer_bars(layers, 1), "layer_bars", run.part(1))]


MIN_SPAN_POINTS = 4.0  # the accuracy axis spans at least this much, so a few tenths of noise do not look like a fall


def _accuracy(*variants: str) -> Callable[[TourRun], list[Figure]]:
    def figures(run: TourRun) -> list[Figure]:
        fig = plots.accuracy_vs_weights(run.rounds, variants=variants, planned=run.info.planned_remaining,
                                        title="Test accuracy as the network is pruned")
        values = [float(y) for trace in fig.data if trace.y is not None for y in trace.y
                  if isinstance(y, (int, float)) and np.isfinite(y)]
        if values and max(values) - min(values) < MIN_SPAN_POINTS:  # autoscaled, 89.8–90.2 read as a plunge
            top = max(values) + 0.5
            fig.update_yaxes(range=[top - MIN_SPAN_POINTS - 1.0, top])
        return [(fig, "accuracy", None)]
    return figures


def _first_layer(run: TourRun) -> list[Figure]:
    network, _ = run_network(run.info.id)  # stored with the run: its data is not loaded
    layer, mask = next(iter(run.masks(run.last).items()))  # the first layer: its inputs are the pixels
    shape = network.input_shape if network else ()
    if network is None or network.input_kind != "image" or mask.ndim != 2 or mask.shape[1] != int(np.prod(shape)):
        return []  # `show_step` says why: this step needs a fully connected first layer on images
    first = {v: run.masks(run.last, v)[layer] for v in ("ticket", "random") if v in run.info.variants}
    return [(mask_plots.survival_map(mask, shape, layer), "survival", run.part(run.last)),
            (mask_plots.survival_by_distance(first, shape, layer), "survival_rings", run.part(run.last)),
            (mask_plots.receptive_fields(mask, shape), "fields", run.part(run.last))]


def _gap(run: TourRun) -> list[Figure]:
    return [(plots.accuracy_gap_by_round(run.rounds), "gap", None)]


# ---- what the run shows, in numbers ---------------------------------------------------------------
def _network(run: TourRun) -> str:
    dense = run.layers[(run.layers["round"] == 0) & (run.layers.trial == run.trial)]
    sizes = ", ".join(f"{md(layer)} {total:,}" for layer, total in zip(dense.layer, dense.total))
    c = run.info.config
    return (f"This run's network, {md(c.arch)} on {md(c.dataset)}, has **{int(dense.total.sum()):,} weights** "
            f"({sizes}); trial {run.trial}'s starting values are drawn above.")


def _dense(run: TourRun) -> str:
    es = run.rounds[run.rounds["round"] == 0]
    return (f"{round_sentence(run.rounds, 0)} Its validation loss was lowest at iteration "
            f"{es.early_stop_iteration.mean():.0f} of {run.info.iterations or '?'} (mean over trials).")


def _pruned(run: TourRun) -> str:
    first = run.layers[(run.layers["round"] == 1) & (run.layers.variant == "ticket") & (run.layers.trial == run.trial)]
    kept, total = int(first.remaining.sum()), int(first.total.sum())
    c = run.info.config
    reset = {"init": "**reset to their starting values**", "none": "**not reset** (this run fine-tunes: reset none)"}
    how = reset.get(c.reset, f"**rewound** to their values at iteration {c.rewind_iteration} of the dense run "
                             f"(reset {md(c.reset)}), not to the start")
    return (f"After round 1, **{pct(kept / total)} of the weights remain** ({kept:,} of {total:,}); this run "
            f"prunes {md(c.scope)} and its survivors are {how}.")


def _held(run: TourRun, variant: str) -> str:
    """How far `variant` can be pruned: the critical sparsity every page prints (lth_core.analysis.statistics)."""
    return statistics.critical_sentence(statistics.critical_sparsity(run.rounds, TOLERANCE_POINTS), variant,
                                        TOLERANCE_POINTS)


def _ticket(run: TourRun) -> str:
    m = means(run.rounds).query("variant == 'ticket' and round == @run.last").iloc[0]
    return (f"At {pct(m.weights_remaining)} of the weights (round {run.last}) the ticket reaches **{pct(m.test_accuracy)}**; "
            f"the dense network {pct(dense_accuracy(run.rounds))}. {_held(run, 'ticket')}")


def _reinit(run: TourRun) -> str:
    m = means(run.rounds).query("round == @run.last").set_index("variant")
    return (f"At {pct(m.weights_remaining.iloc[0])} of the weights the ticket reaches {pct(m.test_accuracy['ticket'])}, "
            f"reinit {pct(m.test_accuracy['reinit'])}; dense {pct(dense_accuracy(run.rounds))}. {_held(run, 'reinit')}")


def _random(run: TourRun) -> str:
    return f"{round_sentence(run.rounds, run.last)} {_held(run, 'random')}"


NEAR, FAR = 0.22, 0.45  # step 7's numbers: pixels within NEAR × the image's side of its centre, and FAR × or more


def _pixels(run: TourRun) -> str:
    masks = {v: run.masks(run.last, v) for v in ("ticket", "random") if v in run.info.variants}
    shape = run_network(run.info.id)[0].input_shape  # shown only after _first_layer found it stored
    side = min(shape[-2:])
    near, far = round(NEAR * side), round(FAR * side)  # 6 and 13 pixels of a 28×28 digit
    parts = []
    for variant, mask in masks.items():
        kept = mask_plots.input_survival(next(iter(mask.values())), shape)
        rows, cols = np.mgrid[0:kept.shape[0], 0:kept.shape[1]]
        distance = np.hypot(rows - (kept.shape[0] - 1) / 2, cols - (kept.shape[1] - 1) / 2)
        parts.append(f"{'the ticket' if variant == 'ticket' else 'the random mask'}: {kept[distance < near].mean():.1f} "
                     f"within {near} pixels of the centre, {kept[distance >= far].mean():.1f} at {far} pixels or more")
    return (f"Round {run.last}, trial {run.trial}: connections a pixel keeps into the first layer, on average — "
            f"{'; '.join(parts)}.")


def _breaks(rounds: pd.DataFrame) -> bool | None:
    """Whether the ticket's mean over trials, step 8's bars, falls below the tolerance of the dense network at some
    round (statistics.critical_sparsity's one rule; None: no pruned round). One trial falling alone is no break."""
    critical = statistics.critical_sparsity(rounds, TOLERANCE_POINTS)
    ticket = critical[critical["variant"] == "ticket"]
    return None if ticket.empty else not bool(ticket["upper_bound"].iloc[0])


def _first_below(rounds: pd.DataFrame, variant: str) -> pd.Series | None:
    """The first pruned round whose bar in step 8's figure (the mean over trials, minus dense) falls below the
    tolerance band: a row of `means`, or None while the variant stays within it."""
    dense = dense_accuracy(rounds)
    m = means(rounds)
    rows = m[(m["variant"] == variant) & (m["round"] > 0)].sort_values("round")
    if dense is None or rows.empty:
        return None
    below = rows[[not within_tolerance(gap_points(a, dense)) for a in rows["test_accuracy"]]]
    return None if below.empty else below.iloc[0]


def _look_at(run: TourRun) -> str:
    """What to look at in step 8's figure, in plain words: where each variant's bars drop below the grey band."""
    parts = []
    for variant in ordered(run.rounds["variant"].unique()):
        first = _first_below(run.rounds, variant)
        bars = f"the **{plots.LABELS[variant]}** bars"
        if first is None:
            parts.append(f"{bars} stay above its lower edge in every round")
        else:
            parts.append(f"{bars} drop below it from round {int(first['round'])} "
                         f"({pct(first['weights_remaining'])} of the weights)")
    ticket = _first_below(run.rounds, "ticket")
    where = f" Round {int(ticket['round'])} is where this run's ticket breaks." if ticket is not None else ""
    return (f"**Look at the bars against the grey band** (within {TOLERANCE_POINTS:g} point of the dense network): "
            f"{'; '.join(parts)}.{where}")


def _limits(run: TourRun) -> str:
    critical = statistics.critical_sparsity(run.rounds, TOLERANCE_POINTS)
    said = " ".join(statistics.critical_sentence(critical, v, TOLERANCE_POINTS) for v in critical["variant"])
    look = _look_at(run)
    if _breaks(run.rounds) is False:  # honest: this run cannot show the step's point
        sparsest = pct(float(run.rounds["weights_remaining"].min()))
        return (f"**This run's ticket does not break in its range:** down to {sparsest} of the weights, its sparsest "
                f"round, it stays within {TOLERANCE_POINTS:g} point of the dense network. To see where it breaks, "
                f"prune further (the link below).\n\n{look}\n\n{said}")
    return f"{look}\n\n{said}"


# a run shows where a ticket breaks when its ticket first held down to this share of the weights or fewer: a
# measured round (statistics.critical_sparsity), so four rounds of 20 % (41 %) or one of 60 % (40 %) count, while
# a ticket below dense by its second usual round does not (it was 0.3 of an interpolated value between rounds)
HELD_TO = 0.45


def shows_breaking(other: RunInfo, rounds: pd.DataFrame, like: RunInfo) -> bool:
    """Whether `other` shows step 8's point to a student looking at `like`: the same network on the same data,
    pruned iteratively with the reset to init, whose ticket held down to HELD_TO of the weights or fewer and
    then fell below the tolerance. A run whose ticket is poor from its first round (a one-shot run, a tiny
    table) breaks too, but shows nothing about where a working ticket breaks."""
    c, mine = other.config, like.config
    if (c.dataset, c.arch, c.schedule, c.reset) != (mine.dataset, mine.arch, "iterative", "init"):
        return False
    if not _breaks(rounds):
        return False
    critical = statistics.critical_sparsity(rounds, TOLERANCE_POINTS)
    ticket = critical[critical["variant"] == "ticket"]
    return not ticket.empty and float(ticket["fraction"].iloc[0]) <= HELD_TO


def _further(run: TourRun) -> Link | None:
    """When the run's ticket does not break: a finished run of the store that shows where the same network's
    ticket breaks (`shows_breaking`), opened on its step 8; else New experiment filled with the preset that
    prunes the paper's LeNet further."""
    if _breaks(run.rounds) is not False:
        return None
    runs = store().list_runs()
    for other in runs[(runs.status == "finished") & (runs.id != run.id)].id[:50]:
        info, rounds = store().get_run(other), store().rounds(other)
        if shows_breaking(info, rounds, run.info):
            first = _first_below(rounds, "ticket")
            return Link("tour", f"step 8 on the run “{md(info.name)}”", with_run=False,
                        params=(("run", other), ("step", "8")),
                        note=f"The same {md(info.config.arch)} on {md(info.config.dataset)}, pruned to "
                             f"{pct(float(rounds['weights_remaining'].min()))}: its ticket's bars drop below the grey "
                             f"band from round {int(first['round'])} ({pct(first['weights_remaining'])} of the weights).")
    preset = PRESETS[FURTHER]
    return Link("new", f"New experiment with the preset “{preset.title}”", with_run=False,
                params=(("preset", FURTHER),),
                note="The paper's LeNet pruned to about 1.2 % of the weights (a few minutes). When it has finished, "
                     "open this step on that run and look at the last rounds' bars.")


STEPS: list[Step] = [
    Step("A random network",
         "A neural network is layers of connections, each carrying a number: a **weight**. LeNet-300-100, the "
         "network of Frankle & Carbin's first experiment, links 784 pixels to 300 units (neurons), then 100, then 10 digits: "
         "266,200 weights. Before training, every weight is a **random number near zero**. The *lottery ticket "
         "hypothesis* claims that hidden in such a random network is a small sub-network that, trained alone **from "
         "these same starting values**, learns as well as the whole network.",
         "If you trained the same network again from different random starting values, would you expect the same "
         "accuracy? Why might the starting values matter at all?",
         _starting_weights, _network, (Link("masks", "Masks, round 0: every layer at the start", round=0),),
         needs_round=0),
    Step("Train it",
         "Training shows the network labelled examples, a small batch at a time, and nudges every weight so it makes "
         "fewer mistakes. This full network is the **dense** baseline (round 0). Its accuracy is measured on test "
         "digits it never trained on; held-out validation digits tell when it did best — the *early-stopping "
         "iteration*, where its validation loss is lowest.",
         "The curve climbs fast, then flattens. What is the network still learning once the accuracy hardly moves?",
         _dense_training, _dense, (Link("results", "Results: the learning curves of every round"),), needs_round=0),
    Step("Prune and reset",
         "Now prune: in every layer, remove the 20 % of the weights that ended training **smallest** (the output "
         "layer 10 %, as in the paper) — small weights change the output least. Then the surprising part: **reset "
         "every surviving weight to its original random starting value** from step 1, as if training had never "
         "happened. The mask of survivors plus those starting values is a candidate *winning ticket*.",
         "Why reset the survivors to where they started, instead of keeping the trained values they ended with?",
         _first_pruning, _pruned, (Link("masks", "Masks, round 1: which weights survived", round=1),)),
    Step("Repeat",
         "Train the pruned network from those starting values, prune 20 % of what is left, reset, and train again. "
         "Each round keeps about 80 % of the last, so LeNet is at 21.1 % of its weights after 7 rounds and 8.7 % "
         "after 11. In the paper, LeNet's tickets stayed **at least as accurate as the dense network** (the dotted "
         "line) down to about 3.6 % of the weights, and reached their best validation loss sooner.",
         "In the paper a ticket with a tenth of the weights matched the whole network. What were the other 90 % "
         "doing?",
         _accuracy("ticket"), _ticket, (Link("results", "Results: accuracy against weights remaining"),)),
    Step("Reinit falls behind",
         "Is the mask alone the secret — which connections survive? **Reinit** keeps the ticket's exact mask but "
         "draws **new random starting values**, and trains it the same way. In the paper, reinitialised LeNets "
         "start losing accuracy at about 21 % of the weights, long before the ticket does: the starting values the "
         "ticket was found with matter.",
         "Reinit has exactly the same connections as the ticket. What does the ticket have that reinit lacks?",
         _accuracy("ticket", "reinit"), _reinit,
         (Link("compare", "Compare: the ticket against reinit, round by round", round=-1),),
         needs=("reinit",)),
    Step("A random mask too",
         "Or is it only how many weights each layer keeps? A **random mask** prunes the same number of weights in "
         "every layer, chosen at random, and keeps the original starting values. It falls behind as well. Neither "
         "the mask alone nor the starting values alone make a winning ticket: it takes this mask **together with** "
         "these starting values.",
         "Reinit kept the mask and lost the starting values; the random mask kept the starting values and lost the "
         "mask. Which one would you expect to hurt more, and why?",
         _accuracy("ticket", "reinit", "random"), _random,
         (Link("compare", "Compare: the ticket against both controls", round=-1),),
         needs=("random",)),
    Step("The masks on MNIST",
         "On MNIST every input of the first layer is a pixel. The map counts, for each pixel, how many first-layer "
         "units still connect to it in the last round; the line chart averages the map over rings around the "
         "centre; the mosaic draws a few units as the pixels they still see. Pixels near the border are blank in "
         "almost every digit, so their weights get little or no training signal and stay small: magnitude pruning "
         "removes them more often. The difference is a few connections per pixel, too small to see in the map's "
         "colours; in the line chart, the ticket keeps more connections per pixel near the centre, where the "
         "strokes are, than near the border, while the random mask keeps about the same number everywhere.",
         "A random mask keeps every pixel about equally. What does the difference tell you about what pruning "
         "found — and could it find the same on data without a blank border?",
         _first_layer, _pixels, (Link("masks", "Masks: every layer of every round", round=-1),)),
    Step("Where it breaks; limits",
         "Keep pruning far enough and every ticket breaks (this run may stop before it does): in the paper LeNet's tickets fall below the dense network beyond "
         "about 3.6 % of the weights. The bars show how far each variant is from the dense network, round by round.",
         "If a ticket only shows up after training the full network, what is it good for? When would you train a "
         "small network directly instead?",
         _gap, _limits,
         (Link("compare", "Compare: the deployment savings of this run's tickets"),
          Link("new", f"New experiment with the preset “{PRESETS['rewind'].title}” (reset rewind:20)", with_run=False,
               params=(("preset", "rewind"),))),
         further=_further,
         more="Three honest limits:\n\n"
         "- **Bigger networks need rewinding.** For VGG-19 and ResNet at the usual learning rate, resetting to the "
         "starting values finds tickets no better than reinit; resetting the survivors to their values from early "
         "in training (0.1–7 % of the way) is what makes tickets appear (Frankle et al., *Stabilizing the lottery "
         "ticket hypothesis*, 2019). New experiment offers it as reset **rewind:K**.\n"
         "- **Results at scale are mixed.** Deep networks showed tickets only with a learning-rate warm-up or a "
         "lower learning rate, and methods that prune before any training (SNIP, GraSP, SynFlow) lose to magnitude "
         "pruning after training.\n"
         "- **Sparse is not automatically faster.** Pruning single weights leaves matrices of the same shape with "
         "zeros in them, and ordinary dense kernels do the same work; the savings need sparse formats, kernels or "
         "hardware. Compare counts what a sparse format *could* save."),
]


# ---- drawing a step ----------------------------------------------------------------------------------
def missing(step: Step, run: TourRun) -> str | None:
    """Why this run cannot draw the step's figure yet (or at all), or None when it can."""
    if run.last < step.needs_round:
        needed = "the dense network (round 0)" if step.needs_round == 0 else f"pruned round {step.needs_round}"
        if run.info.active:
            return (f"This step's figure needs {needed}, which is still training; it appears here as soon as that "
                    "round finishes (the page updates by itself).")
        return f"This run has no {needed}; choose a run with pruned rounds (the example has 12)."
    lacking = [v for v in step.needs if v not in run.info.variants]
    if lacking:
        return (f"This run trained no {plots.LABELS[lacking[0]]} control; choose a run that did (the example trains "
                "both), or tick it on New experiment.")
    if step.figures is _first_layer and (network := run_network(run.info.id))[0] is None:
        return ("This step draws the first layer over the input, whose shape is not known: "
                f"{md(network[1].rstrip('.'))}.")
    return None


def show_step(number: int, run: TourRun) -> None:
    """Step `number` (1-based) of STEPS for `run`: paragraph, figure(s), what the run shows, question, links."""
    step = STEPS[number - 1]
    st.subheader(f"Step {number} of {len(STEPS)}: {step.title}")
    st.markdown(step.text)
    if run.id == store().setting(SMALL_RUN_SETTING):
        st.caption(f"This is the small run the tour trained ({SMALL_RUN.rounds} rounds of {SMALL_RUN.epochs:g} epoch, "
                   f"{SMALL_RUN.trials} trial); "
                   "the example run, 12 rounds down to 7 %, shows the effects more clearly: load it on New experiment.")
    why = missing(step, run)
    figures = [] if why else step.figures(run)
    if why:
        st.info(why, icon=":material/hourglass_top:" if run.info.active else ":material/info:")
    elif not figures:
        st.info(f"This step needs a fully connected first layer on images; {md(run.info.config.arch)} on "
                f"{md(run.info.config.dataset)} has none. The example run (LeNet-300-100 on MNIST digits) does.",
                icon=":material/info:")
    else:
        for row in (figures[i:i + 2] for i in range(0, len(figures), 2)):  # two a row: three would be too narrow
            for column, (fig, note, part) in zip(st.columns(2) if len(figures) > 1 else [st.container()], row):
                with column:
                    chart(fig, note, context=run.context(part, narrow=len(figures) > 1),
                          tolerance=points_text(TOLERANCE_POINTS))  # the gap's note names the tolerance
        st.markdown(f"**In this run:** {step.finding(run)}")
        further = step.further(run) if step.further else None
        if further:
            st.page_link(PAGES[further.page], label=f"Go further: {further.label}", icon=":material/trending_down:",
                         query_params=dict(further.params))
            if further.note:
                st.caption(further.note)
    if step.more:
        st.markdown(step.more)
    st.info(f"**Think about it:** {step.question}", icon=":material/psychology_alt:")
    for link in step.links:  # one a line: side by side in columns, a long label was cut at the column's edge
        with_run = link.with_run and run.last >= 0  # a run with no round yet has nothing to show there
        params = ({"run": run.id} if with_run else {}) | dict(link.params)
        if link.round is not None and with_run:
            params["round"] = str(run.last if link.round < 0 else min(link.round, run.last))
        st.page_link(PAGES[link.page], label=f"Try it: {link.label}", icon=ICONS[link.page], query_params=params)
