"""Label Studio export and import without a server (#23): the export's labelling config matches its
tasks, images are copied and referenced as Local Files, annotations are not ground truth; the import
rasterises polygons and rectangles by pixel centres, passes over skipped annotations, takes the latest
of several and names every task it leaves out, and reads JSON-MIN."""
from __future__ import annotations

from functools import partial
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from qgn.classes import ClassSet
from qgn.formats import ExportItem, export_dataset
from qgn.formats import scan_dataset
from qgn.formats.labelstudio import encode_ls_rle, polygon_mask, rectangle_points
from sample_files import blocky_label, pixel_centres_inside

CLASSES = ClassSet(("road", "traffic sign", "sky"), ((128, 64, 128), (220, 220, 0), (70, 130, 180)), 255)
H, W = 24, 32


blocky = partial(blocky_label, h=H, w=W, classes=3, ignore=255, cell=4, void_cells=True)


def brush(mask, name, from_name="tag"):
    return {"from_name": from_name, "to_name": "image", "type": "brushlabels", "original_width": W,
            "original_height": H, "value": {"format": "rle", "rle": encode_ls_rle(mask), "brushlabels": [name]}}


def polygon(points, name):
    return {"from_name": "poly", "to_name": "image", "type": "polygonlabels", "original_width": W, "original_height": H,
            "value": {"points": [[x / W * 100, y / H * 100] for x, y in points], "polygonlabels": [name]}}


@pytest.fixture
def exported(tmp_path):
    images = []
    for i in range(2):
        Image.new("RGB", (W, H), (i * 40, 0, 0)).save(tmp_path / f"frame {i}.jpg")
        images.append(ExportItem(f"frame {i}", blocky(i), tmp_path / f"frame {i}.jpg"))
    export_dataset(images, CLASSES, tmp_path / "out", ["labelstudio"])
    return tmp_path / "out" / "labelstudio", images


def test_export_writes_a_config_its_tasks_match_and_references_copied_images(exported):
    root, items = exported
    config = ET.fromstring((root / "label_config.xml").read_text())
    brush_tag = config.find("BrushLabels")
    image_tag = config.find("Image")
    assert [label.get("value") for label in brush_tag] == list(CLASSES.names)
    assert [label.get("background") for label in brush_tag] == ["#804080", "#dcdc00", "#4682b4"]
    tasks = json.loads((root / "tasks.json").read_text())
    for task, item in zip(tasks, items):
        assert task["data"] == {image_tag.get("value")[1:]: f"/data/local-files/?d=images/frame%20{item.name[-1]}.jpg"}
        (annotation,) = task["annotations"]
        assert annotation["ground_truth"] is False and annotation["was_cancelled"] is False
        assert {(r["from_name"], r["to_name"]) for r in annotation["result"]} == {(brush_tag.get("name"),
                                                                                  image_tag.get("name"))}
        assert (root / "images" / f"{item.name}.jpg").read_bytes() == item.image.read_bytes()
    dataset = scan_dataset(root / "tasks.json")
    assert not dataset.warnings
    for source, item in zip(dataset.items, items):
        assert source.image == root / "images" / f"{item.name}.jpg"
        np.testing.assert_array_equal(source.read(CLASSES), item.label)


def test_export_without_an_image_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="a: no image to reference"):
        export_dataset([ExportItem("a", blocky(0))], CLASSES, tmp_path, ["labelstudio"])


def test_polygons_and_rectangles_fill_the_pixels_whose_centres_they_hold():
    points = [(3.0, 2.0), (28.5, 5.25), (20.0, 22.0), (1.7, 15.0)]
    np.testing.assert_array_equal(polygon_mask(points, H, W), pixel_centres_inside(points, H, W))
    star = [(16, 1), (20, 22), (2, 8), (30, 8), (12, 22)]  # self-intersecting: even-odd leaves the middle out
    np.testing.assert_array_equal(polygon_mask(star, H, W), pixel_centres_inside(star, H, W))
    box = {"x": 25.0, "y": 12.5, "width": 50.0, "height": 25.0}
    expected = np.zeros((H, W), bool)
    expected[3:9, 8:24] = True
    np.testing.assert_array_equal(polygon_mask(rectangle_points(box, H, W), H, W), expected)
    turned = polygon_mask(rectangle_points({**box, "rotation": 90}, H, W), H, W)  # about its top-left corner
    expected = np.zeros((H, W), bool)
    expected[3:19, 2:8] = True
    np.testing.assert_array_equal(turned, expected)


def test_import_passes_over_skips_takes_the_latest_and_names_what_it_leaves_out(tmp_path):
    Image.new("RGB", (W, H)).save(tmp_path / "a.png")
    for name in "bcdef":
        Image.new("RGB", (W, H)).save(tmp_path / f"{name}.png")
    sky = np.zeros((H, W), bool)
    sky[:8] = True
    tri = [(0.0, 24.0), (16.0, 8.0), (32.0, 24.0)]
    box = {"from_name": "box", "to_name": "image", "type": "rectanglelabels", "original_width": W, "original_height": H,
           "value": {"x": 50, "y": 50, "width": 25, "height": 25, "rectanglelabels": ["traffic sign"]}}
    tasks = [
        {"id": 1, "data": {"image": "a.png"}, "annotations": [
            {"id": 10, "was_cancelled": True, "result": []},
            {"id": 11, "result": [brush(sky, "sky"), polygon(tri, "road"), box, {"type": "choices", "value": {}}]}]},
        {"id": 2, "data": {"image": "b.png"}, "annotations": [
            {"id": 20, "created_at": "2026-01-01T10:00:00Z", "result": [brush(sky, "road")]},
            {"id": 21, "created_at": "2026-01-02T10:00:00Z", "result": [brush(sky, "sky")]}]},
        {"id": 3, "data": {"image": "c.png"}, "annotations": [], "predictions": [{"result": [brush(sky, "sky")]}]},
        {"id": 4, "data": {"image": "d.png"}},
        {"id": 5, "data": {"image": "e.png"}, "annotations": [{"id": 50, "was_cancelled": True, "result": []}]},
        {"id": 6, "data": {"image": "f.png"}, "annotations": [{"id": 60, "result": [{"type": "choices", "value": {}}]}]},
    ]
    (tmp_path / "export.json").write_text(json.dumps(tasks))
    dataset = scan_dataset(tmp_path / "export.json")
    assert [item.name for item in dataset.items] == ["a", "b"]
    expected = np.full((H, W), 255)
    expected[sky] = 2
    expected[pixel_centres_inside(tri, H, W)] = 0
    expected[12:18, 16:24] = 1
    np.testing.assert_array_equal(dataset.items[0].read(CLASSES), expected)
    np.testing.assert_array_equal(dataset.items[1].read(CLASSES), np.where(sky, 2, 255))
    text = "\n".join(dataset.warnings)
    assert "1 task(s) have predictions but no annotation, not imported: tasks 3" in text
    assert "1 task(s) have no annotation, not imported: tasks 4" in text
    assert "1 task(s) have only skipped (cancelled) annotations, not imported: tasks 5" in text
    assert "the latest was imported: 2 (took annotation 21, set aside 1)" in text
    assert "without brush, polygon or rectangle results, not imported: tasks 6" in text
    assert "2 result(s) of other kinds" in text


def test_json_min_is_read_and_other_json_refused_by_what_it_is(tmp_path):
    Image.new("RGB", (W, H)).save(tmp_path / "a.png")
    label = blocky(3)
    regions = [{k: v for k, v in brush(label == c, CLASSES.names[c])["value"].items()} | {"original_width": W,
                "original_height": H} for c in range(3)]
    records = [{"image": "/data/local-files/?d=images/a.png", "id": 7, "tag": regions, "annotator": 1,
                "annotation_id": 3, "created_at": "x", "updated_at": "x", "lead_time": 1.0}]
    (tmp_path / "min.json").write_text(json.dumps(records))
    dataset = scan_dataset(tmp_path / "min.json")
    assert "JSON-MIN" in dataset.description
    (item,) = dataset.items
    assert item.image == tmp_path / "a.png"
    np.testing.assert_array_equal(item.read(CLASSES), label)
    (tmp_path / "coco.json").write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    with pytest.raises(ValueError, match="is a COCO file, not a Label Studio export"):
        scan_dataset(tmp_path / "coco.json", "labelstudio")


def test_qgn_export_of_a_folder_of_qgt_writes_one_task_file(tmp_path):
    from qgn.quadtree.qgt import write_qgt
    from qgn.quadtree.quadtree import Quadtree

    (tmp_path / "labels" / "sub").mkdir(parents=True)
    (tmp_path / "images").mkdir()
    for i, rel in enumerate(["x", "sub/y", "sub/z"]):
        write_qgt(tmp_path / "labels" / f"{rel}.qgt", Quadtree.from_label(blocky(i), 3, 255), CLASSES)
        if rel != "sub/z":
            Image.new("RGB", (W, H)).save(tmp_path / "images" / f"{rel.split('/')[-1]}.png")
    run = subprocess.run([sys.executable, "-m", "qgn", "export", str(tmp_path / "labels"), "--format", "labelstudio",
                          "--out", str(tmp_path / "out"), "--images", str(tmp_path / "images")],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "z.qgt: z: no image to reference" in run.stderr
    tasks = json.loads((tmp_path / "out" / "tasks.json").read_text())
    assert [t["data"]["image"] for t in tasks] == ["/data/local-files/?d=images/y.png",
                                                   "/data/local-files/?d=images/x.png"]
    assert (tmp_path / "out" / "label_config.xml").is_file()
    items = scan_dataset(tmp_path / "out" / "tasks.json").items
    np.testing.assert_array_equal(items[1].read(CLASSES), blocky(0))


def test_a_size_the_image_does_not_have_is_refused_before_a_label_is_made(exported, tmp_path, monkeypatch):
    """A small tasks.json claiming 8000×8000 results made an (8000, 8000) int64 label (512 MB)
    before anything compared that size with the image's: now the import's header check refuses it."""
    import qgn.formats.labelstudio as ls
    from qgn.project_import import import_into_project

    root, _ = exported
    tasks = json.loads((root / "tasks.json").read_text())
    for result in tasks[0]["annotations"][0]["result"]:
        result["original_width"] = result["original_height"] = 8000
    (root / "tasks.json").write_text(json.dumps(tasks))
    made = []
    monkeypatch.setattr(ls, "annotation_label", lambda *a, **k: made.append(a) or np.zeros((H, W), np.int64))
    report = import_into_project(root, tmp_path / "p", "labelstudio")
    assert [why for _, why in report.skipped] and "claims 8000×8000 pixels" in report.skipped[0][1]
    assert len(made) == 1 and len(report.imported) == 1  # only the other task's label was made


def test_the_labelling_config_beside_the_tasks_gives_a_new_project_its_classes(exported, tmp_path):
    """Tasks name only the labels they use, in the order they meet them: a round trip lost the
    project's unused classes, its order and its colours. The export's label_config.xml (or the one
    a user saves from Label Studio's settings) lists them all."""
    from qgn.project_import import import_into_project

    root, items = exported
    tasks = json.loads((root / "tasks.json").read_text())
    for task in tasks:  # no task uses "sky" (class 2) any more
        task["annotations"][0]["result"] = [r for r in task["annotations"][0]["result"]
                                            if r["value"]["brushlabels"] != ["sky"]]
    (root / "tasks.json").write_text(json.dumps(tasks))
    report = import_into_project(root, tmp_path / "p", "labelstudio")
    assert report.project.classes.names == CLASSES.names
    assert [tuple(c) for c in report.project.classes.palette] == [tuple(c) for c in CLASSES.palette]
    (root / "label_config.xml").write_text('<View><BrushLabels name="x" toName="i"><Label value="cat"/>'
                                           '</BrushLabels></View>')
    scanned = scan_dataset(root)
    assert set(scanned.file_classes.names) == {"road", "traffic sign"}
    assert any("names none of the tasks' labels" in w for w in scanned.warnings)


def test_an_annotation_submitted_with_no_region_is_an_image_with_nothing_labelled(tmp_path, run_cli):
    """Label Studio keeps an annotation submitted with no region as ``"result": []``: someone looked
    at the image and labelled nothing. It round-trips as a map all void, into a new project (which
    names the classes from the config even when no task uses one) and as a correction (--update);
    a task never annotated stays out."""
    from qgn.project import Project
    from qgn.project_export import export_project

    paths = []
    for name in ("a", "b", "c"):
        Image.new("RGB", (W, H), (ord(name), 0, 0)).save(tmp_path / f"{name}.png")
        paths.append(tmp_path / f"{name}.png")
    project = Project.create(tmp_path / "p", paths, CLASSES)
    labels = {"a": blocky(0), "b": np.full((H, W), 255, np.uint8)}  # c: never annotated
    for image in project.images[:2]:
        project.save_annotation(image, labels[image.path.stem])
    export_project(project, tmp_path / "out", ["labelstudio"])
    root = tmp_path / "out" / "labelstudio"
    tasks = json.loads((root / "tasks.json").read_text())
    assert [t["annotations"][0]["result"] == [] for t in tasks] == [False, True]  # b: submitted, no region
    tasks.append({"id": 9, "data": {"image": "/data/local-files/?d=images/c.png"}})
    (root / "images" / "c.png").write_bytes((tmp_path / "c.png").read_bytes())
    (root / "tasks.json").write_text(json.dumps(tasks))

    code, out, err = run_cli("import", root, "--project", tmp_path / "new")
    assert code == 0, err
    back = Project.open(tmp_path / "new")
    assert back.classes == CLASSES
    got = {im.path.stem: back.load_annotation(im) for im in back.images}
    assert sorted(got) == ["a", "b"] and "have no annotation, not imported: tasks 9" in err, (out, err)
    for stem, label in labels.items():
        np.testing.assert_array_equal(got[stem], label)

    # only empty annotations: the config still names the classes
    (root / "tasks.json").write_text(json.dumps([tasks[1]]))
    code, out, err = run_cli("import", root, "--project", tmp_path / "empty-only")
    assert code == 0, err
    assert Project.open(tmp_path / "empty-only").classes == CLASSES

    # a correction that erases every region of a: it becomes all void in the project
    a = tasks[0]["annotations"][0]
    a["result"] = []
    (root / "tasks.json").write_text(json.dumps([tasks[0]]))
    code, out, err = run_cli("import", root, "--project", tmp_path / "p", "--update")
    assert code == 0, err
    assert "(1 replaced, 0 unchanged)" in out, out
    np.testing.assert_array_equal(Project.open(tmp_path / "p").load_annotation(project.images[0]),
                                  np.full((H, W), 255))


def json_min_record(task_id, image, annotation_id, **outputs):
    """A record as Label Studio's JSON-MIN export writes it (label_studio_sdk converter.py
    ``convert_to_json_min``: the task's data, ``id``, one key per control with ``prettify_result``
    of its results — a single choice or text as a plain value — then the annotation's fields)."""
    return {"image": f"/data/local-files/?d=images/{image}", "id": task_id, **outputs, "annotator": 1,
            "annotation_id": annotation_id, "created_at": "2026-01-01T00:00:00Z", "updated_at": None, "lead_time": 1.5}


def test_json_min_choices_only_annotation_is_not_taken_for_an_empty_one(tmp_path, run_cli):
    """JSON-MIN writes a choices-only annotation as ``"quality": "blurry"`` beside the task's data
    (checked against label_studio_sdk 1.23's converter): it imported as an annotation with no
    result, all void, and ``--update`` replaced the project's map with it. Such a task is now
    reported and left out; a record with no field but the image is still an empty annotation; the
    labelling config beside the file tells a choice from a data field."""
    from qgn.project import Project
    from qgn.project_export import export_project

    paths = []
    for name in ("a", "b", "c"):
        Image.new("RGB", (W, H), (ord(name), 0, 0)).save(tmp_path / f"{name}.png")
        paths.append(tmp_path / f"{name}.png")
    project = Project.create(tmp_path / "p", paths, CLASSES)
    project.save_annotation(project.images[0], blocky(0))
    export_project(project, tmp_path / "out", ["labelstudio"])
    root = tmp_path / "out" / "labelstudio"
    for name in ("b", "c"):
        (root / "images" / f"{name}.png").write_bytes((tmp_path / f"{name}.png").read_bytes())
    records = [json_min_record(1, "a.png", 11, quality="blurry"),  # choices only
               json_min_record(2, "b.png", 12),  # submitted with nothing
               json_min_record(3, "c.png", 13, quality={"choices": ["blurry", "dark"]}, note="x")]
    (root / "tasks.json").unlink()
    (root / "min.json").write_text(json.dumps(records))

    code, out, err = run_cli("import", root / "min.json", "--project", tmp_path / "p", "--update")
    assert code == 0, err
    np.testing.assert_array_equal(Project.open(tmp_path / "p").load_annotation(project.images[0]), blocky(0))
    assert "cannot be told from an empty one); not imported, so no map is replaced by an all-void one: " \
           "tasks 1 (quality)" in err, err
    assert "without brush, polygon or rectangle results, not imported: tasks 3" in err, err

    code, out, err = run_cli("import", root / "min.json", "--project", tmp_path / "new")
    assert code == 0, err
    back = Project.open(tmp_path / "new")
    assert {im.path.stem: back.load_annotation(im) is not None for im in back.images} == {"b": True}
    np.testing.assert_array_equal(back.load_annotation(back.images[0]), np.full((H, W), 255))

    # the config names "quality" a control: a result about something else, not an unsure field
    config = (root / "label_config.xml").read_text()
    (root / "label_config.xml").write_text(config.replace(
        "</View>", '<Choices name="quality" toName="image"><Choice value="blurry"/></Choices></View>'))
    dataset = scan_dataset(root / "min.json")
    assert [item.name for item in dataset.items] == ["b"]
    assert any("without brush, polygon or rectangle results, not imported: tasks 1, 3" in w for w in dataset.warnings)


def _rle_bits(runs, num, sizes=(3, 4, 8, 16)):
    """A brush RLE written bit by bit as the format reads (thi.ng rle-pack): header, then per run
    (repeat?, values): flag, the smallest size class that holds the count, count - 1, the value(s)."""
    bits = f"{num:032b}{8 - 1:05b}" + "".join(f"{s - 1:04b}" for s in sizes)
    for repeat, values in runs:
        count = len(values) if not repeat else values[1]
        klass = next(k for k, s in enumerate(sizes) if count <= 2 ** s)
        bits += ("1" if repeat else "0") + f"{klass:02b}" + format(count - 1, f"0{sizes[klass]}b")
        bits += f"{values[0]:08b}" if repeat else "".join(f"{v:08b}" for v in values)
    bits += "0" * (-len(bits) % 8)
    return [int(bits[i:i + 8], 2) for i in range(0, len(bits), 8)]


def test_the_brush_rle_decodes_literal_runs_repeats_and_a_cut_last_run_as_the_format_says():
    from qgn.formats.labelstudio import decode_ls_rle

    rng = np.random.default_rng(0)
    runs, expected = [], []
    for _ in range(3000):  # literal runs of 1..300 values (every size class) and repeats up to 70,000
        if rng.random() < 0.5:
            values = rng.integers(0, 256, int(rng.integers(1, 300))).tolist()
            runs.append((False, values))
            expected += values
        else:
            value, count = int(rng.integers(0, 256)), int(rng.choice([1, 7, 9, 200, 257, 65536]))
            runs.append((True, (value, count)))
            expected += [value] * count
    out = decode_ls_rle(_rle_bits(runs, len(expected)), expected=len(expected))
    assert out.dtype == np.uint8 and out.tolist() == expected
    cut = len(expected) - 5  # a last run claiming values past the count gives only those counted
    assert decode_ls_rle(_rle_bits(runs, cut)).tolist() == expected[:cut]
    assert decode_ls_rle(_rle_bits([], 0)).size == 0


@pytest.mark.parametrize("drop", [1, 2, 40])
def test_a_brush_rle_cut_short_is_refused_by_what_it_is(drop):
    from qgn.formats.labelstudio import decode_ls_rle

    rle = _rle_bits([(False, [1, 2, 3] * 20), (True, (9, 300))], 360)
    with pytest.raises(ValueError, match="ends early"):
        decode_ls_rle(rle[:-drop])


@pytest.mark.parametrize("name", ["tab\there", "two\nlines", "cr\rhere", "spaced  out"])
def test_a_class_name_with_tabs_or_line_breaks_comes_back_from_the_labelling_config_as_it_was(tmp_path, name):
    """XML parsers (ours, Label Studio's) turn a tab or line break inside an attribute into a space
    unless it is written as a character reference: the config named 'tab here' while the tasks
    said 'tab\\there', and a new project got an extra class (found by the eighth hostile-inputs round).
    The config's writer still writes such a name as it is, and an import refuses it in one line, as
    every importer does (CVAT's labelmap.txt and classes.txt cannot hold it:
    tests/formats/test_class_name_doors.py); so an export of it (a project may hold one from before)
    is refused, naming the class (tests/project/test_legacy_class_names.py)."""
    from qgn.formats import FORMATS
    from qgn.project_import import import_into_project

    classes = ClassSet(("road", name, "sky"), CLASSES.palette, 255)
    Image.new("RGB", (W, H)).save(tmp_path / "a.png")
    items = [ExportItem("a", blocky(0), tmp_path / "a.png")]
    if name != "spaced  out":
        with pytest.raises(ValueError, match=f"the class {re.escape(repr(name))} holds a .*in the project first"):
            export_dataset(items, classes, tmp_path / "out", ["labelstudio"])
        assert not (tmp_path / "out").exists()
    FORMATS["labelstudio"].export_items(items, classes, tmp_path / "out" / "labelstudio")
    root = tmp_path / "out" / "labelstudio"
    config = ET.parse(root / "label_config.xml").getroot()
    assert [label.get("value") for label in config.iter("Label")] == list(classes.names)
    if name == "spaced  out":
        report = import_into_project(root, tmp_path / "p", "labelstudio")
        assert report.project.classes.names == classes.names
    else:
        with pytest.raises(ValueError, match=f"the label {re.escape(repr(name))} holds a "):
            import_into_project(root, tmp_path / "p", "labelstudio")


def test_a_class_name_xml_cannot_hold_is_refused_before_anything_is_written(tmp_path):
    """A NUL (or another control character) in a class name made label_config.xml a file no XML
    parser reads (ours called it binary and left it; Label Studio refuses it)."""
    classes = ClassSet(("road", "nul\x00here", "sky"), CLASSES.palette, 255)
    Image.new("RGB", (W, H)).save(tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"class 'nul\\x00here' .*rename it in the project first"):
        export_dataset([ExportItem("a", blocky(0), tmp_path / "a.png")], classes, tmp_path / "out", ["labelstudio"])
    assert not (tmp_path / "out" / "labelstudio" / "label_config.xml").exists()


@pytest.mark.parametrize("formats, bad", [(["camvid", "labelstudio"], "nul\x00here"),
                                          (["cityscapes", "labelstudio"], "nul\x00here"),
                                          (["camvid", "cvat"], "a:b"), (["cityscapes", "labelme"], "__ignore__")])
@pytest.mark.parametrize("how", ["project", "dataset"])
def test_a_class_one_format_cannot_write_stops_an_export_of_several_before_anything_is_written(tmp_path, formats,
                                                                                              bad, how):
    """Several formats at once (``--formats camvid,labelstudio``, the app's export dialog): the
    right error came, but CamVid's (Cityscapes') label_colors.txt was already written - its writer
    writes it as it opens, before the next format's refused the class (the review of the eighth
    hostile-inputs round)."""
    from qgn.project import Project
    from qgn.project_export import export_project

    classes = ClassSet(("road", bad, "sky"), CLASSES.palette, 255)
    Image.new("RGB", (W, H)).save(tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"rename the class|cannot be written to labelmap\.txt|in the project first"):
        if how == "project":  # a project from before names were checked where they enter (Project.create refuses it)
            Project.create(tmp_path / "p", [tmp_path / "a.png"], ClassSet(("road", "placeholder", "sky"),
                                                                          CLASSES.palette, 255))
            doc = json.loads((tmp_path / "p" / "project.json").read_text())
            doc["classes"]["names"][1] = bad
            (tmp_path / "p" / "project.json").write_text(json.dumps(doc))
            project = Project.open(tmp_path / "p")
            project.save_annotation(project.images[0], blocky(0))
            export_project(project, tmp_path / "out", formats)
        else:
            export_dataset([ExportItem("a", blocky(0), tmp_path / "a.png")], classes, tmp_path / "out", formats)
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()] if (tmp_path / "out").exists() else []
    assert written == []
