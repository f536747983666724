"""Compare, Results and the runs table show lth_core.analysis.statistics on real runs (conftest.app_store): the
sentences and numbers on the page are the ones the statistics module computes for that run; a one-trial
run says that no interval can be given and draws no band."""

from lth_core.analysis import statistics
from lth_core.runs.store import RunStore
from lth_core.analysis import summary
from test_app_pages import figures, no_errors, page, runs, text, values  # noqa: F401 - runs is a fixture


def _bands(at) -> list[dict]:
    return [t for f in figures(at) for t in f["data"] if t.get("fill") == "toself"]


def _error_bars(at) -> list[dict]:
    return [t["error_y"] for f in figures(at) for t in f["data"] if t.get("error_y", {}).get("visible")]


def test_compare_prints_the_paired_gaps_and_critical_sparsity_of_the_run(runs):
    done = runs["done"]
    rounds = RunStore().rounds(done)
    at = page("compare", run=done, round="2")
    no_errors(at)
    shown = text(at)
    gaps = statistics.paired_gaps(rounds)
    for control in ("reinit", "random"):
        for line in statistics.gap_sentences(gaps, control):
            assert f"- {line}" in shown
    critical = statistics.critical_sparsity(rounds)
    for variant in ("ticket", "reinit", "random"):
        assert summary.unbroken(statistics.critical_sentence(critical, variant)) in shown  # units joined
    said = statistics.critical_sentence(critical, "ticket")  # 2 trials: an interval is given, or none is needed
    assert "mean of 2 trials; " in said and "95 % CI" not in said, said
    # one term for how far it can be pruned, as weights remaining: "critical sparsity" mixed the two
    assert "critical" not in shown.lower()
    (fig,) = [f for f in figures(at) if f["layout"]["title"]["text"].startswith("Ticket minus each control")]
    reinit = next(t for t in fig["data"] if t["name"] == "ticket − reinit")
    mine = gaps[gaps.control == "reinit"].sort_values("round")
    assert values(reinit["y"]) == [float(v) for v in mine["mean"]]
    assert values(reinit["error_y"]["array"]) == [float(v) for v in mine["high"] - mine["mean"]]
    assert not any("one trial" in i.value.lower() for i in at.info)
    # the round-by-round table: mean and, with 2 trials, their range (round_bands), as the plots and Results show
    table = at.dataframe[0].value
    acc = statistics.round_bands(rounds).set_index(["round", "variant"])
    cell = table.loc[table["round"] == 2, "ticket"].iloc[0]
    assert cell == summary.interval_text(acc.loc[(2, "ticket")]) and "–" in cell
    two = rounds[(rounds["round"] == 2) & (rounds.variant == "ticket")].test_accuracy
    assert cell == f"{summary.pct(two.mean())} ({summary.pct(two.min()).rstrip(' %')}–{summary.pct(two.max())})"
    assert any("in brackets, the range of 2 trials" in c.value for c in at.caption)
    # short columns that fit 1280 px: accuracy and early stopping in two tables
    stops = at.dataframe[1].value
    assert list(table.columns) == list(stops.columns) == ["round", "weights", "ticket", "reinit", "random mask"]
    assert list(table["round"]) == sorted(rounds["round"].unique())
    # (its height, every row without an inner scroll, is seen in a browser: AppTest does not expose it)
    assert not any("95 % confidence interval." in c.value for c in at.caption)


def test_results_draws_the_range_of_two_trials_and_names_it(runs):
    done = runs["done"]  # 2 trials: their range (min–max), not a t-interval of t = 12.7
    rounds = RunStore().rounds(done)
    at = page("results", run=done)
    no_errors(at)
    critical = statistics.critical_sparsity(rounds)
    assert summary.unbroken(statistics.critical_sentence(critical, "ticket")) in text(at)
    assert any("bands are the range of 2 trials" in c.value for c in at.caption)
    assert any("range of the 2 trials" in m.value for m in at.markdown)  # the "What am I looking at?" note
    band = next(t for t in figures(at)[0]["data"] if t.get("fill") == "toself" and t.get("showlegend"))
    assert band["name"] == "shaded: range of 2 trials"
    ticket = rounds[rounds.variant == "ticket"].groupby("round").test_accuracy
    assert values(band["y"])[:len(ticket)] == [100 * v for v in ticket.max()]


def test_a_one_trial_run_says_no_interval_can_be_given_and_draws_no_band(runs):
    other = runs["other"]  # the same tiny run with one trial
    for name in ("compare", "results"):
        at = page(name, run=other, **({"round": "2"} if name == "compare" else {}))
        no_errors(at)
        assert any(i.value == summary.ONE_TRIAL_MESSAGE for i in at.info), name
        assert "Run **3 trials**" in summary.ONE_TRIAL_MESSAGE
        assert not _bands(at) and not _error_bars(at), name  # never a band (or bar) of width zero
        assert "run 3 trials or more" in text(at)


def test_the_runs_table_has_the_critical_column(runs):
    at = page("new_experiment")
    no_errors(at)
    table = at.dataframe[0].value
    for run_id in (runs["done"], runs["other"]):
        cell = table.loc[run_id, "critical"]
        assert cell == statistics.critical_cell(RunStore().rounds(run_id)) and cell.endswith(" %")
    assert table.loc[runs["failed"], "critical"] == ""


def test_compare_opens_with_one_sentence_of_the_runs_finding(runs):
    done = runs["done"]
    rounds = RunStore().rounds(done)
    at = page("compare", run=done)
    no_errors(at)
    m = summary.means(rounds).set_index(["round", "variant"])["test_accuracy"]
    last = int(rounds["round"].max())
    ticket, reinit, random = (m[(last, v)] for v in ("ticket", "reinit", "random"))
    words = lambda gap, unit="": f"{abs(gap):.1f}{unit} {'above' if gap > 0 else 'below'}" if gap else "level with"  # noqa: E731
    from lth_core.analysis.recommend import gap_points
    want = (f"At {summary.pct(rounds[rounds['round'] == last].weights_remaining.mean())} of weights the winning ticket "
            f"reaches {summary.pct(ticket)} (dense {summary.pct(m[(0, 'ticket')])}), "
            f"{words(gap_points(ticket, reinit), ' points')} reinit and {words(gap_points(ticket, random))} the random "
            "mask (2 trials).")
    first = at.markdown[0].value if not at.markdown[0].value.startswith("- ") else ""
    heading = next(md.value for md in at.markdown if md.value.startswith("#### At "))
    assert heading == f"#### {summary.unbroken(want)}", (heading, first)  # numbers and units joined
    # beside the recommended round, when there is one and the critical sparsity differs, why they differ (the
    # sentence itself: test_the_recommended_round_and_a_different_critical_sparsity_say_why)
    from ui.text import md
    why = summary.two_numbers(rounds)
    assert why is None or any(md(why) in c.value and "the recommended ticket" in c.value for c in at.caption), why
    # it comes before everything else the page says about the run
    assert [md.value for md in at.markdown].index(heading) < [md.value for md in at.markdown].index(
        next(md.value for md in at.markdown if md.value.startswith("- ")))


def test_the_recommended_round_and_a_different_critical_sparsity_say_why():
    from test_statistics import table
    # gaps 0, -0.5, -1.5, -3 at 80, 40, 20, 10 %: round 2 (40 %) is recommended and is where the ticket matches
    # dense down to: both are the same measured round now (the interpolated 28.3 % needed a sentence)
    weights = [1.0, 0.8, 0.4, 0.2, 0.1]
    assert summary.two_numbers(table({"ticket": [[0.90, 0.90, 0.895, 0.885, 0.87]]}, weights=weights)) is None
    # the mean of 2 trials is within at 40 % (gap −1.0) but the lowest trial is not (−2.0): round 1 is recommended
    lower = table({"ticket": [[0.90, 0.90, 0.90, 0.87, 0.86], [0.90, 0.90, 0.88, 0.87, 0.86]]}, weights=weights)
    assert summary.two_numbers(lower) == (
        "Why the recommended round 1 keeps 80.0 % of the weights while the ticket matches dense down to 40.0 %: both "
        "are measured rounds judged by the mean over trials; at 40.0 % the mean over trials is within 1 point of dense "
        "but the lower end of its spread (the lowest trial with 2 trials, the 95 % CI's lower bound from 3) is not.")
    # a dip at 40 % and back within at 20 %: the recommendation judges each round on its own
    dip = table({"ticket": [[0.90, 0.90, 0.87, 0.90, 0.86]]}, weights=weights)
    assert summary.two_numbers(dip) == (
        "Why the recommended round 3 keeps 20.0 % of the weights while the ticket matches dense down to 80.0 %: both "
        "are measured rounds judged by the mean over trials; the ticket's mean falls more than 1 point below dense "
        "after 80.0 % and comes back within at round 3: the recommendation judges every round on its own, while "
        "matching dense stops at the first round that falls below.")
    never = table({"ticket": [[0.90, 0.91, 0.905, 0.90, 0.895]]})  # never leaves: ≤ 41.0 % and round 4 agree
    assert summary.two_numbers(never) is None
