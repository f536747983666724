"""The New experiment form: widgets → ExperimentConfig settings, checked by the engine itself.

Widget values are remembered for the session (a visit to another page does not reset the form).
Checks are the engine's: ExperimentConfig.validated() for ranges, estimate_run() for combinations
(a conv net on tabular data, a rewind point past the round's iterations ...), each a ConfigError
naming the field, shown here with the form's label for that field.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import streamlit as st

from lth_core import ConfigError, ExperimentConfig, jobs
from lth_core.engine.criteria import CRITERIA
from lth_core.engine.variants import CONTROLS, VARIANTS
from lth_core.engine.data import list_datasets
from lth_core.runs.estimate import RunEstimate, estimate_run, format_seconds, save_clock, worker_running
from lth_core.engine.models import ARCHITECTURES
from lth_core.engine.config import LR_SCHEDULES
from lth_core.engine.presets import FORM_START, PRESETS, engine_defaults, form_start

from . import upload
from .text import md

LABELS = {
    "dataset": "Dataset", "arch": "Architecture", "hidden": "Hidden layer sizes", "width": "Width multiplier",
    "schedule": "Schedule", "prune_rate": "Prune per round", "rounds": "Pruning rounds",
    "target_remaining": "Target weights remaining", "scope": "Scope", "rate_fc": "Rate for fully connected layers",
    "rate_conv": "Rate for conv layers", "rate_output": "Rate for the output layer", "reset": "After pruning",
    "controls": "Controls", "trials": "Trials", "seed": "Seed", "optimizer": "Optimizer", "lr": "Learning rate",
    "batch_size": "Batch size", "epochs": "Epochs per round", "iterations": "Iterations per round",
    "device": "Device", "label_col": "Label column",
    "criterion": "Pruning criterion", "lr_schedule": "Learning-rate schedule", "warmup": "Warm-up iterations",
}
# "After pruning": a short label a narrow column shows on one line beside its circle, and a caption under it
# (four long labels wrapped into each other, so it was unclear which circle went with which)
RESETS = {"init": "reset to init", "rewind": "rewind to iteration K", "none": "fine-tune",
          "lr-rewind": "rewind the learning rate"}
RESET_CAPTIONS = {"init": "the lottery ticket: survivors restart from their original values",
                  "rewind": "survivors restart from their values at iteration K of the dense run",
                  "none": "keep the trained weights, at the schedule's final learning rate",
                  "lr-rewind": "keep the trained weights, replay the learning-rate schedule"}


# Fields the form asks for in percent while the engine counts in fractions (0.2 = 20 %): their
# messages are put in the form's unit, so "150" in a "(%)" field is not answered with "got 1.5".
PERCENT_FIELDS = ("prune_rate", "target_remaining", "rate_fc", "rate_conv", "rate_output")
_NUMBER = r"-?\d+(?:\.\d*)?(?:e-?\d+)?"


def in_percent(message: str) -> str:
    """An engine message about a fraction field, in percent: its ranges and the numbers it quotes."""
    message = message.replace("(0, 1)", "(0 %, 100 %)").replace("[0, 1)", "[0 %, 100 %)")
    message = message.replace("(0 = do not prune)", "(0 % = do not prune)")

    def percent(match: re.Match) -> str:
        number = match[2]
        if float(number) == 0 and "." in number and len(number.split(".")[1]) > 1:  # rounded away, e.g. 0.0000
            return f"{match[1]}less than {0.5 * 10 ** (2 - len(number.split('.')[1])):g} %"
        return f"{match[1]}{100 * float(number):.4g} %"
    return re.sub(rf"(\bgot |^|\bleave )({_NUMBER})(?![\d%])", percent, message)


@dataclass(frozen=True)
class Checked:
    settings: dict[str, Any]
    config: ExperimentConfig | None = None
    estimate: RunEstimate | None = None
    field: str | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.estimate is not None

    @property
    def problem(self) -> str:
        label = LABELS.get(self.field or "", self.field)
        if self.field in PERCENT_FIELDS:
            return f"**{label} (%)** (`{self.field}`): {md(in_percent(self.message or ''))}"
        return f"**{label}** (`{self.field}`): {md(self.message)}"


@st.cache_resource(show_spinner="Loading the datasets…")
def datasets() -> dict[str, Any]:
    return {d.name: d for d in list_datasets()}


LONG_RUN_S = 3600  # a run estimated at more than this needs a tick before Run is pressed


@st.cache_data(show_spinner="Timing a few training steps on this machine (the first time: also how long "
                            "a background run takes to start)…", max_entries=128)
def _estimate(config_json: str, warm: bool) -> tuple[RunEstimate | None, str | None, str | None]:
    """`warm` is part of the cache key: a run submitted while the worker runs starts in a fraction of a second."""
    try:
        return estimate_run(ExperimentConfig.from_dict(json.loads(config_json)), warm=warm), None, None
    except ConfigError as exc:
        return None, exc.field, exc.message


ESTIMATED = "form:estimated"  # the settings (as _settings_key) of the estimate last shown


def check(settings: dict[str, Any]) -> Checked:
    """Validate `settings` and estimate the run; never raises for bad input."""
    try:
        config = ExperimentConfig.from_dict(settings)
    except ConfigError as exc:
        return Checked(settings, field=exc.field, message=exc.message)
    estimate, field, message = _estimate(config.to_json(), worker_running())
    st.session_state[ESTIMATED] = _settings_key(settings)
    return Checked(settings, config, estimate, field, message)


def estimate_outdated(settings: dict[str, Any]) -> bool:
    """Whether the estimate on screen was made for other settings than `settings` (then check() recomputes it)."""
    return st.session_state.get(ESTIMATED) not in (None, _settings_key(settings))


def _settings_key(settings: dict[str, Any]) -> str:
    return json.dumps(settings, sort_keys=True, default=str)


def confirmed(checked: Checked) -> bool:
    """Whether Run may be pressed: always for a run estimated at an hour or less; a longer one only after
    its own tick box, which names the estimate (and is asked again when the settings change)."""
    if not checked.ok or checked.estimate.seconds <= LONG_RUN_S:
        return checked.ok
    took = format_seconds(checked.estimate.seconds)
    st.warning(f"This run is estimated to take about **{took}** on this machine.", icon=":material/schedule:")
    key = "confirm_long:" + hashlib.sha256(checked.config.to_json().encode()).hexdigest()[:16]
    return st.checkbox(f"Yes, start a run of about {took}", key=key)


def submit(checked: Checked, name: str) -> str:
    """Queue the checked run and keep its estimate beside it, so Live run can show the time left."""
    run_id = jobs.submit(checked.config, name=name.strip() or None)
    from ui.widgets import store
    save_clock(store(), run_id, checked.estimate)
    return run_id


def widget_values(settings: dict[str, Any]) -> dict[str, Any]:
    """The form's widget values (by key) that describe ExperimentConfig `settings` (engine defaults filled
    in): the inverse of experiment_form(), in the form's units (percent) and types (an int for a step-1 box)."""
    s = {**engine_defaults(settings.get("arch")), **settings}
    pct = lambda v: None if v is None else 100 * float(v)  # noqa: E731
    hidden = s["hidden"] if s["hidden"] is not None else engine_defaults("mlp")["hidden"]
    values = {
        "dataset": s["dataset"], "arch": s["arch"], "hidden": ",".join(map(str, hidden)),
        "epochs": float(s["epochs"]), "batch_size": int(s["batch_size"]), "optimizer": s["optimizer"], "lr": s["lr"],
        "lr_schedule": s["lr_schedule"], "warmup": int(s["warmup"]), "schedule": s["schedule"], "prune_rate": int(round(100 * s["prune_rate"])),
        "stop_by": "target" if s["target_remaining"] is not None else "rounds",
        "rounds": int(s["rounds"] if s["rounds"] is not None else engine_defaults()["rounds"]),
        "target": pct(s["target_remaining"]) if s["target_remaining"] is not None else 10.0,
        "scope": s["scope"], "criterion": s["criterion"], "rate_fc": pct(s["rate_fc"]), "rate_conv": pct(s["rate_conv"]),
        "rate_output": pct(s["rate_output"]), "reset": s["reset"].split(":")[0],
        "rewind_k": int(s["reset"].split(":")[1]) if s["reset"].startswith("rewind:") else 10,
        **{f"control_{c}": c in s["controls"] for c in CONTROLS},
        "trials": int(s["trials"]), "seed": int(s["seed"])}
    if s["width"] is not None:  # each architecture keeps its own width: its engine default until changed
        values[f"width:{s['arch']}"] = float(s["width"])
    return values


def fill_form(settings: dict[str, Any], source: str | None = None) -> None:
    """Fill every field of the form from ExperimentConfig `settings` (a button's on_click: before the widgets are
    drawn); `source`, in words, is said above the form ("The form is filled with ...") until a preset is chosen."""
    for key, value in widget_values(settings).items():
        st.session_state[f"form:{key}"] = st.session_state[f"keep:{key}"] = value
    st.session_state.pop("form:source", None)
    if source:
        st.session_state["form:source"] = source
        st.session_state.pop("form:preset", None)


def apply_preset(name: str) -> None:
    """Fill every field of the form from preset `name` (a button's on_click: before the widgets are drawn)."""
    fill_form(form_start(name))
    st.session_state["form:preset"] = name


def preset_buttons() -> None:
    """One button per preset, and what to expect of the one the form was last filled from."""
    st.subheader("Start from a preset")
    with st.container(horizontal=True):  # buttons as wide as their titles, wrapping onto a second line
        for p in PRESETS.values():
            st.button(p.title, key=f"preset:{p.name}", help=p.expect, on_click=apply_preset, args=(p.name,))
    if "form:source" in st.session_state:  # filled from elsewhere, e.g. the rates a sensitivity measurement suggests
        st.success(f"The form is filled with {md(st.session_state['form:source'])}.", icon=":material/content_paste:")
        return  # until a preset is chosen: no preset's description beside it
    chosen = PRESETS[st.session_state.get("form:preset", FORM_START)]
    changed = changed_what(chosen.name)
    if changed:  # the preset's words (its dataset, its net, what to expect) no longer describe the form
        st.info(f"The form started from **{chosen.title}**; you changed its {' and '.join(changed)}, so what that "
                "preset expects does not apply here. Every other setting is still the preset's.",
                icon=":material/lightbulb:")
        return
    opened = "" if "form:preset" in st.session_state else "The form opens on "
    st.info(f"{opened}**{chosen.title}**: {chosen.expect} Every setting a preset leaves out is the engine's "
            "default.", icon=":material/lightbulb:")


def changed_what(preset: str) -> list[str]:
    """What of the form's dataset and architecture differs from `preset`'s, in words ('dataset (now wine)')."""
    start = widget_values(form_start(preset))
    changed = []
    for key, words in (("dataset", "dataset"), ("arch", "architecture")):
        now = st.session_state.get(f"form:{key}", st.session_state.get(f"keep:{key}", start[key]))
        if now != start[key]:
            changed.append(f"{words} (now **{md(upload.dataset_label(now) if key == 'dataset' else now)}**)")
    return changed


def _w(kind: str, label: str, key: str, default: Any, container: Any = st, optional: bool = False,
       **kwargs: Any) -> Any:
    """A form widget that keeps its value for the session, even while its page is not shown."""
    wkey, keep = f"form:{key}", f"keep:{key}"
    st.session_state[wkey] = st.session_state.get(wkey, st.session_state.get(keep, default))
    if optional:
        # an optional number ("the optimizer's default"): emptying the box must give None again, not
        # Streamlit's fallback of 0 (a rate of 0 % silently means "never prune")
        kwargs["value"] = None
    value = getattr(container, kind)(label, key=wkey, **kwargs)
    st.session_state[keep] = value
    return value


def experiment_form() -> tuple[dict[str, Any], str]:
    """Draw the form; return the ExperimentConfig settings it describes and the run's name."""
    info = {**datasets(), **upload.uploaded_datasets()}
    start = widget_values(form_start())  # the opening preset; every field it leaves out: the engine's default
    what, how, repeat = st.columns(3, gap="large")
    s: dict[str, Any] = {}
    with what:
        st.subheader("What to train")
        s["dataset"] = _w("selectbox", LABELS["dataset"], "dataset", start["dataset"], options=list(info),
                          format_func=upload.dataset_label)
        d = info[s["dataset"]]
        s.update(upload.form_settings(d))   # an uploaded CSV's label column
        st.caption(f"{d.description} · {d.kind} data, {d.num_classes} classes")
        s["arch"] = _w("selectbox", LABELS["arch"], "arch", start["arch"], options=list(ARCHITECTURES),
                       format_func=lambda a: f"{a} — {ARCHITECTURES[a].description}")
        if s["arch"] == "mlp":
            s["hidden"] = _w("text_input", LABELS["hidden"], "hidden", start["hidden"], help="comma-separated, e.g. 300,100")
        elif ARCHITECTURES[s["arch"]].needs_image:
            s["width"] = _w("number_input", LABELS["width"], f"width:{s['arch']}",
                            engine_defaults(s["arch"])["width"], step=0.05,
                            help="channels × this; the paper's nets are width 1 (slow on a CPU)")
        s["epochs"] = _w("number_input", LABELS["epochs"], "epochs", start["epochs"], step=0.5,
                         help="training budget of every round (the paper trains LeNet for about 50 epochs)")
        c1, c2 = st.columns(2)
        s["batch_size"] = _w("number_input", LABELS["batch_size"], "batch_size", start["batch_size"], c1, step=1)
        s["optimizer"] = _w("selectbox", LABELS["optimizer"], "optimizer", start["optimizer"], c2, options=["adam", "sgd"])
        s["lr"] = _w("number_input", LABELS["lr"], "lr", start["lr"], format="%.5f", optional=True,
                     placeholder="the optimizer's default", help="default: 0.0012 for adam (as in the paper), 0.05 for sgd")
        c1, c2 = st.columns(2)
        s["lr_schedule"] = _w("selectbox", LABELS["lr_schedule"], "lr_schedule", start["lr_schedule"], c1,
                              options=list(LR_SCHEDULES), help="constant; step: ×0.1 at half and at three quarters of "
                              "every round; cosine: down to lr/100")
        s["warmup"] = _w("number_input", LABELS["warmup"], "warmup", start["warmup"], c2, step=1,
                         help="iterations of linear warm-up at the start of every round")
    with how:
        st.subheader("How to prune")
        s["schedule"] = _w("radio", LABELS["schedule"], "schedule", start["schedule"], options=["iterative", "one-shot"],
                           horizontal=True, help="iterative: prune a little every round; one-shot: train once, "
                           "prune straight to the final size, retrain")
        s["prune_rate"] = _w("slider", LABELS["prune_rate"], "prune_rate", start["prune_rate"], min_value=5, max_value=90, step=5,
                             format="%d %%", help="share of the remaining weights removed each round") / 100
        by = _w("radio", "Stop after", "stop_by", start["stop_by"], options=["rounds", "target"], horizontal=True,
                format_func={"rounds": "a number of rounds", "target": "reaching a size"}.get)
        if by == "rounds":
            s["rounds"] = _w("number_input", LABELS["rounds"], "rounds", start["rounds"], step=1,
                             help="rounds after the dense round 0")
        else:
            s["target_remaining"] = _w("number_input", LABELS["target_remaining"] + " (%)", "target", start["target"],
                                       step=1.0) / 100
        s["scope"] = _w("radio", LABELS["scope"], "scope", start["scope"], options=["layerwise", "global"], horizontal=True,
                        help="layer-wise: each layer loses its rate; global: one threshold across layers")
        s["criterion"] = _w("selectbox", LABELS["criterion"], "criterion", start["criterion"], options=list(CRITERIA),
                            help="\n".join(f"- **{c.name}**: {c.explanation}" for c in CRITERIA.values()))
        st.caption(CRITERIA[s["criterion"]].explanation)
        with st.expander("Rates per layer type (optional)"):
            for key, hint in (("rate_fc", "same as above"), ("rate_conv", "same as above"), ("rate_output", "half of above")):
                pct = _w("number_input", LABELS[key] + " (%)", key, start[key], step=5.0, optional=True,
                         placeholder=hint)
                s[key] = None if pct is None else pct / 100
        reset = _w("radio", LABELS["reset"], "reset", start["reset"], options=list(RESETS), format_func=RESETS.get,
                   captions=list(RESET_CAPTIONS.values()))
        if reset == "rewind":
            k = _w("number_input", "Rewind iteration K", "rewind_k", start["rewind_k"], step=1)
            s["reset"] = f"rewind:{int(k)}"
        else:
            s["reset"] = reset
    with repeat:
        st.subheader("Controls and repeats")
        st.caption("Controls train beside the ticket every round, with the same number of weights.")
        controls = [c for c in CONTROLS  # one checkbox per control of the variant registry
                    if _w("checkbox", VARIANTS[c].label, f"control_{c}", start[f"control_{c}"],
                          help=VARIANTS[c].explanation)]
        s["controls"] = controls
        c1, c2 = st.columns(2)
        s["trials"] = _w("number_input", LABELS["trials"], "trials", start["trials"], c1, step=1,
                         help="independent repeats with different seeds; plots show their mean and range")
        s["seed"] = _w("number_input", LABELS["seed"], "seed", start["seed"], c2, step=1)
        name = _w("text_input", "Name of the run (optional)", "name", "", placeholder="e.g. lenet 20 % x5")
    return s, name
