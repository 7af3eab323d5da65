"""A class edit (``qgn.classes_edit.ClassEdit``) applied to a project: its classes, every saved
annotation and every autosave, all or nothing, undoable.

``apply_class_edit(project, edit)`` holds the project's write lock throughout and returns the
inverse edit, with the ``restore`` patches of the pixels a merge or delete moved (apply it to
undo). The crash-safe swap of generations it relies on (journal, generation folders, recovery on
the next write) is ``qgn.project_generations``'s.

Each committed edit is also recorded in ``class-edits.json`` (the last ``HISTORY_LENGTH``: the
generations it went from and to, the class sets, the value map), so that a window with unsaved
edits made under an older generation can follow the edits another window made exactly —
``edits_since`` — instead of by class name (a rename has no namesake). The record is a help, not
the truth: it is written after the commit, and one that is missing, unreadable or does not chain
from the window's classes to the project's makes ``edits_since`` answer None.
"""
from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from .classes import ClassSet, check_unique_names
from .classes_edit import ClassEdit, inverse_of, inverse_patch, remap_label
from .fileio import atomic_write_bytes, read_json, sync_folder
from .formats import FORMATS
from .project import Project
from .project_generations import (
    JOURNAL_FILE, finish_class_edit, generation_dirs, generation_folders, journal_state, read_journal, remove_folders,
)
from .quadtree.label_io import read_label_file


def _stage_file(project, edit: ClassEdit, source: Path, folder: Path, key: str, tag: str, restore: dict) -> None:
    """Write ``source`` (a .qgt of ``edit.before``) remapped into ``folder/<key>.qgt`` with the
    source's modification time (autosave-vs-saved comparisons keep their answer); record the
    inverse's restore patch under ``tag``."""
    old = read_label_file(source, edit.before)
    new = remap_label(old, edit, tag)
    patch = inverse_patch(old, edit)
    if patch is not None:
        restore[tag] = patch
    written = FORMATS["qgt"].write(new, edit.after, folder, key, levels=project.levels)[0]
    stat = source.stat()
    os.utime(written, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def apply_class_edit(project: Project, edit: ClassEdit, progress=None) -> ClassEdit:
    """Apply a class edit to a ``qgn.project.Project``: its classes, every saved annotation and
    every autosave, all or nothing; returns the inverse edit (apply it to undo).

    Holding the project's write lock throughout (``Project.writing``; a class edit made in
    another window or command since is refused with ProjectChangedError), it writes a journal
    (``.class-edit.json``), writes every file remapped into a new generation's folders, swaps
    project.json (the commit), then removes the old folders and the journal. A crash (even
    SIGKILL) before the swap leaves the project as it was, after it the edit done; the next
    writer removes the leftovers the journal proves to be the edit's. ValueError (nothing
    changed) when ``edit.before`` is not the project's class set or a file cannot be read or
    written under it. ``progress(done, total)``: after each image's files are rewritten, from
    ``(0, total)`` to ``(total, total)`` (total: the project's images)."""
    # the names an edit adds or renames were checked where the edit was made (``qgn.classes_edit``);
    # the others are the project's own, as saved (a legacy ' car' must not block recolouring 'road')
    check_unique_names(edit.after.names, "the edited class set")
    with project.writing():
        if project.no_lock is not None:  # another writer could write its files as they are rewritten
            from .project import unlocked_text

            raise ValueError(f"the class edit was not made: {unlocked_text(project.root, project.no_lock)}. "
                             "A class edit rewrites every annotation: copy the project to a disk with locks, edit "
                             "its classes there and copy it back")
        if project.classes != edit.before:
            raise ValueError("this class edit was made for another class set than the project's; make it again")
        root = Path(project.root)
        _refuse_over_a_kept_journal(root, project.generation, project.revision)
        old_gen = project.generation
        new_gen = max([old_gen, *generation_folders(root).values()]) + 1  # never a folder that exists
        staged = [root / name for name in generation_dirs(new_gen)]
        journal = {"from_generation": old_gen, "to_generation": new_gen, "from_revision": project.revision,
                   "to_revision": project.revision + 1, "description": edit.description}
        atomic_write_bytes(root / JOURNAL_FILE, json.dumps(journal).encode("utf-8"))
        sync_folder(root)
        restore: dict = {}
        try:
            for folder in staged:
                folder.mkdir()
            images = list(project.images)
            for i, image in enumerate(images):
                if progress is not None:
                    progress(i, len(images))
                for kind, source, folder in (("annotations", project.annotation_path(image), staged[0]),
                                             ("autosave", project.autosave_path(image), staged[1])):
                    if source.is_file():
                        try:
                            _stage_file(project, edit, source, folder, image.key, f"{kind}/{image.key}", restore)
                        except (ValueError, OSError) as exc:
                            raise ValueError(f"{source} cannot be rewritten with the new classes ({exc}); the class "
                                             "edit was not made, every file keeps the old classes") from None
            if progress is not None:
                progress(len(images), len(images))
            for folder in staged:
                sync_folder(folder)
            project.classes, project.generation = edit.after, new_gen
            project._commit(class_edit=True, change="the class edit")  # the commit: one atomic write of project.json naming the new generation
        except BaseException:
            project.classes, project.generation = edit.before, old_gen
            remove_folders(staged)
            (root / JOURNAL_FILE).unlink(missing_ok=True)
            raise
        finish_class_edit(root, old_gen, new_gen)
        _record(root, old_gen, new_gen, edit)
    return replace(inverse_of(edit), restore=restore)


def _refuse_over_a_kept_journal(root: Path, generation: int, revision: int) -> None:
    """Under the write lock (its clean-up tried to finish an earlier class edit already): ValueError when
    that edit's journal is still kept because a folder it left could neither be removed nor moved
    aside. A new edit would overwrite the journal, and the folder, no longer explained by it, would
    then keep the project from opening: the user moves it out first."""
    journal = read_journal(root)
    if journal is None or journal_state(journal, generation, revision) != "committed":
        return  # none, or one that proves nothing (it is replaced)
    left = [root / name for name in generation_dirs(journal["from_generation"])
            if (root / name).is_dir() and not (root / name).is_symlink()]
    if not left:
        return
    where = ", ".join(str(p) for p in left)
    raise ValueError(f"an earlier class edit could not remove or move aside what it left in {where} (an I/O "
                     f"error, or a file in use); move {'it' if len(left) <= 1 else 'them'} out of the project "
                     f"(keep {'it' if len(left) <= 1 else 'them'} if you need what only "
                     f"{'it holds' if len(left) <= 1 else 'they hold'}) and make the class edit again; nothing "
                     "was changed")


HISTORY_FILE = "class-edits.json"
HISTORY_LENGTH = 32
MAX_HISTORY_BYTES = 16 << 20


def _record(root: Path, old_gen: int, new_gen: int, edit: ClassEdit) -> None:
    """Append ``edit`` to the project's class-edit history (under the write lock, after the commit;
    a failure leaves the edit made and only the history shorter)."""
    entry = {"from_generation": old_gen, "to_generation": new_gen, "before": edit.before.to_json(),
             "after": edit.after.to_json(), "value_map": sorted([int(k), int(v)] for k, v in edit.value_map.items()),
             "description": edit.description}
    edits = _read_history(root) or []
    edits = (edits + [entry])[-HISTORY_LENGTH:]
    try:
        atomic_write_bytes(root / HISTORY_FILE, json.dumps({"format": "qgn-class-edits", "edits": edits}).encode("utf-8"))
    except OSError:
        pass


def _read_history(root: Path) -> list | None:
    path = Path(root) / HISTORY_FILE
    try:
        doc = read_json(path, "class-edit history", MAX_HISTORY_BYTES)
    except (OSError, ValueError):
        return None
    edits = doc.get("edits") if isinstance(doc, dict) and doc.get("format") == "qgn-class-edits" else None
    return edits if isinstance(edits, list) else None


def edits_since(root: str | os.PathLike, generation: int, classes: ClassSet, project_classes: ClassSet,
                project_generation: int) -> list[ClassEdit] | None:
    """The recorded class edits that lead from ``classes`` at ``generation`` to the project's
    ``project_classes`` at ``project_generation``, in order; None when the history does not show
    that whole chain (then follow the classes by name)."""
    chain, gen, current = [], generation, classes
    by_from = {}
    for entry in _read_history(Path(root)) or []:
        if isinstance(entry, dict) and isinstance(entry.get("from_generation"), int):
            by_from[entry["from_generation"]] = entry
    try:
        while gen != project_generation:
            entry = by_from.get(gen)
            if entry is None:
                return None
            before, after = ClassSet.from_json(entry["before"]), ClassSet.from_json(entry["after"])
            if before != current or not isinstance(entry["to_generation"], int) or entry["to_generation"] <= gen:
                return None
            value_map = {int(old): int(new) for old, new in entry["value_map"]}
            chain.append(ClassEdit(before, after, value_map, str(entry.get("description", ""))))
            gen, current = entry["to_generation"], after
    except (KeyError, TypeError, ValueError):
        return None
    return chain if current == project_classes else None

