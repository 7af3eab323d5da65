"""Issue #16 (hardening): hostile project files, outputs that would overwrite inputs, memory bombs,
big images and one-line errors instead of tracebacks. Each test reproduces a finding of the issue."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qgn.classes import ClassSet
from qgn.fileio import OutsideRootError, path_inside
from qgn.project import PROJECT_FILE, Project, ProjectError, export_project

CLASSES = ClassSet(("sky", "road", "car"), ((70, 130, 180), (128, 64, 128), (0, 0, 142)), 255)
LABEL = np.array([[0, 1, 2, 1], [255, 255, 1, 0]])


def run_cli(capsys, *argv):
    from qgn.cli.main import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def make_project(tmp_path: Path, names=("a.png", "b.png")) -> Project:
    images = []
    for name in names:
        path = tmp_path / "imgs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 2)).save(path)
        images.append(path)
    project = Project.create(tmp_path / "p", images, CLASSES)
    project.save_annotation(project.images[0], LABEL)
    return project


def edit_keys(project: Project, *keys) -> None:
    path = project.root / PROJECT_FILE
    doc = json.loads(path.read_text())
    for entry, key in zip(doc["images"], keys):
        entry["key"] = key
    path.write_text(json.dumps(doc))


def all_files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


# ------------------------------------------------------------------ 1. path traversal
@pytest.mark.parametrize("key", ["../../../../elsewhere/planted", "/tmp/absolute", "", ".", "..", "a\nb",
                                 "sub/a", ".hidden", "a b", 7])
def test_hostile_key_refuses_the_project(tmp_path, key):
    project = make_project(tmp_path)
    edit_keys(project, "a", key)
    with pytest.raises(ProjectError, match="key"):
        Project.open(project.root)


def test_keys_unique_ignoring_case(tmp_path):
    project = make_project(tmp_path)
    edit_keys(project, "Street", "street")
    with pytest.raises(ProjectError, match="same files"):
        Project.open(project.root)


def test_done_must_be_a_boolean(tmp_path):
    project = make_project(tmp_path)
    doc = json.loads((project.root / PROJECT_FILE).read_text())
    doc["images"][0]["done"] = "no"
    (project.root / PROJECT_FILE).write_text(json.dumps(doc))
    with pytest.raises(ProjectError, match="true or false"):
        Project.open(project.root)


def test_traversal_key_cannot_write_outside_out(tmp_path, capsys):
    project = make_project(tmp_path)
    edit_keys(project, "../../../../elsewhere/planted")
    before = all_files(tmp_path)
    code, _, err = run_cli(capsys, "export", "--project", project.root, "--out", tmp_path / "out")
    assert code == 2 and "key" in err and "Traceback" not in err
    assert all_files(tmp_path) == before


def test_in_memory_keys_cannot_escape_either(tmp_path):
    """Even a key set in code (not read from a file) never makes a writer leave its folder."""
    project = make_project(tmp_path)
    victim = tmp_path / "victim.qgt"
    victim.write_bytes(b"keep me")
    project.images[1].key = str(victim.with_suffix(""))  # an absolute path
    with pytest.raises(OutsideRootError):
        project.save_annotation(project.images[1], LABEL)
    with pytest.raises(OutsideRootError):
        project.discard_autosave(project.images[1])
    project.images[1].key = "../../victim"
    with pytest.raises(OutsideRootError):
        export_project(project, tmp_path / "out" / "x", ["png"])
    assert victim.read_bytes() == b"keep me"


def test_path_inside(tmp_path):
    assert path_inside(tmp_path, "a.png") == tmp_path / "a.png"
    assert path_inside(tmp_path, "sub", "a.png") == tmp_path / "sub" / "a.png"
    for bad in ("../a.png", "/etc/passwd", ".", "sub/../../a"):
        with pytest.raises(OutsideRootError):
            path_inside(tmp_path, bad)
    (tmp_path / "link").symlink_to(tmp_path.parent)
    with pytest.raises(OutsideRootError):
        path_inside(tmp_path, "link", "a.png")


# ------------------------------------------------------------------ 2. outputs never replace inputs
def write_mask(path: Path, value: int = 1, size=(8, 6)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size[::-1], value, np.uint8), "L").save(path)
    return path


def test_convert_refuses_to_replace_its_input(tmp_path, capsys):
    mask = write_mask(tmp_path / "same.png")
    before = mask.read_bytes()
    code, _, err = run_cli(capsys, "convert", mask, mask)
    assert code == 2 and "overwrite the input" in err and mask.read_bytes() == before


def test_convert_folder_refuses_case_twins(tmp_path, capsys):
    write_mask(tmp_path / "in" / "x.png", 1)
    write_mask(tmp_path / "in" / "x.PNG", 2)
    code, _, err = run_cli(capsys, "convert", tmp_path / "in", tmp_path / "out")
    assert code == 2 and "would both be written" in err and not (tmp_path / "out").exists()


def test_export_refuses_to_replace_its_input(tmp_path, capsys):
    mask = write_mask(tmp_path / "x.png")
    assert run_cli(capsys, "convert", mask, tmp_path / "x.qgt")[0] == 0
    qgt = tmp_path / "x.qgt"
    before = qgt.read_bytes()
    code, _, err = run_cli(capsys, "export", qgt, "--png", qgt)
    assert code == 2 and "overwrite the input" in err and qgt.read_bytes() == before
    code, _, err = run_cli(capsys, "export", qgt, "--format", "qgt", "--out", tmp_path)
    assert code == 2 and "overwrite the input" in err and qgt.read_bytes() == before


def test_convert_never_writes_a_qgt_the_reader_refuses(tmp_path, capsys):
    mask = write_mask(tmp_path / "tiny.png", size=(1, 1))
    code, _, err = run_cli(capsys, "convert", mask, tmp_path / "t.qgt", "--levels", "15")
    assert code == 2 and "larger than a .qgt reader accepts" in err and not (tmp_path / "t.qgt").exists()


def test_convert_reports_label_images_not_png(tmp_path, capsys):
    mask = tmp_path / "x.tiff"
    Image.fromarray(np.ones((4, 4), np.uint8), "L").save(mask)
    code, out, _ = run_cli(capsys, "convert", mask, tmp_path / "x.qgt")
    assert code == 0 and "bytes of label images" in out


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    import torch

    from qgn.data.synthetic import SYNTHETIC_CLASSES
    from qgn.model.checkpoint import save_model
    from qgn.model.qgn import QGN, QGNConfig

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("model")
    return save_model(root / "m.safetensors", QGN(QGNConfig.from_preset("tiny", SYNTHETIC_CLASSES)))


def write_photo(path: Path, size=(40, 32), seed=0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def test_predict_never_overwrites_input_photos(tmp_path, capsys, tiny_model):
    photos = [write_photo(tmp_path / "in" / "a.png"), write_photo(tmp_path / "in" / "b.png", seed=1)]
    before = {p: p.read_bytes() for p in photos}
    code, _, err = run_cli(capsys, "predict", "--model", tiny_model, tmp_path / "in", "--out", tmp_path / "in")
    assert code == 2 and "overwrite the input" in err
    assert {p: p.read_bytes() for p in photos} == before and len(all_files(tmp_path / "in")) == 2


def test_predict_refuses_two_inputs_with_one_stem(tmp_path, capsys, tiny_model):
    write_photo(tmp_path / "in" / "a.png")
    write_photo(tmp_path / "in" / "sub" / "a.png")
    code, _, err = run_cli(capsys, "predict", "--model", tiny_model, tmp_path / "in", "--out", tmp_path / "out")
    assert code == 2 and "would both be written" in err and not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", [b"", b"this is text, not a PNG", None])
def test_predict_batch_reports_a_bad_image_and_goes_on(tmp_path, capsys, tiny_model, content):
    write_photo(tmp_path / "in" / "a.png")
    bad = tmp_path / "in" / "b.png"
    if content is None:  # truncated
        data = write_photo(bad, seed=3).read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    else:
        bad.write_bytes(content)
    write_photo(tmp_path / "in" / "c.png", seed=2)
    code, out, err = run_cli(capsys, "predict", "--model", tiny_model, tmp_path / "in", "--out", tmp_path / "out")
    assert code == 2 and "Traceback" not in err
    assert "b.png" in err and "1 of 3 image(s) failed" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "a.qgt", "c.png", "c.qgt"]


def test_predict_checks_every_ground_truth_before_the_first_inference(tmp_path, capsys, tiny_model):
    write_photo(tmp_path / "in" / "a.png")
    write_photo(tmp_path / "in" / "b.png")
    write_mask(tmp_path / "gt" / "a.png", 0, (40, 32))
    code, _, err = run_cli(capsys, "predict", "--model", tiny_model, tmp_path / "in", "--labels", tmp_path / "gt",
                           "--out", tmp_path / "out")
    assert code == 2 and "no ground truth for b.png" in err and not (tmp_path / "out").exists()


def test_predict_names_the_ground_truth_with_bad_values(tmp_path, capsys, tiny_model):
    photo = write_photo(tmp_path / "a.png")
    gt = write_mask(tmp_path / "gt" / "a.png", 200, (40, 32))
    code, _, err = run_cli(capsys, "predict", "--model", tiny_model, photo, "--labels", gt)
    assert code == 2 and str(gt) in err


@pytest.mark.parametrize("option, words", [
    (["--device", "bogus"], "--device bogus"),
    (["--depth", "6"], "--depth 6"),
    (["--depth", "-1"], "--depth -1"),
])
def test_predict_bad_options_are_one_line(tmp_path, capsys, tiny_model, option, words):
    photo = write_photo(tmp_path / "a.png")
    code, _, err = run_cli(capsys, "predict", "--model", tiny_model, photo, *option)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1


def test_cuda_on_a_cpu_build_is_one_line(tmp_path, capsys, tiny_model, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = run_cli(capsys, "predict", "--model", tiny_model, write_photo(tmp_path / "a.png"),
                           "--device", "cuda")
    assert code == 2 and "--device cuda" in err and "--device cpu" in err


# ------------------------------------------------------------------ 4. one pixel limit, EXIF
def png_claiming(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header claims ``width × height`` grey pixels (a decompression bomb's shape)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(b"\x00" * (width + 1) * 4)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("reader", ["read_rgb", "read_label", "read_label_rgb"])
def test_every_image_reader_refuses_a_bomb_before_decoding(tmp_path, reader):
    import qgn.data.imageio as imageio
    import qgn.quadtree.label_io as label_io
    from qgn.imagefile import ImageTooLargeError

    bomb = png_claiming(tmp_path / "bomb.png", 12000, 12000)
    assert bomb.stat().st_size < 2000
    with pytest.raises(ImageTooLargeError, match="QGN_MAX_PIXELS=144000000"):
        getattr(label_io if reader == "read_label" else imageio, reader)(bomb)


def test_pixel_limit_override(tmp_path, monkeypatch):
    from qgn.data.imageio import read_rgb
    from qgn.imagefile import ImageTooLargeError, max_pixels

    photo = write_photo(tmp_path / "a.png", (40, 32))
    monkeypatch.setenv("QGN_MAX_PIXELS", "1000")
    with pytest.raises(ImageTooLargeError, match="40×32"):
        read_rgb(photo)
    monkeypatch.setenv("QGN_MAX_PIXELS", "1280")
    assert read_rgb(photo).shape == (32, 40, 3)
    monkeypatch.setenv("QGN_MAX_PIXELS", "lots")
    with pytest.raises(ValueError, match="QGN_MAX_PIXELS"):
        max_pixels()


def test_predict_refuses_a_bomb_in_one_line(tmp_path, capsys, tiny_model):
    bomb = png_claiming(tmp_path / "bomb.png", 14000, 14000)
    code, _, err = run_cli(capsys, "predict", "--model", tiny_model, bomb)
    assert code == 2 and "megapixels" in err and "Traceback" not in err


def test_photos_are_read_upright(tmp_path):
    from qgn.data.imageio import read_rgb

    pixels = np.zeros((2, 3, 3), np.uint8)
    pixels[0, 0] = (255, 0, 0)  # stored: red at the top left of a 3 wide × 2 high photo
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view"
    image.save(tmp_path / "portrait.jpg", exif=exif, quality=100, subsampling=0)
    upright = read_rgb(tmp_path / "portrait.jpg")
    assert upright.shape == (3, 2, 3)  # shown 2 wide × 3 high
    assert upright[0, 1, 0] > 200 and upright[0, 1, 1] < 60  # the red pixel is now at the top right


# ------------------------------------------------------------------ 7/9. malformed and broken models
def copy_model(tiny_model: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "m.safetensors"
    target.write_bytes(tiny_model.read_bytes())
    target.with_suffix(".json").write_bytes(tiny_model.with_suffix(".json").read_bytes())
    return target


def edit_config(doc: dict, case: str):
    if case == "no config":
        del doc["config"]
    elif case == "classes not an object":
        doc["config"]["classes"] = 5
    elif case == "classes list":
        doc["config"]["classes"] = ["a", "b"]
    elif case == "mean of 2":
        doc["config"]["mean"] = [0.5, 0.5]
    elif case == "std 0":
        doc["config"]["std"] = [0.2, 0.0, 0.2]
    elif case == "units not a list":
        doc["config"]["decoder_units"] = 3
    elif case == "a list":
        return [doc]
    return doc


@pytest.mark.parametrize("case", ["no config", "classes not an object", "classes list", "mean of 2", "std 0",
                                  "units not a list", "a list", "deeply nested"])
def test_malformed_model_json_is_one_line(tmp_path, capsys, tiny_model, case):
    model = copy_model(tiny_model, tmp_path / "model")
    if case == "deeply nested":
        text = "[" * 100000 + "]" * 100000
    else:
        text = json.dumps(edit_config(json.loads(model.with_suffix(".json").read_text()), case))
    model.with_suffix(".json").write_text(text)
    code, _, err = run_cli(capsys, "predict", "--model", model, write_photo(tmp_path / "a.png"))
    assert code == 2 and "m.json" in err and len(err.strip().splitlines()) == 1, err


def test_nan_weights_are_refused(tmp_path, capsys, tiny_model):
    from safetensors.torch import load_file, save_file

    model = copy_model(tiny_model, tmp_path / "model")
    state = load_file(str(model))
    name = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    state[name][0] = float("nan")
    save_file(state, str(model), metadata={"format": "qgn-model"})
    code, _, err = run_cli(capsys, "predict", "--model", model, write_photo(tmp_path / "a.png"))
    assert code == 2 and "NaN" in err and name in err


def test_failed_json_write_leaves_no_orphan_weights(tmp_path, monkeypatch, tiny_model):
    import qgn.model.checkpoint as checkpoint
    from qgn.model.checkpoint import load_model, save_model

    model = load_model(tiny_model)
    real = checkpoint.atomic_write_bytes

    def disk_full_on_json(path, data):
        if str(path).endswith(".json"):
            raise OSError(28, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(checkpoint, "atomic_write_bytes", disk_full_on_json)
    with pytest.raises(OSError):
        save_model(tmp_path / "new.safetensors", model)
    assert not (tmp_path / "new.safetensors").exists() and not (tmp_path / "new.json").exists()


def test_file_system_errors_are_one_line(tmp_path, capsys):
    mask = write_mask(tmp_path / "x.png")
    (tmp_path / "file").write_text("not a folder")
    code, _, err = run_cli(capsys, "convert", mask, tmp_path / "file" / "sub" / "x.qgt")
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


# ------------------------------------------------------------------ 8. finetune checks before training
def finetune_inputs(tmp_path: Path) -> tuple[Path, Path]:
    write_photo(tmp_path / "imgs" / "a.png", (32, 32))
    write_mask(tmp_path / "labels" / "a.png", 1, (32, 32))
    return tmp_path / "imgs", tmp_path / "labels"


def test_finetune_checks_out_before_training(tmp_path, capsys, tiny_model):
    images, labels = finetune_inputs(tmp_path)
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli(capsys, "finetune", "--model", tiny_model, "--images", images, "--labels", labels,
                           "--iters", "1", "--out", tmp_path / "file" / "new.safetensors")
    assert code == 2 and "is a file, not a folder" in err and "finetune: 1/" not in err


def test_finetune_hint_only_for_label_values(tmp_path, capsys, tiny_model):
    images, labels = finetune_inputs(tmp_path)
    write_mask(labels / "a.png", 1, (16, 16))  # the wrong size, values fine
    code, _, err = run_cli(capsys, "finetune", "--model", tiny_model, "--images", images, "--labels", labels,
                           "--iters", "1", "--out", tmp_path / "new.safetensors")
    assert code == 2 and "--ignore" not in err


def test_finetune_bad_image_is_one_line_before_training(tmp_path, capsys, tiny_model):
    images, labels = finetune_inputs(tmp_path)
    (images / "a.png").write_bytes(b"not an image")
    code, _, err = run_cli(capsys, "finetune", "--model", tiny_model, "--images", images, "--labels", labels,
                           "--iters", "1", "--out", tmp_path / "new.safetensors")
    assert code == 2 and "a.png" in err and len(err.strip().splitlines()) == 1, err


# ------------------------------------------------------------------ 3. .qgt decoder memory
def qgt_bomb(width: int, height: int) -> bytes:
    """A small .qgt (format reference in qgn/quadtree/qgt.py) claiming a ``width × height`` map of 1
    level and 1 class whose rank stream is all zeros: every pixel is a coded cell."""
    import zlib

    def varint(v: int) -> bytes:
        out = bytearray()
        while True:
            out.append((v & 0x7F) | (0x80 if v >> 7 else 0))
            v >>= 7
            if not v:
                return bytes(out)

    len_a = (width * height + 7) // 8
    raw = varint(len_a) + varint(0) + bytes(len_a)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = comp.compress(raw) + comp.flush()
    body = b"\x89QGT" + bytes([1, 0]) + varint(height) + varint(width) + varint(1) + varint(1)
    body += bytes([1]) + varint(len(raw)) + varint(len(packed)) + packed
    return body + zlib.crc32(body).to_bytes(4, "little")


def test_qgt_decoder_memory_is_small_per_coded_cell():
    import tracemalloc

    from qgn.quadtree.qgt import QgtFormatError, decode_qgt

    width, height = 2048, 1024
    data = qgt_bomb(width, height)
    assert len(data) < 4096  # a few KB …
    tracemalloc.start()
    try:
        qt, _ = decode_qgt(data)  # … that honestly claims 2 M coded cells (one bit each)
        assert len(qt) == width * height
    except QgtFormatError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    # main needed ~53 bytes per cell (6 GB for a 16 KB file of 11585²); the leaves alone are 10.
    assert peak < 32 * width * height, f"{peak / (width * height):.1f} bytes per coded cell"



# ------------------------------------------------------------------ 5. exports in the smallest dtype
@pytest.mark.parametrize("k, ignore, dtype", [(3, 255, np.uint8), (3, None, np.int8), (300, 65535, np.uint16),
                                              (2, 70000, np.uint32), (3, -5, np.int8)])
def test_label_from_quadtree_in_smallest_dtype(k, ignore, dtype):
    from qgn.quadtree import Quadtree

    rng = np.random.default_rng(0)
    label = rng.integers(0, k, (37, 45))
    if ignore is not None:
        label[rng.random(label.shape) < 0.1] = ignore
    back = Quadtree.from_label(label, k, ignore, 4).to_label()
    assert back.dtype == dtype and np.array_equal(back, label)


@pytest.mark.parametrize("fmt, bytes_per_pixel", [("png", 8), ("levels", 24), ("ids", 12)])
def test_export_memory_per_pixel(tmp_path, fmt, bytes_per_pixel):
    import tracemalloc

    from qgn.formats import FORMATS
    from qgn.quadtree import Quadtree

    rng = np.random.default_rng(0)
    label = np.kron(rng.integers(0, 3, (64, 64)), np.ones((8, 8), np.uint8))  # 512 × 512
    qt = Quadtree.from_label(label, 3, 255, 6)
    tracemalloc.start()
    try:
        FORMATS[fmt].write(qt.to_label(), CLASSES, tmp_path, "x", levels=6)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < bytes_per_pixel * label.size, f"{peak / label.size:.1f} bytes per pixel"  # main: 25 / 48 / 25


# ------------------------------------------------------------------ 12. what an export wrote
def test_export_counts_files_and_folders_as_on_disk(tmp_path):
    from qgn.project import written_summary

    project = make_project(tmp_path, ("a.png", "b.png", "c.png"))
    for image in project.images[1:]:
        project.save_annotation(image, LABEL)
    out = tmp_path / "out"
    paths = export_project(project, out, ["png", "cvat", "levels"])
    on_disk = [p for p in out.rglob("*") if p.is_file()]
    folders = [p for p in out.rglob("*") if p.is_dir()]
    assert sorted(paths) == sorted(on_disk)
    assert written_summary(paths, out) == (len(on_disk), len(folders))


# ------------------------------------------------------------------ 8. a project export goes on after a bad file
def test_export_project_reports_a_bad_annotation_and_goes_on(tmp_path, capsys):
    project = make_project(tmp_path, ("a.png", "b.png", "c.png"))
    project.save_annotation(project.images[2], LABEL)
    project.annotation_path(project.images[1]).write_bytes(b"\x89QGT broken")  # b: a damaged annotation
    code, out, err = run_cli(capsys, "export", "--project", project.root, "--out", tmp_path / "out",
                             "--formats", "png")
    assert code == 2 and "b: failed" in out and "1 annotation(s) failed" in err and "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "out" / "png").iterdir()) == ["a.png", "c.png"]


def test_export_project_warns_when_an_annotation_does_not_fit_its_image(tmp_path, capsys):
    project = make_project(tmp_path, ("a.png",))  # the image is 4 × 2, LABEL too
    project.save_annotation(project.images[0], np.zeros((3, 5), np.uint8))
    code, out, _ = run_cli(capsys, "export", "--project", project.root, "--out", tmp_path / "out")
    assert code == 0 and "warning: the annotation is 5×3 but a.png is 4×2" in out


# ------------------------------------------------------------------ 9. temporaries of killed writers
def test_commands_remove_stale_temporaries_where_they_write(tmp_path, capsys):
    import os
    import time

    mask = write_mask(tmp_path / "in" / "x.png")
    out = tmp_path / "out"
    out.mkdir()
    stale, fresh = out / ".x.qgt.abc123.tmp", out / ".y.qgt.def456.tmp"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"being written")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    assert run_cli(capsys, "convert", tmp_path / "in", out)[0] == 0
    assert not stale.exists() and fresh.exists()

    project = make_project(tmp_path)
    (tmp_path / "pout" / "png").mkdir(parents=True)
    stale = tmp_path / "pout" / "png" / ".a.png.xyz.tmp"
    stale.write_bytes(b"half")
    os.utime(stale, (old, old))
    export_project(project, tmp_path / "pout", ["png"])
    assert not stale.exists()


def test_disk_full_names_the_file_in_one_line(tmp_path, capsys, monkeypatch):
    import errno
    import os

    mask = write_mask(tmp_path / "x.png")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    code, _, err = run_cli(capsys, "convert", mask, tmp_path / "x.qgt")
    assert code == 2 and "x.qgt" in err and "free some disk space" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.qgt").exists() and not list(tmp_path.glob(".*.tmp"))
