"""The 2-D playground: the new toy sets, rounds played by the engine, the boundary grid and the diagram's
edge list on real trained nets, and the page's controls through AppTest."""
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from lth_core.engine import data
from lth_core.engine.errors import ConfigError
from lth_core.engine.playground import (PlaygroundSettings, blank_panel_note, decision_grid, grid_extent,
                                        input_output_paths, network_edges, network_nodes, new_playground, play_round)
from ui.playground_plots import boundary_figure, boundary_image, diagram_figure

APP = str(Path(__file__).resolve().parent.parent / "app.py")
SMALL = PlaygroundSettings(hidden=(8, 8), rounds=2, iterations=150)


@pytest.mark.parametrize("name, classes", [("circles", ("outer", "inner")), ("xor", ("same sign", "opposite sign"))])
def test_new_toy_sets_are_2d_balanced_and_named(name, classes):
    s = data.load_dataset(name)
    assert name in data.dataset_names()
    assert s.kind == "tabular" and s.input_shape == (2,) and s.class_names == classes
    assert s.feature_names == ("x1", "x2")
    assert sum(s.sizes().values()) == 1500
    y = np.concatenate([s.y_train, s.y_val, s.y_test])
    assert np.bincount(y).min() >= 700  # two classes, about evenly


def test_circles_and_xor_are_what_their_names_say():
    raw = data._builtin_raw("xor")
    assert ((raw.x[:, 0] * raw.x[:, 1] < 0) == raw.y.astype(bool)).all()
    raw = data._builtin_raw("circles")
    radius = np.hypot(raw.x[:, 0], raw.x[:, 1])
    assert radius[raw.y == 1].mean() < 0.6 < radius[raw.y == 0].mean()


@pytest.fixture(scope="module")
def played():
    """Three real rounds of the engine on spirals (small net, short rounds)."""
    with pytest.MonkeyPatch.context() as mp:
        import tempfile
        mp.setenv("LTH_HOME", tempfile.mkdtemp(prefix="lth-pg-"))
        pg = new_playground(SMALL)
        for _ in range(3):
            play_round(pg)
        return pg


def test_rounds_carry_every_variants_trained_masked_weights(played):
    assert [r.round for r in played.rounds] == [0, 1, 2] and played.finished
    assert set(played.rounds[0].params) == {"ticket"}
    assert set(played.rounds[2].params) == {"ticket", "reinit", "random"}
    for r in played.rounds[1:]:
        for variant, params in r.params.items():
            for layer, mask in r.masks[variant].items():
                w = params[f"{layer}.weight"]
                assert (w[~mask] == 0).all() and np.count_nonzero(w[mask]) == mask.sum()
    assert played.rounds[2].weights_remaining < played.rounds[1].weights_remaining < 1.0
    with pytest.raises(ConfigError, match="rounds"):
        play_round(played)


def test_playground_rounds_match_a_full_engine_run(played):
    """A round resumed from the last checkpoint gives the numbers of an uninterrupted run."""
    from lth_core import collect, run_experiment
    result = collect(run_experiment(SMALL.config()))
    rows = result.rounds_df().set_index(["round", "variant"]).test_accuracy
    for r in played.rounds:
        for variant, acc in r.test_accuracy.items():
            assert acc == pytest.approx(rows[(r.round, variant)])


def test_decision_grid_agrees_with_the_nets_test_accuracy(played):
    extent = grid_extent(played.data)
    x = np.concatenate([played.data.x_train, played.data.x_test])
    assert extent[0] < x[:, 0].min() and extent[1] > x[:, 0].max() and extent[3] > x[:, 1].max()
    dense = played.rounds[0].params["ticket"]
    probs = decision_grid(played.net, [dense], extent, resolution=120)
    assert probs.shape == (1, 120, 120, 3) and np.allclose(probs.sum(-1), 1, atol=1e-5)
    # the grid cell under each test point predicts (almost always) what the net predicts at the point
    cols = ((played.data.x_test[:, 0] - extent[0]) / (extent[1] - extent[0]) * 120).astype(int)
    rows = ((played.data.x_test[:, 1] - extent[2]) / (extent[3] - extent[2]) * 120).astype(int)
    grid_acc = (probs[0, rows, cols].argmax(-1) == played.data.y_test).mean()
    assert grid_acc == pytest.approx(played.rounds[0].test_accuracy["ticket"], abs=0.05)
    image = boundary_image(probs[0])
    assert image.shape == (120, 120, 3) and image.dtype == np.uint8
    # different nets, different maps
    last = played.rounds[2]
    maps = decision_grid(played.net, [last.params[v] for v in ("ticket", "reinit", "random")], extent, 40)
    assert not np.allclose(maps[0], maps[1]) and not np.allclose(maps[0], maps[2])
    fig = boundary_figure([("a", maps[0]), ("b", None)], extent, played.data.x_test, played.data.y_test,
                          played.data.class_names)
    assert [t.type for t in fig.data].count("image") == 1


def test_edges_are_the_tickets_weights_with_the_round_each_was_pruned_in(played):
    nodes = network_nodes(played.net, ("x1", "x2"), played.data.class_names)
    assert list(nodes.groupby("column").size()) == [2, 8, 8, 3]
    assert nodes[nodes.column == 0].label.tolist() == ["x1", "x2"]
    assert nodes[nodes.column == 3].label.tolist() == list(played.data.class_names)
    dense = network_edges(played.net, played.rounds, 0)
    assert len(dense) == 2 * 8 + 8 * 8 + 8 * 3 and dense.kept.all() and (dense.pruned_round == -1).all()
    w = played.rounds[0].params["ticket"]["fc2.weight"]
    row = dense[(dense.layer == "fc2") & (dense.source == 5) & (dense.target == 3)].iloc[0]
    assert row.weight == pytest.approx(w[3, 5])  # weight[target, source]
    e2 = network_edges(played.net, played.rounds, 2)
    m1, m2 = (played.rounds[r].masks["ticket"] for r in (1, 2))
    for layer in m1:
        part = e2[e2.layer == layer]
        gone1 = ~m1[layer][part.target, part.source]
        gone2 = ~m2[layer][part.target, part.source]
        assert (part.pruned_round[gone1] == 1).all()
        assert (part.pruned_round[gone2 & ~gone1] == 2).all()
        assert (part.kept == ~gone2).all()
    assert (e2.weight[~e2.kept] == 0).all() and (e2.weight[e2.kept] != 0).all()
    fig = diagram_figure(nodes, e2, 2)
    names = {t.name for t in fig.data if t.showlegend is not False}
    assert {"positive weight", "negative weight", "pruned this round", "pruned earlier (fading)"} <= names


def test_only_2d_sets_are_offered():
    with pytest.raises(ConfigError, match="dataset"):
        PlaygroundSettings(dataset="wine").config()


# ---- the page's controls ---------------------------------------------------------------------------
def _page(**params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    at.switch_page("app_pages/playground.py")
    return at.run()


def _done(at: AppTest) -> int:
    text = " ".join(c.value for c in at.caption)
    import re
    return int(re.search(r"(\d+) of \d+ pruned rounds done", text).group(1))


def _button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def _images(at: AppTest) -> int:
    import json
    return json.loads(at.get("plotly_chart")[0].proto.spec)["data"].__len__()


def test_prune_a_round_then_the_round_slider_goes_back():
    at = _page()
    assert not at.exception and _done(at) == 0
    assert at.select_slider[0].value == 0
    _button(at, "Prune a round").click().run()
    assert not at.exception and _done(at) == 1
    slider = at.select_slider[0]
    assert slider.value == 1 and slider.options == ["0 · 100% of weights", "1 · 71% of weights"]
    four = _images(at)
    slider.set_value(0).run()
    assert not at.exception and at.select_slider[0].value == 0
    assert _images(at) < four  # round 0: the dense net alone
    assert "Round 0 is the full (dense) network" in at.info[0].value


def test_play_trains_a_round_per_tick_and_pause_stops():
    at = _page()
    _button(at, "Play").click().run()
    assert not at.exception and _done(at) == 1
    assert _button(at, "Pause") and _button(at, "Prune a round").disabled
    at.run()  # AppTest runs the whole script where the browser reruns the fragment every second
    assert _done(at) == 2
    _button(at, "Pause").click().run()
    assert _done(at) == 2 and not _button(at, "Play").disabled
    at.run()
    assert _done(at) == 2  # paused: no more rounds
    _button(at, "Start again").click().run()
    assert _done(at) == 0 and not _button(at, "Play").disabled


def test_the_end_says_what_to_do_next():
    at = _page()
    for _ in range(PlaygroundSettings().rounds):
        _button(at, "Prune a round").click().run()
    assert not at.exception and _done(at) == PlaygroundSettings().rounds
    assert _button(at, "Prune a round").disabled and _button(at, "Play").disabled
    assert any("pruned rounds are done" in c.value for c in at.caption)


@pytest.mark.parametrize("name", ["moons", "circles", "xor"])
def test_every_toy_set_plays(name):
    at = _page(data=name)
    _button(at, "Prune a round").click().run()
    assert not at.exception and _done(at) == 1
    assert at.radio[0].value == name
    assert any("of the test points right" in m.value for m in at.markdown)


def test_a_link_reproduces_the_view_data_seed_and_round():
    """?data=&seed=&round= open the same view: the page trains up to the linked round, a round a tick, then
    shows it; moving the slider, or another seed, writes the URL back. Before, only ?data= was kept."""
    at = _page(data="moons", seed="2", round="3")
    assert not at.exception and not at.warning
    assert at.radio[0].value == "moons" and at.selectbox(key="w:seed").value == 2
    for _ in range(6):  # the browser reruns the fragment every 0.2 s while it trains up to the round
        if _done(at) == 3:
            break
        assert at.query_params["round"] == "3"  # the link stays the linked view while it trains towards it
        at.run()
    assert _done(at) == 3 and at.select_slider[0].value == 3
    assert dict(at.query_params) == {"data": "moons", "seed": "2", "round": "3"}
    linked = _images_spec(at)
    at.run()
    assert _done(at) == 3  # no further round: the link's round is reached
    at.select_slider[0].set_value(1).run()
    assert at.query_params["round"] == "1"
    # the same link in another session draws the same boundaries: the seed fixes data, starts and masks
    again = _page(data="moons", seed="2", round="3")
    while _done(again) < 3:
        again.run()
    assert _images_spec(again) == linked
    other = _page(data="moons", seed="3", round="1")
    other.run()
    assert _done(other) == 1 and _images_spec(other) != _images_spec(_page(data="moons", seed="2", round="1").run())


@pytest.mark.parametrize("params, field, allowed", [({"round": "12"}, "round", "0–7"), ({"round": "-1"}, "round", "0–7"),
                                                    ({"round": "two"}, "round", "0–7"), ({"seed": "x"}, "seed", "0–99"),
                                                    ({"seed": "100"}, "seed", "0–99"),
                                                    ({"data": "<b>wine</b>"}, "data", "`spirals`")])
def test_a_bad_value_in_the_link_is_named_with_what_the_field_accepts(params, field, allowed):
    at = _page(**params)
    assert not at.exception and _done(at) == 0
    (warning,) = [w.value for w in at.warning]
    assert f"**{field}**" in warning and f"allowed: {allowed}" in warning, warning
    assert f"`{params[field]}`" in warning  # the value as a code span: escaped, never Markdown or HTML


def _images_spec(at: AppTest) -> list:
    import json
    return [t["z"] for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"] if t["type"] == "image"]


# ---- a panel that shows nothing says why ------------------------------------------------------------
def test_a_mask_that_cuts_every_path_is_named_and_a_working_net_is_not(played):
    """A mask with no chain of kept weights from input to output gives the same answer everywhere; the note
    says so in plain words. The real ticket of round 1 draws a boundary: no note."""
    shown = played.rounds[1]
    assert input_output_paths(played.net, shown.masks["ticket"]) > 0
    grid = decision_grid(played.net, [shown.params["ticket"]], grid_extent(played.data))[0]
    assert blank_panel_note(played.net, shown.masks["ticket"], grid, played.data.class_names, "The ticket") is None
    cut = {layer: m.copy() for layer, m in shown.masks["random"].items()}
    cut[played.net.prunable[-1].layer][:] = False  # no kept weight into the outputs
    assert input_output_paths(played.net, cut) == 0
    params = {k: v.copy() for k, v in shown.params["random"].items()}
    params[f"{played.net.prunable[-1].layer}.weight"][:] = 0  # what training a fully pruned layer leaves
    flat = decision_grid(played.net, [params], grid_extent(played.data))[0]
    note = blank_panel_note(played.net, cut, flat, played.data.class_names, "The random mask")
    assert note.startswith("The random mask has lost every chain of kept weights from the two inputs to the outputs")


def test_the_grey_random_mask_panel_at_round_7_is_explained_under_the_figure():
    """The default playground at round 7: the random mask's panel is flat grey (it is never more than about
    43 % sure of any of 3 classes), and a caption under the figure says why; the ticket's and reinit's are not."""
    at = _page(round="7")
    while _done(at) < 7:
        at.run()
    assert not at.exception and at.select_slider[0].value == 7
    notes = [c.value for c in at.caption if "panel:**" in c.value]
    assert len(notes) == 1 and notes[0].startswith("**Random mask panel:** The random mask is guessing, which is why "
                                                   "its panel is grey: nowhere is it more than "), notes
    assert "(guessing among 3 gives 33%)" in notes[0] and "(the ticket keeps " in notes[0]
    at.select_slider[0].set_value(3).run()  # earlier rounds draw a boundary: no note
    assert not [c.value for c in at.caption if "panel:**" in c.value]
