"""Stability: the instability analysis (linear mode connectivity) of a run's dense network and of a round's
ticket against its controls. "Analyse" queues it in the background worker (lth_core.runs.stability, a task of
the run); the page shows what is kept with the run, k by k as it arrives, and offers a run rewound to k*."""
import streamlit as st

from lth_core.analysis.stability_view import (barrier_table, end_error_figure, instability_figure, path_figure,
                                              sentences)
from lth_core.analysis.summary import pct
from lth_core.engine.errors import ConfigError
from lth_core.engine.stability import DEFAULT_ALPHAS, DENSE, stable_from
from lth_core.runs import tasks
from lth_core.runs.stability import default_ks, parse_ks, stored_analysis, submit_stability
from lth_core.runs.store import StoreError
from ui.form import check, submit
from ui.task_notice import task_notice
from ui.widgets import PAGES, chart, guarded, one_line, run_context, run_picker, stop_page, store, url_choice

REFRESH_S = 2.0

st.title("Stability: when does training stop depending on the data order?")
st.markdown("Copy the dense network at iteration **k** of its training, train the two copies with different orders "
            "of the data, and test every network on the straight line between them (Frankle et al. 2020, *Linear "
            "mode connectivity and the lottery ticket hypothesis*). If the error does not rise along the line, the "
            "network is **stable** at k: the data order no longer decides where training ends. Tickets work from the "
            "first k at which the network is stable, which is what `rewind:k` uses.")
run_id = run_picker()
info = store().get_run(run_id)
rounds = store().rounds(run_id)
done = sorted(int(r) for r in rounds["round"].unique())
if not done or info.iterations is None:
    st.info("The dense network (round 0) has not finished yet.")
    stop_page()


def round_label(r: int) -> str:
    if r == 0:
        return "0 (the dense network alone)"
    return f"{r} ({pct(rounds[rounds['round'] == r].weights_remaining.mean())} of the weights): ticket and controls"


left, right = st.columns([3, 1])
rnd = url_choice("round", done, "Round", container=left, field="round", default=done[-1], format_func=round_label)
trials = sorted(int(t) for t in rounds["trial"].unique())
trial = url_choice("trial", trials, "Trial", container=right, field="trial", default=trials[0])
kept = stored_analysis(store(), run_id, rnd, trial)
task_key = tasks.task_key("stability", rnd, trial)
path = str(store().path)

ks_col, alphas_col, button_col = st.columns([3, 1, 1], vertical_alignment="bottom")
ks_key, alphas_key = f"stability:ks:{run_id}:{rnd}:{trial}", f"stability:alphas:{run_id}:{rnd}:{trial}"
ks_col.text_input("k: iterations to copy the dense network at (comma-separated)",
                  ", ".join(map(str, kept.ks if kept else default_ks(info.iterations))), key=ks_key,
                  help=f"From 0 to the {info.iterations} iterations of a round; each k trains two copies of "
                       "every network for a full round.")
alphas_col.number_input("Points on each line", 3, 101, value=kept.alphas if kept else DEFAULT_ALPHAS, key=alphas_key)


def analyse() -> None:
    # a callback runs before the script: the widgets' values are read from the session, not from this run's locals
    try:
        submit_stability(run_id, rnd, trial, parse_ks(st.session_state[ks_key]), int(st.session_state[alphas_key]),
                         store_path=path)
    except (ConfigError, StoreError) as exc:
        st.session_state["stability:error"] = one_line(exc)


task = tasks.get(store(), run_id, task_key)
busy = task is not None and task.active
button_col.button("Analyse" if kept is None else "Analyse again", type="primary", icon=":material/timeline:",
                  disabled=busy, on_click=analyse, key="stability:go",
                  help="Runs in the background worker; the k already kept with these settings are not redone, so it "
                       "also finishes an interrupted analysis.")
if "stability:error" in st.session_state:
    st.error(st.session_state.pop("stability:error"))


@st.fragment(run_every=REFRESH_S if busy else None)
@guarded
def task_status(was_active: bool, shown: int) -> None:
    """The analysis's state while it is queued or running; the page reruns as each k is kept and when it ends."""
    task = tasks.get(store(), run_id, task_key)
    active = task is not None and task.active
    now = stored_analysis(store(), run_id, rnd, trial)
    if (was_active and not active) or (now is not None and len(now.done_ks) != shown):
        st.rerun(scope="app")
    task_notice(task, "Analysing", "analysis", again="Press **Analyse again** to finish it; the k already done are kept.",
                kept="each k is kept with the run as soon as it is done")


task_status(busy, len(kept.done_ks) if kept else 0)
if kept is None or not kept.paths:
    if not busy:
        st.info("No analysis of this round and trial yet: choose the k and press **Analyse**. Each k trains two copies "
                "of the dense network (and, for a pruned round, of the ticket and each control) for a full round.",
                icon=":material/info:")
    stop_page()

reset = info.config.reset
context = run_context(info)
said = sentences(kept.paths, kept.iterations, reset)  # numbers and registry labels only: no text a user typed
st.markdown(said[0])
if len(said) > 1:
    st.markdown(" ".join(said[1:]))
if kept.missing_ks:
    st.caption(f"Not done yet: k = {', '.join(map(str, kept.missing_ks))}.")

k_star = stable_from(kept.paths, DENSE)
if k_star and k_star > 0:
    rewound = info.config.replace(reset=f"rewind:{k_star}")
    if st.button(f"Start a run rewound to iteration {k_star} (`rewind:{k_star}`), otherwise as this one",
                 icon=":material/replay:", key="stability:rewind"):
        # estimated and submitted as New experiment does, so that Live run shows its time left and "Took …" after
        checked = check(rewound.to_dict())
        try:
            if not checked.ok:
                raise ConfigError(checked.field or "config", checked.message or "cannot be estimated")
            new_id = submit(checked, f"{info.name} · rewind:{k_star}")
        except (ConfigError, StoreError) as exc:
            st.error(one_line(exc))
        else:
            st.session_state["sel:run"] = new_id  # the run chosen on every page from now on, as New experiment does
            st.session_state.pop("w:run", None)   # else this page's picker, still in the session, would win there
            st.switch_page(PAGES["live"], query_params={"run": new_id})

chart(instability_figure(kept.paths, reset=reset), "stability_barrier", context=context)
chart(path_figure(kept.paths, DENSE, reset=reset), "stability_path", context=context)
if any(p.variant != DENSE for p in kept.paths):
    chart(path_figure(kept.paths, "ticket", reset=reset), "stability_path", context=context)
    chart(end_error_figure(kept.paths, reset=reset), "stability_end", context=context)
table = barrier_table(kept.paths, reset)
st.dataframe(table.drop(columns=["variant"]).rename(columns={
    "barrier": "barrier (%)", "end_error": "error of the trained copies (%)", "max_error": "worst error on the line (%)"}),
    hide_index=True, column_config={c: st.column_config.NumberColumn(format="%.1f") for c in
                                    ("barrier (%)", "error of the trained copies (%)", "worst error on the line (%)")})
