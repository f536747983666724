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


def test_live_runs_accuracy_figure_shows_a_round_that_lands_while_the_page_draws(monkeypatch):
    """The run's last round and its end are committed after Live run read the rounds but before it drew
    the accuracy figure (the learning-curve figure is built in between). The figure must not be kept under
    the new store token with the old rows: after a reload it shows every finished round."""
    import sqlite3

    from lth_core.runs.store import now_iso

    assert main(["run", "--store", *TINY, "--name", "live race"]) == 0
    store = RunStore()
    run_id = store.list_runs().id.iloc[0]
    last = int(store.rounds(run_id)["round"].max())
    assert not page("live_run", run=run_id).exception  # what the page writes once (its checks) is written
    db = sqlite3.connect(store.path, check_same_thread=False)
    held = db.execute("SELECT * FROM rounds WHERE run_id = ? AND round = ?", (run_id, last)).fetchall()
    with db:
        db.execute("DELETE FROM rounds WHERE run_id = ? AND round = ?", (run_id, last))
        db.execute("UPDATE runs SET committed_round = ?, updated_at = ? WHERE id = ?", (last - 1, now_iso(), run_id))
    real = plots.compare_curves

    def last_round_lands(*args, **kwargs):  # the recorder's last commit, while the page is drawing
        if held:
            with db:
                db.executemany(f"INSERT INTO rounds VALUES ({', '.join('?' * len(held[0]))})", held)
                db.execute("UPDATE runs SET committed_round = ?, updated_at = ? WHERE id = ?", (last, now_iso(), run_id))
            held.clear()
        return real(*args, **kwargs)
    monkeypatch.setattr(plots, "compare_curves", last_round_lands)
    first = page("live_run", run=run_id)
    assert not first.exception and not held
    reloaded = page("live_run", run=run_id)
    assert not reloaded.exception
    accuracy = next(s for s in specs(reloaded) if "every finished round" in s["layout"]["title"]["text"])
    ticket = next(trace for trace in accuracy["data"] if trace.get("name") == "winning ticket")
    assert len(set(_values(ticket["x"]))) == last + 1, ticket["x"]  # a point per finished round, the last one too
    db.close()


def _values(x) -> list:
    """A trace's x as numbers, whether the spec lists them or packs them (Plotly's {"dtype", "bdata"})."""
    import base64

    import numpy as np
    if isinstance(x, dict):
        return np.frombuffer(base64.b64decode(x["bdata"]), dtype=x["dtype"]).tolist()
    return [v for v in (x or []) if isinstance(v, (int, float))]


@pytest.mark.parametrize("name", ["results", "compare"])
def test_a_write_between_the_rows_and_the_token_never_leaves_stale_figures(monkeypatch, name):
    """The page reads its rows, then a round is rewritten (as the recorder commits one) before the page reads
    the store's change token: the figures drawn from the older rows must not be cached under the newer token,
    so the next session draws them from the store as it now is."""
    import streamlit as st

    assert main(["run", "--store", *TINY, "--name", "raced run"]) == 0
    run_id = RunStore().list_runs().id.iloc[0]
    real = RunStore.rounds
    writes = []

    def rounds_then_a_write(self, rid):
        rows = real(self, rid)
        if not writes:  # once: the write lands after this read, before the page's next one
            writes.append(rid)
            with RunStore().transaction() as db:
                db.execute("UPDATE rounds SET test_accuracy = test_accuracy / 2 WHERE run_id = ? AND round = 1", (rid,))
                db.execute("UPDATE runs SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+1 second') "
                           "WHERE id = ?", (rid,))
        return rows
    monkeypatch.setattr(RunStore, "rounds", rounds_then_a_write)
    first = page(name, run=run_id)
    assert not first.exception and writes == [run_id]
    second = page(name, run=run_id)
    st.cache_data.clear()
    st.cache_resource.clear()
    fresh = page(name, run=run_id)  # nothing cached: drawn from the store as it is
    assert not second.exception and not fresh.exception
    assert specs(second) == specs(fresh) and specs(second) != specs(first)
    assert [m.value for m in second.markdown] == [m.value for m in fresh.markdown]
