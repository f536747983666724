"""Findings of a new user's try in a real browser (issue 9, second pass) checked on the app's pages with
Streamlit's AppTest on conftest's real app_store runs; what only a browser shows is in test_plot_layout.py and
test_upload_browser.py."""
from lth_core.runs.store import RunStore
from test_app_pages import figures, no_errors, page, runs  # noqa: F401 - runs is a fixture
from ui.text import md


def test_names_with_a_colon_are_copied_as_they_read():
    # md() put an invisible word joiner (U+2060) after every colon before a letter: "upload:heart" pasted wrong
    for name in ("upload:heart-1a2b3c4d5e6f", "csv:/data/x.csv", "a:b", "wine"):
        assert md(name) == name and "\u2060" not in md(name)
    # where Streamlit would draw an icon, an emoji or a colour, the joiner still stops it
    for directive in (":material/home:", "x :smile: y", ":red[alert]"):
        assert "\u2060" in md(directive)


def test_the_masks_pages_first_layer_charts_name_their_run(runs):
    done = runs["done"]
    at = page("masks", run=done)
    no_errors(at)
    titles = {f["layout"]["title"]["text"]: f["layout"]["title"].get("subtitle", {}).get("text", "") for f in figures(at)}
    first_layer = {t: sub for t, sub in titles.items() if t.startswith(("Connections each input", "What "))}
    assert len(first_layer) == 2, titles
    for title, subtitle in first_layer.items():
        assert f"run {done}" in subtitle and "round 2" in subtitle and "digits" in subtitle, (title, subtitle)
    assert not any("\u2060" in m.value for m in [*at.markdown, *at.caption])


def test_the_runs_table_fits_a_1280_pixel_window(lth_home):
    """In Chromium: the runs table does not scroll sideways at 1280 pixels (it did, by 116 pixels), with a
    one-shot run in it; the columns left out by default can be added."""
    from pathlib import Path

    import pytest

    from lth_core.cli import main as cli_main
    from test_e2e_browser import CHROMIUM, FLAGS, _serve, settle

    if not Path(CHROMIUM).exists():
        pytest.skip(f"needs {CHROMIUM}")
    from playwright.sync_api import sync_playwright
    assert cli_main(["run", "--store", "--dataset", "digits", "--arch", "mlp", "--hidden", "64", "--schedule",
                     "one-shot", "--rounds", "12", "--epochs", "3", "--trials", "2", "--controls", "reinit",
                     "--name", "one shot"]) == 0
    with _serve(lth_home) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url)
            page.get_by_text("Your runs").wait_for(timeout=240_000)
            settle(page)
            grid = page.locator('.st-key-runs_table [data-testid="stDataFrame"]')
            grid.scroll_into_view_if_needed()
            page.wait_for_timeout(1000)
            scroll, client = grid.evaluate(
                "e => { const s = e.querySelector('.dvn-scroller'); return [s.scrollWidth, s.clientWidth]; }")
            assert scroll <= client, (scroll, client)
        finally:
            browser.close()
