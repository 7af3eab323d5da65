"""docs/architecture.md's module list ("Every module, and its one concept") is the tree's: one line per
module of ``qgn/`` and ``qgn_studio/`` (the modules ``module_files`` of tests/test_import_contracts.py
counts, C extensions included), none for a module that does not exist, none twice.

A failure names the line to add or to remove. The check is a plain function over the doc's text and a
set of module names, so ``test_a_wrong_list_is_caught`` shows it catching each kind of mistake.
"""
from __future__ import annotations

import re

from test_import_contracts import ROOT, module_files

DOC = ROOT / "docs" / "architecture.md"
SECTION = "## Every module, and its one concept"
#: A module's line: "- `qgn.sparse.level` — what it is about".
MODULE_LINE = re.compile(r"^- `(?P<name>[A-Za-z_][\w.]*)` [—–-] ")  # any dash: one typed as "-" is still the line


def documented_modules(text: str) -> list[tuple[int, str]]:
    """(line number, module name) of every module line in the doc's module section, in order."""
    found, inside = [], False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("## "):
            inside = line.strip() == SECTION
        elif inside and (match := MODULE_LINE.match(line)):
            found.append((number, match["name"]))
    return found


def doc_problems(text: str, modules: set[str], doc_name: str = "docs/architecture.md") -> list[str]:
    """One line per difference between the doc's module list and ``modules``, saying what to change."""
    listed = documented_modules(text)
    if not listed:
        return [f"{doc_name}: no module lines found under {SECTION!r} (lines like '- `qgn.x` — …')"]
    problems, seen = [], set()
    for number, name in listed:
        if name in seen:
            problems.append(f"{doc_name}:{number}: remove this line: `{name}` is listed twice")
        elif name not in modules:
            problems.append(f"{doc_name}:{number}: remove this line: there is no module `{name}` in the tree")
        seen.add(name)
    for name in sorted(modules - seen):
        problems.append(f"{doc_name}: add a line '- `{name}` — <its one concept>' "
                        f"under {SECTION!r}, in its layer's (qgn) or part's (qgn_studio) group")
    return problems


def test_the_doc_lists_every_module_once_and_no_other() -> None:
    problems = doc_problems(DOC.read_text(encoding="utf-8"), set(module_files(ROOT)))
    assert not problems, "\n" + "\n".join(problems)


def test_a_wrong_list_is_caught() -> None:
    text = ("# Doc\n\n## The layers\n\n- `qgn.elsewhere` — not in the module section\n\n"
            f"{SECTION}\n\n- `qgn` — the package\n- `qgn.gone` — deleted last week\n"
            "- `qgn.level` — one\n- `qgn.level` — the same again\n\n## Later\n\n- `qgn.after` — after it\n")
    problems = doc_problems(text, {"qgn", "qgn.level", "qgn.new", "qgn.elsewhere"}, "doc.md")
    assert problems == [
        "doc.md:10: remove this line: there is no module `qgn.gone` in the tree",
        "doc.md:12: remove this line: `qgn.level` is listed twice",
        f"doc.md: add a line '- `qgn.elsewhere` — <its one concept>' under {SECTION!r}, "
        "in its layer's (qgn) or part's (qgn_studio) group",
        f"doc.md: add a line '- `qgn.new` — <its one concept>' under {SECTION!r}, "
        "in its layer's (qgn) or part's (qgn_studio) group",
    ]


def test_a_right_list_passes() -> None:
    text = f"{SECTION}\n\n#### group\n\n- `qgn` — the package\n- `qgn.sparse._fused` — a C extension\n"
    assert doc_problems(text, {"qgn", "qgn.sparse._fused"}) == []
    typed = text.replace("` — a C", "` - a C")  # a hyphen typed for the dash: still the module's line, not "add it"
    assert doc_problems(typed, {"qgn", "qgn.sparse._fused"}) == []
