"""An export under way in the export dialog: Cancel stops it after the image being written (the
files written so far stay, the job queue is free again), and closing the dialog lets it finish —
it used to stop half-way, its progress reaching a deleted object."""
from __future__ import annotations

import json
import threading

import pytest
from PySide6 import QtCore, QtWidgets

import qgn.project_export
from qgn.cli.main import main

from sample_files import ids_dataset
from studio_steps import WAIT_MS

COUNT = 4


@pytest.fixture
def held_export(monkeypatch):
    """``gate``: the export waits before reporting its second image until ``gate.set()``."""
    gate = threading.Event()
    real = qgn.project_export.export_project

    def export(project, out, formats, progress=None, *args, **kwargs):
        def held(i, n, text):
            if i == 2:
                gate.wait(WAIT_MS / 1000)
            progress(i, n, text)
        return real(project, out, formats, held, *args, **kwargs)

    monkeypatch.setattr(qgn.project_export, "export_project", export)
    return gate


def export_dialog(qtbot, win, tmp_path, model_path, formats):
    """The export dialog of a project of COUNT annotated images, set to export ``formats`` into
    tmp_path/out (not started)."""
    dataset = ids_dataset(tmp_path / "ds", COUNT, size=(12, 8))
    (dataset / "classes.txt").write_text("".join(f"c{i}\n" for i in range(COUNT)))
    assert main(["import", str(dataset), "--format", "ids", "--project", str(tmp_path / "project")]) == 0
    win.start([str(tmp_path / "project")], str(model_path))
    qtbot.waitUntil(lambda: len(win.docs) == COUNT and win.projects.project is not None, timeout=WAIT_MS)
    win.jobs.wait_idle()
    dialog = win.show_export()
    dialog.set_formats(formats)
    dialog.folder.setText(str(tmp_path / "out"))
    return dialog


def exporting(qtbot, win, tmp_path, model_path):
    """The export dialog of a project of COUNT annotated images, exporting into tmp_path/out (PNG
    and COCO, whose JSON is written at the end), its first image reported."""
    dialog = export_dialog(qtbot, win, tmp_path, model_path, ["png", "coco"])
    dialog.export_button.click()
    qtbot.waitUntil(lambda: dialog.progress.value() == 1, timeout=WAIT_MS)
    return dialog


def test_closing_the_dialog_lets_the_export_finish(qtbot, window, tmp_path, model_path, held_export):
    dialog = exporting(qtbot, window, tmp_path, model_path)
    dialog.close()  # it deletes itself
    QtWidgets.QApplication.processEvents()
    held_export.set()
    assert window.jobs.wait_idle() and window.batch_jobs.wait_idle()  # exports run on the batch thread
    QtWidgets.QApplication.processEvents()
    assert len(list((tmp_path / "out" / "png").glob("*.png"))) == COUNT
    assert list((tmp_path / "out" / "coco").rglob("*.json")), list((tmp_path / "out").rglob("*"))


def test_cancel_stops_the_export_and_says_what_stays(qtbot, window, tmp_path, model_path, held_export):
    dialog = exporting(qtbot, window, tmp_path, model_path)
    assert dialog.cancel_button.isEnabled()
    dialog.cancel_button.click()
    held_export.set()
    assert window.jobs.wait_idle() and window.batch_jobs.wait_idle()  # exports run on the batch thread
    qtbot.waitUntil(lambda: not dialog.running, timeout=WAIT_MS)
    written = list((tmp_path / "out" / "png").glob("*.png"))
    assert 1 <= len(written) < COUNT
    (index,) = list((tmp_path / "out" / "coco").rglob("*.json"))  # the COCO JSON lists what was written
    assert len(json.loads(index.read_text())["images"]) == len(written)
    assert "cancelled" in dialog.log.text() and str(tmp_path / "out") in dialog.log.text()
    assert dialog.export_button.isEnabled() and not dialog.cancel_button.isEnabled()
    dialog.close()


def test_an_export_asked_for_just_before_the_window_closes_is_written(qtbot, window, tmp_path, model_path):
    """Export, then close the window at once: the export, submitted to the batch thread from the
    callback of the save queued before it, was never run (the batch thread had already stopped);
    closing now runs it first."""
    dialog = export_dialog(qtbot, window, tmp_path, model_path, ["png"])
    dialog.export_button.click()
    window.close()  # before the UI thread got back to its events
    assert window.threads_stopped
    assert len(list((tmp_path / "out" / "png").glob("*.png"))) == COUNT


def test_an_export_waiting_for_another_export_says_who_and_cancel_ends_the_wait(qtbot, window, tmp_path,
                                                                              model_path):
    """Another process holds the output folder's lock (an export stopped mid-image with Ctrl-Z):
    the dialog's line says who the export waits for (its pid), and Cancel ends the wait - before,
    it waited without a word and Cancel did nothing until the other export let go."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    folder = tmp_path / "out" / "png"
    folder.mkdir(parents=True)
    root = Path(__file__).resolve().parents[2]
    holder = subprocess.Popen([sys.executable, "-c", (
        f"import sys, time; sys.path.insert(0, {str(root)!r}); from pathlib import Path\n"
        f"from qgn.formats.base import holding_folder\n"
        f"with holding_folder(Path({str(folder)!r})):\n    print('held', flush=True)\n    time.sleep(60)\n")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        dialog = export_dialog(qtbot, window, tmp_path, model_path, ["png"])
        dialog.export_button.click()
        qtbot.waitUntil(lambda: "waiting for another export" in dialog.log.text(), timeout=WAIT_MS)
        assert f"pid {holder.pid} on host" in dialog.log.text() and str(folder) in dialog.log.text()
        if os.environ.get("QGN_SHOT"):
            dialog.grab().save(os.environ["QGN_SHOT"])
        dialog.cancel_button.click()
        qtbot.waitUntil(lambda: not dialog.running, timeout=WAIT_MS)
        assert "cancelled after 0 of" in dialog.log.text()
        assert not list(folder.glob("*.png"))
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_an_export_without_the_folders_lock_keeps_saying_so_on_its_end_line(qtbot, window, tmp_path, model_path,
                                                                            monkeypatch):
    """A file system without locks (ENOLCK, an NFS share): the 'exporting without the folder's export
    lock ... run one at a time there' line was shown on the dialog's one log line and replaced by the
    next progress line at once, and said once per process - a second export said nothing. Now each
    export's end line keeps it."""
    import errno
    import fcntl
    import os

    real, out = fcntl.flock, str(tmp_path / "out")

    def flock(fd, op):
        if os.readlink(f"/proc/self/fd/{fd}").startswith(out):
            raise OSError(errno.ENOLCK, "No locks available")
        return real(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock)
    dialog = export_dialog(qtbot, window, tmp_path, model_path, ["png"])
    for _run in (1, 2):
        dialog.export_button.click()
        qtbot.waitUntil(lambda: not dialog.running, timeout=WAIT_MS)
        assert dialog.log.text().startswith("Wrote ")
        assert "without the folder's export lock" in dialog.log.text() and "one at a time" in dialog.log.text()
        assert str(tmp_path / "out" / "png") in dialog.log.text()
    if os.environ.get("QGN_SHOT"):
        dialog.grab().save(os.environ["QGN_SHOT"])


def squashed(dialog) -> list[str]:
    """The dialog's labels and checkboxes shown less tall than their text needs at their width."""
    out = []
    for widget in dialog.findChildren(QtWidgets.QLabel) + dialog.findChildren(QtWidgets.QCheckBox):
        if not widget.isVisible():
            continue
        need = widget.heightForWidth(widget.width()) if widget.hasHeightForWidth() else widget.sizeHint().height()
        if widget.height() < need:
            out.append(f"{widget.text()[:40]!r}: {widget.height()} of {need} px")
    return out


def test_a_long_wait_line_grows_the_export_dialog(qtbot, window, tmp_path, model_path):
    """A wait for another export's lock says the folder and its holder (six lines with a deep
    folder): the dialog grows to show it and the rest whole, within a 1280×720 screen, and the line
    can be selected. (It stayed as tall: the formats were squashed, their rows cut, and the dialog's
    two-line intro already took 14 px from them when it opened.)"""
    from qgn.export_lock import EXPORT_LOCK, UNSTOPPABLE, _wait_text

    dialog = export_dialog(qtbot, window, tmp_path, model_path, ["png"])
    QtWidgets.QApplication.processEvents()
    assert not squashed(dialog), squashed(dialog)  # as it opens
    folder = (tmp_path / "exports_of_the_street_scenes_project_for_the_review"
              / "second-round-with-the-new-classes-and-the-relabelled-sidewalks" / "export")
    folder.mkdir(parents=True)
    (folder / EXPORT_LOCK).write_text(json.dumps({"pid": 4242424, "since": 1.8e9,
                                                  "host": "annotation-workstation-07.lab.example.org"}))
    dialog.folder.setText(str(folder))
    text = _wait_text(folder, UNSTOPPABLE)  # the longest wait line
    assert "pid 4242424 on host annotation-workstation-07" in text
    dialog._step(0, COUNT, text)  # as the export's progress says it
    QtWidgets.QApplication.processEvents()
    line = dialog.log.fontMetrics().lineSpacing()
    assert dialog.log.height() >= 5 * line  # (it wraps)
    assert not squashed(dialog), squashed(dialog)
    assert dialog.frameGeometry().height() <= 720
    assert dialog.log.textInteractionFlags() & QtCore.Qt.TextInteractionFlag.TextSelectableByMouse
    dialog.log.setText(f"Wrote 8 files into {folder} (2 folders)")  # shorter: nothing moves
    QtWidgets.QApplication.processEvents()
    assert not squashed(dialog), squashed(dialog)


def test_every_button_of_the_export_dialog_says_what_it_does(qtbot, window, tmp_path, model_path):
    """Browse… and Export had no tooltip."""
    dialog = export_dialog(qtbot, window, tmp_path, model_path, ["png"])
    buttons = [b for b in dialog.findChildren(QtWidgets.QAbstractButton) if b.isVisibleTo(dialog)]
    assert {"Browse…", "Export"} <= {b.text() for b in buttons}
    assert not [b.text() for b in buttons if not b.toolTip().strip()]


def test_an_export_whose_dialog_was_closed_shows_its_progress_in_the_status_bar(qtbot, window, tmp_path,
                                                                                model_path, held_export):
    """Closing the dialog lets the export go on, and it went on silent: its steps now show in the
    status bar's task progress (n/N, the time left, Cancel), hidden when it ends."""
    dialog = exporting(qtbot, window, tmp_path, model_path)
    dialog.close()
    QtWidgets.QApplication.processEvents()
    shown = []
    window.workspace.progress.connect(lambda text, done, total, _cancel: shown.append((done, total)))
    held_export.set()
    assert window.batch_jobs.wait_idle()
    qtbot.waitUntil(lambda: not window.progress.isVisible() and len(shown) >= 2, timeout=WAIT_MS)
    assert shown[0][1] == COUNT and [done for done, _total in shown] == sorted(done for done, _total in shown)
    assert len(list((tmp_path / "out" / "png").glob("*.png"))) == COUNT


def export_held_until_cancel(monkeypatch) -> threading.Event:
    """The project export held after its first image until the returned event is set (the test
    closes the dialog, then sets it), and at its second until its Cancel (at most WAIT_MS)."""
    import time

    closed = threading.Event()
    real = qgn.project_export.export_project

    def export(project, out, formats, progress=None, *args, **kwargs):
        def held(i, n, text):
            progress(i, n, text)
            if i == 1:
                closed.wait(WAIT_MS / 1000)  # the dialog is closed after its first image ...
            if i == 2:  # ... and the second, said in the status bar, waits for its Cancel
                end = time.monotonic() + WAIT_MS / 1000
                while not kwargs["should_stop"]() and time.monotonic() < end:
                    time.sleep(0.01)
        return real(project, out, formats, held, *args, **kwargs)

    monkeypatch.setattr(qgn.project_export, "export_project", export)
    return closed


def test_the_status_bars_cancel_stops_an_export_whose_dialog_was_closed(qtbot, window, tmp_path, model_path,
                                                                        monkeypatch):
    closed = export_held_until_cancel(monkeypatch)
    dialog = exporting(qtbot, window, tmp_path, model_path)
    dialog.close()
    QtWidgets.QApplication.processEvents()
    closed.set()
    qtbot.waitUntil(lambda: window.progress.cancel_button.isVisible(), timeout=WAIT_MS)
    window.progress.cancel_button.click()
    assert window.batch_jobs.wait_idle()
    qtbot.waitUntil(lambda: not window.progress.isVisible(), timeout=WAIT_MS)
    assert len(list((tmp_path / "out" / "png").glob("*.png"))) < COUNT


def test_a_save_round_ending_leaves_a_running_exports_line_in_the_status_bar(qtbot, window, tmp_path, model_path,
                                                                              monkeypatch):
    """The status bar has one task slot: a Ctrl+S round of several annotations that ended while an
    export (its dialog closed) was under way hid the export's line and its Cancel until the export's
    next step. Each task hides its own line: the export's comes back, and its Cancel stops it.
    During the round the Cancel is the export's, named by the job ("Cancel exporting", its folder in
    the tooltip): it was named by the export's latest line, an image's ("Cancel new_1"), and its
    tooltip promised Esc, which does not stop an export."""

    from studio_steps import paint, wait_for_image

    closed = export_held_until_cancel(monkeypatch)
    dialog = exporting(qtbot, window, tmp_path, model_path)
    dialog.close()
    QtWidgets.QApplication.processEvents()
    closed.set()
    qtbot.waitUntil(lambda: window.progress.cancel_button.isVisible(), timeout=WAIT_MS)
    exported = window.progress.label.text()
    out = str(tmp_path / "out")
    assert window.progress.cancel_button.toolTip() == f"Stop exporting into {out}"  # (no Esc: it does not stop it)
    window.annotator.set_mode(True)
    for doc in window.docs[:2]:
        window.workspace.select(doc)
        wait_for_image(qtbot, window, doc.path)
        qtbot.waitUntil(lambda doc=doc: doc.annotation is not None, timeout=WAIT_MS)
        paint(window, 0, (int(doc.annotation.label[1, 1]) + 1) % COUNT, [(1, 1), (5, 3)])  # (another class)
    assert len(window.projects.unsaved()) == 2
    saving = []
    buttons = []
    window.workspace.progress.connect(lambda text, *_: saving.append(window.progress.label.text()))
    window.workspace.progress.connect(lambda text, *_: buttons.append(
        (window.progress.cancel_button.text(), window.progress.cancel_button.toolTip())))
    with qtbot.waitSignal(window.projects.saved, timeout=WAIT_MS):
        assert window.projects.save()
    QtWidgets.QApplication.processEvents()
    assert any(text.startswith("Saving annotations 0/2") for text in saving), saving  # (the latest started)
    during = buttons[saving.index(next(text for text in saving if text.startswith("Saving annotations 0/2")))]
    assert during[0] == "Cancel exporting", buttons
    assert during[1].startswith(f"Stop exporting into {out}, still running") and "Esc" not in during[1], buttons
    assert not window.projects.unsaved()
    assert window.progress.isVisible() and window.progress.cancel_button.isVisible()
    assert window.progress.label.text().startswith(exported.split(" · ")[0]), window.progress.label.text()
    window.progress.cancel_button.click()
    assert window.batch_jobs.wait_idle()
    qtbot.waitUntil(lambda: not window.progress.isVisible(), timeout=WAIT_MS)
    assert len(list((tmp_path / "out" / "png").glob("*.png"))) < COUNT


def test_an_export_cancelled_in_its_dialog_then_closed_says_cancelling_in_the_status_bar(
        qtbot, window, tmp_path, model_path, held_export):
    """Cancel pressed in the dialog, then the dialog closed while the export ends its image: its
    next step came to the status bar as "Exporting 2/…" with an enabled Cancel, as if it ran on. It
    says "Cancelling exporting into <folder>…", its Cancel disabled, until the export ends."""
    steps = []
    window.workspace.task_progress.connect(lambda *_: QtCore.QTimer.singleShot(0, lambda: steps.append(
        (window.progress.label.text(), window.progress.cancel_button.isEnabled()))))
    dialog = exporting(qtbot, window, tmp_path, model_path)
    dialog.cancel_button.click()
    dialog.close()
    QtWidgets.QApplication.processEvents()
    held_export.set()
    assert window.batch_jobs.wait_idle()
    qtbot.waitUntil(lambda: not window.progress.isVisible() and bool(steps), timeout=WAIT_MS)
    out = tmp_path / "out"
    assert steps and all(step == (f"Cancelling exporting into {out}…", False) for step in steps), steps
