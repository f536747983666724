"""Sweeps on the local executor: the grid's checks, cells as ordinary runs tagged with their sweep, cancel
and resume, the summary across cells, and an uploaded dataset swept like a built-in one."""
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from lth_core.analysis.sweep_summary import accuracy_at, best_cell_sentence, summarize_cells
from lth_core.cli import main
from lth_core.engine.config import ExperimentConfig
from lth_core.engine.errors import ConfigError
from lth_core.engine.results import TIMING_COLUMNS
from lth_core.runs.store import RunStore
from lth_core.runs.sweep import MAX_CELLS, SWEEP_DOC, parse_grid, plan_cells, sweep_cells, sweep_summary

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--dataset", "moons", "--arch", "mlp", "--hidden", "16", "--iterations", "40", "--rounds", "2"]


def _cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, field, words", [
    (["--grid", "colour=red,blue"], "grid", "unknown field 'colour'"),
    (["--grid", "prune_rate="], "prune_rate", "no values"),
    (["--grid", "prune_rate=0.2,1.5"], "prune_rate", "must be in (0, 1); got 1.5 (in the cell prune_rate=1.5)"),
    (["--grid", "lr=0.01,abc"], "lr", "cannot read 'abc'"),
    (["--grid", "prune_rate=0.1,0.1"], "prune_rate", "twice"),
    (["--grid", "prune_rate=0.1", "--grid", "prune_rate=0.2"], "prune_rate", "appears twice"),
    (["--arch", "conv-2", "--grid", "hidden=300/100,100"], "hidden", "mlp architecture only, not conv-2"),
    (["--grid", "arch=mlp,conv-2", "--dataset", "wine"], "arch", "tabular"),
    (["--grid", "seed=" + ",".join(map(str, range(26))), "--grid", "prune_rate=" + ",".join(
        f"0.{i:02d}" for i in range(1, 21))], "grid", f"520 cells (26 × 20) is more than {MAX_CELLS}; add --yes"),
    (["--prune-rate", "0.2"], "grid", "give at least one --grid"),
])
def test_a_bad_grid_fails_before_anything_starts_with_one_line_naming_the_field(capsys, lth_home, argv, field, words):
    code, out, err = _cli(capsys, "sweep", *argv)
    assert code == 2 and out == ""
    assert err.startswith(f"error: {field}: ") and words in err and err.count("\n") == 1, err
    assert not (lth_home / "runs.sqlite").exists() or RunStore().list_runs().empty  # nothing was added


def test_a_grid_is_the_product_of_its_axes_over_the_base_and_yes_allows_a_big_one():
    base = ExperimentConfig(dataset="moons", arch="mlp", hidden=(16,), iterations=40, rounds=2)
    cells = plan_cells(base, [parse_grid("prune_rate=0.1,0.2"), parse_grid("reset=init,rewind:5"),
                              parse_grid("hidden=[[8],[16,8]]")], trials=3)
    assert [c.label for c in cells][:3] == ["prune_rate=0.1 reset=init hidden=8", "prune_rate=0.1 reset=init hidden=16/8",
                                             "prune_rate=0.1 reset=rewind:5 hidden=8"]
    assert len(cells) == 8 and {c.config.trials for c in cells} == {3}
    assert cells[1].config.hidden == (16, 8) and cells[1].config.iterations == 40
    # a grid over epochs replaces the base's iterations (the two are one setting)
    assert plan_cells(base, [parse_grid("epochs=1,2")])[1].config.epochs == 2.0
    # an explicit list of cells
    listed = plan_cells(base, cells=[{"prune_rate": 0.3}, {"lr": 0.01, "seed": 4}])
    assert [c.label for c in listed] == ["prune_rate=0.3", "lr=0.01 seed=4"]
    with pytest.raises(ConfigError, match="add --yes"):
        plan_cells(base, [parse_grid("seed=" + ",".join(map(str, range(501))))], check_fit=False)
    assert len(plan_cells(base, [parse_grid("seed=" + ",".join(map(str, range(501))))], yes=True, check_fit=False)) == 501


def _strip(rounds: pd.DataFrame) -> pd.DataFrame:
    return rounds.drop(columns=list(TIMING_COLUMNS)).reset_index(drop=True)


def test_a_local_sweep_makes_one_tagged_run_per_cell_with_the_numbers_of_a_plain_run(capsys, lth_home):
    code, out, err = _cli(capsys, "sweep", *TINY, "--trials", "2", "--grid", "prune_rate=0.2,0.5",
                          "--grid", "reset=init,rewind:5", "--name", "tiny")
    assert code == 0, err
    sweep_id = out.split()[1].rstrip(":")
    store = RunStore()
    cells = sweep_cells(store, sweep_id)
    assert list(cells["label"]) == ["prune_rate=0.2 reset=init", "prune_rate=0.2 reset=rewind:5",
                                    "prune_rate=0.5 reset=init", "prune_rate=0.5 reset=rewind:5"]
    assert set(cells["status"]) == {"finished"} and set(cells["sweep"]) == {sweep_id}
    assert len(store.list_runs(sweep=sweep_id)) == 4 and len(store.list_runs()) == 4
    assert store.sweeps().iloc[0][["sweep", "cells", "finished"]].tolist() == [sweep_id, 4, 4]
    assert cells["name"].iloc[0] == "tiny · prune_rate=0.2 reset=init"
    assert store.doc(cells["id"].iloc[1], SWEEP_DOC)["cell"] == {"prune_rate": 0.2, "reset": "rewind:5"}
    # a cell is an ordinary run: the same numbers as `run` of its config
    from lth_core import collect, run_experiment
    config = store.get_run(cells["id"].iloc[3]).config
    assert config.prune_rate == 0.5 and config.reset == "rewind:5" and config.trials == 2
    plain = collect(run_experiment(config)).rounds_df()
    pd.testing.assert_frame_equal(_strip(store.rounds(cells["id"].iloc[3])), _strip(plain), check_dtype=False)
    # the summary: every cell, the best one named in words, status shows it again
    assert re.search(r"Best cell: (none clearly\. )?prune_rate=", out) and out.count("finished") >= 8
    table = sweep_summary(store, sweep_id)
    assert len(table) == 4 and table["value"].notna().all() and list(table.attrs["axes"]) == ["prune_rate", "reset"]
    code, again, _ = _cli(capsys, "sweep", "status", sweep_id[:5])
    assert code == 0 and best_cell_sentence(table) in again
    # accuracy at a chosen sparsity: at a round's own weights it is that round's accuracy, mean over trials
    rounds = store.rounds(cells["id"].iloc[0])
    last = rounds[(rounds["round"] == 2) & (rounds["variant"] == "ticket")]
    at = float(last["weights_remaining"].iloc[0])
    assert accuracy_at(rounds, at) == pytest.approx(last["test_accuracy"].to_numpy())
    by_acc = summarize_cells([{"run_id": "x", "label": "one", "rounds": rounds}], at=at)
    assert by_acc["value"].iloc[0] == pytest.approx(last["test_accuracy"].mean())
    assert "test accuracy at" in best_cell_sentence(by_acc) and "Best cell: one (run x)" in best_cell_sentence(by_acc)


def test_cancelling_a_sweep_keeps_finished_cells_and_rounds_and_resume_runs_only_what_is_missing(capsys, lth_home):
    long = ["--dataset", "moons", "--arch", "mlp", "--hidden", "64", "--iterations", "600", "--rounds", "3"]
    code, out, err = _cli(capsys, "sweep", *long, "--grid", "seed=0,1,2", "--background")
    assert code == 0, err
    sweep_id = out.split()[1].rstrip(":")
    store = RunStore()
    deadline = time.time() + 180
    while True:  # wait for the first cell to finish a pruned round
        cells = sweep_cells(store, sweep_id)
        if cells["rounds_done"].iloc[0] >= 2 or cells["status"].iloc[0] == "finished":
            break
        assert time.time() < deadline
        time.sleep(0.2)
    code, out, _ = _cli(capsys, "sweep", "cancel", sweep_id)
    assert code == 0 and "cancelled" in out
    cells = sweep_cells(store, sweep_id)
    assert set(cells["status"]) <= {"cancelled", "finished"} and "cancelled" in set(cells["status"])
    kept = {r.id: store.rounds(r.id) for r in cells.itertuples()}
    assert len(kept[cells["id"].iloc[0]]) >= 2  # the finished rounds of the cell cancelled while running stay
    finished_before = set(cells[cells["status"] == "finished"]["id"])
    code, out, err = _cli(capsys, "sweep", "resume", sweep_id)
    assert code == 0, err
    after = sweep_cells(store, sweep_id)
    assert set(after["status"]) == {"finished"}
    for run_id in finished_before:  # not run again
        assert store.get_run(run_id).finished_at == cells.set_index("id").loc[run_id, "finished_at"]
    for run_id, rounds in kept.items():  # nothing finished was lost or redone
        pd.testing.assert_frame_equal(_strip(store.rounds(run_id)).iloc[:len(rounds)], _strip(rounds),
                                      check_dtype=False)


def test_a_sweep_on_an_uploaded_dataset_works_like_one_on_a_built_in_set(capsys, lth_home):
    from sklearn.datasets import load_wine

    from lth_core.engine.uploads import check_upload

    wine = load_wine(as_frame=True).frame.rename(columns={"target": "label"})
    report = check_upload({"wine.csv": wine.to_csv(index=False).encode()})
    assert report.error is None and report.spec, report.error
    code, out, err = _cli(capsys, "sweep", "--dataset", report.spec, "--arch", "mlp", "--hidden", "16",
                          "--iterations", "30", "--rounds", "1", "--grid", "prune_rate=0.2,0.5")
    assert code == 0, err
    cells = sweep_cells(RunStore(), out.split()[1].rstrip(":"))
    assert set(cells["status"]) == {"finished"} and set(cells["dataset"]) == {report.spec}
    built_in = RunStore().rounds(cells["id"].iloc[0])
    assert len(built_in) == 2 and built_in["test_accuracy"].between(0, 1).all()


def test_without_ray_the_ray_executor_says_how_to_install_it_and_nothing_else_imports_ray(tmp_path):
    script = ("import sys; sys.modules['ray'] = None\n"  # as if ray were not installed
              "from lth_core.cli import main\n"
              "code = main(['sweep', '--dataset', 'moons', '--arch', 'mlp', '--grid', 'prune_rate=0.1,0.2', "
              "'--executor', 'ray'])\n"
              "sys.exit(code)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "pip install -r requirements-ray.txt" in done.stderr, done.stderr
    # the local executor, the CLI and the app's modules load without ray
    check = ("import sys, lth_core, lth_core.cli, lth_core.runs.sweep, lth_core.sweep_cli, lth_core.runs.jobs\n"
             "lth_core.cli.build_parser()\n"
             "import app_pages, ui.widgets\n"
             "assert 'ray' not in sys.modules, 'ray was imported'\n")
    done = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_sweep_figure_joins_only_ordered_values_and_marks_upper_bounds():
    from lth_core.analysis.sweep_summary import FEWEST, sweep_figure

    def table(axis, values, bounds):
        return pd.DataFrame([dict(run_id=f"r{i}", label=str(v), metric=FEWEST, value=0.1 + 0.05 * i, low=0.08,
                                  high=0.2 + 0.05 * i, trials=2, upper_bound=b, rounds_done=13, **{axis: v})
                             for i, (v, b) in enumerate(zip(values, bounds))])

    resets = sweep_figure(table("reset", ["init", "rewind:20", "none", "lr-rewind"], [False, False, False, True]),
                          ["reset"]).data[0]
    assert "lines" not in resets.mode  # a reset has no order between its values: no line joins them
    assert list(resets.marker.symbol) == ["circle"] * 3 + ["triangle-down"] and resets.text[3].startswith("≤ 25.0")
    rates = sweep_figure(table("prune_rate", [0.1, 0.2, 0.4], [False] * 3), ["prune_rate"])
    assert "lines" in rates.data[0].mode and rates.layout.yaxis.title.text == "% of weights remaining"
    # a cell pruned to 0.044 % reads as the table and the runs list print it (statistics.pct), never '0.0 %'
    from lth_core.analysis.statistics import pct
    tiny = table("prune_rate", [0.9, 0.95], [True, False]).assign(value=[0.00044, 0.0021], data="digits")
    heat = sweep_figure(tiny, ["prune_rate", "data"]).data[0]
    assert [t for row in heat.text for t in row] == ["≤ " + pct(0.00044), pct(0.0021)] == ["≤ 0.044 %", "0.2 %"]
    assert sweep_figure(tiny, ["prune_rate"]).data[0].text[0] == "≤ 0.044 %"
