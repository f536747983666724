"""In a real browser: upload a CSV on New experiment, see its check, run on it to the end, and find
its column names on Masks; a bad file gets one line. Screenshots go to artifacts/screenshots/."""
import re
import time

import numpy as np
import pandas as pd
import pytest

from test_e2e_browser import CHROMIUM, FLAGS, assert_clean, choose, server, settle, shoot, type_into  # noqa: F401

pytestmark = pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(), reason=f"needs {CHROMIUM}")


def pets_csv(path, rows: int = 300) -> None:
    rng = np.random.default_rng(0)
    kind = np.repeat(["cat", "dog", "fox"], rows // 3)
    pd.DataFrame({"weight kg": rng.normal(5, 1, rows) + (kind == "dog") * 4,
                  "ear length": rng.normal(3, 1, rows) + (kind == "fox") * 3,
                  "coat": rng.choice(["short", "long"], rows), "kind": kind}).to_csv(path, index=False)


def upload(page, *paths) -> None:
    expander = page.get_by_text("Use your own data", exact=False).first
    if page.locator('[data-testid="stFileUploaderDropzoneInput"]').count() == 0 or \
            not page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.is_enabled():
        expander.click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files([str(p) for p in paths])
    page.wait_for_timeout(500)
    settle(page)


def test_upload_a_csv_check_it_run_on_it_and_see_its_columns_on_masks(server, tmp_path):
    from playwright.sync_api import sync_playwright

    good, bad = tmp_path / "pets.csv", tmp_path / "broken.csv"
    pets_csv(good)
    bad.write_text("a,b,label\n" + "".join(f"{i},1e308,{i % 2}\n" for i in range(40)))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            # tall enough for the whole form: a combobox scrolled into view inside Streamlit's own container
            # opened no options (since the presets made the page longer)
            page = browser.new_page(viewport={"width": 1400, "height": 4200})
            page.goto(server)
            settle(page)

            upload(page, bad)
            error = page.locator('[data-testid="stAlertContentError"]').first
            assert "broken.csv cannot be used: broken.csv has NaN, infinite or too large numbers in column 'b'" \
                in error.inner_text()
            shoot(page, "upload-1-bad-file")

            # the rejected file is gone from the uploader: the next one is picked at once, and checked alone
            assert page.locator('[data-testid="stFileChipDeleteBtn"]').count() == 0
            assert "Pick another file above." in error.inner_text()
            upload(page, good)
            body = page.inner_text("body")
            assert "pets.csv is usable and kept as pets-" in body
            assert "one example moves the test accuracy by 1.67 points" in body
            assert "Text column 'coat': one-hot encoded into 2 columns (long, short)" in body
            assert page.get_by_role("combobox", name="Dataset", exact=True).input_value().startswith("pets-")
            assert_clean(page)
            shoot(page, "upload-2-good-file")

            choose(page, "Architecture", "mlp")
            type_into(page, "stTextInput", "Hidden layer sizes", "16")
            type_into(page, "stNumberInput", "Epochs per round", "1")
            type_into(page, "stNumberInput", "Pruning rounds", "2")
            type_into(page, "stTextInput", "Name of the run (optional)", "pets upload")
            assert_clean(page)
            page.locator(".st-key-run_button button").click()
            page.wait_for_url(re.compile(r".*/live_run\?run=\w+"), timeout=60_000)
            page.get_by_text("Status: finished").wait_for(timeout=180_000)
            run_id = re.search(r"run=(\w+)", page.url).group(1)

            page.goto(f"{server}/masks?run={run_id}")
            settle(page)
            assert_clean(page)
            first_layer = page.locator(".js-plotly-plot").filter(has_text="Connections each input keeps into fc1")
            ticks = first_layer.locator(".xtick text").all_text_contents()
            assert ticks == ["weight kg", "ear length", "coat=long", "coat=short"]
            shoot(page, "upload-3-masks-with-column-names")
        finally:
            browser.close()
    time.sleep(0)  # the server fixture stops the app and its worker
