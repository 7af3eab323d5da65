"""Choose a project's class set: the model's, a bundled palette, a ``classes.txt`` or typed.

The dialog shows the class set as ``classes.txt`` text (one ``name [r g b]`` per line, then
``ignore: V``), which the user may edit: a palette or file only fills the text, and the text is
what counts (parsed by ``qgn.quadtree.label_io`` / ``qgn.data.folder``'s ``classes.txt`` format).
"""
from __future__ import annotations

from pathlib import Path

from PySide6 import QtWidgets

from qgn.fileio import read_text_within

CLASS_LIST = "class list (one class name per line)"

def palette_files() -> list[Path]:
    """The bundled palettes (``resources/palettes/*.txt``), sorted by name."""
    from qgn.resources import resources_dir

    folder = resources_dir() / "palettes"
    return sorted(folder.glob("*.txt")) if folder.is_dir() else []


def parse_class_text(text: str):
    """The ClassSet of ``classes.txt`` text (ValueError naming the line when it is not one)."""
    from qgn.classes import parse_classes_txt

    return parse_classes_txt(text, "the class list")


class ClassSetDialog(QtWidgets.QDialog):
    """See the module docstring. ``classes()`` after ``exec()`` returns the chosen ClassSet."""

    def __init__(self, current=None, parent=None):
        super().__init__(parent)
        from qgn.quadtree.label_io import format_classes_file

        self.setWindowTitle("Classes of the new project")
        self._format = format_classes_file
        self.source = QtWidgets.QComboBox()
        self.sources: list[tuple[str, object]] = []
        if current is not None:
            self.sources.append(("The model's classes", current))
        for path in palette_files():
            self.sources.append((f"Palette: {path.stem}", path))
        self.sources.append(("Typed (edit the list below)", None))
        for text, _ in self.sources:
            self.source.addItem(text)
        self.source.currentIndexChanged.connect(self._source_changed)
        self.from_file = QtWidgets.QPushButton("From a classes.txt…")
        self.from_file.clicked.connect(self._choose_file)
        self.text = QtWidgets.QPlainTextEdit()
        self.text.setPlaceholderText("one class per line: name [r g b]\nignore: 255")
        self.text.textChanged.connect(self._validate)
        self.message = QtWidgets.QLabel()
        self.message.setWordWrap(True)
        self.buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Ok
                                                  | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.source, 1)
        row.addWidget(self.from_file)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.resize(420, 420)
        self._source_changed(0)

    def _source_changed(self, index: int) -> None:
        _, value = self.sources[index]
        if value is None:
            return
        if isinstance(value, Path):
            try:
                self.set_text(read_text_within(value, CLASS_LIST))
            except (OSError, ValueError) as exc:
                self.message.setText(f"Cannot read {value}: {exc}")
        else:
            self.set_text(self._format(value))

    def set_text(self, text: str) -> None:
        self.text.setPlainText(text)

    def _choose_file(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "A classes.txt or palette file", "",
                                                        "Class lists (*.txt);;All files (*)")
        if path:
            try:
                self.set_text(read_text_within(path, CLASS_LIST))
            except (OSError, ValueError) as exc:
                self.message.setText(f"Cannot read {path}: {exc}")

    def _validate(self) -> None:
        try:
            classes = self.classes()
        except ValueError as exc:
            self.message.setText(f"⚠ {exc}")
            self.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok).setEnabled(False)
            return
        ignore = "no ignore value" if classes.ignore_index is None else f"ignore value {classes.ignore_index}"
        self.message.setText(f"{classes.num_classes} classes, {ignore}")
        self.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok).setEnabled(True)

    def classes(self):
        return parse_class_text(self.text.toPlainText())

    @staticmethod
    def parse(path: Path):
        """The ClassSet of a classes.txt / palette file."""
        return parse_class_text(read_text_within(path, CLASS_LIST))
