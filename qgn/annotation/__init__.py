"""Annotation: editable label maps, their edits, and their file formats (Qt-free)."""
from .annotation import Annotation, check_label, label_dtype
from .edit import LabelEdit, cells_along, changed_cells, fill_region, paint_cells, pick
from .formats import FORMATS, detect_format, export_annotation, import_annotation

__all__ = [
    "Annotation", "FORMATS", "LabelEdit", "cells_along", "changed_cells", "check_label", "detect_format",
    "export_annotation", "fill_region", "import_annotation", "label_dtype", "paint_cells", "pick",
]
