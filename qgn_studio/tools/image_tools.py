"""The image-aware tools of the app: superpixels, the snapped coarse brush and the magic wand.

They are gestures like any other tool: the ``ToolController`` hands a press / move / release to
the tool's handler here, and every gesture ends as ONE ``LabelEdit`` undo step (so undo, autosave
and class edits treat them like a paint stroke). The computing is ``qgn.annotation``'s:

``superpixel`` (S)  click: the superpixel under the pointer takes the class; drag: every
                    superpixel the pointer crosses (``paint_segments``). ``[`` / ``]`` step the
                    granularity (coarse · medium · fine).
``snap`` (G)        paint at the current cell level as with the brush; on release the cells inside
                    the stroke keep the class and its rim snaps to the image's edges
                    (``snapped_stroke``: a watershed seeded by the inside cells, the pointer's path
                    and the neighbouring labels) — or, with "Snap to: prediction" (``snap_to``),
                    the rim takes the class where the model's prediction says it (the session's
                    ``reference``: the prediction in the annotation's classes); unavailable, and
                    the image's edges used, on an image without a prediction. Shift + drag:
                    that stroke follows the other of the two.
``wand`` (W)        the connected pixels of similar colour, inside the clicked label region, take
                    the class (``magic_wand``); ``[`` / ``]`` step the tolerance.

Each image's over-segmentation is computed once, off the UI thread, when the image is shown in
annotation mode (``ImageTools.prepare``); the tools work at the working resolution of
``qgn.annotation.working``, so a gesture on a 6000×4000 photo stays bounded.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6 import QtCore

IMAGE_TOOLS = {  # tool → (label, key, what it does)
    "superpixel": ("Superpixel", "S", "Click: one superpixel takes the class; drag: every superpixel you cross "
                                      "([ ] coarser / finer)"),
    "snap": ("Snap brush", "G", "Paint coarse cells; on release the stroke's rim snaps to the image's edges "
                                "or the prediction (Snap to; Shift + drag: the other one)"),
    "wand": ("Wand", "W", "The connected pixels of similar colour take the class ([ ] tolerance)"),
}
GRANULARITY_NAMES = ("coarse", "medium", "fine")
SNAP_TO = {"image": "image edges", "prediction": "prediction"}  # what the snap brush's rim follows
DEFAULT_SNAP_TO = "image"  # measured: benchmarks/RESULTS.md, "Snap to: prediction"
NO_PREDICTION = "This image has no prediction to snap to (open a model, or wait for its prediction)"


class ImageContext:
    """What the tools know about one image: its ``WorkingImage`` and, once computed, its
    ``Oversegmentation``."""

    def __init__(self, working, over=None):
        self.working = working
        self.over = over


class ImageTools(QtCore.QObject):
    """Per-image contexts and the tool handlers (see the module docstring).

    ``runner`` is a ``JobRunner`` of its own (over-segmentation never waits behind a save, nor a
    save behind it); ``shutdown()`` stops it."""

    message = QtCore.Signal(str)
    prepared = QtCore.Signal(object)  # Path of the image whose superpixels are ready
    setting_changed = QtCore.Signal(str)  # a line describing the new granularity / tolerance / snap evidence

    def __init__(self, parent=None):
        super().__init__(parent)
        from qgn.annotation.wand import DEFAULT_TOLERANCE, TOLERANCES
        from qgn_studio.jobs import JobRunner

        self.runner = JobRunner(self)
        self.contexts: dict[Path, ImageContext] = {}
        self.pending: set[Path] = set()
        self.granularity = 1
        self.tolerances = TOLERANCES
        self.tolerance = TOLERANCES.index(DEFAULT_TOLERANCE)
        self.snap_to = DEFAULT_SNAP_TO
        self.handlers = {"superpixel": SuperpixelHandler(self), "snap": SnapHandler(self), "wand": WandHandler(self)}

    # ------------------------------------------------------------------ contexts
    def prepare(self, path: Path, image: np.ndarray | None) -> None:
        """Compute the image's over-segmentation in the background (once)."""
        known = self.contexts.get(path)
        if image is None or (known is not None and known.over is not None) or path in self.pending:
            return
        from qgn.annotation.superpixels import oversegment
        from qgn.annotation.working import WorkingImage

        self.pending.add(path)

        def build():
            working = WorkingImage(image)
            return ImageContext(working, oversegment(working))

        def done(context) -> None:
            self.pending.discard(path)
            self.contexts[path] = context
            self.prepared.emit(path)

        def failed(text: str) -> None:
            self.pending.discard(path)
            self.message.emit(f"Superpixels could not be computed: {text}")

        self.runner.submit(build, done, failed, "Computing superpixels")

    def context(self, path: Path, image: np.ndarray | None = None, need_segments: bool = False) -> ImageContext | None:
        """The image's context; without superpixels yet, a context with its working image alone
        (built now: a resize) unless ``need_segments``."""
        found = self.contexts.get(path)
        if found is not None and (found.over is not None or not need_segments):
            return found
        if need_segments or image is None:
            return None
        from qgn.annotation.working import WorkingImage

        found = self.contexts[path] = ImageContext(WorkingImage(image))
        return found

    def forget(self, paths) -> None:
        for path in paths:
            self.contexts.pop(path, None)

    def shutdown(self, wait: bool = True) -> None:
        self.runner.stop(wait)

    # ------------------------------------------------------------------ settings
    def step(self, tool: str, delta: int) -> bool:
        """``[`` / ``]`` for a tool with a setting of its own: True when it took the step."""
        if tool == "superpixel":
            self.granularity = max(0, min(len(GRANULARITY_NAMES) - 1, self.granularity - delta))
            self.setting_changed.emit(f"Superpixels: {GRANULARITY_NAMES[self.granularity]} "
                                      f"({self.granularity + 1} of {len(GRANULARITY_NAMES)})")
            return True
        if tool == "wand":
            self.tolerance = max(0, min(len(self.tolerances) - 1, self.tolerance + delta))
            self.setting_changed.emit(f"Wand tolerance: {self.tolerances[self.tolerance]} (of 255 per colour)")
            return True
        return False

    def set_snap_to(self, choice: str) -> None:
        """What the snap brush's rim follows: "image" (its edges) or "prediction"."""
        if choice not in SNAP_TO:
            raise ValueError(f"the snap brush snaps to one of {', '.join(SNAP_TO)}; got {choice!r}")
        if choice != self.snap_to:
            self.snap_to = choice
            self.setting_changed.emit(f"Snap brush: the rim follows the {SNAP_TO[choice]}")

    def describe(self, tool: str, has_prediction: bool = True) -> str:
        """The line under the tools about ``tool``'s own setting; ``has_prediction``: whether the
        image shown has a prediction the snap brush can follow."""
        if tool == "superpixel":
            return f"Superpixels: {GRANULARITY_NAMES[self.granularity]}   [ coarser · finer ]"
        if tool == "wand":
            return f"Wand tolerance: {self.tolerances[self.tolerance]}   [ larger · smaller ]"
        if tool == "snap":
            if not has_prediction:
                return "Snap brush: the rim snaps to the image edges on release (this image has no prediction)"
            other = SNAP_TO["image" if self.snap_to == "prediction" else "prediction"]
            return f"Snap brush: the rim snaps to the {SNAP_TO[self.snap_to]} on release (Shift + drag: {other})"
        return ""


class _Handler:
    """A gesture of one image-aware tool: ``press`` (False: not taken), ``move``, ``finish`` →
    (LabelEdit, undo text, already applied) or None."""

    def __init__(self, tools: ImageTools):
        self.tools = tools
        self.session = None

    def move(self, x: float, y: float) -> None:
        pass


class SuperpixelHandler(_Handler):
    def press(self, session, image, x, y, value, controller) -> bool:
        from qgn.annotation.edit import StrokeRecorder

        context = self.tools.context(session.path, need_segments=True)
        if context is None or context.over is None:
            self.tools.message.emit("The superpixels of this image are still being computed; try again in a moment")
            return False
        self.session, self.context, self.value = session, context, value
        self.recorder = StrokeRecorder(session.label)
        self.last = (x, y)
        self.painted: set[int] = set()  # segments this gesture already set (a drag crosses them again)
        self._paint(np.array([[x, y]], np.float64))
        return True

    def move(self, x: float, y: float) -> None:
        self._paint(np.array([self.last, (x, y)], np.float64))
        self.last = (x, y)

    def _paint(self, points: np.ndarray) -> None:
        h, w = self.session.shape
        points = points[(points[:, 0] >= 0) & (points[:, 0] < w) & (points[:, 1] >= 0) & (points[:, 1] < h)]
        if len(points) == 0:
            return
        from qgn.annotation.edit import _edit_of

        over, g = self.context.over, self.tools.granularity
        ids = [i for i in over.segments_along(g, points).tolist() if i not in self.painted]
        if not ids:
            return
        self.painted.update(ids)
        step = _edit_of(self.session.label, over.full_index(g, ids), self.value)  # = paint_segments of the new ones
        if not step.is_empty:
            self.session.apply(step)
            self.recorder.record(step)

    def finish(self):
        edit = self.recorder.edit()
        name = GRANULARITY_NAMES[self.tools.granularity]
        return None if edit.is_empty else (edit, f"Superpixels ({name}) {edit.pixel_count:,} px", True)


class SnapHandler(_Handler):
    """Paints the cells like the brush while dragging (a preview); on release the preview is taken
    back and the snapped stroke applied in its place, as one undo step."""

    def press(self, session, image, x, y, value, controller) -> bool:
        from qgn.annotation.edit import StrokeRecorder

        context = self.tools.context(session.path, image)
        if context is None:
            return False
        self.session, self.context, self.value = session, context, value
        self.level, self.radius = controller.level, controller.radius
        self.snap_to = self.tools.snap_to
        if getattr(controller, "shift", False):  # Shift + drag: this stroke follows the other evidence
            self.snap_to = "image" if self.snap_to == "prediction" else "prediction"
        self.recorder = StrokeRecorder(session.label)
        self.cells: list[np.ndarray] = []
        self.path: list[np.ndarray] = [np.array([[x, y]], np.float64)]
        self.last = (x, y)
        self._paint(self.last, (x, y))
        return True

    def move(self, x: float, y: float) -> None:
        from qgn.annotation.edit import cells_along

        self.path.append(cells_along(0, self.last, (x, y)).astype(np.float64) + 0.5)
        self._paint(self.last, (x, y))
        self.last = (x, y)

    def _paint(self, a, b) -> None:
        from qgn.annotation.brush import brush_points
        from qgn.annotation.edit import cells_along, paint_cells

        points = brush_points(self.level, cells_along(self.level, a, b), self.radius)
        self.cells.append(points)
        step = paint_cells(self.session.label, self.level, points, self.value)
        if not step.is_empty:
            self.session.apply(step)
            self.recorder.record(step)

    def finish(self):
        from qgn.annotation.snap import snapped_stroke

        preview = self.recorder.edit()
        if not preview.is_empty:
            self.session.revert(preview)
        evidence = self.evidence()
        edit = snapped_stroke(self.session.label, self.context.working, self.level, np.concatenate(self.cells),
                              self.value, path=np.concatenate(self.path), evidence=evidence)
        if edit.is_empty:
            return None
        self.session.apply(edit)
        to = " to the prediction" if evidence is not None else ""
        return edit, f"Snap {edit.pixel_count:,} px at level {self.level}{to}", True

    def evidence(self) -> np.ndarray | None:
        """(H, W) bool where the prediction says the stroke's class, when the stroke follows the
        prediction ("Snap to: prediction", or Shift + drag with "image edges") on an image that has
        one; else None (the image's edges decide)."""
        reference = getattr(self.session, "reference", None)
        if self.snap_to != "prediction":
            return None
        if reference is None or reference.shape != self.session.label.shape:
            self.tools.message.emit(NO_PREDICTION + "; this stroke snapped to the image's edges")
            return None
        return reference == self.value


class WandHandler(_Handler):
    def press(self, session, image, x, y, value, controller) -> bool:
        from qgn.annotation.wand import magic_wand

        context = self.tools.context(session.path, image)
        if context is None:
            return False
        h, w = session.shape
        self.edit = None
        if 0 <= x < w and 0 <= y < h:
            tolerance = self.tools.tolerances[self.tools.tolerance]
            self.edit = magic_wand(session.label, context.working, x, y, value, tolerance)
            self.text = f"Wand (tolerance {tolerance}) {self.edit.pixel_count:,} px"
            if self.edit.is_empty:  # the clicked region has the class already: say so, not silence
                self.tools.message.emit(f"Wand: nothing to change here — the region is already "
                                        f"{value_name(session.classes, value)}")
        return True

    def finish(self):
        if self.edit is None or self.edit.is_empty:
            return None
        return self.edit, self.text, False


def value_name(classes, value: int) -> str:
    """How the status line names label ``value``: its class name, or "ignore (erased)"."""
    names = list(getattr(classes, "names", None) or [])
    return names[value] if 0 <= value < len(names) else "ignore (erased)"
