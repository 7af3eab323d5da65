"""AdaBN (qgn.train.adapt): BatchNorm statistics re-estimated on unlabelled images, checked against
statistics computed independently (numpy, float64) from each layer's inputs over the images' own
cells (padding left out)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from qgn.data.synthetic import SYNTHETIC_CLASSES
from qgn.infer import ImageSession, predict
from qgn.train.adapt import adapt_norm, norm_layers
from qgn.model.qgn import QGN, QGNConfig
from qgn.propagation import Scheme
from qgn.sparse.level import SparseLevel


def tiny_model(seed=0) -> QGN:
    torch.manual_seed(seed)
    return QGN(QGNConfig.from_preset("tiny", SYNTHETIC_CLASSES)).eval()


def images(seed=1) -> list[np.ndarray]:
    """Five images of two sizes, neither a multiple of 32 (so the network input is padded), with
    a colour cast and contrast no initial statistics expect."""
    rng = np.random.default_rng(seed)
    sizes = [(70, 90), (70, 90), (50, 64), (70, 90), (50, 64)]
    return [np.clip(rng.normal(160, 40, (h, w, 3)) * [1.0, 0.7, 0.4], 0, 255).astype(np.uint8) for h, w in sizes]


def inputs_of(model: QGN, layers, pictures, decoder: bool) -> dict[str, np.ndarray]:
    """name -> (N, C) float64: every BatchNorm's inputs over the images' own cells, the model run
    as inference runs it (one image at a time, running statistics; the decoder's sparse path on
    every cell)."""
    seen: dict[str, list[np.ndarray]] = {name: [] for name, _ in layers}
    state = {}

    def hook_for(name):
        def hook(module, args):
            x = args[0]
            h, w = state["size"]
            if isinstance(x, SparseLevel):
                stride = state["padded"][0] // x.spatial_shape[0]
                c = x.coords.numpy()
                keep = (c[:, 1] < -(-h // stride)) & (c[:, 2] < -(-w // stride))
                seen[name].append(x.feats.detach().double().numpy()[keep])
            else:
                stride = state["padded"][0] // x.shape[2]
                crop = x[0, :, :-(-h // stride), :-(-w // stride)].detach().double().numpy()
                seen[name].append(crop.reshape(crop.shape[0], -1).T)
        return hook

    handles = [m.register_forward_pre_hook(hook_for(name)) for name, m in layers]
    try:
        for image in pictures:
            session = ImageSession(model, image)
            state["size"], state["padded"] = session.work_size, session.padded_shape
            with torch.enable_grad():  # the sparse decoder path, where the BatchNorms run as modules
                features = model.encode(session.images)
                if decoder:
                    model.decoder(features, session.images, Scheme("all"))
    finally:
        for h in handles:
            h.remove()
    return {name: np.concatenate(rows) for name, rows in seen.items()}


def test_the_first_batch_norm_gets_the_mean_and_variance_of_its_inputs_over_the_images_own_pixels():
    model = tiny_model()
    layers = norm_layers(model)
    first_name, first = layers[0]
    # its input depends on no BatchNorm: the same before and after
    reference = inputs_of(model, layers[:1], images(), decoder=False)[first_name]
    assert adapt_norm(model, images(), batch_size=2) == 5
    np.testing.assert_allclose(first.running_mean.numpy(), reference.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(first.running_var.numpy(), reference.var(axis=0, ddof=1), rtol=1e-5, atol=1e-6)
    assert not model.training and not any(m.training for m in model.modules())


@pytest.mark.parametrize("decoder", [False, True])
def test_enough_passes_reach_the_statistics_of_the_model_as_inference_runs_it(decoder):
    """After as many passes as there are BatchNorms (each layer's input depends only on the ones
    before it), every BatchNorm's running statistics are those of its inputs when the adapted model
    predicts; the decoder's too when asked, and only then."""
    model = tiny_model()
    layers = norm_layers(model, decoder)
    decoder_layers = [name for name, _ in norm_layers(model, True) if name.startswith("decoder.")]
    assert len(layers) > 5 and decoder_layers and all(n.startswith("encoder.") for n, _ in norm_layers(model))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    adapt_norm(model, images, decoder=decoder, batch_size=3, passes=len(layers) + 1)
    reference = inputs_of(model, layers, images(), decoder)
    for name, module in layers:
        np.testing.assert_allclose(module.running_mean.numpy(), reference[name].mean(axis=0), rtol=1e-4, atol=1e-5,
                                   err_msg=name)
        np.testing.assert_allclose(module.running_var.numpy(), reference[name].var(axis=0, ddof=1), rtol=1e-4,
                                   atol=1e-5, err_msg=name)
    after = model.state_dict()
    for key, value in before.items():  # parameters untouched; the decoder's statistics only when asked
        changed = not torch.equal(value, after[key])
        if "running_" in key and (key.startswith("encoder.") or decoder):
            assert changed, key
        elif "num_batches_tracked" not in key:
            assert not changed, key
    assert not model.training and all(m.momentum == 0.1 for _, m in norm_layers(model, True))


def test_a_folded_batch_norm_is_not_used_stale_after_adapting():
    """The dense (All) decoder folds its BatchNorms into the convolutions and remembers the result:
    after adapting, the model predicts exactly what a fresh model with the adapted weights does."""
    model = tiny_model()
    picture = images()[0]
    before = predict(model, picture, Scheme("all")).outputs[-1].logits.clone()  # folds, and remembers
    adapt_norm(model, images(), decoder=True)
    fresh = QGN(model.config)
    fresh.load_state_dict(model.state_dict())
    fresh.eval()
    adapted = predict(model, picture, Scheme("all")).outputs[-1].logits
    torch.testing.assert_close(adapted, predict(fresh, picture, Scheme("all")).outputs[-1].logits)
    assert not torch.allclose(adapted, before)


def test_stopping_or_no_images_leaves_the_model_as_it_was():
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    calls = []

    def stop_in_second_pass():
        calls.append(1)
        return len(calls) > 7  # the first pass (5 images) completes and writes its estimate

    assert adapt_norm(model, images, decoder=True, passes=2, should_stop=stop_in_second_pass) == 0
    with pytest.raises(ValueError, match="no images"):
        adapt_norm(model, [])
    with pytest.raises(ValueError, match="list"):
        adapt_norm(model, iter(images()), passes=2)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert not model.training


def test_progress_counts_the_images_of_each_pass():
    model = tiny_model()
    seen = []
    adapt_norm(model, images, batch_size=2, passes=2, progress=lambda p, n: seen.append((p, n)))
    # batches of two, split where the size changes: 70x90 x2 | 50x64 | 70x90 | 50x64
    assert seen == [(0, 2), (0, 3), (0, 4), (0, 5), (1, 2), (1, 3), (1, 4), (1, 5)]
