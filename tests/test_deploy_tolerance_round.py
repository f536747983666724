"""Deploy and Compare: the round shown follows a tolerance changed by hand, a link naming a round keeps it, and
the caption says which round is shown and whether it is the recommended one (issue 11, defect 1)."""
import pytest

from app_helpers import page
from test_app_pages import runs  # noqa: F401  (the fixture: the app store's runs, LTH_HOME set to it)

from lth_core.analysis.recommend import recommended_round
from lth_core.runs.store import RunStore


def captions(at) -> str:
    return "\n".join(c.value for c in at.caption) + "\n" + "\n".join(w.value for w in at.warning)


@pytest.mark.parametrize("name, key, param", [("deploy", "w:round", "round"), ("compare", "w:deploy_round", "deploy_round")])
def test_changing_the_tolerance_by_hand_moves_to_the_new_recommended_round(runs, name, key, param):
    done = runs["done"]
    rounds = RunStore().rounds(done)
    at1, at10 = recommended_round(rounds, 1.0), recommended_round(rounds, 10.0)
    assert at10 is not None and at10 != at1  # the tiny run: 10 points recommends another round than 1 point
    at = page(name, run=done, tol="10")
    widget = at.selectbox(key=key) if name == "deploy" else at.select_slider(key=key)
    assert widget.value == at10 and at.query_params[param] == str(at10)
    assert f"Showing round {at10}, the recommended ticket" in captions(at)
    at.number_input(key="w:tol").set_value(1.0).run()
    widget = at.selectbox(key=key) if name == "deploy" else at.select_slider(key=key)
    shown = at1 if at1 is not None else widget.value
    assert widget.value == shown and at.query_params[param] == str(shown)
    text = captions(at)
    assert f"Opens on round {at10}" not in text and f"Showing round {at10}, the recommended" not in text
    if at1 is not None:
        assert f"Showing round {shown}, the recommended ticket" in text
    else:
        assert "none is recommended" in text and f"showing round {shown}" in text


@pytest.mark.parametrize("name, param", [("deploy", "round"), ("compare", "deploy_round")])
def test_a_link_naming_a_round_keeps_it_and_the_caption_says_so(runs, name, param):
    done = runs["done"]
    rounds = RunStore().rounds(done)
    best = recommended_round(rounds, 10.0)
    other = next(r for r in sorted(int(r) for r in rounds["round"].unique() if r > 0) if r != best)
    at = page(name, run=done, tol="10", **{param: str(other)})
    assert not at.exception
    assert at.query_params[param] == str(other)
    text = captions(at)
    assert f"Showing round {other}; the recommended ticket within 10 points of the dense network is round {best}" in text
    assert f"Opens on round {best}" not in text
