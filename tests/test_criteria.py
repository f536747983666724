"""Pruning criteria: exact masks on toy tensors, one selection for all, and the runner's wiring."""
import json

import numpy as np
import pytest
import torch

from lth_core import ConfigError, ExperimentConfig, RunStore, collect, run_experiment
from lth_core.engine import pruning
from lth_core.engine.criteria import CRITERIA, CriterionContext
from lth_core.engine.errors import TrainingFailed
from lth_core.engine.events import RoundCommitted

# one layer of 4 weights (one already pruned) and an output layer of 2; w0 = init, wT = trained
W0 = {"a": torch.tensor([0.9, -0.1, 0.4, 0.8]), "out": torch.tensor([0.5, -0.2])}
WT = {"a": torch.tensor([1.0, -0.7, 0.3, 2.0]), "out": torch.tensor([-0.4, 0.6])}
MASK = {"a": torch.tensor([True, True, True, False]), "out": torch.tensor([True, True])}
COUNTS = {"a": 2, "out": 1}


def prune(criterion, counts=COUNTS, mask=MASK, trained=WT, init=W0):
    return {k: v.tolist() for k, v in pruning.prune(criterion, CriterionContext(mask, trained, init), counts).items()}


def test_magnitude_keeps_the_largest_trained_weights():
    # |wT| alive in a: 1.0, 0.7, 0.3 → keep 1.0 and 0.7; out: 0.4, 0.6 → keep 0.6
    assert prune("magnitude") == {"a": [True, True, False, False], "out": [False, True]}


def test_magnitude_at_init_keeps_the_largest_initial_weights_whatever_training_did():
    # |w0| alive in a: 0.9, 0.1, 0.4 → keep 0.9 and 0.4; out: 0.5, 0.2 → keep 0.5
    assert prune("magnitude-at-init") == {"a": [True, False, True, False], "out": [True, False]}


def test_magnitude_increase_keeps_the_weights_that_grew_most_even_when_all_shrank():
    # |wT| − |w0| alive in a: 0.1, 0.6, −0.1 → keep 0.6 and 0.1; out: −0.1, 0.4 → keep 0.4
    assert prune("magnitude-increase") == {"a": [True, True, False, False], "out": [False, True]}
    shrunk = {"a": torch.tensor([0.1, 0.05, 0.39, 0.0]), "out": torch.tensor([0.4, 0.1])}  # all negative scores
    # −0.8, −0.05, −0.01 → keep the two least shrunk: b and c; out: −0.1, −0.1 → a tie, one of them
    got = prune("magnitude-increase", trained=shrunk)
    assert got["a"] == [False, True, True, False] and sum(got["out"]) == 1


AFTER_TRAINING = sorted(n for n, c in CRITERIA.items() if not c.at_init)
AT_INIT = sorted(n for n, c in CRITERIA.items() if c.at_init)


@pytest.mark.parametrize("criterion", AFTER_TRAINING)
def test_no_criterion_brings_a_pruned_weight_back(criterion):
    # the dead weight scores highest under every criterion (largest init, trained, and growth), and
    # the alive ones' growth is far below zero (no "dead = -1" stand-in would do)
    init = {"a": torch.tensor([9.0, 5.0, 6.0, 7.0])}
    trained = {"a": torch.tensor([-99.0, 0.2, 0.3, 0.1])}
    mask = {"a": torch.tensor([False, True, True, True])}
    for k in (1, 2, 3, 5):  # a count above the alive weights keeps them all, never the dead one
        got = prune(criterion, {"a": k}, mask, trained, init)["a"]
        assert got[0] is False and sum(got) == min(k, 3)


@pytest.mark.parametrize("criterion, expected", [
    ("magnitude", ([False, True, True], [True, False, False])),         # |wT| 0.1 .5 .6 | .9 .2 .3
    ("magnitude-at-init", ([True, True, False], [False, False, True])),  # |w0| .8 .7 .1 | .2 .3 .9
    ("magnitude-increase", ([False, False, True], [True, True, False])),  # −.7 −.2 .5 | .7 −.1 −.6
])
def test_global_scope_ranks_every_criterions_scores_across_layers(criterion, expected):
    init = {"a": torch.tensor([0.8, -0.7, 0.1]), "b": torch.tensor([0.2, 0.3, -0.9]), "out": torch.tensor([1.0, 2.0])}
    trained = {"a": torch.tensor([0.1, 0.5, -0.6]), "b": torch.tensor([-0.9, 0.2, 0.3]), "out": torch.tensor([2.0, 1.0])}
    mask = {k: torch.ones_like(v, dtype=torch.bool) for k, v in init.items()}
    kinds = {"a": "fc", "b": "fc", "out": "output"}
    counts = pruning.next_counts(pruning.remaining_counts(mask), kinds, {"a": 0.5, "b": 0.5, "out": 0.5}, "global", 0.5)
    got = prune(criterion, counts, mask, trained, init)
    assert (got["a"], got["b"]) == expected and sum(got["out"]) == 1


def test_the_selection_equals_the_former_magnitude_prune_on_random_layers():
    """`magnitude` must give bit for bit the masks of the code it replaced: that code, verbatim in spirit:
    dead weights scored -1, |w| for the rest, torch.topk of the survivors' count."""
    def former(w, mask, k):
        scores = torch.where(mask, w.abs(), torch.full_like(w, -1.0)).flatten()
        keep = torch.zeros(scores.numel(), dtype=torch.bool)
        keep[torch.topk(scores, min(k, int(mask.sum())), sorted=False).indices] = True
        return keep.view_as(w)

    g = torch.Generator().manual_seed(0)
    for trial in range(20):
        w = {"a": torch.randn(30, 40, generator=g), "b": torch.randn(10, 30, generator=g).round(decimals=1)}  # b: ties
        mask = {l: torch.rand(t.shape, generator=g) < 0.7 for l, t in w.items()}
        counts = {l: int(m.sum() * 0.8) for l, m in mask.items()}
        new = pruning.prune("magnitude", CriterionContext(mask, trained=w), counts)
        for l in w:
            assert torch.equal(new[l], former(w[l], mask[l], counts[l])), (trial, l)


def test_non_finite_scores_are_a_clear_failure_not_a_silent_mask():
    trained = {"a": torch.tensor([1.0, float("nan"), 0.5]), "out": torch.tensor([1.0, 2.0])}
    mask = {"a": torch.ones(3, dtype=torch.bool), "out": torch.ones(2, dtype=torch.bool)}
    with pytest.raises(TrainingFailed, match="layer a"):
        pruning.prune("magnitude", CriterionContext(mask, trained=trained), {"a": 2, "out": 1})


def test_every_criterion_has_a_one_line_explanation_and_needs_what_the_runner_supplies():
    for name, c in CRITERIA.items():
        assert c.name == name and c.explanation and "\n" not in c.explanation
        # the fields lottery._criterion_context fills
        assert c.needs and c.needs <= {"trained", "init", "start", "probe", "generator"}, name


# ---- the config, the CLI and the runner ------------------------------------------------------

TINY = dict(dataset="digits", arch="mlp", hidden=(32,), rounds=1, epochs=1, batch_size=32)


def test_criterion_is_a_config_setting_checked_by_name():
    assert ExperimentConfig().criterion == "magnitude"
    assert ExperimentConfig.from_dict({"criterion": "magnitude-increase"}).criterion == "magnitude-increase"
    with pytest.raises(ConfigError) as err:
        ExperimentConfig.from_dict({"criterion": "snap"})
    assert err.value.field == "criterion" and "magnitude-at-init" in err.value.message and "synflow" in err.value.message


def test_a_run_stored_before_criteria_existed_loads_as_magnitude(tmp_path):
    from lth_core.runs.recorder import create_run

    store = RunStore(tmp_path / "runs.sqlite")
    run_id = create_run(store, ExperimentConfig(**TINY))
    config = json.loads(store.get_run(run_id).config.to_json())
    del config["criterion"]
    with store.transaction() as db:  # an old row: its config JSON has no criterion
        db.execute("UPDATE runs SET config = ? WHERE id = ?", (json.dumps(config), run_id))
    assert store.get_run(run_id).config.criterion == "magnitude"


def _first_prune(criterion: str, reset: str) -> tuple[dict, dict, dict, dict]:
    """The checkpoint after round 0: init w0, the next mask, rewind point, trained weights (reset none)."""
    events = run_experiment(ExperimentConfig(**TINY, criterion=criterion, reset=reset))
    state = next(e.checkpoint for e in events if isinstance(e, RoundCommitted)).trials[0]
    return state["init"], state["mask"], state.get("rewind", {}), state.get("trained", {})


def _top(scores: np.ndarray, keep: int) -> np.ndarray:
    return scores >= np.sort(scores.ravel())[-keep]


@pytest.mark.parametrize("criterion", AFTER_TRAINING)
def test_the_runner_prunes_by_the_configs_criterion(criterion):
    init, mask, _, trained = _first_prune(criterion, "none")  # reset none: the checkpoint holds w_T
    score = {"magnitude": lambda w0, wT: np.abs(wT), "magnitude-at-init": lambda w0, wT: np.abs(w0),
             "magnitude-increase": lambda w0, wT: np.abs(wT) - np.abs(w0)}[criterion]
    for layer, name in (("fc1", "fc1.weight"), ("output", "output.weight")):
        kept = int(mask[layer].sum())
        assert 0 < kept < mask[layer].size
        np.testing.assert_array_equal(mask[layer], _top(score(init[name], trained[name]), kept), err_msg=layer)


def test_with_rewind_the_initial_weights_are_the_original_init_not_the_rewind_point():
    init, mask, rewind, _ = _first_prune("magnitude-at-init", "rewind:20")
    kept = int(mask["fc1"].sum())
    np.testing.assert_array_equal(mask["fc1"], _top(np.abs(init["fc1.weight"]), kept))
    assert not np.array_equal(mask["fc1"], _top(np.abs(rewind["fc1.weight"]), kept))


def test_criteria_give_different_tickets_from_the_same_seed():
    masks = {c: collect(run_experiment(ExperimentConfig(**TINY, criterion=c))).masks for c in CRITERIA}
    ticket = {c: m[(0, 1, "ticket")]["fc1"] for c, m in masks.items()}
    assert not np.array_equal(ticket["magnitude"], ticket["magnitude-at-init"])
    assert not np.array_equal(ticket["magnitude"], ticket["magnitude-increase"])


def test_the_cli_takes_criterion_as_a_flag_and_explains_each_choice(capsys):
    import subprocess
    import sys

    from conftest import ROOT
    from lth_core.cli import main

    assert main(["run", "--criterion", "snap", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: criterion: must be one of magnitude, magnitude-at-init")
    proc = subprocess.run([sys.executable, "-m", "lth_core", "run", "--help"], cwd=ROOT, capture_output=True, text=True)
    text = " ".join(proc.stdout.split())
    for c in CRITERIA.values():
        assert f"{c.name}: {c.explanation}" in text
    assert "(default: magnitude)" in text


# ---- criteria that prune at initialisation ---------------------------------------------------

def _tiny_probe(seed: int = 0, hidden: int = 5, classes: int = 3, features: int = 4, batch: int = 16):
    """A real 2-layer engine MLP as a plain module, its init as `start`, and a batch of data."""
    from lth_core.engine.criteria import Probe
    from lth_core.engine.models import build_network
    from lth_core.engine.torch_modules import plain_from_engine

    net = build_network("mlp", (features,), classes, kind="tabular", hidden=(hidden,))
    g = torch.Generator().manual_seed(seed)
    params = net.init_params(g)
    params = {n: (p + 0.1 * torch.randn(p.shape, generator=g) if n.endswith("bias") else p) for n, p in params.items()}
    module = plain_from_engine(net, params, {}, (features,)).train()
    weight_of = {s.layer: s.name for s in net.prunable}
    x, y = torch.randn(batch, features, generator=g), torch.randint(0, classes, (batch,), generator=g)
    start = {l: params[n] for l, n in weight_of.items()}
    return Probe(module, weight_of, (features,), x, y), start, params


def _by_hand_loss(params: dict, w1: torch.Tensor, w2: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The same MLP written out: relu(x W1ᵀ + b1) W2ᵀ + b2, mean cross-entropy."""
    h = torch.relu(x @ w1.T + params["fc1.bias"])
    return torch.nn.functional.cross_entropy(h @ w2.T + params["output.bias"], y)


def _full(start):
    return {l: torch.ones_like(w, dtype=torch.bool) for l, w in start.items()}


def test_snip_scores_are_the_loss_gradient_times_the_weight_as_autograd_gives_them_by_hand():
    probe, start, params = _tiny_probe()
    mask = _full(start)
    mask["fc1"][0, :2] = False  # a pruned weight is zero in the network that is scored
    got = CRITERIA["snip"].score(CriterionContext(mask, start=start, probe=probe))
    w1 = (start["fc1"] * mask["fc1"]).requires_grad_(True)
    w2 = start["output"].clone().requires_grad_(True)
    g1, g2 = torch.autograd.grad(_by_hand_loss(params, w1, w2, probe.x, probe.y), [w1, w2])
    torch.testing.assert_close(got["fc1"], (g1 * w1).abs().detach())
    torch.testing.assert_close(got["output"], (g2 * w2).abs().detach())
    assert got["fc1"][0, :2].eq(0).all() and got["fc1"].gt(0).sum() > 10


def test_grasp_scores_are_the_hessian_gradient_product_times_the_weight_from_the_full_hessian():
    from lth_core.engine.criteria import GRASP_TEMPERATURE

    probe, start, params = _tiny_probe(seed=1)
    got = CRITERIA["grasp"].score(CriterionContext(_full(start), start=start, probe=probe))
    sizes = [start["fc1"].numel(), start["output"].numel()]

    def loss(flat):  # the loss as a function of all the prunable weights, flattened: brute-force Hessian
        w1, w2 = flat[:sizes[0]].view_as(start["fc1"]), flat[sizes[0]:].view_as(start["output"])
        h = torch.relu(probe.x @ w1.T + params["fc1.bias"])
        return torch.nn.functional.cross_entropy((h @ w2.T + params["output.bias"]) / GRASP_TEMPERATURE, probe.y)

    flat = torch.cat([start["fc1"].flatten(), start["output"].flatten()]).double()
    params = {n: p.double() for n, p in params.items()}
    probe = probe.__class__(probe.module, probe.weight_of, probe.input_shape, probe.x.double(), probe.y)
    hessian = torch.autograd.functional.hessian(loss, flat)
    gradient = torch.autograd.functional.jacobian(loss, flat)
    expected = (hessian @ gradient) * flat   # keep score (Hg) ⊙ w; GraSP prunes the largest −(Hg) ⊙ w
    torch.testing.assert_close(torch.cat([got["fc1"].flatten(), got["output"].flatten()]).double(), expected,
                               rtol=1e-3, atol=1e-9)


def test_synflow_conserves_the_flow_every_layer_carries_the_same_total_score():
    """With zero biases (the engine's init) the network is linear on positive inputs and weights, so each
    layer's scores sum to the network's output R: the conservation law SynFlow rests on."""
    from lth_core.engine.models import build_network
    from lth_core.engine.torch_modules import plain_from_engine
    from lth_core.engine.criteria import Probe

    net = build_network("mlp", (6,), 4, kind="tabular", hidden=(8, 7))
    params = net.init_params(torch.Generator().manual_seed(3))
    weight_of = {s.layer: s.name for s in net.prunable}
    probe = Probe(plain_from_engine(net, params, {}, (6,)), weight_of, (6,))
    start = {l: params[n] for l, n in weight_of.items()}
    mask = _full(start)
    mask["fc2"][:3] = False
    scores = CRITERIA["synflow"].score(CriterionContext(mask, start=start, probe=probe))
    totals = [float(scores[l].double().sum()) for l in ("fc1", "fc2", "output")]
    assert totals[0] > 0 and totals == pytest.approx([totals[0]] * 3, rel=1e-5)
    assert scores["fc2"][:3].eq(0).all()
    assert next(probe.module.parameters()).dtype == torch.float32  # scored in float64, handed back as it was


@pytest.mark.parametrize("counts", [{"fc1": 8, "fc2": 10, "output": 20},
                                    {"fc1": None, "fc2": None, "output": 20, "__pool__": 20}])
def test_synflow_prunes_in_many_steps_to_exactly_the_rounds_counts(counts):
    from lth_core.engine.criteria import Probe
    from lth_core.engine.models import build_network
    from lth_core.engine.torch_modules import plain_from_engine

    net = build_network("mlp", (6,), 4, kind="tabular", hidden=(12, 10))
    params = net.init_params(torch.Generator().manual_seed(0))
    weight_of = {s.layer: s.name for s in net.prunable}
    probe = Probe(plain_from_engine(net, params, {}, (6,)), weight_of, (6,))
    start = {l: params[n] for l, n in weight_of.items()}
    context = CriterionContext(_full(start), start=start, probe=probe)
    mask = pruning.prune("synflow", context, counts)
    kept = pruning.remaining_counts(mask)
    if "__pool__" in counts:
        assert kept["fc1"] + kept["fc2"] == 20 and min(kept.values()) > 0 and kept["output"] == 20
    else:
        assert kept == counts
    one_step = pruning.select(CRITERIA["synflow"].score(context), _full(start), counts)
    assert any(not torch.equal(mask[l], one_step[l]) for l in mask)  # re-scoring after each step changes the choice


def test_random_scores_come_from_the_runs_generator():
    mask = {"a": torch.ones(50, dtype=torch.bool)}
    pick = lambda seed: pruning.prune("random", CriterionContext(mask, generator=torch.Generator().manual_seed(seed)), {"a": 10})
    assert torch.equal(pick(0)["a"], pick(0)["a"]) and not torch.equal(pick(0)["a"], pick(1)["a"])
    assert int(pick(0)["a"].sum()) == 10


@pytest.mark.parametrize("criterion", AT_INIT)
def test_each_at_init_criterion_runs_end_to_end_and_repeats_its_numbers(criterion):
    config = ExperimentConfig(**TINY, criterion=criterion, controls=("reinit",))
    first, again = (collect(run_experiment(config)) for _ in range(2))
    pd = pytest.importorskip("pandas")
    pd.testing.assert_frame_equal(first.rounds_df().drop(columns=["train_seconds", "eval_seconds"]),
                                  again.rounds_df().drop(columns=["train_seconds", "eval_seconds"]))
    ticket = first.masks[(0, 1, "ticket")]
    assert 0 < ticket["fc1"].sum() < ticket["fc1"].size
