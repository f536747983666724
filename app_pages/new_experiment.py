"""New experiment: choose what to train and how to prune, see the cost, press Run."""
import pandas as pd
import streamlit as st

from lth_core.analysis.statistics import critical_cell
from lth_core.runs.checks import run_marks
from lth_core.runs.store import UNREADABLE
from ui import notes
from ui.example import example_panel, first_visit
from ui.form import check, confirmed, experiment_form, preset_buttons, submit
from lth_core.analysis.summary import pct
from ui.upload import upload_panel
from ui.text import code, md
from ui.widgets import PAGES, run_links, store

st.title("New experiment")
st.markdown("Find a **winning ticket**: a small sub-network that trains as well as the full network. "
            "The form opens on the paper's LeNet experiment, which shows the effect in under a minute on a laptop; "
            "a preset below fills every field in one click.")
runs = store().list_runs()
with st.expander("New to lottery tickets? Read this first (1 minute)", expanded=first_visit(runs)):
    st.markdown(notes.INTRO)
example_panel(runs)  # links to the shipped example run, or a button that loads it

upload_panel()
preset_buttons()
settings, name = experiment_form()
checked = check(settings)

st.divider()
if checked.ok:
    e = checked.estimate
    cols = st.columns(4)
    cols[0].metric("Trainings", e.trainings, help="dense network once per trial, then every variant of every round")
    cols[1].metric("Pruning rounds", e.rounds)
    cols[2].metric("Smallest network", pct(e.final_remaining), help=f"of {e.weights:,} prunable weights")
    cols[3].metric("Rough time", e.describe().rsplit("about ", 1)[-1], help="from pressing Run to the end")
    st.caption(f"This run: {e.describe()} ({e.breakdown()}).")
    with st.expander("How is this estimated?"):
        st.markdown(notes.NOTES["estimate"])
else:
    st.error(f"Cannot run this yet: {checked.problem}", icon=":material/block:")

if st.button("Run", icon=":material/play_arrow:", type="primary", disabled=not confirmed(checked), key="run_button"):
    run_id = submit(checked, name)
    st.session_state["sel:run"] = run_id
    st.switch_page(PAGES["live"], query_params={"run": run_id})

if not runs.empty:
    st.subheader("Your runs")
    known = lambda v: v is not None and not pd.isna(v)  # noqa: E731 - a run that has not started has gaps
    configs = [None if s == UNREADABLE else store().get_run(i).config for i, s in zip(runs.id, runs.status)]
    table = runs.assign(
        data=[f"{d} · {a}" for d, a in zip(runs.dataset, runs.arch)],
        pruning=["" if c is None else " · ".join([f"iterative {100 * c.prune_rate:g} %" if c.schedule == "iterative"
                                                  else c.schedule, c.scope, c.reset]) for c in configs],
        trials=pd.array([None if c is None else c.trials for c in configs], dtype="Int64"),
        progress=[f"{int(d)} of {int(t) + 1}" if known(t) else "" for d, t in zip(runs.rounds_done, runs.rounds_total)],
        ticket=[pct(a) if known(a) else "" for a in runs.test_accuracy],
        weights=[pct(w) if known(w) else "" for w in runs.weights_remaining],
        critical=["" if s == UNREADABLE else critical_cell(store().rounds(i)) for i, s in zip(runs.id, runs.status)],
        checks=[run_marks(store(), [i]).get(i, "") if s != UNREADABLE else "" for i, s in zip(runs.id, runs.status)],
        created=[str(c)[5:16].replace("T", " ") for c in runs.created_at]).set_index("id")
    # the id is the (hidden) index: it is shown once a row is picked, and the columns that tell runs apart fit
    picked = st.dataframe(
        table[["name", "created", "status", "checks", "data", "pruning", "trials", "progress", "weights", "ticket",
               "critical"]],
        hide_index=True, on_select="rerun", selection_mode="single-row", key="runs_table", column_config={
            "created": st.column_config.TextColumn("created", help="month-day hour:minute, UTC"),
            "pruning": st.column_config.TextColumn("schedule · scope · reset", help=(
                "iterative N %: that share of the remaining weights pruned each round, or one-shot; layerwise or "
                "global ranking; reset to the original init, rewind:K (iteration K of the dense run) or none")),
            "progress": st.column_config.TextColumn(
                "rounds done", help="counting round 0, the dense network: 5 pruning rounds make 6 in all"),
            "weights": st.column_config.TextColumn(
                "weights left", help="the sparsity reached: weights remaining after the last finished round"),
            "ticket": st.column_config.TextColumn(
                "ticket acc.", help="the ticket's test accuracy in the last finished round (mean over trials)"),
            "critical": st.column_config.TextColumn("critical", help=(
                "critical sparsity: the fewest weights down to which the ticket stays within 1 point of the dense "
                "network (mean over trials, between rounds); ≤ when it never left that tolerance")),
            "checks": st.column_config.TextColumn("checks", help=(
                "the sanity checks: ✓ all passed; ✗ names a failed one, ⚠ a training budget too short to converge "
                "(Live run and Compare say where and what it means)"))})
    rows = picked.selection.rows
    if rows:
        chosen = table.iloc[rows[0]]
        st.markdown(f"Open **{md(chosen['name'])}** ({code(chosen.name)}) on:")
        run_links(chosen.name)
    else:
        st.caption("Click a row to open that run on **Live run**, **Results**, **Masks** or **Compare** "
                   "(or pick it at the top of those pages).")
