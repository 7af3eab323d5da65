"""No lost work (issue #20): opening never deletes or writes; a project.json that disagrees with the
folders is an error that deletes nothing; a second writer (another process, window or command) is
merged or refused, never overwrites; a class edit is all or nothing; imports keep autosaves."""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qgn.classes import ClassSet
from qgn.classes_edit import delete_class, rename_class
from qgn.project_class_edit import apply_class_edit
from qgn.project import PROJECT_FILE, Project, ProjectChangedError, ProjectError
from sample_files import ids_dataset

REPO = Path(__file__).resolve().parents[2]
CLASSES = ClassSet(("sky", "road", "pole", "car"), ((70, 130, 180), (128, 64, 128), (153, 153, 153), (0, 0, 142)), 255)
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def label_for(i: int) -> np.ndarray:
    rng = np.random.default_rng(i)
    label = np.kron(rng.integers(0, 4, (5, 6)), np.ones((8, 8), np.int64))
    label[rng.random(label.shape) < 0.05] = 255
    return label


def make_project(root: Path, n: int = 8, autosaves: int = 2) -> Project:
    images = []
    for i in range(n):
        path = root.parent / "images" / f"frame_{i:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (48, 40), (i, i, i)).save(path)
        images.append(path)
    project = Project.create(root, images, CLASSES)
    for i, image in enumerate(project.images):
        project.save_annotation(image, label_for(i))
    for image in project.images[:autosaves]:
        project.autosave(image, label_for(100))
    return project


def read_all(root: Path) -> dict:
    project = Project.open(root)
    out = {im.key: project.load_annotation(im) for im in project.images}
    out.update({im.key + "/auto": project.recover(im) for im in project.images if project.autosave_path(im).is_file()})
    return out


# --------------------------------------------------------------------------- finding 1: opening never deletes
def test_opening_and_exporting_never_write_or_delete(tmp_path, capsys, snapshot, run_cli):
    root = tmp_path / "p"
    project = make_project(root)
    apply_class_edit(project, rename_class(project.classes, 2, "post"))
    tmp = root / project.annotation_dir / ".frame_00.qgt.x1y2z3w4.tmp"  # a temporary of some writer
    tmp.write_bytes(b"partial")
    os.utime(tmp, (time.time() - 3600, time.time() - 3600))
    before = snapshot(root)
    Project.open(root)
    code, out, err = run_cli("export", "--project", root, "--out", tmp_path / "out", "--formats", "png")
    assert code == 0, err
    assert "exported 8 annotation(s) of 8 image(s)" in out
    assert snapshot(root) == before


@pytest.mark.parametrize("generation", ["backup", -1, 5, "7", True], ids=["backup", "minus1", "5", "str7", "true"])
def test_a_stale_project_json_is_an_error_that_deletes_nothing(tmp_path, capsys, snapshot, generation, run_cli):
    root = tmp_path / "p"
    project = make_project(root)
    backup = (root / PROJECT_FILE).read_bytes()  # e.g. Time Machine, git, a sync conflict copy
    apply_class_edit(project, rename_class(project.classes, 2, "post"))
    expected_files = read_all(root)
    good = (root / PROJECT_FILE).read_bytes()
    if generation == "backup":
        (root / PROJECT_FILE).write_bytes(backup)
    else:
        doc = json.loads((root / PROJECT_FILE).read_text())
        doc["generation"] = generation
        (root / PROJECT_FILE).write_text(json.dumps(doc))
    before = snapshot(root)
    with pytest.raises(ProjectError) as caught:
        Project.open(root)
    assert str(root / PROJECT_FILE) in str(caught.value)
    if generation in ("backup", 5):
        assert "annotations.g1" in str(caught.value) and "Nothing was changed or deleted" in str(caught.value)
    code, out, err = run_cli("export", "--project", root, "--out", tmp_path / "out", "--formats", "png")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "project.json" in err
    assert snapshot(root) == before  # 8 annotations and 2 autosaves all still there
    (root / PROJECT_FILE).write_bytes(good)  # putting the right project.json back gives everything back
    after = read_all(root)
    assert after.keys() == expected_files.keys()
    for key in after:
        np.testing.assert_array_equal(after[key], expected_files[key])


def test_class_edits_succeed_while_another_process_keeps_opening_the_project(tmp_path):
    root = tmp_path / "p"
    project = make_project(root)
    before = read_all(root)
    stop = tmp_path / "stop"  # the reader reads until the edits are over (it ran a fixed 6 s)
    reader = subprocess.Popen([sys.executable, "-c", textwrap.dedent('''
        import os, sys, time
        from qgn.project import Project, ProjectError
        end = time.monotonic() + 60
        opened = 0
        while time.monotonic() < end and not os.path.exists(sys.argv[2]):
            try:
                p = Project.open(sys.argv[1])
                p.load_annotation(p.images[0])
                opened += 1
                if opened == 1:
                    print("reading", flush=True)
            except (ProjectError, ValueError, OSError):
                pass  # mid-edit: the old or the new state, never a deletion
        print(opened)
    '''), str(root), str(stop)], env=ENV, stdout=subprocess.PIPE, text=True)
    if not select.select([reader.stdout], [], [], 60)[0]:  # a hang in its first open fails, as the 60 s did
        reader.kill()
        pytest.fail("the reader never opened the project within 60 s")
    assert reader.stdout.readline() == "reading\n"  # it reads while every edit is made (was: a 1 s sleep)
    names = ["post", "pole"]
    for i in range(8):
        apply_class_edit(project, rename_class(project.classes, 2, names[i % 2]))
    stop.touch()
    assert int(reader.communicate(timeout=60)[0]) > 0
    after = read_all(root)
    assert Project.open(root).classes == CLASSES and project.generation == 8
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])


# --------------------------------------------------------------------------- finding 2: a second writer
SECOND_WINDOW = textwrap.dedent('''
    import sys
    import numpy as np
    from qgn.project import Project, ProjectChangedError
    project = Project.open(sys.argv[1])  # open since before the other window's edit
    print("opened", flush=True)
    sys.stdin.readline()
    image = project.images[0]
    try:
        project.save_annotation(image, np.zeros((40, 48), np.int64))
        print("saved", flush=True)
    except ProjectChangedError as exc:
        print("refused:", exc, flush=True)
    try:
        project.set_done(image, True)
        print("done written", flush=True)
    except ProjectChangedError as exc:
        print("refused:", exc, flush=True)
''')


def test_a_second_window_never_overwrites_a_class_edit(tmp_path):
    root = tmp_path / "p"
    make_project(root)
    before = read_all(root)
    window_b = subprocess.Popen([sys.executable, "-c", SECOND_WINDOW, str(root)], env=ENV, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
    assert window_b.stdout.readline().strip() == "opened"
    window_a = Project.open(root)
    apply_class_edit(window_a, rename_class(window_a.classes, 2, "post"))
    out, _ = window_b.communicate("go\n", timeout=60)
    assert window_b.returncode == 0
    lines = out.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("refused:") for line in lines), out
    assert "changed by another window or command" in lines[0] and "reload" in lines[0]
    reopened = Project.open(root)
    assert reopened.classes.names == ("sky", "road", "post", "car") and reopened.generation == 1
    after = read_all(root)
    assert after.keys() == before.keys()
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])
    assert not any(im.done for im in reopened.images)


ADDER = textwrap.dedent('''
    import sys
    from pathlib import Path
    from qgn.project import Project
    project = Project.open(sys.argv[1])
    folder = Path(sys.argv[2])
    for i in range(int(sys.argv[3])):
        (image,) = project.add_images([folder / f"{i:03d}.png"])
        project.set_done(image, True)
''')


def test_two_processes_adding_images_at_once_lose_nothing(tmp_path):
    root = tmp_path / "p"
    make_project(root, n=1, autosaves=0)
    n = 15
    folders = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        for i in range(n):
            Image.new("RGB", (4, 4)).save(folder / f"{i:03d}.png")
        folders.append(folder)
    procs = [subprocess.Popen([sys.executable, "-c", ADDER, str(root), str(folder), str(n)], env=ENV)
             for folder in folders]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    project = Project.open(root)
    assert len(project.images) == 1 + 2 * n
    assert sum(im.done for im in project.images) == 2 * n
    assert len({im.key for im in project.images}) == len(project.images)


def test_a_command_importing_while_the_project_is_open_is_merged(tmp_path, capsys, run_cli):
    root = tmp_path / "p"
    make_project(root, n=2, autosaves=0)
    window = Project.open(root)  # e.g. the app, open since before
    dataset = ids_dataset(tmp_path / "ds", 3, size=(6, 4))
    (dataset / "classes.txt").write_text("sky\nroad\npole\ncar\n")
    code, out, err = run_cli("import", dataset / "labels", "--project", root, "--format", "ids")
    assert code == 0, err
    window.set_done(window.images[0], True)  # the window's next write
    project = Project.open(root)
    assert len(project.images) == 5 and project.images[0].done
    assert len(project.annotated()) == 5  # the 3 imported images are still in project.json
    assert len(window.images) == 5  # the window's copy adopted them


def test_save_refuses_to_overwrite_a_change_made_elsewhere(tmp_path):
    root = tmp_path / "p"
    make_project(root, n=2, autosaves=0)
    a, b = Project.open(root), Project.open(root)
    a.set_done(a.images[1], True)
    b.model = "demo"
    with pytest.raises(ProjectChangedError, match="reload"):
        b.save()
    assert Project.open(root).images[1].done


# --------------------------------------------------------------------------- finding 3: a failed class edit
def test_a_class_edit_that_cannot_rewrite_one_file_changes_nothing(tmp_path, snapshot):
    root = tmp_path / "p"
    project = make_project(root)
    broken = project.annotation_path(project.images[3])
    broken.write_bytes(broken.read_bytes()[:-9])  # one truncated .qgt among 8
    before = snapshot(root)
    edit = delete_class(project.classes, 2)
    with pytest.raises(ValueError, match=broken.name):
        apply_class_edit(project, edit)
    assert snapshot(root) == before and project.classes == CLASSES
    project.classes = edit.after  # what the app did next: write the new classes anyway
    with pytest.raises(ProjectError, match="class edit"):
        project.save()
    assert snapshot(root) == before
    reopened = Project.open(root)
    readable = [im for im in reopened.images if im.key != project.images[3].key]
    for i, im in enumerate(reopened.images):
        if im in readable:
            np.testing.assert_array_equal(reopened.load_annotation(im), label_for(i))


# --------------------------------------------------------------------------- finding 5: autosaves are user data
def test_import_never_deletes_or_hides_an_autosave(tmp_path, capsys, run_cli):
    root = tmp_path / "p"
    images = tmp_path / "ds" / "images"
    images.mkdir(parents=True)
    Image.new("RGB", (6, 4)).save(images / "a.png")
    Image.new("RGB", (6, 4)).save(images / "b.png")
    project = Project.create(root, [images / "a.png"], CLASSES)
    project.autosave(project.images[0], np.ones((4, 6), np.int64))  # unsaved edits of a.png
    labels = tmp_path / "ds" / "labels"
    labels.mkdir()
    for name in ("a", "b"):
        Image.fromarray(np.full((4, 6), 3, np.uint8), "L").save(labels / f"{name}.png")
    (tmp_path / "ds" / "classes.txt").write_text("sky\nroad\npole\ncar\n")
    code, out, err = run_cli("import", labels, "--project", root, "--format", "ids")
    assert code == 2 and "a: skipped" in out and "unsaved edits" in out and "imported 1 of 2" in out
    reopened = Project.open(root)
    (a,) = [im for im in reopened.images if im.key == "a"]
    assert [im.key for im in reopened.recoverable()] == ["a"]
    np.testing.assert_array_equal(reopened.recover(a), np.ones((4, 6)))
    assert reopened.load_annotation(a) is None


# --------------------------------------------------------------------------- two writers saving one image
def test_a_save_from_a_stale_read_keeps_the_other_writers_annotation(tmp_path):
    """Two writers read one saved annotation; the first saves, then the second saves over what it
    read: the second's map is saved and the first's is moved to conflicts/, byte for byte."""
    from qgn.project import CONFLICTS_DIR
    from qgn.quadtree.label_io import read_label_file

    root = tmp_path / "p"
    make_project(root, n=2, autosaves=0)
    a, b = Project.open(root), Project.open(root)
    image = a.images[0]
    read_a, read_b = a.annotation_version(image), b.annotation_version(image)
    assert read_a == read_b is not None
    first = b.save_annotation(b.images[0], label_for(7), over=read_b)
    assert first.parked is None and first.version != read_b  # its own read: no conflict
    theirs = a.annotation_path(image).read_bytes()
    second = a.save_annotation(image, label_for(8), over=read_a)
    assert second.parked is not None and second.parked.parent == root / CONFLICTS_DIR
    assert second.parked.read_bytes() == theirs
    np.testing.assert_array_equal(read_label_file(second.parked, CLASSES), label_for(7))
    np.testing.assert_array_equal(Project.open(root).load_annotation(image), label_for(8))
    # the version a save returns is what the next save of that writer is based on: no conflict
    assert a.save_annotation(image, label_for(9), over=second.version).parked is None
    # a save over "nothing saved" when something is: the other file is kept too
    other = a.images[1]
    third = a.save_annotation(other, label_for(10), over=None)
    assert third.parked is not None and third.parked != second.parked
    np.testing.assert_array_equal(read_label_file(third.parked, CLASSES), label_for(1))
    # without `over` (an import, which never replaces an annotation): last writer wins, as before
    assert a.save_annotation(other, label_for(11)).parked is None
    assert len(list((root / CONFLICTS_DIR).iterdir())) == 2


def test_files_kept_aside_in_one_second_never_replace_each_other(tmp_path, monkeypatch):
    import qgn.project_kept
    from qgn.project_kept import kept_path

    monkeypatch.setattr(qgn.project_kept.time, "strftime", lambda fmt, *a: "20261206-050000")  # one second
    names = []
    for _ in range(3):
        path = kept_path(tmp_path, "a.annotation")
        path.write_bytes(b"x")
        names.append(path.name)
    assert len(set(names)) == 3 and names[1].endswith("-2.qgt") and names[2].endswith("-3.qgt")


def test_a_second_writers_autosave_is_never_overwritten_removed_or_discarded(tmp_path):
    """Two windows with unsaved edits of one image: each autosave passes the version it wrote last,
    so the other's autosave is moved to conflicts/ instead of overwritten; a save removes only the
    saver's own autosave, a discard only the discarder's."""
    from qgn.project import ANY, CONFLICTS_DIR
    from qgn.quadtree.label_io import read_label_file

    root = tmp_path / "p"
    make_project(root, n=1, autosaves=0)
    a, b = Project.open(root), Project.open(root)
    image = a.images[0]
    first = a.autosave(image, label_for(21), over=None)
    assert first.parked is None
    second = b.autosave(b.images[0], label_for(22), over=None)  # b never wrote one: a's is someone else's
    assert second.parked is not None and second.parked.parent == root / CONFLICTS_DIR
    assert second.parked.name.startswith(f"{image.key}.autosave.")
    np.testing.assert_array_equal(read_label_file(second.parked, CLASSES), label_for(21))
    # a saves: b's autosave is not a's to remove
    a.save_annotation(image, label_for(23), autosave=first.version)
    np.testing.assert_array_equal(Project.open(root).recover(image), label_for(22))
    # a discards (it has no autosave there any more): b's stays; b discards its own: gone
    assert not a.discard_autosave(image, ours=None)
    assert b.autosave_version(image) == second.version
    assert b.discard_autosave(b.images[0], ours=second.version)
    assert b.autosave_version(image) is None
    # b autosaves again over its own (none now): nothing parked; a later autosave of b's own: nothing
    third = b.autosave(b.images[0], label_for(24), over=None)
    assert third.parked is None and b.autosave(b.images[0], label_for(25), over=third.version).parked is None
    # a script's save (no autosave version given) keeps the window's unsaved edits; ANY removes them
    a.save_annotation(image, label_for(26))
    assert a.autosave_version(image) is not None
    a.save_annotation(image, label_for(26), autosave=ANY)
    assert a.autosave_version(image) is None
    assert len(list((root / CONFLICTS_DIR).iterdir())) == 1


def test_an_autosave_kept_by_another_writers_save_is_still_offered(tmp_path):
    """A window autosaved edits and was killed; another window saved the image afterwards (its save
    keeps the dead window's autosave, which is not its own). The autosave is older than the saved
    file now, yet holds edits the file lacks: it is offered, and its restore is based on no saved
    file, so saving it keeps the newer save in conflicts/. An autosave older than the saved file
    with its content (a save killed before it removed its autosave) is not offered."""
    root = tmp_path / "p"
    make_project(root, n=2, autosaves=0)
    dead, survivor = Project.open(root), Project.open(root)
    image = dead.images[0]
    dead.autosave(image, label_for(31), over=None)
    time.sleep(0.01)  # a later write: a later modification time, whatever the file system's granularity
    survivor.save_annotation(survivor.images[0], label_for(32), over=None, autosave=None)
    reopened = Project.open(root)
    assert [im.key for im in reopened.recoverable()] == [image.key]
    np.testing.assert_array_equal(reopened.recover(reopened.images[0]), label_for(31))
    assert reopened.recovery_base(reopened.images[0]) is None
    # the other image: its own save was killed between writing the annotation and removing the autosave
    other = dead.images[1]
    dead.autosave(other, label_for(33), over=None)
    time.sleep(0.01)
    dead.save_annotation(other, label_for(33), keep_autosave=True)
    assert [im.key for im in Project.open(root).recoverable()] == [image.key]


def test_the_recorded_class_edits_lead_an_old_map_to_the_projects_classes(tmp_path):
    """class-edits.json records each committed edit; edits_since chains them from a window's
    classes and generation to the project's, or answers None when it cannot show the whole chain."""
    from qgn.classes_edit import delete_class, recolour_class, remap_label
    from qgn.project_class_edit import HISTORY_FILE, edits_since

    root = tmp_path / "p"
    project = make_project(root, n=2, autosaves=0)
    start = project.classes
    old_map = label_for(3)  # an unsaved map of generation 0
    apply_class_edit(project, rename_class(project.classes, 1, "street"))
    apply_class_edit(project, recolour_class(project.classes, 0, (1, 2, 3)))
    apply_class_edit(project, delete_class(project.classes, 2))
    fresh = Project.open(root)
    chain = edits_since(root, 0, start, fresh.classes, fresh.generation)
    assert [e.description for e in chain] == ["Rename 'road' to 'street'", "Recolour 'sky'", "Delete class 'pole'"]
    def follow(label):
        for edit in chain:
            label = remap_label(label, edit)
        return label

    # what the project did to its own files is what the chain does to a map of generation 0
    np.testing.assert_array_equal(follow(label_for(0)), fresh.load_annotation(fresh.images[0]))
    followed = follow(old_map)
    expected = np.where(old_map == 2, 255, np.where(old_map == 3, 2, old_map))  # pole deleted: car moves down
    np.testing.assert_array_equal(followed, expected)
    assert edits_since(root, 1, start, fresh.classes, fresh.generation) is None  # not generation 1's classes
    assert edits_since(root, 0, start, start, fresh.generation) is None  # does not end at these classes
    (root / HISTORY_FILE).write_text("{not json")
    assert edits_since(root, 0, start, fresh.classes, fresh.generation) is None
    (root / HISTORY_FILE).unlink()
    assert edits_since(root, 0, start, fresh.classes, fresh.generation) is None
    assert edits_since(root, fresh.generation, fresh.classes, fresh.classes, fresh.generation) == []


def test_an_import_never_replaces_an_annotation_saved_while_it_ran(tmp_path):
    """The import decided an image had no annotation from its own (stale) list of images, then
    saved over whatever was there: the user's annotation, saved by the app while the import ran,
    was gone without a copy. The check is now made under the lock, at the save."""
    from qgn.classes import ClassSet as Classes
    from qgn.project_import import import_into_project

    data = ids_dataset(tmp_path / "ds", count=3)
    classes = Classes(("a", "b", "c"), ((1, 1, 1), (2, 2, 2), (3, 3, 3)), 255)
    root = tmp_path / "p"
    Project.create(root, [], classes)
    user = np.full((8, 12), 2, np.uint8)

    def app_saves_meanwhile(i, n, text):
        if i == 1:
            app = Project.open(root)
            (image,) = app.add_images([data / "images" / "new_1.png"])
            app.save_annotation(image, user, over=None)

    report = import_into_project(data / "labels", root, "ids", images=data / "images", classes=classes,
                                 progress=app_saves_meanwhile)
    assert [name for name, _ in report.skipped] == ["new_1"] and "already has an annotation" in report.skipped[0][1]
    project = Project.open(root)
    np.testing.assert_array_equal(project.load_annotation(project.image_for(data / "images" / "new_1.png")), user)


@pytest.mark.parametrize("kind", ["annotation", "autosave"])
def test_a_save_that_fails_puts_back_the_other_writers_file(tmp_path, monkeypatch, kind):
    """A save over another writer's newer file moves that file to conflicts/ first; when the write
    then failed (a full disk) the image was left with neither file."""
    import errno

    project = make_project(tmp_path / "p", n=1, autosaves=1)
    mine, theirs = Project.open(project.root), Project.open(project.root)
    (image,) = mine.images
    version = mine.annotation_version(image) if kind == "annotation" else mine.autosave_version(image)
    if kind == "annotation":
        theirs.save_annotation(theirs.images[0], label_for(7), over=version, keep_autosave=True)
        path = mine.annotation_path(image)
    else:
        theirs.autosave(theirs.images[0], label_for(7), over=version)
        path = mine.autosave_path(image)
    before = path.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError):
        if kind == "annotation":
            mine.save_annotation(image, label_for(8), over=version)
        else:
            mine.autosave(image, label_for(8), over=version)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert not (project.root / "conflicts").exists() or not list((project.root / "conflicts").iterdir())


# --------------------------------------------------------------------------- a key given to another image
def test_a_stale_copy_never_saves_a_removed_image_into_the_image_that_took_its_key(tmp_path):
    """Window B holds image X (key "a"); window A removes X and adds Y of the same stem, which gets
    the freed key "a". B's save or autosave of X must not become Y's annotation or autosave (it
    did: B merged A's change, its object of X was turned into Y, Y's annotation went to conflicts/)."""
    X, Y = tmp_path / "one" / "a.png", tmp_path / "two" / "a.png"
    for i, path in enumerate((X, Y)):
        path.parent.mkdir()
        Image.new("RGB", (48, 40), (i, i, i)).save(path)
    first = Project.create(tmp_path / "p", [X], CLASSES)
    first.save_annotation(first.images[0], label_for(0))
    second = Project.open(tmp_path / "p")
    x = second.image_for(X)
    version = second.annotation_version(x)
    first.remove_image(first.images[0])
    y = first.add_images([Y])[0]
    assert y.key == x.key, "the freed key is given to the new image"
    first.save_annotation(y, label_for(1))
    first.autosave(y, label_for(2))
    with pytest.raises(KeyError, match="no longer in the project"):
        second.save_annotation(x, label_for(3), over=version)
    with pytest.raises(KeyError, match="no longer in the project"):
        second.autosave(x, label_for(3))
    with pytest.raises(KeyError):
        second.set_done(x, True)
    with pytest.raises(KeyError, match="no longer in the project"):  # a list taken before: not Y's annotation
        second.annotated([x])
    assert second.annotated() == second.annotated(list(second.images)) == [second.image_for(Y)]
    assert x.path == X, "an object held from before keeps naming its own image"
    project = Project.open(tmp_path / "p")
    assert [im.path for im in project.images] == [Y] and not project.images[0].done
    np.testing.assert_array_equal(project.load_annotation(project.images[0]), label_for(1))
    np.testing.assert_array_equal(project.recover(project.images[0]), label_for(2))
    assert not (tmp_path / "p" / "conflicts").exists()
    # B adds X back (as the app does for unsaved edits of an image removed elsewhere): a key of its own
    again = second.add_images([X])[0]
    second.save_annotation(again, label_for(3), over=None)
    project = Project.open(tmp_path / "p")
    np.testing.assert_array_equal(project.load_annotation(project.image_for(X)), label_for(3))
    np.testing.assert_array_equal(project.load_annotation(project.image_for(Y)), label_for(1))


@pytest.mark.parametrize("journal", [
    {"from_generation": 0, "to_generation": 0, "from_revision": "R", "to_revision": "R"},  # proves the current folders
    {"from_generation": 0, "to_generation": 0, "from_revision": "R-1", "to_revision": "R"},  # … "committed"
    {"from_generation": 1, "to_generation": 0, "from_revision": "R-1", "to_revision": "R"},  # back in time
    {"from_generation": 0, "to_generation": 1, "from_revision": "R", "to_revision": "R+5"},  # not the next revision
])
def test_a_class_edit_journal_no_edit_could_write_removes_nothing(tmp_path, journal):
    """A corrupt or hand-made .class-edit.json: the next write (marking an image done) removed every
    annotation and autosave when its generations were equal. Such a journal proves nothing."""
    root = tmp_path / "p"
    make_project(root, n=3, autosaves=1)
    before = read_all(root)
    revision = json.loads((root / PROJECT_FILE).read_text())["revision"]
    values = {"R": revision, "R-1": revision - 1, "R+5": revision + 5}
    (root / ".class-edit.json").write_text(json.dumps({k: values.get(v, v) for k, v in journal.items()}))
    project = Project.open(root)
    project.set_done(project.images[0], True)
    project.save_annotation(project.images[1], label_for(7))
    after = read_all(root)
    assert sorted(after) == sorted(before)
    for key, label in before.items():
        np.testing.assert_array_equal(after[key], label_for(7) if key == project.images[1].key else label)


def test_folders_for_kept_files_that_are_links_out_of_the_project_are_refused(tmp_path):
    """A project unpacked from elsewhere whose removed/, conflicts/, replaced/ or discarded/ is a
    symbolic link to another folder: removing an image, a save that parks another writer's file, an
    import's replace, a discarded autosave moved annotations out of the project into that folder. They are refused, and nothing moves."""
    from qgn.fileio import OutsideRootError

    root = tmp_path / "p"
    project = make_project(root, n=2, autosaves=1)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    for name in ("removed", "conflicts", "replaced", "discarded"):
        (root / name).symlink_to(outside, target_is_directory=True)
    before = read_all(root)
    autosave = project.autosave_path(project.images[0]).read_bytes()
    stale = project.annotation_version(project.images[1])
    Project.open(root).save_annotation(project.images[1], label_for(5))  # another writer's save
    after_other = read_all(root)
    with pytest.raises(OutsideRootError, match="symbolic link"):
        project.remove_image(project.images[0])
    with pytest.raises(OutsideRootError, match="symbolic link"):
        project.save_annotation(project.images[1], label_for(6), over=stale)
    with pytest.raises(OutsideRootError, match="symbolic link"):
        project.replace_annotation(project.images[0], label_for(7))
    with pytest.raises(OutsideRootError, match="symbolic link"):
        project.discard_autosave(project.images[0])  # the user's "Discard": autosaves are user data
    assert project.autosave_path(project.images[0]).read_bytes() == autosave
    assert list(outside.iterdir()) == []
    assert len(Project.open(root).images) == 2
    after = read_all(root)
    assert sorted(after) == sorted(before)
    for key, label in after_other.items():
        np.testing.assert_array_equal(after[key], label)


def test_an_index_built_while_another_thread_replaces_the_images_is_never_taken_for_the_new_ones(tmp_path,
                                                                                               monkeypatch):
    """A look-up by path builds the path index from ``images``; when another thread replaced the list
    meanwhile (a job's merge of another writer's change), the index was labelled with the new list but
    built from the old: an image the other writer added was then not found (KeyError) until the list
    changed again (found by a read-only review)."""
    import threading

    import qgn.project_images as project_images

    paths = []
    for i in range(6):
        path = tmp_path / "images" / f"im{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
        paths.append(path)
    Project.create(tmp_path / "proj", paths[:5], CLASSES)
    ours = Project.open(tmp_path / "proj")
    ours.warm_index()
    Project.open(tmp_path / "proj").add_images([paths[5]], save=True)  # another writer adds im5
    ours.images = list(ours.images)  # replaced by a job (as a Remove does): the index is stale
    here, building, swapped = threading.current_thread(), threading.Event(), threading.Event()
    key = project_images.path_key

    def slow_key(path):  # this thread's rebuild waits, mid-way, for the other thread's refresh
        if threading.current_thread() is here and not building.is_set():
            building.set()
            swapped.wait(10)
        return key(path)

    def job():  # the other thread: another writer's change merged (the list replaced), its index built
        building.wait(10)
        ours.refresh()
        ours.warm_index()
        swapped.set()

    monkeypatch.setattr(project_images, "path_key", slow_key)
    worker = threading.Thread(target=job)
    worker.start()
    assert ours.image_for(paths[0]).path == paths[0]
    worker.join()
    monkeypatch.undo()
    assert len(ours.images) == 6
    assert ours.image_for(paths[5]).path == paths[5]  # KeyError before: an index of 5 labelled as of 6


def test_a_merge_or_a_removal_leaves_the_path_index_of_the_new_images_built(tmp_path, monkeypatch):
    """With the path index in use, a merge of another writer's change (a refresh, a write that merges)
    and a removal replace the image list: the index of the new list is built by the thread that writes
    (the app's job thread) and published with it. It was left stale, and a look-up by path on another
    thread (the app's UI thread) between the write and a later warm-up rebuilt it there (~0.4 s at
    100,000 images; found by a read-only review)."""
    import qgn.project_images as project_images

    paths = []
    for i in range(7):
        path = tmp_path / "images" / f"im{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
        paths.append(path)
    Project.create(tmp_path / "proj", paths[:5], CLASSES)
    ours = Project.open(tmp_path / "proj")
    ours.warm_index()
    other = Project.open(tmp_path / "proj")
    other.add_images([paths[5]], save=True)  # another writer adds im5
    key, keyed = project_images.path_key, []

    def counted(path):
        keyed.append(path)
        return key(path)

    def looked_up(path) -> int:  # the paths keyed by one look-up (a rebuild keys every image's)
        monkeypatch.setattr(project_images, "path_key", counted)
        keyed.clear()
        assert ours.image_for(path).path == path
        monkeypatch.undo()
        return len(keyed)

    assert ours.refresh()
    assert len(ours.images) == 6 and looked_up(paths[5]) <= 2
    other.add_images([paths[6]], save=True)  # and im6: merged by a write of ours
    ours.set_done(ours.image_for(paths[0]), True)
    assert len(ours.images) == 7 and looked_up(paths[6]) <= 2
    ours.remove_image(ours.image_for(paths[3]))
    assert len(ours.images) == 6 and looked_up(paths[4]) <= 2
    with pytest.raises(KeyError):
        ours.image_for(paths[3])
    assert [im.path for im in Project.open(tmp_path / "proj").images] == paths[:3] + paths[4:]


def _racing_build(project, blocked_at, change, monkeypatch):
    """A look-up by path on this thread rebuilds the path index and waits, once it keys ``blocked_at``
    (by the file key: after the image's path key is in), for ``change`` on another thread (a job's
    write); then a warm-up on that thread as the app's job runner does after each job."""
    import threading

    import qgn.project_images as project_images

    here, reached, done = threading.current_thread(), threading.Event(), threading.Event()
    key = project_images._file_key

    def slow_key(path, folders, normalised=None):
        if threading.current_thread() is here and Path(path) == blocked_at and not reached.is_set():
            reached.set()
            done.wait(10)
        return key(path, folders, normalised)

    def job():
        reached.wait(10)
        try:
            change()
        except OSError:
            pass
        finally:
            done.set()

    monkeypatch.setattr(project_images, "_file_key", slow_key)
    worker = threading.Thread(target=job)
    worker.start()
    project._by_path = None  # stale (as a replaced list leaves it): the look-up below rebuilds it
    try:
        project.image_for(blocked_at)
    except KeyError:
        pass
    worker.join()
    monkeypatch.setattr(project_images, "_file_key", key)
    project.warm_index()


def _four_images(tmp_path) -> tuple[Project, list[Path]]:
    paths = []
    for name in ("a", "b", "c", "d"):
        path = tmp_path / "images" / f"{name}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
        paths.append(path)
    project = Project.create(tmp_path / "proj", paths[:3], CLASSES)
    project.warm_index()
    return project, paths


def test_an_index_built_while_a_relink_repoints_an_image_is_never_taken_for_the_new_paths(tmp_path, monkeypatch):
    """A relink changes image paths in place (``repoint``): a look-up by path on another thread that
    was building the index from the old paths meanwhile published it as current (same list, same
    length), and the relinked image was not found by its new path (KeyError) but was by its old one
    until the list next changed (found by a read-only review of bigindex2). Fails before, passes after."""
    project, paths = _four_images(tmp_path)
    moved = tmp_path / "moved" / "a.png"
    moved.parent.mkdir()
    paths[0].rename(moved)

    def relink():
        image = project.images[0]
        with project.writing():
            project.repoint([(image, moved)])

    _racing_build(project, paths[2], relink, monkeypatch)  # the build has read a.png's old path already
    assert [im.path for im in Project.open(tmp_path / "proj").images] == [moved] + paths[1:3]
    assert project.image_for(moved).path == moved
    with pytest.raises(KeyError):
        project.image_for(paths[0])


def test_an_index_built_while_an_add_fails_never_finds_the_image_not_added(tmp_path, monkeypatch):
    """An add whose write fails takes the image out of the list again (in place): a look-up building
    the index meanwhile keyed the image, and published its index as current once the list had its old
    length again: the image that was not added was found by its path. Fails before, passes after."""
    project, paths = _four_images(tmp_path)
    _racing_add(project, paths, monkeypatch)


def _racing_add(project, paths, monkeypatch):
    """``project`` adds ``paths[3]`` on another thread, and its write fails, while a look-up here
    rebuilds the index: started with the image in the list, keying it as the write fails."""
    import threading

    import qgn.project_images as project_images

    here, appended, reached, done = threading.current_thread(), threading.Event(), threading.Event(), threading.Event()
    key = project_images._file_key

    def slow_key(path, folders, normalised=None):
        if threading.current_thread() is here and Path(path) == paths[3] and not reached.is_set():
            reached.set()  # the build has keyed d.png's path; the write fails now
            done.wait(10)
        return key(path, folders, normalised)

    def failing_commit(*_args, **_how):  # (as _commit: change=, advice=)
        appended.set()  # d.png is in the list
        reached.wait(10)
        raise OSError(28, "No space left on device")

    def job():
        try:
            project.add_images([paths[3]])
        except OSError:
            pass
        finally:
            done.set()

    monkeypatch.setattr(project, "_commit", failing_commit)
    monkeypatch.setattr(project_images, "_file_key", slow_key)
    worker = threading.Thread(target=job)
    worker.start()
    appended.wait(10)
    project._by_path = None  # stale (as a replaced list leaves it): the look-up below rebuilds it
    project.image_for(paths[0])
    worker.join()
    monkeypatch.undo()
    project.warm_index()
    assert [im.path for im in project.images] == paths[:3]
    with pytest.raises(KeyError):
        project.image_for(paths[3])
    assert project.image_for(paths[1]).path == paths[1]
