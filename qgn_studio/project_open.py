"""Reading a project to open it, on the job thread: everything that grows with its images.

``read_project(folder, open_docs)`` reads project.json (``qgn.project.Project.open``), finds which
image files are on disk (one listing per folder), makes a document for every image not open
already (its done flag set), and lists the autosaves to offer; the UI thread then only swaps the
result in (``ProjectController.open_project``). A 20,000-image project costs the UI thread no
per-image work, so the window keeps answering while it opens.

``progress(done, total, phase)`` is called as the image files are checked on disk (``phase``
"checking") and as documents are made ("making"), ``done`` of the ``total`` images of that phase;
``should_stop()`` (the library's convention) is polled between them, and in the loops of the read of
project.json (``Project.open``, the path index), and ``OpenCancelled`` stops the read (nothing was
changed: opening writes nothing).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from qgn_studio.document import ImageDocument
from qgn_studio.gc_pause import collections_paused

#: A project.json at most this big (about 150 images) opens at once on the UI thread: its reading
#: costs a few ms, and what the caller sees right after ``open_project`` is the project, open.
OPEN_IN_PLACE_BYTES = 16 << 10
PROGRESS_EVERY = 500  # documents made between two progress reports


class OpenCancelled(Exception):
    """The user cancelled the open, or opened another project meanwhile."""


@dataclass
class ProjectOpening:
    """A project read for opening. ``images``: its image files on disk, in order (resolved as
    ``discovery.existing_files`` does); ``missing``: those not on disk; ``made``: path → a new
    document for each image not open before; ``done``: path → the project's done flag;
    ``recoverable``: its images with an autosave to offer; ``read_only``: why its folder cannot be
    written (``qgn.fileio.write_problem``), None when it can; ``listing``: ``documents_for(source)``
    worked out on the job thread for ``source``, the list of documents open when it was read;
    ``twins``: groups of entries of project.json that name one file, the one used first; ``blocked``:
    files where its annotation or autosave folder belongs (``Project.blocked_folders``); ``kept``: older
    files of its images that an add finished late kept in removed/ (``Project.kept_by_late_adds``);
    ``unlocked``: why its writers are not kept apart (a file system without locks,
    ``Project.writers_unprotected``), None where they are; ``hidden``: crashed writers' files under a private
    name that an open did not put back under its own name (``Project.taken_left_text``), None when none."""

    project: object
    images: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    made: dict = field(default_factory=dict)
    done: dict = field(default_factory=dict)
    recoverable: list = field(default_factory=list)
    source: list | None = None
    read_only: str | None = None
    listing: tuple | None = None
    twins: list = field(default_factory=list)  # ``Project.twins()``: entries that name one file
    blocked: list = field(default_factory=list)  # ``Project.blocked_folders()``: said when it opens
    kept: list = field(default_factory=list)  # ``Project.kept_by_late_adds()``: said when it opens
    unlocked: str | None = None  # ``Project.writers_unprotected()``: said when it opens
    hidden: str | None = None  # ``Project.taken_left_text()``: crashed writers' files not put back, said when it opens

    def documents_for(self, open_docs: list) -> tuple[list, list, list]:
        """(the documents to list, in order: an image open already keeps its document; the open
        documents that leave; those that stay whose done flag differs from the project's) for the
        documents ``open_docs`` open now: the job thread's answer when they are still the ones it
        was read for (``Workspace.docs`` is replaced, never changed in place), else worked out anew."""
        if open_docs is self.source and self.listing is not None:
            return self.listing
        kept = {d.path: d for d in open_docs}
        docs = [kept.get(p) or self.made.get(p) or ImageDocument(p) for p in self.images]
        listed = set(self.images)
        dropped = [d for d in open_docs if d.path not in listed]
        flipped = [d for d in docs if d.path in kept and d.done != self.done.get(d.path, False)]
        return docs, dropped, flipped


def read_project(folder: Path, open_docs: list,
                 progress: Callable[[int, int, str], None] = lambda done, total, phase: None,
                 should_stop: Callable[[], bool] = lambda: False) -> ProjectOpening:
    """See the module docstring. ``open_docs``: the list of documents open now (read, not changed)."""
    # the hundred thousand objects an open makes would trigger one or two full collections; the
    # documents live long, so they are frozen (even a young collection would walk them all)
    with collections_paused(freeze=True):
        return _read(folder, open_docs, progress, should_stop)


def _read(folder: Path, open_docs: list, progress, should_stop) -> ProjectOpening:
    from qgn.fileio import write_problem
    from qgn.project import Project
    from qgn.project_errors import ReadStopped

    from qgn_studio.discovery import existing_files

    if should_stop():  # (cancelled while it waited behind another job: nothing read at all)
        raise OpenCancelled(f"opening {folder} was cancelled")
    try:  # (~3 s at 100,000 images: each loop in it polls should_stop)
        project = Project.open(Path(folder), should_stop)
        project.warm_index(should_stop)  # the path index built here, not on the UI thread
    except ReadStopped:
        raise OpenCancelled(f"opening {folder} was cancelled") from None
    total = len(project.images)
    if should_stop():
        raise OpenCancelled(f"opening {folder} was cancelled")
    progress(0, total, "checking")

    def checked(n: int) -> None:
        if should_stop():
            raise OpenCancelled(f"opening {folder} was cancelled")
        if n:
            progress(n, total, "checking")

    images, missing = existing_files([im.path for im in project.images], checked, PROGRESS_EVERY)
    progress(total, total, "checking")
    done = {Path(im.path): im.done for im in project.images}
    known = {d.path for d in open_docs}
    made = {}
    for n, path in enumerate(images, 1):
        if path not in known:
            doc = made[path] = ImageDocument(path)
            doc.done = done.get(path, False)
            hash(doc.path)  # a path's hash is computed once and kept: here, not on the UI thread
        if n % PROGRESS_EVERY == 0:
            if should_stop():
                raise OpenCancelled(f"opening {folder} was cancelled")
            progress(n, total, "making")
    if should_stop():
        raise OpenCancelled(f"opening {folder} was cancelled")
    try:
        recoverable = project.recoverable()
    except OSError:
        recoverable = []
    opening = ProjectOpening(project, images, missing, made, done, recoverable, open_docs,
                             read_only=write_problem(project.root))
    opening.hidden = project.taken_left_text()  # (by ``recoverable``: what it could not put back)
    opening.blocked = project.blocked_folders()
    opening.kept = project.kept_by_late_adds()
    opening.unlocked = project.writers_unprotected()
    opening.twins = project.twins()  # the path index is built above: no disk access here but for twins
    opening.listing = opening.documents_for([*open_docs])  # a copy: worked out, not taken as the answer
    return opening
