"""Named pipes and devices where a file belongs (an image, a mask, a .qgt): no reader opens one and
waits for a writer, none reads /dev/zero for ever, and none is left out without a word. Found by
the sixth hostile round: an export left a pipe's or /dev/zero's image out (or copied an empty
file, or hung) while it reported every image exported; ``qgn predict DIR`` and ``qgn eval`` left
such images out of their counts; ``read_qgt`` blocked on a pipe.

A test that runs the code before the fix must fail rather than hang: the shared ``fifo`` fixture
makes pipes whose waiting readers a helper thread lets go at once, and fails the test that waited."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qgn.classes import ClassSet
from qgn.project import Project
from qgn.project_export import export_project

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo") or not Path("/dev/zero").exists(),
                                reason="named pipes and /dev/zero are POSIX")

CLASSES = ClassSet(("road", "car", "sky"), ((128, 64, 128), (0, 0, 142), (70, 130, 180)), 255)
SPECIAL = ("a named pipe (FIFO)", "a character device")


def project_with_specials(tmp_path, fifo, zero: bool):
    """A project of three labelled images whose second file became a named pipe and (with ``zero``)
    whose third became a link to /dev/zero."""
    paths = []
    for name in ("good.png", "pipe.png", "zero.png"):
        path = tmp_path / "imgs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (12, 8), (10, 20, 30)).save(path)
        paths.append(path)
    project = Project.create(tmp_path / "p", paths, CLASSES)
    for image in project.images:
        project.save_annotation(image, np.ones((8, 12), np.uint8))
    paths[1].unlink()
    fifo(paths[1])
    paths[2].unlink()
    if zero:
        paths[2].symlink_to("/dev/zero")
    else:
        Image.new("RGB", (12, 8), (10, 20, 30)).save(paths[2])
    return project


# The formats that copy an image are given the pipe alone: before the fix they read /dev/zero
# until memory ran out.
@pytest.mark.parametrize("fmt, zero", [("camvid", False), ("cityscapes", False), ("labelstudio", False),
                                       ("coco", True), ("fiftyone", True), ("labelme", True), ("cvat", True)])
def test_an_export_reports_each_image_that_is_a_pipe_or_a_device(tmp_path, fifo, fmt, zero):
    project = project_with_specials(tmp_path, fifo, zero)
    errors: list[str] = []
    export_project(project, tmp_path / "out", [fmt], errors=errors, images="copy")
    assert len(errors) == 1 + zero, errors
    assert "pipe.png is a named pipe (FIFO)" in errors[0]
    if zero:
        assert "zero.png is a character device" in errors[1]
    written = {p.name for p in (tmp_path / "out").rglob("*") if p.is_file() and not p.is_symlink()}
    assert not any("pipe" in name or (zero and "zero" in name) for name in written), written


def test_a_qgt_export_needs_no_image(tmp_path, fifo):
    """A format that never reads the image exports the annotation of a pipe's image as any other."""
    project = project_with_specials(tmp_path, fifo, zero=True)
    errors: list[str] = []
    export_project(project, tmp_path / "out", ["qgt"], errors=errors)
    assert errors == []
    assert len(list((tmp_path / "out" / "qgt").glob("*.qgt"))) == 3


def write_qgt_file(path: Path) -> None:
    from qgn.quadtree import Quadtree
    from qgn.quadtree.qgt import write_qgt

    path.parent.mkdir(parents=True, exist_ok=True)
    write_qgt(path, Quadtree.from_label(np.ones((8, 12), np.uint8), 3, levels=3))


def test_cli_export_of_qgt_files_with_an_image_folder_reports_a_pipe(tmp_path, fifo, run_cli):
    for name in ("a", "b"):
        write_qgt_file(tmp_path / "q" / f"{name}.qgt")
    Image.new("RGB", (12, 8)).save(tmp_path / "q" / "a.png")
    fifo(tmp_path / "q" / "b.png")
    code, out, err = run_cli("export", tmp_path / "q", "--format", "camvid", "--out", tmp_path / "out")
    assert code == 2
    assert "b.png is a named pipe (FIFO)" in err and "exported 1 of 2 file(s)" in out, out + err


@pytest.mark.parametrize("command", ["predict", "stats", "export", "convert"])
def test_a_batch_reports_a_pipe_or_device_in_its_folder(tmp_path, fifo, command, run_cli):
    folder = tmp_path / "in"
    folder.mkdir()
    suffix = ".qgt" if command == "export" else ".png"
    if command == "export":
        write_qgt_file(folder / "a.qgt")
    else:
        Image.fromarray(np.ones((8, 12), np.uint8)).save(folder / "a.png")
    fifo(folder / f"b{suffix}")
    (folder / f"c{suffix}").symlink_to("/dev/zero")
    out_args = {"predict": ["--device", "cpu", "--threads", "1"], "stats": [],
                "export": ["--png", tmp_path / "o"], "convert": [tmp_path / "o", "--classes", "3"]}[command]
    code, out, err = run_cli(command, folder, *out_args)
    assert code == 2, out + err
    lines = err.splitlines()
    assert any(f"b{suffix} is a named pipe (FIFO), not a file" in line for line in lines), err
    assert any(f"c{suffix} is a character device, not a file" in line for line in lines), err
    assert "2 of 3" in err, err


def test_predict_names_a_pipe_given_by_name(tmp_path, fifo, run_cli):
    pipe = fifo(tmp_path / "b.png")
    code, _, err = run_cli("predict", pipe, "--device", "cpu")
    assert code == 2
    assert f"{pipe} is a named pipe (FIFO), not a file" in err and "no such file" not in err, err


def test_eval_refuses_a_dataset_folder_holding_a_pipe(tmp_path, fifo, run_cli):
    root = tmp_path / "ds"
    for sub in ("images", "labels"):
        (root / sub).mkdir(parents=True)
    (root / "classes.txt").write_text("road\ncar\nsky\n")
    for name in ("a", "b"):
        Image.fromarray(np.ones((8, 12), np.uint8)).save(root / "labels" / f"{name}.png")
    Image.new("RGB", (12, 8)).save(root / "images" / "a.png")
    fifo(root / "images" / "b.png")
    code, _, err = run_cli("eval", root, "--device", "cpu", "--threads", "1")
    assert code == 2
    assert err.startswith("qgn eval: error: ") and "b.png is a named pipe (FIFO)" in err, err


def test_read_qgt_and_open_image_refuse_a_pipe(tmp_path, fifo):
    from qgn.imagefile import open_image
    from qgn.quadtree.qgt import read_qgt

    for name, read in (("x.qgt", read_qgt), ("x.png", lambda p: open_image(p).__enter__())):
        pipe = fifo(tmp_path / name)
        with pytest.raises(ValueError, match="named pipe"):
            read(pipe)


def test_an_import_reports_a_dataset_file_that_is_a_pipe_and_goes_on(tmp_path, fifo, run_cli):
    """A labelme folder holding a named pipe called x.json: the import read it and waited for ever."""
    image = tmp_path / "imgs" / "good.png"
    image.parent.mkdir()
    Image.new("RGB", (12, 8), (10, 20, 30)).save(image)
    project = Project.create(tmp_path / "p", [image], CLASSES)
    project.save_annotation(project.images[0], np.ones((8, 12), np.uint8))
    export_project(project, tmp_path / "out", ["labelme"], images="copy")
    fifo(tmp_path / "out" / "labelme" / "pipe.json")
    code, out, err = run_cli("import", tmp_path / "out" / "labelme", "--format", "labelme", "--project", tmp_path / "q")
    assert code == 2 and "imported 1 of 2" in out, out + err
    assert "pipe.json is a named pipe (FIFO)" in err, err


def test_writing_beside_a_project_json_that_is_a_pipe_does_not_wait_on_it(tmp_path, fifo, run_cli):
    """Every command checks that its outputs are no QGN project's files, reading a project.json in
    the folders above them: one that is a named pipe made ``qgn convert`` wait for ever."""
    fifo(tmp_path / "out" / "project.json")
    mask = tmp_path / "m.png"
    Image.fromarray(np.ones((8, 12), np.uint8)).save(mask)
    code, _, err = run_cli("convert", mask, tmp_path / "out" / "m.qgt", "--classes", "3")
    assert code == 0, err
    assert (tmp_path / "out" / "m.qgt").is_file()


def test_a_cvat_export_into_a_folder_whose_image_list_is_a_pipe_does_not_wait_on_it(tmp_path, fifo, run_cli):
    """A CVAT export merges its image list with the one in the folder: a pipe there was read for ever."""
    write_qgt_file(tmp_path / "q" / "a.qgt")
    fifo(tmp_path / "out" / "ImageSets" / "Segmentation" / "default.txt")
    code, _, err = run_cli("export", tmp_path / "q" / "a.qgt", "--format", "cvat", "--out", tmp_path / "out")
    assert code == 2 and "default.txt is a named pipe (FIFO)" in err, err


@pytest.mark.parametrize("fmt, name", [("camvid", "label_colors.txt"), ("labelme", "labels.txt"),
                                       ("cvat", "labelmap.txt")])
def test_an_export_into_a_folder_whose_class_list_is_a_pipe_does_not_wait_on_it(tmp_path, fifo, run_cli, fmt, name):
    """An export compares the class list already in its folder with its own before writing anything."""
    write_qgt_file(tmp_path / "q" / "a.qgt")
    fifo(tmp_path / "out" / name)
    code, _, err = run_cli("export", tmp_path / "q" / "a.qgt", "--format", fmt, "--out", tmp_path / "out")
    assert code == 2 and f"{name} is a named pipe (FIFO)" in err, err


def test_a_socket_named_as_a_quadtree_file_is_named_for_what_it_is(tmp_path, run_cli):
    """A socket cannot even be opened: the batch said "[Errno 6] No such device or address"."""
    import socket

    write_qgt_file(tmp_path / "q" / "a.qgt")
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(tmp_path / "q" / "b.qgt"))
        code, _, err = run_cli("export", tmp_path / "q", "--png", tmp_path / "o")
    finally:
        server.close()
    assert code == 2 and "b.qgt is a socket, not a file" in err, err


def test_a_project_export_failure_naming_a_file_with_a_line_break_is_reported_whole(tmp_path, fifo, run_cli):
    """The failure's text was cut at the first line break: '… its image /…/a' and no reason."""
    image = tmp_path / "imgs" / "a\nb.png"
    image.parent.mkdir()
    Image.new("RGB", (12, 8)).save(image)
    project = Project.create(tmp_path / "p", [image], CLASSES)
    project.save_annotation(project.images[0], np.ones((8, 12), np.uint8))
    image.unlink()
    fifo(image)
    code, out, err = run_cli("export", "--project", tmp_path / "p", "--formats", "coco", "--out", tmp_path / "o")
    assert code == 2 and "a\\nb.png is a named pipe (FIFO)" in err, err
    assert all(line.startswith("qgn export: ") for line in err.splitlines()) and "a\nb" not in out, out + err


# A write renames a new file over the output's name: as root, `qgn convert mask.png /dev/null`
# replaced /dev/null itself with a regular file (and a pipe anyone's reader waits on, for everyone).
def test_a_write_never_replaces_a_pipe_or_device_named_as_its_output(tmp_path):
    from qgn.fileio import NotAFileError, atomic_write_bytes

    pipe = tmp_path / "out.qgt"
    os.mkfifo(pipe)
    with pytest.raises(NotAFileError, match="out.qgt is a named pipe \\(FIFO\\), not a file"):
        atomic_write_bytes(pipe, b"data")
    assert Path(pipe).is_fifo() and os.listdir(tmp_path) == ["out.qgt"]  # no temporary left either


@pytest.mark.parametrize("command", ["convert", "export"])
def test_cli_outputs_named_as_a_pipe_are_refused_and_kept(tmp_path, run_cli, command):
    Image.fromarray(np.ones((8, 12), np.uint8)).save(tmp_path / "m.png")
    write_qgt_file(tmp_path / "m.qgt")
    pipe = tmp_path / "out"
    os.mkfifo(pipe)
    argv = {"convert": [tmp_path / "m.png", pipe], "export": [tmp_path / "m.qgt", "--png", pipe]}[command]
    code, _, err = run_cli(command, *argv)
    assert code == 2 and f"{pipe} is a named pipe (FIFO), not a file" in err, err
    assert pipe.is_fifo()


@pytest.fixture
def read_fifo(tmp_path):
    """``read_fifo(path)`` makes a named pipe at ``path`` with a reader holding it open and draining
    it, so that a writer that opens it neither waits nor blocks (it would hang the test on the code
    before the fix); ``read_fifo.got`` counts the bytes that came through."""
    import select
    import threading

    stop, readers = threading.Event(), []

    def make(path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(path)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)

        def drain():
            while not stop.is_set():
                if select.select([fd], [], [], 0.05)[0]:
                    make.got += len(os.read(fd, 1 << 16))
        thread = threading.Thread(target=drain, daemon=True)
        thread.start()
        readers.append((fd, thread))
        return path

    make.got = 0
    yield make
    stop.set()
    for fd, thread in readers:
        thread.join()
        os.close(fd)


def _log(path):
    from qgn.train.loop import _Log

    return _Log(path, True, 1)


def _anytime_csv(path):
    from qgn.bench.anytime import write_csv

    return write_csv(None, path)


def _anytime_png(path):
    from qgn.bench.anytime_plot import plot_curve

    return plot_curve(None, path, "t")


def _annotate_png(path):
    from qgn.bench.annotate_plot import plot_sequences

    return plot_sequences({}, path)


@pytest.mark.parametrize("writer", [_log, _anytime_csv, _anytime_png, _annotate_png])
@pytest.mark.parametrize("how", ["pipe", "link to a pipe"])
def test_writers_that_open_the_path_refuse_a_pipe(tmp_path, read_fifo, writer, how):
    """A run's log.csv, the anytime CSV and plots are opened at their path (not a new file renamed
    over it): a FIFO there hung the command until someone read it, and took the bytes."""
    from qgn.fileio import NotAFileError

    pipe = read_fifo(tmp_path / "pipe")
    path = pipe if how == "pipe" else tmp_path / "out.csv"
    if how != "pipe":
        path.symlink_to(pipe)
    with pytest.raises(NotAFileError) as raised:
        writer(path)
    # a link was called "a named pipe" itself; log.csv is a name the user never chose
    what = "a named pipe (FIFO)" if how == "pipe" else f"a link to {pipe}, a named pipe (FIFO)"
    advice = "remove it or choose another --out" if writer is _log else "choose a file name for the output"
    assert str(raised.value) == (f"{path} is {what}, not a file: writing there would write into it "
                                 f"(or wait for a reader for ever); {advice}")
    assert read_fifo.got == 0


@pytest.mark.parametrize("name, follow", [("log.csv", True), ("last.json", False)])
def test_train_refuses_a_pipe_among_its_outputs_before_the_data_and_model(tmp_path, read_fifo, run_cli, monkeypatch,
                                                                          name, follow):
    """log.csv's check came after the data and the model were prepared (a checkpoint's at the
    first save, after the iterations), and advised choosing a file name the user never chose."""
    def no_data(*_a, **_k):
        raise AssertionError("the data was opened before the refusal")

    monkeypatch.setattr("qgn.train.loop.open_training_data", no_data)
    pipe = read_fifo(tmp_path / "out" / name)
    code, out, err = run_cli("train", "--preset", "demo", "--set", "iterations=1", "--out", tmp_path / "out",
                             "--device", "cpu", "--threads", "1")
    would = "write into it (or wait for a reader for ever)" if follow else "replace it with a file"
    assert code == 2 and err == (f"qgn train: error: {pipe} is a named pipe (FIFO), not a file: writing there would "
                                 f"{would}; remove it or choose another --out\n"), err
    assert read_fifo.got == 0


def test_samples_force_refuses_a_pipe_among_its_files_before_writing(tmp_path, run_cli, read_fifo):
    """`qgn samples --force` saved scene images with PIL at their path: "File or stream is not
    seekable." naming no file for a pipe, and a device there was written into (exit 0)."""
    out = tmp_path / "out"
    pipe = read_fifo(out / "images" / "scene_01.png")
    code, _, err = run_cli("samples", out, "--count", "1", "--size", "64x64", "--force")
    assert code == 2 and err == (f"qgn samples: error: {pipe} is a named pipe (FIFO), not a file: writing there "
                                 "would replace it with a file; choose a file name for the output\n"), err
    assert sorted(p.name for p in out.rglob("*")) == ["images", "scene_01.png"] and read_fifo.got == 0


def test_samples_write_scene_images_as_new_files(tmp_path, run_cli):
    """A scene image is written as every output is: a new file renamed over the name (an image held
    open elsewhere, or hard-linked, keeps its bytes)."""
    out = tmp_path / "out"
    assert run_cli("samples", out, "--count", "1", "--size", "64x64")[0] == 0
    image = out / "images" / "scene_01.png"
    keep = tmp_path / "kept.png"
    os.link(image, keep)
    before = keep.read_bytes()
    assert run_cli("samples", out, "--count", "1", "--size", "64x64", "--seed", "2000001", "--force")[0] == 0
    assert keep.read_bytes() == before and image.read_bytes() != before
    assert np.asarray(Image.open(image)).shape == (64, 64, 3)


def test_bench_refuses_a_pipe_as_the_anytime_csv_before_the_curve_runs(tmp_path, read_fifo, capsys, monkeypatch):
    from qgn.cli.bench import anytime_stem
    from qgn.cli.main import main

    def no_section(*_a, **_k):
        raise AssertionError("a section ran before the refusal")

    monkeypatch.setattr("qgn.cli.bench._load_model", no_section)
    pipe = read_fifo(tmp_path / "out" / f"{anytime_stem('synthetic')}.csv")
    code = main(["bench", "--only", "anytime", "--data", "synthetic", "--model", "demo", "--out", str(tmp_path / "out"),
                 "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err == (f"qgn bench: error: {pipe} is a named pipe (FIFO), not a file: writing there would "
                                 "write into it (or wait for a reader for ever); remove it or choose another --out\n"), err


@pytest.mark.parametrize("argv", [["stats"], ["convert", "{out}"], ["export", "--png", "{out}"], ["import", "--project", "{out}"],
                                  ["import", "--format", "coco", "--project", "{out}"]])
def test_a_loop_of_links_given_as_the_input_is_said_as_one(tmp_path, run_cli, argv):
    """A loop of links named as the input was "no such file or folder"."""
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    command, *rest = argv
    code, out, err = run_cli(command, tmp_path / "a", *(r.format(out=tmp_path / "out") for r in rest))
    assert code == 2 and err == (f"qgn {command}: error: {tmp_path / 'a'}: is a loop of symbolic links, which leads "
                                 "nowhere (remove the link)\n"), err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("fmt", ["auto", "coco"])
@pytest.mark.parametrize("kind", ["device", "pipe"])
def test_import_of_a_device_or_a_pipe_says_what_it_is(tmp_path, run_cli, kind, fmt):
    """`qgn import /dev/zero` said "found no dataset (looked for …)"."""
    src = Path("/dev/zero") if kind == "device" else tmp_path / "pipe"
    if kind == "pipe":
        os.mkfifo(src)
    code, out, err = run_cli("import", src, "--format", fmt, "--project", tmp_path / "p")
    what = "a character device" if kind == "device" else "a named pipe (FIFO)"
    assert code == 2 and err.startswith(f"qgn import: error: {src} is {what}, not a file: ") and err.count("\n") == 1, err
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("option, given, said", [
    ("--images", "device", "--images /dev/zero: is a character device, not a folder; name a folder"),  # "no such folder"
    ("--images", "file", "--images {tmp}/s/classes.txt: is a file, not a folder; name a folder"),  # "no such folder"
    ("--images", "loop", "--images {tmp}/a: is a loop of symbolic links, which leads nowhere (remove the link)"),
    ("--classes", "loop", "--classes: {tmp}/a: is a loop of symbolic links, which leads nowhere (remove the link)"),
    # the loop's message without the option (fails before)
    ("--project", "loop", "--project {tmp}/a: is a loop of symbolic links, which leads nowhere (remove the link)"),
    # "Too many levels of symbolic links" named the option, not which folder above was the loop (fails before)
    ("--project", "in loop", "--project {tmp}/a/p: the folder {tmp}/a on its path is a loop of symbolic links, which "
                             "leads nowhere (remove the link)"),
    # the same, without even the option: the error was of {tmp}/a/p, a folder above the project (fails before)
    ("--project", "deep in loop", "--project {tmp}/a/p/q: the folder {tmp}/a on its path is a loop of symbolic "
                                  "links, which leads nowhere (remove the link)"),
    # "/dev/zero is a file, not a folder"
    ("--project", "device", "--project /dev/zero: /dev/zero is a character device, not a folder; choose an empty or "
                            "new folder for the project"),
])
def test_import_says_what_an_option_names_instead_of_a_folder_or_file(tmp_path, run_cli, option, given, said):
    from qgn.cli.samples import write_samples

    write_samples(tmp_path / "s", 1, 64, 48, 7)
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    value = {"device": "/dev/zero", "file": tmp_path / "s" / "classes.txt", "loop": tmp_path / "a",
             "in loop": tmp_path / "a" / "p", "deep in loop": tmp_path / "a" / "p" / "q"}[given]
    argv = {"--project": [option, value]}.get(option, ["--project", tmp_path / "p", option, value])
    code, out, err = run_cli("import", tmp_path / "s", *argv)
    assert code == 2 and err == f"qgn import: error: {said.format(tmp=tmp_path)}\n", err
    assert not (tmp_path / "p").exists()
