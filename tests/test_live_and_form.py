"""Live run in its edge states (queued, starting, round 0, finished), the time line beside the estimate, the
confirmation of a run estimated at more than an hour, and the app's bind address. AppTest on a real store;
runs are driven by the real engine through the real Recorder (no worker, so each state holds still)."""
import os
import re
import subprocess
import sys
import time
import tomllib
from dataclasses import replace
from contextlib import contextmanager
from pathlib import Path

import app_helpers
from streamlit.testing.v1 import AppTest

from lth_core import ExperimentConfig, run_experiment
from lth_core.runs.estimate import CLOCK_KEY, RunClock, estimate_run, save_clock
from lth_core.engine.events import EvalPointEvent
from lth_core.runs.recorder import Recorder, claim, create_run
from lth_core.runs.store import RunStore
from lth_core.runs.worker import SchedulerLock

TIMEOUT = 120
ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
SMALL = dict(dataset="digits", arch="mlp", hidden=(16,), epochs=2, batch_size=16, controls=("reinit", "random"))


def page(name: str, **params) -> AppTest:
    return app_helpers.page(name, TIMEOUT, **params)


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def shown(at: AppTest) -> str:
    """Every text of the page: markdown, captions, metrics, the progress bar, info boxes."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
    parts += [f"{m.label}: {m.value}" for m in at.metric] + [p.text for p in at.get("progress")]
    return "\n".join(parts)


@contextmanager
def no_worker(home: Path):
    """Hold the scheduler's lock, so opening the app does not start the queued run: it stays as it is."""
    lock = SchedulerLock(home / "runs.sqlite")
    assert lock.acquire()
    try:
        yield
    finally:
        lock.release()


def test_a_queued_run_sized_by_a_target_shows_no_round_count_and_nothing_training(lth_home):
    with no_worker(lth_home), RunStore() as store:
        run_id = create_run(store, ExperimentConfig(**SMALL, target_remaining=0.03), "to 3 %")
        at = page("live_run", run=run_id)
        no_errors(at)
        text = shown(at)
        metrics = {m.label: m.value for m in at.metric}
        assert metrics["Round"] == "—" and metrics["Iteration"] == "—"   # was "0 of 0" and "0 of ?"
        assert "0 of 0" not in text and "0 of 1 rounds done" not in text
        assert "Training together now" not in text                      # was "…: dense network."
        assert "waiting for a free worker" in text


def test_a_run_still_starting_says_so(lth_home):
    with no_worker(lth_home), RunStore() as store:
        run_id = create_run(store, ExperimentConfig(**SMALL, rounds=2), "starting")
        claim(store, run_id)  # running, but its process has not planned the run yet
        at = page("live_run", run=run_id)
        no_errors(at)
        text = shown(at)
        assert "starting: loading PyTorch and the dataset" in text
        assert "Training together now" not in text
        assert {m.label: m.value for m in at.metric}["Round"] == "—"


def _drive(store: RunStore, run_id: str, config: ExperimentConfig, *, eval_points: int | None, in_round: int = 0) -> None:
    """Train the run with the real engine, recording as the worker does; stop after `eval_points` points
    of round `in_round` (None: to the end)."""
    rec = Recorder(store, run_id, claim(store, run_id))
    events = run_experiment(config)
    seen = 0
    for event in events:
        if isinstance(event, EvalPointEvent) and eval_points is not None and event.round == in_round:
            seen += 1
            if seen == eval_points:
                time.sleep(0.6)  # the recorder writes progress at most twice a second
                rec.add(event)
                events.close()
                return
        rec.add(event)


def test_round_zero_shows_its_progress_the_elapsed_time_and_the_time_left(lth_home):
    config = ExperimentConfig(**SMALL, rounds=3)
    with no_worker(lth_home), RunStore() as store:
        run_id = create_run(store, config, "round 0")
        save_clock(store, run_id, estimate_run(config, startup=False))
        _drive(store, run_id, config, eval_points=4)
        run = store.get_run(run_id)
        assert run.status == "running" and run.round == 0 and run.iteration
        at = page("live_run", run=run_id)
        no_errors(at)
        text = shown(at)
        assert f"0 of 3 pruned rounds done · round 0 (the dense network): iteration {run.iteration} of {run.iterations}" in text
        assert re.search(r"Elapsed \d+ (s|min).* · estimated about \d+ (s|min) · about \d+ (s|min) left", text), text
        assert "Training together now: dense network." in text
        assert {m.label: m.value for m in at.metric}["Round"] == "0 of 3"


def test_the_round_metric_and_the_progress_bar_count_rounds_the_same_way(lth_home):
    config = ExperimentConfig(**SMALL, rounds=3)
    with no_worker(lth_home), RunStore() as store:
        run_id = create_run(store, config, "round 1")
        _drive(store, run_id, config, eval_points=2, in_round=1)
        run = store.get_run(run_id)
        assert run.status == "running" and run.round == 1 and run.rounds_done == 1 and run.rounds_total == 3
        at = page("live_run", run=run_id)
        no_errors(at)
        assert {m.label: m.value for m in at.metric}["Round"] == "1 of 3"
        # was "1 of 4 rounds done" beside "Round 1 of 3": round 0 (the dense network) counted in one only
        bar = at.get("progress")[0].text
        assert bar == f"dense network and 0 of 3 pruned rounds done · round 1: iteration {run.iteration} of {run.iterations}"


def test_a_finished_run_shows_how_long_it_took_against_its_estimate(lth_home):
    config = ExperimentConfig(**SMALL, rounds=1)
    with no_worker(lth_home), RunStore() as store:
        run_id = create_run(store, config, "done")
        save_clock(store, run_id, estimate_run(config, startup=False))
        _drive(store, run_id, config, eval_points=None)
        assert store.get_run(run_id).status == "finished"
        at = page("live_run", run=run_id)
        no_errors(at)
        assert re.search(r"Took \d+ (s|min)[^(]*\(estimated about \d+ (s|min)\)", shown(at)), shown(at)


def _waited(store: RunStore, run_id: str, config: ExperimentConfig, seconds: float, ahead: int) -> None:
    """Save the run's clock as if it had been submitted `seconds` ago behind `ahead` runs."""
    clock = RunClock(estimate_run(config, startup=False), time.time() - seconds, ahead=ahead)
    store.set_setting(CLOCK_KEY.format(run_id), clock.to_json())


def test_a_finished_run_that_waited_in_the_queue_tells_its_wait_apart_from_its_training(lth_home):
    # was "Took 8 min 57 s (estimated about 9 s)": the 8.5 min behind another run counted as the run's own time
    config = ExperimentConfig(**SMALL, rounds=1)
    with no_worker(lth_home), RunStore() as store:
        run_id = create_run(store, config, "waited")
        _waited(store, run_id, config, 510.0, ahead=1)
        _drive(store, run_id, config, eval_points=None)
        at = page("live_run", run=run_id)
        no_errors(at)
        took = re.search(r"Took (\d+) s \(estimated about \d+ s\), after (8 min 3\d s) in the queue behind 1 run\.",
                         shown(at))
        assert took and int(took[1]) < 60, shown(at)


def test_a_queued_run_says_what_it_waits_for_and_when_it_starts(lth_home):
    config = ExperimentConfig(**SMALL, rounds=1)
    with no_worker(lth_home), RunStore() as store:
        first = create_run(store, config, "training")
        save_clock(store, first, replace(estimate_run(config), seconds=600.0, round_seconds=(300.0, 300.0)))
        claim(store, first)
        second = create_run(store, config, "waiting")
        save_clock(store, second, estimate_run(config))
        at = page("live_run", run=second)
        no_errors(at)
        text = shown(at)
        assert re.search(r"Waiting in the queue for \d+ s · 1 run ahead of it: starts in about 10 min · then it should "
                         r"take about \d+ s \(about 10 min left in all\)\.", text), text
        # New experiment says the same of a run submitted now, beside its estimate
        at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
        no_errors(at)
        waits = [c.value for c in at.caption if "ahead of it" in c.value]
        assert waits and re.search(r"2 runs ahead of it: starts in about 1\d min; the time above counts from then",
                                   waits[0]), waits


def test_a_run_behind_a_training_at_init_task_is_told_it_waits_for_it(lth_home, monkeypatch):
    """Was: nothing said on New experiment (a run 'starts at once') while an at-init experiment's cells trained on
    the only worker, and the run then waited for them."""
    from test_estimate import _training_task

    monkeypatch.setenv("LTH_WORKERS", "1")
    with no_worker(lth_home), RunStore() as store:
        _training_task(store, estimate_s=300.0)
        at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
        no_errors(at)
        waits = [c.value for c in at.caption if "ahead of it" in c.value]
        assert waits and re.search(r"1 background task ahead of it: starts in about 5 min; the time above counts "
                                   r"from then", waits[0]), waits
        # a run queued behind it says so on Live run
        config = ExperimentConfig(**SMALL, rounds=1)
        run_id = create_run(store, config, "behind the cells")
        save_clock(store, run_id, estimate_run(config))
        at = page("live_run", run=run_id)
        no_errors(at)
        assert re.search(r"Waiting in the queue for \d+ s · 1 background task ahead of it: starts in about 5 min · "
                         r"then it should take about \d+ s \(about 5 min left in all\)\.", shown(at)), shown(at)


def test_a_run_estimated_at_more_than_an_hour_needs_a_tick_naming_the_estimate(lth_home):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    no_errors(at)
    assert not at.button(key="run_button").disabled  # the default run: no question asked
    at.number_input(key="form:epochs").set_value(1000.0)
    at.number_input(key="form:rounds").set_value(30)
    at.number_input(key="form:trials").set_value(8)
    at.run()
    no_errors(at)
    assert at.button(key="run_button").disabled
    ticks = [c for c in at.checkbox if c.label.startswith("Yes, start a run of about")]
    assert len(ticks) == 1 and re.search(r"about \d+(\.\d)? h|about \d+ min", ticks[0].label), ticks[0].label
    assert any("estimated to take about" in w.value for w in at.warning)
    ticks[0].check()
    at.run()
    assert not at.button(key="run_button").disabled


def test_the_app_listens_on_localhost_only():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    port = 18000 + os.getpid() % 1000
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", APP, "--server.port", str(port)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines: list[str] = []
        deadline = time.time() + 60
        while time.time() < deadline and not any("URL:" in line for line in lines):
            lines.append(proc.stdout.readline())
        out = "".join(lines)
        assert f"http://127.0.0.1:{port}" in out, out
        assert "Network URL" not in out and "External URL" not in out, out
        listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
        assert listening.strip() and all(" 127.0.0.1:" in line for line in listening.strip().splitlines()), listening
    finally:
        proc.terminate()
        proc.wait(10)
