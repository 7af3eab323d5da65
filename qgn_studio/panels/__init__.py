"""Dock panels: the image list, the layer list with its legend, the explore panel (here), the
annotate and fine-tune panels (``annotate``, ``finetune``: built by their controllers), and the
status bar's task progress (``progress``)."""
from qgn_studio.panels.explore import ExplorePanel
from qgn_studio.panels.images import ImageListPanel
from qgn_studio.panels.layers import LayerPanel

__all__ = ["ExplorePanel", "ImageListPanel", "LayerPanel"]
