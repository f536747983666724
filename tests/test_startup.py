"""What a command pays before it works: the CLI and a run import no library they do not use (scipy's
statistics alone was 0.6 s of every `python -m lth_core` command), and a run in the store still closes it at
exit. Speed itself is measured by `python -m lth_core bench`."""
import json
import subprocess
import sys

from conftest import ROOT

# libraries only some commands use: statistics intervals, figures, scikit-learn's datasets, ONNX exports
HEAVY = ("scipy.stats", "plotly", "sklearn", "onnx", "onnxruntime", "matplotlib", "mlxtend")


def imported_after(code: str, tmp_path) -> list[str]:
    """The HEAVY modules in sys.modules after `code` ran in a fresh interpreter (LTH_HOME in tmp_path)."""
    script = (f"import io, json, sys, contextlib\n{code}\n"
              f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n")
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
