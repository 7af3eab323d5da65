"""The crash-safe swap of generations that a class edit (``qgn.project_class_edit``) makes: the
folders that hold a project's saved annotations and autosaves, the journal that proves which of
them a crash left over, and the recovery the next writer makes from it.

Generations. A project starts at generation 0, with ``annotations/`` and ``.autosave/``; a class edit
writes every file anew into the next generation's folders ``annotations.g<N>/`` and
``.autosave.g<N>/`` (``generation_dirs``), swaps project.json (whose ``"generation"`` names them: the
commit), then removes the old folders (``finish_class_edit``: what they hold that the edit did not
carry over goes to ``removed/`` first, never a file of the user's) and makes ``annotations`` a
symbolic link to the new one (``link_annotations``), a stable path for scripts.

The journal ``.class-edit.json`` (``JOURNAL_FILE``), written before the first new folder is made and
removed after the old ones are::

    {"from_generation": int, "to_generation": int, "from_revision": int, "to_revision": int,
     "description": str}

``to_generation`` is above every generation folder on disk and ``to_revision`` is
``from_revision + 1`` (the commit is the next write); ``read_journal`` refuses any other (a journal
that named one generation twice would "prove" the current folders leftovers).

The recovery rule (``journal_state``): the next writer, holding the project's lock (so no live writer
is mid-edit: ``qgn.project.Project._clean_up``), compares the journal with project.json. Still the
generation and revision the edit started from: "uncommitted", the edit's new folders are leftovers
and go with the journal. The edit's generation at its revision or later: "committed", the old folders
are leftovers and ``finish_class_edit`` finishes the edit; the journal stays while a folder could
neither be removed nor moved aside, so that it is still explained. Anything else: the journal proves
nothing, and nothing is removed. Opening reads the same rule (``qgn.project.check_folders``): a
generation folder that project.json does not name is accepted only when the journal explains it. On
a file system without locks nothing of this is done: the lock's proof is missing.

A copy of the project made by a tool that follows links (``cp -rL``) has a real ``annotations``
folder where the link was: when it holds only copies of the current generation's files it is read
as the link (``copied_link``), and the first write moves it to ``removed/`` and makes the link again
(``restore_copied_link``).
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from .fileio import OutsideRootError, is_temporary, read_json, same_bytes
from .project_kept import keep_aside
from .project_removed import REMOVED_DIR

ANNOTATION_DIR, AUTOSAVE_DIR = "annotations", ".autosave"
JOURNAL_FILE = ".class-edit.json"


GENERATION_DIR = re.compile(rf"(?:{re.escape(ANNOTATION_DIR)}|{re.escape(AUTOSAVE_DIR)})(?:\.g([0-9]+))?")


def generation_dirs(generation: int) -> tuple[str, str]:
    """(annotations folder, autosave folder) names of a generation: ``annotations``/``.autosave``
    for 0, ``annotations.g<N>``/``.autosave.g<N>`` after N class edits."""
    if generation == 0:
        return ANNOTATION_DIR, AUTOSAVE_DIR
    return f"{ANNOTATION_DIR}.g{generation}", f"{AUTOSAVE_DIR}.g{generation}"


def generation_folders(root: Path) -> dict[str, int]:
    """{folder name: generation} of the real (not linked) annotation/autosave folders in ``root``."""
    found = {}
    for entry in Path(root).iterdir():
        match = GENERATION_DIR.fullmatch(entry.name)
        if match and entry.is_dir() and not entry.is_symlink():
            found[entry.name] = int(match.group(1) or 0)
    return found


def read_journal(root: Path) -> dict | None:
    """The class-edit journal of ``root`` (None without one, or when it is unreadable or could not
    have been written by a class edit: one goes to a later generation, and its commit is the next
    revision). A journal whose generations are equal would "prove" the current folders to be
    leftovers: the next write would remove every annotation and autosave."""
    path = Path(root) / JOURNAL_FILE
    try:
        doc = read_json(path, "class-edit journal", 1 << 16)
    except (OSError, ValueError):
        return None
    keys = ("from_generation", "to_generation", "from_revision", "to_revision")
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), int) and not isinstance(doc.get(k), bool)
                                            for k in keys):
        return None
    if not (0 <= doc["from_generation"] < doc["to_generation"] and 0 <= doc["from_revision"]
            and doc["to_revision"] == doc["from_revision"] + 1):
        return None
    return doc


def journal_state(journal: dict, generation: int, revision: int) -> str | None:
    """"uncommitted" when project.json is still the one the edit started from, "committed" when
    it is the one the edit wrote or a later write of its generation (generations only grow: the
    edit's old folders are then leftovers), None when it is neither (the journal proves nothing)."""
    if (generation, revision) == (journal["from_generation"], journal["from_revision"]):
        return "uncommitted"
    if generation == journal["to_generation"] and revision >= journal["to_revision"]:
        return "committed"  # (or written since: a journal kept for a leftover folder outlives its edit's write)
    return None


def copied_link(root: Path, generation: int) -> bool:
    """Whether ``root/annotations`` is a real folder (not the link ``link_annotations`` makes) whose
    every entry is a file with the same name and the same bytes in the folder of ``generation``:
    what copying the project with a tool that follows links (``cp -rL``) makes of the link. Such a
    folder holds nothing that the generation's folder does not."""
    folder, target = Path(root) / ANNOTATION_DIR, Path(root) / generation_dirs(generation)[0]
    if generation == 0 or folder.is_symlink() or not folder.is_dir() or not target.is_dir() or target.is_symlink():
        return False
    try:
        for entry in folder.iterdir():
            twin = target / entry.name
            if is_temporary(entry.name):
                continue  # a killed writer's temporary, never read
            if not (entry.is_file() and not entry.is_symlink() and twin.is_file() and not twin.is_symlink()
                    and same_bytes(entry, twin)):
                return False
    except OSError:
        return False
    return True


def _followed_link_message(root: Path, generation: int, count: int) -> str:
    folder, target = generation_dirs(generation)[0], ANNOTATION_DIR
    return (f"{root / target} is a real folder ({count} file(s)) where the link to {folder} belongs, and it holds "
            f"files that are not in {folder}: the project was probably copied with a tool that follows links "
            f"(cp -rL, rsync -L, some backup or sync tools) and then changed. Nothing was changed or deleted. The "
            f"project's annotations are in {root / folder}; move {root / target} out of the project (keep it if "
            f"you need what only it holds) and open the project again")


def restore_copied_link(root: Path, generation: int) -> Path | None:
    """Under the write lock: a copied link (``copied_link``) is moved to ``removed/`` and the link
    made again, so that later saves leave no stale copy behind it; returns where it went."""
    if not copied_link(root, generation):
        return None
    kept = keep_aside(root, REMOVED_DIR, f"{ANNOTATION_DIR}-copied-link", "")
    os.replace(Path(root) / ANNOTATION_DIR, kept)
    link_annotations(root, generation)
    return kept


def finish_class_edit(root: Path, old_generation: int, new_generation: int) -> None:
    """After a class edit's commit: remove the old generation's folders, point the stable
    ``annotations`` link at the new one, and drop the journal."""
    root = Path(root)
    pairs = zip(generation_dirs(old_generation), generation_dirs(new_generation))
    old = [root / old for old, new in pairs if _keep_leftovers(root / old, root / new, root)]
    remove_folders(old)
    left = [folder for folder in old if folder.is_dir() and not folder.is_symlink()]
    for folder in left:  # a file that could not be removed (an I/O error): the folder is moved aside, whole
        try:
            os.replace(folder, keep_aside(root, REMOVED_DIR, f"{folder.name}-left-by-class-edit", ""))
        except (OSError, OutsideRootError):  # (removed/ is a link)
            pass
    link_annotations(root, new_generation)
    if any(folder.is_dir() and not folder.is_symlink() for folder in old):
        # nor could it be moved: the journal stays, so that the folder is still the edit's leftover -
        # the project opens, after later writes too (journal_state) - and the next writer tries again
        return
    (root / JOURNAL_FILE).unlink(missing_ok=True)


def _keep_leftovers(old: Path, new: Path, root: Path) -> bool:
    """Move what the old generation's folder ``old`` holds that the edit did not carry into ``new``
    (a .qgt of no project image, a note a user put there) to ``removed/``: a class edit removes the
    old folder, never a file of the user's. Temporaries of killed writers are not kept. False
    when something could not be moved (the folder must then stay), e.g. ``root/removed`` is a link."""
    if not old.is_dir() or old.is_symlink():
        return True
    for entry in sorted(old.iterdir()):
        if is_temporary(entry.name):
            continue
        if entry.is_file() and not entry.is_symlink() and (new / entry.name).is_file():
            continue  # carried over, remapped
        suffix = "".join(entry.suffixes[-1:])
        try:
            target = keep_aside(root, REMOVED_DIR, f"{old.name.lstrip('.')}-{entry.name[:len(entry.name) - len(suffix)]}",
                                suffix)
            os.replace(entry, target)
        except (OSError, OutsideRootError):
            return False
    return True


def link_annotations(root: Path, generation: int) -> None:
    """Make ``root/annotations`` a symbolic link to the generation's folder (a stable path for
    scripts); silently nothing where links are not possible or a real folder is in the way."""
    if generation == 0:
        return
    link = Path(root) / ANNOTATION_DIR
    if link.exists() and not link.is_symlink():
        return  # a real folder (not ours to remove here)
    tmp = Path(root) / f".{ANNOTATION_DIR}.{os.getpid()}.link.tmp"
    try:
        tmp.unlink(missing_ok=True)
        os.symlink(generation_dirs(generation)[0], tmp, target_is_directory=True)
        os.replace(tmp, link)
    except (OSError, NotImplementedError):
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def remove_folders(folders) -> None:
    """Remove each folder of ``folders`` (paths) with what it holds, as far as it can; a symbolic
    link is left as it is (never followed: what it points at is not the project's to remove)."""
    for folder in folders:
        if not Path(folder).is_symlink():
            shutil.rmtree(folder, ignore_errors=True)
