"""The keyboard-shortcut help and the About box."""
from __future__ import annotations

import html
import platform
import sys

from PySide6 import QtCore, QtWidgets

from qgn_studio.style import with_clear_button

# Mouse and held-key gestures (the menu actions add their own rows).
GESTURES = (
    ("View", "Mouse wheel", "Zoom at the pointer"),
    ("View", "Left-drag", "Pan (in zoom-box mode: draw a box to zoom into)"),
    ("View", "Hold Space + drag", "Pan in any mode, as in napari"),
    ("View", "Right-drag", "Zoom in and out"),
    ("View", "Middle-drag", "Pan"),
    ("Images", "↑ / ↓ in the image list", "Previous / next image"),
    ("Annotate", "Left-click / drag (annotation mode)", "Use the tool: paint, fill, erase or pick at the pointer"),
    ("Annotate", "Ctrl + click (annotation mode)", "Pick the class under the pointer, keep the tool "
     "(Alt + click too, where the window manager does not take Alt + drag)"),
    ("Annotate", "Shift + wheel (annotation mode)", "Brush radius larger / smaller"),
    ("Annotate", "Space + drag, middle-drag, wheel", "Pan and zoom while annotating"),
)


class ShortcutsDialog(QtWidgets.QDialog):
    """A searchable table of every shortcut: (section, keys, what it does)."""

    def __init__(self, rows: list[tuple[str, str, str]], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(560, 620)
        self.filter = QtWidgets.QLineEdit()
        self.filter.setPlaceholderText("Filter…")
        with_clear_button(self.filter, "Clear the filter: list every shortcut")
        self.table = QtWidgets.QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Section", "Keys", "Action"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.rows = list(GESTURES) + list(rows)
        for section, keys, text in self.rows:
            row = self.table.rowCount()
            self.table.insertRow(row)
            for col, value in enumerate((section, keys, text)):
                self.table.setItem(row, col, QtWidgets.QTableWidgetItem(value))
        self.table.resizeColumnsToContents()
        # wide enough for the longest action (it was cut off at 560 px), within reason
        width = sum(self.table.columnWidth(c) for c in range(3)) + 60
        self.resize(max(560, min(width, 1200)), 620)
        self.table.setWordWrap(True)
        self.filter.textChanged.connect(self._filter)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.filter)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)

    def _filter(self, text: str) -> None:
        needle = text.lower()
        for row, values in enumerate(self.rows):
            self.table.setRowHidden(row, bool(needle) and needle not in " ".join(values).lower())


def about_html(info, device: str | None) -> str:
    """The About text: the app, the model, its classes (with colours) and the device."""
    import qgn

    versions = [f"QGN Studio {qgn.__version__}", f"Python {platform.python_version()}", f"Qt {QtCore.qVersion()}"]
    torch = sys.modules.get("torch")
    if torch is not None:
        versions.append(f"PyTorch {torch.__version__}")
    parts = [
        f"<h3>QGN Studio {html.escape(qgn.__version__)}</h3>",
        "<p>Quadtree Generating Networks: semantic segmentation that predicts a quadtree, "
        "computing each level only where the level above says it must.</p>",
    ]
    if info is None:
        parts.append("<p><b>Model:</b> none loaded</p>")
    else:
        swatches = "".join(
            f"<tr><td style='background: rgb{tuple(rgb)}'>&nbsp;&nbsp;&nbsp;&nbsp;</td>"
            f"<td>{i}</td><td>{html.escape(name)}</td></tr>"
            for i, (name, rgb) in enumerate(zip(info.classes.names, info.classes.palette))
        )
        parts += [
            f"<p><b>Model:</b> {html.escape(info.name)}<br><small>{html.escape(str(info.path))}</small><br>"
            f"{html.escape(info.description)}</p>",
            f"<p><b>Classes</b> ({info.classes.num_classes}, plus “composite” in every level):</p>"
            f"<table cellspacing='2'>{swatches}</table>",
        ]
    parts.append(f"<p><b>Device in use:</b> {html.escape(device or 'none')}</p>")
    parts.append(f"<p><small>{' · '.join(versions)}</small></p>")
    return "".join(parts)


def show_about(parent, info, device: str | None) -> None:
    box = QtWidgets.QMessageBox(parent)
    box.setWindowTitle("About QGN Studio")
    box.setTextFormat(QtCore.Qt.TextFormat.RichText)
    box.setText(about_html(info, device))
    box.exec()

