"""`qgn stats`, `qgn convert` and `qgn export` through ``qgn.cli.main.main``."""
from __future__ import annotations

from functools import partial
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qgn.quadtree import LevelStats, Quadtree
from qgn.quadtree.label_io import read_label, write_classes_file, write_label_png
from qgn.quadtree.qgt import read_qgt
from qgn.classes import ClassSet
from sample_files import blocky_label, write_mask

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CAMVID = DATA / "camvid"


blocky = partial(blocky_label, noise=0.02, dtype=np.uint8)  # 8-px blocks, 2 % noise, 5 % ignore


@pytest.fixture
def masks(tmp_path):
    """A folder of label PNGs (with a subfolder), CamVid-like: 0..4 and ignore 11."""
    root = tmp_path / "labels"
    (root / "sub").mkdir(parents=True)
    arrays = {}
    for i, name in enumerate(["a.png", "b.png", "sub/c.png"]):
        arrays[name] = blocky(i, 45 + 10 * i, 70 - 5 * i, 5, 11)
        Image.fromarray(arrays[name]).save(root / name)
    return root, arrays


# --------------------------------------------------------------------------- stats
@pytest.mark.data
def test_stats_camvid_val_matches_reference(capsys, run_cli):
    folder = CAMVID / "val" / "labels"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    code, out, err = run_cli("stats", folder, "--ignore", "11", "--json")
    assert code == 0
    js = json.loads(out)  # stdout is exactly one JSON object
    assert out.count("\n") == 1
    expected = {"Q5": 47.81, "Q4": 20.40, "Q3": 15.87, "Q2": 7.72, "Q1": 4.95, "Q0": 3.26, "ratio": 5.35}
    for key, value in expected.items():
        assert js[key] == pytest.approx(value, abs=0.01), key
    assert js["images"] == 101
    assert list(js) == ["Q5", "Q4", "Q3", "Q2", "Q1", "Q0", "ratio", "images"]


def test_stats_json_and_table(capsys, masks, run_cli):
    root, arrays = masks
    ref = LevelStats(6)
    for name in sorted(arrays, key=lambda n: str(root / n)):
        ref.add(Quadtree.from_label(arrays[name], 5, 11, 6))
    code, out, err = run_cli("stats", root, "--ignore", "11", "--json")
    assert code == 0 and json.loads(out) == pytest.approx(ref.to_json())
    # k does not matter as long as every value is its own code
    code, out2, _ = run_cli("stats", root, "--ignore", "11", "--classes", "9", "--json")
    assert json.loads(out2) == json.loads(out)
    # files and folders mixed; the readable table
    code, out, _ = run_cli("stats", root / "a.png", root / "sub", "--ignore", "11")
    assert code == 0 and "Q5" in out and "ratio" in out and out.splitlines()[1].split()[-1] == "2"
    # --levels changes the padding and the columns
    code, out, _ = run_cli("stats", root, "--levels", "3", "--json")
    assert code == 0 and list(json.loads(out))[:3] == ["Q2", "Q1", "Q0"]


def test_stats_large_values_are_renumbered(capsys, tmp_path, run_cli):
    a = (blocky(3, 40, 40, 4).astype(np.uint16) * 20000)  # values 0, 20000, 40000, 60000
    write_label_png(tmp_path / "big.png", a)
    code, out, _ = run_cli("stats", tmp_path / "big.png", "--json")
    ref = LevelStats(6).add(Quadtree.from_label(a // 20000, 4, None, 6)).to_json()
    assert code == 0 and json.loads(out) == pytest.approx(ref)


def test_stats_errors(capsys, masks, tmp_path, run_cli):
    root, _ = masks
    code, out, err = run_cli("stats", root, "--ignore", "11", "--classes", "3")
    assert code == 2 and out == "" and "a.png" in err and "outside the classes 0..2" in err
    code, _, err = run_cli("stats", tmp_path / "nope")
    assert code == 2 and "no such file" in err
    Image.new("RGB", (8, 8)).save(tmp_path / "rgb.png")
    code, _, err = run_cli("stats", tmp_path / "rgb.png")
    assert code == 2 and err.startswith("qgn stats: error:") and "colour" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli("stats", tmp_path / "empty")
    assert code == 2 and "no label PNGs" in err
    code, _, err = run_cli("stats", root, "--levels", "0")
    assert code == 2 and "--levels" in err


# --------------------------------------------------------------------------- convert / export
def test_convert_export_single_file(capsys, masks, tmp_path, run_cli):
    root, arrays = masks
    code, out, _ = run_cli("convert", root / "a.png", tmp_path / "a.qgt", "--ignore", "11")
    assert code == 0 and "converted 1 file" in out
    qt, classes = read_qgt(tmp_path / "a.qgt")
    assert classes is None and qt.ignore_value == 11 and qt.num_classes == 5
    code, out, _ = run_cli("export", tmp_path / "a.qgt", "--png", tmp_path / "a_back.png")
    assert code == 0
    back = read_label(tmp_path / "a_back.png")
    assert back.shape == arrays["a.png"].shape and np.array_equal(back, arrays["a.png"])
    # an existing folder as the destination takes the stem
    (tmp_path / "outdir").mkdir()
    assert run_cli("convert", root / "b.png", tmp_path / "outdir", "--ignore", "11")[0] == 0
    assert (tmp_path / "outdir" / "b.qgt").is_file()


def test_convert_export_folders_with_classes(capsys, masks, tmp_path, run_cli):
    root, arrays = masks
    classes = ClassSet(tuple("abcde"), ((1, 1, 1), (2, 2, 2), (3, 3, 3), (4, 4, 4), (5, 5, 5)), 11)
    write_classes_file(tmp_path / "classes.txt", classes)
    code, out, _ = run_cli("convert", root, tmp_path / "q", "--classes", tmp_path / "classes.txt")
    assert code == 0 and "converted 3 file(s)" in out
    assert sorted(p.relative_to(tmp_path / "q").as_posix() for p in (tmp_path / "q").rglob("*.qgt")) == [
        "a.qgt", "b.qgt", "sub/c.qgt"]
    qt, back_classes = read_qgt(tmp_path / "q" / "sub" / "c.qgt")
    assert back_classes.names == classes.names and back_classes.palette == classes.palette
    assert qt.ignore_value == 11
    code, out, _ = run_cli("export", tmp_path / "q", "--png", tmp_path / "png")
    assert code == 0 and "exported 3 file(s)" in out
    for name, array in arrays.items():
        back = read_label(tmp_path / "png" / name)
        assert np.array_equal(back, array), name
    with Image.open(tmp_path / "png" / "a.png") as img:
        assert img.mode == "P" and img.getpalette()[:6] == [1, 1, 1, 2, 2, 2]


def test_convert_folder_uses_one_class_count(capsys, tmp_path, run_cli):
    (tmp_path / "in").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "in" / "a.png")
    Image.fromarray(np.full((8, 8), 6, np.uint8)).save(tmp_path / "in" / "b.png")
    assert run_cli("convert", tmp_path / "in", tmp_path / "out")[0] == 0
    assert read_qgt(tmp_path / "out" / "a.qgt")[0].num_classes == 7


def test_convert_export_errors(capsys, masks, tmp_path, run_cli):
    root, _ = masks
    code, _, err = run_cli("convert", root, tmp_path / "q", "--classes", "3", "--ignore", "11")
    assert code == 2 and "qgn convert: error:" in err and "a.png" in err
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli("convert", root, tmp_path / "file")
    assert code == 2 and "not a folder" in err
    code, _, err = run_cli("convert", tmp_path / "missing.png", tmp_path / "x.qgt")
    assert code == 2 and "no such file" in err
    Image.new("RGBA", (8, 8)).save(tmp_path / "rgba.png")
    code, _, err = run_cli("convert", tmp_path / "rgba.png", tmp_path / "x.qgt")
    assert code == 2 and "colour" in err
    (tmp_path / "bad.qgt").write_bytes(b"\x89QGT\x01\x00garbage")
    code, _, err = run_cli("export", tmp_path / "bad.qgt", "--png", tmp_path / "o.png")
    assert code == 2 and "qgn export: error:" in err and "bad.qgt" in err
    (tmp_path / "new.qgt").write_bytes(b"\x89QGT\x07\x00")
    code, _, err = run_cli("export", tmp_path / "new.qgt", "--png", tmp_path / "o.png")
    assert code == 2 and "version 7" in err
    code, _, err = run_cli("export", tmp_path / "bad.qgt")
    assert code == 2 and "--png" in err
    assert not (tmp_path / "o.png").exists()


# -------------------------------------------------- outputs never replace inputs; errors in one line
def test_convert_refuses_to_replace_its_input(tmp_path, capsys, run_cli):
    mask = write_mask(tmp_path / "same.png")
    before = mask.read_bytes()
    code, _, err = run_cli("convert", mask, mask)
    assert code == 2 and "overwrite the input" in err and mask.read_bytes() == before


def test_convert_folder_refuses_case_twins(tmp_path, capsys, run_cli):
    write_mask(tmp_path / "in" / "x.png", 1)
    write_mask(tmp_path / "in" / "x.PNG", 2)
    code, _, err = run_cli("convert", tmp_path / "in", tmp_path / "out")
    assert code == 2 and "would both be written" in err and not (tmp_path / "out").exists()


def test_export_refuses_to_replace_its_input(tmp_path, capsys, run_cli):
    mask = write_mask(tmp_path / "x.png")
    assert run_cli("convert", mask, tmp_path / "x.qgt")[0] == 0
    qgt = tmp_path / "x.qgt"
    before = qgt.read_bytes()
    code, _, err = run_cli("export", qgt, "--png", qgt)
    assert code == 2 and "overwrite the input" in err and qgt.read_bytes() == before
    code, _, err = run_cli("export", qgt, "--format", "qgt", "--out", tmp_path)
    assert code == 2 and "overwrite the input" in err and qgt.read_bytes() == before


def test_convert_never_writes_a_qgt_the_reader_refuses(tmp_path, capsys, run_cli):
    mask = write_mask(tmp_path / "tiny.png", size=(1, 1))
    code, _, err = run_cli("convert", mask, tmp_path / "t.qgt", "--levels", "15")
    assert code == 2 and "larger than a .qgt reader accepts" in err and not (tmp_path / "t.qgt").exists()


def test_stats_refuses_the_levels_convert_refuses(tmp_path, capsys, monkeypatch, run_cli):
    """A 64×48 map padded for 16 levels is 2^30 pixels (1.6 GB of pyramid): refused before building it."""
    mask = write_mask(tmp_path / "m.png", size=(64, 48))

    def never(*args, **kwargs):
        raise AssertionError("built a quadtree of a size convert refuses")

    monkeypatch.setattr(Quadtree, "from_label", never)
    code, out, err = run_cli("stats", mask, "--levels", "16")
    assert code == 2 and out == "" and "m.png" in err and "use fewer levels" in err
    assert run_cli("convert", mask, tmp_path / "m.qgt", "--levels", "16")[0] == 2
    monkeypatch.undo()
    assert run_cli("stats", mask, "--levels", "6")[0] == 0


def test_convert_reports_label_images_not_png(tmp_path, capsys, run_cli):
    mask = tmp_path / "x.tiff"
    Image.fromarray(np.ones((4, 4), np.uint8), "L").save(mask)
    code, out, _ = run_cli("convert", mask, tmp_path / "x.qgt")
    assert code == 0 and "bytes of label images" in out


def test_file_system_errors_are_one_line(tmp_path, capsys, run_cli):
    mask = write_mask(tmp_path / "x.png")
    (tmp_path / "file").write_text("not a folder")
    code, _, err = run_cli("convert", mask, tmp_path / "file" / "sub" / "x.qgt")
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_disk_full_names_the_file_in_one_line(tmp_path, capsys, monkeypatch, run_cli):
    import errno
    import os

    mask = write_mask(tmp_path / "x.png")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    code, _, err = run_cli("convert", mask, tmp_path / "x.qgt")
    assert code == 2 and "x.qgt" in err and "free some disk space" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.qgt").exists() and not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("ignore", [-(1 << 62), 1 << 40, -1])
def test_an_ignore_value_far_from_the_classes_exports_as_void(tmp_path, run_cli, ignore):
    # a valid .qgt whose ignore value is far outside 0..65535: Cityscapes and CamVid built a lookup
    # table as long as the largest value (an IndexError for -2**62, "out of memory" for 2**40);
    # re-encoding it as .qgt refused it with "label values [] are outside the classes"
    from qgn.quadtree.qgt import write_qgt

    label = blocky(3, 40, 56, 3, 200).astype(np.int64)
    void = label == 200
    label[void] = ignore
    write_qgt(tmp_path / "wide.qgt", Quadtree.from_label(label, 3, ignore_value=ignore, levels=4))
    code, out, err = run_cli("export", tmp_path / "wide.qgt", "--format", "qgt,cityscapes,camvid", "--out", tmp_path)
    assert code == 0, err
    qt, _ = read_qgt(tmp_path / "qgt" / "wide.qgt")
    np.testing.assert_array_equal(qt.to_label(), label)
    ids = read_label(next((tmp_path / "cityscapes" / "gtFine").rglob("*_gtFine_labelIds.png")))
    np.testing.assert_array_equal(ids, np.where(void, 0, label + 1))  # 0: void, class c: c + 1
    colours = np.asarray(Image.open(next((tmp_path / "camvid" / "defaultannot").glob("*.png"))).convert("RGB"))
    assert (colours[void] == 0).all() and (colours[~void].max(axis=1) > 0).all()  # void black, classes not


@pytest.mark.parametrize("classes", ["3", "file"])
@pytest.mark.parametrize("command", ["convert", "stats"])
def test_an_ignore_value_among_the_class_ids_is_refused_naming_both_options(tmp_path, run_cli, classes, command):
    """`convert --classes 3 --ignore 1` wrote a .qgt that `qgn export` then refused (its ignore value
    collides with a class); with a classes file the refusal was a bare "ClassSet: ..."."""
    Image.fromarray(np.ones((8, 12), np.uint8)).save(tmp_path / "m.png")
    if classes == "file":
        classes = tmp_path / "classes.txt"
        classes.write_text("sky\nroad\ncar\n")
    outputs = [tmp_path / "m.qgt"] if command == "convert" else []
    code, _, err = run_cli(command, "--classes", classes, "--ignore", "1", tmp_path / "m.png", *outputs)
    assert code == 2 and f"--ignore 1 is one of the class ids 0..2 of --classes {classes}" in err, err
    assert not (tmp_path / "m.qgt").exists()
