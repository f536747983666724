"""Links and user text (issue 9, items 14 and 17): values of the URL and run names reach Markdown escaped,
the server's store path stays on the server, and a very long URL value is cut before a page reads it.
Pages run through Streamlit's AppTest on conftest's app_store; tests/test_e2e_browser.py checks what
Chromium draws from the same text."""
import re
import sqlite3

import pytest
from streamlit.testing.v1 import AppTest

from app_helpers import APP, TIMEOUT, page

from lth_core.runs.store import RunStore
from ui.text import MAX_LINK_CHARS, code, md

EVIL = "`![i](http://evil.example/x.png)` [CLICKME](http://evil.example/phish) <http://evil.example> www.evil.example"
# what would make Markdown draw an image or a link out of EVIL: an unescaped "[" or "<http", a bare URL
UNSAFE = re.compile(r"(?<!\\)\[|(?<!\\)<http|https?://evil\.example|www\.evil")




def shown(at: AppTest) -> list[str]:
    """Every piece of Markdown the page sent: text, alerts, captions, headings, metric labels."""
    return ([e.value for kind in ("markdown", "caption", "warning", "info", "error", "success", "subheader")
             for e in at.get(kind)] + [m.label for m in at.metric])


@pytest.fixture
def evil_home(app_store, tmp_path, monkeypatch):
    """A copy of app_store's runs in a fresh LTH_HOME, the older finished run renamed to EVIL."""
    home = tmp_path / "evil-home"
    home.mkdir()
    (home / "cache").symlink_to(app_store["home"] / "cache")
    with sqlite3.connect(app_store["home"] / "runs.sqlite") as src, sqlite3.connect(home / "runs.sqlite") as dst:
        src.backup(dst)
    monkeypatch.setenv("LTH_HOME", str(home))
    with RunStore(home / "runs.sqlite") as store:
        store.rename(app_store["done"], EVIL)
    return home


def test_md_keeps_the_text_and_drops_every_link():
    assert not UNSAFE.search(md(EVIL))
    for plain in ("tiny digits run", "lenet 20 % x5", "(0, 1) and 0.5", "seed 1"):
        assert md(plain) == plain  # ordinary names and numbers are left as they are typed
    assert md("1. run") == "1\\. run" and md("# run") == "\\# run"  # no list, no heading
    assert md("a\nb") == "a b"
    assert code("a`b") == "``a`b``" and code("`x") == "`` `x ``"  # a backtick cannot close the span early


@pytest.mark.parametrize("param", ["round", "variant", "metric"])
def test_a_link_value_is_shown_escaped(runs_home, param):
    at = page("results" if param == "metric" else "compare" if param == "round" else "masks",
              run=runs_home["done"], **{param: EVIL})
    assert not at.exception
    (warning,) = [w.value for w in at.warning if f"?{param}=" in w.value]  # Compare also warns of its caveat
    assert code(EVIL) in warning
    assert not UNSAFE.search(warning.replace(code(EVIL), ""))


def test_an_unknown_run_in_the_link_is_shown_escaped(runs_home):
    at = page("live_run", run=EVIL)
    assert not at.exception
    (warning,) = [w.value for w in at.warning]
    assert warning.startswith(f"Run {code(EVIL)} is not in the run store")


def test_a_run_name_is_escaped_on_every_page(evil_home, app_store):
    done, other = app_store["done"], app_store["other"]
    for name, params in (("live_run", {"run": done}), ("results", {"run": [done, other]}),
                         ("masks", {"run": done}), ("compare", {"run": done}), ("deploy", {"run": done})):
        at = page(name, **params)
        assert not at.exception and not at.error, name
        texts = shown(at)
        assert not [t for t in texts if UNSAFE.search(t)], (name, [t for t in texts if UNSAFE.search(t)])
        if name in ("live_run", "results"):
            assert any(md(EVIL) in t for t in texts), name  # the name is there, escaped
    new = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not [t for t in shown(new) if UNSAFE.search(t)]


def test_a_store_error_does_not_show_the_store_path(tmp_path, monkeypatch):
    home = tmp_path / "secret-server-folder"
    home.mkdir()
    (home / "runs.sqlite").write_text("not a database")
    monkeypatch.setenv("LTH_HOME", str(home))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    (error,) = [e.value for e in at.error]
    assert "the run store" in error and "secret-server-folder" not in error and str(tmp_path) not in error


@pytest.mark.parametrize("name,param", [("live_run", "run"), ("results", "run"), ("masks", "round"),
                                        ("compare", "round"), ("deploy", "trial")])
def test_a_very_long_link_value_is_cut_and_named_too_long(runs_home, name, param):
    params = {"run": runs_home["done"], param: "9" * 100_000}
    at = page(name, **params)
    assert not at.exception and not at.error
    (warning,) = [w.value for w in at.warning if f"?{param}=" in w.value]  # Compare also warns of its caveat
    assert f"too long: more than {MAX_LINK_CHARS} characters" in warning and len(warning) < 1000
    for values in at.query_params.values():
        assert all(len(v) <= MAX_LINK_CHARS + 1 for v in ([values] if isinstance(values, str) else values))


@pytest.fixture
def runs_home(app_store, monkeypatch):
    monkeypatch.setenv("LTH_HOME", str(app_store["home"]))
    return app_store
