"""benchmarks/bench_quadtree.py finds CamVid where every command does (QGN_DATA first)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_quadtree.py"


def test_the_masks_come_from_qgn_data(tmp_path, monkeypatch) -> None:
    """The README's `python benchmarks/bench_quadtree.py` read ../shared/data beside the checkout
    only: with CamVid where QGN_DATA says (as `qgn eval camvid` finds it), it measured 20 synthetic
    masks and printed their figures as if nothing were wrong. It now looks where the dataset
    registry looks."""
    labels = tmp_path / "data" / "camvid" / "val" / "labels"
    labels.mkdir(parents=True)
    mask = (np.arange(36 * 48).reshape(36, 48) % 12).astype(np.uint8)
    Image.fromarray(mask).save(labels / "f1.png")
    monkeypatch.setenv("QGN_DATA", str(tmp_path / "data"))
    spec = importlib.util.spec_from_file_location("bench_quadtree_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    masks, stored, source = module.load_masks()
    assert source == str(labels) and stored == [(labels / "f1.png").stat().st_size]
    assert len(masks) == 1 and np.array_equal(masks[0], mask)
