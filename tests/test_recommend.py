"""The recommended round: the sparsest ticket within the tolerance of the dense network."""
import pandas as pd
import pytest

from lth_core.analysis import statistics
from lth_core.analysis.recommend import (TOLERANCE_POINTS, gap_points, lower_end, points_text, recommend,
                                         recommended_round, within_tolerance)
from lth_core.engine.results import ROUND_COLUMNS


def table(rows: list[tuple[int, int, str, float, float]]) -> pd.DataFrame:
    """(trial, round, variant, weights_remaining, test_accuracy) rows in the store's round columns."""
    frame = pd.DataFrame(rows, columns=["trial", "round", "variant", "weights_remaining", "test_accuracy"])
    return frame.reindex(columns=ROUND_COLUMNS)


def one_trial(accuracies: list[float], weights: list[float] | None = None, variant: str = "ticket") -> pd.DataFrame:
    weights = weights or [0.8 ** r for r in range(len(accuracies))]
    return table([(0, r, "ticket" if r == 0 else variant, w, a) for r, (w, a) in enumerate(zip(weights, accuracies))])


def test_the_tolerance_is_one_point_and_a_gap_printed_at_it_is_within():
    assert TOLERANCE_POINTS == 1.0
    assert gap_points(0.772, 0.781) == -0.9 and gap_points(0.781, 0.772) == 0.9
    assert gap_points(0.94, 0.95) == -1.0 and within_tolerance(-1.0) and not within_tolerance(-1.1)
    assert within_tolerance(-0.3) and within_tolerance(2.0)


def test_a_tolerance_reads_the_same_in_every_sentence():
    """One way to say a tolerance (`points_text`): the critical-sparsity sentences, the runs table's words and the
    sweep's best cell all say it so (they each wrote it out before, one as 'point{'s' if ... }')."""
    from lth_core.analysis.sweep_summary import FEWEST, best_cell_sentence

    assert [points_text(t) for t in (1, 1.0, 0.5, 2, 10)] == ["1 point", "1 point", "0.5 points", "2 points",
                                                               "10 points"]
    rounds = one_trial([0.950, 0.955, 0.945, 0.940, 0.920])
    for tol in (1.0, 0.5):
        critical = statistics.critical_sparsity(rounds, tol)
        assert f"stays within {points_text(tol)} of the dense network" in statistics.critical_sentence(critical, "ticket", tol)
        assert statistics.match_words(tol).endswith(f"(within {points_text(tol)})")
        cells = pd.DataFrame([dict(label="prune_rate=0.2", run_id="abcd1234", metric=FEWEST, value=0.3,
                                   low=float("nan"), high=float("nan"), trials=1, upper_bound=False)])
        assert f"stays within {points_text(tol)} of its dense network" in best_cell_sentence(cells, tol)


def test_one_trial_picks_the_sparsest_round_within_the_tolerance():
    rounds = one_trial([0.950, 0.955, 0.945, 0.940, 0.920])  # gaps +0.5, -0.5, -1.0, -3.0
    assert recommended_round(rounds) == 3
    assert recommended_round(rounds, tolerance=0.5) == 2
    assert recommended_round(rounds, tolerance=5) == 4


def test_none_within_the_tolerance_gives_none():
    assert recommended_round(one_trial([0.95, 0.93, 0.90])) is None
    assert recommended_round(one_trial([0.95])) is None  # no pruned round yet
    assert recommended_round(one_trial([0.95, 0.95])[lambda d: d["round"] > 0]) is None  # no dense round


def test_a_later_round_that_recovers_is_recommended():
    rounds = one_trial([0.950, 0.948, 0.930, 0.946, 0.900])  # round 2 dips below, round 3 is back within
    assert recommended_round(rounds) == 3


def test_the_mean_and_with_two_trials_the_lower_trial_decide():
    rounds = table([(0, 0, "ticket", 1.0, 0.95), (1, 0, "ticket", 1.0, 0.95),
                    (0, 1, "ticket", 0.8, 0.95), (1, 1, "ticket", 0.8, 0.95),
                    (0, 2, "ticket", 0.64, 0.96), (1, 2, "ticket", 0.64, 0.91)])  # mean 93.5: 1.5 below
    assert recommended_round(rounds) == 1
    rounds.loc[rounds.index[-1], "test_accuracy"] = 0.94  # mean 95.0, the lower trial 1.0 below: within
    assert recommended_round(rounds) == 2
    rounds.loc[rounds.index[-2:], "test_accuracy"] = [0.975, 0.935]  # mean 95.5, above dense, but one trial 1.5 below
    assert recommended_round(rounds) == 1
    verdict = recommend(rounds).verdicts.set_index("round").loc[2]
    assert verdict["gap_mean"] == 0.5 and verdict["gap_lower"] == -1.5 and not verdict["within"]
    assert verdict["lower_kind"] == "lowest of 2 trials"


def test_from_three_trials_the_lower_end_is_the_confidence_bound():
    accuracies = [0.950, 0.945, 0.940]  # mean 94.5 (-0.5 from dense 95.0); t-interval low 93.3 (-1.7)
    rows = [(t, 0, "ticket", 1.0, 0.95) for t in range(3)] + [(t, 1, "ticket", 0.8, a) for t, a in enumerate(accuracies)]
    rounds = table(rows)
    low = statistics.interval(accuracies).low
    assert lower_end(accuracies) == (low, "95 % CI lower bound, 3 trials")
    assert gap_points(low, 0.95) < -1.0 and within_tolerance(gap_points(min(accuracies), 0.95))  # the range: within
    assert recommended_round(rounds) is None
    assert recommended_round(rounds, tolerance=2) == 1


def test_one_trial_is_judged_on_its_value_alone():
    assert lower_end([0.9])[1] == ""
    rec = recommend(one_trial([0.950, 0.941]))
    assert rec.round == 1 and rec.row["gap_mean"] == -0.9 and rec.row["trials"] == 1


def test_ties_in_sparsity_go_to_the_more_accurate_then_the_earlier_round():
    same = [1.0, 0.5, 0.5]
    assert recommended_round(one_trial([0.95, 0.945, 0.950], same)) == 2
    assert recommended_round(one_trial([0.95, 0.950, 0.945], same)) == 1
    assert recommended_round(one_trial([0.95, 0.950, 0.950], same)) == 1


def test_controls_do_not_count_only_the_ticket():
    rounds = pd.concat([one_trial([0.95, 0.90]), one_trial([0.95, 0.95], variant="random")[lambda d: d["round"] > 0]])
    assert recommended_round(rounds) is None
    assert recommended_round(rounds, variant="random") == 1


def test_on_a_real_run(tiny_result):
    rounds = tiny_result.rounds_df()
    pick = recommended_round(rounds, tolerance=100)  # everything is within 100 points: the last round
    assert pick == rounds["round"].max()
    dense = rounds[rounds["round"] == 0].test_accuracy.mean()
    got = recommended_round(rounds)
    ticket = rounds[(rounds.variant == "ticket") & (rounds["round"] > 0)].groupby("round").test_accuracy
    assert rounds.trial.nunique() == 2  # the lower end is the lowest trial
    within = [r for (r, a), (_, low) in zip(ticket.mean().items(), ticket.min().items())
              if gap_points(a, dense) >= -1.0 and gap_points(low, dense) >= -1.0]
    assert got == (max(within) if within else None)


@pytest.mark.parametrize("bad", [0.0, 0.5])
def test_a_zero_or_small_tolerance_still_allows_a_gain(bad):
    assert recommended_round(one_trial([0.90, 0.92, 0.91]), tolerance=bad) == 2


def test_a_sweep_whose_tickets_all_fall_at_the_first_round_names_no_best_cell():
    # '100.0 %' is the first pruned round's share: the ticket fell there. A best cell 'staying within … down to
    # 100.0 %' and having 'the lowest mean' among equals said what no cell did (seen on a tiny sweep)
    from lth_core.analysis.sweep_summary import FEWEST, best_cell_sentence

    cells = pd.DataFrame([dict(label=f"prune_rate={r}", run_id=f"run{i}", metric=FEWEST, value=1.0, low=0.859,
                               high=1.0, trials=2, upper_bound=False) for i, r in enumerate((0.2, 0.5))])
    said = best_cell_sentence(cells)
    assert said.startswith("Best cell: none. In all 2 cells the ticket falls more than 1 point below")
    assert "stays within" not in said and "lowest" not in said
    cells.loc[0, ["value", "low", "high"]] = 0.41, 0.35, 0.48  # one cell holds to 41 %: it is named as before
    assert best_cell_sentence(cells).startswith("Best cell: prune_rate=0.2 (run run0): the ticket stays within")
