"""The Pruning at init page in headless Chromium at 1280×900: every chip of the criteria multiselect is whole and
in view. In a column beside the targets, the 5th chip ('random') was cut off at 1280 px."""
from pathlib import Path

import pytest

from test_e2e_browser import CHROMIUM, FLAGS, _serve, settle

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs Debian's chromium at {CHROMIUM}")

# each chip's box, the width its text needs and has, and where the chips' visible area ends (the clear button)
CHIPS = """() => {
  const box = [...document.querySelectorAll('[data-testid="stMultiSelect"]')]
    .find(b => b.innerText.includes('Criteria pruning at init'));
  const live = box.querySelector('.react-aria-ComboBox');  // Streamlit also keeps a copy in a <template>
  const end = live.querySelector('[data-testid="stMultiSelectTagsContainer"]').getBoundingClientRect().right;
  return {end, chips: [...live.querySelectorAll('[data-tag]')].map(t => {
    const r = t.getBoundingClientRect(), text = t.querySelector('span[title]') || t;
    return {text: t.getAttribute('aria-label'), left: r.left, right: r.right, needs: text.scrollWidth,
            has: text.clientWidth};
  })};
}"""


def test_every_criterion_chip_is_whole_and_in_view_at_1280_px(lth_home):
    from playwright.sync_api import sync_playwright

    with _serve(lth_home) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{url}/at_init")
        page.wait_for_selector('.react-aria-ComboBox [data-tag]', timeout=180_000)
        settle(page, 180)
        seen = page.evaluate(CHIPS)
        browser.close()
    texts = [c["text"] for c in seen["chips"]]
    assert texts == ["snip", "grasp", "synflow", "magnitude-at-init", "random"], texts
    for chip in seen["chips"]:
        assert chip["right"] <= seen["end"] + 0.5, f"{chip['text']!r} runs past {seen['end']:.0f} px: {chip}"
        assert chip["needs"] <= chip["has"] + 0.5, f"{chip['text']!r} is cut: {chip}"
