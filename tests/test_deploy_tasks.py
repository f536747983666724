"""The deployment bench as work attached to a run: queued through jobs, done by the real background worker,
kept with the run, shown by the Deploy page (also when the dataset cannot be loaded), and a task whose
process dies ends 'interrupted'. No timing is asserted."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lth_core import ExperimentConfig, jobs
from lth_core.analysis.deploy_bench import DeployBench
from lth_core.analysis.recommend import recommended_round
from lth_core.analysis.deploy_view import break_even_plot, files_table, latency_table
from lth_core.engine.errors import ConfigError
from lth_core.runs import tasks
from lth_core.runs.store import RunStore

from app_helpers import page
from conftest import ROOT
from test_jobs import TINY, processes_of, store, wait_for  # noqa: F401  (the fixture kills the store's processes)

SMALL = dict(repeats=2, threads=1)


def finished_run(store: RunStore, **settings) -> str:  # noqa: F811
    run_id = jobs.submit(ExperimentConfig(**dict(TINY, **settings)), name="tiny deploy run", store_path=store.path)
    wait_for("the tiny run to finish", lambda: store.get_run(run_id).status not in ("queued", "running"), timeout=240)
    assert store.get_run(run_id).status == "finished", store.get_run(run_id).error
    return run_id


def task_state(store: RunStore, run_id: str, key: str) -> tasks.Task:  # noqa: F811
    task = tasks.get(store, run_id, key)
    assert task is not None
    return task


def wait_done(store: RunStore, run_id: str, key: str, timeout: float = 300) -> tasks.Task:  # noqa: F811
    wait_for(f"task {key} to end", lambda: not task_state(store, run_id, key).active, timeout=timeout)
    task = task_state(store, run_id, key)
    assert task.state == tasks.DONE, task.error
    return task


def test_bench_and_export_run_in_the_real_worker_and_are_kept_with_the_run(store):  # noqa: F811
    run_id = finished_run(store)
    recommended = recommended_round(store.rounds(run_id))
    if recommended is None:  # no ticket within 1 point: the round must be chosen, and the message says so
        with pytest.raises(ConfigError, match="^round: no pruned round"):
            jobs.submit_deploy(run_id, store_path=store.path)
    else:  # the default round is the recommended one
        assert jobs.submit_deploy(run_id, trial=0, store_path=store.path, **SMALL) == f"task/deploy/{recommended}/0"
        wait_done(store, run_id, f"task/deploy/{recommended}/0")
    key = jobs.submit_deploy(run_id, 2, 0, store_path=store.path, **SMALL)
    assert key == "task/deploy/2/0"
    export_key = jobs.submit_export(run_id, 1, 0, store_path=store.path)
    assert task_state(store, run_id, key).state in (tasks.QUEUED, tasks.RUNNING)
    # a second submit of the same ticket while it is queued or running is the same task, not a second one
    assert jobs.submit_deploy(run_id, 2, 0, store_path=store.path, **SMALL) == key
    task = wait_done(store, run_id, key)
    assert task.pid is None and task.finished_at and task.progress == "done"
    bench = DeployBench.from_dict(store.doc(run_id, "deploy/2/0"))
    rounds = store.rounds(run_id)
    stored = rounds[(rounds.trial == 0) & (rounds.variant == "ticket")].set_index("round")["test_accuracy"]
    assert (bench.run_id, bench.round, bench.trial, bench.arch) == (run_id, 2, 0, "mlp")
    assert bench.accuracy("ticket", "engine") == pytest.approx(stored[2], abs=1e-9)
    assert bench.accuracy("ticket", "structured") == bench.accuracy("ticket", "engine")
    assert bench.machine.threads == 1 and bench.machine.torch == torch.__version__ and "cores" in bench.machine.label()
    assert bench.summary.startswith("At ") and bench.timing("ticket", "pytorch CSR", 256).repeats == 2
    # the page's tables and figure from the stored result
    assert set(files_table(bench)["format"]) >= {"fp32 .pt", "bitmask .npz", "CSR .npz", "ONNX", "ONNX int8"}
    for batch in (1, 256):
        table = latency_table(bench, batch)
        assert list(table.columns) == ["network", "variant", "ms per call", "× dense"]  # four columns fit a page
        assert "PyTorch with CSR matmuls" in set(table["variant"]) and len(table) == 9
    fig = break_even_plot(bench)
    curves = [t for t in fig.data if t.x != (None,)]
    assert {t.name for t in curves} == {"dense matmul", "CSR matmul"} and len(curves) == 2 * 2 * 2  # 2 shapes, 2 batches
    # this ticket's density marked where it is on the log axis (a shape takes the value), and said in the
    # subplot's title, clear of the lines (tests/test_break_even_layout.py); the line explained in the legend
    fc1 = 100 * bench.layer_density["fc1"]
    assert any(sh.x0 == pytest.approx(fc1) and sh.x1 == pytest.approx(fc1) for sh in fig.layout.shapes)
    (title,) = [a for a in fig.layout.annotations if a.text.startswith("fc1 ") and "batch 1<" in a.text]
    assert f"this ticket: {fc1:.1f} %" in title.text
    assert "this ticket's density of the layer" in {t.name for t in fig.data}

    wait_done(store, run_id, export_key)
    export = store.doc(run_id, "export/1/0")
    assert set(export["files"]) >= {"ticket_pruned.pt", "ticket_dense.pt", "ticket.onnx", "ticket_bitmask.npz", "README.txt"}
    from lth_core.analysis.exports import plain_module
    model = plain_module(export["folder"], pruned=True)
    model.load_state_dict(torch.load(f"{export['folder']}/ticket_pruned.pt"))  # loads into prune's format

    assert Path(export["folder"]).is_relative_to(store.exports_path / run_id)
    store.delete(run_id)
    assert tasks.all_tasks(store) == [] and store.doc(run_id, "deploy/2/0") is None  # deleted with the run
    assert not (store.exports_path / run_id).exists()  # and so are its exported files


def long_bench_running(store, run_id: str) -> tuple[str, int]:  # noqa: F811
    """A bench long enough to act on while it runs: its task key and its process, once it is running."""
    key = jobs.submit_deploy(run_id, 2, 0, repeats=10_000, threads=1, store_path=store.path)
    wait_for("the bench to be running in its own process",
             lambda: task_state(store, run_id, key).state == tasks.RUNNING and task_state(store, run_id, key).pid,
             timeout=120)
    return key, task_state(store, run_id, key).pid


def test_a_task_whose_process_is_killed_ends_interrupted(store):  # noqa: F811
    run_id = finished_run(store)
    key, pid = long_bench_running(store, run_id)
    os.kill(pid, signal.SIGKILL)
    # a reader may see the process gone first ("its process is gone"); the scheduler, its parent, then says how
    wait_for("the task to be marked interrupted by SIGKILL",
             lambda: "killed by SIGKILL" in (task_state(store, run_id, key).error or ""), timeout=30)
    task = task_state(store, run_id, key)
    assert task.state == tasks.INTERRUPTED and task.pid is None
    assert store.doc(run_id, "deploy/2/0") is None
    # measured again, it queues anew
    jobs.submit_deploy(run_id, 2, 0, store_path=store.path, **SMALL)
    assert task_state(store, run_id, key).state in (tasks.QUEUED, tasks.RUNNING)
    jobs.cancel(run_id, store_path=store.path)  # nothing to cancel (finished); the fixture stops the worker


def running(pid: int) -> bool:
    """The process is there and not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_running_or_queued_task_can_be_cancelled(store):  # noqa: F811
    """Cancel stops a running bench in its own process (it marks itself cancelled, keeps no result) and a queued
    export at once, which then never starts; both can be queued again."""
    run_id = finished_run(store)
    key, pid = long_bench_running(store, run_id)
    export_key = jobs.submit_export(run_id, 2, 0, store_path=store.path)  # one worker slot: it waits
    assert task_state(store, run_id, export_key).state == tasks.QUEUED
    assert tasks.cancel(store, run_id, export_key) == tasks.CANCELLED
    assert tasks.cancel(store, run_id, key) == tasks.RUNNING  # asked; the task's process stops it
    wait_for("the bench to stop as cancelled", lambda: task_state(store, run_id, key).state == tasks.CANCELLED,
             timeout=60)
    task = task_state(store, run_id, key)
    assert task.error is None and task.pid is None and task.progress == "cancelled" and task.finished_at
    assert store.doc(run_id, "deploy/2/0") is None
    wait_for("the bench's process to end", lambda: not running(pid), timeout=30)
    time.sleep(2)  # a scheduler tick or two: the cancelled export never starts, and the bench stays cancelled
    assert task_state(store, run_id, export_key).state == tasks.CANCELLED
    assert task_state(store, run_id, key).state == tasks.CANCELLED and store.doc(run_id, "export/2/0") is None
    assert tasks.cancel(store, run_id, key) == tasks.CANCELLED  # cancelling again changes nothing
    assert tasks.cancel(store, run_id, "task/deploy/9/9") is None
    # queued again, it runs
    jobs.submit_deploy(run_id, 2, 0, store_path=store.path, **SMALL)
    wait_done(store, run_id, key)
    assert DeployBench.from_dict(store.doc(run_id, "deploy/2/0")).round == 2


def test_the_cli_lists_and_cancels_tasks_by_their_id(store, capsys):  # noqa: F811
    """`tasks` lists the background tasks with ids RUN/KIND/ROUND/TRIAL; `cancel` takes such an id (with a run id
    prefix) as well as a run id, stops the running bench in the real worker and a queued export at once; an
    unknown task id is one line naming the run's tasks."""
    from lth_core.cli import main

    run_id = finished_run(store)
    key, pid = long_bench_running(store, run_id)
    export_key = jobs.submit_export(run_id, 2, 0, store_path=store.path)  # one worker slot: it waits
    cli = ["--store-path", str(store.path)]
    assert main(["tasks", *cli]) == 0
    listed = capsys.readouterr().out
    assert f"{run_id}/deploy/2/0" in listed and f"{run_id}/export/2/0" in listed, listed
    assert "running" in listed and "queued" in listed and "deployment bench" in listed
    assert main(["cancel", f"{run_id}/export/2/0", *cli]) == 0
    assert capsys.readouterr().out.strip() == f"task {run_id}/export/2/0: cancelled"
    assert main(["cancel", f"{run_id[:6]}/deploy/2/0", *cli]) == 0  # a unique prefix of the run, as for runs
    assert capsys.readouterr().out.strip() == f"task {run_id}/deploy/2/0: cancelled"
    assert task_state(store, run_id, key).state == tasks.CANCELLED and store.doc(run_id, "deploy/2/0") is None
    wait_for("the bench's process to end", lambda: not running(pid), timeout=30)
    assert main(["cancel", f"{run_id}/deploy/2/0", *cli]) == 0  # again: nothing to do, said so
    assert "already ended" in capsys.readouterr().out
    assert main(["cancel", f"{run_id}/deploy/9/9", *cli]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no task 'deploy/9/9'" in err and f"{run_id}/deploy/2/0" in err, err
    assert main(["tasks", run_id[:6], *cli]) == 0
    rows = [line.split()[:2] for line in capsys.readouterr().out.splitlines()[1:]]
    assert sorted(rows) == [[f"{run_id}/deploy/2/0", "cancelled"], [f"{run_id}/export/2/0", "cancelled"]], rows
    assert main(["cancel", run_id, *cli]) == 0  # a run id still cancels the run (finished: nothing to stop)
    assert capsys.readouterr().out.strip() == f"run {run_id}: finished"


def test_a_task_found_without_its_process_reads_interrupted(store):  # noqa: F811
    """No scheduler saw it die (the machine restarted): the next reader marks it, never stuck 'running'."""
    run_id = store.add_run(ExperimentConfig(**TINY), "never trained")
    key = tasks.submit(store, run_id, "deploy", 1, 0)
    task = tasks.get(store, run_id, key)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    attempt = tasks.claim(store, task, pid=int(dead.stdout))
    assert attempt and tasks.get(store, run_id, key).state == tasks.INTERRUPTED
    assert "process is gone" in tasks.get(store, run_id, key).error


def test_bad_round_or_trial_is_one_line_naming_the_field(store, tmp_path):  # noqa: F811
    run_id = finished_run(store, trials=1)
    with pytest.raises(ConfigError) as exc:
        jobs.submit_deploy(run_id, 7, store_path=store.path)
    assert exc.value.field == "round" and "1, 2" in exc.value.message
    with pytest.raises(ConfigError) as exc:
        jobs.submit_deploy(run_id, 1, 3, store_path=store.path)
    assert exc.value.field == "trial" and "got 3" in exc.value.message
    with pytest.raises(ConfigError) as exc:
        jobs.submit_deploy(run_id, 1, 0, repeats=0, store_path=store.path)
    assert exc.value.field == "repeats"
    assert tasks.all_tasks(store) == []
    env = dict(os.environ, LTH_HOME=str(store.path.parent))
    bad = subprocess.run([sys.executable, "-m", "lth_core", "deploy", run_id, "--background", "--trial", "4"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert bad.returncode == 2 and bad.stderr.startswith("error: trial:") and len(bad.stderr.strip().splitlines()) == 1
    ok = subprocess.run([sys.executable, "-m", "lth_core", "deploy", run_id, "--background", "--round", "1",
                         "--repeats", "2", "--threads", "1"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                        env=env)
    assert ok.returncode == 0 and "deploy/1/0" in ok.stdout, ok.stderr
    wait_done(store, run_id, "task/deploy/1/0")
    assert DeployBench.from_dict(store.doc(run_id, "deploy/1/0")).round == 1


# ---- the Deploy page -------------------------------------------------------------------------------------

@pytest.fixture
def measured(store):  # noqa: F811
    """A finished tiny run whose round-2 ticket was benched and exported by the real worker."""
    run_id = finished_run(store)
    key = jobs.submit_deploy(run_id, 2, 0, store_path=store.path, **SMALL)
    export = jobs.submit_export(run_id, 2, 0, store_path=store.path)
    wait_done(store, run_id, key)
    wait_done(store, run_id, export)
    return run_id


def _texts(at) -> str:
    return "\n".join(e.value for kind in ("markdown", "caption", "info", "warning", "error", "subheader")
                     for e in getattr(at, kind))


def _shows_the_bench(at, store, run_id):  # noqa: F811
    assert not at.exception, at.exception
    bench = DeployBench.from_dict(store.doc(run_id, "deploy/2/0"))
    text = _texts(at)
    for heading in ("File sizes", "Latency", "Accuracy on the test split", "Units removed per layer",
                    "Where sparse starts paying off"):
        assert heading in text, heading
    assert bench.summary.split(" (")[0].replace("×", "×") in text.replace("\\", "")
    assert bench.machine.cpu.split()[0] in text and "1 thread" in text
    assert len(at.dataframe) == 5  # files, latency at batch 1 and at batch 256, accuracy, units
    frames = [d.value for d in at.dataframe]
    assert "ONNX int8" in set(frames[0]["format"]) and "PyTorch with CSR matmuls" in set(frames[1]["variant"])
    assert list(frames[1].columns) == list(frames[2].columns) == ["network", "variant", "ms per call", "× dense"]
    assert len(at.get("plotly_chart")) == 1
    assert [b.label for b in at.button if b.label.startswith("Measure")] == ["Measure again"]
    labels = [d.proto.label for d in at.get("download_button")]
    from lth_core.analysis.exports import EXPORT_FORMATS
    assert len(labels) == len(EXPORT_FORMATS) + 2 and any("prune" in label for label in labels)  # + README, json


def test_deploy_page_shows_the_stored_bench(measured, store):  # noqa: F811
    at = page("deploy", run=measured, round="2", trial="0")
    _shows_the_bench(at, store, measured)
    # Compare's deployment section: the measured sentence instead of "not measured", and a link to Deploy
    bench = DeployBench.from_dict(store.doc(measured, "deploy/2/0"))
    at = page("compare", run=measured, deploy_round="2")
    assert not at.exception, at.exception
    (said,) = [s.value for s in at.success if "Measured on" in s.value]
    assert bench.summary[:40] in said.replace("\\", "")
    links = [e for e in at.get("page_link") if "Deploy" in e.proto.label]
    assert len(links) == 1 and links[0].proto.page.endswith("deploy")
    at = page("compare", run=measured, deploy_round="1")  # round 1 was not measured: the caveat stays
    assert not [s for s in at.success if "Measured on" in s.value]
    assert any("Counted, not measured" in w.value for w in at.warning)
    # timed under heavy load: said plainly beside the latencies (the bench above, idle enough, said nothing)
    assert not [w for w in at.warning if "heavy load" in w.value]
    doc = store.doc(measured, "deploy/2/0")
    store.put_doc(measured, "deploy/2/0", {**doc, "machine": {**doc["machine"], "others_busy": 1.9, "load_during": 9.3}})
    at = page("deploy", run=measured, round="2", trial="0")
    assert not at.exception, at.exception
    (warned,) = [w.value for w in at.warning if "heavy load" in w.value]
    assert "1.9 of its 2 cores busy" in warned.replace("\\", "") and "measure again" in warned
    store.put_doc(measured, "deploy/2/0", {**doc, "machine": {k: v for k, v in doc["machine"].items()
                                                              if k not in ("others_busy", "load_during")}})
    at = page("deploy", run=measured, round="2", trial="0")  # stored before the load was recorded: shown as it was
    _shows_the_bench(at, store, measured)
    assert not [w for w in at.warning if "heavy load" in w.value]


def test_deploy_page_shows_the_stored_bench_when_the_dataset_cannot_be_loaded(measured, store, no_data):  # noqa: F811
    at = page("deploy", run=measured, round="2", trial="0")
    _shows_the_bench(at, store, measured)


def test_measure_button_queues_the_bench_and_a_bad_link_names_the_field(store):  # noqa: F811
    run_id = finished_run(store)
    at = page("deploy", run=run_id, round="9", trial="0")
    assert not at.exception, at.exception
    assert any("**round** `9`" in w.value and "allowed: `1`, `2`" in w.value for w in at.warning), [w.value for w in at.warning]  # the link's round is not one: named, another shown
    assert any("not been measured yet" in i.value for i in at.info)
    assert tasks.all_tasks(store) == []
    next(b for b in at.button if b.label == "Measure").click().run()
    assert not at.exception, at.exception
    queued = {t.key: t.state for t in tasks.all_tasks(store)}
    assert set(queued) >= {"task/deploy/2/0", "task/export/2/0"}, queued
    assert all(state in (tasks.QUEUED, tasks.RUNNING, tasks.DONE) for state in queued.values())
    assert any("Waiting for the background worker" in i.value or "Measuring in the background" in i.value
               for i in at.info), _texts(at)
