"""The engine end to end on small real data: models, the runner's events, determinism, resume."""
import numpy as np
import pandas as pd
import pytest
import torch

from lth_core import ConfigError, ExperimentConfig, collect, make_plan, run_experiment
from lth_core.engine.events import RoundCommitted, RoundFinished, RunFailed, RunFinished, RunStarted
from lth_core.engine.models import ARCHITECTURES, build_network
from lth_core.engine.results import TIMING_COLUMNS as TIMINGS

TINY = dict(dataset="digits", arch="mlp", hidden=(32,), rounds=2, epochs=1, batch_size=32, controls=("reinit", "random"))


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_each_architecture_runs_stacked_models_independently(arch):
    net = build_network(arch, (1, 8, 8), 10, width=0.25 if "conv" in arch or "resnet" in arch else None)
    g = torch.Generator().manual_seed(0)
    singles = [net.init_params(g) for _ in range(3)]
    stacked = {n: torch.stack([p[n] for p in singles]) for n in singles[0]}
    x = torch.randn(3, 5, 1, 8, 8, generator=g)
    out = net.forward(stacked, net.new_buffers(3, torch.device("cpu")), x, train=False)
    assert out.shape == (3, 5, 10)
    alone = net.forward({n: p[1:2] for n, p in stacked.items()}, net.new_buffers(1, torch.device("cpu")), x[1:2], train=False)
    torch.testing.assert_close(out[1:2], alone, rtol=1e-4, atol=1e-5)
    shared = net.forward(stacked, net.new_buffers(3, torch.device("cpu")), x[1:2], train=False)  # one batch, 3 models
    torch.testing.assert_close(shared[1:2], alone, rtol=1e-4, atol=1e-5)
    assert all(s.layer for s in net.prunable) and net.prunable[-1].layer == "output"


@pytest.mark.parametrize("groups", [1, 3])
def test_the_hand_written_linear_backward_agrees_with_numerical_gradients(groups):
    from lth_core.engine.models import _linear
    g = torch.Generator().manual_seed(0)
    x = torch.randn(groups, 4, 6, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_linear, (x, w, b))
    out = _linear(x, w, b)
    expected = torch.einsum("vbi,voi->vbo", x.repeat_interleave(3 // groups, 0), w) + b.unsqueeze(1)
    torch.testing.assert_close(out, expected)
    out.sum().backward()
    assert w.grad.is_contiguous()  # in the weight's own layout: no copy when the optimizer reads it


def test_lenet_has_the_papers_266k_weights_and_readable_layer_names():
    net = build_network("lenet-300-100", (1, 28, 28), 10)
    assert net.layer_totals() == {"fc1": 235200, "fc2": 30000, "output": 1000}


def test_conv_net_on_tabular_data_is_a_clear_error():
    with pytest.raises(ConfigError) as err:
        make_plan(ExperimentConfig(dataset="wine", arch="conv-2"))
    assert err.value.field == "arch" and "tabular" in err.value.message


def test_a_run_emits_the_promised_events_and_tables():
    events = list(run_experiment(ExperimentConfig(**TINY)))
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)
    assert [e.round for e in events if isinstance(e, RoundCommitted)] == [0, 1, 2]
    res = collect(events)
    rounds = res.rounds_df()
    assert list(rounds["variant"]) == ["ticket", "ticket", "reinit", "random", "ticket", "reinit", "random"]
    planned = events[0].planned_remaining
    ticket = rounds[rounds.variant == "ticket"]
    assert np.allclose(ticket["weights_remaining"], planned, atol=1e-3)
    assert ticket["weights_remaining"].is_monotonic_decreasing and ticket["weights_remaining"].iloc[0] == 1.0
    # every variant of a round has the same number of weights in every layer
    layers = res.layers_df()
    per_variant = layers[layers["round"] == 2].groupby("variant")["remaining"].apply(list)
    assert per_variant["ticket"] == per_variant["reinit"] == per_variant["random"]
    # masks: the ticket's are nested across rounds, reinit shares them, random does not
    m1, m2 = res.masks[(0, 1, "ticket")], res.masks[(0, 2, "ticket")]
    assert all((m2[l] <= m1[l]).all() for l in m1)
    assert all((res.masks[(0, 2, "reinit")][l] == m2[l]).all() for l in m2)
    assert any((res.masks[(0, 2, "random")][l] != m2[l]).any() for l in m2)
    # the early-stopping iteration is the evaluation point of minimum validation loss
    curves = res.curves_df()
    for _, row in rounds.iterrows():
        c = curves[(curves["round"] == row["round"]) & (curves.variant == row.variant)]
        best = c.loc[c.val_loss.idxmin()]
        assert row.early_stop_iteration == best.iteration
        assert row.early_stop_test_accuracy == pytest.approx(best.test_accuracy)
    assert rounds["test_accuracy"].between(0.3, 1).all()  # far above chance (0.1) even after one short epoch


def test_same_config_and_seed_give_identical_numbers():
    a = collect(run_experiment(ExperimentConfig(**TINY))).rounds_df().drop(columns=TIMINGS)
    b = collect(run_experiment(ExperimentConfig(**TINY))).rounds_df().drop(columns=TIMINGS)
    pd.testing.assert_frame_equal(a, b)
    c = collect(run_experiment(ExperimentConfig(**{**TINY, "seed": 1}))).rounds_df().drop(columns=TIMINGS)
    assert not np.allclose(a.test_accuracy, c.test_accuracy)


@pytest.mark.parametrize("reset", ["init", "rewind:5", "none"])
def test_resuming_from_a_checkpoint_equals_an_uninterrupted_run(reset):
    cfg = ExperimentConfig(**{**TINY, "rounds": 3, "reset": reset, "trials": 2})
    full = list(run_experiment(cfg))
    checkpoint = next(e.checkpoint for e in full if isinstance(e, RoundCommitted) and e.round == 1)
    from lth_core.engine.events import Checkpoint
    resumed = list(run_experiment(cfg, resume=Checkpoint.from_bytes(checkpoint.to_bytes())))
    rows = lambda evs: [(e.trial, e.round, e.variant, e.test_accuracy, e.early_stop_iteration)  # noqa: E731
                        for e in evs if isinstance(e, RoundFinished) and e.round >= 2]
    assert rows(resumed) == rows(full) and len(rows(full)) == 12


def test_one_shot_prunes_straight_to_the_target_once():
    res = collect(run_experiment(ExperimentConfig(**{**TINY, "rounds": None, "schedule": "one-shot", "target_remaining": 0.3})))
    rounds = res.rounds_df()
    assert sorted(rounds["round"].unique()) == [0, 1]
    assert rounds[rounds["round"] == 1]["weights_remaining"].iloc[0] == pytest.approx(0.3, abs=0.001)  # not a round's step below


def test_rewind_beyond_the_round_is_rejected_before_training():
    with pytest.raises(ConfigError) as err:
        make_plan(ExperimentConfig(**{**TINY, "reset": "rewind:100000"}))
    assert err.value.field == "reset"


def test_a_diverging_run_fails_with_a_one_line_reason():
    events = list(run_experiment(ExperimentConfig(**{**TINY, "hidden": (256, 256), "optimizer": "sgd", "lr": 5.0})))
    assert isinstance(events[-1], RunFailed)
    assert "NaN" in events[-1].reason and "\n" not in events[-1].reason


def test_cancelling_stops_between_steps():
    calls = []
    events = list(run_experiment(ExperimentConfig(**TINY), should_stop=lambda: len(calls) > 30 or calls.append(1)))
    assert type(events[-1]).__name__ == "RunCancelled"
    assert not any(isinstance(e, RoundCommitted) and e.round == 2 for e in events)


@pytest.mark.parametrize("arch", ["conv-2", "resnet-8"])
def test_conv_architectures_train_on_images_and_sequences(arch):
    for dataset in ("digits", "mnist1d"):
        res = collect(run_experiment(ExperimentConfig(dataset=dataset, arch=arch, rounds=1, iterations=20,
                                                      batch_size=32, controls=("random",))))
        assert len(res.rounds_df()) == 3



def test_a_busy_neighbour_process_is_seen_and_means_one_thread(monkeypatch):
    import subprocess
    import sys

    from lth_core.engine.cpu import CpuWatch, choose_threads

    monkeypatch.delenv("LTH_THREADS", raising=False)
    busy = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 3: pass"])
    try:
        watch = CpuWatch()
        others = watch.others_busy(min_window=1.0)
    finally:
        busy.kill()
    assert others is not None and others > 0.5
    assert choose_threads(others) == 1
    assert choose_threads(0.0) == (2 if (__import__("os").cpu_count() or 1) >= 2 else 1)
    monkeypatch.setenv("LTH_THREADS", "3")
    assert choose_threads(5.0) == 3


def test_the_benchmark_loops_run_and_report_rates():
    # a smoke test of `python -m lth_core bench`'s two loops (their speed is the benchmark's business)
    from lth_core.bench import REPEATS, dataloader_loop, engine_loop, loop_rates
    from lth_core.engine.data import load_dataset

    data = load_dataset("mnist-5k")
    x, y = torch.from_numpy(data.x_train[:600]), torch.from_numpy(data.y_train[:600])
    baseline, engine = dataloader_loop(x, y, batch=60, epochs=1), engine_loop(models=6, batch=60, epochs=1, trials=2)
    assert baseline[0] == 10 * 60 and engine[0] == 6 * 58 * 60  # samples: 600 examples; the train split's 3,500
    rates = loop_rates({"dataloader": baseline, "engine": engine})
    assert all(len(r) == REPEATS and r == sorted(r, reverse=True) and 0 < r[-1] for r in rates.values())


def test_the_recorded_config_is_fully_resolved_and_trains_the_same_networks():
    from lth_core.engine.lottery import resolved_config
    cfg = ExperimentConfig(**{**TINY, "hidden": None, "rounds": None, "epochs": None, "iterations": 20})
    events = list(run_experiment(cfg))
    recorded = events[0].config
    assert recorded["lr"] == 1.2e-3 and recorded["rounds"] == 5 and recorded["hidden"] == [300, 100]
    assert recorded["rate_fc"] == 0.2 and recorded["rate_output"] == 0.1 and recorded["eval_every"] == 2
    assert recorded["epochs"] is None and recorded["iterations"] == 20  # the budget given, not both
    again = list(run_experiment(ExperimentConfig.from_dict(recorded)))
    rows = lambda evs: [(e.trial, e.round, e.variant, e.test_accuracy) for e in evs if isinstance(e, RoundFinished)]  # noqa: E731
    assert rows(again) == rows(events)
    assert resolved_config(make_plan(ExperimentConfig.from_dict(recorded))).to_dict() == recorded  # a fixed point
    conv = resolved_config(make_plan(ExperimentConfig(dataset="digits", arch="conv-2", target_remaining=0.5)))
    assert conv.width == 0.25 and conv.rounds is None and conv.epochs == 3.0


@pytest.mark.parametrize("config", [dict(dataset="mnist-5k", arch="lenet-300-100", iterations=30, eval_every=10, rounds=1),
                                    dict(TINY, arch="conv-2", hidden=None, rounds=1)], ids=["lenet", "conv-2"])
def test_the_numbers_do_not_depend_on_how_busy_the_machine_is(monkeypatch, config):
    """The engine trains on 1 thread while another process keeps a core busy and on 2 otherwise. A
    thread count changes how MKL and oneDNN split their sums; that must not show in any number."""
    from lth_core.engine.cpu import CpuWatch
    monkeypatch.delenv("LTH_THREADS", raising=False)
    runs = []
    for busy in (0.0, 8.0):
        monkeypatch.setattr(CpuWatch, "others_busy", lambda self, min_window=0.1, busy=busy: busy)
        result = collect(run_experiment(ExperimentConfig(**{**config, "controls": ("reinit", "random")})))
        runs.append((result.rounds_df().drop(columns=TIMINGS), result.curves_df()))
    pd.testing.assert_frame_equal(runs[0][0], runs[1][0], check_exact=True)
    pd.testing.assert_frame_equal(runs[0][1], runs[1][1], check_exact=True)


def test_global_scope_refuses_a_per_type_rate_it_would_ignore():
    """With scope global the pooled hidden layers share prune_rate: a rate_fc of 0.5 would be silently
    ignored (and still recorded in config.json), so it is refused; 0 (leave the layers out) is kept."""
    with pytest.raises(ConfigError) as err:
        ExperimentConfig(**{**TINY, "scope": "global", "rate_fc": 0.5}).validated()
    assert err.value.field == "rate_fc" and "got 0.5" in err.value.message
    for fine in (None, 0.0, 0.2):
        ExperimentConfig(**{**TINY, "scope": "global", "rate_fc": fine}).validated()
    rounds = collect(run_experiment(ExperimentConfig(**{**TINY, "scope": "global", "rate_fc": 0.0, "rounds": 1})))
    layers = pd.DataFrame(rounds.layers)
    fc1 = layers[(layers["round"] == 1) & (layers["layer"] == "fc1")].iloc[0]
    assert fc1["remaining"] == fc1["total"]  # left out of the pool: never pruned


def test_importing_the_engine_lets_glibc_reuse_freed_blocks_instead_of_mapping_fresh_pages():
    # glibc maps every block over 128 kB afresh until a bigger one is freed; a conv net on a small dataset
    # then paid zeroed pages for its activations at each evaluation (2× slower), and only in a fresh process
    import subprocess
    import sys
    from pathlib import Path

    probe = """
import ctypes, sys
if sys.argv[1] == "engine":
    import lth_core
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype, libc.malloc.restype, libc.malloc.argtypes = Info, ctypes.c_void_p, [ctypes.c_size_t]
before = libc.mallinfo2().hblkhd
libc.malloc(4 << 20)
print(libc.mallinfo2().hblkhd - before)  # bytes of it given as a fresh mapping
"""
    if not hasattr(__import__("ctypes").CDLL(None), "mallinfo2"):
        pytest.skip("needs glibc 2.33 or later (mallinfo2)")

    def mapped(*args: str) -> int:
        return int(subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True,
                                  check=True, cwd=Path(__file__).resolve().parent.parent).stdout)

    assert mapped("bare") >= 4 << 20  # glibc's default, without the engine
    assert mapped("engine") == 0
