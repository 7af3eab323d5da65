"""Autosave and crash recovery: the project controller's copies of the unsaved edits, and offering them back.

Autosave (``_edited``, ``autosave_now``): ``AUTOSAVE_DELAY_MS`` after an edit, each annotation with edits
not yet autosaved is copied (into a spare made beforehand: ``_prepare_spare``) and written on the job
thread into the open project's ``.autosave/``, else into the scratch project of its class set, or a
read-only project's stand-in (``_where_to_autosave``, ``_Lookup``); an autosave the project refuses goes
beside it, into its stand-in (``_autosave_beside``); a failed one is said and tried again every
``AUTOSAVE_RETRY_MS`` (``_autosave_failed``, ``_retry_later``). Recovery (``offer_recovery``,
``_ask_recovery``, ``_restore``): autosaves holding edits the saved annotations lack are offered back;
restored maps become unsaved annotations of their images, and the done marks a scratch project kept
mark their images again (``_restore_marks``); discarded ones move to ``discarded/`` (``discard_autosaves``,
``_each_autosave``): only this window's own autosaves.

A mixin of ``qgn_studio.project_controller.ProjectController`` (its ``__init__`` makes the state and the
``timer``/``retry`` timers). Reads ``project``, ``workspace``, ``annotator``, ``jobs``, ``shell``,
``scratch_path``, ``ask_recover``, ``_read_only``, ``_closed``, ``_asking``; reads and writes ``_scratches``,
``_autosaved``, ``_spares``, ``_spare_copy``, ``_spare_wanted``, ``_copies_out``, ``_lookups``, ``_stand_in``,
``_retry_wanted``, ``_told_autosave_conflict``, ``_told_undone_aside``, ``_streaks``, ``live_marks``, ``_versions``; emits
``autosaved``. Calls back into the controller's ``_warn``, ``_write_failed``, ``_write_image``,
``_use_scratch``, ``_deferred``, ``_adopt``, ``_unmark_scratch``, ``_record_marks_again`` and ``sessions``.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from qgn_studio.discovery import resolved
from qgn_studio.document import describe_error
from qgn_studio.project_watch import CHANGED_ELSEWHERE

AUTOSAVE_DELAY_MS = 2000
AUTOSAVE_RETRY_MS = 10_000  # after a failed autosave (a full disk): try again without waiting for an edit


class AutosaveMixin:
    """``ProjectController``'s autosave and crash recovery (see the module docstring)."""

    # ------------------------------------------------------------------ autosave
    def _edited(self, _session) -> None:
        """An edit: autosave ``AUTOSAVE_DELAY_MS`` after the first edit not yet autosaved. A pending
        autosave is not put off again, so steady work (a stroke a second) is autosaved too."""
        if not self.timer.isActive():
            self.timer.start()
        self._prepare_spare(_session.label)

    def autosave_now(self) -> None:
        """Write every annotation with edits not yet autosaved (copies; written on the job thread).
        Not while a question of unsaved work is open (a callback's edit restarts the timer meanwhile):
        it would write the marks being discarded; it runs after a "Cancel" (``_ask_unsaved``)."""
        self.timer.stop()
        self.retry.stop()
        if self._deferred():
            return
        self._record_marks_again()
        pending = [d for d in self.sessions() if d.annotation.needs_autosave]
        written, submitted = [], False  # the annotations written (callbacks run in order, on the UI thread)
        lookups: dict = {}  # a scratch project or stand-in to find (or make) on the job thread: once this round
        for doc in pending:
            session = doc.annotation
            resolve = self._where_to_autosave(session, lookups)
            if resolve is None:
                continue  # nowhere (no scratch folder, no class set yet)
            into_project = self.project is not None and not self._read_only
            # a scratch project holds maps of its own class set only (a project's: check_same_classes)
            classes = self.workspace.classes if into_project else session.classes
            label, version, path = self._copy_of(session.label), session.version, doc.path
            # a map an autosave left on disk with edits this one lacks (undone: redo has them in memory
            # only) is kept in discarded/ by its bytes before it is written over: which map each target
            # holds is looked up on the job thread, in the order the writes ran (one still on its way
            # when the user undid counts), the maps this one lacks judged here (``judge_autosaves``)
            judge = session.judge_autosaves()
            session.autosave_sent(version)
            write = partial(self._write_autosave, resolve, path, label, classes, self._autosaved, self.project,
                            version, judge, session.uid)
            done = partial(self._autosave_done, session, version, doc, label, self.project, written)
            self._copies_out += 1
            self.jobs.submit(write, done, partial(self._autosave_not_written, resolve, label, doc), "Autosaving")
            submitted = True
        if submitted:
            round_lookups = list(lookups.values())

            def ended(_none) -> None:
                self._lookups = [lookup for lookup in self._lookups if lookup not in round_lookups]
                if written:
                    self.autosaved.emit(len(written))

            self.jobs.submit(lambda: None, ended)

    def _write_autosave(self, resolve, path: Path, label, classes, autosaved: dict, project, version: int, judge,
                        uid) -> tuple:
        """Write ``label`` (the copy of the map of the image at ``path``, edit ``version``) as the
        autosave of the project ``resolve()`` finds (job thread); beside ``project`` where ``project``
        refuses it for another reason than a busy lock. (the project written, the saved annotation,
        whether the image was added back to the open project, the stand-in's map kept aside or None)."""
        target = resolve()
        check_same_classes(target, classes)
        key = (str(target.root), path)
        undone = judge.undone(self._autosave_written(key))
        try:
            saved, added = self._write_image(
                target, path, lambda image: target.autosave(image, label, over=autosaved.get(key),
                                                            undone=undone))
        except Exception as exc:
            from qgn.project import ProjectBusyError

            if target is not project or isinstance(exc, ProjectBusyError):  # busy: the retry will do
                raise
            raise RuntimeError(self._autosave_beside(project, path, label, exc, version, judge, uid)) from None
        autosaved[key] = saved.version
        self._autosaved_maps[key] = (uid, version, saved.version)
        spared = self._drop_spare(project, path, judge) if target is project else None
        return target, saved, added and target is self.project, spared

    def _autosave_not_written(self, resolve, label, doc, message: str) -> None:
        """An autosave of ``doc`` failed, or found nowhere to go (UI thread): noted and said."""
        self._copies_out -= 1
        # the write ended (or never ran): nothing else holds its copy, which the retry (every
        # 10 s, no edit between: no spare made meanwhile) copies into, not afresh on this thread
        self._spare_copy = label
        if isinstance(resolve, _Lookup) and resolve.error is not None:
            self.autosave_failures[doc.path] = describe_error(resolve.error)
            self._nowhere_to_autosave(resolve)
        else:
            self.autosave_failures[doc.path] = message
            self._autosave_failed(message)

    def _autosave_done(self, s, v: int, doc, label, project, written: list, result: tuple) -> None:
        """An autosave of ``doc`` (session ``s`` at edit ``v``) was written (UI thread); ``written``:
        the round's, to which it is added. ``result``: ``_write_autosave``'s."""
        target, saved, added, spared = result
        self._copies_out -= 1
        self._found(target, project)
        self._streaks.difference_update({"autosave", "nowhere"})  # a failure from now on is news again
        self._spare_copy = label  # written: nothing else holds it
        self.autosave_failures.pop(doc.path, None)  # an earlier failure is no longer why
        written.append(doc)
        self._autosaved_one(s, v, doc, saved)
        if spared is not None:  # the stand-in's autosave of edits undone since, kept in its conflicts/
            self._say_undone_aside(doc, spared, "your latest edits are autosaved")
        if added:
            self._told_added_back(doc)

    def _where_to_autosave(self, session, lookups: dict):
        """A callable (job thread) returning the project ``session`` autosaves into (the open project, else the scratch project of its class set, or a read-only project's stand-in):
        the open project; the scratch project of its class set or the read-only project's stand-in
        when this window has it already; else a ``_Lookup`` finding or making it, shared by this
        round's autosaves (``lookups``): reading every scratch project takes 30-450 ms, never on
        the UI thread, once a round. None when there is nowhere (no scratch folder)."""
        project = self.project
        if project is not None and not self._read_only:
            return lambda: project
        if self.scratch_path is None:
            return None
        from qgn_studio.scratch import scratch_project, stand_in

        base = self.scratch_path
        if project is None:
            classes = session.classes
            if classes is None:
                return None
            known = next((p for p in self._scratches.values() if p.classes == classes), None)
            what, find = ("scratch", classes), lambda: scratch_project(base, classes)
        else:
            known = self._stand_in
            what, find = ("stand-in", str(project.root)), lambda: stand_in(base, project, True)
        if known is not None:
            return lambda: known
        if what not in lookups:  # one an earlier round is still finding is not looked for twice
            earlier = next((lookup for lookup in self._lookups if lookup.what == what and lookup.error is None), None)
            lookups[what] = earlier or _Lookup(find, scratch=project is None, what=what)
            if earlier is None:
                self._lookups.append(lookups[what])
        return lookups[what]

    def _found(self, target, project) -> None:
        """An autosave found (or made) ``target`` on the job thread: this window uses it from now on."""
        if target is project or target is None:
            return
        if project is None and self.project is None:
            self._use_scratch(target)
        elif project is not None and project is self.project and self._read_only and self._stand_in is None:
            self._stand_in = target

    def _nowhere_to_autosave(self, lookup) -> None:
        """The scratch project or stand-in could not be found or made (a full disk): said once a
        round (a banner once a failure streak), and tried again."""
        if lookup.told:
            return
        lookup.told = True
        why = describe_error(lookup.error)
        if lookup.scratch:
            text = (f"No autosave without a project: {why}; tried again every {AUTOSAVE_RETRY_MS // 1000} s "
                    "(Save keeps the edits in a project)")
        else:
            text = f"No autosave of the read-only project: {why}; tried again every {AUTOSAVE_RETRY_MS // 1000} s"
        self._write_failed(text, streak="nowhere")
        self._retry_later()

    def _prepare_spare(self, label) -> None:
        """Make the memory the next autosave copies ``label`` into on the job thread (its pages
        faulted in there, a band at a time), unless a spare of its shape and dtype is kept or on
        its way, or an autosave's write will give its copy back: the first autosave of a 6000×4000
        map held the UI thread 60-85 ms on a fresh copy."""
        shape, dtype = label.shape, label.dtype
        spare = self._spare_copy
        if (spare is not None and spare.shape == shape and spare.dtype == dtype) or self._spare_wanted == (shape, dtype) \
                or self._copies_out > 0:
            return
        self._spare_wanted = (shape, dtype)

        def make():
            import numpy as np

            made = np.empty(shape, dtype)
            rows = max(1, (1 << 20) // max(1, made[:1].nbytes))  # about 1 MB a band
            for y in range(0, shape[0], rows):
                made[y:y + rows] = 0
            return made

        def done(made) -> None:
            if self._spare_wanted == (shape, dtype):
                self._spare_wanted = None
            spare = self._spare_copy
            if spare is None or spare.shape != shape or spare.dtype != dtype:
                self._spare_copy = made

        def failed(_message: str) -> None:  # no memory for it now: the autosave copies afresh, as before
            if self._spare_wanted == (shape, dtype):
                self._spare_wanted = None

        self.jobs.submit(make, done, failed, "Preparing the autosave")

    def _copy_of(self, label):
        """A copy of ``label`` for a write on the job thread: into the last autosave's copy when
        its shape and dtype fit. A fresh 24 MB copy of a 6000×4000 map held the UI thread 77-89 ms
        at every autosave (its pages faulted in anew); into memory already in use it is a memcpy."""
        spare, self._spare_copy = self._spare_copy, None
        if spare is None or spare.shape != label.shape or spare.dtype != label.dtype:
            return label.copy()
        spare[...] = label
        return spare

    def _autosave_beside(self, project, path: Path, label, exc: Exception, version: int, judge=None,
                         uid: int = 0) -> str:
        """Job thread: ``project`` refused the autosave of ``path`` (project.json unreadable or removed,
        a full disk, a folder in the way): the edits (of edit ``version`` of session ``uid``) go to the
        project's stand-in in the scratch folder (``qgn_studio.scratch.stand_in``), offered when the project
        is opened again, until the project takes them (``judge``: an autosave there holding edits the map
        lacks is kept first, as in the project). What to tell the user."""
        from qgn_studio.scratch import stand_in

        why = describe_error(exc)
        kept = self._kept_beside
        kept.pop((str(project.root), path), None)  # kept there from now on only if written there below
        if self.scratch_path is None:
            return why
        try:
            spare = stand_in(self.scratch_path, project, create=True)
            check_same_classes(spare, project.classes)  # one kept from before a class edit: not these maps
            key = (str(spare.root), path)
            undone = judge is not None and judge.undone(self._autosave_written(key))
            saved, _ = self._write_image(
                spare, path, lambda image: spare.autosave(image, label, over=self._autosaved.get(key), undone=undone))
        except Exception as second:
            return f"{why}; nor could the edits be kept in the scratch folder ({describe_error(second)})"
        self._autosaved[key] = saved.version
        self._autosaved_maps[key] = (uid, version, saved.version)
        self._spares[(str(project.root), path)] = spare
        kept[(str(project.root), path)] = version
        aside = "" if saved.undone_aside is None else (
            f" (the edits you undid as {saved.undone_aside}: discarded/ there could not take them, "
            f"{describe_error(saved.undone_error)})")
        return (f"{why}. The edits are kept in {spare.root}{aside} meanwhile, and offered when the project is "
                "opened again")

    def _forget_spare(self, root, path: Path):
        """Job thread: the stand-in ``_spares`` held for ``(root, path)`` (popped, or None), and what
        ``_kept_beside`` said it kept (popped with it: a stale version must never hide edits from
        ``unkept_edits``)."""
        self._kept_beside.pop((root, path), None)
        return self._spares.pop((root, path), None)

    def _autosave_written(self, key):
        """Job thread: (session uid, edit version) of the map this window's autosave last wrote at ``key``
        ((root, image path)) while ``_autosaved`` still names that autosave; else None (none of this
        window's there, or one it restored: the bottom of its session's undo log)."""
        written = self._autosaved_maps.get(key)
        if written is None or key not in self._autosaved or self._autosaved[key] != written[2]:
            return None
        return written[:2]

    def _drop_spare(self, project, path: Path, judge=None):
        """Job thread: ``project`` took the edits of ``path`` that its stand-in kept for it (``_autosave_beside``,
        or restored from there): this window's autosave there goes - unless it holds edits the map the
        project took lacks (``judge``: undone since; redo has them in memory only): then it is kept in the
        stand-in's discarded/ by its bytes (``Project.discard_autosave(undone=True)``), never removed. Where
        discarded/ could not take it and conflicts/ did, or one took it and the autosave could not be
        removed after: a ``SavedAnnotation`` saying so (where it is kept, and the removal's error), for the
        caller's UI callback to pass to ``_say_undone_aside``; so too where neither took it (whatever the
        error: it stays in the stand-in, offered when the project opens again); else None."""
        from qgn.project import SavedAnnotation

        spare = self._forget_spare(str(project.root), path)
        if spare is None:
            return None
        key = (str(spare.root), path)
        undone = judge is not None and judge.undone(self._autosave_written(key))
        aside: list = []
        left = None
        try:
            spare.discard_autosave(spare.image_for(path), ours=self._autosaved.pop(key, None), keep=undone,
                                   undone=undone, aside=aside)
        except (OSError, KeyError, ValueError) as exc:  # it stays there, offered again: nothing lost
            left = exc  # said with where it is kept (its removal failing after)
            if undone and not aside and not isinstance(exc, KeyError):
                # neither discarded/ nor conflicts/ took it: an OSError, or discarded/'s OutsideRootError
                # (a link out of the stand-in; a ValueError) with conflicts/ refusing too. KeyError: the
                # stand-in has no such image, so no autosave of it
                return SavedAnnotation(None, None, None, exc)
        return SavedAnnotation(None, None, *aside, left) if aside else None

    def _autosave_failed(self, message: str) -> None:
        """Say so, and try again in ``AUTOSAVE_RETRY_MS`` (the edits stay in memory and unsaved):
        once the disk has room again they are autosaved without waiting for another edit."""
        self._write_failed(f"Autosave failed: {message}", streak="autosave")
        if self.project is None and CHANGED_ELSEWHERE in message:
            self._reopen_scratches()
        self._retry_later()

    def unkept_edits(self) -> list:
        """``(doc, why)`` for the open images whose edits since their last save are in no autosave (its
        last autosave failed - a full disk - or had nowhere to go) - lost if the window ends now. Judged
        once the job thread is drained (an autosave still queued may yet write them); ``why`` is that
        image's last autosave failure (a later successful autosave of it drops it), else None. Not an
        image whose edits, the project's autosave refused, its stand-in kept (``_autosave_beside``: its
        ``_spares`` entry, of these very edits): offered when the project is opened again."""
        root = None if self.project is None else str(self.project.root)
        return [(d, self.autosave_failures.get(d.path)) for d in self.sessions() if d.annotation.needs_autosave
                and not ((root, d.path) in self._spares and self._kept_beside.get((root, d.path)) == d.annotation.version)]

    def _retry_later(self) -> None:
        """Try the autosave (and the refused marks) again in ``AUTOSAVE_RETRY_MS``; not once the
        window closes (``closed``): after that nothing writes any more (said, not tried again)."""
        if self._asking:  # a question of unsaved work is open: after its answer (``_ask_unsaved``)
            self._retry_wanted = True
        elif not self._closed and not self.jobs.stopped:
            self.retry.start()

    def _reopen_scratches(self) -> None:
        """Another window changed a scratch project (its class edit renames the classes in place):
        read them again, so that maps of the old class set find (or make) a scratch project of their
        own at the next try instead of being refused at every try."""
        from qgn.project import Project

        for root, project in list(self._scratches.items()):
            try:
                self._scratches[root] = Project.open(project.root)
            except Exception:  # removed or unreadable: the next autosave finds another
                del self._scratches[root]

    def _told_added_back(self, doc) -> None:
        self._warn(f"Another window or command removed {doc.name} from the project while you had unsaved edits "
                   "of it: they are kept, so it is back in the project. Remove it here too (Image ▸ Remove) if "
                   "you do not need them")

    def _autosaved_one(self, session, version: int, doc, saved) -> None:
        session.mark_autosaved(version)
        self._say_undone_aside(doc, saved, "your latest edits are autosaved")
        if saved.parked is not None and doc.path not in self._told_autosave_conflict:
            self._told_autosave_conflict.add(doc.path)  # once: the other window's next autosave is parked too
            self._warn(f"{doc.name}: another window has unsaved edits of this image too; its autosave is kept as "
                       f"{saved.parked} (and later ones beside it), yours is autosaved")

    def _say_undone_aside(self, doc, saved, then: str) -> None:
        """The autosave holding edits undone since could not go to discarded/ (a file or a link out of
        the project in its place): say where it is kept instead (``Project._keep_undone``: conflicts/) -
        once per file kept (undo/redo cycles keep the same state under the same name: nothing new); that
        neither folder could take it (a save: the autosave stays, offered at the next open); or that
        the autosave, its bytes kept, could not be removed after (``undone_left``)."""
        aside, why, left = saved.undone_aside, saved.undone_error, saved.undone_left
        if aside is None:
            if why is not None:
                self._warn(f"{doc.name}: {then}; the autosave holding the edits you undid could be kept neither in "
                           f"discarded/ nor in conflicts/ ({describe_error(why)}). It is left in place where it "
                           "was autosaved, and offered when the project is opened again")
            return
        if str(aside) in self._told_undone_aside and left is None:  # a removal failure is news every time
            return
        self._told_undone_aside.add(str(aside))  # once: the same state kept again is the same file
        if why is not None:
            said = (f"{doc.name}: the autosave holding the edits you undid could not be kept in discarded/ "
                    f"({describe_error(why)}); it is kept as {aside}, and {then}")
        else:
            said = f"{doc.name}: the edits you undid are kept as {aside}, and {then}"
        if left is not None:
            said += f". The autosave holding them could not be removed: {describe_error(left)}"
        self._warn(said)

    # ------------------------------------------------------------------ recovery
    def offer_recovery(self, project=None) -> None:
        """Ask about autosaves with edits the saved annotations lack (of ``project``, else of each
        scratch project, one question per class set) and restore them when the user says so."""
        from qgn_studio.scratch import newest_first, scratch_projects

        if project is not None:
            projects = [project]
        elif self.scratch_path is not None:
            projects = newest_first(scratch_projects(self.scratch_path, lambda folder, exc: self._warn(
                f"The autosaves in {folder} cannot be read: {describe_error(exc)}. They are kept as they are")))
        else:
            projects = []
        for project in projects:
            if project is not self.project:
                project = self._scratches.get(str(project.root), project)  # one object per folder
            marks: list = []
            images = self._ask_recovery(project, marks=marks)
            if images:
                self._restore(project, images)
            if marks:
                self._restore_marks(marks)

    def _ask_recovery(self, project, images=None, marks=None) -> list:
        """The project's images whose autosave the user wants back (the autosaves of "discard"
        move to the project's discarded/ folder; "later" keeps them for next time). ``images``: its recoverable images, when
        they were listed already. A scratch project's are asked about only when the annotations can
        take its classes (``_scratch_classes``). ``marks``: a list to fill with the scratch
        project's images marked done (without a project) that the user wants marked again."""
        if project is None:
            return []
        try:
            images = project.recoverable() if images is None else images
        except OSError:
            return []
        own = project is self.project or project is self._stand_in  # a stand-in's: of the read-only project
        if images and not own and not self._scratch_classes(project, images):
            images = []  # they wait for a later start; done marks have no classes
        if marks is not None and not own:  # a live window's are its own, not a crash's: neither offered nor cleared
            from qgn_studio.scratch import live_marks, same_path

            live = live_marks(project, self.live_marks)
            marks.extend(im for im in project.images if im.done and Path(im.path).is_file()
                         and same_path(im.path) not in live)
        if not images and not marks:
            return []
        if project is self._stand_in and project.classes != self.project.classes:
            self._warn(f"Autosaves of {len(images)} image(s) of this project with other classes are kept in "
                       f"{project.root}")
            return []
        from qgn.project import DISCARDED_DIR

        from qgn_studio.recovery_question import RecoveryQuestion

        choice = self.ask_recover(RecoveryQuestion.of(project, images, scratch=not own,
                                                      folder=self.project.root if own else None, marked=marks or ()))
        if choice == "discard":
            kept = [project.discard_autosave(im) for im in images]
            if any(kept):
                self.workspace.show_status(f"{sum(map(bool, kept))} autosave(s) moved to "
                                           f"{project.root / DISCARDED_DIR} (move one back into "
                                           f"{project.autosave_dir}/ to restore it at the next start)", 15000)
            self._unmark_scratch([Path(im.path) for im in marks or ()], [project])
        if choice != "restore":
            if marks:
                marks.clear()
            return []
        if not own:
            project = self._use_scratch(project)
        if images and not own:
            if self.annotator.classes != project.classes:  # restored maps keep their classes: so do the tools
                self.annotator.set_classes(project.classes)
        for im in images:
            self.annotator.loading.add(Path(im.path))  # not the saved annotation: this
        return images

    def _scratch_classes(self, project, images) -> bool:
        """Whether the autosaves of the scratch ``project`` can be restored now: no open (or
        restoring) annotation has another class set. Otherwise they wait for a later start, and
        the user is told. The class set in use is not touched before the user restores: after
        "Later" the model's classes stay the annotations' (a model still loading takes them then)."""
        annotator = self.annotator
        other = [d for d in self.workspace.docs if (d.annotation is not None and d.annotation.classes != project.classes)
                 or (d.path in annotator.loading and annotator.classes != project.classes)]
        if not other:
            return True
        self._warn(f"Unsaved edits of {len(images)} image(s) with another class set "
                   f"({', '.join(project.classes.names[:4])}…) are kept in {project.root}: they are offered "
                   "at the next start")
        return False

    def _restore_marks(self, marks) -> None:
        """Mark again the images of ``marks`` (ProjectImage of a scratch project), opened if needed."""
        known = {d.path for d in self.workspace.docs}
        missing = [Path(im.path) for im in marks if Path(im.path) not in known and resolved(im.path) not in known]
        if missing:
            self.shell.open_paths(missing, append=True)
        by_path = {d.path: d for d in self.workspace.docs}
        for im in marks:
            doc = by_path.get(Path(im.path)) or by_path.get(resolved(im.path))
            if doc is not None and not doc.done:
                doc.done = True
                self.workspace.document_updated(doc)

    def _restore(self, project, images) -> None:
        known = {d.path for d in self.workspace.docs}
        missing = [im.path for im in images if im.path not in known and im.path.is_file()]
        if missing:
            self.shell.open_paths(missing, append=True)
        by_path = {d.path: d for d in self.workspace.docs}
        for im in images:
            doc = by_path.get(Path(im.path)) or by_path.get(resolved(im.path))
            if doc is None:
                self.annotator.loading.discard(Path(im.path))
                self._warn(f"{im.path}: the image of an autosave is missing; its autosave stays in {project.root}")
                continue
            self.annotator.loading.add(doc.path)
            self._recover(project, im, doc)

    def _recover(self, project, im, doc) -> None:
        """Read ``doc``'s autosave ``im`` of ``project`` (job thread) and install it. One read while a class
        change of ours remapped the open maps was read in the project's classes before it (the project is
        rewritten after the remap), and is read again once the project is rewritten (it was installed as a
        map of the classes before in a window of the new ones, or refused: "values [7] are not class ids")."""
        annotator = self.annotator
        # what the project refused once: the root of the project it stands in for
        spare = str(self.project.root) if project is self._stand_in and not self._read_only else None
        classes = annotator.classes

        def recover(path=doc.path, versions=self._versions if project is self.project else {},
                    autosaved=self._autosaved, prepare=annotator.preparer(doc, True, project.classes)):
            versions[path] = project.recovery_base(im)  # None: a newer save elsewhere, kept by ours
            autosaved[(str(project.root), path)] = project.autosave_version(im)  # restored: this window's now
            if spare is not None:  # goes once the project has these edits
                self._forget_spare(spare, path)  # (its edits, not those an earlier version said kept)
                self._spares[(spare, path)] = project
            label = project.recover(im)
            return label, prepare(label)  # its session's parts, made here too

        def recovered(result) -> None:
            label, prepared = result
            if annotator.class_change_pending() or annotator.classes is not classes:
                annotator.after_class_change(lambda: self._recover(project, im, doc))  # (still loading)
                return
            own = project.classes  # (read again after a class change: prepared in the classes it was then)
            if prepared is not None and prepared.annotation.classes == own:
                own = prepared.annotation.classes
            self._adopt(doc, label, "recovered", True, own, prepared=prepared)

        self.jobs.submit(recover, recovered, lambda message: self._recover_failed(doc, message),
                         "Restoring an autosave")

    def _recover_failed(self, doc, message: str) -> None:
        self.annotator.loading.discard(doc.path)
        if doc.annotation is None:
            self.annotator.mark_unreadable(doc.path, message, "autosave")  # a stroke must not overwrite it
        # the restore took it for this window's autosave (to write over once restored): it is not,
        # so the next autosave of this image moves it to conflicts/ instead (job thread only)
        autosaved = self._autosaved
        self.jobs.submit(lambda: [autosaved.pop(key) for key in list(autosaved) if key[1] == doc.path])
        self._warn(f"{doc.name}: the autosave cannot be read: {message}. It is kept as it is (moved to conflicts/ "
                   "once the image is edited again); choose a start in the Annotate panel to edit the image")

    def discard_autosaves(self, docs, now: bool = True, undone: bool = False):
        """Forget the autosaves of ``docs``: the user discarded their edits, or undid them back to the
        saved map (``undone``: redo still has them, in memory only, and autosaves them again): either way
        they move to the ``discarded/`` folder of the project (or stand-in) they are in, never deleted (an
        undone one under a name of its bytes, ``<key>.undone-<hash>.qgt``, never over a file there: a state
        kept already adds nothing - ``Project.discard_autosave``).
        Looked up on the job thread, after the
        autosaves submitted before: the first autosave of an image (it adds the image, and may find
        its scratch project there) is discarded too. ``now`` False: not submitted - the job-thread
        step that does it is returned (None: nothing to discard), for the caller's job to run first
        (``remove_images``). The edits the project refused and its stand-in in the scratch folder kept
        (``_autosave_beside``: its ``_spares`` entry) go there too - else the next start offered them again."""
        targets, paths = self._later_targets([self.project, self._stand_in]), [d.path for d in docs]
        root = None if self.project is None else str(self.project.root)
        asides: list = []  # (image path, [kept, why]): undone edits discarded/ could not take, kept in conflicts/

        def discard() -> None:
            # looked up here: an autosave submitted just before (at Discard) may have kept them there
            spares = [self._forget_spare(root, path) for path in paths] if root is not None else []
            each = {str(t.root): t for t in [*targets(), *spares] if t is not None}

            def act(target, image, ours) -> None:  # only this window's
                aside: list = []
                try:
                    target.discard_autosave(image, ours=ours, undone=undone, aside=aside)
                finally:  # kept in conflicts/ even where its removal after failed: said all the same
                    if aside:  # which doc: the one the target found this image by (image.path is the target's)
                        asides.append((next((p for p in paths if _finds(target, p, image)), image.path), aside))

            self._each_autosave(list(each.values()), paths, act)

        if not paths:
            return None
        if not now:
            return discard

        def said(_result=None) -> None:
            from qgn.project import SavedAnnotation

            by_path = {d.path: d for d in docs}
            for path, aside in asides:
                if path in by_path:
                    self._say_undone_aside(by_path[path], SavedAnnotation(None, None, *aside),
                                           "redo still has them")

        def failed(message: str) -> None:
            said()
            self._discard_failed(message, undone)

        self.jobs.submit(discard, said, failed, "Discarding")
        return None

    def _discard_failed(self, message: str, undone: bool = False) -> None:
        """A discarded autosave could not be moved to ``discarded/`` (a lock held past its timeout, a disk
        error): it stays where it was, offered again - said, where before the user took it as discarded.
        ``undone``: the autosave of edits undone back to the saved map (the user pressed undo, not Discard).
        (The stand-in's entry was forgotten before the move, and stays forgotten: kept, a later save of the
        image would delete that copy - ``_drop_spare`` - rather than leave it to be offered.)"""
        if undone:
            self._warn(f"The autosave of the edits you undid back to the saved map could not be moved to discarded/: "
                       f"{message}. It stays where it was, and is offered at the next start or when the project is "
                       "opened again (redo still has the edits)")
            return
        self._warn(f"Discarded edits could not be moved to discarded/: {message}. They stay autosaved where they "
                   "were, and are offered again at the next start or when the project is opened again")

    def _later_targets(self, also=()):
        """A callable (job thread) returning the projects this window autosaves into: ``also``, its scratch
        projects and those its autosaves on their way are finding (``_lookups``), each once."""
        known = [t for t in [*also, *self._scratches.values()] if t is not None]
        lookups = list(self._lookups)

        def targets() -> list:
            found = known + [lookup.result for lookup in lookups
                             if lookup.tried and lookup.error is None and lookup.result is not None]
            return list({str(t.root): t for t in reversed(found)}.values())[::-1]

        return targets

    def _each_autosave(self, targets, paths, act, keep_if=None) -> None:
        """Job thread: ``act(target, image, ours)`` for each of ``paths`` in each of ``targets`` listing it
        (``ours``: this window's autosave version there, forgotten once ``act`` is done: one that fails
        - the project's lock held past its timeout - leaves the autosave in place, still this window's),
        unless ``keep_if(path)``; an image another writer took out of the target meanwhile (KeyError)
        is passed over; one failing does not stop the others (the first failure is raised at the end)."""
        first = None
        for target in targets:
            for path in paths:
                try:
                    image = target.image_for(path)
                except KeyError:
                    continue
                if keep_if is not None and keep_if(path):
                    continue
                key = (str(target.root), path)
                try:
                    act(target, image, self._autosaved.get(key))
                except KeyError:  # no longer in the project (its autosave went to removed/ with it)
                    self._autosaved.pop(key, None)
                except Exception as exc:
                    first = first or exc
                else:
                    self._autosaved.pop(key, None)
        if first is not None:
            raise first

    def _drop_scratch_autosaves(self, also=()) -> None:
        """A project was created with the open images: remove this window's scratch autosaves of
        them (and those in ``also``: the stand-in of the read-only project it was made from) (job
        thread, after their autosaves into the project) — of an image with unsaved edits only once
        the project holds its autosave, so a failed write there leaves the scratch one. The scratch
        projects are those known and those found by autosaves still on their way."""
        project = self.project
        targets = self._later_targets(also)
        docs = [(d.path, d.annotation is not None and d.annotation.dirty) for d in self.workspace.docs]
        unsaved = {path for path, dirty in docs if dirty}

        def drop() -> None:
            self._each_autosave([t for t in targets() if t is not project], [path for path, _ in docs],
                                lambda scratch, image, ours: scratch.discard_autosave(image, ours=ours),
                                keep_if=lambda path: path in unsaved and not self._has_autosave(project, path))

        if docs:
            self.jobs.submit(drop)  # only this window's

    @staticmethod
    def _has_autosave(project, path) -> bool:
        try:
            return project is not None and project.autosave_version(project.image_for(path)) is not None
        except KeyError:
            return False


def _finds(target, path, image) -> bool:
    """Job thread: ``target`` finds ``image`` by the open image's ``path`` (any spelling of its file)."""
    try:
        return target.image_for(path) is image
    except KeyError:
        return False


def keep_in_temp(docs) -> tuple[Path | None, list, str | None]:
    """SIGTERM's last resort for edits no autosave could write (the project's and the scratch folder's disks
    full): each of ``docs``' maps as ``<image stem>.qgt`` (with its classes) in a new private folder of the
    system's temporary folder (``tempfile.mkdtemp``: 0700) - better than losing them with the window, though
    that folder may be cleared at the next boot. Two images of one stem (in different folders) get
    ``<stem>-2.qgt``…, stems compared case-folded and NFC-normalised (``Scene`` and ``scene`` are one file on
    a case-insensitive disk: macOS, Windows), and a name the folder already finds is never written over.
    (that folder or None, [(doc, its .qgt's name)] written, the first failure)."""
    import tempfile
    import unicodedata

    from qgn.formats.qgt import write_qgt_file

    def same(stem: str) -> str:
        return unicodedata.normalize("NFC", stem).casefold()

    try:
        folder = Path(tempfile.mkdtemp(prefix="qgn-studio-unsaved-"))
    except OSError as exc:
        return None, [], describe_error(exc)
    kept, error, stems = [], None, set()
    for doc in docs:
        stem, n = doc.path.stem, 1
        while same(stem) in stems or (folder / f"{stem}.qgt").exists():  # two images of one name
            n += 1
            stem = f"{doc.path.stem}-{n}"
        stems.add(same(stem))  # taken even when the write fails: a partial file may be there
        try:
            write_qgt_file(doc.annotation.label, doc.annotation.classes, folder, stem)
        except Exception as exc:  # a full disk here too: the edits are said lost
            error = error or describe_error(exc)
            continue
        kept.append((doc, f"{stem}.qgt"))
    if not kept:
        try:
            folder.rmdir()  # our own folder, just made and empty
        except OSError:
            pass
        return None, [], error
    return folder, kept, error


def check_same_classes(project, classes) -> None:
    """A map of ``classes`` is written into ``project`` only when the project has those classes
    (its files name their classes: a map of another class set would be read as wrong classes)."""
    if classes is not None and project.classes != classes:
        raise ValueError(f"{project.root} has other classes ({', '.join(project.classes.names[:5])}…) than the "
                         "open annotations; nothing was written (save them into a project with these classes)")


class _Lookup:
    """``find()`` run once (job thread), its project returned at every call, or ``error`` raised."""

    def __init__(self, find, scratch: bool, what=None):
        self.find, self.scratch, self.what = find, scratch, what
        self.tried, self.result, self.error, self.told = False, None, None, False

    def __call__(self):
        if not self.tried:
            self.tried = True
            try:
                self.result = self.find()
            except Exception as exc:  # said by the autosave's failure (``_nowhere_to_autosave``)
                self.error = exc
        if self.error is not None:
            raise RuntimeError(describe_error(self.error))
        return self.result
