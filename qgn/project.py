"""A QGN Studio project: a folder that remembers images, their annotations, the classes, the model
and which images are done — and loses nothing when the app or the machine dies.

Layout under ``root``::

    project.json                 {"format": "qgn-project", "version": 1, "classes": {...},
                                  "model": str | null, "levels": 6,
                                  "images": [{"path": str, "key": str, "done": bool}, ...]}
    annotations/<key>.qgt        the saved annotation of each annotated image
    .autosave/<key>.qgt          the latest autosave of an image with unsaved edits
    head.safetensors (+ .json)   the per-project head (``qgn.project_head``), refitted after saves

A class edit (``qgn.classes_edit.apply_to_project``) writes every annotation and autosave anew
into the folders of the next *generation* (``annotations.g<N>/``, ``.autosave.g<N>/``) and then
swaps project.json, which names the generation (``"generation": N``, absent for 0), in one atomic
write: a crash leaves the old classes with the old folders or the new with the new. ``open``
removes the folders of other generations (left by a crash before or after the swap).

Image paths are stored relative to ``root`` (POSIX separators) when the image lies inside it, and
absolute otherwise; ``ProjectImage.path`` is always absolute. Keys are unique, file-name-safe
names derived from the image stems (``a``, ``a-2``, … when stems repeat) and never change.

Every write goes through ``qgn.fileio.atomic_write_bytes`` (temporary file in the same folder,
fsync, rename): a reader sees the old file or the new one, never a partial one. Temporary files
are named ``.<name>.<random>.tmp`` and are never read as annotations; ``open`` removes those left
by a killed writer once they are older than ``STALE_TEMP_SECONDS``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from .annotation.formats import FORMATS, check_format_names, export_annotation
from .classes import ClassSet
from .classes_edit import read_annotation_file
from .fileio import OutsideRootError, atomic_write_bytes, path_inside, remove_stale_temporaries

PROJECT_FILE = "project.json"
PROJECT_FORMAT, PROJECT_VERSION = "qgn-project", 1
ANNOTATION_DIR, AUTOSAVE_DIR = "annotations", ".autosave"
HEAD_FILE = "head.safetensors"  # the per-project head, in its own file (never the model's)
STALE_TEMP_SECONDS = 60.0


class ProjectError(ValueError):
    """A folder that is not a (readable) project, or a request the project cannot honour."""


@dataclass
class ProjectImage:
    """One image of a project. path: absolute; key: unique name of its annotation files."""

    path: Path
    key: str
    done: bool = False


def _key_for(path: Path, taken: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem).strip("._") or "image"
    key, n = stem, 1
    while key.lower() in taken:  # case-insensitive: keys name files on case-insensitive disks too
        n += 1
        key = f"{stem}-{n}"
    return key


class Project:
    """A project folder (see the module docstring). Use ``create`` or ``open``.

    root: the folder (absolute); classes: the ClassSet; model: a model file (stored like image
    paths when the file exists, else kept as given, e.g. a bundled model's name) or None;
    images: the ProjectImage list in order; levels: quadtree levels of the .qgt annotations."""

    def __init__(self, root: Path, classes: ClassSet, model: str | None, images: list[ProjectImage], levels: int = 6,
                 generation: int = 0):
        self.root = Path(root).resolve()
        self.classes = classes
        self.model = model
        self.images = images
        self.levels = levels
        self.generation = generation

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
        cls, root: str | os.PathLike, images: Iterable, classes: ClassSet, model: str | None = None, levels: int = 6
    ) -> "Project":
        """A new project in ``root`` (created if missing). Refuses a folder that already holds a
        project (open it instead) or other files."""
        root = Path(root)
        if (root / PROJECT_FILE).exists():
            raise ProjectError(f"{root} already holds a project; open it instead of creating one")
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise ProjectError(f"{root} is not an empty folder; choose an empty or new folder for the project")
        root.mkdir(parents=True, exist_ok=True)
        project = cls(root, classes, model, [], levels)
        project.add_images(images, save=False)
        project.save()
        return project

    @classmethod
    def open(cls, root: str | os.PathLike) -> "Project":
        """The project in ``root``. FileNotFoundError without project.json, ProjectError when it
        is corrupt, of another format, or of a newer version."""
        root = Path(root)
        path = root / PROJECT_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{root} is not a QGN project (no {PROJECT_FILE}); create one first")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProjectError(f"{path} is corrupt (not JSON: {exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != PROJECT_FORMAT:
            raise ProjectError(f"{path} is not a QGN project file (format {PROJECT_FORMAT!r} expected)")
        if doc.get("version") != PROJECT_VERSION:
            raise ProjectError(f"{path} has version {doc.get('version')!r}; this QGN reads version {PROJECT_VERSION}")
        try:
            classes = ClassSet.from_json(doc["classes"])
            resolved = root.resolve()
            check_keys([e["key"] for e in doc["images"]], path)
            images = [ProjectImage(cls._absolute(resolved, e["path"]), e["key"], _done_flag(e, path))
                      for e in doc["images"]]
            model = doc.get("model")
            levels = int(doc.get("levels", 6))
            generation = int(doc.get("generation", 0))
        except ProjectError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ProjectError(f"{path} is corrupt (missing or bad field: {exc})") from None
        if model is not None and not Path(model).is_absolute() and (resolved / model).exists():
            model = str(resolved / model)
        project = cls(root, classes, model, images, levels, generation)
        project._remove_stale_temporaries()
        project._remove_other_generations()
        return project

    def save(self) -> None:
        """Write project.json atomically."""
        doc = {
            "format": PROJECT_FORMAT, "version": PROJECT_VERSION, "classes": self.classes.to_json(),
            "model": self._stored(self.model) if self.model and Path(self.model).exists() else self.model,
            "levels": self.levels,
            "images": [{"path": self._stored(im.path), "key": im.key, "done": im.done} for im in self.images],
        }
        if self.generation:
            doc["generation"] = self.generation
        atomic_write_bytes(self.root / PROJECT_FILE, (json.dumps(doc, indent=1) + "\n").encode("utf-8"))

    @staticmethod
    def _absolute(root: Path, stored: str) -> Path:
        path = Path(stored)
        return path if path.is_absolute() else root / path

    def _stored(self, path) -> str:
        """A path as project.json stores it: relative (POSIX) inside the root, else absolute."""
        absolute = Path(os.path.normpath(Path(path).absolute()))
        for candidate in (absolute, absolute.resolve()):  # as typed, or through symbolic links
            try:
                return candidate.relative_to(self.root).as_posix()
            except ValueError:
                pass
        return str(absolute)

    # ------------------------------------------------------------------ images
    def add_images(self, paths: Iterable, save: bool = True) -> list[ProjectImage]:
        """Add images (paths already in the project are not added twice); the ProjectImage of
        each path, in order. FileNotFoundError (nothing added) if a path is not a file."""
        out = []
        paths = [Path(os.path.normpath(Path(p).absolute())) for p in paths]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"not image files: {', '.join(missing[:5])}")
        taken = {im.key.lower() for im in self.images}
        for path in paths:
            existing = self._find(path)
            if existing is None:
                existing = ProjectImage(path, _key_for(path, taken))
                taken.add(existing.key.lower())
                self.images.append(existing)
            out.append(existing)
        if save:
            self.save()
        return out

    def _find(self, path: Path) -> ProjectImage | None:
        target = Path(os.path.normpath(Path(path).absolute()))
        for im in self.images:
            if Path(os.path.normpath(im.path)) == target:
                return im
        return None

    def image_for(self, path) -> ProjectImage:
        """The project's image at ``path``; KeyError if it is not in the project."""
        found = self._find(Path(path))
        if found is None:
            raise KeyError(f"{path} is not an image of the project in {self.root}")
        return found

    def set_done(self, image: ProjectImage, done: bool) -> None:
        """Mark an image done (or not) and save project.json."""
        self._own(image).done = bool(done)
        self.save()

    def _own(self, image: ProjectImage) -> ProjectImage:
        for im in self.images:
            if im.key == image.key:
                return im
        raise KeyError(f"image {image.key!r} is not in the project in {self.root}")

    # ------------------------------------------------------------------ annotations
    def annotation_path(self, image: ProjectImage) -> Path:
        return path_inside(self.root, self.annotation_dir, f"{self._own(image).key}.qgt")

    def autosave_path(self, image: ProjectImage) -> Path:
        return path_inside(self.root, self.autosave_dir, f"{self._own(image).key}.qgt")

    def load_annotation(self, image: ProjectImage) -> np.ndarray | None:
        """The saved label map (H, W) of ``image`` (``label_dtype(classes)``), or None. Classes
        are matched by name (``qgn.classes_edit.read_annotation_file``)."""
        path = self.annotation_path(image)
        return read_annotation_file(path, self.classes) if path.is_file() else None

    def _write(self, folder: str, image: ProjectImage, label: np.ndarray) -> Path:
        return FORMATS["qgt"].write(label, self.classes, self.root / folder, self._own(image).key, levels=self.levels)[0]

    def save_annotation(self, image: ProjectImage, label: np.ndarray) -> None:
        """Save ``label`` (H, W) atomically as the image's annotation; drop its autosave."""
        self._write(self.annotation_dir, image, label)
        self.discard_autosave(image)

    def autosave(self, image: ProjectImage, label: np.ndarray) -> None:
        """Store unsaved edits atomically in .autosave/ (the saved annotation is untouched)."""
        self._write(self.autosave_dir, image, label)

    def recoverable(self) -> list[ProjectImage]:
        """Images whose autosave is newer than their saved annotation (or that have none saved)."""
        found = []
        for im in self.images:
            auto = self.autosave_path(im)
            if not auto.is_file():
                continue
            saved = self.annotation_path(im)
            if not saved.is_file() or auto.stat().st_mtime_ns >= saved.stat().st_mtime_ns:
                found.append(im)
        return found

    def recover(self, image: ProjectImage) -> np.ndarray:
        """The autosaved label map of ``image``; FileNotFoundError when there is none."""
        path = self.autosave_path(image)
        if not path.is_file():
            raise FileNotFoundError(f"no autosave of {image.key!r} in {path.parent}")
        return read_annotation_file(path, self.classes)

    def discard_autosave(self, image: ProjectImage) -> None:
        self.autosave_path(image).unlink(missing_ok=True)

    def annotated(self) -> list[ProjectImage]:
        """Images with a saved annotation."""
        return [im for im in self.images if self.annotation_path(im).is_file()]

    def _remove_stale_temporaries(self) -> None:
        """Delete temporary files of writers killed mid-write (older than STALE_TEMP_SECONDS)."""
        now = time.time()
        for folder in (self.root / self.annotation_dir, self.root / self.autosave_dir, self.root):
            if folder.is_dir():
                for tmp in folder.glob(".*.tmp"):
                    try:
                        if now - tmp.stat().st_mtime > STALE_TEMP_SECONDS:
                            tmp.unlink()
                    except OSError:
                        pass

    def _remove_other_generations(self) -> None:
        """Delete annotation/autosave folders of generations other than the current one (left by a
        class edit that crashed before or after its swap of project.json)."""
        current = set(generation_dirs(self.generation))
        for folder in self.root.iterdir():
            if folder.name not in current and GENERATION_DIR.fullmatch(folder.name) and folder.is_dir():
                shutil.rmtree(folder, ignore_errors=True)


GENERATION_DIR = re.compile(rf"(?:{re.escape(ANNOTATION_DIR)}|{re.escape(AUTOSAVE_DIR)})(?:\.g[0-9]+)?")


def generation_dirs(generation: int) -> tuple[str, str]:
    """(annotations folder, autosave folder) names of a generation: ``annotations``/``.autosave``
    for 0, ``annotations.g<N>``/``.autosave.g<N>`` after N class edits."""
    if generation == 0:
        return ANNOTATION_DIR, AUTOSAVE_DIR
    return f"{ANNOTATION_DIR}.g{generation}", f"{AUTOSAVE_DIR}.g{generation}"


def export_project(
    project: Project, out_dir: str | os.PathLike, formats, progress: Callable[[int, int, str], None] | None = None,
    only_done: bool = False, errors: list[str] | None = None,
) -> list[Path]:
    """Export every saved annotation (of done images only, with ``only_done``) in ``formats`` into
    ``out_dir/<format>/``, files named after the image keys. ``progress(i, n, text)`` after each
    image (i = 1 … n). Returns the paths written, each once.

    An image whose annotation cannot be read or written is reported (its progress text starts with
    "failed") and the export goes on; with ``errors``, one line per failure is appended to it,
    without, the first failure is raised after the others were exported. An annotation whose size
    differs from its image is exported with a warning in its progress text. A name that would lead
    outside ``out_dir`` (OutsideRootError) stops the export at once."""
    from .formats import ExportItem

    names = check_format_names(formats)
    images = [im for im in project.images if im.done or not only_done]
    for name in names:  # temporaries a killed earlier export left
        for folder in (Path(out_dir) / name, *(Path(out_dir) / name).glob("*/"), *(Path(out_dir) / name).glob("*/*/")):
            remove_stale_temporaries(folder)
    writers = [FORMATS[n].open_writer(project.classes, Path(out_dir) / n, project.levels) for n in names]
    image_names = export_names(project.images)
    paths: list[Path] = []
    failures: list[Exception] = []
    for i, image in enumerate(images, start=1):
        try:
            label = project.load_annotation(image)
            if label is None:
                text = f"{image.key}: skipped (no saved annotation)"
            else:
                written: list[Path] = []
                for name, writer in zip(names, writers):
                    stem = image_names[image.key] if FORMATS[name].image_names else image.key
                    written += writer.add(ExportItem(stem, label, image.path))
                paths += written
                text = f"{image.key}: {len(written)} file(s)" + _size_warning(image, label)
        except OutsideRootError:
            raise
        except (ValueError, OSError) as exc:
            failures.append(exc)
            text = f"{image.key}: failed: {exc}"
            if errors is not None:
                errors.append(text)
        if progress is not None:
            progress(i, len(images), text)
    for writer in writers:
        paths += writer.finish()
    if failures and errors is None:
        raise failures[0]
    return list(dict.fromkeys(paths))  # files shared by all images (CVAT's labelmap.txt) once


def _size_warning(image: ProjectImage, label: np.ndarray) -> str:
    """" (warning: …)" when the image file's size differs from its annotation's, else ""."""
    from .imagefile import ORIENTATION_TAG, open_image

    try:
        with open_image(image.path) as picture:  # the header only
            w, h = picture.size
            if picture.getexif().get(ORIENTATION_TAG, 1) in (5, 6, 7, 8):  # shown turned by 90°
                w, h = h, w
    except (ValueError, OSError):
        return ""  # the image moved or is unreadable: the annotation is still what was saved
    if (h, w) != label.shape:
        return (f" (warning: the annotation is {label.shape[1]}×{label.shape[0]} but {image.path.name} is {w}×{h}; "
                "it will not line up)")
    return ""


def written_summary(paths: list[Path], out_dir: str | os.PathLike) -> tuple[int, int]:
    """(files, folders) an export wrote under ``out_dir``: distinct files, and every folder that
    holds them below ``out_dir`` (ImageSets/ too, though it holds only a folder)."""
    out = Path(out_dir)
    files = {Path(p) for p in paths}
    folders = {parent for p in files for parent in p.parents if out in parent.parents}
    return len(files), len(folders)


KEY_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")  # what ``_key_for`` produces


def _done_flag(entry: dict, source: Path) -> bool:
    """An image entry's "done" (default false); only JSON true/false — "no" is not done."""
    done = entry.get("done", False)
    if not isinstance(done, bool):
        raise ProjectError(f"{source}: \"done\" of image {entry.get('key')!r} is {done!r}; use true or false")
    return done


def check_keys(keys: list, source: Path) -> None:
    """Refuse (ProjectError) image keys that ``_key_for`` could not have made: keys name files in
    annotations/, .autosave/ and every export, so a hostile or hand-edited project.json must not
    smuggle in ``../x``, an absolute path, an empty name, a newline or a case-insensitive twin."""
    seen: dict[str, str] = {}
    for key in keys:
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


def export_names(images: list[ProjectImage]) -> dict[str, str]:
    """{key: file stem} for exports that name files after the images (CVAT matches masks to frames
    by the image's name): the image's own stem, or its key where two images share a stem."""
    stems = [im.path.stem for im in images]
    taken = [s.lower() for s in stems]
    return {im.key: (stem if taken.count(stem.lower()) == 1 and stem.strip() == stem and "/" not in stem else im.key)
            for im, stem in zip(images, stems)}
