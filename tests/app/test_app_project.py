"""Persistence in QGN Studio (offscreen): autosave after edits and restore after a crash (with and
without a project), save and reopen a project, a save that fails (a full disk), closing with unsaved
edits asks, and the export dialog's files re-import to the same label maps.

A "crash" is a window whose annotations are dropped without saving or discarding (the files on
disk stay exactly as a killed process leaves them); a second window then finds them.
"""
from __future__ import annotations

import os

import numpy as np

from PySide6 import QtCore, QtWidgets
from studio_steps import WAIT_MS, hold, paint, painted_and_saved, start_annotating


SIZE = (64, 96)
SAMPLE_COUNT, SAMPLE_SIZE = 2, SIZE  # the samples fixture


def scratch_autosaves(user_state) -> list:
    """The autosave files without a project: in the scratch projects (one per class set) of the
    per-user scratch folder."""
    return list((user_state / "scratch").glob("*/.autosave/*.qgt"))


def test_autosave_then_restore_after_a_crash_without_project(qtbot, windows, samples, model_path, user_state):
    first = windows()
    session = start_annotating(qtbot, first, [samples[0]], model_path)
    paint(first, 3, 6, [(4, 4), (60, 4)])
    assert session.dirty and first.projects.timer.isActive()  # the debounce started
    with qtbot.waitSignal(first.projects.autosaved, timeout=WAIT_MS):
        pass
    edited = session.label.copy()
    autosaves = scratch_autosaves(user_state)
    assert len(autosaves) == 1
    windows.crash(first)

    second = windows(recover="restore")
    second.start([], str(model_path))  # nothing opened: the restore brings the image back
    qtbot.waitUntil(lambda: second.docs and second.docs[0].annotation is not None, timeout=WAIT_MS)
    restored = second.docs[0].annotation
    np.testing.assert_array_equal(restored.label, edited)
    assert restored.dirty and restored.origin == "recovered"

    windows.crash(second)
    third = windows(recover="discard")
    third.start([samples[0]], str(model_path))
    qtbot.wait(200)
    assert not scratch_autosaves(user_state)
    assert third.docs[0].annotation is None


def test_a_scratch_autosave_another_window_discarded_is_written_again(qtbot, windows, samples, model_path,
                                                                       user_state):
    # two windows without a project share the scratch project: the second's start offers the
    # first's autosave (it cannot tell a live window from a crashed one) and the user discards it.
    # The first, still open with those unsaved edits, autosaves them again, so a crash of it later
    # still finds them
    from qgn.project import Project

    first = windows()
    session = start_annotating(qtbot, first, [samples[0]], model_path)
    paint(first, 3, 6, [(4, 4), (60, 4)])
    with qtbot.waitSignal(first.projects.autosaved, timeout=WAIT_MS):
        pass
    edited = session.label.copy()
    second = windows(recover="discard")
    second.start([samples[1]], str(model_path))
    second.jobs.wait_idle()
    assert not scratch_autosaves(user_state)  # discarded, as the user chose
    scratch, = (user_state / "scratch").iterdir()  # the scratch project of the model's classes

    def autosaved_again() -> bool:
        project = Project.open(scratch)
        image = project.image_for(samples[0])
        return project.autosave_path(image).is_file() and np.array_equal(project.recover(image), edited)

    qtbot.waitUntil(autosaved_again, timeout=WAIT_MS)


def test_project_save_reopen_and_restore_autosave(qtbot, windows, samples, model_path, tmp_path):
    folder = tmp_path / "project"
    first = windows(folder=folder)
    session = start_annotating(qtbot, first, samples, model_path)
    paint(first, 2, 5, [(10, 10), (50, 30)])
    first.annotator.set_done(True)
    with qtbot.waitSignal(first.projects.saved, timeout=WAIT_MS):
        assert first.projects.save()  # no project yet: created in `folder` (asked), then saved
    saved = session.label.copy()
    assert not session.dirty and (folder / "project.json").is_file()
    assert len(list((folder / "annotations").glob("*.qgt"))) == 1
    paint(first, 0, 1, [(1, 1), (30, 1)])  # edited after saving: only the autosave has it
    with qtbot.waitSignal(first.projects.autosaved, timeout=WAIT_MS):
        pass
    newer = session.label.copy()
    windows.crash(first)

    second = windows(recover="restore")
    second.start([folder], str(model_path))
    assert second.projects.project is not None and len(second.docs) == 2
    assert second.docs[0].done and not second.docs[1].done
    qtbot.waitUntil(lambda: second.docs[0].annotation is not None, timeout=WAIT_MS)
    np.testing.assert_array_equal(second.docs[0].annotation.label, newer)
    assert second.docs[0].annotation.dirty
    with qtbot.waitSignal(second.projects.saved, timeout=WAIT_MS):
        second.projects.save()
    windows.crash(second)

    third = windows(recover="restore")
    third.start([folder], str(model_path))
    assert not third.projects.project.recoverable()
    qtbot.waitUntil(lambda: third.docs[0].annotation is not None, timeout=WAIT_MS)  # the saved one, read
    np.testing.assert_array_equal(third.docs[0].annotation.label, newer)
    assert not third.docs[0].annotation.dirty
    assert not np.array_equal(saved, newer)


def test_start_after_a_crash_reopens_the_project_and_offers_its_autosave(qtbot, windows, samples, model_path, tmp_path):
    folder = tmp_path / "crashed"
    first = windows(folder=folder)
    session = start_annotating(qtbot, first, [samples[1]], model_path)
    assert first.projects.new_project()
    paint(first, 5, 4, [(40, 40)])
    with qtbot.waitSignal(first.projects.autosaved, timeout=WAIT_MS):
        pass
    edited = session.label.copy()
    windows.crash(first)

    second = windows(recover="restore")
    second.start([samples[0]], str(model_path))  # whatever it is asked to open, the crash comes first
    assert second.projects.project is not None and second.projects.project.root == folder.resolve()
    qtbot.waitUntil(lambda: second.docs[0].annotation is not None, timeout=WAIT_MS)
    np.testing.assert_array_equal(second.docs[0].annotation.label, edited)
    second.projects.ask_unsaved = lambda count, what: "save"
    second.close()  # a normal close: the next start opens what it is asked to
    third = windows()
    third.start([samples[0]], str(model_path))
    assert third.projects.project is None and third.docs[0].path == samples[0].resolve()


def test_a_crash_right_after_new_project_keeps_the_unsaved_edits(qtbot, windows, samples, model_path, tmp_path):
    # unsaved edits autosaved in the scratch project, then File > New project: their autosave moves
    # into the project at once (before the scratch one goes), so a crash then loses nothing
    folder = tmp_path / "new"
    first = windows(folder=folder)
    session = start_annotating(qtbot, first, [samples[0]], model_path)
    paint(first, 3, 6, [(4, 4), (60, 4)])
    with qtbot.waitSignal(first.projects.autosaved, timeout=WAIT_MS):
        pass
    edited = session.label.copy()
    assert first.projects.new_project() and session.dirty
    windows.crash(first)  # before any further stroke

    second = windows(recover="restore")
    second.start([], str(model_path))
    assert second.projects.project is not None and second.projects.project.root == folder.resolve()
    qtbot.waitUntil(lambda: second.docs and second.docs[0].annotation is not None, timeout=WAIT_MS)
    np.testing.assert_array_equal(second.docs[0].annotation.label, edited)
    assert second.docs[0].annotation.dirty


def test_steady_strokes_do_not_put_the_autosave_off(qtbot, windows, samples, model_path):
    # a stroke a second for minutes must not leave everything unsaved: the autosave comes
    # AUTOSAVE_DELAY_MS after the first edit not yet autosaved, later strokes do not restart the wait
    win = windows()
    session = start_annotating(qtbot, win, [samples[0]], model_path)
    timer = win.projects.timer
    timer.setInterval(600_000)  # never fires during the test: only its deadline is looked at
    timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)  # a coarse one's deadline moves by up to 5 %
    before = session.version
    paint(win, 3, 6, [(4, 4), (60, 4)])
    first_deadline = timer.remainingTime()
    assert session.version > before and timer.isActive()
    qtbot.waitUntil(lambda: timer.remainingTime() < first_deadline, timeout=WAIT_MS)  # some time passed
    before = session.version
    paint(win, 3, 6, [(4, 40), (60, 40)])
    second_deadline = timer.remainingTime()
    assert session.version > before and timer.isActive()  # an edit
    assert second_deadline < first_deadline  # not put off by the second stroke
    timer.stop()


def test_an_autosave_that_no_longer_fits_its_image_is_kept_not_used(qtbot, windows, samples, model_path, tmp_path):
    # the app was killed with unsaved edits; meanwhile the image file was replaced by a larger one.
    # The restored map does not fit: it is not shown on the image (nor saved so), the user is told,
    # and when the image is started over the old autosave moves to conflicts/, never overwritten
    from PIL import Image

    from qgn.project import Project
    from qgn.quadtree.label_io import read_label_file

    folder = tmp_path / "changed"
    first = windows(folder=folder)
    session = start_annotating(qtbot, first, [samples[0]], model_path)
    assert first.projects.new_project()
    paint(first, 3, 6, [(4, 4), (60, 4)])
    with qtbot.waitSignal(first.projects.autosaved, timeout=WAIT_MS):
        pass
    edited = session.label.copy()
    windows.crash(first)
    height, width = edited.shape
    Image.new("RGB", (width + 32, height + 16), (90, 120, 60)).save(samples[0])
    autosave = Project.open(folder).autosave_path(Project.open(folder).images[0])
    kept = autosave.read_bytes()

    second = windows(recover="restore")
    warnings = []
    second.workspace.message.connect(lambda text, kind, key: warnings.append(text))
    second.start([folder], str(model_path))
    qtbot.waitUntil(lambda: any("cannot be used" in w and f"{width}×{height}" in w for w in warnings), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: second.current is not None and second.current.result is not None, timeout=WAIT_MS)
    second.jobs.wait_idle()
    assert second.docs[0].annotation is None and autosave.read_bytes() == kept
    second.annotator.set_mode(True)
    second.annotator.start_from("prediction")  # the user starts the image over, then edits it
    qtbot.waitUntil(lambda: second.docs[0].annotation is not None, timeout=WAIT_MS)
    paint(second, 3, 2, [(4, 40), (60, 40)])
    with qtbot.waitSignal(second.projects.autosaved, timeout=WAIT_MS):
        pass
    second.jobs.wait_idle()
    project = Project.open(folder)
    parked = [read_label_file(path, project.classes) for path in (folder / "conflicts").glob("*.qgt")]
    assert any(np.array_equal(label, edited) for label in parked), "the recovered edits are gone"


def test_closing_with_unsaved_edits_asks(qtbot, windows, samples, model_path, tmp_path):
    win = windows(unsaved="cancel", folder=tmp_path / "p")
    start_annotating(qtbot, win, [samples[0]], model_path)
    paint(win, 4, 2, [(5, 5)])
    asked = []
    win.projects.ask_unsaved = lambda count, what: asked.append((count, what)) or "cancel"
    win.close()
    assert asked == [(1, "closing")] and win.isVisible()
    win.projects.ask_unsaved = lambda count, what: "save"
    win.close()
    assert not win.isVisible()
    assert len(list((tmp_path / "p" / "annotations").glob("*.qgt"))) == 1


def test_export_dialog_then_reimport_is_identical(qtbot, windows, samples, model_path, tmp_path):
    from qgn.formats import FORMATS, import_annotation

    win = windows(folder=tmp_path / "proj")
    start_annotating(qtbot, win, samples, model_path)
    paint(win, 1, 7, [(3, 3), (90, 60)])
    win.annotator.tools.set_tool("erase")
    paint(win, 3, 0, [(40, 40)])
    labels = {0: win.docs[0].annotation.label.copy()}
    win.images.set_current(1)
    qtbot.waitUntil(lambda: win.docs[1].annotation is not None, timeout=WAIT_MS)
    labels[1] = win.docs[1].annotation.label.copy()  # unedited: the prediction
    win.docs[1].annotation.mark_unsaved()
    dialog = win.show_export()  # creates the project (folder asked), then the dialog
    assert dialog is not None and win.projects.project is not None
    dialog.set_formats(list(FORMATS))
    out = tmp_path / "out"
    dialog.folder.setText(str(out))
    with qtbot.waitSignal(dialog.exported, timeout=WAIT_MS) as done:
        dialog.export_button.click()
    assert done.args[0] and dialog.progress.value() == dialog.progress.maximum()
    project = win.projects.project
    for index, label in labels.items():
        key = project.image_for(win.docs[index].path).key
        stem = win.docs[index].path.stem
        for name, fmt in FORMATS.items():
            if fmt.read is None:  # dataset formats (one JSON for all images, a tree): read by their own tests
                assert list((out / name).rglob(f"*{fmt.suffix}")), f"{name}: nothing written"
                continue
            file_stem = stem if fmt.image_names else key
            path = (out / name / "SegmentationClass" / f"{file_stem}.png") if name in ("cvat", "voc") \
                else out / name / f"{file_stem}{fmt.suffix}"
            assert path.is_file(), path
            np.testing.assert_array_equal(import_annotation(path, project.classes, name), label, err_msg=name)
    QtWidgets.QApplication.processEvents()


def test_edits_are_autosaved_while_a_long_export_runs(qtbot, windows, samples, model_path, tmp_path, monkeypatch):
    # an export of a big project takes minutes and the dialog is not modal: strokes made meanwhile
    # must be autosaved, not queued behind the export (a crash would lose them all)
    import qgn.project_export

    started, release = hold(monkeypatch, qgn.project_export, "export_project")
    win = windows(folder=tmp_path / "proj")
    session = start_annotating(qtbot, win, [samples[0]], model_path)
    dialog = win.show_export()
    dialog.folder.setText(str(tmp_path / "out"))
    try:
        dialog.export_button.click()
        qtbot.waitUntil(started.is_set, timeout=WAIT_MS)
        paint(win, 3, 6, [(4, 4), (60, 4)])
        edited = session.label.copy()
        with qtbot.waitSignal(win.projects.autosaved, timeout=WAIT_MS):
            pass
        assert dialog.running and not release.is_set()  # the export is still under way
        project = win.projects.project
        np.testing.assert_array_equal(project.recover(project.images[0]), edited)
    finally:
        release.set()
    qtbot.waitUntil(lambda: not dialog.running, timeout=WAIT_MS)


def test_edits_are_autosaved_while_the_statistics_are_counted(qtbot, windows, samples, model_path, tmp_path,
                                                              monkeypatch):
    # counting a big project's classes (the statistics dialog, the list's class filter) reads every
    # saved annotation: minutes for thousands; autosaves must not wait for it
    import qgn.project_stats

    started, release = hold(monkeypatch, qgn.project_stats, "count_classes")
    win = windows(folder=tmp_path / "proj")
    session = start_annotating(qtbot, win, [samples[0]], model_path)
    assert win.projects.new_project()
    counted = []
    try:
        win.projects.statistics(counted.append)
        qtbot.waitUntil(started.is_set, timeout=WAIT_MS)
        paint(win, 3, 6, [(4, 4), (60, 4)])
        with qtbot.waitSignal(win.projects.autosaved, timeout=WAIT_MS):
            pass
        assert not counted  # still counting
        project = win.projects.project
        np.testing.assert_array_equal(project.recover(project.images[0]), session.label)
    finally:
        release.set()
    qtbot.waitUntil(lambda: bool(counted), timeout=WAIT_MS)


def test_a_failed_autosave_is_tried_again_without_another_edit(qtbot, windows, samples, model_path, tmp_path,
                                                                monkeypatch):
    # a full disk: the autosave fails and says so; once there is room again the edits are
    # autosaved by themselves, so a crash then loses nothing even if the user made no further stroke
    import errno

    from qgn.project import Project

    full = {"on": True}
    real_autosave = Project.autosave

    def autosave(self, *args, **kwargs):
        if full["on"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_autosave(self, *args, **kwargs)

    monkeypatch.setattr(Project, "autosave", autosave)
    win = windows(folder=tmp_path / "proj")
    session = start_annotating(qtbot, win, [samples[0]], model_path)
    assert win.projects.new_project()
    win.projects.retry.setInterval(50)
    warnings, autosaved, status = [], [], []
    win.workspace.message.connect(lambda text, kind, key: warnings.append(text))
    win.workspace.status.connect(lambda text, ms: status.append(text))
    win.projects.autosaved.connect(autosaved.append)
    paint(win, 3, 6, [(4, 4), (60, 4)])
    qtbot.waitUntil(lambda: sum("Autosave failed" in w for w in status) >= 3, timeout=WAIT_MS)  # tried again
    assert session.needs_autosave and not autosaved  # still only in memory, and never said to be autosaved
    # the banner once (it came back at every retry, over the image): the repeats in the status line
    assert sum("Autosave failed" in w for w in warnings) == 1, warnings
    full["on"] = False  # room again; no stroke follows
    with qtbot.waitSignal(win.projects.autosaved, timeout=WAIT_MS):
        pass
    project = win.projects.project
    np.testing.assert_array_equal(project.recover(project.images[0]), session.label)



def test_a_scratch_folder_a_full_disk_kept_from_being_made_is_made_once_there_is_room(qtbot, windows, samples,
                                                                                      model_path, user_state,
                                                                                      monkeypatch):
    # without a project: the scratch project cannot be made at the first autosave (a full disk).
    # That is a warning, not a passing status line, and autosave is not off for the rest of the
    # session: once there is room the edits are autosaved without another stroke, so a crash then
    # loses nothing
    import errno

    import qgn_studio.scratch

    made, full = qgn_studio.scratch.scratch_project, {"on": True}

    def scratch_project(base, classes):
        if full["on"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(base))
        return made(base, classes)

    monkeypatch.setattr(qgn_studio.scratch, "scratch_project", scratch_project)
    win = windows()
    win.projects.retry.setInterval(50)
    warnings = []
    win.workspace.message.connect(lambda text, kind, key: warnings.append(text))
    session = start_annotating(qtbot, win, [samples[0]], model_path)
    paint(win, 3, 6, [(4, 4), (60, 4)])
    qtbot.waitUntil(lambda: any("No autosave without a project" in w for w in warnings), timeout=WAIT_MS)
    assert any(os.strerror(errno.ENOSPC) in w for w in warnings), warnings
    assert session.needs_autosave and not scratch_autosaves(user_state)
    full["on"] = False  # room again; no stroke follows
    with qtbot.waitSignal(win.projects.autosaved, timeout=WAIT_MS):
        pass
    edited = session.label.copy()
    windows.crash(win)

    second = windows(recover="restore")
    second.start([], str(model_path))
    qtbot.waitUntil(lambda: second.docs and second.docs[0].annotation is not None, timeout=WAIT_MS)
    np.testing.assert_array_equal(second.docs[0].annotation.label, edited)



def test_the_retry_of_a_scratch_project_a_full_disk_refused_reads_no_project_on_the_ui_thread(
        qtbot, windows, samples, model_path, user_state, monkeypatch):
    """Without a project, the scratch project of the edits' class set could not be made (a full
    disk): every 10 s retry looked for it on the UI thread - opening every scratch project (30-450
    ms with a few large ones) once per image waiting - and showed the banner again. The search runs
    on the file thread, once a retry, and the banner is shown once; the repeats go to the status line."""
    import errno
    import threading

    from qgn.classes import ClassSet
    from qgn.project import Project

    scratch = user_state / "scratch"
    Project.create(scratch / "classes-other", [samples[0]], ClassSet(("c0", "b")))  # another class set's
    opened_on_ui = []
    real_open, real_create = Project.open.__func__, Project.create.__func__

    def open_(cls, root, *args):
        if threading.current_thread() is threading.main_thread():
            opened_on_ui.append(str(root))
        return real_open(cls, root, *args)

    def create(cls, root, *args, **kwargs):
        if "scratch" in str(root) and "other" not in str(root):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(root / "project.json"))
        return real_create(cls, root, *args, **kwargs)

    win = windows()
    start_annotating(qtbot, win, samples[:3], model_path)
    monkeypatch.setattr(Project, "open", classmethod(open_))
    monkeypatch.setattr(Project, "create", classmethod(create))
    win.projects.retry.setInterval(50)
    banners, status = [], []
    win.workspace.message.connect(lambda text, kind, key: banners.append(text))
    win.workspace.status.connect(lambda text, ms: status.append(text))
    paint(win, 2, 1, [(5, 40), (60, 40)])
    qtbot.waitUntil(lambda: sum("No autosave without a project" in t for t in status) >= 4, timeout=WAIT_MS)
    assert opened_on_ui == []
    assert sum("No autosave without a project" in b for b in banners) == 1, banners


def test_an_export_whose_save_first_failed_exports_nothing_and_says_why(qtbot, windows, samples, model_path,
                                                                        tmp_path, monkeypatch):
    """Export saves the edits first; when that save fails (a full disk) the export would hold the
    old saved annotation while the dialog said "Wrote N files": it stops instead and says so, and
    once there is room the export holds what is on screen."""
    import errno

    from qgn.formats import import_annotation
    from qgn.project import Project

    win, session = painted_and_saved(qtbot, windows, samples, model_path, tmp_path / "project", 6)
    def disk_full(self, image, label, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.annotation_path(image)))

    monkeypatch.setattr(Project, "save_annotation", disk_full)
    paint(win, 0, 1, [(1, 1), (30, 1)])
    on_screen = session.label.copy()
    dialog = win.show_export()
    dialog.set_formats(["png"])
    out = tmp_path / "out"
    dialog.folder.setText(str(out))
    dialog.export_button.click()
    qtbot.waitUntil(lambda: "Export failed" in dialog.log.text(), timeout=WAIT_MS)
    assert "could not be saved" in dialog.log.text() and win.docs[0].name in dialog.log.text()
    win.jobs.wait_idle()
    assert not out.exists() and session.dirty

    monkeypatch.undo()  # room again
    with qtbot.waitSignal(dialog.exported, timeout=WAIT_MS):
        dialog.export_button.click()
    exported, = (out / "png").glob(f"{win.docs[0].path.stem}*.png")
    np.testing.assert_array_equal(import_annotation(exported, win.projects.project.classes, "png"), on_screen)



def test_a_save_whose_fsync_fails_names_the_file_and_what_to_do_and_keeps_the_last_good_copy(
        qtbot, windows, samples, model_path, tmp_path, monkeypatch):
    """An I/O error at the fsync of the saved file (a failing disk or its connection): the warning
    names the file, the reason and what to do, in words ("[Errno 5] …" was Python's); the last good
    save is intact, nothing half-written is left, the edits stay unsaved and save once the disk works."""
    import errno

    from qgn.fileio import is_temporary
    from qgn.project import Project

    folder = tmp_path / "project"
    win, session = painted_and_saved(qtbot, windows, samples[:1], model_path, folder, 6)
    saved_file, = (folder / "annotations").glob("*.qgt")
    good = saved_file.read_bytes()
    warnings = []
    win.workspace.message.connect(lambda text, kind, key: warnings.append(text))
    fsync = os.fsync

    def failing(fd):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fsync", failing)
    paint(win, 0, 1, [(1, 1), (30, 1)])
    edited = session.label.copy()
    win.projects.save()
    qtbot.waitUntil(lambda: any("Saving failed" in w for w in warnings), timeout=WAIT_MS)
    said = next(w for w in warnings if "Saving failed" in w)
    assert str(saved_file) in said and os.strerror(errno.EIO) in said and "check it" in said, said
    assert "[Errno" not in said, said
    assert saved_file.read_bytes() == good and session.dirty
    assert not [f for f in folder.rglob("*") if is_temporary(f.name)]
    monkeypatch.setattr(os, "fsync", fsync)  # the disk works again
    with qtbot.waitSignal(win.projects.saved, timeout=WAIT_MS):
        win.projects.save()
    win.jobs.wait_idle()
    project = Project.open(folder)
    np.testing.assert_array_equal(project.load_annotation(project.images[0]), edited)


# --------------------------------------------------------------------------- class edits (issue #14)
def test_rename_then_reopen_keeps_the_saved_annotation(qtbot, windows, samples, model_path, tmp_path):
    folder = tmp_path / "renamed"
    first, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 6)
    saved = session.label.copy()
    old_name = first.annotator.classes.names[6]
    first.annotator.rename_class(6, "barrier")
    first.jobs.wait_idle()
    assert first.annotator.class_actions[6].text() == "barrier"  # the Class menu says names
    assert old_name not in [a.text() for a in first.annotator.class_actions]
    assert (folder / "annotations.g1").is_dir() and (folder / "annotations").is_symlink()  # a stable path
    windows.crash(first)

    second = windows()
    second.start([folder], str(model_path))
    assert second.projects.project.classes.names[6] == "barrier"
    qtbot.waitUntil(lambda: second.docs[0].annotation is not None, timeout=WAIT_MS)
    np.testing.assert_array_equal(second.docs[0].annotation.label, saved)  # no restart from the prediction
    assert not second.docs[0].annotation.dirty and not second.annotator.unreadable


def test_scratch_restore_after_a_rename(qtbot, windows, samples, model_path, tmp_path):
    first = windows()
    session = start_annotating(qtbot, first, [samples[0]], model_path)
    paint(first, 3, 6, [(4, 4), (60, 4)])
    with qtbot.waitSignal(first.projects.autosaved, timeout=WAIT_MS):
        pass
    edited = session.label.copy()
    first.annotator.rename_class(6, "barrier")
    first.jobs.wait_idle()
    windows.crash(first)

    second = windows(recover="restore")
    second.start([], str(model_path))
    qtbot.waitUntil(lambda: second.docs and second.docs[0].annotation is not None, timeout=WAIT_MS)
    np.testing.assert_array_equal(second.docs[0].annotation.label, edited)
    assert second.docs[0].annotation.classes.names[6] == "barrier"


def test_merge_in_a_project_remaps_open_and_saved_maps_and_undoes(qtbot, windows, samples, model_path, tmp_path):
    from qgn.project import Project

    folder = tmp_path / "merged"
    win = windows(folder=folder)
    session = start_annotating(qtbot, win, samples, model_path)
    paint(win, 2, 5, [(10, 10), (50, 30)])
    with qtbot.waitSignal(win.projects.saved, timeout=WAIT_MS):
        assert win.projects.save()
    before = session.label.copy().astype(np.int64)
    names = win.annotator.classes.names
    assert (before == 5).any()
    win.annotator.remove_class(5, to=0)  # merge class 5 into class 0
    win.jobs.wait_idle()
    qtbot.waitUntil(lambda: len(win.annotator.class_undo) == 1, timeout=WAIT_MS)  # the project's inverse
    want = np.where(before == 5, 0, np.where(before > 5, before - 1, before))
    np.testing.assert_array_equal(win.docs[0].annotation.label, want)
    project = Project.open(folder)
    assert project.classes.names == names[:5] + names[6:]
    image = project.image_for(samples[0])
    np.testing.assert_array_equal(project.load_annotation(image), want)
    win.annotator.undo_class_edit()  # the open maps are remapped on the job thread, then the project
    qtbot.waitUntil(lambda: win.annotator.classes.names == names, timeout=WAIT_MS)
    win.jobs.wait_idle()
    np.testing.assert_array_equal(Project.open(folder).load_annotation(image), before)
    np.testing.assert_array_equal(win.docs[0].annotation.label, before)  # the open map got the pixels back too


def test_a_save_while_a_merge_remaps_the_open_maps_writes_each_map_with_its_own_classes(qtbot, windows, samples,
                                                                                          model_path, tmp_path):
    """The open maps of a merge are remapped on the job thread (they take no edit meanwhile); a save
    in between writes the map as it is, of the old classes, into the project of the old classes, and
    the project's rewrite (after the remap) brings it into the new ones: nothing of the old ids in the
    new classes, nor the reverse."""
    from qgn.project import Project

    folder = tmp_path / "save-during-merge"
    win = windows(folder=folder)
    session = start_annotating(qtbot, win, samples, model_path)
    paint(win, 2, 5, [(10, 10), (50, 30)])
    with qtbot.waitSignal(win.projects.saved, timeout=WAIT_MS):
        assert win.projects.save()
    paint(win, 2, 4, [(60, 10), (90, 40)])  # unsaved
    before = session.label.copy().astype(np.int64)
    names = win.annotator.classes.names
    win.annotator.remove_class(5, to=0)  # merge class 5 into class 0
    assert win.annotator.class_change_pending() and win.annotator.classes.names == names
    with qtbot.waitSignal(win.projects.saved, timeout=WAIT_MS):
        assert win.projects.save()
    qtbot.waitUntil(lambda: len(win.annotator.class_undo) == 1, timeout=WAIT_MS)  # the project's inverse
    win.jobs.wait_idle()
    want = np.where(before == 5, 0, np.where(before > 5, before - 1, before))
    np.testing.assert_array_equal(win.docs[0].annotation.label, want)
    project = Project.open(folder)
    assert project.classes.names == names[:5] + names[6:]
    np.testing.assert_array_equal(project.load_annotation(project.image_for(samples[0])), want)
    assert not win.docs[0].annotation.dirty


def test_new_project_with_classes_from_a_palette(qtbot, windows, samples, model_path, tmp_path):
    from qgn_studio.class_dialog import ClassSetDialog, palette_files

    palette = next(p for p in palette_files() if p.stem == "camvid")
    dialog = ClassSetDialog(None)
    dialog.source.setCurrentIndex([t for t, _ in dialog.sources].index("Palette: camvid"))
    assert dialog.classes().names[-1] == "bicyclist" and dialog.classes().ignore_index == 11
    dialog.set_text("road\nbarrier 10 20 30\nignore: 255\n")  # typed
    assert dialog.classes().names == ("road", "barrier") and dialog.classes().palette[1] == (10, 20, 30)
    dialog.set_text("ignore: what")
    assert not dialog.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok).isEnabled()
    dialog.set_text("road\n")
    big = tmp_path / "video.txt"  # a wrong pick: 2 GiB, read no further than a class list goes
    big.write_text("sky\n")
    os.truncate(big, 2 << 30)
    dialog.sources.append(("a file", big))
    dialog.source.addItem("a file")
    dialog.source.setCurrentIndex(len(dialog.sources) - 1)
    assert "video.txt is over 1 MiB" in dialog.message.text()
    assert dialog.classes().names == ("road",)  # the text stays as it was
    dialog.close()

    win = windows(folder=tmp_path / "camvid-project")
    win.start(samples, str(model_path))
    qtbot.waitUntil(lambda: win.current is not None and win.current.result is not None, timeout=WAIT_MS)
    chosen = []
    win.projects.ask_classes = lambda current: chosen.append(current) or ClassSetDialog.parse(palette)
    assert win.projects.new_project()
    assert chosen and win.projects.project.classes.names[:2] == ("sky", "building")
    assert win.annotator.classes.names[0] == "sky" and win.annotator.class_actions[1].text() == "building"
    win.annotator.set_mode(True)
    qtbot.waitUntil(lambda: win.current.annotation is not None, timeout=WAIT_MS)
    label = win.current.annotation.label  # the model's prediction mapped by name (sky, road, …; others ignore)
    assert set(np.unique(label).tolist()) <= {0, 1, 2, 3, 5, 6, 7, 11}


def test_a_save_that_fails_keeps_the_edits_says_why_and_autosaves_them(qtbot, windows, samples, model_path, tmp_path,
                                                                         monkeypatch):
    """Ctrl+S onto a full disk: the saved file keeps its last good content, the image stays
    unsaved, a warning names the reason, the edits go to the autosave; once there is room, the next
    save writes them. Then the same with the autosave failing too: nothing is marked saved."""
    import errno

    from qgn.project import Project

    folder = tmp_path / "project"
    win = windows(folder=folder)
    session = start_annotating(qtbot, win, samples[:1], model_path)
    paint(win, 2, 5, [(10, 10), (50, 30)])
    with qtbot.waitSignal(win.projects.saved, timeout=WAIT_MS):
        assert win.projects.save()
    saved_file = next((folder / "annotations").glob("*.qgt"))
    good_bytes = saved_file.read_bytes()
    first = session.label.copy()
    warnings = []
    win.workspace.message.connect(lambda text, kind, key: warnings.append(text))

    def disk_full(self, image, label, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(saved_file))

    monkeypatch.setattr(Project, "save_annotation", disk_full)
    paint(win, 0, 1, [(1, 1), (30, 1)])
    newer = session.label.copy()
    assert not np.array_equal(newer, first)
    win.projects.save()
    win.jobs.wait_idle()
    qtbot.waitUntil(lambda: any("Saving failed" in w for w in warnings), timeout=WAIT_MS)
    assert any(os.strerror(errno.ENOSPC) in w for w in warnings), warnings
    assert session.dirty and win.projects.unsaved()  # not marked saved
    assert saved_file.read_bytes() == good_bytes  # the last good save is intact
    with qtbot.waitSignal(win.projects.autosaved, timeout=WAIT_MS):
        pass  # the failed save's edits are autosaved again
    autosave = Project.open(folder)
    image = autosave.images[0]
    np.testing.assert_array_equal(autosave.recover(image), newer)

    monkeypatch.undo()  # room again
    with qtbot.waitSignal(win.projects.saved, timeout=WAIT_MS):
        win.projects.save()
    win.jobs.wait_idle()
    assert not session.dirty
    np.testing.assert_array_equal(Project.open(folder).load_annotation(image), newer)

    # both writes failing: the edits stay in the window, unsaved, and closing would ask
    monkeypatch.setattr(Project, "save_annotation", disk_full)
    monkeypatch.setattr(Project, "autosave", disk_full)
    paint(win, 1, 2, [(5, 40), (40, 40)])
    last = session.label.copy()
    warnings.clear()
    win.projects.save()
    win.jobs.wait_idle()
    qtbot.waitUntil(lambda: any("Saving failed" in w for w in warnings), timeout=WAIT_MS)
    qtbot.wait(300)  # the autosave timer fires (50 ms here) and fails too
    win.jobs.wait_idle()
    assert any("Autosave failed" in w for w in warnings), warnings
    assert session.dirty and win.projects.unsaved()
    np.testing.assert_array_equal(session.label, last)
    np.testing.assert_array_equal(Project.open(folder).load_annotation(image), newer)
    asked = []
    win.projects.ask_unsaved = lambda count, what: asked.append(count) or "cancel"
    win.close()  # closing asks about the unsaved image, and "cancel" keeps the window and the edits
    assert asked == [1] and win.isVisible()
    np.testing.assert_array_equal(win.docs[0].annotation.label, last)


def test_a_saved_annotation_that_no_longer_fits_its_image_is_kept_when_the_image_is_started_over(
        qtbot, windows, samples, model_path, tmp_path):
    # the image file was replaced by another of the same name and another size after its annotation
    # was saved: the saved map is not used ("It is kept as it is"); the user starts the image over and
    # saves. The saved annotation of the old image must survive that save (in conflicts/), not vanish.
    from PIL import Image

    from qgn.project import Project
    from qgn.quadtree.label_io import read_label_file

    folder = tmp_path / "replaced"
    first = windows(folder=folder)
    session = start_annotating(qtbot, first, [samples[0]], model_path)
    assert first.projects.new_project()
    paint(first, 3, 6, [(4, 4), (60, 4)])
    with qtbot.waitSignal(first.projects.saved, timeout=WAIT_MS):
        assert first.projects.save()
    first.jobs.wait_idle()
    saved = session.label.copy()
    first.close()
    height, width = saved.shape
    Image.new("RGB", (width + 32, height + 16), (90, 120, 60)).save(samples[0])

    second = windows()
    warnings = []
    second.workspace.message.connect(lambda text, kind, key: warnings.append(text))
    second.start([folder], str(model_path))
    qtbot.waitUntil(lambda: any("cannot be used" in w and f"{width}×{height}" in w for w in warnings), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: second.current is not None and second.current.result is not None, timeout=WAIT_MS)
    second.jobs.wait_idle()
    second.annotator.set_mode(True)
    second.annotator.start_from("prediction")  # the user starts the image over, then edits and saves it
    qtbot.waitUntil(lambda: second.docs[0].annotation is not None, timeout=WAIT_MS)
    paint(second, 3, 2, [(4, 40), (60, 40)])
    with qtbot.waitSignal(second.projects.saved, timeout=WAIT_MS):
        assert second.projects.save()
    second.jobs.wait_idle()
    project = Project.open(folder)
    assert project.load_annotation(project.images[0]).shape == (height + 16, width + 32)
    kept = [read_label_file(path, project.classes) for path in folder.glob("*/*.qgt") if path.parent.name in
            ("conflicts", "replaced", "removed")]
    assert any(np.array_equal(label, saved) for label in kept), "the old image's saved annotation is gone"


def test_a_saved_annotation_that_cannot_be_read_is_kept_when_the_image_is_started_over(
        qtbot, windows, samples, model_path, tmp_path):
    from qgn.project import Project

    folder = tmp_path / "unreadable"
    first = windows(folder=folder)
    start_annotating(qtbot, first, [samples[0]], model_path)
    assert first.projects.new_project()
    paint(first, 3, 6, [(4, 4), (60, 4)])
    with qtbot.waitSignal(first.projects.saved, timeout=WAIT_MS):
        assert first.projects.save()
    first.jobs.wait_idle()
    first.close()
    path = Project.open(folder).annotation_path(Project.open(folder).images[0])
    broken = path.read_bytes()[:-9]  # a file cut short (a copy that failed half-way)
    path.write_bytes(broken)

    second = windows()
    warnings = []
    second.workspace.message.connect(lambda text, kind, key: warnings.append(text))
    second.start([folder], str(model_path))
    qtbot.waitUntil(lambda: any("cannot be read" in w for w in warnings), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: second.current is not None and second.current.result is not None, timeout=WAIT_MS)
    second.jobs.wait_idle()
    second.annotator.set_mode(True)
    second.annotator.start_from("prediction")
    qtbot.waitUntil(lambda: second.docs[0].annotation is not None, timeout=WAIT_MS)
    paint(second, 3, 2, [(4, 40), (60, 40)])
    with qtbot.waitSignal(second.projects.saved, timeout=WAIT_MS):
        assert second.projects.save()
    second.jobs.wait_idle()
    assert [p.read_bytes() for p in (folder / "conflicts").glob("*.qgt")] == [broken], "the file that was not used"


def test_an_autosave_that_cannot_be_read_is_kept_when_the_image_is_started_over(
        qtbot, windows, samples, model_path, tmp_path):
    # a crash left an autosave cut short (a full disk, a bad copy); the next start offers it, the
    # restore fails ("It is kept as it is"), the user starts the image over, edits and saves. The
    # autosave must survive that (in conflicts/), not be overwritten by the first autosave of the new
    # edits and then removed by the save: the restore had taken it for this window's own autosave.
    from studio_steps import crashed_with_autosave_cut_short

    folder = tmp_path / "cut"
    broken = crashed_with_autosave_cut_short(qtbot, windows, samples, model_path, folder)
    second = windows(recover="restore")
    warnings = []
    second.workspace.message.connect(lambda text, kind, key: warnings.append(text))
    second.start([], str(model_path))
    qtbot.waitUntil(lambda: any("autosave cannot be read" in w for w in warnings), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: second.current is not None and second.current.result is not None, timeout=WAIT_MS)
    second.jobs.wait_idle()
    assert second.docs[0].annotation is None  # not started over silently
    second.annotator.set_mode(True)
    second.annotator.start_from("prediction")
    qtbot.waitUntil(lambda: second.docs[0].annotation is not None, timeout=WAIT_MS)
    paint(second, 3, 2, [(4, 40), (60, 40)])
    second.projects.autosave_now()
    second.jobs.wait_idle()
    with qtbot.waitSignal(second.projects.saved, timeout=WAIT_MS):
        assert second.projects.save()
    second.jobs.wait_idle()
    kept = [p for p in folder.rglob("*.qgt") if p.read_bytes() == broken]
    assert kept and kept[0].parent.name == "conflicts", "the autosave that could not be read is gone"
