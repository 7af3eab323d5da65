"""Model files (``.safetensors`` + ``.json``): a malformed JSON or NaN weights are one line naming the
file, and a failed write leaves no half a model behind."""
from __future__ import annotations

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
