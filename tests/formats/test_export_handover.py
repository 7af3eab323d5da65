"""Exports a user can hand over: labelme JSONs whose image resolves (imagePath relative to the JSON,
as labelme opens it; with "copy" the image beside it and embedded as imageData), COCO with its
images in images/default/ (where Datumaro's COCO reader looks), Cityscapes with city folders,
cityscapesScripts file names and PNG leftImg8bit images that QGN's own Cityscapes reader trains on.
"""
from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qgn.data.synthetic import SYNTHETIC_CLASSES as CLASSES
from qgn.formats import scan_dataset
from qgn.project import Project
from qgn.project_export import export_project
from qgn.quadtree.label_io import read_label
from sample_files import synthetic_project

FORMATS = ["labelme", "coco", "cityscapes"]


@pytest.fixture
def project(tmp_path):
    """Three JPEG images in a folder of their own (one named like a Cityscapes frame), annotated."""
    from qgn.data.synthetic import make_scene

    folder = tmp_path / "Street Photos"
    folder.mkdir()
    paths, labels = [], {}
    for i, name in enumerate(["frame 01.jpg", "b.jpg", "bonn_000001_000002.jpg"]):
        image, label = make_scene(200 + i, 48, 64)
        Image.fromarray(image).save(folder / name, quality=95)
        paths.append(folder / name)
        labels[folder / name] = label.astype(np.uint8)
    project = Project.create(tmp_path / "project", paths, CLASSES)
    for image in project.images:
        project.save_annotation(image, labels[image.path])
    return project, labels


def labelme_image(json_path: Path) -> tuple[Path, dict]:
    """What labelme's LabelFile.load opens: ``dirname(json) / imagePath`` (when imageData is null)."""
    doc = json.loads(json_path.read_text())
    return Path(os.path.normpath(json_path.parent / doc["imagePath"])), doc


def cityscapes_parts(name: str) -> list[str]:
    """cityscapesScripts helpers/csHelpers.py getCsFileInfo: split at "_", the last part at "."."""
    parts = name.split("_")
    return parts[:-1] + parts[-1].split(".")


def test_labelme_image_path_resolves_without_copying(project, tmp_path):
    project, _labels = project
    export_project(project, tmp_path / "out", ["labelme"])
    for image in project.images:
        found, doc = labelme_image(tmp_path / "out" / "labelme" / f"{image.path.stem}.json")
        assert found.resolve() == image.path.resolve() and found.is_file()
        assert doc["imageData"] is None


def test_include_images_copy_and_link(project, tmp_path):
    project, _labels = project
    export_project(project, tmp_path / "copy", FORMATS, images="copy")
    coco = json.loads((tmp_path / "copy" / "coco" / "annotations" / "instances_default.json").read_text())
    for entry in coco["images"]:
        copied = tmp_path / "copy" / "coco" / "images" / "default" / entry["file_name"]
        assert copied.is_file() and Image.open(copied).size == (entry["width"], entry["height"])
    for image in project.images:
        json_path = tmp_path / "copy" / "labelme" / f"{image.path.stem}.json"
        found, doc = labelme_image(json_path)
        assert found.parent == json_path.parent and found.read_bytes() == image.path.read_bytes()
        assert base64.b64decode(doc["imageData"]) == image.path.read_bytes()  # opens on its own, as labelme saves
    export_project(project, tmp_path / "link", ["labelme", "coco"], images="link")
    for image in project.images:
        found, _doc = labelme_image(tmp_path / "link" / "labelme" / f"{image.path.stem}.json")
        assert found.resolve() == image.path.resolve()
    with pytest.raises(ValueError, match="copy, link or none"):
        export_project(project, tmp_path / "bad", ["coco"], images="move")


def test_datumaro_finds_the_coco_images(project, tmp_path):
    pytest.importorskip("datumaro")
    from datumaro.components.dataset import Dataset

    project, _labels = project
    export_project(project, tmp_path / "out", ["coco"], images="copy")
    dataset = Dataset.import_from(str(tmp_path / "out" / "coco"), "coco_instances")
    items = list(dataset)
    assert len(items) == 3
    for item in items:
        assert item.media is not None and item.media.has_data, item.id


def test_cityscapes_city_folders_script_names_and_png_images(project, tmp_path):
    project, labels = project
    export_project(project, tmp_path / "out", ["cityscapes"])
    root = tmp_path / "out" / "cityscapes"
    masks = sorted((root / "gtFine").rglob("*_gtFine_labelIds.png"))
    images = sorted((root / "leftImg8bit").rglob("*"))
    images = [p for p in images if p.is_file()]
    assert len(masks) == 3 and len(images) == 3
    for path in masks + images:
        parts = cityscapes_parts(path.name)
        assert len(parts) in (5, 6), path.name  # getCsFileInfo accepts 5 or 6 parts, nothing else
        assert path.parent.name == parts[0] != "default", "the city folder is the name's city"
        assert re.fullmatch(r"\d{6}", parts[1]) and re.fullmatch(r"\d{6}", parts[2])
    assert all(p.suffix == ".png" and Image.open(p).format == "PNG" for p in images)
    assert {p.parent.name for p in masks} == {"streetphotos", "bonn"}
    assert (root / "leftImg8bit" / "train" / "bonn" / "bonn_000001_000002_leftImg8bit.png").is_file()
    rows = [line.split("\t") for line in (root / "image_names.tsv").read_text().splitlines()]
    assert rows[0] == ["cityscapes_name", "image"] and sorted(r[1] for r in rows[1:]) == ["b.jpg", "frame 01.jpg"]
    own = dict(rows[1:])
    # the PNG is the JPEG's pixels, and QGN's Cityscapes reader (what `qgn train` uses) pairs them
    from qgn.data.cityscapes import CityscapesDataset

    dataset = CityscapesDataset(root)  # its default split, train, is the export's
    assert len(dataset) == 3
    for mask in masks:
        core = mask.name[: -len("_gtFine_labelIds.png")]
        source = project.images[0].path.parent / own.get(core, f"{core}.jpg")
        png = root / "leftImg8bit" / "train" / mask.parent.name / f"{core}_leftImg8bit.png"
        np.testing.assert_array_equal(np.asarray(Image.open(png)), np.asarray(Image.open(source).convert("RGB")))
        ids = read_label(mask)
        assert ids.shape == labels[source].shape
    # and `qgn import` reads the export back under the images' own names
    found = scan_dataset(root, images=project.images[0].path.parent)
    assert sorted(item.name for item in found.items) == sorted(p.path.stem for p in project.images)


def test_an_export_stopped_by_should_stop_finishes_what_it_wrote(project, tmp_path):
    """``should_stop`` (the dialog's Cancel) ends an export before the next image: the files of the
    images exported so far stay, COCO's JSON lists exactly those, and the rest are counted as not
    reached (as ``ImportReport.not_reached``)."""
    project, _labels = project
    steps = []
    written = export_project(project, tmp_path / "out", ["png", "coco"], lambda i, n, text: steps.append(i),
                             should_stop=lambda: len(steps) >= 1)
    assert (written.images, written.not_reached) == (3, 2)
    assert len(list((tmp_path / "out" / "png").glob("*.png"))) == 1
    (index,) = list((tmp_path / "out" / "coco").rglob("*.json"))
    assert len(json.loads(index.read_text())["images"]) == 1
    assert index in written


@pytest.mark.parametrize("mode", ["copy", "link"])
def test_cvat_export_puts_the_images_in_jpegimages_where_datumaro_and_cvat_find_them(project, tmp_path, mode):
    """``--include-images`` with ``cvat``: each image under ``JPEGImages/<stem><ext>``, where CVAT's
    own "Segmentation mask 1.1" export with images puts them (Datumaro voc_segmentation
    ``save_media``) and Datumaro's VOC reader looks (voc/base.py: ``JPEGImages``, matched by item
    id). Datumaro then reads each item with its image, so that its CVAT-for-images XML holds the
    image sizes and Datumaro reads that XML back; ``qgn import`` finds copied images without --images
    (links pointing out of the dataset it follows only where --images names their folder).
    The export ignored the option (no JPEGImages/: Datumaro's items had no image and its XML
    export of them could not be read back)."""
    pytest.importorskip("datumaro")
    import logging

    from datumaro.components.dataset import Dataset

    project, labels = project
    export_project(project, tmp_path / "out", ["cvat"], images=mode)
    root = tmp_path / "out" / "cvat"
    for image in project.images:
        placed = root / "JPEGImages" / image.path.name
        assert placed.read_bytes() == image.path.read_bytes() and placed.is_symlink() == (mode == "link")
    logging.getLogger().setLevel(logging.ERROR)
    dataset = Dataset.import_from(str(root), "voc_segmentation")
    by_id = {item.id: item for item in dataset}
    assert sorted(by_id) == sorted(image.path.stem for image in project.images)
    for image in project.images:
        media = by_id[image.path.stem].media
        np.testing.assert_array_equal(media.data[:, :, ::-1], np.asarray(Image.open(image.path)))  # BGR
    dataset.export(str(tmp_path / "xml"), "cvat", save_media=True)  # its reader needs the images
    back = {item.id: item.media.size for item in Dataset.import_from(str(tmp_path / "xml"), "cvat")}
    assert back == {image.path.stem: labels[image.path].shape for image in project.images}
    found = scan_dataset(root, images=None if mode == "copy" else project.images[0].path.parent)
    assert sorted(item.name for item in found.items) == sorted(p.path.stem for p in project.images)
    for item in found.items:
        image = next(im for im in project.images if im.path.stem == item.name)
        assert Path(item.image).read_bytes() == image.path.read_bytes()
        np.testing.assert_array_equal(item.read(CLASSES), labels[image.path])


@pytest.mark.parametrize("how", ["its annotation", "a later format"])
def test_a_reexport_that_fails_on_an_image_keeps_its_earlier_entry_in_every_index(project, tmp_path, how):
    """A second export into the same folder that fails on one image - its annotation became
    unreadable, or the last format (Label Studio) cannot place its image copy (a folder holds the
    name) after the others took the image and took it back - keeps that image in each index a tool
    reads (COCO's JSON, CVAT's default.txt, CamVid's list; Label Studio's tasks.json, where its copy
    is still there) with the earlier export's entry and files: each item reads back as its own image
    with the label it was first exported with, not the changed annotation the failed export held."""
    from qgn.data.synthetic import make_scene

    project, labels = project
    formats = ["coco", "cvat", "camvid", "labelstudio"]
    export_project(project, tmp_path / "out", formats, images="copy")
    first = {name: scan_dataset(tmp_path / "out" / name) for name in formats}
    broken = project.images[1]
    if how == "its annotation":
        project.annotation_path(broken).write_bytes(b"not a quadtree")
    else:
        project.save_annotation(broken, make_scene(999, 48, 64)[1].astype(np.uint8))  # what it would write now
        copy = tmp_path / "out" / "labelstudio" / "images" / f"{broken.path.stem}.jpg"
        copy.unlink()
        copy.mkdir()
        (copy / "x").write_text("a folder where Label Studio's copy goes")
    errors: list[str] = []
    export_project(project, tmp_path / "out", formats, errors=errors, images="copy")
    assert len(errors) == 1 and errors[0].startswith(f"{broken.key}: failed")
    for name in formats:
        dataset = scan_dataset(tmp_path / "out" / name)
        expected = sorted(i.name for i in first[name].items)
        if name == "labelstudio" and how == "a later format":
            expected.remove(broken.path.stem)  # its copy is gone: a folder stands there
        assert sorted(i.name for i in dataset.items) == expected and len(dataset.items) >= 2, name
        for item in dataset.items:
            image = next(im for im in project.images if im.path.stem == item.name)  # the item's own image
            assert item.image is not None and item.image.read_bytes() == image.path.read_bytes(), (name, item.name)
            label = item.read(dataset.file_classes or CLASSES)
            np.testing.assert_array_equal(label, labels[image.path], err_msg=f"{name}: {item.name}")


def test_a_later_format_failing_on_an_image_leaves_the_earlier_export_of_it_in_every_format(project, tmp_path):
    """Every format exported at once, again into the same folder, the image ``b`` annotated anew;
    the last format (Label Studio) fails on ``b`` after all the others wrote its new files over the
    first export's. They take ``b`` back by putting the first export's files back: not one file of
    the first export is lost or holds ``b``'s new annotation (only the indexes are rewritten), and
    nothing is left beside them (no file set aside for the undo). (Here b is Cityscapes' only
    renamed image after its frame; a frame freed with images after it:
    ``test_a_cityscapes_image_taken_back_keeps_its_frame_for_the_files_put_back``. Where no hard
    link can be made nothing is put back: ``test_without_hard_links_a_reexport_copies_no_file_for_an_undo``.)"""
    import hashlib

    from qgn.data.synthetic import make_scene
    from qgn.formats import FORMATS

    project, _labels = project
    formats = [name for name in FORMATS if name != "labelstudio"] + ["labelstudio"]
    out = tmp_path / "out"
    export_project(project, out, formats, images="copy")

    def files() -> dict[Path, str]:
        return {p.relative_to(out): hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*") if p.is_file()}

    before = files()
    broken = project.images[1]
    project.save_annotation(broken, make_scene(999, 48, 64)[1].astype(np.uint8))
    blocked = Path("labelstudio", "images", f"{broken.path.stem}.jpg")
    (out / blocked).unlink()
    (out / blocked).mkdir()
    (out / blocked / "x").write_text("a folder where Label Studio's copy goes")
    errors: list[str] = []
    export_project(project, out, formats, errors=errors, images="copy")
    assert len(errors) == 1 and errors[0].startswith(f"{broken.key}: failed")
    after = files()
    assert set(after) - set(before) == {blocked / "x"}  # nothing left behind
    assert set(before) - set(after) == {blocked}
    indexes = {Path("camvid/default.txt"), Path("cityscapes/image_names.tsv"), Path("fiftyone/data.json"),
               Path("coco/annotations/instances_default.json"), Path("labelstudio/tasks.json")}
    assert {p for p in before if p in after and before[p] != after[p]} <= indexes


@pytest.fixture
def same_names(tmp_path):
    """Three annotated images, two of them named a.jpg (in two folders): COCO names the second a-2.jpg."""
    from qgn.data.synthetic import make_scene

    paths, labels = [], {}
    for i, rel in enumerate(["p/a.jpg", "p/b.jpg", "q/a.jpg"]):
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        image, label = make_scene(300 + i, 48, 64)
        Image.fromarray(image).save(tmp_path / rel, quality=95)
        paths.append(tmp_path / rel)
        labels[tmp_path / rel] = label.astype(np.uint8)
    project = Project.create(tmp_path / "project", paths, CLASSES)
    for image in project.images:
        project.save_annotation(image, labels[image.path])
    return project, labels


def coco_images(root: Path) -> list[tuple[int, str]]:
    (index,) = list(root.rglob("*.json"))
    return [(e["id"], e["file_name"]) for e in json.loads(index.read_text())["images"]]


def test_a_coco_image_taken_back_frees_its_name_but_two_images_never_share_one(same_names, tmp_path):
    """COCO takes p/b back (its image copy cannot be placed: a folder holds the name); q/a.jpg,
    after it, is still named a-2.jpg beside p/a's a.jpg - before, the undo left the writer's names
    as whole file names where it compares stems, and both were listed (and copied) as a.jpg."""
    project, labels = same_names
    root = tmp_path / "out" / "coco"
    (root / "images" / "default" / "b.jpg").mkdir(parents=True)
    (root / "images" / "default" / "b.jpg" / "x").write_text("in the way")
    errors: list[str] = []
    export_project(project, tmp_path / "out", ["coco"], errors=errors, images="copy")
    assert len(errors) == 1 and errors[0].startswith("b: failed")
    assert coco_images(root) == [(1, "a.jpg"), (2, "a-2.jpg")]
    for name, path in [("a.jpg", tmp_path / "p" / "a.jpg"), ("a-2.jpg", tmp_path / "q" / "a.jpg")]:
        assert (root / "images" / "default" / name).read_bytes() == path.read_bytes()


def test_a_coco_reexport_keeps_only_the_earlier_entries_of_the_images_it_failed_on(same_names, tmp_path):
    """A COCO re-export fails on p/b (COCO takes it back) and on q/a (exported as a-2.jpg; its
    annotation unreadable): the JSON lists p/a once (written now), keeps q/a's earlier a-2.jpg, and
    not p/b's (its copy is gone) - before, p/a's earlier entry was kept too (q/a's image stem is a),
    and a.jpg was listed twice."""
    from coco_reference import pycocotools_labels

    project, labels = same_names
    root = tmp_path / "out" / "coco"
    export_project(project, tmp_path / "out", ["coco"], images="copy")
    assert [name for _, name in coco_images(root)] == ["a.jpg", "b.jpg", "a-2.jpg"]
    blocked = root / "images" / "default" / "b.jpg"
    blocked.unlink()
    blocked.mkdir()
    (blocked / "x").write_text("in the way")
    project.annotation_path(project.images[2]).write_bytes(b"not a quadtree")
    errors: list[str] = []
    export_project(project, tmp_path / "out", ["coco"], errors=errors, images="copy")
    assert len(errors) == 2
    assert coco_images(root) == [(1, "a.jpg"), (2, "a-2.jpg")]
    (index,) = list(root.rglob("*.json"))
    read = pycocotools_labels(index, CLASSES)
    np.testing.assert_array_equal(read["a"], labels[tmp_path / "p" / "a.jpg"])
    np.testing.assert_array_equal(read["a-2"], labels[tmp_path / "q" / "a.jpg"])


def test_a_cvat_reexport_that_fails_on_an_image_keeps_it_in_default_txt(project, tmp_path):
    """CVAT's default.txt grows an image at a time; an image whose re-export fails in the CVAT
    writer itself (its image copy cannot be placed: a folder holds the name) keeps the line an
    earlier export gave it, its masks being still there - it was taken off the list before."""
    project, _labels = project
    export_project(project, tmp_path / "out", ["cvat"], images="copy")
    root = tmp_path / "out" / "cvat"
    listed = (root / "ImageSets" / "Segmentation" / "default.txt").read_text().split("\n")
    first = sorted(i.name for i in scan_dataset(root).items)
    broken = project.images[1]
    copy = root / "JPEGImages" / f"{broken.key}{broken.path.suffix}"
    copy.unlink()
    copy.mkdir()
    (copy / "x").write_text("a folder where the copy goes")
    errors: list[str] = []
    export_project(project, tmp_path / "out", ["cvat"], errors=errors, images="copy")
    assert len(errors) == 1 and errors[0].startswith(f"{broken.key}: failed")
    assert (root / "ImageSets" / "Segmentation" / "default.txt").read_text().split("\n") == listed
    dataset = scan_dataset(root)
    assert sorted(i.name for i in dataset.items) == first and len(first) == 3


def test_a_reexport_stopped_early_keeps_the_earlier_entries_of_the_images_not_reached(project, tmp_path):
    """Cancel during a second export into the same folder: the images it did not reach keep the
    entries of the first export in COCO's JSON (their annotations with them, ids renumbered so that
    none repeats), instead of the index listing only the image written before the cancel."""
    from coco_reference import pycocotools_labels

    project, labels = project
    export_project(project, tmp_path / "out", ["coco"], images="copy")
    (index,) = list((tmp_path / "out" / "coco").rglob("*.json"))
    first = json.loads(index.read_text())
    steps = []
    written = export_project(project, tmp_path / "out", ["coco"], lambda i, n, text: steps.append(i),
                             images="copy", should_stop=lambda: len(steps) >= 1)
    assert written.not_reached == 2
    doc = json.loads(index.read_text())
    assert sorted(e["file_name"] for e in doc["images"]) == sorted(e["file_name"] for e in first["images"])
    assert sorted(e["id"] for e in doc["images"]) == [1, 2, 3]
    assert sorted(a["id"] for a in doc["annotations"]) == list(range(1, len(first["annotations"]) + 1))
    by_name = {e["file_name"]: e["id"] for e in doc["images"]}
    old_name = {e["id"]: e["file_name"] for e in first["images"]}
    assert sorted((by_name[old_name[a["image_id"]]], a["category_id"], a["segmentation"]["counts"])
                  for a in first["annotations"]) == \
        sorted((a["image_id"], a["category_id"], a["segmentation"]["counts"]) for a in doc["annotations"])
    read = pycocotools_labels(index, CLASSES)  # COCO's own API: every image with its own annotations
    assert sorted(read) == sorted(path.stem for path in labels)
    assert all(np.array_equal(read[path.stem], label) for path, label in labels.items())
def test_a_coco_image_kept_takes_its_own_earlier_entry_not_one_named_as_its_image_file(same_names, tmp_path):
    """An export that writes nothing of q/a (exported earlier as a-2.jpg) keeps a-2.jpg only: the
    earlier a.jpg, named as q/a's image file is, is p/a's (not in this export at all)."""
    from qgn.formats import FORMATS

    project, _labels = same_names
    root = tmp_path / "out" / "coco"
    export_project(project, tmp_path / "out", ["coco"], images="copy")
    writer = FORMATS["coco"].open_writer(CLASSES, root, images="copy")
    writer.keep("a-2", tmp_path / "q" / "a.jpg")
    writer.finish()
    assert coco_images(root) == [(1, "a-2.jpg")]


class _CountedIterations(list):
    """A list that counts the times it is walked."""

    walks = 0

    def __iter__(self):
        type(self).walks += 1
        return super().__iter__()


def test_coco_finds_the_earlier_entries_of_many_images_not_written_in_one_walk(tmp_path):
    """A re-export cancelled after its first image keeps the earlier entries of the N others: the
    earlier entries are looked up by name from tables built once - before, each image not written
    walked every earlier entry again (N x N: 25 s in ``finish`` for 5,000 images)."""
    from qgn.formats import FORMATS

    writer = FORMATS["coco"].open_writer(CLASSES, tmp_path / "coco", images=None)
    earlier = _CountedIterations({"id": i + 1, "file_name": f"img{i:03d}.jpg", "width": 4, "height": 4}
                                 for i in range(200))
    for i in range(200):
        writer.keep(f"img{i:03d}", tmp_path / f"img{i:03d}.jpg")
    _CountedIterations.walks = 0
    kept = writer._earlier_entries(earlier)
    assert [e["id"] for e in kept] == list(range(1, 201))
    assert _CountedIterations.walks <= 1


def test_coco_undo_frees_the_names_of_the_entries_it_takes_back_only(tmp_path, monkeypatch):
    """An undo frees the stems of the entries it takes back, without making every other entry's
    stem again (before: each undo made N stems, quadratic in an export taking back many images);
    the name freed is free and the others are still taken."""
    from qgn.formats import FORMATS, ExportItem
    from qgn.formats import coco

    writer = FORMATS["coco"].open_writer(CLASSES, tmp_path / "coco", images=None)
    label = np.zeros((4, 4), np.uint8)
    for i in range(100):
        writer.add(ExportItem(f"img{i:03d}", label, None))
    mark = writer.mark()
    item = ExportItem("taken", label, tmp_path / "taken.jpg")
    writer.add(item)
    made = []
    real_path = coco.Path
    monkeypatch.setattr(coco, "Path", lambda *a: made.append(a) or real_path(*a))
    writer.undo(mark, item, [])
    assert len(made) <= 2
    monkeypatch.undo()
    assert "taken" not in writer._names and {f"img{i:03d}" for i in range(100)} <= writer._names
    writer.add(ExportItem("again", label, tmp_path / "taken.jpg"))
    writer.add(ExportItem("other", label, tmp_path / "img001.jpg"))  # another entry's name: renamed
    assert [e["file_name"] for e in writer.entries[-2:]] == ["taken.jpg", "other.jpg"]


def _block_labelstudio_copy(out: Path, stem: str) -> None:
    """A folder where Label Studio's copy of ``stem``.jpg goes: the last format fails on that image."""
    blocked = out / "labelstudio" / "images" / f"{stem}.jpg"
    blocked.unlink()
    blocked.mkdir()
    (blocked / "x").write_text("in the way")


def test_taking_an_image_back_never_leaves_its_path_without_a_file(project, tmp_path, monkeypatch):
    """The undo of an image whose earlier files a re-export replaced renames each earlier file
    straight over the new one: at each rename the new file still stands there, so that a kill
    in between leaves the new file or the earlier one - before, the new file was deleted first and
    the earlier one, killed then, was left only under its set-aside name (a temporary's, which the
    next export's clean-up deletes)."""
    import qgn.fileio as fileio
    from qgn.data.synthetic import make_scene

    project, _labels = project
    out = tmp_path / "out"
    export_project(project, out, ["coco", "cvat", "labelstudio"], images="copy")
    broken = project.images[1]
    project.save_annotation(broken, make_scene(999, 48, 64)[1].astype(np.uint8))
    _block_labelstudio_copy(out, broken.path.stem)
    renames, real_replace = [], os.replace

    def replace(src, dst, *args, **kwargs):
        if fileio.SET_ASIDE in Path(src).name:
            renames.append((Path(dst), os.path.lexists(dst)))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(fileio.os, "replace", replace)
    errors: list[str] = []
    export_project(project, out, ["coco", "cvat", "labelstudio"], errors=errors, images="copy")
    assert len(errors) == 1
    assert {dst.name for dst, _ in renames} >= {"b.jpg", "b.png"}
    assert all(there for _, there in renames), renames


def test_taking_an_image_back_leaves_a_file_another_export_wrote_since(project, tmp_path, monkeypatch):
    """Two exports into one folder: after export A wrote b's new CVAT mask, another (B) writes b's
    mask anew and finishes; then A's Label Studio fails on b. A's undo leaves B's mask where it is
    - before, it put the first export's mask back over B's."""
    from qgn.data.synthetic import make_scene
    from qgn.formats.labelstudio import LabelStudioWriter

    project, _labels = project
    out = tmp_path / "out"
    export_project(project, out, ["cvat", "labelstudio"], images="copy")
    mask = out / "cvat" / "SegmentationClass" / "b.png"
    first = mask.read_bytes()
    project.save_annotation(project.images[1], make_scene(999, 48, 64)[1].astype(np.uint8))
    theirs = b"another export's mask of b"
    original = LabelStudioWriter.add

    def add(self, item):
        if item.name == "b":
            assert mask.read_bytes() != first  # A's new mask
            other = mask.with_name("other.tmp")  # B's atomic write: a new file renamed over it
            other.write_bytes(theirs)
            os.rename(other, mask)
            raise OSError("Label Studio cannot copy b")
        return original(self, item)

    monkeypatch.setattr(LabelStudioWriter, "add", add)
    errors: list[str] = []
    export_project(project, out, ["cvat", "labelstudio"], errors=errors, images="copy")
    assert len(errors) == 1, errors
    assert mask.read_bytes() == theirs
    assert not [p for p in out.rglob("*") if "aside" in p.name]


def test_an_image_of_a_long_name_taken_back_keeps_its_earlier_files(tmp_path):
    """An image whose file name is 237 bytes: the second name its earlier files are kept under is
    short (``.aside.<random>.tmp``), so they are kept and put back when Label Studio fails on it -
    before, ``.<name>.aside.<random>.tmp`` passed the 255 bytes a name may have, nothing was kept,
    and the undo deleted CVAT's earlier mask and image."""
    from qgn.data.synthetic import make_scene

    long = "b" * 233
    project = synthetic_project(tmp_path / "project", tmp_path / "imgs", ["a.jpg", f"{long}.jpg"])
    out = tmp_path / "out"
    export_project(project, out, ["cvat", "labelstudio"], images="copy")
    cvat = [out / "cvat" / "SegmentationClass" / f"{long}.png", out / "cvat" / "JPEGImages" / f"{long}.jpg"]
    before = [p.read_bytes() for p in cvat]
    project.save_annotation(project.images[1], make_scene(99, 48, 64)[1].astype(np.uint8))
    _block_labelstudio_copy(out, long)
    errors: list[str] = []
    export_project(project, out, ["cvat", "labelstudio"], errors=errors, images="copy")
    assert len(errors) == 1
    assert [p.read_bytes() if p.exists() else None for p in cvat] == before


def test_without_hard_links_a_reexport_copies_no_file_for_an_undo(project, tmp_path, monkeypatch):
    """Where no hard link can be made (exFAT, FAT32, some SMB shares) the files a re-export replaces
    are not copied aside for an undo that rarely happens (before: every file, a re-export 2.2 times
    slower); an image taken back there loses its earlier files, as before the set-asides, and
    nothing is left beside them."""
    import errno
    import shutil

    from qgn.data.synthetic import make_scene

    project, _labels = project
    out = tmp_path / "out"
    export_project(project, out, ["coco", "cvat", "labelstudio"], images="copy")

    def no_link(*args, **kwargs):
        raise OSError(errno.EPERM, "no hard links here")

    copies, real_copy2 = [], shutil.copy2
    monkeypatch.setattr(os, "link", no_link)
    monkeypatch.setattr(shutil, "copy2", lambda *a, **k: copies.append(a) or real_copy2(*a, **k))
    export_project(project, out, ["coco", "cvat", "labelstudio"], images="copy")
    assert copies == []
    broken = project.images[1]
    project.save_annotation(broken, make_scene(999, 48, 64)[1].astype(np.uint8))
    _block_labelstudio_copy(out, broken.path.stem)
    errors: list[str] = []
    export_project(project, out, ["coco", "cvat", "labelstudio"], errors=errors, images="copy")
    assert len(errors) == 1 and copies == []
    assert not (out / "cvat" / "SegmentationClass" / "b.png").exists()  # taken back, not kept
    assert not [p for p in out.rglob("*") if "aside" in p.name]


def test_a_cityscapes_image_taken_back_keeps_its_frame_for_the_files_put_back(tmp_path):
    """Cityscapes renames a.jpg, b.jpg, c.jpg to frames 0, 1, 2. A re-export takes b back (Label
    Studio, after it, fails on b) and puts b's earlier files back under frame 1: that frame stays
    b's - c is written under frame 2 as before, and image_names.tsv keeps b's row. Before, the undo
    freed frame 1: c was written over b's earlier files (b's gone, c under two frames) and the
    list dropped b."""
    import hashlib

    from qgn.data.synthetic import make_scene

    (tmp_path / "imgs").mkdir()
    paths = []
    for i, name in enumerate(["a.jpg", "b.jpg", "c.jpg"]):
        Image.fromarray(make_scene(200 + i, 48, 64)[0]).save(tmp_path / "imgs" / name, quality=95)
        paths.append(tmp_path / "imgs" / name)
    project = Project.create(tmp_path / "project", paths, CLASSES)
    for i, image in enumerate(project.images):
        project.save_annotation(image, make_scene(200 + i, 48, 64)[1].astype(np.uint8))
    out, formats = tmp_path / "out", ["cityscapes", "labelstudio"]
    export_project(project, out, formats, images="copy")
    root = out / "cityscapes"

    def files() -> dict[str, str]:
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in (root / "gtFine").rglob("*") if p.is_file()}

    before, listed = files(), (root / "image_names.tsv").read_text()
    assert "imgs_000000_000001\tb.jpg" in listed.split("\n")
    project.save_annotation(project.images[1], make_scene(999, 48, 64)[1].astype(np.uint8))
    _block_labelstudio_copy(out, "b")
    errors: list[str] = []
    export_project(project, out, formats, errors=errors, images="copy")
    assert len(errors) == 1 and errors[0].startswith("b: failed")
    assert files() == before
    assert (root / "image_names.tsv").read_text() == listed


def test_camvid_and_label_studio_keep_only_the_failed_images_own_earlier_entry(same_names, tmp_path):
    """A re-export of the images marked done (p/b and q/a; p/a is not in it at all) fails on q/a
    (exported as a-2): CamVid's list and Label Studio's tasks keep q/a's own earlier entry (a-2)
    only, as COCO's JSON does - before, they also kept p/a's earlier ``a``, named as q/a's image
    file is."""
    project, _labels = same_names
    out, formats = tmp_path / "out", ["coco", "camvid", "labelstudio"]
    export_project(project, out, formats, images="copy")
    project.set_done(project.images[1], True)
    project.set_done(project.images[2], True)
    project.annotation_path(project.images[2]).write_bytes(b"not a quadtree")
    errors: list[str] = []
    export_project(project, out, formats, errors=errors, images="copy", only_done=True)
    assert len(errors) == 1 and errors[0].startswith("a-2: failed")
    assert [name for _, name in coco_images(out / "coco")] == ["b.jpg", "a-2.jpg"]
    for name in ["camvid", "labelstudio"]:
        assert sorted(item.name for item in scan_dataset(out / name).items) == ["a-2", "b"], name


def test_a_file_set_aside_and_removed_with_nothing_written_in_its_place_is_put_back(tmp_path):
    """``place_image``'s link mode sets the earlier file aside and removes it before it makes the
    link; where the link and the copy then fail, nothing the block wrote stands there, and taking
    the block back puts the earlier file back (not only an earlier file under a new one)."""
    from qgn.fileio import keeping_replaced, set_aside_replaced

    path = tmp_path / "x.jpg"
    path.write_bytes(b"earlier")
    with keeping_replaced() as replaced:
        set_aside_replaced(path)
        path.unlink()
    replaced.take_back()
    assert path.read_bytes() == b"earlier" and os.listdir(tmp_path) == ["x.jpg"]
