"""The live tests' tool venvs: two runs at once take turns, neither removes the other's install."""
from __future__ import annotations

import subprocess
import threading
import time

import tool_venvs


def test_two_runs_at_once_install_the_venv_once(tmp_path, monkeypatch):
    venv = tmp_path / "tool-venv"
    monkeypatch.setenv("QGN_TEST_TOOL_VENV", str(venv))
    installs, second_started = [], threading.Event()

    def fake_run(command, **kwargs):
        if "venv" in command:
            installs.append(command)
            venv.mkdir()
            second_started.wait(5)
            time.sleep(0.3)  # the other run would remove the venv now if nothing stopped it
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(tool_venvs.subprocess, "run", fake_run)
    results = []

    def install():
        results.append(tool_venvs.tool_venv({"HOME": str(tmp_path)}, "Tool", ["tool==1"], "QGN_TEST_TOOL_VENV", "x"))

    first = threading.Thread(target=install)
    first.start()
    while not installs:
        time.sleep(0.01)
    second = threading.Thread(target=install)
    second.start()
    second_started.set()
    first.join(10)
    second.join(10)
    assert results == [venv, venv]
    assert len(installs) == 1  # the second found the first's finished install
    assert (venv / ".qgn-installed").read_text() == "tool==1\n"
