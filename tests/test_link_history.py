"""A tour link in a real browser: the page it opens fills in its choices (round, variant, trial, layer) in
the URL in one step. Every write to st.query_params made the browser push a history entry, so after one
"Try it" link the Back button took five presses to return to the tour."""
import time
from pathlib import Path

import pytest

from scripts.app_server import serve_app
from test_e2e_browser import CHROMIUM, FLAGS, settle

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs Debian's chromium at {CHROMIUM}")

COUNT_PUSHES = """(() => { const push = history.pushState.bind(history);
  history.pushState = (s, t, u) => { (window.__pushes = window.__pushes || []).push(String(u)); return push(s, t, u); };
})();"""


def test_a_tour_link_adds_the_pages_choices_to_the_url_in_one_history_entry(lth_home):
    from playwright.sync_api import sync_playwright

    from lth_core.example import import_example
    from lth_core.runs.store import RunStore
    with RunStore() as store:
        run = import_example(store)
    with serve_app(lth_home) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 2400})
        page.add_init_script(COUNT_PUSHES)
        page.goto(f"{url}/tour?run={run}&step=7")
        settle(page)
        page.get_by_text("Try it: Masks").first.click()
        page.wait_for_url("**/masks?**")
        settle(page)
        time.sleep(1)
        pushes = page.evaluate("window.__pushes || []")
        assert "layer=fc1" in page.url and "round=12" in page.url, page.url
        # Streamlit's own navigation pushes the link's URL; the page's choices follow in one entry, not four
        assert len(pushes) <= 2, pushes
        browser.close()


def test_one_back_returns_to_the_tour_after_a_try_it_link(lth_home):
    """Back, pressed once on the page a tour link opened, shows the tour again. The page filled its choices into
    the URL as a second history entry after the link's own, so the first Back stayed on that page."""
    from playwright.sync_api import sync_playwright

    from lth_core.example import import_example
    from lth_core.runs.store import RunStore
    with RunStore() as store:
        run = import_example(store)
    with serve_app(lth_home) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 2400})
        page.goto(f"{url}/tour?run={run}&step=7")
        settle(page)
        page.get_by_text("Try it: Masks").first.click()
        page.wait_for_url("**/masks?**")
        settle(page)
        time.sleep(1)
        assert "layer=fc1" in page.url and "round=12" in page.url, page.url  # the URL still names the choices
        page.go_back()
        page.wait_for_url("**/tour?**", timeout=10_000)
        settle(page)
        assert page.get_by_role("heading", name="Guided tour: the lottery ticket hypothesis").is_visible()
        assert "step=7" in page.url, page.url
        page.go_forward()  # and Forward goes back to the page with its choices
        page.wait_for_url("**/masks?**", timeout=10_000)
        settle(page)
        assert "layer=fc1" in page.url, page.url
        browser.close()
