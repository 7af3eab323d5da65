"""`qgn models` with a damaged bundled model (its JSON null, a named pipe, missing): the others are
listed, and each one left out is one line naming its file, exit 2. The JSON was read with
``read_text`` inside a bare ``except``: a damaged one was left out without a word (exit 0, or 'no
bundled models' when it was the only one), and a named pipe made the command - and the app's
model menu, which lists the same models - wait for ever."""
from __future__ import annotations

import json
import os
import shutil

import pytest

from qgn.resources import models_dir


@pytest.mark.parametrize("kind", ["null", "fifo", "missing"])
def test_a_damaged_bundled_model_is_named_and_the_others_listed(tmp_path, monkeypatch, run_cli, kind):
    models = tmp_path / "models"
    models.mkdir()
    for suffix in (".safetensors", ".json"):
        shutil.copy(models_dir() / f"demo{suffix}", models / f"demo{suffix}")
    (models / "bad.safetensors").write_bytes(b"weights")
    if kind == "null":
        (models / "bad.json").write_text("null")
    elif kind == "fifo":
        os.mkfifo(models / "bad.json")
    monkeypatch.setenv("QGN_RESOURCES", str(tmp_path))
    code, out, err = run_cli("models")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and "demo" in out and "bad" not in out, (out, err)
    assert len(lines) == 1 and lines[0].startswith("qgn models: error: ") and str(models / "bad.json") in lines[0], err


@pytest.mark.parametrize("text, words", [
    ("null", "it holds null, where a JSON object with a 'config' object belongs"),
    ("[1, 2]", "it holds a list, where a JSON object with a 'config' object belongs"),
    ('{"config": null}', "its 'config' is null, where an object belongs"),
    ('{"config": {"classes": 5}}', "its 'config' 'classes' is a number, where an object with a list of 'names'"),
    ('{"config": {}}', "its 'config' has no 'classes'"),
])
def test_a_bundled_model_json_of_the_wrong_shape_is_said_in_words(tmp_path, monkeypatch, run_cli, text, words):
    """A bundled model's JSON holding null (or a list, a null config…) was said as Python's words:
    "('NoneType' object is not subscriptable)"; now what the file holds and what belongs there."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "bad.safetensors").write_bytes(b"weights")
    (models / "bad.json").write_text(text)
    monkeypatch.setenv("QGN_RESOURCES", str(tmp_path))
    code, _, err = run_cli("models")
    assert code == 2 and words in err and "subscriptable" not in err and "NoneType" not in err, err


@pytest.mark.parametrize("config, words", [
    ({"extra": {"evaluation": {"modes": None}}}, "'evaluation' 'modes' is null, where an object"),
    ({"extra": {"evaluation": {"modes": {"all": 5}}}}, "'modes' 'all' is a number, where an object"),
    ({"extra": {"evaluation": {"modes": {"all": {"miou": "high"}}}}}, "'miou' is a string, where a number"),
    ({"extra": {"evaluation": []}}, "'evaluation' is a list, where an object"),
    ({"extra": {"train": 3}}, "'train' is a number, where an object"),
    ({"names": [1, None]}, "'names' holds a number, where class names (texts) belong"),
    ({"names": []}, "'names' is an empty list"),
    ({"palette": 3}, "'palette' is a number, where a list of [r, g, b] colours"),
])
def test_a_bundled_model_json_whose_parts_are_of_the_wrong_shape_is_said_not_listed_half(
        tmp_path, monkeypatch, run_cli, config, words):
    """A bundled model's JSON whose evaluation record is of the wrong shape (modes null, a mode a
    number) printed half the table, then 'unexpected AttributeError' (``BundledModel.miou`` and the
    table read it outside the checked reader; the app's model menu reads ``miou`` too); class names
    [1, null] were listed as "1, None" (exit 0). The checked reader checks the whole shape: the
    model is named as left out, and the others listed."""
    models = tmp_path / "models"
    models.mkdir()
    for suffix in (".safetensors", ".json"):
        shutil.copy(models_dir() / f"demo{suffix}", models / f"demo{suffix}")
    (models / "bad.safetensors").write_bytes(b"weights")
    classes = {"names": config.pop("names", ["a", "b"])} | ({"palette": config.pop("palette")} if "palette" in config else {})
    (models / "bad.json").write_text(json.dumps({"config": {"classes": classes, **config}}))
    monkeypatch.setenv("QGN_RESOURCES", str(tmp_path))
    code, out, err = run_cli("models")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and str(models / "bad.json") in lines[0] and words in lines[0], err
    assert "demo" in out and "bad" not in out and "None" not in out, out
    from qgn.resources import bundled_models

    assert [m.name for m in bundled_models()] == ["demo"]
    assert all(m.miou is None or isinstance(m.miou, float) for m in bundled_models())
