"""Guided tour: the lottery ticket hypothesis in eight steps, each with a figure from a real run (the shipped
example by default; any run with ?run=), one question, and a link to try it. The step is ?step=N in the URL.
With no run to show, the tour starts a small real one and fills in as its rounds finish."""
import streamlit as st

from lth_core import LTHError
from lth_core.runs.store import StoreError
from ui import tour
from ui.example import example_notice
from ui.text import md
from ui.widgets import guarded, listed_runs, one_line, run_picker, stop_page, store, url_choice

st.title("Guided tour: the lottery ticket hypothesis")
st.caption("Eight steps through the idea of Frankle & Carbin (2019). Every figure comes from a real run of this "
           "app; every step ends with a question to think about and a link to try it yourself.")
picker, steps = st.container(), st.container()
with steps:  # chosen before the run: the step stays when a teacher switches runs
    step = url_choice("step", list(range(1, len(tour.STEPS) + 1)), "Step", kind="radio", horizontal=True,
                      format_func=lambda n: f"{n} · {tour.STEPS[n - 1].title}", label_visibility="collapsed")

runs = listed_runs()
own = None  # the small run the tour trains when the store has no run to show
if runs[runs.rounds_done > 0].empty:  # nothing to show: train a small run and show the steps filling in
    own = tour.small_run()
    if own is None:
        try:
            tour.start_small_run()
        except (LTHError, StoreError, OSError) as exc:
            st.error(f"The tour could not start its small run: {one_line(exc)}", icon=":material/error:")
            stop_page()
        own = tour.small_run()
    if not own.active:
        st.error(f"The tour's small run {md(own.status)}: {md(own.error or 'no reason was recorded')}. Start one "
                 "on **New experiment**, or load the example run there.", icon=":material/error:")
        stop_page()
    run_id = own.id
    with picker:
        st.info("No run to show yet, so the tour is training a small one: LeNet-300-100 on 5,000 real MNIST digits, "
                f"{tour.SMALL_RUN.rounds} rounds of pruning with both controls (about 10–20 s). Read on: each step's "
                "figure fills in as the rounds it needs finish.", icon=":material/model_training:")
else:
    with picker:
        run_id = run_picker(default=tour.default_run())
REFRESH_S = 1.0 if store().get_run(run_id).active else None


@st.fragment(run_every=REFRESH_S)
@guarded
def step_view() -> None:
    run = tour.TourRun.read(run_id)
    if run.info.active != (REFRESH_S is not None) or (own is not None and run.info.rounds_done > 0):
        st.rerun(scope="app")  # finished (or started again), or the first round is in: redraw, with the run picker
    if run.info.active:
        tour.progress(run.info)
    tour.show_step(step, run)


step_view()
previous, following = st.columns(2)  # wide enough for the steps' titles at 1024 px (in thirds, cut with an ellipsis)
if step > 1:
    previous.button(f"← {tour.STEPS[step - 2].title}", on_click=st.session_state.__setitem__, args=("w:step", step - 1))
if step < len(tour.STEPS):
    following.button(f"Next: {tour.STEPS[step].title} →", type="primary", on_click=st.session_state.__setitem__,
                     args=("w:step", step + 1))
st.divider()
example_notice(run_id)  # the badge and provenance of the shipped example run
# Streamlit keeps the scroll position across a rerun, so after Next the new step opened at its bottom. The page
# has no scroll API: this script, new for each step (its text names the step), scrolls the page back to its top.
st.html(f"<script>/* tour step {step} */ [document.querySelector('[data-testid=\"stMain\"]'), "
        "document.scrollingElement].forEach(e => e && e.scrollTo({top: 0}));</script>", unsafe_allow_javascript=True)
