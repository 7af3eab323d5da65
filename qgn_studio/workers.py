"""Work off the UI thread: model loading, inference, accuracy-vs-compute measurements, thumbnails.

``InferenceWorker`` (a QThread) owns the ``Engine`` (model + per-image caches) and runs a model job
(load, switch device) first, then the latest prediction request: an older request not yet started
is dropped, and a running one stops between two levels when a newer one arrives or on
``cancel()``.

``MeasureWorker`` (a second QThread, owned by the InferenceWorker) fills the accuracy-vs-compute
plot and the All reference in the background, with its own sessions over the same (read-only)
model, so a long background level never delays a prediction. It pauses while a prediction runs
and stops between levels when its task list is replaced; its sessions keep what was computed.

Results come back as queued signals, so slots run on the UI thread, which never calls the network.
"""
from __future__ import annotations

import contextlib
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from PySide6 import QtCore, QtGui

from qgn.imagefile import ImageReadStopped
from qgn.progress import TimedText
from qgn_studio.canvas.paths import (
    cell_outlines_path, cells_region_path, leaf_grid_paths, leaf_masks, mask_boundary_path,
)
from qgn_studio.document import ImageDocument, RenderResult, SchemeChoice, describe_error
from qgn_studio.engine import Cancelled, Engine, configure_threads


@dataclass
class _Predict:
    doc: ImageDocument
    setting: SchemeChoice | None  # None: only read the image (its prediction dropped by a cancel)
    generation: int
    cancelled: bool = False  # (cancelled while it ran: it winds down to its next step)
    run: int = 0  # its run's id, once started (InferenceWorker._run)


@dataclass
class _Measure:
    """A background measurement: "curve" (accuracy + MACs) or "reference" (All MACs only)."""

    kind: str
    doc: ImageDocument
    setting: SchemeChoice | None
    generation: int


def attach_paths(result: RenderResult) -> None:
    """Build the vector outlines the canvas draws (once per LevelView; they are shared)."""
    for view in result.levels.values():
        if "composite" not in view.extras:
            view.extras["sites"] = cell_outlines_path(view.codes >= 0, view.cell)
            view.extras["composite_edge"] = mask_boundary_path(view.codes == 0, view.cell)
            view.extras["composite"] = cells_region_path(view.codes == 0, view.cell)
    h, w = result.grid_size
    result.extras["grid"] = leaf_grid_paths(*result.leaves, w, h)
    result.extras["grid_masks"] = leaf_masks(*result.leaves, w, h)


class MeasureWorker(QtCore.QThread):
    """Background measurements (see the module docstring)."""

    curve_point = QtCore.Signal(object)  # CurvePoint
    reference_ready = QtCore.Signal(object, int, object)  # (path, depth, decoder MACs)
    measuring_changed = QtCore.Signal(bool, str)
    failed = QtCore.Signal(object, str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.engine = Engine(max_sessions=2)
        self._cond = threading.Condition()
        self._tasks: deque[_Measure] = deque()
        self._generation = 0
        self._stopping = False
        self._paused = False  # a prediction is running
        self._running = threading.Lock()  # held while a task runs

    def submit(self, doc: ImageDocument, tasks: list[tuple[str, SchemeChoice]]) -> None:
        with self._cond:
            self._generation += 1
            self._tasks = deque(_Measure(kind, doc, s, self._generation) for kind, s in tasks)
            self._cond.notify_all()

    def set_paused(self, paused: bool) -> None:
        with self._cond:
            self._paused = paused
            self._cond.notify_all()

    @contextlib.contextmanager
    def held(self):
        """Stop the running task (between levels) and keep the thread idle inside the block."""
        with self._cond:
            self._generation += 1
            self._tasks.clear()
        with self._running:
            yield

    def adopt(self, engine: Engine) -> None:
        """Measure with ``engine``'s model from now on (call inside ``held()``)."""
        self.engine.adopt(engine)

    def stop(self, wait: bool = True) -> None:
        """End the thread at its next step (``wait``: and wait for it)."""
        with self._cond:
            self._stopping = True
            self._generation += 1
            self._cond.notify_all()
        if wait:
            self.wait()

    def run(self) -> None:
        configure_threads()
        while True:
            with self._cond:
                while not self._stopping and (self._paused or not self._tasks):
                    self._cond.wait()
                if self._stopping:
                    return
                job = self._tasks.popleft()
            with self._running:
                self._execute(job)

    def _execute(self, job: _Measure) -> None:
        doc = job.doc
        if self.engine.model is None or doc.image is None:
            return

        def stop() -> bool:
            return self._stopping or self._paused or self._generation != job.generation

        self.measuring_changed.emit(True, f"measuring {job.setting.describe()}")
        try:
            if job.kind == "curve":
                point = self.engine.curve_point(doc, job.setting, stop)
                self.curve_point.emit(point)
                if job.setting.scheme == "all":
                    self.reference_ready.emit(doc.path, job.setting.depth, point.decoder_macs)
            else:
                macs = self.engine.reference_macs(doc, job.setting.depth, stop)
                self.reference_ready.emit(doc.path, job.setting.depth, macs)
        except Cancelled:
            with self._cond:  # resume it later unless the task list was replaced
                if self._generation == job.generation and not self._stopping:
                    self._tasks.appendleft(job)
        except Exception as exc:  # a failed measurement only loses its point
            self.failed.emit(None, f"measuring {job.setting.describe()}: {describe_error(exc)}")
        finally:
            with self._cond:
                more = bool(self._tasks)
            if not more:
                self.measuring_changed.emit(False, "")


class InferenceWorker(QtCore.QThread):
    model_loaded = QtCore.Signal(object)  # ModelInfo
    model_failed = QtCore.Signal(str)
    document_loaded = QtCore.Signal(object)  # ImageDocument (image read, or error set)
    result_ready = QtCore.Signal(object)  # RenderResult
    failed = QtCore.Signal(object, str)  # (ImageDocument or None, message)
    cancelled = QtCore.Signal(int)  # a running prediction that was cancelled has stopped (its run id)
    # each job the thread runs (a prediction, a model load) is a run, its id counting up: a note and a
    # cancel name their run, so a note sent just before a cancel and heard after it can be told apart
    busy_changed = QtCore.Signal(bool, str, int)  # (busy, its note, run id)
    busy_counting = QtCore.Signal(str, float, object, int)  # (the busy note without its time left, seconds left,
    # those of the steps after the one under way - None: none follow it -, run id)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.engine = Engine()
        self.measurer = MeasureWorker(self)
        self._cond = threading.Condition()
        self._model_job: tuple | None = None
        self._predict: _Predict | None = None
        self._running: _Predict | None = None  # the prediction under way, until it has stopped or delivered
        self._model_running: str | None = None  # the note of the model job under way (Esc cannot stop it)
        self._dropped: list[int] = []  # queued predictions a cancel dropped (nothing running): said in turn
        self._run = 0  # the last id given to a run (or to a dropped prediction)
        self._generation = 0
        self._stopping = False

    # ------------------------------------------------------------------ requests (UI thread)
    def start(self) -> None:  # also starts the measurement thread
        super().start()
        self.measurer.start()

    def load_model(self, path: Path | None, device: str | None = None) -> None:
        self._submit_model(("load", path, device))

    def set_device(self, device: str) -> None:
        self._submit_model(("device", device))

    def set_resolution(self, resolution: str) -> None:
        """Run photos at "working" size, "native" (full) resolution or "auto" from now on."""
        self._submit_model(("resolution", resolution))

    def use_model(self, model, path: Path) -> None:
        """Predict with ``model`` (in memory, saved at ``path``) from now on: a fine-tuned model."""
        self._submit_model(("use", model, path))

    def _submit_model(self, job: tuple) -> None:
        with self._cond:
            self._model_job = job
            self._generation += 1
            self._cond.notify()

    def predict(self, doc: ImageDocument, setting: SchemeChoice) -> None:
        """Compute ``setting`` for ``doc`` (loading it first if needed); replaces older requests."""
        with self._cond:
            self._generation += 1
            self._predict = _Predict(doc, setting, self._generation)
            self._cond.notify()

    def measure(self, doc: ImageDocument, tasks: list[tuple[str, SchemeChoice]]) -> None:
        """Replace the background measurements with ``tasks`` ((kind, setting) pairs) for ``doc``."""
        self.measurer.submit(doc, tasks)

    def cancel(self) -> tuple[int, bool] | None:
        """Stop the running prediction (between two levels) and drop the queued one: (run id, True)
        for a running one: it winds down to the end of its current step, and ``cancelled(run)`` comes
        when it has stopped (it came at once, while the level ran on for seconds), no result of it
        after. None running, a queued one dropped (behind a model load or a device switch, or asked
        for as the last run ended): (an id of its own, False), and ``cancelled(id)`` comes in turn,
        after what the thread does first (the switch's end, the last run's result): it was dropped
        without a word, and the controls kept naming a setting never computed. Neither: None, and no
        ``cancelled`` (a result already sent is shown; it came at once, and the window put its
        controls back under that result). A queued image not read yet is still read (and shown):
        only its prediction is dropped (a failed device switch or model load after it left the
        chosen image unread for good, the canvas on the other one)."""
        with self._cond:
            self._generation += 1
            queued, self._predict = self._predict, None
            if queued is not None and not queued.doc.loaded:
                self._predict = _Predict(queued.doc, None, self._generation)
                if queued.setting is None:  # (a read an earlier cancel kept: no prediction to drop)
                    queued = None
            running = self._running
            if running is not None and not self._reads_only(running):  # (a read alone: nothing of it to stop)
                running.cancelled = True
                return running.run, True
            if queued is None:
                return None
            self._run += 1  # (its id, as a run's: the runs after it count on from it)
            self._dropped.append(self._run)
            self._cond.notify()
            return self._run, False

    def goes_on(self) -> str | None:
        """What the thread does that a cancel does not stop, as its note says it ("Loading the
        model", "Reading photo.jpg"), or None: a model job, or the read of an image whose
        prediction a cancel dropped (Esc said nothing during a load, and "Cancelling the
        prediction…" during such a read)."""
        with self._cond:
            if self._model_running is not None:
                return self._model_running
            running = self._running
            return f"Reading {running.doc.name}" if running is not None and self._reads_only(running) else None

    def reading_first(self) -> str | None:
        """The name of the image the running prediction is still reading, or None: a cancel ends
        that prediction only once the image is read (the image chosen is shown; its decode, one step
        of seconds at 24 MP, is not stopped by Esc)."""
        with self._cond:
            running = self._running
            if running is None or self._reads_only(running) or running.doc.loaded:
                return None
            return running.doc.name

    def _reads_only(self, job: _Predict) -> bool:
        """``job`` reads its image and computes nothing: a read a cancel kept, or no model (under
        ``_cond``; the model cannot change while a job runs)."""
        return job.setting is None or self.engine.model is None

    def stop(self, wait: bool = True) -> None:
        """End the prediction thread and the measurements at their next step (``wait``: and wait
        for both; a prediction's current step of a big image can take seconds)."""
        with self._cond:
            self._stopping = True
            self._generation += 1
            self._cond.notify()
        self.measurer.stop(wait=False)
        if wait:
            self.wait()
            self.measurer.wait()

    @property
    def has_model(self) -> bool:
        return self.engine.model is not None

    # ------------------------------------------------------------------ loop (worker thread)
    def run(self) -> None:
        configure_threads()
        while True:
            with self._cond:
                while not (self._stopping or self._model_job or self._predict or self._dropped):
                    self._cond.wait()
                if self._stopping:
                    return
                dropped, self._dropped = self._dropped, []
                if not dropped:
                    self._run += 1
                    run = self._run
                    if self._model_job is not None:
                        job, self._model_job = self._model_job, None
                    else:
                        job, self._predict = self._predict, None
                        job.run = run
                        self._running = job  # (from here on a cancel stops it, even before it starts)
            if dropped:  # (after the signals of the job before: a result sent, a switch's end)
                for run in dropped:
                    self.cancelled.emit(run)
                self._idle(dropped[-1])
            elif isinstance(job, tuple):
                self._run_model_job(job, run)
            else:
                self.measurer.set_paused(True)
                try:
                    self._run_predict(job)
                finally:
                    self.measurer.set_paused(False)

    def _run_model_job(self, job: tuple, run: int) -> None:
        texts = {"load": "Loading the model", "use": "Switching to the new model",
                 "resolution": "Switching the resolution"}
        text = texts.get(job[0], f"Moving the model to {job[-1]}")
        with self._cond:
            self._model_running = text
        self.busy_changed.emit(True, text, run)
        try:
            with self.measurer.held():
                if job[0] == "load":
                    info = self.engine.load_model(*job[1:])
                elif job[0] == "use":
                    info = self.engine.use_model(*job[1:])
                elif job[0] == "resolution":
                    info = self.engine.set_resolution(job[1])
                else:
                    info = self.engine.set_device(job[1])
                self.measurer.adopt(self.engine)
        except Exception as exc:  # shown to the user
            self.model_failed.emit(describe_error(exc))
        else:
            self.model_loaded.emit(info)
        finally:
            with self._cond:
                self._model_running = None
            self._idle(run)

    def _run_predict(self, job: _Predict) -> None:
        doc = job.doc
        if doc.loaded and job.setting is not None:  # (a read says its own note)
            self.busy_changed.emit(True, "Computing", job.run)
        try:
            if not doc.loaded:
                self._read(doc, job.run)  # (ImageReadStopped: another image was asked for, or the end)
                self.document_loaded.emit(doc)
            if doc.error is not None or self.engine.model is None or job.setting is None:
                return

            def stop() -> bool:
                return self._stopping or self._generation != job.generation

            def progress(text: str) -> None:
                if job.cancelled:  # (its note says it is cancelling)
                    return
                self.busy_changed.emit(True, text[:1].upper() + text[1:], job.run)  # (capitalize() made Q̂ q̂)
                if getattr(text, "left", None) is not None:  # a TimedText: the note counts it down
                    self.busy_counting.emit(text.head[:1].upper() + text.head[1:], float(text.left),
                                           text.after, job.run)

            result = self.engine.predict(doc, job.setting, stop, progress)
            if job.cancelled:  # (its last step ended after the cancel: the previous result stays, as said)
                raise Cancelled
            attach_paths(result)
            with self._cond:  # sent, or cancelled: a cancel during the outlines above stops it too
                if job.cancelled:
                    raise Cancelled
                self._running = None  # (from here on a cancel finds nothing to stop: the result is shown)
            self.result_ready.emit(result)
        except (Cancelled, ImageReadStopped):
            pass
        except Exception as exc:  # shown in the window
            self.failed.emit(doc, f"{doc.name}: {describe_error(exc)}")
        finally:
            with self._cond:
                if self._running is job:
                    self._running = None
            if job.cancelled:
                self.cancelled.emit(job.run)
            self._idle(job.run)

    def _read(self, doc: ImageDocument, run: int | None = None) -> None:
        """Read ``doc``'s image, its note naming its size from the file's header ("Reading
        photo.jpg (24 MP)") and, once a file of its kind was read, its time left, measured per pixel
        (a 24 MP photo: about 0.5-0.9 s here, several under load, under a bare "Reading photo.jpg")."""
        from qgn.imagefile import open_image

        from qgn_studio.engine import BIG_PIXELS, megapixels

        run = self._run if run is None else run  # (the prediction's run: its notes name it)

        try:
            with open_image(doc.path) as image:
                pixels = float(image.width * image.height)
        except Exception:  # (reading it says what is wrong)
            pixels = 0.0
        costs, kind = self.engine.image_costs, ("read", doc.path.suffix.lower())
        head = f"Reading {doc.name}" + (f" ({megapixels(pixels)})" if pixels >= BIG_PIXELS else "")
        left = costs.seconds([(kind, pixels)]) if pixels >= BIG_PIXELS else None  # (a smaller one: milliseconds)
        self.busy_changed.emit(True, head if left is None else str(TimedText(head, left)), run)
        if left is not None:
            self.busy_counting.emit(head, left, None, run)  # (no step after the read)
        started = self.engine.clock()
        doc.load(lambda: self._stopping or self._another_image_asked(doc))
        if pixels and doc.error is None:
            costs.record(kind, pixels, self.engine.clock() - started)

    def _another_image_asked(self, doc: ImageDocument) -> bool:
        """A request for another image than ``doc`` waits: the read of ``doc`` (a 24 MP photo: seconds,
        one decode) is of no use now and stops (Esc alone keeps it: the image chosen is shown)."""
        waiting = self._predict  # (one read of an attribute: no lock needed to look)
        return waiting is not None and waiting.doc is not doc

    def _idle(self, run: int) -> None:
        with self._cond:
            waiting = self._model_job is not None or self._predict is not None or bool(self._dropped)
        if not waiting:
            self.busy_changed.emit(False, "", run)


class ThumbnailLoader(QtCore.QThread):
    """Reads small previews of image files off the UI thread, and hands them over in batches (at
    most one every ``BATCH_S``): thousands of previews, one signal each, kept the UI thread
    answering queued calls back to back, each waiting for the interpreter lock."""

    thumbnails_ready = QtCore.Signal(list)  # [(path, QImage)]
    BATCH_S = 0.05

    def __init__(self, size: int = 64, parent=None):
        super().__init__(parent)
        self.size = size
        self._cond = threading.Condition()
        self._queue: deque[Path] = deque()
        self._stopping = False

    def request(self, paths: list[Path], replace: bool = False) -> None:
        """Read ``paths`` after those asked for before (``replace``: instead of them — the list
        they were for was replaced)."""
        with self._cond:
            if replace:
                self._queue.clear()
            self._queue.extend(paths)
            self._cond.notify()

    def request_first(self, path: Path) -> None:
        """Read ``path`` before the others (a row the user looks at)."""
        with self._cond:
            self._queue.appendleft(path)
            self._cond.notify()

    def stop(self, wait: bool = True) -> None:
        with self._cond:
            self._stopping = True
            self._queue.clear()
            self._cond.notify()
        if wait:
            self.wait()

    def run(self) -> None:
        import time

        batch, since = [], time.monotonic()
        while True:
            with self._cond:
                if batch and not self._queue:  # nothing more to read now: hand over what there is
                    self.thumbnails_ready.emit(batch)
                    batch = []
                while not (self._stopping or self._queue):
                    self._cond.wait()
                if self._stopping:
                    return
                path = self._queue.popleft()
            image = self.read(path)
            if image is not None:
                batch.append((path, image))
            if batch and time.monotonic() - since >= self.BATCH_S:
                self.thumbnails_ready.emit(batch)
                batch, since = [], time.monotonic()

    def read(self, path: Path) -> QtGui.QImage | None:
        from PIL import Image

        from qgn_studio.document import read_image

        try:
            rgb = Image.fromarray(read_image(path))
        except Exception:  # the list shows the file without a preview
            return None
        rgb.thumbnail((self.size, self.size))
        if min(rgb.size) < max(1, self.size // 8):  # a sliver (20000×2 → 64×1): scaled into the list's
            # icon it would be 0 px high (QPainter::begin fails); centred on a transparent square instead
            square = Image.new("RGBA", (self.size, self.size), (0, 0, 0, 0))
            square.paste(rgb, ((self.size - rgb.width) // 2, (self.size - rgb.height) // 2))
            rgb = square
        data = rgb.tobytes()
        kind = QtGui.QImage.Format.Format_RGBA8888 if rgb.mode == "RGBA" else QtGui.QImage.Format.Format_RGB888
        image = QtGui.QImage(data, rgb.width, rgb.height, len(rgb.mode) * rgb.width, kind)
        return image.copy()
