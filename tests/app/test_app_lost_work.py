"""No lost work in the app, fourth round: autosaves are offered and restored whatever took the place
of the annotations folder."""
from __future__ import annotations

import shutil

import numpy as np

from studio_steps import WAIT_MS, paint, start_annotating

SAMPLE_COUNT, SAMPLE_SIZE = 2, (64, 96)  # the samples fixture


def test_autosaves_are_restored_when_a_plain_file_took_the_annotations_folder(qtbot, windows, samples, model_path,
                                                                              tmp_path):
    """A sync tool or a script left a plain file named annotations: the project's autosaves were not
    offered (comparing them with the saved files raised), nor restorable (their base could not be
    read): the unsaved edits of the crashed session stayed hidden in .autosave/."""
    folder = tmp_path / "project"
    first = windows(folder=folder)
    session = start_annotating(qtbot, first, samples, model_path)
    paint(first, 2, 5, [(10, 10), (50, 30)])
    with qtbot.waitSignal(first.projects.saved, timeout=WAIT_MS):
        assert first.projects.save()
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
