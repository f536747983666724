"""Pruning at init: SNIP, GraSP, SynFlow, magnitude at init and random pruning against the IMP ticket, each
with its shuffle, reinit and inverted-scores controls (Frankle et al. 2021); start one, watch it, read it."""

import json

import streamlit as st

from lth_core import ConfigError
from lth_core.analysis.at_init_view import IMP, figure, method_name, summary, table
from lth_core.engine.at_init import AT_INIT_CONTROLS, DEFAULT_CRITERIA, AtInitSpec, at_init_criteria, parse_targets
from lth_core.engine.config import ExperimentConfig
from lth_core.engine.presets import PRESETS
from lth_core.runs import at_init as experiment
from lth_core.runs.estimate import format_seconds, worker_running
from lth_core.runs.store import ACTIVE, UNREADABLE
from ui.text import md
from ui.widgets import guarded, show_next, stop_page, store, url_choice

REFRESH_S = 2.0
START = "paper-lenet"  # the preset whose training the form starts from

st.title("Pruning at init")
st.markdown(
    "Can a network be pruned **before** it trains? SNIP, GraSP and SynFlow score the untrained weights and "
    "prune straight to a target; the network then trains once. Frankle et al. (2021) found that they beat "
    "random pruning but lose to the lottery ticket found by iterative magnitude pruning (IMP), and that "
    "shuffling their masks within each layer, or reinitialising them, changes little: only how many weights "
    "each layer keeps matters. The same controls ruin an IMP ticket. Here you can check that on your own run.")


@st.cache_data(show_spinner="Timing a few training steps on this machine…", max_entries=64)
def _estimate(config_json: str, spec_json: str, warm: bool) -> tuple[experiment.AtInitEstimate | None, str | None]:
    """The experiment's estimate, or why it cannot start. `warm` is part of the key, as on New experiment."""
    try:
        spec = AtInitSpec.from_dict(json.loads(spec_json))
        return experiment.estimate(ExperimentConfig.from_dict(json.loads(config_json)), spec, warm=warm), None
    except ConfigError as exc:
        return None, f"{exc.field}: {exc.message}"


@guarded
def build() -> None:
    """The experiment's settings and the start button."""
    runs = store().list_runs()
    runs = runs[runs.status != UNREADABLE]
    bases = {f"preset: {p.title}": ("preset", k) for k, p in PRESETS.items()}
    bases.update({f"run {r.id}: {r.name}": ("run", r.id) for r in runs.head(50).itertuples()})
    names = list(bases)
    start = next((i for i, n in enumerate(names) if bases[n] == ("preset", START)), 0)
    choice = st.selectbox("Train as in", names, index=start, key="atinit_base",
                          help="the dataset, network and training of this preset or run (its pruning settings are "
                               "replaced by the experiment's)")
    kind, key = bases[choice]
    base = (ExperimentConfig.from_dict(dict(PRESETS[key].settings)) if kind == "preset"
            else store().get_run(key).config)
    # the full width: in a column, the 5th chip ('random') was cut off at 1280 px (Streamlit does not wrap chips)
    criteria = st.multiselect("Criteria pruning at init", at_init_criteria(), default=list(DEFAULT_CRITERIA),
                              key="atinit_criteria")
    cols = st.columns([2, 1, 1, 1])
    targets_text = cols[0].text_input("Targets: fractions of weights remaining", "0.2,0.05", key="atinit_targets",
                                      help="e.g. 0.5,0.2,0.07,0.03 or 20%,5%")
    trials = cols[1].number_input("Trials", 1, 20, value=max(2, base.trials), key="atinit_trials")
    epochs = cols[2].number_input("Epochs per training", 0.5, 100.0, value=float(base.epochs or 2.0), step=0.5,
                                  key="atinit_epochs")
    seed = cols[3].number_input("Seed", 0, 2**31 - 1, value=base.seed, key="atinit_seed")
    try:
        spec = AtInitSpec(parse_targets(targets_text), tuple(criteria), AT_INIT_CONTROLS).validated()
        config = base.replace(trials=int(trials), epochs=float(epochs), iterations=None, seed=int(seed))
    except ConfigError as exc:
        st.error(f"Cannot start this: {md(f'{exc.field}: {exc.message}')}", icon=":material/block:")
        return
    def count(n: int, word: str, words: str) -> str:
        return f"{n} {word if n == 1 else words}"

    st.caption(f"{count(len(spec.targets), 'target', 'targets')} × {count(len(spec.criteria), 'criterion', 'criteria')}"
               f" × 4 trainings (the method and its 3 controls) × {count(config.trials, 'trial', 'trials')}, plus the "
               f"IMP run down to {min(spec.targets):.3g}. Each target is met where IMP first reaches it: at its first "
               "round at or below the target (with 20 % a round, a target of 50 % is measured at 41 %), and every "
               "method is pruned to that same share.")
    e, problem = _estimate(config.to_json(), json.dumps(spec.to_dict(), sort_keys=True), worker_running())
    if e is None:
        st.error(f"Cannot start this: {md(problem)}", icon=":material/block:")
        return
    cols = st.columns(3)
    cols[0].metric("Trainings", e.trainings, help="the IMP run's, then every cell's method and controls per trial")
    cols[1].metric("At-init cells", e.cells)
    cols[2].metric("Rough time", format_seconds(e.seconds), help="from pressing Start to the last cell")
    st.caption(f"This experiment: {e.describe()}: {e.breakdown()}.")
    if st.button("Start", icon=":material/play_arrow:", type="primary", key="atinit_start"):
        try:
            run_id = experiment.submit(config, spec, estimated=e)
        except ConfigError as exc:  # a criterion that does not fit, a target out of reach
            st.error(f"Cannot start this: {md(f'{exc.field}: {exc.message}')}", icon=":material/block:")
            return
        show_next("atinit", run_id)  # the picker below shows the new experiment, and the URL names it
        st.rerun()


found = experiment.experiments(store())
if st.toggle("Start a new experiment", value=not found, key="atinit_build"):
    with st.container(border=True):
        build()
if not found:
    st.info("No pruning-at-init experiment yet: start one above, or from the command line: "
            "`python -m lth_core at-init --targets 0.2,0.05 --trials 2`.", icon=":material/info:")
    stop_page()
names = {r: store().get_run(r).name for r in found}
run_id = url_choice("atinit", found, "Experiment", format_func=lambda r: f"{r} · {names[r]}")
spec = experiment.spec_of(store(), run_id)
shown = st.multiselect("Draw the controls of", [IMP, *spec.criteria], default=[IMP],
                       format_func=method_name, key="atinit_controls",
                       help="each method's own line is always drawn; its controls (dashed) on demand")


def _busy() -> bool:
    task = experiment.task_state(store(), run_id)
    return store().get_run(run_id).status in ACTIVE or bool(task and task.active)


@st.fragment(run_every=REFRESH_S if _busy() else None)
@guarded
def results() -> None:
    run = store().get_run(run_id)
    task = experiment.task_state(store(), run_id)
    cells = len(store().docs(run_id, experiment.CELL_PREFIX))
    total = len(spec.targets) * len(spec.criteria)
    st.markdown(f"**IMP run:** {run.status} · **at-init cells:** {cells} of {total} done"
                + (f" · {md(task.progress)}" if task and task.state == "running" and task.progress else "")
                + (f" · {md(task.error)}" if task and task.error else ""))
    if run.status in ACTIVE or (task and task.active):
        st.button("Cancel the experiment", icon=":material/cancel:", key="atinit_cancel",
                  disabled=bool(task and task.cancel_requested), on_click=experiment.cancel, args=(run_id, store().path),
                  help="the IMP run and the at-init cells stop within about a second; finished rounds and cells "
                       "stay, and Resume trains only what is missing")
    stopped = run.status not in ACTIVE and run.status != "finished"
    if (stopped or (cells < total and not (task and task.active))) and not _busy():  # also before any result
        if st.button("Resume: train what is missing", icon=":material/play_arrow:", key="atinit_resume"):
            queued = experiment.resume(run_id, store().path)
            st.success("Queued " + " and ".join(queued) if queued else "Nothing left to train.")
    points = experiment.points(store(), run_id)
    if points.empty:
        st.info("No results yet; they appear here as the IMP rounds and the at-init cells finish.")
        return
    dense = store().rounds(run_id)
    dense = dense[(dense["round"] == 0) & (dense["variant"] == "ticket")]
    st.plotly_chart(figure(points, dense, set(shown)), config={"displaylogo": False}, key="atinit_fig")
    st.subheader("What this run shows")
    st.markdown("\n".join(f"- {md(line)}" for line in summary(points)))
    st.dataframe(table(points), hide_index=True)


results()
