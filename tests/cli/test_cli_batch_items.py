"""Batch commands report a bad item in one line naming it, go on with the rest, and end with exit
status 2 and a line saying how many failed (``qgn.cli.files.Failures``)."""
from __future__ import annotations

import json

import numpy as np

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
    assert sorted(p.name for p in (tmp_path / "lm").iterdir()) == ["a.json", "c.json"]
