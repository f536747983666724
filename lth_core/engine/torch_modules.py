"""Plain `torch.nn` models of the engine's architectures, for export and deployment.

The engine trains stacked functional networks (models.py); a user deploying a ticket wants an ordinary
`nn.Module`. Each architecture has one entry in `PLAIN_MODULES`: a builder that makes the module from
a *shapes* dict (parameter name → shape), so its state_dict keys are the engine's parameter names
(`fc1.weight`, `block1.conv1.bn.weight` ...) and it computes the engine's function. Because the sizes
come from the shapes, the same builder also makes the smaller network of `structured.py` (dead units
removed). A new architecture in models.py needs its entry here (tests/test_exports.py checks that every
architecture has one).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

from lth_core.engine.models import ARCHITECTURES, Network

Shapes = dict[str, tuple[int, ...]]
ModuleBuilder = Callable[[Shapes, tuple[int, ...]], nn.Module]
PLAIN_MODULES: dict[str, ModuleBuilder] = {}

BN_BUFFERS = {"mean": "running_mean", "var": "running_var"}  # engine buffer suffix → nn.BatchNorm2d name


def plain_module_builder(*archs: str):
    def register(fn: ModuleBuilder) -> ModuleBuilder:
        for arch in archs:
            PLAIN_MODULES[arch] = fn
        return fn
    return register


def build_plain(arch: str, shapes: Shapes, input_shape: tuple[int, ...]) -> nn.Module:
    """The plain module of `arch` with parameters of `shapes`, taking inputs (B, *input_shape)."""
    return PLAIN_MODULES[arch]({n: tuple(s) for n, s in shapes.items()}, tuple(input_shape))


def plain_from_engine(net: Network, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
                      input_shape: tuple[int, ...]) -> nn.Module:
    """One engine model (unstacked params and buffers) as a plain module in eval mode, same numbers."""
    module = build_plain(net.arch, {n: tuple(p.shape) for n, p in params.items()}, input_shape)
    module.load_state_dict(engine_state_dict(params, buffers), strict=True)
    return module.eval()


def engine_state_dict(params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The engine's parameter and batch-norm buffer names → the plain module's state_dict keys."""
    state = {n: p.detach().clone().float() for n, p in params.items()}
    for name, value in buffers.items():
        layer, stat = name.rsplit(".", 1)
        state[f"{layer}.{BN_BUFFERS[stat]}"] = value.detach().clone().float()
        state[f"{layer}.num_batches_tracked"] = torch.tensor(0)
    return state


def prunable_modules(module: nn.Module, prunable_weights: list[str]) -> list[tuple[nn.Module, str]]:
    """(submodule, "weight") of each prunable weight name, as `torch.nn.utils.prune` takes them."""
    return [(module.get_submodule(name.rsplit(".", 1)[0]), "weight") for name in prunable_weights]


def with_prune(module: nn.Module, prunable_weights: list[str]) -> nn.Module:
    """`module` with `prune.identity` applied to every prunable weight: it then has `weight_orig` and
    `weight_mask` and loads a state_dict in torch.nn.utils.prune's format."""
    for sub, name in prunable_modules(module, prunable_weights):
        prune.identity(sub, name)
    return module


# ---- fully connected ----------------------------------------------------------

class PlainMLP(nn.Module):
    """Flatten, then Linear + ReLU layers (fc1, fc2, ..., output). `input_index`, when set, keeps only
    those input features first (the structured net drops pixels no weight reads)."""

    def __init__(self, sizes: list[int], names: list[str], input_index: torch.Tensor | None = None) -> None:
        super().__init__()
        self.names = names
        for name, n_in, n_out in zip(names, sizes[:-1], sizes[1:]):
            self.add_module(name, nn.Linear(n_in, n_out))
        if input_index is not None:
            self.register_buffer("input_index", input_index)
        else:
            self.input_index = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(1)
        if self.input_index is not None:
            h = h.index_select(1, self.input_index)
        for i, name in enumerate(self.names):
            h = getattr(self, name)(h)
            if i < len(self.names) - 1:
                h = F.relu(h)
        return h


def _fc_names(shapes: Shapes) -> list[str]:
    hidden = sorted((n[:-len(".weight")] for n in shapes if n.startswith("fc") and n.endswith(".weight")),
                    key=lambda n: int(n[2:]))
    return hidden + ["output"]


@plain_module_builder("lenet-300-100", "mlp")
def _plain_mlp(shapes: Shapes, input_shape: tuple[int, ...]) -> nn.Module:
    names = _fc_names(shapes)
    sizes = [shapes[f"{names[0]}.weight"][1]] + [shapes[f"{n}.weight"][0] for n in names]
    index = shapes.get("input_index")
    return PlainMLP(sizes, names, None if index is None else torch.zeros(index, dtype=torch.long))


# ---- the paper's conv nets ----------------------------------------------------

def _padding(kernel: tuple[int, int]) -> tuple[int, int]:
    return kernel[0] // 2, kernel[1] // 2


def _as_image(x: torch.Tensor) -> torch.Tensor:
    """Sequences (B, C, L) become images of height 1, as the engine treats them."""
    return x.unsqueeze(2) if x.dim() == 3 else x


def _pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, (2 if x.shape[2] >= 2 else 1, 2))


class PlainConvNet(nn.Module):
    """conv1..convN (3×3, same padding, ReLU, 2×2 max pool after every second one), then fc1, fc2, output."""

    def __init__(self, shapes: Shapes) -> None:
        super().__init__()
        self.convs = sorted((n[:-len(".weight")] for n in shapes if n.startswith("conv") and n.endswith(".weight")),
                            key=lambda n: int(n[4:]))
        for name in self.convs:
            out, c_in, kh, kw = shapes[f"{name}.weight"]
            self.add_module(name, nn.Conv2d(c_in, out, (kh, kw), padding=_padding((kh, kw))))
        self.fcs = ["fc1", "fc2", "output"]
        for name in self.fcs:
            out, n_in = shapes[f"{name}.weight"]
            self.add_module(name, nn.Linear(n_in, out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = _as_image(x)
        for i, name in enumerate(self.convs):
            h = F.relu(getattr(self, name)(h))
            if i % 2 == 1:
                h = _pool(h)
        h = h.flatten(1)
        for i, name in enumerate(self.fcs):
            h = getattr(self, name)(h)
            if i < len(self.fcs) - 1:
                h = F.relu(h)
        return h


@plain_module_builder("conv-2", "conv-4", "conv-6")
def _plain_conv(shapes: Shapes, input_shape: tuple[int, ...]) -> nn.Module:
    return PlainConvNet(shapes)


# ---- resnet-8 -----------------------------------------------------------------

class ConvBN(nn.Conv2d):
    """A bias-free convolution followed by its batch norm (`name.weight`, `name.bn.*`, as in the engine).
    Sequences (height 1) are never strided along the height, as in the engine."""

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int], stride: int) -> None:
        super().__init__(c_in, c_out, kernel, stride=stride, padding=_padding(kernel), bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=1e-5, momentum=0.1)
        self.block_stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stride = (self.block_stride if x.shape[2] > 1 else 1, self.block_stride)
        return self.bn(F.conv2d(x, self.weight, None, stride, self.padding))


class PlainResNet(nn.Module):
    def __init__(self, shapes: Shapes) -> None:
        super().__init__()

        def conv_bn(name: str, stride: int) -> ConvBN:
            out, c_in, kh, kw = shapes[f"{name}.weight"]
            return ConvBN(c_in, out, (kh, kw), stride)

        self.stem = conv_bn("stem", 1)
        self.blocks = sorted({n.split(".")[0] for n in shapes if n.startswith("block")}, key=lambda n: int(n[5:]))
        for i, name in enumerate(self.blocks):
            stride = 1 if i == 0 else 2
            block = nn.Module()
            block.conv1 = conv_bn(f"{name}.conv1", stride)
            block.conv2 = conv_bn(f"{name}.conv2", 1)
            if f"{name}.shortcut.weight" in shapes:
                block.shortcut = conv_bn(f"{name}.shortcut", stride)
            self.add_module(name, block)
        out, n_in = shapes["output.weight"]
        self.output = nn.Linear(n_in, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = F.relu(self.stem(_as_image(x)))
        for name in self.blocks:
            block = getattr(self, name)
            out = block.conv2(F.relu(block.conv1(g)))
            skip = block.shortcut(g) if hasattr(block, "shortcut") else g
            g = F.relu(out + skip)
        return self.output(g.mean(dim=(2, 3)))


@plain_module_builder("resnet-8")
def _plain_resnet(shapes: Shapes, input_shape: tuple[int, ...]) -> nn.Module:
    return PlainResNet(shapes)


def missing_builders() -> list[str]:
    """Architectures of models.py without a plain module here (should be none)."""
    return [a for a in ARCHITECTURES if a not in PLAIN_MODULES]

