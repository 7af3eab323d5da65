"""The layer list (visibility, opacity, options) and the legend of classes and colours."""
from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from qgn_studio.canvas import colours
from qgn_studio.canvas.layers import Layer, LevelLayer, UncertaintyLayer
from qgn_studio.document import LEVELS, RenderResult, human_count

SWATCH = 14


def swatch(rgb, hatch: bool = False) -> QtGui.QPixmap:
    pixmap = QtGui.QPixmap(SWATCH, SWATCH)
    pixmap.fill(QtGui.QColor(*rgb))
    painter = QtGui.QPainter(pixmap)
    if hatch:
        brush = QtGui.QBrush(QtGui.QColor(*colours.HATCH_RGBA), QtCore.Qt.BrushStyle.BDiagPattern)
        painter.fillRect(pixmap.rect(), brush)
    painter.setPen(QtGui.QColor(0, 0, 0, 120))
    painter.drawRect(0, 0, SWATCH - 1, SWATCH - 1)
    painter.end()
    return pixmap


def gradient_bar(name: str, width: int = 160, height: int = 10) -> QtGui.QPixmap:
    lut = colours.colormap_lut(name)
    row = lut[np.linspace(0, 255, width).astype(int)][None].repeat(height, axis=0)
    row = np.ascontiguousarray(row)
    image = QtGui.QImage(row.data, width, height, 4 * width, QtGui.QImage.Format.Format_RGBA8888)
    return QtGui.QPixmap.fromImage(image.copy())


KEY_SIZE = QtCore.QSize(72, 12)  # the keys drawn in the Layers list beside the Active sites and Uncertainty rows


def sites_key(size: QtCore.QSize = KEY_SIZE) -> QtGui.QPixmap:
    """The Active sites layer's colours, Q̂5 … Q̂0 left to right, each chip with its level's digit."""
    pixmap = QtGui.QPixmap(size)
    pixmap.fill(QtCore.Qt.GlobalColor.transparent)
    painter = QtGui.QPainter(pixmap)
    font = painter.font()
    font.setPixelSize(size.height() - 2)
    painter.setFont(font)
    width = size.width() / len(LEVELS)
    for i, level in enumerate(LEVELS):
        rect = QtCore.QRectF(i * width, 0, width - 1, size.height())
        painter.fillRect(rect, QtGui.QColor(*colours.level_colours()[level]))
        painter.setPen(QtGui.QColor("black" if level < 3 else "white"))
        painter.drawText(rect, int(QtCore.Qt.AlignmentFlag.AlignCenter), str(level))
    painter.end()
    return pixmap


def uncertainty_key(size: QtCore.QSize = KEY_SIZE) -> QtGui.QPixmap:
    """The Uncertainty layer's colour scale, 0 (certain) at the left … 1 (doubtful) at the right."""
    pixmap = QtGui.QPixmap(size)
    pixmap.fill(QtCore.Qt.GlobalColor.transparent)
    painter = QtGui.QPainter(pixmap)
    painter.drawPixmap(0, 1, gradient_bar(colours.UNCERTAINTY_COLORMAP, size.width(), size.height() - 2))
    font = painter.font()
    font.setPixelSize(size.height() - 2)
    painter.setFont(font)
    rect = QtCore.QRectF(2, 0, size.width() - 4, size.height())
    painter.setPen(QtGui.QColor("white"))
    painter.drawText(rect, int(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter), "0")
    painter.setPen(QtGui.QColor("black"))
    painter.drawText(rect, int(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter), "1")
    painter.end()
    return pixmap


class ElidedLabel(QtWidgets.QLabel):
    """A one-line name that gives way to a narrow column: drawn elided ("pedes…") rather than
    clipped by its scroll area, the whole name in its tooltip; ``text()`` stays the whole name."""

    def shown_text(self) -> str:
        """The text as drawn: the whole name, or elided to the label's width."""
        return self.fontMetrics().elidedText(self.text(), QtCore.Qt.TextElideMode.ElideRight,
                                             self.contentsRect().width())

    def minimumSizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt's name): never widens the legend
        return QtCore.QSize(self.fontMetrics().horizontalAdvance("…") * 3, super().minimumSizeHint().height())

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        shown = self.shown_text()
        if shown == self.text():
            super().paintEvent(event)
            return
        painter = QtGui.QPainter(self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawText(self.contentsRect(), int(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter),
                         shown)


class Legend(QtWidgets.QWidget):
    """Class colours and the composite hatching (the level colours and the uncertainty scale are
    keyed in the Layers list, beside their rows: ``LayerPanel._key_rows``)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.grid = QtWidgets.QGridLayout(self)
        self.grid.setContentsMargins(4, 2, 4, 2)
        self.grid.setHorizontalSpacing(6)
        self.grid.setVerticalSpacing(0)  # the labels keep their own leading
        self.set_classes(None)

    def _clear(self) -> None:
        while self.grid.count():
            widget = self.grid.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()

    def _row(self, row: int, col: int, pixmap: QtGui.QPixmap, text: str, tip: str = "") -> None:
        """A swatch right beside its name (one cell, so the columns' width never parts them)."""
        entry = QtWidgets.QWidget()
        line = QtWidgets.QHBoxLayout(entry)
        line.setContentsMargins(0, 0, 0, 0)
        line.setSpacing(5)
        icon = QtWidgets.QLabel()
        icon.setPixmap(pixmap)
        label = ElidedLabel(text)
        label.setToolTip(tip or text)  # (the whole name, where the column elides it)
        line.addWidget(icon)
        line.addWidget(label, 1)
        entry.setToolTip(tip)
        self.grid.addWidget(entry, row, col)

    def set_classes(self, classes) -> None:
        self._clear()
        if classes is None:
            self.grid.addWidget(QtWidgets.QLabel("No model loaded"), 0, 0, 1, 2)
            return
        entries = [(swatch(rgb), name, f"class {i}: {name}, RGB {rgb}")
                   for i, (name, rgb) in enumerate(zip(classes.names, classes.palette))]
        entries.append((swatch((40, 40, 40), hatch=True), "composite",
                        "Q̂l cells predicted composite: refined at the next level"))
        # down the first column, then the second (reading order); the composite follows the classes,
        # so an odd number of classes leaves no empty cell (a row less under the Layers list)
        rows = (len(entries) + 1) // 2
        for i, entry in enumerate(entries):
            self._row(i % rows, i // rows, *entry)


class FittingScroll(QtWidgets.QScrollArea):
    """A scroll area as tall as its content wants (asked again whenever the content's layout changes:
    a model's classes), which gives way, scrolling, when its layout has less room."""

    def setWidget(self, widget: QtWidgets.QWidget) -> None:  # noqa: N802 (Qt's name)
        super().setWidget(widget)
        widget.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QtCore.QEvent.Type.LayoutRequest:
            self.updateGeometry()
        return super().eventFilter(watched, event)

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt's name)
        widget = self.widget()
        if widget is None:
            return super().sizeHint()
        frame = 2 * self.frameWidth()
        return widget.sizeHint() + QtCore.QSize(frame, frame)


class LayerPanel(QtWidgets.QWidget):
    """napari-style layer list: a checkbox per layer, the selected layer's opacity and options."""

    visibility_changed = QtCore.Signal(str, bool)
    opacity_changed = QtCore.Signal(str, float)
    measure_changed = QtCore.Signal(str)

    def __init__(self, layers: dict[str, Layer], parent=None):
        super().__init__(parent)
        self.layers = layers
        self._make_tree()
        self._make_controls()
        self._lay_out()
        self._fit_to_the_dock()
        self.tree.setCurrentItem(self.items["prediction"])

    def _make_tree(self) -> None:
        """The list of layers: a row per layer (``_build``), its checkbox and selection followed."""
        self.tree = QtWidgets.QTreeWidget()
        self.tree.setColumnCount(2)
        self.tree.setHeaderHidden(True)
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.tree.setIndentation(12)  # (20 by default) the level rows' site counts fit at 1280×800
        self.tree.header().setStretchLastSection(True)
        self.tree.setIconSize(KEY_SIZE)  # (only the keys have icons: column 1 of two rows)
        self.items: dict[str, QtWidgets.QTreeWidgetItem] = {}
        self._shown: dict[str, tuple] = {}  # what refresh last set on each row
        self._measured = False  # refresh has sized the first column
        self._names_width = 0  # the first column's width at its contents (``_measure``)
        self._build()
        self.tree.viewport().installEventFilter(self)  # a narrower list: the names give way, not the keys
        self.tree.itemChanged.connect(self._item_changed)
        self.tree.currentItemChanged.connect(self._selection_changed)

    def _make_controls(self) -> None:
        """The selected layer's opacity slider, the Uncertainty layer's measure, and the legend."""
        self.opacity = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.valueChanged.connect(self._opacity_moved)
        self.opacity.setToolTip("How opaque the layer selected in the list above is drawn (0–100 %)")
        self.opacity_label = QtWidgets.QLabel("Opacity")
        self.measure = QtWidgets.QComboBox()
        for key, text in UncertaintyLayer.MEASURES.items():
            self.measure.addItem(text, key)
        self.measure.currentIndexChanged.connect(self._measure_chosen)
        self.measure.setToolTip("What the Uncertainty layer shows: the entropy of the prediction, or the "
                                "probability that a cell is composite (refined at the next level)")
        self.measure_row = QtWidgets.QWidget()
        row = QtWidgets.QHBoxLayout(self.measure_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QtWidgets.QLabel("Shows"))
        row.addWidget(self.measure, 1)
        self.legend = Legend()

    def _lay_out(self) -> None:
        """The list above the opacity and measure rows, the legend in its own scroll area below."""
        form = QtWidgets.QHBoxLayout()
        form.addWidget(self.opacity_label)
        form.addWidget(self.opacity, 1)
        # compact (tight margins and spacing, the fonts unchanged): at 1280×800 every row of the list
        # shows without scrolling, the decoder levels expanded, under an Images list of four rows
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.setSpacing(2)
        layout.addWidget(self.tree)
        layout.addLayout(form)
        layout.addWidget(self.measure_row)
        # the legend keys the canvas's prediction layers (the model's classes, its composite cells, the
        # levels and the uncertainty scale), never the annotation's classes, which the Annotate panel's
        # class list shows: its title says so, so a class merged away in the annotation but still
        # predicted by the model (and drawn in the prediction) is not taken for a stale entry
        legend_box = self.legend_box = QtWidgets.QGroupBox("Prediction legend")
        legend_box.setToolTip("The colours of the model's prediction layers. The annotation's own classes "
                              "(after a merge, add or rename) are in the Annotate panel's class list.")
        legend_layout = QtWidgets.QVBoxLayout(legend_box)
        legend_layout.setContentsMargins(2, 0, 2, 0)
        legend_layout.addWidget(self.legend)
        # the Layers list has priority: it keeps the height of all its rows, and the legend, in its own
        # scroll area, gives way when the dock is short (an 11-class legend at 1280×800)
        self.legend_scroll = FittingScroll()
        self.legend_scroll.setWidget(legend_box)
        self.legend_scroll.setWidgetResizable(True)
        self.legend_scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.legend_scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.legend_scroll.setSizePolicy(QtWidgets.QSizePolicy.Policy.Preferred,
                                         QtWidgets.QSizePolicy.Policy.Preferred)
        layout.addWidget(self.legend_scroll)
        layout.addStretch(1)  # a tall dock's room goes below the legend

    def _fit_to_the_dock(self) -> None:
        """The list keeps the height of its rows; a short dock folds the decoder levels (``_fit_levels``)."""
        self.tree.expanded.connect(self._fit_tree)
        self.tree.collapsed.connect(self._fit_tree)
        self._fit_tree()
        # a short dock (1280×720) folds the decoder levels' rows, so that the legend shows whole
        # (camvid's scrolled 32 px); the user's own fold or unfold is kept (``_fit_levels``)
        self._levels_folding = False  # (the panel's own fold under way)
        self.levels_chosen = False  # the user folded or unfolded the levels: never again by the panel
        self.tree.itemExpanded.connect(self._levels_toggled)
        self.tree.itemCollapsed.connect(self._levels_toggled)
        self._levels_timer = QtCore.QTimer(self)
        self._levels_timer.setSingleShot(True)
        self._levels_timer.setInterval(0)
        self._levels_timer.timeout.connect(self._fit_levels)
        self.legend_scroll.verticalScrollBar().rangeChanged.connect(lambda *_args: self._levels_timer.start())

    def _levels_toggled(self, item) -> None:
        if item is getattr(self, "group", None) and not self._levels_folding:
            self.levels_chosen = True

    def _fit_levels(self) -> None:
        """The decoder levels' rows folded while the legend lacks room, unfolded once there is
        room for them under a whole legend - unless the user folded or unfolded them."""
        group = getattr(self, "group", None)
        if group is None or self.levels_chosen or not self.isVisible():
            return
        lacking = self.legend_scroll.verticalScrollBar().maximum()
        stretch = self.layout().itemAt(self.layout().count() - 1)  # (the room below the legend)
        spare = stretch.geometry().height() if stretch is not None else 0
        rows = group.childCount() * max(self.tree.sizeHintForRow(0), 1)
        fold = group.isExpanded() and lacking > 0
        unfold = not group.isExpanded() and spare >= rows
        if fold or unfold:
            self._levels_folding = True
            try:
                group.setExpanded(unfold)
            finally:
                self._levels_folding = False

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._levels_timer.start()

    def _fit_tree(self, *_args) -> None:
        """The list's height shows every row it has expanded, without scrolling."""
        count, item = 0, self.tree.topLevelItem(0)
        while item is not None:
            count += 1
            item = self.tree.itemBelow(item)
        row = self.tree.sizeHintForRow(0) if count else 0
        self.tree.setFixedHeight(count * max(row, 1) + 2 * self.tree.frameWidth())

    def _build(self) -> None:
        group = None
        for key, layer in self.layers.items():
            if isinstance(layer, LevelLayer) and group is None:
                group = QtWidgets.QTreeWidgetItem(self.tree, ["Decoder levels Q̂5 … Q̂0", ""])
                flags = QtCore.Qt.ItemFlag.ItemIsAutoTristate | QtCore.Qt.ItemFlag.ItemIsUserCheckable
                group.setFlags(group.flags() | flags)
                group.setToolTip(0, "Each level of the quadtree the decoder predicts, as its own layer")
                self.group = group
            parent = group if isinstance(layer, LevelLayer) else self.tree
            item = QtWidgets.QTreeWidgetItem(parent, [layer.title, ""])
            item.setFlags(item.flags() | QtCore.Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(0, QtCore.Qt.CheckState.Checked if layer.visible else QtCore.Qt.CheckState.Unchecked)
            # the name first: a narrowed dock elides it ("Anno…" for both annotation layers)
            item.setToolTip(0, f"{layer.title}: {layer.tooltip}" if layer.tooltip else layer.title)
            item.setData(0, QtCore.Qt.ItemDataRole.UserRole, key)
            self.items[key] = item
        self.tree.expandAll()
        self._measure()
        self._key_rows()

    def _measure(self) -> None:
        """The names' column at the width of its contents, as far as the second one keeps room for
        its widest text (a site count of three digits) or key: a narrower dock elides the names
        (the keys and counts went past the list's edge - at 200 px 5 px of the 72 of a key showed,
        none at the dock's least, 166 px)."""
        self.tree.resizeColumnToContents(0)
        self._names_width = self.tree.columnWidth(0)
        self._fit_columns()

    def _fit_columns(self) -> None:
        tree = self.tree
        # (the delegate draws an item's icon or text this far in from its left: the style's text margin)
        inset = tree.style().pixelMetric(QtWidgets.QStyle.PixelMetric.PM_FocusFrameHMargin) + 1
        second = max(tree.fontMetrics().horizontalAdvance("8.88 k sites"), KEY_SIZE.width()) + inset
        width = max(min(self._names_width, tree.viewport().width() - second), 1)
        if width != tree.columnWidth(0):
            tree.setColumnWidth(0, width)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QtCore.QEvent.Type.Resize and watched is self.tree.viewport():
            self._fit_columns()
        return super().eventFilter(watched, event)

    def _key_rows(self) -> None:
        """The level colours and the uncertainty scale beside their rows, in the column the level
        rows count their sites in: two rows less in the legend under the list (with camvid's eleven
        classes it scrolled its last row at 1280×800, three at 1280×720)."""
        keys = {"sites": (sites_key(), "Colour of the finest level computed at each place: Q̂5 … Q̂0"),
                "uncertainty": (uncertainty_key(), "Uncertainty: 0 (certain) … 1 (doubtful)")}
        for key, (pixmap, tip) in keys.items():
            item = self.items.get(key)
            if item is not None:
                item.setIcon(1, QtGui.QIcon(pixmap))
                item.setToolTip(1, tip)

    def _item_changed(self, item: QtWidgets.QTreeWidgetItem, column: int) -> None:
        key = item.data(0, QtCore.Qt.ItemDataRole.UserRole)
        if key is None or column != 0:
            return
        visible = item.checkState(0) == QtCore.Qt.CheckState.Checked
        if self.layers[key].visible != visible:
            self.visibility_changed.emit(key, visible)

    def _selection_changed(self, item, _previous) -> None:
        key = None if item is None else item.data(0, QtCore.Qt.ItemDataRole.UserRole)
        self.opacity.setEnabled(key is not None)
        if key is not None:
            self.opacity.blockSignals(True)
            self.opacity.setValue(round(self.layers[key].opacity * 100))
            self.opacity.blockSignals(False)
            self.opacity_label.setText(f"Opacity of {self.layers[key].title.split('  ')[0]}")
        self.measure_row.setVisible(key == "uncertainty")

    def _measure_chosen(self, _index: int) -> None:
        self.measure_changed.emit(self.measure.currentData())

    def _opacity_moved(self, value: int) -> None:
        item = self.tree.currentItem()
        key = None if item is None else item.data(0, QtCore.Qt.ItemDataRole.UserRole)
        if key is not None:
            self.opacity_changed.emit(key, value / 100)

    def current_key(self) -> str | None:
        item = self.tree.currentItem()
        return None if item is None else item.data(0, QtCore.Qt.ItemDataRole.UserRole)

    def select(self, key: str) -> None:
        self.tree.setCurrentItem(self.items[key])

    def set_visible(self, key: str, visible: bool) -> None:
        """Mirror a visibility change made elsewhere (shortcut, settings)."""
        state = QtCore.Qt.CheckState.Checked if visible else QtCore.Qt.CheckState.Unchecked
        self.items[key].setCheckState(0, state)

    def set_measure(self, measure: str) -> None:
        index = self.measure.findData(measure)
        if index >= 0:
            self.measure.setCurrentIndex(index)

    def refresh(self, result: RenderResult | None) -> None:
        """Grey out layers with nothing to show; the level rows show their active sites.

        Only the rows whose look changed are set, and the first column is measured again only when
        a text in it changed: pressing A refreshes an unchanged list while the annotation build runs
        on the job thread, and each Qt call here lets that thread take the interpreter lock (up to the
        5-ms switch interval before the UI thread has it back; ~40 calls a refresh and a measure of
        every row before)."""
        widened = False
        for key, item in self.items.items():
            layer = self.layers[key]
            row: tuple = (layer.available(),)
            if isinstance(layer, LevelLayer):
                from qgn_studio.document import cell_size_text

                view = None if result is None else result.levels.get(layer.level)
                row += (f"Q̂{layer.level}  · {cell_size_text(layer.level, result).split('×')[0]} px cells",
                        "–" if view is None else f"{human_count(view.num_sites)} sites",
                        "not computed at this depth" if view is None else "active sites computed at this level")
            before = self._shown.get(key)
            if before == row:
                continue
            self._shown[key] = row
            if before is None or before[0] != row[0]:
                item.setForeground(0, QtGui.QBrush(QtGui.QColor("#e6e6e6" if row[0] else "#777777")))
            if len(row) > 1:
                if before is None or before[1] != row[1]:
                    item.setText(0, row[1])
                    widened = True
                item.setText(1, row[2])
                item.setToolTip(1, row[3])
                item.setForeground(1, QtGui.QBrush(QtGui.QColor("#9a9a9a")))
        if widened or not self._measured:
            self._measured = True
            self._measure()
