"""Lottery Ticket Explorer in the browser: `streamlit run app.py`.

The pages only read and write through lth_core (the run store, jobs, configs, estimates); training runs
in a background worker process, so the pages never block and a reload shows the same state.
"""
import streamlit as st

from ui.example import offer_example
from ui.widgets import (ICONS, PAGES, cap_link_values, flush_url, guard, one_history_entry_per_page, set_scope,
                        start_queued_runs)

st.set_page_config(page_title="Lottery Ticket Explorer", page_icon=":material/confirmation_number:", layout="wide")

pages = [
    st.Page(PAGES["new"], title="New experiment", icon=ICONS["new"], default=True),
    st.Page(PAGES["live"], title="Live run", icon=ICONS["live"]),
    st.Page(PAGES["results"], title="Results", icon=ICONS["results"]),
    st.Page(PAGES["masks"], title="Masks", icon=ICONS["masks"]),
    st.Page(PAGES["compare"], title="Compare", icon=ICONS["compare"]),
    st.Page(PAGES["sweep"], title="Sweep", icon=ICONS["sweep"]),
    st.Page(PAGES["deploy"], title="Deploy", icon=ICONS["deploy"]),
    st.Page(PAGES["atinit"], title="Pruning at init", icon=ICONS["atinit"]),
    st.Page(PAGES["stability"], title="Stability", icon=ICONS["stability"]),
    st.Page(PAGES["tour"], title="Guided tour", icon=ICONS["tour"]),
    st.Page(PAGES["playground"], title="Playground", icon=ICONS["playground"]),
]
page = st.navigation(pages)
st.sidebar.caption("Lottery Ticket Explorer · finds winning tickets (Frankle & Carbin, 2019) by iterative "
                   "magnitude pruning. Runs keep going when you close the tab.")
one_history_entry_per_page()  # a page's URL choices replace its history entry: one Back leaves it
with guard(page.title):
    cap_link_values()
    start_queued_runs()
    offer_example()  # a store that never held a run gets the shipped example run, once
    set_scope("")  # a page's run picker sets it again for the choices below it
    try:
        page.run()
    finally:
        flush_url()  # the page's choices into the URL at once: one browser history entry
