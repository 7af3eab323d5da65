"""What a project folder may hold and what its exports write: keys that try to leave the folder or
collide ignoring case, fields of the wrong type, exports that stay inside ``--out``, count what they
wrote, go on after a bad annotation and clear the temporaries of killed writers."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qgn.classes import ClassSet
from qgn.fileio import OutsideRootError, path_inside
from qgn.project import PROJECT_FILE, Project, ProjectError
from qgn.project_export import export_project
from sample_files import write_mask

CLASSES = ClassSet(("sky", "road", "car"), ((70, 130, 180), (128, 64, 128), (0, 0, 142)), 255)
LABEL = np.array([[0, 1, 2, 1], [255, 255, 1, 0]])


def make_project(tmp_path: Path, names=("a.png", "b.png")) -> Project:
    images = []
    for name in names:
        path = tmp_path / "imgs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 2)).save(path)
        images.append(path)
    project = Project.create(tmp_path / "p", images, CLASSES)
    project.save_annotation(project.images[0], LABEL)
    return project


def edit_keys(project: Project, *keys) -> None:
    path = project.root / PROJECT_FILE
    doc = json.loads(path.read_text())
    for entry, key in zip(doc["images"], keys):
        entry["key"] = key
    path.write_text(json.dumps(doc))


def all_files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("key", ["../../../../elsewhere/planted", "/tmp/absolute", "", ".", "..", "a\nb",
                                 "sub/a", ".hidden", "a b", 7])
def test_hostile_key_refuses_the_project(tmp_path, key):
    project = make_project(tmp_path)
    edit_keys(project, "a", key)
    with pytest.raises(ProjectError, match="key"):
        Project.open(project.root)


def test_keys_unique_ignoring_case(tmp_path):
    project = make_project(tmp_path)
    edit_keys(project, "Street", "street")
    with pytest.raises(ProjectError, match="same files"):
        Project.open(project.root)


def test_export_names_are_distinct_on_a_disk_blind_to_case_and_accent_encoding(tmp_path):
    """Exports name files after the images' stems; "café" spelt with one character for "é" and with
    "e" and a combining accent are two files on Linux but one on macOS, where the second image's
    export replaced the first's (as "Street" and "street" would on Windows too)."""
    import unicodedata

    from qgn.project_export import export_names

    names = ("Street.png", "street.png", unicodedata.normalize("NFC", "café.png"),
             unicodedata.normalize("NFD", "café.png"), "other.png")
    project = make_project(tmp_path, names)
    stems = list(export_names(project.images).values())
    assert len({unicodedata.normalize("NFD", stem).casefold() for stem in stems}) == len(names)
    assert stems[-1] == "other"


def test_an_export_name_never_falls_back_to_a_stem_another_image_keeps(tmp_path):
    """Accent twins fell back to their keys, and one key was "cafe", the third image's own stem:
    three images, two files in the export, and no error."""
    import unicodedata

    from qgn.project_export import export_names

    names = (unicodedata.normalize("NFC", "café.png"), unicodedata.normalize("NFD", "café.png"), "cafe.png")
    project = make_project(tmp_path, names)
    for image, value in zip(project.images, (0, 1, 2)):
        project.save_annotation(image, np.full((2, 4), value))
    stems = export_names(project.images).values()
    assert len({unicodedata.normalize("NFC", stem).casefold() for stem in stems}) == 3
    export_project(project, tmp_path / "out", ["cvat"], errors=[])
    written = sorted((tmp_path / "out" / "cvat" / "SegmentationClass").iterdir())
    assert len(written) == 3


def test_an_export_refuses_two_images_under_one_name_before_writing(tmp_path, monkeypatch):
    import qgn.project_export

    project = make_project(tmp_path, ("a.png", "b.png"))
    monkeypatch.setattr(qgn.project_export, "export_names", lambda images: {im.key: "same" for im in images})
    with pytest.raises(ValueError, match="both export as 'same'"):
        qgn.project_export.export_project(project, tmp_path / "out", ["cvat"], errors=[])
    assert not (tmp_path / "out" / "cvat").exists()


def test_done_must_be_a_boolean(tmp_path):
    project = make_project(tmp_path)
    doc = json.loads((project.root / PROJECT_FILE).read_text())
    doc["images"][0]["done"] = "no"
    (project.root / PROJECT_FILE).write_text(json.dumps(doc))
    with pytest.raises(ProjectError, match="true or false"):
        Project.open(project.root)



@pytest.mark.parametrize("field, value", [
    ("ignore_color", [1]), ("ignore_color", [300, 0, 0]), ("ignore_color", "x"), ("ignore_color", [1.5, "a", 0]),
    ("ignore_index", -1), ("ignore_index", 1 << 31), ("ignore_index", 300.5), ("ignore_index", "255"),
])
def test_a_class_set_no_annotation_could_be_saved_with_refuses_the_project(tmp_path, field, value):
    # an ignore colour of one value opened, and the next save wrote a .qgt whose class block no
    # reader accepts over the good one; a float or out-of-range ignore value opened a project
    # whose maps could not be read or started
    project = make_project(tmp_path)
    saved = project.annotation_path(project.images[0])
    before = saved.read_bytes()
    doc = json.loads((project.root / PROJECT_FILE).read_text())
    doc["classes"][field] = value
    (project.root / PROJECT_FILE).write_text(json.dumps(doc))
    with pytest.raises(ProjectError, match=f"{PROJECT_FILE}.*classes"):
        Project.open(project.root)
    assert saved.read_bytes() == before


@pytest.mark.parametrize("component", [1.5, "7", True, None, 256, -1, [1]])
@pytest.mark.parametrize("field", ["palette", "ignore_color"])
def test_a_colour_component_that_is_not_a_whole_number_in_0_255_is_named(tmp_path, component, field):
    """The rule of the Cityscapes classes.json fix, where a project's classes are read: 1.5, "7"
    and true were taken as 1, 7 and 1 (the next save wrote the rounded colour back) and null gave
    "int() argument must be ..." (the review of the eighth hostile-inputs round). The error names
    the file and the class."""
    project = make_project(tmp_path)
    doc = json.loads((project.root / PROJECT_FILE).read_text())
    colour = doc["classes"]["palette"][1] if field == "palette" else doc["classes"]["ignore_color"]
    colour[1] = component
    (project.root / PROJECT_FILE).write_text(json.dumps(doc))
    before = (project.root / PROJECT_FILE).read_bytes()
    with pytest.raises(ProjectError) as raised:
        Project.open(project.root)
    said = str(raised.value)
    assert str(project.root / PROJECT_FILE) in said and "whole numbers in 0..255" in said, said
    assert json.dumps(component) in said and "int()" not in said, said
    if field == "palette":
        assert f"class 1 ({json.dumps(project.classes.names[1])})" in said, said
    assert (project.root / PROJECT_FILE).read_bytes() == before


def test_traversal_key_cannot_write_outside_out(tmp_path, capsys, run_cli):
    project = make_project(tmp_path)
    edit_keys(project, "../../../../elsewhere/planted")
    before = all_files(tmp_path)
    code, _, err = run_cli("export", "--project", project.root, "--out", tmp_path / "out")
    assert code == 2 and "key" in err and "Traceback" not in err
    assert all_files(tmp_path) == before


def test_in_memory_keys_cannot_escape_either(tmp_path):
    """Even a key set in code (not read from a file) never makes a writer leave its folder."""
    project = make_project(tmp_path)
    victim = tmp_path / "victim.qgt"
    victim.write_bytes(b"keep me")
    project.images[1].key = str(victim.with_suffix(""))  # an absolute path
    with pytest.raises(OutsideRootError):
        project.save_annotation(project.images[1], LABEL)
    with pytest.raises(OutsideRootError):
        project.discard_autosave(project.images[1])
    project.images[1].key = "../../victim"
    with pytest.raises(OutsideRootError):
        export_project(project, tmp_path / "out" / "x", ["png"])
    assert victim.read_bytes() == b"keep me"


def test_path_inside(tmp_path):
    assert path_inside(tmp_path, "a.png") == tmp_path / "a.png"
    assert path_inside(tmp_path, "sub", "a.png") == tmp_path / "sub" / "a.png"
    for bad in ("../a.png", "/etc/passwd", ".", "sub/../../a"):
        with pytest.raises(OutsideRootError):
            path_inside(tmp_path, bad)
    (tmp_path / "link").symlink_to(tmp_path.parent)
    with pytest.raises(OutsideRootError):
        path_inside(tmp_path, "link", "a.png")


def test_export_counts_files_and_folders_as_on_disk(tmp_path):
    from qgn.project_export import written_summary

    project = make_project(tmp_path, ("a.png", "b.png", "c.png"))
    for image in project.images[1:]:
        project.save_annotation(image, LABEL)
    out = tmp_path / "out"
    paths = export_project(project, out, ["png", "cvat", "levels"])
    on_disk = [p for p in out.rglob("*") if p.is_file()]
    folders = [p for p in out.rglob("*") if p.is_dir()]
    assert sorted(paths) == sorted(on_disk)
    assert written_summary(paths, out) == (len(on_disk), len(folders))


def test_export_project_reports_a_bad_annotation_and_goes_on(tmp_path, capsys, run_cli):
    project = make_project(tmp_path, ("a.png", "b.png", "c.png"))
    project.save_annotation(project.images[2], LABEL)
    project.annotation_path(project.images[1]).write_bytes(b"\x89QGT broken")  # b: a damaged annotation
    code, out, err = run_cli("export", "--project", project.root, "--out", tmp_path / "out",
                             "--formats", "png")
    assert code == 2 and "b: failed" in out and "1 annotation(s) failed" in err and "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "out" / "png").iterdir()) == ["a.png", "c.png", "classes.txt"]


def test_export_project_warns_when_an_annotation_does_not_fit_its_image(tmp_path, capsys, run_cli):
    project = make_project(tmp_path, ("a.png",))  # the image is 4 × 2, LABEL too
    project.save_annotation(project.images[0], np.zeros((3, 5), np.uint8))
    code, out, _ = run_cli("export", "--project", project.root, "--out", tmp_path / "out")
    assert code == 0 and "warning: the annotation is 5×3 but a.png is 4×2" in out


def test_commands_remove_stale_temporaries_where_they_write(tmp_path, capsys, run_cli):
    import os
    import time

    write_mask(tmp_path / "in" / "x.png")
    out = tmp_path / "out"
    out.mkdir()
    stale, fresh = out / ".x.qgt.abc12345.tmp", out / ".y.qgt.def45678.tmp"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"being written")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    assert run_cli("convert", tmp_path / "in", out)[0] == 0
    assert not stale.exists() and fresh.exists()

    project = make_project(tmp_path)
    (tmp_path / "pout" / "png").mkdir(parents=True)
    stale = tmp_path / "pout" / "png" / ".a.png.xyz_1234.tmp"
    stale.write_bytes(b"half")
    os.utime(stale, (old, old))
    export_project(project, tmp_path / "pout", ["png"])
    assert not stale.exists()


def _files_and_bytes(*folders: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for folder in folders for p in folder.rglob("*") if p.is_file() or p.is_symlink()}


@pytest.mark.parametrize("mode", ["link", "copy"])
def test_export_into_the_folder_its_images_came_from_keeps_them(tmp_path, capsys, run_cli, mode):
    """A project imported from a COCO export references the images inside that export; exporting
    it there again (with its images linked or copied) once unlinked each image and linked it to
    itself: every image gone."""
    project = make_project(tmp_path)
    code, _, err = run_cli("export", "--project", project.root, "--out", tmp_path / "d", "--formats", "coco",
                           "--include-images", "copy")
    assert code == 0, err
    copies = tmp_path / "d" / "coco" / "images" / "default"
    again = Project.create(tmp_path / "p2", sorted(copies.iterdir()), CLASSES)
    again.save_annotation(again.images[0], LABEL)
    before = _files_and_bytes(copies)
    code, _, err = run_cli("export", "--project", again.root, "--out", tmp_path / "d", "--formats", "coco",
                           "--include-images", mode)
    assert code == 0, err
    assert _files_and_bytes(copies) == before
    assert all(not p.is_symlink() for p in copies.iterdir())


def test_export_never_writes_over_the_project_images(tmp_path, capsys, run_cli):
    """Label PNGs exported into the folder the images lie in, under the images' names, replaced
    the photos with label maps (exit 0)."""
    project = make_project(tmp_path, names=("a.png", "b.png"))
    images = tmp_path / "imgs"
    photos = tmp_path / "data" / "png"
    photos.parent.mkdir()
    images.rename(photos)
    moved = Project.create(tmp_path / "p2", sorted(photos.iterdir()), CLASSES)
    moved.save_annotation(moved.images[0], LABEL)
    before = _files_and_bytes(photos, moved.root)
    code, _, err = run_cli("export", "--project", moved.root, "--out", tmp_path / "data", "--formats", "png")
    assert code == 2 and "one of the project's images and files" in err and len(err.strip().splitlines()) == 1, err
    assert _files_and_bytes(photos, moved.root) == before
    del project


def test_export_into_the_project_folder_spares_its_files(tmp_path):
    """``--out`` the project's own folder: formats go to its subfolders, and a format folder named
    like one of the project's (qgt/ beside annotations/) never replaces the project's files."""
    project = make_project(tmp_path)
    before = _files_and_bytes(project.root)
    written = export_project(project, project.root, ["qgt", "png", "coco"])
    assert written and all(p.is_relative_to(project.root) for p in written)
    after = _files_and_bytes(project.root)
    assert all(after[p] == data for p, data in before.items())


def test_protected_inputs_refuse_any_name_of_the_file_and_follow_no_link(tmp_path):
    from qgn.fileio import InputOverwriteError, atomic_write_bytes, protected_inputs

    source = tmp_path / "in.png"
    source.write_bytes(b"photo")
    (tmp_path / "hard.png").hardlink_to(source)
    (tmp_path / "soft.png").symlink_to(source)
    with protected_inputs([source], "the inputs"):
        for name in ("in.png", "hard.png"):
            with pytest.raises(InputOverwriteError, match="one of the inputs"):
                atomic_write_bytes(tmp_path / name, b"label")
        atomic_write_bytes(tmp_path / "soft.png", b"label")  # the link is replaced, its target kept
        atomic_write_bytes(tmp_path / "new.png", b"label")
    assert source.read_bytes() == b"photo" and not (tmp_path / "soft.png").is_symlink()
    atomic_write_bytes(source, b"free again")  # outside the block nothing is protected
    assert source.read_bytes() == b"free again"


def test_taking_back_an_item_never_removes_its_image_left_where_it_lies(tmp_path):
    """An item that fails in one format is taken back from the others, removing what they wrote
    for it; a copy that was the image itself (an export into its folder) is not theirs to remove."""
    from qgn.formats import FORMATS, ExportItem
    from qgn.formats.base import add_to_every_writer

    folder = tmp_path / "out" / "coco" / "images" / "default"
    folder.mkdir(parents=True)
    image = folder / "a.png"
    Image.new("RGB", (4, 2), (1, 2, 3)).save(image)
    coco = FORMATS["coco"].open_writer(CLASSES, tmp_path / "out" / "coco", images="copy")

    class Failing:
        def mark(self):
            return None

        def add(self, item):
            raise ValueError("this format cannot hold it")

        def undo(self, mark, item, paths):
            pass

    with pytest.raises(ValueError, match="cannot hold"):
        add_to_every_writer([(coco, ExportItem("a", LABEL, image)), (Failing(), ExportItem("a", LABEL, image))])
    assert image.is_file() and Image.open(image).getpixel((0, 0)) == (1, 2, 3)


def test_a_project_image_whose_name_is_not_utf8_is_reported_by_name(tmp_path, capsys, run_cli):
    import os

    bad = os.fsdecode(b"bad\xff")
    try:
        project = make_project(tmp_path, names=(f"{bad}.png", "good.png"))
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    project.save_annotation(project.images[1], LABEL)
    code, out, err = run_cli("export", "--project", project.root, "--out", tmp_path / "out", "--formats", "coco,qgt")
    assert code == 2 and "is not valid UTF-8" in out and "surrogates" not in out + err
    assert "exported 1 annotation(s)" in out


def test_a_saved_annotation_is_durable_its_folder_synced_after_the_rename(tmp_path, monkeypatch):
    """A rename reaches the disk only when its folder is fsynced: until then a power cut can bring
    back the annotation as it was before Ctrl+S. The save syncs the file, renames it, then syncs
    the folder (observed through os.fsync and os.replace)."""
    import os
    import stat

    project = make_project(tmp_path)
    events = []
    fsync, replace = os.fsync, os.replace

    def spy_fsync(fd):
        events.append(("fsync-folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync-file", fd))
        return fsync(fd)

    def spy_replace(src, dst, *args, **kwargs):
        events.append(("replace", Path(dst)))
        return replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", spy_fsync)
    monkeypatch.setattr(os, "replace", spy_replace)
    project.save_annotation(project.images[0], LABEL)
    kinds = [kind for kind, _ in events]
    saved = next(i for i, (kind, what) in enumerate(events) if kind == "replace" and what.suffix == ".qgt")
    assert "fsync-file" in kinds[:saved] and "fsync-folder" in kinds[saved + 1:], events


HOSTILE_VALUES = [None, True, False, 0, -1, 1.5, 2**31, 2**64, 1e308, "", "x", "../x", [], [1], [1.5, 2, 3],
                  [300, 0, 0], ["a", "b", "c"], {}, "\u0000", "a" * 300]


def json_paths(doc, prefix=()):
    """Every path (keys and indices) to a value in a JSON document."""
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    return [p for k, v in items for p in [prefix + (k,)] + json_paths(v, prefix + (k,))]


def test_every_value_of_project_json_mutated_opens_a_usable_project_or_is_refused(tmp_path):
    # each value of project.json (the root's, the classes', an image's) replaced by hostile values:
    # Project.open refuses it (ProjectError naming the file) or opens a project whose class set a
    # saved annotation can hold and be read back with; nothing else escapes, nothing is written
    from qgn.label_map import label_dtype
    from qgn.quadtree import Quadtree
    from qgn.quadtree.qgt import decode_qgt, encode_qgt

    project = make_project(tmp_path)
    doc = json.loads((project.root / PROJECT_FILE).read_text())
    for path in json_paths(doc):
        for value in HOSTILE_VALUES:
            mutated = json.loads(json.dumps(doc))
            parent = mutated
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = value
            text = json.dumps(mutated)
            (project.root / PROJECT_FILE).write_text(text)
            try:
                opened = Project.open(project.root)
            except ProjectError as exc:
                assert PROJECT_FILE in str(exc), (path, value, exc)
                continue
            classes = opened.classes
            label = np.zeros((2, 3), label_dtype(classes))
            qt = Quadtree.from_label(label, classes.num_classes, classes.ignore_index, 2)
            assert decode_qgt(encode_qgt(qt, classes))[1] == classes, (path, value)
            assert (project.root / PROJECT_FILE).read_text() == text


def test_a_project_json_saved_with_a_byte_order_mark_opens_and_stays_writable(tmp_path):
    # an editor that writes a UTF-8 BOM (Notepad before Windows 10 1903) made the project
    # "corrupt (not JSON: Unexpected UTF-8 BOM)" for the app and every command
    project = make_project(tmp_path)
    path = project.root / PROJECT_FILE
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    opened = Project.open(project.root)
    assert [im.key for im in opened.images] == ["a", "b"] and opened.classes == CLASSES
    opened.set_done(opened.images[1], True)
    assert Project.open(project.root).images[1].done


def test_a_project_json_that_is_a_folder_is_named_as_such_not_as_missing(tmp_path):
    from qgn.project import Project, ProjectError

    (tmp_path / "p" / "project.json").mkdir(parents=True)
    with pytest.raises(ProjectError, match="is not a file"):
        Project.open(tmp_path / "p")


def test_a_project_json_that_is_a_link_to_nothing_is_named_as_such_not_as_missing(tmp_path):
    # "not a QGN project (no project.json); create one first" sent the user to make a new project
    # in a folder whose project.json is a link to a file moved away (a synced or restored folder)
    project = make_project(tmp_path)
    moved = project.root.parent / "elsewhere.json"
    (project.root / PROJECT_FILE).rename(moved)
    (project.root / PROJECT_FILE).symlink_to(tmp_path / "gone.json")
    with pytest.raises(ProjectError, match=r"project\.json: is a link to .*gone\.json, which does not exist") as caught:
        Project.open(project.root)
    assert (project.root / PROJECT_FILE).is_symlink() and moved.is_file()  # nothing changed
    # "make what it points to, or remove the link" led to an empty project.json: the user's is there
    assert "restore or mount what it points to" in str(caught.value) and "remove the link" not in str(caught.value)


def test_read_json_reads_within_its_bound_and_names_the_file_it_refuses(tmp_path):
    from qgn.fileio import read_json

    path = tmp_path / "x.json"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"a": [1, 2]}')  # an editor's byte-order mark
    assert read_json(path, "thing", 100) == {"a": [1, 2]}
    for data, words in ((b'{"a": "' + b"x" * 200 + b'"}', "too big for a thing"),
                        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply to be a thing"),
                        (b'{"a": "\xff"}', "not UTF-8"), (b'{"a": ', "is not JSON")):
        path.write_bytes(data)
        with pytest.raises(ValueError, match=words) as caught:
            read_json(path, "thing", 100 if words.startswith("too big") else 1 << 20)
        assert str(path) in str(caught.value)


def test_a_project_heads_description_saved_by_an_editor_with_a_byte_order_mark_still_reads(tmp_path):
    # project.json and the model config took a BOM; the head's description (and the domain
    # reference, the removed-image records, the class-edit journal) each read JSON their own way
    import torch

    from qgn.project_head import ProjectHead

    head = ProjectHead(torch.randn(3, 8), torch.zeros(3), torch.zeros(8), torch.ones(8), ["a", "b", "c"], 255)
    path = head.save(tmp_path / "head.safetensors")
    meta = path.with_suffix(".json")
    meta.write_bytes(b"\xef\xbb\xbf" + meta.read_bytes())
    assert ProjectHead.load(path).names == ["a", "b", "c"]


def test_a_writers_set_aside_of_an_old_file_is_not_removed_as_stale(tmp_path, monkeypatch):
    """Files written together keep a hard link to each file they replace until all are in place
    (put back when a later rename fails). That link is a temporary with the OLD file's mtime: any
    writer's clean-up of the folder meanwhile (``remove_stale_temporaries``, run as commands start)
    removed it at once, and the failed rename then left new weights beside the old JSON."""
    import errno
    import os
    import time

    import qgn.fileio as fileio
    from qgn.fileio import atomic_write_together, remove_stale_temporaries

    weights, meta = tmp_path / "m.safetensors", tmp_path / "m.json"
    weights.write_bytes(b"old weights")
    meta.write_bytes(b"old json")
    hour_ago = time.time() - 3600
    for path in (weights, meta):
        os.utime(path, (hour_ago, hour_ago))  # a model kept an hour ago
    real, renames = os.replace, []

    def replace(src, dst, *args, **kwargs):
        renames.append(dst)
        if len(renames) == 2:
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(src))
        real(src, dst, *args, **kwargs)
        remove_stale_temporaries(tmp_path)  # another command starts meanwhile

    monkeypatch.setattr(fileio.os, "replace", replace)
    with pytest.raises(OSError):
        atomic_write_together([(weights, b"new weights"), (meta, b"new json")])
    assert (weights.read_bytes(), meta.read_bytes()) == (b"old weights", b"old json")


def test_a_live_writers_earlier_temporary_is_not_removed_as_stale_while_the_next_file_is_written(tmp_path):
    """Files written together are each staged whole first: the first one's temporary then waited, its
    mtime the end of its own write, while the next (a big optimizer state on a slow disk) was
    written - past the 60 s after which another process's clean-up takes a temporary for a killed
    writer's and removes it: the set then failed. Each part written keeps the earlier temporaries
    fresh. (The time passing is simulated: the temporary is aged by hand.)"""
    import os
    import time

    from qgn.fileio import STALE_TEMP_SECONDS, atomic_write_together, is_temporary, remove_stale_temporaries

    weights, state = tmp_path / "m.safetensors", tmp_path / "m.state"
    weights.write_bytes(b"old weights")
    state.write_bytes(b"old state")
    removed = []

    def slow_second_file():
        yield b"new "
        long_ago = time.time() - 2 * STALE_TEMP_SECONDS  # the first part took minutes
        for entry in tmp_path.iterdir():
            if is_temporary(entry.name) and entry.name.startswith(f".{weights.name}."):
                os.utime(entry, (long_ago, long_ago))
        yield b"state "
        removed.append(remove_stale_temporaries(tmp_path))  # another command starts meanwhile
        yield b"done"

    atomic_write_together([(weights, b"new weights"), (state, slow_second_file())])
    assert removed == [0]
    assert (weights.read_bytes(), state.read_bytes()) == (b"new weights", b"new state done")


def test_a_big_file_written_as_one_piece_keeps_the_earlier_temporaries_fresh_too(tmp_path, monkeypatch):
    """As above, for a file given as one bytes object (a training state of hundreds of MB, slow to
    write): it is written in parts, and each part keeps the earlier temporaries fresh - written in
    one piece, the first file's temporary was taken for a killed writer's meanwhile. (The time
    passing is simulated: the temporary is aged by hand while the big file is written.)"""
    import os
    import time

    import qgn.fileio
    from qgn.fileio import STALE_TEMP_SECONDS, atomic_write_together, is_temporary, remove_stale_temporaries

    monkeypatch.setattr(qgn.fileio, "WRITE_SLICE", 4, raising=False)
    weights, state = tmp_path / "m.safetensors", tmp_path / "m.state"
    weights.write_bytes(b"old weights")
    state.write_bytes(b"old state")
    removed, fresh, opened = [], [], os.fdopen

    class SlowDisk:  # the big file's writes
        def __init__(self, f):
            self.f, self.writes = f, 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.f.__exit__(*exc)

        def write(self, part):
            self.writes += 1
            earlier = [e for e in tmp_path.iterdir() if is_temporary(e.name) and e.name.startswith(f".{weights.name}.")]
            if self.writes == 1:  # minutes pass while the first part is written
                long_ago = time.time() - 2 * STALE_TEMP_SECONDS
                for entry in earlier:
                    os.utime(entry, (long_ago, long_ago))
            else:  # another command cleans up while a later part is written: the earlier file was kept fresh
                fresh.append(all(time.time() - e.stat().st_mtime < STALE_TEMP_SECONDS for e in earlier))
                removed.append(remove_stale_temporaries(tmp_path))
            return self.f.write(part)

        def __getattr__(self, name):
            return getattr(self.f, name)

    def fdopen(fd, mode="r", *args, **kwargs):
        f = opened(fd, mode, *args, **kwargs)
        return SlowDisk(f) if os.readlink(f"/proc/self/fd/{fd}").find(f".{state.name}.") >= 0 else f

    monkeypatch.setattr(qgn.fileio.os, "fdopen", fdopen)
    atomic_write_together([(weights, b"new weights"), (state, b"new state, a big one")])
    assert fresh and all(fresh) and not any(removed)  # written in parts, each keeping the first temporary fresh
    assert (weights.read_bytes(), state.read_bytes()) == (b"new weights", b"new state, a big one")


@pytest.mark.parametrize("where", ["nowhere", "outside"])
def test_an_annotation_folder_linked_to_nothing_or_out_of_the_project_is_named_at_open(tmp_path, where):
    # it opened, every image without its annotation, and the first look at one raised OutsideRootError
    # (the app stopped opening the project there); every save was refused
    project = make_project(tmp_path)
    moved = tmp_path / "moved"
    (project.root / "annotations").rename(moved)
    (project.root / "annotations").symlink_to(tmp_path / "gone" if where == "nowhere" else moved,
                                              target_is_directory=True)
    match = r"is a link to .*gone, which does not exist" if where == "nowhere" else r"outside the project"
    with pytest.raises(ProjectError, match=match) as caught:
        Project.open(project.root)
    assert (project.root / "annotations").is_symlink() and [p.name for p in moved.iterdir()] == ["a.qgt"]
    if where == "nowhere":  # not "make the folder it points to, or remove the link": an empty folder of annotations
        assert "restore or mount what it points to" in str(caught.value) and "remove the link" not in str(caught.value)


@pytest.mark.parametrize("where", ["nowhere", "outside"])
def test_an_autosave_folder_linked_to_nothing_or_out_of_the_project_is_named_at_open(tmp_path, where):
    # it opened silently: no autosave offered (the user's unsaved work, where the link points) and
    # every autosave of the session refused (OutsideRootError). It still opens (only autosaves stop)
    project = make_project(tmp_path)
    project.autosave(project.images[1], LABEL)
    moved = tmp_path / "moved"
    (project.root / ".autosave").rename(moved)
    (project.root / ".autosave").symlink_to(tmp_path / "gone" if where == "nowhere" else moved,
                                            target_is_directory=True)
    opened = Project.open(project.root)
    np.testing.assert_array_equal(opened.load_annotation(opened.images[0]), LABEL)
    (said,) = opened.blocked_folders()
    if where == "nowhere":
        assert said.startswith(f"{project.root / '.autosave'}: is a link to {tmp_path / 'gone'}, which does not exist "
                               "(restore or mount what it points to"), said
    else:
        assert said.startswith(f"{project.root / '.autosave'} is a link to {moved}, outside the project"), said
    assert (project.root / ".autosave").is_symlink() and [p.name for p in moved.iterdir()] == ["b.qgt"]
    (project.root / ".autosave").unlink()
    moved.rename(project.root / ".autosave")  # the folder back: its autosave is offered
    assert [im.key for im in Project.open(project.root).recoverable()] == ["b"]


@pytest.mark.parametrize("folder", ["annotations", ".autosave"])
@pytest.mark.parametrize("loop", ["itself", "two links"])
def test_a_folder_linked_into_a_loop_of_links_is_named_at_open(tmp_path, folder, loop):
    # blocked_folders raised RuntimeError "Symlink loop" (Path.resolve) for an autosave folder that is a
    # loop of links: the project no longer opened in the app. It opens, the loop named (as for a link to
    # nothing); an annotations folder so is refused at open, named the same way
    project = make_project(tmp_path)
    shutil.rmtree(project.root / folder, ignore_errors=True)
    if loop == "itself":
        (project.root / folder).symlink_to(folder)
    else:
        (project.root / folder).symlink_to("other")
        (project.root / "other").symlink_to(folder)
    said_loop = f"{project.root / folder} is a link that leads into a loop of symbolic links, which leads nowhere"
    if folder == "annotations":
        with pytest.raises(ProjectError) as caught:
            Project.open(project.root)
        assert str(caught.value).startswith(said_loop), caught.value
    else:
        opened = Project.open(project.root)
        np.testing.assert_array_equal(opened.load_annotation(opened.images[0]), LABEL)
        (said,) = opened.blocked_folders()
        assert said == f"{said_loop}: none of the project's autosaves can be read or written until the link is " \
                       "removed (nothing was changed)"
    assert (project.root / folder).is_symlink()


@pytest.mark.parametrize("folder", ["annotations", ".autosave"])
def test_a_folder_linked_to_a_file_inside_the_project_is_named_as_blocked(tmp_path, folder):
    # an annotations link to project.json opened with every image unannotated and nothing said
    project = make_project(tmp_path)
    project.autosave(project.images[1], LABEL)
    moved = tmp_path / "moved"
    (project.root / folder).rename(moved)
    (project.root / folder).symlink_to(PROJECT_FILE)
    what = "saved annotations" if folder == "annotations" else "autosaves"
    (said,) = Project.open(project.root).blocked_folders()
    assert said.startswith(f"{project.root / folder} is a link to {project.root / PROJECT_FILE}, a file, not the "
                           f"folder of the project's {what}")
    assert (project.root / folder).is_symlink()


def test_an_annotation_folder_linked_inside_the_project_still_opens(tmp_path):
    project = make_project(tmp_path)
    (project.root / "annotations").rename(project.root / "kept")
    (project.root / "annotations").symlink_to("kept", target_is_directory=True)
    opened = Project.open(project.root)
    np.testing.assert_array_equal(opened.load_annotation(opened.images[0]), LABEL)


def test_blocked_folders_names_a_file_where_a_folder_belongs_and_nothing_else(tmp_path):
    project = make_project(tmp_path)
    assert project.blocked_folders() == []
    (project.root / ".autosave").mkdir(exist_ok=True)
    assert project.blocked_folders() == []
    (project.root / ".autosave").rmdir()
    (project.root / ".autosave").write_text("x")
    (blocked,) = Project.open(project.root).blocked_folders()
    assert blocked.startswith(f"{project.root / '.autosave'} is a file, not the folder of the project's autosaves")


def test_a_read_of_project_json_stops_at_each_step_its_should_stop_is_polled(tmp_path, monkeypatch):
    """``Project.open(root, should_stop)`` polls ``should_stop`` between its steps and every
    ``STOP_CHECK_EVERY`` entries of its loops (an open the user cancelled went on for seconds at
    100,000 images): stopped at the n-th poll, whichever, it raises ReadStopped and writes nothing;
    never stopped, it reads what an open without one reads."""
    import qgn.project_errors as project_errors
    from qgn.project_errors import ReadStopped

    project = make_project(tmp_path, names=[f"i{n:02d}.png" for n in range(25)])
    monkeypatch.setattr(project_errors, "STOP_CHECK_EVERY", 4)
    files = {p: p.read_bytes() for p in sorted(project.root.rglob("*")) if p.is_file()}
    polls, index_polls = [], []
    Project.open(project.root, lambda: polls.append(1) and False).warm_index(lambda: index_polls.append(1) and False)
    assert (len(polls), len(index_polls)) == (2 + 4 * 7, 7)  # 2 between steps; 4 loops over 25 entries, 1 in 4
    for n in range(len(polls)):
        asked = []
        with pytest.raises(ReadStopped):
            Project.open(project.root, lambda: asked.append(1) or len(asked) > n)
        assert len(asked) == n + 1  # it stopped at the poll that said so
    for n in range(len(index_polls)):
        asked = []
        with pytest.raises(ReadStopped):
            Project.open(project.root).warm_index(lambda: asked.append(1) or len(asked) > n)
        assert len(asked) == n + 1
    assert {p: p.read_bytes() for p in sorted(project.root.rglob("*")) if p.is_file()} == files
    read, plain = Project.open(project.root, lambda: False), Project.open(project.root)
    assert [(im.key, im.path, im.done) for im in read.images] == [(im.key, im.path, im.done) for im in plain.images]
