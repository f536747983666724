"""The deployment bench: what a ticket buys, measured. Asserts on structure and exact values (sizes,
accuracies, the structured net's function), never on timings."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lth_core.analysis.deploy_bench import (BATCHES, DeployBench, FileSize, MachineInfo, Timing, choose_round, format_bench,
                                   run_deploy_bench, summary)
from lth_core.engine.errors import ConfigError

from conftest import ROOT
from test_exports import stored_runs  # noqa: F401  (the fixture: tiny real runs in a store)

TIMED = {"dense": ["pytorch", "onnxruntime", "onnxruntime int8"],
         "ticket": ["pytorch", "onnxruntime", "onnxruntime int8", "pytorch CSR", "structured", "structured onnxruntime"]}
EXACT = ["pytorch", "pytorch CSR", "structured"]  # same weights, same function: the engine's predictions


@pytest.fixture(scope="module")
def mlp_bench(stored_runs):  # noqa: F811
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LTH_HOME", str(stored_runs["home"]))
        return run_deploy_bench(stored_runs["store"], stored_runs["mlp"], round=2, repeats=3, threads=1,
                                densities=(0.5, 0.05))


def test_bench_measures_every_file_of_both_networks(mlp_bench):
    b = mlp_bench
    for network in ("dense", "ticket"):
        for fmt in ("fp32 .pt", "bitmask .npz", "bitmask int8 .npz", "CSR .npz", "CSR int8 .npz", "ONNX", "ONNX int8"):
            for gz in (False, True):
                assert b.file_bytes(network, fmt, gz) > 0, (network, fmt, gz)
    # a sparse ticket's bitmask file holds fewer values than the dense network's; int8 is smaller than fp32
    assert b.file_bytes("ticket", "bitmask .npz", False) < b.file_bytes("dense", "bitmask .npz", False)
    assert b.file_bytes("ticket", "bitmask int8 .npz", False) < b.file_bytes("ticket", "bitmask .npz", False)
    assert b.file_bytes("ticket", "structured fp32 .pt", False) > 0


def test_bench_accuracies_are_the_engines(mlp_bench, stored_runs):  # noqa: F811
    b = mlp_bench
    rounds = stored_runs["store"].rounds(b.run_id)
    stored = rounds[(rounds["trial"] == 0) & (rounds["variant"] == "ticket")].set_index("round")["test_accuracy"]
    assert b.accuracy("ticket", "engine") == pytest.approx(stored[2], abs=1e-9)
    assert b.accuracy("dense", "engine") == pytest.approx(stored[0], abs=1e-9)
    assert "the same as the run" in b.ticket_source and "the same as the run" in b.dense_source
    by = {(a.network, a.variant): a for a in b.accuracies}
    for network, variants in TIMED.items():
        for variant in variants:
            assert 0 < by[(network, variant)].accuracy <= 1
    for variant in EXACT:  # the structured net computes the same function: the same predictions
        a = by.get(("ticket", variant)) or by[("dense", variant)]
        assert a.agreement == 1.0 and a.accuracy == b.accuracy(a.network, "engine"), variant
    assert by[("dense", "pytorch")].agreement == 1.0
    for network in ("dense", "ticket"):
        assert by[(network, "onnxruntime")].agreement >= 0.99  # float32 in another runtime: a tie may flip
        assert 0 <= by[(network, "onnxruntime int8")].agreement <= 1


def test_bench_times_every_variant_at_both_batch_sizes(mlp_bench):
    b = mlp_bench
    for network, variants in TIMED.items():
        for variant in variants:
            for batch in BATCHES:
                t = b.timing(network, variant, batch)
                assert t is not None and t.repeats == 3, (network, variant, batch)
                assert 0 < t.q1_ms <= t.median_ms <= t.q3_ms and t.cpu_ms >= 0
    assert b.machine.threads == 1 and b.machine.cores >= 1 and b.machine.torch and b.machine.onnxruntime


def test_bench_structured_units_and_break_even(mlp_bench):
    b = mlp_bench
    units = {u.layer: u for u in b.units}
    assert list(units) == ["input", "fc1", "fc2", "output"]
    assert units["fc1"].before == 32 and units["fc2"].before == 16 and units["output"].before == units["output"].after == 10
    assert all(0 <= u.after <= u.before for u in b.units)
    shapes = {(p.layer, p.shape) for p in b.break_even}
    assert shapes == {("fc1", (32, 64)), ("fc2", (16, 32)), ("output", (10, 16))}
    assert len(b.break_even) == 3 * 2 * len(BATCHES)
    assert set(b.layer_density) == {"fc1", "fc2", "output"} and all(0 < d < 1 for d in b.layer_density.values())


def test_bench_round_trips_through_json(mlp_bench):
    again = DeployBench.from_dict(json.loads(json.dumps(mlp_bench.to_dict())))
    assert again == mlp_bench
    assert format_bench(again) == format_bench(mlp_bench)
    assert mlp_bench.summary.startswith(f"At {100 * mlp_bench.weights_remaining:.1f} % of weights the ticket is ")
    # the load while timing is kept with the result (the cores others kept busy, the highest load average)
    m = mlp_bench.machine
    assert 0 <= m.others_busy <= m.cores + 0.5 and m.load_during >= 0 and "while timing" in m.label()


def _bench_with(times: dict[tuple[str, str, int], float], load: float = 0.0) -> DeployBench:
    machine = MachineInfo("cpu", 2, 1, "2.13.0", "1.32.0", "linux", load)
    b = DeployBench("r", "n", "mlp", "digits", 0, 3, 0.07, 1.0, True, "retrained", "retrained", machine)
    b.files = [FileSize("dense", "fp32 .pt", True, 960_000), FileSize("ticket", "bitmask .npz", True, 100_000),
               FileSize("ticket", "CSR .npz", True, 120_000)]
    b.timings = [Timing(n, v, batch, ms, ms, ms, 5, ms / 2) for (n, v, batch), ms in times.items()]
    return b


def test_summary_says_what_the_numbers_say():
    b = _bench_with({("dense", "pytorch", 1): 0.04, ("dense", "pytorch", 256): 1.6,
                     ("ticket", "pytorch CSR", 1): 0.041, ("ticket", "pytorch CSR", 256): 1.0,
                     ("ticket", "structured", 1): 0.036, ("ticket", "structured", 256): 1.45})
    from lth_core.engine.structured import UnitCount
    b.units = [UnitCount("fc1", 300, 280), UnitCount("fc2", 100, 79), UnitCount("output", 10, 10)]
    text = summary(b)
    assert text.startswith("At 7.0 % of weights the ticket is 9.6× smaller gzipped (bitmask .npz, fp32)")
    assert "At batch 256 it runs 1.6× faster than dense with CSR on this CPU, and no faster at batch 1." in text
    assert "Removing its 41 dead units makes it 1.1× faster at every batch size." in text
    busy = _bench_with({("dense", "pytorch", 1): 1.0, ("ticket", "pytorch CSR", 1): 1.0}, load=9.0)
    assert busy.by_cpu_time and "CPU time" in summary(busy)


def test_a_bench_timed_under_heavy_load_says_its_ratios_are_not_reliable():
    """Timed while others kept the cores busy, a bench read 'CSR 30× slower' as a fact; now its load while timing
    is stored and the sentences say plainly, before the speeds, that they are not reliable. A bench stored before
    the load was recorded reads as before."""
    b = _bench_with({("dense", "pytorch", 1): 0.04, ("dense", "pytorch", 256): 1.6,
                     ("ticket", "pytorch CSR", 1): 1.2, ("ticket", "pytorch CSR", 256): 48.0})
    b.machine.others_busy, b.machine.load_during = 1.9, 9.3
    assert b.overloaded
    text = summary(b)
    words = ("Measured under heavy load (other processes kept 1.9 of its 2 cores busy, load average up to 9.3): the "
             "latencies and speed ratios are not reliable")
    assert words in text and "measure again when the machine is quieter" in text
    assert text.index(words) < text.index("At batch 256")  # said before the ratios it qualifies
    assert f"warning: {words}" in format_bench(b)
    b.machine.others_busy, b.machine.load_during = 0.4, 3.0  # a core and more free: the timings stand
    assert not b.overloaded and b.load_words() is None and "heavy load" not in summary(b)
    b.machine.others_busy, b.machine.load_during = None, 5.0  # no CpuWatch figure: the load average decides
    assert b.overloaded and "(load average up to 5.0)" in summary(b)
    old = b.to_dict()
    del old["machine"]["others_busy"], old["machine"]["load_during"]
    again = DeployBench.from_dict(json.loads(json.dumps(old)))
    assert again.machine.load_during is None and not again.overloaded and "heavy load" not in summary(again)
    assert "while timing" not in again.machine.label()


def test_summary_says_what_onnx_int8_does_in_plain_sentences():
    """The numbers of a real LeNet bench (round 10, busy machine): int8 in ONNX Runtime is the fastest way at both
    batch sizes, but as fast for the dense network, and its accuracy is 0.1 point higher. Before, the page read
    'Fastest here: onnxruntime int8 at batch 1 (2.4× faster), as fast for the dense network; ...' and
    'ONNX Runtime's int8 quantisation changes 0.1 points of test accuracy'."""
    from lth_core.analysis.deploy_bench import VariantAccuracy, stored_summary
    b = _bench_with({("dense", "pytorch", 1): 0.040, ("dense", "pytorch", 256): 1.70,
                     ("dense", "onnxruntime int8", 1): 0.017, ("dense", "onnxruntime int8", 256): 0.30,
                     ("ticket", "pytorch", 1): 0.040, ("ticket", "pytorch", 256): 1.70,
                     ("ticket", "onnxruntime int8", 1): 0.0167, ("ticket", "onnxruntime int8", 256): 0.298})
    b.accuracies = [VariantAccuracy("ticket", "onnxruntime", 0.917, 0.999),
                    VariantAccuracy("ticket", "onnxruntime int8", 0.918, 0.99)]
    text = summary(b)
    assert ("The fastest way to run the ticket here is ONNX Runtime with int8 dynamic quantisation: 2.4× faster than "
            "the dense network in dense PyTorch at batch 1 and 5.7× faster at batch 256, but the dense network run the "
            "same way is as fast, so that gain comes from the runtime, not from pruning.") in text
    assert ("Int8 quantisation in ONNX Runtime raises the ticket's test accuracy by 0.10 points (91.80 % against "
            "91.70 % in fp32).") in text
    assert "onnxruntime int8" not in text and "Fastest here" not in text and "changes" not in text
    b.accuracies[1] = VariantAccuracy("ticket", "onnxruntime int8", 0.913, 0.99)
    assert "costs the ticket 0.40 points of test accuracy (91.30 % against 91.70 % in fp32)." in summary(b)
    b.accuracies[1] = VariantAccuracy("ticket", "onnxruntime int8", 0.917, 1.0)
    assert "leaves the ticket's test accuracy at 91.70 %, as in fp32." in summary(b)
    # the ticket faster than the dense network run the same way: the gain is the pruning's too, so no "but"
    b.timings = [t for t in b.timings if t.network == "ticket" or t.variant == "pytorch"]
    assert "but" not in summary(b).split("The fastest way")[1].split(".")[0]
    # a stored bench is said again in this version's words, whatever text it was stored with
    assert stored_summary({**b.to_dict(), "summary": "Fastest here: onnxruntime int8"}) == summary(b)
    # one dead unit is one unit
    from lth_core.engine.structured import UnitCount
    b.units = [UnitCount("fc1", 300, 300), UnitCount("fc2", 100, 99), UnitCount("output", 10, 10)]
    assert "Removing its 1 dead unit makes it" in summary(b)


def test_default_round_is_the_recommended_one():
    rounds = pd.DataFrame({"trial": 0, "round": [0, 1, 2, 3], "variant": "ticket",
                           "weights_remaining": [1.0, 0.8, 0.64, 0.51], "test_accuracy": [0.90, 0.905, 0.893, 0.85]})
    assert choose_round(rounds, None, "r") == (2, True)
    assert choose_round(rounds, 1, "r") == (1, False)
    with pytest.raises(ConfigError, match="round"):
        choose_round(rounds, 0, "r")
    with pytest.raises(ConfigError, match="--round"):
        choose_round(rounds.assign(test_accuracy=[0.9, 0.5, 0.5, 0.5]), None, "r")


def test_cli_deploy_prints_its_table_for_a_lenet_run(tmp_path, dataset_cache):
    """A finished LeNet-300-100 run on mnist-5k (tiny budget) through the command line."""
    home = tmp_path / "home"
    home.mkdir()
    os.symlink(dataset_cache, home / "cache")
    env = dict(os.environ, LTH_HOME=str(home))

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "lth_core", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=600, env=env)

    proc = cli("run", "--store", "--quiet", "--dataset", "mnist-5k", "--arch", "lenet-300-100", "--rounds", "1",
               "--iterations", "30", "--prune-rate", "0.5")
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stderr.split("recording as run ")[1].split()[0]
    proc = cli("deploy", run_id, "--round", "1", "--repeats", "2", "--threads", "1", "--json", str(tmp_path / "b.json"))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"run {run_id}" in out and "lenet-300-100 on mnist-5k, trial 0, round 1 (" in out
    for text in ("fp32 .pt", "bitmask .npz", "CSR .npz", "ONNX int8", "pytorch CSR", "structured onnxruntime",
                 "fc1 300×784 batch 256", "machine: ", "1 thread", "the same as the run"):
        assert text in out, text
    bench = DeployBench.from_dict(json.loads((tmp_path / "b.json").read_text()))
    assert bench.round == 1 and bench.arch == "lenet-300-100" and bench.summary in out
    assert bench.accuracy("ticket", "structured") == bench.accuracy("ticket", "engine")
    from lth_core.runs.store import RunStore
    with RunStore(home / "runs.sqlite") as store:  # kept with the run, as the Deploy page reads it
        assert store.doc(run_id, "deploy/1/0") == json.loads((tmp_path / "b.json").read_text())
    assert f"kept with run {run_id} as deploy/1/0" in out
    bad = cli("deploy", run_id, "--round", "5")
    assert bad.returncode == 2 and bad.stderr.startswith("error: round:") and len(bad.stderr.strip().splitlines()) == 1


def test_the_latency_table_shows_the_spread_also_when_it_compares_cpu_times():
    """Issue 11, defect 5: on a busy machine the page's latency tables showed CPU medians only, while the report
    shows the interquartile range; now every row shows the spread of its timed calls too."""
    from lth_core.analysis.deploy_view import latency_caption, latency_table

    for load in (0.0, 9.0):
        b = _bench_with({("dense", "pytorch", 1): 1.0, ("ticket", "pytorch CSR", 1): 2.0}, load=load)
        b.timings = [Timing("dense", "pytorch", 1, 1.0, 0.8, 1.3, 5, 0.5),  # half the IQR: 25 % of the median
                     Timing("ticket", "pytorch CSR", 1, 2.0, 1.8, 2.2, 5, 1.0)]  # 10 %
        assert b.by_cpu_time == (load > 0)
        table = latency_table(b, 1)
        assert list(table.columns) == ["network", "variant", "ms per call", "× dense"]  # four: it fits 1024 px
        from lth_core.analysis.deploy_bench import variant_name
        cells = dict(zip(table["variant"], table["ms per call"]))
        dense, csr = cells[variant_name("pytorch")], cells[variant_name("pytorch CSR")]
        assert dense == ("0.5 ±25 %" if b.by_cpu_time else "1 ±25 %") and csr.endswith(" ±10 %"), cells
        assert "half the interquartile range" in latency_caption(b)


def test_deploy_page_offers_every_export_format_with_its_size(mlp_bench, stored_runs, monkeypatch):  # noqa: F811
    """After an export (the worker's own task code, run in this process), the Deploy page offers a download for
    every format of the registry, the int8 ONNX model and the CSR tensors among them, each labelled with what
    the file is for and its size."""
    from lth_core.analysis.deploy_view import size_text
    from lth_core.analysis.exports import EXPORT_FORMATS
    from lth_core.runs import tasks

    from app_helpers import page
    from test_jobs import processes_of, wait_for

    monkeypatch.setenv("LTH_HOME", str(stored_runs["home"]))
    store, run_id = stored_runs["store"], mlp_bench.run_id
    store.put_doc(run_id, "deploy/2/0", mlp_bench.to_dict())  # the page shows downloads below a stored bench
    task = tasks.get(store, run_id, tasks.submit(store, run_id, "export", 2, 0))
    assert tasks.execute(store, task, tasks.claim(store, task, pid=os.getpid())) == tasks.DONE
    folder = Path(store.doc(run_id, "export/2/0")["folder"])
    assert {"ticket_int8.onnx", "ticket_csr.pt"} <= {f.name for f in folder.iterdir()}

    at = page("deploy", run=run_id, round="2", trial="0")
    assert not at.exception, at.exception
    labels = [d.proto.label for d in at.get("download_button")]
    assert len(labels) == len(EXPORT_FORMATS) + 2, labels  # every format, README.txt and ticket.json
    for fmt in EXPORT_FORMATS.values():
        expected = f"{fmt.label} · {size_text((folder / fmt.file).stat().st_size)}"
        assert expected in labels, (expected, labels)
    assert any(label.startswith("ONNX int8") for label in labels) and any(label.startswith("CSR .pt") for label in labels)

    # an export prepared before these formats existed: its files are offered, and "Prepare the files again" queues
    # the export that adds the missing ones
    for name in ("ticket_int8.onnx", "ticket_csr.pt"):
        (folder / name).unlink()
    at = page("deploy", run=run_id, round="2", trial="0")
    assert not at.exception, at.exception
    assert len(at.get("download_button")) == len(EXPORT_FORMATS)
    assert any("ticket_int8.onnx, ticket_csr.pt" in c.value for c in at.caption)
    (again,) = [b for b in at.button if b.label == "Prepare the files again"]
    key = tasks.task_key("export", 2, 0)
    try:  # the button queues the export and starts the real background worker, which does it
        again.click().run()
        assert tasks.get(store, run_id, key).state in (tasks.QUEUED, tasks.RUNNING, tasks.DONE)
        wait_for("the export", lambda: not tasks.get(store, run_id, key).active, timeout=300)
    finally:
        for pid in processes_of(store.path):  # the scheduler this test started (it would linger a while)
            os.kill(pid, signal.SIGKILL)
    assert tasks.get(store, run_id, key).state == tasks.DONE, tasks.get(store, run_id, key).error
    at = page("deploy", run=run_id, round="2", trial="0")
    assert len(at.get("download_button")) == len(EXPORT_FORMATS) + 2
