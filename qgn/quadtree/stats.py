"""Dataset sparsity (paper Table 5): how many pixels each quadtree level holds, and leaves/pixels."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .quadtree import Quadtree


@dataclass
class LevelStats:
    """Running totals over one or more quadtrees of the same number of levels.

    pixels_per_level: (L,) int64, pixels covered by leaves of each level (index = level).
    leaves:           total number of leaves.
    pixels:           total pixels (padded size, as in the paper's Table 5 convention here).
    images:           number of quadtrees added.
    """

    num_levels: int
    pixels_per_level: np.ndarray = field(default=None)  # type: ignore[assignment]
    leaves: int = 0
    pixels: int = 0
    images: int = 0

    def __post_init__(self):
        if self.pixels_per_level is None:
            self.pixels_per_level = np.zeros(self.num_levels, np.int64)

    def add(self, qt: Quadtree) -> "LevelStats":
        if qt.num_levels != self.num_levels:
            raise ValueError(f"quadtree has {qt.num_levels} levels, these stats count {self.num_levels}")
        counts = np.bincount(qt.level, minlength=self.num_levels).astype(np.int64)
        self.pixels_per_level += counts * (4 ** np.arange(self.num_levels, dtype=np.int64))
        self.leaves += len(qt)
        ph, pw = qt.padded_shape
        self.pixels += ph * pw
        self.images += 1
        return self

    def percent_per_level(self) -> np.ndarray:
        """(L,) float64: per cent of all pixels whose leaf is at each level (index = level)."""
        return 100.0 * self.pixels_per_level / max(self.pixels, 1)

    def ratio_percent(self) -> float:
        """Leaves per pixel, in per cent: the size of the quadtree relative to the dense grid."""
        return 100.0 * self.leaves / max(self.pixels, 1)

    def to_json(self) -> dict:
        """``{"Q5": pct, ..., "Q0": pct, "ratio": pct, "images": n}`` (levels from the root down)."""
        pct = self.percent_per_level()
        out: dict = {f"Q{l}": float(pct[l]) for l in range(self.num_levels - 1, -1, -1)}
        out["ratio"] = self.ratio_percent()
        out["images"] = self.images
        return out

    def format_table(self) -> str:
        """A readable one-row table like the paper's Table 5."""
        cols = [f"Q{l}" for l in range(self.num_levels - 1, -1, -1)] + ["ratio", "images"]
        js = self.to_json()
        vals = [f"{js[c]:.2f}" for c in cols[:-2]] + [f"{js['ratio']:.2f} %", str(self.images)]
        widths = [max(len(c), len(v)) for c, v in zip(cols, vals)]
        head = "  ".join(c.rjust(w) for c, w in zip(cols, widths))
        row = "  ".join(v.rjust(w) for v, w in zip(vals, widths))
        return f"{head}\n{row}"
