"""A run carries its resolved config and its network's shape (store document "network"), and no page
loads a dataset or builds a network to show a stored run: Results, Masks and Compare render a finished
run while every way of loading data raises."""

import pytest

from app_helpers import page
from test_app_pages import figures, no_errors, runs, text, titles  # noqa: F401  (runs: the fixture)

from lth_core.analysis.deployment import savings
from lth_core.engine import data as data_module
from lth_core.engine import lottery
from lth_core.engine.network_shape import NetworkShape
from lth_core.runs.network import NETWORK_DOC, stored_network
from lth_core.runs.store import RunStore


def _expected(run_id: str) -> NetworkShape:
    """The shape worked out the long way: the run's data loaded and its network built."""
    plan = lottery.make_plan(RunStore().get_run(run_id).config)
    return lottery.network_shape(plan)


def test_a_run_keeps_its_resolved_config_and_network_shape(runs):
    store, done = RunStore(), runs["done"]
    doc = store.doc(done, NETWORK_DOC)
    assert doc is not None, "the worker's run did not keep its network"
    shape = NetworkShape.from_dict(doc)
    expected = _expected(done)
    assert shape == expected
    assert shape.input_kind == "image" and shape.input_shape == (1, 8, 8) and shape.num_classes == 10
    assert [(p.name, p.shape, p.outputs) for p in shape.prunable] == [("fc1.weight", (32, 64), 32),
                                                                      ("output.weight", (10, 32), 10)]
    assert shape.layer_totals() == store.get_run(done).layers
    assert shape.config["hidden"] == [32] and shape.config["eval_every"] > 0  # resolved: every default written out
    assert shape.config == lottery.resolved_config(lottery.make_plan(store.get_run(done).config)).to_dict()


def test_results_masks_and_compare_show_a_stored_run_without_its_data(runs, no_data):
    done = runs["done"]
    with pytest.raises(OSError):
        data_module.load_dataset("digits")  # the switch is on
    results = page("results", run=done)
    no_errors(results)
    assert titles(results)[0] == "Test accuracy as the network is pruned"

    masks = page("masks", run=done)
    no_errors(masks)
    names = titles(masks)
    assert "Connections each input pixel keeps into fc1 (of 32)" in names  # the stored input shape: 8×8 pixels
    assert any(n.startswith("fc1: 32×64 weights") for n in names)

    compare = page("compare", run=done, deploy_round="2")
    no_errors(compare)
    assert "The round-2 ticket keeps" in text(compare)
    table = compare.dataframe[-1].value.set_index("measure")
    layers = RunStore().layers(done)
    mine = layers[(layers["round"] == 2) & (layers.variant == "ticket") & (layers.trial == 0)]
    counted = savings(mine, {"fc1": 32, "output": 10}, {"fc1": 1, "output": 1})  # rows of 32×64 and 10×32
    assert table.loc["weights", "winning ticket"] == f"{counted.weights_remaining:,}"
    assert table.loc["multiply-adds per example", "dense network"] == f"{counted.dense_macs:,}"


@pytest.fixture
def older_run(runs):
    """The run as a version that did not keep networks recorded it; its document is put back afterwards."""
    store, done = RunStore(), runs["done"]
    kept = store.doc(done, NETWORK_DOC)
    with store.transaction() as db:
        db.execute("DELETE FROM run_docs WHERE run_id = ? AND key = ?", (done, NETWORK_DOC))
    yield done
    store.put_doc(done, NETWORK_DOC, kept)


def test_an_older_run_whose_data_is_gone_says_what_is_missing(older_run, no_data):
    masks = page("masks", run=older_run)
    no_errors(masks)
    assert any("input's shape is not known" in i.value and "dataset loading is switched off" in i.value
               for i in masks.info)
    assert any(n.startswith("fc1: 32×64 weights") for n in titles(masks))  # the rest of the page is there
    compare = page("compare", run=older_run, deploy_round="2")
    no_errors(compare)
    assert any("savings cannot be counted" in i.value for i in compare.info)
    assert figures(compare)  # the comparison itself is shown
    assert RunStore().doc(older_run, NETWORK_DOC) is None  # nothing half-known was kept


def test_an_older_run_gets_its_network_worked_out_once_and_kept(older_run):
    store = RunStore()
    shape, why = stored_network(store, older_run)
    assert why == "" and shape == _expected(older_run)
    assert NetworkShape.from_dict(store.doc(older_run, NETWORK_DOC)) == shape  # kept: the next read loads nothing
    assert stored_network(store, older_run, compute=False) == (shape, "")


def test_the_tour_draws_the_first_layer_from_the_stored_shape_or_says_what_is_missing(runs, no_data):
    from ui import tour

    number = next(i for i, s in enumerate(tour.STEPS, 1) if s.figures is tour._first_layer)
    shown = page("tour", run=runs["done"], step=str(number))
    no_errors(shown)
    assert "Connections each input pixel keeps into fc1 (of 32)" in titles(shown)
    store, done = RunStore(), runs["done"]
    kept = store.doc(done, NETWORK_DOC)
    with store.transaction() as db:  # as an older version recorded it, with its data gone
        db.execute("DELETE FROM run_docs WHERE run_id = ? AND key = ?", (done, NETWORK_DOC))
    try:
        older = page("tour", run=done, step=str(number))
        no_errors(older)
        assert any("whose shape is not known" in i.value for i in older.info)
    finally:
        store.put_doc(done, NETWORK_DOC, kept)
