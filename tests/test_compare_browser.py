"""Compare's "Round by round" tables in a real browser (`streamlit run app.py`, headless Chromium) at 1280 px with
the sidebar open: on a 12-round run with 2 trials and both controls, the table scrolled sideways and hid rounds
10-12 under an inner scroll bar (issue 11, defect 5); now every table of the page shows all its rows and columns."""
from pathlib import Path

import pytest

from lth_core.runs.store import RunStore

from test_deploy_browser import OVERFLOW
from test_deploy_tasks import finished_run
from test_e2e_browser import CHROMIUM, FLAGS, _serve, assert_clean, settle, shoot

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs Debian's chromium at {CHROMIUM}")

ROWS = """() => [...document.querySelectorAll('[data-testid="stDataFrame"]')].map(e => {
  const s = e.querySelector('.dvn-scroller'); return s ? [s.scrollHeight, s.clientHeight] : null; })"""


def test_the_round_by_round_tables_fit_1280_px_and_show_every_round(lth_home):
    from playwright.sync_api import sync_playwright

    with _serve(lth_home) as url, RunStore(lth_home / "runs.sqlite") as store:
        run_id = finished_run(store, rounds=12, trials=2)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 3000})
                page.goto(f"{url}/compare?run={run_id}&round=12")
                page.get_by_role("heading", name="Round by round").wait_for(timeout=120_000)
                page.wait_for_selector('[data-testid="stDataFrame"] .dvn-scroller', timeout=60_000)
                settle(page)
                assert_clean(page)
                assert page.locator('[data-testid="stSidebar"]').is_visible()
                page.wait_for_timeout(1000)
                widths, heights = page.evaluate(OVERFLOW), page.evaluate(ROWS)
                assert widths and all(w is not None and w[0] <= w[1] for w in widths), widths
                assert all(h is not None and h[0] <= h[1] for h in heights), heights  # no inner scroll: all 13 rows
                shoot(page, "compare-1280")
            finally:
                browser.close()
