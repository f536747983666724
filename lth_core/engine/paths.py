"""Where the project keeps its files: the run store and the dataset cache."""
from __future__ import annotations

import os
from pathlib import Path


def lth_home() -> Path:
    """`LTH_HOME` if set, else `$XDG_DATA_HOME/lth-explorer` (default `~/.local/share/lth-explorer`)."""
    env = os.environ.get("LTH_HOME")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "lth-explorer"


def cache_dir() -> Path:
    """Parsed datasets are cached here, so a second load skips slow parsing."""
    path = lth_home() / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path
