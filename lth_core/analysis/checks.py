"""A run's sanity checks: what each one verified, where it failed, and what that means.

Three are recorded while the run trains (`lth_core.runs.checks` writes them into the store's "checks"
document from the engine's RoundFinished events): pruned weights stayed exactly zero, the ticket (and the
random mask, reset like it) started from the stored initial weights or rewind point, and every control kept
the ticket's per-layer counts. One runs on demand (a rerun of a finished round repeats its numbers), and
one is read from the stored rounds (was the training budget long enough?). `checklist` turns all of it into
one line per check; the CLI's `show`, Live run and Compare print those lines.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import pandas as pd

from lth_core.analysis.summary import pct

DOC_KEY = "checks"          # the run store's document (RunStore.put_doc / doc)
RERUN_KEY = "checks/rerun"  # the last on-demand rerun, kept apart: it may run while the recorder writes DOC_KEY
DOC_VERSION = 1
MAX_LISTED = 20             # failures kept per check (the count keeps going)
STARTS_LIKE_TICKET = ("ticket", "random")   # the variants that start from the reset point (init or rewind)

PASS, FAIL, WARN, NOT_RUN = "pass", "fail", "warn", "not run"
SYMBOL = {PASS: "✓", FAIL: "✗", WARN: "⚠", NOT_RUN: "–"}


@dataclass(frozen=True)
class CheckInfo:
    title: str
    meaning: str            # what a failure means, in one sentence


CHECKS: dict[str, CheckInfo] = {
    "zero_weights": CheckInfo(
        "Pruned weights stay exactly zero",
        "a pruned weight that is not zero takes part in the network, so the measured network is denser than its mask "
        "says and its accuracy is not the ticket's"),
    "same_start": CheckInfo(
        "The ticket starts from the stored initial weights",
        "the ticket did not start from the weights the store keeps as its init (or rewind point), so the stored "
        "ticket (mask × those weights) is not the network that was trained"),
    "control_counts": CheckInfo(
        "Controls keep the ticket's per-layer counts",
        "a control with other per-layer counts is not the same size as the ticket, so its gap to the ticket mixes "
        "the mask's layout with how many weights each layer keeps"),
    "rerun": CheckInfo(
        "A rerun of a finished round repeats its numbers",
        "the same config and seed gave different numbers, so the stored results cannot be reproduced from the "
        "stored masks and starting points"),
    "budget": CheckInfo(
        "The training budget was long enough",
        "training had not converged: the gaps between variants mix 'learns faster' with 'ends higher'"),
}


def new_doc() -> dict:
    return {"version": DOC_VERSION,
            "zero_weights": {"models": 0, "checks": 0, "failed": 0, "failures": []},
            "same_start": {"models": 0, "failed": 0, "failures": [], "skipped": None},
            "control_counts": {"models": 0, "failed": 0, "failures": []}}


def where(trial: int, round: int, variant: str, layer: str | None = None) -> str:
    return f"trial {trial}, round {round}, {variant}" + (f", layer {layer}" if layer else "")


def _fail(part: dict, entry: dict) -> None:
    part["failed"] += 1
    if len(part["failures"]) < MAX_LISTED:
        part["failures"].append(entry)


def expected_starts(round: int, reset: str, keeps_trained: bool,
                    starts: dict[int, tuple[dict[str, str], dict[str, str] | None]]) -> dict[int, dict[str, str]] | None:
    """What the ticket of each trial must start from in `round`, by hash: the init in round 0 and with reset init,
    the rewind point with rewind:K; None (nothing to compare with) when it starts from trained weights.
    `starts`: per trial, the hashes of its stored init and rewind point (None without one)."""
    if round > 0 and keeps_trained:   # reset none or lr-rewind: from round 1 on it starts from trained weights
        return None
    if round == 0:
        return {trial: init for trial, (init, _) in starts.items()}
    return {trial: rewind if reset.startswith("rewind") and rewind is not None else init
            for trial, (init, rewind) in starts.items()}


def add_round(doc: dict, finished: Iterable, expected_start: dict[int, dict[str, str]] | None,
              reset: str) -> None:
    """Fold one committed round's RoundFinished events into `doc` (in place).

    expected_start: per trial, parameter name → weights_hash of the point the ticket must start from in this
    round (the stored init, or with reset rewind:K the stored rewind point from round 1 on); None when there is
    none to compare with (resets 'none' and 'lr-rewind' start from the previous round's trained weights)."""
    finished = list(finished)
    zero, start = doc["zero_weights"], doc["same_start"]
    for e in finished:
        if e.zero_checks:
            zero["models"] += 1
            zero["checks"] += e.zero_checks
            for layer, value in e.pruned_max.items():
                if value != 0.0:
                    _fail(zero, {"trial": e.trial, "round": e.round, "variant": e.variant, "layer": layer,
                                 "detail": f"a pruned weight was {value:.3g}, not 0"})
        if e.variant not in STARTS_LIKE_TICKET or not e.start_hashes:
            continue
        if expected_start is None:
            start["skipped"] = f"reset {reset}: from round 1 on the ticket starts from the previous round's trained weights"
            continue
        start["models"] += 1
        expected = expected_start.get(e.trial, {})
        for name, got in e.start_hashes.items():
            if expected.get(name) != got:
                _fail(start, {"trial": e.trial, "round": e.round, "variant": e.variant, "layer": name,
                              "detail": "not stored" if name not in expected else
                              f"started from weights hashed {got}, the store's are {expected[name]}"})
    rows = [(e.trial, e.round, e.variant, layer, total, remaining)
            for e in finished for layer, (total, remaining) in e.layers.items()]
    add_counts(doc, pd.DataFrame(rows, columns=["trial", "round", "variant", "layer", "total", "remaining"]))


def add_counts(doc: dict, layers: pd.DataFrame) -> None:
    """Compare every control's per-layer (total, remaining) with its trial's ticket in the same round."""
    part = doc["control_counts"]
    if layers.empty:
        return
    ticket = layers[layers["variant"] == "ticket"].set_index(["trial", "round", "layer"])
    controls = layers[layers["variant"] != "ticket"]
    part["models"] += len(controls.groupby(["trial", "round", "variant"]))
    for row in controls.itertuples(index=False):
        key = (row.trial, row.round, row.layer)
        if key not in ticket.index:
            _fail(part, {"trial": int(row.trial), "round": int(row.round), "variant": row.variant, "layer": row.layer,
                         "detail": "the ticket has no such layer"})
            continue
        t = ticket.loc[key]
        if (int(t["total"]), int(t["remaining"])) != (int(row.total), int(row.remaining)):
            _fail(part, {"trial": int(row.trial), "round": int(row.round), "variant": row.variant, "layer": row.layer,
                         "detail": f"keeps {int(row.remaining):,} of {int(row.total):,} weights, the ticket "
                                   f"{int(t['remaining']):,} of {int(t['total']):,}"})


# ---- the budget check: read from the stored rounds -----------------------------------------------

@dataclass
class Budget:
    flagged: list[int]                    # rounds that had not converged
    rounds: int                           # rounds looked at
    last_iteration: int
    detail: dict[int, list[str]] = field(default_factory=dict)  # flagged round → variants that stopped at the end

    @property
    def ok(self) -> bool:
        return not self.flagged


def budget_check(rounds: pd.DataFrame, last_iteration: int | None) -> Budget | None:
    """A round had not converged when, for most of its variants, most trials (more than half) reached their lowest validation
    loss at the last evaluation point (early_stop_iteration == the round's last iteration). None without rounds."""
    if rounds.empty or not last_iteration:
        return None
    flagged, detail = [], {}
    for rnd, frame in rounds.groupby("round", sort=True):
        at_end = (frame["early_stop_iteration"] >= last_iteration).groupby(frame["variant"], sort=False).mean()
        late = [v for v, share in at_end.items() if share > 0.5]
        if len(late) * 2 > len(at_end):
            flagged.append(int(rnd))
            detail[int(rnd)] = late
    return Budget(flagged, int(rounds["round"].nunique()), int(last_iteration), detail)


def suggested_budget(config: dict) -> str:
    """Twice the current budget, in the units the config was given in."""
    if config.get("iterations"):
        return f"iterations {2 * int(config['iterations'])} a round (now {int(config['iterations'])})"
    epochs = config.get("epochs") or 3.0
    return f"epochs {2 * float(epochs):g} a round (now {float(epochs):g})"


def _round_ranges(values: list[int]) -> str:
    parts, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            parts.append(str(start) if start == v else f"{start}–{v}")
            start = None
    return ", ".join(parts)


# ---- the checklist ------------------------------------------------------------------------------

@dataclass(frozen=True)
class CheckLine:
    key: str
    status: str          # PASS, FAIL, WARN or NOT_RUN
    title: str
    line: str            # one line: what was checked, or where it failed and what that means
    where: tuple[str, ...] = ()   # the first failures, one place each

    @property
    def symbol(self) -> str:
        return SYMBOL[self.status]

    def text(self) -> str:
        return f"{self.symbol} {self.title}: {self.line}"


def _failed_line(key: str, part: dict) -> CheckLine:
    first = part["failures"]
    places = tuple(f"{where(f['trial'], f['round'], f['variant'], f['layer'])}: {f['detail']}" for f in first)
    more = part["failed"] - 1
    line = f"failed at {places[0]}" + (f" (and {more} more)" if more > 0 else "") + f". It means {CHECKS[key].meaning}."
    return CheckLine(key, FAIL, CHECKS[key].title, line, places)


def checklist(doc: dict | None, rounds: pd.DataFrame, layers: pd.DataFrame, last_iteration: int | None,
              config: dict, run_id: str = "ID", rerun: dict | None = None) -> list[CheckLine]:
    """One line per check, in CHECKS' order. `doc` is the run's "checks" document (None for a run recorded
    before checks were kept: the counts are then read from the stored layers, and the two checks only the
    training loop can make say they were not recorded). `rerun`: the last on-demand rerun (RERUN_KEY), if any."""
    lines = []
    recorded = doc is not None
    if doc is None:
        doc = new_doc()
        add_counts(doc, layers)
    zero = doc["zero_weights"]
    if zero["failed"]:
        lines.append(_failed_line("zero_weights", zero))
    elif zero["models"]:
        lines.append(CheckLine("zero_weights", PASS, CHECKS["zero_weights"].title,
                               f"{zero['models']} trained networks, checked at every evaluation point "
                               f"({zero['checks']:,} checks)"))
    else:
        lines.append(CheckLine("zero_weights", NOT_RUN, CHECKS["zero_weights"].title,
                               "not recorded for this run" if not recorded else "no round finished yet"))
    start = doc["same_start"]
    if start["failed"]:
        lines.append(_failed_line("same_start", start))
    elif start["models"]:
        skipped = f"; {start['skipped']}" if start.get("skipped") else ""
        lines.append(CheckLine("same_start", PASS, CHECKS["same_start"].title,
                               f"{start['models']} {'network that starts' if start['models'] == 1 else 'networks that start'}"
                               f" like the ticket (tickets, random masks), every parameter equal by hash{skipped}"))
    else:
        lines.append(CheckLine("same_start", NOT_RUN, CHECKS["same_start"].title,
                               start.get("skipped") or ("not recorded for this run" if not recorded
                                                        else "no round finished yet")))
    counts = doc["control_counts"]
    if counts["failed"]:
        lines.append(_failed_line("control_counts", counts))
    elif counts["models"]:
        lines.append(CheckLine("control_counts", PASS, CHECKS["control_counts"].title,
                               f"{counts['models']} controls, every layer the same count as the ticket"))
    else:
        lines.append(CheckLine("control_counts", NOT_RUN, CHECKS["control_counts"].title,
                               "no control trained yet (a run with controls checks them)"))
    if rerun is None:
        lines.append(CheckLine("rerun", NOT_RUN, CHECKS["rerun"].title,
                               f"on demand: python -m lth_core check {run_id} --round R, or the button on Compare"))
    elif rerun["ok"]:
        lines.append(CheckLine("rerun", PASS, CHECKS["rerun"].title, rerun["detail"]))
    else:
        lines.append(CheckLine("rerun", FAIL, CHECKS["rerun"].title,
                               f"{rerun['detail']}. It means {CHECKS['rerun'].meaning}.",
                               (where(rerun["trial"], rerun["round"], rerun.get("variant", "ticket")),)))
    lines.append(budget_line(budget_check(rounds, last_iteration), rounds, config))
    return lines


def _rounds_counted(rounds: pd.DataFrame) -> str:
    """What the budget check looked at, counted as every page counts rounds: round 0 is the dense network,
    rounds 1 … N are the pruned ones ('the dense network and 12 pruned rounds')."""
    numbers = set(int(r) for r in rounds["round"].unique())
    pruned = len(numbers - {0})
    parts = (["the dense network"] if 0 in numbers else []) + \
        ([f"{pruned} pruned round{'' if pruned == 1 else 's'}"] if pruned else [])
    return " and ".join(parts)


def budget_line(budget: Budget | None, rounds: pd.DataFrame, config: dict) -> CheckLine:
    title = CHECKS["budget"].title
    if budget is None:
        return CheckLine("budget", NOT_RUN, title, "no round finished yet")
    looked_at = _rounds_counted(rounds)
    if budget.ok:
        return CheckLine("budget", PASS, title, f"in {'each of ' if budget.rounds > 1 else ''}{looked_at}, most "
                                                "variants reached their lowest validation loss before the last of "
                                                f"{budget.last_iteration} iterations")
    remaining = rounds.groupby("round")["weights_remaining"].mean()
    pruned = [r for r in budget.flagged if r > 0]
    which = (["the dense network (round 0)"] if 0 in budget.flagged else []) + \
        ([f"pruned round{'s' if len(pruned) > 1 else ''} {_round_ranges(pruned)}"] if pruned else [])
    if pruned:  # the weights those pruned rounds kept, as every page prints shares (one decimal)
        first, last = pct(remaining[pruned[0]]), pct(remaining[pruned[-1]])
        which[-1] += f" ({first} of the weights)" if first == last else f" ({first} to {last} of the weights)"
    places = tuple(f"round {r}: {', '.join(budget.detail[r])} at their lowest validation loss at iteration "
                   f"{budget.last_iteration}, the last" for r in budget.flagged[:MAX_LISTED])
    line = (f"of {looked_at}, {' and '.join(which)} had not converged: most variants' lowest validation loss came "
            f"at the last evaluation point (iteration {budget.last_iteration}). Their accuracy gaps mix 'learns "
            f"faster' with 'ends higher'; try {suggested_budget(config)}")
    return CheckLine("budget", WARN, title, line, places)


def run_mark(lines: list[CheckLine]) -> str:
    """What the runs table shows: '✓' when nothing failed, else the failed checks ('✗ …', '⚠ budget')."""
    failed = [line for line in lines if line.status == FAIL]
    warned = [line for line in lines if line.status == WARN]
    if not failed and not warned:
        return "✓" if any(line.status == PASS for line in lines) else ""
    short = {"zero_weights": "zero weights", "same_start": "start", "control_counts": "counts", "rerun": "rerun",
             "budget": "budget"}
    parts = []
    if failed:
        parts.append("✗ " + ", ".join(short[line.key] for line in failed))
    if warned:
        parts.append("⚠ " + ", ".join(short[line.key] for line in warned))
    return " ".join(parts)


def stored_checklist(store, run_id: str) -> list[CheckLine]:
    """The checklist of a stored run, read from `store` (a RunStore, duck-typed: get_run, doc, rounds, layers)."""
    info = store.get_run(run_id)
    config = info.config.to_dict()
    last = info.iterations or config.get("iterations")
    return checklist(store.doc(run_id, DOC_KEY), store.rounds(run_id), store.layers(run_id), last, config, run_id,
                     rerun=store.doc(run_id, RERUN_KEY))
