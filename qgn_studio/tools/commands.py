"""Undo commands over ``LabelEdit``s: an undo step stores the changed pixels, never a whole map."""
from __future__ import annotations

from PySide6 import QtGui


class EditCommand(QtGui.QUndoCommand):
    """One undo step: a ``qgn.annotation.edit.LabelEdit`` of an ``AnnotationSession``.

    ``applied=True``: the edit is already in the map (a paint stroke applies itself while the
    mouse moves), so the first ``redo()`` — the one ``QUndoStack.push`` makes — does nothing.
    """

    def __init__(self, session, edit, text: str, applied: bool = False):
        super().__init__(text)
        self.session = session
        self.edit = edit
        self._skip_first_redo = applied

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
