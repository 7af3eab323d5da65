"""Annotation mode: the glue between the canvas, the tools, the annotate panel and the undo log.

An image's annotation (``doc.annotation``, an ``AnnotationSession``) starts from the prediction on
screen, the ground truth found beside the image, an imported mask, or empty (every pixel ignore);
a project's saved annotation or a recovered autosave takes precedence (``adopt``). Starting over
on an annotated image is itself an undoable edit (the pixels that differ).

Annotation mode (A) is a toggle so that the viewing keys keep their meaning outside it. While it is
on, the keys it needs — ``[`` ``]`` (cell level), 1–9 0 (classes), B F E I (tools) — are taken
from the viewing actions that use them (depth, fit, image layer) and given back when it is off;
while annotating, the prediction and its quadtree grid are hidden and the annotation with its
quadtree cells shown (the other way round afterwards: the view is part 1's again), and a
left-drag over the image paints (Space + drag or the middle button pans).

Undo/redo (Ctrl+Z, Ctrl+Shift+Z / Ctrl+Y) act on the current image's stack (a ``QUndoGroup``);
the menu names the step ("Undo Fill 5,304 px"); a stroke under way ends first (it is the step
undone). The open images' undo logs together keep within ``UNDO_BUDGET_BYTES``: past it the oldest
steps go, those of the images edited longest ago first, the current image's newest step never.
"""
from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import shiboken6
from PySide6 import QtCore, QtGui, QtWidgets

from qgn.annotation.changes import ChangeTally
from qgn_studio.annotation_doc import AnnotationSession, LivePyramid, edit_between
from qgn_studio.annotator_class_changes import AnnotatorClassChangesMixin
from qgn_studio.canvas.annotation_input import BrushCursor, PaintSurface
from qgn_studio.class_keys import CLASS_KEYS, carry_keys, keys_for, remember, remembered
from qgn_studio.document import describe_error
from qgn_studio.jobs import STOPPED
from qgn_studio.panels.annotate import START_SOURCES, AnnotatePanel
from qgn_studio.tools import TOOLS, EditCommand, ToolController
from qgn_studio.tools.image_tools import IMAGE_TOOLS, ImageTools

HIDDEN_WHILE_ANNOTATING = ("prediction", "grid")
# The status bar's word on annotating an image whose map could not be used: the short part first -
# what happened and what to do, which fits a 1280-px status bar - then, in brackets, that the file
# is kept and why (``{}``, often a long path), which the bar may cut: the banner has it all.
_START_OVER = "choose a start in the Annotate panel to edit the image"
UNREADABLE_HINTS = {
    "saved annotation": "its saved annotation cannot be read. Fix the classes, or " + _START_OVER
                        + " (the file is kept as it is; {})",
    "damaged saved annotation": "its saved annotation cannot be read: " + _START_OVER + " (it is kept as it is; {})",
    "autosave": "its autosave cannot be read, nothing was restored: " + _START_OVER
                + " (it is kept as it is, moved to conflicts/ once the image is edited again; {})",
    "misfit saved annotation": "its saved annotation cannot be used: " + _START_OVER + " (it is kept as it is; {})",
    "misfit autosave": "its autosave cannot be used, nothing was restored: " + _START_OVER
                       + " (it is kept as it is; {})",
}
BRUSH_KEYS = {1: ["Shift+]", "Ctrl+]"], -1: ["Shift+[", "Ctrl+["]}  # larger / smaller brush
SHOWN_WHILE_ANNOTATING = ("annotation", "annotation_cells")
SOURCE_TEXT = {"prediction": "the prediction", "truth": "the ground truth", "import": "a mask file",
               "empty": "an empty map", "saved": "the saved annotation", "recovered": "a recovered autosave",
               "head": "the project head", "previous": "the previous image's labels", "kept": "a kept copy"}


def _start_over_text(source: str) -> str:
    """The Annotate menu's entry of ``source``: "Start over from a kept copy…" (… where it asks first)."""
    return f"Start over from {SOURCE_TEXT[source]}{'…' if START_SOURCES[source][0].endswith('…') else ''}"


def step_text(verb: str, step: str) -> str:
    """A menu entry naming the undo step it acts on: "&Undo Fill 5,304 px" (``verb`` alone: none)."""
    return f"{verb} {step.replace('&', '&&')}" if step else verb


def compatible(a, b) -> bool:
    """Two class sets label maps can be shared between: same number of classes and ignore value."""
    return a is not None and b is not None and a.num_classes == b.num_classes and a.ignore_index == b.ignore_index


def in_classes(result, shape, model_classes, classes) -> np.ndarray | None:
    """``result``'s map (a prediction of a model of ``model_classes``) as a map of ``classes`` (by
    name when the two sets differ), or None when there is none of ``shape`` (any thread)."""
    if result is None or result.label.shape != tuple(shape):
        return None
    label = result.label
    if (model_classes is not None and classes is not None
            and tuple(model_classes.names) != tuple(classes.names) and not compatible(model_classes, classes)):
        from qgn.classes_edit import relabel_by_name

        try:
            label = relabel_by_name(label, model_classes, classes)
        except ValueError:
            return None
    return label


def change_summary(pixels: int, total: int, cells: int, level: int) -> tuple[str, tuple[str, ...]]:
    """The Review box's line: "Changed: N px (S %) · M cells of k×k px", exact; and its shorter
    form, the counts rounded ("24 M px … 1.5 M cells"), for a dock too narrow for a big photo's
    exact counts (a 24-megapixel photo's cut the line at 1280×800)."""
    from qgn_studio.document import human_count

    share, cell = 100 * pixels / max(total, 1), f"{1 << level}×{1 << level} px"
    exact = f"Changed: <b>{pixels:,} px</b> ({share:.1f} %) · <b>{cells:,}</b> cells of {cell}"
    rounded = f"Changed: <b>{human_count(pixels)} px</b> ({share:.1f} %) · <b>{human_count(cells)}</b> cells of {cell}"
    return exact, (rounded,) if rounded != exact else ()


class Annotator(AnnotatorClassChangesMixin, QtCore.QObject):
    """See the module docstring. ``workspace``: the open documents, the current one, the model
    and the class set (``classes`` is the workspace's); ``canvas``: the view painted on; ``jobs``:
    the JobRunner that builds maps off the UI thread; ``ask``: the dialogs (``qgn_studio.ask``);
    ``show_layer(key, on)``: shows or hides a canvas layer (the window's, which keeps its menu and
    panel in step; by default the canvas's alone)."""

    mode_changed = QtCore.Signal(bool)
    edited = QtCore.Signal(object)  # AnnotationSession: after every push, undo or redo
    session_created = QtCore.Signal(object)  # ImageDocument
    # ClassSet after any class edit (rename, recolour, add, delete/merge, their undo/redo), the open maps
    # already in it; Workspace.classes_changed also tells of a class set replaced (a model, a project)
    class_set_edited = QtCore.Signal(object)
    class_edited = QtCore.Signal(object)  # qgn.classes_edit.ClassEdit: the project applies it to its files
    done_changed = QtCore.Signal(object, bool)  # (ImageDocument, done)

    def __init__(self, workspace, canvas, jobs, ask, show_layer=None, parent=None):
        super().__init__(parent)
        self.workspace = workspace
        self.canvas = canvas
        self.jobs = jobs
        self.show_layer = show_layer or (lambda key, on: canvas.layers[key].set_visible(on))
        self.all_actions = list  # () -> every action of the window (their keys are lent in annotation mode)
        self.tools = ToolController(self)
        self.tools.session_needed = self._session_for_gesture
        self.tools.blocked = self._edits_blocked
        self.image_tools = ImageTools(self)  # superpixels, snap brush, wand (issue #21)
        self.tools.handlers.update(self.image_tools.handlers)
        self.tools.image_for = self._image_of
        self.undo_group = QtGui.QUndoGroup(self)
        self.panel = AnnotatePanel()
        self.panel.add_tools(IMAGE_TOOLS)
        self.panel.history.setGroup(self.undo_group)
        self.surface = PaintSurface(self.canvas.clip, self.tools, lambda: self.canvas.space_held)
        self.cursor = BrushCursor(self.canvas.clip)
        self.project_classes = False  # True while a project's class set is in use
        self._class_change = None  # the class edit whose remap of the open maps is under way (job thread)
        # () -> True while another writer's class change is being followed here, or the project's rewrite
        # by one of ours is under way (the project controller's): a class change asked meanwhile waits in
        # ``_queued_edits`` and is made on the classes that follow (one of ours at a time in the project's
        # rewrite: the project refusing one refuses only it, and it is made again, see retry_class_edit_later)
        self.class_edits_wait = lambda: False
        # (make_edit, undoable, retried, owner, what) asked while a class change was under way: ``owner`` the
        # project (its root, None: no project) it was asked in - made only there (``drop_queued_class_edits``) -
        # and ``what`` its description then (said while it waits, and when it is not made)
        self._queued_edits: list = []
        self.class_edit_owner = lambda: None  # () -> the open project's root, None without one (set by the projects)
        # () -> True while another writer's class change is followed here (its reload clears the undo list)
        self.following_other_change = lambda: False
        self._made_by = None  # (edit, make_edit, retried, owner) of the latest new class change (retry_class_edit_later)
        self._after_class_change: list = []  # () -> None: what waits until the class change under way is in
        self.enabled = False
        self.loading: set[Path] = set()  # images whose saved annotation is being read
        self.unreadable: dict[Path, str] = {}  # images whose saved annotation/autosave could not be read
        self.unreadable_what: dict[Path, str] = {}  # of those, the autosaves' (UNREADABLE_HINTS); else a saved map
        self.class_undo: list = []  # inverse ClassEdits, latest last (filled when the project applied them)
        self.class_redo: list = []  # the edits an undo of a class change took back, latest last
        self._class_snapshots: dict = {}  # (before, after) of a class edit → what it took from the open maps
        self._forward_of: dict = {}  # id(inverse in class_undo) → (inverse, the change it undoes)
        # the class-change history of each project left (its root; None: no project): (undo, redo, snapshots),
        # taken back when that project is open again (``switch_class_history``)
        self._class_histories: dict = {}
        self._edits = self._seen = 0  # counters: the order maps were last edited and last shown in
        self.class_undo_action = self.class_redo_action = None  # the Edit menu's (fill_edit_menu)
        self.refresh_class_buttons()
        self.class_actions: list[QtGui.QAction] = []
        self.class_keys: dict[int, str] = {}  # class id → its key (1–9, 0); stable across class edits
        self.file_key = lambda doc: None  # the project key of a document's annotation files (set by the projects)
        self.saved_annotations = lambda: iter(())  # () -> (ProjectImage, loader) of the project, lazily (set by the projects)
        self.preparing: set[Path] = set()  # images whose new annotation is being built
        # image → (session, model, classes) whose reference (the prediction) is being made on the job thread
        self._references_pending: dict[Path, tuple] = {}
        self._counting: set = set()  # (ChangeTally, its plan) being counted on the job thread
        # starts offered by others: source → (available(doc) -> bool, label(doc) -> (H, W) ints, run on a
        # job thread); the project head registers "head" (qgn_studio.head_controller)
        self.extra_sources: dict = {}
        self.default_source = lambda doc: "prediction"  # the start of a new annotation
        self.mode_actions: list[QtGui.QAction] = []
        # source → the Annotate menu's "Start over from …" (kept: greyed and counted as the panel's entry)
        self.start_actions: dict[str, QtGui.QAction] = {}
        self._displaced: dict[QtGui.QAction, list[QtGui.QKeySequence]] = {}
        self._hidden_layers: list[str] = []
        self._mode_layers = {key: True for key in SHOWN_WHILE_ANNOTATING}
        self._hover: tuple[float, float] | None = None
        # Injectable choices (tests replace them): a mask file to import, a colour for a class.
        self.choose_mask_file = ask.mask_file
        self.choose_kept_copy = ask.kept_copy  # (image name, [KeptCopy]) -> one of them, or None
        # (UI thread) doc -> the copies its project kept aside for it, newest first, as last listed off the
        # UI thread (qgn_studio.kept_controller); none without a project
        self.kept_copies = lambda doc: []
        self.choose_colour = ask.colour
        self.choose_class_name = ask.class_name
        self.choose_merge_target = lambda class_id, pixels, images: ask.merge_target(
            self.classes.names, class_id, pixels, images)
        self._summary_timer = QtCore.QTimer(self)
        self._summary_timer.setSingleShot(True)
        self._summary_timer.setInterval(150)
        self._summary_timer.timeout.connect(self._update_summary)
        self._connect()
        self.panel.set_tool(self.tools.tool)
        self.panel.set_level(self.tools.level)
        self._update_status()  # no image yet: "No image" and no start offered, until one is shown

    def _connect(self) -> None:
        t, p = self.tools, self.panel
        t.tool_changed.connect(self._tool_changed)
        t.level_changed.connect(self._level_changed)
        t.radius_changed.connect(self._radius_changed)
        t.class_changed.connect(self._class_changed)
        t.message.connect(lambda text: self.workspace.show_status(text, 6000))
        self.image_tools.message.connect(lambda text: self.workspace.show_status(text, 6000))
        self.image_tools.setting_changed.connect(self._image_tool_setting)
        p.mode_toggled.connect(self.set_mode)
        p.tool_chosen.connect(t.set_tool)
        p.level_chosen.connect(t.set_level)
        p.class_chosen.connect(t.set_class)
        p.class_renamed.connect(self.rename_class)
        p.class_recolour_requested.connect(self.recolour_class)
        p.class_add_requested.connect(self.add_class)
        p.snap_to_chosen.connect(self.set_snap_to)
        p.class_remove_requested.connect(self.remove_class)
        p.class_undo_requested.connect(self.undo_class_edit)
        p.class_redo_requested.connect(self.redo_class_edit)
        p.start_requested.connect(self.start_from)
        p.done_toggled.connect(self.set_done)
        p.done_next_requested.connect(self.done_and_next)
        self.workspace.document_changed.connect(self._show_done)  # e.g. another writer's mark, shown by the watch
        p.changed_view_toggled.connect(lambda on: self.show_layer("changed", on))
        self.canvas.hovered.connect(self._hovered)

    # ------------------------------------------------------------------ actions
    def build_actions(self, add, menu: QtWidgets.QMenu, all_actions=list) -> None:
        """Create the Annotate menu with ``add(menu, text, slot, keys, tip=…, checkable=…,
        section=…)`` (the window's action factory, which lists shortcuts in F1); ``all_actions()``:
        every action of the window, whose keys annotation mode borrows."""
        self.all_actions = all_actions
        section = "Annotate"
        self.mode_action = add(menu, "&Annotation mode", self.set_mode, "A", checkable=True,
                               tip="Paint, fill, erase and pick classes on the image", section=section)
        self.undo_action = add(menu, "&Undo", self.undo, ["Ctrl+Z"], section=section)
        self.redo_action = add(menu, "&Redo", self.redo, ["Ctrl+Shift+Z", "Ctrl+Y"], section=section)
        self.undo_action.setEnabled(False)
        self.redo_action.setEnabled(False)
        self.undo_group.canUndoChanged.connect(self.undo_action.setEnabled)
        self.undo_group.canRedoChanged.connect(self.redo_action.setEnabled)
        self.undo_group.undoTextChanged.connect(lambda text: self.undo_action.setText(step_text("&Undo", text)))
        self.undo_group.redoTextChanged.connect(lambda text: self.redo_action.setText(step_text("&Redo", text)))
        self.done_action = add(menu, "Mark &done", lambda: self.set_done(not self._current_done()), "Ctrl+D",
                               tip="This image is fully annotated (again: not done)", section=section)
        self.done_next_action = add(menu, "Done and &next", self.done_and_next, "Ctrl+Return",
                                    tip="Mark this image done and go to the next image not done yet", section=section)
        menu.addSeparator()
        section = "Annotate (in annotation mode)"
        for tool, (text, key, tip) in {**TOOLS, **IMAGE_TOOLS}.items():
            self.mode_actions.append(add(menu, f"{text} tool", self._tool_setter(tool), key, tip=tip, section=section))
        self.mode_actions.append(add(menu, "Coarser cells (level +1)", lambda: self.tools.step_level(1), "[",
                                     section=section))
        self.mode_actions.append(add(menu, "Finer cells (level −1)", lambda: self.tools.step_level(-1), "]",
                                     section=section))
        # One sequence per key: X11 matches Shift+] and } to the same key press, and an action
        # listing both is "ambiguous" there and never fires. Ctrl+] / Ctrl+[ work on every layout.
        self.mode_actions.append(add(menu, "Larger brush (radius +1 cell)", lambda: self.tools.step_radius(1),
                                     BRUSH_KEYS[1], section=section, tip="Also Shift+wheel over the image"))
        self.mode_actions.append(add(menu, "Smaller brush (radius −1 cell)", lambda: self.tools.step_radius(-1),
                                     BRUSH_KEYS[-1], section=section, tip="Also Shift+wheel over the image"))
        classes = menu.addMenu("&Class")
        for key in CLASS_KEYS:
            action = add(classes, f"Class on key {key}", self._key_setter(key), key, section=section)
            self.mode_actions.append(action)
            self.class_actions.append(action)
        self.mode_actions.append(add(classes, "Find a class…", self.panel.focus_class_search, "/", section=section,
                                     tip="Type part of a class name, Enter chooses it (any class, keyed or not)"))
        self._name_class_actions()
        menu.addSeparator()
        for source, (text, tip) in START_SOURCES.items():
            self.start_actions[source] = add(menu, _start_over_text(source), self._start_setter(source), tip=tip,
                                             section=section)
        self._update_panel_sources(self.workspace.current)
        for action in self.mode_actions:
            action.setEnabled(False)

    def fill_edit_menu(self, menu: QtWidgets.QMenu) -> None:
        """The Edit menu, where people look first: Undo and Redo (the Annotate menu's own actions:
        one shortcut each), then the class changes' undo and redo (no shortcut: Ctrl+Z walks the
        strokes), named and enabled as the class list's buttons are."""
        menu.addAction(self.undo_action)
        menu.addAction(self.redo_action)
        menu.addSeparator()
        self.class_undo_action = menu.addAction("Undo class change", self.undo_class_edit)
        self.class_redo_action = menu.addAction("Redo class change", self.redo_class_edit)
        self.refresh_class_buttons()

    def undo(self) -> None:
        """Ctrl+Z: undo the current image's latest step; a stroke under way (the key pressed with
        the button still down) is that step. Undoing another step under a stroke would write that
        step's old pixels over the stroke's and cut the history in two."""
        self.tools.finish_stroke()
        if self._edits_blocked():
            self.workspace.show_status(self._edits_blocked(), 4000)
            return
        self._step("Undone", self.undo_group.undoText(), self.undo_group.canUndo(), self.undo_group.undo)

    def redo(self) -> None:
        """Ctrl+Shift+Z / Ctrl+Y: redo the step undone last (a stroke under way ends first)."""
        self.tools.finish_stroke()
        if self._edits_blocked():
            self.workspace.show_status(self._edits_blocked(), 4000)
            return
        self._step("Redone", self.undo_group.redoText(), self.undo_group.canRedo(), self.undo_group.redo)

    def _step(self, done: str, text: str, can: bool, step) -> None:
        """Undo or redo, and say what: outside annotation mode the annotation is hidden, and a
        Ctrl+Z there would change it unseen."""
        if not can:
            return
        step()
        doc = self.workspace.current
        where = f" on {doc.name}" if doc is not None else ""
        hidden = "" if self.enabled else " (the annotation shows in annotation mode, A)"
        self.workspace.show_status(f"{done}: {text}{where}{hidden}", 5000)

    def busy(self, doc) -> bool:
        """Whether a stroke or drag is under way on ``doc``'s map (painted, not yet an undo step)."""
        return self.tools.stroking and doc.annotation is not None and self.tools.session is doc.annotation

    def _name_class_actions(self) -> None:
        """The Class menu says each key's class (and hides keys without a class)."""
        by_key = {key: class_id for class_id, key in self.class_keys.items()}
        for key, action in zip(CLASS_KEYS, self.class_actions):
            class_id = by_key.get(key)
            if self.classes is not None and class_id is not None and class_id < self.classes.num_classes:
                action.setText(self.classes.names[class_id].replace("&", "&&"))
                action.setVisible(True)
            else:
                action.setText(f"Class on key {key}")
                action.setVisible(self.classes is None)
        self.panel.set_class_keys(self.class_keys)

    def _tool_setter(self, tool):
        return lambda: self.tools.set_tool(tool)

    def _key_setter(self, key):
        def choose() -> None:
            class_id = next((c for c, k in self.class_keys.items() if k == key), None)
            if class_id is None:
                self.workspace.show_status(f"No class on key {key} (find one with /)", 4000)
            else:
                self.tools.set_class(class_id)

        return choose

    # ------------------------------------------------------------------ class keys (qgn_studio.class_keys)
    def _keys_for(self, classes) -> dict[int, str]:
        return keys_for(classes, remembered(self.workspace.settings))

    def _carry_keys(self, edit) -> None:
        self.class_keys = carry_keys(self.class_keys, edit)
        remember(self.workspace.settings, edit.after, self.class_keys)

    def _start_setter(self, source):
        return lambda: self.start_from(source)

    def _mode_keys(self) -> set[str]:
        return {s.toString() for a in self.mode_actions for s in a.shortcuts()}

    # ------------------------------------------------------------------ mode
    def set_mode(self, on: bool) -> None:
        on = bool(on)
        if on == self.enabled:
            return
        self.enabled = on
        self.tools.finish_stroke()
        self._swap_shortcuts(on)
        for action in self.mode_actions:
            action.setEnabled(on)
        if hasattr(self, "mode_action"):
            self.mode_action.setChecked(on)
        self.panel.set_mode(on)
        self.surface.set_active(on)
        self.canvas.set_paint_cursor(on)
        if on:
            self._hidden_layers = [k for k in HIDDEN_WHILE_ANNOTATING if self.canvas.layers[k].visible]
            for key in self._hidden_layers:
                self.show_layer(key, False)
            for key in SHOWN_WHILE_ANNOTATING:
                self.show_layer(key, self._mode_layers[key])
            self.ensure_session(self.workspace.current)
            self._prepare_image_tools(self.workspace.current)
        else:
            self.cursor.hide()
            for key in SHOWN_WHILE_ANNOTATING:  # remembered for the next time, hidden meanwhile
                self._mode_layers[key] = self.canvas.layers[key].visible
                self.show_layer(key, False)
            for key in self._hidden_layers:
                self.show_layer(key, True)
            self._hidden_layers = []
        self._update_status()
        self.mode_changed.emit(on)

    def _swap_shortcuts(self, on: bool) -> None:
        """Take the mode's keys from the viewing actions (on) or give them back (off)."""
        if on:
            keys = self._mode_keys()
            mine = set(self.mode_actions)
            for action in self.all_actions():
                if action in mine:
                    continue
                sequences = action.shortcuts()
                kept = [s for s in sequences if s.toString() not in keys]
                if len(kept) != len(sequences):
                    self._displaced[action] = sequences
                    action.setShortcuts(kept)
        else:
            for action, sequences in self._displaced.items():
                action.setShortcuts(sequences)
            self._displaced = {}

    # ------------------------------------------------------------------ documents and sessions
    @property
    def classes(self):
        """The class set annotations use: the workspace's."""
        return self.workspace.classes

    def set_classes(self, classes) -> None:
        """The class set annotations use (the model's, or the project's)."""
        self.workspace.set_classes(classes)
        for doc in self.workspace.docs:
            if doc.annotation is not None and compatible(doc.annotation.classes, classes):
                doc.annotation.classes = classes
        self.tools.set_num_classes(0 if classes is None else classes.num_classes)
        self.class_keys = self._keys_for(classes)
        self.panel.set_classes(classes)
        self.panel.set_class(self.tools.class_id)
        self._class_changed(self.tools.class_id)
        self._name_class_actions()

    def model_classes(self, classes):
        """A model with ``classes`` was loaded; returns the class set to draw with. Annotations keep
        the class set they have (the user's names and colours, or a project's) when it is compatible
        (same classes and ignore value); otherwise they take the model's — unless a map open or
        being restored has the current set (e.g. a restored autosave): the tools and the Classes
        panel keep the classes of the maps being edited, never another set's ids over them, and
        the model's predictions are matched to them by class name."""
        if self.classes is None or not compatible(self.classes, classes):
            if self.classes is None or not (self.project_classes or self._classes_in_use()):
                self.set_classes(classes)
            elif not self.project_classes:
                self.workspace.warn(f"The model's classes ({', '.join(classes.names[:4])}…) are not those of the "
                                    f"open annotations ({', '.join(self.classes.names[:4])}…): the annotations "
                                    "keep theirs", "model-classes")
        return self.classes if compatible(self.classes, classes) else classes

    def _classes_in_use(self) -> bool:
        """Whether an open map (or one being read: a restored autosave) has the current class set."""
        return bool(self.loading) or any(d.annotation is not None and d.annotation.classes == self.classes
                                         for d in self.workspace.docs)

    def show_document(self, doc) -> None:
        """The current image changed (or was loaded)."""
        self.tools.finish_stroke()
        session = None if doc is None else doc.annotation
        self._seen += 1
        if session is not None:
            session.last_seen = self._seen
        self.tools.set_session(session)
        self.undo_group.setActiveStack(None if session is None else session.undo)
        if doc is not None and doc.size is not None:
            self.surface.set_size(doc.size[1], doc.size[0])
        if self.enabled:
            self.ensure_session(doc)
            self._prepare_image_tools(doc)
        self._update_status()
        self._summary_timer.start()

    def _model_key(self):
        info = self.workspace.model_info
        return None if info is None else str(info.path)

    def prediction_in_classes(self, doc, shape) -> np.ndarray | None:
        """``doc``'s prediction as a map of the annotations' classes (the model's classes by name
        when the two sets differ, e.g. a project's), or None when there is none of ``shape``. Runs on
        the job thread: ``doc.result`` is read once (the UI thread may drop it meanwhile)."""
        return in_classes(doc.result, shape, getattr(self.workspace.model_info, "classes", None), self.classes)

    def _prepare_image_tools(self, doc) -> None:
        """Over-segment the image in the background, so the superpixel tool is ready when wanted."""
        if doc is not None and doc.image is not None:
            self.image_tools.prepare(doc.path, doc.image)

    def _image_of(self, session):
        for doc in self.workspace.docs:
            if doc.annotation is session or doc.path == session.path:
                return doc.image
        return None

    def _image_tool_setting(self, text: str) -> None:
        self.workspace.show_status(text, 4000)
        self._update_snap_options(self.workspace.current)

    def result_ready(self, doc) -> None:
        """A prediction arrived for ``doc``: the reference of its annotation (in the annotation's
        classes; again after the model changed), or its start."""
        self._refresh_reference(doc)
        if self.enabled and doc is self.workspace.current:
            self.ensure_session(doc)
        self._update_panel_sources(doc)

    def _refresh_reference(self, doc) -> None:
        """``doc``'s annotation compares with its prediction of the model in use: when it has none
        yet or one of another model, the prediction in the annotation's classes (relabelled by name
        when the model's differ: ~0.7-1.5 s for a 24-megapixel map, which held the UI thread when
        done here), its copy and the first count of changed pixels are made on the job thread; the
        old reference stays until they arrive (the summary says it is being compared)."""
        session, result, model, classes = doc.annotation, doc.result, self._model_key(), self.classes
        if session is None or result is None or not (
                session.reference is None or getattr(session, "reference_model", model) != model):
            return
        key = (session, model, classes)
        if self._references_pending.get(doc.path) == key:
            return  # on its way
        self._references_pending[doc.path] = key
        if session.reference is not None and not session.reference_stale:
            # the "changed vs prediction" layer shows nothing until the new reference arrives, not the
            # pixels that differ from the old model's prediction
            session.reference_stale = True
            self._show_changed_layer_again(doc)
        model_classes = getattr(self.workspace.model_info, "classes", None)
        label, level, version = session.label, self.tools.level, session.version

        def make():
            reference = AnnotationSession.reference_for(in_classes(result, label.shape, model_classes, classes), label)
            changes = ChangeTally()  # as of ``version``: kept only when no edit came meanwhile
            if reference is not None:
                changes.pixels(label, reference, version)
                changes.cells(label, reference, level, version)
            return reference, changes

        def made(out) -> None:
            if self._references_pending.get(doc.path) is not key:
                return  # another is on its way (the model or the classes changed again)
            del self._references_pending[doc.path]
            reference, changes = out
            if doc.annotation is not session or self._model_key() != model or self.classes is not classes:
                self._unstale(session)
                self._refresh_reference(doc)  # things moved on: again, from what there is now
                return
            if reference is None:
                self._unstale(session)
                self._summary_timer.start()
                return
            session.reference_stale = False
            session.set_reference(reference, own=True)
            session.reference_model = model
            counted = session.version == version and session.label is label
            session.changes = changes if counted else ChangeTally()  # (else counted in the background)
            self._show_changed_layer_again(doc)
            if doc is self.workspace.current:
                self._update_snap_options(doc)  # the snap brush can follow the prediction now
            self._summary_timer.start()

        def failed(message: str) -> None:
            if self._references_pending.get(doc.path) is key:
                del self._references_pending[doc.path]
                self._unstale(session)
            if message != STOPPED:  # (the window closed)
                self._warn(f"{doc.name}: cannot compare with the new prediction: {message}")

        self.jobs.submit(make, made, failed, "Comparing with the new prediction")
        self._summary_timer.start()

    def mark_unreadable(self, path: Path, message: str, what: str = "saved annotation") -> None:
        """``path``'s ``what`` (a key of ``UNREADABLE_HINTS``) cannot be used, for ``message``: the
        image is not started over silently, and the status bar says why and what to do."""
        self.unreadable[path] = message
        self.unreadable_what[path] = what

    def _show_changed_layer_again(self, doc) -> None:
        """``doc``'s reference changed: its "changed vs prediction" layer is drawn again when it is
        the one shown (another image's is drawn when it is shown)."""
        if doc is self.workspace.current:
            self.canvas.refresh_layers(force=("changed",))

    def _unstale(self, session) -> None:
        """``session``'s reference is shown again (no new one is on its way for it)."""
        if session.reference_stale:
            session.reference_stale = False
            if self.workspace.current is not None and self.workspace.current.annotation is session:
                self.canvas.refresh_layers(force=("changed",))

    def ensure_session(self, doc) -> AnnotationSession | None:
        """``doc``'s annotation, started from the prediction when it has none yet (None while the
        image, its saved annotation or its prediction is still on its way)."""
        if doc is None or doc.image is None:
            return None
        if doc.annotation is not None:
            return doc.annotation
        if doc.path in self.loading or doc.path in self.preparing or doc.result is None or self.classes is None:
            self._update_status()
            return None
        if doc.path in self.unreadable:  # never start over silently (a save would overwrite the file)
            hint = UNREADABLE_HINTS[self.unreadable_what.get(doc.path, "saved annotation")]
            self.workspace.show_status(f"{doc.name}: " + hint.format(self.unreadable[doc.path]), 10000)
            return None
        source = self.default_source(doc)
        self._start_session(doc, source, fallback=None if source == "prediction" else "prediction")
        return None  # it arrives in a moment (built off the UI thread)

    def _session_for_gesture(self) -> AnnotationSession | None:
        doc = self.workspace.current
        session = self.ensure_session(doc)
        if session is None and doc is not None and doc.image is not None:
            waiting = ("its saved annotation" if doc.path in self.loading else
                       "the annotation being prepared" if doc.path in self.preparing else "the prediction")
            self.workspace.show_status(
                f"Waiting for {waiting} to start annotating; or start from Empty in the Annotate panel", 6000)
        return session

    def _label_from(self, doc, source: str, path: Path | None = None, classes=None):
        from qgn.annotation import Annotation

        classes = self.classes if classes is None else classes
        if source == "prediction":
            result = doc.result  # read once: on the job thread, the UI thread may drop it meanwhile
            if result is None:
                raise ValueError("there is no prediction for this image yet")
            label = result.label
            model_classes = getattr(self.workspace.model_info, "classes", None)
            if model_classes is not None and tuple(model_classes.names) != tuple(classes.names) \
                    and not compatible(model_classes, classes):
                from qgn.classes_edit import relabel_by_name

                label = relabel_by_name(label, model_classes, classes)  # the model's classes by name
            return Annotation.from_prediction(label, classes)
        if source == "truth":
            if doc.ground_truth is None:  # none found, or found and not used (the banner said why)
                raise ValueError(doc.gt_ignored or "no ground truth was found beside this image")
            return Annotation(doc.ground_truth, classes, "import")
        if source == "empty":
            h, w = doc.size
            return Annotation.empty(h, w, classes)
        if source == "import":
            return Annotation.from_file(path, classes, shape=doc.size)
        if source == "kept":  # the import's capped, checked reader: a .qgt of these classes and the image's size
            from qgn.project_kept import read_kept_copy

            # as it is now: it, or its folder, may have been replaced by a link since the listing (or meanwhile)
            return Annotation(read_kept_copy(path, classes, doc.size), classes, "import")
        if source in self.extra_sources:
            return Annotation.from_prediction(self.extra_sources[source][1](doc), classes)
        raise ValueError(f"unknown annotation source {source!r}")

    def start_label(self, doc, source: str):
        """(H, W) class ids ``doc`` would start from with ``source`` (job thread; see ``START_SOURCES``)."""
        return self._label_from(doc, source).label

    def _start_session(self, doc, source: str, path: Path | None = None, fallback: str | None = None) -> None:
        """Build ``doc``'s annotation from ``source`` on the job thread (checking a map of a few
        megapixels and deriving its quadtree takes longer than a UI step), then install it.
        ``fallback``: the start to build instead when ``source`` fails (a default start the person
        did not choose: otherwise every gesture would ask for it again, and fail again)."""
        if doc.path in self.preparing or doc.annotation is not None:
            return
        self.unreadable.pop(doc.path, None)  # the user chose to start over
        self.unreadable_what.pop(doc.path, None)
        self.preparing.add(doc.path)
        if self._class_change is not None:  # the classes change once the open maps are remapped: built then
            def later() -> None:
                self.preparing.discard(doc.path)
                if doc in self.workspace.docs:
                    self._start_session(doc, source, path, fallback)
            self.after_class_change(later)
            self._update_status()
            return

        level, classes = self.tools.level, self.classes  # (read here: the job thread may run before a change's callback)

        def build():
            annotation = self._label_from(doc, source, path, classes)
            own = annotation.classes
            pyramid = LivePyramid(annotation.label, own.num_classes, own.ignore_index)
            # the prediction in the annotation's classes, for "changed vs prediction": relabelling a
            # 24-megapixel map by name held the UI thread for 1.5 s when done in _install
            model = self._model_key()
            reference = AnnotationSession.reference_for(self.prediction_in_classes(doc, annotation.shape), annotation.label)
            changes = ChangeTally()  # the first "changed vs prediction" count: the whole map once
            if reference is not None:
                changes.pixels(annotation.label, reference, 0)
                changes.cells(annotation.label, reference, level, 0)
            return annotation, pyramid, (reference, model), changes

        def built(result) -> None:
            self.preparing.discard(doc.path)
            if doc.annotation is None and doc in self.workspace.docs:
                annotation, pyramid, reference, changes = result
                if self.classes != classes or self._class_change is not None:
                    # the classes changed (or are changing) since it was built: built again in the new ones
                    self._start_session(doc, source, path, fallback)
                    return
                self._install(doc, annotation, pyramid, source=source, made_reference=reference, changes=changes)

        def failed(message: str) -> None:
            self.preparing.discard(doc.path)
            if fallback is not None:
                self._warn(f"Cannot start from {SOURCE_TEXT.get(source, source)} ({message}): starting from "
                           f"{SOURCE_TEXT.get(fallback, fallback)} instead")
                if doc.annotation is None and doc in self.workspace.docs:
                    self._start_session(doc, fallback)
                return
            self._warn(f"Cannot start from {SOURCE_TEXT.get(source, source)}: {message}")
            self._update_status()

        self.jobs.submit(build, built, failed, "Preparing the annotation")
        self._update_status()

    def preparer(self, doc, dirty: bool = False, classes=None):
        """(UI thread) a function for the job thread that reads a map's file: ``prepare(label)`` makes
        what ``adopt(doc, label, ..., dirty, classes, prepared=...)`` would make on the UI thread —
        the annotation (its check and copy), its live pyramid, the prediction in the annotations'
        classes, its copy in the label dtype and the first "changed vs prediction" count; None when
        it cannot (``adopt`` then makes them, and says why not). On a 24-megapixel map they held the
        UI thread 60-100 ms (1.5 s where the model's classes differ) at every saved annotation opened,
        every return to an image whose map was closed (``_keep_maps_in_budget``) and every autosave
        restored; ``adopt`` uses them only when the classes and the model are still the same."""
        from qgn.annotation import Annotation

        own = classes if classes is not None else self.classes
        reference_classes, model, level = self.classes, self._model_key(), self.tools.level
        model_classes = getattr(self.workspace.model_info, "classes", None)
        version = 1 if dirty else 0  # the session's version once installed (``mark_unsaved``: one more)

        def prepare(label):
            if label is None or own is None:
                return None
            try:
                annotation = Annotation(label, own, "import")
                pyramid = LivePyramid(annotation.label, own.num_classes, own.ignore_index)
                # doc.result read once: the UI thread may drop it meanwhile
                reference = AnnotationSession.reference_for(
                    in_classes(doc.result, annotation.shape, model_classes, reference_classes), annotation.label)
                changes = ChangeTally()
                if reference is not None:
                    changes.pixels(annotation.label, reference, version)
                    changes.cells(annotation.label, reference, level, version)
            except Exception:  # (an unreadable map: ``adopt`` says so, as without this)
                return None
            return SimpleNamespace(label=label, annotation=annotation, pyramid=pyramid, reference=(reference, model),
                                   reference_classes=reference_classes, changes=changes)
        return prepare

    def adopt(self, doc, label: np.ndarray, source: str = "saved", dirty: bool = False,
              classes=None, prepared=None) -> AnnotationSession | None:
        """Install a label map read from disk (a project's saved annotation or a recovered
        autosave) as ``doc``'s annotation. ``dirty``: it is not saved yet (a recovered autosave);
        ``classes``: the map's class set (default: the annotations'); ``prepared``: what a
        ``preparer`` made of ``label`` on the job thread."""
        from qgn.annotation import Annotation

        self.loading.discard(doc.path)
        if doc.annotation is not None:
            return doc.annotation
        own = classes if classes is not None else self.classes
        if prepared is not None and (prepared.label is not label or prepared.annotation.classes is not own):
            prepared = None  # the classes changed meanwhile: made here, as they are now
        made_reference = changes = None
        if prepared is not None and prepared.reference_classes is self.classes:
            made_reference, changes = prepared.reference, prepared.changes  # (ignored if the model changed)
        try:
            annotation = prepared.annotation if prepared is not None else Annotation(label, own, "import")
            if doc.size is not None and annotation.shape != doc.size:
                raise ValueError(f"it is {annotation.shape[1]}×{annotation.shape[0]}, the image "
                                 f"{doc.size[1]}×{doc.size[0]}")
        except Exception as exc:
            self._warn(f"{doc.name}: the {SOURCE_TEXT.get(source, source)} cannot be used: {describe_error(exc)}")
            return None
        pyramid = prepared.pyramid if prepared is not None else None
        session = self._install(doc, annotation, pyramid, source=source, made_reference=made_reference, changes=changes)
        if dirty:
            session.mark_unsaved()  # not in the project's annotation file yet
        self._update_status()
        return session

    def _install(self, doc, annotation, pyramid=None, source: str = "prediction",
                 made_reference: tuple | None = None, changes=None) -> AnnotationSession:
        """``made_reference``: (the prediction in the annotation's classes, the model it is of),
        made off the UI thread; made on the job thread once installed when not given, none, or of a
        model no longer in use.
        ``changes``: the ``ChangeTally`` that counted the map against that reference (job thread)."""
        own = made_reference is not None and made_reference[0] is not None and made_reference[1] == self._model_key()
        # a private copy in the label dtype (``AnnotationSession.reference_for``); else made on the job
        # thread once installed (``_refresh_reference``): the model changed while the annotation was
        # built (or adopt had nothing made), and relabelling a 24-megapixel prediction by name here
        # held the UI thread for about a second
        reference = made_reference[0] if own else None
        session = AnnotationSession(doc.path, annotation, reference, origin=source, pyramid=pyramid, parent=self,
                                    own_reference=own, changes=changes if own else None)
        session.reference_model = self._model_key() if reference is not None else None
        doc.annotation = session
        self.undo_group.addStack(session.undo)
        session.undo.indexChanged.connect(lambda _index, s=session: self._after_edit(s))
        if doc is self.workspace.current:
            self.tools.set_session(session)
            self.undo_group.setActiveStack(session.undo)
            self.canvas.refresh_layers()
        self._seen += 1
        session.last_seen = self._seen
        self.session_created.emit(doc)
        if not own:
            self._refresh_reference(doc)
        self._update_status()
        self._summary_timer.start()
        QtCore.QTimer.singleShot(0, self, self._keep_maps_in_budget)
        return session

    def start_from(self, source: str) -> None:
        """Start (or start over, as one undoable edit) from ``source`` (see START_SOURCES). The new
        map is read, checked and diffed on the job thread; the edit lands when it is ready."""
        doc = self.workspace.current
        if doc is None or doc.image is None:
            return
        if self._edits_blocked():
            self.workspace.show_status(self._edits_blocked(), 4000)
            return
        path = None
        if source == "import":
            path = self.choose_mask_file()
            if not path:
                return
            path = Path(path)
        if source == "kept":
            copies = self.kept_copies(doc)
            if not copies:
                self.workspace.show_status("The project kept no copy of this image's labels aside", 4000)
                return
            chosen = self.choose_kept_copy(doc.name, copies)
            if chosen is None:
                return
            path = chosen.path
        self.tools.finish_stroke()
        if doc.annotation is None:
            self._start_session(doc, source, path)
            return
        session = doc.annotation
        snapshot, version = session.label.copy(), session.version

        def build():  # on the job thread: read / check the new map and diff it
            target = self._label_from(doc, source, path).label
            return edit_between(snapshot, target), target

        def built(result) -> None:
            edit, target = result
            if doc.annotation is not session:
                return
            if session.version != version:  # edited meanwhile: diff against the map as it is now
                edit = edit_between(session.label, target)
            if edit.is_empty:
                self.workspace.show_status("Nothing to change: the annotation is already that", 4000)
                return
            session.undo.push(EditCommand(session, edit, f"Start over from {SOURCE_TEXT.get(source, source)}",
                                          origin=source))

        def failed(message: str) -> None:
            self._warn(f"Cannot start over from {SOURCE_TEXT.get(source, source)}: {message}")

        self.jobs.submit(build, built, failed, "Preparing the new start")

    def _after_edit(self, session: AnnotationSession) -> None:
        if not shiboken6.isValid(session) or not shiboken6.isValid(session.undo):
            return  # the window is closing: its undo stacks are being destroyed
        self._edits += 1
        session.last_edit = self._edits
        if session.undo.index() == session.undo.count():  # a step pushed (or redone to the top)
            # on the next turn: the push that got here has not returned yet (PySide still takes the
            # command into the stack's keeping afterwards; a step dropped before then stays alive)
            QtCore.QTimer.singleShot(0, self, lambda s=session: self._keep_undo_in_budget(s))
        self._update_status()
        self._summary_timer.start()
        self.edited.emit(session)

    def _keep_undo_in_budget(self, session: AnnotationSession) -> None:
        """Drop the oldest undo steps while the open images' logs hold more than
        ``UNDO_BUDGET_BYTES``: those of the images edited longest ago first, then ``session``'s
        (its newest step stays). Says so when ``session`` lost steps."""
        from qgn_studio.tools import commands

        if not shiboken6.isValid(session) or session not in [d.annotation for d in self.workspace.docs]:
            return  # closed meanwhile
        sessions = [d.annotation for d in self.workspace.docs if d.annotation is not None]
        total = sum(self._undo_bytes(s) for s in sessions)
        budget = commands.UNDO_BUDGET_BYTES
        others = sorted((s for s in sessions if s is not session), key=lambda s: s.last_edit)
        for each in [*others, session] if total > budget else []:
            stack, count, freed = each.undo, 0, 0
            limit = stack.index() - (1 if each is session else 0)
            while total - freed > budget and count < limit:
                freed += getattr(stack.command(count), "nbytes", 0)
                count += 1
            if count and each.drop_oldest(count):
                total -= freed
                if each is session:
                    self.workspace.show_status(
                        f"Undo history over {budget / 2**30:g} GiB: the oldest {count} step{'s' if count != 1 else ''} "
                        "of this image can no longer be undone (your edits stay)", 6000)
            if total <= budget:
                break
        self._keep_maps_in_budget()

    def _keep_maps_in_budget(self) -> None:
        """Close the annotations of project images left behind — nothing unsaved, nothing to redo —
        those seen longest ago first, while the open maps and undo logs together hold more than
        ``UNDO_BUDGET_BYTES``: each image visited in annotation mode otherwise keeps its map,
        reference and pyramid (~6 bytes a pixel: 70 MB a 12-megapixel photo) to the end of the
        session. The saved file is read again on return; the undo steps that go with it are the
        oldest of all (those the undo budget drops first)."""
        from qgn_studio.tools import commands

        current = self.workspace.current
        docs = [d for d in self.workspace.docs if d.annotation is not None and shiboken6.isValid(d.annotation)]
        total = sum(self._map_bytes(d.annotation) + self._undo_bytes(d.annotation) for d in docs)
        budget = commands.UNDO_BUDGET_BYTES
        if total <= budget:
            return
        closable = sorted((d for d in docs if d is not current and self.file_key(d) is not None
                           and not d.annotation.dirty and not d.annotation.undo.canRedo() and d.path not in self.loading),
                          key=lambda d: d.annotation.last_seen)
        closed = []
        for doc in closable:
            if total <= budget:
                break
            total -= self._map_bytes(doc.annotation) + self._undo_bytes(doc.annotation)
            closed.append(doc)
        if closed:
            self.forget(closed)
            for doc in closed:  # its image is read again on return, and then its saved file (not the
                doc.unload()   # prediction, which a loaded image would start from at once)

    @staticmethod
    def _map_bytes(session) -> int:
        """Memory of ``session``'s map, reference and pyramid (bytes)."""
        pyramid = session.pyramid
        parts = [session.label, session.reference, *getattr(pyramid, "codes", ()), *getattr(pyramid, "leaves", ())]
        return sum(a.nbytes for a in parts if a is not None)

    @staticmethod
    def _undo_bytes(session) -> int:
        """``undo_bytes`` of ``session``'s log, counted again only when the log changed (a push,
        an undo, a class edit): a push then costs the edited image's log, not every open image's."""
        from qgn_studio.tools.commands import undo_bytes

        key = (session.undo.count(), session.state(), id(session.classes))
        cached = session.undo_bytes_of
        if cached is None or cached[0] != key:
            cached = session.undo_bytes_of = (key, undo_bytes(session.undo))
        return cached[1]

    # ------------------------------------------------------------------ done / status
    def set_done(self, done: bool) -> None:
        doc = self.workspace.current
        if doc is None:
            return
        doc.done = bool(done)
        self._show_done(doc)  # Ctrl+D and Done > next change it without the box
        self.done_changed.emit(doc, doc.done)

    def _show_done(self, doc) -> None:
        """The panel's Done box says the current document's done flag (``doc``: any document)."""
        if doc is self.workspace.current:
            self.panel.set_done(bool(doc.done), enabled=doc.image is not None)

    def _current_done(self) -> bool:
        doc = self.workspace.current
        return bool(doc is not None and getattr(doc, "done", False))

    def done_and_next(self) -> None:
        """Mark the current image done and show the next image that is not done (after it, then
        from the top); the status bar says when every image is done."""
        doc = self.workspace.current
        if doc is None or doc.image is None:
            return
        self.set_done(True)
        docs = self.workspace.docs
        start = docs.index(doc) if doc in docs else -1
        order = docs[start + 1:] + docs[:max(start, 0)]
        target = next((d for d in order if not getattr(d, "done", False) and not d.error), None)
        if target is None:
            self.workspace.show_status(f"All {len(docs)} images are done", 6000)
            return
        self.workspace.select(target)

    def refresh_status(self) -> None:
        self._update_status()

    def forget(self, docs) -> None:
        """``docs`` were closed: drop their annotations and undo logs."""
        for doc in docs:
            session = doc.annotation
            if session is not None:
                if self.tools.session is session:
                    self.tools.set_session(None)  # no later stroke lands on a map that is gone
                self.undo_group.removeStack(session.undo)
                doc.annotation = None
                session.deleteLater()
        self.image_tools.forget([doc.path for doc in docs])

    def _update_status(self) -> None:
        doc = self.workspace.current
        self.panel.set_done(bool(doc is not None and getattr(doc, "done", False)),
                            enabled=doc is not None and doc.image is not None)
        self._update_panel_sources(doc)
        if doc is None or doc.image is None:
            self.panel.set_status("No image")
            return
        session = doc.annotation
        if session is None:
            if doc.path in self.loading:
                text = "Reading the saved annotation…"
            elif doc.path in self.preparing:
                text = "Preparing the annotation…"
            elif doc.path in self.unreadable:  # not waiting for anything: it is the user's choice
                what = self.unreadable_what.get(doc.path, "saved annotation").split()[-1]
                text = f"Its {'saved annotation' if what == 'annotation' else what} cannot be used: choose a start below"
            elif self.enabled:
                text = "Waiting for the prediction to start from (or start from Empty below)"
            else:
                text = "No annotation yet: press A to annotate, starting from the prediction"
            self.panel.set_status(text)
            return
        steps = session.undo.index()
        state = "unsaved changes" if session.dirty else "saved"
        origin = SOURCE_TEXT.get(session.started_from, session.started_from)
        self.panel.set_status(f"<b>{doc.name}</b> · from {origin} · {steps} edit{'s' if steps != 1 else ''} "
                              f"· {state}")

    def set_snap_to(self, choice: str) -> None:
        """"Snap to: image edges | prediction" (the panel's buttons); the status bar says what the rim
        follows, and why not the prediction on an image without one."""
        self.image_tools.set_snap_to(choice)  # its setting_changed line updates the panel
        self._update_snap_options(self.workspace.current)
        if choice == "prediction" and not self._has_prediction(self.workspace.current):
            from qgn_studio.tools.image_tools import NO_PREDICTION

            self.workspace.show_status(NO_PREDICTION + "; strokes here snap to the image's edges", 6000)

    def _has_prediction(self, doc) -> bool:
        """Whether the snap brush can follow a prediction on ``doc``: its annotation's reference (the
        prediction in the annotation's classes), or, before an annotation, a prediction (cheap: runs
        with every status update)."""
        if doc is None or doc.image is None:
            return False
        session = doc.annotation
        return session.reference is not None if session is not None else doc.result is not None

    def _update_snap_options(self, doc) -> None:
        from qgn_studio.tools.image_tools import NO_PREDICTION

        available = self._has_prediction(doc)
        choice = self.image_tools.snap_to if available else "image"
        self.panel.set_snap_to(choice, available, NO_PREDICTION)
        self.panel.set_tool_note(self.image_tools.describe(self.tools.tool, available))

    def _update_panel_sources(self, doc) -> None:
        self._update_snap_options(doc)
        kept = len(self.kept_copies(doc)) if doc is not None else 0
        count = f" ({kept})" if kept else ""
        self.panel.set_start_text("kept", f"Kept copy…{count}")
        have = doc is not None and doc.image is not None and self.classes is not None
        menu = self.start_actions.get("kept")
        if menu is not None:  # the Annotate menu's entry as the panel's: greyed with none, the count named
            menu.setText(_start_over_text("kept") + count)
            menu.setEnabled(have and bool(kept))
        self.panel.set_start_available({
            "prediction": have and doc.result is not None,
            "truth": have and doc.ground_truth is not None,
            "import": have,
            "kept": have and bool(kept),
            "empty": have and self.classes.ignore_index is not None,
            **{source: have and available(doc) for source, (available, _label) in self.extra_sources.items()},
        })

    def _update_summary(self) -> None:
        """What changed vs the prediction: pixels, and cells at the current level - "Changed: N px (S %)
        · M cells of k×k px", short enough to show whole in the dock at 1280×800 with a Cityscapes
        frame's counts (its old prefix, "Changed vs prediction:", cut it at every size; the switch
        above it already says "vs prediction")."""
        doc = self.workspace.current
        session = None if doc is None else doc.annotation
        if session is None:
            self.panel.set_changed_summary("<span style='color:#9a9a9a'>No annotation</span>")
            return
        pending = self._references_pending.get(doc.path)
        if pending is not None and pending[0] is session:
            self.panel.set_changed_summary("<span style='color:#9a9a9a'>Comparing with the new prediction…</span>")
            return
        if session.reference is None:
            self.panel.set_changed_summary("<span style='color:#9a9a9a'>No prediction to compare with yet</span>")
            return
        level, label, reference, version = self.tools.level, session.label, session.reference, session.version
        if not session.changes.counted(label, reference, level, version):
            # a level not counted yet ([ ]), or a map counted anew: the whole map, ~50 ms at 24 MP
            self._count_changes(session, level)
            self.panel.set_changed_summary(f"<span style='color:#9a9a9a'>Counting the changed {1 << level}×{1 << level}-px "
                                           "cells…</span>")
            return
        pixels = session.changes.pixels(label, reference, version)  # the rows edited since the last count
        cells = session.changes.cells(label, reference, level, version)
        self.panel.set_changed_summary(*change_summary(pixels, session.label.size, cells, level))

    def _count_changes(self, session, level: int) -> None:
        """Count what ``session.changes`` lacks for ``level`` on the job thread (``ChangeTally.plan``),
        then show the summary."""
        changes, label, reference = session.changes, session.label, session.reference
        plan = changes.plan(label, reference, level, session.version)
        key = (changes, plan)
        if key in self._counting:
            return  # on its way
        self._counting.add(key)

        def counted(counts) -> None:
            self._counting.discard(key)
            changes.adopt(label, reference, counts)
            self._update_summary()  # (counts again if things moved on meanwhile)

        def failed(message: str) -> None:
            self._counting.discard(key)
            if message != STOPPED:  # (the window closed)
                self._warn(f"Cannot count the changed cells: {message}")

        self.jobs.submit(lambda: ChangeTally.count(label, reference, plan), counted, failed, "Counting changed cells")

    def _warn(self, text: str) -> None:
        self.workspace.warn(text, "annotate")

    # ------------------------------------------------------------------ tool state → panel, cursor
    def _tool_changed(self, tool: str) -> None:
        self.panel.set_tool(tool)
        self.panel.show_snap_options(tool == "snap")
        self._update_snap_options(self.workspace.current)
        self._refresh_cursor()

    def _level_changed(self, level: int) -> None:
        self.panel.set_level(level)
        self._refresh_cursor()
        self._summary_timer.start()

    def _radius_changed(self, radius: int) -> None:
        cells = 2 * radius + 1
        self.workspace.show_status(
            f"Brush radius {radius} cell{'s' if radius != 1 else ''} (about {cells}×{cells} cells of "
            f"{1 << self.tools.level} px)", 4000)
        self._refresh_cursor()

    def _class_changed(self, class_id: int) -> None:
        self.panel.set_class(class_id)
        if self.classes is not None and class_id < self.classes.num_classes:
            self.cursor.set_colour(self.classes.palette[class_id])

    def layer_visibility(self, key: str, visible: bool) -> None:
        if key == "changed":
            self.panel.set_show_changed(visible)

    def _hovered(self, x: float, y: float) -> None:
        self._hover = None if math.isnan(x) else (x, y)
        self._refresh_cursor()

    def _refresh_cursor(self) -> None:
        doc = self.workspace.current
        if (not self.enabled or self._hover is None or doc is None or doc.size is None
                or self.tools.tool not in ("paint", "erase", "snap")):
            self.cursor.hide()
            return
        if self.tools.tool == "erase":
            self.cursor.set_colour((255, 255, 255))
        elif self.classes is not None:
            self.cursor.set_colour(self.classes.palette[self.tools.class_id])
        self.cursor.show_cell(*self._hover, self.tools.level, doc.size, self.tools.radius)
