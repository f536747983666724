"""The shipped example run in the app: a first visit (an empty LTH_HOME) finds it on every page, labelled
as an example with its provenance; deleted, it stays away until New experiment loads it again."""
import json
from pathlib import Path

import pandas as pd
from streamlit.testing.v1 import AppTest

from lth_core.example import EXAMPLE_DIR, REBUILD_COMMAND, example_runs
from lth_core.runs.store import RunStore
from lth_core.analysis import summary

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT = 90
SHIPPED = pd.read_csv(EXAMPLE_DIR / "rounds.csv")


def page(name: str | None = None, **params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in params.items():
        at.query_params[key] = value
    if name:
        at.switch_page(f"app_pages/{name}.py")
    return at.run()


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def labelled_as_example(at: AppTest) -> None:
    badge = [i.value for i in at.info if i.value.startswith("**Example run**")]
    assert len(badge) == 1, [i.value for i in at.info]
    assert f"made by running `{REBUILD_COMMAND}`" in badge[0] and "seed 0" in badge[0] and "torch 2.13.0" in badge[0]
    (provenance,) = [e for e in at.expander if e.label == "Where this example came from (provenance)"]
    shown = json.loads(at.json[0].value)
    assert shown["command"] == REBUILD_COMMAND and shown["config"]["rounds"] == 12 and shown["seed"] == 0
    assert shown["software"]["torch"].startswith("2.13.0") and shown["software"]["lth_core"].startswith("git ")


def mean(variant: str, rnd: int = 12) -> float:
    return SHIPPED[(SHIPPED["round"] == rnd) & (SHIPPED.variant == variant)].test_accuracy.mean()


def test_a_first_visit_finds_the_example_on_every_page(lth_home):
    new = page()
    no_errors(new)
    assert "Explore the example run first" in new.info[0].value and "7.0 %" in new.info[0].value
    (run_id,) = example_runs(RunStore())
    assert new.dataframe[0].value.loc[run_id, "name"] == "Example: LeNet-300-100 on mnist-5k"

    live = page("live_run")
    no_errors(live)
    labelled_as_example(live)
    metrics = {m.label: m.value for m in live.metric}
    assert metrics["Round"] == "12 of 12" and metrics["Ticket accuracy"] == summary.pct(mean("ticket"))

    results = page("results")
    no_errors(results)
    labelled_as_example(results)
    assert results.multiselect(key="w:run:multi").value == [run_id]
    assert len(results.dataframe[0].value) == len(SHIPPED)

    masks = page("masks")
    no_errors(masks)
    labelled_as_example(masks)
    assert any("Round 12, winning ticket, trial 0: 7.0 % of the weights remain" in m.value for m in masks.markdown)

    compare = page("compare")
    no_errors(compare)
    labelled_as_example(compare)
    metrics = {m.label: m.value for m in compare.metric}
    assert metrics["winning ticket"] == summary.pct(mean("ticket")) and metrics["reinit (same mask, new init)"] == summary.pct(mean("reinit"))
    assert metrics["random mask"] == summary.pct(mean("random"))
    assert metrics["dense network (round 0)"] == summary.pct(mean("ticket", 0))


def test_a_deleted_example_stays_away_until_new_experiment_loads_it(lth_home):
    page()                                              # the first visit adds it
    store = RunStore()
    (run_id,) = example_runs(store)
    store.delete(run_id)
    at = page()
    no_errors(at)
    assert store.list_runs().empty
    assert not [i for i in at.info if "Explore the example run first" in i.value]
    at.button(key="load_example").click().run()
    (again,) = example_runs(store)
    assert again != run_id and at.query_params["run"] == again
    results = page("results", run=again)
    no_errors(results)
    labelled_as_example(results)
    assert not [b for b in page().button if b.key == "load_example"]   # once there, no button


def test_a_users_own_run_is_not_labelled_as_an_example(lth_home):
    from lth_core.cli import main
    assert main(["run", "--dataset", "moons", "--arch", "mlp", "--hidden", "8", "--rounds", "1", "--epochs", "1",
                 "--store", "--name", "mine", "--quiet"]) == 0
    at = page("results")
    no_errors(at)
    assert not [i for i in at.info if i.value.startswith("**Example run**")]
    assert not example_runs(RunStore())                 # a store that had runs gets no example by itself
    assert [b for b in page().button if b.key == "load_example"]
