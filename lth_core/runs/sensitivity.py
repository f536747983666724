"""Per-layer sensitivity of a stored run's dense network (lth_core.engine.sensitivity), kept with the run.

The measurement is the run's document "sensitivity/0/<trial>" (`SensitivityResult.to_dict()` plus where it came
from), written after every layer: a measurement stopped part-way (the worker killed, the machine restarted)
keeps its finished layers, and the next one of the same settings measures only the rest. It runs in the
background worker as the task kind "sensitivity" (tasks.TASK_KINDS), or in the foreground from the CLI.
"""
from __future__ import annotations

from typing import Any, Callable

from lth_core.engine.errors import ConfigError
from lth_core.engine.sensitivity import SensitivityConfig, SensitivityResult, layer_sensitivity
from lth_core.runs import tasks
from lth_core.runs.store import RunStore, now_iso

PREFIX = "sensitivity"


def doc_key(trial: int = 0) -> str:
    return f"{PREFIX}/0/{trial}"


def check_source(store: RunStore, run_id: str, trial: int) -> None:
    """ConfigError naming `run` or `trial` unless the run's dense network (round 0) of `trial` has finished."""
    rounds = store.rounds(run_id)
    dense = rounds[rounds["round"] == 0]
    if dense.empty:
        raise ConfigError("run", f"run {run_id} has no finished dense network (round 0) yet; wait for its round 0")
    trials = sorted(int(t) for t in dense["trial"].unique())
    if isinstance(trial, bool) or not isinstance(trial, int) or trial not in trials:
        raise ConfigError("trial", f"must be one of run {run_id}'s trials ({', '.join(map(str, trials))}); got {trial!r}")


def stored(store: RunStore, run_id: str, trial: int = 0) -> tuple[SensitivityResult, dict[str, Any]] | None:
    """The kept measurement of trial `trial` (finished or stopped part-way) and its document, or None."""
    doc = store.doc(run_id, doc_key(trial))
    if not doc:
        return None
    return SensitivityResult.from_dict(doc), doc


def measure(store: RunStore, run_id: str, trial: int, config: SensitivityConfig,
            progress: Callable[[str], None] | None = None) -> SensitivityResult:
    """Measure (or finish measuring) the per-layer sensitivity of the dense network of `trial`, storing each layer
    as it is done. The dense network is trained again from the stored init (the store keeps no trained weights;
    the engine is deterministic, and `source` says whether it matched the stored accuracy)."""
    from lth_core.engine.lottery import _to_device_data, make_plan
    from lth_core.engine.retrain import retrain

    say = progress or (lambda text: None)
    config = config.validated()
    check_source(store, run_id, trial)
    kept = stored(store, run_id, trial)
    done = kept[0] if kept is not None and kept[0].config == config else None
    if done is not None and done.points:
        say(f"{len(done.points)} of {len(done.kinds)} layers kept from the last measurement")
    say(f"retraining the dense network (round 0, trial {trial}): the store keeps masks, not trained weights")
    dense = retrain(store, run_id, 0, trial)["ticket"]
    plan = make_plan(store.get_run(run_id).config.replace(device="cpu"))
    data = _to_device_data(plan.data, plan.device)
    extra = {"trial": trial, "source": dense.source(), "created_at": now_iso()}

    kept_layers = len(done.points) if done is not None else 0

    def keep(result: SensitivityResult, layer: str) -> None:
        store.put_doc(run_id, doc_key(trial), {**result.to_dict(), **extra})
        text = f"measured {len(result.points)} of {len(result.kinds)} layers ({layer} done)"
        # with the part of this attempt done (its layers): a run queued behind the task is told its wait from it
        share = (len(result.points) - kept_layers) / max(1, len(result.kinds) - kept_layers)
        if progress is not None:
            tasks.say(progress, text, share)

    say(f"pruning each of {len(dense.net.prunable)} layers to {len(config.sparsities)} sparsities"
        + (f", {config.finetune_steps} fine-tune iterations each" if config.finetune_steps else ""))
    result = layer_sensitivity(dense.net, dense.params, dense.buffers, data, plan.settings, config,
                               seed=plan.config.seed, trial=trial, done=done, on_layer=keep)
    store.put_doc(run_id, doc_key(trial), {**result.to_dict(), **extra})  # also when every layer was kept
    return result


def run_task(store: RunStore, run_id: str, round: int, trial: int, args: dict[str, Any],
             progress: Callable[[str], None]) -> None:
    """The worker's entry (tasks.TASK_KINDS["sensitivity"]); the result is written by `measure` as it goes."""
    measure(store, run_id, trial, SensitivityConfig.from_dict(args), progress)
