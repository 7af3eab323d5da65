"""Bringing an image's annotation back when its file is added to the project again, and finishing
an add that was killed half-way (``Project.add_images``, ``Project.bring_back``): the re-add
protocol between a project's writers. What is kept of a removed image (the files in ``removed/``
and their records) is ``qgn.project_removed``'s; this module moves them back.

Every function takes the ``qgn.project.Project`` (``project``); those that write run under its write
lock (``Project.writing``), ``kept_by_late_adds`` and ``bring_back_blocked`` only read. Files::

    .bring-back.json             only while (or after a crash in) an add whose images may get files
                                 back from removed/ (``BRING_BACK_FILE``, ``note_bring_back``):
                                 {"images": [{"key": str, "path": str (as project.json spells it),
                                              "annotation": {"name": str (its file in removed/),
                                                             "file": [device, inode, size, mtime ns,
                                                                      sha256] (``_file_identity``)}
                                              (optional: the annotation the add is to move back)},
                                             ...]}
                                 written before project.json lists the images, removed once they
                                 were brought back; found by the next writer, it finishes the add
                                 (``finish_bring_back``). A note of an older version spells a path
                                 as the add was given it, and holds the identity's four numbers only.
    .bring-back-notes/NAME.json  on a file system without locks, the note of an add that found one at
                                 ``BRING_BACK_FILE`` (another add's, live or killed: nothing tells
                                 which there), under a name of its own (``NOTES_DIR``,
                                 ``_note_beside_others``); finished, as that one is, by the first writer
                                 with locks (``finish_bring_back``), who removes the folder then.
    removed/kept-by-unfinished-adds.json   what such a finished add left in removed/, said for
                                 people when the project opens (``LATE_KEPT_FILE``, ``note_kept``,
                                 ``kept_by_late_adds``): {"kept": [{"image": str (its path),
                                 "files": [names in removed/], "why": str, "when": float (seconds
                                 since the epoch)}, ...]}; advisory (anyone may write it): entries
                                 not whole are passed over, and nothing is read past
                                 ``MAX_LATE_KEPT_BYTES``.

No annotation or autosave is ever deleted: one that cannot come back stays in ``removed/``, and is
reported (only the note, and the record of a file moved back, are removed).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .fileio import atomic_write_bytes, file_sha256, make_folder, read_json, sync_folder, unlink_quietly
from .project_kept import move_into_place
from .project_removed import (REMOVED_DIR, RemovedAnnotation, file_note, path_key, record_path, removed_annotations,
                              why_not)

#: The images an add lists whose annotations may wait in removed/: written before project.json lists them,
#: removed once they were brought back, so that an add killed in between is finished by the next writer
BRING_BACK_FILE = ".bring-back.json"
#: Without locks: the notes of adds that found a note at ``BRING_BACK_FILE`` (``_note_beside_others``)
NOTES_DIR = ".bring-back-notes"
#: How often an add makes ``NOTES_DIR`` again when a writer with locks removed it (empty) between its
#: making and the note's: each time that writer finished every note there (``finish_bring_back``)
NOTE_TRIES = 5
#: The most a real note can hold per image beyond its key and path (which project.json holds as the note
#: spells them, ``json.dumps``): its annotation's name (255 bytes, 1,530 characters escaped), the file's
#: identity (four numbers and a SHA-256) and the keys. The note spells each path as project.json does; a
#: note of an older version held it whole (the project's path, escaped, before a path project.json holds
#: relative to the project): that much more per image is allowed. A note finishes only listed images, so one
#: longer than project.json + this per listed image + ``BRING_BACK_SLACK`` is not one an add wrote
#: (``_note_limit``): a corrupt note cost every writer's clean-up GBs to parse at 256 MiB
BRING_BACK_PER_IMAGE, BRING_BACK_SLACK = 2048, 64 << 10
#: In removed/: the files an add cut short and finished later by another writer kept there (its image had
#: a saved annotation by then, ...): nobody was there to be told, so the project says it when it opens
LATE_KEPT_FILE = "kept-by-unfinished-adds.json"
MAX_LATE_KEPT_BYTES = 1 << 20
#: What ``kept_by_late_adds`` says of that file at most (it is advisory, and anyone may write it):
#: so many images' sentences (the rest counted), each reason and file name cut to so many characters
MAX_LATE_KEPT_SAID, MAX_SAID_WHY, MAX_SAID_NAME = 5, 300, 120


def note_bring_back(project, images: list) -> Path | None:
    """Under the lock, before project.json lists ``images``: when removed/ holds records (an
    annotation to bring back, maybe), write which images these are (``BRING_BACK_FILE``; without
    locks maybe another name: ``_note_beside_others``); the note written (for the add to remove once
    its images were brought back), or None. A writer killed after project.json lists them but before ``bring_back`` moved
    their files back leaves it, and the next writer's clean-up (``finish_bring_back``) moves
    them - else the image would stay listed without its annotation and autosave for good. Each
    image's annotation to move back is noted as the very file (``_file_identity``: a move keeps
    it): an add killed after moving it back but before its autosave leaves it in place, and the
    next writer must still bring the autosave back beside it (``bring_back``'s ``moved``)."""
    try:
        with os.scandir(project.root / REMOVED_DIR) as entries:
            if not any(entry.name.endswith(".qgt.json") for entry in entries):  # (records, ``record_path``)
                return None
    except OSError:  # no removed/ (or not a folder): nothing to bring back
        return None
    no_lock = getattr(project, "no_lock", None) is not None
    if not no_lock and bring_back_blocked(project.root):  # a folder there (a sync tool's): the add goes on
        return None  # without its note - only an add killed in between is then left unfinished (said at open)
    found = removed_annotations(project.root / REMOVED_DIR)
    doc = {"images": [_bring_back_entry(project, im, found) for im in images]}
    if no_lock:  # no lock: a note there may be a live add's, or a dead one's
        return _note_beside_others(project, json.dumps(doc).encode())
    atomic_write_bytes(project.root / BRING_BACK_FILE, json.dumps(doc).encode())
    return project.root / BRING_BACK_FILE


def _note_beside_others(project, data: bytes) -> Path | None:
    """``note_bring_back`` on a file system without locks (``Project.no_lock``): the note is written
    only where none is (created, never put in another's place: O_EXCL). A note there is another add's,
    live or killed - nothing can tell which, so it is neither finished nor replaced: a killed add's
    stays for the first writer with locks to finish (``finish_bring_back``). This add then writes its
    note under a name of its own in ``NOTES_DIR`` (finished there likewise if it is killed in turn; a
    link or anything else at ``BRING_BACK_FILE`` is passed over so too), and a note of another add
    there is said once (``unfinished_add_text``). Only where that folder cannot be made (a file or a link
    in its place: ``notes_dir_blocked``, said at open too by ``Project.blocked_folders``) does the add go on
    without a note, and says so (``_without_note``). A writer with locks may remove the folder, empty,
    between its making and the note's opening there (``finish_bring_back``): it is made again, up to
    ``NOTE_TRIES`` times. A note cut short by a kill here is one whose images
    project.json never listed (the note is written before): its reader finds nothing to finish in it."""
    import secrets

    path = project.root / BRING_BACK_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except FileExistsError:
        _say_unfinished_add(project)
        folder = project.root / NOTES_DIR
        path = folder / f"{os.getpid()}-{secrets.token_hex(8)}.json"
        for _ in range(NOTE_TRIES):
            try:
                if not folder.is_dir() or folder.is_symlink():
                    os.mkdir(folder)
            except FileExistsError:
                if notes_dir_blocked(project.root):  # (a file or a link there: also ``blocked_folders``)
                    return _without_note(folder, "it is not a folder: move it away")
            except OSError as exc:
                return _without_note(folder, os.strerror(exc.errno) if exc.errno else str(exc))
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0), 0o644)
                break
            except FileNotFoundError:  # a writer with locks removed the folder, empty, since: made again
                continue
            except OSError as exc:
                return _without_note(folder, os.strerror(exc.errno) if exc.errno else str(exc))
        else:
            return _without_note(folder, f"it was removed each time it was made, {NOTE_TRIES} times")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        unlink_quietly(path)
        raise
    sync_folder(path.parent)
    return path


def _without_note(folder: Path, why: str) -> None:
    """``_note_beside_others`` found no place for its note in ``folder`` (``NOTES_DIR``): the add goes on
    without one, said on stderr (cut short, its images may stay listed without their annotations)."""
    import sys

    print(f"qgn: warning: this add goes on without its note in {folder} ({why}): cut short, the images it adds "
          f"may stay listed without their annotations, which then wait in {folder.parent / REMOVED_DIR} "
          "(nothing is lost)", file=sys.stderr, flush=True)


def notes_dir_blocked(root: Path) -> bool:
    """Whether something that is not a folder (a file, a link) stands at ``NOTES_DIR``: an add without
    locks that finds another's note then goes on without one (``_note_beside_others``). Reads only."""
    folder = Path(root) / NOTES_DIR
    return os.path.lexists(folder) and (folder.is_symlink() or not folder.is_dir())


def notes_to_finish(root: Path) -> bool:
    """Whether a writer with locks has something of ``finish_bring_back``'s to do: an add's note at
    ``BRING_BACK_FILE`` (a plain file), or ``NOTES_DIR`` a folder with a note in it, or empty (removed
    then: not looked in at each write any more). Not a file or link at ``NOTES_DIR``, nor a folder that
    holds only others' files (a .DS_Store): nothing to finish, and it cannot be removed - else every
    write would run the clean-up. Reads only."""
    path = Path(root) / BRING_BACK_FILE
    if path.is_file() and not path.is_symlink():
        return True
    folder = Path(root) / NOTES_DIR
    if folder.is_symlink() or not folder.is_dir():
        return False
    try:
        with os.scandir(folder) as entries:
            names = [(e.name, e.is_file(follow_symlinks=False)) for e in entries]
    except OSError:
        return False
    return not names or any(name.endswith(".json") and plain for name, plain in names)


def unfinished_add_text(project) -> str | None:
    """What an add's note (``BRING_BACK_FILE``) left on a file system without locks means, for people
    (it is neither finished nor replaced there: ``_note_beside_others``); None without one."""
    notes = noted_adds(project.root)
    if not notes:
        return None
    where = str(notes[0]) if len(notes) == 1 else f"{notes[0]} and {len(notes) - 1} more in {project.root / NOTES_DIR}"
    if notes_dir_blocked(project.root):
        meanwhile = (f"an add there goes on without a note of its own ({project.root / NOTES_DIR}, where it would "
                     "write one, is not a folder: move it away)")
    else:
        meanwhile = f"an add there writes its own note beside it (in {project.root / NOTES_DIR})"
    return (f"{where} {'is the note' if len(notes) == 1 else 'are the notes'} of an add of images that was cut "
            "short, or is still under way in another window or command: on a file system without locks nothing "
            "tells which, so it is left as it is - the images it added may be listed without their annotations, "
            f"which wait in {project.root / REMOVED_DIR} (nothing is lost). The first write to the project from a "
            f"computer whose file system gives locks finishes it; until then {meanwhile}")


def noted_adds(root: Path) -> list[Path]:
    """The notes of adds left in the project at ``root`` (``BRING_BACK_FILE``, and ``NOTES_DIR``'s):
    plain files only (a link at a note's name is no add's note). Reads only."""
    out = []
    path = Path(root) / BRING_BACK_FILE
    if path.is_file() and not path.is_symlink():
        out.append(path)
    return out + _notes_beside(Path(root))


def _notes_beside(root: Path) -> list[Path]:
    """The notes in ``NOTES_DIR`` (plain files named *.json), oldest name first; none without the folder."""
    folder = root / NOTES_DIR
    if folder.is_symlink():
        return []
    try:
        with os.scandir(folder) as entries:
            return sorted(folder / e.name for e in entries
                          if e.name.endswith(".json") and e.is_file(follow_symlinks=False))
    except OSError:
        return []


_UNFINISHED_SAID: set = set()


def _say_unfinished_add(project) -> None:
    """``unfinished_add_text`` on stderr, once per process and note."""
    import sys

    path = project.root / BRING_BACK_FILE
    try:
        st = os.lstat(path)
        key = (st.st_dev, st.st_ino)
    except OSError:
        key = str(path)
    text = unfinished_add_text(project)
    if text is None or key in _UNFINISHED_SAID:
        return
    _UNFINISHED_SAID.add(key)
    print(f"qgn: warning: {text}", file=sys.stderr, flush=True)


def finish_bring_back(project, project_file: Path, most_listed: int) -> None:
    """Under the lock (``Project._clean_up``): ``bring_back`` for the images of an add that was killed
    after project.json listed them (``note_bring_back``), those still listed as it added them.
    Then likewise each note written beside it without locks (``NOTES_DIR``). ``project_file``: the
    project's project.json, never read here: its size, counted as at most ``most_listed`` bytes (the
    caller's bound on a project.json), bounds how much of each note is read (``_note_limit``: that size,
    ``BRING_BACK_PER_IMAGE`` and the project's escaped path per listed image, ``BRING_BACK_SLACK``). A
    longer note is not an add's: no more of it is read, none of it parsed; its images' annotations
    stay in removed/ (where an add finds them), and it is removed like every note finished."""
    path = project.root / BRING_BACK_FILE
    if path.is_file() and not path.is_symlink():
        _finish_one(project, path, project_file, most_listed)
    notes = _notes_beside(project.root)
    for note in notes:
        _finish_one(project, note, project_file, most_listed)
    if notes or (project.root / NOTES_DIR).is_dir():
        try:  # (empty now: under the lock no add is writing one; not looked for at each write any more)
            os.rmdir(project.root / NOTES_DIR)
        except OSError:
            pass


def _finish_one(project, path: Path, project_file: Path, most_listed: int) -> None:
    """``finish_bring_back`` for the note at ``path``, then removed."""
    try:
        doc = read_json(path, "an unfinished add's list", _note_limit(project, project_file, most_listed))
        wanted = {str(entry["key"]): (str(entry["path"]), entry.get("annotation")) for entry in doc["images"]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        wanted = {}  # unreadable: its images' annotations stay in removed/, where an add finds them
    folders: dict = {}
    images = [im for im in project.images if im.key in wanted and project._noted_as(im, wanted[im.key][0], folders)]
    for _, noted in wanted.values():  # a record whose file is gone (an add killed after moving it back, before
        name = noted.get("name") if isinstance(noted, dict) else None  # unlinking its record): names nothing
        if isinstance(name, str) and name.endswith(".qgt") and Path(name).name == name and "\0" not in name:
            kept = project.root / REMOVED_DIR / name  # to bring back (under the lock: no removal is half-way)
            if not os.path.lexists(kept):
                unlink_quietly(record_path(kept))
    if images:
        report = bring_back(project, images, moved={id(im): wanted[im.key][1] for im in images})
        note_kept(project, images, report)
    unlink_quietly(path)


def _note_limit(project, project_file: Path, most_listed: int) -> int:
    """The longest ``BRING_BACK_FILE`` an add of this project's images can have written (see
    ``BRING_BACK_PER_IMAGE``): longer, it names images project.json does not list - nothing to finish."""
    try:
        listed = project_file.stat().st_size
    except OSError:
        listed = 0
    per_image = BRING_BACK_PER_IMAGE + len(json.dumps(str(project.root)))  # (a note of an older version held the
    return min(listed, most_listed) + per_image * len(project.images) + BRING_BACK_SLACK  # paths whole:
    # project.json holds the images inside the project relative to it; a note now spells them as it does)


def note_kept(project, images: list, report: list[RemovedAnnotation]) -> None:
    """``finish_bring_back``'s report, kept for people (``LATE_KEPT_FILE``, said when the project
    opens: ``kept_by_late_adds``): the annotation and autosave of each of ``images`` that
    ``bring_back`` left in removed/, and why - the add that was to tell the user was killed, and
    this writer may be another program. Best effort: a failed write only goes unsaid."""
    folder = project.root / REMOVED_DIR
    autosaves = removed_annotations(folder, "autosave")
    held = {}
    for item in report:
        if not item.brought_back:
            held[str(item.image_path)] = ([item.path.name], item.why)
    for im in images:
        entries = autosaves.get(path_key(im.path))
        if entries:  # its newest autosave, still there: held back (``_bring_back_autosave``)
            names, why = held.get(str(im.path), ([], "the image has a saved annotation of its own"))
            held[str(im.path)] = ([*names, entries[0][0].name], why)
    if not held:
        return
    now = time.time()
    kept = [item for item in _read_late_kept(folder) if any(_is_file(folder / name) for name in item["files"])]
    noted = {(item["image"], tuple(item["files"])) for item in kept}  # (a writer killed after writing it but
    kept += [{"image": image, "files": names, "why": why, "when": now}  # before the add's note went finishes
             for image, (names, why) in held.items() if (image, tuple(names)) not in noted]  # it again)
    try:
        atomic_write_bytes(folder / LATE_KEPT_FILE, (json.dumps({"kept": kept}, indent=1) + "\n").encode())
    except OSError:
        pass


def kept_by_late_adds(project) -> list[str]:
    """Said for people when the project opens (reads only): for each image in the project whose
    older annotation or autosave an add cut short and finished later kept in removed/ (``note_kept``),
    its image, those files (while they are still there) and why. Empty without any."""
    folder = project.root / REMOVED_DIR
    out, seen = [], set()
    for item in _read_late_kept(folder):
        names = [name for name in dict.fromkeys(item["files"]) if _is_file(folder / name)]
        image = project._find(Path(item["image"])) if names else None
        if image is None or (image.key, tuple(names)) in seen:  # (an entry said already: one sentence)
            continue
        seen.add((image.key, tuple(names)))
        if len(out) == MAX_LATE_KEPT_SAID:
            continue
        older = "annotation and autosave" if len(names) > 1 else "autosave" if ".autosave." in names[0] else "annotation"
        out.append(f"{image.path} was added back by an add cut short and finished later, which kept its older "
                   f"{older} in {folder} ({', '.join(_cut(name, MAX_SAID_NAME) for name in names)}): "
                   f"{_cut(item['why'], MAX_SAID_WHY)} (nothing was changed: open them to compare, and move them "
                   "away once done)")
    more = len(seen) - len(out)
    if more:  # the rest counted, not said: the banner stays a few lines
        out.append(f"and {more} more image{'s' if more > 1 else ''} whose older files an add cut short and finished "
                   f"later kept in {folder} (listed in {LATE_KEPT_FILE} there)")
    return out


def _bring_back_entry(project, image, found: dict) -> dict:
    """``image`` in the note of an add (``note_bring_back``): its key and path, and the
    annotation ``bring_back`` is to move back for it, if any: its name in removed/ and the file
    itself (``_file_identity``)."""
    entry: dict = {"key": image.key, "path": project._stored(image.path)}  # as project.json spells it (``Project._noted_as``)
    entries = found.get(path_key(image.path)) if found else None
    identity = _file_identity(entries[0][0]) if entries else None
    if identity is not None:
        entry["annotation"] = {"name": entries[0][0].name, "file": identity}
    return entry


def _moved_back_before(project, image, noted) -> bool:
    """Whether the saved annotation of ``image`` is the very file that an add killed since moved
    back from removed/ (``noted``: its note's ``annotation``), not one saved since by anyone
    else (a save writes a new file). Its record, left in removed/ when the add was killed
    before unlinking it, goes."""
    if not isinstance(noted, dict) or not isinstance(noted.get("file"), list):
        return False
    saved = project.annotation_path(image)
    identity = None if saved.is_symlink() else _file_identity(saved)
    if identity is None or identity[:len(noted["file"])] != noted["file"] or len(noted["file"]) < 4:
        return False
    name = noted.get("name")
    if isinstance(name, str) and name.endswith(".qgt") and Path(name).name == name:
        kept = project.root / REMOVED_DIR / name
        if not os.path.lexists(kept):
            unlink_quietly(record_path(kept))
    return True


def bring_back(project, images: list, moved: dict | None = None) -> list[RemovedAnnotation]:
    """Under the write lock, for images just added: the newest annotation ``Project.remove_image`` kept in
    ``removed/`` for the same image file (same resolved path, and the same bytes when its removal
    noted them) is moved back as the image's saved annotation — unless the image has one, or it
    was saved with other classes (a class edit since): then it stays, and is only reported.
    Likewise an autosave removed with it, or after it (unsaved edits of a window that was killed,
    or never told: the app discards its own before a removal), is moved back as the image's
    autosave, where the recovery question finds it - when its annotation came back too (here, or
    by an add killed before its autosave: ``moved``, {id(image): its note's ``annotation``},
    from ``finish_bring_back``), or the image has no saved annotation (``_bring_back_autosave``)."""
    found = removed_annotations(project.root / REMOVED_DIR)
    autosaves = removed_annotations(project.root / REMOVED_DIR, "autosave")
    out, back = [], set()  # back: id() of the images whose annotation was moved back
    for image in images if found else ():  # no resolve() per new path with nothing to match
        entries = found.get(path_key(image.path))
        if not entries:
            continue
        kept, doc = entries[0]
        noted = file_note(image.path) if isinstance(doc.get("file"), dict) else None
        why = why_not(doc, project.generation, project.classes, noted)
        target = project.annotation_path(image)
        if not why and (target.exists() or target.is_symlink()):
            why = f"the image has a saved annotation already ({target})"
        if not why:
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                # a move: the very file the user saved, never a copy - nor over another writer's landing meanwhile
                move_into_place(kept, target)
            except FileExistsError:
                why = f"the image has a saved annotation already ({target})"
            except OSError as exc:  # the image is added; its annotation stays in removed/
                why = f"it could not be moved back ({exc.strerror or exc})"
            else:
                unlink_quietly(record_path(kept))
                back.add(id(image))
                if noted is not None:  # the file it was saved for, noted again (``Project.image_file_changed``)
                    image.file = noted
        out.append(RemovedAnnotation(image.path, target if not why else kept, float(doc["removed"]), not why, why))
    for image in images if autosaves else ():
        if moved and id(image) not in back and _moved_back_before(project, image, moved.get(id(image))):
            back.add(id(image))
        _bring_back_autosave(project, image, autosaves, found, id(image) in back)
    if any(image.file is not None for image in images):
        project._commit(change="noting the image files of the annotations brought back")
    return out


def _bring_back_autosave(project, image, autosaves: dict, annotations: dict, annotation_back: bool) -> None:
    """``bring_back``'s autosave of ``image``: the newest one in ``removed/`` unless an annotation
    of the image was removed after it, the image has an autosave, or ``why_not``; and only when
    its annotation came back too (``annotation_back``) or the image has no saved annotation: an
    autosave of the removed annotation beside a newer one saved since (an add finished by the next
    writer, ``finish_bring_back``, after another window saved it) would be offered over it."""
    entries = autosaves.get(path_key(image.path))
    if not entries:
        return
    if not annotation_back:
        saved = project.annotation_path(image)
        if saved.exists() or saved.is_symlink():
            return
    kept, doc = entries[0]
    later = annotations.get(path_key(image.path))
    if later and float(later[0][1]["removed"]) > float(doc["removed"]):
        return  # removed before the newest annotation was: of an older removal
    noted = file_note(image.path) if isinstance(doc.get("file"), dict) else None
    target = project.autosave_path(image)
    if why_not(doc, project.generation, project.classes, noted) or target.exists() or target.is_symlink():
        return
    try:
        make_folder(target.parent)
        move_into_place(kept, target)  # the very file, its time kept: offered as the crashed session's; never
        # over another writer's autosave landing meanwhile (FileExistsError: it stays in removed/)
    except OSError:
        return  # it stays in removed/
    unlink_quietly(record_path(kept))


def bring_back_blocked(root: Path) -> bool:
    """Whether something that is not a file (a folder, a link to one, a pipe) stands where an add
    writes its note (``BRING_BACK_FILE``): no file can be written in its place."""
    path = Path(root) / BRING_BACK_FILE
    if path.is_symlink():
        return path.is_dir()  # (a link to a file or to nothing is replaced by the note, as any file is)
    return os.path.lexists(path) and not path.is_file()


def _read_late_kept(folder: Path) -> list[dict]:
    """The entries of ``LATE_KEPT_FILE`` in ``folder`` (removed/) that are whole: {"image": str,
    "files": [plain names], "why": str, "when": float}; none when it is missing or unreadable."""
    path = folder / LATE_KEPT_FILE
    if path.is_symlink() or not path.is_file():
        return []
    try:
        doc = read_json(path, "the files kept by unfinished adds", MAX_LATE_KEPT_BYTES)
    except (OSError, ValueError):
        return []
    items = doc.get("kept") if isinstance(doc, dict) else None
    out = []
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict) or not isinstance(item.get("image"), str) or not isinstance(item.get("why"), str):
            continue
        files = item.get("files")
        if not isinstance(files, list) or not files or not all(
                isinstance(name, str) and name.endswith(".qgt") and Path(name).name == name and "\0" not in name
                for name in files) or "\0" in item["image"]:  # (no path holds a NUL byte: not one of ours)
            continue
        out.append({"image": item["image"], "files": files, "why": item["why"], "when": item.get("when")})
    return out


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False where the name cannot be looked up (longer than the file system allows)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _cut(text: str, most: int) -> str:
    """``text``, cut to ``most`` characters ("…" where cut): said for people, read from a file anyone may write."""
    return text if len(text) <= most else text[:most - 1] + "…"


def _file_identity(path: Path) -> list | None:
    """[device, inode, size, modified ns, SHA-256 of its bytes] of the file at ``path``: the same list
    for the same file after a move within the folder's file system (``os.replace``), another for a
    file written since (a save writes a new file in its place); None when there is none. The hash:
    a file system may give a file saved since the freed inode of the old one, and a coarse clock
    (FAT's 2 s, a network share's) its modification time - or a program writes in place - so the
    four numbers alone could take a newer annotation for the one an add moved back. (A note of
    an older version holds the four numbers only: compared as such.)"""
    try:
        st = path.stat()
    except OSError:
        return None
    sha = file_sha256(path)
    return None if sha is None else [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, sha]
