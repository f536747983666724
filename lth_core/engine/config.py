"""The experiment configuration: one frozen dataclass, validated with messages that name the field."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
from dataclasses import dataclass, field, fields
from typing import Any

from lth_core.engine.criteria import CRITERIA, DEFAULT_CRITERION, help_text as criteria_help
from lth_core.engine.errors import ConfigError
from lth_core.engine.variants import CONTROLS, TICKET, help_text as controls_help

SCHEDULES = ("iterative", "one-shot")
SCOPES = ("layerwise", "global")
OPTIMIZERS = ("adam", "sgd")
LR_SCHEDULES = ("constant", "step", "cosine")
KEEP_TRAINED_RESETS = ("none", "lr-rewind")  # the next round starts from the trained weights
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_LR = {"adam": 1.2e-3, "sgd": 0.05}
MAX_ROUNDS = 60


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that defines a run. Field names are also the CLI flags (`--prune-rate` ...)."""

    # what to train
    dataset: str = field(default="mnist-5k", metadata={"help": "dataset name, or csv:PATH, idx:DIR, cifar10:DIR, npz:PATH"})
    label_col: str | None = field(default=None, metadata={"help": "label column of a csv: dataset (default: 'label', else the last column)"})
    arch: str = field(default="lenet-300-100", metadata={"help": "architecture"})
    hidden: tuple[int, ...] | None = field(default=None, metadata={"help": "hidden sizes of mlp, e.g. 300,100"})
    width: float | None = field(default=None, metadata={"help": "width multiplier of conv/resnet channels (default: 0.25 for conv-*, 0.5 for resnet-8)"})
    # how to prune
    schedule: str = field(default="iterative", metadata={"help": "iterative (prune a little each round) or one-shot (straight to the target)"})
    prune_rate: float = field(default=0.2, metadata={"help": "fraction of remaining weights pruned per round, in (0, 1)"})
    rounds: int | None = field(default=None, metadata={"help": "pruning rounds after the dense round 0 (default: 5)"})
    target_remaining: float | None = field(default=None, metadata={"help": "prune until this fraction of weights remains, in (0, 1); sets rounds"})
    scope: str = field(default="layerwise", metadata={"help": "layerwise (each layer by its rate) or global (one threshold across hidden layers)"})
    criterion: str = field(default=DEFAULT_CRITERION, metadata={"help": "how weights are scored for keeping; " + criteria_help()})
    rate_fc: float | None = field(default=None, metadata={"help": "rate for fully connected layers (default: prune_rate; with scope global only 0, to leave them out)"})
    rate_conv: float | None = field(default=None, metadata={"help": "rate for conv layers (default: prune_rate; with scope global only 0, to leave them out)"})
    rate_output: float | None = field(default=None, metadata={"help": "rate for the output layer (default: prune_rate / 2)"})
    reset: str = field(default="init", metadata={"help": "init (original init), rewind:K (values at iteration K of the dense run), "
                                                         "none (fine-tune the trained weights at the schedule's final learning rate), "
                                                         "lr-rewind (keep the trained weights, replay the learning-rate schedule; Renda et al. 2020)"})
    controls: tuple[str, ...] = field(default=(), metadata={"help": "controls trained every round, comma-separated; " + controls_help()})
    trials: int = field(default=1, metadata={"help": "independent seeds"})
    seed: int = field(default=0, metadata={"help": "seed of the data split, inits and data order"})
    # how to train
    optimizer: str = field(default="adam", metadata={"help": "adam or sgd (momentum)"})
    lr: float | None = field(default=None, metadata={"help": "learning rate (default: 1.2e-3 for adam, 0.05 for sgd)"})
    lr_schedule: str = field(default="constant", metadata={"help": "learning rate over a round: constant, step (×0.1 at half and at three "
                                                                     "quarters of the round) or cosine (down to lr/100)"})
    warmup: int = field(default=0, metadata={"help": "iterations of linear learning-rate warm-up at the start of every round"})
    momentum: float = field(default=0.9, metadata={"help": "momentum of sgd"})
    weight_decay: float = field(default=0.0, metadata={"help": "L2 weight decay"})
    batch_size: int = field(default=60, metadata={"help": "examples per step"})
    epochs: float | None = field(default=None, metadata={"help": "training budget per round in epochs (default: 3)"})
    iterations: int | None = field(default=None, metadata={"help": "training budget per round in iterations (instead of epochs)"})
    eval_every: int | None = field(default=None, metadata={"help": "evaluate every N iterations (default: about 15 points a round)"})
    device: str = field(default="auto", metadata={"help": "auto (CUDA when present), cpu or cuda"})

    # ---- derived values -------------------------------------------------
    @property
    def rate_for(self) -> dict[str, float]:
        """Per-layer-type pruning rate, with the documented defaults filled in."""
        return {
            "fc": self.prune_rate if self.rate_fc is None else self.rate_fc,
            "conv": self.prune_rate if self.rate_conv is None else self.rate_conv,
            "output": self.prune_rate / 2 if self.rate_output is None else self.rate_output,
        }

    @property
    def learning_rate(self) -> float:
        return DEFAULT_LR[self.optimizer] if self.lr is None else self.lr

    @property
    def keeps_trained(self) -> bool:
        """The next round starts from this round's trained weights (reset none or lr-rewind)."""
        return self.reset in KEEP_TRAINED_RESETS

    @property
    def rewind_iteration(self) -> int | None:
        """K of `rewind:K`, else None."""
        if not self.reset.startswith("rewind:"):
            return None
        try:
            return int(self.reset.split(":", 1)[1])
        except ValueError:
            raise ConfigError("reset", f"rewind:K needs a whole number of iterations K, e.g. rewind:50; got {self.reset!r}") from None

    @property
    def variants(self) -> tuple[str, ...]:
        return (TICKET,) + tuple(c for c in CONTROLS if c in self.controls)  # the registry's order

    # ---- (de)serialisation ----------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for key in ("hidden", "controls"):
            if d[key] is not None:
                d[key] = list(d[key])
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ExperimentConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(unknown[0], f"unknown setting; known settings are {', '.join(sorted(known))}")
        return cls(**{k: _coerce(k, v) for k, v in data.items()}).validated()

    def replace(self, **changes: Any) -> "ExperimentConfig":
        return dataclasses.replace(self, **{k: _coerce(k, v) for k, v in changes.items()}).validated()

    def config_id(self) -> str:
        """Stable short id from the content (same settings → same id)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:10]

    # ---- validation -------------------------------------------------------
    def validated(self) -> "ExperimentConfig":
        """Return self if every field is in range, else raise ConfigError naming the first bad field."""
        for f in fields(self):
            _check_type(f.name, getattr(self, f.name))
        _choice("schedule", self.schedule, SCHEDULES)
        _choice("scope", self.scope, SCOPES)
        _choice("criterion", self.criterion, tuple(CRITERIA))
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _int_range("warmup", self.warmup, 0, 10_000_000)
        _choice("device", self.device, DEVICES)
        _open_unit("prune_rate", self.prune_rate)
        for name in ("rate_fc", "rate_conv", "rate_output"):
            value = getattr(self, name)
            if value is not None and not (0 <= value < 1):
                raise ConfigError(name, f"must be in [0, 1) (0 = do not prune); got {value}")
        if self.scope == "global":  # the hidden layers share one threshold, set by prune_rate
            for name in ("rate_fc", "rate_conv"):
                value = getattr(self, name)
                if value not in (None, 0, self.prune_rate):
                    raise ConfigError(name, f"with scope global the hidden layers are pruned together at prune_rate; "
                                            f"{name} can only be 0 there (to leave those layers out) or equal to "
                                            f"prune_rate; got {value:g}")
        if self.rounds is not None and self.target_remaining is not None:
            raise ConfigError("rounds", "give rounds or target_remaining, not both")
        if self.rounds is not None and not (0 <= self.rounds <= MAX_ROUNDS):
            raise ConfigError("rounds", f"must be between 0 and {MAX_ROUNDS}; got {self.rounds}")
        if self.target_remaining is not None:
            _open_unit("target_remaining", self.target_remaining)
        if not (self.reset in ("init", *KEEP_TRAINED_RESETS) or self.reset.startswith("rewind:")):
            raise ConfigError("reset", f"must be init, none, lr-rewind or rewind:K with K ≥ 0 iterations; got {self.reset!r}")
        if self.rewind_iteration is not None and self.rewind_iteration < 0:
            raise ConfigError("reset", f"rewind iteration must be ≥ 0; got {self.rewind_iteration}")
        for c in self.controls:
            _choice("controls", c, CONTROLS)
        _int_range("trials", self.trials, 1, 20)
        _int_range("seed", self.seed, 0, 2**31 - 1)
        _int_range("batch_size", self.batch_size, 1, 65536)
        if self.lr is not None and not (0 < self.lr <= 10):
            raise ConfigError("lr", f"must be in (0, 10]; got {self.lr}")
        if not (0 <= self.momentum < 1):
            raise ConfigError("momentum", f"must be in [0, 1); got {self.momentum}")
        if not (0 <= self.weight_decay < 1):
            raise ConfigError("weight_decay", f"must be in [0, 1); got {self.weight_decay}")
        if self.epochs is not None and self.iterations is not None:
            raise ConfigError("epochs", "give epochs or iterations, not both")
        if self.epochs is not None and not (0 < self.epochs <= 1000):
            raise ConfigError("epochs", f"must be in (0, 1000]; got {self.epochs}")
        if self.iterations is not None:
            _int_range("iterations", self.iterations, 1, 10_000_000)
        if self.eval_every is not None:
            _int_range("eval_every", self.eval_every, 1, 10_000_000)
        if self.width is not None and not (0 < self.width <= 4):
            raise ConfigError("width", f"must be in (0, 4]; got {self.width}")
        if self.hidden is not None:
            if not self.hidden or any(h < 1 or h > 100_000 for h in self.hidden):
                raise ConfigError("hidden", f"must be 1 to 8 sizes between 1 and 100000, e.g. 300,100; got {self.hidden}")
            if len(self.hidden) > 8:
                raise ConfigError("hidden", "at most 8 hidden layers")
        return self

    @property
    def num_rounds_requested(self) -> int | None:
        """Rounds when given directly (default 5 when neither rounds nor target is set)."""
        if self.target_remaining is not None:
            return None
        return 5 if self.rounds is None else self.rounds


# settings of which a config gives one or the other: a flag --target-remaining replaces a file's "rounds",
# --iterations its "epochs" (and the other way round); so does a sweep's grid
EITHER_OR = (("rounds", "target_remaining"), ("epochs", "iterations"))


def override_settings(data: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Settings `data` (a preset, a config file, a base config) with `new` on top; a setting replaces the
    other half of its EITHER_OR pair."""
    data = dict(data)
    for a, b in EITHER_OR:
        if a in new and b not in new:
            data.pop(b, None)
        elif b in new and a not in new:
            data.pop(a, None)
    return {**data, **new}


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(name, f"must be one of {', '.join(allowed)}; got {value!r}")


def _open_unit(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or math.isnan(value) or not (0 < value < 1):
        raise ConfigError(name, f"must be in (0, 1); got {value}")


def _int_range(name: str, value: Any, lo: int, hi: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not (lo <= value <= hi):
        raise ConfigError(name, f"must be a whole number from {lo} to {hi}; got {value!r}")


_FIELD_TYPES = {f.name: str(f.type) for f in fields(ExperimentConfig)}


def _kind(name: str) -> str:
    """'int', 'float', 'str', 'ints' or 'strs' (a tuple of them), from the field's annotation."""
    kind = _FIELD_TYPES[name]
    if kind.startswith("tuple"):
        return "ints" if kind.startswith("tuple[int") else "strs"
    return kind.split(" ")[0]


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_type(name: str, value: Any) -> None:
    """The field holds what its annotation says (None where optional). Strict, so a config that passes
    is also one every reader of the store can read back: no True for 1, no 2.5 rounds, no [1] as a rate."""
    if value is None and "None" in _FIELD_TYPES[name]:
        return
    kind = _kind(name)
    ok = {"int": _is_whole, "float": _is_number, "str": lambda v: isinstance(v, str),
          "ints": lambda v: isinstance(v, tuple) and all(_is_whole(x) for x in v),
          "strs": lambda v: isinstance(v, tuple) and all(isinstance(x, str) for x in v)}[kind](value)
    if not ok:
        raise ConfigError(name, f"expected {_WANTED[kind]}; got {value!r}")


_WANTED = {"int": "a whole number", "float": "a number", "str": "text",
           "ints": "comma-separated whole numbers, e.g. 300,100", "strs": "comma-separated names, e.g. reinit,random"}


def _whole(name: str, value: Any) -> Any:
    """A whole number from an int, a float without a fraction (5.0) or its text ('5'); else ConfigError."""
    if isinstance(value, bool):
        raise ConfigError(name, f"expected a whole number; got {value!r}")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, numbers.Integral):  # numpy's ints too
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise ConfigError(name, f"cannot read {value!r}; expected a whole number") from None
    if not isinstance(value, int):
        raise ConfigError(name, f"expected a whole number; got {value!r}")
    return value


def _coerce(name: str, value: Any) -> Any:
    """Accept JSON / CLI spellings: lists for tuples, '300,100' strings, ints for floats, 5.0 for 5.
    Anything else (True for a number, 2.5 rounds, a list for a rate) is a ConfigError naming the field."""
    if name not in _FIELD_TYPES:
        raise ConfigError(name, "unknown setting")
    if value is None:
        return None
    kind = _kind(name)
    if kind == "str" and not isinstance(value, str):
        raise ConfigError(name, f"expected text, e.g. {getattr(ExperimentConfig, name, None) or 'a name'!r}; got {value!r}")
    if kind in ("ints", "strs"):
        if not isinstance(value, (str, list, tuple)):
            raise ConfigError(name, f"expected {_WANTED[kind]}; got {value!r}")
        items = value.split(",") if isinstance(value, str) else list(value)
        items = [s.strip() if isinstance(s, str) else s for s in items if s != ""]
        if kind == "ints":
            try:
                return tuple(_whole(name, s) for s in items)
            except ConfigError:
                raise ConfigError(name, f"expected {_WANTED[kind]}; got {value!r}") from None
        if not all(isinstance(s, str) for s in items):
            raise ConfigError(name, f"expected {_WANTED[kind]}; got {value!r}")
        return tuple(items)
    if kind == "int":
        return _whole(name, value)
    if kind == "float":
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise ConfigError(name, f"cannot read {value!r}; expected a number") from None
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ConfigError(name, f"expected a number; got {value!r}")
        return float(value)
    return value
