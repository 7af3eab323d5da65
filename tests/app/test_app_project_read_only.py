"""A project on a read-only medium, or in a folder the user may not write: it opens, says at once
that it is read-only and where edits can be kept; every failed write says so again; File ▸ New
project… then keeps the unsaved edits (and done flags) in a folder the user can write; its autosaves
go to a stand-in in the scratch folder and are offered back when it is opened again (after a
crash); nothing is written into the read-only folder."""
from __future__ import annotations


import numpy as np

from qgn.project import Project

from studio_steps import WAIT_MS, paint, painted_and_saved, start_annotating

SAMPLE_COUNT = 2  # the samples fixture


def test_a_read_only_project_opens_says_so_and_the_edits_can_be_kept_elsewhere(
        qtbot, windows, samples, model_path, tmp_path, read_only, snapshot, user_state):
    folder = tmp_path / "cdrom"
    first, _ = painted_and_saved(qtbot, windows, samples, model_path, folder, 6)
    first.jobs.wait_idle()
    first.close()
    before = snapshot(folder)
    read_only(folder)
    warnings = []
    win = windows()
    warn = win.workspace.warn
    win.workspace.warn = lambda text, key, timeout_ms=8000: (warnings.append(text), warn(text, key, timeout_ms))
    win.start([folder], str(model_path))
    qtbot.waitUntil(lambda: win.docs and win.docs[0].annotation is not None, timeout=WAIT_MS)
    assert any("read-only" in w and "New project" in w and str(folder) in w and "autosaved in" in w
               for w in warnings), warnings
    win.annotator.set_mode(True)
    paint(win, 2, 3, [(5, 40), (60, 40)])
    win.annotator.set_done(True)
    edits = win.current.annotation.label.copy()
    warnings.clear()
    win.projects.autosave_now()
    win.projects.save()
    win.jobs.wait_idle()
    qtbot.waitUntil(lambda: len(warnings) >= 2, timeout=WAIT_MS)  # done and save (the autosave goes elsewhere)
    assert all("read-only" in w and "New project" in w for w in warnings), warnings
    assert len(win.projects.unsaved()) == 1, "the edits stay, unsaved"
    assert snapshot(folder) == before, "nothing was written into the read-only folder"
    kept = tmp_path / "kept"
    assert win.projects.new_project(kept), warnings
    with qtbot.waitSignal(win.projects.saved, timeout=WAIT_MS):
        assert win.projects.save()
    win.jobs.wait_idle()
    project = Project.open(kept)
    image = project.image_for(samples[0])
    np.testing.assert_array_equal(project.load_annotation(image), edits)
    assert image.done and not win.projects.unsaved()
    stand_ins = list((user_state / "scratch").glob("read-only-*"))
    assert stand_ins and not any(Project.open(f).recoverable() for f in stand_ins), \
        "the new project holds the edits: the read-only project's autosaves are not offered again"
    warnings.clear()
    win.annotator.set_done(False)  # the new project is writable: no read-only hint any more
    win.jobs.wait_idle()
    assert not Project.open(kept).image_for(samples[0]).done and not warnings


def test_the_autosaves_of_a_read_only_project_are_kept_elsewhere_and_offered_back_for_it(
        qtbot, windows, samples, model_path, tmp_path, read_only, snapshot):
    folder, other = tmp_path / "cdrom", tmp_path / "other"
    first = windows(folder=folder)
    start_annotating(qtbot, first, samples, model_path)
    assert first.projects.new_project(folder)
    first.jobs.wait_idle()
    first.close()
    Project.create(other, samples, Project.open(folder).classes)  # the same images and classes
    before = snapshot(folder)
    read_only(folder)
    win = windows()
    start_annotating(qtbot, win, [folder], model_path)
    paint(win, 2, 3, [(5, 40), (60, 40)])
    edits = win.current.annotation.label.copy()
    with qtbot.waitSignal(win.projects.autosaved, timeout=WAIT_MS):
        pass  # the autosave a moment after the edit
    windows.crash(win)
    assert snapshot(folder) == before, "nothing was written into the read-only folder"
    offered = []
    again = windows()  # the next start reopens the project and offers its edits back
    again.projects.ask_recover = lambda question: offered.append(question) or "restore"
    again.start((), str(model_path))
    qtbot.waitUntil(lambda: again.docs and again.docs[0].annotation is not None
                    and again.docs[0].annotation.dirty, timeout=WAIT_MS)
    assert [q.names for q in offered] == [[samples[0].name]]
    assert offered[0].where() == f"Project “{folder.name}”"
    np.testing.assert_array_equal(again.docs[0].annotation.label, edits)
    assert snapshot(folder) == before
    offered.clear()
    elsewhere = windows()  # another project of the same images and classes is never offered them
    elsewhere.projects.ask_recover = lambda question: offered.append(question) or "later"
    elsewhere.start([other], str(model_path))
    qtbot.waitUntil(lambda: elsewhere.projects.project is not None and bool(elsewhere.docs), timeout=WAIT_MS)
    elsewhere.jobs.wait_idle()
    assert not offered, [q.names for q in offered]


def test_a_stand_in_a_full_disk_kept_from_being_made_is_made_once_there_is_room(
        qtbot, windows, samples, model_path, tmp_path, read_only, monkeypatch):
    """The read-only project's stand-in cannot be made at the first autosave (a full disk): said,
    and tried again without another stroke, so once there is room the edits are autosaved."""
    import errno
    import os

    import qgn_studio.scratch

    folder = tmp_path / "cdrom"
    first = windows(folder=folder)
    start_annotating(qtbot, first, samples, model_path)
    assert first.projects.new_project(folder)
    first.jobs.wait_idle()
    first.close()
    read_only(folder)
    made, full = qgn_studio.scratch.stand_in, {"on": True}

    def stand_in(base, project, create):
        if full["on"] and create:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(base))
        return made(base, project, create)

    monkeypatch.setattr(qgn_studio.scratch, "stand_in", stand_in)
    win = windows()
    win.projects.retry.setInterval(50)
    warnings = []
    win.workspace.message.connect(lambda text, kind, key: warnings.append(text))
    start_annotating(qtbot, win, [folder], model_path)
    paint(win, 2, 3, [(5, 40), (60, 40)])
    qtbot.waitUntil(lambda: any("No autosave of the read-only project" in w for w in warnings), timeout=WAIT_MS)
    assert win.current.annotation.needs_autosave
    full["on"] = False  # room again; no stroke follows
    with qtbot.waitSignal(win.projects.autosaved, timeout=WAIT_MS):
        pass
    assert not win.current.annotation.needs_autosave
