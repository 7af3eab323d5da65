"""Images that share a name: two folders' ``same.png``, or ``x.png`` beside ``x.jpg`` (one item id
for Datumaro and CVAT, which drop the extension). An export keeps them apart, and an import never
pairs a label with a guessed image (found by a QA pass: CamVid copied both images onto one file and
the import gave one image the other's labels; a CVAT mask ``x`` went onto ``x.jpg`` whatever it was
of, and ``--update`` then replaced x.jpg's annotation with it)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from qgn.classes import ClassSet
from qgn.formats import scan_dataset
from qgn.project import Project
from qgn.project_export import export_project
from qgn.project_import import import_into_project

CLASSES = ClassSet(("road", "car", "sky"), ((128, 64, 128), (0, 0, 142), (70, 130, 180)), 255)


def labelled_project(tmp_path, names):
    """A project of one image per name (each its own flat colour, so that an image is known by its
    pixels wherever it is copied) and a random label map each: (project, {colour: label})."""
    rng = np.random.default_rng(7)
    paths, truth = [], {}
    for i, name in enumerate(names):
        path = tmp_path / "imgs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        colour = (40 * i + 10, 200 - 30 * i, 7)
        Image.new("RGB", (12, 8), colour).save(path, quality=100)
        paths.append(path)
        label = rng.integers(0, 3, (8, 12)).astype(np.uint8)
        label[0, :3] = 255
        truth[colour] = label
    project = Project.create(tmp_path / "p", paths, CLASSES)
    for image, label in zip(project.images, truth.values()):
        project.save_annotation(image, label)
    return project, truth


def colour_of(path) -> tuple[int, int, int]:
    with Image.open(path) as image:
        return tuple(int(round(c)) for c in np.asarray(image.convert("RGB"), float).mean(axis=(0, 1)))


def nearest(truth, colour):
    return min(truth, key=lambda c: sum(abs(a - b) for a, b in zip(c, colour)))


@pytest.mark.parametrize("fmt", ["camvid", "coco", "labelstudio", "fiftyone"])
@pytest.mark.parametrize("names", [["a/same.png", "b/same.png"], ["x.png", "x.jpg"]])
def test_images_of_one_name_keep_their_own_labels(tmp_path, fmt, names):
    project, truth = labelled_project(tmp_path, names)
    export_project(project, tmp_path / "out", [fmt], images="copy")
    report = import_into_project(tmp_path / "out" / fmt, tmp_path / "again", fmt)
    assert len(report.imported) == 2, report.skipped
    again = Project.open(tmp_path / "again")
    assert again.classes.names == CLASSES.names
    for image in again.images:
        np.testing.assert_array_equal(again.load_annotation(image), truth[nearest(truth, colour_of(image.path))])


def test_coco_copies_are_found_without_naming_their_folder(tmp_path):
    """The COCO export puts copies in images/default/ (Datumaro's and CVAT's place); its import
    looked only in images/ and the export's folder."""
    project, _ = labelled_project(tmp_path, ["a.png", "b.png"])
    export_project(project, tmp_path / "out", ["coco"], images="copy")
    items = scan_dataset(tmp_path / "out" / "coco").items
    assert [item.image.parent.name for item in items] == ["default", "default"]


def test_coco_file_names_differ_before_the_extension(tmp_path):
    import json

    project, _ = labelled_project(tmp_path, ["x.png", "x.jpg"])
    export_project(project, tmp_path / "out", ["coco"], images="copy")
    doc = json.loads((tmp_path / "out" / "coco" / "annotations" / "instances_default.json").read_text())
    stems = [name.rsplit(".", 1)[0] for name in (entry["file_name"] for entry in doc["images"])]
    assert len(set(stems)) == 2, stems


def test_a_mask_named_like_two_images_is_paired_with_neither(tmp_path):
    project, truth = labelled_project(tmp_path, ["x.png", "x.jpg"])
    export_project(project, tmp_path / "out", ["cvat"])
    before = {im.key: project.load_annotation(im) for im in project.images}
    report = import_into_project(tmp_path / "out" / "cvat", project.root, "cvat", images=tmp_path / "imgs",
                                 update=True)
    assert not report.replaced and not report.imported
    assert any("x.jpg and x.png" in why and "distinct names" in why for _, why in report.skipped), report.skipped
    for image in Project.open(project.root).images:
        np.testing.assert_array_equal(project.load_annotation(image), before[image.key])


def test_camvid_lists_a_name_with_a_double_quote_as_datumaro_reads_it(tmp_path):
    project, truth = labelled_project(tmp_path, ['say "hi".png', "plain.png"])
    export_project(project, tmp_path / "out", ["camvid"])
    lines = (tmp_path / "out" / "camvid" / "default.txt").read_text().splitlines()
    assert all(line.count('"') in (0, 4) for line in lines), lines  # Datumaro: unquoted, or two quoted paths
    report = import_into_project(tmp_path / "out" / "camvid", tmp_path / "again", "camvid")
    assert len(report.imported) == 2, report.skipped
    again = Project.open(tmp_path / "again")
    for image in again.images:
        np.testing.assert_array_equal(again.load_annotation(image), truth[nearest(truth, colour_of(image.path))])


@pytest.mark.parametrize("breaking", ["\n", "\r", "\u2028", "\x1c"])
@pytest.mark.parametrize("fmt", ["camvid", "cvat"])
def test_a_name_with_a_line_break_is_listed_on_one_line(tmp_path, fmt, breaking):
    """A file name may hold a line break; CamVid's default.txt and CVAT's ImageSets list hold one
    item a line (Datumaro reads them line by line): the export wrote the name as it was, splitting
    the item's line in two - our CamVid import then skipped the image, and CVAT's list named two
    items that do not exist and not the one that does (found by the eighth hostile-inputs round)."""
    project, truth = labelled_project(tmp_path, [f"two{breaking}lines.png", "plain.png"])
    export_project(project, tmp_path / "out", [fmt], images="copy")
    tree = tmp_path / "out" / fmt
    listed = tree / ("default.txt" if fmt == "camvid" else "ImageSets/Segmentation/default.txt")
    lines = listed.read_text().splitlines()
    assert len(lines) == 2 and all(line.count('"') in (0, 4) for line in lines), lines
    if fmt == "cvat":  # each listed stem has its mask
        assert all((tree / "SegmentationClass" / f"{line}.png").is_file() for line in lines), lines
    report = import_into_project(tree, tmp_path / "again", fmt, images=tree / "JPEGImages" if fmt == "cvat" else None)
    assert len(report.imported) == 2, report.skipped
    again = Project.open(tmp_path / "again")
    for image in again.images:
        np.testing.assert_array_equal(again.load_annotation(image), truth[nearest(truth, colour_of(image.path))])


@pytest.mark.parametrize("formats", ["cvat", "voc", "camvid,cvat"])
def test_a_qgt_file_named_with_a_line_break_is_listed_on_one_line(tmp_path, run_cli, formats):
    """``qgn export QGTDIR --format cvat`` (not a project: the item is named after the .qgt) wrote
    ``two\\nlines`` into ImageSets/Segmentation/default.txt as the items 'two' and 'lines', which
    have no masks, and not the one written (the review of the eighth hostile-inputs round). With a
    ``two lines.qgt`` beside it, every export keeps the two apart (``-2``): ``--format cvat`` alone
    (one file at a time) refused the folder, "would both be written to .../two lines.png", while
    ``--format camvid,cvat`` (one dataset) exported both (the second review)."""
    from sample_files import write_mask

    names = ["two\nlines", "plain", "two lines"]
    for value, name in enumerate(names):
        write_mask(tmp_path / "in" / f"{name}.png", value=value, size=(12, 8))
    assert run_cli("convert", tmp_path / "in", tmp_path / "qgt")[0] == 0
    code, said, err = run_cli("export", tmp_path / "qgt", "--format", formats, "--out", tmp_path / "out")
    assert code == 0, err + said
    tree = tmp_path / "out" / ("cvat" if "," in formats else "")
    lines = (tree / "ImageSets" / "Segmentation" / "default.txt").read_text().splitlines()
    assert len(lines) == len(names), lines
    masks = {}
    for line in lines:  # each listed stem has its mask: the value of one input each
        with Image.open(tree / "SegmentationClass" / f"{line}.png") as mask:
            masks[line] = mask.convert("RGB").getpixel((0, 0))
    assert len(set(masks.values())) == len(names), masks
    assert sorted(p.stem for p in (tree / "SegmentationClass").iterdir()) == sorted(lines)


@pytest.mark.parametrize("fmt", ["cvat", "voc", "camvid"])
def test_items_whose_names_are_one_line_of_the_list_are_kept_apart(tmp_path, fmt):
    """``export_dataset`` of the items "two\\nlines" and "two lines": the CVAT writer names each as its
    list holds it, "two lines", and the second's masks replaced the first's, one listed line for two
    items (a regression of naming every item ``listable_name``; CamVid's writer picked ``-2``). Both
    writers now pick a free name the same way (``ListedNames``): each listed name has its own mask,
    of its own item."""
    from qgn.formats import ExportItem, export_dataset

    a, b = np.zeros((4, 6), np.uint8), np.ones((4, 6), np.uint8)
    export_dataset([ExportItem("two\nlines", a), ExportItem("two lines", b)], CLASSES, tmp_path, [fmt])
    tree = tmp_path / fmt
    if fmt == "camvid":
        listed = [line.split('" "')[1].rstrip('"\n') for line in (tree / "default.txt").read_text().splitlines()]
    else:
        listed = [f"/SegmentationClass/{s}.png"
                  for s in (tree / "ImageSets" / "Segmentation" / "default.txt").read_text().splitlines()]
    assert len(listed) == 2 and len(set(listed)) == 2, listed
    colours = []
    for mask in listed:
        with Image.open(tree / mask.lstrip("/")) as image:
            colours.append(image.convert("RGB").getpixel((0, 0)))
    assert colours == [CLASSES.palette[0], CLASSES.palette[1]], (listed, colours)


@pytest.mark.parametrize("fmt", ["cvat", "camvid"])
def test_an_item_taken_back_frees_its_name(tmp_path, fmt):
    """An item a writer takes back (``undo``: it failed in another format of the export) leaves its
    name free: the next item of that name is written under it, not as ``-2``, and CVAT's list no
    longer names the one taken back."""
    from qgn.formats import FORMATS, ExportItem

    writer = FORMATS[fmt].open_writer(CLASSES, tmp_path)
    first = ExportItem("two lines", np.zeros((4, 6), np.uint8))
    mark = writer.mark()
    writer.undo(mark, first, writer.add(first))
    if fmt == "cvat":
        assert (tmp_path / "ImageSets" / "Segmentation" / "default.txt").read_text() == ""
    paths = writer.add(ExportItem("two\nlines", np.ones((4, 6), np.uint8))) + writer.finish()
    masks = [p for p in paths if p.parent.name in ("SegmentationClass", "defaultannot")]
    assert [p.name for p in masks] == ["two lines.png"], paths
    if fmt == "cvat":
        assert (tmp_path / "ImageSets" / "Segmentation" / "default.txt").read_text() == "two lines\n"
    else:
        assert (tmp_path / "default.txt").read_text() == '"/default/two lines.png" "/defaultannot/two lines.png"\n'


class _Refuses:
    """A later format of the export that fails on every image (``add_to_every_writer`` then takes
    the image back from the formats before it)."""

    uses_images = False

    def mark(self):
        return None

    def add(self, item):
        raise ValueError("refused")

    def undo(self, mark, item, paths):
        pass


@pytest.mark.parametrize("fmt", ["cvat", "voc", "camvid"])
def test_an_item_taken_back_with_its_earlier_files_put_back_keeps_its_name_and_line(tmp_path, fmt):
    """A re-export into an export of "two\\nlines" (listed as "two lines") and "two lines" (its
    ``-2``): a later format fails on "two\\nlines", so the list-named format takes it back and puts
    its earlier masks back. Its line stays in the list and its name stays taken: "two lines" is
    written again over its own earlier files, "two lines-2" (no ``-3`` beside them), not over the
    files just put back. (With the name freed, as the undo of an item an export wrote first does,
    it was written as "two lines", over the earlier export of "two\\nlines", and the list named one
    item for two.)"""
    from qgn.formats import FORMATS, ExportItem
    from qgn.formats.base import add_to_every_writer

    first, second, again = (np.full((4, 6), c, np.uint8) for c in (0, 1, 2))
    writer = FORMATS[fmt].open_writer(CLASSES, tmp_path)
    for item in (ExportItem("two\nlines", first), ExportItem("two lines", second)):
        add_to_every_writer([(writer, item)])
    writer.finish()

    writer = FORMATS[fmt].open_writer(CLASSES, tmp_path)
    broken = ExportItem("two\nlines", again)
    with pytest.raises(ValueError, match="refused"):
        add_to_every_writer([(writer, broken), (_Refuses(), broken)])
    writer.keep(broken.name, None)
    add_to_every_writer([(writer, ExportItem("two lines", again))])
    writer.finish()

    masks = tmp_path / ("defaultannot" if fmt == "camvid" else "SegmentationClass")
    assert sorted(p.name for p in masks.iterdir()) == ["two lines-2.png", "two lines.png"]
    colours = {name: Image.open(masks / name).convert("RGB").getpixel((0, 0))
               for name in ("two lines.png", "two lines-2.png")}
    assert colours == {"two lines.png": CLASSES.palette[0], "two lines-2.png": CLASSES.palette[2]}
    if fmt == "camvid":
        listed = sorted((tmp_path / "default.txt").read_text().splitlines())
        assert listed == ['"/default/two lines-2.png" "/defaultannot/two lines-2.png"',
                          '"/default/two lines.png" "/defaultannot/two lines.png"'], listed
    else:
        listed = sorted((tmp_path / "ImageSets" / "Segmentation" / "default.txt").read_text().splitlines())
        assert listed == ["two lines", "two lines-2"], listed
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]  # no set-aside left


def test_a_qgt_named_with_a_line_break_that_fails_a_reexport_keeps_its_earlier_line(tmp_path, run_cli):
    """``qgn export QGTDIR --format camvid,cvat`` again into its earlier export, ``two\\nlines.qgt``
    now unreadable: each list keeps its earlier line, ``two lines`` (the name the writers gave it),
    whose mask is still there - CamVid's list is rewritten at the end, and looked the kept item up
    under its file's own name (``two\\nlines``), which no line of a list holds, so it dropped it."""
    from sample_files import write_mask

    for value, name in enumerate(["two\nlines", "plain"]):
        write_mask(tmp_path / "in" / f"{name}.png", value=value, size=(12, 8))
    assert run_cli("convert", tmp_path / "in", tmp_path / "qgt")[0] == 0
    export = ("export", tmp_path / "qgt", "--format", "camvid,cvat", "--out", tmp_path / "out")
    assert run_cli(*export)[0] == 0
    camvid, cvat = tmp_path / "out" / "camvid", tmp_path / "out" / "cvat"
    before = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    (tmp_path / "qgt" / "two\nlines.qgt").write_bytes(b"not a quadtree")
    code, said, err = run_cli(*export)
    assert code != 0 and "two" in err + said
    assert sorted((camvid / "default.txt").read_text().splitlines()) == [
        '"/default/two lines.png" "/defaultannot/two lines.png"', "/default/plain.png /defaultannot/plain.png"]
    assert sorted((cvat / "ImageSets" / "Segmentation" / "default.txt").read_text().splitlines()) == [
        "plain", "two lines"]
    assert {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()} == before
