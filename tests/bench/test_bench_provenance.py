"""qgn.bench.provenance: the record every benchmark row carries — the commit and whether the tree
had changes (git itself the reference), torch and its threads, the CPU, the command — and that it
still works where there is no git checkout (an installed copy: "commit" null)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from qgn.bench.provenance import RESULTS_FOLDER, cpu_model, describe_code_and_machine, git_state, provenance

ROOT = Path(__file__).resolve().parents[2]
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(folder: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A git repository with one commit: a tracked source file and a tracked result file."""
    repo = tmp_path / "repo"
    (repo / "qgn").mkdir(parents=True)
    (repo / RESULTS_FOLDER).mkdir(parents=True)
    (repo / "qgn" / "code.py").write_text("x = 1\n")
    (repo / RESULTS_FOLDER / "rows.jsonl").write_text("{}\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    return repo


@needs_git
def test_a_clean_checkout_gives_its_commit_not_dirty(checkout) -> None:
    assert git_state(checkout) == (git(checkout, "rev-parse", "--short", "HEAD"), False, None)


@needs_git
def test_a_changed_tracked_file_is_dirty_a_result_or_an_untracked_file_is_not(checkout) -> None:
    commit = git(checkout, "rev-parse", "--short", "HEAD")
    (checkout / RESULTS_FOLDER / "rows.jsonl").write_text("")  # `qgn bench … > rows.jsonl` empties it first
    (checkout / "notes.txt").write_text("untracked\n")
    assert git_state(checkout) == (commit, False, None)
    (checkout / "qgn" / "code.py").write_text("x = 2\n")
    assert git_state(checkout) == (commit, True, None)


@needs_git
def test_a_folder_inside_another_checkout_has_no_commit(checkout) -> None:
    """A venv's site-packages inside a checkout holds an installed copy, not that checkout's code."""
    commit, dirty, note = git_state(checkout / "qgn")
    assert (commit, dirty) == (None, None) and note.startswith("no git checkout (an installed copy, inside")


@needs_git
def test_a_repository_without_a_commit_has_none(tmp_path) -> None:
    git(tmp_path, "init", "-q")
    commit, dirty, note = git_state(tmp_path)
    assert (commit, dirty) == (None, None) and note.startswith("a git repository without a commit")


def test_no_repository_or_no_git_gives_none(tmp_path, checkout, monkeypatch) -> None:
    (tmp_path / "elsewhere").mkdir()
    assert git_state(tmp_path / "elsewhere") == (None, None, "no git checkout (an installed copy)")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no git program at all
    assert git_state(checkout) == (None, None, "git is not installed (no git program on PATH)")


def test_an_installed_copy_without_git_still_gives_a_record(tmp_path) -> None:
    """The module run from a copy of qgn outside any checkout (as pip installs it): every field but
    the commit, in a fresh process."""
    for part in ("__init__.py", "bench/__init__.py", "bench/provenance.py"):
        (tmp_path / "site" / "qgn" / part).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "qgn" / part, tmp_path / "site" / "qgn" / part)
    code = ("import json, torch; torch.set_num_threads(1); from qgn.bench.provenance import provenance; "
            "import qgn.bench.provenance as p; print(p.__file__); print(json.dumps(provenance(['qgn', 'bench'])))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True,
                          env={**os.environ, "PYTHONPATH": str(tmp_path / "site")})
    where, line = done.stdout.strip().splitlines()
    assert Path(where).is_relative_to(tmp_path / "site")
    record = json.loads(line)
    assert record["commit"] is None and record["dirty"] is None
    assert record["commit_note"] == "no git checkout (an installed copy)"
    assert record["torch"] == torch.__version__ and record["threads"] == 1
    assert record["command"] == "qgn bench" and record["cpus"] == os.cpu_count()


def test_the_record_names_threads_torch_and_the_quoted_command(monkeypatch) -> None:
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    record = provenance(["python", "benchmarks/bench_x.py", "--label", "a b"])
    assert record["threads"] == 3 and record["torch"] == torch.__version__
    assert record["command"] == "python benchmarks/bench_x.py --label 'a b'"
    assert json.loads(json.dumps(record)) == record


def test_the_cpu_model_is_the_first_model_name_or_none(tmp_path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: X\nmodel name\t:  Some   CPU @ 2.0GHz\n\n"
                    "processor\t: 1\nmodel name\t: Other\n")
    assert cpu_model(info) == "Some CPU @ 2.0GHz"
    info.write_text("processor\t: 0\nCPU part\t: 0xd0c\n")  # an ARM machine's cpuinfo has no model name
    assert cpu_model(info) is None
    assert cpu_model(tmp_path / "missing") is None


def test_the_tables_heading_names_the_commit_and_the_cpu() -> None:
    record = {"commit": "abc1234", "dirty": True, "cpus": 2, "cpus_usable": 2, "cpu_model": "Some CPU"}
    assert describe_code_and_machine(record) == "code: commit abc1234 (tracked files changed); CPU: 2 cores, Some CPU"
    record.update(commit=None, dirty=None, cpus=16, cpus_usable=4, cpu_model=None)
    assert describe_code_and_machine(record) == ("code: no git checkout (an installed copy); CPU: 16 cores (4 usable), "
                                                 "model unknown")



def test_the_decoder_memory_script_rows_carry_the_record() -> None:
    """``benchmarks/bench_decoder_memory.py --json`` (stand-in masks when CamVid is absent): every row
    has the record, naming the script's command line as it was run."""
    script = ROOT / "benchmarks" / "bench_decoder_memory.py"
    done = subprocess.run([sys.executable, str(script), "--json", "--images", "1", "--size", "64x32", "--width", "0.25"],
                          capture_output=True, text=True, check=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert rows and all(row["name"].startswith("memory/decoder") for row in rows)
    for row in rows:
        record = row["provenance"]
        assert record["command"] == f"python {script} --json --images 1 --size 64x32 --width 0.25"
        assert record["torch"] == torch.__version__ and record["cpus"] == os.cpu_count()


@needs_git
def test_a_checkout_git_refuses_says_why_it_has_no_commit(checkout) -> None:
    """git refuses a checkout another user owns ("dubious ownership", common in CI containers): the
    record says so, not "an installed copy". git's own test switch plays the other owner."""
    os.environ["GIT_TEST_ASSUME_DIFFERENT_OWNER"] = "1"
    try:
        refused = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True)
        if "dubious ownership" not in refused.stderr:
            pytest.skip(f"this git ({git(checkout, 'version')}) does not check a checkout's owner")
        commit, dirty, note = git_state(checkout)
    finally:
        del os.environ["GIT_TEST_ASSUME_DIFFERENT_OWNER"]
    assert (commit, dirty) == (None, None)
    assert "dubious ownership" in note and "safe.directory" in note and str(checkout) in note
    trusted = {"GIT_TEST_ASSUME_DIFFERENT_OWNER": "1", "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory",
               "GIT_CONFIG_VALUE_0": "*"}  # how a CI container trusts a checkout: configuration, kept for git
    os.environ.update(trusted)
    try:
        assert git_state(checkout) == (git(checkout, "rev-parse", "--short", "HEAD"), False, None)
    finally:
        for key in trusted:
            del os.environ[key]
    record = {"commit": None, "dirty": None, "commit_note": note, "cpus": 2, "cpus_usable": 2, "cpu_model": "X"}
    assert describe_code_and_machine(record).startswith(f"code: no commit ({note}); CPU: 2 cores")


@needs_git
def test_a_git_dir_in_the_environment_does_not_credit_another_repository(checkout, tmp_path, monkeypatch) -> None:
    """A hook (or a script run by one) has GIT_DIR / GIT_INDEX_FILE set for its own repository: the
    record names the checkout that holds the code."""
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    (other / "f").write_text("f\n")
    git(other, "add", "f")
    git(other, "commit", "-q", "-m", "other")
    expected = subprocess.run(["git", "-C", str(checkout), "--git-dir", str(checkout / ".git"), "rev-parse", "--short",
                               "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(other / ".git" / "index"))
    assert git_state(checkout) == (expected, False, None)
    monkeypatch.setenv("GIT_WORK_TREE", str(other))
    assert git_state(checkout) == (expected, False, None)
