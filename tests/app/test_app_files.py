"""QGN Studio without Qt: finding images and ground truth, reading any image, measurement plans."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from qgn_studio.discovery import expand_paths, find_ground_truth, images_in_folder
from qgn_studio.document import ImageDocument, SchemeChoice, measurement_plan, reference_depth


def save(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


@pytest.fixture
def rgb():
    return np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)


@pytest.fixture
def label():
    return np.random.default_rng(1).integers(0, 8, (40, 60), dtype=np.uint8)


def test_ground_truth_in_labels_folder_beside_images(tmp_path, rgb, label):
    image = save(tmp_path / "images" / "a.jpg", rgb)
    gt = save(tmp_path / "labels" / "a.png", label)
    assert find_ground_truth(image) == gt


def test_ground_truth_with_suffix_or_same_stem(tmp_path, rgb, label):
    image = save(tmp_path / "b.png", rgb)
    gt = save(tmp_path / "b_label.png", label)
    assert find_ground_truth(image) == gt
    photo = save(tmp_path / "c.jpg", rgb)
    same_stem = save(tmp_path / "c.png", label)
    assert find_ground_truth(photo) == same_stem
    assert find_ground_truth(save(tmp_path / "d.png", rgb)) is None


def test_ground_truth_from_qgt(tmp_path, rgb, label):
    qgt = pytest.importorskip("qgn.quadtree.qgt")
    from qgn.quadtree import Quadtree

    image = save(tmp_path / "e.png", rgb)
    qgt.write_qgt(tmp_path / "e.qgt", Quadtree.from_label(label, 8))
    doc = ImageDocument(image)
    doc.load()
    assert doc.gt_path == tmp_path / "e.qgt"
    np.testing.assert_array_equal(doc.ground_truth, label)


def test_folder_listing_skips_label_files(tmp_path, rgb, label):
    for name in ("img10.png", "img2.png"):
        save(tmp_path / name, rgb)
    save(tmp_path / "img2_label.png", label)
    save(tmp_path / "labels" / "img10.png", label)
    assert [p.name for p in images_in_folder(tmp_path)] == ["img2.png", "img10.png"]
    images, models, problems = expand_paths([tmp_path, tmp_path / "missing.png", tmp_path / "m.safetensors"])
    assert [p.name for p in images] == ["img2.png", "img10.png"]
    assert [m.name for m in models] == ["m.safetensors"]
    assert problems and "missing.png" in problems[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_pipe_or_device_named_as_an_image_is_reported_never_opened(tmp_path, rgb):
    """Opening a folder holding a named pipe (or a link to /dev/zero) called x.png: it is no image
    to load (a worker reading it would wait for ever), and the user is told rather than left
    guessing why it is not listed; one named on the command line is not called missing."""
    save(tmp_path / "a.png", rgb)
    os.mkfifo(tmp_path / "b.png")
    (tmp_path / "c.png").symlink_to(os.devnull)
    images, _, problems = expand_paths([tmp_path, tmp_path / "b.png"])
    assert [p.name for p in images] == ["a.png"]
    assert [p.split(" is ")[0].rsplit("/", 1)[1] for p in problems] == ["b.png", "c.png", "b.png"], problems
    assert "named pipe (FIFO)" in problems[0] and "character device" in problems[1] and "no such" not in problems[2]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_pipe_in_the_images_subfolder_listed_is_reported(tmp_path, rgb):
    """A folder with no images of its own lists its ``images/`` subfolder: a pipe named as an image
    there is reported as one in the folder itself is."""
    save(tmp_path / "images" / "a.png", rgb)
    os.mkfifo(tmp_path / "images" / "b.png")
    images, _, problems = expand_paths([tmp_path])
    assert [p.name for p in images] == ["a.png"]
    assert len(problems) == 1 and f"{tmp_path / 'images' / 'b.png'} is a named pipe (FIFO)" in problems[0], problems


def test_a_link_loop_in_a_folder_is_reported_and_the_rest_opens(tmp_path, rgb):
    """A link loop named as an image (``self.png -> self.png``) or a link through a file made the
    whole folder fail to open (scandir's is_file raises ELOOP / ENOTDIR where Path.is_file did not);
    the loop is now said, the link through a file left out as a dangling one, the rest opened."""
    save(tmp_path / "ok.png", rgb)
    (tmp_path / "self.png").symlink_to("self.png")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "through.png").symlink_to(tmp_path / "notes.txt" / "x")
    images, _, problems = expand_paths([tmp_path])
    assert [p.name for p in images] == ["ok.png"]
    assert problems == [f"{tmp_path / 'self.png'} is a symbolic link loop"]


def test_with_no_images_of_its_own_a_folders_pipes_are_reported_beside_its_images_folders(tmp_path, rgb):
    save(tmp_path / "images" / "a.png", rgb)
    os.mkfifo(tmp_path / "p.png")
    os.mkfifo(tmp_path / "images" / "b.png")
    images, _, problems = expand_paths([tmp_path])
    assert [p.name for p in images] == ["a.png"]
    assert len(problems) == 2, problems
    for pipe, problem in zip((tmp_path / "images" / "b.png", tmp_path / "p.png"), sorted(problems)):
        assert problem.startswith(f"{pipe} is a named pipe (FIFO)"), problems


def test_listing_a_folder_stats_no_file(tmp_path, rgb, monkeypatch):
    """Listing runs on the UI thread: one pass over the folder, whose entries' types the system tells
    (scandir), with no stat of each file; only the folder itself and its images/ are looked at."""
    for i in range(20):
        save(tmp_path / f"img{i}.png", rgb)
    (tmp_path / "notes.txt").write_text("x")
    stats: list = []
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda path, *a, **k: stats.append(path) or real_stat(path, *a, **k))
    images, _, problems = expand_paths([tmp_path])
    assert len(images) == 20 and problems == []
    assert not [p for p in stats if str(p).endswith(".png")], stats


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_document_whose_image_or_ground_truth_is_a_pipe_loads_without_waiting(tmp_path, rgb, fifo):
    """A project's image replaced by a named pipe, or a pipe where the ground truth is looked for:
    the loading worker says so and goes on (``fifo`` fails the test if it waited on one)."""
    doc = ImageDocument(fifo(tmp_path / "gone.png"))
    doc.load()
    assert doc.image is None and "named pipe" in doc.error
    image = save(tmp_path / "photo.png", rgb)
    fifo(tmp_path / "photo.qgt")
    doc = ImageDocument(image)
    doc.load()
    assert doc.image is not None and doc.ground_truth is None


@pytest.mark.parametrize("kind", ["gray8", "gray16", "rgba", "odd"])
def test_any_image_loads_as_rgb(tmp_path, kind):
    rng = np.random.default_rng(2)
    arrays = {
        "gray8": (rng.integers(0, 255, (33, 47), dtype=np.uint8), "L"),
        "gray16": (rng.integers(0, 65535, (33, 47), dtype=np.uint16), None),
        "rgba": (rng.integers(0, 255, (33, 47, 4), dtype=np.uint8), "RGBA"),
        "odd": (rng.integers(0, 255, (1, 3, 3), dtype=np.uint8), "RGB"),
    }
    array, mode = arrays[kind]
    doc = ImageDocument(save(tmp_path / f"{kind}.png", array, mode))
    doc.load()
    assert doc.error is None
    assert doc.image.dtype == np.uint8 and doc.image.shape == array.shape[:2] + (3,)


def test_unreadable_files_become_messages(tmp_path, rgb):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    doc = ImageDocument(bad)
    doc.load()
    assert doc.image is None and "cannot read broken.png" in doc.error
    image = save(tmp_path / "f.png", rgb)
    save(tmp_path / "f_label.png", np.zeros((10, 10), np.uint8))  # wrong size
    doc = ImageDocument(image)
    doc.load()
    assert doc.ground_truth is None and "ignored" in doc.notes[0]
    first = Image.new("RGB", (6, 4), (200, 0, 0))
    first.save(tmp_path / "animated.gif", save_all=True, append_images=[Image.new("RGB", (6, 4))], duration=50)
    doc = ImageDocument(tmp_path / "animated.gif")  # was shown (and annotated) as its first frame alone
    doc.load()
    assert doc.image is None and "cannot read animated.gif" in doc.error and "more than one picture" in doc.error


def test_setting_maps_to_scheme_arguments():
    assert SchemeChoice("pc_tau", tau=0.25, depth=2).scheme_arguments() == {"name": "pc", "tau": 0.25, "depth": 2}
    assert SchemeChoice("uncertainty", entropy=0.3).scheme_arguments() == {"name": "uncertainty", "entropy": 0.3, "depth": 0}
    assert SchemeChoice("pc", depth=1).family() == SchemeChoice("pc", depth=4).family()
    with pytest.raises(ValueError):
        SchemeChoice("bogus")


def test_measurement_plan(tmp_path, rgb, label):
    doc = ImageDocument(save(tmp_path / "g.png", rgb))
    doc.load()
    assert measurement_plan(doc, SchemeChoice("pc", depth=2)) == [("reference", SchemeChoice("all", depth=2))]
    doc.ground_truth = label
    plan = measurement_plan(doc, SchemeChoice("pc_tau", tau=0.4, depth=2))
    kinds = {kind for kind, _ in plan}
    assert kinds == {"curve"}
    assert plan[0][1] == SchemeChoice("pc_tau", tau=0.4, depth=5)
    assert len(plan) == len({(s.family(), s.depth) for _, s in plan})
    assert reference_depth((2048, 2048)) > 0 and reference_depth((256, 256)) == 0


def test_no_paths_opens_the_bundled_samples_and_a_screenshot_needs_an_image(monkeypatch, tmp_path):
    import pytest

    from qgn_studio.app import parse_args

    (tmp_path / "samples" / "images").mkdir(parents=True)
    monkeypatch.setenv("QGN_RESOURCES", str(tmp_path))
    assert parse_args([]).paths == [str(tmp_path / "samples" / "images")]
    assert parse_args(["a.png"]).paths == ["a.png"]
    monkeypatch.setenv("QGN_RESOURCES", str(tmp_path / "missing"))
    with pytest.raises(SystemExit):
        parse_args(["--screenshot", str(tmp_path / "x.png")])


def test_unknown_layers_are_refused_in_one_line_with_exit_2(capsys) -> None:
    """`--layers` names the layers to show; a mistyped one is bad input, as argparse's errors are."""
    from types import SimpleNamespace

    from qgn_studio.app import apply_layers

    shown = {}
    window = SimpleNamespace(canvas=SimpleNamespace(layers={"image": 0, "prediction": 1}),
                             set_layer_visible=lambda key, on: shown.__setitem__(key, on))
    with pytest.raises(SystemExit) as exit_:
        apply_layers(window, "image,levelz")
    assert exit_.value.code == 2 and not shown
    err = capsys.readouterr().err.strip()
    assert err.startswith("qgn-studio: error: --layers: unknown layers ['levelz']") and "image, prediction" in err
    assert "\n" not in err
    apply_layers(window, "prediction")
    assert shown == {"image": False, "prediction": True}


def test_a_screenshot_of_paths_that_do_not_exist_fails_at_once(tmp_path, capsys):
    """`qgn-studio typo.png --screenshot out.png` waited its 3-minute timeout for a prediction that
    never comes, then wrote a picture of the empty window; now one argparse line, exit 2."""
    import pytest

    from qgn_studio.app import parse_args

    typo = tmp_path / "sceen_01.png"
    with pytest.raises(SystemExit) as exited:
        parse_args([str(typo), "--screenshot", str(tmp_path / "out.png")])
    assert exited.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("qgn-studio: error: --screenshot has nothing to render") and str(typo) in error
    assert not (tmp_path / "out.png").exists()
    (tmp_path / "images").mkdir()
    assert parse_args([str(typo), str(tmp_path / "images"), "--screenshot", "out.png"]).paths  # one that exists


def test_an_image_it_may_not_read_is_not_told_to_be_one_you_may_write(tmp_path, monkeypatch):
    """A READ the system refuses (permission) names the file and the reason; its hint fits a read
    (it told the user to choose a file "you may write")."""
    import errno
    import os

    import numpy as np
    from PIL import Image

    import qgn_studio.document as document

    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)

    def refused(p, *args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(p))

    monkeypatch.setattr(document, "read_image", refused)
    doc = document.ImageDocument(path)
    doc.load()
    assert f"{path}: {os.strerror(errno.EACCES)}" in doc.error
    assert "write" not in doc.error and "permission" in doc.error


def test_a_photo_png_whose_header_claims_more_rows_than_its_data_is_said_not_shown(tmp_path):
    """The app opened such a photo with the rows its data lacks as black; its error now names the
    file and what is wrong, in one line."""
    import struct
    import zlib

    import numpy as np
    from PIL import Image

    import qgn_studio.document as document

    path = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (8, 12, 3), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    body = b"IHDR" + struct.pack(">II", 12, 10) + data[24:29]
    path.write_bytes(data[:8] + struct.pack(">I", 13) + body + struct.pack(">I", zlib.crc32(body)) + data[33:])
    doc = document.ImageDocument(path)
    doc.load()
    assert doc.error is not None and f"{path}: its header claims 12×10 pixels" in doc.error, doc.error
    assert len(doc.error.splitlines()) == 1
