"""Results: accuracy and early stopping against weights remaining for one run or several overlaid,
learning curves of any round, and the table as CSV."""
import pandas as pd
import streamlit as st

from lth_core.analysis import plots
from ui.example import example_notice
from lth_core.analysis.summary import run_summary
from ui.notes import one_trial_notice
from ui.report import report_section
from ui.text import md, plotly
from ui.widgets import (cached, cached_chart, explain, run_context, run_picker, stop_page, store, store_token,
                        url_choice, url_multi, variant_legend)

st.title("Results")
token = store_token()  # before any row is read: a write meanwhile then changes the token, and redraws
run_ids = run_picker(multi=True)
infos = {i: store().get_run(i) for i in run_ids}
example_notice(*run_ids)  # the badge and provenance of the shipped example run
names = {i: f"{info.name} ({i})" for i, info in infos.items()}
context = run_context(infos[run_ids[0]]) if len(run_ids) == 1 else None  # several runs: the legend names them
frames = [store().rounds(i).assign(run=plotly(names[i]), run_id=i) for i in run_ids]
rounds = pd.concat(frames, ignore_index=True)
resets = {plotly(names[i]): info.config.reset for i, info in infos.items()}  # each run's reset names its ticket
if rounds.empty:
    st.info("None of these runs has finished a round yet.")
    stop_page()
for i in run_ids:
    r = rounds[rounds.run_id == i]
    if not r.empty:
        if len(run_ids) > 1:
            st.markdown(f"**{md(names[i])}**")
        lines = cached(("results:summary", i), lambda: run_summary(r.drop(columns=["run", "run_id"]),
                                                                   reset=infos[i].config.reset), token=token)
        st.markdown("\n".join(f"- {line}" for line in lines))
        one_trial_notice(r)
trained = [v for v in plots.VARIANTS if any(v in info.variants for info in infos.values())]
one_reset = infos[run_ids[0]].config.reset if len(set(resets.values())) == 1 else "init"
variants = url_multi("variants", trained, "Variants to draw", default=trained,
                     format_func=lambda v: plots.label_of(v, one_reset),
                     field="variants", placeholder="choose variants (the dense network is always drawn)")
if len(run_ids) > 1:
    st.caption("Several runs: **each run has its own colour**; the line style tells the variants apart ("
               + ", ".join(f"{plots.short_of(v, one_reset)} {plots.line_style_text(v)}"
                           for v in variants) + ", dense network dotted; "
               "runs whose dense networks score the same share one dotted line).")
else:
    variant_legend(variants + ["dense"], one_reset)

shaded = cached(("results:bands", tuple(run_ids)), lambda: plots.band_words(plots.trial_stats(rounds, "test_accuracy")), token=token)
st.caption("Lines are the mean over trials; " + (
    f"**bands are the {shaded}** (lowest to highest; a 95 % interval from 2 trials would be too wide to read)"
    if shaded.startswith("range") else "**bands are its 95 % confidence interval**") + " (none with one trial).")
# each figure is built once per run(s), store change and choice (cached_chart): a rerun or a second visit reuses it
shown_for = (tuple(run_ids), tuple(variants))
cached_chart(("results:accuracy", *shown_for),
             lambda: plots.accuracy_vs_weights(rounds, "test_accuracy", title="Test accuracy as the network is pruned",
                                               variants=variants, reset=resets), "accuracy", context=context, token=token)
narrow = len(run_ids) == 1  # one run: the two early-stopping charts side by side
left, right = st.columns(2) if narrow else (st.container(), st.container())
with left:
    cached_chart(("results:early_accuracy", *shown_for),
                 lambda: plots.accuracy_vs_weights(rounds, "early_stop_test_accuracy", variants=variants, narrow=narrow,
                                                   reset=resets, title="Test accuracy at the early-stopping iteration"),
                 "early_accuracy", context=context, token=token)
with right:
    cached_chart(("results:early_iteration", *shown_for),
                 lambda: plots.accuracy_vs_weights(rounds, "early_stop_iteration", variants=variants, narrow=narrow,
                                                   reset=resets, title="When training peaked (early stopping)"),
                 "early_iteration", context=context, token=token)

st.header("Learning curves of any round")
c1, c2, c3 = st.columns([2, 1, 1]) if len(run_ids) > 1 else (None, *st.columns(2))
curve_run = url_choice("curves_run", run_ids, "Run", container=c1, format_func=names.get,
                       field="run of the learning curves") if c1 else run_ids[0]
info = infos[curve_run]
variant = url_choice("variant", info.variants, "Variant", container=c2,
                     format_func=lambda v: plots.label_of(v, info.config.reset))
metric = url_choice("metric", ["test_accuracy", "val_loss", "train_loss", "val_accuracy"], "Measure",
                    container=c3, format_func=lambda m: plots.METRICS[m][0], field="measure")
own = rounds[rounds.run_id == curve_run]
available = sorted(own["round"].unique().tolist())
shown = url_multi("rounds", available, "Rounds", default=available, placeholder="choose rounds to draw")
if not shown:
    st.info("Choose at least one round above to draw its learning curve.")
else:
    def learning_curves():
        curves = store().curves(curve_run)  # read only when the figure is not cached
        return plots.curves_by_round(curves[curves["round"].isin(shown)], own, variant, metric, reset=info.config.reset)
    cached_chart(("results:curves", curve_run, tuple(shown), variant, metric), learning_curves, "curves_by_round",
                 context=run_context(info), token=token)

st.header("The numbers")
table = rounds.drop(columns=["run"]).rename(columns={"run_id": "run"})
table = table[["run"] + [c for c in table.columns if c != "run"]]
# on screen in percent with one decimal, as on every other page; the CSV keeps the store's fractions
PERCENT = {"weights_remaining": "weights remaining", "test_accuracy": "test accuracy",
           "val_accuracy": "validation accuracy", "early_stop_test_accuracy": "test acc. at early stop"}
st.dataframe(table.assign(**{c: 100 * table[c] for c in PERCENT}), hide_index=True, column_config={
    **{c: st.column_config.NumberColumn(label, format="%.1f %%") for c, label in PERCENT.items()},
    "early_stop_iteration": "early-stop iteration",
    "early_stop_val_loss": st.column_config.NumberColumn("min. validation loss", format="%.4f"),
    "train_seconds": st.column_config.NumberColumn("train seconds", format="%.2f"),
    "eval_seconds": st.column_config.NumberColumn("eval. seconds", format="%.2f")})
st.download_button("Download the table as CSV", data=table.to_csv(index=False).encode(), icon=":material/download:",
                   file_name=f"lottery-{'-'.join(run_ids)}.csv", mime="text/csv")
explain("table")

report_section(run_ids, "results")
