"""The instability analysis of a stored run (engine/stability.py), kept with the run and resumable.

It is a task of the run (tasks.TASK_KINDS["stability"]): it needs the run's network, data, training budget,
initial weights and, for a pruned round, that round's mask, so it hangs on the run rather than being a run
of its own. Its result is the run's document "stability/<round>/<trial>" (round 0: the dense network only;
a pruned round: also its ticket and the run's controls), written after each k, so an interrupted analysis
started again does only the k that are missing.

    key = submit_stability(run_id, round=3, ks=(0, 25, 100))         # queued in the background worker
    result = stored_analysis(store, run_id, 3, 0)                     # what is done so far, or None
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lth_core.engine.errors import ConfigError
from lth_core.engine.stability import DEFAULT_ALPHAS, DENSE, PathResult, StabilityConfig, run_stability
from lth_core.runs import tasks
from lth_core.runs.store import RunStore, now_iso

PREFIX = "stability"
KS_FRACTIONS = (0.01, 0.025, 0.05, 0.1, 0.25)   # default ks: 0 and these fractions of a round


def doc_key(round: int, trial: int) -> str:
    return f"{PREFIX}/{round}/{trial}"


@dataclass
class StoredAnalysis:
    """An analysis as kept with its run: its settings and the paths done so far."""

    run_id: str
    round: int
    trial: int
    ks: list[int]
    alphas: int
    variants: list[str]                      # dense first, then the ticket and controls
    iterations: int
    weights_remaining: float
    paths: list[PathResult] = field(default_factory=list)
    updated_at: str = ""

    @property
    def done_ks(self) -> list[int]:
        """The ks whose every network's path is stored."""
        by_k: dict[int, set[str]] = {}
        for p in self.paths:
            by_k.setdefault(p.k, set()).add(p.variant)
        return sorted(k for k, names in by_k.items() if set(self.variants) <= names)

    @property
    def missing_ks(self) -> list[int]:
        done = set(self.done_ks)
        return [k for k in self.ks if k not in done]

    def to_dict(self) -> dict[str, Any]:
        return {"ks": self.ks, "alphas": self.alphas, "variants": self.variants, "iterations": self.iterations,
                "weights_remaining": self.weights_remaining, "paths": [p.to_dict() for p in self.paths],
                "updated_at": self.updated_at}

    @classmethod
    def from_dict(cls, run_id: str, round: int, trial: int, d: dict[str, Any]) -> "StoredAnalysis":
        return cls(run_id, round, trial, [int(k) for k in d["ks"]], int(d["alphas"]), list(d["variants"]),
                   int(d["iterations"]), float(d.get("weights_remaining", 1.0)),
                   [PathResult.from_dict(p) for p in d.get("paths", [])], str(d.get("updated_at", "")))


def stored_analysis(store: RunStore, run_id: str, round: int, trial: int = 0) -> StoredAnalysis | None:
    doc = store.doc(run_id, doc_key(round, trial))
    return None if doc is None else StoredAnalysis.from_dict(run_id, round, trial, doc)  # type: ignore[arg-type]


def analyses(store: RunStore, run_id: str) -> list[StoredAnalysis]:
    """Every analysis kept with the run, by round then trial."""
    out = []
    for key, doc in store.docs(run_id, PREFIX + "/").items():
        _, rnd, trial = key.split("/")
        out.append(StoredAnalysis.from_dict(run_id, int(rnd), int(trial), doc))  # type: ignore[arg-type]
    return sorted(out, key=lambda a: (a.round, a.trial))


def default_ks(iterations: int) -> list[int]:
    """0 and a few early fractions of a round: where instability turns into stability in the paper."""
    return sorted({0, *(min(iterations, max(1, round(f * iterations))) for f in KS_FRACTIONS)})


def parse_ks(text: str) -> tuple[int, ...]:
    """"0,25,100" → (0, 25, 100); ConfigError naming `ks`."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        raise ConfigError("ks", f"must be whole numbers of iterations separated by commas, e.g. 0,25,100; "
                          f"got {text!r}") from None


def check_request(store: RunStore, run_id: str, round: int | None, trial: int | None, ks: tuple[int, ...] | None,
                  alphas: int | None) -> StabilityConfig:
    """The analysis asked for, checked against the run (ConfigError naming the field): `round` a finished
    round (default: the last; 0 analyses the dense network only), `trial` one of its trials (default 0),
    `ks` within a round's iterations (default: default_ks), `alphas` 3–101 points (default 25)."""
    info = store.get_run(run_id)
    rounds = store.rounds(run_id)
    done = sorted(int(r) for r in rounds["round"].unique())
    trials = sorted(int(t) for t in rounds["trial"].unique())
    if not done or info.iterations is None:
        raise ConfigError("round", f"run {run_id} has no finished round yet; its dense network (round 0) must be trained first")
    trial = 0 if trial is None else trial
    if isinstance(trial, bool) or not isinstance(trial, int) or trial not in trials:
        raise ConfigError("trial", f"must be one of run {run_id}'s trials ({', '.join(map(str, trials))}); got {trial!r}")
    rnd = done[-1] if round is None else round
    if isinstance(rnd, bool) or not isinstance(rnd, int) or rnd not in done:
        raise ConfigError("round", f"must be a finished round of run {run_id} ({', '.join(map(str, done))}; 0 is the "
                          f"dense network alone); got {rnd!r}")
    variants = tuple(info.config.variants) if rnd > 0 else ()
    cfg = StabilityConfig(info.config, tuple(default_ks(info.iterations) if ks is None else ks),
                          DEFAULT_ALPHAS if alphas is None else alphas, trial, rnd, variants)
    return cfg.checked(info.iterations)


def analyse(store: RunStore, run_id: str, round: int | None = None, trial: int | None = None,
            ks: tuple[int, ...] | None = None, alphas: int | None = None,
            progress: Callable[[str], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> StoredAnalysis:
    """Run (or finish) the analysis here, writing each k's paths into the run's document as it ends; a k
    already stored with the same settings is not redone. Returns the complete analysis."""
    cfg = check_request(store, run_id, round, trial, ks, alphas)
    info = store.get_run(run_id)
    key = doc_key(cfg.round, cfg.trial)
    names = [DENSE, *cfg.variants]
    rounds = store.rounds(run_id)
    row = rounds[(rounds["round"] == cfg.round) & (rounds["trial"] == cfg.trial) & (rounds["variant"] == "ticket")]
    remaining = float(row["weights_remaining"].iloc[0]) if len(row) else 1.0
    old = stored_analysis(store, run_id, cfg.round, cfg.trial)
    keep = old is not None and old.alphas == cfg.alphas and old.variants == names and old.iterations == info.iterations
    paths = old.paths if keep else []
    ks_all = sorted(set(cfg.ks) | (set(old.ks) if keep else set()))
    state = StoredAnalysis(run_id, cfg.round, cfg.trial, ks_all, cfg.alphas, names, int(info.iterations), remaining,
                           list(paths), now_iso())
    store.put_doc(run_id, key, state.to_dict())
    done = set(state.done_ks)
    mask = store.masks(run_id, cfg.trial, cfg.round, "ticket") if cfg.round > 0 else None
    todo = len([k for k in cfg.ks if k not in done])
    for number, found in enumerate(run_stability(cfg, mask, done=done, should_stop=should_stop, progress=progress), 1):
        if progress is not None:  # the part of this attempt done: a run queued behind the task is told its wait from it
            tasks.say(progress, f"k = {found[0].k} done ({number} of {todo})", number / todo)
        state.paths = [p for p in state.paths if p.k != found[0].k] + found
        state.paths.sort(key=lambda p: (p.k, names.index(p.variant)))
        state.updated_at = now_iso()
        store.put_doc(run_id, key, state.to_dict())
    return state


def submit_stability(run_id: str, round: int | None = None, trial: int | None = None, ks: tuple[int, ...] | None = None,
                     alphas: int | None = None, store_path: Path | str | None = None) -> str:
    """Queue the analysis in the background worker (checked first: ConfigError naming the field); returns
    the task's key, "task/stability/<round>/<trial>". A k already stored is not redone."""
    from lth_core.runs import jobs

    with RunStore(store_path) as store:
        cfg = check_request(store, run_id, round, trial, ks, alphas)
        key = tasks.submit(store, run_id, "stability", cfg.round, cfg.trial, {"ks": list(cfg.ks), "alphas": cfg.alphas})
    jobs.ensure_worker(store_path)
    return key
