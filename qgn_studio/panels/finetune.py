"""The fine-tune dock: settings, start / cancel, progress, the live loss curve, the before/after
comparison on the corrected images, and keep / revert.

Widgets only: the ``Finetuner`` (``qgn_studio.finetuner``) runs the work and tells the panel what
to show. The loss curve is redrawn at most ``PLOT_INTERVAL_MS`` apart however fast steps arrive.
"""
from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from qgn_studio.style import FloatSpinBox, number_keys_only

PLOT_INTERVAL_MS = 100
#: The loss plot grows no taller: at 1280×800 its axis, the status under it and the before / after
#: scores stay in view (it took every spare pixel, pushing them below the dock's fold).
PLOT_MAX_HEIGHT = 240
#: What a start with no corrected image says; a count that finds some takes it back.
NOTHING_TO_TRAIN = "Nothing to fine-tune on: annotate (correct) some images first"
#: "What learns": (setting, the box's text); the setting is ``qgn.train.finetune.FinetuneConfig.encoder``
#: or "auto" (``qgn.train.finetune.auto_encoder`` on the images it trains on).
LEARNS = (("auto", "Automatic"), ("frozen", "Decoder only (fast)"), ("train", "Decoder and encoder (slower)"))
LEARNS_TIP = (
    "What the fine-tune trains.\n"
    "• Decoder only: the encoder stays as it is; its features of the corrected images are computed once, "
    "then each step trains the decoder alone (fast). The model keeps its domain check.\n"
    "• Decoder and encoder: each step trains the encoder too (no feature pass first). To bound its "
    "memory, images larger than {crop}×{crop} pixels are cut to random crops of at most that size; smaller "
    "ones train whole. The new model has no domain check: every image starts from its prediction (or the "
    "project head's, or the carried start, by their records).\n"
    "• Automatic: the encoder learns once the fine-tune trains on {k} or more corrected images "
    "({corrected} corrected: one in four is kept aside to compare), else the decoder alone.\n\n"
    "Measured on whole 240×180 CamVid frames (no crop), a sequence the model never saw "
    "(benchmarks/RESULTS.md, \"A fine-tune whose encoder learns\"): the encoder learning took about 1.5–2× "
    "the time; with the decoder alone the model's start cost 3–14 % more actions than an empty map after "
    "8, 16 or 32 corrected frames; with the encoder learning it cost 12 % / 11 % fewer after 32 frames "
    "and about as many after 8 and 16. Untried on larger photos trained on crops.")
ROWS = (("acc", "Pixel accuracy"), ("miou", "mIoU"), ("agreement", "Cells right"))
ROW_TIPS = {
    "acc": "Share of labelled pixels of the corrected images the model predicts as corrected",
    "miou": "Mean intersection over union against the corrected labels",
    "agreement": "Share of the corrections' quadtree leaves predicted right on every pixel",
}


def percent(value: float | None) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f} %"


class PerImageTable(QtWidgets.QTableWidget):
    """The per-image table, asking for its header and three rows (a QTableWidget asks for 192 px,
    which the dock's scroll area grants, Keep / Revert then below the fold at 1280×800)."""

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt's name)
        rows = 3 * self.verticalHeader().defaultSectionSize()
        return QtCore.QSize(super().sizeHint().width(), self.horizontalHeader().sizeHint().height() + rows + 4)


PLOT_MIN_HEIGHT = 118  # its axes, five ticks and a readable curve; 150 left the per-image table a scroll away at 1280×800


class LossPlot(pg.PlotWidget):
    """The training loss per iteration, redrawn on a timer."""

    def __init__(self, parent=None):
        super().__init__(parent, background="#1e1f22")
        self.setLabel("bottom", "iteration")
        self.setLabel("left", "loss")
        self.showGrid(x=True, y=True, alpha=0.2)
        self.getPlotItem().setMenuEnabled(False)
        self.setMinimumHeight(PLOT_MIN_HEIGHT)
        self.setMaximumHeight(PLOT_MAX_HEIGHT)
        self.raw = self.plot([], [], pen=pg.mkPen((255, 183, 77, 70), width=1))  # every iteration, faint
        self.curve = self.plot([], [], pen=pg.mkPen("#ffb74d", width=2))  # its moving average
        self.xs: list[int] = []
        self.ys: list[float] = []
        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(PLOT_INTERVAL_MS)
        self._timer.timeout.connect(self.redraw)

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt's name)
        """Its least height: the dock's scroll area gives the panel its preferred height, and
        pyqtgraph's 240 px pushed Keep / Revert below the fold at 1280×800; a taller dock
        stretches the plot all the same."""
        return QtCore.QSize(super().sizeHint().width(), self.minimumHeight())

    def clear_points(self) -> None:
        self.xs, self.ys = [], []
        self.redraw()

    def add_point(self, iteration: int, loss: float) -> None:
        self.xs.append(iteration)
        self.ys.append(loss)
        if not self._timer.isActive():
            self._timer.start()

    def redraw(self) -> None:
        self.raw.setData(self.xs, self.ys)
        self.curve.setData(self.xs, smoothed(self.ys))


def smoothed(values: list[float], span: int = 20) -> list[float]:
    """An exponential moving average (bias-corrected, as TensorBoard's smoothing): one batch's
    loss jumps with the images in it; the trend is what tells whether training works."""
    out, average, weight = [], 0.0, 0.0
    beta = 1.0 - 2.0 / (span + 1)
    for value in values:
        average = beta * average + (1 - beta) * value
        weight = beta * weight + (1 - beta)
        out.append(average / weight)
    return out


def corrected_for_encoder() -> int:
    """The fewest corrected images with which Automatic lets the encoder learn: its fine-tune
    trains on ``ENCODER_LEARNS_FROM`` of them once one in four is held out to compare."""
    from qgn.train.finetune import ENCODER_LEARNS_FROM, comparison_split

    count = ENCODER_LEARNS_FROM
    while len(comparison_split(count)[0]) < ENCODER_LEARNS_FROM:
        count += 1
    return count


def learns_tip() -> str:
    from qgn.train.finetune import ENCODER_CROP, ENCODER_LEARNS_FROM

    return LEARNS_TIP.format(crop=ENCODER_CROP, k=ENCODER_LEARNS_FROM, corrected=corrected_for_encoder())


class FinetunePanel(QtWidgets.QWidget):
    """See the module docstring."""

    start_requested = QtCore.Signal(int, float)  # iterations, learning rate
    cancel_requested = QtCore.Signal()
    keep_requested = QtCore.Signal()
    revert_requested = QtCore.Signal()
    refresh_requested = QtCore.Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        # Built in this order (widgets first, then the boxes that hold them) so the tab order is unchanged.
        refresh = self._build_settings()
        self._build_run_controls()
        self._build_scores_table()
        self._build_per_image_table()
        self._build_decision()

        train_box = self._train_box(refresh)
        self.compare_box = self._compare_box()
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(train_box, 3)
        layout.addWidget(self.compare_box, 2)
        self.show_comparison(None)

    # ------------------------------------------------------------------ construction
    def _build_settings(self) -> QtWidgets.QToolButton:
        """The corrected-image count (and its ↻ button, returned), iterations and learning rate."""
        self.corrections = QtWidgets.QLabel("↻ counts the corrected images")  # not a count before one was made
        self.corrections.setWordWrap(True)
        # two lines whatever the text: a count that wraps differently must not move the fields below
        self.corrections.setFixedHeight(2 * self.corrections.fontMetrics().lineSpacing() + 4)
        self.corrections.setAlignment(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop)
        refresh = QtWidgets.QToolButton(text="↻")
        refresh.setToolTip("Count the corrected images again")
        refresh.clicked.connect(self.refresh_requested)
        self.iterations = QtWidgets.QSpinBox()
        self.iterations.setRange(1, 100_000)
        self.iterations.setValue(300)
        self.iterations.setSingleStep(50)
        self.iterations.setToolTip("SGD iterations (batches of corrected images, with scaling and flips)")
        self.lr = FloatSpinBox()  # (reads 1e-3 too)
        self.lr.setDecimals(4)
        self.lr.setRange(0.0001, 1.0)
        self.lr.setSingleStep(0.001)
        self.lr.setValue(0.001)  # 0.005 (the library default) overshoots on a handful of images
        self.lr.setToolTip("Initial learning rate (poly decay to 0)")
        self.learns = QtWidgets.QComboBox()
        for key, text in LEARNS:
            self.learns.addItem(text, key)
        self.learns.setToolTip(learns_tip())
        self.learns.currentIndexChanged.connect(lambda _i: self._show_learning())
        self._count = None  # corrected images last counted (None: not counted yet)
        for box in (self.iterations, self.lr):  # a letter goes to the window's shortcuts, not the box
            number_keys_only(box)
        return refresh

    def _build_run_controls(self) -> None:
        """Start and Cancel, the progress bar (its range follows the iterations), the status and the loss plot."""
        self.start = QtWidgets.QPushButton("Fine-tune on corrections")
        self.start.setToolTip("Train a copy of the model on the corrected images (what learns: the setting above; "
                              "the sites PC visits plus the corrections' composite cells); "
                              "the model in use stays until you keep the result")
        self.start.clicked.connect(lambda: self.start_requested.emit(self.iterations.value(), self.lr.value()))
        self.running = False  # a run under way (cancelled or not: it ends at its next step)
        self.cancel = QtWidgets.QPushButton("Cancel")
        self.cancel.setToolTip("Stop the fine-tune; the model in use stays (Esc)")
        self.cancel.setEnabled(False)
        self.cancel.clicked.connect(self.cancel_requested)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setFormat("%v / %m")
        self.progress.setRange(0, self.iterations.value())  # "0 / 300", as the setting says
        self.progress.setValue(0)
        self.iterations.valueChanged.connect(
            lambda n: self.progress.setRange(0, n) if not self.running else None)
        self.status = QtWidgets.QLabel("")
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: #9a9a9a;")
        self.plot = LossPlot()

    def _build_scores_table(self) -> None:
        """Before / after / change of each score in ``ROWS``, read-only, its rows explained in tooltips."""
        self.table = QtWidgets.QTableWidget(len(ROWS), 3)
        self.table.setHorizontalHeaderLabels(["Before", "After", "Change"])
        self.table.setVerticalHeaderLabels([text for _key, text in ROWS])
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
        self.table.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.table.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setFixedHeight(24 + 22 * len(ROWS) + 4)
        for row, (key, _text) in enumerate(ROWS):
            self.table.verticalHeaderItem(row).setToolTip(ROW_TIPS[key])
        corner = self.table.findChild(QtWidgets.QAbstractButton)  # Qt's select-all, no tooltip of its own
        if corner is not None:
            corner.setToolTip("Each score on the held-out images before the fine-tune, after it, and the change "
                              "(hover a row's name for how it is measured)")

    def _build_per_image_table(self) -> None:
        """One row per held-out image: its mIoU before → after and its changed cells."""
        self.per_image = PerImageTable(0, 3)
        self.per_image.setHorizontalHeaderLabels(["Image", "mIoU before → after", "Changed cells"])
        self.per_image.verticalHeader().hide()
        self.per_image.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.per_image.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
        header = self.per_image.horizontalHeader()
        header.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self.per_image.verticalHeader().setDefaultSectionSize(20)
        self.per_image.setMinimumHeight(80)

    def _build_decision(self) -> None:
        """What changed, and Keep / Revert."""
        self.changed = QtWidgets.QLabel("")
        self.changed.setWordWrap(True)
        self.changed.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.keep = QtWidgets.QPushButton("Keep and save as…")
        self.keep.setToolTip("Save the fine-tuned model under a new name and predict with it from now on")
        self.keep.clicked.connect(self.keep_requested)
        self.revert = QtWidgets.QPushButton("Revert")
        self.revert.setToolTip("Discard the fine-tuned model; the model in use stays")
        self.revert.clicked.connect(self.revert_requested)

    def _train_box(self, refresh: QtWidgets.QToolButton) -> QtWidgets.QGroupBox:
        """"Fine-tune": the settings form, Start / Cancel, progress, loss plot and status."""
        settings = QtWidgets.QFormLayout()
        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.corrections, 1)
        top.addWidget(refresh)
        settings.addRow(top)
        settings.addRow("Iterations", self.iterations)
        settings.addRow("Learning rate", self.lr)
        settings.addRow("What learns", self.learns)
        run_row = QtWidgets.QHBoxLayout()
        run_row.addWidget(self.start, 1)
        run_row.addWidget(self.cancel)
        train_box = QtWidgets.QGroupBox("Fine-tune")
        train_layout = QtWidgets.QVBoxLayout(train_box)
        train_layout.setContentsMargins(6, 2, 6, 4)  # compact: the per-image table in view at 1280×800
        train_layout.setSpacing(4)
        train_layout.addLayout(settings)
        train_layout.addLayout(run_row)
        train_layout.addWidget(self.progress)
        train_layout.addWidget(self.plot, 1)
        train_layout.addWidget(self.status)
        return train_box

    def _compare_box(self) -> QtWidgets.QGroupBox:
        """"Before / after": the scores, what changed, Keep / Revert, and the per-image table."""
        compare_box = QtWidgets.QGroupBox("Before / after on corrected images it did not train on")
        compare_layout = QtWidgets.QVBoxLayout(compare_box)
        compare_layout.setContentsMargins(6, 2, 6, 4)
        compare_layout.setSpacing(4)
        compare_layout.addWidget(self.table)
        compare_layout.addWidget(self.changed)
        decide = QtWidgets.QHBoxLayout()  # under the scores they decide on, above the per-image detail
        decide.addWidget(self.keep, 1)
        decide.addWidget(self.revert)
        compare_layout.addLayout(decide)
        compare_layout.addWidget(self.per_image, 1)
        return compare_box

    # ------------------------------------------------------------------ state
    def set_corrections(self, names: list[str]) -> None:
        if not names:
            self.corrections.setText("No corrected images yet: annotate some, or mark them done")
        else:
            shown = ", ".join(names[:2]) + (f" and {len(names) - 2} more" if len(names) > 2 else "")
            self.corrections.setText(f"<b>{len(names)}</b> corrected image{'s' if len(names) != 1 else ''}: {shown}")
        self.corrections.setToolTip("\n".join(names))
        self._count = len(names)
        self._show_learning()
        if names and self.status.text() == NOTHING_TO_TRAIN:
            self.status.setText("")  # it would contradict the count above it
        self.start.setEnabled(bool(names) and not self.running)

    def set_running(self, running: bool, iterations: int = 0) -> None:
        self.running = running
        self.start.setEnabled(not running)
        self.cancel.setEnabled(running)
        self.iterations.setEnabled(not running)
        self.lr.setEnabled(not running)
        self.learns.setEnabled(not running)
        if running:
            from qgn.progress import TimeLeft

            self._time_left = TimeLeft()  # the time left (add_loss) counts from here
            self.plot.clear_points()
            self.progress.setRange(0, iterations)
            self.progress.setValue(0)
            self.show_comparison(None)

    def learning(self) -> str:
        """The "What learns" setting: "auto", "frozen" or "train"."""
        return str(self.learns.currentData())

    def set_learning(self, key: str) -> None:
        """Choose ``key`` ("auto", "frozen", "train"; anything else: "auto", the default)."""
        index = self.learns.findData(key)
        self.learns.setCurrentIndex(index if index >= 0 else 0)

    def _show_learning(self) -> None:
        """Automatic's text says what it would train with the corrected images counted last."""
        from qgn.train.finetune import auto_encoder, comparison_split

        text = LEARNS[0][1]
        if self._count:
            encoder = auto_encoder(len(comparison_split(self._count)[0]))
            text += ": decoder and encoder" if encoder == "train" else ": decoder only"
        self.learns.setItemText(0, text)

    def add_loss(self, iteration: int, loss: float) -> None:
        self.progress.setValue(iteration)
        self.plot.add_point(iteration, loss)
        time_left = getattr(self, "_time_left", None)
        left = time_left.suffix(iteration, self.progress.maximum()) if time_left is not None else ""
        self.status.setText(f"iteration {iteration} · loss {loss:.4f}{left}")

    def show_pass(self, text: str, done: int, total: int) -> None:
        """A pass over the images before the first step or after the last (reading them, their
        features, the comparison): ``text done/total`` and its time left in the status line (the bar
        counts iterations); nothing once the pass is done (the steps or the result say more)."""
        from qgn.progress import TimeLeft

        if done == 0 or getattr(self, "_pass", None) != text:
            self._pass, self._pass_left = text, TimeLeft()
        if done < total:
            self.status.setText(f"{text} {done}/{total}{self._pass_left.suffix(done, total)}")

    def set_status(self, text: str) -> None:
        self.status.setText(text)

    def show_comparison(self, comparison) -> None:
        """Fill the before/after tables (None clears them and disables keep / revert)."""
        self.keep.setEnabled(comparison is not None)
        self.revert.setEnabled(comparison is not None)
        for row, (key, _text) in enumerate(ROWS):
            if comparison is None:
                values = ("–", "–", "–")
            else:
                before, after = comparison.before[key], comparison.after[key]
                delta = after - before
                values = (percent(before), percent(after),
                          "–" if math.isnan(delta) else f"{100 * delta:+.1f} pt" + (" ▼" if delta < 0 else ""))
            for col, text in enumerate(values):
                item = QtWidgets.QTableWidgetItem(text)
                item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, col, item)
        self.per_image.setRowCount(0 if comparison is None else len(comparison.per_image))
        if comparison is None:
            self.changed.setText("<span style='color:#9a9a9a'>Fine-tune to compare the model before and "
                                 "after on corrected images it did not train on</span>")
            return
        for row, record in enumerate(comparison.per_image):
            texts = (record["name"], f"{percent(record['before']['miou'])} → {percent(record['after']['miou'])}",
                     f"{record['changed_cells']:,}")
            for col, text in enumerate(texts):
                item = QtWidgets.QTableWidgetItem(text)
                if col:
                    item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
                self.per_image.setItem(row, col, item)
        share = 100 * comparison.changed_pixels / comparison.pixels if comparison.pixels else 0.0
        worse = [text for key, text in ROWS if comparison.after[key] < comparison.before[key]]
        warning = (f"<br><span style='color:#e06c75'><b>Worse after fine-tuning: {', '.join(worse).lower()}.</b> "
                   "Revert keeps the model in use.</span>") if worse else ""
        self.changed.setText(
            f"The prediction ({comparison.scheme.upper()}) changed in <b>{comparison.changed_cells:,}</b> quadtree "
            f"cells ({comparison.changed_pixels:,} px, {share:.1f} %){warning}")
