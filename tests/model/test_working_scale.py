"""A model's working resolution (QGNConfig.input_scale / input_size): inference resizes the image,
and the prediction maps back to the image's own pixels."""
import numpy as np
import pytest
import torch

from qgn.classes import ClassSet
from qgn.data.transforms import resize_image, resize_label
from qgn.infer import ImageSession
from qgn.model.checkpoint import load_model, save_model
from qgn.model.qgn import QGN, QGNConfig
from qgn.propagation import Scheme


def _model(scale=1.0, size=None, seed=0):
    torch.manual_seed(seed)
    config = QGNConfig.from_preset("tiny", ClassSet.generic(4, 255), input_scale=scale, input_size=size)
    return QGN(config).eval()


def _scene(h, w, seed=1):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    label = np.zeros((h, w), np.int64)
    label[h // 3:, : w // 2] = 1
    label[: h // 2, w // 2:] = 2
    label[h - 7:, w - 9:] = 3
    return image, label


def test_working_size_rules():
    assert _model().config.working_size(360, 480) == (360, 480)
    assert _model(0.5).config.working_size(360, 480) == (180, 240)
    assert _model(0.5).config.working_size(101, 77) == (50, 38)  # round half to even, at least 1
    by_pixels = _model(0.5, (360, 480)).config
    assert by_pixels.working_size(360, 480) == (180, 240)
    assert by_pixels.working_size(3024, 4032) == (180, 240)  # a phone photo runs at the trained object size
    assert by_pixels.working_size(180, 240) == (180, 240)


@pytest.mark.parametrize("shape", [(96, 128), (75, 101)])
def test_prediction_equals_running_the_resized_image(shape):
    """Reference: the same weights at scale 1 on the image resized by hand, labels resized back."""
    image, label = _scene(*shape)
    scaled, plain = _model(0.5), _model(1.0)
    plain.load_state_dict(scaled.state_dict())
    session = ImageSession(scaled, image, label)
    work = session.work_size
    assert work == scaled.config.working_size(*shape)
    reference = ImageSession(plain, resize_image(image, work), resize_label(label, work))
    for scheme in (Scheme("all"), Scheme("pc"), Scheme("gtc")):
        pred, ref = session.run(scheme), reference.run(scheme)
        assert pred.label().shape == shape
        np.testing.assert_array_equal(pred.working_label(), ref.label())
        np.testing.assert_array_equal(pred.label(), resize_label(ref.label(), shape))
        assert pred.cost().active_sites == ref.cost().active_sites
        assert pred.cost().image_size == shape and pred.cost().working_size == work
        fy, fx = pred.working_scale()
        assert fy == pytest.approx(shape[0] / work[0]) and fx == pytest.approx(shape[1] / work[1])
        tree = pred.quadtree()
        assert (tree.height, tree.width) == shape
        np.testing.assert_array_equal(tree.to_label(), pred.label())
        np.testing.assert_array_equal(pred.working_quadtree().to_label(), ref.label())


def test_half_scale_maps_each_working_pixel_to_a_2x2_block():
    image, _ = _scene(64, 96)
    pred = ImageSession(_model(0.5), image).run(Scheme("all"))
    small = pred.working_label()
    np.testing.assert_array_equal(pred.label(), small.repeat(2, 0).repeat(2, 1))


def test_scale_one_changes_nothing():
    image, _ = _scene(64, 96)
    pred = ImageSession(_model(), image).run(Scheme("pc"))
    assert pred.output_sizes is None and pred.working_scale() == (1.0, 1.0)
    np.testing.assert_array_equal(pred.label(), pred.working_label())


def test_working_scale_survives_save_and_load(tmp_path):
    model = _model(0.5, (360, 480))
    path = save_model(tmp_path / "m.safetensors", model)
    loaded = load_model(path)
    assert loaded.config.input_scale == 0.5 and loaded.config.input_size == (360, 480)
    assert loaded.config.working_size(720, 960) == (180, 240)


def test_models_without_the_fields_run_as_given(tmp_path):
    import json

    path = save_model(tmp_path / "m.safetensors", _model())
    doc = json.loads(path.with_suffix(".json").read_text())
    doc["config"].pop("input_scale")
    doc["config"].pop("input_size")
    path.with_suffix(".json").write_text(json.dumps(doc))
    assert load_model(path).config.working_size(33, 65) == (33, 65)


def test_finetune_trains_at_the_working_size():
    from qgn.train.finetune import FinetuneConfig, at_working_size, finetune

    image, label = _scene(64, 96)
    model = _model(0.5)
    images, labels = at_working_size(model, [image], [label])
    assert images[0].shape == (32, 48, 3) and labels[0].shape == (32, 48)
    np.testing.assert_array_equal(labels[0], resize_label(label, (32, 48)))
    assert at_working_size(_model(), [image], [label])[1][0] is label  # scale 1: as given
    result = finetune(model, [image], [label], FinetuneConfig(iterations=2, batch_size=1, crop=0))
    assert result.iterations_done == 2 and result.model.config.input_scale == 0.5


def test_site_masks_for_benchmarks_fit_the_image_given():
    from qgn.bench.site_masks import predicted_site_masks

    image, _ = _scene(64, 96)
    masks = predicted_site_masks(_model(0.5, (32, 48)), image, Scheme("all"))
    assert masks[5].shape == (1, 2, 3) and masks[1].shape == (1, 32, 48)


def test_large_images_run_at_most_at_the_working_pixel_limit(monkeypatch):
    from qgn.model.qgn import DEFAULT_MAX_WORKING_PIXELS

    config = _model().config
    assert config.working_size(2048, 2048) == (2048, 2048)  # the default limit, 4.2 M pixels, itself
    h, w = config.working_size(4000, 6000)
    assert h * w <= DEFAULT_MAX_WORKING_PIXELS and abs(w / h - 1.5) < 0.01
    monkeypatch.setenv("QGN_MAX_WORKING_PIXELS", "4096")
    assert config.working_size(128, 128) == (64, 64)
    image, _ = _scene(128, 192)
    pred = ImageSession(_model(), image).run(Scheme("pc"))
    assert pred.label().shape == (128, 192) and pred.sizes[0][0] * pred.sizes[0][1] <= 4096
    monkeypatch.setenv("QGN_MAX_WORKING_PIXELS", "lots")
    with pytest.raises(ValueError, match="QGN_MAX_WORKING_PIXELS"):
        config.working_size(10, 10)


@pytest.mark.parametrize("resolution", ["working", "native"])
def test_a_thin_strip_runs_within_twice_the_limit_once_padded(monkeypatch, resolution):
    # a 1-pixel-tall strip pads to 32 rows: a 1×1,000,000 PNG (within every pixel limit) took 2.5 GB
    # where a 1000×1000 photo takes 0.5 GB, and a 100 KB 1×67,000,000 one would have taken ~40 GB
    from qgn.model.qgn import DEFAULT_MAX_NATIVE_PIXELS, DEFAULT_MAX_WORKING_PIXELS

    slack = 2  # qgn.model.qgn.PADDED_SLACK

    config = _model().config
    limit = DEFAULT_MAX_WORKING_PIXELS if resolution == "working" else DEFAULT_MAX_NATIVE_PIXELS
    for shape in [(1, 1_000_000), (3, 20_000_000), (1_000_000, 1), (33, 1_000_000)]:
        h, w = config.network_size(*shape, resolution)
        padded = -(-h // 32) * 32 * (-(-w // 32) * 32)
        assert padded <= slack * limit and 1 <= h <= shape[0] and 1 <= w <= shape[1]
    h, w = config.network_size(3024, 4032, resolution)
    assert h * w <= 1.001 * limit and abs(w / h - 4 / 3) < 0.01
    assert config.network_size(360, 481, resolution) == (360, 481)  # photos: as before
    monkeypatch.setenv("QGN_MAX_WORKING_PIXELS", "4096")
    monkeypatch.setenv("QGN_MAX_NATIVE_PIXELS", "4096")
    image, label = _scene(1, 5000)
    session = ImageSession(_model(), image, resolution=resolution)
    assert session.padded_shape[0] * session.padded_shape[1] <= slack * 4096
    assert session.run(Scheme("pc")).label().shape == (1, 5000)


def test_resizing_a_read_only_image_warns_nothing_and_matches_a_writable_one():
    """``np.asarray`` of a PIL image is read-only; torch warns on such arrays, and the resize must
    neither warn nor change its result."""
    import warnings

    image = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    frozen = image.copy()
    frozen.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        small = resize_image(frozen, (30, 40))
    np.testing.assert_array_equal(small, resize_image(image, (30, 40)))
