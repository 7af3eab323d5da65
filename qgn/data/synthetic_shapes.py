"""Rasterised shapes for the synthetic scene generator: boolean masks placed on a canvas.

Every function takes the canvas ``shape`` (H, W) and geometry in pixel coordinates (row ``y``,
column ``x``; pixel (i, j) covers [i, i+1) × [j, j+1), so its centre is (i + 0.5, j + 0.5)) and
returns a ``Region``: a bool mask (h, w) covering only the shape's bounding box, clipped to the
canvas. A pixel belongs to a shape when its centre does.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Shape2D = tuple[int, int]


@dataclass(frozen=True)
class Region:
    """A bool mask (h, w) whose top-left pixel is canvas pixel (top, left)."""

    top: int
    left: int
    mask: np.ndarray

    @property
    def slices(self) -> tuple[slice, slice]:
        """(rows, cols) slices of the canvas that ``mask`` covers."""
        h, w = self.mask.shape
        return slice(self.top, self.top + h), slice(self.left, self.left + w)

    @property
    def is_empty(self) -> bool:
        return not self.mask.any()


EMPTY_REGION = Region(0, 0, np.zeros((0, 0), dtype=bool))


def clip_box(shape: Shape2D, y0: float, y1: float, x0: float, x1: float) -> tuple[int, int, int, int] | None:
    """Integer pixel box [top, bottom) × [left, right) holding every centre in the float box, clipped."""
    top, bottom = max(0, math.floor(y0)), min(shape[0], math.ceil(y1) + 1)
    left, right = max(0, math.floor(x0)), min(shape[1], math.ceil(x1) + 1)
    if top >= bottom or left >= right:
        return None
    return top, bottom, left, right


def pixel_centres(top: int, bottom: int, left: int, right: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates of a box: ys (h, 1) float32 and xs (1, w) float32."""
    ys = np.arange(top, bottom, dtype=np.float32)[:, None] + 0.5
    xs = np.arange(left, right, dtype=np.float32)[None, :] + 0.5
    return ys, xs


def region_from_predicate(
    shape: Shape2D,
    box: tuple[float, float, float, float],
    inside: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> Region:
    """Evaluate ``inside(ys (h,1), xs (1,w)) -> (h, w) bool`` over the clipped float box (y0, y1, x0, x1)."""
    clipped = clip_box(shape, *box)
    if clipped is None:
        return EMPTY_REGION
    top, bottom, left, right = clipped
    ys, xs = pixel_centres(top, bottom, left, right)
    mask = np.broadcast_to(inside(ys, xs), (bottom - top, right - left))
    return Region(top, left, np.ascontiguousarray(mask))


def rectangle_region(shape: Shape2D, top: float, left: float, bottom: float, right: float) -> Region:
    """Axis-aligned rectangle; integer bounds give exactly (bottom-top) × (right-left) pixels."""
    return region_from_predicate(
        shape, (top, bottom, left, right),
        lambda ys, xs: (ys > top) & (ys < bottom) & (xs > left) & (xs < right),
    )


def ellipse_region(shape: Shape2D, cy: float, cx: float, ry: float, rx: float, angle: float = 0.0) -> Region:
    """Filled ellipse with semi-axes ``ry``, ``rx`` rotated by ``angle`` radians."""
    cos, sin = math.cos(angle), math.sin(angle)
    half_h = math.hypot(ry * cos, rx * sin)
    half_w = math.hypot(rx * cos, ry * sin)

    def inside(ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        dy, dx = ys - cy, xs - cx
        u = (dx * cos + dy * sin) / rx
        v = (dy * cos - dx * sin) / ry
        return u * u + v * v <= 1.0

    return region_from_predicate(shape, (cy - half_h, cy + half_h, cx - half_w, cx + half_w), inside)


def polygon_region(shape: Shape2D, vertices: np.ndarray) -> Region:
    """Filled polygon (even-odd rule); ``vertices`` (N, 2) float (y, x), in order."""
    vertices = np.asarray(vertices, dtype=np.float64)
    y0, x0 = vertices.min(axis=0)
    y1, x1 = vertices.max(axis=0)

    def inside(ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        result = np.zeros((ys.shape[0], xs.shape[1]), dtype=bool)
        for (ya, xa), (yb, xb) in zip(vertices, np.roll(vertices, -1, axis=0)):
            if ya == yb:
                continue
            spans = (ya > ys) != (yb > ys)
            crossing = xa + (ys - ya) * ((xb - xa) / (yb - ya))
            result ^= spans & (xs < crossing)
        return result

    return region_from_predicate(shape, (y0, y1, x0, x1), inside)


def below_curve_region(shape: Shape2D, curve_y: np.ndarray) -> Region:
    """Pixels whose centre lies below the curve; ``curve_y`` (W,) float = curve row at each column."""
    return region_from_predicate(
        shape, (float(curve_y.min()) - 1, shape[0], 0, shape[1] - 1), lambda ys, xs: ys >= curve_y[None, :]
    )


def parabola_band_region(
    shape: Shape2D, x0: float, x1: float, apex_y: float, apex_x: float, curvature: float, width: float
) -> Region:
    """A curve y = apex_y + curvature·(x - apex_x)² for x in [x0, x1], ``width`` pixels thick.

    Thickness is measured perpendicular to the curve, so a 1-pixel wire stays connected where it
    is steep. Models sagging overhead wires.
    """
    ends = apex_y + curvature * (np.array([x0, x1]) - apex_x) ** 2
    low = min(apex_y, float(ends.min())) if x0 <= apex_x <= x1 else float(ends.min())
    high = max(float(ends.max()), apex_y)
    slope_max = 2 * abs(curvature) * max(abs(x0 - apex_x), abs(x1 - apex_x))
    pad = width * math.sqrt(1 + slope_max**2)

    def inside(ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        curve = apex_y + curvature * (xs - apex_x) ** 2
        half = 0.5 * width * np.sqrt(1 + (2 * curvature * (xs - apex_x)) ** 2)
        return (np.abs(ys - curve) <= half) & (xs >= x0) & (xs <= x1)

    return region_from_predicate(shape, (low - pad, high + pad, x0, x1), inside)


@dataclass(frozen=True)
class RoadGeometry:
    """A road receding to a vanishing row: centre and half-width as functions of depth.

    At row y below ``top_y``, t = (y - top_y) / (H - top_y) ∈ (0, 1]; the road is centred at
    ``vanish_x + (bottom_x - vanish_x)·t + bend·t·(1 - t)`` with half-width ``bottom_half_width·t``
    (straight edges when ``bend`` is 0, curved otherwise).
    """

    top_y: float
    vanish_x: float
    bottom_x: float
    bottom_half_width: float
    bend: float

    def depth(self, ys: np.ndarray, height: int) -> np.ndarray:
        """t (h, 1) for rows ``ys`` (h, 1); ≤ 0 above the road's top."""
        return (ys - self.top_y) / max(height - self.top_y, 1e-6)

    def centre(self, t: np.ndarray) -> np.ndarray:
        return self.vanish_x + (self.bottom_x - self.vanish_x) * t + self.bend * t * (1 - t)


def road_region(shape: Shape2D, road: RoadGeometry) -> Region:
    """The road surface (see ``RoadGeometry``)."""

    def inside(ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        t = road.depth(ys, shape[0])
        return (t > 0) & (np.abs(xs - road.centre(t)) <= road.bottom_half_width * t)

    return region_from_predicate(shape, (road.top_y, shape[0], 0, shape[1] - 1), inside)


def road_marking_region(shape: Shape2D, road: RoadGeometry, width: float, dash_count: float) -> Region:
    """A dashed centre line on the road, ``width`` px wide at the bottom, dashes shrinking with depth."""

    def inside(ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        t = road.depth(ys, shape[0])
        half = np.maximum(0.5 * width * t, 0.35)
        dashes = np.modf(dash_count / np.maximum(t, 1e-3))[0] < 0.5
        return (t > 0.06) & dashes & (np.abs(xs - road.centre(t)) <= half)

    return region_from_predicate(shape, (road.top_y, shape[0], 0, shape[1] - 1), inside)
