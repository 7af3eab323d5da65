"""Models by name (`--model camvid`), `qgn models`, and ground truth that does not fit a model."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from qgn.classes import ClassSet
from qgn.cli.main import main
from qgn.ground_truth import GroundTruthMismatch, check_ground_truth, fitting_bundled_models, foreign_values
from qgn.model.checkpoint import save_model
from qgn.model.qgn import QGN, QGNConfig
from qgn.resources import bundled_models, default_model

STREET = ClassSet(names=tuple(f"c{i}" for i in range(11)), palette=tuple((i, i, i) for i in range(11)),
                  ignore_index=11)
SMALL = ClassSet.generic(4, 255)


def write_model(path, classes, extra=None, seed=0):
    torch.manual_seed(seed)
    return save_model(path, QGN(QGNConfig.from_preset("tiny", classes)).eval(), extra=extra)


@pytest.fixture(autouse=True)
def model_zoo(resources):
    """The (redirected) bundled models of this module: demo, street and a broken one."""
    root = resources
    write_model(root / "models" / "demo.safetensors", SMALL, {"train": {"dataset": "synthetic", "split": "train"}})
    evaluation = {"data": "camvid", "split": "val", "modes": {"all": {"miou": 0.61}, "pc": {"miou": 0.605}}}
    write_model(root / "models" / "street.safetensors", STREET,
                {"train": {"dataset": "camvid", "split": "train"}, "iteration": 3000, "evaluation": evaluation})
    (root / "models" / "broken.json").write_text("{")
    (root / "models" / "broken.safetensors").write_bytes(b"")
    return root


def test_names_paths_and_run_folders_resolve(resources, tmp_path):
    assert default_model(None) == resources / "models" / "demo.safetensors"
    assert default_model("street") == resources / "models" / "street.safetensors"
    assert default_model(str(resources / "models" / "street.safetensors")).name == "street.safetensors"
    run = tmp_path / "runs" / "x"
    write_model(run / "last.safetensors", SMALL)
    assert default_model(run) == run / "last.safetensors"
    write_model(run / "final.safetensors", SMALL)
    assert default_model(str(run)) == run / "final.safetensors"
    with pytest.raises(FileNotFoundError, match="demo, street"):
        default_model("nosuch")
    with pytest.raises(FileNotFoundError):
        default_model("../models/street")  # a name never walks out of the models folder


def test_bundled_models_describe_themselves(resources):
    models = {m.name: m for m in bundled_models()}
    assert list(models) == ["demo", "street"]  # the unreadable one is skipped, demo first
    street = models["street"]
    assert street.trained_on == "camvid/train" and street.iterations == 3000
    assert street.miou == pytest.approx(0.61) and street.classes.num_classes == 11
    assert models["demo"].miou is None


def test_qgn_models_lists_them(resources, capsys):
    """The broken one is said, one line naming its JSON, after the others are listed (exit 2)."""
    assert main(["models", "--json"]) == 2
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["name"] for r in rows] == ["demo", "street"]
    assert rows[1]["miou"] == {"all": 0.61, "pc": 0.605} and rows[1]["evaluated_on"] == "camvid/val"
    assert err.count("\n") == 1 and err.startswith("qgn models: error: ") and "broken.json" in err
    assert main(["models"]) == 2
    text = capsys.readouterr().out
    assert "street" in text and "61.0 / 60.5 on camvid/val" in text and "not measured" in text


def test_foreign_values_and_the_fitting_model(resources):
    label = np.array([[0, 3, 10], [11, 2, 1]])
    assert foreign_values(label, SMALL).tolist() == [10, 11]
    assert foreign_values(label, STREET).tolist() == []
    assert fitting_bundled_models(label) == ["street"]
    with pytest.raises(GroundTruthMismatch) as err:
        check_ground_truth(label, SMALL, "x/labels/a.png", "demo")
    message = str(err.value)
    assert "x/labels/a.png" in message and "[10, 11]" in message and "--model street" in message
    check_ground_truth(label, STREET, "a.png", "street")  # fits: no error


def _pair(folder, values):
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 64, 3), dtype=np.uint8)).save(folder / "images" / "a.png")
    label = np.zeros((40, 64), np.uint8)
    label[:, 32:] = values
    Image.fromarray(label).save(folder / "labels" / "a.png")


def test_predict_names_a_ground_truth_that_does_not_fit_and_still_predicts(resources, tmp_path, capsys):
    """Values the model has no class for: the line names the file, the values and the model that
    has them; the image is still predicted (one bad ground truth never stops a batch)."""
    _pair(tmp_path / "d", 9)
    out = tmp_path / "out"
    rc = main(["predict", str(tmp_path / "d" / "images"), "--labels", str(tmp_path / "d" / "labels"),
               "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert err[0].startswith("qgn predict: error: ") and "a.png" in err[0] and "[9]" in err[0]
    assert "--model street" in err[0]
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "a.qgt"]
    rc = main(["predict", str(tmp_path / "d" / "images"), "--labels", str(tmp_path / "d" / "labels"),
               "--model", "street", "--json"])
    assert rc == 0
    assert "miou" in json.loads(capsys.readouterr().out.splitlines()[0])


def test_eval_names_the_fitting_model_and_records_into_a_copy(resources, tmp_path, capsys):
    _pair(tmp_path / "d", 3)
    (tmp_path / "d" / "classes.txt").write_text("".join(f"{n}\n" for n in SMALL.names) + "ignore: 255\n")
    data = f"folder:{tmp_path / 'd'}"
    record = tmp_path / "recorded.safetensors"
    assert main(["eval", data, "--model", "demo", "--modes", "all,pc", "--json", "--record", str(record)]) == 0
    out = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert set(out) == {"all", "pc"} and set(out["all"]["class_iou"]) == set(SMALL.names)
    stored = json.loads(record.with_suffix(".json").read_text())["config"]["extra"]["evaluation"]
    assert stored["modes"]["all"]["miou"] == pytest.approx(out["all"]["miou"])
    before = (resources / "models" / "demo.json").read_text()
    rc = main(["eval", data, "--model", "demo", "--record", str(resources / "models" / "demo.safetensors")])
    assert rc == 2 and "overwrite" in capsys.readouterr().err
    assert (resources / "models" / "demo.json").read_text() == before
