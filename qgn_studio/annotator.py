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
               "head": "the project head", "previous": "the previous image's labels"}
APPLYING_CLASS_CHANGE = "Applying the class change…"
ANY_OWNER = object()  # the class-change history of the project open now (``Annotator._history_of``)
NO_LONGER_OPEN = "it was asked "  # ... in a project left (or without one) while its open maps were remapped


def step_text(verb: str, step: str) -> str:
    """A menu entry naming the undo step it acts on: "&Undo Fill 5,304 px" (``verb`` alone: none)."""
    return f"{verb} {step.replace('&', '&&')}" if step else verb


def remap_parts(edit, label, annotation_reference, session_reference, source, levels, tag, patch):
    """(Job thread) what ``Annotator._adopt_remap`` takes of an open map ``label`` (of ``edit.before``)
    in ``edit.after``: the remapped map (with the restore patch of file ``tag`` and the ``patch`` of a
    snapshot put back where nobody painted since), checked and copied as an ``Annotation`` of
    ``source`` and ``levels`` with its reference remapped, the session's reference remapped, the live
    pyramid, and what the edit takes from the map (``PixelsBeforeRemap`` or None)."""
    from qgn.annotation import Annotation
    from qgn.classes_edit import inverse_patch, remap_label
    from qgn_studio.tools.commands import PixelsBeforeRemap

    new = remap_label(label, edit, tag)
    if patch is not None:  # the pixels of a merged or deleted class, where nobody painted since
        index, wrote, value = patch.patch()
        index, wrote, value = index[index < new.size], wrote[index < new.size], value[index < new.size]
        same = label.reshape(-1)[index] == wrote
        new.reshape(-1)[index[same]] = value[same].astype(new.dtype)
    taken = inverse_patch(label, edit)
    annotation = Annotation(new, edit.after, source, levels)
    annotation.reference = remap_label(annotation_reference, edit)
    return SimpleNamespace(
        annotation=annotation, taken=None if taken is None else PixelsBeforeRemap(taken, label, edit.lut()),
        reference=None if session_reference is None else remap_label(session_reference, edit),
        pyramid=LivePyramid(annotation.label, edit.after.num_classes, edit.after.ignore_index))


def class_named(classes, name: str) -> int:
    """The id of the class ``name`` in ``classes``; ValueError naming it when it is not there (a class
    change that waited for another writer's, which renamed or deleted it)."""
    from qgn.classes import find_class

    found = find_class(classes, name)  # the same name (a case-only rename elsewhere keeps it: 'road', 'Road')
    if found is None:
        raise ValueError(f"there is no class {name!r} now (a class change made meanwhile renamed or deleted it: "
                         "one of yours that waited before it, or another window's or command's); choose the class "
                         "again")
    return found


def deleting(classes, class_id: int, to: int | None):
    """``make_edit`` of deleting class ``class_id`` of ``classes`` (into class ``to``, None: to
    ignore), naming the classes by name: made again on other classes, it deletes the same ones."""
    from qgn.classes_edit import delete_class

    name, into = classes.names[class_id], None if to is None else classes.names[to]
    return lambda c: delete_class(c, class_named(c, name), None if into is None else class_named(c, into))


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


class Annotator(QtCore.QObject):
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
        self._displaced: dict[QtGui.QAction, list[QtGui.QKeySequence]] = {}
        self._hidden_layers: list[str] = []
        self._mode_layers = {key: True for key in SHOWN_WHILE_ANNOTATING}
        self._hover: tuple[float, float] | None = None
        # Injectable choices (tests replace them): a mask file to import, a colour for a class.
        self.choose_mask_file = ask.mask_file
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
            add(menu, f"Start over from {SOURCE_TEXT[source]}{'…' if text.endswith('…') else ''}",
                self._start_setter(source), tip=tip, section=section)
        for action in self.mode_actions:
            action.setEnabled(False)

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
            session.undo.push(EditCommand(session, edit, f"Start over from {SOURCE_TEXT.get(source, source)}"))

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

    # ------------------------------------------------------------------ classes
    def rename_class(self, class_id: int, name: str) -> None:
        from qgn.classes_edit import rename_class

        name = name.strip()
        if not name or self.classes is None or name == self.classes.names[class_id]:
            self.panel.set_classes(self.classes)
            return
        old = self.classes.names[class_id]
        self._edit_classes(lambda c: rename_class(c, class_named(c, old), name))

    def recolour_class(self, class_id: int, rgb=None) -> None:
        from qgn.classes_edit import recolour_class

        if self.classes is None:
            return
        if rgb is None:
            rgb = self.choose_colour(self.classes.palette[class_id], self.classes.names[class_id])
            if rgb is None:
                return
        old = self.classes.names[class_id]
        self._edit_classes(lambda c: recolour_class(c, class_named(c, old), rgb))

    def add_class(self, name: str | None = None) -> None:
        """A new class (its name asked when not given)."""
        from qgn.classes_edit import add_class

        if self.classes is None:
            return
        if name is None:
            name = self.choose_class_name()
            if name is None:
                return
        self._edit_classes(lambda c: add_class(c, name))

    def remove_class(self, class_id: int, to: int | None = -1) -> None:
        """Delete class ``class_id``: its pixels go to class ``to`` (a merge) or, with None, to
        ignore; ``to=-1`` asks which."""
        if self.classes is None or not 0 <= class_id < self.classes.num_classes:
            return
        if to == -1:
            self._count_then_ask(class_id)
            return
        self._edit_classes(deleting(self.classes, class_id, to))

    def _count_then_ask(self, class_id: int) -> None:
        """Count the class's pixels in the open and the saved annotations (job thread), then ask
        where they go, saying how many pixels and images change."""
        classes = self.classes
        # the open maps as they are now, counted on the job thread too (10-20 ms per 24-megapixel map held
        # the UI thread at each Delete); a stroke meanwhile may be counted or not, as a moment later
        maps = {doc.path: doc.annotation.label for doc in self.workspace.docs if doc.annotation is not None}
        counts: dict = {}
        saved = ((Path(im.path), load) for im, load in self.saved_annotations()  # looked for in count()
                 if Path(im.path) not in maps)

        def count() -> dict:
            for path, label in maps.items():
                counts[path] = int(np.count_nonzero(label == class_id))
            for path, load in saved:
                try:
                    counts[path] = int(np.count_nonzero(load() == class_id))
                except Exception:  # an unreadable file is reported where it is opened
                    continue
            return counts

        def counted(result: dict) -> None:
            if self.classes is not classes:
                return
            pixels, images = sum(result.values()), sum(1 for v in result.values() if v)
            to = self.choose_merge_target(class_id, pixels, images)
            if to != -1:
                self._edit_classes(deleting(classes, class_id, to))

        self.jobs.submit(count, counted, lambda message: self._warn(f"Cannot count the class: {message}"),
                                "Counting the class's pixels")

    def undo_class_edit(self) -> None:
        """Undo the latest class change (its inverse, with the pixels a merge or delete moved)."""
        self._step_class_edit(self.class_undo, "undo")

    def redo_class_edit(self) -> None:
        """Redo the latest undone class change."""
        self._step_class_edit(self.class_redo, "redo")

    def record_class_inverse(self, edit, inverse, kind: str, owner=ANY_OWNER) -> None:
        """The project applied ``edit`` (``kind`` "do", "undo", "redo") and made its ``inverse``:
        a change or a redo can be undone by the inverse; an undo is redone by the change it
        undid (a merge again, not the deletion the inverse of an inverse would be). ``owner``: the root
        of the project it was made in (the history of that project, kept aside when it is no longer open)."""
        undo, redo = self._history_of(owner)
        if kind == "undo":
            redo.append(self._forward_of.pop(id(edit), (None, inverse))[1])
        else:
            undo.append(inverse)
            self._forward_of[id(inverse)] = (inverse, edit)  # (the inverse kept alive: its id stays its own)
        self.refresh_class_buttons()

    def _history_of(self, owner) -> tuple[list, list]:
        """(undo, redo) of the project at ``owner`` (ANY_OWNER: the one open): kept aside when it is not."""
        if owner is ANY_OWNER or owner == self.class_edit_owner():
            return self.class_undo, self.class_redo
        undo, redo, _snapshots = self._class_histories.setdefault(owner, ([], [], {}))
        return undo, redo

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

    def refresh_class_buttons(self) -> None:
        """The class list's Undo and Redo: enabled only with a class change to take back or redo, their
        tooltips naming it (Ctrl+Z, beside them in the History, walks the strokes, never these)."""
        buttons = self.panel.class_buttons
        undo = self.class_undo[-1] if self.class_undo else None
        undo_name = self._forward_of.get(id(undo), (None, undo))[1].description if undo is not None else ""
        redo_name = self.class_redo[-1].description if self.class_redo else ""
        for button, name, verb in ((buttons["undo"], undo_name, "Undo"), (buttons["redo"], redo_name, "Redo")):
            action = self.class_undo_action if verb == "Undo" else self.class_redo_action
            if action is not None:
                action.setEnabled(bool(name))
                action.setText(f"{verb} class change: {name.replace('&', '&&')}" if name else f"{verb} class change")
            button.setEnabled(bool(name))
            button.setToolTip(f"{verb} the class change “{name}”, pixels included (not Ctrl+{'Z' if verb == 'Undo' else 'Y'}: "
                              "that walks the strokes)" if name else f"No class change to {verb.lower()}")

    def _step_class_edit(self, stack: list, kind: str) -> None:
        if not stack:
            self.workspace.show_status(f"No class change to {kind}", 4000)
            return
        if self._class_change is not None or self.class_edits_wait():
            # refused, its step kept where it is: queued, it would come after the change under way, on
            # classes it was not made of (an undo or redo step is of the classes before it), and be dropped
            if self._class_change is None and self.following_other_change():
                # the reload that follows it starts a new class-change history (its steps were of the old classes)
                self.workspace.show_status(
                    f"Cannot {kind} the class change now: another window's or command's class change is being "
                    f"followed here, and the class changes before it can no longer be {kind}ne", 8000)
                return
            self.workspace.show_status(f"{APPLYING_CLASS_CHANGE} Try the {kind} again in a moment", 6000)
            return
        edit = stack.pop()
        self.refresh_class_buttons()
        if edit.before != self.classes:
            self.workspace.show_status(f"The classes changed since; that class change cannot be {kind}ne",
                                                6000)
            return
        self._edit_classes(lambda c: edit, kind)

    def _edit_classes(self, make_edit, undoable: bool | str = True, retried: bool = False,
                      waited: str | None = None) -> None:
        """Make the class edit ``make_edit(classes)`` of the classes in use and apply it. While a class
        change is under way (ours, remapping the open maps or in the project's rewrite, or another
        writer's being followed here) it waits and is made once that one is in, on the classes then
        (``make_edit`` names the classes by name, so it follows a reload), rather than refused or made
        of classes about to change - in the project it was asked in only (see ``replay_class_edits``).
        ``waited``: its description when it was asked, for one that waited."""
        if self._class_change is not None or self.class_edits_wait():
            owner = self.class_edit_owner()
            try:
                asked = make_edit(self.classes)
            except ValueError:
                asked = None
            what = None if asked is None else asked.description
            last = self._queued_edits[-1] if self._queued_edits else None  # (only the latest: red, blue,
            if asked is not None and undoable is True and last is not None and (  # red again must end red)
                    last[3] == owner and last[4] == what and last[1] is True and self._same_change(last[0], asked)):
                self.panel.set_classes(self.classes)  # asked again while it waits (the list shows the old classes)
                self._show_waiting()
                return
            self._queued_edits.append((make_edit, undoable, retried, owner, what))
            self.panel.set_classes(self.classes)
            self._show_waiting()
            return
        try:
            edit = make_edit(self.classes)
        except ValueError as exc:
            if waited is not None:
                self._warn(f"Cannot make “{waited}” (it waited for the class change before it): {exc}")
            else:
                self._warn(f"Cannot change the classes: {exc}")
            self.panel.set_classes(self.classes)
            return
        if edit.before != self.classes:  # (an undo or redo step is never queued: see _step_class_edit)
            self.workspace.show_status("The classes changed since; that class change cannot be "
                                       f"{'redone' if undoable == 'redo' else 'undone'}", 6000)
            if undoable is not True:
                self.put_back_class_step(edit, "redo" if undoable == "redo" else "undo")
            self.panel.set_classes(self.classes)
            return
        self._made_by = (edit, make_edit, retried, self.class_edit_owner()) if undoable is True else None
        self.apply_class_edit(edit, undoable)

    def _same_change(self, make_edit, asked) -> bool:
        """Whether the latest waiting change ``make_edit`` makes of the classes in use what ``asked`` (made
        of them) makes: the same classes after and the same moves of the pixels - not only the same words
        (a recolour's description does not name the colour: a second recolour of a class to another
        colour is a new change, not the first asked again)."""
        try:
            waiting = make_edit(self.classes)
        except ValueError:
            return False
        return waiting.after == asked.after and waiting.value_map == asked.value_map

    def _show_waiting(self) -> None:
        """The status while class changes of ours wait: it stays until one of them is made, fails or is
        dropped (each says so), naming them (the class list shows the classes in use until then)."""
        names = [w for *_rest, w in self._queued_edits if w]
        one = len(self._queued_edits) == 1
        self.workspace.show_status(f"{APPLYING_CLASS_CHANGE} Yours wait{'s' if one else ''} and follow{'s' if one else ''} it"
                                   + (": " + ", ".join(f"“{w}”" for w in names) if names else ""), 0)

    def replay_class_edits(self) -> None:
        """The class changes that waited (see ``_edit_classes``), in order, once none is under way: until
        none waits or one is under way again (a remap of the open maps, or the project's rewrite, whose
        end calls this again) - a rename or recolour of no project, or one that cannot be made now
        (ValueError, said), is made or said at once, and the next follows. Those asked in another project
        than the one open now are not made (said, ``drop_queued_class_edits``)."""
        self.drop_queued_class_edits(self.class_edit_owner())
        while self._queued_edits and self._class_change is None and not self.class_edits_wait():
            make_edit, undoable, retried, _owner, what = self._queued_edits.pop(0)
            self._edit_classes(make_edit, undoable, retried, waited=what)
        if self._queued_edits:
            self._show_waiting()

    def drop_queued_class_edits(self, owner, why: str = "") -> list:
        """Forget the class changes that wait and were asked in another project than ``owner`` (its root;
        None: none open), said in one line: a change made of one project's classes is never made in
        another's (the project was closed, another opened, or the window closes: ``why``). Returns what
        was dropped (their descriptions)."""
        dropped = [e for e in self._queued_edits if e[3] != owner]
        if not dropped:
            return []
        self._queued_edits = [e for e in self._queued_edits if e[3] == owner]
        if self._made_by is not None and self._made_by[3] != owner:
            self._made_by = None
        names = [e[4] or "a class change" for e in dropped]
        where = dropped[0][3]
        self._warn(f"Not made: {', '.join(f'“{n}”' for n in names)} - "
                   f"{'it' if len(names) == 1 else 'they'} waited for the class change before "
                   f"{'it' if len(names) == 1 else 'them'}, and "
                   + (why or (f"the project {where.name} is no longer open" if where is not None
                              else "the window's classes are now a project's")))
        return names

    def retry_class_edit_later(self, edit) -> bool:
        """The project refused the new class change ``edit`` because another writer changed the project
        meanwhile: make it again (once) after that writer's change is followed here, first of those
        waiting (in the project it was asked in only). False when it cannot be (not a new change, or
        already a retry)."""
        made = self._made_by
        if made is None or made[0] is not edit or made[2]:
            return False
        self._made_by = None
        self._queued_edits.insert(0, (made[1], True, True, made[3], edit.description))
        return True

    def apply_class_edit(self, edit, undoable: bool | str = True) -> None:
        """Apply a ``qgn.classes_edit.ClassEdit`` to the open annotations and announce it: the
        project controller applies it to every saved annotation and autosave (one atomic step)
        and records its inverse in ``class_undo``. ``undoable``: True (a new change), False or
        "undo" (an undo: its inverse goes to ``class_redo``), "redo". An edit that moves pixels
        (merge, delete, a moved ignore value) remaps the open maps and every step of their undo
        logs, so Ctrl+Z still walks the image's history in the new classes; undoing it gives the
        open maps and their logs back exactly (the pixels of a merged class included).

        The open maps' new pixels, references, checks and live pyramids (~0.5 s or more for a
        24-megapixel map) are made on the job thread (``remap_parts``); meanwhile the maps take no
        edit ("Applying the class change…") and the class set, the workspace and the project stay as
        they were, so a save or autosave writes a map of the old classes into the project of the old
        classes, before the project's rewrite (submitted once the maps are remapped). The UI thread
        then adopts the parts and remaps the undo logs' steps (small patches)."""
        kind = "do" if undoable is True else "undo" if undoable is False else undoable
        if self._class_change is not None:
            self._refuse_during_class_change(edit, kind)
            return
        if not edit.moves_pixels:
            for doc in self.workspace.docs:
                if doc.annotation is not None:
                    doc.annotation.classes = edit.after
            self._class_edit_applied(edit, kind)
            return
        snapshot = self._class_snapshots.pop((edit.after, edit.before), {}) if kind != "do" else {}
        # the project's history (another project opened meanwhile keeps its own: ``switch_class_history``)
        stack, snapshots = self.class_undo if kind == "undo" else self.class_redo, self._class_snapshots

        def done(taken) -> None:
            if kind == "do":  # (before its own snapshot goes in: a redo step's key may be the same)
                self._clear_redo()
            self._class_snapshots[(edit.before, edit.after)] = taken
            while len(self._class_snapshots) > 64:
                self._class_snapshots.pop(next(iter(self._class_snapshots)))
            self._class_edit_applied(edit, kind)

        def failed(message: str) -> None:
            if kind != "do":  # the step goes back on its list (what it puts back with it): it can be tried again
                stack.append(edit)
                snapshots[(edit.after, edit.before)] = snapshot
                self.refresh_class_buttons()
            self.panel.set_classes(self.classes)
            if message == STOPPED:
                pass
            elif message.startswith(NO_LONGER_OPEN):  # (another project opened meanwhile: its maps untouched)
                what = {"do": "made", "undo": "undone", "redo": "redone"}[kind]
                step = self.forward_description(edit) if kind == "undo" else edit.description
                self._warn(f"Not {what}: “{step}” - {message}; nothing changed in it")
            else:
                self._warn(f"Cannot change the classes: {message}. Nothing changed")

        self._remap_open_maps(edit, snapshot, done, failed)

    def _class_edit_applied(self, edit, kind: str) -> None:
        self.class_edit_backup = edit  # until the project has applied it (see revert_class_edit)
        if edit.after.num_classes != edit.before.num_classes or edit.after.ignore_index != edit.before.ignore_index:
            self.project_classes = True  # the user's own class set now: a model's classes no longer replace it
        if kind == "do":
            self._clear_redo()
            self.refresh_class_buttons()
        self.class_edited.emit((edit, kind))  # first: the project queues its rewrite before the class write
        self._carry_keys(edit)
        self._replace_classes(edit.after)
        self.workspace.show_status(edit.description, 6000)

    def after_class_change(self, call) -> None:
        """``call()`` once the class change under way is in (its remap done or failed); now when none is."""
        if self._class_change is None:
            call()
        else:
            self._after_class_change.append(call)

    def _class_change_over(self) -> None:
        waiting, self._after_class_change = self._after_class_change, []
        for call in waiting:
            call()

    def class_change_pending(self) -> bool:
        """Whether a class change's remap of the open maps is under way (the maps take no edit)."""
        return self._class_change is not None

    def _edits_blocked(self) -> str | None:
        """Why the open maps take no edit now (a class change is being applied), or None."""
        return None if self._class_change is None else APPLYING_CLASS_CHANGE

    def _refuse_during_class_change(self, edit, kind: str) -> None:
        if kind != "do":
            (self.class_undo if kind == "undo" else self.class_redo).append(edit)
            self.refresh_class_buttons()
        self.panel.set_classes(self.classes)
        self.workspace.show_status(f"{APPLYING_CLASS_CHANGE} “{edit.description}” waits: try again in a moment", 6000)

    def _remap_open_maps(self, edit, snapshot: dict, done, failed) -> None:
        """Remap every open map, its reference and live pyramid into ``edit.after`` on the job thread
        (``remap_parts``), then, on the UI thread, adopt them and remap the undo logs; then
        ``done(taken)`` ({path: what the edit took}, see ``_remap_session``). Until then the maps take
        no edit. A map opened or changed meanwhile (it should not be) is remapped here, as before."""
        self.tools.finish_stroke()
        self._class_change = edit
        owner = self.class_edit_owner()  # the project it is of: another one opened meanwhile is not remapped
        self.workspace.show_status(APPLYING_CLASS_CHANGE, 0)
        inputs = []
        for doc in self.workspace.docs:
            session = doc.annotation
            if session is None:
                continue
            old = session.annotation
            tag, patch, before_edits = self._remap_inputs(doc, edit, snapshot.get(doc.path))
            inputs.append((doc, session, session.version, old, session.reference, before_edits,
                           (old.label, old.reference, session.reference, old.source, old.levels, tag, patch)))

        def run() -> list:
            return [(doc, session, version, old, reference, before_edits, remap_parts(edit, *args))
                    for doc, session, version, old, reference, before_edits, args in inputs]

        def made(results: list) -> None:
            self._class_change = None
            self.workspace.show_status("", 0)
            QtCore.QTimer.singleShot(0, self, self.replay_class_edits)
            if self.class_edit_owner() != owner:  # another project opened (or none): its maps are not of this
                # change, nor is it made there - of the same classes, it was (a merge asked in P made in Q)
                failed(NO_LONGER_OPEN + ("without a project, and a project is open now" if owner is None
                                         else f"in the project {owner.name}, no longer open here"))
                self._class_change_over()
                return
            if self.classes != edit.before:  # replaced meanwhile (another writer's, followed): not ours to remap
                failed("the classes changed meanwhile")
                self._class_change_over()
                return
            taken, remapped = {}, set()
            for doc, session, version, old, reference, before_edits, parts in results:
                if doc.annotation is not session:
                    continue  # closed meanwhile: its files follow the project's rewrite
                remapped.add(doc.path)
                if session.version != version or session.annotation is not old or session.reference is not reference:
                    taken[doc.path] = self._remap_session(doc, edit, snapshot.get(doc.path))  # changed: again
                else:
                    taken[doc.path] = self._adopt_remap(session, edit, parts, before_edits)
            for doc in self.workspace.docs:
                if doc.annotation is not None and doc.path not in remapped:  # opened meanwhile
                    taken[doc.path] = self._remap_session(doc, edit, snapshot.get(doc.path))
            done(taken)
            self._class_change_over()

        def not_made(message: str) -> None:
            self._class_change = None
            self.workspace.show_status("", 0)
            QtCore.QTimer.singleShot(0, self, self.replay_class_edits)
            failed(message)
            self._class_change_over()

        self.jobs.submit(run, made, not_made, APPLYING_CLASS_CHANGE)

    def revert_class_edit(self, edit, then=None) -> None:
        """The project could not apply ``edit`` (its files keep the old classes): the open maps,
        their undo logs and the class set go back to ``edit.before``. Pixels painted since the
        edit keep their paint (mapped back); the others, the pixels of a merged or deleted class
        included, get their value from before the edit (what the edit took from the open maps).
        The maps are remapped on the job thread (see ``apply_class_edit``); the class set goes
        back once they are. Should that job fail, it is tried once more there (never on the UI
        thread: seconds of remapping, and twice the maps' memory); should that fail too, the maps and the class set stay in ``edit.after`` (no write
        puts them into the project of other classes), what the edit took is kept, and the revert can
        be tried again. ``then(reverted, why)`` once it is over (``why``: the failure, when not)."""
        from qgn.classes_edit import inverse_of

        then = then or (lambda _reverted, _why: None)
        if getattr(self, "class_edit_backup", None) is not edit or self.classes != edit.after:
            then(True, "")
            return
        self.class_edit_backup = None
        if not edit.moves_pixels:
            self._replace_classes(edit.before)
            then(True, "")
            return
        if self._class_change is not None:  # (refused while one runs: no second one is under way)
            QtCore.QTimer.singleShot(50, self, lambda: self._revert_later(edit, then))
            return
        # an undo step's revert is the change it undid (a merge again: the inverse of the inverse would
        # delete the class, its pixels to ignore); else the edit's inverse (the snapshot puts back its pixels)
        forward = self._forward_of.get(id(edit), (None, None))[1]
        usable = forward is not None and forward.before == edit.after and forward.after == edit.before
        inverse = forward if usable else inverse_of(edit)
        key = (edit.before, edit.after)
        snapshots = self._class_snapshots  # the history of the project it is of (kept aside if another opens)
        snapshot = snapshots.pop(key, {})
        owner = self.class_edit_owner()

        def reverted(taken: dict) -> None:
            self._class_snapshots[(edit.after, edit.before)] = taken  # what a later redo of the edit puts back
            self._replace_classes(edit.before)
            then(True, "")

        def failed(message: str, first: str | None = None) -> None:
            if (first is None and message != STOPPED and self.classes == edit.after
                    and self.class_edit_owner() == owner):  # (not into the maps of a project opened since)
                # once more on the job thread (the maps are as they were: a failed remap takes none). Not on
                # the UI thread: ~1.4 s per 24-megapixel map held there, with ~2x the maps' memory right when
                # the job had failed (often of memory)
                self._remap_open_maps(inverse, snapshot, reverted, lambda again: failed(again, message))
                return
            snapshots[key] = snapshot  # kept: the revert (or an undo) still puts the pixels back
            if self.class_edit_owner() != owner:  # another project opened meanwhile: the maps this was to put
                then(True, "")  # back are no longer open (its maps, never touched, keep their classes)
                return
            if first is not None and message != STOPPED:
                message = f"{first}; again: {message}"
            self.class_edit_backup = edit
            then(False, message)

        self._remap_open_maps(inverse, snapshot, reverted, failed)

    def switch_class_history(self, left, entered, carry: bool = False, classes=None) -> list:
        """The project open changed from ``left`` to ``entered`` (their roots; None: no project): the
        class-change history (undo, redo and what the changes took from the open maps) is that project's
        own - the history of ``left`` is kept aside, and ``entered``'s (kept when it was left) comes back.
        A step is of one project's files: applied in another with the same classes it rewrote that one
        (a merge undone there). ``carry``: the window's history becomes ``entered``'s (a new project made
        of the open maps and their classes). ``classes``: ``entered``'s classes now - its history kept
        aside is dropped when its steps are not of them (another writer changed them while it was not
        open here: each step would be refused, one Undo at a time), as a reload drops it. Returns the
        descriptions of the steps dropped so, latest first."""
        if entered == left or carry:
            self._forget_steps(self._class_histories.pop(entered, ([], [], {}))[0])
            return []
        # (kept even empty: a step of it whose remap is under way goes back on these very lists if it fails)
        self._class_histories[left] = (self.class_undo, self.class_redo, self._class_snapshots)
        undo, redo, snapshots = self._class_histories.pop(entered, ([], [], {}))
        top = undo[-1] if undo else redo[-1] if redo else None  # (each list's latest step is of the classes then)
        dropped = []
        if top is not None and classes is not None and top.before != classes:
            dropped = self._step_descriptions(undo, redo)
            self._forget_steps(undo)
            undo, redo, snapshots = [], [], {}
        self.class_undo, self.class_redo, self._class_snapshots = undo, redo, snapshots
        while len(self._class_histories) > 8:  # (each may hold the pixels a merge took: a few projects' only)
            self._forget_steps(self._class_histories.pop(next(iter(self._class_histories)))[0])
        self.refresh_class_buttons()
        return dropped

    def _step_descriptions(self, undo, redo) -> list:
        """The descriptions of the class changes of the history (``undo``, ``redo``), latest first."""
        return ([self.forward_description(step) for step in reversed(undo)]
                + [step.description for step in reversed(redo)])

    def _forget_steps(self, undo) -> None:
        """The undo steps ``undo`` were dropped (their history evicted, or dropped by a reload): their
        entries of ``_forward_of`` go too - each kept its inverse alive, with the restore patches it holds."""
        for step in undo:
            if self._forward_of.get(id(step), (None,))[0] is step:
                del self._forward_of[id(step)]

    def _clear_redo(self) -> None:
        """A new class change: the redo list goes, with what its steps would have put back in the open maps
        (their snapshots: the pixels an undo of a merge took back), but a snapshot an undo step still needs."""
        needed = {(step.after, step.before) for step in self.class_undo}
        for step in self.class_redo:
            if (step.after, step.before) not in needed:
                self._class_snapshots.pop((step.after, step.before), None)
        self.class_redo.clear()

    def forward_description(self, inverse) -> str:
        """The description of the class change the undo step ``inverse`` takes back."""
        return self._forward_of.get(id(inverse), (None, inverse))[1].description

    def drop_class_history(self) -> list:
        """Another writer changed the open project's classes and it was read again: the class changes of
        before can no longer be undone or redone (each step is of the classes before, and what they took
        from the open maps of maps read again). Returns the descriptions of the steps dropped, latest first."""
        dropped = self._step_descriptions(self.class_undo, self.class_redo)
        self._forget_steps(self.class_undo)
        self.class_undo, self.class_redo, self._class_snapshots = [], [], {}
        self.refresh_class_buttons()
        return dropped

    def put_back_class_step(self, edit, kind: str, owner=ANY_OWNER) -> None:
        """The project could not apply the undo or redo step ``edit`` (``kind``): it goes back on its list
        (of the project at ``owner``: kept aside when that is no longer open)."""
        undo, redo = self._history_of(owner)
        stack = undo if kind == "undo" else redo
        if kind in ("undo", "redo") and not any(step is edit for step in stack):
            stack.append(edit)
            self.refresh_class_buttons()

    def _revert_later(self, edit, then=None) -> None:
        self.class_edit_backup = edit
        self.revert_class_edit(edit, then)

    def _remap_inputs(self, doc, edit, snapshot):
        """(The restore patch tag of ``doc``'s files in ``edit``, the snapshot's patch, its steps'
        values before) — what ``_remap_session`` needs of the UI thread's state."""
        session = doc.annotation
        key = self.file_key(doc)
        tags = [f"autosave/{key}", f"annotations/{key}"] if session.dirty else [f"annotations/{key}", f"autosave/{key}"]
        tag = next((t for t in tags if key is not None and t in edit.restore), None)  # an undo's pixels
        patch, before_edits = snapshot if snapshot is not None else (None, {})
        return tag, patch, before_edits

    def _remap_session(self, doc, edit, snapshot=None):
        """``doc``'s open map and undo log in the classes of ``edit``, here (a map opened or edited
        while ``remap_parts`` ran); ``snapshot`` (what the forward edit took, when this undoes it)
        puts back what the value map alone cannot. Returns what this edit takes: (restore patch,
        {command serial: its values before, where the edit loses them (`ValuesBeforeRemap`)})."""
        session = doc.annotation
        old = session.annotation
        tag, patch, before_edits = self._remap_inputs(doc, edit, snapshot)
        parts = remap_parts(edit, old.label, old.reference, session.reference, old.source, old.levels, tag, patch)
        return self._adopt_remap(session, edit, parts, before_edits)

    def _adopt_remap(self, session, edit, parts, before_edits: dict):
        """(UI thread) ``session`` takes the map, reference and pyramid ``remap_parts`` made, and its
        undo log's steps are remapped (their patches: small). Returns what the edit takes."""
        from qgn.label_map import label_dtype

        taken = (parts.taken, {})
        table, dtype = edit.lut(), label_dtype(edit.after)
        commands = [session.undo.command(i) for i in range(session.undo.count())]
        if all(hasattr(c, "remap") for c in commands):  # the history follows the classes
            for command in commands:
                if command.serial in before_edits:  # exactly as before the edit this undoes (its
                    before_edits[command.serial].put_back(command)  # redo: the same remap again)
                else:
                    lost = command.remap(table, dtype)
                    if lost is not None:
                        taken[1][command.serial] = lost
        else:  # a step that cannot say its pixels in the new classes: the history ends here
            dirty = session.dirty
            session.undo.clear()
            if dirty:
                session.mark_unsaved()
        session.annotation = parts.annotation
        if session.reference is not None:
            session.reference = parts.reference
        session.pyramid = parts.pyramid
        session.reset.emit()
        return taken

    def _replace_classes(self, classes) -> None:
        self.workspace.set_classes(classes)
        for doc in self.workspace.docs:
            if doc.annotation is not None:
                doc.annotation.classes = classes
        self.tools.set_num_classes(classes.num_classes)
        self.panel.set_classes(classes)
        self.panel.set_class(min(self.tools.class_id, classes.num_classes - 1))
        self._class_changed(self.tools.class_id)
        self._name_class_actions()
        self.class_set_edited.emit(classes)

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
        origin = SOURCE_TEXT.get(session.origin, session.origin)
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
        have = doc is not None and doc.image is not None and self.classes is not None
        self.panel.set_start_available({
            "prediction": have and doc.result is not None,
            "truth": have and doc.ground_truth is not None,
            "import": have,
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
        share = 100 * pixels / session.label.size
        self.panel.set_changed_summary(
            f"Changed: <b>{pixels:,} px</b> ({share:.1f} %) · <b>{cells:,}</b> cells of "
            f"{1 << level}×{1 << level} px")

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
