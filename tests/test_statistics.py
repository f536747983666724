"""Statistics over trials (lth_core.analysis.statistics) on synthetic rounds tables whose answers are known, and the
CLI's `runs` / `show` lines on the real example run."""
import math

import numpy as np
import pandas as pd
import pytest

from lth_core.analysis import statistics as S
from lth_core.cli import main as cli_main

WEIGHTS = [1.0, 0.8, 0.64, 0.512, 0.41]  # round 0 (dense) to round 4


def table(acc: dict[str, list[list[float]]], weights=WEIGHTS, es=None) -> pd.DataFrame:
    """A rounds table: acc[variant][trial][round] (round 0 only read from the ticket: the dense network)."""
    rows = []
    for variant, trials in acc.items():
        for trial, values in enumerate(trials):
            for rnd, value in enumerate(values):
                if rnd == 0 and variant != "ticket":
                    continue
                rows.append(dict(trial=trial, round=rnd, variant=variant, weights_remaining=weights[rnd],
                                 test_accuracy=value, early_stop_iteration=100 + rnd if es is None else es))
    return pd.DataFrame(rows)


# ---- intervals -------------------------------------------------------------------------------------------

def test_a_t_interval_of_known_width_for_few_trials():
    # 1, 2, 4: mean 7/3, sd √(7/3), sem √(7/9); t(0.975, df 2) = 4.302653 → half-width 3.794583
    ci = S.interval([1.0, 2.0, 4.0])
    assert ci.method == "t" and ci.n == 3 and ci.note == ""
    assert ci.mean == pytest.approx(7 / 3)
    assert (ci.low, ci.high) == pytest.approx((7 / 3 - 3.794583, 7 / 3 + 3.794583), abs=1e-5)


@pytest.mark.parametrize("values", [[0.1, 0.2, 0.4], [0.5, 0.52, 0.49, 0.61], [3.0, 3.5, 2.5]])
def test_the_t_interval_is_scipys(values):
    # the t quantile comes from scipy.special (scipy.stats took ~1 s of the app's first page to import)
    from scipy import stats

    n, mean = len(values), float(np.mean(values))
    low, high = stats.t.interval(0.95, df=n - 1, loc=mean, scale=stats.sem(values))
    got = S.interval(values)
    assert got.method == "t" and got.low == pytest.approx(low, rel=1e-12) and got.high == pytest.approx(high, rel=1e-12)


def test_trials_to_decide_uses_the_t_quantile():
    from scipy import stats

    gaps = [0.02, 0.01, 0.03]
    mean, sd = abs(np.mean(gaps)), np.std(gaps, ddof=1)
    n = next(n for n in range(2, 200) if stats.t.ppf(0.975, df=n - 1) * sd / np.sqrt(n) < mean)
    assert S.trials_to_decide(gaps) == max(n, len(gaps) + 1)


def test_from_five_trials_a_seeded_bootstrap_that_repeats_itself():
    values = [0.91, 0.93, 0.92, 0.95, 0.90]
    first, again = S.interval(values), S.interval(values)
    assert first.method == "bootstrap" and first == again  # seeded: the same table gives the same interval
    assert first.low < np.mean(values) < first.high
    assert S.interval(values, seed=1) != first  # the seed is what makes it repeat, not a fixed answer
    assert min(values) <= first.low and first.high <= max(values)


def test_one_trial_gives_no_interval_and_asks_for_three():
    ci = S.interval([0.9])
    assert ci.mean == 0.9 and math.isnan(ci.low) and math.isnan(ci.high) and ci.method == "none"
    assert "no interval" in ci.note and "3 trials" in ci.note
    rounds = table({"ticket": [[0.90, 0.91, 0.92, 0.90, 0.89]], "reinit": [[0, 0.90, 0.88, 0.86, 0.84]]})
    per_round = S.round_intervals(rounds)
    assert per_round["low"].isna().all() and per_round["high"].isna().all()  # never a band of width zero
    assert (per_round["note"] == S.ONE_TRIAL_NOTE).all()
    gaps = S.paired_gaps(rounds)
    assert gaps["low"].isna().all() and (gaps["verdict"] == "no interval").all()
    assert S.gap_sentences(gaps, "reinit") == [
        "One trial: no confidence interval can be given for the gap between the ticket and reinit. "
        "Run 3 trials or more to get one."]
    critical = S.critical_sparsity(rounds)
    assert critical["low"].isna().all() and critical["high"].isna().all()
    assert "one trial: no interval can be given; run 3 trials or more" in S.critical_sentence(critical, "reinit")


def test_round_intervals_per_round_and_variant_in_the_metrics_units():
    rounds = table({"ticket": [[0.90, 0.92, 0.93, 0.92, 0.91], [0.92, 0.94, 0.93, 0.94, 0.93],
                               [0.91, 0.93, 0.94, 0.93, 0.92]],
                    "reinit": [[0, 0.90, 0.89, 0.88, 0.87], [0, 0.91, 0.90, 0.89, 0.88], [0, 0.92, 0.91, 0.90, 0.89]]})
    got = S.round_intervals(rounds)
    assert len(got) == 1 + 4 * 2 and list(got["round"]) == sorted(got["round"])
    row = got[(got["round"] == 2) & (got["variant"] == "ticket")].iloc[0]
    want = S.interval([0.93, 0.93, 0.94])
    assert (row["mean"], row["low"], row["high"], row["trials"]) == (want.mean, want.low, want.high, 3)
    assert row["weights_remaining"] == 0.64
    es = S.round_intervals(rounds, "early_stop_iteration")
    assert (es["mean"] == 100 + es["round"]).all() and (es["method"] == "all equal").all()


# ---- paired gaps -----------------------------------------------------------------------------------------

def noisy_pair(gap_points: float, trials: int = 5, seed: int = 0, spread: float = 0.002) -> pd.DataFrame:
    """Ticket and reinit sharing a large per-trial offset (the data order, the mask size) that pairing
    removes, plus a small noise of their own; the ticket `gap_points` above reinit on average."""
    rng = np.random.default_rng(seed)
    acc = {"ticket": [], "reinit": []}
    for _ in range(trials):
        shared = 0.85 + rng.uniform(-0.03, 0.03, size=5)
        acc["ticket"].append(list(shared + gap_points / 100 + rng.normal(0, spread, 5)))
        acc["reinit"].append(list(shared + rng.normal(0, spread, 5)))
    return table(acc)


def test_an_interval_never_passes_what_its_metric_can_be():
    # three trials far apart: the t-interval (t = 4.3) reaches past 100 % and below 0 iterations
    rounds = table({"ticket": [[0.99, 0.99], [0.80, 0.80], [0.99, 0.99]]}, es=5)
    rounds.loc[rounds["trial"] == 1, "early_stop_iteration"] = 400
    acc = S.round_intervals(rounds).set_index(["round", "variant"]).loc[(0, "ticket")]
    assert S.interval([0.99, 0.80, 0.99]).high > 1 and acc["high"] == 1.0 and 0 <= acc["low"] < acc["mean"]
    stop = S.round_intervals(rounds, "early_stop_iteration").set_index(["round", "variant"]).loc[(0, "ticket")]
    assert S.interval([5, 400, 5]).low < 0 and stop["low"] == 0.0 and stop["high"] > 400


def test_two_trials_give_their_own_values_not_a_t_interval():
    """The one rule: with 2 trials the interval is the two trials (a t-interval of t = 12.7 spanned 7.8 %–100 %
    of the weights in the tour), in words 'trials: a and b'; from 3 trials a labelled 95 % CI."""
    two = S.interval([0.918, 0.931])
    assert (two.low, two.high, two.method) == (0.918, 0.931, "range")
    assert S.spread_words(two.low, two.high, two.n) == "trials: 91.8 % and 93.1 %"
    three = S.interval([0.918, 0.931, 0.925])
    assert three.method == "t" and S.spread_words(three.low, three.high, 3).startswith("95 % CI ")
    assert S.spread_words(0.5, float("nan"), 1) == "one trial"
    # a ticket that breaks at 9.4 % in one trial and 25 % in the other: both said, no 100 %
    rounds = table({"ticket": [[0.98, 0.98, 0.98, 0.97, 0.90], [0.98, 0.98, 0.90, 0.90, 0.90]]},
                   weights=[1.0, 0.5, 0.25, 0.125, 0.0625])
    critical = S.critical_sparsity(rounds)
    said = S.critical_sentence(critical, "ticket")
    low, high = critical.iloc[0][["low", "high"]]
    per_trial = S.critical_per_trial(rounds)["fraction"].sort_values().to_numpy()
    assert (low, high) == pytest.approx(tuple(per_trial))
    assert ("(mean of 2 trials; the 2 trials disagree: one trial matches dense down to 12.5 %, the other matches "
            "dense only down to 50.0 %)") in said and "CI" not in said, said
    assert "100.0 %" not in said
    # a gap both trials agree on: said as what the two trials show, not as 95 % confidence
    gaps = S.paired_gaps(table({"ticket": [[0.98, 0.95, 0.94]] * 2, "reinit": [[0.98, 0.92, 0.90],
                                                                                [0.98, 0.93, 0.91]]}))
    sentence = S.gap_sentences(gaps, "reinit")[0]
    assert sentence.endswith("(in each of the 2 trials).") and "CI" not in sentence, sentence


def test_a_critical_sparsity_the_same_in_every_trial_is_said_once():
    same = S.critical_sparsity(table({"ticket": [[0.9, 0.9, 0.8, 0.7, 0.7]] * 2,
                                      "reinit": [[0, 0.9, 0.8, 0.7, 0.7]] * 2}))
    said = S.critical_sentence(same, "reinit")
    assert "(mean of 2 trials; both trials match dense down to 80.0 %)" in said and "2 trials, 2 trials" not in said, said


def test_a_clearly_positive_gap_is_found_in_every_round_and_said_in_words():
    rounds = noisy_pair(3.0)
    gaps = S.paired_gaps(rounds)
    assert list(gaps["control"].unique()) == ["reinit"] and list(gaps["round"]) == [1, 2, 3, 4]
    assert (gaps["verdict"] == "ticket better").all() and (gaps["low"] > 1.5).all() and (gaps["high"] < 4.5).all()
    assert gaps["trials_needed"].isna().all() and (gaps["method"] == "bootstrap").all()
    # pairing removes the shared noise: the gap's interval is far narrower than either variant's own
    per_round = S.round_intervals(rounds)
    own = per_round[(per_round["round"] == 2) & (per_round["variant"] == "reinit")].iloc[0]
    gap = gaps[gaps["round"] == 2].iloc[0]
    assert (gap["high"] - gap["low"]) < 0.5 * 100 * (own["high"] - own["low"])
    low, high = gaps["low"].min(), gaps["high"].max()
    assert S.gap_sentences(gaps, "reinit") == [
        f"From 80.0 % down to 41.0 % of the weights the ticket beats reinit by {low:.1f}–{high:.1f} points "
        "(95 % CI, 5 trials)."]


def test_gaps_in_points_have_one_decimal_or_two_below_a_tenth():
    # a span of intervals printed "beats reinit by 0.0028–8.9 points": thousandths of a point that a few
    # thousand test digits cannot resolve
    assert [S.points(v) for v in (8.94, 1.25, 0.1, 0.096, 0.04, 0.005, 0.0028, 0.0, -0.04, -2.0)] == \
        ["8.9", "1.2", "0.1", "0.1", "0.04", "0.01", "<0.01", "0.0", "-0.04", "-2.0"]
    gaps = pd.DataFrame([dict(round=r, weights_remaining=w, control="reinit", metric="test_accuracy", trials=3,
                              mean=m, low=lo, high=hi, method="t", verdict="ticket better", trials_needed=None, note="")
                         for r, w, m, lo, hi in ((1, 0.8, 1.0, 0.0028, 2.0), (2, 0.64, 5.0, 1.5, 8.94))])
    assert S.gap_sentences(gaps, "reinit") == [
        "From 80.0 % down to 64.0 % of the weights the ticket beats reinit by under 0.01 to 8.9 points "
        "(95 % CI, 3 trials)."]
    gaps.loc[0, "low"] = 0.04
    assert "beats reinit by 0.04–8.9 points (95 % CI" in S.gap_sentences(gaps, "reinit")[0]


def test_a_gap_of_zero_is_undecided_and_more_trials_would_not_help():
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.01, size=(4, 4))
    base = [[0.9] + list(0.9 + noise[t]) for t in range(4)]
    control = [[0.0] + list(0.9 + noise[t]) for t in range(4)]
    for t in range(4):  # ± the same amount in two trials: every round's mean gap is exactly zero
        sign = 1 if t % 2 == 0 else -1
        base[t][1:] = [v + sign * 0.01 for v in base[t][1:]]
    rounds = table({"ticket": base, "reinit": control})
    rounds["test_accuracy"] = rounds["test_accuracy"].astype(np.float32).astype(float)  # as the store keeps them
    gaps = S.paired_gaps(rounds)
    assert (gaps["mean"] == 0).all()  # float32's last bits do not make a gap out of nothing and (gaps["verdict"] == "undecided").all()
    assert (gaps["method"] == "t").all() and gaps["trials_needed"].isna().all()
    said = S.gap_sentences(gaps, "reinit")
    assert said[0] == "At no sparsity does the ticket differ from reinit with 95 % confidence (4 trials)."
    assert said[1].startswith("At 80.0 %, 64.0 %, 51.2 %, 41.0 % of the weights the interval of ticket − reinit "
                              "contains zero: too wide to decide with 4 trials;")
    assert "mean gap is zero" in said[1]


def test_an_undecided_gap_says_how_many_trials_would_likely_decide_it():
    gaps = np.array([1.0, -0.5, 2.0])  # mean 0.833, sd 1.258: the t half-width at n = 3 is 3.13, above the mean
    n = S.trials_to_decide(gaps)
    sd, mean = gaps.std(ddof=1), gaps.mean()

    def half(k):
        from scipy.stats import t
        return t.ppf(0.975, k - 1) * sd / math.sqrt(k)

    assert half(n) < mean <= half(n - 1) and n == 12  # the first n whose half-width falls below |mean gap|
    rounds = table({"ticket": [[0.9, 0.91], [0.9, 0.895], [0.9, 0.92]], "reinit": [[0, 0.90]] * 3},
                   weights=[1.0, 0.8])
    row = S.paired_gaps(rounds).iloc[0]
    assert row["verdict"] == "undecided" and row["trials_needed"] == 12
    assert S.gap_sentences(S.paired_gaps(rounds), "reinit")[1].endswith(
        "too wide to decide with 3 trials; about 12 trials would likely decide it (an estimate from the observed "
        "mean gap and its spread across trials).")


def test_controls_come_from_the_data_and_a_nan_or_missing_round_drops_out():
    rounds = noisy_pair(3.0, trials=3)
    signs = rounds[(rounds["variant"] == "reinit")].assign(variant="reinit-signs")
    rounds = pd.concat([rounds, signs], ignore_index=True)
    # round 2: reinit is NaN in trial 0; round 3: reinit-signs is missing altogether
    rounds.loc[(rounds["round"] == 2) & (rounds["variant"] == "reinit") & (rounds["trial"] == 0), "test_accuracy"] = np.nan
    rounds = rounds[~((rounds["round"] == 3) & (rounds["variant"] == "reinit-signs"))]
    assert S.controls_of(rounds) == ["reinit", "reinit-signs"]
    gaps = S.paired_gaps(rounds).set_index(["control", "round"])
    assert gaps.loc[("reinit", 2), "trials"] == 2 and gaps.loc[("reinit", 1), "trials"] == 3
    assert gaps.loc[("reinit-signs", 3), "trials"] == 0 and math.isnan(gaps.loc[("reinit-signs", 3), "mean"])
    assert gaps.loc[("reinit-signs", 3), "verdict"] == "no interval"
    said = S.gap_sentences(S.paired_gaps(rounds), "reinit-signs")
    # a control reads as the variant registry phrases it
    # the missing round splits the range: nothing is claimed where nothing was measured
    assert said[0].startswith("From 80.0 % down to 64.0 % of the weights the ticket beats reinit with the original signs by")
    assert said[1].startswith("At 41.0 % of the weights the ticket beats reinit with the original signs by")
    assert said[-1] == "At 51.2 % of the weights no trial has both."
    per_round = S.round_intervals(rounds).set_index(["round", "variant"])
    assert per_round.loc[(2, "reinit"), "trials"] == 2
    assert set(S.critical_sparsity(rounds)["variant"]) == {"ticket", "reinit", "reinit-signs"}


def test_a_control_that_wins_is_said_the_other_way_round():
    rounds = noisy_pair(-3.0)
    gaps = S.paired_gaps(rounds)
    assert (gaps["verdict"] == "control better").all()
    said = S.gap_sentences(gaps, "reinit")
    low, high = -gaps["high"].max(), -gaps["low"].min()
    assert said == [f"From 80.0 % down to 41.0 % of the weights reinit beats the ticket by {low:.1f}–{high:.1f} "
                    "points (95 % CI, 5 trials)."]


# ---- critical sparsity -----------------------------------------------------------------------------------

def test_critical_sparsity_is_the_last_measured_round_within_never_interpolated():
    # dense 90 %; gaps 0, -0.5, -1.5, -3 points at 80, 40, 20, 10 %: the last round within 1 point is 40 %
    # (the interpolated rule said √(0.4·0.2) = 28.3 %, a share no round measured and no sentence named)
    weights = [1.0, 0.8, 0.4, 0.2, 0.1]
    ticket = [0.90, 0.90, 0.895, 0.885, 0.87]
    # a control that dips past the tolerance at 40 % and recovers: it stopped "staying within" at the dip, so
    # its last round within is 80 %
    dip = [0.0, 0.90, 0.87, 0.90, 0.90]
    rounds = table({"ticket": [ticket], "dip": [dip]}, weights=weights)
    per_trial = S.critical_per_trial(rounds).set_index("variant")
    assert per_trial.loc["ticket", "fraction"] == 0.4 and per_trial.loc["dip", "fraction"] == 0.8
    assert per_trial["reached"].all()
    critical = S.critical_sparsity(rounds).set_index("variant")
    assert critical.loc["ticket", "fraction"] == 0.4 and critical.loc["dip", "fraction"] == 0.8
    assert S.critical_cell(rounds) == "40.0 %" and S.critical_cell(rounds, "dip") == "80.0 %"


def test_critical_sparsity_is_the_mean_curves_round_with_each_trials_own_as_its_interval():
    weights = [1.0, 0.8, 0.4, 0.2, 0.1]
    trials = [[0.90, 0.90, 0.895, 0.885, 0.87],   # within down to 40 %
              [0.92, 0.92, 0.905, 0.90, 0.89],    # leaves at 40 % (gap −1.5): within down to 80 %
              [0.91, 0.91, 0.91, 0.905, 0.895]]   # leaves at 10 % (gap −1.5): within down to 20 %
    rounds = table({"ticket": trials}, weights=weights)
    per_trial = S.critical_per_trial(rounds)
    assert sorted(per_trial["fraction"]) == [0.2, 0.4, 0.8]
    logs = np.log(per_trial["fraction"].to_numpy())
    row = S.critical_sparsity(rounds).iloc[0]
    want = S.interval(logs)
    assert row["variant"] == "ticket" and row["trials"] == 3 and row["method"] == "t" and row["not_reached"] == 0
    # the mean over trials (dense 91 %): 91, 90.33, 89.67, 88.5 at 80, 40, 20, 10 %: within down to 40 %
    assert row["fraction"] == pytest.approx(0.4) and not row["upper_bound"]
    assert (row["low"], row["high"]) == pytest.approx((math.exp(want.low), min(1.0, math.exp(want.high))))
    assert row["low"] < row["fraction"] < row["high"] <= 1.0
    said = S.critical_sentence(S.critical_sparsity(rounds), "ticket")
    # the sentence: measured rounds of the mean over trials (the bars), each trial's own round after it
    assert said == ("The ticket stays within 1 point of the dense network down to 40.0 % of the weights and falls "
                    "below it in the next round (mean of 3 trials; the 3 trials match dense down to 20.0 % at "
                    "best and 80.0 % at worst; the trials disagree).")
    assert S.critical_text(row) == "40.0 %"  # the cell names the round the sentence names


def test_a_variant_that_never_leaves_the_tolerance_has_an_upper_bound():
    rounds = table({"ticket": [[0.90, 0.91, 0.905, 0.90, 0.895], [0.91, 0.91, 0.91, 0.90, 0.905]]})
    row = S.critical_sparsity(rounds).iloc[0]
    assert row["not_reached"] == 2 and row["fraction"] == pytest.approx(0.41) and row["method"] == "all equal"
    assert S.critical_text(row) == S.critical_cell(rounds) == "≤ 41.0 %"
    assert S.critical_cell(rounds[rounds["round"] == 0]) == S.critical_cell(rounds.iloc[:0]) == ""  # nothing pruned yet
    assert S.critical_sentence(S.critical_sparsity(rounds), "ticket") == (
        "The ticket stays within 1 point of the dense network at every round, down to 41.0 % of the weights, the "
        "sparsest measured (2 of 2 trials), so how far it can be pruned and still match dense is not known yet: "
        "prune further to find out.")


def test_critical_sparsity_skips_a_nan_round():
    weights = [1.0, 0.8, 0.4, 0.2, 0.1]
    rounds = table({"ticket": [[0.90, 0.90, np.nan, 0.885, 0.87]]}, weights=weights)
    # without the 40 % round the next measured one, 20 % (gap −1.5), is the first beyond: within down to 80 %
    assert S.critical_per_trial(rounds).iloc[0]["fraction"] == 0.8
    assert S.critical_sparsity(rounds).iloc[0]["fraction"] == 0.8


def test_the_tolerance_is_the_projects_single_default():
    from lth_core.analysis.statistics import TOLERANCE_POINTS
    rounds = table({"ticket": [[0.90, 0.90, 0.895, 0.885, 0.87]]}, weights=[1.0, 0.8, 0.4, 0.2, 0.1])
    looser = S.critical_per_trial(rounds, tolerance=2.0).iloc[0]["fraction"]
    assert TOLERANCE_POINTS == 1.0 and looser < S.critical_per_trial(rounds).iloc[0]["fraction"]


# ---- the command line, on the real example run -----------------------------------------------------------

def test_runs_and_show_print_the_critical_sparsity_and_the_gaps(lth_home, capsys):
    from lth_core import example
    from lth_core.runs.store import RunStore

    store = RunStore()
    run_id = example.import_example(store)
    rounds = store.rounds(run_id)
    assert cli_main(["runs"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split()[5:10] == ["ticket", "acc", "stops", "matching", "dense"]  # at: the weights remaining
    critical = S.critical_sparsity(rounds)
    ticket = critical[critical["variant"] == "ticket"].iloc[0]
    assert f"  {S.critical_text(ticket)}  " in next(line for line in listing if line.startswith(run_id))
    assert cli_main(["show", run_id]) == 0
    shown = capsys.readouterr().out
    for variant in ("ticket", "reinit", "random"):
        assert S.critical_sentence(critical, variant) in shown
    # one term for how far a network can be pruned, as weights remaining: "critical sparsity" mixed the two
    assert "critical" not in shown.lower() and "critical" not in "\n".join(listing).lower()
    assert "how far each network can be pruned: the fewest weights at which it still matches dense (within 1 point), " \
           "as % of the weights remaining" in shown
    gaps = S.paired_gaps(rounds)
    for control in ("reinit", "random"):
        for sentence in S.gap_sentences(gaps, control):
            assert sentence in shown


def test_each_trial_is_judged_against_the_band_as_printed_like_the_mean():
    # dense 95.049 % prints 95.0 %, the ticket's 94.0 % is 1.0 point below as printed (1.049 unrounded): within,
    # as the bars and the mean's rule judge it; each trial's own round was judged unrounded and read "left it at the
    # first pruned round" under a sentence saying the ticket stays within at every round
    rounds = table({"ticket": [[0.95049, 0.94, 0.94], [0.95049, 0.94, 0.94]]}, weights=[1.0, 0.8, 0.64])
    per_trial = S.critical_per_trial(rounds)
    assert list(per_trial["fraction"]) == [0.64, 0.64] and not per_trial["reached"].any()
    row = S.critical_sparsity(rounds).iloc[0]
    assert row["upper_bound"] and row["fraction"] == 0.64 and row["not_reached"] == 2
    assert S.critical_sentence(S.critical_sparsity(rounds), "ticket").endswith(
        "sparsest measured (2 of 2 trials), so how far it can be pruned and still match dense is not known yet: "
        "prune further to find out.")


def test_a_ticket_below_dense_at_its_first_round_matches_only_at_100_percent():
    # a one-shot run: dense, then straight to 6.9 %, where the ticket is far below dense: only the dense network
    # matches, so the cell says 100.0 % (it said "between 100 % and 6.9 %"), as the sentence says it
    rounds = table({"ticket": [[0.90, 0.85], [0.91, 0.87]], "reinit": [[0, 0.80], [0, 0.81]]}, weights=[1.0, 0.069])
    critical = S.critical_sparsity(rounds).set_index("variant")
    assert critical.loc["ticket", "fraction"] == 1.0 and not critical.loc["ticket", "upper_bound"]
    assert S.critical_cell(rounds) == "100.0 %"
    assert S.critical_sentence(critical.reset_index(), "ticket") == (
        "The ticket falls more than 1 point below the dense network already at its first pruned round, 6.9 % of "
        "the weights (mean of 2 trials; both trials fall below dense already at the first pruned round).")


def test_runs_and_show_agree_on_a_real_one_shot_run(lth_home, capsys):
    # a real one-shot run: dense, then straight to about 10 %; its ticket falls far below dense there
    assert cli_main(["run", "--store", "--dataset", "digits", "--arch", "mlp", "--hidden", "64", "--schedule",
                     "one-shot", "--rounds", "12", "--epochs", "3", "--trials", "2", "--controls", "reinit",
                     "--name", "one shot"]) == 0
    capsys.readouterr()
    assert cli_main(["runs"]) == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    assert "  100.0 %  " in row
    assert header.index(S.MATCH_COLUMN) + len(S.MATCH_COLUMN) == row.index("100.0 %") + len("100.0 %")  # lined up
    assert cli_main(["show", row.split()[0]]) == 0
    assert ("The ticket falls more than 1 point below the dense network already at its first pruned round, 9.8 % of "
            "the weights") in capsys.readouterr().out


# ---- the sentences agree with the bars (issue 12) --------------------------------------------------------

def test_critical_sentences_agree_with_the_mean_bars_on_a_real_run():
    """A real small run (digits, mlp 32, half the weights pruned a round, 2 trials) whose reinit and random
    mask fall more than 1 point below dense from round 1: the sentences say so, name only measured rounds'
    weights, and say where the mean over trials (the bars) leaves the band — never an interpolated value."""
    import re

    from lth_core import ExperimentConfig, collect, run_experiment
    from lth_core.analysis.recommend import gap_points, within_tolerance
    rounds = collect(run_experiment(ExperimentConfig(dataset="digits", arch="mlp", hidden=(32,), rounds=2, epochs=4,
                                                     batch_size=32, prune_rate=0.5, controls=("reinit", "random"),
                                                     trials=2, seed=0))).rounds_df()
    critical = S.critical_sparsity(rounds)
    dense = rounds[rounds["round"] == 0]["test_accuracy"].mean()
    measured = {S.pct(w) for w in rounds["weights_remaining"]}
    first_out = {}
    for variant in critical["variant"]:
        bars = rounds[(rounds["variant"] == variant) & (rounds["round"] > 0)].groupby("round").mean(numeric_only=True)
        out = [r for r, a in bars["test_accuracy"].items() if not within_tolerance(gap_points(a, dense))]
        first_out[variant] = out[0] if out else None
        said = S.critical_sentence(critical, variant)
        assert "interpolated" not in said, said
        assert set(re.findall(r"\d+\.\d %", said)) <= measured, said  # only weights of measured rounds
        if first_out[variant] == 1:
            assert "already at its first pruned round, " + S.pct(bars["weights_remaining"].iloc[0]) in said, said
            assert "stays within 1 point of the dense network down to" not in said, said
        elif first_out[variant] is not None:
            held = bars["weights_remaining"].loc[first_out[variant] - 1]
            assert f"down to {S.pct(held)} of the weights and falls below it in the next round" in said, said
    assert first_out["reinit"] == 1, first_out  # the case of the issue: a control out of the band from round 1


def test_two_trials_far_apart_are_said_as_disagreeing_not_as_a_mean():
    # one trial holds down to 6.25 %, the other leaves at 50 %: no value between them is printed
    rounds = table({"ticket": [[0.98, 0.98, 0.98, 0.98, 0.98], [0.98, 0.98, 0.90, 0.90, 0.90]]},
                   weights=[1.0, 0.5, 0.25, 0.125, 0.0625])
    said = S.critical_sentence(S.critical_sparsity(rounds), "ticket")
    assert "the 2 trials disagree: one trial matches dense down to 6.2 %, the other" in said or \
           "the 2 trials disagree: one trial matches dense down to 6.3 %, the other" in said, said
    assert "the other matches dense only down to 50.0 %" in said, said
    assert "17." not in said and "interpolated" not in said, said
