"""``coco``: one COCO instances file, ``annotations/instances_default.json`` (the layout CVAT and
Datumaro's ``coco_instances`` use), with one annotation per class region per image.

Each annotation's ``segmentation`` is a compressed RLE as pycocotools writes it
(``{"size": [H, W], "counts": "..."}``): run lengths of the mask in column-major order, starting
with the run of zeros, packed by cocoapi common/maskApi.c ``rleToString`` ("Similar to LEB128 but
using 6 bits/char and ascii chars 48-111"; each count after the second is stored as the difference
to the count two before). ``iscrowd`` is 0 (as COCO-Stuff's class regions), ``category_id`` = class
id + 1, ``area`` the pixel count, ``bbox`` [x, y, w, h]. Void pixels are in no annotation.
Each category carries its class colour as ``"color": [r, g, b]`` — the field of COCO panoptic's
categories (panopticapi's panoptic_coco_categories.json; its ``IdGenerator`` reads it), which
pycocotools and Datumaro's COCO reader pass over — and the import reads it back (also "#rrggbb").
``images`` name the image files (``file_name``; ``<name>.png`` when the project has no image file);
with ``images="copy"`` (or ``"link"``) the files go to ``images/default/<file_name>``, where
Datumaro's and CVAT's COCO readers look for the images of the ``default`` subset.

Reading takes RLE (compressed or not) and polygons; polygons are drawn as pycocotools draws them
(``polygon_mask``: maskApi.c ``rleFrPoly``), the reader of COCO, Datumaro, CVAT and FiftyOne.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..classes import UNMATCHED, VOID, ClassSet, check_class_names, match_class_names, unmatched_message
from ..fileio import atomic_write_bytes
from ..label_map import label_dtype
from ..quadtree import NUM_LEVELS
from .base import DatasetWriter, ExportItem, Format, as_label, out_file, place_image
from .guards import (
    POLYGON_WORK_PER_PIXEL, POLYGON_WORK_SLACK, OutsideDatasetError, check_mask_area, check_polygon_work, check_vertices, claimed_size, contained,
    finite, load_json, need, polygon_work, whole,
)
from .source import SourceDataset, SourceItem, broken_item, classes_from_names, find_image, is_file, void_value

ANNOTATION_FILE = Path("annotations") / "instances_default.json"


def rle_counts(mask: np.ndarray) -> list[int]:
    """Run lengths of a bool (H, W) mask in column-major order, the first run being zeros."""
    flat = np.asarray(mask, bool).ravel(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts.insert(0, 0)
    return counts


def column_runs(label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The runs of equal values of an (H, W) label map in column-major order (COCO's), each cut at
    the column's end: (R,) int64 start offsets (column-major flat index) and (R,) values. Made a
    band of columns at a time: the memory beyond the map is the runs (class boundaries), a few bytes
    per boundary pixel, not per pixel."""
    height, width = label.shape
    step = max(1, (1 << 16) // height)
    starts, values = [], []
    for x0 in range(0, width, step):
        flat = np.ascontiguousarray(label[:, x0:x0 + step].T).reshape(-1)  # the columns, one after another
        change = np.empty(flat.size, bool)
        change[0] = True
        np.not_equal(flat[1:], flat[:-1], out=change[1:])
        change[::height] = True
        at = np.flatnonzero(change)
        starts.append(at + x0 * height)
        values.append(flat[at])
    return np.concatenate(starts), np.concatenate(values)


def class_region(starts: np.ndarray, ends: np.ndarray, mine: np.ndarray, height: int) -> dict | None:
    """``segmentation`` (RLE of ``size`` [H, W]), ``area``, ``iscrowd`` and ``bbox`` of one class from
    ``column_runs`` (``ends``: each run's end offset; ``mine``: bool (R,), the runs of the class);
    None when the class has no pixel. Equal to ``rle_counts`` of the class's mask."""
    if not mine.any():
        return None
    size = int(ends[-1])
    flips = np.flatnonzero(mine[1:] != mine[:-1]) + 1
    counts = np.diff(np.concatenate(([0], starts[flips], [size]))).tolist()
    if mine[0]:
        counts.insert(0, 0)
    first, last = starts[mine], ends[mine] - 1  # runs lie in one column each
    xs, top, bottom = first // height, int((first % height).min()), int((last % height).max())
    x0, x1 = int(xs.min()), int(xs.max())
    return {"segmentation": {"size": [height, size // height], "counts": counts_to_string(counts)},
            "area": int((ends[mine] - first).sum()), "iscrowd": 0,
            "bbox": [x0, top, x1 - x0 + 1, bottom - top + 1]}


def counts_to_string(counts) -> str:
    """maskApi.c ``rleToString``: 5 bits per character + a continuation bit, ASCII 48..111."""
    out = []
    for i, count in enumerate(counts):
        x = int(count) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def string_to_counts(text: str) -> list[int]:
    """maskApi.c ``rleFrString``: the inverse of ``counts_to_string``."""
    counts: list[int] = []
    p = 0
    while p < len(text):
        x = k = 0
        more = True
        while more:
            if p >= len(text):
                raise ValueError("truncated COCO RLE string")
            c = ord(text[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def decode_rle(segmentation: dict, source, expected: tuple[int, int] | None = None) -> np.ndarray:
    """bool (H, W) of a COCO RLE (compressed string or uncompressed list of counts). Its claimed
    size is checked against ``expected`` (H, W) and the pixel limit, and its counts against that
    size, before the mask is allocated."""
    where, height, width = rle_toggles(segmentation, source, expected)
    return _decode_toggles(where, height, width)


def rle_toggles(segmentation: dict, source, expected: tuple[int, int] | None = None) -> tuple[np.ndarray, int, int]:
    """(the column-major offsets at which the mask switches on or off, height, width) of a COCO
    RLE, checked as ``decode_rle`` says: work in proportion to its runs, nothing of its size made."""
    try:
        size = segmentation["size"]
        if not isinstance(size, list) or len(size) != 2:
            raise ValueError(f"'size' is {size!r}; expected [height, width]")
        height, width = (whole(v, "'size'") for v in size)
        counts = segmentation["counts"]
        if isinstance(counts, str):
            if len(counts) > 2 * (height * width + 2) + 64:
                raise ValueError("the counts string is longer than any mask of that size needs")
            counts = string_to_counts(counts)
        elif isinstance(counts, list):
            if len(counts) > height * width + 1:
                raise ValueError("more runs than pixels")
            counts = [whole(c, "a count") for c in counts]
        else:
            raise ValueError(f"'counts' is {type(counts).__name__}; expected a string or a list")
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{source}: malformed RLE segmentation ({exc})") from None
    if expected is not None and (height, width) != tuple(expected):
        raise ValueError(f"{source}: the RLE is {width}×{height} but its image is {expected[1]}×{expected[0]}")
    claimed_size(width, height, source, "RLE")
    if sum(counts) != height * width or min(counts, default=0) < 0:
        raise ValueError(f"{source}: RLE counts cover {sum(counts)} pixels, not {height}×{width}")
    ends = np.cumsum(np.asarray(counts, np.int64))
    return _odd_offsets(ends[:-1], height * width), height, width


def toggle_area(where: np.ndarray, size: int) -> int:
    """The pixels a mask of ``size`` pixels switching at ``where`` (``_decode_toggles``) covers."""
    ends = np.append(where[1::2], size) if len(where) % 2 else where[1::2]
    return int(np.sum(ends - where[0::2]))


def paint_toggles(flat: np.ndarray, where: np.ndarray, value) -> None:
    """Set the pixels of ``flat`` (an image's column-major pixels) that a mask switching at
    ``where`` covers to ``value``: work in proportion to them and its runs, not to the image."""
    starts = where[0::2]
    ends = np.append(where[1::2], flat.size) if len(where) % 2 else where[1::2]
    lengths = ends - starts
    if len(starts) * 256 < int(lengths.sum()):  # long runs (a region, a full-size mask): a slice each
        for start, end in zip(starts.tolist(), ends.tolist()):
            flat[start:end] = value
        return
    first = np.cumsum(lengths) - lengths  # where each run begins among the pixels
    flat[np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(starts - first, lengths)] = value


IMAGES_DIR = Path("images") / "default"
#: FiftyOne's COCODetectionDataset: ``labels.json`` beside ``data/`` (fiftyone/utils/coco.py defaults)
FIFTYONE_DATA_DIR = "data"

#: maskApi.c ``rleFrPoly`` draws a polygon's outline on a grid this many times finer than the pixels.
POLYGON_SCALE = 5


def polygon_mask(polygons: list[list[float]], height: int, width: int, source) -> np.ndarray:
    """bool (H, W): the union of ``polygons`` (each [x0, y0, x1, y1, …]) as pycocotools rasterises
    them (``COCO.annToMask``: ``frPyObjects`` of each part, ``merge``d), pixel for pixel.
    ValueError, before any work, when their outlines are longer than any honest outline of the image."""
    return _decode_toggles(polygon_toggles(polygons, height, width, source), height, width)


def polygon_toggles(polygons: list[list[float]], height: int, width: int, source) -> np.ndarray:
    """``polygon_mask``'s switching offsets (``_decode_toggles``), without the mask."""
    check_outline(outline_points(polygons), width, height, source)
    parts = [_fine_vertices(xy) for xy in polygons]
    runs = [_polygon_switches(x, y, height, width) for x, y in parts]
    return _union_toggles(runs, height * width)


def _fine_vertices(xy) -> tuple[np.ndarray, np.ndarray]:
    """A polygon's vertices on ``rleFrPoly``'s grid: ``(int)(scale * v + .5)``, a truncation."""
    x = np.trunc(POLYGON_SCALE * np.asarray(xy[0::2], np.float64) + .5).astype(np.int64)
    y = np.trunc(POLYGON_SCALE * np.asarray(xy[1::2], np.float64) + .5).astype(np.int64)
    return x, y


def outline_points(polygons) -> int:
    """The points ``rleFrPoly`` walks along the outlines of ``polygons``, inside the image or not:
    at most what drawing them costs (``_polygon_switches`` visits only the steps inside its columns)."""
    points = 0
    for xy in polygons:
        x, y = _fine_vertices(xy)
        points += int(np.maximum(np.abs(np.diff(x, append=x[:1])), np.abs(np.diff(y, append=y[:1]))).sum()) + len(x)
    return points


def check_outline(points: int, width: int, height: int, source) -> None:
    """ValueError when outlines of ``points`` (``outline_points``, of one image's polygons together)
    are longer than any honest outline of a ``width`` × ``height`` image."""
    if points > POLYGON_SCALE * (POLYGON_WORK_PER_PIXEL * width * height + POLYGON_WORK_SLACK):
        raise ValueError(f"{source}: its polygons' outlines are {points // POLYGON_SCALE} pixels long, more than any "
                         f"outline of a {width}×{height} image needs; refusing a file built to take hours to draw")


#: Steps of an outline drawn together (``_polygon_switches``): what drawing a polygon holds at once,
#: whatever its coordinates.
POLYGON_CHUNK = 1 << 14


def _polygon_switches(x: np.ndarray, y: np.ndarray, height: int, width: int) -> np.ndarray:
    """The column-major offsets (ascending) at which maskApi.c ``rleFrPoly`` switches between outside
    and inside a polygon whose vertices are ``x``, ``y`` on its fine grid (``_odd_offsets`` of its
    toggles). ``rleFrPoly`` walks every edge one fine step at a time along its longer axis and keeps
    the steps that change fine column at a pixel centre inside the image; only those steps are
    visited here, ``POLYGON_CHUNK`` at a time: memory and time follow the outline inside the image's
    columns, not its coordinates."""
    edges = _Edges(x, y, POLYGON_SCALE * width)
    size, switches = height * width, np.zeros(0, np.int64)
    for first in range(0, edges.total, POLYGON_CHUNK):
        steps = np.arange(first, min(first + POLYGON_CHUNK, edges.total))
        toggles = _step_toggles(*edges.steps(steps), height, width)
        switches = np.setxor1d(switches, _odd_offsets(toggles, size), assume_unique=True)
    toggles = _step_toggles(*edges.joins(), height, width)  # from one edge's last point to the next one's first
    return np.setxor1d(switches, _odd_offsets(toggles, size), assume_unique=True)


class _Edges:
    """A polygon's edges as ``rleFrPoly`` walks them, one fine step at a time along the longer axis
    (the C code's ``(int)`` casts are truncations), each from the end with the smaller coordinate
    along it (``flip``). Of each edge's steps only those whose both ends lie in fine columns
    ``[1, columns - 1]`` are counted (``total``): the others never switch a pixel of the image."""

    def __init__(self, x: np.ndarray, y: np.ndarray, columns: int):
        xe, ye = np.roll(x, -1), np.roll(y, -1)
        dx, dy = np.abs(xe - x), np.abs(y - ye)
        self.along_x = dx >= dy
        self.flip = (self.along_x & (x > xe)) | (~self.along_x & (y > ye))
        self.xs, self.xe = np.where(self.flip, xe, x), np.where(self.flip, x, xe)
        self.ys, ye = np.where(self.flip, ye, y), np.where(self.flip, y, ye)
        self.length = np.where(self.along_x, dx, dy)
        with np.errstate(divide="ignore", invalid="ignore"):  # a zero-length edge: one point, its slope unused
            self.slope = np.where(self.along_x, (ye - self.ys) / np.maximum(dx, 1), (self.xe - self.xs) / np.maximum(dy, 1))
        self.walked_from = np.where(self.along_x, self.ys, self.xs)
        low, high = 1, columns - 1
        # along x every step changes column: steps t (from t - 1) with both columns in [low, high]
        self.first_t = np.maximum(1, low + 1 - self.xs)
        last_t = np.minimum(self.length, high - self.xs)
        # along y a step changes column at most by one: one step per column k reached (from k ∓ 1)
        edge = np.arange(len(x))
        start, end = self.point(edge, 0), self.point(edge, self.length)
        self.falling = ~self.along_x & (self.xe < self.xs)
        self.first_k = np.maximum(np.where(self.falling, end[0], start[0]) + 1, low + 1)
        last_k = np.minimum(np.where(self.falling, start[0], end[0]), high)
        count = np.where(self.along_x, last_t - self.first_t + 1, last_k - self.first_k + 1)
        self.count = np.maximum(count, 0)
        self.before = np.cumsum(self.count) - self.count
        self.total = int(self.count.sum())

    def point(self, edge: np.ndarray, t) -> tuple[np.ndarray, np.ndarray]:
        """(u, v): the fine column and row of step ``t`` of each ``edge``, as ``rleFrPoly`` computes it."""
        walked = np.trunc(self.walked_from[edge] + self.slope[edge] * t + .5).astype(np.int64)
        along_x = self.along_x[edge]
        return np.where(along_x, self.xs[edge] + t, walked), np.where(along_x, walked, self.ys[edge] + t)

    def steps(self, index: np.ndarray):
        """(u, v) before and after each counted step ``index`` (0 … total - 1)."""
        edge = np.searchsorted(self.before, index, side="right") - 1
        rank = index - self.before[edge]
        t = np.where(self.along_x[edge], self.first_t[edge] + rank, 0)
        steep = np.flatnonzero(~self.along_x[edge])
        if steep.size:
            t[steep] = self._reaching(edge[steep], self.first_k[edge[steep]] + rank[steep])
        return (*self.point(edge, t - 1), *self.point(edge, t))

    def _reaching(self, edge: np.ndarray, k: np.ndarray) -> np.ndarray:
        """The first step of each ``edge`` (walked along y) at which its column reaches ``k`` (rising
        edges) or falls below ``k`` (falling ones): found by halving, each step as the C code computes it."""
        falling = self.falling[edge]
        low, high = np.zeros_like(k), self.length[edge]
        while (high - low > 1).any():
            middle = (low + high) // 2
            u = self.point(edge, middle)[0]
            there = np.where(falling, u < k, u >= k)
            high, low = np.where(there, middle, high), np.where(there, low, middle)
        return high

    def joins(self):
        """(u, v) of each edge's last point as walked and of the next edge's first (the last edge has
        none after it: ``rleFrPoly`` does not close the walk)."""
        edge = np.arange(len(self.length) - 1)
        last = self.point(edge, np.where(self.flip[edge], 0, self.length[edge]))
        first = self.point(edge + 1, np.where(self.flip[edge + 1], self.length[edge + 1], 0))
        return (*last, *first)


def _step_toggles(u0, v0, u1, v1, height: int, width: int) -> np.ndarray:
    """The column-major offsets that steps from fine points (``u0``, ``v0``) to (``u1``, ``v1``)
    toggle in ``rleFrPoly``: a step that changes fine column at a pixel centre inside the image,
    taken down to the pixel below."""
    moved = u1 != u0
    u0, v0, u1, v1 = u0[moved], v0[moved], u1[moved], v1[moved]
    xd = np.where(u1 < u0, u1, u1 - 1).astype(np.float64)
    xd = (xd + .5) / POLYGON_SCALE - .5
    keep = (np.floor(xd) == xd) & (xd >= 0) & (xd <= width - 1)
    yd = np.minimum(v1, v0).astype(np.float64)
    yd = np.ceil(np.clip((yd + .5) / POLYGON_SCALE - .5, 0, height))
    return xd[keep].astype(np.int64) * height + yd[keep].astype(np.int64)


def _odd_offsets(offsets: np.ndarray, size: int) -> np.ndarray:
    """The offsets (ascending, below ``size``) at which a mask switches on or off: those ``offsets``
    holds an odd number of times (``rleFrPoly`` drops two at one offset), so that the mask is on
    from the first to the second, from the third to the fourth, …"""
    where, times = np.unique(offsets, return_counts=True)
    return where[(times % 2 == 1) & (where < size)]


def _union_toggles(runs: list[np.ndarray], size: int) -> np.ndarray:
    """The switching offsets of the union of masks of ``size`` pixels given by theirs
    (``_odd_offsets``; an odd count stays on to the end): pycocotools' ``merge``, done on the runs
    alone, never a mask each."""
    if len(runs) == 1:
        return runs[0]
    starts = np.concatenate([r[0::2] for r in runs])
    ends = np.concatenate([np.append(r[1::2], size) if len(r) % 2 else r[1::2] for r in runs])
    at = np.concatenate((starts, ends))
    if not at.size:
        return at
    order = np.argsort(at, kind="stable")
    at = at[order]
    covering = np.cumsum(np.concatenate((np.ones(len(starts), np.int64), -np.ones(len(ends), np.int64)))[order])
    last = np.append(np.flatnonzero(at[1:] != at[:-1]), len(at) - 1)  # each offset's state after all its events
    on = covering[last] > 0
    changed = on != np.concatenate(([False], on[:-1]))
    where = at[last][changed]
    return where[where < size]


def _decode_toggles(where: np.ndarray, height: int, width: int) -> np.ndarray:
    """bool (H, W) that is on from the first of ``where`` (ascending column-major offsets) to the
    second, from the third to the fourth, …"""
    counts = np.diff(np.concatenate(([0], where, [height * width])))
    values = np.zeros(len(counts), bool)
    values[1::2] = True
    return np.repeat(values, counts).reshape((width, height)).T


class CocoWriter(DatasetWriter):
    """Collects each image's RLE annotations; ``finish`` writes the one JSON file."""

    takes_images = True
    uses_images = True
    names_image_only = True  # without ``images``, an image not there is named as it was (``needs_image``)

    def __init__(self, classes: ClassSet, out_dir: Path, levels: int = NUM_LEVELS):
        super().__init__(None, classes, out_dir, levels)
        self.entries: list[dict] = []
        self.annotations: list[dict] = []
        self._names: set[str] = set()  # stems (lower case) of the entries listed: written, or kept (``finish``)
        self._planned: dict[str, str] = {}  # ``plan``: item name -> the stem of its file name
        self._planned_stems: set[str] = set()  # their lower case
        # ``plan``: stem (lower case) -> the items an earlier export (older code, a subset) may have
        # given it: the item's image's stem, its name, its planned stem
        self._claims: dict[str, set[str]] = {}

    def plan(self, names, images=None) -> None:
        """Every item's file name stem, picked as ``add`` would pick it were every item written, in
        the order of the export: an image keeps its own file name unless an earlier item's stem is
        its stem (two images of one name from two folders, x.png beside x.jpg), then it is named
        after the item (``a-2.jpg``). So an item's name depends on no other item failing or being
        exported this time: a re-export that fails on ``p/a.jpg`` never gives ``q/a.jpg`` p/a's ``a.jpg``."""
        images = list(images) if images is not None else [None] * len(names)
        taken: set[str] = set()
        for name, image in zip(names, images):
            if name in self._planned:
                continue
            stem = Path(image).stem if image is not None else name
            if stem.lower() in taken:
                stem = name
            n = 1
            while stem.lower() in taken:  # an item's name can be another image's own stem
                n += 1
                stem = f"{name}-{n}"
            taken.add(stem.lower())
            self._planned[name] = stem
            for claimed in {stem, name, *([Path(image).stem] if image is not None else [])}:
                self._claims.setdefault(claimed.lower(), set()).add(name)
        self._planned_stems = taken

    def _own_entry(self, name: str, image: Path | None, entry: dict) -> bool:
        """Whether the earlier ``entry`` is the item ``name``'s own. An earlier export made by older
        code, or of a subset, named images as they were written: its ``a.jpg`` may be another
        image's of that name (q/a.jpg, when p/a.jpg was not exported then). Where no other item of
        the export could hold the entry's stem it is the item's; else only when its copy is the
        item's image (the same file, or the same bytes); without a copy to compare, not kept."""
        from ..fileio import same_bytes

        stem = Path(entry["file_name"]).stem.lower()
        if not self._claims.get(stem, set()) - {name}:
            return True
        copy = self.out_dir / IMAGES_DIR / entry["file_name"]
        if image is None or self.images not in ("copy", "link") or not is_file(copy) or not is_file(Path(image)):
            return False
        try:
            if os.path.samefile(copy, image):
                return True
        except OSError:
            return False
        return same_bytes(copy, image)

    def _file_name(self, item: ExportItem) -> str:
        """The file name of ``item``'s entry (and image copy): its planned stem (``plan``) and the
        image's extension; unplanned, its image's name unless an entry has that stem already (then
        the item's name), never another item's planned stem."""
        suffix = Path(item.image).suffix if item.image is not None else ".png"
        planned = self._planned.get(item.name)
        if planned is not None and planned.lower() not in self._names:  # (a name given twice: the second is unplanned)
            return f"{planned}{suffix}"
        file_name = item.image.name if item.image is not None else f"{item.name}.png"
        stem, n = Path(file_name).stem, 1
        if stem.lower() in self._names or stem.lower() in self._planned_stems:
            # two images of one name from two folders, or x.png beside x.jpg: Datumaro (CVAT's
            # reader) names an item by its file name without the extension and refuses a repeat
            stem = item.name
        while stem.lower() in self._names or stem.lower() in self._planned_stems:
            n += 1
            stem = f"{item.name}-{n}"
        return f"{stem}{suffix}"

    def add(self, item: ExportItem) -> list[Path]:
        image_id = len(self.entries) + 1
        height, width = item.label.shape
        file_name = self._file_name(item)
        self._names.add(Path(file_name).stem.lower())
        written = []
        if self.images in ("copy", "link") and item.image is not None and Path(item.image).is_file():
            written.append(place_image(Path(item.image), self.out_dir / IMAGES_DIR, file_name, self.images))
        self.entries.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
        starts, values = column_runs(item.label)
        ends = np.append(starts[1:], height * width)
        for c in range(self.classes.num_classes):
            annotation = class_region(starts, ends, values == c, height)
            if annotation is None:
                continue
            self.annotations.append({"id": len(self.annotations) + 1, "image_id": image_id, "category_id": c + 1,
                                     **annotation})
        return written

    def mark(self):
        return len(self.entries), len(self.annotations)

    def undo(self, mark, item: ExportItem, paths: list[Path]) -> None:
        super().undo(mark, item, paths)
        # the names the taken-back entries took are free again (stems, as ``add``'s): only those, not
        # every entry's again (an export taking back many images would be quadratic)
        self._names.difference_update(Path(entry["file_name"]).stem.lower() for entry in self.entries[mark[0]:])
        del self.entries[mark[0]:], self.annotations[mark[1]:]

    def _keep_earlier(self, path: Path) -> None:
        """Append the images ``keep`` named, with their annotations, from the earlier export's
        ``path`` (when it is one of this export's), renumbered after this export's: pycocotools
        (``COCO.createIndex``) indexes images and annotations by ``id``, so an id must not repeat.
        An image keeps only its own earlier entry (``_earlier_entries``), and only where the
        export copies images and its copy is still there."""
        if not self.not_written or not path.is_file():
            return
        try:
            doc = load_json(path)
            categories = [(c["id"], c["name"]) for c in doc["categories"]]
            images = [e for e in doc["images"] if isinstance(e["file_name"], str) and isinstance(e["id"], int)]
            images = self._earlier_entries(images)
            by_image = {e["id"]: [] for e in images}
            for annotation in doc["annotations"]:
                if annotation["image_id"] in by_image:
                    by_image[annotation["image_id"]].append(annotation)
        except (OSError, ValueError, KeyError, TypeError):
            return  # no earlier index of ours to keep entries from
        if categories != [(i + 1, name) for i, name in enumerate(self.classes.names)]:
            return  # another class set: its category ids mean other classes
        for entry in images:
            self._names.add(Path(entry["file_name"]).stem.lower())
            image_id = len(self.entries) + 1
            self.entries.append({**entry, "id": image_id})
            self.annotations += [{**a, "id": len(self.annotations) + 1 + k, "image_id": image_id}
                                 for k, a in enumerate(by_image[entry["id"]])]

    def _earlier_entries(self, earlier: list[dict]) -> list[dict]:
        """Of the earlier export's image entries, those of the images ``keep`` named, at most one
        each: the first whose file name's stem is the image's export name (``add`` names a repeat
        so), else the first named as the image file is - unless that name is another image's (one
        written this time, or another not written whose export name it is). With copies
        (``images`` copy or link) an entry whose copy is gone is not kept: it would name no file."""
        by_stem: dict[str, dict] = {}  # built once: the first entry of each stem, of each file name
        by_file: dict[str, dict] = {}
        for e in earlier:
            by_stem.setdefault(Path(e["file_name"]).stem.lower(), e)
            by_file.setdefault(e["file_name"].lower(), e)
        taken = set(self._names)
        names = {name.lower() for name, _ in self.not_written}
        kept = []
        for name, image in self.not_written:
            planned = self._planned.get(name)
            entry = by_stem.get((planned if planned is not None else name).lower())
            if planned is not None:  # its own name: never another image's entry
                if entry is not None and Path(entry["file_name"]).stem.lower() not in taken:
                    if not (self.images in ("copy", "link")
                            and not is_file(self.out_dir / IMAGES_DIR / entry["file_name"])) \
                            and self._own_entry(name, image, entry):
                        taken.add(Path(entry["file_name"]).stem.lower())
                        kept.append(entry)
                continue
            if entry is None and image is not None and (image.stem.lower() == name.lower()
                                                        or image.stem.lower() not in names):
                entry = by_file.get(image.name.lower())
            if entry is None or Path(entry["file_name"]).stem.lower() in taken:
                continue
            if self.images in ("copy", "link") and not is_file(self.out_dir / IMAGES_DIR / entry["file_name"]):
                continue  # its image copy is gone
            taken.add(Path(entry["file_name"]).stem.lower())
            kept.append(entry)
        return kept

    def finish(self) -> list[Path]:
        categories = [{"id": i + 1, "name": name, "supercategory": "", "color": list(rgb)}
                      for i, (name, rgb) in enumerate(zip(self.classes.names, self.classes.palette))]
        path = out_file(self.out_dir / ANNOTATION_FILE.parent, ANNOTATION_FILE.name)
        self._keep_earlier(path)
        doc = {"info": {"description": "exported by QGN Studio"}, "licenses": [], "categories": categories,
               "images": self.entries, "annotations": self.annotations}
        atomic_write_bytes(path, json.dumps(doc, separators=(",", ":")).encode("utf-8"))
        return [path]


# ---------------------------------------------------------------------------------- dataset import
def _coco_file(src: Path) -> Path:
    if src.is_file():
        return src
    found = sorted((src / "annotations").glob("instances_*.json")) if (src / "annotations").is_dir() else []
    found = found or sorted(src.glob("*.json"))
    if len(found) != 1:
        raise ValueError(f"{src}: expected one COCO instances JSON (annotations/instances_*.json); found {len(found)}")
    return found[0]


def scan_coco(src: Path, images: Path | None) -> SourceDataset:
    path = _coco_file(src)
    doc = load_json(path)
    if not isinstance(doc, dict) or not {"images", "categories"} <= set(doc):
        raise ValueError(f"{path} is not a COCO instances file (needs images, annotations and categories)")
    # FiftyOne's exporter leaves "annotations" out when no image has a label (pycocotools reads none)
    doc.setdefault("annotations", [])
    for key in ("images", "annotations", "categories"):
        need(doc, key, list, str(path))
    categories = coco_categories(doc["categories"], path)
    root = path.parent.parent if path.parent.name == "annotations" else path.parent
    # Datumaro's (and CVAT's) layout: annotations/instances_<subset>.json, images/<subset>/
    subset = path.stem[len("instances_"):] if path.stem.startswith("instances_") else ""
    subset_images = root / "images" / subset if subset and "/" not in subset and subset not in (".", "..") else None
    by_image: dict[int, list[dict]] = {}
    for n, ann in enumerate(doc["annotations"]):
        where = f"{path}: annotations[{n}]"
        try:
            image_id = whole(need(ann, "image_id", (int, float), where), f"{where} image_id")
        except ValueError as exc:
            raise ValueError(f"{exc}; the file is malformed") from None
        by_image.setdefault(image_id, []).append(ann)
    items = []
    seen_ids: dict[int, int] = {}
    for n, image in enumerate(doc["images"]):
        where = f"{path}: images[{n}]"
        try:
            image_id = whole(need(image, "id", (int, float), where), f"{where} id")
            if image_id in seen_ids:
                raise ValueError(f"{where} has the id {image_id} of images[{seen_ids[image_id]}]: two images "
                                 "sharing an id would share their annotations; give each image its own id")
            seen_ids[image_id] = n
            file_name = need(image, "file_name", str, where)
            if not file_name.strip():
                raise ValueError(f"{where}: 'file_name' is empty")
            width, height = claimed_size(need(image, "width", (int, float), where),
                                         need(image, "height", (int, float), where), where, "image")
            found = coco_image(file_name, where, images,
                               (images, subset_images, root / "images", root / FIFTYONE_DATA_DIR, root))
            items.append(SourceItem(Path(file_name).stem, found,
                                    _coco_reader(image_id, file_name, width, height, by_image.get(image_id, []),
                                                 categories, path),
                                    f"{path} image {file_name}", (width, height)))
        except ValueError as exc:
            name = Path(str(image.get("file_name", f"image-{n}"))).stem if isinstance(image, dict) else f"image-{n}"
            items.append(broken_item(name or f"image-{n}", where, exc))
    unknown = sorted(set(by_image) - set(seen_ids))
    if unknown:
        raise ValueError(f"{path}: annotations name image ids {unknown[:5]} that no entry of 'images' has")
    colours = {category["id"]: category_colour(category) for category in doc["categories"]}
    entries = [(name, colours.get(category_id)) for category_id, name in sorted(categories.items())]
    description = (f"coco: COCO instances file {path.name}, {len(doc['images'])} images, "
                   f"{len(doc['annotations'])} annotations, {len(categories)} categories")
    # COCO has no category for the unannotated area (it is in no annotation): every category is a class,
    # ``background`` too
    # (no category at all, as FiftyOne writes a dataset without labels: the classes come from --classes)
    return SourceDataset("coco", root, description, classes_from_names(entries, void=()) if entries else None, items)


def coco_image(file_name: str, where: str, images: Path | None, folders) -> Path | None:
    """The image an entry's ``file_name`` names, in the first of ``folders`` holding it, else by its
    base name in ``images`` (the folder the user named). A name leading outside the folders (an
    absolute path, ``../``) is refused (OutsideDatasetError) unless ``images`` holds a file of its
    base name: Label Studio's COCO export names the image it read, e.g.
    ``../../label-studio/media/images/a.png`` or ``/data/local-files/?d=images/a.png``."""
    try:
        for folder in folders:
            if folder is not None and folder.is_dir():
                contained(folder, file_name, where, "file_name")  # refused when it leads outside
    except OutsideDatasetError:
        found = find_image(Path(file_name).name, images) if images is not None else None
        if found is None:
            raise
        return found
    return find_image(file_name, *folders) or find_image(Path(file_name).name, images)


def category_colour(category: dict) -> tuple[int, int, int] | None:
    """A category's ``color``: [r, g, b] as COCO panoptic's categories hold it (panopticapi
    panoptic_coco_categories.json), or "#rrggbb"; None without one a reader can be sure of."""
    from ..classes import parse_hex_colour

    colour = category.get("color")
    if isinstance(colour, str):
        return parse_hex_colour(colour)
    if isinstance(colour, list) and len(colour) == 3 and all(type(c) is int and 0 <= c <= 255 for c in colour):
        return tuple(colour)
    return None


def coco_categories(entries: list, path: Path) -> dict[int, str]:
    """{id: name} of a COCO file's categories; ValueError naming the entries when two share an
    id or a name (one would silently read as the other)."""
    categories: dict[int, str] = {}
    index: dict[int, int] = {}
    names: list[str] = []
    for n, category in enumerate(entries):
        where = f"{path}: categories[{n}]"
        category_id = whole(need(category, "id", (int, float), where), f"{where} id")
        name = need(category, "name", str, where)
        if not name.strip():
            raise ValueError(f"{where}: 'name' is empty")
        if category_id in categories:
            raise ValueError(f"{where} has the id {category_id} of categories[{index[category_id]}] "
                             f"({categories[category_id]!r}); every category needs its own id")
        categories[category_id], index[category_id] = name, n
        names.append(name)
    try:
        check_class_names(names, f"{path} categories")
    except ValueError as exc:
        raise ValueError(str(exc).replace("classes ", "categories ")) from None
    return categories


def _coco_reader(image_id: int, file_name: str, width: int, height: int, annotations: list[dict],
                 categories: dict[int, str], path: Path):
    def read(classes: ClassSet, mapping=None) -> np.ndarray:
        source = f"{path} image {file_name}"
        names, values = [], []
        for n, ann in enumerate(annotations):
            where = f"{source} annotation {ann.get('id', n) if isinstance(ann, dict) else n}"
            category = whole(need(ann, "category_id", (int, float), where), f"{where} category_id")
            if category not in categories:
                raise ValueError(f"{where}: category_id {category} is none of the file's categories")
            names.append(categories[category])
        values = match_class_names(names, classes, mapping)
        # column-major, as RLE counts and polygon runs are: each annotation paints the pixels it
        # covers, never a mask of the image each (many small or many full annotations on one image
        # cost their pixels, which check_mask_area bounds per image, not their count × the image)
        label = np.zeros(height * width, label_dtype(classes))
        covered = np.zeros(height * width, bool)
        work = outline = vertices = area = 0
        for ann, name, value in zip(annotations, names, values):
            where = f"{source} annotation {ann.get('id')}"
            seg = ann.get("segmentation")
            if isinstance(seg, dict):
                toggles = rle_toggles(seg, where, expected=(height, width))[0]
            elif isinstance(seg, list):
                vertices += sum(len(part) // 2 for part in seg if isinstance(part, list))
                check_vertices(vertices, width, height, source)
                polygons = annotation_polygons(ann, where)
                work += sum(polygon_work(xy[1::2], height) for xy in polygons)
                check_polygon_work(work, width, height, source)
                outline += outline_points(polygons)
                check_outline(outline, width, height, source)
                toggles = polygon_toggles(polygons, height, width, where)
            else:
                raise ValueError(f"{where} has no segmentation (an RLE object or a list of polygons)")
            if value == UNMATCHED:
                raise ValueError(unmatched_message(name, classes, path))
            area += toggle_area(toggles, height * width)
            check_mask_area(area, width, height, source)
            if value == VOID:
                void_value(name, classes, source, toggle_area(toggles, height * width))
                paint_toggles(covered, toggles, False)
                continue
            paint_toggles(label, toggles, value)
            paint_toggles(covered, toggles, True)
        label, covered = (np.ascontiguousarray(a.reshape(width, height).T) for a in (label, covered))
        return _void_rest(label, covered, classes, source)

    return read


def annotation_polygons(ann: dict, where: str) -> list[list[float]]:
    """The polygons of an annotation whose ``segmentation`` is a list: its parts (each [x0, y0, x1,
    y1, …]); none but a ``bbox`` (Label Studio's COCO of a rectangle): the box, whose corners are the
    polygon pycocotools draws a box as (maskApi.c ``rleFrBbox``)."""
    seg = ann["segmentation"]
    if seg == [] and isinstance(ann.get("bbox"), list) and len(ann["bbox"]) == 4:
        x, y, w, h = (finite(v, f"{where} bbox") for v in ann["bbox"])
        return [[x, y, x, y + h, x + w, y + h, x + w, y]]
    polygons = []
    for k, polygon in enumerate(seg):
        if not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2:
            raise ValueError(f"{where}: segmentation[{k}] is not a list of x, y pairs (at least 3)")
        polygons.append([finite(v, f"{where} segmentation[{k}]") for v in polygon])
    return polygons


def _void_rest(label: np.ndarray, covered: np.ndarray, classes: ClassSet, source) -> np.ndarray:
    """``label`` (of ``label_dtype(classes)``) with the pixels no annotation covers set to ignore."""
    if not covered.all():
        if classes.ignore_index is None:
            raise ValueError(f"{source}: some pixels are in no annotation (void), but the class set has no "
                             "ignore value")
        label[~covered] = classes.ignore_index
    return as_label(label, classes, source)



def is_coco_dataset(probe) -> bool:
    """``annotations/instances_*.json``, or a JSON document with ``images`` and ``annotations`` or
    ``categories`` (FiftyOne writes no ``annotations`` when no image has a label)."""
    src = probe.src
    if src.is_dir() and (src / "annotations").is_dir() and list((src / "annotations").glob("instances_*.json")):
        return True
    doc = probe.json_document
    return isinstance(doc, dict) and "images" in doc and ("annotations" in doc or "categories" in doc)


FORMAT = Format("coco", "COCO instances JSON, one RLE mask per class region",
                ".json", None, None, CocoWriter, image_names=True, scan=scan_coco, is_dataset=is_coco_dataset)
