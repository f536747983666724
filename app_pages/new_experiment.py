"""New experiment: choose what to train and how to prune, see the cost, press Run."""
import pandas as pd
import streamlit as st

from lth_core import jobs
from ui import notes
from ui.example import example_panel, first_visit
from ui.form import check, experiment_form
from ui.summary import pct
from ui.text import code, md
from ui.widgets import PAGES, run_links, store

st.title("New experiment")
st.markdown("Find a **winning ticket**: a small sub-network that trains as well as the full network. "
            "The defaults finish in well under a minute on a laptop.")
runs = store().list_runs()
with st.expander("New to lottery tickets? Read this first (1 minute)", expanded=first_visit(runs)):
    st.markdown(notes.INTRO)
example_panel(runs)  # links to the shipped example run, or a button that loads it

settings, name = experiment_form()
checked = check(settings)

st.divider()
if checked.ok:
    e = checked.estimate
    cols = st.columns(4)
    cols[0].metric("Trainings", e.trainings, help="dense network once per trial, then every variant of every round")
    cols[1].metric("Pruning rounds", e.rounds)
    cols[2].metric("Smallest network", pct(e.final_remaining), help=f"of {e.weights:,} prunable weights")
    cols[3].metric("Rough time", e.describe().rsplit("about ", 1)[-1])
    st.caption(f"This run: {e.describe()}.")
    with st.expander("How is this estimated?"):
        st.markdown(notes.NOTES["estimate"])
else:
    st.error(f"Cannot run this yet: {checked.problem}", icon=":material/block:")

if st.button("Run", icon=":material/play_arrow:", type="primary", disabled=not checked.ok, key="run_button"):
    run_id = jobs.submit(checked.config, name=name.strip() or None)
    st.session_state["sel:run"] = run_id
    st.switch_page(PAGES["live"], query_params={"run": run_id})

if not runs.empty:
    st.subheader("Your runs")
    known = lambda v: v is not None and not pd.isna(v)  # noqa: E731 - a run that has not started has gaps
    table = runs.assign(
        progress=[f"{int(d)} of {int(t) + 1}" if known(t) else "" for d, t in zip(runs.rounds_done, runs.rounds_total)],
        ticket=[pct(a) if known(a) else "" for a in runs.test_accuracy],
        weights=[pct(w) if known(w) else "" for w in runs.weights_remaining],
        created=[str(c)[:16].replace("T", " ") for c in runs.created_at])
    picked = st.dataframe(
        table[["id", "name", "status", "dataset", "arch", "progress", "weights", "ticket", "created"]],
        hide_index=True, on_select="rerun", selection_mode="single-row", key="runs_table", column_config={
                     "progress": st.column_config.TextColumn(
                         "rounds done", help="counting round 0, the dense network: 5 pruning rounds make 6 in all"),
                     "weights": st.column_config.TextColumn("weights left", help="after the last finished round"),
                     "ticket": st.column_config.TextColumn("ticket test accuracy", help="of the last finished round")})
    rows = picked.selection.rows
    if rows:
        chosen = table.iloc[rows[0]]
        st.markdown(f"Open **{md(chosen['name'])}** ({code(chosen['id'])}) on:")
        run_links(chosen["id"])
    else:
        st.caption("Click a row to open that run on **Live run**, **Results**, **Masks** or **Compare** "
                   "(or pick it at the top of those pages).")
