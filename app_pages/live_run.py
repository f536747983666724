"""Live run: progress of the round in flight, its learning curves, the accuracy plot growing round by
round, and Cancel / Resume. Everything is read from the store about once a second, so a reload, a
second tab or another browser shows the same state."""
import time

import pandas as pd
import streamlit as st

from lth_core import jobs
from lth_core.runs.estimate import (ahead_words, began_at, describe_wait, format_elapsed, format_seconds, iso_epoch,
                                    queue_ahead, save_clock, saved_clock, time_left)
from lth_core.runs.store import ACTIVE, RESUMABLE
from lth_core.analysis import plots
from ui.example import example_notice
from lth_core.engine.variants import TICKET, label, ordered
from lth_core.analysis.summary import pct, rounds_done_text, run_summary
from ui.checks import checklist
from ui.text import md
from ui.widgets import (PAGES, PENDING, cached_chart, guard, guarded, run_context, run_links, run_picker, store,
                        store_token, variant_legend)

st.title("Live run")
run_id = run_picker(need_rounds=False)
info = store().get_run(run_id)
example_notice(run_id)  # the badge and provenance of the shipped example run
REFRESH_S = 1.0 if info.status in ACTIVE else None


@st.fragment(run_every=REFRESH_S)
@guarded
def live_view() -> None:
    token = store_token()  # before anything is read: a round committed meanwhile changes the token, redrawing
    run = store().get_run(run_id)
    if (run.status in ACTIVE) != (REFRESH_S is not None):
        st.rerun(scope="app")  # the run started or ended: redraw the page, refreshing only while it trains
    # rounds_total is None until the worker has planned the run (a target size decides the count then);
    # round is None until the run's process got past its start-up (Python, PyTorch, the dataset)
    total = run.rounds_total + 1 if run.rounds_total is not None else None
    started = run.round is not None
    rnd = run.round if started else 0
    st.subheader(md(run.name))
    state = {"queued": "waiting for a free worker (runs train one after another)",
             "running": "training" if started else "starting (loading PyTorch and the dataset)",
             "finished": "finished", "failed": "failed", "cancelled": "cancelled", "interrupted": "interrupted"}
    described = state.get(run.status, run.status)
    st.markdown(f"**Status: {run.status}**{'' if described == run.status else f' — {described}'} · run `{run.id}` · "
                f"{md(run.config.dataset)}, {run.config.arch} · on {run.device or 'cpu'}")
    rounds_of = rounds_done_text(run.rounds_done, run.rounds_total)
    if run.status == "failed":
        st.error(f"The run failed: {md(run.error or 'no reason was recorded')}", icon=":material/error:")
    elif run.status in ("cancelled", "interrupted"):
        st.warning(f"The run was {run.status}" + (f": {md(run.error)}" if run.error else "") +
                   f". Rounds already finished are kept ({rounds_of}).", icon=":material/stop_circle:")
    if not run.active and run.rounds_done == 0 and not started:
        st.info("Nothing was trained. Change the settings on **New experiment** and run again.")
        controls(run, total)
        return
    done_iters = run.iteration or 0
    training = run.status == "running" and started
    if not started:
        st.progress(0.0, text="waiting for a free worker" if run.status == "queued" else "starting: loading PyTorch and the dataset")
    else:
        in_round = done_iters / run.iterations if training and run.iterations else 0
        fraction = (run.rounds_done + in_round) / (total or 1)
        now = (f" · round {rnd}{' (the dense network)' if rnd == 0 else ''}: iteration {done_iters} of {run.iterations}"
               if training and run.iterations else "")
        st.progress(min(1.0, fraction), text=f"{rounds_of}{now}")
    time_line(run)
    planned = run.planned_remaining
    rounds = store().rounds(run_id)
    cols = st.columns(4)
    until = (f"until {pct(run.config.target_remaining)} of the weights is left" if run.config.target_remaining is not None
             else "")
    cols[0].metric("Round", f"{rnd} of {run.rounds_total}" if started and total else "—",
                   help="round 0 trains the dense network; rounds 1, 2 … are the pruned rounds counted here" +
                   ("" if total else f"; how many rounds it takes ({until}) is worked out when the run starts"))
    cols[1].metric("Weights remaining", pct(planned[rnd]) if started and rnd < len(planned) else "—")
    cols[2].metric("Iteration", f"{done_iters} of {run.iterations}" if started and run.iterations else "—",
                   help="training steps of this round")
    ticket = rounds[rounds.variant == TICKET]
    # a short label: four metrics share a 1280 px row, and a longer one is cut ("Ticket accuracy, last finished r…")
    cols[3].metric("Ticket accuracy", pct(ticket.groupby("round").test_accuracy.mean().iloc[-1])
                   if not ticket.empty else "—", help="the ticket's test accuracy in the last finished round (mean "
                                                      "over trials)")
    names = ["dense network"] if rnd == 0 else [label(v, run.config.reset)
                                                for v in ordered((run.variant or "").split("+"))]
    if names and training:
        st.caption(f"Training together now: {', '.join(names)}" + (f" ({run.config.trials} trials each)"
                                                                    if run.config.trials > 1 else "") + ".")
    if not started:
        controls(run, total)
        return
    curves = store().curves(run_id, round=rnd)
    if rnd:
        curves = pd.concat([store().curves(run_id, round=0), curves])
    variant_legend(["dense"] if rnd == 0 else [TICKET, *run.variants[1:], "dense"], run.config.reset)  # round 0: the dense net alone
    if curves.empty:
        if run.active:
            st.info("The first evaluation of this round appears here in a moment.")
    else:
        training_now = run.status in ACTIVE
        cached_chart(("live:curves", run_id, rnd, training_now),
                     lambda: plots.compare_curves(curves, rnd, title=f"Learning curves of round {rnd}" +
                                                  (" (training now)" if training_now else ""), reset=run.config.reset),
                     "live_curves", context=run_context(run), token=token)
    if rounds.empty:
        if run.active:
            st.info("The accuracy plot starts when round 0 (the dense network) finishes.")
    else:
        cached_chart(("live:accuracy", run_id),
                     lambda: plots.accuracy_vs_weights(rounds, planned=planned, title="Test accuracy of every finished round",
                                                       reset=run.config.reset),
                     "live_accuracy", context=run_context(run), token=token)
    if not rounds.empty:
        st.markdown("\n".join(f"- {line}" for line in run_summary(rounds, reset=run.config.reset)))
        st.markdown("**Sanity checks**")
        checklist(run_id)

    controls(run, total)
    if run.status == "finished":
        st.success("Finished. Explore what came out:", icon=":material/check_circle:")
        run_links(run_id, ("results", "masks", "compare"))


def time_line(run) -> None:
    """Elapsed time beside the estimate saved when the run was submitted (or resumed) from the app, and
    the time left; the wait in the queue behind other runs is told apart from the run's own time. A run
    submitted otherwise has no saved estimate, and its age could include a stop and a resume: nothing is
    shown then."""
    clock = saved_clock(store(), run.id)
    if clock is None:
        return
    now, estimated = time.time(), f"estimated about {format_seconds(clock.seconds)}"
    if run.status == "queued":
        ahead = queue_ahead(store(), run.id, now)
        if ahead.count:
            st.caption(f"Waiting in the queue for {format_elapsed(now - clock.submitted)} · {describe_wait(ahead)} · "
                       f"then it should take about {format_seconds(clock.seconds)} ({'at least' if ahead.unclocked else 'about'} "
                       f"{format_seconds(ahead.seconds + clock.seconds)} left in all).")
        else:
            st.caption(f"Once it starts, it should take about {format_seconds(clock.seconds)}.")
        return
    began = began_at(store(), run, clock)  # a worker's claim, after a wait behind other runs; else the submit
    waited = began - clock.submitted
    behind = f" behind {ahead_words(clock.ahead, clock.ahead_tasks)}" if clock.waited else ""
    queue = f", after {format_elapsed(waited)} in the queue{behind}" if waited >= 1 else ""
    if run.active:
        left = time_left(store(), run, clock, now)
        st.caption(f"Elapsed {format_elapsed(now - began)} · {estimated} · about {format_seconds(left)} left"
                   + (f" (it waited {format_elapsed(waited)} in the queue{behind} first)" if waited >= 1 else ""))
    elif (ended := iso_epoch(run.finished_at)) is not None and ended >= clock.submitted:
        st.caption(f"Took {format_elapsed(ended - began)} ({estimated}){queue}.")


def controls(run, total: int | None) -> None:
    """Cancel a run in flight; resume one that stopped early."""
    if run.status in ACTIVE:
        if st.button("Cancel the run", icon=":material/stop:", help="stops within a second; finished rounds are kept"):
            jobs.cancel(run.id)
            st.toast("Cancelling… finished rounds are kept.")
    elif run.status in RESUMABLE and (total is None or run.rounds_done < total):
        if st.button("Resume", icon=":material/play_arrow:", help="continue after the last finished round"):
            jobs.resume(run.id)
            if (clock := saved_clock(store(), run.id)) is not None:  # time the rest from now
                save_clock(store(), run.id, clock.estimate, from_round=run.rounds_done)
            st.rerun(scope="app")


live_view()

with st.expander("Rename or delete this run"):
    with guard("Renaming or deleting"):
        new_name = st.text_input("Name", value=info.name, max_chars=200, key=f"rename:{run_id}")
        if st.button("Rename", icon=":material/edit:", disabled=new_name.strip() == info.name):
            store().rename(run_id, new_name)  # an empty name is refused with a one-line message
            st.rerun(scope="app")
        sure = st.checkbox("Yes, delete this run and everything it recorded (this cannot be undone)",
                           key=f"delete_sure:{run_id}")
        if st.button("Delete the run", icon=":material/delete:", disabled=not sure,
                     help="a run still training stops"):
            store().delete(run_id)  # a worker still training it notices and stops
            st.query_params.clear()
            st.session_state.pop(PENDING, None)  # nor the choices this run was about to write
            for key in ("sel:run", "w:run"):
                st.session_state.pop(key, None)
            st.toast(f"Deleted the run {md(info.name)} ({run_id}).")
            st.switch_page(PAGES["new"])

if REFRESH_S is None:
    @st.fragment(run_every=3.0)
    def watch_status() -> None:
        """A stopped run can be resumed from another tab: notice that and redraw."""
        if store().get_run(run_id).status != info.status:
            st.rerun(scope="app")

    watch_status()
