"""The Masks page's figures drawn by Plotly in headless Chromium, with the run's line under the title as
ui.widgets.chart adds it, at the page's full width and in a half-width column: no axis title runs past the
plot into the title or its subtitle. Before, the overlap plot's y title ("kept weights shared with the previous
round (%)", longer than the plot is tall) crossed "How much of each round's mask was already kept"'s subtitle."""
from pathlib import Path

import numpy as np
import pytest

from lth_core.analysis import mask_plots
from lth_core.example import ensure_example
from lth_core.runs.store import RunStore

from test_plot_layout import CHROMIUM, FULL, HALF, browser, measure  # noqa: F401  (the fixture: headless Chromium)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs Debian's chromium at {CHROMIUM}")

BOXES = """() => {
  const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const one = sel => { const e = document.querySelector(sel); return e ? box(e) : null; };
  return {title: one('.gtitle'), subtitle: one('.gtitle-subtitle'), plot: one('.nsewdrag'),
          ytitle: [...document.querySelectorAll('.ytitle')].map(box)};
}"""


def drawn(browser, fig, width: int) -> dict:  # noqa: F811
    fig.update_layout(width=width, title_subtitle_text="Example: LeNet-300-100 on mnist-5k · mnist-5k, lenet-300-100 · "
                      "2 trials · run g895pste · trial 0", title_subtitle_font_size=12,
                      margin_t=max(fig.layout.margin.t or 0, 50) + 22)  # as ui.widgets.chart does
    return measure(browser, fig, width, BOXES)


def _apart(a, b) -> bool:
    return a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


@pytest.fixture(scope="module")
def example_masks(tmp_path_factory):
    """The masks of the shipped example run (LeNet-300-100 on mnist-5k, 12 rounds), trial 0."""
    with RunStore(tmp_path_factory.mktemp("example") / "runs.sqlite") as store:
        run_id = ensure_example(store)
        info = store.get_run(run_id)
        series = {(r, v): store.masks(run_id, 0, r, v) for r in range(info.rounds_done)
                  for v in ("ticket", "random") if r > 0 or v == "ticket"}
        init = store.init_weights(run_id, 0)["fc1.weight"]
        layers = store.layers(run_id)
    return series, init, layers[layers.trial == 0]


@pytest.mark.parametrize("width", [FULL, HALF])
@pytest.mark.parametrize("figure", ["overlap", "histogram", "layer bars"])
def test_axis_titles_stay_beside_the_plot_clear_of_the_title_and_subtitle(browser, example_masks, figure, width):  # noqa: F811
    series, init, layers = example_masks
    fig = {"overlap": lambda: mask_plots.overlap_plot(mask_plots.overlap_table(series)),
           "histogram": lambda: mask_plots.init_magnitude_histogram(init, series[(12, "ticket")]["fc1"]),
           "layer bars": lambda: mask_plots.layer_bars(layers, 12)}[figure]()
    boxes = drawn(browser, fig, width)
    assert boxes["subtitle"] and boxes["ytitle"], boxes
    for ytitle in boxes["ytitle"]:
        assert _apart(ytitle, boxes["subtitle"]) and _apart(ytitle, boxes["title"]), (figure, width, boxes)
        assert ytitle[1] >= boxes["plot"][1] - 4 and ytitle[3] <= boxes["plot"][3] + 4, (figure, width, boxes)
    assert np.isfinite(boxes["plot"]).all()
