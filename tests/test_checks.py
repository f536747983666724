"""The sanity checks (lth_core/analysis/checks.py, lth_core/runs/checks.py): each one passes on a real run and
turns red when the thing it guards is broken on purpose."""
from __future__ import annotations


import pandas as pd
import pytest

from lth_core.analysis import checks as C
from lth_core.engine import pruning, training
from lth_core.engine.config import ExperimentConfig
from lth_core.engine.events import Checkpoint, RoundCommitted
from lth_core.engine.lottery import run_experiment
from lth_core.runs.checks import rerun_check, run_checklist, run_marks
from lth_core.runs.recorder import Recorder, claim, create_run
from lth_core.runs.store import RunStore

SMALL = ExperimentConfig(dataset="mnist-5k", rounds=2, iterations=24, eval_every=8, controls=("reinit", "random"),
                         trials=2, seed=3)


def record(config: ExperimentConfig = SMALL, tamper=None) -> tuple[RunStore, str]:
    """Train `config` in this process and record it into a fresh store, as the worker does; `tamper`
    may replace an event on its way to the recorder."""
    store = RunStore()
    run_id = create_run(store, config)
    rec = Recorder(store, run_id, claim(store, run_id))
    for event in run_experiment(config):
        rec.add(tamper(event) if tamper else event)
    return store, run_id


def by_key(lines):
    return {line.key: line for line in lines}


def test_a_real_run_passes_every_recorded_check():
    store, run_id = record()
    lines = by_key(run_checklist(store, run_id))
    assert [lines[k].status for k in ("zero_weights", "same_start", "control_counts")] == [C.PASS] * 3
    # 2 trials: round 0 (1 ticket each) and 2 rounds of 3 variants
    assert "14 trained networks" in lines["zero_weights"].line and "(42 checks)" in lines["zero_weights"].line
    assert "10 networks that start like the ticket" in lines["same_start"].line
    assert "8 controls" in lines["control_counts"].line
    assert lines["rerun"].status == C.NOT_RUN and f"check {run_id} --round R" in lines["rerun"].line
    doc = store.doc(run_id, "checks")
    assert doc["zero_weights"]["failed"] == doc["same_start"]["failed"] == doc["control_counts"]["failed"] == 0


def test_a_training_step_that_forgets_the_mask_turns_the_zero_weights_check_red(monkeypatch):
    monkeypatch.setattr(training, "apply_masks", lambda weights, masks: None)
    store, run_id = record(SMALL.replace(trials=1))
    line = by_key(run_checklist(store, run_id))["zero_weights"]
    assert line.status == C.FAIL
    # round 0 is dense (nothing pruned): the first failure is round 1's ticket
    assert line.where[0].startswith("trial 0, round 1, ticket, layer fc1: a pruned weight was ")
    assert "denser than its mask" in line.line
    assert run_marks(store, [run_id])[run_id].startswith("✗ zero weights")


def test_a_tampered_initial_weight_turns_the_start_check_red():
    def tamper(event):
        if isinstance(event, RoundCommitted) and event.round == 0:  # the store keeps other init weights
            trials = [{part: dict(group) for part, group in state.items()} for state in event.checkpoint.trials]
            w = trials[1]["init"]["fc2.weight"].copy()
            w[3, 7] += 0.25
            trials[1]["init"]["fc2.weight"] = w
            return RoundCommitted(0, Checkpoint(0, trials))
        return event

    store, run_id = record(tamper=tamper)
    line = by_key(run_checklist(store, run_id))["same_start"]
    assert line.status == C.FAIL
    assert line.where[0].startswith("trial 1, round 0, ticket, layer fc2.weight: started from weights hashed")
    doc = store.doc(run_id, "checks")["same_start"]
    # round 0's ticket, rounds 1 and 2's ticket and random mask: all of trial 1, none of trial 0
    assert doc["failed"] == 5 and {f["trial"] for f in doc["failures"]} == {1}
    assert by_key(run_checklist(store, run_id))["zero_weights"].status == C.PASS


def record_with_a_random_mask_one_weight_too_many(monkeypatch):
    """A real one-round run whose random-mask control keeps one weight more than the ticket in its first layer
    (the shuffle patched for the run): the counts check's failure, for the tests that read it."""
    real = pruning.random_mask_like

    def one_more(mask, gen):
        out = real(mask, gen)
        layer = next(iter(out))
        flat = out[layer].flatten().clone()
        flat[int(torch_nonzero_false(flat))] = True   # keep one weight more than the ticket
        return {**out, layer: flat.view_as(out[layer])}

    monkeypatch.setattr(pruning, "random_mask_like", one_more)
    return record(SMALL.replace(trials=1, rounds=1))


def test_a_control_with_other_counts_turns_the_counts_check_red(monkeypatch):
    store, run_id = record_with_a_random_mask_one_weight_too_many(monkeypatch)
    line = by_key(run_checklist(store, run_id))["control_counts"]
    assert line.status == C.FAIL
    assert line.where == ("trial 0, round 1, random, layer fc1: keeps 188,161 of 235,200 weights, the ticket "
                          "188,160 of 235,200",)
    assert "its gap to the ticket mixes" in line.line


def torch_nonzero_false(flat):
    return (~flat).nonzero()[0, 0]


def test_a_rerun_repeats_a_round_and_a_changed_stored_number_turns_it_red():
    store, run_id = record(SMALL.replace(trials=1, rounds=1))
    result = rerun_check(store, run_id, round=1)
    assert result["ok"], result
    line = by_key(run_checklist(store, run_id))["rerun"]
    assert line.status == C.PASS and "the same as stored" in line.line
    with store.transaction() as db:  # as if the stored result had not come from this config and seed
        db.execute("UPDATE rounds SET test_accuracy = test_accuracy + 0.01 WHERE run_id = ? AND round = 1 "
                   "AND variant = 'reinit'", (run_id,))
    result = rerun_check(store, run_id, round=1)
    assert not result["ok"] and result["variant"] == "reinit"
    line = by_key(run_checklist(store, run_id))["rerun"]
    assert line.status == C.FAIL and line.where == ("trial 0, round 1, reinit",)
    assert "cannot be reproduced" in line.line


def _rounds(stops: dict[tuple[int, str], list[int]]) -> pd.DataFrame:
    rows = [{"trial": t, "round": r, "variant": v, "weights_remaining": 0.8 ** r, "early_stop_iteration": it}
            for (r, v), its in stops.items() for t, it in enumerate(its)]
    return pd.DataFrame(rows)


def test_the_budget_check_flags_rounds_whose_best_point_is_the_last():
    last = 80
    rounds = _rounds({(0, "ticket"): [40, 60],
                      (1, "ticket"): [80, 80], (1, "reinit"): [80, 80], (1, "random"): [50, 80],  # 2 of 3 at the end
                      (2, "ticket"): [80, 70], (2, "reinit"): [80, 40], (2, "random"): [80, 80],  # 1 of 3: half a trial is not most
                      (3, "ticket"): [80, 80], (3, "reinit"): [80, 80], (3, "random"): [80, 80]})
    budget = C.budget_check(rounds, last)
    assert budget.flagged == [1, 3] and budget.detail[1] == ["ticket", "reinit"]
    line = C.budget_line(budget, rounds, {"epochs": 4.0})
    assert line.status == C.WARN
    # rounds counted as every page counts them (round 0 = dense), shares with one decimal: it read
    # "rounds 1, 3 (80 % to 51.2 % of weights) of 4", as if there were 4 pruned rounds
    assert line.line.startswith("of the dense network and 3 pruned rounds, pruned rounds 1, 3 (80.0 % to 51.2 % of the "
                                "weights) had not converged: ")
    assert "'learns faster' with 'ends higher'" in line.line and "try epochs 8 a round (now 4)" in line.line
    assert C.run_mark([line]) == "⚠ budget"


def test_the_budget_line_names_the_dense_network_and_the_last_pruned_rounds_as_pages_count_them():
    its = [100, 100]
    stops = {(r, v): its if r == 0 or r >= 11 else [50, 50] for r in range(13) for v in ("ticket", "reinit", "random")
             if r or v == "ticket"}
    rounds = _rounds(stops)
    line = C.budget_line(C.budget_check(rounds, 100), rounds, {"epochs": 2.0})
    assert line.line.startswith("of the dense network and 12 pruned rounds, the dense network (round 0) and pruned "
                                "rounds 11–12 (8.6 % to 6.9 % of the weights) had not converged: "), line.line
    fine = _rounds({(r, "ticket"): [50, 50] for r in range(13)})
    assert C.budget_line(C.budget_check(fine, 100), fine, {}).line.startswith(
        "in each of the dense network and 12 pruned rounds, most variants reached")


def test_the_budget_check_passes_when_training_converged_and_waits_for_rounds():
    rounds = _rounds({(0, "ticket"): [40, 80], (1, "ticket"): [79, 30], (1, "reinit"): [80, 80], (1, "random"): [8, 8]})
    budget = C.budget_check(rounds, 80)
    assert budget.ok and C.budget_line(budget, rounds, {}).status == C.PASS
    assert C.budget_check(rounds.iloc[:0], 80) is None
    assert C.budget_line(None, rounds.iloc[:0], {}).status == C.NOT_RUN
    assert "iterations 160 a round (now 80)" == C.suggested_budget({"iterations": 80, "epochs": 3})


def test_a_run_recorded_before_checks_were_kept_reads_counts_from_the_store():
    store, run_id = record(SMALL.replace(trials=1, rounds=1))
    with store.transaction() as db:
        db.execute("DELETE FROM run_docs WHERE run_id = ?", (run_id,))
    lines = by_key(run_checklist(store, run_id))
    assert lines["zero_weights"].status == lines["same_start"].status == C.NOT_RUN
    assert lines["zero_weights"].line == "not recorded for this run"
    assert lines["control_counts"].status == C.PASS and "2 controls" in lines["control_counts"].line


def test_the_zero_check_is_exact_and_per_model():
    import torch

    w = torch.zeros(3, 4, 5)
    keep = torch.zeros(3, 4, 5)
    keep[:, 0] = 1.0
    w[:, 0] = 2.0                  # kept weights may be anything
    w[2, 3, 4] = -1e-30            # one pruned weight of model 2, barely non-zero
    got = training.pruned_magnitudes([w], [1.0 - keep])[0]
    assert got[:2].tolist() == [0.0, 0.0] and got[2].item() == pytest.approx(1e-30)


def test_check_and_show_print_the_checklist(capsys):
    from lth_core.cli import main

    store, run_id = record(SMALL.replace(trials=1, rounds=1))
    assert main(["check", run_id, "--round", "1", "--store-path", str(store.path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("same numbers: round 1, trial 0 retrained with the same seed: ticket ")
    assert "✓ A rerun of a finished round repeats its numbers" in out
    assert main(["show", run_id, "--store-path", str(store.path)]) == 0
    out = capsys.readouterr().out
    assert "sanity checks:\n  ✓ Pruned weights stay exactly zero: 4 trained networks" in out
    assert main(["runs", "--store-path", str(store.path)]) == 0
    out = capsys.readouterr().out
    assert "checks" in out.splitlines()[0]
    assert main(["check", run_id, "--round", "5", "--store-path", str(store.path)]) == 2
    assert "has finished rounds 0-1; got 5" in capsys.readouterr().err


def test_compare_and_live_run_show_the_checklist_escaped_with_the_failed_check(monkeypatch):
    from app_helpers import page

    store, run_id = record_with_a_random_mask_one_weight_too_many(monkeypatch)
    store.rename(run_id, "[click](http://example.com) *run*")
    for name in ("compare", "live_run"):
        at = page(name, run=run_id)
        assert not at.exception, at.exception
        text = "\n".join(m.value for m in at.markdown)
        assert "- ✗ **Controls keep the ticket's per-layer counts**: failed at trial 0, round 1, random, " \
               "layer fc1: keeps 188,161 of 235,200 weights" in text
        assert "- ✓ **Pruned weights stay exactly zero**: 4 trained networks" in text
        assert "](http://example.com)" not in text
        # the expander says where the failed check failed (one place is enough to list it)
        (where,) = [e for e in at.expander if e.label == "Where each failed check failed"]
        listed = "\n".join(m.value for m in where.markdown)
        assert "**Controls keep the ticket's per-layer counts**: trial 0, round 1, random, layer fc1" in listed
        assert "had not converged" not in listed and "lowest validation loss" not in listed
    at = page("compare", run=run_id)
    at.button(key=f"rerun:{run_id}").click().run()
    assert [s.value for s in at.success] and "the same as stored" in at.success[0].value


def test_a_run_that_only_warns_shows_no_failed_places():
    """24 iterations a round: the budget check warns (⚠); no check failed, so there is nowhere to say it failed."""
    from app_helpers import page

    store, run_id = record(SMALL.replace(trials=1, rounds=1))
    statuses = {line.key: line.status for line in run_checklist(store, run_id)}
    assert statuses["budget"] == C.WARN and C.FAIL not in statuses.values()
    at = page("compare", run=run_id)
    assert not at.exception, at.exception
    labels = [e.label for e in at.expander]
    assert "Where each failed check failed" not in labels
    (rounds,) = [e for e in at.expander if e.label == "Which rounds had not converged"]
    assert "round 0: ticket at their lowest validation loss at iteration 24" in rounds.markdown[0].value
    # each line is a round that had not converged: never under the passing check's title "was long enough"
    assert C.CHECKS["budget"].title not in rounds.markdown[0].value, rounds.markdown[0].value


def test_a_resumed_run_goes_on_counting_and_checks_its_starts_against_the_store():
    from lth_core.runs.store import INTERRUPTED, Reason

    config = SMALL.replace(trials=1, reset="rewind:8")
    store = RunStore()
    run_id = create_run(store, config)
    rec = Recorder(store, run_id, claim(store, run_id))
    for event in run_experiment(config):
        rec.add(event)
        if isinstance(event, RoundCommitted) and event.round == 1:
            break
    rec.end(INTERRUPTED, Reason.STOPPED_BY_SIGNAL)
    rec = Recorder(store, run_id, claim(store, run_id, allowed=(INTERRUPTED,)))
    for event in run_experiment(config, resume=store.checkpoint(run_id)):
        rec.add(event)
    lines = by_key(run_checklist(store, run_id))
    assert "7 trained networks" in lines["zero_weights"].line       # 1 + 3 + 3, each counted once
    assert lines["same_start"].status == C.PASS and "5 networks that start like the ticket" in lines["same_start"].line


@pytest.mark.parametrize("reset", ["none", "lr-rewind"])
def test_resets_that_keep_the_trained_weights_check_the_start_of_round_0_only(reset):
    store, run_id = record(SMALL.replace(trials=1, rounds=1, reset=reset))
    line = by_key(run_checklist(store, run_id))["same_start"]
    assert line.status == C.PASS
    assert line.line == ("1 network that starts like the ticket (tickets, random masks), every parameter equal by "
                         f"hash; reset {reset}: from round 1 on the ticket starts from the previous round's trained weights")
