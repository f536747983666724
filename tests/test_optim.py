"""The engine's fused optimizer gives exactly the numbers of torch.optim's fused Adam and SGD."""
import pytest
import torch

from lth_core.optim import FusedOptimizer


@pytest.mark.parametrize("kind, kwargs", [
    ("adam", dict(lr=1.2e-3, weight_decay=0.0)),
    ("adam", dict(lr=1e-2, weight_decay=1e-4)),
    ("sgd", dict(lr=0.05, weight_decay=0.0, momentum=0.9)),
    ("sgd", dict(lr=0.05, weight_decay=5e-4, momentum=0.0)),
])
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
    for _ in range(6):
        for params, o in ((ours, opt), (theirs, ref)):
            o.zero_grad()
            loss = (torch.tanh(torch.bmm(x, params[0].transpose(1, 2)) + params[1].unsqueeze(1)) ** 2).sum()
            loss.backward()
            o.step()
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)
    assert not torch.equal(ours[0], start[0])  # it did train
