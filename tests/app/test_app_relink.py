"""File → Find missing images… (and the missing-images banner's link): a moved image folder is
searched on the batch thread with progress and Cancel, what will be relinked is shown first, and
the images then join the list with their annotations."""
from __future__ import annotations

import html
import json
import shutil
import threading

import numpy as np
from PIL import Image
from PySide6 import QtCore, QtWidgets

from qgn.classes import ClassSet
from studio_steps import WAIT_MS, hold

CLASSES = ClassSet(("sky", "road", "car"), ((70, 130, 180), (128, 64, 128), (0, 0, 142)), 255)


def moved_project(tmp_path):
    """A project of kept/k.png (on disk) and old/a.png (annotated), old/sub/b.png; old/ then
    renamed new/. (root, annotation of a.png)."""
    from qgn.project import Project

    paths = []
    for i, rel in enumerate(("kept/k.png", "old/a.png", "old/sub/b.png")):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 24), (40 * i, 90, 20)).save(path)
        paths.append(path)
    project = Project.create(tmp_path / "P", paths, CLASSES)
    label = np.zeros((24, 32), np.uint8)
    label[:, 16:] = 2
    entry = project.image_for(paths[1])
    project.save_annotation(entry, label)
    project.note_image_file(entry)
    (tmp_path / "old").rename(tmp_path / "new")
    return project.root, label


def open_moved(qtbot, window, model_path, tmp_path):
    root, label = moved_project(tmp_path)
    window.start([str(root)], str(model_path))
    qtbot.waitUntil(lambda: window.projects.project is not None and len(window.docs) == 1, timeout=WAIT_MS)
    return root, label


def images_in(root) -> list:
    """project.json's image entries (the app writes the model it loads into the file meanwhile)."""
    return json.loads((root / "project.json").read_text())["images"]


def relink_dialog(qtbot, window):
    from qgn_studio.relink_dialog import RelinkDialog

    qtbot.waitUntil(lambda: bool(window.findChildren(RelinkDialog)), timeout=WAIT_MS)
    (dialog,) = window.findChildren(RelinkDialog)
    return dialog


def listed(dialog) -> dict:
    tree = dialog.list
    return {tree.topLevelItem(i).text(0): [(tree.topLevelItem(i).child(j).text(0), tree.topLevelItem(i).child(j).text(1))
                                           for j in range(tree.topLevelItem(i).childCount())]
            for i in range(tree.topLevelItemCount())}


def test_the_banner_offers_it_and_the_images_come_back_with_their_annotation(qtbot, window, model_path, tmp_path,
                                                                             monkeypatch):
    import qgn.project_relink
    from qgn.project import Project

    root, label = open_moved(qtbot, window, model_path, tmp_path)
    text, kind = window.canvas.banner.messages["open"]
    text = html.unescape(text)
    assert kind == "warning" and "2 of the project's 3 images are missing" in text and 'href="relink:"' in text
    threads = []
    real = qgn.project_relink.find_missing
    monkeypatch.setattr(qgn.project_relink, "find_missing",
                        lambda *a, **k: threads.append(threading.current_thread()) or real(*a, **k))
    window.canvas.banner.link_activated.emit("relink:")  # the user clicks the banner's link
    dialog = relink_dialog(qtbot, window)
    assert not dialog.relink_button.isEnabled()
    before = images_in(root)
    dialog.set_folder(tmp_path / "new")
    qtbot.waitUntil(lambda: dialog.plan is not None, timeout=WAIT_MS)
    assert threads and threads[0] is not threading.main_thread(), "searched off the UI thread"
    assert listed(dialog) == {"Will be relinked (2)": [("a.png", "a.png"),
                                                       ("b.png", "sub/b.png")]}
    assert dialog.relink_button.text() == "Relink 2 images" and dialog.relink_button.isEnabled()
    assert images_in(root) == before, "nothing written before Relink is pressed"
    dialog.relink_button.click()
    qtbot.waitUntil(lambda: len(window.docs) == 3, timeout=WAIT_MS)
    assert "open" not in window.canvas.banner.messages
    assert [im.path for im in Project.open(root).images] == [tmp_path / "kept" / "k.png", tmp_path / "new" / "a.png",
                                                             tmp_path / "new" / "sub" / "b.png"]
    doc = next(d for d in window.docs if d.path.name == "a.png")
    window.images.set_current(window.docs.index(doc))
    window.annotator.set_mode(True)
    qtbot.waitUntil(lambda: doc.annotation is not None, timeout=WAIT_MS)
    np.testing.assert_array_equal(doc.annotation.label, label)
    assert not doc.annotation.dirty


def test_the_file_menu_has_it_and_cancel_stops_the_search(qtbot, window, model_path, tmp_path, monkeypatch):
    import qgn.project_relink

    root, _ = open_moved(qtbot, window, model_path, tmp_path)
    file_menu = window.menuBar().actions()[0].menu()
    (action,) = [a for a in file_menu.actions() if a.text() == "Find &missing images…"]
    action.trigger()
    dialog = relink_dialog(qtbot, window)
    started, release = hold(monkeypatch, qgn.project_relink, "find_missing")
    before = images_in(root)
    dialog.set_folder(tmp_path / "new")
    assert started.wait(WAIT_MS / 1000)
    assert dialog.cancel_button.isEnabled() and not dialog.search_button.isEnabled()
    dialog.cancel_button.click()
    release.set()
    qtbot.waitUntil(lambda: not dialog.running, timeout=WAIT_MS)
    assert dialog.plan is None and not dialog.relink_button.isEnabled()
    assert "cancelled" in dialog.log.text()
    assert images_in(root) == before and len(window.docs) == 1


def test_two_candidates_are_listed_and_not_relinked(qtbot, window, model_path, tmp_path):
    root, _ = open_moved(qtbot, window, model_path, tmp_path)
    shutil.copytree(tmp_path / "new", tmp_path / "copy" / "new")  # b.png (no note) twice, same folders
    shutil.copytree(tmp_path / "new", tmp_path / "copy2" / "new")
    window.show_relink()
    dialog = relink_dialog(qtbot, window)
    dialog.set_folder(tmp_path)
    qtbot.waitUntil(lambda: dialog.plan is not None, timeout=WAIT_MS)
    groups = listed(dialog)
    assert [name for name, _ in groups["Ambiguous, not relinked (2)"]] == ["a.png", "b.png"]
    assert "Will be relinked (0)" not in groups and not dialog.relink_button.isEnabled()
    QtWidgets.QApplication.processEvents()
    assert dialog.isVisible() and window.canvas.banner.messages["open"]


def test_closing_the_dialog_before_the_write_ends_still_lists_the_images(qtbot, window, model_path, tmp_path,
                                                                        monkeypatch):
    import qgn.project_relink

    open_moved(qtbot, window, model_path, tmp_path)
    dialog = window.show_relink()
    dialog.set_folder(tmp_path / "new")
    qtbot.waitUntil(lambda: dialog.plan is not None, timeout=WAIT_MS)
    started, release = hold(monkeypatch, qgn.project_relink, "relink")
    dialog.relink_button.click()
    assert started.wait(WAIT_MS / 1000)
    dialog.close()
    release.set()
    qtbot.waitUntil(lambda: len(window.docs) == 3, timeout=WAIT_MS)
    QtCore.QCoreApplication.processEvents()
    assert "open" not in window.canvas.banner.messages


def test_an_unticked_image_stays_missing_and_the_banner_says_so(qtbot, window, model_path, tmp_path):
    from qgn.project import Project

    root, _ = open_moved(qtbot, window, model_path, tmp_path)
    dialog = window.show_relink()
    dialog.set_folder(tmp_path / "new")
    qtbot.waitUntil(lambda: dialog.plan is not None, timeout=WAIT_MS)
    group = dialog.list.topLevelItem(0)
    b = next(group.child(j) for j in range(group.childCount()) if group.child(j).text(0) == "b.png")
    b.setCheckState(0, QtCore.Qt.CheckState.Unchecked)
    assert dialog.relink_button.text() == "Relink 1 image"
    dialog.relink_button.click()
    qtbot.waitUntil(lambda: len(window.docs) == 2, timeout=WAIT_MS)
    text = html.unescape(window.canvas.banner.messages["open"][0])
    assert text.startswith(f"1 of the project's 3 images is missing from {tmp_path / 'old' / 'sub'} (b.png)")
    assert [im.path for im in Project.open(root).images][1:] == [tmp_path / "new" / "a.png", tmp_path / "old" / "sub" / "b.png"]


def intro(dialog) -> str:
    """The dialog's opening text (the label that says what to choose)."""
    (label,) = [w for w in dialog.findChildren(QtWidgets.QLabel) if "Choose the folder they are in now" in w.text()]
    return label.text()


def test_the_intro_claims_missing_images_only_when_some_are(qtbot, window, model_path, tmp_path):
    """Opened over a project whose images are all there, the dialog said "Some images are not where
    the project expects them" (seen at 1280×800 under openbox); with the banner's count it says it."""
    from qgn.project import Project

    path = tmp_path / "here" / "a.png"
    path.parent.mkdir()
    Image.new("RGB", (32, 24), (40, 90, 20)).save(path)
    root = Project.create(tmp_path / "P", [path], CLASSES).root
    window.start([str(root)], str(model_path))
    qtbot.waitUntil(lambda: window.projects.project is not None and len(window.docs) == 1, timeout=WAIT_MS)
    window.show_relink()
    dialog = relink_dialog(qtbot, window)
    assert "images are not where the project expects them" not in intro(dialog), intro(dialog)
    assert intro(dialog).startswith("Finds the project's images that are not where it expects them")
    dialog.close()
    qtbot.waitUntil(lambda: not window.findChildren(type(dialog)), timeout=WAIT_MS)

    window.projects.close_project()
    qtbot.waitUntil(lambda: window.projects.project is None, timeout=WAIT_MS)
    open_moved(qtbot, window, model_path, tmp_path / "moved")
    window.show_relink()
    dialog = relink_dialog(qtbot, window)
    assert intro(dialog).startswith("2 of the project's 3 images are not where the project expects them.")
    dialog.close()
    qtbot.waitUntil(lambda: not window.findChildren(type(dialog)), timeout=WAIT_MS)
    from qgn_studio.relink_dialog import RelinkDialog

    dialog = RelinkDialog(window.projects.project, window.batch_jobs, window.jobs, lambda *a: None, 1, window)
    assert intro(dialog).startswith("1 of the project's 3 images is not where the project expects them.")
    dialog.close()
