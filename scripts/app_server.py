"""The app served from a given LTH_HOME on a free loopback port, as the page benchmark (scripts/bench_pages.py)
and the browser tests (tests/test_e2e_browser.py's `_serve`) both start it: one way to do it, kept here so the
tests import it from the scripts package rather than a script from the tests.

    with serve_app(home) as url:   # "http://127.0.0.1:<port>", once /_stcore/health answers
        ...
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_group(pid: int | None) -> None:
    """SIGTERM the process group of `pid` (the app is started in its own session), else the process alone."""
    if not pid:
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


@contextlib.contextmanager
def serve_app(home: Path, log_name: str = "streamlit.log", script: str = "app.py") -> Iterator[str]:
    """`streamlit run app.py` (or `script`) with LTH_HOME=`home`, headless, its output in `home`/`log_name`; yields its URL once
    it answers, and stops it (SIGTERM, then SIGKILL after 10 s) on the way out. RuntimeError with the log's tail if
    it does not start within START_TIMEOUT_S."""
    port = free_port()
    env = dict(os.environ, LTH_HOME=str(home), PYTHONUNBUFFERED="1")
    log_path = Path(home) / log_name
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", script, "--server.headless", "true",
                             "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--browser.gatherUsageStats", "false"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + START_TIMEOUT_S
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"streamlit did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        stop_group(proc.pid)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
