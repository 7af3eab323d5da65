"""Autosaves without a project when sessions use models of other class sets (offscreen): each
class set has its own scratch project, so a session whose model has other classes than the
autosaves still waiting from a crash (answered "Later") is autosaved too, the waiting autosaves
keep their own classes (never renamed by id into another model's), each is offered at a later
start with its classes, and the autosaves of the single scratch folder of earlier versions are
still offered.

A "crash" is a window whose annotations are dropped without saving or discarding (see
``tests/app/test_app_project.py``).
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from qgn.label_map import ClassSet
from studio_steps import WAIT_MS, paint, start_annotating

SAMPLE_COUNT, SAMPLE_SIZE = 2, (64, 96)  # the samples fixture

FIVE = ClassSet(("cat", "dog", "bird", "fish", "horse"), ((200, 0, 0), (0, 200, 0), (0, 0, 200), (90, 90, 0),
                                                          (0, 90, 90)), 255)
# as many classes as the synthetic ones, the same ignore value, other classes: "compatible" by count only
EIGHT_OTHERS = ClassSet(tuple(f"part {i}" for i in range(8)), tuple((30 * i, 20, 200 - 20 * i) for i in range(8)), 255)


def model_of(tmp_path, classes):
    from qgn_studio.testing import make_dev_model

    return make_dev_model(tmp_path / f"{classes.names[0].replace(' ', '')}.safetensors", composite_bias=0.6,
                          classes=classes)


def only(image):
    """A recovery answer: restore the autosaves that include ``image``, keep the others for later."""
    return lambda question: "restore" if any(n.startswith(image.name) for n in question.names) else "later"


def edit_and_autosave(qtbot, win, class_id) -> np.ndarray:
    paint(win, 3, class_id, [(4, 4), (60, 4)])
    with qtbot.waitSignal(win.projects.autosaved, timeout=WAIT_MS):
        pass
    return win.current.annotation.label.copy()


def restored(qtbot, windows, image, model, classes, label) -> None:
    """A start with ``model`` restores the waiting autosave of ``image``: ``label``, of ``classes``."""
    win = windows()
    win.projects.ask_recover = only(image)
    win.start([], str(model))
    qtbot.waitUntil(lambda: any(d.annotation is not None for d in win.docs), timeout=WAIT_MS)
    doc = next(d for d in win.docs if d.annotation is not None)
    assert doc.path == image.resolve()
    np.testing.assert_array_equal(doc.annotation.label, label)
    assert doc.annotation.classes == classes and doc.annotation.dirty
    win.jobs.wait_idle()
    windows.crash(win)  # restored, not saved: still waiting


def test_a_session_of_another_class_set_is_autosaved_beside_waiting_autosaves(qtbot, windows, samples, model_path,
                                                                             tmp_path):
    from qgn.data.synthetic import SYNTHETIC_CLASSES

    first = windows()
    start_annotating(qtbot, first, [samples[0]], model_path)
    crashed = edit_and_autosave(qtbot, first, 6)
    windows.crash(first)

    five = model_of(tmp_path, FIVE)
    second = windows(recover="later")
    start_annotating(qtbot, second, [samples[1]], five)
    warnings = []
    second.workspace.message.connect(lambda text, kind, key: warnings.append(text) if kind == "warning" else None)
    edited = edit_and_autosave(qtbot, second, 4)  # the old single scratch project refused: no autosave
    assert not warnings
    windows.crash(second)

    restored(qtbot, windows, samples[1], model_path, FIVE, edited)  # each offered with its own classes,
    restored(qtbot, windows, samples[0], five, SYNTHETIC_CLASSES, crashed)  # whatever the model in use


def test_later_while_the_model_loads_leaves_the_model_its_classes(qtbot, windows, samples, model_path, tmp_path):
    from qgn.data.synthetic import SYNTHETIC_CLASSES

    first = windows()
    start_annotating(qtbot, first, [samples[0]], model_path)
    crashed = edit_and_autosave(qtbot, first, 6)
    windows.crash(first)

    others = model_of(tmp_path, EIGHT_OTHERS)
    second = windows(recover="later")  # answered before the model has loaded
    start_annotating(qtbot, second, [samples[1]], others)
    assert second.annotator.classes == EIGHT_OTHERS  # not the waiting autosave's classes
    edited = edit_and_autosave(qtbot, second, 2)
    assert second.current.annotation.classes == EIGHT_OTHERS
    windows.crash(second)

    restored(qtbot, windows, samples[0], others, SYNTHETIC_CLASSES, crashed)
    restored(qtbot, windows, samples[1], model_path, EIGHT_OTHERS, edited)


def test_a_window_of_another_class_set_never_renames_a_live_autosave(qtbot, windows, samples, model_path, tmp_path):
    # two windows without a project, models of as many classes but other ones: the second's
    # autosave used to rename the scratch project's classes by id, the first's autosave with them
    from qgn.data.synthetic import SYNTHETIC_CLASSES

    second = windows()
    start_annotating(qtbot, second, [samples[1]], model_of(tmp_path, EIGHT_OTHERS))
    first = windows()
    start_annotating(qtbot, first, [samples[0]], model_path)
    crashed = edit_and_autosave(qtbot, first, 6)
    edit_and_autosave(qtbot, second, 2)
    windows.crash(first)

    restored(qtbot, windows, samples[0], model_path, SYNTHETIC_CLASSES, crashed)


def test_the_autosaves_of_the_single_scratch_folder_of_earlier_versions_are_offered(qtbot, windows, samples,
                                                                                   model_path, tmp_path, user_state):
    from qgn.data.synthetic import SYNTHETIC_CLASSES
    from qgn.project import Project

    legacy = Project.create(user_state / "scratch", [samples[0]], SYNTHETIC_CLASSES)  # as earlier versions made it
    width, height = Image.open(samples[0]).size
    waiting = np.full((height, width), 3, np.uint8)
    legacy.autosave(legacy.images[0], waiting)

    second = windows(recover="later")
    start_annotating(qtbot, second, [samples[1]], model_of(tmp_path, FIVE))
    edit_and_autosave(qtbot, second, 1)  # another class set: autosaved elsewhere, the old folder untouched
    windows.crash(second)
    assert Project.open(user_state / "scratch").classes == SYNTHETIC_CLASSES

    restored(qtbot, windows, samples[0], model_path, SYNTHETIC_CLASSES, waiting)


def test_a_class_renamed_by_another_window_leaves_this_one_autosaving(qtbot, windows, samples, model_path,
                                                                     user_state):
    # two windows without a project, one class set: the second renames a class, which renames the
    # scratch project of that set in place; the first's maps still have the old names, so they are
    # autosaved into a scratch project of their own set (not refused every 10 s from then on)
    from qgn.data.synthetic import SYNTHETIC_CLASSES
    from qgn.project import Project

    first = windows()
    start_annotating(qtbot, first, [samples[0]], model_path)
    first.projects.retry.setInterval(50)
    older = edit_and_autosave(qtbot, first, 6)
    second = windows()
    start_annotating(qtbot, second, [samples[1]], model_path)
    edit_and_autosave(qtbot, second, 5)
    second.annotator.rename_class(6, "barrier")
    second.jobs.wait_idle()
    assert second.annotator.classes.names[6] == "barrier"
    edited = edit_and_autosave(qtbot, first, 3)
    windows.crash(first)

    restored(qtbot, windows, samples[0], model_path, SYNTHETIC_CLASSES, edited)  # the newer first
    renamed = [p for p in map(Project.open, (user_state / "scratch").iterdir()) if p.classes.names[6] == "barrier"]
    image = renamed[0].image_for(samples[0])  # the older, renamed by the other window: kept, offered later
    assert image in renamed[0].recoverable()
    np.testing.assert_array_equal(renamed[0].recover(image), older)


def test_a_scratch_project_never_takes_a_folder_of_something_else(tmp_path):
    from qgn.data.synthetic import SYNTHETIC_CLASSES
    from qgn.project import Project
    from qgn_studio.scratch import class_digest, scratch_folders, scratch_project

    base = tmp_path / "unsaved"
    legacy = Project.create(base, [], FIVE)  # the single scratch folder of earlier versions
    squatter = base / f"classes-{class_digest(SYNTHETIC_CLASSES)}"
    squatter.mkdir()
    (squatter / "notes.txt").write_text("mine")
    made = scratch_project(base, SYNTHETIC_CLASSES)
    assert made.root == base / f"{squatter.name}-2" and made.classes == SYNTHETIC_CLASSES
    assert (squatter / "notes.txt").read_text() == "mine" and not (squatter / "project.json").exists()
    assert scratch_project(base, SYNTHETIC_CLASSES).root == made.root  # found again, not made anew
    assert scratch_project(base, FIVE).root == legacy.root  # the old folder still takes its class set
    assert scratch_folders(base) == [base, made.root]


def test_a_model_of_other_classes_loading_after_a_restore_leaves_the_restored_classes(qtbot, windows, samples,
                                                                                       model_path, tmp_path):
    # the restored map keeps its classes; the model that finishes loading afterwards used to put
    # its own classes in the Classes panel and the tools, over the map being edited: a paint with
    # one of the model's class ids then wrote an id the map's class set does not have
    first = windows()
    start_annotating(qtbot, first, [samples[0]], model_of(tmp_path, FIVE))
    edit_and_autosave(qtbot, first, 4)
    windows.crash(first)

    second = windows(recover="restore")
    second.start([], str(model_path))  # eight classes: asked before it has loaded
    qtbot.waitUntil(lambda: second.model_info is not None and second.docs and second.docs[0].annotation is not None
                    and second.docs[0].annotation.origin == "recovered", timeout=WAIT_MS)
    second.jobs.wait_idle()
    doc = second.docs[0]
    assert doc.annotation.classes == FIVE
    assert second.annotator.classes == FIVE  # what the panel shows and the tools paint with
    panel = second.annotator.panel.classes
    assert [panel.item(i, 2).text() for i in range(panel.rowCount())] == list(FIVE.names)
    second.annotator.set_mode(True)
    paint(second, 3, 7, [(4, 30), (60, 30)])  # a class the model has and the map's set lacks: refused
    paint(second, 3, 1, [(4, 40), (60, 40)])
    assert set(np.unique(doc.annotation.label)) <= set(range(FIVE.num_classes)) | {FIVE.ignore_index}


def test_opening_a_model_of_other_classes_over_open_maps_keeps_their_classes_in_the_tools(qtbot, windows, samples,
                                                                                         model_path, tmp_path):
    # the same with no restore: Ctrl+M on a model of other classes while a map is open
    from qgn.data.synthetic import SYNTHETIC_CLASSES

    win = windows()
    session = start_annotating(qtbot, win, [samples[0]], model_path)
    warnings = []
    win.workspace.message.connect(lambda text, kind, key: warnings.append(text) if kind == "warning" else None)
    win.load_model(model_of(tmp_path, FIVE))
    qtbot.waitUntil(lambda: win.model_info.classes == FIVE, timeout=WAIT_MS)
    assert session.classes == SYNTHETIC_CLASSES and win.annotator.classes == SYNTHETIC_CLASSES
    assert any("keep theirs" in text for text in warnings)
