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
