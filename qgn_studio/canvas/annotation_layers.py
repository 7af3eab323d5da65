"""The annotation's overlay layers: its classes, its quadtree cells, and what changed vs the prediction.

Each layer follows the current image's ``AnnotationSession`` (``doc.annotation``): a new session
or class set re-renders it whole; an edit (the session's ``changed(PixelRect)`` signal) re-renders
only the pixels of that rectangle (the cells layer: the 32-px root blocks around it), so a paint
stroke never redraws the image. Hidden layers catch up when shown.

A whole picture of at least ``HEAVY_PIXELS`` is made on the canvas's painter thread
(``qgn_studio.canvas.painter``): on the UI thread, colouring the annotation of a 24-megapixel photo
and tinting its cells took over a second each when annotation started. It reads the live map (a copy
cost a third of a second more on the UI thread); every edit made while it is on its way is drawn
again over it when it arrives, so a pixel the thread read while it changed ends right.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from qgn_studio.annotation_doc import NUM_LEVELS, ROOT, PixelRect
from qgn_studio.canvas.colours import label_lut, mask_rgba, rgba_word
from qgn_studio.canvas.layers import HEAVY_PIXELS, Layer, cosmetic_pen
from qgn_studio.canvas.raster import RasterItem

IGNORE_RGBA = (12, 12, 14, 170)  # erased / ignore pixels: a dark veil, so they read as "no class"
CHANGED_RGBA = (255, 40, 200, 235)
FINE_TINT_RGBA = (255, 255, 255, 60)


def annotation_rgba(label: np.ndarray, classes) -> np.ndarray:
    """(h, w) uint8/uint16 label → (h, w, 4) uint8: class colours opaque, ignore (and any other
    value) veiled. One uint32 gather per pixel through a table of every value of the dtype."""
    lut = np.full(np.iinfo(label.dtype).max + 1 if label.dtype.kind == "u" and label.itemsize <= 2 else 1,
                  rgba_word(IGNORE_RGBA), np.uint32)
    if lut.size == 1:  # any other integer type: clip into a small table
        k = classes.num_classes
        label = np.where((label >= 0) & (label < k), label, k).astype(np.uint16)
        lut = np.full(k + 1, rgba_word(IGNORE_RGBA), np.uint32)
    colours_rgba = label_lut(classes)[:classes.num_classes]
    count = min(len(colours_rgba), len(lut))
    lut[:count] = colours_rgba[:count].view(np.uint32).ravel()
    return lut[label].view(np.uint8).reshape(label.shape + (4,))  # (np.take: 5× slower for small ints)


class SessionLayer(Layer):
    """A layer drawn from ``doc.annotation``; see the module docstring."""

    def __init__(self, parent):
        self.session = None
        self._stale = False
        self._painting = None  # the session whose whole picture is being made on the painter thread
        self._missed: PixelRect | None = None  # edited since that picture's map was copied
        self._painted = None  # the session whose whole picture the items show
        super().__init__(parent)

    def source(self):
        session = None if self.doc is None else getattr(self.doc, "annotation", None)
        return (session, None if session is None else session.classes)

    def available(self):
        return self.source()[0] is not None

    def refresh(self):
        session = self.source()[0]
        if session is not self.session:
            self._follow(session)
        if self.visible and self._stale:
            self._stale = False
            self._shown = None
        super().refresh()

    def _follow(self, session) -> None:
        if self.session is not None:
            try:
                self.session.changed.disconnect(self._changed)
                self.session.reset.disconnect(self._reset)
            except (RuntimeError, TypeError):
                pass
        self.session = session
        if session is not None:
            session.changed.connect(self._changed)
            session.reset.connect(self._reset)

    def _changed(self, rect: PixelRect) -> None:
        if not self.visible or self._shown is None:
            self._stale = True
            return
        if self._painting is not None and self._painting is self.session:  # its picture predates this edit
            self._missed = rect.union(self._missed)
            if self._painted is not self.session:
                return  # nothing of this session on the items to draw the edit on yet
        self.render_rect(rect)

    def _reset(self) -> None:
        self._shown = None
        self._stale = not self.visible
        self.refresh()

    def render(self) -> None:
        """The session's whole picture: made at once when small, else on the painter thread (see
        the module docstring); until it arrives the items keep this session's last picture, or
        show none (another image's would mislead)."""
        session = self.source()[0]
        if self.painter is not None:
            self.painter.forget(self)
        self._painting, self._missed = None, None
        if session is None or self.painter is None or session.label.size < HEAVY_PIXELS:
            self._show_whole(None if session is None else self.picture_job(session)(), session)
            return
        if self._painted is not session:
            self._show_whole(None, None)
        self._painting = session
        self.painter.submit(self, self.picture_job(session), lambda picture: self._arrived(picture, session))

    def _arrived(self, picture, session) -> None:
        if session is not self.session or self._painting is not session:
            return
        self._painting = None
        self._show_whole(picture, session)
        missed, self._missed = self._missed, None
        if missed is not None and not missed.empty:
            self.render_rect(missed)

    def _show_whole(self, picture, session) -> None:
        self._painted = session if picture is not None else None
        self.show_picture(picture)

    def picture_job(self, session):
        """A function of no arguments that makes the session's whole picture (it may run on the
        painter thread while the map is edited: the edits are drawn again when it arrives)."""
        raise NotImplementedError

    def show_picture(self, picture) -> None:
        """Put a ``picture_job`` result (None: nothing) on the items (UI thread)."""
        raise NotImplementedError

    def render_rect(self, rect: PixelRect) -> None:
        raise NotImplementedError


class AnnotationLayer(SessionLayer):
    key, title, z = "annotation", "Annotation", 2.5
    default_visible, default_opacity = False, 0.6  # annotation mode shows it
    tooltip = "The annotation being edited: its label map (erased / ignore pixels veiled dark)"

    def __init__(self, parent):
        super().__init__(parent)
        self.item = RasterItem(self.root)

    def picture_job(self, session):
        label, classes = session.label, session.classes
        return lambda: annotation_rgba(label, classes)

    def show_picture(self, picture) -> None:
        self.item.set_array(picture, owned=True)

    def render_rect(self, rect: PixelRect) -> None:
        s = self.session
        self.item.write(rect.y0, rect.x0, annotation_rgba(s.label[rect.y0:rect.y1, rect.x0:rect.x1], s.classes))


class ChangedLayer(SessionLayer):
    key, title, z = "changed", "Changed vs prediction", 7.2
    default_visible, default_opacity = False, 0.85
    tooltip = "Pixels where the annotation differs from the prediction it started from (the corrections)"

    def __init__(self, parent):
        super().__init__(parent)
        self.item = RasterItem(self.root)

    @staticmethod
    def _rgba(mask: np.ndarray) -> np.ndarray:
        return mask_rgba(mask, CHANGED_RGBA)

    def picture_job(self, session):
        label, reference = session.label, session.reference  # (a new reference is a new array)
        if reference is None or session.reference_stale:  # (a new one on its way: none shown meanwhile)
            return lambda: self._rgba(np.zeros(label.shape, bool))
        return lambda: self._rgba(label != reference)

    def show_picture(self, picture) -> None:
        self.item.set_array(picture, owned=True)

    def render_rect(self, rect: PixelRect) -> None:
        self.item.write(rect.y0, rect.x0, self._rgba(self.session.changed_mask(rect)))


class LeafOutlineItem(QtWidgets.QGraphicsItem):
    """Outlines of the annotation's quadtree leaves, computed for the exposed area at paint time.

    Levels whose cells are under ``min_cell`` screen pixels are skipped (``AnnotationCellsLayer``
    tints them instead); each leaf draws its top and left edge, the image border closes the rest.
    """

    def __init__(self, parent, pen: QtGui.QPen, min_cell: float):
        super().__init__(parent)
        self.pen = pen
        self.min_cell = min_cell
        self.leaves: list[np.ndarray] | None = None
        self.size = (0, 0)
        self.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)

    def set_leaves(self, leaves, size: tuple[int, int]) -> None:
        self.prepareGeometryChange()
        self.leaves, self.size = leaves, size
        self.update()

    def boundingRect(self) -> QtCore.QRectF:
        h, w = self.size
        return QtCore.QRectF(-1, -1, w + 2, h + 2)

    def paint(self, painter, option, widget=None) -> None:
        if self.leaves is None:
            return
        scale = abs(painter.worldTransform().m11()) or 1.0
        exposed = option.exposedRect
        h, w = self.size
        path = QtGui.QPainterPath()
        for lv in range(NUM_LEVELS):
            size = 1 << lv
            if size * scale < self.min_cell:
                continue
            leaves = self.leaves[lv]
            cx0 = max(0, int(exposed.left()) // size - 1)
            cy0 = max(0, int(exposed.top()) // size - 1)
            cx1 = min(leaves.shape[1], int(exposed.right()) // size + 2)
            cy1 = min(leaves.shape[0], int(exposed.bottom()) // size + 2)
            ys, xs = np.nonzero(leaves[cy0:cy1, cx0:cx1])
            x0 = (xs + cx0) * size
            y0 = (ys + cy0) * size
            keep = (x0 < w) & (y0 < h)
            x0, y0 = x0[keep].astype(np.float64), y0[keep].astype(np.float64)
            if len(x0):
                xs = np.stack([x0, x0, x0 + size], axis=1).ravel()
                ys = np.stack([y0 + size, y0, y0], axis=1).ravel()
                connect = np.tile(np.array([1, 1, 0], np.int32), len(x0))
                path.addPath(pg.arrayToQPath(xs, ys, connect, finiteCheck=False))
        path.addRect(0, 0, w, h)
        painter.setPen(self.pen)
        painter.drawPath(path)


class AnnotationCellsLayer(SessionLayer):
    """The quadtree of the annotation: leaf outlines where they are large enough to read, a light
    tint over finer leaves (zoom in to see their outlines)."""

    key, title, z = "annotation_cells", "Annotation cells", 7.6
    default_visible, default_opacity = False, 0.75  # annotation mode shows it
    tooltip = ("The quadtree of the annotation, derived from its label map: every leaf cell outlined "
               "(finer leaves lightly tinted until zoomed in)")
    MIN_OUTLINED_CELL = 5

    def __init__(self, parent):
        super().__init__(parent)
        self.under = LeafOutlineItem(self.root, cosmetic_pen((0, 0, 0, 160)), self.MIN_OUTLINED_CELL)
        self.over = LeafOutlineItem(self.root, cosmetic_pen((255, 236, 140, 235)), self.MIN_OUTLINED_CELL)
        self.tints = {lv: RasterItem(self.root, 1 << lv) for lv in range(NUM_LEVELS)}
        self.scale = 1.0

    def set_scale(self, screen_pixels_per_pixel: float) -> None:
        self.scale = max(screen_pixels_per_pixel, 1e-6)
        self.under.setPos(1.0 / self.scale, 1.0 / self.scale)
        for lv, item in self.tints.items():
            item.setVisible((1 << lv) * self.scale < self.MIN_OUTLINED_CELL)

    @staticmethod
    def _tint(mask: np.ndarray) -> np.ndarray:
        return mask_rgba(mask, FINE_TINT_RGBA)

    def picture_job(self, session):
        leaves = list(session.pyramid.leaves)
        return lambda: [self._tint(mask) for mask in leaves]

    def show_picture(self, picture) -> None:
        s = self._painted  # the session the picture is of (None with no picture)
        for item in (self.under, self.over):  # the outlines read the live pyramid at paint time
            item.set_leaves(None if s is None else s.pyramid.leaves, (0, 0) if s is None else s.shape)
        for lv, item in self.tints.items():
            item.set_array(None if picture is None else picture[lv], owned=True)
        self.set_scale(self.scale)

    def render_rect(self, rect: PixelRect) -> None:
        s = self.session
        y0, x0 = rect.y0 // ROOT * ROOT, rect.x0 // ROOT * ROOT
        y1, x1 = -(-rect.y1 // ROOT) * ROOT, -(-rect.x1 // ROOT) * ROOT
        for lv, item in self.tints.items():
            leaves = s.pyramid.leaves[lv][y0 >> lv:y1 >> lv, x0 >> lv:x1 >> lv]
            item.write(y0 >> lv, x0 >> lv, self._tint(leaves))
        area = QtCore.QRectF(x0 - 1, y0 - 1, x1 - x0 + 2, y1 - y0 + 2)
        self.over.update(area)
        self.under.update(area)


def make_annotation_layers(parent: QtWidgets.QGraphicsItem) -> list[Layer]:
    return [AnnotationLayer(parent), ChangedLayer(parent), AnnotationCellsLayer(parent)]
