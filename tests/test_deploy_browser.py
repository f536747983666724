"""The Deploy page in a real browser (`streamlit run app.py`, headless Chromium): a running bench is cancelled
from the page, the bench and the export started by Measure each show up when they are done without a reload
(the page polls), and the latency tables fit the page's width. No timing is asserted."""
import re
import time
from pathlib import Path

import pytest

from lth_core import jobs
from lth_core.runs import tasks
from lth_core.runs.store import RunStore

from test_deploy_tasks import finished_run, task_state
from test_e2e_browser import CHROMIUM, FLAGS, _serve, assert_clean, settle, shoot
from test_jobs import wait_for

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs Debian's chromium at {CHROMIUM}")

WIDTH = 1280  # a laptop's browser window, the app's sidebar open
OVERFLOW = """() => [...document.querySelectorAll('[data-testid="stDataFrame"]')].map(e => {
  const s = e.querySelector('.dvn-scroller'); return s ? [s.scrollWidth, s.clientWidth] : null; })"""


def test_deploy_page_cancels_polls_and_fits(lth_home):
    from playwright.sync_api import sync_playwright

    with _serve(lth_home) as url, RunStore(lth_home / "runs.sqlite") as store:
        run_id = finished_run(store)
        key = jobs.submit_deploy(run_id, 2, 0, repeats=10_000, threads=1, store_path=store.path)  # runs for long
        wait_for("the bench to be running", lambda: task_state(store, run_id, key).state == tasks.RUNNING, timeout=240)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            try:
                page = browser.new_page(viewport={"width": WIDTH, "height": 3000})
                page.goto(f"{url}/deploy?run={run_id}&round=2&trial=0")
                settle(page)
                assert page.get_by_text("Measuring in the background").count() == 1
                asked = lambda: task_state(store, run_id, key).cancel_requested or not task_state(store, run_id, key).active  # noqa: E731
                for _ in range(3):  # the button sits in a fragment redrawn every 1.5 s: on a busy machine a click
                    page.get_by_role("button", name="Cancel the measurement").click()  # may land mid-redraw
                    try:
                        wait_for("the click to ask for the cancel", asked, timeout=20)
                        break
                    except AssertionError:
                        continue
                assert asked(), "three clicks on Cancel did not ask for the cancel"
                wait_for("the bench to stop as cancelled", lambda: task_state(store, run_id, key).state == tasks.CANCELLED,
                         timeout=120)
                # the page polls: the cancelled state shows without a reload
                page.get_by_text("The last measurement of this ticket was cancelled").wait_for(timeout=60_000)
                assert store.doc(run_id, "deploy/2/0") is None
                assert_clean(page)

                # Measure queues the bench and the export; each appears when done, without a reload
                page.get_by_role("button", name="Measure", exact=True).click()
                page.get_by_role("heading", name="In plain words").wait_for(timeout=400_000)
                page.get_by_role("button", name=re.compile("^ONNX ·")).wait_for(timeout=400_000)  # a download button
                assert page.get_by_text("Reload").count() == 0
                settle(page)
                assert_clean(page)
                assert task_state(store, run_id, "task/export/2/0").state == tasks.DONE
                # every table fits the page: no horizontal scroll bar (latency: one table per batch size)
                page.wait_for_selector('[data-testid="stDataFrame"] .dvn-scroller', timeout=30_000)
                time.sleep(1)
                sizes = page.evaluate(OVERFLOW)
                assert len(sizes) == 5 and all(s is not None and s[0] <= s[1] for s in sizes), sizes
                shoot(page, "deploy-measured")
            finally:
                browser.close()


@pytest.mark.parametrize("width", [1024, 1280])
def test_every_table_of_the_deploy_page_fits_a_1024_px_window(lth_home, width):
    """At 1024 px with the sidebar open the file-size table (six columns with long headers) scrolled sideways, and
    so did the latency and accuracy tables; now none does (scrollWidth = clientWidth, measured in Chromium)."""
    from playwright.sync_api import sync_playwright

    from lth_core.analysis.deploy_bench import run_deploy_bench

    with _serve(lth_home) as url, RunStore(lth_home / "runs.sqlite") as store:
        run_id = finished_run(store)
        bench = run_deploy_bench(store, run_id, 2, 0, repeats=2, threads=1, densities=(0.5, 0.05))
        store.put_doc(run_id, "deploy/2/0", bench.to_dict())
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            try:
                page = browser.new_page(viewport={"width": width, "height": 3000})
                page.goto(f"{url}/deploy?run={run_id}&round=2&trial=0")
                page.wait_for_selector('[data-testid="stDataFrame"] .dvn-scroller', timeout=120_000)
                settle(page)
                assert_clean(page)
                assert page.locator('[data-testid="stSidebar"]').is_visible()  # the sidebar open beside the page
                time.sleep(1)
                sizes = page.evaluate(OVERFLOW)
                assert len(sizes) == 5 and all(s is not None and s[0] <= s[1] for s in sizes), sizes
                shoot(page, f"deploy-{width}")
            finally:
                browser.close()
