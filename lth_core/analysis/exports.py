"""A trained ticket as deployable files, and the file formats the deployment bench measures.

`export_ticket(model, folder)` writes one file per entry of EXPORT_FORMATS (a registry: a new format is one
`@export_format(...)` writer here and its round trip in tests/test_exports.py), plus
  ticket.json        architecture, input shape, classes, parameter shapes, round, accuracy
  README.txt         how to load each file, in three lines of Python (each format's `load`)
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from lth_core.engine.results import pack_mask, unpack_mask
from lth_core.engine.torch_modules import build_plain, engine_state_dict, plain_from_engine, with_prune

ONNX_OPSET = 18

TICKET_README = """\
The trained winning ticket of run {run_id}, round {round} (trial {trial}): {arch}, {remaining:.2f} % of its
prunable weights, test accuracy {accuracy:.2f} %. Outputs: logits of {classes} classes. {source}.
The lines below run in the folder that holds these files, by the names they have here ({names}).
`x` is a float32 numpy array of shape (batch, {shape}), normalised as the engine normalised dataset {dataset!r}:
{normalisation}
"""
TICKET_JSON_README = ("{meta}: the architecture, input shape, classes, every parameter's shape (what plain_module "
                      "reads) and the normalisation above.\n")
META_FILE = "ticket.json"


def normalisation_text(norm: dict | None, meta: str) -> str:
    """README.txt's words and lines for feeding raw data: the scale, the mean and std with their numbers."""
    if not norm:
        return "(this export predates stored normalisation: see the engine's dataset for its mean and std)\n"
    per = "per feature" if norm.get("kind") == "tabular" else "per channel"
    def numbers(values: list[float]) -> str:
        return "[" + ", ".join(f"{v:.6g}" for v in values) + "]"
    scaled = f"divide the raw values by {norm['scale']:g}, then " if norm["scale"] != 1 else ""
    return (f"  {scaled}subtract the train split's mean and divide by its std, {per}:\n"
            f"  mean {numbers(norm['mean'])}\n  std  {numbers(norm['std'])}\n"
            f"  In Python, from `raw` of shape (batch, ...) as the dataset's files hold it (exact numbers in {meta}):\n"
            f"    import json, numpy as np; n = json.load(open(\"{meta}\"))[\"normalisation\"]\n"
            "    m, s = (np.array(n[k], \"float32\").reshape(n[\"shape\"]) for k in (\"mean\", \"std\"))\n"
            "    x = ((np.asarray(raw, \"float32\") / np.float32(n[\"scale\"]) - m) / s).astype(\"float32\")\n")


def download_name(run_id: str, round: int, trial: int, file: str) -> str:
    """The name an export file gets when downloaded from the app: run, round and trial before the file's name."""
    return f"{run_id}-r{round}-t{trial}-{file}"


def ticket_readme(meta: dict, formats: list["ExportFormat"] | tuple["ExportFormat", ...], prefix: str = "") -> str:
    """README.txt of an export whose files are named `prefix` + their names in the export folder (the app's
    downloads: `download_name`'s prefix; the folder itself: none). `meta`: the export's ticket.json."""
    meta_file = prefix + META_FILE
    names = ", ".join([meta_file, *(prefix + f.file for f in formats), prefix + "README.txt"])
    source = meta.get("source", "")
    text = TICKET_README.format(run_id=meta["run_id"], round=meta["round"], trial=meta["trial"], arch=meta["arch"],
                                remaining=100 * meta["weights_remaining"], accuracy=100 * meta["test_accuracy"],
                                shape=", ".join(map(str, meta["input_shape"])), dataset=meta.get("dataset"),
                                classes=meta["num_classes"], source=source[:1].upper() + source[1:], names=names,
                                normalisation=normalisation_text(meta.get("normalisation"), meta_file).rstrip("\n"))
    return (text + "".join(f"\n{fmt.readme(meta['arch'], prefix)}" for fmt in formats) + "\n"
            + TICKET_JSON_README.format(meta=meta_file))


@dataclass(frozen=True)
class TicketParts:
    """What a format's writer gets: the ticket as a plain torch.nn module and its masks."""

    module: nn.Module                    # eval mode; pruned weights are zeros
    masks: dict[str, torch.Tensor]       # pruned weight's parameter name → bool mask
    input_shape: tuple[int, ...]


@dataclass(frozen=True)
class ExportFormat:
    """One file of the ticket's export."""

    name: str                            # what `export --ticket --formats` takes
    file: str                            # the file's name in the export folder
    description: str                     # one line, for `--help`, README.txt and the README's table
    write: Callable[[TicketParts, Path], None]
    load: str                            # README.txt's lines: from `x` they compute `logits` ({meta}, {file}, {arch})
    tolerance: float | None = 1e-5       # how closely its logits match the engine's; None: a lossy format (int8),
                                         # held to `agreement` alone (tests/test_exports.py checks both)
    agreement: float = 1.0               # the least share of test predictions that equal the engine's
    label: str = ""                      # the Deploy page's download button: what the file is for, in a few words

    def lines(self, arch: str, prefix: str = "") -> str:
        """README.txt's lines of Python for this file, its files named `prefix` + their export names."""
        return self.load.format(meta=prefix + META_FILE, file=prefix + self.file, arch=arch).strip("\n")

    def readme(self, arch: str, prefix: str = "") -> str:
        """This format's part of README.txt."""
        return f"{prefix}{self.file}: {self.description}:\n" + "".join(
            f"    {line}\n" for line in self.lines(arch, prefix).splitlines())


EXPORT_FORMATS: dict[str, ExportFormat] = {}


def export_format(name: str, file: str, description: str, load: str, label: str, tolerance: float | None = 1e-5,
                  agreement: float = 1.0):
    """Register the decorated `write(parts, path)` as the ticket format `name`."""
    def register(write: Callable[[TicketParts, Path], None]) -> Callable[[TicketParts, Path], None]:
        EXPORT_FORMATS[name] = ExportFormat(name, file, description, write, load, tolerance, agreement, label)
        return write
    return register


# ---- the plain module, with or without prune --------------------------------------

def plain_module(meta_file: Path | str, pruned: bool = True) -> nn.Module:
    """An untrained plain torch.nn model of an exported ticket's architecture, ready for
    `load_state_dict` of ticket_pruned.pt (`pruned=True`, prune applied) or ticket_dense.pt. `meta_file`: the
    export's ticket.json (under whatever name it was downloaded), or the export folder that holds it."""
    path = Path(meta_file)
    meta = json.loads((path / META_FILE if path.is_dir() else path).read_text())
    module = build_plain(meta["arch"], {n: tuple(s) for n, s in meta["shapes"].items()}, tuple(meta["input_shape"]))
    return (with_prune(module, meta["pruned_weights"]) if pruned else module).eval()


def pruned_state_dict(module: nn.Module, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`module`'s state_dict in torch.nn.utils.prune's format: `weight_orig` + `weight_mask` for each
    weight of `masks` (module untouched)."""
    state = {}
    for key, value in module.state_dict().items():
        layer, _, leaf = key.rpartition(".")
        if key in masks:
            state[f"{layer}.weight_orig"] = value.clone()
            state[f"{layer}.weight_mask"] = masks[key].to(value.dtype).clone()
        else:
            state[key] = value.clone()
    return state


# ---- ONNX ---------------------------------------------------------------------------

def export_onnx(module: nn.Module, example: torch.Tensor, path: Path | str) -> Path:
    """`module` as one ONNX file (weights inside), batch size free; torch's own exporter
    (torch.export-based, the maintained one), its progress messages kept quiet."""
    path = Path(path)
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    example = torch.cat([example[:1], example[:1]])  # a batch of 2, so the batch size stays symbolic
    quiet = io.StringIO()
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            warnings.simplefilter("ignore")
            torch.onnx.export(module.eval(), (example,), str(path), dynamo=True, external_data=False,
                              input_names=["x"], output_names=["logits"], dynamic_shapes=({0: batch},),
                              opset_version=ONNX_OPSET, verbose=False)
    finally:
        logger.setLevel(level)
    return path


def quantize_onnx(source: Path | str, path: Path | str) -> Path:
    """ONNX Runtime's dynamic int8 quantisation of the weights (activations quantised on the fly)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        quantize_dynamic(str(source), str(path), weight_type=QuantType.QInt8)
    return Path(path)


def onnx_session(path: Path | str, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


# ---- numpy formats: bitmask and CSR ------------------------------------------------

def write_bitmask(state: dict[str, torch.Tensor], masks: dict[str, torch.Tensor], path: Path | str,
                  int8: bool = False) -> Path:
    """Surviving values (row-major) + packed bits per pruned weight, other parameters whole. With
    `int8`, the surviving values are int8 with one float32 scale per output unit (symmetric)."""
    def bitmask(name: str, values: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        return {f"{name}.bits": pack_mask(mask)[0], name: values[mask]}
    return _write_sparse(state, masks, path, int8, bitmask)


def read_bitmask(path: Path | str) -> dict[str, torch.Tensor]:
    """The state dict back from `write_bitmask` (int8 values multiplied back by their scales)."""
    with np.load(path) as z:
        files = set(z.files)
        state: dict[str, torch.Tensor] = {}
        for name in files:
            if name.endswith((".bits", ".shape", ".scale")):
                continue
            if f"{name}.bits" not in files:
                state[name] = torch.from_numpy(z[name])
                continue
            shape = tuple(int(s) for s in z[f"{name}.shape"])
            mask = unpack_mask(z[f"{name}.bits"], shape)
            w = np.zeros(shape, np.float32)
            if f"{name}.scale" in files:
                scale = np.broadcast_to(z[f"{name}.scale"].reshape(-1, *([1] * (len(shape) - 1))), shape)
                w[mask] = z[name].astype(np.float32) * scale[mask]
            else:
                w[mask] = z[name]
            state[name] = torch.from_numpy(w)
    return state


def write_csr(state: dict[str, torch.Tensor], masks: dict[str, torch.Tensor], path: Path | str,
              int8: bool = False) -> Path:
    """Each pruned weight as CSR of its (out, rest) matrix: values, int32 column indices and row
    pointers; other parameters whole. `int8` as in `write_bitmask`."""
    def csr(name: str, values: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        matrix, mask = values.reshape(values.shape[0], -1), mask.reshape(mask.shape[0], -1)
        rows, cols = np.nonzero(mask)
        return {f"{name}.indices": cols.astype(np.int32), f"{name}.data": matrix[rows, cols],
                f"{name}.indptr": np.concatenate([[0], np.cumsum(mask.sum(1))]).astype(np.int32)}
    return _write_sparse(state, masks, path, int8, csr)


def _write_sparse(state: dict[str, torch.Tensor], masks: dict[str, torch.Tensor], path: Path | str, int8: bool,
                  encode: Callable[[str, np.ndarray, np.ndarray], dict[str, np.ndarray]]) -> Path:
    """One .npz: each pruned weight's shape, (int8) its row scales, and `encode(name, values, mask)`'s
    arrays of its surviving values; other parameters whole."""
    arrays: dict[str, np.ndarray] = {}
    for name, value in state.items():
        a = value.detach().cpu().numpy()
        if name not in masks:
            arrays[name] = a
            continue
        arrays[f"{name}.shape"] = np.array(a.shape, dtype=np.int64)
        if int8:
            a, arrays[f"{name}.scale"] = _int8_rows(a)
        arrays.update(encode(name, a if int8 else a.astype(np.float32), masks[name].cpu().numpy().astype(bool)))
    np.savez(path, **arrays)
    return Path(path)


def read_csr(path: Path | str) -> dict[str, torch.Tensor]:
    with np.load(path) as z:
        files = set(z.files)
        state: dict[str, torch.Tensor] = {}
        for name in files:
            base = name.rsplit(".", 1)[0]
            if name.endswith(".data"):
                shape = tuple(int(s) for s in z[f"{base}.shape"])
                indptr, indices = z[f"{base}.indptr"], z[f"{base}.indices"]
                data = z[name].astype(np.float32)
                rows = np.repeat(np.arange(shape[0]), np.diff(indptr))
                if f"{base}.scale" in files:
                    data = data * z[f"{base}.scale"].reshape(-1)[rows]
                w = np.zeros((shape[0], math.prod(shape[1:])), np.float32)
                w[rows, indices] = data
                state[base] = torch.from_numpy(w.reshape(shape))
            elif not name.endswith((".indices", ".indptr", ".shape", ".scale")):
                state[name] = torch.from_numpy(z[name])
    return state


def _int8_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per output unit (first axis): q = round(w / scale), scale = max|w| / 127."""
    flat = matrix.reshape(matrix.shape[0], -1)
    scale = np.abs(flat).max(1) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(flat / scale[:, None]), -127, 127).astype(np.int8)
    return q.reshape(matrix.shape), scale.astype(np.float32)


# ---- the ticket export --------------------------------------------------------------

def export_ticket(model, folder: Path | str, dataset: str | None = None,
                  formats: list[str] | tuple[str, ...] | None = None) -> list[Path]:
    """Write a trained ticket (`retrain.TrainedModel`) into `folder` (created): ticket.json, one file per
    format of EXPORT_FORMATS (`formats`: their names, default all) and README.txt. Returns the files."""
    folder = Path(folder)
    chosen = [EXPORT_FORMATS[name] for name in (formats or EXPORT_FORMATS)]
    folder.mkdir(parents=True, exist_ok=True)
    module = plain_from_engine(model.net, model.params, model.buffers, model.input_shape).eval()
    parts = TicketParts(module, dict(model.masks), tuple(model.input_shape))
    shapes = {n: list(v.shape) for n, v in engine_state_dict(model.params, {}).items()}
    meta = dict(run_id=model.run_id, trial=model.trial, round=model.round, variant=model.variant, arch=model.net.arch,
                input_shape=list(model.input_shape), num_classes=model.num_classes, shapes=shapes,
                pruned_weights=list(parts.masks), weights_remaining=model.weights_remaining,
                test_accuracy=model.test_accuracy, dataset=dataset or model.config.get("dataset"), source=model.source(),
                normalisation=getattr(model, "normalisation", None))
    files = [folder / META_FILE]
    files[0].write_text(json.dumps(meta, indent=2) + "\n")
    for fmt in chosen:
        fmt.write(parts, folder / fmt.file)
        files.append(folder / fmt.file)
    readme = ticket_readme(meta, chosen)
    (folder / "README.txt").write_text(readme)
    files.append(folder / "README.txt")
    return files


# ---- the formats of the ticket's export, in the order they are written and explained ---------------

@export_format("pruned", "ticket_pruned.pt", "the trained ticket as a state_dict in torch.nn.utils.prune's format "
               "(weight_orig + weight_mask), for a plain torch.nn model with prune applied",
               label="state_dict in prune's format", load="""
import torch; from lth_core.analysis.exports import plain_module
model = plain_module("{meta}", pruned=True)     # torch.nn model of {arch}, prune.identity on each pruned weight
model.load_state_dict(torch.load("{file}")); logits = model(torch.from_numpy(x))
""")
def _write_pruned(parts: TicketParts, path: Path) -> None:
    torch.save(pruned_state_dict(parts.module, parts.masks), path)


@export_format("dense", "ticket_dense.pt", "the same weights as plain tensors, pruned ones as zeros",
               label="dense .pt, pruned weights as zeros", load="""
import torch; from lth_core.analysis.exports import plain_module
model = plain_module("{meta}", pruned=False)
model.load_state_dict(torch.load("{file}")); logits = model(torch.from_numpy(x))
""")
def _write_dense(parts: TicketParts, path: Path) -> None:
    torch.save({k: v.clone() for k, v in parts.module.state_dict().items()}, path)


# ONNX Runtime's kernels add in another order than torch's: its logits agree to about 1e-5, not bit for bit
@export_format("onnx", "ticket.onnx", 'for ONNX Runtime (or any ONNX tool), no torch needed: input "x" '
               '(batch, *input shape), output "logits"', tolerance=1e-4, label="ONNX", load="""
import onnxruntime as ort
session = ort.InferenceSession("{file}")
logits = session.run(None, {{"x": x.astype("float32")}})[0]
""")
def _write_onnx(parts: TicketParts, path: Path) -> None:
    export_onnx(parts.module, torch.zeros(2, *parts.input_shape), path)


@export_format("bitmask", "ticket_bitmask.npz", "the smallest file, readable with numpy alone: per pruned weight W "
               "its surviving values (row-major) as W, its mask packed by np.packbits as W.bits, its shape as W.shape; "
               "other parameters whole", label="bitmask .npz (numpy only)", load="""
import torch; from lth_core.analysis.exports import plain_module, read_bitmask
model = plain_module("{meta}", pruned=False); model.load_state_dict(read_bitmask("{file}"))
logits = model(torch.from_numpy(x))
# numpy alone, weight W: z = np.load("{file}"); w = np.zeros(z[W + ".shape"], "float32")
#                        w.reshape(-1)[np.unpackbits(z[W + ".bits"], count=w.size) == 1] = z[W]
""")
def _write_bitmask(parts: TicketParts, path: Path) -> None:
    write_bitmask(parts.module.state_dict(), parts.masks, path)


# Dynamic quantisation: weights int8 (one scale per tensor), activations quantised on the fly. It moves the
# logits by about 1-2 % of their range, so a prediction whose two best classes are that close may flip: held to
# predictions, not logits. Measured (test split, share of predictions equal to the fp32 ticket's): LeNet-300-100
# on mnist-5k at 7-17 % of weights 99.6-100 % (1,000 examples); tests' tiny digits nets, barely trained so their
# logits lie close, 98.05-100 % over 12 tickets (359 examples). The bound keeps a point below the worst of
# those for ONNX Runtime's other int8 kernels (another CPU may round its u8 activations differently).
INT8_AGREEMENT = 0.97


@export_format("onnx-int8", "ticket_int8.onnx", "ONNX Runtime's dynamic int8 quantisation of the ONNX model (weights "
               'int8, activations quantised on the fly): its weights in a quarter of the bytes, same input "x" and output '
               f'"logits"; int8 moves the logits a little: at least {100 * INT8_AGREEMENT:g} % of its test predictions '
               "equal the fp32 ticket's", tolerance=None, agreement=INT8_AGREEMENT, label="ONNX int8, dynamic quantisation",
               load="""
import onnxruntime as ort
session = ort.InferenceSession("{file}")
logits = session.run(None, {{"x": x.astype("float32")}})[0]
""")
def _write_onnx_int8(parts: TicketParts, path: Path) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:  # the deploy bench's way: the fp32 ONNX file, then quantize_onnx
        _write_onnx(parts, Path(tmp) / "ticket.onnx")
        quantize_onnx(Path(tmp) / "ticket.onnx", path)


@export_format("csr", "ticket_csr.pt", "torch.save of a dict: each pruned weight W as a torch sparse CSR tensor "
               "(int32 indices) of its (out, in) matrix (a convolution's (out, in·kh·kw)), other parameters whole; "
               "to_dense() gives back the dense weights exactly", label="CSR .pt, torch sparse tensors", load="""
import torch; from lth_core.analysis.exports import plain_module
model = plain_module("{meta}", pruned=False); shapes = {{k: v.shape for k, v in model.state_dict().items()}}
model.load_state_dict({{k: v.to_dense().reshape(shapes[k]) for k, v in torch.load("{file}").items()}})
logits = model(torch.from_numpy(x))
""")
def _write_csr(parts: TicketParts, path: Path) -> None:
    torch.save(sparse_csr_state(parts.module.state_dict(), parts.masks), path)


def sparse_csr_state(state: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state` with each weight of `masks` as a sparse CSR tensor of its (out, rest) matrix, int32 indices (half
    the bytes of torch's int64 default); other tensors cloned."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
        for name, value in state.items():
            if name not in masks:
                out[name] = value.detach().clone()
                continue
            csr = value.detach().reshape(value.shape[0], -1).to_sparse_csr()
            out[name] = torch.sparse_csr_tensor(csr.crow_indices().to(torch.int32), csr.col_indices().to(torch.int32),
                                                csr.values(), csr.shape)
    return out
