"""(A review found it.) the undone-edits keep covers the autosave the next autosave writes OVER, not the stand-in's
autosave that _drop_spare removes once the project takes the edits again. Both strokes autosaved into the
stand-in (project.json cut short), the project fixed, the second stroke undone: the next autosave goes to
the project and drops the stand-in's copy (discard_autosave(keep=False)) - the undone stroke then lives
in redo only; kept nowhere on disk."""
from __future__ import annotations

import numpy as np

from studio_steps import WAIT_MS, paint, painted_and_saved, two_strokes_autosaved_in_the_stand_in

SAMPLE_COUNT, SAMPLE_SIZE = 2, (64, 96)


def test_undone_edits_in_the_stand_in_are_not_dropped(qtbot, windows, samples, model_path, tmp_path):
    from qgn.project import DISCARDED_DIR, Project
    from qgn.quadtree.label_io import read_label_file

    folder = tmp_path / "project"
    win, session, both, spare, good = two_strokes_autosaved_in_the_stand_in(qtbot, windows, samples, model_path,
                                                                           folder)
    np.testing.assert_array_equal(Project.open(spare).recover(Project.open(spare).images[0]), both)
    (folder / "project.json").write_bytes(good)  # fixed
    win.annotator.undo_action.trigger()
    assert session.undo.canRedo()
    win.projects.autosave_now()
    win.jobs.wait_idle()
    qtbot.wait(200)
    win.jobs.wait_idle()
    on_disk = []
    for root in (folder, spare):
        for sub in (".autosave", DISCARDED_DIR, "conflicts"):
            on_disk += [p for p in (root / sub).glob("*.qgt")] if (root / sub).exists() else []
    assert any(np.array_equal(read_label_file(p, win.annotator.classes), both) for p in on_disk), \
        "the undone stroke's map is kept nowhere on disk (redo only)"


def test_a_save_after_an_undo_keeps_the_autosave_with_the_undone_edits(qtbot, windows, samples, model_path, tmp_path):
    """Both strokes autosaved, the second undone, then Ctrl+S before the next autosave: the save removed
    this window's autosave (``_drop_autosave``) although it holds the undone stroke (redo only, in
    memory). Fails before: that map was kept nowhere on disk. Now kept as discarded/<key>.undone-<hash>.qgt."""
    from qgn.project import DISCARDED_DIR
    from qgn.quadtree.label_io import read_label_file

    folder = tmp_path / "project"
    win, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    paint(win, 2, 1, [(1, 1), (30, 1)])
    paint(win, 2, 2, [(1, 9), (30, 9)])
    both = session.label.copy()
    with qtbot.waitSignal(win.projects.autosaved, timeout=WAIT_MS):
        win.projects.autosave_now()
    win.jobs.wait_idle()
    win.annotator.undo_action.trigger()
    assert session.undo.canRedo()
    shorter = session.label.copy()
    assert win.projects.save()
    win.jobs.wait_idle()
    qtbot.wait(100)
    win.jobs.wait_idle()
    assert not list((folder / ".autosave").glob("*.qgt"))  # the save took the edits it has
    np.testing.assert_array_equal(read_label_file(next((folder / "annotations").glob("*.qgt")),
                                                  win.annotator.classes), shorter)
    kept = list((folder / DISCARDED_DIR).glob("*.qgt")) if (folder / DISCARDED_DIR).exists() else []
    assert any(np.array_equal(read_label_file(k, win.annotator.classes), both) for k in kept), kept

    # nothing undone: a save after a plain edit keeps nothing (no false 'undone')
    paint(win, 2, 3, [(1, 20), (30, 20)])
    with qtbot.waitSignal(win.projects.autosaved, timeout=WAIT_MS):
        win.projects.autosave_now()
    win.jobs.wait_idle()
    paint(win, 2, 4, [(1, 30), (30, 30)])
    assert win.projects.save()
    win.jobs.wait_idle()
    assert len(list((folder / DISCARDED_DIR).glob("*.qgt"))) == len(kept)
