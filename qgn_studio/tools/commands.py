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

    def __init__(self, session, edit, text: str, applied: bool = False):
        super().__init__(text)
        self.session = session
        self.edit = edit
        self.serial = next(_SERIALS)  # which map the log is at after this step (AnnotationSession.state)
        self._skip_first_redo = applied
        self._skip_next_undo = False

    def clone(self, undone: bool = False) -> "EditCommand":
        """The same step as a new command, to push onto a rebuilt log (``AnnotationSession.drop_oldest``):
        its first ``redo()`` does nothing (the map has it), nor, when ``undone`` (a step that can
        be redone), its next ``undo()`` (the map is before it)."""
        twin = EditCommand(self.session, self.edit, self.text(), applied=True)
        twin.serial = self.serial
        twin._skip_next_undo = undone
        return twin

    def remap(self, table: np.ndarray, dtype) -> None:
        """The classes changed (a ``qgn.classes_edit.ClassEdit``'s ``lut()``): the step writes and
        restores the same pixels in the new class values, so the history survives a class edit."""
        edit = self.edit
        self.edit = edit.with_values(table[edit.before].astype(dtype), table[edit.after].astype(dtype))

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


def undo_bytes(stack: QtGui.QUndoStack) -> int:
    """Memory the edits of ``stack`` hold (bytes): what the undo log costs."""
    total = 0
    for i in range(stack.count()):
        command = stack.command(i)
        total += getattr(command, "nbytes", 0)
    return total
