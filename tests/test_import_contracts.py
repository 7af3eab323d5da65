"""The import rules the code states, checked on its source (AST, nothing is imported):

(a) nothing under ``qgn/`` imports Qt (PySide6, shiboken6, PyQt, qtpy), pyqtgraph or the app;
(b) the library's layers (``LAYERS``, also in ``qgn/__init__.py``'s docstring) import only their own
    layer and the ones below, imports inside functions included;
(c) the app's widget-free modules (``WIDGET_FREE``) import no widgets (QtWidgets, pyqtgraph),
    neither directly nor through the app modules they import;
(d) no import cycle among ``qgn`` modules (``ALLOWED_CYCLES`` names the one by design).

Every failure is a line ``file:line: what: rule (x) …``. The checks are plain functions over a source
tree, so ``test_a_violation_is_caught`` shows each one catching a planted violation in ``tmp_path``.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: The library's layers, lowest first: a module imports its own layer and the ones below, never one
#: above. An entry names a module or a package (all its modules); "qgn" is the package's __init__ alone.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundation", ("qgn", "qgn.classes", "qgn.label_map", "qgn.fileio", "qgn.export_lock", "qgn.imagefile",
                    "qgn.bounds", "qgn.metrics", "qgn.resources", "qgn.ground_truth", "qgn.allocator",
                    "qgn.progress", "qgn.env", "qgn.shown", "qgn.processes")),
    ("labels", ("qgn.quadtree",)),
    ("data, sparse, propagation", ("qgn.data", "qgn.sparse", "qgn.propagation")),
    ("model", ("qgn.model", "qgn.loss")),
    ("inference", ("qgn.infer", "qgn.evaluate", "qgn.uncertainty", "qgn.domain", "qgn.project_head")),
    ("training", ("qgn.train",)),
    ("files and projects", ("qgn.formats", "qgn.annotation", "qgn.classes_edit", "qgn.project", "qgn.project_removed",
                            "qgn.project_bring_back", "qgn.project_import", "qgn.project_class_edit", "qgn.project_stats",
                            "qgn.project_relink", "qgn.project_export", "qgn.project_generations",
                            "qgn.project_kept", "qgn.project_file", "qgn.project_errors", "qgn.project_images")),
    ("tools", ("qgn.bench", "qgn.serve")),
    ("command line", ("qgn.cli", "qgn.__main__")),
)
QT = ("PySide6", "PySide2", "PyQt5", "PyQt6", "shiboken6", "shiboken2", "qtpy", "pyqtgraph", "qgn_studio")
WIDGETS = ("PySide6.QtWidgets", "PySide2.QtWidgets", "PyQt5.QtWidgets", "PyQt6.QtWidgets", "pyqtgraph")
#: App modules that must work without widgets; (module, required): the workspace may not exist yet.
WIDGET_FREE = (("qgn_studio.document", True), ("qgn_studio.engine", True), ("qgn_studio.discovery", True),
               ("qgn_studio.workspace", False))
ALLOWED_CYCLES = {
    # Auto-selection self-checks the backend it would pick; the self-check gets backends by name
    # from the registry (qgn/sparse/backend.py imports selfcheck on first use).
    frozenset({"qgn.sparse.backend", "qgn.sparse.selfcheck"}),
}


@dataclass(frozen=True)
class Import:
    """One import statement's target: ``source`` (a module, its file ``path``) imports ``target`` at
    ``line``. ``target`` is the module imported, as precisely as the tree tells: a module of the tree
    (``from pkg import submodule`` → the submodule, ``from pkg import name`` → pkg), else the dotted
    name written (``from PySide6 import QtWidgets`` → ``PySide6.QtWidgets``)."""

    source: str
    path: Path
    line: int
    target: str

    def where(self, root: Path) -> str:
        return f"{self.path.relative_to(root)}:{self.line}"


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def module_files(root: Path, packages=("qgn", "qgn_studio")) -> dict[str, Path]:
    """Module name → file of every ``.py`` under ``root/<package>`` (a package is its ``__init__``),
    and of every C extension's source (``qgn/sparse/_fused.c`` → ``qgn.sparse._fused``: it imports
    no Python module, and ``from qgn.sparse import _fused`` imports it, not the package)."""
    found = {}
    for package in packages:
        for path in sorted([*(root / package).rglob("*.py"), *(root / package).rglob("*.c")]):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str:
    """The longest prefix of ``name`` that is a module of the tree (``name`` itself when none is)."""
    probe = name
    while probe:
        if probe in modules:
            return probe
        probe = probe.rpartition(".")[0]
    return name


def read_imports(root: Path, packages=("qgn", "qgn_studio")) -> tuple[list[Import], dict[str, Path]]:
    """Every import in the tree (module level, in functions, under TYPE_CHECKING alike)."""
    modules = module_files(root, packages)
    found = []
    for source, path in modules.items():
        if path.suffix != ".py":
            continue
        package = source.split(".") if path.name == "__init__.py" else source.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [_resolve(alias.name, modules) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
                internal = _resolve(base, modules) in modules
                targets = [_resolve(f"{base}.{alias.name}", modules) if internal else f"{base}.{alias.name}"
                           for alias in node.names]
            else:
                continue
            found += [Import(source, path, node.lineno, target) for target in dict.fromkeys(targets)]
    return found, modules


# ---------------------------------------------------------------------------------------------- checks
def qt_violations(imports: list[Import], root: Path) -> list[str]:
    """Rule (a)."""
    return [f"{i.where(root)}: {i.source} imports {i.target}: rule (a) qgn/ never imports Qt, pyqtgraph or the app"
            for i in imports if within(i.source, "qgn") and any(within(i.target, q) for q in QT)]


def layer_of(module: str, layers) -> int | None:
    """The index of ``module``'s layer (the longest entry that contains it; an entry without a dot,
    the root package, contains only itself), None when unlisted."""
    best, best_length = None, -1
    for index, (_, entries) in enumerate(layers):
        for entry in entries:
            contains = within(module, entry) if "." in entry else module == entry
            if contains and len(entry) > best_length:
                best, best_length = index, len(entry)
    return best


def layer_violations(imports: list[Import], modules: dict[str, Path], root: Path, layers=LAYERS) -> list[str]:
    """Rule (b), and every library module in a layer."""
    problems = [f"{path.relative_to(root)}:1: {name} is in no layer: rule (b) every qgn module has a layer; "
                "add it to LAYERS (tests/test_import_contracts.py) and qgn/__init__.py's docstring"
                for name, path in modules.items() if within(name, "qgn") and layer_of(name, layers) is None]
    for i in imports:
        if not (within(i.source, "qgn") and within(i.target, "qgn") and i.target in modules):
            continue
        low, high = layer_of(i.source, layers), layer_of(i.target, layers)
        if low is not None and high is not None and high > low:
            problems.append(f"{i.where(root)}: {i.source} (layer {layers[low][0]!r}) imports {i.target} (layer "
                            f"{layers[high][0]!r}): rule (b) layers import only downwards")
    return problems


def widget_violations(imports: list[Import], modules: dict[str, Path], root: Path,
                      widget_free=WIDGET_FREE) -> list[str]:
    """Rule (c): a widget import reached from a widget-free module, with the chain of imports."""
    by_source = defaultdict(list)
    for i in imports:
        by_source[i.source].append(i)
    problems = []
    for module, required in widget_free:
        if module not in modules:
            if required:
                problems.append(f"{module}: missing: rule (c) names a widget-free module that does not exist")
            continue
        seen, queue = {module}, [(module, [])]
        while queue:
            current, chain = queue.pop(0)
            for i in by_source[current]:
                if any(within(i.target, w) for w in WIDGETS):
                    steps = " → ".join(f"{step.target} ({step.where(root)})" for step in chain + [i])
                    start = (chain + [i])[0]
                    problems.append(f"{start.where(root)}: {module} reaches widgets: {module} → {steps}: rule (c) "
                                    "document/engine/discovery/workspace import no widgets")
                elif i.target in modules and i.target not in seen:
                    seen.add(i.target)
                    queue.append((i.target, chain + [i]))
    return problems


def cycle_violations(imports: list[Import], modules: dict[str, Path], root: Path,
                     allowed=frozenset(ALLOWED_CYCLES)) -> list[str]:
    """Rule (d): the strongly connected components of the qgn import graph, each a cycle."""
    edges = defaultdict(list)
    for i in imports:
        if within(i.source, "qgn") and within(i.target, "qgn") and i.target in modules and i.target != i.source:
            edges[i.source].append(i)
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for edge in edges[v]:
            w = edge.target
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(frozenset(component))

    for module in sorted(m for m in modules if within(m, "qgn")):
        if module not in index:
            visit(module)
    problems = []
    for component in components:
        if component in allowed:
            continue
        inside = [e for m in sorted(component) for e in edges[m] if e.target in component]
        problems += [f"{e.where(root)}: {e.source} imports {e.target}, which imports it back (cycle "
                     f"{sorted(component)}): rule (d) no import cycles in qgn" for e in inside]
    return problems


# ---------------------------------------------------------------------------------------------- the code
@pytest.fixture(scope="module")
def tree():
    return read_imports(ROOT)


def no_violations(problems: list[str]) -> None:
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_qgn_imports_no_qt(tree) -> None:
    imports, _ = tree
    no_violations(qt_violations(imports, ROOT))


def test_qgn_layers_import_only_downwards(tree) -> None:
    imports, modules = tree
    no_violations(layer_violations(imports, modules, ROOT))


def test_widget_free_app_modules_import_no_widgets(tree) -> None:
    imports, modules = tree
    no_violations(widget_violations(imports, modules, ROOT))


def test_qgn_has_no_import_cycles(tree) -> None:
    imports, modules = tree
    no_violations(cycle_violations(imports, modules, ROOT))
    every_cycle = cycle_violations(imports, modules, ROOT, frozenset())
    for component in ALLOWED_CYCLES:  # an allowance that no longer allows anything goes
        assert any(str(sorted(component)) in line for line in every_cycle), \
            f"ALLOWED_CYCLES: {sorted(component)} is no longer a cycle; remove it"


def test_the_package_docstring_lists_the_layers() -> None:
    """``qgn/__init__.py`` says the same layers, in the same order, as ``LAYERS``."""
    doc = ast.get_docstring(ast.parse((ROOT / "qgn" / "__init__.py").read_text(encoding="utf-8")))
    positions = [doc.find(f"{name}:") for name, _ in LAYERS]
    assert -1 not in positions and positions == sorted(positions), "qgn/__init__.py lists other layers than LAYERS"
    for name, entries in LAYERS:
        bullet = doc[doc.find(f"{name}:"):].split("\n- ")[0]
        named = [e.removeprefix("qgn.") for e in entries if e != "qgn"]
        assert all(n in bullet for n in named), f"qgn/__init__.py: the layer {name!r} should name {named}"


# ---------------------------------------------------------------------------------------------- the checks
SMALL_LAYERS = (("low", ("qgn", "qgn.low")), ("high", ("qgn.high",)))
PLANTED = {
    "qt in the library": (
        {"qgn/low.py": "X = 1\n", "qgn/high.py": "def show():\n    from PySide6 import QtCore\n"},
        "qgn/high.py:2: qgn.high imports PySide6.QtCore: rule (a)"),
    "the app in the library": (
        {"qgn/low.py": "import qgn_studio.document\n", "qgn/high.py": ""},
        "qgn/low.py:1: qgn.low imports qgn_studio: rule (a)"),
    "an upward import in a function": (
        {"qgn/low.py": "def f():\n    from .high import g\n    return g\n", "qgn/high.py": "def g():\n    pass\n"},
        "qgn/low.py:2: qgn.low (layer 'low') imports qgn.high (layer 'high'): rule (b)"),
    "a module in no layer": (
        {"qgn/low.py": "", "qgn/high.py": "", "qgn/stray.py": ""},
        "qgn/stray.py:1: qgn.stray is in no layer: rule (b)"),
    "widgets through a helper": (
        {"qgn/low.py": "", "qgn/high.py": "", "qgn_studio/document.py": "from qgn_studio import helper\n",
         "qgn_studio/helper.py": "import os\n\ndef f():\n    import pyqtgraph\n"},
        "qgn_studio/document.py:1: qgn_studio.document reaches widgets: qgn_studio.document → qgn_studio.helper "
        "(qgn_studio/document.py:1) → pyqtgraph (qgn_studio/helper.py:4): rule (c)"),
    "widgets in the workspace": (
        {"qgn/low.py": "", "qgn/high.py": "", "qgn_studio/workspace.py": "from PySide6 import QtCore, QtWidgets\n"},
        "qgn_studio/workspace.py:1: qgn_studio.workspace reaches widgets: qgn_studio.workspace → PySide6.QtWidgets"),
    "a cycle": (
        {"qgn/low.py": "from qgn.high import b\n", "qgn/high.py": "def b():\n    import qgn.low\n"},
        "qgn/high.py:2: qgn.high imports qgn.low, which imports it back (cycle ['qgn.high', 'qgn.low']): rule (d)"),
}


def _all_violations(root: Path) -> list[str]:
    imports, modules = read_imports(root)
    free = [(m, False) for m, _ in WIDGET_FREE]  # the planted trees hold only what each case needs
    return (qt_violations(imports, root) + layer_violations(imports, modules, root, SMALL_LAYERS)
            + widget_violations(imports, modules, root, free) + cycle_violations(imports, modules, root, frozenset()))


@pytest.mark.parametrize("case", list(PLANTED))
def test_a_violation_is_caught(tmp_path: Path, case: str) -> None:
    files, expected = PLANTED[case]
    for name, text in {"qgn/__init__.py": "", "qgn_studio/__init__.py": "", **files}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    found = _all_violations(tmp_path)
    assert any(line.startswith(expected) for line in found), found


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    files = {"qgn/__init__.py": "", "qgn/low.py": "import numpy\n", "qgn/high.py": "from . import low\n",
             "qgn_studio/__init__.py": "", "qgn_studio/document.py": "from PySide6 import QtCore\nimport qgn.high\n"}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    no_violations(_all_violations(tmp_path))
