"""What the project kept aside for the image on screen, offered back: **Start from → Kept copy… (N)**
lists the copies of its labels in the project's ``discarded/``, ``conflicts/``, ``replaced/`` and
``removed/`` (``Project.kept_copies``: when and why each was kept, newest first; those of a read-only
project's stand-in too, where its Discards and undone edits go), and the one chosen
becomes its labels as one undoable edit (``Annotator.start_from("kept")``: read by the import's
checked reader, refused when its classes or size do not fit). Nothing on disk changes until a save;
the kept file is never moved.

The folders are listed off the UI thread, on this controller's own thread (each folder once while it
is unchanged: ``qgn.project_kept.kept_copies``), when an image is shown and after each save, autosave
or change another writer made. An image shown with kept copies newer than its saved annotation is
said once per window (the banner, keyed ``"kept"``), naming the menu entry - only the copies no window said
before: the app's settings remember which copies of which project were announced (``ANNOUNCED``), so a
window opened tomorrow does not say the same copies again (the menu lists them all).
"""
from __future__ import annotations

import html
import json
import os
from dataclasses import replace
from pathlib import Path

from PySide6 import QtCore

from qgn.project_kept import newest_first

NOTICE_KEY = "kept"
#: the settings' {project folder: [the kept copies announced, as paths, oldest first]} (JSON), at most
#: ``ANNOUNCED_PROJECTS`` projects (the latest) of ``ANNOUNCED_PER_PROJECT`` copies each (the latest)
ANNOUNCED, ANNOUNCED_PROJECTS, ANNOUNCED_PER_PROJECT = "kept/announced", 32, 500


class KeptController(QtCore.QObject):
    """See the module docstring."""

    def __init__(self, workspace, annotator, projects, parent=None):
        super().__init__(parent)
        from qgn_studio.jobs import JobRunner

        self.workspace, self.annotator, self.projects = workspace, annotator, projects
        self.runner = JobRunner(self)
        self.copies: dict[Path, list] = {}  # image path → its kept copies, as last listed
        self._told: set[tuple[str, str]] = set()  # (project root, key) whose newer copies were said
        annotator.kept_copies = lambda doc: self.copies.get(doc.path, []) if doc is not None else []
        workspace.current_changed.connect(self.look)
        workspace.project_changed.connect(self._project_changed)
        projects.saved.connect(lambda _count: self.look(workspace.current))
        projects.autosaved.connect(lambda _count: self.look(workspace.current, notice=False))
        projects.merged.connect(lambda _project: self.look(workspace.current))

    def _project_changed(self, _project) -> None:
        self.copies.clear()
        self.workspace.clear_message(NOTICE_KEY)
        self.look(self.workspace.current)

    def look(self, doc, notice: bool = True) -> None:
        """List ``doc``'s kept copies on the job thread; then offer them, and say so once when one is
        newer than its saved annotation (``notice``)."""
        project = self.projects.project
        if doc is None or project is None:
            self.workspace.clear_message(NOTICE_KEY)
            return
        try:
            image = project.image_for(doc.path)
        except KeyError:  # not in the project (yet)
            self.workspace.clear_message(NOTICE_KEY)
            return

        scratch = self.projects.scratch_path

        def run():
            copies = project.kept_copies(image)
            spare = _stand_in(scratch, project)  # where edits go the project refuses (read-only): its Discards too
            if spare is not None:
                try:
                    theirs = spare.kept_copies(spare.image_for(doc.path))
                except (KeyError, OSError):
                    theirs = []
                copies = newest_first([*copies, *(replace(copy, why=f"{copy.why}, in the read-only project's "
                                                               "stand-in") for copy in theirs)])
            try:
                saved = os.stat(project.annotation_path(image)).st_mtime
            except OSError:
                saved = None  # none saved: any kept copy is work the project does not hold
            return copies, saved, image.key

        def done(result) -> None:
            copies, saved, key = result
            if project is not self.projects.project:
                return  # listed in a project since closed or switched: never kept under a path the next may share
            if copies:
                self.copies[doc.path] = copies
            else:
                self.copies.pop(doc.path, None)
            if doc is self.workspace.current:
                self.annotator.refresh_status()
            if doc is not self.workspace.current:
                return
            # a copy whose name fits another image too is listed (saying so), never said as this one's
            newer = [copy for copy in copies if not copy.unsure and (saved is None or copy.written > saved)]
            told = (os.fspath(project.root), key)
            if not newer:
                self.workspace.clear_message(NOTICE_KEY)
            elif notice and told not in self._told:
                self._told.add(told)
                newer = self._not_announced(project.root, newer)
                if not newer:
                    return  # each said in an earlier window: listed in the menu, not said again
                self.workspace.show_message(notice_text(doc.name, newer, saved is None), "info", NOTICE_KEY)
                self.workspace.show_status(f"{doc.name}: kept copies newer than its saved annotation: "
                                           "Start from → Kept copy…", 8000)

        def failed(message: str) -> None:
            self.workspace.show_status(f"Cannot list the copies kept of {doc.name}: {message}", 6000)

        self.runner.submit(run, done, failed, "Listing the copies kept aside")

    def _not_announced(self, root, copies: list) -> list:
        """Of ``copies`` (of the project at ``root``), those no window announced before (``ANNOUNCED``); they
        are remembered as announced now. Without settings (screenshots): all."""
        settings = self.workspace.settings
        if settings is None:
            return copies
        memory = announced(settings)
        project = os.fspath(root)
        said = memory.pop(project, [])
        fresh = [copy for copy in copies if os.fspath(copy.path) not in said]
        memory[project] = (said + [os.fspath(copy.path) for copy in fresh])[-ANNOUNCED_PER_PROJECT:]
        while len(memory) > ANNOUNCED_PROJECTS:
            memory.pop(next(iter(memory)))
        settings.setValue(ANNOUNCED, json.dumps(memory))
        self.workspace.sync_settings()
        return fresh

    def shutdown(self, wait: bool = True) -> None:
        self.runner.stop(wait)


def announced(settings) -> dict[str, list[str]]:
    """The settings' ``ANNOUNCED`` (empty when missing or unreadable: a copy is then said once more)."""
    try:
        memory = json.loads(str(settings.value(ANNOUNCED, "") or "{}"))
    except ValueError:
        return {}
    if not isinstance(memory, dict):
        return {}
    return {str(root): [str(name) for name in names] for root, names in memory.items() if isinstance(names, list)}


def _stand_in(scratch, project):
    """(Job thread) ``project``'s stand-in (``qgn_studio.scratch.stand_in``), None when it has none or it
    cannot be read."""
    from qgn_studio.scratch import stand_in

    if scratch is None:
        return None
    try:
        return stand_in(scratch, project, create=False)
    except Exception:  # unreadable: its copies are not listed (its own open says why)
        return None


def notice_text(name: str, newer: list, unsaved: bool) -> str:
    """The banner (html) of an image shown with kept copies ``newer`` than its saved annotation."""
    count = len(newer)
    than = "it has no saved annotation" if unsaved else "newer than its saved annotation"
    return (f"{html.escape(name)}: the project kept {count} cop{'y' if count == 1 else 'ies'} of its labels aside "
            f"({than}; the newest: {html.escape(newer[0].why)}). <b>Start from → Kept copy…</b> lists them and "
            "loads the one you choose as one edit (undo takes it back).")
