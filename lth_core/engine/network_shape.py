"""A run's network as data: its resolved config, its input and every parameter's shape.

The run store keeps one with each run (document "network", written when the run starts), so that a
page can show a stored run without loading its dataset or building its network: Masks needs the
input shape and a tabular set's column names, Compare's deployment counts each layer's outputs and
output positions.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from lth_core.engine.models import Network

FORMAT = 1  # bumped when a field changes meaning; an older document is then computed again


@dataclass(frozen=True)
class ParamShape:
    """One parameter of one model (a `models.ParamSpec`, without the builder's details)."""

    name: str                 # "fc1.weight"
    layer: str                # "fc1"
    kind: str                 # fc / conv / output (pruned), bias / norm (never pruned)
    shape: tuple[int, ...]
    outputs: int              # units (fc) or channels (conv) the layer produces: the weight's first axis
    positions: int = 1        # output positions each of them is computed at (conv: H×W; fc: 1)

    @property
    def prunable(self) -> bool:
        return self.kind in ("fc", "conv", "output")

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class NetworkShape:
    """What a page needs to know about a run's network and data, without either."""

    arch: str
    input_kind: str                           # image (C, H, W) / sequence (C, L) / tabular (F,)
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...]
    params: tuple[ParamShape, ...]
    config: dict[str, Any]                    # the resolved config (every default written out), as config.json
    feature_names: tuple[str, ...] | None = None   # tabular: a name per input column

    @classmethod
    def of(cls, net: Network, config: dict[str, Any], input_kind: str, input_shape: tuple[int, ...],
           class_names: tuple[str, ...], feature_names: tuple[str, ...] | None = None) -> "NetworkShape":
        params = tuple(ParamShape(s.name, s.layer, s.kind, tuple(s.shape), s.shape[0] if s.shape else 1, s.positions)
                       for s in net.specs)
        return cls(net.arch, input_kind, tuple(input_shape), tuple(class_names), params, dict(config),
                   tuple(feature_names) if feature_names is not None else None)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def prunable(self) -> list[ParamShape]:
        return [p for p in self.params if p.prunable]

    def layer_totals(self) -> dict[str, int]:
        return {p.layer: p.size for p in self.prunable}

    def layer_outputs(self) -> dict[str, int]:
        """Each pruned layer's outputs: the rows of its weight as a matrix (what CSR's row pointers count)."""
        return {p.layer: p.outputs for p in self.prunable}

    def layer_positions(self) -> dict[str, int]:
        return {p.layer: p.positions for p in self.prunable}

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "NetworkShape":
        """Raises ValueError for a document this version cannot read (another format, a missing field)."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError(f"network document of format {d.get('format') if isinstance(d, dict) else d!r}, "
                             f"not {FORMAT}")
        try:
            params = tuple(ParamShape(p["name"], p["layer"], p["kind"], tuple(int(n) for n in p["shape"]),
                                      int(p["outputs"]), int(p.get("positions", 1))) for p in d["params"])
            names = d.get("feature_names")
            return cls(str(d["arch"]), str(d["input_kind"]), tuple(int(n) for n in d["input_shape"]),
                       tuple(str(c) for c in d["class_names"]), params, dict(d["config"]),
                       tuple(str(n) for n in names) if names is not None else None)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"network document without a readable {exc}") from None
