"""One rule for "how far a run can be pruned and still match dense" everywhere it is shown: the runs list's
column, the sweep summary (table, heatmap, best-cell sentence) and Compare's sentence name the same measured
round of the ticket's mean curve over trials, on a real sweep trained by the worker."""
import json
import re

import pytest
from app_helpers import page
from test_app_pages import values

from lth_core.analysis import statistics as S
from lth_core.analysis.sweep_summary import sweep_figure
from lth_core.cli import main
from lth_core.runs.store import RunQuery, RunStore
from lth_core.runs.sweep import sweep_summary

# digits, 2 trials, half (or 70 %) of the weights a round: the ticket leaves the 1-point band within 4 rounds,
# where the old interpolated geometric mean (36.3 %) and the measured round the sentences name (53.4 %) differed
SWEEP = ["--dataset", "digits", "--arch", "mlp", "--hidden", "32", "--epochs", "3", "--batch-size", "32",
         "--rounds", "4", "--trials", "2", "--controls", "reinit", "--grid", "prune_rate=0.5,0.7", "--name", "rule"]


@pytest.fixture
def swept(lth_home, capsys):
    assert main(["sweep", *SWEEP]) == 0
    return capsys.readouterr().out.split()[1].rstrip(":")


def _said(sentence: str) -> str:
    """The share of the weights a critical sentence names as the last one within the tolerance."""
    if "already at its first pruned round" in sentence:
        return "100.0 %"  # only the dense network itself matches
    return re.search(r"down to (\d+\.\d\s%) of the weights", sentence).group(1).replace("\xa0", " ")  # units joined


def test_the_runs_list_the_sweep_summary_and_compare_name_the_same_share_of_the_weights(swept):
    store = RunStore()
    summary = sweep_summary(store, swept).set_index("run_id")
    listed = page("new_experiment").dataframe[0].value  # the runs list, as the app shows it
    stored, _ = store.query_runs(RunQuery(sweeps=(swept,), sort="critical", limit=10))
    sweep_page = page("sweep", sweep=swept)
    (fig,) = [json.loads(c.proto.spec) for c in sweep_page.get("plotly_chart")]
    line = dict(zip(fig["data"][0]["x"], values(fig["data"][0]["y"])))  # one axis: a line over prune_rate
    # two axes: the heatmap, built from the same summary table (prune_rate against the cell's dataset)
    heat = sweep_figure(sweep_summary(store, swept).assign(data="digits"), ["prune_rate", "data"]).data[0]
    heat_text = {t for row in heat.text for t in row}
    best = next(m.value for m in sweep_page.markdown if m.value.startswith("Best cell: "))
    said = {}
    for run_id in summary.index:
        compare = page("compare", run=run_id)
        sentence = next(line for line in (m.value for m in compare.markdown) for line in line.splitlines()
                        if "The ticket stays within" in line or "The ticket falls more than" in line)
        share = said[run_id] = _said(sentence)
        row = summary.loc[run_id]
        bound = "≤ " if row["upper_bound"] else ""
        # the runs list (app and store), the sweep summary's number and the heatmap's cell: the same round
        cell = listed.loc[run_id, "critical"]
        assert cell.lstrip("≤ ") == share, (cell, sentence)
        assert stored.set_index("id").loc[run_id, "critical_text"] == cell
        assert S.pct(row["value"]) == share, (row["value"], sentence)
        assert f"{bound}{100 * row['value']:.1f} %" in heat_text, (heat_text, sentence)
        assert f"{line[row['prune_rate']]:.1f} %" == share
        # it is a measured round of the ticket's mean over trials, never a value between rounds
        rounds = store.rounds(run_id)
        measured = {S.pct(w) for w in rounds["weights_remaining"]} | {"100.0 %"}
        assert share in measured
    assert S.pct(summary.loc[summary["value"].idxmin(), "value"]) in best
    # the list sorts on the number: fewest weights first
    assert list(stored["critical"]) == sorted(stored["critical"])


def test_a_critical_document_stored_by_the_old_rule_is_recomputed_on_read(lth_home):
    """Runs stored before the rule changed keep a CRITICAL_DOC of the interpolated rule: the list treats it as
    missing and the refresh rewrites it by the measured-round rule."""
    from lth_core import example
    from lth_core.runs.listing import critical_doc, refresh_critical
    from lth_core.runs.store import CRITICAL_DOC

    store = RunStore()
    run_id = example.import_example(store)
    refresh_critical(store)
    now = store.doc(run_id, CRITICAL_DOC)
    old = {"round": now["round"], "fraction": 0.5, "text": "50.0 %"}  # what the old rule kept: no "rule" field
    store.put_doc(run_id, CRITICAL_DOC, old)
    listed, _ = store.query_runs(RunQuery(limit=10))
    assert listed.set_index("id").loc[run_id, "critical_text"] == ""  # stale: not shown, not sorted on
    assert (run_id, now["round"]) in store.runs_missing_critical()
    assert refresh_critical(store) == 1
    assert store.doc(run_id, CRITICAL_DOC) == critical_doc(store, run_id, now["round"]) == now
    listed, _ = store.query_runs(RunQuery(limit=10))
    assert listed.set_index("id").loc[run_id, "critical_text"] == S.critical_cell(store.rounds(run_id))
