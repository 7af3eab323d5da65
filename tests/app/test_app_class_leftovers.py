"""Class changes and the projects they belong to: the class-change history is each project's own (a
step of one project never applied in another), another writer's change that drops the history says
which steps went, and class names match as names do everywhere (a case-only rename elsewhere keeps a
waiting change of ours)."""
from __future__ import annotations

from qgn.project import Project
from qgn.project_class_edit import apply_class_edit as REAL_APPLY  # (a test holds the module's)

from studio_steps import WAIT_MS, start_annotating
from test_app_class_concurrency import hold_jobs, settle
from test_app_project_concurrency import two_windows


def merged_in_the_window(qtbot, window, samples, model_path):
    """``window`` without a project, 'pole' (5) merged into 'sky' (0): its undo step on the list."""
    start_annotating(qtbot, window, samples, model_path)
    assert window.annotator.classes.names[5] == "pole"
    window.annotator.remove_class(5, to=0)
    settle(qtbot, window)
    assert len(window.annotator.class_undo) == 1
    return window.annotator.classes


def test_a_class_change_made_without_a_project_is_not_undone_in_the_project_opened_next(
        qtbot, window, samples, model_path, tmp_path):
    """Fails before: the merge made without a project stayed on the undo list once a project of the same
    classes was opened, and its Undo rewrote that project (a class 'pole' added to it). The history is
    the window's again once the project closes."""
    classes = merged_in_the_window(qtbot, window, samples, model_path)
    folder = tmp_path / "Q"
    Project.create(folder, [samples[1]], classes)
    assert window.projects.open_project(folder)
    settle(qtbot, window)
    assert not window.annotator.class_undo
    window.annotator.undo_class_edit()
    settle(qtbot, window)
    assert "pole" not in Project.open(folder).classes.names
    assert "pole" not in window.annotator.classes.names
    assert window.projects.close_project()
    settle(qtbot, window)
    assert len(window.annotator.class_undo) == 1  # its own history back, the maps' classes unchanged since


def test_a_new_project_made_of_the_open_maps_keeps_their_class_changes(qtbot, window, samples, model_path, tmp_path):
    merged_in_the_window(qtbot, window, samples, model_path)
    folder = tmp_path / "new"
    window.projects.ask_folder = lambda title, new: folder
    assert window.projects.new_project(folder)
    settle(qtbot, window)
    assert len(window.annotator.class_undo) == 1
    window.annotator.undo_class_edit()
    settle(qtbot, window)
    assert "pole" in Project.open(folder).classes.names
    assert "pole" in window.annotator.classes.names


def test_an_undo_refused_because_another_window_changed_the_classes_says_it_is_dropped(
        qtbot, windows, samples, model_path, tmp_path):
    """Fails before: the project refused the Undo (another window renamed a class first), the step went
    back on its list - and the reload that followed cleared the list, the step gone unsaid. Now the
    refusal and the reload name it; and the redo list and what the changes took from the maps go too."""
    folder = tmp_path / "shared"
    first, second = two_windows(qtbot, windows, samples, model_path, folder)
    for timer in (second.projects.watch, second.projects.timer):
        timer.stop()
    second.annotator.remove_class(5, to=0)  # a merge: what it took from the maps is kept for its undo
    settle(qtbot, second)
    second.annotator.undo_class_edit()
    settle(qtbot, second)
    assert len(second.annotator.class_redo) == 1 and second.annotator._class_snapshots
    second.annotator.redo_class_edit()
    settle(qtbot, second)
    second.annotator.recolour_class(1, (1, 2, 3))
    settle(qtbot, second)
    assert len(second.annotator.class_undo) == 2
    second.annotator.undo_class_edit()  # the recolour undone: on the redo list
    settle(qtbot, second)
    assert len(second.annotator.class_undo) == 1 and len(second.annotator.class_redo) == 1
    settle(qtbot, first)  # it follows second's classes
    assert first.annotator.classes == second.annotator.classes
    first.annotator.rename_class(2, "barrier")
    settle(qtbot, first)
    assert "barrier" in Project.open(folder).classes.names
    shown = []
    second.statusBar().messageChanged.connect(shown.append)
    second.annotator.undo_class_edit()  # the merge's undo: the project refuses it (renamed meanwhile)
    qtbot.waitUntil(lambda: not second.jobs.pending() and not second.annotator.class_change_pending(),
                    timeout=WAIT_MS)
    settle(qtbot, second)
    assert any("Cannot undo the class change" in m and "Merge 'pole' into 'sky'" in m for m in shown), '\n'.join(shown)
    second.projects.check_project_on_disk()
    settle(qtbot, second)
    assert "barrier" in second.annotator.classes.names
    assert not second.annotator.class_undo and not second.annotator.class_redo
    assert not second.annotator._class_snapshots  # (the pixels a merge took, of maps read again)
    said = [m for m in shown if "can no longer be undone or redone" in m]
    assert said and "Merge 'pole' into 'sky'" in said[-1] and "Recolour" in said[-1], shown


def test_a_waiting_change_follows_another_windows_case_only_rename(qtbot, windows, samples, model_path, tmp_path):
    """Class names are the same name ignoring case (``qgn.classes.name_key``; two classes 'road' and 'Road'
    cannot be). Fails before: our recolour of 'road', waiting while another window's rename to 'Road' was
    followed, was not made ("there is no class 'road' now")."""
    folder = tmp_path / "shared"
    first, second = two_windows(qtbot, windows, samples, model_path, folder)
    for timer in (second.projects.watch, second.projects.timer):
        timer.stop()
    names = list(second.annotator.classes.names)
    road = names.index("road")
    first.annotator.rename_class(road, "Road")
    first.jobs.wait_idle()
    release = hold_jobs(second)
    second.projects.reload_changed_classes()  # as the watch does: the reload's job queued
    second.annotator.recolour_class(road, (1, 2, 3))  # waits for it
    release.set()
    settle(qtbot, second)
    classes = Project.open(folder).classes
    assert classes.names[road] == "Road"
    assert tuple(classes.palette[road]) == (1, 2, 3)
    assert second.annotator.classes == classes


def test_unsaved_maps_follow_a_case_only_rename_by_name():
    """The reload's by-name follow (no recorded chain of edits): 'road' is 'Road'. Fails before: the map
    was parked in conflicts/ (None: no namesake)."""
    import numpy as np

    from qgn.classes import ClassSet
    from qgn_studio.project_class_changes import relabel_exactly

    before = ClassSet(("sky", "road", "car"), ((1, 1, 1), (2, 2, 2), (3, 3, 3)), 255)
    after = ClassSet(("Road", "sky", "car"), ((2, 2, 2), (1, 1, 1), (3, 3, 3)), 255)
    label = np.array([[0, 1], [2, 255]], np.uint8)
    np.testing.assert_array_equal(relabel_exactly(label, before, after), [[1, 0], [2, 255]])


def test_a_project_opened_while_a_merge_remaps_is_not_merged(qtbot, windows, samples, model_path, tmp_path):
    """The merge of 'pole' asked in P, its remap of the open maps under way, when the user opens Q of the
    same classes. Fails before: the remap ended in Q, and the merge was made there (Q lost 'pole', its
    pixels of it moved to 'sky'); P was not changed. Now it is not made (P is no longer open: said), as a
    change that waits for another is not (``drop_queued_class_edits``)."""
    from test_app_project_concurrency import saved_project

    p_folder, q_folder = tmp_path / "P", tmp_path / "Q"
    win = windows(folder=p_folder)
    saved_project(qtbot, win, samples, model_path, p_folder)
    win.jobs.wait_idle()
    Project.create(q_folder, [samples[1]], Project.open(p_folder).classes)
    shown = []
    win.statusBar().messageChanged.connect(shown.append)
    release = hold_jobs(win)
    win.annotator.remove_class(5, to=0)
    assert win.annotator.class_change_pending()
    assert win.projects.open_project(q_folder)
    release.set()
    settle(qtbot, win)
    assert win.projects.project.root == q_folder
    assert "pole" in Project.open(q_folder).classes.names
    assert "pole" in Project.open(p_folder).classes.names
    assert "pole" in win.annotator.classes.names and win.annotator.classes == Project.open(q_folder).classes
    assert not win.annotator.class_undo
    assert [m for m in shown if "Merge 'pole' into 'sky'" in m and "project P, no longer open" in m], shown


def test_an_autosave_restored_while_a_merge_remaps_arrives_in_the_new_classes(qtbot, windows, samples, model_path,
                                                                              tmp_path):
    """A crashed window's autosave restored (the project opened again, its recovery question answered)
    while our merge's remap runs: read in the project's old classes (its rewrite comes after the remap)
    and installed after the class set changed. Fails before: the map was installed as a map of the old
    classes in a window (and project) of the new ones. Now it is read again once the project is
    rewritten: the merged map, in the new classes."""
    import numpy as np

    from studio_steps import paint
    from test_app_class_concurrency import merged
    from test_app_project_concurrency import saved_project

    folder = tmp_path / "P"
    crashed = windows(folder=folder)
    saved_project(qtbot, crashed, samples, model_path, folder)
    paint(crashed, 0, 5, [(1, 20), (40, 20)])  # unsaved strokes of the class merged
    paint(crashed, 0, 7, [(1, 30), (40, 30)])  # and of a class above it
    ours = crashed.docs[0].annotation.label.astype(np.int64).copy()
    crashed.projects.autosave_now()
    crashed.jobs.wait_idle()
    windows.crash(crashed)
    project = Project.open(folder)
    assert project.recoverable()
    np.testing.assert_array_equal(project.recover(project.images[0]), ours)

    win = windows(recover="later")
    win.start([folder], str(model_path))
    qtbot.waitUntil(lambda: win.docs and win.docs[0].annotation is not None, timeout=WAIT_MS)
    win.jobs.wait_idle()
    settle(qtbot, win)
    assert not win.docs[0].annotation.dirty  # the saved map (the autosave waits: "later")
    win.projects.ask_recover = lambda question: "restore"
    release = hold_jobs(win)
    win.annotator.remove_class(5, to=0)
    assert win.annotator.class_change_pending()
    assert win.projects.open_project(folder)  # again (File > Open recent): its autosave restored
    release.set()
    settle(qtbot, win)
    names = list(Project.open(folder).classes.names)
    assert "pole" not in names and win.annotator.classes.names == tuple(names)
    session = win.docs[0].annotation
    assert session is not None and session.dirty
    assert session.classes == win.annotator.classes
    np.testing.assert_array_equal(session.label, merged(ours))
    win.projects.autosave_now()
    win.jobs.wait_idle()
    project = Project.open(folder)
    np.testing.assert_array_equal(project.recover(project.images[0]), merged(ours))


def test_a_rewrite_refused_after_another_project_was_opened_is_said_and_leaves_that_one_alone(
        qtbot, windows, samples, model_path, tmp_path, monkeypatch):
    """The merge's rewrite of P under way when the user opens Q (same classes), and P refuses it (a command
    renamed a class of P first). Fails before: it was said to be a change "of the autosaves without a
    project", naming neither the change nor P. Now the message names both; Q and its classes are left
    alone (no revert of Q's maps, nothing made again there)."""
    import threading

    from qgn.classes_edit import rename_class
    from test_app_class_queue_project import held_rewrite
    from test_app_project_concurrency import saved_project

    p_folder, q_folder = tmp_path / "P", tmp_path / "Q"
    win = windows(folder=p_folder)
    saved_project(qtbot, win, samples, model_path, p_folder)
    win.jobs.wait_idle()
    Project.create(q_folder, [samples[1]], Project.open(p_folder).classes)
    started, gate = held_rewrite(monkeypatch)
    shown = []
    win.statusBar().messageChanged.connect(shown.append)
    win.annotator.remove_class(5, to=0)
    qtbot.waitUntil(started.is_set, timeout=WAIT_MS)
    other = Project.open(p_folder)  # another writer renames a class of P first
    REAL_APPLY(other, rename_class(other.classes, 2, "street"))
    threading.Timer(0.3, gate.set).start()
    assert win.projects.open_project(q_folder)
    settle(qtbot, win)
    assert win.projects.project.root == q_folder
    assert "pole" in Project.open(q_folder).classes.names
    assert win.annotator.classes == Project.open(q_folder).classes
    names = Project.open(p_folder).classes.names
    assert "pole" in names and "street" in names  # ours not made in P: said
    said = [m for m in shown if "Merge 'pole' into 'sky'" in m and "P (" in m and "no longer open" in m]
    assert said, shown
    assert not [m for m in shown if "without a project" in m]


def test_a_close_whose_rewrite_outlasts_its_waits_hides_the_window_and_the_rewrite_is_made(
        qtbot, windows, samples, model_path, tmp_path, monkeypatch, capfd):
    """The close waits for our class changes in slices (60 s, then 60 s for the writes; 0.3 s each here),
    the window repainting; a rewrite still under way then is not stopped (it would be rolled back), and the
    UI thread blocks until it is in. Fails before: the window stayed on screen, frozen, through that block
    (a 60-s wait_idle, then jobs.stop without a bound). Now it is hidden first and stderr says what the
    program still writes; the rewrite is made."""
    from test_app_class_queue_project import merging

    folder = tmp_path / "shared"
    win, gate, _shown = merging(qtbot, windows, samples, model_path, folder, monkeypatch)
    close_past_its_waits(win, win.projects.finish_class_work, win._wait_jobs, monkeypatch)
    blocked = blocks_on_the_rewrite(win, gate, monkeypatch)
    assert win.close()
    assert blocked and not any(blocked), blocked
    assert win.threads_stopped
    assert "pole" not in Project.open(folder).classes.names  # the rewrite is in
    err = capfd.readouterr().err
    assert "the window closed with a write still under way" in err and "Changing the classes" in err


def blocks_on_the_rewrite(win, gate, monkeypatch) -> list:
    """Whether the window was on screen at each block of the UI thread on the running rewrite (the
    list it fills); ``gate`` lets the held rewrite go on once the UI thread blocks on it."""
    blocked = []
    wait_idle, stop = win.jobs.wait_idle, win.jobs.stop

    def watched_wait(timeout_s=60.0):
        if timeout_s > 1 and win.jobs.pending():
            blocked.append(win.isVisible())
            gate.set()
        return wait_idle(timeout_s)

    def watched_stop(wait=True):
        if win.jobs.pending():
            blocked.append(win.isVisible())
            gate.set()
        return stop(wait)

    monkeypatch.setattr(win.jobs, "wait_idle", watched_wait)
    monkeypatch.setattr(win.jobs, "stop", watched_stop)
    return blocked


def close_past_its_waits(win, finish, wait_jobs, monkeypatch):
    """The close's waits for our class changes and for the writes cut to 0.3 s each (60 s each in use)."""
    monkeypatch.setattr(win.projects, "finish_class_work", lambda *a, **k: finish(0.3))
    monkeypatch.setattr(win, "_wait_jobs", lambda *a, **k: wait_jobs(0.3))


def test_a_close_whose_rewrite_is_refused_once_the_window_is_hidden_says_so_in_one_plain_line(
        qtbot, windows, samples, model_path, tmp_path, monkeypatch, capfd):
    """The close hides the window while our merge's rewrite is still under way; another writer renames a
    class of the project first, so the rewrite is refused. Fails before: stderr said the program ends
    "once it is written", then only internal lines ("..._class_set_edited.<locals>.write: not run: the
    window's file thread has stopped", a reload "not run"): the user was never told the merge was not
    made. Now one line names the change, the project and what to do, and nothing else follows."""
    from qgn.classes_edit import rename_class
    from test_app_class_queue_project import merging

    folder = tmp_path / "shared"
    win, gate, _shown = merging(qtbot, windows, samples, model_path, folder, monkeypatch)
    close_past_its_waits(win, win.projects.finish_class_work, win._wait_jobs, monkeypatch)
    wait_idle = win.jobs.wait_idle
    renamed = []

    def watched_wait(timeout_s=60.0):
        if timeout_s > 1 and win.jobs.pending() and not win.isVisible() and not renamed:
            other = Project.open(folder)  # another writer, while our rewrite waits: ours is refused
            REAL_APPLY(other, rename_class(other.classes, 2, "street"))
            renamed.append(True)
            gate.set()
        return wait_idle(timeout_s)

    monkeypatch.setattr(win.jobs, "wait_idle", watched_wait)
    assert win.close()
    assert renamed and win.threads_stopped
    qtbot.wait(300)  # (a callback posted late would say more)
    names = Project.open(folder).classes.names
    assert "pole" in names and "street" in names  # the merge was not made; the other writer's rename is in
    lines = [line for line in capfd.readouterr().err.splitlines() if line.startswith("qgn-studio")]
    assert len(lines) == 2, lines
    assert "still under way" in lines[0] and "ends once it is written or refused" in lines[0], lines
    assert (f"“Merge 'pole' into 'sky'” was not made in the project shared ({folder})" in lines[1]
            and "another window or command changed its classes first" in lines[1]
            and lines[1].endswith("make it again")), lines
    assert not [line for line in lines if "not run" in line or "<locals>" in line], lines


def test_sigterm_close_waits_for_a_rewrite_with_the_window_hidden(
        qtbot, windows, samples, model_path, tmp_path, monkeypatch):
    """SIGTERM (``terminate``) while our merge's rewrite outlasts the close's waits. Fails before: the
    close after SIGTERM blocked the UI thread in a plain 60-s ``jobs.wait_idle()`` with the window on
    screen, frozen. Now its waits are in slices (as the normal close's) and the window is hidden before
    the UI thread blocks on the rewrite; the rewrite is made."""
    from test_app_class_queue_project import merging

    folder = tmp_path / "shared"
    win, gate, _shown = merging(qtbot, windows, samples, model_path, folder, monkeypatch)
    close_past_its_waits(win, win.projects.finish_class_work, win._wait_jobs, monkeypatch)
    blocked = blocks_on_the_rewrite(win, gate, monkeypatch)
    win.terminate()
    assert win.threads_stopped
    assert blocked and not any(blocked), blocked
    assert "pole" not in Project.open(folder).classes.names  # the rewrite is in


def kept_undo_steps(annotator) -> list:
    """The undo steps of every class-change history the window keeps: the open project's and those set aside."""
    return [*annotator.class_undo, *(step for undo, _redo, _s in annotator._class_histories.values() for step in undo)]


def test_class_histories_dropped_let_go_of_their_undo_steps(qtbot, windows, samples, model_path, tmp_path,
                                                             monkeypatch):
    """Up to ``KEPT_HISTORIES`` (8; 2 here) histories of projects left are kept; each undo step's entry in
    ``_forward_of`` keeps its inverse (and the restore patches it holds) alive. Fails before: the entries of
    the steps of a history dropped (one past the bound, evicted; the open one's, dropped by a reload)
    stayed for good."""
    import qgn_studio.annotator_class_changes as class_changes
    from test_app_project_concurrency import saved_project

    monkeypatch.setattr(class_changes, "KEPT_HISTORIES", 2)
    win = windows(folder=tmp_path / "P0")
    saved_project(qtbot, win, samples, model_path, tmp_path / "P0")
    win.jobs.wait_idle()
    annotator = win.annotator
    for i in range(1, 5):  # a class change in each of 4 projects, one after the other
        annotator.recolour_class(1, (i, 2, 3))
        settle(qtbot, win)
        folder = tmp_path / f"P{i}"
        Project.create(folder, [samples[1]], annotator.classes)
        assert win.projects.open_project(folder)
        settle(qtbot, win)
    assert len(annotator._class_histories) <= 3
    kept = kept_undo_steps(annotator)
    assert len(kept) == 2  # (P0 and P1 evicted with theirs)
    assert sorted(map(id, kept)) == sorted(annotator._forward_of)
    annotator.recolour_class(1, (0, 0, 0))
    settle(qtbot, win)
    assert len(annotator.class_undo) == 1 and len(annotator._forward_of) == 3
    assert annotator.drop_class_history() == ["Recolour 'grass'"]  # (what a reload does)
    assert sorted(map(id, kept)) == sorted(annotator._forward_of)


def test_a_new_class_change_lets_go_of_what_the_redo_steps_would_put_back(qtbot, window, samples, model_path):
    """A merge undone: its redo step keeps the pixels the undo took back (to put them back on redo). Fails
    before: a new class change cleared the redo list but kept those pixels (up to 64 such snapshots)."""
    merged_in_the_window(qtbot, window, samples, model_path)
    annotator = window.annotator
    annotator.undo_class_edit()
    settle(qtbot, window)
    assert len(annotator.class_redo) == 1 and len(annotator._class_snapshots) == 1
    annotator.recolour_class(1, (1, 2, 3))  # a new change: the redo list goes
    settle(qtbot, window)
    assert not annotator.class_redo and len(annotator.class_undo) == 1
    assert not annotator._class_snapshots


def test_returning_to_a_project_another_writer_changed_drops_its_kept_history_and_says_so(
        qtbot, windows, samples, model_path, tmp_path):
    """P's two class changes are kept aside while Q is open; another writer renames a class of P meanwhile.
    Fails before: back in P, both stale steps came back silently, and each Undo was refused in turn ("The
    classes changed since..."). Now they are dropped on return and named, as a reload names them."""
    from qgn.classes_edit import rename_class
    from test_app_project_concurrency import saved_project

    p_folder, q_folder = tmp_path / "P", tmp_path / "Q"
    win = windows(folder=p_folder)
    saved_project(qtbot, win, samples, model_path, p_folder)
    win.jobs.wait_idle()
    annotator = win.annotator
    annotator.remove_class(5, to=0)  # merge 'pole' into 'sky'
    settle(qtbot, win)
    annotator.recolour_class(1, (1, 2, 3))
    settle(qtbot, win)
    assert len(annotator.class_undo) == 2
    Project.create(q_folder, [samples[1]], Project.open(p_folder).classes)
    assert win.projects.open_project(q_folder)
    settle(qtbot, win)
    other = Project.open(p_folder)
    REAL_APPLY(other, rename_class(other.classes, 2, "street"))  # another writer, while P is not open here
    shown = []
    win.statusBar().messageChanged.connect(shown.append)
    assert win.projects.open_project(p_folder)
    settle(qtbot, win)
    assert not annotator.class_undo and not annotator.class_redo
    assert not annotator._forward_of  # (nothing of them kept)
    named = [m for m in shown if "while it was not open here" in m]
    assert named and "“Recolour 'grass'”, “Merge 'pole' into 'sky'”" in named[-1], shown
    names = Project.open(p_folder).classes.names
    assert "street" in names and "pole" not in names  # the project as the other writer left it


def test_a_revert_whose_project_was_left_meanwhile_leaves_its_state_with_that_project(
        qtbot, windows, samples, model_path, tmp_path):
    """P's merge is reverted (as when its rewrite fails), the revert's remap of the open maps under way,
    when the user opens Q. Fails before: the remap, refused (P no longer open), wrote what the merge took
    from P's maps into Q's class-change history and left the merge as the window's change to revert (in
    Q). Now that stays with P's history kept aside, the window keeps nothing of it, and the revert is not
    said to have left the open images (Q's, never touched) in the new classes."""
    from test_app_project_concurrency import saved_project

    p_folder, q_folder = tmp_path / "P", tmp_path / "Q"
    win = windows(folder=p_folder)
    saved_project(qtbot, win, samples, model_path, p_folder)
    win.jobs.wait_idle()
    annotator = win.annotator
    annotator.remove_class(5, to=0)  # merge 'pole' into 'sky'
    settle(qtbot, win)
    edit = annotator.class_edit_backup
    key = (edit.before, edit.after)
    assert key in annotator._class_snapshots  # what the merge took from P's open maps
    p_snapshots = annotator._class_snapshots
    Project.create(q_folder, [samples[1]], edit.before)
    outcome = []
    release = hold_jobs(win)
    annotator.revert_class_edit(edit, lambda back, why: outcome.append((back, why)))
    assert annotator.class_change_pending()
    assert win.projects.open_project(q_folder)
    release.set()
    settle(qtbot, win)
    assert win.projects.project.root == q_folder
    assert key not in annotator._class_snapshots and annotator._class_snapshots is not p_snapshots
    assert key in annotator._class_histories[p_folder][2]  # with P's history, kept aside
    assert annotator.class_edit_backup is not edit
    assert outcome == [(True, "")]


def test_a_new_project_made_while_a_project_is_open_leaves_that_projects_class_changes_with_it(
        qtbot, windows, samples, model_path, tmp_path):
    """P open, a merge made in it; then File > New project Q (of the open maps). Fails before: P's undo
    step went with the window into Q (its Undo rewrote Q) and P, opened again, had none. The steps are of
    P's files: they stay with P's history, and Q, a new project, starts with none."""
    from test_app_project_concurrency import saved_project

    p_folder, q_folder = tmp_path / "P", tmp_path / "Q"
    win = windows(folder=p_folder)
    saved_project(qtbot, win, samples, model_path, p_folder)
    win.jobs.wait_idle()
    annotator = win.annotator
    annotator.remove_class(5, to=0)  # merge 'pole' into 'sky', in P
    settle(qtbot, win)
    assert len(annotator.class_undo) == 1
    assert win.projects.new_project(q_folder)
    settle(qtbot, win)
    assert win.projects.project.root == q_folder
    assert not annotator.class_undo
    annotator.undo_class_edit()
    settle(qtbot, win)
    assert "pole" not in Project.open(q_folder).classes.names  # Q untouched
    assert win.projects.open_project(p_folder)
    settle(qtbot, win)
    assert len(annotator.class_undo) == 1  # P's history back with P
    annotator.undo_class_edit()
    settle(qtbot, win)
    assert "pole" in Project.open(p_folder).classes.names
    assert "pole" not in Project.open(q_folder).classes.names


def test_a_refusal_whose_revert_ends_after_the_project_was_left_names_that_project(
        qtbot, windows, samples, model_path, tmp_path, monkeypatch):
    """P refuses the merge's rewrite (a disk error), the revert of the open maps is under way when the user
    opens Q. Fails before: the refusal said "Nothing changed: the saved annotations and the open images keep
    the old classes", naming no project (the open images are Q's by then). Now it names P and says that its
    files are unchanged and how to make the change again."""
    import qgn.project_class_edit as pce
    from test_app_project_concurrency import saved_project

    p_folder, q_folder = tmp_path / "P", tmp_path / "Q"
    win = windows(folder=p_folder)
    saved_project(qtbot, win, samples, model_path, p_folder)
    win.jobs.wait_idle()
    Project.create(q_folder, [samples[1]], Project.open(p_folder).classes)

    def refused(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pce, "apply_class_edit", refused)
    annotator = win.annotator
    real_revert, held = annotator.revert_class_edit, []

    def revert_held(edit, then=None):
        held.append(hold_jobs(win))  # the revert's remap queues behind this
        real_revert(edit, then)

    monkeypatch.setattr(annotator, "revert_class_edit", revert_held)
    shown = []
    win.statusBar().messageChanged.connect(shown.append)
    annotator.remove_class(5, to=0)
    qtbot.waitUntil(lambda: bool(held), timeout=WAIT_MS)
    monkeypatch.setattr(pce, "apply_class_edit", REAL_APPLY)
    assert win.projects.open_project(q_folder)
    held[0].set()
    settle(qtbot, win)
    assert win.projects.project.root == q_folder
    assert "pole" in Project.open(p_folder).classes.names and "pole" in Project.open(q_folder).classes.names
    said = [m for m in shown if "No space left" in m]
    assert said and all("P (" in m for m in said), said
    assert not [m for m in said if "the open images keep" in m], said
