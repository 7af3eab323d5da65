"""A QGN Studio project: a folder that remembers images, their annotations, the classes, the model
and which images are done — and loses nothing when the app or the machine dies, or when a second
window or command writes to it at the same time.

Layout under ``root`` (project.json's format, how it is read and checked and its bound:
``qgn.project_file``)::

    project.json                 {"format": "qgn-project", "version": 1, "revision": R, "classes": {...},
                                  "model": str | null, "levels": 6, "generation": N (absent for 0),
                                  "images": [{"path": str, "key": str, "done": bool,
                                              "file": {"bytes": int, "sha256": str} (optional),
                                              "added": seconds since the epoch (optional)}, ...]}
    annotations/<key>.qgt        the saved annotation of each annotated image (generation 0)
    .autosave/<key>.qgt          the latest autosave of an image with unsaved edits (generation 0)
    annotations.g<N>/, .autosave.g<N>/   the same after N class edits; ``annotations`` is then a
                                 symbolic link to ``annotations.g<N>``, a stable path for scripts
    .class-edit.json             only while (or after a crash in) a class edit: its journal
    class-edits.json             the last class edits made (``qgn.project_class_edit``): what a window
                                 with unsaved edits of an older generation follows
    .bring-back.json             only while (or after a crash in) an add that may bring annotations
                                 back from removed/ (``qgn.project_bring_back``)
    removed/<key>.<what>.<time>.qgt  annotations of images taken out of the project (kept), each with
                                 a record ``….qgt.json`` of its image file (``qgn.project_removed``):
                                 adding that file back brings its annotation back
                                 (``qgn.project_bring_back``; what an add finished by another writer
                                 left there: ``removed/kept-by-unfinished-adds.json``)
    replaced/<key>.<time>.qgt    annotations an import of corrections replaced (kept)
    conflicts/<name>.<time>.qgt  a saved annotation another writer's save replaced unseen (kept; see
                                 ``save_annotation``), and unsaved maps the app could not follow
                                 through a class edit made elsewhere; ``<key>.undone-<hash>.qgt``: an
                                 autosave of undone edits ``discarded/`` could not take (``_keep_undone``)
    head.safetensors (+ .json)   the per-project head (``qgn.project_head``), refitted after saves

**Opening never deletes or writes.** ``open`` reads project.json and checks it against the folders
on disk: a generation folder that holds annotations but that project.json does not name (and no
class-edit journal explains) means project.json is an older copy (a backup, a sync conflict):
``ProjectError`` names both, and nothing is touched. A copy of the project made by a tool that
follows links (``cp -rL``) has a real ``annotations`` folder of copies of the current generation's
files where the link was: it opens as the project it is a copy of, and its first write moves that
folder to ``removed/`` and makes the link again (``qgn.project_generations.copied_link``); one that holds
other files is named as such (``check_folders``).

**One writer at a time, and no blind overwrite.** Every write takes an exclusive lock on the
project folder (``flock``; released by the system when a writer dies), then compares project.json
with the copy this object last read or wrote (its bytes' digest, and ``revision``, a counter every
write increments):

* unchanged: the write goes ahead;
* another writer added images, marked some done or changed the model: the change is merged (this
  object adopts the file's images and model, then applies its own change) — ``set_done``,
  ``add_images``, ``set_model``, ``save_annotation``, ``autosave``;
* the classes, the generation or the levels changed (a class edit elsewhere), or the file cannot
  be read: ``ProjectChangedError``, nothing written; the caller reloads (``Project.open``).
  ``save`` (write this object's whole state) refuses any change made elsewhere.

**A file system without locks** (NFSv3 without its lock manager, some FUSE or SMB mounts: ``flock``
fails with ENOLCK): refusing would leave the project unopenable and unsavable there, so a write goes
on without the lock (kept apart only within its process, per folder and as long as the lock is
waited for: ``qgn.fileio.folder_locked``) and says so
once per process and file system (``unlocked_text``; the app at open: ``writers_unprotected``). The
digest check above still refuses most unseen overwrites and every file is still written whole, but
two writers writing at the same moment are not kept apart. What rests on the lock's proof that no
live writer is mid-write is not done there: a class edit is refused, and the leftovers of writers
killed mid-write (a class edit's journal, an add's note, old temporaries) are left as they are, for
the first writer with locks. An add never writes its note over another's there: it writes its own
beside it and says so (``project_bring_back.unfinished_add_text``).

Class edits (``qgn.project_class_edit.apply_class_edit``) hold the lock for their whole run, write every
annotation and autosave anew into the next generation's folders, then swap project.json (the
commit), then remove the old folders; the journal ``.class-edit.json`` records the generations and
revisions, so that the next writer can *prove* which folders a crash left over (the staging folders
of an uncommitted edit, or the old folders of a committed one) and removes only those
(``qgn.project_generations``: the generation folders, the journal's format, the recovery rule). The class
set of a project with annotations changes only this way: ``save`` refuses new classes on top of
files written with the old ones.

Autosaves are user data: only ``save_annotation`` (the user's save) removes one; ``discard_autosave``
(the user's discard) moves it to ``discarded/`` (never deleted); a class edit moves them (remapped)
into the new generation.

**Two writers saving one image.** A saved annotation is one file, and the lock orders the writes but
cannot tell a save made from a stale read. A writer that read an annotation passes what it read
(``annotation_version``: the file's inode, mtime and size, or None for no file) to
``save_annotation(..., over=)``; when the file has changed since, the other writer's file is moved to
``conflicts/`` before this one is written, and the result names it. Autosaves likewise: a writer
passes the version of the autosave it wrote last (``autosave(over=)``, ``save_annotation(autosave=)``,
``discard_autosave(ours=)``), so a second window editing the same image never overwrites, removes or
discards the first's autosave: it is moved to ``conflicts/`` or kept. Nothing is lost either way.

Image paths are stored relative to ``root`` (POSIX separators) when the image lies inside it, and
absolute otherwise; ``ProjectImage.path`` is always absolute. Keys are unique, file-name-safe
names derived from the image stems (``a``, ``a-2``, … when stems repeat) and never change.

Every write goes through ``qgn.fileio.atomic_write_bytes`` (temporary file in the same folder,
fsync, rename): a reader sees the old file or the new one, never a partial one. Temporary files
are named ``.<name>.<random>.tmp`` and are never read as annotations; the first write of a Project
object (holding the lock, so no live writer of the project is mid-write) removes those older than
``STALE_TEMP_SECONDS``.
"""
from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from .classes import ClassSet
from .fileio import (
    OutsideRootError, atomic_write_bytes, dangling_link_text, folder_lock_problem, folder_locked, path_inside,
    folder_locks_work, remove_stale_temporaries, same_bytes, straight_path, unlink_quietly, write_problem,
)
from .formats import FORMATS
from . import project_bring_back
from .project_bring_back import (  # noqa: F401 (re-exported: imported from here)
    BRING_BACK_FILE, BRING_BACK_PER_IMAGE, BRING_BACK_SLACK, LATE_KEPT_FILE, NOTES_DIR, bring_back_blocked,
)
from .project_generations import (
    ANNOTATION_DIR, GENERATION_DIR, JOURNAL_FILE, _followed_link_message, copied_link, finish_class_edit,
    generation_dirs, generation_folders, journal_state, read_journal, remove_folders, restore_copied_link,
)
from . import project_file
from .project_errors import RESTORE_ADVICE, ProjectBusyError, ProjectChangedError, ProjectError, stopping
from .project_file import (
    PROJECT_FILE, PROJECT_FORMAT, PROJECT_VERSION, ProjectFile, bound_text, marked_as_project,
    project_json_bytes, read_project_bytes, read_project_file,
)
from .project_images import ProjectImage, ProjectImagesMixin, _file_key, path_key
from .project_kept import _resolved as _resolved_name
from .project_kept import (TAKEN_BY_ANOTHER, KeptCopy, _cut, _keep_beside, _put_back, bring_back_taken, keep_undone, kept_copies, kept_folder, kept_path,
                           move_aside, name_aside, remove_if_version, remove_kept)
from .project_removed import (RECORD_SUFFIX, REMOVAL_KIND, REMOVED_DIR, RemovedAnnotation, file_note, record_path,
                              write_record)
from .quadtree import NUM_LEVELS
from .quadtree.label_io import read_label_file

CONFLICTS_DIR = "conflicts"  # annotations a save would have replaced unseen (never deleted)
REPLACED_DIR = "replaced"  # annotations an import of corrections replaced (never deleted)
DISCARDED_DIR = "discarded"  # autosaves the user discarded (never deleted: a wrong click is undone by hand)
#: A saved annotation's identity on disk: (inode, mtime in ns, size), or None when there is none.
AnnotationVersion = tuple[int, int, int] | None
#: ``save_annotation(over=ANY)``: replace whatever is saved (an import's choice, never the app's).
ANY = object()
HEAD_FILE = "head.safetensors"  # the per-project head, in its own file (never the model's)
STALE_TEMP_SECONDS = 60.0
#: How long a writer waits for another writer of the project (a class edit of many files) to finish.
#: ``QGN_PROJECT_LOCK_TIMEOUT`` (seconds) overrides it; read when used (``lock_timeout_s()``).
LOCK_TIMEOUT_S = 60.0
LOCK_TIMEOUT_ENV = "QGN_PROJECT_LOCK_TIMEOUT"


def lock_timeout_s() -> float:
    """``QGN_PROJECT_LOCK_TIMEOUT`` when set (seconds, finite and not negative), else ``LOCK_TIMEOUT_S``."""
    from .env import env_seconds

    return env_seconds(LOCK_TIMEOUT_ENV, LOCK_TIMEOUT_S, example=60, zero=True)


@dataclass(frozen=True)
class SavedAnnotation:
    """What ``save_annotation`` did: ``version`` of the file it wrote (pass it as ``over`` next time)
    and ``parked``, where another writer's annotation that it would have replaced unseen went.
    ``undone_aside``: where the autosave holding undone edits was kept, when there is something to say
    (``Project._keep_undone``): ``undone_error``, why ``discarded/`` could not take it (kept in
    ``conflicts/`` instead; ``undone_aside`` None: neither folder took it, and a save left the autosave in
    place, offered at the next open); ``undone_left``, why a save could not remove the autosave once its
    bytes were kept (it stays, or another process put it back)."""

    version: AnnotationVersion
    parked: Path | None = None
    # the autosave holding undone edits: where kept, why not in discarded/, why not removed after
    undone_aside: Path | None = None
    undone_error: Exception | None = None
    undone_left: Exception | None = None


def file_version(path: Path) -> AnnotationVersion:
    """(inode, mtime_ns, size) of ``path``, None when it is not there: every atomic write (a new
    file renamed over the old) changes it."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):  # or a plain file where its folder belongs
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


#: The longest key ``_key_for`` makes. Keys name files with more around them - ``.<key>.qgt.<random>.tmp``
#: while written, ``<key>.annotation.<time>-<n>.qgt.json`` beside a removed one and its temporary
#: (key + 53) - and a file name has at most 255 bytes: a longer image stem is cut.
MAX_KEY_CHARS = 150


def _key_for(path: Path, taken: set[str], has_files: Callable[[str], bool] = lambda key: False) -> str:
    """A new key for the image at ``path``: its stem made a safe file name, ``-2``, ``-3``… while
    ``taken`` (lower case) or ``has_files(key)`` (files of that name on disk that no image owns)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem).strip("._")[:MAX_KEY_CHARS].rstrip("._") or "image"
    key, n = stem, 1
    while key.lower() in taken or has_files(key):  # case-insensitive: keys name files on such disks too
        n += 1
        key = f"{stem}-{n}"
    return key


#: What a refused write of project.json advises, unless its caller says better (adding images).
SPLIT_ADVICE = "the project holds more images than one project file can list; move some into another project"


def images_text(count: int) -> str:
    return f"{count} image" if count == 1 else f"{count} images"


def _folder_lock(root: Path, timeout_s: float):
    """The project's write lock: ``qgn.fileio.folder_locked`` on the folder ``root`` (no lock file,
    released by the system when the process dies), yielding None, or the error that says the folder's
    file system gives no locks (said once, ``_say_unlocked``). ProjectBusyError after ``timeout_s``."""
    def busy() -> ProjectBusyError:
        return ProjectBusyError(
            f"{root}: another window or command has been writing to this project for more than "
            f"{timeout_s:.0f} s (a class edit of many files?); try again when it is done")

    return folder_locked(root, timeout_s, busy, lambda exc: _say_unlocked(root, exc))


def unlocked_text(root: Path, exc: OSError) -> str:
    """What a project in ``root`` on a file system without locks (``exc``: ENOLCK …) means, for people."""
    from .shown import path_text

    why = exc.strerror or os.strerror(exc.errno or 0)
    return (f"{path_text(root)} is on a file system that gives no locks ({why}): the project's writers (the app's "
            "windows, qgn serve, qgn import) are not kept from writing to it at the same moment, and one could "
            "replace another's change unseen - write to it from one at a time (each file is still written whole). "
            "Class edits are refused there")


_UNLOCKED_SAID: set = set()


def _say_unlocked(root: Path, exc: OSError) -> None:
    """``unlocked_text`` on stderr, once per process and file system."""
    import sys

    try:
        key = os.stat(root).st_dev
    except OSError:
        key = str(root)
    if key in _UNLOCKED_SAID:
        return
    _UNLOCKED_SAID.add(key)
    print(f"qgn: warning: {unlocked_text(root, exc)}", file=sys.stderr, flush=True)


def _made_folders(root: Path) -> list[Path]:
    """Make ``root`` and its missing parents one level at a time: the folders this call made itself,
    deepest first (one that was there, another process made meanwhile, or that a '..' names is not
    among them); on a failure part way, those it made are removed again (while empty)."""
    made: list[Path] = []
    try:
        for folder in (*reversed(root.parents), root):
            try:
                os.mkdir(folder)
            except FileExistsError:
                continue
            made.append(folder)
        root.mkdir(parents=True, exist_ok=True)  # (there: a no-op; a file, a loop of links: its own error)
    except BaseException:
        _remove_empty(made[::-1])
        raise
    return made[::-1]


def _remove_empty(folders: list[Path]) -> None:
    """After a failed ``Project.create``: ``folders`` (deepest first, those it made) while empty - a
    folder that holds anything stays, and so does every one above it. Best effort."""
    for folder in folders:
        try:
            folder.rmdir()  # only an empty one
        except OSError:
            break


class Project(ProjectImagesMixin):
    """A project folder (see the module docstring). Use ``create`` or ``open``.

    root: the folder (absolute); classes: the ClassSet; model: a model file (stored like image
    paths when the file exists, else kept as given, e.g. a bundled model's name) or None;
    images: the ProjectImage list in order; levels: quadtree levels of the .qgt annotations;
    generation: how many class edits the folders went through; revision: project.json's counter
    as this object last read or wrote it."""

    def __init__(self, root: Path, classes: ClassSet, model: str | None, images: list[ProjectImage], levels: int = NUM_LEVELS,
                 generation: int = 0, revision: int = 0):
        self.root = Path(root).resolve()
        self.classes = classes
        self.model = model
        self.images = images
        self.levels = levels
        self.generation = generation
        self.revision = revision
        self._digest: str | None = None  # of project.json as last read or written; None: not yet written
        self._kept_owners = None  # (list mark, {("key"|"stem", head): [(key, shown name)]}, list): ``kept_copies``' index
        self.taken_left: list = []  # (private name, own name, why, kept as, error): crashed writers' files not put back (``taken_left_text``)
        self._saved_classes = classes
        self._lock = threading.RLock()
        # held only to replace ``images`` together with their path index, and to read the two as a pair:
        # a look-up on another thread (the app's UI thread) never sees a new list with the old index
        self._swap = threading.Lock()
        # counted up (under ``_swap``) at every change of ``images`` or of an image's path: an index is
        # published only for the generation it was built from (a look-up that builds while a writer
        # repoints or adds publishes nothing: its index may hold the old paths)
        self._list_generation = 0
        self.merges = 0  # how often this object adopted another writer's changes (readers watch it)
        self._depth = 0
        self._cleaned = False
        #: in a write (``writing``): the error that says the folder's file system gives no locks, else None
        self.no_lock: OSError | None = None
        # (images list, its length, {normalised path: image}, twins, _list_generation): _indexed()
        self._by_path: tuple | None = None
        self._stored_paths: dict[str, str] = {}  # path → as project.json stores it (_stored)
        self._stored_keys: dict[str, tuple[str, Path]] = {}  # key → (its entry's path as read, the path it gave)
        self._adopted: dict[str, str] = {}  # key → its stored path in project.json as last read or written

    @property
    def annotation_dir(self) -> str:
        """The folder (under root) of the current generation's saved annotations."""
        return generation_dirs(self.generation)[0]

    @property
    def head_path(self) -> Path:
        """The per-project head's file (``qgn.project_head.ProjectHead``; its .json beside it)."""
        return self.root / HEAD_FILE

    @property
    def autosave_dir(self) -> str:
        """The folder (under root) of the current generation's autosaves."""
        return generation_dirs(self.generation)[1]

    # ------------------------------------------------------------------ create / open / save
    @classmethod
    def create(
        cls, root: str | os.PathLike, images: Iterable, classes: ClassSet, model: str | None = None, levels: int = NUM_LEVELS,
        done: Iterable = (),
    ) -> "Project":
        """A new project in ``root`` (created if missing). Refuses a folder that already holds a
        project (open it instead) or other files. ``done``: image paths marked done, written with the
        project (one write: a failure never leaves a project without its marks). A create that fails
        leaves the folder as it was: the project.json it wrote and the folders it made are removed
        (only those: never another writer's file, never a folder that holds anything)."""
        from .classes import check_unique_names

        root = Path(root)
        if (root / PROJECT_FILE).exists():
            raise ProjectError(f"{root} already holds a project; open it instead of creating one")
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise ProjectError(f"{root} is not an empty folder; choose an empty or new folder for the project")
        # saved data's rule only: the names came through a door (an importer, a classes file, a class
        # edit) or were saved before, and a loose .qgt's or a read-only project's autosave (the scratch
        # project, the stand-in) or "save as project" must take the names it holds as they are
        check_unique_names(classes.names, "the project's classes")
        made = _made_folders(root)
        try:
            project = cls(root, classes, model, [], levels)
            project.add_images(images, save=False)
            for path in done:
                project.image_for(path).done = True
            with project.writing(merge=False):
                if (root / PROJECT_FILE).exists():  # another process created it meanwhile
                    raise ProjectError(f"{root} already holds a project; open it instead of creating one")
                try:
                    project._commit(change=f"creating it with {images_text(len(project.images))}",
                                    advice="create it with fewer images and put the others in another project")
                except BaseException:
                    # still under the lock, which found no project.json: one there now is this create's
                    # own, renamed into place before a later step failed (a folder's fsync) - unless
                    # nothing keeps other processes out here (no locks): then it may be theirs, and stays
                    if project.no_lock is None and folder_locks_work():
                        unlink_quietly(root / PROJECT_FILE)
                    raise
        except BaseException:
            _remove_empty(made)
            raise
        return project

    @classmethod
    def open(cls, root: str | os.PathLike, should_stop: Callable[[], bool] | None = None) -> "Project":
        """The project in ``root``, read without writing or deleting anything. FileNotFoundError
        without project.json, ProjectError when it is corrupt, of another format, of a newer
        version, or disagrees with the annotation folders on disk. ``should_stop()`` (None: never;
        an open the user can cancel) is polled between the steps of the read and every
        ``STOP_CHECK_EVERY`` images in them: ReadStopped when true (~2.4 s at 100,000 images)."""
        root = Path(root)
        parsed = read_project_file(root / PROJECT_FILE, should_stop)
        resolved = root.resolve()
        check_folders(resolved, parsed)
        project = cls(root, parsed.classes, None, [], parsed.levels, parsed.generation, parsed.revision)
        project._adopt(parsed, should_stop)
        return project

    def _adopt(self, parsed: ProjectFile, should_stop: Callable[[], bool] | None = None) -> None:
        """Take project.json's images, model and revision (keeping the ProjectImage objects of
        images already known — same key, same path — so that callers holding one see its new
        state). A key that now names another file (another writer removed the image and added
        one of the same stem) gets a new object: one held from before never turns into the other
        image, and ``_own`` refuses it (its edits must not become the other image's annotation).
        ``should_stop``: ``open``'s (ReadStopped leaves this object half adopted: ``open`` drops it)."""
        known = {im.key: im for im in self.images}
        before, adopted = self._adopted, {}
        images = []
        for stored, key, done, noted, added in stopping(parsed.images, should_stop):
            image = known.get(key)
            if image is not None and before.get(key) == stored:  # as read last time: the same file
                path = image.path
            else:
                path = self._absolute(self.root, stored)
                if image is None or (image.path != path and path_key(image.path) != path_key(path)):
                    image = ProjectImage(path, key)
            image.path, image.done, image.file = path, done, noted
            if added is not None:  # (none: an older version's rewrite dropped it - this writer's stays, written back)
                image.added = added
            adopted[key] = stored
            self._stored_paths[str(image.path)] = stored  # written back as it was read
            self._stored_keys[key] = (stored, image.path)  # (two entries spelling one file apart: each its own)
            images.append(image)
        self._replace_images(images)
        self._adopted = adopted
        model = parsed.model
        if model is not None and not Path(model).is_absolute() and _exists(self.root / model):
            model = str(self.root / model)
        self.model = model
        self.classes = self._saved_classes = parsed.classes
        self.levels, self.generation, self.revision = parsed.levels, parsed.generation, parsed.revision
        self._digest = parsed.digest

    def save(self) -> None:
        """Write this object's state as project.json (atomically) — refused
        (ProjectChangedError) when another writer changed the file since this object read or
        wrote it, and (ProjectError) when it would give annotated files another class set."""
        with self.writing(merge=False):
            self._commit()

    def refresh(self, blocking: bool = True) -> bool:
        """Re-read project.json (nothing written): adopt images, done flags and model another
        writer changed; True when anything changed. ProjectChangedError when the classes,
        generation or levels changed (reload with ``Project.open``), ProjectError when unreadable.
        Without ``blocking``, False at once while a write of this object is in progress."""
        if not self._lock.acquire(blocking=blocking):
            return False
        try:
            parsed = read_project_file(self.root / PROJECT_FILE)
            check_folders(self.root, parsed)
            return self._merge(parsed)
        finally:
            self._lock.release()

    def changed_on_disk(self) -> bool:
        """Whether project.json differs from what this object last read or wrote (cheap: a
        digest of its bytes; True when it is missing or unreadable)."""
        try:  # over the bound (ProjectError, a ValueError): not read, opening it says why; a pipe: never waited on
            data = read_project_bytes(self.root / PROJECT_FILE)
        except (OSError, ValueError):
            return True
        return hashlib.sha256(data).hexdigest() != self._digest

    def _merge(self, parsed: ProjectFile) -> bool:
        if parsed.digest == self._digest:
            return False
        if (parsed.classes, parsed.generation, parsed.levels) != (self._saved_classes, self.generation, self.levels):
            what = "classes" if parsed.classes != self._saved_classes else "annotation folders (a class edit)"
            raise ProjectChangedError(
                f"{self.root / PROJECT_FILE} was changed by another window or command since it was opened "
                f"(its {what}); nothing was written: reload the project and do it again")
        self._adopt(parsed)
        self.merges += 1
        return True

    @contextmanager
    def writing(self, merge: bool = True) -> Iterator["Project"]:
        """Hold the project's write lock (reentrant within this object) with project.json in sync:
        changes of other writers merged (``merge``) or refused (ProjectChangedError). Leftovers of
        crashed writers are removed once per object, and a crashed class edit whenever its journal
        is found, under the lock (see the module docstring); likewise an unfinished add's note."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            with _folder_lock(self.root, lock_timeout_s()) as no_lock:
                self._depth, self.no_lock = 1, no_lock
                try:
                    self._sync(merge)
                    if no_lock is not None:
                        pass  # no lock proves a writer dead: what one left half-done is left as it is
                    # a journal under the lock is a class edit that died (an editor holds the lock
                    # throughout): finish or roll it back now, before this writer's revision moves
                    # past the ones the journal names, even if this object cleaned up once already
                    elif not self._cleaned or (self.root / JOURNAL_FILE).exists():
                        self._clean_up()
                        self._cleaned = True
                    elif project_bring_back.notes_to_finish(self.root):
                        # likewise an add killed since (an adder holds the lock from its note to its
                        # end): finished now, before this writer's own add could replace its note
                        self._finish_bring_back()
                    yield self
                finally:
                    self._depth = 0

    def _sync(self, merge: bool) -> None:
        path = self.root / PROJECT_FILE
        if self._digest is None:  # never written: a new project
            if path.exists():
                parsed = read_project_file(path)
                self._merge_or_refuse(parsed, merge)
            return
        try:
            parsed = read_project_file(path)
        except FileNotFoundError:
            raise ProjectChangedError(f"{path} was removed by another window or command; nothing was written") from None
        except ProjectError as exc:
            raise ProjectChangedError(f"{exc}; nothing was written (another program changed it)") from None
        self._merge_or_refuse(parsed, merge)

    def _merge_or_refuse(self, parsed: ProjectFile, merge: bool) -> None:
        if parsed.digest == self._digest:
            return
        if not merge:
            raise ProjectChangedError(
                f"{self.root / PROJECT_FILE} was changed by another window or command since it was opened; "
                "nothing was written: reload the project and do it again")
        self._merge(parsed)

    def _commit(self, class_edit: bool = False, change: str = "saving it", advice: str = SPLIT_ADVICE) -> None:
        """Write project.json (the caller holds ``writing``); the revision goes up by one. ``change``
        (what the caller does) and ``advice``: said when the file would be over the bound, not written."""
        assert self._depth, "project.json is written only under the project's write lock"
        if self.classes != self._saved_classes and not class_edit and self._digest is not None:
            if self._has_files():
                old = self._saved_classes
                self.classes = old
                raise ProjectError(
                    f"{self.root}: its annotations were written with the classes {list(old.names)[:8]}; giving the "
                    "project another class set would misread them. Change classes with a class edit "
                    "(qgn.classes_edit: rename, add, merge, delete), which rewrites the files too")
        doc = {
            "format": PROJECT_FORMAT, "version": PROJECT_VERSION, "revision": self.revision + 1,
            "classes": self.classes.to_json(),
            "model": self._stored(self.model) if self.model and Path(self.model).exists() else self.model,
            "levels": self.levels,
            "images": [self._entry(im) for im in self.images],
        }
        if self.generation:
            doc["generation"] = self.generation
        data = project_json_bytes(doc)
        if len(data) > project_file.MAX_PROJECT_FILE_BYTES:  # never a file that no QGN would read back
            raise ProjectError(f"{self.root}: {change} was refused: its {PROJECT_FILE} would be {len(data) / 1e6:.1f} MB "
                               f"with {images_text(len(self.images))}, more than QGN reads of a project file "
                               f"({bound_text()}); nothing was written: {advice}")
        atomic_write_bytes(self.root / PROJECT_FILE, data)
        self._adopted = {entry["key"]: entry["path"] for entry in doc["images"]}
        self.revision += 1
        self._digest = hashlib.sha256(data).hexdigest()
        self._saved_classes = self.classes

    def _entry(self, image: ProjectImage) -> dict:
        read = self._stored_keys.get(image.key)
        stored = read[0] if read is not None and read[1] is image.path else self._stored(image.path)
        entry = {"path": stored, "key": image.key, "done": image.done}
        if image.file is not None:
            entry["file"] = {"bytes": image.file[0], "sha256": image.file[1]}
        if image.added is not None:
            entry["added"] = round(image.added, 3)
        return entry

    def note_image_file(self, image: ProjectImage) -> None:
        """Remember the image file's size and SHA-256 (its annotation was just saved): written to
        project.json when they changed, so that ``image_file_changed`` can tell later that another
        file took its name. Reads the whole file: call it off the UI thread."""
        noted = file_note(image.path)
        if noted is None or noted == image.file:
            return
        with self.writing():
            image = self._own(image)
            before, image.file = image.file, noted
            try:
                self._commit(change=f"noting the size and SHA-256 of {image.path.name}")
            except BaseException:
                image.file = before
                raise

    def image_file_changed(self, image: ProjectImage) -> str | None:
        """Why ``image``'s file is not the one its annotation was saved for (another file of the same
        name: swapped or replaced), or None (the same, nothing noted — an older project — or
        unreadable). Reads the whole file when its size is the same: call it off the UI thread."""
        if image.file is None:
            return None
        try:
            size = image.path.stat().st_size
        except OSError:
            return None
        if size != image.file[0]:
            return f"it was {image.file[0]} bytes when its annotation was saved, it is {size} bytes now"
        noted = file_note(image.path)
        if noted is not None and noted != image.file:
            return "its content changed since its annotation was saved (same size, other bytes)"
        return None

    def _has_files(self) -> bool:
        return any(any((self.root / folder).glob("*.qgt")) for folder in (self.annotation_dir, self.autosave_dir)
                   if (self.root / folder).is_dir())

    @staticmethod
    def _absolute(root: Path, stored: str) -> Path:
        path = Path(stored)
        return path if path.is_absolute() else root / path

    def _stored(self, path) -> str:
        """A path as project.json stores it: relative (POSIX) inside the root, else absolute. Kept
        per path: resolving 20,000 image paths at every write of project.json took a second. A path
        a loop of symbolic links stands in the way of is spelled as typed: one such file never stops
        a write of project.json (``Path.resolve`` raised RuntimeError for it)."""
        known = self._stored_paths.get(str(path))
        if known is not None:
            return known
        absolute = straight_path(path)  # link/../x.png: the file the system opens
        stored = str(absolute)
        for candidate in (absolute, _resolved(absolute)):  # as typed, or through symbolic links (None: a loop)
            if candidate is None:
                continue
            try:
                stored = candidate.relative_to(self.root).as_posix()
                break
            except ValueError:
                pass
        self._stored_paths[str(path)] = stored
        return stored

    # ------------------------------------------------------------------ images
    def add_images(self, paths: Iterable, save: bool = True, removed: list | None = None) -> list[ProjectImage]:
        """Add images (paths already in the project are not added twice); the ProjectImage of
        each path, in order. FileNotFoundError (nothing added) if a path is not a file. With
        ``save``, merged into project.json under the write lock; when that write fails (a read-only
        folder, a full disk) the images are not added here either: this object lists what
        project.json holds.

        A new image whose file was removed from the project before gets its annotation back
        (``bring_back``); ``removed``, when given, is extended by a ``RemovedAnnotation`` for each
        annotation found, brought back or not (and why)."""
        paths = [straight_path(p) for p in paths]  # link/../x.png: the file the system opens
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"not image files: {', '.join(missing[:5])}")
        if not save:
            return self._add(paths)
        with self.writing():
            before = len(self.images)
            out = self._add(paths)
            if len(self.images) != before:
                added, pending = self.images[before:], None
                try:
                    pending = self._note_bring_back(added)
                    self._commit(change=f"adding {images_text(len(added))}",
                                 advice="put further images in another project")
                except BaseException as exc:
                    with self._swap:  # the list as it was; its index is built again from it
                        del self.images[before:]
                        self._list_generation += 1
                        self._by_path = None
                    if pending is not None and (isinstance(exc, ProjectError) or not self.changed_on_disk()):
                        # refused before anything was written (over the bound, the classes), or the write
                        # failed with project.json as before (a full disk): nothing listed, nothing to
                        # finish - left, without locks it was said as an add cut short. Kept where
                        # project.json changed (a failure after its rename): the next writer finishes it
                        unlink_quietly(pending)
                    raise
                found = self.bring_back(added)
                if pending is not None:  # (left in place when bring_back fails or the writer is killed: the next
                    unlink_quietly(pending)  # writer with locks finishes it)
                if removed is not None:
                    removed.extend(found)
            return out

    # ------------------------------------------------------------------ bringing annotations back (``qgn.project_bring_back``)
    def _note_bring_back(self, images: list[ProjectImage]) -> Path | None:
        """Under the lock, before project.json lists ``images``: note them for the next writer
        (``project_bring_back.note_bring_back``); the note, or None."""
        return project_bring_back.note_bring_back(self, images)

    def _finish_bring_back(self) -> None:
        """Under the lock: finish an add killed after project.json listed its images
        (``project_bring_back.finish_bring_back``)."""
        project_bring_back.finish_bring_back(self, self.root / PROJECT_FILE, project_file.MAX_PROJECT_FILE_BYTES)

    def bring_back(self, images: list[ProjectImage], moved: dict | None = None) -> list[RemovedAnnotation]:
        """Under the write lock, for images just added: their annotations and autosaves in removed/
        moved back, or why not (``project_bring_back.bring_back``)."""
        return project_bring_back.bring_back(self, images, moved)

    def kept_by_late_adds(self) -> list[str]:
        """What adds cut short and finished later kept in removed/, said for people when the project
        opens (reads only; ``project_bring_back.kept_by_late_adds``)."""
        return project_bring_back.kept_by_late_adds(self)

    def _noted_as(self, image: ProjectImage, noted: str, folders: dict) -> bool:
        """Whether ``noted``, the path an add's note (``qgn.project_bring_back``) gives the image of
        ``image``'s key, is ``image``'s file: as project.json spells it (what a note holds), or - a
        note of an older version, which held the path as the add was given it (through a link to the
        project's folder, or to the image file) - any spelling of the same file (``_file_key``, then
        the file's resolved path). Not by the path's text alone: project.json holds an image inside the
        project relative to it, read back under the project's resolved folder."""
        if noted in (self._stored(image.path), str(image.path)):
            return True
        if not os.path.isabs(noted):
            return False
        try:
            return (_file_key(noted, folders) == _file_key(image.path, folders)
                    or os.path.realpath(noted) == os.path.realpath(image.path))
        except (ValueError, OSError):  # a NUL byte, a path too long: not this image's
            return False

    def _add(self, paths: list[Path]) -> list[ProjectImage]:
        out = []
        taken = {im.key.lower() for im in self.images}
        cached, folders = self._indexed(), {}
        index, twins = cached[2], cached[3]
        # a key whose annotation or autosave is on disk though no image has it (project.json edited or
        # restored by hand, a removal killed after its write) is not given out: the new image would
        # show that file as its own, and its first save would replace it
        has_files = self._files_on_disk(len(paths))
        for path in paths:
            existing = index.get(path_key(path))
            if existing is None:  # the same file spelled otherwise (a linked folder) is the same image
                existing = index.get(_file_key(path, folders))
            if existing is None:
                existing = ProjectImage(path, _key_for(path, taken, has_files), added=time.time())
                taken.add(existing.key.lower())
                keys = path_key(path), _file_key(path, folders)  # a realpath: not under the lock
                with self._swap:  # the list and its index changed as one
                    self.images.append(existing)
                    index[keys[0]] = existing
                    index.setdefault(keys[1], existing)
                    self._list_generation += 1
                    self._by_path = (self.images, len(self.images), index, twins, self._list_generation)
            out.append(existing)
        return out

    def _files_on_disk(self, count: int) -> Callable[[str], bool]:
        """Whether a key has an annotation or autosave on disk: a look per key for a few new images,
        one listing of the two folders (names compared ignoring case) for ``count`` of many."""
        folders = [f for f in (self.root / self.annotation_dir, self.root / self.autosave_dir) if f.is_dir()]
        if count <= 64:
            return lambda key: any(os.path.lexists(folder / f"{key}.qgt") for folder in folders)
        names = set()
        for folder in folders:
            with os.scandir(folder) as entries:
                names.update(entry.name.lower() for entry in entries)
        return lambda key: f"{key}.qgt".lower() in names

    def remove_image(self, image: ProjectImage, notes: list | None = None) -> list[Path]:
        """Take ``image`` out of the project, merged into project.json under the write lock.
        Nothing is deleted: its saved annotation and autosave move to ``removed/`` (so an image
        added later under the same key never inherits them); returns where they went.

        All or nothing: each file is first linked (else copied) into ``removed/``, project.json is
        written, and only then are the originals unlinked. A write of project.json that fails (a
        full disk) leaves the image, its annotation and its autosave where they were; a writer
        killed before that write leaves them there too (and a spare copy in ``removed/``). Each record notes the
        image file (its size and SHA-256: as noted after its last save, else read now, where it can be - the
        whole file: call it off the UI thread), so that Kept copy… tells this picture from another. ``notes``: where given,
        what did not block the removal is added to it in plain words (a record alone, ``_write_removal``, that
        could not be written)."""
        with self.writing():
            own = self._own(image)
            kept: list[tuple[Path, Path]] = []
            with self._swap:
                images, indexed, generation = self.images, self._by_path, self._list_generation
            if indexed is not None and (indexed[0] is not images or indexed[4] != generation):
                indexed = None  # not the index of this list and its paths: not to be put back as one
            sources = [("annotation", self.annotation_path(own))]
            try:
                sources.append(("autosave", self.autosave_path(own)))
            except OutsideRootError:  # an autosave folder linked out of the project: none of its autosaves to move
                pass
            marker = None  # the record alone of a removal that moves nothing (``_write_removal``)
            noted: list = []  # the image file's note, read once where a record is written
            try:
                for kind, source in sources:
                    if source.is_file():
                        _check_removable(source)
                        # named first, never over another writer's file of the same second; its record then
                        target = name_aside(source, kept_folder(self.root, REMOVED_DIR), f"{own.key}.{kind}")
                        kept.append((source, target))
                        if not noted:  # never noted (Project.create, the library, the CLI): read now (job thread)
                            noted.append(own.file if own.file is not None else file_note(Path(own.path)))
                        write_record(target, kind, own.key, own.path, self.generation, self.classes, noted[0])
                if not kept:
                    marker = self._write_removal(own, notes)
                self._replace_images([im for im in images if im.key != own.key], without=own)
                self._commit(change=f"removing {own.path.name}")
            except BaseException:
                with self._swap:  # the list and its index as they were
                    self._list_generation += 1
                    self.images = images
                    self._by_path = None if indexed is None else indexed[:4] + (self._list_generation,)
                for _, target in kept:
                    unlink_quietly(target)
                    unlink_quietly(record_path(target))
                if marker is not None:
                    unlink_quietly(marker)
                raise
            for source, _ in kept:
                unlink_quietly(source)
        return [target for _, target in kept]

    def _write_removal(self, image: ProjectImage, notes: list | None = None) -> Path | None:
        """(``remove_image``, nothing to move) A record alone in removed/, ``<key>.removal.<time>.json`` (noting
        the image file: see ``qgn.project_removed``) where the key has kept copies - its Discards: the image given
        the key next lists them as "maybe" (``qgn.project_kept._earlier_holder``), not as its own. None where it
        has none. Only a dating hint: written as far as it can be (removed/ a file, a link out, a full disk: none,
        said in ``notes``), never blocking the removal. One per such removal: they pile up, a few hundred bytes
        each, as removed/'s kept files do (nothing a project keeps aside is deleted)."""
        try:
            if not kept_copies(self.root, image.key, folders=(DISCARDED_DIR, CONFLICTS_DIR, REPLACED_DIR)):
                return None
            note = image.file if image.file is not None else file_note(Path(image.path))
            target = kept_path(kept_folder(self.root, REMOVED_DIR), f"{_cut(image.key)}.removal", RECORD_SUFFIX)
            write_record(target.with_name(target.name[:-len(RECORD_SUFFIX)]), REMOVAL_KIND, image.key, image.path,
                         self.generation, self.classes, note)  # (written at the name + RECORD_SUFFIX: ``target``)
        except (OSError, ValueError) as exc:
            if notes is not None:
                notes.append(f"no record of {image.path.name}'s removal could be written in {self.root / REMOVED_DIR} "
                             f"({exc}): Kept copy… of the next image given its key {image.key!r} may list its "
                             "Discards as that image's own")
            return None
        return target

    def repoint(self, moves: list[tuple[ProjectImage, Path]]) -> None:
        """Point each image of ``moves`` (this object's own, the caller holds ``writing``) at its new
        file and write project.json; keys stay, so annotations follow. A failed write leaves the
        images' paths as they were and raises."""
        before = [(image, image.path) for image, _ in moves]
        self._repoint_paths([(image, straight_path(path)) for image, path in moves])  # link/../x: the file found
        try:
            self._commit(change=f"repointing {images_text(len(moves))}")
        except BaseException:
            self._repoint_paths(before)
            raise

    def _repoint_paths(self, moves: list[tuple[ProjectImage, Path]]) -> None:
        """The paths of ``moves`` changed in place, with the index dropped and the list's generation
        counted up as one (``_swap``): a look-up building the index meanwhile from the old paths does
        not publish it as current. Built again at once (on the writer's thread) when one was in use."""
        with self._swap:
            for image, path in moves:
                image.path = path
            self._list_generation += 1
            in_use, self._by_path = self._by_path is not None, None
        if in_use:
            self._indexed()

    def set_done(self, image: ProjectImage, done: bool) -> None:
        """Mark an image done (or not), merged into project.json under the write lock. A write that
        fails (a full disk) leaves the flag as it was here too: this object never says a mark is
        recorded that project.json does not hold."""
        self.set_done_many([(image, done)])

    def set_done_many(self, marks: Iterable) -> None:
        """``set_done`` of several ``(image, done)`` pairs in one write of project.json (all or none)."""
        with self.writing():
            index = self._by_key()
            owns = [(self._own(image, index), bool(done)) for image, done in marks]
            before = [(own, own.done) for own, _ in owns]
            for own, done in owns:
                own.done = done
            try:
                self._commit(change=f"marking {images_text(len(owns))} done or not")
            except BaseException:
                for own, was in reversed(before):
                    own.done = was
                raise

    def set_model(self, model: str | None) -> None:
        """Remember ``model`` (a file or a bundled name), merged into project.json (left as it was
        when the write fails)."""
        with self.writing():
            before, self.model = self.model, None if model is None else str(model)
            try:
                self._commit(change="setting its model")
            except BaseException:
                self.model = before
                raise

    def writers_unprotected(self) -> str | None:
        """Why the project's writers are not kept apart (``unlocked_text``: its folder's file system
        gives no locks), and an add's note left there (``project_bring_back.unfinished_add_text``),
        else None; for the app to say when it opens the project. Takes nothing:
        a lock tried without waiting, let go at once (``qgn.fileio.folder_lock_problem``)."""
        try:
            exc = folder_lock_problem(self.root)
        except OSError:
            return None  # the folder cannot be opened: its writes say so
        if exc is None:
            return None
        unfinished = project_bring_back.unfinished_add_text(self)  # an add's note, left as it is there
        return unlocked_text(self.root, exc) + ("" if unfinished is None else f". {unfinished}")

    # ------------------------------------------------------------------ annotations
    def blocked_folders(self) -> list[str]:
        """What stands where the folder of the saved annotations or of the autosaves belongs and is
        no folder of the project (a sync tool's or a script's plain file, a link to one, a link to
        nothing or out of the project), said for people, something that is no file where an add
        writes its note (``bring_back_blocked``), and a file or link where, on a file system without
        locks, an add that finds another's note writes its own (``NOTES_DIR``, ``.bring-back-notes``:
        ``notes_dir_blocked``): the project opens (its autosaves are still offered where they can be),
        but none of those files can be read or written there until it is moved away or back. Reads
        only; empty when each is as it should be or missing."""
        out = []
        for name, what in ((self.annotation_dir, "saved annotations"), (self.autosave_dir, "autosaves")):
            folder = self.root / name
            if not os.path.lexists(folder):
                continue
            if not folder.is_symlink():
                if not folder.is_dir():
                    out.append(f"{folder} is a file, not the folder of the project's {what}: none can be read or "
                               "written until it is moved away (nothing was changed)")
                continue
            # (an annotation folder linked to nothing or out of the project is refused at open; an autosave
            # folder only stops autosaves: the user's, where it points, are offered once it is back)
            dangling = dangling_link_text(folder, "folder", RESTORE_ADVICE)
            target = None if dangling else _resolved(folder)
            if _link_loop(folder):  # (Path.resolve raised RuntimeError: the project did not open)
                out.append(f"{loop_text(folder)}: none of the project's {what} can be read or written until the "
                           "link is removed (nothing was changed)")
            elif dangling:
                out.append(f"{dangling}: the project's {what} are there; none can be read or written until it is "
                           "back (nothing was changed)")
            elif target is None:
                out.append(f"{folder} is a link that cannot be followed: none of the project's {what} can be read or "
                           "written until it can (nothing was changed)")
            elif not target.is_relative_to(self.root):
                out.append(f"{folder} is a link to {target}, outside the project: the project's {what} there are not "
                           f"read, and none can be written, until that folder is moved into the project as {name!r} "
                           "in place of the link (nothing was changed)")
            elif not target.is_dir():
                out.append(f"{folder} is a link to {target}, a file, not the folder of the project's {what}: none "
                           "can be read or written until the link is moved away (nothing was changed)")
        if bring_back_blocked(self.root):
            out.append(f"{self.root / BRING_BACK_FILE} is not a file: images are added without the note that lets the "
                       "next writer finish an add cut short (bringing their annotations back from removed/) until "
                       "it is moved away (nothing was changed)")
        if project_bring_back.notes_dir_blocked(self.root):
            out.append(f"{self.root / NOTES_DIR} is not a folder: on a file system without locks, an add that finds "
                       "another add's note goes on without a note of its own (one that lets the next writer finish it "
                       "if it is cut short, bringing its images' annotations back from removed/) until it is moved "
                       "away (nothing was changed)")
        return out

    def annotation_path(self, image: ProjectImage) -> Path:
        return self._annotation_file(self._own(image))

    def _annotation_file(self, own: ProjectImage) -> Path:
        return path_inside(self.root, self.annotation_dir, f"{own.key}.qgt")

    def autosave_path(self, image: ProjectImage) -> Path:
        return path_inside(self.root, self.autosave_dir, f"{self._own(image).key}.qgt")

    def load_annotation(self, image: ProjectImage) -> np.ndarray | None:
        """The saved label map (H, W) of ``image`` (``label_dtype(classes)``), or None. Classes
        are matched by name (``qgn.quadtree.label_io.read_label_file``)."""
        path = self.annotation_path(image)
        return read_label_file(path, self.classes) if path.is_file() else None

    def _write(self, folder: str, image: ProjectImage, label: np.ndarray) -> Path:
        return FORMATS["qgt"].write(label, self.classes, self.root / folder, self._own(image).key, levels=self.levels)[0]

    def annotation_version(self, image: ProjectImage) -> AnnotationVersion:
        """The saved annotation's identity on disk (``file_version``), None when there is none:
        read it with the annotation and pass it to ``save_annotation(over=)``."""
        return file_version(self.annotation_path(image))

    def save_annotation(self, image: ProjectImage, label: np.ndarray, keep_autosave: bool = False,
                        over=ANY, autosave=None, only_new: bool = False, undone: bool = False) -> SavedAnnotation:
        """Save ``label`` (H, W) of this object's classes atomically as the image's annotation and
        drop its autosave (the user saved it), unless ``keep_autosave`` (an import: the autosave
        holds edits the user has not saved or discarded). ProjectChangedError when another writer
        changed the classes meanwhile (the label would be read with the wrong ones).

        ``over``: the ``annotation_version`` the caller's map was based on (None: no saved file).
        When the saved file is another by now (another writer saved this image meanwhile), that
        file moves to ``conflicts/<key>.<time>.qgt`` first (see the module docstring); ``ANY``
        replaces what is there (an import, which never replaces an annotation). ``autosave``: the
        version of the autosave this writer wrote; by default None (it wrote none), so another
        writer's autosave - a window's unsaved edits - is kept; ANY removes whatever is there. ``only_new``: ValueError, nothing written, when the
        image has a saved annotation by now (an import, which never replaces one, checked under
        the lock: another writer may have saved since the import looked). A write that fails puts
        back the file it had moved to ``conflicts/``. ``undone``: the autosave ``autosave`` holds edits
        ``label`` lacks (undone before the save; redo has them in memory only): kept as
        ``discarded/<key>.undone-<hash>.qgt`` (``keep_undone``) instead of removed."""
        with self.writing():
            path = self.annotation_path(image)
            if only_new and path.is_file():
                raise ValueError(f"{image.path.name} already has an annotation in the project; not overwritten")
            parked = self._park_unless(path, over, self._own(image).key)
            written = self._write_or_unpark(self.annotation_dir, image, label, path, parked)
            aside: list = []
            if not keep_autosave:
                self._drop_autosave(image, autosave, undone, aside)
            return SavedAnnotation(file_version(written), parked, *(aside or (None, None, None)))

    def _write_or_unpark(self, folder: str, image: ProjectImage, label: np.ndarray, path: Path,
                         parked: Path | None) -> Path:
        """``_write``; when it fails (a full disk), the other writer's file ``_park_unless`` moved
        to ``conflicts/`` goes back to ``path``, so the image is never left with neither."""
        try:
            return self._write(folder, image, label)
        except BaseException:
            if parked is not None and not path.exists():
                _put_back(parked, path)  # never over a file there: else it stays in conflicts/, kept
            raise

    def _park_unless(self, path: Path, expected, stem: str) -> Path | None:
        """Under the lock: move ``path`` to ``conflicts/<stem>.<time>.qgt`` unless its version is
        ``expected`` (or ``expected`` is ANY, or there is no file); where it went, or None."""
        if expected is ANY:
            return None
        current = file_version(path)
        if current is None or current == expected:
            return None
        folder = kept_folder(self.root, CONFLICTS_DIR)
        for _ in range(100):  # never over a file kept there (``move_aside``); None: replaced meanwhile, again
            parked = move_aside(path, folder, stem)
            current = file_version(path)
            if parked is not None or current is None or current == expected:
                return parked
        raise ProjectChangedError(f"{path} keeps being replaced by another writer; nothing was written")

    def _keep_undone(self, path: Path, key: str, version,
                     remove: bool) -> tuple[Path | None, Exception | None, Exception | None]:
        """Under the lock: keep the autosave ``path`` (``version``: holding edits undone since) by its bytes
        in ``discarded/`` (``keep_undone``); where that folder cannot take it (a file or a link out of the
        project where it belongs, a folder that refuses writes: making it, naming the file in it), in
        ``conflicts/`` under the same content name instead - a new name, never over a file there. Then,
        ``remove``: ``path`` removed (``remove_kept``) - an error of that step is no reason to keep the
        bytes elsewhere again (they are kept). (where kept (None: ``path`` was not there or not
        ``version``), the error of discarded/ when kept in conflicts/, the error of the removal), for the
        writer to say where the edits are and go on with its write. The OSError / OutsideRootError of
        ``discarded/`` when neither folder takes it (``path`` left as it is)."""
        why = None
        try:
            kept = keep_undone(path, kept_folder(self.root, DISCARDED_DIR), key, version, remove=False)
        except (OSError, OutsideRootError) as exc:
            why = exc
            try:
                kept = keep_undone(path, kept_folder(self.root, CONFLICTS_DIR), key, version, remove=False)
            except (OSError, OutsideRootError):
                raise why from None
        left = None
        if remove and kept is not None:
            try:
                remove_kept(path, version, kept.parent, key)
            except OSError as exc:  # the bytes are kept: only the autosave stays (or was put back)
                left = exc
        return kept, why, left

    def _drop_autosave(self, image: ProjectImage, ours, undone: bool = False, aside: list | None = None) -> bool:
        """Under the lock: remove the autosave when it is ``ours`` (the version this writer wrote or
        restored; ANY: whatever is there). Another writer's (a second window's unsaved edits of the
        image) is kept. True when removed (or there was none: an autosave folder linked out of the
        project, where no autosave is written). ``ours`` None (this writer wrote none) or none there: nothing
        is unlinked - an autosave another writer puts there meanwhile is theirs. ``undone``: ours holds
        edits the saved map lacks: moved to ``discarded/`` by its bytes (``keep_undone``), not removed;
        where ``discarded/`` cannot take it, to ``conflicts/`` (``_keep_undone``: ``aside`` gets where, why,
        and why it could not be removed after, to be said); where neither can, it stays in place, offered
        at an open (the save stands; ``aside`` gets None and why)."""
        try:
            path = self.autosave_path(image)
        except OutsideRootError:
            return True
        current = file_version(path)
        if ours is not ANY and current not in (None, ours):
            return False
        if ours is not ANY and (current is None or ours is None):
            return True  # nothing of ours there: nothing is removed (one landing meanwhile is another's)
        try:
            if ours is ANY:
                path.unlink(missing_ok=True)
            elif undone:  # never another writer's either: ``keep_undone`` takes only the file it judged
                try:
                    kept, why, left = self._keep_undone(path, self._own(image).key, ours, remove=True)
                except (OSError, OutsideRootError) as exc:  # neither kept folder takes it: it stays, offered
                    if aside is not None:
                        aside[:] = [None, exc, None]
                    return False
                if kept is not None and (why is not None or left is not None) and aside is not None:
                    aside[:] = [kept, why, left]
                return file_version(path) is None
            else:  # never another writer's landing meanwhile (the lock may keep no two processes apart)
                return remove_if_version(path, ours)
        except NotADirectoryError:  # a plain file where the autosave folder belongs: no autosave to drop
            pass
        except OSError:  # (an I/O error) the save is written all the same: it must not be reported as failed
            return False  # the autosave stays, offered at a start as older than its saved annotation
        return True

    def replace_annotation(self, image: ProjectImage, label: np.ndarray) -> Path | None:
        """Save ``label`` as ``image``'s annotation, keeping the one it replaces as
        ``replaced/<key>.<time>.qgt`` (returned; None when there was none). The autosave stays.
        The old file is copied aside before the new one is written: there is always one saved."""
        with self.writing():
            own = self._own(image)
            source = self.annotation_path(own)
            kept = None
            if source.is_file():
                # a copy created only where no file is (never over another writer's of the same second);
                # one cut short (a full disk) is removed by it: the saved file is untouched
                kept = name_aside(source, kept_folder(self.root, REPLACED_DIR), own.key, copy=True)
                try:
                    shutil.copystat(source, kept)
                except OSError:
                    pass  # its times only
            try:
                self._write(self.annotation_dir, own, label)
            except BaseException:  # nothing was replaced: the copy would be named as a replaced annotation
                if kept is not None and same_bytes(source, kept):
                    unlink_quietly(kept)
                raise
            return kept

    def keep_conflict(self, stem: str, label: np.ndarray, classes: ClassSet) -> Path:
        """Keep ``label`` (in its own ``classes``) as ``conflicts/<stem>.<time>.qgt``: an unsaved map
        the project cannot take (a class edit elsewhere removed a class it uses). Under the write lock,
        as every file kept aside: two windows keeping a map of one image in one second would otherwise
        both take the same free name, the second write replacing the first - and where the lock keeps no
        two processes apart, it is written under a private name and only then given its kept name, never
        over a file there (``name_aside``). A writer killed between leaves the map under the private name
        ``.<stem>.<pid>-<ns>.writing.qgt`` in ``conflicts/``: kept, never deleted."""
        with self.writing():
            folder = kept_folder(self.root, CONFLICTS_DIR)
            private = FORMATS["qgt"].write(label, classes, folder, f".{_cut(stem)}.{os.getpid()}-{time.monotonic_ns()}"
                                           ".writing", levels=self.levels)[0]
            try:
                target = name_aside(private, folder, stem)
            except BaseException:
                unlink_quietly(private)
                raise
            unlink_quietly(private)  # it has its kept name
            return target

    def kept_copies(self, image: ProjectImage) -> list[KeptCopy]:
        """What the project kept aside for ``image`` (``qgn.project_kept.kept_copies``: discarded/,
        conflicts/, replaced/, removed/), newest first: the files named by its key, and by its file's
        stem (a class change elsewhere keeps unsaved maps so) - a copy whose name fits another image
        of the project too (a stem two images share) listed ``unsure``, saying so; a removed/ file is judged by
        its record - the image file it names and the picture it notes (``qgn.project_kept._judged``): this
        image's file or picture, whatever its key; ``unsure`` where path and picture disagree. Reads folders
        and, where a record notes a picture of its size, the image file (job threads only); a copy of an image
        that had the key before may be among them: whoever loads one checks it fits (``read_kept_copy``)."""
        own = self._own(image)
        with self._swap:
            images, generation = self.images, self._list_generation
        mark = (id(images), len(images), generation)
        owners = self._kept_owners
        if owners is None or owners[0] != mark:  # one index per image list (as ``_by_path``): 20,000 images ~100 ms once
            by: dict = {}
            for im in images:
                name = os.fspath(im.path)
                shown = f"{os.path.basename(os.path.dirname(name))}/{os.path.basename(name)}"
                for by_what, head in (("key", im.key), ("stem", Path(name).stem)):  # cut, and whole (older names)
                    for form in dict.fromkeys((_cut(head), head)):
                        by.setdefault((by_what, form), []).append((im.key, shown))
            owners = self._kept_owners = (mark, by, images)  # (the list held: its id never reused meanwhile)
        index = owners[1]

        def others(by: str, head: str) -> list[str]:
            return [shown for key, shown in index.get((by, head), ()) if key != own.key]

        def file_owner(recorded: str) -> str | None:
            # a removed/ file's recorded image file: this image's (another spelling of its file), or another
            # image's that lists it (by its record: the same resolved file) - else None, listed here unsure
            found = self._find(Path(recorded))
            if found is None or (found.key != own.key and _resolved_name(found.path) != recorded):
                return None
            return found.key

        try:
            since = self._in_project_since(own)
        except Exception:  # noqa: BLE001 - unknown: no failure to tell whose a copy is hides one
            since = None
        return kept_copies(self.root, own.key, Path(own.path).stem, others, own.path, file_owner=file_owner,
                           since=since)

    def _in_project_since(self, image: ProjectImage) -> float | None:
        """Since when ``image`` is in the project (``kept_copies``: a removed copy of the same picture from another
        file, removed after, is maybe not its own - a duplicate file): when it was added (project.json's "added");
        for an image of an older project, which has none, the oldest modification time of its saved annotation and
        autosave - a save rewrites them, so a duplicate saved again since the removal looks added after it (its
        own). None where it has neither."""
        if image.added is not None:
            return image.added
        times = []
        for path_of in (self.annotation_path, self.autosave_path):
            try:  # a folder linked out of the project (OutsideRootError), a file that cannot be read: no time
                times.append(os.lstat(path_of(image)).st_mtime)
            except (OSError, ValueError):
                continue
        return min(times, default=None)

    def autosave_version(self, image: ProjectImage) -> AnnotationVersion:
        """The autosave's identity on disk (``file_version``), None when there is none."""
        return file_version(self.autosave_path(image))

    def autosave(self, image: ProjectImage, label: np.ndarray, over=ANY, undone: bool = False) -> SavedAnnotation:
        """Store unsaved edits atomically in the autosave folder (the saved annotation is untouched).
        ``over``: the version of the autosave this writer wrote last (None: none). Another writer's
        autosave in its place (a second window's unsaved edits of the image) is moved to
        ``conflicts/<key>.autosave.<time>.qgt`` first and named in the result: nothing is lost.
        ``undone``: ``label`` lacks edits the autosave ``over`` holds (undone since: redo has them, in
        memory only; or dropped from redo by a new edit): that autosave is kept first, as
        ``discarded/<key>.undone-<sha256, 12 hex>.qgt`` (``keep_undone``: a second name, no bytes
        copied; a state kept already adds nothing), so a crash leaves the edits on disk. Where
        ``discarded/`` cannot take it (a file or a link out of the project where it belongs), it is kept
        in ``conflicts/`` so (``_keep_undone``; named in the result's ``undone_aside``) and the new
        autosave written all the same; where neither can, nothing is written (the error: it stays)."""
        with self.writing():
            path = self.autosave_path(image)
            kept, why = None, None
            if undone and over is not ANY and over is not None and file_version(path) == over:
                kept, why, _ = self._keep_undone(path, self._own(image).key, over, remove=False)
            parked = self._park_unless(path, over, f"{self._own(image).key}.autosave")
            written = self._write_or_unpark(self.autosave_dir, image, label, path, parked)
            return SavedAnnotation(file_version(written), parked, kept if why is not None else None, why)

    def recoverable(self) -> list[ProjectImage]:
        """Images whose autosave holds edits their saved annotation lacks: the autosave is newer
        (or none is saved), or older but not the same file's content — another writer saved the
        image after this autosave was written (a save keeps the autosaves of other writers, e.g. a
        window that was killed), which the user must still be offered. An older autosave of the
        same content is what a save killed before it removed the autosave left.

        The autosave folder is listed once and its names matched to the keys, so a project of many
        images with few autosaves costs one listing, not a resolved path per image; a name that
        matches still goes through ``path_inside``. An autosave (or saved annotation) a crashed writer
        left under its private ``.taking`` name is put back first (``bring_back_taken``), so that it is
        offered (and compared with) too."""
        self._bring_back_taken()
        try:
            with os.scandir(self.root / self.autosave_dir) as entries:
                names = {entry.name for entry in entries if entry.name.endswith(".qgt")}
        except (FileNotFoundError, NotADirectoryError):
            return []
        found = []
        for im in self.images:
            name = f"{im.key}.qgt"
            if name not in names:
                continue
            try:
                auto = path_inside(self.root, self.autosave_dir, name)
                saved = path_inside(self.root, self.annotation_dir, name)
            except OutsideRootError:  # a folder linked out of the project: neither read nor written
                continue
            if not auto.is_file():
                continue
            if not _older(auto, saved) or not same_bytes(auto, saved):
                found.append(im)
        return found

    def _bring_back_taken(self) -> None:
        """``bring_back_taken`` in the autosave and annotation folders (a save's ``_park_unless`` takes
        another writer's annotation under a private name too), not through a folder linked out of the
        project (neither read nor written)."""
        left: list = []
        for name in (self.autosave_dir, self.annotation_dir):
            folder = self.root / name
            if not folder.is_symlink():
                # one whose name a newer file has (a save, an autosave since): kept in conflicts/ as another
                # writer's autosave or save (``kept_copies`` lists it), never over a file there
                suffix = ".autosave" if name == self.autosave_dir else ""
                bring_back_taken(folder, left, lambda private, own, suffix=suffix: _keep_beside(
                    private, kept_folder(self.root, CONFLICTS_DIR), f"{own[:-len('.qgt')]}{suffix}"))
        self.taken_left = left

    def taken_left_text(self) -> str | None:
        """What the last ``_bring_back_taken`` could not put back (``taken_left``: a crashed writer's
        file under its private ``.taking`` name) in words for people, each cause as it is, or None: a
        newer file has its name - kept in conflicts/ (Kept copy… offers it), or where even that failed,
        where it stays and how to read it; a project this process cannot write - offered once opened
        where it can be written; another error - tried again at the next open."""
        left = self.taken_left
        if not left:
            return None
        said = []
        for private, name, why, kept, error in left[:5]:
            if kept is not None:
                said.append(f"{name}'s: a newer file has its name, so it is kept as {kept} "
                            "(Start from → Kept copy… offers it)")
            elif why == TAKEN_BY_ANOTHER:
                said.append(f"{name}'s: kept by another process opening the project at the same time (it is no "
                            f"longer at {private}: put back as {name}, or kept in {CONFLICTS_DIR}/, where Start "
                            "from → Kept copy… offers it)")
            elif why == "a newer file has its name":
                said.append(f"{name}'s: a newer file has its name, and conflicts/ could not take it "
                            f"({error}); it stays as {private} - copy it elsewhere under a name ending in .qgt "
                            "to read it (Start from → Import mask…)")
            elif isinstance(error, OSError) and error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                said.append(f"{name}'s: it stays as {private} ({why}): it is put back and offered when the "
                            "project is opened where it can be written")
            else:
                said.append(f"{name}'s: it stays as {private} ({why}); the next open tries again")
        more = f"; and {len(left) - 5} more" if len(left) > 5 else ""
        return (f"{len(left)} file{'s' if len(left) != 1 else ''} of edits a crashed writer left hidden under a "
                f"private name {'were' if len(left) != 1 else 'was'} not put back under "
                f"{'their own names' if len(left) != 1 else 'its own name'} by this open: "
                f"{'; '.join(said)}{more}. Nothing was deleted")

    def autosave_is_older(self, image: ProjectImage) -> bool:
        """True when ``image`` has an autosave and a saved annotation written after it (by another
        writer, or by a save killed before it removed the autosave)."""
        return _older(self.autosave_path(image), self.annotation_path(image))

    def recovery_base(self, image: ProjectImage) -> AnnotationVersion:
        """The saved annotation a restored autosave of ``image`` replaces, to pass as
        ``save_annotation(over=)``: the saved file's version when the autosave is newer; None when the
        saved file was written after the autosave (another writer's save, which the restored map
        lacks: a save of it then keeps that file in ``conflicts/``)."""
        return None if self.autosave_is_older(image) else self.annotation_version(image)

    def recover(self, image: ProjectImage) -> np.ndarray:
        """The autosaved label map of ``image``; FileNotFoundError when there is none."""
        path = self.autosave_path(image)
        if not path.is_file():
            raise FileNotFoundError(f"no autosave of {image.key!r} in {path.parent}")
        return read_label_file(path, self.classes)

    def discard_autosave(self, image: ProjectImage, ours=ANY, keep: bool = True, undone: bool = False,
                         aside: list | None = None) -> Path | None:
        """The user discarded ``image``'s unsaved edits: its autosave moves to
        ``discarded/<key>.<time>.qgt`` (autosaves are user data: a wrong click is undone by moving it
        back; nothing deletes that folder) — when it is ``ours`` (the version this writer wrote; ANY:
        whatever is there, e.g. autosaves the user was shown and chose to discard). Where it went;
        None when there was none, or it was another writer's (kept in place). ``keep=False``: removed
        instead, for a caller whose edits are written elsewhere (the project took a stand-in's edits).
        ``undone``: the user undid the edits back to the saved map (redo holds them, in memory only):
        kept as ``discarded/<key>.undone-<sha256, 12 hex>.qgt`` instead (``keep_undone``): a name of its
        bytes, so that undo/redo cycles without new edits add nothing, while every other state (another
        writer's, an earlier image's of the key, edits whose redo a new edit dropped) keeps a file of its
        own - no file in ``discarded/`` is ever replaced; where ``discarded/`` cannot take it, in
        ``conflicts/`` so (``_keep_undone``, the rule of a save and an autosave). Where the content is kept
        (maybe a file kept already); the OSError of its removal once kept, or of both folders. ``aside``
        (undone): set to ``[kept, why]`` when kept in ``conflicts/`` (``why``: discarded/'s error), or kept
        (``why`` None in discarded/) and its removal then failed (the OSError raised), to be said."""
        with self.writing():
            path = self.autosave_path(image)
            current = file_version(path)
            if current is None or (ours is not ANY and current != ours):
                return None
            if not keep:
                if ours is ANY:
                    path.unlink(missing_ok=True)
                else:  # never another writer's landing meanwhile
                    remove_if_version(path, ours)
                return None
            key = self._own(image).key
            if undone:
                kept, why, left = self._keep_undone(path, key, current, remove=True)
                if (why is not None or left is not None) and kept is not None and aside is not None:
                    aside[:] = [kept, why]  # kept in conflicts/, or kept and its removal failed: to be said
                if left is not None:
                    raise left
                return kept
            return move_aside(path, kept_folder(self.root, DISCARDED_DIR), key)  # never over a file there

    def annotated(self, images: list[ProjectImage] | None = None) -> list[ProjectImage]:
        """Of ``images`` (default: all), those with a saved annotation; KeyError as ``annotation_path``.
        As ``recoverable``, the annotation folder is listed once and only the names that match go
        through ``path_inside`` and ``is_file`` (a resolved path per image: 0.04 ms each)."""
        try:
            with os.scandir(self.root / self.annotation_dir) as entries:
                names = {entry.name for entry in entries if entry.name.endswith(".qgt")}
        except (FileNotFoundError, NotADirectoryError):
            names = set()
        index, found = self._by_key(), []
        for im in self.images if images is None else images:
            own = self._own(im, index)
            if f"{own.key}.qgt" in names and self._annotation_file(own).is_file():
                found.append(im)
        return found

    # ------------------------------------------------------------------ leftovers of crashed writers
    def _clean_up(self) -> None:
        """Under the write lock: finish or roll back a class edit that crashed (its journal proves
        which folders are its leftovers), then remove temporaries of writers killed mid-write."""
        journal = read_journal(self.root)
        if journal is not None:
            state = journal_state(journal, self.generation, self.revision)
            if state == "uncommitted":
                remove_folders([self.root / n for n in generation_dirs(journal["to_generation"])])
                (self.root / JOURNAL_FILE).unlink(missing_ok=True)
            elif state == "committed":
                finish_class_edit(self.root, journal["from_generation"], journal["to_generation"])
        restore_copied_link(self.root, self.generation)
        self._finish_bring_back()
        self._bring_back_taken()  # what a writer killed mid-take left hidden: put back, never deleted
        for folder in (self.root / self.annotation_dir, self.root / self.autosave_dir, self.root):
            remove_stale_temporaries(folder, STALE_TEMP_SECONDS)


def _resolved(path: Path) -> Path | None:
    """``path.resolve()``, None where a loop of symbolic links stands in its way (``fileio.resolved_or_none``)."""
    from .fileio import resolved_or_none

    return resolved_or_none(path)


def _link_loop(path: Path) -> bool:
    """Whether ``path`` leads into a loop of symbolic links (itself one, or a link into one)."""
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


def loop_text(path: Path) -> str:
    """``path``, which leads into a loop of symbolic links (``_link_loop``), said for people."""
    from .shown import path_text

    return f"{path_text(path)} is a link that leads into a loop of symbolic links, which leads nowhere"


def _exists(path: Path) -> bool:
    """``path.exists()``, False where the name cannot be looked up at all (longer than the file
    system allows: a project.json's "model" of 300 characters made the project unopenable)."""
    try:
        return path.exists()
    except OSError:
        return False


def _check_removable(path: Path) -> None:
    """PermissionError, before anything is changed, when ``path`` could not be let go of at the end
    of a removal (its folder read-only): it would stay behind, for an image of its key to inherit."""
    why = write_problem(path.parent)
    if why:
        raise PermissionError(errno.EACCES, f"{why}, so the image cannot be removed from the project (nothing was "
                              "changed)", str(path.parent))


def _older(autosave: Path, saved: Path) -> bool:
    """Whether the file ``saved`` was written after ``autosave``; False when either cannot be read
    (none there, or a plain file where the annotations folder belongs: the autosave is offered)."""
    try:
        return autosave.stat().st_mtime_ns < saved.stat().st_mtime_ns
    except OSError:
        return False


#: Files of a project's root that only its writers write (besides project.json).
OWN_FILES = (JOURNAL_FILE, "class-edits.json", HEAD_FILE, Path(HEAD_FILE).with_suffix(".json").name, BRING_BACK_FILE)
KEPT_FOLDERS = (REMOVED_DIR, CONFLICTS_DIR, REPLACED_DIR, DISCARDED_DIR)


def first_project_file(paths: Iterable) -> tuple[Path, Path, str] | None:
    """(path, the project's root, what it is in words) for the first of ``paths`` that is one of a
    project's own files: in its annotation or autosave folders of any generation (through the
    ``annotations`` link too) or the folders it keeps files aside in, its project.json and the files
    beside it, or one of its images; None when none is. Commands that write files by name
    (``qgn convert``, ``qgn predict``, ``qgn export``) refuse those before writing anything: only the
    project's writers write there, under its lock, keeping what they replace. A project.json counts
    only when it is a QGN project's (``_is_project_root``: other tools write one too). One look up
    the folders per output folder, each project.json found read once or twice."""
    roots: dict[Path, Path | None] = {}
    images: dict[Path, set] = {}
    is_root: dict[Path, bool] = {}
    for path in paths:
        folder = Path(os.path.realpath(Path(path).absolute().parent))
        if folder not in roots:
            roots[folder] = next((r for r in (folder, *folder.parents) if _is_project_root(r, is_root)), None)
        root = roots[folder]
        if root is None:
            continue
        target = folder / Path(path).name
        first = target.relative_to(root).parts[0]
        if GENERATION_DIR.fullmatch(first) or first in (*KEPT_FOLDERS, NOTES_DIR):
            return Path(path), root, f"in the folder {first}/"
        if folder == root and first in (PROJECT_FILE, *OWN_FILES):
            return Path(path), root, f"the file {first}"
        if root not in images:
            try:
                stored = read_project_file(root / PROJECT_FILE).images
            except (OSError, ProjectError):
                stored = ()
            images[root] = {os.path.realpath(Project._absolute(root, entry[0])) for entry in stored}
        if str(target) in images[root]:
            return Path(path), root, "an image"
    return None


def _is_project_root(folder: Path, known: dict[Path, bool]) -> bool:
    """Whether ``folder`` holds a QGN project's project.json (remembered in ``known``): one
    ``read_project_file`` accepts, or one with QGN's format marker it cannot read (another version)
    or that is damaged; not another tool's (Nx, Angular and others write a project.json too)."""
    if folder not in known:
        path = folder / PROJECT_FILE
        try:
            read_project_file(path)
            known[folder] = True
        except FileNotFoundError:
            known[folder] = False
        except (OSError, ProjectError):
            known[folder] = marked_as_project(path)
    return known[folder]


def check_folders(root: Path, parsed: ProjectFile) -> None:
    """ProjectError (deleting nothing) when a generation folder that project.json does not name
    holds annotations and no class-edit journal explains it: project.json is then probably an
    older copy (restored from a backup, a sync conflict) of the project on disk. A real
    ``annotations`` folder where the link to the current generation's folder belongs, holding only
    copies of its files, is such a link copied by a tool that follows links (``cp -rL``): it is
    read as the link it was (``copied_link``); one that holds anything else is named as such."""
    _check_annotation_folder(root, generation_dirs(parsed.generation)[0])
    current = set(generation_dirs(parsed.generation))
    journal = read_journal(root)
    explained: set[str] = set()
    if journal is not None:
        state = journal_state(journal, parsed.generation, parsed.revision)
        if state == "uncommitted":
            explained = set(generation_dirs(journal["to_generation"]))
        elif state == "committed":
            explained = set(generation_dirs(journal["from_generation"]))
    strays = []
    for name in sorted(generation_folders(root), key=lambda n: (n.startswith("."), n)):
        if name in current or name in explained:
            continue
        count = sum(1 for _ in (root / name).glob("*.qgt"))
        if count and name == ANNOTATION_DIR and parsed.generation > 0:
            if copied_link(root, parsed.generation):
                continue
            raise ProjectError(_followed_link_message(root, parsed.generation, count))
        if count:
            strays.append(f"{root / name} ({count} file(s))")
    if strays:
        names = generation_dirs(parsed.generation)
        raise ProjectError(
            f"{root / PROJECT_FILE} names the folders {names[0]!r} and {names[1]!r} (generation {parsed.generation}), "
            f"but annotations of another generation are in {', '.join(strays)}: project.json looks like an older "
            "copy (a backup or a sync conflict). Nothing was changed or deleted. Put back the project.json that "
            "names those folders, or move them out of the project if you do not need them")


def _check_annotation_folder(root: Path, name: str) -> None:
    """ProjectError (nothing changed) when the folder of the saved annotations is a symbolic link to
    nothing or to a folder outside the project: every image would show no annotation (and the app
    stopped at the first one it showed, OutsideRootError), and every save would be refused - the
    project reads and writes its annotations only in a folder of its own (``path_inside``). (The
    autosave folder linked so only stops autosaves: the project opens, ``blocked_folders`` says it.)"""
    folder = root / name
    if not folder.is_symlink():
        return
    dangling = dangling_link_text(folder, "folder", RESTORE_ADVICE)
    target = None if dangling else _resolved(folder)
    if _link_loop(folder):
        raise ProjectError(f"{loop_text(folder)}: the project's saved annotations cannot be read there. Nothing was "
                           "changed")
    if dangling:
        raise ProjectError(f"{dangling}: the project's saved annotations are there. Nothing was changed")
    if target is None:
        raise ProjectError(f"{folder} is a link that cannot be followed: the project's saved annotations cannot be "
                           "read there. Nothing was changed")
    if not target.is_relative_to(root):
        raise ProjectError(
            f"{folder} is a symbolic link to {target}, outside the project: the project reads and writes its saved "
            f"annotations only in a folder of its own. Nothing was changed; move that folder into the project as {name!r} "
            "in place of the link")

