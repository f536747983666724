"""Sweeps on the Ray executor (a private Ray instance on loopback): same seeds, same numbers as the local
executor; a Ray worker killed mid-sweep leaves the finished cells, and resume completes the rest.
Skipped, saying why, where ray is not installed (pip install -r requirements-ray.txt)."""
import os
import signal
import threading
import time

import pandas as pd
import pytest

ray = pytest.importorskip("ray", reason="ray is not installed here: pip install -r requirements-ray.txt")

from lth_core.cli import main  # noqa: E402
from lth_core.engine.config import ExperimentConfig  # noqa: E402
from lth_core.engine.results import TIMING_COLUMNS  # noqa: E402
from lth_core.runs.ray_executor import WORKER_DOC, connect, run_cells  # noqa: E402
from lth_core.runs.store import RunStore  # noqa: E402
from lth_core.runs.sweep import add_sweep, parse_grid, plan_cells, sweep_cells  # noqa: E402

TINY = ["--dataset", "moons", "--arch", "mlp", "--hidden", "16", "--iterations", "40", "--rounds", "2", "--trials", "2"]


@pytest.fixture(scope="module")
def local_ray():
    connect(None, num_cpus=2)  # the CLI below finds it running and uses it
    yield
    ray.shutdown()


def _strip(rounds: pd.DataFrame) -> pd.DataFrame:
    return rounds.drop(columns=list(TIMING_COLUMNS)).reset_index(drop=True)


def _sweep(capsys, *argv) -> str:
    code = main(["sweep", *TINY, "--grid", "prune_rate=0.2,0.5", "--grid", "reset=init,rewind:5", *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out.split()[1].rstrip(":")


def test_a_2x2_grid_on_ray_gives_the_rounds_of_the_local_executor_bit_for_bit(local_ray, capsys, lth_home):
    on_ray = sweep_cells(RunStore(), _sweep(capsys, "--executor", "ray"))
    here = sweep_cells(RunStore(), _sweep(capsys))
    assert list(on_ray["label"]) == list(here["label"]) and len(here) == 4
    assert set(on_ray["status"]) == set(here["status"]) == {"finished"}
    store = RunStore()
    for a, b in zip(on_ray["id"], here["id"]):
        ray_rounds, local_rounds = store.rounds(a), store.rounds(b)
        assert len(ray_rounds) == 3 * 2  # rounds 0-2, 2 trials
        pd.testing.assert_frame_equal(_strip(ray_rounds), _strip(local_rounds), check_exact=True)
        assert store.curves(a)[["test_accuracy"]].equals(store.curves(b)[["test_accuracy"]])
        assert store.doc(a, WORKER_DOC)["pid"] != os.getpid()  # it trained in a Ray worker, not here



def _three_seed_sweep_on_ray(iterations: int) -> tuple[RunStore, str, list[str], dict[str, str], threading.Thread]:
    """A sweep over seeds 0-2 of a small moons MLP, its cells being trained on Ray by a driver thread."""
    base = ExperimentConfig(dataset="moons", arch="mlp", hidden=(64,), iterations=iterations, rounds=3)
    store = RunStore()
    sweep_id = add_sweep(store, plan_cells(base, [parse_grid("seed=0,1,2")]), executor="ray")
    ids = list(sweep_cells(store, sweep_id)["id"])
    ended: dict[str, str] = {}
    driver = threading.Thread(target=lambda: ended.update(run_cells(store, ids)))
    driver.start()
    return store, sweep_id, ids, ended, driver

def test_a_killed_ray_worker_leaves_the_finished_cells_and_resume_completes_the_rest(local_ray, capsys, lth_home):
    store, sweep_id, ids, ended, driver = _three_seed_sweep_on_ray(iterations=500)
    victim, deadline = ids[0], time.time() + 240
    while store.get_run(victim).rounds_done < 2:  # the first cell has finished a pruned round
        assert time.time() < deadline and driver.is_alive()
        time.sleep(0.1)
    os.kill(store.doc(victim, WORKER_DOC)["pid"], signal.SIGKILL)
    driver.join(timeout=300)
    assert not driver.is_alive()
    info = store.get_run(victim)
    assert ended[victim] == info.status == "interrupted" and info.reason == "worker-died", info
    kept = store.rounds(victim)
    assert info.rounds_done >= 2 and kept["round"].max() == info.rounds_done - 1
    assert [ended[i] for i in ids[1:]] == ["finished", "finished"]
    finished_at = {i: store.get_run(i).finished_at for i in ids[1:]}
    # resume runs only what is missing: the killed cell, from its last finished round
    code = main(["sweep", "resume", sweep_id])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "resuming 1 cell on ray" in out
    assert {i: store.get_run(i).finished_at for i in ids[1:]} == finished_at
    assert store.get_run(victim).status == "finished"
    # ... to the numbers of a run never stopped
    from lth_core import collect, run_experiment
    whole = collect(run_experiment(store.get_run(victim).config)).rounds_df()
    pd.testing.assert_frame_equal(_strip(store.rounds(victim)), _strip(whole), check_dtype=False)
    pd.testing.assert_frame_equal(_strip(store.rounds(victim)).iloc[:len(kept)], _strip(kept))


def test_cancelling_a_ray_sweep_cancels_its_running_cells(local_ray, capsys, lth_home):
    store, sweep_id, ids, ended, driver = _three_seed_sweep_on_ray(iterations=3000)
    deadline = time.time() + 120
    # Ray starts the cells in its own order (two at a time on 2 cores): wait for whichever runs first
    while not any(store.get_run(i).status == "running" and store.doc(i, WORKER_DOC) is not None for i in ids):
        assert time.time() < deadline
        time.sleep(0.1)
    done_before = {i for i in ids if store.get_run(i).status == "finished"}
    assert main(["sweep", "cancel", sweep_id]) == 0
    driver.join(timeout=60)
    assert not driver.is_alive()
    assert done_before != set(ids)
    left = {i: (store.get_run(i).status, store.get_run(i).error) for i in ids if i not in done_before}
    assert {status for status, _ in left.values()} == {"cancelled"}, (left, ended)


def test_a_ray_task_brings_an_uploaded_dataset_to_a_machine_that_lacks_it(tmp_path, monkeypatch, lth_home):
    """A cluster's machine has no uploads of its own: the task places the shipped folder, and the run
    reads it (its hash checked) with the numbers it has here."""
    from sklearn.datasets import load_wine

    from lth_core import collect, run_experiment
    from lth_core.engine.uploads import check_upload
    from lth_core.runs.ray_executor import train_cell, upload_files

    wine = load_wine(as_frame=True).frame.rename(columns={"target": "label"})
    report = check_upload({"wine.csv": wine.to_csv(index=False).encode()})
    config = ExperimentConfig(dataset=report.spec, arch="mlp", hidden=(16,), iterations=30, rounds=1)
    files = upload_files(config)
    assert files is not None and "meta.json" in files
    here = collect(run_experiment(config)).rounds_df()
    elsewhere = tmp_path / "other-machine"
    elsewhere.mkdir()
    monkeypatch.setenv("LTH_HOME", str(elsewhere))  # a machine without the upload
    from lth_core.engine.results import RunResult
    result = RunResult()
    stream = train_cell(config.to_dict(), None, files)
    assert next(stream)["pid"] == os.getpid()
    for event in stream:
        result.add(event)
    assert (elsewhere / "datasets" / report.spec.split(":", 1)[1] / "meta.json").is_file()
    pd.testing.assert_frame_equal(_strip(result.rounds_df()), _strip(here))
    assert upload_files(ExperimentConfig(dataset="moons")) is None
