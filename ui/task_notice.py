"""What a page says about its background task (a bench, an analysis, a measurement): one notice per state,
worded the same on every page."""
from __future__ import annotations

import streamlit as st

from lth_core.runs import tasks
from ui.text import md


def task_notice(task: tasks.Task | None, running: str, what: str, again: str = "",
                kept: str = "the result is kept with the run") -> None:
    """Queued or running: progress and that the page may be left; failed, interrupted or cancelled: what
    happened to `what` ('measurement of this ticket'), then `again` (how to start it again)."""
    if task is None:
        return
    if task.state == tasks.QUEUED:
        st.info(f"Waiting for the background worker (it finishes queued runs first): {md(task.progress)}",
                icon=":material/hourglass_empty:")
    elif task.state == tasks.RUNNING:
        st.info(f"{running} in the background: {md(task.progress)}…  You can leave this page; {kept}.",
                icon=":material/hourglass_empty:")
    elif task.state in (tasks.FAILED, tasks.INTERRUPTED):
        st.warning(f"The last {what} {'failed' if task.state == tasks.FAILED else 'was interrupted'}: "
                   f"{md(task.error or '')}{'. ' + again if again else ''}", icon=":material/error:")
    elif task.state == tasks.CANCELLED:
        st.info(f"The last {what} was cancelled{'; ' + again if again else '.'}", icon=":material/cancel:")
