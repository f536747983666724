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
