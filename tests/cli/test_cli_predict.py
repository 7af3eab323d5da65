"""`qgn predict` and `qgn eval` end to end on a small random model and generated scenes."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from qgn.cli.main import main
from qgn.cli.samples import write_samples
from qgn.data.synthetic import SYNTHETIC_CLASSES
from qgn.model.checkpoint import save_model
from qgn.model.qgn import QGN, QGNConfig
from qgn.quadtree import read_qgt
from qgn.quadtree.label_io import read_label
from sample_files import png_claiming, write_mask, write_photo


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    torch.manual_seed(0)
    model_path = save_model(root / "m.safetensors", QGN(QGNConfig.from_preset("tiny", SYNTHETIC_CLASSES)))
    write_samples(root / "samples", 2, 80, 72, 123)
    return root, model_path


def test_predict_writes_png_and_qgt_and_reports_cost(workspace, capsys):
    root, model = workspace
    images, labels, out = root / "samples" / "images", root / "samples" / "labels", root / "out"
    rc = main(["predict", "--model", str(model), str(images), "--labels", str(labels),
               "--out", str(out), "--scheme", "pc", "--json"])
    assert rc == 0
    records = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert len(records) == 2
    for rec in records:
        assert set(rec["active_sites"]) <= {"5", "4", "3", "2", "1", "0"} and rec["active_sites"]["5"] == 9
        assert rec["macs"] > 0 and rec["seconds"] > 0 and 0 <= rec["acc"] <= 1 and 0 <= rec["miou"] <= 1
    for name in ("scene_01", "scene_02"):
        dense = read_label(out / f"{name}.png")
        assert dense.shape == (72, 80)  # padding to 96×96 never shows
        qt, classes = read_qgt(out / f"{name}.qgt")
        assert np.array_equal(qt.to_label(), dense)
        assert classes.names == SYNTHETIC_CLASSES.names
        assert Image.open(out / f"{name}.png").mode == "P"


def test_predict_depth_and_all_scheme_change_the_cost(workspace, capsys):
    root, model = workspace
    image = str(root / "samples" / "images" / "scene_01.png")
    costs = {}
    for args in (["--scheme", "all"], ["--scheme", "all", "--depth", "3"]):
        assert main(["predict", "--model", str(model), image, "--json", *args]) == 0
        costs[" ".join(args)] = json.loads(capsys.readouterr().out)
    full, shallow = costs["--scheme all"], costs["--scheme all --depth 3"]
    assert set(full["active_sites"]) == {"5", "4", "3", "2", "1", "0"}
    assert set(shallow["active_sites"]) == {"5", "4", "3"}
    assert shallow["decoder_macs"] < full["decoder_macs"]


def test_predict_errors_are_clear(workspace, capsys):
    root, model = workspace
    image = str(root / "samples" / "images" / "scene_01.png")
    assert main(["predict", "--model", str(root / "missing.safetensors"), image]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["predict", "--model", str(model), image, "--scheme", "gtc"]) == 2
    assert "ground truth" in capsys.readouterr().err
    assert main(["predict", "--model", str(model), str(root / "nope.png")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_eval_prints_json_per_mode(workspace, capsys):
    root, model = workspace
    assert main(["eval", "--model", str(model), str(root / "samples"), "--json", "--depths", "4"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"all", "gtc", "pc", "pc@4"}
    for mode in result.values():
        assert 0 <= mode["acc"] <= 1 and 0 <= mode["miou"] <= 1 and mode["macs"] > 0
    assert result["pc@4"]["decoder_macs"] <= result["all"]["decoder_macs"]


# -------------------------------------------------- outputs never replace inputs; errors in one line
def test_predict_never_overwrites_input_photos(tmp_path, capsys, model_path, run_cli):
    photos = [write_photo(tmp_path / "in" / "a.png"), write_photo(tmp_path / "in" / "b.png", seed=1)]
    before = {p: p.read_bytes() for p in photos}
    code, _, err = run_cli("predict", "--model", model_path, tmp_path / "in", "--out", tmp_path / "in")
    assert code == 2 and "overwrite the input" in err
    assert {p: p.read_bytes() for p in photos} == before
    assert sorted(p.name for p in (tmp_path / "in").rglob("*")) == ["a.png", "b.png"]


def test_predict_refuses_two_inputs_with_one_stem(tmp_path, capsys, model_path, run_cli):
    write_photo(tmp_path / "in" / "a.png")
    write_photo(tmp_path / "in" / "sub" / "a.png")
    code, _, err = run_cli("predict", "--model", model_path, tmp_path / "in", "--out", tmp_path / "out")
    assert code == 2 and "would both be written" in err and not (tmp_path / "out").exists()


@pytest.mark.parametrize("names", [("A.png", "a.png"), ("caf\u00e9.png", "cafe\u0301.png")])
def test_predict_refuses_two_inputs_one_output_file_on_macos_or_windows(tmp_path, capsys, model_path, run_cli, names):
    # differing only in case (Windows, macOS) or in how "é" is encoded (macOS): one output file there
    for name in names:
        write_photo(tmp_path / "in" / name)
    code, _, err = run_cli("predict", "--model", model_path, tmp_path / "in", "--out", tmp_path / "out")
    assert code == 2 and "would both be written" in err and not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", [b"", b"this is text, not a PNG", None])
def test_predict_batch_reports_a_bad_image_and_goes_on(tmp_path, capsys, model_path, content, run_cli):
    write_photo(tmp_path / "in" / "a.png")
    bad = tmp_path / "in" / "b.png"
    if content is None:  # truncated
        data = write_photo(bad, seed=3).read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    else:
        bad.write_bytes(content)
    write_photo(tmp_path / "in" / "c.png", seed=2)
    code, out, err = run_cli("predict", "--model", model_path, tmp_path / "in", "--out", tmp_path / "out")
    assert code == 2 and "Traceback" not in err
    assert "b.png" in err and "1 of 3 image(s) failed" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "a.qgt", "c.png", "c.qgt"]


def test_predict_checks_every_ground_truth_before_the_first_inference(tmp_path, capsys, model_path, run_cli):
    write_photo(tmp_path / "in" / "a.png")
    write_photo(tmp_path / "in" / "b.png")
    write_mask(tmp_path / "gt" / "a.png", 0, (40, 32))
    code, _, err = run_cli("predict", "--model", model_path, tmp_path / "in", "--labels", tmp_path / "gt",
                           "--out", tmp_path / "out")
    assert code == 2 and "no ground truth for b.png" in err and not (tmp_path / "out").exists()


def test_predict_names_the_ground_truth_with_bad_values(tmp_path, capsys, model_path, run_cli):
    photo = write_photo(tmp_path / "a.png")
    gt = write_mask(tmp_path / "gt" / "a.png", 200, (40, 32))
    code, _, err = run_cli("predict", "--model", model_path, photo, "--labels", gt)
    assert code == 2 and str(gt) in err


@pytest.mark.parametrize("option, words", [
    (["--device", "bogus"], "--device bogus"),
    (["--depth", "6"], "--depth 6"),
    (["--depth", "-1"], "--depth -1"),
])
def test_predict_bad_options_are_one_line(tmp_path, capsys, model_path, option, words, run_cli):
    photo = write_photo(tmp_path / "a.png")
    code, _, err = run_cli("predict", "--model", model_path, photo, *option)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1


def test_cuda_on_a_cpu_build_is_one_line(tmp_path, capsys, model_path, monkeypatch, run_cli):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = run_cli("predict", "--model", model_path, write_photo(tmp_path / "a.png"),
                           "--device", "cuda")
    assert code == 2 and "--device cuda" in err and "--device cpu" in err


def test_predict_refuses_a_bomb_in_one_line(tmp_path, capsys, model_path, run_cli):
    bomb = png_claiming(tmp_path / "bomb.png", 14000, 14000)
    code, _, err = run_cli("predict", "--model", model_path, bomb)
    assert code == 2 and "megapixels" in err and "Traceback" not in err


def test_a_session_reports_each_encoder_stage_and_decoder_level():
    """ImageSession.run(progress=) - a 24 MP photo at full resolution was ~9 s without a word:
    encoder ~3 s, decoder ~2.5 s, its .qgt ~1.3 s. The counts rise to the total; a run that resumes
    an earlier one counts only the levels it computes."""
    from qgn.infer import ImageSession
    from qgn.propagation import Scheme

    torch.manual_seed(0)
    model = QGN(QGNConfig.from_preset("tiny", SYNTHETIC_CLASSES)).eval()
    image = (np.random.default_rng(0).random((70, 90, 3)) * 255).astype(np.uint8)
    session = ImageSession(model, image, at_image_size=True)
    calls = []
    session.run(Scheme("all", depth=2), lambda *a: calls.append(a))
    assert calls == [(k, 9, f"encoder {k}/5") for k in range(1, 6)] \
        + [(5 + k, 9, f"decoder level {level}") for k, level in enumerate((5, 4, 3, 2), 1)] + [(9, 9, "done")]
    calls.clear()
    session.run(Scheme("all", depth=0), lambda *a: calls.append(a))
    assert calls == [(1, 2, "decoder level 1"), (2, 2, "decoder level 0"), (2, 2, "done")]


@pytest.mark.parametrize("tty", [True, False])
def test_predict_draws_the_parts_of_an_image_on_a_terminal_only(workspace, capsys, monkeypatch, tty):
    """On a terminal a slow image shows its part under way - `qgn predict: [1/2] NAME: decoder
    level 3 (8/13)`, then writing its PNG and .qgt - blanked before its line on stdout; off a
    terminal stderr says nothing new and stdout is as before."""
    import sys

    from qgn.cli.progress_line import ItemParts
    from tests.cli.test_cli_progress_line import screen

    monkeypatch.setattr(ItemParts, "SHOWN_AFTER_S", 0.0)  # the samples take milliseconds
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    root, model = workspace
    rc = main(["predict", "--model", str(model), str(root / "samples" / "images"), "--out", str(root / "parts"),
               "--scheme", "all"])  # (a random model's PC may stop above level 0)
    assert rc == 0
    out, err = capsys.readouterr()
    assert [line[:len("[1/2] scene_01.png")] for line in out.splitlines()] == ["[1/2] scene_01.png", "[2/2] scene_02.png"]
    if not tty:
        assert err == ""
        return
    drawn = [part.strip() for part in err.split("\r") if part.strip()]
    assert drawn[:4] == ["qgn predict: [1/2] scene_01.png: reading", "qgn predict: [1/2] scene_01.png: preparing",
                         "qgn predict: [1/2] scene_01.png: encoder 1/5 (1/13)",
                         "qgn predict: [1/2] scene_01.png: encoder 2/5 (2/13)"]
    assert "qgn predict: [1/2] scene_01.png: decoder level 0 (11/13)" in drawn
    assert "qgn predict: [2/2] scene_02.png: writing scene_02.png (11/13)" in drawn
    assert drawn[-1] == "qgn predict: [2/2] scene_02.png: writing scene_02.qgt (12/13)"
    assert [row for row in screen(err + out, 100) if row] == out.splitlines()  # nothing left drawn


def test_a_batch_images_parts_say_the_batch_time_left(workspace, tmp_path, capsys, monkeypatch):
    """In a batch of big images the parts line said only `[i/n] NAME: part`; the batch's time left
    was on stdout after each image. The parts line now ends with it too (from the 3rd image: 2
    done, an estimate), the same estimate as the stdout lines'."""
    import itertools
    import re
    import shutil
    import sys
    from types import SimpleNamespace

    import qgn.progress
    from qgn.cli.progress_line import ItemParts

    root, model = workspace
    images = tmp_path / "images"
    images.mkdir()
    for k in range(3):
        shutil.copy(root / "samples" / "images" / "scene_01.png", images / f"s{k}.png")
    monkeypatch.setattr(ItemParts, "SHOWN_AFTER_S", 0.0)
    monkeypatch.setattr(qgn.progress, "SHOW_AFTER_S", 0.0)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    # the batch's clock moves 1 s at each reading: each image reads it as often, so none runs past
    # its estimate and every part of the third ends with a time left of whole seconds
    monkeypatch.setattr(qgn.progress, "time", SimpleNamespace(monotonic=itertools.count(1000.0).__next__))
    assert main(["predict", "--model", str(model), str(images), "--scheme", "all"]) == 0
    out, err = capsys.readouterr()
    drawn = [p.strip() for p in err.split("\r") if p.strip()]
    third = [p for p in drawn if p.startswith("qgn predict: [3/3]")]
    line = r"qgn predict: \[3/3\] s2\.png: .* · about [1-9]\d* (s|min \d\d s) left"
    assert len(third) > 3 and all(re.fullmatch(line, p) for p in third), third  # each part, not the first alone
    assert not any("left" in p for p in drawn if not p.startswith("qgn predict: [3/3]"))  # 0 or 1 done: none known


def test_predict_refuses_a_photo_png_whose_header_claims_more_rows_than_its_data(tmp_path, model_path, run_cli):
    """It was predicted with the rows its data lacks as black (exit 0)."""
    import struct
    import zlib

    write_photo(tmp_path / "in" / "a.png")
    bad = write_photo(tmp_path / "in" / "b.png", seed=3)
    data = bad.read_bytes()
    body = b"IHDR" + struct.pack(">II", 40, 40) + data[24:29]
    bad.write_bytes(data[:8] + struct.pack(">I", 13) + body + struct.pack(">I", zlib.crc32(body)) + data[33:])
    code, _, err = run_cli("predict", "--model", model_path, tmp_path / "in", "--out", tmp_path / "out")
    assert code == 2 and "Traceback" not in err and "1 of 2 image(s) failed" in err, err
    assert f"{bad}: its header claims 40×40 pixels" in err, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "a.qgt"]
