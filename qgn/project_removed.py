"""What a project remembers of an image it took out, so that adding the same image file back brings
its annotation back (``Project.add_images``).

``Project.remove_image`` moves an image's annotation to ``removed/<key>.<what>.<time>.qgt``; the key
alone does not say which image it was (an image added later may get the same key), so beside each
moved file it writes a record ``<that name>.json``::

    {"format": "qgn-removed", "version": 1, "kind": "annotation" | "autosave", "key": str,
     "path": str (the image file's resolved path), "removed": float (seconds since the epoch),
     "generation": int, "classes": {...} (the project's, as in project.json),
     "file": {"bytes": int, "sha256": str} (optional: the image file's note, ``file_note``)}

Only files with such a record are ever brought back; files in ``removed/`` without one (removed
before records existed, left over by a class edit, a copied link) stay where they are.

An image removed with nothing to move (never saved, no autosave) whose key has kept copies elsewhere (its
Discards) leaves a record alone, ``removed/<key>.removal.<time>.json`` (``Project._write_removal``: kind ``"removal"``,
no ``.qgt`` beside it - bring-back and every kept-file reader pass it by): what dates those copies as that
image's for the image given the key next (``qgn.project_kept._earlier_holder``).
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from .classes import ClassSet
from .fileio import atomic_write_bytes, file_sha256, read_json

REMOVED_DIR = "removed"  # annotations of images taken out of the project (never deleted)
RECORD_FORMAT, RECORD_VERSION = "qgn-removed", 1
RECORD_SUFFIX = ".json"
REMOVAL_KIND = "removal"  # a record alone: an image removed with no file to move (``Project._write_removal``)
MAX_RECORD_BYTES = 1 << 20


@dataclass(frozen=True)
class RemovedAnnotation:
    """An annotation in ``removed/`` of an image being added back. brought_back: moved back as the
    image's saved annotation; else ``why`` it stays in ``removed/`` (``path``)."""

    image_path: Path
    path: Path
    removed: float
    brought_back: bool
    why: str = ""

    @property
    def removed_on(self) -> str:
        """The removal's local date and time, as a person reads it."""
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(self.removed))


def file_note(path: Path) -> tuple | None:
    """(bytes, sha256) of the file at ``path``; None when it cannot be read. What a project notes of an
    image file (``Project.note_image_file``), and a record of it (``write_record``)."""
    try:
        size = path.stat().st_size
    except OSError:
        return None
    sha = file_sha256(path)
    return None if sha is None else (size, sha)


def path_key(image_path) -> str:
    """How a record names its image (and how an added image is matched to it): the path resolved
    (``os.path.realpath``: as ``Path.resolve`` names it, the key records before this one hold), its
    folders resolved and the rest kept as it is where a loop of symbolic links stands in the way -
    removing an image whose file became a link loop ended in 'Symlink loop'; re-added once a file
    stands there, reached through the same folder link or not, it still matches."""
    return os.path.realpath(image_path)


def record_path(kept: Path) -> Path:
    """Where the record of the file moved to ``kept`` is written."""
    return kept.with_name(kept.name + RECORD_SUFFIX)


def write_record(kept: Path, kind: str, key: str, image_path: Path, generation: int, classes: ClassSet,
                 file_note: tuple | None) -> None:
    """Write the record of a file about to be moved to ``kept`` (atomically; before the move, so a
    moved file never lacks one — a record whose file is missing is ignored)."""
    doc = {"format": RECORD_FORMAT, "version": RECORD_VERSION, "kind": kind, "key": key,
           "path": path_key(image_path), "removed": time.time(), "generation": generation,
           "classes": classes.to_json()}
    if file_note is not None:
        doc["file"] = {"bytes": file_note[0], "sha256": file_note[1]}
    atomic_write_bytes(record_path(kept), (json.dumps(doc, indent=1) + "\n").encode("utf-8"))


def _read_record(path: Path) -> dict | None:
    try:
        doc = read_json(path, "removed image's record", MAX_RECORD_BYTES)
    except (OSError, ValueError):  # too big, not JSON, nested 1,000 deep (a few KB)
        return None
    if not isinstance(doc, dict) or doc.get("format") != RECORD_FORMAT or doc.get("version") != RECORD_VERSION:
        return None
    if not isinstance(doc.get("path"), str) or "\0" in doc["path"] or _record_time(doc.get("removed")) is None:
        return None
    doc["removed"] = _record_time(doc["removed"])
    return doc


def _record_time(value) -> float | None:
    """A record's ``removed`` as seconds since the epoch that a clock shows (``time.localtime`` takes it); None for
    anything else - a huge int (``float`` overflows), NaN, infinity, a time past the clock's, a bool, a string: a record
    edited by hand or by another program is ignored, never an error out of every reader of removed/."""
    if type(value) not in (int, float):
        return None
    try:
        seconds = float(value)
        time.localtime(seconds)
    except (OverflowError, OSError, ValueError):
        return None
    return seconds if math.isfinite(seconds) else None


def removed_annotations(folder: Path, kind: str = "annotation") -> dict[str, list[tuple[Path, dict]]]:
    """{resolved image path: [(kept annotation file, its record), ...] newest first} of the saved
    annotations (``kind`` "autosave": the autosaves) in ``folder`` (a project's ``removed/``) that
    have a record and are still there."""
    found: dict[str, list] = {}
    if not folder.is_dir() or folder.is_symlink():
        return found
    for record in folder.glob("*.qgt" + RECORD_SUFFIX):
        doc = _read_record(record)
        kept = record.with_name(record.name[:-len(RECORD_SUFFIX)])
        if doc is None or doc.get("kind") != kind or not kept.is_file() or kept.is_symlink():
            continue
        found.setdefault(doc["path"], []).append((kept, doc))
    for entries in found.values():
        entries.sort(key=lambda item: item[1]["removed"], reverse=True)
    return found


def why_not(doc: dict, generation: int, classes: ClassSet, file_note: tuple | None) -> str:
    """Why the recorded annotation ``doc`` cannot be the added image's (empty: it can): another
    file's bytes, or classes the project no longer has."""
    noted = doc.get("file")
    if isinstance(noted, dict) and file_note is not None and (noted.get("bytes"), noted.get("sha256")) != file_note:
        return "the image file's content is not the one it was removed with"
    if isinstance(noted, dict) and file_note is None:
        return "the image file could not be read to compare it with the one it was removed with"
    if doc.get("generation") != generation or doc.get("classes") != json.loads(json.dumps(classes.to_json())):
        return "it was saved with classes the project has changed since (a class edit)"
    return ""
