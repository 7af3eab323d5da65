"""Small toolbar icons drawn with QPainter (no image files to ship)."""
from __future__ import annotations

from PySide6 import QtCore, QtGui

SIZE = 24
INK = QtGui.QColor("#dcdcdc")


def _icon(draw) -> QtGui.QIcon:
    pixmap = QtGui.QPixmap(SIZE, SIZE)
    pixmap.fill(QtCore.Qt.GlobalColor.transparent)
    painter = QtGui.QPainter(pixmap)
    painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    pen = QtGui.QPen(INK, 2)
    pen.setCapStyle(QtCore.Qt.PenCapStyle.RoundCap)
    painter.setPen(pen)
    draw(painter)
    painter.end()
    return QtGui.QIcon(pixmap)


def fit_icon() -> QtGui.QIcon:
    """Four corner brackets: fit the image to the window."""

    def draw(p: QtGui.QPainter) -> None:
        a, b, n = 4, SIZE - 4, 6
        for x, y, dx, dy in ((a, a, 1, 1), (b, a, -1, 1), (a, b, 1, -1), (b, b, -1, -1)):
            p.drawLine(x, y, x + dx * n, y)
            p.drawLine(x, y, x, y + dy * n)
        p.drawRect(9, 9, 6, 6)

    return _icon(draw)


def zoom_box_icon() -> QtGui.QIcon:
    """A dashed box with a magnifier: drag a box to zoom into it."""

    def draw(p: QtGui.QPainter) -> None:
        pen = p.pen()
        pen.setStyle(QtCore.Qt.PenStyle.DashLine)
        pen.setWidthF(1.5)
        p.setPen(pen)
        p.drawRect(3, 3, 13, 11)
        pen.setStyle(QtCore.Qt.PenStyle.SolidLine)
        pen.setWidthF(2)
        p.setPen(pen)
        p.drawEllipse(QtCore.QPointF(15, 15), 4, 4)
        p.drawLine(18, 18, 22, 22)

    return _icon(draw)


def actual_size_icon() -> QtGui.QIcon:
    """'1:1'."""

    def draw(p: QtGui.QPainter) -> None:
        font = p.font()
        font.setPixelSize(12)
        font.setBold(True)
        p.setFont(font)
        p.drawText(QtCore.QRectF(0, 0, SIZE, SIZE), QtCore.Qt.AlignmentFlag.AlignCenter, "1:1")

    return _icon(draw)
