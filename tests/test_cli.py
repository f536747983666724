"""The command-line contract: files and columns written, and bad input → status 2 with one line."""
import io
import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from lth_core.engine.results import unpack_mask

from conftest import ROOT

TINY = ["--dataset", "digits", "--arch", "mlp", "--hidden", "32", "--rounds", "2", "--epochs", "1",
        "--batch-size", "32", "--controls", "reinit,random", "--trials", "2", "--seed", "3"]


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lth_core", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_run_writes_the_documented_files(tmp_path):
    out = tmp_path / "out"
    proc = cli("run", *TINY, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["hidden"] == [32] and config["controls"] == ["reinit", "random"] and config["seed"] == 3
    rounds = pd.read_csv(out / "rounds.csv")
    for col in ["trial", "round", "variant", "weights_remaining", "test_accuracy", "early_stop_iteration",
                "early_stop_test_accuracy", "train_seconds", "eval_seconds"]:
        assert col in rounds.columns
    assert (rounds["train_seconds"] > 0).all() and (rounds["eval_seconds"] > 0).all()
    assert len(rounds) == 2 * (1 + 2 * 3)
    assert set(rounds["variant"]) == {"ticket", "reinit", "random"}
    assert rounds["weights_remaining"].between(0, 1).all() and rounds["test_accuracy"].between(0, 1).all()
    layers = pd.read_csv(out / "layers.csv")
    assert list(layers.columns) == ["trial", "round", "variant", "layer", "total", "remaining"]
    assert set(layers["layer"]) == {"fc1", "output"}
    curves = pd.read_csv(out / "curves.csv")
    assert list(curves.columns) == ["trial", "round", "variant", "iteration", "train_loss", "val_loss",
                                    "val_accuracy", "test_accuracy"]
    # a ticket can be rebuilt from the mask file and the initial weights
    init = np.load(out / "masks" / "trial1_init.npz")
    masks = np.load(out / "masks" / "trial1_round2.npz")
    fc1 = unpack_mask(masks["ticket/fc1"], masks["ticket/fc1.shape"])
    assert fc1.shape == init["fc1.weight"].shape == (32, 64)
    row = layers[(layers.trial == 1) & (layers["round"] == 2) & (layers.variant == "ticket") & (layers.layer == "fc1")]
    assert fc1.sum() == row["remaining"].iloc[0]
    # the closing table: the ticket first, then the controls; round 0 (dense) has no controls
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("test accuracy (mean of 2 trials); es_iter: the ticket's early-stopping iteration")
    assert lines[1].split() == ["round", "remaining", "ticket", "reinit", "random", "es_iter"]
    assert lines[2].split()[:5] == ["0", "100.00%", f"{100 * rounds[rounds['round'] == 0].test_accuracy.mean():.2f}%", "-", "-"]
    mean = rounds[(rounds["round"] == 2)].groupby("variant").test_accuracy.mean()
    assert lines[4].split()[2:5] == [f"{100 * mean[v]:.2f}%" for v in ("ticket", "reinit", "random")]


def test_config_file_with_flag_overrides(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"dataset": "digits", "arch": "mlp", "hidden": [16], "rounds": 1, "epochs": 1, "seed": 5}))
    proc = cli("run", "--config", str(cfg), "--rounds", "0", "--out", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    saved = json.loads((tmp_path / "o" / "config.json").read_text())
    assert saved["rounds"] == 0 and saved["seed"] == 5 and saved["hidden"] == [16]


def test_flag_replaces_the_files_either_or_setting(tmp_path):
    """A config.json written by `run --out` holds rounds and epochs; --target-remaining / --iterations
    on the command line take their place instead of clashing with them."""
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"dataset": "digits", "arch": "mlp", "hidden": [16], "rounds": 4, "epochs": 1.0}))
    proc = cli("run", "--config", str(cfg), "--target-remaining", "0.7", "--iterations", "5", "--quiet",
               "--out", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    saved = json.loads((tmp_path / "o" / "config.json").read_text())
    assert saved["rounds"] is None and saved["target_remaining"] == 0.7
    assert saved["epochs"] is None and saved["iterations"] == 5
    # both halves given as flags is still refused
    proc = cli("run", "--config", str(cfg), "--epochs", "1", "--iterations", "5", timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("error: epochs: give epochs or iterations, not both")


@pytest.mark.parametrize("args, field", [
    (["--dataset", "no-such-set"], "dataset"),
    (["--arch", "transformer"], "arch"),
    (["--prune-rate", "1.5"], "prune_rate"),
    (["--prune-rate", "0"], "prune_rate"),
    (["--rounds", "-1"], "rounds"),
    (["--epochs", "-2"], "epochs"),
    (["--rounds", "many"], "rounds"),
    (["--dataset", "csv:/no/such/file.csv"], "dataset"),
    (["--dataset", "wine", "--arch", "conv-2"], "arch"),
    (["--config", "/no/such/config.json"], "config"),
    (["--config", "/"], "config"),  # a folder, not a file
    (["--controls", "reinit,shuffle"], "controls"),
    (["--name", "baseline"], "name"),  # a name is kept only in the run store: without --store it would be lost
])
def test_bad_input_exits_2_with_one_line_naming_the_field(args, field):
    proc = cli("run", *args, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {field}:"), proc.stderr
    assert "Traceback" not in proc.stderr


def test_csv_without_the_label_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,y\n" + "\n".join(f"{i},{i % 3},{i % 2}" for i in range(60)))
    proc = cli("run", "--dataset", f"csv:{path}", "--label-col", "target", timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("error: label_col:") and "y" in proc.stderr


def test_datasets_and_archs_list_what_exists():
    datasets = cli("datasets")
    assert datasets.returncode == 0
    for name in ["mnist-5k", "digits", "mnist1d", "breast-cancer", "wine", "moons", "spirals", "csv:", "idx:", "cifar10:", "npz:"]:
        assert name in datasets.stdout
    assert "3500" in datasets.stdout  # mnist-5k's train split
    archs = cli("archs")
    assert archs.returncode == 0
    for name in ["lenet-300-100", "mlp", "conv-2", "conv-4", "conv-6", "resnet-8"]:
        assert name in archs.stdout
    assert "266,200" in archs.stdout


def test_out_must_be_a_new_or_empty_folder(tmp_path):
    """Writing into a folder that holds an earlier run would mix its files (trial1_*.npz of a 2-trial
    run) with the new ones; both `run --out` (before training) and `export --out` refuse it."""
    used = tmp_path / "used"
    used.mkdir()
    (used / "rounds.csv").write_text("old")
    proc = cli("run", *TINY, "--out", str(used), timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""  # refused before training
    assert proc.stderr.strip().splitlines() == [f"error: out: {used} is not empty; give a new or empty folder "
                                                f"(or remove {used} first)"]
    assert (used / "rounds.csv").read_text() == "old"
    proc = cli("run", *TINY, "--out", str(used / "rounds.csv"), timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("error: out: ") and "is a file" in proc.stderr
    # (a read-only folder would not do: the tests may run as root)
    for out, why in [("", "got an empty name"), ("/proc/lth-explorer-test/out", "cannot write to"),
                     (str(used / "rounds.csv" / "x"), "cannot write to")]:
        proc = cli("run", *TINY, "--out", out, timeout=60)  # found before training, not after it
        assert proc.returncode == 2 and proc.stdout == "", (out, proc.stderr)
        assert proc.stderr.startswith("error: out: ") and why in proc.stderr and len(proc.stderr.splitlines()) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = cli("run", "--dataset", "digits", "--arch", "mlp", "--hidden", "8", "--rounds", "1", "--epochs", "1",
               "--quiet", "--store", "--out", str(empty))
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stderr.split("recording as run ")[1].split()[0]
    proc = cli("export", run_id, "--out", str(empty), timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith(f"error: out: {empty} is not empty"), proc.stderr
    proc = cli("export", run_id, "--out", str(tmp_path / "fresh"), timeout=60)
    assert proc.returncode == 0 and (tmp_path / "fresh" / "masks" / "trial0_round1.npz").exists()
    assert proc.stdout.strip().endswith(f"masks/ of run {run_id} (finished, rounds 0-1 of 0-1)")


def test_runs_shows_the_last_finished_round_of_a_stopped_run(tmp_path):
    """A run cancelled in round r lists r - 1 (its last finished round, the one 'ticket acc' is of),
    not the round that was in flight."""
    from lth_core.runs.store import RunStore

    proc, run_id = stored_run_in_another_process(2, "--name", "to cancel")
    store = RunStore()
    try:
        assert cli("cancel", run_id, timeout=60).stdout.strip() == f"run {run_id}: cancelled"
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    last = int(store.rounds(run_id)["round"].max())
    # the cancelled `run --store` says so, and how to go on
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1] == (f"run cancelled in round {last + 1}: rounds 0-{last} are kept; "
                                            f"continue with: python -m lth_core resume {run_id}")
    listing = cli("runs", timeout=60).stdout.splitlines()
    assert listing[0].split()[:5] == ["id", "status", "last", "round", "training"]
    row = next(line for line in listing if line.startswith(run_id))
    acc = store.rounds(run_id).query("round == @last and variant == 'ticket'")["test_accuracy"].mean()
    assert row.split()[:4] == [run_id, "cancelled", f"{last}/30", f"{100 * acc:.2f}%"], row


def test_output_piped_into_head_ends_quietly():
    """`datasets | head -1`: the reader closes the pipe early; no 'internal: BrokenPipeError' line."""
    proc = subprocess.run(f"'{sys.executable}' -m lth_core datasets | head -c 10", shell=True, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout == "name      " and proc.stderr == ""


def test_resume_of_a_run_that_cannot_be_resumed_says_why(tmp_path):
    proc = cli("run", "--dataset", "digits", "--arch", "mlp", "--hidden", "8", "--rounds", "1", "--epochs", "1",
               "--quiet", "--store")
    run_id = proc.stderr.split("recording as run ")[1].split()[0]
    for extra in ([], ["--background"]):
        proc = cli("resume", run_id, *extra, timeout=60)
        assert proc.returncode == 2
        assert proc.stderr.strip().splitlines() == [
            f"error: run {run_id} is finished; only an interrupted, cancelled or failed run can be resumed"]


def test_help_texts_describe_each_command_and_the_defaults():
    def flat(proc):  # argparse wraps lines; compare with single spaces
        assert proc.returncode == 0, proc.stderr
        return " ".join(proc.stdout.split())

    run = flat(cli("run", "--help"))
    assert "--hidden HIDDEN hidden sizes of mlp, e.g. 300,100 (default: 300,100)" in run  # not 'none'
    assert "(default: none, the ticket only)" in run and "Run an experiment here, in the foreground" in run
    assert "~/.local/share/lth-explorer" in run and "$XDG_DATA_HOME/lth-explorer" in run  # as in the README
    for command, text in [("runs", "List the runs in the run store."), ("show", "A run's config, progress"),
                          ("resume", "Continue an interrupted, cancelled or failed run"),
                          ("datasets", "List the built-in datasets"), ("archs", "prunable weights")]:
        assert text in flat(cli(command, "--help")), command
    assert "--out DIR a new or empty folder for config.json" in flat(cli("export", "--help"))


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("columns", [50, 80, 200])
def test_progress_bar_never_wider_than_the_terminal(monkeypatch, columns):
    """A line wider than the terminal wraps, and every redraw (\\r) then leaves a stale line behind;
    the bar of round 10/10 with three variants used to be 84 characters and the round lines 100."""
    from lth_core.engine.events import Checkpoint, EvalPointEvent, RoundCommitted, RoundFinished, RoundStarted, RunStarted
    from lth_core.runs.progress import ProgressPrinter

    monkeypatch.setenv("COLUMNS", str(columns))
    out = _Terminal()
    progress = ProgressPrinter(stream=out)
    progress.update(RunStarted(config={}, rounds=10, planned_remaining=[], variants=["ticket", "reinit", "random"],
                               layers={}, iterations=174, device="cpu"))
    for rnd in (9, 10):
        models = [(0, "ticket"), (0, "reinit"), (0, "random")]
        progress.update(RoundStarted(round=rnd, weights_remaining=0.1, models=models))
        for it in (12, 174):
            progress.update(EvalPointEvent(0, rnd, "ticket", it, 0.1, 0.1, 0.9, 0.9))
        progress.update(RoundFinished(0, rnd, "ticket", 0.1083, 0.931, 0.93, 168, 0.93, 0.2, 0.7, 0.3, {}, {}))
        progress.update(RoundCommitted(rnd, Checkpoint(rnd, [])))
    progress.close()
    pieces = [p for line in out.getvalue().split("\n") for p in line.split("\r") if p]
    assert pieces and max(len(p) for p in pieces[1:]) <= columns - 1  # pieces[0]: the plain 'training on' line
    finished = [p.rstrip() for p in pieces if "% ticket" in p or "ticket test acc" in p]
    assert [p[:12] for p in finished] == ["round  9/10 ", "round 10/10 "]  # aligned
    assert all("93.10%" in p for p in finished)
    bars = [p for p in pieces if " it 174/174 " in p]
    assert bars and all(p.startswith("round 10/10 ") or p.startswith("round  9/10 ") for p in bars)
    if columns >= 80:
        assert any("[ticket+reinit+random] " + "█" * 10 in p for p in bars)


def test_the_readme_describes_what_run_out_writes(tmp_path):
    """The README's file table (column lists) and masks/README.txt's recipe, checked
    against a real run: rebuild the ticket with exactly the numpy call the recipe gives."""
    import re

    readme = (ROOT / "README.md").read_text()
    out = tmp_path / "out"
    proc = cli("run", "--dataset", "digits", "--arch", "mlp", "--hidden", "16", "--rounds", "1", "--quiet",
               "--controls", "random", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    for name in ("rounds", "layers", "curves"):
        documented = re.search(rf"^\| `{name}.csv` \| `([^`]+)` \|$", readme, re.M).group(1).split(", ")
        assert documented == list(pd.read_csv(out / f"{name}.csv").columns), name
    recipe = (out / "masks" / "README.txt").read_text()
    call = re.search(r"Unpack with: (.+)$", recipe, re.M).group(1)
    z, init = np.load(out / "masks" / "trial0_round1.npz"), np.load(out / "masks" / "trial0_init.npz")
    layers = pd.read_csv(out / "layers.csv").query("round == 1 and variant == 'ticket'")
    for layer in ("fc1", "output"):
        mask = eval(call.replace('"V/L"', f'"ticket/{layer}"').replace("prod(shape)", "np.prod(shape)"),
                    {"np": np, "z": z, "shape": z[f"ticket/{layer}.shape"]})
        ticket = init[f"{layer}.weight"] * mask
        assert ticket.shape == init[f"{layer}.weight"].shape
        assert np.count_nonzero(ticket) == layers.query("layer == @layer")["remaining"].iloc[0]


def test_a_run_deleted_while_training_in_the_foreground_says_so(tmp_path):
    """`delete ID` of a `run --store` training in another terminal: that run stops; it must not end with
    status 0 and a short table as if it had finished."""
    proc, run_id = stored_run_in_another_process(1)
    try:
        assert cli("delete", run_id, timeout=60).stdout.strip() == f"deleted run {run_id}"
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1
    last = err.strip().splitlines()[-1]
    assert re.fullmatch(f"error: run {run_id} was deleted from the store \\(or taken over by another process\\) "
                        r"while training; stopped after (round 0|rounds 0-\d+)", last), err
    assert "30" not in out.splitlines()[-1].split()[0]  # the table ends before the planned last round


@pytest.mark.parametrize("settings, field, says", [
    ({"reset": 5}, "reset", "expected text, e.g. 'init'; got 5"),
    ({"dataset": 5}, "dataset", "expected text, e.g. 'mnist-5k'; got 5"),
    ({"arch": "mlp", "width": 0.5, "dataset": "digits"}, "width", "applies to the conv and resnet architectures"),
    # strict types: a value of the wrong kind never reaches the store (a stored rounds of 2.5 broke every read)
    ({"rounds": 2.5}, "rounds", "expected a whole number; got 2.5"),
    ({"rounds": True}, "rounds", "expected a whole number; got True"),
    ({"trials": "2.5"}, "trials", "cannot read '2.5'; expected a whole number"),
    ({"width": True}, "width", "expected a number; got True"),
    ({"hidden": [1.7]}, "hidden", "expected comma-separated whole numbers"),
    ({"hidden": [True]}, "hidden", "expected comma-separated whole numbers"),
    ({"controls": [1]}, "controls", "expected comma-separated names"),
    ({"rate_fc": [1]}, "rate_fc", "expected a number; got [1]"),
    ({"lr": {}}, "lr", "expected a number; got {}"),
])
def test_a_config_file_with_a_wrong_kind_of_value_names_the_field(tmp_path, capsys, settings, field, says):
    from lth_core.cli import main
    path = tmp_path / "c.json"
    path.write_text(json.dumps(settings))
    assert main(["run", "--config", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {field}: ") and says in err[0]


def test_a_table_given_as_npz_points_to_csv(tmp_path, capsys):
    from lth_core.cli import main
    path = tmp_path / "table.csv"
    path.write_text("a,b\n1,2\n")
    assert main(["run", "--dataset", f"npz:{path}", "--arch", "mlp", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: dataset: cannot read") and "csv:PATH" in err and "allow_pickle" not in err


def stored_run_in_another_process(rounds_done: int, *flags: str) -> tuple[subprocess.Popen, str]:
    """A long `run --store` in its own process, as in another terminal, once it has finished
    `rounds_done` rounds: (the process, the run's id)."""
    import time

    from lth_core.runs.store import RunStore

    proc = subprocess.Popen([sys.executable, "-m", "lth_core", "run", "--dataset", "mnist-5k", "--rounds", "30",
                             "--epochs", "4", "--store", "--quiet", *flags],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store, deadline = RunStore(), time.monotonic() + 120
    while time.monotonic() < deadline:
        runs = store.list_runs()
        if not runs.empty and runs["rounds_done"].iloc[0] >= rounds_done:
            return proc, runs["id"].iloc[0]
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"the run did not finish {rounds_done} rounds in 120 s")


def test_ctrl_c_stops_a_run_and_keeps_its_finished_rounds(tmp_path):
    """Ctrl-C stops between two steps; the finished rounds are still written to --out and shown."""
    import signal
    import time

    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "lth_core", "run", "--dataset", "digits", "--arch", "mlp",
                             "--hidden", "64", "--rounds", "40", "--epochs", "4", "--out", str(out)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = ""
    deadline = time.monotonic() + 120
    while "round  2/40" not in err and time.monotonic() < deadline:  # one line per round (not a terminal)
        err += proc.stderr.readline()
    proc.send_signal(signal.SIGINT)
    stdout, rest = proc.communicate(timeout=60)
    err += rest
    assert proc.returncode == 130, err
    assert re.search(r"run cancelled in round (\d+): rounds 0-\1", err) or "rounds 0-" in err, err
    rounds, curves = pd.read_csv(out / "rounds.csv"), pd.read_csv(out / "curves.csv")
    kept = sorted(rounds["round"].unique())
    assert kept[:3] == [0, 1, 2] and kept == list(range(len(kept))) and len(kept) < 41
    assert sorted(curves["round"].unique()) == kept  # not the points of the round cut short
    assert (out / "masks" / f"trial0_round{kept[-1]}.npz").exists()
    assert "wrote " in stdout and f"{len(kept) - 1:>5}" in stdout  # the table of the kept rounds


def test_the_round_lines_show_the_mean_of_the_trials():
    from lth_core.engine.events import Checkpoint, RoundCommitted, RoundFinished, RoundStarted, RunStarted
    from lth_core.runs.progress import ProgressPrinter

    out = io.StringIO()
    progress = ProgressPrinter(stream=out)
    progress.update(RunStarted(config={}, rounds=1, planned_remaining=[], variants=["ticket"], layers={},
                               iterations=10, device="cpu"))
    progress.update(RoundStarted(round=1, weights_remaining=0.8, models=[(0, "ticket"), (1, "ticket")]))
    for trial, accuracy in ((0, 0.90), (1, 0.92)):
        progress.update(RoundFinished(trial, 1, "ticket", 0.8, accuracy, 0.9, 10, 0.9, 0.3, 0.1, 0.1, {}, {}))
    progress.update(RoundCommitted(1, Checkpoint(1, [])))
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("training on cpu: 1 pruning round after the dense round")
    assert "ticket test acc 91.00% (mean of 2 trials)" in lines[1]


def test_a_rewind_run_exports_its_rewind_point(tmp_path, lth_home):
    """With reset rewind:K the ticket restarts from the dense run's weights at iteration K: masks/ holds
    them (trialT_rewind.npz), from `run --out` and from `export` alike, so the ticket can be rebuilt."""
    args = ["--dataset", "digits", "--arch", "mlp", "--hidden", "16", "--rounds", "1", "--epochs", "1",
            "--batch-size", "32", "--reset", "rewind:3", "--quiet", "--store"]
    proc = cli("run", *args, "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stderr.split("recording as run ")[1].split()[0]
    assert cli("export", run_id, "--out", str(tmp_path / "export")).returncode == 0
    for folder in ("run", "export"):
        masks = tmp_path / folder / "masks"
        with np.load(masks / "trial0_init.npz") as init, np.load(masks / "trial0_rewind.npz") as rewind:
            assert sorted(rewind.files) == sorted(init.files) == ["fc1.bias", "fc1.weight", "output.bias", "output.weight"]
            assert all(rewind[n].shape == init[n].shape for n in init.files)
            assert not np.array_equal(rewind["fc1.weight"], init["fc1.weight"])  # 3 steps of training moved them
            if folder == "export":
                with np.load(tmp_path / "run" / "masks" / "trial0_rewind.npz") as first:
                    assert all(np.array_equal(first[n], rewind[n]) for n in rewind.files)
        assert "trial{T}_rewind.npz" in (masks / "README.txt").read_text()
    proc = cli("run", *args[:-4], "--quiet", "--out", str(tmp_path / "plain"))  # reset init: nothing to add
    assert proc.returncode == 0 and not (tmp_path / "plain" / "masks" / "trial0_rewind.npz").exists()


def test_whole_numbers_written_as_floats_are_still_read(tmp_path, capsys):
    """5.0 for 5 (what some tools write) and "300,100" / [32.0] for hidden stay accepted."""
    from lth_core import ExperimentConfig
    config = ExperimentConfig.from_dict({"rounds": 3.0, "trials": "2", "hidden": [32.0], "width": 1, "epochs": "2"})
    assert (config.rounds, config.trials, config.hidden, config.width, config.epochs) == (3, 2, (32,), 1.0, 2.0)
    assert type(config.rounds) is int and type(config.width) is float


@pytest.mark.parametrize("content", ["deep-list", "deep-object", "huge"])
def test_a_config_file_too_deep_or_too_big_is_refused_naming_config(tmp_path, capsys, content):
    from lth_core.cli import main
    path = tmp_path / "c.json"
    path.write_text({"deep-list": "[" * 100_000 + "]" * 100_000,
                     "deep-object": '{"a":' * 100_000 + "1" + "}" * 100_000,
                     "huge": json.dumps({"dataset": "digits", "pad": "x" * 2_000_000})}[content])
    assert main(["run", "--config", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: config: {path} is ") and "internal" not in err[0], err


def test_config_from_a_device_that_never_ends_is_cut_at_the_cap(capsys):
    """--config /dev/zero used to read until the memory ran out."""
    from lth_core.cli import main
    assert main(["run", "--config", "/dev/zero", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: config: /dev/zero is larger than 1 MB; expected a small JSON file of settings"]


def test_python_m_lth_core_freezes_its_imports_for_the_collector_and_keeps_the_exit_status():
    # `python -m lth_core` leaves PyTorch's ~200,000 objects out of Python's full collections and out of the
    # teardown at exit (1–2 s of a reference run on 2 cores); the command's exit status still comes through
    code = ("import gc, runpy, sys\n"
            "sys.argv = ['lth_core', 'run', '--rounds', 'x']\n"
            "try:\n"
            "    runpy.run_module('lth_core', run_name='__main__', alter_sys=True)\n"
            "except SystemExit as exc:\n"
            "    print(exc.code, gc.get_freeze_count())\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    status, frozen = proc.stdout.split()
    assert status == "2" and "rounds" in proc.stderr
    assert int(frozen) > 100_000  # torch's objects, and everything else the imports made


def test_a_cli_command_closes_the_store_so_sqlite_removes_its_write_ahead_log(tmp_path):
    # the store's connection is collected at exit (it is not frozen with the imports): SQLite checkpoints the
    # write-ahead log into the file and deletes it, so a deleted run's room is given back to the disk
    store = tmp_path / "runs.sqlite"
    done = cli("run", "--dataset", "digits", "--arch", "mlp", "--hidden", "16", "--rounds", "1", "--epochs", "1",
               "--quiet", "--store-path", str(store))
    assert done.returncode == 0, done.stderr
    assert store.exists() and not (tmp_path / "runs.sqlite-wal").exists()
