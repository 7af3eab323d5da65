"""One image's annotation and the tools that edit it (Qt-free); its file formats are ``qgn.formats``.

============ ==========================================================================================
annotation   ``Annotation``: a label map (the truth), its class set and its derived quadtree
edit         ``LabelEdit``: what a tool changes in a label map, and how to undo it; paint, fill, pick
changes      ``ChangeTally``: pixels and cells changed against the reference, by the rows edits touched
brush        a brush of more than one cell: the cells within a radius around each stroke point
start        where an image's annotation starts: empty, the model's prediction or the project head's
working      the working resolution of the image-aware tools
superpixels  the image cut into segments that follow its edges, at a few granularities
snap         the snapped coarse brush: paint at a coarse level, the image decides the boundary
wand         the magic wand: the connected pixels whose colour is near the clicked one
============ ==========================================================================================
"""
from .annotation import Annotation
from .edit import LabelEdit, cells_along, changed_cells, fill_region, paint_cells, pick

__all__ = ["Annotation", "LabelEdit", "cells_along", "changed_cells", "fill_region", "paint_cells", "pick"]
