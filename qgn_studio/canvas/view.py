"""The canvas: a pyqtgraph view of the image and its overlay layers.

Mouse: wheel zooms, left-drag pans (or draws a zoom box in zoom-box mode, where holding Space pans
as in napari), right-drag zooms. Every overlay is a child of one item that clips to the image
rectangle, so the padding to a multiple of 32 never shows.
"""
from __future__ import annotations

import math
import time

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from qgn.progress import count_down_suffix
from qgn_studio.canvas.annotation_layers import make_annotation_layers
from qgn_studio.canvas.layers import Layer, make_layers
from qgn_studio.canvas.painter import PicturePainter
from qgn_studio.document import ImageDocument, RenderResult

BACKGROUND = "#1e1f22"


class ImageClip(QtWidgets.QGraphicsRectItem):
    """An invisible rectangle (the image) that clips every overlay to it."""

    def __init__(self):
        super().__init__(0, 0, 1, 1)
        self.setPen(QtGui.QPen(QtCore.Qt.PenStyle.NoPen))
        self.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemClipsChildrenToShape, True)


class Banner(QtWidgets.QFrame):
    """Dismissible messages above the view, one per topic ("model", "image", "open", "run").

    A message may hold links (``<a href="model:camvid">…</a>``): clicking one emits
    ``link_activated(href)`` for the window to act on. Messages are rich text: a caller escapes
    what it did not write itself (a path, a name). The banner is at most ``MAX_LINES`` lines high
    and scrolls beyond, so no message can grow the window past the screen.
    """

    MAX_LINES = 6

    link_activated = QtCore.Signal(str)
    dismissed = QtCore.Signal(list)  # the topics the user's ✕ closed
    COLOURS = {"error": "#8c2f39", "warning": "#7a5b12", "info": "#2b4f7a"}

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("banner")
        self.label = QtWidgets.QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse
                                           | QtCore.Qt.TextInteractionFlag.LinksAccessibleByMouse)
        self.label.linkActivated.connect(self.link_activated)
        self.scroll = QtWidgets.QScrollArea()
        self.scroll.setWidget(self.label)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setStyleSheet("QScrollArea, QScrollArea > QWidget > QWidget { background: transparent; }")
        close = QtWidgets.QToolButton(text="✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.dismiss)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.scroll, 1)
        layout.addWidget(close, 0, QtCore.Qt.AlignmentFlag.AlignTop)
        self.messages: dict[str, tuple[str, str]] = {}
        self.hide()

    def show_message(self, text: str, kind: str = "error", topic: str = "image") -> None:
        self.messages[topic] = (text, kind)
        self._update()

    def dismiss(self) -> None:
        """The user's ✕: every message goes, and ``dismissed`` says which (a caller that writes one
        again on its own, such as the domain warning, keeps it closed)."""
        topics = list(self.messages)
        self.clear()
        self.dismissed.emit(topics)

    def clear(self, topic: str | None = None) -> None:
        if topic is None:
            self.messages.clear()
        else:
            self.messages.pop(topic, None)
        self._update()

    def _update(self) -> None:
        if not self.messages:
            self.hide()
            return
        kinds = [kind for _text, kind in self.messages.values()]
        worst = next(k for k in ("error", "warning", "info") if k in kinds or k == "info")
        self.setStyleSheet(f"#banner {{ background: {self.COLOURS[worst]}; }} QLabel {{ color: white; }}")
        self.label.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.label.setText("<br>".join(text for text, _kind in self.messages.values()))
        self._fit()
        self.show()

    def _fit(self) -> None:
        """As high as the text at the label's width, up to ``MAX_LINES`` whole lines (then it
        scrolls): the cap is what ``MAX_LINES`` lines of the label's rich text take (it was
        ``MAX_LINES`` font line spacings and 4 px, which rich text, laid out without the font's
        leading, filled with six lines and half the seventh, cut)."""
        width = max(self.scroll.viewport().width(), 100)
        height = self.label.heightForWidth(width)
        probe = QtWidgets.QLabel("<br>".join(["X"] * self.MAX_LINES))
        probe.setTextFormat(QtCore.Qt.TextFormat.RichText)
        probe.setFont(self.label.font())
        cap = probe.sizeHint().height()
        self.scroll.setFixedHeight(min(max(height, self.label.fontMetrics().lineSpacing()), cap))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.messages:
            self._fit()


class BusyPill(QtWidgets.QFrame):
    """'Computing …' with an indeterminate bar and Cancel, floating at the view's top right."""

    cancel_requested = QtCore.Signal()

    def __init__(self, parent):
        super().__init__(parent)
        self.setObjectName("busy")
        self.setStyleSheet("#busy { background: rgba(30, 31, 34, 215); border-radius: 6px; }"
                           "QLabel { color: #e6e6e6; }")
        self.label = QtWidgets.QLabel("Computing")
        self.bar = QtWidgets.QProgressBar()
        self.bar.setRange(0, 0)
        self.bar.setFixedWidth(70)
        self.bar.setFixedHeight(8)
        self.bar.setTextVisible(False)
        self.button = QtWidgets.QPushButton("Cancel")
        self.button.setToolTip("Stop the computation (Esc); the previous result stays")
        self.button.clicked.connect(self.cancel_requested)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(10, 4, 4, 4)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.button)
        self.busy = False
        self._counting: tuple | None = None  # (the note's head, its start, its seconds, those after the step)
        self._tick = QtCore.QTimer(self)
        self._tick.setInterval(1000)
        self._tick.timeout.connect(self._count_down)
        self.hide()

    SHOW_AFTER_MS = 150  # quick runs (cached levels) never flash the indicator
    clock = staticmethod(time.monotonic)  # (tests set their own)

    def set_busy(self, busy: bool, text: str = "") -> None:
        if text or not busy:  # a new note: any count-down of the last one ends
            self._counting = None
            self._tick.stop()
            self.button.setEnabled(True)  # (a new run, or none: no longer cancelling)
            self.bar.show()
        if text:
            self.label.setText(text)
        self.busy = busy
        if not busy:
            self.hide()
        elif text and self.isVisible():  # a longer text ("… · step 3 of 11 · about 4 s left") is shown whole
            self.adjustSize()
            self.reposition()
        elif not self.isVisible():
            QtCore.QTimer.singleShot(self.SHOW_AFTER_MS, self._show_if_still_busy)

    def set_cancelling(self, text: str) -> None:
        """Its run was cancelled and ends its current step first: ``text`` ("Cancelling the
        prediction…"), a disabled Cancel and no busy bar (it moved on, as if the run worked on) until
        it has stopped (its next ``set_busy``)."""
        if not self.busy:
            return
        self._counting = None
        self._tick.stop()
        self.label.setText(text)
        self.button.setEnabled(False)
        self.bar.hide()
        if self.isVisible():
            self.adjustSize()
            self.reposition()

    def count_down(self, head: str, seconds: float, after: float | None = None) -> None:
        """The note is ``head`` and the time left, ``seconds`` from now, counted down each second
        (a prediction's last level is its longest: its note stayed at its first "about N s left"),
        never below ``after`` (the estimate of the steps after the one under way: a middle level
        that overran said "longer than estimated", then its next level a time left again; None:
        no step after it); then "under a second left", and "longer than estimated" once past it
        with no step after it (``qgn.progress.count_down_suffix``)."""
        if not self.busy:
            return
        self._counting = (head, self.clock(), seconds, after)
        self._count_down()
        self._tick.start()

    def _count_down(self) -> None:
        if self._counting is None or not self.busy:
            self._tick.stop()
            return
        head, start, seconds, after = self._counting
        text = head + count_down_suffix(seconds, self.clock() - start, after)
        if text != self.label.text():
            self.label.setText(text)
            if self.isVisible():
                self.adjustSize()
                self.reposition()

    def _show_if_still_busy(self) -> None:
        if self.busy and not self.isVisible():
            self.adjustSize()
            self.reposition()
            self.show()

    def reposition(self) -> None:
        parent = self.parentWidget()
        if parent is not None:
            self.move(parent.width() - self.width() - 12, 12)


class GraphicsView(pg.GraphicsView):
    """pyqtgraph's view plus Space-to-pan and focus-on-hover."""

    space_changed = QtCore.Signal(bool)
    resized = QtCore.Signal()

    def keyPressEvent(self, event):
        if event.key() == QtCore.Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self.space_changed.emit(True)
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event):
        if event.key() == QtCore.Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self.space_changed.emit(False)
            event.accept()
            return
        super().keyReleaseEvent(event)

    def enterEvent(self, event):
        window = self.window()
        if window is not None and window.isActiveWindow():
            self.setFocus(QtCore.Qt.FocusReason.MouseFocusReason)
        super().enterEvent(event)

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self.resized.emit()


class Canvas(QtWidgets.QWidget):
    """The image with its layers, a message banner and a busy indicator.

    Signals: ``hovered(x, y)`` in image pixels (NaN when the mouse leaves the image).
    """

    hovered = QtCore.Signal(float, float)
    cancel_requested = QtCore.Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.graphics = GraphicsView(background=BACKGROUND)
        self.graphics.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        self.view = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.02)
        self.graphics.setCentralItem(self.view)
        self.clip = ImageClip()
        self.view.addItem(self.clip)
        self.layers: dict[str, Layer] = make_layers(self.clip)
        self.layers.update({layer.key: layer for layer in make_annotation_layers(self.clip)})
        self.painter = PicturePainter(self)  # big pictures are made off the UI thread (layers.HEAVY_PIXELS)
        for layer in self.layers.values():
            layer.painter = self.painter
        self.banner = Banner()
        self.busy = BusyPill(self.graphics)
        self.busy.cancel_requested.connect(self.cancel_requested)
        self.placeholder = QtWidgets.QLabel(
            "Open images with Ctrl+O, a folder with Ctrl+Shift+O, or drop them here", self.graphics)
        self.placeholder.setStyleSheet("color: #9a9a9a; font-size: 15px;")
        self.placeholder.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        layout.addWidget(self.graphics, 1)
        self.graphics.scene().sigMouseMoved.connect(self._mouse_moved)
        self.graphics.space_changed.connect(self._space)
        self.graphics.resized.connect(self._place_overlays)
        self.view.sigTransformChanged.connect(self._zoom_changed)
        self.doc: ImageDocument | None = None
        self.result: RenderResult | None = None
        self.classes = None
        self.zoom_box = False
        self.space_held = False
        self.paint_cursor = False  # annotation mode: a crosshair over the image
        self._size: tuple[int, int] | None = None

    # ------------------------------------------------------------------ content
    def set_classes(self, classes) -> None:
        self.classes = classes
        self._update_layers()

    def show_document(self, doc: ImageDocument | None) -> None:
        """Show ``doc``'s image and the result it has (if any); fit when the size changed."""
        self.doc = doc
        self.result = doc.result if doc is not None else None
        size = doc.size if doc is not None else None
        self.placeholder.setVisible(doc is None)
        if size is not None:
            self.clip.setRect(0, 0, size[1], size[0])
            if size != self._size:
                self._size = size
                self.fit()
        self._update_layers()

    def show_result(self, result: RenderResult | None) -> None:
        """Replace the overlays with ``result`` (the previous one stays until this is called)."""
        self.result = result
        self._update_layers()

    def _update_layers(self) -> None:
        for layer in self.layers.values():
            layer.set_content(self.doc, self.result, self.classes)

    def pictures_pending(self) -> bool:
        """Whether a layer's picture is still being made off the UI thread."""
        return self.painter.pending()

    def stop(self, wait: bool = True) -> None:
        """Stop the picture thread (closing the window; ``wait``: and wait for it)."""
        self.painter.stop(wait)

    def refresh_layers(self, force: tuple[str, ...] = ()) -> None:
        """Let the layers pick up a changed document (e.g. a new annotation); ``force``d layers
        re-render even if what they show is the same object."""
        for key in force:
            self.layers[key]._shown = None
        self._update_layers()

    # ------------------------------------------------------------------ view
    def fit(self) -> None:
        if self._size is not None:
            h, w = self._size
            self.view.setRange(QtCore.QRectF(0, 0, w, h), padding=0.02)

    def actual_size(self) -> None:
        """One image pixel per screen pixel, centred on the current view centre."""
        rect = self.view.viewRect()
        screen = self.view.screenGeometry() if hasattr(self.view, "screenGeometry") else None
        width = self.view.width() if screen is None else screen.width()
        height = self.view.height() if screen is None else screen.height()
        c = rect.center()
        self.view.setRange(QtCore.QRectF(c.x() - width / 2, c.y() - height / 2, width, height), padding=0)

    def zoom(self, factor: float) -> None:
        self.view.scaleBy((1 / factor, 1 / factor))

    def set_zoom_box(self, enabled: bool) -> None:
        """Left-drag draws a zoom box (True) or pans (False)."""
        self.zoom_box = enabled
        self._apply_mouse_mode(space=False)

    def _space(self, held: bool) -> None:
        self.space_held = held
        self._apply_mouse_mode(space=held)

    def set_paint_cursor(self, on: bool) -> None:
        """Annotation mode: a crosshair (the brush cursor outlines the cell)."""
        self.paint_cursor = on
        self._apply_mouse_mode(space=self.space_held)

    def _apply_mouse_mode(self, space: bool) -> None:
        pan = space or not self.zoom_box
        self.view.setMouseMode(pg.ViewBox.PanMode if pan else pg.ViewBox.RectMode)
        if space:
            cursor = QtCore.Qt.CursorShape.OpenHandCursor
        elif self.paint_cursor:
            cursor = QtCore.Qt.CursorShape.CrossCursor
        else:
            cursor = QtCore.Qt.CursorShape.ArrowCursor
        self.graphics.viewport().setCursor(cursor)

    def screen_scale(self) -> float:
        """Screen pixels per image pixel."""
        size = self.view.viewPixelSize()[0]
        return 1.0 / size if size > 0 else 1.0

    def _zoom_changed(self, *_args) -> None:
        scale = self.screen_scale()
        for layer in self.layers.values():
            layer.set_scale(scale)

    def view_rect(self) -> QtCore.QRectF:
        return self.view.viewRect()

    # ------------------------------------------------------------------ overlays
    def set_busy(self, busy: bool, text: str = "") -> None:
        self.busy.set_busy(busy, text)

    def show_message(self, text: str, kind: str = "error", topic: str = "image") -> None:
        self.banner.show_message(text, kind, topic)

    def clear_message(self, topic: str | None = None) -> None:
        self.banner.clear(topic)

    def set_placeholder(self, text: str) -> None:
        self.placeholder.setText(text)

    def _place_overlays(self) -> None:
        self.placeholder.setGeometry(0, 0, self.graphics.width(), self.graphics.height())
        self.busy.reposition()

    def _mouse_moved(self, pos) -> None:
        if self._size is None:
            return
        point = self.view.mapSceneToView(pos)
        h, w = self._size
        x, y = point.x(), point.y()
        if 0 <= x < w and 0 <= y < h:
            self.hovered.emit(x, y)
        else:
            self.hovered.emit(math.nan, math.nan)
