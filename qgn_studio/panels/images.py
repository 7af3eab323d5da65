"""The image list: thumbnails and names, ground-truth and error badges."""
from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from qgn_studio.document import ImageDocument
from qgn_studio.style import with_clear_button

THUMB = 56
ROW_HEIGHT = 50  # every row as tall as a landscape thumbnail's, whatever the image (a 20×20 one too)
LAYOUT_BATCH = 250  # rows laid out per turn of the event loop (a few ms each)
THUMBNAILS_AHEAD = 200  # previews read when rows are listed; later rows ask as they are shown


def placeholder_icon(colour: str = "#3a3b3f") -> QtGui.QIcon:
    pixmap = QtGui.QPixmap(THUMB, THUMB)
    pixmap.fill(QtGui.QColor(colour))
    return QtGui.QIcon(pixmap)


BADGE_TIPS = {"✓": "✓ annotation done", "●": "● annotation has unsaved edits", "✎": "✎ annotated (saved)"}


def annotation_badges(doc: ImageDocument) -> str:
    """✓ done, ● unsaved annotation changes, ✎ annotated (saved)."""
    session = getattr(doc, "annotation", None)
    marks = "✓" if getattr(doc, "done", False) else ""
    if session is not None:
        marks += "●" if session.dirty else ("" if marks or not _is_annotation(session) else "✎")
    return marks


def _is_annotation(session) -> bool:
    return getattr(session, "is_annotation", True)  # untouched maps from the prediction are not


FILTERS = {  # key → what the filter box says
    "all": "All images",
    "not_done": "Not done",
    "done": "Done",
    "unsaved": "With unsaved edits",
    "annotated": "Annotated",
    "uncertain": "Most uncertain quarter",
}


class ImageRows(QtCore.QAbstractListModel):
    """The rows of the image list, one per document shown, drawn from the documents when shown: a
    list of 20,000 images costs no item objects, and a reset is one signal however long the list is.

    A filter is the model's: ``order`` lists the documents shown (their indices in ``docs``, None:
    all), so hiding 4,000 of 5,000 rows is one layout change, not 4,000 ``setRowHidden`` calls
    (each a few calls back into Python, and a relayout of the view queued per call)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.docs: list[ImageDocument] = []
        self.order: list[int] | None = None  # the documents shown, by index in docs; None: all
        self._position: dict[int, int] | None = None  # document index → row shown, made when needed
        self.thumbnails: dict[object, QtGui.QIcon] = {}  # path → icon: kept when the list is replaced
        self.scores: tuple[dict, str] = ({}, "")
        self.wanted = None  # callable(path): a row without a preview is shown (ask for one), or None
        self.requested: set = set()  # previews asked for and not come yet
        self._placeholder = placeholder_icon()
        self._unreadable = placeholder_icon("#8c2f39")

    def rowCount(self, parent=QtCore.QModelIndex()) -> int:  # noqa: N802 (Qt's name)
        return 0 if parent.isValid() else len(self.docs if self.order is None else self.order)

    def data(self, index, role=QtCore.Qt.ItemDataRole.DisplayRole):
        doc = self._doc(index)
        return None if doc is None else self._value(doc, role)

    def multiData(self, index, roles) -> None:  # noqa: N802 (Qt's name)
        """Every role a view asks of a row at once (a delegate asks ~7 per row painted): one call
        into Python per row, not one per role — each must take the interpreter lock back from a
        busy job thread (a project being read, a prediction)."""
        doc = self._doc(index)
        for i in range(roles.size()):
            item = roles[i]
            value = None if doc is None else self._value(doc, item.role())
            if value is None:
                item.clearData()
            else:
                item.setData(value)

    def _doc(self, index) -> ImageDocument | None:
        if not index.isValid() or not 0 <= index.row() < self.rowCount():
            return None
        return self.docs[self.doc_row(index.row())]

    def doc_row(self, row: int) -> int:
        """The index in ``docs`` of the document shown in row ``row``."""
        return row if self.order is None else self.order[row]

    def shown_row(self, doc_row: int) -> int | None:
        """The row showing ``docs[doc_row]``; None when the filter hides it."""
        if self.order is None:
            return doc_row if 0 <= doc_row < len(self.docs) else None
        if self._position is None:
            self._position = {d: row for row, d in enumerate(self.order)}
        return self._position.get(doc_row)

    def set_order(self, order: list[int] | None) -> None:
        """Show the documents ``order`` (indices in ``docs``, ascending; None: all) as one layout
        change: the current row and the selection follow their documents (a selected document
        hidden leaves the selection)."""
        self.layoutAboutToBeChanged.emit()
        before = self.persistentIndexList()
        docs = [self.doc_row(index.row()) for index in before]
        self.order, self._position = order, None
        after = []
        for d in docs:
            row = self.shown_row(d)
            after.append(QtCore.QModelIndex() if row is None else self.index(row))
        self.changePersistentIndexList(before, after)
        self.layoutChanged.emit()

    def _value(self, doc: ImageDocument, role):
        roles = QtCore.Qt.ItemDataRole
        if role == roles.DisplayRole:
            return self.text(doc)
        if role == roles.DecorationRole:
            if doc.error:
                return self._unreadable
            icon = self.thumbnails.get(doc.path)
            if icon is None and self.wanted is not None and doc.path not in self.requested:
                self.requested.add(doc.path)  # a row scrolled into view: its preview comes next
                self.wanted(doc.path)
            return icon or self._placeholder
        if role == roles.ToolTipRole:
            return self.tooltip(doc)
        if role == roles.SizeHintRole:
            return QtCore.QSize(0, ROW_HEIGHT)  # a tiny image's row is as tall as the others
        return None

    def set_documents(self, docs: list) -> None:
        self.beginResetModel()
        self.docs = list(docs)
        self.order, self._position = None, None
        self.endResetModel()

    def changed(self, doc_row: int, roles=()) -> None:
        """``docs[doc_row]`` changed: its row is drawn again (when shown)."""
        row = self.shown_row(doc_row)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index, list(roles))

    def text(self, doc: ImageDocument) -> str:
        """Its name with the annotation badges; size and ground truth once read; its score."""
        lines = [doc.name]
        if doc.error:
            lines.append("⚠ unreadable")
        elif doc.size is not None:
            h, w = doc.size
            lines.append(f"{w}×{h}" + ("  · ground truth" if doc.ground_truth is not None else ""))
        badges = annotation_badges(doc)
        if badges:
            lines[0] = f"{lines[0]}  {badges}"
        scores, what = self.scores
        if doc.path in scores:
            lines.append(f"{what} {scores[doc.path]:.3f}")
        return "\n".join(lines)

    def tooltip(self, doc: ImageDocument) -> str:
        tip = [str(doc.path)]
        if doc.error:
            tip.append(doc.error)
        elif doc.size is not None and doc.gt_path is not None:
            tip.append(f"ground truth: {doc.gt_path}")
        tip += [BADGE_TIPS[b] for b in annotation_badges(doc)]
        return "\n".join(tip + list(doc.notes))


class ImageListPanel(QtWidgets.QWidget):
    """Lists the open images; emits ``current_changed(row)`` when the user picks one. A filter
    (done / not done / unsaved / annotated / most uncertain / has class X, and a name) hides rows:
    ``filter_changed(key, text)`` asks the window to apply it (``show_rows``).

    The list is a view of ``ImageRows`` laid out in batches, so that replacing 20,000 rows keeps
    the window answering (each batch is one turn of the event loop)."""

    current_changed = QtCore.Signal(int)
    filter_changed = QtCore.Signal(str, str)  # (filter key or "class:<id>", name text)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows = ImageRows(self)
        self.list = QtWidgets.QListView()
        self.list.setModel(self.rows)
        self.list.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list.setIconSize(QtCore.QSize(THUMB, ROW_HEIGHT - 4))
        self.list.setUniformItemSizes(True)
        self.list.setLayoutMode(QtWidgets.QListView.LayoutMode.Batched)
        self.list.setBatchSize(LAYOUT_BATCH)
        self.list.setSpacing(1)
        self.list.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.selectionModel().currentRowChanged.connect(lambda now, _before: self.current_changed.emit(
            self.rows.doc_row(now.row()) if now.isValid() else -1))
        self.filter = QtWidgets.QComboBox()
        self.filter.setToolTip("Show only some images; N / P step through the ones shown")
        self.filter.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.filter.setMinimumContentsLength(8)
        for key, text in FILTERS.items():
            self.filter.addItem(text, key)
        self.filter.currentIndexChanged.connect(self._filter_chosen)
        self.name_filter = QtWidgets.QLineEdit()
        self.name_filter.setPlaceholderText("Name…")
        with_clear_button(self.name_filter, "Clear the name filter: list every image the filter on the left lets through")
        self.name_filter.textChanged.connect(self._filter_chosen)
        self.name_filter.setToolTip("List only the images whose name contains this text (Enter or Esc: back to the "
                                    "image, its single-key shortcuts working again)")
        self.name_filter.returnPressed.connect(self._leave_name_filter)
        self.name_filter.installEventFilter(self)
        self.summary = QtWidgets.QLabel("No images")
        self.summary.setStyleSheet("color: #9a9a9a; font-size: 11px;")  # as the other notes under a list
        filters = QtWidgets.QHBoxLayout()
        filters.setSpacing(4)
        filters.addWidget(self.filter, 3)
        filters.addWidget(self.name_filter, 2)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.setSpacing(2)  # the list's rows have the height: four at 1280×800
        layout.addLayout(filters)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.summary)
        self._row_of: dict | None = {}  # path → row, made when first needed (``_row``)
        self._counting = False  # a filter waits for the annotations' counts (``set_counting``)


    def _leave_name_filter(self) -> None:
        """The keys to the image again (the filter stays): typed in the name filter, N, P, the tools'
        letters and the class digits were its text until the user clicked the image."""
        window = self.window()
        target = getattr(window, "canvas", None)
        (target if isinstance(target, QtWidgets.QWidget) else self.list).setFocus()

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt's name)
        kind = event.type()
        if (watched is self.name_filter and kind in (QtCore.QEvent.Type.ShortcutOverride, QtCore.QEvent.Type.KeyPress)
                and event.key() == QtCore.Qt.Key.Key_Escape):
            event.accept()  # (claimed before the window's Esc, Cancel computation, takes it)
            if kind == QtCore.QEvent.Type.KeyPress:
                self._leave_name_filter()
            return True
        return super().eventFilter(watched, event)
    def set_documents(self, docs: list[ImageDocument]) -> None:
        blocked = self.list.selectionModel().blockSignals(True)
        self.rows.set_documents(docs)  # a reset: the view shows every row again
        self.list.selectionModel().blockSignals(blocked)
        self._row_of = None
        self._summarise()
        self._filter_chosen()

    def _row(self, path) -> int | None:
        """The row of the image at ``path`` (the lookup is made when first needed, not per reset)."""
        if self._row_of is None:
            self._row_of = {doc.path: row for row, doc in enumerate(self.rows.docs)}
        return self._row_of.get(path)

    def thumbnails_to_read(self, paths: list, replace: bool) -> list:
        """The first ``THUMBNAILS_AHEAD`` of ``paths`` (rows just listed) that have no preview and
        were not asked for (``replace``: the requests before are dropped); the others are asked for
        as their rows are shown (``ImageRows.wanted``), so 20,000 rows do not queue 20,000 reads."""
        if replace:
            self.rows.requested = set()
        have, asked = self.rows.thumbnails, self.rows.requested
        ahead = [p for p in paths[:THUMBNAILS_AHEAD] if p not in have and p not in asked]
        asked.update(ahead)
        return ahead

    def count(self) -> int:
        """The number of documents listed (shown or hidden by the filter)."""
        return len(self.rows.docs)

    def row_text(self, row: int) -> str:
        """What row ``row`` says (its name, badges, size, score)."""
        return self.rows.text(self.rows.docs[row])

    def row_icon(self, row: int) -> QtGui.QIcon:
        return self.rows._value(self.rows.docs[row], QtCore.Qt.ItemDataRole.DecorationRole)

    def has_thumbnail(self, path) -> bool:
        return path in self.rows.thumbnails

    def forget_thumbnail(self, path) -> None:
        self.rows.thumbnails.pop(path, None)

    def set_thumbnails(self, thumbnails: list) -> None:
        """Show the previews ``thumbnails`` ([(path, QImage)]) in their rows."""
        for path, image in thumbnails:
            self.rows.requested.discard(path)
            self.rows.thumbnails[path] = QtGui.QIcon(QtGui.QPixmap.fromImage(image))
            row = self._row(path)
            if row is not None:
                self.rows.changed(row, [QtCore.Qt.ItemDataRole.DecorationRole])

    # ------------------------------------------------------------------ filter
    def set_classes(self, classes) -> None:
        """Offer "Has class X" for each class of ``classes``."""
        current = self.filter.currentData()
        self.filter.blockSignals(True)
        while self.filter.count() > len(FILTERS):
            self.filter.removeItem(self.filter.count() - 1)
        if classes is not None:
            self.filter.insertSeparator(self.filter.count())
            for i, name in enumerate(classes.names):
                self.filter.addItem(f"Has class: {name}", f"class:{i}")
        index = self.filter.findData(current)
        self.filter.setCurrentIndex(max(index, 0))
        self.filter.blockSignals(False)
        if index < 0 and current not in (None, "all"):
            self._filter_chosen()

    def set_filter(self, key: str, text: str = "") -> None:
        index = self.filter.findData(key)
        if index < 0:
            raise ValueError(f"no image filter {key!r}")
        self.name_filter.blockSignals(True)
        self.name_filter.setText(text)
        self.name_filter.blockSignals(False)
        if index == self.filter.currentIndex():
            self._filter_chosen()
        else:
            self.filter.setCurrentIndex(index)

    def filter_key(self) -> tuple[str, str]:
        return str(self.filter.currentData() or "all"), self.name_filter.text()

    def _filter_chosen(self, *_args) -> None:
        self.filter_changed.emit(*self.filter_key())

    def show_rows(self, shown: list[bool]) -> None:
        """Hide the rows whose entry is False (one per document, in order): one layout change of
        the model (``ImageRows.set_order``), none when the rows shown are already those."""
        n = self.count()
        order = [row for row, visible in enumerate(shown[:n]) if visible] + list(range(len(shown), n))
        order = None if len(order) == n else order
        if order != self.rows.order:
            self._set_order(order)
        self._summarise()

    def _set_order(self, order: list[int] | None) -> None:
        """``ImageRows.set_order``, with the selection following its images row by row: exactly the
        selected images still shown stay selected. Qt's selection model keeps a selection of a whole
        list of over 1,000 rows as one range and moves only its two ends through a layout change, so
        the range then spanned the images between them that were never selected (Image → Remove took
        them out too) or, an end hidden, emptied."""
        model = self.list.selectionModel()
        selected = sorted({self.rows.doc_row(index.row()) for index in model.selectedRows()})
        self.rows.set_order(order)
        rows = sorted(row for row in map(self.rows.shown_row, selected) if row is not None)
        selection = QtCore.QItemSelection()
        start = None
        for i, row in enumerate(rows):  # runs of consecutive rows: one range each
            start = row if start is None else start
            if i + 1 == len(rows) or rows[i + 1] != row + 1:
                selection.select(self.rows.index(start), self.rows.index(row))
                start = None
        flags = QtCore.QItemSelectionModel.SelectionFlag
        model.select(selection, flags.ClearAndSelect | flags.Rows)

    def visible_rows(self) -> list[int]:
        return list(range(self.count())) if self.rows.order is None else list(self.rows.order)

    def selected_rows(self) -> list[int]:
        rows = sorted({self.rows.doc_row(index.row()) for index in self.list.selectionModel().selectedRows()})
        return rows or ([self.current()] if self.current() >= 0 else [])

    def set_counting(self, counting: bool) -> None:
        """Say in the summary that the filter chosen waits for the annotations' counts (the rows
        shown stay as they are until then: ``show_rows`` follows when the counts arrive)."""
        self._counting = bool(counting)
        self._summarise()

    def _summarise(self) -> None:
        n = self.count()
        text = f"{n} image{'s' if n != 1 else ''}" if n else "No images"
        shown = self.rows.rowCount()
        if n and shown != n:
            text += f" · {shown} shown"
        if n and self._counting:
            text += " · counting annotations…"
        scores, what = self.rows.scores
        if scores and n:
            text += f" · ordered by {what}, highest first"
        self.summary.setText(text)

    def update_document(self, doc: ImageDocument) -> None:
        """Redraw ``doc``'s row: its badges, size, ground truth, unreadable."""
        row = self._row(doc.path)
        if row is not None:
            self.rows.changed(row)

    def set_scores(self, scores: dict, what: str) -> None:
        """Show each row's score (e.g. uncertainty 0 … 1) on its second line and in the summary."""
        self.rows.scores = (dict(scores), what)
        if self.rows.rowCount():
            self.rows.dataChanged.emit(self.rows.index(0), self.rows.index(self.rows.rowCount() - 1))
        self._summarise()

    def set_current(self, row: int) -> None:
        """Show ``row`` (the app steps to it) as the one selected row. Not ``setCurrentIndex``,
        which reads the modifiers held (Ctrl of Ctrl+Return, Shift of Shift+N) and so would add
        each image passed to the selection that Image → Remove takes out. A row the filter hides
        is shown again (the image on screen stays listed)."""
        if 0 <= row < self.count() and self.rows.shown_row(row) is None:
            self._set_order(sorted([*self.rows.order, row]))
            self._summarise()
        shown = self.rows.shown_row(row) if 0 <= row < self.count() else None
        index = self.rows.index(shown) if shown is not None else QtCore.QModelIndex()
        flags = QtCore.QItemSelectionModel.SelectionFlag
        self.list.selectionModel().setCurrentIndex(index, flags.ClearAndSelect | flags.Rows)
        if index.isValid():
            self.list.scrollTo(index)  # also when the current row stays (the view scrolls only on a change)

    def current(self) -> int:
        """The index in the documents of the current row; -1: none."""
        index = self.list.currentIndex()
        return self.rows.doc_row(index.row()) if index.isValid() else -1
