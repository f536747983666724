"""The Report button of Results and Compare: builds the report of the runs on the page
(`lth_core.analysis.report`) and offers it as a download; the PDF is a second button, because printing it
with headless Chromium takes several seconds more than the HTML."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Sequence

import streamlit as st

from lth_core.analysis.recommend import TOLERANCE_POINTS, points_text
from lth_core.analysis.report import MAX_TOLERANCE, PdfUnavailable, build_report, html_to_pdf, pdf_unavailable
from lth_core.engine.errors import LTHError
from lth_core.runs.store_schema import StoreError

from .widgets import one_line, run_network, store


def _software() -> dict[str, str]:
    from lth_core.example import software
    return {"lth_core": software()["lth_core"]}


def report_section(run_ids: Sequence[str], page: str, tolerance: float | None = None) -> None:
    """A "Report" button (with the recommendation's tolerance beside it, or the page's own `tolerance` setting when
    it has one) that builds one self-contained HTML report of `run_ids` and offers it for download, then a button
    that prints it to PDF."""
    st.header("Report to send")
    st.caption("One HTML file that opens anywhere without a server (and a PDF of it): the question and setup, the "
               "recommended ticket, the plots, the weights per layer, the measured deployment bench when one is "
               "stored, and caveats in plain words.")
    left, right = st.columns([1, 2], vertical_alignment="bottom")
    if tolerance is None:
        tolerance = right.number_input("Tolerance of the recommendation (points below dense)", min_value=0.0,
                                       max_value=MAX_TOLERANCE, value=TOLERANCE_POINTS, step=0.5, format="%.1f",
                                       key=f"report_tol:{page}",
                                       help="the recommended ticket is the sparsest whose test accuracy stays within "
                                            "this many percentage points of the dense network's")
    else:  # the page's setting: the report recommends what the page shows
        right.caption(f"Tolerance of the recommendation: {points_text(tolerance)} below "
                      "dense, as set at the top of this page.")
    key = f"report:{page}"
    wanted = (tuple(run_ids), float(tolerance))
    if left.button("Report", key=f"report_button:{page}", icon=":material/description:",
                   help="build the report of the run(s) on this page"):
        try:
            with st.spinner("Building the report…"):
                report = build_report(store(), list(run_ids), tolerance, software=_software(),
                                      networks={run_id: run_network(run_id)[0] for run_id in run_ids})
        except (LTHError, StoreError) as exc:
            st.error(f"The report could not be built: {one_line(exc)}", icon=":material/error:")
            return
        st.session_state[key] = {"for": wanted, "html": report.html.encode("utf-8"), "figures": report.figures,
                                 "pdf": None}
    built = st.session_state.get(key)
    if not built or built["for"] != wanted:
        return
    name = f"lottery-report-{'-'.join(run_ids)}"
    st.download_button("Download the report (HTML)", data=built["html"], file_name=f"{name}.html", mime="text/html",
                       icon=":material/download:", key=f"report_html:{page}")
    why = pdf_unavailable()
    if why:
        st.caption(why[0].upper() + why[1:] + ".")
        return
    if built["pdf"] is None and st.button("Make a PDF of it", key=f"report_pdf_button:{page}",
                                          icon=":material/picture_as_pdf:", help="prints the report with headless "
                                          "Chromium (several seconds)"):
        try:
            with st.spinner("Printing the PDF…"), tempfile.TemporaryDirectory(prefix="lth-report-") as folder:
                html_path, pdf_path = Path(folder) / "report.html", Path(folder) / "report.pdf"
                html_path.write_bytes(built["html"])
                html_to_pdf(html_path, pdf_path, built["figures"])
                built["pdf"] = pdf_path.read_bytes()
        except PdfUnavailable as exc:
            st.warning(str(exc), icon=":material/picture_as_pdf:")
    if built["pdf"] is not None:
        st.download_button("Download the PDF", data=built["pdf"], file_name=f"{name}.pdf", mime="application/pdf",
                           icon=":material/download:", key=f"report_pdf:{page}")
