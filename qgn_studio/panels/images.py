"""The image list: thumbnails and names, ground-truth and error badges."""
from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from qgn_studio.document import ImageDocument

THUMB = 56


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


class ImageListPanel(QtWidgets.QWidget):
    """Lists the open images; emits ``current_changed(row)`` when the user picks one."""

    current_changed = QtCore.Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.list = QtWidgets.QListWidget()
        self.list.setIconSize(QtCore.QSize(THUMB, THUMB))
        self.list.setUniformItemSizes(True)
        self.list.setSpacing(1)
        self.list.currentRowChanged.connect(self.current_changed)
        self.summary = QtWidgets.QLabel("No images")
        self.summary.setStyleSheet("color: #9a9a9a;")
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.summary)
        self._rows: dict[object, int] = {}
        self._scores: tuple[dict, str] = ({}, "")

    def set_documents(self, docs: list[ImageDocument]) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        self._rows = {}
        icon = placeholder_icon()
        for row, doc in enumerate(docs):
            item = QtWidgets.QListWidgetItem(icon, doc.name)
            item.setToolTip(str(doc.path))
            self.list.addItem(item)
            self._rows[doc.path] = row
        self.list.blockSignals(False)
        self.summary.setText(f"{len(docs)} image{'s' if len(docs) != 1 else ''}" if docs else "No images")

    def set_thumbnail(self, path, image: QtGui.QImage) -> None:
        row = self._rows.get(path)
        if row is not None:
            self.list.item(row).setIcon(QtGui.QIcon(QtGui.QPixmap.fromImage(image)))

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
        self.summary.setText(f"{len(self._rows)} images · ordered by {what}, highest first")

    def set_current(self, row: int) -> None:
        self.list.setCurrentRow(row)

    def current(self) -> int:
        return self.list.currentRow()
