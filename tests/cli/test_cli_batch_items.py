"""Batch commands report a bad item in one line naming it, go on with the rest, and end with exit
status 2 and a line saying how many failed (``qgn.cli.files.Failures``)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from qgn.quadtree.label_io import read_label
from qgn.quadtree.qgt import read_qgt
from sample_files import write_mask


def mask_folder(root, bad: bytes = b"junk"):
    """``root/a.png``, ``root/b.png`` (bad bytes), ``root/c.png``: the bad one sorts between the others."""
    write_mask(root / "a.png", 1)
    (root / "b.png").write_bytes(bad)
    write_mask(root / "c.png", 2)
    return root


def qgt_folder(tmp_path, run_cli):
    """``qgts/a.qgt``, ``qgts/b.qgt`` (truncated), ``qgts/c.qgt``."""
    write_mask(tmp_path / "m" / "a.png", 1)
    write_mask(tmp_path / "m" / "b.png", 1)
    write_mask(tmp_path / "m" / "c.png", 2)
    assert run_cli("convert", tmp_path / "m", tmp_path / "qgts", "--classes", "3")[0] == 0
    b = tmp_path / "qgts" / "b.qgt"
    b.write_bytes(b.read_bytes()[:-3])
    return tmp_path / "qgts"


def assert_reported(err: str, bad, total: int) -> None:
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    assert any(line.startswith("qgn ") and ": error: " in line and str(bad) in line for line in lines), err
    assert f"1 of {total} file(s) failed" in lines[-1] and str(bad) in lines[-1], err


def test_convert_folder_goes_on_after_a_bad_mask(tmp_path, capsys, run_cli):
    src = mask_folder(tmp_path / "in")
    for extra in ([], ["--classes", "3"]):  # with and without a class count read from all the masks
        out = tmp_path / f"out{len(extra)}"
        code, stdout, err = run_cli("convert", src, out, *extra)
        assert code == 2 and "converted 2 of 3 file(s)" in stdout
        assert_reported(err, src / "b.png", 3)
        assert sorted(p.name for p in out.iterdir()) == ["a.qgt", "c.qgt"]
        assert np.array_equal(read_qgt(out / "c.qgt")[0].to_label(), read_label(src / "c.png"))


def test_stats_goes_on_after_a_bad_mask(tmp_path, capsys, run_cli):
    src = mask_folder(tmp_path / "in")
    code, stdout, err = run_cli("stats", src, "--json")
    assert code == 2 and json.loads(stdout)["images"] == 2
    assert_reported(err, src / "b.png", 3)


def test_export_png_folder_goes_on_after_a_truncated_qgt(tmp_path, capsys, run_cli):
    src = qgt_folder(tmp_path, run_cli)
    code, stdout, err = run_cli("export", src, "--png", tmp_path / "png")
    assert code == 2 and "exported 2 of 3 file(s)" in stdout
    assert_reported(err, src / "b.qgt", 3)
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == ["a.png", "c.png"]


def test_export_labelme_folder_goes_on_after_a_truncated_qgt(tmp_path, capsys, run_cli):
    src = qgt_folder(tmp_path, run_cli)
    code, stdout, err = run_cli("export", src, "--format", "labelme", "--out", tmp_path / "lm")
    assert code == 2 and "exported 2 of 3 file(s)" in stdout
    assert_reported(err, src / "b.qgt", 3)
    assert sorted(p.name for p in (tmp_path / "lm").iterdir()) == ["a.json", "c.json", "labels.txt"]


def test_predict_skips_an_output_name_taken_by_a_folder(tmp_path, capsys, model_path, run_cli):
    from sample_files import write_photo

    for name, seed in (("a", 0), ("b", 1), ("c", 2)):
        write_photo(tmp_path / "in" / f"{name}.png", seed=seed)
    (tmp_path / "out" / "a.png").mkdir(parents=True)
    (tmp_path / "out" / "b.qgt").mkdir()  # b's .png would be written, then its .qgt fails: neither stays
    code, _, err = run_cli("predict", "--model", model_path, tmp_path / "in", "--out", tmp_path / "out")
    assert code == 2 and ".tmp" not in err and "Traceback" not in err
    assert f"{tmp_path / 'out' / 'a.png'}: is a folder" in err and f"{tmp_path / 'out' / 'b.qgt'}: is a folder" in err
    assert "2 of 3 image(s) failed" in err.strip().splitlines()[-1]
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_file()) == ["c.png", "c.qgt"]
    assert not list((tmp_path / "out").glob(".*"))


def test_export_png_folder_skips_an_output_name_taken_by_a_folder(tmp_path, capsys, run_cli):
    src = qgt_folder(tmp_path, run_cli)
    (src / "b.qgt").unlink()
    (tmp_path / "png" / "a.png").mkdir(parents=True)
    code, stdout, err = run_cli("export", src, "--png", tmp_path / "png")
    assert code == 2 and ".tmp" not in err and f"{tmp_path / 'png' / 'a.png'}: is a folder" in err
    assert "exported 1 of 2 file(s)" in stdout and (tmp_path / "png" / "c.png").is_file()


def labelme_dataset(tmp_path, run_cli):
    """A labelme export of three sample scenes (``ds/``) and their images (``samples/images``)."""
    assert run_cli("samples", tmp_path / "samples", "--count", "3", "--size", "32x24")[0] == 0
    samples = tmp_path / "samples"
    assert run_cli("convert", samples / "labels", tmp_path / "q", "--classes", samples / "classes.txt")[0] == 0
    assert run_cli("export", tmp_path / "q", "--format", "labelme", "--out", tmp_path / "ds",
                   "--images", samples / "images")[0] == 0
    return tmp_path / "ds", samples / "images"


def test_import_labelme_goes_on_after_a_truncated_file(tmp_path, capsys, run_cli):
    from qgn.project import Project

    ds, images = labelme_dataset(tmp_path, run_cli)
    for name in ("scene_01", "scene_02"):  # the first file (the one detection looks at) and a later one
        folder = tmp_path / f"lm_{name}"
        folder.mkdir()
        for path in ds.glob("*.json"):
            data = path.read_bytes()
            (folder / path.name).write_bytes(data[:500] if path.stem == name else data)
        code, out, err = run_cli("import", folder, "--project", tmp_path / f"P_{name}", "--images", images)
        assert code == 2 and "found labelme" in out and "imported 2 of 3 item(s)" in out, err
        assert str(folder / f"{name}.json") in err and "1 of 3 item(s) skipped" in err
        project = Project.open(tmp_path / f"P_{name}")
        assert sorted(im.path.stem for im in project.annotated()) == sorted({"scene_01", "scene_02", "scene_03"} - {name})


def test_import_into_a_read_only_project_counts_only_what_it_holds(tmp_path, capsys, run_cli, read_only):
    from qgn.project import Project

    ds, images = labelme_dataset(tmp_path, run_cli)
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(ds / "scene_01.json", one)
    classes = tmp_path / "samples" / "classes.txt"
    assert run_cli("import", one, "--project", tmp_path / "P", "--images", images, "--classes", classes)[0] == 0
    read_only(tmp_path / "P")
    code, out, err = run_cli("import", ds, "--project", tmp_path / "P", "--images", images)
    assert code == 2 and "imported 0 of 3 item(s)" in out and "3 of 3 item(s) skipped" in err, (out, err)
    assert len(Project.open(tmp_path / "P").images) == 1
    assert "(1 images)" in out, out  # what the project holds, not the images it could not add


def test_import_labelme_with_a_json_list_is_not_label_studio(tmp_path, capsys, run_cli):
    from qgn.project import Project

    ds, images = labelme_dataset(tmp_path, run_cli)
    folder = tmp_path / "lm"
    folder.mkdir()
    for path in ds.glob("*.json"):
        (folder / path.name).write_bytes(b"[1, 2]" if path.stem == "scene_01" else path.read_bytes())
    code, out, err = run_cli("import", folder, "--project", tmp_path / "P", "--images", images)
    assert code == 0 and "found labelme" in out and "Label Studio" not in err, err
    assert "passed over" in err and str(folder / "scene_01.json") in err  # said, in one line naming it
    assert len(Project.open(tmp_path / "P").images) == 2
    assert all(im.file is not None for im in Project.open(tmp_path / "P").images), "imported: their files noted"


def test_predict_with_one_unusable_ground_truth_predicts_every_image(tmp_path, capsys, model_path, run_cli):
    from sample_files import write_photo

    for name, seed in (("a", 0), ("b", 1), ("c", 2)):
        write_photo(tmp_path / "in" / f"{name}.png", seed=seed)
    write_mask(tmp_path / "gt" / "a.png", 0, (40, 32))
    write_mask(tmp_path / "gt" / "b.png", 0, (20, 16))  # another size
    write_mask(tmp_path / "gt" / "c.png", 200, (40, 32))  # values that are no class of the model
    code, out, err = run_cli("predict", "--model", model_path, tmp_path / "in", "--labels", tmp_path / "gt",
                             "--out", tmp_path / "out", "--json")
    records = {json.loads(line)["image"]: json.loads(line) for line in out.strip().splitlines()}
    assert code == 2 and len(records) == 3 and "Traceback" not in err
    assert "acc" in records[str(tmp_path / "in" / "a.png")]
    for name in ("b", "c"):
        record = records[str(tmp_path / "in" / f"{name}.png")]
        assert "acc" not in record and str(tmp_path / "gt" / f"{name}.png") in record["accuracy_unavailable"]
        assert str(tmp_path / "gt" / f"{name}.png") in err
    assert "2 of 3 image(s) predicted without accuracy" in err.strip().splitlines()[-1]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{n}.{s}" for n in "abc" for s in ("png", "qgt")]


def exported_names(out):
    """What each format of a multi-format export lists: image names of COCO and Label Studio, the
    CVAT masks and image set."""
    coco = json.loads((out / "coco" / "annotations" / "instances_default.json").read_text())
    tasks = json.loads((out / "labelstudio" / "tasks.json").read_text())
    return {"coco": sorted(Path(i["file_name"]).stem for i in coco["images"]),
            "coco_annotated": sorted({i["image_id"] for i in coco["annotations"]}),
            "labelstudio": sorted(Path(t["data"]["image"]).stem for t in tasks),
            "labelstudio_images": sorted(p.stem for p in (out / "labelstudio" / "images").iterdir()),
            "cvat": sorted(p.stem for p in (out / "cvat" / "SegmentationClass").iterdir()),
            "cvat_objects": sorted(p.stem for p in (out / "cvat" / "SegmentationObject").iterdir()),
            "cvat_list": sorted((out / "cvat" / "ImageSets" / "Segmentation" / "default.txt").read_text().split())}


def test_multi_format_export_leaves_a_failed_file_out_of_every_format(tmp_path, capsys, run_cli):
    bad = "extra"  # no image: Label Studio, the last format, refuses it
    ds, images = labelme_dataset(tmp_path, run_cli)
    src = tmp_path / "q"
    shutil.copy(src / "scene_01.qgt", src / f"{bad}.qgt")
    code, out, err = run_cli("export", src, "--format", "cvat,coco,labelstudio", "--out", tmp_path / "x",
                             "--images", images)
    assert code == 2 and "exported 3 of 4 file(s)" in out and "1 of 4 file(s) failed" in err, err
    names = exported_names(tmp_path / "x")
    assert names.pop("coco_annotated") == [1, 2, 3]
    assert all(found == ["scene_01", "scene_02", "scene_03"] for found in names.values()), names


def test_a_folder_reexport_keeps_the_earlier_entry_of_a_file_that_fails_now(tmp_path, capsys, run_cli):
    """``qgn export`` of a folder of .qgt files into the folder of an earlier export: a file that
    cannot be read now keeps its earlier entry in COCO's JSON, CVAT's list and Label Studio's tasks
    (its masks and image copy are still there), read back with the label it was exported with."""
    from qgn.formats import scan_dataset

    ds, images = labelme_dataset(tmp_path, run_cli)
    src, out = tmp_path / "q", tmp_path / "x"
    argv = ("export", src, "--format", "cvat,coco,labelstudio", "--out", out, "--images", images)
    assert run_cli(*argv)[0] == 0
    before = {name: scan_dataset(out / name) for name in ("cvat", "coco", "labelstudio")}
    (src / "scene_02.qgt").write_bytes((src / "scene_02.qgt").read_bytes()[:-3])
    code, stdout, err = run_cli(*argv)
    assert code == 2 and "exported 2 of 3 file(s)" in stdout
    names = exported_names(out)
    assert names.pop("coco_annotated") == [1, 2, 3]
    assert all(found == ["scene_01", "scene_02", "scene_03"] for found in names.values()), names
    for name, earlier in before.items():
        after = {i.name: i for i in scan_dataset(out / name).items}
        for item in earlier.items:
            np.testing.assert_array_equal(after[item.name].read(earlier.file_classes), item.read(earlier.file_classes))


def test_project_export_leaves_an_image_gone_out_of_the_formats_that_need_its_file(tmp_path, capsys, run_cli):
    ds, images = labelme_dataset(tmp_path, run_cli)
    photos = tmp_path / "photos"
    shutil.copytree(images, photos)
    assert run_cli("import", ds, "--project", tmp_path / "P", "--images", photos)[0] == 0
    (photos / "scene_02.png").unlink()  # Label Studio shows each task's image: this one fails there
    code, out, err = run_cli("export", "--project", tmp_path / "P", "--formats", "cvat,coco,labelstudio",
                             "--out", tmp_path / "x")
    assert code == 2 and "scene_02: failed as labelstudio: " in err, err
    names = exported_names(tmp_path / "x")  # CVAT's masks and COCO's JSON need no image file: written
    assert names.pop("coco_annotated") == [1, 2, 3]
    assert names.pop("labelstudio") == names.pop("labelstudio_images") == ["scene_01", "scene_03"]
    assert all(found == ["scene_01", "scene_02", "scene_03"] for found in names.values()), names


def test_label_studio_writer_leaves_no_image_copy_for_a_name_it_cannot_hold(tmp_path):
    import os

    from qgn.formats import FORMATS, ExportItem
    from qgn.quadtree.label_io import read_classes_file

    from qgn.cli.samples import write_samples

    write_samples(tmp_path / "s", 1, 16, 16, 0)
    classes = read_classes_file(tmp_path / "s" / "classes.txt")
    writer = FORMATS["labelstudio"].open_writer(classes, tmp_path / "ls")
    name = os.fsdecode(b"bad\xff\xfe")  # a non-UTF-8 file name: no task can hold it
    with pytest.raises(ValueError):
        writer.add(ExportItem(name, read_label(tmp_path / "s" / "labels" / "scene_01.png"),
                              tmp_path / "s" / "images" / "scene_01.png"))
    assert not (tmp_path / "ls").exists() or not list((tmp_path / "ls").rglob("*.png"))


def test_import_of_nothing_new_does_not_say_it_added_to_the_project(tmp_path, capsys, run_cli):
    ds, images = labelme_dataset(tmp_path, run_cli)
    assert run_cli("import", ds, "--project", tmp_path / "P", "--images", images)[0] == 0
    code, out, err = run_cli("import", ds, "--project", tmp_path / "P", "--images", images)
    assert code == 2 and "imported 0 of 3 item(s)" in out, (out, err)
    assert "; added to the project" not in out and "; nothing was added to the project" in out, out


def test_predict_says_before_predicting_that_an_images_qgt_would_be_too_large(tmp_path, capsys, model_path, run_cli,
                                                                             monkeypatch):
    # a strip 4.2 M pixels wide was predicted whole (seconds, a GB), then its .qgt was refused with
    # advice predict cannot follow ("use fewer levels"); the other images go on
    from PIL import Image

    from qgn.cli import predict
    from sample_files import write_photo

    (tmp_path / "in").mkdir()
    Image.new("RGB", (5_000_000, 1)).save(tmp_path / "in" / "strip.png")
    write_photo(tmp_path / "in" / "photo.png", seed=0)
    predicted = []
    real = predict.predict_one
    monkeypatch.setattr(predict, "predict_one", lambda model, path, *a, **k: predicted.append(path.name) or real(
        model, path, *a, **k))
    code, _, err = run_cli("predict", "--model", model_path, tmp_path / "in", "--out", tmp_path / "out")
    assert code == 2 and predicted == ["photo.png"]
    assert f"{tmp_path / 'in' / 'strip.png'}: its prediction would not fit a .qgt" in err and "crop the image" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["photo.png", "photo.qgt"]


def test_stats_says_a_label_it_may_not_read_in_words(tmp_path, run_cli, monkeypatch):
    """A label file the system refuses to read (permission) is one line for a person: its path,
    the reason and what to do; it was Python's "[Errno 13] Permission denied: '<path>'"."""
    import errno
    import os

    from PIL import Image

    label = tmp_path / "label.png"
    write_mask(label, 1)
    real_open = Image.open

    def refused(fp, *args, **kwargs):
        if str(fp) == str(label):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(label))
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", refused)
    code, _, err = run_cli("stats", label)
    assert code == 2 and "[Errno" not in err
    assert f"{label} could not be read: {os.strerror(errno.EACCES)} (" in err


@pytest.mark.parametrize("command", ["stats", "convert", "predict"])
@pytest.mark.parametrize("link", ["dangling", "loop"])
def test_a_link_to_nothing_in_a_batch_folder_is_reported_not_left_out(tmp_path, run_cli, command, link):
    """A folder's link to a moved image (or a loop of links) was left out without a word: the batch
    counted the others only and exited 0. Its line carries one fix: predict's added a second, "(make
    what it points to, or remove the link) (check the file, the disk and the path)"."""
    folder = tmp_path / "in"
    write_mask(folder / "a.png", 1)
    if link == "dangling":
        (folder / "b.png").symlink_to(tmp_path / "moved" / "b.png")
    else:
        (folder / "b.png").symlink_to(folder / "x.png")
        (folder / "x.png").symlink_to(folder / "b.png")
    outputs = {"convert": [tmp_path / "out"], "predict": ["--model", "demo", "--out", tmp_path / "out"]}.get(command, [])
    code, _, err = run_cli(command, folder, *outputs)
    said = {"dangling": f"is a link to {tmp_path / 'moved' / 'b.png'}, which does not exist (make what it points "
                        "to, or remove the link)",
            "loop": "is a loop of symbolic links, which leads nowhere (remove the link)"}
    names = ["b.png"] if link == "dangling" else ["b.png", "x.png"]
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert code == 2 and lines == [f"qgn {command}: error: {folder / name}: {said[link]}" for name in names], err


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="named pipes are POSIX")
@pytest.mark.parametrize("piped", ["a", "c"])
def test_a_pipe_among_a_folder_conversions_outputs_is_one_bad_item(tmp_path, run_cli, piped):
    """The last output of each folder went through the up-front check, the others were written one by
    one: a pipe at c.qgt refused the whole batch, a pipe at a.qgt was one bad item. Now both are
    one bad item, and the rest are converted."""
    import os

    folder = tmp_path / "m"
    for name, value in (("a", 1), ("b", 1), ("c", 2)):
        write_mask(folder / f"{name}.png", value)
    out = tmp_path / "q"
    out.mkdir()
    pipe = out / f"{piped}.qgt"
    os.mkfifo(pipe)
    code, said, err = run_cli("convert", folder, out, "--classes", "3")
    assert code == 2 and err.splitlines()[0] == (
        f"qgn convert: error: {folder / piped}.png: {pipe} is a named pipe (FIFO), not a file: writing there would replace it with a file; "
        "choose a file name for the output"), err
    assert "1 of 3 file(s) failed" in err.splitlines()[-1] and "converted 2 of 3 file(s)" in said, said + err
    assert pipe.is_fifo() and sorted(p.name for p in out.iterdir() if not p.is_fifo()) == \
        sorted(f"{n}.qgt" for n in "abc" if n != piped)
