"""The run estimate: what it counts, the clock Live run reads, and the estimate-against-actual script.
No timing is asserted here (speed is measured by `python -m lth_core.estimate_check`)."""
import json
import time

import pytest

from lth_core import ExperimentConfig
from lth_core.runs import estimate, tasks
from lth_core.runs.estimate import (FALLBACK, RunClock, RunEstimate, StartupProbe, estimate_run, format_elapsed,
                                    save_clock, saved_clock, startup_probe, worker_running)
from lth_core.runs.store import RunStore
from lth_core.runs.worker import POLL_S, SchedulerLock

SMALL = dict(dataset="digits", arch="mlp", hidden=(16,), epochs=1, rounds=2, controls=("reinit", "random"))


def test_the_estimate_counts_start_up_training_evaluation_and_saving_for_every_round(lth_home):
    e = estimate_run(ExperimentConfig(**SMALL))
    assert e.startup_seconds > 0 and e.train_seconds > 0 and e.eval_seconds > 0 and e.write_seconds > 0
    assert e.seconds == pytest.approx(e.startup_seconds + e.train_seconds + e.eval_seconds + e.write_seconds)
    assert len(e.round_seconds) == e.rounds + 1 == 3
    assert sum(e.round_seconds) == pytest.approx(e.train_seconds + e.eval_seconds + e.write_seconds)
    assert 0 < e.round_seconds[1] < e.round_seconds[2]  # pruned rounds train the same three models; the last one ends the run
    assert "start-up" in e.breakdown() or e.startup_seconds < 0.5
    without = estimate_run(ExperimentConfig(**SMALL), startup=False)
    assert without.startup_seconds == 0 and without.seconds == pytest.approx(sum(without.round_seconds))


def test_each_rounds_bookkeeping_is_measured_by_running_the_engines_round_through_the_recorder(lth_home, monkeypatch):
    # start weights (a fresh init for reinit), hashes, numpy copies, pruning, checks and the commit are real work
    # of every model in every round: timed on the run's own shapes, through the Recorder into a throw-away store
    from lth_core.runs import recorder
    seen: list = []
    real_add = recorder.Recorder.add
    monkeypatch.setattr(recorder.Recorder, "add", lambda self, event: (seen.append(event), real_add(self, event))[1])
    estimate._booked.clear()
    config = ExperimentConfig(**{**SMALL, "trials": 2})
    book = estimate.time_bookkeeping(config, rounds=2)
    finished = [e for e in seen if type(e).__name__ == "RoundFinished"]
    assert [(e.trial, e.round, e.variant) for e in finished] == [
        (0, 0, "ticket"), (1, 0, "ticket"),
        *[(t, 1, v) for t in range(2) for v in ("ticket", "reinit", "random")]]
    assert all(e.params["fc1.weight"].shape == (16, 64) for e in finished)  # the run's network, one iteration a round
    assert [type(e).__name__ for e in seen].count("RoundCommitted") == 2 and type(seen[-1]).__name__ == "RunFinished"
    assert book.dense_round > 0 and book.pruned_round > 0 and book.end > 0
    assert not list(lth_home.glob("lth-estimate-*"))  # its store lay beside the run store, and is gone
    # remembered by what it depends on: training settings and more rounds change nothing, trials do
    seen.clear()
    assert estimate.time_bookkeeping(config.replace(epochs=3, lr=0.01, rounds=4), rounds=4) is book and not seen
    assert estimate.time_bookkeeping(config.replace(trials=1), rounds=2) is not book and seen


def test_the_estimate_grows_with_rounds_by_the_measured_bookkeeping(lth_home):
    estimate._booked.clear()
    two, four = (estimate_run(ExperimentConfig(**{**SMALL, "rounds": r}), startup=False) for r in (2, 4))
    book = estimate.time_bookkeeping(ExperimentConfig(**SMALL), rounds=2)  # the one both estimates used
    assert two.write_seconds == pytest.approx(book.dense_round + 2 * book.pruned_round + book.end)
    assert four.write_seconds - two.write_seconds == pytest.approx(2 * book.pruned_round)
    # each round carries its own: round 0 the dense one, the last round the run's end as well
    parts = [r - b for r, b in zip(two.round_seconds, (book.dense_round, book.pruned_round, book.pruned_round + book.end))]
    assert sum(parts) == pytest.approx(two.train_seconds + two.eval_seconds)


def test_the_timed_evaluation_meets_only_chunk_shapes_already_warmed_up(lth_home, monkeypatch):
    # a conv net builds its kernels at the first call of each input shape, once per run: the timed evaluation
    # point must not pay for that (digits: 539 validation and test rows in chunks of 250, 250 and 39)
    from lth_core.engine.lottery import _to_device_data, make_plan
    from lth_core.engine import training

    calls: list[int] = []

    def recording(net, params, buffers, x, y, splits=None):
        calls.append(x.shape[0])
        return training.evaluate(net, params, buffers, x, y, splits)

    monkeypatch.setattr(estimate, "evaluate", recording)
    plan = make_plan(ExperimentConfig(dataset="digits", arch="conv-2", epochs=1, rounds=1))
    data = _to_device_data(plan.data, plan.device)
    estimate.time_round(plan, data, models=2, groups=1)
    rows = data.x_val.shape[0] + data.x_test.shape[0]
    assert calls[-1] == rows and estimate.chunk_sizes(rows, plan.net.eval_chunk) == [250, 39]
    warmed = {size for before in calls[:-1] for size in estimate.chunk_sizes(before, plan.net.eval_chunk)}
    assert set(estimate.chunk_sizes(rows, plan.net.eval_chunk)) <= warmed


def test_steps_are_timed_for_tenths_of_a_second_and_evaluation_points_more_than_once_if_quick(lth_home, monkeypatch):
    # a dozen steps of a few ms each read a passing hiccup of the machine as the pace (seen: 0.6× on conv-2)
    from lth_core.engine.lottery import _to_device_data, make_plan
    from lth_core.engine import training

    stops: list[float] = []
    evals: list[int] = []

    def timing_train(*args, should_stop, **kw):
        def stop() -> bool:
            stops.append(time.perf_counter())
            return should_stop()
        return training.train(*args, should_stop=stop, **kw)

    def counting(net, params, buffers, x, y, splits=None):
        if splits:  # the timed ones (the chunk shapes' warm-up is not)
            evals.append(x.shape[0])
        return training.evaluate(net, params, buffers, x, y, splits)

    monkeypatch.setattr(estimate, "train", timing_train)
    monkeypatch.setattr(estimate, "evaluate", counting)
    plan = make_plan(ExperimentConfig(dataset="moons", arch="mlp", hidden=(8,), epochs=1, rounds=1))
    data = _to_device_data(plan.data, plan.device)
    estimate.time_round(plan, data, models=1, groups=1)
    timed = stops[estimate.WARMUP_STEPS - 1:]
    assert len(timed) - 1 == estimate.MAX_TIMED_STEPS or timed[-1] - timed[0] >= estimate.STEP_TIMING_S
    assert len(evals) > 1 and evals[-1] == evals[-2]  # a tiny net's evaluation point: well under EVAL_TIMING_S


def test_the_start_up_probe_leaves_no_forkserver_behind(tmp_path, monkeypatch):
    # the probe's forkserver, left to tear PyTorch down by itself, kept a core busy for a second or two,
    # and the next estimate timed its steps on what was left (seen: 8× too slow)
    import subprocess
    from pathlib import Path

    started: list[int] = []

    class Recorded(subprocess.Popen):  # the probe's child: a session leader, its forkserver in its session
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            started.append(self.pid)

    def alive_in_session(session: int) -> list[int]:
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            if int(fields[3]) == session and fields[0] not in "ZX":  # a zombie runs nothing: only not reaped yet
                found.append(int(stat.parent.name))
        return found

    monkeypatch.setattr(estimate.subprocess, "Popen", Recorded)
    estimate._probed.clear()
    monkeypatch.chdir(tmp_path)
    assert startup_probe() != FALLBACK
    assert len(started) == 1
    deadline = time.monotonic() + 0.3  # SIGKILLed ones need a moment to exit; one tearing down takes seconds
    while alive_in_session(started[0]) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert alive_in_session(started[0]) == []


def test_the_start_up_is_probed_by_starting_a_scheduler_and_its_forkserver_in_a_child(tmp_path, monkeypatch):
    estimate._probed.clear()
    monkeypatch.chdir(tmp_path)  # the probe finds the package wherever the caller runs
    probe = startup_probe()
    assert probe != FALLBACK
    assert probe.scheduler > 0.2 and probe.forkserver > 0.2  # each a new Python importing PyTorch: never instant
    assert probe.fork > 0
    assert startup_probe() is probe  # measured once, then remembered for a few minutes


def test_a_cold_start_pays_the_scheduler_and_its_forkserver_a_warm_one_a_poll_and_a_fork():
    probe = StartupProbe(scheduler=2.0, forkserver=3.0, fork=0.05)
    assert probe.seconds(warm=False) == 5.0
    assert probe.seconds(warm=True) == pytest.approx(POLL_S / 2 + 0.05)


def test_the_start_up_is_warm_exactly_while_a_scheduler_serves_the_store(lth_home):
    probe = startup_probe()  # remembered: every estimate below uses these figures, plus the dataset load
    config = ExperimentConfig(**SMALL)
    assert not worker_running()
    cold = estimate_run(config)
    assert not cold.worker_warm and cold.startup_seconds >= probe.seconds(False)
    lock = SchedulerLock(lth_home / "runs.sqlite")  # what a running scheduler holds
    assert lock.acquire()
    try:
        assert worker_running() and not worker_running(lth_home / "other.sqlite")
        warm = estimate_run(config)
        assert warm.worker_warm and probe.seconds(True) <= warm.startup_seconds < probe.seconds(False)
        # the caller may say which applies (the app's form caches its estimate by it)
        assert not estimate_run(config, warm=False).worker_warm
        assert not estimate_run(config, store_path=lth_home / "other.sqlite").worker_warm
    finally:
        lock.release()
    assert not worker_running() and not estimate_run(config).worker_warm
    assert not estimate_run(config, startup=False, warm=True).worker_warm  # no start-up counted at all


def test_a_real_scheduler_makes_the_start_up_warm_until_it_exits(lth_home):
    from lth_core import jobs
    probe = startup_probe()
    assert jobs.ensure_worker()  # a scheduler with nothing to do: it lingers a few seconds, then exits
    deadline = time.monotonic() + 120
    assert worker_running()
    assert estimate_run(ExperimentConfig(**SMALL)).startup_seconds < probe.seconds(False)
    while worker_running() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not worker_running()
    assert estimate_run(ExperimentConfig(**SMALL)).startup_seconds >= probe.seconds(False)


def clock(**kw) -> RunClock:
    e = RunEstimate(rounds=2, trainings=7, iterations_per_round=100, weights=1000, final_remaining=0.64,
                    seconds=9.0, startup_seconds=2.0, train_seconds=5.0, eval_seconds=1.5, write_seconds=0.5,
                    round_seconds=(1.0, 3.0, 3.0))
    return RunClock(e, submitted=1000.0, **kw)


def test_the_time_left_before_training_starts_is_the_estimate_less_the_elapsed_start_up():
    c = clock()
    assert c.seconds == 9.0
    assert c.seconds_left(now=1000.5, rounds_done=0, iteration_fraction=0, training_since=None) == pytest.approx(8.5)
    # the start-up took longer than estimated: the training is still all to come
    assert c.seconds_left(now=1010.0, rounds_done=0, iteration_fraction=0, training_since=None) == pytest.approx(7.0)


def test_the_time_left_follows_the_pace_of_the_rounds_so_far():
    c = clock()
    # round 0 (1 s estimated) and half of round 1 (1.5 s) took 5 s: 2× slower, so 4.5 s of work take 9 s
    left = c.seconds_left(now=1010.0, rounds_done=1, iteration_fraction=0.5, training_since=1005.0)
    assert left == pytest.approx(9.0)
    # on pace: as estimated
    assert c.seconds_left(now=1005.0, rounds_done=1, iteration_fraction=0.5, training_since=1002.5) == pytest.approx(4.5)
    assert c.seconds_left(now=1020.0, rounds_done=3, iteration_fraction=0, training_since=1002.0) == 0.0


def test_a_resumed_run_is_timed_from_its_first_unfinished_round():
    c = clock(from_round=2)
    assert c.seconds == pytest.approx(2.0 + 3.0)
    assert c.seconds_left(now=1004.0, rounds_done=2, iteration_fraction=0.5, training_since=1002.5) == pytest.approx(1.5)


def test_the_clock_is_kept_in_the_store_beside_the_run(lth_home):
    with RunStore() as store:
        assert saved_clock(store, "nosuchrun") is None
        saved = save_clock(store, "abc12345", clock().estimate, from_round=1)
        back = saved_clock(store, "abc12345")
        assert back == saved and back.estimate.round_seconds == (1.0, 3.0, 3.0)
        store.set_setting("estimate.broken", "{not json")
        assert saved_clock(store, "broken") is None
    assert json.loads(saved.to_json())["from_round"] == 1


def test_elapsed_times_read_like_a_clock():
    assert [format_elapsed(s) for s in (4.4, 65, 3725)] == ["4 s", "1 min 05 s", "1 h 02 min"]


def test_the_check_script_submits_through_the_worker_and_prints_the_table(lth_home, capsys):
    from lth_core import estimate_check
    estimate_check.main(["--only", "3"])
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith(estimate_check.CONFIGS[3][0]))
    assert "finished" in row
    assert "load average before" in out and "of 1 within ±30 %" in out


def test_the_check_script_can_submit_while_the_worker_still_runs(lth_home, capsys):
    from lth_core import estimate_check
    estimate_check.main(["--only", "3", "--warm"])
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(estimate_check.CONFIGS[3][0]))
    assert "finished" in row and "(cold)" not in row  # submitted while the primer run's scheduler lingered


def test_the_start_up_probe_and_the_bookkeeping_are_remembered_alike_for_a_few_minutes(monkeypatch):
    # one way to keep a measurement of this machine (estimate.Remembered): fresh for PROBE_KEEP_S, then redone
    assert isinstance(estimate._probed, estimate.Remembered) and isinstance(estimate._booked, estimate.Remembered)
    clock = [1000.0]
    monkeypatch.setattr(estimate.time, "monotonic", lambda: clock[0])
    kept = estimate.Remembered()
    assert kept.fresh("a") is None and kept.keep("a", 1) == 1 and kept.fresh("a") == 1
    clock[0] += estimate.PROBE_KEEP_S - 1
    assert kept.fresh("a") == 1
    kept.keep("b", 2)
    clock[0] += 1
    assert kept.fresh("a") is None and kept.fresh("b") == 2
    kept.keep("c", 3)  # keeping forgets what is stale
    assert set(kept) == {"b", "c"}


def _clocked(store: RunStore, seconds: float, startup: float = 0.0) -> str:
    """A queued run of SMALL with a saved clock of `seconds` (3 equal rounds after `startup`)."""
    from lth_core.runs.recorder import create_run
    run_id = create_run(store, ExperimentConfig(**SMALL))
    rounds = (seconds - startup) / 3
    save_clock(store, run_id, RunEstimate(2, 7, 10, 100, 0.64, seconds, startup_seconds=startup,
                                          round_seconds=(rounds,) * 3))
    return run_id


def test_the_runs_ahead_of_a_queued_run_count_their_own_time_left_from_their_clocks(lth_home, monkeypatch):
    from lth_core.runs.estimate import describe_wait, queue_ahead
    from lth_core.runs.recorder import claim, create_run
    monkeypatch.setenv("LTH_WORKERS", "1")
    with RunStore() as store:
        assert queue_ahead(store) == estimate.QueueAhead(0, 0.0, 0) and describe_wait(queue_ahead(store)) == ""
        first = _clocked(store, 600.0, startup=6.0)     # training: 600 s estimated, 6 of them start-up
        second = _clocked(store, 120.0)                  # queued behind it
        third = _clocked(store, 30.0)
        assert saved_clock(store, second).ahead == 1 and saved_clock(store, third).ahead == 2  # counted at submit
        claim(store, first)
        now = time.time()
        ahead = queue_ahead(store, third, now)
        assert (ahead.runs, ahead.unclocked) == (2, 0)
        # the running one has not got past its start-up: all its rounds and the start-up not yet spent, then all of the second
        assert ahead.seconds == pytest.approx(600.0 + 120.0, abs=2.0)
        assert queue_ahead(store, second, now).seconds == pytest.approx(600.0, abs=2.0)
        assert queue_ahead(store, first, now) == estimate.QueueAhead(0, 0.0, 0)  # it is not waiting
        assert queue_ahead(store, None, now).runs == 3  # a run submitted now waits for all three
        assert describe_wait(ahead) == "2 runs ahead of it: starts in about 12 min"
        # with two workers the third takes the one the second run frees first
        monkeypatch.setenv("LTH_WORKERS", "2")
        assert queue_ahead(store, third, now).seconds == pytest.approx(120.0, abs=2.0)
        monkeypatch.setenv("LTH_WORKERS", "3")  # a worker free for it: it waits for nobody
        assert queue_ahead(store, third, now) == estimate.QueueAhead(0, 0.0, 0)
        # a run with no clock (from the CLI) is counted, its time said to be unknown
        monkeypatch.setenv("LTH_WORKERS", "1")
        create_run(store, ExperimentConfig(**SMALL))
        late = queue_ahead(store, None, now)
        assert (late.runs, late.unclocked) == (4, 1) and "1 with no estimate" in describe_wait(late)


def _training_task(store: RunStore, estimate_s: float | None, claimed: bool = True) -> "tasks.Task":
    """An at-init task as the worker holds it: queued on its experiment's run (which has left the queue) with
    `estimate_s`, then (`claimed`) claimed and adopted by this process (alive) as the scheduler does."""
    import os

    from lth_core.engine.at_init import AtInitSpec, imp_config
    from lth_core.runs import at_init
    from lth_core.runs.recorder import create_run
    spec = AtInitSpec(targets=(0.5,), criteria=("snip",))
    run_id = create_run(store, imp_config(ExperimentConfig(**SMALL), spec), "at init", docs={at_init.SPEC_DOC: spec.to_dict()})
    store.cancel(run_id)  # its IMP run is over: only the task holds a worker
    key = tasks.submit(store, run_id, at_init.TASK, 0, 0, estimate_s=estimate_s)
    task = tasks.get(store, run_id, key)
    if claimed:
        attempt = tasks.claim(store, task)
        assert attempt and tasks.adopt(store, task, attempt, os.getpid())
    return tasks.get(store, run_id, key)


def test_a_background_task_training_holds_a_worker_slot_and_a_run_submitted_now_waits_for_it(lth_home, monkeypatch):
    """Was 'starts at once' (nothing said) while an at-init task trained on the only worker, which the run then
    waited for: a running task holds a slot, with its time left from its estimate or its pace."""
    import subprocess
    import sys

    from lth_core.runs import tasks
    from lth_core.runs.estimate import describe_wait, queue_ahead
    monkeypatch.setenv("LTH_WORKERS", "1")
    with RunStore() as store:
        task = _training_task(store, estimate_s=300.0)
        now = time.time()
        alone = queue_ahead(store, None, now)
        assert describe_wait(alone) == "1 background task ahead of it: starts in about 5 min"
        assert (alone.runs, alone.tasks, alone.unclocked) == (0, 1, 0) and alone.seconds == pytest.approx(300.0, abs=5.0)
        # a queued run too: it goes first (the scheduler gives a freed slot to queued runs before queued tasks)
        queued = _clocked(store, 120.0)
        assert saved_clock(store, queued).ahead_tasks == 1 and saved_clock(store, queued).waited
        ahead = queue_ahead(store, None, now)
        assert (ahead.runs, ahead.tasks) == (1, 1) and ahead.seconds == pytest.approx(420.0, abs=5.0)
        assert describe_wait(ahead) == "1 run and 1 background task ahead of it: starts in about 7 min"
        assert queue_ahead(store, queued, now).seconds == pytest.approx(300.0, abs=5.0)
        # a queued task is behind every queued run: it is not ahead of one
        assert _training_task(store, estimate_s=50.0, claimed=False).state == tasks.QUEUED
        assert queue_ahead(store, None, now).tasks == 1 and queue_ahead(store, None, now).seconds == pytest.approx(420.0, abs=5.0)
        # two workers: the task holds one, the queued run takes the other; a run submitted now takes the first freed
        monkeypatch.setenv("LTH_WORKERS", "2")
        assert queue_ahead(store, None, now).seconds == pytest.approx(120.0, abs=5.0)
        monkeypatch.setenv("LTH_WORKERS", "3")
        assert queue_ahead(store, None, now) == estimate.QueueAhead(0, 0.0, 0)
        monkeypatch.setenv("LTH_WORKERS", "1")
        # 60 s on, its estimate has 240 s left
        assert queue_ahead(store, queued, now + 60).seconds == pytest.approx(240.0, abs=5.0)
        # where the task tells the part done (an at-init task: the cells done), its pace says its time left:
        # a quarter done in 60 s, 180 s more
        store.put_doc(task.run_id, task.key, {**store.doc(task.run_id, task.key), "share_done": 0.25})
        assert queue_ahead(store, queued, now + 60).seconds == pytest.approx(180.0, abs=5.0)
        # past its estimate, with no part done told, its time left is unknown: no "starts in about 1 s"
        store.put_doc(task.run_id, task.key, {**store.doc(task.run_id, task.key), "share_done": None})
        assert queue_ahead(store, queued, now + 400).unclocked == 1
        # with neither an estimate nor a part done its time left is unknown, and said to be
        store.put_doc(task.run_id, task.key, {**store.doc(task.run_id, task.key), "estimate_s": None})
        unknown = queue_ahead(store, queued, now)
        assert (unknown.tasks, unknown.unclocked) == (1, 1)
        assert describe_wait(unknown) == ("1 background task ahead of it, with no estimate of its time left: it starts "
                                          "when that ends")
        assert describe_wait(queue_ahead(store, None, now)) == ("1 run and 1 background task ahead of it: starts in "
                                                                "about 2 min (1 with no estimate: later if it runs long)")
        # a task whose process is gone holds nothing
        gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        store.put_doc(task.run_id, task.key, {**store.doc(task.run_id, task.key), "pid": int(gone.stdout)})
        assert queue_ahead(store, queued, now) == estimate.QueueAhead(0, 0.0, 0)
        assert tasks.get(store, task.run_id, task.key).state == tasks.INTERRUPTED


def test_a_claimed_run_counts_its_start_up_from_when_it_left_the_queue(lth_home):
    from lth_core.runs.estimate import claimed_at, time_left
    from lth_core.runs.recorder import claim
    with RunStore() as store:
        run_id = _clocked(store, 100.0, startup=10.0)
        clock = saved_clock(store, run_id)
        assert claimed_at(store, store.get_run(run_id), clock) is None  # still queued
        claim(store, run_id)
        run = store.get_run(run_id)
        at = claimed_at(store, run, clock)
        assert at is not None and clock.submitted <= at <= time.time()
        # waited 500 s in the queue behind another run: its start-up is still all to come
        late = RunClock(clock.estimate, at - 500.0, ahead=1)
        assert time_left(store, run, late, at + 1.0) == pytest.approx(99.0, abs=0.5)
        # with nobody ahead, the 3 s to the claim were the scheduler's own start, part of the estimated start-up
        # (Live run's elapsed time counts from the submit then): 4 s of it spent, not 1 s
        cold = RunClock(clock.estimate, at - 3.0, ahead=0)
        assert time_left(store, run, cold, at + 1.0) == pytest.approx(96.0, abs=0.5)
