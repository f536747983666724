"""Compare: the winning ticket against reinit and random masks at each sparsity, with the dense
baseline: a plain-language summary, accuracy round by round, and learning curves at one round."""
import pandas as pd
import streamlit as st

from lth_core.recommend import TOLERANCE_POINTS, gap_points, recommended_round
from ui import plots
from ui.example import example_notice
from ui.deployment import CAVEAT, savings_sentence, savings_table, ticket_savings
from ui.summary import gap_verdict, means, pct, round_sentence, run_summary
from ui.widgets import chart, explain, run_context, run_picker, store, url_choice, variant_legend

st.title("Compare: ticket vs. controls")
run_id = run_picker()
info = store().get_run(run_id)
example_notice(run_id)  # the badge and provenance of the shipped example run
rounds = store().rounds(run_id)
pruned = sorted(r for r in rounds["round"].unique().tolist() if r > 0)

st.subheader("In plain words")
st.markdown("\n".join(f"- {line}" for line in run_summary(rounds)))
if len(info.variants) == 1:
    st.info("This run trained no controls (reinit, random mask), so there is nothing to compare the ticket with. "
            "Tick them on **New experiment** for the next run.")
if not pruned:
    st.info("No pruned round has finished yet; the comparison starts after round 1.")
    st.stop()

rnd = url_choice("round", pruned, "Round to look at", kind="select_slider", default=pruned[-1],
                 format_func=lambda r: f"{r} ({pct(rounds[rounds['round'] == r].weights_remaining.mean())})")
st.markdown(f"#### {round_sentence(rounds, rnd)}")
m = means(rounds).set_index(["round", "variant"])["test_accuracy"]
dense = m.get((0, "ticket"))
cols = st.columns(len(info.variants) + 1)
for col, variant in zip(cols, info.variants):
    value = m.get((rnd, variant))
    if value is not None:
        # the difference of the two numbers as printed, so 78.1 % against 77.2 % reads +0.9, not +1.0
        gap = None if dense is None else gap_points(value, dense)
        color, words = gap_verdict(gap) if gap is not None else ("off", None)
        col.metric(plots.LABELS[variant], pct(value), None if gap is None else f"{gap:+.1f} pts vs dense",
                   delta_color=color, help=words and f"{words} (tolerance {TOLERANCE_POINTS:g} point)")
if dense is not None:
    cols[-1].metric("dense network (round 0)", pct(dense))
st.caption(f"A variant **matches** the dense network while it is at most **{TOLERANCE_POINTS:g} percentage point** "
           "below it (green); further below is red. The shaded band in the chart below is that tolerance.")

variant_legend([*info.variants, "dense"])
chart(plots.accuracy_gap_by_round(rounds), "gap", context=run_context(info), tolerance=TOLERANCE_POINTS)
curves = store().curves(run_id)
chart(plots.compare_curves(curves[curves["round"].isin([0, rnd])], rnd), "compare_curves", context=run_context(info))

st.subheader("Round by round")
acc = means(rounds).pivot(index="round", columns="variant", values="test_accuracy")
stop = means(rounds, "early_stop_iteration").pivot(index="round", columns="variant", values="early_stop_iteration")
remaining = rounds.groupby("round").weights_remaining.mean()
table = pd.DataFrame({"weights remaining": remaining.map(pct)})
short = {"ticket": "ticket", "reinit": "reinit", "random": "random mask"}
for variant in info.variants:
    if variant in acc:
        table[f"{short[variant]}: accuracy"] = acc[variant].map(lambda v: pct(v) if v == v else "")
for variant in info.variants:
    if variant in stop:
        table[f"{short[variant]}: early stop"] = stop[variant].map(lambda v: f"{v:.0f}" if v == v else "")
st.caption("Test accuracy (mean over trials) and the early-stopping iteration (lowest validation loss) of every round.")
st.dataframe(table.reset_index(), hide_index=True)
explain("compare_table")

st.subheader("What this ticket would save in deployment")
recommended = recommended_round(rounds)
deploy = url_choice("deploy_round", pruned, "Ticket of round", kind="select_slider",
                    default=recommended if recommended is not None else pruned[0], field="round to deploy",
                    format_func=lambda r: f"{r} ({pct(rounds[rounds['round'] == r].weights_remaining.mean())})"
                                          + (" · recommended" if r == recommended else ""))
if recommended is None:
    st.warning(f"No round's ticket stays within {TOLERANCE_POINTS:g} point of the dense network, so there is no "
               "recommended round; this opens on round 1, the least pruned.", icon=":material/info:")
else:
    st.caption(f"Opens on round {recommended}: the sparsest ticket whose test accuracy stays within "
               f"{TOLERANCE_POINTS:g} point of the dense network.")
saved = ticket_savings(info.config, store().layers(run_id), deploy)
st.markdown(savings_sentence(saved, deploy))
st.warning(CAVEAT, icon=":material/speed:")
st.dataframe(savings_table(saved), hide_index=True)
explain("deployment")
