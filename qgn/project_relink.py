"""Find missing images: a project's image files that are no longer where project.json says are
looked for in a folder the user names, and their entries are pointed at where they are now.

A project stores an image outside its folder as an absolute path (``qgn.project``), so moving the
image folder (another disk, a renamed folder, the project copied to another machine) leaves its
images missing. Annotations, autosaves and everything kept aside are named after the image's
*key*, never its path: relinking changes only the entry's ``path`` — key, done flag and file note
stay, so every annotation follows its image.

``find_missing(project, folder)`` reads only: it walks ``folder`` (recursively, not through
symbolic links to folders) for files named as the missing images and checks each candidate
against the image's file note (size and SHA-256, noted when its annotation was saved) where there
is one, else against its saved annotation's pixel size (projects older than the note). A missing image gets a ``Match`` when exactly one candidate passes — or, of several, the
one whose folders end like the old path's strictly most (``…/train/a.png`` for ``…/train/a.png``,
not ``…/val/a.png``); otherwise it is *ambiguous* and listed with its candidates, never chosen.
A file already in the project, or chosen by two missing images, is never chosen.

``relink(project, plan)`` writes project.json once (atomically, under the project's write lock,
merging what another writer changed meanwhile). An entry that another writer changed since the
plan was made (removed, relinked, its file back in place) or whose new file is gone is skipped and
reported; nothing else of project.json changes. Interrupted, project.json is the old one or the new.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .fileio import file_sha256, straight_path
from .imagefile import upright_size
from .project import Project, ProjectImage
from .project_images import _file_key, path_key

#: Files looked at between two progress reports of the folder walk.
REPORT_EVERY = 500


@dataclass(frozen=True)
class Match:
    """A missing image (``key``, ``old`` path) found at ``new``; ``how``: "bytes" (size and SHA-256
    as noted), "name and size" (no note, but a saved annotation of that pixel size), "name" (nothing
    to check: an image without annotation); "… and folders" when the folders chose among several."""

    key: str
    old: Path
    new: Path
    how: str


@dataclass
class RelinkPlan:
    """What ``find_missing`` found for the ``missing`` images: ``found`` (one file each),
    ``ambiguous`` ((key, old path, candidates) — never chosen), ``rejected`` ((key, old path,
    why): files of its name, none with its bytes), ``not_found`` ((key, old path)). ``files``:
    files looked at; ``unreadable``: folders that could not be listed; ``cancelled``: the search
    was stopped (then nothing is found: a partial search could hide a second candidate)."""

    folder: Path
    missing: int = 0
    found: list[Match] = field(default_factory=list)
    ambiguous: list[tuple[str, Path, list[Path]]] = field(default_factory=list)
    rejected: list[tuple[str, Path, str]] = field(default_factory=list)
    not_found: list[tuple[str, Path]] = field(default_factory=list)
    files: int = 0
    unreadable: list[str] = field(default_factory=list)
    cancelled: bool = False

    def summary(self) -> str:
        """One line: how many missing images were found, and what is left."""
        if self.cancelled:
            return f"search of {self.folder} cancelled; nothing will be relinked"
        if not self.missing:
            return "no image of the project is missing"
        left = [f"{len(items)} {what}" for items, what in ((self.ambiguous, "ambiguous"),
                (self.rejected, "with other bytes than noted"), (self.not_found, "not found")) if items]
        return (f"found {len(self.found)} of {self.missing} missing image(s) in {self.folder} ({self.files} files "
                f"looked at)" + (f"; {', '.join(left)}" if left else ""))


@dataclass
class RelinkResult:
    """What ``relink`` wrote: ``relinked`` matches, and ``skipped`` (match, why) — changed by
    another writer since the plan was made, or the file is gone again."""

    relinked: list[Match] = field(default_factory=list)
    skipped: list[tuple[Match, str]] = field(default_factory=list)


def missing_images(project: Project) -> list[ProjectImage]:
    """The project's images whose file is not there (a ``stat`` each: call it off the UI thread)."""
    return [im for im in project.images if not im.path.is_file()]


def find_missing(project: Project, folder, progress: Callable[[int, int, str], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> RelinkPlan:
    """See the module docstring. ``progress(i, n, text)``: n = 0 while the folder is walked (its
    size is unknown), then i of n candidates checked. NotADirectoryError when ``folder`` is none."""
    folder = straight_path(Path(folder).expanduser())  # link/../x: the folder the system walks, not ./x
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder; name the folder the images were moved to")
    stop = should_stop or (lambda: False)
    report = progress or (lambda i, n, text: None)
    plan = RelinkPlan(folder)
    missing = missing_images(project)
    plan.missing = len(missing)
    if not missing:
        return plan
    wanted: dict[str, list[ProjectImage]] = {}
    for im in missing:
        wanted.setdefault(im.path.name, []).append(im)
    candidates = _walk(folder, wanted, plan, report, stop)
    if plan.cancelled:
        return plan
    folders: dict = {}
    taken = _project_files(project, wanted, folders)
    checks = [(im, [c for c in candidates.get(im.path.name, []) if _file_key(c, folders) not in taken])
              for im in missing]
    hashes: dict[Path, str | None] = {}
    total = sum(len(found) for im, found in checks if im.file is not None)
    checked = [0]  # candidates whose bytes were compared so far, of ``total``
    chosen: dict[str, Match] = {}
    for im, found in checks:
        if stop():
            plan.cancelled, plan.found = True, []
            return plan
        if not found:
            plan.not_found.append((im.key, im.path))
            continue
        fit = _fitting_files(project, im, found, hashes, checked, total, report, plan)
        if fit is None:
            continue
        found, how = fit
        best = _closest(im.path, found)
        if best is None:
            plan.ambiguous.append((im.key, im.path, found))
        else:
            chosen[im.key] = Match(im.key, im.path, best, how if len(found) == 1 else f"{how} and folders")
    _one_image_per_file(chosen, plan)
    return plan


def _fitting_files(project: Project, im: ProjectImage, found: list[Path], hashes: dict, checked: list[int],
                   total: int, report, plan: RelinkPlan) -> tuple[list[Path], str] | None:
    """The files of ``found`` that can be ``im``'s, and how that was told ("bytes": the bytes noted when its
    annotation was saved, each comparison counted in ``checked[0]`` and reported of ``total``; else the
    pixel size of its saved annotation); None, the image listed in ``plan.rejected``, when none can."""
    if im.file is not None:
        passing = []
        for path in found:
            checked[0] += 1
            if _same_bytes(path, im.file, hashes):
                passing.append(path)
            report(checked[0], total, f"checking {path.name}")
        if not passing:
            plan.rejected.append((im.key, im.path, f"{len(found)} file(s) of that name, none with the bytes "
                                  "noted when its annotation was saved"))
            return None
        return passing, "bytes"
    fitting, how = _same_size(project, im, found)
    if not fitting:
        plan.rejected.append((im.key, im.path, f"{len(found)} file(s) of that name, none of the pixel "
                              "size of its saved annotation"))
        return None
    return fitting, how


def _walk(folder: Path, wanted: dict, plan: RelinkPlan, report, stop) -> dict[str, list[Path]]:
    """{name: files of that name under ``folder``} for the ``wanted`` names; counts and reports."""
    candidates: dict[str, list[Path]] = {}

    def unreadable(exc: OSError) -> None:
        plan.unreadable.append(f"{exc.filename}: {exc.strerror or exc}")

    for top, dirs, files in os.walk(folder, onerror=unreadable):
        if stop():
            plan.cancelled = True
            return {}
        dirs.sort()
        for name in sorted(files):
            plan.files += 1
            if name in wanted:
                path = Path(top, name)
                if path.is_file():
                    candidates.setdefault(name, []).append(path)
            if plan.files % REPORT_EVERY == 0:
                report(0, 0, f"looked at {plan.files} files ({top})")
    return candidates


def _project_files(project: Project, wanted: dict, folders: dict) -> set[str]:
    """The files (``_file_key``: one ``realpath`` per folder) of the project's images named as a
    missing one: a file already in the project is never another image's."""
    return {_file_key(im.path, folders) for im in project.images if im.path.name in wanted}


def _same_bytes(path: Path, noted: tuple, hashes: dict) -> bool:
    try:
        if path.stat().st_size != noted[0]:
            return False
    except OSError:
        return False
    if path not in hashes:
        hashes[path] = file_sha256(path)
    return hashes[path] == noted[1]


def _same_size(project: Project, image: ProjectImage, found: list[Path]) -> tuple[list[Path], str]:
    """For an image without a file note: (the candidates whose pixel size is its saved annotation's,
    "name and size"), or (all, "name") when it has no saved annotation to compare with."""
    try:
        label = project.load_annotation(image)
    except (OSError, ValueError):
        label = None
    if label is None:
        return found, "name"
    return [path for path in found if _pixel_size(path) == label.shape], "name and size"


def _pixel_size(path: Path) -> tuple[int, int] | None:
    """(height, width) of the image file as shown (EXIF turns applied), from its header; None if unreadable."""
    try:
        width, height = upright_size(path)
    except (ValueError, OSError):
        return None
    return height, width


def _closest(old: Path, found: list[Path]) -> Path | None:
    """The one of ``found`` whose folders end like ``old``'s strictly most; None on a tie."""
    if len(found) == 1:
        return found[0]
    scores = [(_common_tail(old.parent.parts, path.parent.parts), path) for path in found]
    scores.sort(key=lambda s: -s[0])
    return scores[0][1] if scores[0][0] > scores[1][0] else None


def _common_tail(a: tuple, b: tuple) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


def _one_image_per_file(chosen: dict[str, Match], plan: RelinkPlan) -> None:
    """A file chosen by two missing images (same name, no note to tell them apart) is neither's."""
    by_file: dict[str, list[Match]] = {}
    folders: dict = {}
    for match in chosen.values():
        by_file.setdefault(_file_key(match.new, folders), []).append(match)
    for matches in by_file.values():
        if len(matches) == 1:
            plan.found.append(matches[0])
        else:
            for match in matches:
                plan.ambiguous.append((match.key, match.old, [match.new]))
    plan.found.sort(key=lambda m: str(m.old))


def relink(project: Project, plan: RelinkPlan) -> RelinkResult:
    """Point each ``plan.found`` entry at its new file: one write of project.json (see the module
    docstring). ``project.images`` keep their objects; a failed write changes nothing here either."""
    result = RelinkResult()
    if not plan.found or plan.cancelled:
        return result
    with project.writing():  # another writer's changes are merged first
        by_key, folders = {im.key: im for im in project.images}, {}
        taken = {_file_key(im.path, folders) for im in project.images}  # every spelling of a file is one
        moves: list[tuple[ProjectImage, Path]] = []
        for match in plan.found:
            image = by_key.get(match.key)
            why = _why_not(image, match, taken, folders)
            if why:
                result.skipped.append((match, why))
                continue
            moves.append((image, match.new))
            taken.add(_file_key(match.new, folders))
            result.relinked.append(match)
        if moves:
            project.repoint(moves)
    return result


def _why_not(image: ProjectImage | None, match: Match, taken: set[str], folders: dict) -> str:
    """Why ``match`` no longer applies (under the lock), or ""."""
    if image is None:
        return "another window or command removed the image from the project meanwhile"
    if path_key(image.path) != path_key(match.old):
        return f"another window or command changed its path meanwhile (to {image.path})"
    if image.path.is_file():
        return "its file is back where it was"
    if not match.new.is_file():
        return f"{match.new} is gone"
    try:
        if image.file is not None and match.new.stat().st_size != image.file[0]:
            return f"{match.new} changed since it was checked"
    except OSError:
        return f"{match.new} is gone"
    if _file_key(match.new, folders) in taken:
        return f"{match.new} is an image of the project already"
    return ""
