"""Pruning at init versus IMP: the inverted control, a cell against the one-shot run it stands for, the
experiment in the real worker (kept, resumed without redoing finished cells, shown on its page), the
summary read from the numbers, and bad input on the command line. No timing is asserted."""
import json
import os
import time

import numpy as np
import pandas as pd
import pytest
import torch

from lth_core import ExperimentConfig, collect, run_experiment
from lth_core.analysis.at_init_view import figure, summary, table
from lth_core.cli import main
from lth_core.engine import pruning
from lth_core.engine.at_init import AtInitSpec, Cell, cell_config, cells, imp_config, run_cell
from lth_core.engine.criteria import CriterionContext
from lth_core.engine.errors import ConfigError
from lth_core.engine.lottery import make_plan
from lth_core.runs import at_init as experiment
from lth_core.runs import tasks

from app_helpers import page
from test_jobs import processes_of, store, wait_for  # noqa: F401  (the fixture kills the store's processes)

TINY = dict(dataset="digits", arch="mlp", hidden=(16, 8), epochs=0.5, batch_size=32, trials=2)
SPEC = AtInitSpec(targets=(0.5, 0.3), criteria=("snip", "magnitude-at-init"))


def test_inverted_scores_prune_the_highest_instead_of_the_lowest():
    w0 = {"a": torch.tensor([0.9, -0.1, 0.4, 0.8]), "out": torch.tensor([0.5, -0.2])}
    mask = {"a": torch.tensor([True, True, True, False]), "out": torch.tensor([True, True])}
    context = CriterionContext(mask, init=w0)
    kept = pruning.prune("magnitude-at-init", context, {"a": 2, "out": 1})
    inverted = pruning.prune("magnitude-at-init", context, {"a": 2, "out": 1}, invert=True)
    assert kept["a"].tolist() == [True, False, True, False] and kept["out"].tolist() == [True, False]
    # the lowest |w0| among the alive ones; the dead weight (largest of all) stays dead
    assert inverted["a"].tolist() == [False, True, True, False] and inverted["out"].tolist() == [False, True]


def test_a_cell_is_round_one_of_a_one_shot_run_and_its_controls_keep_the_counts():
    base = ExperimentConfig(**TINY)
    imp = imp_config(base, SPEC)
    cell = cells(make_plan(imp), SPEC)[-1]                        # the lowest target, magnitude at init
    assert cell.criterion == "magnitude-at-init" and cell.fraction <= 0.3
    got = {(e.trial, e.variant): e for e in run_cell(imp, SPEC, cell)}
    one_shot = collect(run_experiment(cell_config(imp, SPEC, cell.criterion, cell.fraction))).rounds_df()
    one_shot = one_shot[one_shot["round"] == 1].set_index(["trial", "variant"])
    assert set(got) == set(one_shot.index) and len(got) == 2 * 4
    for key, e in got.items():  # the same masks, starts and data order: the same numbers
        assert e.test_accuracy == pytest.approx(one_shot.loc[key, "test_accuracy"], abs=1e-6)
        assert e.weights_remaining == pytest.approx(cell.fraction, abs=1e-3)
    init = experiment_init(imp, base)
    for trial in range(2):
        ticket = got[(trial, "ticket")]
        # shuffle and reinit: the ticket's very per-layer counts; reinit its very mask
        for control in ("random", "reinit"):
            assert got[(trial, control)].layers == ticket.layers
        assert all(np.array_equal(got[(trial, "reinit")].mask[l], ticket.mask[l]) for l in ticket.mask)
        assert any(not np.array_equal(got[(trial, "random")].mask[l], ticket.mask[l]) for l in ticket.mask)
        # inverted: as many weights, and in the pooled hidden layers (global scope) the lowest |w0| where
        # the method kept the highest
        inverted = got[(trial, "inverted")]
        assert sum(r for _, r in inverted.layers.values()) == sum(r for _, r in ticket.layers.values())
        w = init[trial]
        hidden = [l for l in ticket.mask if l != "output"]
        kept = np.concatenate([w[l][ticket.mask[l]] for l in hidden])
        low = np.concatenate([w[l][inverted.mask[l]] for l in hidden])
        assert np.abs(low).max() <= np.abs(kept).min()


def experiment_init(imp: ExperimentConfig, base: ExperimentConfig) -> list[dict[str, np.ndarray]]:
    """|w0| of each trial's prunable layers, as the engine draws them."""
    from lth_core.engine.variants import generator

    net = make_plan(imp).net
    out = []
    for trial in range(base.trials):
        params = net.init_params(generator(base.seed, trial, "init"))
        out.append({s.layer: params[s.name].numpy() for s in net.prunable})
    return out


def test_an_experiment_runs_in_the_worker_is_kept_resumes_only_what_is_missing_and_shows_on_its_page(store):  # noqa: F811
    run_id = experiment.submit(ExperimentConfig(**TINY), SPEC, name="tiny at-init", store_path=store.path)
    key = tasks.task_key(experiment.TASK, 0, 0)

    def ended() -> bool:
        task = tasks.get(store, run_id, key)
        return store.get_run(run_id).status not in ("queued", "running") and task is not None and not task.active

    wait_for("the experiment to end", ended, timeout=600, every=0.5)
    assert store.get_run(run_id).status == "finished" and tasks.get(store, run_id, key).state == tasks.DONE
    points = experiment.points(store, run_id)
    # IMP and both criteria, at both targets, each with its 3 controls, 2 trials
    assert len(points) == 3 * 2 * 4 * 2
    assert set(points["method"]) == {"imp", "snip", "magnitude-at-init"}
    for target, g in points.groupby("target"):  # every method of a target sits at the IMP round's fraction
        assert g["weights_remaining"].max() - g["weights_remaining"].min() < 2e-3
    assert experiment.experiments(store) == [run_id]

    # resume: a kept cell is not trained again (its marker stays), a missing one is, to the same numbers
    keys = sorted(store.docs(run_id, experiment.CELL_PREFIX))
    kept, lost = keys[0], keys[-1]
    before = store.doc(run_id, lost)
    store.put_doc(run_id, kept, {**store.doc(run_id, kept), "marker": "kept"})
    with store.transaction() as db:
        db.execute("DELETE FROM run_docs WHERE run_id = ? AND key = ?", (run_id, lost))
    assert experiment.resume(run_id, store.path) == ["1 at-init cells"]
    wait_for("the resumed cells", ended, timeout=600, every=0.5)
    assert store.doc(run_id, kept)["marker"] == "kept"
    again = store.doc(run_id, lost)
    assert [r["test_accuracy"] for r in again["rows"]] == pytest.approx([r["test_accuracy"] for r in before["rows"]],
                                                                          abs=1e-6)
    assert experiment.resume(run_id, store.path) == []  # nothing left

    # its page: one line per method on a log axis, the controls dashed, and the summary from the numbers
    at = page("at_init", atinit=run_id)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert fig["layout"]["xaxis"]["type"] == "log"
    lines = [t for t in fig["data"] if t.get("mode") == "lines+markers"]
    groups = {t.get("legendgroup") for t in lines}
    assert {"IMP", "SNIP", "magnitude at init"} <= groups
    imp_dashes = {t["line"]["dash"] for t in lines if t.get("legendgroup") == "IMP"}
    assert "solid" in imp_dashes and len(imp_dashes) == 4  # the ticket and its 3 controls (drawn by default)
    said = "\n".join(m.value for m in at.markdown)
    assert "IMP reaches" in said and "Shuffling the mask within each layer" in said


def _points(imp_gap: float, shuffle_cost_imp: float) -> pd.DataFrame:
    rows = []
    for trial in range(2):
        for method, ticket in (("imp", 0.90 + imp_gap), ("snip", 0.90), ("random", 0.85)):
            for variant, acc in (("ticket", ticket), ("random", ticket - (shuffle_cost_imp if method == "imp" else 0.001)),
                                 ("reinit", ticket - (0.05 if method == "imp" else 0.002))):
                rows.append(dict(method=method, target=0.2, round=7, trial=trial, variant=variant,
                                 weights_remaining=0.21, test_accuracy=acc + 0.001 * trial, early_stop_test_accuracy=acc))
    return pd.DataFrame(rows)


def test_the_summary_says_what_the_numbers_show_either_way():
    said = " ".join(summary(_points(0.03, 0.06)))
    assert "IMP reaches 93.1 %, 3.0 points above the best method pruned at init, SNIP (90.1 %)" in said
    assert "as Frankle et al. 2021 found" in said and "the paper's finding" in said
    assert "SNIP scores 5.0 points higher than random pruning at the same sparsity (21.0 % of weights)." in said
    flipped = " ".join(summary(_points(-0.03, 0.0)))
    assert "3.0 points below the best method pruned at init" in flipped
    assert "this run does not show that" in flipped and "does not hurt IMP, so" in flipped
    assert list(table(_points(0.03, 0.06))["method"]) == ["IMP", "SNIP", "random pruning"]
    fig = figure(_points(0.03, 0.06))
    assert fig.layout.xaxis.type == "log"
    names = {(t.legendgroup, t.name) for t in fig.data if t.mode == "lines+markers"}
    assert ("IMP", "ticket") in names and ("SNIP", "pruned at init") in names and ("SNIP", "ticket") not in names
    colors = {t.legendgroup: t.line.color for t in fig.data if t.mode == "lines+markers"}
    assert colors["IMP"] == "#000000" and colors["random pruning"] == "#999999"


def _controls(changes: dict[tuple[str, str], float]) -> pd.DataFrame:
    """Points of IMP, SNIP, GraSP and random pruning at one target (a pruned net at 90 %), each control's accuracy
    the pruned net's plus `changes[(method, control)]` (0 where not given)."""
    rows = []
    for trial in range(2):
        for method in ("imp", "snip", "grasp", "random"):
            for variant in ("ticket", "random", "reinit", "inverted"):
                acc = 0.90 + changes.get((method, variant), 0.0)
                rows.append(dict(method=method, target=0.5, round=3, trial=trial, variant=variant,
                                 weights_remaining=0.412, test_accuracy=acc, early_stop_test_accuracy=acc))
    return pd.DataFrame(rows)


def test_each_summary_sentence_says_which_is_better_and_by_how_much_without_a_signed_number():
    """'costs the at-init methods −4.9 points (a gain) on average (largest loss 5.6 points)' and 'SynFlow 50.0
    points' read badly: each sentence now says higher or lower, in points, the words matching the numbers."""
    from lth_core.analysis.at_init_view import control_sentence, inverted_sentence, _means

    gain = _controls({("snip", "random"): 0.104, ("grasp", "random"): -0.006, ("imp", "random"): 0.028,
                      ("snip", "inverted"): -0.056, ("grasp", "inverted"): 0.139, ("imp", "inverted"): -0.5})
    m = _means(gain, "test_accuracy")
    shuffled = control_sentence(m, gain, [0.5], ["snip", "grasp", "random"], "random")
    assert shuffled.startswith("Shuffling the mask within each layer: the at-init methods score 4.9 points higher "
                               "shuffled than with the mask as found, on average (at worst GraSP at 41.2 %: 0.6 points "
                               "lower); IMP's ticket scores 2.8 points higher.")
    assert "does not hurt IMP" in shuffled
    inverted = inverted_sentence(m, [0.5], ["snip", "grasp", "random"])
    assert inverted == ("Inverting the scores (pruning the highest-scored weights instead of the lowest), on average, "
                        "against the scores the right way up: SNIP 5.6 points lower, GraSP 13.9 points higher, IMP 50.0 "
                        "points lower; lower means the scores pointed the right way.")
    loss = _controls({("snip", "reinit"): -0.03, ("grasp", "reinit"): -0.01, ("imp", "reinit"): -0.08})
    reinit = control_sentence(_means(loss, "test_accuracy"), loss, [0.5], ["snip", "grasp", "random"], "reinit")
    assert reinit.startswith("Reinitialising the weights: the at-init methods score 2.0 points lower reinitialised "
                             "than with the original initial weights, on average (at worst SNIP at 41.2 %: 3.0 points "
                             "lower); IMP's ticket scores 8.0 points lower. It hurts IMP far more")
    for said in summary(gain) + summary(loss):
        assert "−" not in said and "a gain" not in said and "a loss" not in said, said


def _at(target: float, weights: float, imp_gap: float, snip_gap: float = 0.0) -> pd.DataFrame:
    """_points at another target (`weights` remaining), IMP `imp_gap` above SNIP, SNIP `snip_gap` above random."""
    points = _points(imp_gap, 0.06).assign(target=target, weights_remaining=weights)
    snip = points["method"] == "snip"
    points.loc[snip, "test_accuracy"] += snip_gap - 0.05
    points.loc[points["method"] == "imp", "test_accuracy"] += snip_gap - 0.05
    return points


RECORD = [  # IMP's record at every count of targets: none, one, some, all; one target and several; ties
    ([(0.03,)], "At the one target (21.0 % of weights), IMP scores above every at-init method — as Frankle et al. "
                "2021 found."),
    ([(-0.03,)], "At the one target (21.0 % of weights), SNIP scores above IMP; Frankle et al. 2021 found IMP ahead "
                 "everywhere, and this run does not show that."),
    ([(0.0,)], "At the one target (21.0 % of weights), SNIP scores the same as IMP; Frankle et al. 2021 found IMP "
               "ahead everywhere, and this run does not show that."),
    ([(0.03,), (0.02,)], "IMP scores above every at-init method at both targets — as Frankle et al. 2021 found."),
    ([(0.03,), (0.02,), (0.01,)], "IMP scores above every at-init method at all 3 targets — as Frankle et al. 2021 found."),
    ([(0.03,), (-0.02,), (0.0,)], "IMP scores above every at-init method at 1 of the 3 targets; SNIP scores above it at "
                                  "5.2 % of weights; SNIP scores the same as it at 1.1 % of weights. Frankle et al. 2021 "
                                  "found IMP ahead everywhere, so this run does not fully show that."),
    ([(-0.03,), (-0.02,)], "IMP is not above every at-init method at any of the 2 targets: SNIP scores above it at 21.0 % "
                           "and 5.2 % of weights. Frankle et al. 2021 found IMP ahead everywhere; this run does not show that."),
]
SHARES = ((0.2, 0.21), (0.05, 0.052), (0.01, 0.011))


@pytest.mark.parametrize("gaps, says", RECORD)
def test_imps_record_reads_well_at_every_count_of_targets(gaps, says):
    """Was 'IMP scores above every at-init method at 0 of 1 target' where IMP won nowhere."""
    points = pd.concat([_at(t, w, gap[0], 0.05) for (t, w), gap in zip(SHARES, gaps)], ignore_index=True)
    said = summary(points)
    assert says in said, said
    assert not any(" 0 of " in line or "of 1 target" in line for line in said), said


def test_a_tie_for_the_best_at_init_method_names_them_all():
    from lth_core.analysis.at_init_view import _means, imp_against_best_sentence, imp_record_sentence
    tie = _controls({("imp", "ticket"): -0.02})  # SNIP, GraSP and random pruning all at 90 %, IMP at 88
    m = _means(tie, "test_accuracy")
    assert imp_against_best_sentence(m, tie, 0.5, ["snip", "grasp", "random"]) == (
        "At 41.2 % of weights, IMP reaches 88.0 %, 2.0 points below the best methods pruned at init (a tie), SNIP, GraSP "
        "and random pruning (90.0 %).")
    assert imp_record_sentence(m, [0.5], ["snip", "grasp", "random"], tie).startswith(
        "At the one target (41.2 % of weights), SNIP, GraSP and random pruning score above IMP;")


@pytest.mark.parametrize("snip_gaps, says", [
    ([0.05], "SNIP scores 5.0 points higher than random pruning at the same sparsity (21.0 % of weights)."),
    ([-0.02], "SNIP scores 2.0 points lower than random pruning at the same sparsity (21.0 % of weights)."),
    ([0.0], "SNIP scores about the same (under 0.1 points apart) as random pruning at the same sparsity (21.0 % of weights)."),
    ([0.05, 0.03], "Against random pruning at the same sparsity, at 2 targets, SNIP is clearly ahead (by a point or "
                   "more) in both."),
    ([0.05, -0.02, 0.0], "Against random pruning at the same sparsity, at 3 targets, SNIP is clearly ahead (by a point or "
                         "more) in 1, clearly behind in 1 and within a point of it in 1."),
    ([-0.05, -0.02, -0.03], "Against random pruning at the same sparsity, at 3 targets, SNIP is clearly behind in all 3."),
])
def test_the_at_init_methods_against_random_pruning_read_well_at_every_count(snip_gaps, says):
    """Was 'clearly ahead (by a point or more) in 1 of 1 comparisons and clearly behind in 0'."""
    points = pd.concat([_at(t, w, 0.03, gap) for (t, w), gap in zip(SHARES, snip_gaps)], ignore_index=True)
    said = summary(points)
    assert says in said, said


def test_several_methods_against_random_pruning_name_those_behind_and_ties_say_as_not_than():
    from lth_core.analysis.at_init_view import _means, control_sentence, random_baseline_sentence
    points = _controls({("snip", "ticket"): 0.03, ("grasp", "ticket"): -0.02})
    m = _means(points, "test_accuracy")
    assert random_baseline_sentence(m, [0.5], ["snip", "grasp", "random"], points) == (
        "Against random pruning at the same sparsity, over 2 comparisons (each scored method at each target), the scored "
        "at-init methods are clearly ahead (by a point or more) in 1 and clearly behind in 1 (GraSP).")
    level = _controls({})
    shuffled = control_sentence(_means(level, "test_accuracy"), level, [0.5], ["snip", "grasp", "random"], "random")
    assert shuffled.startswith("Shuffling the mask within each layer: the at-init methods score about the same (under "
                               "0.1 points apart) shuffled as with the mask as found"), shuffled


@pytest.mark.parametrize("flags, field, says", [
    (["--targets", "1.5"], "targets", "(0, 1)"),
    (["--targets", "abc"], "targets", "cannot read 'abc'"),
    (["--criteria", "magnitude"], "criteria", "cannot prune before training"),
    (["--criteria", "snip,nope"], "criteria", "'nope'"),
    (["--trials", "0"], "trials", "1 to 20"),
    (["--criterion", "snip"], "criterion", "give --criteria instead"),
    (["--rounds", "3"], "rounds", "give --targets instead"),
])
def test_bad_input_gets_one_line_naming_the_field_and_nothing_is_queued(flags, field, says, capsys, lth_home):
    assert main(["at-init", "--dataset", "digits", "--arch", "mlp", "--background", *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {field}:") and says in err[0]
    assert not (lth_home / "runs.sqlite").exists() or experiment.experiments(experiment.RunStore(lth_home / "runs.sqlite")) == []


def test_a_criterion_that_finds_nothing_to_rank_is_refused_before_training(tmp_path, capsys, lth_home):
    data = tmp_path / "constant.csv"  # every feature the same: SNIP's gradients of the first layer are all zero
    data.write_text("a,b,label\n" + "".join(f"1,1,{i % 2}\n" for i in range(200)))
    code = main(["at-init", "--dataset", f"csv:{data}", "--arch", "mlp", "--hidden", "8", "--criteria",
                 "synflow,snip", "--targets", "0.5", "--background"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: criteria: snip does not fit") and "nothing to rank by" in err[0]
    with experiment.RunStore(lth_home / "runs.sqlite") as s:
        assert s.list_runs().empty  # refused before anything was queued


def test_the_inverted_control_of_an_imp_run_prunes_the_highest_resumes_and_retrains_as_stored(lth_home, capsys):
    from lth_core.engine.events import Checkpoint, RoundCommitted, RoundFinished
    from lth_core.runs.checks import rerun_check

    settings = dict(dataset="digits", arch="mlp", hidden=(16,), rounds=2, prune_rate=0.6, epochs=0.5, batch_size=32,
                    controls=("inverted",), trials=1)
    full = list(run_experiment(ExperimentConfig(**settings)))
    done = {(e.round, e.variant): e for e in full if isinstance(e, RoundFinished)}
    trained = done[(0, "ticket")].params["fc1.weight"]
    ticket, inverted = done[(1, "ticket")], done[(1, "inverted")]
    assert ticket.layers == inverted.layers  # layer-wise: the very same counts
    # the ticket keeps the largest |w_T| of the dense net, the inverted control the smallest
    assert np.abs(trained[inverted.mask["fc1"]]).max() <= np.abs(trained[ticket.mask["fc1"]]).min()
    checkpoint = next(e.checkpoint for e in full if isinstance(e, RoundCommitted) and e.round == 1)
    resumed = list(run_experiment(ExperimentConfig(**settings), resume=Checkpoint.from_bytes(checkpoint.to_bytes())))
    rows = lambda evs: [(e.round, e.variant, e.test_accuracy) for e in evs  # noqa: E731
                        if isinstance(e, RoundFinished) and e.round == 2]
    assert rows(resumed) == rows(full) and len(rows(full)) == 2
    # stored, then round 2 trained again from the store: the inverted control repeats its stored accuracy
    flags = [f"--{k.replace('_', '-')}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in settings.items()]
    assert main(["run", *flags, "--store", "--quiet"]) == 0
    with experiment.RunStore(lth_home / "runs.sqlite") as s:
        run_id = s.list_runs()["id"].iloc[0]
        result = rerun_check(s, run_id, 2, 0)
    assert result["ok"], result["detail"]
    assert "inverted" in result["detail"]


# a cell trains for about 3 s here (a polled progress line must not pass faster than the poll)
LONG_CELLS = dict(dataset="digits", arch="mlp", hidden=(32, 16), epochs=300, batch_size=32, trials=1, prune_rate=0.6)
THREE = AtInitSpec(targets=(0.5,), criteria=("snip", "magnitude-at-init", "random"))


def test_cancel_stops_the_cell_being_trained_keeps_the_finished_ones_and_resume_trains_the_rest(store, monkeypatch, capsys):  # noqa: F811
    """`cancel ID` on an experiment (the real worker, the IMP run and the cells side by side): the task ends
    cancelled mid-cell, the cell it was training is not kept, the one finished before stays; resume trains the rest."""
    monkeypatch.setenv("LTH_WORKERS", "2")  # the IMP run and the at-init task at once
    run_id = experiment.submit(ExperimentConfig(**LONG_CELLS), THREE, name="long cells", store_path=store.path)
    key = tasks.task_key(experiment.TASK, 0, 0)
    # cancel once the second cell has started training (a task that ended first fails here, not by timing out)
    seen = wait_for("the second cell to train", lambda: (lambda t: t if t and ("cell 2 of 3" in t.progress
                    or t.state not in tasks.ACTIVE) else None)(tasks.get(store, run_id, key)), timeout=300, every=0.05)
    assert "cell 2 of 3" in seen.progress, seen
    assert main(["cancel", run_id]) == 0
    out = capsys.readouterr().out
    task = tasks.get(store, run_id, key)
    assert task.state == tasks.CANCELLED and task.progress == "cancelled" and task.error is None
    assert "at-init cells: cancelled" in out
    assert store.get_run(run_id).status in ("finished", "cancelled")
    # stopped inside a cell (the second, or the third if the second ended meanwhile): it is not kept, those
    # before it are
    kept = sorted(store.docs(run_id, experiment.CELL_PREFIX))
    assert 1 <= len(kept) <= 2
    time.sleep(2)  # nothing goes on writing
    assert sorted(store.docs(run_id, experiment.CELL_PREFIX)) == kept
    store.put_doc(run_id, kept[0], {**store.doc(run_id, kept[0]), "marker": "kept"})

    queued = experiment.resume(run_id, store.path)
    assert f"{3 - len(kept)} at-init cells" in queued
    wait_for("the resumed experiment", lambda: store.get_run(run_id).status == "finished"
             and tasks.get(store, run_id, key).state == tasks.DONE, timeout=300, every=0.5)
    assert len(store.docs(run_id, experiment.CELL_PREFIX)) == 3 and store.doc(run_id, kept[0])["marker"] == "kept"


def test_a_cancel_stops_a_cell_off_the_main_thread_too(store):  # noqa: F811
    """Where the cancel watch cannot interrupt the main thread (the task done in a thread), the engine's
    should_stop stops the cell at its next step: it is not kept."""
    import threading

    from lth_core.engine.at_init import imp_config as imp_of
    from lth_core.runs.recorder import create_run

    imp = imp_of(ExperimentConfig(**dict(LONG_CELLS, epochs=1000)), THREE)  # a cell of about 10 s: cancelled well within it
    run_id = create_run(store, imp, "in a thread", docs={experiment.SPEC_DOC: THREE.to_dict()})
    key = tasks.submit(store, run_id, experiment.TASK, 0, 0)
    task = tasks.get(store, run_id, key)
    attempt = tasks.claim(store, task, pid=os.getpid())
    ended = []
    worker = threading.Thread(target=lambda: ended.append(tasks.execute(store, tasks.get(store, run_id, key), attempt)))
    worker.start()
    wait_for("the first cell to train", lambda: "cell 1 of 3" in tasks.get(store, run_id, key).progress, timeout=60)
    asked = time.monotonic()
    assert tasks.cancel(store, run_id, key) == tasks.RUNNING
    worker.join(timeout=120)
    took = time.monotonic() - asked
    assert ended == [tasks.CANCELLED], (ended, tasks.get(store, run_id, key))
    # the cell stopped mid-way, not kept
    assert store.docs(run_id, experiment.CELL_PREFIX) == {}, f"the task ended {took:.1f} s after the cancel"


def test_a_training_at_init_task_tells_the_part_done_and_a_run_submitted_now_is_told_its_wait(store, monkeypatch):  # noqa: F811
    """The task's cells done (of this attempt) are its part done; from their pace New experiment tells a run
    submitted now when the only worker is free, instead of 'starts at once'."""
    import threading

    from lth_core.engine.at_init import imp_config as imp_of
    from lth_core.runs.estimate import describe_wait, queue_ahead
    from lth_core.runs.recorder import create_run

    monkeypatch.setenv("LTH_WORKERS", "1")
    imp = imp_of(ExperimentConfig(**dict(LONG_CELLS, epochs=10)), THREE)  # cells of a few seconds
    run_id = create_run(store, imp, "cells", docs={experiment.SPEC_DOC: THREE.to_dict()})
    store.cancel(run_id)  # only the task trains
    key = tasks.submit(store, run_id, experiment.TASK, 0, 0)
    attempt = tasks.claim(store, tasks.get(store, run_id, key), pid=os.getpid())
    first = tasks.get(store, run_id, key)
    assert first.share_done is None and describe_wait(queue_ahead(store)) == (
        "1 background task ahead of it, with no estimate of its time left: it starts when that ends")
    worker = threading.Thread(target=lambda: tasks.execute(store, tasks.get(store, run_id, key), attempt))
    worker.start()
    try:
        seen = wait_for("a cell after the first", lambda: (lambda t: t if t.share_done or not t.active else None)(
            tasks.get(store, run_id, key)), timeout=300, every=0.05)
        cell = int(seen.progress.split(" of 3")[0].removeprefix("cell "))  # the second, or the third if it went fast
        assert cell >= 2 and seen.share_done == pytest.approx((cell - 1) / 3), seen
        ahead = queue_ahead(store)
        assert (ahead.runs, ahead.tasks, ahead.unclocked) == (0, 1, 0) and ahead.seconds > 0
        assert describe_wait(ahead).startswith("1 background task ahead of it: starts in about ")
    finally:
        tasks.cancel(store, run_id, key)
        worker.join(timeout=120)


def test_the_methods_markers_of_a_target_are_dodged_apart_by_a_constant_factor_and_the_hover_says_so():
    points = pd.concat([_points(0.03, 0.06), _points(0.03, 0.06).assign(target=0.05, round=12, weights_remaining=0.052)])
    fig = figure(points)
    own = {t.legendgroup: t for t in fig.data if t.mode == "lines+markers" and t.name in ("ticket", "pruned at init")}
    assert list(own) == ["IMP", "SNIP", "random pruning"]
    xs = {g: np.array(t.x, float) for g, t in own.items()}
    for i, true_x in enumerate((21.0, 5.2)):  # both targets: the middle method on the value, the others either side
        drawn = [xs[g][i] for g in own]
        assert drawn[1] == pytest.approx(true_x)
        ratios = drawn[1] / drawn[0], drawn[2] / drawn[1]
        assert ratios[0] == pytest.approx(ratios[1]) and 1.01 < ratios[0] < 1.1  # a few pixels apart, one factor
    # the hover keeps the true value and says the point is drawn shifted; the ticks stay at the true values
    assert all(t.customdata[0][2] == "21.0 %" for t in own.values())
    notes = {g: [row[-1] for row in t.customdata] for g, t in own.items()}
    assert all("drawn shifted ×" in n for n in notes["IMP"]) and all("drawn shifted ×1.000" in n for n in notes["SNIP"])
    assert own["IMP"].hovertemplate.endswith("%{customdata[4]}<extra></extra>")
    assert {21.0, 5.2} <= set(fig.layout.xaxis.tickvals)
    # a control and the band of a method move with it; the dense level does not
    control = next(t for t in fig.data if t.mode == "lines+markers" and t.legendgroup == "IMP" and t.name != "ticket")
    assert control.x[0] == pytest.approx(xs["IMP"][0])
    # a point no other method shares (IMP's dense round) stays at its value
    alone = figure(pd.concat([points, points[points["method"] == "imp"].assign(round=0, target=1.0,
                                                                              weights_remaining=1.0)]))
    imp = next(t for t in alone.data if t.mode == "lines+markers" and t.legendgroup == "IMP" and t.name == "ticket")
    assert imp.x[0] == pytest.approx(100.0) and imp.customdata[0][-1] == ""  # not moved, and not said to be
    assert imp.x[1] < 21.0 and "drawn shifted" in imp.customdata[1][-1]


def test_the_page_cancels_a_queued_experiment_and_offers_resume(store):  # noqa: F811
    """Queued (no worker yet): the page's Cancel button cancels the IMP run and the at-init task at once."""
    from lth_core.engine.at_init import imp_config as imp_of
    from lth_core.runs.recorder import create_run

    run_id = create_run(store, imp_of(ExperimentConfig(**TINY), SPEC), "queued", docs={experiment.SPEC_DOC: SPEC.to_dict()})
    tasks.submit(store, run_id, experiment.TASK, 0, 0)
    at = page("at_init", atinit=run_id)
    assert not at.exception, [e.value for e in at.exception]
    at.button(key="atinit_cancel").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert store.get_run(run_id).status == "cancelled" and experiment.task_state(store, run_id).state == tasks.CANCELLED
    assert any(b.key == "atinit_resume" for b in at.button)


def test_a_resumed_experiment_keeps_the_estimate_of_the_cells_still_missing(store):  # noqa: F811
    """Resumed, the task kept no estimate: a run queued behind it was told 'no estimate' until a cell ended."""
    from lth_core.engine.at_init import cell_rows, imp_config as imp_of
    from lth_core.runs.recorder import create_run
    from lth_core.runs.worker import SchedulerLock

    lock = SchedulerLock(store.path)  # held: no worker starts, so nothing trains behind the test's back
    assert lock.acquire()
    try:
        imp = imp_of(ExperimentConfig(**TINY), SPEC)
        run_id = create_run(store, imp, "resumed", docs={experiment.SPEC_DOC: SPEC.to_dict()})
        tasks.submit(store, run_id, experiment.TASK, 0, 0, estimate_s=120.0)
        experiment.cancel(run_id, store.path)
        first = experiment.planned_cells(store, run_id)[0]  # one of the 4 cells kept, trained as the task trains it
        store.put_doc(run_id, experiment.CELL_PREFIX + first.key,
                      {"cell": first.__dict__, "rows": cell_rows(first, run_cell(imp, SPEC, first))})
        assert "3 at-init cells" in experiment.resume(run_id, store.path)
        task = experiment.task_state(store, run_id)
        assert task.state == tasks.QUEUED and task.estimate_s == pytest.approx(90.0)
    finally:
        lock.release()


def test_the_estimate_is_the_imp_runs_plus_each_cell_trained_once(lth_home):
    from lth_core.runs.estimate import estimate_run, time_bookkeeping
    e = experiment.estimate(ExperimentConfig(**TINY), SPEC, warm=False)
    imp = imp_config(ExperimentConfig(**TINY), SPEC)
    assert e.imp.trainings == estimate_run(imp, startup=False).trainings and e.imp.startup_seconds > 0
    assert e.cells == 4 and e.trainings == e.imp.trainings + 4 * 2 * 4  # 4 cells × 2 trials × method and 3 controls
    # each cell: at least its criterion's measured bookkeeping, on top of its training
    books = [time_bookkeeping(cell_config(imp, SPEC, c.criterion, c.fraction), 1).pruned_round
             for c in cells(make_plan(imp), SPEC)]
    assert e.cells_seconds > sum(books) > 0
    assert e.seconds == pytest.approx(e.imp.seconds + e.cells_seconds)
    assert "the IMP run" in e.breakdown() and "4 at-init cells" in e.breakdown()
    with pytest.raises(ConfigError):
        experiment.estimate(ExperimentConfig(**TINY), AtInitSpec(targets=(1e-9,), criteria=("snip",)))


def test_the_page_shows_the_experiments_estimate_before_start(lth_home):
    at = page("at_init", timeout=300)
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["At-init cells"] == "10" and int(metrics["Trainings"]) > 10 * 2 * 4
    assert metrics["Rough time"].endswith((" s", " min", " h"))
    caption = next(c.value for c in at.caption if c.value.startswith("This experiment:"))
    assert "the IMP run" in caption and "10 at-init cells" in caption and f"about {metrics['Rough time']}: the IMP run" in caption


def test_after_start_the_page_shows_the_new_experiment_and_its_url_names_it(store):  # noqa: F811
    """As on Sweep: the picker's own state kept the experiment shown before Start; the new one must be shown,
    and ?atinit= name it."""
    from lth_core.engine.at_init import imp_config as imp_of
    from lth_core.runs.recorder import create_run

    old = create_run(store, imp_of(ExperimentConfig(**TINY), SPEC), "queued", docs={experiment.SPEC_DOC: SPEC.to_dict()})
    tasks.submit(store, old, experiment.TASK, 0, 0)
    at = page("at_init", atinit=old)
    assert at.selectbox(key="w:atinit").value == old
    at.toggle(key="atinit_build").set_value(True).run()
    at.selectbox(key="atinit_base").set_value(next(o for o in at.selectbox(key="atinit_base").options
                                                   if o.startswith(f"run {old}"))).run()
    at.text_input(key="atinit_targets").set_value("0.5").run()
    at.multiselect(key="atinit_criteria").set_value(["snip"]).run()
    at.number_input(key="atinit_trials").set_value(1).run()
    at.button(key="atinit_start").click().run()
    new = next(r for r in experiment.experiments(store) if r != old)
    experiment.cancel(new, store.path)  # only the page is under test: no need to train it
    # the estimate shown is kept: Live run times the IMP run, and a run queued behind the cells is told its wait
    from lth_core.runs.estimate import saved_clock
    assert saved_clock(store, new) is not None and experiment.task_state(store, new).estimate_s > 0
    assert not at.exception, [e.value for e in at.exception]
    assert at.query_params["atinit"] == new
    assert at.selectbox(key="w:atinit").value == new
