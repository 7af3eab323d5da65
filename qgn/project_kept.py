"""Where a project keeps a file aside instead of deleting it: its folders ``removed/``,
``conflicts/``, ``replaced/`` and ``discarded/`` (made when missing, never through a symbolic link:
``kept_folder``), each file under a new name that never replaces another (``kept_path``:
``<stem>.<YYYYmmdd-HHMMSS>.qgt``, ``…-2.qgt`` when taken). Nothing a project keeps aside is ever
deleted by it - but for one name: the autosave of edits undone back to the saved map (redo still
holds them) is kept as ``discarded/<stem>.undone.qgt`` (``undone_path``), which the image's next such
autosave replaces: undo/redo cycles keep one copy per image, never filling the folder.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from .fileio import OutsideRootError, make_folder


MAX_KEPT_STEM = 170  # bytes


def _cut(stem: str) -> str:
    """``stem`` cut to ``MAX_KEPT_STEM`` bytes (a character cut in two is left out)."""
    name = os.fsencode(stem)
    return name[:MAX_KEPT_STEM].decode("utf-8", "ignore") if len(name) > MAX_KEPT_STEM else stem


def undone_path(folder: Path, stem: str) -> Path:
    """``folder/<stem>.undone.qgt``: where an image's autosave undone back to the saved map is kept,
    the one name a later such autosave replaces (a Discard's, ``kept_path``, never has it: its
    names end in a time)."""
    return folder / f"{_cut(stem)}.undone.qgt"


def kept_path(folder: Path, stem: str, suffix: str = ".qgt") -> Path:
    """``folder/<stem>.<YYYYmmdd-HHMMSS>.qgt`` (or ``suffix``), or ``…-2.qgt``, ``…-3.qgt`` when
    taken: a name for a file kept aside (``removed/``, ``conflicts/``) that never replaces another.
    A stem over ``MAX_KEPT_STEM`` bytes (an image's long file name) is cut: the name, its record's
    and their temporaries' must fit a file system's 255 bytes."""
    base = f"{_cut(stem)}.{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = folder / f"{base}{suffix}", 1
    while path.exists() or path.is_symlink():
        n += 1
        path = folder / f"{base}-{n}{suffix}"
    return path


def keep_aside(root: Path, name: str, stem: str, suffix: str = ".qgt") -> Path:
    """A new name (``kept_path``) for a file the project keeps aside in its folder ``name``
    (``kept_folder``: never through a symbolic link)."""
    return kept_path(kept_folder(root, name), stem, suffix)


def kept_folder(root: Path, name: str) -> Path:
    """``root/name`` — ``removed/``, ``conflicts/``, ``replaced/``, ``discarded/``: where the
    project keeps files aside — made when missing. OutsideRootError (nothing moved) when it is a symbolic link: a
    project unpacked or copied from elsewhere must not make its writes land in another folder."""
    folder = Path(root) / name
    if folder.is_symlink():
        raise OutsideRootError(
            f"{folder} is a symbolic link ({os.readlink(folder)}): the project keeps files aside only in a folder of "
            f"its own, never elsewhere. Nothing was moved; replace the link by a real folder named {name!r}")
    return make_folder(folder)
