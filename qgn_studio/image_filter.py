"""Which images the image list shows: the filter box's choice and a name, per document.

Keys: ``all``, ``not_done``, ``done``, ``unsaved`` (edits not saved), ``annotated`` (an open
annotation that is a person's work, or a saved one), ``uncertain`` (the most uncertain quarter of
the images ordered by uncertainty) and ``class:<id>`` (the annotation has a pixel of that class:
the open map when there is one, else the saved file as counted by ``qgn.project_stats``).
"""
from __future__ import annotations

import numpy as np


def shown(docs: list, key: str, text: str = "", stats=None, scores: dict | None = None) -> list[bool]:
    """One bool per document of ``docs``: whether the list shows it."""
    text = text.strip().lower()
    if key == "all" and not text:
        return [True] * len(docs)  # the usual case, and a list of 20,000 at once
    scores = scores or {}
    cut = None
    if key == "uncertain" and scores:
        values = sorted(scores.values(), reverse=True)
        cut = values[max(0, (len(values) + 3) // 4 - 1)]
    out = []
    for doc in docs:
        ok = not text or text in doc.name.lower()
        if ok:
            ok = _matches(doc, key, stats, scores, cut)
        out.append(ok)
    return out


def _matches(doc, key: str, stats, scores: dict, cut) -> bool:
    session = getattr(doc, "annotation", None)
    if key == "all":
        return True
    if key == "done":
        return bool(doc.done)
    if key == "not_done":
        return not doc.done
    if key == "unsaved":
        return session is not None and session.dirty
    if key == "annotated":
        if session is not None and session.is_annotation:
            return True
        return stats is not None and doc.path in stats.counts
    if key == "uncertain":
        return cut is not None and doc.path in scores and scores[doc.path] >= cut
    if key.startswith("class:"):
        class_id = int(key.split(":", 1)[1])
        if session is not None and session.is_annotation:
            return bool(np.any(session.label == class_id))
        return bool(stats is not None and stats.has_class(doc.path, class_id))
    raise ValueError(f"unknown image filter {key!r}")
