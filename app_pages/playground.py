"""Playground: a tiny network on a 2-D toy set, pruned round by round while you watch.

Training runs here, in the page's process, not in the background worker: the net is tiny and the work
bounded. 2×32×32×k weights (about 1,200), 600 steps of 60 points a round, ticket, reinit and random mask
stacked into one pass: one round takes 0.3–0.8 s on a busy 2-core machine (see the README), and every
click or Play tick trains exactly one round, at most `PlaygroundSettings.rounds` + 1 in all. Sending a
round to the worker would cost more than the round itself (a process start imports PyTorch). Play runs
in a fragment that reruns every second, so the rest of the page stays responsive.
"""
import time

import streamlit as st

from lth_core.engine.playground import (PLAYGROUND_DATASETS, PlaygroundSettings, decision_grid, grid_extent, network_edges,
                                 network_nodes, new_playground, play_round)
from ui import playground_plots as pp
from ui.widgets import url_choice

st.title("Playground: watch a winning ticket appear")
st.markdown(
    "A small network learns to tell the coloured points apart. **Prune a round** removes the 30 % of its "
    "weights with the smallest values, puts the rest back to the values they *started* from and trains again: "
    "that smaller network is the **winning ticket**. Two controls get the same number of weights: **reinit** "
    "(same weights kept, new random starting values) and **random mask** (a random set of weights kept). "
    "Each picture colours the plane by the class that network predicts; the dots are test points it never "
    "trained on. Press **Play** and watch: long after the controls lose the spiral, the ticket still draws it.")

dataset = url_choice("data", PLAYGROUND_DATASETS, "Data", kind="radio", horizontal=True)
settings = PlaygroundSettings(dataset=dataset)
pg = st.session_state.get("pg")
if pg is None or pg.settings != settings:
    pg = st.session_state["pg"] = new_playground(settings)
    st.session_state["pg:playing"] = False


def step() -> None:
    """Train one more round and show it (also a button callback: it reads the session's playground)."""
    play_round(st.session_state["pg"])


def toggle_play() -> None:
    st.session_state["pg:playing"] = not st.session_state.get("pg:playing", False)


def start_again() -> None:
    st.session_state["pg"] = new_playground(st.session_state["pg"].settings)
    st.session_state["pg:playing"] = False


if not pg.rounds:
    step()  # the dense net, round 0: under a second


# callbacks, so that the buttons below already show the new state (Pause, a round more) in this run
playing = st.session_state.get("pg:playing", False) and not pg.finished
left, mid, right, _ = st.columns([1.2, 0.8, 1.2, 5])
left.button("Prune a round", disabled=pg.finished or playing, on_click=step,
            help="Prune 30 % of the ticket's weights and retrain")
mid.button("Pause" if playing else "Play", disabled=pg.finished, on_click=toggle_play,
           help="One round about every second")
right.button("Start again", on_click=start_again, help="Back to the dense network, round 0")
if pg.finished:
    st.caption(f"All {pg.settings.rounds} pruned rounds are done: move the round slider to look back, press "
               "**Start again**, or pick other data.")


@st.fragment(run_every=1.0 if playing else None)
def board() -> None:
    pg = st.session_state["pg"]
    if st.session_state.get("pg:playing") and not pg.finished:
        step()
        if pg.finished:
            st.session_state["pg:playing"] = False
            st.rerun()  # the whole page: Play stops ticking and its button says Play again
    # no key: a new round changes the options, hence the widget, which then starts at its default, the
    # newest round; between new rounds the slider keeps the round the user chose
    rnd = st.select_slider("Round", options=list(range(len(pg.rounds))), value=len(pg.rounds) - 1,
                           format_func=lambda r: f"{r} · {pg.rounds[r].weights_remaining:.0%} of weights")
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
    st.plotly_chart(pp.boundary_figure(panels, extent, pg.data.x_test, pg.data.y_test, pg.data.class_names),
                    key="pg:boundaries")
    if rnd == 0:
        st.info("Round 0 is the full (dense) network. Press **Prune a round** or **Play** to find the ticket.")
    else:
        acc = shown.test_accuracy
        st.markdown(f"With **{shown.weights_remaining:.1%}** of the weights, the winning ticket gets "
                    f"**{acc['ticket']:.0%}** of the test points right; reinit {acc['reinit']:.0%}, the random mask "
                    f"{acc['random']:.0%} (guessing: {1 / len(pg.data.class_names):.0%}; the dense network "
                    f"{pg.rounds[0].test_accuracy['ticket']:.0%}).")
    st.markdown(f"**The winning ticket at round {rnd}** ({shown.weights_remaining:.1%} of its weights): each line is a "
                "weight, thicker when larger; orange adds, blue subtracts; grey lines were pruned and fade round by round.")
    nodes = network_nodes(pg.net, ("x1", "x2"), pg.data.class_names)
    st.plotly_chart(pp.diagram_figure(nodes, network_edges(pg.net, pg.rounds, rnd), rnd), key="pg:diagram")
    st.caption(f"Round {rnd} trained in {shown.seconds:.2f} s (all its networks together); drawn in "
               f"{time.perf_counter() - started:.2f} s. {len(pg.rounds) - 1} of {pg.settings.rounds} pruned rounds done.")


board()
