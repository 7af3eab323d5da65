"""File systems the tests cannot mount, simulated: one without locks (``no_locks_under``)."""
from __future__ import annotations

import errno
import os
from pathlib import Path


def no_locks_under(monkeypatch, folder: Path) -> None:
    """``fcntl.flock`` fails with ENOLCK (NFSv3 without its lock manager) on files under ``folder``
    only; the project's "no locks here" line is said again (said once per process: this test's)."""
    import fcntl

    import qgn.project

    real = fcntl.flock

    def flock(fd, op):
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(folder)):
            raise OSError(errno.ENOLCK, "No locks available")
        return real(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock)
    monkeypatch.setattr(qgn.project, "_UNLOCKED_SAID", set())
