"""Does a ground-truth label map fit a model's classes? And which bundled model does it fit?

A ground truth *fits* a class set when every value is a class id ``0..k-1`` or the set's ignore
value, and - where the ground truth comes with its own class list (a ``classes.txt``) - every class
id it holds has the same name there as in the set. One that does not fit never blocks a prediction
(nothing in a prediction needs it except the GTC scheme); it only leaves the accuracy figures
empty, with a reason a person can act on.
"""
from __future__ import annotations

import numpy as np

from qgn.classes import ClassSet, name_key


class GroundTruthMismatch(ValueError):
    """A ground truth whose values are not classes of the model.

    values: (n,) int64 sorted offending values; source: the file (or name) it came from.
    """

    def __init__(self, message: str, values: np.ndarray, source: str):
        super().__init__(message)
        self.values, self.source = values, source


def foreign_values(label: np.ndarray, classes: ClassSet) -> np.ndarray:
    """(n,) int64 sorted values of ``label`` (H, W), or of its unique values, that are neither a
    class id nor the ignore value."""
    values = np.unique(np.asarray(label))
    valid = (values >= 0) & (values < classes.num_classes)
    if classes.ignore_index is not None:
        valid |= values == classes.ignore_index
    return values[~valid].astype(np.int64)


def class_range(classes: ClassSet) -> str:
    """'0..10, ignore 11' — what a label map for ``classes`` may hold."""
    ignore = f", ignore {classes.ignore_index}" if classes.ignore_index is not None else ", no ignore value"
    return f"0..{classes.num_classes - 1}{ignore}"


def fitting_bundled_models(label: np.ndarray, exclude: str | None = None,
                           truth_classes: ClassSet | None = None) -> list[str]:
    """Names of the bundled models whose classes ``label`` fits (``exclude`` left out): by value,
    and by ``truth_classes``' names (the ground truth's own class list) when given."""
    from qgn.resources import bundled_models

    values = np.unique(np.asarray(label))  # once: the checks below read the values, not the pixels
    return [m.name for m in bundled_models() if m.name != exclude and not foreign_values(values, m.classes).size
            and (truth_classes is None or not misnamed_classes(values, truth_classes, m.classes))]


def _model_phrase(model_name: str | None) -> str:
    return f"model {model_name!r}" if model_name else "the model"


def _fitting_clause(fitting: list[str] | None) -> str:
    """'; the bundled model 'X' fits it (--model X)', the clause the app turns into a link."""
    return f"; the bundled model {fitting[0]!r} fits it (--model {fitting[0]})" if fitting else ""


def mismatch_message(values: np.ndarray, classes: ClassSet, source: str, model_name: str | None = None,
                     fitting: list[str] | None = None) -> str:
    """One sentence: which file, which values, what the model has, and what would fit."""
    shown = ", ".join(str(v) for v in values[:8]) + (", …" if len(values) > 8 else "")
    return (f"{source}: ground-truth values [{shown}] are not classes of {_model_phrase(model_name)} "
            f"({classes.num_classes} classes: {class_range(classes)})" + _fitting_clause(fitting))


def check_ground_truth(label: np.ndarray, classes: ClassSet, source: str, model_name: str | None = None) -> None:
    """Raise ``GroundTruthMismatch`` (naming the file, the values and a fitting bundled model)
    when ``label`` does not fit ``classes``."""
    values = foreign_values(label, classes)
    if values.size:
        fitting = fitting_bundled_models(label, exclude=model_name)
        raise GroundTruthMismatch(mismatch_message(values, classes, source, model_name, fitting), values, source)


def misnamed_classes(label: np.ndarray, truth_classes: ClassSet, classes: ClassSet) -> list[tuple[int, str, str]]:
    """(id, name in ``truth_classes``, name in ``classes``) for every class id in ``label`` (H, W)
    that the ground truth's own class list names differently (``qgn.classes.name_key``: trimmed,
    case ignored); ids
    either list lacks, and the ignore value, are left to ``foreign_values``."""
    out = []
    for value in np.unique(np.asarray(label)).tolist():
        if value == classes.ignore_index or not (0 <= value < min(classes.num_classes, truth_classes.num_classes)):
            continue
        if name_key(truth_classes.names[value]) != name_key(classes.names[value]):
            out.append((int(value), truth_classes.names[value], classes.names[value]))
    return out


def misnamed_message(misnamed: list[tuple[int, str, str]], source: str, classes_source: str,
                     model_name: str | None = None, fitting: list[str] | None = None) -> str:
    """One sentence: which file, which ids are named what where, and what would fit."""
    shown = ", ".join(f"{i} {a!r} (model: {b!r})" for i, a, b in misnamed[:4]) + (", …" if len(misnamed) > 4 else "")
    return (f"{source}: its class list {classes_source} names its classes unlike {_model_phrase(model_name)}: "
            f"{shown}" + _fitting_clause(fitting))
