"""Keeping the autosave of undone edits fails (the review's repro): ``discarded/`` a plain file in a
read-only project's stand-in, or a link out of the project. The new autosave is written all the same,
the one it writes over kept in ``conflicts/`` by its bytes, and a warning says where
(``Project._keep_undone``); a save after an undo keeps it there too - the same rule."""
from __future__ import annotations

import numpy as np
import pytest

from studio_steps import WAIT_MS, paint, painted_and_saved, start_annotating, two_strokes_autosaved_in_the_stand_in

SAMPLE_COUNT, SAMPLE_SIZE = 2, (64, 96)


def _round(qtbot, win):
    win.projects.autosave_now()
    win.jobs.wait_idle()
    qtbot.wait(200)
    win.jobs.wait_idle()


def _undo_then_new_edit(qtbot, win, session):
    """Two strokes autosaved, the second undone, a new stroke (dropping the undone one from redo):
    (the map with both strokes, the map now)."""
    paint(win, 2, 1, [(1, 1), (30, 1)])
    paint(win, 2, 2, [(1, 9), (30, 9)])
    both = session.label.copy()
    _round(qtbot, win)
    win.annotator.undo_action.trigger()
    paint(win, 2, 3, [(1, 20), (30, 20)])
    return both, session.label.copy()


def _maps(root, classes):
    from qgn.quadtree.label_io import read_label_file
    return {str(p.relative_to(root)): read_label_file(p, classes) for p in sorted(root.rglob("*.qgt"))}


def _assert_kept(root, classes, both, latest):
    maps = _maps(root, classes)
    (autosave,) = [m for p, m in maps.items() if p.startswith(".autosave/")]
    np.testing.assert_array_equal(autosave, latest)  # the latest edits are on disk, not in memory only
    (kept,) = [m for p, m in maps.items() if p.startswith("conflicts/") and ".undone-" in p]
    np.testing.assert_array_equal(kept, both)  # and the undone ones too


def test_a_stand_ins_discarded_a_file_the_autosave_is_written_all_the_same(qtbot, windows, samples, model_path,
                                                                           tmp_path, read_only):
    """Fails before: every round failed ("…/discarded: is a file where a folder belongs") and the stroke
    after the undo lived in memory only."""
    folder = tmp_path / "project"
    win, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    windows.crash(win)
    read_only(folder)
    win = windows(recover="later")
    start_annotating(qtbot, win, [folder], model_path)
    session = win.current.annotation
    paint(win, 2, 4, [(1, 40), (30, 40)])
    _round(qtbot, win)
    spare = win.projects._stand_in
    assert spare is not None
    (spare.root / "discarded").write_text("in the way")  # discarded/ cannot be made
    warnings = _warnings(win)
    both, latest = _undo_then_new_edit(qtbot, win, session)
    for _ in range(3):
        _round(qtbot, win)
    assert not win.projects.autosave_failures
    _assert_kept(spare.root, win.annotator.classes, both, latest)
    (said,) = [w for w in warnings if "edits you undid" in w]
    assert "conflicts" in said and "is a file where a folder belongs" in said, said


def test_a_projects_discarded_linked_out_autosave_and_save_keep_in_conflicts(qtbot, windows, samples, model_path,
                                                                             tmp_path):
    """Fails before: the autosave failed in the project (written into the stand-in instead), while a
    save left the autosave in .autosave/ - two rules. Now both keep it in conflicts/, saying so."""
    from qgn.quadtree.label_io import read_label_file

    folder = tmp_path / "project"
    win, session = _saved_with_discarded_linked_out(qtbot, windows, samples, model_path, folder)
    warnings = _warnings(win)
    both, latest = _undo_then_new_edit(qtbot, win, session)
    _round(qtbot, win)
    assert not win.projects.autosave_failures and win.projects._stand_in is None
    _assert_kept(folder, win.annotator.classes, both, latest)
    assert [w for w in warnings if "edits you undid" in w and "autosaved" in w]

    # a save after an undo: the autosave it would remove holds the undone stroke - kept in conflicts/ too
    before = set((folder / "conflicts").iterdir())
    win.annotator.undo_action.trigger()
    shorter = session.label.copy()
    with qtbot.waitSignal(win.projects.saved, timeout=WAIT_MS):
        assert win.projects.save()
    win.jobs.wait_idle()
    assert not list((folder / ".autosave").glob("*.qgt")) and not any((tmp_path / "elsewhere").iterdir())
    (kept,) = set((folder / "conflicts").iterdir()) - before
    np.testing.assert_array_equal(read_label_file(kept, win.annotator.classes), latest)
    np.testing.assert_array_equal(read_label_file(next((folder / "annotations").glob("*.qgt")),
                                                  win.annotator.classes), shorter)
    assert [w for w in warnings if "edits you undid" in w and "saved" in w and str(kept) in w]


def _saved_with_discarded_linked_out(qtbot, windows, samples, model_path, folder):
    """A saved project (a window and its session) whose discarded/ is a link out of it: refused."""
    win, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    (folder.parent / "elsewhere").mkdir()
    (folder / "discarded").symlink_to(folder.parent / "elsewhere")
    return win, session


def _warnings(win) -> list:
    said = []
    win.workspace.warn = lambda text, *a, **k: said.append(text)
    return said


def test_undo_redo_cycles_keeping_the_same_state_warn_once(qtbot, windows, samples, model_path, tmp_path):
    """The review's R1: each undo of an undo/redo cycle keeps the same state again under the same name in
    conflicts/ (nothing new): one warning for that file, not one per cycle. Fails before (two)."""
    folder = tmp_path / "project"
    win, session = _saved_with_discarded_linked_out(qtbot, windows, samples, model_path, folder)
    warnings = _warnings(win)
    paint(win, 2, 1, [(1, 1), (30, 1)])
    paint(win, 2, 2, [(1, 9), (30, 9)])
    _round(qtbot, win)
    for _ in range(2):
        win.annotator.undo_action.trigger()
        _round(qtbot, win)
        win.annotator.redo_action.trigger()
        _round(qtbot, win)
    assert not win.projects.autosave_failures
    assert len(list((folder / "conflicts").glob("*.undone-*.qgt"))) == 1
    said = [w for w in warnings if "edits you undid" in w]
    assert len(said) == 1 and "conflicts" in said[0], said


def test_a_save_whose_undone_autosave_no_folder_takes_says_it_stays(qtbot, windows, samples, model_path, tmp_path):
    """The review's R2: discarded/ and conflicts/ both plain files at a save after an undo - the map is
    saved, the autosave holding the undone stroke stays, and a warning says so and that it is offered at
    the next open. Fails before: nothing was said."""
    from qgn.project import Project
    from qgn.quadtree.label_io import read_label_file

    folder = tmp_path / "project"
    win, session = painted_and_saved(qtbot, windows, samples, model_path, folder, 5)
    warnings = _warnings(win)
    paint(win, 2, 1, [(1, 1), (30, 1)])
    paint(win, 2, 2, [(1, 9), (30, 9)])
    both = session.label.copy()
    _round(qtbot, win)
    win.annotator.undo_action.trigger()
    (folder / "discarded").write_text("in the way")
    (folder / "conflicts").write_text("in the way")
    with qtbot.waitSignal(win.projects.saved, timeout=WAIT_MS):
        assert win.projects.save()
    win.jobs.wait_idle()
    (autosave,) = (folder / ".autosave").glob("*.qgt")
    np.testing.assert_array_equal(read_label_file(autosave, win.annotator.classes), both)
    (said,) = [w for w in warnings if "edits you undid" in w]
    assert "saved" in said and "left in place" in said and "opened again" in said, said
    assert "is a file where a folder belongs" in said, said
    assert [im.key for im in Project.open(folder).recoverable()] == [autosave.stem]


def test_the_undone_edits_kept_but_their_autosave_not_removed_is_said_truly():
    """The review's R4, the warning: the bytes kept in discarded/, the autosave's removal failing (put back
    by another process) - not 'could not be kept in discarded/'. Fails before (that, and the removal's
    error given as discarded/'s)."""
    from types import SimpleNamespace

    from qgn.project import SavedAnnotation
    from qgn_studio.project_autosave import AutosaveMixin

    said = []
    fake = SimpleNamespace(_told_undone_aside=set(), _warn=said.append)
    moved = OSError("frame_0.qgt was moved by another process while this one set it aside")
    saved = SavedAnnotation(None, None, "/p/discarded/frame_0.undone-abc.qgt", None, moved)
    AutosaveMixin._say_undone_aside(fake, SimpleNamespace(name="frame_0.png"), saved, "your annotation is saved")
    (text,) = said
    assert "could not be kept" not in text and "kept as /p/discarded/frame_0.undone-abc.qgt" in text, text
    assert "saved" in text and "could not be removed" in text and "moved by another process" in text, text


def test_undo_back_to_the_saved_map_kept_in_conflicts_is_said(qtbot, windows, samples, model_path, tmp_path):
    """The fourth review's 1: discarded/ a link out of the project, undo back to the saved map - the autosave
    goes to conflicts/ (``discard_autosave(undone=True)``) and a warning names the file, as a save's and an
    autosave's do. Fails before: nothing was said (``discard_autosaves`` did not look where it went)."""
    from qgn.quadtree.label_io import read_label_file

    folder = tmp_path / "project"
    win, session = _saved_with_discarded_linked_out(qtbot, windows, samples, model_path, folder)
    warnings = _warnings(win)
    paint(win, 2, 1, [(1, 1), (30, 1)])
    edited = session.label.copy()
    _round(qtbot, win)
    win.annotator.undo_action.trigger()  # back to the saved map
    _round(qtbot, win)
    (kept,) = (folder / "conflicts").glob("*.undone-*.qgt")
    np.testing.assert_array_equal(read_label_file(kept, win.annotator.classes), edited)
    assert not list((folder / ".autosave").glob("*.qgt"))
    (said,) = [w for w in warnings if "edits you undid" in w]
    assert str(kept) in said and "could not be kept in discarded/" in said, said
    # an undo/redo cycle keeps the same state under the same name: not said again
    win.annotator.redo_action.trigger()
    _round(qtbot, win)
    win.annotator.undo_action.trigger()
    _round(qtbot, win)
    assert len([w for w in warnings if "edits you undid" in w]) == 1, warnings


@pytest.mark.parametrize("then", ["autosave", "save"])
def test_the_stand_ins_undone_autosave_kept_in_its_conflicts_is_said(qtbot, windows, samples, model_path, tmp_path,
                                                                    then):
    """The fourth review's 1, the stand-in's ``_drop_spare``: both strokes autosaved into the stand-in
    (project.json cut short), its discarded/ a plain file, the project fixed, the second stroke undone - the
    next autosave (or a save) goes to the project and the stand-in's autosave, holding the undone stroke, is
    kept in the stand-in's conflicts/: a warning names it. Fails before: kept, but nothing was said."""
    from qgn.quadtree.label_io import read_label_file

    folder = tmp_path / "project"
    win, session, both, spare, good = two_strokes_autosaved_in_the_stand_in(qtbot, windows, samples, model_path,
                                                                           folder)
    (spare / "discarded").write_text("in the way")
    (folder / "project.json").write_bytes(good)  # fixed
    warnings = _warnings(win)
    win.annotator.undo_action.trigger()
    assert session.undo.canRedo()
    if then == "save":
        with qtbot.waitSignal(win.projects.saved, timeout=WAIT_MS):
            assert win.projects.save()
    _round(qtbot, win)
    (kept,) = (spare / "conflicts").glob("*.undone-*.qgt")
    np.testing.assert_array_equal(read_label_file(kept, win.annotator.classes), both)
    said = [w for w in warnings if str(kept) in w]
    assert len(said) == 1 and "is a file where a folder belongs" in said[0], warnings


def test_a_removal_failure_of_a_file_told_already_is_said():
    """The fourth review's 2: the state kept in conflicts/ was named at an autosave; the save after keeps the
    same state (the same file) and its autosave's removal fails (``undone_left``) - said; the once-per-file
    rule is for the same news only. Fails before (one warning)."""
    from types import SimpleNamespace

    from qgn.project import SavedAnnotation
    from qgn_studio.project_autosave import AutosaveMixin

    said = []
    fake = SimpleNamespace(_told_undone_aside=set(), _warn=said.append)
    doc = SimpleNamespace(name="frame_0.png")
    kept = "/p/conflicts/frame_0.undone-abc.qgt"
    why = OSError("discarded: link out")
    AutosaveMixin._say_undone_aside(fake, doc, SavedAnnotation(None, None, kept, why), "your latest edits are autosaved")
    AutosaveMixin._say_undone_aside(fake, doc, SavedAnnotation(None, None, kept, why), "your latest edits are autosaved")
    assert len(said) == 1  # the same news once
    moved = OSError("frame_0.qgt was moved by another process while this one set it aside")
    AutosaveMixin._say_undone_aside(fake, doc, SavedAnnotation(None, None, kept, why, moved), "your annotation is saved")
    assert len(said) == 2 and "could not be removed" in said[1] and "moved by another process" in said[1], said


def test_a_stand_ins_autosave_neither_folder_takes_is_said(qtbot, windows, samples, model_path, tmp_path):
    """(lost6 2b) Both strokes autosaved into the stand-in, the project fixed, the second stroke undone;
    the stand-in's discarded/ and conflicts/ both plain files: its autosave (holding the undone stroke)
    stays in the stand-in, offered - and now the drop says so. Fails before: nothing said."""
    from qgn.project import Project
    from qgn.quadtree.label_io import read_label_file

    folder = tmp_path / "project"
    win, session, both, spare, good = two_strokes_autosaved_in_the_stand_in(qtbot, windows, samples, model_path,
                                                                           folder)
    (spare / "discarded").write_text("in the way")
    (spare / "conflicts").write_text("in the way")
    warnings = _warnings(win)
    (folder / "project.json").write_bytes(good)  # fixed: the next autosave goes to the project
    win.annotator.undo_action.trigger()
    for _ in range(2):
        _round(qtbot, win)
    stand_in = Project.open(spare)
    np.testing.assert_array_equal(read_label_file(stand_in.autosave_path(stand_in.images[0]), win.annotator.classes),
                                  both)  # kept where it was, offered
    said = [w for w in warnings if "edits you undid" in w]
    assert said and "neither in discarded/ nor in conflicts/" in said[0], warnings


def _spare_with_undone_autosave(tmp_path):
    """A stand-in holding this window's autosave of edits undone since (the saved map lacks them), and a
    stand-in for the window (``_drop_spare``'s ``self``) that finds it for the project at tmp/proj."""
    from types import SimpleNamespace

    from PIL import Image

    from qgn.classes import ClassSet
    from qgn.project import Project

    classes = ClassSet(("road", "sky", "car", "tree"), ((1, 1, 1), (2, 2, 2), (3, 3, 3), (4, 4, 4)), 255)
    path = tmp_path / "a.png"
    Image.new("RGB", (48, 40)).save(path)
    spare = Project.create(tmp_path / "standin", [path], classes)
    image = spare.images[0]
    label = np.zeros((40, 48), np.uint8)
    spare.save_annotation(image, label)
    label[:10, :10] = 2
    saved = spare.autosave(image, label)
    said = []
    window = SimpleNamespace(_forget_spare=lambda root, p: spare, _autosaved={(str(spare.root), path): saved.version},
                             _autosave_written=lambda key: "w", _told_undone_aside=set(), _warn=said.append)
    return window, spare, path, said


def _drop_and_say(window, tmp_path, path):
    from types import SimpleNamespace

    from qgn_studio.project_autosave import AutosaveMixin

    spared = AutosaveMixin._drop_spare(window, SimpleNamespace(root=tmp_path / "proj"), path,
                                       SimpleNamespace(undone=lambda written: True))
    assert spared is not None, "nothing to say"
    AutosaveMixin._say_undone_aside(window, SimpleNamespace(name="a.png"), spared, "your latest edits are autosaved")


def test_a_stand_ins_undone_autosave_kept_but_not_removed_is_said_kept(tmp_path, monkeypatch):
    """(lostfix6 2) discarded/ took the stand-in's autosave, only its removal failed: said as kept there
    and not removed - not "kept neither in discarded/ nor in conflicts/". Fails before."""
    import qgn.project as project_module

    window, spare, path, said = _spare_with_undone_autosave(tmp_path)

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "autosave")

    monkeypatch.setattr(project_module, "remove_kept", refused)
    _drop_and_say(window, tmp_path, path)
    (kept,) = (spare.root / "discarded").glob("*.undone-*.qgt")
    assert len(said) == 1 and f"kept as {kept}" in said[0] and "could not be removed" in said[0], said
    assert "neither" not in said[0]


def test_a_stand_ins_undone_autosave_neither_folder_takes_is_said_whatever_the_error(tmp_path):
    """(lostfix6 3) the stand-in's discarded/ a link out of it (OutsideRootError, a ValueError) and its
    conflicts/ a file: the autosave stays in the stand-in, and that is said. Fails before (nothing said)."""
    window, spare, path, said = _spare_with_undone_autosave(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (spare.root / "discarded").symlink_to(elsewhere)
    (spare.root / "conflicts").write_text("in the way")
    _drop_and_say(window, tmp_path, path)
    assert spare.autosave_path(spare.images[0]).exists() and not list(elsewhere.iterdir())
    assert len(said) == 1 and "neither in discarded/ nor in conflicts/" in said[0] and "symbolic link" in said[0], said
