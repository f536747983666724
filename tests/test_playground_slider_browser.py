"""The playground during Play in a real browser (a teacher's cold try): the round slider showed round 5 while the
panels under it still drew round 4. Sampled while Play runs, the slider never shows a sparser round than the
panels it sits above."""
import re
import time

from test_e2e_browser import CHROMIUM, FLAGS, assert_clean, server, settle  # noqa: F401
from test_e2e_playground import PRUNED_ROUNDS, _rounds_done


def _slider_and_panels(page) -> tuple[int | None, float | None]:
    """The share of weights the slider names (whole percent) and the one the ticket's panel title names."""
    thumb = page.locator('[data-testid="stSliderThumbValue"]')
    slider = re.search(r"· (\d+)% of weights", thumb.first.inner_text()) if thumb.count() else None
    titles = page.locator('[data-testid="stPlotlyChart"]').first.locator(".annotation-text").evaluate_all(
        "els => els.map(e => e.textContent || '')")
    shares = [float(m.group(1)) for t in titles if (m := re.search(r"([\d.]+)% of weights", t))]
    return (int(slider.group(1)) if slider else None), (shares[1] if len(shares) > 1 else None)


def test_during_play_the_slider_never_runs_ahead_of_the_panels(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"{server}/playground")
            page.get_by_text("0 of 7 pruned rounds done").wait_for(timeout=90_000)
            settle(page)
            page.get_by_role("button", name="Play").click()
            samples, ahead = 0, []
            deadline = time.time() + 180
            while _rounds_done(page) < PRUNED_ROUNDS:
                slider, panels = _slider_and_panels(page)
                if slider is not None and panels is not None:
                    samples += 1
                    if slider < panels - 1:  # the slider at a sparser round than the panels show
                        ahead.append((slider, panels))
                page.wait_for_timeout(60)
                assert time.time() < deadline, "Play did not finish"
            assert_clean(page)
        finally:
            browser.close()
    assert samples > 20, samples
    assert ahead == [], f"{len(ahead)} of {samples} samples: the slider ahead of the panels: {ahead[:5]}"
