"""What a ticket buys, measured on this machine: file sizes, latency and accuracy of every way to run it,
side by side with the dense network of round 0, and where sparse matmuls start paying off.

Nothing here is an estimate: each file is written and its bytes counted, each variant is timed (median
of repeated calls after a warm-up, quartiles kept) and evaluated on the test split. Libraries that turned
unstructured sparsity into speed are gone (DeepSparse, torchao's sparsity) and ONNX Runtime densifies
sparse weights on load, so the variants are the ones that still exist: dense PyTorch, PyTorch with CSR
matmuls (linear layers), the structurally smaller network (dead units removed, structured.py), ONNX
Runtime in fp32 and with its dynamic int8 quantisation, and the smaller network under ONNX Runtime.

`run_deploy_bench(store, run_id)` returns a `DeployBench` (to_dict / from_dict: JSON) that holds
everything, including the machine it ran on, so it can be stored with the run and shown later even when
the dataset files are gone.
"""
from __future__ import annotations

import contextlib
import copy
import gzip
import os
import platform
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lth_core.engine.cpu import CpuWatch
from lth_core.engine.errors import ConfigError
from lth_core.engine.structured import UnitCount, reduce
from lth_core.engine.training import torch_threads

BATCHES = (1, 256)
DENSITIES = (0.5, 0.4, 0.3, 0.2, 0.15, 0.1, 0.07, 0.05, 0.03, 0.02, 0.01)  # break-even sweep
DEFAULT_REPEATS = 50      # timed calls per variant and batch size
WARMUP = 5                # untimed calls first
OVERLOAD_PER_CORE = 2.0   # a load average above this many per core while timing: the timings are not reliable
FASTER = 1.1              # a speed-up below this (or a slow-down below 1/FASTER) reads as "no faster"
# the variants as a reader names them, in the order the tables list them (the sentences and tables use these)
VARIANT_NAMES = {
    "engine": "the engine's own network",
    "pytorch": "dense PyTorch",
    "pytorch CSR": "PyTorch with CSR matmuls",
    "structured": "structured (dead units removed) in PyTorch",
    "onnxruntime": "ONNX Runtime in fp32",
    "onnxruntime int8": "ONNX Runtime with int8 dynamic quantisation",
    "structured onnxruntime": "structured in ONNX Runtime",
    "bitmask int8": "bitmask with int8 values (storage only)",
}

from lth_core.analysis.recommend import TOLERANCE_POINTS, recommended_round


# ---- the result --------------------------------------------------------------------

@dataclass
class MachineInfo:
    cpu: str
    cores: int
    threads: int                 # torch and ONNX Runtime intra-op threads used for every timing
    torch: str
    onnxruntime: str
    platform: str
    load_average: float          # 1-minute load when the bench started (other work on the machine)
    # while it timed (None in a bench stored before they were recorded): the highest 1-minute load average seen,
    # and the cores other processes kept busy on average (engine.cpu.CpuWatch: /proc/stat less this process)
    load_during: float | None = None
    others_busy: float | None = None

    def label(self) -> str:
        return (f"{self.cpu}, {self.cores} cores, {self.threads} thread{'s' if self.threads != 1 else ''}; "
                f"torch {self.torch}, onnxruntime {self.onnxruntime}; load {self.load_average:.1f} at start"
                + (f", up to {self.load_during:.1f} while timing" if self.load_during is not None else "")
                + (f", other processes kept {self.others_busy:.1f} cores busy" if self.others_busy is not None else ""))


@dataclass
class FileSize:
    network: str     # dense (round 0) or ticket
    format: str      # e.g. "fp32 .pt", "bitmask .npz", "ONNX int8"
    gzipped: bool
    bytes: int


@dataclass
class Timing:
    network: str
    variant: str
    batch: int
    median_ms: float
    q1_ms: float
    q3_ms: float
    repeats: int
    cpu_ms: float = float("nan")   # median CPU time of the process per call: what a call costs, whatever the load


@dataclass
class VariantAccuracy:
    network: str
    variant: str
    accuracy: float           # on the test split
    agreement: float          # fraction of test predictions equal to the engine's own network's


@dataclass
class BreakEvenPoint:
    layer: str
    shape: tuple[int, int]
    density: float
    batch: int
    dense_ms: float
    csr_ms: float


@dataclass
class DeployBench:
    run_id: str
    run_name: str
    arch: str
    dataset: str
    trial: int
    round: int
    weights_remaining: float
    tolerance_points: float
    recommended: bool            # the round is the recommended one (not chosen by hand)
    ticket_source: str
    dense_source: str
    machine: MachineInfo
    files: list[FileSize] = field(default_factory=list)
    timings: list[Timing] = field(default_factory=list)
    accuracies: list[VariantAccuracy] = field(default_factory=list)
    units: list[UnitCount] = field(default_factory=list)          # the structured net: units per layer
    layer_density: dict[str, float] = field(default_factory=dict)  # the ticket's density per linear layer
    break_even: list[BreakEvenPoint] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    summary: str = ""
    created_at: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DeployBench":
        data = dict(data)
        data["machine"] = MachineInfo(**data["machine"])
        for name, kind in (("files", FileSize), ("timings", Timing), ("accuracies", VariantAccuracy),
                           ("units", UnitCount), ("break_even", BreakEvenPoint)):
            data[name] = [kind(**row) for row in data.get(name, [])]
        for p in data["break_even"]:
            p.shape = tuple(p.shape)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    # ---- look-ups -----------------------------------------------------------------
    def timing(self, network: str, variant: str, batch: int) -> Timing | None:
        return next((t for t in self.timings if (t.network, t.variant, t.batch) == (network, variant, batch)), None)

    def file_bytes(self, network: str, format: str, gzipped: bool) -> int | None:
        return next((f.bytes for f in self.files if (f.network, f.format, f.gzipped) == (network, format, gzipped)), None)

    def smallest_ticket_file(self) -> tuple[str, int, int] | None:
        """The ticket's smallest gzipped sparse file against the dense .pt gzipped: (format, its bytes, the dense
        file's bytes), or None when either was not written."""
        dense = self.file_bytes("dense", "fp32 .pt", True)
        sparse = {fmt: self.file_bytes("ticket", fmt, True) for fmt in ("bitmask .npz", "CSR .npz")}
        best = min((f for f in sparse if sparse[f]), key=lambda f: sparse[f], default=None)
        return (best, sparse[best], dense) if dense and best else None

    def accuracy(self, network: str, variant: str) -> float | None:
        return next((a.accuracy for a in self.accuracies if (a.network, a.variant) == (network, variant)), None)

    def break_even_density(self, layer: str, batch: int) -> float | None:
        """The highest density at which CSR beats the dense matmul for `layer`, it and every density
        below it in the sweep; None when CSR never pays off down to 1 %."""
        points = sorted((p for p in self.break_even if p.layer == layer and p.batch == batch), key=lambda p: p.density)
        best = None
        for p in points:
            if p.csr_ms >= p.dense_ms:
                break
            best = p.density
        return best

    @property
    def busy(self) -> bool:
        """Other work kept the cores busy when the bench started (load above the core count)."""
        return self.machine.load_average > self.machine.cores

    @property
    def overloaded(self) -> bool:
        """The timings were taken under so much other work that their ratios are not to be trusted: other
        processes left less than half a core of what the bench's threads needed (CpuWatch over the timings),
        or, where that was not measured, the load average while timing exceeded OVERLOAD_PER_CORE × the cores.
        False for a bench stored before the load while timing was recorded."""
        m = self.machine
        if m.others_busy is not None:
            return m.cores - m.others_busy < min(m.threads, m.cores) - 0.5
        return m.load_during is not None and m.load_during > OVERLOAD_PER_CORE * m.cores

    def load_words(self) -> str | None:
        """One plain sentence when the timings are not reliable (`overloaded`), else None."""
        if not self.overloaded:
            return None
        m = self.machine
        what = [f"other processes kept {m.others_busy:.1f} of its {m.cores} cores busy"] if m.others_busy is not None else []
        if m.load_during is not None:
            what.append(f"load average up to {m.load_during:.1f}")
        return (f"Measured under heavy load ({', '.join(what)}): the latencies and speed ratios are not reliable "
                "(a call mostly waited for a core), so do not read them as facts; measure again when the machine is "
                "quieter. File sizes and accuracies are unaffected.")

    @property
    def by_cpu_time(self) -> bool:
        """Compare by CPU time per call rather than wall-clock: on a busy machine with one thread, where
        the wall-clock of a call is mostly the wait for a core and CPU time is what the call costs."""
        return self.busy and self.machine.threads == 1

    def ms(self, t: Timing) -> float:
        return t.cpu_ms if self.by_cpu_time else t.median_ms

    def speedup(self, variant: str, batch: int) -> float | None:
        """The dense network's dense-PyTorch time over the ticket's `variant` time (medians)."""
        dense, mine = self.timing("dense", "pytorch", batch), self.timing("ticket", variant, batch)
        return None if dense is None or mine is None else self.ms(dense) / self.ms(mine)


# ---- the ways to run a network ---------------------------------------------------------

class CsrLinear(nn.Module):
    """y = x Wᵀ + b with W as a torch.sparse CSR matrix (as W x ᵀ, the product CSR supports)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
            self.weight = linear.weight.detach().to_sparse_csr()
        self.bias = linear.bias.detach().unsqueeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sparse.addmm(self.bias, self.weight, x.t()).t()


def csr_module(module: nn.Module) -> nn.Module:
    """A copy of `module` with every nn.Linear as CsrLinear (conv layers stay dense)."""
    module = copy.deepcopy(module)
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Linear):
            setattr(module, name, CsrLinear(child))
    return module


def _sample_times(fns: dict[Any, Callable[[], Any]], repeats: int, warmup: int
                  ) -> dict[Any, tuple[list[float], list[float]]]:
    """(wall-clock ms, process CPU ms) of `repeats` calls of each function, taken in turns (one call of
    each, again and again) so a slow spell of a shared machine falls on every variant alike. On a busy
    machine a call also waits for a core; the CPU time does not count that wait."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[Any, tuple[list[float], list[float]]] = {k: ([], []) for k in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            cpu, start = time.process_time_ns(), time.perf_counter_ns()
            fn()
            end, cpu_end = time.perf_counter_ns(), time.process_time_ns()
            samples[key][0].append((end - start) / 1e6)
            samples[key][1].append((cpu_end - cpu) / 1e6)
    return samples


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    q1, med, q3 = np.percentile(values, [25, 50, 75])
    return float(med), float(q1), float(q3)


def _load_average() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def machine_info(threads: int) -> MachineInfo:
    import onnxruntime

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return MachineInfo(cpu, os.cpu_count() or 1, threads, torch.__version__, onnxruntime.__version__,
                       platform.platform(terse=True), load)


# ---- the bench ---------------------------------------------------------------------------

def choose_round(rounds, round: int | None, run_id: str) -> tuple[int, bool]:
    """(round to bench, whether it is the recommended one)."""
    done = sorted(int(r) for r in rounds["round"].unique())
    if round is not None:
        if round not in done or round == 0:
            raise ConfigError("round", f"must be a finished pruned round of run {run_id} "
                              f"({', '.join(map(str, done[1:])) or 'none yet'}); got {round}")
        return round, round == recommended_round(rounds, TOLERANCE_POINTS)
    chosen = recommended_round(rounds, TOLERANCE_POINTS)
    if chosen is None:
        raise ConfigError("round", f"no pruned round of run {run_id} has a ticket within {TOLERANCE_POINTS:g} point of "
                          f"the dense network; choose one with --round ({', '.join(map(str, done[1:])) or 'none finished'})")
    return chosen, True


def choose_ticket(rounds, round: int | None, trial: int | None, run_id: str) -> tuple[int, int, bool]:
    """(round, trial, whether the round is the recommended one) of the ticket to bench or export, checked
    against the run's finished rounds; ConfigError naming `round` or `trial` otherwise."""
    trial = 0 if trial is None else trial
    trials = sorted(int(t) for t in rounds["trial"].unique())
    if isinstance(trial, bool) or not isinstance(trial, int) or trial not in trials:
        raise ConfigError("trial", f"must be one of run {run_id}'s trials ({', '.join(map(str, trials)) or 'none yet'}); "
                          f"got {trial}")
    if round is not None and (isinstance(round, bool) or not isinstance(round, int)):
        raise ConfigError("round", f"must be a whole number; got {round!r}")
    chosen, recommended = choose_round(rounds, round, run_id)
    return chosen, trial, recommended


def run_deploy_bench(store, run_id: str, round: int | None = None, trial: int = 0, *, repeats: int = DEFAULT_REPEATS,
                     threads: int | None = None, densities: tuple[float, ...] = DENSITIES,
                     files_dir: Path | str | None = None,
                     progress: Callable[[str], None] | None = None) -> DeployBench:
    """Measure the ticket of `round` (default: the recommended round) of trial `trial` of a stored run
    against the run's dense network. Retrains both (the store keeps masks and starting points, not
    trained weights; the engine is deterministic). `files_dir` keeps the measured files (else a
    temporary folder). Usable from a worker: plain arguments in, a JSON-able result out."""
    from lth_core.engine.retrain import engine_logits, retrain

    started = time.perf_counter()
    say = progress or (lambda text: None)
    info = store.get_run(run_id)
    rounds = store.rounds(run_id)
    rnd, recommended = choose_round(rounds, round, run_id)
    if repeats < 1:
        raise ConfigError("repeats", f"must be at least 1; got {repeats}")
    threads = threads or torch.get_num_threads()
    if threads < 1:
        raise ConfigError("threads", f"must be at least 1; got {threads}")
    say(f"retraining round {rnd} (the ticket) and round 0 (the dense network)")
    ticket = retrain(store, run_id, rnd, trial)["ticket"]
    dense = retrain(store, run_id, 0, trial)["ticket"]
    bench = DeployBench(run_id, info.name, ticket.net.arch, info.config.dataset, trial, rnd, ticket.weights_remaining,
                        TOLERANCE_POINTS, recommended, ticket.source(), dense.source(), machine_info(threads),
                        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    from lth_core.engine.lottery import make_plan

    data = make_plan(info.config.replace(device="cpu")).data
    x_test, y_test = torch.from_numpy(np.ascontiguousarray(data.x_test)), torch.from_numpy(np.ascontiguousarray(data.y_test))
    with contextlib.ExitStack() as stack:
        folder = Path(files_dir) if files_dir else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lth-deploy-")))
        folder.mkdir(parents=True, exist_ok=True)
        stack.enter_context(torch_threads(threads))
        stack.enter_context(torch.inference_mode())
        runners: dict[tuple[str, str], Callable[[torch.Tensor], torch.Tensor]] = {}
        for name, model in (("dense", dense), ("ticket", ticket)):
            say(f"writing and measuring the {name} network's files")
            runners.update(_files_and_runners(bench, name, model, folder / name, threads))
        say("measuring accuracy on the test split")
        for name, model in (("dense", dense), ("ticket", ticket)):
            reference = engine_logits(model, x_test).argmax(1)
            bench.accuracies.append(VariantAccuracy(name, "engine", float((reference == y_test).float().mean()), 1.0))
            for (network, variant), run in runners.items():
                if network == name:
                    predicted = _logits(run, x_test).argmax(1)
                    bench.accuracies.append(VariantAccuracy(name, variant, float((predicted == y_test).float().mean()),
                                                            float((predicted == reference).float().mean())))
        watch, loads = CpuWatch(), [_load_average()]  # the load while timing, kept with the result
        for batch in BATCHES:
            say(f"timing every variant at batch {batch} ({repeats} calls each)")
            x = _batch_of(x_test, batch)
            calls = {key: (lambda run=run: run(x)) for key, run in runners.items() if key[1] != "bitmask int8"}
            for (network, variant), (wall, cpu) in _sample_times(calls, repeats, WARMUP).items():
                bench.timings.append(Timing(network, variant, batch, *_quartiles(wall), repeats,
                                            float(np.median(cpu))))
            loads.append(_load_average())
        say("sweeping CSR against dense for each linear layer's shape")
        _break_even(bench, ticket, densities, max(5, repeats // 2))
        loads.append(_load_average())
        bench.machine.others_busy = watch.others_busy(min_window=0)
        bench.machine.load_during = max((v for v in loads if v is not None), default=None)
    bench.summary = summary(bench)
    bench.seconds = time.perf_counter() - started
    return bench


def _batch_of(x: torch.Tensor, batch: int) -> torch.Tensor:
    """The first `batch` test examples (repeated if the split is smaller)."""
    reps = -(-batch // x.shape[0])
    return x.repeat(reps, *([1] * (x.dim() - 1)))[:batch].contiguous()


def _logits(run: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, chunk: int = 1000) -> torch.Tensor:
    return torch.cat([torch.as_tensor(run(x[i:i + chunk])) for i in range(0, x.shape[0], chunk)])


def _gzip_size(path: Path) -> int:
    target = path.with_name(path.name + ".gz")
    target.write_bytes(gzip.compress(path.read_bytes(), compresslevel=9, mtime=0))
    return target.stat().st_size


def _files_and_runners(bench: DeployBench, network: str, model, folder: Path, threads: int
                       ) -> dict[tuple[str, str], Callable[[torch.Tensor], torch.Tensor]]:
    """Write every file format of one network, record its sizes; return the variants to run."""
    from lth_core.analysis.exports import export_onnx, onnx_session, quantize_onnx, read_bitmask, write_bitmask, write_csr
    from lth_core.engine.torch_modules import build_plain, plain_from_engine

    folder.mkdir(parents=True, exist_ok=True)
    module = plain_from_engine(model.net, model.params, model.buffers, model.input_shape)
    state = module.state_dict()
    masks = dict(model.masks)
    example = torch.zeros(2, *model.input_shape)

    def record(fmt: str, path: Path) -> None:
        bench.files.append(FileSize(network, fmt, False, path.stat().st_size))
        bench.files.append(FileSize(network, fmt, True, _gzip_size(path)))

    torch.save(state, folder / "fp32.pt")
    record("fp32 .pt", folder / "fp32.pt")
    record("bitmask .npz", write_bitmask(state, masks, folder / "bitmask.npz"))
    record("bitmask int8 .npz", write_bitmask(state, masks, folder / "bitmask-int8.npz", int8=True))
    record("CSR .npz", write_csr(state, masks, folder / "csr.npz"))
    record("CSR int8 .npz", write_csr(state, masks, folder / "csr-int8.npz", int8=True))
    record("ONNX", export_onnx(module, example, folder / "model.onnx"))
    record("ONNX int8", quantize_onnx(folder / "model.onnx", folder / "model-int8.onnx"))

    def ort_runner(path: Path) -> Callable[[torch.Tensor], np.ndarray]:
        session = onnx_session(path, threads)
        return lambda x: session.run(None, {"x": x.numpy()})[0]

    dequantized = build_plain(model.net.arch, {k: tuple(v.shape) for k, v in state.items()}, model.input_shape)
    dequantized.load_state_dict(read_bitmask(folder / "bitmask-int8.npz"))
    runners: dict[tuple[str, str], Callable[[torch.Tensor], torch.Tensor]] = {
        (network, "pytorch"): module,
        (network, "onnxruntime"): ort_runner(folder / "model.onnx"),
        (network, "onnxruntime int8"): ort_runner(folder / "model-int8.onnx"),
        (network, "bitmask int8"): dequantized.eval(),  # a storage format: accuracy only, same speed as pytorch
    }
    if network == "ticket":
        runners[(network, "pytorch CSR")] = csr_module(module)
        reduced = reduce(model.net.arch, model.params, masks)
        if reduced is None:
            bench.notes.append(f"{model.net.arch} has residual connections: no structured (smaller) network")
        else:
            params, bench.units = reduced
            small = build_plain(model.net.arch, {k: tuple(v.shape) for k, v in params.items()}, model.input_shape)
            small.load_state_dict(params)
            small.eval()
            torch.save(small.state_dict(), folder / "structured.pt")
            record("structured fp32 .pt", folder / "structured.pt")
            record("structured ONNX", export_onnx(small, example, folder / "structured.onnx"))
            runners[(network, "structured")] = small
            runners[(network, "structured onnxruntime")] = ort_runner(folder / "structured.onnx")
        if any(isinstance(m, nn.Conv2d) for m in module.modules()):
            bench.notes.append("pytorch CSR: the linear layers use CSR matmuls; convolutions stay dense")
        bench.layer_density = {name.rsplit(".", 1)[0]: float(m.float().mean()) for name, m in masks.items() if m.dim() == 2}
    return runners


def _break_even(bench: DeployBench, ticket, densities: tuple[float, ...], repeats: int) -> None:
    """For each linear layer shape: a dense matmul against a CSR one at each density, batches 1 and 256."""
    gen = torch.Generator().manual_seed(0)
    seen: set[tuple[int, int]] = set()
    for name, mask in ticket.masks.items():
        if mask.dim() != 2 or tuple(mask.shape) in seen:
            continue
        shape = tuple(int(s) for s in mask.shape)
        seen.add(shape)
        layer = name.rsplit(".", 1)[0]
        weight = torch.randn(shape, generator=gen)
        bias = torch.randn(shape[0], generator=gen)
        for batch in BATCHES:
            x = torch.randn(batch, shape[1], generator=gen)
            calls: dict[Any, Callable[[], Any]] = {"dense": lambda: F.linear(x, weight, bias)}
            for d in densities:
                sparse = CsrLinear(nn.Linear(shape[1], shape[0]))
                keep = torch.rand(shape, generator=gen) < d
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    sparse.weight = (weight * keep).to_sparse_csr()
                sparse.bias = bias.unsqueeze(1)
                calls[d] = lambda s=sparse: s(x)
            times = _sample_times(calls, repeats, WARMUP)
            pick = 1 if bench.by_cpu_time else 0
            dense_ms = float(np.median(times["dense"][pick]))
            for d in densities:
                bench.break_even.append(BreakEvenPoint(layer, shape, d, batch, dense_ms, float(np.median(times[d][pick]))))


# ---- what holds, in words -------------------------------------------------------------

def _times(ratio: float) -> str:
    return f"{ratio:.1f}×"


def _speed_words(ratio: float | None) -> str:
    if ratio is None:
        return "not measured"
    if ratio >= FASTER:
        return f"{_times(ratio)} faster"
    if ratio <= 1 / FASTER:
        return f"{_times(1 / ratio)} slower"
    return "no faster"


def variant_name(variant: str) -> str:
    """A variant as a reader names it ("ONNX Runtime with int8 dynamic quantisation")."""
    return VARIANT_NAMES.get(variant, variant)


def _fastest_sentence(b: DeployBench) -> str | None:
    """Which way of running the ticket is fastest at each batch size, against the dense network in dense PyTorch,
    and whether the dense network gains as much that way (then the runtime, not the pruning, is the gain)."""
    best = {}
    for batch in BATCHES:
        options = [t for t in b.timings if t.network == "ticket" and t.batch == batch]
        if options and b.timing("dense", "pytorch", batch) is not None:
            best[batch] = min(options, key=b.ms)
    if not best:
        return None
    batches = list(best)
    gains = {bt: _speed_words(b.speedup(best[bt].variant, bt)) for bt in batches}
    runtime_only = [bt for bt in batches if best[bt].variant != "pytorch" and (same := b.timing(
        "dense", best[bt].variant, bt)) is not None and b.ms(same) / b.ms(best[bt]) < FASTER]
    if all(best[bt].variant == "pytorch" or gains[bt] == "no faster" for bt in batches):
        return f"No way of running the ticket here is faster than the dense network in dense PyTorch{_at(batches)}."
    variants = list(dict.fromkeys(best[bt].variant for bt in batches))
    if len(variants) == 1:
        how = f"The fastest way to run the ticket here is {variant_name(variants[0])}: " + " and ".join(
            f"{gains[bt]} than the dense network in dense PyTorch at batch {bt}" if i == 0 else f"{gains[bt]} at batch {bt}"
            for i, bt in enumerate(batches))
    else:
        how = "The fastest way to run the ticket here is " + " and ".join(
            f"{variant_name(best[bt].variant)} at batch {bt} ({gains[bt]} than the dense network in dense PyTorch)"
            for bt in batches)
    if runtime_only == batches:
        how += (", but the dense network run the same way is as fast, so that gain comes from the runtime, "
                "not from pruning")
    elif runtime_only:
        how += (f", but at batch {' and '.join(map(str, runtime_only))} the dense network run the same way is as "
                "fast, so there that gain comes from the runtime, not from pruning")
    return how + "."


def _at(batches: list[int]) -> str:
    return "" if len(batches) == len(BATCHES) else f" at batch {' and '.join(map(str, batches))}"


def _int8_sentence(b: DeployBench) -> str | None:
    """What ONNX Runtime's int8 quantisation does to the ticket's test accuracy, from the two measured accuracies."""
    fp32, int8 = b.accuracy("ticket", "onnxruntime"), b.accuracy("ticket", "onnxruntime int8")
    if fp32 is None or int8 is None:
        return None
    delta = 100 * (int8 - fp32)
    figures = f"{100 * int8:.2f} % against {100 * fp32:.2f} % in fp32"
    if abs(delta) < 0.005:
        return f"Int8 quantisation in ONNX Runtime leaves the ticket's test accuracy at {100 * int8:.2f} %, as in fp32."
    if delta < 0:
        return f"Int8 quantisation in ONNX Runtime costs the ticket {-delta:.2f} points of test accuracy ({figures})."
    return f"Int8 quantisation in ONNX Runtime raises the ticket's test accuracy by {delta:.2f} points ({figures})."


def summary(b: DeployBench) -> str:
    """A few plain sentences of what the measurements show, each built from the stored numbers."""
    sentences = []
    if (smallest := b.smallest_ticket_file()) is not None:
        best_fmt, sparse_gz, dense_gz = smallest
        sentences.append(f"At {100 * b.weights_remaining:.1f} % of weights the ticket is "
                         f"{_times(dense_gz / sparse_gz)} smaller gzipped ({best_fmt}, fp32) than the dense network's .pt.")
    if (load := b.load_words()) is not None:  # said before the speed sentences, which it qualifies
        sentences.append(load)
    big, small = max(BATCHES), min(BATCHES)
    csr_big, csr_small = b.speedup("pytorch CSR", big), b.speedup("pytorch CSR", small)
    if csr_big is not None:
        words_big, words_small = _speed_words(csr_big), _speed_words(csr_small)
        tail = f", and {words_small} at batch {small}" if words_small != words_big else f", as at batch {small}"
        if words_small == "no faster" and words_big != "no faster":
            tail = f", and no faster at batch {small}"
        sentences.append(f"At batch {big} it runs {words_big} than dense with CSR on this CPU{tail}.")
    removed = sum(u.removed for u in b.units if u.layer != "input")
    if b.units and not removed and not any(u.removed for u in b.units):
        sentences.append("It has no dead units to remove.")
    elif b.units:
        s_big, s_small = b.speedup("structured", big), b.speedup("structured", small)
        pixels = next((u.removed for u in b.units if u.layer == "input"), 0)
        what = (f"its {removed} dead unit{'s' if removed != 1 else ''}" if removed else "") + (
            f"{' and ' if removed else ''}{'its ' if not removed else ''}{pixels} unread input{'s' if pixels != 1 else ''}"
            if pixels else "")
        if _speed_words(s_big) == _speed_words(s_small):
            where = "at either batch size" if _speed_words(s_big) == "no faster" else "at every batch size"
            sentences.append(f"Removing {what} makes it {_speed_words(s_big)} {where}.")
        else:
            sentences.append(f"Removing {what} makes it {_speed_words(s_small)} at batch {small} and "
                             f"{_speed_words(s_big)} at batch {big}.")
    for sentence in (_fastest_sentence(b), _int8_sentence(b)):
        if sentence:
            sentences.append(sentence)
    if b.by_cpu_time:
        sentences.append(f"(Speeds compare CPU time per call: the machine was busy, load {b.machine.load_average:.1f} "
                         f"on {b.machine.cores} cores.)")
    return " ".join(sentences)


def stored_summary(doc: dict[str, Any]) -> str:
    """The summary of a stored bench (`DeployBench.to_dict()`), written again from its numbers by this version's
    words (an older bench keeps the sentences of the version that measured it); its stored text if unreadable."""
    try:
        return summary(DeployBench.from_dict(doc))
    except (TypeError, KeyError, ValueError, AttributeError):
        return str(doc.get("summary", ""))


# ---- as a table -------------------------------------------------------------------------

def _kb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1000:,.1f} kB"


def format_bench(b: DeployBench) -> str:
    """The bench as plain-text tables, for the terminal."""
    why = (f"recommended: the sparsest ticket within {b.tolerance_points:g} point of dense" if b.recommended
           else "chosen with --round")
    lines = [f"run {b.run_id} {b.run_name!r}: {b.arch} on {b.dataset}, trial {b.trial}, round {b.round} ({why})",
             f"ticket: {100 * b.weights_remaining:.2f} % of weights; {b.ticket_source}",
             f"dense: {b.dense_source}",
             f"machine: {b.machine.label()}", *([f"warning: {b.load_words()}"] if b.overloaded else []), ""]
    lines.append(f"{'file':<24} {'dense':>12} {'ticket':>12} {'gzipped: dense':>16} {'ticket':>12}")
    formats = list(dict.fromkeys(f.format for f in b.files))
    for fmt in formats:
        lines.append(f"{fmt:<24} {_kb(b.file_bytes('dense', fmt, False)):>12} {_kb(b.file_bytes('ticket', fmt, False)):>12} "
                     f"{_kb(b.file_bytes('dense', fmt, True)):>16} {_kb(b.file_bytes('ticket', fmt, True)):>12}")
    lines += ["", f"latency, ms per call: wall-clock median [IQR] and CPU time (median) of "
              f"{b.timings[0].repeats if b.timings else 0} calls, {b.machine.threads} "
              f"thread{'s' if b.machine.threads != 1 else ''}; speed-ups against the dense network's pytorch by "
              f"{'CPU time (busy machine)' if b.by_cpu_time else 'wall-clock'}; accuracy on the test split "
              "(agreement: predictions equal to the engine's)"]
    header = f"{'network':<8} {'variant':<23}" + "".join(f" {'batch ' + str(bt):>24} {'cpu':>7}" for bt in BATCHES)
    lines.append(header + "".join(f" {'×@' + str(bt):>6}" for bt in BATCHES) + f" {'accuracy':>9} {'agreement':>10}")
    variants = list(dict.fromkeys((a.network, a.variant) for a in b.accuracies))
    for network, variant in variants:
        cells, speeds = "", ""
        for batch in BATCHES:
            t = b.timing(network, variant, batch)
            cells += f" {'-':>24} {'-':>7}" if t is None else \
                f" {f'{t.median_ms:.3f} [{t.q1_ms:.3f}-{t.q3_ms:.3f}]':>24} {t.cpu_ms:7.3f}"
            base = b.timing("dense", "pytorch", batch)
            speeds += f" {f'{b.ms(base) / b.ms(t):.2f}':>6}" if t and base else f" {'-':>6}"
        acc = next(a for a in b.accuracies if (a.network, a.variant) == (network, variant))
        lines.append(f"{network:<8} {variant:<23}{cells}{speeds} {100 * acc.accuracy:8.2f}% {100 * acc.agreement:9.1f}%")
    if b.units:
        lines += ["", "structured: units kept per layer (dead units removed, same function)",
                  "  " + ", ".join(f"{u.layer} {u.before}→{u.after}" for u in b.units)]
    if b.break_even:
        lines += ["", f"CSR against dense matmul by density (ms per call, median {'CPU time' if b.by_cpu_time else 'wall-clock'}; "
                  "this ticket's density of the layer in brackets)"]
        for (layer, shape) in dict.fromkeys((p.layer, p.shape) for p in b.break_even):
            for batch in BATCHES:
                pts = sorted((p for p in b.break_even if p.layer == layer and p.batch == batch), key=lambda p: -p.density)
                if not pts:
                    continue
                be = b.break_even_density(layer, batch)
                mine = b.layer_density.get(layer)
                lines.append(f"  {layer} {shape[0]}×{shape[1]} batch {batch}: dense {pts[0].dense_ms:.3f}; "
                             + " ".join(f"{100 * p.density:g}%:{p.csr_ms:.3f}" for p in pts)
                             + f" → CSR pays off {'below ' + format(100 * be, 'g') + ' %' if be else 'at no density down to 1 %'}"
                             + (f" [{100 * mine:.1f} %]" if mine is not None else ""))
    for note in b.notes:
        lines.append(f"note: {note}")
    lines += ["", b.summary, f"(bench took {b.seconds:.0f} s)"]
    return "\n".join(lines)
