"""Label map files (PNG modes L, P, I;16, I, 1; colour masks refused) and classes files."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from qgn.classes import ClassSet
from qgn.quadtree.label_io import (
    encode_label_png, read_classes_file, read_label, write_classes_file, write_label_png,
)


def labels(h=13, w=17, hi=12, seed=0):
    return np.random.default_rng(seed).integers(0, hi, (h, w))


# --------------------------------------------------------------------------- reading
def test_read_l_mode(tmp_path):
    a = labels().astype(np.uint8)
    Image.fromarray(a).save(tmp_path / "l.png")
    out = read_label(tmp_path / "l.png")
    assert out.dtype == np.uint8 and np.array_equal(out, a)


def test_read_p_mode_gives_indices_not_colours(tmp_path):
    a = labels().astype(np.uint8)
    img = Image.frombytes("P", (a.shape[1], a.shape[0]), a.tobytes())
    img.putpalette([255 - (i % 256) for i in range(768)])  # colours unrelated to the indices
    img.save(tmp_path / "p.png")
    assert np.array_equal(read_label(tmp_path / "p.png"), a)


def test_read_16_bit_and_32_bit(tmp_path):
    a = labels(hi=60000).astype(np.uint16)
    Image.fromarray(a).save(tmp_path / "16.png")
    out = read_label(tmp_path / "16.png")
    assert out.dtype == np.uint16 and np.array_equal(out, a)
    b = labels(hi=100).astype(np.int32)
    Image.fromarray(b, mode="I").save(tmp_path / "32.tif")
    assert np.array_equal(read_label(tmp_path / "32.tif"), b)


def test_read_bilevel(tmp_path):
    a = labels(hi=2).astype(bool)
    Image.fromarray(a).save(tmp_path / "1.png")
    out = read_label(tmp_path / "1.png")
    assert out.dtype == np.uint8 and np.array_equal(out, a.astype(np.uint8))


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_colour_masks_are_refused_with_advice(tmp_path, mode):
    Image.new(mode, (4, 3), (10, 20, 30, 255)[: len(mode)]).save(tmp_path / "c.png")
    with pytest.raises(ValueError, match=f"{mode} colour image.*palette"):
        read_label(tmp_path / "c.png")


def test_other_modes_are_refused(tmp_path):
    Image.new("LA", (4, 3)).save(tmp_path / "la.png")
    with pytest.raises(ValueError, match="LA"):
        read_label(tmp_path / "la.png")
    Image.new("F", (4, 3)).save(tmp_path / "f.tif")
    with pytest.raises(ValueError, match="single-channel integer"):
        read_label(tmp_path / "f.tif")


def test_empty_missing_and_non_image_files(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        read_label(tmp_path / "empty.png")
    (tmp_path / "text.png").write_text("not an image at all")
    with pytest.raises(ValueError, match="not a readable image"):
        read_label(tmp_path / "text.png")
    with pytest.raises(FileNotFoundError):
        read_label(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="folder"):
        read_label(tmp_path)
    good = encode_label_png(labels(64, 64).astype(np.uint8))
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="truncated|decoded|readable"):
        read_label(tmp_path / "cut.png")


# --------------------------------------------------------------------------- writing
def test_write_indexed_png_with_class_colours(tmp_path):
    classes = ClassSet(("a", "b", "c"), ((10, 20, 30), (40, 50, 60), (70, 80, 90)), 255, (1, 2, 3))
    a = np.array([[0, 1, 2], [255, 2, 1]], np.int64)
    write_label_png(tmp_path / "x.png", a, classes)
    with Image.open(tmp_path / "x.png") as img:
        assert img.mode == "P"
        pal = img.getpalette()
    assert pal[0:9] == [10, 20, 30, 40, 50, 60, 70, 80, 90]
    assert pal[3 * 255 : 3 * 256] == [1, 2, 3]
    back = read_label(tmp_path / "x.png")
    assert back.shape == a.shape and np.array_equal(back, a)
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]  # atomic: no temporary left


def test_write_without_classes_and_16_bit(tmp_path):
    a = labels(hi=30)
    write_label_png(tmp_path / "a.png", a)
    assert np.array_equal(read_label(tmp_path / "a.png"), a)
    b = labels(hi=65536)
    b[0, 0] = 65535
    write_label_png(tmp_path / "b.png", b)
    with Image.open(tmp_path / "b.png") as img:
        assert img.mode.startswith("I")
    assert np.array_equal(read_label(tmp_path / "b.png"), b)


@pytest.mark.parametrize(
    "label, match",
    [
        (np.array([[0, -1]]), "0..65535"),
        (np.array([[0, 70000]]), "0..65535"),
        (np.zeros((2, 2), np.float32), "integers"),
        (np.zeros((2, 2, 3), np.uint8), "2-D"),
        (np.zeros((0, 3), np.uint8), "empty"),
    ],
)
def test_write_refuses_bad_labels(tmp_path, label, match):
    with pytest.raises(ValueError, match=match):
        write_label_png(tmp_path / "x.png", label)


# --------------------------------------------------------------------------- classes files
def test_classes_file_round_trip(tmp_path):
    classes = ClassSet(("sky", "traffic light", "class 1 2 3", "Straße"),
                       ((1, 2, 3), (250, 170, 30), (4, 5, 6), (7, 8, 9)), 11)
    write_classes_file(tmp_path / "classes.txt", classes)
    back = read_classes_file(tmp_path / "classes.txt")
    assert back.names == classes.names and back.palette == classes.palette and back.ignore_index == 11
    none = ClassSet(("a", "b"), (), None)
    write_classes_file(tmp_path / "n.txt", none)
    assert read_classes_file(tmp_path / "n.txt").ignore_index is None


def test_classes_file_format(tmp_path):
    (tmp_path / "c.txt").write_text("# CamVid\nsky 128 128 128\n\nbuilding\nignore: 11\n", encoding="utf-8")
    c = read_classes_file(tmp_path / "c.txt")
    assert c.names == ("sky", "building") and c.palette[0] == (128, 128, 128) and c.ignore_index == 11
    (tmp_path / "d.txt").write_text("a\nb\n")
    assert read_classes_file(tmp_path / "d.txt").ignore_index == 255  # the folder format's default


def test_classes_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_classes_file(tmp_path / "missing.txt")
    (tmp_path / "bin.txt").write_bytes(b"sky\n\x00\x01road\n")
    with pytest.raises(ValueError, match="bin.txt is a binary file"):
        read_classes_file(tmp_path / "bin.txt")
    (tmp_path / "latin1.txt").write_bytes("sky\nStra\u00dfe\n".encode("latin-1"))
    with pytest.raises(ValueError, match="latin1.txt is not UTF-8"):
        read_classes_file(tmp_path / "latin1.txt")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(ValueError, match="no class names"):
        read_classes_file(tmp_path / "empty.txt")
    (tmp_path / "ig.txt").write_text("a\nignore: x\n")
    with pytest.raises(ValueError, match="ignore"):
        read_classes_file(tmp_path / "ig.txt")
    for bad in ("two  spaces", " lead", "#hash", "ignore: me", ""):
        with pytest.raises(ValueError, match="cannot be written"):
            write_classes_file(tmp_path / "w.txt", ClassSet(("ok", bad), (), None))


def test_a_classes_file_is_read_only_as_far_as_a_class_list_goes(tmp_path):
    """A 4 GiB file (sparse: valid lines, then NUL bytes) is refused after reading at most the
    limit + 1 bytes; a file of exactly the limit is read."""
    import tracemalloc

    from qgn.quadtree.label_io import MAX_CLASSES_FILE_BYTES

    big = tmp_path / "big.txt"
    big.write_text("sky\nroad\n")
    os.truncate(big, 4 << 30)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="big.txt is over 1 MiB"):
            read_classes_file(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * MAX_CLASSES_FILE_BYTES
    names = "ignore: none\n" + "".join(f"class{i:07d}\n" for i in range(MAX_CLASSES_FILE_BYTES // 13 - 1))
    exact = tmp_path / "exact.txt"
    exact.write_text(names + "#" * (MAX_CLASSES_FILE_BYTES - len(names) - 1) + "\n")
    assert exact.stat().st_size == MAX_CLASSES_FILE_BYTES
    assert read_classes_file(exact).num_classes == MAX_CLASSES_FILE_BYTES // 13 - 1
    exact.write_text(exact.read_text() + "x")
    with pytest.raises(ValueError, match="over 1 MiB"):
        read_classes_file(exact)
