"""The annotate dock: mode switch, tools, cell level, classes (editable names and colours), where the
annotation starts from, the undo history, what changed vs the prediction, "done" and "save".

Laid out for a 1280×800 screen (and 1280×720): what an annotator uses on every image shows without
scrolling. Tools and cell sizes are rows of buttons, one setting to a row (as napari's layer
controls); the class list takes the height left and scrolls itself; "Start from…" is one
button with a menu, beside the Annotate switch on top; "Done", "Done ▸ next" and "Save" stay
pinned at the bottom, never scrolled away (as CVAT's Save and Done, always in its top bar). The
History pane is under the controls. Tab goes through the controls in the order they read.

The panel holds no state of its own beyond its widgets: it shows what the ``Annotator`` tells it
and emits what the user asks for.
"""
from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from qgn.quadtree import ROOT_LEVEL
from qgn_studio.style import with_clear_button
from qgn_studio.tools.controller import TOOLS

SWATCH = 16
ROW = 22  # class table row height (px)
HISTORY_ROWS_MIN = 2  # the History's own rows (14 px, not ROW) shown at least: it yields to the controls
CLASS_ROWS_MIN = 3  # the class table's rows shown at least (it grows into the height left: 6 at 1280×800; scrolls beyond)
QWIDGETSIZE_MAX = (1 << 24) - 1  # Qt's largest widget size (not exported by PySide6)
CHECKED_STYLE = ("QToolButton { padding: 3px 6px; }"
                 " QToolButton:checked, QPushButton:checked { background: #3d7dca; color: white;"
                 " border: 1px solid #6aa9ff; border-radius: 3px; }")
START_SOURCES = {  # source → (button text, tooltip)
    "prediction": ("Prediction", "Start over from the prediction on screen"),
    "truth": ("Ground truth", "Start over from the ground truth found beside the image"),
    "import": ("Import mask…", "Start over from a mask file: indexed PNG, Cityscapes labelIds, CamVid ids, .qgt"),
    "kept": ("Kept copy…", "Start over from a copy the project kept aside for this image: edits discarded or "
                           "undone, another window's save or unsaved edits, an annotation replaced or removed "
                           "(listed with when and why; greyed when there is none)"),
    "empty": ("Empty", "Start over from nothing: every pixel ignore"),
    "head": ("Head", "Start over from the project head: a classifier fitted on your saved annotations in the "
                     "background after every save (it learns your classes from the first image)"),
    "previous": ("Previous", "Start over from the previous image's saved labels, moved onto this image along the "
                             "optical flow: for frames of a video (the image before this one in the project)"),
}


def colour_swatch(rgb, size: int = SWATCH) -> QtGui.QIcon:
    pixmap = QtGui.QPixmap(size, size)
    pixmap.fill(QtGui.QColor(*rgb))
    painter = QtGui.QPainter(pixmap)
    painter.setPen(QtGui.QColor(0, 0, 0, 140))
    painter.drawRect(0, 0, size - 1, size - 1)
    painter.end()
    return QtGui.QIcon(pixmap)


def class_key(class_id: int) -> str:
    """The key that selects ``class_id`` before any class edit: 1–9 for classes 0–8, 0 for class 9."""
    return str(class_id + 1) if class_id < 9 else ("0" if class_id == 9 else "")


class ClassTable(QtWidgets.QTableWidget):
    """Key · colour · name per class; names edit in place, a double-click on the colour picks one."""

    renamed = QtCore.Signal(int, str)
    recolour_requested = QtCore.Signal(int)
    chosen = QtCore.Signal(int)
    resized = QtCore.Signal()

    def __init__(self, parent=None):
        super().__init__(0, 3, parent)
        self.setHorizontalHeaderLabels(["Key", "", "Class"])
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Expanding)
        self.setToolTip("Keys 1–9, 0 choose a class · / finds one · double-click a name or a colour to edit it")
        self.verticalHeader().hide()
        self.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.DoubleClicked
                             | QtWidgets.QAbstractItemView.EditTrigger.EditKeyPressed)
        self.setIconSize(QtCore.QSize(SWATCH, SWATCH))
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QtWidgets.QHeaderView.ResizeMode.Fixed)
        header.setSectionResizeMode(2, QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.setColumnWidth(1, SWATCH + 12)
        self.verticalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Fixed)
        self.verticalHeader().setDefaultSectionSize(ROW)
        self.verticalHeader().setMinimumSectionSize(ROW)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.ClickFocus)
        self.itemChanged.connect(self._item_changed)
        self.cellDoubleClicked.connect(self._double_clicked)
        self.itemSelectionChanged.connect(self._selected)
        self._filling = False
        self.keys: dict[int, str] | None = None  # class id → key; None: 1–9, 0 by position

    def set_keys(self, keys: dict[int, str]) -> None:
        self.keys = dict(keys)
        for row in range(self.rowCount()):
            item = self.item(row, 0)
            if item is not None:
                item.setText(self.keys.get(row, ""))

    def set_classes(self, classes) -> None:
        self._filling = True
        self.setRowCount(0 if classes is None else classes.num_classes)
        if classes is not None:
            for i, (name, rgb) in enumerate(zip(classes.names, classes.palette)):
                key = QtWidgets.QTableWidgetItem(class_key(i) if self.keys is None else self.keys.get(i, ""))
                key.setFlags(QtCore.Qt.ItemFlag.ItemIsEnabled | QtCore.Qt.ItemFlag.ItemIsSelectable)
                key.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
                key.setForeground(QtGui.QBrush(QtGui.QColor("#9a9a9a")))
                swatch = QtWidgets.QTableWidgetItem(colour_swatch(rgb), "")
                swatch.setFlags(QtCore.Qt.ItemFlag.ItemIsEnabled | QtCore.Qt.ItemFlag.ItemIsSelectable)
                swatch.setToolTip(f"RGB {tuple(rgb)} — double-click to change")
                label = QtWidgets.QTableWidgetItem(name)
                label.setToolTip(f"class {i}: double-click to rename")
                self.setItem(i, 0, key)
                self.setItem(i, 1, swatch)
                self.setItem(i, 2, label)
        self._filling = False
        rows = 0 if classes is None else classes.num_classes
        # at least CLASS_ROWS_MIN rows; more as the dock's height allows, up to every row
        self.setMinimumHeight(self.rows_height(CLASS_ROWS_MIN))
        self.setMaximumHeight(self.rows_height(max(rows, 3)) + 2)  # (+2: no scroll bar with every row shown)
        self.updateGeometry()

    def rows_height(self, rows: int) -> int:
        """The table's height to show ``rows`` rows under its header."""
        header = self.horizontalHeader().sizeHint().height()
        return rows * ROW + header + 2 * self.frameWidth()

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt's name)
        """As tall as its minimum: the panel's layout hands it the height left over."""
        hint = super().sizeHint()
        return QtCore.QSize(hint.width(), self.minimumHeight())

    def part_row(self, height: int | None = None) -> int:
        """The height of the part row at its bottom, at ``height`` (default its own): 0 where it
        shows whole rows, or every row."""
        height = self.height() if height is None else height
        if self.rowCount() == 0 or height >= self.maximumHeight():
            return 0
        return (height - self.rows_height(0)) % ROW

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self.resized.emit()

    def filter(self, text: str) -> int | None:
        """Show the classes whose name contains ``text`` (any case); the first such class id."""
        text = text.strip().lower()
        first = None
        for row in range(self.rowCount()):
            item = self.item(row, 2)
            match = item is not None and text in item.text().lower()
            self.setRowHidden(row, not match)
            if match and first is None:
                first = row
        return first

    def select(self, class_id: int) -> None:
        if 0 <= class_id < self.rowCount() and self.currentRow() != class_id:
            self.blockSignals(True)
            self.selectRow(class_id)
            self.blockSignals(False)

    def _item_changed(self, item: QtWidgets.QTableWidgetItem) -> None:
        if not self._filling and item.column() == 2:
            self.renamed.emit(item.row(), item.text())

    def _double_clicked(self, row: int, column: int) -> None:
        if column == 1:
            self.recolour_requested.emit(row)

    def _selected(self) -> None:
        rows = {index.row() for index in self.selectedIndexes()}
        if len(rows) == 1:
            self.chosen.emit(rows.pop())


class OneLineLabel(QtWidgets.QLabel):
    """A rich-text label one line high: it shows the whole text, or the first of its ``shorter``
    forms that fits (a 24-megapixel photo's counts rounded), or, when none fits, the shortest
    elided (plain, "…" at the end); the whole text in its tooltip; ``text()`` is the whole text
    as set, ``shown()`` the form on screen."""

    def __init__(self, text: str = "", parent=None):
        super().__init__(parent)
        self.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.setWordWrap(False)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Fixed)
        self.setText(text)

    def setText(self, text: str, shorter: tuple[str, ...] = ()) -> None:  # noqa: N802 (Qt's name)
        self._forms = (text, *shorter)
        self.plain = QtGui.QTextDocumentFragment.fromHtml(text).toPlainText()
        self.setToolTip(self.plain)
        self._fit()

    def text(self) -> str:
        return self._forms[0]

    def shown(self) -> str:
        return super().text()

    def _fit(self) -> None:
        """Show the first form that fits the width (the last when none does)."""
        for form in self._forms:
            if super().text() != form:
                super().setText(form)
            if super().sizeHint().width() <= self.width():
                break
        self._shown_plain = QtGui.QTextDocumentFragment.fromHtml(super().text()).toPlainText()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self._fit()

    def elided(self) -> bool:
        """Whether the whole text is wider than the label (it shows elided)."""
        return super().sizeHint().width() > self.width()

    def minimumSizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt's name): never widens the dock
        return QtCore.QSize(0, super().minimumSizeHint().height())

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if not self.elided():
            super().paintEvent(event)
            return
        painter = QtGui.QPainter(self)
        rect = self.contentsRect()
        painter.setPen(self.palette().color(self.foregroundRole()))
        text = self.fontMetrics().elidedText(self._shown_plain, QtCore.Qt.TextElideMode.ElideRight, rect.width())
        painter.drawText(rect, int(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter), text)


class HistoryView(QtWidgets.QUndoView):
    """The undo history: asks for its least height, two rows, so that the splitter gives the
    controls above - their class list - the height first, up to every class row (drag the splitter
    for more history); it takes the class list's part row (``AnnotatePanel._whole_class_rows``).
    (It asked for three rows of ``ROW``: at 1280×720 the class list showed three rows, the History
    five of its own under a single "Start".)"""

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt's name)
        return QtCore.QSize(super().sizeHint().width(), self.least_height())

    def minimumSizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt's name)
        # (a list view's own is its scroll bar's arrows and slider, 70 px: a layout took that as its height)
        return QtCore.QSize(super().minimumSizeHint().width(), self.least_height())

    def row_height(self) -> int:
        """The height of one of its rows (a line of text: 14 px at the default font, not ``ROW``)."""
        return max(self.sizeHintForRow(0), self.fontMetrics().height())

    def least_height(self) -> int:
        """What it yields down to: ``HISTORY_ROWS_MIN`` whole rows (it was two rows of ``ROW``,
        three and a half of its own, which at 1280×720 scrolled the controls under the snap brush)."""
        return HISTORY_ROWS_MIN * self.row_height() + 2 * self.frameWidth() + 4


class AnnotatePanel(QtWidgets.QWidget):
    """See the module docstring."""

    mode_toggled = QtCore.Signal(bool)
    tool_chosen = QtCore.Signal(str)
    level_chosen = QtCore.Signal(int)
    class_chosen = QtCore.Signal(int)
    class_renamed = QtCore.Signal(int, str)
    class_recolour_requested = QtCore.Signal(int)
    class_add_requested = QtCore.Signal()
    class_remove_requested = QtCore.Signal(int)  # delete or merge (the annotator asks which)
    class_undo_requested = QtCore.Signal()
    class_redo_requested = QtCore.Signal()
    start_requested = QtCore.Signal(str)
    save_requested = QtCore.Signal()
    done_toggled = QtCore.Signal(bool)
    done_next_requested = QtCore.Signal()
    changed_view_toggled = QtCore.Signal(bool)
    snap_to_chosen = QtCore.Signal(str)  # "image" or "prediction": what the snap brush's rim follows

    def __init__(self, parent=None):
        super().__init__(parent)
        # Built in this order (widgets first, then the boxes that hold them) so the tab order is unchanged.
        self._build_mode()
        tools_row = self._build_tool_row()
        level_row = self._build_level_row()
        self._build_class_table()
        self._build_start_button()
        self._build_review_controls()
        self._build_history()

        tools_box = self._tools_box(tools_row, level_row)
        classes_box = self._classes_box()
        review_box = self._review_box()
        history_box = QtWidgets.QGroupBox("History")
        history_layout = QtWidgets.QVBoxLayout(history_box)
        history_layout.setContentsMargins(6, 2, 6, 6)
        history_layout.addWidget(self.history)

        self.setStyleSheet(CHECKED_STYLE)
        self._lay_out((tools_box, classes_box), history_box, review_box)
        self.set_mode(False)
        self._order_tabs()

    # ------------------------------------------------------------------ construction
    def _build_mode(self) -> None:
        """The annotation-mode switch and the status line under it."""
        self.mode = QtWidgets.QPushButton("Annotate  (A)")
        self.mode.setCheckable(True)
        self.mode.setToolTip("Switch annotation mode on or off (A). In annotation mode, left-drag paints "
                             "(hold Space or use the middle button to pan), and [ ] 1–9 0 F I act on the tools.")
        self.mode.toggled.connect(self.mode_toggled)
        self.status = QtWidgets.QLabel("No image")  # the annotator says more once an image is shown
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: #9a9a9a;")

    def _build_tool_row(self) -> QtWidgets.QHBoxLayout:
        """One exclusive button per tool of ``TOOLS`` (more are added later by ``add_tools``)."""
        self.tool_buttons: dict[str, QtWidgets.QToolButton] = {}
        tools_row = QtWidgets.QHBoxLayout()
        tools_row.setSpacing(4)
        group = QtWidgets.QButtonGroup(self)
        group.setExclusive(True)
        for tool, (text, key, tip) in TOOLS.items():
            button = QtWidgets.QToolButton()
            button.setText(f"{text}  {key}")
            button.setCheckable(True)
            button.setToolTip(f"{tip} ({key})")
            button.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)
            button.clicked.connect(lambda _checked, t=tool: self.tool_chosen.emit(t))
            group.addButton(button)
            tools_row.addWidget(button)
            self.tool_buttons[tool] = button
        return tools_row

    def _build_level_row(self) -> QtWidgets.QHBoxLayout:
        """One exclusive button per cell size, coarsest first, and the line saying the chosen level."""
        self.level_buttons: dict[int, QtWidgets.QToolButton] = {}
        level_row = QtWidgets.QHBoxLayout()
        level_row.setSpacing(2)
        levels = QtWidgets.QButtonGroup(self)
        for level in range(ROOT_LEVEL, -1, -1):
            button = QtWidgets.QToolButton()
            button.setText(str(1 << level))
            button.setCheckable(True)
            button.setToolTip(f"Level {level}: paint cells of {1 << level}×{1 << level} px "
                              "(coarser merges cells, finer splits them; [ / ] step the level)")
            button.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)
            button.clicked.connect(lambda _checked, lv=level: self.level_chosen.emit(lv))
            levels.addButton(button)
            level_row.addWidget(button)
            self.level_buttons[level] = button
        self.level_text = QtWidgets.QLabel("Cell px")  # the row's caption; its tooltip names the level
        self.level_text.setStyleSheet("color: #9a9a9a; font-size: 11px;")
        level_row.insertWidget(0, self.level_text)
        return level_row

    def _build_class_table(self) -> None:
        """The class table and the search field that filters it; their signals pass through the panel's."""
        self.classes = ClassTable()
        self.class_search = QtWidgets.QLineEdit()
        self.class_search.setPlaceholderText("Find a class…  (/)")
        with_clear_button(self.class_search, "Clear the search: list every class")
        self.class_search.setToolTip("Type part of a name to list only those classes; Enter chooses the first "
                                     "(Esc goes back to the image)")
        self.class_search.textChanged.connect(self.classes.filter)
        self.class_search.returnPressed.connect(self._search_chosen)
        self.class_search.installEventFilter(self)
        self.classes.chosen.connect(self.class_chosen)
        self.classes.renamed.connect(self.class_renamed)
        self.classes.recolour_requested.connect(self.class_recolour_requested)

    def _build_start_button(self) -> None:
        """"Start from…": one button whose menu has an entry per source of ``START_SOURCES``
        (``self.start_buttons``: source → its QAction, greyed where the source is missing), beside
        the mode switch (``_lay_out``)."""
        self.start_buttons: dict[str, QtGui.QAction] = {}
        self.start_menu = QtWidgets.QMenu(self)
        self.start_menu.setToolTipsVisible(True)
        for source, (text, tip) in START_SOURCES.items():
            action = self.start_menu.addAction(text)
            action.setToolTip(tip)
            action.triggered.connect(lambda _checked=False, s=source: self.start_requested.emit(s))
            self.start_buttons[source] = action
        self.start_button = QtWidgets.QPushButton("Start from…")
        self.start_button.setMenu(self.start_menu)
        self.start_button.setToolTip("Replace this image's annotation with the prediction, the ground truth, a mask "
                                     "file, an empty map, the project head or the previous image's labels "
                                     "(undo brings it back; also in the Annotate menu)")

    def _build_review_controls(self) -> None:
        """"Done", "Done ▸ next", the changes-vs-prediction switch and its summary."""
        self.done = QtWidgets.QCheckBox("Done  (Ctrl+D)")
        self.done.setToolTip("This image is fully annotated: marked finished in the project (✓ in the image list) "
                             "(Ctrl+D)")
        self.done.toggled.connect(self.done_toggled)
        self.done_next = QtWidgets.QPushButton("Done ▸ next  (Ctrl+Return)")
        self.done_next.setToolTip("Mark this image done and go to the next image not done yet (Ctrl+Return)")
        self.done_next.clicked.connect(self.done_next_requested)
        self.show_changed = QtWidgets.QCheckBox("Show changes vs prediction  (C)")
        self.show_changed.setToolTip("Highlight the pixels the annotation corrected (C)")
        self.show_changed.toggled.connect(self.changed_view_toggled)
        self.changed_text = OneLineLabel("–")  # one line (elided on a narrow dock), the whole text its tooltip
        self.save = QtWidgets.QPushButton("Save  (Ctrl+S)")
        self.save.setToolTip("Save every annotation with unsaved edits into the project (creating one first if "
                             "needed) (Ctrl+S)")
        self.save.clicked.connect(self.save_requested)

    def _build_history(self) -> None:
        """The undo history of the image's edits."""
        self.history = HistoryView()
        self.history.setEmptyLabel("Start")
        self.history.setMinimumHeight(self.history.least_height())  # the splitter above gives it more
        self.history.setToolTip("Every edit of this image; click a row to go back to it (Ctrl+Z / Ctrl+Shift+Z)")

    def _tools_box(self, tools_row: QtWidgets.QHBoxLayout, level_row: QtWidgets.QHBoxLayout) -> QtWidgets.QGroupBox:
        """"Tool": the tool buttons, the current tool's note, and the cell-size buttons."""
        tools_box = QtWidgets.QGroupBox("Tool")
        tools_layout = QtWidgets.QVBoxLayout(tools_box)
        tools_layout.setContentsMargins(6, 2, 6, 4)
        tools_layout.setSpacing(4)
        self.tools_layout = tools_layout
        tools_layout.addLayout(tools_row)
        self.tool_note = QtWidgets.QLabel()
        self.tool_note.setStyleSheet("color: #9a9a9a; font-size: 11px;")
        self.tool_note.setWordWrap(True)  # a long note wraps instead of widening the panel past the dock
        self.tool_note.setVisible(False)
        tools_layout.addWidget(self.tool_note)
        tools_layout.addWidget(self._build_snap_row())
        tools_layout.addLayout(level_row)  # "Cell px" and a button per cell size, the current one checked
        return tools_box

    def _build_snap_row(self) -> QtWidgets.QWidget:
        """"Snap to: Image edges | Prediction", shown while the snap brush is the tool, in the tool
        note's place: one row (the note, two lines at 1280×800, is the row's tooltip)."""
        self.snap_row = QtWidgets.QWidget()
        row = QtWidgets.QHBoxLayout(self.snap_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(2)
        self.snap_caption = QtWidgets.QLabel("Snap to")  # a caption as "Cell px"'s; the tool note its tooltip
        self.snap_caption.setStyleSheet("color: #9a9a9a; font-size: 11px;")
        row.addWidget(self.snap_caption)
        group = QtWidgets.QButtonGroup(self.snap_row)
        self.snap_buttons: dict[str, QtWidgets.QToolButton] = {}
        shift = " (Shift + drag: one stroke snaps to the other)"
        tips = {"image": "The stroke's rim follows the image's colour edges (a watershed)" + shift,
                "prediction": "The stroke's rim takes the class where the model's prediction says it" + shift}
        for choice, text in (("image", "Image edges"), ("prediction", "Prediction")):
            button = QtWidgets.QToolButton()
            button.setText(text)
            button.setCheckable(True)
            button.setToolTip(tips[choice])
            button.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)
            button.clicked.connect(lambda _checked, c=choice: self.snap_to_chosen.emit(c))
            group.addButton(button)
            row.addWidget(button)
            self.snap_buttons[choice] = button
        self._snap_tip = tips["prediction"]
        self.snap_buttons["image"].setChecked(True)
        self.snap_row.setVisible(False)
        return self.snap_row

    def set_snap_to(self, choice: str, available: bool, why: str = "") -> None:
        """Check ``choice``; the Prediction button greyed, ``why`` its tooltip, when not ``available``."""
        self.snap_buttons[choice].setChecked(True)
        button = self.snap_buttons["prediction"]
        button.setEnabled(available)
        button.setToolTip(self._snap_tip if available else why)

    def show_snap_options(self, visible: bool) -> None:
        self.snap_row.setVisible(visible)
        self._show_tool_note()

    def _classes_box(self) -> QtWidgets.QGroupBox:
        """"Classes": search, table, a hint on the keys, and the class-edit buttons."""
        classes_box = QtWidgets.QGroupBox("Classes")
        classes_layout = QtWidgets.QVBoxLayout(classes_box)
        classes_layout.setContentsMargins(6, 2, 6, 4)
        classes_layout.setSpacing(4)
        classes_layout.addWidget(self.class_search)
        classes_layout.addWidget(self.classes, 1)  # the height left over: more rows
        classes_layout.addLayout(self._class_edit_row())
        return classes_box

    def _class_edit_row(self) -> QtWidgets.QHBoxLayout:
        """Add, merge/delete, undo and redo of class edits (``self.class_buttons`` by key)."""
        class_row = QtWidgets.QHBoxLayout()
        class_row.setSpacing(4)
        self.class_buttons = {}
        for key, text, tip, slot in (
            ("add", "Add…", "Add a class (after the others)", lambda: self.class_add_requested.emit()),
            ("remove", "Merge / delete…", "Merge the selected class into another, or delete it (its pixels "
             "become ignore) — in every saved annotation and autosave at once",
             lambda: self.class_remove_requested.emit(self.classes.currentRow())),
            ("undo", "Undo", "Undo the latest class change, pixels included",
             lambda: self.class_undo_requested.emit()),
            ("redo", "Redo", "Redo the class change undone last", lambda: self.class_redo_requested.emit()),
        ):
            button = QtWidgets.QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            class_row.addWidget(button)
            self.class_buttons[key] = button
        return class_row

    def _review_box(self) -> QtWidgets.QGroupBox:
        """"Review": the changes switch beside "Save", the summary, then "Done" beside "Done ▸ next"."""
        review_box = QtWidgets.QGroupBox("Review")
        review_layout = QtWidgets.QVBoxLayout(review_box)
        review_layout.setContentsMargins(6, 2, 6, 4)
        review_layout.setSpacing(4)
        changed_row = QtWidgets.QHBoxLayout()
        changed_row.addWidget(self.show_changed, 1)
        changed_row.addWidget(self.save)
        review_layout.addLayout(changed_row)
        review_layout.addWidget(self.changed_text)
        done_row = QtWidgets.QHBoxLayout()
        done_row.addWidget(self.done)
        done_row.addWidget(self.done_next, 1)
        review_layout.addLayout(done_row)
        return review_box

    def _lay_out(self, boxes: tuple[QtWidgets.QWidget, ...], history_box: QtWidgets.QGroupBox,
                 review_box: QtWidgets.QGroupBox) -> None:
        """The mode switch, "Start from…" and the status on top; below, the controls (they scroll
        only on a screen smaller than 1280×720's, their class list first giving up rows) and the
        History under them; at the bottom, pinned, "Review": Save and Done always in view."""
        self._make_controls(boxes)
        self.splitter = splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self.controls)
        splitter.addWidget(history_box)
        # the controls first, up to their height with every class row (_fit_controls); the History the rest
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        top_row = QtWidgets.QHBoxLayout()  # "Start from…" beside the switch: the controls one row shorter
        top_row.setSpacing(4)
        top_row.addWidget(self.mode, 1)
        top_row.addWidget(self.start_button)
        layout.addLayout(top_row)
        layout.addWidget(self.status)
        layout.addWidget(splitter, 1)
        layout.addWidget(review_box)
        self._follow_heights(splitter)

    def _make_controls(self, boxes: tuple[QtWidgets.QWidget, ...]) -> None:
        """``self.controls``: the ``boxes`` one under another in a scroll area (vertical only, no Tab stop of
        its own), the classes' box taking the height left; as wide as they need, at least 120 high."""
        controls = QtWidgets.QWidget()
        controls_layout = QtWidgets.QVBoxLayout(controls)
        controls_layout.setContentsMargins(0, 0, 0, 0)
        controls_layout.setSpacing(4)
        for box in boxes:
            controls_layout.addWidget(box, 1 if box is boxes[1] else 0)  # the classes' box takes the height left
        controls_layout.addStretch(0)
        self.controls = QtWidgets.QScrollArea()
        self.controls.setWidget(controls)
        self.controls.setWidgetResizable(True)
        self.controls.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.controls.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.controls.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)  # no Tab stop of its own: its controls have theirs
        bar = self.style().pixelMetric(QtWidgets.QStyle.PixelMetric.PM_ScrollBarExtent)
        self.controls.setMinimumWidth(controls.minimumSizeHint().width() + bar + 2)
        self.controls.setMinimumHeight(120)

    def _follow_heights(self, splitter: QtWidgets.QSplitter) -> None:
        """The timers and state by which the controls and the History share the ``splitter``'s height: the
        controls grow to whole class rows, give the History back what they do not need, and a drag of the
        splitter by the user is kept."""
        self._fit_pending = False
        self._yield_timer = QtCore.QTimer(self)  # (the panel's own: it goes when the panel does)
        self._yield_timer.setSingleShot(True)
        self._yield_timer.setInterval(0)
        self._yield_timer.timeout.connect(self._give_controls_history_height)
        self.controls.verticalScrollBar().rangeChanged.connect(self._yield_history)
        self._rows_timer = QtCore.QTimer(self)
        self._rows_timer.setSingleShot(True)
        self._rows_timer.setInterval(0)
        self._rows_timer.timeout.connect(self._whole_class_rows)
        self._grow = 0  # what the controls grew by (``_fit_controls``), to take back from the History
        self._history_dragged = False  # the user dragged the splitter: the History keeps what they gave it
        self._dragged = (0, 0)  # (the History's height the user dragged, the controls' cap then)
        splitter.splitterMoved.connect(self._splitter_dragged)
        self._drag_from = None  # (_history_dragged, _dragged, the History's height) when a drag began
        self._drag_timer = QtCore.QTimer(self)
        self._drag_timer.setSingleShot(True)
        self._drag_timer.setInterval(0)
        self._drag_timer.timeout.connect(self._drag_settled)
        self._drag_handle = splitter.handle(1)
        self._drag_handle.installEventFilter(self)
        self.classes.resized.connect(self._rows_timer.start)

    def _order_tabs(self) -> None:
        """Tab goes through the controls as they read, row by row, left to right: the switch and
        "Start from…", the tools (the image-aware ones, added later, and "Snap to" included), the
        cell sizes, the class search and edits, the History, then Review's "Show changes", "Save",
        "Done" and "Done ▸ next" (in creation order the image-aware tools' row, added later by
        ``add_tools``, came last, after "Done ▸ next")."""
        chain = [self.mode, self.start_button, *self.tool_buttons.values(), *self.snap_buttons.values(),
                 *self.level_buttons.values(), self.class_search, *self.class_buttons.values(), self.history,
                 self.show_changed, self.save, self.done, self.done_next]
        for first, second in zip(chain, chain[1:]):
            QtWidgets.QWidget.setTabOrder(first, second)

    def _yield_history(self, _least: int, most: int) -> None:
        """The controls would scroll ``most`` px: the History gives them that much of its height,
        down to its least (two rows) - once the layout in progress is done (the splitter's sizes
        set in the middle of it overlapped its two panes)."""
        if most > 0:
            self._yield_timer.start()

    def _give_controls_history_height(self) -> None:
        most = self.controls.verticalScrollBar().maximum()
        if most <= 0:
            return
        history_box = self.splitter.widget(1)
        least = max(history_box.minimumSizeHint().height(), history_box.minimumHeight())
        total = self.splitter.height() - self.splitter.handleWidth()
        history_height = history_box.height()
        take = min(most, history_height - least)
        if take > 0:
            self.splitter.setSizes([total - (history_height - take), history_height - take])

    def _splitter_dragged(self, *_args) -> None:
        self._history_dragged = True
        self._dragged = (self.splitter.sizes()[1], self.controls.maximumHeight())

    def _handle_event(self, kind) -> None:
        """The splitter handle's press and release: where a drag began, and its end."""
        if kind == QtCore.QEvent.Type.MouseButtonPress:
            self._drag_from = (self._history_dragged, self._dragged, self.splitter.sizes()[1])
        elif kind == QtCore.QEvent.Type.MouseButtonRelease and self._drag_from is not None:
            self._drag_timer.start()

    def _drag_settled(self) -> None:
        """Once a drag's layout is done (``_whole_class_rows`` keeps the list's least rows, taking back
        each step of a drag that would cut them): a drag that left the History where it was (it
        visibly did nothing) is forgotten - remembered, it gave the History a class row back at
        Paint, at 1280×720, after a drag while the snap brush's rows took the room. A drag that took
        keeps the height it pulled to, which the list's least rows bound as before."""
        if self._rows_timer.isActive() or self._fit_pending:
            self._drag_timer.start()
            return
        if self._drag_from is None:
            return
        was_dragged, was, height = self._drag_from
        self._drag_from = None
        if self.splitter.sizes()[1] == height:
            self._history_dragged, self._dragged = was_dragged, was

    def _whole_class_rows(self) -> None:
        """The class list shows whole rows (once the layout in progress is done): the splitter goes
        to the nearest whole row, the History giving the rest of a row it has over its least, or
        taking the part row, as long as the list keeps its least rows; and the controls grown
        taller (a tool's note shown) take their growth back from the History, down to its least
        (``_fit_controls``), while the list lacks rows - all the History has over its least until
        the user drags the splitter (switching tools left it a row more each time). Once dragged,
        the History the controls took (a tool's note) comes back when they need it no longer, from
        the class rows over the list's least."""
        table, grow = self.classes, self._grow
        self._grow = 0
        if not self.splitter.isVisible() or self.controls.verticalScrollBar().maximum() > 0:
            return
        controls, history = self.splitter.sizes()
        history_box = self.splitter.widget(1)
        least = max(history_box.minimumSizeHint().height(), history_box.minimumHeight())
        if not self._history_dragged:  # the History at its least while the list lacks rows (a tool's note came)
            grow = QWIDGETSIZE_MAX
        grow = max(0, min(grow, history - least, table.maximumHeight() - table.height()))
        if self._history_dragged and not grow:
            dragged, cap = self._dragged  # less what the controls grew by since (a tool's note showing)
            wanted = dragged - max(0, self.controls.maximumHeight() - cap)
            grow = -max(0, min(wanted - history, table.height() - table.minimumHeight()))
        height = table.height() + grow
        part = table.part_row(height)
        if part and 2 * part >= ROW and history - grow - least >= ROW - part:
            part -= ROW  # the rest of the row from the History
        elif height - part < table.minimumHeight():
            part = 0
        if grow - part:
            self.splitter.setSizes([controls + grow - part, history - grow + part])

    def _fit_controls_soon(self) -> None:
        if not self._fit_pending:
            self._fit_pending = True
            QtCore.QTimer.singleShot(0, self, self._fit_controls)  # (dropped if the panel goes first)

    def _fit_controls(self) -> None:
        """Caps the controls' pane at their height with every class row shown: on a tall screen the
        splitter gives what is left to the History, not to blank space under the controls."""
        self._fit_pending = False
        inner = self.controls.widget()
        width = self.controls.viewport().width()
        layout = inner.layout()
        height = layout.heightForWidth(width) if layout.hasHeightForWidth() else -1
        if height < 0:
            height = inner.sizeHint().height()
        extra = max(0, self.classes.maximumHeight() - self.classes.sizeHint().height())
        if self.classes.maximumHeight() >= QWIDGETSIZE_MAX:  # no classes yet
            extra = 0
        old = self.controls.maximumHeight()
        self.controls.setMaximumHeight(height + extra + 2)
        if old < height + extra + 2 and self.controls.height() >= old - 1:  # taller, and it was at its cap
            self._grow += height + extra + 2 - old
            self._rows_timer.start()
        elif old > height + extra + 2 and self._history_dragged:  # shorter: the History's dragged height back
            self._rows_timer.start()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self._fit_controls_soon()  # wrapped lines (a tool's note) take another height

    # ------------------------------------------------------------------ showing state
    def set_mode(self, on: bool) -> None:
        self.mode.blockSignals(True)
        self.mode.setChecked(on)
        self.mode.blockSignals(False)
        self.mode.setText("Annotating — A to stop" if on else "Annotate  (A)")

    def set_tool(self, tool: str) -> None:
        self.tool_buttons[tool].setChecked(True)

    def add_tools(self, tools: dict) -> None:
        """A second row of tool buttons (tool → (label, key, tip)): the image-aware tools."""
        row = QtWidgets.QHBoxLayout()
        row.setSpacing(4)
        group = self.tool_buttons[next(iter(self.tool_buttons))].group()
        for tool, (text, key, tip) in tools.items():
            button = QtWidgets.QToolButton()
            button.setText(f"{text}  {key}")
            button.setCheckable(True)
            button.setToolTip(f"{tip} ({key})")
            button.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)
            button.clicked.connect(lambda _checked, t=tool: self.tool_chosen.emit(t))
            group.addButton(button)
            row.addWidget(button)
            self.tool_buttons[tool] = button
        self.tools_layout.insertLayout(1, row)
        self._order_tabs()
        self._fit_controls_soon()

    def set_tool_note(self, text: str) -> None:
        """A line under the tools about the current tool's own setting (empty: hidden)."""
        self.tool_note.setText(text)
        self._show_tool_note()

    def _show_tool_note(self) -> None:
        """The tool note under the tools; with the snap brush, the "Snap to" row in its place and
        the note that row's tooltip (the panel fits 1280×800 with every tool)."""
        text, snap = self.tool_note.text(), not self.snap_row.isHidden()
        self.tool_note.setVisible(bool(text) and not snap)
        self.snap_row.setToolTip(text if snap else "")
        self.snap_caption.setToolTip(text if snap else "")
        self._fit_controls_soon()

    def set_level(self, level: int) -> None:
        self.level_buttons[level].setChecked(True)
        cell = 1 << level
        self.level_text.setToolTip((f"Level {level}: strokes paint cells of {cell}×{cell} px" if level
                                    else "Level 0: strokes paint single pixels") + " ([ coarser, ] finer)")

    def set_classes(self, classes) -> None:
        self.classes.set_classes(classes)
        self._fit_controls_soon()

    def set_class(self, class_id: int) -> None:
        self.classes.select(class_id)

    def set_class_keys(self, keys: dict[int, str]) -> None:
        self.classes.set_keys(keys)

    def focus_class_search(self) -> None:
        self.class_search.setFocus()
        self.class_search.selectAll()

    def _search_chosen(self) -> None:
        first = self.classes.filter(self.class_search.text())
        if first is not None:
            self.class_chosen.emit(first)
        self._leave_search()

    def _leave_search(self) -> None:
        self.class_search.clear()
        window = self.window()
        if window is not None and hasattr(window, "canvas"):
            window.canvas.setFocus()  # the keys act on the image again

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt's name)
        kind = event.type()
        if watched is getattr(self, "_drag_handle", None):  # (the class search's come before the splitter is made)
            self._handle_event(kind)
        if (watched is self.class_search and kind in (QtCore.QEvent.Type.ShortcutOverride, QtCore.QEvent.Type.KeyPress)
                and event.key() == QtCore.Qt.Key.Key_Escape):
            # the window's own Esc (cancel the computation) would take the key first: claim it
            # (ShortcutOverride), then leave the search on the key press it then gets
            event.accept()
            if kind == QtCore.QEvent.Type.KeyPress:
                self._leave_search()
            return True
        return super().eventFilter(watched, event)

    def set_done(self, done: bool, enabled: bool = True) -> None:
        self.done.blockSignals(True)
        self.done.setChecked(done)
        self.done.blockSignals(False)
        self.done.setEnabled(enabled)
        self.done_next.setEnabled(enabled)

    def set_status(self, text: str) -> None:
        self.status.setText(text)

    def set_changed_summary(self, text: str, shorter: tuple[str, ...] = ()) -> None:
        """``text``, or the first of its ``shorter`` forms that fits the dock's width."""
        self.changed_text.setText(text, shorter)

    def set_show_changed(self, on: bool) -> None:
        self.show_changed.blockSignals(True)
        self.show_changed.setChecked(on)
        self.show_changed.blockSignals(False)

    def set_start_text(self, source: str, text: str) -> None:
        """The "Start from…" entry of ``source`` reads ``text`` ("Kept copy… (3)")."""
        self.start_buttons[source].setText(text)

    def set_start_available(self, available: dict[str, bool]) -> None:
        for source, action in self.start_buttons.items():
            action.setEnabled(available.get(source, True))
        self.start_button.setEnabled(any(action.isEnabled() for action in self.start_buttons.values()))
