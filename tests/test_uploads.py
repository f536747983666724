"""Uploaded datasets (lth_core.engine.uploads): checked at once, kept by content hash under LTH_HOME/datasets,
loadable by their `upload:` name in another process, listed by the CLI."""
from __future__ import annotations

import gzip
import io
import json
import struct
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from lth_core.engine import data, uploads
from lth_core.engine.errors import ConfigError

from conftest import ROOT


def flowers_csv(n_per_class: int = 40, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    species = np.repeat(["setosa", "versicolor", "virginica"], n_per_class)
    return pd.DataFrame({
        "petal length": rng.normal(4, 1, len(species)) + (species == "virginica") * 2,
        "colour": rng.choice(["red", "green", "blue"], len(species)),
        "species": species,
        "width": rng.integers(0, 10, len(species)),
    }).to_csv(index=False).encode()


def test_a_good_csv_is_checked_kept_by_hash_and_loads_again_in_another_process(lth_home):
    blob = flowers_csv()
    report = uploads.check_upload({"my flowers.csv": blob}, label_col="species")
    assert report.ok, report.error
    digest = uploads.content_hash({"data.csv": blob})
    assert report.spec == f"upload:my-flowers-{digest[:12]}"
    assert (report.format, report.kind, report.rows, report.input_shape) == ("csv", "tabular", 120, (5,))
    assert report.columns == ("petal length", "colour", "species", "width")
    assert report.feature_names == ("petal length", "width", "colour=blue", "colour=green", "colour=red")
    assert report.class_counts == {"setosa": 40, "versicolor": 40, "virginica": 40}
    assert report.sizes == {"train": 84, "val": 12, "test": 24}
    assert report.details == ("text column 'colour': one-hot encoded into 3 columns (blue, green, red)",)
    folder = lth_home / "datasets" / report.spec.removeprefix("upload:")
    assert (folder / "data.csv").read_bytes() == blob
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["sha256"] == digest and meta["label_col"] == "species" and meta["uploaded_as"] == ["my flowers.csv"]
    assert not [p for p in (lth_home / "datasets").iterdir() if p.name.startswith(".")]   # no staging left
    # the same bytes again, under another file name: kept once, under the first name
    assert uploads.check_upload({"again.csv": blob}, label_col="species").spec == report.spec
    assert len(list((lth_home / "datasets").iterdir())) == 1
    # a fresh process (as the worker is) resolves the name to the same data, label column from the upload
    code = (f"from lth_core.engine.data import load_dataset; s = load_dataset({report.spec!r}); "
            "print(s.sizes()['test'], s.class_names, s.feature_names[-1])")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "24 ('setosa', 'versicolor', 'virginica') colour=red"
    listed = uploads.list_uploads()
    assert [u.name for u in listed] == [report.spec]
    assert listed[0].num_classes == 3 and listed[0].input_shape == (5,)
    proc = subprocess.run([sys.executable, "-m", "lth_core", "datasets"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and report.spec in proc.stdout and "my flowers.csv" in proc.stdout


def test_a_changed_file_behind_an_upload_name_is_refused(lth_home):
    report = uploads.check_upload({"f.csv": flowers_csv()}, label_col="species")
    stored = lth_home / "datasets" / report.spec.removeprefix("upload:") / "data.csv"
    stored.write_bytes(flowers_csv(seed=1))
    with pytest.raises(ConfigError, match="have changed since the upload"):
        data.load_dataset(report.spec)
    with pytest.raises(ConfigError, match="no uploaded dataset 'f-000000000000'"):
        data.load_dataset("upload:f-000000000000")
    with pytest.raises(ConfigError, match="is not an uploaded dataset's name"):
        data.load_dataset("upload:../../etc")


def test_a_small_test_split_is_warned_about_with_what_one_example_is_worth():
    rng = np.random.default_rng(0)
    blob = pd.DataFrame({"a": rng.normal(size=400), "label": np.arange(400) % 2}).to_csv(index=False).encode()
    report = uploads.check_upload({"t.csv": blob}, save=False)
    assert report.ok and report.sizes["test"] == 80 and report.spec is None
    assert report.warnings == ("The test split is small: 80 examples, so one example moves the test accuracy by "
                               "1.25 points; differences of a few points between variants may be chance.",)


def test_imbalanced_classes_are_warned_about_with_their_counts_and_the_majority_guess():
    # 164 / 110 / 26 rows: the smallest class is a sixth of the largest (the old check waited for a tenth)
    rng = np.random.default_rng(0)
    label = np.repeat(["none", "mild", "severe"], [164, 110, 26])
    blob = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300), "label": label}).to_csv(index=False).encode()
    report = uploads.check_upload({"heart.csv": blob}, save=False)
    assert report.ok and report.class_counts == {"mild": 110, "none": 164, "severe": 26}
    assert ("The classes are imbalanced: 164 / 110 / 26 examples (largest 'none', smallest 'severe', under a third of "
            "the largest). Always guessing 'none' already gets 54.7 % accuracy, so judge accuracies against that, not "
            "against 33.3 %; a small class can be missed while accuracy looks good.") in report.warnings
    even = pd.DataFrame({"a": rng.normal(size=300), "label": np.repeat(["x", "y"], [180, 120])}).to_csv(index=False)
    assert not any("imbalanced" in w for w in uploads.check_upload({"e.csv": even.encode()}, save=False).warnings)


@pytest.mark.parametrize("files, label, says", [
    ({"t.csv": b"a,b,label\n" + b"".join(b"%d,1e308,%d\n" % (i, i % 2) for i in range(40))}, None,
     "t.csv has NaN, infinite or too large numbers in column 'b' (at most 3.4e+38 in absolute value)"),
    ({"t.csv": b"a,label\n1,x\n2,y\n"}, "nope", "column 'nope' not in t.csv; columns are a, label"),
    ({"t.csv": b""}, None, "t.csv is empty; expected a CSV file with a header row"),
    ({"notes.txt": b"hello"}, None, "cannot tell the format of notes.txt"),
    ({"data.csv": bytes(range(128, 256)) * 4}, None, "data.csv is not a text CSV (its bytes are not UTF-8 text)"),
    ({"t.csv": b"a,label\n" + b"".join(b"%d,only\n" % i for i in range(30))}, None, "has a single class (only)"),
])
def test_a_bad_file_gets_one_line_naming_it_and_nothing_is_kept(lth_home, files, label, says):
    report = uploads.check_upload(files, label_col=label)
    assert not report.ok and report.spec is None
    assert says in report.error and "\n" not in report.error and "staging" not in report.error
    assert not (lth_home / "datasets").exists() or not list((lth_home / "datasets").iterdir())


def test_the_size_cap_is_settable(monkeypatch):
    monkeypatch.setenv("LTH_MAX_UPLOAD_MB", "0.001")
    report = uploads.check_upload({"f.csv": flowers_csv()})
    assert report.error == ("f.csv is 0.0 MB; uploads are limited to 0.001 MB (set LTH_MAX_UPLOAD_MB to allow more)")
    monkeypatch.delenv("LTH_MAX_UPLOAD_MB")
    assert uploads.max_upload_bytes() == 200 * 2**20


def npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_npz_and_idx_uploads(lth_home):
    rng = np.random.default_rng(0)
    blob = npz_bytes(x=rng.integers(0, 256, (90, 6, 6), dtype=np.uint8), y=np.arange(90) % 3,
                     x_test=rng.integers(0, 256, (30, 6, 6), dtype=np.uint8), y_test=np.arange(30) % 3)
    report = uploads.check_upload({"tiny.npz": blob})
    assert report.ok and report.kind == "image" and report.input_shape == (1, 6, 6) and report.sizes["test"] == 30
    assert data.load_dataset(report.spec).sizes() == {"train": 81, "val": 9, "test": 30}

    def idx(a):
        return struct.pack(">BBBB", 0, 0, 8, a.ndim) + struct.pack(f">{a.ndim}i", *a.shape) + a.tobytes()
    x, xt = rng.integers(0, 256, (60, 5, 4), dtype=np.uint8), rng.integers(0, 256, (20, 5, 4), dtype=np.uint8)
    y, yt = (np.arange(60) % 2).astype(np.uint8), (np.arange(20) % 2).astype(np.uint8)
    files = {"train-images-idx3-ubyte.gz": gzip.compress(idx(x)), "train-labels-idx1-ubyte": idx(y),
             "t10k-images.idx3-ubyte": idx(xt), "t10k-labels-idx1-ubyte.gz": gzip.compress(idx(yt))}
    report = uploads.check_upload(files)
    assert report.ok, report.error
    assert report.format == "idx" and report.input_shape == (1, 5, 4) and report.class_counts == {"0": 40, "1": 40}
    np.testing.assert_array_equal(data.load_dataset(report.spec).y_test, yt)
    with pytest.raises(ConfigError, match="label_col applies only to CSV uploads"):
        data.load_dataset(report.spec, label_col="x")
    bad = dict(files, **{"t10k-images.idx3-ubyte": bytes([0, 0, 8, 255]) + bytes(1020)})
    report = uploads.check_upload(bad)
    assert report.error == ("t10k-images-idx3-ubyte: IDX header declares 255 dimensions; expected 1 to 4 "
                            "(images have 3, labels 1)")


def test_a_pickle_inside_an_upload_is_never_run(tmp_path):
    class WritesAFile:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))
    blob = npz_bytes(x=np.array([WritesAFile()] * 4, dtype=object), y=np.arange(4))
    report = uploads.check_upload({"evil.npz": blob})
    assert report.error == "evil.npz: array 'x' holds Python objects (a pickle), which are never unpickled; " \
                           "save plain numeric arrays with numpy.savez"
    assert not (tmp_path / "pwned").exists()


def test_a_run_on_an_upload_trains_and_its_first_layer_has_the_column_names():
    from lth_core import ExperimentConfig, collect, run_experiment
    report = uploads.check_upload({"flowers.csv": flowers_csv()}, label_col="species")
    config = ExperimentConfig(dataset=report.spec, label_col="species", arch="mlp", hidden=(16,), rounds=1,
                              iterations=20, batch_size=16)
    result = collect(run_experiment(config))
    assert len(result.rounds_df()) == 2
    assert data.load_dataset(report.spec, label_col="species").feature_names == report.feature_names
