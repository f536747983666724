"""New experiment: choose what to train and how to prune, see the cost, press Run."""
import streamlit as st

from ui import notes
from ui.example import example_panel, first_visit
from lth_core.engine.presets import PRESETS
from ui.form import apply_preset, check, confirmed, estimate_outdated, experiment_form, preset_buttons, submit
from lth_core.analysis.summary import pct
from lth_core.runs.estimate import describe_wait, format_seconds, queue_ahead
from ui.runs_list import runs_list
from ui.upload import upload_panel
from ui.text import code, link_value
from ui.widgets import PAGES, listed_runs, store

st.title("New experiment")
st.markdown("Find a **winning ticket**: a small sub-network that trains as well as the full network. "
            "The form opens on the paper's LeNet experiment, which shows the effect in under a minute on a laptop; "
            "a preset below fills every field in one click.")
linked = st.query_params.get("preset")  # ?preset=NAME (the guided tour links here) fills the form once
if linked is not None and st.session_state.get("form:linked_preset") != linked:
    st.session_state["form:linked_preset"] = linked
    if linked in PRESETS:
        apply_preset(linked)
if linked is not None and linked not in PRESETS:
    st.warning(f"The link asks for the preset {link_value(linked)} (`?preset=`), which does not exist; allowed: "
               f"{', '.join(code(p) for p in PRESETS)}. The form keeps its values.", icon=":material/link_off:")
runs = listed_runs()
with st.expander("New to lottery tickets? Read this first (1 minute)", expanded=first_visit(runs)):
    st.markdown(notes.INTRO)
example_panel(runs)  # links to the shipped example run, or a button that loads it

upload_panel()
preset_buttons()
settings, name = experiment_form()

st.divider()
# The estimate times a few real training steps (the first time in a while: also a background run's start-up,
# several seconds), so its place is kept here and it is filled in after the rest of the page is drawn: the
# form and the runs list show at once, the estimate and Run a moment later.
# Until then the last estimate would stay on screen, greyed, with the old settings' numbers: when the settings
# changed, the slot says at once that it is being recomputed.
estimate_slot = st.empty()
outdated = estimate_outdated(settings)
RECOMPUTING = dict(body="Settings changed: recomputing the estimate…", icon=":material/hourglass_top:")
if outdated:
    estimate_slot.info(**RECOMPUTING)

if not runs.empty:
    st.subheader("Your runs")
    runs_list()  # search, filters, sort and pages (ui/runs_list.py)

with estimate_slot.container():  # the note (and the timing's spinner) stay until the estimate replaces them
    if outdated:
        st.info(**RECOMPUTING)
    checked = check(settings)
with estimate_slot.container():
    if checked.ok:
        e = checked.estimate
        cols = st.columns(4)
        cols[0].metric("Trainings", e.trainings, help="dense network once per trial, then every variant of every round")
        cols[1].metric("Pruning rounds", e.rounds)
        cols[2].metric("Smallest network", pct(e.final_remaining), help=f"of {e.weights:,} prunable weights")
        cols[3].metric("Rough time", format_seconds(e.seconds), help="from pressing Run to the end")
        st.caption(f"This run: {e.describe()} ({e.breakdown()}).")
        if (wait := describe_wait(queue_ahead(store()))):  # the estimate leaves out the queue: say when it starts
            st.caption(f":material/hourglass_top: {wait[0].upper()}{wait[1:]}; the time above counts from then.")
        with st.expander("How is this estimated?"):
            st.markdown(notes.NOTES["estimate"])
    else:
        st.error(f"Cannot run this yet: {checked.problem}", icon=":material/block:")

    if st.button("Run", icon=":material/play_arrow:", type="primary", disabled=not confirmed(checked),
                 key="run_button"):
        run_id = submit(checked, name)
        st.session_state["sel:run"] = run_id
        st.switch_page(PAGES["live"], query_params={"run": run_id})
