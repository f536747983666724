"""The package's folders show its layers, and imports only go downward:
engine <- analysis <- runs <- the CLI and tools at the top of lth_core."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lth_core"
# what each layer may import from lth_core, besides itself
MAY_IMPORT = {"engine": set(), "analysis": {"engine"}, "runs": {"engine", "analysis"}}


def lth_imports(path: Path) -> set[str]:
    """The lth_core modules a file imports, as dotted names, lazy imports in functions included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.startswith("lth_core"):
            found.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level == 1:
            found.add(f"lth_core.{path.parent.name}.{node.module or ''}".rstrip("."))
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("lth_core")}
    return found


@pytest.mark.parametrize("layer", sorted(MAY_IMPORT))
def test_a_layer_imports_only_the_layers_below_it(layer):
    files = sorted((PACKAGE / layer).glob("*.py"))
    assert len(files) >= 3
    wrong = []
    for f in files:
        for name in lth_imports(f):
            parts = name.split(".")
            target = parts[1] if len(parts) > 1 else "lth_core (the package's public API)"
            if target != layer and target not in MAY_IMPORT[layer]:
                wrong.append(f"{f.relative_to(ROOT)} imports {name}")
    assert wrong == []


def test_no_module_is_left_loose_beside_the_layers():
    loose = {p.stem for p in PACKAGE.glob("*.py")}
    assert loose <= {"__init__", "__main__", "cli", "bench", "bench_tutorial", "estimate_check", "example",
                     "sweep_cli", "sensitivity_cli", "at_init_cli", "stability_cli"}


def test_the_engine_never_imports_streamlit():
    for f in PACKAGE.rglob("*.py"):
        assert "streamlit" not in {a.split(".")[0] for a in _top_imports(f)}, f


def _top_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names
