"""The guided tour (issue 12): every step draws its figure, its numbers and its question from the shipped
example run; ?step= opens a step and a bad one is named; ?run= shows another run; with no run to show the
tour trains a small real one and fills in from it."""
import dataclasses
import json
import os
import time
from pathlib import Path
from urllib.parse import parse_qs

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from lth_core import jobs
from lth_core.example import EXAMPLE_DIR, import_example
from lth_core.runs.store import RunStore
from ui import tour
from test_app_pages import values
from lth_core.analysis.summary import pct

APP = str(Path(__file__).resolve().parent.parent / "app.py")
SHIPPED = pd.read_csv(EXAMPLE_DIR / "rounds.csv")
# what each step's figure is titled with the example run (the builders' own titles)
FIGURES = {1: ["The 266,200 starting weights: random numbers near zero"], 2: ["Round 0: the dense network learns"],
           3: ["Weights remaining in each layer after round 1"], 4: ["Test accuracy as the network is pruned"],
           5: ["Test accuracy as the network is pruned"], 6: ["Test accuracy as the network is pruned"],
           7: ["Connections each input pixel keeps into fc1 (of 300)",
               "Connections per pixel into fc1, by distance", "What 16 units still see (dark = kept)"],
           8: ["Accuracy compared with the dense network, round by round"]}


def mean(variant: str, rnd: int = 12, column: str = "test_accuracy") -> float:
    return SHIPPED[(SHIPPED["round"] == rnd) & (SHIPPED.variant == variant)][column].mean()


@pytest.fixture(scope="module")
def example_home(tmp_path_factory, dataset_cache):
    home = tmp_path_factory.mktemp("tour-home")
    os.symlink(dataset_cache, home / "cache")
    with RunStore(home / "runs.sqlite") as store:
        run_id = import_example(store)
    return home, run_id


@pytest.fixture
def example(example_home, monkeypatch) -> str:
    monkeypatch.setenv("LTH_HOME", str(example_home[0]))
    return example_home[1]


def tour_page(**params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    at.switch_page("app_pages/tour.py")
    return at.run()


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def titles(at: AppTest) -> list[str]:
    return [json.loads(f.proto.spec)["layout"]["title"]["text"] for f in at.get("plotly_chart")]


def finding(at: AppTest) -> str:
    (line,) = [m.value for m in at.markdown if m.value.startswith("**In this run:**")]
    return line.replace("\xa0", " ")  # round_sentence joins numbers and units with a no-break space


def links(at: AppTest) -> list[tuple[str, dict]]:
    return [(link.proto.page, parse_qs(link.proto.query_string)) for link in at.get("page_link")
            if link.proto.label.startswith("Try it")]


@pytest.mark.parametrize("number", range(1, len(tour.STEPS) + 1))
def test_every_step_shows_its_figure_numbers_and_question_from_the_example(example, number):
    at = tour_page(step=str(number))
    no_errors(at)
    step = tour.STEPS[number - 1]
    assert at.subheader[0].value == f"Step {number} of 8: {step.title}"
    assert at.radio(key="w:step").value == number and at.query_params["step"] == str(number)
    assert titles(at) == FIGURES[number]
    assert any(i.value == f"**Think about it:** {step.question}" for i in at.info)
    assert not at.warning
    tried = links(at)
    # every link opens its page on the example ("" is New experiment, the default page, where runs are made)
    assert tried and all(q.get("run") == [example] for page, q in tried if page) and {p for p, _ in tried} - {""}
    assert any(i.value.startswith("**Example run**") for i in at.info)  # the figures say where they came from
    line = finding(at)
    if number == 2:
        assert f"reaches {pct(mean('ticket', 0))}" in line
        # the early-stopping iteration the text names is marked on the curve
        (shape,) = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["shapes"]
        assert shape["x0"] == pytest.approx(mean("ticket", 0, "early_stop_iteration"))
    if number in (4, 5, 6):
        assert pct(mean("ticket")) in line and pct(mean("ticket", 0)) in line
    if number == 5:  # the random mask comes in step 6
        assert pct(mean("reinit")) in line and "random" not in line
    if number == 6:
        assert pct(mean("reinit")) in line and pct(mean("random")) in line
    if number == 7:  # real masks: the ticket keeps more connections near the centre than far out, and fewer
        # far out than a random mask does; the second figure draws exactly that, a line per mask
        ticket, random = line.split("the random mask:")
        near = lambda text: float(text.split(" within 6 pixels")[0].rsplit(" ", 1)[1])  # noqa: E731
        far = lambda text: float(text.split(" at 13 pixels or more")[0].rsplit(" ", 1)[1])  # noqa: E731
        assert near(ticket) > far(ticket) + 3 and far(ticket) < far(random)
        rings = json.loads(at.get("plotly_chart")[1].proto.spec)["data"]
        assert [t["name"] for t in rings] == ["winning ticket", "random mask"]
        ticket_line, random_line = (np.asarray(values(t["y"]), float) for t in rings)
        assert ticket_line[:3].mean() > ticket_line[-3:].mean() + 3  # it falls from the centre outwards
        assert np.ptp(random_line) < 2  # a random mask is level


def test_next_and_previous_move_through_the_steps_and_the_url_follows(example):
    at = tour_page(step="5")
    at.button[1].click().run()  # "Next: …"
    assert at.subheader[0].value.startswith("Step 6 of 8") and at.query_params["step"] == "6"
    at.button[0].click().run()  # "← …"
    assert at.subheader[0].value.startswith("Step 5 of 8") and at.query_params["step"] == "5"
    no_errors(at)


@pytest.mark.parametrize("bad", ["9", "0", "two"])
def test_an_unknown_step_in_the_link_is_named_with_the_allowed_steps(example, bad):
    at = tour_page(step=bad)
    no_errors(at)
    (warning,) = [w.value for w in at.warning]
    assert f"**step** `{bad}`" in warning and "allowed: 1–8" in warning and "Showing **1 · A random network**" in warning
    assert at.subheader[0].value == "Step 1 of 8: A random network"


def test_a_step_needing_a_round_still_training_says_it_fills_in(example):
    run = tour.TourRun.read(example)
    early = tour.TourRun(dataclasses.replace(run.info, status="running"), run.rounds[run.rounds["round"] == 0])
    assert "still training" in tour.missing(tour.STEPS[2], early)
    assert tour.missing(tour.STEPS[1], early) is None
    without = tour.TourRun(dataclasses.replace(run.info, variants=["ticket"]), run.rounds)
    assert "no reinit" in tour.missing(tour.STEPS[4], without)


def test_with_no_run_to_show_the_tour_trains_a_small_real_one_and_fills_in(lth_home):
    at = tour_page()  # the first visit adds the example; delete it, as a user may
    store = RunStore()
    (example,) = store.list_runs().id
    store.delete(example)
    try:
        at = tour_page(step="4")
        no_errors(at)
        assert any("the tour is training a small one" in i.value for i in at.info)
        runs = store.list_runs()
        assert list(runs.name) == [tour.SMALL_RUN_NAME] and runs.status.iloc[0] in ("queued", "running")
        run_id = runs.id.iloc[0]
        config = store.get_run(run_id).config
        assert (config.dataset, config.arch, config.rounds, config.controls) == ("mnist-5k", "lenet-300-100", 5,
                                                                               ("reinit", "random"))
        tour_page()  # opened again while it trains: no second run
        assert len(store.list_runs()) == 1

        deadline = time.time() + 240
        while store.get_run(run_id).rounds_done == 0:
            assert time.time() < deadline and store.get_run(run_id).active, store.get_run(run_id).error
            time.sleep(0.3)
        at = tour_page(step="2")  # round 0 is in: the dense network's step shows it, with the progress
        no_errors(at)
        assert titles(at) == FIGURES[2] and at.query_params["run"] == run_id
        while store.get_run(run_id).active:
            assert time.time() < deadline
            time.sleep(0.5)
        assert store.get_run(run_id).status == "finished", store.get_run(run_id).error
        for number in range(1, 9):
            at = tour_page(step=str(number))
            no_errors(at)
            assert len(titles(at)) == len(FIGURES[number])

        example = import_example(store)  # the example back: the tour opens on it; ?run= shows the small run
        assert tour_page().query_params["run"] == example
        at = tour_page(run=run_id, step="4")
        rounds = store.rounds(run_id)
        ticket = rounds[(rounds["round"] == 5) & (rounds.variant == "ticket")].test_accuracy.mean()
        assert at.query_params["run"] == run_id and f"(round 5) the ticket reaches **{pct(ticket)}**" in finding(at)
    finally:
        store.close()
        deadline = time.time() + 15  # the scheduler leaves by itself once the queue is empty
        while jobs.scheduler_pid() and time.time() < deadline:
            time.sleep(0.3)
        if (pid := jobs.scheduler_pid()):
            os.kill(pid, 15)


def test_the_tour_survives_an_unreadable_run_in_the_store(lth_home):
    from lth_core import ExperimentConfig
    from lth_core.runs.recorder import create_run

    tour_page()  # the first visit adds the example
    store = RunStore()
    bad = create_run(store, ExperimentConfig(dataset="digits", arch="mlp", hidden=(16,), rounds=1, epochs=1))
    with store.transaction() as db:
        db.execute("UPDATE runs SET status = 'failed', rounds_total = 2.5, config = json_set(config, '$.rounds', 2.5) "
                   "WHERE id = ?", (bad,))
    at = tour_page(step="6")
    no_errors(at)
    assert titles(at) == FIGURES[6] and at.query_params["run"] != bad
    store.close()


def further_links(at: AppTest) -> list[tuple[str, dict, str]]:
    return [(link.proto.page, parse_qs(link.proto.query_string), link.proto.label) for link in at.get("page_link")
            if link.proto.label.startswith("Go further")]


def test_where_it_breaks_says_so_when_the_runs_ticket_does_not_break_and_links_further(example):
    # the example's ticket stays within 1 point down to 7.0 %: step 8 showed it as if it broke
    at = tour_page(step="8")
    no_errors(at)
    assert finding(at).startswith("**In this run:** **This run's ticket does not break in its range:** down to 7.0 % "
                                  "of the weights, its sparsest round, it stays within 1 point of the dense network.")
    assert ("**Look at the bars against the grey band** (within 1 point of the dense network): the **winning "
            "ticket** bars stay above its lower edge in every round; the **reinit (same mask, new init)** bars drop "
            "below it from round ") in finding(at)
    ((page, query, label),) = further_links(at)
    assert query == {"preset": ["prune-further"]} and "Prune until the ticket breaks" in label
    # the link fills the form with that preset: 20 rounds, down to about 1.2 % of the weights
    new = AppTest.from_file(APP, default_timeout=120)
    new.query_params["preset"] = "prune-further"
    new.run()
    assert not new.exception and new.number_input(key="form:rounds").value == 20
    assert any("Prune until the ticket breaks" in i.value for i in new.info)
    # "Try it" on rewinding opens the form filled with the rewinding preset, not the default reset to init
    ((query, label),) = [(parse_qs(link.proto.query_string), link.proto.label) for link in at.get("page_link")
                         if link.proto.label.startswith("Try it: New experiment")]
    assert query == {"preset": ["rewind"]} and "rewind:20" in label, (query, label)
    rewind = AppTest.from_file(APP, default_timeout=120)
    rewind.query_params["preset"] = "rewind"
    rewind.run()
    assert not rewind.exception and rewind.radio(key="form:reset").value == "rewind", [r.key for r in rewind.radio]
    assert rewind.number_input(key="form:rewind_k").value == 20


def test_where_it_breaks_links_only_a_run_that_shows_the_same_network_breaking(lth_home):
    from lth_core.cli import main as cli_main
    with RunStore() as store:
        example = import_example(store)
    # a real run whose ticket is far below dense from its only pruned round: it "breaks", but shows nothing
    # of where a working ticket breaks; step 8 linked it before (any breaking run of the store)
    assert cli_main(["run", "--store", "--dataset", "digits", "--arch", "mlp", "--hidden", "64", "--schedule",
                     "one-shot", "--rounds", "12", "--epochs", "3", "--trials", "2", "--controls", "reinit",
                     "--name", "one shot"]) == 0
    with RunStore() as store:
        one_shot = next(i for i in store.list_runs().id if i != example)
    at = tour_page(step="8", run=example)
    no_errors(at)
    ((page, query, label),) = further_links(at)
    assert query == {"preset": ["prune-further"]} and "Prune until the ticket breaks" in label
    assert any("open this step on that run and look at the last rounds' bars" in c.value for c in at.caption)
    # the example's own network pruned further, fast (80 iterations a round, 60 % a round): it holds to 40 %,
    # then falls below the band; that run is the one to see
    assert cli_main(["run", "--store", "--dataset", "mnist-5k", "--arch", "lenet-300-100", "--prune-rate", "0.6",
                     "--rounds", "6", "--iterations", "80", "--controls", "", "--trials", "1",
                     "--name", "LeNet to 0.5 %"]) == 0
    with RunStore() as store:
        further = next(i for i in store.list_runs().id if i not in (example, one_shot))
        rounds = store.rounds(further)
    first = tour._first_below(rounds, "ticket")
    at = tour_page(step="8", run=example)
    ((page, query, label),) = further_links(at)
    assert query == {"run": [further], "step": ["8"]} and label == "Go further: step 8 on the run “LeNet to 0.5 %”"
    assert (f"The same lenet-300-100 on mnist-5k, pruned to 0.5 %: its ticket's bars drop below the grey band from "
            f"round {int(first['round'])} ({pct(first['weights_remaining'])} of the weights).") in \
        [c.value for c in at.caption]
    at = tour_page(step="8", run=further)  # a run that breaks shows its own point, and says where to look
    assert not further_links(at)
    assert (f"the **winning ticket** bars drop below it from round {int(first['round'])} "
            f"({pct(first['weights_remaining'])} of the weights). Round {int(first['round'])} is where this run's "
            "ticket breaks.") in finding(at)
    assert not further_links(tour_page(step="8", run=one_shot))


def test_a_ticket_whose_mean_holds_does_not_break_though_one_trial_falls():
    # step 8's bars are the mean over trials, and so is the one rule of critical_sparsity: one trial falling 2 points
    # while the mean stays within 1 point is no break. The tour counted any trial, so it named such a run as one that
    # "shows breaking" and then failed to say from which round its bars drop (there is none)
    from types import SimpleNamespace

    from test_statistics import table

    from lth_core.engine.config import ExperimentConfig

    weights = [1.0, 0.6, 0.36, 0.22, 0.13]  # 40 % a round
    rounds = table({"ticket": [[0.95, 0.95, 0.95, 0.93, 0.93], [0.95, 0.95, 0.95, 0.95, 0.95]]}, weights)
    assert tour._first_below(rounds, "ticket") is None  # the bars stay within the band down to 13 %
    assert tour._breaks(rounds) is False
    like = SimpleNamespace(config=ExperimentConfig(dataset="digits", arch="mlp"))
    assert not tour.shows_breaking(like, rounds, like)
    # a mean that falls below does break, from the round the bars show
    fell = table({"ticket": [[0.95, 0.95, 0.95, 0.93, 0.93], [0.95, 0.95, 0.95, 0.935, 0.93]]}, weights)
    assert tour._breaks(fell) is True and int(tour._first_below(fell, "ticket")["round"]) == 3
    assert tour.shows_breaking(like, fell, like)
