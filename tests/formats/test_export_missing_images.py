"""A project export where an image file is gone (moved, deleted) or is a loop of symbolic links:
the formats that use images left it out of their copy, or wrote an index naming a file that is not
there, without a word (COCO, CVAT, labelme, FiftyOne's missing image, exit 0), or failed it as
"RuntimeError: Symlink loop from …" (FiftyOne) or "[Errno 40] Too many levels of symbolic links"
(CamVid, Cityscapes). Each such image is now one failed item, named with what is wrong and the
fix, the others exported, exit 2; qgt and png (which never name the image) export its annotation
and say the image is not there."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from qgn.classes import ClassSet
from qgn.project import Project
from qgn.project_export import export_project

CLASSES = ClassSet(("road", "sky"), ((128, 64, 128), (70, 130, 180)), 255)
IMAGE_FORMATS = ["coco", "cvat", "labelme", "fiftyone", "camvid", "cityscapes", "labelstudio"]


@pytest.fixture
def project(tmp_path):
    """A project of a.png, b.png, c.png, each annotated; b.png deleted, c.png a link to itself."""
    paths = []
    for name in ("a", "b", "c"):
        path = tmp_path / "imgs" / f"{name}.png"
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", (12, 8), (10, 20, 30)).save(path)
        paths.append(path)
    project = Project.create(tmp_path / "p", paths, CLASSES)
    label = np.zeros((8, 12), np.uint8)
    label[:, 6:] = 1
    for image in project.images:
        project.save_annotation(image, label)
    paths[1].unlink()
    paths[2].unlink()
    paths[2].symlink_to("c.png")
    return project


@pytest.mark.parametrize("images", [None, "copy"])
@pytest.mark.parametrize("fmt", IMAGE_FORMATS)
def test_each_missing_or_looping_image_is_one_failed_item(project, tmp_path, fmt, images):
    errors: list[str] = []
    export_project(project, tmp_path / "out", [fmt], errors=errors, images=images)
    assert len(errors) == 2, errors
    assert errors[0].startswith("b: failed: its image ") and "b.png is not there" in errors[0], errors
    assert "qgn relink" in errors[0]
    assert errors[1].startswith("c: failed: its image ") and "c.png: is a loop of symbolic links" in errors[1], errors
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert not any(p.stem in ("b", "c") for p in written), written
    text = " ".join(p.read_text(errors="replace") for p in written if p.suffix in (".json", ".txt", ".tsv"))
    assert "b.png" not in text and "c.png" not in text  # no index names an image that is not there
    if fmt == "coco":
        doc = json.loads(next(p for p in written if p.suffix == ".json").read_text())
        assert [im["file_name"].rsplit("/", 1)[-1] for im in doc["images"]] == ["a.png"]


def test_cli_names_each_and_exits_2(project, tmp_path, run_cli):
    code, out, err = run_cli("export", "--project", project.root, "--formats", "coco,labelme", "--out", tmp_path / "o")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("qgn export: error: 2 annotation(s) failed: "), err
    assert "b.png is not there" in lines[0] and "c.png: is a loop of symbolic links" in lines[0], err
    assert "Traceback" not in err + out and "Errno" not in err + out and "RuntimeError" not in err + out
    assert "exported 1 annotation(s) of 3 image(s)" in out


def test_qgt_and_png_export_the_annotation_and_say_the_image_is_not_there(project, tmp_path, run_cli):
    code, out, err = run_cli("export", "--project", project.root, "--out", tmp_path / "o")
    assert code == 0 and not err.strip(), err
    assert len(list((tmp_path / "o" / "qgt").glob("*.qgt"))) == 3 and len(list((tmp_path / "o" / "png").glob("*.png"))) == 3
    said = {line.split("] ", 1)[1].split(":")[0]: line for line in out.splitlines() if line.startswith("[")}
    assert "warning" not in said["a"]
    assert "warning: exported, but its image" in said["b"] and "b.png is not there" in said["b"]
    assert "c.png: is a loop of symbolic links" in said["c"]
