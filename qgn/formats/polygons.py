"""Exact polygons of label maps: trace the pixel-edge outlines of every region, and paint them back.

Outlines are traced through pixel corners (pixel (row r, column c) is the square [c, c+1] × [r, r+1]),
so a region that is a union of pixels (of quadtree cells) has a rectilinear outline through integer
points; ``pixel_centre_polygon`` turns one into the polygon labelme's rasteriser fills exactly.

``region_polygons(label, values)`` gives, for each value, the outer outline of each of its regions
(4-connected), with the area it encloses. Holes are not written: painting every outline filled, in
order of decreasing enclosed area, restores the map exactly, because an outline
that encloses a pixel of another region's hole encloses that whole region, so it is larger and
painted earlier. This is the order in which labelme's ``shapes_to_label`` paints shapes (file order,
later shapes over earlier ones).
"""
from __future__ import annotations

import numpy as np


def signed_area(loop) -> float:
    """Shoelace area; positive for outer outlines (clockwise on screen with y down). ``loop``: (x, y)
    pairs, a list or an (n, 2) array."""
    points = np.asarray(loop, np.int64).reshape(-1, 2)
    xs, ys = points[:, 0], points[:, 1]
    return float((xs * np.roll(ys, -1) - np.roll(xs, -1) * ys).sum()) / 2.0


def region_outlines(label: np.ndarray, values) -> list[tuple[int, np.ndarray, float]]:
    """(value, outer outline as an (n, 2) int32 array of (x, y) corners, enclosed area) of every
    4-connected region of each of ``values``, largest first (ties: the values' order, then the
    regions' first pixels in raster order). Each outline starts at the top-left corner of its
    region's first pixel (or the next corner after it).

    Traced on one padded 8-bit copy of a value's mask at a time, corner to corner, without a list
    of edges: the memory beyond ``label`` is about a byte per pixel and the corners."""
    from ..label_map import present_values

    height, width = label.shape
    stride = width + 2
    buf = bytearray((height + 2) * stride)
    grid = np.frombuffer(buf, np.uint8).reshape(height + 2, stride)
    present = set(present_values(label).tolist())
    band = max(1, (1 << 16) // width)
    found = []
    for value in values:
        if int(value) not in present:
            continue
        np.equal(label, value, out=grid[1:-1, 1:-1])
        for y0 in range(0, height, band):  # the top edges of a band of rows, in raster order
            y1 = min(y0 + band, height)
            tops = np.flatnonzero((grid[1 + y0:1 + y1, 1:-1] != 0) & (grid[y0:y1, 1:-1] == 0))
            for start in ((tops // width + y0 + 1) * stride + tops % width + 1).tolist():
                if buf[start] != 1:  # its top edge is on an outline traced already
                    continue
                loop = _outline(buf, stride, start)
                area = signed_area(loop)
                if area > 0:  # an outer outline (holes run the other way round)
                    found.append((int(value), loop, area))
    found.sort(key=lambda t: -t[2])
    return found


def _outline(buf: bytearray, stride: int, start: int) -> np.ndarray:
    """The closed outline through the top edge of the pixel at ``start`` (an index into ``buf``,
    the padded mask: nonzero inside): (n, 2) int32 corners, clockwise on screen (region on the
    right), from ``start``'s top-left corner. The walk turns right where it can, so at a vertex
    where two pixels of the region touch diagonally it stays with its own 4-connected region.
    Marks the pixels whose top edge it passes (value 2)."""
    step = (1, stride, -1, -stride)  # east, south, west, north, as vertex index steps
    ahead_right = (0, -1, -stride - 1, -stride)  # the pixel ahead on the right of a vertex
    ahead_left = (-stride, 0, -1, -stride - 1)
    corners = []
    here, heading = start, 0
    while True:
        if heading == 0:
            buf[here] = 2  # the top edge of the pixel below-right of ``here``
        here += step[heading]
        if not buf[here + ahead_right[heading]]:
            turn = (heading + 1) & 3
        elif not buf[here + ahead_left[heading]]:
            turn = heading
        else:
            turn = (heading + 3) & 3
        if here == start and turn == 0:
            break
        if turn != heading:
            corners.append(here)
        heading = turn
    if heading != 0:
        corners.insert(0, start)
    at = np.array(corners, np.int64)
    return np.stack([at % stride - 1, at // stride - 1], axis=1).astype(np.int32)


def region_polygons(label: np.ndarray, values) -> list[tuple[int, list[tuple[int, int]], float]]:
    """(value, outer outline, enclosed area) of every region of each of ``values``, largest first
    (``region_outlines`` with the outlines as lists of (x, y))."""
    return [(value, [tuple(p) for p in loop.tolist()], area) for value, loop, area in region_outlines(label, values)]


def pixel_centre_polygon(loop) -> list[tuple[int, int]]:
    """An outer outline (pixel corners, clockwise on screen) moved half a pixel inwards and into
    pixel-centre coordinates (pixel (r, c) at (c, r)): the polygon whose rasterisation by
    ``PIL.ImageDraw.polygon(..., outline=1, fill=1)`` — labelme's ``shape_to_mask`` — is exactly the
    region's pixels (its edges run through the centres of the region's border pixels, and one-pixel
    wide parts become lines, which the outline draws)."""
    n = len(loop)
    out = []
    for i in range(n):
        (x0, y0), (x1, y1), (x2, y2) = loop[i - 1], loop[i], loop[(i + 1) % n]
        d1 = ((x1 > x0) - (x1 < x0), (y1 > y0) - (y1 < y0))
        d2 = ((x2 > x1) - (x2 < x1), (y2 > y1) - (y2 < y1))
        # inward normals (right of the direction of travel, y down): (-dy, dx); two halves make one
        out.append((x1 + (-d1[1] - d2[1] - 1) // 2, y1 + (d1[0] + d2[0] - 1) // 2))
    return out


def pil_polygon_mask(points, height: int, width: int) -> np.ndarray:
    """bool (H, W) as labelme's ``shape_to_mask`` draws a polygon (labelme/utils/shape.py:
    ``PIL.ImageDraw.Draw(mask).polygon(xy=xy, outline=1, fill=1)``)."""
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (width, height), 0)
    ImageDraw.Draw(canvas).polygon([(float(x), float(y)) for x, y in points], outline=1, fill=1)
    return np.asarray(canvas, bool)


def pil_ellipse_mask(box, height: int, width: int) -> np.ndarray:
    """bool (H, W) as labelme's ``shape_to_mask`` draws a circle (labelme/_utils/shape.py:
    ``draw.ellipse(((cx - d, cy - d), (cx + d, cy + d)), outline=1, fill=1)``); ``box``: those
    (x0, y0, x1, y1)."""
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (width, height), 0)
    x0, y0, x1, y1 = (float(c) for c in box)
    ImageDraw.Draw(canvas).ellipse(((x0, y0), (x1, y1)), outline=1, fill=1)
    return np.asarray(canvas, bool)
