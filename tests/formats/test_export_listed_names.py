"""The names a list-based export (CVAT/VOC's ``ImageSets/Segmentation/default.txt``, CamVid's
``default.txt``) gives its items do not depend on what else is exported (a third review of the
eighth hostile-inputs round): an item whose own name the list holds as it is keeps it; a name that
must change ("two\\nlines", listed as "two lines") gets ``-2`` …, never another item's own name; two
names that differ only in case or accent encoding (one file on macOS and Windows disks) are refused
before anything is written, as ``--format png`` refuses them."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from qgn.classes import ClassSet
from qgn.formats import FORMATS, ExportItem, export_dataset

CLASSES = ClassSet(("a", "b", "c"), ((10, 0, 0), (0, 20, 0), (0, 0, 30)), 255)
NFC, NFD = "caf\u00e9", "cafe\u0301"  # one file name on a macOS disk


def write_qgt(folder, stem, value):
    folder.mkdir(parents=True, exist_ok=True)
    FORMATS["qgt"].write(np.full((8, 8), value, np.uint8), CLASSES, folder, stem)


def cvat_tree(out):
    """({mask stem: its colour}, the stems default.txt lists) of the CVAT export ``out``."""
    masks = {p.stem: Image.open(p).convert("RGB").getpixel((0, 0)) for p in (out / "SegmentationClass").iterdir()}
    return masks, (out / "ImageSets" / "Segmentation" / "default.txt").read_text().splitlines()


def files_under(folder):
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} if folder.exists() else {}


@pytest.mark.parametrize("formats", ["cvat", "cvat,coco"])
def test_a_file_keeps_its_name_when_a_file_listed_as_it_is_added(tmp_path, run_cli, formats):
    """``two lines.qgt`` exported, then ``two\\nlines.qgt`` added and exported again: the new file
    took "two lines" (it sorts first) and the old one became "two lines-2", so the masks of the
    earlier export's "two lines" were replaced by another file's; a subset export of ``two
    lines.qgt`` alone then wrote its masks over "two lines", the other file's now. Now the old file
    keeps "two lines" in every export, and ``two\\nlines.qgt`` is "two lines-2", exported alone too."""
    src, out = tmp_path / "src", tmp_path / "out"
    tree = out / "cvat" if "," in formats else out
    write_qgt(src, "two lines", 1)
    assert run_cli("export", src, "--format", formats, "--out", out)[0] == 0
    assert cvat_tree(tree) == ({"two lines": CLASSES.palette[1]}, ["two lines"])
    write_qgt(src, "two\nlines", 2)
    code, said, err = run_cli("export", src, "--format", formats, "--out", out)
    assert code == 0, err
    expected = {"two lines": CLASSES.palette[1], "two lines-2": CLASSES.palette[2]}
    masks, listed = cvat_tree(tree)
    assert masks == expected and sorted(listed) == ["two lines", "two lines-2"], (masks, listed)
    for alone in ("two lines", "two\nlines"):  # a subset export writes each over its own masks only
        assert run_cli("export", src / f"{alone}.qgt", "--format", "cvat", "--out", tree)[0] == 0
        masks, listed = cvat_tree(tree)
        assert masks == expected and sorted(listed) == ["two lines", "two lines-2"], (alone, masks, listed)


@pytest.mark.parametrize("fmt", ["cvat", "camvid"])
def test_a_name_that_must_change_never_takes_another_items_own_name(tmp_path, fmt):
    """``export_dataset`` of "two\\nlines", "two lines" and "two lines-2", in any order: the first
    item picked kept "two lines" and the others moved up (one was written as "two lines-2", another
    item's own name, or as "two lines-3"). Now the two own names stay theirs and "two\\nlines", whose
    name must change, is "two lines-3", whatever the order."""
    names = ["two\nlines", "two lines", "two lines-2"]
    expected = {"two lines": CLASSES.palette[1], "two lines-2": CLASSES.palette[2], "two lines-3": CLASSES.palette[0]}
    for order in ([0, 1, 2], [2, 1, 0], [1, 0, 2]):
        out = tmp_path / "".join(map(str, order))
        items = [ExportItem(names[i], np.full((4, 6), i, np.uint8)) for i in order]
        export_dataset(items, CLASSES, out, [fmt])
        masks = out / fmt / ("defaultannot" if fmt == "camvid" else "SegmentationClass")
        got = {p.stem: Image.open(p).convert("RGB").getpixel((0, 0)) for p in masks.iterdir()}
        assert got == expected, (order, got)


@pytest.mark.parametrize("names", [("b", "B"), (NFC, NFD)], ids=["case", "accent"])
@pytest.mark.parametrize("formats", ["cvat", "cvat,coco", "camvid"])
def test_files_whose_names_are_one_file_name_are_refused_before_anything_is_written(tmp_path, run_cli, names,
                                                                                      formats):
    """``b.qgt`` exported, then ``B.qgt`` added: the CVAT export wrote ``B`` and ``b-2``, left the
    earlier ``b`` (its mask stale, listed twice) - which of them kept "b" depended on what else was
    exported. ``café`` in NFC and in NFD (one file on macOS) were both written unchanged by the
    dataset export. Now the export is refused in one line naming both files, as ``--format png``
    refuses it, and the earlier export is left byte for byte."""
    src, out = tmp_path / "src", tmp_path / "out"
    write_qgt(src, names[0], 1)
    assert run_cli("export", src, "--format", formats, "--out", out)[0] == 0
    before = files_under(out)
    write_qgt(src, names[1], 2)
    if len(list(src.iterdir())) != 2:
        pytest.skip("this disk stores the two names as one file")
    code, said, err = run_cli("export", src, "--format", formats, "--out", out)
    assert code == 2 and len(err.strip().splitlines()) == 1, (said, err)
    assert "would both be written as one item" in err and "rename one of them" in err, err
    assert err.count(str(src)) == 2, err
    assert files_under(out) == before


@pytest.mark.parametrize("names", [("b", "B"), (NFC, NFD)], ids=["case", "accent"])
@pytest.mark.parametrize("fmt", ["cvat", "voc", "camvid"])
def test_export_dataset_refuses_items_whose_names_are_one_file_name(tmp_path, names, fmt):
    """``export_dataset`` of items named "b" and "B" (or "café" in NFC and NFD): CVAT wrote "b" and
    "B-2", and NFC and NFD "café" both unchanged, one file on macOS. Now a ValueError saying why,
    before any writer writes (CamVid's opens by writing its label_colors.txt)."""
    items = [ExportItem(name, np.full((4, 6), i, np.uint8)) for i, name in enumerate(names)]
    with pytest.raises(ValueError, match="would both be written as one file") as caught:
        export_dataset(items, CLASSES, tmp_path / "out", [fmt])
    assert ("accent" if names[0] == NFC else "case") in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_listed_names_tell_unicode_normal_forms_apart_as_a_macos_disk_does():
    """``ListedNames`` folded case but not the Unicode normal form: NFC and NFD "café" were both
    picked unchanged (one file on macOS)."""
    from qgn.formats.base import ListedNames

    names = ListedNames()
    assert [names.pick(NFC), names.pick(NFD)] == [NFC, NFD + "-2"]
    assert NFD in names and "CAF\u00c9" in names


def test_a_refusal_of_an_output_folder_whose_name_holds_a_line_break_says_why_on_one_line(tmp_path):
    """An export into a folder whose path holds a line break, where labelmap.txt is another
    export's (or a folder, or a named pipe): the message named the path raw, so the app's dialog
    (``describe_error``: the first line) showed the path up to the break and no reason. The path is
    escaped now, the reason on the same line."""
    import os

    from qgn.formats import check_export_classes

    out = tmp_path / "out\nbreak"
    cases = {"other": lambda f: f.write_text("# x\nbackground:0,0,0::\nx:1,2,3::\n"),
             "folder": lambda f: f.mkdir(), "pipe": lambda f: os.mkfifo(f)}
    reasons = {"other": "belongs to an export with other classes", "folder": "is a folder, not a file",
               "pipe": "is a named pipe (FIFO), not a file"}
    for name, make in cases.items():
        folder = out / name / "cvat"
        folder.mkdir(parents=True)
        make(folder / "labelmap.txt")
        with pytest.raises(ValueError) as caught:
            check_export_classes(["cvat"], CLASSES, [folder])
        first_line = str(caught.value).splitlines()[0]
        assert reasons[name] in first_line and "out\\nbreak" in first_line, (name, str(caught.value))


def test_a_project_export_names_each_image_as_its_list_holds_it_whatever_else_is_exported(tmp_path):
    """A project of ``a"b.png`` and ``a'b.png`` exported as CamVid (whose list holds a double quote
    as ``'``): ``a"b``, first, took "a'b" and the image ``a'b.png`` became "a'b-2"; an export of the
    images marked done (``a'b.png`` alone) then wrote it as "a'b", over the other image's mask. Now
    ``a'b.png`` is "a'b" and ``a"b.png`` "a'b-2" in every export."""
    from qgn.project import Project
    from qgn.project_export import export_project

    paths = []
    for i, name in enumerate(['a"b.png', "a'b.png"]):
        paths.append(tmp_path / "imgs" / name)
        paths[-1].parent.mkdir(exist_ok=True)
        Image.new("RGB", (6, 4), (i, i, i)).save(paths[-1])
    project = Project.create(tmp_path / "p", paths, CLASSES)
    for i, image in enumerate(project.images):
        project.save_annotation(image, np.full((4, 6), i, np.uint8))
    expected = {"a'b-2": CLASSES.palette[0], "a'b": CLASSES.palette[1]}
    masks = tmp_path / "out" / "camvid" / "defaultannot"
    export_project(project, tmp_path / "out", ["camvid"])
    assert {p.stem: Image.open(p).convert("RGB").getpixel((0, 0)) for p in masks.iterdir()} == expected
    project.set_done(project.images[1], True)
    export_project(project, tmp_path / "out", ["camvid"], only_done=True)
    assert {p.stem: Image.open(p).convert("RGB").getpixel((0, 0)) for p in masks.iterdir()} == expected


def test_a_batch_failure_naming_the_file_escaped_names_it_once():
    """A failure whose message names its file escaped (``path_text``: the line break as \\n) was
    said with the file's name put in front again (``failure_text`` looked for the raw name)."""
    from qgn.cli.files import failure_text
    from qgn.fileio import not_a_file_error

    text = failure_text("in/two\nlines.png", not_a_file_error("in/two\nlines.png", "a folder"))
    assert text == "in/two\\nlines.png is a folder, not a file; name a file in it", text
