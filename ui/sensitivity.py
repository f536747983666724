"""Masks' sensitivity section: each layer of the run's dense network pruned alone. A button queues the measurement
in the background worker (lth_core.runs.sensitivity, kept with the run layer by layer); the section shows its
progress, then the figure, the suggested rates in words, and a button that fills New experiment with them."""
from __future__ import annotations

import streamlit as st

from lth_core.analysis.sensitivity_view import sensitivity_plot, suggestion_lines, suggestion_rounds
from lth_core.engine.errors import ConfigError
from lth_core.engine.presets import FORM_START, PRESETS
from lth_core.engine.sensitivity import (DEFAULT_FINETUNE_STEPS, DEFAULT_SPARSITIES, DEFAULT_TOLERANCE, parse_sparsities,
                                         suggest_rates)
from lth_core.runs import jobs, tasks
from lth_core.runs import sensitivity as S
from lth_core.runs.store import StoreError
from ui.form import fill_form
from ui.task_notice import task_notice
from ui.text import md
from ui.widgets import PAGES, chart, guarded, one_line, run_context, store

REFRESH_S = 1.5


def _start(run_id: str, trial: int) -> None:
    """The button's on_click: queue the measurement with the fields' settings, or keep the field's one-line error."""
    try:
        sparsities = parse_sparsities(st.session_state.get("sens:sparsities", ""))
        jobs.submit_sensitivity(run_id, trial, sparsities, int(st.session_state.get("sens:steps", 0)),
                                store_path=str(store().path))
    except (ConfigError, StoreError) as exc:
        st.session_state["sens:error"] = one_line(exc)


def _new_experiment_settings(config: dict, settings: dict, rounds: int) -> dict:
    """The run's own settings with the suggested rates, over `rounds` rounds (a dense-only run gets the opening
    preset's controls and trials, so the new run compares the ticket with them)."""
    base = {k: v for k, v in config.items() if v is not None and k not in ("target_remaining", "device")}
    if not config.get("rounds"):
        opening = PRESETS[FORM_START].settings
        base.update(controls=list(opening["controls"]), trials=opening["trials"])
    return {**base, "rounds": rounds, **settings}


def sensitivity_section(run_id: str, trial: int) -> None:
    info = store().get_run(run_id)
    st.header("Each layer pruned alone: how sensitive is it?")
    st.markdown("The dense network (round 0) with **one layer** pruned by magnitude to each sparsity, the other layers "
                "dense; its test accuracy with no retraining and after a short fine-tune (the mask held). A layer "
                "that keeps its accuracy far down can be pruned harder than the others.")
    rounds = store().rounds(run_id)
    if rounds[(rounds["round"] == 0) & (rounds["trial"] == trial)].empty:
        st.info(f"Trial {trial}'s dense network (round 0) has not finished yet; it can be measured once it has.")
        return
    key = tasks.task_key("sensitivity", 0, trial)
    task = tasks.get(store(), run_id, key)
    busy = task is not None and task.active
    kept = S.stored(store(), run_id, trial)
    c1, c2, c3 = st.columns([2, 1, 2], vertical_alignment="bottom")
    c1.text_input("Sparsities of the pruned layer (%)", ",".join(f"{100 * s:g}" for s in DEFAULT_SPARSITIES),
                  key="sens:sparsities", help="comma-separated percentages, each between 0 and 100")
    c2.number_input("Fine-tune iterations", min_value=0, max_value=100_000, value=DEFAULT_FINETUNE_STEPS, step=10,
                    key="sens:steps", help="after each prune, with the mask held; 0 for none")
    c3.button("Measure again" if kept else "Measure each layer's sensitivity", type="primary",
              icon=":material/tune:", disabled=busy, on_click=_start, args=(run_id, trial), key="sens:start",
              help="Runs in the background worker, layer by layer (kept with the run as it goes: a stopped "
                   "measurement resumes where it stopped). LeNet-300-100 with the defaults: about a minute.")
    if "sens:error" in st.session_state:
        st.error(st.session_state.pop("sens:error"))
    _status(run_id, key, busy)
    if kept is None:
        return
    result, doc = kept
    source = doc.get("source", "")
    st.caption(md(source[:1].upper() + source[1:]) + ".")  # how the dense network was obtained, and if it matched
    chart(sensitivity_plot(result), "sensitivity", context=f"{run_context(info)} · trial {trial}")
    if not result.complete:
        st.info(f"{len(result.points)} of {len(result.kinds)} layers measured so far" +
                ("." if busy else "; measure again to finish (the measured layers are kept)."))
        return
    rounds_over = suggestion_rounds(info.config.to_dict())
    suggestion = suggest_rates(result, rounds_over, DEFAULT_TOLERANCE)
    st.subheader("Suggested rates per layer type")
    st.markdown("From **validation** accuracy (the test split plays no part): the highest sparsity at which each layer "
                f"stays within {DEFAULT_TOLERANCE:g} point, and the rate per round that reaches it in {rounds_over} rounds"
                " (the config's rates are per layer type, so the most sensitive layer of a type decides). The plot "
                "above draws test accuracy, so a line may look flat where validation already left the tolerance.")
    st.markdown("\n".join(f"- {md(line)}" for line in suggestion_lines(suggestion)))
    st.caption("A starting point, not a promise: each layer was pruned alone, and layers pruned together lose more "
               "than the sum of their losses. Run the experiment and check its ticket against the dense network.")
    settings = _new_experiment_settings(info.config.to_dict(), suggestion.settings(), rounds_over)
    if st.button("Use these rates in a new experiment", icon=":material/content_copy:", key="sens:use",
                 on_click=fill_form, args=(settings, f"the rates suggested by the sensitivity of run {run_id}")):
        st.switch_page(PAGES["new"])


@st.fragment(run_every=REFRESH_S)
@guarded
def _poll(run_id: str, key: str) -> None:
    task = tasks.get(store(), run_id, key)
    if task is None or not task.active:
        st.rerun(scope="app")  # the result (or the failure) is in the store now
    task_notice(task, "Measuring", "measurement")


def _status(run_id: str, key: str, busy: bool) -> None:
    """Progress while queued or running (refreshing itself); the last failure or interruption otherwise."""
    if busy:
        _poll(run_id, key)
        return
    task = tasks.get(store(), run_id, key)
    if task is not None and not task.active:
        task_notice(task, "Measuring", "measurement", again="Measure again to finish it: the layers it measured are kept.")
