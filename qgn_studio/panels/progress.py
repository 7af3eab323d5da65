"""A long task's progress in the status bar: its text, n/N as a bar, and a Cancel button."""
from __future__ import annotations

from PySide6 import QtWidgets


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
        self.hide()

    def show_progress(self, text: str, done: int, total: int, on_cancel=None) -> None:
        self.label.setText(text)
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(done)
        self._on_cancel = on_cancel
        self.cancel_button.setVisible(on_cancel is not None)
        self.show()

    def hide_progress(self) -> None:
        self._on_cancel = None
        self.hide()

    def _cancel(self) -> None:
        if self._on_cancel is not None:
            self._on_cancel()
