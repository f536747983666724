"""What a command pays before it works: the CLI and a run import no library they do not use (scipy's
statistics alone was 0.6 s of every `python -m lth_core` command), and a run in the store still closes it at
exit. Speed itself is measured by `python -m lth_core bench`."""
import ast
import json
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

# libraries only some commands use: statistics intervals, figures, scikit-learn's datasets, ONNX exports
HEAVY = ("scipy.stats", "plotly", "sklearn", "onnx", "onnxruntime", "matplotlib", "mlxtend")


def imported_after(code: str, tmp_path, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    """The `heavy` modules in sys.modules after `code` ran in a fresh interpreter (LTH_HOME in tmp_path)."""
    script = (f"import io, json, sys, contextlib\n{code}\n"
              f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={"PATH": "/usr/bin:/bin", "LTH_HOME": str(tmp_path / "home"), "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_package_imports_no_heavy_library(tmp_path):
    assert imported_after("import lth_core", tmp_path) == []


def test_quick_commands_import_no_heavy_library(tmp_path):
    code = ("from lth_core.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n"
            "        main(['--help'])\n"
            "    except SystemExit:\n"
            "        pass\n"
            "    assert main(['runs']) == 0 and main(['tasks']) == 0 and main(['archs']) == 0\n")
    assert imported_after(code, tmp_path) == []


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


def test_the_pages_imports_leave_scipy_stats_and_sklearn_out(tmp_path):
    # the app's first page after a server start imports every module the pages import (the server had none of
    # them loaded): scipy.stats alone took ~1 s of it, for a t-quantile; the pages draw with Plotly, so it may load
    modules = top_level_imports([ROOT / "app.py", *sorted((ROOT / "app_pages").glob("*.py"))])
    assert "ui.widgets" in modules and "lth_core.runs.sweep" in modules  # the app's own, not just streamlit
    code = f"import importlib\nfor m in {modules!r}: importlib.import_module(m)"
    assert imported_after(code, tmp_path, ("scipy.stats", "sklearn")) == []


# Run as `python -m lth_core ...` would be, with a probe: an object whose finalizer only Python's teardown calls
PROBE = """
import atexit, os, runpy, sys, types
class Probe:
    def __del__(self, write=os.write):
        write(2, b"teardown ran\\n")
probe = types.ModuleType("_teardown_probe")
probe.p = Probe()
sys.modules["_teardown_probe"] = probe
atexit.register(lambda: sys.stderr.write("atexit ran\\n"))
sys.argv = ["lth_core", *sys.argv[1:]]
runpy.run_module("lth_core", run_name="__main__", alter_sys=True)
"""
TINY = ["--dataset", "digits", "--arch", "mlp", "--hidden", "16", "--rounds", "1", "--epochs", "0.5", "--seed", "1"]


def probed_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_a_run_kept_in_the_store_exits_normally_so_the_store_is_closed(tmp_path):
    proc = probed_cli("run", *TINY, "--quiet", "--store", "--store-path", str(tmp_path / "runs.sqlite"))
    assert proc.returncode == 0, proc.stderr
    assert "teardown ran" in proc.stderr.splitlines() and "atexit ran" in proc.stderr.splitlines()
    assert not (tmp_path / "runs.sqlite-wal").exists()  # SQLite removed its write-ahead log at the close
