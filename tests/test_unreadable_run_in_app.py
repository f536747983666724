"""The app with a store row it cannot read: every page still works, and the row is there to pick."""
import os
from pathlib import Path

from streamlit.testing.v1 import AppTest

from lth_core import ExperimentConfig, run_experiment
from lth_core.runs.recorder import Recorder, claim, create_run
from lth_core.runs.store import RunStore

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def test_every_page_survives_an_unreadable_run(lth_home):
    """A run stored with rounds 2.5 (as an older version let through) used to replace every page,
    New experiment included, by 'TypeError: cannot safely cast non-equivalent object to int64'."""
    store = RunStore()
    config = ExperimentConfig(dataset="digits", arch="mlp", hidden=(16,), rounds=1, epochs=1)
    good = create_run(store, config)
    rec = Recorder(store, good, claim(store, good, pid=os.getpid()))
    for event in run_experiment(config):
        rec.add(event)
    bad = create_run(store, config)
    with store.transaction() as db:
        db.execute("UPDATE runs SET status = 'failed', rounds_total = 2.5, config = json_set(config, '$.rounds', 2.5) "
                   "WHERE id = ?", (bad,))
    for name, params in [("new_experiment", {}), ("live_run", {}), ("results", {}), ("masks", {}), ("compare", {}),
                         ("deploy", {}), ("live_run", {"run": bad})]:
        at = AppTest.from_file(APP, default_timeout=120)
        for key, value in params.items():
            at.query_params[key] = value
        at.switch_page(f"app_pages/{name}.py")
        at.run()
        assert not at.exception, (name, at.exception)
        errors = [e.value for e in at.error]
        if params:  # the unreadable run, picked: one line saying so and how to delete it
            assert errors == [f"run {bad} cannot be read (rounds_total is 2.5, not a whole number); it can only be "
                              f"deleted: python -m lth_core delete {bad}"]
        else:
            assert errors == [], (name, errors)
    table = AppTest.from_file(APP, default_timeout=120).run().dataframe[0].value
    table = table.set_index("id") if "id" in table.columns else table  # the id may be the (hidden) index
    assert set(table.index) == {good, bad} and table.loc[bad, "status"] == "unreadable"
