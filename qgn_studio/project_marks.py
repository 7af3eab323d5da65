"""Done marks: the project controller's record of the images the user marked done (or not).

A mark goes into the open project's project.json at once, on the job thread (``_done_changed``,
``_record_marks``); one the project refuses (a full disk) waits, tried again with the autosave's retry
and at every save, and is asked about before closing (``_unrecorded_marks``, ``_record_marks_again``,
``_forget_marks``, ``_wait_for_marks``). Without a project a mark is kept at once in the scratch project
of the image's class set too (``_mark_in_scratch``; made before any class set: ``_keep_waiting_marks``),
so a crash loses none; marks another window's start took from there are written back
(``_keep_own_marks``), and ones the user let go are cleared (``_unmark_scratch``). Marks not written yet
stay on screen over the project's flags (``_marks_pending``).

A mixin of ``qgn_studio.project_controller.ProjectController`` (its ``__init__`` makes the state). Reads
``project``, ``workspace``, ``jobs``, ``annotator``, ``_scratches``, ``_read_only``; reads and writes
``_unrecorded``, ``_marks_made``, ``_marks_in_flight``, ``_marks_on_way``, ``_marks_waiting``, ``_streaks``,
``live_marks``. Calls back into the controller's ``_warn``, ``_write_failed``, ``_retry_later``,
``_deferred``, ``_write_image``, ``scratch`` and ``_show_project_done``.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from PySide6 import QtCore

from qgn_studio.project_autosave import AUTOSAVE_RETRY_MS


class DoneMarksMixin:
    """``ProjectController``'s done marks (see the module docstring)."""

    def _wait_for_marks(self, timeout_s: float = 60.0) -> None:
        """Until the done marks on their way are decided (their callbacks ran), at most ``timeout_s``:
        the UI thread's events run meanwhile (it repaints; the user's input waits), where blocking
        on the file thread held it for as long as a slow disk took."""
        import time

        deadline = time.monotonic() + timeout_s
        loop, poll = QtCore.QEventLoop(), QtCore.QTimer()
        poll.timeout.connect(lambda: loop.quit() if not self._marks_in_flight or time.monotonic() > deadline
                             else None)
        poll.start(10)
        if self._marks_in_flight:
            loop.exec(QtCore.QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
        poll.stop()

    def _count_marks_on_way(self) -> None:
        """The open project's marks still on their way once ``_wait_for_marks`` gave up (a disk slower than
        its bound) may yet be refused: counted as not recorded (asked about; a save writes them again,
        a discard forgets them), until their write's outcome decides (``_record_marks``)."""
        if self.project is None:
            return
        root = str(self.project.root)
        for key, (_number, done) in self._marks_on_way.items():
            if key[0] == root and self._marks_made.get(key) == _number:
                self._unrecorded[key] = done

    def _forget_marks(self, docs) -> dict:
        """The marks of ``docs`` the open project could not record are accepted as lost: asked about
        no more, and never written later - not by the autosave or retry that follows, nor by a
        try on its way (its outcome no longer counts: ``_marks_made``). Returns them ({key: done}):
        ``_pend_marks`` takes them back when what they were discarded for did not happen."""
        if self.project is None:
            return {}
        root, forgotten = str(self.project.root), {}
        for doc in docs:
            key = (root, doc.path)
            done = self._unrecorded.pop(key, None)
            if done is not None:
                forgotten[key] = done
                self._marks_made[key] = self._marks_made.get(key, 0) + 1
        if not self._unrecorded_marks():
            self._streaks.discard("marks")  # the next refused mark is news again
        return forgotten

    def _pend_marks(self, marks: dict) -> None:
        """``marks`` (from ``_forget_marks``) are the user's again, not recorded yet: asked about at a
        close, tried again with the autosave's retry and at the next save (a write of one that a
        try on its way recorded meanwhile writes the same flag again)."""
        if marks:
            self._unrecorded.update(marks)
            self._retry_later()

    def _done_changed(self, doc, done: bool) -> None:
        project = self.project
        if project is None:
            self._mark_in_scratch(doc, done)
            return
        self._record_mark(project, doc.path, done)

    def _record_mark(self, project, path: Path, done: bool) -> None:
        """Record a done mark in ``project`` (job thread): ``_record_marks``."""
        self._record_marks(project, {path: done})

    def _record_marks(self, project, marks: dict, again: bool = False) -> None:
        """Record the done marks ``marks`` (image path -> done) in ``project``, in one write of
        project.json (job thread). A mark the write refuses (a full disk) stays in ``_unrecorded``:
        tried again with the autosave's retry and at the next save, and closing asks about it, as
        about unsaved edits (the image still shows it done). A mark whose image the project no longer
        lists (another writer removed it) is dropped, and said, when the image file is gone too or
        when it is a mark tried ``again`` (an image is not added back for a stale mark); a batch
        refused for another reason than the disk is written one mark at a time, so that one mark
        that cannot be written does not hold the others back for ever."""
        made = self._number_marks(project, marks)
        self._marks_in_flight += 1

        def write() -> list:
            return self._write_marks(project, marks, made, again)

        self.jobs.submit(write, partial(self._marks_recorded, project, made),
                         partial(self._marks_not_recorded, project, marks, made))

    def _number_marks(self, project, marks: dict) -> dict:
        """Number each of ``marks`` as the latest of its image ({(root, path): number}) and note it on
        its way; a refused mark of the same image is replaced by it."""
        made = {}
        for path, done in marks.items():
            key = (str(project.root), path)
            self._marks_made[key] = made[key] = self._marks_made.get(key, 0) + 1
            self._marks_on_way[key] = (made[key], done)
            if key in self._unrecorded:
                self._unrecorded[key] = done  # this mark replaces the refused one
        return made

    def _marks_deciding(self, made: dict) -> list:
        """The keys of ``made`` no newer mark (nor a discard: ``_forget_marks``) decides."""
        return [key for key in made if self._marks_made.get(key) == made[key]]

    def _marks_arrived(self, made: dict) -> None:
        """The write of ``made`` ended: no longer in flight nor on its way."""
        self._marks_in_flight -= 1
        for key in made:
            if self._marks_on_way.get(key, (None,))[0] == made[key]:
                del self._marks_on_way[key]

    def _marks_recorded(self, project, made: dict, dropped: list) -> None:
        """The write of ``made`` succeeded (UI thread); ``dropped``: the paths whose image went."""
        self._marks_arrived(made)
        self._streaks.discard("marks")
        for key in self._marks_deciding(made):
            self._unrecorded.pop(key, None)
        if self.project is not None and self.project.root == project.root:
            # another writer's mark the watch did not show while these were on their way (or
            # refused): the project's value now - from the copy a class reload made, if it did
            self._show_project_done(self.project, [key[1] for key in made])
        if dropped and self.project is project:
            names = ", ".join(path.name for path in dropped[:3]) + (", …" if len(dropped) > 3 else "")
            self._warn(f"The done mark of {names} was not recorded: another window or command removed "
                       f"{'it' if len(dropped) == 1 else 'them'} from the project {project.root.name}")

    def _marks_not_recorded(self, project, marks: dict, made: dict, message: str) -> None:
        """The write of ``made`` was refused (UI thread): the marks still deciding wait in
        ``_unrecorded``, tried again later (never, read-only)."""
        self._marks_arrived(made)
        keys = self._marks_deciding(made)
        if not keys or self.project is None or self.project.root != project.root:
            return  # newer marks decide, or they were accepted as lost, or the project closed (asked then)
        for key in keys:
            self._unrecorded[key] = marks[key[1]]
        names = [key[1].name for key in keys]
        what = names[0] if len(names) == 1 else f"{len(names)} images ({', '.join(names[:3])}" + (
            ", …)" if len(names) > 3 else ")")
        if self._read_only:  # it never will be: File ▸ New project keeps it (its warning says so)
            self._write_failed(f"Cannot record 'done' for {what}: {message}")
            return
        self._retry_later()
        self._write_failed(f"Cannot record 'done' for {what}: {message}; it is tried again every "
                           f"{AUTOSAVE_RETRY_MS // 1000} s and at the next save", streak="marks")

    @staticmethod
    def _marked_image(project, path: Path, again: bool):
        """The image of a mark's ``path`` in ``project`` (job thread), added back when its file is
        there and the mark is not tried ``again``; None: the mark goes."""
        from qgn.project import ProjectError

        try:
            return project.image_for(path)
        except KeyError:
            if again or not Path(path).is_file():
                return None  # removed by another writer: the mark goes with it
        try:
            return project.add_images([path], save=True)[0]
        except ValueError as exc:
            if isinstance(exc, ProjectError):  # busy, changed by another window: kept, tried again
                raise
            return None  # an image the project cannot take: the mark goes with it

    def _write_marks(self, project, marks: dict, made: dict, again: bool) -> list:
        """Write the marks of ``made`` still deciding (job thread); the paths dropped."""
        dropped = self._write_deciding_marks(project, marks, made, again)
        # the project's path index, which ``_marks_recorded`` reads the flags through on the UI thread, built
        # here when a merge of another writer's change replaced the images (0.4 s at 100,000 images);
        # read there, not here: a change the watch merges before ``_marks_recorded`` runs is what it shows
        project.warm_index()
        return dropped

    def _write_deciding_marks(self, project, marks: dict, made: dict, again: bool) -> list:
        """``_write_marks`` without the index: one write, or one a mark where one cannot be written."""
        # the marks still deciding now that this write's turn came: not one a newer mark replaced, nor
        # one a Discard forgot while it waited behind other jobs (``_forget_marks``: at the close's bound)
        live = {key[1]: marks[key[1]] for key in self._marks_deciding(made)}
        dropped: list = []
        if not live:
            return dropped

        def pairs(paths) -> list:
            found = []
            for path in paths:
                im = None if path in dropped else self._marked_image(project, path, again)
                if im is not None:
                    found.append((im, live[path]))
                elif path not in dropped:
                    dropped.append(path)
            return found

        # only a mark refused for its image (KeyError) is looked at again; a busy or changed project
        # (ProjectError) or a disk error (OSError) ends the round: every mark kept, tried again later
        for _attempt in (1, 2):  # a mark refused for a removed image merged that removal: looked up anew, once
            try:
                project.set_done_many(pairs(live))
                return dropped
            except KeyError:
                pass
        for path in [p for p in live if p not in dropped]:  # one mark that cannot be written holds back
            try:  # no other: one write each
                project.set_done_many(pairs([path]))
            except KeyError:
                dropped.append(path)
        return dropped

    def _marks_pending(self) -> dict:
        """The open project's marks not written yet: refused ones and those on their way (current)."""
        root = None if self.project is None else str(self.project.root)
        pending = {key[1]: done for key, (number, done) in self._marks_on_way.items()
                   if key[0] == root and self._marks_made.get(key) == number}
        pending.update(self._unrecorded_marks())
        return pending

    def _unrecorded_marks(self) -> dict:
        """Image path -> done of the open project's marks not recorded yet (``_record_mark``)."""
        root = None if self.project is None else str(self.project.root)
        return {path: done for (where, path), done in self._unrecorded.items() if where == root}

    def _record_marks_again(self) -> None:
        """The open project's done marks a write refused (``_record_mark``): written again (not while
        a question of unsaved work is open: ``autosave_now``)."""
        if self._deferred():
            return
        project = self.project
        marks = self._unrecorded_marks()
        if project is not None and not self._read_only and marks:
            self._record_marks(project, marks, again=True)  # one write for them all

    def _mark_in_scratch(self, doc, done: bool) -> None:
        """Without a project a done mark is kept at once in the scratch project of the image's class
        set (as its autosave is): a crash then loses no mark, and the next start offers it back."""
        if not done:
            self._unmark_scratch([doc.path])
            return
        classes = doc.annotation.classes if doc.annotation is not None else self.annotator.classes
        if classes is None:  # no model yet: no scratch project to keep it in; kept once there is one
            self._marks_waiting.append(doc)
            return
        target = self.scratch(classes)
        if target is None:
            return
        def keep():
            self.live_marks.record(target, add=[doc.path])  # named first: a start that sees the mark sees whose
            return self._write_image(target, doc.path, lambda image: target.set_done(image, True))[0]

        self.jobs.submit(keep, failed=lambda message: self._warn(f"{doc.name}: the done mark cannot be kept in the "
                                                           f"scratch folder ({message}); save a project to keep it"))

    def _keep_waiting_marks(self, classes) -> None:
        """A class set is known: the done marks made before it are kept now (``_mark_in_scratch``)."""
        waiting, self._marks_waiting = self._marks_waiting, []
        if classes is None or self.project is not None:
            return
        for doc in dict.fromkeys(waiting):
            if doc.done and doc in self.workspace.docs:
                self._mark_in_scratch(doc, True)

    def _keep_own_marks(self, scratch) -> None:
        """This window's done marks (without a project) that the scratch project of their class set
        no longer has - another window's start discarded them, not knowing this one lives - are kept
        there again (job thread), as an autosave another window displaced is written again: a crash
        of this window still finds them."""
        if self.project is not None or self.jobs.pending():  # file work under way: look at the next tick
            return
        classes = self.annotator.classes
        marked = [doc.path for doc in self.workspace.docs if doc.done and
                  (doc.annotation.classes if doc.annotation is not None else classes) == scratch.classes]
        if not marked:
            return

        def look() -> None:
            if scratch.changed_on_disk():
                scratch.refresh(blocking=False)
            for path in marked:
                try:
                    done = scratch.image_for(path).done
                except KeyError:
                    done = False
                if not done:
                    self.live_marks.record(scratch, add=[path])
                    self._write_image(scratch, path, lambda image: scratch.set_done(image, True))

        self.jobs.submit(look, failed=lambda message: self._warn(f"A done mark cannot be kept in the scratch folder "
                                                                 f"({message}); save a project to keep it"))

    def _unmark_scratch(self, paths, also=()) -> None:
        """The done marks of ``paths`` in the scratch projects this window uses (and ``also``) go:
        unmarked, discarded or kept in a project now (job thread)."""
        scratches = [*self._scratches.values(), *also]

        def run() -> None:
            for scratch in scratches:
                for path in paths:
                    try:
                        image = scratch.image_for(path)
                    except KeyError:
                        continue
                    if image.done:
                        scratch.set_done(image, False)
                    self.live_marks.record(scratch, remove=[path])

        if scratches and paths:
            self.jobs.submit(run, failed=lambda message: self._warn(f"Cannot clear a done mark in the scratch "
                                                                    f"folder: {message}; it is offered at the next start"))
