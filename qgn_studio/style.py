"""The app's dark look: a Fusion palette, and check/radio indicators that read on dark grey.

Fusion draws unchecked boxes with a border derived from the window colour, which all but vanishes
on a dark palette; ``IndicatorStyle`` paints them itself (no image files, no style sheet).
"""
from __future__ import annotations

import re

from PySide6 import QtCore, QtGui, QtWidgets

COLOURS = {
    "window": "#2b2d31", "text": "#e6e6e6", "base": "#1e1f22", "alternate": "#26282c",
    "button": "#33363b", "highlight": "#3d7dca", "disabled": "#6f6f6f",
}


def dark_palette() -> QtGui.QPalette:
    p = QtGui.QPalette()
    role, colour = QtGui.QPalette.ColorRole, QtGui.QColor
    for r, c in (
        (role.Window, COLOURS["window"]), (role.WindowText, COLOURS["text"]), (role.Base, COLOURS["base"]),
        (role.AlternateBase, COLOURS["alternate"]), (role.ToolTipBase, COLOURS["window"]),
        (role.ToolTipText, COLOURS["text"]), (role.Text, COLOURS["text"]), (role.Button, COLOURS["button"]),
        (role.ButtonText, COLOURS["text"]), (role.BrightText, "#ff6b6b"), (role.Highlight, COLOURS["highlight"]),
        (role.HighlightedText, "#ffffff"), (role.Link, "#6aa9ff"), (role.PlaceholderText, "#8a8a8a"),
        (role.Light, "#5a5d63"), (role.Midlight, "#44474c"), (role.Mid, "#3a3c41"),
        (role.Dark, "#16171a"), (role.Shadow, "#0d0d0f"),
    ):
        p.setColor(r, colour(c))
    for r in (role.WindowText, role.Text, role.ButtonText):
        p.setColor(QtGui.QPalette.ColorGroup.Disabled, r, colour(COLOURS["disabled"]))
    return p


class IndicatorStyle(QtWidgets.QProxyStyle):
    """Fusion with clearly outlined check boxes (also in item views) and radio buttons."""

    CHECKS = (
        QtWidgets.QStyle.PrimitiveElement.PE_IndicatorCheckBox,
        QtWidgets.QStyle.PrimitiveElement.PE_IndicatorItemViewItemCheck,
    )

    def drawPrimitive(self, element, option, painter, widget=None):
        radio = element == QtWidgets.QStyle.PrimitiveElement.PE_IndicatorRadioButton
        if not radio and element not in self.CHECKS:
            super().drawPrimitive(element, option, painter, widget)
            return
        state = option.state
        flag = QtWidgets.QStyle.StateFlag
        enabled = bool(state & flag.State_Enabled)
        on = bool(state & flag.State_On)
        partial = bool(state & flag.State_NoChange)
        side = min(option.rect.width(), option.rect.height(), 16) - 2
        rect = QtCore.QRectF(0, 0, side, side)
        rect.moveCenter(QtCore.QRectF(option.rect).center())
        painter.save()
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        painter.setPen(QtGui.QPen(QtGui.QColor("#9aa0a6" if enabled else "#55585d"), 1.4))
        filled = (on or partial) and enabled
        painter.setBrush(QtGui.QColor(COLOURS["highlight"] if filled else COLOURS["base"]))
        if radio:
            painter.drawEllipse(rect)
            if on:
                painter.setPen(QtCore.Qt.PenStyle.NoPen)
                painter.setBrush(QtGui.QColor("white" if enabled else "#888888"))
                painter.drawEllipse(rect.center(), side * 0.2, side * 0.2)
        else:
            painter.drawRoundedRect(rect, 2, 2)
            pen = QtGui.QPen(QtGui.QColor("white" if enabled else "#888888"), 1.8)
            pen.setCapStyle(QtCore.Qt.PenCapStyle.RoundCap)
            painter.setPen(pen)
            x, y, s = rect.x(), rect.y(), side
            if on:
                tick = [(0.25, 0.52), (0.43, 0.7), (0.76, 0.3)]
                painter.drawPolyline([QtCore.QPointF(x + a * s, y + b * s) for a, b in tick])
            elif partial:
                painter.drawLine(QtCore.QPointF(x + 0.28 * s, y + 0.5 * s), QtCore.QPointF(x + 0.72 * s, y + 0.5 * s))
        painter.restore()


def with_clear_button(edit: QtWidgets.QLineEdit, tip: str) -> QtWidgets.QLineEdit:
    """``edit`` with Qt's clear button, which says what it clears (Qt gives it no tooltip)."""
    edit.setClearButtonEnabled(True)
    for action in edit.actions():  # the clear action; its button shows the action's tooltip
        action.setToolTip(tip)
    for button in edit.findChildren(QtWidgets.QToolButton):
        button.setToolTip(tip)
    return edit


class NumberKeysOnly(QtCore.QObject):
    """An event filter that lets a focused spin box take only the keys it types (digits, a sign, a
    decimal point, editing keys, and the letters of ``typed``, such as a float's exponent ``e``): any
    other letter or ``[ ] / \\`` goes to the window's single-key shortcuts (a spin box swallowed E,
    B, N, [ … - nothing typed, no tool chosen). Install it with ``number_keys_only(spin_box)``."""

    PASSED = set("[]/\\?`~;'")

    def __init__(self, parent=None, typed: str = ""):
        super().__init__(parent)
        self.typed = set(typed)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QtCore.QEvent.Type.ShortcutOverride:
            text = event.text()
            modifiers = event.modifiers() & ~(QtCore.Qt.KeyboardModifier.ShiftModifier
                                               | QtCore.Qt.KeyboardModifier.KeypadModifier)
            if (len(text) == 1 and not modifiers and text not in self.typed
                    and (text.isalpha() or text in self.PASSED)):
                event.ignore()  # (not claimed: the shortcut takes it)
                return True
        return super().eventFilter(watched, event)


class FloatSpinBox(QtWidgets.QDoubleSpinBox):
    """A QDoubleSpinBox that also reads an exponent, as a learning rate is written ("1e-3",
    "5E-4"); it shows its value as QDoubleSpinBox does."""

    def validate(self, text: str, pos: int):
        state = super().validate(text, pos)
        if (state[0] if isinstance(state, tuple) else state) != QtGui.QValidator.State.Invalid:
            return state
        written = text.strip()
        if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d*)?", written):
            return QtGui.QValidator.State.Invalid, text, pos
        try:
            value = float(written)
        except ValueError:  # "1e", "1e-": not yet a number
            return QtGui.QValidator.State.Intermediate, text, pos
        inside = self.minimum() <= round(value, self.decimals()) <= self.maximum()
        return (QtGui.QValidator.State.Acceptable if inside else QtGui.QValidator.State.Intermediate), text, pos

    def valueFromText(self, text: str) -> float:  # noqa: N802 (Qt's name)
        try:
            return float(text.strip())
        except ValueError:
            return super().valueFromText(text)


def number_keys_only(spin_box: QtWidgets.QAbstractSpinBox) -> QtWidgets.QAbstractSpinBox:
    """``spin_box`` with ``NumberKeysOnly`` on it and on its line edit (which gets the keys); a
    ``FloatSpinBox`` keeps the ``e`` / ``E`` of its exponent (a letter it types never chooses a tool)."""
    keys = NumberKeysOnly(spin_box, "eE" if isinstance(spin_box, FloatSpinBox) else "")
    spin_box.installEventFilter(keys)
    edit = spin_box.findChild(QtWidgets.QLineEdit)
    if edit is not None:
        edit.installEventFilter(keys)
    return spin_box


def keyed_tooltip(action: QtGui.QAction, tip: str = "") -> None:
    """``action``'s tooltip says what it does (``tip``, else its text) and ends with its keys,
    "Open images (Ctrl+O)", and stays so when its text (an undo step, a class) or keys change."""

    def refresh() -> None:
        names = ", ".join(k.toString(QtGui.QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts())
        base = tip or action.text().replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…")
        want = f"{base} ({names})" if names else base
        if action.toolTip() != want:
            action.setToolTip(want)  # (emits changed again: then equal)

    action.changed.connect(refresh)
    refresh()


def apply_style(app: QtWidgets.QApplication) -> None:
    app.setStyle(IndicatorStyle("Fusion"))
    app.setPalette(dark_palette())
    app.setStyleSheet("QToolTip { color: #e6e6e6; background: #2b2d31; border: 1px solid #555; }"
                      " QGroupBox { font-weight: bold; }")
