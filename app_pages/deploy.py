"""Deploy: what a ticket buys, measured on this machine. "Measure" queues the deployment bench in the background
worker (lth_core.runs.tasks), which keeps its result with the run; the page shows the stored result: file
sizes, latency, accuracy of every variant, units removed, the break-even plot, and the export files to
download. It never trains or times anything itself, so it opens at once, also when the run's dataset files
are gone."""
import json
from pathlib import Path

import streamlit as st

from lth_core.analysis import deploy_view
from lth_core.analysis.exports import EXPORT_FORMATS, META_FILE, download_name, ticket_readme
from lth_core.analysis.deploy_bench import BATCHES, DeployBench, summary
from lth_core.analysis.recommend import points_text, recommended_round
from lth_core.engine.errors import ConfigError
from lth_core.runs import jobs, tasks
from lth_core.runs.store import StoreError
from ui.task_notice import task_notice
from ui.text import md
from ui.tolerance import follow_recommended, round_caption, round_label, tolerance_setting
from ui.widgets import (chart, guarded, one_line, run_context, run_links, run_picker, stop_page, store, url_choice,
                        whole_table)

REFRESH_S = 1.5
DOWNLOADS = {  # export file -> what it is, in words: every format of the registry, then the two it explains them with
    **{f.file: f.label for f in EXPORT_FORMATS.values()},
    "README.txt": "README.txt: how to load each",
    "ticket.json": "ticket.json: architecture and shapes",
}
HELP = {f.file: f.description for f in EXPORT_FORMATS.values()}  # a button's tooltip: the format in full



def readme_as_downloaded(folder: Path, prefix: str) -> str:
    """The export's README.txt, naming the files as they are downloaded (run, round and trial before each name),
    so its lines run on the downloads without renaming them."""
    meta = json.loads((folder / META_FILE).read_text())
    return ticket_readme(meta, [f for f in EXPORT_FORMATS.values() if (folder / f.file).is_file()], prefix)


st.title("Deploy: what the ticket buys, measured")
run_id = run_picker()
info = store().get_run(run_id)
rounds = store().rounds(run_id)
pruned = sorted(int(r) for r in rounds["round"].unique() if r > 0)
if not pruned:
    st.info("No pruned round has finished yet; a ticket to measure appears after round 1.")
    stop_page()
left, right, tol_col = st.columns([2, 1, 1])
tol = tolerance_setting(tol_col)  # points below dense that still "match": the recommended ticket follows it
recommended = recommended_round(rounds, tol)


follow_recommended("w:round", recommended)  # a tolerance changed by hand moves the page to its recommended round
rnd = url_choice("round", pruned, "Ticket of round", container=left, field="round",
                 default=recommended if recommended is not None else pruned[-1], format_func=round_label(rounds, recommended))
trials = sorted(int(t) for t in rounds["trial"].unique())
trial = url_choice("trial", trials, "Trial", container=right, field="trial", default=trials[0])
st.caption(round_caption(rnd, recommended, tol, f"the sparsest round whose ticket stays within {points_text(tol)} of "
                        "the dense network's test accuracy, by its mean and, with 2 or more trials, by the lower end "
                        "of its spread."))

path = str(store().path)
task_key = tasks.task_key("deploy", rnd, trial)


def measure() -> None:
    try:
        jobs.submit_deploy(run_id, rnd, trial, threads=st.session_state.get("deploy:threads", 1), store_path=path)
        export = store().doc(run_id, f"export/{rnd}/{trial}")
        if export is None or not Path(export["folder"]).is_dir():
            jobs.submit_export(run_id, rnd, trial, store_path=path)
    except (ConfigError, StoreError) as exc:
        st.session_state["deploy:error"] = one_line(exc)


task = tasks.get(store(), run_id, task_key)
busy = task is not None and task.active
export_key = tasks.task_key("export", rnd, trial)


def task_states() -> tuple[str | None, str | None]:
    """The states of the bench and the export of this ticket (None: never started)."""
    return tuple(t.state if (t := tasks.get(store(), run_id, key)) is not None else None
                 for key in (task_key, export_key))


def cancel(key: str) -> None:
    """Ask the background worker to stop the task `key` (a queued one is cancelled at once)."""
    try:
        tasks.cancel(store(), run_id, key)
    except StoreError as exc:
        st.session_state["deploy:error"] = one_line(exc)


def cancel_button(task: tasks.Task, what: str) -> None:
    st.button(f"Cancel {what}", key=f"deploy:cancel:{task.key}", icon=":material/cancel:",
              disabled=task.cancel_requested, on_click=cancel, args=(task.key,),
              help="Stops it within about a second; nothing measured so far is kept, an earlier result stays.")


# Always polling (a timer switched on and off with the task's state could miss a start on a busy machine); it
# reads two small documents, and reruns the whole page when the bench or the export changes state.
@st.fragment(run_every=REFRESH_S)
@guarded
def task_status(seen: tuple[str | None, str | None]) -> None:
    """The bench's state while it is queued or running, polled; the whole page reruns when it or the export
    changes state (a result, a failure or the files are in the store then)."""
    if task_states() != seen:
        st.rerun(scope="app")
    task = tasks.get(store(), run_id, task_key)
    active = task is not None and task.active
    if task is None:
        return
    task_notice(task, "Measuring", "measurement of this ticket", again="**Measure** starts it again.",
                kept="the result is kept with the run and shown here when it is in")
    if active:
        cancel_button(task, "the measurement")


button_col, threads_col = st.columns([3, 1], vertical_alignment="bottom")
threads_col.number_input("Threads", min_value=1, max_value=64, value=1, step=1, key="deploy:threads",
                         help="PyTorch and ONNX Runtime threads for every timing. One thread gives the most repeatable "
                              "figures on a shared machine; more show what a multi-core server gets.")
button_col.button("Measure" if store().doc(run_id, f"deploy/{rnd}/{trial}") is None else "Measure again",
                  type="primary", icon=":material/speed:", disabled=busy, on_click=measure,
                  help="Writes every file format, times every way to run the ticket and the dense network, and checks "
                       "their accuracy, in the background worker (LeNet-300-100: about 3 minutes on a shared 2-core "
                       "machine, most of it retraining the two networks).")
if "deploy:error" in st.session_state:
    st.error(st.session_state.pop("deploy:error"))
task_status(task_states())

stored = store().doc(run_id, f"deploy/{rnd}/{trial}")
if stored is None and busy:
    stop_page()  # the status above says what is happening; the page reruns when the result is in
if stored is None:
    others = sorted(store().docs(run_id, "deploy/"))
    st.info("This ticket has not been measured yet. **Measure** runs the bench in the background worker and keeps "
            "its result with the run." + (" Measured tickets of this run: " + ", ".join(
                "round {} trial {}".format(*k.split("/")[1:]) for k in others) + "." if others else ""),
            icon=":material/info:")
    stop_page()

try:
    bench = DeployBench.from_dict(stored)
except (TypeError, KeyError, ValueError) as exc:
    st.warning(f"The stored measurement of this ticket cannot be read by this version ({md(exc)}); measure again.")
    stop_page()

st.subheader("In plain words")
st.markdown(md(summary(bench)))  # from the stored numbers, in this version's words
st.caption(f"Measured {md(bench.created_at)} on {md(bench.machine.label())}; the bench took {bench.seconds:.0f} s. "
           f"Ticket: {100 * bench.weights_remaining:.2f} % of weights, {md(bench.ticket_source)}.")
if bench.busy and not bench.overloaded:  # (overloaded: said in full beside the latencies)
    st.caption(f"The machine was busy when the bench started (load {bench.machine.load_average:.1f} on "
               f"{bench.machine.cores} cores): latencies have a wider spread than on an idle machine.")

st.subheader("File sizes")
st.caption(deploy_view.FILES_CAPTION)
whole_table(deploy_view.files_table(bench))

st.subheader("Latency")
overload = bench.load_words()  # None unless it was timed under so much load that its ratios mean little
if overload:
    st.warning(md(overload), icon=":material/warning:")
st.caption(md(deploy_view.latency_caption(bench)))
for batch in BATCHES:  # one table per batch size: four columns fit the page
    st.markdown(f"**Batch {batch}**" + (" (one example per call)" if batch == 1 else f" ({batch} examples per call)"))
    whole_table(deploy_view.latency_table(bench, batch))

st.subheader("Accuracy on the test split")
st.caption(deploy_view.ACCURACY_CAPTION)
whole_table(deploy_view.accuracy_table(bench))

if bench.units:
    st.subheader("Units removed per layer")
    st.caption("The structured network drops units with no incoming or no outgoing weight: it is truly smaller and "
               "computes the same function.")
    whole_table(deploy_view.units_table(bench))
for note in bench.notes:
    st.caption(f"Note: {md(note)}")

st.subheader("Where sparse starts paying off")
st.caption(md(deploy_view.break_even_sentence(bench)))
if overload:
    st.caption("Timed under the same heavy load as the latencies above: where CSR pays off may be off as well.")
chart(deploy_view.break_even_plot(bench), context=run_context(info))


@st.fragment
@guarded
def downloads() -> None:
    """The export's files to download; while the export task runs, its state with a Cancel button (task_status
    polls it and reruns the page when the files are in)."""
    st.subheader("Download the ticket")
    export = store().doc(run_id, f"export/{rnd}/{trial}")
    export_task = tasks.get(store(), run_id, export_key)
    active = export_task is not None and export_task.active
    folder = Path(export["folder"]) if export else None
    if folder is not None and folder.is_dir() and not active:
        st.caption(f"{md(export.get('source', ''))}. README.txt says how to load each file in three lines of Python.")
        cols = st.columns(3)
        prefix = download_name(run_id, rnd, trial, "")
        present = [(name, words) for name, words in DOWNLOADS.items() if (folder / name).is_file()]
        for i, (name, words) in enumerate(present):
            data = readme_as_downloaded(folder, prefix) if name == "README.txt" else (folder / name).read_bytes()
            size = len(data.encode()) if isinstance(data, str) else len(data)
            cols[i % 3].download_button(f"{words} · {deploy_view.size_text(size)}", data, file_name=prefix + name,
                                        key=f"download:{name}", icon=":material/download:", help=HELP.get(name))
        missing = [f.file for f in EXPORT_FORMATS.values() if not (folder / f.file).is_file()]
        if missing:  # prepared by an older version, before these formats existed
            st.caption(f"Prepared before {', '.join(missing)} could be exported: **Prepare the files again** adds them.")
            prepare_button("Prepare the files again")
        return
    if active:
        waiting = export_task.state == tasks.QUEUED
        st.caption(f"{'Waiting for the background worker' if waiting else 'Preparing the files in the background'}: "
                   f"{md(export_task.progress)}. They appear here when ready.")
        cancel_button(export_task, "the export")
        return
    if export_task is not None and export_task.state == tasks.CANCELLED:
        st.caption("The last export was cancelled.")
    elif export_task is not None and export_task.error:
        st.caption(f"The last export failed: {md(export_task.error)}")
    prepare_button("Prepare the files")


def prepare_button(label: str) -> None:
    """Queue the ticket's export in the background worker (again: it rewrites the folder with every format)."""
    if st.button(label, icon=":material/folder_zip:"):
        try:
            jobs.submit_export(run_id, rnd, trial, store_path=path)
        except (ConfigError, StoreError) as exc:
            st.error(one_line(exc))
        st.rerun(scope="app")


downloads()
run_links(run_id, ("results", "compare"))
