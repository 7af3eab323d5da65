"""Two images of a project that swap names (same size) after their annotations were saved: opening
the project says, for each, that its file is not the one its annotation was saved for; the
annotations stay as they are, and the images open."""
from __future__ import annotations

import os

from qgn.project import Project

from studio_steps import WAIT_MS, paint, start_annotating

SAMPLE_COUNT = 3


def test_swapped_images_are_noticed_and_their_annotations_kept(qtbot, windows, samples, model_path, tmp_path,
                                                               snapshot):
    folder = tmp_path / "P"
    first = windows(folder=folder)
    start_annotating(qtbot, first, samples, model_path)
    assert first.projects.new_project(folder)
    paint(first, 2, 2, [(10, 10), (50, 30)])
    first.images.set_current(2)  # an image that stays as it is
    qtbot.waitUntil(lambda: first.current.annotation is not None, timeout=WAIT_MS)
    paint(first, 2, 3, [(10, 10), (50, 30)])
    with qtbot.waitSignal(first.projects.saved, timeout=WAIT_MS):
        assert first.projects.save()
    first.jobs.wait_idle()
    first.close()
    a, b = samples[0], samples[1]
    os.replace(a, tmp_path / "swap")
    os.replace(b, a)
    os.replace(tmp_path / "swap", b)
    annotations = snapshot(folder / "annotations")
    warnings = []
    win = windows()
    warn = win.workspace.warn
    win.workspace.warn = lambda text, key, timeout_ms=8000: (warnings.append(text), warn(text, key, timeout_ms))
    win.start([folder], str(model_path))
    qtbot.waitUntil(lambda: bool(win.docs) and win.docs[0].annotation is not None, timeout=WAIT_MS)
    win.jobs.wait_idle()
    qtbot.waitUntil(lambda: any(a.name in w for w in warnings), timeout=WAIT_MS)
    assert [w for w in warnings if a.name in w and "not the one its annotation was saved for" in w], warnings
    win.images.set_current(2)
    qtbot.waitUntil(lambda: win.current.annotation is not None, timeout=WAIT_MS)
    win.jobs.wait_idle()
    qtbot.wait(100)
    assert not [w for w in warnings if samples[2].name in w], "an unchanged image says nothing"
    assert win.docs[0].annotation is not None, "the annotation is shown, not dropped"
    assert snapshot(folder / "annotations") == annotations, "the annotations stay as they are"
    assert Project.open(folder).image_for(a).file is not None
