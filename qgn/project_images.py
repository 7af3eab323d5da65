"""A project's images: one image (``ProjectImage``) and finding them by path, the index a look-up reads.

``Project.image_for`` (any spelling of an image's file: through a linked folder, with ``..``) is a lookup in
an index (``_index``: {normalised path: image}), built again only when the list was replaced or changed
(``_indexed``, ``_build_index``); a writer replacing the list publishes the new list's index with it
(``_replace_images``), so a look-up on another thread meanwhile uses the old pair. Entries naming one file
(``twins``) find the one with the newest saved annotation (``_preferred``). ``_own`` and ``_by_key`` find an
image by its key. ``path_key`` and ``_file_key`` are the texts two spellings of one path, of one file, share.

``ProjectImagesMixin`` is a mixin of ``qgn.project.Project`` (its ``__init__`` makes the state). Reads and
writes ``images``, ``_by_path``, ``_list_generation`` under ``_swap``; reads ``root``. Calls back into the
project's ``_annotation_file``.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .fileio import straight_path
from .project_errors import stopping


@dataclass
class ProjectImage:
    """One image of a project. path: absolute; key: unique name of its annotation files."""

    path: Path
    key: str
    done: bool = False
    # (bytes, sha256) of the image file when its annotation was last saved; None: not noted
    file: tuple | None = field(default=None, compare=False)
    # when it was added to the project (seconds since the epoch, UTC); None: before projects noted it, or a
    # version that did not keep it rewrote project.json
    added: float | None = field(default=None, compare=False)


def path_key(path) -> str:
    """The text two paths of one image share: normalised as ``Path(os.path.normpath(...))`` is, a
    ``..`` taken as the system takes it (``straight_path``: ``link/../x.png`` is beside the link's
    target, not ./x.png, which may be another image's file). Not ``project_removed.path_key``, which
    resolves every link (``os.path.realpath``) as the records of removed/ name a file."""
    text = os.fspath(path)
    if ".." in text and ".." in Path(text).parts:  # rare: one realpath
        return str(straight_path(text))
    return str(Path(os.path.normpath(text)))


def _file_key(path, folders: dict, normalised: str | None = None) -> str:
    """The text every spelling of one file shares (through a symbolic link to a folder, ``..``):
    its folder resolved — once per folder, kept in ``folders`` — and its name. ``normalised``:
    ``path_key(path)`` when the caller has it (an index of 20,000 images: 30 ms less)."""
    key = normalised if normalised is not None else path_key(path)
    parent, name = os.path.split(key)
    real = folders.get(parent)
    if real is None:
        real = folders[parent] = os.path.realpath(parent)
    return key if real == parent else os.path.join(real, name)


class ProjectImagesMixin:
    """``Project``'s look-ups of its images (see the module docstring)."""

    def _find(self, path: Path) -> ProjectImage | None:
        """The image of ``path`` (any spelling of its file), None when none is listed or the path
        cannot be looked up (a NUL byte in it: ValueError; too long for the file system: OSError)."""
        index = self._index()
        try:
            path = Path(path).absolute()
            return index.get(path_key(path)) or index.get(_file_key(path, {}))
        except (ValueError, OSError):
            return None


    def _index(self) -> dict:
        """{normalised path: image} of ``images`` (the first of repeats), built again when the list
        was replaced or changed length: finding an image of 20,000 is a lookup, not a scan. Each image
        is found by its file's resolved path too (``_file_key``: one ``realpath`` per folder), and
        every spelling of a file that several entries name (``twins``) finds ``_preferred`` of them."""
        return self._indexed()[2]


    def _indexed(self, should_stop: Callable[[], bool] | None = None) -> tuple:
        """``_by_path`` of the current list and paths, built if it is not (``_index``; ``should_stop``:
        ``warm_index``'s)."""
        with self._swap:  # the pair as one writer left it (``_replace_images``)
            cached, images, generation = self._by_path, self.images, self._list_generation
        if cached is None or cached[0] is not images or cached[1] != len(images) or cached[4] != generation:
            # built from the list read once: another thread may replace it or change its paths meanwhile
            # (a merge or a relink on the job thread while the UI thread builds), and an index built
            # from one list must not be labelled as another's
            cached = self._build_index(images, should_stop) + (generation,)
            with self._swap:
                if self._list_generation == generation:  # else a writer changed the list or its paths meanwhile
                    self._by_path = cached
        return cached


    def _build_index(self, images: list[ProjectImage],
                     should_stop: Callable[[], bool] | None = None) -> tuple:
        """``_by_path`` of ``images``: (images, its length, {normalised path: image}, twins);
        ``should_stop``: ``warm_index``'s."""
        index: dict = {}
        first: dict = {}  # file key → its first image
        repeats: dict = {}  # file key → every image of a file named more than once
        folders: dict = {}
        for im in stopping(images, should_stop):
            key = path_key(im.path)
            index.setdefault(key, im)
            file = _file_key(im.path, folders, key)
            if file != key:
                index.setdefault(file, im)
            seen = first.setdefault(file, im)
            if seen is not im:
                repeats.setdefault(file, [seen]).append(im)
        twins = list(repeats.values())
        for group in twins:
            chosen = self._preferred(group)
            for im in group:
                index[path_key(im.path)] = index[_file_key(im.path, folders)] = chosen
        return images, len(images), index, twins


    def _replace_images(self, images: list[ProjectImage], without: ProjectImage | None = None,
                        built: tuple | None = None) -> None:
        """``images`` as this object's list (a merge of another writer's change, a removal). When a path
        index is in use (``image_for`` was called), the one of the new list is made first, on the calling
        thread (the app's job thread: at 100,000 images a build is ~0.4 s), and published with the list:
        a look-up by path on another thread meanwhile uses the old pair, never rebuilds the new one.
        ``without``: the one image the new list lacks of the current one (the index is the current one's
        less its entries: no paths made again); ``built``: the new list's index, already made."""
        with self._swap:
            cached, generation = self._by_path, self._list_generation
        if built is None and cached is not None:
            current = cached[0] is self.images and cached[1] == len(self.images) and cached[4] == generation
            if (without is not None and current and len(images) == cached[1] - 1
                    and not any(im is without for group in cached[3] for im in group)):
                built = (images, len(images), {k: im for k, im in cached[2].items() if im is not without}, cached[3])
            else:
                built = self._build_index(images)
        if built is not None and built[0] is not images:
            built = None
        with self._swap:
            self._list_generation += 1
            self.images = images
            self._by_path = None if built is None else built[:4] + (self._list_generation,)


    def warm_index(self, should_stop: Callable[[], bool] | None = None) -> None:
        """Build the path index ``image_for`` reads now if the images changed (a merge of another
        writer's change replaces them): a worker thread pays for it, not the next caller.
        ``should_stop()`` (None: never; an open the user can cancel) is polled every
        ``STOP_CHECK_EVERY`` images: ReadStopped when true, no index kept (~0.6 s at 100,000 images)."""
        self._indexed(should_stop)


    def twins(self) -> list[list[ProjectImage]]:
        """Entries of project.json that name one file (spelled through a linked folder, say): each group
        with the one the project uses — ``image_for``, the app, exports — first (``_preferred``)."""
        cached = self._indexed()
        index = cached[2]
        return [sorted(group, key=lambda im: im is not index[path_key(im.path)]) for group in cached[3]]


    def _preferred(self, group: list[ProjectImage]) -> ProjectImage:
        """Of entries naming one file: the one with the newest saved annotation, else the first. The
        others' annotations stay where they are (nothing is deleted); ``twins`` names them."""
        best, newest = group[0], None
        for im in group:
            try:
                mtime = self._annotation_file(im).stat().st_mtime_ns
            except (OSError, ValueError):
                continue
            if newest is None or mtime > newest:
                best, newest = im, mtime
        return best


    def image_for(self, path) -> ProjectImage:
        """The project's image at ``path``; KeyError if it is not in the project."""
        found = self._find(Path(path))
        if found is None:
            raise KeyError(f"{path} is not an image of the project in {self.root}")
        return found


    def _own(self, image: ProjectImage, index: dict[str, ProjectImage] | None = None) -> ProjectImage:
        """This project's image of ``image``'s key — KeyError when there is none, or when that key now
        names another file (``image`` was removed by another writer and its key given to a new image).
        ``index``: ``_by_key()`` of the images as they are, for a caller that asks about many (a scan
        each is quadratic: seconds for 20,000 images)."""
        if index is not None:
            im = index.get(image.key)
        else:  # one image: a scan, stopping at it
            im = next((im for im in self.images if im.key == image.key), None)
        if im is None:
            raise KeyError(f"image {image.key!r} is not in the project in {self.root}")
        if im is not image and path_key(im.path) != path_key(image.path):
            raise KeyError(f"image {image.path} is no longer in the project in {self.root} (another window "
                           f"or command removed it; its key {image.key!r} now names {im.path})")
        return im


    def _by_key(self) -> dict[str, ProjectImage]:
        """Each key's first image."""
        index: dict[str, ProjectImage] = {}
        for im in self.images:
            index.setdefault(im.key, im)
        return index
