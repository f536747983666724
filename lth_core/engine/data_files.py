"""Readers for datasets in user files: ``csv:PATH``, ``idx:DIR``, ``cifar10:DIR``, ``npz:PATH``.

Each reader returns a `RawSet` (arrays before splitting and normalisation) or raises
`ConfigError("dataset" | "label_col", ...)` saying what was expected. `lth_core.engine.data` does the
splitting and standardisation.
"""
from __future__ import annotations

import gzip
import io
import math
import os
import pickle
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from lth_core.engine.errors import ConfigError

F = "dataset"
MAX_CATEGORIES = 100  # a text column with more distinct values than this is refused, not one-hot encoded
MAX_DATA_MB = 1024  # default cap on the bytes a file may declare (an IDX header, an .npz member), LTH_MAX_DATA_MB
MAX_IDX_DIMS = 4    # MNIST-style IDX: images are 3-D, labels 1-D; a header declaring more is refused
FLOAT32_MAX = float(np.finfo(np.float32).max)
CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@dataclass(frozen=True, eq=False)
class RawSet:
    """A dataset before splitting: x is (N, *input_shape), y int64 codes into class_names."""

    kind: str
    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    scale: float = 1.0                 # x is divided by this first (known raw range: 255, 16)
    x_test: np.ndarray | None = None   # the set's own test split, if it has one
    y_test: np.ndarray | None = None
    n_val: int | None = None           # validation size taken from train when x_test is given
    note: str = ""                     # appended to split errors
    feature_names: tuple[str, ...] | None = None  # tabular: one name per column of x (CSV header, col=value)
    details: tuple[str, ...] = ()      # how the file was read: text columns encoded, rows dropped


def max_data_bytes() -> int:
    """The cap on what one file may declare it holds, in bytes: LTH_MAX_DATA_MB (default MAX_DATA_MB)."""
    try:
        mb = float(os.environ.get("LTH_MAX_DATA_MB", MAX_DATA_MB))
    except ValueError:
        mb = MAX_DATA_MB
    return int(max(mb, 0) * 2**20)


def _mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MB" if n >= 2**20 else f"{n:,} bytes"


def check_float32(x: np.ndarray, names, what: str) -> None:
    """Refuse NaN, infinite, or numbers too large for float32 (they would overflow in training),
    naming the first column that holds one; checked before any cast, so numpy prints no warning."""
    if x.dtype.kind != "f" or x.size == 0:
        return
    with np.errstate(all="ignore"):
        bad = ~np.isfinite(x) | (np.abs(x) > FLOAT32_MAX)
    if bad.any():
        col = int(np.argwhere(bad.reshape(len(x), -1))[0][1])
        where = f" in column {names[col]!r}" if names is not None and x.ndim == 2 else ""
        raise ConfigError(F, f"{what} has NaN, infinite or too large numbers{where} "
                             f"(at most {FLOAT32_MAX:.3g} in absolute value)")


def encode_labels(y, y_test=None, *, field: str = F, what: str = "labels"):
    """Map labels (ints or strings) to 0..K-1 in sorted order -> (codes, test_codes, class_names)."""
    y = np.asarray(y)
    yt = None if y_test is None else np.asarray(y_test)
    arrays = [a for a in (y, yt) if a is not None]
    for a in arrays:
        if a.ndim != 1:
            raise ConfigError(field, f"{what} must be one-dimensional; got shape {a.shape}")
    if any(a.dtype.kind == "f" for a in arrays):
        if any(a.dtype.kind == "f" and (not np.all(np.isfinite(a)) or np.any(a != np.round(a))) for a in arrays):
            raise ConfigError(field, f"{what} must be class names or integer class ids; found non-integer numbers")
        if any(a.dtype.kind == "f" and a.size and np.abs(a).max() > 2**53 for a in arrays):  # before a cast that overflows
            raise ConfigError(field, f"{what} must be class names or integer class ids of at most 2**53 in absolute "
                                     f"value; found {max(np.abs(a).max() for a in arrays if a.dtype.kind == 'f'):.3g}")
        arrays = [a.astype(np.int64) if a.dtype.kind == "f" else a for a in arrays]
    if any(a.dtype.kind not in "biu" for a in arrays):
        arrays = [a.astype(str) for a in arrays]
    y, yt = arrays[0], (arrays[1] if yt is not None else None)
    classes = np.unique(y)
    codes = np.searchsorted(classes, y).astype(np.int64)
    test_codes = None
    if yt is not None:
        unknown = np.setdiff1d(np.unique(yt), classes)
        if unknown.size:
            shown = ", ".join(str(v) for v in unknown[:5])
            raise ConfigError(field, f"test {what} include classes absent from training: {shown}")
        test_codes = np.searchsorted(classes, yt).astype(np.int64)
    return codes, test_codes, tuple(str(c) for c in classes)


def _need(path: Path, *, directory: bool, what: str) -> None:
    if not path.exists():
        raise ConfigError(F, f"no such {'directory' if directory else 'file'}: {path} (expected {what})")
    if directory and not path.is_dir():
        raise ConfigError(F, f"{path} is not a directory (expected {what})")
    if not directory and path.is_dir():
        raise ConfigError(F, f"{path} is a directory (expected {what})")


# --------------------------------------------------------------------------------------- CSV
def read_csv(path: Path, label_col: str | None = None) -> RawSet:
    """Tabular CSV with a header row. The label is `label_col`, else a column named `label`, else
    the last column; labels may be strings or ints. Rows with any missing value (empty, NA, NaN,
    "?", ...) are dropped.
    Numeric feature columns are used as they are; text (non-numeric) columns are one-hot encoded
    (at most MAX_CATEGORIES distinct values each)."""
    import pandas as pd

    _need(path, directory=False, what="a CSV file with a header row")
    try:
        df = pd.read_csv(path, na_values=["?"])
    except pd.errors.EmptyDataError:
        raise ConfigError(F, f"{path} is empty; expected a CSV file with a header row") from None
    except UnicodeDecodeError:
        raise ConfigError(F, f"{path} is not a text CSV (its bytes are not UTF-8 text)") from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(F, f"cannot read {path} as CSV: {detail}") from None
    df.columns = [str(c) for c in df.columns]
    columns = ", ".join(df.columns)
    if label_col is None:
        label = "label" if "label" in df.columns else df.columns[-1]
    elif label_col in df.columns:
        label = label_col
    else:
        raise ConfigError("label_col", f"column {label_col!r} not in {path}; columns are {columns}")
    if df.shape[1] < 2:
        raise ConfigError(F, f"{path} needs at least 2 columns (features and a label); columns are {columns}")
    total = len(df)
    df = df.dropna()
    dropped = total - len(df)
    if len(df) == 0:
        why = "has no data rows" if total == 0 else f"has a missing value in every one of its {total} rows"
        raise ConfigError(F, f"{path} {why}")
    features = df.drop(columns=[label])
    numeric = [c for c in features.columns if pd.api.types.is_numeric_dtype(features[c])]
    text = [c for c in features.columns if c not in numeric]
    for c in text:
        count = features[c].nunique()
        if count > MAX_CATEGORIES:
            raise ConfigError(F, f"text column {c!r} in {path} has {count} distinct values; at most "
                                 f"{MAX_CATEGORIES} can be one-hot encoded (remove the column or make it numeric)")
    parts, feature_names = [features[numeric].to_numpy(dtype=np.float64)], list(numeric)
    details = []
    if text:
        dummies = pd.get_dummies(features[text].astype(str), prefix=text, prefix_sep="=", dtype=np.float64)
        parts.append(dummies.to_numpy())
        feature_names += [str(c) for c in dummies.columns]
        for c in text:
            values = sorted(features[c].astype(str).unique())
            shown = ", ".join(values[:6]) + (", …" if len(values) > 6 else "")
            details.append(f"text column {c!r}: one-hot encoded into {len(values)} columns ({shown})")
    if dropped:
        details.append(f"{dropped} of {total} rows have a missing value and were dropped")
    x = np.concatenate(parts, axis=1)
    check_float32(x, feature_names, str(path))
    x = x.astype(np.float32)
    y, _, names = encode_labels(df[label].to_numpy(), field="label_col", what=f"values of label column {label!r}")
    note = f"(label column {label!r}" + (f"; {dropped} rows with missing values were dropped)" if dropped else ")")
    return RawSet("tabular", x, y, names, note=note, feature_names=tuple(feature_names), details=tuple(details))


# --------------------------------------------------------------------------------------- IDX
_IDX_TYPES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64"}


def read_idx_stream(fh: BinaryIO, name: str, max_bytes: int | None = None) -> np.ndarray:
    """Parse an IDX stream (magic 00 00 TYPE NDIM, then NDIM big-endian int32 sizes, then the data).
    The declared size is checked against `max_bytes` (default max_data_bytes()) before the data
    are read, and no more than that is ever read: a small gzip that unpacks to gigabytes is
    refused after reading its 4-byte header and sizes, not after unpacking it."""
    limit = max_data_bytes() if max_bytes is None else max_bytes
    head = fh.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise ConfigError(F, f"{name} is not an IDX file: its magic number must start with two zero bytes, "
                             f"got {head.hex() or 'an empty file'}")
    code, ndim = head[2], head[3]
    if code != 0x08:
        raise ConfigError(F, f"{name}: IDX type code 0x{code:02X} ({_IDX_TYPES.get(code, 'unknown')}) is not "
                             "supported; expected 0x08 (unsigned byte)")
    if not 1 <= ndim <= MAX_IDX_DIMS:
        raise ConfigError(F, f"{name}: IDX header declares {ndim} dimensions; expected 1 to {MAX_IDX_DIMS} "
                             "(images have 3, labels 1)")
    sizes = fh.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise ConfigError(F, f"{name}: IDX header is truncated (declares {ndim} dimensions, holds "
                             f"{len(sizes) // 4} sizes)")
    dims = struct.unpack(f">{ndim}i", sizes)
    if any(d < 0 for d in dims):
        raise ConfigError(F, f"{name}: IDX header has negative sizes {dims}")
    expected = math.prod(dims)  # a Python int: cannot overflow
    if expected > limit:
        raise ConfigError(F, f"{name}: IDX header declares shape {dims} = {_mb(expected)} of data, over the "
                             f"{_mb(limit)} limit (set LTH_MAX_DATA_MB to allow more)")
    body = fh.read(expected)
    more = fh.read(1)
    if len(body) != expected or more:
        held = f"{len(body)} bytes" if not more else f"more than {expected} bytes"
        raise ConfigError(F, f"{name}: header says shape {dims} ({expected} bytes) but the file holds "
                             f"{held} of data")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def parse_idx(data: bytes, name: str) -> np.ndarray:
    """An IDX file already in memory; see read_idx_stream."""
    return read_idx_stream(io.BytesIO(data), name)


def read_idx_file(path: Path, max_bytes: int | None = None) -> np.ndarray:
    """One IDX file, gzipped (.gz) or not, streamed: see read_idx_stream."""
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as fh:
            return read_idx_stream(fh, path.name, max_bytes)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise ConfigError(F, f"cannot read {path}: {str(exc).strip() or type(exc).__name__}") from None


def _idx_file(root: Path, split: str, what: str, rank: int) -> np.ndarray:
    stems = [f"{split}-{what}-idx{rank}-ubyte", f"{split}-{what}.idx{rank}-ubyte"]
    for folder in (root, root / "raw"):
        for stem in stems:
            for path in (folder / stem, folder / (stem + ".gz")):
                if path.is_file():
                    return read_idx_file(path)
    raise ConfigError(F, f"{root} has no {stems[0]} (or {stems[1]}, optionally .gz); an idx: directory needs "
                         "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte")


def read_idx(root: Path) -> RawSet:
    """MNIST-style IDX files in a directory: train-* is train (+ validation), t10k-* is test."""
    _need(root, directory=True, what="a directory with MNIST-style IDX files")
    x, y = _idx_file(root, "train", "images", 3), _idx_file(root, "train", "labels", 1)
    xt, yt = _idx_file(root, "t10k", "images", 3), _idx_file(root, "t10k", "labels", 1)
    for images, labels, split in ((x, y, "train"), (xt, yt, "t10k")):
        if images.ndim != 3 or labels.ndim != 1:
            raise ConfigError(F, f"{split} images must be 3-D (N,H,W) and labels 1-D; got {images.shape}, {labels.shape}")
        if len(images) != len(labels):
            raise ConfigError(F, f"{split}: {len(images)} images but {len(labels)} labels")
    if x.shape[1:] != xt.shape[1:]:
        raise ConfigError(F, f"train images are {x.shape[1:]} but t10k images are {xt.shape[1:]}")
    codes, test_codes, names = encode_labels(y, yt)
    return RawSet("image", x[:, None], codes, names, scale=255.0, x_test=xt[:, None], y_test=test_codes)


# ------------------------------------------------------------------------------------- CIFAR
class ForbiddenPickle(pickle.UnpicklingError):
    """A pickle asked for a global outside the allow-list."""


def _allowed_globals() -> dict[tuple[str, str], object]:
    import codecs
    core = getattr(np, "_core", None) or np.core  # numpy 2 renamed numpy.core to numpy._core
    reconstruct, frombuffer = core.multiarray._reconstruct, core.numeric._frombuffer
    return {("numpy.core.multiarray", "_reconstruct"): reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): reconstruct,
            ("numpy.core.numeric", "_frombuffer"): frombuffer,   # protocol-5 pickles of arrays
            ("numpy._core.numeric", "_frombuffer"): frombuffer,
            ("numpy.core.multiarray", "scalar"): core.multiarray.scalar,   # numpy numbers, e.g. labels
            ("numpy._core.multiarray", "scalar"): core.multiarray.scalar,  # from list(np_array)
            ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
            ("_codecs", "encode"): codecs.encode}                 # protocol-2 pickles of bytes


class ArrayUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild only dicts, lists, strings, numbers and numpy arrays: any other
    global (os.system, builtins.eval, ...) is refused before it is even imported."""

    def find_class(self, module: str, name: str):
        found = _allowed_globals().get((module, name))
        if found is None:
            raise ForbiddenPickle(f"{module}.{name}")
        return found


def load_pickle(path: Path):
    try:
        with open(path, "rb") as fh:
            return ArrayUnpickler(fh, encoding="bytes").load()
    except ForbiddenPickle as exc:
        raise ConfigError(F, f"{path} is not a plain CIFAR-10 batch: it asks for {exc}, which is refused "
                             "(only numpy arrays, lists and dicts are allowed)") from None
    except Exception as exc:  # noqa: BLE001 - any failure parsing an untrusted file is a bad file
        raise ConfigError(F, f"cannot read {path} as a pickled CIFAR-10 batch: {type(exc).__name__}: {exc}") from None


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    obj = load_pickle(path)
    if not isinstance(obj, dict):
        raise ConfigError(F, f"{path} should hold a dict with 'data' and 'labels'; got {type(obj).__name__}")
    d = {(k.decode("latin-1") if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}
    if "data" not in d or "labels" not in d:
        raise ConfigError(F, f"{path} should hold 'data' and 'labels'; its keys are {', '.join(d)}")
    data, labels = np.asarray(d["data"]), np.asarray(d["labels"])
    if data.ndim != 2 or data.shape[1] != 3072 or data.dtype.kind not in "iu":
        raise ConfigError(F, f"{path}: 'data' must be N x 3072 bytes (3 planes of 32x32); got {data.dtype} {data.shape}")
    if labels.ndim != 1 or len(labels) != len(data) or labels.dtype.kind not in "iu":
        raise ConfigError(F, f"{path}: 'labels' must be {len(data)} integers; got {labels.dtype} {labels.shape}")
    if data.size and (data.min() < 0 or data.max() > 255):
        raise ConfigError(F, f"{path}: pixel values must lie in 0..255")
    return data.astype(np.uint8).reshape(-1, 3, 32, 32), labels.astype(np.int64)


def read_cifar10(root: Path) -> RawSet:
    """CIFAR-10 python batches (data_batch_1..5, test_batch, optional batches.meta) in root or
    root/cifar-10-batches-py; every batch is read with `ArrayUnpickler`."""
    _need(root, directory=True, what="the CIFAR-10 python batches directory")
    folder = next((p for p in (root, root / "cifar-10-batches-py") if (p / "test_batch").is_file()), None)
    if folder is None:
        raise ConfigError(F, f"no test_batch in {root} (nor in {root / 'cifar-10-batches-py'}); expected the "
                             "CIFAR-10 python version: data_batch_1..5 and test_batch")
    train = [_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6) if (folder / f"data_batch_{i}").is_file()]
    if not train:
        raise ConfigError(F, f"{folder} has test_batch but no data_batch_1..5")
    names = CIFAR10_NAMES
    if (folder / "batches.meta").is_file():
        meta = load_pickle(folder / "batches.meta")
        raw_names = meta.get(b"label_names", meta.get("label_names")) if isinstance(meta, dict) else None
        if not isinstance(raw_names, list) or not raw_names:
            raise ConfigError(F, f"{folder / 'batches.meta'} should hold a dict with a 'label_names' list")
        names = tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in raw_names)
    x, y = np.concatenate([b[0] for b in train]), np.concatenate([b[1] for b in train])
    xt, yt = _cifar_batch(folder / "test_batch")
    for labels, split in ((y, "data_batch"), (yt, "test_batch")):
        if labels.size and (labels.min() < 0 or labels.max() >= len(names)):
            raise ConfigError(F, f"{split} labels must lie in 0..{len(names) - 1} (one per class name)")
    return RawSet("image", x, y, names, scale=255.0, x_test=xt, y_test=yt)


# --------------------------------------------------------------------------------------- NPZ
def _npz_images(x: np.ndarray, key: str) -> tuple[str, np.ndarray]:
    if x.ndim == 2:
        return "tabular", x
    if x.ndim == 3:
        return "image", x[:, None]
    if x.ndim == 4:
        return "image", (np.moveaxis(x, -1, 1) if x.shape[-1] in (1, 3) else x)
    raise ConfigError(F, f"npz array {key!r} must be 2-D (N,F), 3-D (N,H,W) or 4-D (NHWC/NCHW); got shape {x.shape}")


def read_npz(path: Path) -> RawSet:
    """An .npz with arrays x and y (optionally x_test, y_test). x: (N,F) tabular, (N,H,W) images,
    (N,H,W,C) with C in {1,3} or else (N,C,H,W) images. uint8 images are divided by 255."""
    _need(path, directory=False, what="an .npz archive with arrays x and y")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ConfigError(F, f"{path} holds a single array; expected an .npz archive with arrays x and y")
        with loaded as archive:
            # the sizes the zip declares, checked before anything is unpacked (an .npz can be a zip bomb)
            declared = sum(info.file_size for info in archive.zip.infolist())
            if declared > max_data_bytes():
                raise ConfigError(F, f"{path} declares {_mb(declared)} of arrays, over the {_mb(max_data_bytes())} "
                                     "limit (set LTH_MAX_DATA_MB to allow more)")
            arrays = {}
            for k in archive.files:
                try:
                    arrays[k] = archive[k]
                except ValueError as exc:
                    if "allow_pickle" not in str(exc):
                        raise
                    raise ConfigError(F, f"{path}: array {k!r} holds Python objects (a pickle), which are never "
                                         "unpickled; save plain numeric arrays with numpy.savez") from None
    except ConfigError:
        raise
    except Exception:  # noqa: BLE001 - a corrupt or non-npz file: numpy's own advice (allow_pickle) would mislead
        raise ConfigError(F, f"cannot read {path} as an .npz archive (numpy.savez with arrays x and y); "
                             f"for a table use csv:PATH") from None
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing or (("x_test" in arrays) != ("y_test" in arrays)):
        raise ConfigError(F, f"{path} needs arrays x and y (and optionally both x_test and y_test); "
                             f"it has {', '.join(arrays) or 'none'}")
    kind, x = _npz_images(arrays["x"], "x")
    xt = None
    if "x_test" in arrays:
        _, xt = _npz_images(arrays["x_test"], "x_test")
        if xt.shape[1:] != x.shape[1:]:
            raise ConfigError(F, f"x_test samples have shape {xt.shape[1:]} but x samples have {x.shape[1:]}")
    for key, xs, ys in (("x", x, arrays["y"]), ("x_test", xt, arrays.get("y_test"))):
        if xs is None:
            continue
        if xs.dtype.kind not in "biuf":
            raise ConfigError(F, f"npz array {key!r} must be numeric; got dtype {xs.dtype}")
        check_float32(xs, None, f"npz array {key!r}")
        if np.ndim(ys) != 1 or len(ys) != len(xs):
            raise ConfigError(F, f"{'y' if key == 'x' else 'y_test'} must be 1-D with one label per row of {key} "
                                 f"({len(xs)}); got shape {np.shape(ys)}")
    codes, test_codes, names = encode_labels(arrays["y"], arrays.get("y_test"))
    scale = 255.0 if kind == "image" and x.dtype == np.uint8 else 1.0
    return RawSet(kind, x, codes, names, scale=scale, x_test=xt, y_test=test_codes)
