"""What the crash-recovery question says: whose autosaves (a project, or the scratch project of a
class set when there was none), which images, when each was last autosaved, and which ones are
older than their saved annotation. Built by ``project_autosave`` and shown by ``ask.AskUser.recover``
(or answered by a test); no widgets here.

``RecoveryQuestion.names`` is the list the question showed before it said more (an image's file name,
with " (its saved annotation is newer)" where that is so): what tests match an answer against.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

NEWER_SAVE = " (its saved annotation is newer)"
MARKED = " (marked done)"
CLASS_NAMES_SHOWN = 4


@dataclass(frozen=True)
class RecoveryItem:
    """One image with an autosave (or, without a project, a done mark) to offer: its file name, when
    it was autosaved (seconds since the epoch; None when unknown or none), whether its saved
    annotation was written after it, and whether it was marked done."""
    name: str
    autosaved: float | None
    saved_is_newer: bool = False
    marked: bool = False

    @property
    def label(self) -> str:
        return self.name + (NEWER_SAVE if self.saved_is_newer else "") + (MARKED if self.marked else "")


@dataclass(frozen=True)
class RecoveryQuestion:
    """The autosaves of one project (``scratch``: the scratch project of the class set
    ``class_names``, i.e. edits made without a project) in ``folder``."""
    folder: Path
    scratch: bool
    class_names: tuple[str, ...]
    items: tuple[RecoveryItem, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, project, images, scratch: bool, folder: Path | None = None, marked=()) -> RecoveryQuestion:
        """The question about ``images`` (recoverable images of ``project``) and ``marked`` (its
        images marked done without a project); ``folder``: the project they are of, when ``project``
        only holds them (the stand-in of a read-only project)."""
        items, marks = [], {id(im) for im in marked}
        for im in images:
            try:
                when = project.autosave_path(im).stat().st_mtime
            except OSError:
                when = None
            items.append(RecoveryItem(Path(im.path).name, when, project.autosave_is_older(im), id(im) in marks))
        shown = {id(im) for im in images}
        items += [RecoveryItem(Path(im.path).name, None, marked=True) for im in marked if id(im) not in shown]
        items.sort(key=lambda item: -(item.autosaved or 0))  # the latest edits first
        return cls(Path(folder or project.root), scratch, tuple(project.classes.names), tuple(items))

    @property
    def names(self) -> list[str]:
        return [item.label for item in self.items]

    def where(self) -> str:
        """Whose autosaves: the project's name, or "without a project" and the classes, abbreviated."""
        if not self.scratch:
            return f"Project “{self.folder.name}”"
        shown = ", ".join(self.class_names[:CLASS_NAMES_SHOWN])
        more = len(self.class_names) - CLASS_NAMES_SHOWN
        return f"Without a project — {len(self.class_names)} classes: {shown}{f' and {more} more' if more > 0 else ''}"

    def summary(self, now: float | None = None) -> str:
        count = len(self.items)
        newest = max((item.autosaved for item in self.items if item.autosaved is not None), default=None)
        older = sum(item.saved_is_newer for item in self.items)
        marked = sum(item.marked for item in self.items)
        what = ("edits that were autosaved but not saved" if marked < count else "done marks not kept in a project")
        if 0 < marked < count:
            what = "edits that were autosaved but not saved, or done marks not kept in a project"
        text = (f"{count} image{'s' if count != 1 else ''} had {what}, by a window that did not close normally "
                "or by one still open")
        if newest is not None:
            text += f" (last autosaved {ago(newest, now)})"
        text += "."
        if older:
            text += (f" {older} of them {'are' if older != 1 else 'is'} older than {'their' if older != 1 else 'its'}"
                     " saved annotation: restoring replaces a later save (kept in conflicts/ when you save).")
        return text

    def actions(self, discarded: str) -> str:
        """What the answers do (``discarded``: the folder name Discard moves autosaves to)."""
        marks_only = all(item.marked and item.autosaved is None for item in self.items)
        text = "" if marks_only else (f"Autosaves in {self.folder}. Restore opens them as unsaved edits; Discard "
                                      f"moves them to {discarded}/ there (nothing is deleted); ")
        if any(item.marked for item in self.items):
            text += ("Restore marks the images done again (opening them); Discard clears the marks; " if marks_only else
                     "the images marked done are marked again, or their marks cleared; ")
        return text + "Later keeps them for the next start."

    def item_text(self, item: RecoveryItem, now: float | None = None) -> str:
        when = "" if item.autosaved is None else f" — autosaved {ago(item.autosaved, now)}"
        return item.name + when + (NEWER_SAVE if item.saved_is_newer else "") + (MARKED if item.marked else "")


def ago(when: float, now: float | None = None) -> str:
    """``when`` (seconds since the epoch) relative to ``now``: "just now", "5 min ago", "3 h ago",
    "2 days ago" (and the date beyond a week)."""
    now = time.time() if now is None else now
    seconds = max(0.0, now - when)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    days = int(seconds // 86400)
    if days <= 7:
        return f"{days} day{'s' if days != 1 else ''} ago"
    return "on " + time.strftime("%Y-%m-%d", time.localtime(when))
