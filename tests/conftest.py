"""Shared fixtures. Every test gets its own LTH_HOME, so nothing touches the user's files;
parsed datasets are cached in one session-wide folder so they are parsed once."""
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def dataset_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("lth-cache")


@pytest.fixture(autouse=True)
def lth_home(tmp_path, monkeypatch, dataset_cache) -> Path:
    home = tmp_path / "lth-home"
    home.mkdir()
    # share the parsed-dataset cache between tests: a symlink into the session cache
    os.symlink(dataset_cache, home / "cache")
    monkeypatch.setenv("LTH_HOME", str(home))
    return home
