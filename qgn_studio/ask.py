"""Questions the controllers ask the user, as modal dialogs: one small service the window provides.

Controllers never open a dialog themselves: they call an ``AskUser`` (bound to the window as the
dialogs' parent), through their replaceable ``ask_*`` / ``choose_*`` attributes. A test passes
``qgn_studio.testing.Answers`` instead, which answers at once, so no modal dialog ever blocks it.
Every method returns the user's choice, or the value that means "cancelled" (named per method).
"""
from __future__ import annotations

import time
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets


def _listed(names: list[str], most: int = 10) -> str:
    return "\n".join(names[:most]) + (f"\n… and {len(names) - most} more" if len(names) > most else "")


def new_folder_dialog(parent, title: str, start: str) -> QtWidgets.QFileDialog:
    """A file chooser for a folder that may not exist yet: ``title`` and how to answer, short
    enough for its title bar, and a *Create* button (not *Save*)."""
    dialog = QtWidgets.QFileDialog(parent, f"{title}: type a folder name, or pick an empty folder", start)
    dialog.setAcceptMode(QtWidgets.QFileDialog.AcceptMode.AcceptSave)
    dialog.setFileMode(QtWidgets.QFileDialog.FileMode.AnyFile)
    dialog.setOption(QtWidgets.QFileDialog.Option.DontConfirmOverwrite)
    dialog.setLabelText(QtWidgets.QFileDialog.DialogLabel.Accept, "Create")
    dialog.setLabelText(QtWidgets.QFileDialog.DialogLabel.FileName, "Folder name:")
    return dialog


class RecoveryDialog(QtWidgets.QDialog):
    """The crash-recovery question: whose autosaves, then one row per image (name, when autosaved,
    whether its saved annotation is newer) in a list that scrolls, so 1 or 1000 images fit the
    screen. ``choice`` after ``exec()``: "restore", "discard" or "later" (also Esc, closing)."""

    LIST_ROWS = 12  # rows shown before the list scrolls

    def __init__(self, question, parent=None):
        from qgn.project import DISCARDED_DIR

        super().__init__(parent)
        self.choice = "later"
        self.setWindowTitle("Restore unsaved annotations?")
        layout = QtWidgets.QVBoxLayout(self)
        self.where = QtWidgets.QLabel(question.where())
        self.where.setWordWrap(True)
        self.where.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.where.setStyleSheet("font-weight: bold")
        layout.addWidget(self.where)
        self.summary = QtWidgets.QLabel(question.summary())
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        layout.addWidget(self.summary)
        self.list = QtWidgets.QListWidget()
        self.list.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
        for item in question.items:
            row = QtWidgets.QListWidgetItem(question.item_text(item))
            if item.autosaved is not None:
                row.setToolTip(time.strftime("autosaved %Y-%m-%d %H:%M:%S", time.localtime(item.autosaved)))
            self.list.addItem(row)
        rows = min(len(question.items), self.LIST_ROWS)
        self.list.setFixedHeight(rows * max(self.list.sizeHintForRow(0), 1) + 2 * self.list.frameWidth() + 4)
        layout.addWidget(self.list)
        folder = QtWidgets.QLabel(question.actions(DISCARDED_DIR))
        folder.setWordWrap(True)
        folder.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        folder.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        folder.setStyleSheet("color: #888")
        layout.addWidget(folder)
        buttons = QtWidgets.QDialogButtonBox()
        roles = QtWidgets.QDialogButtonBox.ButtonRole
        self.buttons = {"restore": buttons.addButton("Restore", roles.AcceptRole),
                        "discard": buttons.addButton("Discard", roles.DestructiveRole),
                        "later": buttons.addButton("Later", roles.RejectRole)}
        self.buttons["restore"].setDefault(True)
        for choice, button in self.buttons.items():
            button.clicked.connect(lambda _=False, choice=choice: self._answer(choice))
        layout.addWidget(buttons)
        self.setMinimumWidth(560)
        self.setMaximumWidth(900)
        width = self.minimumWidth()
        self.resize(width, layout.totalHeightForWidth(width))  # the labels' wrapped height, no more

    def _answer(self, choice: str) -> None:
        self.choice = choice
        self.done(0)


class AskUser:
    """Modal dialogs over ``parent``; ``start_folder()`` is where file choosers open."""

    def __init__(self, parent: QtWidgets.QWidget | None, start_folder=lambda: ""):
        self.parent = parent
        self.start_folder = start_folder

    # ------------------------------------------------------------------ projects
    def recover(self, question) -> str:
        """Autosaves with edits the saved annotations lack (a ``recovery_question.RecoveryQuestion``):
        "restore", "discard" or "later"."""
        dialog = RecoveryDialog(question, self.parent)
        dialog.exec()
        return dialog.choice

    def folder(self, title: str, new: bool) -> Path | None:
        """A project folder (``new``: one that may not exist yet); None: cancelled."""
        if new:  # a name typed here may be a folder that does not exist yet: Project.create makes it
            dialog = new_folder_dialog(self.parent, title, self.start_folder())
            folder = dialog.selectedFiles()[0] if dialog.exec() and dialog.selectedFiles() else ""
        else:
            folder = QtWidgets.QFileDialog.getExistingDirectory(self.parent, title, self.start_folder())
        return Path(folder) if folder else None

    def add_images(self, count: int, name: str) -> str:
        """Images not in the open project are being opened: "add", "close" (the project) or "cancel"."""
        box = QtWidgets.QMessageBox(self.parent)
        box.setIcon(QtWidgets.QMessageBox.Icon.Question)
        box.setWindowTitle("Add to the project?")
        box.setText(f"{count} image{'s are' if count != 1 else ' is'} not in the project {name!r}.\n\n"
                    "Add them to the project (it remembers them), or close the project and open them on their own?")
        add = box.addButton("Add to the project", QtWidgets.QMessageBox.ButtonRole.AcceptRole)
        close = box.addButton("Close the project", QtWidgets.QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QtWidgets.QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(add)
        box.exec()
        clicked = box.clickedButton()
        return "add" if clicked is add else "close" if clicked is close else "cancel"

    def remove(self, names: list[str], project: str | None) -> bool:
        """Take these images out of the list (and ``project``)?"""
        where = (f" and from the project {project!r} (its saved annotation moves to the project's removed/ folder; "
                 "nothing is deleted)") if project else ""
        buttons = QtWidgets.QMessageBox.StandardButton
        answer = QtWidgets.QMessageBox.question(
            self.parent, "Remove images", f"Remove from the list{where}:\n\n{_listed(names)}",
            buttons.Yes | buttons.Cancel, buttons.Cancel)
        return answer == buttons.Yes

    def unsaved(self, count: int, what: str) -> str:
        """Unsaved edits (or done marks without a project) of ``count`` images before ``what``:
        "save", "discard" or "cancel"."""
        buttons = QtWidgets.QMessageBox.StandardButton
        answer = QtWidgets.QMessageBox.question(
            self.parent, "Unsaved work",
            f"{count} image{'s have' if count != 1 else ' has'} unsaved annotation edits or “done” marks. "
            f"Save before {what}?",
            buttons.Save | buttons.Discard | buttons.Cancel, buttons.Save)
        return {buttons.Save: "save", buttons.Discard: "discard"}.get(answer, "cancel")

    def keep_unsaved(self, count: int, why: str, where: str) -> bool:
        """The close's Save failed (a full disk): close anyway, the edits of ``count`` images left in their
        autosaves (``where``) and offered at the next start (True), or stay open (False)."""
        box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Warning, "Not saved",
                                    f"{count} image{'s were' if count != 1 else ' was'} not saved: {why}.\n\n"
                                    f"The edits are autosaved in {where}. Close now and have them offered when "
                                    "the app starts again, or cancel and stay (save once there is room)?",
                                    QtWidgets.QMessageBox.StandardButton.Cancel, self.parent)
        close = box.addButton("Close, keep them for next time", QtWidgets.QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(QtWidgets.QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is close

    def classes(self, current):
        """The class set of a new project, starting from ``current``; None: cancelled."""
        from qgn_studio.class_dialog import ClassSetDialog

        dialog = ClassSetDialog(current, self.parent)
        if dialog.exec() != QtWidgets.QDialog.DialogCode.Accepted:
            return None
        return dialog.classes()

    # ------------------------------------------------------------------ annotation
    def class_name(self) -> str | None:
        """The name of a new class; None: cancelled."""
        name, ok = QtWidgets.QInputDialog.getText(self.parent, "Add a class", "Name of the new class:")
        return name if ok else None

    def mask_file(self) -> str | None:
        """A mask to start an annotation from; None: cancelled."""
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self.parent, "Import a mask", "", "Masks (*.png *.qgt *.tif *.tiff *.bmp);;All files (*)")
        return path or None

    def kept_copy(self, name: str, copies: list):
        """One of ``copies`` (``qgn.project_kept.KeptCopy``, newest first) the project kept aside for the
        image ``name``, to load as its labels; None: cancelled."""
        dialog = kept_copy_dialog(self.parent, name, copies)
        return copies[dialog.list.currentRow()] if dialog.exec() and dialog.list.currentRow() >= 0 else None

    def colour(self, rgb, name: str):
        """A new colour (r, g, b) for class ``name``; None: cancelled."""
        colour = QtWidgets.QColorDialog.getColor(QtGui.QColor(*rgb), self.parent, f"Colour of “{name}”")
        return (colour.red(), colour.green(), colour.blue()) if colour.isValid() else None

    def merge_target(self, names: list[str], class_id: int, pixels: int, images: int) -> int | None:
        """Where the pixels of the deleted class ``class_id`` go: None (ignore), a class id (merge),
        -1 (cancel)."""
        others = [i for i in range(len(names)) if i != class_id]
        choices = ["ignore (delete the class)"] + [f"{names[i]}  (merge into it)" for i in others]
        where = f"{pixels:,} px in {images} image{'s' if images != 1 else ''}"
        choice, ok = QtWidgets.QInputDialog.getItem(
            self.parent, "Delete or merge a class",
            f"{names[class_id]!r} covers {where} (open and saved annotations).\n"
            f"Those pixels become:", choices, 0, False)
        if not ok:
            return -1
        index = choices.index(choice)
        return None if index == 0 else others[index - 1]

    # ------------------------------------------------------------------ models
    def unkept_model(self, running: bool, detail: str, path: Path | None) -> str:
        """Closing the window with a fine-tuned model neither kept nor reverted (``detail``: how it
        compares; ``path``: where Keep saves it), or, ``running``, with a fine-tune still running
        (``detail``: how far it is): "keep" (never when running), "discard" (stopping a run) or
        "cancel" (the window stays open; also Esc)."""
        box = QtWidgets.QMessageBox(self.parent)
        box.setIcon(QtWidgets.QMessageBox.Icon.Question)
        roles = QtWidgets.QMessageBox.ButtonRole
        if running:
            box.setWindowTitle("Stop the fine-tune?")
            box.setText(f"A fine-tune is still running ({detail}): closing stops it and discards the model "
                        "it is training.")
            box.setInformativeText("Cancel keeps the window open: let it finish, then keep or revert the result "
                                   "in the Fine-tune panel.")
            discard = box.addButton("Stop and discard", roles.DestructiveRole)
            keep = None
        else:
            box.setWindowTitle("Keep the fine-tuned model?")
            box.setText("The fine-tuned model was neither kept nor reverted: closing without keeping it "
                        f"discards it.\n\n{detail}.")
            box.setInformativeText(f"Keep it saves it as a new file,\n{path}\nand the next start predicts with it.")
            keep = box.addButton("Keep it", roles.AcceptRole)
            discard = box.addButton("Discard it", roles.DestructiveRole)
        cancel = box.addButton(QtWidgets.QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(keep or cancel)
        box.setEscapeButton(cancel)
        box.exec()
        clicked = box.clickedButton()
        return "keep" if keep is not None and clicked is keep else "discard" if clicked is discard else "cancel"

    def unkept_at_start(self, detail: str, path: Path) -> str:
        """At start, a fine-tuned model the last session set aside when it was ended (SIGTERM)
        neither kept nor reverted (``detail``: how it compared or how far it got; ``path``: where
        Keep saves it): "keep", "discard" or "later" (also Esc)."""
        box = QtWidgets.QMessageBox(self.parent)
        box.setIcon(QtWidgets.QMessageBox.Icon.Question)
        box.setWindowTitle("Keep the fine-tuned model?")
        box.setText(f"A fine-tuned model from the last session was not kept: the session ended before it was "
                    f"kept or reverted.\n\n{detail}.")
        box.setInformativeText(f"Keep it saves it as a new file,\n{path}\nand predicts with it. Discard moves it "
                               "to finetuned/discarded/ in the folder of unsaved work (nothing is deleted). Later asks at "
                               "the next start.")
        roles = QtWidgets.QMessageBox.ButtonRole
        keep = box.addButton("Keep it", roles.AcceptRole)
        discard = box.addButton("Discard it", roles.DestructiveRole)
        later = box.addButton("Later", roles.RejectRole)
        box.setDefaultButton(keep)
        box.setEscapeButton(later)
        box.exec()
        clicked = box.clickedButton()
        return "keep" if clicked is keep else "discard" if clicked is discard else "later"

    def stop_finetune(self, steps: int, seconds: float) -> bool:
        """Esc with a fine-tune that has run a while: True stops it (its result is lost), False
        (also Esc, the default) keeps it training."""
        box = QtWidgets.QMessageBox(self.parent)
        box.setIcon(QtWidgets.QMessageBox.Icon.Question)
        box.setWindowTitle("Stop the fine-tune?")
        box.setText(f"Stop the fine-tune? It has run {steps:,} step{'s' if steps != 1 else ''} "
                    f"({seconds:,.0f}\N{NO-BREAK SPACE}s); its result is lost.")
        stop = box.addButton("Stop", QtWidgets.QMessageBox.ButtonRole.DestructiveRole)
        keep = box.addButton("Keep training", QtWidgets.QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(keep)
        box.setEscapeButton(keep)
        box.exec()
        return box.clickedButton() is stop

    def model_path(self, default: Path):
        """Where to save a fine-tuned model: (Path, overwrite confirmed), or None (cancelled)."""
        default.parent.mkdir(parents=True, exist_ok=True)
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self.parent, "Save the fine-tuned model", str(default), "QGN models (*.safetensors)")
        if not path:
            return None
        # The dialog itself asked before replacing an existing file.
        return Path(path), Path(path).exists()


def kept_copy_dialog(parent, name: str, copies: list) -> QtWidgets.QDialog:
    """The choice of ``AskUser.kept_copy``: the copies newest first, when and why each was kept, its
    file in the tooltip; the newest chosen - the newest not ``unsure`` (maybe another image's: ``KeptCopy``)."""
    dialog = QtWidgets.QDialog(parent)
    dialog.setWindowTitle("Start from a kept copy")
    layout = QtWidgets.QVBoxLayout(dialog)
    text = QtWidgets.QLabel(f"The project kept {len(copies)} cop{'y' if len(copies) == 1 else 'ies'} of the labels of "
                            f"{name} aside (newest first). The one you choose becomes its labels as one edit: undo "
                            "takes it back, your saved annotation changes only when you save, and the kept file stays "
                            "where it is.")
    text.setWordWrap(True)
    layout.addWidget(text)
    dialog.list = QtWidgets.QListWidget(dialog)
    dialog.list.setWordWrap(True)  # a long reason (an unsure copy's) read whole, not cut at the edge
    dialog.list.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    for copy in copies:
        item = QtWidgets.QListWidgetItem(copy.describe())
        item.setToolTip(f"{copy.why}\n{copy.path}")
        dialog.list.addItem(item)
    # the newest that is surely this image's (one whose name fits another image too says so, unchosen)
    dialog.list.setCurrentRow(next((row for row, copy in enumerate(copies) if not copy.unsure), 0))
    dialog.list.itemDoubleClicked.connect(lambda _item: dialog.accept())
    layout.addWidget(dialog.list)
    buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Ok
                                         | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
    buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok).setText("Start from it")
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    layout.addWidget(buttons)
    dialog.resize(640, 300)
    return dialog
