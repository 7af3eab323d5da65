"""The crash-recovery question (offscreen): it says whose autosaves it is about — a project, or the
scratch project of a class set when there was none — which images, when each was autosaved and
which are older than their saved annotation; its dialog fits the screen whatever the count; and
its *Discard* keeps the autosaves in ``discarded/`` instead of deleting them.

A "crash" is a window whose annotations are dropped without saving or discarding (see
``tests/app/test_app_project.py``).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from qgn.label_map import ClassSet
from studio_steps import WAIT_MS, paint, start_annotating

SAMPLE_COUNT, SAMPLE_SIZE = 2, (64, 96)  # the samples fixture

FIVE = ClassSet(("cat", "dog", "bird", "fish", "horse"), ((200, 0, 0), (0, 200, 0), (0, 0, 200), (90, 90, 0),
                                                          (0, 90, 90)), 255)


def crash_with_an_autosave(qtbot, windows, sample, model) -> np.ndarray:
    win = windows()
    start_annotating(qtbot, win, [sample], model)
    paint(win, 3, 1, [(4, 4), (60, 4)])
    with qtbot.waitSignal(win.projects.autosaved, timeout=WAIT_MS):
        pass
    label = win.current.annotation.label.copy()
    windows.crash(win)
    return label


def test_each_class_set_s_question_says_which_set_which_images_and_when(qtbot, windows, samples, model_path,
                                                                        tmp_path):
    from qgn.data.synthetic import SYNTHETIC_CLASSES
    from qgn_studio.testing import make_dev_model

    five = make_dev_model(tmp_path / "five.safetensors", composite_bias=0.6, classes=FIVE)
    before = time.time() - 2  # file times may be coarser than the clock
    crash_with_an_autosave(qtbot, windows, samples[0], model_path)
    crash_with_an_autosave(qtbot, windows, samples[1], five)
    after = time.time() + 2

    asked = []
    win = windows()
    win.projects.ask_recover = lambda question: asked.append(question) or "later"
    win.start([], str(model_path))
    assert len(asked) == 2
    by_set = {q.class_names: q for q in asked}
    assert set(by_set) == {tuple(SYNTHETIC_CLASSES.names), tuple(FIVE.names)}
    for classes, sample in ((SYNTHETIC_CLASSES, samples[0]), (FIVE, samples[1])):
        question = by_set[tuple(classes.names)]
        assert question.scratch and question.names == [sample.name]
        assert before <= question.items[0].autosaved <= after
        assert question.where().startswith("Without a project") and classes.names[0] in question.where()
        assert "1 image had edits" in question.summary() and "just now" in question.summary()
    assert asked[0].where() != asked[1].where()  # the two questions no longer look the same


def test_the_question_about_a_project_names_it_and_the_images_older_than_their_save(tmp_path):
    from qgn.data.synthetic import SYNTHETIC_CLASSES
    from qgn.project import Project
    from qgn_studio.recovery_question import RecoveryQuestion, ago
    from qgn_studio.testing import write_samples

    paths = write_samples(tmp_path / "images", 3, size=(16, 16))
    project = Project.create(tmp_path / "roads", paths, SYNTHETIC_CLASSES)
    a, b, c = project.images
    for im in (a, b, c):
        project.autosave(im, np.full((16, 16), 2, np.uint8))
    earlier = time.time() - 60
    os.utime(project.autosave_path(b), (earlier, earlier))
    project.save_annotation(b, np.full((16, 16), 3, np.uint8), keep_autosave=True)  # another writer's later save
    question = RecoveryQuestion.of(project, project.recoverable(), scratch=False)
    assert question.where() == "Project “roads”"
    assert sorted(question.names) == sorted([a.path.name, b.path.name + " (its saved annotation is newer)",
                                             c.path.name])
    assert "1 of them is older than its saved annotation" in question.summary()
    now = 1_700_000_000.0
    assert [ago(now - s, now) for s in (5, 125, 3 * 3600 + 5, 86400 + 1, 3 * 86400)] == [
        "just now", "2 min ago", "3 h ago", "1 day ago", "3 days ago"]


def question_of(count: int):
    from qgn_studio.recovery_question import RecoveryItem, RecoveryQuestion

    now = time.time()
    items = tuple(RecoveryItem(f"scene_{i:03d}.png", now - 600 * i, i == 3) for i in range(count))
    return RecoveryQuestion(Path("/home/u/unsaved/classes-0123"), True, tuple(f"class {i}" for i in range(12)), items)


def test_the_dialog_lists_40_images_in_a_list_that_scrolls_within_the_screen(qtbot):
    from qgn_studio.ask import RecoveryDialog

    for count in (1, 40):
        dialog = RecoveryDialog(question_of(count))
        qtbot.addWidget(dialog)
        dialog.show()
        assert dialog.list.count() == count
        assert dialog.list.item(0).text().startswith("scene_000.png — autosaved just now")
        assert dialog.height() <= 500 and dialog.width() <= 900  # a 1280×800 screen, with room to spare
        assert (dialog.list.verticalScrollBar().maximum() > 0) == (count > RecoveryDialog.LIST_ROWS)
        assert "Without a project — 12 classes: class 0, class 1, class 2, class 3 and 8 more" in dialog.where.text()
    assert "(its saved annotation is newer)" in dialog.list.item(3).text()
    dialog.buttons["discard"].click()
    assert dialog.choice == "discard"


def test_discard_keeps_the_autosaves_in_discarded(qtbot, windows, samples, model_path, user_state):
    from qgn.quadtree.label_io import read_label_file
    from qgn.data.synthetic import SYNTHETIC_CLASSES

    label = crash_with_an_autosave(qtbot, windows, samples[0], model_path)
    win = windows(recover="discard")
    status = []
    win.workspace.status.connect(lambda text, timeout: status.append(text))
    win.start([], str(model_path))
    win.jobs.wait_idle()
    kept = list((user_state / "scratch").rglob("discarded/*.qgt"))
    assert len(kept) == 1 and kept[0].name.startswith(samples[0].stem)
    np.testing.assert_array_equal(read_label_file(kept[0], SYNTHETIC_CLASSES), label)
    assert any("moved to" in text and "discarded" in text for text in status)
    windows.crash(win)
    asked = []
    third = windows()
    third.projects.ask_recover = lambda question: asked.append(question) or "later"
    third.start([], str(model_path))
    assert asked == []  # discarded: not offered again


def test_undoing_back_to_the_saved_map_moves_the_autosave_to_discarded(qtbot, windows, samples, model_path,
                                                                       user_state):
    # redo still holds those edits, in memory only: their autosave is not offered any more, but kept in
    # discarded/ (deleted before: a crash then lost the redo-able edits)
    win = windows()
    session = start_annotating(qtbot, win, [samples[0]], model_path)
    paint(win, 3, 1, [(4, 4), (60, 4)])
    with qtbot.waitSignal(win.projects.autosaved, timeout=WAIT_MS):
        pass
    assert list((user_state / "scratch").rglob(".autosave/*.qgt"))
    session.undo.undo()
    win.jobs.wait_idle()
    assert not session.dirty
    assert not list((user_state / "scratch").rglob(".autosave/*.qgt"))
    assert len(list((user_state / "scratch").rglob("discarded/*.qgt"))) == 1


def test_discarding_unsaved_edits_at_close_keeps_their_autosave_in_discarded(qtbot, windows, samples, model_path,
                                                                            user_state):
    from qgn.data.synthetic import SYNTHETIC_CLASSES
    from qgn.quadtree.label_io import read_label_file

    win = windows(unsaved="discard")
    start_annotating(qtbot, win, [samples[0]], model_path)
    paint(win, 3, 1, [(4, 4), (60, 4)])
    with qtbot.waitSignal(win.projects.autosaved, timeout=WAIT_MS):
        pass
    label = win.current.annotation.label.copy()
    assert win.projects.confirm_discard("closing")
    win.jobs.wait_idle()
    assert not list((user_state / "scratch").rglob(".autosave/*.qgt"))
    kept = list((user_state / "scratch").rglob("discarded/*.qgt"))
    assert len(kept) == 1
    np.testing.assert_array_equal(read_label_file(kept[0], SYNTHETIC_CLASSES), label)
