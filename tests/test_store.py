"""The run store on real SQLite files: what a run leaves in it, whole rounds, and files it must refuse."""
import hashlib
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lth_core import ExperimentConfig, collect, run_experiment
from lth_core.runs import store_schema
from lth_core.engine.events import EvalPointEvent, RoundCommitted, RunCancelled, RunFailed
from lth_core.runs.recorder import Recorder, claim, create_run
from lth_core.runs.procs import process_token
from lth_core.engine.errors import ConfigError
from lth_core.runs.store import LIST_COLUMNS, RunStore, StoreError
from lth_core.engine.results import TIMING_COLUMNS as TIMINGS

ROOT = Path(__file__).resolve().parent.parent
TINY = dict(dataset="digits", arch="mlp", hidden=(32,), rounds=2, epochs=1, batch_size=32, controls=("reinit", "random"))


@pytest.fixture(scope="module")
def tiny_events(dataset_cache, tmp_path_factory):
    """The events of one real tiny run (digits, mlp 32, rounds 0..2, ticket + reinit + random)."""
    home = tmp_path_factory.mktemp("events-home")
    os.symlink(dataset_cache, home / "cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LTH_HOME", str(home))
        return list(run_experiment(ExperimentConfig(**TINY)))


def record(store, events, config=None, name=None):
    run_id = create_run(store, config or ExperimentConfig(**TINY), name)
    rec = Recorder(store, run_id, claim(store, run_id, pid=os.getpid()))
    for event in events:
        rec.add(event)
    return run_id


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_recorded_run_reads_back_exactly_as_the_engine_produced_it(lth_home, tiny_events):
    store = RunStore()
    assert store.path == lth_home / "runs.sqlite" and store.path.exists()
    assert store.list_runs().empty and list(store.list_runs().columns) == LIST_COLUMNS
    run_id = record(store, tiny_events, name="first  try")
    expected = collect(tiny_events)

    pd.testing.assert_frame_equal(store.rounds(run_id), expected.rounds_df())
    pd.testing.assert_frame_equal(store.layers(run_id), expected.layers_df())
    pd.testing.assert_frame_equal(store.curves(run_id), expected.curves_df())
    curves1 = store.curves(run_id, round=1)
    assert set(curves1["round"]) == {1} and len(curves1) == (expected.curves_df()["round"] == 1).sum()
    for (trial, rnd, variant), masks in expected.masks.items():
        got = store.masks(run_id, trial, rnd, variant)
        assert list(got) == list(masks)
        for layer, m in masks.items():
            assert got[layer].dtype == bool and np.array_equal(got[layer], m)
            assert np.array_equal(store.mask(run_id, trial, rnd, variant, layer), m)
    init = store.init_weights(run_id, 0)
    assert init.keys() == expected.inits[0].keys()
    assert all(np.array_equal(init[n], expected.inits[0][n]) for n in init)

    info = store.get_run(run_id)
    started = tiny_events[0]
    assert (info.name, info.status, info.error) == ("first try", "finished", None)
    assert info.config == ExperimentConfig(**TINY)
    assert (info.round, info.rounds_total, info.rounds_done, info.iteration, info.iterations) == \
        (2, 2, 3, started.iterations, started.iterations)
    assert info.variants == ["ticket", "reinit", "random"] and info.variant == "ticket+reinit+random"
    assert info.planned_remaining == started.planned_remaining and info.layers == started.layers
    for stamp in (info.created_at, info.started_at, info.finished_at):
        assert datetime.fromisoformat(stamp).utcoffset().total_seconds() == 0
    assert info.created_at <= info.started_at <= info.finished_at
    assert store.checkpoint(run_id) is None  # a finished run needs no checkpoint
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    row = store.list_runs().iloc[0]
    assert (row.id, row.status, row.dataset, row.arch, row["round"], row.rounds_done) == (run_id, "finished", "digits", "mlp", 2, 3)
    ticket2 = expected.rounds_df().query("round == 2 and variant == 'ticket'")
    assert row.test_accuracy == pytest.approx(ticket2.test_accuracy.mean())


def test_ids_are_short_and_url_safe_and_the_list_is_newest_first(tiny_events):
    store = RunStore()
    ids = [create_run(store, ExperimentConfig(**TINY, seed=s)) for s in range(5)]
    assert all(re.fullmatch(r"[a-z0-9]{8}", i) for i in ids) and len(set(ids)) == 5
    runs = store.list_runs()
    assert list(runs["id"]) == ids[::-1]
    assert (runs["status"] == "queued").all() and (runs["name"] == "mlp on digits").all()
    assert runs["round"].isna().all() and (runs["rounds_total"] == 2).all()


def test_a_round_is_in_the_store_whole_or_not_at_all(tiny_events):
    """A commit that fails half-way (its rounds and layers rows written, then the masks' insert fails,
    as a full disk would make it) leaves no trace of that round."""
    store = RunStore()
    run_id = create_run(store, ExperimentConfig(**TINY))
    with store.transaction() as db:
        db.execute("CREATE TRIGGER full_disk BEFORE INSERT ON masks WHEN NEW.round = 1 "
                   "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
    rec = Recorder(store, run_id, claim(store, run_id, pid=os.getpid()))
    for event in tiny_events:
        if isinstance(event, RoundCommitted) and event.round == 1:
            with pytest.raises(StoreError, match="disk is full"):
                rec.add(event)
            break
        rec.add(event)
    assert set(store.rounds(run_id)["round"]) == {0} and set(store.layers(run_id)["round"]) == {0}
    with pytest.raises(StoreError, match="no masks"):
        store.masks(run_id, 0, 1, "ticket")
    assert store.get_run(run_id).rounds_done == 1 and store.checkpoint(run_id).round == 0


def test_a_process_killed_inside_the_commit_leaves_the_previous_rounds_only(tiny_events, lth_home, tmp_path):
    """kill -9 when round 1's rows are all written but not yet committed: after reopening, round 1 is
    absent and the run is interrupted."""
    script = textwrap.dedent("""
        import os, sys, time
        from contextlib import contextmanager
        from lth_core import ExperimentConfig, run_experiment
        from lth_core.runs.recorder import Recorder, claim, create_run
        from lth_core.runs.store import RunStore

        class SlowStore(RunStore):
            pause = False

            @contextmanager
            def transaction(self):
                with super().transaction() as db:
                    yield db
                    if self.pause:  # every row of the round is written; COMMIT comes next
                        print("inside", flush=True)
                        time.sleep(60)

        class SlowRecorder(Recorder):
            def _commit(self, event):
                self.store.pause = event.round == 1
                super()._commit(event)

        store = SlowStore()
        config = ExperimentConfig(**{TINY})
        run_id = create_run(store, config)
        print(run_id, flush=True)
        rec = SlowRecorder(store, run_id, claim(store, run_id, pid=os.getpid()))
        for event in run_experiment(config):
            rec.add(event)
    """).replace("{TINY}", repr(TINY))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        run_id = proc.stdout.readline().strip()
        assert proc.stdout.readline().strip() == "inside"
        with sqlite3.connect(lth_home / "runs.sqlite") as db:  # the open transaction is invisible to readers
            assert db.execute("SELECT MAX(round) FROM rounds").fetchone()[0] == 0
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    store = RunStore()
    info = store.get_run(run_id)
    assert info.status == "interrupted" and "stopped" in info.error
    assert info.rounds_done == 1 and store.checkpoint(run_id).round == 0
    expected = collect(tiny_events).rounds_df()
    got = store.rounds(run_id)
    pd.testing.assert_frame_equal(got.drop(columns=TIMINGS),
                                  expected[expected["round"] == 0].drop(columns=TIMINGS))
    assert store.masks(run_id, 0, 0, "ticket")
    with sqlite3.connect(store.path) as db:
        for table in ("rounds", "layers", "masks"):
            assert db.execute(f"SELECT COUNT(*) FROM {table} WHERE round = 1").fetchone()[0] == 0


def test_a_failed_run_keeps_its_rounds_and_a_one_line_reason(tiny_events):
    store = RunStore()
    upto = [i for i, e in enumerate(tiny_events) if isinstance(e, RoundCommitted) and e.round == 1][0]
    partial = [e for e in tiny_events[upto + 1:] if isinstance(e, EvalPointEvent)][:6]
    run_id = record(store, tiny_events[:upto + 1] + partial +
                    [RunFailed("the training loss became NaN or infinite by iteration 10; try a lower learning rate")])
    info = store.get_run(run_id)
    assert info.status == "failed" and info.error.startswith("the training loss became NaN") and "\n" not in info.error
    assert sorted(set(store.rounds(run_id)["round"])) == [0, 1] and info.rounds_done == 2
    assert len(store.curves(run_id, round=2)) == 6  # the round in flight is readable, as a live view needs
    checkpoint = store.checkpoint(run_id)            # so it can be resumed
    committed = [e for e in tiny_events if isinstance(e, RoundCommitted) and e.round == 1][0].checkpoint
    assert checkpoint.round == 1 and len(checkpoint.trials) == 1
    assert checkpoint.trials[0].keys() == committed.trials[0].keys()  # the initial weights, stored once, put back
    for part, group in committed.trials[0].items():
        assert all(np.array_equal(checkpoint.trials[0][part][n], a) for n, a in group.items())


def test_rename_and_delete_touch_only_that_run(tiny_events):
    store = RunStore()
    keep, gone = record(store, tiny_events), record(store, tiny_events)
    store.rename(gone, "  renamed\n run ")
    assert store.get_run(gone).name == "renamed run"
    with pytest.raises(StoreError, match="empty"):
        store.rename(gone, "   ")
    store.delete(gone)
    with sqlite3.connect(store.path) as db:
        for table in store_schema.DATA_TABLES:
            assert db.execute(f"SELECT COUNT(*) FROM {table} WHERE run_id = ?", (gone,)).fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM runs WHERE id = ?", (gone,)).fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM masks WHERE run_id = ?", (keep,)).fetchone()[0] > 0
    assert list(store.list_runs()["id"]) == [keep] and len(store.rounds(keep)) == 7


def test_an_unknown_run_id_is_a_clear_error():
    store = RunStore()
    for call in (lambda: store.get_run("nope"), lambda: store.rounds("nope"), lambda: store.curves("nope"),
                 lambda: store.mask("nope", 0, 0, "ticket", "fc1"), lambda: store.init_weights("nope", 0),
                 lambda: store.rename("nope", "x"), lambda: store.delete("nope")):
        with pytest.raises(StoreError, match="no run with id 'nope'"):
            call()


def test_a_run_whose_worker_died_is_interrupted_when_the_store_is_opened():
    store = RunStore()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    ids = {}
    for label, pid, proc in [("dead pid", dead.pid, None), ("reused pid", os.getpid(), "other-boot:1"),
                             ("alive", os.getpid(), process_token(os.getpid()))]:
        ids[label] = create_run(store, ExperimentConfig(**TINY))
        claim(store, ids[label], pid=pid)
        with store.transaction() as db:
            db.execute("UPDATE runs SET proc = ? WHERE id = ?", (proc, ids[label]))
    store.close()
    store = RunStore()
    status = {label: store.get_run(i).status for label, i in ids.items()}
    assert status == {"dead pid": "interrupted", "reused pid": "interrupted", "alive": "running"}
    assert f"pid {dead.pid}" in store.get_run(ids["dead pid"]).error


# ---- files that are not this store ---------------------------------------------------------

def assert_refused(path: Path, *words: str) -> None:
    before, listing = digest(path), sorted(os.listdir(path.parent))
    with pytest.raises(StoreError) as err:
        RunStore(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    for word in words:
        assert word in message
    assert digest(path) == before and sorted(os.listdir(path.parent)) == listing  # no -wal, no -journal


def test_a_foreign_sqlite_file_is_refused_and_left_as_it_was(lth_home):
    path = lth_home / "runs.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE people (name TEXT)")
        db.execute("INSERT INTO people VALUES ('ada')")
    db.close()
    assert_refused(path, "not a Lottery Ticket Explorer run store", "people")


def test_a_corrupt_file_is_refused_and_left_as_it_was(lth_home, tiny_events):
    path = lth_home / "runs.sqlite"
    path.write_bytes(os.urandom(50_000))
    assert_refused(path, "not an SQLite database")
    path.unlink()
    with RunStore(path) as store:  # a real store whose first page (the schema) is damaged
        record(store, tiny_events)
    data = bytearray(path.read_bytes())
    data[100:4096] = os.urandom(3996)
    path.write_bytes(bytes(data))
    assert_refused(path, "cannot be used as a run store")


def test_a_store_from_a_newer_version_is_refused_and_left_as_it_was(lth_home):
    path = lth_home / "runs.sqlite"
    RunStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.close()
    assert_refused(path, "newer", "schema 99")


def test_an_older_store_is_migrated_in_place(lth_home, tiny_events, monkeypatch):
    path = lth_home / "runs.sqlite"
    with RunStore(path) as store:
        run_id = record(store, tiny_events)
    newest = store_schema.SCHEMA_VERSION
    monkeypatch.setattr(store_schema, "SCHEMA_VERSION", newest + 1)
    monkeypatch.setitem(store_schema.MIGRATIONS, newest, "ALTER TABLE runs ADD COLUMN note TEXT; -- a comment; with semicolons\n"
                                                         "UPDATE runs SET note = 'migrated';")
    store = RunStore(path)
    assert len(store.rounds(run_id)) == 7
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(newest + 1)
        assert db.execute("SELECT note FROM runs").fetchone()[0] == "migrated"


def _back_to_version_3(db: sqlite3.Connection) -> None:
    """Undo migration 3 -> 4, so that a test can make the file of an older version."""
    db.execute("DROP TABLE run_docs")
    db.execute("DROP INDEX runs_by_sweep")
    db.execute("ALTER TABLE runs DROP COLUMN sweep")
    db.execute("ALTER TABLE runs DROP COLUMN kind")


def test_a_version_3_store_gains_documents_kinds_and_sweeps(lth_home, tiny_events):
    path = lth_home / "runs.sqlite"
    with RunStore(path) as store:
        run_id = record(store, tiny_events)
        before = store.rounds(run_id)
    with sqlite3.connect(path) as db:
        _back_to_version_3(db)
        db.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    db.close()
    with RunStore(path) as store:
        pd.testing.assert_frame_equal(store.rounds(run_id), before)
        assert store.doc(run_id, "network") is None
        store.put_doc(run_id, "network", {"layers": ["fc1"]})
        assert store.doc(run_id, "network") == {"layers": ["fc1"]}
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT kind, sweep FROM runs WHERE id = ?", (run_id,)).fetchone() == ("lottery", None)
    db.close()


def test_documents_kept_with_a_run_are_replaced_listed_and_deleted_with_it(lth_home, tiny_events):
    store = RunStore()
    run_id, other = record(store, tiny_events), record(store, tiny_events)
    store.put_doc(run_id, "deploy/3/0", {"ms": 1.5})
    store.put_doc(run_id, "deploy/3/0", {"ms": 1.25})
    store.put_doc(run_id, "deploy/5/0", {"ms": 2.0})
    store.put_doc(run_id, "network", {"input": [1, 28, 28]})
    store.put_doc(other, "deploy/1/0", {"ms": 9.0})
    assert store.docs(run_id, "deploy/") == {"deploy/3/0": {"ms": 1.25}, "deploy/5/0": {"ms": 2.0}}
    assert store.doc(run_id, "missing", "none") == "none"
    with pytest.raises(ValueError):
        store.put_doc(run_id, "bad", {"x": float("nan")})  # JSON has no NaN: refused, not written as text
    with pytest.raises(StoreError):
        store.put_doc("no-such-run", "network", {})
    store.delete(run_id)
    assert store.docs(run_id) == {} and store.docs(other, "deploy/") == {"deploy/1/0": {"ms": 9.0}}
    # the recorder kept the run's network when it started, its sanity checks round by round, and its critical value;
    # the claim, when the run left the queue (Live run tells the wait in the queue from the training)
    assert set(store.docs(other)) == {"deploy/1/0", "network", "checks", "critical", "claimed_at"}
    assert abs(store.doc(other, "claimed_at") - time.time()) < 600


def test_a_version_1_store_gains_evaluation_times_and_keeps_its_rounds(lth_home, tiny_events):
    path = lth_home / "runs.sqlite"
    with RunStore(path) as store:
        run_id = record(store, tiny_events)
        before = store.rounds(run_id)
    with sqlite3.connect(path) as db:  # as version 1 wrote it: no eval_seconds column, no reason codes
        _back_to_version_3(db)
        db.execute("ALTER TABLE rounds DROP COLUMN eval_seconds")
        db.execute("ALTER TABLE runs DROP COLUMN reason")
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db.close()
    with RunStore(path) as store:
        after = store.rounds(run_id)
    assert after["eval_seconds"].isna().all()
    pd.testing.assert_frame_equal(after.drop(columns="eval_seconds"), before.drop(columns="eval_seconds"))


def test_a_version_2_store_gains_reason_codes_derived_from_its_texts(lth_home, tiny_events):
    """Each text an older version wrote for a stopped run gets its code, once, at the migration; the text stays."""
    path = lth_home / "runs.sqlite"
    texts = {  # status, error as version 2 wrote them -> the code
        "gone": ("interrupted", "the worker process (pid 4242) stopped before the run ended", "worker-gone"),
        "gone unwritten": ("interrupted", "the worker process (pid 7) stopped before the run ended (not yet recorded: x)",
                           "worker-gone"),
        "killed": ("interrupted", "the worker process stopped unexpectedly (killed by SIGKILL)", "worker-died"),
        "sigterm": ("interrupted", None, "stopped-by-signal"),
        "cancelled": ("cancelled", None, "cancelled-by-user"),
        "cancelled after a crash": ("cancelled", "the worker process (pid 9) stopped before the run ended",
                                    "cancelled-by-user"),
        "nan": ("failed", "the training loss became NaN or infinite by iteration 12; lower the learning rate",
                "failed-training"),
        "engine error": ("failed", "RuntimeError: CUDA out of memory", "failed-training"),
        "config": ("failed", "dataset: csv:/x.csv has 3 rows; at least 10 are needed", "failed-config"),
        "full": ("failed", "StoreFull: /home/runs.sqlite: database or disk is full", "disk-full"),
        "unreadable": ("failed", "run abc cannot be read (its config: hidden: must be ...); it can only be deleted: "
                                 "python -m lth_core delete abc", "unreadable"),
        "finished": ("finished", None, None),
    }
    with RunStore(path) as store:
        ids = {name: record(store, tiny_events[:1], name=name) for name in texts}
    with sqlite3.connect(path) as db:  # as version 2 wrote them: a text only
        _back_to_version_3(db)
        db.execute("ALTER TABLE runs DROP COLUMN reason")
        db.executemany("UPDATE runs SET status = ?, error = ?, pid = NULL WHERE id = ?",
                       [(status, error, ids[name]) for name, (status, error, _) in texts.items()])
        db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    db.close()
    with RunStore(path) as store:
        for name, (status, error, code) in texts.items():
            info = store.get_run(ids[name])
            assert (info.status, info.error, info.reason) == (status, error, code), name
        listed = store.list_runs().set_index("name")
        assert listed.loc["killed", "reason"] == "worker-died" and listed.loc["full", "reason"] == "disk-full"
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(store_schema.SCHEMA_VERSION)
    db.close()


def test_each_way_a_run_stops_has_its_code_and_resuming_clears_it(lth_home, tiny_events):
    store = RunStore()
    ends = {"signal": ("interrupted", "stopped-by-signal", None), "cancel": ("cancelled", "cancelled-by-user", None)}
    for how, (status, code, error) in ends.items():
        run_id = create_run(store, ExperimentConfig(**TINY))
        rec = Recorder(store, run_id, claim(store, run_id, pid=os.getpid()))
        rec.add(tiny_events[0])
        rec.stop(how)
        rec.add(RunCancelled(0))
        info = store.get_run(run_id)
        assert (info.status, info.reason, info.error) == (status, code, error), how
        store.requeue(run_id)
        info = store.get_run(run_id)
        assert (info.status, info.reason, info.error) == ("queued", None, None)
    run_id = create_run(store, ExperimentConfig(**TINY))
    rec = Recorder(store, run_id, claim(store, run_id, pid=os.getpid()))
    with pytest.raises(ValueError, match="cannot end as 'failed'"):  # a stopped run always says why
        rec.end("failed", None, "no code")
    rec.add(RunFailed("the training loss became NaN\nsecond line"))
    info = store.get_run(run_id)
    assert (info.status, info.reason, info.error) == ("failed", "failed-training", "the training loss became NaN")


def test_only_the_store_writes_the_runs_table():
    """Every change of a run's status goes through RunStore's named methods: no other module writes `runs`."""
    write = re.compile(r"\b(UPDATE\s+runs|INSERT\s+(OR\s+\w+\s+)?INTO\s+runs|DELETE\s+FROM\s+runs|REPLACE\s+INTO\s+runs)\b",
                       re.IGNORECASE)
    allowed = {ROOT / "lth_core" / "runs" / "store.py", ROOT / "lth_core" / "runs" / "store_schema.py"}
    sources = [p for folder in ("lth_core", "app_pages", "ui", "scripts") for p in (ROOT / folder).rglob("*.py")]
    sources += list(ROOT.glob("*.py"))
    assert len(sources) > 20 and allowed <= set(sources)
    found = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in sources if p not in allowed
             for m in write.finditer(p.read_text())]
    assert found == []
    # and the store's messages are never matched by their wording
    assert [str(p.relative_to(ROOT)) for p in sources if "error LIKE" in p.read_text() and p not in allowed] == []


def _run_unprivileged(code: str) -> subprocess.CompletedProcess:
    """Run `code` as a process that file modes apply to (root ignores them: drop its override rights)."""
    cmd = [sys.executable, "-c", code]
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: cannot make a folder read-only for this process")
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", *cmd]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("with_store", [False, True])
def test_a_read_only_folder_is_a_clear_error(tmp_path, with_store, tiny_events):
    folder = tmp_path / "ro"
    folder.mkdir()
    if with_store:
        with RunStore(folder / "runs.sqlite") as store:
            record(store, tiny_events)
    before = {p.name: digest(p) for p in folder.iterdir()}
    folder.chmod(0o555)
    try:
        out = _run_unprivileged(textwrap.dedent(f"""
            from lth_core.runs.store import RunStore, StoreError
            try:
                RunStore({str(folder / 'runs.sqlite')!r})
            except StoreError as exc:
                print("StoreError:", exc)
        """))
    finally:
        folder.chmod(0o755)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("StoreError:") and "not writable" in out.stdout and "LTH_HOME" in out.stdout
    assert str(folder) in out.stdout
    assert {p.name: digest(p) for p in folder.iterdir()} == before


def test_opening_the_store_twice_in_one_process_keeps_its_locks(lth_home, tiny_events):
    """A second RunStore in the same process (the app opens several) must not drop the first one's
    locks: if it did, another process closing the file would checkpoint the WAL away under it."""
    first = RunStore()
    run_id = record(first, tiny_events)
    RunStore().close()
    subprocess.run([sys.executable, "-c", "from lth_core.runs.store import RunStore; RunStore().close()"], cwd=ROOT, check=True)
    assert (lth_home / "runs.sqlite-wal").exists()  # the other process saw this one still reading
    RunStore().delete(run_id)                        # and a write that shrinks the file reads back fine
    assert first.list_runs().empty


# ---- rows that cannot be read, writes that cannot be made ---------------------------------------

def test_a_config_of_the_wrong_kind_never_reaches_the_store():
    store = RunStore()
    for bad in (dict(rounds=2.5), dict(rounds=True), dict(width=True), dict(trials=2.0)):
        with pytest.raises(ConfigError) as err:
            create_run(store, ExperimentConfig(**{**TINY, **bad}))
        assert err.value.field == next(iter(bad))
    assert store.list_runs().empty


def test_an_unreadable_row_is_listed_as_such_and_can_be_deleted_without_hiding_the_others(tiny_events):
    """A row this version cannot read (as an older version wrote a config with rounds 2.5) used to make
    every list, show and delete fail with a pandas TypeError."""
    store = RunStore()
    good = record(store, tiny_events)
    bad = {}
    for label, sets in [("rounds 2.5", "rounds_total = 2.5, config = json_set(config, '$.rounds', 2.5)"),
                        ("config not json", "config = '{not json'"),
                        ("hidden 1.7", "config = json_set(config, '$.hidden', json('[1.7]'))"),
                        ("unknown status", "status = 'paused'")]:
        bad[label] = create_run(store, ExperimentConfig(**TINY))
        with store.transaction() as db:
            db.execute(f"UPDATE runs SET {sets} WHERE id = ?", (bad[label],))
    runs = store.list_runs().set_index("id")
    assert runs.loc[good, "status"] == "finished" and runs.loc[good, "rounds_done"] == 3
    for label, run_id in bad.items():
        row = runs.loc[run_id]
        assert row.status == "unreadable" and row.rounds_done == 0 and row["name"] == "mlp on digits"
        assert row.error.startswith("this run cannot be read: ")
        with pytest.raises(StoreError, match=f"run {run_id} cannot be read .*python -m lth_core delete {run_id}"):
            store.get_run(run_id)
    assert "rounds_total is 2.5" in runs.loc[bad["rounds 2.5"], "error"]
    assert "hidden" in runs.loc[bad["hidden 1.7"], "error"] and "paused" in runs.loc[bad["unknown status"], "error"]
    assert store.get_run(good).rounds_done == 3 and len(store.rounds(good)) == 7
    for run_id in bad.values():
        store.delete(run_id)
    assert list(store.list_runs()["id"]) == [good]


def test_the_command_line_lists_shows_cancels_and_deletes_around_an_unreadable_row(tiny_events, lth_home):
    store = RunStore()
    good = record(store, tiny_events)
    bad = create_run(store, ExperimentConfig(**TINY))
    with store.transaction() as db:
        db.execute("UPDATE runs SET status = 'failed', rounds_total = 2.5, config = json_set(config, '$.rounds', 2.5) "
                   "WHERE id = ?", (bad,))
    store.close()

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "lth_core", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)

    listed = cli("runs")
    assert listed.returncode == 0, listed.stderr
    assert re.search(rf"^{bad}  unreadable .*rounds_total is 2.5", listed.stdout, re.M), listed.stdout
    assert re.search(rf"^{good}  finished ", listed.stdout, re.M)
    assert cli("show", good).returncode == 0
    shown = cli("show", bad)
    assert shown.returncode == 2 and shown.stderr.strip() == (
        f"error: run {bad} cannot be read (rounds_total is 2.5, not a whole number); it can only be deleted: "
        f"python -m lth_core delete {bad}")
    cancelled = cli("cancel", bad)
    assert cancelled.returncode == 0 and "Traceback" not in cancelled.stderr
    deleted = cli("delete", bad)
    assert deleted.returncode == 0 and deleted.stdout.strip() == f"deleted run {bad}"
    assert list(RunStore().list_runs()["id"]) == [good]


def test_a_failed_write_on_open_blocks_no_read(tiny_events, monkeypatch):
    """Opening the store marks runs whose worker died as interrupted. When that write cannot be made
    (here another process holds the write lock; a full disk does the same) every read still works, and
    such a run reads as interrupted; the write is made at a later look."""
    store = RunStore()
    done = record(store, tiny_events)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = create_run(store, ExperimentConfig(**TINY))
    claim(store, orphan, pid=dead.pid)
    store.close()
    monkeypatch.setattr(store_schema, "BUSY_TIMEOUT_MS", 200)
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        store = RunStore()
        runs = store.list_runs().set_index("id")
        assert runs.loc[orphan, "status"] == "interrupted" and runs.loc[done, "status"] == "finished"
        info = store.get_run(orphan)
        assert info.status == "interrupted" and f"pid {dead.pid}" in info.error and "not yet recorded" in info.error
        assert len(store.rounds(done)) == 7
        with pytest.raises(StoreError, match="locked"):
            store.rename(done, "x")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    store._recovered_at = 0  # the next look writes it
    assert store.get_run(orphan).status == "interrupted"
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT status FROM runs WHERE id = ?", (orphan,)).fetchone()[0] == "interrupted"
    db.close()


def test_delete_gives_the_space_back_to_the_file_system(tiny_events, lth_home):
    """reclaim() used to free a single page per delete (the pragma, run with execute, stops after one step)."""
    store = RunStore()

    def size() -> int:
        with store._read() as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return store.path.stat().st_size

    keep = record(store, tiny_events)
    one_run = size()
    ids = [record(store, tiny_events) for _ in range(3)]
    assert size() > one_run + 40_000
    for run_id in ids:
        store.delete(run_id)
    with store._read() as db:
        assert db.execute("PRAGMA freelist_count").fetchone()[0] == 0
    assert size() <= one_run + 8192
    assert len(store.rounds(keep)) == 7


def test_threads_probing_the_store_folder_at_once_all_find_it_writable(tmp_path):
    """App sessions are threads of one process: their write probes of the store's folder must not collide
    (one thread's probe file removed by another read as 'not writable' to two sessions opening the app at once)."""
    import threading

    from lth_core.runs.store_schema import _writable

    barrier, answers = threading.Barrier(6), []

    def probe() -> None:
        barrier.wait()
        answers.extend(_writable(tmp_path) for _ in range(300))

    threads = [threading.Thread(target=probe) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 1800 and all(answers)
