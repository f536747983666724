"""End to end in a real browser: `streamlit run app.py` on a free port, headless Chromium through
Playwright. Fill the form with a tiny experiment, run it, watch it finish, then visit Results,
Masks and Compare. Screenshots of every page land in artifacts/screenshots/ (gitignored)."""
import contextlib
import re
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from scripts.app_server import serve_app, stop_group

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "artifacts" / "screenshots"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--no-first-run"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs Debian's chromium at {CHROMIUM}")


@pytest.fixture
def server(lth_home):
    """The app on a free port, with its own LTH_HOME; stops it and any worker it started."""
    with _serve(lth_home) as url:
        yield url


@contextlib.contextmanager
def _serve(lth_home: Path):
    """The app (scripts/app_server.py); on the way out, the runs it left queued or running are cancelled and the
    scheduler it started is stopped."""
    from lth_core import jobs
    from lth_core.runs.store import RunStore

    try:
        with serve_app(lth_home) as url:
            yield url
    finally:
        store_path = lth_home / "runs.sqlite"
        if store_path.exists():
            with RunStore(store_path) as store:
                for run_id in store.list_runs().query("status in ['queued', 'running']").id:
                    jobs.cancel(run_id, store_path=store_path)
            deadline = time.time() + 15  # the scheduler exits on its own a few seconds after the last run
            while jobs.scheduler_pid(store_path) and time.time() < deadline:
                time.sleep(0.3)
            stop_group(jobs.scheduler_pid(store_path))


def settle(page, timeout_s: float = 90) -> None:
    """Wait until Streamlit has finished the script run and the page has stopped changing."""
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=timeout_s * 1000)  # every page has a title
    end, last, stable = time.time() + timeout_s, None, 0
    while time.time() < end and stable < 3:
        time.sleep(0.4)
        busy = page.locator('[data-testid="stStatusWidget"]').count() + page.locator('[data-testid="stSpinner"]').count()
        snap = (page.locator("[data-testid]").count(), len(page.inner_text("body")))
        stable = stable + 1 if (snap == last and not busy) else 0
        last = snap


def choose(page, label: str, option: str) -> None:
    page.get_by_role("combobox", name=label, exact=True).click()
    page.get_by_role("option", name=re.compile("^" + re.escape(option))).first.click()
    settle(page)


def type_into(page, kind: str, label: str, value: str) -> None:
    field = page.locator(f'[data-testid="{kind}"]').filter(has=page.get_by_text(label, exact=True)).locator("input")
    field.fill(value)
    field.press("Enter")
    settle(page)


def shoot(page, name: str) -> Path:
    """A screenshot of the whole page: Streamlit scrolls inside its own container, so the viewport is
    first made as tall as the content."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    size = page.viewport_size
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMainBlockContainer\"]')"
                           ".getBoundingClientRect().height")
    page.set_viewport_size({"width": size["width"], "height": int(min(max(height + 120, 800), 8000))})
    page.wait_for_timeout(800)  # plotly redraws at the new size
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    return path


def assert_clean(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator('[data-testid="stException"]').first.inner_text()
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, errors.first.inner_text()


def test_a_tiny_experiment_from_form_to_compare(server):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 4200})
            started = time.perf_counter()
            page.goto(server)
            settle(page)
            load_s = time.perf_counter() - started
            assert page.get_by_role("heading", name="New experiment").count() == 1
            assert page.get_by_text("Rough time").count() == 1  # the estimate of the default experiment
            shoot(page, "1-new-experiment")

            # a tiny experiment: digits, a 32-unit mlp, 2 rounds of 1 epoch
            choose(page, "Dataset", "digits")
            choose(page, "Architecture", "mlp")
            type_into(page, "stTextInput", "Hidden layer sizes", "32")
            type_into(page, "stNumberInput", "Epochs per round", "1")
            type_into(page, "stNumberInput", "Batch size", "32")
            type_into(page, "stNumberInput", "Pruning rounds", "2")
            type_into(page, "stNumberInput", "Trials", "2")
            type_into(page, "stTextInput", "Name of the run (optional)", "browser test run")
            assert "trainings" in page.inner_text("body")
            page.locator(".st-key-run_button button").click()

            page.wait_for_url(re.compile(r".*/live_run\?run=\w+"), timeout=60_000)
            try:  # catch the run while it trains, if the machine is slow enough to let us
                page.get_by_text("Status: running").wait_for(timeout=20_000)
                page.locator(".js-plotly-plot").first.wait_for(timeout=10_000)
                shoot(page, "2-live-run-training")
            except PlaywrightTimeout:
                pass
            page.get_by_text("Status: finished").wait_for(timeout=180_000)
            settle(page)
            run_id = re.search(r"run=(\w+)", page.url).group(1)
            assert page.get_by_text("browser test run").count() >= 1
            assert page.locator(".js-plotly-plot").count() >= 2
            assert_clean(page)
            shoot(page, "2-live-run-finished")
            page.reload()  # a reload shows the same state, read back from the store
            settle(page)
            assert page.get_by_text("Status: finished").count() == 1 and run_id in page.url

            # the run's link in a second browser shows the same state
            other = browser.new_context(viewport={"width": 1400, "height": 1200}).new_page()
            other.goto(f"{server}/live_run?run={run_id}")
            settle(other)
            assert other.get_by_text("Status: finished").count() == 1
            assert "dense network and 2 of 2 pruned rounds done" in other.inner_text("body")
            other.context.close()

            timings = {"new experiment": load_s}
            for label, name, plots in (("Results", "3-results", 4), ("Masks", "4-masks", 6), ("Compare", "5-compare", 2)):
                started = time.perf_counter()
                page.get_by_role("link", name=label).last.click()
                page.wait_for_url(re.compile(rf".*/{label.lower()}\?run={run_id}"), timeout=30_000)
                settle(page)
                timings[label] = time.perf_counter() - started
                assert page.locator(".js-plotly-plot").count() >= plots, label
                assert_clean(page)
                shoot(page, name)
            body = page.inner_text("body")
            assert re.search(r"At \d+\.\d\s% of weights the ticket reaches \d+\.\d\s%, reinit \d+\.\d\s%, "
                             r"a random mask \d+\.\d\s%; dense \d+\.\d\s%\.", body)  # \s: a no-break space too

            # the runs table on New experiment opens a run: tick its row, follow a link
            page.goto(server)
            settle(page)
            grid = page.locator('.st-key-runs_table [data-testid="stDataFrame"]')
            grid.scroll_into_view_if_needed()
            box = grid.bounding_box()
            page.mouse.click(box["x"] + 15, box["y"] + 52)  # the first row's tick box (header ~35 px, rows ~35 px)
            page.get_by_text(re.compile(rf"browser test run \({run_id}\): .* Open it on:")).wait_for(timeout=10_000)
            page.get_by_role("link", name="Masks").last.click()
            page.wait_for_url(re.compile(rf".*/masks\?run={run_id}"), timeout=30_000)
            (SHOTS / "page-load-seconds.txt").write_text("".join(f"{k}: {v:.1f}\n" for k, v in timings.items()))
        finally:
            browser.close()


# ---- the selected run follows the user from page to page (issue 9, item 1) ----
def shown_run(page) -> str:
    """The run the page's run picker shows (its selectbox, or Results' multiselect), as its label reads."""
    picker = page.locator('[data-testid="stSelectbox"], [data-testid="stMultiSelect"]').first
    typed = picker.locator("input")
    return picker.inner_text() + " " + " ".join(typed.nth(i).input_value() for i in range(typed.count()))


def test_the_selected_run_stays_selected_on_every_page(app_store):
    from playwright.sync_api import sync_playwright

    done, other = app_store["done"], app_store["other"]  # `other` is the newest finished run: every page's default
    with _serve(app_store["home"]) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            sidebar = page.locator('[data-testid="stSidebarNav"]')
            page.goto(f"{url}/compare?run={done}")
            settle(page)
            for label, path in (("Results", "results"), ("Live run", "live_run"), ("Compare", "compare"),
                                ("Masks", "masks")):
                sidebar.get_by_role("link", name=label).click()
                page.wait_for_url(re.compile(rf".*/{path}\?.*"), timeout=30_000)
                settle(page)
                assert re.search(rf"[?&]run={done}(&|$)", page.url) and other not in page.url, (label, page.url)
                assert "tiny digits run" in shown_run(page) and "seed 1" not in shown_run(page), label
            page.go_back()  # back to Compare: still the same run
            settle(page)
            assert re.search(rf"[?&]run={done}(&|$)", page.url) and "tiny digits run" in shown_run(page), page.url

            # a round chosen for one run is not carried over to another: the other run opens at its last round
            page.goto(f"{url}/compare?run={done}&round=1")
            settle(page)
            assert "round=1" in page.url
            choose(page, "Run", "seed 1")
            assert re.search(rf"[?&]run={other}(&|$)", page.url) and "round=2" in page.url, page.url
            # ... and the run picked on Compare is the one Results opens with
            sidebar.get_by_role("link", name="Results").click()
            page.wait_for_url(re.compile(r".*/results\?.*"), timeout=30_000)
            settle(page)
            assert "seed 1" in shown_run(page) and "tiny digits run" not in shown_run(page), page.url
            assert_clean(page)
        finally:
            browser.close()


# ---- user text is drawn as text (issue 9, item 14) ----
EVIL = "`![i](http://127.0.0.1:9/x.png)` [CLICKME](http://evil.example/phish) www.evil.example"


def test_a_malicious_run_name_or_link_value_draws_no_image_and_no_link(app_store, tmp_path):
    """A run named like Markdown, and the same text in ?round= / ?variant= / ?metric=, reads as itself:
    Chromium fetches no image from the named host and the page has no link to it."""
    import sqlite3

    from playwright.sync_api import sync_playwright

    from lth_core.runs.store import RunStore

    home = tmp_path / "evil-home"  # a copy of app_store, so the shared fixture keeps its names
    home.mkdir()
    (home / "cache").symlink_to(app_store["home"] / "cache")
    with sqlite3.connect(app_store["home"] / "runs.sqlite") as src, sqlite3.connect(home / "runs.sqlite") as dst:
        src.backup(dst)
    done, other = app_store["done"], app_store["other"]
    with RunStore(home / "runs.sqlite") as store:
        store.rename(done, EVIL)
    evil = urllib.parse.quote(EVIL)
    visits = {"live-run-evil-name": f"live_run?run={done}", "results-evil-name": f"results?run={done}&run={other}",
              "compare-evil-round": f"compare?run={other}&round={evil}", "masks-evil-variant": f"masks?run={other}&variant={evil}",
              "results-evil-metric": f"results?run={other}&metric={evil}", "live-run-evil-run": f"live_run?run={evil}"}
    with _serve(home) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            fetched = []
            page.on("request", lambda r: fetched.append(r.url))
            for name, path in visits.items():
                page.goto(f"{url}/{path}")
                settle(page)
                shoot(page, f"escaping-{name}")
                main = page.locator('[data-testid="stMain"]')
                hrefs = [a.get_attribute("href") or "" for a in main.locator("a").all()]
                hrefs = [h for h in hrefs if not h.startswith("#")]  # a heading's own anchor
                assert not [h for h in hrefs if "evil" in h or "127.0.0.1:9/" in h], (name, hrefs)
                assert main.locator("img").count() == 0, name
                assert "CLICKME" in main.inner_text(), name  # the text is there, as text
                assert not [u for u in fetched if "127.0.0.1:9/" in u.split("?")[0] or "evil" in u.split("?")[0]], name
        finally:
            browser.close()
