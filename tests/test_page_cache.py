"""A page's figures are built once per run, store change and choice (ui.widgets.cached_chart): a second
session or a rerun reuses them, and any change in the store (here a rename) draws them anew."""
import json

import pytest

from app_helpers import page

from lth_core.analysis import plots
from lth_core.cli import main
from lth_core.runs.store import RunStore

TINY = ["--dataset", "moons", "--arch", "mlp", "--hidden", "16", "--iterations", "40", "--rounds", "2",
        "--trials", "2", "--controls", "reinit", "--quiet"]


@pytest.fixture
def built(monkeypatch):
    """How many times Results' accuracy figures were built (the real builder runs every time)."""
    calls = []
    real = plots.accuracy_vs_weights

    def counted(*args, **kwargs):
        calls.append(kwargs.get("title"))
        return real(*args, **kwargs)
    monkeypatch.setattr(plots, "accuracy_vs_weights", counted)
    return calls


def specs(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def test_results_builds_its_figures_once_and_again_after_the_store_changes(built):
    assert main(["run", "--store", *TINY, "--name", "cached run"]) == 0
    run_id = RunStore().list_runs().id.iloc[0]
    first = page("results", run=run_id)
    assert not first.exception and len(built) == 3
    again = page("results", run=run_id)  # a new session: the same figures, not built again
    assert not again.exception and len(built) == 3 and specs(again) == specs(first)
    RunStore().rename(run_id, "renamed run")
    renamed = page("results", run=run_id)
    assert len(built) == 6
    subtitle = specs(renamed)[0]["layout"]["title"]["subtitle"]["text"]
    assert subtitle.startswith(f"renamed run · moons, mlp · 2 trials · run {run_id}")
