"""Every command that queues a background task prints the task's id as `tasks` lists it and `cancel` takes it:
RUN/KIND/ROUND/TRIAL, not the store key task/KIND/ROUND/TRIAL (issue 11, defect 2)."""
import re

from lth_core.cli import main

from test_deploy_tasks import finished_run
from test_jobs import store  # noqa: F401  (the fixture kills the store's processes)


def test_the_printed_task_id_is_the_one_tasks_lists_and_cancel_takes(store, capsys):  # noqa: F811
    run_id = finished_run(store)
    cli = ["--store-path", str(store.path)]
    queued = {"deploy": ["deploy", run_id, "--round", "2", "--repeats", "2", "--threads", "1", "--background"],
              "sensitivity": ["sensitivity", "--run", run_id, "--background"],
              "stability": ["stability", run_id, "--round", "1", "--ks", "0", "--alphas", "3", "--background"]}
    for kind, argv in queued.items():
        assert main([*argv, *cli]) == 0, kind
        out = capsys.readouterr().out
        assert "task/" not in out, out
        (task_id,) = re.findall(rf"\(({re.escape(run_id)}/{kind}/\d+/\d+)\)", out)
        assert main(["tasks", run_id, *cli]) == 0
        assert task_id in capsys.readouterr().out
        assert main(["cancel", task_id, *cli]) == 0
        assert capsys.readouterr().out.startswith(f"task {task_id}: "), kind


def test_cancel_waits_for_a_run_and_for_a_task_the_same_way():
    # one loop (cli._while_running) serves `cancel RUN`, its at-init cells and `cancel RUN/KIND/ROUND/TRIAL`
    import time

    from lth_core import cli

    states = iter(["running", "running", "cancelled", "never read"])
    assert cli._while_running("running", lambda: next(states), lambda s: s == "running", time.monotonic() + 5) == "cancelled"
    assert next(states) == "never read"  # it stops reading once the state is not running
    started = time.monotonic()  # past the deadline: the state as it is, read no more
    assert cli._while_running("running", lambda: "x", lambda s: s == "running", started) == "running"
    assert time.monotonic() - started < 0.2
