"""Fixtures shared by the whole suite.

Every test runs with the app's settings file and its per-user scratch/autosave folder inside a
fresh temporary folder (autouse), so a crashed autosave or a setting in the real user folders
can never reach a test (a recover dialog would otherwise block it), and no test writes there.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolate_user_state(tmp_path_factory, monkeypatch):
    """Point the app's settings and scratch folders at a per-test temporary folder."""
    user = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("QGN_STUDIO_SETTINGS", str(user / "settings.ini"))
    monkeypatch.setenv("QGN_STUDIO_SCRATCH", str(user / "scratch"))
    yield user
