"""The background worker with real processes: queueing, cancelling, kill -9 and resume, the CLI.

Every test gets its own LTH_HOME (conftest), and the `store` fixture kills every process started for
that store, so no test leaves a worker running.
"""
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lth_core import ExperimentConfig, collect, jobs, run_experiment, write_outputs
from lth_core.cli import main as cli_main
from lth_core.runs.procs import process_token
from lth_core.runs.store import RunStore, StoreError
from lth_core.engine.results import TIMING_COLUMNS as TIMINGS

ROOT = Path(__file__).resolve().parent.parent
TINY = dict(dataset="digits", arch="mlp", hidden=(32,), rounds=2, epochs=1, batch_size=32, controls=("reinit", "random"))
# rounds long enough (a second or more each on 2 idle cores; 2000 iterations took 0.45 s here, shorter than
# the store's half-second progress writes) to stop a run in the middle of one
LONG = dict(TINY, epochs=None, iterations=6000, eval_every=50)


def processes_of(path: Path) -> list[int]:
    """Pids of every process started for the store at `path`: the scheduler (by its command line), its
    forkserver and the run processes forked from it (by the LTH_WORKER_STORE the scheduler sets)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        ours = (b"lth_core" in args and str(path).encode() in args) or f"LTH_WORKER_STORE={path}".encode() in env
        if ours and process_token(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def schedulers_of(path: Path) -> list[int]:
    return [p for p in processes_of(path) if Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[1:4]
            == [b"-m", b"lth_core", b"worker"] and b"--run" not in Path(f"/proc/{p}/cmdline").read_bytes()]


@pytest.fixture
def store(lth_home):
    path = lth_home / "runs.sqlite"
    store = RunStore(path)
    yield store
    store.close()
    killed = set()
    for _ in range(50):  # the scheduler may be starting a run process right now: repeat until none is left
        pids = processes_of(path)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        killed.update(pids)
        time.sleep(0.1)
    assert not processes_of(path)
    wait_for("the killed processes to be gone", lambda: all(process_token(pid) is None for pid in killed), timeout=10)


@pytest.fixture(scope="module")
def reference(dataset_cache, tmp_path_factory):
    """Uninterrupted in-process runs of the configs used here: what every stored run must equal."""
    home = tmp_path_factory.mktemp("reference-home")
    os.symlink(dataset_cache, home / "cache")
    results = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LTH_HOME", str(home))
        for key, config in [("tiny0", TINY), ("tiny1", dict(TINY, seed=1)), ("long", LONG)]:
            results[key] = collect(run_experiment(ExperimentConfig(**config)))
    return results


def wait_for(what: str, predicate, timeout: float = 120.0, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def status(store: RunStore, run_id: str) -> str:
    return store.get_run(run_id).status


def mid_round(store: RunStore, run_id: str) -> int | None:
    """The round ≥ 1 in flight, once some of its curve points are stored (None before that)."""
    info = store.get_run(run_id)
    if info.status == "running" and (info.round or 0) >= 1 and info.rounds_done == info.round and (info.iteration or 0) >= 50:
        return info.round
    return None


def assert_same_results(store: RunStore, run_id: str, expected) -> None:
    """Everything but wall times equals the uninterrupted run: rounds, layers, curves (no point twice), masks."""
    pd.testing.assert_frame_equal(store.rounds(run_id).drop(columns=TIMINGS),
                                  expected.rounds_df().drop(columns=TIMINGS))
    pd.testing.assert_frame_equal(store.layers(run_id), expected.layers_df())
    pd.testing.assert_frame_equal(store.curves(run_id), expected.curves_df())
    for (trial, rnd, variant), masks in expected.masks.items():
        got = store.masks(run_id, trial, rnd, variant)
        assert all(np.array_equal(got[layer], m) for layer, m in masks.items())


def cli(*args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "lth_core", *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=timeout)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def test_runs_submitted_together_queue_one_at_a_time_and_never_mix_rows(store, reference):
    started = time.monotonic()
    a = jobs.submit(ExperimentConfig(**TINY), name="A")
    b = jobs.submit(ExperimentConfig(**TINY, seed=1), name="B")
    c = jobs.submit(ExperimentConfig(**TINY, seed=2), name="C")
    assert time.monotonic() - started < 3  # submit returns at once; training happens elsewhere
    assert jobs.cancel(c) == "cancelled"  # a queued run is cancelled on the spot
    scheduler = jobs.scheduler_pid()
    assert scheduler and scheduler != os.getpid()
    assert schedulers_of(store.path) == [scheduler]

    wait_for("both runs to finish", lambda: status(store, a) == status(store, b) == "finished")
    assert_same_results(store, a, reference["tiny0"])
    assert_same_results(store, b, reference["tiny1"])
    info_a, info_b, info_c = store.get_run(a), store.get_run(b), store.get_run(c)
    assert info_b.started_at >= info_a.finished_at  # one worker: B waited in the queue for A
    assert info_c.status == "cancelled" and info_c.started_at is None and store.rounds(c).empty
    assert info_c.reason == "cancelled-by-user"
    assert list(store.list_runs()["name"]) == ["C", "B", "A"]


def test_the_worker_count_lets_runs_train_side_by_side_and_a_deleted_run_stops(store):
    jobs.set_workers(2)
    assert jobs.workers() == 2
    ids = [jobs.submit(ExperimentConfig(**LONG, seed=s)) for s in range(2)]
    wait_for("two runs training at once", lambda: all(status(store, i) == "running" and store.get_run(i).round is not None
                                                      for i in ids))
    # deleting a running run stops its process (its writes match nothing any more); cancel stops the other
    deleted_pid = _run_pid(store, ids[0])
    store.delete(ids[0])
    jobs.cancel(ids[1])
    wait_for("the deleted run's process to end", lambda: process_token(deleted_pid) is None, timeout=20)
    wait_for("the other to stop", lambda: status(store, ids[1]) == "cancelled", timeout=20)
    assert list(store.list_runs()["id"]) == [ids[1]]
    with sqlite3.connect(store.path) as db:
        assert all(db.execute(f"SELECT COUNT(*) FROM {t} WHERE run_id = ?", (ids[0],)).fetchone()[0] == 0
                   for t in ("rounds", "layers", "curves", "masks", "inits", "checkpoints"))


def test_a_worker_killed_mid_round_is_interrupted_and_resumes_to_the_uninterrupted_result(store, reference, tmp_path):
    run_id = jobs.submit(ExperimentConfig(**LONG))
    killed_in = wait_for("a round ≥ 1 to be in flight", lambda: mid_round(store, run_id))
    killed = processes_of(store.path)
    for pid in killed:  # the scheduler and the run process die at once, as in a crash
        os.kill(pid, signal.SIGKILL)
    wait_for("the processes to be gone", lambda: all(process_token(pid) is None for pid in killed), timeout=10)
    assert len(store.curves(run_id, round=killed_in)) > 0  # the killed round had stored some curve points

    info = RunStore(store.path).get_run(run_id)  # the next open finds the dead worker
    assert info.status == "interrupted" and info.rounds_done == killed_in and "stopped" in info.error
    assert info.reason == "worker-gone"  # the code, whatever the text says
    assert set(store.rounds(run_id)["round"]) == set(range(killed_in))

    assert jobs.resume(run_id) == run_id
    wait_for("the resumed run to finish", lambda: status(store, run_id) == "finished")
    assert_same_results(store, run_id, reference["long"])
    assert store.get_run(run_id).reason is None and store.get_run(run_id).error is None

    # the exported rounds.csv equals an uninterrupted run's, wall times aside
    assert cli_main(["export", run_id, "--out", str(tmp_path / "resumed")]) == 0
    r = reference["long"]
    write_outputs(tmp_path / "straight", r.config, r.rounds_df(), r.layers_df(), r.curves_df(), r.masks, r.inits)
    rounds = [pd.read_csv(tmp_path / d / "rounds.csv").drop(columns=TIMINGS) for d in ("resumed", "straight")]
    pd.testing.assert_frame_equal(*rounds)
    for name in ("layers.csv", "curves.csv", "config.json"):
        assert (tmp_path / "resumed" / name).read_bytes() == (tmp_path / "straight" / name).read_bytes()


def test_a_run_process_killed_alone_is_marked_interrupted_by_the_scheduler(store):
    run_id = jobs.submit(ExperimentConfig(**LONG))
    pid = wait_for("the run process", lambda: status(store, run_id) == "running" and store.get_run(run_id).round == 0
                   and _run_pid(store, run_id))
    os.kill(pid, signal.SIGKILL)
    wait_for("the scheduler to notice", lambda: status(store, run_id) == "interrupted", timeout=5)
    # the store may see the dead process first; the scheduler, its parent, then names the signal
    wait_for("the reason to name the signal", lambda: store.get_run(run_id).reason == "worker-died", timeout=5)
    assert "SIGKILL" in store.get_run(run_id).error


def _run_pid(store: RunStore, run_id: str) -> int | None:
    with sqlite3.connect(store.path) as db:
        pid = db.execute("SELECT pid FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
    return pid if pid and pid in processes_of(store.path) else None


def test_cancel_stops_within_a_second_keeps_the_finished_rounds_and_resume_completes_it(store, reference):
    run_id = jobs.submit(ExperimentConfig(**LONG))
    stopped_in = wait_for("a round ≥ 1 to be in flight", lambda: mid_round(store, run_id))
    asked = time.monotonic()
    assert jobs.cancel(run_id) == "running"
    wait_for("the run to stop", lambda: status(store, run_id) == "cancelled", timeout=10, every=0.02)
    took = time.monotonic() - asked
    assert took < 2.5, f"cancel took {took:.2f} s"
    expected = reference["long"].rounds_df()
    pd.testing.assert_frame_equal(store.rounds(run_id).drop(columns=TIMINGS),  # exactly the finished rounds
                                  expected[expected["round"] < stopped_in].drop(columns=TIMINGS))
    assert store.get_run(run_id).rounds_done == stopped_in and store.get_run(run_id).reason == "cancelled-by-user"

    assert cli_main(["resume", run_id, "--quiet"]) == 0  # in the foreground this time, from the command line
    assert status(store, run_id) == "finished"
    assert_same_results(store, run_id, reference["long"])
    assert cli_main(["resume", run_id]) == 2  # a finished run has nothing to resume


def test_a_run_that_cannot_start_fails_with_a_one_line_reason(store):
    run_id = jobs.submit(ExperimentConfig(dataset="csv:no/such/file.csv", arch="mlp", hidden=(8,)))
    assert store.get_run(run_id).config.dataset == f"csv:{Path.cwd() / 'no/such/file.csv'}"  # made absolute
    wait_for("the run to fail", lambda: status(store, run_id) == "failed")
    error = store.get_run(run_id).error
    assert error.startswith("dataset:") and "\n" not in error and store.rounds(run_id).empty
    assert store.get_run(run_id).reason == "failed-config"


def test_the_command_line_records_lists_shows_exports_and_deletes(store, tmp_path, capsys):
    flags = ["--dataset", "digits", "--arch", "mlp", "--hidden", "32", "--rounds", "2", "--epochs", "1",
             "--batch-size", "32", "--controls", "reinit,random", "--quiet"]
    out = cli("run", *flags, "--store", "--name", "from the cli", "--out", str(tmp_path / "direct"))
    run_id = store.list_runs()["id"].iloc[0]
    assert run_id in out.stderr

    def main(*args: str) -> tuple[int, str, str]:  # the quick commands in this process: a second each saved
        code = cli_main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, listing, _ = main("runs")
    assert code == 0 and run_id in listing and "finished" in listing and "from the cli" in listing
    code, shown, _ = main("show", run_id[:4])  # a unique prefix is enough
    assert code == 0 and "finished" in shown and "hidden=32" in shown and "ticket" in shown

    assert main("export", run_id, "--out", str(tmp_path / "exported"))[0] == 0
    for name in ("config.json", "rounds.csv", "layers.csv", "curves.csv", "masks/README.txt"):
        assert (tmp_path / "exported" / name).read_bytes() == (tmp_path / "direct" / name).read_bytes(), name
    for npz in sorted((tmp_path / "direct" / "masks").glob("*.npz")):
        with np.load(npz) as want, np.load(tmp_path / "exported" / "masks" / npz.name) as got:
            assert want.files == got.files and all(np.array_equal(want[k], got[k]) for k in want.files)

    for command in (["show", "zzzzzzzz"], ["export", "zzzzzzzz", "--out", str(tmp_path / "x")], ["cancel", "zzzzzzzz"],
                    ["delete", "zzzzzzzz"], ["resume", "zzzzzzzz"]):
        code, _, err = main(*command)
        assert code == 2 and err.count("\n") == 1 and "no run with id 'zzzzzzzz'" in err
    bad = cli("show", "zzzzzzzz", check=False)  # and from a real process: status 2, one line, no traceback
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no run with id" in bad.stderr

    assert main("cancel", run_id)[1].strip() == f"run {run_id}: finished"
    assert main("delete", run_id)[0] == 0
    assert store.list_runs().empty
    with pytest.raises(StoreError):
        store.get_run(run_id)


def test_a_scheduler_started_from_another_folder_finds_the_package(tmp_path):
    # the caller found lth_core through its own sys.path (as `streamlit run /path/app.py` does), not PYTHONPATH:
    # the scheduler it spawns must still import it (the path put on it named lth_core/ itself, not its folder)
    log = tmp_path / "worker.log"
    script = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from pathlib import Path; "
              f"from lth_core.runs import worker; "
              f"sys.exit(worker.spawn(['--help'], log=Path({str(log)!r}), detach=False).wait())")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 0, log.read_text()
    assert "--store-path" in log.read_text()
