"""Presets (lth_core.engine.presets) and the New experiment form's defaults: one source, the engine."""
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lth_core.cli import main
from lth_core.engine.events import RoundFinished, RunFinished
from lth_core.engine.lottery import run_experiment
from lth_core.engine.models import ARCHITECTURES
from lth_core.engine.presets import FORM_START, PRESETS, engine_defaults, form_start
from lth_core.runs.store import RunStore

TIMEOUT = 90
APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.mark.parametrize("name", list(PRESETS))
def test_each_preset_validates_and_trains_scaled_down(name, lth_home):
    """The preset's own settings, one round of a few iterations: every variant it asks for trains."""
    preset = PRESETS[name]
    config = preset.config(rounds=1, iterations=24, trials=1)  # past the rewind preset's K
    assert preset.page in ("compare", "results", "masks", "live", "sweep", "stability") and preset.page.title() in preset.expect.title()
    events = list(run_experiment(config))
    assert isinstance(events[-1], RunFinished), events[-1]
    finished = [e for e in events if isinstance(e, RoundFinished)]
    assert {(e.round, e.variant) for e in finished} >= {(1, v) for v in config.variants}
    assert all(0 <= e.test_accuracy <= 1 for e in finished)


def test_the_opening_preset_reaches_about_7_percent_with_both_controls_and_2_trials():
    config = PRESETS[FORM_START].config()
    assert config.dataset == "mnist-5k" and config.arch == "lenet-300-100" and config.reset == "init"
    assert set(config.controls) == {"reinit", "random"} and config.trials >= 2
    assert 0.06 < (1 - config.prune_rate) ** config.rounds < 0.08


def test_engine_defaults_are_the_engines():
    """Fields a preset leaves out: what the engine fills in (the resnet's width is its own)."""
    assert engine_defaults("resnet-8")["width"] == 0.5 and engine_defaults("conv-2")["width"] == 0.25
    assert engine_defaults("lenet-300-100")["width"] is None and engine_defaults("mlp")["hidden"] == (300, 100)
    start = form_start("conv-digits")
    assert start["width"] == engine_defaults("conv-2")["width"] and start["batch_size"] == 60


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_the_forms_defaults_are_the_engines_for_every_architecture(arch, lth_home):
    """Choose an architecture on a fresh form: every field the opening preset does not set shows the
    engine's default (before: resnet-8 got width 0.25 from the form and 0.5 from the CLI)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.selectbox(key="form:arch").set_value(arch).run()
    engine, preset = engine_defaults(arch), PRESETS[FORM_START].settings
    if ARCHITECTURES[arch].needs_image:
        assert at.number_input(key=f"form:width:{arch}").value == engine["width"]
    if arch == "mlp":
        assert at.text_input(key="form:hidden").value == ",".join(map(str, engine["hidden"]))
    for key in ("batch_size", "lr", "seed", "rate_fc", "rate_conv", "rate_output"):
        assert key not in preset and at.number_input(key=f"form:{key}").value == engine[key], key
    for key in ("optimizer", "criterion"):
        assert key not in preset and at.selectbox(key=f"form:{key}").value == engine[key], key
    assert "scope" not in preset and at.radio(key="form:scope").value == engine["scope"]
    # what the preset sets, it sets
    assert at.number_input(key="form:rounds").value == preset["rounds"]
    assert at.number_input(key="form:trials").value == preset["trials"]
    assert at.number_input(key="form:epochs").value == preset["epochs"]


def test_cli_takes_a_preset_and_flags_override_it(tmp_path, lth_home, capsys):
    out = tmp_path / "out"
    assert main(["run", "--preset", "fine-tune", "--rounds", "1", "--iterations", "4", "--trials", "1",
                 "--quiet", "--out", str(out)]) == 0
    import json
    config = json.loads((out / "config.json").read_text())
    assert config["reset"] == "none" and config["rounds"] == 1 and config["iterations"] == 4
    assert config["epochs"] is None and config["controls"] == []
    assert main(["run", "--preset", "no-such"]) == 2
    assert "preset" in capsys.readouterr().err


def test_a_preset_click_fills_the_form_and_its_run_finishes(lth_home):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert at.number_input(key="form:rounds").value == 12  # the form opens on the paper's LeNet experiment
    at.button(key="preset:fine-tune").click().run()
    assert at.radio(key="form:reset").value == "none"
    assert not at.checkbox(key="form:control_reinit").value and not at.checkbox(key="form:control_random").value
    assert at.number_input(key="form:rounds").value == 12 and at.number_input(key="form:trials").value == 2
    assert any("Fine-tuning instead of resetting" in i.value for i in at.info)
    at.button(key="preset:conv-digits").click().run()
    assert at.selectbox(key="form:arch").value == "conv-2"
    assert at.number_input(key="form:width:conv-2").value == engine_defaults("conv-2")["width"]
    assert at.checkbox(key="form:control_reinit").value and at.number_input(key="form:rounds").value == 6
    at.button(key="preset:one-shot").click().run()
    assert at.radio(key="form:schedule").value == "one-shot" and at.selectbox(key="form:arch").value == "lenet-300-100"
    # scaled down, so the test is short: the run submitted from the preset's form finishes
    at.number_input(key="form:rounds").set_value(1)
    at.number_input(key="form:epochs").set_value(0.2)
    at.number_input(key="form:trials").set_value(1).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    at.button(key="run_button").click().run()
    run_id = at.query_params["run"]
    store = RunStore()
    config = store.get_run(run_id).config
    assert config.schedule == "one-shot" and config.controls == ("reinit",) and config.rounds == 1
    deadline = time.time() + 120
    while store.get_run(run_id).active:
        assert time.time() < deadline
        time.sleep(0.5)
    assert store.get_run(run_id).status == "finished"


def test_a_preset_compared_with_another_run_sends_the_student_to_the_page_that_overlays_runs():
    # fine-tune, one-shot and rewind said "put it beside the paper's LeNet experiment on Compare", which shows one
    # run: only Results overlays several (its run picker takes many)
    with_other = [p for p in PRESETS.values() if p.name != FORM_START and ("beside" in p.expect or "both runs" in p.expect
                                                                          or "overlay" in p.expect)]
    assert {p.name for p in with_other} >= {"fine-tune", "one-shot", "rewind"}
    for p in with_other:
        assert p.page == "results" and "on **Results** to overlay them" in p.expect, p.name
    source = (Path(__file__).resolve().parent.parent / "app_pages" / "results.py").read_text()
    assert "run_picker(multi=True)" in source


def test_presets_on_mnist_say_mnist_not_digits_the_name_of_scikit_learns_8x8_set():
    # was "A conv net on digits": read as scikit-learn's 8×8 'digits' set, which the app also offers
    from lth_core.engine.presets import PRESETS
    assert PRESETS["conv-digits"].title == "A conv net on MNIST"   # the id stays: links keep working
    for p in PRESETS.values():
        words = f"{p.title} {p.expect}"
        if p.settings.get("dataset") == "mnist-5k" and "digits" in words:
            assert "MNIST digits" in words and " on digits" not in words, p.name
