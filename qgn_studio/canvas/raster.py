"""A graphics item over an RGBA numpy buffer that repaints only the rectangle that changed.

pyqtgraph's ImageItem converts its whole array to a QImage on every ``setImage``: a few
milliseconds per megapixel, too slow for every step of a paint stroke on a large image. A
``RasterItem`` owns one (H, W, 4) uint8 buffer with a QImage that shares its memory; writing a
patch and calling ``update`` on that patch's rectangle is all a stroke step costs.
"""
from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets


class RasterItem(QtWidgets.QGraphicsItem):
    """RGBA pixels in image coordinates: pixel (x, y) covers [x, x+1) × [y, y+1) (× ``cell``)."""

    def __init__(self, parent: QtWidgets.QGraphicsItem | None = None, cell: int = 1):
        super().__init__(parent)
        self.cell = cell
        self.rgba: np.ndarray | None = None
        self._image: QtGui.QImage | None = None
        self.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)

    # ------------------------------------------------------------------ content
    def set_array(self, rgba: np.ndarray | None, cell: int | None = None, owned: bool = False) -> None:
        """Show (H, W, 4) uint8 ``rgba`` (copied into the item's own buffer, unless ``owned``: an
        array nobody else holds becomes the buffer, saving a copy of ~100 MB at 24 megapixels);
        None clears."""
        self.prepareGeometryChange()
        if cell is not None:
            self.cell = cell
        if rgba is None:
            self.rgba, self._image = None, None
            self.update()
            return
        fits = owned and rgba.dtype == np.uint8 and rgba.flags.c_contiguous and rgba.flags.writeable
        self.rgba = rgba if fits else np.ascontiguousarray(rgba, dtype=np.uint8).copy()
        h, w = self.rgba.shape[:2]
        self._image = QtGui.QImage(self.rgba.data, w, h, 4 * w, QtGui.QImage.Format.Format_RGBA8888)
        self.update()

    def write(self, y0: int, x0: int, patch: np.ndarray) -> None:
        """Write (h, w, 4) uint8 ``patch`` at (y0, x0) of the buffer and repaint that part only."""
        if self.rgba is None:
            return
        h, w = patch.shape[:2]
        self.rgba[y0:y0 + h, x0:x0 + w] = patch
        c = self.cell
        self.update(QtCore.QRectF(x0 * c, y0 * c, w * c, h * c))

    # ------------------------------------------------------------------ QGraphicsItem
    def boundingRect(self) -> QtCore.QRectF:
        if self.rgba is None:
            return QtCore.QRectF()
        h, w = self.rgba.shape[:2]
        return QtCore.QRectF(0, 0, w * self.cell, h * self.cell)

    def paint(self, painter: QtGui.QPainter, option, widget=None) -> None:
        if self._image is None:
            return
        h, w = self.rgba.shape[:2]
        c = self.cell
        exposed = option.exposedRect if option is not None else self.boundingRect()
        x0 = max(0, int(exposed.left() // c))
        y0 = max(0, int(exposed.top() // c))
        x1 = min(w, int(-(-exposed.right() // c)) + 1)
        y1 = min(h, int(-(-exposed.bottom() // c)) + 1)
        if x1 <= x0 or y1 <= y0:
            return
        painter.setRenderHint(QtGui.QPainter.RenderHint.SmoothPixmapTransform, False)
        painter.drawImage(QtCore.QRectF(x0 * c, y0 * c, (x1 - x0) * c, (y1 - y0) * c), self._image,
                          QtCore.QRectF(x0, y0, x1 - x0, y1 - y0))
