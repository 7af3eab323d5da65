"""QGN: Quadtree Generating Networks — quadtree semantic segmentation (the library; never imports Qt).

``__version__`` is the single source of the package version (``pyproject.toml`` reads it).
"""
__version__ = "0.2.0"
