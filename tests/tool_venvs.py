"""Third-party tools the live interoperability tests drive (Label Studio, FiftyOne), each in a virtual
environment of its own outside the project's: their pins (numpy, pillow, Django, MongoDB drivers)
must not move ours. Installed once where the user's real home keeps caches, and reused.

Under CI (``CI`` set) a tool that cannot be installed or started fails the test; elsewhere it skips.
"""
from __future__ import annotations

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
    was left half-installed and is made again)."""
    home = Path(real_environ.get("HOME") or Path.home())
    venv = Path(os.environ.get(env_var, home / ".cache" / "qgn" / folder))
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
    return venv
