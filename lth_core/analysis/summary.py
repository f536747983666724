"""Plain-language sentences generated from a run's rounds table (numbers are means over trials)."""
from __future__ import annotations

import re

import pandas as pd

from lth_core.analysis import statistics
from lth_core.analysis.statistics import pct  # the one definition; the pages import it from here
from lth_core.analysis.recommend import TOLERANCE_POINTS, gap_points, points_text, recommended_round, within_tolerance
from lth_core.engine.variants import TICKET, VARIANTS, ordered, phrase

NAMES = {v.name: v.phrase for v in VARIANTS.values()}  # with reset init; `phrase(name, reset)` names the ticket


def means(rounds: pd.DataFrame, metric: str = "test_accuracy") -> pd.DataFrame:
    """One row per (round, variant): mean weights remaining and mean `metric` over trials."""
    g = rounds.groupby(["round", "variant"], sort=True)
    return pd.DataFrame({"weights_remaining": g["weights_remaining"].mean(), metric: g[metric].mean()}).reset_index()


def dense_accuracy(rounds: pd.DataFrame, metric: str = "test_accuracy") -> float | None:
    dense = rounds[rounds["round"] == 0]
    return float(dense[metric].mean()) if not dense.empty else None


# a number and its unit ("82.9 %", "6.6 points", "1.2 pts"): joined by a no-break space in the headline
# sentences, whose large type otherwise wrapped "82.9" at a line's end and "%" at the next one's start
_NUMBER_UNIT = re.compile(r"(\d) (%|points?\b|pts\b)")


def unbroken(text: str) -> str:
    """`text` with a no-break space between each number and its unit, so a line never breaks between them."""
    return _NUMBER_UNIT.sub(lambda m: f"{m[1]}\u00a0{m[2]}", text)


def round_sentence(rounds: pd.DataFrame, round: int, metric: str = "test_accuracy", reset: str = "init") -> str:
    """E.g. 'At 10.7 % of weights the ticket reaches 93.4 %, reinit 91.9 %, a random mask 89.8 %; dense 94.1 %.'
    `reset`, the run's reset mode, names the ticket: with none it is 'the pruned and fine-tuned network'."""
    m = means(rounds, metric)
    here = m[m["round"] == round]
    if here.empty:
        return f"Round {round} has not finished yet."
    parts = []
    for variant in ordered(here.variant):
        row = here[here.variant == variant]
        verb = " reaches" if variant == TICKET else ""
        parts.append(f"{phrase(variant, reset)}{verb} {pct(float(row[metric].iloc[0]))}")
    dense = dense_accuracy(rounds, metric)
    tail = f"; dense {pct(dense)}" if dense is not None and round != 0 else ""
    if round == 0:
        return unbroken(f"The dense network (all weights, round 0) reaches {pct(float(here[metric].iloc[0]))}.")
    return unbroken(f"At {pct(float(here.weights_remaining.iloc[0]))} of weights {', '.join(parts)}{tail}.")


def run_summary(rounds: pd.DataFrame, metric: str = "test_accuracy", reset: str = "init",
                tolerance: float = TOLERANCE_POINTS) -> list[str]:
    """A few sentences a newcomer can read instead of the plots; `reset` (the run's) names the ticket, `tolerance`
    (points) is how far below dense a network still matches it."""
    if rounds.empty:
        return ["No round has finished yet."]
    last = int(rounds["round"].max())
    out = [round_sentence(rounds, last, metric, reset)]
    if last == 0:
        return out
    # how far each variant can be pruned: the critical sparsity of lth_core.analysis.statistics, the one definition
    # the CLI, Results and Compare all print
    critical = statistics.critical_sparsity(rounds, tolerance, metric)
    out += [statistics.critical_sentence(critical, v, tolerance, reset=reset) for v in critical["variant"]]
    variants = ordered(rounds.variant)
    es = means(rounds, "early_stop_iteration")
    dense_es = es[es["round"] == 0]["early_stop_iteration"]
    at_last = es[es["round"] == last].set_index("variant")["early_stop_iteration"]
    if not dense_es.empty and TICKET in at_last:
        bits = [f"{phrase(v, reset)} at iteration {at_last[v]:.0f}" for v in variants if v in at_last]
        out.append(f"Lowest validation loss (the early-stopping point) in the last round: {', '.join(bits)}; "
                   f"the dense network at iteration {float(dense_es.iloc[0]):.0f}.")
    return [unbroken(line) for line in out]


def headline(rounds: pd.DataFrame, metric: str = "test_accuracy", reset: str = "init") -> str | None:
    """Compare's one sentence: what the run found at its sparsest round, in plain words, e.g. 'At 6.9 % of
    weights the winning ticket reaches 92.1 % (dense 92.5 %), 5.2 points above reinit and 7.0 above the random
    mask (2 trials).' The ticket is named for the run's reset. Gaps are between the numbers as printed. None
    before a pruned round of the ticket."""
    m = means(rounds, metric)
    pruned = m[(m["round"] > 0) & (m.variant == TICKET)]
    if pruned.empty:
        return None
    last = int(pruned["round"].max())
    here = m[m["round"] == last].set_index("variant")
    ticket = float(here.loc[TICKET, metric])
    dense = dense_accuracy(rounds, metric)
    text = (f"At {pct(float(here.loc[TICKET, 'weights_remaining']))} of weights {registry_label(reset)} "
            f"reaches {pct(ticket)}")
    if dense is not None:
        text += f" (dense {pct(dense)})"
    gaps = []
    for variant in (v for v in ordered(here.index) if v != TICKET):
        gap = gap_points(ticket, float(here.loc[variant, metric]))
        side = "above" if gap > 0 else "below" if gap < 0 else "level with"
        amount = f"{abs(gap):.1f}{' points' if not gaps else ''} " if gap else ""
        gaps.append(f"{amount}{side} {phrase(variant, reset).replace('a random', 'the random')}")
    if gaps:
        text += ", " + " and ".join(gaps)
    n = int(rounds[(rounds["round"] == last) & (rounds.variant == TICKET)]["trial"].nunique())
    return unbroken(f"{text} ({n} trial{'s' if n != 1 else ''}).")


def registry_label(reset: str) -> str:
    """'the winning ticket', or what the ticket is under `reset` (the pruned and fine-tuned network ...)."""
    return "the winning ticket" if reset == "init" else phrase(TICKET, reset)


def two_numbers(rounds: pd.DataFrame, tolerance: float = TOLERANCE_POINTS, metric: str = "test_accuracy") -> str | None:
    """Why the recommended round (`recommend.recommended_round`) and the ticket's critical sparsity differ,
    in one sentence for a page that shows both; None when they agree or one of them is missing. Both are measured
    rounds judged by the mean over trials against the mean dense network; they differ only because the
    recommendation also asks the lower end of the spread to be within, and judges every round on its own."""
    chosen = recommended_round(rounds, tolerance, metric=metric)
    critical = statistics.critical_sparsity(rounds, tolerance, metric)
    row = critical[critical["variant"] == TICKET]
    if chosen is None or row.empty:
        return None
    kept = float(rounds[rounds["round"] == chosen]["weights_remaining"].mean())
    weights, r = pct(kept), row.iloc[0]
    cell = statistics.critical_text(r)
    if cell.lstrip("≤ ") == weights:
        return None
    points = points_text(tolerance)
    if kept > float(r["fraction"]):
        # the critical round's mean is within, so its lower end is not: the one thing the recommendation adds
        how = (f"at {cell.lstrip('≤ ')} the mean over trials is within {points} of dense but the lower end of its "
               "spread (the lowest trial with 2 trials, the 95 % CI's lower bound from 3) is not")
    else:
        where = "already at its first pruned round" if r["fraction"] >= 1.0 else f"after {cell}"
        how = (f"the ticket's mean falls more than {points} below dense {where} and comes back "
               f"within at round {chosen}: the recommendation judges every round on its own, while matching dense "
               "stops at the first round that falls below")
    return (f"Why the recommended round {chosen} keeps {weights} of the weights while the ticket matches dense down "
            f"to {cell}: both are measured rounds judged by the mean over trials; {how}.")


def gap_verdict(gap: float, tolerance: float = TOLERANCE_POINTS) -> tuple[str, str]:
    """How a gap to the dense network (points, as printed) is shown: a colour for st.metric's delta and
    a few words. Green while within the tolerance (a small loss still matches dense), red beyond it."""
    if within_tolerance(gap, tolerance):
        return "green", "above dense" if gap > 0 else f"within {tolerance:g} pt of dense"
    return "red", f"more than {tolerance:g} pt below dense"



def interval_text(row, fmt=pct) -> str:
    """A mean with its confidence interval as one table cell: '92.4 % (91.8–93.0 %)'; the mean alone with one
    trial (no interval); '91.8 % (both trials)' when the trials agree as printed (a cell without its bracket
    read as missing data)."""
    if pd.isna(row["mean"]):
        return ""
    trials = int(row["trials"]) if "trials" in row and pd.notna(row["trials"]) else 0
    if pd.isna(row["low"]) or pd.isna(row["high"]):
        return fmt(row["mean"])
    if row["high"] <= row["low"] or fmt(row["low"]) == fmt(row["high"]):
        return fmt(row["mean"]) + (f" ({'both' if trials == 2 else f'all {trials}'} trials)" if trials > 1 else "")
    low = fmt(row["low"]).removesuffix("%").rstrip()  # the unit once, after the upper bound
    return f"{fmt(row['mean'])} ({low}–{fmt(row['high'])})"


def trials_of(rounds: pd.DataFrame) -> int:
    """The most trials any round and variant has."""
    return int(rounds.groupby(["round", "variant"])["trial"].nunique().max()) if not rounds.empty else 0


ONE_TRIAL_MESSAGE = (f"This run has **one trial**: no confidence interval can be given, so the plots draw no band "
                     f"and no gap can be called real. Run **{statistics.SUGGESTED_TRIALS} trials** or more (the "
                     f"*Trials* field on New experiment) to see whether the ticket's lead is more than chance.")


def rounds_done_text(rounds_done: int, pruned_rounds: int | None) -> str:
    """How far a run got, counted as the Round metric counts ("Round 3 of 12"): round 0 trains the dense
    network, then come the pruned rounds 1 … N. E.g. 'dense network and 2 of 12 pruned rounds done'."""
    pruned = max(0, rounds_done - 1)
    count = f"{pruned} of {pruned_rounds} pruned rounds" if pruned_rounds is not None else \
        f"{pruned} pruned round{'' if pruned == 1 else 's'}"
    return f"{'dense network and ' if rounds_done else ''}{count} done"
