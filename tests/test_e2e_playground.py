"""The playground in a real browser: Play advances the rounds on its own and the decision-boundary
images change from round to round. Screenshots at round 0, mid-way and at the last (sparsest) round
land in artifacts/screenshots/."""
import re
import time

from test_e2e_browser import CHROMIUM, FLAGS, assert_clean, server, settle, shoot  # noqa: F401

PRUNED_ROUNDS = 7  # PlaygroundSettings().rounds


def _boundary_images(page) -> list[str]:
    """The data: URLs of the decision-boundary heatmaps (plotly draws go.Image as SVG <image>)."""
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    return [img.get_attribute("href") or "" for img in chart.locator("image").all()]


def _drawn_sparsity(page) -> str:
    """The share of weights in the ticket's panel title, read from the same drawing as the images (the
    caption can be a moment ahead of the chart)."""
    titles = page.locator('[data-testid="stPlotlyChart"]').first.locator(".annotation-text").evaluate_all(
        "els => els.map(e => e.textContent || '')")
    shares = [m.group(1) for t in titles if (m := re.search(r"([\d.]+%) of weights", t))]
    return shares[1] if len(shares) > 1 else ""


def _rounds_done(page) -> int:
    match = re.search(r"(\d+) of \d+ pruned rounds done", page.inner_text('[data-testid="stMain"]'))
    return int(match.group(1)) if match else -1


def test_play_advances_rounds_and_the_boundaries_change(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{server}/playground")
            page.get_by_text("0 of 7 pruned rounds done").wait_for(timeout=90_000)
            settle(page)
            assert_clean(page)
            dense = _boundary_images(page)
            assert len(dense) == 1 and dense[0].startswith("data:image/png")  # round 0: the dense net alone
            shoot(page, "playground-round-0")

            page.get_by_role("button", name="Play").click()
            seen: dict[str, list[str]] = {}
            deadline = time.time() + 120
            page.get_by_role("button", name="Pause").first.wait_for(timeout=30_000)
            while (done := _rounds_done(page)) < PRUNED_ROUNDS:  # rounds arrive without any further click
                share, images = _drawn_sparsity(page), _boundary_images(page)
                if share and share == _drawn_sparsity(page) and share not in seen and len(images) == 4:
                    seen[share] = images
                    if done == 4:
                        page.mouse.move(0, 0)  # no tooltip over the picture
                        shoot(page, "playground-mid")
                page.wait_for_timeout(150)
                assert time.time() < deadline, f"Play stopped at {done} of {PRUNED_ROUNDS} rounds"
                assert_clean(page)
            page.get_by_role("button", name="Play").first.wait_for(timeout=30_000)  # stopped by itself at the end
            settle(page)
            assert_clean(page)
            assert "Round 7 trained" in page.inner_text('[data-testid="stMain"]')  # the slider followed to the end
            last = _boundary_images(page)
            page.mouse.move(0, 0)
            shoot(page, "playground-high-sparsity")
        finally:
            browser.close()
    assert len(seen) >= 2, f"Play showed only rounds {sorted(seen)}"
    assert len(last) == 4  # dense, ticket, reinit, random mask
    assert last[0] == dense[0]  # the dense panel is the same net throughout
    shares = list(seen)  # in the order Play showed them
    for a, b in zip(shares, shares[1:]):
        assert seen[a][1:] != seen[b][1:], f"the boundaries at {a} and {b} of the weights are the same images"
    assert seen[shares[0]][1:] != last[1:]


def test_a_deep_link_reproduces_the_view(server):
    """?data=&seed=&round= in a fresh browser: the page trains up to the round by itself, shows it, stops there,
    and keeps the link; the same link again draws the same boundaries."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            drawn = []
            for _ in range(2):
                page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                page.goto(f"{server}/playground?data=moons&seed=2&round=3")
                page.get_by_text("Round 3 trained").wait_for(timeout=120_000)
                settle(page)
                page.wait_for_timeout(2500)  # no further round comes: the link's round is where it stops
                assert_clean(page)
                assert _rounds_done(page) == 3 and "Round 3 trained" in page.inner_text('[data-testid="stMain"]')
                assert "data=moons" in page.url and "seed=2" in page.url and "round=3" in page.url
                assert len(_boundary_images(page)) == 4  # dense, ticket, reinit, random mask
                drawn.append(_boundary_images(page))
                page.mouse.move(0, 0)
                shoot(page, "playground-deep-link")
                page.context.close()
        finally:
            browser.close()
    assert drawn[0] == drawn[1]
