"""The sanity checks of a stored run: written round by round as it trains, rerun on demand, read as a checklist.

What each check means and how a line reads is in `lth_core.analysis.checks`; this module connects it to the
run store (the "checks" document) and to `lth_core.engine.retrain` for the on-demand rerun.
"""
from __future__ import annotations

import copy
import math
from typing import Iterable

from lth_core.analysis import checks as C
from lth_core.engine.results import weights_hash
from lth_core.runs.store import RunStore, now_iso


class ChecksWriter:
    """Folds each committed round's RoundFinished events into the run's "checks" document, in the round's own
    commit. The ticket's starting weights are compared with what the store keeps: the trial's initial weights
    (and rewind point) read back from the store."""

    def __init__(self, store: RunStore, run_id: str) -> None:
        self.store, self.run_id = store, run_id
        self._reset: str | None = None
        self._keeps_trained = False
        self._doc: dict | None = None
        self._expected: dict[int, tuple[dict[str, str], dict[str, str] | None]] = {}

    def _hashes(self, arrays: dict | None) -> dict[str, str] | None:
        return None if arrays is None else {n: weights_hash(a) for n, a in arrays.items()}

    def _starts(self, trial: int) -> tuple[dict[str, str], dict[str, str] | None]:
        if trial not in self._expected:
            init, rewind = self.store.starting_points(self.run_id, trial)
            self._expected[trial] = (self._hashes(init), self._hashes(rewind))
        return self._expected[trial]

    def prepare(self) -> None:
        """Read the run's reset and its document so far (a resumed run goes on counting). Called before the
        commit's transaction: get_run may write (RunStore.recover), which cannot happen inside it."""
        if self._reset is None:
            config = self.store.get_run(self.run_id).config
            self._reset, self._keeps_trained = config.reset, config.keeps_trained
            self._doc = self.store.doc(self.run_id, C.DOC_KEY) or C.new_doc()

    def add_round(self, db, round: int, finished: Iterable) -> None:
        """Fold round `round` into the document and write it in the open transaction `db` of the round's commit
        (the store's reads share its connection, so they see the starting points that commit has just written)."""
        finished = list(finished)
        assert self._reset is not None and self._doc is not None, "prepare() first, outside the transaction"
        starts = {} if round > 0 and self._keeps_trained else \
            {trial: self._starts(trial) for trial in sorted({e.trial for e in finished})}
        expected = C.expected_starts(round, self._reset, self._keeps_trained, starts)
        doc = copy.deepcopy(self._doc)
        C.add_round(doc, finished, expected, self._reset)
        self.store.put_doc(self.run_id, C.DOC_KEY, doc, db=db)
        self._doc = doc


def run_checklist(store: RunStore, run_id: str) -> list[C.CheckLine]:
    """The checklist of a stored run (see `lth_core.analysis.checks.checklist`)."""
    return C.stored_checklist(store, run_id)


def run_marks(store: RunStore, run_ids: Iterable[str]) -> dict[str, str]:
    """The runs table's "checks" cell of each run ('✓', '✗ zero weights', '⚠ budget', '' before any round)."""
    marks = {}
    for run_id in run_ids:
        try:
            marks[run_id] = C.run_mark(run_checklist(store, run_id))
        except Exception:  # an unreadable run is marked as such elsewhere; its checks cannot be read either
            marks[run_id] = ""
    return marks


def rerun_check(store: RunStore, run_id: str, round: int, trial: int = 0) -> dict:
    """Train round `round` of the stored run again with its config and seed (engine/retrain.py) and compare
    every variant's test accuracy of `trial` with the stored one. Kept in the "checks/rerun" document (the last one);
    returns it: round, trial, ok, detail (one line), and the first variant that differed."""
    from lth_core.engine.retrain import retrain

    rounds = store.rounds(run_id)
    variants = tuple(rounds[(rounds["round"] == round) & (rounds["trial"] == trial)]["variant"])
    models = retrain(store, run_id, round, trial, variants or ("ticket",))
    differ = [m for m in models.values() if not math.isclose(m.test_accuracy, m.stored_test_accuracy, abs_tol=1e-9)]
    figures = ", ".join(f"{v} {100 * m.test_accuracy:.2f} %" for v, m in models.items())
    if differ:
        first = differ[0]
        detail = (f"round {round}, trial {trial} retrained: {first.variant} {100 * first.test_accuracy:.2f} % against "
                  f"the stored {100 * first.stored_test_accuracy:.2f} %")
    else:
        detail = f"round {round}, trial {trial} retrained with the same seed: {figures}, the same as stored"
    result = {"round": round, "trial": trial, "ok": not differ, "detail": detail, "at": now_iso(),
              "variant": differ[0].variant if differ else "ticket"}
    store.put_doc(run_id, C.RERUN_KEY, result)   # apart from "checks": the recorder may be writing that one now
    return result

