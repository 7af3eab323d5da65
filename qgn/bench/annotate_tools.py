"""The image-aware tools as the simulated annotator uses them (``qgn.bench.annotate_sim``).

Each proposer offers, for the largest wrong region R (true class c), the actions a person would
try with one tool, computed by the very functions the app's tools call:

``superpixel``  (``qgn.annotation.superpixels.paint_segments``) at every granularity: the segments
                whose own collateral is within β (they fix pixels and break at most β times as
                many), grouped by adjacency; the group touching R that fixes the most is one
                drag (a single segment is a click). The drag's path runs through the group's
                segments in adjacency order, so the tool paints exactly the group.
``snap``        (``qgn.annotation.snap.snapped_stroke``) at levels 2 … 5: the person strokes the
                cells touching R where c holds at least half the labelled pixels (the 8-connected
                group of them holding most of R); the pointer passes through R in every stroked
                cell that has R pixels (one point each, the R pixel nearest the cell's centre).
``wand``        (``qgn.annotation.wand.magic_wand``) clicked at R's most interior pixel at a few
                tolerances.

Assumptions a sceptic should know: the simulated person knows the truth, so a proposal is judged by
what it fixes and breaks (the annotator keeps the best, and only within β); a drag or stroke over
any connected group counts as one action, as for the cell brush.
"""
from __future__ import annotations

import numpy as np

from qgn.annotation.snap import snapped_stroke
from qgn.annotation.superpixels import Oversegmentation
from qgn.annotation.wand import magic_wand
from qgn.bench.annotate_sim import Canvas, Proposal

SNAP_LEVELS = (5, 4, 3, 2)
ALONG_LEVELS = (3, 2, 1)
DRAG_RADIUS = 2  # cells a drag's brush reaches either side of the pointer's path
WAND_TOLERANCES = (8, 16, 32)


def adjacency(segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(E,) u, v: pairs of 4-adjacent segment ids (u < v, unique) of an (h, w) segment map."""
    pairs = [np.stack([segments[:, :-1].ravel(), segments[:, 1:].ravel()]),
             np.stack([segments[:-1, :].ravel(), segments[1:, :].ravel()])]
    p = np.concatenate(pairs, axis=1).astype(np.int64)
    p = p[:, p[0] != p[1]]
    p = np.sort(p, axis=0)
    p = np.unique(p[0] * (int(segments.max()) + 1) + p[1])
    n = int(segments.max()) + 1
    return p // n, p % n


class ImageTools:
    """The image-aware proposers for one image: ``make(canvas)`` for ``simulate_annotator(tools=…)``.

    over: the image's ``Oversegmentation`` (computed once per image, as the app does on opening)."""

    def __init__(self, over: Oversegmentation, superpixels: bool = True, snap: bool = True, wand: bool = True,
                 evidence: np.ndarray | None = None, evidence_only: bool = False):
        self.over = over
        self.evidence = None if evidence is None else np.asarray(evidence).astype(np.int64)
        self.evidence_only = evidence_only and evidence is not None  # no image-snapped proposals beside them
        self.use = dict(superpixel=superpixels, snap=snap, wand=wand)
        w = over.working
        self.full = [seg[np.ix_(w.rows, w.cols)].reshape(-1) if w.resized else seg.reshape(-1)
                     for seg in over.segments]
        self.edges = [adjacency(seg) for seg in over.segments]

    def __call__(self, canvas: Canvas) -> "_Proposer":
        return _Proposer(self, canvas)


class _Proposer:
    def __init__(self, tools: ImageTools, canvas: Canvas):
        self.tools, self.cv = tools, canvas
        gt = canvas.gt
        ignore = canvas.classes.ignore_index
        k = canvas.classes.num_classes
        # per level l >= 2: (k, H_l, W_l) count of each class, (H_l, W_l) labelled count per cell
        self.counts = {}
        for level in SNAP_LEVELS:
            size = 1 << level
            gh, gw = -(-canvas.h // size), -(-canvas.w // size)
            cell = (np.arange(canvas.h)[:, None] >> level) * gw + (np.arange(canvas.w)[None, :] >> level)
            labelled = gt != ignore if ignore is not None else np.ones(gt.shape, bool)
            flat = (gt[labelled] * (gh * gw) + cell[labelled]).astype(np.int64)
            per = np.bincount(flat, minlength=k * gh * gw).reshape(k, gh, gw)
            self.counts[level] = (per, per.sum(axis=0))

    def propose(self, region: np.ndarray, c: int, right_c: np.ndarray):
        if self.tools.use["superpixel"]:
            yield from self._superpixels(region, c, right_c)
        if self.tools.use["snap"]:
            yield from self._snaps(region, c)
            yield from self._snaps_along(region, c, right_c)
        if self.tools.use["wand"]:
            yield from self._wands(region, c)

    # ------------------------------------------------------------------ superpixels
    def _superpixels(self, region, c, right_c):
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        cv = self.cv
        gain_w = cv.wrong & right_c
        loss_w = ~cv.wrong & cv.labelled & ~right_c
        for g, seg in enumerate(self.tools.full):
            n = self.tools.over.counts[g]
            fixed = np.bincount(seg, weights=gain_w, minlength=n)
            broken = np.bincount(seg, weights=loss_w, minlength=n)
            ok = (fixed > 0) & (broken <= cv.beta * fixed)
            touching = np.unique(seg[region])
            touching = touching[ok[touching]]
            if len(touching) == 0:
                continue
            u, v = self.tools.edges[g]
            keep = ok[u] & ok[v]
            graph = coo_matrix((np.ones(int(keep.sum())), (u[keep], v[keep])), shape=(n, n))
            _, comp = connected_components(graph, directed=False)
            net = np.bincount(comp, weights=np.where(ok, fixed - broken, 0), minlength=comp.max() + 1)
            group = comp[touching][np.argmax(net[comp[touching]])]
            ids = np.flatnonzero(ok & (comp == group))
            edit = _paint_ids(cv.label, self.tools.over, g, ids, c)
            yield Proposal("superpixel", None, "click" if len(ids) == 1 else "stroke", edit)

    # ------------------------------------------------------------------ snapped brush
    def _snaps(self, region, c):
        cv = self.cv
        ry, rx = np.divmod(region, cv.w)
        for level in SNAP_LEVELS:
            per, labelled = self.counts[level]
            cells = np.unique((ry >> level) * per.shape[2] + (rx >> level))
            cy, cx = np.divmod(cells, per.shape[2])
            share = per[c, cy, cx] / np.maximum(labelled[cy, cx], 1)
            keep = share >= 0.5
            if not keep.any():
                continue
            grid = np.zeros(labelled.shape, bool)
            grid[cy[keep], cx[keep]] = True
            group = _group_holding(grid, grid, (ry >> level, rx >> level))
            stroke, path = _drag(group, cv.gt == c, level)
            yield from self._snapped(stroke, path, level, c)

    def _snaps_along(self, region, c, right_c):
        """A snapped stroke along a boundary: the 8-connected cells holding wrong pixels of c
        (from R's cells on), whatever else they hold; the pointer passes through a wrong pixel of
        c in each, and the band (all of a narrow stroke) is decided by the evidence."""
        cv = self.cv
        wrong = np.flatnonzero(cv.wrong & right_c)
        wy, wx = np.divmod(wrong, cv.w)
        ry, rx = np.divmod(region, cv.w)
        for level in ALONG_LEVELS:
            gw = ((cv.w - 1) >> level) + 1
            gh = ((cv.h - 1) >> level) + 1
            grid = np.zeros((gh, gw), bool)
            grid[wy >> level, wx >> level] = True
            start = np.zeros((gh, gw), bool)
            start[ry >> level, rx >> level] = True
            group = _group_holding(grid, start, (wy >> level, wx >> level))
            stroke, path = _drag(group, (cv.wrong & right_c).reshape(cv.h, cv.w), level)
            yield from self._snapped(stroke, path, level, c)

    def _snapped(self, stroke, path, level, c):
        """The snap brush's proposals for one stroke of cells: its rim decided by the image, and
        (where the model's evidence exists) by the model's own fine levels — only the latter with
        ``evidence_only``, as the app's snap brush set to follow the prediction."""
        sy, sx = np.nonzero(stroke)
        cell_points = np.stack([sx << level, sy << level], axis=1)
        if not self.tools.evidence_only:
            yield Proposal("snap", level, "stroke",
                           snapped_stroke(self.cv.label, self.tools.over.working, level, cell_points, c, path=path))
        if self.tools.evidence is not None:
            yield Proposal("snap_model", level, "stroke",
                           snapped_stroke(self.cv.label, self.tools.over.working, level, cell_points, c, path=path,
                                          evidence=self.tools.evidence == c))

    # ------------------------------------------------------------------ magic wand
    def _wands(self, region, c):
        import cv2

        cv = self.cv
        ys, xs = np.divmod(region, cv.w)
        y0, x0 = ys.min(), xs.min()
        box = np.zeros((ys.max() - y0 + 3, xs.max() - x0 + 3), np.uint8)
        box[ys - y0 + 1, xs - x0 + 1] = 1
        dist = cv2.distanceTransform(box, cv2.DIST_L2, 3)
        by, bx = np.unravel_index(int(np.argmax(dist)), dist.shape)
        y, x = by - 1 + y0, bx - 1 + x0
        for tol in WAND_TOLERANCES:
            yield Proposal("wand", None, "click", magic_wand(cv.label, self.tools.over.working, x, y, c, tol))


def _paint_ids(label, over, granularity, ids, value):
    """``paint_segments`` for a known set of segment ids (what a drag through them paints)."""
    from qgn.annotation.edit import _edit_of

    return _edit_of(label, over.full_index(granularity, ids), value)


def _group_holding(grid: np.ndarray, start: np.ndarray, region_cells) -> np.ndarray:
    """The 8-connected component of ``grid`` (bool cells) reachable from ``start`` that holds the
    most region pixels (``region_cells`` = (cy, cx) of each region pixel)."""
    from scipy import ndimage

    comp, n = ndimage.label(grid, structure=np.ones((3, 3), bool))
    ids = comp[start]
    ids = ids[ids > 0]
    if len(ids) == 0:
        return start
    hits = np.bincount(comp[region_cells], minlength=n + 1)
    hits[0] = 0
    allowed = np.zeros(n + 1, bool)
    allowed[ids] = True
    best = int(np.argmax(np.where(allowed, hits, -1)))
    return comp == best


def _drag(group: np.ndarray, target: np.ndarray, level: int) -> tuple[np.ndarray, np.ndarray]:
    """One drag over a group of cells: (stroke cells (bool, group's grid), path (P, 2) x, y).

    The pointer follows the longest path of the group's skeleton (one curve, as one drag does);
    the brush covers the group's cells within ``DRAG_RADIUS`` cells of it. In every path cell the
    pointer is at the ``target`` pixel ((H, W) bool: where the class is) nearest the cell's centre
    (cells without one add no point)."""
    from scipy import ndimage
    from skimage.morphology import skeletonize

    cells = _longest_path(skeletonize(group) & group)
    on_path = np.zeros(group.shape, bool)
    on_path[cells[:, 0], cells[:, 1]] = True
    reach = ndimage.binary_dilation(on_path, np.ones((2 * DRAG_RADIUS + 1,) * 2, bool))
    stroke = group & reach
    size = 1 << level
    points = []
    h, w = target.shape
    for cy, cx in cells:
        block = target[cy * size:(cy + 1) * size, cx * size:(cx + 1) * size]
        ys, xs = np.nonzero(block)
        if len(ys):
            k = int(np.argmin((ys - size / 2) ** 2 + (xs - size / 2) ** 2))
            points.append((cx * size + xs[k] + 0.5, cy * size + ys[k] + 0.5))
    return stroke, np.array(points, np.float64).reshape(-1, 2)


def _longest_path(skeleton: np.ndarray) -> np.ndarray:
    """(P, 2) cy, cx: a longest shortest path of the 8-connected skeleton cells (two
    breadth-first sweeps), over its largest component; one cell for a single-cell skeleton."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import breadth_first_order, connected_components

    ys, xs = np.nonzero(skeleton)
    if len(ys) <= 2:
        return np.stack([ys, xs], axis=1)
    index = -np.ones(skeleton.shape, np.int64)
    index[ys, xs] = np.arange(len(ys))
    u, v = [], []
    h, w = skeleton.shape
    for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):
        ny, nx = ys + dy, xs + dx
        ok = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        j = np.full(len(ys), -1)
        j[ok] = index[ny[ok], nx[ok]]
        keep = j >= 0
        u.append(np.arange(len(ys))[keep])
        v.append(j[keep])
    u, v = np.concatenate(u), np.concatenate(v)
    graph = coo_matrix((np.ones(len(u)), (u, v)), shape=(len(ys), len(ys))).tocsr()
    _, comp = connected_components(graph, directed=False)
    biggest = np.bincount(comp).argmax()
    seed = int(np.flatnonzero(comp == biggest)[0])
    order, _ = breadth_first_order(graph, seed, directed=False)
    far = int(order[-1])
    order, pred = breadth_first_order(graph, far, directed=False)
    node, path = int(order[-1]), []
    while node >= 0:
        path.append(node)
        node = int(pred[node])
    path = np.array(path)
    return np.stack([ys[path], xs[path]], axis=1)
