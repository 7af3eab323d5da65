"""The annotation file formats now live in ``qgn.formats`` (one module per format); this module keeps
the names other code imports from here."""
from __future__ import annotations

from ..formats import (  # noqa: F401
    DEFAULT_LEVELS, FORMATS, ExportItem, Format, check_format_names, detect_format, export_annotation, export_dataset,
    import_annotation,
)
from ..formats.cvat import cvat_labelmap, find_labelmap, read_labelmap  # noqa: F401
from ..formats.ids import is_cityscapes  # noqa: F401
from ..formats.leaves_json import JSON_FORMAT, JSON_VERSION, label_from_leaves_json, leaves_json  # noqa: F401
from ..formats.levels import HATCH_DARK, HATCH_LIGHT, level_image  # noqa: F401
