"""Class changes in a project: this window's class edits written into the open project (and the scratch
project of the edited class set), and another writer's class change followed here.

This window's (``_class_set_edited``, ``_class_edited``): the project rewrites its saved annotations and
autosaves in one step on the job thread; a refusal (another writer changed the classes first) makes the
edit again once that change is followed; one that fails after the window hid is said on stderr
(``window_hidden``, ``_class_write_refused_after_close``); the window's close makes those still under
way or waiting (``finish_class_work``). Another writer's (``reload_changed_classes``, ``_reload_classes``):
the project is read again on the job thread, the saved maps are read anew and the unsaved ones follow
the class edits the project recorded (``follow_or_keep``, ``follow_edits``; else by class name,
``relabel_exactly``), or are kept in ``conflicts/`` when they use a class it no longer has
(``loses_labels``). The two serialise: one waits for the other (``_reload_waiting``, ``_class_writes``).
Another project opened drops the class changes that waited in the one before (``_project_changed``).

A mixin of ``qgn_studio.project_controller.ProjectController`` (its ``__init__`` makes the state).
Reads ``project``, ``workspace``, ``annotator``, ``jobs``, ``_scratches``, ``_hidden``; reads and writes
``_classes_written_by_edit``, ``_class_writes``, ``_reload_waiting``, ``_keeping``, ``_class_root``,
``_carry_class_history``, ``_versions``, ``_autosaved``; starts ``_reload_timer``. Calls back
into the controller's ``_warn``, ``_write_failed``, ``_job_progress``, ``_set_project``, ``_show_merged``,
``_unreadable_on_disk``, ``_marks_pending``, ``_retry_later`` and ``document_shown``.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from PySide6 import QtCore

from qgn_studio.jobs import STOPPED
from qgn_studio.project_watch import CHANGED_ELSEWHERE, merged_view

CLASSES_RELOADED = "classes reloaded"  # the banner's topic for another writer's class edit, followed here
# the status bar's words for the class edits' jobs, followed by "done/total · about … left"
CLASS_EDIT = "Changing the classes of the saved annotations"
CLASS_EDIT_AUTOSAVES = "Changing the classes of the autosaves"


class ProjectClassChangesMixin:
    """``ProjectController``'s class changes, this window's and another writer's (see the module docstring)."""

    def _class_set_edited(self, classes) -> None:
        project = self.project
        if project is None:
            return

        if self._classes_written_by_edit == classes:  # the class edit writes them (or fails and is undone)
            self._classes_written_by_edit = None
            return

        def write() -> None:
            if project.classes == classes:  # a class edit already rewrote the project (see _class_edited)
                return
            project.classes = classes
            project.save()  # refused (nothing written) when the project has files of the old classes

        self.jobs.submit(write, failed=lambda message: self._write_failed(f"Cannot save the classes: {message}"))

    def _class_edited(self, payload) -> None:
        """A class edit (add, rename, recolour, merge, delete): the open project and the scratch
        project of the edited class set apply it to every saved annotation and autosave in one atomic step
        (``qgn.project_class_edit.apply_class_edit``); the project's inverse becomes the undo."""
        from qgn.classes_edit import inverse_of

        edit, kind = payload  # kind: "do", "undo" (its inverse goes to the redo list) or "redo"
        kind = {True: "do", False: "undo"}.get(kind, kind)
        annotator = self.annotator
        targets = [t for t in [self.project, *self._scratches.values()] if t is not None and t.classes == edit.before]
        if not targets:
            try:
                annotator.record_class_inverse(edit, inverse_of(edit), kind)
            except ValueError:
                pass
        if self.project is not None and self.project in targets:
            self._classes_written_by_edit = edit.after
        for target in targets:
            keep = target is targets[0]
            ours = target is self.project
            if ours:
                self._class_writes += 1  # another writer's class change seen meanwhile waits for it
            run = partial(self._apply_class_edit, target, edit, self._versions if target is self.project else None)
            done = partial(self._class_edit_written, edit, kind, keep, ours, self._class_root)
            failed = partial(self._class_edit_refused, edit, kind, target, ours, self._class_root)
            self.jobs.submit(run, self._ending_progress(done), self._ending_progress(failed), CLASS_EDIT,
                             self._job_progress(CLASS_EDIT if target is self.project else CLASS_EDIT_AUTOSAVES))

    def _apply_class_edit(self, target, edit, versions: dict | None, report):
        """Apply ``edit`` to every file of the project ``target`` (job thread); its inverse. ``versions``:
        the open project's annotation versions, noted afresh (this window rewrote every file)."""
        from qgn.project_class_edit import apply_class_edit

        inverse = apply_class_edit(target, edit, report)
        if versions is not None:
            refresh_versions(target, versions)  # every file was rewritten, by this window
        refresh_autosave_versions(target, self._autosaved)
        return inverse

    def _class_edit_written(self, edit, kind: str, keep: bool, ours: bool, root, inverse) -> None:
        """A project took the class edit (UI thread); ``keep``: its ``inverse`` becomes the undo (or redo)."""
        if ours:
            self._class_write_ended()
        if keep:  # (the project left meanwhile: on its own list, kept aside - never on another's)
            self.annotator.record_class_inverse(edit, inverse, kind, root)

    def _class_edit_refused(self, edit, kind: str, target, ours: bool, root, message: str) -> None:
        """The project ``target`` refused the class edit (UI thread): said, and the open maps follow
        what the project kept."""
        annotator = self.annotator
        if ours:
            self._class_write_ended()
        if self._hidden:  # the window closed, this write under way: no window to say it in, nothing to
            self._class_write_refused_after_close(edit, kind, target, message)  # revert or make again
        elif ours and target is not self.project:  # the user opened another project (or none) meanwhile:
            # its open maps are not of this change (none to revert, nothing made again there)
            annotator.put_back_class_step(edit, kind, root)  # (an undo or redo: that project's list)
            self._refused_in_project_left(edit, kind, target, root, message)
        elif target is self.project:  # its files keep the old classes: so do the open maps
            # another writer changed the project (its classes) since: follow that, then make ours again
            # on the classes then (by name) - neither change is lost
            retry = CHANGED_ELSEWHERE in message and annotator.retry_class_edit_later(edit)
            if retry:
                self._reload_waiting = True
                self._reload_timer.start()
            annotator.put_back_class_step(edit, kind)  # an undo or redo step: it can be tried again
            annotator.revert_class_edit(edit, partial(self._class_edit_reverted, edit, kind, target, root, message,
                                                      retry))
        else:
            self._warn(f"Cannot change the classes of the autosaves without a project: {message}")

    def _class_edit_reverted(self, edit, kind: str, target, root, message: str, retry: bool, back: bool,
                             why: str) -> None:
        """One line, once the open maps are back (or not) after ``target`` refused the class edit with
        ``message``; ``retry``: it is made again once another writer's change is followed here."""
        if back and self.project is not target:  # left while they went back: the open images
            if not retry:  # are another's (a retry waiting was dropped, said, as it was left)
                self._refused_in_project_left(edit, kind, target, root, message)
        elif not back:
            self._write_failed(
                f"Cannot change the classes: {message}; the open images could not go back to the "
                f"old classes either ({why}): they keep the new ones, and nothing of them is written "
                "into the project (of the old classes) - save them into a new project")
        elif retry:
            self._warn(f"Another window or command changed the project's classes meanwhile: "
                       f"“{edit.description}” is made again once that change is followed here")
        elif kind in ("undo", "redo") and CHANGED_ELSEWHERE in message:
            # its step is of the classes before that change: the reload that follows it drops it
            step = self.annotator.forward_description(edit) if kind == "undo" else edit.description
            self._write_failed(
                f"Cannot {kind} the class change “{step}”: another window or command changed the "
                f"project's classes first (nothing was written). Once that change is followed here, "
                f"the class changes before it can no longer be {kind}ne")
        else:
            self._write_failed(f"Cannot change the classes: {message}. Nothing changed: the saved "
                               "annotations and the open images keep the old classes")

    def _refused_in_project_left(self, edit, kind: str, target, root, message: str) -> None:
        """The project ``target`` (at ``root``), no longer open here, refused the class change ``edit``
        (``kind``) with ``message``: said in one line naming the change and the project, and how to make it."""
        what = {"do": "made", "undo": "undone", "redo": "redone"}[kind]
        step = self.annotator.forward_description(edit) if kind == "undo" else edit.description
        again = self.project is not None and self.project.root == root  # (opened again since)
        self._write_failed(
            f"Not {what}: “{step}” - the project {target.root.name} ({target.root}) refused it: "
            f"{message}. Nothing changed in it; "
            + ("it was opened again meanwhile: make the change again if you still want it" if again
               else "it is no longer open here: open it to make the change again"))

    def window_hidden(self) -> None:
        """The window closed and is hidden with a write still under way (``MainWindow._leave_if_writing``):
        a class change's rewrite that fails now is said on stderr, in one line (``_class_write_refused_after_close``)."""
        self._hidden = True

    def _class_write_refused_after_close(self, edit, kind: str, target, message: str) -> None:
        """The rewrite of ``target`` for the class change ``edit`` (``kind``) failed once the window was
        hidden: one plain line on stderr naming the change, the project and what to do. Nothing else is
        done (the open maps go with the window; no retry, no reload: the threads stop)."""
        import sys

        what = {"do": "made", "undo": "undone", "redo": "redone"}[kind]
        step = self.annotator.forward_description(edit) if kind == "undo" else edit.description
        where = (f"the project {target.root.name} ({target.root})" if target is self.project
                 else f"the autosaves without a project ({target.root})")
        why = ("another window or command changed its classes first; nothing was written"
               if CHANGED_ELSEWHERE in message else f"{message}; nothing changed in it")
        again = {"do": "make it again", "undo": "undo it again", "redo": "make it again"}[kind]
        print(f"qgn-studio: the class change “{step}” was not {what} in {where}: {why}. Open it and {again}",
              file=sys.stderr)

    def reload_changed_classes(self) -> None:
        """Another writer changed the project's classes: read the project again; saved maps are
        read anew, unsaved ones follow the class edits the project recorded (exactly as its files
        did: a rename too), else by class name, or are kept in ``conflicts/`` when they use a
        class the project no longer has; a map whose pixels of a class deleted there follow to void
        is also kept there, as it was. The keeping writes under the project's write lock, which
        another writer may hold for a minute: it runs on the job thread, and the reload follows
        once the maps are kept. Until then the open maps stay as they are; if the keeping fails
        (the project busy, a full disk), they stay open and the next look tries again. The project
        is read, the unsaved maps relabelled (~0.25 s for a 24-megapixel map) and made ready to
        adopt (their check, copy and live pyramid) on the job thread too: a map edited meanwhile
        is looked at again."""
        if self._keeping:  # the last look is on its way: it reloads once its maps are kept
            return
        if self._class_work_of_ours():  # after our class change is in (its maps, then the project's rewrite):
            self._reload_waiting = True  # the two serialise, and the unsaved maps are read in their own classes
            self._reload_timer.start()
            return
        self._reload_waiting = False
        old = self.project
        marks = self._dirty_marks()
        sessions = [(doc, doc.annotation, doc.annotation.version) for doc in self.workspace.docs
                    if doc.annotation is not None and doc.annotation.dirty]
        maps = [(doc, session.label, session.classes) for doc, session, _version in sessions]
        root, generation, old_classes = old.root, old.generation, old.classes
        known = {d.path for d in self.workspace.docs}
        step = ["reading the project"]  # what the job was doing (its ``failed`` says so)

        def run():
            return reread_project(root, generation, old_classes, maps, sessions, known, step)

        def done(out) -> None:
            self._changed_classes_reread(old, marks, out)

        def failed(message: str) -> None:
            self._changed_classes_unread(step[0], message)

        self._keeping = True
        self.jobs.submit(run, done, failed, "Reading the project's new classes")

    def _changed_classes_reread(self, old, marks, out) -> None:
        """The job of ``reload_changed_classes`` ended with ``out`` (``reread_project``'s): the classes
        followed, or looked at again when the maps were edited meanwhile (``marks``: their versions then)."""
        self._keeping = False
        QtCore.QTimer.singleShot(0, self, self.annotator.replay_class_edits)  # class changes that waited
        if self.project is not old:  # closed or reloaded meanwhile: the maps are kept all the same
            return
        if isinstance(out, Exception):
            self._unreadable_on_disk(out)
            return
        if out is None or self._dirty_marks() != marks:  # edited meanwhile: look again (the maps kept stay kept)
            self.reload_changed_classes()
            return
        fresh, follow, paths, view = out
        self._reload_classes(fresh, follow, [p for r, p in paths if r == "parked"],
                             [p for r, p in paths if r == "kept"], view)

    def _changed_classes_unread(self, step: str, message: str) -> None:
        """The job of ``reload_changed_classes`` failed while ``step``: said, and tried again shortly."""
        self._keeping = False
        QtCore.QTimer.singleShot(0, self, self.annotator.replay_class_edits)
        if message == STOPPED:  # (the window closed: nothing to tell)
            return
        self._warn(f"Another window or command changed the project's classes; {step} failed: {message}. "
                   "The unsaved maps stay open here as they were; it is tried again shortly")

    def class_work_pending(self) -> bool:
        """Whether another writer's class change is being followed here or waits to be."""
        return self._keeping or self._reload_waiting

    def _class_work_of_ours(self) -> bool:
        """Whether a class change of this window is under way: its remap of the open maps or the
        project's rewrite (and a revert's remap after a failed one)."""
        return self.annotator.class_change_pending() or self._class_writes > 0

    def _project_changed(self, project) -> None:
        """Another project opened, or none: the class changes of ours that waited in the one before are
        not made here (said), and another writer's class change there need not be followed any more."""
        root = None if project is None else project.root
        carry, self._carry_class_history = self._carry_class_history, False
        if root == self._class_root:
            return  # (the same project read again: a reload)
        left, self._class_root = self._class_root, root
        self._reload_waiting = False
        annotator = self.annotator
        annotator.drop_queued_class_edits(root)
        # its class changes' undo steps are of its files: never applied to another's (kept for when it is
        # open again); a new project made of the open maps takes the window's. Steps kept aside whose
        # project another writer changed meanwhile are dropped, said as a reload says it
        dropped = annotator.switch_class_history(left, root, carry, None if project is None else project.classes)
        if dropped:
            self.workspace.warn(f"The classes of the project {root.name} were changed by another window or command "
                                "while it was not open here: the class changes made in it here before that can no "
                                "longer be undone or redone (they were of its classes before): " + step_names(dropped),
                                CLASSES_RELOADED, 10000)

    def class_work_left(self) -> bool:
        """Whether a class change of ours is under way or waits (what ``finish_class_work`` makes)."""
        return bool(self.annotator._queued_edits) or self._class_work_of_ours()

    def finish_class_work(self, timeout_s: float = 60.0) -> None:
        """The window closes: the class changes of ours under way and those that wait (each the user was
        told waits) are made before the threads stop - each on the job thread, its callbacks delivered here,
        as usual. The UI thread waits in short slices, its events (paints, timers; not the user's input)
        processed between them, so the window does not freeze while a big project is rewritten. What is
        still not made after ``timeout_s`` is said (one line) and dropped."""
        import time

        annotator = self.annotator
        end = time.monotonic() + timeout_s
        busy = self.class_work_left
        while busy() and time.monotonic() < end:
            self.jobs.wait_idle(min(0.05, max(0.0, end - time.monotonic())))
            QtCore.QCoreApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
            if self.jobs.pending():
                continue  # (the job under way: its end is waited for in the next slice)
            if annotator._queued_edits and self._reload_waiting and not self._keeping and not self._class_work_of_ours():
                self._reload_when_free()  # (not after its timer's 50 ms)
            elif busy():
                annotator.replay_class_edits()
                time.sleep(0.01)
        if annotator._queued_edits:
            import sys

            dropped = annotator.drop_queued_class_edits(object(), "the window closed first")
            print(f"qgn-studio: warning: class changes not made (the window closed first): {', '.join(dropped)}",
                  file=sys.stderr)

    def _class_write_ended(self) -> None:
        self._class_writes = max(0, self._class_writes - 1)
        if self._reload_waiting:
            self._reload_timer.start()
        QtCore.QTimer.singleShot(0, self, self.annotator.replay_class_edits)  # the class changes that waited for it

    def _reload_when_free(self) -> None:
        """Follow another writer's class change that waited for ours (``reload_changed_classes``)."""
        if not self._reload_waiting:
            return
        if self.project is None:
            self._reload_waiting = False
            self.annotator.replay_class_edits()
            return
        if self._class_work_of_ours() or self._keeping:  # (a reload under way: this one after it)
            self._reload_timer.start()
            return
        self.reload_changed_classes()

    def _dirty_marks(self) -> list:
        """What says that an unsaved map changed: (path, its session, its version) of each."""
        return [(doc.path, id(doc.annotation), doc.annotation.version) for doc in self.workspace.docs
                if doc.annotation is not None and doc.annotation.dirty]

    def _reload_classes(self, fresh, follow: list, parked: list, kept: list, view: tuple | None = None) -> None:
        """Switch to ``fresh`` (its classes changed elsewhere): the maps of ``follow`` adopted, those of
        ``parked`` and ``kept`` already in its conflicts/; ``view``: ``merged_view`` of ``fresh``, made on
        the job thread (None: made here)."""
        from qgn.project import CONFLICTS_DIR

        annotator = self.annotator
        annotator.forget([d for d in self.workspace.docs if d.annotation is not None])
        annotator.loading.clear()
        annotator.unreadable.clear()
        annotator.unreadable_what.clear()
        annotator.set_classes(fresh.classes)
        # the inverses were made for the old classes (a redo too), and what they took from the open maps
        # is of maps read again: none applies now (said, naming them - an undo the project just refused
        # for this change went back on its list, and would be gone unsaid)
        dropped = annotator.drop_class_history()
        self._set_project(fresh)
        unrecorded = self._marks_pending()  # refused by the old copy (the class edit): the user's, kept
        for doc in self.workspace.docs:
            try:
                doc.done = unrecorded.get(doc.path, fresh.image_for(doc.path).done)
            except KeyError:
                pass
            self.workspace.document_updated(doc)
        if unrecorded:
            self._retry_later()  # written into the reloaded project
        versions = self._versions
        for doc, label, prepared in follow:
            annotator.adopt(doc, label, "recovered", True, prepared=prepared)
            # their files were rewritten by the other writer's class edit, which these maps follow
            self.jobs.submit(lambda path=doc.path: refresh_versions(fresh, versions, [path]))
        self.jobs.submit(lambda: refresh_autosave_versions(fresh, self._autosaved))  # moved by that edit too
        self._show_merged(fresh, view)
        self.document_shown(self.workspace.current)
        text = "Another window or command changed the project's classes: reloaded"
        if follow:
            text += f"; the unsaved edits of {len(follow)} image(s) follow by class name"
        if kept:
            text += (f". A class deleted there held unsaved pixels of {len(kept)} image(s), now void here; the maps "
                     f"as they were are kept (with their own classes) in {fresh.root / CONFLICTS_DIR}")
        if parked:
            text += (f". The unsaved edits of {len(parked)} image(s) use classes the project no longer has: they are "
                     f"kept (with their own classes) in {fresh.root / CONFLICTS_DIR}")
        if dropped:
            text += (". The class changes of this window before it can no longer be undone or redone (they were "
                     "of the classes before): " + step_names(dropped))
        # a topic of its own: where the maps were kept must stay on screen when a write that was already
        # on its way then fails against the changed project ("Autosave failed: ... changed ... meanwhile"
        # replaced it under the topic "project": seen in CI on a loaded machine)
        self.workspace.warn(text, CLASSES_RELOADED, 10000)


def step_names(dropped: list) -> str:
    """The class-change steps a reload (or a return to a project changed meanwhile) drops, named: three at most."""
    return ", ".join(f"“{d}”" for d in dropped[:3]) + (f" and {len(dropped) - 3} more" if len(dropped) > 3 else "")


def refresh_versions(project, versions: dict, paths=None) -> None:
    """Read again the saved annotations' versions of ``paths`` (default: every path in
    ``versions``) after a rewrite this window made or follows (job thread)."""
    for path in list(versions) if paths is None else paths:
        try:
            versions[path] = project.annotation_version(project.image_for(path))
        except KeyError:
            versions.pop(path, None)


def refresh_autosave_versions(project, autosaved: dict) -> None:
    """Read again the versions of this window's autosaves in ``project`` after a class edit
    rewrote them (job thread)."""
    root = str(project.root)
    for key in [k for k in autosaved if k[0] == root]:
        try:
            autosaved[key] = project.autosave_version(project.image_for(key[1]))
        except KeyError:
            autosaved.pop(key, None)


def reread_project(root, generation, old_classes, maps: list, sessions: list, known: set, step: list):
    """On the job thread: the project at ``root`` read again after another writer changed its classes, the
    unsaved ``maps`` (doc, label, classes) followed into them or kept in its conflicts folder. Returns
    (fresh project, [(doc, label, ready parts)], [(reason, kept path)], merged view), the exception that
    opening it raised, or None when a map of ``sessions`` (doc, session, version) was edited meanwhile.
    ``step[0]`` says what it is doing (a failure's message names it); ``known``: the paths open here."""
    from qgn.project import Project

    try:
        fresh = Project.open(root)
    except Exception as exc:
        return exc
    step[0] = "following them in the unsaved maps"
    follow, keep = follow_or_keep(maps, root, generation, old_classes, fresh)
    if any(session.version != version for _doc, session, version in sessions):
        return None  # edited meanwhile (a copy to keep may be of half an edit): looked at again
    step[0] = "keeping the unsaved edits those classes cannot hold in its conflicts folder"
    paths = [(reason, fresh.keep_conflict(stem, label, classes)) for reason, stem, label, classes in keep]
    step[0] = "preparing the unsaved maps in those classes"
    ready = [(doc, label, ready_to_adopt(label, fresh.classes)) for doc, label in follow]
    # what the reload shows and looks up by path, made here: a Path and a file check per image and the
    # path index held the UI thread ~1 s at 100,000 images
    step[0] = "reading its images"
    fresh.warm_index()
    return fresh, ready, paths, merged_view(fresh, known)


def follow_or_keep(maps: list, root, generation, old_classes, fresh) -> tuple[list, list]:
    """(Job thread) the unsaved maps ``maps`` ((doc, map, its classes) of a project at ``root`` of
    ``generation`` and ``old_classes``) against ``fresh``'s classes: (doc, map) of those that follow,
    (why, stem, a copy of the map, its classes) of those kept in conflicts/ ("parked": it uses a class
    ``fresh`` lacks; "kept": its pixels of a deleted class become void)."""
    from qgn.project_class_edit import edits_since

    chain = edits_since(root, generation, old_classes, fresh.classes, fresh.generation)
    follow, keep = [], []
    for doc, current, classes in maps:
        label = (follow_edits(current, chain) if chain is not None and classes == old_classes
                 else relabel_exactly(current, classes, fresh.classes))
        stem = Path(doc.path).stem
        if label is None:
            keep.append(("parked", stem, current.copy(), classes))
            continue
        if loses_labels(current, classes, label, fresh.classes):
            # a class deleted elsewhere: its unsaved pixels become void here; the map as it was,
            # in its own classes, is kept (an undo of the delete there cannot reach this map)
            keep.append(("kept", stem, current.copy(), classes))
        follow.append((doc, label))
    return follow, keep


def ready_to_adopt(label, classes):
    """(Job thread) what ``Annotator.adopt(..., prepared=)`` takes of a map of ``classes``: its check
    and copy and its live pyramid (the reference is made on the job thread once adopted); None when
    the map cannot be checked (``adopt`` says why)."""
    from types import SimpleNamespace

    from qgn.annotation import Annotation
    from qgn.annotation.changes import ChangeTally
    from qgn_studio.annotation_doc import LivePyramid

    try:
        annotation = Annotation(label, classes, "import")
        pyramid = LivePyramid(annotation.label, classes.num_classes, classes.ignore_index)
    except Exception:
        return None
    return SimpleNamespace(label=label, annotation=annotation, pyramid=pyramid, reference=(None, None),
                           reference_classes=None, changes=ChangeTally())


def follow_edits(label, edits):
    """``label`` (H, W) remapped through the class edits ``edits`` in order (their value maps, as
    the project's files were); None when it holds a value the first edit's classes do not know."""
    from qgn.classes_edit import remap_label

    try:
        for edit in edits:
            label = remap_label(label, edit)
    except ValueError:
        return None
    return label


def loses_labels(before, source, after, target) -> bool:
    """Whether a pixel labelled with a class in ``before`` (H, W, of class set ``source``) is void
    in ``after`` (the same map relabelled into ``target``): a class edit that deleted a class."""
    import numpy as np

    if target.ignore_index is None:
        return False
    labelled = before != source.ignore_index if source.ignore_index is not None else np.ones(before.shape, bool)
    return bool(np.any(labelled & (after == target.ignore_index)))


def relabel_exactly(label, source, target):
    """``label`` (H, W) of class set ``source`` as a map of ``target``, each class going to the
    class of the same name and ignore to ignore; None when a pixel's class has no namesake (or
    ignore pixels meet a target without an ignore value)."""
    import numpy as np

    from qgn.label_map import label_dtype

    from qgn.classes import name_key

    where = {name_key(name): i for i, name in enumerate(target.names)}  # the same name: a case-only rename too
    top = max(source.num_classes, (source.ignore_index or 0) + 1)
    table = np.full(top, -1, np.int64)
    for i, name in enumerate(source.names):
        table[i] = where.get(name_key(name), -1)
    if source.ignore_index is not None:
        table[source.ignore_index] = -1 if target.ignore_index is None else target.ignore_index
    values = np.unique(label)
    if values.max(initial=0) >= top or (table[values] < 0).any():
        return None
    return table[label].astype(label_dtype(target))
