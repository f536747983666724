"""The guided tour and the presets in a real browser (issue 12): with no run to show, the tour trains its
small run and its steps fill in as the rounds finish, without a reload; a preset's click fills the form and
the run it starts finishes. Screenshots land in artifacts/screenshots/."""
import re
import time

from test_e2e_browser import CHROMIUM, FLAGS, _serve, assert_clean, settle, shoot, type_into  # noqa: F401

from lth_core.example import ensure_example
from lth_core.runs.store import RunStore


def _main_text(page) -> str:
    main = page.locator('[data-testid="stMain"]')
    return main.inner_text() if main.count() else ""


def _fresh(page, timeout_s: float = 120) -> None:
    """Wait until the script run is over and no element is left over from the last one (Streamlit greys
    those out, data-stale="true", until the run replaces them): `settle` alone can stop while a slow
    step still computes its figures."""
    end = time.time() + timeout_s
    while time.time() < end:
        if not page.locator('[data-stale="true"]').count() and not page.locator('[data-testid="stStatusWidget"]').count():
            break
        page.wait_for_timeout(300)
    settle(page)


def test_with_no_run_the_tour_shows_its_small_run_filling_in_without_a_reload(lth_home):
    from playwright.sync_api import sync_playwright

    with RunStore() as store:  # a store that held the example, deleted as a user may: nothing to show
        ensure_example(store)
        for run_id in store.list_runs().id:
            store.delete(run_id)
    seen_rounds: list[int] = []  # the round the step's numbers name, in the order the page showed them
    waiting = progress = False
    with _serve(lth_home) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.goto(f"{url}/tour?step=4")
            page.get_by_text("No run to show yet, so the tour is training a small one").wait_for(timeout=90_000)
            deadline = time.time() + 240
            while True:  # no reload, no click: the page refreshes by itself
                text = _main_text(page)
                if "Step 4 of 8: Repeat" in text and "needs pruned round 1, which is still training" in text and \
                        re.search(r"(Queued for the background worker|Starting the run|Training the dense network)", text):
                    if not waiting:  # the step is there, text and question, before the run has any round
                        shoot(page, "tour-small-run-starting")
                    waiting = True
                progress |= bool(re.search(r"dense network and \d of 5 pruned rounds done", text))
                if (m := re.search(r"\(round (\d)\) the ticket reaches", text)) and \
                        (not seen_rounds or seen_rounds[-1] != int(m.group(1))):
                    seen_rounds.append(int(m.group(1)))
                    if len(seen_rounds) == 2:
                        shoot(page, "tour-small-run-filling-in")
                if seen_rounds and seen_rounds[-1] == 5 and "pruned rounds done" not in text:
                    break  # the last round is in and the progress bar has gone: the run finished
                assert time.time() < deadline, f"the tour stopped filling in at rounds {seen_rounds}"
                assert_clean(page)
                page.wait_for_timeout(250)
            settle(page)
            assert_clean(page)
            assert page.locator(".js-plotly-plot").count() == 1 and "run=" in page.url
            shoot(page, "tour-small-run-finished")
        finally:
            browser.close()
    assert waiting, "the step was not shown while the run had no round"  # it showed a progress bar alone
    assert progress, "no progress counted as the pages count rounds"
    assert len(seen_rounds) >= 2 and seen_rounds == sorted(seen_rounds), seen_rounds  # it filled in, round by round
    with RunStore() as store:
        (run,) = store.list_runs().itertuples()
        assert run.status == "finished" and run.rounds_done == 6


def test_every_tour_step_in_the_browser_with_screenshots(lth_home):
    """Each step of the tour on the example run: its figure(s) drawn, no error; Next walks the steps.
    A screenshot of every step lands in artifacts/screenshots/tour-step-N.png."""
    from playwright.sync_api import sync_playwright

    from ui import tour

    with RunStore() as store:
        ensure_example(store)
    figures = {1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1, 7: 3, 8: 1}  # step 7: the survival map, receptive fields, survival by distance from the centre
    with _serve(lth_home) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            page.goto(f"{url}/tour")
            for number, step in enumerate(tour.STEPS, start=1):
                page.get_by_role("heading", name=f"Step {number} of 8: {step.title}").wait_for(timeout=90_000)
                page.get_by_text(step.question).wait_for(timeout=90_000)
                _fresh(page)
                assert_clean(page)
                assert f"step={number}" in page.url
                assert "Think about it:" in _main_text(page)
                page.mouse.move(0, 0)
                shoot(page, f"tour-step-{number}")  # the page made as tall as its content: every figure drawn
                assert page.locator(".js-plotly-plot").count() == figures[number], number
                if number < len(tour.STEPS):
                    page.get_by_role("button", name=re.compile("^Next: ")).click()
        finally:
            browser.close()


def test_a_preset_click_fills_the_form_and_its_run_finishes_in_the_browser(lth_home):
    """The issue's check in a real browser: a preset's button fills the form (the fields change on screen),
    and the run started from it (scaled down) finishes; then the page the preset names shows it."""
    from playwright.sync_api import expect, sync_playwright

    from lth_core.engine.presets import PRESETS

    preset = PRESETS["one-shot"]
    with _serve(lth_home) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.goto(url)
            settle(page)
            schedule = page.get_by_role("radiogroup", name="Schedule")
            assert schedule.get_by_role("radio", name="iterative").is_checked()  # the form opens on the paper's run
            page.get_by_role("button", name=preset.title, exact=True).click()
            expect(schedule.get_by_role("radio", name="one-shot")).to_be_checked(timeout=60_000)
            _fresh(page)
            assert page.get_by_role("checkbox", name="reinit (same mask, new init)").is_checked()
            assert not page.get_by_role("checkbox", name="random mask").is_checked()  # the opening preset ticks it
            assert page.get_by_text(preset.title).count() >= 2  # the button, and what to expect of it
            assert "Choose it and the paper's LeNet experiment on Results" in page.inner_text("body")
            rounds = page.locator('[data-testid="stNumberInput"]').filter(
                has=page.get_by_text("Pruning rounds", exact=True)).locator("input")
            assert rounds.input_value() == "12"
            shoot(page, "preset-one-shot-form")
            # scaled down, so the test is short
            type_into(page, "stNumberInput", "Pruning rounds", "1")
            type_into(page, "stNumberInput", "Epochs per round", "0.2")
            type_into(page, "stNumberInput", "Trials", "1")
            assert_clean(page)
            page.locator(".st-key-run_button button").click()
            page.wait_for_url(re.compile(r".*/live_run\?run=\w+"), timeout=60_000)
            page.get_by_text("Status: finished").wait_for(timeout=240_000)
            settle(page)
            assert_clean(page)
            run_id = re.search(r"run=(\w+)", page.url).group(1)
            page.goto(f"{url}/{preset.page}?run={run_id}")
            settle(page)
            assert_clean(page)
            assert page.locator(".js-plotly-plot").count() >= 1
            shoot(page, "preset-one-shot-result")
        finally:
            browser.close()
    with RunStore() as store:
        info = store.get_run(run_id)
        assert info.status == "finished" and info.config.schedule == "one-shot" and info.config.controls == ("reinit",)



def test_a_tour_link_moves_the_address_bar_to_its_page_and_a_reload_stays_there(lth_home):
    """Following a step's 'Try it' link: the address bar shows that page with the tour's run (not /tour?step=…),
    and a reload shows the same page on the same run, not the tour again."""
    from playwright.sync_api import sync_playwright

    with RunStore() as store:
        example = ensure_example(store)
    headings = {"masks": "Masks", "compare": "Compare: ticket vs. controls", "results": "Results"}
    with _serve(lth_home) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            for step, target in ((3, "masks"), (2, "results"), (5, "compare")):
                page.goto(f"{url}/tour?step={step}")
                link = page.get_by_role("link", name=re.compile("^Try it: "))
                link.wait_for(timeout=90_000)
                _fresh(page)
                link.click()
                page.get_by_role("heading", name=headings[target], exact=True).wait_for(timeout=90_000)
                _fresh(page)
                path, _, query = page.url.partition("?")
                assert path.endswith(f"/{target}") and f"run={example}" in query, (step, page.url)
                page.reload()
                page.get_by_role("heading", name=headings[target], exact=True).wait_for(timeout=90_000)
                _fresh(page)
                assert page.url.partition("?")[0].endswith(f"/{target}") and f"run={example}" in page.url
                assert "Guided tour" not in _main_text(page)
                assert_clean(page)
        finally:
            browser.close()
