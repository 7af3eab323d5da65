"""One class per overlay layer of the canvas.

A layer owns a root graphics item (its children are images and outlines in image-pixel
coordinates); visibility and opacity apply to the root. ``set_content`` hands a layer the current
document and result; it re-renders only when what it shows changed (the LevelViews of coarse levels
are shared between results, so moving the depth slider repaints only the new levels) and only
while visible (hidden layers render when shown).

The layers drawn from the document and the result make their picture in two steps: ``paint_job``
captures the inputs and returns a function that makes the picture from them (numpy only, no Qt
item), and ``show`` puts a picture on the items. A picture of at least ``HEAVY_PIXELS`` pixels is
made on the canvas's ``PicturePainter`` thread (qgn_studio.canvas.painter): at 12 megapixels one
costs 30-180 ms, and on the UI thread a move's few of them stalled the window for up to 350 ms.
Until it arrives the layer keeps its last picture of the same image (a new image clears it).
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from qgn_studio.canvas.colours import (
    COMPOSITE_RGBA, HATCH_RGBA, colour_codes, colour_labels, colour_values, finest_on_top, level_colours, mask_rgba,
)
from qgn_studio.document import LEVELS, ImageDocument, RenderResult


def image_item(parent: QtWidgets.QGraphicsItem) -> pg.ImageItem:
    item = pg.ImageItem()
    item.setParentItem(parent)
    return item


def show_array(item: pg.ImageItem, array: np.ndarray | None, cell: int = 1) -> None:
    """Show (h, w, 3|4) uint8 ``array`` with each array pixel covering ``cell`` image pixels.

    No levels: pyqtgraph then wraps the array in a QImage (RGB888 / RGBA8888) without a copy.
    With levels (0, 255) - the same pixels - it ran every pixel through ``makeARGB`` on each
    ``setImage``: 29 ms for a 12-megapixel RGBA map, several times per move on a full-resolution
    photo, on the UI thread. Painting either image costs the same (2-4 ms scaled to a window)."""
    if array is None:
        item.clear()
        return
    item.setImage(np.ascontiguousarray(array, dtype=np.uint8), autoLevels=False, levels=None)
    h, w = array.shape[:2]
    item.setRect(QtCore.QRectF(0, 0, w * cell, h * cell))


def path_item(parent: QtWidgets.QGraphicsItem, pen: QtGui.QPen | None,
              brush: QtGui.QBrush | None) -> QtWidgets.QGraphicsPathItem:
    item = QtWidgets.QGraphicsPathItem()
    item.setParentItem(parent)
    item.setPen(pen if pen is not None else QtGui.QPen(QtCore.Qt.PenStyle.NoPen))
    item.setBrush(brush if brush is not None else QtGui.QBrush(QtCore.Qt.BrushStyle.NoBrush))
    return item


def cosmetic_pen(rgba: tuple, width: float = 1.0) -> QtGui.QPen:
    pen = QtGui.QPen(QtGui.QColor(*rgba))
    pen.setCosmetic(True)
    pen.setWidthF(width)
    return pen


class DeviceHatchItem(QtWidgets.QGraphicsPathItem):
    """A path filled with a pattern in screen space: the hatching keeps its spacing at any zoom."""

    def paint(self, painter, option, widget=None):
        path = self.path()
        if path.isEmpty():
            return
        device_path = painter.worldTransform().map(path)
        painter.save()
        painter.resetTransform()
        painter.fillPath(device_path, self.brush())
        painter.restore()


def hatch_brush(rgba: tuple, spacing: int = 8) -> QtGui.QBrush:
    """Diagonal lines every ``spacing`` screen pixels."""
    tile = QtGui.QPixmap(spacing, spacing)
    tile.fill(QtCore.Qt.GlobalColor.transparent)
    painter = QtGui.QPainter(tile)
    painter.setPen(QtGui.QPen(QtGui.QColor(*rgba), 1))
    for i in range(spacing):
        painter.drawPoint(spacing - 1 - i, i)
    painter.end()
    return QtGui.QBrush(tile)


HEAVY_PIXELS = 1 << 20  # pictures this big (pixels of the grid they cover) are made off the UI thread


class Layer:
    """Base class: a named, toggleable, translucent overlay (see the module docstring).

    A subclass either overrides ``render`` (drawn at once, on the UI thread) or sets ``background``
    and overrides ``paint_job`` and ``show`` (see the module docstring)."""

    key = ""
    title = ""
    z = 0.0
    on_grid = False  # draws the decoder's grid (working pixels), scaled onto the image
    default_visible = True
    default_opacity = 1.0
    tooltip = ""
    background = False  # made by paint_job + show; big pictures off the UI thread

    def __init__(self, parent: QtWidgets.QGraphicsItem):
        self.root = pg.ItemGroup()
        self.root.setParentItem(parent)
        self.root.setZValue(self.z)
        self.visible = self.default_visible
        self.root.setVisible(self.visible)
        self.root.setOpacity(self.default_opacity)
        self.doc: ImageDocument | None = None
        self.result: RenderResult | None = None
        self.classes = None
        self._shown: tuple | None = None
        self.painter = None  # the canvas's PicturePainter; None: every picture is made at once
        self._painted_doc = None  # the document whose picture is on the items

    @property
    def opacity(self) -> float:
        return self.root.opacity()

    def set_visible(self, visible: bool) -> None:
        self.visible = bool(visible)
        self.root.setVisible(self.visible)
        self.refresh()

    def set_opacity(self, opacity: float) -> None:
        self.root.setOpacity(float(opacity))

    def set_content(self, doc: ImageDocument | None, result: RenderResult | None, classes) -> None:
        self.doc, self.result, self.classes = doc, result, classes
        if self.on_grid:
            fy, fx = (1.0, 1.0) if result is None else result.grid_scale
            self.root.setTransform(QtGui.QTransform.fromScale(fx, fy))
        self.refresh()

    def refresh(self) -> None:
        """Render if visible and the shown content is not the current one."""
        if not self.visible:
            return
        source = self.source()
        if self._shown is not None and len(source) == len(self._shown) and all(
            a is b for a, b in zip(source, self._shown)
        ):
            return
        self._shown = source
        if not self.background:
            self.render()
            return
        job, doc = self.paint_job(), self.doc
        if self.painter is None or self.pixels() < HEAVY_PIXELS:
            if self.painter is not None:
                self.painter.forget(self)  # a picture still on its way is older than this one
            self._show_painted(job(), doc)
            return
        if doc is not self._painted_doc:
            self._show_painted(None, doc)  # another image's picture would mislead while it is made
        self.painter.submit(self, job, lambda picture: self._show_painted(picture, doc))

    def _show_painted(self, picture, doc) -> None:
        self._painted_doc = doc
        self.show(picture)

    def pixels(self) -> int:
        """How many pixels the layer's picture covers: the decoder's grid for a layer on it, else
        the image."""
        if self.on_grid and self.result is not None:
            h, w = self.result.grid_size
        elif self.doc is not None and self.doc.size is not None:
            h, w = self.doc.size
        else:
            return 0
        return h * w

    def paint_job(self):
        """A function of no arguments that makes this layer's picture from the current content,
        captured now (it may run on another thread: numpy only, no Qt item, no ``self`` state
        that may change). Background layers only."""
        raise NotImplementedError

    def show(self, picture) -> None:
        """Put ``picture`` (a ``paint_job`` result; None: nothing) on the items (UI thread)."""
        raise NotImplementedError

    def set_scale(self, screen_pixels_per_pixel: float) -> None:
        """The view's zoom changed (layers with a level of detail override this)."""

    def grid_factor(self) -> float:
        """Image pixels per working pixel of the decoder's grid (1 unless the model works at its
        own scale); a level-of-detail rule in working pixels multiplies the zoom by it."""
        if not self.on_grid or self.result is None:
            return 1.0
        return self.result.grid_scale[1]

    def source(self) -> tuple:
        """The objects this layer's picture depends on (compared by identity)."""
        return (self.doc, self.result, self.classes)

    def render(self) -> None:
        """Draw the current content at once (layers that are not ``background``)."""
        raise NotImplementedError

    def available(self) -> bool:
        """Whether the layer has something to show for the current document."""
        return self.result is not None


class ImageLayer(Layer):
    key, title, z = "image", "Image", 0.0
    tooltip = "The image itself"

    def __init__(self, parent):
        super().__init__(parent)
        self.item = image_item(self.root)

    def source(self):
        return (None if self.doc is None else self.doc.image,)

    def render(self):
        show_array(self.item, None if self.doc is None else self.doc.image)

    def available(self):
        return self.doc is not None and self.doc.image is not None


class TruthLayer(Layer):
    key, title, z = "truth", "Ground truth", 1.0
    default_visible, default_opacity = False, 0.6
    tooltip = "The ground-truth label map found beside the image (ignore pixels transparent)"
    background = True

    def __init__(self, parent):
        super().__init__(parent)
        self.item = image_item(self.root)

    def source(self):
        return (None if self.doc is None else self.doc.ground_truth, self.classes)

    def paint_job(self):
        truth, classes = (None if self.doc is None else self.doc.ground_truth), self.classes
        return lambda: None if truth is None or classes is None else colour_labels(truth, classes)

    def show(self, picture):
        show_array(self.item, picture)

    def available(self):
        return self.doc is not None and self.doc.ground_truth is not None


class PredictionLayer(Layer):
    key, title, z = "prediction", "Prediction", 2.0
    default_opacity = 0.55
    tooltip = "The final prediction: each pixel takes the class of the finest computed cell over it"
    background = True

    def __init__(self, parent):
        super().__init__(parent)
        self.item = image_item(self.root)

    def source(self):
        return (None if self.result is None else self.result.label, self.classes)

    def paint_job(self):
        label, classes = (None if self.result is None else self.result.label), self.classes
        return lambda: None if label is None or classes is None else colour_labels(label, classes)

    def show(self, picture):
        show_array(self.item, picture)


class LevelLayer(Layer):
    """Q̂l: the class of every computed cell of level l; composite cells shaded and hatched."""

    on_grid = True
    background = True

    default_visible, default_opacity = False, 0.8

    def __init__(self, parent, level: int):
        self.level = level
        self.key = f"q{level}"
        self.title = f"Q̂{level}  · {1 << level} px cells"
        self.z = 3.0 + (5 - level) * 0.1
        self.tooltip = (f"Level {level}: the decoder's prediction on cells of {1 << level}×{1 << level} px; "
                        "hatched cells are composite (refined at the next level)")
        super().__init__(parent)
        self.item = image_item(self.root)  # classes, and the composite cells' shade: one image
        self.hatch = DeviceHatchItem()
        self.hatch.setParentItem(self.root)
        self.hatch.setPen(QtGui.QPen(QtCore.Qt.PenStyle.NoPen))
        self.hatch.setBrush(hatch_brush(HATCH_RGBA))
        self.edge = path_item(self.root, cosmetic_pen(HATCH_RGBA), None)

    def view(self):
        return None if self.result is None else self.result.levels.get(self.level)

    def source(self):
        return (self.view(), self.classes)

    def paint_job(self):
        view, classes = self.view(), self.classes
        if view is None or classes is None:
            return lambda: None
        return lambda: (view, colour_codes(view.codes, classes, COMPOSITE_RGBA))

    def show(self, picture):
        if picture is None:
            show_array(self.item, None)
            for item in (self.hatch, self.edge):
                item.setPath(QtGui.QPainterPath())
            return
        view, rgba = picture
        show_array(self.item, rgba, view.cell)
        self.hatch.setPath(view.extras.get("composite", QtGui.QPainterPath()))
        self.edge.setPath(view.extras.get("composite_edge", QtGui.QPainterPath()))

    def available(self):
        return self.view() is not None


class StackedLevelsLayer(Layer):
    """A picture of every computed level, finer on top, painted as one image (``finest_on_top``):
    at depth 0 six full-view images cost ~3 ms more per paint than one."""

    on_grid = True
    background = True

    def __init__(self, parent):
        super().__init__(parent)
        self.item = image_item(self.root)

    def views(self) -> dict:
        return {} if self.result is None else {lv: v for lv, v in self.result.levels.items() if v is not None}

    def source(self):
        return tuple(self.views().get(lv) for lv in LEVELS) + self.settings()

    def settings(self) -> tuple:
        """What the picture depends on besides the views."""
        return ()

    def picture(self, view, settings: tuple) -> np.ndarray:
        """(h_l, w_l, 4) RGBA of one level, each pixel opaque or transparent, with ``settings``
        (those of `settings`, captured when the job was made)."""
        raise NotImplementedError

    def cached_picture(self, view, settings: tuple) -> np.ndarray:
        """``picture`` of ``view``, kept with the view: coarse levels' views are shared between
        results, so a depth move colours only the new levels."""
        key = ("picture", self.key) + settings
        picture = view.extras.get(key)
        if picture is None:
            picture = view.extras[key] = self.picture(view, settings)
        return picture

    def paint_job(self):
        views, settings = self.views(), self.settings()

        def paint():
            return views, finest_on_top({lv: self.cached_picture(view, settings) for lv, view in views.items()})

        return paint

    def show(self, picture):
        stacked = None if picture is None else picture[1]
        show_array(self.item, None if stacked is None else stacked[0], 1 if stacked is None else 1 << stacked[1])


class UncertaintyLayer(StackedLevelsLayer):
    """P(composite) or normalised entropy of the finest computed cell over each pixel."""

    key, title, z = "uncertainty", "Uncertainty", 5.0
    default_visible, default_opacity = False, 0.75
    tooltip = "Where the network doubts: P(composite) or the prediction's entropy (finest computed cell)"
    MEASURES = {"entropy": "Entropy of the prediction", "composite": "P(composite)"}

    def __init__(self, parent):
        super().__init__(parent)
        self.measure = "entropy"

    def set_measure(self, measure: str) -> None:
        if measure not in self.MEASURES:
            raise ValueError(f"unknown uncertainty measure {measure!r}")
        self.measure = measure
        self.refresh()

    def settings(self) -> tuple:
        return (self.measure,)

    def picture(self, view, settings: tuple) -> np.ndarray:
        (measure,) = settings
        return colour_values(view.entropy if measure == "entropy" else view.composite)


class SitesLayer(StackedLevelsLayer):
    """The active sites computed at each level: tinted by the finest level, outlined per level."""

    key, title, z = "sites", "Active sites", 6.0
    default_visible, default_opacity = False, 0.6
    tooltip = "The cells the decoder computed at each level (colour = finest level computed there)"
    MIN_OUTLINED_CELL = 6  # screen pixels: smaller cells are shown by their tint only

    def __init__(self, parent):
        super().__init__(parent)
        self.colours = level_colours()
        self.outlines = {}
        for lv in LEVELS:
            r, g, b = self.colours[lv]
            pen = cosmetic_pen((min(255, r + 60), min(255, g + 60), min(255, b + 60), 255))
            self.outlines[lv] = path_item(self.root, pen, None)
            self.outlines[lv].setZValue(10 + 5 - lv)

    def set_scale(self, screen_pixels_per_pixel: float) -> None:
        scale = screen_pixels_per_pixel * self.grid_factor()
        for lv, item in self.outlines.items():
            item.setVisible((1 << lv) * scale >= self.MIN_OUTLINED_CELL)

    def picture(self, view, settings: tuple) -> np.ndarray:
        tint = np.zeros(view.codes.shape + (4,), np.uint8)
        computed = view.codes >= 0
        tint[computed, :3] = self.colours[view.level]
        tint[computed, 3] = 255
        return tint

    def show(self, picture):
        super().show(picture)
        views = {} if picture is None else picture[0]
        for lv, item in self.outlines.items():
            outline = views[lv].extras.get("sites") if lv in views else None
            item.setPath(outline if outline is not None else QtGui.QPainterPath())


class GridLayer(Layer):
    """The predicted quadtree's leaves, outlined at their true size.

    Levels whose cells are under MIN_OUTLINED_CELL screen pixels at the current zoom show as a
    light tint over their leaves instead of outlines (thousands of 1-px squares read as a tint
    anyway, and would cost a second per repaint); zooming in brings their outlines back.
    """

    on_grid = True

    background = True

    key, title, z = "grid", "Quadtree grid", 7.0
    default_opacity = 0.7
    tooltip = "Leaves of the predicted quadtree at their true size (32 px root cells down to pixels)"
    MIN_OUTLINED_CELL = 4
    TINT_RGBA = (255, 255, 255, 110)

    def __init__(self, parent):
        super().__init__(parent)
        # A 1-px dark copy one screen pixel down-right keeps the light lines readable on bright
        # areas (a wider pen would take the raster engine's slow path: ~30× the paint time).
        self.under, self.over, self.tints = {}, {}, {}
        for key in list(LEVELS) + ["border"]:
            self.under[key] = path_item(self.root, cosmetic_pen((0, 0, 0, 170), 1.0), None)
            self.over[key] = path_item(self.root, cosmetic_pen((255, 255, 255, 220), 1.0), None)
        for lv in LEVELS:
            self.tints[lv] = image_item(self.root)
        self.scale = 1.0

    def set_scale(self, screen_pixels_per_pixel: float) -> None:
        self.scale = max(screen_pixels_per_pixel, 1e-6)
        scale = self.scale * self.grid_factor()  # screen pixels per pixel of the grid drawn
        for item in self.under.values():
            item.setPos(1.0 / scale, 1.0 / scale)
        for lv in LEVELS:
            outlined = (1 << lv) * scale >= self.MIN_OUTLINED_CELL
            self.under[lv].setVisible(outlined)
            self.over[lv].setVisible(outlined)
            self.tints[lv].setVisible(not outlined)

    def source(self):
        return (None if self.result is None else self.result.extras.get("grid"),)

    def paint_job(self):
        paths = self.source()[0] or {}
        masks = dict({} if self.result is None else self.result.extras.get("grid_masks", {}))
        return lambda: (paths, {lv: mask_rgba(mask, self.TINT_RGBA) for lv, mask in masks.items() if mask is not None})

    def show(self, picture):
        paths, tints = ({}, {}) if picture is None else picture
        empty = QtGui.QPainterPath()
        for key in self.over:
            self.under[key].setPath(paths.get(key, empty))
            self.over[key].setPath(paths.get(key, empty))
        for lv, item in self.tints.items():
            show_array(item, tints.get(lv), 1 << lv)
        self.set_scale(self.scale)


def make_layers(parent: QtWidgets.QGraphicsItem) -> dict[str, Layer]:
    """Every layer, bottom to top, keyed by ``Layer.key``."""
    layers = [ImageLayer(parent), TruthLayer(parent), PredictionLayer(parent)]
    layers += [LevelLayer(parent, lv) for lv in LEVELS]
    layers += [UncertaintyLayer(parent), SitesLayer(parent), GridLayer(parent)]
    return {layer.key: layer for layer in layers}
