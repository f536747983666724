"""How many CPU threads to train with, decided from how busy the machine is.

At the paper's batch size a second thread speeds a step up by about 1.6× on an idle machine, but when
another process keeps a core busy (the app's server, a second run, a browser) two threads that spin
on each other's barriers make each step up to 30× slower. So: two threads when the other cores are
free, one otherwise, decided again before every round.

The numbers must not depend on it ("same config and seed, same numbers"). For fully connected nets
they do not: MKL runs in its strict reproducible mode (set in lth_core/__init__.py), in which a matmul's
result does not depend on the thread count. oneDNN's convolution gradients do depend on it, so conv nets
train with `fixed_threads()` from start to end, whatever the load; so does every net where strict mode
could not be set (MKL had already run in this process, or torch has no MKL).
"""
from __future__ import annotations

import ctypes
import functools
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
    """Measures the cores other processes kept busy between two calls of `others_busy`. A watch made soon
    after this module was imported, in the same process, starts from that import: a CLI run's imports then
    fill the first window, which it would otherwise wait for."""

    def __init__(self) -> None:
        now = (time.monotonic(), _busy_seconds(), time.process_time())
        young = _IMPORTED[0] == os.getpid() and now[0] - _IMPORTED[1][0] < IMPORT_WINDOW_S
        self._last = _IMPORTED[1] if young else now

    def others_busy(self, min_window: float = 0.1) -> float | None:
        wall, busy, own = self._last
        if busy is None:
            return None
        if time.monotonic() - wall < min_window:
            time.sleep(min_window - (time.monotonic() - wall))
        now = (time.monotonic(), _busy_seconds(), time.process_time())
        self._last = now
        return max(0.0, ((now[1] or busy) - busy - (now[2] - own)) / max(1e-6, now[0] - wall))


IMPORT_WINDOW_S = 5.0  # older than this, the sample taken at import says little about the load now
_IMPORTED = (os.getpid(), (time.monotonic(), _busy_seconds(), time.process_time()))


def _override() -> int | None:
    value = os.environ.get("LTH_THREADS", "")
    return max(1, int(value)) if value.isdigit() else None


def choose_threads(others_busy: float | None) -> int:
    """LTH_THREADS overrides; else 2 threads if a second core is free, else 1."""
    if (threads := _override()) is not None:
        return threads
    cores = os.cpu_count() or 1
    if cores < 2 or others_busy is None or others_busy > OTHERS_BUSY_LIMIT + max(0, cores - 2):
        return 1
    return 2


def fixed_threads() -> int:
    """The thread count of a run whose numbers would depend on it: LTH_THREADS, else 2 (1 on one core)."""
    return _override() or min(2, os.cpu_count() or 1)


_MKL_CBWR_ALL, _MKL_CBWR_STRICT = -1, 0x10000
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
KEEP_FREED_BYTES = 32 << 20  # glibc's largest mmap threshold on 64-bit


@functools.cache
def keep_freed_memory() -> bool:
    """Let glibc reuse freed blocks of up to 32 MB instead of giving them back to the kernel at once.

    Its default gives back any block over 128 kB, and raises that limit only once a larger one is freed.
    A process that loaded a large dataset has raised it; one on a small dataset has not, so every
    evaluation of a conv net there maps fresh zeroed pages for its activations: 2× slower on digits, and
    the time estimate, made in a process that had, read the run 2× too fast. Set once per process (forked
    run processes inherit it); False where there is no glibc, or the user set glibc's malloc variables."""
    if any(k.startswith("MALLOC_") for k in os.environ) or "malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.restype, mallopt.argtypes = ctypes.c_int, [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_THRESHOLD, KEEP_FREED_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, 2 * KEEP_FREED_BYTES))


@functools.cache
def adaptive_threads() -> bool:
    """Whether the thread count may change between rounds without changing any number: true when MKL
    is in strict reproducible mode (`MKL_CBWR=...,STRICT` read at its first call)."""
    import torch

    if not torch.backends.mkl.is_available():
        return False
    try:
        lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
        get = lib.mkl_serv_cbwr_get
    except (OSError, AttributeError):
        return False
    get.restype, get.argtypes = ctypes.c_int, [ctypes.c_int]
    torch.ones(2, 2) @ torch.ones(2, 2)  # MKL settles its mode at its first call
    return bool(get(_MKL_CBWR_ALL) & _MKL_CBWR_STRICT)
