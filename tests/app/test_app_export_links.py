"""The app's export into a folder whose format subfolder is a symbolic link leading outside it
(``OUT/coco/annotations -> elsewhere``): refused with one line naming the link and the fix, and
nothing written there (``qgn.formats.check_export_links``). Before, instances_default.json was
written into the folder the link led to."""
from __future__ import annotations

from studio_steps import WAIT_MS, start_annotating

SAMPLE_COUNT = 1


def test_export_dialog_refuses_a_subfolder_linked_outside(qtbot, windows, samples, model_path, tmp_path):
    win = windows(folder=tmp_path / "proj")
    start_annotating(qtbot, win, samples, model_path)
    win.docs[0].annotation.mark_unsaved()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "mine.txt").write_text("my own file\n")
    out = tmp_path / "out"
    (out / "coco").mkdir(parents=True)
    (out / "coco" / "annotations").symlink_to(elsewhere)
    dialog = win.show_export()
    assert dialog is not None
    dialog.set_formats(["coco"])
    dialog.folder.setText(str(out))
    dialog.export_button.click()
    qtbot.waitUntil(lambda: not dialog.running and "Export failed" in dialog.log.text(), timeout=WAIT_MS)
    text = dialog.log.text()
    assert f"{out / 'coco' / 'annotations'} is a link to {elsewhere}" in text
    assert "remove the link or export elsewhere" in text
    assert [p.name for p in elsewhere.iterdir()] == ["mine.txt"]
    assert [p.name for p in (out / "coco").iterdir()] == ["annotations"]
