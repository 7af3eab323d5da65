"""The image list: thumbnails and names, ground-truth and error badges."""
from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from qgn_studio.document import ImageDocument

THUMB = 56
ROW_HEIGHT = 50  # every row as tall as a landscape thumbnail's, whatever the image (a 20×20 one too)


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


class ImageListPanel(QtWidgets.QWidget):
    """Lists the open images; emits ``current_changed(row)`` when the user picks one. A filter
    (done / not done / unsaved / annotated / most uncertain / has class X, and a name) hides rows:
    ``filter_changed(key, text)`` asks the window to apply it (``show_rows``)."""

    current_changed = QtCore.Signal(int)
    filter_changed = QtCore.Signal(str, str)  # (filter key or "class:<id>", name text)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.list = QtWidgets.QListWidget()
        self.list.setIconSize(QtCore.QSize(THUMB, ROW_HEIGHT - 4))
        self.list.setUniformItemSizes(True)
        self.list.setSpacing(1)
        self.list.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.currentRowChanged.connect(self.current_changed)
        self.filter = QtWidgets.QComboBox()
        self.filter.setToolTip("Show only some images; N / P step through the ones shown")
        self.filter.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.filter.setMinimumContentsLength(8)
        for key, text in FILTERS.items():
            self.filter.addItem(text, key)
        self.filter.currentIndexChanged.connect(self._filter_chosen)
        self.name_filter = QtWidgets.QLineEdit()
        self.name_filter.setPlaceholderText("Name…")
        self.name_filter.setClearButtonEnabled(True)
        self.name_filter.textChanged.connect(self._filter_chosen)
        self.summary = QtWidgets.QLabel("No images")
        self.summary.setStyleSheet("color: #9a9a9a;")
        filters = QtWidgets.QHBoxLayout()
        filters.setSpacing(4)
        filters.addWidget(self.filter, 3)
        filters.addWidget(self.name_filter, 2)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(filters)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.summary)
        self._rows: dict[object, int] = {}
        self._scores: tuple[dict, str] = ({}, "")
        self._thumbnails: dict[object, QtGui.QIcon] = {}  # path → icon: kept when the list is rebuilt
        self._count = 0

    def set_documents(self, docs: list[ImageDocument]) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        self._rows = {}
        placeholder = placeholder_icon()
        for row, doc in enumerate(docs):
            item = QtWidgets.QListWidgetItem(self._thumbnails.get(doc.path, placeholder), doc.name)
            item.setToolTip(str(doc.path))
            item.setSizeHint(QtCore.QSize(0, ROW_HEIGHT))  # a tiny image's row is as tall as the others
            self.list.addItem(item)
            self._rows[doc.path] = row
        self.list.blockSignals(False)
        self._count = len(docs)
        self._summarise()
        self._filter_chosen()

    def has_thumbnail(self, path) -> bool:
        return path in self._thumbnails

    def forget_thumbnail(self, path) -> None:
        self._thumbnails.pop(path, None)

    def set_thumbnail(self, path, image: QtGui.QImage) -> None:
        icon = QtGui.QIcon(QtGui.QPixmap.fromImage(image))
        self._thumbnails[path] = icon
        row = self._rows.get(path)
        if row is not None:
            self.list.item(row).setIcon(icon)

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
        """Hide the rows whose entry is False (one per document, in order)."""
        for row, visible in enumerate(shown):
            if row < self.list.count():
                self.list.setRowHidden(row, not visible)
        self._summarise()

    def visible_rows(self) -> list[int]:
        return [r for r in range(self.list.count()) if not self.list.isRowHidden(r)]

    def selected_rows(self) -> list[int]:
        rows = sorted({self.list.row(item) for item in self.list.selectedItems()})
        return rows or ([self.current()] if self.current() >= 0 else [])

    def _summarise(self) -> None:
        n = self._count
        text = f"{n} image{'s' if n != 1 else ''}" if n else "No images"
        shown = len(self.visible_rows())
        if n and shown != n:
            text += f" · {shown} shown"
        scores, what = self._scores
        if scores and n:
            text += f" · ordered by {what}, highest first"
        self.summary.setText(text)

    def update_document(self, doc: ImageDocument) -> None:
        """Refresh the badges of ``doc``'s row: ground truth found, unreadable."""
        row = self._rows.get(doc.path)
        if row is None:
            return
        item = self.list.item(row)
        lines = [doc.name]
        tip = [str(doc.path)]
        if doc.error:
            lines.append("⚠ unreadable")
            tip.append(doc.error)
            item.setIcon(placeholder_icon("#8c2f39"))
        elif doc.size is not None:
            h, w = doc.size
            lines.append(f"{w}×{h}" + ("  · ground truth" if doc.ground_truth is not None else ""))
            if doc.gt_path is not None:
                tip.append(f"ground truth: {doc.gt_path}")
        badges = annotation_badges(doc)
        if badges:
            lines[0] = f"{lines[0]}  {badges}"
            tip += [BADGE_TIPS[b] for b in badges]
        tip += doc.notes
        scores, what = self._scores
        if doc.path in scores:
            lines.append(f"{what} {scores[doc.path]:.3f}")
        item.setText("\n".join(lines))
        item.setToolTip("\n".join(tip))

    def set_scores(self, scores: dict, what: str) -> None:
        """Show each row's score (e.g. uncertainty 0 … 1) on its second line and in the summary."""
        self._scores = (dict(scores), what)
        for path, row in self._rows.items():
            if path in scores:
                item = self.list.item(row)
                lines = item.text().split("\n")
                note = f"{what} {scores[path]:.3f}"
                item.setText("\n".join([lines[0], note] + [ln for ln in lines[1:] if not ln.startswith(what)]))
        self._summarise()

    def set_current(self, row: int) -> None:
        self.list.setCurrentRow(row)

    def current(self) -> int:
        return self.list.currentRow()
