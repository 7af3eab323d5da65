"""A long task's progress in the status bar: its text and time left, n/N as a bar, and a Cancel button."""
from __future__ import annotations

from PySide6 import QtWidgets

from qgn.progress import TimeLeft


class TaskProgress(QtWidgets.QWidget):
    """A long task's n/N in the status bar, with a Cancel button (hidden when idle)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.label = QtWidgets.QLabel()
        self.bar = QtWidgets.QProgressBar()
        self.bar.setMaximumWidth(160)
        self.bar.setMaximumHeight(14)
        self.bar.setTextVisible(False)
        self.cancel_button = QtWidgets.QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip("Stop it (Esc)")
        self.cancel_button.clicked.connect(self._cancel)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        self._on_cancel = None
        self._time_left: TimeLeft | None = None
        self._total = 0
        self.hide()

    def show_progress(self, text: str, done: int, total: int, on_cancel=None) -> None:
        """``text``, then the time left of the task (a task starts at ``done`` 0, after a hide, or
        with another ``total``)."""
        if self._time_left is None or done == 0 or total != self._total:
            self._time_left, self._total = TimeLeft(), total
        self.label.setText(text + self._time_left.suffix(done, total))
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(done)
        self._on_cancel = on_cancel
        self.cancel_button.setVisible(on_cancel is not None)
        self.show()

    def hide_progress(self) -> None:
        self._on_cancel = None
        self._time_left = None
        self.hide()

    def _cancel(self) -> None:
        if self._on_cancel is not None:
            self._on_cancel()
