"""The export dialog's Cityscapes split (#22): train unless the user picks or types another, only
asked when Cityscapes is checked, and a name that is not one folder name is refused in the dialog
before anything is written.
"""
from __future__ import annotations

from studio_steps import WAIT_MS, start_annotating

SAMPLE_COUNT = 1


def test_export_dialog_files_cityscapes_under_the_chosen_split(qtbot, windows, samples, model_path, tmp_path):
    win = windows(folder=tmp_path / "proj")
    start_annotating(qtbot, win, samples, model_path)
    win.docs[0].annotation.mark_unsaved()
    dialog = win.show_export()
    assert dialog is not None
    dialog.set_formats(["png"])
    assert not dialog.split.isEnabled() and dialog.split.currentText() == "train"
    dialog.set_formats(["png", "cityscapes"])
    assert dialog.split.isEnabled()
    out = tmp_path / "out"
    dialog.folder.setText(str(out))

    dialog.split.setEditText("../elsewhere")
    dialog.export_button.click()
    assert not dialog.running and "split '../elsewhere'" in dialog.log.text()
    assert not out.exists() and not (tmp_path / "elsewhere").exists()

    dialog.split.setEditText("val")
    with qtbot.waitSignal(dialog.exported, timeout=WAIT_MS):
        dialog.export_button.click()
    tree = out / "cityscapes"
    assert {p.parent.parent.name for p in tree.rglob("*_gtFine_labelIds.png")} == {"val"}
    assert {p.parent.parent.name for p in tree.rglob("*_leftImg8bit.png")} == {"val"}
    assert not (tree / "gtFine" / "train").exists()
