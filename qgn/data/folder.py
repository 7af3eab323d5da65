"""A generic folder of image/label pairs with a ``classes.txt``.

Layout under ``root``::

    classes.txt
    images/{stem}.{jpg,png,...}     any mode Pillow reads (grayscale, RGBA, 16-bit, ...) → RGB
    labels/{stem}.png               class ids (8/16-bit single channel), or colour-coded RGB

Images and labels are matched by file stem; every image needs a label. ``classes.txt`` lists one
class per line in id order, optionally followed by its colour ``R G B``; blank lines and lines
starting with ``#`` are skipped; a line ``ignore: V`` sets the ignore value (default 255;
``ignore: none`` for label maps without one)::

    road 128 64 128
    traffic light 250 170 30
    sky
    ignore: 255

Single-channel labels must hold ids 0..k-1 or the ignore value (anything else is an error naming
the file). Colour-coded labels are mapped through the palette; ``ClassSet.ignore_color`` (black)
means ignore unless it is a class colour; any other colour is an error.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from qgn.classes import ClassSet
from qgn.data.base import DatasetLayoutError, PairedFileDataset, missing_labels_error
from qgn.data.imageio import read_label_rgb
from qgn.imagefile import IMAGE_EXTENSIONS
from qgn.quadtree.label_io import read_classes_file, read_label

LABEL_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".webp")
COLOUR_MODES = ("RGB", "RGBA")


def files_by_stem(directory: Path, extensions: tuple[str, ...]) -> dict[str, Path]:
    """{stem: path} of the files in ``directory`` with one of ``extensions``; duplicate stems fail, as
    does a named pipe or device by such a name (never read, never left out without a word)."""
    from qgn.fileio import NotAFileError, check_regular_file

    found: dict[str, Path] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix.lower() in extensions and path.exists() and not path.is_dir():
            try:
                check_regular_file(path)
            except NotAFileError as exc:
                raise DatasetLayoutError(str(exc)) from None
            if path.stem in found:
                raise DatasetLayoutError(f"two files with stem {path.stem!r}: {found[path.stem]} and {path}")
            found[path.stem] = path
    return found


def colours_to_ids(rgb: np.ndarray, classes: ClassSet, label_path: Path) -> np.ndarray:
    """Map a colour-coded label (H, W, 3) uint8 to (H, W) int64 class ids / ignore."""
    codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    lookup = {(r << 16) | (g << 8) | b: i for i, (r, g, b) in enumerate(classes.palette)}
    if classes.ignore_index is not None:
        r, g, b = classes.ignore_color
        lookup.setdefault((r << 16) | (g << 8) | b, classes.ignore_index)
    unique_codes, inverse = np.unique(codes, return_inverse=True)
    unknown = [int(c) for c in unique_codes if int(c) not in lookup]
    if unknown:
        shown = ", ".join(f"({c >> 16}, {(c >> 8) & 255}, {c & 255})" for c in unknown[:5])
        raise ValueError(f"label {label_path} has colours not in the palette: {shown}")
    ids = np.array([lookup[int(c)] for c in unique_codes], dtype=np.int64)
    return ids[inverse.reshape(codes.shape)]


class FolderDataset(PairedFileDataset):
    """Image/label pairs from ``root/images`` and ``root/labels`` with ``root/classes.txt``.

    ``split`` selects ``root/{split}/images`` etc. when such a folder exists; otherwise it is
    ignored and ``root`` itself is read (a folder is one split).
    """

    def __init__(self, root: Path | str, split: str | None = None) -> None:
        root = Path(root)
        if split and (root / split / "images").is_dir():
            root = root / split
        classes_path = root / "classes.txt"
        if not classes_path.is_file():
            raise DatasetLayoutError(f"expected class names in {classes_path}; file not found")
        classes = read_classes_file(classes_path)
        image_dir, label_dir = root / "images", root / "labels"
        for directory in (image_dir, label_dir):
            if not directory.is_dir():
                raise DatasetLayoutError(f"expected a folder {directory}; not found")
        images = files_by_stem(image_dir, IMAGE_EXTENSIONS)
        if not images:
            raise DatasetLayoutError(
                f"expected images under {image_dir}/*{{{','.join(IMAGE_EXTENSIONS)}}}; found none"
            )
        labels = files_by_stem(label_dir, LABEL_EXTENSIONS)
        missing = [(path, label_dir / f"{stem}.png") for stem, path in images.items() if stem not in labels]
        if missing:
            raise missing_labels_error(missing, len(images))
        pairs = [(path, labels[stem]) for stem, path in images.items()]
        super().__init__(pairs, classes, label_lookup=None)

    def read_raw_label(self, label_path: Path) -> np.ndarray:
        """Stored ids (H, W), or ids decoded from colours (H, W) int64 for RGB label files."""
        from qgn.imagefile import open_image

        with open_image(label_path) as image:  # the one pixel limit, checked from the header
            colour_coded = image.mode in COLOUR_MODES
        if colour_coded:
            return colours_to_ids(read_label_rgb(label_path), self.classes, label_path)
        return read_label(label_path)

    def map_label(self, raw_label: np.ndarray, label_path: Path) -> np.ndarray:
        """Check that (H, W) values are ids 0..k-1 or the ignore value; return them as int64."""
        label = raw_label.astype(np.int64)
        valid = (label >= 0) & (label < self.classes.num_classes)
        if self.classes.ignore_index is not None:
            valid |= label == self.classes.ignore_index
        if not valid.all():
            bad = np.unique(label[~valid])[:8].tolist()
            allowed = f"0..{self.classes.num_classes - 1}"
            if self.classes.ignore_index is not None:
                allowed += f" or {self.classes.ignore_index} (ignore)"
            raise ValueError(f"label {label_path} has values {bad}; expected {allowed}")
        return label
