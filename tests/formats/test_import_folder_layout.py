"""`qgn import DIR --format ids` (and auto) on the README's ``folder`` dataset — ``images/``,
``labels/``, ``classes.txt``, the layout ``qgn train`` reads — imports every label with its image,
and a photo is never taken for a label map."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qgn.cli.main import main
from qgn.data.synthetic import SYNTHETIC_CLASSES
from qgn.project import Project
from qgn.quadtree.label_io import read_label
from qgn_studio.testing import write_samples


@pytest.fixture
def folder_dataset(tmp_path):
    root = tmp_path / "ds"
    paths = write_samples(root, 4, (64, 96))  # images/NAME.png (RGB photos) + labels/NAME.png (ids)
    (root / "classes.txt").write_text("\n".join(SYNTHETIC_CLASSES.names) + "\n")
    return root, paths


@pytest.mark.parametrize("fmt", ["ids", "auto"])
def test_folder_layout_imports_as_it_is(folder_dataset, tmp_path, capsys, fmt):
    root, paths = folder_dataset
    code = main(["import", str(root), "--format", fmt, "--project", str(tmp_path / "p")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "imported 4 of 4" in out
    project = Project.open(tmp_path / "p")
    assert sorted(im.path for im in project.images) == sorted(p.resolve() for p in paths)
    for im in project.images:
        np.testing.assert_array_equal(project.load_annotation(im), read_label(root / "labels" / im.path.name))


def test_a_photo_is_never_a_label_map(folder_dataset, tmp_path, capsys):
    root, paths = folder_dataset
    photo = tmp_path / "loose" / "photo.png"  # a folder of PNGs where one is an RGB photo
    photo.parent.mkdir()
    Image.fromarray(np.asarray(Image.open(paths[0]))).save(photo)
    Image.fromarray(read_label(root / "labels" / paths[1].name).astype(np.uint8)).save(photo.parent / "ok.png")
    (tmp_path / "images").mkdir(exist_ok=True)
    Image.open(paths[1]).save(tmp_path / "images" / "ok.png")
    Image.open(paths[0]).save(tmp_path / "images" / "photo.png")
    code = main(["import", str(photo.parent), "--format", "ids", "--project", str(tmp_path / "p"),
                 "--classes", str(root / "classes.txt")])
    out = capsys.readouterr().out
    assert code == 2 and "imported 1 of 2" in out
    assert "photo" in out and "not a label map" in out


def test_a_dataset_reached_through_a_link_and_dot_dot_is_the_one_the_system_reaches(tmp_path, monkeypatch, run_cli):
    """`qgn import link/../labelme`, link -> real/a: the system reaches real/labelme, but the path was
    straightened on its text into ./labelme (no such folder): every image was 'not image files:
    …/labelme/img.png'. The '..' are taken as the system takes them (the link followed); so are an
    image's path and --images."""
    from qgn.classes import ClassSet
    from qgn.project_export import export_project

    monkeypatch.chdir(tmp_path)
    photo = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 12, 3), dtype=np.uint8)).save(photo)
    project = Project.create(tmp_path / "proj", [photo], ClassSet(("car", "sky"), (), 255))
    label = np.zeros((8, 12), np.uint8)
    label[:, 6:] = 1
    project.save_annotation(project.images[0], label)
    export_project(project, tmp_path / "real", ["labelme"], images="copy")
    (tmp_path / "real" / "a").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real" / "a")
    code, out, err = run_cli("import", "link/../labelme", "--project", "new")
    assert code == 0, out + err
    new = Project.open(tmp_path / "new")
    assert [im.path for im in new.images] == [tmp_path / "real" / "labelme" / "img.png"]
    assert np.array_equal(new.load_annotation(new.images[0]), label)
    code, out, err = run_cli("import", "real/labelme", "--images", "link/../labelme", "--project", "new2")
    assert code == 0, out + err
    assert [im.path for im in Project.open(tmp_path / "new2").images] == [tmp_path / "real" / "labelme" / "img.png"]


def test_a_link_that_loops_among_the_labels_is_one_bad_item_the_batch_goes_past(folder_dataset, tmp_path, run_cli):
    """A symbolic link to itself named like a label (``labels/loop.png``): resolving it to see whether
    it lies in the image folder raised "Symlink loop" and the whole import ended as 'unexpected
    RuntimeError'; it is one item that cannot be imported, named, and the others are."""
    root, _ = folder_dataset
    (root / "labels" / "loop.png").symlink_to("loop.png")
    code, out, err = run_cli("import", root, "--format", "ids", "--project", tmp_path / "p")
    assert code == 2, out + err
    assert "unexpected" not in err and "loop" in err
    assert "imported 4 of 5" in out
    assert len(Project.open(tmp_path / "p").images) == 4


def test_an_upper_case_png_label_is_read_by_the_import_as_the_png_export_s_check_counts_it(folder_dataset, tmp_path, capsys):
    """``NAME.PNG`` in labels/ is a label map on every system (as ``qgn convert`` and ``qgn stats``
    read it, and as the png export's list check counts it): the import read it only where the
    system's glob ignored case (Windows), so the check refused a folder for a file a Linux import of
    it never read. One function (``label_pngs``) decides for both."""
    from qgn.formats.source import label_pngs

    root, paths = folder_dataset
    upper = root / "labels" / f"{paths[0].stem}.PNG"
    (root / "labels" / f"{paths[0].stem}.png").rename(upper)
    assert [p.name for p in label_pngs(root, None)][0] == upper.name
    code = main(["import", str(root), "--format", "ids", "--project", str(tmp_path / "p")])
    assert code == 0 and "imported 4 of 4" in capsys.readouterr().out
    project = Project.open(tmp_path / "p")
    im = next(im for im in project.images if im.path.stem == paths[0].stem)
    np.testing.assert_array_equal(project.load_annotation(im), read_label(upper))


def test_a_folder_whose_only_json_cannot_be_read_says_why(tmp_path, run_cli):
    """A COCO folder whose annotations.json holds NaN (Python's json.dump writes it; JSON has no NaN):
    'found no dataset (looked for …)' named neither the file nor what is wrong with it."""
    root = tmp_path / "coco"
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (8, 6)).save(root / "images" / "a.png")
    (root / "annotations.json").write_text('{"images": [], "annotations": [{"bbox": [NaN, 0, 1, 1]}], "categories": []}')
    code, _, err = run_cli("import", root, "--project", tmp_path / "p")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "annotations.json" in lines[0] and "NaN" in lines[0], err
    assert not (tmp_path / "p").exists()


def test_a_labelme_folder_whose_json_cannot_be_read_is_not_taken_for_id_maps(tmp_path, run_cli):
    """A labelme folder (photo + JSON) whose JSON holds NaN was taken for a folder of id maps (its
    photo the 'label PNG'), and the import said 'the ids files hold bare class ids; name the classes
    with --classes FILE': now the JSON file and what is wrong with it."""
    root = tmp_path / "lm"
    root.mkdir()
    Image.new("RGB", (8, 6)).save(root / "a.png")
    (root / "a.json").write_text('{"shapes": [{"label": "car", "points": [[NaN, 0], [4, 0], [4, 4]], '
                                 '"shape_type": "polygon"}], "imagePath": "a.png", "imageHeight": 6, "imageWidth": 8}')
    code, _, err = run_cli("import", root, "--project", tmp_path / "p")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "a.json" in lines[0] and "NaN" in lines[0], err


def test_x_png_beside_x_upper_png_is_refused_naming_both(folder_dataset, tmp_path, run_cli):
    """labels/x.png and labels/x.PNG side by side: since the import reads ``.PNG`` on every system it
    took x.PNG (it sorts first), skipped the user's x.png as 'already has an annotation' and said
    neither which file it used; now refused before anything is written, naming both files (as ``qgn
    convert`` refuses them for one x.qgt)."""
    root, paths = folder_dataset
    lower = root / "labels" / f"{paths[0].stem}.png"
    upper = lower.with_suffix(".PNG")
    Image.fromarray(np.zeros((64, 96), np.uint8)).save(upper, format="PNG")
    code, out, err = run_cli("import", root, "--format", "ids", "--project", tmp_path / "p")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    assert str(lower) in lines[0] and str(upper) in lines[0] and "rename one" in lines[0], err
    assert not (tmp_path / "p").exists()


def test_a_stray_photo_sorting_first_with_an_unreadable_json_beside_does_not_refuse_the_folder(
        folder_dataset, tmp_path, run_cli):
    """An ids folder with a stray RGB picture among its labels (sorting first) and a metrics.json
    holding NaN (Python's json.dump) beside it: detection judged the folder by its first PNG, took it
    for a labelme folder whose JSON cannot be read and refused it all; the label maps are imported
    and the stray named, as before."""
    root, paths = folder_dataset
    Image.new("RGB", (96, 64), (200, 10, 10)).save(root / "labels" / "Preview.png")
    assert sorted(p.name for p in (root / "labels").iterdir())[0] == "Preview.png"
    (root / "metrics.json").write_text('{"miou": 0.5, "iou_sky": NaN}')
    code, out, err = run_cli("import", root, "--project", tmp_path / "p")
    assert code == 2 and "imported 4 of 5" in out and "Preview" in err and "NaN" not in err, (out, err)
    project = Project.open(tmp_path / "p")
    for im in project.images:
        np.testing.assert_array_equal(project.load_annotation(im), read_label(root / "labels" / im.path.name))


def test_an_upper_case_photo_sorting_first_does_not_decide_the_format(tmp_path, run_cli):
    """The palette-PNG samples (detected as png) with COVER.PNG, an RGB picture, among their labels:
    read on every system now, it sorted first and made the folder a folder of bare ids; the first
    label PNG that is no photo decides."""
    import shutil
    from pathlib import Path

    root = tmp_path / "ds"
    shutil.copytree(Path(__file__).resolve().parents[2] / "resources" / "samples", root)
    shutil.copy(root / "images" / "scene_01.png", root / "labels" / "COVER.PNG")
    code, out, err = run_cli("import", root, "--project", tmp_path / "p")
    assert "found png:" in out and "imported 6 of 7" in out and code == 2 and "COVER" in err, (out, err)


def test_one_grey_png_among_the_photos_of_a_labelme_folder_does_not_make_it_id_maps(tmp_path, run_cli):
    """A labelme folder (PNG photos + JSON holding NaN) with one greyscale PNG among them (a depth
    map, a mask): detection took the first PNG that is no photo for the folder's mode, read it all as
    id maps and asked for --classes; the photos outnumber it, and the JSON's read error is said."""
    root = tmp_path / "lm"
    root.mkdir()
    for name in ("img1", "img2"):
        Image.new("RGB", (8, 6), (100, 20, 20)).save(root / f"{name}.png")
        (root / f"{name}.json").write_text('{"shapes": [], "imagePath": "%s.png", "score": NaN}' % name)
    Image.fromarray(np.ones((6, 8), np.uint8)).save(root / "zdepth.png")
    code, _, err = run_cli("import", root, "--project", tmp_path / "p")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "img1.json" in lines[0] and "NaN" in lines[0], err
    assert "--classes" not in err and not (tmp_path / "p").exists()


def test_one_palette_png_among_cityscapes_label_ids_does_not_make_them_raw_ids(tmp_path, run_cli):
    """Cityscapes classes, labels/ of greyscale labelIds maps with a stray RGB Preview.png sorting
    first and one palette PNG before the maps: detection took that palette PNG (the first PNG that
    is no photo) for the folder's mode, and the labelIds (7: road) were imported raw as class 7; the
    mode most of the label PNGs share decides - ids, labelIds read as train ids (road: 0)."""
    from qgn.data.cityscapes import CITYSCAPES_CLASSES

    root = tmp_path / "cs"
    (root / "labels").mkdir(parents=True)
    (root / "images").mkdir()
    (root / "classes.txt").write_text("\n".join(CITYSCAPES_CLASSES.names) + "\nignore: 255\n")
    Image.new("RGB", (8, 6), (1, 2, 3)).save(root / "labels" / "Preview.png")
    palette = Image.fromarray(np.zeros((6, 8), np.uint8), mode="P")
    palette.putpalette([0, 0, 0] * 256)
    palette.save(root / "labels" / "a.png")
    for name in ("b_gtFine_labelIds", "c"):
        Image.fromarray(np.full((6, 8), 7, np.uint8)).save(root / "labels" / f"{name}.png")  # labelId 7: road
    for name in ("a", "b_gtFine_labelIds", "c"):
        Image.new("RGB", (8, 6)).save(root / "images" / f"{name}.jpg")
    code, out, err = run_cli("import", root, "--project", tmp_path / "p")
    assert "found ids:" in out and "imported 3 of 4" in out and "Preview" in err, (out, err)
    project = Project.open(tmp_path / "p")
    road = CITYSCAPES_CLASSES.names.index("road")
    for im in project.images:
        if im.path.stem != "a":
            assert set(np.unique(project.load_annotation(im))) == {road}, im.path


def test_two_pictures_sorting_first_among_palette_maps_do_not_make_them_raw_ids(tmp_path, run_cli):
    """Cityscapes classes, labels/ holding one palette map (train id 0: road) and two pictures sorting
    first (COVER.PNG, Preview.png): the mode vote let the pictures, two of three, decide - the folder
    read as ids and road became ignore (255), silently; label maps decide wherever there is one."""
    from qgn.data.cityscapes import CITYSCAPES_CLASSES

    root = tmp_path / "cs"
    (root / "labels").mkdir(parents=True)
    (root / "images").mkdir()
    (root / "classes.txt").write_text("\n".join(CITYSCAPES_CLASSES.names) + "\nignore: 255\n")
    for name in ("COVER.PNG", "Preview.png"):
        Image.new("RGB", (8, 6), (1, 2, 3)).save(root / "labels" / name)
    palette = Image.fromarray(np.zeros((6, 8), np.uint8), mode="P")
    palette.putpalette([128, 64, 128] * 256)
    palette.save(root / "labels" / "scene.png")
    Image.new("RGB", (8, 6)).save(root / "images" / "scene.jpg")
    code, out, err = run_cli("import", root, "--project", tmp_path / "p")
    assert "found png:" in out and "imported 1 of 3" in out, (out, err)
    project = Project.open(tmp_path / "p")
    (im,) = project.images
    assert set(np.unique(project.load_annotation(im))) == {CITYSCAPES_CLASSES.names.index("road")}


def test_a_labelme_folder_with_a_depth_map_beside_each_photo_says_its_json_error(tmp_path, run_cli):
    """A labelme folder whose JSON holds NaN, a grey depth map beside each photo (half its PNGs): the
    maps were taken for id maps and the import asked for --classes; half or more photos beside
    unreadable JSON is a labelme/Label Studio folder, and the JSON's read error is said."""
    root = tmp_path / "lm"
    root.mkdir()
    for name in ("img1", "img2"):
        Image.new("RGB", (8, 6), (100, 20, 20)).save(root / f"{name}.png")
        Image.fromarray(np.ones((6, 8), np.uint8)).save(root / f"{name}_depth.png")
        (root / f"{name}.json").write_text('{"shapes": [], "imagePath": "%s.png", "score": NaN}' % name)
    code, _, err = run_cli("import", root, "--project", tmp_path / "p")
    assert code == 2 and "img1.json" in err and "NaN" in err and "--classes" not in err, err
    assert not (tmp_path / "p").exists()


def test_a_colour_preview_beside_each_palette_map_and_a_nan_metrics_json_is_still_a_label_folder(tmp_path, run_cli):
    """labels/sN_label.png (palette) with a colour preview sN_color.png beside each (half photos) and a
    metrics.json holding NaN (as Python's json.dump writes it) at the root: half photos beside any
    unreadable JSON was taken for a labelme folder and the import refused the folder naming
    metrics.json; only a JSON named as one of the photos (img1.json beside img1.png) makes it one."""
    root = tmp_path / "ds"
    (root / "labels").mkdir(parents=True)
    (root / "images").mkdir()
    (root / "classes.txt").write_text("void\nroad\n")
    (root / "metrics.json").write_text('{"miou": NaN}')
    for i in range(4):
        Image.new("RGB", (8, 6), (128, 64, 128)).save(root / "labels" / f"s{i}_color.png")
        palette = Image.fromarray(np.ones((6, 8), np.uint8), mode="P")
        palette.putpalette([0, 0, 0, 128, 64, 128] + [0] * 762)
        palette.save(root / "labels" / f"s{i}_label.png")
        Image.new("RGB", (8, 6)).save(root / "images" / f"s{i}_label.jpg")
    code, out, err = run_cli("import", root, "--project", tmp_path / "p")
    assert "found png:" in out and "imported 4 of 8" in out and "metrics.json" not in err, (out, err)


def test_a_photo_named_like_a_label_map_in_upper_case_is_no_clash(tmp_path, run_cli):
    """labels/scene_01.PNG, a copy of the photo, beside the label map labels/scene_01.png: the clash
    check (x.png beside x.PNG) refused the whole import, though a photo is never read as a label
    map; the photo is named as no label map and the label map imported, as any photo among labels."""
    import shutil
    from pathlib import Path

    root = tmp_path / "ds"
    shutil.copytree(Path(__file__).resolve().parents[2] / "resources" / "samples", root)
    shutil.copy(root / "images" / "scene_01.png", root / "labels" / "scene_01.PNG")
    code, out, err = run_cli("import", root, "--project", tmp_path / "p")
    assert "imported 6 of 7" in out and code == 2, (out, err)
    assert "scene_01.PNG" in err and "not a label map" in err and "rename one" not in err, err
    project = Project.open(tmp_path / "p")
    image = next(im for im in project.images if im.path.stem == "scene_01")
    np.testing.assert_array_equal(project.load_annotation(image), read_label(root / "labels" / "scene_01.png"))


def photo_and_map(folder, photo_name: str, map_name: str):
    """``folder`` holding one photo and one grey label map (ids 0 and 1, a class a half); the map."""
    folder.mkdir(parents=True, exist_ok=True)
    photo = np.random.default_rng(0).integers(0, 255, (8, 12, 3), dtype=np.uint8)
    Image.fromarray(photo).save(folder / photo_name)
    label = np.zeros((8, 12), np.uint8)
    label[:, 6:] = 1
    Image.fromarray(label).save(folder / map_name)
    (folder.parent / "classes.txt").write_text("road\nsky\n")
    return label


@pytest.mark.parametrize("photo_name", ["x.jpg", "x.PNG"])
def test_one_photo_and_its_grey_map_in_one_folder_import_together(tmp_path, run_cli, photo_name):
    """x.jpg beside the grey x.png (one folder, the folder's only files): detected as ids - right, the
    map holds ids - but its image was looked for in images/ alone: 'no image found … name the image
    folder with --images', and naming the folder itself left no label PNG (they lie among the images).
    A photo beside a map, of its name, is its image (never a label map: x.PNG is one only if a photo)."""
    label = photo_and_map(tmp_path / "one", photo_name, "x.png")
    code, out, err = run_cli("import", tmp_path / "one", "--classes", tmp_path / "classes.txt", "--project", tmp_path / "p")
    assert code == 0 and "imported 1 of 1" in out, out + err
    project = Project.open(tmp_path / "p")
    assert [im.path for im in project.images] == [tmp_path / "one" / photo_name]
    np.testing.assert_array_equal(project.load_annotation(project.images[0]), label)


@pytest.mark.parametrize("photo_name, map_name", [("photo.png", "label.png"), ("x.png", "x_label.png")])
def test_a_photo_and_a_map_named_otherwise_are_said_as_such(tmp_path, run_cli, photo_name, map_name):
    """photo.png and label.png: both were 'no image found for …; name the image folder with --images'
    (the photo too, as if a label map). Nothing pairs them by guess; the photo is said to be no label
    map, and the map that a label map takes its image's name, naming the photo."""
    photo_and_map(tmp_path / "one", photo_name, map_name)
    code, out, err = run_cli("import", tmp_path / "one", "--classes", tmp_path / "classes.txt", "--project", tmp_path / "p")
    assert code == 2 and not (tmp_path / "p").exists(), out + err
    said = {line.split("] ", 1)[1].split(":")[0]: line for line in out.splitlines() if line.startswith("[")}
    assert f"{photo_name} is a colour image, not a label map" in said[Path(photo_name).stem]
    assert f"the photo beside it, {photo_name}, has another name" in said[Path(map_name).stem]
    assert len([line for line in err.splitlines() if line.strip()]) == 1
