"""Presets: named experiments that fill the New experiment form (and `run --preset NAME`) in one click.

A preset is data: the ExperimentConfig settings it changes, a sentence saying what to expect and the
page to look at afterwards. A preset with a `grid` is a sweep: `sweep --preset NAME` and the Sweep page run its
grid over the settings (New experiment fills its base, one cell). Every setting a preset leaves out is the engine's default
(`engine_defaults`), so the form, the CLI and config.json agree on it. The form opens on FORM_START.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from lth_core.engine.config import ExperimentConfig
from lth_core.engine.errors import ConfigError
from lth_core.engine.lottery import DEFAULT_EPOCHS
from lth_core.engine.models import ARCHITECTURES, DEFAULT_HIDDEN, default_width


@dataclass(frozen=True)
class Preset:
    name: str            # short id: `run --preset NAME`, the form's button key
    title: str           # the button's label
    expect: str          # one or two sentences: what to expect, which page to look at afterwards
    page: str            # the app page named in `expect` (a key of ui.widgets.PAGES)
    settings: dict[str, Any] = field(default_factory=dict)  # ExperimentConfig settings; the rest: engine defaults
    grid: tuple[tuple[str, tuple[str, ...]], ...] = ()  # a sweep's axes: (field, values as on the command line)

    def grid_args(self) -> list[str]:
        """The grid as `sweep --grid` values: ["reset=init,rewind:20"]."""
        return [f"{name}={','.join(values)}" for name, values in self.grid]

    def config(self, **changes: Any) -> ExperimentConfig:
        """The preset's ExperimentConfig (validated), with `changes` on top (a scaled-down test run, say)."""
        data = {**self.settings, **changes}
        for a, b in (("rounds", "target_remaining"), ("epochs", "iterations")):  # a change replaces its pair
            if b in changes and a not in changes:
                data.pop(a, None)
        return ExperimentConfig.from_dict(data)


_PAPER = {"dataset": "mnist-5k", "arch": "lenet-300-100", "schedule": "iterative", "prune_rate": 0.2,
          "rounds": 12, "epochs": 2.0, "reset": "init", "controls": ("reinit", "random"), "trials": 2}

PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("paper-lenet", "The paper's LeNet experiment", page="compare", settings=_PAPER, expect=(
        "LeNet-300-100 on 5,000 MNIST digits, 20 % pruned a round for 12 rounds (down to about 7 % of the "
        "weights), reset to the original init, with both controls and 2 trials; under a minute. On **Compare**, "
        "the ticket keeps about 91–92 % in the last rounds while reinit and the random mask fall to about 84–87 %.")),
    Preset("fine-tune", "Fine-tuning instead of resetting", page="results",
           settings={**_PAPER, "reset": "none", "controls": ()}, expect=(
        "The same pruning, but the survivors keep their trained values and are trained on (no reset). Run the "
        "paper's LeNet experiment too, then choose both runs on **Results** to overlay them: the fine-tuned net "
        "against the ticket.")),
    Preset("one-shot", "One-shot against iterative", page="results",
           settings={**_PAPER, "schedule": "one-shot", "controls": ("reinit",)}, expect=(
        "Train once, prune straight to about 7 % of the weights, retrain. Choose it and the paper's LeNet "
        "experiment on **Results** to overlay them: the paper finds iterative pruning keeps accuracy to smaller "
        "sizes than one-shot.")),
    Preset("conv-digits", "A conv net on MNIST", page="compare",
           settings={"dataset": "mnist-5k", "arch": "conv-2", "rounds": 6, "epochs": 1.0,
                     "controls": ("reinit",), "trials": 1}, expect=(
        "The paper's Conv-2 (narrow, for a CPU) on 5,000 MNIST digits, conv layers pruned like the rest; "
        "slower than the MLPs (the estimate below the form says how much). On **Compare**, the ticket against "
        "reinit as the net shrinks to about a quarter.")),
    Preset("mnist1d", "MNIST-1D, where the ticket beats the dense net", page="results",
           settings={"dataset": "mnist1d", "arch": "mlp", "hidden": (500,), "rounds": 10, "epochs": 15.0,
                     "controls": ("random",), "trials": 2}, expect=(
        "An MLP with one hidden layer of 500 on the 40-point MNIST-1D sequences, pruned to about 16 %; a minute "
        "or two. On **Results**, the ticket's accuracy rises a point or two above the dense net's (round 0) in "
        "the middle rounds while the random mask falls away; **Masks** shows the first layer's masks.")),
    Preset("rewind", "Rewinding to iteration K", page="results",
           settings={**_PAPER, "reset": "rewind:20", "controls": ("reinit",)}, expect=(
        "Survivors go back to their values at iteration 20 of the dense run instead of iteration 0 (what makes "
        "tickets appear in deep nets). Choose it and the paper's LeNet experiment on **Results** to overlay them.")),
    Preset("reset-comparison", "Which reset: init, rewind, fine-tune or LR rewinding", page="sweep",
           settings={**_PAPER, "controls": (), "lr_schedule": "cosine"},
           grid=(("reset", ("init", "rewind:20", "none", "lr-rewind")),), expect=(
        "A sweep of four runs of the paper's LeNet experiment (cosine learning rate, so that fine-tuning and LR "
        "rewinding differ), one per reset: the original init, rewinding to iteration 20, fine-tuning the trained "
        "weights at the final rate (`none`) and replaying the whole schedule (`lr-rewind`, Renda et al. 2020). The "
        "paper's order is LR rewinding ≥ weight rewinding > fine-tuning. Launch it on **Sweep** (or `python -m "
        "lth_core sweep --preset reset-comparison`) and read the cells' accuracy at a share of the weights there.")),
    Preset("instability", "When does training become stable?", page="stability",
           settings={"dataset": "mnist-5k", "arch": "mlp", "hidden": (32, 32, 32, 32), "lr": 0.005, "rounds": 8,
                     "epochs": 2.0, "controls": ("reinit", "random"), "trials": 1}, expect=(
        "A narrow, deep MLP (four hidden layers of 32) at Adam's lr 0.005, pruned for 8 rounds: a network that is "
        "unstable at initialisation. Then open **Stability** and press Analyse: two copies made at iteration 0 "
        "end in different basins (an error barrier of tens of points), copies made a few iterations later in the "
        "same one, and the page offers a run rewound to that iteration.")),
    Preset("prune-further", "Prune until the ticket breaks", page="compare", settings={**_PAPER, "rounds": 20},
           expect=(
        "The paper's LeNet experiment pruned for 20 rounds instead of 12, down to about 1.2 % of the weights; a few "
        "minutes. On **Compare**, the gap bars show where the ticket falls more than 1 point below the dense network "
        "(in the paper, beyond about 3.6 % of the weights): in a run of it the ticket left the tolerance at about "
        "5–7 % and kept about 84.5 % at 1.2 %, against 67 % for reinit and 43 % for the random mask.")),
    Preset("learn-faster", "Tickets learn faster", page="results",
           settings={**_PAPER, "rounds": 8, "epochs": 6.0, "trials": 1}, expect=(
        "6 epochs a round, long enough for the validation loss to turn up again, so early stopping happens "
        "(with 2 epochs every variant's lowest loss falls on the last evaluation). On **Results**, look at the "
        "early-stopping iteration: in the later rounds the ticket's comes sooner (about iteration 120–240) "
        "than the controls' (about 310–350).")),
)}

FORM_START = "paper-lenet"  # the preset the New experiment form opens on
FURTHER = "prune-further"  # the preset the guided tour offers when its run's ticket does not break


def engine_defaults(arch: str | None = None) -> dict[str, Any]:
    """Every setting of the form as the engine fills it in when it is left out, for `arch`
    (default: the engine's default architecture): ExperimentConfig's fields and derived values."""
    base = ExperimentConfig()
    arch = base.arch if arch is None else arch
    if arch not in ARCHITECTURES:
        raise ConfigError("arch", f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    out = {f.name: getattr(base, f.name) for f in fields(ExperimentConfig)}
    out.update(arch=arch, rounds=base.num_rounds_requested, epochs=DEFAULT_EPOCHS,
               hidden=tuple(DEFAULT_HIDDEN) if arch == "mlp" else None,
               width=default_width(arch) if ARCHITECTURES[arch].needs_image else None)
    return out


def form_start(preset: str = FORM_START) -> dict[str, Any]:
    """The form's settings for `preset`: the preset's own, the engine's defaults for the rest."""
    p = PRESETS[preset]
    arch = p.settings.get("arch", ExperimentConfig().arch)
    return {**engine_defaults(arch), **p.settings}
