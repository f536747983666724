"""What the runs list needs beside the runs table: each run's critical sparsity, kept with the run.

The list sorts by the ticket's critical sparsity in SQL (RunStore.query_runs), so the number must be in
the store, not computed per row on every look: the recorder writes it (CRITICAL_DOC) with every committed
round; `refresh_critical` fills it in for runs stored before it did, and recomputes a document kept by an
older rule (the interpolated one: no "rule" field; `RunStore.runs_missing_critical`).
"""
from __future__ import annotations

import math

from lth_core.analysis.statistics import REFERENCE, critical_sparsity, critical_text
from lth_core.runs.store import CRITICAL_DOC, CRITICAL_RULE, RunStore, StoreError


def critical_doc(store: RunStore, run_id: str, committed_round: int) -> dict:
    """{"round", "fraction", "text", "rule"} of the run's ticket at its last finished round, by the measured-round
    rule every page uses (`statistics.critical_sparsity`; fraction None when the ticket has no pruned round with a
    dense network to compare). The list sorts on `fraction` and shows `text`."""
    table = critical_sparsity(store.rounds(run_id))
    row = table[table["variant"] == REFERENCE]
    fraction = None if row.empty or math.isnan(float(row.iloc[0]["fraction"])) else float(row.iloc[0]["fraction"])
    return {"round": int(committed_round), "fraction": fraction,
            "text": critical_text(row.iloc[0]) if fraction is not None else "", "rule": CRITICAL_RULE}


def refresh_critical(store: RunStore) -> int:
    """Write the CRITICAL_DOC of every run that lacks one for its last finished round; returns how many.
    A run deleted meanwhile, or one whose rounds cannot be read, is left out."""
    done = 0
    for run_id, committed in store.runs_missing_critical():
        try:
            store.put_doc(run_id, CRITICAL_DOC, critical_doc(store, run_id, committed))
            done += 1
        except (StoreError, ValueError, KeyError):
            continue
    return done


__all__ = ["critical_doc", "refresh_critical"]
