"""What a new teacher and student found on a cold try of the app (session coldt9), each checked on the real pages
through AppTest: the form's "After pruning" options, Compare's sentences and table, the tolerance field, the
Playground's sentence and slider."""
from app_helpers import page


def test_after_pruning_options_each_read_as_one_short_label_with_a_caption(lth_home):
    at = page("new_experiment")
    radio = at.radio(key="form:reset")
    # a label that fits a narrow form column on one line beside its circle; the details go in a caption under it
    assert all(len(label) <= 24 for label in radio.options), radio.options
    captions = list(radio.proto.captions)
    assert len(captions) == len(radio.options) and all(captions), captions
    assert "lottery ticket" in captions[radio.options.index("reset to init")]


def test_two_trials_that_differ_are_said_trial_by_trial_in_plain_words():
    """Compare said '(mean of 2 trials; trials: down to 51.3 % and the first pruned round)': now each trial's
    own finding, as a sentence."""
    import pandas as pd

    from lth_core.analysis import statistics as S

    row = pd.Series(dict(held_trials=[0.513, 1.0]))
    assert S.held_trials_words(row) == ("one trial matches dense down to 51.3 %, the other falls below dense "
                                        "already at the first pruned round")


def test_a_table_cell_whose_trials_agree_says_so_instead_of_dropping_its_bracket():
    import pandas as pd

    from lth_core.analysis.summary import interval_text

    assert interval_text(pd.Series(dict(mean=0.918, low=0.918, high=0.918, trials=2))) == "91.8 % (both trials)"
    assert interval_text(pd.Series(dict(mean=112.0, low=112.0, high=112.0, trials=3)), "{:.0f}".format) == \
        "112 (all 3 trials)"
    assert interval_text(pd.Series(dict(mean=0.918, low=0.913, high=0.92, trials=2))) == "91.8 % (91.3–92.0 %)"
    assert interval_text(pd.Series(dict(mean=0.918, low=float("nan"), high=float("nan"), trials=1))) == "91.8 %"


def test_compare_table_marks_the_cells_where_both_trials_agree(lth_home):
    from lth_core.example import ensure_example
    from lth_core.runs.store import RunStore

    with RunStore() as store:
        run_id = ensure_example(store)
    at = page("compare", run=run_id)
    assert not at.exception
    cells = [str(v) for t in at.dataframe for v in t.value.to_numpy().ravel()]
    accuracies = [c for c in cells if c.endswith("%") or c.endswith(")")]
    assert any(c.endswith("(both trials)") for c in cells), cells[:40]
    assert all("(" in c for c in accuracies if c and not c.endswith("%") or c.count("%") > 1), accuracies
    text = "\n".join(m.value for m in at.markdown)
    assert "trials: down to" not in text and "the first pruned round)" not in text.replace("already at the first pruned round)", "")


def test_a_tolerance_typed_out_of_range_is_named_with_its_range_and_the_value_in_use(lth_home):
    """Typing 20 (or 0.05) in the tolerance field only turned it red while the page kept the old value silently."""
    from lth_core.example import ensure_example
    from lth_core.runs.store import RunStore

    with RunStore() as store:
        run_id = ensure_example(store)
    for name in ("compare", "deploy"):
        at = page(name, run=run_id)
        at.number_input(key="w:tol").set_value(2.0).run()
        for typed in (20.0, 0.05):
            at.number_input(key="w:tol").set_value(typed).run()
            assert not at.exception
            said = [w.value for w in at.warning if "Tolerance (points)" in w.value]
            assert said and f"{typed:g} is not allowed" in said[0] and "from 0.1 to 10" in said[0] \
                and "Still using **2**" in said[0], (name, [w.value for w in at.warning])
            assert at.number_input(key="w:tol").value == 2.0  # the field shows the value in use
            assert at.query_params.get("tol") == ["2"] or at.query_params.get("tol") == "2"
        at.run()  # said once: the next run has no message
        assert not [w.value for w in at.warning if "Tolerance (points)" in w.value]


def test_the_playground_says_how_much_a_round_prunes_as_the_rounds_show_it(lth_home):
    """It said each round prunes 30 % of the weights, while round 1 kept 71.3 % (the output layer is pruned at
    half the rate)."""
    import re

    at = page("playground")
    (button,) = [b for b in at.button if b.label == "Prune a round"]
    button.click().run()
    assert not at.exception
    intro = next(m.value for m in at.markdown if "**Prune a round** removes" in m.value)
    assert "in each hidden layer, the 30 % of its remaining weights" in intro and "15 % in the small output layer" in intro
    together = float(re.search(r"together about (\d+) % of the weights left", intro).group(1))
    kept = at.session_state["pg"].rounds[1].weights_remaining
    assert abs(together - 100 * (1 - kept)) < 0.6, (together, kept)  # the rounds drawn agree with the sentence


def test_compare_headlines_never_break_a_number_from_its_unit(lth_home):
    """Compare's headline wrapped '82.9' at a line's end and '%' at the next one's start."""
    import re

    from lth_core.example import ensure_example
    from lth_core.runs.store import RunStore

    with RunStore() as store:
        run_id = ensure_example(store)
    at = page("compare", run=run_id)
    headlines = [m.value for m in at.markdown if m.value.startswith("#### ")]
    assert len(headlines) == 2 and all("\xa0%" in h for h in headlines), headlines
    assert not [h for h in headlines if re.search(r"\d (%|points?\b)", h)], headlines
    assert re.search(r"\d\xa0points above", headlines[0]), headlines[0]
    plain = next(m.value for m in at.markdown if m.value.startswith("- At "))  # "In plain words"
    assert "of the weights" in plain and not re.search(r"\d (%|points?\b)", plain), plain
