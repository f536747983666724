"""The runs list at scale (issue 14): a store of 60 real runs (a few tiny runs and a sweep trained by the
engine, then copied through RunStore.copy_run), searched, filtered, sorted, paged and multi-selected on New
experiment through AppTest, and the store's query itself (SQL WHERE / ORDER BY / LIMIT / OFFSET)."""
import os
import re

import pytest
from streamlit.testing.v1 import AppTest

from app_helpers import APP, TIMEOUT

from lth_core.runs.store import RunQuery, RunStore, StoreError

TOTAL = 60


@pytest.fixture(scope="module")
def many(tmp_path_factory, dataset_cache):
    """An LTH_HOME with TOTAL real runs (every number trained by the engine) and one cancelled run."""
    from scripts.bench_pages import build_store

    home = tmp_path_factory.mktemp("lth-many-runs")
    os.symlink(dataset_cache, home / "cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LTH_HOME", str(home))
        ids = build_store(home, TOTAL, log=lambda *_: None)
        store = RunStore()
        config = store.get_run(ids["run"]).config
        cancelled = store.add_run(config, "never started")  # queued, then cancelled: a real status change
        store.cancel(cancelled)
        store.close()
    return {"home": home, "cancelled": cancelled, **ids}


@pytest.fixture
def home(many, monkeypatch):
    monkeypatch.setenv("LTH_HOME", str(many["home"]))
    return many


def open_list() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    return at


def table(at: AppTest):
    return next(d for d in at.dataframe if d.key == "runs_table").value


def matches(at: AppTest) -> str:
    return next(c.value for c in at.caption if re.search(r"\d+ runs? match", c.value))


def test_the_store_pages_filters_and_sorts_in_sql(home):
    store = RunStore()
    every = store.list_runs()
    assert len(every) == TOTAL + 1
    first, total = store.query_runs(RunQuery(limit=25))
    second, _ = store.query_runs(RunQuery(limit=25, offset=25))
    last, _ = store.query_runs(RunQuery(limit=25, offset=50))
    assert total == TOTAL + 1 and (len(first), len(second), len(last)) == (25, 25, TOTAL + 1 - 50)
    assert [*first.id, *second.id, *last.id] == every.id.tolist()  # newest first, as list_runs
    digits, n = store.query_runs(RunQuery(datasets=("digits",), archs=("mlp",), limit=100))
    assert n == ((every.dataset == "digits") & (every.arch == "mlp")).sum() > 0 and set(digits.arch) == {"mlp"}
    found, n = store.query_runs(RunQuery(search="CIRCLES", limit=100))  # case-insensitive, part of the name
    assert n == every.name.str.lower().str.contains("circles").sum() > 0
    assert store.query_runs(RunQuery(search="100%_", limit=5))[1] == 0  # % and _ are text, not wildcards
    assert store.query_runs(RunQuery(search=home["cancelled"][:5]))[0].id.tolist() == [home["cancelled"]]
    by_critical, _ = store.query_runs(RunQuery(sort="critical", limit=100))
    known = by_critical.critical.dropna().tolist()
    assert known == sorted(known) and by_critical.critical.isna().tolist() == sorted(by_critical.critical.isna())
    with pytest.raises(StoreError, match="sort must be one of"):
        RunQuery(sort="size")


def test_search_filters_and_pages_on_new_experiment(home):
    at = open_list()
    shown = table(at)
    assert len(shown) == 25 and matches(at).startswith(f"{TOTAL + 1} runs match; showing 1–25")
    # the columns fit the page, and the critical sparsity is named for what it is
    assert list(next(d for d in at.dataframe if d.key == "runs_table").proto.column_order) == [
        "name", "status", "data", "pruning", "ticket", "critical"]
    at.number_input(key="runs:page").set_value(3).run()
    assert len(table(at)) == TOTAL + 1 - 50 and "showing 51–61" in matches(at)
    at.text_input(key="runs:search").set_value("circles").run()  # a filter brings the page back into range
    names = table(at)["name"].tolist()
    assert names and all("circles" in n for n in names) and at.number_input(key="runs:page").value == 1
    at.text_input(key="runs:search").set_value("").run()
    at.multiselect(key="runs:dataset").set_value(["digits"]).run()
    at.multiselect(key="runs:arch").set_value(["lenet-300-100"]).run()
    assert set(table(at)["data"]) == {"digits · lenet-300-100"}
    at.multiselect(key="runs:arch").set_value([]).run()
    at.multiselect(key="runs:dataset").set_value([]).run()
    at.multiselect(key="runs:status").set_value(["cancelled"]).run()
    assert table(at).index.tolist() == [home["cancelled"]] and matches(at).startswith("1 run matches")
    at.multiselect(key="runs:status").set_value([]).run()
    at.multiselect(key="runs:sweep").set_value([home["sweep"]]).run()
    cells = RunStore().list_runs(sweep=home["sweep"])
    assert sorted(table(at).index) == sorted(cells.id)
    at.multiselect(key="runs:sweep").set_value([]).run()
    at.selectbox(key="runs:sort").set_value("name").run()
    names = table(at)["name"].tolist()
    assert names == sorted(names, key=str.lower)
    at.text_input(key="runs:search").set_value("no run is called this").run()
    assert any(i.value == "No run matches these filters." for i in at.info)


def test_several_runs_are_overlaid_or_deleted_after_a_confirmation(home):
    at = open_list()
    at.text_input(key="runs:search").set_value("seed").run()
    shown = table(at)
    picked = shown.index[:2].tolist()
    at.session_state["runs_table"] = {"selection": {"rows": [0, 1], "columns": []}}
    at.run()
    assert at.button(key="runs:overlay").label == "Overlay these 2 runs on Results"
    delete = at.button(key="runs:delete")
    assert delete.disabled  # nothing is deleted before the tick
    at.checkbox(key="runs:delete_sure").check().run()
    at.button(key="runs:delete").click().run()
    assert not at.exception
    left = RunStore().list_runs()
    assert not set(picked) & set(left.id) and len(left) == TOTAL + 1 - 2
    assert not set(picked) & set(table(at).index)


def test_ticked_runs_open_overlaid_on_results(home):
    at = open_list()
    at.multiselect(key="runs:dataset").set_value(["circles"]).run()
    picked = table(at).index[[0, 2]].tolist()
    at.session_state["runs_table"] = {"selection": {"rows": [0, 2], "columns": []}}
    at.run()
    at.button(key="runs:overlay").click().run()
    assert not at.exception and at.title[0].value == "Results"
    assert at.multiselect(key="w:run:multi").value == picked


def test_a_run_made_from_the_cli_sorts_by_critical_sparsity_before_anyone_opens_the_list():
    """The recorder keeps the ticket's critical sparsity with every committed round (CRITICAL_DOC), so a run
    seen only from the CLI (or the worker, or Ray) sorts right by that column without the list's refresh."""
    from lth_core.cli import main
    from lth_core.runs.listing import critical_doc
    from lth_core.runs.store import CRITICAL_DOC

    tiny = ["--dataset", "moons", "--arch", "mlp", "--hidden", "16", "--iterations", "40", "--rounds", "3",
            "--trials", "2", "--controls", "reinit"]
    for rate in ("0.2", "0.6"):
        assert main(["run", "--store", *tiny, "--prune-rate", rate, "--name", f"rate {rate}", "--quiet"]) == 0
    store = RunStore()
    assert store.runs_missing_critical() == []  # nothing left for the list's refresh
    listed, _ = store.query_runs(RunQuery(sort="critical", limit=10))
    for run_id in listed.id:
        kept = store.doc(run_id, CRITICAL_DOC)
        assert kept["round"] == 3 and kept == critical_doc(store, run_id, 3)  # the last round's, as the list computes
    known = listed.critical.dropna().tolist()
    assert known and known == sorted(known)


def test_the_lists_search_sort_and_filters_stay_after_another_page_and_one_run_is_deleted_in_the_singular(home):
    at = open_list()
    at.text_input(key="runs:search").set_value("moons").run()
    at.selectbox(key="runs:sort").set_value("name").run()
    at.multiselect(key="runs:dataset").set_value(["moons"]).run()
    kept = table(at).index.tolist()
    assert kept
    at.switch_page("app_pages/results.py").run()
    assert not at.exception
    at.switch_page("app_pages/new_experiment.py").run()
    assert not at.exception
    assert at.text_input(key="runs:search").value == "moons" and at.selectbox(key="runs:sort").value == "name"
    assert at.multiselect(key="runs:dataset").value == ["moons"] and table(at).index.tolist() == kept
    at.session_state["runs_table"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    popover = " ".join(m.value for m in at.markdown if m.value.startswith("Deletes "))
    assert "with everything it recorded" in popover and "they" not in popover
    assert at.checkbox(key="runs:delete_sure").label == "Yes, delete it (this cannot be undone)"


def test_a_sweeps_cells_read_apart_in_the_narrow_name_column(home):
    at = open_list()
    at.multiselect(key="runs:sweep").set_value([home["sweep"]]).run()
    names = table(at)["name"].tolist()
    assert len(names) >= 2 and all(len(n) <= 24 for n in names), names  # what the column shows whole
    assert len(set(names)) == len(names), names
    full = dict(zip(RunStore().list_runs(sweep=home["sweep"]).id, RunStore().list_runs(sweep=home["sweep"]).name))
    for run_id, shown in zip(table(at).index, names):
        assert full[run_id].split("=")[-1] in shown  # the cell's value, e.g. 0.5 of prune_rate=0.5


def test_every_header_and_cell_of_the_list_reads_whole_at_1280_pixels(lth_home):
    """In Chromium, at 1280 pixels: every header of the runs list and every cell of every column fit their
    columns: the schedule, scope and reset of any iterative or one-shot run, the default experiment's data
    (mnist-5k · lenet-300-100), a 24-letter name. Headers were cut ('che' for checks, 'prune' for the rounds),
    and so were the data ('digits · lenet-30') and the schedule ('iterative 20 % · layerv')."""
    from pathlib import Path

    from lth_core.engine.config import ExperimentConfig
    from test_e2e_browser import CHROMIUM, FLAGS, _serve, settle
    from ui.runs_list import COLUMNS

    if not Path(CHROMIUM).exists():
        pytest.skip(f"needs {CHROMIUM}")
    from playwright.sync_api import sync_playwright
    store = RunStore()
    settings = [dict(schedule="iterative", prune_rate=0.2, scope=s, reset=r)
                for s in ("layerwise", "global") for r in ("init", "none", "rewind:100")]
    settings += [dict(schedule="one-shot", scope=s, reset=r) for s in ("layerwise", "global") for r in ("init", "none")]
    for i, extra in enumerate(settings):  # queued, then cancelled: listed, never trained
        store.cancel(store.add_run(ExperimentConfig(dataset="moons", arch="mlp", hidden=(16,), **extra), f"run {i}"))
    store.cancel(store.add_run(ExperimentConfig(dataset="mnist-5k", arch="lenet-300-100"), "x" * 24))
    store.close()
    labels = [c["label"] for c in COLUMNS.values()]
    with _serve(lth_home) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url)
            page.wait_for_selector('.st-key-runs_table [data-testid="stDataFrame"] table', state="attached", timeout=240_000)
            settle(page)
            # the grid draws on a canvas: its headers' and cells' text is measured in its font (14 px), against the
            # column's width less the grid's 8-pixel padding on each side
            widths = page.evaluate("""(labels) => {
                const grid = document.querySelector('.st-key-runs_table [data-testid="stDataFrame"]');
                const heads = [...grid.querySelectorAll('table th')].map(e => e.textContent);
                const ctx = document.createElement('canvas').getContext('2d');
                ctx.font = `14px ${getComputedStyle(grid).fontFamily}`;
                const rows = [...grid.querySelectorAll('table tr')].map(r => [...r.children].map(c => c.textContent));
                return labels.map(label => { const k = heads.indexOf(label);
                    return [label, k, rows.map(r => r[k]).filter(t => t).map(t => [t, ctx.measureText(t).width])]; });
            }""", labels)
        finally:
            browser.close()
    cells = {}
    for (key, column), (label, k, measured) in zip(COLUMNS.items(), widths):
        assert k >= 0, (label, "not shown")
        room = column["width"] - 16
        assert all(w <= room for _, w in measured), (label, room, [m for m in measured if m[1] > room])
        cells[key] = dict(measured)
    assert sum(c["width"] for c in COLUMNS.values()) + 32 <= 818  # and no sideways scrolling at 1280
    assert len(cells["pruning"]) >= 1 + len(settings) and "20 %, global, rewind:100" in cells["pruning"], cells
    assert "mnist-5k · lenet-300-100" in cells["data"] and "x" * 24 in cells["name"], cells
