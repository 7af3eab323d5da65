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

import heapq
import itertools
import time
from dataclasses import dataclass, field

import numpy as np

from qgn.annotation.edit import LabelEdit, _components, _run_edges, paint_cells
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


def tolerance_bits(gt: np.ndarray, ignore: int | None, tolerance: int) -> np.ndarray:
    """(H, W) uint64: bit c set when class c is the truth of some labelled pixel within
    ``tolerance`` pixels (the (2t+1)² square around it). A label c is right within the tolerance
    where bit c is set; 0 marks pixels with no labelled pixel nearby."""
    gt = np.asarray(gt).astype(np.int64)
    labelled = gt != ignore if ignore is not None else np.ones(gt.shape, bool)
    if labelled.any() and gt[labelled].max() >= 64:
        raise ValueError("a boundary tolerance needs at most 64 classes")
    bits = np.where(labelled, np.left_shift(np.uint64(1), np.clip(gt, 0, 63).astype(np.uint64)), np.uint64(0))
    h, w = gt.shape
    out = bits.copy()
    t = int(tolerance)
    padded = np.zeros((h + 2 * t, w + 2 * t), np.uint64)
    padded[t:t + h, t:t + w] = bits
    for dy in range(-t, t + 1):
        for dx in range(-t, t + 1):
            out |= padded[t + dy:t + dy + h, t + dx:t + dx + w]
    return out


@dataclass
class Effort:
    """One image's correction.

    actions = clicks + strokes (+ 1 when ``start`` says the annotator chose to start empty);
    accuracy_start / accuracy_end over labelled pixels (0 … 1, within the run's tolerance);
    strokes_per_level: cell-brush and snapped strokes per quadtree level; tools: actions per tool
    (fill, cell, superpixel, snap, wand); milestones: {"95": actions, "98": …, "99": …} the
    actions spent when the accuracy first reached 95 / 98 / 99 % (None if never);
    tool_seconds: compute of the chosen actions' edits (what the app's tools would spend),
    seconds: the whole simulation; start: "model" | "empty" | "head" | … the start map used."""

    actions: int
    clicks: int
    strokes: int
    accuracy_start: float
    accuracy_end: float
    strokes_per_level: list
    tools: dict = field(default_factory=dict)
    milestones: dict = field(default_factory=dict)
    tool_seconds: float = 0.0
    seconds: float = 0.0
    collateral: int = 0
    start: str = ""


@dataclass
class Proposal:
    """One action a tool offers: tool name, quadtree level of a cell/snapped stroke (else None),
    kind "click" or "stroke", and its LabelEdit."""

    tool: str
    level: int | None
    kind: str
    edit: LabelEdit


MILESTONES = (0.95, 0.98, 0.99)
BETA = 0.05  # an action may break up to BETA × the pixels it fixes (people paint coarse, then fix)


class Canvas:
    """The annotator's view of one image: the label map being corrected and the truth.

    label (H, W) uint8/uint16 (edited in place); gt (H, W) int64; tolerance: pixels off the truth
    by at most this many pixels count as right (``tolerance_bits``); ignore pixels of ``gt`` are
    unlabelled: never wrong, never broken, and free to overwrite."""

    def __init__(self, gt: np.ndarray, start: np.ndarray, classes: ClassSet, tolerance: int = 0, beta: float = 0.0):
        from qgn.label_map import label_dtype

        self.beta = float(beta)
        self.gt = np.asarray(gt).astype(np.int64)
        self.h, self.w = self.gt.shape
        self.label = np.asarray(start).astype(label_dtype(classes)).copy()
        self.classes = classes
        ignore = classes.ignore_index
        self.labelled = (self.gt != ignore if ignore is not None else np.ones(self.gt.shape, bool)).reshape(-1)
        self.gt_flat = self.gt.reshape(-1)
        self.bits = tolerance_bits(self.gt, ignore, tolerance).reshape(-1) if tolerance > 0 else None
        self.tolerance = int(tolerance)
        self.total = int(self.labelled.sum())
        self.wrong = self.labelled & ~self.right_with(np.arange(self.gt.size), self.label.reshape(-1))
        self.wrong_count = int(self.wrong.sum())

    @property
    def flat(self) -> np.ndarray:
        return self.label.reshape(-1)

    def right_with(self, index: np.ndarray, values: np.ndarray) -> np.ndarray:
        """bool: pixels ``index`` would be right holding ``values`` (labelled pixels only)."""
        values = np.asarray(values).astype(np.int64)
        if self.bits is None:
            ok = self.gt_flat[index] == values
        else:
            ok = (self.bits[index] >> np.clip(values, 0, 63).astype(np.uint64)) & np.uint64(1) == 1
            ok &= values < 64
        return ok & self.labelled[index]

    def right_as(self, c: int) -> np.ndarray:
        """(H·W,) bool: pixels that would be right holding class ``c``."""
        if self.bits is None:
            return (self.gt_flat == c) & self.labelled
        return ((self.bits >> np.uint64(c)) & np.uint64(1)) == 1

    def score(self, edit) -> tuple[int, int]:
        """(fixed, broken): wrong pixels ``edit`` makes right, right pixels it makes wrong."""
        idx = edit.index
        after = self.right_with(idx, edit.after)
        before = ~self.wrong[idx] & self.labelled[idx]
        return int((~before & after & self.labelled[idx]).sum()), int((before & ~after).sum())

    def apply(self, edit) -> np.ndarray:
        """Apply ``edit``; returns the flat indices of pixels it made wrong."""
        edit.apply(self.label)
        idx = edit.index
        now_wrong = self.labelled[idx] & ~self.right_with(idx, edit.after)
        was_wrong = self.wrong[idx]
        self.wrong[idx] = now_wrong
        self.wrong_count += int(now_wrong.sum()) - int(was_wrong.sum())
        return idx[now_wrong & ~was_wrong]

    @property
    def accuracy(self) -> float:
        return 1 - self.wrong_count / self.total if self.total else 1.0


class CellTools:
    """The app's cell tools as the annotator uses them: a fill click (the best seed touching the
    region) and a brush stroke at the coarsest level with a fitting cell."""

    def __init__(self, canvas: Canvas, levels: int = TOP_LEVEL + 1, along: bool = True):
        self.canvas = canvas
        self.along = along
        self.fits = _fit_maps(canvas.gt, canvas.classes.ignore_index, levels)

    def propose(self, region: np.ndarray, c: int, right_c: np.ndarray):
        yield from self.fills(region, c, right_c)
        cv = self.canvas
        edit, level = _stroke(cv.label, region, c, self.fits, cv.w, cv.wrong & right_c if self.along else None)
        yield Proposal("cell", level, "stroke", edit)

    def fills(self, region: np.ndarray, c: int, right_c: np.ndarray):
        """The best fill click on any current-label region touching ``region`` (one proposal)."""
        from skimage.measure import label as components

        cv = self.canvas
        comp = components(cv.label.astype(np.int32), background=-1, connectivity=1).reshape(-1)
        ids = np.unique(comp[region])
        n = int(comp.max()) + 1
        fixed = np.bincount(comp, weights=cv.wrong & right_c, minlength=n)[ids]
        broken = np.bincount(comp, weights=~cv.wrong & cv.labelled & ~right_c, minlength=n)[ids]
        ok = (fixed > 0) & (broken <= cv.beta * fixed)
        if not ok.any():
            return
        best = ids[ok][np.argmax((fixed - broken)[ok])]
        index = np.flatnonzero(comp == best)
        before = cv.flat[index]
        yield Proposal("fill", None, "click", LabelEdit(index, before, np.full(len(index), c, cv.label.dtype)))


def simulate_annotator(gt: np.ndarray, start: np.ndarray, classes: ClassSet, target: float = TARGET_ACCURACY,
                       levels: int = TOP_LEVEL + 1, max_actions: int = 100000, tools=None, tolerance: int = 0,
                       beta: float | None = None, trace: list | None = None) -> tuple[Effort, np.ndarray]:
    """Correct ``start`` towards ``gt`` (both (H, W) integer maps of ``classes``) as the module
    docstring says. Returns the effort and the corrected map (uint8/uint16).

    tools: callables ``make(canvas) -> object with propose(region, c, right_c)`` yielding
    (tool, level, LabelEdit) proposals; default the cell tools alone. Image-aware tools are in
    ``qgn.bench.annotate_tools``. tolerance: pixels within this many pixels of a pixel of their
    class count as right. beta: collateral allowed per fixed pixel (default ``BETA``)."""
    started = time.perf_counter()
    cv = Canvas(gt, start, classes, tolerance, BETA if beta is None else beta)
    proposers = [CellTools(cv, levels)] + [make(cv) for make in (tools or ())]
    tally = _Tally([0] * levels, {f"{round(100 * m)}": (0 if cv.accuracy >= m else None) for m in MILESTONES})
    accuracy_start = cv.accuracy
    queue = _WrongRegions(cv)
    while cv.total and cv.wrong_count > (1 - target) * cv.total and tally.actions < max_actions and queue:
        _, _, c, _, pixels, connected = queue.pop()
        region = pixels[cv.wrong[pixels]]
        if len(region) == 0:
            continue
        if len(region) < len(pixels) or not connected:  # shrunk since queued: it may have split
            queue.push_pieces(region, c)
            continue
        gain, proposal, seconds, broken = _best_proposal(proposers, cv, region, c)
        new_wrong = cv.apply(proposal.edit)
        tally.record(proposal, seconds, broken, cv.accuracy)
        if trace is not None:
            trace.append((proposal.tool, proposal.level, gain + broken, broken, len(region), c))
        left = region[cv.wrong[region]]
        if len(left):
            queue.push(left, c, connected=False)
        if len(new_wrong):
            truths = cv.gt_flat[new_wrong]
            for cc in np.unique(truths):
                queue.push_pieces(np.sort(new_wrong[truths == cc]), int(cc))
    effort = Effort(tally.actions, tally.clicks, tally.strokes, float(accuracy_start), float(cv.accuracy),
                    tally.per_level, tally.per_tool, tally.milestones, tally.tool_seconds,
                    time.perf_counter() - started, tally.collateral)
    return effort, cv.label


def _best_proposal(proposers: list, cv: Canvas, region: np.ndarray, c: int) -> tuple[int, Proposal, float, int]:
    """The proposal of any tool that gains most on ``region`` (wrong pixels of true class ``c``) within
    the collateral allowed, as (fixed − broken, proposal, seconds its tool took to make it, broken);
    the first of equal gains wins."""
    right_c = cv.right_as(c)
    best = None
    for proposer in proposers:
        t0 = time.perf_counter()
        for proposal in proposer.propose(region, c, right_c):
            seconds = time.perf_counter() - t0
            fixed, broken = cv.score(proposal.edit)
            t0 = time.perf_counter()
            if fixed == 0 or broken > cv.beta * fixed:
                continue
            if best is None or fixed - broken > best[0]:
                best = (fixed - broken, proposal, seconds, broken)
    if best is None:
        raise AssertionError("a level-0 cell stroke always fixes a pixel")
    return best


class _WrongRegions:
    """The regions of wrong pixels still to correct, as a priority queue: largest first, then the one
    whose first pixel comes first, then the one queued first (so pixel arrays are never compared).
    An entry is (−size, first pixel, true class, order, sorted flat pixels, known connected)."""

    def __init__(self, cv: Canvas):
        self.w = cv.w
        self.tick = itertools.count()
        self.heap = []
        truth = np.where(cv.wrong.reshape(cv.h, cv.w), cv.gt + 1, 0)
        rows, starts, ends, vals, comp = region_components(truth)
        for root in np.unique(comp):
            mine = comp == root
            pixels = np.sort(_run_pixels(rows[mine], starts[mine], ends[mine], self.w))
            self.heap.append((-len(pixels), int(pixels[0]), int(vals[mine][0]) - 1, next(self.tick), pixels, True))
        heapq.heapify(self.heap)

    def __bool__(self) -> bool:
        return bool(self.heap)

    def pop(self) -> tuple:
        return heapq.heappop(self.heap)

    def push(self, pixels: np.ndarray, c: int, connected: bool) -> None:
        heapq.heappush(self.heap, (-len(pixels), int(pixels[0]), c, next(self.tick), pixels, connected))

    def push_pieces(self, pixels: np.ndarray, c: int) -> None:
        """Queue each 4-connected piece of ``pixels`` (sorted flat indices of true class ``c``)."""
        for size, cc, piece in _pieces(pixels, c, self.w):
            heapq.heappush(self.heap, (-size, int(piece[0]), cc, next(self.tick), piece, True))


@dataclass
class _Tally:
    """The running counts of one simulation (see ``Effort``)."""

    per_level: list
    milestones: dict
    actions: int = 0
    clicks: int = 0
    strokes: int = 0
    collateral: int = 0
    per_tool: dict = field(default_factory=dict)
    tool_seconds: float = 0.0

    def record(self, proposal: Proposal, seconds: float, broken: int, accuracy: float) -> None:
        """Count one action taken, after which the accuracy is ``accuracy``."""
        self.tool_seconds += seconds
        self.actions += 1
        self.per_tool[proposal.tool] = self.per_tool.get(proposal.tool, 0) + 1
        if proposal.kind == "click":
            self.clicks += 1
        else:
            self.strokes += 1
        if proposal.level is not None:
            self.per_level[proposal.level] += 1
        self.collateral += broken
        for key, m in zip(self.milestones, MILESTONES):
            if self.milestones[key] is None and accuracy >= m:
                self.milestones[key] = self.actions


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


def _stroke(label: np.ndarray, region: np.ndarray, c: int, fits: list[np.ndarray], w: int,
            wrong_c: np.ndarray | None = None):
    """The paint edit of one stroke over ``region`` (flat pixel indices of true class ``c``) at the
    coarsest fitting level, and that level.

    The stroke paints an 8-connected group of fitting cells (all labelled pixels c) that touches
    the region: with ``wrong_c`` ((H·W,) bool, the wrong pixels of true class c) the drag may go on
    through fitting cells holding other wrong pixels of c (a stroke along a boundary fixes the
    slivers it passes); the group with the most such cells is painted."""
    ry, rx = np.divmod(region, w)
    if wrong_c is not None:
        wy, wx = np.divmod(np.flatnonzero(wrong_c), w)
    for level in range(len(fits) - 1, -1, -1):
        fit = fits[level]
        touched = np.zeros(fit.shape, bool)
        touched[ry >> level, rx >> level] = True
        ok = touched & (fit == c)
        if not ok.any():
            continue
        if wrong_c is not None:
            more = np.zeros(fit.shape, bool)
            more[wy >> level, wx >> level] = True
            ok |= more & (fit == c)
        rows, starts, ends, _, comp = region_components(ok.astype(np.int64), diagonal=True)
        cells = np.bincount(comp, weights=ends - starts)
        hit = touched[rows, starts] | _run_touches(touched, rows, starts, ends)
        roots = np.unique(comp[hit])
        group = comp == int(roots[np.argmax(cells[roots])])
        cy, cx = np.divmod(_run_pixels(rows[group], starts[group], ends[group], fit.shape[1]), fit.shape[1])
        points = np.stack([cx << level, cy << level], axis=1)
        return paint_cells(label, level, points, c), level
    raise AssertionError("level 0 always fits")


def _run_touches(mask: np.ndarray, rows, starts, ends) -> np.ndarray:
    """(R,) bool: the run holds a True cell of ``mask`` (H, W) bool."""
    cum = np.concatenate([np.zeros((mask.shape[0], 1), np.int64), np.cumsum(mask, axis=1)], axis=1)
    return cum[rows, ends] - cum[rows, starts] > 0


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
