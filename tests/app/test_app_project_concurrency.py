"""Two windows, or the app and a command, on one project (issue #20): the app notices that the
project changed on disk and reloads it — never overwrites it — and a class edit the project cannot
apply changes nothing, in the files and in the open maps."""
from __future__ import annotations

import numpy as np

from qgn.cli.main import main
from qgn.project import Project

from sample_files import ids_dataset
from studio_steps import WAIT_MS, paint, start_annotating

SAMPLE_COUNT = 2  # the samples fixture


def saved_project(qtbot, win, samples, model_path, folder):
    """``win`` annotating ``samples`` with a saved annotation of the first in a project at ``folder``."""
    session = start_annotating(qtbot, win, samples, model_path)
    paint(win, 2, 6, [(10, 10), (50, 30)])
    with qtbot.waitSignal(win.projects.saved, timeout=WAIT_MS):
        assert win.projects.save()
    return session


def test_two_windows_a_class_rename_in_one_is_never_overwritten_by_the_other(qtbot, windows, samples, model_path, tmp_path):
    folder = tmp_path / "shared"
    first = windows(folder=folder)
    saved_project(qtbot, first, samples, model_path, folder)
    saved = Project.open(folder).load_annotation(Project.open(folder).images[0])
    second = windows()
    second.start([folder], str(model_path))  # open since before the rename
    qtbot.waitUntil(lambda: second.docs and second.docs[0].annotation is not None, timeout=WAIT_MS)
    first.annotator.rename_class(6, "barrier")  # writes generation 1
    first.jobs.wait_idle()
    assert Project.open(folder).generation == 1
    second.images.set_current(1)
    qtbot.waitUntil(lambda: second.current.result is not None, timeout=WAIT_MS)
    second.annotator.set_done(True)  # the write that used to put back generation 0 and the old names
    second.jobs.wait_idle()
    qtbot.waitUntil(lambda: second.annotator.classes.names[6] == "barrier", timeout=WAIT_MS)  # it reloaded
    project = Project.open(folder)
    assert project.generation == 1 and project.classes.names[6] == "barrier"
    np.testing.assert_array_equal(project.load_annotation(project.images[0]), saved)
    assert "changed" in second.statusBar().currentMessage() or second.projects.project.classes.names[6] == "barrier"
    # The second window's next writes go into the reloaded project.
    second.annotator.set_done(True)
    second.jobs.wait_idle()
    qtbot.waitUntil(lambda: Project.open(folder).image_for(samples[1]).done, timeout=WAIT_MS)
    assert Project.open(folder).classes.names[6] == "barrier"


def test_the_app_keeps_images_a_command_imported_meanwhile(qtbot, windows, samples, model_path, tmp_path, capsys):
    folder = tmp_path / "imported"
    win = windows(folder=folder)
    saved_project(qtbot, win, samples, model_path, folder)
    dataset = ids_dataset(tmp_path / "ds", 3, size=(12, 8))
    assert main(["import", str(dataset / "labels"), "--project", str(folder), "--format", "ids"]) == 0, capsys.readouterr()
    win.annotator.set_done(True)  # the app's next write of project.json
    win.jobs.wait_idle()
    qtbot.waitUntil(lambda: len(win.docs) == 5, timeout=WAIT_MS)  # it noticed, and lists them
    project = Project.open(folder)
    assert len(project.images) == 5 and len(project.annotated()) == 4
    assert project.image_for(win.current.path).done


def test_a_class_edit_the_project_cannot_apply_changes_nothing(qtbot, windows, samples, model_path, tmp_path, snapshot):
    folder = tmp_path / "broken"
    win = windows(folder=folder)
    session = saved_project(qtbot, win, samples, model_path, folder)
    win.images.set_current(1)
    qtbot.waitUntil(lambda: win.current.annotation is not None, timeout=WAIT_MS)
    paint(win, 2, 6, [(5, 5), (40, 20)])
    with qtbot.waitSignal(win.projects.saved, timeout=WAIT_MS):
        assert win.projects.save()
    qtbot.waitUntil(lambda: not win.head.fitting, timeout=WAIT_MS)  # the save's head refit is written
    project = Project.open(folder)
    broken = project.annotation_path(project.images[1])
    broken.write_bytes(broken.read_bytes()[:-7])  # one file the edit cannot rewrite
    win.head.runner.wait_idle()  # the per-project head refits after every save and writes head.*: not the edit's
    before_files = snapshot(folder)
    names = win.annotator.classes.names
    open_before = session.label.copy()
    assert (open_before == 6).any()
    shown: list[str] = []  # every status message: the head's refit may post its own after the edit's
    win.statusBar().messageChanged.connect(shown.append)
    win.annotator.remove_class(6, to=None)  # delete a class the maps use
    win.jobs.wait_idle()
    qtbot.waitUntil(lambda: win.annotator.classes.names == names, timeout=WAIT_MS)  # undone in the app too
    win.jobs.wait_idle()
    assert snapshot(folder) == before_files
    assert Project.open(folder).classes.names == names
    np.testing.assert_array_equal(win.docs[0].annotation.label, open_before)
    assert any("Cannot change the classes" in message for message in shown), shown
