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
    monkeypatch.setenv("QGN_LOG_DIR", str(user / "logs"))  # tracebacks of unexpected CLI failures
    yield user


def tree_snapshot(root) -> dict:
    """{relative path: (kind, size, mtime_ns, sha256)} of everything under ``root`` (links not
    followed): two equal snapshots mean nothing was written, replaced or deleted there."""
    import hashlib
    import os
    from pathlib import Path

    root = Path(root)
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            stat = path.lstat()
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir",)
            else:
                out[rel] = ("file", stat.st_size, stat.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
    return out


@pytest.fixture
def snapshot():
    """``snapshot(root)``: see ``tree_snapshot``."""
    return tree_snapshot
