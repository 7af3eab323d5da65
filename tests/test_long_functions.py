"""scripts/long-functions, run as a person runs it: the paths and ``--over N`` it is given are the
ones it uses, and a path or an option it cannot use is an error naming it (exit 2), never "0 functions"."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "long-functions"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def function(name: str, lines: int) -> str:
    """A function ``lines`` long, from its ``def`` line to its last."""
    return f"def {name}():\n" + "    x = 1\n" * (lines - 1)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text(function("short", 30) + "\n\n" + function("long", 60), encoding="utf-8")
    (tmp_path / "other.py").write_text("class C:\n" + "\n".join("    " + line for line in
                                                                function("method", 45).splitlines()) + "\n",
                                       encoding="utf-8")
    return tmp_path


def test_the_limit_and_the_paths_given_are_used(tree: Path) -> None:
    default = run("pkg", "other.py", cwd=tree)
    assert default.returncode == 0, default.stderr
    assert default.stdout.split() == ["60", str(Path("pkg/a.py")) + ":33", "long"]
    assert "1 functions over 50 lines" in default.stderr

    lower = run("pkg", "other.py", "--over", "40", cwd=tree)
    assert lower.returncode == 0, lower.stderr
    assert [line.split() for line in lower.stdout.splitlines()] == [
        ["60", str(Path("pkg/a.py")) + ":33", "long"], ["45", "other.py:2", "C.method"]]
    assert "2 functions over 40 lines" in lower.stderr

    before = run("--over", "20", "pkg", cwd=tree)
    assert [line.split()[2] for line in before.stdout.splitlines()] == ["long", "short"]


@pytest.mark.parametrize("args, names", [
    (["pkg", "missing"], "missing"),
    (["--over", "x", "pkg"], "--over"),
    (["-n", "40"], "-n"),
    (["pkg", "40"], "40"),
    (["--over", "-3", "pkg"], "--over"),
])
def test_what_it_cannot_use_is_an_error_naming_it(tree: Path, args: list[str], names: str) -> None:
    result = run(*args, cwd=tree)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "long-functions: error:" in result.stderr and names in result.stderr


@pytest.mark.parametrize("bad", ["not-utf8", "nul", "link-to-nowhere", "folder"])
def test_a_file_found_that_cannot_be_read_is_an_error_naming_it(tree: Path, bad: str) -> None:
    """Inside a folder a file that is not UTF-8, holds a NUL, links to nowhere or is a folder named
    ``x.py`` ended in a traceback (exit 1) or an error naming "a file"."""
    target = tree / "pkg" / "bad.py"
    if bad == "not-utf8":
        target.write_bytes(b"\xff")
    elif bad == "nul":
        target.write_bytes(b"x = 1\x00\n")
    elif bad == "link-to-nowhere":
        target.symlink_to(tree / "nowhere.py")
    else:
        target.mkdir()
    result = run("pkg", cwd=tree)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("long-functions: error: ") and "bad.py" in result.stderr
    assert "Traceback" not in result.stderr
