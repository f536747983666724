"""The tolerance setting of Deploy and Compare: how many points below the dense network a ticket may be and still
"match" it. One number input, its value in the URL as ?tol= (only when it is not the default), so a link
reproduces what the page showed; shared by the two pages in a session. The default and the allowed range live in
lth_core.analysis.recommend (TOLERANCE_POINTS, TOLERANCE_RANGE)."""
from __future__ import annotations

from typing import Any, Callable

import pandas as pd
import streamlit as st

from lth_core.analysis.statistics import pct
from lth_core.analysis.recommend import TOLERANCE_POINTS, TOLERANCE_RANGE, parse_tolerance, points_text
from lth_core.engine.errors import ConfigError

from .text import link_value

PARAM = "tol"
KEY, KEPT, WRITTEN = "w:tol", "sel:tol", "url:written:tol"
MOVED = "tol:moved"  # True on the script run after the user changed the number by hand (not by a link)
REFUSED = "tol:refused"  # a number typed out of range, for the next script run to name (the field keeps the old one)
LABEL = "Tolerance (points)"


def _check_typed() -> None:
    """The number input's callback: a value out of TOLERANCE_RANGE is put back to the one in use and remembered,
    so the page says so. (With min and max on the widget, the browser only turned the field red and the page
    silently kept the old value.)"""
    low, high = TOLERANCE_RANGE
    typed = st.session_state.get(KEY)
    if typed is None or not low <= typed <= high:
        st.session_state[REFUSED] = typed
        st.session_state[KEY] = float(st.session_state.get(KEPT, TOLERANCE_POINTS))


def tolerance_setting(container: Any = st) -> float:
    """The number input of the tolerance, in percentage points; returns its value. A ?tol= the link came with wins
    when the page opens; a bad one is named in one line with the allowed range, and the page goes on with the value
    it had (the default at first)."""
    low, high = TOLERANCE_RANGE
    value = st.session_state.get(KEY, st.session_state.get(KEPT, TOLERANCE_POINTS))
    before = st.session_state.get(KEPT)
    linked = st.query_params.get(PARAM)
    from_link = linked is not None and linked != st.session_state.get(WRITTEN)
    if from_link:  # typed, pasted or bookmarked: it wins
        try:
            value = parse_tolerance(linked)
        except ConfigError:
            st.warning(f"The link asks for **tolerance** {link_value(linked)} (`?{PARAM}=`), which is not "
                              f"allowed: a number of percentage points from {low:g} to {high:g}. Showing "
                              f"**{value:g}** instead.", icon=":material/link_off:")
    # assigned on every run: the widget of the same key on the other page is another widget to Streamlit
    st.session_state[KEY] = float(value)
    refused = st.session_state.pop(REFUSED, False)
    if refused is not False:
        st.warning(f"**{LABEL}**: {'an empty field' if refused is None else f'{refused:g}'} is not allowed: a number "
                   f"of percentage points from {low:g} to {high:g}. Still using **{value:g}**.", icon=":material/error:")
    value = float(container.number_input(
        LABEL, step=0.5, format="%.1f", key=KEY, on_change=_check_typed,
        help="How far below dense still matches it: a ticket **matches** the dense network while its test accuracy is "
             "at most this many percentage points below it: the colours, the recommended ticket and where it stops matching dense all follow it."))
    st.session_state[KEPT] = value
    st.session_state[MOVED] = not from_link and before is not None and value != before
    if value == TOLERANCE_POINTS:
        st.query_params.pop(PARAM, None)
        st.session_state[WRITTEN] = None
    else:
        st.session_state[WRITTEN] = st.query_params[PARAM] = f"{value:g}"
    return value


def follow_recommended(widget_key: str, recommended: int | None) -> None:
    """Call before the round's widget: when the user has just changed the tolerance by hand, the page moves to
    the round recommended at the new tolerance (a link naming a round, or a round picked by hand, is kept
    otherwise). With no recommended round, the round shown stays."""
    if st.session_state.get(MOVED) and recommended is not None:
        st.session_state[widget_key] = recommended


def round_label(rounds: pd.DataFrame, recommended: int | None) -> Callable[[int], str]:
    """How a round reads in the round pickers of Compare and Deploy: '3 (51.2 %) · recommended'."""
    def label(r: int) -> str:
        return f"{r} ({pct(rounds[rounds['round'] == r].weights_remaining.mean())})" + (
            " · recommended" if r == recommended else "")
    return label


def round_caption(shown: int, recommended: int | None, tolerance: float, why: str) -> str:
    """The truth about the round on the page: which one is shown, and whether it is the one recommended at the
    current tolerance (`why` says what "recommended" means)."""
    if recommended is None:
        return (f"No round's ticket stays within {points_text(tolerance)} of the dense network, so none is "
                f"recommended; showing round {shown}.")
    if shown == recommended:
        return f"Showing round {shown}, the recommended ticket: {why}"
    return (f"Showing round {shown}; the recommended ticket within {points_text(tolerance)} of the dense network "
            f"is round {recommended}: {why}")


def link_params() -> dict[str, str]:
    """The tolerance for a link to the other page ({} at the default)."""
    value = st.session_state.get(KEPT, TOLERANCE_POINTS)
    return {} if value == TOLERANCE_POINTS else {PARAM: f"{value:g}"}
