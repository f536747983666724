"""How many CPU threads to train with, decided from how busy the machine is.

At the paper's batch size a second thread speeds a step up by about 1.6× on an idle machine, but when
another process keeps a core busy (the app's server, a second run, a browser) two threads that spin
on each other's barriers make each step up to 30× slower. So: two threads when the other cores are
free, one otherwise, decided again before every round. The numbers do not depend on it (a thread
count changes how matmuls are split, not what they add up).
"""
from __future__ import annotations

import os
import time

OTHERS_BUSY_LIMIT = 0.3   # cores other processes may use while we still take two threads


def _busy_seconds() -> float | None:
    """CPU seconds spent by all processes since boot (Linux /proc/stat), or None elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class CpuWatch:
    """Measures the cores other processes kept busy between two calls of `others_busy`."""

    def __init__(self) -> None:
        self._last = (time.monotonic(), _busy_seconds(), time.process_time())

    def others_busy(self, min_window: float = 0.1) -> float | None:
        wall, busy, own = self._last
        if busy is None:
            return None
        if time.monotonic() - wall < min_window:
            time.sleep(min_window - (time.monotonic() - wall))
        now = (time.monotonic(), _busy_seconds(), time.process_time())
        self._last = now
        return max(0.0, ((now[1] or busy) - busy - (now[2] - own)) / max(1e-6, now[0] - wall))


def choose_threads(others_busy: float | None) -> int:
    """LTH_THREADS overrides; else 2 threads if a second core is free, else 1."""
    if os.environ.get("LTH_THREADS", "").isdigit():
        return max(1, int(os.environ["LTH_THREADS"]))
    cores = os.cpu_count() or 1
    if cores < 2 or others_busy is None or others_busy > OTHERS_BUSY_LIMIT + max(0, cores - 2):
        return 1
    return 2
