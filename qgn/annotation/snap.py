"""The snapped coarse brush: paint at a coarse quadtree level, let the image decide the boundary.

A stroke covers level-``l`` cells (``qgn.annotation.brush`` cells along the pointer's path), as the
paint tool does. The quadtree idea is applied to the stroke itself: the cells *inside* the stroke
(all eight neighbours also stroked, or outside the image) are uniform, so they simply take the
class; the cells on the stroke's rim form a *boundary band* where the class's edge probably runs,
and that band is decided by evidence:

``image``  (default) a marker-controlled watershed on the image (OpenCV ``cv2.watershed``): the
           inside cells, the pointer's own path and the pixels just outside the stroke (one cell's
           width) that already hold the class are sure class, the other pixels just outside sure
           not; the band's pixels go to whichever side their colour edges connect them to.
``model``  a (H, W) bool map — typically the model's fine-level prediction equal to the class —
           decides the band directly.

Pixels outside the stroke never change. Everything runs at the tools' working size
(``qgn.annotation.working``) and is mapped back, so a stroke on a 6000×4000 photo costs what it
costs on a 840×630 copy.
"""
from __future__ import annotations

import numpy as np

from .edit import LabelEdit, _check_level, _check_map, _check_value, _edit_of
from .working import WorkingImage

EVIDENCE = ("image", "model")


def _cells(points: np.ndarray, level: int, shape: tuple[int, int]) -> np.ndarray:
    """(N, 2) unique ``cy, cx`` of the level cells holding ``points`` (P, 2) x, y inside the image."""
    h, w = shape
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    pts = pts[np.isfinite(pts).all(axis=1)]
    px, py = np.floor(pts[:, 0]).astype(np.int64), np.floor(pts[:, 1]).astype(np.int64)
    inside = (px >= 0) & (px < w) & (py >= 0) & (py < h)
    cells = np.stack([py[inside] >> level, px[inside] >> level], axis=1)
    return np.unique(cells, axis=0) if len(cells) else cells


def _stroke_cells(cells: np.ndarray, level: int, shape: tuple[int, int]):
    """The stroked cells ``cells`` (N, 2) ``cy, cx`` on a grid around them (two cells of margin):
    ((cy0, cx0) its origin, occ (bool) the stroked cells, inner (bool) those whose eight neighbours
    are stroked too — cells outside the image count as stroked: a stroke that reaches the border
    has an inside there)."""
    h, w = shape
    gh, gw = ((h - 1) >> level) + 1, ((w - 1) >> level) + 1
    cy0, cx0 = cells.min(axis=0) - 2
    cy1, cx1 = cells.max(axis=0) + 3
    occ = np.zeros((cy1 - cy0, cx1 - cx0), bool)
    occ[cells[:, 0] - cy0, cells[:, 1] - cx0] = True
    gy, gx = np.arange(cy0, cy1)[:, None], np.arange(cx0, cx1)[None, :]
    full = occ | (gy < 0) | (gy >= gh) | (gx < 0) | (gx >= gw)
    inner = occ.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                inner[1:-1, 1:-1] &= full[1 + dy: full.shape[0] - 1 + dy, 1 + dx: full.shape[1] - 1 + dx]
    return (int(cy0), int(cx0)), occ, inner


def stroke_masks(working: WorkingImage, level: int, cell_points: np.ndarray, path: np.ndarray | None = None):
    """The stroke's parts at the working size, inside a box around it.

    Returns None for an empty stroke, else (box, stroke, core, outside): box (y0, y1, x0, x1)
    working rows/columns; stroke (bool) the working pixels in stroked cells; core (bool) those in
    inside cells or on the pointer's path; outside (bool) the pixels of the box not stroked
    (the box reaches one cell beyond the stroke)."""
    level = _check_level(level)
    h, w = working.shape
    cells = _cells(cell_points, level, (h, w))
    if len(cells) == 0:
        return None
    size = 1 << level
    (cy0, cx0), occ, inner = _stroke_cells(cells, level, (h, w))
    sh, sw = working.working_shape
    # working box: one cell beyond the stroke's cells, clipped
    fy0, fy1 = max(0, (cells[:, 0].min() - 1) * size), min(h, (cells[:, 0].max() + 2) * size)
    fx0, fx1 = max(0, (cells[:, 1].min() - 1) * size), min(w, (cells[:, 1].max() + 2) * size)
    y0, y1 = int(working.rows[fy0]), int(working.rows[fy1 - 1]) + 1
    x0, x1 = int(working.cols[fx0]), int(working.cols[fx1 - 1]) + 1
    # full-size centre of every working pixel of the box -> its cell
    ys = np.minimum(((np.arange(y0, y1) + 0.5) * h / sh).astype(np.int64), h - 1) >> level
    xs = np.minimum(((np.arange(x0, x1) + 0.5) * w / sw).astype(np.int64), w - 1) >> level
    stroke = occ[np.ix_(ys - cy0, xs - cx0)]
    core = inner[np.ix_(ys - cy0, xs - cx0)]
    if path is not None and len(path):
        pts = np.asarray(path, np.float64).reshape(-1, 2)
        px = np.clip((pts[:, 0] * sw / w).astype(np.int64), 0, sw - 1) - x0
        py = np.clip((pts[:, 1] * sh / h).astype(np.int64), 0, sh - 1) - y0
        ok = (px >= 0) & (px < x1 - x0) & (py >= 0) & (py < y1 - y0)
        core[py[ok], px[ok]] = True
        core &= stroke
    return (y0, y1, x0, x1), stroke, core, ~stroke


def snap_band(working: WorkingImage, box, stroke: np.ndarray, core: np.ndarray, outside: np.ndarray,
              outside_same: np.ndarray | None = None) -> np.ndarray:
    """(bool, box-sized) the stroke's pixels the watershed gives to the class: the core, and the
    band pixels whose colour edges connect them to the core rather than to the outside.

    outside_same: (bool, box-sized) outside pixels that already hold the class: they seed the
    class, not its background (a stroke beside a region of its class extends that region)."""
    import cv2

    y0, y1, x0, x1 = box
    markers = np.zeros(stroke.shape, np.int32)
    markers[core] = 1
    background = outside if outside_same is None else outside & ~outside_same
    if outside_same is not None:
        markers[outside & outside_same] = 1
    markers[background] = 2
    if not (markers == 1).any():  # nothing sure inside (a one-cell stroke without a path): the cells as painted
        return stroke
    if not background.any():
        return stroke
    roi = np.ascontiguousarray(working.image[y0:y1, x0:x1, ::-1])  # OpenCV wants BGR
    # one replicated pixel around: cv2.watershed marks the image's own border as ridge (-1)
    padded_roi = cv2.copyMakeBorder(roi, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    padded = np.pad(markers, 1)
    cv2.watershed(padded_roi, padded)
    regions = _settle_ridges(padded, padded_roi)[1:-1, 1:-1]
    return stroke & (regions == 1)


def _settle_ridges(markers: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Give each ridge pixel (-1) of a watershed the region (1 or 2) of the 4-neighbour whose
    colour is closest to its own."""
    ys, xs = np.nonzero(markers == -1)
    if len(ys) == 0:
        return markers
    h, w = markers.shape
    colour = image.astype(np.int32)
    best = np.full(len(ys), np.iinfo(np.int32).max)
    region = np.full(len(ys), 2, np.int32)
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        ny, nx = np.clip(ys + dy, 0, h - 1), np.clip(xs + dx, 0, w - 1)
        m = markers[ny, nx]
        d = np.abs(colour[ny, nx] - colour[ys, xs]).sum(axis=1)
        better = (m > 0) & (d < best)
        best[better], region[better] = d[better], m[better]
    out = markers.copy()
    out[ys, xs] = region
    return out


def snapped_stroke(label: np.ndarray, working: WorkingImage, level: int, cell_points: np.ndarray, value: int,
                   path: np.ndarray | None = None, evidence: np.ndarray | None = None) -> LabelEdit:
    """The edit of one snapped stroke (module docstring).

    label:       (H, W) uint8/uint16 label map of the image ``working`` holds (not modified).
    cell_points: (P, 2) ``x, y``: one point in every stroked level-``level`` cell (e.g.
                 ``brush_points(level, cells_along(...), radius)``).
    path:        (Q, 2) ``x, y`` full-size pixels the pointer passed over (sure class), or None.
    evidence:    None for the image watershed, or (H, W) bool: where the class is (the ``model``
                 evidence) — band pixels take the class exactly where it is True.
    """
    _check_map(label)
    value = _check_value(label, value)
    if label.shape != working.shape:
        raise ValueError(f"the label map is {label.shape[::-1]} but the image is {working.shape[::-1]}")
    found = stroke_masks(working, level, cell_points, path)
    if found is None:
        return LabelEdit.empty(label.dtype)
    box, stroke, core, outside = found
    if evidence is None:
        y0, y1, x0, x1 = box
        same = working.working_label(label)[y0:y1, x0:x1] == value
        chosen = working.full_index(snap_band(working, box, stroke, core, outside, same), box)
    else:
        evidence = np.asarray(evidence, bool)
        if evidence.shape != label.shape:
            raise ValueError(f"evidence {evidence.shape} must have the label map's shape {label.shape}")
        band = working.full_index(stroke & ~core, box)
        chosen = np.union1d(working.full_index(core, box), band[evidence.reshape(-1)[band]])
    if working.resized:  # a working pixel straddles cell edges: settle the stroke's own cells at full size
        chosen = _settled_at_full_size(chosen, working.shape, level, cell_points)
    return _edit_of(label, chosen, value)


def _settled_at_full_size(index: np.ndarray, shape: tuple[int, int], level: int, cell_points) -> np.ndarray:
    """``index`` (sorted flat full-size pixels a resized working mask gave) kept to the stroked
    level cells, plus every pixel of the inside cells (uniform: they take the class): a working
    pixel mapped back covers full-size pixels of the cells beside it, which a stroke never touches."""
    h, w = shape
    (cy0, cx0), occ, inner = _stroke_cells(_cells(cell_points, level, shape), level, shape)
    cy, cx = ((index // w) >> level) - cy0, ((index % w) >> level) - cx0
    inside = (cy >= 0) & (cy < occ.shape[0]) & (cx >= 0) & (cx < occ.shape[1])
    keep = np.zeros(len(index), bool)
    keep[inside] = occ[cy[inside], cx[inside]]
    index = index[keep]
    iy, ix = np.nonzero(inner)
    size = 1 << level
    offsets = np.arange(size)
    rows = ((iy + cy0)[:, None] * size + offsets[None, :])  # (n, size) full-size rows of each inside cell
    cols = ((ix + cx0)[:, None] * size + offsets[None, :])
    pixels = (rows[:, :, None] * w + cols[:, None, :])
    ok = (rows[:, :, None] < h) & (cols[:, None, :] < w)
    return np.union1d(index, pixels[ok])
