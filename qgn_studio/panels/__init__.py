"""Dock panels: the image list, the layer list with its legend, and the explore panel."""
from qgn_studio.panels.explore import ExplorePanel
from qgn_studio.panels.images import ImageListPanel
from qgn_studio.panels.layers import LayerPanel

__all__ = ["ExplorePanel", "ImageListPanel", "LayerPanel"]
