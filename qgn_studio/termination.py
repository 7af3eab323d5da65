"""SIGTERM (a logout, ``kill``): the window closes as a normal close without questions, after the
edits since the last autosave — a stroke in progress included — are autosaved and written.

Python runs a signal handler only when the interpreter gets control, which Qt's event loop does not
give it while idle; ``signal.set_wakeup_fd`` writes a byte to a socket on the signal, and a
``QSocketNotifier`` on the other end wakes the loop, so the handler's request is acted on at once.
What was autosaved and not saved stays an autosave: the next start offers it (``MainWindow.terminate``).
"""
from __future__ import annotations

import signal
import socket

from PySide6 import QtCore


class TerminationHandler(QtCore.QObject):
    """Installs the SIGTERM handler for ``window`` (``window.terminate()`` runs on the UI thread);
    ``uninstall`` puts the previous handler and wakeup fd back."""

    def __init__(self, window, parent=None):
        super().__init__(parent)
        self.window = window
        self._requested = False
        self._reader, self._writer = socket.socketpair()
        for end in (self._reader, self._writer):
            end.setblocking(False)
        self._notifier = QtCore.QSocketNotifier(self._reader.fileno(), QtCore.QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._woken)
        self._old_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        self._old_handler = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame) -> None:
        self._requested = True  # acted on in _woken (the wakeup byte is already written)

    def _woken(self, *_args) -> None:
        try:
            while self._reader.recv(64):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        if self._requested:
            self._requested = False
            self.window.terminate()

    def uninstall(self) -> None:
        signal.signal(signal.SIGTERM, self._old_handler)
        signal.set_wakeup_fd(self._old_fd)
        self._notifier.setEnabled(False)
        self._reader.close()
        self._writer.close()
