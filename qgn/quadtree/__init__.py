"""Quadtree and T-pyramid label representations (paper §3.1)."""
from .quadtree import Quadtree, QuadtreeError
from .stats import LevelStats
from .qgt import QgtFormatError, read_qgt, write_qgt
from .tpyramid import COMPOSITE, IGNORE_POLICIES, NUM_LEVELS, ROOT_LEVEL, TPyramid, build_tpyramid, merge_2x2

__all__ = [
    "COMPOSITE", "IGNORE_POLICIES", "LevelStats", "NUM_LEVELS", "QgtFormatError", "Quadtree", "QuadtreeError",
    "ROOT_LEVEL", "TPyramid", "build_tpyramid", "merge_2x2", "read_qgt", "write_qgt",
]
