"""The engine's optimizer is torch.optim's public functional API, with exactly the numbers of torch.optim's
fused Adam and SGD classes, and without the 1.4 s import of torch._dynamo that the classes cost."""
import subprocess
import sys

import pytest
import torch
from torch.optim.adam import adam as public_adam
from torch.optim.sgd import sgd as public_sgd

import lth_core.engine.optim
from lth_core.engine.optim import FusedOptimizer

CASES = [
    ("adam", dict(lr=1.2e-3, weight_decay=0.0)),
    ("adam", dict(lr=1e-2, weight_decay=1e-4)),
    ("sgd", dict(lr=0.05, weight_decay=0.0, momentum=0.9)),
    ("sgd", dict(lr=0.05, weight_decay=5e-4, momentum=0.0)),
]


def _train(opt, params, x, steps=6):
    for _ in range(steps):
        opt.zero_grad()
        loss = (torch.tanh(torch.bmm(x, params[0].transpose(1, 2)) + params[1].unsqueeze(1)) ** 2).sum()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("kind, kwargs", CASES)
def test_fused_optimizer_matches_torch_optim_bit_for_bit(kind, kwargs):
    gen = torch.Generator().manual_seed(0)
    start = [torch.randn(3, 20, 7, generator=gen), torch.randn(3, 20, generator=gen)]
    ours = [p.clone().requires_grad_(True) for p in start]
    theirs = [p.clone().requires_grad_(True) for p in start]
    opt = FusedOptimizer(ours, kind, **kwargs)
    if kind == "adam":
        ref = torch.optim.Adam(theirs, fused=True, **kwargs)
    else:
        ref = torch.optim.SGD(theirs, fused=True, **kwargs)
    x = torch.randn(3, 5, 7, generator=gen)
    _train(opt, ours, x)
    _train(ref, theirs, x)
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)
    assert not torch.equal(ours[0], start[0])  # it did train


@pytest.mark.parametrize("kind, kwargs", CASES)
def test_every_step_goes_through_torch_optims_public_functional_api(kind, kwargs, monkeypatch):
    public = {"adam": public_adam, "sgd": public_sgd}[kind]
    calls = []

    def counted(*args, **kw):
        calls.append(kw.get("fused"))
        return public(*args, **kw)

    monkeypatch.setattr(lth_core.engine.optim, kind, counted)
    params = [torch.randn(2, 4, 3).requires_grad_(True), torch.randn(2, 4).requires_grad_(True)]
    _train(FusedOptimizer(params, kind, **kwargs), params, torch.randn(2, 5, 3), steps=3)
    assert calls == [True] * 3


def test_training_does_not_import_torch_dynamo():
    code = ("import sys, torch\n"
            "from lth_core.engine.optim import FusedOptimizer\n"
            "for kind in ('adam', 'sgd'):\n"
            "    p = [torch.ones(2, 3, requires_grad=True)]\n"
            "    opt = FusedOptimizer(p, kind, lr=0.1, momentum=0.9 if kind == 'sgd' else 0.0)\n"
            "    p[0].sum().backward(); opt.step()\n"
            "print('torch._dynamo' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
