"""A re-export names every image as the first export did, whatever fails or is not written this
time: COCO plans each image's file name over every image of the export (``CocoWriter.plan``), and
Cityscapes each renamed image's frame from the earlier ``image_names.tsv`` (``CityscapesWriter.plan``)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from qgn.data.synthetic import SYNTHETIC_CLASSES as CLASSES
from qgn.data.synthetic import make_scene
from qgn.project import Project
from qgn.project_export import export_project


def make_project(root: Path, rels: list[str]) -> Project:
    paths, labels = [], {}
    for i, rel in enumerate(rels):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        image, label = make_scene(300 + i, 48, 64)
        Image.fromarray(image).save(root / rel, quality=95)
        paths.append(root / rel)
        labels[root / rel] = label.astype(np.uint8)
    project = Project.create(root / "project", paths, CLASSES)
    for image in project.images:
        project.save_annotation(image, labels[image.path])
    return project


def coco_names(root: Path) -> list[str]:
    doc = json.loads((root / "annotations" / "instances_default.json").read_text())
    return sorted(entry["file_name"] for entry in doc["images"])


def test_a_coco_reexport_failing_on_an_image_gives_its_name_to_no_other(tmp_path):
    """p/a.jpg, p/b.jpg, q/a.jpg export as a.jpg, b.jpg, a-2.jpg. A re-export that fails on p/a
    (annotation unreadable) still names q/a a-2.jpg and keeps p/a's earlier a.jpg and its entry -
    before, q/a took the free a.jpg (over p/a's copy), p/a's entry was dropped and a-2.jpg was
    left unlisted."""
    project = make_project(tmp_path, ["p/a.jpg", "p/b.jpg", "q/a.jpg"])
    out, root = tmp_path / "out", tmp_path / "out" / "coco"
    export_project(project, out, ["coco"], images="copy")
    assert coco_names(root) == ["a-2.jpg", "a.jpg", "b.jpg"]
    project.annotation_path(project.images[0]).write_bytes(b"not a quadtree")
    errors: list[str] = []
    export_project(project, out, ["coco"], errors=errors, images="copy")
    assert len(errors) == 1 and errors[0].startswith("a: failed")
    assert coco_names(root) == ["a-2.jpg", "a.jpg", "b.jpg"]
    copies = root / "images" / "default"
    assert (copies / "a.jpg").read_bytes() == (tmp_path / "p" / "a.jpg").read_bytes()
    assert (copies / "a-2.jpg").read_bytes() == (tmp_path / "q" / "a.jpg").read_bytes()


def test_a_coco_image_taken_back_keeps_the_name_of_the_copy_put_back(tmp_path):
    """CVAT, after COCO, fails on p/a: COCO takes p/a back and puts its earlier a.jpg back; q/a is
    still a-2.jpg - before, it was written over the very a.jpg the undo had put back."""
    project = make_project(tmp_path, ["p/a.jpg", "p/b.jpg", "q/a.jpg"])
    out, root = tmp_path / "out", tmp_path / "out" / "coco"
    export_project(project, out, ["coco", "cvat"], images="copy")
    blocked = out / "cvat" / "JPEGImages" / "a.jpg"
    blocked.unlink()
    blocked.mkdir()
    (blocked / "x").write_text("in the way")
    errors: list[str] = []
    export_project(project, out, ["coco", "cvat"], errors=errors, images="copy")
    assert len(errors) == 1 and errors[0].startswith("a: failed")
    assert coco_names(root) == ["a-2.jpg", "a.jpg", "b.jpg"]
    copies = root / "images" / "default"
    assert (copies / "a.jpg").read_bytes() == (tmp_path / "p" / "a.jpg").read_bytes()
    assert (copies / "a-2.jpg").read_bytes() == (tmp_path / "q" / "a.jpg").read_bytes()


def _cityscapes_state(root: Path) -> tuple[dict[str, bytes], str]:
    files = {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}
    return files, (root / "image_names.tsv").read_text()


def _read_back(root: Path, source: Path) -> dict[str, str]:
    """Each item scan_dataset reads -> the source image whose pixels its leftImg8bit holds."""
    from qgn.formats import scan_dataset

    pictures = {p.name: np.asarray(Image.open(p).convert("RGB")).astype(int) for p in source.iterdir()}
    found = {}
    for item in scan_dataset(root).items:
        pixels = np.asarray(Image.open(item.image).convert("RGB")).astype(int)
        found[item.name] = min(pictures, key=lambda n: np.abs(pictures[n] - pixels).mean())
    return found


def test_a_cityscapes_reexport_failing_on_a_renamed_image_shifts_no_frame(tmp_path):
    """x, y, z are frames 0, 1, 2. A re-export that fails on x (annotation unreadable) writes y and
    z under frames 1 and 2 again and keeps x's row: the tree is as it was - before, y was written
    over x's frame 0, z over y's, x's row was dropped and the tree read back z twice and no x."""
    project = make_project(tmp_path, ["street/x.jpg", "street/y.jpg", "street/z.jpg"])
    out, root = tmp_path / "out", tmp_path / "out" / "cityscapes"
    export_project(project, out, ["cityscapes"], images="copy")
    before = _cityscapes_state(root)
    assert before[1].split("\n")[1:4] == ["street_000000_000000\tx.jpg", "street_000000_000001\ty.jpg",
                                          "street_000000_000002\tz.jpg"]
    project.annotation_path(project.images[0]).write_bytes(b"not a quadtree")
    errors: list[str] = []
    export_project(project, out, ["cityscapes"], errors=errors, images="copy")
    assert len(errors) == 1 and errors[0].startswith("x: failed")
    assert _cityscapes_state(root) == before
    assert _read_back(root, tmp_path / "street") == {"x": "x.jpg", "y": "y.jpg", "z": "z.jpg"}


def test_a_cancelled_cityscapes_reexport_keeps_the_rows_of_the_images_not_reached(tmp_path):
    """Cancelled after x: y's and z's rows stay in image_names.tsv (before, only x's was left)."""
    project = make_project(tmp_path, ["street/x.jpg", "street/y.jpg", "street/z.jpg"])
    out, root = tmp_path / "out", tmp_path / "out" / "cityscapes"
    export_project(project, out, ["cityscapes"], images="copy")
    before = _cityscapes_state(root)
    calls: list[int] = []
    result = export_project(project, out, ["cityscapes"], images="copy",
                            should_stop=lambda: calls.append(1) or len(calls) > 1)
    assert result.not_reached == 2
    assert _cityscapes_state(root) == before


def test_a_new_cityscapes_image_takes_a_frame_after_the_earlier_ones(tmp_path):
    """An image added to the project (w, sorted first) takes a frame no earlier row holds: x, y, z
    keep theirs - before, w took frame 0 and every other image moved up one."""
    project = make_project(tmp_path, ["street/x.jpg", "street/y.jpg", "street/z.jpg"])
    out, root = tmp_path / "out", tmp_path / "out" / "cityscapes"
    export_project(project, out, ["cityscapes"], images="copy")
    Image.fromarray(make_scene(400, 48, 64)[0]).save(tmp_path / "street" / "w.jpg", quality=95)
    project.add_images([tmp_path / "street" / "w.jpg"])
    project.images.sort(key=lambda image: image.path.name)
    assert project.images[0].path.name == "w.jpg"
    project.save_annotation(project.images[0], make_scene(400, 48, 64)[1].astype(np.uint8))
    export_project(project, out, ["cityscapes"], images="copy")
    rows = (root / "image_names.tsv").read_text().split("\n")[1:-1]
    assert sorted(rows) == ["street_000000_000000\tx.jpg", "street_000000_000001\ty.jpg",
                            "street_000000_000002\tz.jpg", "street_000000_000003\tw.jpg"]
    assert _read_back(root, tmp_path / "street") == {"w": "w.jpg", "x": "x.jpg", "y": "y.jpg", "z": "z.jpg"}


def test_a_coco_reexport_over_an_older_export_keeps_no_other_images_entry(tmp_path):
    """An export by older code (or of a subset) named q/a.jpg a.jpg while p/a.jpg was not
    exported. A re-export that fails on p/a kept that a.jpg entry as p/a's (looked up by p/a's
    planned stem) beside q/a's new a-2.jpg: q/a listed twice, p/a's entry holding q/a's image. An
    earlier entry is kept only where it is the failed image's own (its copy is p/a's image)."""
    project = make_project(tmp_path, ["p/a.jpg", "q/a.jpg"])
    out, root = tmp_path / "out", tmp_path / "out" / "coco"
    export_project(project, out, ["coco"], images="copy")
    copies, index = root / "images" / "default", root / "annotations" / "instances_default.json"
    doc = json.loads(index.read_text())  # as the older code wrote it: only q/a, named a.jpg
    q_entry = next(e for e in doc["images"] if e["file_name"] == "a-2.jpg")
    doc["annotations"] = [{**a, "image_id": 1} for a in doc["annotations"] if a["image_id"] == q_entry["id"]]
    doc["images"] = [{**q_entry, "id": 1, "file_name": "a.jpg"}]
    index.write_text(json.dumps(doc))
    (copies / "a-2.jpg").replace(copies / "a.jpg")
    project.annotation_path(project.images[0]).write_bytes(b"not a quadtree")
    errors: list[str] = []
    export_project(project, out, ["coco"], errors=errors, images="copy")
    assert len(errors) == 1 and errors[0].startswith("a: failed")
    assert coco_names(root) == ["a-2.jpg"]
    assert (copies / "a-2.jpg").read_bytes() == (tmp_path / "q" / "a.jpg").read_bytes()


def test_an_image_named_like_a_frame_beside_another_is_named_as_a_first_export_named_it(tmp_path):
    """x.jpg, then street_000000_000000.png (named like a frame): x takes frame 0 and the other is
    renamed frame 1 (a row), as every export before named them; a re-export, failing on x or not,
    keeps that tree - before, a fresh export gave x frame 1, and one over the earlier tree wrote x
    as frame 2 beside a stale frame 1."""
    project = make_project(tmp_path, ["street/x.jpg", "street/street_000000_000000.png"])
    out, root = tmp_path / "out", tmp_path / "out" / "cityscapes"
    export_project(project, out, ["cityscapes"], images="copy")
    before = _cityscapes_state(root)
    assert before[1].split("\n")[1:-1] == ["street_000000_000000\tx.jpg",
                                           "street_000000_000001\tstreet_000000_000000.png"]
    export_project(project, out, ["cityscapes"], images="copy")
    assert _cityscapes_state(root) == before
    project.annotation_path(project.images[0]).write_bytes(b"not a quadtree")
    errors: list[str] = []
    export_project(project, out, ["cityscapes"], errors=errors, images="copy")
    assert len(errors) == 1 and errors[0].startswith("x: failed")
    assert _cityscapes_state(root) == before
    assert _read_back(root, tmp_path / "street") == {"x": "x.jpg", "street_000000_000000": "street_000000_000000.png"}
