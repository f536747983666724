"""Playground: a tiny network on a 2-D toy set, pruned round by round while you watch.

Training runs here, in the page's process, not in the background worker: the net is tiny and the work
bounded. 2×32×32×k weights (about 1,200), 600 steps of 60 points a round, ticket, reinit and random mask
stacked into one pass: one round takes 0.3–0.8 s on a busy 2-core machine (see the README), and every
click or Play tick trains exactly one round, at most `PlaygroundSettings.rounds` + 1 in all. Sending a
round to the worker would cost more than the round itself (a process start imports PyTorch). Play runs
in a fragment that reruns every second, so the rest of the page stays responsive.

The view is in the URL, as on the other pages: ?data=spirals&seed=1&round=5 reproduces it. A link to a
round not trained yet trains up to it one round per fragment tick (the page never waits on more than one
round), then shows it; a value that does not fit is named with what the field accepts.
"""
import copy
import time

import streamlit as st

from lth_core.engine.playground import (PLAYGROUND_DATASETS, Playground, PlaygroundSettings, blank_panel_note,
                                        decision_grid, grid_extent, input_output_paths, network_edges, network_nodes,
                                        new_playground, play_round)
from ui import playground_plots as pp
from ui.widgets import bad_link, url_choice

SEEDS = list(range(100))  # ?seed= accepts these

RATES = PlaygroundSettings().config().rate_for  # the engine's rates: the output layer is pruned at half the rate
HIDDEN, OUTPUT = f"{100 * RATES['fc']:g} %", f"{100 * RATES['output']:g} %"

st.title("Playground: watch a winning ticket appear")
intro = st.empty()  # filled once the network is known: how much of it a round prunes depends on its layers
INTRO = (
    f"A small network learns to tell the coloured points apart. **Prune a round** removes, in each hidden layer, "
    f"the {HIDDEN} of its remaining weights with the smallest magnitude (closest to zero, whatever their sign), and "
    f"{OUTPUT} in the small output layer, as the paper does: together {{share}} of the weights left, so each "
    "round keeps a little more than {kept} of the round before. It puts the rest back to the values they *started* "
    "from and trains again: "
    "that smaller network is the **winning ticket**. Two controls get the same number of weights: **reinit** "
    "(same weights kept, new random starting values) and **random mask** (a random set of weights kept). "
    "Each picture colours the plane by the class that network predicts; the dots are test points it never "
    "trained on. Press **Play** and watch: long after the controls lose the spiral, the ticket still draws it.")

data_col, seed_col, _ = st.columns([4, 1, 3])
with data_col:
    dataset = url_choice("data", PLAYGROUND_DATASETS, "Data", kind="radio", horizontal=True)
with seed_col:
    seed = url_choice("seed", SEEDS, "Seed", default=PlaygroundSettings.seed,
                      help="Draws the data, the starting weights and the random mask; the same seed gives the same rounds")
settings = PlaygroundSettings(dataset=dataset, seed=seed)


@st.cache_resource(show_spinner=False, max_entries=16)
def _round_zero(key: str, _settings: PlaygroundSettings) -> Playground:
    pg = new_playground(_settings)
    play_round(pg)
    return pg


def fresh_playground(settings: PlaygroundSettings) -> Playground:
    """A playground with its dense round 0 trained: once per settings for every session (the same seeds give
    the same round), each session getting a copy of its own to prune on from."""
    return copy.deepcopy(_round_zero(repr(settings), settings))


pg = st.session_state.get("pg")
if pg is None or pg.settings != settings:
    pg = st.session_state["pg"] = fresh_playground(settings)
    st.session_state["pg:playing"] = False
    st.session_state.pop("pg:goal", None)
totals = pg.net.layer_totals()
removed = sum(totals[layer] * RATES[kind] for layer, kind in pg.net.layer_kinds().items()) / sum(totals.values())
intro.markdown(INTRO.format(share=f"about {100 * removed:.0f} %", kept=f"{100 * (1 - RATES['fc']):g} %"))


def linked_round() -> int | None:
    """?round=N of the link the session opened with: the round to show, trained up to first. Read once: later
    the page writes the shown round there itself, and a rerun the browser asks for while Play ticks may carry
    the round before (which must not turn back the view). A value that is not a round of this playground is
    named, with the allowed ones."""
    if st.session_state.get("pg:link_read"):
        return None
    st.session_state["pg:link_read"] = True
    asked = st.query_params.get("round")
    if asked is None:
        return None
    rounds = list(range(settings.rounds + 1))
    if asked.strip().isdigit() and int(asked) in rounds:
        return int(asked)
    bad_link("round", [asked], rounds, "round", f"round {len(pg.rounds) - 1 if pg.rounds else 0}")
    return None


def step() -> None:
    """Train one more round and show it (also a button callback: it reads the session's playground)."""
    play_round(st.session_state["pg"])


def pressed_step() -> None:
    st.session_state.pop("pg:goal", None)
    step()


def toggle_play() -> None:
    st.session_state.pop("pg:goal", None)
    st.session_state["pg:playing"] = not st.session_state.get("pg:playing", False)


def start_again() -> None:
    st.session_state["pg"] = fresh_playground(st.session_state["pg"].settings)
    st.session_state["pg:playing"] = False
    st.session_state.pop("pg:goal", None)


if (goal := linked_round()) is not None:
    st.session_state["pg:goal"] = goal


if not pg.rounds:
    step()  # the dense net, round 0 (fresh_playground has it already): under a second


# callbacks, so that the buttons below already show the new state (Pause, a round more) in this run
playing = st.session_state.get("pg:playing", False) and not pg.finished
catching_up = st.session_state.get("pg:goal", -1) >= len(pg.rounds)  # a linked round not trained yet
left, mid, right, _ = st.columns([1.7, 1, 1.5, 3.8])  # wide enough for "Prune a round" at 1280 px
left.button("Prune a round", disabled=pg.finished or playing, on_click=pressed_step,
            help=f"Prune {HIDDEN} of each hidden layer's remaining weights ({OUTPUT} of the output layer's) and retrain")
mid.button("Pause" if playing else "Play", disabled=pg.finished, on_click=toggle_play,
           help="One round about every second")
right.button("Start again", on_click=start_again, help="Back to the dense network, round 0")
if pg.finished:
    st.caption(f"All {pg.settings.rounds} pruned rounds are done: move the round slider to look back, press "
               "**Start again**, or pick other data.")


@st.fragment(run_every=1.0 if playing else 0.2 if catching_up else None)
def board() -> None:
    pg = st.session_state["pg"]
    goal = st.session_state.get("pg:goal")
    if goal is not None and goal >= len(pg.rounds):  # one round a tick, drawn as it comes, up to the linked one
        step()
        if goal < len(pg.rounds):
            st.rerun()  # the whole page: the ticking stops
        st.caption(f"Training up to round {goal}, as the link asks: round {len(pg.rounds) - 1} of {goal} done…")
    elif st.session_state.get("pg:playing") and not pg.finished:
        step()
        if pg.finished:
            st.session_state["pg:playing"] = False
            st.rerun()  # the whole page: Play stops ticking and its button says Play again
    # no key: a new round changes the options, hence the widget, which then starts at its default, the
    # newest round (or the round a link asked for); between new rounds the slider keeps the round the user chose
    shown_by_default = goal if goal is not None and goal < len(pg.rounds) else len(pg.rounds) - 1
    slot = st.empty()

    def round_slider() -> int:
        return slot.select_slider("Round", options=list(range(len(pg.rounds))), value=shown_by_default,
                                  format_func=lambda r: f"{r} · {pg.rounds[r].weights_remaining:.0%} of weights")

    # A round more (Play, a link, Prune a round) changes the slider's options, so it shows its default: then it is
    # drawn after the panels below are computed, or it ran ahead of them (round 5 over round 4's panels) for as
    # long as they took. A round the user picks is read from the slider first, as usual.
    new_round = st.session_state.get("pg:slider_rounds") != len(pg.rounds)
    st.session_state["pg:slider_rounds"] = len(pg.rounds)
    rnd = shown_by_default if new_round else round_slider()
    # a link to this view (while training up to a linked round, that round)
    st.query_params["round"] = str(goal if goal is not None and goal >= len(pg.rounds) else rnd)
    started = time.perf_counter()
    shown = pg.rounds[rnd]
    extent = grid_extent(pg.data)
    nets = [("dense", pg.rounds[0].params["ticket"], pg.rounds[0])]
    if rnd > 0:
        nets += [(v, shown.params[v], shown) for v in ("ticket", "reinit", "random")]
    grids = decision_grid(pg.net, [p for _, p, _ in nets], extent)
    panels = [(pp.panel_title(v, r.test_accuracy["ticket" if v == "dense" else v], r.weights_remaining), g)
              for (v, _, r), g in zip(nets, grids)]
    panels += [(pp.panel_title(v), None) for v in ("ticket", "reinit", "random")[len(panels) - 1:]]
    figure = pp.boundary_figure(panels, extent, pg.data.x_test, pg.data.y_test, pg.data.class_names)
    st.plotly_chart(figure, key="pg:boundaries")
    if new_round:
        rnd = round_slider()  # the same round (its default), sent after the panels it sits above
    if rnd > 0:  # a flat panel (the random mask at round 7 turns grey) says why, under the figure
        ticket_paths = input_output_paths(pg.net, shown.masks["ticket"])
        for (variant, _, _), probs in zip(nets[1:], grids[1:]):
            who = {"ticket": "winning ticket", "reinit": "reinit", "random": "random mask"}[variant]
            note = blank_panel_note(pg.net, shown.masks[variant], probs, pg.data.class_names, f"The {who}",
                                    None if variant == "ticket" else ticket_paths)
            if note:
                st.caption(f"**{who.capitalize()} panel:** {note}")
    if rnd == 0:
        st.info("Round 0 is the full (dense) network. Press **Prune a round** or **Play** to find the ticket.")
    else:
        acc = shown.test_accuracy
        st.markdown(f"With **{shown.weights_remaining:.1%}** of the weights, the winning ticket gets "
                    f"**{acc['ticket']:.0%}** of the test points right; reinit {acc['reinit']:.0%}, the random mask "
                    f"{acc['random']:.0%} (guessing: {1 / len(pg.data.class_names):.0%}; the dense network "
                    f"{pg.rounds[0].test_accuracy['ticket']:.0%}).")
    who = "The dense network (round 0)" if rnd == 0 else f"The winning ticket at round {rnd}"
    st.markdown(f"**{who}** ({shown.weights_remaining:.1%} of its weights): each line is a "
                "weight, thicker when larger; orange adds, blue subtracts; grey lines were pruned and fade round by round.")
    nodes = network_nodes(pg.net, ("x1", "x2"), pg.data.class_names)
    st.plotly_chart(pp.diagram_figure(nodes, network_edges(pg.net, pg.rounds, rnd), rnd), key="pg:diagram")
    st.caption(f"Round {rnd} trained in {shown.seconds:.2f} s (all its networks together); drawn in "
               f"{time.perf_counter() - started:.2f} s. {len(pg.rounds) - 1} of {pg.settings.rounds} pruned rounds done.")


board()
