"""Does a ground-truth label map fit a model's classes? And which bundled model does it fit?

A ground truth *fits* a class set when every value is a class id ``0..k-1`` or the set's ignore
value. One that does not fit never blocks a prediction (nothing in a prediction needs it except
the GTC scheme); it only leaves the accuracy figures empty, with a reason a person can act on.
"""
from __future__ import annotations

import numpy as np

from qgn.classes import ClassSet


class GroundTruthMismatch(ValueError):
    """A ground truth whose values are not classes of the model.

    values: (n,) int64 sorted offending values; source: the file (or name) it came from.
    """

    def __init__(self, message: str, values: np.ndarray, source: str):
        super().__init__(message)
        self.values, self.source = values, source


def foreign_values(label: np.ndarray, classes: ClassSet) -> np.ndarray:
    """(n,) int64 sorted values of ``label`` (H, W) that are neither a class id nor the ignore value."""
    values = np.unique(np.asarray(label))
    valid = (values >= 0) & (values < classes.num_classes)
    if classes.ignore_index is not None:
        valid |= values == classes.ignore_index
    return values[~valid].astype(np.int64)


def class_range(classes: ClassSet) -> str:
    """'0..10, ignore 11' — what a label map for ``classes`` may hold."""
    ignore = f", ignore {classes.ignore_index}" if classes.ignore_index is not None else ", no ignore value"
    return f"0..{classes.num_classes - 1}{ignore}"


def fitting_bundled_models(label: np.ndarray, exclude: str | None = None) -> list[str]:
    """Names of the bundled models whose classes ``label`` fits (``exclude`` left out)."""
    from qgn.resources import bundled_models

    return [m.name for m in bundled_models() if m.name != exclude and not foreign_values(label, m.classes).size]


def mismatch_message(values: np.ndarray, classes: ClassSet, source: str, model_name: str | None = None,
                     fitting: list[str] | None = None) -> str:
    """One sentence: which file, which values, what the model has, and what would fit."""
    shown = ", ".join(str(v) for v in values[:8]) + (", …" if len(values) > 8 else "")
    model = f"model {model_name!r}" if model_name else "the model"
    text = (f"{source}: ground-truth values [{shown}] are not classes of {model} "
            f"({classes.num_classes} classes: {class_range(classes)})")
    if fitting:
        text += f"; the bundled model {fitting[0]!r} fits it (--model {fitting[0]})"
    return text


def check_ground_truth(label: np.ndarray, classes: ClassSet, source: str, model_name: str | None = None) -> None:
    """Raise ``GroundTruthMismatch`` (naming the file, the values and a fitting bundled model)
    when ``label`` does not fit ``classes``."""
    values = foreign_values(label, classes)
    if values.size:
        fitting = fitting_bundled_models(label, exclude=model_name)
        raise GroundTruthMismatch(mismatch_message(values, classes, source, model_name, fitting), values, source)
