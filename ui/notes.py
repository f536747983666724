"""Text for newcomers: the intro and one "What am I looking at?" note per plot (Markdown)."""
import pandas as pd
import streamlit as st

from lth_core.analysis import summary
from lth_core.engine.variants import TICKET, VARIANTS

INTRO = """\
**The lottery ticket hypothesis** (Frankle & Carbin, 2019): a big trained network hides a small
sub-network — a *winning ticket* — that, **reset to its original starting weights**, trains to the same
accuracy on its own. This app finds tickets the way the paper does, by *iterative magnitude pruning*:

1. train the full (*dense*) network — round 0;
2. remove (*prune*) a share of the weights with the smallest trained magnitude, e.g. 20 %;
3. reset the surviving weights to their starting values and train again — the next round;
4. repeat, so each round trains a smaller network.

To check that the starting values matter, every round can also train **controls** with the same number
of weights (chosen on New experiment). A winning ticket beats reinit and the random mask:
""" + "\n".join(f"- **{v.label}**: {v.explanation}" for n, v in VARIANTS.items() if n != TICKET) + "\n"

NOTES = {
    "accuracy": """\
Each point is one pruning round. **Left to right the network gets smaller**: the x axis is the share of
weights still there, on a log scale like the paper's figures (100 % = the dense network of round 0).
The y axis is the accuracy on test examples the network never trained on, at the end of each round's training.
Lines are the mean over trials. From 3 trials on, the shaded band is the **95 % confidence interval** of that
mean (a t-interval below 5 trials, a bootstrap from 5 on). With 2 trials it is the **range of the 2 trials**
(lowest to highest; the legend says "range of 2 trials"): a 95 % interval from two values uses t = 12.7 and would
be too wide to read. One trial gives no band.
The dotted line is the dense network. **A winning ticket stays near or above the dotted line** as it shrinks,
while the controls (reinit, random mask) fall below it sooner.""",
    "early_accuracy": """\
The same plot, but each network is scored at its **early-stopping iteration**: the moment of training when
its validation loss was lowest (the point where you would have stopped training to avoid over-fitting).
The paper reports accuracy at this point, so this is the closest to its figures.""",
    "early_iteration": """\
When each network reached its lowest validation loss (its early-stopping iteration): **lower means it learned
faster**. Frankle & Carbin found that winning tickets reach this point sooner than the dense network, while
reinit and random masks take longer as they shrink. With short training budgets many networks are still
improving at the last evaluation, so this point sits at the end of training.""",
    "curves_by_round": """\
How accuracy (or loss) develops during training, one line per round for the chosen variant; darker lines are
smaller networks. The dotted grey line is the dense network. The x axis counts training iterations
(one iteration = one batch of examples).""",
    "table": """\
Every trained network of the chosen runs: one row per trial, round and variant. *weights remaining* is the
share of prunable weights still there; accuracies are on the test set at the end of training and at the
early-stopping iteration (lowest validation loss). Percentages are rounded to one decimal, as everywhere in the
app; the downloaded CSV keeps the exact values as fractions (0.298 = 29.8 %). *train seconds* and *eval.
seconds* are the time the round's training steps and its evaluations took, shared equally by the networks
trained together (blank for runs recorded before evaluation was timed apart).""",
    "live_curves": """\
The round being trained right now: every variant of a round trains at the same time. Left: validation loss
(lower is better); right: accuracy on the test set. The dotted grey line is the dense network of round 0,
for reference. The lines grow as training proceeds; the page refreshes about once a second.""",
    "sweep": """\
Each cell of the grid is one run, summed up in one number, the same in the figure and the table.
**Fewest weights still matching dense** (lower is better): the sparsest **measured round** at which the winning
ticket's mean over trials stays within 1 point of the dense network, before it first falls below: the same round
the runs list shows and Compare's sentence names, never a value between rounds. **≤ x %** means the ticket still
matched dense at the run's last round: it would match further down, so x is an upper bound; **100.0 %**, that it fell
below already at the first pruned round. Its interval comes from each trial's own last round within.
**Test accuracy at a size** (higher is better): each trial's ticket accuracy at that share of weights,
interpolated between rounds, averaged over trials; a cell whose rounds never pruned that far stays blank and says so.
*Over trials* is the interval: with **2 trials, the two trials themselves** (lowest and highest); from 3 trials the
95 % confidence interval of the mean (a t-interval below 5 trials, a bootstrap from 5 on); none with one trial.""",
    "live_accuracy": """\
One point per finished round: test accuracy against the share of weights remaining (log scale; the network
gets smaller to the right). The x axis already spans the whole planned run, so the plot fills in from the left.
The dotted line is the dense network.""",
    "sensitivity": """\
Each colour is **one layer**, pruned alone by magnitude to the sparsity on the x-axis while every other layer stays
dense. **Dotted**: its test accuracy right after pruning, with no retraining; **solid**: after the short fine-tune (the
mask held, so the pruned weights stay zero). The dashed line is the dense network; the grey dotted one the dense network
after the same fine-tune, which the fine-tuned lines are judged against. A line that stays flat far to the right is a
layer with many weights to spare; one that drops early is sensitive and should be pruned more gently. The suggested
rates below come from the **validation** split, so these test accuracies stay an honest check.""",
    "heatmap": """\
The mask of one layer: every row is a unit (neuron) of the layer, every column one of its inputs, so each cell
is a connection (a weight). Dark = kept, light = pruned. {downsample}""",
    "layer_bars": """\
How much of each layer is left after this round. The output layer is pruned at half the rate by default, as in
the paper, so it keeps more of its weights. With *global* pruning one threshold is shared by the hidden layers,
so big layers can end up much sparser than small ones.""",
    "survival": """\
For the first layer only: **how many connections each input still has** to the layer's units, drawn in the
input's own shape (for images: one square per pixel). Bright inputs are still heavily used; dark ones have lost
most of their connections. With long enough training the surviving connections gather where the information is
(on digits: the middle, as the border pixels are always blank). With a short training budget the weights move
little from their random start, so the map stays nearly even — that is a real result too.""",
    "survival_sequence": """\
For the first layer only: **how many connections each input position still has** to the layer's units. On
MNIST-1D, tickets tend to keep neighbouring inputs together (local, convolution-like receptive fields).""",
    "survival_rings": """\
The map beside it, averaged over rings around the image centre: for each distance from the centre (in
pixels), how many first-layer units still connect to a pixel there, on average. A line that falls from left
to right means pruning kept more of the middle than of the border; a level line means every pixel kept about
as much (a random mask's line is level: it ignores where a pixel is).""",
    "fields": """\
A few units of the first layer, each drawn as the input it looks at: dark = the unit still has a connection
to that input. These are the units that kept the most connections.""",
    "fields_rows": """\
Every unit of the first layer as a row, its inputs as columns (dark = kept). Rows are sorted by the centre of
their kept inputs: a diagonal band means units connect to **neighbouring** inputs (local receptive fields).""",
    "overlap": """\
Of the weights a mask keeps in round r, the share that were also kept in round r − 1. Iterative pruning only ever
removes weights, so the ticket's line sits at 100 %: each ticket is a sub-network of the previous one. A random
mask is drawn afresh every round, so it shares only what chance gives (the dotted line).""",
    "magnitudes": """\
The size of each weight **before training** (its initial value), split into the weights this mask kept and the
ones it pruned; each group's bars sum to 100 %. Magnitude pruning looks at the weights **after** training, yet for
a winning ticket the kept weights also tend to start larger — they were lucky draws from the start. For a random
mask the two groups look the same.""",
    "gap": """\
For every pruning round, how far each variant is from the dense network, in percentage points of test accuracy:
a bar above zero means more accurate than the dense network, below zero less accurate. Thin lines on the bars are
the 95 % confidence interval of the mean over trials, or with 2 trials their range (lowest to highest; none
with one trial). The grey band just below zero is the tolerance: a bar ending inside it is at most {tolerance}
below the dense network and still counts as matching it. Hover over a bar to see the accuracy itself. The label
under each group gives the share of weights left in that round.""",
    "paired_gaps": """\
For every pruning round, the ticket's test accuracy minus each control's, in percentage points, taken **within
each trial** (same mask size, same data order) and then averaged: above the dotted zero line the ticket is better.
The error bars are the **95 % confidence interval** of that mean gap over trials from 3 trials on; with 2 trials
they are the two trials' gaps themselves (lowest to highest). Where a bar lies wholly above zero, the ticket led
in every trial (from 3 trials: its lead is unlikely to be chance); where it crosses zero, the trials cannot tell
the two apart yet — more trials narrow the bars. With one trial there are no bars: no interval can be given.""",
    "compare_curves": """\
Training of the three variants of one round, side by side with the dense network (dotted). Left: validation loss
— the lowest point of each line is its early-stopping iteration. Right: test accuracy. A winning ticket typically
learns faster (its loss falls sooner) and ends at least as accurate as reinit and the random mask.""",
    "estimate": """\
Each round trains the ticket and each control; round 0 trains the dense network once per trial. The time is
measured on this machine and covers what happens between pressing Run and the end: the background worker
starting (when none is running: its scheduler and then a process server that imports PyTorch and the engine,
each a fresh Python, timed by starting them; when one is already running: only a fork of that server, a
fraction of a second), then loading the dataset, every round's
training steps (a few real steps of the engine's own loop on the round's networks, averaged), every
evaluation on the validation and test sets, and each round's bookkeeping: starting every network, pruning,
the sanity checks and saving the round (timed by running the engine's own rounds, one step long, on the run's
networks into a throw-away store). Other work that starts on the machine
later slows the run down; Live run shows the elapsed time and how long is left.""",
    "deployment": """\
What the sparse ticket would cost to ship, counted exactly from its mask (trial 0, prunable layers only;
biases are small and unchanged). **Storage**: the dense network keeps every weight as a 4-byte float; the
ticket keeps only its surviving values plus where they are — one bit per original weight (bitmask) or a
4-byte column index per value (CSR), whichever is smaller. **Multiply-adds**: the arithmetic of one forward
pass, which sparse kernels or hardware can skip for pruned weights. These are what a sparse format *could*
save, not a measured speed-up: ordinary dense kernels gain nothing from zeros.""",
    "compare_table": """\
One row per round: the share of weights left, then each variant's test accuracy at the end of training (the
mean over trials, with its spread in brackets: the range of the trials with 2, the 95 % confidence interval from 3), then the iteration at which each variant reached its lowest validation loss (its
early-stopping iteration; smaller means it learned faster). Round 0 is the dense network.""",
    "survival_features": """\
For the first layer only: **how many connections each input feature still has** to the layer's units. A feature
that keeps few connections matters little to the ticket; on tabular data the order of the features means
nothing, so look at the heights, not at neighbours.""",
    "stability_barrier": """\
Each point is one **k**: the dense network was trained for k iterations, then copied, and the two copies were
trained for a full round each with a **different order of the training data**. Then every network on the
straight line between the two trained copies was tested. The y axis is the **error barrier**: the worst test
error on that line minus the mean error of its two ends. A barrier near 0 means both copies ended in the same
valley of the loss landscape, whatever the data order (*stable*); a high barrier means the data order decided
where training ended (*unstable*). The dashed line is the paper's threshold of 2 %; the star marks **k\\***,
from where the dense network stays stable. Sparse networks (the ticket and its controls) keep their mask on
every point of the line. Frankle et al. (2020) find that a ticket matches the dense network exactly where it
is stable, and that is why rewinding to an iteration k ≥ k\\* works where resetting to 0 fails.""",
    "stability_path": """\
The test error of the networks on the straight line between two copies trained from the same starting point
(α = 0 is copy A, α = 1 copy B, α = 0.5 the average of their weights), one line per k (dark: copied early, light:
late). A bump in the middle is the barrier between them. With batch norm, the normalisation statistics of every
point (the ends too) are recomputed from the same 500 training examples, since the statistics of two networks do
not average into those of the network between them.""",
    "stability_end": """\
The test error of the trained copies themselves (the mean of the two ends of each line), against the k they were
copied at: how well a network started from iteration k trains. Where the ticket is stable it should be as good as
the dense network; the controls stay worse.""",
    "fields_features": """\
Every unit of the first layer as a row, the input features as columns (dark = kept). On tabular data the order of
the features is arbitrary, so what matters is which features many units keep.""",
}


def one_trial_notice(rounds: pd.DataFrame) -> None:
    """On a one-trial run, say plainly that no interval can be given and suggest more trials."""
    if summary.trials_of(rounds) == 1:
        st.info(summary.ONE_TRIAL_MESSAGE, icon=":material/info:")
