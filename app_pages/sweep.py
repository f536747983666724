"""Sweep: build a grid over a run's settings, see its size and time, launch it, watch its cells fill, and
read the summary across cells (heatmap for two axes, lines for one) with the best cell in words."""

import pandas as pd
import streamlit as st

from lth_core import ConfigError, jobs
from lth_core.analysis.statistics import pct, spread_words
from lth_core.analysis.sweep_summary import best_cell_sentence, blank_reason, offered_shares, share_text, sweep_figure
from lth_core.engine.config import ExperimentConfig
from lth_core.engine.presets import PRESETS
from lth_core.runs.estimate import format_seconds
from lth_core.runs.store import ACTIVE, UNREADABLE
from lth_core.runs.sweep import (MAX_CELLS, SWEEPABLE, add_sweep, cancel_sweep, missing_cells, parse_grid, plan_cells,
                                 resume_cells, sweep_cells, sweep_summary)
from ui.form import _estimate, worker_running
from ui.runs_list import CRITICAL_HEADER, CRITICAL_HELP
from ui.text import code, md, plotly
from ui.widgets import PAGES, explain, guarded, listed_runs, show_next, stop_page, store, url_choice

MAX_TIMED = 8  # distinct cells timed for the estimate; past this, the rest are taken at their mean

st.title("Sweep")
st.markdown("Which prune rate, rewind point or width works best? A **sweep** runs a grid of settings, each "
            "cell an ordinary run (every page works on it), and sums the grid up in one figure. "
            "To run it on a Ray cluster, use the command line: `python -m lth_core sweep ... --executor ray`.")

@guarded
def build() -> None:
    """The grid, its size and estimated time, and the launch button."""
    runs = listed_runs()
    runs = runs[runs.status != UNREADABLE]
    bases = {f"preset: {p.title}": ("preset", k) for k, p in PRESETS.items()}
    bases.update({f"run {r.id}: {r.name}": ("run", r.id) for r in runs.head(50).itertuples()})
    def preset_grid() -> None:  # a preset with a grid (a sweep of its own) fills the axes with it
        kind, key = bases[st.session_state["sweep_base"]]
        grid = PRESETS[key].grid if kind == "preset" else ()
        if grid:
            (st.session_state["sweep_f1"], values), st.session_state["sweep_f2"] = grid[0], "(none)"
            st.session_state["sweep_v1"] = ",".join(values)

    choice = st.selectbox("Start from the settings of", list(bases), key="sweep_base", on_change=preset_grid)
    kind, key = bases[choice]
    base = (ExperimentConfig.from_dict(dict(PRESETS[key].settings)) if kind == "preset"
            else store().get_run(key).config)
    st.caption("Base: " + md(" · ".join(f"{k}={v}" for k, v in base.to_dict().items()
                                        if v not in (None, [], ()) and k not in ("device", "trials")))
               + " · trials: set below, per cell")
    cols = st.columns([1, 2, 1, 2])
    field1 = cols[0].selectbox("First axis", SWEEPABLE, index=SWEEPABLE.index("prune_rate"), key="sweep_f1")
    values1 = cols[1].text_input("its values (comma-separated)", "0.1,0.2,0.4", key="sweep_v1")
    field2 = cols[2].selectbox("Second axis", ["(none)", *SWEEPABLE], index=1 + SWEEPABLE.index("reset"), key="sweep_f2")
    values2 = cols[3].text_input("its values", "init,rewind:100", key="sweep_v2", disabled=field2 == "(none)")
    cols = st.columns(3)
    trials = cols[0].number_input("Trials per cell", 1, 20, value=max(2, base.trials), key="sweep_trials")
    name = cols[1].text_input("Sweep name", "", key="sweep_name", placeholder="e.g. prune rate × reset")
    yes = cols[2].checkbox(f"Allow more than {MAX_CELLS} cells", key="sweep_yes")
    try:
        axes = [parse_grid(f"{field1}={values1}")] + ([parse_grid(f"{field2}={values2}")] if field2 != "(none)" else [])
        cells = plan_cells(base, axes, trials=int(trials), yes=yes)
        problem = None
    except ConfigError as exc:
        cells, problem = [], f"{exc.field}: {exc.message}"
    if problem:
        st.error(f"Cannot run this sweep: {md(problem)}", icon=":material/block:")
    else:
        distinct = list(dict.fromkeys(c.config.replace(seed=base.seed).to_json() for c in cells))
        # each cell timed as New experiment times a run (lth_core.runs.estimate): the cells queue together, so the
        # worker stays up between them and each starts warm (a fork), except the first when no worker runs yet
        timed = [_estimate(j, True)[0] for j in distinct[:MAX_TIMED]]
        mean = sum(e.seconds for e in timed if e) / max(1, sum(1 for e in timed if e))
        trainings = {j: e.trainings for j, e in zip(distinct, timed) if e}
        by_config = dict(zip(distinct, (e.seconds if e else mean for e in timed)))
        keys = [c.config.replace(seed=base.seed).to_json() for c in cells]
        total = sum(by_config.get(k, mean) for k in keys)
        first, warm = _estimate(keys[0], worker_running())[0], timed[0]
        if first and warm:
            total += first.seconds - warm.seconds  # the worker's cold start, as a single run's estimate has it
        workers = jobs.workers()
        m = st.columns(3)
        m[0].metric("Cells", len(cells), help=" × ".join(f"{len(a.values)} {a.field}" for a in axes))
        mean_trainings = sum(trainings.values()) / max(1, len(trainings))
        m[1].metric("Trainings", round(sum(trainings.get(k, mean_trainings) for k in keys)))
        m[2].metric("Rough time", format_seconds(total / workers),
                    help=f"each distinct cell timed on this machine ({min(len(distinct), MAX_TIMED)} of "
                         f"{len(distinct)}), {workers} run{'s' if workers > 1 else ''} at a time")
        if st.button("Launch the sweep", icon=":material/play_arrow:", type="primary", key="sweep_launch"):
            sweep_id = add_sweep(store(), cells, executor="local", name=name or None)
            jobs.ensure_worker()
            show_next("sweep", sweep_id)  # the picker below shows the new sweep, and the URL names it
            st.session_state[LAUNCHED] = (sweep_id, len(cells))
            st.rerun()



LAUNCHED = "sweep_launched"
sweeps = store().sweeps()
launched = st.session_state.pop(LAUNCHED, None)
if launched:  # the builder closes, so the new sweep's cells are in view as they fill in
    st.session_state["sweep_build"] = False
if st.toggle("Build a new sweep", value=sweeps.empty, key="sweep_build"):  # timing a grid takes seconds: on demand
    with st.container(border=True):
        build()
if launched:
    st.success(f"Launched sweep {md(launched[0])}: {launched[1]} cell{'s' if launched[1] != 1 else ''} queued; "
               "they fill in below. The toggle above builds another.", icon=":material/check:")
if sweeps.empty:
    st.info("No sweep yet: build one above.", icon=":material/info:")
    stop_page()
# the name and size only: what changes as cells finish is shown below, and refreshes by itself
labels = {r.sweep: f"{r.name} · {r.cells} cell{'s' if r.cells != 1 else ''} · {r.created_at[:16].replace('T', ' ')}"
          + (f" · {r.sweep}" if r.name != r.sweep else "") for r in sweeps.itertuples()}
sweep_id = url_choice("sweep", list(labels), "Sweep", format_func=labels.get)


def fewest_weights() -> list[float]:
    """Each cell's fewest weights remaining so far (its latest committed round's)."""
    return list(store().list_runs(sweep=sweep_id)["weights_remaining"])


# the summary refreshes itself while cells are queued or running, and only then: a chart redrawn every 2 s
# never settled in the browser (it stayed blank on a busy machine)
live = bool(sweeps.loc[sweeps["sweep"] == sweep_id, ["queued", "running"]].to_numpy().sum())
# accuracy is offered only at the shares some cell got down to: elsewhere every cell would be blank
reached, not_offered = offered_shares(fewest_weights(), live)
at_text = url_choice("at", ["critical sparsity", *map(share_text, reached)], "Sum each cell up by",
                     kind="radio", horizontal=True,
                     format_func=lambda v: "fewest weights still matching dense" if v == "critical sparsity"
                     else f"test accuracy at {v} of the weights")  # the link's value stays "critical sparsity"
at = None if at_text == "critical sparsity" else float(at_text.split()[0]) / 100
if not_offered:
    st.caption(not_offered)


def pruning_rounds(done: int, total: object) -> str:
    """'2 of 3': pruning rounds finished of those planned, round 0 (the dense network) not counted, as Live run."""
    pruned = max(0, int(done) - 1)
    return f"{pruned} of {int(total)}" if total is not None and not pd.isna(total) else str(pruned)


@st.fragment(run_every=2.0 if live else None)
@guarded
def summary() -> None:
    table = sweep_summary(store(), sweep_id, at)
    axes = [a for a in table.attrs.get("axes", []) if table[a].nunique() > 1][:2] or table.attrs.get("axes", [])[:1]
    active = int(table["status"].isin(ACTIVE).sum())
    if live and (not active or offered_shares(fewest_weights())[0] != reached):
        st.rerun(scope="app")  # every cell has ended: stop refreshing; or a cell got down to a share not offered yet
    done = int((table["status"] == "finished").sum())
    st.progress(done / max(1, len(table)), text=f"{done} of {len(table)} cells finished" +
                (f", {active} queued or running" if active else ""))
    st.markdown(md(best_cell_sentence(table)))
    if table["value"].notna().any():
        fig = sweep_figure(table, axes, f"{plotly(table.attrs.get('name', sweep_id))}: the ticket's {table['metric'].iloc[0]}")
        st.plotly_chart(fig, config={"displaylogo": False}, key="sweep_fig")
    else:  # never an empty figure: say why there is none
        st.caption("No figure yet: no cell has a value"
                   + (" (no cell has a pruned round yet)." if (table["rounds_done"] < 2).all() else "; the table says why."))
    explain("sweep")
    # a line between the box above and the grid: the toolbar Streamlit shows over a grid on hover takes the 44
    # pixels above its top right corner, and covered the "What am I looking at?" box
    st.caption("Each cell's run: its id opens it on Live run.")
    metric = CRITICAL_HEADER if at is None else table["metric"].iloc[0]  # named as in the runs list
    show = pd.DataFrame({
        "cell": table["label"], "status": table["status"],
        "pruning rounds": [pruning_rounds(d, t) for d, t in zip(table["rounds_done"], table["rounds_total"])],
        metric: [(blank_reason(r, at is None) if r.value != r.value else ("≤ " if r.upper_bound else "") + pct(r.value))
                 for r in table.itertuples()],
        "over trials": [spread_words(lo, hi, int(n)) for lo, hi, n in zip(table["low"], table["high"], table["trials"])],
        "run": [f"{PAGES['live'].split('/')[-1][:-3]}?run={r}" for r in table["run_id"]]})
    st.dataframe(show, hide_index=True, column_config={
        "pruning rounds": st.column_config.TextColumn(help="pruning rounds finished, of those planned (round 0, the "
                                                           "dense network, is not counted), as on Live run"),
        metric: st.column_config.TextColumn(help=CRITICAL_HELP if at is None else None),
        "over trials": st.column_config.TextColumn(width="medium", help="the interval over trials: with 2 trials, "
                                                   "the two trials themselves; from 3, a 95 % confidence interval"),
        "run": st.column_config.LinkColumn("run", help="open the cell's run on Live run",
                                           display_text=r"live_run\?run=(.*)")})
    follow_up(table, active)


def follow_up(table: pd.DataFrame, active: int) -> None:
    """Cancel while cells are queued or running; resume once they have ended and some did not finish;
    neither when every cell has finished (nothing is left to run)."""
    missing = missing_cells(store(), sweep_id)
    if active:
        if st.button(f"Cancel the {active} queued or running cell{'s' if active != 1 else ''}", icon=":material/stop:",
                     key="sweep_cancel"):
            asked = cancel_sweep(store(), sweep_id)
            st.success(f"Asked {len(asked)} cell{'s' if len(asked) != 1 else ''} to stop; finished cells and rounds stay.")
    elif missing:
        executors = set(sweep_cells(store(), sweep_id)["executor"])
        if executors == {"local"} and st.button(
                f"Resume the {len(missing)} cell{'s' if len(missing) != 1 else ''} that did not finish",
                icon=":material/play_arrow:", key="sweep_resume"):
            resume_cells(store(), sweep_id, "local")
            jobs.ensure_worker()
            st.rerun(scope="fragment")
        st.caption(f"{len(missing)} cell{'s' if len(missing) != 1 else ''} cancelled, failed or interrupted; on the "
                   "command line (on a Ray cluster: add --executor ray): "
                   + code(f"python -m lth_core sweep resume {sweep_id}"))
    else:
        st.caption("Every cell has finished: nothing is left to run.")


summary()
