"""(A review found it.) an autosave still in flight (its done callback not yet run on the UI thread) when the
user undoes and the next autosave round starts: autosave_undone compares with the autosave BEFORE it,
so the map with the undone stroke is written over without being kept in discarded/."""
from __future__ import annotations

import threading

import numpy as np

from studio_steps import WAIT_MS, paint, painted_and_saved

SAMPLE_COUNT, SAMPLE_SIZE = 2, (64, 96)


def test_undo_while_autosave_in_flight(qtbot, windows, samples, model_path, tmp_path):
    from qgn.project import DISCARDED_DIR
    from qgn.quadtree.label_io import read_label_file

    folder = tmp_path / "project"
    win, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    paint(win, 2, 1, [(1, 1), (30, 1)])
    shorter = session.label.copy()
    with qtbot.waitSignal(win.projects.autosaved, timeout=WAIT_MS):
        win.projects.autosave_now()
    win.jobs.wait_idle()
    paint(win, 2, 2, [(1, 9), (30, 9)])
    both = session.label.copy()
    from qgn.project import Project
    real, written = Project.autosave, []

    def spy(self, image, label, over=None, undone=False):
        written.append((label.copy(), undone))
        return real(self, image, label, over=over, undone=undone)

    Project.autosave = spy
    gate = threading.Event()
    win.jobs.submit(lambda: gate.wait(30))   # the job thread busy (a save, an export, a model load ...)
    win.projects.autosave_now()              # round A: writes `both` once the job thread is free
    win.annotator.undo_action.trigger()      # the user undoes the second stroke meanwhile
    assert session.undo.canRedo()
    win.projects.autosave_now()              # round B (2 s later in real life): `shorter` over `both`
    gate.set()
    win.jobs.wait_idle()
    qtbot.wait(200)
    win.jobs.wait_idle()
    Project.autosave = real
    print("autosaves written (map == both, undone flag):", [(np.array_equal(m, both), u) for m, u in written])
    autosave, = (folder / ".autosave").glob("*.qgt")
    np.testing.assert_array_equal(read_label_file(autosave, win.annotator.classes), shorter)
    kept = list((folder / DISCARDED_DIR).glob("*.qgt")) if (folder / DISCARDED_DIR).exists() else []
    print("discarded/:", kept)
    assert any(np.array_equal(read_label_file(k, win.annotator.classes), both) for k in kept), \
        "the map with the undone stroke was written over and kept nowhere (redo only, in memory)"
