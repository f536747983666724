"""The Compare page's deployment table, on a real tiny run."""
from lth_core import ExperimentConfig, collect, make_plan, run_experiment
from lth_core.engine.lottery import network_shape
from ui.deployment import CAVEAT, savings_sentence, savings_table, ticket_savings


def test_ticket_savings_follow_the_masks_of_the_round():
    cfg = ExperimentConfig(dataset="digits", arch="mlp", hidden=(32,), rounds=2, epochs=1, batch_size=32)
    layers = collect(run_experiment(cfg)).layers_df()
    network = network_shape(make_plan(cfg))  # what the run keeps as its "network" document
    dense, ticket = ticket_savings(network, layers, 0), ticket_savings(network, layers, 2)
    assert dense.weights_remaining == dense.weights_total == 64 * 32 + 32 * 10
    kept = layers[(layers["round"] == 2) & (layers.variant == "ticket")]["remaining"].sum()
    assert ticket.weights_remaining == kept and ticket.sparse_macs == kept
    assert ticket.compression > 1 and ticket.mac_reduction == dense.weights_total / kept
    table = savings_table(ticket)
    assert list(table["measure"]) == ["weights", "storage (float32)", "multiply-adds per example"]
    assert table["winning ticket"].iloc[0] == f"{kept:,}"
    sentence = savings_sentence(ticket, 2)
    assert f"**{kept:,} of {dense.weights_total:,}**" in sentence and f"**{ticket.mac_reduction:.1f}× fewer**" in sentence
    assert "not measured" in CAVEAT and "no faster" in CAVEAT

