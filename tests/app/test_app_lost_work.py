"""No lost work in the app, fourth round: autosaves are offered and restored whatever took the place
of the annotations folder."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from studio_steps import WAIT_MS, paint, painted_and_saved, start_annotating

SAMPLE_COUNT, SAMPLE_SIZE = 2, (64, 96)  # the samples fixture



def edited_since_save(win, session):
    """One stroke of class 1 over ``win``'s saved map (the edits a test then loses or keeps): the map after it."""
    paint(win, 2, 1, [(1, 1), (30, 1)])
    return session.label.copy()


def restored_at_next_start(qtbot, windows, model_path, folder, edited) -> None:
    """A new window started on ``folder``, restoring what it is offered, shows ``edited`` as its first image's map."""
    second = windows(recover="restore")
    second.start([folder], str(model_path))
    qtbot.waitUntil(lambda: second.docs and second.docs[0].annotation is not None, timeout=WAIT_MS)
    second.jobs.wait_idle()
    np.testing.assert_array_equal(second.docs[0].annotation.label, edited)

def test_autosaves_are_restored_when_a_plain_file_took_the_annotations_folder(qtbot, windows, samples, model_path,
                                                                              tmp_path):
    """A sync tool or a script left a plain file named annotations: the project's autosaves were not
    offered (comparing them with the saved files raised), nor restorable (their base could not be
    read): the unsaved edits of the crashed session stayed hidden in .autosave/."""
    folder = tmp_path / "project"
    first, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    paint(first, 0, 1, [(1, 1), (30, 1)])
    with qtbot.waitSignal(first.projects.autosaved, timeout=WAIT_MS):
        pass
    newer = session.label.copy()
    windows.crash(first)
    shutil.rmtree(folder / "annotations")
    (folder / "annotations").write_text("not a folder")

    second = windows(recover="restore")
    second.start([folder], str(model_path))
    qtbot.waitUntil(lambda: second.docs[0].annotation is not None, timeout=WAIT_MS)
    second.jobs.wait_idle()
    np.testing.assert_array_equal(second.docs[0].annotation.label, newer)
    assert second.docs[0].annotation.dirty and second.docs[0].annotation.origin == "recovered"
    assert (folder / ".autosave").is_dir() and len(list((folder / ".autosave").glob("*.qgt"))) == 1


def test_edits_a_project_cannot_take_are_autosaved_beside_it_and_offered_back(qtbot, windows, samples, model_path,
                                                                             tmp_path):
    """project.json became unreadable (a sync tool, a half-copied backup) while the window had unsaved
    edits: every autosave was refused ("nothing is written into it until it is fixed") and a crash
    then lost the edits. They go to the project's stand-in in the scratch folder meanwhile, are
    offered when the fixed project is opened again, and leave it once the project has them."""
    from qgn.project import Project
    from qgn_studio.scratch import stand_in_folder

    folder = tmp_path / "project"
    first, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    good = (folder / "project.json").read_bytes()
    (folder / "project.json").write_bytes(good[: len(good) // 2])  # cut short
    warnings = []
    first.workspace.message.connect(lambda text, kind, key: warnings.append(text))
    paint(first, 0, 1, [(1, 1), (30, 1)])
    edits = session.label.copy()
    spare = stand_in_folder(first.projects.scratch_path, folder)
    qtbot.waitUntil(lambda: (spare / "project.json").is_file() and bool(Project.open(spare).recoverable()),
                    timeout=WAIT_MS)
    first.jobs.wait_idle()  # the warning comes with the job's answer, delivered by the event loop
    qtbot.waitUntil(lambda: any("Autosave failed" in w and str(spare) in w for w in warnings), timeout=WAIT_MS)
    windows.crash(first)

    (folder / "project.json").write_bytes(good)  # fixed
    second = windows(recover="restore")
    second.start([folder], str(model_path))
    qtbot.waitUntil(lambda: second.docs[0].annotation is not None, timeout=WAIT_MS)
    second.jobs.wait_idle()
    np.testing.assert_array_equal(second.docs[0].annotation.label, edits)
    assert second.docs[0].annotation.dirty
    with qtbot.waitSignal(second.projects.saved, timeout=WAIT_MS):
        second.projects.save()
    second.jobs.wait_idle()
    np.testing.assert_array_equal(Project.open(folder).load_annotation(Project.open(folder).images[0]), edits)
    assert not Project.open(spare).recoverable(), "the project has them: not offered again"


def refused_then_closed(qtbot, win, samples, model_path, folder):
    """``win`` saved a project at ``folder``, whose project.json was then cut short: the next edits
    went to its stand-in; the project was closed (those edits dropped in the window, not discarded:
    a Discard moves the stand-in's copy to discarded/ too) and fixed. (the stand-in's folder, the edits)."""
    from qgn.project import Project
    from qgn_studio.scratch import stand_in_folder

    session = start_annotating(qtbot, win, samples, model_path)
    paint(win, 2, 5, [(10, 10), (50, 30)])
    with qtbot.waitSignal(win.projects.saved, timeout=WAIT_MS):
        assert win.projects.save()
    good = (folder / "project.json").read_bytes()
    (folder / "project.json").write_bytes(good[: len(good) // 2])  # cut short: autosaves are refused
    paint(win, 0, 1, [(1, 1), (30, 1)])
    edits = session.label.copy()
    spare = stand_in_folder(win.projects.scratch_path, folder)
    qtbot.waitUntil(lambda: (spare / "project.json").is_file() and bool(Project.open(spare).recoverable()),
                    timeout=WAIT_MS)
    win.jobs.wait_idle()
    confirm = win.projects.confirm_discard
    win.projects.confirm_discard = lambda *args, **kwargs: True  # no question: the stand-in keeps them
    assert win.projects.close_project()
    win.projects.confirm_discard = confirm
    (folder / "project.json").write_bytes(good)
    return spare, edits


def assert_still_offered(spare, edits):
    from qgn.project import Project

    (kept,) = Project.open(spare).recoverable()
    np.testing.assert_array_equal(Project.open(spare).recover(kept), edits)


def test_a_projects_stand_in_autosave_stays_when_another_project_takes_the_image(qtbot, windows, samples,
                                                                                model_path, tmp_path):
    """The edits a project refused are kept in its stand-in until that project has them; the window
    knew them by image path only, so after closing the project a save of the same image into another
    project removed the first project's stand-in autosave: offered nowhere any more."""
    from qgn.project import Project

    folder, other = tmp_path / "project", tmp_path / "other"
    first = windows(folder=folder)
    spare, edits = refused_then_closed(qtbot, first, samples, model_path, folder)
    start_annotating(qtbot, first, samples, model_path)  # the same images, in another project
    paint(first, 2, 3, [(20, 20), (40, 40)])
    first.projects.ask_folder = lambda title, new: other
    with qtbot.waitSignal(first.projects.saved, timeout=WAIT_MS):
        assert first.projects.save()
    paint(first, 0, 4, [(5, 5), (25, 5)])
    with qtbot.waitSignal(first.projects.autosaved, timeout=WAIT_MS):
        pass
    first.jobs.wait_idle()
    assert Project.open(other).image_for(samples[0]) is not None
    assert_still_offered(spare, edits)


def test_a_projects_stand_in_autosave_stays_when_it_is_reopened_without_them(qtbot, windows, samples,
                                                                            model_path, tmp_path):
    """Reopened in the same window with its stand-in's edits not restored ("Later"), the project's
    next autosave of the image does not hold them: the stand-in keeps them."""
    folder = tmp_path / "project"
    first = windows(folder=folder)
    spare, edits = refused_then_closed(qtbot, first, samples, model_path, folder)
    first.start([folder], str(model_path))
    qtbot.waitUntil(lambda: first.current is not None and first.current.result is not None, timeout=WAIT_MS)
    first.annotator.set_mode(True)
    qtbot.waitUntil(lambda: first.current.annotation is not None, timeout=WAIT_MS)
    first.jobs.wait_idle()
    paint(first, 0, 4, [(5, 5), (25, 5)])
    with qtbot.waitSignal(first.projects.autosaved, timeout=WAIT_MS):
        pass
    first.jobs.wait_idle()
    assert first.projects.project is not None and first.projects.project.root == folder
    assert_still_offered(spare, edits)


def scratch_autosaves_left(base) -> list:
    """The autosaves in the scratch folder ``base`` that the next start would offer."""
    from qgn_studio.scratch import scratch_projects

    return [im.path.name for p in scratch_projects(base) for im in p.recoverable()]


def test_new_project_right_after_the_first_scratch_autosave_removes_it(qtbot, windows, samples, model_path,
                                                                       tmp_path):
    """Without a project the first autosave finds its scratch project on the job thread; File ▸ New
    project right after it (before its callback ran) removed the scratch autosaves of the window's
    scratch projects known by then - none: that autosave stayed, offered again at the next start
    beside the project's own."""
    win = windows(folder=tmp_path / "unused")
    start_annotating(qtbot, win, samples[:1], model_path)
    paint(win, 0, 1, [(10, 10), (60, 60)])
    win.projects.autosave_now()  # the autosave timer fired
    assert win.projects.new_project(tmp_path / "proj")  # before the autosave's callback ran
    win.jobs.wait_idle()
    qtbot.wait(50)
    win.jobs.wait_idle()
    assert scratch_autosaves_left(win.projects.scratch_path) == []
    assert win.projects.project.recoverable()  # the edits are the project's autosave now


def test_discard_at_close_discards_the_first_scratch_autosave_too(qtbot, windows, samples, model_path, tmp_path):
    """Without a project, an edit, then closing with "Discard": the close's autosave is the image's
    first (its scratch project found, the image added, on the job thread); the discard looked the
    image up on the UI thread before that, found nothing, and the autosave stayed: the discarded
    edits were offered again at the next start."""
    win = windows(folder=tmp_path / "unused")
    start_annotating(qtbot, win, samples[:1], model_path)
    paint(win, 0, 2, [(15, 15), (70, 70)])
    win.projects.ask_unsaved = lambda count, what: "discard"
    assert win.close()
    assert scratch_autosaves_left(win.projects.scratch_path) == []


def test_a_late_autosave_callback_does_not_restart_the_watch_of_a_closed_window(qtbot, windows, samples, model_path,
                                                                                tmp_path, monkeypatch):
    """Without a project, closing with "Discard": the close's autosave (the first: its scratch project
    found on the job thread) had its callback run after the window closed, which started the watch
    of the project on disk again - a 1 s timer on a closed window. The close looked for the scratch
    project twice too (its autosave and the discard's); once now."""
    import qgn_studio.scratch as scratch

    win = windows(folder=tmp_path / "unused")
    start_annotating(qtbot, win, samples[:1], model_path)
    lookups = []
    real = scratch.scratch_project
    monkeypatch.setattr(scratch, "scratch_project", lambda base, classes: lookups.append(1) or real(base, classes))
    paint(win, 0, 1, [(10, 10), (60, 60)])
    win.projects.ask_unsaved = lambda count, what: "discard"
    assert win.close()
    qtbot.wait(50)
    assert not win.projects.watch.isActive()
    assert len(lookups) == 1


def disk_full(monkeypatch) -> dict:
    """Every file write fails with ENOSPC (``qgn.fileio._staged``: every atomic write's temporary) until
    the returned dict's "full" is set False (the disk has room again)."""
    import errno

    import qgn.fileio

    real, state = qgn.fileio._staged, {"full": True}

    def staged(path, data, progress=None):
        if state["full"]:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data, progress)

    monkeypatch.setattr(qgn.fileio, "_staged", staged)
    return state


def test_a_save_on_a_full_disk_is_never_said_saved_and_the_edits_stay_to_be_saved_later(
        qtbot, windows, samples, model_path, tmp_path, monkeypatch):
    """Ctrl+S on a full disk. Fails before: after "Saving failed: … No space left on device" the status bar
    said "Saved 1 annotation in …" (the round's count, not what was saved). Now it says what was not saved;
    the saved file on disk is the one before, the edits stay in the window, unsaved (the title's mark), and
    the next Ctrl+S once the disk has room saves them."""
    from qgn.project import Project

    folder = tmp_path / "project"
    win, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    project = Project.open(folder)
    before = project.load_annotation(project.images[0]).copy()
    edited = edited_since_save(win, session)
    shown = []
    win.statusBar().messageChanged.connect(shown.append)
    disk = disk_full(monkeypatch)
    with qtbot.waitSignal(win.projects.saved, timeout=WAIT_MS) as saved:
        assert win.projects.save()
    assert saved.args == [0]
    assert [m for m in shown if m.startswith("Saving failed") and "No space left" in m]
    assert not [m for m in shown if m.startswith("Saved")], shown
    assert [m for m in shown if m.startswith("Not saved: 1 of 1")]
    project = Project.open(folder)
    np.testing.assert_array_equal(project.load_annotation(project.images[0]), before)
    assert session.dirty and "●" in win.windowTitle()
    np.testing.assert_array_equal(session.label, edited)
    disk["full"] = False
    with qtbot.waitSignal(win.projects.saved, timeout=WAIT_MS) as saved:
        assert win.projects.save()
    win.jobs.wait_idle()
    assert saved.args == [1] and not session.dirty
    project = Project.open(folder)
    np.testing.assert_array_equal(project.load_annotation(project.images[0]), edited)


def test_sigterm_with_edits_no_autosave_could_write_says_on_stderr_which_are_lost(
        qtbot, windows, samples, model_path, tmp_path, monkeypatch, capfd):
    """SIGTERM (a logout) while the disk is full, the project's and the scratch folder's: the edits cannot
    be kept anywhere. Fails before: the window ended without a word (the banner that said the autosave
    failed went with it, and the next start offers nothing). Now one line on stderr names the image and why."""
    folder = tmp_path / "project"
    win, _session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    paint(win, 2, 1, [(1, 1), (30, 1)])
    disk_full(monkeypatch)
    capfd.readouterr()
    win.terminate()
    assert win.threads_stopped
    said = [line for line in capfd.readouterr().err.splitlines() if line.startswith("qgn-studio:")]
    assert len(said) == 1 and "could not be autosaved: scene_00.png" in said[0] and "No space left" in said[0], said


def test_sigterm_after_the_disk_has_room_again_says_nothing_of_lost_edits(
        qtbot, windows, samples, model_path, tmp_path, monkeypatch, capfd):
    """(Checked, held.) An autosave that failed, then the disk has room: SIGTERM's own autosave writes the
    edits, and the next start offers them; nothing is said lost."""
    folder = tmp_path / "project"
    win, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    edited = edited_since_save(win, session)
    disk = disk_full(monkeypatch)
    win.projects.autosave_now()
    win.jobs.wait_idle()
    qtbot.waitUntil(lambda: session.needs_autosave, timeout=WAIT_MS)
    disk["full"] = False
    capfd.readouterr()
    win.terminate()
    assert "lost" not in capfd.readouterr().err
    restored_at_next_start(qtbot, windows, model_path, folder, edited)


def test_a_close_whose_save_fails_on_a_full_disk_stays_open_with_the_edits(
        qtbot, windows, samples, model_path, tmp_path, monkeypatch):
    """(Checked, held.) Close, "Save" to the unsaved edits, the disk full: the window stays open, its edits
    unsaved and said so; once there is room the same close saves them and ends."""
    from qgn.project import Project

    folder = tmp_path / "project"
    win, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    edited = edited_since_save(win, session)
    disk = disk_full(monkeypatch)
    win.projects.ask_unsaved = lambda count, what: "save"
    win.close()
    assert win.isVisible() and not win.threads_stopped
    assert session.dirty
    np.testing.assert_array_equal(session.label, edited)
    assert [text for text, _kind in win.canvas.banner.messages.values() if "No space left" in text]
    disk["full"] = False
    win.close()
    assert win.threads_stopped
    project = Project.open(folder)
    np.testing.assert_array_equal(project.load_annotation(project.images[0]), edited)


def test_sigterm_while_a_save_fails_on_the_projects_full_disk_keeps_the_edits_beside_it(
        qtbot, windows, samples, model_path, tmp_path, monkeypatch):
    """(Checked, held.) Ctrl+S, then SIGTERM while that save fails (the project's disk full, the scratch
    folder's not): the edits go to the project's stand-in in the scratch folder, and the next start offers
    and restores them."""
    import qgn.fileio

    folder = tmp_path / "project"
    win, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    edited = edited_since_save(win, session)
    real = project_disk_full(monkeypatch, folder)
    assert win.projects.save()  # (queued: it fails as the window ends)
    win.terminate()
    assert win.threads_stopped
    monkeypatch.setattr(qgn.fileio, "_staged", real)
    restored_at_next_start(qtbot, windows, model_path, folder, edited)


def test_sigterm_behind_a_long_job_never_says_lost_the_edits_its_autosave_then_writes(
        qtbot, windows, samples, model_path, tmp_path, monkeypatch, capfd):
    """SIGTERM while a long job (a rewrite, an export) holds the job thread past the close's capped waits,
    its autosave queued behind it: the autosave runs as the threads stop, and the next start restores the
    edits. Fails before: stderr said they "could not be autosaved ... they are lost with it" (judged
    before the job thread was drained). Now nothing is said lost."""
    import threading

    folder = tmp_path / "project"
    win, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    win.CLOSE_WAIT_S = 0.05  # (this window's: the long job outlasts every capped wait of the close)
    edited = edited_since_save(win, session)
    release = threading.Event()
    win.jobs.submit(lambda: release.wait(60), lambda _r: None, label="A long rewrite")
    leave = win._leave_if_writing

    def leave_then_release():  # the capped waits are over: the job ends, the autosave behind it runs
        leave()
        release.set()

    monkeypatch.setattr(win, "_leave_if_writing", leave_then_release)
    capfd.readouterr()
    win.terminate()
    assert win.threads_stopped and release.is_set()
    err = capfd.readouterr().err
    assert "lost" not in err and "could not be autosaved" not in err, err
    restored_at_next_start(qtbot, windows, model_path, folder, edited)


def test_sigterm_never_gives_an_autosave_failure_that_a_later_autosave_got_past_as_why(
        qtbot, windows, samples, model_path, tmp_path, monkeypatch, capfd):
    """An autosave failed (a full disk), the next one wrote the edits; later edits have nowhere to be
    autosaved at SIGTERM. Fails before: the stderr line gave the old "No space left on device" as why
    (the last failure was never cleared). Now the line names the image without that old reason."""
    from PySide6 import QtCore

    folder = tmp_path / "project"
    win, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    paint(win, 2, 1, [(1, 1), (30, 1)])
    disk = disk_full(monkeypatch)
    messages = []
    win.workspace.message.connect(lambda text, kind, key: messages.append(text))
    win.projects.autosave_now()
    qtbot.waitUntil(lambda: any("Autosave failed" in m and "No space left" in m for m in messages), timeout=WAIT_MS)
    win.jobs.wait_idle()
    QtCore.QCoreApplication.processEvents()
    disk["full"] = False
    with qtbot.waitSignal(win.projects.autosaved, timeout=WAIT_MS):
        win.projects.autosave_now()
    assert not session.needs_autosave
    paint(win, 3, 1, [(2, 2), (20, 2)])
    monkeypatch.setattr(win.projects, "_where_to_autosave", lambda _session, _lookups: None)  # nowhere now
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # (where SIGTERM's last resort writes them)
    capfd.readouterr()
    win.terminate()
    said = [line for line in capfd.readouterr().err.splitlines() if line.startswith("qgn-studio:")]
    assert len(said) == 1 and "could not be autosaved: scene_00.png" in said[0], said
    assert "No space left" not in said[0], said


def project_disk_full(monkeypatch, folder):
    """Every file write into ``folder`` (the project) fails with ENOSPC, the scratch folder's go through;
    returns the real ``qgn.fileio._staged`` (set it back: the disk has room again)."""
    import errno

    import qgn.fileio

    real = qgn.fileio._staged

    def staged(path, data, progress=None):
        if str(path).startswith(str(folder)):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data, progress)

    monkeypatch.setattr(qgn.fileio, "_staged", staged)
    return real


def test_a_ctrl_s_queued_behind_a_long_job_failing_on_the_projects_full_disk_at_sigterm_keeps_the_edits(
        qtbot, windows, samples, model_path, tmp_path, monkeypatch, capfd):
    """Ctrl+S queued behind a long job (a rewrite, an export), the project's disk full, SIGTERM: the save
    runs only as the threads stop, and fails. Fails before: the save had marked the edits autosaved, so the
    close's autosaves passed them over; its failure took them back for the autosave only for the writing
    to stop at once - no autosave ran, the next start offered nothing (the edits lost). Now they are
    autosaved once more before the job thread stops (into the stand-in: the project's disk is full) and
    the next start restores them; nothing is said lost."""
    import threading

    import qgn.fileio

    folder = tmp_path / "project"
    win, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    win.CLOSE_WAIT_S = 0.05  # (this window's: the long job outlasts every capped wait of the close)
    edited = edited_since_save(win, session)
    release = threading.Event()
    win.jobs.submit(lambda: release.wait(60), lambda _r: None, label="A long rewrite")
    real = project_disk_full(monkeypatch, folder)
    assert win.projects.save()  # queued behind the long job
    leave = win._leave_if_writing

    def leave_then_release():  # the close's autosaves and capped waits are over: the job ends, the save fails
        leave()
        release.set()

    monkeypatch.setattr(win, "_leave_if_writing", leave_then_release)
    capfd.readouterr()
    win.terminate()
    assert win.threads_stopped and release.is_set()
    assert "lost" not in capfd.readouterr().err
    monkeypatch.setattr(qgn.fileio, "_staged", real)
    restored_at_next_start(qtbot, windows, model_path, folder, edited)


def test_sigterm_never_says_lost_the_edits_kept_in_the_projects_stand_in(
        qtbot, windows, samples, model_path, tmp_path, monkeypatch, capfd):
    """SIGTERM, the project's disk full, the scratch folder's not: the close's autosave keeps the edits in the
    project's stand-in, restored at the next start. Fails before: stderr said they "could not be autosaved
    ... they are lost with it" (the project's autosave failed, the stand-in's write was not counted). Now
    nothing is said."""
    import qgn.fileio

    folder = tmp_path / "project"
    win, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    edited = edited_since_save(win, session)
    real = project_disk_full(monkeypatch, folder)
    capfd.readouterr()
    win.terminate()
    assert win.threads_stopped
    err = capfd.readouterr().err
    assert "lost" not in err and "could not be autosaved" not in err, err
    monkeypatch.setattr(qgn.fileio, "_staged", real)
    restored_at_next_start(qtbot, windows, model_path, folder, edited)


def test_sigterm_says_lost_the_edits_made_since_the_stand_in_kept_earlier_ones(
        qtbot, windows, samples, model_path, tmp_path, monkeypatch, capfd):
    """(Holds the line above to these very edits.) The stand-in kept the edits once (the project's disk
    full); later edits find the scratch folder's disk full too at SIGTERM: those are said lost, with why."""
    folder = tmp_path / "project"
    win, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    paint(win, 2, 1, [(1, 1), (30, 1)])
    project_disk_full(monkeypatch, folder)
    win.projects.autosave_now()
    win.jobs.wait_idle()
    qtbot.waitUntil(lambda: (str(folder), win.docs[0].path) in win.projects._spares, timeout=WAIT_MS)
    paint(win, 3, 1, [(2, 2), (20, 2)])
    disk_full(monkeypatch)
    capfd.readouterr()
    win.terminate()
    said = [line for line in capfd.readouterr().err.splitlines() if line.startswith("qgn-studio:")]
    assert len(said) == 1 and "could not be autosaved: scene_00.png" in said[0], said
    assert "No space left" in said[0], said


def kept_in_the_stand_in(qtbot, windows, samples, model_path, folder, monkeypatch):
    """A saved project whose image has later edits that the project refused (its disk full) and its stand-in in
    the scratch folder kept (``_autosave_beside``). The window, the (project root, image path) key, the real
    ``qgn.fileio._staged`` and the saved map."""
    win, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    saved = session.label.copy()
    paint(win, 2, 1, [(1, 1), (30, 1)])
    real = project_disk_full(monkeypatch, folder)
    win.projects.autosave_now()
    win.jobs.wait_idle()
    key = (str(folder), win.docs[0].path)
    qtbot.waitUntil(lambda: key in win.projects._spares, timeout=WAIT_MS)
    assert key in win.projects._kept_beside
    return win, key, real, saved


def test_discard_at_close_discards_the_edits_the_projects_stand_in_kept(qtbot, windows, samples, model_path,
                                                                        tmp_path, monkeypatch):
    """The project's disk full, the edits went to its stand-in in the scratch folder; the user closes with
    Discard. Fails before: discard_autosaves looked only in the project (and a read-only project's stand-in,
    the scratch projects), so the stand-in's copy stayed and the next start offered the discarded edits
    again. Now it moves to the stand-in's discarded/ (moved, never deleted) and the next start offers
    nothing: the saved map."""
    import qgn.fileio
    from qgn.project import DISCARDED_DIR

    folder = tmp_path / "project"
    win, key, real, saved = kept_in_the_stand_in(qtbot, windows, samples, model_path, folder, monkeypatch)
    spare = win.projects._spares[key]
    win.projects.ask_unsaved = lambda count, what: "discard"
    assert win.close() and win.threads_stopped
    assert list((spare.root / DISCARDED_DIR).glob("*.qgt"))  # kept, as every discarded autosave
    monkeypatch.setattr(qgn.fileio, "_staged", real)
    offered = []
    second = windows()
    second.projects.ask_recover = lambda question: offered.append(question.names) or "restore"
    second.start([folder], str(model_path))
    qtbot.waitUntil(lambda: second.docs and second.docs[0].annotation is not None, timeout=WAIT_MS)
    second.jobs.wait_idle()
    assert offered == []
    np.testing.assert_array_equal(second.docs[0].annotation.label, saved)


def test_the_stand_ins_kept_version_goes_with_its_entry(qtbot, windows, samples, model_path, tmp_path,
                                                       monkeypatch):
    """``_kept_beside`` (the edit version the stand-in kept, which unkept_edits trusts) goes wherever ``_spares``
    loses or replaces its entry: a save into the project (``_drop_spare``), the project closed, an autosave
    restored from the stand-in (``_recover``; a stale entry set up directly) - a stale version could hide
    later edits of the same version number from the SIGTERM line. Fails before (each stayed)."""
    import qgn.fileio

    folder = tmp_path / "project"
    win, key, real, _ = kept_in_the_stand_in(qtbot, windows, samples, model_path, folder, monkeypatch)
    monkeypatch.setattr(qgn.fileio, "_staged", real)
    assert win.projects.save()
    win.jobs.wait_idle()
    assert key not in win.projects._spares and key not in win.projects._kept_beside  # _drop_spare

    other = tmp_path / "other"
    win, key, real, _ = kept_in_the_stand_in(qtbot, windows, samples, model_path, other, monkeypatch)
    win.projects.confirm_discard = lambda *args, **kwargs: True  # closed, its edits left in the stand-in
    assert win.projects.close_project()
    win.jobs.wait_idle()
    assert key not in win.projects._spares and key not in win.projects._kept_beside  # project closed

    monkeypatch.setattr(qgn.fileio, "_staged", real)
    second = windows(recover="restore")
    second.projects.timer.setInterval(10 ** 9)  # the restored edits' autosave held off: _recover's entry stays
    second.projects._kept_beside[key] = 1  # stale: of edits no longer there
    second.start([other], str(model_path))
    qtbot.waitUntil(lambda: second.docs and second.docs[0].annotation is not None, timeout=WAIT_MS)
    second.jobs.wait_idle()
    assert second.docs[0].annotation.needs_autosave  # (held off: neither the entry nor the version moved on)
    assert key not in second.projects._kept_beside  # _recover
    assert key in second.projects._spares  # the entry _recover set


def test_new_project_on_a_disk_that_fills_after_project_json_says_the_truth_and_a_retry_goes_through(
        qtbot, windows, samples, model_path, tmp_path, monkeypatch):
    """File ▸ New project with an image marked done, the disk filling after the first project.json write.
    Fails before: project.json was written, then the done marks' second write failed; the app said
    "Cannot create a project in …" yet left that project.json, and the retry into the same folder was
    refused ("already holds a project"). Now the marks go in the one write: the project is created with
    them. With no room at all the warning says so, the folder is as it was, and a retry once there is room
    creates the project."""
    import errno

    import qgn.fileio
    from qgn.project import Project
    from studio_steps import start_annotating

    real, written = qgn.fileio._staged, []

    def staged(path, data, progress=None):
        if Path(path).name == "project.json":
            written.append(path)
            if len(written) > room["project.json writes"]:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data, progress)

    room = {"project.json writes": 1}
    monkeypatch.setattr(qgn.fileio, "_staged", staged)
    win = windows(folder=tmp_path / "proj")
    start_annotating(qtbot, win, samples[:2], model_path)
    win.docs[1].done = True
    warnings = []
    win.workspace.message.connect(lambda text, kind, key: warnings.append(text))
    assert win.projects.new_project(tmp_path / "proj")
    win.jobs.wait_idle()
    assert [im.done for im in Project.open(tmp_path / "proj").images] == [False, True]
    assert not [w for w in warnings if "Cannot create" in w], warnings

    win2 = windows(folder=tmp_path / "proj2")
    start_annotating(qtbot, win2, samples[:2], model_path)
    win2.docs[1].done = True
    warnings2 = []
    win2.workspace.message.connect(lambda text, kind, key: warnings2.append(text))
    room["project.json writes"] = len(written)  # no room at all now
    assert not win2.projects.new_project(tmp_path / "proj2")
    assert [w for w in warnings2 if "Cannot create a project" in w and "No space left" in w], warnings2
    assert not (tmp_path / "proj2").exists()
    room["project.json writes"] = 10 ** 6  # room again
    assert win2.projects.new_project(tmp_path / "proj2")
    win2.jobs.wait_idle()
    assert [im.done for im in Project.open(tmp_path / "proj2").images] == [False, True]


def test_undo_back_to_the_saved_map_moves_the_autosaves_to_discarded_never_deletes_them(
        qtbot, windows, samples, model_path, tmp_path, read_only):
    """Edits autosaved (into the project; a read-only project's into its stand-in in the scratch folder),
    then undone back to the saved map: redo still has them, in memory only. Fails before: both autosaves
    were deleted (a crash then lost the redo-able edits). Now each moves to its discarded/ folder, as a
    Discard's does (not offered at the next start; moved back by hand to restore)."""
    from qgn.project import DISCARDED_DIR
    from qgn.quadtree.label_io import read_label_file

    def autosaved_then_undone(win, session):
        edited = edited_since_save(win, session)
        with qtbot.waitSignal(win.projects.autosaved, timeout=WAIT_MS):
            win.projects.autosave_now()
        win.jobs.wait_idle()
        win.annotator.undo_action.trigger()
        win.jobs.wait_idle()
        assert not session.dirty and session.undo.canRedo()
        return edited

    folder = tmp_path / "project"
    win, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    edited = autosaved_then_undone(win, session)
    assert not list((folder / ".autosave").glob("*.qgt"))
    (kept,) = (folder / DISCARDED_DIR).glob("*.qgt")
    np.testing.assert_array_equal(read_label_file(kept, win.annotator.classes), edited)

    windows.crash(win)
    read_only(folder)
    win = windows()
    start_annotating(qtbot, win, [folder], model_path)
    edited = autosaved_then_undone(win, win.current.annotation)
    spare = win.projects._stand_in
    assert spare is not None and not spare.recoverable()
    (kept,) = (spare.root / DISCARDED_DIR).glob("*.qgt")
    np.testing.assert_array_equal(read_label_file(kept, win.annotator.classes), edited)


def test_undone_autosaves_keep_one_file_per_state_undo_redo_cycles_add_none(qtbot, windows, samples, model_path,
                                                                            tmp_path):
    """Edits autosaved, undone back to the saved map, redone, autosaved, undone - five times over, then
    again with other edits each time. Each undo keeps the autosave in discarded/ under a name of its
    bytes: the cycles without new edits keep one file (before the earlier fix every undo added one: 10
    copies), the other states one each. Fails before: one ``<key>.undone.qgt`` per image, which the next
    state replaced."""
    from qgn.project import DISCARDED_DIR
    from qgn.quadtree.label_io import read_label_file

    def autosaved_then_undone():
        with qtbot.waitSignal(win.projects.autosaved, timeout=WAIT_MS):
            win.projects.autosave_now()
        win.jobs.wait_idle()
        win.annotator.undo_action.trigger()
        win.jobs.wait_idle()
        assert not session.dirty

    def kept():
        return [read_label_file(p, win.annotator.classes) for p in sorted((folder / DISCARDED_DIR).glob("*.qgt"))]

    folder = tmp_path / "project"
    win, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    paint(win, 2, 1, [(1, 1), (30, 1)])
    states = [session.label.copy()]
    for _ in range(5):
        autosaved_then_undone()
        win.annotator.redo_action.trigger()
        assert session.dirty
    autosaved_then_undone()
    (only,) = kept()
    np.testing.assert_array_equal(only, states[0])
    for i in range(1, 4):
        paint(win, 2, 1 + i % 2, [(1, 1 + 8 * i), (30, 1 + 8 * i)])  # a new edit: the last one's redo is dropped
        states.append(session.label.copy())
        autosaved_then_undone()
        win.annotator.redo_action.trigger()
        autosaved_then_undone()
    maps = kept()
    assert len(maps) == len(states) == 4
    for state in states:  # every state, the first's too (redo lost it long ago), on disk once
        assert sum(np.array_equal(m, state) for m in maps) == 1


def test_the_close_names_each_write_still_under_way_never_an_empty_label(
        qtbot, windows, samples, model_path, tmp_path, monkeypatch, capfd):
    """A close (SIGTERM's here) whose waits a long write outlasts, an unlabelled step (a discard, the round's end of an autosave)
    queued behind it. Fails before: stderr said "a write still under way (A long rewrite; )" - an empty
    label. Now every item in the parentheses has words."""
    import re
    import threading

    folder = tmp_path / "project"
    win, _session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    win.CLOSE_WAIT_S = 0.05
    release = threading.Event()
    win.jobs.submit(lambda: release.wait(60), lambda _r: None, label="A long rewrite")
    win.jobs.submit(lambda: None)  # unlabelled
    leave = win._leave_if_writing

    def leave_then_release():
        leave()
        release.set()

    monkeypatch.setattr(win, "_leave_if_writing", leave_then_release)
    capfd.readouterr()
    win.terminate()
    assert win.threads_stopped
    (line,) = [line for line in capfd.readouterr().err.splitlines() if "still under way" in line]
    items = re.search(r"under way \((.*?)\):", line).group(1).split("; ")
    assert items[0] == "A long rewrite" and all(item.strip() for item in items), line


def test_a_close_whose_save_fails_on_the_projects_full_disk_may_close_keeping_the_autosaves(
        qtbot, windows, samples, model_path, tmp_path, monkeypatch):
    """Close, "Save", the project's disk full (the scratch folder's not). Fails before: the failed Save
    cancelled the close and Discard moved the edits to discarded/ - no way to close with them offered next
    time. Now the close asks whether to close keeping them, saying where they are (the project's stand-in
    in the scratch folder) and why the save failed; the next start reopens the project and restores them.
    Answered "stay", the window stays open with the edits."""
    import qgn.fileio
    from qgn_studio.scratch import stand_in_folder

    folder = tmp_path / "project"
    win, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    edited = edited_since_save(win, session)
    real = project_disk_full(monkeypatch, folder)
    asked = []
    win.projects.ask_unsaved = lambda count, what: "save"
    win.projects.ask_keep_unsaved = lambda count, why, where: asked.append((count, why, where)) or len(asked) > 1
    win.close()
    assert win.isVisible() and not win.threads_stopped and session.dirty  # "stay"
    win.close()
    assert win.threads_stopped
    assert len(asked) == 2 and asked[1][0] == 1 and "No space left" in asked[1][1], asked
    assert asked[1][2] == str(stand_in_folder(win.projects.scratch_path, folder)), asked
    monkeypatch.setattr(qgn.fileio, "_staged", real)
    again = windows(recover="restore")
    again.start((), str(model_path))
    qtbot.waitUntil(lambda: again.docs and again.docs[0].annotation is not None
                    and again.docs[0].annotation.dirty, timeout=WAIT_MS)
    again.jobs.wait_idle()
    np.testing.assert_array_equal(again.docs[0].annotation.label, edited)


def test_sigterm_with_both_disks_full_writes_the_edits_to_the_temporary_folder_and_says_where(
        qtbot, windows, samples, model_path, tmp_path, monkeypatch, capfd):
    """SIGTERM, the project's and the scratch folder's disks full, the system's temporary folder not. Fails
    before: stderr said the edits "are lost with it" and nothing was written. Now they are written as a .qgt
    (with its classes) into a new folder there, which the line names; it reads back as the edits. With the
    temporary folder full too, the line says them lost, and why the temporary folder could not take them."""
    import errno

    import qgn.fileio
    from qgn.quadtree.label_io import read_label_file

    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(temp))
    folder = tmp_path / "project"
    win, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    edited = edited_since_save(win, session)
    real, room = qgn.fileio._staged, {"temp": True}

    def staged(path, data, progress=None):  # every disk full but the temporary folder's
        if not (room["temp"] and str(path).startswith(str(temp))):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data, progress)

    monkeypatch.setattr(qgn.fileio, "_staged", staged)
    capfd.readouterr()
    win.terminate()
    assert win.threads_stopped
    said = [line for line in capfd.readouterr().err.splitlines() if line.startswith("qgn-studio:")]
    (kept,) = temp.glob("qgn-studio-unsaved-*/scene_00.qgt")
    assert len(said) == 1 and "could not be autosaved: scene_00.png" in said[0] and "No space left" in said[0]
    assert f"written instead to {kept.parent} (scene_00.qgt: {samples[0]})" in said[0] and "lost" not in said[0], said
    np.testing.assert_array_equal(read_label_file(kept, session.classes), edited)

    monkeypatch.setattr(qgn.fileio, "_staged", real)
    second, session = painted_and_saved(qtbot, windows, samples, model_path, tmp_path / "second", 5)
    paint(second, 2, 1, [(1, 1), (30, 1)])
    room["temp"] = False  # every disk full
    monkeypatch.setattr(qgn.fileio, "_staged", staged)
    capfd.readouterr()
    second.terminate()
    said = [line for line in capfd.readouterr().err.splitlines() if line.startswith("qgn-studio:")]
    assert len(said) == 1 and "lost with it (nor could the temporary folder take them: " in said[0], said
    assert len(list(temp.glob("qgn-studio-unsaved-*"))) == 1, "no empty folder left behind"  # (torch may put its own there)


def test_sigterms_temporary_folder_never_gives_two_images_names_one_case_insensitive_disk_takes_as_one(
        tmp_path, monkeypatch):
    """keep_in_temp with x/Scene.png, y/scene.png and z/SCENE-2.png. Fails before: Scene.qgt and scene.qgt -
    one file on a case-insensitive disk (macOS, Windows), the second replacing the first, both said written.
    Now no two names are equal case-folded, each file holds its own image's map, and each is paired with it."""
    from types import SimpleNamespace

    from qgn.classes import ClassSet
    from qgn.quadtree.label_io import read_label_file
    from qgn_studio.project_autosave import keep_in_temp

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    classes = ClassSet(("a", "b", "c"), ((1, 2, 3), (4, 5, 6), (7, 8, 9)), 255)
    docs = [SimpleNamespace(path=Path(f"/data/{d}/{n}.png"), name=f"{n}.png",
                            annotation=SimpleNamespace(label=np.full((8, 8), i, np.uint8), classes=classes))
            for i, (d, n) in enumerate([("x", "Scene"), ("y", "scene"), ("z", "SCENE-2")])]
    folder, kept, error = keep_in_temp(docs)
    files = [p.name for p in folder.iterdir()]
    assert len({name.casefold() for name in files}) == len(files) == 3, files
    assert error is None and [d for d, _ in kept] == docs
    assert sorted(name for _, name in kept) == sorted(files)
    for i, (_doc, name) in enumerate(kept):
        np.testing.assert_array_equal(read_label_file(folder / name, classes), np.full((8, 8), i))


def test_a_discard_whose_move_fails_says_so_and_the_autosave_stays_offered(
        qtbot, windows, samples, model_path, tmp_path, monkeypatch):
    """Discard the edits the project's stand-in kept (the project's disk full), the move to discarded/ failing
    (the stand-in's lock held past its timeout, a disk error). Fails before: nothing was said - the user took
    them as discarded, yet they stay and are offered at the next open. Now a warning says the move failed,
    why, and that they stay (offered again); they are still there, never deleted."""
    import errno

    from qgn.project import ANY, Project

    folder = tmp_path / "project"
    win, key, _real, _ = kept_in_the_stand_in(qtbot, windows, samples, model_path, folder, monkeypatch)
    spare = win.projects._spares[key]

    real = Project.discard_autosave

    def refuse(self, image, ours=ANY, keep=True, undone=False, aside=None):
        if self.root == spare.root:
            raise OSError(errno.EIO, "Input/output error", str(spare.root))
        return real(self, image, ours, keep, undone, aside)

    monkeypatch.setattr(Project, "discard_autosave", refuse)
    warnings = []
    win.workspace.message.connect(lambda text, kind, key: warnings.append(text))
    assert win.projects.confirm_discard("closing the images")  # the windows fixture answers "discard"
    win.jobs.wait_idle()
    qtbot.waitUntil(lambda: any("could not be moved to discarded/" in w for w in warnings), timeout=WAIT_MS)
    (said,) = [w for w in warnings if "could not be moved to discarded/" in w]
    assert "Input/output error" in said and "offered again" in said, said
    assert spare.recoverable(), "still there"


def test_an_undos_failed_move_to_discarded_says_undo_not_discard(qtbot, windows, samples, model_path, tmp_path,
                                                                  monkeypatch):
    """Undo back to the saved map, the move of the autosave to discarded/ failing (a disk error). Fails
    before: the warning said "Discarded edits could not be moved" though the user only pressed undo. Now it
    names the undo, and that the autosave stays (offered at the next start); it is still there."""
    import errno

    from qgn.project import ANY, Project

    folder = tmp_path / "project"
    win, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    paint(win, 2, 1, [(1, 1), (30, 1)])
    with qtbot.waitSignal(win.projects.autosaved, timeout=WAIT_MS):
        win.projects.autosave_now()
    win.jobs.wait_idle()

    def refuse(self, image, ours=ANY, keep=True, undone=False, aside=None):
        raise OSError(errno.EIO, "Input/output error", str(self.root))

    monkeypatch.setattr(Project, "discard_autosave", refuse)
    warnings = []
    win.workspace.message.connect(lambda text, kind, key: warnings.append(text))
    win.annotator.undo_action.trigger()
    win.jobs.wait_idle()
    qtbot.waitUntil(lambda: any("could not be moved to discarded/" in w for w in warnings), timeout=WAIT_MS)
    (said,) = [w for w in warnings if "could not be moved to discarded/" in w]
    assert "undid" in said and "Discarded edits" not in said and "Input/output error" in said, said
    assert Project.open(folder).recoverable(), "the autosave stays"


def test_an_undo_short_of_the_saved_map_keeps_the_autosave_it_writes_over(qtbot, windows, samples, model_path,
                                                                          tmp_path, read_only):
    """Two strokes autosaved (into the project; a read-only project's into its stand-in), then one undone:
    the next autosave wrote the shorter map over the one with both, and the undone stroke lived in redo,
    in memory only - a crash lost it. Fails before: nothing kept it. Now that autosave is kept in the
    discarded/ folder beside it by its bytes first (a redo and undo again adds nothing); the autosave
    holds the map on screen."""
    from qgn.project import DISCARDED_DIR
    from qgn.quadtree.label_io import read_label_file

    def two_strokes_autosaved_one_undone(win, session):
        paint(win, 2, 1, [(1, 1), (30, 1)])
        shorter = session.label.copy()
        paint(win, 2, 2, [(1, 9), (30, 9)])
        both = session.label.copy()
        for _ in range(2):  # the second round: redone, autosaved, undone again - the same states
            with qtbot.waitSignal(win.projects.autosaved, timeout=WAIT_MS):
                win.projects.autosave_now()
            win.jobs.wait_idle()
            win.annotator.undo_action.trigger()
            assert session.dirty and session.undo.canRedo()
            with qtbot.waitSignal(win.projects.autosaved, timeout=WAIT_MS):
                win.projects.autosave_now()
            win.jobs.wait_idle()
            win.annotator.redo_action.trigger()
        win.annotator.undo_action.trigger()
        return shorter, both

    def assert_kept(root, shorter, both):
        (kept,) = (root / DISCARDED_DIR).glob("*.qgt")
        np.testing.assert_array_equal(read_label_file(kept, win.annotator.classes), both)
        (autosave,) = (root / ".autosave").glob("*.qgt")
        np.testing.assert_array_equal(read_label_file(autosave, win.annotator.classes), shorter)

    folder = tmp_path / "project"
    win, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    assert_kept(folder, *two_strokes_autosaved_one_undone(win, session))

    windows.crash(win)
    read_only(folder)
    win = windows(recover="later")
    start_annotating(qtbot, win, [folder], model_path)
    maps = two_strokes_autosaved_one_undone(win, win.current.annotation)
    spare = win.projects._stand_in
    assert spare is not None
    assert_kept(spare.root, *maps)
