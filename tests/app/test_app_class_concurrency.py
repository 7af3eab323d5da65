"""A class edit of this window (its open maps remapped on the job thread, then the project
rewritten) meeting another window's class change, an annotation being built, an autosave, or a
failure: the two class changes serialise (the end state is both edits applied in some order), and
nothing is lost."""
from __future__ import annotations

import threading

import numpy as np
from PySide6 import QtWidgets

from qgn.project import Project

from studio_steps import WAIT_MS, paint
from test_app_project_concurrency import two_windows


def hold_jobs(win) -> threading.Event:
    """Hold ``win``'s job thread until the returned event is set (jobs submitted meanwhile queue)."""
    started, release = threading.Event(), threading.Event()

    def held():
        started.set()
        release.wait(WAIT_MS / 1000)

    win.jobs.submit(held)
    assert started.wait(WAIT_MS / 1000)
    return release


def settle(qtbot, win, rounds: int = 3) -> None:
    """Let ``win``'s jobs, callbacks and the watch's looks run out."""
    for _ in range(rounds):
        qtbot.waitUntil(lambda: not win.annotator.class_change_pending() and not win.jobs.pending()
                        and not win.projects.class_work_pending(), timeout=WAIT_MS)
        qtbot.wait(200)
        win.projects.check_project_on_disk()


def merged(m, source=5, target=0):
    """Class ``source`` merged into ``target``, the ids above ``source`` one down (a reference)."""
    m = m.astype(np.int64)
    return np.where(m == source, target, np.where(m > source, m - 1, m))


def merge_meets_rename(qtbot, windows, samples, model_path, tmp_path, reload_first: bool):
    folder = tmp_path / "shared"
    first, second = two_windows(qtbot, windows, samples, model_path, folder)
    saved = Project.open(folder).load_annotation(Project.open(folder).images[0]).astype(np.int64)
    second.annotator.set_mode(True)
    paint(second, 0, 5, [(1, 20), (40, 20)])  # unsaved strokes of the class merged
    paint(second, 0, 7, [(1, 30), (40, 30)])  # and of the class renamed elsewhere
    ours = second.docs[0].annotation.label.astype(np.int64).copy()
    names = list(second.annotator.classes.names)
    for timer in (second.projects.watch, second.projects.timer):
        timer.stop()
    release = hold_jobs(second)
    if reload_first:  # the other window's change is seen (its reload queued) before our merge
        first.annotator.rename_class(7, "barrier")
        first.jobs.wait_idle()
        second.projects.check_project_on_disk()
        second.annotator.remove_class(5, to=0)
    else:  # our merge's remap is under way when the other window's change is seen
        second.annotator.remove_class(5, to=0)
        assert second.annotator.class_change_pending()
        first.annotator.rename_class(7, "barrier")
        first.jobs.wait_idle()
        second.projects.check_project_on_disk()
    release.set()
    settle(qtbot, second)
    second.projects.watch.start()
    second.projects.timer.start()
    settle(qtbot, second)
    want = names[:5] + names[6:]
    want[6] = "barrier"  # old class 7, one down
    assert list(Project.open(folder).classes.names) == want
    assert list(second.annotator.classes.names) == want, second.annotator.classes.names
    session = second.docs[0].annotation
    np.testing.assert_array_equal(session.label, merged(ours))
    assert session.classes == second.annotator.classes
    project = Project.open(folder)
    np.testing.assert_array_equal(project.load_annotation(project.images[0]), merged(saved))
    with qtbot.waitSignal(second.projects.saved, timeout=WAIT_MS):
        assert second.projects.save()
    second.jobs.wait_idle()
    project = Project.open(folder)
    np.testing.assert_array_equal(project.load_annotation(project.images[0]), merged(ours))


def test_another_windows_class_change_seen_while_our_merge_remaps_serialises(qtbot, windows, samples, model_path,
                                                                              tmp_path):
    merge_meets_rename(qtbot, windows, samples, model_path, tmp_path, reload_first=False)


def test_our_merge_asked_while_another_windows_class_change_reloads_serialises(qtbot, windows, samples, model_path,
                                                                               tmp_path):
    merge_meets_rename(qtbot, windows, samples, model_path, tmp_path, reload_first=True)


def test_an_annotation_built_while_a_merge_remaps_arrives_in_the_new_classes(qtbot, window, samples, model_path):
    """A pressed on an image while a merge's remap is under way: the annotation was built in the class
    set of the moment (the old one: the class set changes once the maps are remapped) and installed
    after, in classes no longer in use. It is built again (or waits) in the new classes."""
    from studio_steps import start_annotating

    session = start_annotating(qtbot, window, samples, model_path)
    paint(window, 0, 5, [(1, 20), (40, 20)])
    annotator = window.annotator
    names = list(annotator.classes.names)
    other = window.docs[1]
    window.images.set_current(1)  # its prediction (then back: no annotation started on it)
    qtbot.waitUntil(lambda: other.result is not None, timeout=WAIT_MS)
    window.jobs.wait_idle()
    QtWidgets.QApplication.processEvents()
    annotator.forget([other])
    assert other.annotation is None
    release = hold_jobs(window)
    annotator.remove_class(5, to=0)
    assert annotator.class_change_pending()
    assert annotator.ensure_session(other) is None  # A on the other image: built on the job thread
    release.set()
    qtbot.waitUntil(lambda: other.annotation is not None and not annotator.class_change_pending()
                    and not window.jobs.pending(), timeout=WAIT_MS)
    window.jobs.wait_idle()
    QtWidgets.QApplication.processEvents()
    assert list(annotator.classes.names) == names[:5] + names[6:]
    assert other.annotation.classes == annotator.classes
    np.testing.assert_array_equal(other.annotation.label, annotator.start_label(other, "prediction"))
    assert session.classes == annotator.classes


def test_a_saved_annotation_read_while_a_merge_remaps_arrives_in_the_new_classes(qtbot, windows, samples, model_path,
                                                                                  tmp_path):
    """A saved annotation read while a merge's remap is under way is read in the project's old classes
    (its rewrite comes after the remap) and was installed after the class set changed: taken as a map
    of the new classes, every id above the merged class was one off. It is read again once the
    project is rewritten."""
    from test_app_project_concurrency import saved_project

    folder = tmp_path / "p"
    win = windows(folder=folder)
    saved_project(qtbot, win, samples, model_path, folder)
    win.images.set_current(1)
    qtbot.waitUntil(lambda: win.current.annotation is not None, timeout=WAIT_MS)
    paint(win, 0, 5, [(1, 20), (40, 20)])
    doc = win.docs[0]
    saved = Project.open(folder).load_annotation(Project.open(folder).images[0]).astype(np.int64)
    assert (saved > 5).any()
    win.jobs.wait_idle()
    QtWidgets.QApplication.processEvents()
    win.annotator.forget([doc])  # closed (a map budget): read again when shown
    assert doc.annotation is None
    release = hold_jobs(win)
    win.annotator.remove_class(5, to=0)
    win.projects.document_shown(doc)  # shown again: its saved annotation is read on the job thread
    release.set()
    qtbot.waitUntil(lambda: doc.annotation is not None and not win.annotator.class_change_pending(), timeout=WAIT_MS)
    win.jobs.wait_idle()
    QtWidgets.QApplication.processEvents()
    assert doc.annotation.classes == win.annotator.classes
    np.testing.assert_array_equal(doc.annotation.label, merged(saved))
    project = Project.open(folder)
    np.testing.assert_array_equal(project.load_annotation(project.images[0]), merged(saved))


def test_a_revert_whose_remap_fails_leaves_the_maps_as_before_the_failed_step(qtbot, windows, samples, model_path,
                                                                              tmp_path, monkeypatch):
    """Undo of a merge: the open maps are remapped back, then the project's rewrite fails, so the open
    maps are to go back to the merge (revert_class_edit); that remap job fails too, and is tried once
    more on the job thread - never remapped on the UI thread (~1.4 s per 24-megapixel map, with twice
    the maps' memory). The maps end as before the Undo (merged, with the project's classes), the merged
    pixels' snapshot is kept (a later undo still gives them back), and the failure is said in one line."""
    import qgn.project_class_edit as project_class_edit
    import qgn_studio.annotator_class_changes as annotator_module
    from test_app_project_concurrency import saved_project

    folder = tmp_path / "p"
    win = windows(folder=folder)
    session = saved_project(qtbot, win, samples, model_path, folder)
    paint(win, 0, 5, [(1, 20), (40, 20)])  # unsaved
    before = session.label.astype(np.int64).copy()
    annotator = win.annotator
    names = list(annotator.classes.names)
    annotator.remove_class(5, to=0)
    qtbot.waitUntil(lambda: len(annotator.class_undo) == 1, timeout=WAIT_MS)
    win.jobs.wait_idle()
    QtWidgets.QApplication.processEvents()
    np.testing.assert_array_equal(win.docs[0].annotation.label, merged(before))
    failing = []
    real_apply, real_parts = project_class_edit.apply_class_edit, annotator_module.remap_parts

    def apply(*args, **kwargs):
        failing.append(True)  # the revert's remap fails from now on
        raise OSError(28, "No space left on device")

    threads = []  # of each remap of the maps once the rewrite failed: on the UI thread?

    def parts(*args, **kwargs):  # the revert's first remap fails, the next is made
        if failing:
            threads.append(threading.current_thread() is threading.main_thread())
            if len(threads) == 1:
                raise MemoryError("cannot allocate 96 MiB")
        return real_parts(*args, **kwargs)

    monkeypatch.setattr(project_class_edit, "apply_class_edit", apply)
    monkeypatch.setattr(annotator_module, "remap_parts", parts)
    shown = []
    win.statusBar().messageChanged.connect(shown.append)
    annotator.undo_class_edit()
    qtbot.waitUntil(lambda: bool(failing) and not annotator.class_change_pending() and not win.jobs.pending(),
                    timeout=WAIT_MS)
    win.jobs.wait_idle()
    QtWidgets.QApplication.processEvents()
    qtbot.wait(200)
    want = names[:5] + names[6:]
    assert list(annotator.classes.names) == want == list(Project.open(folder).classes.names)
    session = win.docs[0].annotation
    assert session.classes == annotator.classes
    np.testing.assert_array_equal(session.label, merged(before))  # as before the failed Undo
    assert threads and not any(threads), threads  # (each map remapped on the job thread: 2 tries, none here)
    failures = [m for m in shown if "could not" in m or "Cannot" in m]
    assert len(failures) == 1 and "\n" not in failures[0], shown
    monkeypatch.setattr(project_class_edit, "apply_class_edit", real_apply)
    monkeypatch.setattr(annotator_module, "remap_parts", real_parts)
    failing.clear()
    qtbot.waitUntil(lambda: len(annotator.class_undo) == 1, timeout=WAIT_MS)  # the Undo can be tried again
    annotator.undo_class_edit()
    qtbot.waitUntil(lambda: list(annotator.classes.names) == names, timeout=WAIT_MS)
    win.jobs.wait_idle()
    QtWidgets.QApplication.processEvents()
    np.testing.assert_array_equal(win.docs[0].annotation.label, before)  # the merged pixels come back


def autosave_meets_merge(qtbot, windows, samples, model_path, tmp_path, autosave_first: bool):
    """``second`` holds unsaved strokes when ``first`` merges class 5 into 0 in the project; ``second``
    autosaves before it has seen the change (``autosave_first``) or after. The autosave read back is
    in the project's new classes, with every stroke (followed by the merge), and nothing of ``second``'s
    map is lost (nor kept in conflicts/: the merge loses no class it uses)."""
    from qgn.quadtree.label_io import read_label_file

    folder = tmp_path / "shared"
    first, second = two_windows(qtbot, windows, samples, model_path, folder)
    second.annotator.set_mode(True)
    for timer in (second.projects.watch, second.projects.timer):
        timer.stop()
    paint(second, 0, 5, [(1, 20), (40, 20)])
    paint(second, 0, 7, [(1, 30), (40, 30)])
    second.projects.timer.stop()  # (a stroke starts it)
    ours = second.docs[0].annotation.label.astype(np.int64).copy()
    names = list(second.annotator.classes.names)
    first.annotator.remove_class(5, to=0)
    qtbot.waitUntil(lambda: first.annotator.classes.num_classes == len(names) - 1, timeout=WAIT_MS)
    first.jobs.wait_idle()
    if autosave_first:  # written against the project of the old classes, which changed on disk meanwhile
        second.projects.autosave_now()  # refused (the classes changed): kept beside in a stand-in meanwhile
        second.jobs.wait_idle()
        QtWidgets.QApplication.processEvents()
        spares = dict(second.projects._spares)
        assert spares  # (kept beside: what this test is about)
    else:
        spares = {}
        second.projects.check_project_on_disk()
        qtbot.waitUntil(lambda: second.annotator.classes.num_classes == len(names) - 1, timeout=WAIT_MS)
        second.projects.autosave_now()
    second.projects.watch.start()
    settle(qtbot, second)
    second.projects.autosave_now()
    settle(qtbot, second)
    project = Project.open(folder)
    assert list(project.classes.names) == names[:5] + names[6:]
    assert second.annotator.classes == project.classes
    session = second.docs[0].annotation
    np.testing.assert_array_equal(session.label, merged(ours))
    assert session.dirty and not session.needs_autosave
    autosave = project.autosave_path(project.image_for(samples[0]))
    np.testing.assert_array_equal(read_label_file(autosave, project.classes), merged(ours))
    assert not list((folder / "conflicts").glob("*")) if (folder / "conflicts").exists() else True
    # the copy kept beside (of the old classes) while the project refused it is gone once the project has it
    beside = [stand_in.autosave_path(stand_in.image_for(path)) for (_root, path), stand_in in spares.items()]
    assert not any(p.exists() for p in beside) and not second.projects._spares, beside


def test_an_autosave_before_another_windows_merge_is_seen_is_read_back_in_the_new_classes(
        qtbot, windows, samples, model_path, tmp_path):
    autosave_meets_merge(qtbot, windows, samples, model_path, tmp_path, autosave_first=True)


def test_an_autosave_after_another_windows_merge_is_seen_is_read_back_in_the_new_classes(
        qtbot, windows, samples, model_path, tmp_path):
    autosave_meets_merge(qtbot, windows, samples, model_path, tmp_path, autosave_first=False)


def test_a_revert_that_cannot_be_made_at_all_keeps_the_maps_their_snapshot_and_says_so_once(
        qtbot, windows, samples, model_path, tmp_path, monkeypatch):
    """A merge the project refuses, whose revert fails on the job thread, and again when tried once more
    there (never on the UI thread): the open maps keep the merge with the class set they are in (nothing half-remapped), the pixels it took
    stay kept for the revert (once it can be made, the maps come back whole), and it is said in one line."""
    import qgn.project_class_edit as project_class_edit
    import qgn_studio.annotator_class_changes as annotator_module
    from test_app_project_concurrency import saved_project

    folder = tmp_path / "p"
    win = windows(folder=folder)
    session = saved_project(qtbot, win, samples, model_path, folder)
    paint(win, 0, 5, [(1, 20), (40, 20)])
    before = session.label.astype(np.int64).copy()
    annotator = win.annotator
    names = list(annotator.classes.names)
    failing = []
    real_parts = annotator_module.remap_parts

    def apply(*args, **kwargs):
        failing.append(True)
        raise OSError(28, "No space left on device")

    threads = []

    def parts(*args, **kwargs):
        if failing:
            threads.append(threading.current_thread() is threading.main_thread())
            raise MemoryError("cannot allocate 96 MiB")
        return real_parts(*args, **kwargs)

    monkeypatch.setattr(project_class_edit, "apply_class_edit", apply)
    monkeypatch.setattr(annotator_module, "remap_parts", parts)
    shown = []
    win.statusBar().messageChanged.connect(shown.append)
    annotator.remove_class(5, to=0)
    qtbot.waitUntil(lambda: bool(failing) and not annotator.class_change_pending() and not win.jobs.pending(),
                    timeout=WAIT_MS)
    win.jobs.wait_idle()
    QtWidgets.QApplication.processEvents()
    qtbot.wait(200)
    assert list(annotator.classes.names) == names[:5] + names[6:]  # the maps' classes, as they are
    assert list(Project.open(folder).classes.names) == names
    session = win.docs[0].annotation
    assert session.classes == annotator.classes
    np.testing.assert_array_equal(session.label, merged(before))
    assert threads == [False, False]  # tried twice, on the job thread
    failures = [m for m in shown if "could not" in m or "Cannot" in m]
    assert len(failures) == 1 and "\n" not in failures[0] and "No space" in failures[0] \
        and "cannot allocate" in failures[0], shown
    monkeypatch.setattr(annotator_module, "remap_parts", real_parts)
    edit = annotator.class_edit_backup
    assert edit is not None
    annotator.revert_class_edit(edit)  # tried again: the merged pixels come back
    qtbot.waitUntil(lambda: list(annotator.classes.names) == names, timeout=WAIT_MS)
    np.testing.assert_array_equal(win.docs[0].annotation.label, before)


def test_an_undo_clicked_while_a_merge_remaps_keeps_its_step(qtbot, window, samples, model_path):
    """Undo of an earlier class change clicked while a merge remaps the open maps: refused, its step kept
    where it was (below the merge's, once the merge is in) - queued, it came after the merge, on classes
    it was not made of, and was dropped. Both undos can then be made, in order."""
    from studio_steps import start_annotating

    start_annotating(qtbot, window, samples, model_path)
    paint(window, 0, 5, [(1, 20), (40, 20)])
    annotator = window.annotator
    names = list(annotator.classes.names)
    annotator.rename_class(2, "renamed")
    qtbot.waitUntil(lambda: len(annotator.class_undo) == 1, timeout=WAIT_MS)
    window.jobs.wait_idle()
    release = hold_jobs(window)
    annotator.remove_class(5, to=0)  # its remap held on the job thread
    assert annotator.class_change_pending()
    annotator.undo_class_edit()  # (the rename's, the top of the list now)
    release.set()
    qtbot.waitUntil(lambda: not annotator.class_change_pending() and not window.jobs.pending()
                    and len(annotator.class_undo) == 2, timeout=WAIT_MS)
    assert annotator.classes.names[2] == "renamed" and annotator.classes.num_classes == len(names) - 1
    annotator.undo_class_edit()  # the merge
    qtbot.waitUntil(lambda: annotator.classes.num_classes == len(names), timeout=WAIT_MS)
    window.jobs.wait_idle()
    qtbot.waitUntil(lambda: len(annotator.class_undo) == 1, timeout=WAIT_MS)
    annotator.undo_class_edit()  # the rename
    qtbot.waitUntil(lambda: list(annotator.classes.names) == names, timeout=WAIT_MS)


def test_every_class_change_queued_during_a_merge_is_made_in_order(qtbot, window, samples, model_path):
    """Class changes asked while a merge remaps wait, and all are made after it, in order (only the
    first was: a rename or recolour has no remap whose end makes the next, nor has one that cannot be
    made now - said, and the next is made)."""
    from studio_steps import start_annotating

    start_annotating(qtbot, window, samples, model_path)
    paint(window, 0, 5, [(1, 20), (40, 20)])
    annotator = window.annotator
    names = list(annotator.classes.names)
    release = hold_jobs(window)
    annotator.remove_class(5, to=0)
    assert annotator.class_change_pending()
    annotator.rename_class(2, "street")
    annotator.recolour_class(1, (1, 2, 3))
    shown = []
    window.statusBar().messageChanged.connect(shown.append)
    annotator.rename_class(2, "lane")  # of the class by its name now: renamed by the change before it
    annotator.recolour_class(3, (4, 5, 6))
    release.set()
    qtbot.waitUntil(lambda: not annotator.class_change_pending() and not window.jobs.pending()
                    and len(annotator.class_undo) == 4, timeout=WAIT_MS)
    assert list(annotator.classes.names) == names[:2] + ["street"] + names[3:5] + names[6:]
    assert tuple(annotator.classes.palette[1]) == (1, 2, 3) and tuple(annotator.classes.palette[3]) == (4, 5, 6)
    assert [m for m in shown if f"no class {names[2]!r}" in m]
    assert not annotator._queued_edits


def test_two_class_changes_refused_because_another_window_changed_the_classes_are_both_made(
        qtbot, windows, samples, model_path, tmp_path):
    """Two quick class changes of ours while another window's (not yet seen here) is in the project: the
    first is refused by the project and made again after that change is followed; the second waits for
    the first (it was made of classes the project never had, and lost, with a second message, while the
    first was said to leave "Nothing changed" and was lost too). The project ends with all three."""
    folder = tmp_path / "shared"
    first, second = two_windows(qtbot, windows, samples, model_path, folder)
    for timer in (second.projects.watch, second.projects.timer):
        timer.stop()
    first.annotator.rename_class(7, "barrier")  # the other window's change, not yet seen by second
    first.jobs.wait_idle()
    shown = []
    second.statusBar().messageChanged.connect(shown.append)
    release = hold_jobs(second)
    second.annotator.recolour_class(1, (1, 2, 3))
    second.annotator.rename_class(2, "street")
    release.set()
    settle(qtbot, second)
    second.projects.watch.start()
    settle(qtbot, second)
    project = Project.open(folder)
    assert project.classes.names[7] == "barrier" and project.classes.names[2] == "street"
    assert tuple(project.classes.palette[1]) == (1, 2, 3)
    assert second.annotator.classes == project.classes
    assert not [m for m in shown if "Nothing changed" in m or "Cannot" in m], shown
