"""Batch export of a project's annotations: pick formats and a folder, watch the progress.

The formats are those of ``qgn.formats.FORMATS`` (one checkbox each); the export runs
``qgn.project_export.export_project`` on a batch job thread of its own once any unsaved edits were saved
(on the projects' job thread, so the export sees them), so autosaves go on while a long export
runs. Files land in ``<folder>/<format>/``; the Cityscapes tree files everything under the split
chosen in "Cityscapes split" (train unless changed; any plain folder name).
Cancel stops the export after the image being written (the files written so far stay); closing the
dialog lets the export finish, and the status bar says when it has.
"""
from __future__ import annotations

import html
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from qgn_studio.job_dialog import JobDialog, JobLog

DEFAULT_FORMATS = ("qgt", "png")


def failed_lines(paths) -> str:
    """The images an export (``ExportedFiles``) failed, after its first line: "\nK of N images failed:"
    and one line per image ("b: its image … is not there (…)"), then "\nK of N images were written in
    some formats only:" and one line each ("b: not as fiftyone: its image …"); "" when none failed."""
    text, images = "", paths.images
    for lines, what, failed in ((paths.failed, "failed", ": failed: "),
                                (getattr(paths, "partly", ()), "were written in some formats only", ": failed as ")):
        if lines:
            text += (f"\n{len(lines)} of {images} image{'s' if images != 1 else ''} {what}:"
                     + "".join(f"\n{line.replace(failed, ': ' if failed == ': failed: ' else ': not as ', 1)}"
                               for line in lines))
    return text


def written_line(files: int, folders: int, folder: str, paths) -> str:
    """The first line of an export's end: what it wrote into ``folder`` - "Wrote 3 files into F (2
    folders)", "Wrote no files into F: no saved annotations to export", or, where images failed and
    nothing was written, "Wrote no files into F"."""
    if files:
        return f"Wrote {files} file{'s' if files != 1 else ''} into {folder} ({folders} folder{'s' if folders != 1 else ''})"
    return f"Wrote no files into {folder}" + ("" if paths.failed or getattr(paths, "partly", ())
                                             else ": no saved annotations to export")


def status_line(paths, out) -> str:
    """The status bar's line at an export's end (``ExportedFiles``): "Export done: 3 files into out",
    "…; 1 image failed (the export dialog names it)", "Export into out wrote nothing: 3 images failed …"."""
    failed, partly = len(paths.failed), len(getattr(paths, "partly", ()))
    said = "".join(f"; {n} image{'s' if n != 1 else ''} {what}" for n, what in
                   ((failed, "failed"), (partly, "written in some formats only")) if n)
    if said:
        said += f" (the export dialog names {'it' if failed + partly == 1 else 'them'})"
    if not paths and said:
        return f"Export into {out} wrote nothing{said}"
    return f"Export done: {len(paths)} file{'s' if len(paths) != 1 else ''} into {out}{said}"


class ExportDialog(JobDialog):
    """See the module docstring. ``projects``: the ProjectController (its project must be open);
    ``jobs``: the JobRunner the export runs on — not the projects' own, so that autosaves go on
    while a long export runs."""

    exported = QtCore.Signal(list)  # the paths written
    CANCELLING = "Cancelling after the image being written…"

    def __init__(self, projects, jobs, parent=None):
        super().__init__(parent)
        self.projects = projects
        self.jobs = jobs
        project = projects.project
        self.setWindowTitle("Export annotations")
        self.setMinimumWidth(640)
        # Built in this order (top to bottom) so the tab order is unchanged.
        intro = self._intro(project)
        formats_box = self._formats_box()
        folder_row = self._folder_row(project)
        images_row = self._images_row()
        self._build_progress_and_buttons()
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(formats_box)
        layout.addLayout(folder_row)
        layout.addLayout(images_row)
        layout.addWidget(self.only_done)
        layout.addWidget(self.progress)
        layout.addWidget(self.log)
        layout.addStretch(1)  # height left once a long log line has grown the dialog: under the line
        layout.addWidget(self.buttons)
        self.written: list[Path] = []
        self._update_buttons()

    # ------------------------------------------------------------------ construction
    def _intro(self, project) -> QtWidgets.QLabel:
        """What will be exported: the project, its image count and how many are annotated (unsaved edits
        counted, since they are saved first)."""
        annotated = {im.key for im in project.annotated()}
        for doc in self.projects.unsaved():  # saved first; untouched maps from browsing are not annotations
            try:
                annotated.add(project.image_for(doc.path).key)
            except KeyError:
                annotated.add(str(doc.path))
        intro = QtWidgets.QLabel(
            f"Exports the annotations of the project <b>{project.root.name}</b>: {len(project.images)} images, "
            f"{len(annotated)} annotated. Unsaved edits are saved first; files go to "
            "<i>folder/format/</i>, named after the images.")
        intro.setWordWrap(True)
        return intro

    def _formats_box(self) -> QtWidgets.QGroupBox:
        """One checkbox per format of ``qgn.formats.FORMATS`` beside its description (``self.checks``)."""
        from qgn.formats import FORMATS

        self.checks: dict[str, QtWidgets.QCheckBox] = {}
        formats_box = QtWidgets.QGroupBox("Formats")
        formats_layout = QtWidgets.QGridLayout(formats_box)
        formats_layout.setColumnStretch(1, 1)
        for row, (name, fmt) in enumerate(FORMATS.items()):
            check = QtWidgets.QCheckBox(name)
            check.setChecked(name in DEFAULT_FORMATS)
            check.toggled.connect(self._update_buttons)
            check.setToolTip(fmt.description)
            text = QtWidgets.QLabel(fmt.description[:1].upper() + fmt.description[1:])
            text.setWordWrap(True)
            text.setStyleSheet("color: #b0b0b0;")
            formats_layout.addWidget(check, row, 0, QtCore.Qt.AlignmentFlag.AlignTop)
            formats_layout.addWidget(text, row, 1)
            self.checks[name] = check
        return formats_box

    def _folder_row(self, project) -> QtWidgets.QHBoxLayout:
        """"Into" the export folder (default ``<project>/export``) and Browse…."""
        self.folder = QtWidgets.QLineEdit(str(project.root / "export"))
        self.folder.textChanged.connect(self._update_buttons)
        browse = QtWidgets.QPushButton("Browse…")
        browse.setToolTip("Choose the folder to export into")
        browse.clicked.connect(self._browse)
        folder_row = QtWidgets.QHBoxLayout()
        folder_row.addWidget(QtWidgets.QLabel("Into"))
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(browse)
        return folder_row

    def _images_row(self) -> QtWidgets.QHBoxLayout:
        """Only-done switch, and whether the images are referenced, copied or linked."""
        self.only_done = QtWidgets.QCheckBox("Only images marked done")
        self.only_done.setToolTip("Leave out the images not marked done (Ctrl+D in the Annotate panel)")
        self.images = QtWidgets.QComboBox()
        for text, mode in (("Reference the images where they are", None), ("Copy the images into the export", "copy"),
                           ("Link the images into the export", "link")):
            self.images.addItem(text, mode)
        self.images.setToolTip("labelme: the image beside each JSON (copied: also embedded as imageData); COCO: "
                               "images/default/; CVAT: JPEGImages/; FiftyOne: data/. Without: labelme's imagePath leads to the image where it is. "
                               "Cityscapes always has its leftImg8bit PNGs")
        images_row = QtWidgets.QHBoxLayout()
        images_row.addWidget(QtWidgets.QLabel("Images"))
        images_row.addWidget(self.images, 1)
        self.split = QtWidgets.QComboBox()
        self.split.setEditable(True)
        self.split.setMinimumContentsLength(10)  # train_extra fits
        self.split.addItems(["train", "val", "test"])
        self.split.setToolTip("The Cityscapes tree's split folder: gtFine/<split>/ and leftImg8bit/<split>/. "
                              "train is what torchvision's and QGN's Cityscapes readers open by default; "
                              "val or test for held-out labels; any folder name of letters, digits, _ and -")
        self.split_label = QtWidgets.QLabel("Cityscapes split")
        images_row.addSpacing(12)
        images_row.addWidget(self.split_label)
        images_row.addWidget(self.split)
        self.checks["cityscapes"].toggled.connect(self._update_split)
        self._update_split()
        return images_row

    def _build_progress_and_buttons(self) -> None:
        """The progress bar, the log line, Export and Close."""
        self.progress = QtWidgets.QProgressBar()
        self.progress.setValue(0)
        self.log = JobLog()  # a long line (a wait naming a folder and its holder) grows the dialog
        self.log.setStyleSheet("color: #9a9a9a;")
        self.buttons = QtWidgets.QDialogButtonBox()
        self.export_button = self.buttons.addButton("Export", QtWidgets.QDialogButtonBox.ButtonRole.AcceptRole)
        self.export_button.setToolTip("Write the project's annotations in the ticked formats into the folder above "
                                      "(edits not yet saved are saved first)")
        self._add_cancel(self.buttons, "Stop after the image being written; the files written so far stay")
        self.close_button = self.buttons.addButton(QtWidgets.QDialogButtonBox.StandardButton.Close)
        self.close_button.setToolTip("Close this window; an export under way goes on")
        self.export_button.clicked.connect(self.start)
        self.close_button.clicked.connect(self.reject)

    def formats(self) -> list[str]:
        return [name for name, check in self.checks.items() if check.isChecked()]

    def set_formats(self, names) -> None:
        for name, check in self.checks.items():
            check.setChecked(name in names)

    def _update_split(self) -> None:
        on = self.checks["cityscapes"].isChecked()
        self.split.setEnabled(on)
        self.split_label.setEnabled(on)

    def _update_buttons(self) -> None:
        self.export_button.setEnabled(not self.running and bool(self.formats()) and bool(self.folder.text().strip()))
        self.cancel_button.setEnabled(self.running and not self._cancelling())

    def _browse(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Export into", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def start(self) -> None:
        """Save unsaved edits, then export on the job thread."""
        from qgn.formats import check_split
        from qgn.project_export import export_project

        formats, out = self.formats(), Path(self.folder.text().strip()).expanduser()
        if not formats or self.running:
            return
        split = self.split.currentText().strip() if "cityscapes" in formats else None
        if split is not None:
            try:
                check_split(split)
            except ValueError as exc:
                self.log.setText(f"<span style='color:#ff8a80'>Cityscapes {html.escape(str(exc), quote=False)}</span>")
                self.split.setFocus()
                return
        saving = [(doc.name, doc.annotation, doc.annotation.version) for doc in self.projects.unsaved()]  # saved first
        if not self.projects.save():
            return
        cancel = self._start_job()
        self.log.setText("Saving, then exporting…")
        project, only_done = self.projects.project, self.only_done.isChecked()
        images, workspace = self.images.currentData(), self.projects.workspace

        done = self._ended(self._done, lambda paths: workspace.show_status(status_line(paths, out), 10000))
        failed = self._ended(self._failed, lambda message: workspace.show_status(
            f"Export into {out} failed: {message}", 15000))

        def run(report):  # job thread
            return export_project(project, out, formats, report, only_done, errors=[], images=images, split=split,
                                  should_stop=cancel.is_set)  # (errors: each failed image said at the end, the rest exported)

        def export() -> None:  # once the saves queued before it are written
            unsaved = [name for name, session, version in saving if session.saved_version < version]
            if unsaved:  # a save failed (a full disk): the export would hold the old annotation, not the screen's
                failed(f"{len(unsaved)} image{'s' if len(unsaved) != 1 else ''} with edits could not be saved "
                       f"first ({', '.join(unsaved[:3])}{', …' if len(unsaved) > 3 else ''}; the warning says why), "
                       "so nothing was exported: the export would hold their last saved annotations, not what "
                       "is on screen. Fix that (free disk space) and export again")
                return
            self._submit(self.jobs, run, done, failed, "Exporting", f"into {out}")

        self.projects.jobs.submit(lambda: None, lambda _none: export(), failed, "Saving before the export")

    def _done(self, paths) -> None:
        """The export ended (``qgn.project_export.ExportedFiles``): all of it, or up to where Cancel stopped it."""
        self.running = False
        from qgn.project_export import written_summary

        self.written = list(paths)
        notes = "".join(f"\n{note}" for note in getattr(paths, "notes", []))  # said on a progress line, replaced since
        if paths.not_reached:  # the bar stays where it stopped
            self.log.setText(f"Export cancelled after {paths.images - paths.not_reached} of {paths.images} images; "
                             f"the files written so far stay in {html.escape(self.folder.text(), quote=False)}"
                             + notes + failed_lines(paths))  # (the images that failed before the cancel too)
            self._update_buttons()
            return
        files, folders = written_summary(self.written, Path(self.folder.text().strip()).expanduser())
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.log.setText(written_line(files, folders, self.folder.text(), paths) + notes + failed_lines(paths))
        self._update_buttons()
        self.exported.emit(self.written)

    def _failed(self, message: str) -> None:
        self.running = False
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.log.setText(f"<span style='color:#ff8a80'>Export failed: {html.escape(message, quote=False)}</span>")
        self._update_buttons()
