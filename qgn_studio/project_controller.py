"""Persistence — nothing lost: projects, saving, autosave, crash recovery, closing with unsaved edits.

With a project open (``qgn.project.Project``: images, annotations as .qgt, classes, model, done
flags), Ctrl+S saves every annotation with unsaved edits into it, "done" flags and class edits go
into project.json at once, and an image's saved annotation is read (off the UI thread) the first
time the image is shown.

Autosave: ``AUTOSAVE_DELAY_MS`` after an edit (later edits do not put it off), every annotation with
edits not yet autosaved is copied and written on the job thread (``JobRunner``) into the project's
``.autosave/`` — or, without a project, into a per-user *scratch project* of the map's class set
(``qgn_studio.scratch``: one per class set) under ``$QGN_STUDIO_SCRATCH``, else
``<AppDataLocation>/unsaved`` (e.g. ``~/.local/share/QGN/QGN Studio/unsaved``). So a crash never
loses more than the last two seconds, project or not, whatever the classes of the autosaves still
waiting from a crash. A failed autosave (a full disk) is said and tried again every
``AUTOSAVE_RETRY_MS``, edit or not. A read-only project is autosaved into its *stand-in* in the
scratch folder (``scratch.stand_in``), whose autosaves are offered when that project is opened
again; so is an autosave a writable project refuses (project.json unreadable, a full disk), until
the project takes the edits. A window made without settings (screenshots) has no scratch project
and never writes there.

Opening: a project whose project.json is more than a few KB is read on the job thread
(``project_open``: project.json, its image files, a document per image), with its progress in the
status bar; nothing can be edited until it is open (``Workspace.opening``), Esc cancels it, and
opening another project meanwhile replaces it.

Recovery: opening a project — or starting without one, for each scratch project — whose autosaves
hold edits the saved annotations lack (``Project.recoverable``) asks (``ask_recover``, with a
``recovery_question.RecoveryQuestion``: whose autosaves, which images, when: "restore" / "discard" —
they move to its ``discarded/`` — / "later"); restored maps become unsaved annotations of their images (their images are
opened if needed), of their own class set (the annotations take a scratch project's classes when
none of another set is open; otherwise its autosaves wait for a later start). The settings
remember the open project until the window closes normally, so a start after a crash reopens that
project when it has autosaves to offer.

Without a project, the first Ctrl+S asks for a folder (``ask_folder``) and creates a project there
with the open images, the class set, the model and the done flags, then saves into it. Without a
project a done mark is kept at once in the scratch project (of the image's class set) too, so a
crash loses none: the next start offers it back with the autosaves. Closing images with unsaved
edits — or, without a project, marked done — asks (``ask_unsaved``: "save" / "discard" /
"cancel"; "discard" clears the kept marks; a window close whose Save fails - a full disk - may close
leaving the edits in their autosaves, offered at the next start: ``ask_keep_unsaved``). Every ``ask_*`` is an attribute, so tests replace the
dialogs with a choice.

Another writer (a second window, ``qgn import``, a script): every write of ``qgn.project`` locks the
project and merges or refuses what changed meanwhile, so nothing here overwrites it. The controller
notices the change (``check_project_on_disk``: every ``WATCH_MS``, and after a refused write) and
reloads: new images and done flags join the list; a class change elsewhere reloads the classes and
the saved annotations, and unsaved edits follow the class edits the project recorded
(``qgn.project_class_edit.edits_since``), else by class name — or, when they use a class the
project no longer has, are kept as .qgt files (with their own classes) in ``<project>/conflicts/``.
A saved annotation is read with its version on disk (``Project.annotation_version``) and saved over
that version only: another writer's save of the image in between is kept in ``conflicts/`` and the
user told (``Project.save_annotation(over=)``); this window's own class edits read the versions anew,
and a map open without unsaved edits is read again when another writer saves it (the watch) — not
while a stroke is under way on it or it has edits to redo (undone back to the saved map).
Autosaves carry this window's version the same way: another window's autosave of the same image is
moved to ``conflicts/`` (one warning per image), a save or discard here removes only this
window's own autosave, and unsaved edits whose autosave was displaced are autosaved again once the
slot is empty (the other window saved) — in the scratch project too, which the windows without a
project share (another window's start may offer and discard the autosaves of one still open).
A class edit the project could not apply (a file it cannot rewrite) is undone in the open maps too.

By concept, ``ProjectController`` is made of mixins, each in its own module: ``project_autosave``
(autosave and crash recovery), ``project_marks`` (done marks), ``project_class_changes`` (class changes:
this window's and another writer's), ``project_watch`` (another writer's changes on disk).
"""
from __future__ import annotations

import bisect
import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from PySide6 import QtCore

from qgn_studio.discovery import resolved
from qgn_studio.document import describe_error
from qgn_studio.project_autosave import AUTOSAVE_DELAY_MS, AUTOSAVE_RETRY_MS, AutosaveMixin, check_same_classes
from qgn_studio.project_class_changes import ProjectClassChangesMixin
from qgn_studio.project_marks import DoneMarksMixin
from qgn_studio.project_watch import CHANGED_ELSEWHERE, WATCH_MS, DiskWatchMixin
from qgn_studio.scratch import LiveMarks

PROJECT_FILE = "project.json"
NOT_USED = (-1, -1, -1)  # a version no file has: save_annotation(over=) then keeps the saved file in conflicts/
# what a read-only project's warnings say to do (File ▸ New project… takes the unsaved edits along)
KEEP_EDITS = "To keep your edits, File ▸ New project… saves them into a new project in a folder you can write to"
# the status bar's words for the long jobs, followed by "done/total · about … left"
COUNTING = "Counting the annotations' classes"
REMOVING = "Removing images from the project"
# the owners of this controller's lines in the status bar's task progress (each task hides its own)
JOB = "a project job"  # (the job queue runs one at a time: class edits, removals)
OPENING = "opening a project"


def scratch_root(with_settings: bool) -> Path | None:
    """Where autosaves go without a project (see the module docstring); None: nowhere."""
    env = os.environ.get("QGN_STUDIO_SCRATCH")
    if env:
        return Path(env)
    if not with_settings:
        return None
    base = QtCore.QStandardPaths.writableLocation(QtCore.QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base) / "unsaved" if base else None


def is_project_folder(path) -> bool:
    return Path(path).is_dir() and os.path.lexists(Path(path) / PROJECT_FILE)  # a broken one (a link to nothing too) is opened, to say why


class ProjectController(AutosaveMixin, DoneMarksMixin, ProjectClassChangesMixin, DiskWatchMixin, QtCore.QObject):
    """See the module docstring. ``workspace``: the open documents, model, classes and project
    (``project`` is the workspace's); ``annotator``: the annotations and their class edits;
    ``jobs``: the JobRunner that writes; ``batch``: the one for long reads (statistics), so that
    autosaves never queue behind them; ``ask``: the dialogs (``qgn_studio.ask``); ``shell``: what
    only the window can do (``qgn_studio.shell.Shell``: open or close images, load a model)."""

    saved = QtCore.Signal(int)  # annotations saved by one save
    image_saved = QtCore.Signal(object, object)  # (document, the (H, W) label map written) per annotation saved
    autosaved = QtCore.Signal(int)  # annotations written by one autosave (none written: not emitted)
    images_removed = QtCore.Signal(object)  # [project keys] of the images this window took out of the project
    merged = QtCore.Signal(object)  # the project, once another writer's change merged into it is shown

    def __init__(self, workspace, annotator, jobs, batch, ask, shell, scratch: Path | None, parent=None):
        super().__init__(parent)
        self._keep_services(workspace, annotator, jobs, batch, ask, shell, scratch)
        self._make_autosave_state()
        self._make_watch_state()
        self._make_write_state()
        self._make_class_state(annotator)
        self._make_mark_state()
        self._connect(workspace, annotator)

    def _keep_services(self, workspace, annotator, jobs, batch, ask, shell, scratch: Path | None) -> None:
        """The services ``__init__`` takes, and the questions it asks through ``ask`` (each replaceable)."""
        self.workspace = workspace
        self.annotator = annotator
        self.jobs = jobs
        jobs.after_each = self._warm_index
        self.batch = batch
        self.shell = shell
        self.scratch_path = scratch
        self._scratches: dict = {}  # root -> the scratch projects (one per class set) this window uses
        self.live_marks = LiveMarks()  # this window's done marks in them, named while it lives (qgn_studio.scratch)
        self.ask_recover = ask.recover  # each replaceable (tests answer with a lambda)
        self.ask_folder = ask.folder
        self.ask_unsaved = ask.unsaved
        self.ask_keep_unsaved = ask.keep_unsaved
        self.ask_add_images = ask.add_images
        self.ask_remove = ask.remove
        self.ask_classes = ask.classes
        self._statistics = None

    def _make_autosave_state(self) -> None:
        """The autosave's timers (after an edit, after a refused write) and what its writes remember."""
        self.timer = QtCore.QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(AUTOSAVE_DELAY_MS)
        self.timer.timeout.connect(self.autosave_now)
        self.retry = QtCore.QTimer(self)
        self.retry.setSingleShot(True)
        self.retry.setInterval(AUTOSAVE_RETRY_MS)
        self.retry.timeout.connect(self.autosave_now)
        self._asking = self._retry_wanted = False  # a question of unsaved work is open (``_ask_unsaved``)
        self._autosave_wanted = False  # an autosave asked for while it was open: run after a "Cancel"
        self._closed = False  # the window closed (``closed``): no retry is started any more
        # the window is hidden, a write of ours still under way (``window_hidden``): its failure is said on stderr
        self._hidden = False
        self._spare_copy = None  # an autosave's copy its write is done with: the next one copies into it
        self._spare_wanted = None  # (shape, dtype) of a spare being made on the job thread (``_prepare_spare``)
        self._copies_out = 0  # autosave copies in writes not ended yet (each gives its copy back as the spare)
        self.autosave_failures: dict = {}  # image path -> why its last autosave failed (dropped once one is written)
        self.save_failures: dict = {}  # image path -> why its last save failed (dropped once one is saved)

    def _make_watch_state(self) -> None:
        """The watch of the project on disk (another writer's change) and what it told."""
        self.watch = QtCore.QTimer(self)
        self.watch.setInterval(WATCH_MS)
        self.watch.timeout.connect(self.check_project_on_disk)
        self._classes_written_by_edit = None  # the class set a pending class edit writes itself
        self._disk_problem = None  # the last "cannot be read" message shown (shown once)
        self._read_only = None  # why the open project cannot be written (told at opening), or None
        self._stand_in = None  # where the read-only project's autosaves go (qgn_studio.scratch.stand_in)
        self._merges_shown = 0
        self._unreadable_told: set = set()  # new images of another writer that could not be checked, warned of
        self._look_failed = None  # (why the watch's last look failed, the merge it was for), warned of once; or None
        self._looking = False  # a watch's look at another writer's change is on the job thread (``_look_at_merge``)

    def _make_write_state(self) -> None:
        """What the writes on the job thread remember of each image (versions, autosaves, stand-ins)."""
        # image path -> the saved annotation's version (qgn.project.annotation_version) its open map was
        # read from: read and written on the job thread only (jobs run in order), one dict per project
        self._versions: dict = {}
        # image paths whose saved annotation this window did not use (it does not fit the image, or
        # cannot be read): a save moves that file to conflicts/ (job thread only, as _versions)
        self._unused: set = set()
        # (project root, image path) -> the version of the autosave this window wrote or restored there
        # (Project.autosave_version): another window's autosave of the image is never overwritten,
        # removed or discarded by this one (job thread only, as _versions)
        self._autosaved: dict = {}
        # (project root, image path) -> (session uid, edit version, autosave version) of the map this window's
        # autosave last wrote there, in the order the writes ran: which map an autosave about to be written
        # over holds, valid while ``_autosaved`` still names that autosave (``_autosave_written``) (job thread)
        self._autosaved_maps: dict = {}
        # (project root, image path) -> the stand-in project holding this window's edits of it that the
        # project refused (``_autosave_beside``), dropped once that project has them; forgotten when the
        # project closes (its stand-in keeps them, offered when it is opened again) (job thread only)
        self._spares: dict = {}
        # (project root, image path) -> the edit version of the image that its last ``_autosave_beside`` kept in
        # the stand-in: those edits are kept, not lost with the window (``unkept_edits``) (written on the job thread)
        self._kept_beside: dict = {}
        self._told_autosave_conflict: set = set()
        self._told_undone_aside: set = set()  # files (str) kept for undone edits already named in a warning
        self._opening_started = None  # set once that read began on the job thread (queued until then)
        self._opening = None  # the threading.Event that cancels the project being read, if one is
        self._scratch_turn = -1  # the scratch project the watch looks at next (one a tick)
        self._keeping = False  # unsaved maps the project's new classes cannot hold are being kept (job thread)

    def _make_class_state(self, annotator) -> None:
        """The class changes: this window's under way, another writer's waiting, whose they are."""
        # another writer's class change seen while one of this window's was under way (its remap of the open
        # maps, or its rewrite of the project): followed once that one is in (``reload_changed_classes``)
        self._reload_waiting = False
        self._class_writes = 0  # this window's class edits of the project on the job thread
        self._reload_timer = QtCore.QTimer(self)
        self._reload_timer.setSingleShot(True)
        self._reload_timer.setInterval(50)
        self._reload_timer.timeout.connect(self._reload_when_free)
        # a class change of ours waits for the project's rewrite by the one before it: when the project refuses
        # that one (another writer's change landed first), the next is not made of classes the project never had
        annotator.class_edits_wait = lambda: self._keeping or self._reload_waiting or self._class_writes > 0
        annotator.following_other_change = lambda: self._keeping or self._reload_waiting
        # the class changes that wait belong to the project they were asked in (its root): another one opened,
        # or this one closed, drops them (said) - never made of another project's classes
        annotator.class_edit_owner = lambda: None if self.project is None else self.project.root
        self._class_root = None  # the root of the project open last (``_project_changed``)
        self._carry_class_history = False  # the next project set takes the window's class history (new_project)
        self.workspace.project_changed.connect(self._project_changed)

    def _make_mark_state(self) -> None:
        """The done marks' state (on their way, refused, made before any class set: ``qgn_studio.project_marks``),
        the autosaves' look-ups on the job thread (``_lookups``) and the failing writes' streaks (``_streaks``)."""
        # the scratch projects and stand-ins autosaves are finding on the job thread (``_Lookup``), until their
        # round's callbacks ran: a clean-up submitted meanwhile finds the autosaves there too (``_later_targets``)
        self._lookups: list = []
        self._marks_waiting: list = []  # done marks without a project made before any class set: kept once one is
        # (project root, image path) -> done: a mark the project refused (a full disk), tried again with the
        # autosave's retry and at every save, asked about before closing; the count of marks made of each
        # (only the last one's outcome counts) and of those on their way
        self._unrecorded: dict = {}
        self._marks_made: dict = {}
        self._marks_in_flight = 0
        self._marks_on_way: dict = {}  # (project root, image path) -> (its mark's number, done): the latest ones on their way
        self._streaks: set = set()  # retried writes failing since their banner was shown (``_write_failed``)

    def _connect(self, workspace, annotator) -> None:
        """Follow the annotator's edits, marks and class changes and the workspace's model and classes."""
        annotator.edited.connect(self._edited)
        annotator.done_changed.connect(self._done_changed)
        annotator.class_set_edited.connect(self._class_set_edited)
        annotator.class_edited.connect(self._class_edited)
        annotator.file_key = self._file_key
        annotator.saved_annotations = self.saved_annotations
        workspace.model_changed.connect(self.model_loaded)
        workspace.classes_changed.connect(self._keep_waiting_marks)

    # ------------------------------------------------------------------ where things go
    @property
    def project(self):
        """The open project (the workspace's), or None."""
        return self.workspace.project

    def _warm_index(self) -> None:
        """(Job thread, after each job.) The open project's path index built when a job's write replaced
        its images (a merge of another writer's change, Remove, an added image): the next look-up by path
        on the UI thread (a prediction's arrival, a mark shown) rebuilt it there, ~0.4 s at 100,000 images.
        Nothing when it is current (a comparison)."""
        project = self.workspace.project
        if project is not None:
            project.warm_index()

    def stand_in(self, create: bool = True):
        """Where the autosaves of the open read-only project go (``qgn_studio.scratch.stand_in``):
        found, else created on first use when ``create``; None when there is none or it is unusable."""
        from qgn_studio.scratch import stand_in

        if self._stand_in is None and self.scratch_path is not None and self.project is not None:
            try:
                self._stand_in = stand_in(self.scratch_path, self.project, create)
            except Exception as exc:  # autosave goes nowhere; say so
                self._warn(f"No autosave of the read-only project: {describe_error(exc)}")
        return self._stand_in

    def scratch(self, classes):
        """The scratch project of ``classes`` (``qgn_studio.scratch``: found, else created, on first
        use); None when there is none or it is unusable."""
        from qgn_studio.scratch import scratch_project

        if self.scratch_path is None or classes is None:
            return None
        found = next((p for p in self._scratches.values() if p.classes == classes), None)
        if found is None:
            try:
                found = scratch_project(self.scratch_path, classes)
            except Exception as exc:  # autosave goes nowhere for now; say so (autosave_now tries again)
                self._warn(f"No autosave without a project: {describe_error(exc)}; tried again every "
                           f"{AUTOSAVE_RETRY_MS // 1000} s (Save keeps the edits in a project)")
                return None
            self._use_scratch(found)
        return found

    def _use_scratch(self, project):
        """This window writes into or restores from the scratch ``project``: one object per folder;
        shared by the windows without a project, so watched too."""
        project = self._scratches.setdefault(str(project.root), project)
        if not self._closed:  # (a late autosave's callback after the close starts nothing)
            self.watch.start()
        return project

    @staticmethod
    def _image_of(project, path: Path):
        try:
            return project.image_for(path)
        except KeyError:
            return project.add_images([path], save=True)[0]

    @classmethod
    def _write_image(cls, project, path: Path, write):
        """(``write(image)``, added) for ``project``'s image at ``path`` (job thread); ``added``: the
        project no longer listed the image (another writer removed it, and its key may name another
        image by now) and it was added back. A write refused for a removed image merged that
        removal: the image is looked up (added) anew, once."""
        listed = cls._in_project(project, path)
        try:
            return write(cls._image_of(project, path)), not listed
        except KeyError:
            return write(cls._image_of(project, path)), True

    def sessions(self) -> list:
        return [d for d in self.workspace.docs if d.annotation is not None]

    def unsaved(self) -> list:
        return [d for d in self.sessions() if d.annotation.dirty]

    # ------------------------------------------------------------------ save
    def save(self) -> bool:
        """Ctrl+S: save every annotation with unsaved edits (creating a project first if none is
        open); False when the user cancelled the folder choice."""
        if self.project is None and not self.new_project():
            return False
        self.timer.stop()
        self._record_marks_again()
        dirty = self.unsaved()
        project = self.project
        round_failed: list = []  # the saves of this round that failed (their callbacks come before ``_saved``'s)
        one_ended, owner = self._save_round_progress(len(dirty))
        for doc in dirty:
            self._submit_save(project, doc, one_ended, round_failed)
        self.jobs.submit(lambda: len(dirty), lambda count: self._saved(count, len(round_failed), owner))
        return True

    def _save_round_progress(self, total: int):
        """A round of ``total`` saves: (``one_ended``, called as each is written or fails, and the owner of
        the round's line in the status bar). A round of several says n/N and its time left, on a line of its
        own (others may run); a round of one shows none (owner None)."""
        ended = [0]  # saves of this round written or failed
        owner = object() if total > 1 else None

        def one_ended() -> None:
            ended[0] += 1
            if total > 1 and ended[0] < total:
                self.workspace.show_progress(f"Saving annotations {ended[0]}/{total}", ended[0], total, owner=owner)

        if total > 1:
            self.workspace.show_progress(f"Saving annotations 0/{total}", 0, total, owner=owner)
        return one_ended, owner

    def _submit_save(self, project, doc, one_ended, round_failed: list) -> None:
        """Submit the save of ``doc``'s annotation into ``project`` to the job thread, its autosave superseded
        now; its end counts in the round (``one_ended``), and a failure joins ``round_failed``."""
        session = doc.annotation
        label, version, path = session.label.copy(), session.version, doc.path
        judge = session.judge_autosaves()  # which autosaves the saved map lacks edits of (the stand-in's)
        session.mark_autosaved(version)  # the save supersedes (and removes) the autosave

        def write(path=path, label=label, classes=self.workspace.classes, versions=self._versions,
                  autosaved=self._autosaved, unused=self._unused, judge=judge):
            check_same_classes(project, classes)
            # over: the version its map was read from (None: none was saved); another writer's
            # save since then goes to conflicts/ (qgn.project: two writers saving one image), and
            # so does a saved file this window did not use (it did not fit, or could not be read);
            # autosave: only this window's own autosave goes with the save
            key = (str(project.root), path)
            kept = path in unused
            # an autosave of ours holding edits the saved map lacks (undone before the save) is kept
            undone = judge.undone(self._autosave_written(key))
            saved, added = self._write_image(project, path, lambda image: project.save_annotation(
                image, label, over=NOT_USED if kept else versions.get(path), autosave=autosaved.get(key),
                undone=undone))
            versions[path] = saved.version
            autosaved.pop(key, None)
            unused.discard(path)
            spared = self._drop_spare(project, path, judge)  # kept in the stand-in's conflicts/: said
            note_image_file(project, path)
            return saved, added, kept, spared

        def done(result) -> None:
            one_ended()
            self._one_saved(doc, session, version, label, result)

        def failed(message) -> None:
            one_ended()
            session.mark_autosaved(-1)  # not saved: autosave it again
            round_failed.append(doc)
            self.save_failures[doc.path] = message
            self.timer.start()
            self._write_failed(f"Saving failed: {message}")

        self.jobs.submit(write, done, failed, "Saving")

    def _one_saved(self, doc, session, version: int, label, result) -> None:
        """``doc``'s annotation (``label`` at ``version``) is saved: marked so, shown, announced, and what the
        save kept aside (another writer's version, one this window could not use, undone edits) said."""
        saved, added, kept, spared = result
        if added:
            self._told_added_back(doc)
        session.mark_saved(version)
        self.save_failures.pop(doc.path, None)
        self.annotator.refresh_status()
        self.workspace.document_updated(doc)  # its row and the title say "saved"
        self.image_saved.emit(doc, label)
        self._say_undone_aside(doc, saved, "your annotation is saved")
        if spared is not None:
            self._say_undone_aside(doc, spared, "your annotation is saved")
        if saved.parked is not None and kept:
            self._warn(f"{doc.name}: your annotation is saved; the saved one it replaces, which this window "
                       f"could not use, is kept as {saved.parked}")
        elif saved.parked is not None:
            self._warn(f"{doc.name}: another window or command saved this image's annotation after this "
                       f"window read it; your version is saved, theirs is kept as {saved.parked}")

    def _saved(self, count: int, failed: int = 0, progress=None) -> None:
        """The round of saves of ``count`` annotations ended, ``failed`` of them not saved (each said):
        the status says what was saved - never "Saved" for a save that failed; ``saved`` counts those saved."""
        if progress is not None:  # (the round's own line: an export's, shown too, stays)
            self.workspace.hide_progress(progress)
        where = self.project.root if self.project is not None else "?"
        if failed:
            self.workspace.show_status(
                f"Not saved: {failed} of {count} annotation{'s' if count != 1 else ''} (said above) - "
                f"{'it stays' if failed == 1 else 'they stay'} unsaved here; Ctrl+S tries again", 0)
        else:
            self.workspace.show_status(f"Saved {count} annotation{'s' if count != 1 else ''} in {where}", 5000)
        self.saved.emit(count - failed)

    def save_and_wait(self, timeout_s: float = 60.0) -> bool:
        """Save, and block until it is written (closing the window)."""
        if not self.save():
            return False
        self.jobs.wait_idle(timeout_s)
        QtCore.QCoreApplication.processEvents()
        return not self.unsaved() and not self._unrecorded_marks()

    # ------------------------------------------------------------------ projects
    def new_project(self, folder: Path | None = None) -> bool:
        """Create a project with the open images, classes, model and done flags in ``folder``
        (asked when None); unsaved edits stay unsaved (Ctrl+S writes them). Without open
        annotations the classes are asked (``ask_classes``: the model's, a palette, a
        classes.txt or typed); with some, they keep the annotations' classes."""
        from qgn.project import Project

        annotator = self.annotator
        if annotator.classes is None:
            self._warn("A project needs a class set: load a model first")
            return False
        folder = folder or self.ask_folder("New project", True)
        if not folder:
            return False
        classes = annotator.classes
        if not self.sessions():
            classes = self.ask_classes(classes)
            if classes is None:
                return False
        info = self.workspace.model_info
        try:
            # the done marks in the same write: a failure leaves the folder as it was (``Project.create``),
            # never a project.json without them that a retry into the folder would be refused for
            project = Project.create(Path(folder), [d.path for d in self.workspace.docs], classes,
                                     None if info is None else str(info.path),
                                     done=[d.path for d in self.workspace.docs if d.done])
        except Exception as exc:
            self._warn(f"Cannot create a project in {folder}: {describe_error(exc)}")
            return False
        unlocked = project.writers_unprotected()
        if unlocked:
            self._warn(f"{unlocked}.")
        if classes is not annotator.classes:
            annotator.set_classes(classes)
        stand_in = self._stand_in
        # made of the open maps without a project: their class changes are its own; with a project open they
        # are of that project's files and stay with its history (kept aside: back when it is open again)
        self._carry_class_history = self.project is None
        self._set_project(project)
        for doc in self.unsaved():  # their edits move into the new project's autosaves at once,
            doc.annotation.mark_autosaved(-1)  # before the scratch project lets go of them
        self.autosave_now()
        self._drop_scratch_autosaves([stand_in] if stand_in is not None else [])
        self._unmark_scratch([d.path for d in self.workspace.docs if d.done])  # the project keeps them now
        return True

    def open_project(self, folder: Path | None = None) -> bool:
        """Open the project in ``folder`` (asked when None): its images, classes, done flags and
        model; then offer to restore its autosaves. A small project opens at once; a bigger one is
        read on the job thread (``project_open``), with its progress in the status bar, and nothing
        can be edited until it is open (``Workspace.opening``). Opening another project meanwhile
        cancels this one. False when nothing was or will be opened."""
        from qgn.project_file import PROJECT_FILE

        from qgn_studio.project_open import OPEN_IN_PLACE_BYTES, read_project

        folder = folder or self.ask_folder("Open a project folder", False)
        if not folder:
            return False
        self.cancel_opening(quiet=True)  # the project being read, if one is: this one replaces it
        folder = Path(folder)
        try:
            big = (folder / PROJECT_FILE).stat().st_size > OPEN_IN_PLACE_BYTES
        except OSError:
            big = False  # Project.open says what is wrong
        if big:
            self._read_in_background(folder)
            return True
        try:
            opening = read_project(folder, self.workspace.docs)
        except Exception as exc:
            self._warn(f"Cannot open the project: {describe_error(exc)}")
            return False
        return self._show_opened(opening)

    def _read_in_background(self, folder: Path) -> None:
        import threading

        from qgn_studio.project_open import read_project

        cancel, started = threading.Event(), threading.Event()
        self._opening, self._opening_started = cancel, started
        name = self._opening_name = folder.name or str(folder)
        self.watch.stop()  # the project open now is not followed while it is being replaced
        self.workspace.set_opening(True)
        # (each read its own line: one cancelled says "Cancelling…" until it stopped, beside the next one's)
        self.workspace.show_progress(f"Opening the project {name}: reading project.json", 0, 0, self.cancel_opening,
                                     owner=(OPENING, cancel), esc=True)  # (the window's Esc stops it: cancel_opening)
        docs = self.workspace.docs  # read there, never changed in place (Workspace replaces the list)
        def read(report):
            started.set()  # (from here a cancel waits for the read to stop; before, it never ran)
            return read_project(folder, docs, report, cancel.is_set)

        self.jobs.submit(read,
                         lambda opening: self._read(cancel, opening),
                         lambda message: self._read(cancel, None, message), "Opening a project",
                         progress=lambda *step: self._show_opening_progress(cancel, name, *step))

    def _show_opening_progress(self, cancel, name: str, done: int, total: int, phase: str) -> None:
        """A step of the read (``project_open.read_project``): the check of its files on disk, then
        the making of its documents, each half of the bar (and of the time left)."""
        if cancel is self._opening and not cancel.is_set():
            if phase == "checking":  # (most of a second at 20,000 images: it sat at "0 of 20,000 images")
                text, step = f"Opening the project {name}: checking its images on disk, {done:,} of {total:,}", done
            else:
                text, step = f"Opening the project {name}: {done:,} of {total:,} images", total + done
            self.workspace.show_progress(text, step, 2 * total, self.cancel_opening, owner=(OPENING, cancel), esc=True)

    def cancel_opening(self, quiet: bool = False) -> bool:
        """Stop reading the project being opened (Esc, Cancel, another open, closing the window):
        nothing changes, the project open before stays open, and the window can be used at once;
        the read's line says "Cancelling opening the project …" until its thread stopped (``_read``:
        the line hid at once while the read carried on). True when one was being read."""
        cancel = self._opening
        if cancel is None:
            return False
        cancel.set()
        if self._opening_started.is_set():  # its read runs: "Cancelling…" until it stopped
            self.workspace.cancelling((OPENING, cancel), f"opening the project {self._opening_name}")
        else:  # still queued behind another job: it will not read (read_project stops at once), nothing to wait for
            self.workspace.hide_progress((OPENING, cancel))
        self._end_opening()
        if not quiet:
            self.workspace.show_status("Opening the project was cancelled; what was open stays open", 5000)
        return True

    def _end_opening(self) -> None:
        self._opening = None
        self.workspace.set_opening(False)
        if self.project is not None and not self._closed:
            self.watch.start()

    def _read(self, cancel, opening, message: str = "") -> None:
        """The job thread read a project (or failed to, or stopped): show it, unless it was cancelled
        meanwhile (then nothing of it is applied)."""
        self.workspace.hide_progress((OPENING, cancel))  # its line, "Cancelling…" if it was cancelled
        if cancel is not self._opening:
            return  # cancelled, or another open took its place
        self._end_opening()
        if opening is None:
            self._warn(f"Cannot open the project: {message}")
            return
        self._show_opened(opening)

    def _show_opened(self, opening) -> bool:
        """Swap the project read (``project_open.ProjectOpening``) in, at once: its classes, images,
        done flags and model, and offer its autosaves."""
        project = opening.project
        if not self.confirm_discard("opening the project") or self._ending():
            return False  # (a SIGTERM handled while it waited or asked closed the window: nothing opens into it)
        annotator = self.annotator
        annotator.set_mode(False)
        annotator.set_classes(project.classes)
        self._set_project(project)
        self._read_only = opening.read_only
        restore = self._ask_recovery(project, opening.recoverable)  # before the images show: no saved map is read for them
        stand_in = self.stand_in(create=False)  # a read-only project's edits, or what it refused
        restore_stand_in = self._ask_recovery(stand_in)
        docs, dropped, flipped = opening.documents_for(self.workspace.docs)
        self.shell.show_project_images(opening, docs, dropped)
        for doc in flipped:  # documents made for the project have its flags; one kept open may differ
            doc.done = not doc.done
            self.workspace.document_updated(doc)  # a row per change, not per image (thousands)
        self._load_project_model(project)
        said = []  # one message (a second one under the same topic would replace the first)
        if opening.read_only:
            said.append(f"The project {project.root} is open read-only: {opening.read_only}. Nothing can be saved "
                        f"or marked done there; {self._read_only_autosaves()}. {KEEP_EDITS}")
        if opening.blocked:  # each image would show no annotation, unsaid until a save failed (read-only too)
            said.append(f"The project {project.root} opened without its files: {'; '.join(opening.blocked)}.")
        if opening.kept:  # the add that was to say so was killed; another program may have finished it
            said.append(f"{'; '.join(opening.kept)}.")
        if opening.unlocked and not opening.read_only:  # (read-only: this window writes nothing there)
            said.append(f"{opening.unlocked}.")
        if opening.hidden:  # offered by no open until a writer can put them back
            said.append(f"{opening.hidden}.")
        if said:
            self._warn(" ".join(said))
        if restore:
            self._restore(project, restore)
        if restore_stand_in:
            self._restore(stand_in, restore_stand_in)
        self.document_shown(self.workspace.current)
        return True

    def _read_only_autosaves(self) -> str:
        """Where the open read-only project's edits are autosaved, in words."""
        from qgn_studio.scratch import stand_in_folder

        if self.scratch_path is None:
            return "your edits stay in this window only"
        return (f"your edits are autosaved in {stand_in_folder(self.scratch_path, self.project.root)} "
                "and offered back when you open the project again")

    def _load_project_model(self, project) -> None:
        """The project's model (a file, or a bundled model's name), not the last one used; a
        project without one (e.g. after an import) takes the model in use, and says so. A project
        whose model is missing (a drive not mounted) keeps naming it: opening writes nothing, and
        only a model the user opens (Ctrl+M) replaces it."""
        from qgn.resources import bundled_model_path

        workspace = self.workspace
        self._adopt_model = False
        if project.model:
            model = Path(project.model) if Path(project.model).is_file() else bundled_model_path(project.model)
            if model is None:
                self._warn(f"The project's model {project.model} is missing; the model in use stays "
                           "(open one with Ctrl+M: the project then remembers it)")
            elif workspace.model_info is None or resolved(workspace.model_info.path) != resolved(model):
                self.shell.load_model(model)
            return
        self._adopt_model = True  # the next model that loads (or the one loaded) becomes the project's
        if workspace.model_info is not None:
            self.model_loaded(workspace.model_info)

    def model_loaded(self, info) -> None:
        """A model loaded: a project that names none (e.g. after an import) remembers it."""
        project = self.project
        if project is None or not getattr(self, "_adopt_model", False):
            return
        self._adopt_model = False
        self.set_model(Path(info.path))
        self.workspace.show_status(f"The project {project.root.name} had no model: it now uses "
                                            f"{info.name} ({info.path})", 10000)

    def _set_project(self, project) -> None:
        self._streaks.clear()  # another project's failures: its first failure here is news (a banner)
        self._versions = {}
        self._unused = set()
        self._read_only = None
        self._stand_in = None
        self._disk_problem = None
        self._merges_shown = project.merges
        self._unreadable_told = set()
        self._look_failed = None  # a look of this project that fails is news
        if not self._closed:
            self.watch.start()
        self.annotator.project_classes = True
        settings = self.workspace.settings
        if settings is not None:  # cleared by a normal close: still set at start means a crash
            settings.setValue("project/open", str(project.root))
            settings.setValue("project/last", str(project.root))  # kept by a normal quit: reopened at start
            self.workspace.sync_settings()
        self.workspace.remember_recent(project.root)  # File ▸ Open recent reopens it after a normal quit
        self.workspace.set_project(project)

    def startup_recovery(self) -> None:
        """At start: offer the autosaves of the scratch project, and reopen the project that was
        open when the app last stopped without closing (its autosaves are then offered)."""
        settings = self.workspace.settings
        last = None if settings is None else settings.value("project/open", "")
        if last and self.project is None and is_project_folder(last):
            from qgn.project import Project

            try:
                project = Project.open(Path(last))
                crashed = bool(project.recoverable()) or self._stand_in_waiting(project)
            except Exception:  # an unreadable project is reported when opened by hand
                crashed = False
            if crashed:
                self.open_project(Path(last))
                return
        if self.project is None:
            self.offer_recovery()

    def _stand_in_waiting(self, project) -> bool:
        """Whether the stand-in of ``project`` (read-only when last open) holds autosaves to offer."""
        from qgn_studio.scratch import stand_in

        if self.scratch_path is None:
            return False
        found = stand_in(self.scratch_path, project, create=False)
        return found is not None and bool(found.recoverable())

    def closed(self) -> None:
        """The window closed normally: no project needs reopening at the next start."""
        self.stop_writing()
        self.watch.stop()
        self.live_marks.release()
        if self.workspace.settings is not None and not self.unsaved():  # else kept (a close that keeps
            # the autosaves of edits it could not save: _close_keeping_autosaves): reopened at the next start
            self.workspace.settings.remove("project/open")
            self.workspace.sync_settings()

    def _ending(self) -> bool:
        """The window closed or is closing without questions (SIGTERM: ``MainWindow.ending``)."""
        return self._closed or bool(getattr(self.shell, "ending", False))

    def stop_writing(self) -> None:
        """The window closes: no autosave or retry fires any more, for good (a refused write's
        callback, run after this, starts none)."""
        self._closed = True
        self.timer.stop()
        self.retry.stop()

    def paths_at_start(self, paths: list) -> list:
        """What to open at start for ``paths``: when nothing but the bundled samples was asked for
        (the app's default), the project of the last session instead, if it is still there."""
        from qgn.resources import samples_dir

        from qgn_studio.recent import is_inside

        settings = self.workspace.settings
        if settings is None or not paths or not all(is_inside(p, samples_dir()) for p in paths):
            return paths
        last = settings.value("project/last", "")
        return [last] if last and is_project_folder(last) else paths

    def open_if_project(self, paths: list) -> bool:
        """Open ``paths[0]`` as a project when it is a project folder (command line, drop). True when
        it is one, opened or not: a project that cannot be opened (its error is shown) or that the
        user chose not to open is not then listed as a folder of images."""
        if len(paths) == 1 and is_project_folder(paths[0]):
            self.open_project(Path(paths[0]))
            return True
        return False

    def confirm_discard(self, what: str, docs=None, later: dict | None = None) -> bool:
        """Before closing images (``docs``; all when None) with unsaved edits — or, without a
        project, marked done (only a project keeps the marks) — ask to save them (a new project
        without one), discard them (their autosaves go too) or cancel. True when it may go ahead.
        ``later`` (a dict; with a project): a "Discard" autosaves the edits but discards nothing yet -
        ``later["discard"]`` is the job-thread step that discards their autosaves (None: none), for
        the caller's job to run (``remove_images``), and ``later["marks"]`` the refused marks it set
        aside (``_forget_marks``), to be taken back when that job fails; the sessions stay dirty."""
        docs = self.workspace.docs if docs is None else docs
        dirty = [d for d in docs if d.annotation is not None and d.annotation.dirty]
        if self._marks_in_flight:  # a mark on its way may yet be refused: know before answering
            self._wait_for_marks()
            if self._ending():  # the window closed meanwhile (a SIGTERM handled in the wait): nothing goes ahead
                return False
        self._count_marks_on_way()
        unrecorded = self._unrecorded_marks()
        marked = [d for d in docs if d not in dirty and (d.path in unrecorded if self.project is not None
                                                          else getattr(d, "done", False))]
        if not dirty and not marked:
            return True
        choice = self._ask_unsaved(len(dirty) + len(marked), what)
        if choice == "save":
            if self.save_and_wait():
                return True
            return what == "closing" and self.project is not None and self._close_keeping_autosaves()
        if choice == "discard":
            marks = self._forget_marks(docs)  # before the autosave below, which would write them again
            if self._marks_in_flight:  # a try that began before the question: decided before going on
                self._wait_for_marks()
            self.autosave_now()  # the edits since the last autosave too: discarded/ keeps what was on screen
            discard = self.discard_autosaves(dirty, now=later is None)
            if later is not None and self.project is not None:  # the caller discards once it may
                later.update(discard=discard, marks=marks)
                return True
            for doc in dirty:
                doc.annotation.mark_saved(doc.annotation.version)  # accepted as lost: ask no more
            # every mark of these images goes, an edited image's too (it is in dirty, not marked)
            self._unmark_scratch([d.path for d in docs if self.project is None and getattr(d, "done", False)])
            return True
        return False

    def _close_keeping_autosaves(self) -> bool:
        """The close's Save failed (the project's disk full, its lock held): the edits are autosaved once
        more (into the project's stand-in in the scratch folder when the project refuses them) and, when
        every one is in an autosave, the user may close with them kept there (``ask_keep_unsaved``, which
        says where): the next start reopens the project and offers them. Before, a full disk left only
        Discard or staying open. Edits in no autosave (the scratch disk full too), or a done mark the
        project refused (kept in memory only - no autosave holds it): the window stays, as before."""
        if self._unrecorded_marks():  # the Save failed on a refused mark: closing would lose it
            return False
        self.autosave_now()
        self.jobs.wait_idle()
        QtCore.QCoreApplication.processEvents()
        dirty = self.unsaved()
        if not dirty:
            return True
        if self.unkept_edits() or self._ending():
            return False  # in memory only: the window stays, the banner says why
        project, root = self.project, str(self.project.root)
        own = self._stand_in.root if self._read_only and self._stand_in is not None else project.root / project.autosave_dir
        places = dict.fromkeys(str(self._spares[(root, d.path)].root) if (root, d.path) in self._spares else str(own)
                               for d in dirty)
        why = "; ".join(dict.fromkeys(w for w in (self.save_failures.get(d.path) for d in dirty) if w))
        return bool(self.ask_keep_unsaved(len(dirty), why or "the save failed", " and ".join(places)))

    def _ask_unsaved(self, count: int, what: str):
        """``ask_unsaved``, with no retry or autosave firing while the question is open (its dialog runs
        the event loop): "Discard" would find the refused marks written by a retry meanwhile. One due
        then, or asked for by a refusal meanwhile, runs after a "Cancel"."""
        due = self.retry.isActive()
        autosave_due = self.timer.isActive()
        self.retry.stop()
        self.timer.stop()
        self._asking, self._retry_wanted, self._autosave_wanted = True, False, False
        try:
            choice = self.ask_unsaved(count, what)
        finally:
            self._asking = False
        if choice != "discard":  # a Save may not happen (folder choice cancelled, project not created)
            if due or self._retry_wanted:
                self._retry_later()
            if autosave_due or self._autosave_wanted:
                self.timer.start()
        return choice

    def _deferred(self) -> bool:
        """True (and the autosave wanted after a "Cancel") while a question of unsaved work is open;
        not once the window ends (SIGTERM: everything is autosaved, nothing asked)."""
        if self._asking and not self._ending():
            self._autosave_wanted = True
            return True
        return False

    # ------------------------------------------------------------------ loading saved annotations
    def document_shown(self, doc, over_fresh: bool = False) -> None:
        """Read ``doc``'s saved annotation from the project (off the UI thread) the first time;
        ``over_fresh``: it replaces a new annotation started meanwhile and not edited yet."""
        project = self.project
        if project is None or doc is None or doc.annotation is not None:
            return
        image = self._saved_annotation_to_read(project, doc)
        if image is None:
            return
        annotator = self.annotator
        annotator.loading.add(doc.path)
        class_caused: list[bool] = []  # the read failed for the classes (the job's, before failed)

        def failed(message: str, unused=self._unused) -> None:
            self._saved_annotation_unreadable(doc, message, bool(class_caused), unused)

        prepare = annotator.preparer(doc)  # its session's parts, made on the job thread too
        classes = annotator.classes  # the project's rewrite by a class change of ours comes after its remap

        def load(versions=self._versions, unused=self._unused):
            versions[doc.path] = project.annotation_version(image)  # first: a save in between is then a conflict
            unused.discard(doc.path)  # read again (after a class edit that fixed it): used, unless it misfits
            from qgn.quadtree.label_io import ClassMismatchError

            try:
                label = project.load_annotation(image)
            except ClassMismatchError:
                class_caused.append(True)
                raise
            return label, project.image_file_changed(image), prepare(label)

        def loaded(result) -> None:
            self._saved_annotation_read(doc, over_fresh, classes, result)

        self.jobs.submit(load, loaded, failed, "Reading an annotation")

    def _saved_annotation_to_read(self, project, doc):
        """``doc``'s image in ``project`` when it has a saved annotation file not being read already, else None."""
        if doc.path in self.annotator.loading:
            return None
        try:
            image = project.image_for(doc.path)
        except KeyError:
            return None
        if not project.annotation_path(image).is_file():
            return None
        return image

    def _saved_annotation_unreadable(self, doc, message: str, class_caused: bool, unused: set) -> None:
        """``doc``'s saved annotation could not be read: not started over silently (a save keeps the file);
        class advice only when the classes are the cause (``class_caused``)."""
        annotator = self.annotator
        annotator.loading.discard(doc.path)
        what = "saved annotation" if class_caused else "damaged saved annotation"
        annotator.mark_unreadable(doc.path, message, what)
        self.jobs.submit(lambda: unused.add(doc.path))
        self._warn(f"{doc.name}: the saved annotation cannot be read: {message}. It is kept as it is; "
                   "editing starts only when you choose a start in the Annotate panel")

    def _saved_annotation_read(self, doc, over_fresh: bool, classes, result) -> None:
        """``doc``'s saved annotation was read in ``classes`` (``result``: label, image file changed, prepared
        parts): adopted, or read again once a class change of ours has rewritten the project."""
        label, changed, prepared = result
        annotator = self.annotator
        if annotator.class_change_pending() or annotator.classes is not classes:
            # read in the classes before a class change of ours (the project is rewritten after the open
            # maps are remapped) and not in those now: read again once the project is rewritten
            annotator.loading.discard(doc.path)
            annotator.after_class_change(lambda: self.document_shown(doc, over_fresh))
            return
        fresh = doc.annotation
        if over_fresh and label is not None and fresh is not None and not fresh.dirty:
            self.annotator.forget([doc])  # started from the prediction while the file was read
        self._adopt(doc, label, "saved", False, prepared=prepared)
        if changed and label is not None:
            self._warn(f"{doc.name}: the image file is not the one its annotation was saved for ({changed}): "
                       "was it swapped or replaced? The annotation shown may be another image's; it is kept as "
                       "it is")

    def document_loaded(self, doc) -> None:
        """``doc``'s image was read. A map read from disk before its size was known (an autosave
        restored at start, before the images load) that does not fit it is not used (``_misfit``)."""
        session = doc.annotation
        if session is not None and doc.size is not None and tuple(session.shape) != tuple(doc.size):
            self._misfit(doc, session.shape, session.origin)

    def _misfit(self, doc, shape, source: str) -> None:
        """A map of ``shape`` read from disk does not fit ``doc``'s image (the image changed on disk):
        it is not used (nor is the image started over silently), its file stays as it is — offered
        again at the next start, and moved to ``conflicts/`` rather than overwritten by new edits
        of the image — and the user is told."""
        (h, w), (height, width) = shape, doc.size
        message = f"it is {w}×{h}, the image {width}×{height} (did the image change on disk?)"
        if doc.annotation is not None and tuple(doc.annotation.shape) == tuple(shape):
            self.annotator.forget([doc])
            self.annotator.mark_unreadable(
                doc.path, message, "misfit autosave" if source == "recovered" else "misfit saved annotation")
        autosaved = self._autosaved  # job thread only: no longer this window's autosave to overwrite
        self.jobs.submit(lambda: [autosaved.pop(key) for key in list(autosaved) if key[1] == doc.path])
        if source != "recovered":  # a saved map: a save of the image started over keeps it in conflicts/
            unused = self._unused
            self.jobs.submit(lambda: unused.add(doc.path))
        self.workspace.document_updated(doc)
        what = "recovered autosave" if source == "recovered" else "saved annotation"
        self._warn(f"{doc.name}: the {what} cannot be used: {message}. It is kept as it is")

    def _adopt(self, doc, label, source: str, dirty: bool, classes=None, prepared=None) -> None:
        """Install ``label`` (read from disk; of ``classes``, default the annotations') as ``doc``'s map;
        ``prepared``: what ``Annotator.preparer`` made of it on the job thread."""
        annotator = self.annotator
        annotator.loading.discard(doc.path)
        if label is None:
            return
        session = doc.annotation
        size = doc.size if doc.size is not None else (session.shape if session is not None else None)
        if size is not None and tuple(label.shape) != tuple(size):
            self._misfit(doc, label.shape, source)
        elif session is not None and dirty and not session.dirty:
            # a recovered autosave over the saved map just read: its parts made on the job thread
            usable = prepared is not None and prepared.label is label
            session.replace_label(label, (prepared.annotation, prepared.pyramid) if usable else None)
            session.origin = source
            session.mark_unsaved()
            annotator.refresh_status()
        else:
            annotator.adopt(doc, label, source, dirty, classes, prepared=prepared)
            self.workspace.document_updated(doc)
            if dirty:
                self.timer.start()

    def saved_annotations(self) -> Iterator:
        """(ProjectImage, loader) of every saved annotation of the open project's images as they
        are now, looked for when it is first iterated (``Project.annotated``: a listing of the
        annotation folder, ~20 ms for 20,000 images and more on a slow disk), so iterate it on a job thread."""
        project = self.project
        if project is None:
            return iter(())
        images = list(project.images)

        def found():
            for im in project.annotated(images):
                yield im, lambda im=im: project.load_annotation(im)
        return found()

    def _file_key(self, doc) -> str | None:
        """The key of ``doc``'s annotation files in the open project (else the scratch project of its
        class set that this window uses), or None."""
        project = self.project
        if project is None and doc.annotation is not None:
            project = next((p for p in self._scratches.values() if p.classes == doc.annotation.classes), None)
        try:
            return None if project is None else project.image_for(doc.path).key
        except KeyError:
            return None

    def model_chosen(self, path: Path) -> None:
        """The model at ``path`` that the user chose has loaded: the open project remembers it (when it
        names another). Never called for a model that failed to load."""
        project = self.project
        if project is not None and not same_model(project.model, path):
            self.set_model(path)

    def set_model(self, path: Path) -> None:
        """The model in use changed (e.g. a kept fine-tune): the project remembers it."""
        project = self.project
        if project is None:
            return

        self.jobs.submit(lambda: project.set_model(str(path)),
                         failed=lambda message: self._write_failed(f"Cannot record the model: {message}"))

    # ------------------------------------------------------------------ another writer
    def _write_failed(self, text: str, streak: str | None = None) -> None:
        """A write into the project failed: say so; when another writer changed the project,
        reload it at once; a read-only project's failures say where the edits can be kept.
        ``streak``: a write tried again every ``AUTOSAVE_RETRY_MS``; its banner is shown once until
        such a write succeeds, the repeats go to the status line."""
        if self._read_only and self.project is not None:
            text = f"{text}. The project is read-only ({self._read_only}): {KEEP_EDITS}"
        if streak is not None and streak in self._streaks:
            self.workspace.show_status(text, 10000)
        else:
            if streak is not None:
                self._streaks.add(streak)
            self._warn(text)
        if CHANGED_ELSEWHERE in text:
            QtCore.QTimer.singleShot(0, self.check_project_on_disk)

    # ------------------------------------------------------------------ the project's images
    def images_to_open(self, images: list) -> str:
        """Images are being opened while a project is open: "add" them to the project (saved in
        project.json at once), "close" the project first, or "cancel". Images the project
        already has need no question."""
        project = self.project
        if project is None:
            return "close"
        new = [p for p in images if not self._in_project(project, p)]
        if not new:
            return "add"
        return self.ask_add_images(len(new), project.root.name)

    @staticmethod
    def _in_project(project, path) -> bool:
        try:
            project.image_for(path)
        except KeyError:
            return False
        return True

    def add_images(self, paths: list) -> None:
        """Add ``paths`` to the open project (project.json written on the job thread)."""
        project = self.project
        if project is None or not paths:
            return
        found: list = []  # annotations removed with these image files (``Project.add_images``)

        def added(_images) -> None:
            back = [f for f in found if f.brought_back]
            said = [f"Brought back the annotation of {f.image_path.name} removed on {f.removed_on}" for f in back[:2]]
            said += [f"The annotation of {f.image_path.name} removed on {f.removed_on} stays in "
                     f"{project.root / 'removed'}: {f.why}" for f in found if not f.brought_back][:1]
            self.workspace.show_status("; ".join(said) or (f"Added {len(paths)} image{'s' if len(paths) != 1 else ''} "
                                                         f"to {project.root.name}"), 10000 if said else 5000)
            self._show_brought_back(project, [f.image_path for f in back])

        self.jobs.submit(lambda: project.add_images(paths, save=True, removed=found), added,
                         lambda message: self._warn(f"Cannot add the images to the project: {message}"),
                         "Adding images to the project")

    def _show_brought_back(self, project, paths: list) -> None:
        """Open images whose annotation was just brought back from ``removed/`` show it (read off the
        UI thread; over a new annotation not edited yet), unless they have unsaved edits (a later
        save keeps the brought-back file in ``conflicts/``)."""
        wanted = set(paths)
        annotator = self.annotator
        docs = [doc for doc in self.workspace.docs if doc.path in wanted and doc.path not in annotator.loading
                and (doc.annotation is None or not doc.annotation.dirty)]
        if project is not self.project or not docs:
            return
        annotator.forget([doc for doc in docs if doc.annotation is not None])
        for doc in docs:
            self.document_shown(doc, over_fresh=True)
            self.workspace.document_updated(doc)

    def close_project(self) -> bool:
        """File ▸ Close project: unsaved edits are asked about, then the project's images close
        and the app is as at start without one (nothing on disk changes)."""
        if self.project is None:
            return True
        if not self.confirm_discard("closing the project"):
            return False
        self.autosave_now()
        self.jobs.wait_idle()
        self.annotator.set_mode(False)
        self.shell.close_documents(list(self.workspace.docs))
        root = str(self.project.root)
        # its stand-in keeps the edits it refused (offered when it is opened again): not dropped by
        # a save of the same image after it is reopened here with those edits discarded or not restored
        self.jobs.submit(lambda spares=self._spares: [self._forget_spare(*key) for key in list(spares) if key[0] == root])
        self._statistics = None
        self.annotator.project_classes = False
        settings = self.workspace.settings
        if settings is not None:
            settings.remove("project/open")
            settings.remove("project/last")
        self._read_only = self._stand_in = None
        self._streaks.clear()
        self.workspace.set_project(None)
        return True

    def remove_images(self, docs: list) -> bool:
        """Take ``docs`` out of the list and out of the project (asked first; their saved
        annotations move to the project's ``removed/`` folder, nothing is deleted). With a project
        they leave the list at once, but their edits, autosaves and refused marks (a "Discard") are
        forgotten only once project.json no longer has them: an image the project still has
        (another writer holding its lock past the timeout, a read-only folder) comes back as it was."""
        if not docs:
            return False
        names = [d.name for d in docs]
        project = self.project
        if not self.ask_remove(names, None if project is None else project.root.name):
            return False
        later: dict = {}
        if not self.confirm_discard("removing the image" + ("s" if len(docs) != 1 else ""), docs,
                                    later=None if project is None else later):
            return False
        if project is None:
            self.discard_autosaves([d for d in docs if d.annotation is not None and d.annotation.dirty])
            self.shell.close_documents(docs)
            self._statistics = None
            return True
        images, keys = self._listed_images(project, docs)
        rows = {id(d): i for i, d in enumerate(self.workspace.docs)}
        marks = later.get("marks", {})
        notes: list[str] = []  # what did not block a removal, said with it
        self.jobs.submit(partial(self._remove_listed, project, images, later.get("discard"), notes),
                         self._ending_progress(partial(self._images_removed, project, docs, images, notes)),
                         self._ending_progress(partial(self._images_not_removed, project, docs, keys, rows, marks)),
                         REMOVING, self._job_progress(REMOVING))
        self.shell.close_documents(docs, forget=False)  # until the project no longer has them
        self._statistics = None
        return True

    @staticmethod
    def _listed_images(project, docs: list) -> tuple:
        """The images of ``project`` that ``docs`` show, and {id(doc): image key} of those it lists."""
        images, keys = [], {}
        for doc in docs:
            try:
                images.append(project.image_for(doc.path))
            except KeyError:
                continue
            keys[id(doc)] = images[-1].key
        return images, keys

    @staticmethod
    def _remove_listed(project, images: list, discard, notes: list, report) -> list:
        """Remove ``images`` from ``project`` after running ``discard`` (job thread); the files moved.
        ``notes`` gathers what did not block a removal (``Project.remove_image``'s notes), said with it."""
        if discard is not None:  # first, or the removal keeps the discarded autosaves in removed/ (and
            discard()  # adding the image again offers them back); the lock held: neither happens
        moved = []
        report(0, len(images))  # each removal writes project.json: 300 images take seconds
        for i, image in enumerate(images):
            try:
                moved += project.remove_image(image, notes=notes)
            except KeyError:  # another window or command removed it first: out of the project, as asked
                pass
            report(i + 1, len(images))
        return moved

    def _images_removed(self, project, docs: list, images: list, notes: list, moved: list) -> None:
        """``remove_images`` wrote (UI thread): what the user discarded goes now, and it is said."""
        self.annotator.forget(docs)
        self.images_removed.emit([image.key for image in images])
        kept = f"; their annotations are kept in {project.root / 'removed'}" if moved else ""
        said = f" ({'; '.join(notes[:2])}{' …' if len(notes) > 2 else ''})" if notes else ""
        self.workspace.show_status(f"Removed {len(images)} image{'s' if len(images) != 1 else ''} "
                                   f"from {project.root.name}{kept}{said}", 15000 if notes else 8000)

    def _images_not_removed(self, project, docs: list, keys: dict, rows: dict, marks: dict, message: str) -> None:
        """``remove_images`` was refused (UI thread): a writer holding the lock past its timeout, a
        read-only folder. The project keeps them (each one removed before the failure excepted), and
        so does the list - their edits (autosaved, not discarded), undo logs and refused marks as they
        were. ``rows``: {id(doc): its row before}; ``marks``: the refused marks the discard took."""
        mine = project is self.project
        kept = [doc for doc in docs if mine and self._in_project(project, doc.path)]
        gone = [doc for doc in docs if doc not in kept]
        self.annotator.forget(gone)  # their autosaves were discarded before the removal
        if gone:
            self.images_removed.emit([keys[id(doc)] for doc in gone if id(doc) in keys])
        self._pend_marks({key: done for key, done in marks.items() if any(d.path == key[1] for d in kept)})
        # each at its row less the removed ones above it (out of the list for good)
        above = sorted(rows.get(id(d), len(self.workspace.docs)) for d in gone)
        back = self.shell.list_again(kept, [row - bisect.bisect_left(above, row) for row in
                                            (rows.get(id(d), len(self.workspace.docs)) for d in kept)])
        self.annotator.forget([d for d in kept if d not in back])  # opened again meanwhile: that document is listed
        kept = back
        edited = [d for d in kept if d.annotation is not None and d.annotation.dirty]
        for doc in edited:  # autosaved again: a discard that ran before the removal failed moved it
            doc.annotation.mark_autosaved(-1)  # to discarded/ (the one it left in autosave/ is written over)
        if edited:
            self.timer.start()
        self._say_not_removed(project, kept, gone, message)

    def _say_not_removed(self, project, kept: list, gone: list, message: str) -> None:
        """Warn that ``kept`` stay in ``project`` (and, when some went before the failure, that ``gone`` went)."""
        def listing(some: list) -> str:
            return ", ".join(d.name for d in some[:3]) + (", …" if len(some) > 3 else "")

        names = listing(kept)
        again = (f"; {names} {'stays' if len(kept) == 1 else 'stay'} in the project and "
                 f"{'is' if len(kept) == 1 else 'are'} listed again as before (edits and marks not "
                 f"discarded): remove {'it' if len(kept) == 1 else 'them'} once it is done") if kept else ""
        if gone and kept:  # some removed before the failure: say which went and which stay
            self._warn(f"Removed {listing(gone)} from {project.root.name}; cannot remove {names}: "
                       f"{message}{again}")
        else:
            self._warn(f"Cannot remove the images: {message}{again}")

    def _job_progress(self, what: str, also=None, owner: str = JOB):
        """A job's ``progress(done, total)`` (``JobRunner.submit``, on the UI thread): ``what
        done/total`` and the time left in the status bar until ``done == total``; ``also(done,
        total)`` first, when given (a window that shows it too)."""
        def show(done: int, total: int) -> None:
            if also is not None:
                also(done, total)
            if done >= total:
                self.workspace.hide_progress(owner)
            else:
                self.workspace.show_progress(f"{what} {done}/{total}", done, total, owner=owner)
        return show

    def _ending_progress(self, callback, owner: str = JOB):
        """``callback`` (a job's done or failed), which first hides the job's progress (a job that
        fails stops before ``done == total``)."""
        def end(value):
            self.workspace.hide_progress(owner)
            if callback is not None:
                callback(value)
        return end

    def statistics(self, done, failed=None, progress=None) -> None:
        """Per-image class pixel counts of the annotations (the open maps as they are, the saved
        files of the others; on the batch thread), then ``done(ProjectStatistics)``; ``progress(done,
        total)`` as the images are counted (on the UI thread), when given."""
        from qgn.project_stats import count_classes

        workspace = self.workspace
        classes = workspace.classes
        if classes is None:
            (failed or self._warn)("No class set yet: load a model or open a project")
            return
        maps = {doc.path: doc.annotation.label.copy() for doc in workspace.docs if doc.annotation is not None
                and doc.annotation.is_annotation}
        saved = ((path, load) for path, load in ((Path(im.path), load) for im, load in self.saved_annotations())
                 if path not in maps)  # looked for as count_classes reads them, on the batch thread
        listed = [(d.path, bool(d.done)) for d in workspace.docs]
        self.batch.submit(lambda report: count_classes(classes, listed, maps, saved, report),
                          self._ending_progress(done, COUNTING),
                          self._ending_progress(failed or (lambda message: self._warn(
                              f"Cannot count the annotations: {message}")), COUNTING), COUNTING,
                          self._job_progress(COUNTING, progress, COUNTING))

    # ------------------------------------------------------------------ closing
    def close_check(self) -> bool:
        """True when the window may close (edits saved, discarded, or none)."""
        self.autosave_now()
        ok = self.confirm_discard("closing")
        # a cancelled close does not wait for the file thread (a slow disk) after its question; nor does one
        # while a class change of ours is under way or waits: the close's finish_class_work waits for both,
        # in slices (the window's own _finish_class_work), not in one block of the UI thread
        if ok and not self.class_work_left():
            self.jobs.wait_idle()
        return ok

    def _warn(self, text: str) -> None:
        self.workspace.warn(text, "project", 10000)


def same_model(stored: str | None, path) -> bool:
    """Whether a project's ``model`` entry (a file, or a bundled model's name) is ``path``."""
    from qgn.resources import bundled_model_path

    if not stored:
        return False
    candidate = Path(stored) if Path(stored).is_file() else bundled_model_path(stored)
    return candidate is not None and resolved(candidate) == resolved(path)


def note_image_file(project, path) -> None:
    """After a save (job thread): the project notes the image file its annotation is of
    (``Project.note_image_file``). Only a note: a failure to write it leaves the save as it is."""
    from qgn.project import ProjectError

    try:
        project.note_image_file(project.image_for(path))
    except (OSError, KeyError, ProjectError):
        pass
