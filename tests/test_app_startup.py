"""The app's first page after a server start imports every module the pages import (the server had none of
them loaded): scipy.stats alone took ~1 s of it, for a t-quantile. The pages' imports must not load it."""
import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from lth_core.analysis.statistics import interval, trials_to_decide

ROOT = Path(__file__).resolve().parent.parent


def top_level_imports(paths: list[Path]) -> list[str]:
    """The absolute modules the files import at their top level (what a page's first run loads)."""
    names = set()
    for path in paths:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
    return sorted(names)


def test_the_pages_imports_leave_scipy_stats_and_sklearn_out():
    modules = top_level_imports([ROOT / "app.py", *sorted((ROOT / "app_pages").glob("*.py"))])
    assert "ui.widgets" in modules and "lth_core.runs.sweep" in modules  # the app's own, not just streamlit
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print(sorted({m.split('.')[0] + ('.stats' if m.startswith('scipy.stats') else '') for m in sys.modules"
            " if m.startswith(('scipy.stats', 'sklearn'))}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("values", [[0.1, 0.2, 0.4], [0.5, 0.52, 0.49, 0.61], [3.0, 3.5, 2.5]])
def test_the_t_interval_is_scipys(values):
    n, mean = len(values), float(np.mean(values))
    low, high = stats.t.interval(0.95, df=n - 1, loc=mean, scale=stats.sem(values))
    got = interval(values)
    assert got.method == "t" and got.low == pytest.approx(low, rel=1e-12) and got.high == pytest.approx(high, rel=1e-12)


def test_trials_to_decide_uses_the_t_quantile():
    gaps = [0.02, 0.01, 0.03]
    mean, sd = abs(np.mean(gaps)), np.std(gaps, ddof=1)
    n = next(n for n in range(2, 200) if stats.t.ppf(0.975, df=n - 1) * sd / np.sqrt(n) < mean)
    assert trials_to_decide(gaps) == max(n, len(gaps) + 1)
