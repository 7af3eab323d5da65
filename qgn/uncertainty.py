"""What a model is unsure about: per image (to order the image list) and per region (to visit next).

Two measures of one ``qgn.infer.Prediction``:

- ``mean_entropy``: the mean over pixels of the normalised entropy (0 … 1) of the finest computed
  cell covering each pixel — how spread the model's class probabilities are where it stopped;
- ``composite_share``: the share of pixels that the model sends down to level 0 (its level-1 cells
  were predicted composite, i.e. "not one class"): how much of the image needs pixel-level detail.

``spearman`` measures which predicts the correction effort better (``qgn bench --only annotate``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from qgn.infer import Prediction


@dataclass(frozen=True)
class ImageUncertainty:
    """mean_entropy, composite_share: see the module docstring, each in 0 … 1."""

    mean_entropy: float
    composite_share: float

    def score(self, measure: str) -> float:
        if measure not in MEASURES:
            raise ValueError(f"uncertainty measure must be one of {MEASURES}; got {measure!r}")
        return getattr(self, measure)


MEASURES = ("mean_entropy", "composite_share")


def entropy_map(prediction: Prediction, index: int = 0) -> np.ndarray:
    """(H, W) float32: normalised entropy of the finest computed cell covering each pixel of image
    ``index`` (padding cropped)."""
    grid = None
    for level in prediction.levels:
        values = prediction.level_entropy(level)[index]  # NaN where not computed at this level
        if grid is None:
            grid = values
        else:
            grid = grid.repeat_interleave(2, 0).repeat_interleave(2, 1)
            grid = torch.where(torch.isnan(values), grid, values)
    scale = 1 << prediction.finest_level
    grid = grid.repeat_interleave(scale, 0).repeat_interleave(scale, 1)
    h, w = prediction.sizes[index]
    return grid[:h, :w].cpu().numpy().astype(np.float32)


def image_uncertainty(prediction: Prediction, index: int = 0) -> ImageUncertainty:
    """Both measures of image ``index`` of ``prediction``."""
    h, w = prediction.sizes[index]
    if 0 in prediction.levels:
        coords = prediction.output(0).coords
        mine = coords[coords[:, 0] == index]
        inside = (mine[:, 1] < h) & (mine[:, 2] < w)
        share = float(inside.sum()) / (h * w)
    else:
        share = 0.0
    return ImageUncertainty(float(np.nanmean(entropy_map(prediction, index))), share)


def order_by_uncertainty(scores: list[float]) -> list[int]:
    """Indices of ``scores`` from the most to the least uncertain (ties: list order)."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def uncertain_cells(entropy: np.ndarray, level: int, count: int | None = None) -> np.ndarray:
    """(N, 2) int64 ``x, y`` top-left pixels of the level-``level`` cells of an (H, W) entropy map,
    most uncertain (highest mean entropy) first — the "next uncertain region" order."""
    size = 1 << level
    h, w = entropy.shape
    gh, gw = -(-h // size), -(-w // size)
    padded = np.full((gh * size, gw * size), np.nan, np.float32)
    padded[:h, :w] = entropy
    means = np.nanmean(padded.reshape(gh, size, gw, size), axis=(1, 3))
    order = np.argsort(-means.ravel(), kind="stable")[: count]
    cy, cx = np.divmod(order, gw)
    return np.stack([cx * size, cy * size], axis=1).astype(np.int64)


def _ranks(values) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    values = np.asarray(values, np.float64)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), np.float64)
    sorted_values = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(a, b) -> float:
    """Spearman's rank correlation of two equally long sequences (NaN when either is constant or
    shorter than 2)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) != len(b):
        raise ValueError(f"spearman: {len(a)} and {len(b)} values")
    if len(a) < 2:
        return float("nan")
    ra, rb = _ranks(a), _ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def entropy_from_levels(levels: dict, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 pixel entropy from per-level entropy maps ``{level: (h_l, w_l) float, NaN
    where not computed}`` (the finest computed cell covering a pixel wins), cropped to ``shape``."""
    h, w = shape
    out = np.full((h, w), np.nan, np.float32)
    for level in sorted(levels, reverse=True):  # coarse first, finer overwrite
        grid = np.asarray(levels[level], np.float32)
        size = 1 << level
        up = np.repeat(np.repeat(grid, size, axis=0), size, axis=1)[:h, :w]
        ph, pw = up.shape
        window = out[:ph, :pw]
        np.copyto(window, up, where=~np.isnan(up))
    return out
