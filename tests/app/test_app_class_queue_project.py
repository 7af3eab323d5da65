"""Class changes of ours that wait behind our merge's rewrite of the project (queued in the annotator)
belong to the project they were asked in: another project opened, or this one closed, drops them (said
in one line); a window closed makes them before its job thread stops. And what is said around the queue."""
from __future__ import annotations

import threading

from PySide6 import QtCore, QtWidgets

from qgn.project import Project

from studio_steps import WAIT_MS
from test_app_class_concurrency import hold_jobs, settle
from test_app_project_concurrency import saved_project, two_windows


def held_rewrite(monkeypatch):
    """The project's rewrite by a class change held until ``gate`` is set (``started`` once it runs)."""
    import qgn.project_class_edit as pce
    real = pce.apply_class_edit
    started, gate = threading.Event(), threading.Event()

    def held(*a, **k):
        started.set()
        gate.wait(WAIT_MS / 1000)
        return real(*a, **k)

    monkeypatch.setattr(pce, "apply_class_edit", held)
    return started, gate


def merging(qtbot, windows, samples, model_path, folder, monkeypatch):
    """A window on a saved project at ``folder`` whose merge of 'pole' into 'sky' is in the project's
    rewrite (held: set the gate to let it go); the status messages shown from then on."""
    win = windows(folder=folder)
    saved_project(qtbot, win, samples, model_path, folder)
    win.jobs.wait_idle()
    started, gate = held_rewrite(monkeypatch)
    shown = []
    win.statusBar().messageChanged.connect(shown.append)
    assert win.annotator.classes.names[5] == "pole"
    win.annotator.remove_class(5, to=0)
    qtbot.waitUntil(started.is_set, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not win.annotator.class_change_pending(), timeout=WAIT_MS)
    return win, gate, shown


def run_out(qtbot, win, rounds=10):
    for _ in range(rounds):
        qtbot.wait(100)
        win.jobs.wait_idle()
        QtWidgets.QApplication.processEvents()


def test_a_change_queued_in_one_project_is_not_made_in_the_next(qtbot, windows, samples, model_path, tmp_path,
                                                                 monkeypatch):
    """Fails before: the delete of 'building' asked in P (waiting for P's rewrite) was made in Q once
    Q was opened (Q's class deleted, its pixels of it to void)."""
    p_folder, q_folder = tmp_path / "P", tmp_path / "Q"
    win, gate, shown = merging(qtbot, windows, samples, model_path, p_folder, monkeypatch)
    Project.create(q_folder, [samples[1]], Project.open(p_folder).classes)
    win.annotator.remove_class(3, None)  # delete 'building' in P: waits
    threading.Timer(0.3, gate.set).start()
    assert win.projects.open_project(q_folder)
    run_out(qtbot, win)
    assert win.projects.project.root == q_folder
    assert "building" in Project.open(q_folder).classes.names
    assert "building" in Project.open(p_folder).classes.names  # not made (P is no longer open): said
    assert "pole" not in Project.open(p_folder).classes.names  # the merge under way in P is in
    assert not win.annotator._queued_edits
    assert not win.annotator.class_undo  # P's merge is not undone in Q
    said = [m for m in shown if m.startswith("Not made")]
    assert len(said) == 1 and "Delete class 'building'" in said[0] and "P is no longer open" in said[0]


def test_project_closed_with_a_change_queued(qtbot, windows, samples, model_path, tmp_path, monkeypatch):
    """Fails before: after File > Close project the queued rename was made in the window without a project
    (said done, its undo step on the list) and the project kept 'road', nothing said."""
    folder = tmp_path / "shared"
    win, gate, shown = merging(qtbot, windows, samples, model_path, folder, monkeypatch)
    win.annotator.rename_class(2, "street")  # waits
    threading.Timer(0.3, gate.set).start()
    assert win.projects.close_project()
    run_out(qtbot, win)
    assert win.projects.project is None
    assert Project.open(folder).classes.names[2] == "road"
    assert "street" not in win.annotator.classes.names
    assert not win.annotator.class_undo  # (the merge's step is of the closed project's files)
    assert not [m for m in shown if m.startswith("Rename 'road'")]
    said = [m for m in shown if m.startswith("Not made")]
    assert len(said) == 1 and "Rename 'road' to 'street'" in said[0]


def test_window_closed_with_a_merge_queued(qtbot, windows, samples, model_path, tmp_path, monkeypatch):
    """Fails before: the second merge (told it waits) was replayed after the job thread stopped: lost,
    with a failure banner in the closed window."""
    folder = tmp_path / "shared"
    win, gate, shown = merging(qtbot, windows, samples, model_path, folder, monkeypatch)
    win.annotator.remove_class(3, to=2)  # merge 'building' into 'road': waits
    assert win.annotator._queued_edits
    threading.Timer(0.3, gate.set).start()
    win.close()
    QtWidgets.QApplication.processEvents()
    names = Project.open(folder).classes.names
    assert "pole" not in names and "building" not in names and "road" in names
    assert not [m for m in shown if "Cannot" in m or "Not made" in m]


def test_window_closed_with_a_rename_queued(qtbot, windows, samples, model_path, tmp_path, monkeypatch):
    folder = tmp_path / "shared"
    win, gate, shown = merging(qtbot, windows, samples, model_path, folder, monkeypatch)
    win.annotator.rename_class(2, "street")
    threading.Timer(0.3, gate.set).start()
    win.close()
    QtWidgets.QApplication.processEvents()
    assert Project.open(folder).classes.names[2] == "street"
    assert not [m for m in shown if "Cannot" in m or "Not made" in m]


def ticking(win):
    """A 20 ms timer of the UI thread: the ticks it makes, each noting whether the window took input while
    the close waited for our class changes (a tick after that wait, the window closing, notes False)."""
    ticks = []
    timer = QtCore.QTimer(win)
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(win._finishing_class_work and (
        win.centralWidget().isEnabled() or win.menuBar().isEnabled())))
    timer.start()
    return timer, ticks


def test_a_close_that_waits_for_our_class_changes_keeps_the_ui_thread_running(qtbot, windows, samples, model_path,
                                                                             tmp_path, monkeypatch):
    """Fails before: the close waited for the whole held rewrite in one wait_idle on the UI thread - no
    timer tick, no paint, nothing said for as long as it took. Now the UI thread's timer ticks during a
    1-s held rewrite, the status bar says what the close waits for, the window takes no input meanwhile,
    and a second close asked during the wait changes nothing (the first goes on)."""
    folder = tmp_path / "shared"
    win, gate, shown = merging(qtbot, windows, samples, model_path, folder, monkeypatch)
    win.annotator.rename_class(2, "street")  # waits
    timer, ticks = ticking(win)
    again = []
    QtCore.QTimer.singleShot(100, lambda: again.append(win.close()))
    threading.Timer(1.0, gate.set).start()
    assert win.close()
    timer.stop()
    assert len(ticks) > 10
    from qgn_studio.window_close import CLOSING_CLASS_WORK

    assert len(again) == 1 and not any(ticks)  # the second close came during the wait; no input meanwhile
    assert CLOSING_CLASS_WORK in shown
    assert win.threads_stopped and win.centralWidget().isEnabled() and win.menuBar().isEnabled()
    assert Project.open(folder).classes.names[2] == "street"
    assert not [m for m in shown if "Cannot" in m or "Not made" in m]


def test_a_terminate_that_waits_for_our_class_changes_keeps_the_ui_thread_running(
        qtbot, windows, samples, model_path, tmp_path, monkeypatch):
    """SIGTERM's close (``terminate``) makes the waiting rename too, the UI thread's timer ticking meanwhile
    (fails before: no tick while the held rewrite ran)."""
    folder = tmp_path / "shared"
    win, gate, shown = merging(qtbot, windows, samples, model_path, folder, monkeypatch)
    win.annotator.rename_class(2, "street")
    timer, ticks = ticking(win)
    threading.Timer(1.0, gate.set).start()
    win.terminate()
    qtbot.waitUntil(lambda: win.threads_stopped, timeout=WAIT_MS)
    timer.stop()
    assert len(ticks) > 10
    assert Project.open(folder).classes.names[2] == "street"
    assert not win.annotator._queued_edits


def test_changes_asked_twice_and_one_made_impossible_by_ours(qtbot, windows, samples, model_path, tmp_path,
                                                            monkeypatch):
    """Fails before: the same rename asked again while it waits (the list still shows 'road') was queued
    twice, the second failing as if another window had renamed 'road'; the waiting status went after 6 s."""
    folder = tmp_path / "P"
    win, gate, shown = merging(qtbot, windows, samples, model_path, folder, monkeypatch)
    ann = win.annotator
    status = []
    win.statusBar().messageChanged.connect(status.append)
    ann.rename_class(2, "street")
    ann.rename_class(2, "street")  # asked again: it waits already
    assert len(ann._queued_edits) == 1
    assert status[-1].endswith("“Rename 'road' to 'street'”")
    assert win.statusBar().currentMessage() == status[-1]
    ann.rename_class(2, "avenue")  # ours before it renames 'road': this one cannot be made
    gate.set()
    settle(qtbot, win)
    assert Project.open(folder).classes.names[2] == "street"
    failed = [m for m in shown if m.startswith("Cannot")]
    assert len(failed) == 1
    assert failed[0].startswith("Cannot make “Rename 'road' to 'avenue'” (it waited")
    assert "one of yours that waited before it" in failed[0]


def test_a_second_recolour_to_another_colour_is_not_taken_for_the_first_asked_again(
        qtbot, windows, samples, model_path, tmp_path, monkeypatch):
    """Fails before: both recolours of 'building' are described "Recolour 'building'", and the second
    (blue, the user changed their mind) was dropped as the first asked again - the project ended red.
    The same recolour asked twice still waits once."""
    folder = tmp_path / "P"
    win, gate, shown = merging(qtbot, windows, samples, model_path, folder, monkeypatch)
    ann = win.annotator
    ann.recolour_class(3, (255, 0, 0))
    ann.recolour_class(3, (255, 0, 0))  # asked again: it waits already
    assert len(ann._queued_edits) == 1
    ann.recolour_class(3, (0, 0, 255))
    assert len(ann._queued_edits) == 2
    gate.set()
    settle(qtbot, win)
    project = Project.open(folder)
    assert project.classes.names[3] == "building"
    assert tuple(project.classes.palette[3]) == (0, 0, 255)
    assert tuple(ann.classes.palette[3]) == (0, 0, 255)
    assert not [m for m in shown if "Cannot" in m or "Not made" in m]


def test_red_blue_red_while_they_wait_ends_red(qtbot, windows, samples, model_path, tmp_path, monkeypatch):
    """Fails before (a fourth review's repro): the third recolour (red again) was compared with every waiting
    change, matched the first (red) and was dropped as asked again - blue, made after it, won. Only the
    latest waiting change counts as the same one asked again."""
    folder = tmp_path / "P"
    win, gate, shown = merging(qtbot, windows, samples, model_path, folder, monkeypatch)
    ann = win.annotator
    for colour in ((255, 0, 0), (0, 0, 255), (255, 0, 0)):  # the user's last choice: red again
        ann.recolour_class(3, colour)
    assert len(ann._queued_edits) == 3
    gate.set()
    settle(qtbot, win)
    assert tuple(Project.open(folder).classes.palette[3]) == (255, 0, 0)
    assert tuple(ann.classes.palette[3]) == (255, 0, 0)
    assert not [m for m in shown if "Cannot" in m or "Not made" in m]


def test_undo_refused_while_another_windows_change_is_followed(qtbot, windows, samples, model_path, tmp_path):
    """Fails before: the refusal said 'Try the undo again in a moment', then the reload cleared the list."""
    folder = tmp_path / "shared"
    first, second = two_windows(qtbot, windows, samples, model_path, folder)
    for timer in (second.projects.watch, second.projects.timer):
        timer.stop()
    second.annotator.recolour_class(1, (1, 2, 3))
    settle(qtbot, second)
    assert len(second.annotator.class_undo) == 1
    first.annotator.rename_class(7, "barrier")
    first.jobs.wait_idle()
    shown = []
    second.statusBar().messageChanged.connect(shown.append)
    release = hold_jobs(second)
    second.projects.reload_changed_classes()  # as the watch does: the reload's job queued
    second.annotator.undo_class_edit()
    release.set()
    settle(qtbot, second)
    assert not second.annotator.class_undo
    assert not [m for m in shown if "again in a moment" in m]
    assert [m for m in shown if "another window's or command's class change is being followed" in m
            and "can no longer be undone" in m]


def test_a_change_waiting_for_another_windows_change_and_dropped_by_opening_another_project_is_said(
        qtbot, windows, samples, model_path, tmp_path):
    """(Checked, held: not silent.) Ours waits while another window's change is followed; the user opens Q:
    ours is not made in either project, and that stays said over the image after Q's own messages."""
    folder, q_folder = tmp_path / "shared", tmp_path / "Q"
    first, second = two_windows(qtbot, windows, samples, model_path, folder)
    for timer in (second.projects.watch, second.projects.timer):
        timer.stop()
    Project.create(q_folder, [samples[1]], Project.open(folder).classes)
    first.annotator.rename_class(7, "barrier")
    first.jobs.wait_idle()
    release = hold_jobs(second)
    second.projects.reload_changed_classes()  # as the watch does: the reload's job queued
    second.annotator.rename_class(2, "street")  # waits for it
    assert second.annotator._queued_edits
    assert second.projects.open_project(q_folder)
    release.set()
    settle(qtbot, second)
    assert Project.open(folder).classes.names[2] == "road" and Project.open(q_folder).classes.names[2] == "road"
    said = [text for text, _kind in second.canvas.banner.messages.values() if text.startswith("Not made")]
    assert len(said) == 1 and "street" in said[0] and "shared is no longer open" in said[0]
