"""Streamlit widgets the pages share: the store, choices mirrored in the URL, the run picker, the
variant legend, the "What am I looking at?" notes and the guard that turns errors into one line."""
from __future__ import annotations

import functools
import html
import logging
import re
import traceback
from contextlib import contextmanager
from typing import Any, Callable, Iterator, NoReturn, Sequence

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from lth_core import ConfigError, LTHError, jobs
from lth_core.engine.network_shape import NetworkShape
from lth_core.runs.network import stored_network
from lth_core.runs import tasks
from lth_core.runs.store import RunStore, StoreError, default_store_path

from .notes import NOTES
from lth_core.analysis.plots import COLORS, VARIANTS, label_of
from lth_core.engine.variants import VARIANTS as REGISTRY
from .text import MAX_LINK_CHARS, code, cut, link_value, md, plotly

# Page scripts live in app_pages/, not pages/: a folder named pages/ switches Streamlit into its older
# multipage mode until app.py has run once, so a deep link opened first after a server start would run
# the page without app.py (no navigation, no error guard).
PAGES = {"new": "app_pages/new_experiment.py", "live": "app_pages/live_run.py", "results": "app_pages/results.py",
         "masks": "app_pages/masks.py", "compare": "app_pages/compare.py", "tour": "app_pages/tour.py",
         "playground": "app_pages/playground.py", "sweep": "app_pages/sweep.py",
         "deploy": "app_pages/deploy.py", "atinit": "app_pages/at_init.py", "stability": "app_pages/stability.py"}
ICONS = {"new": ":material/science:", "live": ":material/monitoring:", "results": ":material/bar_chart:",
         "masks": ":material/grid_on:", "compare": ":material/compare_arrows:", "tour": ":material/tour:",
         "playground": ":material/toys:", "sweep": ":material/grid_view:",
         "deploy": ":material/speed:", "atinit": ":material/content_cut:", "stability": ":material/timeline:"}
log = logging.getLogger("lth_explorer")


@st.cache_resource(show_spinner=False)
def _store_at(path: str) -> RunStore:
    return RunStore(path)


def store() -> RunStore:
    """The run store of LTH_HOME (one shared, thread-safe connection per path)."""
    return _store_at(str(default_store_path()))


@st.cache_data(show_spinner=False, max_entries=8)
def _listed_runs(path: str, token: tuple) -> pd.DataFrame:
    return store().list_runs()


def listed_runs() -> pd.DataFrame:
    """store().list_runs(), cached on the store's change token: a rerun that changed nothing in the store (a
    click, a page switch) does not read every run again (500 runs: their configs, their last rounds)."""
    return _listed_runs(str(store().path), store().change_token())


def start_queued_runs() -> None:
    """Runs (and tasks, such as a deployment bench) queued while no worker was alive (e.g. before a reboot)
    start when someone opens the app."""
    if store().run_ids("queued") or tasks.all_tasks(store(), tasks.QUEUED):  # one indexed query, not the list
        jobs.ensure_worker()


def run_network(run_id: str) -> tuple[NetworkShape | None, str]:
    """The run's network shape as the store keeps it (input kind and shape, column names, every layer's
    shape), or (None, why): a page shows a stored run without loading its data (lth_core.runs.network)."""
    return stored_network(store(), run_id)


# ---- errors -------------------------------------------------------------------------------
def one_line(exc: BaseException) -> str:
    """The error as one line of Markdown-safe text for the browser; the store's path (the server's file
    system) is named "the run store" (the CLI shows the path)."""
    return md(_hide_store_path(_error_text(exc)))


def _hide_store_path(text: str) -> str:
    path = default_store_path()
    for where, name in ((path, "the run store"), (path.parent, "the run store's folder")):
        text = text.replace(f"in {where}", f"in {name}").replace(str(where), name)
    return text


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, ConfigError):
        return f"{exc.field}: {exc.message}"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, LTHError) else f"{type(exc).__name__}: {text}".rstrip(": ")


@contextmanager
def guard(what: str = "This page") -> Iterator[None]:
    """Show an unexpected error as one line (the traceback goes to the server log, not the browser).
    Streamlit's own rerun/stop signals are BaseExceptions and pass through untouched."""
    try:
        yield
    except (LTHError, StoreError) as exc:
        st.error(one_line(exc), icon=":material/error:")
    except Exception as exc:  # noqa: BLE001 - the browser must never see a traceback
        log.error("%s failed:\n%s", what, traceback.format_exc())
        st.error(f"{md(what)} could not be shown: {one_line(exc)}", icon=":material/error:")


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`guard` for a function, e.g. a fragment that reruns on its own."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with guard("This part of the page"):
            return fn(*args, **kwargs)
    return wrapper


# ---- choices mirrored in the URL ---------------------------------------------------------------
def allowed_text(options: Sequence[Any]) -> str:
    """The choices a URL parameter accepts, as a reader would type them: '0–6' for a run of whole
    numbers, else the values themselves."""
    options = list(options)
    if options and all(isinstance(o, int) and not isinstance(o, bool) for o in options):
        ints = sorted(options)
        if len(ints) > 2 and ints == list(range(ints[0], ints[-1] + 1)):
            return f"{ints[0]}–{ints[-1]}"
    texts = [code(o) for o in options]
    return ", ".join(texts[:12] + (["…"] if len(texts) > 12 else []))


def _scope() -> str:
    """The run(s) the page's choices below the run picker belong to ('' above it and on pages
    without one): a round, variant or trial chosen for one run is not carried over to another."""
    return st.session_state.get("url:scope", "")


def set_scope(scope: str) -> None:
    st.session_state["url:scope"] = scope


def cap_link_values() -> None:
    """Cut every value of the URL to MAX_LINK_CHARS before a page reads it (app.py, each run): no page
    offers a longer one, and a 100,000-character ?run= or ?round= made the pages slow to settle. A cut
    value is named as too long where the page says it cannot use it (`link_value`)."""
    for param in list(st.query_params):
        values = st.query_params.get_all(param)
        if any(len(v) > MAX_LINK_CHARS for v in values):
            st.query_params[param] = [cut(v) for v in values]


def _link_values(param: str) -> list[str]:
    """The values of ?param= the page may use: those that came with the link (typed, pasted, bookmarked,
    or reached with the back button), and those this session wrote there for the same run. A value this
    session wrote for another run (the picker changed the run) is not a choice for this one."""
    values = st.query_params.get_all(param)
    written = st.session_state.get("url:written", {}).get(param)
    return [] if written and values == written[0] and written[1] != _scope() else values


def _from_link(param: str) -> list[str]:
    """The values of ?param= that came with the link (typed, pasted or bookmarked), not the ones this
    session wrote there itself: only those deserve a message when they do not fit."""
    values = st.query_params.get_all(param)
    written = st.session_state.get("url:written", {}).get(param)
    return [] if written and values == written[0] else values


def _write_url(param: str, values: list[str]) -> None:
    st.session_state.setdefault("url:written", {})[param] = (values, _scope())
    # kept until the page has run (`flush_url`): every write to st.query_params makes the browser push a
    # history entry, so a page filling in four choices after a link took four presses of Back to leave
    st.session_state.setdefault(PENDING, {})[param] = values if len(values) != 1 else values[0]


PENDING = "url:pending"


def flush_url() -> None:
    """Write the page's URL choices (`_write_url`) in one message: one history entry, not one per choice."""
    pending = st.session_state.pop(PENDING, None)
    if pending and any(st.query_params.get_all(k) != (v if isinstance(v, list) else [v]) for k, v in pending.items()):
        st.query_params.update(pending)


# Streamlit's browser side pushes a history entry for every change of the URL's query that a page writes
# (st.query_params), on top of the one it pushes for going to another page: after a link (a tour step's
# "Try it"), the page filling in its choices made a second entry, and Back took two presses to leave it. This
# makes a change of the query alone (same page) replace the current entry, as Streamlit's own URL-bound
# widgets do (they call replaceState); going to another page still adds one. Installed once per tab.
ONE_ENTRY_PER_PAGE = """<script>
if (!window.__lthOneEntryPerPage) {
  window.__lthOneEntryPerPage = true;
  const push = window.history.pushState.bind(window.history);
  window.history.pushState = (state, title, url) => {
    const to = new URL(url, window.location.href);
    return to.pathname === window.location.pathname ? window.history.replaceState(state, title, to.href)
                                                    : push(state, title, url);
  };
}
</script>"""


def one_history_entry_per_page() -> None:
    """Install ONE_ENTRY_PER_PAGE in the tab (app.py, every run, before the page: a fresh tab has it before
    the page's first write). Drawn in the sidebar, where its empty box is below everything."""
    st.sidebar.html(ONE_ENTRY_PER_PAGE, unsafe_allow_javascript=True)


def stop_page() -> NoReturn:
    """`st.stop()` after writing the page's URL choices: once a stop is asked, Streamlit sends nothing more, so
    app.py's write after the page has run would be lost and the link would miss the choices shown."""
    flush_url()
    st.stop()


def _keys(param: str, widget: str) -> tuple[str, str]:
    """(widget key, remembered-choice key) of `param`. The widget key stays the same for every run (tests
    and pages address it), but its value is dropped when the run changes; the remembered choice is kept
    per run, so coming back to a run shows what was chosen for it."""
    scope = _scope()
    if st.session_state.get(f"scope:{widget}", scope) != scope:
        st.session_state.pop(widget, None)
    st.session_state[f"scope:{widget}"] = scope
    return widget, f"sel:{param}" + (f"@{scope}" if scope else "")


def bad_link(param: str, wanted: Sequence[str], options: Sequence[Any], field: str, showing: str) -> None:
    """Say which value of the link was not used, what the field accepts, and what is shown instead."""
    given = ", ".join(link_value(w) for w in wanted)
    st.warning(f"The link asks for **{field}** {given} (`?{param}=`), which is not available here; "
               f"allowed: {allowed_text(options)}. Showing **{md(showing)}** instead.", icon=":material/link_off:")


def url_choice(param: str, options: Sequence[Any], label: str, *, default: Any = None, kind: str = "selectbox",
               container: Any = st, field: str | None = None, warn: bool = True, **kwargs: Any) -> Any:
    """A selectbox / radio / select_slider whose value lives in the URL (?param=value), so a link
    reproduces the view. The URL wins when the page opens; then the widget; the session remembers
    the choice when the user visits another page and comes back. A value in the link that is not one
    of `options` is named in a warning, with the allowed values (`field` names it, default `param`).
    A select_slider with a single option is not drawn (there is nothing to choose).
    Below a run picker, the choice belongs to the picked run (see `_scope`)."""
    key, sticky = _keys(param, f"w:{param}")
    options = list(options)
    if not options:
        return None
    by_text = {str(o): o for o in options}
    value = st.session_state.get(key)
    if value not in options:
        wanted = (_link_values(param) or [None])[-1] or st.session_state.get(sticky)
        value = by_text.get(str(wanted)) if wanted is not None else None
        value = value if value is not None else (default if default in options else options[0])
    linked = _from_link(param)
    if warn and linked and linked[-1] not in by_text:
        show = kwargs.get("format_func") or str
        bad_link(param, linked[-1:], options, field or param, str(show(value)))
    if kind == "select_slider" and len(options) == 1:
        st.session_state.pop(key, None)
        container.caption(f"{label}: {md((kwargs.get('format_func') or str)(value))} (the only one)")
    else:
        # assigned on every run: a widget of the same key on another page is another widget to Streamlit
        st.session_state[key] = value
        widget = getattr(container, kind)
        value = widget(label, options=options, key=key, **kwargs)
    st.session_state[sticky] = value
    _write_url(param, [str(value)])
    return value


def show_next(param: str, value: Any) -> None:
    """Make the page's next run show `value` in its `url_choice(param)` and name it in the URL: after a
    launch or a start the picker's own state would keep showing what it showed before."""
    key, sticky = _keys(param, f"w:{param}")
    st.session_state.pop(key, None)
    st.session_state[sticky] = value
    st.query_params[param] = str(value)


def url_multi(param: str, options: Sequence[Any], label: str, *, default: Sequence[Any] = (),
              container: Any = st, field: str | None = None, warn: bool = True, **kwargs: Any) -> list[Any]:
    """A multiselect mirrored in the URL as repeated ?param=a&param=b; values of the link that are not
    among `options` are named in a warning and left out. It shares its remembered choice with a
    `url_choice` of the same param: the value chosen there is among those chosen here, and stays the
    one chosen there while it is among them (Results overlays runs; Live run, Masks and Compare show one)."""
    key, one = _keys(param, f"w:{param}:multi")
    several = one + ":multi"
    options = list(options)
    by_text = {str(o): o for o in options}
    if key in st.session_state:
        chosen = [v for v in st.session_state[key] if v in options]
    else:
        remembered = st.session_state.get(several) or []
        if st.session_state.get(one) is not None and st.session_state[one] not in remembered:
            remembered = [st.session_state[one]]  # another page chose a run that is not among these
        wanted = _link_values(param) or remembered
        chosen = [by_text[w] for w in dict.fromkeys(map(str, wanted)) if w in by_text] or [d for d in default if d in options]
    unknown = [w for w in dict.fromkeys(_from_link(param)) if w not in by_text]
    if warn and unknown and options:
        show = kwargs.get("format_func") or str
        kept = ", ".join(str(show(c)) for c in chosen) or "nothing"
        bad_link(param, unknown, options, field or param, kept)
    st.session_state[key] = chosen
    values = container.multiselect(label, options=options, key=key, **kwargs)
    st.session_state[several] = values
    if values and st.session_state.get(one) not in values:
        st.session_state[one] = values[0]
    _write_url(param, [str(v) for v in values])
    return values


# ---- runs ------------------------------------------------------------------------------------
def run_label(row: Any) -> str:
    """A run as the pickers name it: short enough that five chosen runs fit the multi-run picker (the
    creation time is in the runs table on New experiment)."""
    return f"{row['name']} · {row['dataset']}/{row['arch']} · {row['id']}"


def run_picker(multi: bool = False, *, need_rounds: bool = True, default: str | None = None) -> Any:
    """Choose a run (or several) from the store; stops the page with a pointer to New experiment when
    there is nothing to show. The choice is ?run=ID in the URL; `default` (else the newest finished run)
    is shown until one is chosen."""
    runs = listed_runs()
    every = set(runs.id)
    if need_rounds:
        runs = runs[runs.rounds_done > 0]
    asked = [r for r in st.query_params.get_all("run") if r not in set(runs.id)]
    if asked:
        why = "has not finished a round yet" if asked[0] in every else "is not in the run store"
        st.warning(f"Run {link_value(asked[0])} {why} (`?run=` in the link); showing "
                   f"{'another run' if not runs.empty else 'nothing'} instead.",
                   icon=":material/info:")
    if runs.empty:
        st.info("No run has finished a round yet. Start one on **New experiment**; its results appear here as "
                "soon as its first round is done.")
        st.page_link(PAGES["new"], label="New experiment", icon=ICONS["new"])
        stop_page()
    set_scope("")  # the run itself is chosen above any scope
    labels = {r["id"]: run_label(r) for r in runs[["id", "name", "dataset", "arch"]].to_dict("records")}
    finished = [i for i, s in zip(runs.id, runs.status) if s == "finished"]
    newest = default if default in labels else finished[0] if finished else runs.id.iloc[0]
    if multi:
        chosen = url_multi("run", list(labels), "Runs (choose several to overlay them)", default=[newest],
                           format_func=labels.get, warn=False)
        if not chosen:
            st.info("Choose at least one run above.")
            stop_page()
        set_scope("+".join(chosen))
        return chosen
    chosen = url_choice("run", list(labels), "Run", default=newest, format_func=labels.get, warn=False)
    set_scope(chosen)
    return chosen


def run_links(run_id: str, pages: Sequence[str] = ("live", "results", "masks", "compare")) -> None:
    """Links to the run's other views, carrying ?run=ID."""
    names = {"live": "Live run", "results": "Results", "masks": "Masks", "compare": "Compare", "deploy": "Deploy"}
    for col, page in zip(st.columns(len(pages)), pages):
        col.page_link(PAGES[page], label=names[page], icon=ICONS[page], query_params={"run": run_id})


# ---- explanations and legend ---------------------------------------------------------------------
def explain(topic: str, **values: Any) -> None:
    """The "What am I looking at?" note of a plot, for someone new to pruning."""
    with st.expander("What am I looking at?"):
        st.markdown(NOTES[topic].format(**values))


def variant_legend(variants: Sequence[str] = (*VARIANTS, "dense"), reset: str = "init") -> None:
    """One line naming the colours used everywhere for the variants (the ticket named for the run's `reset`);
    hovering a name shows the variant's explanation."""
    tips = {n: html.escape(v.explanation, quote=True) for n, v in REGISTRY.items()}
    chips = [f'<span title="{tips.get(v, "")}"><span style="color:{COLORS[v]};font-size:1.2em">■</span> '
             f'{html.escape(label_of(v, reset))}</span>' for v in variants]
    st.markdown("&nbsp;&nbsp;&nbsp;".join(chips), unsafe_allow_html=True)


def run_context(info: Any) -> str:
    """One line saying which run a figure comes from, for a figure seen on its own (a screenshot, a
    downloaded PNG): name, data, architecture and trials."""
    c = info.config
    trials = f"{c.trials} trial{'s' if c.trials != 1 else ''}"
    return plotly(f"{info.name} · {c.dataset}, {c.arch} · {trials} · run {info.id}")


def whole_table(frame: pd.DataFrame) -> None:
    """A short table shown whole: every row, no scroll bar of its own (the height of its header and all its rows)."""
    st.dataframe(frame, hide_index=True, height=35 * (len(frame) + 1) + 3)


def _file_name(fig: go.Figure) -> str:
    title = re.sub(r"<[^>]+>", " ", fig.layout.title.text or "figure")
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60] or "figure"


def _with_context(fig: go.Figure, context: str | None) -> go.Figure:
    if context:
        fig.update_layout(title_subtitle_text=context, title_subtitle_font_size=12,
                          margin_t=max(fig.layout.margin.t or 0, 50) + 22)
    return fig


def _draw(fig: go.Figure, topic: str | None, values: dict[str, Any]) -> None:
    st.plotly_chart(fig, config={"displaylogo": False,
                                 "toImageButtonOptions": {"format": "png", "scale": 2, "filename": _file_name(fig)}})
    if topic:
        explain(topic, **values)


def chart(fig: go.Figure, topic: str | None = None, *, context: str | None = None, **values: Any) -> None:
    """A Plotly figure at full width, followed by its note. `context` (see run_context) is drawn under
    the title, so the figure still says which run it shows when it is copied out of the page; the
    camera button saves a PNG at twice the size, named after the title."""
    _draw(_with_context(fig, context), topic, values)


@st.cache_resource(show_spinner=False, max_entries=256)
def _figure(key: tuple, context: str | None, _build: Callable[[], go.Figure]) -> go.Figure:
    return _with_context(_build(), context)


def cached_chart(key: tuple, build: Callable[[], go.Figure], topic: str | None = None, *, token: tuple,
                 context: str | None = None, **values: Any) -> None:
    """`chart(build(), topic, context=context)`, with the figure built once for every session and rerun that
    asks for the same `key`: a page's figures from a run cost most of its script's time (Plotly validates every
    property). `key` must name everything the figure is drawn from: the figure, the run(s) and the page's
    choices; `token` is the store's change token (`store_token()`) that the page read *before* it read the rows
    the figure is drawn from: one read after them could already include a write that they miss (a round, a
    rename), and keep that stale figure under the newer token. The figure is shared, so it is never changed here."""
    _draw(_figure((*key, token), context, build), topic, values)


@st.cache_data(show_spinner=False, max_entries=512)
def _value(key: tuple, _build: Callable[[], Any]) -> Any:
    return _build()


def cached(key: tuple, build: Callable[[], Any], *, token: tuple) -> Any:
    """`build()` (what a page computes from a run: its summary lines, statistics, tables), computed once for
    every session and rerun that asks for the same `key` (as `cached_chart`: the run(s) and the page's choices,
    and the `token` read before the rows). A copy is returned, so the caller may change it."""
    return _value((*key, token), build)


def store_token() -> tuple:
    """The store and what changes whenever anything in it does (RunStore.change_token): part of every cache key.
    Read it before the rows that a cache keyed on it is built from, never after (see `cached_chart`)."""
    return (str(store().path), *store().change_token())
