"""The example run shipped in examples/: made by the engine from its recorded config, imported into an
empty store once, and the same numbers as a fresh run of that config."""
import dataclasses
import json
import shutil
import threading

import numpy as np
import pandas as pd
import pytest

from lth_core import ExperimentConfig, collect, run_experiment
from lth_core import example
from lth_core.cli import main
from lth_core.engine.results import CURVE_COLUMNS, LAYER_COLUMNS, ROUND_COLUMNS, TIMING_COLUMNS
from lth_core.runs.checks import run_checklist
from lth_core.runs.store import RunStore

SHIPPED = example.EXAMPLE_DIR


def shipped(name: str) -> pd.DataFrame:
    return pd.read_csv(SHIPPED / name)


def test_the_shipped_example_is_the_recorded_config_and_small():
    provenance = example.read_provenance()
    assert ExperimentConfig.from_dict(provenance["config"]) == example.EXAMPLE_CONFIG.validated()
    assert provenance["command"] == "python -m lth_core example --rebuild" == example.REBUILD_COMMAND
    assert provenance["seed"] == 0 and provenance["software"]["torch"].startswith("2.13.0")
    size = sum(p.stat().st_size for p in SHIPPED.rglob("*") if p.is_file())
    assert size < 5e6, f"the shipped example is {size / 1e6:.1f} MB"
    rounds = shipped("rounds.csv")
    last = rounds[rounds["round"] == 12].groupby("variant")
    assert last.weights_remaining.mean()["ticket"] == pytest.approx(0.0695, abs=0.001)
    accuracy = last.test_accuracy.mean()   # the finding: the sparse ticket beats both controls
    assert accuracy["ticket"] - accuracy["reinit"] >= 0.015 and accuracy["ticket"] - accuracy["random"] >= 0.015


def test_a_fresh_run_of_the_recorded_config_repeats_the_shipped_rounds_bit_for_bit():
    # the first two rounds (dense, then 80 %) of the recorded config, trained again here
    config = dataclasses.replace(example.EXAMPLE_CONFIG, rounds=1)
    fresh = collect(run_experiment(config))
    columns = [c for c in ROUND_COLUMNS if c not in TIMING_COLUMNS]
    rounds = shipped("rounds.csv")
    mine = fresh.rounds_df()[columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, rounds[rounds["round"] <= 1][columns].reset_index(drop=True), check_exact=True)
    curves = shipped("curves.csv")
    pd.testing.assert_frame_equal(fresh.curves_df().reset_index(drop=True),
                                  curves[curves["round"] <= 1].reset_index(drop=True), check_exact=True)
    for trial in (0, 1):
        with np.load(SHIPPED / "masks" / f"trial{trial}_init.npz") as z:
            assert all(np.array_equal(z[name], a) for name, a in fresh.inits[trial].items())
        with np.load(SHIPPED / "masks" / f"trial{trial}_round1.npz") as z:
            for variant in ("ticket", "reinit", "random"):
                for layer, mask in fresh.masks[(trial, 1, variant)].items():
                    packed = np.unpackbits(z[f"{variant}/{layer}"], count=mask.size).reshape(mask.shape).astype(bool)
                    assert np.array_equal(packed, mask), (trial, variant, layer)


def test_the_example_is_imported_into_an_empty_store_once(lth_home):
    store = RunStore()
    run_id = example.ensure_example(store)
    assert run_id is not None
    info = store.get_run(run_id)
    assert info.status == "finished" and info.name.startswith("Example:") and info.rounds_done == 13
    assert info.config == example.EXAMPLE_CONFIG.validated() and info.variants == ["ticket", "reinit", "random"]
    assert example.provenance_of(store, run_id)["command"] == example.REBUILD_COMMAND
    assert example.example_runs(store).keys() == {run_id}
    # the store holds exactly the shipped numbers, masks and initial weights
    pd.testing.assert_frame_equal(store.rounds(run_id), shipped("rounds.csv")[ROUND_COLUMNS], check_exact=True)
    pd.testing.assert_frame_equal(store.layers(run_id), shipped("layers.csv")[LAYER_COLUMNS], check_exact=True)
    pd.testing.assert_frame_equal(store.curves(run_id), shipped("curves.csv")[CURVE_COLUMNS], check_exact=True)
    with np.load(SHIPPED / "masks" / "trial1_round12.npz") as z:
        mask = store.mask(run_id, 1, 12, "random", "fc2")
        assert np.array_equal(np.unpackbits(z["random/fc2"], count=mask.size).reshape(mask.shape), mask)
    with np.load(SHIPPED / "masks" / "trial1_init.npz") as z:
        init = store.init_weights(run_id, 1)
        assert init.keys() == set(z.files) and all(np.array_equal(z[k], init[k]) for k in z.files)
    # its checklist is that of a run trained here: every recorded check passed (the rerun is on demand)
    lines = {line.key: line.status for line in run_checklist(store, run_id)}
    assert lines == {"zero_weights": "pass", "same_start": "pass", "control_counts": "pass", "rerun": "not run",
                     "budget": lines["budget"]}

    assert example.ensure_example(store) is None            # not twice
    store.delete(run_id)
    assert example.ensure_example(store) is None            # deleted: it does not come back by itself
    assert store.list_runs().empty and example.example_runs(store) == {}
    again = example.import_example(store)                   # unless asked ("Load the example run")
    assert example.example_runs(store).keys() == {again}


def test_a_store_that_already_has_runs_gets_no_example(lth_home):
    from lth_core.runs.recorder import create_run

    store = RunStore()
    create_run(store, ExperimentConfig(dataset="moons", arch="mlp", hidden=(8,), rounds=1))
    assert example.ensure_example(store) is None and len(store.list_runs()) == 1


def test_two_sessions_opening_an_empty_store_at_once_add_the_example_once(lth_home):
    results, barrier = [], threading.Barrier(3)

    def open_app() -> None:
        barrier.wait()
        results.append(example.ensure_example(RunStore()))

    threads = [threading.Thread(target=open_app) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1
    assert len(RunStore().list_runs()) == 1


def test_a_damaged_example_file_is_refused_naming_it(tmp_path, lth_home):
    copy = tmp_path / "example"
    shutil.copytree(SHIPPED, copy)
    with open(copy / "rounds.csv", "a") as f:
        f.write("0,0,ticket,1.0,0.99,0.99,1,0.99,0.1,1.0,1.0\n")
    store = RunStore()
    with pytest.raises(example.ExampleError, match=r"rounds\.csv differs from the one recorded"):
        example.ensure_example(store, copy)
    assert store.list_runs().empty and example.ensure_example(store) is not None  # nothing half-written; retried
    (copy / example.PROVENANCE).unlink()
    with pytest.raises(example.ExampleError, match="the example run is missing"):
        example.import_example(store, copy)


def test_rebuild_writes_a_folder_that_imports_to_the_same_numbers(tmp_path, lth_home):
    small = ExperimentConfig(dataset="digits", arch="mlp", hidden=(16,), rounds=2, epochs=1, controls=("random",),
                             trials=2, seed=3, device="cpu")
    folder = tmp_path / "example"
    provenance = example.rebuild(folder, small)
    assert json.loads((folder / example.PROVENANCE).read_text()) == provenance
    assert provenance["config"] == small.validated().to_dict() and provenance["run"]["rounds"] == 2
    store = RunStore()
    run_id = example.import_example(store, folder)
    again = collect(run_experiment(small)).rounds_df()
    columns = [c for c in ROUND_COLUMNS if c not in TIMING_COLUMNS]
    pd.testing.assert_frame_equal(store.rounds(run_id)[columns], again[columns], check_exact=True)
    assert store.masks(run_id, 1, 2, "random").keys() == {"fc1", "output"}
    # it carries the sanity checks recorded while it trained, as a run of the worker does
    assert (folder / example.CHECKS).name in provenance["files"]
    lines = {line.key: line for line in run_checklist(store, run_id)}
    assert lines["zero_weights"].status == lines["same_start"].status == lines["control_counts"].status == "pass"
    assert "10 trained networks" in lines["zero_weights"].line  # 2 trials × (dense + 2 rounds × ticket, random)


def test_the_command_line_loads_the_example_once(lth_home, capsys):
    assert main(["example"]) == 0
    assert "added the example as run" in capsys.readouterr().out
    assert main(["example"]) == 0
    assert "already in" in capsys.readouterr().out
    assert len(RunStore().list_runs()) == 1
    assert main(["runs"]) == 0
    assert "Example: LeNet-300-100 on mnist-5k" in capsys.readouterr().out


def test_finding_the_example_runs_is_one_query_however_many_runs(lth_home):
    """New experiment asks for the example runs on every load: one query, not one per run of a big store."""
    from lth_core.runs.recorder import create_run

    store = RunStore()
    example_id = example.import_example(store)
    for i in range(20):
        create_run(store, ExperimentConfig(dataset="moons", arch="mlp", hidden=(8,), rounds=1), f"run {i}")
    statements: list[str] = []
    with store._read() as db:
        db.set_trace_callback(statements.append)
    try:
        found = example.example_runs(store)
    finally:
        with store._read() as db:
            db.set_trace_callback(None)
    assert found.keys() == {example_id} and found[example_id] == example.provenance_of(store, example_id)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1, statements
