"""An exception no code caught (a bug in a slot or a thread) is logged and said in the window in one
line, and still printed on stderr: the app's safety net (qgn_studio.uncaught, installed by app.main)."""
from __future__ import annotations

import sys
import threading

import pytest
from PySide6 import QtWidgets

from studio_steps import WAIT_MS


@pytest.mark.qt_no_exception_capture  # the exception is the point: the app's own hook must see it
def test_an_uncaught_exception_in_a_slot_is_logged_and_shown(qtbot, window, user_state, capfd):
    from qgn_studio.app import watch_uncaught

    previous = sys.excepthook
    reporter = watch_uncaught(window)
    try:
        def broken() -> None:
            raise RuntimeError("a bug <here>")

        button = QtWidgets.QPushButton(window)
        button.clicked.connect(broken)
        button.click()
        qtbot.waitUntil(lambda: "uncaught" in window.canvas.banner.messages, timeout=WAIT_MS)
    finally:
        reporter.uninstall()
    assert sys.excepthook is previous
    text, kind = window.canvas.banner.messages["uncaught"]
    logs = list((user_state / "logs").glob("qgn-studio-*.log"))
    assert kind == "error" and "RuntimeError: a bug &lt;here&gt;" in text and len(logs) == 1 and str(logs[0]) in text
    assert "Traceback" in logs[0].read_text() and "broken" in logs[0].read_text()
    assert "RuntimeError: a bug <here>" in capfd.readouterr().err  # still on stderr: nothing hidden


def test_an_uncaught_exception_in_a_thread_reaches_the_window(qtbot, window, monkeypatch):
    from qgn_studio.app import watch_uncaught

    seen = []  # the hook found at install (pytest's, here; Python's printing one in the app) still runs
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(args.exc_value))
    previous = threading.excepthook
    reporter = watch_uncaught(window)
    try:
        def broken() -> None:
            raise ValueError("in a thread")

        thread = threading.Thread(target=broken)
        thread.start()
        thread.join()
        qtbot.waitUntil(lambda: "uncaught" in window.canvas.banner.messages, timeout=WAIT_MS)  # queued to the UI
    finally:
        reporter.uninstall()
    assert threading.excepthook is previous
    assert "ValueError: in a thread" in window.canvas.banner.messages["uncaught"][0]
    assert "ValueError: in a thread" in window.statusBar().currentMessage()
    assert [str(e) for e in seen] == ["in a thread"]
