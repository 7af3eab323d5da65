"""The start map (qgn.annotation.start): bilinear where it adds detail, the working grid's own
classes where the grid is already at least as fine as the bilinear step would work."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from qgn.annotation import start
from qgn.annotation.start import UPSAMPLE_PIXELS, bilinear_size, dense_probabilities, smooth_start, upsampled_label


@pytest.mark.parametrize("working, image, expected", [
    ((180, 240), (360, 480), (360, 480)),  # the street model on a CamVid frame: bilinear to the frame
    ((180, 240), (3024, 4032), (627, 836)),  # ... on a phone photo: to UPSAMPLE_PIXELS
    ((1774, 2365), (2880, 3840), None),  # a 4.2 MP grid for a 12 MP photo: finer than 0.5 MP already
    ((360, 480), (360, 480), None),  # no working scale
    ((700, 700), (1000, 1000), (724, 724)),  # 490k working pixels, the target 524k: still bilinear
    ((724, 724), (1000, 1000), None),  # as many: nearest
])
def test_bilinear_size(working, image, expected):
    got = bilinear_size(working, image)
    assert got == expected
    if got is not None:
        assert got[0] * got[1] <= UPSAMPLE_PIXELS * 1.01


@pytest.fixture(scope="module")
def half_scale_model(tmp_path_factory):
    """The tiny dev model made to work at half the image's size (as the street model does)."""
    from qgn.model.checkpoint import load_model
    from qgn_studio.testing import make_dev_model

    model = load_model(make_dev_model(tmp_path_factory.mktemp("m") / "dev.safetensors", composite_bias=0.6))
    model.config = dataclasses.replace(model.config, input_scale=0.5, input_size=None)
    return model.eval()


def prediction_of(model, size: tuple[int, int], seed: int = 3):
    from qgn.data.synthetic import make_scene
    from qgn.infer import ImageSession
    from qgn.propagation import Scheme

    image, _ = make_scene(seed, *size)
    session = ImageSession(model, image)
    with torch.no_grad():
        return session.run(Scheme("pc", depth=0))


def test_where_bilinear_adds_detail_the_start_is_the_bilinear_one(half_scale_model):
    prediction = prediction_of(half_scale_model, (96, 128))
    (h, w), size = tuple(prediction.sizes[0]), prediction.image_size(0)
    assert (h, w) == (48, 64) and size == (96, 128) and bilinear_size((h, w), size) == size
    label = smooth_start(prediction)
    np.testing.assert_array_equal(label, upsampled_label(dense_probabilities(prediction), size))
    # bilinear, not blocks: somewhere a 2x2 block of the image is not one class
    blocks = label.reshape(48, 2, 64, 2)
    assert (blocks.min(axis=(1, 3)) != blocks.max(axis=(1, 3))).any()


def test_where_the_grid_is_finer_the_start_keeps_every_working_pixel(half_scale_model, monkeypatch):
    """With the bilinear step capped below the working grid's pixels, the start is the working
    grid's classes, each image pixel taking the working pixel its centre falls in; the bilinear
    path would have resized the grid down first and lost its finest detail."""
    monkeypatch.setattr(start, "UPSAMPLE_PIXELS", 1000)
    prediction = prediction_of(half_scale_model, (96, 128))
    (h, w), size = tuple(prediction.sizes[0]), prediction.image_size(0)
    assert bilinear_size((h, w), size) is None
    probabilities = dense_probabilities(prediction)
    working = probabilities.argmax(0).numpy()  # the finest computed cell's class, composite left out
    rows = np.minimum(((np.arange(size[0]) + 0.5) * h / size[0]).astype(int), h - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * w / size[1]).astype(int), w - 1)
    label = smooth_start(prediction)
    assert label.dtype == np.int64 and label.shape == size
    np.testing.assert_array_equal(label, working[rows][:, cols])
    blurred = upsampled_label(probabilities, size)  # what it was: bilinear at ~1000 pixels, then nearest
    assert (blurred != label).mean() > 0.01


def test_masked_start_keeps_the_labels_the_model_is_sure_of():
    label = np.array([[0, 1, 2], [3, 4, 5]])
    confidence = np.array([[0.95, 0.89, 0.90], [0.2, 1.0, 0.5]], dtype=np.float32)
    got = start.masked_start(label, confidence, 0.9, 11)
    np.testing.assert_array_equal(got, [[0, 11, 2], [11, 4, 11]])  # >= τ kept, the rest unlabelled
    assert got.dtype == np.int64
    with pytest.raises(ValueError, match="shape"):
        start.masked_start(label, confidence[:, :2], 0.9, 11)


def test_upsampled_confidence_is_the_shown_class_probability():
    """A known probability map: the left half class 0 at 0.6, the right half class 2 at 0.95 (3
    classes). Doubled bilinearly, pixels away from the seam keep those values exactly; the seam's
    pixels mix the two columns (0.25 / 0.75 weights), and the label is upsampled_label's."""
    probs = np.zeros((3, 4, 4), np.float32)
    probs[:, :, :2] = np.array([0.6, 0.3, 0.1])[:, None, None]
    probs[:, :, 2:] = np.array([0.02, 0.03, 0.95])[:, None, None]
    label, confidence = start.upsampled_confidence(torch.from_numpy(probs), (8, 8))
    np.testing.assert_array_equal(label, upsampled_label(torch.from_numpy(probs), (8, 8)))
    assert (label[:, :3] == 0).all() and (label[:, 5:] == 2).all()
    np.testing.assert_allclose(confidence[:, :3], 0.6, atol=1e-6)
    np.testing.assert_allclose(confidence[:, 5:], 0.95, atol=1e-6)
    # column 3 samples 0.75 of column 1 (left) and 0.25 of column 2 (right); column 4 the reverse
    np.testing.assert_allclose(confidence[:, 3], 0.75 * 0.6 + 0.25 * 0.02, atol=1e-6)
    np.testing.assert_allclose(confidence[:, 4], 0.25 * 0.1 + 0.75 * 0.95, atol=1e-6)


def test_confident_start_is_the_start_where_sure_and_empty_elsewhere(half_scale_model):
    prediction = prediction_of(half_scale_model, (96, 128))
    full = smooth_start(prediction)
    label, confidence = start.start_confidence(prediction)
    np.testing.assert_array_equal(label, full)
    # the confidence is the dense probabilities' maximum, upsampled as the start is (independent of masking)
    import torch.nn.functional as F

    up = F.interpolate(dense_probabilities(prediction)[None], size=(96, 128), mode="bilinear", align_corners=False)[0]
    np.testing.assert_allclose(confidence, up.max(0).values.numpy(), atol=1e-6)
    tau = float(np.median(confidence))
    masked = start.confident_start(prediction, tau, 99)
    sure = confidence >= tau
    assert 0 < sure.mean() < 1
    np.testing.assert_array_equal(masked[sure], full[sure])
    assert (masked[~sure] == 99).all()
    np.testing.assert_array_equal(start.confident_start(prediction, 0.0, 99), full)
    assert (start.confident_start(prediction, 1.01, 99) == 99).all()


def test_confident_start_on_a_big_grid_reads_the_grid_nearest(half_scale_model, monkeypatch):
    monkeypatch.setattr(start, "UPSAMPLE_PIXELS", 1000)
    prediction = prediction_of(half_scale_model, (96, 128))
    label, confidence = start.start_confidence(prediction)
    np.testing.assert_array_equal(label, smooth_start(prediction))
    probabilities = dense_probabilities(prediction)
    rows = np.minimum(((np.arange(96) + 0.5) * 48 / 96).astype(int), 47)
    cols = np.minimum(((np.arange(128) + 0.5) * 64 / 128).astype(int), 63)
    np.testing.assert_allclose(confidence, probabilities.max(0).values.numpy()[rows][:, cols])
