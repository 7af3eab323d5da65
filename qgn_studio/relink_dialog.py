"""File → Find missing images…: the project's images that are not where project.json says (their
folder moved, was renamed, or the project came from another machine) are looked for in a folder
the user chooses, and the project is pointed at them (``qgn.project_relink``).

Choosing a folder searches it (with its subfolders) on the batch thread, with progress and Cancel;
the dialog then lists what it will relink, and what it will not and why (two candidates nothing
tells apart, other bytes than noted, not found). Nothing is written until Relink is pressed:
project.json is then written once on the window's file thread (after its pending saves), merging
what another writer changed meanwhile. Annotations follow their images (they are named after the
image's key, not its path). ``relinked(outcome)`` reaches the window even when the dialog was
closed meanwhile: it lists the images found and says what is still missing.
"""
from __future__ import annotations

import os
from html import escape
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from qgn_studio.job_dialog import JobDialog, JobLog

SHOWN = 200  # rows per group of the list (a count says the rest)


class RelinkOutcome:
    """What a relink of ``project`` did: ``result`` (``qgn.project_relink.RelinkResult``), ``found``
    (the relinked files, resolved as the image list shows them), ``missing`` (the images still
    missing) of its ``total``."""

    def __init__(self, project, result, found: list, missing: list, total: int):
        self.project, self.result, self.found, self.missing, self.total = project, result, found, missing, total


class RelinkDialog(JobDialog):
    """See the module docstring. ``project``: the open project; ``batch``: the JobRunner for the
    search; ``jobs``: the one that writes the project; ``relinked(outcome)``: after the write."""

    CANCELLING = "Cancelling the search…"

    def __init__(self, project, batch, jobs, relinked, missing: int | None = None, parent=None):
        super().__init__(parent)
        self.project, self.batch, self.jobs, self.relinked = project, batch, jobs, relinked
        self.plan = None
        self.setWindowTitle("Find missing images")
        self.setMinimumWidth(720)
        intro = self._intro(project, missing)
        row = self._folder_row()
        self._make_list()
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1)
        self.log = JobLog()  # a long end line (deep folders): grows the dialog, then scrolls
        self.log.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.buttons = QtWidgets.QDialogButtonBox()
        self.relink_button = self.buttons.addButton("Relink", QtWidgets.QDialogButtonBox.ButtonRole.AcceptRole)
        self.relink_button.clicked.connect(self.relink)
        self._add_cancel(self.buttons, "Stop the search; nothing is relinked")
        close = self.buttons.addButton(QtWidgets.QDialogButtonBox.StandardButton.Close)
        close.clicked.connect(self.reject)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(row)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.log)
        layout.addWidget(self.buttons)
        self._update_buttons()

    @staticmethod
    def _intro(project, missing: int | None) -> QtWidgets.QLabel:
        """What the dialog does, and how many of ``project``'s images are missing when the open banner counted."""
        # without the open banner's count nothing says an image is missing: say what the dialog does, not
        # "Some images are not where the project expects them" over a project whose images are all there
        found = ("Finds the project's images that are not where it expects them (their folder was moved or "
                 "renamed, or the project came from another machine)." if missing is None else
                 f"{missing} of the project's {len(project.images)} images "
                 f"{'is' if missing == 1 else 'are'} not where the project expects them.")
        intro = QtWidgets.QLabel(
            f"{found} Choose the folder they are in now: it is "
            "searched, with its subfolders, for files of the same names. An image whose annotation was saved is "
            "matched only to a file with the same bytes; an image with two candidates is never chosen for you. "
            "Nothing is written until you press Relink, and annotations follow their images.")
        intro.setWordWrap(True)
        return intro

    def _folder_row(self) -> QtWidgets.QHBoxLayout:
        """The folder box (Enter searches), its "Folder…" button and "Search"."""
        self.folder = QtWidgets.QLineEdit()
        self.folder.setPlaceholderText("the folder the images were moved to")
        browse = QtWidgets.QPushButton("Folder…")
        browse.clicked.connect(self._browse)
        self.search_button = QtWidgets.QPushButton("Search")
        self.search_button.clicked.connect(self.search)
        self.folder.returnPressed.connect(self.search)
        self.folder.textChanged.connect(self._update_buttons)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(QtWidgets.QLabel("Folder"))
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        row.addWidget(self.search_button)
        return row

    def _make_list(self) -> None:
        """``self.list``: the images found, a tick per match, where each is now and how it was checked."""
        self.list = QtWidgets.QTreeWidget()
        self.list.setHeaderLabels(["Image", "Where it is now (in the folder)", "Checked by"])
        self.list.setRootIsDecorated(True)
        self.list.setMinimumHeight(260)
        self.list.itemChanged.connect(self._ticked)
        self._unticked: set[str] = set()
        header = self.list.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(1, QtWidgets.QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)

    def _browse(self) -> None:
        chosen = QtWidgets.QFileDialog.getExistingDirectory(self, "The folder the images are in now",
                                                            self.folder.text())
        if chosen:
            self.set_folder(chosen)

    def set_folder(self, folder) -> None:
        """Fill in the folder and search it (the Folder… button, tests)."""
        self.folder.setText(str(folder))
        self.search()

    # ------------------------------------------------------------------ search
    def search(self) -> None:
        from qgn.project_relink import find_missing

        text = self.folder.text().strip()
        if not text or self.running or not self._open():
            return
        self.plan = None
        self.list.clear()
        project, folder = self.project, Path(text).expanduser()
        cancel = self._start_job()
        self.log.setText(f"Looking in {escape(str(folder))}…")
        self._submit(self.batch, lambda report: find_missing(project, folder, report, cancel.is_set),
                     self._ended(self._searched), self._ended(self._failed), "Finding missing images", f"in {folder}")

    def _searched(self, plan) -> None:
        self.running = False
        self.progress.setRange(0, 1)
        self.progress.setValue(0 if plan.cancelled else 1)
        self.plan = None if plan.cancelled else plan
        self._show_plan(plan)
        self.log.setText(escape(plan.summary()[:1].upper() + plan.summary()[1:])
                         + (f"<br>Not searched: {escape('; '.join(plan.unreadable[:3]))}" if plan.unreadable else ""))
        self._update_buttons()

    def _show_plan(self, plan) -> None:
        """The plan, grouped; each image to be relinked has a check box (unticked: left missing)."""
        self.list.blockSignals(True)
        self.list.clear()
        self._unticked = set()
        folder = plan.folder

        def shown(path) -> str:  # under the folder searched: what tells candidates apart
            try:
                return str(Path(path).relative_to(folder))
            except ValueError:
                return str(path)

        groups = [
            (f"Will be relinked ({len(plan.found)})",
             [(m.old, shown(m.new), _how(m.how), str(m.new), m.key) for m in plan.found]),
            (f"Ambiguous, not relinked ({len(plan.ambiguous)})",
             [(old, "; ".join(shown(p) for p in paths[:3]) + (" …" if len(paths) > 3 else ""),
               f"{len(paths)} candidates", "\n".join(map(str, paths[:20])), None) for _key, old, paths in plan.ambiguous]),
            (f"Other bytes or size than expected, not relinked ({len(plan.rejected)})",
             [(old, why, "", why, None) for _key, old, why in plan.rejected]),
            (f"Not found ({len(plan.not_found)})", [(old, "", "", "", None) for _key, old in plan.not_found]),
        ]
        for title, rows in groups:
            if rows:
                self._add_group(title, rows)
        for column in (0, 2):
            self.list.resizeColumnToContents(column)
        self.list.setColumnWidth(0, max(self.list.columnWidth(0), 180))
        self.list.blockSignals(False)

    def _add_group(self, title: str, rows: list) -> None:
        group = QtWidgets.QTreeWidgetItem([title])
        self.list.addTopLevelItem(group)
        for old, where, how, tip, key in rows[:SHOWN]:
            item = QtWidgets.QTreeWidgetItem([Path(old).name, where, how])
            item.setToolTip(0, f"was {old}")
            item.setToolTip(1, tip)
            if key is not None:
                item.setData(0, QtCore.Qt.ItemDataRole.UserRole, key)
                item.setFlags(item.flags() | QtCore.Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(0, QtCore.Qt.CheckState.Checked)
            if how in (_how("name"), _how("name and folders")):  # nothing could be checked: the user should look
                item.setToolTip(2, "No saved annotation and no note of its bytes: only the name matched. "
                                   "Untick it if it is not the image.")
            group.addChild(item)
        if len(rows) > SHOWN:
            group.addChild(QtWidgets.QTreeWidgetItem([f"… and {len(rows) - SHOWN} more"]))
        group.setExpanded(True)

    def _ticked(self, item, column: int) -> None:
        key = item.data(0, QtCore.Qt.ItemDataRole.UserRole)
        if key is None or column != 0:
            return
        if item.checkState(0) == QtCore.Qt.CheckState.Checked:
            self._unticked.discard(key)
        else:
            self._unticked.add(key)
        self._update_buttons()

    def chosen(self) -> list:
        """The matches of the plan to relink: those not unticked."""
        return [] if self.plan is None else [m for m in self.plan.found if m.key not in self._unticked]

    def _failed(self, message: str) -> None:
        self.running = False
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.log.setText(f"<span style='color:#ff8a80'>{escape(message)}</span>")
        self._update_buttons()

    # ------------------------------------------------------------------ relink
    def relink(self) -> None:
        from qgn.project_relink import missing_images, relink

        from dataclasses import replace

        chosen, project = self.chosen(), self.project
        if not chosen or self.running:
            return
        plan = replace(self.plan, found=chosen)
        self.running = True
        self._update_buttons()
        self.log.setText(f"Relinking {len(chosen)} image(s)…")

        def run() -> RelinkOutcome:
            result = relink(project, plan)
            found = [Path(os.path.realpath(m.new)) for m in result.relinked]  # as the image list shows files
            return RelinkOutcome(project, result, found, [im.path for im in missing_images(project)], len(project.images))

        self.jobs.submit(run, self._done, self._relink_failed, "Relinking missing images")

    def _done(self, outcome: RelinkOutcome) -> None:
        self.relinked(outcome)
        if not self._open():
            return
        self.running = False
        self.plan = None
        skipped = "".join(f"<br>{escape(m.old.name)}: not relinked: {escape(why)}"
                          for m, why in outcome.result.skipped[:5])
        left = f"; {len(outcome.missing)} still missing" if outcome.missing else ""
        self.log.setText(f"Relinked {len(outcome.result.relinked)} image(s){left}.{skipped}")
        self._update_buttons()

    def _relink_failed(self, message: str) -> None:
        if self._open():
            self.running = False
            self._failed(f"Nothing was relinked: {message}")
        else:
            self.relinked(message)

    def _update_buttons(self) -> None:
        found = len(self.chosen())
        self.relink_button.setText(f"Relink {found} image{'s' if found != 1 else ''}" if found else "Relink")
        self.relink_button.setEnabled(bool(found) and not self.running)
        self.search_button.setEnabled(bool(self.folder.text().strip()) and not self.running)
        self.cancel_button.setEnabled(self.running and not self._cancelling() and self.plan is None)


def _how(how: str) -> str:
    return {"bytes": "size and SHA-256", "name": "name only", "bytes and folders": "SHA-256 and folders",
            "name and size": "pixel size of its annotation", "name and folders": "name and folders only",
            "name and size and folders": "pixel size and folders"}.get(how, how)
