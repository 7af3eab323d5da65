"""Quadtree and T-pyramid label representations (paper §3.1)."""
from .quadtree import Quadtree, QuadtreeError
from .stats import LevelStats
from .tpyramid import COMPOSITE, IGNORE_POLICIES, TPyramid, build_tpyramid, merge_2x2

__all__ = [
    "COMPOSITE", "IGNORE_POLICIES", "LevelStats", "Quadtree", "QuadtreeError", "TPyramid",
    "build_tpyramid", "merge_2x2",
]
