"""The example run in the app: added to an empty store when the app opens, labelled with where it came
from on every page that shows it, and loaded again on request from New experiment."""
from __future__ import annotations

import logging
from typing import Any

import streamlit as st

from lth_core.example import (REBUILD_COMMAND, ExampleError, ensure_example, example_runs, import_example,
                              provenance_of)

from lth_core.analysis.summary import pct
from .text import md as _md
from .widgets import PAGES, one_line, run_links, store

log = logging.getLogger("lth_explorer")


def offer_example() -> None:
    """On every page open: a store that has never held a run gets the shipped example (once). A missing
    or damaged example is logged, never in the way of the page."""
    try:
        if ensure_example(store()):
            st.toast("Added an example run to explore: LeNet-300-100 on 5,000 MNIST digits.",
                     icon=":material/school:")
    except ExampleError as exc:
        log.warning("the example run was not added: %s", one_line(exc))


def example_notice(*run_ids: str) -> None:
    """The badge of an example run, with its provenance: what was run, with which software, by which command."""
    for run_id in run_ids:
        provenance = provenance_of(store(), run_id)
        if provenance is None:
            continue
        c, software = provenance["config"], provenance["software"]
        controls = " + ".join(c.get("controls") or []) or "no"
        st.info(f"**Example run**, made by running `{REBUILD_COMMAND}`: {_md(c['arch'])} on {_md(c['dataset'])}, "
                f"{_md(c['rounds'])} rounds at {_md(round(100 * c['prune_rate']))}\u00a0%, {_md(c['epochs'])} epochs a "
                f"round, {_md(controls)} controls, {_md(c['trials'])} trials, seed {_md(provenance['seed'])}; recorded "
                f"{_md(provenance['made_at'][:10])} with lth\\_core {_md(software['lth_core'])}, torch "
                f"{_md(software['torch'])}. Delete it on **Live run**; load it again from **New experiment**.",
                icon=":material/school:")
        with st.expander("Where this example came from (provenance)"):
            st.markdown(f"Regenerate it with `{REBUILD_COMMAND}` (it retrains this config with the engine and "
                        "rewrites `examples/lenet-mnist-5k/`); `python -m lth_core example` loads it into the store.")
            st.json({k: provenance[k] for k in ("command", "made_at", "seconds", "seed", "config_id", "software",
                                                "config") if k in provenance}, expanded=2)


def first_visit(runs: Any, examples: dict | None = None) -> bool:
    """Whether the store (`list_runs()`) holds nothing but the example: the visitor has trained nothing yet.
    `examples`: example_runs(store()), if the caller has it already."""
    return runs.empty or set(runs.id) <= set(example_runs(store()) if examples is None else examples)


def example_panel(runs: Any) -> None:
    """New experiment: while the store holds nothing but the example, links to it; when the example is not
    in the store (deleted, or a store that had runs before), a button that loads it."""
    examples = example_runs(store())
    if examples and first_visit(runs, examples):
        run_id, provenance = next(iter(examples.items()))
        c, run = provenance["config"], provenance["run"]
        st.info(f"**Nothing trained yet? Explore the example run first**: {_md(c['arch'])} on {_md(c['dataset'])}, "
                f"pruned in {_md(run['rounds'])} rounds down to {_md(pct(run['planned_remaining'][-1]))} of its "
                f"weights, with {_md(' and '.join(c.get('controls') or ['no']))} controls. A real run of this app's "
                "engine, shipped with it.", icon=":material/school:")
        run_links(run_id)
    elif not examples:
        if st.button("Load the example run", icon=":material/school:", key="load_example",
                     help="a finished LeNet-300-100 run on mnist-5k, shipped with the app, to explore in seconds"):
            try:
                run_id = import_example(store())
            except ExampleError as exc:
                st.error(one_line(exc), icon=":material/error:")
                return
            st.session_state["sel:run"] = run_id
            st.switch_page(PAGES["results"], query_params={"run": run_id})
