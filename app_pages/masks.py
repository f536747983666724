"""Masks: which weights a round kept, layer by layer; what the first layer still sees; how masks
change between rounds; how big the kept and pruned weights were at initialisation; and how sensitive each layer
of the dense network is when it is pruned alone (ui/sensitivity.py)."""
import math

import streamlit as st

from lth_core.analysis import mask_plots
from ui.example import example_notice
from ui.text import md, plotly
from lth_core.analysis.plots import label_of
from lth_core.engine.variants import VARIANTS
from lth_core.analysis.summary import pct
from ui.sensitivity import sensitivity_section
from ui.widgets import cached_chart, guard, run_context, run_network, run_picker, store, store_token, url_choice


st.title("Masks")
token = store_token()  # before any row is read: a write meanwhile then changes the token, and redraws
run_id = run_picker()
info = store().get_run(run_id)
example_notice(run_id)  # the badge and provenance of the shipped example run
rounds = store().rounds(run_id)
c1, c2, c3 = st.columns([3, 1, 1])
available = sorted(rounds["round"].unique().tolist())
rnd = url_choice("round", available, "Round (0 = the dense network; later rounds are smaller)", container=c1,
                 kind="select_slider", default=available[-1])  # not drawn while round 0 is the only one
in_round = rounds[rounds["round"] == rnd]
variant = url_choice("variant", [v for v in info.variants if v in set(in_round.variant)], "Variant", container=c2,
                     format_func=lambda v: label_of(v, info.config.reset))
trial = url_choice("trial", sorted(in_round.trial.unique().tolist()), "Trial", container=c3)
masks = store().masks(run_id, trial, rnd, variant)
shown = (run_id, trial, rnd, variant)  # what every figure below is drawn from, with the store's change token
kept, total = sum(int(m.sum()) for m in masks.values()), sum(m.size for m in masks.values())
context = f"{run_context(info)} · round {rnd}, {label_of(variant, info.config.reset)}, trial {trial}"
st.markdown(f"**Round {rnd}, {label_of(variant, info.config.reset)}, trial {trial}: {pct(kept / total)} of the weights remain** "
            f"({kept:,} of {total:,}).")

network, missing = run_network(run_id)  # stored with the run: no dataset is loaded to show it
kind, shape = (network.input_kind, network.input_shape) if network else (None, None)
names = network.feature_names if network and kind == "tabular" else None  # CSV header, col=value for one-hot text
first = next(iter(masks))  # the first layer: its inputs are the data's features

st.header("Each layer's mask")
for tab, (layer, mask) in zip(st.tabs(list(masks)), masks.items()):
    with tab:
        grid, (fy, fx) = mask_plots.block_average(mask)
        rows, cols = mask_plots.as_matrix(mask).shape
        note = (f"This {rows}×{cols} matrix is too big to draw cell by cell, so each cell shows the **fraction kept** in "
                f"a block of {fy}×{fx} weights ({grid.shape[0]}×{grid.shape[1]} cells)." if fy * fx > 1 else
                "Every cell is one weight.")
        if mask.ndim == 4:
            note += " A conv layer's kernels are laid out along each row (input channel × kernel position)."
        # every figure is built once per run, store change and choice (cached_chart), then reused
        cached_chart(("masks:heatmap", *shown, layer),
                     lambda: mask_plots.mask_heatmap(mask, layer, feature_names=names if layer == first else None),
                     "heatmap", context=context, downsample=note, token=token)
cached_chart(("masks:layers", *shown),
             lambda: mask_plots.layer_bars(store().layers(run_id)[lambda d: d.trial == trial], rnd, variant),
             "layer_bars", context=context, token=token)

first_mask = masks[first]
st.header(f"What the first layer ({first}) still sees")
if network is None:
    st.info(f"The input's shape is not known, so these maps cannot be drawn: {md(missing.rstrip('.'))}.")
elif first_mask.ndim == 2 and first_mask.shape[1] == math.prod(shape):
    # the notes differ: pixels, positions along a sequence, or tabular features (whose order means nothing)
    notes = {"image": ("survival", "fields"), "sequence": ("survival_sequence", "fields_rows")}
    survival_note, fields_note = notes.get(kind, ("survival_features", "fields_features"))
    left, right = st.columns(2)
    narrow = f"run {run_id} · round {rnd}, {variant}, trial {trial} · {plotly(info.config.dataset)}"  # half width
    with left:
        cached_chart(("masks:survival", *shown), lambda: mask_plots.survival_map(first_mask, shape, first, names),
                     survival_note, context=narrow, token=token)
    with right:
        cached_chart(("masks:fields", *shown), lambda: mask_plots.receptive_fields(first_mask, shape, feature_names=names),
                     fields_note, context=narrow, token=token)
else:
    st.info(f"The first layer of {info.config.arch} is convolutional: each of its weights is shared by every "
            "position of the input, so there is no per-pixel map. Its kernels are in the heatmap above.")

st.header("How masks change from round to round")
if len(available) > 1:
    def overlap():  # every round's masks: read only when the figure is not cached
        series = {(r, v): store().masks(run_id, trial, r, v) for r in available
                  for v in ("ticket", "random") if v in info.variants and (r > 0 or v == "ticket")}
        return mask_plots.overlap_plot(mask_plots.overlap_table(series))
    cached_chart(("masks:overlap", run_id, trial), overlap, "overlap", context=f"{run_context(info)} · trial {trial}", token=token)
else:
    st.info("Only one round has finished so far; the overlap needs two.")

st.header("Initial magnitudes of kept and pruned weights")
hist_layer = url_choice("layer", list(masks), "Layer", format_func=str)
init = store().init_weights(run_id, trial).get(f"{hist_layer}.weight")
if init is None:
    st.info(f"No initial weights are stored for {hist_layer}.")
else:
    if VARIANTS[variant].fresh_start:
        st.caption(f"{VARIANTS[variant].short.capitalize()} trains from starting weights drawn anew, which are not "
                   "stored; shown here: its mask (the ticket's) against the original init.")
    cached_chart(("masks:magnitudes", *shown, hist_layer),
                 lambda: mask_plots.init_magnitude_histogram(init, masks[hist_layer]), "magnitudes",
                 context=f"{context} · {hist_layer}", token=token)

with guard("The sensitivity section"):
    sensitivity_section(run_id, trial)  # each layer of the dense network pruned alone (background worker)
