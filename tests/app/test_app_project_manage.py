"""Managing a project's dataset in the app: images opened inside a project join it only when the
user says so (and then project.json has them), Close project, Remove image (its annotation kept
in removed/), the image list's filter, the project's statistics against a brute-force count, and
the project's own model on reopen (a model-less project adopts the model in use, and says so);
"changed vs prediction" reads 0 with no edits when the project's classes differ from the model's.
"""
from __future__ import annotations

import html
import json
import shutil

import numpy as np
from PySide6 import QtWidgets
import pytest

from qgn.classes import ClassSet
from qgn.quadtree.label_io import read_label_file
from qgn.project import Project
from qgn_studio.testing import make_dev_model, write_samples

from studio_steps import WAIT_MS, start_annotating, wait_for_image

SIZE = (64, 96)
SAMPLE_COUNT = 2  # the samples fixture


def project_images(root):
    return [e["path"] for e in json.loads((root / "project.json").read_text())["images"]]


def paint(win, class_id, y=5.5):
    from studio_steps import drag

    win.annotator.tools.set_level(1)
    win.annotator.tools.set_class(class_id)
    win.canvas.fit()
    drag(win, [(5.5, y), (40.5, y)])


def saved(qtbot, win):
    win.projects.save()
    win.jobs.wait_idle()
    qtbot.waitUntil(lambda: not win.projects.unsaved(), timeout=WAIT_MS)


@pytest.mark.parametrize("answer", ["add", "close", "cancel"])
def test_opening_images_inside_a_project_asks(qtbot, windows, samples, model_path, tmp_path, answer):
    root = tmp_path / "project"
    win = windows(folder=root)
    start_annotating(qtbot, win, samples, model_path)
    assert win.projects.new_project(root)
    others = write_samples(tmp_path / "more", 3, SIZE, layout="none")
    asked = []
    win.projects.ask_add_images = lambda count, name: (asked.append((count, name)), answer)[1]
    win.open_paths([str(tmp_path / "more")])
    win.jobs.wait_idle()
    qtbot.wait(50)
    assert asked == [(3, "project")]
    listed = [d.path for d in win.docs]
    if answer == "add":
        assert listed == samples + others
        assert len(project_images(root)) == 5, "added images are in project.json at once"
    elif answer == "close":
        assert win.projects.project is None and listed == others
        assert len(project_images(root)) == 2
    else:
        assert listed == samples and len(project_images(root)) == 2


def project_with_a_saved_image(qtbot, windows, samples, model_path, root):
    """A window annotating ``samples`` with a new project at ``root`` whose first image is painted and
    saved: (the window, that image's key)."""
    win = windows(folder=root)
    start_annotating(qtbot, win, samples, model_path)
    paint(win, 3)
    assert win.projects.new_project(root)
    saved(qtbot, win)
    return win, win.projects.project.image_for(samples[0]).key


def test_close_project_and_remove_image(qtbot, windows, samples, model_path, tmp_path):
    root = tmp_path / "project"
    win, key = project_with_a_saved_image(qtbot, windows, samples, model_path, root)
    win.projects.ask_remove = lambda names, project: names == [samples[0].name] and project == "project"
    win.images.set_current(0)
    win.remove_current_images()
    win.jobs.wait_idle()
    qtbot.waitUntil(lambda: len(project_images(root)) == 1, timeout=WAIT_MS)
    assert [d.path for d in win.docs] == [samples[1]]
    kept = list((root / "removed").glob(f"{key}.annotation.*.qgt"))
    assert len(kept) == 1 and not (root / "annotations" / f"{key}.qgt").exists(), "moved, not deleted"
    qtbot.waitUntil(lambda: win.current is not None and win.current.result is not None, timeout=WAIT_MS)
    win.canvas.hovered.emit(3.0, 4.0)  # the pointer over the image, as the project closes
    assert win.hover_label.text()
    assert win.projects.close_project()
    assert win.projects.project is None and win.docs == [] and "project" not in win.windowTitle()
    # nothing of the last image stays: not what was under the pointer, not its active sites per level
    assert win.hover_label.text() == ""
    levels = [item for key, item in win.layer_panel.items.items() if key.startswith("q")]
    assert levels and all(item.text(1) == "–" for item in levels)
    reopened = Project.open(root)
    assert [im.path for im in reopened.images] == [samples[1]]


def test_an_image_removed_by_mistake_gets_its_annotation_back(qtbot, windows, samples, model_path, tmp_path):
    root = tmp_path / "project"
    win, key = project_with_a_saved_image(qtbot, windows, samples, model_path, root)
    before = (root / "annotations" / f"{key}.qgt").read_bytes()
    painted = win.docs[0].annotation.label.copy()
    win.projects.ask_remove = lambda names, project: True
    win.images.set_current(0)
    win.remove_current_images()
    win.jobs.wait_idle()
    qtbot.waitUntil(lambda: len(project_images(root)) == 1, timeout=WAIT_MS)
    shown: list[str] = []  # every status shown: another (a prediction's) may replace it before a look
    win.statusBar().messageChanged.connect(shown.append)
    win.open_paths([str(samples[0])])  # added back: the project has it again
    win.jobs.wait_idle()
    qtbot.waitUntil(lambda: any("Brought back the annotation of " + samples[0].name in m for m in shown),
                    timeout=WAIT_MS)
    image = win.projects.project.image_for(samples[0])
    assert (root / "annotations" / f"{image.key}.qgt").read_bytes() == before
    assert not list((root / "removed").glob("*.annotation.*.qgt")), "moved back, not copied"
    doc = next(d for d in win.docs if d.path == samples[0])
    win.images.set_current(win.docs.index(doc))
    qtbot.waitUntil(lambda: doc.annotation is not None and doc.path not in win.annotator.loading, timeout=WAIT_MS)
    assert np.array_equal(doc.annotation.label, painted), "the labels the user saved are shown again"


def test_list_filter_and_statistics(qtbot, windows, model_path, tmp_path):
    paths = write_samples(tmp_path / "data", 4, SIZE)
    root = tmp_path / "project"
    win = windows(folder=root)
    start_annotating(qtbot, win, paths, model_path)
    assert win.projects.new_project(root)
    for i in (0, 2):
        win.images.set_current(i)
        qtbot.waitUntil(lambda: win.current is win.docs[i] and win.current.annotation is not None, timeout=WAIT_MS)
        paint(win, 6, y=5.5 + 4 * i)
    saved(qtbot, win)
    win.images.set_current(1)
    win.annotator.set_done(True)
    win.jobs.wait_idle()
    # a fresh window: the saved annotations are on disk, not open
    win2 = windows(folder=root)
    win2.start([str(root)], str(model_path))
    qtbot.waitUntil(lambda: len(win2.docs) == 4 and win2.docs[1].done, timeout=WAIT_MS)
    project = win2.projects.project
    truth = {}
    for im in project.images:
        path = project.annotation_path(im)
        if path.is_file():
            truth[im.path] = read_label_file(path, project.classes)
    win2.images.set_current(3)
    win2.images.set_filter("not_done")
    assert win2.images.visible_rows() == [0, 2, 3]
    win2.step_image(-1)
    assert win2.images.current() == 2
    win2.step_image(-1)
    assert win2.images.current() == 0, "P skips the hidden image"
    win2.images.set_filter("class:6")
    expected = [i for i, d in enumerate(win2.docs) if d.path in truth and (truth[d.path] == 6).any()]
    qtbot.waitUntil(lambda: [r for r in win2.images.visible_rows() if r != win2.images.current()]
                    == [r for r in expected if r != win2.images.current()], timeout=WAIT_MS)
    assert expected == [0, 2]
    win2.images.set_filter("all", "scene_03")
    assert win2.images.visible_rows() == [3] or win2.images.visible_rows() == sorted({3, win2.images.current()})

    dialog = win2.show_statistics()
    qtbot.waitUntil(lambda: dialog.stats is not None, timeout=WAIT_MS)
    stats = dialog.stats
    k = project.classes.num_classes
    brute = np.zeros(k + 1, np.int64)
    for label in truth.values():
        for v in np.unique(label):
            brute[v if v < k else k] += int((label == v).sum())
    np.testing.assert_array_equal(stats.pixels_per_class(), brute)
    assert stats.annotated == 2 and stats.done == 1 and len(stats.images) == 4
    assert stats.images_per_class()[6] == 2
    assert f"{int(brute[6]):,}" == dialog.table.item(6, 1).text()
    dialog.close()


def test_reopen_uses_the_projects_model(qtbot, windows, samples, model_path, tmp_path):
    other = make_dev_model(tmp_path / "other.safetensors", seed=3)
    root = tmp_path / "project"
    win = windows(folder=root)
    start_annotating(qtbot, win, samples, model_path)
    assert win.projects.new_project(root)
    assert Project.open(root).model == str(model_path)
    win.load_model(other)  # the last model used anywhere: the settings remember it
    qtbot.waitUntil(lambda: win.model_info is not None and win.model_info.path.resolve() == other.resolve(),
                    timeout=WAIT_MS)
    win.jobs.wait_idle()  # recorded once it loaded, by a job
    assert Path_of(Project.open(root).model) == other.resolve(), "choosing a model in a project records it"
    # the project goes back to its first model on disk; a new window opens it with "other" remembered
    project = Project.open(root)
    project.model = str(model_path)
    project.save()
    win2 = windows(folder=root)
    win2.start([str(root)])
    qtbot.waitUntil(lambda: win2.model_info is not None and win2.model_info.path.resolve() == model_path.resolve(),
                    timeout=WAIT_MS)
    qtbot.wait(300)
    assert win2.model_info.path.resolve() == model_path.resolve()


def Path_of(stored):
    from pathlib import Path

    return Path(stored).resolve()


def test_a_project_without_a_model_adopts_the_one_in_use(qtbot, windows, samples, model_path, tmp_path):
    root = tmp_path / "imported"
    Project.create(root, samples, make_classes(), None)  # as `qgn import` leaves it: "model": null
    win = windows(folder=root)
    win.start([str(root)], str(model_path))
    qtbot.waitUntil(lambda: win.model_info is not None and win.projects.project is not None, timeout=WAIT_MS)
    win.jobs.wait_idle()
    qtbot.waitUntil(lambda: Project.open(root).model is not None, timeout=WAIT_MS)
    assert Path_of(Project.open(root).model) == model_path.resolve()


def test_a_project_whose_model_is_missing_keeps_naming_it_until_one_is_opened(qtbot, windows, samples,
                                                                              model_path, tmp_path):
    away = "/media/usb/models/street.safetensors"  # a drive not mounted today
    root = tmp_path / "project"
    Project.create(root, samples, make_classes(), away)
    before = (root / "project.json").read_bytes()
    win = windows(folder=root)
    said = []
    win.workspace.status.connect(lambda text, _ms: said.append(text))
    win.start([str(root)], str(model_path))
    qtbot.waitUntil(lambda: win.model_info is not None and win.projects.project is not None, timeout=WAIT_MS)
    qtbot.wait(200)
    win.jobs.wait_idle()
    assert (root / "project.json").read_bytes() == before  # opening writes nothing
    missing = [t for t in said if away in t]
    assert len(said) == 1 and len(missing) == 1 and "the model in use stays" in missing[0]  # one story, told once
    other = make_dev_model(tmp_path / "other.safetensors", seed=3)
    with qtbot.waitSignal(win.worker.model_loaded, timeout=WAIT_MS):
        win.load_model(other)  # the user opens a model: now the project remembers it
    win.jobs.wait_idle()
    assert Path_of(Project.open(root).model) == other.resolve()


@pytest.mark.parametrize("damage", ["cut short", "a folder", "a link to nothing", "annotations linked to nothing"])
def test_a_project_that_cannot_be_opened_is_not_taken_for_a_folder_of_images(qtbot, window, samples, model_path,
                                                                              tmp_path, damage):
    root = tmp_path / "project"
    Project.create(root, samples, make_classes(), str(model_path))
    if damage == "cut short":
        (root / "project.json").write_text('{"format": ')
    elif damage == "a folder":  # a project.json that is a folder was "no images in this folder"
        (root / "project.json").unlink()
        (root / "project.json").mkdir()
    elif damage == "annotations linked to nothing":  # opened: the first image shown raised OutsideRootError
        import shutil

        shutil.rmtree(root / "annotations", ignore_errors=True)
        (root / "annotations").symlink_to(tmp_path / "gone", target_is_directory=True)
    else:  # a link to a project.json moved away: also listed as a folder of (no) images
        (root / "project.json").unlink()
        (root / "project.json").symlink_to(tmp_path / "gone.json")
    window.start([str(samples[0])], str(model_path))
    window.open_paths([str(root)])  # a drop, File ▸ Open recent, the command line
    messages = window.canvas.banner.messages
    assert "Cannot open the project" in messages["project"][0]
    assert damage != "a folder" or "is not a file" in messages["project"][0]
    assert damage not in ("a link to nothing", "annotations linked to nothing") or \
        "which does not exist (restore or mount what it points to" in html.unescape(messages["project"][0])
    assert "open" not in messages and [d.path for d in window.docs] == [samples[0].resolve()]  # not "no images"


def make_classes():
    from qgn.data.synthetic import SYNTHETIC_CLASSES

    return SYNTHETIC_CLASSES


def test_changed_vs_prediction_is_zero_without_edits_when_classes_differ(qtbot, windows, samples, model_path,
                                                                         tmp_path):
    from qgn.data.synthetic import SYNTHETIC_CLASSES as model_classes

    fewer = ClassSet(model_classes.names[:6], model_classes.palette[:6], 255, model_classes.ignore_color)
    root = tmp_path / "project"
    win = windows(folder=root)
    win.projects.ask_classes = lambda current: fewer
    win.start(samples, str(model_path))
    qtbot.waitUntil(lambda: win.current is not None and win.current.result is not None, timeout=WAIT_MS)
    assert win.projects.new_project(root)
    assert win.annotator.classes == fewer
    win.annotator.set_mode(True)
    qtbot.waitUntil(lambda: win.current.annotation is not None, timeout=WAIT_MS)
    session = win.current.annotation
    assert session.undo.count() == 0
    qtbot.waitUntil(lambda: "Changed: " in win.annotator.panel.changed_text.text(), timeout=WAIT_MS)
    assert "<b>0 px</b>" in win.annotator.panel.changed_text.text()
    np.testing.assert_array_equal(session.label, session.reference)


# ------------------------------------------------------------------- opening, autosave, recent files
def test_opening_images_keeps_the_projects_images(qtbot, window, model_path, tmp_path):
    samples = write_samples(tmp_path / "data", 2, (64, 96))
    window.start(samples, str(model_path))
    wait_for_image(qtbot, window, samples[0])
    window.projects.ask_folder = lambda title, new: tmp_path / "proj"
    assert window.projects.new_project()
    extra = write_samples(tmp_path / "more", 1, (64, 96))
    window.open_paths([extra[0]])  # File ▸ Open while the project is open
    assert [d.path for d in window.docs] == [p.resolve() for p in samples] + [extra[0].resolve()]


def test_autosave_shows_in_the_status_bar(qtbot, window):
    window.projects.autosaved.emit(2)
    assert "Autosaved 2 annotations" in window.statusBar().currentMessage()


def test_recent_paths_and_last_folder(qtbot, window, model_path, tmp_path):
    from qgn.resources import samples_dir

    samples = write_samples(tmp_path / "data", 2, (64, 96))
    window.start([samples[0].parent], str(model_path))
    wait_for_image(qtbot, window, samples[0])
    window.projects.ask_folder = lambda title, new: tmp_path / "proj"
    assert window.projects.new_project()
    window._fill_recent_menu()
    texts = [a.text() for a in window.recent_menu.actions()]
    assert texts[0].startswith("Project: proj") and any(t.startswith("Folder: images") for t in texts)
    assert window.workspace.last_folder() == str(samples[0].parent)
    window.workspace.remember_folder(samples_dir() / "images" / "x.png")  # the bundled samples are not "where I was"
    assert window.workspace.last_folder() == str(samples[0].parent)


def test_the_last_project_reopens_after_a_normal_quit(qtbot, window, model_path, tmp_path):
    from qgn.resources import samples_dir

    from qgn_studio.main_window import MainWindow, make_settings

    samples = write_samples(tmp_path / "data", 1, (64, 96))
    window.start(samples, str(model_path))
    wait_for_image(qtbot, window, samples[0])
    window.projects.ask_folder = lambda title, new: tmp_path / "proj"
    assert window.projects.new_project()
    window.close()  # a normal quit
    again = MainWindow(settings=make_settings())
    qtbot.addWidget(again)
    assert again.projects.paths_at_start([str(samples_dir() / "images")]) == [str((tmp_path / "proj").resolve())]
    assert again.projects.paths_at_start([str(samples[0])]) == [str(samples[0])]  # asked for: opened


def test_an_image_the_project_cannot_remove_stays_listed(qtbot, windows, samples, model_path, tmp_path, monkeypatch):
    # another program holds the project's write lock (a long class edit, a stuck command) past the
    # timeout: the removal fails ("Cannot remove the images: ... try again when it is done"), but
    # the image had left the list already while project.json still has it - nothing to try again on
    # until the project is opened anew, and the list disagreed with the project
    root = tmp_path / "project"
    win, key = project_with_a_saved_image(qtbot, windows, samples, model_path, root)
    win.projects.project.image_for(samples[0]).done = True  # shown again as it was
    win.docs[0].done = True
    refused_removal(qtbot, win, root, monkeypatch)  # another open file holds the project's lock
    assert len(project_images(root)) == 2
    # where it was, the image the user went on to staying current (it moved to the one listed again)
    assert [d.path for d in win.docs] == samples, "the image the project still has is listed where it was"
    assert win.current is win.docs[1]
    doc = next(d for d in win.docs if d.path == samples[0])
    assert doc.done and (root / "annotations" / f"{key}.qgt").exists()
    said = win.canvas.banner.messages["project"][0]
    assert f"{samples[0].name} stays in the project and is listed again" in said
    win.images.set_current(win.docs.index(doc))  # its saved annotation is shown again
    saved_map = read_label_file(root / "annotations" / f"{key}.qgt", win.projects.project.classes)
    qtbot.waitUntil(lambda: doc.annotation is not None and doc.path not in win.annotator.loading, timeout=WAIT_MS)
    assert np.array_equal(doc.annotation.label, saved_map)


def refused_removal(qtbot, win, root, monkeypatch, before=lambda: None, row: int = 0) -> None:
    """``before()``, then Image > Remove of the image at ``row`` (the first) answered "Discard" (the
    real question), while another open file holds the project's write lock (timeout 0): refused."""
    import fcntl
    import os

    from qgn_studio.project_controller import ProjectController

    win.jobs.wait_idle()
    win.projects.confirm_discard = ProjectController.confirm_discard.__get__(win.projects)
    win.projects.ask_unsaved = lambda count, what: "discard"
    monkeypatch.setenv("QGN_PROJECT_LOCK_TIMEOUT", "0")
    holder = os.open(root, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        before()
        win.images.set_current(row)
        win.remove_current_images()
        qtbot.waitUntil(lambda: "Cannot remove" in win.canvas.banner.messages.get("project", ("",))[0],
                        timeout=WAIT_MS)
        win.jobs.wait_idle()
        QtWidgets.QApplication.processEvents()
    finally:
        os.close(holder)
    monkeypatch.setenv("QGN_PROJECT_LOCK_TIMEOUT", "5")


def edited_and_autosaved(qtbot, win, root, key):
    """The first image painted and autosaved (its file in .autosave/): its document."""
    win.images.set_current(0)
    doc = win.docs[0]
    paint(win, 1, y=20.5)
    win.projects.autosave_now()
    win.jobs.wait_idle()
    qtbot.waitUntil(lambda: (root / ".autosave" / f"{key}.qgt").is_file(), timeout=WAIT_MS)
    return doc


def test_a_refused_mark_of_an_image_the_project_cannot_remove_stays_pending(
        qtbot, windows, samples, model_path, tmp_path, monkeypatch):
    # the "Discard" answered for the removal forgot the refused done mark: the image came back
    # showing done while project.json said not done, for good (no retry, closing asked nothing)
    root = tmp_path / "project"
    win, _key = project_with_a_saved_image(qtbot, windows, samples, model_path, root)

    def mark() -> None:  # refused: the project is busy
        win.images.set_current(0)
        win.annotator.set_done(True)
        qtbot.waitUntil(lambda: samples[0] in win.projects._unrecorded_marks(), timeout=WAIT_MS)

    refused_removal(qtbot, win, root, monkeypatch, mark)
    doc = next(d for d in win.docs if d.path == samples[0])
    assert doc.done and win.projects._unrecorded_marks() == {samples[0]: True}, "still the user's, not written"
    win.projects.autosave_now()  # the retry, the lock free again
    win.jobs.wait_idle()
    QtWidgets.QApplication.processEvents()
    assert Project.open(root).image_for(samples[0]).done and not win.projects._unrecorded_marks()


def test_edits_of_an_image_the_project_cannot_remove_come_back(
        qtbot, windows, samples, model_path, tmp_path, monkeypatch):
    # the "Discard" answered for the removal dropped the edits and undo log and moved the autosave
    # away: the image came back showing its saved map, the edits nowhere the banner said
    root = tmp_path / "project"
    win, key = project_with_a_saved_image(qtbot, windows, samples, model_path, root)
    doc = edited_and_autosaved(qtbot, win, root, key)
    edited = doc.annotation.label.copy()
    saved_map = read_label_file(root / "annotations" / f"{key}.qgt", win.projects.project.classes)
    assert doc.annotation.dirty and not np.array_equal(edited, saved_map)
    refused_removal(qtbot, win, root, monkeypatch)
    assert doc in win.docs and doc.annotation is not None, "the same document, its session kept"
    assert np.array_equal(doc.annotation.label, edited) and doc.annotation.dirty
    assert doc.annotation.undo.canUndo()
    assert (root / ".autosave" / f"{key}.qgt").is_file(), "its autosave is where it was, not discarded"
    assert not list((root / "discarded").glob(f"{key}*"))
    assert win.projects.unsaved() == [doc], "closing asks about it"


def test_a_removal_discards_the_edits_once_the_project_no_longer_has_the_image(
        qtbot, windows, samples, model_path, tmp_path):
    from qgn_studio.project_controller import ProjectController

    root = tmp_path / "project"
    win, key = project_with_a_saved_image(qtbot, windows, samples, model_path, root)
    win.projects.confirm_discard = ProjectController.confirm_discard.__get__(win.projects)
    win.projects.ask_unsaved = lambda count, what: "discard"
    win.images.set_current(0)
    doc = win.docs[0]
    paint(win, 1, y=20.5)
    win.remove_current_images()
    win.jobs.wait_idle()
    QtWidgets.QApplication.processEvents()
    win.jobs.wait_idle()
    assert len(project_images(root)) == 1 and [d.path for d in win.docs] == [samples[1]]
    assert doc.annotation is None, "its session and undo log went"
    assert not (root / ".autosave" / f"{key}.qgt").exists()
    assert list((root / "discarded").glob(f"{key}*")), "the discarded edits are kept in discarded/"


@pytest.mark.parametrize("folder, read_only_too", [("annotations", False), (".autosave", False), (".autosave", True)])
def test_a_file_where_the_annotation_or_autosave_folder_belongs_is_said_at_opening(qtbot, window, samples, model_path,
                                                                                    tmp_path, folder, read_only_too,
                                                                                    read_only):
    # the project opened with every image unannotated (or no autosave offered) and nothing said
    # until a save failed
    root = tmp_path / "project"
    project = Project.create(root, samples, make_classes(), str(model_path))
    project.save_annotation(project.images[0], np.ones((SIZE[0], SIZE[1]), np.uint8))
    project.autosave(project.images[1], np.ones((SIZE[0], SIZE[1]), np.uint8))
    import shutil

    shutil.rmtree(root / folder)
    (root / folder).write_text("a sync tool's file")
    if read_only_too:  # the read-only message was said instead
        read_only(root)
    window.start([str(samples[0])], str(model_path))
    window.open_paths([str(root)])
    window.jobs.wait_idle()
    qtbot.waitUntil(lambda: window.projects.project is not None, timeout=WAIT_MS)
    import html

    message = html.unescape(window.canvas.banner.messages["project"][0])
    what = "saved annotations" if folder == "annotations" else "autosaves"
    assert f"{root / folder} is a file, not the folder of the project's {what}" in message
    assert not read_only_too or "is open read-only" in message
    assert (root / folder).read_text() == "a sync tool's file"


def test_an_autosave_folder_that_is_a_loop_of_links_is_said_at_opening(qtbot, window, samples, model_path, tmp_path):
    # the open job raised RuntimeError "Symlink loop" (blocked_folders' Path.resolve): the project no
    # longer opened. It opens (the saved annotations are there), the loop named
    root = tmp_path / "project"
    Project.create(root, samples, make_classes(), str(model_path))
    shutil.rmtree(root / ".autosave", ignore_errors=True)
    (root / ".autosave").symlink_to(".autosave")
    window.start([str(samples[0])], str(model_path))
    window.open_paths([str(root)])
    window.jobs.wait_idle()
    qtbot.waitUntil(lambda: window.projects.project is not None, timeout=WAIT_MS)
    message = html.unescape(window.canvas.banner.messages["project"][0])
    assert f"{root / '.autosave'} is a link that leads into a loop of symbolic links" in message, message
    assert "none of the project's autosaves can be read or written until the link is removed" in message, message
    assert (root / ".autosave").is_symlink()


def test_older_files_kept_by_an_add_finished_late_are_said_at_opening(qtbot, window, samples, model_path, tmp_path,
                                                                       monkeypatch):
    # an add killed after listing the image, another window saving it meanwhile, finished by the next
    # writer (another program): the old annotation and autosave stay in removed/, and nobody was told
    root = tmp_path / "project"
    project = Project.create(root, samples, make_classes(), str(model_path))
    image = project.images[1]
    project.save_annotation(image, np.ones((SIZE[0], SIZE[1]), np.uint8))
    project.autosave(image, np.full((SIZE[0], SIZE[1]), 2, np.uint8))
    project.remove_image(image)
    other = Project.open(root)
    other.set_done_many([])  # open and cleaned up before the add

    def killed(self, images):
        raise KeyboardInterrupt  # the add killed before bringing anything back

    monkeypatch.setattr(Project, "bring_back", killed)
    with pytest.raises(KeyboardInterrupt):
        Project.open(root).add_images([samples[1]])
    monkeypatch.undo()
    other.refresh()
    monkeypatch.setattr(other, "_finish_bring_back", lambda: None)  # a writer that finishes no note (older code)
    other.save_annotation(other.image_for(samples[1]), np.zeros((SIZE[0], SIZE[1]), np.uint8), over=None)
    monkeypatch.undo()
    Project.open(root).set_done_many([])  # the next writer (the CLI) finishes the add
    kept = sorted(p.name for p in (root / "removed").glob("*.qgt"))
    assert len(kept) == 2
    window.start([str(samples[0])], str(model_path))
    window.open_paths([str(root)])
    window.jobs.wait_idle()
    qtbot.waitUntil(lambda: window.projects.project is not None, timeout=WAIT_MS)
    message = html.unescape(window.canvas.banner.messages["project"][0])
    assert f"{samples[1]} was added back by an add cut short and finished later, which kept its older annotation " \
           f"and autosave in {root / 'removed'} ({', '.join(kept)})" in message, message


def _hostile_late_kept(root, samples, model_path, items):
    Project.create(root, samples, make_classes(), str(model_path))
    (root / "removed").mkdir(exist_ok=True)
    (root / "removed" / "x.autosave.1.qgt").write_bytes(b"x")
    (root / "removed" / "kept-by-unfinished-adds.json").write_text(json.dumps({"kept": items}))


def test_a_nul_byte_in_the_note_of_late_kept_files_does_not_stop_the_project_opening(qtbot, window, samples,
                                                                                   model_path, tmp_path):
    # the note is advisory, anyone may write it: a NUL byte in an image's path raised ValueError out of
    # the open job ('Cannot open the project'). The entry is left out; the others are said
    root = tmp_path / "project"
    good = {"image": str(samples[1]), "files": ["x.autosave.1.qgt"], "why": "w"}
    _hostile_late_kept(root, samples, model_path, [dict(good, image="/a\u0000b/c.png"), good])
    window.start([str(samples[0])], str(model_path))
    window.open_paths([str(root)])
    window.jobs.wait_idle()
    qtbot.waitUntil(lambda: window.projects.project is not None, timeout=WAIT_MS)
    message = html.unescape(window.canvas.banner.messages["project"][0])
    assert message.count("was added back by an add cut short") == 1, message
    assert f"{samples[1]} was added back by an add cut short" in message, message


def test_the_banner_of_late_kept_files_is_a_few_lines(qtbot, window, samples, model_path, tmp_path):
    # 7,000 copies of one entry (under the note's 1 MiB cap) made a banner of 2.4 M characters: minutes
    # to lay out on the UI thread. Said once, the reason cut
    root = tmp_path / "project"
    item = {"image": str(samples[1]), "files": ["x.autosave.1.qgt"], "why": "y" * 200_000}
    _hostile_late_kept(root, samples, model_path, [item] + [dict(item, why="w")] * 4000)
    window.start([str(samples[0])], str(model_path))
    window.open_paths([str(root)])
    window.jobs.wait_idle()
    qtbot.waitUntil(lambda: window.projects.project is not None, timeout=WAIT_MS)
    message = html.unescape(window.canvas.banner.messages["project"][0])
    assert message.count("was added back by an add cut short") == 1, message[:2000]
    assert len(message) < 2000, len(message)


@pytest.mark.parametrize("where", ["outside", "nowhere"])
def test_an_autosave_folder_linked_out_of_the_project_is_said_at_opening(qtbot, window, samples, model_path, tmp_path,
                                                                         where):
    # it opened silently: the user's autosaves (unsaved work, where the link points) were never
    # offered, and nothing said why. It opens (the saved annotations are there) and says so
    root = tmp_path / "project"
    project = Project.create(root, samples, make_classes(), str(model_path))
    project.autosave(project.images[1], np.ones((SIZE[0], SIZE[1]), np.uint8))  # unsaved work
    (root / ".autosave").rename(tmp_path / "moved")
    (root / ".autosave").symlink_to(tmp_path / ("moved" if where == "outside" else "gone"), target_is_directory=True)
    window.start([str(samples[0])], str(model_path))
    window.open_paths([str(root)])
    window.jobs.wait_idle()
    qtbot.waitUntil(lambda: window.projects.project is not None, timeout=WAIT_MS)
    message = html.unescape(window.canvas.banner.messages["project"][0])
    assert f"{root / '.autosave'}" in message and "autosaves" in message, message
    assert ("outside the project" if where == "outside" else "restore or mount what it points to") in message, message
    assert [p.name for p in (tmp_path / "moved").iterdir()] == [f"{project.images[1].key}.qgt"]


def test_a_refused_removal_of_every_image_shown_makes_one_of_them_current(
        qtbot, windows, samples, model_path, tmp_path, monkeypatch):
    # the filter shows one image; it is removed (nothing shown is left: no current image) and the
    # project refuses: list_again made row 0 current - an image the filter hid, forced into the list
    root = tmp_path / "project"
    win, _key = project_with_a_saved_image(qtbot, windows, samples, model_path, root)
    wanted = samples[1]
    win.images.set_current(1)  # (the image on screen stays listed)
    win.images.set_filter("all", wanted.stem)
    qtbot.waitUntil(lambda: win.images.visible_rows() == [1], timeout=WAIT_MS)

    def chosen():
        win.images.set_current(1)

    refused_removal(qtbot, win, root, monkeypatch, before=chosen, row=1)
    assert [d.path for d in win.docs] == samples, "listed again where it was"
    assert win.current is not None and win.current.path == wanted, "the image listed again is the current one"
    assert win.images.visible_rows() == [1], "the filter still hides the others"
    view = win.images.list
    assert view.viewport().rect().contains(view.visualRect(view.currentIndex()))
