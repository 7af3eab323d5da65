"""The objects of a synthetic scene and the canvas they are painted on.

``ScenePainter`` holds the float image and the label map; each ``draw_*`` function draws one kind
of object (random size, colour and pattern from the painter's generator) with the shapes of
``synthetic_shapes`` and the textures of ``synthetic_textures``. ``Layout`` places objects in a
simple perspective: an object at depth 0 stands on the horizon and is small, at depth 1 it stands
at the bottom of the image and is large.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import numpy as np

import qgn.data.synthetic_shapes as shapes
import qgn.data.synthetic_textures as tex
from qgn.data.synthetic_classes import BUILDING, FENCE, GRASS, POLE, ROAD, SIGN, SKY, TREE
from qgn.data.synthetic_shapes import Region
from qgn.data.synthetic_textures import rgb

T = TypeVar("T")

Texture = Callable[[np.random.Generator, np.ndarray, np.ndarray], np.ndarray]


class ScenePainter:
    """A float RGB canvas (H, W, 3) float32 and its label map (H, W) uint8, painted in order."""

    def __init__(self, height: int, width: int, rng: np.random.Generator) -> None:
        self.image = np.zeros((height, width, 3), dtype=np.float32)
        self.label = np.zeros((height, width), dtype=np.uint8)
        self.rng = rng

    @property
    def shape(self) -> tuple[int, int]:
        return self.label.shape

    def paint(self, region: Region, class_id: int, texture: Texture) -> None:
        """Overwrite the region's pixels with ``class_id`` and the texture evaluated on its box."""
        if region.mask.size == 0 or not region.mask.any():
            return
        rows, cols = region.slices
        ys, xs = shapes.pixel_centres(rows.start, rows.stop, cols.start, cols.stop)
        colours = texture(self.rng, ys, xs)
        np.copyto(self.image[rows, cols], colours, where=region.mask[:, :, None])
        np.copyto(self.label[rows, cols], np.uint8(class_id), where=region.mask)


@dataclass(frozen=True)
class Layout:
    """Scene geometry shared by all drawers.

    horizon_y: mean horizon row; horizon: (W,) float32 horizon row per column; unit: px per
    "256-image pixel" (sizes scale with the image).
    """

    height: int
    width: int
    horizon_y: float
    horizon: np.ndarray
    unit: float

    def ground_row(self, depth: float, left: float, right: float | None = None) -> float:
        """Row where an object at ``depth`` (0 = horizon, 1 = image bottom) spanning columns
        ``left..right`` touches the ground: never above the horizon anywhere in that span."""
        right = left if right is None else right
        span = self.horizon[int(np.clip(left, 0, self.width - 1)): int(np.clip(right, 0, self.width - 1)) + 1]
        horizon = max(self.horizon_y, float(span.max()) if span.size else self.horizon_y)
        return horizon + (self.height - horizon) * (0.03 + 0.97 * depth**1.2)

    def size(self, depth: float) -> float:
        """Scale factor for object sizes at ``depth``."""
        return self.unit * (0.25 + depth)


def make_layout(rng: np.random.Generator, height: int, width: int) -> Layout:
    """Horizon: a mean row plus two sinusoids (rolling hills)."""
    horizon_y = rng.uniform(0.3, 0.55) * height
    x = np.arange(width, dtype=np.float32) + 0.5
    curve = np.full(width, horizon_y, dtype=np.float32)
    for amplitude, frequency in ((0.06, (0.4, 2.0)), (0.02, (2.0, 6.0))):
        curve += rng.uniform(0.0, amplitude) * height * np.sin(
            2 * np.pi * rng.uniform(*frequency) * x / width + rng.uniform(0, 2 * np.pi))
    return Layout(height, width, horizon_y, curve, math.sqrt(height * width) / 256.0)


def choose(rng: np.random.Generator, options: Sequence[T]) -> T:
    """One element of ``options``, uniformly."""
    return options[int(rng.integers(len(options)))]


SKY_STYLES = [  # (top colour, colour at the horizon, cloud colour, cloud cover range)
    (rgb(0.22, 0.42, 0.80), rgb(0.62, 0.76, 0.93), rgb(0.93, 0.94, 0.96), (0.0, 0.45)),  # clear
    (rgb(0.58, 0.60, 0.65), rgb(0.78, 0.79, 0.81), rgb(0.48, 0.49, 0.52), (0.2, 0.6)),  # overcast
    (rgb(0.28, 0.30, 0.55), rgb(0.95, 0.64, 0.40), rgb(0.80, 0.55, 0.50), (0.0, 0.35)),  # dusk
]
GRASS_COLOURS = [rgb(0.26, 0.44, 0.13), rgb(0.40, 0.43, 0.18), rgb(0.52, 0.47, 0.27)]


def draw_sky_and_ground(painter: ScenePainter, layout: Layout) -> None:
    """Sky (clear / overcast / dusk gradient, clouds) down to the horizon, grass below it."""
    rng = painter.rng
    top, bottom, cloud, cover_range = choose(rng, SKY_STYLES)
    cover = rng.uniform(*cover_range)
    top, bottom = tex.jitter_colour(rng, top, 0.08, 0.1), tex.jitter_colour(rng, bottom, 0.06, 0.08)
    sky_rows = min(painter.shape[0], math.ceil(float(layout.horizon.max())) + 1)
    sky = partial(tex.sky_texture, top=top, bottom=bottom, horizon_y=layout.horizon_y, clouds=cover,
                  cloud_colour=cloud)
    painter.paint(Region(0, 0, np.ones((sky_rows, painter.shape[1]), dtype=bool)), SKY, sky)
    grass_colour = tex.jitter_colour(rng, choose(rng, GRASS_COLOURS), 0.1, 0.15)
    grass = partial(tex.grass_texture, base=grass_colour, roughness=rng.uniform(0.25, 0.45))
    painter.paint(shapes.below_curve_region(painter.shape, layout.horizon), GRASS, grass)


def draw_road(painter: ScenePainter, layout: Layout) -> None:
    """A road receding to the horizon, with optional dashed centre markings (labelled road)."""
    rng, h, w = painter.rng, layout.height, layout.width
    vanish_x = rng.uniform(0.2, 0.8) * w
    horizon_there = float(layout.horizon[int(np.clip(vanish_x, 0, w - 1))])
    road = shapes.RoadGeometry(
        top_y=max(layout.horizon_y, horizon_there) + rng.uniform(0.0, 0.05) * h,
        vanish_x=vanish_x,
        bottom_x=rng.uniform(0.15, 0.85) * w,
        bottom_half_width=rng.uniform(0.22, 0.6) * w,
        bend=rng.uniform(-0.6, 0.6) * w if rng.random() < 0.5 else 0.0,
    )
    colour = tex.jitter_colour(rng, rgb(0.38, 0.38, 0.39), 0.05, 0.22)
    asphalt = partial(tex.road_texture, base=colour, wear=rng.uniform(0.05, 0.2))
    painter.paint(shapes.road_region(painter.shape, road), ROAD, asphalt)
    if rng.random() < 0.6:
        paint_colour = choose(rng, [rgb(0.85, 0.85, 0.83), rgb(0.88, 0.74, 0.25)])
        marking = shapes.road_marking_region(painter.shape, road, rng.uniform(3.0, 7.0) * layout.unit,
                                             rng.uniform(1.5, 4.0))
        painter.paint(marking, ROAD, partial(tex.flat_texture, colour=paint_colour, noise=0.04))


WALL_COLOURS = [rgb(0.74, 0.67, 0.54), rgb(0.58, 0.30, 0.22), rgb(0.52, 0.52, 0.54),
                rgb(0.84, 0.83, 0.80), rgb(0.55, 0.62, 0.70), rgb(0.80, 0.72, 0.45)]
WINDOW_COLOURS = [rgb(0.10, 0.13, 0.18), rgb(0.38, 0.48, 0.62), rgb(0.20, 0.22, 0.20)]


def building_outline(
    rng: np.random.Generator, top: float, bottom: float, left: float, right: float
) -> np.ndarray:
    """Vertices (N, 2) (y, x) of a facade with a flat, gabled or slanted roof."""
    roof = int(rng.choice(3, p=[0.55, 0.25, 0.2]))
    rise = rng.uniform(0.15, 0.4) * (right - left)
    if roof == 1:
        ridge = (top - rise, (left + right) / 2)
        return np.array([(bottom, left), (top, left), ridge, (top, right), (bottom, right)])
    if roof == 2:
        return np.array([(bottom, left), (top - rise, left), (top, right), (bottom, right)])
    return np.array([(bottom, left), (top, left), (top, right), (bottom, right)])


def draw_building(painter: ScenePainter, layout: Layout, depth: float) -> None:
    """A facade standing on the ground at ``depth`` with a window grid."""
    rng, h, w = painter.rng, layout.height, layout.width
    scale = 0.6 + depth
    height = rng.uniform(0.15, 0.5) * h * scale
    width = rng.uniform(0.12, 0.35) * w * scale
    left = rng.uniform(-0.1, 1.0) * w - width / 2
    bottom = layout.ground_row(depth, left, left + width) + 2
    top = bottom - height
    wall = tex.jitter_colour(rng, choose(rng, WALL_COLOURS), 0.06, 0.15)
    window = tex.jitter_colour(rng, choose(rng, WINDOW_COLOURS), 0.1, 0.2)
    period = (rng.uniform(10, 20) * layout.unit * scale, rng.uniform(8, 16) * layout.unit * scale)
    origin = (top + rng.uniform(0.3, 0.8) * period[0], left + rng.uniform(0.2, 0.6) * period[1])
    fraction = (rng.uniform(0.4, 0.65), rng.uniform(0.35, 0.65))
    bricks = bool(rng.random() < 0.3)
    facade = partial(tex.building_texture, wall=wall, window=window, origin=origin, period=period,
                     fraction=fraction, bricks=bricks)
    outline = building_outline(rng, top, bottom, left, left + width)
    painter.paint(shapes.polygon_region(painter.shape, outline), BUILDING, facade)


def draw_tree(painter: ScenePainter, layout: Layout, depth: float) -> None:
    """A trunk with a round (clustered ellipses) or conifer (triangle) canopy, all labelled tree."""
    rng = painter.rng
    size = layout.size(depth)
    x = rng.uniform(-0.05, 1.05) * layout.width
    base_y = layout.ground_row(depth, x)
    radius = rng.uniform(12, 30) * size
    trunk_height = rng.uniform(0.4, 1.0) * radius
    trunk_width = max(2, round(0.2 * radius))
    bark = tex.jitter_colour(rng, rgb(0.30, 0.20, 0.12), 0.1, 0.2)
    trunk_left = round(x - trunk_width / 2)
    trunk = shapes.rectangle_region(
        painter.shape, base_y - trunk_height - radius, trunk_left, base_y, trunk_left + trunk_width
    )
    painter.paint(trunk, TREE, partial(tex.bark_texture, base=bark))
    autumn = rng.random() < 0.15
    dark = tex.jitter_colour(rng, rgb(0.24, 0.12, 0.04) if autumn else rgb(0.05, 0.14, 0.05), 0.15, 0.2)
    light = tex.jitter_colour(rng, rgb(0.62, 0.42, 0.12) if autumn else rgb(0.28, 0.48, 0.14), 0.12, 0.2)
    cell = rng.uniform(5, 9) * max(size, 0.5)
    foliage = partial(tex.foliage_texture, dark=dark, light=light, cell=cell)
    centre_y = base_y - trunk_height - 0.8 * radius
    if rng.random() < 0.3:
        tip, foot = centre_y - 1.8 * radius, base_y - 0.5 * trunk_height
        outline = np.array([(tip, x), (foot, x + 0.7 * radius), (foot, x - 0.7 * radius)])
        painter.paint(shapes.polygon_region(painter.shape, outline), TREE, foliage)
        return
    for _ in range(int(rng.integers(3, 7))):
        dy, dx = rng.uniform(-0.5, 0.4) * radius, rng.uniform(-0.6, 0.6) * radius
        ry, rx = rng.uniform(0.45, 0.8) * radius, rng.uniform(0.5, 0.85) * radius
        painter.paint(shapes.ellipse_region(painter.shape, centre_y + dy, x + dx, ry, rx), TREE, foliage)


FENCE_STYLES = [  # (plank, gap, slanted)
    (rgb(0.55, 0.40, 0.25), rgb(0.22, 0.15, 0.09), False),
    (rgb(0.86, 0.86, 0.83), rgb(0.38, 0.38, 0.38), False),
    (rgb(0.78, 0.12, 0.10), rgb(0.90, 0.90, 0.90), True),
]


def draw_fence(painter: ScenePainter, layout: Layout, depth: float) -> None:
    """A fence band along the ground (a parallelogram in perspective) with planks or slanted bands."""
    rng, w = painter.rng, layout.width
    size = layout.size(depth)
    length = rng.uniform(0.25, 0.9) * w
    left = rng.uniform(-0.2, 1.0) * w - length / 2
    base_left = layout.ground_row(depth, left, left + length)
    far_end = float(np.clip(depth + rng.uniform(-0.15, 0.15), 0.0, 1.0))
    base_right = layout.ground_row(far_end, left, left + length)
    height = rng.uniform(10, 26) * size
    outline = np.array([(base_left, left), (base_left - height, left),
                        (base_right - height, left + length), (base_right, left + length)])
    plank, gap, slanted = FENCE_STYLES[int(rng.integers(len(FENCE_STYLES)))]
    plank, gap = tex.jitter_colour(rng, plank, 0.06, 0.15), tex.jitter_colour(rng, gap, 0.06, 0.15)
    period = max(3.0, rng.uniform(4, 10) * size)
    duty = rng.uniform(0.45, 0.7)
    slant = float(rng.choice([-1.0, 1.0])) if slanted else 0.0
    planks = partial(tex.fence_texture, plank=plank, gap=gap, period=period, duty=duty, slant=slant)
    painter.paint(shapes.polygon_region(painter.shape, outline), FENCE, planks)


SIGN_COLOURS = [rgb(0.80, 0.10, 0.10), rgb(0.10, 0.25, 0.70), rgb(0.95, 0.80, 0.10),
                rgb(0.92, 0.92, 0.90), rgb(0.05, 0.50, 0.25)]
SIGN_BORDERS = [rgb(0.92, 0.92, 0.90), rgb(0.80, 0.10, 0.10), rgb(0.08, 0.08, 0.08)]


def sign_outline(kind: str, cy: float, cx: float, r: float) -> np.ndarray | None:
    """Vertices (N, 2) (y, x) of a polygonal sign of ``kind``, or None for a disc."""
    if kind == "disc":
        return None
    corners = {"triangle": (3, -math.pi / 2), "square": (4, math.pi / 4), "diamond": (4, 0.0),
               "octagon": (8, math.pi / 8)}[kind]
    angles = corners[1] + np.arange(corners[0]) * 2 * math.pi / corners[0]
    return np.stack([cy + r * np.sin(angles), cx + r * np.cos(angles)], axis=1)


def sign_shape(painter: ScenePainter, kind: str, cy: float, cx: float, r: float) -> Region:
    outline = sign_outline(kind, cy, cx, r)
    if outline is None:
        return shapes.ellipse_region(painter.shape, cy, cx, r, r)
    return shapes.polygon_region(painter.shape, outline)


def draw_sign(painter: ScenePainter, cy: float, cx: float, radius: float) -> None:
    """A sign: border shape, inset fill of another colour, and a symbol (bar or dot) when large."""
    rng = painter.rng
    kind = str(rng.choice(["disc", "disc", "triangle", "square", "diamond", "octagon"]))
    fill = tex.jitter_colour(rng, choose(rng, SIGN_COLOURS), 0.05, 0.1)
    border = tex.jitter_colour(rng, choose(rng, SIGN_BORDERS), 0.05, 0.1)
    if np.abs(fill - border).sum() < 0.3:
        border = rgb(0.08, 0.08, 0.08)

    def glossy(colour: tex.Colour) -> Texture:
        return partial(tex.sign_texture, colour=colour, centre=(cy, cx), radius=radius)

    painter.paint(sign_shape(painter, kind, cy, cx, radius), SIGN, glossy(border))
    inner = radius * rng.uniform(0.65, 0.82)
    painter.paint(sign_shape(painter, kind, cy, cx, inner), SIGN, glossy(fill))
    if radius >= 7 and rng.random() < 0.7:
        symbol = border if rng.random() < 0.5 else rgb(0.08, 0.08, 0.08)
        s = 0.35 * inner
        region = (shapes.rectangle_region(painter.shape, cy - 0.3 * s, cx - s, cy + 0.3 * s, cx + s)
                  if rng.random() < 0.5 else shapes.ellipse_region(painter.shape, cy, cx, 0.6 * s, 0.6 * s))
        painter.paint(region, SIGN, glossy(symbol))


POLE_COLOURS = [rgb(0.45, 0.46, 0.48), rgb(0.14, 0.14, 0.15), rgb(0.20, 0.30, 0.22)]


def draw_pole(painter: ScenePainter, layout: Layout, depth: float) -> None:
    """A vertical pole 1-6 px wide (wider when nearer), maybe with a sign and a lamp arm."""
    rng = painter.rng
    size = layout.size(depth)
    x = rng.uniform(0.02, 0.98) * layout.width
    base_y = layout.ground_row(depth, x)
    width = max(1, round(rng.uniform(0.7, 1.1) * (1.0 + 4.5 * depth) * layout.unit))
    height = min(rng.uniform(60, 150) * size, base_y - 3)
    left, top = round(x - width / 2), base_y - height
    colour = tex.jitter_colour(rng, choose(rng, POLE_COLOURS), 0.05, 0.2)
    metal = partial(tex.pole_texture, base=colour, left=left, width=width)
    painter.paint(shapes.rectangle_region(painter.shape, round(top), left, base_y, left + width), POLE, metal)
    if rng.random() < 0.3:
        reach = rng.uniform(8, 22) * size * float(rng.choice([-1.0, 1.0]))
        arm = (min(left, left + reach), max(left + width, left + reach))
        painter.paint(shapes.rectangle_region(painter.shape, round(top), round(arm[0]), round(top) + width,
                                              round(arm[1])), POLE, metal)
    if rng.random() < 0.65:
        radius = rng.uniform(4, 10) * layout.unit * (0.5 + 1.5 * depth)
        draw_sign(painter, top + rng.uniform(0.8, 2.5) * radius, x, radius)


def draw_wires(painter: ScenePainter, layout: Layout, depth: float) -> None:
    """1-3 parallel sagging overhead wires, 1-2 px thick, spanning the image (``depth`` only sets
    their place in the painting order)."""
    rng, w = painter.rng, layout.width
    count = int(rng.integers(1, 4))
    apex_y = rng.uniform(0.08, 0.8) * layout.horizon_y
    apex_x = rng.uniform(0.2, 0.8) * w
    sag = rng.uniform(3, 30) * layout.unit
    colour = tex.jitter_colour(rng, rgb(0.10, 0.10, 0.11), 0.05, 0.3)
    cable = partial(tex.flat_texture, colour=colour, noise=0.03)
    for i in range(count):
        thickness = 1.0 if rng.random() < 0.6 else 2.0
        curvature = sag * (1 + 0.1 * i) / (0.5 * w) ** 2
        offset = i * rng.uniform(4, 9) * layout.unit
        wire = shapes.parabola_band_region(
            painter.shape, -2, w + 2, apex_y + offset, apex_x, curvature, thickness
        )
        painter.paint(wire, POLE, cable)


def draw_big_sign(painter: ScenePainter, layout: Layout, depth: float) -> None:
    """A large foreground sign on a short post (a much larger scale than the pole-top signs)."""
    rng = painter.rng
    radius = rng.uniform(12, 40) * layout.unit * depth
    x = rng.uniform(0.05, 0.95) * layout.width
    base_y = layout.ground_row(depth, x)
    post = max(2, round(radius * 0.15))
    colour = tex.jitter_colour(rng, choose(rng, POLE_COLOURS), 0.05, 0.2)
    top = base_y - rng.uniform(1.5, 3.0) * radius
    left = round(x - post / 2)
    painter.paint(shapes.rectangle_region(painter.shape, top, left, base_y, left + post), POLE,
                  partial(tex.pole_texture, base=colour, left=left, width=post))
    draw_sign(painter, top, x, radius)
