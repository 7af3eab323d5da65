"""File → Import dataset…: a dataset in another tool's layout (CVAT/VOC, Cityscapes, CamVid, COCO,
labelme, Label Studio, FiftyOne, id/palette PNGs) into a project, with a preview of what was detected.

Choosing a source scans it on the job thread (``qgn.formats.scan_dataset``) and shows what
was found: the format, the masks, how many images were found, and how the file's labels match the
project's classes (or the classes a new project will get). Import runs
``qgn.project_import.import_into_project`` on the job thread, one progress step per item; bad items
are listed, not fatal. Cancel stops it before the next item (the items imported so far stay).
Afterwards the window opens the project.

The dialog may close while a job of its own is pending: a scan's result is then dropped, and an
import's outcome goes to ``finished_unseen`` (the window says it and opens the project, since the
user started it). Closing never starts a scan: a field's ``editingFinished`` (focus leaving it for
the Close button) scans only when the source, format or images changed.
"""
from __future__ import annotations

import re
from html import escape
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from qgn_studio.job_dialog import JobDialog, JobLog

PREVIEW_ITEMS = 6


CLI_OPTIONS = re.compile(r"(?<!qgn \w{6} )--(images|classes)(?: (?:DIR|FILE))?")
FIELD_NAMES = {"images": "the Images field", "classes": "the Classes file field"}


def in_dialog_words(text: str) -> str:
    """A message of ``qgn.formats`` / ``qgn.project_import`` that names a command-line option
    (``--images DIR``, ``--classes FILE``) names the dialog's own field instead."""
    return CLI_OPTIONS.sub(lambda m: FIELD_NAMES[m.group(1)], text)


def import_summary(report) -> str:
    """One plain-text line: how many items were imported, and where."""
    where = f"into {report.project.root}" if report.project is not None else "(no project was created)"
    updates = (f" ({len(report.replaced)} replaced, {len(report.unchanged)} unchanged)"
               if report.replaced or report.unchanged else "")
    stopped = f"; cancelled, {report.not_reached} item(s) not imported" if report.not_reached else ""
    return f"Imported {len(report.imported)} of {len(report.imported) + len(report.skipped)}{updates} {where}{stopped}"


class ImportDialog(JobDialog):
    """See the module docstring. ``jobs``: the window's JobRunner for batches (not the one autosaves
    use: they go on while a long import runs); ``project``: the open project or None;
    ``finished_unseen(outcome)``: an import that ends after the dialog closed, with its
    ImportReport or the failure's message."""

    imported = QtCore.Signal(object)  # the ImportReport
    CANCELLING = "Cancelling after the item being imported…"

    def __init__(self, jobs, project=None, parent=None, finished_unseen=None):
        super().__init__(parent)
        self.jobs, self.project = jobs, project
        self.finished_unseen = finished_unseen
        self.dataset = None
        self._scan_key = None  # (source, format, images) of the last scan asked for
        self.setWindowTitle("Import dataset")
        self.setMinimumWidth(680)
        form = self._form(project)
        self._make_preview()
        self.progress = QtWidgets.QProgressBar()
        self.log = JobLog()  # an end line naming skipped files under deep folders: grows, then scrolls
        self.log.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.buttons = QtWidgets.QDialogButtonBox()
        self.import_button = self.buttons.addButton("Import", QtWidgets.QDialogButtonBox.ButtonRole.AcceptRole)
        self._add_cancel(self.buttons, "Stop after the item being imported; the items imported so far stay")
        close = self.buttons.addButton(QtWidgets.QDialogButtonBox.StandardButton.Close)
        self.import_button.clicked.connect(self.start)
        close.clicked.connect(self.reject)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(form)
        box = QtWidgets.QGroupBox("Detected")
        QtWidgets.QVBoxLayout(box).addWidget(self.preview)
        layout.addWidget(box)
        layout.addWidget(self.progress)
        layout.addWidget(self.log)
        layout.addWidget(self.buttons)
        self._follow_edits()
        self._update_buttons()

    def _form(self, project) -> QtWidgets.QFormLayout:
        """The dataset, its format, images and classes file, the project it goes into (``project``'s, if one is
        open) and whether it replaces existing annotations."""
        from qgn.formats import IMPORT_FORMATS

        self.source = QtWidgets.QLineEdit()
        self.format = QtWidgets.QComboBox()
        self.format.addItems(["auto", *IMPORT_FORMATS])
        self.images = QtWidgets.QLineEdit()
        self.images.setPlaceholderText("where the format keeps them")
        self.classes = QtWidgets.QLineEdit()
        self.classes.setPlaceholderText("the project's, else the classes the files name")
        self.target = QtWidgets.QLineEdit(str(project.root) if project is not None else "")
        form = QtWidgets.QFormLayout()
        form.addRow("Dataset", self._with_browse(self.source, "folder", "file"))
        form.addRow("Format", self.format)
        form.addRow("Images", self._with_browse(self.images, "folder"))
        form.addRow("Classes file", self._with_browse(self.classes, "file"))
        form.addRow("Into project", self._with_browse(self.target, "folder"))
        self.update_box = QtWidgets.QCheckBox("Replace existing annotations (corrections; the old ones go to replaced/)")
        self.update_box.setToolTip("For corrections made in another tool on an export of this project: the files "
                                   "replace the annotations of the project's images (the same file, else the one "
                                   "with the same bytes - tools copy the images they export, and may rename "
                                   "them - else the one of the same file name and size); each replaced annotation is kept in the project's replaced/ folder. "
                                   "Images with unsaved edits are never replaced. Off: an annotation is never "
                                   "replaced.")
        form.addRow("", self.update_box)
        return form

    def _make_preview(self) -> None:
        """``self.preview``: what the scan detected in the dataset, or what to choose first."""
        self.preview = QtWidgets.QLabel("Choose a dataset folder (or its JSON file).")
        self.preview.setWordWrap(True)
        self.preview.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.preview.setMinimumHeight(160)
        self.preview.setAlignment(QtCore.Qt.AlignmentFlag.AlignTop)

    def _follow_edits(self) -> None:
        """A dataset or images folder typed (or a format chosen) is scanned; the buttons and the preview follow
        the target and classes."""
        for edit in (self.source, self.images):
            edit.editingFinished.connect(lambda: self.scan(force=False))
        self.format.currentTextChanged.connect(lambda _text: self.scan())
        for edit in (self.target, self.classes):
            edit.textChanged.connect(self._update_buttons)
        self.target.textChanged.connect(self._show_preview)  # the classes the labels go into

    def _with_browse(self, edit: QtWidgets.QLineEdit, *kinds: str) -> QtWidgets.QHBoxLayout:
        row = QtWidgets.QHBoxLayout()
        row.addWidget(edit, 1)
        for kind in kinds:
            button = QtWidgets.QPushButton("Folder…" if kind == "folder" else "File…")
            button.clicked.connect(lambda _=False, e=edit, k=kind: self._browse(e, k))
            row.addWidget(button)
        return row

    def _browse(self, edit: QtWidgets.QLineEdit, kind: str) -> None:
        if kind == "folder":
            chosen = QtWidgets.QFileDialog.getExistingDirectory(self, "Choose a folder", edit.text())
        else:
            chosen = QtWidgets.QFileDialog.getOpenFileName(self, "Choose a file", edit.text())[0]
        if chosen:
            edit.setText(chosen)
            if edit in (self.source, self.images):
                self.scan()

    # ------------------------------------------------------------------ scan / preview
    def set_source(self, path, format: str = "auto", images=None) -> None:
        """Fill in the source (and images) and scan it (tests and drag-and-drop)."""
        self.source.setText(str(path))
        self.images.setText(str(images or ""))
        self.format.blockSignals(True)
        self.format.setCurrentText(format)
        self.format.blockSignals(False)
        self.scan()

    def scan(self, force: bool = True) -> None:
        """Scan the source on the job thread; not ``force``: only when the source, format or images changed."""
        from qgn.formats import scan_dataset

        src = self.source.text().strip()
        if not src or not self._open():
            return
        key = (src, self.format.currentText(), self.images.text().strip())
        if not force and key == self._scan_key:
            return
        self._scan_key = key
        self.dataset = None
        self.preview.setText("Looking…")
        self._update_buttons()
        fmt, images = self.format.currentText(), self.images.text().strip() or None
        self.jobs.submit(lambda: scan_dataset(Path(src).expanduser(), fmt, images), self._scanned,
                         self._scan_failed, "Scanning dataset")

    def _scanned(self, dataset) -> None:
        if not self._open():
            return
        self.dataset = dataset
        self._show_preview()

    def _into_open_project(self) -> bool:
        """Whether Into project names the open project's folder (as typed: no disk access here)."""
        text = self.target.text().strip()
        return self.project is not None and bool(text) and Path(text).expanduser() == Path(self.project.root)

    def _show_preview(self) -> None:
        """What the scan found, and how its labels match the classes of the project it goes into
        (the open project's only when Into project names it)."""
        from qgn.classes import UNMATCHED, VOID, match_class_names

        dataset = self.dataset
        if dataset is None or not self._open():
            return
        found = sum(1 for item in dataset.items if item.image is not None)
        lines = [f"<b>{escape(in_dialog_words(dataset.description))}</b>",
                 f"{len(dataset.items):,} mask{'' if len(dataset.items) == 1 else 's'}; images found for {found:,}"
                 + ("" if found == len(dataset.items) else " (name the image folder above for the rest)")]
        target = self.project.classes if self._into_open_project() else None
        if dataset.file_classes is not None:
            names = dataset.file_classes.names
            if target is None:
                lines.append(f"A new project gets the classes the files name: {escape(', '.join(names[:16]))}"
                             + (" …" if len(names) > 16 else "")
                             + ("" if self.project is None else " (a project already in that folder matches "
                                "them to its own classes)"))
            else:
                ids = match_class_names(names, target)
                shown = [f"{escape(n)} → {escape(target.names[v])}" if v >= 0 else (
                         f"{escape(n)} → void" if v == VOID else
                         f"<span style='color:#ff8a80'>{escape(n)} → no class</span>") for n, v in zip(names, ids)]
                lines.append("Labels: " + ", ".join(shown[:20]) + (" …" if len(shown) > 20 else ""))
                if UNMATCHED in ids:
                    lines.append("Masks using a label with no class are skipped (qgn import --map maps them).")
        lines += [f"<i>Note: {escape(in_dialog_words(w))}</i>" for w in getattr(dataset, "warnings", [])]
        examples = ", ".join(f"{escape(i.name)}{'' if i.image else ' (no image)'}" for i in dataset.items[:PREVIEW_ITEMS])
        lines.append(f"First: {examples}{' …' if len(dataset.items) > PREVIEW_ITEMS else ''}")
        self.preview.setText("<br>".join(lines))
        self._update_buttons()

    def _scan_failed(self, message: str) -> None:
        if not self._open():
            return
        self._scan_key = None  # the same source may be fixed on disk and tried again
        self.dataset = None
        self.preview.setText(f"<span style='color:#ff8a80'>{escape(in_dialog_words(message))}</span>")
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.import_button.setEnabled(not self.running and self.dataset is not None
                                      and bool(self.target.text().strip()))
        self.cancel_button.setEnabled(self.running and not self._cancelling())

    # ------------------------------------------------------------------ import
    def start(self) -> None:
        from qgn.project_import import import_into_project
        from qgn.quadtree.label_io import read_classes_file

        if self.dataset is None or self.running:
            return
        target = Path(self.target.text().strip()).expanduser()
        classes_file = self.classes.text().strip()
        dataset = self.dataset
        project = self.project
        update = self.update_box.isChecked()
        cancel = self._start_job()

        def run(report):
            from qgn_studio.discovery import resolved

            # here, not on the UI thread: resolving touches the disk (a symbolic link loop is no error)
            open_project = project if project is not None and resolved(target) == project.root else None
            classes = read_classes_file(classes_file) if classes_file else None
            return import_into_project(dataset.root, target, classes=classes, progress=report, dataset=dataset,
                                       project=open_project, update=update, should_stop=cancel.is_set)

        self._submit(self.jobs, run, self._ended(self._done, self.finished_unseen),
                     self._ended(self._failed, self.finished_unseen), "Importing dataset", f"into {target}")

    def _done(self, report) -> None:
        self.running = False
        if not report.not_reached:  # a cancelled import's bar stays where it stopped
            self.progress.setRange(0, 1)
            self.progress.setValue(1)
        skipped = "".join(f"<br>skipped {escape(name)}: {escape(in_dialog_words(why))}" for name, why in report.skipped[:8])
        voided = f"<br>{escape(report.voided_text())}" if report.voided else ""
        self.log.setText(f"{escape(import_summary(report))}{voided}{skipped}")
        self._update_buttons()
        if report.project is not None:
            self.imported.emit(report)

    def _failed(self, message: str) -> None:
        self.running = False
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.log.setText(f"<span style='color:#ff8a80'>Import failed: {escape(in_dialog_words(message))}</span>")
        self._update_buttons()
