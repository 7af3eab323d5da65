"""Work-arounds for bugs in the libraries under the app.

PySide6 6.12.0 returns ``None`` from void methods and ``True`` from ``SignalInstance.emit()``
without taking a reference, so every such call made from Python lowers that object's reference
count by one (6.11.3 is fine). On Python ≤ 3.11, where None/True/False are not immortal, the
process dies with "Fatal Python error: none_dealloc" (or "bool_dealloc") after as many calls as
the object had references: a minute of panning a pyqtgraph view.

``guard_singleton_refcounts()`` measures the leak and, only when it is there, gives None, True
and False a reference count so large that no session can exhaust it (as Python 3.12 does for
every program). Installing a PySide6 without the bug makes it a no-op.
"""
from __future__ import annotations

import ctypes
import sys

_GUARD = 1 << 40
_applied = False


def leaking_singletons() -> list:
    """The singletons whose references PySide6 drops (empty with a correct PySide6)."""
    from PySide6 import QtCore

    class Probe(QtCore.QObject):
        ping = QtCore.Signal()

    probe = Probe()
    leaks = []
    for value, call in ((None, lambda: probe.setObjectName("probe")), (True, probe.ping.emit)):
        before = sys.getrefcount(value)
        for _ in range(8):
            call()
        if sys.getrefcount(value) < before - 4:
            leaks.append(value)
    return leaks


def guard_singleton_refcounts() -> bool:
    """Apply the guard if this PySide6 leaks (see the module docstring); True when applied."""
    global _applied
    if _applied or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return _applied
    if leaking_singletons():
        for value in (None, True, False):
            ctypes.c_ssize_t.from_address(id(value)).value += _GUARD
        _applied = True
    return _applied
