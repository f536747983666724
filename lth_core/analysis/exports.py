"""A trained ticket as deployable files, and the file formats the deployment bench measures.

`export_ticket(model, folder)` writes (see TICKET_README):
  ticket_pruned.pt   state_dict in torch.nn.utils.prune's format (weight_orig + weight_mask)
  ticket_dense.pt    plain state_dict, pruned weights as zeros
  ticket.onnx        the network for ONNX Runtime (input "x": (batch, *input_shape), output "logits")
  ticket_bitmask.npz surviving values + one bit per weight (numpy only)
  ticket.json        architecture, input shape, classes, parameter shapes, round, accuracy
  README.txt         how to load each, in three lines of Python
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lth_core.engine.torch_modules import build_plain, engine_state_dict, plain_from_engine, with_prune

ONNX_OPSET = 18

TICKET_README = """\
The trained winning ticket of run {run_id}, round {round} (trial {trial}): {arch}, {remaining:.2f} % of its
prunable weights, test accuracy {accuracy:.2f} %. Inputs: float32 of shape (batch, {shape}), normalised as the
engine's dataset {dataset!r} is; outputs: logits of {classes} classes. {source}.
Paths below are relative to the export folder (the one that holds {folder}/).

ticket_pruned.pt: a state_dict in torch.nn.utils.prune's format (weight_orig + weight_mask), for a plain torch.nn model with prune applied:
    from lth_core.analysis.exports import plain_module
    model = plain_module("{folder}", pruned=True)     # torch.nn model of {arch}, prune.identity on each pruned weight
    model.load_state_dict(torch.load("{folder}/ticket_pruned.pt")); logits = model(x)

ticket_dense.pt: the same weights as plain tensors, pruned ones as zeros:
    from lth_core.analysis.exports import plain_module
    model = plain_module("{folder}", pruned=False)
    model.load_state_dict(torch.load("{folder}/ticket_dense.pt")); logits = model(x)

ticket.onnx: for ONNX Runtime (or any ONNX tool), no torch needed:
    import onnxruntime as ort
    session = ort.InferenceSession("{folder}/ticket.onnx")
    logits = session.run(None, {{"x": x.astype("float32")}})[0]

ticket_bitmask.npz: numpy only; each pruned weight W as its surviving values (row-major) + a packed bitmask:
    import numpy as np; z = np.load("{folder}/ticket_bitmask.npz"); shape = tuple(z["fc1.weight.shape"]); w = np.zeros(shape, np.float32)
    mask = np.unpackbits(z["fc1.weight.bits"], count=w.size).reshape(shape).astype(bool)
    w[mask] = z["fc1.weight"]   # biases and other parameters are stored whole under their own names

ticket.json: the architecture, input shape, classes and every parameter's shape (what plain_module reads).
"""


# ---- the plain module, with or without prune --------------------------------------

def plain_module(folder: Path | str, pruned: bool = True) -> nn.Module:
    """An untrained plain torch.nn model of an exported ticket's architecture, ready for
    `load_state_dict` of ticket_pruned.pt (`pruned=True`, prune applied) or ticket_dense.pt."""
    meta = json.loads((Path(folder) / "ticket.json").read_text())
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
    arrays: dict[str, np.ndarray] = {}
    for name, value in state.items():
        a = value.detach().cpu().numpy()
        if name not in masks:
            arrays[name] = a
            continue
        mask = masks[name].cpu().numpy().astype(bool)
        arrays[f"{name}.bits"] = np.packbits(mask.ravel())
        arrays[f"{name}.shape"] = np.array(a.shape, dtype=np.int64)
        if int8:
            q, scale = _int8_rows(a)
            arrays[name], arrays[f"{name}.scale"] = q[mask], scale
        else:
            arrays[name] = a[mask].astype(np.float32)
    np.savez(path, **arrays)
    return Path(path)


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
            mask = np.unpackbits(z[f"{name}.bits"], count=math.prod(shape)).reshape(shape).astype(bool)
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
    arrays: dict[str, np.ndarray] = {}
    for name, value in state.items():
        a = value.detach().cpu().numpy()
        if name not in masks:
            arrays[name] = a
            continue
        matrix = a.reshape(a.shape[0], -1)
        mask = masks[name].cpu().numpy().astype(bool).reshape(matrix.shape)
        rows, cols = np.nonzero(mask)
        arrays[f"{name}.indices"] = cols.astype(np.int32)
        arrays[f"{name}.indptr"] = np.concatenate([[0], np.cumsum(mask.sum(1))]).astype(np.int32)
        arrays[f"{name}.shape"] = np.array(a.shape, dtype=np.int64)
        if int8:
            q, scale = _int8_rows(matrix)
            arrays[f"{name}.data"], arrays[f"{name}.scale"] = q[rows, cols], scale
        else:
            arrays[f"{name}.data"] = matrix[rows, cols].astype(np.float32)
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

def export_ticket(model, folder: Path | str, dataset: str | None = None) -> list[Path]:
    """Write a trained ticket (`retrain.TrainedModel`) into `folder` (created); returns the files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    module = plain_from_engine(model.net, model.params, model.buffers, model.input_shape)
    masks = dict(model.masks)
    state = module.state_dict()
    shapes = {n: list(v.shape) for n, v in engine_state_dict(model.params, {}).items()}
    meta = dict(run_id=model.run_id, trial=model.trial, round=model.round, variant=model.variant, arch=model.net.arch,
                input_shape=list(model.input_shape), num_classes=model.num_classes, shapes=shapes,
                pruned_weights=list(masks), weights_remaining=model.weights_remaining,
                test_accuracy=model.test_accuracy, dataset=dataset or model.config.get("dataset"), source=model.source())
    files = [folder / "ticket.json"]
    files[0].write_text(json.dumps(meta, indent=2) + "\n")
    torch.save(pruned_state_dict(module, masks), folder / "ticket_pruned.pt")
    torch.save({k: v.clone() for k, v in state.items()}, folder / "ticket_dense.pt")
    x = torch.zeros(2, *model.input_shape)
    export_onnx(module, x, folder / "ticket.onnx")
    write_bitmask(state, masks, folder / "ticket_bitmask.npz")
    files += [folder / f for f in ("ticket_pruned.pt", "ticket_dense.pt", "ticket.onnx", "ticket_bitmask.npz")]
    readme = TICKET_README.format(run_id=model.run_id, round=model.round, trial=model.trial, arch=model.net.arch,
                                  remaining=100 * model.weights_remaining, accuracy=100 * model.test_accuracy,
                                  shape=", ".join(map(str, model.input_shape)), dataset=meta["dataset"],
                                  classes=model.num_classes, source=model.source()[0].upper() + model.source()[1:],
                                  folder=folder.name)
    (folder / "README.txt").write_text(readme)
    files.append(folder / "README.txt")
    return files
