"""The per-project head in QGN Studio (issue #21): fitted in the background after a save, written
to the project's own head file (the model file untouched), offered as a start and taken by default
for the next image; the domain warning on an image unlike the model's training images."""
from __future__ import annotations


import numpy as np

from studio_steps import WAIT_MS, paint, start_annotating
from sample_files import digest

SAMPLE_COUNT = 2  # the samples fixture

SIZE = (64, 96)


def test_head_fits_after_a_save_and_starts_the_next_image(qtbot, windows, samples, model_path, tmp_path):
    from qgn.project_head import ProjectHead

    folder = tmp_path / "project"
    model_hash = digest(model_path)
    win = windows(folder=folder)
    session = start_annotating(qtbot, win, samples, model_path)
    assert session.origin == "prediction"  # no head yet: the model's prediction
    win.annotator.start_from("truth")  # the "corrected" annotation of the first image
    win.jobs.wait_idle()
    qtbot.waitUntil(lambda: session.dirty, timeout=WAIT_MS)
    with qtbot.waitSignal(win.head.fitted, timeout=WAIT_MS):
        assert win.projects.save()
    head_file = folder / "head.safetensors"
    assert head_file.is_file() and (folder / "head.json").is_file()
    assert digest(model_path) == model_hash  # the model file is never replaced
    head = ProjectHead.load(head_file)
    assert head.images == 1 and head.fits(win.annotator.classes) and win.head.available()
    assert win.annotator.panel.start_buttons["head"].isEnabled() or win.current.annotation is not None

    win.step_image(1)  # the next image starts from the head (the recommended start)
    qtbot.waitUntil(lambda: win.current.annotation is not None, timeout=WAIT_MS)
    second = win.current.annotation
    assert second.origin == "head"
    assert not second.is_annotation  # untouched, a head start is no person's annotation (nothing to save)
    truth = win.current.ground_truth
    expected = head.predict(win.head._load_model(), win.current.image)
    np.testing.assert_array_equal(second.label, expected.astype(second.label.dtype))
    assert (second.label == truth).mean() > 0.5  # it learnt the scene's classes from one image


def test_closing_stops_a_fit_under_way_instead_of_waiting_for_it(qtbot, windows, samples, model_path, tmp_path,
                                                                 monkeypatch):
    # the window's close waited for the head fit a save had started (seconds on a big project,
    # the window frozen); the fit is derived data, fitted again at the next save
    import threading

    from qgn.project_head import HeadTrainer

    started, told_to_stop = threading.Event(), threading.Event()

    def long_fit(self, iterations=50, l2=1e-3, should_stop=None):
        started.set()
        for _ in range(WAIT_MS // 10):  # a fit of a big project: many steps
            if should_stop is not None and should_stop():
                told_to_stop.set()
                return None
            threading.Event().wait(0.01)
        return None

    monkeypatch.setattr(HeadTrainer, "fit", long_fit)
    folder = tmp_path / "project"
    win = windows(folder=folder)
    start_annotating(qtbot, win, samples, model_path)
    win.annotator.start_from("truth")
    win.jobs.wait_idle()
    qtbot.waitUntil(lambda: win.current.annotation.dirty, timeout=WAIT_MS)
    assert win.projects.save()
    qtbot.waitUntil(started.is_set, timeout=WAIT_MS)  # the save delivered, the fit under way
    win.close()
    assert told_to_stop.is_set()  # the close told the fit to stop; it did not run it to its end
    assert not win.head.runner.isRunning()


def test_saves_made_while_a_fit_waits_share_the_next_fit(qtbot, windows, samples, model_path, tmp_path, monkeypatch):
    # every save queued a whole fit of its own: saving often ran fit after fit, all of the
    # project each, long after the last save (a fit not started yet reads the newest files anyway)
    import threading

    from qgn.project_head import HeadTrainer

    real, release, runs = HeadTrainer.fit, threading.Event(), []

    def counted(self, *args, **kwargs):  # the fit itself, after the annotations were read
        runs.append(1)
        release.wait(WAIT_MS / 1000)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(HeadTrainer, "fit", counted)
    win = windows(folder=tmp_path / "project")
    start_annotating(qtbot, win, samples, model_path)
    win.annotator.start_from("truth")
    win.jobs.wait_idle()
    qtbot.waitUntil(lambda: win.current.annotation.dirty, timeout=WAIT_MS)
    with qtbot.waitSignal(win.projects.saved, timeout=WAIT_MS):
        assert win.projects.save()
    qtbot.waitUntil(lambda: len(runs) == 1, timeout=WAIT_MS)  # the first fit, held under way
    win.step_image(1)
    qtbot.waitUntil(lambda: win.current.annotation is not None, timeout=WAIT_MS)
    for class_id in (2, 3, 4):  # three more saves while it runs
        paint(win, 2, class_id, [(8, 8), (40, 30)])
        with qtbot.waitSignal(win.projects.saved, timeout=WAIT_MS):
            assert win.projects.save()
    release.set()
    qtbot.waitUntil(lambda: win.head.head is not None and win.head.head.images == 2 and not win.head.fitting,
                    timeout=WAIT_MS)
    assert win.head.runner.wait_idle()
    assert len(runs) == 2  # the held fit, then one for all the later saves
