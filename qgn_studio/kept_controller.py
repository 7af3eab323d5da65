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
said once per window (the banner, keyed ``"kept"``), naming the menu entry - only the copies kept after those a
window said before: the app's settings remember, per project folder and image, the newest copy announced
(``ANNOUNCED``), so a window opened tomorrow does not say the same copies again (the menu lists them all); a
project moved or renamed says them once more.
"""
from __future__ import annotations

import hashlib
import html
import json
import math
import os
from dataclasses import replace
from pathlib import Path

from PySide6 import QtCore

from qgn.project_kept import newest_first

NOTICE_KEY = "kept"
#: the settings' {project folder: {digest of an image key (``_key_digest``): [when, written] (``_stamp``) of the newest
#: kept copy of it announced]} (JSON), at most ``ANNOUNCED_PROJECTS`` projects (the latest) of ``ANNOUNCED_IMAGES`` images
#: each (the latest): a few tens of KB at most, read and written on the UI thread in a millisecond. Keyed by the
#: project's folder: a project moved or renamed says its copies once more
ANNOUNCED, ANNOUNCED_PROJECTS, ANNOUNCED_IMAGES = "kept/announced", 16, 50


class KeptController(QtCore.QObject):
    """See the module docstring."""

    def __init__(self, workspace, annotator, projects, parent=None):
        super().__init__(parent)
        from qgn_studio.jobs import JobRunner

        self.workspace, self.annotator, self.projects = workspace, annotator, projects
        self.runner = JobRunner(self)
        self.copies: dict[Path, list] = {}  # image path → its kept copies, as last listed
        self._told: set[tuple[str, str]] = set()  # (project root, key) whose newer copies were said
        self.asked = self.listed = 0  # listings submitted, and those whose answer was taken (done or failed)
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
            self.listed += 1
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
                newer = self._not_announced(project.root, key, newer)
                if not newer:
                    return  # each said in an earlier window: listed in the menu, not said again
                self.workspace.show_message(notice_text(doc.name, newer, saved is None), "info", NOTICE_KEY)
                self.workspace.show_status(f"{doc.name}: kept copies newer than its saved annotation: "
                                           "Start from → Kept copy…", 8000)

        def failed(message: str) -> None:
            self.listed += 1
            self.workspace.show_status(f"Cannot list the copies kept of {doc.name}: {message}", 6000)

        self.asked += 1
        self.runner.submit(run, done, failed, "Listing the copies kept aside")

    def _not_announced(self, root, key: str, copies: list) -> list:
        """Of ``copies`` (of the image ``key`` of the project at ``root``), those kept after the newest one a window
        announced before (``ANNOUNCED``: by (when, written)); the newest is remembered as announced now. Without
        settings (screenshots): all. By times only: a copy that turns up later with a time not newer than the one
        remembered is listed in the menu, never said - put back by hand, an undone state (``keep_undone`` links the
        autosave: its time is the autosave's, which may be older than a copy said before), another host's clock
        behind this one's. Remembering names as well would say them, at the cost of a list per image in the
        settings (lost7b 6 bounded them to a pair of times)."""
        settings = self.workspace.settings
        if settings is None:
            return copies
        memory = announced(settings)
        images = memory.pop(os.fspath(root), {})
        digest = _key_digest(key)
        said = images.pop(digest, None)
        fresh = [copy for copy in copies if said is None or _stamp(copy) > said]
        newest = max([_stamp(copy) for copy in copies] + ([said] if said is not None else []))
        images[digest] = newest
        while len(images) > ANNOUNCED_IMAGES:
            images.pop(next(iter(images)))
        memory[os.fspath(root)] = images
        while len(memory) > ANNOUNCED_PROJECTS:
            memory.pop(next(iter(memory)))
        settings.setValue(ANNOUNCED, json.dumps(memory, separators=(",", ":")))
        self.workspace.sync_settings()
        return fresh

    def shutdown(self, wait: bool = True) -> None:
        self.runner.stop(wait)


def announced(settings) -> dict[str, dict[str, tuple[float, float]]]:
    """The settings' ``ANNOUNCED``: {project folder: {key digest: (when, written)}} - empty where missing or
    unreadable, and without any entry of another form (lost7's list of paths): a copy is then said once more."""
    try:
        memory = json.loads(str(settings.value(ANNOUNCED, "") or "{}"))
    except (ValueError, RecursionError):
        return {}
    if not isinstance(memory, dict):
        return {}
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for root, images in memory.items():
        if isinstance(images, dict):
            out[str(root)] = {str(digest): pair for digest, pair in
                              ((digest, _times(pair)) for digest, pair in images.items()) if pair is not None}
    return out


def _times(pair) -> tuple[float, float] | None:
    """``ANNOUNCED``'s [when, written] as two finite floats; None for anything else (edited by hand)."""
    if not isinstance(pair, list) or len(pair) != 2 or any(type(value) not in (int, float) for value in pair):
        return None
    try:
        when, written = float(pair[0]), float(pair[1])
    except OverflowError:
        return None
    return (when, written) if math.isfinite(when) and math.isfinite(written) else None


def _stamp(copy) -> tuple[float, float]:
    """A kept copy's (when, written), to the millisecond: as ``ANNOUNCED`` holds it (and compares it)."""
    return round(copy.when, 3), round(copy.written, 3)


def _key_digest(key: str) -> str:
    """An image key as ``ANNOUNCED`` holds it: 10 hex of its SHA-256 (a key may be 170 bytes)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:10]


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
