"""The plot builders' figures drawn by Plotly in a real browser (headless Chromium): what a reader sees
at the widths the pages give them — labels that do not run into each other, a legend fully in view."""
from pathlib import Path

import pandas as pd
import plotly
import pytest

from lth_core.analysis import plots

from test_e2e_browser import CHROMIUM, FLAGS  # the browser tests' Chromium and flags, defined once
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
HALF, FULL = 350, 1000  # a half-width column in a 1100-pixel window; the full width of Results in a 1400 one

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs Debian's chromium at {CHROMIUM}")

BOXES = """() => {
  const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const all = sel => [...document.querySelectorAll(sel)].map(box).filter(b => b[2] > b[0] && b[3] > b[1]);
  const bg = document.querySelector('.legend .bg');
  return {legend: bg ? box(bg) : null, xticks: all('.xtick text'), xtitle: all('.xtitle'), ytitle: all('.ytitle'),
          plot: box(document.querySelector('.nsewdrag')), figure: box(document.querySelector('.main-svg')),
          scrollbar: all('.legend .scrollbar'), entries: document.querySelectorAll('.legend .traces').length,
          xticktexts: [...document.querySelectorAll('.xtick text')].map(e => e.textContent),
          legendtexts: [...document.querySelectorAll('.legend .legendtext')].map(e => e.textContent),
          bars: all('.bars .point path'), annotations: all('.annotation'),
          xtickshapes: [...document.querySelectorAll('.xtick text')].map(e => {
            const b = e.getBBox(), m = e.getCTM();
            return [b.x, b.y, b.width, b.height, m.a, m.b, m.c, m.d, m.e, m.f]; })};
}"""


def line_points(shape: str) -> str:
    """JavaScript that fills `points` with every drawn curve and shape (a line across the plot) sampled every 2 px
    on screen, as [x, y, 'curve' or `shape`]: for the tests that a label is crossed by no line."""
    return """  const points = [];
  for (const path of document.querySelectorAll('.scatterlayer .js-line, .shapelayer path')) {
    const m = path.getScreenCTM(), n = path.getTotalLength();
    for (let l = 0; l <= n; l += 2) {
      const p = path.getPointAtLength(l).matrixTransform(m);
      points.push([p.x, p.y, path.classList.contains('js-line') ? 'curve' : '%s']);
    }
  }
""" % shape


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def eight_rounds(session_home):
    """A real run with eight pruning rounds: nine weights-remaining ticks, which a narrow chart rotates."""
    from lth_core import ExperimentConfig, collect, run_experiment
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LTH_HOME", str(session_home))
        return collect(run_experiment(ExperimentConfig(dataset="digits", arch="mlp", hidden=(32,), rounds=8,
                                                       iterations=30, batch_size=32,
                                                       controls=("reinit", "random")))).rounds_df()


def drawn(browser, fig, width: int) -> dict:
    """Bounding boxes (left, top, right, bottom) of the parts of `fig` drawn `width` pixels wide."""
    return measure(browser, fig.update_layout(width=width), width, BOXES)


def measure(browser, fig, width: int, script: str, height: int = 1200):
    """`fig` drawn by Plotly in a fresh tab `width` (+40) pixels wide: what the JavaScript `script` returns."""
    page = browser.new_page(viewport={"width": width + 40, "height": height})
    try:
        page.set_content(f"<html><body style='margin:0'><script>{PLOTLY_JS.read_text()}</script><div id='fig'></div>"
                         f"<script>const f = {fig.to_json()}; Plotly.newPlot('fig', f.data, f.layout, "
                         "{responsive: false}).then(() => document.body.dataset.done = 1);</script></body></html>")
        page.wait_for_selector("body[data-done='1']", timeout=30_000)
        return page.evaluate(script)
    finally:
        page.close()


def overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def sized(fig, width: int):
    return fig.update_layout(width=width)


@pytest.mark.parametrize("metric", ["early_stop_test_accuracy", "early_stop_iteration"])
def test_half_width_charts_keep_ticks_and_axis_title_clear_of_the_legend(browser, eight_rounds, metric):
    fig = sized(plots.accuracy_vs_weights(eight_rounds, metric, narrow=True), HALF)
    b = drawn(browser, fig, HALF)
    assert b["legend"] and len(b["xticks"]) == 9 and b["xtitle"]
    for label in b["xticks"] + b["xtitle"]:
        assert not overlap(label, b["legend"]), (label, b["legend"])
    assert b["legend"][3] <= b["figure"][3] + 0.5 and not b["scrollbar"]
    (xtitle,), (ytitle,) = b["xtitle"], b["ytitle"]
    assert b["figure"][0] <= xtitle[0] and xtitle[2] <= b["figure"][2]  # the axis title is not cut off
    assert b["plot"][1] - 5 <= ytitle[1] and ytitle[3] <= b["plot"][3] + 5  # nor longer than the plot is tall


def test_the_gap_bars_keep_their_two_line_round_labels_clear_of_the_legend(browser, eight_rounds):
    fig = sized(plots.accuracy_gap_by_round(eight_rounds), HALF)
    b = drawn(browser, fig, HALF)
    for label in b["xticks"] + b["xtitle"]:
        assert not overlap(label, b["legend"]), (label, b["legend"])


def five_runs(rounds: pd.DataFrame) -> pd.DataFrame:
    """Five runs of the real tiny result, each under a name as long as the Results page gives it."""
    return pd.concat([rounds.assign(run=f"run number {k} with a long name ({k}abcdefg)",
                                    test_accuracy=rounds.test_accuracy - 0.01 * k) for k in range(5)])


def test_five_runs_overlaid_show_the_whole_legend_below_the_plot(browser, tiny_result):
    fig = sized(plots.accuracy_vs_weights(five_runs(tiny_result.rounds_df())), FULL)
    b = drawn(browser, fig, FULL)
    assert not b["scrollbar"], "the legend became a scroll box"
    assert b["legend"][1] >= b["plot"][3] and b["legend"][3] <= b["figure"][3] + 0.5  # under the plot, in view
    assert b["plot"][3] - b["plot"][1] >= 250  # the plot itself keeps its height
    for label in b["xticks"] + b["xtitle"]:
        assert not overlap(label, b["legend"])


@pytest.fixture(scope="module")
def twelve_rounds(session_home):
    """A real run with twelve pruning rounds (100 % down to about 7 %): thirteen measured weights to label."""
    from lth_core import ExperimentConfig, collect, run_experiment
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LTH_HOME", str(session_home))
        return collect(run_experiment(ExperimentConfig(dataset="digits", arch="mlp", hidden=(32,), rounds=12,
                                                       iterations=20, batch_size=32, controls=("random",)))).rounds_df()


def _corners(shape) -> list[tuple[float, float]]:
    """The four corners on screen of a tick label's own box (turned with it: SVG's getBBox under its CTM)."""
    x, y, w, h, a, b, c, d, e, f = shape
    return [(a * px + c * py + e, b * px + d * py + f) for px, py in ((x, y), (x + w, y), (x + w, y + h), (x, y + h))]


def _quads_overlap(p, q) -> bool:
    """Whether two convex quadrilaterals overlap (separating axis test, touching edges allowed)."""
    for poly in (p, q):
        for i in range(4):
            (x1, y1), (x2, y2) = poly[i], poly[(i + 1) % 4]
            nx, ny = y2 - y1, x1 - x2
            a = [nx * x + ny * y for x, y in p]
            b = [nx * x + ny * y for x, y in q]
            if max(a) <= min(b) + 0.5 or max(b) <= min(a) + 0.5:
                return False
    return True


def _apart(shapes) -> bool:
    """No two tick labels overlap, as drawn (a label turned 45° is a slanted box, not its bounding box)."""
    quads = [_corners(s) for s in shapes]
    return not any(_quads_overlap(a, b) for i, a in enumerate(quads) for b in quads[i + 1:])


@pytest.mark.parametrize("width, narrow", [(FULL, False), (HALF, True)])
def test_the_weights_axis_labels_the_measured_rounds_without_overlap(browser, twelve_rounds, width, narrow):
    # thirteen measured rounds were thinned to ten ticks, leaving rounds unlabelled
    from lth_core.analysis.statistics import percent_text
    fig = sized(plots.accuracy_vs_weights(twelve_rounds, narrow=narrow), width)
    b = drawn(browser, fig, width)
    measured = [percent_text(100 * w) for w in twelve_rounds.groupby("round").weights_remaining.mean()]
    assert len(measured) == 13 and _apart(b["xtickshapes"])
    if not narrow:
        assert b["xticktexts"] == measured  # every round labelled at full width
    else:  # a readable subset, always the first and the last
        assert b["xticktexts"][0] == measured[0] and b["xticktexts"][-1] == measured[-1]
        assert set(b["xticktexts"]) <= set(measured) and len(b["xticktexts"]) >= 5


def test_the_tolerance_band_is_named_in_the_legend_not_over_the_bars(browser, eight_rounds):
    for width in (FULL, HALF):
        b = drawn(browser, sized(plots.accuracy_gap_by_round(eight_rounds), width), width)
        assert "within 1 pt of dense (tolerance)" in b["legendtexts"]
        assert b["bars"] and not any(overlap(a, bar) for a in b["annotations"] for bar in b["bars"])


@pytest.fixture(scope="module")
def wine_mask(session_home):
    """The first layer's ticket mask of a real run on the wine table (13 named columns) and its names."""
    from lth_core import ExperimentConfig, collect, run_experiment
    from lth_core.engine.data import load_dataset
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LTH_HOME", str(session_home))
        result = collect(run_experiment(ExperimentConfig(dataset="wine", arch="mlp", hidden=(16,), rounds=1,
                                                         iterations=10, controls=())))
        names = load_dataset("wine").feature_names
    masks = result.masks[(0, 1, "ticket")]
    return masks[next(iter(masks))], names


@pytest.mark.parametrize("columns", [13, 6])
def test_the_first_layers_column_names_never_run_together_at_half_width(browser, wine_mask, columns):
    # 8 names or fewer were drawn level and ran into each other in a half-width column; 13 at 45° overlapped
    from lth_core.analysis import mask_plots
    mask, names = wine_mask
    mask, names = mask[:, :columns], names[:columns]
    for fig in (mask_plots.survival_map(mask, (columns,), "fc1", names),
                mask_plots.receptive_fields(mask, (columns,), feature_names=names)):
        b = drawn(browser, sized(fig, HALF), HALF)
        assert b["xticks"] and _apart(b["xtickshapes"]), b["xticktexts"]
        assert set(b["xticktexts"]) <= set(names) and b["xticktexts"][0] == names[0]
