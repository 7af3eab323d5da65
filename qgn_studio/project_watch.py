"""Another writer's changes on disk: the project controller's watch of the open project (and, without one,
of the scratch projects) for what a second window, ``qgn import`` or a script changed, and showing it.

``check_project_on_disk`` runs every ``WATCH_MS`` (and after a refused write): it reads and merges a
changed project.json on the job thread (``_look_at_merge``), shows the images and done flags another
writer added or changed (``_show_merged``, ``merged_view``, ``_show_project_done``), hands a class
change to ``project_class_changes`` (``reload_changed_classes``), reads again the saved annotations
another writer replaced under a clean open map and autosaves again the edits whose autosave another
window displaced (``_reload_replaced_annotations``).

A mixin of ``qgn_studio.project_controller.ProjectController`` (its ``__init__`` makes the state).
Reads ``project``, ``workspace``, ``jobs``, ``annotator``, ``shell``, ``_scratches``, ``_versions``,
``_autosaved``; reads and writes ``_looking``, ``_merges_shown``, ``_look_failed``, ``_disk_problem``,
``_unreadable_told``, ``_scratch_turn``; starts ``timer`` (the autosave's). Calls back into the
controller's ``_warn``, ``document_shown``, ``_keep_own_marks``, ``_marks_pending`` and
``reload_changed_classes``.
"""
from __future__ import annotations

from pathlib import Path, PurePath

from qgn_studio.document import describe_error
from qgn_studio.jobs import STOPPED

WATCH_MS = 1500
CHANGED_ELSEWHERE = "another window or command"  # in the messages of qgn.project.ProjectChangedError


class DiskWatchMixin:
    """``ProjectController``'s watch of the project on disk (see the module docstring)."""

    def check_project_on_disk(self) -> None:
        """Notice a change of project.json by another writer and reload what changed (see the
        module docstring). Cheap when nothing changed (a digest of one small file); a change is read,
        merged and indexed on the job thread (``_look_at_merge``), shown here once it is."""
        project = self.project
        if project is None:  # the scratch projects: edits whose autosave another window discarded
            scratches = list(self._scratches.values())
            if scratches:  # one a tick (a look waits for the job thread to be idle)
                self._scratch_turn = (self._scratch_turn + 1) % len(scratches)
                self._reload_replaced_annotations(scratches[self._scratch_turn])
                self._keep_own_marks(scratches[self._scratch_turn])
            return
        self._reload_replaced_annotations(project)
        if self._looking:  # the last tick's look has not come back: the next tick looks again
            return
        if not project.changed_on_disk():
            if project.merges != self._merges_shown:  # a write of ours merged another writer's changes
                self._look_at_merge(project, read=False)
            return
        self._look_at_merge(project, read=True)

    def _look_at_merge(self, project, read: bool) -> None:
        """Read and merge project.json (``read``) on the job thread, build the project's path index
        there (a merge replaces the images: the next look-up by path rebuilt it on the UI thread, ~0.4 s
        at 100,000 images) and take what ``_show_merged`` shows off the project there too (a Path and a
        file check per image: ~0.6 s more); then show it here. Reading on the job thread, the look is in
        order with this window's own writes: none is in progress while it reads. What is shown is told by
        the project's merge counter against the one shown, not by the file: a write of ours queued before
        the look merges the change it was for (the look then finds the file as this object wrote it)."""
        from qgn.project import ProjectChangedError

        known = {d.path for d in self.workspace.docs}
        shown = self._merges_shown
        self._looking = True

        def look():
            try:
                if read:
                    project.refresh()
            except ProjectChangedError as exc:
                return "classes", exc
            except Exception as exc:  # unreadable, removed, or disagreeing with the folders
                return "unreadable", exc
            merges = project.merges
            project.warm_index()
            if merges == shown:  # merged by nobody since the last look (a merge counts up before it returns)
                return "same", merges
            return "merged", merges, merged_view(project, known)

        def found(result) -> None:
            self._looking = False
            self._look_failed = None
            if project is not self.project:  # closed or reloaded meanwhile
                return
            if result[0] == "classes":
                self.reload_changed_classes()
                return
            if result[0] == "unreadable":
                self._unreadable_on_disk(result[1])
                return
            if read:
                self._disk_problem = None
            self._merges_shown = result[1]
            if result[0] == "merged":
                self._show_merged(project, result[2])

        def failed(message: str) -> None:
            self._looking = False
            # the next tick looks again: told once per change of the other writer that cannot be shown
            # (a later change merged meanwhile counts the project's merges up), not every 1.5 s
            failure = (message, project.merges)
            if message != STOPPED and failure != self._look_failed:  # (STOPPED: the window closed)
                self._look_failed = failure
                self._warn(f"Cannot show another writer's change of the project: {message}")

        self.jobs.submit(look, found, failed)

    def _reload_replaced_annotations(self, project) -> None:
        """Saved annotations that another writer replaced under a map open here without unsaved
        edits: read them again; and unsaved edits whose autosave another writer's autosave
        displaced (to ``conflicts/``) and whose slot is empty now (that writer saved): autosave them
        again, so a crash still finds them. The versions are compared on the job thread, in order
        with this window's own writes (never in the middle of its save or class edit); what is
        being edited is never touched."""
        if self.jobs.pending():  # file work under way: look at the next tick
            return
        docs = [doc for doc in self.workspace.docs if doc.annotation is not None]
        clean = [doc.path for doc in docs if not doc.annotation.dirty]
        autosaved = [doc.path for doc in docs if doc.annotation.dirty and not doc.annotation.needs_autosave]
        versions, own_autosaves, root = self._versions, self._autosaved, str(project.root)
        if not any(path in versions for path in clean) and not any((root, p) in own_autosaves for p in autosaved):
            return

        def look() -> tuple[list, list]:
            replaced, emptied = [], []
            for path in clean:
                if path in versions:
                    try:
                        if project.annotation_version(project.image_for(path)) != versions[path]:
                            replaced.append(path)
                    except (KeyError, OSError):
                        pass
            for path in autosaved:
                if own_autosaves.get((root, path)) is not None:
                    try:
                        if project.autosave_version(project.image_for(path)) is None:
                            emptied.append(path)
                    except KeyError:  # removed elsewhere, its autosave moved to removed/: never offered there
                        emptied.append(path)
                    except OSError:
                        pass
            return replaced, emptied

        def found(result) -> None:
            replaced, emptied = result
            self._reload_annotations(project, replaced)
            self._autosave_again(emptied)

        self.jobs.submit(look, found)

    def _autosave_again(self, paths: list) -> None:
        wanted = set(paths)
        again = [doc for doc in self.workspace.docs if doc.path in wanted and doc.annotation is not None
                 and doc.annotation.dirty]
        for doc in again:
            doc.annotation.mark_autosaved(-1)  # its autosave is gone: write it again
        if again:
            self.timer.start()

    def _reload_annotations(self, project, paths: list) -> None:
        annotator = self.annotator
        wanted = set(paths)
        stale = [doc for doc in self.workspace.docs if doc.path in wanted and doc.annotation is not None
                 and not doc.annotation.dirty and doc.path not in annotator.loading
                 and not annotator.busy(doc)  # a stroke under way is an edit (looked at again at the next tick)
                 and not doc.annotation.undo.canRedo()]  # edits undone back to the saved map: Ctrl+Y brings them
        if project is not self.project or not stale:
            return
        annotator.forget(stale)
        for doc in stale:
            self.document_shown(doc)  # read again with its version, off the UI thread (nothing when removed)
            self.workspace.document_updated(doc)
        names = ", ".join(doc.name for doc in stale[:3]) + ("…" if len(stale) > 3 else "")
        self.workspace.show_status(f"Another window or command saved {names}: reloaded", 8000)

    def _unreadable_on_disk(self, exc: Exception) -> None:
        """Warn once per distinct problem that the project on disk cannot be read (nothing is written
        into it meanwhile; the open edits stay)."""
        message = describe_error(exc)
        if message != self._disk_problem:
            self._disk_problem = message
            self._warn(f"The project was changed on disk and cannot be read: {message}. Nothing is written into "
                       "it until it is fixed; your edits stay open")

    def _show_project_done(self, project, paths=None, done: dict | None = None) -> None:
        """The done flags of ``project`` (of ``paths``; None: all) on screen, but for the user's
        marks not written yet (``_marks_pending``), which stay. The marked images are read through
        the project's index (the write's job thread built it), and a project's paths are taken as they
        are: one mark made a Path of every project image on the UI thread (~50-100 ms at 5,000 images,
        0.9 s at 100,000). ``done``: {path: done} of every image, made on the job thread (``merged_view``)."""
        wanted = None if paths is None else set(paths)
        if done is None and paths is None:
            done = {(im.path if isinstance(im.path, PurePath) else Path(im.path)): im.done for im in project.images}
        elif done is None:
            done = {}
            for path in paths:
                try:
                    done[path] = project.image_for(path).done
                except KeyError:
                    continue
        pending = self._marks_pending()
        for doc in self.workspace.docs:
            if (wanted is None or doc.path in wanted) and doc.path in done and doc.path not in pending \
                    and doc.done != done[doc.path]:
                doc.done = done[doc.path]
                self.workspace.document_updated(doc)

    def _show_merged(self, project, view: tuple | None = None) -> None:
        """Images and done flags another writer added or changed: show them. ``view``: ``merged_view``
        of the project, made on the job thread (None: made here)."""
        known = {d.path for d in self.workspace.docs}
        done, new, unreadable = merged_view(project, known) if view is None else view
        self._show_project_done(project, done=done)
        new = [path for path in new if path not in known]  # opened since the view was made
        unread = [(path, why) for path, why in unreadable if path not in self._unreadable_told]
        if unread:  # told once per image, not at every look (the watch looks every 1.5 s)
            self._unreadable_told.update(path for path, _ in unread)
            why = unread[0][1]  # names the file, and what to check
            more = f" (and {len(unread) - 1} more image{'s' if len(unread) > 2 else ''})" if len(unread) > 1 else ""
            self._warn(f"Another window or command added an image this window cannot open: {why}{more}. "
                       "The rest of that change is shown")
        if new:
            current = self.workspace.current
            self.shell.open_paths(new, append=True)
            if current is not None and current in self.workspace.docs:
                self.workspace.select(current)
        self.workspace.show_status(
            "The project was changed by another window or command: reloaded"
            + (f" ({len(new)} new image{'s' if len(new) != 1 else ''})" if new else ""), 8000)
        self.merged.emit(project)  # (an image it removed: what keeps a record of it forgets it)


def merged_view(project, known: set) -> tuple[dict, list, list]:
    """What ``ProjectController._show_merged`` shows of ``project``: {path: done} of every image, the
    paths of the images on disk that are not in ``known`` (the window's documents), in order, and
    (path, why) of each new one whose check failed (a folder this user cannot traverse: ``is_file``
    re-raises EACCES) - reported, never sinking the rest. A Path of each image and a file check of each
    new one: made on the job thread for a big project."""
    done = {(im.path if isinstance(im.path, PurePath) else Path(im.path)): im.done for im in project.images}
    new, unreadable = [], []
    for path in done:
        if path in known:
            continue
        try:
            if path.is_file():
                new.append(path)
        except OSError as exc:
            unreadable.append((path, describe_error(exc)))
    return done, new, unreadable
