"""The app's state without widgets: what is open, what is shown, which model and classes, which project.

A ``Workspace`` holds

* ``docs``        the open images (``ImageDocument``, in list order) and ``current``, the one on screen;
* ``model_info``  what the loaded model is (``engine.ModelInfo``: name, path, classes, device), or None;
* ``classes``     the class set the annotations use (``qgn.label_map.ClassSet``: the model's or the project's);
* ``project``     the open ``qgn.project.Project``, or None;
* ``settings``    the app's ``QSettings`` (None: nothing is remembered, as for ``--screenshot``),

and announces every change with a signal. Controllers (``annotator``, ``project_controller``,
``finetuner``, ``head_controller``, ``uncertainty_order``) read and change it; the window and its
panels subscribe to it. What a controller wants *shown* — a status-bar line, a banner over the
canvas, a task's progress, an image made current, a region looked at — it asks for here too, as a
signal the window turns into widgets; so a controller needs no window, and a test needs none either
(``tests/app/``). Nothing here imports a widget.
"""
from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore


class Workspace(QtCore.QObject):
    """See the module docstring. Mutate through the ``set_*`` methods, so subscribers hear of it."""

    documents_changed = QtCore.Signal(list)  # [ImageDocument]: the list (order, members) changed
    current_changed = QtCore.Signal(object)  # ImageDocument or None: the document on screen
    document_changed = QtCore.Signal(object)  # ImageDocument whose listed state changed (done, saved, loaded)
    model_changed = QtCore.Signal(object)  # ModelInfo: a model loaded (or moved to another device)
    classes_changed = QtCore.Signal(object)  # ClassSet or None: the annotations' class set was set or edited
    project_changed = QtCore.Signal(object)  # Project or None
    opening_changed = QtCore.Signal(bool)  # a project is being read: nothing may be edited until it is open
    select_requested = QtCore.Signal(object)  # ImageDocument a controller wants made current (the list does it)
    status = QtCore.Signal(str, int)  # (message, timeout in ms) for the status bar
    message = QtCore.Signal(str, str, str)  # (html text, kind "warning"/"error", key) for the canvas banner
    message_cleared = QtCore.Signal(str)  # key of a banner message that no longer holds
    message_dismissed = QtCore.Signal(str)  # key of a banner message the user closed
    progress = QtCore.Signal(str, int, int, object)  # (text, done, total, cancel callback or None)
    progress_done = QtCore.Signal()
    # (owner, text, done, total, cancel, name, detail, esc): as above, and TaskProgress.show_progress's
    task_progress = QtCore.Signal(object, str, int, int, object, object, str, bool)
    task_ended = QtCore.Signal(object)  # (owner): its task ended
    task_cancelling = QtCore.Signal(object, object)  # (owner, name or None): cancelled, it winds down
    region_requested = QtCore.Signal(QtCore.QRectF)  # image pixels the view should show

    def __init__(self, settings: QtCore.QSettings | None = None, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self.settings = settings
        self.docs: list = []
        self.current = None
        self.model_info = None
        self.classes = None
        self.project = None
        self.opening = False
        self._settings_failed = False  # said once that the settings are not being written

    # ------------------------------------------------------------------ state
    def set_documents(self, docs: list) -> None:
        """The open images are ``docs`` (in list order); ``current`` becomes None if it left."""
        self.docs = list(docs)
        if self.current is not None and all(d is not self.current for d in self.docs):
            self.current = None
        self.documents_changed.emit(self.docs)

    def set_current(self, doc) -> None:
        self.current = doc
        self.current_changed.emit(doc)

    def set_model(self, info) -> None:
        self.model_info = info
        self.model_changed.emit(info)

    def set_classes(self, classes) -> None:
        self.classes = classes
        self.classes_changed.emit(classes)

    def set_opening(self, opening: bool) -> None:
        """A project is being read off the UI thread (True) or that is over (False): the window takes
        no edits meanwhile (an edit would land in the project that is about to close)."""
        if opening != self.opening:
            self.opening = opening
            self.opening_changed.emit(opening)

    def set_project(self, project) -> None:
        self.project = project
        self.project_changed.emit(project)

    def open_documents(self, paths: list, append: bool = False) -> tuple[list, int]:
        """Documents for the image ``paths``, after the open ones (``append``) or instead of them; an
        image open already keeps its document (result, annotation, undo log). Returns the documents
        made new (all of them when not appending) and the row of the first one."""
        from qgn_studio.document import ImageDocument

        existing = {d.path: d for d in self.docs}
        if append:
            new, first = [ImageDocument(p) for p in paths if p not in existing], len(self.docs)
            self.set_documents(self.docs + new)
            return new, first
        self.set_documents([existing.get(p) or ImageDocument(p) for p in paths])
        return self.docs, 0

    def close_documents(self, docs: list) -> None:
        """Take ``docs`` out of the list (nothing on disk changes)."""
        gone = {id(d) for d in docs}
        self.set_documents([d for d in self.docs if id(d) not in gone])

    def doc_for(self, path):
        """The open document of ``path``, or None."""
        return next((d for d in self.docs if d.path == path), None)

    def document_updated(self, doc) -> None:
        """``doc``'s done flag, annotation or save state changed: its list row and the title follow."""
        self.document_changed.emit(doc)

    def select(self, doc) -> None:
        """Ask for ``doc`` to become the current image (the image list makes it so, which sets ``current``)."""
        self.select_requested.emit(doc)

    # ------------------------------------------------------------------ what the user is told
    def show_status(self, text: str, timeout_ms: int = 5000) -> None:
        self.status.emit(text, timeout_ms)

    def show_message(self, text: str, kind: str = "warning", key: str = "") -> None:
        """A banner over the image, replaced by the next message of the same ``key``."""
        self.message.emit(text, kind, key)

    def clear_message(self, key: str) -> None:
        self.message_cleared.emit(key)

    def warn(self, text: str, key: str, timeout_ms: int = 8000) -> None:
        """A warning (plain text: paths and names in it are shown as they are) both over the image
        (``key``; the banner is rich text, so it is escaped there) and in the status bar."""
        from html import escape

        self.show_message(escape(text), "warning", key)
        self.show_status(text, timeout_ms)

    def show_progress(self, text: str, done: int, total: int, on_cancel=None, owner=None,
                      name: str | None = None, detail: str = "", esc: bool = False) -> None:
        """``owner``'s task (any hashable: each running task its own) at ``done`` of ``total``;
        ``name``, ``detail``: what it does and what tells it from another ("Exporting", "into
        /data/out") for its Cancel; ``esc``: the window's Esc stops it (its tooltip says so)."""
        self.task_progress.emit(owner, text, done, total, on_cancel, name, detail, esc)  # (the status bar first: a
        self.progress.emit(text, done, total, on_cancel)  # listener of ``progress`` reads it shown)

    def cancelling(self, owner=None, name: str | None = None) -> None:
        """``owner``'s task was cancelled: "Cancelling <name>…" until its ``hide_progress``."""
        self.task_cancelling.emit(owner, name)

    def hide_progress(self, owner=None) -> None:
        """``owner``'s task ended (the status bar shows another still running)."""
        self.task_ended.emit(owner)
        self.progress_done.emit()

    def show_region(self, rect: QtCore.QRectF) -> None:
        self.region_requested.emit(rect)

    # ------------------------------------------------------------------ the settings on disk
    def sync_settings(self) -> bool:
        """Write the settings to disk now (``QSettings.sync``) and check that it worked. When it did
        not (a full disk, a settings folder that cannot be written, a settings file in another
        format) the user is told once per session - banner, status line and stderr, naming the file
        and what is not remembered - since nothing else would show it; False then."""
        if self.settings is None:
            return True
        self.settings.sync()
        status = self.settings.status()
        if status == QtCore.QSettings.Status.NoError:
            return True
        if not self._settings_failed:
            import sys

            self._settings_failed = True
            why = ("is not a settings file this app can read" if status == QtCore.QSettings.Status.FormatError
                   else "cannot be written (a full disk, or a folder that cannot be written?)")
            text = (f"Settings not saved: {self.settings.fileName()} {why}; the window layout, recent files and "
                    "choices of this session will not be remembered")
            print(f"qgn-studio: warning: {text}", file=sys.stderr, flush=True)
            self.warn(text, "settings", 15000)
        return False

    # ------------------------------------------------------------------ where file dialogs start
    def last_folder(self) -> str:
        """The folder file dialogs start in: where the user last opened something."""
        if self.settings is None:
            return str(Path.cwd())
        return str(self.settings.value("files/last_folder", str(Path.home())))

    def remember_folder(self, path: Path) -> None:
        """``path`` was opened: dialogs start beside it next time (not for the bundled samples)."""
        from qgn.resources import samples_dir

        from qgn_studio.recent import is_inside

        if self.settings is not None and not is_inside(path, samples_dir()):
            self.settings.setValue("files/last_folder", str(Path(path).parent))
            self.sync_settings()

    def remember_recent(self, path) -> None:
        """Put a project folder, image or folder of images first in File ▸ Open recent (not the samples)."""
        from qgn.resources import samples_dir

        from qgn_studio.recent import RecentPaths, is_inside

        if not is_inside(path, samples_dir()):
            RecentPaths(self.settings).add(path)
            self.sync_settings()
