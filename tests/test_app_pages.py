"""Every page through Streamlit's AppTest, on a store holding real tiny runs (see conftest.app_store)."""
import base64
import json
import re
import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app_helpers import APP, TIMEOUT, page

from lth_core.runs.store import RunStore
from lth_core.analysis import summary



@pytest.fixture
def runs(app_store, monkeypatch):
    monkeypatch.setenv("LTH_HOME", str(app_store["home"]))
    return app_store




def figures(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def values(v) -> list:
    """A trace's x / y / z as a list: plotly sends numpy arrays as base64 'bdata'."""
    if isinstance(v, dict) and "bdata" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        shape = [int(n) for n in str(v.get("shape", len(a))).split(",")]
        return a.reshape(shape).tolist()
    return list(v)


def titles(at: AppTest) -> list[str]:
    return [f["layout"]["title"]["text"] for f in figures(at)]


def text(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_new_experiment_estimates_the_default_run(tmp_path):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    no_errors(at)
    metrics = {m.label: m.value for m in at.metric}
    # the form opens on the paper's LeNet experiment: 2 trials × (1 dense + 12 rounds × 3 variants)
    assert metrics["Trainings"] == "74" and metrics["Pruning rounds"] == "12"
    assert metrics["Smallest network"] == "7.0 %"
    assert any("74 trainings of" in c.value and "about" in c.value for c in at.caption)
    assert any(f"about {metrics['Rough time']} (" in c.value for c in at.caption)  # the metric is the caption's time
    assert not at.button(key="run_button").disabled
    assert at.selectbox(key="form:dataset").value == "mnist-5k"
    assert at.selectbox(key="form:arch").value == "lenet-300-100"


def test_the_runs_table_lists_a_run_whose_length_is_not_known_yet(lth_home):
    from lth_core import ExperimentConfig, jobs
    run_id = jobs.submit(ExperimentConfig(dataset="moons", arch="mlp", hidden=(8,), target_remaining=0.5, epochs=0.5),
                         name="until half is left")
    try:
        at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
        no_errors(at)
        table = at.dataframe[0].value  # indexed by run id
        assert table.loc[run_id, "name"] == "until half is left"
        # pruning rounds done of those planned (round 0 not counted) beside the status; none until the worker plans it
        assert re.fullmatch(r"(queued|running)( [0-4]/5)?", table.loc[run_id, "status"]), table.loc[run_id, "status"]
    finally:
        jobs.cancel(run_id)


def test_the_runs_table_shows_what_tells_runs_apart(runs):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    no_errors(at)
    table = at.dataframe[0].value
    # every column, header and cell fits a 1280-pixel window (tests/test_runs_list.py): the checks' symbol and
    # unfinished rounds sit beside the status, the date and the rest in the row's details
    assert list(table.columns) == ["name", "status", "data", "pruning", "ticket", "critical"]
    assert list(at.dataframe[0].proto.column_order) == list(table.columns)
    assert json.loads(at.dataframe[0].proto.columns)["name"]["pinned"]  # kept in view when 1024 px scroll sideways
    done = table.loc[runs["done"]]
    assert (done["data"], done["pruning"]) == ("digits · mlp", "20 %, layer, init")
    assert done["status"] in ("finished ✓", "finished ⚠")  # the symbol; Live run and Compare give the line
    # one ticked row gives what the columns leave out: its rounds, checks and date
    at.session_state["runs_table"] = {"selection": {"rows": [list(table.index).index(runs["done"])], "columns": []}}
    at.run()
    line = next(m.value for m in at.markdown if m.value.endswith("Open it on:"))
    assert "digits on mlp · 2 of 2 pruning rounds · checks: " in line, line
    assert re.search(r"created \d{4}-\d\d-\d\d \d\d:\d\d UTC", line), line
    # the critical sparsity says what it is: weights remaining where the ticket stops matching dense
    header = json.loads(at.dataframe[0].proto.columns)["critical"]
    assert header["label"] == "matches dense to" and "weights remaining where the ticket stops" in header["help"]


def test_an_invalid_combination_is_blocked_with_a_message_naming_the_field():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.selectbox(key="form:dataset").set_value("wine")
    at.selectbox(key="form:arch").set_value("conv-2").run()
    (error,) = at.error
    assert "**Architecture** (`arch`)" in error.value and "tabular" in error.value
    assert at.button(key="run_button").disabled
    at.selectbox(key="form:arch").set_value("mlp").run()
    at.radio(key="form:reset").set_value("rewind").run()
    at.number_input(key="form:rewind_k").set_value(100_000).run()
    (error,) = at.error
    assert "**After pruning** (`reset`)" in error.value and "at most" in error.value
    assert at.button(key="run_button").disabled


def test_an_out_of_range_number_is_blocked_not_silently_replaced():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    for key, value in (("trials", 2), ("seed", 0), ("batch_size", 60), ("rounds", 12)):  # whole numbers stay whole
        assert type(at.number_input(key=f"form:{key}").value) is int and at.number_input(key=f"form:{key}").value == value
    at.number_input(key="form:epochs").set_value(-2.0).run()
    (error,) = at.error
    assert "(`epochs`)" in error.value and "(0, 1000]" in error.value
    assert at.button(key="run_button").disabled
    at.number_input(key="form:epochs").set_value(1.0).run()
    at.number_input(key="form:trials").set_value(50).run()
    (error,) = at.error
    assert "(`trials`)" in error.value and "1 to 20" in error.value
    assert at.button(key="run_button").disabled


def test_run_submits_a_background_job_and_opens_the_live_view(lth_home):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.selectbox(key="form:dataset").set_value("moons")
    at.selectbox(key="form:arch").set_value("mlp").run()
    at.text_input(key="form:hidden").set_value("8")
    at.number_input(key="form:epochs").set_value(0.5)
    at.number_input(key="form:rounds").set_value(1)
    at.checkbox(key="form:control_random").uncheck()
    at.text_input(key="form:name").set_value("from the form").run()
    no_errors(at)
    at.button(key="run_button").click().run()
    run_id = at.query_params["run"]
    store = RunStore()
    info = store.get_run(run_id)
    assert info.name == "from the form" and info.config.dataset == "moons" and info.variants == ["ticket", "reinit"]
    assert at.title[0].value == "Live run"
    deadline = time.time() + 120
    while store.get_run(run_id).active:
        assert time.time() < deadline
        time.sleep(0.5)
    at = page("live_run", run=run_id)
    assert "**Status: finished**" in text(at)
    store.close()


def test_cancel_stops_a_training_run_and_keeps_its_finished_rounds(lth_home):
    from lth_core import ExperimentConfig, jobs
    run_id = jobs.submit(ExperimentConfig(dataset="digits", arch="mlp", hidden=(64,), rounds=40, epochs=2,
                                          batch_size=16, controls=("reinit", "random")), name="long one")
    store = RunStore()
    deadline = time.time() + 120
    while store.get_run(run_id).rounds_done < 1:  # wait until round 0 is in the store
        assert time.time() < deadline and store.get_run(run_id).active
        time.sleep(0.3)
    at = page("live_run", run=run_id)
    assert "**Status: running**" in text(at)
    (cancel,) = [b for b in at.button if b.label == "Cancel the run"]
    cancel.click().run()
    while store.get_run(run_id).active:
        assert time.time() < deadline
        time.sleep(0.3)
    at = page("live_run", run=run_id)
    info = store.get_run(run_id)
    assert info.status == "cancelled" and info.rounds_done >= 1
    assert "The run was cancelled" in at.warning[0].value and f"kept (dense network and {info.rounds_done - 1} of 40 pruned rounds done)" in at.warning[0].value
    assert [b.label for b in at.button if b.label in ("Resume", "Cancel the run")] == ["Resume"]
    assert titles(at)[1] == "Test accuracy of every finished round"
    store.close()


def test_live_run_shows_a_finished_run_from_the_store(runs):
    done = runs["done"]
    at = page("live_run", run=done)
    no_errors(at)
    assert "**Status: finished** · run" in text(at) and "tiny digits run" in [h.value for h in at.subheader]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Round"] == "2 of 2" and metrics["Iteration"].endswith(f"of {RunStore().get_run(done).iterations}")
    rounds = RunStore().rounds(done)
    assert metrics["Ticket accuracy"] == summary.pct(rounds[(rounds["round"] == 2) & (rounds.variant == "ticket")].test_accuracy.mean())
    assert titles(at) == ["Learning curves of round 2", "Test accuracy of every finished round"]
    assert summary.round_sentence(rounds, 2) in text(at)
    assert not [b for b in at.button if "Cancel" in b.label]


def test_a_failed_run_shows_its_one_line_reason(runs):
    failed = runs["failed"]
    at = page("live_run", run=failed)
    assert not at.exception
    (error,) = at.error
    assert error.value.startswith("The run failed: ") and "tabular" in error.value
    assert "\n" not in error.value and "Traceback" not in error.value


def test_results_shows_the_store_and_overlays_runs(runs):
    done = runs["done"]
    at = page("results", run=done)
    no_errors(at)
    rounds = RunStore().rounds(done)
    assert summary.round_sentence(rounds, 2) in text(at)
    assert titles(at)[:3] == ["Test accuracy as the network is pruned", "Test accuracy at the early-stopping iteration",
                              "When training peaked (early stopping)"]
    first = figures(at)[0]
    ticket = next(t for t in first["data"] if t["name"] == "winning ticket")
    assert values(ticket["x"]) == pytest.approx(list(rounds[rounds.variant == "ticket"].groupby("round").weights_remaining.mean() * 100))
    assert first["layout"]["xaxis"]["type"] == "log" and first["layout"]["xaxis"]["autorange"] == "reversed"
    assert len(at.dataframe[0].value) == len(rounds)
    assert at.get("download_button")
    at.multiselect(key="w:rounds:multi").set_value([0, 2]).run()
    assert at.query_params["rounds"] == ["0", "2"]
    legend = [t["name"] for t in figures(at)[3]["data"] if t.get("showlegend") is not False]
    assert legend[0] == "round 0 · dense (100 %)" and legend[1].startswith("round 2 · ")
    # two runs overlaid: a colour and a legend column (group) each, the variants as line styles
    both = page("results", run=[done, runs["other"]])
    no_errors(both)
    assert both.multiselect(key="w:run:multi").value == [done, runs["other"]]
    lines = {(t.get("legendgroup"), t["name"]): t for t in figures(both)[0]["data"]}
    a, b = lines[(f"tiny digits run ({done})", "ticket")], lines[(f"seed 1 ({runs['other']})", "ticket")]
    assert a["line"]["color"] != b["line"]["color"]
    assert lines[(f"tiny digits run ({done})", "random mask")]["line"]["dash"] != a["line"].get("dash", "solid")
    # tickets only: the filter is in the URL and leaves the controls out of every chart
    both.multiselect(key="w:variants:multi").set_value(["ticket"]).run()
    assert both.query_params["variants"] == ["ticket"] or both.query_params["variants"] == "ticket"
    shown = {t["name"] for f in figures(both)[:3] for t in f["data"] if t.get("showlegend") is not False}
    assert "ticket" in shown and not shown & {"reinit", "random mask"}  # and the dense level(s)


def test_masks_for_a_chosen_round_with_the_round_in_the_url(runs):
    done = runs["done"]
    at = page("masks", run=done)
    no_errors(at)
    store = RunStore()
    masks = store.masks(done, 0, 2, "ticket")
    kept, total = sum(int(m.sum()) for m in masks.values()), sum(m.size for m in masks.values())
    assert f"{summary.pct(kept / total)} of the weights remain** ({kept:,} of {total:,})" in text(at)
    names = titles(at)
    assert names[0].startswith("fc1: 32×64 weights") and names[1].startswith("output: 10×32 weights")
    assert "Connections each input pixel keeps into fc1 (of 32)" in names  # digits are 8×8 images
    heat = figures(at)[names.index("Connections each input pixel keeps into fc1 (of 32)")]
    assert np.array(values(heat["data"][0]["z"])).shape == (8, 8)
    assert any(n.startswith("How much of each round's mask") for n in names)
    assert "Initial magnitude of the weights kept and pruned" in names
    assert at.query_params["round"] == "2" and at.query_params["variant"] == "ticket"
    at.select_slider(key="w:round").set_value(0).run()
    assert at.query_params["round"] == "0" and at.selectbox(key="w:variant").options == ["winning ticket"]
    assert "100.0 % of the weights remain" in text(at)
    back = page("masks", run=done, round="1", variant="random", trial="1")  # a link reproduces the view
    assert "Round 1, random mask, trial 1" in text(back)


def test_compare_summarises_ticket_against_controls(runs):
    done = runs["done"]
    at = page("compare", run=done, round="1")
    no_errors(at)
    rounds = RunStore().rounds(done)
    assert f"#### {summary.round_sentence(rounds, 1)}" in [m.value for m in at.markdown]
    metrics = {m.label: m.value for m in at.metric}
    mean = rounds[rounds["round"] == 1].groupby("variant").test_accuracy.mean()
    assert metrics["winning ticket"] == summary.pct(mean["ticket"]) and metrics["random mask"] == summary.pct(mean["random"])
    assert titles(at) == ["Ticket minus each control, paired within each trial",
                          "Accuracy compared with the dense network, round by round", "Learning curves in round 1"]
    notes = [e for e in at.expander if e.label == "What am I looking at?"]
    assert len(notes) >= len(figures(at))  # every plot carries its note


def test_compare_colours_gaps_by_the_tolerance_and_opens_deployment_on_the_recommended_round(runs):
    from lth_core.analysis.recommend import gap_points, recommended_round
    done = runs["done"]
    rounds = RunStore().rounds(done)
    at = page("compare", run=done, round="2")
    no_errors(at)
    mean = rounds.groupby(["round", "variant"]).test_accuracy.mean()
    for metric in at.metric:
        variant = {"winning ticket": "ticket", "reinit (same mask, new init)": "reinit", "random mask": "random"}.get(metric.label)
        if variant:
            gap = gap_points(mean[(2, variant)], mean[(0, "ticket")])
            assert metric.proto.color == (metric.proto.GREEN if gap >= -1.0 else metric.proto.RED), (variant, gap)
    assert any("at most **1 percentage point**" in c.value for c in at.caption)  # the tolerance is on the page
    recommended = recommended_round(rounds)
    assert at.select_slider(key="w:deploy_round").value == (recommended if recommended is not None else 1)
    assert at.query_params["deploy_round"] == str(at.select_slider(key="w:deploy_round").value)
    assert any("not measured" in w.value for w in at.warning)  # the caveat beside the numbers, not folded away
    at.select_slider(key="w:deploy_round").set_value(2).run()
    assert "The round-2 ticket keeps" in text(at)


def test_the_tolerance_is_a_setting_of_compare_and_deploy_that_everything_follows(runs):
    """Fixed at 1 point before; now a number input on both pages (?tol= in the link, a bad one named with its range),
    and the colours, the band, the recommended ticket, the plain words and the report's tolerance follow it."""
    from lth_core.analysis.recommend import TOLERANCE_POINTS, gap_points, recommended_round
    from lth_core.analysis.summary import gap_verdict
    done = runs["done"]
    rounds = RunStore().rounds(done)
    mean = rounds.groupby(["round", "variant"]).test_accuracy.mean()
    tol = 10.0  # tiny runs of 2 rounds: far enough from 1 point to change some verdicts (checked below)
    at = page("compare", run=done, round="2", tol="10")
    no_errors(at)
    assert at.number_input(key="w:tol").value == tol and at.query_params["tol"] == "10"
    for metric in at.metric:
        variant = {"winning ticket": "ticket", "reinit (same mask, new init)": "reinit", "random mask": "random"}.get(metric.label)
        if variant:
            color = gap_verdict(gap_points(mean[(2, variant)], mean[(0, "ticket")]), tol)[0]
            assert metric.proto.color == getattr(metric.proto, color.upper()), variant
            assert "(tolerance 10 points)" in metric.proto.help
    assert any("at most **10 percentage points**" in c.value for c in at.caption)
    gap_note = next(m.value for m in at.markdown if "The grey band just below zero is the tolerance" in m.value)
    assert re.search(r"at most 10 points\s+below the dense network", gap_note), gap_note  # it said '10 point'
    shown = text(at).replace("\xa0", " ")  # the plain words join numbers and units with a no-break space
    assert "within 10 points of the dense network" in shown and "within 1 point" not in shown
    gap_figure = next(f for f in figures(at) if "round by round" in f["layout"]["title"]["text"])
    assert -tol in [s["y0"] for s in gap_figure["layout"]["shapes"] if s.get("y1") == 0]  # the band
    assert -TOLERANCE_POINTS not in [s["y0"] for s in gap_figure["layout"]["shapes"]]
    assert at.select_slider(key="w:deploy_round").value == recommended_round(rounds, tol)
    # both pages name their rounds alike (ui.tolerance.round_label): '2 (64.0 %) · recommended'
    from ui.tolerance import round_label
    labels = [round_label(rounds, recommended_round(rounds, tol))(r) for r in (1, 2)]
    assert at.select_slider(key="w:deploy_round").options == labels and labels[recommended_round(rounds, tol) - 1].endswith(
        "· recommended")
    assert any("as set at the top of this page" in c.value and "10 points" in c.value for c in at.caption)  # report
    link = next(e for e in at.get("page_link") if "Deploy" in e.proto.label)
    assert "tol=10" in link.proto.query_string
    # changed on the page: the link follows; back at the default it leaves the link
    at.number_input(key="w:tol").set_value(0.5).run()
    assert at.query_params["tol"] == "0.5" and any("at most **0.5 percentage points**" in c.value for c in at.caption)
    half = recommended_round(rounds, 0.5)  # changed by hand: the slider moves to the round recommended at 0.5
    captions = "\n".join(c.value for c in at.caption)
    assert (f"Showing round {half}, the recommended ticket" in captions if half is not None else
            "No round's ticket stays within 0.5 points" in captions)
    at.number_input(key="w:tol").set_value(TOLERANCE_POINTS).run()
    assert "tol" not in at.query_params and any("at most **1 percentage point**" in c.value for c in at.caption)
    # Deploy: the recommended ticket follows it
    at = page("deploy", run=done, tol="10")
    no_errors(at)
    chosen = recommended_round(rounds, tol)
    assert chosen != recommended_round(rounds)  # the setting changes which ticket is recommended
    assert at.number_input(key="w:tol").value == tol
    captions = "\n".join(c.value for c in at.caption)
    assert at.selectbox(key="w:round").value == chosen and f"Showing round {chosen}, the recommended ticket" in captions
    assert "within 10 points of the dense network's test accuracy" in captions
    assert at.selectbox(key="w:round").options[chosen - 1].endswith("· recommended")
    assert at.selectbox(key="w:round").options == labels
    # a bad value: one line naming the field and the range, the default kept
    for bad in ("abc", "50", "0"):
        for name in ("compare", "deploy"):
            at = page(name, run=done, tol=bad)
            no_errors(at)
            (why,) = [w for w in warnings(at) if "?tol=" in w]
            assert f"**tolerance** `{bad}` (`?tol=`)" in why and "from 0.1 to 10" in why and "Showing **1** instead" in why
            assert "\n" not in why and at.number_input(key="w:tol").value == TOLERANCE_POINTS


def test_pages_without_runs_point_to_new_experiment(lth_home):
    from lth_core.example import ensure_example
    store = RunStore()
    store.delete(ensure_example(store))  # the example run was deleted: the store holds no run
    for name in ("results", "masks", "compare", "live_run"):
        at = page(name)
        no_errors(at)
        assert "Start one on **New experiment**" in at.info[0].value


def test_an_unknown_run_in_the_url_falls_back_to_the_newest(runs):
    at = page("compare", run="nosuchrun")
    no_errors(at)
    assert "Run `nosuchrun` is not in the run store" in at.warning[0].value
    assert at.query_params["run"] == runs["other"]  # the newest finished run


def warnings(at: AppTest) -> list[str]:
    return [w.value for w in at.warning]


def test_a_bad_value_in_the_link_is_named_with_what_is_allowed(runs):
    done = runs["done"]  # rounds 0–2, variants ticket / reinit / random, trials 0 and 1
    at = page("masks", run=done, round="99", variant="bogus", trial="7", layer="zz")
    no_errors(at)
    round_, variant, trial, layer = warnings(at)
    assert "**round** `99` (`?round=`)" in round_ and "allowed: 0–2" in round_ and "Showing **2** instead" in round_
    assert "**variant** `bogus`" in variant and "allowed: `ticket`, `reinit`, `random`" in variant
    assert "Showing **winning ticket** instead" in variant
    assert "**trial** `7`" in trial and "allowed: `0`, `1`" in trial
    assert "**layer** `zz`" in layer and "allowed: `fc1`, `output`" in layer
    assert at.query_params["round"] == "2" and at.query_params["variant"] == "ticket"  # the link now says what is shown
    assert "Round 2, winning ticket, trial 0" in text(at)
    # Compare starts at the first pruned round: round 0 is refused there with the pruned rounds it has
    (why,) = [w for w in warnings(page("compare", run=done, round="0")) if "(`?" in w]  # not the deployment caveat
    assert "**round** `0`" in why and "allowed: `1`, `2`" in why
    # Results: a measure it does not draw, and rounds the run does not have among ones it has
    at = page("results", run=done, metric="accuracy", rounds=["1", "42", "x"])
    no_errors(at)
    metric, rounds = warnings(at)
    assert "**measure** `accuracy`" in metric and "`test_accuracy`, `val_loss`" in metric
    assert "**rounds** `42`, `x`" in rounds and "allowed: 0–2" in rounds and "Showing **1** instead" in rounds
    assert at.query_params["rounds"] == "1"


def test_choices_made_on_the_page_are_not_reported_as_bad_links(runs):
    done = runs["done"]
    at = page("masks", run=done, round="2", variant="random")
    no_errors(at)
    assert not warnings(at)
    at.select_slider(key="w:round").set_value(0).run()  # round 0 has no random mask: the page picks the ticket
    assert not warnings(at) and at.query_params["variant"] == "ticket"
    at = page("results", run=done, rounds=["0", "2"])
    at.multiselect(key="w:rounds:multi").set_value([1]).run()
    assert not warnings(at) and at.query_params["rounds"] == "1"


def test_numbers_are_rounded_alike_on_every_page(runs):
    done = runs["done"]
    at = page("compare", run=done, round="2")
    no_errors(at)
    metrics = {m.label: m for m in at.metric}
    dense = float(metrics["dense network (round 0)"].value.removesuffix(" %"))
    for label in ("winning ticket", "reinit (same mask, new init)", "random mask"):
        shown = float(metrics[label].value.removesuffix(" %"))
        assert metrics[label].delta == f"{shown - dense:+.1f} pts vs dense"  # the difference of what is printed
    # Results' table: the same percentages, one decimal, on screen; the CSV keeps the store's fractions
    at = page("results", run=done)
    table = at.dataframe[0]
    rounds = RunStore().rounds(done)
    config = json.loads(table.proto.columns)
    for column in ("weights_remaining", "test_accuracy", "val_accuracy", "early_stop_test_accuracy"):
        assert config[column]["type_config"]["format"] == "%.1f %%"
        assert table.value[column].to_numpy() == pytest.approx(100 * rounds[column].to_numpy())
    csv = at.get("download_button")[0].proto
    assert csv.label == "Download the table as CSV"


def test_percent_fields_of_the_form_are_answered_in_percent():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.number_input(key="form:rate_fc").set_value(150.0).run()
    (error,) = at.error
    assert "**Rate for fully connected layers (%)** (`rate_fc`)" in error.value
    assert "must be in [0 %, 100 %)" in error.value and "got 150 %" in error.value and "1.5" not in error.value
    assert at.button(key="run_button").disabled
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.radio(key="form:stop_by").set_value("target").run()
    at.number_input(key="form:target").set_value(0.0001).run()
    (error,) = at.error
    assert "(`target_remaining`): 0.0001 % is not reached within 60 rounds" in error.value
    assert "(60 rounds leave 0.00338 %)" in error.value


def test_a_figure_copied_out_of_the_page_still_says_which_run_it_shows(runs):
    done = runs["done"]
    info = RunStore().get_run(done)
    for name, params in (("compare", {}), ("results", {}), ("masks", {"round": "1"}), ("live_run", {})):
        at = page(name, run=done, **params)
        no_errors(at)
        for chart in at.get("plotly_chart"):
            layout = json.loads(chart.proto.spec)["layout"]
            if name == "masks" and layout["title"]["text"].startswith(("Connections each", "What ", "Every unit")):
                continue  # the half-width pair under the per-layer plots, whose context is right above
            subtitle = layout["title"]["subtitle"]["text"]
            assert subtitle.startswith(f"tiny digits run · digits, mlp · 2 trials · run {done}"), (name, subtitle)
            config = json.loads(chart.proto.config)
            assert config["toImageButtonOptions"]["scale"] == 2
            assert config["toImageButtonOptions"]["filename"] == re.sub(
                r"[^a-z0-9]+", "-", layout["title"]["text"].lower()).strip("-")[:60]
    masks = page("masks", run=done, round="1", variant="random", trial="1")
    heat = json.loads(masks.get("plotly_chart")[0].proto.spec)["layout"]["title"]["subtitle"]["text"]
    assert heat.endswith("· round 1, random mask, trial 1")
    # several runs overlaid: the legend names them, no single run is named above the plot
    both = page("results", run=[done, runs["other"]])
    assert "subtitle" not in json.loads(both.get("plotly_chart")[0].proto.spec)["layout"]["title"]
    assert info.config.trials == 2


def test_emptying_an_optional_number_brings_back_its_default_not_zero():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    smallest = {m.label: m.value for m in at.metric}["Smallest network"]
    at.number_input(key="form:rate_fc").set_value(50.0).run()
    assert {m.label: m.value for m in at.metric}["Smallest network"] != smallest
    at.number_input(key="form:rate_fc").set_value(None).run()  # the box emptied: "same as above" again
    assert at.number_input(key="form:rate_fc").value is None
    assert {m.label: m.value for m in at.metric}["Smallest network"] == smallest == "7.0 %"  # not 0 % = never prune
    at.number_input(key="form:lr").set_value(0.01).run()
    at.number_input(key="form:lr").set_value(None).run()
    no_errors(at)
    assert at.number_input(key="form:lr").value is None and not at.button(key="run_button").disabled


def test_an_empty_choice_of_rounds_says_what_to_do(runs):
    at = page("results", run=runs["done"])
    drawn = len(at.get("plotly_chart"))
    at.multiselect(key="w:rounds:multi").set_value([]).run()
    no_errors(at)
    assert len(at.get("plotly_chart")) == drawn - 1
    assert "Choose at least one round above" in at.info[0].value


def test_a_run_can_be_renamed_and_deleted_from_its_live_page(lth_home):
    from lth_core.cli import main as cli_main
    assert cli_main(["run", "--dataset", "digits", "--arch", "mlp", "--hidden", "8", "--rounds", "1", "--epochs", "1",
                     "--store", "--name", "first name", "--quiet"]) == 0
    run_id = RunStore().list_runs()["id"].iloc[0]
    at = page("live_run", run=run_id)
    no_errors(at)
    at.text_input(key=f"rename:{run_id}").set_value("  ").run()
    [rename] = [b for b in at.button if b.label == "Rename"]
    rename.click().run()
    assert at.error and "cannot be empty" in at.error[0].value and RunStore().get_run(run_id).name == "first name"
    at.text_input(key=f"rename:{run_id}").set_value("a better name").run()
    [rename] = [b for b in at.button if b.label == "Rename"]
    rename.click().run()
    assert RunStore().get_run(run_id).name == "a better name"

    [delete] = [b for b in at.button if b.label == "Delete the run"]
    assert delete.disabled  # not before the box is ticked
    at.checkbox(key=f"delete_sure:{run_id}").check().run()
    [delete] = [b for b in at.button if b.label == "Delete the run"]
    delete.click().run()
    assert not at.exception and RunStore().list_runs().empty
