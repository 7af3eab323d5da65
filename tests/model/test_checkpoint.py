"""Model files (``.safetensors`` + ``.json``): a malformed JSON or NaN weights are one line naming the
file, and a failed write leaves no half a model behind."""
from __future__ import annotations

import html
import json
from pathlib import Path

import pytest
import torch

from sample_files import write_photo


def copy_model(model_path: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "m.safetensors"
    target.write_bytes(model_path.read_bytes())
    target.with_suffix(".json").write_bytes(model_path.with_suffix(".json").read_bytes())
    return target


def edit_config(doc: dict, case: str):
    if case == "no config":
        del doc["config"]
    elif case == "classes not an object":
        doc["config"]["classes"] = 5
    elif case == "classes list":
        doc["config"]["classes"] = ["a", "b"]
    elif case == "mean of 2":
        doc["config"]["mean"] = [0.5, 0.5]
    elif case == "std 0":
        doc["config"]["std"] = [0.2, 0.0, 0.2]
    elif case == "units not a list":
        doc["config"]["decoder_units"] = 3
    elif case == "a list":
        return [doc]
    return doc


@pytest.mark.parametrize("case", ["no config", "classes not an object", "classes list", "mean of 2", "std 0",
                                  "units not a list", "a list", "deeply nested"])
def test_malformed_model_json_is_one_line(tmp_path, capsys, model_path, case, run_cli):
    model = copy_model(model_path, tmp_path / "model")
    if case == "deeply nested":
        text = "[" * 100000 + "]" * 100000
    else:
        text = json.dumps(edit_config(json.loads(model.with_suffix(".json").read_text()), case))
    model.with_suffix(".json").write_text(text)
    code, _, err = run_cli("predict", "--model", model, write_photo(tmp_path / "a.png"))
    assert code == 2 and "m.json" in err and len(err.strip().splitlines()) == 1, err


HOSTILE = {  # case: (field: value, or the document's own key in [brackets]; what the message must hold)
    "unknown encoder": ({"encoder": "resnet9000"}, "encoder"),
    "encoder not text": ({"encoder": 5}, "encoder"),
    "unknown stem": ({"encoder_stem": "huge"}, "encoder_stem"),
    "shortcut not text": ({"encoder_shortcut": 3}, "encoder_shortcut"),
    "version as text": ({"[version]": "1"}, "without quotes"),
    "future version": ({"[version]": 2}, "update qgn"),
    "version true": ({"[version]": True}, "version"),
    "negative version": ({"[version]": -1}, "version"),
    "no classes": ({"classes": None}, "classes"),
    "names not text": ({"classes": {"names": [1, 2, 3]}}, "classes.names"),
    "palette of pairs": ({"classes": {"names": ["a"], "palette": [[1, 2]]}}, "classes.palette"),
    "huge ignore value": ({"classes": {"names": ["a"], "ignore_index": 10**12}}, "classes.ignore_index"),
    "width as text": ({"encoder_width": "1.0"}, "encoder_width"),
    "10**12 channels wide": ({"encoder_width": 10**12}, "encoder_width"),
    "10**12 decoder units": ({"decoder_units": [10**12]}, "decoder_units"),
    "units as text": ({"decoder_units": "11111"}, "decoder_units"),
    "input size of 3": ({"input_size": [1, 2, 3]}, "input_size"),
    "huge input size": ({"input_size": [10**12, 10**12]}, "input_size"),
    "levels": ({"num_levels": 10**12}, "num_levels"),
    "extra not an object": ({"extra": [1, 2]}, "extra"),
    "unknown field": ({"channels": 10**12}, "channels"),
    "format": ({"[format]": 5}, "qgn-model"),
    "ignore value a class id": ({"classes": {"names": ["a", "b"], "ignore_index": 0}}, "ignore_index 0 collides"),
}


def hostile_model(model_path: Path, folder: Path, case: str) -> Path:
    model = copy_model(model_path, folder)
    doc = json.loads(model.with_suffix(".json").read_text())
    for field, value in HOSTILE[case][0].items():
        target, key = (doc, field[1:-1]) if field.startswith("[") else (doc["config"], field)
        if value is None:
            del target[key]
        else:
            target[key] = value
    model.with_suffix(".json").write_text(json.dumps(doc))
    return model


@pytest.mark.parametrize("case", list(HOSTILE))
def test_every_hostile_model_json_names_the_file_the_field_and_the_fix(tmp_path, capsys, model_path, case,
                                                                       run_cli, monkeypatch):
    import qgn.model.checkpoint as checkpoint

    model = hostile_model(model_path, tmp_path / "model", case)
    built = []
    monkeypatch.setattr(checkpoint, "QGN", lambda config: built.append(config))  # nothing is built from it
    code, _, err = run_cli("predict", "--model", model, write_photo(tmp_path / "a.png"), "--out", tmp_path / "o")
    line = err.strip()
    assert code == 2 and len(line.splitlines()) == 1, err
    assert line.startswith(f"qgn predict: error: {model.with_suffix('.json')}"), line
    assert HOSTILE[case][1] in line and "Error: " not in line, line  # the field, not an exception's name
    assert any(fix in line for fix in ("restore the file", "update qgn", "without quotes", "NAME.json")), line
    assert not built and not (tmp_path / "o").exists()


def test_a_model_json_number_of_more_digits_than_python_reads_names_the_file(tmp_path, model_path, run_cli):
    """json's int() refuses a number of over 4300 digits with a bare ValueError: the line said
    "Exceeds the limit (4300 digits) … use sys.set_int_max_str_digits()", naming no file."""
    model = copy_model(model_path, tmp_path / "model")
    config = model.with_suffix(".json")
    config.write_text(config.read_text().replace('"version": 1', '"version": 1' + "0" * 5000, 1))
    code, _, err = run_cli("predict", "--model", model, write_photo(tmp_path / "a.png"))
    assert code == 2 and err.startswith(f"qgn predict: error: {config} holds a number of more digits"), err
    assert "restore the file" in err and "set_int_max_str_digits" not in err, err


def test_the_app_names_the_model_file_it_cannot_load(qtbot, window, model_path, tmp_path):
    model = hostile_model(model_path, tmp_path / "m<b>odel", "unknown encoder")
    window.start([], str(model))
    qtbot.waitUntil(lambda: "model" in window.canvas.banner.messages, timeout=30_000)
    text, kind = window.canvas.banner.messages["model"]
    assert kind == "error" and html.escape(str(model.with_suffix(".json"))) in text and "resnet9000" in text


def test_nan_weights_are_refused(tmp_path, capsys, model_path, run_cli):
    from safetensors.torch import load_file, save_file

    model = copy_model(model_path, tmp_path / "model")
    state = load_file(str(model))
    name = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    state[name][0] = float("nan")
    save_file(state, str(model), metadata={"format": "qgn-model"})
    code, _, err = run_cli("predict", "--model", model, write_photo(tmp_path / "a.png"))
    assert code == 2 and "NaN" in err and name in err


def test_a_failed_save_leaves_the_old_pair_or_nothing(tmp_path, monkeypatch, model_path):
    """Weights were renamed into place before the JSON was written: a failure (or a kill) there
    left new weights with no JSON (a model nothing loads, that also blocked the next save), or,
    saved over a model of other classes, new weights beside the old JSON: both models lost. Both
    files are now written whole first, then renamed."""
    import os

    from qgn.model.checkpoint import load_model, save_model

    model = load_model(model_path)
    calls = []
    real = os.fsync

    def disk_full_at_the_json(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(fd)

    monkeypatch.setattr(os, "fsync", disk_full_at_the_json)
    with pytest.raises(OSError, match="new.json"):
        save_model(tmp_path / "new.safetensors", model)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    monkeypatch.undo()
    save_model(tmp_path / "old.safetensors", model, extra={"mark": "old"})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with torch.no_grad():
        next(model.parameters()).add_(1.0)  # other weights under the same name
    calls.clear()
    monkeypatch.setattr(os, "fsync", disk_full_at_the_json)
    with pytest.raises(OSError):
        save_model(tmp_path / "old.safetensors", model, extra={"mark": "new"})
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert load_model(tmp_path / "old.safetensors").config.extra["mark"] == "old"


@pytest.mark.parametrize("dtype", [torch.float8_e4m3fn, torch.complex64, torch.bool, torch.uint8])
def test_weights_of_another_type_are_one_line_naming_the_tensor(tmp_path, capsys, model_path, run_cli, dtype):
    # float8 weights ended in "unexpected NotImplementedError: isfinite not implemented"; complex
    # ones loaded with their imaginary part dropped and a warning line; booleans loaded as 0/1
    from safetensors.torch import load_file, save_file

    model = copy_model(model_path, tmp_path / "model")
    state = load_file(str(model))
    name = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    state[name] = state[name].to(dtype)
    save_file(state, str(model), metadata={"format": "qgn-model"})
    code, _, err = run_cli("predict", "--model", model, write_photo(tmp_path / "a.png"), "--out", tmp_path / "o")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"qgn predict: error: {model}: weights {name!r} are of type ") and "float32" in err, err
    assert not (tmp_path / "o").exists()


def test_weights_in_another_float_width_still_load(tmp_path, model_path):
    from safetensors.torch import load_file, save_file

    from qgn.model.checkpoint import load_model

    model = copy_model(model_path, tmp_path / "model")
    state = load_file(str(model))
    save_file({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, str(model),
              metadata={"format": "qgn-model"})
    loaded = load_model(model)
    assert all(v.dtype == torch.float32 for v in loaded.state_dict().values() if v.is_floating_point())


def test_a_model_json_saved_with_a_byte_order_mark_loads(tmp_path, model_path):
    from qgn.model.checkpoint import load_model

    model = copy_model(model_path, tmp_path / "model")
    config = model.with_suffix(".json")
    config.write_bytes(b"\xef\xbb\xbf" + config.read_bytes())
    assert load_model(model).config.classes.num_classes > 0
