"""A dialog whose job may outlive it (an export, an import, the statistics' counting): whether it
still shows its widgets, its Cancel button, and where the job's end goes once it is closed.

Its job's steps show in its ``progress`` bar and ``log`` line with the time left (``_step``); a
``JobLog`` line grows the dialog to show itself whole (a wait for another export's lock, naming a
long folder and its holder, ran to six lines and squashed the rest of the dialog at 1280×720).
Closing such a dialog (Close, Esc, the title bar's button) never stops its job: the job's progress
and answer, which come later, then reach none of its widgets (it deletes itself when closed): its
steps show in the window's status bar (its parent's ``workspace``), with the time left and Cancel,
and its outcome goes where the dialog was told (``_ended``).
"""
from __future__ import annotations

import threading

import shiboken6
from PySide6 import QtCore, QtGui, QtWidgets

from qgn.progress import TimeLeft


def grow_to_fit(window: QtWidgets.QWidget) -> None:
    """Make the shown ``window`` as tall as its layout needs at its width (wrapped lines counted;
    a top-level layout's minimum leaves them out, so a label that took more lines squashed the
    widgets above it), at most its screen's height, moved up where it would leave the screen."""
    layout = window.layout()
    if layout is None or not window.isVisible():
        return
    layout.activate()
    need = (layout.totalHeightForWidth(window.width()) if layout.hasHeightForWidth()
            else layout.totalSizeHint().height())
    screen = window.screen().availableGeometry()
    frame = window.frameGeometry().height() - window.height()  # the title bar and borders
    height = min(need, screen.height() - frame)
    if height <= window.height():
        return
    window.resize(window.width(), height)
    top = window.frameGeometry().top()
    if top + frame + height > screen.bottom() + 1:
        window.move(window.frameGeometry().left(), max(screen.top(), screen.bottom() + 1 - frame - height))


class JobLog(QtWidgets.QScrollArea):
    """A dialog's message under its progress bar (an export's, an import's, a relink's, the
    statistics' summary): it wraps, can be selected (a folder's path copied), and each new text
    grows its dialog to show it whole (``grow_to_fit``). At most ``MAX_LINES`` lines tall: a longer
    message (eighty lines, or one word wider than the dialog: a folder name with no break) scrolls
    inside it, its whole text also its tooltip, so the dialog and its buttons stay on the screen (a
    plain label made the dialog as tall as its text: 1667 px on a 720 px screen).

    Reads like the label it holds (``label``): ``text``, ``setText``, ``setTextFormat``,
    ``textInteractionFlags``."""

    MAX_LINES = 8

    def __init__(self, text: str = "", parent=None):
        super().__init__(parent)
        self.label = QtWidgets.QLabel("")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setAlignment(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop)
        self.setWidget(self.label)
        self.setWidgetResizable(True)
        self.label.setAutoFillBackground(False)  # (setWidget turns it on) the dialog's colour shows
        self.viewport().setAutoFillBackground(False)
        self.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        # focus by a click only, as the label it replaced: as a Tab stop (with no focus mark) it took a
        # dialog's first focus from its table (the statistics) and sat before the buttons (the export)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.ClickFocus)
        self.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        policy = QtWidgets.QSizePolicy(QtWidgets.QSizePolicy.Policy.Preferred, QtWidgets.QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        if text:
            self.setText(text)

    # the label's
    def text(self) -> str:
        return self.label.text()

    def setTextFormat(self, fmt) -> None:  # noqa: N802 (Qt's name)
        self.label.setTextFormat(fmt)

    def textInteractionFlags(self):  # noqa: N802 (Qt's name)
        return self.label.textInteractionFlags()

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        self.label.setText(text)
        self.updateGeometry()
        window = self.window()
        if window is not self:
            grow_to_fit(window)
        self._update_tooltip()

    # its size: the label's, at most MAX_LINES lines
    def _cap(self) -> int:
        """``MAX_LINES`` lines (ten, or a third of the screen, squashed the export dialog's formats
        at 1280×720: the dialog's other rows cannot shrink, the message can scroll)."""
        return self.MAX_LINES * self.label.fontMetrics().lineSpacing()

    def _content_height(self, width: int) -> int:
        """The height the label needs at ``width`` (a horizontal scroll bar's under a word wider
        than ``width``), at most ``_cap()``."""
        need = self.label.heightForWidth(width)
        if need < 0:
            need = self.label.sizeHint().height()
        if self.label.minimumSizeHint().width() > width:
            need += self.horizontalScrollBar().sizeHint().height()
        return min(need, self._cap())

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (Qt's name)
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 (Qt's name)
        return self._content_height(width)

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt's name)
        hint = self.label.sizeHint()
        width = min(hint.width(), 480)
        return QtCore.QSize(width, self._content_height(width))

    def minimumSizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt's name)
        return QtCore.QSize(60, min(self.label.fontMetrics().lineSpacing(), self._content_height(60)))

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._update_tooltip()

    def cut(self) -> bool:
        """Whether the text is more than it shows (it scrolls)."""
        return self.verticalScrollBar().maximum() > 0 or self.horizontalScrollBar().maximum() > 0 or (
            self.isVisible() and self.height() < self.label.heightForWidth(self.viewport().width()))

    def _update_tooltip(self) -> None:
        self.setToolTip(QtGui.QTextDocumentFragment.fromHtml(self.text()).toPlainText() if self.cut() else "")


class JobDialog(QtWidgets.QDialog):
    """See the module docstring. A subclass that starts jobs (``_start_job``) has a ``progress``
    bar, a ``log`` label and an ``_update_buttons()``; ``running``: a job of its own is under way."""

    #: What the log says once Cancel is pressed.
    CANCELLING = "Cancelling…"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.closed = False
        self.running = False
        self._cancel = threading.Event()
        self._time_left = TimeLeft()  # of the job under way (the dialog's own, from its opening)
        # where a closed dialog's job goes on showing its steps: the window's status bar (its
        # ``workspace``'s task progress, with the time left and Cancel), hidden at the job's end
        self._elsewhere = getattr(parent, "workspace", None)
        self._shown_elsewhere = False
        self._owner = object()  # its line there (another task's end leaves it, its own end hides it)
        self._job_name, self._job_detail = None, ""  # its name there ("Exporting", "into /data/out")

    def showEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        """Shown as tall as its wrapped lines need (its first size left them out: the export
        dialog's two-line intro squashed its formats 14 px)."""
        super().showEvent(event)
        grow_to_fit(self)

    def done(self, result: int) -> None:
        """Closed: pending jobs' answers no longer reach the widgets."""
        self.closed = True
        super().done(result)

    def _open(self) -> bool:
        """Still showing its widgets (not closed, not deleted)."""
        return not self.closed and shiboken6.isValid(self)

    def _add_cancel(self, buttons: QtWidgets.QDialogButtonBox, tooltip: str) -> QtWidgets.QPushButton:
        """The Cancel button (``self.cancel_button``) in ``buttons``: it stops the running job."""
        self.cancel_button = buttons.addButton("Cancel", QtWidgets.QDialogButtonBox.ButtonRole.ActionRole)
        self.cancel_button.setToolTip(tooltip)
        self.cancel_button.clicked.connect(self._cancel_job)
        return self.cancel_button

    def _cancelling(self) -> bool:
        return self._cancel.is_set()

    def _start_job(self) -> threading.Event:
        """A job starts: ``running``, its clock, a busy bar, and the Event that Cancel sets (its
        ``is_set`` is the job's ``should_stop``)."""
        self.running = True
        self._cancel = threading.Event()
        self._time_left = TimeLeft()
        self.progress.setRange(0, 0)
        self._update_buttons()
        return self._cancel

    def _submit(self, jobs, run, done, failed, label: str, detail: str = "") -> None:
        """``jobs.submit`` the job ``label`` ("Exporting"), its steps to ``_step``: its status-bar
        line, once the dialog is closed, is named by ``label`` and ``detail`` (what tells it from
        another of that name: "into /data/out"), not by its latest step ("new_1: 1 file(s)")."""
        self._job_name, self._job_detail = label, detail
        jobs.submit(run, done, failed, label, self._step)

    def _step(self, i: int, n: int, text: str) -> None:
        """A step of the job (its ``progress``, on the UI thread): the bar at ``i`` of ``n``, and
        ``text`` with the time left. Nothing once the dialog is closed (the job goes on)."""
        if not self._open():
            if self._elsewhere is not None and i < n:  # closed: the status bar says it (it closed silent)
                self._elsewhere.show_progress(text, i, n, self._cancel.set, owner=self._owner,
                                              name=self._job_name, detail=self._job_detail)
                if self._cancel.is_set():  # (cancelled in the dialog before it closed: winding down)
                    self._elsewhere.cancelling(self._owner)
                self._shown_elsewhere = True
            return
        self.progress.setRange(0, n)
        self.progress.setValue(i)
        self.log.setText(text + self._time_left.suffix(i, n))

    def _cancel_job(self) -> None:
        self._cancel.set()
        self.log.setText(self.CANCELLING)
        self._update_buttons()

    def _ended(self, shown, elsewhere=None):
        """A job's ``done`` or ``failed``: ``shown(outcome)`` while the dialog is open, else
        ``elsewhere(outcome)`` (None: the outcome is dropped)."""
        def end(outcome) -> None:
            if self._shown_elsewhere:
                self._shown_elsewhere = False
                self._elsewhere.hide_progress(self._owner)
            if self._open():
                shown(outcome)
            elif elsewhere is not None:
                elsewhere(outcome)
        return end

    def _update_buttons(self) -> None:
        """Subclasses enable their buttons from ``running`` and ``_cancelling()``."""
