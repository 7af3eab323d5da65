"""Third-party tools the live interoperability tests drive (Label Studio, FiftyOne), each in a virtual
environment of its own outside the project's: their pins (numpy, pillow, Django, MongoDB drivers)
must not move ours. Installed once where the user's real home keeps caches, and reused; two test
runs at once (two checkouts, or xdist workers) take turns on a lock beside the venv, so neither
removes the other's half-installed one.

Under CI (``CI`` set) a tool that cannot be installed or started fails the test; elsewhere it skips.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest


def unavailable(tool: str, reason: str):
    """Skip (fail under CI) because ``tool`` cannot run here."""
    if os.environ.get("CI"):
        pytest.fail(f"{tool} live test cannot run under CI: {reason}")
    pytest.skip(reason)


def tool_venv(real_environ: dict, tool: str, requirements: list[str], env_var: str, folder: str) -> Path:
    """The venv holding ``requirements`` (pip specifiers): ``$env_var``, default
    ``~/.cache/qgn/<folder>``; installed on first use (a venv without its ``.qgn-installed`` mark
    was left half-installed and is made again). The check and the install hold ``<venv>.lock``."""
    home = Path(real_environ.get("HOME") or Path.home())
    venv = Path(os.environ.get(env_var, home / ".cache" / "qgn" / folder))
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.with_name(venv.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
        _install(tool, venv, requirements)
    return venv


def _install(tool: str, venv: Path, requirements: list[str]) -> None:
    """Make ``venv`` hold ``requirements`` unless its mark says it already does (under the lock)."""
    done = venv / ".qgn-installed"  # written last
    wanted = "\n".join(requirements) + "\n"
    if not done.is_file() or done.read_text() != wanted:
        shutil.rmtree(venv, ignore_errors=True)
        start = time.monotonic()
        python = Path(sys.base_prefix) / "bin" / "python3"
        try:
            subprocess.run([str(python if python.is_file() else sys.executable), "-m", "venv", str(venv)],
                           check=True, capture_output=True, timeout=300)
            subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *requirements],
                           check=True, capture_output=True, timeout=1200)
        except (subprocess.SubprocessError, OSError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            unavailable(tool, f"could not install {' '.join(requirements)} into {venv}: {exc} "
                              f"{detail.decode(errors='replace')[-1000:]}")
        done.write_text(wanted)
        print(f"installed {' '.join(requirements)} into {venv} in {time.monotonic() - start:.0f} s", file=sys.stderr)
