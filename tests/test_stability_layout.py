"""The instability figure of a real analysis (a narrow MLP on mnist-5k, 116 iterations a round, round 1's ticket
and its controls, k = 0 to 60; analysed on this project's 2-core machine, tests/data/narrow_mlp_stability.json)
drawn by Plotly in headless Chromium at the widths the Stability page gives it: the k* label and the 2 % line's
label are crossed by no line (curve or the 2 % line) and by no other label. Before, "k* = 20" sat on the 2 % line."""
import json
from pathlib import Path

import pytest

from lth_core.analysis.stability_view import instability_figure
from lth_core.engine.stability import PathResult

from test_plot_layout import CHROMIUM, browser, line_points, measure  # noqa: F401  (the fixture: headless Chromium)

ANALYSIS = Path(__file__).parent / "data" / "narrow_mlp_stability.json"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs Debian's chromium at {CHROMIUM}")

# the labels' text boxes (annotations and text drawn on a trace), and every drawn line sampled every 2 px
GEOMETRY = """() => {
  const boxes = [...document.querySelectorAll('.annotation-text, .textpoint text')]
    .filter(t => /k\\* =|stable below/.test(t.textContent))
    .map(t => { const r = t.getBoundingClientRect(); return {text: t.textContent, box: [r.left, r.top, r.right, r.bottom]}; });
""" + line_points("the 2 % line") + """  return {labels: boxes, points};
}"""


def drawn(browser, fig, width: int) -> dict:  # noqa: F811
    return measure(browser, fig.update_layout(width=width), width, GEOMETRY, height=1000)


def _just_under_the_line() -> list[PathResult]:
    """By hand: the dense network stable from k = 20 with a barrier of 1.0 %, a label height under the 2 % line (where the
    label above the star used to sit on the line), its ticket stable throughout."""
    def path(k, variant, barrier):
        return PathResult(k, variant, [0, 0.5, 1], [0.1, 0.1 + barrier, 0.1], 1.0 if variant == "dense" else 0.2)
    dense = {0: 0.30, 5: 0.12, 10: 0.04, 20: 0.010, 30: 0.008, 60: 0.006}
    return [path(k, v, b if v == "dense" else min(b, 0.015) / 2) for k, b in dense.items() for v in ("dense", "ticket")]


@pytest.mark.parametrize("width", [640, 820, 1100])  # the page's main column at 1024 to 1600 px windows
@pytest.mark.parametrize("case", ["real analysis", "k* just under the line"])
def test_the_k_star_label_and_the_2_percent_label_are_clear_of_every_line(browser, width, case):  # noqa: F811
    paths = ([PathResult.from_dict(p) for p in json.loads(ANALYSIS.read_text())["paths"]] if case == "real analysis"
             else _just_under_the_line())
    fig = instability_figure(paths)
    # as ui.widgets.chart draws it on the page: the run under the title
    fig.update_layout(title_subtitle_text="narrow-stab · mnist-5k, mlp · 1 trial · run rm83vmmb",
                      title_subtitle_font_size=12, margin_t=max(fig.layout.margin.t or 0, 50) + 22)
    seen = drawn(browser, fig, width)
    texts = [label["text"] for label in seen["labels"]]
    assert any(t.startswith("k* = 20") for t in texts) and any(t.startswith("stable below 2") for t in texts), texts
    for label in seen["labels"]:
        left, top, right, bottom = label["box"]
        crossing = [(x, y, what) for x, y, what in seen["points"] if left - 5 < x < right + 5 and top - 5 < y < bottom + 5]
        assert not crossing, f"{label['text']!r} at {width} px comes within 5 px of {crossing[0][2]} at {crossing[0][:2]}"
    a, b = seen["labels"][:2]
    (al, at, ar, ab), (bl, bt, br, bb) = a["box"], b["box"]
    assert not (al < br and bl < ar and at < bb and bt < ab), (a["text"], b["text"], width)
