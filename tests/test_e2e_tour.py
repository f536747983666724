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
