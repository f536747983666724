"""What each round trains: the ticket and its controls. One registry entry per variant.

An entry says how the variant reads (a label for legends, a short name for tables, a phrase for
sentences, a colour, a line style and a marker, a one-line explanation for newcomers) and how its
starting weights and its mask are made from a trial's state (`start`). The engine, the CLI, the
plots, the summaries, the form and the pages all read this table, in its order.

Adding one: write its `start` function, add an entry to VARIANTS (a control, i.e. anything but
the ticket, becomes a choice of `--controls` and of the form), and add a test of what it starts
from (tests/test_variants.py).

The ticket's name follows the reset mode: with `reset init` it is the winning ticket, with
`rewind:K` a ticket rewound to iteration K, and with `reset none` (or `lr-rewind`) it is not a ticket
at all but a pruned and fine-tuned network. `label`, `short` and `phrase` say which.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

import torch

Params = dict[str, torch.Tensor]
Mask = dict[str, torch.Tensor]


def generator(seed: int, *parts: object) -> torch.Generator:
    """A generator seeded from (seed, parts): independent streams that a resumed run can recreate."""
    digest = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


@dataclass(frozen=True)
class StartContext:
    """What a variant's start is made from: one trial's state at the start of round `round`."""

    ticket_mask: Mask                     # the ticket's mask this round (all ones in round 0)
    reset_point: Params                   # the ticket's starting weights: init, rewind point or trained weights
    init: Params                          # the original initial weights w₀ of this trial
    fresh_init: Callable[[torch.Generator], Params]  # a new random init of the same network
    seed: int
    trial: int
    round: int
    inverted_mask: Mask | None = None     # the criterion's scores inverted (the highest pruned instead of the
                                          # lowest) at the ticket's counts; filled when "inverted" is trained

    def generator(self, purpose: str) -> torch.Generator:
        """The stream for `purpose` in this trial and round (the same on every rerun and resume)."""
        return generator(self.seed, self.trial, self.round, purpose)


Start = Callable[[StartContext], tuple[Mask, Params]]


@dataclass(frozen=True)
class Variant:
    name: str
    label: str            # in legends, with reset init
    short: str            # in table headers and several-run legends
    phrase: str           # in a sentence: "At 7 % of weights the ticket reaches ..."
    color: str
    dash: str             # Plotly line style when several runs share a figure (colour = run there)
    symbol: str           # Plotly marker when several runs share a figure
    explanation: str      # one line for newcomers: the form's help, --help, the legends' notes
    start: Start          # (mask, starting weights) of this round
    fresh_start: bool = False  # starts from weights drawn anew each round, which the store does not keep


def _ticket(c: StartContext) -> tuple[Mask, Params]:
    return c.ticket_mask, c.reset_point


def _reinit(c: StartContext) -> tuple[Mask, Params]:
    return c.ticket_mask, c.fresh_init(c.generator("reinit"))


def _random(c: StartContext) -> tuple[Mask, Params]:
    from lth_core.engine import pruning  # here, not on top: pruning imports config, which reads this registry

    return pruning.random_mask_like(c.ticket_mask, c.generator("random")), c.reset_point


def _reinit_signs(c: StartContext) -> tuple[Mask, Params]:
    # fresh magnitudes, the original init's signs (Zhou et al. 2019); a zero of the init (biases) stays the
    # fresh value's magnitude, which is zero there too
    fresh = c.fresh_init(c.generator("reinit-signs"))
    return c.ticket_mask, {n: torch.copysign(p.abs(), c.init[n]) for n, p in fresh.items()}


def _inverted(c: StartContext) -> tuple[Mask, Params]:
    if c.inverted_mask is None:  # a runner bug, not bad input: the runner computes it when "inverted" is trained
        raise ValueError("the inverted control needs the inverted mask, which the runner did not supply")
    return c.inverted_mask, c.reset_point


_SHUFFLE = ("the layer-wise shuffle of the ticket's mask, the control of Frankle et al. 2021 (it keeps each "
            "layer's count of weights and the original init, and only moves which positions survive)")

VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("ticket", "winning ticket", "ticket", "the ticket", "#0072B2", "solid", "circle",
            "the pruned mask, trained again from the original init (or the rewind point)", _ticket),
    Variant("reinit", "reinit (same mask, new init)", "reinit", "reinit", "#E69F00", "dash", "square",
            "the ticket's mask with new random starting weights", _reinit, fresh_start=True),
    Variant("random", "random mask", "random mask", "a random mask", "#009E73", "dashdot",
            "diamond", _SHUFFLE, _random),
    Variant("reinit-signs", "reinit, original signs", "reinit signs", "reinit with the original signs", "#CC79A7",
            "longdash", "triangle-up",
            "the ticket's mask with new random magnitudes but the original init's signs (Zhou et al. 2019): "
            "close to the ticket means the ticket mostly remembers which way each weight starts (the random mask, "
            "another control, keeps the original init and moves the mask instead)", _reinit_signs, fresh_start=True),
    Variant("inverted", "inverted scores", "inverted", "the inverted mask", "#D55E00", "longdashdot", "x",
            "the criterion's scores inverted: the last pruning step removes the highest-scoring weights instead of "
            "the lowest, to the same counts, from the same start (Frankle et al. 2021); for a one-shot or at-init "
            "prune that is the whole mask", _inverted),
)}
TICKET = "ticket"
CONTROLS: tuple[str, ...] = tuple(n for n in VARIANTS if n != TICKET)


def ordered(names) -> list[str]:
    """`names` in the registry's order (the ticket first); names not in the registry are left out."""
    given = set(names)
    return [n for n in VARIANTS if n in given]


# what the ticket is called under a reset other than init: (label, short, phrase), K filled in for rewind:K
_TICKET_NAMES = {
    "none": ("pruned + fine-tuned (no reset)", "fine-tuned", "the pruned and fine-tuned network"),
    "lr-rewind": ("pruned + fine-tuned (learning rate rewound)", "fine-tuned (lr rewind)",
                  "the pruned network fine-tuned with its learning rate rewound"),
    "rewind": ("ticket rewound to iteration {k}", "ticket (rewind {k})", "the ticket rewound to iteration {k}"),
}


def _named(name: str, reset: str, which: int) -> str:
    if name == TICKET:
        kind, _, k = reset.partition(":")
        if kind in _TICKET_NAMES:
            return _TICKET_NAMES[kind][which].format(k=k)
    v = VARIANTS[name]
    return (v.label, v.short, v.phrase)[which]


def label(name: str, reset: str = "init") -> str:
    """The legend label of `name` in a run with reset mode `reset` (init, rewind:K, none)."""
    return _named(name, reset, 0)


def short(name: str, reset: str = "init") -> str:
    """The short name of `name` (table headers, several runs in one legend)."""
    return _named(name, reset, 1)


def phrase(name: str, reset: str = "init") -> str:
    """How `name` reads in a sentence: 'the ticket', 'the pruned and fine-tuned network' ..."""
    return _named(name, reset, 2)


def help_text() -> str:
    """The controls and their explanations, for the config field's help."""
    return "; ".join(f"{n}: {VARIANTS[n].explanation}" for n in CONTROLS)
