"""The lock files: every package pinned with its hashes, torch the CPU build, the app's and the tests'
locks in step, and the README's set-up commands and CI installing from them."""
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def pins(lock: str) -> dict[str, str]:
    """name → version of every `name==version` entry; each must carry at least one sha256 hash."""
    text = (ROOT / lock).read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", re.sub(r"(?m)^\s*#.*\n", "", text).strip())
    found = {}
    for entry in entries:
        req = Requirement(entry.split("\\")[0].strip())
        spec = str(req.specifier)
        assert spec.startswith("==") and "," not in spec, f"{lock}: {entry.splitlines()[0]} is not pinned"
        assert "--hash=sha256:" in entry, f"{lock}: {req.name} has no hash"
        found[canonicalize_name(req.name)] = spec[2:]
    return found


def listed(requirements: str) -> set[str]:
    lines = [line.split("#")[0].strip() for line in (ROOT / requirements).read_text().splitlines()]
    return {canonicalize_name(Requirement(line).name) for line in lines if line and not line.startswith("-")}


@pytest.mark.parametrize("lock, sources", [("requirements.lock", ["requirements.txt"]),
                                           ("requirements-test.lock", ["requirements.txt", "requirements-test.txt"])])
def test_each_lock_pins_everything_its_requirements_name(lock, sources):
    locked = pins(lock)
    for source in sources:
        assert listed(source) <= set(locked), f"{lock} misses {listed(source) - set(locked)}"
    assert locked["torch"] == "2.13.0+cpu"  # the CPU build: no CUDA packages come with it
    assert not [name for name in locked if name.startswith(("nvidia-", "triton", "cuda"))]


def test_the_test_lock_pins_the_apps_packages_at_the_apps_versions():
    app, test = pins("requirements.lock"), pins("requirements-test.lock")
    assert {name: test.get(name) for name in app} == app


def test_readme_and_ci_install_from_the_locks():
    readme = (ROOT / "README.md").read_text()
    assert "pip install -r requirements.lock && streamlit run app.py" in readme
    assert "pip install -r requirements-test.lock && python -m pytest -q" in readme
    assert "pip install -q -r requirements-test.lock && python -m pytest -q" in (ROOT / ".ci/run").read_text()
