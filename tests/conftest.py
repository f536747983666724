"""Shared fixtures. Every test gets its own LTH_HOME, so nothing touches the user's files;
parsed datasets are cached in one session-wide folder so they are parsed once."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def dataset_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("lth-cache")


@pytest.fixture(autouse=True)
def lth_home(tmp_path, monkeypatch, dataset_cache) -> Path:
    home = tmp_path / "lth-home"
    home.mkdir()
    # share the parsed-dataset cache between tests: a symlink into the session cache
    os.symlink(dataset_cache, home / "cache")
    monkeypatch.setenv("LTH_HOME", str(home))
    return home


# ---- fixtures of the app's tests (tests/test_plots.py, test_app_pages.py, test_e2e_browser.py) ----
TINY_APP_RUN = dict(dataset="digits", arch="mlp", hidden=(32,), rounds=2, epochs=1, batch_size=32,
                    controls=("reinit", "random"), trials=2, seed=0)


@pytest.fixture(scope="session")
def session_home(tmp_path_factory, dataset_cache) -> Path:
    """An LTH_HOME shared by the session-scoped app fixtures, with the shared dataset cache."""
    home = tmp_path_factory.mktemp("lth-app-home")
    os.symlink(dataset_cache, home / "cache")
    return home


@pytest.fixture(scope="session")
def tiny_result(session_home):
    """A real tiny run from the engine: digits, mlp 32, 2 rounds, ticket + reinit + random, 2 trials."""
    from lth_core import ExperimentConfig, collect, run_experiment
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LTH_HOME", str(session_home))
        return collect(run_experiment(ExperimentConfig(**TINY_APP_RUN)))


@pytest.fixture(scope="session")
def mnist_result(session_home):
    """LeNet-300-100 on mnist-5k, one short pruning round: real 300×784 first-layer masks."""
    from lth_core import ExperimentConfig, collect, run_experiment
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LTH_HOME", str(session_home))
        return collect(run_experiment(ExperimentConfig(dataset="mnist-5k", arch="lenet-300-100", rounds=1,
                                                       iterations=30, controls=("random",))))


@pytest.fixture(scope="session")
def app_store(tmp_path_factory, dataset_cache):
    """An LTH_HOME whose store holds two finished tiny runs and a failed one (conv-2 on tabular wine),
    all trained by the real background worker. Yields {"home", "done", "other", "failed"}."""
    import time

    from lth_core import ExperimentConfig, jobs
    from lth_core.runs.store import RunStore

    home = tmp_path_factory.mktemp("lth-app-store")
    os.symlink(dataset_cache, home / "cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LTH_HOME", str(home))
        done = jobs.submit(ExperimentConfig(**TINY_APP_RUN), name="tiny digits run")
        other = jobs.submit(ExperimentConfig(**dict(TINY_APP_RUN, trials=1, seed=1)), name="seed 1")
        failed = jobs.submit(ExperimentConfig(dataset="wine", arch="conv-2", rounds=1), name="conv on a table")
        store = RunStore()
        deadline = time.time() + 240
        while any(store.get_run(i).status in ("queued", "running") for i in (done, other, failed)):
            assert time.time() < deadline, "the tiny runs did not finish in time"
            time.sleep(0.5)
        for run_id in (done, other):
            assert store.get_run(run_id).status == "finished", store.get_run(run_id).error
        yield {"home": home, "done": done, "other": other, "failed": failed}
        store.close()
        deadline = time.time() + 15  # the worker's scheduler leaves by itself once the queue is empty
        while jobs.scheduler_pid() and time.time() < deadline:
            time.sleep(0.3)
        if (pid := jobs.scheduler_pid()):
            os.kill(pid, 15)


@pytest.fixture
def no_data(monkeypatch):
    """Every name bound to the dataset loader or the plan builder, in every module loaded, raises."""
    import sys

    import streamlit as st

    from lth_core.engine import data as _data, lottery as _lottery

    originals = {_data.load_dataset, _lottery.make_plan}

    def refuse(*args, **kwargs):
        raise OSError("dataset loading is switched off in this test")

    for module in list(sys.modules.values()):
        for name in ("load_dataset", "make_plan"):
            if getattr(module, name, None) in originals:
                monkeypatch.setattr(module, name, refuse)
    st.cache_data.clear()  # a dataset cached by an earlier page must not hide a load
    return refuse
