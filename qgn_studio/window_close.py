"""Closing the window: its questions, the waits for what writes, and SIGTERM's close without questions.

A close (``closeEvent``) asks first (``_close_asked``: a fine-tuned model not kept, unsaved annotations),
makes the class changes of ours that wait (``_finish_class_work``, in slices with the window's input off:
``_closing_wait``, ``_wait_jobs``), saves the settings and stops the threads (``_stop_threads``: the ones
that write finish and are waited for, a failed save's edits autosaved once more, ``_autosave_failed_saves``;
a write still under way hides the window and says so on stderr, ``_leave_if_writing``). SIGTERM
(``terminate``, from ``qgn_studio.termination``) autosaves everything and closes without questions
(``_close_terminated``); the edits no autosave could take are said on stderr (``_say_unkept_edits``).

A mixin of ``qgn_studio.main_window.MainWindow`` (its ``__init__`` makes the state). Reads and writes
``threads_stopped``, ``_terminating``, ``_in_close_event``, ``_finishing_class_work``; reads ``ends_process``,
``projects``, ``annotator``, ``finetuner``, ``finetune_dock``, ``head``, ``carry``, ``uncertainty_order``,
``worker``, ``thumbnails``, ``canvas``, ``jobs``, ``batch_jobs``. Calls back into the window's ``_save``
(the settings).
"""
from __future__ import annotations

import contextlib
import sys
import time

from PySide6 import QtCore, QtGui, QtWidgets

CLOSING_CLASS_WORK = "Making the class changes that wait before closing…"


class WindowCloseMixin:
    """``MainWindow``'s close (see the module docstring)."""

    # how long a close waits for the file thread in slices, the window repainting (twice: the class changes
    # of ours, then the writes they and the close queued); a write still under way then: ``_leave_if_writing``
    CLOSE_WAIT_S = 60.0

    def terminate(self) -> None:
        """SIGTERM (``qgn_studio.termination``): autosave every unsaved edit, a stroke in progress
        too, wait for the writers, then close without questions. The autosaves stay: the next start
        offers them (a project with unsaved edits is reopened); so is a fine-tuned model not kept
        (``Finetuner.set_aside``: a running fine-tune is stopped, its steps done set aside)."""
        if self.threads_stopped:
            return  # closed already
        self._terminating = True
        modal = QtWidgets.QApplication.activeModalWidget()
        if modal is not None:  # a question is open: answered as Esc (which loses nothing), then on
            QtWidgets.QApplication.sendEvent(modal, QtGui.QKeyEvent(
                QtCore.QEvent.Type.KeyPress, QtCore.Qt.Key.Key_Escape, QtCore.Qt.KeyboardModifier.NoModifier))
            if modal.isVisible() and isinstance(modal, QtWidgets.QDialog):
                modal.reject()
            QtCore.QTimer.singleShot(0, self.terminate)
            return
        if self._in_close_event:
            return  # the close under way (its question just answered) goes on as this one
        self.annotator.tools.finish_stroke()
        self.projects.cancel_opening(quiet=True)
        self.projects.autosave_now()
        self.finetuner.set_aside(self.projects.scratch_path)  # a fine-tuned model not kept: offered at the next start
        with self._closing_wait():  # (the job thread may be rewriting the project for a class change of ours)
            self._wait_jobs()
        QtCore.QCoreApplication.processEvents()  # the autosaves' callbacks
        self.close()

    @property
    def ending(self) -> bool:
        """The window closed, or closes without questions (SIGTERM): nothing is opened into it any more."""
        return self._terminating or self.threads_stopped

    def closeEvent(self, event) -> None:
        if self._finishing_class_work:
            event.ignore()  # a close asked again while ours makes the class changes that wait: it goes on
            return
        self._in_close_event = True
        try:
            self._close(event)
        finally:
            self._in_close_event = False

    def _close(self, event) -> None:
        may_close = self._terminating or self._close_asked()
        if self._terminating:  # SIGTERM, also one that came while a question of this close was open
            self._close_terminated()
        elif not may_close:
            event.ignore()
            return
        else:
            # the class changes under way, and those that wait for them (told "Yours waits and follows it"),
            # are made while the job thread runs, not replayed after it stopped
            self._finish_class_work()
            self.annotator.set_mode(False)  # the viewing layers are what the settings remember
            self._save()
            self.projects.closed()
            self._stop_threads()
            self.threads_stopped = True
        super().closeEvent(event)

    def _close_asked(self) -> bool:
        """The questions of a close: True when the window may close."""
        self.projects.cancel_opening(quiet=True)  # a project being read is not opened after all
        # the fine-tuned model first: Keep writes it at once, Discard drops it only once the window
        # really closes, so "cancel" to the unsaved annotations that follow loses nothing
        if not self.finetuner.close_check():
            self.finetune_dock.show()
            self.finetune_dock.raise_()  # Keep / Revert and why a keep failed, in view
            return False
        return self.projects.close_check()

    def _finish_class_work(self) -> None:
        """The close makes the class changes of ours under way and those that wait before the threads
        stop (``ProjectController.finish_class_work``), then waits for the file thread (the wait
        ``close_check`` leaves to it then) - see ``_closing_wait``."""
        if not self.projects.class_work_left():
            self.projects.finish_class_work()  # (nothing to wait for)
            return
        with self._closing_wait():
            self.projects.finish_class_work(self.CLOSE_WAIT_S)
            self._wait_jobs()

    @contextlib.contextmanager
    def _closing_wait(self):
        """A close (or SIGTERM's) that waits for class changes of ours: said in the status bar, the
        window's input off meanwhile (a click or key waits, a second close is ignored: none starts
        another change in the window that closes). Its waits are in short slices, the UI thread's events
        (paints, timers) processed between them - a big project's rewrite does not freeze the window."""
        if self._finishing_class_work or not self.projects.class_work_left():
            yield
            return
        self.statusBar().showMessage(CLOSING_CLASS_WORK, 0)
        self._finishing_class_work = True
        widgets = [w for w in (self.centralWidget(), self.menuBar(), *self.findChildren(QtWidgets.QDockWidget),
                               *self.findChildren(QtWidgets.QToolBar)) if w is not None and w.isEnabled()]
        for widget in widgets:  # (not the status bar: what the close waits for is read there)
            widget.setEnabled(False)
        try:
            yield
        finally:
            for widget in widgets:
                widget.setEnabled(True)
            self._finishing_class_work = False
            if self.statusBar().currentMessage() == CLOSING_CLASS_WORK:
                self.statusBar().clearMessage()

    def _wait_jobs(self, timeout_s: float | None = None) -> None:
        """``jobs.wait_idle`` in 50 ms slices, the UI thread's events but the user's input processed
        between them."""
        end = time.monotonic() + (self.CLOSE_WAIT_S if timeout_s is None else timeout_s)
        while not self.jobs.wait_idle(0.05) and time.monotonic() < end:
            QtCore.QCoreApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)

    def _close_terminated(self) -> None:
        """``closeEvent`` after ``terminate``: what a normal close does, less its questions."""
        self._finish_class_work()
        self.projects.autosave_now()  # (anything edited since terminate's)
        # in slices, the window repainting, as the normal close's waits: a class change's rewrite still under
        # way then is waited for once the window is hidden (``_stop_threads``), never with it frozen on screen
        self._wait_jobs()
        QtCore.QCoreApplication.processEvents()
        self.annotator.set_mode(False)
        self._save()
        if not self.projects.unsaved():  # else the project is reopened at the next start, its autosaves offered
            self.projects.closed()
        self._stop_threads()
        self.threads_stopped = True
        # judged only now: an autosave still queued behind a long job (a rewrite, an export) ran in
        # ``_stop_threads`` - its callback, delivered here, says whether it wrote the edits
        QtCore.QCoreApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
        self._say_unkept_edits()

    def _say_unkept_edits(self) -> None:
        """SIGTERM's close: the edits its autosave could not write (a full disk, the scratch folder's too)
        end with the window - said on stderr, one line naming the images and why (the banner that said
        it goes with the window, and the next start has no autosave of them to offer). Once the job thread
        is drained: only edits whose autosave failed or had nowhere to go, never one still being written.
        Those are written to a new folder of the system's temporary folder first (``keep_in_temp``), which
        the line names; only those that could not be are said lost."""
        from qgn_studio.project_autosave import keep_in_temp

        unkept = self.projects.unkept_edits()
        if not unkept:
            return

        def listed(docs) -> str:
            return ", ".join(d.name for d in docs[:5]) + (f" and {len(docs) - 5} more" if len(docs) > 5 else "")

        docs = [d for d, _ in unkept]
        why = "; ".join(dict.fromkeys(w for _, w in unkept if w)) or "the autosave did not run"
        folder, kept, failure = keep_in_temp(docs)
        written = {id(d) for d, _ in kept}
        lost = [d for d in docs if id(d) not in written]
        said = []
        if kept:  # each .qgt with its image's path: two images of one name differ only in their folders
            files = ", ".join(f"{name}: {d.path}" for d, name in kept)
            said.append(f"written instead to {folder} ({files}) - the temporary folder, which the system may "
                        "clear: copy them elsewhere; to take one back, open its image and use Annotate ▸ Import "
                        "mask… on its .qgt")
        if lost:
            said.append(f"{'' if not kept else listed(lost) + ' '}lost with it"
                        + (f" (nor could the temporary folder take them: {failure})" if failure else ""))
        print(f"qgn-studio: the window was ended (SIGTERM) with unsaved edits that could not be autosaved: "
              f"{listed(docs)} ({why}) - {'; '.join(said)}", file=sys.stderr, flush=True)

    def _leave_if_writing(self) -> None:
        """The close waited for the file thread in slices (``_finish_class_work``: at most
        ``CLOSE_WAIT_S`` twice, the window repainting): a write still under way then - a class change's
        rewrite of a big project, its lock held long by another writer - is not stopped (stopped, it would
        be rolled back: the change not made), and the UI thread then blocks until it is written
        (``jobs.stop``). The window froze meanwhile, for as long as the write took; it is hidden now, the
        process ends once the write is in or refused, and stderr says what it waits for (ending it before
        leaves the project as before that class change: its journal is rolled back at the next write) and,
        in one line, a refusal (``ProjectController.window_hidden``)."""
        if self.jobs.pending():
            self._wait_jobs(self.CLOSE_WAIT_S)  # (the writes of the close itself: a save, an autosave)
        left = self.jobs.labels()
        if not left:
            return
        self.hide()
        self.projects.window_hidden()  # a class change's rewrite refused from now on: said on stderr, one line
        QtCore.QCoreApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
        named, unnamed = list(dict.fromkeys(label for label in left if label)), sum(not label for label in left)
        if unnamed:  # a step submitted without a label (a discard, an autosave round's end): counted, not shown as ""
            named.append(f"{unnamed} {'other ' if named else ''}step{'s' if unnamed != 1 else ''}")
        print(f"qgn-studio: the window closed with a write still under way ({'; '.join(named)}): "
              "the program ends once it is written or refused (a refusal is said here)", file=sys.stderr)

    def _stop_threads(self) -> None:
        """The window closes: the threads that write (saves, autosaves, exports, the project's
        head) finish what they were given and are waited for. The ones that only compute (a
        prediction, measurements, pictures, scores, a fine-tune: a step of a 24 MP image takes
        seconds) are told to stop and waited for only when the process goes on after the window
        (``ends_process`` False): ``app.main`` ends the process without waiting for them."""
        wait = not self.ends_process
        self.finetuner.shutdown(wait)
        self.uncertainty_order.shutdown(wait)
        self.annotator.image_tools.shutdown(wait)
        self.carry.shutdown(wait)
        self.kept.shutdown(wait)
        self.worker.stop(wait)
        self.thumbnails.stop(wait)
        self.canvas.stop(wait)
        self.head.shutdown()  # writes the project's head.safetensors: stops at its next step
        self._leave_if_writing()
        # a job's callback may still submit to the batch thread (an export waits for the saves
        # queued before it): deliver them before it stops, so the export runs and is waited for
        self.jobs.wait_idle()
        QtCore.QCoreApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
        self.batch_jobs.stop()
        self._autosave_failed_saves()
        self.jobs.stop()
        self.projects.stop_writing()  # a callback delivered above may have started a retry

    def _autosave_failed_saves(self) -> None:
        """Before the job thread stops: a save that ran only now (Ctrl+S queued behind a long job) and
        failed (the project's disk full) took its edits back for the autosave (its ``failed``), which the
        close's autosaves had passed over (the save had marked them autosaved): they are autosaved once more
        - into the project, else its stand-in in the scratch folder - and waited for, so the next start
        offers them. Before, the window closed with them in no autosave: the next start offered nothing."""
        for again in (False, True):
            while not self.jobs.wait_idle():  # (as jobs.stop: the writes given finish, however long they take)
                pass
            QtCore.QCoreApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
            if again or not self.projects.unkept_edits():
                return
            self.projects.autosave_now()
