"""Datasets uploaded by the user: checked at once, kept by content hash, listed beside the built-ins.

    report = check_upload({"iris.csv": data}, label_col="species")   # reads, checks, saves if good
    report.spec        # "upload:iris-3f2a9c0d1b7e": what a run's config names; resolves again later
    load_dataset(report.spec, label_col="species")                  # in any process with the same LTH_HOME
    list_uploads()     # one DatasetInfo per kept upload, newest first

A kept upload is a folder LTH_HOME/datasets/<name>-<hash12>/ holding the file(s) as uploaded and
meta.json (format, original file names, SHA-256, the label column last chosen, a summary). The
hash is over the file contents, so the same data uploaded twice is kept once, and a run's
`upload:` name always means the same bytes: loading re-hashes them and refuses a changed file.
Formats: CSV (header row), .npz (x, y, optionally x_test, y_test; loaded with allow_pickle=False)
and MNIST-style IDX files (the four train-/t10k- files, gzipped or not). Nothing is unpickled.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import data_files
from lth_core.engine.data import DatasetInfo
from lth_core.engine.data_files import RawSet
from lth_core.engine.errors import ConfigError
from lth_core.engine.paths import lth_home

F = "dataset"
PREFIX = "upload:"
MAX_UPLOAD_MB = 200          # default cap on one upload (all its files), LTH_MAX_UPLOAD_MB
SMALL_TEST = 500             # below this many test rows one example moves accuracy by more than 0.2 points
IMBALANCED = 3               # warn when the largest class has more than this many times the smallest's examples
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,60}-[0-9a-f]{12}$")


def datasets_dir() -> Path:
    return lth_home() / "datasets"


def max_upload_bytes() -> int:
    """LTH_MAX_UPLOAD_MB (default MAX_UPLOAD_MB) in bytes."""
    return int(max_upload_mb() * 2**20)


def max_upload_mb() -> float:
    try:
        mb = float(os.environ.get("LTH_MAX_UPLOAD_MB", MAX_UPLOAD_MB))
    except ValueError:
        mb = MAX_UPLOAD_MB
    return mb if mb > 0 else MAX_UPLOAD_MB


@dataclass(frozen=True)
class UploadReport:
    """What check_upload found. `error` is one line when the file cannot be used; `spec` is set
    once the file is kept (only for a file that passed)."""

    files: tuple[str, ...]
    format: str = ""
    error: str | None = None
    spec: str | None = None
    name: str = ""
    kind: str = ""
    rows: int = 0                       # examples in the file(s), after dropped rows
    input_shape: tuple[int, ...] = ()
    columns: tuple[str, ...] = ()       # CSV: every column of the header
    label_col: str | None = None
    feature_names: tuple[str, ...] | None = None
    class_counts: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)   # train / val / test with seed 0
    details: tuple[str, ...] = ()       # how it was read (text columns encoded, rows dropped)
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None


# ----------------------------------------------------------------------------------- naming
def file_format(names: list[str]) -> str:
    """'csv', 'npz' or 'idx' from the file names, else a ConfigError saying what is accepted."""
    lower = [n.lower() for n in names]
    if len(names) == 1 and lower[0].endswith(".csv"):
        return "csv"
    if len(names) == 1 and lower[0].endswith(".npz"):
        return "npz"
    if names and all("idx" in n and "ubyte" in n for n in lower):
        return "idx"
    raise ConfigError(F, f"cannot tell the format of {', '.join(names) or 'no file'}: upload one .csv, one .npz, "
                         f"or the four MNIST-style IDX files ({', '.join(IDX_FILES)}, optionally .gz)")


def _idx_target(name: str) -> str:
    """The canonical name an uploaded IDX file is kept under (read_idx looks for these)."""
    low = name.lower()
    for stem in IDX_FILES:
        split, what, rank = stem.split("-")[0], stem.split("-")[1], stem[-7:-6]
        if split in low and what in low and f"idx{rank}" in low:
            return stem + (".gz" if low.endswith(".gz") else "")
    raise ConfigError(F, f"{name} is not one of the IDX files {', '.join(IDX_FILES)} (optionally .gz)")


def content_hash(files: dict[str, bytes]) -> str:
    """SHA-256 of the contents (one file: of its bytes; several: of their canonical names and bytes)."""
    h = hashlib.sha256()
    if len(files) == 1:
        h.update(next(iter(files.values())))
    else:
        for name in sorted(files):
            h.update(name.encode() + b"\0" + len(files[name]).to_bytes(8, "big"))
            h.update(files[name])
    return h.hexdigest()


def _stem(names: list[str], fmt: str) -> str:
    if fmt == "idx":
        return "idx"
    stem = re.sub(r"\.(csv|npz)$", "", Path(names[0]).name, flags=re.I)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or "data"
    return stem[:40]


def _size(n: int) -> str:
    return f"{n / 2**20:,.1f} MB" if n >= 2**20 else f"{n / 1024:,.1f} kB"


def csv_header(data: bytes) -> list[str]:
    """The column names of a CSV's header row (a ConfigError if it has none)."""
    import pandas as pd
    try:
        return [str(c) for c in pd.read_csv(io.BytesIO(data), nrows=0).columns]
    except UnicodeDecodeError:
        raise ConfigError(F, "this is not a text CSV (its bytes are not UTF-8 text); export the table as CSV "
                             "(UTF-8) and upload that") from None
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file, said in one line
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(F, f"cannot read the header row: {detail}") from None


# ----------------------------------------------------------------------------------- reading
def _read(folder: Path, fmt: str, label_col: str | None) -> RawSet:
    if fmt == "csv":
        return data_files.read_csv(folder / "data.csv", label_col)
    if label_col is not None:
        raise ConfigError("label_col", f"label_col applies only to CSV uploads, not to {fmt}; leave it empty")
    if fmt == "npz":
        return data_files.read_npz(folder / "data.npz")
    return data_files.read_idx(folder)


def _stored_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name != "meta.json")


def _write_meta(folder: Path, meta: dict) -> None:
    tmp = folder / ".meta.json.tmp"
    tmp.write_text(json.dumps(meta, indent=1))
    os.replace(tmp, folder / "meta.json")


def check_upload(files: dict[str, bytes], label_col: str | None = None, *, save: bool = True) -> UploadReport:
    """Read and check uploaded file(s) ({file name: bytes}); when they pass and `save`, keep them
    under datasets_dir() by content hash. Never raises for a bad file: the report's `error` says
    what is wrong in one line."""
    names = list(files)
    try:
        fmt = file_format(names)
        total = sum(len(b) for b in files.values())
        if total > max_upload_bytes():
            raise ConfigError(F, f"{', '.join(names)} is {total / 2**20:,.1f} MB; uploads are limited to "
                                 f"{max_upload_mb():g} MB (set LTH_MAX_UPLOAD_MB to allow more)")
        if isinstance(label_col, str):
            label_col = label_col.strip() or None
        canonical = ({"data.csv" if fmt == "csv" else "data.npz": next(iter(files.values()))} if fmt != "idx"
                     else {_idx_target(n): b for n, b in files.items()})
        if fmt == "idx" and len(canonical) != len(files):
            raise ConfigError(F, "two of the uploaded files are the same IDX file: " + ", ".join(names))
        digest = content_hash(canonical)
        root = datasets_dir()
        root.mkdir(parents=True, exist_ok=True)
        # the same bytes uploaded before (under any file name) are kept once, under their first name
        kept = sorted(p.name for p in root.glob(f"*-{digest[:12]}") if _NAME.match(p.name) and (p / "meta.json").is_file())
        key = kept[0] if kept else f"{_stem(names, fmt)}-{digest[:12]}"
        staging = Path(tempfile.mkdtemp(dir=root, prefix=".staging-"))
        try:
            for name, blob in canonical.items():
                (staging / name).write_bytes(blob)
            try:
                raw = _read(staging, fmt, label_col)
                report = _summarise(raw, fmt, names, key, label_col, canonical)
            except ConfigError as exc:  # name the file as uploaded, not the staging copy
                message = exc.message
                shown = names if fmt != "idx" else [_idx_target(n) for n in names]
                for original, stored in zip(names, canonical if fmt != "idx" else shown):
                    message = message.replace(str(staging / stored), original)
                raise ConfigError(exc.field, message.replace(str(staging), "the upload")) from None
            if save:
                final = root / key
                if not (final / "meta.json").is_file():
                    shutil.rmtree(final, ignore_errors=True)   # a half-written earlier attempt
                    _write_meta(staging, _meta(report, fmt, names, digest, canonical))
                    os.replace(staging, final)
                else:  # the same bytes are kept already: only the label column chosen last changes
                    meta = json.loads((final / "meta.json").read_text())
                    meta["label_col"] = report.label_col
                    _write_meta(final, meta)
                report = dataclasses.replace(report, spec=PREFIX + key)
            return report
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except ConfigError as exc:
        columns = ()
        if names and names[0].lower().endswith(".csv") and len(names) == 1:
            try:
                columns = tuple(csv_header(next(iter(files.values()))))
            except ConfigError:
                pass
        return UploadReport(tuple(names), error=exc.message, columns=columns, label_col=label_col)


def _summarise(raw: RawSet, fmt: str, names: list[str], key: str, label_col: str | None,
               canonical: dict[str, bytes]) -> UploadReport:
    from lth_core.engine.data import _finish  # the real split, so the test size shown is the one runs will use
    splits = _finish(PREFIX + key, raw, 0)
    y = raw.y if raw.y_test is None else np.concatenate([raw.y, raw.y_test])
    counts = np.bincount(y, minlength=len(raw.class_names))
    columns, label = (), None
    if fmt == "csv":
        columns = tuple(csv_header(canonical["data.csv"]))
        label = label_col or ("label" if "label" in columns else columns[-1])
    n_test = splits.sizes()["test"]
    warnings = []
    if n_test < SMALL_TEST:
        warnings.append(f"The test split is small: {n_test} examples, so one example moves the test accuracy by "
                        f"{100 / n_test:.3g} points; differences of a few points between variants may be chance.")
    if counts.min() * IMBALANCED < counts.max():
        warnings.append(_imbalance_warning(raw.class_names, counts))
    return UploadReport(tuple(names), fmt, name=key, kind=raw.kind, rows=int(len(y)),
                        input_shape=splits.input_shape, columns=columns, label_col=label,
                        feature_names=splits.feature_names,
                        class_counts={n: int(c) for n, c in zip(raw.class_names, counts)},
                        sizes=splits.sizes(), details=raw.details, warnings=tuple(warnings))


def _imbalance_warning(names: list[str], counts: np.ndarray) -> str:
    """What unequal classes mean for the accuracies a run shows: their counts, and what always guessing
    the largest class would score (the floor an accuracy must beat, not 1 / classes)."""
    order = np.argsort(-counts, kind="stable")
    shown = " / ".join(str(int(counts[i])) for i in order[:10]) + (" / …" if len(order) > 10 else "")
    big, small = names[int(order[0])], names[int(order[-1])]
    majority = 100 * counts.max() / counts.sum()
    return (f"The classes are imbalanced: {shown} examples (largest {big!r}, smallest {small!r}, under a third of "
            f"the largest). Always guessing {big!r} already gets {majority:.1f} % accuracy, so judge accuracies "
            f"against that, not against {100 / len(counts):.1f} %; a small class can be missed while accuracy looks good.")


def _meta(report: UploadReport, fmt: str, names: list[str], digest: str, canonical: dict[str, bytes]) -> dict:
    return {"name": report.name, "format": fmt, "uploaded_as": names, "sha256": digest,
            "files": sorted(canonical), "bytes": sum(len(b) for b in canonical.values()),
            "label_col": report.label_col, "kind": report.kind, "input_shape": list(report.input_shape),
            "classes": report.class_counts, "sizes": report.sizes, "uploaded_at": time.strftime("%Y-%m-%dT%H:%M:%S")}


# ------------------------------------------------------------------------------- resolving
def _folder(name: str) -> Path:
    if not _NAME.match(name):
        raise ConfigError(F, f"{PREFIX}{name} is not an uploaded dataset's name (NAME-HASH12, as listed by "
                             "`python -m lth_core datasets`)")
    folder = datasets_dir() / name
    if not (folder / "meta.json").is_file():
        known = ", ".join(u.name for u in list_uploads()) or "none"
        raise ConfigError(F, f"no uploaded dataset {name!r} in {datasets_dir()}; uploaded: {known}")
    return folder


def read_meta(name: str) -> dict:
    try:
        return json.loads((_folder(name) / "meta.json").read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(F, f"cannot read {datasets_dir() / name / 'meta.json'}: {exc}") from None


def read_upload(name: str, label_col: str | None = None) -> RawSet:
    """The RawSet of a kept upload; its files are re-hashed first, so a run's `upload:` name can
    only ever load the bytes it was started on. label_col: a CSV's label (default: the one chosen
    at upload)."""
    meta = read_meta(name)
    folder = _folder(name)
    files = {p.name: p.read_bytes() for p in _stored_files(folder)}
    if sorted(files) != sorted(meta.get("files", [])) or content_hash(files) != meta.get("sha256"):
        raise ConfigError(F, f"the files of uploaded dataset {name!r} in {folder} have changed since the upload "
                             "(their SHA-256 no longer matches); upload the file again")
    fmt = meta.get("format")
    if fmt == "csv" and label_col is None:
        label_col = meta.get("label_col")
    return _read(folder, fmt, label_col)


@dataclass(frozen=True)
class UploadInfo(DatasetInfo):
    """A kept upload: a data.DatasetInfo (name is the full `upload:` spec) with what the upload adds."""

    label_col: str | None = None
    uploaded_as: str = ""


def list_uploads() -> list[UploadInfo]:
    """Every kept upload, newest first (read from meta.json; nothing is parsed)."""
    root = datasets_dir()
    if not root.is_dir():
        return []
    infos = []
    for folder in root.iterdir():
        meta_path = folder / "meta.json"
        if not _NAME.match(folder.name) or not meta_path.is_file():
            continue
        try:
            m = json.loads(meta_path.read_text())
            shown = ", ".join(m["uploaded_as"])
            what = {"csv": f"CSV, label column {m.get('label_col')!r}", "npz": ".npz arrays", "idx": "IDX files"}[m["format"]]
            infos.append((m.get("uploaded_at", ""), UploadInfo(
                PREFIX + folder.name, f"uploaded {shown} ({what}, {_size(m['bytes'])})", m["kind"],
                tuple(m["input_shape"]), len(m["classes"]), dict(m["sizes"]), m.get("label_col"), shown)))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged entry is skipped here; loading it says what is wrong
    return [info for _, info in sorted(infos, key=lambda t: t[0], reverse=True)]
