"""New experiment: choose what to train and how to prune, see the cost, press Run."""
import pandas as pd
import streamlit as st

from lth_core.analysis.statistics import critical_cell
from lth_core.runs.checks import run_marks
from lth_core.runs.store import UNREADABLE
from ui import notes
from ui.example import example_panel, first_visit
from lth_core.engine.presets import PRESETS
from ui.form import apply_preset, check, confirmed, experiment_form, preset_buttons, submit
from lth_core.analysis.summary import pct
from ui.upload import upload_panel
from ui.text import code, link_value, md
from ui.widgets import PAGES, run_links, store

# the runs table: these columns fit a 1400-pixel window without scrolling sideways; the others can be added
RUNS_COLUMNS = ("name", "status", "checks", "data", "pruning", "trials", "ticket", "critical")
MORE_COLUMNS = {"progress": "rounds done", "weights": "weights left", "created": "created"}

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
        # the symbol only ('✗ zero weights' → '✗'), to fit; Live run and Compare give the line
        checks=[(run_marks(store(), [i]).get(i, "") if s != UNREADABLE else "")[:1] for i, s in zip(runs.id, runs.status)],
        created=[str(c)[5:16].replace("T", " ") for c in runs.created_at]).set_index("id")
    # the id is the (hidden) index: it is shown once a row is picked. The columns that tell runs apart fit a
    # 1400-pixel window at fixed widths; the others are added here (after the chosen ones)
    extra = st.multiselect("More columns", list(MORE_COLUMNS), format_func=MORE_COLUMNS.get, key="runs_table:more",
                           placeholder="more columns: rounds done, weights left, created")
    picked = st.dataframe(
        table[["name", "created", "status", "checks", "data", "pruning", "trials", "progress", "weights", "ticket",
               "critical"]],
        hide_index=True, on_select="rerun", selection_mode="single-row", key="runs_table",
        column_order=[*RUNS_COLUMNS, *extra], column_config={
            "name": st.column_config.TextColumn("name", width=126),
            "status": st.column_config.TextColumn("status", width=72),
            "data": st.column_config.TextColumn("data", width=160),
            "created": st.column_config.TextColumn("created", help="month-day hour:minute, UTC", width=90),
            "pruning": st.column_config.TextColumn("schedule · scope · reset", width=205, help=(
                "iterative N %: that share of the remaining weights pruned each round, or one-shot; layerwise or "
                "global ranking; reset to the original init, rewind:K (iteration K of the dense run) or none")),
            "trials": st.column_config.NumberColumn("trials", width=46),
            "progress": st.column_config.TextColumn(
                "rounds done", width=85, help="counting round 0, the dense network: 5 pruning rounds make 6 in all"),
            "weights": st.column_config.TextColumn(
                "weights left", width=85, help="the sparsity reached: weights remaining after the last finished round"),
            "ticket": st.column_config.TextColumn(
                "ticket", width=70, help="the ticket's test accuracy in the last finished round (mean over trials)"),
            "critical": st.column_config.TextColumn("critical", width=160, help=(
                "critical sparsity: the fewest weights down to which the ticket stays within 1 point of the dense "
                "network (mean over trials, between rounds); ≤ when it never left that tolerance; between two "
                "values when it left it between rounds too far apart to interpolate")),
            "checks": st.column_config.TextColumn("checks", width=44, help=(
                "the sanity checks: ✓ all passed; ✗ one failed, ⚠ a training budget too short to converge "
                "(Live run and Compare say which, where and what it means)"))})
    rows = picked.selection.rows
    if rows:
        chosen = table.iloc[rows[0]]
        st.markdown(f"Open **{md(chosen['name'])}** ({code(chosen.name)}) on:")
        run_links(chosen.name)
    else:
        st.caption("Click a row to open that run on **Live run**, **Results**, **Masks** or **Compare** "
                   "(or pick it at the top of those pages).")
