"""Exceptions nobody caught (a bug in a slot, an input no check foresaw): logged, and said in the window.

Qt runs a Python slot (a menu action, a drop, a timer, a queued signal) from its event loop, where an
exception has no caller to reach: PySide6 hands it to ``sys.excepthook``, whose default prints it to
a terminal the user of a desktop app seldom has. ``UncaughtReporter.install()`` chains a hook to it
(and to ``threading.excepthook``) that still prints the traceback as before, writes it to a log file
in ``qgn.cli.main.log_folder()`` (``$QGN_LOG_DIR``, else ``~/.cache/qgn/logs``) and emits
``caught(line)`` — one line naming the error and the log — on the UI thread, for the window to show.
``qgn_studio.app.main`` installs it for the app's lifetime; nothing is hidden or swallowed.
"""
from __future__ import annotations

import datetime
import os
import sys
import threading

from PySide6 import QtCore

LOG_PREFIX = "qgn-studio"


def write_log(kind, exc, tb) -> str:
    """Write the traceback of ``exc`` to a new log file; the one line telling the user about it."""
    from qgn.cli.main import LOG_DIR_ENV, failure_summary, write_traceback

    now = datetime.datetime.now()
    try:
        path = write_traceback(f"{LOG_PREFIX}-{now.strftime('%Y%m%d-%H%M%S-%f')}-{os.getpid()}.log",
                               f"QGN Studio, {now.isoformat()}\n\n", kind, exc, tb)
        where = f"the traceback is in {path}"
    except OSError as log_error:
        where = f"no log could be written ({log_error.strerror}); set {LOG_DIR_ENV}=<folder> to keep one"
    what = failure_summary(kind, exc)
    return f"Unexpected error {what}; {where} (please report it with what you were doing)"


class UncaughtReporter(QtCore.QObject):
    """See the module docstring. ``caught`` is delivered on the thread this object lives in."""

    caught = QtCore.Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._previous = None
        self._previous_thread_hook = None

    def install(self) -> None:
        if self._previous is not None:
            return
        self._previous, sys.excepthook = sys.excepthook, self._hook
        self._previous_thread_hook, threading.excepthook = threading.excepthook, self._thread_hook

    def uninstall(self) -> None:
        """Put back the hooks found at ``install()`` (unless something replaced ours since)."""
        if self._previous is None:
            return
        if sys.excepthook == self._hook:
            sys.excepthook = self._previous
        if threading.excepthook == self._thread_hook:
            threading.excepthook = self._previous_thread_hook
        self._previous = self._previous_thread_hook = None

    def _hook(self, kind, exc, tb) -> None:
        previous = self._previous or sys.__excepthook__
        previous(kind, exc, tb)  # the terminal still gets the traceback
        self._report(kind, exc, tb)

    def _thread_hook(self, args) -> None:
        (self._previous_thread_hook or threading.__excepthook__)(args)
        if args.exc_type is not SystemExit:
            self._report(args.exc_type, args.exc_value, args.exc_traceback)

    def _report(self, kind, exc, tb) -> None:
        if kind is None or issubclass(kind, (KeyboardInterrupt, SystemExit)):
            return
        try:
            self.caught.emit(write_log(kind, exc, tb))  # queued to the UI thread from another thread
        except Exception:  # the reporter never raises in turn (e.g. while the app shuts down)
            pass
