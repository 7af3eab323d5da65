"""A simulated annotator, and the effort anchors it is compared with (``qgn bench --only annotate``).

``simulate_annotator(gt, start, classes)`` corrects the label map ``start`` towards the ground truth
``gt`` with the app's own edit operations (``qgn.annotation.edit``: ``paint_cells`` with the brush,
``fill_region``) until ``target`` (99 %) of the labelled pixels (``gt`` not ignore) are right.
Each action is one click or one stroke:

1. the *largest wrong region* is found: the biggest 4-connected set of wrong pixels that share
   one true class c;
2. a *fill* click at its first pixel is taken when it fixes pixels and breaks none (the filled
   region, of one current value v, holds no pixel whose truth is v) — e.g. the first click from an
   empty map, or a blob the model got wholly wrong;
3. otherwise one *stroke* of the brush at the coarsest cell level that fits: the largest level l
   with a cell touching the region whose labelled pixels are all c; the stroke paints the largest
   8-connected group of such cells at that level (a brush of several cells dragged over them).
   Level 0 always fits, so every action fixes at least one pixel and the loop ends.

Anchors for the same masks: ``gt_leaves`` — the class leaves of the ground truth's quadtree, what
cell painting from nothing needs at best (one click per leaf); ``polygon_vertices`` — the vertices
a polygon tool needs: every 4-connected region of one class is outlined on the pixel-corner grid
(outer boundary and holes, traced so that the region lies on the left; where a region touches itself
at a corner the loops are joined), straight runs are reduced to their corners, and each closed
outline is simplified with Douglas-Peucker at 1 px tolerance (at least 3 vertices per outline).
Ignore pixels need neither leaves nor polygons.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qgn.annotation.edit import _components, _run_edges, fill_region, paint_cells
from qgn.classes import ClassSet
from qgn.quadtree import Quadtree

TARGET_ACCURACY = 0.99
TOP_LEVEL = 5


# ------------------------------------------------------------------------------------ components
def equal_runs(values: np.ndarray):
    """Horizontal runs of equal non-zero values of (H, W) int ``values``: (R,) int64 row, start,
    end (exclusive), value; ordered by row then start."""
    h, w = values.shape
    nonzero = values != 0
    change = np.ones((h, w + 1), bool)
    change[:, 1:w] = values[:, 1:] != values[:, :-1]
    rows, starts = np.nonzero(change[:, :w] & nonzero)
    _, ends = np.nonzero(change[:, 1:] & nonzero)
    return rows.astype(np.int64), starts.astype(np.int64), ends.astype(np.int64) + 1, values[rows, starts]


def region_components(values: np.ndarray, diagonal: bool = False):
    """4-connected (8-connected with ``diagonal``) regions of equal non-zero values.

    Returns (rows, starts, ends, value, component) per run (see ``equal_runs``); ``component``
    (R,) int64 is the smallest run index of the run's region."""
    rows, starts, ends, vals = equal_runs(values)
    if len(rows) == 0:
        return rows, starts, ends, vals, rows
    w = values.shape[1]
    if diagonal:  # runs widened by one column overlap when they touch at a corner
        u, v = _run_edges(rows, starts, ends + 1, w + 2)
    else:
        u, v = _run_edges(rows, starts, ends, w)
    keep = vals[u] == vals[v]
    return rows, starts, ends, vals, _components(len(rows), u[keep], v[keep])


def _run_pixels(rows, starts, ends, w: int) -> np.ndarray:
    lengths = ends - starts
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(rows * w + starts, lengths) + offsets


# ------------------------------------------------------------------------------------ the annotator
def _fit_maps(gt: np.ndarray, ignore: int | None, levels: int) -> list[np.ndarray]:
    """Per level l: (H_l, W_l) int64 class c when every labelled pixel of the cell is c, -1 when
    the cell mixes classes, -2 when it holds no labelled pixel."""
    h, w = gt.shape
    size = 1 << (levels - 1)
    ph, pw = -(-h // size) * size, -(-w // size) * size
    value = np.full((ph, pw), -2, np.int64)
    value[:h, :w] = gt
    if ignore is not None:
        value[:h, :w][gt == ignore] = -2
    maps = [value]
    for _ in range(levels - 1):
        v = maps[-1]
        q = np.stack([v[0::2, 0::2], v[0::2, 1::2], v[1::2, 0::2], v[1::2, 1::2]])
        lo = np.where(q >= 0, q, np.iinfo(np.int64).max).min(axis=0)
        hi = np.where(q >= 0, q, -1).max(axis=0)
        out = np.where((q == -1).any(axis=0) | (lo != hi), -1, hi)
        out[(q == -2).all(axis=0)] = -2
        maps.append(out)
    return maps


@dataclass
class Effort:
    """actions = clicks + strokes; accuracy_start / accuracy_end over labelled pixels (0 … 1)."""

    actions: int
    clicks: int
    strokes: int
    accuracy_start: float
    accuracy_end: float
    strokes_per_level: list


def _pieces(pixels: np.ndarray, c: int, w: int) -> list[tuple[int, int, np.ndarray]]:
    """The 4-connected pieces of a set of wrong pixels of true class ``c`` (flat indices, sorted)
    as (size, c, pixels), computed on their bounding box."""
    ys, xs = np.divmod(pixels, w)
    y0, x0 = ys.min(), xs.min()
    box = np.zeros((ys.max() - y0 + 1, xs.max() - x0 + 1), np.int64)
    box[ys - y0, xs - x0] = 1
    rows, starts, ends, _, comp = region_components(box)
    out = []
    bw = box.shape[1]
    for root in np.unique(comp):
        mine = comp == root
        local = _run_pixels(rows[mine], starts[mine], ends[mine], bw)
        ly, lx = np.divmod(local, bw)
        out.append((len(local), c, np.sort((ly + y0) * w + lx + x0)))
    return out


def _fill_may_be_clean(label: np.ndarray, gt: np.ndarray, region: np.ndarray, w: int) -> bool:
    """A cheap necessary condition for a clean fill at ``region[0]``: no 4-neighbour of the
    region that holds the seed's current value is right with it (the fill would take it along)."""
    h = label.shape[0]
    flat_label, flat_gt = label.reshape(-1), gt.reshape(-1)
    value = flat_label[region[0]]
    ys, xs = np.divmod(region, w)
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        ny, nx = ys + dy, xs + dx
        ok = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        n = ny[ok] * w + nx[ok]
        if ((flat_label[n] == value) & (flat_gt[n] == value)).any():
            return False
    return True


def simulate_annotator(gt: np.ndarray, start: np.ndarray, classes: ClassSet, target: float = TARGET_ACCURACY,
                       levels: int = TOP_LEVEL + 1, max_actions: int = 100000) -> tuple[Effort, np.ndarray]:
    """Correct ``start`` towards ``gt`` (both (H, W) integer maps of ``classes``) as the module
    docstring says. Returns the effort and the corrected map (uint8/uint16).

    Actions never make a right pixel wrong, so wrong regions only shrink or split: a priority
    queue of regions by size, re-split lazily when popped, visits them in the same order as
    recomputing every region after every action would."""
    import heapq

    from qgn.annotation.annotation import label_dtype

    gt = np.asarray(gt).astype(np.int64)
    label = np.asarray(start).astype(label_dtype(classes)).copy()
    h, w = gt.shape
    ignore = classes.ignore_index
    labelled = gt != ignore if ignore is not None else np.ones_like(gt, bool)
    total = int(labelled.sum())
    fits = _fit_maps(gt, ignore, levels)
    gt_flat = gt.reshape(-1)
    clicks = strokes = 0
    per_level = [0] * levels
    wrong = (labelled & (label != gt)).reshape(-1)
    wrong_count = int(wrong.sum())
    accuracy_start = 1 - wrong_count / total if total else 1.0
    rows, starts, ends, vals, comp = region_components(np.where(wrong.reshape(h, w), gt + 1, 0))
    heap = []
    for root in np.unique(comp):
        mine = comp == root
        pixels = np.sort(_run_pixels(rows[mine], starts[mine], ends[mine], w))
        heap.append((-len(pixels), int(pixels[0]), int(vals[mine][0]) - 1, pixels, True))
    heapq.heapify(heap)
    while total and wrong_count > (1 - target) * total and clicks + strokes < max_actions and heap:
        _, _, c, pixels, connected = heapq.heappop(heap)
        region = pixels[wrong[pixels]]
        if len(region) == 0:
            continue
        if len(region) < len(pixels) or not connected:  # shrunk since queued: it may have split
            for size, cc, piece in _pieces(region, c, w):
                heapq.heappush(heap, (-size, int(piece[0]), cc, piece, True))
            continue
        y, x = divmod(int(region[0]), w)
        edit = None
        if _fill_may_be_clean(label, gt, region, w):
            edit = fill_region(label, x, y, c)
            truth = gt_flat[edit.index]
            if not len(edit.index) or (truth == int(label[y, x])).any() or not (truth == c).any():
                edit = None
        if edit is not None:
            clicks += 1
        else:
            edit, level = _stroke(label, region, c, fits, w)
            strokes += 1
            per_level[level] += 1
        edit.apply(label)
        fixed = wrong[edit.index] & (edit.after == gt_flat[edit.index])
        wrong[edit.index[fixed]] = False
        wrong_count -= int(fixed.sum())
        left = region[wrong[region]]
        if len(left):
            heapq.heappush(heap, (-len(left), int(left[0]), c, left, False))
    accuracy_end = 1 - wrong_count / total if total else 1.0
    return Effort(clicks + strokes, clicks, strokes, float(accuracy_start), float(accuracy_end), per_level), label


def _stroke(label: np.ndarray, region: np.ndarray, c: int, fits: list[np.ndarray], w: int):
    """The paint edit of one stroke over ``region`` (flat pixel indices of true class ``c``) at the
    coarsest fitting level, and that level."""
    ry, rx = np.divmod(region, w)
    for level in range(len(fits) - 1, -1, -1):
        fit = fits[level]
        touched = np.zeros(fit.shape, bool)
        touched[ry >> level, rx >> level] = True
        ok = touched & (fit == c)
        if not ok.any():
            continue
        rows, starts, ends, _, comp = region_components(ok.astype(np.int64), diagonal=True)
        cells = np.bincount(comp, weights=ends - starts)
        group = comp == int(np.argmax(cells))
        cy, cx = np.divmod(_run_pixels(rows[group], starts[group], ends[group], fit.shape[1]), fit.shape[1])
        points = np.stack([cx << level, cy << level], axis=1)
        return paint_cells(label, level, points, c), level
    raise AssertionError("level 0 always fits")


# ------------------------------------------------------------------------------------ anchors
def gt_leaves(gt: np.ndarray, classes: ClassSet, levels: int = TOP_LEVEL + 1) -> int:
    """Class leaves (VOID leaves left out) of the ground truth's quadtree."""
    qt = Quadtree.from_label(np.asarray(gt).astype(np.int64), classes.num_classes, classes.ignore_index, levels)
    return int((qt.value != qt.void).sum())


def _douglas_peucker(points: np.ndarray, tolerance: float) -> int:
    """Vertices kept of an open polyline (P, 2) float, both ends included."""
    keep = 2
    stack = [(0, len(points) - 1)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        p, q = points[a], points[b]
        inner = points[a + 1 : b]
        d = q - p
        norm = np.hypot(*d)
        if norm == 0:
            dist = np.hypot(*(inner - p).T)
        else:
            dist = np.abs(d[0] * (inner[:, 1] - p[1]) - d[1] * (inner[:, 0] - p[0])) / norm
        i = int(np.argmax(dist))
        if dist[i] > tolerance:
            keep += 1
            stack += [(a, a + 1 + i), (a + 1 + i, b)]
    return keep


def _outline_vertices(loop: np.ndarray, tolerance: float) -> int:
    """Vertices of one closed outline (P, 2) of corner points after simplification."""
    turn = np.ones(len(loop), bool)  # keep only corners where the direction changes
    prev, nxt = np.roll(loop, 1, axis=0), np.roll(loop, -1, axis=0)
    turn = np.any((loop - prev) != (nxt - loop), axis=1)
    corners = loop[turn].astype(np.float64)
    if len(corners) <= 3:
        return max(len(corners), 3)
    far = int(np.argmax(np.hypot(*(corners - corners[0]).T)))
    closed = np.concatenate([corners, corners[:1]])
    count = _douglas_peucker(closed[: far + 1], tolerance) + _douglas_peucker(closed[far:], tolerance) - 2
    return max(count, 3)


def polygon_vertices(gt: np.ndarray, classes: ClassSet, tolerance: float = 1.0) -> int:
    """Polygon vertices needed for the class regions of ``gt`` (module docstring)."""
    gt = np.asarray(gt).astype(np.int64)
    h, w = gt.shape
    ignore = classes.ignore_index
    values = gt + 1
    if ignore is not None:
        values[gt == ignore] = 0
    rows, starts, ends, _, comp = region_components(values)
    if len(rows) == 0:
        return 0
    region = np.full(h * w, -1, np.int64)
    region[_run_pixels(rows, starts, ends, w)] = np.repeat(comp, ends - starts)
    region = region.reshape(h, w)
    padded = np.full((h + 2, w + 2), -1, np.int64)
    padded[1:-1, 1:-1] = region
    inside = region >= 0
    ys, xs = np.nonzero(inside)
    ids = region[ys, xs]
    # Directed boundary edges on the corner grid (x right, y down), region on the left when walking.
    edges = []
    for dy, dx, start, end in (
        (-1, 0, (1, 0), (0, 0)),   # top side: walk right-to-left
        (1, 0, (0, 1), (1, 1)),    # bottom side: left-to-right
        (0, -1, (0, 0), (0, 1)),   # left side: top-to-bottom
        (0, 1, (1, 1), (1, 0)),    # right side: bottom-to-top
    ):
        other = padded[ys + 1 + dy, xs + 1 + dx]
        side = other != ids
        edges.append(np.stack([xs[side] + start[0], ys[side] + start[1], xs[side] + end[0], ys[side] + end[1],
                               ids[side]], axis=1))
    e = np.concatenate(edges)
    stride = w + 1
    start_key = (e[:, 4] * (h + 1) + e[:, 1]) * stride + e[:, 0]
    end_key = (e[:, 4] * (h + 1) + e[:, 3]) * stride + e[:, 2]
    nxt = np.empty(len(e), np.int64)
    nxt[np.argsort(end_key, kind="stable")] = np.argsort(start_key, kind="stable")
    seen = np.zeros(len(e), bool)
    total = 0
    for first in range(len(e)):
        if seen[first]:
            continue
        loop = []
        i = first
        while not seen[i]:
            seen[i] = True
            loop.append(i)
            i = nxt[i]
        total += _outline_vertices(e[loop, :2], tolerance)
    return total
