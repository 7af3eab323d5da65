"""Datasets for QGN: a common ``Sample`` / ``SegmentationDataset`` interface, loaders for
Cityscapes, ADE20K, SUN RGB-D (13/37), CamVid and generic folders, a procedural synthetic scene
generator, and ``open_dataset`` to open any of them by name or path.

Transforms (which import torch) live in ``qgn.data.transforms`` and ``qgn.data.augmented``.
"""
from qgn.data.base import DatasetLayoutError, LabelSizeError, Sample, SegmentationDataset
from qgn.data.registry import DATASET_NAMES, open_dataset
from qgn.data.synthetic import SYNTHETIC_CLASSES, SyntheticDataset, make_scene

__all__ = [
    "DATASET_NAMES",
    "DatasetLayoutError",
    "LabelSizeError",
    "SYNTHETIC_CLASSES",
    "Sample",
    "SegmentationDataset",
    "SyntheticDataset",
    "make_scene",
    "open_dataset",
]
