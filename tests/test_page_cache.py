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


def test_the_playgrounds_dense_round_is_trained_once_for_every_session(monkeypatch):
    """Round 0 of a playground is the same for every session with the same settings (same seeds, same
    numbers): trained once, each session pruning on from a copy of its own."""
    import lth_core.engine.playground as engine

    calls = []
    real = engine.play_round

    def counted(pg):
        calls.append(len(pg.rounds))
        return real(pg)
    monkeypatch.setattr(engine, "play_round", counted)
    first = page("playground", data="moons", seed="37")
    assert not first.exception
    trained = len(calls)
    assert trained <= 1  # 0 only if an earlier test of this process trained the same settings
    again = page("playground", data="moons", seed="37")
    assert not again.exception and len(calls) == trained
    said = lambda at: [m.value for m in at.markdown if "of its weights" in m.value]  # noqa: E731
    assert said(again) == said(first) and said(first)
    next(b for b in again.button if b.label == "Prune a round").click().run()  # Prune a round: this session trains round 1 on its own copy
    assert calls[trained:] == [1] and "The winning ticket at round 1" in " ".join(said(again))
    third = page("playground", data="moons", seed="37")
    assert len(calls) == trained + 1 and said(third) == said(first)  # the shared round 0 was not changed
