"""A serial background thread for file work: saving and autosaving annotations, loading them,
exporting a project, saving a model.

Jobs run one at a time in the order submitted (so two writes of one file never race), off the UI
thread; each job's result or error comes back through a queued signal and its callback runs on
the UI thread. A long job says how far it is the same way: submitted with ``progress``, it gets a
``report`` to call on the job thread, and ``progress`` runs on the UI thread. ``wait_idle()`` blocks until the queue is empty (closing the window, tests).

Once stopped (the window closed) a runner takes no more jobs: one submitted after its thread ended
would wait for good, unseen. Such a job fails instead, loudly: its ``failed`` gets ``STOPPED`` (UI
thread, as any failure) and the process's stderr says which job was not run.
"""
from __future__ import annotations

import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from PySide6 import QtCore

from qgn_studio.document import describe_error

STOPPED = "not run: the window's file thread has stopped (the window closed)"


@dataclass
class Job:
    run: Callable[[], object]
    done: Callable[[object], None] | None = None
    failed: Callable[[str], None] | None = None
    label: str = ""
    progress: Callable[..., None] | None = None


class JobRunner(QtCore.QThread):
    """See the module docstring."""

    _finished_job = QtCore.Signal(object, object, str)  # (job, result, error message or "")
    _job_progress = QtCore.Signal(object, object)  # (job, the arguments of its report)
    busy_changed = QtCore.Signal(bool, str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._cond = threading.Condition()
        self._queue: deque[Job] = deque()
        self._running = False
        self._stopping = False
        self._ended = False  # run() returned: nothing queued now would ever run
        self._current: Job | None = None  # the job under way
        # run on the job thread after each job, before its callback is posted (its errors ignored): the
        # project controller builds the project's path index there when a job's write changed the images
        self.after_each: Callable[[], None] | None = None
        self._finished_job.connect(self._deliver, QtCore.Qt.ConnectionType.QueuedConnection)
        self._job_progress.connect(self._deliver_progress, QtCore.Qt.ConnectionType.QueuedConnection)

    def submit(self, run: Callable[[], object], done: Callable[[object], None] | None = None,
               failed: Callable[[str], None] | None = None, label: str = "",
               progress: Callable[..., None] | None = None) -> None:
        """Run ``run()`` on the job thread; then ``done(result)`` or ``failed(message)`` on the UI thread.

        With ``progress``, ``run(report)`` runs instead: each ``report(*args)`` (thread-safe) calls
        ``progress(*args)`` on the UI thread, in order, before the job's ``done`` or ``failed``."""
        if not self.isRunning() and not self._stopping:
            self.start()
        job = Job(run, done, failed, label, progress)
        with self._cond:  # (the thread decides to end under it: a job is either queued before, or refused)
            refused = self._stopping and (self._ended or not self.isRunning())
            if not refused:
                self._queue.append(job)
                self._cond.notify_all()
        if refused:
            sys.stderr.write(f"qgn-studio: warning: {label or getattr(run, '__qualname__', 'a job')}: {STOPPED}\n")
            self._finished_job.emit(job, None, STOPPED)  # its failed callback, from the event loop

    @property
    def stopped(self) -> bool:
        """``stop`` was called: jobs submitted from now on may be refused (``STOPPED``)."""
        with self._cond:
            return self._stopping

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + (1 if self._running else 0)

    def labels(self) -> list[str]:
        """The labels of the job under way and of those queued, in order (what a close still waits for)."""
        with self._cond:
            return [job.label for job in ([self._current] if self._current is not None else []) + list(self._queue)]

    def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """Block until every submitted job ran; their callbacks are then posted to the UI thread
        (``QCoreApplication.processEvents()`` runs them). False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._running, timeout_s)

    def stop(self, wait: bool = True) -> None:
        """Finish the queued jobs, then end the thread (``wait``: wait for that; a runner of
        computations whose results nobody will read need not)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if wait and self.isRunning():
            self.wait()

    def run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    self._ended = True
                    return
                job = self._queue.popleft()
                self._running, self._current = True, job
            self.busy_changed.emit(True, job.label)
            try:
                result, error = self._run(job), ""
            except Exception as exc:  # reported through the job's callback
                result, error = None, describe_error(exc)
            if self.after_each is not None:
                try:
                    self.after_each()
                except Exception:  # noqa: S110 - a warm-up only: the UI thread does it when it fails
                    pass
            self._finished_job.emit(job, result, error)  # posted before the job counts as done:
            with self._cond:  # after wait_idle(), processing events delivers every callback
                self._running, self._current = False, None
                idle = not self._queue
                self._cond.notify_all()
            if idle:
                self.busy_changed.emit(False, "")

    def _run(self, job: Job):
        if job.progress is None:
            return job.run()
        return job.run(lambda *args: self._job_progress.emit(job, args))

    def _deliver_progress(self, job: Job, args: tuple) -> None:
        job.progress(*args)

    def _deliver(self, job: Job, result, error: str) -> None:
        if error:
            if job.failed is not None:
                job.failed(error)
        elif job.done is not None:
            job.done(result)
