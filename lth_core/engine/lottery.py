"""The iterative magnitude pruning runner: trials × rounds × variants, as a stream of events.

Round 0 trains the dense network. Each later round trains, side by side, the ticket (the pruned
mask, weights reset to the original init, rewound or kept) and the config's controls, each started
as its entry of the variant registry says (variants.py: reinit, random, reinit-signs), then
prunes the trained ticket to get the next round's mask (scored by the config's criterion,
criteria.py; magnitude by default). Every random choice comes from a generator seeded by (seed, trial, round, purpose), so a run resumed from a checkpoint gives
the same numbers as one that never stopped.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable, Iterator

import numpy as np
import torch

from . import pruning
from lth_core.engine.config import ExperimentConfig
from lth_core.engine.criteria import CRITERIA, SCORE_EXAMPLES, CriterionContext, Probe
from lth_core.engine.data import DatasetSplits, load_dataset
from lth_core.engine.errors import Cancelled, ConfigError, TrainingFailed
from lth_core.engine.events import (Checkpoint, EvalPointEvent, Event, RoundCommitted, RoundFinished, RoundStarted,
                     RunCancelled, RunFailed, RunFinished, RunStarted)
from lth_core.engine.results import weights_hash
from lth_core.engine.models import ARCHITECTURES, DEFAULT_HIDDEN, Network, Params, build_network, default_width
from lth_core.engine.network_shape import NetworkShape
from lth_core.engine.cpu import CpuWatch, adaptive_threads, choose_threads, fixed_threads
from lth_core.engine.variants import TICKET, VARIANTS, StartContext, generator
from lth_core.engine.training import DeviceData, TrainResult, TrainSettings, batch_order, torch_threads, train
from lth_core.engine.torch_modules import plain_from_engine

DEFAULT_EPOCHS = 3.0
EVAL_POINTS_PER_ROUND = 15


@dataclass
class Plan:
    """A validated config bound to its data and network, with the derived numbers filled in."""

    config: ExperimentConfig
    data: DatasetSplits
    net: Network
    device: torch.device
    rounds: int                     # pruned rounds after round 0
    levels: float                   # iterative-equivalent rounds a one-shot prune jumps to (fractional for a target)
    settings: TrainSettings
    rates: dict[str, float]
    planned_remaining: list[float]


def choose_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "CUDA is not available on this machine; use auto or cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def make_plan(config: ExperimentConfig) -> Plan:
    """Validate `config` against its data and architecture; raises ConfigError naming the field."""
    config = config.validated()
    data = load_dataset(config.dataset, seed=config.seed, label_col=config.label_col)
    net = build_network(config.arch, data.input_shape, data.num_classes, data.kind, config.hidden, config.width)
    n_train = data.x_train.shape[0]
    if config.batch_size > n_train:
        raise ConfigError("batch_size", f"must be at most the training split's {n_train} examples; got {config.batch_size}")
    per_epoch = max(1, n_train // config.batch_size)
    iterations = config.iterations or max(1, round((config.epochs or DEFAULT_EPOCHS) * per_epoch))
    eval_every = config.eval_every or max(1, -(-iterations // EVAL_POINTS_PER_ROUND))
    k = config.rewind_iteration
    if k is not None and k > iterations:
        raise ConfigError("reset", f"rewind iteration must be at most the {iterations} iterations of a round; got {k}")
    kinds, totals = net.layer_kinds(), net.layer_totals()
    rates = pruning.layer_rates(kinds, config.rate_for)
    plan_args = dict(totals=totals, kinds=kinds, rates=rates, scope=config.scope, global_rate=config.prune_rate)
    one_shot = config.schedule == "one-shot"
    if config.target_remaining is not None:
        finder = pruning.one_shot_level if one_shot else pruning.rounds_for_target
        levels = finder(config.target_remaining, **plan_args)
    else:
        levels = config.num_rounds_requested or 0
    if one_shot:  # one pruned round, straight to the target (or to where `rounds` iterative rounds would be)
        rounds = 1 if levels > 0 else 0
        planned = [1.0] + ([pruning.one_shot_fraction(levels, **plan_args)] if rounds else [])
    else:
        rounds = levels
        planned = pruning.planned_remaining(rounds=rounds, **plan_args)
    if config.warmup >= iterations:
        raise ConfigError("warmup", f"must be fewer than the {iterations} iterations of a round; got {config.warmup}")
    settings = TrainSettings(config.optimizer, config.learning_rate, config.momentum, config.weight_decay,
                             config.batch_size, iterations, eval_every, config.lr_schedule, config.warmup)
    return Plan(config, data, net, choose_device(config.device), rounds, levels, settings, rates, planned)


def resolved_config(plan: Plan) -> ExperimentConfig:
    """`plan.config` with every default written out: what config.json records. Read back with --config
    it trains the same networks. Of two alternatives (rounds or a target; epochs or iterations) it keeps
    the one that was given."""
    c = plan.config
    rates = c.rate_for
    changes: dict[str, object] = dict(lr=c.learning_rate, rate_fc=rates["fc"], rate_conv=rates["conv"],
                                      rate_output=rates["output"], eval_every=plan.settings.eval_every)
    if c.target_remaining is None:
        changes["rounds"] = c.num_rounds_requested
    if c.iterations is None:
        changes["epochs"] = DEFAULT_EPOCHS if c.epochs is None else c.epochs
    if c.arch == "mlp" and c.hidden is None:
        changes["hidden"] = DEFAULT_HIDDEN
    if ARCHITECTURES[c.arch].needs_image and c.width is None:
        changes["width"] = default_width(c.arch)
    return c.replace(**changes)


def network_shape(plan: Plan) -> NetworkShape:
    """The run's resolved config, input and parameter shapes: what the store keeps so that pages show a
    stored run without loading its data."""
    d = plan.data
    return NetworkShape.of(plan.net, resolved_config(plan).to_dict(), d.kind, d.input_shape, d.class_names,
                           d.feature_names)


def _to_device_data(data: DatasetSplits, device: torch.device) -> DeviceData:
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
    return DeviceData(t(data.x_train), t(data.y_train), t(data.x_val), t(data.y_val), t(data.x_test), t(data.y_test))


def _np(params: Params) -> dict[str, np.ndarray]:
    return {n: p.detach().cpu().numpy() for n, p in params.items()}


def _torch(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {n: torch.from_numpy(np.array(a)) for n, a in arrays.items()}


def run_experiment(config: ExperimentConfig, *, resume: Checkpoint | None = None,
                   should_stop: Callable[[], bool] | None = None) -> Iterator[Event]:
    """Run (or resume) an experiment, yielding events. Raises ConfigError before the first event
    if the config does not fit its data; later problems end the stream with RunFailed."""
    watch = CpuWatch()  # from here: the data load fills the window of the first thread choice, which otherwise waits 0.1 s
    plan = make_plan(config)
    cfg, net = plan.config, plan.net
    started = time.perf_counter()
    start_round = 0 if resume is None else resume.round + 1
    shape = network_shape(plan)
    yield RunStarted(shape.config, plan.rounds, plan.planned_remaining, list(cfg.variants), net.layer_totals(),
                     plan.settings.iterations, str(plan.device), start_round, shape.to_dict())
    current = start_round
    threads = torch_threads(torch.get_num_threads())  # restored when the run ends
    cpu = plan.device.type == "cpu"
    adapt = cpu and not net.image_like and adaptive_threads()  # else the numbers would depend on the load
    try:
        threads.__enter__()
        if cpu and not adapt:
            torch.set_num_threads(fixed_threads())
        data = _to_device_data(plan.data, plan.device)
        states = [{part: _torch(group) for part, group in t.items()} for t in resume.trials] if resume else \
                 [{"init": net.init_params(generator(cfg.seed, trial, "init"))} for trial in range(cfg.trials)]
        for rnd in range(start_round, plan.rounds + 1):
            current = rnd
            if adapt:
                torch.set_num_threads(choose_threads(watch.others_busy()))
            yield from _run_round(plan, data, states, rnd, should_stop)
            yield RoundCommitted(rnd, Checkpoint(rnd, [{p: _np(g) for p, g in s.items()} for s in states]))
        yield RunFinished(time.perf_counter() - started)
    except Cancelled:
        yield RunCancelled(current)
    except TrainingFailed as exc:
        yield RunFailed(str(exc))
    except Exception as exc:  # a worker must always end its stream with a one-line reason
        yield RunFailed(f"{type(exc).__name__}: {exc}".splitlines()[0])
    finally:
        threads.__exit__(None, None, None)


def _run_round(plan: Plan, data: DeviceData, states: list[dict[str, Params]], rnd: int,
               should_stop: Callable[[], bool] | None,
               trained_out: dict[tuple[int, str], tuple[Params, Params]] | None = None,
               prune_next: bool = True) -> Iterator[Event]:
    """Train round `rnd` of every trial. `trained_out`, if given, receives each model's trained
    (params, buffers) by (trial, variant): what the deployment bench retrains a round for. `prune_next`:
    prune the trained tickets for the next round (a last round trained on its own, as at_init does, does not)."""
    cfg, net = plan.config, plan.net
    weight_of = {s.layer: s.name for s in net.prunable}
    shapes = {s.layer: s.shape for s in net.prunable}
    variants = [TICKET] if rnd == 0 else list(cfg.variants)
    models: list[tuple[int, str]] = [(t, v) for t in range(cfg.trials) for v in variants]
    starts: list[Params] = []
    masks: list[dict[str, torch.Tensor]] = []
    for trial, variant in models:
        state = states[trial]
        ticket_mask = state.get("mask") or pruning.full_mask(shapes)
        ticket_mask = {l: m.bool() for l, m in ticket_mask.items()}
        reset_point = state.get("trained") if cfg.keeps_trained else state.get("rewind")
        reset_point = state["init"] if rnd == 0 or reset_point is None else reset_point
        inverted = state.get("inverted")
        inverted = None if inverted is None else {l: m.bool() for l, m in inverted.items()}
        mask, start = VARIANTS[variant].start(StartContext(ticket_mask, reset_point, state["init"], net.init_params,
                                                           cfg.seed, trial, rnd, inverted))
        masks.append(mask)
        starts.append(start)
    yield RoundStarted(rnd, pruning.fraction_remaining(masks[0]), models)

    stacked = {n: torch.stack([s[n] for s in starts]) for n in starts[0]}
    stacked_masks = {weight_of[l]: torch.stack([m[l] for m in masks]) for l in shapes}
    # one data order per trial, shared by its variants
    orders = torch.stack([batch_order(data.x_train.shape[0], cfg.batch_size, plan.settings.iterations,
                                      generator(cfg.seed, trial, rnd, "order")) for trial in range(cfg.trials)])
    snapshot_at = cfg.rewind_iteration if rnd == 0 else None
    # fine-tuning (reset none) trains at the schedule's final rate; lr-rewind replays the schedule, as round 0 does
    settings = replace(plan.settings, fine_tune=cfg.reset == "none" and rnd > 0)
    run = train(net, stacked, stacked_masks, data, orders, settings, snapshot_at=snapshot_at, should_stop=should_stop)
    while True:
        try:
            point = next(run)
        except StopIteration as stop:
            result: TrainResult = stop.value
            break
        for m, (trial, variant) in enumerate(models):
            yield EvalPointEvent(trial, rnd, variant, point.iteration, float(point.train_loss[m]), float(point.val_loss[m]),
                                 float(point.val_accuracy[m]), float(point.test_accuracy[m]))

    if trained_out is not None:
        for m, key in enumerate(models):
            trained_out[key] = ({n: p[m].detach().cpu() for n, p in result.params.items()},
                                {n: b[m].detach().cpu() for n, b in result.buffers.items()})
    history = result.history
    best_of = torch.stack([p.val_loss for p in history]).argmin(0)  # (V,): index of each model's best point
    for m, (trial, variant) in enumerate(models):
        best, last = history[int(best_of[m])], history[-1]
        yield RoundFinished(
            trial, rnd, variant,
            weights_remaining=pruning.fraction_remaining(masks[m]),
            test_accuracy=float(last.test_accuracy[m]), val_accuracy=float(last.val_accuracy[m]),
            early_stop_iteration=best.iteration, early_stop_test_accuracy=float(best.test_accuracy[m]),
            early_stop_val_loss=float(best.val_loss[m]),
            train_seconds=(result.seconds - result.eval_seconds) / len(models),
            eval_seconds=result.eval_seconds / len(models),
            layers={l: (int(masks[m][l].numel()), int(masks[m][l].sum())) for l in shapes},
            mask={l: masks[m][l].cpu().numpy() for l in shapes},
            params={n: p[m].detach().cpu().numpy() for n, p in result.params.items()},
            pruned_max={l: float(result.pruned_max[k][m]) for k, l in enumerate(shapes)},
            zero_checks=result.zero_checks,
            start_hashes={n: weights_hash(p) for n, p in starts[m].items()})

    # prune each trial's trained ticket to get the next round's mask
    for m, (trial, variant) in enumerate(models):
        if variant != TICKET or not prune_next:
            continue
        state = states[trial]
        trained = {n: p[m].detach().cpu() for n, p in result.params.items()}
        weights = {l: trained[weight_of[l]] for l in shapes}
        if cfg.schedule == "one-shot":
            counts = pruning.one_shot_counts(net.layer_totals(), net.layer_kinds(), plan.rates, cfg.scope, cfg.prune_rate, plan.levels)
        else:
            counts = pruning.next_counts(pruning.remaining_counts(masks[m]), net.layer_kinds(), plan.rates, cfg.scope, cfg.prune_rate)
        if cfg.keeps_trained:
            state["trained"] = trained
        if rnd == 0 and result.snapshot is not None:
            state["rewind"] = {n: p[m].detach().cpu() for n, p in result.snapshot.items()}
        start = state["trained"] if cfg.keeps_trained else state.get("rewind", state["init"])
        context = _criterion_context(plan, data, masks[m], weights, state["init"], start, (trial, rnd))
        state["mask"] = pruning.prune(cfg.criterion, context, counts)
        if "inverted" in cfg.variants:  # the same step with the scores inverted: the inverted control's mask
            state["inverted"] = pruning.prune(cfg.criterion, context, counts, invert=True)


def _criterion_context(plan: Plan, data: DeviceData, mask: dict[str, torch.Tensor], trained: dict[str, torch.Tensor],
                       init: Params, start: Params, trial_round: tuple[int, int]) -> CriterionContext:
    """What the run's criterion reads, and only that: "init" is the original init w₀, also with rewind:K;
    "start" the weights the next round starts from; "probe" that network as a plain module with a batch of
    training examples drawn by (seed, trial, round)."""
    cfg, net = plan.config, plan.net
    needs = CRITERIA[cfg.criterion].needs
    weight_of = {s.layer: s.name for s in net.prunable}
    probe = None
    if "probe" in needs:
        buffers = {n: b[0] for n, b in net.new_buffers(1, torch.device("cpu")).items()}
        module = plain_from_engine(net, start, buffers, plan.data.input_shape).train()
        pick = torch.randperm(data.x_train.shape[0], generator=generator(cfg.seed, *trial_round, "score"))[:SCORE_EXAMPLES]
        probe = Probe(module, weight_of, tuple(plan.data.input_shape), data.x_train[pick.to(data.x_train.device)].cpu(),
                      data.y_train[pick.to(data.y_train.device)].cpu())
    return CriterionContext(
        mask=mask, trained=trained if "trained" in needs else None,
        init={l: init[n] for l, n in weight_of.items()} if "init" in needs else None,
        start={l: start[n] for l, n in weight_of.items()} if "start" in needs else None,
        probe=probe, generator=generator(cfg.seed, *trial_round, "criterion") if "generator" in needs else None)
