"""A project's own file, project.json: its format (``PROJECT_FORMAT``, version ``PROJECT_VERSION``;
the fields are listed in ``qgn.project``'s docstring), read and checked whole (``read_project_file`` ->
``ProjectFile``: every field, the classes, the image keys) and written as bytes
(``project_json_bytes``: one image per line), both bounded by ``MAX_PROJECT_FILE_BYTES``
(``read_project_bytes``, ``bound_text``, ``too_big_text``). ``marked_as_project`` tells a project.json this QGN cannot read
(damaged, too big, another version) from another tool's.

Used by ``qgn.project`` (``Project`` reads it at every open and merge and writes it at every
commit; ``first_project_file`` and ``check_folders``) and by the app and commands that look for a
project folder (``PROJECT_FILE``). Nothing here locks, merges or writes a file: that is ``Project``'s.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .classes import ClassSet
from .fileio import dangling_link_text, open_regular
from .project_errors import RESTORE_ADVICE, ProjectError, ReadStopped, stopping

PROJECT_FILE = "project.json"
PROJECT_FORMAT, PROJECT_VERSION = "qgn-project", 1
#: The largest project.json read, and written (never a file that would not be read back): 256 MiB,
#: the bound the previous versions read up to (they wrote any size), so that every project they
#: opened still opens. An image's entry is ~265 bytes (path, key, done, size and SHA-256, when added; measured
#: with 80-character paths, ``benchmarks/bench_project_json.py``'s layout): 100,000 images are
#: ~26 MB, the bound ~1 million. Parsing takes ~7× the file's size (a 173 MB file peaked at 1.25 GB).
MAX_PROJECT_FILE_BYTES = 256 << 20
#: An image's entry in project.json, in bytes (above): how many images the bound is said as.
ENTRY_BYTES = 265  # (240 before "added": 25 bytes more)


@dataclass(frozen=True)
class ProjectFile:
    """A parsed, checked project.json. images: (stored path, key, done) triples; digest: SHA-256
    of the file's bytes (what a compare-and-swap compares)."""

    classes: ClassSet
    model: str | None
    levels: int
    generation: int
    revision: int
    images: tuple
    digest: str


def read_project_file(path: Path, should_stop: Callable[[], bool] | None = None) -> ProjectFile:
    """Parse and check ``path`` (a project.json). FileNotFoundError without it; ProjectError
    (one line naming the file and the field) when it is corrupt, of another format or version.
    ``should_stop()`` (None: never) is polled between its steps and in its loops over the entries
    (``stopping``): ReadStopped when true (the parse itself is one call: ~0.15 s at 100,000 images)."""
    path = Path(path)
    if path.exists() and not path.is_file():  # a folder, say: not "no project.json", nor a folder of images
        raise ProjectError(f"{path} is not a file; a project's {PROJECT_FILE} must be one (was it replaced?)")
    if not path.is_file():
        link = path if path.is_symlink() else path.parent if path.parent.is_symlink() else None  # the folder: a loop
        dangling = dangling_link_text(link, advice=RESTORE_ADVICE) if link is not None else None
        if dangling:  # not "no project.json": the user's project file is elsewhere, not to be made anew
            what = "the project's own file is" if link == path else "the project folder is"
            raise ProjectError(f"{dangling}; {what} there, and it cannot be opened without it. Nothing was changed")
        raise FileNotFoundError(f"{path.parent} is not a QGN project (no {PROJECT_FILE}); create one first")
    data = read_project_bytes(path)
    _poll(should_stop)
    try:
        doc = json.loads(data.decode("utf-8-sig"), parse_constant=_no_constant)  # a BOM: an editor's, harmless
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProjectError(f"{path} is corrupt (not JSON: {exc})") from None
    _poll(should_stop)
    if not isinstance(doc, dict) or doc.get("format") != PROJECT_FORMAT:
        raise ProjectError(f"{path} is not a QGN project file (format {PROJECT_FORMAT!r} expected)")
    if doc.get("version") != PROJECT_VERSION:
        raise ProjectError(f"{path} has version {doc.get('version')!r}; this QGN reads version {PROJECT_VERSION}")
    try:
        classes = classes_from_project_json(doc["classes"], path)
        entries = doc["images"]
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ProjectError(f"{path}: \"images\" must be a list of {{\"path\", \"key\", \"done\"}} entries")
        check_keys([e.get("key") for e in stopping(entries, should_stop)], path, should_stop)
        images = tuple((_stored_path(e, path), e["key"], _done_flag(e, path), image_file_entry(e), image_added_entry(e))
                       for e in stopping(entries, should_stop))
        model = doc.get("model")
        if model is not None and not isinstance(model, str):
            raise ProjectError(f"{path}: \"model\" is {model!r}; expected a file name or null")
    except ProjectError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ProjectError(f"{path} is corrupt (missing or bad field: {exc})") from None
    levels = _int_field(doc, "levels", 6, 1, 16, path)
    generation = _int_field(doc, "generation", 0, 0, 1 << 30, path)
    revision = _int_field(doc, "revision", 0, 0, 1 << 62, path)
    return ProjectFile(classes, model, levels, generation, revision, images, hashlib.sha256(data).hexdigest())


def read_project_bytes(path: Path) -> bytes:
    """The bytes of ``path`` (a project.json), never more than ``MAX_PROJECT_FILE_BYTES``, however the
    file grows meanwhile: ProjectError (``too_big_text``) over the bound, unread; NotAFileError (a
    ValueError) for a named pipe, device or folder, never waited on; OSError as ``open`` (missing,
    unreadable)."""
    with open_regular(path) as f:
        too_big = os.fstat(f.fileno()).st_size > MAX_PROJECT_FILE_BYTES
        data = b"" if too_big else f.read(MAX_PROJECT_FILE_BYTES + 1)
    if too_big or len(data) > MAX_PROJECT_FILE_BYTES:
        raise ProjectError(too_big_text(path))
    return data


def _poll(should_stop: Callable[[], bool] | None) -> None:
    if should_stop is not None and should_stop():
        raise ReadStopped("the read was stopped")


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def classes_from_project_json(obj, path: Path) -> ClassSet:
    """The ClassSet of project.json's "classes" (ProjectError naming the file when malformed)."""
    from .classes import check_unique_names

    if not isinstance(obj, dict) or not isinstance(obj.get("names"), list):
        raise ProjectError(f"{path}: \"classes\" must be an object with a list of \"names\"")
    from .label_map import label_dtype

    from .classes import is_json_rgb

    palette, names = obj.get("palette", []), obj["names"]
    if not isinstance(palette, list):
        raise ProjectError(f"{path}: bad \"classes\": \"palette\" is {_shown_json(palette)}; expected a list of "
                           "[r, g, b] colours, whole numbers in 0..255")
    for i, rgb in enumerate(palette):
        if not is_json_rgb(rgb):
            name = f" ({_shown_json(names[i])})" if i < len(names) else ""
            raise ProjectError(f"{path}: bad \"classes\": the colour of class {i}{name} is {_shown_json(rgb)}; expected "
                               "[r, g, b], whole numbers in 0..255 (correct it in the file)")
    if "ignore_color" in obj and not is_json_rgb(obj["ignore_color"]):
        raise ProjectError(f"{path}: bad \"classes\": \"ignore_color\" is {_shown_json(obj['ignore_color'])}; "
                           "expected [r, g, b], whole numbers in 0..255 (correct it in the file)")
    try:
        classes = ClassSet.from_json(obj)
        check_unique_names(classes.names, f"{path} \"classes\"")
        label_dtype(classes)  # a project's maps are 8/16-bit: another ignore value is no project's
    except (TypeError, ValueError) as exc:
        raise ProjectError(f"{path}: bad \"classes\": {exc}") from None
    return classes


def _shown_json(value) -> str:
    """A value of project.json as JSON writes it (``null``, ``true``, ``"7"``), on one line and short."""
    from .shown import echo

    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return echo(text, 80)


def _stored_path(entry: dict, source: Path) -> str:
    stored = entry["path"]
    if not isinstance(stored, str) or not stored or "\0" in stored:
        raise ProjectError(f"{source}: image {entry.get('key')!r} has path {stored!r}; expected a file name")
    return stored


def _int_field(doc: dict, name: str, default: int, low: int, high: int, path: Path) -> int:
    value = doc.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ProjectError(f"{path}: \"{name}\" is {value!r}; expected a whole number in {low}..{high}")
    return value


KEY_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")  # what ``qgn.project._key_for`` produces


def _done_flag(entry: dict, source: Path) -> bool:
    """An image entry's "done" (default false); only JSON true/false — "no" is not done."""
    done = entry.get("done", False)
    if not isinstance(done, bool):
        raise ProjectError(f"{source}: \"done\" of image {entry.get('key')!r} is {done!r}; use true or false")
    return done


def check_keys(keys: list, source: Path, should_stop: Callable[[], bool] | None = None) -> None:
    """Refuse (ProjectError) image keys that ``qgn.project._key_for`` could not have made: keys name files in
    annotations/, .autosave/ and every export, so a hostile or hand-edited project.json must not
    smuggle in ``../x``, an absolute path, an empty name, a newline or a case-insensitive twin.
    ``should_stop``: as ``read_project_file``'s."""
    seen: dict[str, str] = {}
    for key in stopping(keys, should_stop):
        if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key) or key in (".", ".."):
            raise ProjectError(
                f"{source}: image key {key!r} is not a safe file name (letters, digits, '.', '_', '-'; "
                "not starting with '.'); fix or remove that entry of \"images\""
            )
        twin = seen.get(key.lower())
        if twin is not None:
            raise ProjectError(
                f"{source}: image keys {twin!r} and {key!r} name the same files (keys must be unique, "
                "ignoring case); rename one of them"
            )
        seen[key.lower()] = key


def image_file_entry(entry: dict) -> tuple | None:
    """An image entry's "file" ((bytes, sha256)); None when absent (older projects) or malformed:
    a note for a warning, never a reason to refuse a project."""
    noted = entry.get("file")
    if not isinstance(noted, dict):
        return None
    size, sha = noted.get("bytes"), noted.get("sha256")
    if isinstance(size, int) and not isinstance(size, bool) and size >= 0 and isinstance(sha, str) and len(sha) == 64:
        return size, sha
    return None


EARLIEST_ADDED = 946_684_800.0  # 2000-01-01 UTC: an "added" before it is no clock's
ADDED_CLOCK_SLACK_S = 86_400.0  # an "added" more than a day ahead of this clock is no clock's either


def image_added_entry(entry: dict) -> float | None:
    """An image entry's "added" (when it was added, seconds since the epoch); None when absent (older projects, or
    rewritten by a version that did not keep it) or not a time a clock shows: a hint for Kept copy…, never a reason
    to refuse a project. Readers before it ignore the field (0.1.0, 0.2.0: an entry's path, key and done only)."""
    added = entry.get("added")  # compared before any float(): 10**400 overflowed one and stopped the open
    if type(added) not in (int, float) or not EARLIEST_ADDED < added < time.time() + ADDED_CLOCK_SLACK_S:
        return None  # (NaN compares false) a time before 2000 or past tomorrow: a wrong clock or a hand edit
    return float(added)


def project_json_bytes(doc: dict) -> bytes:
    """project.json's bytes: ``json.dumps(doc, indent=1)``'s layout, but each entry of ``images`` on
    a line of its own, written by json's C encoder (``indent`` takes the pure-Python one: 141 ms for
    20,000 images, ``benchmarks/bench_project_json.py``). A change to one image is one line of a
    diff (and the ``revision`` line). It is plain JSON: every reader reads it, and ``read_project_file`` the
    files written before with ``indent=1`` alike."""
    parts = []
    for key, value in doc.items():
        if key == "images" and value:  # each entry by itself: no text of one can split another
            text = "[\n  " + ",\n  ".join(json.dumps(entry) for entry in value) + "\n ]"
        else:
            text = json.dumps(value, indent=1).replace("\n", "\n ")  # no raw line break inside a string
        parts.append(f" {json.dumps(key)}: {text}")
    return ("{\n" + ",\n".join(parts) + "\n}\n").encode("utf-8")


def bound_text() -> str:
    """``MAX_PROJECT_FILE_BYTES`` for people: "256 MiB: about 1,000,000 images" (bytes when not whole MiB)."""
    limit = MAX_PROJECT_FILE_BYTES
    if limit % (1 << 20):
        return f"{limit} bytes"
    return f"{limit >> 20} MiB: about {round(limit / ENTRY_BYTES, -5):,.0f} images"


def too_big_text(path: Path) -> str:
    """The error for a project.json over ``MAX_PROJECT_FILE_BYTES``, true whoever wrote it (this QGN
    writes none that big; the previous version wrote any size, though it read none over the bound)."""
    size = os.stat(path).st_size
    return (f"{path} is {size / 1e6:.1f} MB, more than QGN reads of a project file ({bound_text()}), so it is not "
            f"read and nothing was changed: put back a smaller copy of the project's {PROJECT_FILE} from a backup, "
            "if there is one")


def marked_as_project(path: Path) -> bool:
    """Whether ``path``, a project.json ``read_project_file`` refused, may still be a QGN project's:
    too big or not JSON (damaged) or carrying QGN's format marker; False for other JSON."""
    try:  # a named pipe called project.json: never waited on
        doc = json.loads(read_project_bytes(path).decode("utf-8-sig"), parse_constant=_no_constant)
    except ProjectError:  # over the bound, unread
        return True
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return path.is_file()
    return isinstance(doc, dict) and doc.get("format") == PROJECT_FORMAT
