"""Full resolution where it wins: which size a photo runs at (working, native, auto), in the
library, `qgn predict --resolution` and the app's engine."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qgn.classes import ClassSet
from qgn.model.qgn import QGN, QGNConfig


def street_like(scale_wide: float | None) -> QGNConfig:
    """A tiny model configured like the street model: working scale 0.5 of 360x480 training images."""
    train = {"scale_min": 0.375, "scale_max": 0.75}
    if scale_wide:
        train["scale_wide"] = scale_wide
    return QGNConfig.from_preset("tiny", ClassSet.generic(3), input_scale=0.5,
                                 input_size=(360, 480), extra={"train": train})


def scale_one_wide(scale_wide: float) -> QGNConfig:
    """A tiny model that works at its training images' own scale and learnt up to ``scale_wide`` of them."""
    train = {"scale_min": 0.75, "scale_max": 1.25, "scale_wide": scale_wide}
    return QGNConfig.from_preset("tiny", ClassSet.generic(3), input_size=(360, 480), extra={"train": train})


def test_working_native_and_auto_sizes() -> None:
    plain, wide = street_like(None), street_like(8.0)
    assert plain.network_size(2880, 3840, "working") == (180, 240)
    assert plain.network_size(2880, 3840, "native") == (2880, 3840)
    assert plain.network_size(2880, 3840, "auto") == (180, 240)  # never trained at that scale
    # A model with a working scale stays there under auto even where it learnt wide scales: the
    # wide-trained street model measured better at its working size (RESULTS.md, #26).
    assert wide.network_size(2880, 3840, "auto") == (180, 240)
    assert wide.network_size(360, 480, "auto") == (180, 240)
    assert wide.network_size(2880, 3840, "native") == (2880, 3840)
    with pytest.raises(ValueError, match="resolution"):
        wide.resolution_for(10, 10, "full")


def test_auto_runs_a_scale_one_wide_model_natively_within_what_it_learnt() -> None:
    wide = scale_one_wide(8.0)
    h, w = wide.working_size(2880, 3840)
    assert h * w <= 4_200_000 < 2880 * 3840  # past the working pixel cap the working size shrinks
    assert wide.network_size(2880, 3840, "auto") == (2880, 3840)  # 8x 360x480: learnt
    assert wide.resolution_for(3000, 4000, "auto") == "working"  # beyond what it learnt
    narrow = QGNConfig.from_preset("tiny", ClassSet.generic(3), input_size=(360, 480),
                                   extra={"train": {"scale_max": 1.25}})
    assert narrow.resolution_for(2880, 3840, "auto") == "working"


def test_native_is_capped_at_the_native_pixel_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QGN_MAX_NATIVE_PIXELS", "1000000")
    h, w = street_like(None).network_size(2880, 3840, "native")
    assert h * w <= 1_000_000 and abs(w / h - 4 / 3) < 0.01


def test_an_image_session_runs_at_the_chosen_resolution() -> None:
    from qgn.infer import ImageSession
    from qgn.propagation import Scheme

    model = QGN(street_like(8.0)).eval()
    image = np.zeros((100, 140, 3), np.uint8)
    working = ImageSession(model, image, resolution="working")
    native = ImageSession(model, image, resolution="native")
    assert working.work_size == model.config.working_size(100, 140) == (176, 246)  # 240x180's pixel count
    assert native.work_size == (100, 140)
    assert native.run(Scheme("pc", depth=4)).label().shape == (100, 140)


def test_predict_takes_a_resolution(tmp_path: Path) -> None:
    from PIL import Image

    from qgn.model.checkpoint import save_model

    model = QGN(street_like(None))
    save_model(tmp_path / "m.safetensors", model)
    Image.fromarray(np.zeros((720, 960, 3), np.uint8)).save(tmp_path / "photo.png")
    sizes = {}
    for resolution in ("working", "native"):
        out = subprocess.run([sys.executable, "-m", "qgn", "predict", "--threads", "1", "--model",
                              str(tmp_path / "m.safetensors"), str(tmp_path / "photo.png"), "--json", "--depth", "5",
                              "--resolution", resolution], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        record = json.loads(out.stdout.splitlines()[-1])
        sizes[resolution] = tuple(record.get("working_size", record.get("image_size", [])))
    assert sizes["working"] == (180, 240) and sizes["native"] == (720, 960)


def test_the_engine_switches_resolution_and_drops_its_sessions() -> None:
    pytest.importorskip("PySide6")
    from qgn_studio.engine import Engine

    engine = Engine()
    engine.model = QGN(street_like(None)).eval()
    engine._entries["x"] = object()
    engine.set_resolution("native")
    assert engine.resolution == "native" and not engine._entries
    other = Engine()
    other.adopt(engine)
    assert other.resolution == "native"
    with pytest.raises(ValueError):
        engine.set_resolution("huge")
