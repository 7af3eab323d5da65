"""Live exploration: depth and propagation controls, what the setting costs, accuracy vs compute.

Every figure shown comes from qgn (``Cost``, ``ConfusionMatrix``) through the RenderResult and
CurvePoints; this panel only formats them.
"""
from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from qgn_studio.document import LEVELS, SCHEME_CHOICES, CurvePoint, RenderResult, SchemeChoice, human_bytes, human_count

#: A sweep's curve points arrive a few ms apart and each redraw of the plot takes 10-40 ms of the UI
#: thread: the curve is redrawn at most this often (the first change at once, those that follow
#: within the interval together at its end).
CURVE_INTERVAL_MS = 150
CURRENT_COLOUR = "#4fc3f7"
FAMILY_STYLES = {  # scheme → (colour, symbol, dashed)
    "all": ("#b0b0b0", "s", True),
    "pc": ("#ffb74d", "o", False),
    "pc_tau": ("#ba68c8", "t", False),
    "uncertainty": ("#81c784", "d", False),
    "gtc": ("#e57373", "p", False),
}


def percent(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.1f} %"


class LabeledSlider(QtWidgets.QWidget):
    """A 0..1 slider in steps of 0.01 with its value shown beside it."""

    value_changed = QtCore.Signal(float)

    def __init__(self, value: float, parent=None):
        super().__init__(parent)
        self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.setValue(round(value * 100))
        self.slider.setPageStep(10)
        self.label = QtWidgets.QLabel(f"{value:.2f}")
        self.label.setMinimumWidth(34)
        self.slider.valueChanged.connect(self._moved)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.label)

    def value(self) -> float:
        return self.slider.value() / 100

    def set_value(self, value: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(round(value * 100))
        self.slider.blockSignals(False)
        self.label.setText(f"{value:.2f}")

    def _moved(self, raw: int) -> None:
        self.label.setText(f"{raw / 100:.2f}")
        self.value_changed.emit(raw / 100)


class DepthSlider(QtWidgets.QWidget):
    """Q5 (left, coarse) … Q0 (right, pixels)."""

    depth_changed = QtCore.Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.slider.setRange(0, 5)
        self.slider.setInvertedAppearance(True)
        self.slider.setInvertedControls(True)
        self.slider.setTickPosition(QtWidgets.QSlider.TickPosition.TicksBelow)
        self.slider.setPageStep(1)
        self.slider.valueChanged.connect(self.depth_changed)
        ticks = QtWidgets.QHBoxLayout()
        ticks.setContentsMargins(0, 0, 0, 0)
        for i, level in enumerate(LEVELS):
            label = QtWidgets.QLabel(f"Q{level}")
            label.setStyleSheet("color: #9a9a9a; font-size: 11px;")
            ticks.addWidget(label)
            if i < len(LEVELS) - 1:
                ticks.addStretch(1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.slider)
        layout.addLayout(ticks)

    def value(self) -> int:
        return self.slider.value()

    def set_value(self, depth: int, signal: bool = True) -> None:
        self.slider.blockSignals(not signal)
        self.slider.setValue(depth)
        self.slider.blockSignals(False)


class CostTable(QtWidgets.QTableWidget):
    """Per level: active sites, decoder MACs, milliseconds."""

    HEADERS = ("Level", "Active sites", "MACs", "ms")

    def __init__(self, parent=None):
        super().__init__(len(LEVELS), len(self.HEADERS), parent)
        self.setHorizontalHeaderLabels(self.HEADERS)
        self.verticalHeader().hide()
        self.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Stretch)
        for row, level in enumerate(LEVELS):
            self._set(row, 0, f"Q̂{level}", QtCore.Qt.AlignmentFlag.AlignLeft)
        self.verticalHeader().setDefaultSectionSize(20)
        self.setFixedHeight(22 + 20 * len(LEVELS) + 4)

    def _set(self, row: int, col: int, text: str, align=QtCore.Qt.AlignmentFlag.AlignRight) -> None:
        item = self.item(row, col)
        if item is None:
            item = QtWidgets.QTableWidgetItem()
            item.setTextAlignment(align | QtCore.Qt.AlignmentFlag.AlignVCenter)
            self.setItem(row, col, item)
        item.setText(text)

    def show_cost(self, cost) -> None:
        for row, level in enumerate(LEVELS):
            if cost is None or level not in cost.active_sites:
                values = ("–", "–", "–")
            else:
                values = (f"{cost.active_sites[level]:,}", human_count(cost.decoder_macs[level]),
                          f"{1000 * cost.decoder_seconds[level]:.1f}")
            for col, text in enumerate(values, start=1):
                self._set(row, col, text)


class CurvePlot(pg.PlotWidget):
    """Accuracy (mIoU or pixel accuracy) against decoder MACs, one curve per setting family."""

    def __init__(self, parent=None):
        super().__init__(parent, background="#1e1f22")
        self.setLogMode(x=True, y=False)
        self.setLabel("bottom", "decoder MACs")
        self.getAxis("bottom").enableAutoSIPrefix(False)
        # only the decades get numbers (2·10^n … 9·10^n ran together), and no label overlaps another
        self.getAxis("bottom").setStyle(maxTextLevel=0, hideOverlappingLabels=True)
        self.setLabel("left", "mIoU", units="%")
        self.showGrid(x=True, y=True, alpha=0.2)
        self.setMinimumHeight(170)
        self.getPlotItem().setMenuEnabled(False)
        self.legend = self.addLegend(offset=(8, 8), labelTextSize="8pt", brush=(30, 31, 34, 180))
        self.metric = "miou"
        self.current = pg.ScatterPlotItem(size=18, symbol="star", brush=pg.mkBrush(CURRENT_COLOUR),
                                          pen=pg.mkPen("w", width=1))
        self.current.setZValue(10)
        self.addItem(self.current)
        self._families: dict[tuple, pg.PlotDataItem] = {}  # one item per setting family, kept
        self._legend_labels: dict[tuple, object] = {}
        self._depth_labels: list[pg.TextItem] = []  # "Q3" beside the current family's points, reused
        self._data_signature: tuple | None = None
        self._style_signature: tuple | None = None

    def set_metric(self, metric: str) -> None:
        self.metric = metric
        self.setLabel("left", "mIoU" if metric == "miou" else "pixel accuracy", units="%")

    def show_points(self, points: list[CurvePoint], current: SchemeChoice, result: RenderResult | None) -> None:
        """Update the curves when the points changed, restyle them when the current family
        changed (items are kept and restyled, not rebuilt: a scheme change stays well under a
        frame); always move the star."""
        data_signature = (len(points), self.metric, id(points[-1]) if points else None)
        style_signature = (data_signature, current.family())
        if data_signature != self._data_signature:
            self._data_signature = data_signature
            self._update_data(points)
        if style_signature != self._style_signature:
            self._style_signature = style_signature
            self._restyle(points, current)
        self._show_current(result)

    @staticmethod
    def _by_family(points: list[CurvePoint]) -> dict[tuple, list[CurvePoint]]:
        families: dict[tuple, list[CurvePoint]] = {}
        for p in points:
            families.setdefault(p.setting.family(), []).append(p)
        for members in families.values():
            members.sort(key=lambda p: -p.setting.depth)
        return families

    def _update_data(self, points: list[CurvePoint]) -> None:
        families = self._by_family(points)
        for family in [f for f in self._families if f not in families]:
            self.removeItem(self._families.pop(family))
        for family, members in families.items():
            xs = [max(p.decoder_macs, 1) for p in members]
            ys = [100 * self._value(p) for p in members]
            item = self._families.get(family)
            if item is None:
                item = self._families[family] = self.plot(xs, ys)
            else:
                item.setData(xs, ys)
        self.enableAutoRange(x=True, y=True)
        self.getViewBox().updateAutoRange()
        self.disableAutoRange()  # moving the star must not rescale (nor cost a relayout)

    def _restyle(self, points: list[CurvePoint], current: SchemeChoice) -> None:
        families = self._by_family(points)
        current_family = current.family()
        names: dict[tuple, str] = {}
        tau_labelled = False
        for family, members in families.items():
            scheme = members[0].setting.scheme
            is_current = family == current_family
            colour, symbol, dashed = FAMILY_STYLES[scheme]
            name = members[0].setting.describe().rsplit(",", 1)[0]
            if is_current:
                colour, name = CURRENT_COLOUR, f"{name} (current)"
            elif scheme == "pc_tau":
                name, tau_labelled = (None, True) if tau_labelled else ("τ sweep", True)
            if name:
                names[family] = name
            item = self._families[family]
            # set every style option, then let the item redraw once (its setters redraw each)
            item.opts.update(pen=pg.mkPen(colour, width=2.5 if is_current else 1.2,
                                          style=QtCore.Qt.PenStyle.DashLine if dashed else QtCore.Qt.PenStyle.SolidLine),
                             symbol=symbol, symbolSize=7 if is_current else 5, symbolBrush=colour, symbolPen=None)
            item.updateItems(styleUpdate=True)
            item.setZValue(5 if is_current else 0)
        self._update_legend(names)
        self._label_depths(families.get(current_family, []))
        self._leave_room_for_the_legend()

    def _update_legend(self, names: dict[tuple, str]) -> None:
        """Legend entries in a fixed order; when only names change (a scheme change), relabel them."""
        if list(names) != list(self._legend_labels):
            self.legend.clear()
            self._legend_labels = {}
            for family, name in names.items():
                self.legend.addItem(self._families[family], name)
                self._legend_labels[family] = (self.legend.items[-1][1], name)
            return
        for family, name in names.items():
            label, shown = self._legend_labels[family]
            if shown != name:
                label.setText(name)
                self._legend_labels[family] = (label, name)
        self.legend.update()

    def _label_depths(self, members: list[CurvePoint]) -> None:
        while len(self._depth_labels) < len(members):
            text = pg.TextItem("", color="#9fb0b8", anchor=(-0.15, 1.0))  # up right of its point
            font = QtGui.QFont()
            font.setPointSize(7)
            text.setFont(font)
            self.addItem(text)
            self._depth_labels.append(text)
        for i, text in enumerate(self._depth_labels):
            if i < len(members):
                p = members[i]
                text.setText(f"Q{p.setting.depth}")
                text.setPos(math.log10(max(p.decoder_macs, 1)), 100 * self._value(p))
                text.show()
            else:
                text.hide()

    def _leave_room_for_the_legend(self) -> None:
        """Headroom above the highest point, so the legend (top left) covers no curve."""
        (_x0, _x1), (y0, y1) = self.getViewBox().viewRange()
        rows = len(self.legend.items)
        top = y1
        if rows:
            span = max(y1 - y0, 1e-6)
            top = y1 + span * min(0.12 * rows + 0.1, 0.8)
        top = min(top, 100.0)  # an accuracy never exceeds 100 %: neither does the axis
        self.setYRange(max(min(y0, top - 1.0), 0.0), top, padding=0)

    def _value(self, p) -> float:
        return p.miou if self.metric == "miou" else p.accuracy

    def _show_current(self, result: RenderResult | None) -> None:
        if result is None or result.metrics is None:
            self.current.setData([], [])
            return
        value = result.metrics["miou" if self.metric == "miou" else "accuracy"]
        self.current.setData([math.log10(max(result.cost.total_decoder_macs, 1))], [100 * value])


SCHEME_KEYS = {"all": "Alt+A", "pc": "Alt+C", "pc_tau": "Alt+T", "uncertainty": "Alt+U", "gtc": "Alt+G"}
SCHEME_TIPS = {  # propagation scheme → its radio button's tooltip (its key, SCHEME_KEYS, added)
    "all": "Every site goes on: the dense decoder (most compute)",
    "pc": "Refine the cells predicted composite (argmax is class 0)",
    "pc_tau": "Refine the cells with P(composite) ≥ τ",
    "uncertainty": "PC, plus the cells whose prediction entropy exceeds the threshold",
    "gtc": "Refine the cells composite in the ground truth (an upper bound; needs ground truth)",
}


class ExplorePanel(QtWidgets.QWidget):
    """The controls and readouts of the explore dock; emits ``setting_changed(SchemeChoice)``."""

    setting_changed = QtCore.Signal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        # Built in this order (widgets first, then the boxes that hold them) so the tab order is unchanged.
        self._build_depth()
        scheme_box = self._build_schemes()
        self._build_thresholds()
        controls = self._settings_form(scheme_box)
        self._build_readouts()
        cost_box = self._cost_box()
        self.accuracy_box = self._accuracy_box()

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(controls)
        layout.addWidget(cost_box)
        layout.addWidget(self.accuracy_box, 1)
        self._result: RenderResult | None = None
        self._points: list[CurvePoint] = []
        self._curve_timer = QtCore.QTimer(self)
        self._curve_timer.setSingleShot(True)
        self._curve_timer.setInterval(CURVE_INTERVAL_MS)
        self._curve_timer.timeout.connect(self._draw_pending_curve)
        self._curve_pending: SchemeChoice | None = None  # the setting of a change not drawn yet
        self.set_setting(SchemeChoice())
        self.set_truth_available(False)
        self.show_result(None, None)  # no image yet: say what fills the readouts, no empty plot

    # ------------------------------------------------------------------ construction
    def _build_depth(self) -> None:
        self.depth = DepthSlider()
        self.depth.setToolTip("Depth: the finest level computed, Q5 (32-px cells) … Q0 (pixels). "
                              "Keys 5 … 0 and [ / ], or Alt+[ / Alt+] (these also while annotating)")
        self.depth.depth_changed.connect(self._changed)
        self.depth_text = QtWidgets.QLabel()
        self.depth_text.setStyleSheet("color: #9a9a9a; font-size: 11px;")  # once: a restyle costs a polish

    def _build_schemes(self) -> QtWidgets.QGridLayout:
        """One radio button per propagation scheme of ``SCHEME_CHOICES``, two to a row; PC chosen."""
        self.schemes = QtWidgets.QButtonGroup(self)
        scheme_box = QtWidgets.QGridLayout()
        scheme_box.setContentsMargins(0, 0, 0, 0)
        self.scheme_buttons: dict[str, QtWidgets.QRadioButton] = {}
        for i, (scheme, (text, _)) in enumerate(SCHEME_CHOICES.items()):
            button = QtWidgets.QRadioButton(text)
            button.setToolTip(f"{SCHEME_TIPS[scheme]} ({SCHEME_KEYS[scheme]})")
            self.schemes.addButton(button, i)
            self.scheme_buttons[scheme] = button
            scheme_box.addWidget(button, i // 2, i % 2)
        self.scheme_buttons["pc"].setChecked(True)
        self.schemes.idToggled.connect(self._scheme_toggled)
        return scheme_box

    def _build_thresholds(self) -> None:
        """The τ slider (PC, threshold τ) and the entropy slider (Uncertainty)."""
        self.tau = LabeledSlider(0.5)
        self.tau.setToolTip("τ: a cell is refined when P(composite) ≥ τ (0 → All, 1 → nothing)")
        self.tau.value_changed.connect(lambda _v: self._threshold_moved("pc_tau"))
        self.entropy = LabeledSlider(0.5)
        self.entropy.setToolTip("Uncertainty scheme: also refine cells whose normalised entropy exceeds this")
        self.entropy.value_changed.connect(lambda _v: self._threshold_moved("uncertainty"))

    def _settings_form(self, scheme_box: QtWidgets.QGridLayout) -> QtWidgets.QFormLayout:
        """Depth, propagation scheme, τ and entropy, one labelled row each."""
        controls = QtWidgets.QFormLayout()
        controls.setLabelAlignment(QtCore.Qt.AlignmentFlag.AlignRight)
        depth_row = QtWidgets.QVBoxLayout()
        depth_row.setSpacing(0)
        depth_row.addWidget(self.depth)
        depth_row.addWidget(self.depth_text)
        controls.addRow("Depth", depth_row)
        controls.addRow("Propagation", scheme_box)
        controls.addRow("τ", self.tau)
        controls.addRow("Entropy >", self.entropy)
        return controls

    def _build_readouts(self) -> None:
        """The cost table and summary, the accuracy line, the metric choice, the curve and its progress line."""
        self.table = CostTable()
        self.summary = QtWidgets.QLabel("No result yet")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.metrics = QtWidgets.QLabel("")  # what it says before any result: show_result(None) in __init__
        self.metrics.setWordWrap(True)
        self.metrics.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.metric_choice = QtWidgets.QComboBox()
        self.metric_choice.addItem("mIoU", "miou")
        self.metric_choice.addItem("pixel accuracy", "accuracy")
        self.metric_choice.setToolTip("The score plotted against compute: mIoU or pixel accuracy")
        self.plot = CurvePlot()
        self.metric_choice.currentIndexChanged.connect(self._metric_changed)
        self.measuring = QtWidgets.QLabel("")
        self.measuring.setStyleSheet("color: #9a9a9a;")

    def _cost_box(self) -> QtWidgets.QGroupBox:
        """"What this setting costs": the per-level table and the summary under it."""
        cost_box = QtWidgets.QGroupBox("What this setting costs")
        cost_layout = QtWidgets.QVBoxLayout(cost_box)
        cost_layout.addWidget(self.table)
        cost_layout.addWidget(self.summary)
        return cost_box

    def _accuracy_box(self) -> QtWidgets.QGroupBox:
        """"Accuracy against compute": the scores and metric choice, the curve, and what is being measured."""
        accuracy_box = QtWidgets.QGroupBox("Accuracy against compute")
        accuracy_layout = QtWidgets.QVBoxLayout(accuracy_box)
        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.metrics, 1)
        top.addWidget(self.metric_choice)
        accuracy_layout.addLayout(top)
        accuracy_layout.addWidget(self.plot, 1)
        accuracy_layout.addWidget(self.measuring)
        return accuracy_box

    # ------------------------------------------------------------------ setting
    def setting(self) -> SchemeChoice:
        scheme = next(r for r, b in self.scheme_buttons.items() if b.isChecked())
        return SchemeChoice(scheme, self.tau.value(), self.entropy.value(), self.depth.value())

    def set_setting(self, setting: SchemeChoice) -> None:
        """Show ``setting`` without emitting ``setting_changed``."""
        self.blockSignals(True)
        self.depth.set_value(setting.depth, signal=False)
        self.scheme_buttons[setting.scheme].setChecked(True)
        self.tau.set_value(setting.tau)
        self.entropy.set_value(setting.entropy)
        self.blockSignals(False)
        self._update_controls()

    def set_depth(self, depth: int) -> None:
        self.depth.set_value(depth)

    def set_scheme(self, scheme: str) -> None:
        self.scheme_buttons[scheme].setChecked(True)

    def _scheme_toggled(self, _id: int, on: bool) -> None:
        if on:
            self._changed()

    def _threshold_moved(self, scheme: str) -> None:
        if not self.scheme_buttons[scheme].isChecked():
            self.scheme_buttons[scheme].setChecked(True)  # moving τ selects "PC, threshold τ"
        else:
            self._changed()

    def _changed(self, *_args) -> None:
        self._update_controls()
        self.setting_changed.emit(self.setting())

    def _update_controls(self) -> None:
        from qgn_studio.document import cell_size_text

        depth = self.depth.value()
        result = getattr(self, "_result", None)
        scaled = result is not None and tuple(result.grid_size) != tuple(result.size)
        if depth or scaled:
            self.depth_text.setText(f"Q{depth}: cells of {cell_size_text(depth, result)} on the image")
        else:
            self.depth_text.setText("Q0: down to single pixels")

    def set_truth_available(self, available: bool) -> None:
        button = self.scheme_buttons["gtc"]
        button.setEnabled(available)
        tip = button.toolTip().split(" (no ground")[0]
        button.setToolTip(tip if available else tip + " (no ground truth for this image)")
        if not available and button.isChecked():
            self.scheme_buttons["pc"].setChecked(True)

    # ------------------------------------------------------------------ readouts
    def show_result(self, result: RenderResult | None, reference_macs: int | None) -> None:
        self._result = result
        self._update_controls()  # cell sizes on the image follow the model's working scale
        cost = None if result is None else result.cost
        self.table.show_cost(cost)
        if result is None:
            self.summary.setText("No result yet")
            self.metrics.setText("<span style='color:#9a9a9a'>Accuracy shows once an image with ground truth "
                                 "has a result</span>")
            self.plot._show_current(None)
            self.plot.setVisible(False)
            self.metric_choice.setVisible(False)
            return
        self.summary.setText(self._summary(result, reference_macs))
        if result.metrics is None:
            note = getattr(result, "truth_note", None)
            self.metrics.setText("<span style='color:#9a9a9a'>" + (
                "No accuracy: the ground truth does not fit this model's classes (see the banner)"
                if note else "No ground truth for this image") + "</span>")
        else:
            m = result.metrics
            self.metrics.setText(f"mIoU <b>{percent(m['miou'])}</b> &nbsp; accuracy <b>{percent(m['accuracy'])}</b>")
        self.plot._show_current(result)
        has_truth = result.metrics is not None
        self.plot.setVisible(has_truth)
        self.metric_choice.setVisible(has_truth)

    def show_not_computed(self) -> None:
        """The image shown has no result because its prediction was cancelled (Esc): the controls
        still name the setting cancelled (the next one asked for), and said "No result yet" over
        it as if it were coming."""
        self.show_result(None, None)
        self.summary.setText("Not computed: its prediction was cancelled. Move a control to compute one")

    @staticmethod
    def _summary(result: RenderResult, reference_macs: int | None) -> str:
        cost = result.cost
        decoder = cost.total_decoder_macs
        if reference_macs:
            relative = f"<b>{100 * decoder / reference_macs:.1f} %</b> of All at this depth"
        else:
            relative = "<span style='color:#9a9a9a'>… % of All (measuring)</span>"
        decoder_ms = 1000 * sum(cost.decoder_seconds.values())
        lines = [
            f"Decoder <b>{human_count(decoder)}</b> MACs = {relative}",
            f"With the encoder: {human_count(cost.total_macs)} MACs",
            f"Time <b>{1000 * cost.seconds:.0f} ms</b> (encoder {1000 * cost.encoder_seconds:.0f} ms, "
            f"decoder {decoder_ms:.1f} ms) on {result.device}",
        ]
        if result.activation_bytes is not None:
            lines.append(f"Decoder activations <b>{human_bytes(result.activation_bytes)}</b>")
        if result.grid_size != tuple(result.size):
            (h, w), (H, W) = result.grid_size, result.size
            lines.append(f"Model resolution <b>{w}×{h}</b> (image {W}×{H}, ×{w / W:.2f}): "
                         f"cells are {W / w:.2g}× larger on the image")
        return "<br>".join(lines)

    def show_curve(self, points: list[CurvePoint], current: SchemeChoice) -> None:
        """Show ``points``: at once, or with the changes that follow at the end of the interval
        when one was drawn less than ``CURVE_INTERVAL_MS`` ago."""
        self._points = list(points)
        if self._curve_timer.isActive():
            self._curve_pending = current
            return
        self.plot.show_points(self._points, current, self._result)
        self._curve_timer.start()

    def curve_pending(self) -> bool:
        """Whether a change of the curve waits for the end of the interval."""
        return self._curve_pending is not None

    def _draw_pending_curve(self) -> None:
        if self._curve_pending is not None:
            current, self._curve_pending = self._curve_pending, None
            self.plot.show_points(self._points, current, self._result)
            self._curve_timer.start()

    def set_measuring(self, busy: bool, text: str) -> None:
        self.measuring.setText(text if busy else "")  # no ⏳: many fonts lack the glyph

    def _metric_changed(self, _index: int) -> None:
        self.plot.set_metric(self.metric_choice.currentData())
        self.plot.show_points(self._points, self.setting(), self._result)
