"""Scratch projects: where autosaves go without a project, one per class set.

Under the per-user scratch folder (``project_controller.scratch_root``) each class set has its own
project, ``classes-<digest>/`` (a digest of the class names, colours and ignore value), created on
its first autosave. A project's files are of one class set, so sessions whose models have other
classes are autosaved beside each other, and the waiting autosaves of a crashed session keep their
classes whatever model the next session uses. The scratch folder of earlier versions — itself a
project, of the class set last used — is one of them: its waiting autosaves are still offered,
and it still takes the autosaves of its class set. Nothing here deletes or moves a user's file.

A read-only project (a CD, a colleague's folder) is autosaved into a *stand-in* here instead,
``read-only-<digest>/`` (a digest of the project's resolved folder): a project of its classes whose
images are the read-only project's. Its autosaves are offered when that project is opened again,
never at a start without a project nor for another project (``stand_in``).

A class edit renames the classes of a scratch project in place (its folder keeps its name), so a
class set is found by the classes its project.json holds, not by the folder's name. No Qt here.

A window's done marks without a project are kept in a scratch project for a crash; another window
starting cannot tell them from a dead window's unless the living window says so: it names them in
``.live/<window>/marks.json`` of that project, the folder locked for the window's life
(``LiveMarks``; ``qgn.fileio.lock_folder``: the system drops the lock however the process ends), and
a start offers — and so may clear — only the marks no live window names (``live_marks``). These
files are the windows' own bookkeeping, not the user's: a dead window's are removed.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

PREFIX = "classes-"
STAND_IN_PREFIX = "read-only-"
LIVE = ".live"
LIVE_MARKS = "marks.json"


def class_digest(classes) -> str:
    """A short digest of ``classes`` (names, colours, ignore value): the name of its scratch folder."""
    text = json.dumps(classes.to_json(), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def scratch_folders(base: Path) -> list[Path]:
    """The scratch projects' folders under ``base``: ``base`` itself when it is a project (earlier
    versions' single scratch project), then its subfolders that are projects, by name."""
    from qgn.project_file import PROJECT_FILE

    base = Path(base)
    found = [base] if (base / PROJECT_FILE).is_file() else []
    try:
        found += sorted(p for p in base.iterdir() if p.name.startswith(PREFIX) and (p / PROJECT_FILE).is_file())
    except (FileNotFoundError, NotADirectoryError):
        pass
    return found


def scratch_projects(base: Path, unreadable=None) -> list:
    """The scratch projects under ``base`` (``scratch_folders``), opened; one that cannot be read is
    left out (and passed, with the exception, to ``unreadable(folder, exc)``)."""
    from qgn.project import Project

    projects = []
    for folder in scratch_folders(base):
        try:
            projects.append(Project.open(folder))
        except Exception as exc:  # a damaged scratch project: its files stay as they are
            if unreadable is not None:
                unreadable(folder, exc)
    return projects


def newest_first(projects: list) -> list:
    """``projects`` by their newest autosave, newest first: at a start the latest edits are offered
    first (an image autosaved in two class sets — another window renamed a class — is restored
    from the newer; the other waits)."""
    def newest(project) -> int:
        try:
            return max((f.stat().st_mtime_ns for f in (project.root / project.autosave_dir).glob("*.qgt")), default=0)
        except OSError:
            return 0

    return sorted(projects, key=newest, reverse=True)


def scratch_project(base: Path, classes):
    """The scratch project of ``classes`` under ``base``: the first whose classes they are, else a
    new ``classes-<digest>`` (``-2``, ``-3``… when that name is taken by another class set, e.g. a
    renamed one, or by something else). Safe against another process creating it meanwhile."""
    from qgn.project import Project, ProjectError
    from qgn.project_file import PROJECT_FILE

    for project in scratch_projects(base):
        if project.classes == classes:
            return project
    stem = PREFIX + class_digest(classes)
    for n in range(1, 100):
        folder = Path(base) / (stem if n == 1 else f"{stem}-{n}")
        if not (folder / PROJECT_FILE).is_file():
            try:
                return Project.create(folder, [], classes)
            except ProjectError:  # another window created it meanwhile, or the folder holds other files
                if not (folder / PROJECT_FILE).is_file():
                    continue
        project = Project.open(folder)
        if project.classes == classes:
            return project
    raise ProjectError(f"no free scratch folder for these classes in {base}")


def stand_in_folder(base: Path, root: Path) -> Path:
    """Where the autosaves of the read-only project in ``root`` go under ``base``."""
    digest = hashlib.sha256(str(Path(root).resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return Path(base) / f"{STAND_IN_PREFIX}{digest}"


def stand_in(base: Path, project, create: bool):
    """The stand-in project holding the autosaves of the read-only ``project`` (``stand_in_folder``),
    of its classes; None when there is none and ``create`` is false. Safe against another process
    creating it meanwhile."""
    from qgn.project import Project, ProjectError
    from qgn.project_file import PROJECT_FILE

    folder = stand_in_folder(base, project.root)
    if not (folder / PROJECT_FILE).is_file():
        if not create:
            return None
        try:
            return Project.create(folder, [], project.classes)
        except ProjectError:  # another window created it meanwhile
            if not (folder / PROJECT_FILE).is_file():
                raise
    return Project.open(folder)


class LiveMarks:
    """The done marks one window keeps in scratch projects, named under a lock it holds while it
    lives (see the module docstring). ``record`` runs on the window's job thread."""

    def __init__(self):
        import uuid

        self.id = uuid.uuid4().hex
        self.marked: dict[str, set[str]] = {}  # scratch project's folder -> the paths this window marked
        self.held: dict[str, int] = {}  # scratch project's folder -> the descriptor holding its .live/<id>
        self.failing: set[str] = set()  # scratch projects' folders whose naming failed last (said once)

    def record(self, project, add=(), remove=()) -> None:
        """This window's marks in ``project`` gain ``add`` and lose ``remove`` (image paths): written
        before a mark is (and after one is cleared), so a start that sees a mark sees its name too.
        Where there are no folder locks (Windows) nothing can tell a live window: nothing is written.
        Best effort, never raising: the mark is written whatever happens here (a failure is said
        once on stderr), and a ``.live/<id>`` folder removed under the window is made again."""
        import sys

        root = str(project.root)
        marked = self.marked.setdefault(root, set())
        marked |= {same_path(p) for p in add}
        marked -= {same_path(p) for p in remove}
        try:
            self._name(root, marked)
        except OSError as exc:
            if root not in self.failing:
                print(f"qgn-studio: warning: cannot name this window's done marks in {Path(root) / LIVE} ({exc}); "
                      "another window's start may offer them", file=sys.stderr, flush=True)
            self.failing.add(root)
            return
        self.failing.discard(root)

    def _name(self, root: str, marked: set[str]) -> None:
        from qgn.fileio import atomic_write_bytes, lock_folder, make_folder

        folder = Path(root) / LIVE / self.id
        if root in self.held and not folder.is_dir():  # removed under the window: made and locked again
            os.close(self.held.pop(root))
        if root not in self.held:
            if not marked:
                return
            # made and locked under a name a start passes by, only then moved in: never taken for a dead one's
            made = make_folder(Path(root) / LIVE / f".{self.id}")
            fd = lock_folder(made, wait=False)
            if fd is None:
                return
            os.replace(made, folder)
            self.held[root] = fd
        atomic_write_bytes(folder / LIVE_MARKS, json.dumps(sorted(marked)).encode("utf-8"))

    def release(self) -> None:
        """The window is gone (closed, or a test's stand-in for a kill): its locks go."""
        for fd in self.held.values():
            os.close(fd)
        self.held.clear()


class Every(frozenset):
    """``live_marks`` when it cannot tell: every mark counts as a live window's (the safe side)."""

    def __contains__(self, item) -> bool:
        return True


def live_marks(project, own: LiveMarks | None = None) -> set[str]:
    """The image paths (``same_path``) whose done marks in ``project`` live windows other than ``own``
    keep; a dead window's bookkeeping found on the way is removed. Where it cannot tell — ``.live``
    or a window's folder in it cannot be opened (EACCES, EMFILE), a live window's list cannot be
    read — a window counts as live (``Every`` mark, when its list is not known)."""
    from qgn.fileio import lock_folder

    found: set[str] = set()
    root = Path(project.root) / LIVE
    try:
        folders = [f for f in root.iterdir() if f.is_dir() and not f.is_symlink() and not f.name.startswith(".")]
    except FileNotFoundError:
        return found
    except OSError:
        return Every()
    for folder in folders:
        if own is not None and folder.name == own.id:
            continue
        try:
            fd = lock_folder(folder, wait=False)
        except OSError:
            fd = None  # cannot be opened: as a live window's
        if fd is None:  # its window lives (or nothing can tell: no such window then wrote one)
            try:
                names = json.loads((folder / LIVE_MARKS).read_text(encoding="utf-8"))
                found |= {str(n) for n in names if isinstance(n, str)}
            except FileNotFoundError:
                pass  # a window that named no mark yet, or one dead whose list was removed
            except (OSError, ValueError, TypeError):
                return Every()
            continue
        try:
            (folder / LIVE_MARKS).unlink(missing_ok=True)
            folder.rmdir()
        except OSError:
            pass
        finally:
            os.close(fd)
    return found


def same_path(path) -> str:
    """How a mark's image is named in ``.live``: its resolved path."""
    return os.path.realpath(path)
