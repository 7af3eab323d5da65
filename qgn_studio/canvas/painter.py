"""A background thread that makes the overlays' pictures of big images.

Colouring a 12-megapixel label map, stacking six level maps or tinting the grid's pixel level takes
30-180 ms of numpy; on the UI thread several of them in one move stalled the window for up to
350 ms. A layer whose picture is that big hands the painter a *job* (a function of the inputs it
captured: arrays that are not written again, so the thread may read them) and a *show* callback;
the job runs here, and ``show(picture)`` runs on the UI thread when it is done.

Only the latest job of each layer matters: a newer one replaces one that has not started, and the
picture of a job that was replaced while it ran is dropped. The pictures of jobs that ran back to
back (one move's layers) are shown together, in one turn of the event loop: the canvas then paints
once, not once per picture (a paint of 12-megapixel overlays costs 30-50 ms). ``pending()`` says whether a picture is
still on its way (the screenshot waits for none); ``wait_idle()`` blocks until none is (tests).
An error in a job is raised on the UI thread, as it would have been without the thread.
"""
from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6 import QtCore


class PicturePainter(QtCore.QThread):
    """See the module docstring."""

    _made = QtCore.Signal(object)  # [(owner, token, show, picture or error)]
    shown = QtCore.Signal()  # pictures were put on their layers' items (UI thread)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._cond = threading.Condition()
        self._queue: dict[object, tuple[object, Callable[[], object], Callable[[object], None]]] = {}
        self._latest: dict[object, object] = {}  # owner -> token of its newest job, until it is shown
        self._busy = False  # a job is running, or pictures are made and not yet posted
        self._stopping = False
        self._made.connect(self._deliver, QtCore.Qt.ConnectionType.QueuedConnection)

    def submit(self, owner, job: Callable[[], object], show: Callable[[object], None]) -> None:
        """Run ``job()`` here, then ``show(its result)`` on the UI thread, unless ``owner`` submits
        again (or is `forget`-ed) first."""
        if self._stopping:
            return
        if not self.isRunning():
            self.start()
        token = object()
        with self._cond:
            self._queue.pop(owner, None)  # re-inserted last: the owners' jobs run in submission order
            self._queue[owner] = (token, job, show)
            self._latest[owner] = token
            self._cond.notify_all()

    def forget(self, owner) -> None:
        """Drop ``owner``'s job, queued or running: its picture will not be shown."""
        with self._cond:
            self._queue.pop(owner, None)
            self._latest.pop(owner, None)
            self._cond.notify_all()

    def pending(self) -> bool:
        """Whether some picture has not been shown yet."""
        with self._cond:
            return bool(self._latest)

    def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """Block until no job is queued or running (their pictures are then posted to the UI
        thread: ``processEvents()`` shows them). False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout_s)

    def stop(self, wait: bool = True) -> None:
        with self._cond:
            self._stopping = True
            self._queue.clear()
            self._latest.clear()
            self._cond.notify_all()
        if wait:
            self.wait()

    def run(self) -> None:
        made = []  # pictures of the jobs run since the queue was last empty
        while True:
            with self._cond:
                while not self._stopping and not self._queue and not made:
                    self._cond.wait()
                if self._stopping:
                    return
                if not self._queue:  # the queue ran dry: post what was made, in one go
                    self._made.emit(made)
                    made = []
                    self._busy = False
                    self._cond.notify_all()
                    continue
                owner = next(iter(self._queue))
                token, job, show = self._queue.pop(owner)
                self._busy = True
            try:
                picture = job()
            except Exception as error:  # noqa: BLE001 - raised again on the UI thread
                picture = error
            with self._cond:
                if self._latest.get(owner) is token:
                    made.append((owner, token, show, picture))
                self._busy = bool(made or self._queue)
                self._cond.notify_all()

    def _deliver(self, made: list) -> None:
        current = []
        with self._cond:
            for owner, token, show, picture in made:
                if self._latest.get(owner) is token:  # not replaced or forgotten on its way
                    del self._latest[owner]
                    current.append((show, picture))
        errors = [picture for _, picture in current if isinstance(picture, Exception)]
        for show, picture in current:
            if not isinstance(picture, Exception):
                show(picture)
        if current:
            self.shown.emit()
        if errors:
            raise errors[0]
