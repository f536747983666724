"""The Sweep page through Streamlit's AppTest, on a store holding a real tiny sweep trained by the worker."""
import json

import pytest

from app_helpers import page

from lth_core.cli import main
from lth_core.runs.store import RunStore
from lth_core.runs.sweep import sweep_cells

TINY = ["--dataset", "moons", "--arch", "mlp", "--hidden", "16", "--iterations", "40", "--rounds", "2", "--trials", "2"]


@pytest.fixture
def swept(lth_home, capsys):
    assert main(["sweep", *TINY, "--grid", "prune_rate=0.2,0.5", "--grid", "reset=init,rewind:5",
                 "--name", "rate <b>×</b> reset"]) == 0
    return capsys.readouterr().out.split()[1].rstrip(":")


def test_the_sweep_page_shows_the_heatmap_the_best_cell_and_a_link_to_each_cells_run(swept):
    at = page("sweep", sweep=swept)
    assert not at.exception and not at.error
    store = RunStore()
    cells = sweep_cells(store, swept)
    sentence = [m.value for m in at.markdown if m.value.startswith("Best cell: ")]
    assert len(sentence) == 1 and any(f"(run {r})" in sentence[0] for r in cells["id"])
    (fig,) = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    heat = fig["data"][0]
    assert heat["type"] == "heatmap" and fig["layout"]["xaxis"]["title"]["text"] == "prune_rate"
    assert fig["layout"]["title"]["text"].startswith("rate &lt;b&gt;×&lt;/b&gt; reset: ")  # a name is text, not HTML
    table = at.dataframe[0].value
    assert list(table["cell"]) == list(cells["label"])
    assert list(table["run"]) == [f"live_run?run={r}" for r in cells["id"]]
    # accuracy at a chosen sparsity instead of the critical sparsity
    at.radio[0].set_value("50 %").run()
    assert not at.exception
    assert "test accuracy at 50.0 %" in at.dataframe[0].value.columns[3]


def test_building_a_sweep_shows_its_size_and_time_and_launch_queues_its_cells(swept):
    at = page("sweep", sweep=swept)
    at.toggle[0].set_value(True).run()
    run_id = sweep_cells(RunStore(), swept)["id"].iloc[0]
    base = next(o for o in at.selectbox(key="sweep_base").options if o.startswith(f"run {run_id}"))
    at.selectbox(key="sweep_base").set_value(base).run()
    at.text_input(key="sweep_v1").set_value("0.3,0.6").run()
    at.selectbox(key="sweep_f2").set_value("(none)").run()
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Cells"] == "2" and metrics["Rough time"]
    at.text_input(key="sweep_v1").set_value("0.3,1.5").run()
    assert "prune_rate: must be in (0, 1); got 1.5" in at.error[0].value
    at.text_input(key="sweep_v1").set_value("0.3,0.6").run()
    at.button(key="sweep_launch").click().run()
    assert not at.exception
    sweeps = RunStore().sweeps()
    assert len(sweeps) == 2
    new = sweeps["sweep"].iloc[0]
    assert sorted(sweep_cells(RunStore(), new)["label"]) == ["prune_rate=0.3", "prune_rate=0.6"]
