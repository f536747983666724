"""Page render times on a store of many runs, in headless Chromium.

    python -m scripts.bench_pages [--runs 500] [--home /tmp/lth-bench-home] [--repeat 3] [--shots DIR]

Builds (once; kept in --home) a store of `--runs` real runs: a few tiny runs and a tiny sweep are trained
by the engine, then copied through the store's API (RunStore.copy_run) under new ids, names, dates and
sweeps, so every number in the store is a real one. Then it serves the app from that store and opens each
page in headless Chromium (/usr/bin/chromium, --no-sandbox --disable-gpu), `--repeat` times, in three ways:
in a fresh browser profile (a first visit: a new Streamlit session, nothing cached); in a new tab of a
browser that has opened the app before (a returning visitor: a new session, but the browser's cache holds
Streamlit's and Plotly's scripts); and by clicking its sidebar link inside one tab (navigation inside the
app, which keeps the session). It prints the time from the navigation until the
page stops changing: the last change of its DOM (a MutationObserver installed before the page's own
scripts) before a quiet second with Streamlit idle.
The target is under 1 s per page. For scale, two one-file pages are timed the same way: a bare Streamlit
page (a title and a line of text), the floor that any page's full load pays for Streamlit's own session
start, and the same with one three-point Plotly chart, the floor of any page that draws a chart.
Timing goes here, never into a test.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from scripts.app_server import serve_app

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--no-first-run", "--disable-sync"]
TINY = ["--iterations", "40", "--rounds", "3", "--trials", "2", "--controls", "reinit,random"]
# the runs trained for real: (dataset, arch, extra flags, name)
BASES = [("moons", "mlp", ["--hidden", "16"], "moons baseline"),
         ("circles", "mlp", ["--hidden", "16", "--prune-rate", "0.4"], "circles fast prune"),
         ("digits", "mlp", ["--hidden", "32", "--reset", "rewind:10"], "digits rewind"),
         ("digits", "lenet-300-100", ["--prune-rate", "0.3"], "digits lenet")]
WORDS = ("baseline", "rewind", "wide", "narrow", "seed", "global", "late reset", "adam")
QUIET_S = 1.0          # the page "stopped changing" once nothing changed for this long
PAGE_TIMEOUT_S = 60.0
# MutationObserver from the first script of the document: the time (ms since navigation) of its last change
OBSERVER = """
window.__lastChange = 0;
new MutationObserver(() => { window.__lastChange = performance.now(); })
  .observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
"""


def build_store(home: Path, total: int = 500, log=print) -> dict[str, str]:
    """Fill the store of `home` (LTH_HOME) with `total` real runs: BASES and a 2-cell sweep trained, the rest
    copies of them. Returns {"run": an original run id, "sweep": the trained sweep's id}. Kept if already there."""
    os.environ["LTH_HOME"] = str(home)
    from lth_core.cli import main
    from lth_core.runs.listing import refresh_critical
    from lth_core.runs.store import RunStore
    from lth_core.runs.sweep import SWEEP_DOC

    store = RunStore(home / "runs.sqlite")
    have = store.list_runs()
    if len(have) >= total:
        sweeps = store.sweeps()
        return {"run": have.id.iloc[-1], "sweep": sweeps["sweep"].iloc[-1]}
    started = time.perf_counter()
    originals = []
    for dataset, arch, extra, name in BASES:
        if main(["run", "--store", "--dataset", dataset, "--arch", arch, *TINY, *extra, "--name", name]) != 0:
            raise SystemExit(f"training {name} failed")
        originals.append(store.list_runs().id.iloc[0])
    if main(["sweep", "--dataset", "moons", "--arch", "mlp", "--hidden", "16", *TINY, "--grid",
             "prune_rate=0.2,0.5", "--name", "moons prune rate"]) != 0:
        raise SystemExit("training the sweep failed")
    sweep = store.sweeps()["sweep"].iloc[0]
    cells = store.list_runs(sweep=sweep).id.tolist()
    log(f"trained {len(BASES)} runs and a {len(cells)}-cell sweep in {time.perf_counter() - started:.0f} s")
    refresh_critical(store)  # the copies carry it
    start = datetime.now(timezone.utc)
    k, count = 0, len(store.list_runs())
    while count < total:
        when = lambda: (start - timedelta(minutes=7 * k)).isoformat(timespec="milliseconds")  # noqa: E731
        if k % 10 == 9 and count + len(cells) <= total:  # every tenth: a copy of the sweep, under its own id and name
            new_sweep = f"sw{k:06d}"[:8]
            for cell in cells:
                copy = store.copy_run(cell, f"{WORDS[k % len(WORDS)]} sweep {k} · {store.get_run(cell).name.split(' · ')[-1]}",
                                      sweep=new_sweep, created_at=when())
                doc = dict(store.doc(copy, SWEEP_DOC, {}), name=f"{WORDS[k % len(WORDS)]} sweep {k}")
                store.put_doc(copy, SWEEP_DOC, doc)
            count += len(cells)
        else:
            source = originals[k % len(originals)]
            store.copy_run(source, f"{WORDS[k % len(WORDS)]} {store.get_run(source).config.dataset} #{k}",
                           created_at=when())
            count += 1
        k += 1
    log(f"store of {len(store.list_runs())} runs ready in {time.perf_counter() - started:.0f} s: {store.path}")
    return {"run": originals[0], "sweep": sweep}


BARE_APP = 'import streamlit as st\nst.title("A bare Streamlit page")\nst.write("Nothing else.")\n'
# the same with one three-point Plotly chart: the floor of any page that draws a chart (Plotly's script is
# fetched, parsed and run in the browser on every full load)
BARE_CHART_APP = ('import plotly.graph_objects as go\nimport streamlit as st\nst.title("A bare page with one chart")\n'
                  'st.plotly_chart(go.Figure(go.Scatter(x=[1, 2, 3], y=[1, 3, 2])))\n')


def render_seconds(page, url: str) -> float:
    """Seconds from navigating to `url` (a full load: a new Streamlit session) until its DOM stopped
    changing (QUIET_S with Streamlit idle)."""
    page.goto(url)
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=PAGE_TIMEOUT_S * 1000)
    return _settled(page, 0.0, url)


def navigate_seconds(page, name: str) -> float:
    """Seconds from clicking `name` in the sidebar (navigation inside the app: the same session, the same
    document) until the page stopped changing; the page shows the run the session chose before."""
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=name, exact=True).click()
    clicked = page.evaluate("performance.now()")
    return _settled(page, clicked, name)


def _settled(page, since_ms: float, what: str) -> float:
    """Seconds from `since_ms` (performance.now() of the navigation) to the last DOM change before a quiet
    QUIET_S with Streamlit idle; the page must have changed after `since_ms`."""
    end = time.time() + PAGE_TIMEOUT_S
    while time.time() < end:
        time.sleep(0.1)
        # Streamlit idle: no "Running..." and no spinner (a spinner turns by CSS, which changes no DOM node)
        idle = page.locator('[data-testid="stStatusWidget"], [data-testid="stSpinner"]').count() == 0
        now, last = page.evaluate("[performance.now(), window.__lastChange]")
        if idle and last > since_ms and now - last >= QUIET_S * 1000:
            return (last - since_ms) / 1000
    raise SystemExit(f"{what} never stopped changing within {PAGE_TIMEOUT_S:.0f} s")


def shoot(page, path: Path) -> None:
    """The whole page: Streamlit scrolls inside its own container, so the viewport is made as tall as it first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMainBlockContainer\"]')"
                           ".getBoundingClientRect().height")
    page.set_viewport_size({"width": 1400, "height": int(min(max(height + 120, 800), 8000))})
    page.wait_for_timeout(800)
    page.screenshot(path=str(path), full_page=True)


def pages(ids: dict[str, str]) -> dict[str, str]:
    run, sweep = ids["run"], ids["sweep"]
    return {"New experiment": "", "Live run": f"live_run?run={run}", "Results": f"results?run={run}",
            "Masks": f"masks?run={run}", "Compare": f"compare?run={run}", "Sweep": f"sweep?sweep={sweep}",
            "Deploy": f"deploy?run={run}", "Guided tour": f"tour?run={run}", "Playground": "playground"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=500, help="runs in the store (default 500)")
    ap.add_argument("--home", type=Path, default=Path("/tmp/lth-bench-home"), help="LTH_HOME of the store (kept)")
    ap.add_argument("--repeat", type=int, default=3, help="loads of each page (default 3)")
    ap.add_argument("--shots", type=Path, help="save a screenshot of each page's last load here")
    ap.add_argument("--pages", help="comma-separated page names to time (default: all), e.g. Results,Sweep")
    args = ap.parse_args(argv)
    if not 1 <= args.runs <= 5000 or not 1 <= args.repeat <= 20:
        ap.error("--runs must be 1–5000 and --repeat 1–20")
    if not Path(CHROMIUM).exists():
        ap.error(f"needs Chromium at {CHROMIUM}")
    args.home.mkdir(parents=True, exist_ok=True)
    ids = build_store(args.home, args.runs)
    from playwright.sync_api import sync_playwright

    wanted = [w.strip() for w in args.pages.split(",")] if args.pages else None
    chosen = {name: path for name, path in pages(ids).items() if not wanted or name in wanted}
    full: dict[str, list[float]] = {name: [] for name in chosen}
    cached: dict[str, list[float]] = {name: [] for name in chosen}
    inside: dict[str, list[float]] = {name: [] for name in chosen}
    loads = [os.getloadavg()[0]]
    with serve_app(args.home, "streamlit-bench.log") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            for i in range(args.repeat):  # the two kinds alternate, so a change in the machine's load hits both
                for name, path in chosen.items():  # full loads: each a fresh tab, so a new Streamlit session
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    page.add_init_script(OBSERVER)
                    full[name].append(render_seconds(page, f"{url}/{path}"))
                    if args.shots and i == args.repeat - 1:
                        shoot(page, args.shots / f"bench-{name.lower().replace(' ', '-')}.png")
                    page.close()
                # a returning visitor: a new tab (a new session) in one browser profile, whose cache the
                # first visit of each page warmed
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                context.add_init_script(OBSERVER)
                for name, path in chosen.items():
                    for visit in range(2):
                        page = context.new_page()
                        took = render_seconds(page, f"{url}/{path}")
                        page.close()
                    cached[name].append(took)
                context.close()
                # in-app: one tab, opened on Results of the run (so the session has chosen it), then each page
                # in turn from the sidebar, as a person moves around the app
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.add_init_script(OBSERVER)
                render_seconds(page, f"{url}/{pages(ids)['Results']}")
                for name in chosen:
                    inside[name].append(navigate_seconds(page, name))
                page.close()
                loads.append(os.getloadavg()[0])
                print(f"pass {i + 1}: " + "  ".join(f"{n} {full[n][-1]:.2f}/{cached[n][-1]:.2f}/{inside[n][-1]:.2f}"
                                                    for n in chosen), flush=True)
        finally:
            browser.close()
    floors = {"a bare Streamlit page (floor)": bare_page_seconds(args.home, args.repeat, BARE_APP),
              "a bare page with one Plotly chart (floor of pages with charts)":
                  bare_page_seconds(args.home, args.repeat, BARE_CHART_APP)}
    print(f"\n{args.runs} runs; load average (1 min) {min(loads):.1f}–{max(loads):.1f} on {os.cpu_count()} cores; "
          f"seconds until the page stopped changing, median of {args.repeat} (first visit: the very first one in brackets)")
    print("| page | first visit | returning visitor, new tab | in-app navigation |\n| --- | --- | --- | --- |")
    for name in chosen:
        a, c, b = (statistics.median(t[name]) for t in (full, cached, inside))
        print(f"| {name} | {a:.2f} ({full[name][0]:.2f}) | {c:.2f} | {b:.2f} |")
    for what, (first, returning) in floors.items():
        print(f"| {what} | {statistics.median(first):.2f} ({first[0]:.2f}) | {statistics.median(returning):.2f} | - |")
    return 0


def bare_page_seconds(home: Path, repeat: int, source: str) -> tuple[list[float], list[float]]:
    """Full loads of a one-file page (`source`), served and timed as the app's pages are (first visits, then
    a returning visitor's new tabs): what Streamlit (and Plotly) cost before the app does anything."""
    from playwright.sync_api import sync_playwright

    script = home / "bare_page.py"
    script.write_text(source)
    first, returning = [], []
    with serve_app(home, "streamlit-bare.log", str(script)) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            for _ in range(repeat):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.add_init_script(OBSERVER)
                first.append(render_seconds(page, url))
                page.close()
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.add_init_script(OBSERVER)
            for visit in range(repeat + 1):
                page = context.new_page()
                took = render_seconds(page, url)
                page.close()
                if visit:
                    returning.append(took)
        finally:
            browser.close()
    return first, returning


if __name__ == "__main__":
    raise SystemExit(main())
