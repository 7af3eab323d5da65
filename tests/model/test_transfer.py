"""Transfer to a new class set (issue #14): encoder/decoder kept, head rows of classes both sets name kept
(case-insensitively, usual spellings), new rows fresh, others dropped, composite kept; `qgn finetune
--classes` and a classes.txt beside the labels; the original model is never written."""
from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

from qgn.classes import ClassSet
from qgn.cli.main import main
from qgn.data.synthetic import SYNTHETIC_CLASSES, make_scene
from qgn.model.checkpoint import load_model, save_model
from qgn.model.qgn import QGN, QGNConfig
from qgn.model.transfer import head_layers, match_classes, match_key, transfer_model
from qgn.quadtree.label_io import format_classes_file, write_label_png

from sample_files import digest


def tiny_model(classes=SYNTHETIC_CLASSES, seed=0) -> QGN:
    torch.manual_seed(seed)
    return QGN(QGNConfig.from_preset("tiny", classes)).eval()


def test_names_match_case_insensitively_with_usual_spellings():
    assert match_key("Traffic_Sign") == match_key("traffic sign") == match_key("sign")
    assert match_key("Sidewalk") == match_key("pavement") and match_key("Colour") == match_key("color")
    assert match_key("cars") == match_key("Car") and match_key("grass") != match_key("gras")
    source = ClassSet(("sky", "Road", "sign", "person", "grass"), (), 255)
    target = ClassSet(("car", "road", "sign/symbol", "Pedestrian", "Sky"), (), 255)
    assert match_classes(source, target) == [None, 1, 2, 3, 0]


def test_transfer_keeps_shared_rows_and_the_rest_of_the_network():
    model = tiny_model(seed=5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    target = ClassSet(("car", "ROAD", "sky", "Fences"), (), 255)  # road=2, sky=0, fence=7 in the synthetic set
    new, report = transfer_model(model, target)
    assert report.kept == (("road", "ROAD"), ("sky", "sky"), ("fence", "Fences"))
    assert report.new == ("car",) and set(report.dropped) == {"grass", "building", "tree", "pole", "sign"}
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), f"the input model changed: {key}"
    heads = {id(h) for h in head_layers(new)}
    head_prefixes = {name for name, m in new.named_modules() if id(m) in heads}
    for key, value in new.state_dict().items():
        if key.rsplit(".", 1)[0] not in head_prefixes:
            assert torch.equal(value, before[key]), key
    for old, fresh in zip(head_layers(model), head_layers(new)):
        assert fresh.weight.shape[0] == 5
        for target_row, source_row in ((0, 0), (2, 3), (3, 1), (4, 8)):  # composite, road, sky, fence
            assert torch.equal(fresh.weight[target_row], old.weight[source_row])
            assert torch.equal(fresh.bias[target_row], old.bias[source_row])
        assert not any(torch.equal(fresh.weight[1], old.weight[r]) for r in range(9))  # car: a fresh row
    assert new.config.classes == target and new.config.extra["transfer"]["new"] == ["car"]
    image, _ = make_scene(3, 64, 64)
    from qgn.infer import predict
    from qgn.propagation import Scheme

    assert predict(new, image, Scheme("all")).label().max() < 4


def test_cli_finetune_transfers_to_the_classes_of_the_labels(tmp_path, capsys):
    model_path = save_model(tmp_path / "m.safetensors", tiny_model())
    original = digest(model_path)
    images, labels = tmp_path / "data" / "images", tmp_path / "data" / "labels"
    images.mkdir(parents=True)
    labels.mkdir()
    for i in range(2):
        image, label = make_scene(20 + i, 64, 64)
        Image.fromarray(image).save(images / f"s{i}.png")
        write_label_png(labels / f"s{i}.png", np.where(label > 9, 9, label).astype(np.uint8))  # ids 0..9, 9 unused
    classes = ClassSet(tuple(SYNTHETIC_CLASSES.names) + ("car", "bus"), (), 255)
    (tmp_path / "data" / "classes.txt").write_text(format_classes_file(classes), encoding="utf-8")
    base = ["finetune", "--model", str(model_path), "--images", str(images), "--labels", str(labels),
            "--iters", "2", "--batch-size", "1", "--threads", "1"]
    assert main([*base, "--out", str(tmp_path / "t1.safetensors"), "--json"]) == 0  # classes.txt beside the labels
    captured = capsys.readouterr()
    assert "transferred: kept 8 class(es)" in captured.err and "new 2 (car, bus)" in captured.err
    tuned = load_model(tmp_path / "t1.safetensors")
    assert tuned.config.classes.names[-2:] == ("car", "bus") and tuned.config.extra["transfer"]["new"] == ["car", "bus"]
    assert json.loads(captured.out)["iterations_done"] == 2
    other = tmp_path / "other.txt"
    other.write_text("sky\nroad\nwater\nignore: 255\n", encoding="utf-8")
    rc = main([*base, "--classes", str(other), "--out", str(tmp_path / "t2.safetensors")])
    assert rc == 2 and "label values" in capsys.readouterr().err  # ids 3..8 are not classes of a 3-class set
    assert digest(model_path) == original
