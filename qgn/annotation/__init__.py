"""Annotation: editable label maps and their edits (Qt-free); their file formats are ``qgn.formats``."""
from .annotation import Annotation, check_label, label_dtype
from .edit import LabelEdit, cells_along, changed_cells, fill_region, paint_cells, pick

__all__ = [
    "Annotation", "LabelEdit", "cells_along", "changed_cells", "check_label", "fill_region", "label_dtype", "paint_cells",
    "pick",
]
