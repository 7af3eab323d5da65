"""Undo commands over ``LabelEdit``s: an undo step stores the changed pixels, never a whole map."""
from __future__ import annotations

import itertools

import numpy as np
from PySide6 import QtGui

_SERIALS = itertools.count(1)


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
        self.session.revert(self.edit)


def undo_bytes(stack: QtGui.QUndoStack) -> int:
    """Memory the edits of ``stack`` hold (bytes): what the undo log costs."""
    total = 0
    for i in range(stack.count()):
        command = stack.command(i)
        total += getattr(command, "nbytes", 0)
    return total
