"""Which image next (issue #14, offscreen): the image list ordered by the model's uncertainty (most
uncertain first, each row showing its score), the next most uncertain image, the next uncertain
region; and the Qt-free helpers they use."""
from __future__ import annotations

import numpy as np
import pytest

from qgn.uncertainty import entropy_from_levels
from qgn_studio.testing import write_samples

WAIT_MS = 60_000


def test_entropy_from_levels_takes_the_finest_computed_cell():
    coarse = np.array([[0.2, 0.4]], np.float32)  # level 1: 2-px cells over a 2×4 map
    fine = np.full((2, 4), np.nan, np.float32)
    fine[0, 0] = 0.9
    got = entropy_from_levels({1: coarse, 0: fine}, (2, 3))
    assert got.shape == (2, 3)
    np.testing.assert_allclose(got, [[0.9, 0.2, 0.4], [0.2, 0.2, 0.4]])


def test_order_by_uncertainty_then_next_image_and_region(qtbot, window, tmp_path, model_path):
    from qgn.infer import predict
    from qgn.model.checkpoint import load_model
    from qgn.propagation import Scheme
    from qgn.uncertainty import image_uncertainty
    from qgn_studio.document import read_image

    paths = write_samples(tmp_path / "data", 4, (64, 96))
    window.start(paths, str(model_path))
    qtbot.waitUntil(lambda: window.current is not None and window.current.result is not None, timeout=WAIT_MS)
    order = window.uncertainty_order
    order.order()
    qtbot.waitUntil(lambda: bool(order.scores), timeout=WAIT_MS)
    model = load_model(model_path)
    want = {p.resolve(): image_uncertainty(predict(model, read_image(p), Scheme("pc"))).mean_entropy for p in paths}
    scores = {p.resolve(): s for p, s in order.scores.items()}
    assert scores.keys() == want.keys()
    for path, score in scores.items():
        assert score == pytest.approx(want[path], abs=1e-5)
    listed = [d.path.resolve() for d in window.docs]
    assert listed == sorted(listed, key=lambda p: -want[p])  # most uncertain first
    assert "uncertainty" in window.images.row_text(0)
    start = window.current.path.resolve()
    visited = []
    for _ in range(3):
        order.next_image()
        visited.append(window.current.path.resolve())
    assert visited == [p for p in listed if p != start][:3]  # most uncertain first, the image in view skipped
    qtbot.waitUntil(lambda: window.current.result is not None, timeout=WAIT_MS)
    order.next_region()
    rect = window.canvas.view.viewRect()
    assert rect.width() <= 7 * 16 + 1


def test_scores_of_a_run_the_model_changed_under_are_remembered_with_the_model_that_scored_them(
        qtbot, window, tmp_path, model_path, monkeypatch):
    """A scoring run goes on with its copy of the model; a fine-tuned model kept meanwhile (or any
    other loaded) was named as the one that scored them, so the next open said "scored with" the new
    model over the old one's scores."""
    import json
    import shutil
    import threading
    from pathlib import Path

    from qgn_studio import uncertainty_order

    paths = write_samples(tmp_path / "data", 2, (64, 96))
    window.start(paths, str(model_path))
    qtbot.waitUntil(lambda: window.current is not None and window.current.result is not None, timeout=WAIT_MS)
    go_on = threading.Event()
    real = uncertainty_order.RankJob.run

    def held(job):
        go_on.wait(WAIT_MS / 1000)
        real(job)

    monkeypatch.setattr(uncertainty_order.RankJob, "run", held)
    order = window.uncertainty_order
    order.order()
    other = tmp_path / "other" / "tuned.safetensors"
    other.parent.mkdir()
    for suffix in (".safetensors", ".json"):
        shutil.copy(model_path.with_suffix(suffix), other.with_suffix(suffix))
    with qtbot.waitSignal(window.worker.model_loaded, timeout=WAIT_MS):
        window.worker.load_model(other)
    with qtbot.waitSignal(order.scores_changed, timeout=WAIT_MS):
        go_on.set()
    memory = json.loads(window.settings.value(order._memory_key()))
    assert Path(window.model_info.path).resolve() == other.resolve()
    assert Path(memory["model"]).resolve() == model_path.resolve()  # the model it began with scored them
