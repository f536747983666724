"""The run store on a real full disk: a small tmpfs, mounted for the test (needs root and a kernel that
lets this process mount; skipped where it cannot). A run fills the disk, resumes fail for want of room,
and every read still works, no run is left 'running' by a dead process, and deleting makes room again."""
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid

import pytest

from lth_core.runs.store import RESERVE_BYTES

from conftest import ROOT

RUN = ["--dataset", "digits", "--arch", "mlp", "--hidden", "128", "--rounds", "30", "--epochs", "1", "--quiet"]


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", f"lth-test-{uuid.uuid4().hex[:8]}", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lth_core", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def statuses(path) -> dict[str, str]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)  # what is written, not what a reader makes of it
    try:
        return dict(db.execute("SELECT id, status FROM runs").fetchall())
    finally:
        db.close()


def test_a_full_disk_stops_runs_cleanly_blocks_no_read_and_delete_makes_room(small_disk):
    store = small_disk / "runs.sqlite"
    with open(small_disk / "other-files", "wb") as f:  # the disk is nearly full of something else
        f.write(b"x" * (shutil.disk_usage(small_disk).free - RESERVE_BYTES - 600_000))

    first = cli("run", *RUN, "--store-path", str(store))
    assert first.returncode == 1, first.stderr  # it failed: not 0, as `run --store` used to exit
    assert "disk is full" in first.stderr.strip().splitlines()[-1]
    (run_id, status), = statuses(store).items()
    assert status == "failed"
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT reason FROM runs").fetchone()[0] == "disk-full"
    db.close()

    for _ in range(2):  # each resume trains on until the disk is full again
        resumed = cli("resume", run_id, "--store-path", str(store), "--quiet")
        assert resumed.returncode in (1, 2), resumed.stderr
        assert "disk is full" in resumed.stderr and "Traceback" not in resumed.stderr
        assert statuses(store)[run_id] != "running"  # never left 'running' by a process that has gone
        listed = cli("runs", "--store-path", str(store))
        assert listed.returncode == 0, listed.stderr
        assert cli("show", run_id, "--store-path", str(store)).returncode == 0

    def room() -> int:  # free space, with what the store holds in reserve for such a moment
        reserve = small_disk / "runs.sqlite.reserve"
        return shutil.disk_usage(small_disk).free + (reserve.stat().st_blocks * 512 if reserve.exists() else 0)

    def pages() -> int:
        db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
        try:
            return db.execute("PRAGMA page_count").fetchone()[0]
        finally:
            db.close()

    before, pages_before = room(), pages()
    deleted = cli("delete", run_id, "--store-path", str(store))
    assert deleted.returncode == 0, deleted.stderr
    gained = room() - before  # before anything reads the file: a reader may add SQLite's 32 kB shared-memory file
    assert statuses(store) == {}
    # the run's pages went back to the disk: the file shrank, and the disk gained at least what it gave back
    # (and the write-ahead log's space, when the last failed resume left one)
    assert pages() < pages_before - 5
    assert gained >= (pages_before - pages()) * 4096

    again = cli("run", "--dataset", "digits", "--arch", "mlp", "--hidden", "16", "--rounds", "1", "--epochs", "1",
                "--quiet", "--store-path", str(store))
    assert again.returncode == 0, again.stderr
    assert list(statuses(store).values()) == ["finished"]
