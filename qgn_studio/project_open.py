"""Reading a project to open it, on the job thread: everything that grows with its images.

``read_project(folder, open_docs)`` reads project.json (``qgn.project.Project.open``), finds which
image files are on disk (one listing per folder), makes a document for every image not open
already (its done flag set), and lists the autosaves to offer; the UI thread then only swaps the
result in (``ProjectController.open_project``). A 20,000-image project costs the UI thread no
per-image work, so the window keeps answering while it opens.

``progress(done, total)`` is called as documents are made; ``cancelled()`` is polled between
them, and ``OpenCancelled`` stops the read (nothing was changed: opening writes nothing).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

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
    ``recoverable``: its images with an autosave to offer."""

    project: object
    images: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    made: dict = field(default_factory=dict)
    done: dict = field(default_factory=dict)
    recoverable: list = field(default_factory=list)


def read_project(folder: Path, open_docs: list, progress: Callable[[int, int], None] = lambda done, total: None,
                 cancelled: Callable[[], bool] = lambda: False) -> ProjectOpening:
    """See the module docstring. ``open_docs``: a copy of the documents open now (kept, not made)."""
    from qgn.project import Project

    from qgn_studio.discovery import existing_files
    from qgn_studio.document import ImageDocument

    project = Project.open(Path(folder))
    if project.images:
        project.image_for(project.images[0].path)  # builds the path index here, not on the UI thread
    total = len(project.images)
    progress(0, total)
    images, missing = existing_files([im.path for im in project.images])
    done = {Path(im.path): im.done for im in project.images}
    known = {d.path for d in open_docs}
    made = {}
    for n, path in enumerate(images, 1):
        if path not in known:
            doc = made[path] = ImageDocument(path)
            doc.done = done.get(path, False)
        if n % PROGRESS_EVERY == 0:
            if cancelled():
                raise OpenCancelled(f"opening {folder} was cancelled")
            progress(n, total)
    try:
        recoverable = project.recoverable()
    except OSError:
        recoverable = []
    return ProjectOpening(project, images, missing, made, done, recoverable)
