"""The CLI's own output folders, before anything is written or run: a subfolder a command writes
into that is a symbolic link leading outside the folder the user named (``qgn export --png OUT`` of
a folder, ``qgn convert DIR DST``, ``qgn samples OUT``, ``qgn serve --train-out DIR``) is refused in
one line naming the link and the fix, as the formats' exports were (``check_export_links``) -
before, OUT/sub -> /elsewhere received the files; an output folder that cannot be written (a file,
a link to nothing) is refused before the long run (``qgn bench``'s anytime curve, ``qgn train``, a
folder export's one JSON), not after it; and an output folder a folder export refuses (another
export's class list in it) is said once, and only the files bound for it stop."""
from __future__ import annotations


import numpy as np
import pytest
from PIL import Image

from qgn.classes import ClassSet
from qgn.cli.main import main
from qgn.quadtree import Quadtree
from qgn.quadtree.qgt import write_qgt

CLASSES = ClassSet.generic(3, 255)


@pytest.fixture
def qgts(tmp_path):
    """tmp_path/qgts: a.qgt, b.qgt and sub/c.qgt, small labels of 3 classes."""
    folder = tmp_path / "qgts"
    (folder / "sub").mkdir(parents=True)
    label = np.zeros((16, 16), np.uint8)
    label[:8] = 1
    label[12:, :4] = 2
    for path in (folder / "a.qgt", folder / "b.qgt", folder / "sub" / "c.qgt"):
        write_qgt(path, Quadtree.from_label(label, 3, 255, 4), CLASSES)
    return folder


@pytest.fixture
def outside(tmp_path):
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "mine.txt").write_text("my own file\n")
    return folder


def refused(capsys, link, outside, option=""):
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"{link} is a link to {outside.resolve()}" in err and "remove the link" in err
    assert not option or err.startswith("qgn ") and f": error: {option} " in err
    return err


def test_export_png_of_a_folder_refuses_a_subfolder_link_leading_outside(qgts, outside, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").symlink_to(outside, target_is_directory=True)
    assert main(["export", str(qgts), "--png", str(out)]) == 2
    refused(capsys, out / "sub", outside, "--png")
    assert sorted(p.name for p in outside.iterdir()) == ["mine.txt"]
    assert sorted(p.name for p in out.iterdir()) == ["sub"]  # nothing written, not even a.png


def test_convert_of_a_folder_refuses_a_subfolder_link_leading_outside(tmp_path, outside, capsys):
    masks = tmp_path / "masks"
    (masks / "sub").mkdir(parents=True)
    for path in (masks / "a.png", masks / "sub" / "c.png"):
        Image.fromarray(np.array([[0, 1], [2, 1]], np.uint8).repeat(4, 0).repeat(4, 1)).save(path)
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "sub").symlink_to(outside, target_is_directory=True)
    assert main(["convert", str(masks), str(dst), "--classes", "3"]) == 2
    refused(capsys, dst / "sub", outside)
    assert sorted(p.name for p in outside.iterdir()) == ["mine.txt"]
    assert sorted(p.name for p in dst.iterdir()) == ["sub"]


def test_samples_refuses_an_images_folder_link_leading_outside(tmp_path, outside, capsys):
    out = tmp_path / "samples"
    out.mkdir()
    (out / "images").symlink_to(outside, target_is_directory=True)
    assert main(["samples", str(out), "--count", "1"]) == 2
    refused(capsys, out / "images", outside)
    assert sorted(p.name for p in outside.iterdir()) == ["mine.txt"]
    assert sorted(p.name for p in out.iterdir()) == ["images"]


def test_serve_refuses_a_train_out_whose_kept_annotations_lead_outside(model_path, tmp_path, outside, capsys,
                                                                      monkeypatch):
    import qgn.serve.server

    def no_server(*args, **kwargs):  # the refusal comes before the backend and its server
        raise AssertionError("qgn serve went on to serve")

    monkeypatch.setattr(qgn.serve.server, "make_server", no_server)
    train_out = tmp_path / "train-out"
    train_out.mkdir()
    (train_out / "kept-annotations").symlink_to(outside, target_is_directory=True)
    assert main(["serve", "--model", str(model_path), "--train-out", str(train_out), "--device", "cpu"]) == 2
    refused(capsys, train_out / "kept-annotations", outside, "--train-out")
    assert sorted(p.name for p in outside.iterdir()) == ["mine.txt"]


def test_serve_accepts_a_train_out_holding_a_link_it_never_writes_through(model_path, tmp_path, outside, capsys,
                                                                          monkeypatch):
    """A link in --train-out beside what serve writes (its weights in DIR, DIR/kept-annotations/):
    the user's, never written through - serve starts."""
    import qgn.serve.server

    def started(*args, **kwargs):  # it got as far as making its server: not refused
        raise SystemExit("started")

    monkeypatch.setattr(qgn.serve.server, "make_server", started)
    train_out = tmp_path / "train-out"
    train_out.mkdir()
    (train_out / "datasets").symlink_to(outside, target_is_directory=True)
    with pytest.raises(SystemExit, match="started"):
        main(["serve", "--model", str(model_path), "--train-out", str(train_out), "--device", "cpu"])
    assert "error" not in capsys.readouterr().err
    assert sorted(p.name for p in outside.iterdir()) == ["mine.txt"]


@pytest.mark.parametrize("kind", ["file", "dangling link"])
def test_bench_refuses_a_bad_anytime_out_before_it_runs(tmp_path, capsys, monkeypatch, kind):
    import qgn.cli.bench

    def ran(*args, **kwargs):
        raise AssertionError("the benchmark ran first")

    monkeypatch.setattr(qgn.cli.bench, "_load_model", ran)
    out = tmp_path / "results"
    if kind == "file":
        out.write_text("not a folder\n")
    else:
        out.symlink_to(tmp_path / "gone", target_is_directory=True)
    assert main(["bench", "--only", "anytime", "--out", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"qgn bench: error: --out {out}: ")
    assert ("is a file, not a folder; choose another --out" if kind == "file" else
            f"is a link to {tmp_path / 'gone'}, which does not exist (make the folder it points to, or remove the "
            "link)") in err


def test_train_refuses_an_out_that_is_a_file_before_it_loads_data(tmp_path, capsys, monkeypatch):
    import qgn.train.loop

    def ran(*args, **kwargs):
        raise AssertionError("training started first")

    monkeypatch.setattr(qgn.train.loop, "train", ran)
    out = tmp_path / "run"
    out.write_text("not a folder\n")
    assert main(["train", "--preset", "demo", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"qgn train: error: --out {out}: ") and "is a file" in err


def test_a_folder_export_into_a_dangling_link_is_refused_before_it_reads_the_files(qgts, tmp_path, capsys):
    out = tmp_path / "coco-out"
    out.symlink_to(tmp_path / "gone", target_is_directory=True)
    assert main(["export", str(qgts), "--format", "coco", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and f"--out {out}: is a link to {tmp_path / 'gone'}, which does not exist" \
        in captured.err
    assert "[1/3]" not in captured.out


def test_a_refused_dataset_folder_is_said_once_and_nothing_is_written(qgts, tmp_path, capsys):
    """A whole-dataset export (CamVid: one dataset in OUT) into a folder holding another export's
    class list: one line, nothing written."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "label_colors.txt").write_text("0 0 0 background\n1 2 3 zzz\n")
    before = sorted(p.name for p in out.rglob("*"))
    assert main(["export", str(qgts), "--format", "camvid", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (f"qgn export: error: {out / 'label_colors.txt'} belongs to an export with other classes; "
                   "export into an empty folder\n")
    assert sorted(p.name for p in out.rglob("*")) == before


@pytest.mark.parametrize("fmt, shared, foreign", [
    ("cvat", "labelmap.txt", "# label:color_rgb:parts:actions\nbackground:0,0,0::\nzzz:1,2,3::\n"),
])
def test_a_refused_output_folder_is_said_once_and_stops_only_the_files_bound_there(qgts, tmp_path, capsys, fmt,
                                                                                  shared, foreign):
    """OUT holds another export's class list: a.qgt fails naming it, b.qgt (bound for OUT too, with
    the same classes) is refused the same way - said once, b named in one line at the end - and
    sub/c.qgt, bound for OUT/sub (a folder of its own, with its own class list), is exported -
    before, the whole export stopped at a.qgt. Nothing says "no other file is exported into OUT"
    (c is exported, into OUT/sub)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / shared).write_text(foreign)
    assert main(["export", str(qgts), "--format", fmt, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"qgn export: error: {qgts / 'a.qgt'}: {out / shared} belongs to an export with other classes; "
        "export into an empty folder",
        f"qgn export: 1 more file(s) bound for {out} refused the same way (see above): {qgts / 'b.qgt'}",
        f"qgn export: 2 of 3 file(s) failed (see above): {qgts / 'a.qgt'}, {qgts / 'b.qgt'}",
    ]
    assert f"exported 1 of 3 file(s) to {fmt} ({out})" in captured.out
    assert sorted(p.name for p in out.iterdir()) == sorted([shared, "sub"])  # nothing of a or b in OUT
    assert (out / shared).read_text() == foreign
    assert any(p.stem == "c" for p in (out / "sub").rglob("*.png"))


def test_a_folder_refusing_one_files_classes_still_takes_the_files_whose_classes_it_holds(tmp_path, capsys):
    """a.qgt and c.qgt have classes X, b.qgt classes Y, all bound for OUT: a's export writes X's
    labelmap.txt, b is refused (other classes), and c - whose classes the folder holds - is exported.
    Before, every file bound for a refused folder was taken to fail alike: c was "not tried", never named."""
    src = tmp_path / "qgts"
    src.mkdir()
    label = np.zeros((16, 16), np.uint8)
    label[:8] = 1
    write_qgt(src / "a.qgt", Quadtree.from_label(label, 3, 255, 4), CLASSES)
    write_qgt(src / "b.qgt", Quadtree.from_label(label, 4, 255, 4), ClassSet.generic(4, 255))
    write_qgt(src / "c.qgt", Quadtree.from_label(label, 3, 255, 4), CLASSES)
    out = tmp_path / "out"
    assert main(["export", str(src), "--format", "cvat", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert (out / "ImageSets" / "Segmentation" / "default.txt").read_text().split() == ["a", "c"]
    assert sorted(p.name for p in (out / "SegmentationClass").iterdir()) == ["a.png", "c.png"]
    assert captured.err.splitlines() == [
        f"qgn export: error: {src / 'b.qgt'}: {out / 'labelmap.txt'} belongs to an export with other classes; "
        "export into an empty folder",
        f"qgn export: 1 of 3 file(s) failed (see above): {src / 'b.qgt'}",
    ]
    assert f"exported 2 of 3 file(s) to cvat ({out})" in captured.out


def test_a_single_refused_file_says_no_more_than_its_refusal(tmp_path, capsys):
    """qgn export a.qgt into a folder holding another export's labelmap.txt: one line, the refusal -
    before, it added "; no other file is exported into OUT", of an export of one file."""
    label = np.zeros((16, 16), np.uint8)
    write_qgt(tmp_path / "a.qgt", Quadtree.from_label(label, 3, 255, 4), CLASSES)
    out = tmp_path / "out"
    out.mkdir()
    (out / "labelmap.txt").write_text("# label:color_rgb:parts:actions\nbackground:0,0,0::\nzzz:1,2,3::\n")
    assert main(["export", str(tmp_path / "a.qgt"), "--format", "cvat", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"qgn export: error: {tmp_path / 'a.qgt'}: {out / 'labelmap.txt'} belongs to "
                                       "an export with other classes; export into an empty folder\n")
