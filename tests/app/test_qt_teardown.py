"""A Qt test's objects are gone before the next test starts (``_qt_objects_end_with_their_test`` in
``tests/conftest.py``): the widgets pytest-qt closed and ``deleteLater``-ed at its teardown, and the
Qt objects its reference cycles kept. Before, both went inside the next test's first wait, beside
that test's threads (a segfault once seen in CI at the first ``start_annotating`` of
``test_app_scale.py``'s last test, the collector running in the event loop).

The two tests run in file order: the first leaves its objects behind, the second looks for them.
"""
from __future__ import annotations

import gc
import weakref

import pytest
import shiboken6
from PySide6 import QtCore, QtWidgets

LEFT: dict = {}


def test_a_test_leaves_a_closed_widget_and_a_cycle_holding_a_qt_object(qtbot) -> None:
    widget = QtWidgets.QWidget()
    qtbot.addWidget(widget)  # closed and deleteLater-ed by pytest-qt at teardown
    widget.show()
    held = QtCore.QObject()  # no parent: its wrapper owns it, kept only by the cycle below
    held.cycle = [held]
    gc.collect()  # the cycle is old by now: only a full collection would reclaim it
    LEFT.update(widget=widget, held=weakref.ref(held))


def test_the_next_test_starts_without_them(qtbot) -> None:
    if not LEFT:
        pytest.skip("looks for what the test above left: run the two together, in file order")
    assert not shiboken6.isValid(LEFT["widget"])  # destroyed, not waiting for this test's first wait
    assert LEFT["held"]() is None  # collected, not waiting for the collector to run in this test
