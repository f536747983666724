"""Compare: the winning ticket against reinit and random masks at each sparsity, with the dense
baseline: a plain-language summary, whether the ticket's lead is real (paired gaps with 95 % confidence
intervals, critical sparsity), accuracy round by round, and learning curves at one round."""
import pandas as pd
import streamlit as st

from lth_core.analysis import statistics
from lth_core.analysis.recommend import gap_points, points_text, recommended_round
from lth_core.analysis import plots
from lth_core.engine.variants import CONTROLS, TICKET, phrase
from ui.example import example_notice
from lth_core.analysis.deploy_bench import stored_summary
from ui.deployment import CAVEAT, savings_sentence, savings_table, ticket_savings
from lth_core.analysis.summary import (gap_verdict, headline, interval_text, means, pct, round_sentence, run_summary,
                                       two_numbers)
from ui.notes import one_trial_notice
from ui.checks import checklist, rerun_button
from ui.report import report_section
from ui.text import md
from ui.tolerance import follow_recommended, link_params, round_caption, round_label, tolerance_setting
from ui.widgets import (ICONS, PAGES, cached, cached_chart, explain, guard, run_context, run_network, run_picker,
                        stop_page, store, store_token, url_choice, variant_legend, whole_table)

st.title("Compare: ticket vs. controls")
token = store_token()  # before any row is read: a write meanwhile then changes the token, and redraws
run_id = run_picker()
info = store().get_run(run_id)
example_notice(run_id)  # the badge and provenance of the shipped example run
tol = tolerance_setting(st.columns([1, 2])[0])  # points below dense that still "match": everything below follows it
rounds = store().rounds(run_id)
pruned = sorted(r for r in rounds["round"].unique().tolist() if r > 0)
reset = info.config.reset  # names the ticket: a winning ticket, rewound, or pruned + fine-tuned with none
# what the page computes from the run's rounds, once per run and store change (ui.widgets.cached)
finding = cached(("compare:headline", run_id), lambda: headline(rounds, reset=reset), token=token)  # from its sparsest round
if finding:
    st.markdown(f"#### {md(finding)}")

st.subheader("In plain words")
st.markdown("\n".join(f"- {line}" for line in cached(("compare:summary", run_id, tol),
                                                      lambda: run_summary(rounds, reset=reset, tolerance=tol), token=token)))
if len(info.variants) == 1:
    st.info(f"This run trained no controls ({', '.join(plots.SHORT[c] for c in CONTROLS)}), so there is nothing to compare the ticket with. "
            "Tick them on **New experiment** for the next run.")

st.subheader("Sanity checks")
with guard("The sanity checks"):
    checklist(run_id)
    if not rounds.empty:
        done = sorted(rounds["round"].unique().tolist())
        rerun_button(run_id, done, done[-1])

if not pruned:
    st.info("No pruned round has finished yet; the comparison starts after round 1.")
    stop_page()

st.subheader(f"Is {phrase(TICKET, reset)}'s lead real?")
one_trial_notice(rounds)
gaps = cached(("compare:paired_gaps", run_id), lambda: statistics.paired_gaps(rounds), token=token)
if not gaps.empty:
    cached_chart(("compare:gaps", run_id), lambda: plots.paired_gap_plot(gaps, reset), "paired_gaps",
                 context=run_context(info), token=token)
    for control in statistics.controls_of(rounds):
        st.markdown(f"**{plots.short_of(TICKET, reset)} − {plots.SHORT.get(control, control)}**")
        st.markdown("\n".join(f"- {line}" for line in statistics.gap_sentences(gaps, control, reset=reset)))

rnd = url_choice("round", pruned, "Round to look at", kind="select_slider", default=pruned[-1],
                 format_func=lambda r: f"{r} ({pct(rounds[rounds['round'] == r].weights_remaining.mean())})")
st.markdown(f"#### {round_sentence(rounds, rnd, reset=reset)}")
m = means(rounds).set_index(["round", "variant"])["test_accuracy"]
dense = m.get((0, TICKET))
cols = st.columns(len(info.variants) + 1)
for col, variant in zip(cols, info.variants):
    value = m.get((rnd, variant))
    if value is not None:
        # the difference of the two numbers as printed, so 78.1 % against 77.2 % reads +0.9, not +1.0
        gap = None if dense is None else gap_points(value, dense)
        color, words = gap_verdict(gap, tol) if gap is not None else ("off", None)
        col.metric(plots.label_of(variant, reset), pct(value), None if gap is None else f"{gap:+.1f} pts vs dense",
                   delta_color=color, help=words and f"{words} (tolerance {points_text(tol)})")
if dense is not None:
    cols[-1].metric("dense network (round 0)", pct(dense))
st.caption(f"A variant **matches** the dense network while it is at most **{tol:g} percentage "
           f"point{'' if tol == 1 else 's'}** "
           "below it (green); further below is red. The shaded band in the chart below is that tolerance.")

variant_legend([*info.variants, "dense"], reset)
cached_chart(("compare:gap", run_id, tol), lambda: plots.accuracy_gap_by_round(rounds, tolerance=tol, reset=reset), "gap",
             context=run_context(info), tolerance=points_text(tol), token=token)


def round_curves():
    curves = store().curves(run_id)  # read only when the figure is not cached
    return plots.compare_curves(curves[curves["round"].isin([0, rnd])], rnd, reset=reset)


cached_chart(("compare:curves", run_id, rnd), round_curves, "compare_curves", context=run_context(info), token=token)

st.subheader("Round by round")
# the spread the plots shade (round_bands): the 2 trials' range with 2, the 95 % CI from 3
acc = cached(("compare:bands", run_id, "test_accuracy"),
             lambda: statistics.round_bands(rounds, "test_accuracy"), token=token).set_index(["round", "variant"])
stop = cached(("compare:bands", run_id, "early_stop_iteration"),
              lambda: statistics.round_bands(rounds, "early_stop_iteration"), token=token).set_index(["round", "variant"])
remaining = rounds.groupby("round").weights_remaining.mean()


def round_table(values: pd.DataFrame, fmt) -> pd.DataFrame:
    """One row per round, one short column per variant (the table fits a 1280 px window): mean (spread)."""
    table = pd.DataFrame({"weights": remaining.map(pct)})
    for variant in info.variants:
        table[plots.short_of(variant, reset)] = [interval_text(values.loc[(r, variant)], fmt)
                                                 if (r, variant) in values.index else "" for r in table.index]
    return table.reset_index()


bracket = plots.band_words(acc.reset_index().rename(columns={"low": "lo", "high": "hi"}))
st.caption("Each variant's mean over trials and, in brackets, " + (
    f"the {bracket} (lowest–highest; a 95 % interval from 2 trials would be too wide to read)"
    if bracket.startswith("range") else f"its {bracket.replace('CI', 'confidence interval')}" if bracket else
    "nothing: one trial gives no interval") + " (it says *both trials* where the trials gave the same value). Weights: the "
    "share of the weights the round keeps.")
st.markdown("**Test accuracy**")
whole_table(round_table(acc, pct))
st.markdown("**Early-stopping iteration** (lowest validation loss; smaller: learned faster)")
whole_table(round_table(stop, lambda v: f"{v:.0f}"))
explain("compare_table")

st.subheader("What this ticket would save in deployment")
recommended = recommended_round(rounds, tol)
follow_recommended("w:deploy_round", recommended)  # a tolerance changed by hand moves to its recommended round
deploy = url_choice("deploy_round", pruned, "Ticket of round", kind="select_slider",
                    default=recommended if recommended is not None else pruned[0], field="round to deploy",
                    format_func=round_label(rounds, recommended))
why = two_numbers(rounds, tol) if recommended is not None else ""  # when the critical sparsity above says otherwise
st.caption(round_caption(deploy, recommended, tol, "the sparsest round whose ticket, by its mean test accuracy over "
                         f"trials and (with 2 or more trials) by the lower end of its spread, is within {points_text(tol)} "
                         "of the dense network." + (f" {md(why)}" if why else "")))
network, missing = run_network(run_id)  # stored with the run: no dataset is loaded, no network built
if network is None:
    st.info(f"The savings cannot be counted: {md(missing.rstrip('.'))}.")
else:
    saved = ticket_savings(network, store().layers(run_id), deploy)
    st.markdown(savings_sentence(saved, deploy))
measured = store().doc(run_id, f"deploy/{deploy}/0")  # the Deploy page's bench of this ticket (trial 0), if any
if measured:
    st.success(f"**Measured on {md(measured['machine']['cpu'])}**, trial 0 ({md(measured['created_at'])}): "
               f"{md(stored_summary(measured))}", icon=":material/speed:")
else:
    st.warning(CAVEAT, icon=":material/speed:")
st.page_link(PAGES["deploy"], label="Deploy: measure file sizes, latency and accuracy on this machine, and download "
             "the ticket", icon=ICONS["deploy"], query_params={"run": run_id, "round": str(deploy), "trial": "0", **link_params()})
if network is not None:
    st.dataframe(savings_table(saved), hide_index=True)
explain("deployment")

report_section([run_id], "compare", tolerance=tol)
