"""One image's annotation: a label map (the truth), its class set, and its derived quadtree.

The label map is what the user edits (through ``qgn.annotation.edit`` edits); the T-pyramid and the
quadtree are derived from it on demand, cached, and dropped whenever an edit is applied or reverted.
"""
from __future__ import annotations

import os

import numpy as np

from ..classes import ClassSet
from ..label_map import check_label, label_dtype
from ..quadtree import NUM_LEVELS, Quadtree, TPyramid, build_tpyramid
from .edit import LabelEdit, changed_cells

SOURCES = ("prediction", "import", "empty")


class Annotation:
    """An editable label map.

    label:     (H, W) uint8 or uint16 (``label_dtype(classes)``): class ids 0..k-1 and the ignore value.
    classes:   the ClassSet (its ignore_index may be None: then nothing can be erased).
    source:    "prediction" | "import" | "empty" — where the annotation started.
    reference: (H, W) the starting label map (a copy), for the "changed vs prediction" view.
    levels:    quadtree levels L of the derived quadtree (cells of 1 … 2^(L-1) pixels).
    revision:  counts applied and reverted edits (a cheap "did it change since I saved?" check).
    """

    def __init__(self, label: np.ndarray, classes: ClassSet, source: str = "prediction", levels: int = NUM_LEVELS):
        if source not in SOURCES:
            raise ValueError(f"annotation source must be one of {SOURCES}; got {source!r}")
        if levels < 1:
            raise ValueError(f"levels must be >= 1; got {levels}")
        self.classes = classes
        self.label = check_label(label, classes)
        self.reference = self.label.copy()
        self.source = source
        self.levels = int(levels)
        self.revision = 0
        self._tpyramid: TPyramid | None = None
        self._quadtree: Quadtree | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_prediction(cls, label: np.ndarray, classes: ClassSet, levels: int = NUM_LEVELS) -> "Annotation":
        """Start from a model's prediction (H, W) int (copied)."""
        return cls(label, classes, "prediction", levels)

    @classmethod
    def empty(cls, height: int, width: int, classes: ClassSet, levels: int = NUM_LEVELS) -> "Annotation":
        """Start from nothing: every pixel is the ignore value. ValueError without an ignore value."""
        if classes.ignore_index is None:
            raise ValueError("an empty annotation is all 'ignore', but this class set has no ignore value")
        if height < 1 or width < 1:
            raise ValueError(f"annotation size must be positive; got {width}×{height}")
        label = np.full((height, width), classes.ignore_index, label_dtype(classes))
        return cls(label, classes, "empty", levels)

    @classmethod
    def from_file(
        cls, path: str | os.PathLike, classes: ClassSet, format: str = "auto",
        shape: tuple[int, int] | None = None, levels: int = NUM_LEVELS,
    ) -> "Annotation":
        """Start from a mask file (``qgn.formats.import_annotation``). ``shape`` (H, W),
        when given, must match the mask's size (ValueError otherwise)."""
        from ..formats import import_annotation

        label = import_annotation(path, classes, format)
        if shape is not None and tuple(label.shape) != tuple(shape):
            raise ValueError(
                f"{path}: the mask is {label.shape[1]}×{label.shape[0]} but the image is {shape[1]}×{shape[0]}"
            )
        return cls(label, classes, "import", levels)

    # ------------------------------------------------------------------ editing
    @property
    def shape(self) -> tuple[int, int]:
        return self.label.shape

    def _check_edit(self, edit: LabelEdit) -> None:
        if not edit.fits(self.label.shape):
            raise ValueError(f"the edit touches pixels outside the {self.label.shape[1]}×{self.label.shape[0]} map")
        for values in (edit.after, edit.before):
            if len(values):
                check_label(values[None, :], self.classes, "edit", copy=False)

    def apply(self, edit: LabelEdit) -> None:
        """Apply ``edit`` in place (ValueError, map untouched, if it writes values of no class)."""
        self._check_edit(edit)
        edit.apply(self.label)
        self._changed(edit)

    def revert(self, edit: LabelEdit) -> None:
        """Undo ``edit`` in place."""
        self._check_edit(edit)
        edit.revert(self.label)
        self._changed(edit)

    def _changed(self, edit: LabelEdit) -> None:
        if not edit.is_empty:
            self._tpyramid = self._quadtree = None
        self.revision += 1

    def changed_cells(self, level: int) -> np.ndarray:
        """bool (ceil(H/2^l), ceil(W/2^l)): cells that differ from the starting map."""
        return changed_cells(self.label, self.reference, level)

    # ------------------------------------------------------------------ derived
    def tpyramid(self) -> TPyramid:
        """The T-pyramid of the current label map (lossless "class" ignore policy; cached)."""
        if self._tpyramid is None:
            self._tpyramid = build_tpyramid(
                self.label, self.classes.num_classes, self.classes.ignore_index, self.levels, "class"
            )
        return self._tpyramid

    def quadtree(self) -> Quadtree:
        """The quadtree leaves of the current label map (cached)."""
        if self._quadtree is None:
            self._quadtree = Quadtree.from_tpyramid(self.tpyramid())
        return self._quadtree
