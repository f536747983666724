"""Live run: progress of the round in flight, its learning curves, the accuracy plot growing round by
round, and Cancel / Resume. Everything is read from the store about once a second, so a reload, a
second tab or another browser shows the same state."""
import pandas as pd
import streamlit as st

from lth_core import jobs
from lth_core.store import ACTIVE, RESUMABLE
from ui import plots
from ui.example import example_notice
from ui.plots import LABELS
from ui.summary import pct, run_summary
from ui.text import md
from ui.widgets import PAGES, chart, guard, guarded, run_context, run_links, run_picker, store, variant_legend

st.title("Live run")
run_id = run_picker(need_rounds=False)
info = store().get_run(run_id)
example_notice(run_id)  # the badge and provenance of the shipped example run
REFRESH_S = 1.0 if info.status in ACTIVE else None


@st.fragment(run_every=REFRESH_S)
@guarded
def live_view() -> None:
    run = store().get_run(run_id)
    if (run.status in ACTIVE) != (REFRESH_S is not None):
        st.rerun(scope="app")  # the run started or ended: redraw the page, refreshing only while it trains
    total = (run.rounds_total or 0) + 1
    rnd = run.round if run.round is not None else 0
    st.subheader(md(run.name))
    state = {"queued": "waiting for a free worker (runs train one after another)", "running": "training",
             "finished": "finished", "failed": "failed", "cancelled": "cancelled", "interrupted": "interrupted"}
    described = state.get(run.status, run.status)
    st.markdown(f"**Status: {run.status}**{'' if described == run.status else f' — {described}'} · run `{run.id}` · "
                f"{md(run.config.dataset)}, {run.config.arch} · on {run.device or 'cpu'}")
    if run.status == "failed":
        st.error(f"The run failed: {md(run.error or 'no reason was recorded')}", icon=":material/error:")
    elif run.status in ("cancelled", "interrupted"):
        st.warning(f"The run was {run.status}" + (f": {md(run.error)}" if run.error else "") +
                   f". Rounds already finished are kept ({run.rounds_done} of {total}).", icon=":material/stop_circle:")
    if not run.active and run.rounds_done == 0 and run.round is None:
        st.info("Nothing was trained. Change the settings on **New experiment** and run again.")
        controls(run, total)
        return
    done_iters = run.iteration or 0
    fraction = (run.rounds_done + (done_iters / run.iterations if run.status in ACTIVE and run.iterations else 0)) / total
    st.progress(min(1.0, fraction), text=f"{run.rounds_done} of {total} rounds done")
    planned = run.planned_remaining
    rounds = store().rounds(run_id)
    cols = st.columns(4)
    cols[0].metric("Round", f"{rnd} of {total - 1}", help="round 0 trains the dense network; rounds 1… are pruned")
    cols[1].metric("Weights remaining", pct(planned[rnd]) if rnd < len(planned) else "—")
    cols[2].metric("Iteration", f"{done_iters} of {run.iterations or '?'}", help="training steps of this round")
    ticket = rounds[rounds.variant == "ticket"]
    cols[3].metric("Ticket accuracy, last finished round", pct(ticket.groupby("round").test_accuracy.mean().iloc[-1])
                   if not ticket.empty else "—")
    names = ["dense network"] if rnd == 0 else [LABELS[v] for v in (run.variant or "").split("+") if v in LABELS]
    if names and run.status in ACTIVE:
        st.caption(f"Training together now: {', '.join(names)}" + (f" ({run.config.trials} trials each)"
                                                                    if run.config.trials > 1 else "") + ".")
    curves = store().curves(run_id, round=rnd)
    if rnd:
        curves = pd.concat([store().curves(run_id, round=0), curves])
    variant_legend(["ticket", *run.variants[1:], "dense"])
    if curves.empty:
        if run.active:
            st.info("The first evaluation of this round appears here in a moment.")
    else:
        chart(plots.compare_curves(curves, rnd, title=f"Learning curves of round {rnd}" +
                                   (" (training now)" if run.status in ACTIVE else "")), "live_curves",
              context=run_context(run))
    if rounds.empty:
        if run.active:
            st.info("The accuracy plot starts when round 0 (the dense network) finishes.")
    else:
        chart(plots.accuracy_vs_weights(rounds, planned=planned, title="Test accuracy of every finished round"),
              "live_accuracy", context=run_context(run))
    if not rounds.empty:
        st.markdown("\n".join(f"- {line}" for line in run_summary(rounds)))

    controls(run, total)
    if run.status == "finished":
        st.success("Finished. Explore what came out:", icon=":material/check_circle:")
        run_links(run_id, ("results", "masks", "compare"))


def controls(run, total: int) -> None:
    """Cancel a run in flight; resume one that stopped early."""
    if run.status in ACTIVE:
        if st.button("Cancel the run", icon=":material/stop:", help="stops within a second; finished rounds are kept"):
            jobs.cancel(run.id)
            st.toast("Cancelling… finished rounds are kept.")
    elif run.status in RESUMABLE and run.rounds_done < total:
        if st.button("Resume", icon=":material/play_arrow:", help="continue after the last finished round"):
            jobs.resume(run.id)
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
