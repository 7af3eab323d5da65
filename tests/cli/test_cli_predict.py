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
