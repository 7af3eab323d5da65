"""Undo commands over ``LabelEdit``s: an undo step stores the changed pixels, never a whole map."""
from __future__ import annotations

import itertools

import numpy as np
from PySide6 import QtGui

_SERIALS = itertools.count(1)
# The undo history the open images keep, all together (bytes of their edits): past it, the oldest
# steps go first (those of the images edited longest ago, then this image's, whose newest step
# always stays). About 28 whole-image steps of a 4000×3000 map, hundreds of thousands of strokes.
UNDO_BUDGET_BYTES = 1 << 30


class EditCommand(QtGui.QUndoCommand):
    """One undo step: a ``qgn.annotation.edit.LabelEdit`` of an ``AnnotationSession``.

    ``applied=True``: the edit is already in the map (a paint stroke applies itself while the
    mouse moves), so the first ``redo()`` — the one ``QUndoStack.push`` makes — does nothing.
    """

    def __init__(self, session, edit, text: str, applied: bool = False, origin: str | None = None):
        super().__init__(text)
        self.session = session
        self.edit = edit
        self.origin = origin  # a "Start over from …" step: where the map starts again (a START_SOURCES key)
        self.serial = next(_SERIALS)  # which map the log is at after this step (AnnotationSession.state)
        self._skip_first_redo = applied
        self._skip_next_undo = False

    def clone(self, undone: bool = False) -> "EditCommand":
        """The same step as a new command, to push onto a rebuilt log (``AnnotationSession.drop_oldest``):
        its first ``redo()`` does nothing (the map has it), nor, when ``undone`` (a step that can
        be redone), its next ``undo()`` (the map is before it)."""
        twin = EditCommand(self.session, self.edit, self.text(), applied=True, origin=self.origin)
        twin.serial = self.serial
        twin._skip_next_undo = undone
        return twin

    def remap(self, table: np.ndarray, dtype) -> "ValuesBeforeRemap | None":
        """The classes changed (a ``qgn.classes_edit.ClassEdit``'s ``lut()``): the step writes and
        restores the same pixels in the new class values, so the history survives a class edit.
        Returns what the remap lost (values of a merged or deleted class), to undo it exactly
        (``ValuesBeforeRemap.put_back``); None when ``table`` loses nothing of this step."""
        edit = self.edit
        lost = ValuesBeforeRemap.of(edit, table)
        self.edit = edit.with_values(table[edit.before].astype(dtype), table[edit.after].astype(dtype))
        return lost

    @property
    def nbytes(self) -> int:
        return self.edit.nbytes

    def redo(self) -> None:
        if self._skip_first_redo:
            self._skip_first_redo = False
            return
        self.session.apply(self.edit)

    def undo(self) -> None:
        if self._skip_next_undo:
            self._skip_next_undo = False
            return
        self.session.revert(self.edit)


class ValuesBeforeRemap:
    """An ``EditCommand``'s values before ``remap(table)`` when it holds values that ``table`` maps
    onto a value another maps to too (a merge, a delete), kept compactly: ``table`` is inverted —
    where several old values share a new one (a merge, a delete), to the one of them this step holds
    most (the merge's target, mostly) — and one bit a value says where that inverse is wrong, the
    old values there kept: an eighth of a byte a value plus the values of the merged or deleted
    class, not a copy of the step (the undo history's memory grew by itself again with each merge
    or delete: +343 MiB each over a 515 MiB history)."""

    __slots__ = ("inverse", "count", "before", "after")

    @classmethod
    def of(cls, edit, table: np.ndarray) -> "ValuesBeforeRemap | None":
        valid = np.flatnonzero(table >= 0)
        held = np.bincount(edit.before, minlength=len(table))[:len(table)] + \
            np.bincount(edit.after, minlength=len(table))[:len(table)]
        inverse = np.zeros(int(table[valid].max()) + 1, edit.before.dtype)  # old values: the map's dtype
        most = np.full(len(inverse), -1, np.int64)
        for value in valid.tolist():  # one entry a class: tens, at most 65,536
            target = table[value]
            if held[value] > most[target]:
                inverse[target], most[target] = value, held[value]
        shared = np.bincount(table[valid])[table[valid]] > 1  # old values whose new value is another's too
        if not held[valid[shared]].any():
            return None  # the step holds none: the class edit's own inverse gives its values back
        before, after = _wrong_where(edit.before, table, inverse), _wrong_where(edit.after, table, inverse)
        kept = cls()
        kept.inverse, kept.count, kept.before, kept.after = inverse, len(edit.before), before, after
        return kept

    def put_back(self, command: "EditCommand") -> None:
        """Give ``command`` (remapped by the table this was made for, nothing since) its values before."""
        values = []
        for now, lost in ((command.edit.before, self.before), (command.edit.after, self.after)):
            old = self.inverse[now]
            if lost is not None:
                old[np.unpackbits(lost[0], count=self.count).astype(bool)] = lost[1]
            values.append(old)
        command.edit = command.edit.with_values(*values)

    @property
    def nbytes(self) -> int:
        return self.inverse.nbytes + sum(part[0].nbytes + part[1].nbytes for part in (self.before, self.after)
                                         if part is not None)


class PixelsBeforeRemap:
    """What a class edit takes from an open map (``qgn.classes_edit.inverse_patch``: the pixels of a
    merged or deleted class, the value the edit wrote there and the one to put back), kept as one
    bit a pixel of the map, the old values in the map's dtype and the edit's table (the written
    values are the table's of the old ones): ~1 byte a taken pixel instead of three int64s (24 bytes:
    288 MB for a 4000×3000 map of the merged class)."""

    __slots__ = ("bits", "size", "value", "table")

    def __init__(self, patch: tuple, label: np.ndarray, table: np.ndarray):
        index, _wrote, value = patch
        mask = np.zeros(label.size, bool)
        mask[index] = True
        self.bits, self.size, self.value, self.table = np.packbits(mask), label.size, value.astype(label.dtype), table

    def patch(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(index, written value, value to put back), as ``inverse_patch`` gave them."""
        value = self.value.astype(np.int64)
        return np.flatnonzero(np.unpackbits(self.bits, count=self.size)), self.table[value], value


def _wrong_where(values: np.ndarray, table: np.ndarray, inverse: np.ndarray):
    """(one bit a value: True where ``inverse`` does not give the value back through ``table``,
    those values) or None when it gives every one back."""
    lost = inverse[table[values]] != values
    if not lost.any():
        return None
    return np.packbits(lost), values[lost].copy()


def undo_bytes(stack: QtGui.QUndoStack) -> int:
    """Memory the edits of ``stack`` hold (bytes): what the undo log costs."""
    total = 0
    for i in range(stack.count()):
        command = stack.command(i)
        total += getattr(command, "nbytes", 0)
    return total
