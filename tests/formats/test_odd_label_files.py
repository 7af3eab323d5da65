"""Odd files in an import (the fresh adversarial pass of the fourth hostile-inputs round): an empty
or lying first label PNG stopped a whole folder's import at its detection; a label PNG whose header
claims more rows than its data holds was imported with the missing rows as class 0 (PIL fills them
with zeros, silently); a mask of a photo's stored size was taken for a photo its EXIF orientation
shows turned by 90° (QGN shows photos upright), so it never lined up."""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

LABEL = np.array([[0] * 6 + [2] * 6] * 4 + [[1] * 6 + [2] * 6] * 4, np.uint8)  # 12×8


def folder(root, names=("a", "b")):
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "classes.txt").write_text("sky\nroad\ncar\n")
    for name in names:
        Image.new("RGB", (12, 8), (90, 90, 90)).save(root / "images" / f"{name}.png")
        Image.fromarray(LABEL).save(root / "labels" / f"{name}.png")
    return root


def claiming(path, width, height) -> None:
    """``path``'s PNG with its header's size replaced (the data left as it is)."""
    data = path.read_bytes()
    body = b"IHDR" + struct.pack(">II", width, height) + data[24:29]
    path.write_bytes(data[:8] + struct.pack(">I", 13) + body + struct.pack(">I", zlib.crc32(body)) + data[33:])


def run_import(run_cli, root, tmp_path):
    return run_cli("import", root / "labels", "--images", root / "images", "--classes", root / "classes.txt",
                   "--project", tmp_path / "p")


@pytest.mark.parametrize("first", ["empty", "huge header"])
def test_a_first_label_png_that_cannot_be_read_fails_alone(tmp_path, run_cli, first):
    root = folder(tmp_path / "d")
    if first == "empty":
        (root / "labels" / "a.png").write_bytes(b"")
    else:
        claiming(root / "labels" / "a.png", 100_000, 100_000)
    code, out, err = run_import(run_cli, root, tmp_path)
    assert code == 2 and "imported 1 of 2" in out and "1 of 2 item(s) skipped: a: " in err, out + err


def test_a_label_png_claiming_more_rows_than_its_data_holds_is_refused(tmp_path, run_cli):
    root = folder(tmp_path / "d")
    claiming(root / "labels" / "a.png", 12, 9)
    Image.new("RGB", (12, 9)).save(root / "images" / "a.png")
    code, out, err = run_import(run_cli, root, tmp_path)
    assert code == 2 and "imported 1 of 2" in out, out + err
    assert f"{root / 'labels' / 'a.png'}: its header claims 12×9 pixels but its data holds only 104 of their 117 " \
        "bytes" in err, err


@pytest.mark.parametrize("mode, bits, interlace", [("L", 8, 0), ("I;16", 16, 0), ("P", 2, 0), ("1", 1, 0),
                                                   ("RGB", 8, 1)])
def test_whole_pngs_of_every_kind_pass_the_row_check(tmp_path, mode, bits, interlace):
    from qgn.imagefile import check_png_rows

    rng = np.random.default_rng(1)
    values = rng.integers(0, 4, (37, 53))
    picture = Image.fromarray(values.astype(np.uint8) * 60)
    picture = picture.convert(mode) if mode != "RGB" else picture.convert("RGB")
    if mode == "I;16":
        picture = Image.fromarray(values.astype(np.uint16) * 9000)
    picture.save(tmp_path / "x.png", bits=bits, interlace=interlace)
    check_png_rows(tmp_path / "x.png")
    data = (tmp_path / "x.png").read_bytes()
    claiming(tmp_path / "x.png", 53, 38)
    with pytest.raises(ValueError, match="its header claims 53×38 pixels"):
        check_png_rows(tmp_path / "x.png")
    (tmp_path / "x.png").write_bytes(data)


def test_a_mask_of_a_photo_s_stored_size_is_refused_when_its_exif_turns_it(tmp_path, run_cli):
    root = folder(tmp_path / "d", ("a",))
    exif = Image.Exif()
    exif[0x0112] = 6  # turned by 90°: shown 8×12
    (root / "images" / "a.png").unlink()
    Image.new("RGB", (12, 8), (10, 200, 30)).save(root / "images" / "a.jpg", exif=exif)
    code, out, err = run_import(run_cli, root, tmp_path)
    assert code == 2 and "the mask is 12×8 but the image" in out + err and "is 8×12 (the size the image is stored " \
        "at, but its EXIF orientation turns it by 90°" in out + err, out + err
    Image.fromarray(np.ascontiguousarray(LABEL.T)).save(root / "labels" / "a.png")  # annotated upright: 8×12
    code, out, err = run_import(run_cli, root, tmp_path)
    assert code == 0 and "imported 1 of 1" in out, out + err
