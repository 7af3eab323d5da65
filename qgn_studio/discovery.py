"""Finding images and their ground truth on disk (no Qt, no torch).

Ground truth for ``DIR/NAME.EXT`` is the first of these that exists:

1. ``DIR/NAME.qgt``, then ``DIR/labels/NAME.qgt``
2. ``DIR/labels/NAME.png`` (also ``masks/``, ``gt/``, ``annotations/``), and the same folders beside
   ``DIR`` when ``DIR`` is called ``images`` (``root/images/NAME.jpg`` ↔ ``root/labels/NAME.png``)
3. ``DIR/NAME_label.png`` (also ``_labels``, ``_gt``, ``_mask``, ``_labelIds``, ``.label``)
4. ``DIR/NAME.png`` when the image itself is not a PNG (``photo.jpg`` ↔ ``photo.png``)

Label files use any single-channel format Pillow reads (PNG, TIFF, BMP …). Opening a folder lists
its images (or those of its ``images/`` subfolder) and skips files that look like label maps.
"""
from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable
from pathlib import Path

from qgn.imagefile import IMAGE_EXTENSIONS

LABEL_EXTENSIONS = (".png", ".tif", ".tiff", ".bmp", ".pgm", ".webp")
LABEL_FOLDERS = ("labels", "masks", "gt", "annotations")
LABEL_SUFFIXES = ("_label", "_labels", "_gt", "_mask", "_labelIds", ".label")
MODEL_EXTENSION = ".safetensors"


def natural_key(path: Path) -> list:
    """Sort key that orders ``img2`` before ``img10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def resolved(path: str | os.PathLike) -> Path:
    """``path`` made absolute with its symbolic links followed, as ``Path.resolve()`` does, but never
    raising: on a symbolic link loop (``resolve()`` raises RuntimeError there) it stops where the loop
    starts. Every path a user gives (command line, drop, dialog, project.json) is resolved with this."""
    return Path(os.path.realpath(path))


def is_link_loop(path: str | os.PathLike) -> bool:
    """Whether ``path`` cannot be reached because of a symbolic link loop (ELOOP)."""
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    except ValueError:  # a NUL in the name
        return False
    return False


def missing_path_problem(path: Path) -> str:
    """What to tell about a path that is neither a file nor a folder: a link loop, a named pipe or
    device (never opened: reading it would hang a worker), or nothing there."""
    from qgn.fileio import NotAFileError, check_regular_file

    if is_link_loop(path):
        return f"{path} is a symbolic link loop"
    try:
        check_regular_file(path)
    except NotAFileError as exc:
        return str(exc)
    return f"{path}: no such file or folder"


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def looks_like_label(path: Path) -> bool:
    """True for file names that follow one of the ground-truth naming rules above."""
    stem = path.stem.lower()
    return any(stem.endswith(s.lower()) for s in LABEL_SUFFIXES) or path.parent.name.lower() in LABEL_FOLDERS


def images_in_folder(folder: Path) -> list[Path]:
    """The images of ``folder`` (or of ``folder/images`` when ``folder`` has none), sorted."""
    return folder_images(folder)[0]


def folder_images(folder: Path) -> tuple[list[Path], list[Path]]:
    """(images, special entries) of ``folder``, or of ``folder/images`` when ``folder`` has no images,
    each sorted: the special entries are those named as images that are no file (a named pipe, a
    device, a symbolic link loop; of ``folder`` and of the ``images`` folder listed instead), left
    out of the images and to be reported, not left out without a word. One pass over the folder, with no ``stat`` per file where the system tells an entry's
    type (``os.scandir``): it runs on the UI thread. OSError when the folder cannot be listed."""
    images: list[Path] = []
    special: list[Path] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            path = folder / entry.name
            if not is_image_file(path) or looks_like_label(path):
                continue
            try:
                if entry.is_file():
                    images.append(path)
                elif not entry.is_dir() and os.path.exists(path):  # a pipe, a device (not a dangling link)
                    special.append(path)
            except OSError:  # a link loop (reported), a link through a file (left out, as a dangling one)
                if is_link_loop(path):
                    special.append(path)
    if not images and (folder / "images").is_dir():
        inner, inner_special = folder_images(folder / "images")
        return inner, sorted(special + inner_special, key=natural_key)
    return sorted(images, key=natural_key), sorted(special, key=natural_key)


def expand_paths(paths: list[str | os.PathLike]) -> tuple[list[Path], list[Path], list[str]]:
    """Sort user-given paths into (images, models, problems).

    Folders contribute their images; a ``.safetensors`` file is a model; any other file is taken as
    an image (reading it later tells whether it is one). Missing paths (and symbolic link loops, a
    model's too) become problem messages.
    """
    images: list[Path] = []
    models: list[Path] = []
    problems: list[str] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found, special = folder_images(path)
            problems += [missing_path_problem(p) for p in special]
            if not found:
                problems.append(f"{path}: no images in this folder")
            images += found
        elif path.suffix.lower() == MODEL_EXTENSION and not is_link_loop(path):
            models.append(path)
        elif path.is_file():
            images.append(path)
        else:
            problems.append(missing_path_problem(path))
    unique = list(dict.fromkeys(resolved(p) for p in images))
    return unique, models, problems


def ground_truth_candidates(image: Path) -> list[Path]:
    """Where the ground truth of ``image`` may be, in the order of the module docstring."""
    folder, stem = image.parent, image.stem
    out = [folder / f"{stem}.qgt", folder / "labels" / f"{stem}.qgt"]
    roots = [folder] + ([folder.parent] if folder.name.lower() == "images" else [])
    for root in roots:
        for name in LABEL_FOLDERS:
            out += [root / name / f"{stem}{ext}" for ext in LABEL_EXTENSIONS]
        if root is not folder:
            out.append(root / "labels" / f"{stem}.qgt")
    for suffix in LABEL_SUFFIXES:
        out += [folder / f"{stem}{suffix}{ext}" for ext in LABEL_EXTENSIONS]
    if image.suffix.lower() != ".png":
        out.append(folder / f"{stem}.png")
    return [p for p in out if p != image]


def find_classes_file(ground_truth: Path) -> Path | None:
    """The class list that comes with a ground-truth file: ``classes.txt`` beside it, else beside
    its ``labels/`` (``masks/``, ``gt/``, ``annotations/``) folder (``root/labels/NAME.png`` ↔
    ``root/classes.txt``, as ``qgn.data.folder`` reads it); None when there is none or it is over
    ``qgn.quadtree.label_io.MAX_CLASSES_FILE_BYTES`` (which ``read_classes_file`` refuses).
    Stricter than ``label_io.find_classes_file`` (a folder the user names as a dataset): beside any
    ground-truth file, the folder above counts only when it is a labels folder."""
    from qgn.quadtree.label_io import MAX_CLASSES_FILE_BYTES  # here: this module stays light to import

    folder = Path(ground_truth).parent
    candidates = [folder / "classes.txt"]
    if folder.name.lower() in LABEL_FOLDERS:  # root/labels/NAME.png: the class list of root
        candidates.append(folder.parent / "classes.txt")
    for candidate in candidates:
        try:
            if candidate.is_file() and candidate.stat().st_size <= MAX_CLASSES_FILE_BYTES:
                return candidate
        except OSError:
            continue
    return None


def find_ground_truth(image: Path) -> Path | None:
    """The ground-truth file of ``image`` (see the module docstring), or None."""
    for candidate in ground_truth_candidates(Path(image)):
        if candidate.is_file():
            return candidate
    return None



def existing_files(paths: list[str | os.PathLike], progress: Callable[[int], None] | None = None,
                   every: int = 500) -> tuple[list[Path], list[Path]]:
    """Split the image files ``paths`` (a project's: files, not folders) into (those on disk,
    resolved as ``expand_paths`` resolves them, without repeats; those missing), in the given order.
    ``progress(n)``: called with the paths checked so far, every ``every`` paths from the first
    (20,000 paths take most of a second; an open sat at "0 of 20,000 images" that long), and with
    0 after each folder listed; it may raise to stop the check.

    Each folder is listed once, so the cost follows the folders' entries, not a ``stat`` and a
    ``resolve`` per path (a project of thousands of images opens without them); a name that is a
    symbolic link is resolved on its own. A folder that cannot be listed is checked path by path."""
    listings: dict[Path, tuple[dict, Path] | None] = {}
    present, missing = [], []
    # one pass: each path made absolute and its folder listed when first met, so the count moves
    # from the start (made absolute and listed first, half of the time went by at "0 of 20,000")
    for n, raw in enumerate(paths, 1):
        if progress is not None and n % every == 0:
            progress(n)
        path = Path(raw).expanduser().absolute()
        listing = listings.get(path.parent, False)
        if listing is False:
            try:
                with os.scandir(path.parent) as scan:
                    listing = ({e.name: e for e in scan}, Path(os.path.realpath(path.parent)))
            except OSError:
                listing = None
            listings[path.parent] = listing
            if progress is not None:
                progress(0)  # (a folder of many entries takes a while to list: the chance to stop)
        if listing is None or path.name in ("", ".", ".."):  # checked on its own
            found, real = path.is_file(), None
        else:
            entry = listing[0].get(path.name)
            try:
                found = entry is not None and entry.is_file()
                real = listing[1] / path.name if found and not entry.is_symlink() else None
            except OSError:  # a link loop, a file gone meanwhile
                found = False
        if not found:
            missing.append(path)
        else:
            present.append(real if real is not None else Path(os.path.realpath(path)))
    return list(dict.fromkeys(present)), missing


MISSING_NAMES_SHOWN = 3


def missing_images_text(missing: list[Path], total: int) -> str:
    """What to tell (plain text) when ``missing`` of a project's ``total`` images are not on disk:
    how many, the first few names, the folder they were expected in, and what to do."""
    count = len(missing)
    names = ", ".join(p.name for p in missing[:MISSING_NAMES_SHOWN]) + (", …" if count > MISSING_NAMES_SHOWN else "")
    folders = sorted({str(p.parent) for p in missing})
    if len(folders) == 1:
        where = folders[0]
    else:
        try:
            common = os.path.commonpath(folders)
        except ValueError:
            common = ""
        where = f"{len(folders)} folders" + (f" under {common}" if common not in ("", os.sep) else "")
    one = count == 1
    return (f"{count} of the project's {total} images {'is' if one else 'are'} missing from {where} ({names}): "
            f"moved, renamed or deleted. Put {'it' if one else 'them'} back there and open the project again, "
            f"or find {'it' if one else 'them'} where {'it is' if one else 'they are'} now (File → Find missing images…); "
            f"until then {'it is' if one else 'they are'} not listed, and {'its annotation stays' if one else 'their annotations stay'} "
            "in the project.")


def twins_text(twins: list) -> str:
    """What to tell (plain text) when entries of project.json name one file (``Project.twins``, the
    entry used first): which, which one is shown and exported, and that nothing was changed."""
    first = twins[0]
    others = ", ".join(im.key for im in first[1:])
    more = f" (and {len(twins) - 1} more file{'s' if len(twins) > 2 else ''} like it)" if len(twins) > 1 else ""
    return (f"The project lists {first[0].path.name} more than once, by different paths to the same file (entries "
            f"{first[0].key} and {others}){more}. The entry used ({first[0].key}: the one with the newest annotation, else the first) is shown and "
            "exported; any annotation of the others stays in the project's annotations folder. Nothing was changed.")
