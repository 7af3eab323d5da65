"""Adding back an image that was removed from a project brings its annotation back from removed/."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from qgn.classes import ClassSet
from qgn.classes_edit import rename_class
from qgn.project import Project
from qgn.project_class_edit import apply_class_edit

CLASSES = ClassSet(("sky", "road", "car"), ((70, 130, 180), (128, 64, 128), (0, 0, 142)), 255)


def labelled(tmp_path, name="street.png", colour=(1, 2, 3)):
    image = tmp_path / "images" / name
    image.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 8), colour).save(image)
    project = Project.create(tmp_path / "P", [image], CLASSES)
    label = np.zeros((8, 16), np.uint8)
    label[:, 8:] = 2
    entry = project.image_for(image)
    project.save_annotation(entry, label)
    project.note_image_file(entry)
    return project, image, label


def removed_files(project):
    return sorted(p.name for p in (project.root / "removed").glob("*.qgt"))


def test_readding_the_same_image_brings_its_annotation_back(tmp_path):
    project, image, label = labelled(tmp_path)
    saved = project.annotation_path(project.image_for(image)).read_bytes()
    (kept,) = project.remove_image(project.image_for(image))
    again = Project.open(project.root)  # another writer (the CLI) adds it back
    found = []
    (entry,) = again.add_images([image], removed=found)
    assert [(f.brought_back, f.path) for f in found] == [(True, again.annotation_path(entry))]
    assert again.annotation_path(entry).read_bytes() == saved, "the very bytes the user saved"
    assert not kept.exists() and removed_files(again) == [], "moved back, not copied"
    assert np.array_equal(Project.open(project.root).load_annotation(entry), label)
    assert entry.file is not None and json.loads((project.root / "project.json").read_text())["images"][0]["file"]


def test_another_image_of_the_same_name_gets_nothing(tmp_path):
    project, image, _ = labelled(tmp_path)
    project.remove_image(project.image_for(image))
    other = tmp_path / "elsewhere" / image.name
    other.parent.mkdir()
    Image.new("RGB", (16, 8), (200, 0, 0)).save(other)
    entry = project.add_images([other])[0]
    assert entry.key == "street" and project.load_annotation(entry) is None, "same key, other file"
    project.remove_image(entry)
    Image.new("RGB", (16, 8), (9, 9, 9)).save(image)  # same path, other bytes than when it was removed
    found = []
    entry = project.add_images([image], removed=found)[0]
    assert project.load_annotation(entry) is None
    assert [f.brought_back for f in found] == [False] and "content" in found[0].why
    assert len(removed_files(project)) == 1, "kept in removed/"


def test_an_annotation_of_older_classes_is_reported_not_brought_back(tmp_path):
    project, image, _ = labelled(tmp_path)
    keep = tmp_path / "images" / "keep.png"
    Image.new("RGB", (16, 8)).save(keep)
    project.add_images([keep])
    project.save_annotation(project.image_for(keep), np.ones((8, 16), np.uint8))
    project.remove_image(project.image_for(image))
    apply_class_edit(project, rename_class(project.classes, 2, "vehicle"))
    found = []
    entry = Project.open(project.root).add_images([image], removed=found)[0]
    assert Project.open(project.root).load_annotation(entry) is None
    assert [f.brought_back for f in found] == [False] and "class" in found[0].why
    assert len(removed_files(project)) == 1


def test_an_existing_annotation_is_never_replaced(tmp_path):
    project, image, _ = labelled(tmp_path)
    project.remove_image(project.image_for(image))
    # a stray file where the new image's annotation goes (another tool put it there)
    stray = project.root / "annotations" / "street.qgt"
    stray.write_bytes(b"not ours")
    found = []
    (entry,) = project.add_images([image], removed=found)
    # the stray's name is no new image's key: the image gets another, and its own annotation back
    assert stray.read_bytes() == b"not ours" and entry.key != "street" and [f.brought_back for f in found] == [True]
    assert project.annotation_path(entry).is_file() and not removed_files(project)


def test_a_record_nested_too_deep_to_read_is_skipped_and_images_still_add(tmp_path):
    # a 10 KB removed/….qgt.json of nested brackets raised RecursionError out of add_images: no
    # image could be added to the project (the app, qgn import) until someone found that file
    project, image, _ = labelled(tmp_path)
    (kept,) = project.remove_image(project.image_for(image))
    record = kept.with_name(kept.name + ".json")
    record.write_text("[" * 5000 + "]" * 5000)
    again = Project.open(project.root)
    found = []
    (entry,) = again.add_images([image], removed=found)
    assert found == [] and again.load_annotation(entry) is None
    assert kept.is_file() and record.read_text().startswith("[[["), "the kept annotation and its record stay"


class Killed(BaseException):
    """A writer killed at this point (nothing after it runs)."""


def test_an_add_killed_after_listing_the_image_brings_its_annotation_back_at_the_next_write(tmp_path, monkeypatch):
    # a writer killed between writing project.json (the image listed again) and moving its annotation
    # and autosave back from removed/ left the image listed with neither: shown unannotated, for good
    project, image, label = labelled(tmp_path)
    entry = project.image_for(image)
    edits = np.full((8, 16), 1, np.uint8)
    project.autosave(entry, edits)
    saved = project.annotation_path(entry).read_bytes()
    autosaved = project.autosave_path(entry).read_bytes()
    project.remove_image(entry)

    add_killed_at("after_commit", project, image, monkeypatch)  # killed after listing the image
    reopened = Project.open(project.root)  # opening alone moves nothing
    assert [im.path for im in reopened.images] == [image]
    assert not reopened.annotation_path(reopened.images[0]).exists()
    reopened.set_done_many([])  # the next writer finishes the add
    again = Project.open(project.root)
    entry = again.image_for(image)
    assert again.annotation_path(entry).read_bytes() == saved
    assert again.autosave_path(entry).read_bytes() == autosaved
    assert removed_files(again) == []
    assert not list(again.root.glob(".bring-back*"))


def test_an_add_killed_before_listing_the_image_leaves_removed_as_it_was(tmp_path, monkeypatch):
    project, image, label = labelled(tmp_path)
    project.remove_image(project.image_for(image))
    kept = removed_files(project)

    def killed(self, class_edit=False, **_how):  # (change, advice: what a refusal says)
        raise Killed

    adder = Project.open(project.root)
    monkeypatch.setattr(Project, "_commit", killed)
    try:
        adder.add_images([image])
    except Killed:
        pass
    monkeypatch.undo()
    writer = Project.open(project.root)
    writer.set_done_many([])
    assert Project.open(project.root).images == [] and removed_files(writer) == kept
    (entry,) = writer.add_images([image])  # added later: brought back then
    np.testing.assert_array_equal(writer.load_annotation(entry), label)


def test_a_folder_where_the_add_note_belongs_does_not_undo_adds(tmp_path):
    # a folder named .bring-back.json (a sync tool's, a script's) made every add undone, brand-new
    # images too, as long as removed/ held a record: the note could not be written in its place
    project, image, label = labelled(tmp_path)
    project.remove_image(project.image_for(image))
    (project.root / ".bring-back.json").mkdir()
    new = tmp_path / "images" / "new.png"
    Image.new("RGB", (16, 8), (9, 9, 9)).save(new)
    again = Project.open(project.root)
    entry, added = again.add_images([image, new])
    assert [im.path for im in Project.open(project.root).images] == [image, new]
    np.testing.assert_array_equal(Project.open(project.root).load_annotation(entry), label)
    assert (project.root / ".bring-back.json").is_dir(), "left as it was"
    (said,) = again.blocked_folders()  # said when the project opens
    assert said.startswith(f"{project.root / '.bring-back.json'} is not a file")


def test_an_add_finished_late_brings_no_old_autosave_beside_a_newer_saved_annotation(tmp_path, monkeypatch):
    # an add killed after project.json listed the image; a window open already saves new work for it;
    # the next writer's clean-up brought the autosave removed with the OLD annotation back beside the
    # newer one (offered over it). The old annotation stays in removed/ (the image has one): so does
    # its autosave.
    project, image, label = labelled(tmp_path)
    entry = project.image_for(image)
    project.autosave(entry, np.full((8, 16), 1, np.uint8))  # unsaved edits of the old annotation
    project.remove_image(entry)
    kept = removed_files(project)
    window = Project.open(project.root)
    window.set_done_many([])  # open and cleaned up before the add

    add_killed_at("after_commit", project, image, monkeypatch)  # killed after listing the image
    window.refresh()
    newer = np.full((8, 16), 0, np.uint8)
    # a writer that finishes no note (the code before a writer open since before the kill finished it,
    # or one whose clean-up failed) saves new work for the image
    monkeypatch.setattr(window, "_finish_bring_back", lambda: None)
    window.save_annotation(window.image_for(image), newer, over=None)
    monkeypatch.undo()
    Project.open(project.root).set_done_many([])  # the next writer's clean-up finishes the add
    again = Project.open(project.root)
    entry = again.image_for(image)
    np.testing.assert_array_equal(again.load_annotation(entry), newer)
    assert again.recoverable() == [] and not again.autosave_path(entry).exists()
    assert removed_files(again) == kept, "the old annotation and its autosave stay in removed/"
    # and it is said when the project opens (the add that was to say it was killed)
    (said,) = again.kept_by_late_adds()
    assert said.startswith(f"{image} was added back by an add cut short and finished later, which kept its older "
                           f"annotation and autosave in {project.root / 'removed'} ({', '.join(kept)}): the image "
                           "has a saved annotation already"), said
    for name in kept:
        (project.root / "removed" / name).rename(tmp_path / name)  # moved away: no more said
    assert Project.open(project.root).kept_by_late_adds() == []


def test_nothing_is_said_of_removed_files_without_a_late_add(tmp_path):
    project, image, label = labelled(tmp_path)
    project.remove_image(project.image_for(image))
    project.add_images([image])  # brought back: nothing kept
    assert Project.open(project.root).kept_by_late_adds() == []
    project.remove_image(project.image_for(image))
    apply_class_edit(project, rename_class(project.classes, 2, "vehicle"))
    found = []
    project.add_images([image], removed=found)  # kept (classes changed), said by the add itself
    assert [r.brought_back for r in found] == [False]
    assert Project.open(project.root).kept_by_late_adds() == []


KILL_POINTS = ["after_note", "after_commit", "in_autosave_move", "after_ann_move", "before_unlink",
               "in_clean_up_bring_back"]


def killed_at(point, monkeypatch):
    """Make the next add die (``Killed``: nothing after it runs) at ``point`` of its bring-back."""
    import qgn.project_bring_back as module

    def die(*args, **kwargs):
        raise Killed

    def then_die(original):
        return lambda *args, **kwargs: (original(*args, **kwargs), die())

    if point == "after_note":
        monkeypatch.setattr(Project, "_note_bring_back", then_die(Project._note_bring_back))
    elif point in ("after_commit", "in_clean_up_bring_back"):
        monkeypatch.setattr(Project, "bring_back", die)
    elif point == "in_autosave_move":
        make = module.make_folder
        monkeypatch.setattr(module, "make_folder", lambda f: die() if f.name == ".autosave" else make(f))
    elif point == "after_ann_move":  # the annotation moved back, its record not yet unlinked
        unlink = module.unlink_quietly
        monkeypatch.setattr(module, "unlink_quietly", lambda p: die() if p.suffix == ".json" else unlink(p))
    elif point == "before_unlink":
        monkeypatch.setattr(Project, "bring_back", then_die(Project.bring_back))


def removed_with_autosave(tmp_path):
    project, image, label = labelled(tmp_path)
    entry = project.image_for(image)
    project.autosave(entry, np.full((8, 16), 1, np.uint8))  # unsaved edits of the saved annotation
    saved, autosaved = project.annotation_path(entry).read_bytes(), project.autosave_path(entry).read_bytes()
    project.remove_image(entry)
    return project, image, saved, autosaved


def add_killed_at(point, project, image, monkeypatch):
    killed_at(point, monkeypatch)
    try:
        Project.open(project.root).add_images([image])
    except Killed:
        pass
    monkeypatch.undo()
    if point == "in_clean_up_bring_back":  # the next writer killed in turn, inside its clean-up's bring-back
        import qgn.project_bring_back as module

        def die(path):
            raise Killed

        monkeypatch.setattr(module, "unlink_quietly", die)
        try:
            Project.open(project.root).set_done_many([])
        except Killed:
            pass
        monkeypatch.undo()


@pytest.mark.parametrize("point", KILL_POINTS)
def test_an_add_killed_anywhere_brings_back_the_annotation_and_its_autosave(tmp_path, monkeypatch, point):
    # killed after moving the annotation back but before the autosave (in_autosave_move, after_ann_move,
    # in_clean_up_bring_back), the next writer saw a saved annotation and kept the autosave (the user's
    # unsaved edits) in removed/ for good, never offered: it took the annotation for one saved since
    project, image, saved, autosaved = removed_with_autosave(tmp_path)
    add_killed_at(point, project, image, monkeypatch)
    Project.open(project.root).set_done_many([])  # the next writer's clean-up finishes the add
    listed = [im.path for im in Project.open(project.root).images]
    assert listed == ([] if point == "after_note" else [image])  # killed before project.json listed it: not added
    again = Project.open(project.root)
    (entry,) = again.add_images([image])  # (already listed: nothing to do)
    assert again.annotation_path(entry).read_bytes() == saved
    assert again.autosave_path(entry).read_bytes() == autosaved
    assert again.recoverable() == [entry]
    assert removed_files(again) == [] and list((again.root / "removed").iterdir()) == []
    assert not list(again.root.glob(".bring-back*"))


@pytest.mark.parametrize("point", ["in_autosave_move", "after_ann_move"])
def test_an_add_killed_after_its_annotation_came_back_brings_no_autosave_beside_one_saved_since(
        tmp_path, monkeypatch, point):
    # the annotation the killed add moved back was saved over by a window since: the autosave of the
    # old one stays in removed/ (it would be offered over the newer work)
    project, image, saved, autosaved = removed_with_autosave(tmp_path)
    window = Project.open(project.root)
    window.set_done_many([])  # open and cleaned up before the add
    add_killed_at(point, project, image, monkeypatch)
    window.refresh()
    newer = np.full((8, 16), 0, np.uint8)
    monkeypatch.setattr(window, "_finish_bring_back", lambda: None)  # a writer that finishes no note
    window.save_annotation(window.image_for(image), newer, over=None)
    monkeypatch.undo()
    Project.open(project.root).set_done_many([])
    again = Project.open(project.root)
    entry = again.image_for(image)
    np.testing.assert_array_equal(again.load_annotation(entry), newer)
    assert again.recoverable() == [] and not again.autosave_path(entry).exists()
    (kept,) = removed_files(again)
    assert ".autosave." in kept and (again.root / "removed" / kept).read_bytes() == autosaved


def late_kept_note(project, items):
    (project.root / "removed").mkdir(exist_ok=True)
    (project.root / "removed" / "kept-by-unfinished-adds.json").write_text(json.dumps({"kept": items}))


def test_a_nul_byte_in_the_note_of_late_kept_files_is_left_out(tmp_path):
    # the note is advisory (anyone may write it): a NUL byte in an image's path raised ValueError
    # ('embedded null byte', from realpath) out of kept_by_late_adds, and the app could not open the project
    project, image, label = labelled(tmp_path)
    (project.root / "removed").mkdir()
    (project.root / "removed" / "street.autosave.1.qgt").write_bytes(b"x")
    good = {"image": str(image), "files": ["street.autosave.1.qgt"], "why": "w", "when": 1}
    late_kept_note(project, [dict(good, image=f"{tmp_path}/a\0b/street.png"), dict(good, files=["a\0.qgt"]), good])
    (said,) = Project.open(project.root).kept_by_late_adds()
    assert said.startswith(f"{image} was added back by an add cut short"), said
    assert Project.open(project.root)._find(tmp_path / "a\0b") is None
    assert Project.open(project.root)._find(tmp_path / ("x" * 5000) / "street.png") is None


def test_what_is_said_of_late_kept_files_is_bounded(tmp_path):
    # 7,000 copies of one entry (under the file's 1 MiB cap) were said 7,000 times (2.4 M characters
    # in the app's banner, minutes to lay out on the UI thread), and a 1 MiB reason said whole
    folder = tmp_path / "images"
    folder.mkdir()
    images = []
    for i in range(8):
        images.append(folder / f"i{i}.png")
        Image.new("RGB", (16, 8), (i, 2, 3)).save(images[-1])
    project = Project.create(tmp_path / "P", images, CLASSES)
    (project.root / "removed").mkdir()
    long_name = "n" * 200 + ".autosave.1.qgt"
    for i in range(8):
        (project.root / "removed" / f"i{i}.autosave.1.qgt").write_bytes(b"x")
    (project.root / "removed" / long_name).write_bytes(b"x")
    items = [{"image": str(images[0]), "files": ["i0.autosave.1.qgt", "i0.autosave.1.qgt"], "why": "w"}] * 4000
    items += [{"image": str(images[0]), "files": ["i0.autosave.1.qgt"], "why": "w"}]  # the same said once
    items += [{"image": str(im), "files": [f"i{i}.autosave.1.qgt"], "why": "w"} for i, im in enumerate(images)]
    items[-1] = dict(items[-1], files=[long_name], why="y" * 300_000)
    late_kept_note(project, items)
    said = Project.open(project.root).kept_by_late_adds()
    assert len(said) == 6, said
    assert [s.split(" was added back")[0] for s in said[:5]] == [str(im) for im in images[:5]]
    assert said[5] == (f"and 3 more images whose older files an add cut short and finished later kept in "
                       f"{project.root / 'removed'} (listed in kept-by-unfinished-adds.json there)")
    assert all(len(s) < 1000 for s in said)
    items.insert(0, items.pop())  # the long reason and name are cut when said
    late_kept_note(project, items)
    first = Project.open(project.root).kept_by_late_adds()[0]
    assert f"({'n' * 119}…): {'y' * 299}… (nothing was changed" in first, first


def test_a_clean_up_killed_after_noting_what_it_kept_says_it_once_and_leaves_no_stray_record(
        tmp_path, monkeypatch):
    # the next writer's clean-up killed after writing kept-by-unfinished-adds.json but before removing
    # the add's note: the writer after it noted the same files again, said twice when the project opened.
    # And the record of the annotation the killed add moved back stayed in removed/, naming nothing
    project, image, saved, autosaved = removed_with_autosave(tmp_path)
    window = Project.open(project.root)
    window.set_done_many([])
    add_killed_at("after_ann_move", project, image, monkeypatch)
    window.refresh()
    monkeypatch.setattr(window, "_finish_bring_back", lambda: None)  # a writer that finishes no note
    window.save_annotation(window.image_for(image), np.full((8, 16), 0, np.uint8), over=None)
    monkeypatch.undo()
    import qgn.project_bring_back as module

    note_kept = module.note_kept

    def then_killed(writer, images, report):
        note_kept(writer, images, report)
        raise Killed

    monkeypatch.setattr(module, "note_kept", then_killed)
    try:
        Project.open(project.root).set_done_many([])
    except Killed:
        pass
    monkeypatch.undo()
    Project.open(project.root).set_done_many([])
    Project.open(project.root).set_done_many([])
    assert len(Project.open(project.root).kept_by_late_adds()) == 1
    removed = sorted(p.name for p in (project.root / "removed").iterdir())
    (kept,) = removed_files(Project.open(project.root))
    assert removed == sorted([kept, kept + ".json", "kept-by-unfinished-adds.json"]), removed


def test_an_unfinished_adds_note_far_longer_than_any_add_writes_is_not_read(tmp_path, monkeypatch):
    # read up to 256 MiB, whatever the project: a corrupt note cost every writer's clean-up GBs.
    # A note finishes only images project.json lists: one far longer than project.json is not an add's
    import qgn.project as module

    project, image, saved, autosaved = removed_with_autosave(tmp_path)
    add_killed_at("after_commit", project, image, monkeypatch)  # listed, nothing brought back yet
    note = project.root / ".bring-back.json"
    note.write_text(note.read_text() + " " * (1 << 20))  # the same note, made 1 MiB longer
    assert module.BRING_BACK_PER_IMAGE + module.BRING_BACK_SLACK < (1 << 20)
    Project.open(project.root).set_done_many([])
    again = Project.open(project.root)
    assert not again.annotation_path(again.image_for(image)).exists(), "left in removed/, where an add finds it"
    assert len(removed_files(again)) == 2 and not note.exists()


def test_an_add_killed_with_the_longest_names_is_still_finished(tmp_path, monkeypatch):
    # the bound on the note (above) must not refuse a real one: names escaped six times over in JSON
    project, image, saved, autosaved = removed_with_autosave(tmp_path)
    odd = tmp_path / "images" / ("\x01" * 240 + ".png")
    image.rename(odd)
    other = Project.create(tmp_path / "Q", [odd], CLASSES)
    entry = other.image_for(odd)
    other.save_annotation(entry, np.full((8, 16), 2, np.uint8))
    other.autosave(entry, np.full((8, 16), 1, np.uint8))
    saved, autosaved = other.annotation_path(entry).read_bytes(), other.autosave_path(entry).read_bytes()
    other.remove_image(entry)
    add_killed_at("after_commit", other, odd, monkeypatch)
    assert (other.root / ".bring-back.json").stat().st_size > 1500
    Project.open(other.root).set_done_many([])
    again = Project.open(other.root)
    entry = again.image_for(odd)
    assert again.annotation_path(entry).read_bytes() == saved
    assert again.autosave_path(entry).read_bytes() == autosaved


def test_an_annotation_written_in_place_since_with_the_old_times_is_not_taken_for_the_one_moved_back(
        tmp_path, monkeypatch):
    # the add's note named the annotation it moved back by (device, inode, size, modified time) only: a
    # file written since with those four (in place, or a freed inode and a coarse clock) was taken for
    # it, and the OLD autosave was brought back beside the newer annotation (offered over it)
    import os

    project, image, saved, autosaved = removed_with_autosave(tmp_path)
    add_killed_at("after_ann_move", project, image, monkeypatch)
    listed = Project.open(project.root)
    path = listed.annotation_path(listed.image_for(image))
    before = path.stat()
    with open(path, "r+b") as f:  # another program writes it in place: same inode, same size
        f.write(bytes(255 - b for b in saved))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # a clock too coarse to tell them apart
    Project.open(project.root).set_done_many([])
    again = Project.open(project.root)
    assert not again.autosave_path(again.image_for(image)).exists()
    (kept,) = removed_files(again)
    assert (again.root / "removed" / kept).read_bytes() == autosaved


def test_an_add_killed_in_a_project_deep_in_oddly_named_folders_is_still_finished(tmp_path, monkeypatch):
    # project.json holds the images inside the project relative to it, the add's note their whole
    # path: the bound on the note must count the project's own path (escaped) for each image
    root = tmp_path
    for level in range(8):
        root = root / ("\x01" * 200 + str(level))
    first = tmp_path / "first.png"
    Image.new("RGB", (16, 8), (9, 2, 3)).save(first)
    project = Project.create(root / "Q", [first], CLASSES)
    folder = project.root / "images"
    folder.mkdir()
    inside = []
    for i in range(12):
        inside.append(folder / f"i{i}.png")
        Image.new("RGB", (16, 8), (i, 2, 3)).save(inside[-1])
    project.add_images(inside)  # images inside the project: relative in project.json
    for image in inside:
        entry = project.image_for(image)
        project.save_annotation(entry, np.full((8, 16), 2, np.uint8))
    saved = [project.annotation_path(project.image_for(im)).read_bytes() for im in inside]
    for image in inside:
        project.remove_image(project.image_for(image))
    killed_at("after_commit", monkeypatch)
    try:
        Project.open(project.root).add_images(inside)
    except Killed:
        pass
    monkeypatch.undo()
    note = project.root / ".bring-back.json"
    doc = json.loads(note.read_text())  # spelled as project.json spells them (relative): as an older version
    assert [entry["path"] for entry in doc["images"]] == [f"images/i{i}.png" for i in range(12)]  # wrote it, whole
    for entry in doc["images"]:
        entry["path"] = str(project.root / entry["path"])
    note.write_text(json.dumps(doc))
    assert note.stat().st_size > 50 * (project.root / "project.json").stat().st_size  # (~80×: entries note "added")
    Project.open(project.root).set_done_many([])
    again = Project.open(project.root)
    assert [again.annotation_path(again.image_for(im)).read_bytes() for im in inside] == saved


def removed_inside_with_autosave(tmp_path):
    """A project reached through a linked folder too (``link`` → ``real``), whose image ``imgs/a.png``
    inside it was removed with its saved annotation and an autosave: (project, image, saved, autosaved)."""
    import os

    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    first = tmp_path / "first.png"
    Image.new("RGB", (16, 8), (9, 2, 3)).save(first)
    project = Project.create(tmp_path / "real" / "P", [first], CLASSES)
    (project.root / "imgs").mkdir()
    image = project.root / "imgs" / "a.png"
    Image.new("RGB", (16, 8), (5, 5, 5)).save(image)
    (entry,) = project.add_images([image])
    project.save_annotation(entry, np.full((8, 16), 2, np.uint8))
    project.autosave(entry, np.full((8, 16), 1, np.uint8))
    saved, autosaved = project.annotation_path(entry).read_bytes(), project.autosave_path(entry).read_bytes()
    project.remove_image(entry)
    return project, image, saved, autosaved


@pytest.mark.parametrize("spelling", ["linked folder", "./ through the link", "./ inside", "linked file",
                                      "older note", "older note, linked file"])
def test_an_add_killed_with_the_image_spelled_otherwise_than_project_json_is_still_finished(
        tmp_path, monkeypatch, spelling):
    # the note named the image as the add was given it (through a link to the project's folder), project.json
    # relative to the project (``imgs/a.png``): the next writer's clean-up matched no listed image to it, and
    # the annotation and autosave stayed in removed/ for good - a re-add does nothing (the image is listed)
    import os

    project, image, saved, autosaved = removed_inside_with_autosave(tmp_path)
    if spelling in ("linked folder", "older note"):
        typed = tmp_path / "link" / "P" / "imgs" / "a.png"
    elif spelling == "./ through the link":
        monkeypatch.chdir(tmp_path)
        typed = "./link/P/imgs/a.png"
    elif spelling == "./ inside":
        monkeypatch.chdir(project.root / "imgs")
        typed = "./a.png"
    else:  # a link to the image file, outside the project (project.json holds the file it names)
        typed = tmp_path / "a-link.png"
        os.symlink(image, typed)
    killed_at("after_commit", monkeypatch)
    try:
        Project.open(project.root).add_images([typed])
    except Killed:
        pass
    monkeypatch.undo()
    note = project.root / ".bring-back.json"
    if spelling.startswith("older note"):  # a note of the version before: the path as the add was given it
        doc = json.loads(note.read_text())
        doc["images"][0]["path"] = str(typed)
        note.write_text(json.dumps(doc))
    assert note.exists()
    assert json.loads((project.root / "project.json").read_text())["images"][-1]["path"] == "imgs/a.png"
    Project.open(project.root).set_done_many([])  # the next writer's clean-up finishes the add
    again = Project.open(project.root)
    entry = again.image_for(image)
    assert again.annotation_path(entry).read_bytes() == saved
    assert again.autosave_path(entry).read_bytes() == autosaved
    assert again.recoverable() == [entry]
    assert removed_files(again) == [] and list((again.root / "removed").iterdir()) == []
    assert not list(again.root.glob(".bring-back*"))


def test_an_add_another_process_left_unfinished_is_finished_by_a_writer_open_since_before(tmp_path, monkeypatch):
    # a window open all along cleans up once; another process's add killed after that left its note,
    # and the window's own add then replaced that note with its own and removed it: the other image
    # stayed listed without its annotation for good (found by a read-only review of readd2)
    project, image, label = labelled(tmp_path)
    entry = project.image_for(image)
    saved = project.annotation_path(entry).read_bytes()
    project.remove_image(entry)
    window = Project.open(project.root)
    window.set_done_many([])  # it wrote once: cleaned up
    add_killed_at("after_commit", project, image, monkeypatch)  # another process's add, killed
    other = tmp_path / "images" / "other.png"
    Image.new("RGB", (16, 8), (9, 9, 9)).save(other)
    window.add_images([other])  # the window's own add
    again = Project.open(project.root)
    assert again.annotation_path(again.image_for(image)).read_bytes() == saved
    assert removed_files(again) == []
    assert not list(again.root.glob(".bring-back*"))
