"""Pruning arithmetic and masks on small, hand-checkable tensors."""
import pytest
import torch

from lth_core.engine import pruning
from lth_core.engine.criteria import CriterionContext


def magnitude(w, mask, counts):
    return pruning.prune("magnitude", CriterionContext(mask, trained=w), counts)


def test_planned_remaining_matches_the_papers_lenet_numbers():
    totals = {"fc1": 235200, "fc2": 30000, "output": 1000}
    kinds = {"fc1": "fc", "fc2": "fc", "output": "output"}
    rates = pruning.layer_rates(kinds, {"fc": 0.2, "conv": 0.2, "output": 0.1})
    fractions = pruning.planned_remaining(totals, kinds, rates, "layerwise", 0.2, 15)
    # Frankle & Carbin: 51.3 %, 21.1 %, 13.5 %, 8.7 %, 3.6 % after 3, 7, 9, 11, 15 rounds
    assert [round(100 * fractions[k], 1) for k in (3, 7, 9, 11, 15)] == [51.3, 21.1, 13.5, 8.7, 3.6]
    assert pruning.rounds_for_target(0.05, totals=totals, kinds=kinds, rates=rates, scope="layerwise", global_rate=0.2) == 14


def test_layerwise_magnitude_keeps_the_largest_alive_weights():
    w = {"a": torch.tensor([[0.1, -0.9, 0.5, 0.05]]), "out": torch.tensor([[1.0, -2.0]])}
    mask = {"a": torch.tensor([[True, True, True, False]]), "out": torch.ones(1, 2, dtype=torch.bool)}
    new = magnitude(w, mask, {"a": 2, "out": 1})
    assert new["a"].tolist() == [[False, True, True, False]]
    assert new["out"].tolist() == [[False, True]]


def test_a_pruned_weight_never_comes_back_even_if_large():
    w = {"a": torch.tensor([5.0, 0.2, 0.3])}
    mask = {"a": torch.tensor([False, True, True])}
    assert magnitude(w, mask, {"a": 2})["a"].tolist() == [False, True, True]


def test_global_scope_uses_one_threshold_across_layers():
    w = {"a": torch.tensor([0.1, 0.2, 0.3]), "b": torch.tensor([0.9, 0.8, 0.05]), "out": torch.tensor([1.0, 2.0])}
    kinds = {"a": "fc", "b": "fc", "out": "output"}
    mask = {k: torch.ones_like(v, dtype=torch.bool) for k, v in w.items()}
    rates = {"a": 0.5, "b": 0.5, "out": 0.5}
    counts = pruning.next_counts(pruning.remaining_counts(mask), kinds, rates, "global", 0.5)
    assert counts["__pool__"] == 3 and counts["a"] is None and counts["out"] == 1
    new = magnitude(w, mask, counts)
    assert new["a"].tolist() == [False, False, True]   # layer a loses more: its weights are small
    assert new["b"].tolist() == [True, True, False]
    assert new["out"].tolist() == [False, True]


def test_random_mask_matches_per_layer_counts_and_differs_from_the_ticket():
    g = torch.Generator().manual_seed(0)
    ticket = {"a": torch.rand(50, 40, generator=g) < 0.3, "b": torch.rand(10, 50, generator=g) < 0.7}
    rnd = pruning.random_mask_like(ticket, torch.Generator().manual_seed(1))
    assert pruning.remaining_counts(rnd) == pruning.remaining_counts(ticket)
    assert not torch.equal(rnd["a"], ticket["a"])


def test_one_shot_counts_equal_the_iterative_level():
    totals, kinds = {"a": 1000, "out": 100}, {"a": "fc", "out": "output"}
    counts = pruning.one_shot_counts(totals, kinds, {"a": 0.2, "out": 0.1}, "layerwise", 0.2, 3)
    assert counts == {"a": 512, "out": 73}


def test_deployment_savings_count_bytes_and_multiply_adds_exactly():
    import pandas as pd

    from lth_core.analysis.deployment import savings

    layers = pd.DataFrame({"layer": ["fc1", "output"], "total": [1000, 100], "remaining": [100, 50]})
    s = savings(layers, rows={"fc1": 10, "output": 10})
    assert s.dense_bytes == 4400
    assert s.bitmask_bytes == 150 * 4 + 125 + 13
    assert s.csr_bytes == 150 * 8 + 11 * 4 * 2
    assert s.dense_macs == 1100 and s.sparse_macs == 150
    assert s.compression == pytest.approx(4400 / s.bitmask_bytes)


def test_conv_layers_know_their_output_positions():
    from lth_core.engine.models import build_network

    net = build_network("conv-2", (1, 28, 28), 10, width=0.25)
    assert net.layer_positions()["conv1"] == 28 * 28 and net.layer_positions()["fc1"] == 1
    res = build_network("resnet-8", (3, 32, 32), 10)
    assert res.layer_positions()["block3.conv2"] == 8 * 8


def test_a_one_shot_prune_to_a_target_lands_on_it_with_the_layer_rates_proportions():
    totals, kinds = {"a": 100_000, "out": 1_000}, {"a": "fc", "out": "output"}
    args = dict(totals=totals, kinds=kinds, rates={"a": 0.2, "out": 0.1}, scope="layerwise", global_rate=0.2)
    level = pruning.one_shot_level(0.1, **args)
    assert pruning.one_shot_fraction(level, **args) == pytest.approx(0.1, abs=1e-5)
    counts = pruning.one_shot_counts(levels=level, **args)
    assert counts["a"] / 100_000 == pytest.approx(0.8 ** level, abs=1e-5)
    assert counts["out"] / 1_000 == pytest.approx(0.9 ** level, abs=1e-3)  # the output layer at its own, lower rate
