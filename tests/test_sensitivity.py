"""Per-layer sensitivity (lth_core.engine.sensitivity, lth_core.runs.sensitivity): one layer pruned at a time on a
real tiny network; exact counts, other layers untouched, the mask held while fine-tuning, a stopped measurement
resumed to the same numbers, rates suggested from validation accuracy only, and the CLI's bad input."""
import os
import subprocess
import sys

import pytest
import torch

from lth_core.engine.config import ExperimentConfig
from lth_core.engine.errors import ConfigError
from lth_core.engine.sensitivity import (LayerPoint, SensitivityConfig, SensitivityResult, kept_count,
                                         prune_one_layer, suggest_rates)
from lth_core.runs import sensitivity as S
from lth_core.runs.store import RunStore

TINY = dict(dataset="digits", arch="mlp", hidden=(32, 16), rounds=0, epochs=4, batch_size=32, seed=0)
FAST = SensitivityConfig(sparsities=(0.5, 0.9, 0.98), finetune_steps=20)


def _stored_run(config: dict) -> tuple[RunStore, str]:
    from lth_core.runs.recorder import claim, create_run
    from lth_core.runs.worker import execute

    store = RunStore()
    run_id = create_run(store, ExperimentConfig(**config), "tiny dense")
    assert execute(store, run_id, claim(store, run_id, pid=os.getpid())) == "finished"
    return store, run_id


@pytest.fixture(scope="module")
def dense_run(tmp_path_factory, dataset_cache):
    home = tmp_path_factory.mktemp("sens-home")
    os.symlink(dataset_cache, home / "cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LTH_HOME", str(home))
        store, run_id = _stored_run(TINY)
        full = S.measure(store, run_id, 0, FAST)
        yield home, run_id, full


def test_pruning_one_layer_leaves_the_others_untouched_with_exact_counts():
    g = torch.Generator().manual_seed(0)
    params = {"fc1.weight": torch.randn(30, 17, generator=g), "fc1.bias": torch.randn(30, generator=g),
              "fc2.weight": torch.randn(10, 30, generator=g)}
    for sparsity in (0.5, 0.7, 0.9, 0.98):
        pruned, mask = prune_one_layer(params, "fc1.weight", sparsity)
        total = 30 * 17
        assert int(mask.sum()) == kept_count(total, sparsity) == total - round(sparsity * total)
        assert int((pruned["fc1.weight"] == 0).sum()) == round(sparsity * total)
        assert pruned["fc2.weight"] is params["fc2.weight"] and pruned["fc1.bias"] is params["fc1.bias"]
        # the survivors are the largest magnitudes, unchanged
        kept = params["fc1.weight"].abs()[mask]
        assert kept.min() >= params["fc1.weight"].abs()[~mask].max()
        assert torch.equal(pruned["fc1.weight"][mask], params["fc1.weight"][mask])
    assert kept_count(5, 0.98) == 1  # a layer is never pruned away whole


def test_a_measurement_of_a_tiny_network(dense_run):
    home, run_id, full = dense_run
    assert full.complete and list(full.kinds) == ["fc1", "fc2", "output"]
    assert full.kinds == {"fc1": "fc", "fc2": "fc", "output": "output"}
    totals = {"fc1": 64 * 32, "fc2": 32 * 16, "output": 16 * 10}
    for layer, points in full.points.items():
        assert [p.sparsity for p in points] == [0.5, 0.9, 0.98]
        for p in points:
            assert p.total == totals[layer] and p.kept == totals[layer] - round(p.sparsity * totals[layer])
            for value in (p.val_pruned, p.test_pruned, p.val_finetuned, p.test_finetuned):
                assert 0.0 <= value <= 1.0
    assert 0.6 < full.dense_test <= 1.0 and 0.6 < full.dense_test_finetuned <= 1.0
    # pruning half of a layer by magnitude costs little; 98 % of the first layer costs a lot without retraining
    fc1 = {p.sparsity: p for p in full.points["fc1"]}
    assert fc1[0.5].test_pruned > full.dense_test - 0.1
    assert fc1[0.98].test_pruned < fc1[0.5].test_pruned
    assert fc1[0.98].test_finetuned > fc1[0.98].test_pruned  # fine-tuning recovers some of it
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LTH_HOME", str(home))
        kept, doc = S.stored(RunStore(), run_id, 0)
    assert kept.to_dict()["points"] == full.to_dict()["points"] and doc["complete"] is True
    assert "the same as the run" in doc["source"]  # the retrained dense network matched the stored one


def test_the_mask_is_held_while_fine_tuning(dense_run, monkeypatch):
    """The fine-tune goes through the engine's masked training loop with the pruned layer's mask: the pruned
    weights are still exactly zero at its end (TrainResult.pruned_max), for every sparsity."""
    from lth_core.engine import sensitivity as E

    home, run_id, _ = dense_run
    seen = []
    real = E.train

    def spy(net, params, masks, data, orders, settings, **kw):
        run = real(net, params, masks, data, orders, settings, **kw)
        try:
            while True:
                yield next(run)
        except StopIteration as stop:
            seen.append((list(masks), stop.value))
            return stop.value

    monkeypatch.setattr(E, "train", spy)
    monkeypatch.setenv("LTH_HOME", str(home))
    store = RunStore()
    S.measure(store, run_id, 0, SensitivityConfig(sparsities=(0.8,), finetune_steps=10))
    # the dense network fine-tuned alike first (no mask: the reference), then one layer's mask at a time
    assert [names for names, _ in seen] == [[], ["fc1.weight"], ["fc2.weight"], ["output.weight"]]
    for _, result in seen:
        assert result.zero_checks >= 1 and all(float(m.max()) == 0.0 for m in result.pruned_max)


def test_a_stopped_measurement_resumes_with_the_same_numbers(dense_run, monkeypatch):
    home, run_id, full = dense_run
    monkeypatch.setenv("LTH_HOME", str(home))
    store = RunStore()
    partial = full.to_dict()
    partial["points"] = {"fc1": partial["points"]["fc1"]}  # as a kill after the first layer leaves it
    partial["complete"] = False
    store.put_doc(run_id, S.doc_key(0), partial)
    said = []
    resumed = S.measure(store, run_id, 0, FAST, progress=said.append)
    assert any("1 of 3 layers kept" in line for line in said)
    assert [line for line in said if "done)" in line] == ["measured 2 of 3 layers (fc2 done)",
                                                          "measured 3 of 3 layers (output done)"]
    assert resumed.to_dict() == full.to_dict()
    # other settings do not reuse the kept layers
    other = S.measure(store, run_id, 0, SensitivityConfig(sparsities=(0.5, 0.9, 0.98), finetune_steps=0))
    assert other.points["fc1"][0].val_finetuned is None


def _result(val: dict[str, list[float]], dense_val: float = 0.9) -> SensitivityResult:
    sparsities = (0.5, 0.8, 0.9, 0.95)
    kinds = {"fc1": "fc", "fc2": "fc", "out": "output"}
    points = {l: [LayerPoint(l, kinds[l], s, 100, kept_count(100, s), v - 0.2, 0.0, v, 0.99)
                  for s, v in zip(sparsities, vals)] for l, vals in val.items()}
    return SensitivityResult(SensitivityConfig(sparsities), dense_val, 0.5, kinds, points)


def test_the_suggested_rates_come_from_validation_accuracy():
    result = _result({"fc1": [0.90, 0.90, 0.895, 0.85], "fc2": [0.90, 0.89, 0.80, 0.895], "out": [0.80] * 4})
    s = suggest_rates(result, rounds=10, tolerance=1.0)
    assert s.safe == {"fc1": 0.9, "fc2": 0.8, "out": 0.0}  # fc2 stops at its first drop, even if 95 % looks fine
    assert s.deciding == {"rate_fc": "fc2", "rate_output": "out"}
    assert s.rates["rate_fc"] == 0.14  # (1 - 0.14)^10 = 0.22 ≥ 0.2: never past the tolerated 80 %
    assert (1 - s.rates["rate_fc"]) ** 10 >= 0.2 > (1 - s.rates["rate_fc"] - 0.01) ** 10
    assert s.rates["rate_output"] == 0.0
    assert s.settings() == {"scope": "layerwise", "rate_fc": 0.14, "rate_output": 0.0}
    # said as every page says a tolerance (recommend.points_text): '2 points', never '2 point'
    from lth_core.analysis.sensitivity_view import suggestion_lines, table_text
    two = suggestion_lines(suggest_rates(result, rounds=10, tolerance=2.0))
    assert two[0].startswith("fc1 stays within 2 points of the dense network") and "2 points even at" in two[-1], two
    assert "tolerance 2 points):" in table_text(result, 10, 2.0)
    assert suggestion_lines(s)[0].startswith("fc1 stays within 1 point of")
    config = ExperimentConfig(rounds=10).replace(**s.settings())  # the config takes them as they are
    assert config.rate_for == {"fc": 0.14, "conv": 0.2, "output": 0.0}  # no conv layer: conv keeps prune_rate
    # test accuracy (0.99 everywhere above, 0.0 at no retraining) plays no part: the same from validation alone
    with pytest.raises(ConfigError, match="rounds"):
        suggest_rates(result, rounds=0)


@pytest.mark.parametrize("kwargs, field", [
    (dict(sparsities=(0.5, 1.0)), "sparsities"), (dict(sparsities=()), "sparsities"),
    (dict(sparsities=(0.5, 0.5)), "sparsities"), (dict(finetune_steps=-1), "finetune_steps"),
    (dict(finetune_steps=2.5), "finetune_steps")])
def test_bad_settings_name_the_field(kwargs, field):
    with pytest.raises(ConfigError) as err:
        SensitivityConfig(**kwargs).validated()
    assert err.value.field == field


@pytest.mark.parametrize("flags, words", [
    (["--sparsities", "50,120"], "sparsities: each must be between 0 % and 100 %"),
    (["--sparsities", "fifty"], "sparsities:"),
    (["--finetune-steps", "-3"], "finetune_steps: must be a whole number of iterations from 0"),
    (["--trial", "4"], "trial: must be one of run"),
    ([], "run: give --run ID, or config flags"),
])
def test_the_cli_rejects_bad_input_in_one_line(dense_run, flags, words):
    home, run_id, _ = dense_run
    args = flags if not flags else ["--run", run_id, *flags]
    done = subprocess.run([sys.executable, "-m", "lth_core", "sensitivity", *args], capture_output=True, text=True,
                          env={**os.environ, "LTH_HOME": str(home)}, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and words in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_show_prints_the_sensitivity_table(dense_run):
    home, run_id, full = dense_run
    done = subprocess.run([sys.executable, "-m", "lth_core", "show", run_id], capture_output=True, text=True,
                          env={**os.environ, "LTH_HOME": str(home)}, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "per-layer sensitivity" in out
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LTH_HOME", str(home))
        kept, _ = S.stored(RunStore(), run_id, 0)  # the last measurement of the run (the tests above change it)
    for p in kept.points["fc1"]:
        assert f"{100 * p.sparsity:7g}% {f'{p.kept:,} of {p.total:,}':>18} {100 * p.test_pruned:9.2f}%" in out
    assert "rate_fc = " in out and "--scope layerwise --rate-fc" in out


def test_a_measurement_killed_in_the_worker_resumes_without_redoing_its_layers(tmp_path, dataset_cache, monkeypatch):
    """The real background worker: kill -9 the task's process once a layer is kept, queue it again, and the
    finished layers are kept as they were while the rest is measured; the whole equals an unbroken measurement."""
    import signal
    import time

    from lth_core.runs import jobs, tasks

    home = tmp_path / "home"
    home.mkdir()
    os.symlink(dataset_cache, home / "cache")
    monkeypatch.setenv("LTH_HOME", str(home))
    store, run_id = _stored_run(dict(TINY, hidden=(128, 64, 32), epochs=2))
    slow = SensitivityConfig(sparsities=(0.5, 0.9), finetune_steps=150)  # a layer takes long enough to be killed in
    key = jobs.submit_sensitivity(run_id, 0, slow.sparsities, slow.finetune_steps)

    def wait(ok, what: str, limit: float = 300) -> None:
        deadline = time.time() + limit
        while not ok():
            assert time.time() < deadline, what
            time.sleep(0.05)

    def layers_kept() -> int:
        kept = S.stored(store, run_id, 0)
        return 0 if kept is None else len(kept[0].points)

    wait(lambda: layers_kept() >= 1, "no layer was kept")
    task = tasks.get(store, run_id, key)
    assert task.state == tasks.RUNNING and layers_kept() < 4, "finished before it could be killed"
    first = S.stored(store, run_id, 0)[0].points
    os.kill(task.pid, signal.SIGKILL)
    wait(lambda: tasks.get(store, run_id, key).state == tasks.INTERRUPTED, "the kill was not noticed")
    partial = S.stored(store, run_id, 0)[0]
    assert not partial.complete and all(partial.points[l] == first[l] for l in first)
    jobs.submit_sensitivity(run_id, 0, slow.sparsities, slow.finetune_steps)
    wait(lambda: tasks.get(store, run_id, key).state == tasks.DONE, "the resumed measurement did not finish")
    resumed, doc = S.stored(store, run_id, 0)
    assert resumed.complete and doc["complete"]
    assert tasks.get(store, run_id, key).share_done == 1.0  # the part done, of this attempt's layers
    assert all(resumed.points[l] == partial.points[l] for l in partial.points)
    store.put_doc(run_id, S.doc_key(0), None)  # an unbroken measurement, here in this process, for comparison
    assert S.measure(store, run_id, 0, slow).to_dict() == resumed.to_dict()


def test_the_cli_trains_a_dense_network_from_config_flags_then_measures_it(tmp_path, dataset_cache):
    home = tmp_path / "home"
    home.mkdir()
    os.symlink(dataset_cache, home / "cache")
    done = subprocess.run([sys.executable, "-m", "lth_core", "sensitivity", "--dataset", "digits", "--arch", "mlp",
                           "--hidden", "16", "--epochs", "2", "--rounds", "4", "--controls", "reinit",
                           "--sparsities", "90,50", "--finetune-steps", "5"], capture_output=True, text=True,
                          env={**os.environ, "LTH_HOME": str(home)}, timeout=300)
    assert done.returncode == 0, done.stderr
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LTH_HOME", str(home))
        store = RunStore()
        (run_id,) = store.list_runs()["id"]
        info = store.get_run(run_id)
        kept, _ = S.stored(store, run_id, 0)
    # a stored run of the dense network only (round 0, no controls), then its measurement kept with it
    assert info.status == "finished" and info.config.rounds == 0 and info.config.controls == ()
    assert info.name == "dense mlp on digits (for sensitivity)"
    assert kept.complete and kept.config == SensitivityConfig((0.5, 0.9), 5)
    assert f"kept with run {run_id} as sensitivity/0/0" in done.stdout
    assert "over 4 rounds" in done.stdout  # the rounds the flags asked for, not the dense run's 0
