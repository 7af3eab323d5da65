"""``camvid``: the CamVid layout of Datumaro (datumaro/plugins/data_formats/camvid.py)::

    label_colors.txt              "r g b name" per label, "0 0 0 background" first (void: the black
                                  label, when its name is a void name; any other label is a class)
    dataset_meta.json             when a class name has spaces: the same labels under their own names
                                  (Datumaro reads it instead of label_colors.txt; ``label_colors``)
    default.txt                   one line per image: "/default/<image file> /defaultannot/<stem>.png"
                                  (``CamvidExporter.save_segm_lists``; quoted when a path has spaces)
    default/<image file>          the image, copied byte for byte
    defaultannot/<stem>.png       RGB colour mask: the class colours, void black

Masks are colour masks, so readers map colours, not line numbers, to labels (Datumaro's
``lazy_mask(path, inverse_colormap)``); class colours must be distinct and not black.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..classes import ClassSet
from ..fileio import LinkLoopError, atomic_write_bytes, read_text_within, resolved
from ..label_map import table_index
from ..quadtree import NUM_LEVELS
from .base import (
    DatasetWriter, ExportItem, Format, ListedNames, colours_to_values, listable_name, out_file, place_image, read_rgb,
)
from .guards import is_contained
from .label_colors import (
    LABEL_COLORS, label_colors_entries, label_files, label_map_file, label_order, read_label_map, void_positions,
    write_label_files,
)
from .png_bands import encode_png
from .source import (
    AmbiguousImageError, SourceDataset, SourceItem, broken_item, classes_from_names, find_image, image_mode,
    index_reader, inside_dataset, is_file, label_of_indices,
)

SUBSET = "default"


def camvid_listable(name: str) -> str:
    """``name`` as the list can hold it: a double quote (the list's quoting character, which
    Datumaro's reader refuses inside a name) becomes ``'``, a line break (the list holds one item a
    line) a space (``listable_name``)."""
    return listable_name(name.replace('"', "'"))


class CamvidWriter(DatasetWriter):
    uses_images = True
    listable = staticmethod(camvid_listable)

    def __init__(self, classes: ClassSet, out_dir: Path, levels: int = NUM_LEVELS):
        super().__init__(None, classes, out_dir, levels)
        entries, self.header = write_label_files(out_dir, classes, "CamVid export")
        self.colours = np.array([rgb for _, rgb in entries], np.uint8)  # index = class id + 1, 0 = void
        self.lines: list[str] = []
        self.names = ListedNames(camvid_listable)  # the stems listed so far
        self._put_back: set[str] = set()  # lower case: stems taken back whose earlier mask was put back

    @classmethod
    def folder_files(cls, classes: ClassSet, out_dir: Path):
        return label_files(out_dir, classes, "CamVid export")[1]

    def add(self, item: ExportItem) -> list[Path]:
        item = ExportItem(self._listable(item.name), item.label, item.image)
        mask = out_file(self.out_dir / f"{SUBSET}annot", f"{item.name}.png")
        (label, top), k = table_index(item.label, self.classes), self.classes.num_classes
        table = np.zeros((top, 3), np.uint8)  # void: black
        table[:k] = self.colours[1:]
        height, width = label.shape
        atomic_write_bytes(mask, encode_png(height, width, "RGB", lambda y0, y1: table[label[y0:y1]]))
        written = self.header + [mask]
        self.header = []
        # the copy is named by the item (unique in the export), not by the image file: two images
        # of one name in two folders, or x.png beside x.jpg (one Datumaro item id), stay apart
        image_name = f"{item.name}{Path(item.image).suffix.lower() if item.image is not None else '.png'}"
        if item.image is not None:
            written.append(place_image(Path(item.image), self.out_dir / SUBSET, image_name, "copy"))
        image_path, mask_path = f"/{SUBSET}/{image_name}", f"/{SUBSET}annot/{item.name}.png"
        if len(image_path.split()) > 1 or len(mask_path.split()) > 1:
            image_path, mask_path = f'"{image_path}"', f'"{mask_path}"'
        self.lines.append(f"{image_path} {mask_path}\n")
        return written

    def plan(self, names, images=None) -> None:
        self.names.reserve(names)

    def _listable(self, name: str) -> str:
        """``name`` as the list can hold it (``camvid_listable``); ``-2``, ``-3`` … where that is
        another item's (``ListedNames``, ``plan``)."""
        return self.names.pick(name)

    def mark(self):
        return self.header, len(self.lines), self.names.mark()

    def undo(self, mark, item: ExportItem, paths: list[Path]) -> None:
        super().undo(mark, item, paths)
        self.header = mark[0]
        del self.lines[mark[1]:]
        for stem in self.names.undo(mark[2]):
            if is_file(self.out_dir / f"{SUBSET}annot" / f"{stem}.png"):
                # the earlier export's mask, put back: its name stays taken (no later item is written
                # over it) and ``finish`` keeps its earlier line (``keep``)
                self.names.pick(stem)
                self._put_back.add(stem.lower())

    def _keep_earlier(self, path: Path) -> None:
        """Append the lines of the images ``keep`` named from the earlier export's list ``path``,
        where their mask is still in ``defaultannot/`` (Datumaro reads the list's pairs): each
        image's own line, named as ``add`` names it, unless an image written this time took that name."""
        wanted = {name for name in (camvid_listable(name) for name in self.kept_names())
                  if name not in self.names or name in self._put_back}
        if not wanted or not path.is_file():
            return
        try:
            pairs = _camvid_lines(path)
        except (OSError, ValueError):
            return  # no earlier list to keep lines from
        for image_path, mask_path in pairs:
            stem = Path(mask_path).stem if mask_path is not None else ""
            if (stem.lower() in wanted and mask_path == f"/{SUBSET}annot/{stem}.png"
                    and is_file(self.out_dir / f"{SUBSET}annot" / f"{stem}.png")):
                wanted.discard(stem.lower())
                quoted = len(image_path.split()) > 1 or len(mask_path.split()) > 1
                self.lines.append(f'"{image_path}" "{mask_path}"\n' if quoted else f"{image_path} {mask_path}\n")

    def finish(self) -> list[Path]:
        path = out_file(self.out_dir, f"{SUBSET}.txt")
        self._keep_earlier(path)
        atomic_write_bytes(path, "".join(self.lines).encode("utf-8"))
        return [path]


# ---------------------------------------------------------------------------------- dataset import
MAX_IMAGE_LIST_BYTES = 64 << 20  # a list of image/mask pairs: ~100 bytes a line, 600k lines


def _camvid_lines(path: Path) -> list[tuple[str, str | None]]:
    pairs = []
    for line in read_text_within(path, "CamVid list", MAX_IMAGE_LIST_BYTES).splitlines():
        line = line.strip()
        if not line:
            continue
        parts = line.split('"')
        if len(parts) == 5:
            pairs.append((parts[1], parts[3]))
            continue
        tokens = line.split()
        pairs.append((tokens[0], tokens[1] if len(tokens) > 1 else None))
    return pairs


def scan_camvid(root: Path, images: Path | None) -> SourceDataset:
    lists = [p for p in sorted(root.glob("*.txt")) if p.name != LABEL_COLORS]
    if not lists:
        raise ValueError(f"{root}: no <subset>.txt list of 'image mask' lines; not a CamVid (Datumaro) dataset")
    found = read_label_map(root)
    if found is None:
        raise ValueError(f"{root}: no label_colors.txt, so the mask colours cannot be proven to mean any class; "
                         "add the label_colors.txt the dataset was exported with")
    entries, colours_file = found
    order = label_order(entries)
    items = []
    for listing in lists:
        for image_rel, mask_rel in _camvid_lines(listing):
            if mask_rel is None:
                continue
            mask, image = root / mask_rel.lstrip("/"), root / image_rel.lstrip("/")
            inside = root.resolve()
            try:
                real_mask, real_image = resolved(mask), resolved(image)
            except LinkLoopError as exc:  # one item named, the batch goes on
                items.append(broken_item(Path(mask_rel).stem, mask, exc))
                continue
            if not (real_mask.is_relative_to(inside) and real_image.is_relative_to(inside)):
                raise ValueError(f"{listing}: {image_rel} {mask_rel} lies outside {root} (as Datumaro, "
                                 "a CamVid list may only name files inside its folder)")
            try:
                image = image if is_file(image) and is_contained(root, image) else \
                    find_image(Path(image_rel).stem, images)
            except AmbiguousImageError as exc:
                items.append(broken_item(Path(mask_rel).stem, mask, exc))
                continue
            items.append(SourceItem(Path(mask_rel).stem, image, _camvid_reader(mask, order, colours_file, root),
                                    str(mask)))
    description = (f"camvid: CamVid (Datumaro) dataset, {len(items)} mask{'' if len(items) == 1 else 's'} in {', '.join(p.name for p in lists)}, "
                   f"{len(order)} labels in {colours_file.name}")
    return SourceDataset("camvid", root, description, classes_from_names(order, void=void_positions(order)), items)


def _camvid_reader(mask: Path, order, colours_file: Path, root: Path):
    def read(classes: ClassSet, mapping=None) -> np.ndarray:
        names, void = [n for n, _ in order], void_positions(order)
        if not mask.is_file():
            raise FileNotFoundError(f"{mask}: no such mask (listed in the CamVid list file)")
        inside_dataset(root, mask)
        if image_mode(mask) in ("L", "P", "I", "I;16"):
            return index_reader(mask, names, void=void)(classes, mapping)
        known = [(rgb, i) for i, (_, rgb) in enumerate(order) if rgb is not None]
        raw = colours_to_values(read_rgb(mask), [c for c, _ in known], [i for _, i in known], mask, colours_file)
        return label_of_indices(raw, names, classes, mapping, mask, void)

    return read



def is_camvid_dataset(probe) -> bool:
    """A folder with ``label_colors.txt`` (or Datumaro's ``dataset_meta.json``) and a ``<subset>.txt``
    list beside it."""
    src = probe.src
    return src.is_dir() and label_map_file(src) is not None and \
        any(p.name != LABEL_COLORS for p in src.glob("*.txt"))


def check_camvid_classes(classes: ClassSet) -> None:
    """ValueError naming the class when label_colors.txt cannot list ``classes`` (what the writer
    would refuse as it opens, having written nothing)."""
    label_colors_entries(classes, "CamVid export")


FORMAT = Format("camvid", "CamVid as Datumaro writes it (label_colors.txt, colour masks)",
                ".png", None, None, CamvidWriter, image_names=True, scan=scan_camvid, is_dataset=is_camvid_dataset,
                check_classes=check_camvid_classes)
