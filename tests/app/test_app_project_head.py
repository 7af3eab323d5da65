"""The per-project head in QGN Studio (issue #21): fitted in the background after a save, written
to the project's own head file (the model file untouched), offered as a start, and taken by default
only once it has beaten the model on a saved image it had not trained on."""
from __future__ import annotations


import numpy as np
import pytest

from studio_steps import WAIT_MS, corrected_to_truth, paint, start_annotating
from sample_files import digest

SAMPLE_COUNT = 3  # the samples fixture

SIZE = (64, 96)


def head_fitted_on_one(qtbot, win, samples, model_path) -> None:
    """``win`` annotating ``samples`` with ``model_path``: the first image corrected to its truth and
    saved, and the project head fitted on it."""
    start_annotating(qtbot, win, samples, model_path)
    corrected_to_truth(qtbot, win)
    with qtbot.waitSignal(win.head.fitted, timeout=WAIT_MS):
        assert win.projects.save()


def test_head_fits_after_a_save_and_is_offered_for_the_next_image(qtbot, windows, samples, model_path, tmp_path):
    from qgn.project_head import ProjectHead

    folder = tmp_path / "project"
    model_hash = digest(model_path)
    win = windows(folder=folder)
    session = start_annotating(qtbot, win, samples, model_path)
    assert session.origin == "prediction"  # no head yet: the model's prediction
    corrected_to_truth(qtbot, win)  # the "corrected" annotation of the first image
    with qtbot.waitSignal(win.head.fitted, timeout=WAIT_MS):
        assert win.projects.save()
    head_file = folder / "head.safetensors"
    assert head_file.is_file() and (folder / "head.json").is_file()
    assert digest(model_path) == model_hash  # the model file is never replaced
    head = ProjectHead.load(head_file)
    assert head.images == 1 and head.fits(win.annotator.classes) and win.head.available()
    assert win.annotator.panel.start_buttons["head"].isEnabled() or win.current.annotation is not None

    win.step_image(1)  # a head fitted on one image has not yet beaten the model: the prediction
    qtbot.waitUntil(lambda: win.current.annotation is not None, timeout=WAIT_MS)
    assert win.current.annotation.origin == "prediction" and not head.preferred
    second = win.current.annotation
    win.annotator.start_from("head")  # offered all the same (one undoable edit)
    win.jobs.wait_idle()
    qtbot.waitUntil(lambda: second.version > 0, timeout=WAIT_MS)
    truth = win.current.ground_truth
    expected = head.predict(win.head._load_model(), win.current.image)
    np.testing.assert_array_equal(second.label, expected.astype(second.label.dtype))
    assert (second.label == truth).mean() > 0.5  # it learnt the scene's classes from one image


def _accuracy(label, truth, ignore):
    labelled = truth != ignore if ignore is not None else np.ones(truth.shape, bool)
    return float((np.asarray(label) == truth)[labelled].mean())


def test_head_becomes_the_default_start_only_after_beating_the_model(qtbot, windows, samples, model_path, tmp_path):
    """Image 1 corrected and saved: the head is fitted but image 2 starts from the model; image 2
    saved: the head fitted before it and the model's start are scored against it, and image 3 starts
    from whichever got more pixels right — the status bar says which and why."""
    from qgn.project_head import ProjectHead

    folder = tmp_path / "project"
    win = windows(folder=folder)
    # the samples are different scenes of one layout, so the frame before's labels carried over
    # (tests/app/test_app_carry.py) beat both here: this test is about the head and the model alone
    win.carry.available = lambda doc=None: False
    messages = []
    win.workspace.status.connect(lambda text, _ms: messages.append(text))
    head_fitted_on_one(qtbot, win, samples, model_path)
    first_head = ProjectHead.load(folder / "head.safetensors")
    assert first_head.record == {} and any("start from the prediction until the head beats it" in m for m in messages)

    win.step_image(1)
    qtbot.waitUntil(lambda: win.current.annotation is not None, timeout=WAIT_MS)
    assert win.current.annotation.origin == "prediction"
    truth, ignore = np.asarray(win.current.ground_truth), win.annotator.classes.ignore_index
    model_acc = _accuracy(win.current.annotation.label, truth, ignore)  # the model's start, as shown
    head_acc = _accuracy(first_head.predict(win.head._load_model(), win.current.image), truth, ignore)
    corrected_to_truth(qtbot, win)
    with qtbot.waitSignal(win.head.fitted, timeout=WAIT_MS):
        assert win.projects.save()
    head = win.head.head
    assert head.images == 2 and len(head.record) == 1
    (h, m), = head.record.values()
    assert h == pytest.approx(head_acc) and m == pytest.approx(model_acc)
    assert ProjectHead.load(folder / "head.safetensors").record == head.record  # kept with the head

    win.step_image(1)
    qtbot.waitUntil(lambda: win.current.annotation is not None, timeout=WAIT_MS)
    assert win.current.annotation.origin == ("head" if head_acc >= model_acc else "prediction")
    assert any(f"head {100 * head_acc:.1f} % of pixels right, prediction {100 * model_acc:.1f} %" in m for m in messages)


def test_the_heads_record_survives_reopening_and_learnt_images_are_not_judged_again(
        qtbot, windows, samples, model_path, tmp_path):
    folder = tmp_path / "project"
    win = windows(folder=folder)
    start_annotating(qtbot, win, samples, model_path)
    for step in range(2):  # images 1 and 2 corrected and saved: one judged image in the record
        if step:
            win.step_image(1)
            qtbot.waitUntil(lambda: win.current.annotation is not None, timeout=WAIT_MS)
        corrected_to_truth(qtbot, win)
        with qtbot.waitSignal(win.head.fitted, timeout=WAIT_MS):
            assert win.projects.save()
    record = dict(win.head.head.record)
    assert len(record) == 1
    win.close()

    again = windows(folder=folder)  # reopened: the head and its record are read from the project
    again.start([], str(model_path))
    assert again.projects.open_project(folder)
    qtbot.waitUntil(lambda: again.current is not None and again.current.result is not None, timeout=WAIT_MS)
    again.annotator.set_mode(True)
    qtbot.waitUntil(lambda: again.head.head is not None, timeout=WAIT_MS)
    assert again.head.head.record == record
    again.step_image(1)
    again.step_image(1)
    qtbot.waitUntil(lambda: again.current.annotation is not None and again.current.path == samples[2], timeout=WAIT_MS)
    assert again.current.annotation.origin == ("head" if again.head.head.preferred else "prediction")
    corrected_to_truth(qtbot, again)
    with qtbot.waitSignal(again.head.fitted, timeout=WAIT_MS):
        assert again.projects.save()
    now = again.head.head.record  # image 3 judged; images 1 and 2, learnt before, not again
    assert len(now) == 2 and list(now.items())[0] == list(record.items())[0] and now.keys() != record.keys()


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
    corrected_to_truth(qtbot, win)
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
    corrected_to_truth(qtbot, win)
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


def test_a_model_of_the_same_name_whose_encoder_learnt_gets_a_head_fitted_on_its_features(
        qtbot, windows, samples, model_path, tmp_path):
    """The head was kept for any model of the same file name: a fine-tune whose encoder learnt, kept as
    <stem>-ft1 in the project's models/ beside an original <stem>-ft1 elsewhere, was started from a head
    that read the other model's features. The head now names the encoder it read (its fingerprint):
    another encoder under the same name refits it."""
    import torch

    from qgn.model.checkpoint import load_model, save_model
    from qgn.project_head import ProjectHead, encoder_fingerprint

    folder = tmp_path / "project"
    win = windows(folder=folder)
    head_fitted_on_one(qtbot, win, samples, model_path)
    original = load_model(model_path)
    assert ProjectHead.load(folder / "head.safetensors").encoder == encoder_fingerprint(original)

    learnt = load_model(model_path)
    with torch.no_grad():
        for p in learnt.encoder.parameters():
            p.add_(0.01 * torch.randn_like(p))
    other = save_model(tmp_path / "elsewhere" / model_path.name, learnt)
    with qtbot.waitSignal(win.head.fitted, timeout=WAIT_MS):
        win.worker.load_model(other)
    head = ProjectHead.load(folder / "head.safetensors")
    assert head.model == model_path.name and head.encoder == encoder_fingerprint(learnt)
    assert win.head.head.encoder == head.encoder


def test_a_model_that_cannot_be_loaded_is_named_not_the_head(qtbot, windows, samples, model_path, tmp_path,
                                                              monkeypatch):
    """Review of this branch: reading the head now also loads the model whose encoder it checks, and
    a model that failed to load was said as "The project head could not be read (…)". The head file
    was fine: what failed, the model, is named, and the head is not used unchecked."""
    folder = tmp_path / "project"
    win = windows(folder=folder)
    head_fitted_on_one(qtbot, win, samples, model_path)
    assert win.head.runner.wait_idle()

    said = []
    monkeypatch.setattr(win.head, "_say", lambda text, ms=5000: said.append(text))

    def unreadable():
        raise ValueError(f"{model_path}: not a safetensors file (truncated)")

    monkeypatch.setattr(win.head, "_load_model", unreadable)
    win.head._reset(load=True)  # as a model change or a project open does
    assert win.head.runner.wait_idle()
    qtbot.waitUntil(lambda: bool(said), timeout=WAIT_MS)
    assert not any("project head could not be read" in text for text in said), said
    assert any(f"model {model_path.name} could not be loaded" in text and "truncated" in text for text in said), said
    assert win.head.head is None
