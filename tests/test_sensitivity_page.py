"""Masks' sensitivity section on a real run (conftest.app_store): the button queues the measurement in the real
background worker, the page shows its figure (a solid and a dotted line per layer, the dense accuracy marked) and the
suggested rates, and "Use these rates in a new experiment" fills the New experiment form with them."""
import time

from lth_core.engine.sensitivity import suggest_rates
from lth_core.analysis.sensitivity_view import suggestion_lines, suggestion_rounds
from lth_core.runs import sensitivity as S
from lth_core.runs.store import RunStore
from test_app_pages import figures, no_errors, page, runs, text  # noqa: F401 - runs is a fixture


def _sensitivity_figure(at):
    found = [f for f in figures(at) if f["layout"]["title"]["text"] == "Each layer pruned alone"]
    return found[0] if found else None


def test_the_masks_page_measures_each_layer_and_fills_the_form(runs):
    done = runs["done"]  # digits, mlp 32: layers fc1 and output; 2 trials
    at = page("masks", run=done)
    no_errors(at)
    assert _sensitivity_figure(at) is None
    # bad input: one line naming the field, nothing queued
    at.text_input(key="sens:sparsities").set_value("50,120").run()
    at.button(key="sens:start").click().run()
    assert [e.value for e in at.error] and "sparsities" in at.error[0].value and "100 %" in at.error[0].value
    store = RunStore()
    assert S.stored(store, done, 0) is None
    # a real measurement in the background worker
    at.text_input(key="sens:sparsities").set_value("50,90").run()
    at.number_input(key="sens:steps").set_value(10).run()
    at.button(key="sens:start").click().run()
    no_errors(at)
    # queued or running (the page's state at its last run): its progress is shown, and the button waits for it
    progress = [i.value for i in at.info if "Waiting for the background worker" in i.value
                or "Measuring in the background" in i.value]
    assert progress and at.button(key="sens:start").disabled
    deadline = time.time() + 300
    while not (S.stored(store, done, 0) or (None, {}))[1].get("complete"):
        assert time.time() < deadline, "the sensitivity measurement did not finish in time"
        time.sleep(0.5)
    at = page("masks", run=done)
    no_errors(at)
    fig = _sensitivity_figure(at)
    result, _ = S.stored(store, done, 0)
    assert fig is not None and result.config.sparsities == (0.5, 0.9) and result.config.finetune_steps == 10
    lines = {t["name"]: t for t in fig["data"]}
    assert set(lines) == {"fc1, no retraining", "fc1, fine-tuned", "output, no retraining", "output, fine-tuned"}
    assert lines["fc1, no retraining"]["line"]["dash"] == "dot" and "dash" not in lines["fc1, fine-tuned"]["line"]
    assert lines["fc1, fine-tuned"]["line"]["color"] == lines["fc1, no retraining"]["line"]["color"]
    dense = [s for s in fig["layout"]["shapes"] if s["y0"] == s["y1"] == 100 * result.dense_test]
    assert dense, "the dense accuracy is marked"
    suggestion = suggest_rates(result, suggestion_rounds(RunStore().get_run(done).config.to_dict()))
    shown = text(at)
    for line in suggestion_lines(suggestion):
        assert line in shown
    at.button(key="sens:use").click().run()
    no_errors(at)
    for name, rate in suggestion.rates.items():
        assert at.session_state[f"form:{name}"] == 100 * rate
    assert at.session_state["form:scope"] == "layerwise" and at.session_state["form:dataset"] == "digits"
    assert any("rates suggested by the sensitivity of run" in s.value for s in at.success)
