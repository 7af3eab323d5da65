"""Which image next: order the image list by what the model is unsure about, step to the next most
uncertain image, and inside an image to the next uncertain region.

``Order images by uncertainty`` predicts every open image with a copy of the model in use in a
background thread (``RankJob``) and scores it with ``qgn.uncertainty`` (``MEASURE``: the mean
normalised entropy, which predicted the simulated annotator's correction effort better than the
share of composite cells in ``qgn bench --only annotate``, benchmarks/RESULTS.md); the status bar
shows n/N with a Cancel button (Esc cancels too); the list is then sorted, most uncertain first,
each row saying its score. The scores are remembered in the settings for the project (or the
set of images) and the order comes back when it is opened again. ``Next most uncertain image`` goes to the
most uncertain image not visited since the ordering. ``Next uncertain region`` centres the view on
the next 16×16-pixel cell of the current image in descending mean entropy of its prediction.
"""
from __future__ import annotations

import copy
import threading

import numpy as np
from PySide6 import QtCore

from qgn_studio.document import describe_error, read_image
from qgn_studio.engine import configure_threads

MEASURE = "mean_entropy"
REGION_LEVEL = 4  # cells of 16 px


class RankJob(QtCore.QThread):
    """Predict and score images off the UI thread: ``scored(path, score)`` per image, then
    ``ranked(dict path → score)``; ``failed(message)``."""

    scored = QtCore.Signal(object, float)
    ranked = QtCore.Signal(object)
    failed = QtCore.Signal(str)

    def __init__(self, model, paths, measure: str = MEASURE, parent=None):
        super().__init__(parent)
        self.model = copy.deepcopy(model).eval()
        self.paths = list(paths)
        self.measure = measure
        self._stop = threading.Event()

    def cancel(self) -> None:
        self._stop.set()

    def run(self) -> None:
        from qgn.infer import predict
        from qgn.propagation import Scheme
        from qgn.uncertainty import image_uncertainty

        configure_threads()
        scores = {}
        try:
            for path in self.paths:
                if self._stop.is_set():
                    return
                try:
                    image = read_image(path)
                except Exception:  # an unreadable image is left out of the order
                    continue
                score = image_uncertainty(predict(self.model, image, Scheme("pc"))).score(self.measure)
                scores[path] = score
                self.scored.emit(path, score)
            self.ranked.emit(scores)
        except Exception as exc:
            self.failed.emit(describe_error(exc))


class UncertaintyOrder(QtCore.QObject):
    """The three actions (see the module docstring) over the ``workspace``'s documents; the model
    scored with is ``engine.engine.model`` (the InferenceWorker's); ``projects``: the open project
    whose order is remembered. ``scores_changed(dict path → score)``: the list shows them."""

    scores_changed = QtCore.Signal(object)

    def __init__(self, workspace, engine, projects, parent=None):
        super().__init__(parent)
        self.workspace, self.engine, self.projects = workspace, engine, projects
        self.job: RankJob | None = None
        self.scores: dict = {}
        self.visited: set = set()
        self._regions: tuple[object, np.ndarray, int] | None = None  # (result, cells, next index)

    def shutdown(self, wait: bool = True) -> None:
        """Stop a scoring run in progress (closing the window; ``wait``: and wait for it)."""
        if self.job is not None:
            self.job.cancel()
            if wait:
                self.job.wait()

    def build_actions(self, add, menu) -> None:
        section = "Which image next"
        menu.addSeparator()
        add(menu, "Order images by &uncertainty", self.order, "Ctrl+Shift+U", section=section,
            tip="Predict every open image and list the ones the model is least sure about first")
        add(menu, "Next most uncertain image", self.next_image, "Shift+N", section=section)
        add(menu, "Next uncertain region", self.next_region, "Shift+R", section=section,
            tip="Centre the view on the next part of this image the model is unsure about")

    def _say(self, text: str, ms: int = 6000) -> None:
        self.workspace.show_status(text, ms)

    # ------------------------------------------------------------------ ordering
    def order(self) -> None:
        model = self.engine.engine.model
        if model is None or not self.workspace.docs:
            self._say("Open images and load a model first")
            return
        if self.job is not None and self.job.isRunning():
            return
        paths = [d.path for d in self.workspace.docs if not d.error]
        info = self.workspace.model_info
        scored_with = None if info is None else str(info.path)  # the model switched meanwhile is not it
        self.job = RankJob(model, paths, MEASURE, self)
        total, workspace = len(paths), self.workspace
        count = [0]

        def scored(path, _score) -> None:
            count[0] += 1
            workspace.show_progress(f"Scoring uncertainty {count[0]}/{total}: {path.name}", count[0], total,
                                    self.cancel, owner=self, esc=True)

        self.job.scored.connect(scored)
        self.job.ranked.connect(lambda scores: self._ranked(scores, scored_with))
        self.job.failed.connect(lambda message: self._say(f"Cannot order by uncertainty: {message}", 10000))
        self.job.finished.connect(lambda: workspace.hide_progress(self))  # (its own line only)
        workspace.show_progress(f"Scoring uncertainty 0/{total}", 0, total, self.cancel, owner=self,
                                esc=True)  # (the window's Esc stops it too)
        self.job.start()

    def cancel(self) -> bool:
        """Stop a scoring run (the list keeps its order); True when one was running."""
        if self.job is None or not self.job.isRunning() or self.job._stop.is_set():
            return False  # (none, or one cancelled already, winding down)
        self.job.cancel()
        self.workspace.cancelling(self)  # (its line says so until the job's end hides it)
        self._say("Ordering by uncertainty cancelled; the list keeps its order", 5000)
        return True

    # ------------------------------------------------------------------ remembered orders
    def _memory_key(self) -> str:
        import hashlib

        project = self.projects.project
        if project is not None:
            what = str(project.root)
        else:
            what = "\n".join(sorted(str(d.path) for d in self.workspace.docs))
        return "uncertainty/" + hashlib.sha1(what.encode("utf-8")).hexdigest()[:16]

    def _remember(self, model: str | None) -> None:
        """The scores, and the model (its path) that ``model`` names as the one they were scored with."""
        import json

        settings = self.workspace.settings
        if settings is None or not self.scores:
            return
        settings.setValue(self._memory_key(), json.dumps({
            "model": model,
            "scores": {str(path): score for path, score in self.scores.items()}}))

    def restore(self) -> bool:
        """Order the list as the last scoring did, when the settings remember one for these
        images (the project, or this set of images); True when they did."""
        import json
        from pathlib import Path

        settings = self.workspace.settings
        if settings is None or not self.workspace.docs:
            return False
        try:
            memory = json.loads(str(settings.value(self._memory_key(), "")) or "{}")
        except ValueError:
            return False
        known = {Path(p): float(v) for p, v in memory.get("scores", {}).items()}
        scores = {d.path: known[d.path] for d in self.workspace.docs if d.path in known}
        if not scores:
            return False
        self._apply(scores, remember=False)
        model = Path(memory["model"]).name if memory.get("model") else "a model"
        self._say(f"Images in the uncertainty order scored last time (with {model}); Ctrl+Shift+U scores again", 8000)
        return True

    def _ranked(self, scores: dict, model: str | None = None) -> None:
        """``scores`` of a scoring run with ``model`` (its path as the run began: a fine-tuned model
        kept meanwhile did not score them)."""
        self._apply(scores, model=model)
        self._say(f"Images ordered by uncertainty ({MEASURE.replace('_', ' ')}), most uncertain first", 8000)

    def _apply(self, scores: dict, remember: bool = True, model: str | None = None) -> None:
        from qgn.uncertainty import order_by_uncertainty

        self.scores = dict(scores)
        self.visited = set()
        if remember:
            self._remember(model)
        docs = self.workspace.docs
        values = [self.scores.get(d.path, -1.0) for d in docs]
        ordered = [docs[i] for i in order_by_uncertainty(values)]
        current = self.workspace.current
        self.workspace.set_documents(ordered)
        self.scores_changed.emit(self.scores)
        if current in ordered:
            self.workspace.select(current)

    def next_image(self) -> None:
        if not self.scores:
            self._say("Order the images by uncertainty first (Ctrl+Shift+U)")
            return
        if self.workspace.current is not None:
            self.visited.add(self.workspace.current.path)
        left = [d for d in self.workspace.docs if d.path in self.scores and d.path not in self.visited]
        if not left:
            self._say("Every scored image was visited; ordering again starts over")
            return
        target = max(left, key=lambda d: self.scores[d.path])
        self.visited.add(target.path)
        self.workspace.select(target)

    # ------------------------------------------------------------------ regions
    def next_region(self) -> None:
        from qgn.uncertainty import entropy_from_levels, uncertain_cells

        doc = self.workspace.current
        result = None if doc is None else doc.result
        if result is None:
            self._say("No prediction for this image yet")
            return
        if self._regions is None or self._regions[0] is not result:
            entropy = entropy_from_levels({lv: view.entropy for lv, view in result.levels.items()}, result.size)
            self._regions = (result, uncertain_cells(entropy, REGION_LEVEL), 0)
        _, cells, index = self._regions
        if index >= len(cells):
            index = 0
        x, y = (int(v) for v in cells[index])
        self._regions = (result, cells, index + 1)
        size = 1 << REGION_LEVEL
        self.workspace.show_region(QtCore.QRectF(x - 3 * size, y - 3 * size, 7 * size, 7 * size))
        self._say(f"Uncertain region {index + 1} of {len(cells)} at ({x}, {y})")
