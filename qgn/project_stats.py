"""What a labelling job has produced so far: per image, how many pixels each class has.

``count_classes`` counts the label maps given (the open ones as they are) and the saved ones it
loads; ``ProjectStatistics`` holds the counts and answers the questions a project's statistics
window and the image list's "has class X" filter ask.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from .classes import ClassSet


@dataclass
class ProjectStatistics:
    """classes: the ClassSet counted in.
    images:  every listed image path, in order, with its done flag ((path, done) pairs).
    counts:  path → (k + 1,) int64 pixel counts per class id, the last entry ignore (and any value
             that is no class); only annotated images have an entry.
    problems: path → why its saved annotation could not be read."""

    classes: ClassSet
    images: list[tuple[Path, bool]]
    counts: dict[Path, np.ndarray] = field(default_factory=dict)
    problems: dict[Path, str] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return sum(1 for _path, done in self.images if done)

    @property
    def annotated(self) -> int:
        return len(self.counts)

    def pixels_per_class(self) -> np.ndarray:
        """(k + 1,) int64: pixels of each class over all annotated images (last: ignore)."""
        total = np.zeros(self.classes.num_classes + 1, np.int64)
        for counts in self.counts.values():
            total += counts
        return total

    def images_per_class(self) -> np.ndarray:
        """(k,) int64: annotated images in which each class has at least one pixel."""
        k = self.classes.num_classes
        return np.array([sum(1 for c in self.counts.values() if c[i] > 0) for i in range(k)], np.int64)

    def has_class(self, path: Path, class_id: int) -> bool | None:
        """Whether the annotation of ``path`` has a pixel of ``class_id``; None: not annotated."""
        counts = self.counts.get(Path(path))
        return None if counts is None else bool(counts[class_id] > 0)


def class_counts(label: np.ndarray, classes: ClassSet) -> np.ndarray:
    """(k + 1,) int64 pixel counts of ``label`` (H, W) per class id; the last entry counts every
    other value (ignore)."""
    k = classes.num_classes
    flat = np.asarray(label).reshape(-1).astype(np.int64, copy=False)
    valid = (flat >= 0) & (flat < k)
    counts = np.bincount(flat[valid], minlength=k)[:k].astype(np.int64)
    return np.concatenate([counts, [int(flat.size - valid.sum())]])


def count_classes(classes: ClassSet, images: Iterable[tuple[Path, bool]], maps: dict,
                  saved: Iterable[tuple[Path, Callable[[], np.ndarray | None]]],
                  progress: Callable[[int, int], None] | None = None) -> ProjectStatistics:
    """Statistics of ``maps`` (path → (H, W) label of ``classes``) and of the ``saved`` maps,
    each read by its loader (None: no annotation); a loader that fails is a ``problem``.
    ``progress(done, total)``: after each saved map read (the reading is what takes time), from
    ``(0, total)`` to ``(total, total)``."""
    stats = ProjectStatistics(classes, [(Path(p), bool(d)) for p, d in images])
    for path, label in maps.items():
        stats.counts[Path(path)] = class_counts(label, classes)
    saved = list(saved)
    for i, (path, load) in enumerate(saved):
        if progress is not None:
            progress(i, len(saved))
        try:
            label = load()
        except Exception as exc:  # one unreadable file is reported, the others counted
            stats.problems[Path(path)] = str(exc)
            continue
        if label is not None:
            stats.counts[Path(path)] = class_counts(label, classes)
    if progress is not None:
        progress(len(saved), len(saved))
    return stats
