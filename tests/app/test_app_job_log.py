"""The job dialogs' messages (export, import, relink, statistics): a long one shows whole where the
screen allows, else scrolls with its whole text in the tooltip; it can always be selected; the
dialog and its buttons stay on the screen."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from test_app_export_cancel import export_dialog, squashed

DEEP = "/".join(["street-scenes-round-two"] * 4)


def settle(qtbot) -> None:
    for _ in range(5):
        QtWidgets.QApplication.processEvents()
        qtbot.wait(10)


def plain(html: str) -> str:
    return QtGui.QTextDocumentFragment.fromHtml(html).toPlainText()


def readable(dialog, log) -> None:
    """``log`` is selectable; it shows its whole text, or scrolls to it and has it as its tooltip;
    the dialog (its buttons included) is on its screen."""
    assert log.textInteractionFlags() & QtCore.Qt.TextInteractionFlag.TextSelectableByMouse
    label = getattr(log, "label", log)  # the text, all of it laid out (a JobLog scrolls it)
    assert label.height() >= label.heightForWidth(label.width())
    cut = log.height() < label.height() or log.width() < label.width()
    if cut:
        assert log.toolTip() == plain(log.text())
    screen = dialog.screen().availableGeometry()
    frame = dialog.frameGeometry()
    assert frame.height() <= screen.height() and frame.width() <= screen.width(), (frame, screen)
    assert screen.contains(frame), (frame, screen)
    for box in dialog.findChildren(QtWidgets.QDialogButtonBox):
        assert dialog.rect().contains(box.geometry()), (box.geometry(), dialog.rect())
    assert not squashed(dialog), squashed(dialog)
    return cut


def test_an_imports_end_line_with_eight_skipped_files_under_deep_folders_is_readable(qtbot, window, tmp_path):
    """(It was a plain label: 3 of its 8 skipped lines showed, cut, no tooltip, not selectable.)"""
    from qgn_studio.import_dialog import ImportDialog

    dialog = ImportDialog(window.jobs, None, window)
    qtbot.addWidget(dialog)
    dialog.show()
    settle(qtbot)
    skipped = [(f"{DEEP}/labels/frame_{i:05d}_with_a_long_camera_name_leftImg8bit.png",
                "its size 2048×1024 is not its image's 1920×1080; resize it or leave it out") for i in range(8)]
    report = SimpleNamespace(project=None, imported=[1] * 40, skipped=skipped, replaced=[], unchanged=[],
                             not_reached=0, voided=False, voided_text=lambda: "")
    dialog.running = True
    dialog._done(report)
    settle(qtbot)
    assert plain(dialog.log.text()).count("skipped ") == 8
    readable(dialog, dialog.log)
    assert dialog.log.height() >= 7 * dialog.log.fontMetrics().lineSpacing()  # grown, not 3 lines


def test_a_relinks_and_the_statistics_messages_are_readable(qtbot, window, tmp_path, model_path):
    from qgn_studio.relink_dialog import RelinkDialog
    from qgn_studio.statistics_dialog import StatisticsDialog

    stats = StatisticsDialog(window)
    qtbot.addWidget(stats)
    stats.show()
    settle(qtbot)
    stats.show_problem(" ".join(f"{DEEP}/annotations/frame_{i:05d}.qgt is not readable" for i in range(12)))
    settle(qtbot)
    readable(stats, stats.summary)

    project = SimpleNamespace(root=tmp_path, images=[])
    relink = RelinkDialog(project, window.batch_jobs, window.jobs, lambda *a: None, 1, window)
    qtbot.addWidget(relink)
    relink.show()
    settle(qtbot)
    relink.log.setText("Relinked 3 image(s); 5 still missing." + "".join(
        f"<br>{DEEP}/frame_{i:05d}.png: not relinked: two candidates with its name and size" for i in range(5)))
    settle(qtbot)
    readable(relink, relink.log)


@pytest.mark.parametrize("kind", ["lines", "newlines", "word", "paragraph"])
def test_a_huge_message_scrolls_and_the_export_dialog_stays_on_the_screen(qtbot, window, tmp_path, model_path, kind):
    """Eighty hard line breaks (``<br>`` or ``\\n``), or one word wider than the dialog (a folder
    name with no break), or a paragraph of four hundred paths: the message scrolls, the whole of it in
    its tooltip. (The label's minimum made the dialog 1667 px tall on a 720 px screen, its buttons
    off the screen.)"""
    dialog = export_dialog(qtbot, window, tmp_path, model_path, ["png"])
    settle(qtbot)
    text = {"lines": "<br>".join(f"line {i}: /very/long/folder/name/number/{i}" for i in range(80)),
            "newlines": "\n".join(f"line {i}: /very/long/folder/name/number/{i}" for i in range(80)),
            "word": "Cannot write into /" + "x" * 400 + "/export",
            "paragraph": "Export failed: " + " ".join(f"/data/street/frame_{i:05d}.png" for i in range(400))}[kind]
    dialog.log.setText(text)
    settle(qtbot)
    assert readable(dialog, dialog.log)  # it scrolls
    dialog.log.setText("Wrote 8 files")
    settle(qtbot)
    assert not readable(dialog, dialog.log) and dialog.log.toolTip() == ""


def test_eighty_plain_lines_in_the_import_dialog(qtbot, window):
    from qgn_studio.import_dialog import ImportDialog

    dialog = ImportDialog(window.jobs, None, window)
    qtbot.addWidget(dialog)
    dialog.show()
    settle(qtbot)
    dialog._failed("\n".join(f"{DEEP}/labels/frame_{i:05d}.png: not a PNG file" for i in range(80)))
    settle(qtbot)
    assert readable(dialog, dialog.log)


def test_the_message_is_no_tab_stop_and_takes_no_dialogs_first_focus(qtbot, window):
    """A JobLog takes focus by a click only, as the label it replaced: as a Tab stop with no focus
    mark it took the statistics dialog's first focus from its table and sat before the buttons."""
    from qgn_studio.job_dialog import JobLog
    from qgn_studio.statistics_dialog import StatisticsDialog

    stats = StatisticsDialog(window)
    qtbot.addWidget(stats)
    stats.show()
    stats.activateWindow()
    settle(qtbot)
    assert not isinstance(stats.focusWidget(), JobLog)
    for log in stats.findChildren(JobLog):
        assert not log.focusPolicy() & QtCore.Qt.FocusPolicy.TabFocus
