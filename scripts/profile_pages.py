"""Where a page's server-side time goes: each page script run under AppTest, timed and profiled.

    python -m scripts.profile_pages --home /tmp/lth-bench-home [--pages Results,Masks] [--top 15]

Opens each page of the app (as scripts/bench_pages.py does, on its store) in one AppTest session, twice
(the first run, then a rerun: the session's second look), then in another session (what the caches shared
by all sessions save). Prints the wall time of each and, for the first, the functions of the page script
with the most cumulative time (cProfile, in the script's own thread). Timing goes here, never into a test.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import time
from pathlib import Path

import streamlit as st

from scripts.bench_pages import build_store, pages

APP = str(Path(__file__).resolve().parent.parent / "app.py")
FILES = {"New experiment": "new_experiment", "Live run": "live_run", "Results": "results", "Masks": "masks",
         "Compare": "compare", "Sweep": "sweep", "Deploy": "deploy", "Guided tour": "tour", "Playground": "playground"}


PROFILE: list[cProfile.Profile] = []  # the profile of the next page run, if any (then emptied)
_run = st.Page.run


def _profiled_run(self) -> None:
    """A page's `page.run()`, profiled when PROFILE holds a profile (AppTest runs the script in a thread of its
    own, which cProfile must be enabled in)."""
    if not PROFILE:
        return _run(self)
    profile = PROFILE.pop()
    profile.enable()
    try:
        return _run(self)
    finally:
        profile.disable()


st.Page.run = _profiled_run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--home", type=Path, default=Path("/tmp/lth-bench-home"))
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--pages", help="comma-separated page names (default: all)")
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args(argv)
    ids = build_store(args.home, args.runs)
    os.environ["LTH_HOME"] = str(args.home)
    from streamlit.testing.v1 import AppTest

    wanted = [w.strip() for w in args.pages.split(",")] if args.pages else list(FILES)
    for name in wanted:
        query = dict(q.split("=") for q in pages(ids)[name].partition("?")[2].split("&") if q)
        profile = cProfile.Profile()
        PROFILE[:] = [profile]

        def opened() -> AppTest:
            at = AppTest.from_file(APP, default_timeout=120)
            for key, value in query.items():
                at.query_params[key] = value
            return at.switch_page(f"app_pages/{FILES[name]}.py")
        at = opened()
        started = time.perf_counter()
        at.run()
        first = time.perf_counter() - started
        started = time.perf_counter()
        at.run()
        again = time.perf_counter() - started
        other = opened()
        started = time.perf_counter()
        other.run()
        second = time.perf_counter() - started
        problems = [e.value for e in [*at.exception, *at.error, *other.exception, *other.error]]
        print(f"\n## {name}: first run {first:.2f} s, rerun {again:.2f} s, another session {second:.2f} s "
              f"(load {os.getloadavg()[0]:.1f})" + (f"; errors: {problems}" if problems else ""))
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(args.top)
        print("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
