"""The break-even plot of a real LeNet-300-100 bench (round 12 of a mnist-5k run, measured on this project's
2-core machine, tests/data/lenet_deploy_bench.json) drawn by Plotly in headless Chromium at the widths the
report and the Deploy page give it: no label of a vertical line (this ticket's density, where CSR pays off) is
crossed by a line, a curve or another label. Before, "this ticket: 28.2 %" sat across the output layer's CSR curve."""
import json
from pathlib import Path

import pytest

from lth_core.analysis.deploy_bench import DeployBench
from lth_core.analysis.deploy_view import break_even_plot

from test_plot_layout import CHROMIUM, browser, line_points, measure  # noqa: F401  (the fixture: headless Chromium)

BENCH = Path(__file__).parent / "data" / "lenet_deploy_bench.json"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs Debian's chromium at {CHROMIUM}")

# the labels' text boxes, and every drawn line (curves and vertical lines) sampled every 2 px, on screen
GEOMETRY = """() => {
  const labels = [...document.querySelectorAll('.annotation')].filter(a => /this ticket|CSR pays off/.test(a.textContent))
    .map(a => { const r = a.querySelector('.annotation-text').getBoundingClientRect();
                return {text: a.textContent, box: [r.left, r.top, r.right, r.bottom]}; });
""" + line_points("vertical line") + """  const t = document.querySelector('.gtitle, .g-gtitle text');
  const tb = t ? t.getBoundingClientRect() : null;
  const sub = document.querySelector('.gtitle-subtitle');
  const sb = sub ? sub.getBoundingClientRect() : null;
  return {labels, points, titles: [tb, sb].filter(b => b).map(b => [b.left, b.top, b.right, b.bottom])};
}"""


def drawn(browser, fig, width: int) -> dict:  # noqa: F811
    """`fig` drawn `width` pixels wide: its labels' boxes, its lines' points and its title's boxes, on screen."""
    return measure(browser, fig.update_layout(width=width), width, GEOMETRY, height=1400)


@pytest.mark.parametrize("width", [680, 820, 1100])  # the report's figures; the page at 1280 and 1600 px
@pytest.mark.parametrize("subtitle", [False, True])   # the page draws the run under the title
def test_break_even_labels_are_clear_of_every_line(browser, width, subtitle):  # noqa: F811
    bench = DeployBench.from_dict(json.loads(BENCH.read_text()))
    fig = break_even_plot(bench)
    if subtitle:  # as ui.widgets.chart does
        fig.update_layout(title_subtitle_text="paper lenet · mnist-5k, lenet-300-100 · 2 trials · run 684x75jc",
                          title_subtitle_font_size=12, margin_t=max(fig.layout.margin.t or 0, 50) + 22)
    seen = drawn(browser, fig, width)
    assert len(seen["titles"]) == 1 + subtitle
    # 3 layer shapes × 2 batch sizes, each with this ticket's density; CSR pays off in 4 of them
    assert sum("this ticket" in label["text"] for label in seen["labels"]) == 6
    assert sum("CSR pays off" in label["text"] for label in seen["labels"]) == 4
    for label in seen["labels"]:
        left, top, right, bottom = label["box"]
        crossing = [(x, y, what) for x, y, what in seen["points"] if left < x < right and top < y < bottom]
        assert not crossing, f"{label['text']!r} at {width} px is crossed by a {crossing[0][2]} at {crossing[0][:2]}"
        for title in seen["titles"]:
            (tl, tt, tr, tb) = title
            assert not (left < tr and tl < right and top < tb and tt < bottom), (label["text"], "title", width)
    for i, a in enumerate(seen["labels"]):
        for b in seen["labels"][i + 1:]:
            (al, at, ar, ab), (bl, bt, br, bb) = a["box"], b["box"]
            assert not (al < br and bl < ar and at < bb and bt < ab), (a["text"], b["text"], width)
