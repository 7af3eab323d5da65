"""What the canvas adds in annotation mode: a surface that turns left-button gestures over the image
into tool gestures, and a brush cursor outlining the level-l cell under the pointer.

The surface sits over the image and takes a left press only while annotation mode is on and Space
is not held; every other press falls through to the view (pan, zoom box, right-drag zoom), and the
wheel always zooms.
"""
from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets


class PaintSurface(QtWidgets.QGraphicsObject):
    """An invisible item over the image that forwards gestures to a ``ToolController``."""

    def __init__(self, parent: QtWidgets.QGraphicsItem, tools, pan_held=lambda: False):
        super().__init__(parent)
        self.tools = tools
        self.pan_held = pan_held
        self.active = False
        self._rect = QtCore.QRectF()
        self.setZValue(100)
        self.setAcceptedMouseButtons(QtCore.Qt.MouseButton.LeftButton)
        self.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemHasNoContents, True)

    def set_size(self, width: int, height: int) -> None:
        self.prepareGeometryChange()
        self._rect = QtCore.QRectF(0, 0, width, height)

    def set_active(self, active: bool) -> None:
        self.active = active
        if not active:
            self.tools.finish_stroke()

    def boundingRect(self) -> QtCore.QRectF:
        return self._rect

    def wheelEvent(self, event) -> None:
        """Shift+wheel over the image in annotation mode sizes the brush; any other wheel zooms."""
        if self.active and event.modifiers() & QtCore.Qt.KeyboardModifier.ShiftModifier:
            self.tools.step_radius(1 if event.delta() > 0 else -1)
            event.accept()
        else:
            event.ignore()

    def paint(self, painter, option, widget=None) -> None:
        pass

    def mousePressEvent(self, event) -> None:
        if not self.active or event.button() != QtCore.Qt.MouseButton.LeftButton or self.pan_held():
            event.ignore()
            return
        pos = event.pos()
        # Ctrl + click picks: window managers (openbox, XFCE, …) take Alt + drag to move windows.
        pick = bool(event.modifiers() & (QtCore.Qt.KeyboardModifier.ControlModifier
                                         | QtCore.Qt.KeyboardModifier.AltModifier))
        # Shift + drag: the snap brush's stroke follows the other evidence (image edges / prediction)
        other = bool(event.modifiers() & QtCore.Qt.KeyboardModifier.ShiftModifier)
        if self.tools.press(pos.x(), pos.y(), alt=pick, shift=other):
            event.accept()
        else:
            event.ignore()

    def mouseMoveEvent(self, event) -> None:
        pos = event.pos()
        self.tools.move(pos.x(), pos.y())
        event.accept()

    def mouseReleaseEvent(self, event) -> None:
        self.tools.release()
        event.accept()


class BrushCursor(QtWidgets.QGraphicsItemGroup):
    """The cell a paint or erase stroke would set: a dark and a coloured outline (cosmetic pens)."""

    def __init__(self, parent: QtWidgets.QGraphicsItem):
        super().__init__(parent)
        self.setZValue(101)
        self.outer = QtWidgets.QGraphicsRectItem()
        self.inner = QtWidgets.QGraphicsRectItem()
        for item, colour, width in ((self.outer, QtGui.QColor(0, 0, 0, 200), 3.0),
                                    (self.inner, QtGui.QColor(255, 255, 255), 1.5)):
            pen = QtGui.QPen(colour)
            pen.setCosmetic(True)
            pen.setWidthF(width)
            item.setPen(pen)
            item.setBrush(QtGui.QBrush(QtCore.Qt.BrushStyle.NoBrush))
            self.addToGroup(item)
        self.hide()

    def set_colour(self, rgb) -> None:
        pen = self.inner.pen()
        pen.setColor(QtGui.QColor(*rgb))
        self.inner.setPen(pen)

    def show_cell(self, x: float, y: float, level: int, size: tuple[int, int], radius: int = 0) -> None:
        """Outline the level-``level`` cell containing pixel (x, y) — with a brush ``radius`` > 0,
        the square around the brush's cells — clipped to ``size`` (H, W)."""
        cell = 1 << level
        h, w = size
        x0, y0 = (int(x) // cell - radius) * cell, (int(y) // cell - radius) * cell
        x1, y1 = x0 + (2 * radius + 1) * cell, y0 + (2 * radius + 1) * cell
        x0, y0 = max(x0, 0), max(y0, 0)
        rect = QtCore.QRectF(x0, y0, max(0, min(x1, w) - x0), max(0, min(y1, h) - y0))
        self.outer.setRect(rect)
        self.inner.setRect(rect)
        self.show()
