"""In a real browser, at 1280 and 1024 pixels: the toolbar Streamlit shows over a data grid on hover (show
columns, download, search, full screen) covers nothing above the grid. It is drawn in the 44 pixels above the
grid's top right corner, and a grid placed right under a box (the runs list's "Runs of sweep" filter, the
Sweep page's "What am I looking at?") had those pixels over the box."""
import time
from pathlib import Path

import pytest

from test_e2e_browser import CHROMIUM, FLAGS, _serve, settle

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs Debian's chromium at {CHROMIUM}")

# the rectangles of what a user reads or clicks, outside the grids and their toolbars: text (each line's own
# extent, not its paragraph's full width), boxes of inputs and selects, expanders, buttons
COVERED = """(toolbar) => {
  const t = toolbar.getBoundingClientRect();
  const meets = r => r.width > 0 && r.height > 0 && r.left < t.right && r.right > t.left && r.top < t.bottom && r.bottom > t.top;
  const main = document.querySelector('[data-testid="stMain"]');
  const outside = e => !e.closest('[data-testid="stDataFrame"]') && !e.closest('[data-testid="stElementToolbar"]');
  const hits = [];
  for (const e of main.querySelectorAll('[data-baseweb="select"], [data-baseweb="input"], [data-testid="stExpander"] details, button'))
    if (outside(e) && e.checkVisibility() && meets(e.getBoundingClientRect())) hits.push((e.closest("[data-testid]") || e).getAttribute("data-testid") + ": " + (e.getAttribute("aria-label") || e.textContent).slice(0, 40));
  const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) { const n = walker.currentNode;
    const parent = n.parentElement;  // text in a closed tooltip or expander is in the page, unseen
    if (!n.textContent.trim() || !outside(parent) || !parent.checkVisibility({opacityProperty: true, visibilityProperty: true})) continue;
    const range = document.createRange(); range.selectNodeContents(n);
    if ([...range.getClientRects()].some(meets)) hits.push((parent.closest("[data-testid]") || parent).getAttribute("data-testid") + ": " + n.textContent.slice(0, 60)); }
  return hits;
}"""


@pytest.mark.parametrize("width", [1280, 1024])
def test_a_grids_toolbar_covers_nothing_above_it(lth_home, width):
    from playwright.sync_api import sync_playwright

    from scripts.bench_pages import build_store

    ids = build_store(lth_home, 8, log=lambda *_: None)  # 4 tiny runs and a 2-cell sweep trained, and copies
    with _serve(lth_home) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            for path, grid in (("", '.st-key-runs_table [data-testid="stDataFrame"]'),
                               (f"/sweep?sweep={ids['sweep']}", '[data-testid="stDataFrame"]')):
                page.goto(url + path)
                page.wait_for_selector(grid, timeout=240_000)
                settle(page)
                page.locator(grid).last.scroll_into_view_if_needed()
                page.locator(grid).last.hover()
                toolbar = page.locator('[data-testid="stElementToolbar"]').last
                toolbar.wait_for(state="visible")
                time.sleep(0.5)
                assert page.evaluate(COVERED, toolbar.element_handle()) == [], (path, width)
        finally:
            browser.close()
