"""Start from → Kept copy…: the copies the project kept aside for the image on screen, offered with
how many (``qgn_studio.kept_controller``), one chosen loaded as one undoable edit - a garbage one
refused with the reader's message, the map untouched - and the kept files never touched; an image
shown with copies newer than its saved annotation said once in the banner, naming the entry."""
from __future__ import annotations

import os
import time

import numpy as np

from studio_steps import WAIT_MS, painted_and_saved

SAMPLE_COUNT, SAMPLE_SIZE = 2, (64, 96)
SHOTS = os.environ.get("QGN_SHOTS")  # a folder: the menu and the notice grabbed there


def _show(qtbot, win, doc) -> None:
    win.workspace.select(doc)
    qtbot.waitUntil(lambda: win.current is doc, timeout=WAIT_MS)


def test_kept_copies_are_offered_said_once_and_loaded_as_one_edit(qtbot, windows, samples, model_path, tmp_path):
    """Fails before: no entry, no notice - the files in conflicts/ and discarded/ were found by hand only."""
    from qgn.formats import FORMATS

    folder = tmp_path / "project"
    win, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    first, second = win.docs[0], win.docs[1]
    project = win.projects.project
    key = project.image_for(first.path).key
    classes = win.annotator.classes
    theirs = session.label.copy()
    theirs[:20, :30] = 3
    (folder / "conflicts").mkdir()
    kept = FORMATS["qgt"].write(theirs, classes, folder / "conflicts",
                                f"{key}.autosave.{time.strftime('%Y%m%d-%H%M%S')}")[0]
    (folder / "discarded").mkdir()
    garbage = folder / "discarded" / f"{key}.undone-0123456789ab.qgt"
    garbage.write_bytes(b"\x00not a qgt" * 50)
    on_disk = {path: path.read_bytes() for path in (kept, garbage, project.annotation_path(project.image_for(first.path)))}
    banners = []
    win.workspace.message.connect(lambda text, kind, key: banners.append((text, kind, key)))
    action = win.annotator.panel.start_buttons["kept"]
    _show(qtbot, win, second)
    qtbot.waitUntil(lambda: win.kept.runner.pending() == 0, timeout=WAIT_MS)
    assert not action.isEnabled() and action.text() == "Kept copy…"
    _show(qtbot, win, first)
    qtbot.waitUntil(lambda: action.isEnabled(), timeout=WAIT_MS)
    assert action.text() == "Kept copy… (2)"
    (notice,) = [text for text, _kind, key in banners if key == "kept"]
    assert "2 copies" in notice and "Start from → Kept copy…" in notice, notice
    if SHOTS:
        win.resize(1280, 800)
        qtbot.wait(300)
        win.grab().save(os.path.join(SHOTS, "kept-notice.png"))
        menu = win.annotator.panel.start_menu
        menu.popup(win.annotator.panel.start_button.mapToGlobal(win.annotator.panel.start_button.rect().bottomLeft()))
        qtbot.wait(100)
        menu.grab().save(os.path.join(SHOTS, "kept-menu.png"))
        menu.hide()
        from qgn_studio.ask import kept_copy_dialog

        dialog = kept_copy_dialog(win, first.name, win.kept.copies[first.path])
        dialog.show()
        qtbot.wait(100)
        dialog.grab().save(os.path.join(SHOTS, "kept-choice.png"))
        dialog.reject()
    # shown again: said once
    _show(qtbot, win, second)
    _show(qtbot, win, first)
    qtbot.waitUntil(lambda: win.kept.runner.pending() == 0, timeout=WAIT_MS)
    qtbot.wait(50)
    assert len([key for _text, _kind, key in banners if key == "kept"]) == 1
    # the garbage one (listed newest: its file's time) is refused, the map untouched
    offered = []
    warned = []
    win.annotator._warn = lambda text: warned.append(text)
    win.annotator.choose_kept_copy = lambda name, copies: offered.extend(copies) or next(
        c for c in copies if c.path == garbage)
    before, steps = session.label.copy(), session.undo.count()
    win.annotator.start_from("kept")
    qtbot.waitUntil(lambda: bool(warned), timeout=WAIT_MS)
    assert "not a .qgt" in warned[0], warned
    assert sorted(c.path for c in offered) == sorted([kept, garbage])
    assert offered[0].when >= offered[1].when  # newest first
    np.testing.assert_array_equal(session.label, before)
    assert session.undo.count() == steps
    # the good one: one edit, undone by one undo
    win.annotator.choose_kept_copy = lambda name, copies: next(c for c in copies if c.path == kept)
    win.annotator.start_from("kept")
    qtbot.waitUntil(lambda: session.undo.count() == steps + 1, timeout=WAIT_MS)
    np.testing.assert_array_equal(session.label, theirs)
    assert session.dirty
    session.undo.undo()
    np.testing.assert_array_equal(session.label, before)
    for path, data in on_disk.items():
        assert path.read_bytes() == data  # the kept files and the saved annotation as they were


def test_a_stand_ins_kept_copies_are_offered_too(qtbot, windows, samples, model_path, tmp_path):
    """A project whose edits go to its stand-in (project.json refused, or a read-only project): what the
    stand-in kept aside (its Discards, undone edits) is listed beside the project's, saying where."""
    from qgn.formats import FORMATS
    from qgn.project import Project

    from studio_steps import two_strokes_autosaved_in_the_stand_in

    folder = tmp_path / "project"
    win, session, both, spare, _good = two_strokes_autosaved_in_the_stand_in(qtbot, windows, samples, model_path,
                                                                            folder)
    first, second = win.docs[0], win.docs[1]
    stand_in = Project.open(spare)
    key = stand_in.image_for(first.path).key
    (spare / "discarded").mkdir(exist_ok=True)
    kept = FORMATS["qgt"].write(both, win.annotator.classes, spare / "discarded",
                                f"{key}.{time.strftime('%Y%m%d-%H%M%S')}")[0]
    _show(qtbot, win, second)
    _show(qtbot, win, first)
    qtbot.waitUntil(lambda: bool(win.kept.copies.get(first.path)), timeout=WAIT_MS)
    (copy,) = win.kept.copies[first.path]
    assert copy.path == kept and "stand-in" in copy.why
    assert win.annotator.panel.start_buttons["kept"].text() == "Kept copy… (1)"


def test_a_listing_done_after_a_project_switch_keeps_nothing(qtbot, windows, samples, model_path, tmp_path):
    """A listing still running when the project changes: its copies (the old project's) are never kept
    under the image's path, which the next project may share (Kept copy… would offer them there)."""
    from types import SimpleNamespace

    from qgn.formats import FORMATS

    folder = tmp_path / "project"
    win, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    first, second = win.docs[0], win.docs[1]
    key = win.projects.project.image_for(first.path).key
    (folder / "discarded").mkdir()
    FORMATS["qgt"].write(session.label, win.annotator.classes, folder / "discarded",
                         f"{key}.{time.strftime('%Y%m%d-%H%M%S')}")
    _show(qtbot, win, second)
    qtbot.waitUntil(lambda: win.kept.runner.pending() == 0, timeout=WAIT_MS)
    submitted = []
    win.kept.runner.submit = lambda run, done, failed, text: submitted.append((run, done))
    win.workspace.select(first)
    qtbot.waitUntil(lambda: win.current is first and bool(submitted), timeout=WAIT_MS)
    run, done = submitted[-1]
    result = run()
    assert result[0], "the old project's copy is listed"
    win.kept.projects = SimpleNamespace(project=object(), saved=None)  # another project open by now
    win.kept.copies.clear()
    done(result)
    assert first.path not in win.kept.copies


def test_a_kept_folder_replaced_by_a_link_after_the_listing_is_not_read(qtbot, windows, samples, model_path,
                                                                         tmp_path):
    """(lostfix6 5) Listed while discarded/ was a real folder; then discarded/ replaced by a link to a folder
    outside the project holding a file of the same name: choosing the copy reads nothing through it
    (refused, said), the map untouched. Fails before: the file outside the project was loaded."""
    import shutil

    from qgn.formats import FORMATS

    folder = tmp_path / "project"
    win, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    first, second = win.docs[0], win.docs[1]
    key = win.projects.project.image_for(first.path).key
    classes = win.annotator.classes
    (folder / "discarded").mkdir()
    kept = FORMATS["qgt"].write(session.label, classes, folder / "discarded",
                                f"{key}.{time.strftime('%Y%m%d-%H%M%S')}")[0]
    _show(qtbot, win, second)
    _show(qtbot, win, first)
    qtbot.waitUntil(lambda: bool(win.kept.copies.get(first.path)), timeout=WAIT_MS)
    outside = tmp_path / "outside"
    shutil.move(str(folder / "discarded"), outside)
    (outside / kept.name).unlink()
    foreign = session.label.copy()
    foreign[:] = 3
    FORMATS["qgt"].write(foreign, classes, outside, kept.name[:-len(".qgt")])
    (folder / "discarded").symlink_to(outside)
    warned = []
    win.annotator._warn = lambda text: warned.append(text)
    win.annotator.choose_kept_copy = lambda name, copies: next(c for c in copies if c.path == kept)
    before, steps = session.label.copy(), session.undo.count()
    win.annotator.start_from("kept")
    qtbot.waitUntil(lambda: bool(warned), timeout=WAIT_MS)
    assert "symbolic link" in warned[0], warned
    np.testing.assert_array_equal(session.label, before)
    assert session.undo.count() == steps


def test_an_unsure_copy_is_offered_but_never_said_in_the_banner(qtbot, windows, samples, model_path, tmp_path):
    """(lost6b 4) A copy newer than the saved annotation whose name fits another image too (``unsure``) is
    listed (Kept copy… (1)) but never said in the banner as this image's; the same copy sure is said.
    Fails when the banner's ``not copy.unsure`` filter is dropped."""
    from dataclasses import replace

    from qgn.formats import FORMATS

    folder = tmp_path / "project"
    win, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    first, second = win.docs[0], win.docs[1]
    project = win.projects.project
    key = project.image_for(first.path).key
    (folder / "discarded").mkdir()
    FORMATS["qgt"].write(session.label, win.annotator.classes, folder / "discarded",
                         f"{key}.{time.strftime('%Y%m%d-%H%M%S')}")  # newer than the saved annotation
    listed = project.kept_copies
    project.kept_copies = lambda image: [replace(copy, unsure=True, why=f"maybe not this image's: {copy.why}")
                                         for copy in listed(image)]
    banners = []
    win.workspace.message.connect(lambda text, kind, key: banners.append(key))
    action = win.annotator.panel.start_buttons["kept"]
    _show(qtbot, win, second)
    _show(qtbot, win, first)
    qtbot.waitUntil(lambda: action.isEnabled(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: win.kept.runner.pending() == 0, timeout=WAIT_MS)
    assert action.text() == "Kept copy… (1)" and win.kept.copies[first.path][0].unsure
    assert "kept" not in banners
    project.kept_copies = listed  # the same copy, sure: said
    _show(qtbot, win, second)
    _show(qtbot, win, first)
    qtbot.waitUntil(lambda: "kept" in banners, timeout=WAIT_MS)


def test_the_choice_preselects_the_newest_sure_copy(qtbot, tmp_path):
    """(lost6b 4) The Kept copy… dialog chooses the newest copy that is surely this image's, not a newer unsure
    one (its name fits another image too); where all are unsure, the newest. Fails when it preselects row 0."""
    from dataclasses import replace

    from qgn.project_kept import KeptCopy
    from qgn_studio.ask import kept_copy_dialog

    now = time.time()

    def copy(name, age, unsure):
        return KeptCopy(tmp_path / name, "conflicts", "why", now - age, now - age, unsure)

    copies = [copy("a.3.qgt", 0, True), copy("a.2.qgt", 10, False), copy("a.1.qgt", 20, False)]
    dialog = kept_copy_dialog(None, "a.png", copies)
    qtbot.addWidget(dialog)
    assert dialog.list.count() == 3 and dialog.list.currentRow() == 1
    dialog = kept_copy_dialog(None, "a.png", [copies[0], replace(copies[2], unsure=True)])
    qtbot.addWidget(dialog)
    assert dialog.list.currentRow() == 0


def _menu_action(win, text: str):
    from PySide6 import QtWidgets

    (action,) = [a for menu in win.menuBar().findChildren(QtWidgets.QMenu) for a in menu.actions()
                 if a.text().startswith(text)]
    return action


def test_the_annotate_menus_kept_copy_entry_follows_the_panels(qtbot, windows, samples, model_path, tmp_path):
    """(lost7 1) Annotate → Start over from a kept copy… is greyed where the panel's Kept copy… is (no copy),
    names the count the panel names, and follows both ways as copies appear and disappear. Fails before:
    the menu's entry was enabled for an image with no kept copy, without the count."""
    from qgn.formats import FORMATS

    folder = tmp_path / "project"
    win, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    first = win.docs[0]
    key = win.projects.project.image_for(first.path).key
    panel = win.annotator.panel.start_buttons["kept"]
    menu = _menu_action(win, "Start over from a kept copy")
    qtbot.waitUntil(lambda: win.kept.runner.pending() == 0, timeout=WAIT_MS)
    assert not panel.isEnabled() and not menu.isEnabled(), menu.text()
    assert menu.text() == "Start over from a kept copy…"
    (folder / "discarded").mkdir()
    kept = FORMATS["qgt"].write(session.label, win.annotator.classes, folder / "discarded",
                                f"{key}.{time.strftime('%Y%m%d-%H%M%S')}")[0]
    win.kept.look(first)
    qtbot.waitUntil(lambda: panel.isEnabled(), timeout=WAIT_MS)
    assert menu.isEnabled() and menu.text() == "Start over from a kept copy… (1)", menu.text()
    kept.unlink()
    win.kept.look(first)
    qtbot.waitUntil(lambda: not panel.isEnabled(), timeout=WAIT_MS)
    assert not menu.isEnabled() and menu.text() == "Start over from a kept copy…", menu.text()


def test_copies_announced_once_are_not_announced_again_in_a_later_window(qtbot, windows, samples, model_path,
                                                                         tmp_path):
    """(lost7 6) The banner of copies newer than the saved annotation is said once per window; the app's
    settings remember which copies of which project were announced, so a window opened later (tomorrow) says
    only copies kept since - the menu still lists all. Fails before (the same copy announced again)."""
    from qgn.formats import FORMATS

    folder = tmp_path / "project"
    win, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    first, second = win.docs[0], win.docs[1]
    key = win.projects.project.image_for(first.path).key
    (folder / "discarded").mkdir()
    FORMATS["qgt"].write(session.label, win.annotator.classes, folder / "discarded", f"{key}.20991231-000000")
    banners = []
    win.workspace.message.connect(lambda text, kind, key: banners.append(text) if key == "kept" else None)

    def shown_again() -> list:  # a later window: nothing said in it yet, the same settings
        banners.clear()
        win.kept._told.clear()
        _show(qtbot, win, second)
        _show(qtbot, win, first)
        qtbot.waitUntil(lambda: win.kept.listed == win.kept.asked, timeout=WAIT_MS)  # every listing's answer taken
        assert win.kept.copies.get(first.path)
        return list(banners)

    (said,) = shown_again()
    assert "1 copy" in said, said
    assert shown_again() == []  # the same copy: not announced again
    assert len(win.kept.copies[first.path]) == 1  # still listed
    FORMATS["qgt"].write(session.label, win.annotator.classes, folder / "discarded", f"{key}.20991231-000001")
    (said,) = shown_again()
    assert "1 copy" in said, said  # only the new one
    assert len(win.kept.copies[first.path]) == 2


def test_the_memory_of_announced_copies_stays_small(tmp_path):
    """(lost7b 6) The settings' memory of announced copies held every path (32 projects x 500): 1.3 MB of INI, each
    banner and every later settings sync tens of ms on the UI thread. Now the newest announced copy's times per
    image key, of the latest ``ANNOUNCED_IMAGES`` images of the latest ``ANNOUNCED_PROJECTS`` projects: filled far
    past both, it stays under 64 KB, remembers the latest, says a newer copy, and reads lost7's lists as nothing."""
    from pathlib import Path
    from types import SimpleNamespace

    from PySide6 import QtCore

    from qgn.project_kept import KeptCopy
    from qgn_studio.kept_controller import ANNOUNCED, ANNOUNCED_IMAGES, ANNOUNCED_PROJECTS, KeptController, announced

    settings = QtCore.QSettings(os.fspath(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    settings.setValue(ANNOUNCED, '{"/old/project": ["/old/project/discarded/a.20260101-000000.qgt"]}')
    assert announced(settings) == {}
    me = SimpleNamespace(workspace=SimpleNamespace(settings=settings, sync_settings=lambda: True))  # synced below

    def copy(root: str, key: str, when: float) -> KeptCopy:
        return KeptCopy(Path(root, "discarded", f"{key}.20261208-000000.qgt"), "discarded", "", when, when + 0.5)

    def fresh(root: str, key: str, when: float) -> list:
        return KeptController._not_announced(me, root, key, [copy(root, key, when)])

    for p in range(ANNOUNCED_PROJECTS + 3):
        for i in range(ANNOUNCED_IMAGES + 7):
            assert len(fresh(f"/projects/camvid-{p:03d}", f"0001TP_{i:06d}" * 8, 1.7e9 + i)) == 1
    settings.sync()
    assert (tmp_path / "s.ini").stat().st_size < 64 * 1024
    memory = announced(settings)
    assert len(memory) == ANNOUNCED_PROJECTS and all(len(keys) == ANNOUNCED_IMAGES for keys in memory.values())
    last_root, last_key = f"/projects/camvid-{ANNOUNCED_PROJECTS + 2:03d}", f"0001TP_{ANNOUNCED_IMAGES + 6:06d}" * 8
    assert fresh(last_root, last_key, 1.7e9 + ANNOUNCED_IMAGES + 6) == []  # said already
    assert len(fresh(last_root, last_key, 1.8e9)) == 1  # a newer copy of it: said
    assert len(fresh("/projects/camvid-000", "0001TP_000000" * 8, 1.7e9)) == 1  # forgotten (the oldest): said again
