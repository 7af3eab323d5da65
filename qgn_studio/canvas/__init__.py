"""The pyqtgraph canvas (``view.Canvas``) and its overlay layers (``layers``)."""
from qgn_studio.canvas.view import Canvas

__all__ = ["Canvas"]
