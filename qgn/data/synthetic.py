"""Procedural synthetic outdoor scenes with exact labels, for tests, demos and quick training.

``make_scene(seed)`` paints, back to front: sky, hilly ground (sinusoidal horizon), a receding
road (straight or curved edges, dashed markings), then objects sorted far to near (buildings with
flat / gabled / slanted roofs, round and conifer trees, fences, poles 1-6 px wide with signs and
lamp arms, big foreground signs, 1-2 px overhead wires), then a global illumination change
(exposure, colour cast, directional shading, gamma) and sensor noise. Nearer objects are lower in
the frame and larger, so sizes vary with depth, and later objects occlude earlier ones.

Each class has its own colour distribution *and* pattern (see ``synthetic_textures``), jittered
per scene, so a classifier must use local texture and context, not one pixel's colour.
Everything is drawn from ``numpy.random.default_rng(seed)``: a seed always gives the same scene.

Modules: ``synthetic_classes`` (label space), ``synthetic_shapes`` (masks),
``synthetic_textures`` (per-class patterns), ``synthetic_objects`` (one drawer per object kind).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import qgn.data.synthetic_objects as objects
from qgn.data.base import Sample, SegmentationDataset
from qgn.data.synthetic_classes import SYNTHETIC_CLASSES

__all__ = ["SYNTHETIC_CLASSES", "SyntheticDataset", "make_scene"]

Drawer = Callable[[objects.ScenePainter, objects.Layout, float], None]


@dataclass(frozen=True)
class SceneRecipe:
    """How many of each object a kind of scene has: (low, high) inclusive counts, probabilities."""

    road_probability: float
    buildings: tuple[int, int]
    trees: tuple[int, int]
    fences: tuple[int, int]
    poles: tuple[int, int]
    big_signs: tuple[int, int]
    wire_probability: float


SCENE_RECIPES = {  # name: (recipe, probability of the scene kind)
    "street": (SceneRecipe(0.95, (2, 6), (0, 3), (0, 1), (1, 4), (0, 1), 0.5), 0.5),
    "park": (SceneRecipe(0.35, (0, 2), (3, 8), (1, 2), (1, 2), (0, 1), 0.25), 0.3),
    "open": (SceneRecipe(0.5, (0, 1), (0, 3), (0, 2), (2, 5), (0, 2), 0.8), 0.2),
}


def scene_objects(rng: np.random.Generator, recipe: SceneRecipe) -> list[tuple[float, Drawer]]:
    """(depth, drawer) for every object of the scene, sorted far to near (the painting order)."""

    def count(bounds: tuple[int, int]) -> int:
        return int(rng.integers(bounds[0], bounds[1] + 1))

    placed: list[tuple[float, Drawer]] = []
    for bounds, depth_range, drawer in (
        (recipe.buildings, (0.0, 0.3), objects.draw_building),
        (recipe.trees, (0.0, 1.0), objects.draw_tree),
        (recipe.fences, (0.05, 0.9), objects.draw_fence),
        (recipe.poles, (0.0, 1.0), objects.draw_pole),
        (recipe.big_signs, (0.6, 1.0), objects.draw_big_sign),
    ):
        placed += [(rng.uniform(*depth_range), drawer) for _ in range(count(bounds))]
    if rng.random() < recipe.wire_probability:
        placed.append((rng.uniform(0.2, 0.7), objects.draw_wires))
    return sorted(placed, key=lambda item: item[0])


def illuminate(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Global lighting and sensor noise: linear RGB (H, W, 3) float32 → (H, W, 3) uint8.

    Exposure ×0.6..1.3, colour cast ±8 % per channel, a linear shading ramp up to ±20 % in a
    random direction, Gaussian luminance noise of 0.5..2.5 % of full scale, then gamma 0.8..1.25.
    ``image`` is not modified.
    """
    h, w, _ = image.shape
    angle = rng.uniform(0, 2 * np.pi)
    ramp_y = (np.arange(h, dtype=np.float32)[:, None] / h - 0.5) * math.sin(angle)
    ramp_x = (np.arange(w, dtype=np.float32)[None, :] / w - 0.5) * math.cos(angle)
    shading = 1.0 + rng.uniform(0.0, 0.4) * (ramp_y + ramp_x)
    cast = (1.0 + rng.uniform(-0.08, 0.08, 3)).astype(np.float32) * rng.uniform(0.6, 1.3)
    lit = image * cast
    lit *= shading[:, :, None]
    lit += rng.uniform(0.005, 0.025) * rng.standard_normal((h, w, 1), dtype=np.float32)
    lit *= 255.0
    lit += 0.5
    linear = np.clip(lit, 0, 255, out=lit).astype(np.uint8)
    gamma_curve = np.linspace(0.0, 1.0, 256) ** rng.uniform(0.8, 1.25)
    return np.round(gamma_curve * 255.0).astype(np.uint8)[linear]


def make_scene(seed: int, height: int = 256, width: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """The synthetic scene of ``seed``: image (H, W, 3) uint8 RGB and label (H, W) uint8 class ids.

    Class ids index ``SYNTHETIC_CLASSES`` (0..7); there are no void pixels. Deterministic in
    ``(seed, height, width)``. About 10-15 ms for 256×256 on one CPU core.
    """
    rng = np.random.default_rng(seed)
    layout = objects.make_layout(rng, height, width)
    painter = objects.ScenePainter(height, width, rng)
    kinds = list(SCENE_RECIPES)
    kind = kinds[int(rng.choice(len(kinds), p=[SCENE_RECIPES[k][1] for k in kinds]))]
    recipe = SCENE_RECIPES[kind][0]
    objects.draw_sky_and_ground(painter, layout)
    if rng.random() < recipe.road_probability:
        objects.draw_road(painter, layout)
    for depth, drawer in scene_objects(rng, recipe):
        drawer(painter, layout, depth)
    return illuminate(painter.image, rng), painter.label


class SyntheticDataset(SegmentationDataset):
    """``n`` synthetic scenes; sample i is ``make_scene(seed0 + i, *size)``, named ``synthetic_{seed:06d}``.

    size: (height, width), or one int for square scenes.
    """

    def __init__(self, n: int, seed0: int = 0, size: int | tuple[int, int] = 256) -> None:
        if n < 0:
            raise ValueError(f"SyntheticDataset: n must be ≥ 0, got {n}")
        self.n, self.seed0 = int(n), int(seed0)
        self.size = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.classes = SYNTHETIC_CLASSES

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> Sample:
        if not -self.n <= index < self.n:
            raise IndexError(f"sample index {index} out of range for {self.n} samples")
        seed = self.seed0 + index % self.n
        image, label = make_scene(seed, *self.size)
        return Sample(image=image, label=label.astype(np.int64), name=f"synthetic_{seed:06d}")
