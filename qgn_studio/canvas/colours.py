"""Colour tables for the overlays: class palettes, the uncertainty colour map, level colours."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

UNCERTAINTY_COLORMAP = "inferno"
# Q̂5 … Q̂0: dark blue (coarse) to yellow (pixels), sampled from viridis.
LEVEL_COLORMAP = "viridis"
COMPOSITE_RGBA = (20, 20, 20, 110)  # the shade under the composite hatching
HATCH_RGBA = (255, 255, 255, 230)


def palette_array(classes) -> np.ndarray:
    """(k, 3) uint8 class colours."""
    return np.asarray(classes.palette, np.uint8).reshape(-1, 3)


def label_lut(classes) -> np.ndarray:
    """(k+1, 4) uint8: row c = class c opaque; row k (ignore / out of range) transparent."""
    k = classes.num_classes
    lut = np.zeros((k + 1, 4), np.uint8)
    lut[:k, :3] = palette_array(classes)
    lut[:k, 3] = 255
    return lut


def colour_labels(label: np.ndarray, classes) -> np.ndarray:
    """(H, W) class ids → (H, W, 4) uint8 RGBA; values outside 0..k-1 (ignore) transparent."""
    k = classes.num_classes
    index = label.astype(np.int64, copy=False)
    index = np.where((index >= 0) & (index < k), index, k)
    return label_lut(classes)[index]


def colour_codes(codes: np.ndarray, classes, composite_rgba: tuple = (0, 0, 0, 0)) -> np.ndarray:
    """(h, w) argmax codes (-1 not computed, 0 composite, c+1 class c) → RGBA; code -1 is
    transparent, code 0 ``composite_rgba`` (transparent unless given: the hatching marks them)."""
    k = classes.num_classes
    lut = np.zeros((k + 2, 4), np.uint8)
    lut[1] = composite_rgba
    lut[2:] = label_lut(classes)[:k]
    return lut[np.clip(codes.astype(np.int64) + 1, 0, k + 1)]


def finest_on_top(levels: dict[int, np.ndarray]) -> tuple[np.ndarray, int] | None:
    """Per level l, (h_l, w_l, 4) uint8 RGBA whose pixels cover 2^l image pixels, each opaque or
    transparent → (one RGBA on the finest level's cells, that level): what drawing the levels
    coarse to fine, finer on top, shows — one image to paint instead of one per level. A level's
    h_l is ceil(H / 2^l), so a coarser level doubled covers it. None if no level is given."""
    stacked, stacked_level = None, None
    for level in sorted(levels, reverse=True):
        rgba = np.ascontiguousarray(levels[level], dtype=np.uint8)
        pixels = rgba.view(np.uint32)[..., 0]  # one word per pixel: a quarter of the elements to move
        if stacked is not None:
            f = 1 << (stacked_level - level)
            h, w = pixels.shape
            below = stacked.repeat(f, axis=0)[:h].repeat(f, axis=1)[:, :w]
            pixels = np.where(rgba[..., 3] > 0, pixels, below)
        stacked, stacked_level = pixels, level
    if stacked is None:
        return None
    return np.ascontiguousarray(stacked).view(np.uint8).reshape(stacked.shape + (4,)), stacked_level


def colormap_lut(name: str = UNCERTAINTY_COLORMAP) -> np.ndarray:
    """(256, 4) uint8 RGBA of a pyqtgraph colour map."""
    return pg.colormap.get(name).getLookupTable(0.0, 1.0, 256, alpha=True).astype(np.uint8)


def colour_values(values: np.ndarray, name: str = UNCERTAINTY_COLORMAP) -> np.ndarray:
    """(h, w) floats in [0, 1] (NaN = not computed) → (h, w, 4) RGBA, NaN transparent."""
    finite = np.isfinite(values)
    index = np.clip(np.nan_to_num(values, nan=0.0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    rgba = colormap_lut(name)[index]
    rgba[~finite] = 0
    return rgba


def level_colours() -> dict[int, tuple[int, int, int]]:
    """level → RGB for the active-site overlay (5 coarse … 0 pixels)."""
    cmap = pg.colormap.get(LEVEL_COLORMAP)
    colours = cmap.getLookupTable(0.0, 1.0, 6, alpha=False)
    return {5 - i: tuple(int(c) for c in colours[i]) for i in range(6)}
