"""One image's annotation as the app edits it: the label map, its live quadtree, its undo log.

``AnnotationSession`` (an image's ``doc.annotation``) wraps a ``qgn.annotation.Annotation`` (its
``annotation``: the label map is the truth; read ``label`` and ``classes`` on the session itself)
with what the app needs around it:

``reference``  (H, W) label the annotation is compared with in the "changed vs prediction" view:
               the prediction on screen when the annotation started (or the first one after).
``pyramid``    a ``LivePyramid``: the T-pyramid codes and quadtree leaves of the label map, kept
               current under edits one 32-px root block at a time, so painting never rebuilds the
               quadtree of the whole image (the canvas draws the annotation's cells from it).
``undo``       a QUndoStack of ``LabelEdit`` commands (``qgn_studio.tools.commands``): memory is
               the changed pixels, never whole maps; the open images' logs together are kept
               within ``UNDO_BUDGET_BYTES`` by ``drop_oldest`` (the annotator decides which).
``display_pending``  the map is always current; the pyramid and the layers catch up with a large
               edit one band of about a million pixels per turn of the event loop (newest edit
               first), so no apply, undo or redo holds the UI thread for the whole image.
``version``    bumped by every apply/revert; ``saved_version`` / ``autosaved_version`` tell what
               is on disk.
``state()``    which map this is, as the undo log sees it: (epoch, serial of the last command
               applied; at the bottom of the log, of the last step dropped from it). Undoing back
               to the saved step is the saved map again, so ``dirty`` is False there; a change
               outside the log (a replaced map, a recovered autosave) starts a new epoch.

Every method runs on the UI thread and costs O(changed pixels + one band of root blocks).
"""
from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shiboken6
from PySide6 import QtCore, QtGui

from qgn.annotation import LabelEdit
from qgn.annotation.changes import ChangeTally
from qgn.quadtree.tpyramid import COMPOSITE, NUM_LEVELS, build_tpyramid

ROOT = 1 << (NUM_LEVELS - 1)
_SESSION_IDS = itertools.count(1)


@dataclass(frozen=True)
class PixelRect:
    """A half-open pixel rectangle: rows [y0, y1), columns [x0, x1)."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def empty(self) -> bool:
        return self.y1 <= self.y0 or self.x1 <= self.x0

    def union(self, other: "PixelRect | None") -> "PixelRect":
        if other is None or other.empty:
            return self
        if self.empty:
            return other
        return PixelRect(min(self.y0, other.y0), max(self.y1, other.y1), min(self.x0, other.x0), max(self.x1, other.x1))

    EXACT_LIMIT = 1 << 18  # above, sorted indices give the rows and the columns span the width

    @classmethod
    def of_indices(cls, index: np.ndarray, width: int) -> "PixelRect":
        """A box around sorted flat pixel indices (M,) of a map ``width`` pixels wide: the exact
        bounding box for up to ``EXACT_LIMIT`` indices; beyond, the exact rows at full width."""
        if len(index) == 0:
            return cls(0, 0, 0, 0)
        y0, y1 = int(index[0]) // width, int(index[-1]) // width + 1
        if len(index) > cls.EXACT_LIMIT:
            return cls(y0, y1, 0, width)
        xs = np.asarray(index, np.int64) % width
        return cls(y0, y1, int(xs.min()), int(xs.max()) + 1)

    @classmethod
    def of_edit(cls, edit, width: int) -> "PixelRect":
        """A box around the pixels of a ``LabelEdit`` (``of_indices``; an edit held as rows: those
        rows at full width)."""
        if edit.rows is None:
            return cls.of_indices(edit.index, width)
        span = edit.row_span(width)
        return cls(0, 0, 0, 0) if span is None else cls(span[0], span[1], 0, width)

    @classmethod
    def full(cls, shape: tuple[int, int]) -> "PixelRect":
        return cls(0, shape[0], 0, shape[1])

    def bands(self, pixels: int) -> list["PixelRect"]:
        """The rect cut into horizontal bands of whole root-block rows (32 px) of about ``pixels``
        pixels each (at least one block row), top to bottom."""
        if self.empty:
            return []
        rows = max(ROOT, pixels // (self.x1 - self.x0) // ROOT * ROOT)
        cuts = list(range((self.y0 // ROOT + 1) * ROOT, self.y1, ROOT))[rows // ROOT - 1::rows // ROOT]
        edges = [self.y0, *cuts, self.y1]
        return [PixelRect(a, b, self.x0, self.x1) for a, b in zip(edges[:-1], edges[1:])]


def edge_padded(label: np.ndarray) -> np.ndarray:
    """``label`` (H, W) padded to multiples of the root cell by repeating its last row and column
    (``label`` itself when it needs no padding)."""
    h, w = label.shape
    if h % ROOT == 0 and w % ROOT == 0:
        return label
    return np.pad(label, ((0, -h % ROOT), (0, -w % ROOT)), mode="edge")


class LivePyramid:
    """The T-pyramid of a label map, updated block by block.

    codes:  ``codes[l]`` (H' >> l, W' >> l) code arrays exactly as ``build_tpyramid(padded, k,
            ignore, 6).levels``, ``padded`` being the label padded to multiples of 32 (H', W') by
            repeating its last row and column: the padding inside a cell that overlaps the image
            copies that cell's own pixels, so such a cell is uniform exactly when its part inside
            the image is (``qgn.quadtree.quadtree.image_leaves``), and a cell straddling the
            right/bottom edge draws as one cell clipped at the border, never as a strip of tiny cells.
            (Files keep the canonical VOID padding: ``Annotation.quadtree()``.)
    leaves: ``leaves[l]`` (H' >> l, W' >> l) bool: the cell is a leaf of the quadtree (uniform,
            and the root level or its parent composite); cells wholly in the padding mean nothing.
    ``update(rect)`` recomputes the root blocks that cover ``rect`` with ``build_tpyramid`` on
    that block alone (a root block's codes depend on its own pixels only).
    """

    #: Pixels of the bands the whole map is built in: each band's numpy calls hold the interpreter
    #: lock for a few ms at most (built whole, a 24-megapixel map's held it 20-55 ms at a time, so
    #: the UI thread stalled while the job thread built it when A was pressed)
    BUILD_PIXELS = 1 << 20

    def __init__(self, label: np.ndarray, num_classes: int, ignore_value: int | None):
        self.label = label
        self.num_classes = num_classes
        self.ignore_value = ignore_value
        h, w = label.shape
        blocks_y, blocks_x = -(-h // ROOT), -(-w // ROOT)
        band = max(1, self.BUILD_PIXELS // (blocks_x * ROOT * ROOT))  # root-block rows a band
        first = build_tpyramid(edge_padded(label[:band * ROOT]), num_classes, ignore_value, NUM_LEVELS)
        self.codes = [np.empty((blocks_y * (ROOT >> lv), blocks_x * (ROOT >> lv)), codes.dtype)
                      for lv, codes in enumerate(first.levels)]
        self.leaves = [np.zeros(c.shape, bool) for c in self.codes]
        for lv, codes in enumerate(first.levels):
            self.codes[lv][:codes.shape[0]] = codes
        self._update_leaves(0, min(band, blocks_y), 0, blocks_x)
        for by in range(band, blocks_y, band):
            self.update(PixelRect(by * ROOT, min(h, (by + band) * ROOT), 0, w))

    def update(self, rect: PixelRect) -> PixelRect:
        """Recompute the root blocks covering ``rect``; returns the (padded) pixel rect redone."""
        if rect.empty:
            return rect
        h, w = self.label.shape
        by0, bx0 = rect.y0 // ROOT, rect.x0 // ROOT
        by1, bx1 = -(-rect.y1 // ROOT), -(-rect.x1 // ROOT)
        block = self.label[by0 * ROOT:min(by1 * ROOT, h), bx0 * ROOT:min(bx1 * ROOT, w)]
        tp = build_tpyramid(edge_padded(block), self.num_classes, self.ignore_value, NUM_LEVELS)
        for lv, codes in enumerate(tp.levels):
            s = ROOT >> lv
            self.codes[lv][by0 * s:by0 * s + codes.shape[0], bx0 * s:bx0 * s + codes.shape[1]] = codes
        self._update_leaves(by0, by1, bx0, bx1)
        return PixelRect(by0 * ROOT, by1 * ROOT, bx0 * ROOT, bx1 * ROOT)

    def _update_leaves(self, by0: int, by1: int, bx0: int, bx1: int) -> None:
        """Leaf masks of root blocks rows [by0, by1), columns [bx0, bx1)."""
        parent_composite = None  # a composite cell's parent is composite too
        for lv in range(NUM_LEVELS - 1, -1, -1):
            s = ROOT >> lv
            composite = self.codes[lv][by0 * s:by1 * s, bx0 * s:bx1 * s] == COMPOSITE
            leaf = ~composite
            if parent_composite is not None:
                leaf &= np.repeat(np.repeat(parent_composite, 2, axis=0), 2, axis=1)
            self.leaves[lv][by0 * s:by1 * s, bx0 * s:bx1 * s] = leaf
            parent_composite = composite

    def leaf_count(self) -> int:
        return int(sum(int(m.sum()) for m in self.leaves))


class AnnotationSession(QtCore.QObject):
    """See the module docstring. ``changed(PixelRect)`` after every apply/revert (UI thread)."""

    changed = QtCore.Signal(object)  # PixelRect of the pixels that changed
    reset = QtCore.Signal()  # the whole map was replaced (load, restore)

    def __init__(self, path: Path, annotation, reference: np.ndarray | None = None, origin: str = "prediction",
                 pyramid: LivePyramid | None = None, parent=None, own_reference: bool = False,
                 changes: ChangeTally | None = None):
        super().__init__(parent)
        self.path = Path(path)
        self.annotation = annotation
        self.origin = origin  # where it started: prediction, truth, import, empty, saved, recovered
        self.reference: np.ndarray | None = None
        # a new reference (another model's prediction) is on its way: "changed vs prediction" shows
        # nothing meanwhile (the annotator sets and clears it)
        self.reference_stale = False
        self.set_reference(reference, own=own_reference)
        classes = annotation.classes
        if pyramid is None or pyramid.label is not annotation.label:
            pyramid = LivePyramid(annotation.label, classes.num_classes, classes.ignore_index)
        self.pyramid = pyramid  # (built on a worker thread when given)
        self._stale: list[PixelRect] = []  # bands of the map the pyramid and the layers do not show yet
        self._band_timer = QtCore.QTimer(self)
        self._band_timer.setSingleShot(True)
        self._band_timer.setInterval(0)
        self._band_timer.timeout.connect(self._show_band)
        self.undo = QtGui.QUndoStack(self)
        self.version = 0
        # "changed vs prediction", kept up to date by the rows edits touch; ``changes``: one that counted
        # this label and reference at version 0 on the job thread (the first count of a 24 MP map held
        # the UI thread ~50 ms when A was pressed)
        self.changes = changes if changes is not None else ChangeTally()
        self.saved_version = 0
        self.autosaved_version = 0
        self._epoch = 0
        self._floor = 0  # serial of the newest step dropped from the bottom of the log (0: none)
        self._dropped = 0  # how many steps ``drop_oldest`` took from the bottom of the log, all together
        self._states = {0: self.state()}  # version → state(), recorded after every undo-log step
        # version → (epoch, serial, depth: the steps applied below it, dropped ones counted), for ``lacks``:
        # every version, a stroke's mid-stroke ones (``_pending``) given its step's once it is pushed
        self._marks = {0: self._mark()}
        self._pending: list[int] = []  # versions applied since the last undo-log step (a stroke under way)
        self._newest_serial = 0  # the newest step this log has had (serials only grow: a push is newer)
        self.uid = next(_SESSION_IDS)  # which session wrote an autosave (versions restart in a new one)
        self._sent: deque[int] = deque(maxlen=8)  # the versions the latest autosaves were submitted of
        self.saved_state = self.state()
        self.undo.indexChanged.connect(lambda _index: self._record_state())
        # the annotator's bookkeeping of the open maps' memory (``Annotator._keep_undo_in_budget``,
        # ``_keep_maps_in_budget``): when it was last edited and last shown (its counters), and its
        # undo log's bytes as last counted
        self.last_edit = 0
        self.last_seen = 0
        self.undo_bytes_of: tuple | None = None

    # ------------------------------------------------------------------ state
    @property
    def label(self) -> np.ndarray:
        """(H, W) uint8/uint16: the annotation's label map (edited in place)."""
        return self.annotation.label

    @property
    def classes(self):
        """The class set of the label map (``qgn.label_map.ClassSet``)."""
        return self.annotation.classes

    @classes.setter
    def classes(self, classes) -> None:
        """Rename, recolour or add a class: the map's values stay. The live pyramid's codes count
        the classes (ignore is one past the last), so a new class count rebuilds it."""
        self.annotation.classes = classes
        pyramid = self.pyramid
        if (pyramid.num_classes, pyramid.ignore_value) != (classes.num_classes, classes.ignore_index):
            self._band_timer.stop()
            self._stale.clear()  # the new pyramid and the full re-render (reset) show all of it
            self.pyramid = LivePyramid(self.label, classes.num_classes, classes.ignore_index)
            self.reset.emit()

    @property
    def shape(self) -> tuple[int, int]:
        return self.label.shape

    @property
    def dirty(self) -> bool:
        """Edits not yet saved into the project's annotation file (undoing back to the saved
        step is not an edit)."""
        return self.state() != self.saved_state

    def state(self) -> tuple[int, int]:
        """(epoch, serial of the last applied undo command; at the bottom of the log, that of the
        last step dropped from it, 0 when none was)."""
        index = self.undo.index()
        command = self.undo.command(index - 1) if index > 0 else None
        return self._epoch, int(getattr(command, "serial", id(command))) if command is not None else self._floor

    def drop_oldest(self, count: int) -> int:
        """Forget the ``count`` oldest steps of the undo log (at most those applied now): they can
        no longer be undone, and their memory goes. The map, the other steps (redo included) and
        ``state()`` stay as they were, so the bottom of the log is no longer taken for the saved
        map it was. Returns how many steps went."""
        stack = self.undo
        index, total = stack.index(), stack.count()
        count = min(count, index)
        commands = [stack.command(i) for i in range(total)]
        if count <= 0 or not all(hasattr(c, "clone") for c in commands):
            return 0
        kept = [c.clone(undone=i >= index) for i, c in enumerate(commands) if i >= count]
        base = self.started_from_below(count)  # the bottom of the log kept starts from there
        floor = commands[count - 1].serial
        stack.blockSignals(True)  # no one sees the log half rebuilt (it would look like another map)
        try:
            stack.clear()  # a QUndoStack drops its oldest steps only by count, and only at a push
            self._floor, self._base = floor, base
            self._dropped += count
            for command in kept:
                stack.push(command)  # already in the map: its first redo does nothing
            stack.setIndex(index - count)  # the steps that can be redone: their undo does nothing
        finally:
            stack.blockSignals(False)
        stack.canUndoChanged.emit(stack.canUndo())
        stack.indexChanged.emit(stack.index())  # the history view and the annotator look again
        return count

    @property
    def origin(self) -> str:
        """Where the session started: prediction, truth, import, empty, saved, recovered (set again
        when the whole map is replaced, ``replace_label``)."""
        return self._origin

    @origin.setter
    def origin(self, origin: str) -> None:
        self._origin = self._base = origin  # ``_base``: where the bottom of the undo log starts (``drop_oldest``)

    @property
    def started_from(self) -> str:
        """Where the map on screen started (a ``START_SOURCES`` key, "saved" or "recovered"): the
        latest "Start over from …" step applied, else where the session started (``origin``)."""
        return self.started_from_below(self.undo.index() if shiboken6.isValid(self.undo) else 0)

    def started_from_below(self, index: int) -> str:
        """Where the map started that the undo log's first ``index`` steps leave."""
        for i in range(index - 1, -1, -1):
            origin = getattr(self.undo.command(i), "origin", None)
            if origin:
                return origin
        return self._base

    def _mark(self) -> tuple[int, int, int]:
        """(epoch, serial of the last applied step - ``state()`` -, depth: steps applied, dropped ones counted)."""
        epoch, serial = self.state()
        return epoch, serial, self.undo.index() + self._dropped

    def _record_state(self) -> None:
        if not shiboken6.isValid(self.undo):
            return  # the window is closing: its undo stacks are being destroyed
        self._states[self.version] = self.state()
        mark = self._mark()
        if self._pending:
            before = self._marks.get(self._pending[0] - 1)  # the map the versions applied since started from
            if mark == before:
                return  # the log did not move (``drop_oldest``'s rebuild): a stroke under way stays so
            # the versions a stroke applied as the mouse moved are its step's map in part: the step pushed
            # right on top of the map they started from (a new serial, one step deeper) holds them; any
            # other change of the log (an undo or redo mid-stroke) cannot tell - None: taken as lacked
            fresh = (before is not None and mark[0] == before[0] and mark[2] == before[2] + 1
                     and mark[1] > self._newest_serial)
            for version in self._pending:
                self._marks[version] = mark if fresh else None
            self._pending.clear()
        self._marks[self.version] = mark
        self._newest_serial = max(self._newest_serial, mark[1])
        keep = {self.autosaved_version, self.saved_version, *self._sent, *self._pending}
        for table in (self._states, self._marks):
            if len(table) > 256:  # only recent versions can still be in flight to the disk
                for version in sorted(table)[:-128]:
                    if version not in keep:
                        del table[version]

    @property
    def is_annotation(self) -> bool:
        """Whether the map is a person's annotation: edited, saved, or started from a file or the
        ground truth. A map only started from the prediction, the project head (or empty) and never touched, as
        browsing in annotation mode leaves behind, is not."""
        return self.version > 0 or self.saved_version > 0 or self.origin not in ("prediction", "empty", "head")

    @property
    def needs_autosave(self) -> bool:
        return self.dirty and self.version != self.autosaved_version

    def set_reference(self, reference: np.ndarray | None, own: bool = False) -> None:
        """The map "changed vs prediction" compares with ((H, W) ints, stored as the label dtype).
        ``own``: ``reference`` is a private copy made for this session (``reference_for``, on the job
        thread) and is kept as it is when of the label dtype: a copy of a 24-megapixel map here held
        the UI thread 60-75 ms when A was pressed (its pages faulted in anew)."""
        if reference is None:
            self.reference = None
            return
        reference = np.asarray(reference)
        if reference.shape != self.label.shape:
            raise ValueError(f"reference {reference.shape} and annotation {self.label.shape} differ in size")
        if own and reference.dtype == self.label.dtype and reference is not self.label:
            self.reference = reference
        else:
            self.reference = reference.astype(self.label.dtype)

    @staticmethod
    def reference_for(reference: np.ndarray | None, label: np.ndarray) -> np.ndarray | None:
        """(Job thread) a private copy of ``reference`` in ``label``'s dtype, for ``set_reference(..., own=True)``."""
        return None if reference is None else np.array(reference, dtype=label.dtype)

    def changed_mask(self, rect: PixelRect) -> np.ndarray:
        """(h, w) bool over ``rect``: pixels that differ from the reference (all False without one)."""
        window = self.label[rect.y0:rect.y1, rect.x0:rect.x1]
        if self.reference is None or self.reference_stale:
            return np.zeros(window.shape, bool)
        return window != self.reference[rect.y0:rect.y1, rect.x0:rect.x1]

    # ------------------------------------------------------------------ edits (the undo commands call these)
    def apply(self, edit) -> PixelRect:
        """Apply a ``LabelEdit`` in place; returns the pixel rect it touched."""
        self.annotation.apply(edit)
        return self._touched(edit)

    def revert(self, edit) -> PixelRect:
        self.annotation.revert(edit)
        return self._touched(edit)

    def _touched(self, edit) -> PixelRect:
        self.version += 1
        self._pending.append(self.version)  # given its mark by the undo-log step that follows (``_record_state``)
        rect = PixelRect.of_edit(edit, self.label.shape[1])
        self.changes.touched(rect.y0, rect.y1, self.version)
        bands = rect.bands(self.BAND_PIXELS)
        self._stale[:0] = bands  # the latest edit shows first
        if len(bands) == 1:
            self._show_band()  # a small edit shows at once
        elif bands:
            self._band_timer.start()  # a large one from the next turn on: this turn applied it
        return rect

    BAND_PIXELS = 1 << 20  # the display work of one turn of the event loop: about 10 ms on one core

    @property
    def display_pending(self) -> bool:
        """Whether the live pyramid and the layers still lag the map somewhere (a large edit
        catches up one band per turn of the event loop; the map itself is always current)."""
        return bool(self._stale)

    def _show_band(self) -> None:
        """Bring one band of the live pyramid and the layers (``changed``) up to the map; the next
        band on the next turn of the event loop. Each band is redrawn from the map as it is then,
        so the order of the bands does not matter and no edit is ever shown out of date for long."""
        if self._stale:
            band = self._stale.pop(0)
            self.pyramid.update(band)
            self.changed.emit(band)
        if self._stale:
            self._band_timer.start()

    def flush_display(self) -> None:
        """Bring the whole display up to the map now."""
        self._band_timer.stop()
        while self._stale:
            self._show_band()
        self._band_timer.stop()

    def replace_label(self, label: np.ndarray, prepared=None) -> None:
        """Replace the whole map (load from disk, crash restore); clears the undo log. ``prepared``:
        (an ``Annotation`` of ``label``'s values in this map's classes, its ``LivePyramid``), made on
        the job thread that read it (``Annotator.preparer``): then taken as they are - the diff, its
        apply and the pyramid made here held the UI thread 60-330 ms for a 24-megapixel map."""
        if label.shape != self.label.shape:
            raise ValueError(f"label {label.shape} and annotation {self.label.shape} differ in size")
        annotation, pyramid = prepared if prepared is not None else (None, None)
        if annotation is not None and not (annotation.classes == self.classes and annotation.shape == self.shape
                                           and pyramid is not None and pyramid.label is annotation.label):
            annotation = None
        self.undo.clear()
        self._stale.clear()  # the new pyramid and the full re-render (reset) show all of it
        if annotation is not None:
            old = self.annotation
            # as an apply of the diff leaves it: the starting map, the class set and the count of changes kept
            annotation.classes, annotation.reference, annotation.revision = old.classes, old.reference, old.revision + 1
            self.annotation, self.pyramid = annotation, pyramid
        else:
            self.annotation.apply(edit_between(self.label, label))  # validated; drops the derived caches
            classes = self.classes
            self.pyramid = LivePyramid(self.label, classes.num_classes, classes.ignore_index)
        self.version += 1
        self._epoch += 1
        self._record_state()
        self.reset.emit()

    def mark_unsaved(self) -> None:
        """The map differs from the project's annotation file (e.g. a recovered autosave)."""
        self.version += 1
        self._epoch += 1
        self._record_state()

    def mark_saved(self, version: int) -> None:
        """The map of ``version`` is in the project's annotation file."""
        self.saved_version = version
        self.autosaved_version = max(self.autosaved_version, version)
        if version == self.version:
            self.saved_state = self.state()
        else:  # edited meanwhile: the step that was written, if the log still knows it
            self.saved_state = self._states.get(version, (-1, -1))

    def mark_autosaved(self, version: int) -> None:
        self.autosaved_version = version

    def holds(self, mark) -> bool:
        """Whether the map now is the one of ``mark`` (a ``_mark()``) or it with edits applied on top:
        the undo log's applied steps pass through it - its step at its depth still applied. False when
        undo took it back (redo has it), a new edit dropped it from redo, the map was replaced since,
        or it cannot be told (None, its step dropped from the log). O(1): one look at the log."""
        if mark is None or mark[0] != self._epoch:
            return False
        _epoch, serial, depth = mark
        at = depth - self._dropped  # its step's place in the log now
        if at <= 0:
            return at == 0 and serial == self._floor
        stack = self.undo
        if at > stack.index():
            return False
        command = stack.command(at - 1)
        return int(getattr(command, "serial", id(command))) == serial

    def lacks(self, version: int) -> bool:
        """Whether the map of edit ``version`` has edits the map now lacks (``holds`` it not): undone
        since, redo holding them in memory only, or dropped from redo by a new edit. Not a version of the
        stroke still under way (its step holds it once pushed); True when it cannot be told."""
        if version == self.version or (self._pending and version >= self._pending[0]):  # (one run of versions)
            return False
        return not self.holds(self._marks.get(version))

    def autosave_undone(self) -> bool:
        """Whether the map autosaved last has edits the map now lacks (``lacks``; ``Project.autosave(undone=)``
        keeps that autosave first)."""
        version = self.autosaved_version
        return version > 0 and self.lacks(version)

    def judge_autosaves(self) -> "AutosaveJudge":
        """Which of the maps this session's autosaves may have left on disk (the last one done, those
        submitted lately: one still on its way when the user undoes) hold edits the map now lacks -
        judged here (the undo log is the UI thread's), looked up on the job thread by the map each
        target really holds (``AutosaveJudge.undone``)."""
        versions = {self.autosaved_version, *self._sent, self.version}  # (the map now: lacks nothing)
        return AutosaveJudge(self.uid, {v: self.lacks(v) for v in versions if v > 0})

    def autosave_sent(self, version: int) -> None:
        """An autosave of the map of ``version`` was submitted (``judge_autosaves`` weighs it from now on)."""
        self._sent.append(version)


@dataclass(frozen=True)
class AutosaveJudge:
    """``AnnotationSession.judge_autosaves``: for the autosave written last into a target (``written``:
    (session uid, its version), recorded on the job thread by the writes in their order) whether the map
    about to go there lacks its edits."""

    uid: int
    lacks: dict

    def undone(self, written) -> bool:
        """``written`` None (nothing this window wrote there now: none, or one it restored - the bottom of
        its undo log) or another session's: False. A version not weighed: True (kept: nothing lost)."""
        if written is None or written[0] != self.uid:
            return False
        return self.lacks.get(written[1], True)


def edit_between(current: np.ndarray, target: np.ndarray):
    """The ``LabelEdit`` that turns ``current`` into ``target`` (both (H, W), same dtype): the
    pixels that differ only, so replacing a whole map is still one cheap undo step."""
    if current.shape != target.shape:
        raise ValueError(f"cannot replace a {current.shape} annotation with a {target.shape} map")
    target = target.astype(current.dtype, copy=False)
    differ = current != target
    count = int(np.count_nonzero(differ))
    if 8 * count > differ.size:  # most of the map: its mask is smaller than the pixels' indices
        return LabelEdit.of_rows(0, differ, current[differ], target[differ], count)
    index = np.flatnonzero(differ).astype(np.int64, copy=False)
    return LabelEdit(index, current.reshape(-1)[index], target.reshape(-1)[index])
