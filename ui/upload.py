"""New experiment's "Use your own data" panel: upload a CSV, an .npz or IDX files, see the check at
once, and train on it. The engine (lth_core.engine.uploads) reads, checks and keeps the file; this module
only draws. Everything taken from the file (its name, column names, class names) is escaped before
it reaches Markdown."""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import pandas as pd
import streamlit as st

from lth_core import ConfigError
from lth_core.engine.uploads import PREFIX, UploadInfo, UploadReport, check_upload, csv_header, list_uploads, max_upload_mb

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>$:~&])")


def md_text(text: Any) -> str:
    """`text` shown literally in Markdown: every punctuation mark Markdown (or Streamlit's
    :color[...] / :icon: directives, $math$) could read is backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


def uploaded_datasets() -> dict[str, UploadInfo]:
    """The kept uploads for the form's dataset list, by their `upload:` name (descriptions escaped)."""
    return {u.name: dataclasses.replace(u, description=md_text(u.description)) for u in list_uploads()}


def dataset_label(name: str) -> str:
    """How the form's dataset list shows a name: uploads by their own name, marked as uploaded."""
    return f"{name.removeprefix(PREFIX)} (uploaded)" if name.startswith(PREFIX) else name


def form_settings(info: Any) -> dict[str, Any]:
    """Settings an uploaded dataset adds to the run's config: a CSV's label column, written out so
    the run can be reproduced whatever is chosen later."""
    label = getattr(info, "label_col", None)
    return {"label_col": label} if isinstance(info, UploadInfo) and label else {}


def _report(files: list, label: str | None) -> UploadReport:
    """check_upload once per set of files and label column (a rerun must not re-read 200 MB)."""
    key = (tuple(f.file_id for f in files), label)
    cache = st.session_state.setdefault("upload:reports", {})
    if key not in cache:
        with st.spinner("Reading and checking the file…"):
            cache.clear()
            cache[key] = check_upload({f.name: f.getvalue() for f in files}, label_col=label)
    return cache[key]


def _uploader_key() -> str:
    """The uploader's widget key: a new one after each rejected file, which empties the uploader (Streamlit
    offers no other way to drop a file from it) so the next file can be picked at once."""
    generation = st.session_state.get("upload:generation", 0)
    return "upload:files" if not generation else f"upload:files:{generation}"


def _reject(message: str) -> None:
    """Remember why the file was refused, empty the uploader and draw the panel again."""
    st.session_state["upload:rejected"] = message
    st.session_state["upload:generation"] = st.session_state.get("upload:generation", 0) + 1
    st.session_state.pop("upload:reports", None)
    st.rerun()


def upload_panel() -> None:
    """The expander with the uploader and the check of what was uploaded. A file that passes is
    kept and chosen in the form's dataset list (once; the list can be changed afterwards). A file that
    does not is named with what is wrong, and the uploader is emptied for the next one."""
    key = _uploader_key()
    rejected = st.session_state.get("upload:rejected")
    cap = max_upload_mb()
    with st.expander("Use your own data: a CSV, an .npz or MNIST-style IDX files",
                     expanded=bool(st.session_state.get(key) or rejected), icon=":material/upload_file:"):
        files = st.file_uploader(
            "Upload a file", accept_multiple_files=True, key=key, max_upload_size=max(1, math.ceil(cap)),
            help="A CSV with a header row (you pick the label column), an .npz with arrays x and y "
                 "(optionally x_test and y_test), or the four IDX files train-images-idx3-ubyte, "
                 "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (optionally .gz).")
        st.caption(f"Up to {cap:g} MB. The file is kept on this machine (under LTH_HOME/datasets, named by "
                   "its content's hash) so runs on it can be repeated and resumed; nothing is unpickled.")
        if not files:
            if rejected:
                st.error(f"{rejected.rstrip('.')}. Pick another file above.", icon=":material/block:")
            return
        st.session_state.pop("upload:rejected", None)
        label = None
        if len(files) == 1 and files[0].name.lower().endswith(".csv"):
            try:
                columns = csv_header(files[0].getvalue())
            except ConfigError as exc:
                _reject(f"**{md_text(files[0].name)}**: {md_text(exc.message)}")
            if columns:
                default = "label" if "label" in columns else columns[-1]
                label = st.selectbox("Label column (what to predict)", columns, index=columns.index(default),
                                     key=f"upload:label:{files[0].file_id}",
                                     help="every other column is an input feature")
        report = _report(files, label)
        if not report.ok:
            _reject(f"**{md_text(', '.join(report.files))}** cannot be used: {md_text(report.error)}")
        show_report(report)
        if report.ok and st.session_state.get("upload:chosen") != (report.spec, report.label_col):
            st.session_state["upload:chosen"] = (report.spec, report.label_col)
            st.session_state["form:dataset"] = report.spec   # drawn after this panel: still settable


def show_report(report: UploadReport) -> None:
    """The check: what the file holds, how it was read, and what is wrong with it, if anything."""
    shown = md_text(", ".join(report.files))
    if not report.ok:
        st.error(f"**{shown}** cannot be used: {md_text(report.error)}", icon=":material/block:")
        return
    st.success(f"**{shown}** is usable and kept as **{md_text(report.spec.removeprefix(PREFIX))}**; it is now "
               "chosen as the dataset below.", icon=":material/check_circle:")
    shape = "×".join(str(s) for s in report.input_shape)
    cols = st.columns(4)
    cols[0].metric("Examples", f"{report.rows:,}")
    cols[1].metric("Input features" if report.kind == "tabular" else "Input shape",
                   shape if report.kind != "tabular" else f"{report.input_shape[0]:,}")
    cols[2].metric("Classes", len(report.class_counts))
    cols[3].metric("Test examples", f"{report.sizes['test']:,}",
                   help=f"train / validation / test: {report.sizes['train']:,} / {report.sizes['val']:,} / "
                        f"{report.sizes['test']:,} (stratified, fixed by the seed)")
    for warning in report.warnings:
        st.warning(md_text(warning), icon=":material/warning:")
    left, right = st.columns(2)
    with left:
        counts = pd.DataFrame({"class": list(report.class_counts), "examples": list(report.class_counts.values())})
        st.dataframe(counts, hide_index=True, key="upload:classes", height=min(400, 38 + 35 * len(counts)))
    with right:
        lines = []
        if report.format == "csv":
            lines.append(f"Label column: **{md_text(report.label_col)}**")
            numeric = [n for n in report.feature_names or () if "=" not in n]
            if numeric:
                lines.append(f"Numeric columns used as they are (standardised): {md_text(', '.join(numeric))}")
        lines += [md_text(d[:1].upper() + d[1:]) for d in report.details]
        if report.kind != "tabular":
            lines.append(f"{report.kind.capitalize()} data, each example {shape}")
        st.markdown("\n".join(f"- {line}" for line in lines))
