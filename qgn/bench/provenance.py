"""Where a measured figure came from: the code (git commit, and whether the tree had changes), the
torch it ran on, its threads, the machine and the command — one record, the ``"provenance"`` key of
every JSON row ``qgn bench --json`` and the scripts of ``benchmarks/`` write, so a figure in
``benchmarks/RESULTS.md`` can be tied to the code that measured it.

The record (a dict, JSON-serialisable)::

    {"commit": "fb6a229" | null,   # short hash of HEAD; null outside a git checkout (an installed copy)
     "dirty": true | false | null, # tracked files changed against HEAD (benchmarks/results/ aside); null without a commit
     "commit_note": null | "…",    # why "commit" is null: an installed copy, git missing, git refusing the checkout…
     "torch": "2.13.0+cpu",        # torch.__version__
     "threads": 1,                 # torch's intra-op threads when the record is made (after --threads)
     "cpus": 2,                    # os.cpu_count(); "cpus_usable": the cores this process may run on
     "cpu_model": "…" | null,      # /proc/cpuinfo's first "model name", null where unreadable
     "command": "qgn bench --threads 1 --json …"}

A short hash and a dirty flag, not a diff: a dirty figure is to be measured again on a commit.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

#: The checkout that holds this ``qgn`` package when it runs from one (``qgn/bench/provenance.py``
#: → the repository root); an installed copy has none.
SOURCE_ROOT = Path(__file__).resolve().parents[2]

#: Left out of the dirty check: a benchmark's own output, written there while it runs (a shell's
#: ``> benchmarks/results/x.jsonl`` empties that tracked file before the command starts).
RESULTS_FOLDER = "benchmarks/results"

GIT_TIMEOUT_S = 10

#: The environment variables that point git at a repository (``git rev-parse --local-env-vars``, git
#: 2.39), left out of git's environment here: a git hook (or a benchmark it runs) has ``GIT_DIR`` and
#: ``GIT_INDEX_FILE`` of its own repository, which would credit that repository's commit to this code.
#: Git's configuration variables (``GIT_CONFIG_PARAMETERS``, ``GIT_CONFIG_COUNT``/``_KEY_n``/``_VALUE_n``)
#: stay: they are command-line configuration, the way a CI container trusts a checkout (``safe.directory``).
GIT_REPOSITORY_VARIABLES = frozenset({
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_OBJECT_DIRECTORY", "GIT_DIR", "GIT_WORK_TREE", "GIT_IMPLICIT_WORK_TREE", "GIT_GRAFT_FILE",
    "GIT_INDEX_FILE", "GIT_NO_REPLACE_OBJECTS", "GIT_REPLACE_REF_BASE", "GIT_PREFIX", "GIT_INTERNAL_SUPER_PREFIX",
    "GIT_SHALLOW_FILE", "GIT_COMMON_DIR"})


def provenance(command: list[str] | str | None = None) -> dict:
    """The record above. ``command``: the command line as words (shell-quoted when joined) or as one
    string; default ``sys.argv`` (``python`` before a script's path). Call it after the run's thread count is set."""
    import torch

    if command is None:  # a script of benchmarks/ as it was run: "python benchmarks/bench_x.py …"
        command = ["python", *sys.argv] if sys.argv and sys.argv[0].endswith(".py") else sys.argv
    commit, dirty, note = git_state(SOURCE_ROOT)
    return {"commit": commit, "dirty": dirty, "commit_note": note, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpus": os.cpu_count(), "cpus_usable": usable_cpus(), "cpu_model": cpu_model(),
            "command": command if isinstance(command, str) else shlex.join(str(word) for word in command)}


def git_state(root: Path) -> tuple[str | None, bool | None, str | None]:
    """(short hash of HEAD, tracked files changed, None) of the git checkout whose top folder is
    ``root``; (None, None, why) when there is no commit to name: no git, no repository, git refusing
    the checkout (another user owns it), ``root`` only inside another checkout's tree (a venv's
    site-packages inside a checkout is not that checkout's code), or a repository without a commit."""
    top, error = _git(root, "rev-parse", "--show-toplevel")
    if top is None:
        return None, None, _why_no_checkout(root, error)
    if Path(top).resolve() != Path(root).resolve():
        return None, None, f"no git checkout (an installed copy, inside the checkout {top})"
    commit, error = _git(root, "rev-parse", "--short", "HEAD")
    if commit is None:
        return None, None, f"a git repository without a commit ({error})"
    changes, _ = _git(root, "status", "--porcelain", "--untracked-files=no", "--", ".", f":(exclude){RESULTS_FOLDER}")
    return commit, None if changes is None else bool(changes), None


def _why_no_checkout(root: Path, error: str) -> str:
    """What ``git rev-parse --show-toplevel``'s ``error`` in ``root`` means, for a person."""
    if "dubious ownership" in error:
        return (f"git refuses the checkout {root}: dubious ownership (another user owns it; "
                f"`git config --global --add safe.directory {root}` trusts it)")
    if "not a git repository" in error:
        return "no git checkout (an installed copy)"
    return error


def _git(root: Path, *args: str) -> tuple[str | None, str]:
    """(git's stdout, stripped, or None when git is missing or fails; why it failed, one line) for
    ``args`` run in ``root``, without the environment's repository variables."""
    env = {key: value for key, value in os.environ.items() if key not in GIT_REPOSITORY_VARIABLES}
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, env={**env, "GIT_OPTIONAL_LOCKS": "0"})
    except subprocess.TimeoutExpired:
        return None, f"git did not answer within {GIT_TIMEOUT_S} s"
    except FileNotFoundError:
        return None, "git is not installed (no git program on PATH)"
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"git could not run ({exc})"
    if done.returncode == 0:
        return done.stdout.strip(), ""
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    return None, (lines[0] if lines else f"git exited with {done.returncode}").removeprefix("fatal: ")


def usable_cpus() -> int | None:
    """The cores this process may run on (its affinity), None where the platform does not say."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The first ``model name`` of ``cpuinfo`` (Linux), None where it is missing or unreadable."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "model name":
            return " ".join(value.split()) or None
    return None


def describe_code_and_machine(record: dict) -> str:
    """One line of a report's heading from ``record``: "code: commit fb6a229 (tracked files changed);
    CPU: 16 cores (4 usable), Intel(R) Xeon(R) Processor" (the usable cores only where fewer)."""
    if record["commit"] is None:
        note = record.get("commit_note") or "no git checkout (an installed copy)"
        code = note if note.startswith("no git checkout") else f"no commit ({note})"
    else:
        code = f"commit {record['commit']}" + (" (tracked files changed)" if record["dirty"] else "")
    usable = "" if record["cpus_usable"] in (None, record["cpus"]) else f" ({record['cpus_usable']} usable)"
    return f"code: {code}; CPU: {record['cpus']} cores{usable}, {record['cpu_model'] or 'model unknown'}"

