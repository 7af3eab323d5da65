"""Find missing images: a project's moved image files are found in a folder by name, checked
against the noted bytes, and project.json points at them — annotations follow, nothing is lost."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from qgn.classes import ClassSet
from qgn.project import Project
from qgn.project_relink import find_missing, missing_images, relink

CLASSES = ClassSet(("sky", "road", "car"), ((70, 130, 180), (128, 64, 128), (0, 0, 142)), 255)


def picture(path, colour):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 8), colour).save(path)
    return path


def annotate(project, path, value):
    label = np.full((8, 16), value, np.uint8)
    entry = project.image_for(path)
    project.save_annotation(entry, label)
    project.note_image_file(entry)
    return label


@pytest.fixture
def moved(tmp_path):
    """A project of old/a.png (annotated, noted), old/sub/b.png (annotated without a note, done) and
    old/c.png (not annotated); then old/ is renamed new/."""
    old = tmp_path / "old"
    paths = [picture(old / "a.png", (1, 2, 3)), picture(old / "sub" / "b.png", (4, 5, 6)), picture(old / "c.png", (7, 8, 9))]
    project = Project.create(tmp_path / "P", paths, CLASSES)
    labels = {"a": annotate(project, paths[0], 1)}
    labels["b"] = np.full((8, 16), 2, np.uint8)
    project.save_annotation(project.image_for(paths[1]), labels["b"])
    project.set_done(project.image_for(paths[1]), True)
    old.rename(tmp_path / "new")
    return Project.open(tmp_path / "P"), labels, tmp_path / "new"


def entries(project):
    return json.loads((project.root / "project.json").read_text())["images"]


def test_a_moved_folder_is_found_and_the_annotations_follow(moved):
    project, labels, new = moved
    assert len(missing_images(project)) == 3
    before = entries(project)
    plan = find_missing(project, new)
    assert {(m.key, m.new, m.how) for m in plan.found} == {
        ("a", new / "a.png", "bytes"), ("b", new / "sub" / "b.png", "name and size"), ("c", new / "c.png", "name")}
    assert not plan.ambiguous and not plan.not_found and not plan.rejected and plan.files == 3
    assert entries(project) == before, "finding writes nothing"
    result = relink(project, plan)
    assert len(result.relinked) == 3 and not result.skipped
    again = Project.open(project.root)
    assert not missing_images(again)
    after = entries(again)
    assert [{k: v for k, v in e.items() if k != "path"} for e in after] == \
        [{k: v for k, v in e.items() if k != "path"} for e in before], "keys, done flags and notes stay"
    assert [e["path"] for e in after] == [str(new / "a.png"), str(new / "sub" / "b.png"), str(new / "c.png")]
    for key, label in labels.items():
        image = next(im for im in again.images if im.key == key)
        assert np.array_equal(again.load_annotation(image), label)
    assert again.image_for(new / "a.png").key == "a"


def test_a_file_of_the_same_name_with_other_bytes_is_not_taken(moved, tmp_path):
    project, _, new = moved
    picture(new / "a.png", (200, 0, 0))  # another picture took a.png's name
    plan = find_missing(project, new)
    assert [(key, why.startswith("1 file(s) of that name, none with the bytes")) for key, _, why in plan.rejected] \
        == [("a", True)]
    assert "a" not in {m.key for m in plan.found}
    relink(project, plan)
    assert Project.open(project.root).images[0].path == tmp_path / "old" / "a.png", "left as it was"


def test_two_candidates_nothing_tells_apart_are_never_chosen(moved, tmp_path):
    project, _, new = moved
    shutil.copy(new / "c.png", tmp_path / "new" / "sub" / "c.png")  # c has no note; two files named c.png
    other = tmp_path / "copy"
    shutil.copytree(new, other / "new")  # a second copy of everything, below the folder searched
    plan = find_missing(project, tmp_path)
    assert {key for key, _, _ in plan.ambiguous} == {"a", "b", "c"}
    ambiguous_c = next(paths for key, _, paths in plan.ambiguous if key == "c")
    assert len(ambiguous_c) == 4
    assert not plan.found and relink(project, plan).relinked == []


def test_the_folders_that_end_like_the_old_path_decide(tmp_path):
    paths = [picture(tmp_path / "old" / split / "x.png", (i, i, i)) for i, split in enumerate(("train", "val"))]
    project = Project.create(tmp_path / "P", paths, CLASSES)
    (tmp_path / "old").rename(tmp_path / "moved")
    plan = find_missing(project, tmp_path / "moved")
    assert {(m.key, m.new, m.how) for m in plan.found} == {
        ("x", tmp_path / "moved" / "train" / "x.png", "name and folders"),
        ("x-2", tmp_path / "moved" / "val" / "x.png", "name and folders")}


def test_one_file_is_never_given_to_two_images(tmp_path):
    paths = [picture(tmp_path / d / "x.png", (1, 1, 1)) for d in ("one", "two")]
    project = Project.create(tmp_path / "P", paths, CLASSES)
    for d in ("one", "two"):
        shutil.rmtree(tmp_path / d)
    picture(tmp_path / "found" / "x.png", (1, 1, 1))
    plan = find_missing(project, tmp_path / "found")
    assert not plan.found and {key for key, _, _ in plan.ambiguous} == {"x", "x-2"}


def test_a_file_already_in_the_project_is_not_taken(tmp_path):
    here = picture(tmp_path / "here" / "x.png", (1, 1, 1))
    gone = picture(tmp_path / "gone" / "x.png", (1, 1, 1))
    project = Project.create(tmp_path / "P", [here, gone], CLASSES)
    shutil.rmtree(tmp_path / "gone")
    plan = find_missing(project, tmp_path)
    assert plan.not_found == [("x-2", gone)] and not plan.found


def test_images_moved_into_the_project_folder_are_stored_relative(moved, tmp_path):
    project, _, new = moved
    new.rename(project.root / "images")
    relink(project, find_missing(project, project.root))
    assert [e["path"] for e in entries(project)] == ["images/a.png", "images/sub/b.png", "images/c.png"]


def test_another_writers_changes_meanwhile_are_kept_and_its_relinks_win(moved, tmp_path):
    project, _, new = moved
    plan = find_missing(project, new)
    other = Project.open(project.root)  # another window, while the user looks at the plan
    extra = picture(tmp_path / "extra" / "d.png", (3, 3, 3))
    other.add_images([extra])
    other.set_done(other.images[0], True)
    elsewhere = picture(tmp_path / "elsewhere" / "c.png", (7, 8, 9))
    c = next(im for im in other.images if im.key == "c")
    relink(other, find_missing(other, elsewhere.parent))  # the other window relinked c already
    assert c.path == elsewhere
    result = relink(project, plan)
    assert {m.key for m in result.relinked} == {"a", "b"}
    assert [(m.key, why.startswith("another window or command changed its path")) for m, why in result.skipped] \
        == [("c", True)]
    final = {e["key"]: e for e in entries(Project.open(project.root))}
    assert final["a"]["done"] and final["d"]["path"] == str(extra) and final["c"]["path"] == str(elsewhere)
    assert final["a"]["path"] == str(new / "a.png")


def test_a_failed_write_changes_nothing(moved, monkeypatch):
    import qgn.project

    project, _, new = moved
    before = (project.root / "project.json").read_bytes()
    paths = [im.path for im in project.images]
    plan = find_missing(project, new)

    def full_disk(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(qgn.project, "atomic_write_bytes", full_disk)
    with pytest.raises(OSError):
        relink(project, plan)
    assert (project.root / "project.json").read_bytes() == before
    assert [im.path for im in project.images] == paths
    assert project.image_for(paths[0]).key == "a", "the path index is the old one again"


def test_a_cancelled_search_finds_nothing(moved):
    project, _, new = moved
    plan = find_missing(project, new, should_stop=lambda: True)
    assert plan.cancelled and not plan.found and relink(project, plan).relinked == []


def test_progress_is_reported_while_checking(moved):
    project, _, new = moved
    steps = []
    find_missing(project, new, progress=lambda i, n, text: steps.append((i, n)))
    assert steps == [(1, 1)], "one candidate with a note to hash"


def test_without_a_note_the_annotations_size_must_fit(tmp_path):
    """A project older than the file note: a file of the same name but another pixel size (a label
    mask of that name, a thumbnail) is not taken for an annotated image; one that fits is."""
    image = picture(tmp_path / "old" / "a.png", (1, 2, 3))
    project = Project.create(tmp_path / "P", [image], CLASSES)
    project.save_annotation(project.image_for(image), np.ones((8, 16), np.uint8))  # no note_image_file
    shutil.rmtree(tmp_path / "old")
    Image.new("L", (32, 32)).save(picture(tmp_path / "new" / "labels" / "a.png", (0, 0, 0)))
    plan = find_missing(project, tmp_path / "new")
    assert not plan.found and [key for key, _, _ in plan.rejected] == ["a"]
    picture(tmp_path / "new" / "images" / "a.png", (5, 5, 5))  # the same size: taken, by name and size
    plan = find_missing(project, tmp_path / "new")
    assert [(m.new, m.how) for m in plan.found] == [(tmp_path / "new" / "images" / "a.png", "name and size")]


def test_a_file_another_writer_added_meanwhile_is_not_given_to_a_second_entry(moved, tmp_path):
    project, _, new = moved
    plan = find_missing(project, new)
    (tmp_path / "via").symlink_to(new, target_is_directory=True)
    Project.open(project.root).add_images([tmp_path / "via" / "c.png"])  # c.png's file, another spelling
    result = relink(project, plan)
    assert [(m.key, why.endswith("is an image of the project already")) for m, why in result.skipped] == [("c", True)]
    assert sorted(m.key for m in result.relinked) == ["a", "b"]


def test_a_class_edit_elsewhere_meanwhile_refuses_the_relink_and_writes_nothing(moved):
    from qgn.classes_edit import rename_class
    from qgn.project import ProjectChangedError
    from qgn.project_class_edit import apply_class_edit

    project, labels, new = moved
    plan = find_missing(project, new)
    other = Project.open(project.root)
    apply_class_edit(other, rename_class(other.classes, 2, "vehicle"))
    before = (project.root / "project.json").read_bytes()
    with pytest.raises(ProjectChangedError):
        relink(project, plan)
    assert (project.root / "project.json").read_bytes() == before
    again = Project.open(project.root)  # reloaded, as the app does: the plan made anew relinks
    assert len(relink(again, find_missing(again, new)).relinked) == 3
    assert np.array_equal(again.load_annotation(again.images[0]), labels["a"])


def test_a_folder_named_through_a_link_and_dot_dot_is_the_one_the_system_reaches(moved, tmp_path, monkeypatch, run_cli):
    """`qgn relink P link/../new`, link -> real/a, the images moved to real/new: the search walked
    real/new, but the found path was straightened on its text (./new/a.png, no such file) and
    project.json pointed there, "relinked", exit 0. Each image is pointed at the file found."""
    project, labels, new = moved
    (tmp_path / "real" / "a").mkdir(parents=True)
    new.rename(tmp_path / "real" / "new")
    (tmp_path / "link").symlink_to(tmp_path / "real" / "a")
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("relink", project.root, "link/../new")
    assert code == 0, out + err
    reopened = Project.open(project.root)
    real = tmp_path / "real" / "new"
    assert [im.path for im in reopened.images] == [real / "a.png", real / "sub" / "b.png", real / "c.png"]
    assert np.array_equal(reopened.load_annotation(reopened.image_for(real / "a.png")), labels["a"])


def test_repoint_and_image_for_take_dot_dot_after_a_link_as_the_system_does(moved, tmp_path):
    """Project.repoint(image, link/../new/a.png) stored ./new/a.png (here another copy; in `qgn relink`,
    no file); image_for of that spelling found the image whose file is ./new/a.png, not the file the
    system opens (real/new/a.png)."""
    project, _labels, new = moved
    (tmp_path / "real" / "a").mkdir(parents=True)
    shutil.copytree(new, tmp_path / "real" / "new")  # new/ stays: another image's files
    (tmp_path / "link").symlink_to(tmp_path / "real" / "a")
    through = tmp_path / "link" / ".." / "new"
    a, b, c = project.images
    with project.writing():
        project.repoint([(a, through / "a.png"), (b, new / "sub" / "b.png"), (c, new / "c.png")])
    assert a.path == tmp_path / "real" / "new" / "a.png" and a.path.is_file()
    assert Project.open(project.root).images[0].path == tmp_path / "real" / "new" / "a.png"
    with project.writing():  # the other way round: c is real/new/c.png, a is new/a.png
        project.repoint([(a, new / "a.png"), (c, through / "c.png")])
    assert project.image_for(through / "c.png") is c
    assert project.image_for(new / "a.png") is a
    with pytest.raises(KeyError):  # real/new/a.png: no image's file
        project.image_for(through / "a.png")
