"""Hostile inputs of the interop formats found by the third sweep (import/export of COCO, Label
Studio, CVAT, labelme, FiftyOne, VOC): memory follows one file's honest content, not the sum of a
folder's; nothing is read or written outside the folders named."""
from __future__ import annotations

import base64
import json
import tracemalloc

import pytest

from qgn.formats import scan_dataset

from hostile_cases import coco_doc, image, labelme_doc, labelstudio_doc, write_json_dataset


def test_a_labelme_folder_holds_one_document_at_a_time(tmp_path):
    """labelme embeds each image in its JSON by default (``imageData``): the scan held every parsed
    document until the import ended, and the detection five (100 files of 4 MB peaked at 434 MB;
    now 72 MB). 24 files of 1 MB each: the peak stays near a few of them (26 MB before)."""
    blob = base64.b64encode(bytes(750_000)).decode()
    for i in range(24):
        doc = labelme_doc(f"a{i}")
        doc["imageData"] = blob
        image(tmp_path / f"a{i}.png")
        (tmp_path / f"a{i}.json").write_text(json.dumps(doc))
    tracemalloc.start()
    try:
        dataset = scan_dataset(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert dataset.format == "labelme" and len(dataset.items) == 24
    assert peak < 6_000_000, peak  # about 4 MB: a document kept by the detection, one read
    assert all(item.read(dataset.file_classes).shape == (8, 12) for item in dataset.items)


@pytest.mark.parametrize("in_file, on_disk", [("e\u0301", "\u00e9"), ("\u00e9", "e\u0301")])
def test_an_image_name_whose_accents_are_encoded_otherwise_on_disk_is_found(tmp_path, run_cli, in_file, on_disk):
    """A COCO file_name "é.png" written with a combining accent (macOS's spelling) and the image on
    disk with one character (or the other way round) was "no image found"."""
    doc = coco_doc()
    doc["images"][0]["file_name"] = f"{in_file}.png"
    root = write_json_dataset(tmp_path / "coco", "coco", doc)
    image(root / "images" / f"{on_disk}.png")
    code, out, err = run_cli("import", root, "--project", tmp_path / "p")
    assert code == 0 and "imported 2 of 2" in out, out + err


def _many_vertices(fmt: str, count: int):
    """A document of ``fmt`` whose first image (12×8) has a polygon of ``count`` vertices, all but
    three on one point: no outline length or drawing work to refuse it by, only its count."""
    if fmt == "coco":
        doc = coco_doc()
        doc["annotations"][0]["segmentation"] = [[0.0, 0.0, 11.0, 0.0, 11.0, 7.0] + [5.0, 3.0] * (count - 3)]
    elif fmt == "labelme":
        doc = labelme_doc()
        doc["shapes"][0]["points"] = [[0, 0], [11, 0], [11, 7]] + [[5, 3]] * (count - 5)  # and a 2-point rectangle
    else:
        doc = labelstudio_doc()
        doc[0]["annotations"][0]["result"].append({
            "id": "p", "type": "polygonlabels", "from_name": "tag", "to_name": "image", "original_width": 12,
            "original_height": 8, "value": {"points": [[0, 0], [90, 0], [90, 80]] + [[40, 40]] * (count - 3),
                                            "polygonlabels": ["road"]}})
    return doc


def imported_at_the_bound_refused_past_it(tmp_path, run_cli, fmt: str, document) -> None:
    """``document(fmt, count)`` with 65,920 vertices on its 12×8 image (the bound) imports; 65,921 are refused."""
    for name, count in (("ok", 65_920), ("bad", 65_921)):
        root = write_json_dataset(tmp_path / name, fmt, document(fmt, count))
        src = root / "tasks.json" if fmt == "labelstudio" else root
        code, out, err = run_cli("import", src, "--project", tmp_path / f"p-{name}")
        if name == "ok":
            assert "imported 1 of 1" in out or "imported 2 of 2" in out, out + err
        else:
            assert code == 2 and "its polygons have 65921 vertices, more than any outline of a 12×8 image needs " \
                "(65920); refusing a file built to exhaust memory" in out, out + err


@pytest.mark.parametrize("fmt", ["coco", "labelme", "labelstudio"])
def test_polygons_with_more_vertices_than_an_image_can_need_are_refused_before_drawing(tmp_path, run_cli, fmt):
    """A 100 MB COCO file of one 10^7-vertex polygon on a 12×8 image was drawn (3 GB, 36 s) and
    imported: its vertices on one point have no length and cross no row, so neither the outline
    nor the drawing-work bound refused it. A 12×8 image's polygons may have 4·96 + 65536 vertices."""
    imported_at_the_bound_refused_past_it(tmp_path, run_cli, fmt, _many_vertices)


def _vertices_in_two_polygons(fmt: str, count: int):
    """``_many_vertices``'s document with its ``count`` vertices split between two polygons of the first image."""
    first = count // 2
    if fmt == "coco":
        doc = coco_doc()
        doc["annotations"][0]["segmentation"] = [[0.0, 0.0, 11.0, 0.0, 11.0, 7.0] + [5.0, 3.0] * (first - 3)]
        doc["annotations"].append({"id": 3, "image_id": 1, "category_id": 2, "iscrowd": 0,
                                   "segmentation": [[0.0, 0.0, 11.0, 7.0, 0.0, 7.0] + [5.0, 3.0] * (count - first - 3)]})
    elif fmt == "labelme":
        doc = labelme_doc()
        doc["shapes"][0]["points"] = [[0, 0], [11, 0], [11, 7]] + [[5, 3]] * (first - 5)  # and a 2-point rectangle
        doc["shapes"].append({"label": "road", "points": [[0, 0], [11, 7], [0, 7]] + [[5, 3]] * (count - first - 3),
                              "shape_type": "polygon", "group_id": None, "flags": {}})
    else:
        doc = labelstudio_doc()
        for k, n in enumerate((first, count - first)):
            doc[0]["annotations"][0]["result"].append({
                "id": f"p{k}", "type": "polygonlabels", "from_name": "tag", "to_name": "image", "original_width": 12,
                "original_height": 8, "value": {"points": [[0, 0], [90, 0], [90, 80]] + [[40, 40]] * (n - 3),
                                                "polygonlabels": ["road"]}})
    return doc


@pytest.mark.parametrize("fmt", ["coco", "labelme", "labelstudio"])
def test_the_vertex_bound_counts_every_polygon_of_an_image(tmp_path, run_cli, fmt):
    """The bound is an image's: Label Studio checked each region alone, so four regions of 65,003
    vertices on one 12×8 image (bound 65,920) were drawn and imported. Two polygons of 65,921 in all
    are refused in every format, 65,920 in all imported."""
    imported_at_the_bound_refused_past_it(tmp_path, run_cli, fmt, _vertices_in_two_polygons)


def test_label_studio_bounds_the_drawing_work_of_all_an_image_s_regions(tmp_path):
    """The drawing-work bound was checked per Label Studio region (COCO and labelme sum an image's
    polygons): two zigzags of 30 full-height edges on a 1×100000 image cross 2·30·100001 rows
    = 6.0e6 > its bound 8·10^5 + 2^22 = 5.0e6, each alone 3.0e6 under it."""
    from qgn.classes import ClassSet
    from qgn.formats.guards import POLYGON_WORK_PER_PIXEL, POLYGON_WORK_SLACK
    from qgn.formats.labelstudio import annotation_label

    def zigzag(k):
        return {"id": f"z{k}", "type": "polygonlabels", "original_width": 1, "original_height": 100_000,
                "value": {"points": [[50, 0 if i % 2 else 100] for i in range(30)], "polygonlabels": ["road"]}}

    classes = ClassSet(("road", "sky"), ((128, 64, 128), (70, 130, 180)), 255)
    limit = POLYGON_WORK_PER_PIXEL * 100_000 + POLYGON_WORK_SLACK
    assert 30 * 100_001 <= limit < 60 * 100_001
    assert annotation_label({"result": [zigzag(0)]}, classes, "t").shape == (100_000, 1)
    with pytest.raises(ValueError, match=f"cross the 100000 pixel rows 6000060 times.*\\({limit}\\)"):
        annotation_label({"result": [zigzag(0), zigzag(1)]}, classes, "t")


def test_fiftyone_mask_targets_naming_one_value_twice_are_refused(tmp_path, run_cli):
    """``{"1": "a", "01": "b"}`` named mask value 1 twice: the last silently won (class 'b')."""
    import numpy as np

    from qgn.classes import ClassSet
    from qgn.formats import ExportItem, export_dataset

    image(tmp_path / "photo" / "a.png")
    export_dataset([ExportItem("a", np.zeros((8, 12), np.uint8), tmp_path / "photo" / "a.png")],
                   ClassSet.generic(2, 255), tmp_path / "out", ["fiftyone"], images="copy")
    root = tmp_path / "out" / "fiftyone"
    (root / "mask_targets.json").write_text(json.dumps({"1": "a", "01": "b"}))
    code, out, err = run_cli("import", root, "--project", tmp_path / "p")
    assert code == 2 and err == (f"qgn import: error: {root / 'mask_targets.json'}: mask value '01' is value 1 again "
                                 "(named 'a' already); name each value once\n"), err
    assert not (tmp_path / "p").exists()


def test_the_pixels_an_image_s_masks_cover_are_bounded_before_they_are_painted(tmp_path, run_cli):
    """Each COCO RLE was decoded to a mask of its whole image: 400 full-size masks of a 1000×1000
    image (a 50 KB file) took 1.5 s, a 100 MB file of them hours, whatever the size of each. Masks
    now cost the pixels they cover, bounded per image (16 per pixel + 2^22): 20 full masks and one
    of 194,304 pixels (the bound, 20,194,304) import; one pixel more is refused."""
    from PIL import Image

    side = 1000
    for name, extra in (("ok", 194_304), ("bad", 194_305)):
        root = tmp_path / name
        (root / "annotations").mkdir(parents=True)
        (root / "images").mkdir()
        Image.new("RGB", (side, side)).save(root / "images" / "a.png")
        full = {"size": [side, side], "counts": [0, side * side]}
        anns = [{"id": i + 1, "image_id": 1, "category_id": 1, "iscrowd": 1, "segmentation": full} for i in range(20)]
        anns.append({"id": 21, "image_id": 1, "category_id": 2, "iscrowd": 1,
                     "segmentation": {"size": [side, side], "counts": [7, extra, side * side - 7 - extra]}})
        doc = {"images": [{"id": 1, "file_name": "a.png", "width": side, "height": side}], "annotations": anns,
               "categories": [{"id": 1, "name": "sky"}, {"id": 2, "name": "road"}]}
        (root / "annotations" / "instances_default.json").write_text(json.dumps(doc))
        code, out, err = run_cli("import", root, "--project", tmp_path / f"p-{name}")
        if name == "ok":
            assert code == 0 and "imported 1 of 1" in out, out + err
        else:
            assert code == 2 and "its masks cover 20194305 pixels in all, more than any annotation of a 1000×1000 " \
                "image needs (20194304: each pixel 16 times); refusing a file built to take hours to decode" in out, \
                out + err


def test_masks_painted_by_their_runs_are_the_masks_decoded_whole(tmp_path):
    """The reader paints each annotation's runs (RLE and polygon, a void one clearing what others
    covered); the same label as painting decode_rle's and polygon_mask's whole masks in order."""
    import numpy as np

    from qgn.classes import ClassSet
    from qgn.formats.coco import decode_rle, polygon_mask, rle_counts

    rng = np.random.default_rng(3)
    h, w = 37, 53
    doc = coco_doc()
    doc["images"] = [{"id": 1, "file_name": "a.png", "width": w, "height": h}]
    doc["categories"].append({"id": 4, "name": "background"})
    anns, expected, covered = [], np.zeros((h, w), np.uint8), np.zeros((h, w), bool)
    for i in range(40):
        category = int(rng.integers(1, 5))
        if i % 3:
            mask = rng.random((h, w)) < rng.choice([0.02, 0.5, 0.98])
            if i % 5 == 0:
                mask[:] = False
                mask[3:30, 5:50] = True  # long runs: painted a slice each
            seg = {"size": [h, w], "counts": rle_counts(mask)}
            mask = decode_rle(seg, "t")
        else:
            xy = rng.uniform(-3, max(h, w) + 3, 12).round(1).tolist()
            seg = [xy]
            mask = polygon_mask([xy], h, w, "t")
        anns.append({"id": i + 1, "image_id": 1, "category_id": category, "iscrowd": 0, "segmentation": seg})
        if category == 4:
            covered[mask] = False
        else:
            expected[mask], covered[mask] = category - 1, True
    expected[~covered] = 255
    doc["annotations"] = anns
    root = write_json_dataset(tmp_path / "coco", "coco", doc)
    image(root / "images" / "a.png", (w, h))
    dataset = scan_dataset(root)
    label = dataset.items[0].read(ClassSet(("sky", "road", "car"), (), 255))
    assert np.array_equal(label, expected)


@pytest.mark.parametrize("fmt, key", [("coco", "categories"), ("coco", "id"), ("labelme", "label"),
                                      ("labelstudio", "brushlabels")])
def test_a_json_object_naming_a_key_twice_is_refused_naming_the_key(tmp_path, run_cli, fmt, key):
    """JSON readers keep the last of a key named twice: a second "categories" silently renamed every
    class, a second "id" moved an image's annotations. Refusing costs ~20 % of the parse."""
    doc = {"coco": coco_doc, "labelme": labelme_doc, "labelstudio": labelstudio_doc}[fmt]()
    root = write_json_dataset(tmp_path / fmt, fmt, doc)
    path = {"coco": root / "annotations" / "instances_default.json", "labelme": root / "a.json",
            "labelstudio": root / "tasks.json"}[fmt]
    text = path.read_text()
    if key == "categories":
        text = text[:-1] + ', "categories": [{"id": 1, "name": "road"}, {"id": 2, "name": "sky"}]}'
    else:
        first = f'"{key}": '
        at = text.index(first)
        end = text.index(", ", at) if key != "brushlabels" else text.index("]", at) + 1
        text = text[:end] + f", {text[at:end].replace('1', '2').replace('sky', 'road')}" + text[end:]
    path.write_text(text)
    code, out, err = run_cli("import", path if fmt == "labelstudio" else root, "--project", tmp_path / "p")
    said = f"{path}: an object names the key {key!r} twice (JSON readers keep one of the two silently); remove " \
        "one and import again"
    assert code == 2 and said in out + err, out + err
    assert not (tmp_path / "p").exists()
