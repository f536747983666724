"""New experiment's upload panel through Streamlit's AppTest: a real file is read, checked, kept,
chosen in the form, and a bad file is answered with one escaped line."""
from pathlib import Path

import numpy as np
import pandas as pd
from streamlit.testing.v1 import AppTest

from lth_core.engine import uploads

TIMEOUT = 90
APP = str(Path(__file__).resolve().parent.parent / "app.py")


def new_experiment() -> AppTest:
    return AppTest.from_file(APP, default_timeout=TIMEOUT).run()


def table_csv(rows: int = 300) -> bytes:
    rng = np.random.default_rng(0)
    kind = np.repeat(["cat", "dog", "fox"], rows // 3)
    return pd.DataFrame({"weight kg": rng.normal(5, 1, rows) + (kind == "dog") * 4,
                         "coat": rng.choice(["short", "long"], rows), "kind": kind}).to_csv(index=False).encode()


def test_a_csv_upload_is_checked_kept_and_chosen_with_its_label_column(lth_home):
    at = new_experiment()
    assert not at.exception
    at.file_uploader(key="upload:files").upload("pets.csv", table_csv(), "text/csv")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    label = at.selectbox[0]
    assert label.label == "Label column (what to predict)" and label.options == ["weight kg", "coat", "kind"]
    assert label.value == "kind"                                 # no 'label' column: the last one
    spec = uploads.list_uploads()[0].name
    assert spec.startswith("upload:pets-")
    assert any("is usable and kept as" in s.value for s in at.success)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Examples"] == "300" and metrics["Input features"] == "3" and metrics["Classes"] == "3"
    assert metrics["Test examples"] == "60"
    assert any("one example moves the test accuracy by 1\\.67 points" in w.value for w in at.warning)
    assert any("one\\-hot encoded into 2 columns" in m.value for m in at.markdown)
    assert at.selectbox(key="form:dataset").value == spec       # chosen in the form
    assert not at.error, [e.value for e in at.error]
    assert not at.button(key="run_button").disabled
    # another label column: checked again; the run will carry it in its config
    label.set_value("coat").run()
    assert not at.exception and not at.error
    assert {m.label: m.value for m in at.metric}["Classes"] == "2"
    assert uploads.list_uploads()[0].label_col == "coat" and len(uploads.list_uploads()) == 1


def test_a_bad_upload_is_one_escaped_line_and_nothing_is_kept(lth_home):
    at = new_experiment()
    blob = b"a,*b*,label\n" + b"".join(b"%d,1e308,%d\n" % (i, i % 2) for i in range(40))
    at.file_uploader(key="upload:files").upload("[evil](x).csv", blob, "text/csv")
    at.run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert errors == ["**\\[evil\\]\\(x\\)\\.csv** cannot be used: \\[evil\\]\\(x\\)\\.csv has NaN, infinite or too "
                      "large numbers in column '\\*b\\*' \\(at most 3\\.4e\\+38 in absolute value\\). Pick another "
                      "file above."]
    assert uploads.list_uploads() == []
    assert at.selectbox(key="form:dataset").value == "mnist-5k"


def test_after_a_rejected_file_the_next_one_can_be_picked_at_once(lth_home):
    # the rejected file stayed in the uploader, so the next one was checked together with it
    at = new_experiment()
    at.file_uploader(key="upload:files").upload("broken.csv", b"a,label\n" + b"".join(b"%d,only\n" % i for i in range(30)),
                                                "text/csv")
    at.run()
    (error,) = [e.value for e in at.error]
    assert error.startswith("**broken\\.csv** cannot be used: ") and error.endswith(". Pick another file above.")
    emptied = at.file_uploader(key="upload:files:1")
    assert not emptied.value  # the rejected file is gone from the uploader
    emptied.upload("pets.csv", table_csv(), "text/csv")
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(s.value.startswith("**pets\\.csv** is usable") for s in at.success)
    assert at.selectbox(key="form:dataset").value.startswith("upload:pets-")


def test_masks_labels_a_tabular_first_layer_by_its_column_names(lth_home):
    import json
    import time

    from lth_core import ExperimentConfig, jobs
    from lth_core.runs.store import RunStore

    report = uploads.check_upload({"pets.csv": table_csv()}, label_col="kind")
    run_id = jobs.submit(ExperimentConfig(dataset=report.spec, label_col="kind", arch="mlp", hidden=(8,), rounds=1,
                                          iterations=30, batch_size=16))
    store = RunStore()
    deadline = time.time() + 120
    while store.get_run(run_id).status in ("queued", "running"):
        assert time.time() < deadline, "the run on the upload did not finish"
        time.sleep(0.3)
    assert store.get_run(run_id).status == "finished", store.get_run(run_id).error
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["run"] = run_id
    at.switch_page("app_pages/masks.py")
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
    figures = {json.loads(c.proto.spec)["layout"]["title"]["text"]: json.loads(c.proto.spec) for c in at.get("plotly_chart")}
    bars = figures["Connections each input keeps into fc1 (of 8)"]
    assert bars["data"][0]["x"] == ["weight kg", "coat=long", "coat=short"]
    assert bars["layout"]["xaxis"]["title"]["text"] == "input column"
    heatmap = next(f for title, f in figures.items() if title.startswith("fc1: 8×3 weights"))
    assert heatmap["data"][0]["x"] == ["weight kg", "coat=long", "coat=short"]
    assert heatmap["layout"]["xaxis"]["title"]["text"] == "input column"
    output = next(f for title, f in figures.items() if title.startswith("output: 3×8 weights"))
    assert output["layout"]["xaxis"]["title"]["text"] == "input (column of the weight matrix)"
    fields = figures["Every unit's kept inputs (dark = kept)"]
    assert fields["data"][0]["x"] == ["weight kg", "coat=long", "coat=short"]


def test_column_names_in_mask_plots_are_escaped_and_only_used_when_they_fit():
    from lth_core.analysis import mask_plots
    mask = np.array([[1, 0, 1], [1, 1, 0]], bool)
    fig = mask_plots.survival_map(mask, (3,), "fc1", ("a", "<a href='x'>b</a>", "c=1"))
    assert list(fig.data[0].x) == ["a", "&lt;a href='x'&gt;b&lt;/a&gt;", "c=1"]
    assert list(fig.data[0].y) == [2, 1, 1]
    assert list(mask_plots.survival_map(mask, (3,), "fc1", ("a", "b")).data[0].x) == [0, 1, 2]   # 2 names, 3 inputs
    assert mask_plots.receptive_fields(mask, (3,), feature_names=None).data[0].x is None


def _this_run(at: AppTest) -> str:
    return next(c.value for c in at.caption if c.value.startswith("This run:"))


def test_after_an_upload_the_hint_and_the_estimate_follow_the_chosen_dataset(lth_home):
    # was: the lightbulb still read "The form opens on the paper's LeNet experiment … 5,000 MNIST digits"
    at = new_experiment()
    assert any("The form opens on" in i.value and "MNIST digits" in i.value for i in at.info)
    before = _this_run(at)
    assert "266,200 weights" in before                           # LeNet-300-100 on MNIST's 784 pixels
    at.file_uploader(key="upload:files").upload("pets.csv", table_csv(), "text/csv")
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    hints = " ".join(i.value for i in at.info)
    assert "MNIST" not in hints and "The form opens on" not in hints, hints
    assert "you changed its dataset (now **pets" in hints and "(uploaded)" in hints, hints
    after = _this_run(at)
    assert after != before and "266,200 weights" not in after    # estimated for the uploaded table's 4 inputs
    # back on the preset's dataset: its own words again
    at.selectbox(key="form:dataset").set_value("mnist-5k").run()
    assert any("The form opens on" in i.value and "MNIST digits" in i.value for i in at.info)


def _estimate_note_script() -> None:
    import streamlit as st
    from ui.form import check, estimate_outdated
    settings = {"dataset": "digits", "arch": "mlp", "hidden": (8,), "epochs": st.session_state.get("epochs", 1.0),
                "rounds": 1}
    st.text("outdated" if estimate_outdated(settings) else "current")
    st.text(check(settings).estimate.describe())


def test_the_estimate_on_screen_is_said_outdated_as_soon_as_the_settings_change(lth_home):
    # was: the old estimate stayed greyed with the old numbers while the new one was timed
    at = AppTest.from_function(_estimate_note_script, default_timeout=TIMEOUT).run()
    assert at.text[0].value == "current"                         # nothing shown before: nothing outdated
    assert at.run().text[0].value == "current"                   # same settings
    at.session_state["epochs"] = 2.0
    at.run()
    assert at.text[0].value == "outdated" and at.text[1].value    # said before the estimate is redone
    assert at.run().text[0].value == "current"
