"""The project's statistics: images, done, annotated, and per class its pixels and images.

The counts come from ``qgn.project_stats`` (computed on the job thread by the project
controller); this window only shows them, as a table with a bar per class.
"""
from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from qgn_studio.job_dialog import JobDialog, JobLog
from qgn_studio.panels.annotate import colour_swatch


class StatisticsDialog(JobDialog):
    """Shows a ``ProjectStatistics`` (``show_statistics``) or why there is none (``show_problem``)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Project statistics")
        self.resize(520, 480)
        self.summary = JobLog("Counting the annotations…")  # many unreadable annotations: grows, then scrolls
        self.summary.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.table = QtWidgets.QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Class", "Pixels", "Share", "Images"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Stretch)
        for col in (1, 3):
            header.setSectionResizeMode(col, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QtWidgets.QHeaderView.ResizeMode.Fixed)
        self.table.setColumnWidth(2, 120)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self.stats = None

    def show_counting(self, done: int, total: int) -> None:
        """A step of the counting (``ProjectController.statistics``'s progress): how far and the
        time left."""
        if self.stats is None and done < total and self._open():
            self.summary.setText(f"Counting the annotations… {done}/{total}{self._time_left.suffix(done, total)}")

    def show_problem(self, message: str) -> None:
        if self._open():
            self.summary.setText(f"Cannot count the annotations: {message}")

    def show_statistics(self, stats) -> None:
        if not self._open():
            return
        self.stats = stats
        classes = stats.classes
        pixels = stats.pixels_per_class()
        images = stats.images_per_class()
        labelled = int(pixels[:-1].sum())
        n = len(stats.images)
        lines = [f"<b>{n}</b> image{'s' if n != 1 else ''} · <b>{stats.done}</b> done · "
                 f"<b>{stats.annotated}</b> annotated · <b>{labelled:,}</b> labelled pixels "
                 f"({int(pixels[-1]):,} ignore)"]
        if stats.problems:
            names = ", ".join(p.name for p in list(stats.problems)[:5])
            lines.append(f"<span style='color:#e0a040'>{len(stats.problems)} saved annotation(s) could not be "
                         f"read: {names}</span>")
        self.summary.setText("<br>".join(lines))
        self.table.setRowCount(classes.num_classes)
        for i, (name, rgb) in enumerate(zip(classes.names, classes.palette)):
            share = pixels[i] / labelled if labelled else 0.0
            cells = [QtWidgets.QTableWidgetItem(colour_swatch(rgb), name),
                     QtWidgets.QTableWidgetItem(f"{int(pixels[i]):,}"),
                     QtWidgets.QTableWidgetItem(""),  # the bar below says it
                     QtWidgets.QTableWidgetItem(f"{int(images[i])}")]
            for col, item in enumerate(cells):
                if col:
                    item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(i, col, item)
            bar = QtWidgets.QProgressBar()
            bar.setRange(0, 1000)
            bar.setValue(round(1000 * share))
            bar.setFormat(f"{100 * share:.1f} %")
            bar.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
            bar.setStyleSheet(f"QProgressBar {{ border: none; background: transparent; color: #e6e6e6; }}"
                              f"QProgressBar::chunk {{ background: rgba({rgb[0]}, {rgb[1]}, {rgb[2]}, 140); }}")
            self.table.setCellWidget(i, 2, bar)
