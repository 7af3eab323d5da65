"""A long task's progress in the status bar: its text and time left, n/N as a bar, and a Cancel button."""
from __future__ import annotations

import re

from PySide6 import QtCore, QtWidgets

from qgn.progress import TimeLeft


class TaskProgress(QtWidgets.QWidget):
    """A long task's n/N in the status bar, with a Cancel button (hidden when idle).

    Several tasks can run at once (an export whose dialog was closed, a Ctrl+S round, uncertainty
    scoring, a project being opened): each says its ``owner`` (any hashable; None is one more), and
    the slot shows the latest started of those still running and how many others run, and the
    Cancel of the latest started that has one - its own ("Cancel"), or another's, named ("Cancel
    exporting"); while the task shown winds down after its cancel, its line says so and names the
    task the Cancel stops ("Cancelling the prediction… · Exporting 5/900"), or "Cancelling scoring
    uncertainty…" with a disabled Cancel when none is left to stop. A press of this Cancel is
    followed by a double-click interval in which presses are ignored (a double click's second press
    stopped the next task); a cancel made elsewhere (Esc, the fine-tune panel, a dialog) never
    disables it (an export whose dialog was closed could not be stopped while a prediction
    cancelled by Esc wound down). A save round (no Cancel) started during an export whose dialog was closed left the
    export nothing to stop it with. A task's end hides its own line only: the end of a save round
    hid a running export's bar and Cancel until its next step (and the reverse); the next task
    shows again."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.label = QtWidgets.QLabel()
        self.bar = QtWidgets.QProgressBar()
        self.bar.setMaximumWidth(160)
        self.bar.setMaximumHeight(14)
        self.bar.setTextVisible(False)
        self.cancel_button = QtWidgets.QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip("Stop it")
        self.cancel_button.clicked.connect(self._cancel)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        self._tasks: dict = {}  # owner → its _Task, the latest started last
        self._on_cancel = None
        self._stoppable: _Task | None = None
        # after a press of the Cancel, presses are ignored for a double-click interval (then the next
        # task's Cancel is offered): a double click's second press stopped the task behind the first
        self._press_guard = QtCore.QTimer(self)
        self._press_guard.setSingleShot(True)
        self._press_guard.timeout.connect(self._show)
        self.hide()

    def show_progress(self, text: str, done: int, total: int, on_cancel=None, name: str | None = None,
                      detail: str = "", esc: bool = False, owner=None) -> None:
        """``owner``'s task at ``done`` of ``total``: ``text``, then its time left (a task starts at
        ``done`` 0, after its hide, or with another ``total``). ``name``: what the task does, for
        its Cancel when another's line shows ("Exporting"; else read off ``text``, which for a job
        may be its latest item's: "new_1: 1 file(s)"); ``detail``: what tells it from another of
        that name ("into /data/out"), in the tooltip; ``esc``: the window's Esc stops it too."""
        task = self._tasks.get(owner)
        if task is None or done == 0 or total != task.total:
            self._tasks.pop(owner, None)  # (started again: the latest started)
            task = self._tasks[owner] = _Task()
        # (its time left is read at each of its steps, shown or not)
        task.text, task.done, task.total, task.on_cancel = text, done, total, on_cancel
        task.name, task.detail, task.esc = name, detail, esc
        task.left = task.time_left.suffix(done, total)  # (under a second "under a second left": it said "about 0 s left")
        self._show()

    def cancelling(self, owner=None, name: str | None = None) -> None:
        """``owner``'s task was cancelled and winds down (its current step ends first): its line
        says "Cancelling <what it does>…" until its ``hide_progress``, and its Cancel stays, disabled
        (it hid: the last step's line stayed as if it ran on, with nothing saying the Cancel was
        heard). A task not shown yet (a prediction, a fine-tune: shown elsewhere) starts here,
        called ``name`` ("the prediction")."""
        task = self._tasks.get(owner)
        if task is None:
            task = self._tasks[owner] = _Task()
            task.name = name
        elif name is not None:
            task.name = name
        task.cancelled = True
        self._show()

    def hide_progress(self, owner=None) -> None:
        """``owner``'s task ended: the slot shows the next one still running, or hides."""
        self._tasks.pop(owner, None)
        self._show()

    def tasks(self) -> int:
        return len(self._tasks)

    def _show(self) -> None:
        if not self._tasks:
            self._on_cancel = self._stoppable = None
            self._press_guard.stop()  # (nothing left that a double click's second press could stop)
            self.hide()
            return
        # the latest started, winding down or not: a task just cancelled says "Cancelling <it>…" until it
        # stopped (its line jumped to another task's, whose plain Cancel then took a double click's second
        # press); a cancelled project open still queued behind a job never shows here (it hides at once)
        shown = self._tasks[next(reversed(self._tasks))]
        # the latest started that can still be stopped (one already cancelled, winding down, is not offered)
        stoppable = next((task for task in reversed(self._tasks.values())
                          if task.on_cancel is not None and not task.cancelled), None)
        guarded = self._press_guard.isActive()  # (a press of the Cancel just now: presses ignored)
        # a task named on the line besides the one winding down: the one the Cancel stops
        named = stoppable if shown.cancelled and stoppable is not None and stoppable is not shown else None
        others = len(self._tasks) - 1 - (named is not None)
        more = f" (and {others} more task{'s' if others > 1 else ''})" if others else ""
        if shown.cancelled:
            also = "" if named is None else f" · {named.text}{named.left}"
            self.label.setText(f"Cancelling {shown.what()}…{also}{more}")
        else:
            self.label.setText(shown.text + shown.left + more)
        self._show_bar(shown)
        self._stoppable = stoppable
        self._on_cancel = None if stoppable is None or guarded else stoppable.on_cancel
        if stoppable is not None and not guarded:
            esc = " (Esc)" if stoppable.esc else ""  # (only for what the window's Esc stops)
            if stoppable is shown:  # its own
                self.cancel_button.setText("Cancel")
                self.cancel_button.setToolTip(f"Stop {stoppable.what() if stoppable.name else 'it'}{esc}")
            elif stoppable is named:  # its step on the line, after the one winding down
                self.cancel_button.setText(f"Cancel {stoppable.called()}")
                self.cancel_button.setToolTip(f"Stop {stoppable.what()}{esc}")
            else:
                self.cancel_button.setText(f"Cancel {stoppable.called()}")
                self.cancel_button.setToolTip(f"Stop {stoppable.what()}{esc}, still running behind this line "
                                              f"(its latest step: {stoppable.text})")
        winding = shown if shown.cancelled else next(
            (task for task in reversed(self._tasks.values()) if task.cancelled), None)
        if self._on_cancel is None and (winding is not None or stoppable is not None):
            # heard: it stops at its next step; the next task's Cancel after a double-click interval
            self.cancel_button.setText("Cancel")
            tip = "; ".join(([f"Cancelling {winding.what()}: it stops after its current step"] if winding else [])
                            + ([f"{stoppable.what()} can be stopped here in a moment"] if stoppable else []))
            self.cancel_button.setToolTip(tip[:1].upper() + tip[1:])
        self.cancel_button.setEnabled(self._on_cancel is not None)
        self.cancel_button.setVisible(stoppable is not None or winding is not None)
        self.show()

    def _show_bar(self, shown: _Task) -> None:
        """``shown``'s count as the bar: frozen while it winds down; without a count (a project's
        project.json being read), a busy bar while it works and none while it winds down (an empty
        bar read as stuck at 0 %, a busy one after the cancel as working on)."""
        self.bar.setVisible(bool(shown.total) or not shown.cancelled)
        self.bar.setRange(0, shown.total)  # (0: busy)
        self.bar.setValue(shown.done)

    def _cancel(self) -> None:
        if self._on_cancel is not None and not self._press_guard.isActive():
            self._press_guard.start(QtWidgets.QApplication.doubleClickInterval())
            self._stoppable.cancelled = True
            self._on_cancel()
            self._show()  # (the next task that can be stopped is offered after the guard)


class _Task:
    """A running task's latest step (TaskProgress)."""

    def __init__(self):
        self.text, self.done, self.total, self.on_cancel = "", 0, 0, None
        self.name: str | None = None
        self.detail, self.esc, self.cancelled = "", False, False
        self.time_left, self.left = TimeLeft(), ""

    def called(self) -> str:
        """Its name, for a button: "exporting"."""
        name = task_name(self.text) if self.name is None else self.name
        return name[:1].lower() + name[1:]

    def what(self) -> str:
        """Its name and what tells it apart: "exporting into /data/out"."""
        return f"{self.called()} {self.detail}".strip()


def task_name(text: str) -> str:
    """What a task's progress line says it does, for a button: "Exporting 2/9" → "exporting",
    "Scoring uncertainty 3/10: a.png" → "scoring uncertainty" (its count and item left out)."""
    head = re.split(r"\s+\d[\d,]*\s*(?:/|of)\s*\d|:", text, maxsplit=1)[0].strip() or text
    return head[:1].lower() + head[1:]
