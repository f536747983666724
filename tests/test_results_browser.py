"""Results with five runs overlaid, in a real browser: every run picked is readable in the picker."""
import contextlib
import io

import pytest

from test_e2e_browser import CHROMIUM, FLAGS, server, settle  # noqa: F401 - `server` is a fixture

NAMES = ["baseline digits", "two trials", "global pruning", "rewind to 20", "one-shot to 4 rounds"]


@pytest.fixture
def five_runs(lth_home) -> list[str]:
    """Five real tiny runs recorded in the store by `python -m lth_core run --store`."""
    from lth_core.cli import main
    from lth_core.runs.store import RunStore
    for seed, name in enumerate(NAMES):
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["run", "--store", "--quiet", "--dataset", "digits", "--arch", "mlp", "--hidden", "16",
                         "--rounds", "1", "--iterations", "10", "--controls", "reinit", "--seed", str(seed),
                         "--name", name]) == 0
    with RunStore() as store:
        return list(store.list_runs().id)


def test_five_runs_in_the_picker_are_all_in_view(server, five_runs):  # noqa: F811
    from playwright.sync_api import sync_playwright
    query = "&".join(f"run={i}" for i in five_runs)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})  # a laptop window
            page.goto(f"{server}/results?{query}")
            settle(page)
            picker = page.locator('[data-testid="stMultiSelect"]').first
            tags = picker.locator("[data-tag]")
            assert tags.count() == 5
            box = picker.locator('[data-testid="stMultiSelectTagsContainer"]').bounding_box()  # scrolls past this
            for k in range(5):
                tag = tags.nth(k).bounding_box()
                assert box["y"] <= tag["y"] and tag["y"] + tag["height"] <= box["y"] + box["height"] + 1, \
                    f"chip {k + 1} of 5 is cut off"
        finally:
            browser.close()
