"""The run's sanity checks as a compact checklist (Live run, Compare), and the rerun button (Compare).
What each check means is in `lth_core.analysis.checks`; the lines are read from the store."""
from __future__ import annotations

import time

import streamlit as st

from lth_core.analysis.checks import FAIL, WARN
from lth_core.runs.checks import rerun_check, run_checklist
from ui.text import md
from ui.widgets import store

def checklist(run_id: str) -> None:
    """One line per check: ✓ passed, ✗ failed (where, and what it means), ⚠ budget too short, – not run."""
    lines = run_checklist(store(), run_id)
    items = []
    for line in lines:  # the symbols alone: Streamlit's :red[…] would put an unescaped "[" on the page
        items.append(f"- {line.symbol} **{md(line.title)}**: {md(line.line)}")
    st.markdown("\n".join(items))
    # a failure's places (trial, round, variant, layer), apart from a warning's rounds: a run that only warns
    # has not failed anywhere
    for status, title in ((FAIL, "Where each failed check failed"), (WARN, "Which rounds had not converged")):
        listed = [line for line in lines if line.status == status and line.where]
        if listed:
            with st.expander(title):
                # a warning's places are the rounds themselves: under the check's title ("The training budget was
                # long enough") they would read as the opposite of what they say
                st.markdown("\n".join(f"- **{md(line.title)}**: {md(place)}" if status == FAIL else f"- {md(place)}"
                                       for line in listed for place in line.where))


def rerun_button(run_id: str, rounds: list[int], default: int) -> None:
    """Train one finished round again with the run's seed, here in the page, and record whether it repeats."""
    cols = st.columns([1, 2])
    rnd = cols[0].selectbox("Round to rerun", rounds, index=rounds.index(default), key=f"rerun_round:{run_id}")
    cols[1].caption("Trains that round again (all its trials and variants side by side) with the run's config and "
                    "seed, and compares trial 0's test accuracy with the stored one. A LeNet round of a few epochs "
                    "takes a few seconds; a conv net's longer. `python -m lth_core check ID --round R` does the same.")
    if st.button(f"Rerun round {rnd} and compare", icon=":material/replay:", key=f"rerun:{run_id}"):
        started = time.perf_counter()
        with st.spinner(f"Retraining round {rnd}…"):
            result = rerun_check(store(), run_id, int(rnd))
        took = f" ({time.perf_counter() - started:.1f} s)"
        (st.success if result["ok"] else st.error)(md(result["detail"]) + took)
