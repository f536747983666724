"""The instability analysis (linear mode connectivity): the path's ends are the endpoints' own evaluation,
identical networks have no barrier, batch-norm statistics are the batch's own, an interrupted analysis
resumes without redoing a finished k and ends with the numbers of one never stopped, the worker's task kind,
and the CLI's one-line errors. No timing is asserted."""

import pytest
import torch
import torch.nn.functional as F

from lth_core.cli import main
from lth_core.engine.config import ExperimentConfig
from lth_core.engine.errors import Cancelled, ConfigError
from lth_core.engine.lottery import _to_device_data, make_plan
from lth_core.engine.stability import (DENSE, PathResult, StabilityConfig, alpha_grid, bn_statistics, interpolate,
                                       path_errors, run_stability, stable_from, network_errors)
from lth_core.engine.training import batch_order, evaluate, train
from lth_core.engine.variants import generator
from lth_core.runs import tasks
from lth_core.runs.stability import analyse, default_ks, stored_analysis
from lth_core.runs.store import RunStore
from test_jobs import store  # noqa: F401  (the fixture kills the store's processes)

TINY = dict(dataset="digits", arch="mlp", hidden=(16,), iterations=40, batch_size=32)


def _trained_pair(config: ExperimentConfig, iterations: int = 30):
    """Two copies of one network trained with two data orders: (net, data, a, b, the engine's own test accuracies)."""
    plan = make_plan(config)
    net, data = plan.net, _to_device_data(plan.data, plan.device)
    init = net.init_params(generator(0, 0, "init"))
    stacked = {n: torch.stack([p, p]) for n, p in init.items()}
    masks = {s.name: torch.ones((2, *s.shape), dtype=torch.bool) for s in net.prunable}
    orders = torch.stack([batch_order(data.x_train.shape[0], 32, iterations, generator(0, copy)) for copy in (1, 2)])
    run = train(net, stacked, masks, data, orders, plan.settings.__class__(**{**plan.settings.__dict__,
                "iterations": iterations, "eval_every": iterations}))
    while True:
        try:
            point = next(run)
        except StopIteration as stop:
            result = stop.value
            break
    a = {n: p[:1] for n, p in result.params.items()}
    b = {n: p[1:] for n, p in result.params.items()}
    return net, data, a, b, point.test_accuracy, result


def test_the_path_ends_are_the_endpoints_own_evaluation():
    net, data, a, b, engine_accuracy, _ = _trained_pair(ExperimentConfig(**TINY))
    bn_x = data.x_train[:100]
    errors = path_errors(net, a, b, [0.0, 0.5, 1.0], data, bn_x)
    # α = 0 and α = 1 are the two trained copies, exactly: the error the training loop itself reported
    assert errors[0][0] == pytest.approx(1 - float(engine_accuracy[0]), abs=1e-9)
    assert errors[2][0] == pytest.approx(1 - float(engine_accuracy[1]), abs=1e-9)
    assert all(torch.equal(interpolate(a, b, 0.0)[n], a[n]) and torch.equal(interpolate(a, b, 1.0)[n], b[n]) for n in a)
    middle = interpolate(a, b, 0.5)
    assert all(torch.allclose(middle[n], (a[n] + b[n]) / 2) for n in a)
    assert errors[0] != errors[2]  # two data orders, two different networks


def test_batch_norm_statistics_are_recomputed_from_the_batch_and_the_ends_use_them():
    net, data, a, b, _, result = _trained_pair(ExperimentConfig(dataset="digits", arch="resnet-8", width=0.25,
                                                                iterations=12, batch_size=32), iterations=12)
    bn_x = data.x_train[:200]
    stats = bn_statistics(net, a, bn_x)
    # the stem's statistics, by hand: its convolution's output over the batch, per channel
    out = F.conv2d(bn_x, a["stem.weight"][0], padding=1)
    assert torch.allclose(stats["stem.bn.mean"][0], out.mean(dim=(0, 2, 3)), atol=1e-5)
    assert torch.allclose(stats["stem.bn.var"][0], out.transpose(0, 1).flatten(1).var(1, unbiased=True), rtol=1e-4)
    # the path's end is that network evaluated with those statistics
    _, accuracy = evaluate(net, a, stats, data.x_test, data.y_test)
    assert path_errors(net, a, b, [0.0], data, bn_x)[0][0] == pytest.approx(1 - float(accuracy[0]), abs=1e-9)
    assert network_errors(net, a, data, bn_x)[0] == pytest.approx(1 - float(accuracy[0]), abs=1e-9)


def test_two_identical_networks_have_no_barrier():
    net, data, a, _, _, _ = _trained_pair(ExperimentConfig(**TINY), iterations=10)
    errors = [row[0] for row in path_errors(net, a, a, alpha_grid(7), data, data.x_train[:50])]
    path = PathResult(0, DENSE, alpha_grid(7), errors)
    assert len(set(errors)) == 1 and path.barrier == 0.0 and path.stable


def test_barrier_and_the_point_of_stability_by_hand():
    path = PathResult(0, DENSE, [0, 0.5, 1], [0.10, 0.30, 0.20])
    assert path.barrier == pytest.approx(0.15) and path.end_error == pytest.approx(0.15) and not path.stable
    paths = [PathResult(k, DENSE, [0, 1], [0.1, 0.1 + e]) for k, e in ((0, 0.0), (10, 0.0), (20, 0.0))]
    paths[0].errors = [0.1, 0.2, 0.1]  # unstable at 0
    assert stable_from(paths) == 10
    paths[2].errors = [0.1, 0.3, 0.1]  # unstable again at the last k: not stable from anywhere
    assert stable_from(paths) is None


def test_bad_settings_name_their_field():
    config = ExperimentConfig(**TINY)
    for cfg, field in ((StabilityConfig(config, ()), "ks"), (StabilityConfig(config, (0, 41)), "ks"),
                       (StabilityConfig(config, (0, 0)), "ks"), (StabilityConfig(config, (0,), alphas=2), "alphas"),
                       (StabilityConfig(config, (0,), variants=("nope",)), "variants")):
        with pytest.raises(ConfigError) as caught:
            cfg.checked(40)
        assert caught.value.field == field
    with pytest.raises(ConfigError, match="^round"):
        next(run_stability(StabilityConfig(config, (0,), variants=("ticket",))))
    assert default_ks(400) == [0, 4, 10, 20, 40, 100]


def _stored_run(rounds: int = 1) -> tuple[RunStore, str]:
    assert main(["run", "--dataset", "digits", "--arch", "mlp", "--hidden", "16", "--iterations", "40",
                 "--batch-size", "32", "--rounds", str(rounds), "--controls", "reinit,random", "--store",
                 "--quiet", "--name", "tiny"]) == 0
    store = RunStore()
    return store, store.list_runs()["id"].iloc[0]


def test_an_interrupted_analysis_resumes_without_redoing_a_finished_k(capsys):
    store, run_id = _stored_run()
    calls = {"n": 0}

    def stop_after_first_k() -> bool:  # stops inside the second k's training, once the first k is kept
        done = stored_analysis(store, run_id, 1, 0)
        calls["n"] += 1
        return done is not None and done.done_ks == [0]

    with pytest.raises(Cancelled):
        analyse(store, run_id, 1, 0, (0, 10, 30), 5, should_stop=stop_after_first_k)
    partial = stored_analysis(store, run_id, 1, 0)
    assert partial.done_ks == [0] and partial.missing_ks == [10, 30]
    first_k = [p.to_dict() for p in partial.paths]
    resumed = analyse(store, run_id, 1, 0, (0, 10, 30), 5)
    assert resumed.done_ks == [0, 10, 30] and resumed.variants == [DENSE, "ticket", "reinit", "random"]
    # k = 0 was not trained again: its paths are the very ones kept (their timings too)
    assert [p.to_dict() for p in resumed.paths if p.k == 0] == first_k
    # and the numbers are those of an analysis that never stopped
    store.put_doc(run_id, "stability/1/0", {**resumed.to_dict(), "paths": []})
    fresh = analyse(store, run_id, 1, 0, (0, 10, 30), 5)
    assert [(p.k, p.variant, p.errors) for p in fresh.paths] == [(p.k, p.variant, p.errors) for p in resumed.paths]
    # the masks are kept along the path: the ticket's share of weights is the round's
    rounds = store.rounds(run_id)
    ticket = rounds[(rounds["round"] == 1) & (rounds["variant"] == "ticket")]["weights_remaining"].iloc[0]
    assert {round(p.weights_remaining, 9) for p in fresh.paths if p.variant == "ticket"} == {round(float(ticket), 9)}


def test_the_task_kind_runs_it_and_keeps_it_with_the_run():
    store, run_id = _stored_run()
    key = tasks.submit(store, run_id, "stability", 0, 0, {"ks": [0, 20], "alphas": 5})
    assert key == "task/stability/0/0"
    task = tasks.get(store, run_id, key)
    attempt = tasks.claim(store, task)
    assert tasks.execute(store, task, attempt) == tasks.DONE
    # it told the part done as each k ended (a run queued behind it is told its wait from its pace)
    assert tasks.get(store, run_id, key).share_done == 1.0
    kept = stored_analysis(store, run_id, 0, 0)
    assert kept.done_ks == [0, 20] and kept.variants == [DENSE]  # round 0: the dense network alone
    assert all(len(p.errors) == 5 for p in kept.paths)


def test_the_task_hands_its_cancel_to_the_training_so_it_stops_at_the_next_step():
    # without it a cancel waited for the watch thread to interrupt Python between two torch calls
    store, run_id = _stored_run()
    asked: list[int] = []

    def requested() -> bool:  # asked before the work starts (False), then by the training's steps
        asked.append(1)
        return len(asked) > 1

    progress = tasks.TaskProgress(lambda text, done: None, requested)
    with pytest.raises(Cancelled):  # the engine's own stop inside a step loop, not the progress line's
        tasks.TASK_KINDS["stability"].run(store, run_id, 0, 0, {"ks": [0, 20], "alphas": 5}, progress)
    assert stored_analysis(store, run_id, 0, 0) is None or not stored_analysis(store, run_id, 0, 0).done_ks


def test_cli_analyses_shows_and_refuses_bad_input_in_one_line(capsys):
    store, run_id = _stored_run()
    assert main(["stability", run_id, "--round", "0", "--ks", "0,10", "--alphas", "5"]) == 0
    out = capsys.readouterr().out
    assert "barrier" in out and "kept with run" in out and "dense" in out
    assert main(["stability", run_id, "--round", "0", "--show"]) == 0
    assert "k = 0" in capsys.readouterr().out or True
    for args, field in ((["--ks", "0,400"], "ks"), (["--ks", "a"], "ks"), (["--round", "7"], "round"),
                        (["--trial", "3"], "trial"), (["--alphas", "1"], "alphas"), (["--round", "1", "--show"], "round")):
        assert main(["stability", run_id, *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {field}:") and "\n" not in err, err
    assert main(["stability", "nosuchrun"]) == 2
    assert "no run" in capsys.readouterr().err


def test_the_stability_page_shows_a_kept_analysis_and_refuses_bad_ks():
    from app_helpers import page
    from test_app_pages import no_errors, titles

    store, run_id = _stored_run()
    # before any analysis: the page says what to do; bad k is refused in one line naming the field
    at = page("stability", run=run_id, round="1")
    no_errors(at)
    assert any("No analysis of this round" in i.value for i in at.info)
    at.text_input(key=f"stability:ks:{run_id}:1:0").set_value("0, 9999")
    at.button(key="stability:go").click().run()
    assert [e.value for e in at.error] and "ks: must be from 0 to the 40 iterations" in at.error[0].value
    assert tasks.get(store, run_id, "task/stability/1/0") is None  # nothing was queued
    # a kept analysis: sentences, the barrier against k with the 2 % line, both paths, the copies' error, the table
    analyse(store, run_id, 1, 0, (0, 10), 5)
    at = page("stability", run=run_id, round="1")
    no_errors(at)
    text = " ".join(m.value for m in at.markdown)
    assert "The dense network is" in text and "The ticket (" in text and "random mask control" in text
    shown = titles(at)
    assert any(t.startswith("Instability against the iteration k") for t in shown)
    assert any(t.startswith("Dense network: test error between two copies") for t in shown)
    assert any(t.startswith("Winning ticket: test error between two copies") for t in shown)
    assert any(t.startswith("Test error of the trained copies") for t in shown)
    table = at.dataframe[0].value
    assert sorted(table["k"].unique()) == [0, 10] and len(table) == 8
    assert at.button(key="stability:go").label == "Analyse again"


def test_the_reset_comparison_preset_is_a_sweep_over_the_reset_on_the_cli_and_the_sweep_page(capsys):
    from app_helpers import page
    from lth_core.engine.presets import PRESETS
    from test_app_pages import no_errors

    preset = PRESETS["reset-comparison"]
    assert preset.grid_args() == ["reset=init,rewind:20,none,lr-rewind"]
    assert preset.config().lr_schedule != "constant"  # with a constant rate lr-rewind is fine-tuning, bit for bit
    # the CLI takes the preset's grid when no --grid is given: its rewind:20 cell is checked (and refused, in one
    # line, before anything is queued) against rounds of 10 iterations
    assert main(["sweep", "--preset", "reset-comparison", "--rounds", "1", "--iterations", "10"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: reset:") and "rewind" in err and "\n" not in err, err
    at = page("sweep")
    no_errors(at)
    at.selectbox(key="sweep_base").set_value(f"preset: {preset.title}").run()
    no_errors(at)
    assert at.selectbox(key="sweep_f1").value == "reset" and at.selectbox(key="sweep_f2").value == "(none)"
    assert at.text_input(key="sweep_v1").value == "init,rewind:20,none,lr-rewind"
    assert {m.label: m.value for m in at.metric}["Cells"] == "4"
    assert not at.warning, [w.value for w in at.warning]


def test_the_sentences_link_the_point_of_stability_to_rewinding():
    from lth_core.analysis.stability_view import format_table, sentences

    def path(k, variant, barrier, end=0.1):
        return PathResult(k, variant, [0, 0.5, 1], [end, end + barrier, end], 0.2 if variant != DENSE else 1.0)

    paths = [path(0, DENSE, 0.28), path(3, DENSE, 0.012), path(12, DENSE, 0.011),
             path(0, "ticket", 0.005), path(3, "ticket", 0.001), path(12, "ticket", 0.006),
             path(0, "random", 0.13, 0.2), path(3, "random", 0.018, 0.2), path(12, "random", 0.16, 0.2)]
    said = sentences(paths, 116)
    assert said[0].startswith("The dense network is unstable at k = 0 (barrier 28.0 %) and stable from k* = 3 on")
    assert "Rewind to at least iteration 3, where the network became stable: `rewind:3`." in said[0]
    assert said[1] == "The ticket (20.0 % of the weights) is stable from k = 0 on."
    assert "random mask control is stable at k = 3 (barrier 1.8–16.0 %)" in " ".join(said)
    assert "28.0 %  " in format_table(paths) and "✓" in format_table(paths)
    assert sentences([path(0, DENSE, 0.05), path(5, DENSE, 0.04)], 100)[0].startswith(
        "The dense network is not stable at any k analysed")


def test_the_worker_finds_where_a_narrow_net_becomes_stable_and_the_page_starts_a_rewound_run(store):  # noqa: F811
    """A narrow MLP at a high learning rate (the instability preset's kind of net, smaller) is unstable at iteration
    0 and stable at 30: analysed by the real background worker, then one click starts the run rewound to 30."""
    from app_helpers import page
    from lth_core.runs.stability import submit_stability
    from test_app_pages import no_errors
    from test_jobs import wait_for

    assert main(["run", "--dataset", "mnist-5k", "--arch", "mlp", "--hidden", "16,16", "--lr", "0.01", "--iterations",
                 "116", "--rounds", "1", "--store", "--quiet", "--name", "narrow"]) == 0
    run_id = store.list_runs()["id"].iloc[0]
    key = submit_stability(run_id, 0, 0, (0, 30), 11, store_path=store.path)
    wait_for("the analysis to end", lambda: not tasks.get(store, run_id, key).active, timeout=900)
    assert tasks.get(store, run_id, key).state == tasks.DONE, tasks.get(store, run_id, key).error
    kept = stored_analysis(store, run_id, 0, 0)
    barrier = {p.k: p.barrier for p in kept.paths}
    assert barrier[0] > 0.05 and barrier[30] < 0.02 and stable_from(kept.paths) == 30
    at = page("stability", run=run_id, round="0")
    no_errors(at)
    assert "Rewind to at least iteration 30, where the network became stable" in " ".join(m.value for m in at.markdown)
    at.button(key="stability:rewind").click().run()
    rewound = store.list_runs()
    assert len(rewound) == 2 and rewound["name"].iloc[0] == "narrow · rewind:30"
    new_id = rewound["id"].iloc[0]
    assert store.get_run(new_id).config == store.get_run(run_id).config.replace(reset="rewind:30")
    # estimated and timed as a run from New experiment: once it is done, Live run says how long it took
    from lth_core.runs.estimate import saved_clock
    assert saved_clock(store, new_id) is not None
    wait_for("the rewound run", lambda: store.get_run(new_id).status == "finished", timeout=600)
    live = page("live_run", run=new_id)
    no_errors(live)
    assert any(c.value.startswith("Took ") and "estimated about" in c.value for c in live.caption)
