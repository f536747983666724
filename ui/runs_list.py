"""The runs list of New experiment: search, filters, sort and pages over the store (SQL, one page at a
time: RunStore.query_runs), several runs selected at once to overlay on Results or to delete.

A page of the list is cached on the store's change token, so a rerun that changed nothing (a click on a
row, a widget elsewhere on the page) reads two aggregates, not the runs."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd
import streamlit as st

from lth_core.analysis.summary import pct
from lth_core.runs.checks import run_marks
from lth_core.runs.listing import refresh_critical
from lth_core.runs.store import UNREADABLE, RunQuery

from .text import code, md
from .widgets import ICONS, PAGES, run_links, store

PAGE_SIZES = (25, 50, 100)
SORTS = {"newest": "newest first", "oldest": "oldest first", "name": "name (A–Z)",
         "critical": "where the ticket stops matching dense (fewest weights first)", "status": "status"}
CRITICAL_HEADER = "matches dense to"  # short: the column is 120 px wide
CRITICAL_HELP = ("weights remaining where the ticket stops matching the dense network: the sparsest measured round "
                 "at which its mean over trials is still within 1 point of dense, before it first falls below (the "
                 "round Compare's sentence names; its critical sparsity). ≤ when it still matched at the sparsest "
                 "round; 100.0 % when it fell below already at the first pruned round")
# every column, its header and its cells fit a 1280-pixel window beside the sidebar: the widths and the tick-box
# column (32) add up to 814 of the 818 pixels the table gets there (tests/test_runs_list.py measures each header and
# cell in Chromium). Fewer columns make that room: the checks' mark and the rounds of a run that did not finish
# them sit in the status cell; the date and the rest are in the row's details below the list. At 1024 pixels the
# table scrolls sideways with the name pinned at its left.
STATUS_HELP = ("the run's status; after it, pruning rounds finished of those planned (round 0, the dense network, not "
               "counted) when it did not finish them all, and the sanity checks: ✓ all passed, ✗ one failed, ⚠ a "
               "training budget too short to converge (Live run and Compare say which, where and what it means); "
               "tick one run for its date and the rest")
COLUMNS = {
    "name": st.column_config.TextColumn("name", width=176, pinned=True),
    "status": st.column_config.TextColumn("status", width=108, help=STATUS_HELP),
    "data": st.column_config.TextColumn("data", width=156, help="dataset · architecture"),
    "pruning": st.column_config.TextColumn("schedule, scope, reset", width=160, help=(
        "N %: iterative pruning, that share of the remaining weights each round, or one-shot; layer(wise) or "
        "global ranking; reset to the original init, rewind:K (iteration K of the dense run) or none")),
    "ticket": st.column_config.TextColumn(
        "ticket", width=62, help="the ticket's test accuracy in the last finished round (mean over trials)"),
    "critical": st.column_config.TextColumn(CRITICAL_HEADER, width=120, help=CRITICAL_HELP),
}


NAME_CHARS = 24  # about what the name column shows whole: 24 letters take about 160 of its 176 - 16 pixels


def short_name(name: str, sweep: Any) -> str:
    """A sweep cell's name ('rate x reset · prune_rate=0.2 reset=init') as the list shows it: the values of its
    cell only, its sweep's name cut first ('rate x reset · 0.2, init', 'long sweep na… · 0.2, init'), so the
    cells of a sweep still read apart in the narrow column and sort as their names do."""
    if not _known(sweep) or " · " not in name:
        return name
    title, label = name.rsplit(" · ", 1)
    parts = label.split()
    if not parts or not all("=" in p for p in parts):
        return name  # renamed: shown as it is
    values = ", ".join(p.split("=", 1)[1] for p in parts)
    room = NAME_CHARS - len(values) - 3
    return f"{title if len(title) <= room else title[:max(4, room - 1)] + '…'} · {values}"


def pruning_words(config: Any) -> str:
    """'20 %, layer, rewind:100' or 'one-shot, global, init': a run's schedule, scope and reset in words short
    enough for the list's column at 1280 pixels (the column's help spells them out)."""
    schedule = f"{100 * config.prune_rate:g} %" if config.schedule == "iterative" else config.schedule
    return ", ".join([schedule, "layer" if config.scope == "layerwise" else config.scope, config.reset])


def _known(v: Any) -> bool:
    return v is not None and not pd.isna(v)


def rounds_text(done: Any, total: Any) -> str:
    """'2 of 5': pruning rounds finished of those planned (round 0, the dense network, not counted); '' unplanned."""
    return f"{max(0, int(done) - 1)} of {int(total)}" if _known(total) else ""


def status_cell(status: str, done: Any, total: Any, mark: str) -> str:
    """'finished ✓', 'running 2/5', 'cancelled 1/3 ✗': the status, the rounds when not all planned ones finished,
    and the checks' symbol (Live run and Compare give the line)."""
    pruned = max(0, int(done) - 1) if _known(done) else 0
    rounds = f" {pruned}/{int(total)}" if _known(total) and pruned < int(total) else ""
    return f"{status}{rounds}{' ' + mark[:1] if mark else ''}"


@st.cache_data(show_spinner=False, max_entries=32)
def _page(path: str, token: tuple, query: RunQuery) -> tuple[pd.DataFrame, int, dict[str, str], dict[str, str]]:
    """One page of the list as shown (cached on the store at `path` and its change `token`), its total, the
    runs' whole names, and each run's details (what the columns leave out) in a line."""
    runs, total = store().query_runs(query)
    configs = {i: None if s == UNREADABLE else store().get_run(i).config for i, s in zip(runs.id, runs.status)}
    marks = run_marks(store(), [i for i, s in zip(runs.id, runs.status) if s != UNREADABLE])
    table = pd.DataFrame({
        "name": [short_name(n, w) for n, w in zip(runs["name"], runs["sweep"])],
        "status": [status_cell(s, d, t, marks.get(i, "")) for i, s, d, t in
                   zip(runs.id, runs.status, runs.rounds_done, runs.rounds_total)],
        "data": [f"{d} · {a}" for d, a in zip(runs.dataset, runs.arch)],
        "pruning": ["" if configs[i] is None else pruning_words(configs[i]) for i in runs.id],
        "ticket": [pct(a) if _known(a) else "" for a in runs.test_accuracy],
        "critical": runs["critical_text"].to_numpy()}, index=pd.Index(runs["id"], name="id"))
    details = {i: " · ".join(p for p in (
        f"{d} on {a}", f"{rounds_text(n, t)} pruning rounds" if _known(t) else "", f"checks: {marks[i]}" if marks.get(i) else "",
        f"created {str(c)[:16].replace('T', ' ')} UTC") if p)
        for i, d, a, n, t, c in zip(runs.id, runs.dataset, runs.arch, runs.rounds_done, runs.rounds_total, runs.created_at)}
    return table, total, dict(zip(runs["id"], runs["name"])), details


# the list's choices, kept for the session while another page is shown (Streamlit drops a widget's state then)
KEPT = ("runs:search", "runs:sort", "runs:dataset", "runs:arch", "runs:status", "runs:sweep", "runs:page", "runs:size")


def _restore(facets: dict[str, list[str]]) -> None:
    options = {"runs:dataset": facets["datasets"], "runs:arch": facets["archs"], "runs:status": facets["statuses"],
               "runs:sweep": facets["sweeps"]}
    for key in KEPT:
        if key not in st.session_state and f"keep:{key}" in st.session_state:
            value = st.session_state[f"keep:{key}"]
            # a filter value gone from the store meanwhile (its runs deleted) is dropped, not an error
            st.session_state[key] = [v for v in value if v in options[key]] if key in options else value


def _keep() -> None:
    for key in KEPT:
        if key in st.session_state:
            st.session_state[f"keep:{key}"] = st.session_state[key]


def _filters() -> RunQuery:
    facets = store().run_facets()
    _restore(facets)
    top = st.columns([3, 2])
    search = top[0].text_input("Search runs by name or id", key="runs:search", placeholder="part of a name, or an id")
    sort = top[1].selectbox("Sort runs by", list(SORTS), format_func=SORTS.get, key="runs:sort")
    cols = st.columns(4)  # labels unlike the form's own "Dataset" and "Architecture" above
    sweep_names = dict(zip(*store().sweeps()[["sweep", "name"]].T.values)) if facets["sweeps"] else {}
    datasets = cols[0].multiselect("Runs of dataset", facets["datasets"], key="runs:dataset", placeholder="all datasets")
    archs = cols[1].multiselect("Runs of architecture", facets["archs"], key="runs:arch", placeholder="all architectures")
    statuses = cols[2].multiselect("Runs with status", facets["statuses"], key="runs:status", placeholder="any status")
    sweeps = cols[3].multiselect("Runs of sweep", facets["sweeps"], key="runs:sweep", placeholder="any sweep",
                                 format_func=lambda s: f"{sweep_names.get(s, s)} ({s})",
                                 disabled=not facets["sweeps"])
    size = st.session_state.get("runs:size", PAGE_SIZES[0])
    return RunQuery(search=search, datasets=tuple(datasets), archs=tuple(archs), statuses=tuple(statuses),
                    sweeps=tuple(sweeps), sort=sort, limit=size)


def runs_list() -> None:
    """The list with its filters, its pages and what can be done with the selected runs."""
    refresh_critical(store())  # runs stored before the recorder kept it (it writes it at every round now)
    query = _filters()
    token = store().change_token()
    page = int(st.session_state.get("runs:page", 1))
    table, total, names, details = _page(str(store().path), token, replace(query, offset=(page - 1) * query.limit))
    pages = max(1, -(-total // query.limit))
    if page > pages:  # a filter that shrank the list brings the page back into range
        page = st.session_state["runs:page"] = pages
        table, total, names, details = _page(str(store().path), token, replace(query, offset=(page - 1) * query.limit))
    if table.empty:
        st.info("No run matches these filters." if total == 0 else "This page is empty.", icon=":material/filter_alt_off:")
        _count(total, page, query.limit, 0)
        _pager(pages)
        _keep()
        return
    shown = (replace(query, offset=(page - 1) * query.limit), tuple(table.index))
    if st.session_state.get("runs:shown") != shown:  # another page, filter or sort: the ticked rows were others
        st.session_state.pop("runs_table", None)
        st.session_state["runs:shown"] = shown
    # the count, between the filters and the grid: the toolbar Streamlit shows over a grid on hover takes the 44
    # pixels above its top right corner, which covered the "Runs of sweep" filter right above it
    _count(total, page, query.limit, len(table))
    picked = st.dataframe(table, hide_index=True, on_select="rerun", selection_mode="multi-row", key="runs_table",
                          column_config=COLUMNS, column_order=list(COLUMNS))
    _pager(pages)
    _keep()
    chosen = [table.index[r] for r in picked.selection.rows]
    _actions(chosen, names, details)


def _count(total: int, page: int, size: int, shown: int) -> None:
    first = (page - 1) * size
    st.caption(f"{total} run{'s' if total != 1 else ''} match" + ("es" if total == 1 else "")
               + (f"; showing {first + 1}–{first + shown}" if shown else ""))


def _pager(pages: int) -> None:
    cols = st.columns([1, 1, 3])
    cols[0].number_input(f"Page (of {pages})", 1, pages, key="runs:page", step=1)
    cols[1].selectbox("Runs a page", PAGE_SIZES, key="runs:size")


def _actions(chosen: list[str], names: dict[str, str], details: dict[str, str]) -> None:
    if not chosen:
        st.caption("Click a row for its details (date, rounds, checks) and to open that run on **Live run**, **Results**, **Masks** or **Compare**; tick "
                   "several to overlay them on Results or to delete them.")
        return
    if len(chosen) == 1:
        st.markdown(f"**{md(names[chosen[0]])}** ({code(chosen[0])}): {md(details[chosen[0]])}. Open it on:")
        run_links(chosen[0])
    cols = st.columns(2)
    if len(chosen) > 1 and cols[0].button(f"Overlay these {len(chosen)} runs on Results", icon=ICONS["results"],
                                          key="runs:overlay"):
        st.session_state.pop("w:run:multi", None)  # the picker takes the runs from the link
        st.switch_page(PAGES["results"], query_params={"run": chosen})
    with cols[1].popover(f"Delete {'this run' if len(chosen) == 1 else f'these {len(chosen)} runs'}",
                         icon=":material/delete:"):
        st.markdown("Deletes " + ", ".join(f"**{md(names[i])}** ({code(i)})" for i in chosen[:10])
                    + (f" and {len(chosen) - 10} more" if len(chosen) > 10 else "")
                    + (" with everything it recorded. If it is still training, it stops." if len(chosen) == 1 else
                       " with everything they recorded. A run still training stops."))
        sure = st.checkbox(f"Yes, delete {'it' if len(chosen) == 1 else 'them'} (this cannot be undone)",
                           key="runs:delete_sure")
        if st.button("Delete", type="primary", disabled=not sure, key="runs:delete"):
            for run_id in chosen:
                store().delete(run_id)  # a worker still training it notices and stops
            st.session_state.pop("runs:delete_sure", None)
            st.toast(f"Deleted {len(chosen)} run{'s' if len(chosen) != 1 else ''}.")
            st.rerun()


__all__ = ["runs_list", "SORTS", "PAGE_SIZES", "CRITICAL_HEADER"]
