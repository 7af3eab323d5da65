"""Opening into the window: images, folders, a project's images, a model; and taking images out again.

``open_paths`` (File ▸ Open, a drop, the command line) opens a project, or images and a model, asking
first before images join an open project; the problems are one banner. A project's images replace the
open ones (``show_project_images``), its missing ones summed up in a banner whose link finds them
(``show_relink``, ``_relinked``). ``close_documents`` and ``list_again`` take images out of the list and
bring them back; ``load_model`` remembers a model only once it has loaded (``_remember_chosen_model``).
While a project is read the window takes no input but Esc and Open project (``_opening_changed``,
``ShortcutGate``).

A mixin of ``qgn_studio.main_window.MainWindow`` (its ``__init__`` makes the state). Reads and writes
``_missing_shown``, ``_recent``, ``_chosen_model``; reads ``workspace``, ``projects``, ``annotator``,
``canvas``, ``images``, ``explore``, ``layer_panel``, ``thumbnails``, ``uncertainty_order``, ``worker``,
``jobs``, ``batch_jobs``, ``settings``, ``device_choice``, ``_shortcut_gate``. Calls back into the window's
``_hovered`` and ``_update_title``.
"""
from __future__ import annotations

import html
import math
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from qgn.imagefile import IMAGE_EXTENSIONS
from qgn_studio.discovery import expand_paths, resolved

PROBLEMS_SHOWN = 5  # lines of the banner about paths that could not be opened; the rest are counted
RELINK_LINK = "relink:"  # the missing-images banner's link to File ▸ Find missing images…
PLACEHOLDER = "Open images with Ctrl+O, a folder with Ctrl+Shift+O, or drop them here"


class ShortcutGate(QtCore.QObject):
    """An application event filter that swallows the shortcuts of every action but ``allowed``
    (while a project opens nothing may be edited; the menus and widgets are disabled meanwhile)."""

    def __init__(self, allowed, parent=None):
        super().__init__(parent)
        self.allowed = allowed  # a callable: the actions whose shortcuts still work

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QtCore.QEvent.Type.Shortcut and watched not in self.allowed():
            return True
        return False


class WindowOpeningMixin:
    """``MainWindow``'s opening (see the module docstring)."""

    def _opening_changed(self, opening: bool) -> None:
        """While a project is read: no clicks, menus, tools or shortcuts (an edit would land in the
        project about to close) but Esc (cancel, also the status bar's button) and Open project
        (which replaces the one being read)."""
        widgets = [self.centralWidget(), self.menuBar(), *self.findChildren(QtWidgets.QDockWidget),
                   *self.findChildren(QtWidgets.QToolBar)]
        for widget in widgets:
            widget.setEnabled(not opening)
        app = QtWidgets.QApplication.instance()
        if opening:
            app.installEventFilter(self._shortcut_gate)
        else:
            app.removeEventFilter(self._shortcut_gate)

    def open_paths(self, paths: list, append: bool = False) -> None:
        if not append and self.projects.open_if_project(paths):
            return
        images, models, problems = expand_paths(paths)
        if images and self.projects.project is not None:
            choice = self.projects.images_to_open(images)  # never join a project without a word
            if choice == "cancel" or (choice == "close" and not self.projects.close_project()):
                return
            if choice == "add":
                append = True  # a project's images stay listed; new ones join them and project.json
                self.projects.add_images([p for p in images if self.workspace.doc_for(p) is None])
        for path in paths[:3]:
            self.workspace.remember_recent(path)
        for model in models[:1]:
            self.load_model(model)
        if problems:
            shown = [html.escape(problem) for problem in problems[:PROBLEMS_SHOWN]]
            if len(problems) > PROBLEMS_SHOWN:
                shown.append(f"… and {len(problems) - PROBLEMS_SHOWN} more like these")
            self.canvas.show_message("<br>".join(shown), "warning", "open")
        if images:
            self._list_images(images, append)

    def show_project_images(self, opening, docs: list, dropped: list) -> None:
        """The images of the project just opened (``project_open.ProjectOpening``) replace the open
        ones (``docs``: their documents, worked out off the UI thread; ``dropped`` leave); the
        missing ones are summed up in one banner."""
        if opening.missing:
            self._show_missing(opening.missing, len(opening.project.images))
        else:
            self.canvas.clear_message("open")  # what an earlier open said no longer holds
        if opening.twins:
            from qgn_studio.discovery import twins_text

            self.canvas.show_message(html.escape(twins_text(opening.twins)), "warning", "twins")
        else:
            self.canvas.clear_message("twins")
        self.annotator.forget(dropped)
        self.workspace.set_documents(docs)
        self._listed(docs, 0, False)

    def _show_missing(self, missing: list, total: int) -> None:
        """The banner that sums up the project's images missing on disk, with a link to find them."""
        from qgn_studio.discovery import missing_images_text

        link = f' <a href="{RELINK_LINK}" style="color:white"><b>Find missing images…</b></a>'
        self._missing_shown = len(missing)
        self.canvas.show_message(html.escape(missing_images_text(missing, total)) + link, "warning", "open")

    def show_relink(self):
        """File ▸ Find missing images…: look for the project's missing images in a folder and relink
        them (``relink_dialog``); None when no project is open."""
        from qgn_studio.relink_dialog import RelinkDialog

        project = self.projects.project
        if project is None:
            self.workspace.warn("Open a project first: Find missing images relinks a project's moved images",
                                "open", 8000)
            return None
        missing = self._missing_shown if self._missing_shown and "open" in self.canvas.banner.messages else None
        dialog = RelinkDialog(project, self.batch_jobs, self.jobs, self._relinked, missing, self)
        dialog.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def _relinked(self, outcome) -> None:
        """A relink was written (or failed: its message): list the images found, and say what is
        still missing (the banner) — also when the dialog was closed meanwhile."""
        if isinstance(outcome, str):
            self.workspace.warn(f"Nothing was relinked: {outcome}", "open", 10000)
            return
        count = len(outcome.result.relinked)
        if outcome.project is not self.projects.project:  # another project was opened meanwhile
            self.workspace.show_status(f"Relinked {count} image{'s' if count != 1 else ''} of "
                                       f"{outcome.project.root.name}", 8000)
            return
        known = {d.path for d in self.docs}
        found = [path for path in outcome.found if path not in known]
        if found:
            self.open_paths(found, append=True)
        if outcome.missing:
            self._show_missing(outcome.missing, outcome.total)
        else:
            self.canvas.clear_message("open")
        self.workspace.show_status(f"Relinked {count} image{'s' if count != 1 else ''}"
                                   + (f"; {len(outcome.missing)} still missing" if outcome.missing else ""), 8000)

    def _list_images(self, images: list, append: bool) -> None:
        if not append:  # an image opened again keeps its document (result, annotation, undo log)
            keep = set(images)
            dropped = [d for d in self.docs if d.path not in keep]
            if not self.projects.confirm_discard("closing the images open now", dropped):
                return
            self.annotator.forget(dropped)
        self._listed(*self.workspace.open_documents(images, append), append)

    def _listed(self, new: list, first: int, append: bool) -> None:
        """``new`` documents joined the list (from row ``first``): their thumbnails, the order."""
        self.thumbnails.request(self.images.thumbnails_to_read([d.path for d in new], not append), replace=not append)
        if new:
            self.workspace.remember_folder(new[0].path)
        if not append:
            self.uncertainty_order.scores = {}
            self.uncertainty_order.restore()  # the order scored last time for these images
        self.images.set_current(min(first, len(self.docs) - 1) if not self.uncertainty_order.scores else 0)

    def close_documents(self, docs: list, forget: bool = True) -> None:
        """Take ``docs`` out of the list (their annotations and undo logs go, unless ``forget`` is
        False: ``list_again`` may bring them back; nothing on disk changes here): the row after the
        current one that the list's filter shows, else the one before it, becomes current - or none,
        the filter showing none of those left (a hidden one made current was listed again)."""
        gone = set(id(d) for d in docs)
        if not gone:
            return
        row, listed = self.images.current(), self.docs  # (a property: read once, not thrice per row)
        if 0 <= row < len(listed) and id(listed[row]) not in gone:
            after = listed[row]  # the current image stays (the rows the filter shows are not needed)
        else:
            shown = [listed[r] for r in self.images.visible_rows() if 0 <= r < len(listed) and id(listed[r]) not in gone]
            position = {id(d): i for i, d in enumerate(listed)}
            after = next((d for d in shown if position[id(d)] > row),
                         next((d for d in reversed(shown) if position[id(d)] < row), None))
        if forget:
            self.annotator.forget(docs)
        self._recent = [d for d in self._recent if id(d) not in gone]
        self.workspace.close_documents(docs)
        if after is not None and after in self.docs:
            self.images.set_current(self.docs.index(after))
        else:
            self.images.set_current(-1)  # nothing left, or nothing the filter shows
            self.canvas.show_document(None)
            self.canvas.show_result(None)
            self.canvas.set_placeholder(PLACEHOLDER if not self.docs else
                                        "No image left that the list's filter shows: choose another filter")
            self.explore.show_result(None, None)
            self.annotator.show_document(None)
            self.layer_panel.refresh(None)  # not the last image's active sites
            self._hovered(math.nan, math.nan)  # nor what was under the pointer on it
            self._update_title()

    def list_again(self, docs: list, rows: list) -> list:
        """``docs``, taken out of the list (``close_documents`` with ``forget`` False), join it again
        as they were (their done flags, annotations, undo logs), each at its row in ``rows`` when it
        left, the current image staying current: a removal the project refused. Returns those listed
        (not one whose image was opened again meanwhile: that document stays)."""
        back = [(row, d) for row, d in zip(rows, docs) if self.workspace.doc_for(d.path) is None]
        if not back:
            return []
        current = self.workspace.current
        listed = list(self.docs)
        for row, doc in sorted(back, key=lambda pair: pair[0]):  # in the order they had: each at its row
            listed.insert(min(row, len(listed)), doc)
            if doc.annotation is None:  # its image is loaded: read the saved map before a start from the prediction
                self.projects.document_shown(doc)
        self.workspace.set_documents(listed)
        new = [d for _row, d in back]
        self.thumbnails.request(self.images.thumbnails_to_read([d.path for d in new], False), replace=False)
        # none current (every image shown was removed): the first of those listed again, which the
        # filter shows - row 0 may be one it hides (set_current would force it into the list)
        self.images.set_current(self.docs.index(current if current in self.docs else new[0]))
        return new

    def remove_current_images(self) -> None:
        """Image ▸ Remove: the selected images leave the list (and the project, asked first)."""
        docs = [self.docs[r] for r in self.images.selected_rows() if 0 <= r < len(self.docs)]
        self.projects.remove_images(docs)

    def open_images_dialog(self) -> None:
        pattern = " ".join(f"*{e} *{e.upper()}" for e in IMAGE_EXTENSIONS)  # a.AVIF too, where filters heed case
        files, _ = QtWidgets.QFileDialog.getOpenFileNames(
            self, "Open images", self.workspace.last_folder(), f"Images ({pattern});;All files (*)")
        if files:
            self.open_paths(files)

    def open_folder_dialog(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(
            self, "Open a folder of images", self.workspace.last_folder())
        if folder:
            self.open_paths([folder])

    def open_model_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Open a QGN model", self.workspace.last_folder(), "QGN models (*.safetensors)")
        if path:
            self.load_model(Path(path))

    def load_model(self, path: Path) -> None:
        """Load the model the user chose (a file, a bundled model, the project's). Only once it has
        loaded do the settings (the next start) and the project open now remember it: a model that
        fails to load is recorded nowhere (``_remember_chosen_model``)."""
        self._chosen_model = (Path(path), self.projects.project)
        self.worker.load_model(path, self.device_choice)

    def _remember_chosen_model(self, info) -> None:
        """``info`` loaded: when it is the model the user chose last, remember it for the next start
        and in the project that was open when it was chosen (if that one still is)."""
        if self._chosen_model is None:
            return
        path, project = self._chosen_model
        if resolved(path) != resolved(info.path):  # another model (a device switch, a kept fine-tune)
            return
        self._chosen_model = None
        if self.settings is not None:
            self.settings.setValue("model/path", str(path))
        if project is self.projects.project:
            self.projects.model_chosen(path)

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths and self.workspace.opening:
            self.statusBar().showMessage("A project is opening: drop again when it is open (Esc cancels it)", 5000)
        elif paths:
            self.open_paths(paths, append=True)
            event.acceptProposedAction()
