"""The app's plot builders and summary sentences on real engine output (no Streamlit here)."""
import re

import numpy as np
import pandas as pd
import pytest

from lth_core.analysis import statistics
from lth_core.analysis import mask_plots, plots, summary


def _named(fig, name):
    """Traces by name; with several runs, "RUN · variant" finds the variant's line in that run's legend group."""
    run, _, short = name.rpartition(" · ")
    return [t for t in fig.data if t.name == name or (run and t.legendgroup == run and t.name == short)]


def test_accuracy_plot_has_one_line_per_variant_at_the_runs_weights_remaining(tiny_result):
    rounds = tiny_result.rounds_df()
    fig = plots.accuracy_vs_weights(rounds)
    ticket = _named(fig, "winning ticket")[0]
    expected = rounds[rounds.variant == "ticket"].groupby("round").weights_remaining.mean() * 100
    assert np.allclose(ticket.x, expected.to_numpy())
    acc = rounds[rounds.variant == "ticket"].groupby("round").test_accuracy.mean() * 100
    assert np.allclose(ticket.y, acc.to_numpy())
    for variant in ("reinit", "random"):  # controls start at round 1, the dense net has no controls
        (line,) = _named(fig, plots.LABELS[variant])
        assert len(line.x) == 2 and max(line.x) < 100
    (dense,) = _named(fig, "dense network")
    assert dense.y[0] == pytest.approx(rounds[rounds["round"] == 0].test_accuracy.mean() * 100)
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis.autorange == "reversed"
    assert "weights remaining" in fig.layout.xaxis.title.text


def test_two_trials_are_shaded_as_their_range_and_named_so_in_legend_and_tooltip(tiny_result):
    # a t-interval over 2 trials takes t = 12.7: so wide it hid the ticket's lead; the 2 trials' min–max instead
    rounds = tiny_result.rounds_df()
    fig = plots.accuracy_vs_weights(rounds, "early_stop_test_accuracy")
    bands = [t for t in fig.data if t.fill == "toself"]
    (band,) = [t for t in bands if t.name == "winning ticket range of 2 trials"] or \
        [t for t in bands if t.legendgroup == "bands" and t.showlegend]
    assert band.showlegend and band.name == "shaded: range of 2 trials"  # one legend entry says what bands are
    assert sum(bool(t.showlegend) for t in bands) == 1
    per = rounds[rounds.variant == "ticket"].groupby("round").early_stop_test_accuracy
    n = len(per)
    assert np.allclose(band.y[:n], per.max() * 100) and np.allclose(band.y[n:], per.min()[::-1] * 100)
    (line,) = _named(fig, "winning ticket")
    assert [row[3] for row in line.customdata] == [f"<br>range of 2 trials {100 * a:.1f}–{100 * b:.1f} %"
                                                   for a, b in zip(per.min(), per.max())]
    bars = plots.accuracy_gap_by_round(rounds)
    assert any("range of 2 trials" in row[2] for bar in bars.data for row in bar.customdata)
    one_trial = rounds[rounds.trial == 0]
    assert not [t for t in plots.accuracy_vs_weights(one_trial).data if t.fill == "toself"]
    assert {row[3] for row in _named(plots.accuracy_vs_weights(one_trial), "winning ticket")[0].customdata} == {""}
    bars = plots.accuracy_gap_by_round(one_trial)
    assert all(bar.error_y.visible is False for bar in bars.data)


def test_from_three_trials_the_bands_stay_the_95_percent_interval():
    # three trials with known values (the statistics module's own interval is what is drawn)
    rows = [dict(trial=t, round=r, variant="ticket", weights_remaining=w, test_accuracy=a)
            for t, accs in enumerate([[0.90, 0.91, 0.88], [0.92, 0.90, 0.86], [0.91, 0.93, 0.87]])
            for r, (w, a) in enumerate(zip([1.0, 0.8, 0.64], accs))]
    rounds = pd.DataFrame(rows)
    fig = plots.accuracy_vs_weights(rounds)
    (band,) = [t for t in fig.data if t.fill == "toself"]
    assert band.name == "shaded: 95 % CI"
    ci = statistics.round_intervals(rounds).sort_values("round")
    assert np.allclose(band.y[:3], ci["high"] * 100) and np.allclose(band.y[3:], ci["low"][::-1] * 100)
    (line,) = _named(fig, "winning ticket")
    assert all(row[3].startswith("<br>95 % CI ") for row in line.customdata)


def test_paired_gap_plot_draws_each_gap_with_its_interval_and_a_zero_line(tiny_result):
    rounds = tiny_result.rounds_df()
    gaps = statistics.paired_gaps(rounds)
    fig = plots.paired_gap_plot(gaps)
    (reinit,) = _named(fig, "ticket − reinit")
    mine = gaps[gaps.control == "reinit"].sort_values("round")
    assert np.allclose(reinit.x, mine.weights_remaining * 100) and np.allclose(reinit.y, mine["mean"])
    assert np.allclose(reinit.error_y.array, mine["high"] - mine["mean"])
    assert np.allclose(reinit.error_y.arrayminus, mine["mean"] - mine["low"]) and reinit.error_y.visible
    assert [s.y0 for s in fig.layout.shapes if s.type == "line"] == [0]
    # the zero line is named in the legend; a label in the plot sat on the first round's error bars
    assert [s.name for s in fig.layout.shapes if s.showlegend] == ["0: no difference"] and not fig.layout.annotations
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis.autorange == "reversed"
    one = plots.paired_gap_plot(statistics.paired_gaps(rounds[rounds.trial == 0]))
    assert all(t.error_y.visible is False for t in one.data)  # one trial: no bars, never of width zero


def test_overlaid_runs_get_a_colour_each_and_variants_a_line_style(tiny_result):
    rounds = tiny_result.rounds_df()
    both = pd.concat([rounds.assign(run="A"), rounds.assign(run="B", test_accuracy=rounds.test_accuracy * 0.9)])
    fig = plots.accuracy_vs_weights(both)
    a, b = _named(fig, "A · ticket")[0], _named(fig, "B · ticket")[0]
    assert a.line.color != b.line.color and a.line.dash == b.line.dash == "solid"
    assert np.allclose(np.array(b.y), np.array(a.y) * 0.9)
    (a_reinit,) = _named(fig, "A · reinit")
    assert a_reinit.line.color == a.line.color and a_reinit.line.dash != a.line.dash
    assert a.legendgrouptitle.text == "A" and a_reinit.legendgroup == "A"  # a legend column per run
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.yref == "container"  # below the plot


def test_runs_that_share_their_dense_network_draw_it_once(tiny_result):
    rounds = tiny_result.rounds_df()
    same = pd.concat([rounds.assign(run=f"run {k}") for k in range(5)])  # five runs from one dense round 0
    dense = [t for t in plots.accuracy_vs_weights(same).data if t.line.dash == "dot"]
    assert [(t.legendgroup, t.name) for t in dense] == [("dense network", "5 runs, same level")]
    other = pd.concat([same, rounds.assign(run="run 5", test_accuracy=rounds.test_accuracy - 0.05)])
    dense = [t for t in plots.accuracy_vs_weights(other).data if t.line.dash == "dot"]
    assert [(t.legendgroup, t.name) for t in dense] == [("dense network", "5 runs, same level"), ("run 5", "dense")]
    assert dense[1].y[0] == pytest.approx(100 * (rounds[rounds["round"] == 0].test_accuracy.mean() - 0.05))


def test_a_variant_filter_draws_only_the_chosen_variants_and_keeps_the_dense_level(tiny_result):
    rounds = tiny_result.rounds_df()
    five = pd.concat([rounds.assign(run=f"run {k}", test_accuracy=rounds.test_accuracy - 0.01 * k) for k in range(5)])
    fig = plots.accuracy_vs_weights(five, variants=["ticket"])
    lines = [(t.legendgroup, t.name) for t in fig.data if t.showlegend is not False]
    assert lines == [(f"run {k}", "ticket") for k in range(5)] + [(f"run {k}", "dense") for k in range(5)]
    single = plots.accuracy_vs_weights(rounds, variants=["ticket", "random"])
    assert [t.name for t in single.data if t.showlegend is not False and t.fill != "toself"] == [
        "winning ticket", "random mask", "dense network"]
    assert [t.name for t in single.data if t.showlegend and t.fill == "toself"] == ["shaded: range of 2 trials"]


def test_early_stopping_plot_and_a_live_plot_fixed_to_the_planned_range(tiny_result):
    rounds = tiny_result.rounds_df()
    fig = plots.accuracy_vs_weights(rounds[rounds["round"] == 0], "early_stop_iteration", planned=[1.0, 0.8, 0.5])
    assert fig.layout.xaxis.range[0] > fig.layout.xaxis.range[1] == pytest.approx(np.log10(50) - 0.05)
    (ticket,) = _named(fig, "winning ticket")
    assert list(ticket.y) == list(rounds[rounds["round"] == 0].groupby("round").early_stop_iteration.mean())


def test_learning_curves_of_a_round_with_dense_reference(tiny_result):
    curves = tiny_result.curves_df()
    fig = plots.curves_by_variant(curves, 2, "val_loss")
    (ticket,) = _named(fig, "winning ticket")
    mine = curves[(curves["round"] == 2) & (curves.variant == "ticket")].groupby("iteration").val_loss.mean()
    assert list(ticket.x) == list(mine.index) and np.allclose(ticket.y, mine.to_numpy())
    assert _named(fig, "dense network")[0].line.dash == "dot"
    side = plots.compare_curves(curves, 1)
    assert {t.xaxis for t in side.data} == {"x", "x2"}
    by_round = plots.curves_by_round(curves, tiny_result.rounds_df(), "ticket", "test_accuracy")
    names = [t.name for t in by_round.data if t.showlegend is not False]
    assert names[0] == "round 0 · dense (100 %)" and re.fullmatch(r"round 2 · \d+\.\d %", names[-1])


def test_gap_bars_are_accuracy_minus_dense(tiny_result):
    rounds = tiny_result.rounds_df()
    fig = plots.accuracy_gap_by_round(rounds)
    dense = rounds[rounds["round"] == 0].test_accuracy.mean()
    (random,) = _named(fig, "random mask")
    expect = (rounds[rounds.variant == "random"].groupby("round").test_accuracy.mean() - dense) * 100
    assert np.allclose(random.y, expect.to_numpy(), atol=0.1) and len(random.x) == 2  # to the printed 0.1 point


def test_gap_bars_shade_the_tolerance_within_which_a_ticket_matches_dense(tiny_result):
    fig = plots.accuracy_gap_by_round(tiny_result.rounds_df())
    (band,) = [shape for shape in fig.layout.shapes if shape.type == "rect"]
    assert (band.y0, band.y1) == (-1.0, 0) and band.xref == "x domain"
    # named in the legend: a label inside the plot sat on the first round's bars
    assert band.showlegend and band.name == "within 1 pt of dense (tolerance)"
    assert not any("within" in (a.text or "") for a in fig.layout.annotations)
    wider = plots.accuracy_gap_by_round(tiny_result.rounds_df(), tolerance=2.5)
    assert [s.y0 for s in wider.layout.shapes if s.type == "rect"] == [-2.5]


def test_a_gap_within_the_tolerance_is_green_and_beyond_it_red():
    assert summary.gap_verdict(-0.3) == ("green", "within 1 pt of dense")
    assert summary.gap_verdict(-1.0)[0] == "green" and summary.gap_verdict(0.4) == ("green", "above dense")
    assert summary.gap_verdict(-1.1) == ("red", "more than 1 pt below dense")
    assert summary.gap_verdict(-1.1, tolerance=2)[0] == "green"


def test_big_mask_heatmap_is_downsampled_to_fractions_kept(mnist_result):
    mask = mnist_result.masks[(0, 1, "ticket")]["fc1"]
    assert mask.shape == (300, 784)
    fig = mask_plots.mask_heatmap(mask, "fc1")
    z = np.asarray(fig.data[0].z)
    assert z.shape == (150, 196) and z.max() <= 1 and z.min() >= 0
    assert z.mean() == pytest.approx(mask.mean(), abs=1e-6)  # blocks tile the matrix exactly here
    assert "2×4" in fig.layout.title.text and "300×784" in fig.layout.title.text
    odd, factors = mask_plots.block_average(mask[:299, :781])
    assert factors == (2, 4) and odd.shape == (150, 196) and set(np.unique(odd)) <= set(np.arange(9) / 8) | {0.5, 1.0}


def test_survival_map_is_a_28x28_image_counting_connections(mnist_result):
    mask = mnist_result.masks[(0, 1, "ticket")]["fc1"]
    fig = mask_plots.survival_map(mask, (1, 28, 28))
    z = np.asarray(fig.data[0].z)
    assert z.shape == (28, 28) and z.sum() == mask.sum() and z.max() <= 300
    assert (z == mask.sum(axis=0).reshape(28, 28)).all()  # pixel (row r, col c) is input 28·r + c
    assert fig.layout.yaxis.autorange == "reversed"  # row 0 at the top, as images are drawn
    mosaic = np.asarray(mask_plots.receptive_fields(mask, (1, 28, 28), units=16).data[0].z, dtype=float)
    assert mosaic.shape[0] == mosaic.shape[1] > 4 * 28 and (~np.isnan(mosaic)).sum() == 16 * 28 * 28
    best = np.argsort(-mask.sum(axis=1), kind="stable")[0]  # the top-left tile is the unit keeping most inputs
    assert (mosaic[:28, :28] == mask[best].reshape(28, 28)).all()


def test_random_mask_keeps_the_same_counts_but_forgets_the_previous_round(tiny_result):
    masks = {(r, v): m for (t, r, v), m in tiny_result.masks.items() if t == 0}
    table = mask_plots.overlap_table(masks)
    row = table[(table["round"] == 2)].set_index("variant")
    assert row.loc["ticket", "overlap"] == 1.0  # iterative pruning only ever removes weights
    assert row.loc["random", "overlap"] < 1.0 and row.loc["random", "kept_now"] == row.loc["ticket", "kept_now"]
    fig = mask_plots.overlap_plot(table)
    assert [t.name for t in fig.data][-1].startswith("chance")


def test_layer_bars_and_init_histograms(tiny_result):
    layers = tiny_result.layers_df()
    fig = mask_plots.layer_bars(layers, 2)
    sel = layers[(layers["round"] == 2) & (layers.variant == "ticket")].groupby("layer", sort=False).mean(numeric_only=True)
    assert list(fig.data[0].x) == list(sel.index)
    assert np.allclose(fig.data[0].y, 100 * sel.remaining / sel.total)
    mask, init = tiny_result.masks[(0, 2, "ticket")]["fc1"], tiny_result.inits[0]["fc1.weight"]
    hist = mask_plots.init_magnitude_histogram(init, mask)
    kept, pruned = hist.data
    assert kept.name == f"kept ({mask.sum():,})" and pruned.name == f"pruned ({(~mask).sum():,})"
    assert sum(kept.y) == pytest.approx(100) and sum(pruned.y) == pytest.approx(100)


def test_sequence_and_tabular_first_layers_draw_profiles(tiny_result):
    mask = tiny_result.masks[(0, 2, "ticket")]["fc1"]  # digits: (32, 64) over 8×8 pixels
    flat = mask_plots.survival_map(mask, (64,))
    assert flat.data[0].type == "bar" and list(flat.data[0].y) == list(mask.sum(axis=0))
    seq = mask_plots.receptive_fields(mask, (1, 64))
    centres = [np.mean(np.nonzero(row)[0]) for row in np.asarray(seq.data[0].z) if row.any()]
    assert centres == sorted(centres)


def test_summary_sentence_numbers_match_the_data(tiny_result):
    rounds = tiny_result.rounds_df()
    sentence = summary.round_sentence(rounds, 2)
    mean = rounds[rounds["round"] == 2].groupby("variant")[["test_accuracy", "weights_remaining"]].mean()
    dense = rounds[rounds["round"] == 0].test_accuracy.mean()
    assert sentence == (f"At {100 * mean.loc['ticket', 'weights_remaining']:.1f}\xa0% of weights the ticket reaches "
                        f"{100 * mean.loc['ticket', 'test_accuracy']:.1f}\xa0%, reinit {100 * mean.loc['reinit', 'test_accuracy']:.1f}\xa0%, "
                        f"a random mask {100 * mean.loc['random', 'test_accuracy']:.1f}\xa0%; dense {100 * dense:.1f}\xa0%.")
    lines = summary.run_summary(rounds)
    assert lines[0] == sentence and len(lines) == 5  # the last round, 3 critical sparsities, early stopping
    assert "early-stopping" in lines[4]


def test_percentages_in_ticks_and_tooltips_read_as_everywhere_else(tiny_result):
    """One decimal, as summary.pct prints them in sentences, metrics and tables."""
    rounds = tiny_result.rounds_df()
    fig = plots.accuracy_vs_weights(rounds)
    remaining = rounds.groupby("round").weights_remaining.mean()
    assert list(fig.layout.xaxis.ticktext) == [summary.pct(w) for w in remaining]  # 100.0 %, 80.4 % ...
    assert np.allclose(fig.layout.xaxis.tickvals, remaining * 100)
    ticket = _named(fig, "winning ticket")[0]
    assert "%{y:.1f} %" in ticket.hovertemplate and ".4g" not in ticket.hovertemplate
    assert [row[2] for row in ticket.customdata] == [summary.pct(w) for w in remaining]  # "x % of weights" on hover
    stops = _named(plots.accuracy_vs_weights(rounds, "early_stop_iteration"), "winning ticket")[0]
    assert "%{y:.0f}" in stops.hovertemplate
    bars = mask_plots.layer_bars(tiny_result.layers_df(), 1)
    assert "%{text} kept" in bars.data[0].hovertemplate
    assert [t.split("<br>")[0] for t in bars.data[0].text] == [summary.pct(f) for f in _kept(tiny_result.layers_df(), 1)]
    # a share too small for a rounded tick value still gets its tick on the log axis
    tiny = rounds.assign(weights_remaining=rounds.weights_remaining.where(rounds["round"] == 0, 0.0004))
    ticks = plots.accuracy_vs_weights(tiny).layout.xaxis
    assert list(ticks.ticktext) == ["100.0 %", "0.04 %"] and min(ticks.tickvals) == pytest.approx(0.04)
    assert summary.pct(0.0004) == "0.04 %" and summary.pct(0.00044) == "0.044 %" and summary.pct(0.0005) == "0.1 %"
    assert summary.pct(0.298) == "29.8 %" and summary.pct(1.0) == "100.0 %" and summary.pct(0.0) == "0.0 %"
    # one definition: the sentences of statistics (critical sparsity, sweeps) print as the pages do
    assert statistics.pct is summary.pct and statistics.pct(0.00044) == "0.044 %" and statistics.pct(0.5, 2) == "50.00 %"


def test_the_gap_to_dense_is_the_difference_of_the_printed_accuracies(tiny_result):
    rounds = tiny_result.rounds_df()
    fig = plots.accuracy_gap_by_round(rounds)
    acc = rounds.groupby(["round", "variant"]).test_accuracy.mean()
    for bar in fig.data:
        variant = next(v for v, label in plots.LABELS.items() if label == bar.name)
        expected = [float(summary.pct(acc[(r, variant)])[:-2]) - float(summary.pct(acc[(0, "ticket")])[:-2])
                    for r in (1, 2)]
        assert list(bar.y) == pytest.approx(expected, abs=1e-9)
        assert "%{y:+.1f} points" in bar.hovertemplate and "%{customdata[0]:.1f} %" in bar.hovertemplate
    assert fig.layout.yaxis.title.text.endswith(f"({summary.pct(acc[(0, 'ticket')])})")


def test_side_by_side_learning_curves_name_both_y_axes(tiny_result):
    fig = plots.compare_curves(tiny_result.curves_df(), 1)
    assert fig.layout.yaxis.title.text == "validation loss"
    assert fig.layout.yaxis2.title.text == "test accuracy (%)"
    assert fig.layout.xaxis.title.text == fig.layout.xaxis2.title.text == "training iteration"


def _kept(layers: pd.DataFrame, round: int) -> list[float]:
    mine = layers[(layers["round"] == round) & (layers.variant == "ticket")].groupby("layer", sort=False)
    return list(mine.remaining.mean() / mine.total.mean())


def test_a_nearly_empty_layer_does_not_read_as_zero():
    mask = np.zeros((100, 100), bool)
    mask[0, :3] = True  # 3 of 10,000 weights kept
    assert mask_plots.mask_heatmap(mask, "fc1").layout.title.text.startswith("fc1: 100×100 weights, 0.03 % kept")
    layers = pd.DataFrame({"trial": 0, "round": 1, "variant": "ticket", "layer": ["fc1"], "total": [10_000], "remaining": [3]})
    assert mask_plots.layer_bars(layers, 1).data[0].text[0] == "0.03 %<br>3 of 10,000"


def test_early_stopping_iterations_are_drawn_from_zero(tiny_result):
    fig = plots.accuracy_vs_weights(tiny_result.rounds_df(), "early_stop_iteration")
    assert fig.layout.yaxis.rangemode == "tozero" and fig.layout.yaxis.title.text == "early-stopping iteration"
    assert plots.accuracy_vs_weights(tiny_result.rounds_df()).layout.yaxis.rangemode is None


def test_the_summary_says_how_far_each_variant_can_be_pruned_with_the_statistics_modules_words():
    # a hand-made rounds table: the sentence's logic on known numbers
    rows = [(0, "ticket", 1.0, 0.90)]
    rows += [(r, "ticket", w, a) for r, w, a in ((1, 0.8, 0.895), (2, 0.64, 0.905), (3, 0.512, 0.85))]
    rows += [(r, "reinit", w, a) for r, w, a in ((1, 0.8, 0.87), (2, 0.64, 0.895), (3, 0.512, 0.80))]
    rounds = pd.DataFrame(rows, columns=["round", "variant", "weights_remaining", "test_accuracy"]).assign(
        trial=0, early_stop_iteration=10, early_stop_test_accuracy=0.9)
    lines = summary.run_summary(rounds)
    critical = statistics.critical_sparsity(rounds)
    assert lines[1:3] == [summary.unbroken(statistics.critical_sentence(critical, v)) for v in ("ticket", "reinit")]
    assert lines[1].startswith("The ticket stays within 1\xa0point of the dense network down to 64.0\xa0% of")  # round 2, measured
    assert "one trial: no interval can be given; run 3 trials" in lines[1]
    assert not hasattr(summary, "smallest_matching")  # one definition of "how far it can be pruned"


def test_a_round_whose_trials_agree_pinches_the_band_to_its_line():
    # the shipped example: at round 4 (41 % of the weights) both trials of the ticket reach 92.7 %. Left out of
    # the band, that round let the polygon join rounds 3 and 5, and the band passed above the line there.
    from conftest import ROOT

    rounds = pd.read_csv(ROOT / "examples" / "lenet-mnist-5k" / "rounds.csv")
    ticket = rounds[(rounds.variant == "ticket") & (rounds["round"] == 4)]
    assert ticket.test_accuracy.nunique() == 1  # the case itself
    fig = plots.accuracy_vs_weights(rounds)
    (line,) = _named(fig, "winning ticket")
    band = next(t for t in fig.data if t.fill == "toself" and t.legendgroup == "bands")
    n = len(band.x) // 2
    for x, y in zip(line.x, line.y):
        at = [i for i in range(n) if band.x[i] == x]
        assert at, f"the band leaves out {x:.1f} %"
        hi, lo = band.y[at[0]], band.y[len(band.x) - 1 - at[0]]
        assert lo - 1e-9 <= y <= hi + 1e-9
