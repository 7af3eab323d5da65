"""From pointer gestures to label edits: the current tool, cell level and class.

Tools (a cell at level l is a 2^l × 2^l block aligned to the image origin):

``paint``  press, then drag: every level-l cell under the pointer takes the class; a fast drag
           leaves no gaps (``cells_along``). Painting a coarse level merges cells (one leaf),
           a fine level splits them. The stroke applies as the mouse moves (only the touched
           rectangle is redrawn) and becomes ONE undo step on release.
``erase``  the same, setting cells to the class set's ignore value.
``fill``   the 4-connected region of pixels equal to the one clicked takes the class.
``pick``   the class under the pointer becomes the current class, then the previous tool is back
           (one action, as the pick key ``I`` promises); Ctrl + click picks in any tool (Alt +
           click too, where the window manager leaves Alt + drag to the app). Shift + drag with
           the snap brush snaps that stroke to the other evidence (``image_tools``).

The image-aware tools (superpixel, snap brush, wand) register a handler in ``handlers``
(``qgn_studio.tools.image_tools``); the controller passes their gestures on and pushes the one
edit each gesture ends with.

No Qt widgets here: the canvas calls ``press/move/release`` with image coordinates.
"""
from __future__ import annotations

from PySide6 import QtCore

from qgn.quadtree import ROOT_LEVEL
from qgn_studio.tools.commands import EditCommand

TOOLS = {  # tool → (label, key, what it does)
    "paint": ("Paint", "B", "Paint the cells under the pointer at the current level"),
    "fill": ("Fill", "F", "Fill the connected region of equal label under the pointer"),
    "erase": ("Erase", "E", "Set the cells under the pointer to ignore"),
    "pick": ("Pick", "I", "Take the class under the pointer, then go back to the tool before "
                          "(also Ctrl + click in any tool)"),
}


class ToolController(QtCore.QObject):
    """Holds the tool state and applies gestures to ``session`` (an ``AnnotationSession``).

    ``session_needed()`` is called when a gesture starts on an image without an annotation; it
    returns the session to edit (or None: the gesture is ignored). Signals report state changes
    (for the panel and shortcuts) and problems (``message``).
    """

    tool_changed = QtCore.Signal(str)
    level_changed = QtCore.Signal(int)
    radius_changed = QtCore.Signal(int)  # brush radius in cells of the current level
    class_changed = QtCore.Signal(int)
    stroke_finished = QtCore.Signal(object)  # the AnnotationSession edited
    message = QtCore.Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.tool = "paint"
        self.previous_tool = "paint"  # the tool a one-shot pick returns to
        self.level = 2
        self.radius = 0
        self.class_id = 0
        self.num_classes = 0
        self.session = None
        self.session_needed = lambda: None
        self.blocked = lambda: None  # () -> why the maps take no edit now (a class change is applied), or None
        self._stroke = None  # [value, last point, StrokeRecorder of the steps so far]
        self.handlers: dict = {}  # tool → gesture handler of an image-aware tool (image_tools)
        self.image_for = lambda session: None  # (H, W, 3) image of a session (set by the annotator)
        self._handler = None  # the handler of the gesture in progress
        self.shift = False  # Shift held at the gesture's press

    # ------------------------------------------------------------------ state
    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS and tool not in self.handlers:
            raise ValueError(f"unknown tool {tool!r}; choose one of {', '.join(TOOLS)}")
        self.finish_stroke()
        if tool != self.tool:
            if self.tool != "pick":
                self.previous_tool = self.tool
            self.tool = tool
            self.tool_changed.emit(tool)

    def set_level(self, level: int) -> None:
        level = max(0, min(ROOT_LEVEL, int(level)))
        if level != self.level:
            self.finish_stroke()
            self.level = level
            self.level_changed.emit(level)

    def step_level(self, delta: int) -> None:
        """``[`` / ``]``: the cell level, or the current image-aware tool's own setting."""
        handler = self.handlers.get(self.tool)
        if handler is not None and handler.tools.step(self.tool, delta):
            return
        self.set_level(self.level + delta)

    def set_radius(self, radius: int) -> None:
        """Brush radius in cells (0: one cell); see ``qgn.annotation.brush``."""
        from qgn.annotation.brush import MAX_RADIUS

        radius = max(0, min(MAX_RADIUS, int(radius)))
        if radius != self.radius:
            self.finish_stroke()
            self.radius = radius
            self.radius_changed.emit(radius)

    def step_radius(self, delta: int) -> None:
        self.set_radius(self.radius + delta)

    def set_num_classes(self, count: int) -> None:
        self.num_classes = count
        if count and self.class_id >= count:
            self.set_class(0)

    def set_class(self, class_id: int) -> None:
        if not 0 <= class_id < max(self.num_classes, 1):
            self.message.emit(f"there is no class {class_id + 1} (the class set has {self.num_classes})")
            return
        if class_id != self.class_id:
            self.class_id = class_id
            self.class_changed.emit(class_id)

    def set_session(self, session) -> None:
        self.finish_stroke()
        self.session = session

    # ------------------------------------------------------------------ gestures (image coordinates)
    def press(self, x: float, y: float, alt: bool = False, shift: bool = False) -> bool:
        """A button went down at (x, y); returns True when the gesture was taken. ``alt``: the
        pick modifier (Ctrl or Alt) was held; ``shift``: Shift was held (the snap brush's stroke
        then follows the other evidence). An edit the annotation refuses (e.g. a class its
        class set does not have) becomes a message."""
        self.shift = shift
        blocked = self.blocked()
        if blocked:
            self.message.emit(f"Not changed: {blocked}")
            return True
        try:
            return self._press(x, y, alt)
        except ValueError as exc:
            self._stroke = None
            self.message.emit(f"Not changed: {exc}")
            return True

    def _press(self, x: float, y: float, alt: bool) -> bool:
        self.finish_stroke()
        session = self.session or self.session_needed()
        if session is None:
            return False
        self.session = session
        h, w = session.shape
        if alt or self.tool == "pick":
            if 0 <= x < w and 0 <= y < h:
                self._pick(session, x, y)
                if self.tool == "pick":  # one action: back to the tool before
                    self.set_tool(self.previous_tool)
            return True
        if self.tool == "fill":
            if 0 <= x < w and 0 <= y < h:
                self._fill(session, x, y)
            return True
        handler = self.handlers.get(self.tool)
        if handler is not None:
            value = self._value(session)
            if value is not None and handler.press(session, self.image_for(session), x, y, value, self):
                self._handler = handler
            return True
        value = self._value(session)
        if value is None:
            return True
        from qgn.annotation.edit import StrokeRecorder

        self._stroke = [value, (x, y), StrokeRecorder(session.label)]
        self._paint_to(x, y)
        return True

    def move(self, x: float, y: float) -> None:
        if self._handler is not None:
            try:
                self._handler.move(x, y)
            except ValueError as exc:
                self.finish_stroke()
                self.message.emit(f"Not changed: {exc}")
            return
        if self._stroke is not None:
            try:
                self._paint_to(x, y)
            except ValueError as exc:
                self.finish_stroke()
                self.message.emit(f"Not changed: {exc}")

    def release(self) -> None:
        self.finish_stroke()

    @property
    def stroking(self) -> bool:
        return self._stroke is not None or self._handler is not None

    def finish_stroke(self) -> None:
        """Push the stroke in progress as one undo step (nothing when it changed nothing)."""
        handler, self._handler = self._handler, None
        if handler is not None and self.session is not None:
            try:
                result = handler.finish()
                if result is not None and not result[2]:
                    self.session.apply(result[0])  # refused (ValueError) before it is an undo step
            except ValueError as exc:
                self.message.emit(f"Not changed: {exc}")
                result = None
            if result is not None:
                edit, text, _applied = result
                self.session.undo.push(EditCommand(self.session, edit, text, applied=True))
                self.stroke_finished.emit(self.session)
        stroke, self._stroke = self._stroke, None
        if stroke is None or self.session is None:
            return
        value, _last, recorder = stroke
        edit = recorder.edit()
        if edit.is_empty:
            return
        what = "Erase" if self.tool == "erase" else "Paint"
        text = f"{what} {edit.pixel_count:,} px at level {self.level}"
        self.session.undo.push(EditCommand(self.session, edit, text, applied=True))
        self.stroke_finished.emit(self.session)

    # ------------------------------------------------------------------ the tools
    def _value(self, session) -> int | None:
        if self.tool == "erase":
            ignore = session.classes.ignore_index
            if ignore is None:
                self.message.emit("This class set has no ignore value, so there is nothing to erase to; "
                                  "paint another class instead")
                return None
            return int(ignore)
        return self.class_id

    def _paint_to(self, x: float, y: float) -> None:
        from qgn.annotation.brush import brush_points
        from qgn.annotation.edit import cells_along, paint_cells

        value, last, recorder = self._stroke
        along = cells_along(self.level, last, (x, y), self.session.shape, self.radius)  # clipped near the image
        points = brush_points(self.level, along, self.radius)
        step = paint_cells(self.session.label, self.level, points, value)
        if not step.is_empty:
            self.session.apply(step)
            recorder.record(step)
        self._stroke = [value, (x, y), recorder]

    def _fill(self, session, x: float, y: float) -> None:
        from qgn.annotation.edit import fill_region

        edit = fill_region(session.label, int(x), int(y), self.class_id)
        if edit.is_empty:  # the clicked region has the class already: say so, not silence
            from .image_tools import value_name

            self.message.emit(f"Fill: nothing to change here — the region is already "
                              f"{value_name(session.classes, self.class_id)}")
            return
        session.apply(edit)  # an edit the annotation refuses raises here, before it is an undo step
        session.undo.push(EditCommand(session, edit, f"Fill {edit.pixel_count:,} px", applied=True))
        self.stroke_finished.emit(session)

    def _pick(self, session, x: float, y: float) -> None:
        from qgn.annotation.edit import pick

        value = pick(session.label, int(x), int(y))
        if value >= session.classes.num_classes:
            self.message.emit("That pixel is ignore (erased): no class to pick")
            return
        self.set_class(value)


def class_for_key(digit: int) -> int:
    """Keys 1–9 pick classes 0–8, key 0 picks class 9."""
    return 9 if digit == 0 else digit - 1

