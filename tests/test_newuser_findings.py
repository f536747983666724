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
