"""Architectures as functional networks over *stacked* parameters.

Every parameter carries a leading model axis V, so one forward pass trains V
models at once (a round's ticket and controls, across trials): linear layers
are batched matmuls and conv layers are grouped convolutions with one group
per model. Each model sees its own batch, so the models stay independent.

A new architecture is one builder function registered with `@architecture`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from lth_core.engine.errors import ConfigError

Params = dict[str, torch.Tensor]
DEFAULT_HIDDEN = (300, 100)  # the mlp's hidden sizes when none are given


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a single model. `kind` is fc / conv / output (prunable weights), bias or norm."""

    name: str
    shape: tuple[int, ...]
    kind: str
    fan_in: int = 1
    fan_out: int = 1
    positions: int = 1  # output positions a conv weight is applied at (1 for fc): multiply-adds = weights × positions

    @property
    def prunable(self) -> bool:
        return self.kind in ("fc", "conv", "output")

    @property
    def layer(self) -> str:
        """Readable layer name for plots: `fc1.weight` → `fc1`."""
        return self.name.rsplit(".", 1)[0]


@dataclass
class Network:
    """An architecture instantiated for an input shape and class count."""

    arch: str
    specs: list[ParamSpec]
    forward_fn: Callable[["Network", Params, Params, torch.Tensor, bool], torch.Tensor]
    buffer_specs: list[tuple[str, tuple[int, ...], float]] = field(default_factory=list)
    image_like: bool = False  # convolutional: inputs must be (C, H, W)
    eval_chunk: int = 1000  # examples per evaluation chunk, to bound memory

    @property
    def prunable(self) -> list[ParamSpec]:
        return [s for s in self.specs if s.prunable]

    def layer_totals(self) -> dict[str, int]:
        return {s.layer: math.prod(s.shape) for s in self.prunable}

    def layer_positions(self) -> dict[str, int]:
        return {s.layer: s.positions for s in self.prunable}

    def layer_kinds(self) -> dict[str, str]:
        return {s.layer: s.kind for s in self.prunable}

    def init_params(self, generator: torch.Generator) -> Params:
        """Gaussian Glorot weights, zero biases, unit norm scales: one model, unstacked, on the CPU."""
        params: Params = {}
        for s in self.specs:
            if s.prunable:
                std = math.sqrt(2.0 / (s.fan_in + s.fan_out))
                params[s.name] = torch.randn(s.shape, generator=generator) * std
            elif s.kind == "norm" and s.name.endswith(".weight"):
                params[s.name] = torch.ones(s.shape)
            else:
                params[s.name] = torch.zeros(s.shape)
        return params

    def new_buffers(self, models: int, device: torch.device) -> Params:
        """Batch-norm running statistics for V models (fresh each round)."""
        return {n: torch.full((models, *shape), value, device=device) for n, shape, value in self.buffer_specs}

    def forward(self, params: Params, buffers: Params, x: torch.Tensor, train: bool) -> torch.Tensor:
        """x: (G, B, *input_shape), one batch per group of V/G consecutive models → logits (V, B, classes).

        Models that share a batch (a round's variants of one trial, or every model at evaluation)
        share the first layer's input, which then becomes one large matmul / convolution."""
        return self.forward_fn(self, params, buffers, x, train)

    def num_weights(self) -> int:
        return sum(self.layer_totals().values())


# ---- registry -----------------------------------------------------------------

@dataclass(frozen=True)
class ArchInfo:
    name: str
    description: str
    needs_image: bool
    builder: Callable[..., Network]


ARCHITECTURES: dict[str, ArchInfo] = {}


def architecture(name: str, description: str, needs_image: bool = False):
    def register(fn: Callable[..., Network]) -> Callable[..., Network]:
        ARCHITECTURES[name] = ArchInfo(name, description, needs_image, fn)
        return fn
    return register


def build_network(arch: str, input_shape: tuple[int, ...], num_classes: int, kind: str = "image",
                  hidden: tuple[int, ...] | None = None, width: float | None = None) -> Network:
    """Build `arch` for data of `input_shape`; a conv net on tabular data is a ConfigError."""
    if arch not in ARCHITECTURES:
        raise ConfigError("arch", f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    info = ARCHITECTURES[arch]
    if info.needs_image and kind == "tabular":
        raise ConfigError("arch", f"{arch} needs image or sequence data, but this dataset is tabular "
                          f"({input_shape[0]} features); use mlp or lenet-300-100")
    if hidden is not None and arch != "mlp":
        raise ConfigError("hidden", f"hidden sizes apply to the mlp architecture only, not {arch}")
    if width is not None and not info.needs_image:
        raise ConfigError("width", f"the width multiplier applies to the conv and resnet architectures, not {arch}")
    return info.builder(input_shape=tuple(input_shape), num_classes=num_classes, hidden=hidden, width=width)


def default_width(arch: str) -> float:
    """Conv nets are compute-bound on a CPU, so they default to narrow versions."""
    return 0.5 if arch.startswith("resnet") else 0.25


# ---- stacked building blocks --------------------------------------------------

class _StackedLinear(torch.autograd.Function):
    """x (G, B, I) shared by the V/G consecutive models of each group, w (V, O, I), b (V, O) → (V, B, O).

    One (B, I)×(I, V/G·O) matmul per group (G = V: each model its own batch). Written by hand because
    autograd's own backward returns the weight gradient transposed, and copying it into the weight's
    layout cost a fifth of a LeNet training step; here every gradient comes out in its parameter's layout."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        g, batch, i = x.shape
        v, o, _ = w.shape
        ctx.save_for_backward(x, w)
        out = torch.baddbmm(b.reshape(g, 1, -1), x, w.reshape(g, -1, i).transpose(1, 2))  # (G, B, V/G·O)
        return out.reshape(g, batch, v // g, o).transpose(1, 2).reshape(v, batch, o)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, w = ctx.saved_tensors
        g, batch, i = x.shape
        v, o, _ = w.shape
        grouped = grad.reshape(g, v // g, batch, o).transpose(1, 2).reshape(g, batch, -1)  # (G, B, V/G·O)
        grad_w = torch.bmm(grouped.transpose(1, 2), x).reshape(v, o, i)
        grad_x = torch.bmm(grouped, w.reshape(g, -1, i)) if ctx.needs_input_grad[0] else None
        return grad_x, grad_w, grad.sum(1)


def _linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x (G, B, I) with G dividing V (G = V: one batch per model) → (V, B, O)."""
    return _StackedLinear.apply(x, w, b)


def _conv(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, stride: int = 1, groups: int | None = None) -> torch.Tensor:
    # grouped layout: x (B, G*C, H, W); w (V, O, C, kh, kw) → one group per model (or per shared input)
    v, o, c, kh, kw = w.shape
    padding = (kh // 2, kw // 2)
    st = (stride if x.shape[2] > 1 else 1, stride)  # sequences have height 1
    return F.conv2d(x, w.reshape(v * o, c, kh, kw), None if b is None else b.reshape(v * o),
                    stride=st, padding=padding, groups=v if groups is None else groups)


BN_MOMENTUM = 0.1  # a training pass moves the running statistics this far towards the batch's


def _norm(x: torch.Tensor, params: Params, buffers: Params, name: str, train: bool) -> torch.Tensor:
    return F.batch_norm(x, buffers[f"{name}.mean"].view(-1), buffers[f"{name}.var"].view(-1),
                        params[f"{name}.weight"].reshape(-1), params[f"{name}.bias"].reshape(-1),
                        training=train, momentum=BN_MOMENTUM, eps=1e-5)


def _to_grouped(x: torch.Tensor) -> torch.Tensor:
    """(V, B, C, H, W) or (V, B, C, L) → (B, V*C, H, W) with H = 1 for sequences."""
    if x.dim() == 4:
        x = x.unsqueeze(3)
    v, b, c, h, w = x.shape
    return x.transpose(0, 1).reshape(b, v * c, h, w)


def _from_grouped(x: torch.Tensor, models: int) -> torch.Tensor:
    """(B, V*C, H, W) → (V, B, C*H*W)."""
    b = x.shape[0]
    return x.reshape(b, models, -1).transpose(0, 1)


def _pool(x: torch.Tensor) -> torch.Tensor:
    kh = 2 if x.shape[2] >= 2 else 1
    return F.max_pool2d(x, (kh, 2))


def _spatial(input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(C, H, W) for images, (C, 1, L) for sequences."""
    if len(input_shape) == 3:
        return input_shape  # type: ignore[return-value]
    if len(input_shape) == 2:
        return input_shape[0], 1, input_shape[1]
    raise ConfigError("arch", f"conv nets need image (C,H,W) or sequence (C,L) inputs; got shape {input_shape}")


def _fc_spec(name: str, n_in: int, n_out: int, kind: str = "fc") -> list[ParamSpec]:
    return [ParamSpec(f"{name}.weight", (n_out, n_in), kind, n_in, n_out), ParamSpec(f"{name}.bias", (n_out,), "bias")]


def _conv_spec(name: str, c_in: int, c_out: int, kernel: tuple[int, int], bias: bool = True,
               positions: int = 1) -> list[ParamSpec]:
    k = kernel[0] * kernel[1]
    specs = [ParamSpec(f"{name}.weight", (c_out, c_in, *kernel), "conv", c_in * k, c_out * k, positions)]
    return specs + ([ParamSpec(f"{name}.bias", (c_out,), "bias")] if bias else [])


def _dense_head(params: Params, h: torch.Tensor, names: list[str], shared_input: bool = False) -> torch.Tensor:
    for i, name in enumerate(names):
        h = _linear(h, params[f"{name}.weight"], params[f"{name}.bias"])
        if i < len(names) - 1:
            h = F.relu(h)
    return h


# ---- fully connected ----------------------------------------------------------

def _mlp(input_shape: tuple[int, ...], num_classes: int, hidden: tuple[int, ...], arch: str) -> Network:
    sizes = [math.prod(input_shape), *hidden]
    names = [f"fc{i + 1}" for i in range(len(hidden))] + ["output"]
    specs: list[ParamSpec] = []
    for i, name in enumerate(names[:-1]):
        specs += _fc_spec(name, sizes[i], sizes[i + 1])
    specs += _fc_spec("output", sizes[-1], num_classes, kind="output")

    def forward(net: Network, params: Params, buffers: Params, x: torch.Tensor, train: bool) -> torch.Tensor:
        return _dense_head(params, x.reshape(x.shape[0], x.shape[1], -1), names, shared_input=True)

    return Network(arch, specs, forward)


@architecture("lenet-300-100", "fully connected 300-100 (Frankle & Carbin's MNIST net)")
def lenet_300_100(input_shape, num_classes, hidden=None, width=None) -> Network:
    return _mlp(input_shape, num_classes, (300, 100), "lenet-300-100")


@architecture("mlp", "fully connected with your hidden sizes (--hidden 300,100)")
def mlp(input_shape, num_classes, hidden=None, width=None) -> Network:
    return _mlp(input_shape, num_classes, tuple(hidden or DEFAULT_HIDDEN), "mlp")


# ---- the paper's conv nets ----------------------------------------------------

def _conv_net(arch: str, blocks: int, input_shape, num_classes, width) -> Network:
    width = default_width(arch) if width is None else width
    c, h, w = _spatial(input_shape)
    kernel = (3, 3) if h > 1 else (1, 3)
    if w < 2 ** blocks:
        raise ConfigError("arch", f"{arch} pools {blocks} times and needs inputs at least {2 ** blocks} wide; "
                          f"this data is {h}×{w}; choose a smaller conv net or an mlp")
    specs: list[ParamSpec] = []
    convs: list[str] = []
    channels = c
    for block in range(blocks):
        out = max(1, round(64 * 2 ** block * width))
        for j in range(2):
            name = f"conv{2 * block + j + 1}"
            specs += _conv_spec(name, channels, out, kernel, positions=h * w)
            convs.append(name)
            channels = out
        h, w = (h // 2 if h >= 2 else h), w // 2
    fc_width = max(1, round(256 * width))
    specs += _fc_spec("fc1", channels * h * w, fc_width) + _fc_spec("fc2", fc_width, fc_width)
    specs += _fc_spec("output", fc_width, num_classes, kind="output")

    def forward(net: Network, params: Params, buffers: Params, x: torch.Tensor, train: bool) -> torch.Tensor:
        models = params["output.weight"].shape[0]
        g = _to_grouped(x)
        for i, name in enumerate(convs):
            g = F.relu(_conv(g, params[f"{name}.weight"], params[f"{name}.bias"], groups=x.shape[0] if i == 0 else None))
            if i % 2 == 1:
                g = _pool(g)
        return _dense_head(params, _from_grouped(g, models), ["fc1", "fc2", "output"])

    return Network(arch, specs, forward, image_like=True, eval_chunk=250)


@architecture("conv-2", "2 conv + 3 fc layers (the paper's Conv-2; width-scaled)", needs_image=True)
def conv2(input_shape, num_classes, hidden=None, width=None) -> Network:
    return _conv_net("conv-2", 1, input_shape, num_classes, width)


@architecture("conv-4", "4 conv + 3 fc layers (the paper's Conv-4; width-scaled)", needs_image=True)
def conv4(input_shape, num_classes, hidden=None, width=None) -> Network:
    return _conv_net("conv-4", 2, input_shape, num_classes, width)


@architecture("conv-6", "6 conv + 3 fc layers (the paper's Conv-6; width-scaled)", needs_image=True)
def conv6(input_shape, num_classes, hidden=None, width=None) -> Network:
    return _conv_net("conv-6", 3, input_shape, num_classes, width)


# ---- a small residual net -----------------------------------------------------

@architecture("resnet-8", "residual net: stem + 3 basic blocks (16/32/64 channels × width) + batch norm", needs_image=True)
def resnet8(input_shape, num_classes, hidden=None, width=None) -> Network:
    width = default_width("resnet-8") if width is None else width
    c, h, w = _spatial(input_shape)
    kernel = (3, 3) if h > 1 else (1, 3)
    specs: list[ParamSpec] = []
    buffers: list[tuple[str, tuple[int, ...], float]] = []

    def conv_bn(name: str, c_in: int, c_out: int, k: tuple[int, int], positions: int) -> None:
        specs.extend(_conv_spec(name, c_in, c_out, k, bias=False, positions=positions))
        specs.extend([ParamSpec(f"{name}.bn.weight", (c_out,), "norm"), ParamSpec(f"{name}.bn.bias", (c_out,), "norm")])
        buffers.extend([(f"{name}.bn.mean", (c_out,), 0.0), (f"{name}.bn.var", (c_out,), 1.0)])

    widths = [max(1, round(16 * m * width)) for m in (1, 2, 4)]
    conv_bn("stem", c, widths[0], kernel, h * w)
    plan = []  # (block name, stride, has shortcut conv)
    channels = widths[0]
    for i, out in enumerate(widths):
        stride = 1 if i == 0 else 2
        name = f"block{i + 1}"
        if stride == 2:
            h, w = (h + 1) // 2 if h > 1 else h, (w + 1) // 2
        conv_bn(f"{name}.conv1", channels, out, kernel, h * w)
        conv_bn(f"{name}.conv2", out, out, kernel, h * w)
        shortcut = stride != 1 or channels != out
        if shortcut:
            conv_bn(f"{name}.shortcut", channels, out, (1, 1), h * w)
        plan.append((name, stride, shortcut))
        channels = out
    specs += _fc_spec("output", channels, num_classes, kind="output")

    def cbn(g, params, buffers_, name, train, stride=1, groups=None):
        return _norm(_conv(g, params[f"{name}.weight"], None, stride, groups), params, buffers_, f"{name}.bn", train)

    def forward(net: Network, params: Params, buffers_: Params, x: torch.Tensor, train: bool) -> torch.Tensor:
        models = params["output.weight"].shape[0]
        g = F.relu(cbn(_to_grouped(x), params, buffers_, "stem", train, groups=x.shape[0]))
        for name, stride, shortcut in plan:
            out = F.relu(cbn(g, params, buffers_, f"{name}.conv1", train, stride))
            out = cbn(out, params, buffers_, f"{name}.conv2", train)
            skip = cbn(g, params, buffers_, f"{name}.shortcut", train, stride) if shortcut else g
            g = F.relu(out + skip)
        pooled = g.mean(dim=(2, 3))  # (B, V*C)
        pooled = pooled.reshape(pooled.shape[0], models, -1).transpose(0, 1)
        return _linear(pooled, params["output.weight"], params["output.bias"])

    return Network("resnet-8", specs, forward, buffer_specs=buffers, image_like=True, eval_chunk=250)
