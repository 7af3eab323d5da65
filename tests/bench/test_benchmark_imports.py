"""Every script in benchmarks/ imports only names the library has: `benchmarks/bench_sparse_conv.py`
imported `print_table` and `run_benchmark` from `qgn.bench.sparse_conv`, gone since the decoder's
rewrite, and failed with an ImportError for many stops without a test noticing (the scripts are run
by hand). Checked from each script's source (its `from qgn… import …` lines, module level and inside
functions), without running it."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SCRIPTS = sorted(BENCHMARKS.glob("*.py"))


def _qgn_imports(script: Path) -> list[tuple[str, str]]:
    tree = ast.parse(script.read_text(encoding="utf-8"), filename=str(script))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                node.module.split(".")[0] in ("qgn", "qgn_studio"):
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names if alias.name.split(".")[0] in ("qgn", "qgn_studio")]
    return found


def test_there_are_benchmark_scripts():
    assert len(SCRIPTS) > 10


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_a_benchmark_script_imports_only_what_the_library_has(script):
    missing = []
    for module_name, name in _qgn_imports(script):
        module = importlib.import_module(module_name)
        if name and name != "*" and not hasattr(module, name):
            try:
                importlib.import_module(f"{module_name}.{name}")  # a submodule
            except ImportError:
                missing.append(f"{module_name}.{name}")
    assert not missing, f"{script.name} imports what the library lacks: {missing}"
