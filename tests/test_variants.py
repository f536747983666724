"""The variant registry: what each variant starts from, how it is named, and that every reader follows it."""
import re

import numpy as np
import pandas as pd
import pytest
import torch

from lth_core import ConfigError, ExperimentConfig, collect, run_experiment
from lth_core.engine.events import RoundFinished
from lth_core.engine.models import build_network
from lth_core.engine.pruning import random_mask_like
from lth_core.engine.variants import CONTROLS, VARIANTS, StartContext, label, phrase, short

TINY = dict(dataset="digits", arch="mlp", hidden=(32,), rounds=2, epochs=1, batch_size=32)


def _context(seed=0):
    net = build_network("mlp", (1, 8, 8), 10, hidden=(32,))
    init = net.init_params(torch.Generator().manual_seed(1))
    mask = random_mask_like({s.layer: torch.ones(s.shape, dtype=torch.bool) for s in net.prunable},
                            torch.Generator().manual_seed(2))
    mask = {l: m & (torch.rand(m.shape, generator=torch.Generator().manual_seed(3)) < 0.3) for l, m in mask.items()}
    return net, StartContext(mask, init, init, net.init_params, seed, trial=0, round=1)


def test_every_entry_is_complete_and_the_controls_are_everything_but_the_ticket():
    assert list(VARIANTS)[0] == "ticket" and CONTROLS == ("reinit", "random", "reinit-signs", "inverted")
    for v in VARIANTS.values():
        assert v.label and v.short and v.phrase and v.explanation and v.start
        assert v.color.startswith("#") and v.dash and v.symbol
    assert len({v.color for v in VARIANTS.values()}) == len(VARIANTS)  # each drawn in its own colour
    text = VARIANTS["random"].explanation  # what the random control is
    assert "layer-wise shuffle" in text and "Frankle et al. 2021" in text and "original init" in text


def test_the_glossary_defines_each_variant_once_and_never_repeats_its_name():
    """The home page's "New to lottery tickets?" box: the random mask's definition once, in its own bullet; no
    bullet that reads "random mask: the random mask is …"."""
    from ui.notes import INTRO
    assert INTRO.count("layer-wise shuffle") == 1, INTRO
    for v in VARIANTS.values():
        assert not v.explanation.lower().startswith((v.label.lower(), v.short.lower(), f"the {v.short.lower()}")), v
    assert "random mask" in VARIANTS["reinit-signs"].explanation  # it still points to the other control


def test_reinit_signs_keeps_the_ticket_mask_and_the_init_signs_with_fresh_magnitudes():
    net, c = _context()
    mask, start = VARIANTS["reinit-signs"].start(c)
    assert mask is c.ticket_mask
    for s in net.prunable:
        w, w0 = start[s.name], c.init[s.name]
        assert torch.equal(torch.sign(w), torch.sign(w0))
        assert not torch.allclose(w.abs(), w0.abs())  # fresh magnitudes, not the init's
    fresh = net.init_params(c.generator("reinit-signs"))
    assert all(torch.equal(start[n].abs(), fresh[n].abs()) for n in fresh)
    _, again = VARIANTS["reinit-signs"].start(c)  # same seed, trial and round: the same numbers
    assert all(torch.equal(start[n], again[n]) for n in start)
    _, other = VARIANTS["reinit-signs"].start(StartContext(c.ticket_mask, c.reset_point, c.init, c.fresh_init, 1, 0, 1))
    assert not torch.equal(start[net.prunable[0].name], other[net.prunable[0].name])


def test_random_is_a_layerwise_shuffle_of_the_ticket_mask_from_the_reset_point():
    net, c = _context()
    mask, start = VARIANTS["random"].start(c)
    assert start is c.reset_point
    for layer, m in mask.items():
        assert int(m.sum()) == int(c.ticket_mask[layer].sum()) and not torch.equal(m, c.ticket_mask[layer])


def test_a_run_with_reinit_signs_trains_it_with_the_ticket_counts_and_the_init_signs():
    # one step at a learning rate too small to flip a sign: the trained weights still show where they started
    settings = {**TINY, "epochs": None}
    config = ExperimentConfig(**settings, iterations=1, lr=1e-9, controls=("reinit-signs",), trials=1)
    events = list(run_experiment(config))
    assert events[0].variants == ["ticket", "reinit-signs"]
    done = {(e.round, e.variant): e for e in events if isinstance(e, RoundFinished)}
    init = done[(0, "ticket")].params  # round 0 trains from the init; 1 step at 1e-9 leaves its signs
    for rnd in (1, 2):
        ticket, signs = done[(rnd, "ticket")], done[(rnd, "reinit-signs")]
        assert signs.layers == ticket.layers  # exactly the ticket's per-layer counts
        for layer, m in ticket.mask.items():
            assert np.array_equal(signs.mask[layer], m)
            w, w0 = signs.params[f"{layer}.weight"], init[f"{layer}.weight"]
            assert np.array_equal(np.sign(w[m]), np.sign(w0[m]))
            assert not np.allclose(np.abs(w[m]), np.abs(w0[m]), rtol=1e-3)


def test_the_same_seed_gives_the_same_numbers_for_every_control():
    config = ExperimentConfig(**TINY, controls=CONTROLS, trials=1)
    first, second = (collect(run_experiment(config)).rounds_df() for _ in range(2))
    cols = ["round", "variant", "weights_remaining", "test_accuracy", "early_stop_iteration"]
    pd.testing.assert_frame_equal(first[cols], second[cols])
    assert set(first.variant) == {"ticket", *CONTROLS}


def test_controls_are_checked_against_the_registry():
    with pytest.raises(ConfigError) as err:
        ExperimentConfig(controls=("signs",)).validated()
    assert err.value.field == "controls" and "reinit-signs" in err.value.message
    # the order of the registry, whatever order they were given in
    assert ExperimentConfig(controls=("inverted", "reinit-signs", "random", "reinit")).variants == ("ticket", *CONTROLS)


def test_the_ticket_is_named_for_what_it_is_under_each_reset():
    assert label("ticket") == "winning ticket" and label("ticket", "init") == "winning ticket"
    assert label("ticket", "rewind:20") == "ticket rewound to iteration 20"
    assert "winning" not in label("ticket", "none") and "fine-tuned" in label("ticket", "none")
    assert "fine-tuned" in short("ticket", "none") and "fine-tuned" in phrase("ticket", "none")
    assert "rewound to iteration 20" in phrase("ticket", "rewind:20")
    assert label("reinit", "none") == VARIANTS["reinit"].label  # the controls are what they are under any reset


def test_the_cli_table_follows_the_registry_order():
    from lth_core.cli import summary_table
    config = ExperimentConfig(**TINY, controls=("reinit-signs", "reinit"), trials=1)
    table = summary_table(collect(run_experiment(config)).rounds_df())
    header = next(line for line in table.splitlines() if line.lstrip().startswith("round"))
    assert header.split()[2:] == ["ticket", "reinit", "reinit-signs", "es_iter"]


def test_lr_rewind_keeps_trained_weights_so_it_is_no_winning_ticket_either():
    assert "fine-tuned" in label("ticket", "lr-rewind") and "winning" not in label("ticket", "lr-rewind")
    assert "fine-tuned" in phrase("ticket", "lr-rewind")


@pytest.fixture(scope="module")
def fine_tuned():
    """A real run with reset none: its 'ticket' is a pruned and fine-tuned network, not a winning ticket."""
    config = ExperimentConfig(**{**TINY, "controls": ("reinit", "reinit-signs")}, reset="none", trials=2)
    return collect(run_experiment(config)).rounds_df()


def test_with_reset_none_every_sentence_and_legend_says_pruned_and_fine_tuned(fine_tuned):
    from lth_core.analysis import plots, statistics
    from lth_core.analysis.summary import round_sentence, run_summary
    said = " ".join(run_summary(fine_tuned, reset="none"))
    assert "the pruned and fine-tuned network reaches" in said and "ticket" not in said.lower()
    assert " of weights the pruned and fine-tuned network reaches " in round_sentence(fine_tuned, 2, reset="none")
    gaps = statistics.paired_gaps(fine_tuned)
    assert all("ticket" not in line for c in ("reinit", "reinit-signs")
               for line in statistics.gap_sentences(gaps, c, reset="none"))
    legend = [t.name for t in plots.accuracy_vs_weights(fine_tuned, reset="none").data
              if t.showlegend is not False and not t.name.startswith("shaded")]  # the band's own entry comes first
    assert legend[:3] == ["pruned + fine-tuned (no reset)", "reinit (same mask, new init)", "reinit, original signs"]
    assert not any("winning" in name for name in legend)
    assert {t.name for t in plots.paired_gap_plot(gaps, reset="none").data} == {"fine-tuned − reinit",
                                                                              "fine-tuned − reinit signs"}
    bars = [t.name for t in plots.accuracy_gap_by_round(fine_tuned, reset="rewind:5").data]
    assert bars[0] == "ticket rewound to iteration 5"
    # several runs in one figure: each run's ticket is named for its own reset
    two = pd.concat([fine_tuned.assign(run="a"), fine_tuned.assign(run="b")])
    names = {t.name for t in plots.accuracy_vs_weights(two, reset={"a": "none", "b": "init"}).data}
    assert {"fine-tuned", "ticket"} <= names


def test_each_control_is_drawn_in_its_registry_colour(fine_tuned):
    from lth_core.analysis import plots
    lines = {t.name: t.line.color for t in plots.accuracy_vs_weights(fine_tuned).data if t.mode == "lines+markers"}
    assert lines["reinit, original signs"] == VARIANTS["reinit-signs"].color
    assert lines["winning ticket"] == VARIANTS["ticket"].color


def test_the_form_offers_every_control_of_the_registry_with_its_explanation():
    from streamlit.testing.v1 import AppTest

    from app_helpers import APP, TIMEOUT
    at = AppTest.from_file(APP, default_timeout=2 * TIMEOUT).run()  # the form's page is the app's heaviest
    for name in CONTROLS:
        box = at.checkbox(key=f"form:control_{name}")
        assert box.label == VARIANTS[name].label and box.help == VARIANTS[name].explanation
    signs = at.checkbox(key="form:control_reinit-signs")
    assert not signs.value and "Zhou et al. 2019" in signs.help and "random mask" in signs.help
    signs.check().run()
    assert not at.exception and at.checkbox(key="form:control_reinit-signs").value


def test_the_cli_table_names_the_ticket_column_for_the_reset(fine_tuned):
    from lth_core.cli import statistics_lines, summary_table
    table = summary_table(fine_tuned, "none")
    assert "ticket" not in table and "fine-tuned" in table.splitlines()[1]
    assert "pruned and fine-tuned network's early-stopping" in table.splitlines()[0]
    assert not any("ticket" in line for line in statistics_lines(fine_tuned, "none"))


def test_the_cli_trains_reinit_signs_and_names_a_fine_tuned_run_for_what_it_is(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT
    cli = lambda *args: subprocess.run([sys.executable, "-m", "lth_core", *args], cwd=ROOT,  # noqa: E731
                                       capture_output=True, text=True, timeout=600)
    run = cli("run", "--dataset", "digits", "--arch", "mlp", "--hidden", "32", "--rounds", "1", "--epochs", "1",
              "--batch-size", "32", "--controls", "reinit-signs,random", "--reset", "none", "--store", "--quiet",
              "--out", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    header = next(line for line in run.stdout.splitlines() if line.lstrip().startswith("round"))
    assert header.split()[2:] == ["fine-tuned", "random", "reinit-signs", "es_iter"]
    run_id = re.search(r"run (\w+)", run.stdout + run.stderr).group(1)
    show = cli("show", run_id)
    assert show.returncode == 0, show.stderr
    assert "reinit-signs" in show.stdout and "winning" not in show.stdout


def test_every_variant_has_its_own_line_style_and_marker_and_none_is_the_dense_networks_dotted_line():
    from lth_core.analysis.plots import VARIANT_DASH, line_style_text

    dashes = [VARIANT_DASH[v] for v in (*VARIANTS, "dense")]
    assert len(set(dashes)) == len(dashes)
    assert len({v.symbol for v in VARIANTS.values()}) == len(VARIANTS)
    for v in VARIANTS:  # each in words, with its marker's glyph
        words = line_style_text(v)
        assert words.split()[-1] in "●■◆▲✕" and VARIANT_DASH[v] not in ("", None)
