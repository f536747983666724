"""The guided tour's layout in a real browser (a teacher's cold try): every step's links read in full at 1280 and
1024 px, and Next / Previous show the new step from its top, not at the scroll position of the last one.
Screenshots land in artifacts/screenshots/."""
import contextlib
import re

from test_e2e_browser import CHROMIUM, FLAGS, SHOTS, _serve, assert_clean, shoot  # noqa: F401
from test_e2e_tour import _fresh

from lth_core.example import ensure_example
from lth_core.runs.store import RunStore

# the links' and buttons' labels whose text does not fit their box (Streamlit cuts a label at its edge)
CUT_LINKS = """() => [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stPageLink"] a, '
                                               + '[data-testid="stMain"] [data-testid="stButton"] button')]
    .filter(a => { const main = document.querySelector('[data-testid="stMainBlockContainer"]').getBoundingClientRect();
                   const cut = [...a.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth + 1);
                   return cut || a.getBoundingClientRect().right > main.right + 1; })
    .map(a => a.innerText)"""
SCROLLED = """() => Math.max(window.scrollY, ...[...document.querySelectorAll('*')]
    .filter(e => e.scrollHeight > e.clientHeight && getComputedStyle(e).overflowY !== 'visible').map(e => e.scrollTop))"""


@contextlib.contextmanager
def _tour_window(lth_home):
    """The app on a store holding the example run, and a 1280×800 page in headless Chromium: (url, page)."""
    from playwright.sync_api import sync_playwright

    with RunStore() as store:
        ensure_example(store)
    with _serve(lth_home) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield url, browser.new_page(viewport={"width": 1280, "height": 800})
        finally:
            browser.close()


def test_every_tour_link_reads_in_full_at_1280_and_1024_px(lth_home):
    from ui import tour

    with _tour_window(lth_home) as (url, page):
        for width in (1280, 1024):
            page.set_viewport_size({"width": width, "height": 800})
            for number in range(1, len(tour.STEPS) + 1):
                page.goto(f"{url}/tour?step={number}")
                page.get_by_role("link", name=re.compile("^Try it: ")).first.wait_for(timeout=90_000)
                _fresh(page)
                assert_clean(page)
                assert page.evaluate(CUT_LINKS) == [], (width, number)
                if number == 8:
                    shoot(page, f"tour-step-8-links-{width}")


def test_next_and_previous_open_the_new_step_at_its_top(lth_home):
    from ui import tour

    with _tour_window(lth_home) as (url, page):
        page.goto(f"{url}/tour?step=1")
        for number in range(1, len(tour.STEPS)):  # Next from the bottom of each step
            button = page.get_by_role("button", name=re.compile("^Next: "))
            button.wait_for(timeout=90_000)
            _fresh(page)
            button.scroll_into_view_if_needed()
            assert page.evaluate(SCROLLED) > 0, number  # the step is longer than the window
            button.click()
            heading = page.get_by_role("heading", name=f"Step {number + 1} of 8: {tour.STEPS[number].title}")
            heading.wait_for(timeout=90_000)
            _fresh(page)
            page.wait_for_timeout(500)
            box = heading.bounding_box()
            assert box is not None and 0 <= box["y"] < 800 - box["height"], (number, box)
            if number == 5:
                SHOTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SHOTS / "tour-after-next.png"))  # the window, as the user sees it
        page.get_by_role("button", name=re.compile("^← ")).scroll_into_view_if_needed()
        page.get_by_role("button", name=re.compile("^← ")).click()  # Previous too
        heading = page.get_by_role("heading", name=f"Step 7 of 8: {tour.STEPS[6].title}")
        heading.wait_for(timeout=90_000)
        _fresh(page)
        page.wait_for_timeout(500)
        box = heading.bounding_box()
        assert box is not None and 0 <= box["y"] < 800 - box["height"], box
