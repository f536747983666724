"""The paper's qualitative findings, reproduced on real MNIST digits (mnist-5k, LeNet-300-100).

Frankle & Carbin: winning tickets found by iterative magnitude pruning with reset to the
original init match the dense net down to ~20 % of weights and beat a random re-initialisation
of the same mask when very sparse; a random mask is no better than reinit.
"""
import pytest

from lth_core import ExperimentConfig, collect, run_experiment


@pytest.fixture(scope="module")
def lenet_run():
    # 12 rounds at 20 % (output 10 %) → 7.0 % of weights; 2 trials; 3 epochs a round (about 30 s here)
    cfg = ExperimentConfig(dataset="mnist-5k", arch="lenet-300-100", rounds=12, epochs=3,
                           controls=("reinit", "random"), trials=2, seed=0)
    rounds = collect(run_experiment(cfg)).rounds_df()
    return rounds.groupby(["round", "variant"])[["weights_remaining", "test_accuracy"]].mean()


def acc(table, rnd, variant):
    return table.loc[(rnd, variant), "test_accuracy"]


def test_ticket_at_20_percent_matches_the_dense_network(lenet_run):
    assert lenet_run.loc[(7, "ticket"), "weights_remaining"] == pytest.approx(0.211, abs=0.001)
    assert acc(lenet_run, 7, "ticket") >= acc(lenet_run, 0, "ticket") - 0.01


def test_sparse_ticket_beats_reinit_by_a_clear_margin(lenet_run):
    assert lenet_run.loc[(12, "ticket"), "weights_remaining"] <= 0.07
    assert acc(lenet_run, 12, "ticket") - acc(lenet_run, 12, "reinit") >= 0.015


def test_random_mask_is_no_better_than_reinit(lenet_run):
    sparse = [r for r in range(7, 13)]
    gap = sum(acc(lenet_run, r, "random") - acc(lenet_run, r, "reinit") for r in sparse) / len(sparse)
    assert gap <= 0.005
    assert acc(lenet_run, 12, "random") <= acc(lenet_run, 12, "reinit") + 0.005
