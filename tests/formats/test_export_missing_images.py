"""A project export where an image file is gone (moved, deleted) or is a loop of symbolic links:
the formats that use images left it out of their copy, or wrote an index naming a file that is not
there, without a word (COCO, CVAT, labelme, FiftyOne's missing image, exit 0), or failed it as
"RuntimeError: Symlink loop from …" (FiftyOne) or "[Errno 40] Too many levels of symbolic links"
(CamVid, Cityscapes). Each such image is now one failed item, named with what is wrong and the
fix, the others exported, exit 2 - in the formats that need its file only (a copy or link of it,
FiftyOne's data.json, Label Studio's tasks, CamVid, Cityscapes): qgt and png, and COCO, CVAT and
labelme without --include-images (which only name the image), export its annotation and say the
image is not there."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from qgn.classes import ClassSet
from qgn.project import Project
from qgn.project_export import export_project

CLASSES = ClassSet(("road", "sky"), ((128, 64, 128), (70, 130, 180)), 255)


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


NEED_THE_FILE = [("coco", "copy"), ("cvat", "link"), ("labelme", "copy"), ("fiftyone", None), ("fiftyone", "copy"),
                 ("camvid", None), ("cityscapes", None), ("labelstudio", None)]


@pytest.mark.parametrize(("fmt", "images"), NEED_THE_FILE)
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
    code, out, err = run_cli("export", "--project", project.root, "--formats", "coco,labelme", "--out", tmp_path / "o",
                             "--include-images", "copy")
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


@pytest.mark.parametrize("fmt", ["cvat", "coco", "labelme"])
def test_formats_that_only_name_the_image_write_it_without_images(project, tmp_path, fmt):
    # (a regression of the first fix: one image gone failed it in every format, these included)
    errors: list[str] = []
    written = export_project(project, tmp_path / "out", ["qgt", "png", fmt], errors=errors)
    assert errors == [] and written.failed == ()
    assert sorted(p.stem for p in (tmp_path / "out" / "qgt").glob("*.qgt")) == ["a", "b", "c"]
    assert sorted(p.stem for p in (tmp_path / "out" / "png").glob("*.png")) == ["a", "b", "c"]
    out = tmp_path / "out" / fmt
    if fmt == "cvat":
        assert sorted(p.stem for p in (out / "SegmentationClass").glob("*.png")) == ["a", "b", "c"]
    elif fmt == "labelme":
        assert sorted(p.stem for p in out.glob("*.json")) == ["a", "b", "c"]
        assert json.loads((out / "b.json").read_text())["imagePath"].endswith("b.png")
    else:
        doc = json.loads(next(out.rglob("*.json")).read_text())
        assert sorted(im["file_name"] for im in doc["images"]) == ["a.png", "b.png", "c.png"]


def test_an_image_gone_fails_only_in_the_formats_that_need_its_file(project, tmp_path, run_cli):
    out = tmp_path / "o"
    code, said, err = run_cli("export", "--project", project.root, "--formats", "qgt,png,cvat,fiftyone",
                              "--out", out)
    assert code == 2, err
    assert sorted(p.stem for p in (out / "qgt").glob("*.qgt")) == ["a", "b", "c"]
    assert sorted(p.stem for p in (out / "cvat" / "SegmentationClass").glob("*.png")) == ["a", "b", "c"]
    assert sorted(p.stem for p in (out / "fiftyone" / "labels").glob("*.png")) == ["a"]
    manifest = json.loads((out / "fiftyone" / "data.json").read_text())
    assert not any("b.png" in v or "c.png" in v for v in manifest.values()), manifest
    lines = {line.split("] ", 1)[1].split(":")[0]: line for line in said.splitlines() if line.startswith("[")}
    assert "b.png is not there" in lines["b"] and "not written as fiftyone" in lines["b"], lines["b"]
    assert "exported 1 annotation(s) (and 2 in some formats only) of 3 image(s)" in said
    assert err.count("failed as fiftyone: its image") == 2, err


def test_no_image_needed_no_failure(project, tmp_path, run_cli):
    code, said, err = run_cli("export", "--project", project.root, "--formats", "qgt,png,cvat", "--out", tmp_path / "o")
    assert code == 0 and not err.strip(), err
    warned = [line for line in said.splitlines() if "warning: exported, but its image" in line]
    assert len(warned) == 2 and "b.png is not there" in warned[0], said
