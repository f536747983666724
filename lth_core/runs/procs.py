"""Is the process that runs a run still there? (pid reuse and machine restarts included)"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

HOST = socket.gethostname()
STALE_AFTER_S = 60.0   # a run on another host whose heartbeat is older than this has lost its worker


def process_token(pid: int) -> str | None:
    """'boot id:start time' of a live process on Linux (None if it is gone or a zombie): a pid that
    was reused after the worker died, or after a restart, gives another token."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    after = stat.rsplit(")", 1)[1].split()
    return None if after[0] in ("Z", "X") else f"{boot}:{after[19]}"


def worker_alive(pid: int | None, host: str | None, proc: str | None, heartbeat: float | None) -> bool:
    """On this host: the pid exists and is the same process (its token); elsewhere: a fresh heartbeat.
    A heartbeat alone is not trusted here, so a laptop waking from sleep does not 'lose' its runs."""
    if pid is not None and host == HOST:
        if Path("/proc/self/stat").exists():
            token = process_token(pid)
            return token is not None and (proc is None or token == proc)
        try:  # no /proc (macOS): does the pid exist at all
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except OSError:
            pass
        return True
    return heartbeat is not None and time.time() - heartbeat < STALE_AFTER_S
