"""The Sweep page through Streamlit's AppTest, on a store holding a real tiny sweep trained by the worker."""
import json
import re
import time

import pandas as pd
import pytest

from app_helpers import page

from lth_core.cli import main
from lth_core.runs.store import RunStore
from lth_core.analysis.statistics import pct
from lth_core.analysis.sweep_summary import FEWEST, best_cell_sentence
from lth_core.runs.sweep import sweep_cells, sweep_summary
from ui.runs_list import CRITICAL_HEADER

TINY = ["--dataset", "moons", "--arch", "mlp", "--hidden", "16", "--iterations", "40", "--rounds", "2", "--trials", "2"]


@pytest.fixture
def swept(lth_home, capsys):
    assert main(["sweep", *TINY, "--grid", "prune_rate=0.2,0.5", "--grid", "reset=init,rewind:5",
                 "--name", "rate <b>×</b> reset"]) == 0
    return capsys.readouterr().out.split()[1].rstrip(":")


def test_the_sweep_page_shows_the_heatmap_the_best_cell_and_a_link_to_each_cells_run(swept):
    at = page("sweep", sweep=swept)
    assert not at.exception and not at.error
    store = RunStore()
    cells = sweep_cells(store, swept)
    sentence = [m.value for m in at.markdown if m.value.startswith("Best cell: ")]
    assert len(sentence) == 1 and any(f"(run {r})" in sentence[0] for r in cells["id"])
    (fig,) = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    heat = fig["data"][0]
    assert heat["type"] == "heatmap" and fig["layout"]["xaxis"]["title"]["text"] == "prune_rate"
    assert fig["layout"]["title"]["text"].startswith("rate &lt;b&gt;×&lt;/b&gt; reset: ")  # a name is text, not HTML
    table = at.dataframe[0].value
    assert list(table["cell"]) == list(cells["label"])
    assert list(table["run"]) == [f"live_run?run={r}" for r in cells["id"]]
    # accuracy at a chosen sparsity instead of the critical sparsity
    at.radio[0].set_value("50 %").run()
    assert not at.exception
    assert "test accuracy at 50.0 %" in at.dataframe[0].value.columns[3]


def build_on_first_cell(swept: str, values: str):
    """The sweep page's builder opened on the sweep's first cell's run, sweeping its first field (the prune rate)
    over `values` and no second field; returns the page and that run's id."""
    at = page("sweep", sweep=swept)
    at.toggle[0].set_value(True).run()
    run_id = sweep_cells(RunStore(), swept)["id"].iloc[0]
    base = next(o for o in at.selectbox(key="sweep_base").options if o.startswith(f"run {run_id}"))
    at.selectbox(key="sweep_base").set_value(base).run()
    at.text_input(key="sweep_v1").set_value(values).run()
    at.selectbox(key="sweep_f2").set_value("(none)").run()
    assert not at.exception and not at.error
    return at, run_id


def test_building_a_sweep_shows_its_size_and_time_and_launch_queues_its_cells(swept):
    at, run_id = build_on_first_cell(swept, "0.3,0.6")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Cells"] == "2" and metrics["Rough time"]
    at.text_input(key="sweep_v1").set_value("0.3,1.5").run()
    assert "prune_rate: must be in (0, 1); got 1.5" in at.error[0].value
    at.text_input(key="sweep_v1").set_value("0.3,0.6").run()
    at.button(key="sweep_launch").click().run()
    assert not at.exception
    sweeps = RunStore().sweeps()
    assert len(sweeps) == 2
    new = sweeps["sweep"].iloc[0]
    assert sorted(sweep_cells(RunStore(), new)["label"]) == ["prune_rate=0.3", "prune_rate=0.6"]


def test_the_sweep_picker_names_the_sweep_and_shows_nothing_that_goes_stale(swept):
    """It showed the id, and '4 cells, 0 finished' long after the cells had finished (the label was made once,
    outside the part of the page that refreshes itself)."""
    at = page("sweep", sweep=swept)
    row = RunStore().sweeps().iloc[0]
    label = at.selectbox(key="w:sweep").options[0]
    assert label == f"rate <b>×</b> reset · 4 cells · {row.created_at[:16].replace('T', ' ')} · {swept}"
    assert "finished" not in label
    assert at.get("progress")[0].proto.text == "4 of 4 cells finished"  # the part that refreshes says it


def test_no_cell_is_called_best_when_the_intervals_overlap(swept):
    at = page("sweep", sweep=swept)
    table = sweep_summary(RunStore(), swept)
    (sentence,) = [m.value for m in at.markdown if m.value.startswith("Best cell: ")]
    best = table.loc[table["value"].idxmin()]
    # two-trial cells of a tiny run: every interval overlaps the best one's, so none is clearly best
    assert sentence.startswith(f"Best cell: none clearly. {best['label']} (run {best['run_id']}) has the lowest mean")
    # its interval, or (the ticket never left the tolerance) the bound it lies under
    # with 2 trials a cell's interval is its two trials (statistics.spread_words), never a 95 % CI
    assert (f"at most {pct(best['value'])} (highest trial {pct(best['high'])}, 2 trials)" if best["upper_bound"] else
            f"{pct(best['value'])} (trials: {pct(best['low'])} and {pct(best['high'])})") in sentence
    assert "CI" not in sentence
    assert re.search(r"its interval overlaps (that|those) of prune_rate=", sentence)


def test_the_best_cell_is_stated_with_its_interval_and_a_bound_never_beats_an_interval():
    """On summary tables as summarize_cells makes them: a cell clear of the others is named best; a '≤ x' cell
    (the ticket never left the tolerance) may lie anywhere below x, so it overlaps any cell under x."""
    def cell(label, value, low, high, bound=False):
        return dict(run_id=label, label=label, metric=FEWEST, value=value, low=low, high=high,
                    trials=3, upper_bound=bound, rounds_done=4)
    clear = pd.DataFrame([cell("a", 0.10, 0.08, 0.12), cell("b", 0.30, 0.25, 0.35)])
    assert best_cell_sentence(clear) == (
        "Best cell: a (run a): the ticket stays within 1 point of its dense network down to 10.0 % (95 % CI "
        "8.0 %–12.0 %, 3 trials) of the weights; its interval lies below every other cell's (next best b: 30.0 % "
        "(95 % CI 25.0 %–35.0 %, 3 trials)).")
    bounded = pd.DataFrame([cell("a", 0.10, 0.08, 0.12), cell("b", 0.30, 0.25, 0.35, bound=True)])
    assert best_cell_sentence(bounded).startswith("Best cell: none clearly. a (run a) has the lowest mean")
    assert "b: at most 30.0 % (95 % CI up to 35.0 %, 3 trials)" in best_cell_sentence(bounded)


def test_pruning_rounds_do_not_count_round_0_and_nothing_to_run_offers_no_buttons(swept):
    at = page("sweep", sweep=swept)
    table = at.dataframe[0].value
    assert list(table.columns[:3]) == ["cell", "status", "pruning rounds"]
    assert set(table["pruning rounds"]) == {"2 of 2"}  # 2 pruning rounds after the dense round 0, as on Live run
    assert table.columns[3] == CRITICAL_HEADER  # named as in the runs list
    assert not [b for b in at.button if b.key in ("sweep_cancel", "sweep_resume")]
    assert "Every cell has finished: nothing is left to run." in [c.value for c in at.caption]


def test_cancel_shows_while_cells_are_queued_and_resume_once_they_stopped(lth_home):
    from lth_core import jobs
    from lth_core.engine.config import ExperimentConfig
    from lth_core.runs.sweep import cancel_sweep, parse_grid, plan_cells
    from lth_core.runs.sweep import add_sweep

    store = RunStore()
    base = ExperimentConfig(dataset="moons", arch="mlp", hidden=(16,), iterations=40, rounds=2, trials=1)
    cells = plan_cells(base, [parse_grid("prune_rate=0.2,0.5")])
    ray = add_sweep(store, cells, executor="ray", name="queued for a Ray driver")  # the local worker leaves these
    at = page("sweep", sweep=ray)
    assert at.button(key="sweep_cancel").label == "Cancel the 2 queued or running cells"
    at.button(key="sweep_cancel").click().run()
    assert set(sweep_cells(store, ray)["status"]) == {"cancelled"}
    at.run()
    assert not [b for b in at.button if b.key in ("sweep_cancel", "sweep_resume")]  # a Ray sweep resumes from the CLI
    assert any(f"python -m lth_core sweep resume {ray}" in c.value for c in at.caption)

    local = add_sweep(store, cells, executor="local", name="stopped before it started")
    cancel_sweep(store, local)
    at = page("sweep", sweep=local)
    assert not [b for b in at.button if b.key == "sweep_cancel"]
    at.button(key="sweep_resume").click().run()
    try:
        deadline = time.time() + 240
        while set(sweep_cells(store, local)["status"]) != {"finished"}:
            assert time.time() < deadline, sweep_cells(store, local)[["status", "error"]]
            time.sleep(0.5)
    finally:
        deadline = time.time() + 15  # the worker's scheduler leaves by itself once the queue is empty
        while jobs.scheduler_pid() and time.time() < deadline:
            time.sleep(0.3)


def test_the_sweep_is_timed_as_new_experiment_times_a_run(swept):
    """A one-cell sweep is estimated as New experiment estimates that run (lth_core.runs.estimate), with the
    worker's cold start when no worker runs; it used the warm estimate only."""
    from lth_core import jobs
    from lth_core.runs.estimate import format_seconds
    from ui.form import _estimate, worker_running

    deadline = time.time() + 60  # the worker that trained the sweep leaves by itself once its queue is empty
    while jobs.scheduler_pid() and time.time() < deadline:
        time.sleep(0.3)
    at, run_id = build_on_first_cell(swept, "0.3")
    config = RunStore().get_run(run_id).config.replace(prune_rate=0.3, trials=2)
    single = _estimate(config.to_json(), worker_running())[0]  # what New experiment shows for this run
    assert not worker_running() and single.seconds > _estimate(config.to_json(), True)[0].seconds
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Rough time"] == format_seconds(single.seconds / jobs.workers())
    assert metrics["Trainings"] == str(single.trainings)


def test_the_sweep_heatmap_writes_what_the_table_does_says_which_way_is_better_and_why_a_cell_is_blank(swept):
    """The heatmap keeps the table's '≤' of an upper bound, its colour bar says which way is better, a cell
    that never got down to the asked size says so, the page says what a cell and its interval are."""
    at = page("sweep", sweep=swept)
    (fig,) = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    heat = fig["data"][0]
    table = at.dataframe[0].value
    written = {(x, y): heat["text"][i][j] for i, y in enumerate(heat["y"]) for j, x in enumerate(heat["x"])}
    cells = sweep_cells(RunStore(), swept)
    for label, shown in zip(table["cell"], table[table.columns[3]]):
        rate, reset = (part.split("=", 1)[1] for part in label.split())
        assert written[(rate, reset)] == shown  # '≤ 33.9 %' in both, where the value is an upper bound
    assert "lower is better" in heat["colorbar"]["title"]["text"]
    assert json.loads(at.dataframe[0].proto.columns)["over trials"]["width"] == "medium"  # 'trials: 26.3 % and 43.7 %'
    note = " ".join(e.children[0].value for e in at.expander if e.label == "What am I looking at?")
    assert "measured round" in note and "2 trials, the two trials themselves" in note and "geometric mean" not in note
    assert "the same round the runs list shows and Compare's sentence names" in " ".join(note.split())
    # accuracy at 20 %: no cell got there (0.2 a round: 64 %; 0.5: about 25 %), so it is not offered (below)
    half = page("sweep", sweep=swept, at="50 %")  # prune rate 0.5 gets there in two rounds, 0.2 does not
    (fig,) = [json.loads(c.proto.spec) for c in half.get("plotly_chart")]
    heat = fig["data"][0]
    assert "higher is better" in heat["colorbar"]["title"]["text"]
    blank = [(x, y) for i, y in enumerate(heat["y"]) for j, x in enumerate(heat["x"]) if heat["z"][i][j] is None]
    assert sorted(blank) == [("0.2", "init"), ("0.2", "rewind:5")], heat["z"]
    assert all(heat["customdata"][heat["y"].index(y)][heat["x"].index(x)] == "not pruned to 50.0 %" for x, y in blank)
    assert all(heat["text"][heat["y"].index(y)][heat["x"].index(x)] == "not pruned to 50.0 %" for x, y in blank)
    assert len(cells) == 4


def test_after_launch_the_page_shows_the_new_sweep_and_its_url_names_it(lth_home):
    """It kept showing the sweep picked before (the picker's own state won over the new sweep): launching
    must show the sweep just launched, its cells filling in, and put ?sweep=<new id> in the URL."""
    from lth_core import jobs
    from lth_core.engine.config import ExperimentConfig
    from lth_core.runs.sweep import add_sweep, parse_grid, plan_cells

    store = RunStore()
    base = ExperimentConfig(dataset="moons", arch="mlp", hidden=(16,), iterations=40, rounds=2, trials=1)
    old = add_sweep(store, plan_cells(base, [parse_grid("prune_rate=0.2,0.5")]), executor="ray", name="the old one")
    at = page("sweep", sweep=old)
    assert at.selectbox(key="w:sweep").value == old
    at.toggle(key="sweep_build").set_value(True).run()
    run_id = sweep_cells(store, old)["id"].iloc[0]
    at.selectbox(key="sweep_base").set_value(next(o for o in at.selectbox(key="sweep_base").options
                                                  if o.startswith(f"run {run_id}"))).run()
    at.text_input(key="sweep_v1").set_value("0.3,0.6").run()
    at.selectbox(key="sweep_f2").set_value("(none)").run()
    at.text_input(key="sweep_name").set_value("the new one").run()
    at.button(key="sweep_launch").click().run()
    try:
        assert not at.exception and not at.error
        new = next(s for s in RunStore().sweeps()["sweep"] if s != old)
        assert at.query_params["sweep"] == new
        assert at.selectbox(key="w:sweep").value == new
        assert list(at.dataframe[0].value["cell"]) == ["prune_rate=0.3", "prune_rate=0.6"]
        assert at.get("progress")[0].proto.text.startswith("0 of 2 cells finished, 2 queued or running")
        deadline = time.time() + 240
        while set(sweep_cells(store, new)["status"]) != {"finished"}:
            assert time.time() < deadline, sweep_cells(store, new)[["status", "error"]]
            time.sleep(0.5)
        at.run()
        assert at.selectbox(key="w:sweep").value == new and at.query_params["sweep"] == new
        assert at.get("progress")[0].proto.text == "2 of 2 cells finished"
    finally:
        deadline = time.time() + 15  # the worker's scheduler leaves by itself once the queue is empty
        while jobs.scheduler_pid() and time.time() < deadline:
            time.sleep(0.3)


def test_accuracy_is_offered_only_at_the_shares_some_cell_reached_and_the_others_are_named(swept):
    """It offered 'test accuracy at 1 %' and '2 %' when no cell went below 41 %: every cell blank, an empty
    heatmap. Now only the shares some cell reached are offered; a caption names the others and why."""
    at = page("sweep", sweep=swept)
    lowest = min(RunStore().list_runs(sweep=swept)["weights_remaining"])  # 2 rounds at 0.5 a round: about 25 %
    assert 0.2 < lowest < 0.5
    assert at.radio[0].options == ["fewest weights still matching dense", "test accuracy at 50 % of the weights"]
    assert (f"Test accuracy at 1 %, 2 %, 5 %, 10 % and 20 % of the weights is not offered: no cell got below "
            f"{pct(lowest)} of the weights.") in [c.value for c in at.caption]
    linked = page("sweep", sweep=swept, at="20 %")  # an old link to a share no cell reached
    assert not linked.exception
    assert any("20 %" in w.value and "not available here" in w.value for w in linked.warning)
    assert linked.radio[0].value == "critical sparsity" and linked.get("plotly_chart")


def test_offered_shares_name_what_is_left_out_and_why():
    from lth_core.analysis.sweep_summary import offered_shares

    assert offered_shares([0.412, 0.64]) == ([0.5], "Test accuracy at 1 %, 2 %, 5 %, 10 % and 20 % of the weights "
                                                    "is not offered: no cell got below 41.2 % of the weights.")
    assert offered_shares([0.3, None], live=True)[1].endswith("no cell has got below 30.0 % of the weights yet.")
    assert offered_shares([1.0, float("nan")]) == (
        [], "Test accuracy at a share of the weights is offered once a cell has a pruned round.")
    assert offered_shares([0.009]) == ([0.01, 0.02, 0.05, 0.1, 0.2, 0.5], "")
    assert offered_shares([0.1 + 1e-12])[0] == [0.1, 0.2, 0.5]  # a share met up to rounding is reached
